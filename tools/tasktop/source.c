/* What every source does alike: options, status, the /proc figures and the
 * crash log, and deriving each sample against the previous one. */
#include "source_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "proc_sample.h"
#include "wire.h"

#define TT_STATE_DIR_DEFAULT "/var/lib/taskmon"   /* taskmond's default --state-dir */

uint64_t tt__now_ns(int clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void tt__source_status(struct tt_source *s, enum tt_health h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->status, sizeof(s->status), fmt, ap);
	va_end(ap);
	s->health = h;
}

const char *tt__socket_path(const struct tt_source_opts *o)
{
	if (o->socket_path && *o->socket_path)
		return o->socket_path;
	const char *env = getenv("TASKMON_SOCKET");
	return env && *env ? env : TM_WIRE_SOCKET;
}

static int copy_path(char *dst, size_t cap, const char *src, const char *what, char *err, size_t errlen)
{
	if (!src)
		return 0;
	if (strlen(src) >= cap) {
		snprintf(err, errlen, "the %s path is too long (at most %zu bytes)", what, cap - 1);
		return -ENAMETOOLONG;
	}
	strcpy(dst, src);
	return 0;
}

int tt__source_new(struct tt_source **out, enum tt_source_kind kind, const struct tt_source_ops *ops,
                   const struct tt_source_opts *opts, char *err, size_t errlen)
{
	struct tt_source *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->kind = kind;
	s->ops = ops;
	s->opts.sz = sizeof(s->opts);
	if (opts)
		memcpy(&s->opts, opts, opts->sz < sizeof(s->opts) ? opts->sz : sizeof(s->opts));
	int rc = copy_path(s->socket_path, sizeof(s->socket_path), tt__socket_path(&s->opts), "socket", err, errlen);
	if (!rc)
		rc = copy_path(s->shm_dir, sizeof(s->shm_dir), s->opts.shm_dir, "shared-memory directory", err, errlen);
	if (!rc)
		rc = copy_path(s->replay_dir, sizeof(s->replay_dir), s->opts.replay_dir, "record directory", err, errlen);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->opts.socket_path = s->socket_path;
	s->opts.shm_dir = s->opts.shm_dir ? s->shm_dir : NULL;
	s->opts.replay_dir = s->opts.replay_dir ? s->replay_dir : NULL;
	s->health = TT_HEALTH_NONE;
	snprintf(s->status, sizeof(s->status), "no sample yet");
	*out = s;
	return 0;
}

void tt_source_close(struct tt_source *s)
{
	if (!s)
		return;
	if (s->ops->close)
		s->ops->close(s);
	tt_model_free(s->prev);
	tt_crashlog_free(s->crashes);
	free(s);
}

enum tt_source_kind tt_source_kind(const struct tt_source *s)
{
	return s->kind;
}

const char *tt_source_status(const struct tt_source *s)
{
	return s->status;
}

enum tt_health tt_source_health(const struct tt_source *s)
{
	return s->health;
}

void tt__source_crashes(struct tt_source *s, struct tt_model *m, const char *path, uint64_t until_unix_ns)
{
	if (s->opts.no_crashes || !path || !*path)
		return;
	/* another file (a collector with another state directory): start afresh */
	if (s->crashes && strcmp(s->crash_path, path) != 0) {
		tt_crashlog_free(s->crashes);
		s->crashes = NULL;
	}
	if (!s->crashes && !(s->crashes = tt_crashlog_new()))
		return;
	snprintf(s->crash_path, sizeof(s->crash_path), "%s", path);
	int rc = tt_crashlog_update(s->crashes, path);
	if (rc < 0 && !tt_crashlog_count(s->crashes)) {
		snprintf(m->crashes_source, sizeof(m->crashes_source), "%s: %s", path,
		         rc == -ENOENT ? "no crash recorded" : strerror(-rc));
		m->crashes_known = rc == -ENOENT;   /* no file yet: no crash, known */
		return;
	}
	tt_crashlog_fill(s->crashes, m, until_unix_ns, path);
}

/* Live and standalone: /proc, crash log, derivation against the last sample. */
static int finish_sample(struct tt_source *s, struct tt_model *m)
{
	if (s->kind != TT_SRC_REPLAY) {
		if (!s->opts.no_proc)
			tt_proc_sample(s->prev, m, NULL);
		/* the collector's crash log; standalone, the one a collector that ran
		 * before with the default state directory left (if readable) */
		char path[TT_PATH_CAP + 32];
		snprintf(path, sizeof(path), "%s/crashes.jsonl",
		         m->collector.present && m->collector.state_dir[0] ? m->collector.state_dir : TT_STATE_DIR_DEFAULT);
		tt__source_crashes(s, m, path, 0);
		int rc = tt_model_diff(s->prev, m);
		if (rc < 0)
			return rc;
		/* shared, not copied: a 1000-task model is about 0.7 MB */
		tt_model_free(s->prev);
		s->prev = tt_model_ref(m);
	}
	return 0;
}

int tt_source_fetch(struct tt_source *s, int timeout_ms, struct tt_model **out)
{
	*out = NULL;
	struct tt_model *m = NULL;
	int rc = s->ops->sample(s, timeout_ms < 0 ? 0 : timeout_ms, &m);
	if (rc < 0)
		return rc;
	m->seq = ++s->seq;
	rc = finish_sample(s, m);
	if (rc < 0) {
		tt_model_free(m);
		tt__source_status(s, s->prev ? TT_HEALTH_STALE : TT_HEALTH_NONE, "out of memory deriving the sample");
		return rc;
	}
	snprintf(m->status, sizeof(m->status), "%s", s->status);
	m->health = s->health;
	*out = m;
	return 0;
}

long tt_source_seek(struct tt_source *s, size_t index)
{
	return s->ops->seek ? s->ops->seek(s, index) : -ENOTSUP;
}

long tt_source_step(struct tt_source *s, long delta)
{
	struct tt_replay_pos p;
	if (!tt_source_replay_pos(s, &p))
		return -ENOTSUP;
	long i = (long)p.index + delta;
	if (i < 0)
		i = 0;
	return tt_source_seek(s, (size_t)i);
}

long tt_source_seek_time(struct tt_source *s, uint64_t unix_ns)
{
	return s->ops->seek_time ? s->ops->seek_time(s, unix_ns) : -ENOTSUP;
}

bool tt_source_replay_pos(const struct tt_source *s, struct tt_replay_pos *out)
{
	return s->ops->pos ? s->ops->pos(s, out) : false;
}

int tt_source_open_auto(struct tt_source **out, const struct tt_source_opts *opts, char *err, size_t errlen)
{
	struct tt_source_opts o = { .sz = sizeof(o) };
	if (opts)
		memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	const char *path = tt__socket_path(&o);
	int rc = tt__socket_probe(path);
	if (rc == 0)
		return tt_source_open_socket(out, opts, err, errlen);
	char why[TT_TEXT_CAP];
	if (rc == -ENOENT || rc == -ECONNREFUSED)
		snprintf(why, sizeof(why), "no collector at %s: kernel figures off", path);
	else
		snprintf(why, sizeof(why), "collector at %s not reachable (%s): kernel figures off", path, strerror(-rc));
	return tt__shm_open(out, opts, why, err, errlen);
}
