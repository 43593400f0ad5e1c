/* Replay source: the records of a record directory (taskmond --record),
 * through the shared reader tools/common/records.h, shown as live samples
 * were: each record is derived against the one before it, so rates are
 * right whichever way the cursor moves.
 *
 * Histories that warnings need (trends for the leak warning, restart
 * observations) come from a short chain of records before the cursor, and
 * the last few derived samples are cached, so that stepping either way costs
 * one record, and a jump costs CHAIN of them.
 */
#include "source_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "records.h"
#include "snapshot_parse.h"

#define CHAIN 9            /* records derived before a jump target: the leak warning's 8 intervals */
#define CACHE 16           /* derived samples kept */

struct cached {
	size_t idx;
	struct tt_model *m;    /* NULL = empty slot */
	uint64_t used;
};

struct replay_impl {
	struct tm_records *rec;
	size_t count, cursor;
	struct cached cache[CACHE];
	uint64_t clock;        /* for least-recently-used eviction */
};

/* ---- the record's own object ------------------------------------------------ */

static uint64_t ju64(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* "record": seq, time, and the processes' and collector's resources. */
static void apply_record(struct tt_model *m, const json_t *root)
{
	const json_t *rec = json_object_get(root, "record");
	if (!json_is_object(rec))
		return;
	m->replay.record_seq = ju64(rec, "seq");
	uint64_t t = ju64(rec, "time_unix_ns");
	if (t && !m->now_unix_ns)
		m->now_unix_ns = t;
	const json_t *procs = json_object_get(rec, "processes");
	size_t i;
	const json_t *p;
	json_array_foreach(procs, i, p) {
		if (!json_is_object(p))
			continue;
		struct tt_workload *w = tt_model_find_workload(m, (pid_t)ju64(p, "pid"));
		if (!w || !ju64(p, "pid"))
			continue;
		w->proc_known = true;
		w->proc_cpu_ns = ju64(p, "cpu_ns");
		w->proc_rss_bytes = ju64(p, "rss_bytes");
		w->proc_threads = ju64(p, "threads");
	}
	const json_t *c = json_object_get(rec, "collector");
	if (json_is_object(c) && m->collector.present) {
		m->collector.cpu_known = json_is_integer(json_object_get(c, "cpu_ns"));
		m->collector.cpu_ns = ju64(c, "cpu_ns");
		m->collector.rss_bytes = ju64(c, "rss_bytes");
	}
}

/* Record i as a model, not derived. 0, -EBADMSG (status says why) or -ENOMEM. */
static int build(struct tt_source *s, size_t i, struct tt_model **out)
{
	struct replay_impl *k = s->impl;
	*out = NULL;
	json_t *root = tm_records_get(k->rec, i);
	if (!root) {
		tt__source_status(s, TT_HEALTH_DEGRADED, "record %zu of %zu in %s cannot be read: skipped", i + 1,
		                  k->count, s->replay_dir);
		return -EBADMSG;
	}
	struct tt_model *m = tt_model_new(TT_SRC_REPLAY);
	if (!m)
		return -ENOMEM;
	char err[200];
	int rc = tt_snapshot_from_json(m, root, err, sizeof(err));
	if (rc < 0) {
		tt_model_free(m);
		tt__source_status(s, TT_HEALTH_DEGRADED, "record %zu of %zu in %s: %s", i + 1, k->count, s->replay_dir,
		                  err);
		return rc;
	}
	apply_record(m, root);
	m->source = TT_SRC_REPLAY;
	*out = m;
	return 0;
}

/* ---- cache of derived samples -------------------------------------------- */

static struct tt_model *cache_get(struct replay_impl *k, size_t idx)
{
	for (int i = 0; i < CACHE; i++)
		if (k->cache[i].m && k->cache[i].idx == idx) {
			k->cache[i].used = ++k->clock;
			return k->cache[i].m;
		}
	return NULL;
}

/* Keeps m (taken over) as the derived sample of idx. */
static void cache_put(struct replay_impl *k, size_t idx, struct tt_model *m)
{
	int victim = 0;
	for (int i = 0; i < CACHE; i++) {
		if (!k->cache[i].m) {
			victim = i;
			break;
		}
		if (k->cache[i].used < k->cache[victim].used)
			victim = i;
	}
	tt_model_free(k->cache[victim].m);
	k->cache[victim] = (struct cached){ .idx = idx, .m = m, .used = ++k->clock };
}

/* The derived sample of record i, built on the one before it (cached or
 * rebuilt with a short chain). Borrowed from the cache. */
static int derived(struct tt_source *s, size_t i, struct tt_model **out)
{
	struct replay_impl *k = s->impl;
	if ((*out = cache_get(k, i)))
		return 0;
	const struct tt_model *prev = i ? cache_get(k, i - 1) : NULL;
	if (!prev && i) {
		/* a jump: derive a few records before it, for the histories */
		size_t from = i > CHAIN ? i - CHAIN : 0;
		for (size_t j = from; j < i; j++) {
			struct tt_model *m, *p = j ? cache_get(k, j - 1) : NULL;
			int rc = build(s, j, &m);
			if (rc == -ENOMEM)
				return rc;
			if (rc < 0)
				continue;
			if (tt_model_diff(p, m) < 0) {
				tt_model_free(m);
				return -ENOMEM;
			}
			cache_put(k, j, m);
		}
		prev = cache_get(k, i - 1);
	}
	struct tt_model *m;
	int rc = build(s, i, &m);
	if (rc < 0)
		return rc;
	if (tt_model_diff(prev, m) < 0) {
		tt_model_free(m);
		return -ENOMEM;
	}
	cache_put(k, i, m);
	*out = m;
	return 0;
}

/* ---- the source ------------------------------------------------------------- */

static void crash_log(struct tt_source *s, struct tt_model *m)
{
	char path[TT_PATH_CAP + 32];
	struct stat st;
	/* a crash log kept beside the records, else the collector's own */
	snprintf(path, sizeof(path), "%s/crashes.jsonl", s->replay_dir);
	if (stat(path, &st) != 0 && m->collector.state_dir[0])
		snprintf(path, sizeof(path), "%s/crashes.jsonl", m->collector.state_dir);
	tt__source_crashes(s, m, path, m->now_unix_ns);
}

static void fmt_time(uint64_t unix_ns, char *buf, size_t len)
{
	time_t t = (time_t)(unix_ns / 1000000000ull);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, len, "?");
}

static int replay_sample(struct tt_source *s, int timeout_ms, struct tt_model **out)
{
	(void)timeout_ms;
	struct replay_impl *k = s->impl;
	if (!k->count) {
		tt__source_status(s, TT_HEALTH_NONE, "no records in %s%s", s->replay_dir,
		                  tm_records_skipped(k->rec) ? " (only lines that do not parse)" : "");
		return -ENOENT;
	}
	struct tt_model *d;
	int rc = derived(s, k->cursor, &d);
	if (rc < 0)
		return rc;
	struct tt_model *m = tt_model_ref(d);   /* the cache keeps its own reference */
	m->replay = (struct tt_replay_pos){ .index = k->cursor, .count = k->count,
	                                    .first_unix_ns = tm_records_time(k->rec, 0),
	                                    .last_unix_ns = tm_records_time(k->rec, k->count - 1),
	                                    .skipped = tm_records_skipped(k->rec), .record_seq = d->replay.record_seq };
	crash_log(s, m);
	char when[48];
	fmt_time(m->now_unix_ns, when, sizeof(when));
	tt__source_status(s, m->replay.skipped ? TT_HEALTH_DEGRADED : TT_HEALTH_OK,
	                  "replay of %s: record %zu of %zu, %s%s", s->replay_dir, k->cursor + 1, k->count, when,
	                  m->replay.skipped ? " (some lines did not parse)" : "");
	*out = m;
	return 0;
}

static long replay_seek(struct tt_source *s, size_t index)
{
	struct replay_impl *k = s->impl;
	if (!k->count)
		return -ENOENT;
	k->cursor = index < k->count ? index : k->count - 1;
	return (long)k->cursor;
}

static long replay_seek_time(struct tt_source *s, uint64_t unix_ns)
{
	struct replay_impl *k = s->impl;
	if (!k->count)
		return -ENOENT;
	/* the last record at or before unix_ns: times are in order */
	size_t lo = 0, hi = k->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tm_records_time(k->rec, mid) <= unix_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	return replay_seek(s, lo ? lo - 1 : 0);
}

static bool replay_pos(const struct tt_source *s, struct tt_replay_pos *out)
{
	const struct replay_impl *k = s->impl;
	*out = (struct tt_replay_pos){ .index = k->cursor, .count = k->count,
	                               .skipped = tm_records_skipped(k->rec) };
	if (k->count) {
		out->first_unix_ns = tm_records_time(k->rec, 0);
		out->last_unix_ns = tm_records_time(k->rec, k->count - 1);
	}
	return true;
}

static void replay_close(struct tt_source *s)
{
	struct replay_impl *k = s->impl;
	if (!k)
		return;
	for (int i = 0; i < CACHE; i++)
		tt_model_free(k->cache[i].m);
	tm_records_close(k->rec);
	free(k);
}

static const struct tt_source_ops replay_ops = {
	.sample = replay_sample,
	.close = replay_close,
	.seek = replay_seek,
	.pos = replay_pos,
	.seek_time = replay_seek_time,
};

int tt_source_open_replay(struct tt_source **out, const struct tt_source_opts *opts, char *err, size_t errlen)
{
	if (!opts || !opts->replay_dir || !*opts->replay_dir) {
		snprintf(err, errlen, "replay needs a record directory");
		return -EINVAL;
	}
	struct tt_source *s;
	int rc = tt__source_new(&s, TT_SRC_REPLAY, &replay_ops, opts, err, errlen);
	if (rc < 0)
		return rc;
	struct replay_impl *k = calloc(1, sizeof(*k));
	s->impl = k;
	if (!k) {
		snprintf(err, errlen, "out of memory");
		tt_source_close(s);
		return -ENOMEM;
	}
	rc = tm_records_open(&k->rec, s->replay_dir, s->opts.since_unix_ns, s->opts.until_unix_ns, err, errlen);
	if (rc < 0) {
		tt_source_close(s);
		return rc;
	}
	k->count = tm_records_count(k->rec);
	tt__source_status(s, TT_HEALTH_NONE, "replay of %s: %zu records", s->replay_dir, k->count);
	*out = s;
	return 0;
}
