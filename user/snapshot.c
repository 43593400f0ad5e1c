/* The snapshot document (format in snapshot.h), written piece by piece: each
 * object is built with jansson and dumped at once, so that a snapshot of tens
 * of thousands of tasks never holds them all as JSON trees. */
#include "snapshot.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "taskmon.h"

struct out {
	char *p;
	size_t len, cap;
	bool oom;
};

static int out_put(const char *s, size_t n, void *ctx)
{
	struct out *o = ctx;
	if (o->oom)
		return -1;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < o->len + n + 1)
			cap *= 2;
		char *p = realloc(o->p, cap);
		if (!p) {
			o->oom = true;
			return -1;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	return 0;
}

static void raw(struct out *o, const char *s)
{
	out_put(s, strlen(s), o);
}

/* Dumps and releases j; NULL (a failed allocation) spoils the document. */
static void dump(struct out *o, json_t *j)
{
	if (!j || json_dump_callback(j, out_put, o, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
		o->oom = true;
	json_decref(j);
}

static json_t *u64(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static void set(json_t *obj, const char *key, json_t *v)
{
	json_object_set_new(obj, key, v);
}

static const char *const counter_names[TMD_C_COUNT] = {
	[TM_C_SPAWNED] = "spawned", [TM_C_RUNNING] = "running", [TM_C_SUCCEEDED] = "succeeded",
	[TM_C_FAILED] = "failed", [TM_C_PANICKED] = "panicked", [TM_C_CANCELLED] = "cancelled",
	[TM_C_TIMED_OUT] = "timed_out", [TM_C_RESTARTS] = "restarts", [TM_C_REJECTED] = "rejected",
	[TM_C_CRASHED] = "crashed", [TM_C_ESCALATIONS] = "escalations", [TMD_C_TRACE_SKIPPED] = "trace_skipped",
};

static json_t *counters_json(const uint64_t c[TMD_C_COUNT])
{
	json_t *j = json_object();
	for (int i = 0; i < TMD_C_COUNT; i++)
		set(j, counter_names[i], u64(c[i]));
	return j;
}

static json_t *hist_json(const struct tmd_hist *h)
{
	uint64_t n = h ? h->count : 0;
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "count", u64(n), "mean_ns", u64(n ? h->sum_ns / n : 0),
	                 "p50_ns", u64(tmd_hist_quantile(h, 0.50)), "p95_ns", u64(tmd_hist_quantile(h, 0.95)),
	                 "p99_ns", u64(tmd_hist_quantile(h, 0.99)), "max_ns", u64(h ? h->max_ns : 0));
}

static json_t *kfig_json(const struct tmd_kfig *k)
{
	json_t *j = json_object();
	set(j, "tasks_started", u64(k->started));
	set(j, "spawns_seen", u64(k->spawns_seen));
	set(j, "tasks_ended", u64(k->ended));
	set(j, "tasks_partial", u64(k->partial));
	set(j, "spawn_latency", hist_json(k->latency));
	set(j, "spawn_runq_ns", u64(k->spawn_runq_ns));
	set(j, "run_time", hist_json(k->run));
	set(j, "oncpu_ns", u64(k->oncpu_ns));
	set(j, "runq_ns", u64(k->runq_ns));
	set(j, "blocked_ns", u64(k->blocked_ns));
	set(j, "voluntary_switches", u64(k->nvcsw));
	set(j, "involuntary_switches", u64(k->nivcsw));
	set(j, "migrations", u64(k->migrations));
	set(j, "histograms_complete", json_boolean(!k->no_hist));
	return j;
}

static json_t *collector_json(const struct tmd_merge *m, const struct tmd_collector_info *ci, uint64_t now)
{
	struct tmd_merge_counters c;
	const struct tmd_merge_opts *mo = tmd_merge_options(m);
	tmd_merge_get_counters(m, &c);
	json_t *j = json_object();
	set(j, "pid", json_integer(ci->pid));
	set(j, "mode", json_string(ci->mode ? ci->mode : ""));
	set(j, "uptime_ns", u64(now - ci->started_ns));
	set(j, "events", u64(c.events));
	set(j, "lost", u64(ci->lost));
	set(j, "malformed", u64(c.malformed));
	set(j, "unattributed", u64(c.unattributed));
	set(j, "spawn_missed", u64(ci->spawn_missed));
	set(j, "watched", u64(ci->watched));
	set(j, "registrations", u64(ci->registrations));
	set(j, "registrations_refused", u64(ci->registrations_refused));
	set(j, "snapshots", u64(ci->snapshots));
	set(j, "clients", u64(ci->clients));
	set(j, "retention_s", json_real((double)mo->retention_ns / 1e9));
	set(j, "max_tasks", u64(mo->max_tasks));
	set(j, "max_tasks_total", u64(mo->max_tasks_total));
	set(j, "max_workloads", u64(mo->max_workloads));
	set(j, "tasks_kept", u64(c.tasks_kept));
	set(j, "tasks_dropped", u64(c.tasks_dropped));
	set(j, "tasks_evicted", u64(c.tasks_evicted));
	set(j, "tasks_expired", u64(c.tasks_expired));
	set(j, "workloads_live", u64(c.workloads_live));
	set(j, "workloads_dead", u64(c.workloads_dead));
	set(j, "workloads_refused", u64(c.workloads_refused));
	set(j, "workloads_dropped", u64(c.workloads_dropped));
	set(j, "segments_removed", u64(c.segments_removed));
	set(j, "hist_bytes", u64(c.hist_bytes));
	set(j, "hist_refused", u64(c.hist_refused));
	set(j, "memory_bytes", u64(c.memory_bytes));
	set(j, "socket", json_string(ci->socket ? ci->socket : ""));
	set(j, "state_dir", json_string(ci->state_dir ? ci->state_dir : ""));
	return j;
}

static json_t *machine_json(const struct tmd_merge *m)
{
	const struct tmd_machine *mc = tmd_merge_machine(m);
	struct tmd_merge_counters c;
	uint64_t counters[TMD_C_COUNT];
	tmd_merge_get_counters(m, &c);
	tmd_merge_machine_counters(m, counters);
	json_t *j = json_object();
	set(j, "workloads_seen", u64(mc->workloads_seen));
	set(j, "workloads_live", u64(c.workloads_live));
	set(j, "workloads_gone", u64(mc->workloads_gone));
	set(j, "registry", counters_json(counters));
	set(j, "kernel", kfig_json(&mc->k));
	return j;
}

static void write_types(struct out *o, const struct tmd_merge *m)
{
	const struct tmd_machine *mc = tmd_merge_machine(m);
	uint64_t counters[TMD_C_COUNT];
	raw(o, "[");
	for (size_t i = 0; i < mc->ntypes; i++) {
		tmd_merge_mtype_counters(m, i, counters);
		if (i)
			raw(o, ",");
		dump(o, json_pack("{s:s, s:o, s:o}", "name", mc->types[i].name, "registry", counters_json(counters),
		                  "kernel", kfig_json(&mc->types[i].k)));
	}
	raw(o, "]");
}

static bool type_shown(const struct tmd_wtype *t)
{
	if (t->name[0] || t->k.started || t->k.ended || t->k.partial)
		return true;
	for (int c = 0; c < TMD_C_COUNT; c++)
		if (t->counters[c])
			return true;
	return false;
}

static json_t *wtypes_json(const struct tmd_workload *w)
{
	json_t *a = json_array();
	for (unsigned id = 0; id < TM_MAX_TYPES; id++) {
		const struct tmd_wtype *t = &w->types[id];
		if (!type_shown(t))
			continue;
		json_t *reg = counters_json(t->counters);
		set(reg, "spawn_latency",
		    json_pack("{s:o, s:o, s:o, s:o, s:o}", "count", u64(t->lib_latency_count), "p50_ns", u64(t->lib_p50_ns),
		              "p95_ns", u64(t->lib_p95_ns), "p99_ns", u64(t->lib_p99_ns), "max_ns", u64(t->lib_max_ns)));
		json_array_append_new(a, json_pack("{s:i, s:s, s:o, s:o}", "id", (int)id, "name",
		                                   tmd_workload_type_name(w, id), "registry", reg, "kernel",
		                                   kfig_json(&t->k)));
	}
	return a;
}

static json_t *wregistry_json(const struct tmd_workload *w)
{
	uint64_t sum[TMD_C_COUNT] = { 0 };
	for (unsigned id = 0; id < TM_MAX_TYPES; id++)
		for (int c = 0; c < TMD_C_COUNT; c++)
			sum[c] += w->types[id].counters[c];
	json_t *j = counters_json(sum);
	const struct tm_stats *s = &w->stats;
	set(j, "spawn_latency", json_pack("{s:o, s:o, s:o, s:o}", "p50_ns", u64(s->spawn_latency_p50_ns), "p95_ns",
	                                  u64(s->spawn_latency_p95_ns), "p99_ns", u64(s->spawn_latency_p99_ns),
	                                  "max_ns", u64(s->spawn_latency_max_ns)));
	set(j, "tracked_records", u64(s->tracked_records));
	set(j, "tracker_bytes", u64(s->tracker_bytes));
	return j;
}

static json_t *workload_json(const struct tmd_workload *w)
{
	json_t *j = json_object();
	set(j, "pid", json_integer(w->pid));
	set(j, "comm", json_string(w->comm));
	set(j, "uid", json_integer(w->uid));
	set(j, "start_ticks", u64(w->start_ticks));
	set(j, "alive", json_boolean(w->alive));
	set(j, "has_registry", json_boolean(w->has_registry));
	set(j, "exited", json_boolean(w->exited));
	set(j, "exit", w->exited ? json_pack("{s:i, s:i, s:b}", "code", w->exit_code, "signal", w->exit_signal,
	                                     "core_dumped", w->core_dumped)
	                         : json_null());
	set(j, "segment_removed", json_boolean(w->segment_removed));
	set(j, "seen_ns", u64(w->seen_ns));
	set(j, "gone_ns", u64(w->gone_ns));
	set(j, "crashes", u64(w->crashes));
	set(j, "kills", u64(w->kills));
	set(j, "restarts", u64(w->restarts));
	set(j, "giveups", u64(w->giveups));
	set(j, "invalid_records", u64(w->invalid_records));
	set(j, "registry_errors", u64(w->registry_errors));
	set(j, "tasks_kept", u64(w->task_count));
	set(j, "tasks_dropped", u64(w->tasks_dropped));
	set(j, "untyped_events", u64(w->untyped_events));
	set(j, "registry", wregistry_json(w));
	set(j, "kernel", kfig_json(&w->k));
	set(j, "types", wtypes_json(w));
	return j;
}

static json_t *restart_history_json(const struct tmd_task_extra *x)
{
	json_t *a = json_array();
	for (unsigned i = 0; x && i < x->nrestarts && i < TMD_RESTART_HIST; i++)
		json_array_append_new(a, json_pack("{s:o, s:o, s:o}", "at_ns", u64(x->restarts[i].at_ns), "attempt",
		                                   u64(x->restarts[i].attempt), "delay_ms", u64(x->restarts[i].delay_ms)));
	return a;
}

/* The registry's word, except for a task its process took down with it: the
 * library never wrote its end, so "running" would be a lie. A crash signal on
 * its thread makes it crashed; otherwise (kill -9, exit) its end is unknown. */
static const char *task_status(const struct tmd_task *t)
{
	bool known = t->status >= 0 && t->status < TM_STATUS_COUNT;
	bool closed_out = (t->flags & TMD_T_FINISHED) && (!known || t->status == TM_RUNNING);
	if (closed_out)
		return t->flags & TMD_T_CRASHED ? tm_status_name(TM_CRASHED) : "unknown";
	return known ? tm_status_name((enum tm_status)t->status) : "unknown";
}

static json_t *task_json(const struct tmd_workload *w, const struct tmd_task *t)
{
	json_t *k = json_object();
	set(k, "started", json_boolean(t->flags & TMD_T_KSTART));
	set(k, "spawn_latency_ns", t->flags & TMD_T_LATENCY ? u64(t->latency_ns) : json_null());
	set(k, "spawn_runq_ns", u64(t->spawn_runq_ns));
	set(k, "ended", json_boolean(t->flags & TMD_T_KEND));
	set(k, "oncpu_ns", u64(t->oncpu_ns));
	set(k, "runq_ns", u64(t->runq_ns));
	set(k, "blocked_ns", u64(t->blocked_ns));
	set(k, "voluntary_switches", u64(t->nvcsw));
	set(k, "involuntary_switches", u64(t->nivcsw));
	set(k, "migrations", u64(t->migrations));
	set(k, "incarnations", u64(t->incarnations));
	set(k, "exited", json_boolean(t->flags & TMD_T_EXITED));
	set(k, "crashed", json_boolean(t->flags & TMD_T_CRASHED));
	set(k, "partial", json_boolean(t->flags & TMD_T_PARTIAL));
	json_t *j = json_object();
	set(j, "pid", json_integer(w->pid));
	set(j, "id", u64(t->id));
	set(j, "name", json_string(t->name));
	set(j, "type", json_integer(t->type == TMD_TYPE_UNKNOWN ? -1 : t->type));
	set(j, "type_name", json_string(t->type == TMD_TYPE_UNKNOWN ? "" : tmd_workload_type_name(w, t->type)));
	set(j, "status", json_string(task_status(t)));
	set(j, "rc", json_integer(t->rc));
	set(j, "restarts", u64(t->restarts));
	set(j, "tid", u64(t->tid));
	set(j, "spawn_ns", u64(t->spawn_ns));
	set(j, "start_ns", u64(t->start_ns));
	/* Closed out with no end from the registry or the kernel: when it was seen finished. */
	set(j, "end_ns", u64(t->end_ns ? t->end_ns : (t->flags & TMD_T_FINISHED) ? t->done_at : 0));
	set(j, "finished", json_boolean(t->flags & TMD_T_FINISHED));
	set(j, "message", t->extra && t->extra->message ? json_string(t->extra->message) : json_null());
	set(j, "restart_history", restart_history_json(t->extra));
	set(j, "kernel", k);
	return j;
}

static bool visible(const struct tmd_workload *w, const struct tmd_snapshot_opts *o)
{
	return o->all_workloads || w->uid == o->uid;
}

struct task_writer {
	struct out *o;
	uint64_t left, omitted;
	bool first;
};

static void put_task(struct task_writer *tw, const struct tmd_workload *w, const struct tmd_task *t)
{
	if (!tw->left) {
		tw->omitted++;
		return;
	}
	tw->left--;
	if (!tw->first)
		raw(tw->o, ",");
	tw->first = false;
	dump(tw->o, task_json(w, t));
}

/* Running (or not yet known to be finished) first, then the finished ones newest first. */
static void write_tasks(struct task_writer *tw, const struct tmd_workload *w)
{
	for (uint32_t s = 0; s < w->task_cap; s++)
		if (w->tasks[s].id && !(w->tasks[s].flags & TMD_T_FINISHED))
			put_task(tw, w, &w->tasks[s]);
	for (uint32_t s = w->fin_tail; s; s = w->tasks[s - 1].prev)
		put_task(tw, w, &w->tasks[s - 1]);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

char *tmd_snapshot_json(const struct tmd_merge *m, const struct tmd_collector_info *ci,
                        const struct tmd_snapshot_opts *opts, uint64_t now, size_t *len)
{
	struct tmd_snapshot_opts so = { .sz = sizeof(so) };
	if (opts)
		memcpy(&so, opts, opts->sz < sizeof(so) ? opts->sz : sizeof(so));
	struct out o = { 0 };
	size_t n = tmd_merge_workload_count(m);
	raw(&o, "{\"version\":1,\"now_ns\":");
	dump(&o, u64(now));
	raw(&o, ",\"now_unix_ns\":");
	dump(&o, u64(realtime_ns()));
	raw(&o, so.all_workloads ? ",\"filtered\":false" : ",\"filtered\":true");
	raw(&o, ",\"collector\":");
	dump(&o, collector_json(m, ci, now));
	raw(&o, ",\"machine\":");
	dump(&o, machine_json(m));
	raw(&o, ",\"types\":");
	write_types(&o, m);
	raw(&o, ",\"workloads\":[");
	for (size_t i = 0, shown = 0; i < n; i++) {
		const struct tmd_workload *w = tmd_merge_workload_at(m, i);
		if (!visible(w, &so))
			continue;
		if (shown++)
			raw(&o, ",");
		dump(&o, workload_json(w));
	}
	raw(&o, "],\"tasks\":[");
	struct task_writer tw = { .o = &o, .first = true,
	                          .left = so.no_tasks ? 0 : so.max_tasks ? so.max_tasks : TMD_SNAPSHOT_TASKS_DEFAULT };
	for (size_t i = 0; i < n && !so.no_tasks; i++) {
		const struct tmd_workload *w = tmd_merge_workload_at(m, i);
		if (visible(w, &so))
			write_tasks(&tw, w);
	}
	raw(&o, "],\"tasks_omitted\":");
	dump(&o, u64(tw.omitted));
	raw(&o, "}\n");
	if (o.oom) {
		free(o.p);
		errno = ENOMEM;
		return NULL;
	}
	*len = o.len;
	return o.p;
}
