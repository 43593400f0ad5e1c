/* The rows of taskmon dump: which fields there are, where each is found in
 * a record, and how each maps to OpenMetrics. Records are hostile: a value
 * of the wrong JSON type, or a negative number, is null. */
#include "dump_row.h"

#include <string.h>
#include <time.h>

enum how {
	X_TIME, X_TIME_NS, X_SEQ, X_PID, X_COMM, X_TYPE,
	X_REG,      /* type.registry.k1 */
	X_KERN,     /* type.kernel.k1 */
	X_KHIST,    /* type.kernel.k1.k2 */
	X_PROC,     /* record.processes[pid].k1 */
	X_COLL,     /* record.collector.k1 */
	X_SNAP,     /* the snapshot's collector.k1 */
};

#define NS 1e-9
#define LABEL(n, h) { n, DL_LABEL, DK_NONE, NULL, NULL, 1, NULL, h, NULL, NULL }
#define REG(n, kind, om, help) { n, DL_ROW, kind, om, NULL, 1, help, X_REG, n, NULL }
#define KHIST(n, hist, q, om, help) { n, DL_ROW, DK_GAUGE, om, "seconds", NS, help, X_KHIST, hist, q }

const struct dump_field dump_fields[DUMP_FIELD_COUNT] = {
	LABEL("time", X_TIME),
	LABEL("time_unix_ns", X_TIME_NS),
	LABEL("seq", X_SEQ),
	LABEL("pid", X_PID),
	LABEL("workload", X_COMM),
	LABEL("type", X_TYPE),
	REG("spawned", DK_COUNTER, "taskmon_tasks_spawned", "Tasks spawned."),
	REG("running", DK_GAUGE, "taskmon_tasks_running", "Tasks running."),
	REG("succeeded", DK_COUNTER, "taskmon_tasks_succeeded", "Tasks that returned 0."),
	REG("failed", DK_COUNTER, "taskmon_tasks_failed", "Tasks that returned non-zero."),
	REG("panicked", DK_COUNTER, "taskmon_tasks_panicked", "Tasks that called tm_panic."),
	REG("cancelled", DK_COUNTER, "taskmon_tasks_cancelled", "Tasks cancelled."),
	REG("timed_out", DK_COUNTER, "taskmon_tasks_timed_out", "Tasks past their deadline."),
	REG("restarts", DK_COUNTER, "taskmon_task_restarts", "Critical task restarts."),
	REG("rejected", DK_COUNTER, "taskmon_tasks_rejected", "Spawns refused by a limit."),
	REG("crashed", DK_COUNTER, "taskmon_tasks_crashed", "Tasks ended by a contained fault."),
	REG("escalations", DK_COUNTER, "taskmon_task_escalations", "Supervisors that gave up."),
	{ "started", DL_ROW, DK_COUNTER, "taskmon_task_starts", NULL, 1, "Task start events seen by the kernel.",
	  X_KERN, "tasks_started", NULL },
	{ "ended", DL_ROW, DK_COUNTER, "taskmon_task_ends", NULL, 1, "Task end events seen by the kernel.", X_KERN,
	  "tasks_ended", NULL },
	{ "spawn_latency_count", DL_ROW, DK_COUNTER, "taskmon_spawn_latency_observations", NULL, 1,
	  "Spawn latencies measured.", X_KHIST, "spawn_latency", "count" },
	KHIST("spawn_latency_p50_ns", "spawn_latency", "p50_ns", "taskmon_spawn_latency_p50_seconds",
	      "Median spawn latency (task_spawn to task_start)."),
	KHIST("spawn_latency_p95_ns", "spawn_latency", "p95_ns", "taskmon_spawn_latency_p95_seconds",
	      "95th percentile spawn latency."),
	KHIST("spawn_latency_p99_ns", "spawn_latency", "p99_ns", "taskmon_spawn_latency_p99_seconds",
	      "99th percentile spawn latency."),
	KHIST("spawn_latency_max_ns", "spawn_latency", "max_ns", "taskmon_spawn_latency_max_seconds",
	      "Longest spawn latency."),
	KHIST("run_time_p50_ns", "run_time", "p50_ns", "taskmon_task_run_time_p50_seconds",
	      "Median on-CPU time per ended task."),
	KHIST("run_time_p99_ns", "run_time", "p99_ns", "taskmon_task_run_time_p99_seconds",
	      "99th percentile on-CPU time per ended task."),
	{ "oncpu_ns", DL_ROW, DK_COUNTER, "taskmon_task_oncpu_seconds", "seconds", NS,
	  "On-CPU time of ended tasks.", X_KERN, "oncpu_ns", NULL },
	{ "runq_ns", DL_ROW, DK_COUNTER, "taskmon_task_runq_wait_seconds", "seconds", NS,
	  "Run-queue wait of ended tasks.", X_KERN, "runq_ns", NULL },
	{ "blocked_ns", DL_ROW, DK_COUNTER, "taskmon_task_blocked_seconds", "seconds", NS,
	  "Blocked time of ended tasks.", X_KERN, "blocked_ns", NULL },
	{ "rss_bytes", DL_PROC, DK_GAUGE, "taskmon_process_resident_memory_bytes", "bytes", 1,
	  "Resident memory of the process.", X_PROC, "rss_bytes", NULL },
	{ "threads", DL_PROC, DK_GAUGE, "taskmon_process_threads", NULL, 1, "Threads of the process.", X_PROC,
	  "threads", NULL },
	{ "cpu_ns", DL_PROC, DK_COUNTER, "taskmon_process_cpu_seconds", "seconds", NS,
	  "User and system CPU time of the process.", X_PROC, "cpu_ns", NULL },
	{ "collector_rss_bytes", DL_REC, DK_GAUGE, "taskmon_collector_resident_memory_bytes", "bytes", 1,
	  "Resident memory of taskmond.", X_COLL, "rss_bytes", NULL },
	{ "collector_cpu_ns", DL_REC, DK_COUNTER, "taskmon_collector_cpu_seconds", "seconds", NS,
	  "User and system CPU time of taskmond.", X_COLL, "cpu_ns", NULL },
	{ "collector_events_lost", DL_REC, DK_COUNTER, "taskmon_collector_events_lost", NULL, 1,
	  "Kernel events the ring buffer could not take.", X_SNAP, "lost", NULL },
};

int dump_field_index(const char *name)
{
	for (int i = 0; i < DUMP_FIELD_COUNT; i++)
		if (strcmp(dump_fields[i].name, name) == 0)
			return i;
	return -1;
}

void dump_fields_list(FILE *f, const char *indent)
{
	size_t col = 0;
	for (int i = 0; i < DUMP_FIELD_COUNT; i++) {
		size_t len = strlen(dump_fields[i].name) + 1;
		if (indent && (col == 0 || col + len > 78)) {
			fprintf(f, "%s%s", col ? "\n" : "", indent);
			col = strlen(indent);
		} else if (i) {
			fputc(' ', f);
			col++;
		}
		col += (size_t)fprintf(f, "%s%s", dump_fields[i].name, i + 1 < DUMP_FIELD_COUNT ? "," : "");
	}
	fputc('\n', f);
}

/* ---- a record's rows ------------------------------------------------------------------------- */

static json_t *path(json_t *o, const char *k1, const char *k2)
{
	json_t *v = k1 ? json_object_get(o, k1) : o;
	return k2 ? json_object_get(v, k2) : v;
}

static void set_num(struct dump_val *v, json_t *j)
{
	if (json_is_integer(j) && json_integer_value(j) >= 0) {
		v->num = (long long)json_integer_value(j);
		v->null = false;
	}
}

static void set_str(struct dump_val *v, json_t *j)
{
	if (json_is_string(j)) {
		v->str = json_string_value(j);
		v->null = false;
	}
}

static json_t *process_of(json_t *processes, json_t *pid)
{
	size_t i;
	json_t *p;
	if (!json_is_integer(pid))
		return NULL;
	json_array_foreach(processes, i, p)
		if (json_equal(json_object_get(p, "pid"), pid))
			return p;
	return NULL;
}

/* Types nobody used are left out: eight built-in types per workload would
 * otherwise fill the dump with zeros. */
static bool active(json_t *type)
{
	static const char *const reg[] = { "spawned", "rejected", "running" };
	static const char *const kern[] = { "tasks_started", "tasks_ended", "tasks_partial" };
	for (size_t i = 0; i < 3; i++) {
		json_t *a = path(type, "registry", reg[i]), *b = path(type, "kernel", kern[i]);
		if ((json_is_integer(a) && json_integer_value(a) > 0) || (json_is_integer(b) && json_integer_value(b) > 0))
			return true;
	}
	return false;
}

static void fill(struct dump_row *row, const struct dump_cursor *c, json_t *w, json_t *t, json_t *proc)
{
	json_t *record = json_object_get(c->rec, "record");
	for (int i = 0; i < DUMP_FIELD_COUNT; i++) {
		const struct dump_field *f = &dump_fields[i];
		struct dump_val *v = &row->v[i];
		*v = (struct dump_val){ .null = true };
		switch ((enum how)f->how) {
		case X_TIME: v->str = row->time; v->null = false; break;
		case X_TIME_NS: v->num = (long long)c->time; v->null = false; break;
		case X_SEQ: set_num(v, json_object_get(record, "seq")); break;
		case X_PID: set_num(v, json_object_get(w, "pid")); break;
		case X_COMM: set_str(v, json_object_get(w, "comm")); break;
		case X_TYPE:
			set_str(v, json_object_get(t, "name"));
			if (v->null || !*v->str) {   /* a type without a name: its id */
				json_t *id = json_object_get(t, "id");
				snprintf(row->type_id, sizeof(row->type_id), "%lld",
				         json_is_integer(id) ? (long long)json_integer_value(id) : -1LL);
				v->str = row->type_id;
				v->null = false;
			}
			break;
		case X_REG: set_num(v, path(t, "registry", f->k1)); break;
		case X_KERN: set_num(v, path(t, "kernel", f->k1)); break;
		case X_KHIST: set_num(v, path(path(t, "kernel", f->k1), f->k2, NULL)); break;
		case X_PROC: set_num(v, json_object_get(proc, f->k1)); break;
		case X_COLL: set_num(v, path(record, "collector", f->k1)); break;
		case X_SNAP: set_num(v, path(c->rec, "collector", f->k1)); break;
		}
	}
}

void dump_cursor_init(struct dump_cursor *c, json_t *rec, uint64_t time_unix_ns)
{
	memset(c, 0, sizeof(*c));
	c->rec = rec;
	c->time = time_unix_ns;
	c->workloads = json_object_get(rec, "workloads");
	c->processes = path(rec, "record", "processes");
}

bool dump_cursor_next(struct dump_cursor *c, struct dump_row *row)
{
	for (; c->wi < json_array_size(c->workloads); c->wi++, c->ti = 0) {
		json_t *w = json_array_get(c->workloads, c->wi);
		json_t *types = json_object_get(w, "types");
		while (c->ti < json_array_size(types)) {
			json_t *t = json_array_get(types, c->ti++);
			if (!json_is_object(t) || !active(t))
				continue;
			time_t s = (time_t)(c->time / 1000000000ull);
			struct tm tm;
			gmtime_r(&s, &tm);
			size_t n = strftime(row->time, sizeof(row->time), "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(row->time + n, sizeof(row->time) - n, ".%03uZ",
			         (unsigned)(c->time % 1000000000ull / 1000000));
			fill(row, c, w, t, process_of(c->processes, json_object_get(w, "pid")));
			return true;
		}
	}
	return false;
}
