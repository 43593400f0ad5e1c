/* Snapshot JSON (user/snapshot.h) → model. Every value is checked for its
 * type and range; nothing in the document sizes an allocation beyond the
 * model's bounds. */
#include "snapshot_parse.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"

#define I63_MAX 0x7fffffffffffffffull

static const char *const counter_keys[TT_C_COUNT] = {
	[TM_C_SPAWNED] = "spawned", [TM_C_RUNNING] = "running", [TM_C_SUCCEEDED] = "succeeded",
	[TM_C_FAILED] = "failed", [TM_C_PANICKED] = "panicked", [TM_C_CANCELLED] = "cancelled",
	[TM_C_TIMED_OUT] = "timed_out", [TM_C_RESTARTS] = "restarts", [TM_C_REJECTED] = "rejected",
	[TM_C_CRASHED] = "crashed", [TM_C_ESCALATIONS] = "escalations", [TT_C_TRACE_SKIPPED] = "trace_skipped",
};

/* ---- typed getters: wrong type → counted, zero ---------------------------- */

/* The document being read; getters count what is wrong in the model. */
struct ctx {
	const struct tt_json *d;
	struct tt_model *m;
};
typedef struct tt_json_node jnode;

static const jnode *get(struct ctx *c, const jnode *o, const char *key)
{
	return tt_json_get(c->d, o, key);
}

static uint64_t get_u64(struct ctx *c, const jnode *o, const char *key)
{
	const jnode *v = get(c, o, key);
	if (!v)
		return 0;
	if (v->type == TT_JSON_INT) {
		if (v->big)
			return I63_MAX;   /* above 2^63 - 1: clamped, as the collector does */
		if (v->v.i >= 0)
			return (uint64_t)v->v.i;
	} else if (v->type == TT_JSON_REAL) {
		double d = v->v.d;
		if (isfinite(d) && d >= 0)
			return d >= (double)I63_MAX ? I63_MAX : (uint64_t)d;
	}
	c->m->bad_fields++;
	return 0;
}

static int64_t get_i64(struct ctx *c, const jnode *o, const char *key, int64_t lo, int64_t hi, int64_t dflt)
{
	const jnode *v = get(c, o, key);
	if (!v)
		return dflt;
	if (v->type == TT_JSON_INT && !v->big && v->v.i >= lo && v->v.i <= hi)
		return v->v.i;
	c->m->bad_fields++;
	return dflt;
}

static double get_double(struct ctx *c, const jnode *o, const char *key)
{
	const jnode *v = get(c, o, key);
	if (!v)
		return 0;
	double d = v->type == TT_JSON_REAL ? v->v.d : v->type == TT_JSON_INT && !v->big ? (double)v->v.i : -1;
	if (isfinite(d) && d >= 0 && d <= 1e18)
		return d;
	c->m->bad_fields++;
	return 0;
}

static bool get_bool(struct ctx *c, const jnode *o, const char *key)
{
	const jnode *v = get(c, o, key);
	if (!v)
		return false;
	if (v->type == TT_JSON_TRUE || v->type == TT_JSON_FALSE)
		return v->type == TT_JSON_TRUE;
	c->m->bad_fields++;
	return false;
}

/* Copies a string value into buf (cap bytes): raw bytes up to the first NUL,
 * flagged when they need escaping, were cut, or were not a string. */
static unsigned get_str(struct ctx *c, const jnode *o, const char *key, char *buf, size_t cap)
{
	buf[0] = '\0';
	const jnode *v = get(c, o, key);
	if (!v || v->type == TT_JSON_NULL)
		return 0;
	if (v->type != TT_JSON_STRING) {
		c->m->bad_fields++;
		return TT_STR_BADTYPE;
	}
	size_t len = v->len, n = len ? strnlen(v->v.s, len) : 0;
	unsigned flags = 0;
	if (n < len)
		flags |= TT_STR_CTRL | TT_STR_TRUNC;   /* an embedded NUL: cut there */
	if (n >= cap) {
		n = cap - 1;
		flags |= TT_STR_TRUNC;
	}
	memcpy(buf, v->v.s, n);
	buf[n] = '\0';
	return flags | tt_str_flags(buf, n);
}

static const jnode *get_typed(struct ctx *c, const jnode *o, const char *key, uint8_t type)
{
	const jnode *v = get(c, o, key);
	if (v && v->type != type) {
		if (v->type != TT_JSON_NULL || type == TT_JSON_ARRAY)
			c->m->bad_fields++;
		return NULL;
	}
	return v;
}

static const jnode *get_obj(struct ctx *c, const jnode *o, const char *key)
{
	return get_typed(c, o, key, TT_JSON_OBJECT);
}

static const jnode *get_array(struct ctx *c, const jnode *o, const char *key)
{
	return get_typed(c, o, key, TT_JSON_ARRAY);
}

/* Array elements that are objects; others are counted and skipped. */
static const jnode *next_object(struct ctx *c, const jnode *e)
{
	while (e && e->type != TT_JSON_OBJECT) {
		c->m->bad_fields++;
		e = tt_json_next(c->d, e);
	}
	return e;
}
#define FOR_OBJECTS(c, arr, e) \
	for (const jnode *e = next_object(c, tt_json_child((c)->d, arr)); e; e = next_object(c, tt_json_next((c)->d, e)))

/* ---- shared shapes -------------------------------------------------------- */

static void parse_hist(struct ctx *c, struct tt_hist *h, const jnode *o)
{
	*h = (struct tt_hist){ 0 };
	if (!o)
		return;
	h->present = true;
	h->count = get_u64(c, o, "count");
	h->mean_ns = get_u64(c, o, "mean_ns");
	h->p50_ns = get_u64(c, o, "p50_ns");
	h->p95_ns = get_u64(c, o, "p95_ns");
	h->p99_ns = get_u64(c, o, "p99_ns");
	h->max_ns = get_u64(c, o, "max_ns");
}

static void parse_kfig(struct ctx *c, struct tt_kfig *k, const jnode *o)
{
	*k = (struct tt_kfig){ 0 };
	if (!o)
		return;
	k->present = true;
	k->tasks_started = get_u64(c, o, "tasks_started");
	k->spawns_seen = get_u64(c, o, "spawns_seen");
	k->tasks_ended = get_u64(c, o, "tasks_ended");
	k->tasks_partial = get_u64(c, o, "tasks_partial");
	k->spawn_runq_ns = get_u64(c, o, "spawn_runq_ns");
	k->oncpu_ns = get_u64(c, o, "oncpu_ns");
	k->runq_ns = get_u64(c, o, "runq_ns");
	k->blocked_ns = get_u64(c, o, "blocked_ns");
	k->voluntary_switches = get_u64(c, o, "voluntary_switches");
	k->involuntary_switches = get_u64(c, o, "involuntary_switches");
	k->migrations = get_u64(c, o, "migrations");
	k->histograms_complete = get(c, o, "histograms_complete") ? get_bool(c, o, "histograms_complete") : true;
	parse_hist(c, &k->spawn_latency, get_obj(c, o, "spawn_latency"));
	parse_hist(c, &k->run_time, get_obj(c, o, "run_time"));
}

static void parse_counters(struct ctx *c, struct tt_counters *cn, const jnode *o)
{
	*cn = (struct tt_counters){ 0 };
	for (int i = 0; o && i < TT_C_COUNT; i++)
		cn->c[i] = get_u64(c, o, counter_keys[i]);   /* absent (older collectors): 0 */
}

/* ---- collector and machine ------------------------------------------------ */

static void parse_collector(struct ctx *c, struct tt_collector *k, const jnode *o)
{
	*k = (struct tt_collector){ 0 };
	if (!o)
		return;
	k->present = true;
	k->pid = (pid_t)get_i64(c, o, "pid", 0, INT32_MAX, 0);
	get_str(c, o, "mode", k->mode, sizeof(k->mode));
	k->uptime_ns = get_u64(c, o, "uptime_ns");
	k->events = get_u64(c, o, "events");
	k->lost = get_u64(c, o, "lost");
	k->malformed = get_u64(c, o, "malformed");
	k->unattributed = get_u64(c, o, "unattributed");
	k->spawn_missed = get_u64(c, o, "spawn_missed");
	k->watched = get_u64(c, o, "watched");
	k->registrations = get_u64(c, o, "registrations");
	k->registrations_refused = get_u64(c, o, "registrations_refused");
	k->snapshots = get_u64(c, o, "snapshots");
	k->clients = get_u64(c, o, "clients");
	k->retention_s = get_double(c, o, "retention_s");
	k->max_tasks = get_u64(c, o, "max_tasks");
	k->max_tasks_total = get_u64(c, o, "max_tasks_total");
	k->max_workloads = get_u64(c, o, "max_workloads");
	k->tasks_kept = get_u64(c, o, "tasks_kept");
	k->tasks_dropped = get_u64(c, o, "tasks_dropped");
	k->tasks_evicted = get_u64(c, o, "tasks_evicted");
	k->tasks_expired = get_u64(c, o, "tasks_expired");
	k->workloads_live = get_u64(c, o, "workloads_live");
	k->workloads_dead = get_u64(c, o, "workloads_dead");
	k->workloads_refused = get_u64(c, o, "workloads_refused");
	k->workloads_dropped = get_u64(c, o, "workloads_dropped");
	k->hist_bytes = get_u64(c, o, "hist_bytes");
	k->hist_refused = get_u64(c, o, "hist_refused");
	k->memory_bytes = get_u64(c, o, "memory_bytes");
	get_str(c, o, "socket", k->socket, sizeof(k->socket));
	get_str(c, o, "state_dir", k->state_dir, sizeof(k->state_dir));
}

static int parse_mtypes(struct ctx *c, const jnode *a)
{
	struct tt_model *m = c->m;
	size_t n = a ? a->count : 0;
	if (n > TT_MAX_MTYPES) {
		m->dropped_types += n - TT_MAX_MTYPES;
		n = TT_MAX_MTYPES;
	}
	if (!n)
		return 0;
	m->mtypes = calloc(n, sizeof(*m->mtypes));
	if (!m->mtypes)
		return -ENOMEM;
	FOR_OBJECTS(c, a, o) {
		if (m->nmtypes == n)
			break;
		struct tt_mtype *t = &m->mtypes[m->nmtypes++];
		t->name.flags = get_str(c, o, "name", t->name.s, sizeof(t->name.s));
		parse_counters(c, &t->reg, get_obj(c, o, "registry"));
		parse_kfig(c, &t->k, get_obj(c, o, "kernel"));
	}
	return 0;
}

static void parse_machine(struct ctx *c, const jnode *o)
{
	struct tt_model *m = c->m;
	if (!o)
		return;
	m->workloads_seen = get_u64(c, o, "workloads_seen");
	m->workloads_live = get_u64(c, o, "workloads_live");
	m->workloads_gone = get_u64(c, o, "workloads_gone");
	parse_counters(c, &m->machine_reg, get_obj(c, o, "registry"));
	parse_kfig(c, &m->machine_k, get_obj(c, o, "kernel"));
}

/* ---- workloads ------------------------------------------------------------ */

static int type_cmp(const void *a, const void *b)
{
	const struct tt_type *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static int parse_wtypes(struct ctx *c, struct tt_workload *w, const jnode *a)
{
	size_t n = a ? a->count : 0;
	if (!n)
		return 0;
	size_t cap = n < TT_MAX_TYPES ? n : TT_MAX_TYPES;
	w->types = calloc(cap, sizeof(*w->types));
	if (!w->types)
		return -ENOMEM;
	bool seen[TT_MAX_TYPES] = { false };
	FOR_OBJECTS(c, a, o) {
		int id = (int)get_i64(c, o, "id", 0, TT_MAX_TYPES - 1, -1);
		if (id < 0 || seen[id] || w->ntypes == cap) {
			c->m->dropped_types++;
			continue;
		}
		seen[id] = true;
		struct tt_type *t = &w->types[w->ntypes++];
		t->id = id;
		t->name.flags = get_str(c, o, "name", t->name.s, sizeof(t->name.s));
		const jnode *reg = get_obj(c, o, "registry");
		parse_counters(c, &t->reg, reg);
		parse_hist(c, &t->lib_latency, reg ? get_obj(c, reg, "spawn_latency") : NULL);
		parse_kfig(c, &t->k, get_obj(c, o, "kernel"));
	}
	qsort(w->types, w->ntypes, sizeof(*w->types), type_cmp);
	return 0;
}

static int parse_workload(struct ctx *c, struct tt_workload *w, const jnode *o)
{
	w->pid = (pid_t)get_i64(c, o, "pid", 1, INT32_MAX, 0);
	w->comm.flags = get_str(c, o, "comm", w->comm.s, sizeof(w->comm.s));
	w->uid = (uid_t)get_i64(c, o, "uid", 0, UINT32_MAX, (uid_t)-1);
	w->start_ticks = get_u64(c, o, "start_ticks");
	w->alive = get_bool(c, o, "alive");
	w->has_registry = get_bool(c, o, "has_registry");
	w->exited = get_bool(c, o, "exited");
	const jnode *ex = get_obj(c, o, "exit");
	if (ex) {
		w->exit_known = true;
		w->exit_code = (int)get_i64(c, ex, "code", INT32_MIN, INT32_MAX, 0);
		w->exit_signal = (int)get_i64(c, ex, "signal", 0, 128, 0);
		w->core_dumped = get_bool(c, ex, "core_dumped");
	}
	w->segment_removed = get_bool(c, o, "segment_removed");
	w->seen_ns = get_u64(c, o, "seen_ns");
	w->gone_ns = get_u64(c, o, "gone_ns");
	w->crashes = get_u64(c, o, "crashes");
	w->kills = get_u64(c, o, "kills");
	w->restarts = get_u64(c, o, "restarts");
	w->giveups = get_u64(c, o, "giveups");
	w->invalid_records = get_u64(c, o, "invalid_records");
	w->registry_errors = get_u64(c, o, "registry_errors");
	w->tasks_kept = get_u64(c, o, "tasks_kept");
	w->tasks_dropped = get_u64(c, o, "tasks_dropped");
	w->untyped_events = get_u64(c, o, "untyped_events");
	const jnode *reg = get_obj(c, o, "registry");
	parse_counters(c, &w->reg, reg);
	if (reg) {
		parse_hist(c, &w->lib_latency, get_obj(c, reg, "spawn_latency"));
		w->tracked_records = get_u64(c, reg, "tracked_records");
		w->tracker_bytes = get_u64(c, reg, "tracker_bytes");
	}
	parse_kfig(c, &w->k, get_obj(c, o, "kernel"));
	return parse_wtypes(c, w, get_array(c, o, "types"));
}

static int parse_workloads(struct ctx *c, const jnode *a)
{
	struct tt_model *m = c->m;
	size_t n = a ? a->count : 0;
	if (n > TT_MAX_WORKLOADS) {
		m->dropped_workloads += n - TT_MAX_WORKLOADS;
		n = TT_MAX_WORKLOADS;
	}
	if (!n)
		return 0;
	m->workloads = calloc(n, sizeof(*m->workloads));
	if (!m->workloads)
		return -ENOMEM;
	FOR_OBJECTS(c, a, o) {
		if (m->nworkloads == n)
			break;
		struct tt_workload *w = &m->workloads[m->nworkloads++];
		int rc = parse_workload(c, w, o);
		if (rc < 0)
			return rc;
		if (!w->pid) {   /* not a workload anyone can point at */
			free(w->types);
			memset(w, 0, sizeof(*w));
			m->nworkloads--;
			m->dropped_workloads++;
		}
	}
	return 0;
}

/* ---- tasks ---------------------------------------------------------------- */

/* pid → workload index, for the tasks: open addressing over a small table. */
struct pid_map {
	pid_t *pid;
	uint32_t *idx;
	size_t mask;
};

static int pid_map_build(struct pid_map *pm, const struct tt_model *m)
{
	size_t cap = 16;
	while (cap < m->nworkloads * 2)
		cap <<= 1;
	pm->pid = calloc(cap, sizeof(*pm->pid));
	pm->idx = calloc(cap, sizeof(*pm->idx));
	if (!pm->pid || !pm->idx)
		return -ENOMEM;
	pm->mask = cap - 1;
	for (size_t i = 0; i < m->nworkloads; i++) {
		size_t h = ((uint32_t)m->workloads[i].pid * 2654435761u) & pm->mask;
		while (pm->pid[h] && pm->pid[h] != m->workloads[i].pid)
			h = (h + 1) & pm->mask;
		if (!pm->pid[h]) {   /* a duplicate pid keeps its first (live) entry */
			pm->pid[h] = m->workloads[i].pid;
			pm->idx[h] = (uint32_t)i;
		}
	}
	return 0;
}

static size_t pid_map_find(const struct pid_map *pm, pid_t pid)
{
	for (size_t h = ((uint32_t)pid * 2654435761u) & pm->mask; pm->pid[h]; h = (h + 1) & pm->mask)
		if (pm->pid[h] == pid)
			return pm->idx[h];
	return SIZE_MAX;
}

static enum tt_state parse_state(struct ctx *c, const jnode *o)
{
	const jnode *v = get(c, o, "status");
	if (!v || v->type != TT_JSON_STRING) {
		if (v)
			c->m->bad_fields++;
		return TT_ST_UNKNOWN;
	}
	for (int i = 0; i < TT_ST_UNKNOWN; i++) {
		const char *name = tt_state_name((enum tt_state)i);
		if (strlen(name) == v->len && memcmp(name, v->v.s, v->len) == 0)
			return (enum tt_state)i;
	}
	return TT_ST_UNKNOWN;
}

static void parse_task_kernel(struct ctx *c, struct tt_task_kernel *k, const jnode *o)
{
	if (!o)
		return;
	k->present = true;
	k->started = get_bool(c, o, "started");
	k->ended = get_bool(c, o, "ended");
	k->exited = get_bool(c, o, "exited");
	k->crashed = get_bool(c, o, "crashed");
	k->partial = get_bool(c, o, "partial");
	const jnode *lat = get(c, o, "spawn_latency_ns");
	k->spawn_latency_known = lat && lat->type != TT_JSON_NULL;
	k->spawn_latency_ns = k->spawn_latency_known ? get_u64(c, o, "spawn_latency_ns") : 0;
	k->spawn_runq_ns = get_u64(c, o, "spawn_runq_ns");
	k->oncpu_ns = get_u64(c, o, "oncpu_ns");
	k->runq_ns = get_u64(c, o, "runq_ns");
	k->blocked_ns = get_u64(c, o, "blocked_ns");
	k->voluntary_switches = get_u64(c, o, "voluntary_switches");
	k->involuntary_switches = get_u64(c, o, "involuntary_switches");
	k->migrations = get_u64(c, o, "migrations");
	k->incarnations = get_u64(c, o, "incarnations");
}

/* "message": a string, or null; kept raw (the screens escape it), cut at
 * TT_MESSAGE_CAP - 1 bytes or at an embedded NUL. -ENOMEM only. */
static int parse_message(struct ctx *c, struct tt_task *t, const jnode *o)
{
	char buf[TT_MESSAGE_CAP];
	const jnode *v = get(c, o, "message");
	if (!v || v->type == TT_JSON_NULL)
		return 0;
	unsigned flags = get_str(c, o, "message", buf, sizeof(buf));
	if ((flags & TT_STR_BADTYPE) || !buf[0])
		return 0;
	t->panic_message = strdup(buf);
	return t->panic_message ? 0 : -ENOMEM;
}

/* "restart_history": the newest TT_RESTART_HIST_N entries, oldest first. */
static void parse_restart_history(struct ctx *c, struct tt_task *t, const jnode *a)
{
	if (!a)
		return;
	t->restart_delays_known = true;
	size_t objects = 0, i = 0;
	for (const jnode *e = tt_json_child(c->d, a); e; e = tt_json_next(c->d, e))
		objects += e->type == TT_JSON_OBJECT;
	size_t skip = objects > TT_RESTART_HIST_N ? objects - TT_RESTART_HIST_N : 0;
	FOR_OBJECTS(c, a, o) {
		if (i++ < skip || t->nrestart_delays == TT_RESTART_HIST_N)
			continue;
		t->restart_delays[t->nrestart_delays++] = (struct tt_restart_delay){
			.at_ns = get_u64(c, o, "at_ns"), .attempt = get_u64(c, o, "attempt"),
			.delay_ms = get_u64(c, o, "delay_ms") };
	}
}

static void task_times(struct tt_task *t, uint64_t now)
{
	uint64_t end = t->finished && t->end_ns ? t->end_ns : now;
	t->age_ns = t->spawn_ns && end > t->spawn_ns ? end - t->spawn_ns : 0;
	t->run_ns = t->start_ns && end > t->start_ns ? end - t->start_ns : 0;
}

static int parse_task(struct ctx *c, struct tt_task *t, const jnode *o)
{
	t->pid = (pid_t)get_i64(c, o, "pid", 1, INT32_MAX, 0);
	t->id = get_u64(c, o, "id");
	t->name.flags = get_str(c, o, "name", t->name.s, sizeof(t->name.s));
	t->type = (int)get_i64(c, o, "type", -1, INT32_MAX, -1);
	t->type_name.flags = get_str(c, o, "type_name", t->type_name.s, sizeof(t->type_name.s));
	t->state = parse_state(c, o);
	t->rc = (int)get_i64(c, o, "rc", INT32_MIN, INT32_MAX, 0);
	uint64_t r = get_u64(c, o, "restarts");
	t->restarts = r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
	uint64_t tid = get_u64(c, o, "tid");
	t->tid = tid > INT32_MAX ? 0 : (uint32_t)tid;
	t->spawn_ns = get_u64(c, o, "spawn_ns");
	t->start_ns = get_u64(c, o, "start_ns");
	t->end_ns = get_u64(c, o, "end_ns");
	t->finished = get_bool(c, o, "finished") || (t->state != TT_ST_RUNNING && t->state != TT_ST_UNKNOWN);
	t->pending = t->state == TT_ST_RUNNING && !t->start_ns;
	parse_task_kernel(c, &t->k, get_obj(c, o, "kernel"));
	parse_restart_history(c, t, get_array(c, o, "restart_history"));
	task_times(t, c->m->now_ns);
	return parse_message(c, t, o);
}

static int parse_tasks(struct ctx *c, const jnode *a)
{
	struct tt_model *m = c->m;
	size_t n = a ? a->count : 0;
	if (n > TT_MAX_TASKS) {
		m->dropped_tasks += n - TT_MAX_TASKS;
		n = TT_MAX_TASKS;
	}
	if (!n)
		return 0;
	struct pid_map pm = { 0 };
	m->tasks = calloc(n, sizeof(*m->tasks));
	if (!m->tasks || pid_map_build(&pm, m) < 0) {
		free(pm.pid);
		free(pm.idx);
		return -ENOMEM;
	}
	size_t seen = 0;
	FOR_OBJECTS(c, a, o) {
		if (seen++ == n)
			break;
		struct tt_task *t = &m->tasks[m->ntasks];
		int rc = parse_task(c, t, o);
		if (rc < 0 || !t->pid || !t->id) {   /* nothing could find it again */
			free(t->panic_message);
			memset(t, 0, sizeof(*t));
			if (rc < 0) {
				free(pm.pid);
				free(pm.idx);
				return rc;
			}
			m->dropped_tasks++;
			continue;
		}
		t->widx = pid_map_find(&pm, t->pid);
		m->ntasks++;
	}
	free(pm.pid);
	free(pm.idx);
	return 0;
}

/* ---- the document --------------------------------------------------------- */

/* Header latency: the kernel's machine-wide figure; without it, the
 * library's of the busiest workload (quantiles of several histograms cannot
 * be merged). */
static void header_latency(struct tt_model *m)
{
	if (m->machine_k.present && m->machine_k.spawn_latency.count) {
		m->header_latency = m->machine_k.spawn_latency;
		m->header_latency.buckets = NULL;
		m->header_latency_kernel = true;
		return;
	}
	const struct tt_workload *best = NULL;
	for (size_t i = 0; i < m->nworkloads; i++) {
		const struct tt_workload *w = &m->workloads[i];
		if (w->lib_latency.present && (!best || w->reg.c[TM_C_SPAWNED] > best->reg.c[TM_C_SPAWNED]))
			best = w;
	}
	if (best) {
		m->header_latency = best->lib_latency;
		m->header_latency.buckets = NULL;
	}
}

static int from_doc(struct tt_model *m, const struct tt_json *d, char *err, size_t errlen)
{
	struct ctx c = { .d = d, .m = m };
	const jnode *root = tt_json_root(d);
	if (!root || root->type != TT_JSON_OBJECT) {
		snprintf(err, errlen, "the snapshot is not a JSON object");
		return -EBADMSG;
	}
	const jnode *ver = get(&c, root, "version");
	if (ver && (ver->type != TT_JSON_INT || ver->big || ver->v.i != 1)) {
		snprintf(err, errlen, "the snapshot is not of version 1 (the only one this tasktop reads)");
		return -EBADMSG;
	}
	if (!ver)
		m->bad_fields++;
	m->snapshot_version = 1;
	m->now_ns = get_u64(&c, root, "now_ns");
	m->now_unix_ns = get_u64(&c, root, "now_unix_ns");
	m->filtered = get_bool(&c, root, "filtered");
	parse_collector(&c, &m->collector, get_obj(&c, root, "collector"));
	m->kernel_figures = m->collector.present;
	parse_machine(&c, get_obj(&c, root, "machine"));
	int rc = parse_mtypes(&c, get_array(&c, root, "types"));
	if (!rc)
		rc = parse_workloads(&c, get_array(&c, root, "workloads"));
	if (!rc)
		rc = parse_tasks(&c, get_array(&c, root, "tasks"));
	if (rc < 0) {
		snprintf(err, errlen, "out of memory reading the snapshot");
		return rc;
	}
	m->tasks_omitted = get_u64(&c, root, "tasks_omitted");
	header_latency(m);
	return 0;
}

int tt_snapshot_parse(struct tt_model *m, const char *json, size_t len, char *err, size_t errlen)
{
	struct tt_json d;
	int rc = tt_json_parse(&d, json, len, err, errlen);
	if (rc < 0)
		return rc == -E2BIG ? -EBADMSG : rc;
	rc = from_doc(m, &d, err, errlen);
	tt_json_free(&d);
	return rc;
}

int tt_snapshot_parse_owned(struct tt_model *m, char *buf, size_t len, char *err, size_t errlen)
{
	struct tt_json d;
	int rc = tt_json_parse_owned(&d, buf, len, err, errlen);
	if (rc < 0)
		return rc == -E2BIG ? -EBADMSG : rc;
	rc = from_doc(m, &d, err, errlen);
	tt_json_free(&d);
	return rc;
}

int tt_snapshot_from_json(struct tt_model *m, const json_t *root, char *err, size_t errlen)
{
	/* A record from the record reader: written back out and read as the
	 * socket's documents are, so that both go through the same checks. */
	size_t len = json_dumpb(root, NULL, 0, JSON_COMPACT);
	char *buf = len ? malloc(len + 1) : NULL;
	if (!buf) {
		snprintf(err, errlen, len ? "out of memory reading a record" : "the record is not a JSON object");
		return len ? -ENOMEM : -EBADMSG;
	}
	len = json_dumpb(root, buf, len, JSON_COMPACT);
	return tt_snapshot_parse_owned(m, buf, len, err, errlen);
}
