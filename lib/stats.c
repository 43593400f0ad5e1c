/* In-process views of the registry: stats, task lists, types, cleanup. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "config.h"
#include "core.h"
#include "internal.h"

/* Acquire loads keep the closing sequence load of a snapshot after every
 * field load without a separate fence (plain moves on x86). */
#define LD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define SNAPSHOT_TRIES 16

static const char *const status_names[TM_STATUS_COUNT] = {
	"running", "succeeded", "failed", "panicked", "cancelled", "timed_out", "crashed",
};

const char *tm_status_name(enum tm_status s)
{
	return (unsigned)s < TM_STATUS_COUNT ? status_names[s] : "unknown";
}

int tm_type_register(const char *name)
{
	int r = tm__ensure_init();
	if (r < 0)
		return r;
	if (!tm__valid_name(name))
		return tm__fail(EINVAL, "type name must be 1 to %d bytes of printable ASCII", TM_NAME_MAX - 1);
	return tm__type_add(name, 0, tm__g.cfg.default_timeout_ms, 0);
}

const char *tm_type_name(int type)
{
	if (!atomic_load(&tm__g.ready))
		return type >= 0 && type < TM_BUILTIN_TYPES ? tm__builtin_type_names[type] : NULL;
	if (type < 0 || (uint64_t)type >= __atomic_load_n(&tm__g.hdr->types_used, __ATOMIC_ACQUIRE))
		return NULL;
	return tm__g.types[type].name;
}

static unsigned types_used(void)
{
	return (unsigned)__atomic_load_n(&tm__g.hdr->types_used, __ATOMIC_ACQUIRE);
}

static void keep_tidy(void)
{
	tm__reclaim(tm__now_ns(), tm__g.cfg.task_retention_ms * 1000000ull, 64, false);
}

/* Merges the latency histograms of one type (type >= 0) or all (-1). */
static uint64_t merge_hist(int type, uint64_t *hist)
{
	uint64_t max = 0;
	memset(hist, 0, TM_HIST_BUCKETS * sizeof(*hist));
	for (unsigned i = 0; i < types_used(); i++) {
		if (type >= 0 && (unsigned)type != i)
			continue;
		const struct tm_shm_type *t = &tm__g.types[i];
		for (unsigned b = 0; b < TM_HIST_BUCKETS; b++)
			hist[b] += LD(&t->hist[b]);
		if (LD(&t->latency_max_ns) > max)
			max = LD(&t->latency_max_ns);
	}
	return max;
}

int tm_get_stats(struct tm_stats *out)
{
	int r = tm__ensure_init();
	if (r < 0)
		return r;
	if (!out)
		return tm__fail(EINVAL, "tm_get_stats got a NULL pointer");
	keep_tidy();
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < types_used(); i++) {
		uint64_t c[TM_C_COUNT];
		for (unsigned k = 0; k < TM_C_COUNT; k++)
			c[k] = LD(&tm__g.types[i].counters[k]);
		tm__stats_add_type(out, (int)i, c);
	}
	uint64_t hist[TM_HIST_BUCKETS];
	uint64_t max = merge_hist(-1, hist);
	out->spawn_latency_p50_ns = tm_hist_quantile(hist, max, 0.50);
	out->spawn_latency_p95_ns = tm_hist_quantile(hist, max, 0.95);
	out->spawn_latency_p99_ns = tm_hist_quantile(hist, max, 0.99);
	out->spawn_latency_max_ns = max;
	out->tracked_records = LD(&tm__g.hdr->tracked_records);
	out->tracker_bytes = LD(&tm__g.hdr->tracker_bytes);
	return 0;
}

int tm_spawn_latency_ns(int type, double q, uint64_t *out_ns)
{
	int r = tm__ensure_init();
	if (r < 0)
		return r;
	if (!out_ns || !(q > 0.0 && q <= 1.0))
		return tm__fail(EINVAL, "quantile must be in (0, 1] and the output pointer non-NULL");
	if (type < -1 || type >= (int)types_used())
		return tm__fail(EINVAL, "task type %d is not registered", type);
	uint64_t hist[TM_HIST_BUCKETS];
	uint64_t max = merge_hist(type, hist);
	*out_ns = tm_hist_quantile(hist, max, q);
	return 0;
}

/* A consistent copy of one live record, or false while it keeps changing. */
static bool snapshot_slot(const struct tm_shm_slot *s, struct tm_task_info *o)
{
	for (int tries = 0; tries < SNAPSHOT_TRIES; tries++) {
		uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		if (seq & 1)
			continue;
		o->id = LD(&s->id);
		o->tid = (pid_t)LD(&s->tid);
		o->type = LD(&s->type);
		o->status = (enum tm_status)LD(&s->status);
		o->rc = LD(&s->rc);
		o->spawn_ns = LD(&s->spawn_ns);
		o->start_ns = LD(&s->start_ns);
		o->end_ns = LD(&s->end_ns);
		o->cpu_ns = LD(&s->cpu_ns);
		o->restarts = LD(&s->restarts);
		for (unsigned i = 0; i < TM_NAME_MAX / 8; i++) {
			uint64_t w = LD((const uint64_t *)s->name + i);
			memcpy(o->name + 8 * i, &w, 8);
		}
		o->name[TM_NAME_MAX - 1] = '\0';
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq)
			return seq != 0;
	}
	return false;
}

int tm_list_tasks(struct tm_task_info *out, size_t cap, bool running_only)
{
	int r = tm__ensure_init();
	if (r < 0)
		return r;
	if (!out && cap)
		return tm__fail(EINVAL, "tm_list_tasks got a NULL buffer");
	keep_tidy();
	uint64_t n = __atomic_load_n(&tm__g.hdr->slots_used, __ATOMIC_ACQUIRE);
	size_t k = 0;
	for (uint64_t i = 0; i < n && k < cap && k < INT_MAX; i++) {
		if (!snapshot_slot(&tm__g.slots[i], &out[k]) || !out[k].id)
			continue;
		if (!running_only || out[k].status == TM_RUNNING)
			k++;
	}
	return (int)k;
}

/* Copies what the record of task id keeps beyond its slot; false when none. */
static bool copy_extra(uint64_t id, char *buf, size_t len, struct tm_crash_info *crash)
{
	uint64_t n = __atomic_load_n(&tm__g.hdr->slots_used, __ATOMIC_ACQUIRE);
	for (uint64_t i = 0; id && i < n; i++) {
		if (LD(&tm__g.slots[i].id) != id)
			continue;
		/* Under the lock a record cannot be freed, so id and extra agree. */
		tm__lib_enter();
		pthread_mutex_lock(&tm__g.msg_lock);
		const struct tm__extra *x = LD(&tm__g.slots[i].id) == id ? tm__g.ctl[i].extra : NULL;
		bool found = x && (!crash || x->crashed);
		if (found && buf && len)
			snprintf(buf, len, "%s", x->message);
		if (found && crash)
			*crash = x->crash;
		pthread_mutex_unlock(&tm__g.msg_lock);
		tm__lib_leave();
		return found;
	}
	return false;
}

int tm_task_message(uint64_t id, char *buf, size_t len)
{
	int r = tm__ensure_init();
	if (r < 0)
		return r;
	if (copy_extra(id, buf, len, NULL))
		return 0;
	return tm__fail(ENOENT, "task %llu has no panic or crash message", (unsigned long long)id);
}

int tm_task_crash(uint64_t id, struct tm_crash_info *out)
{
	int r = tm__ensure_init();
	if (r < 0)
		return r;
	if (!out)
		return tm__fail(EINVAL, "tm_task_crash got a NULL pointer");
	if (copy_extra(id, NULL, 0, out))
		return 0;
	return tm__fail(ENOENT, "task %llu did not end with a contained crash", (unsigned long long)id);
}

int tm_cleanup(uint64_t older_than_ms)
{
	int r = tm__ensure_init();
	if (r < 0)
		return r;
	uint64_t ns = older_than_ms > UINT64_MAX / 1000000ull ? UINT64_MAX / 2 : older_than_ms * 1000000ull;
	unsigned n = tm__reclaim(tm__now_ns(), ns, UINT_MAX, true);
	return n > INT_MAX ? INT_MAX : (int)n;
}
