/* Tracker stats (user/merge.c) and the snapshot document (user/snapshot.c),
 * fed with synthetic kernel events and real registries: this process's own
 * and the integration workload's. Unprivileged: no BPF is loaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "integration/bpf_test.h"
#include "test_util.h"
#include "merge.h"
#include "snapshot.h"
#include "taskmon.h"
#include "taskmon_shm.h"

#define SEC 1000000000ull

static struct tm_ev_task_start mk_start(pid_t pid, uint64_t id, unsigned type, const char *name, uint64_t latency,
                                        uint64_t runq)
{
	struct tm_ev_task_start e;
	memset(&e, 0, sizeof(e));
	e.h = (struct tm_ev_hdr){ .ts_ns = bt_now_ns(), .task_id = id, .kind = TM_EV_TASK_START, .pid = (__u32)pid,
	                          .tid = (__u32)pid };
	e.spawn_ns = e.h.ts_ns - latency;
	e.latency_ns = latency;
	e.runq_ns = runq;
	e.type = type;
	snprintf(e.name, sizeof(e.name), "%s", name);
	return e;
}

static struct tm_ev_task_end mk_end(pid_t pid, uint64_t id, uint64_t oncpu, int status, uint32_t flags)
{
	struct tm_ev_task_end e;
	memset(&e, 0, sizeof(e));
	e.h = (struct tm_ev_hdr){ .ts_ns = bt_now_ns(), .task_id = id, .kind = TM_EV_TASK_END, .pid = (__u32)pid,
	                          .tid = (__u32)pid };
	e.oncpu_ns = oncpu;
	e.runq_ns = 50;
	e.blocked_ns = 20;
	e.nvcsw = 2;
	e.nivcsw = 1;
	e.migrations = 1;
	e.status = status;
	e.flags = flags;
	return e;
}

static void feed(struct tmd_merge *m, const void *ev, size_t len, uint64_t now)
{
	assert_int_equal(tmd_merge_event(m, ev, len, now), 0);
}

static void near(uint64_t got, uint64_t want, double rel)
{
	double d = (double)got - (double)want;
	if (d < 0)
		d = -d;
	if (d > rel * (double)want)
		fail_msg("%llu is not within %.1f%% of %llu", (unsigned long long)got, rel * 100, (unsigned long long)want);
}

static int find_mtype(const struct tmd_machine *mc, const char *name)
{
	for (size_t i = 0; i < mc->ntypes; i++)
		if (strcmp(mc->types[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void test_kernel_figures(void **state)
{
	(void)state;
	struct tmd_merge *m;
	pid_t me = getpid();
	uint64_t now = bt_now_ns();
	assert_int_equal(tmd_merge_new(&m, NULL), 0);
	for (uint64_t i = 0; i < 100; i++) {
		struct tm_ev_task_start s = mk_start(me, i + 1, TM_NETWORK, "fetch", 1000 * (i + 1), 100);
		struct tm_ev_task_end e = mk_end(me, i + 1, 10000 * (i + 1), TM_SUCCEEDED, 0);
		feed(m, &s, sizeof(s), now);
		feed(m, &e, sizeof(e), now);
	}
	const struct tmd_workload *w = tmd_merge_find_workload(m, me);
	assert_non_null(w);
	assert_true(w->alive);
	assert_false(w->has_registry);   /* this process has no registry yet */
	assert_int_equal(w->k.started, 100);
	assert_int_equal(w->k.spawns_seen, 100);
	assert_int_equal(w->k.ended, 100);
	assert_int_equal(w->k.oncpu_ns, 10000ull * 5050);
	assert_int_equal(w->k.spawn_runq_ns, 100 * 100);
	assert_int_equal(w->k.nvcsw, 200);
	const struct tmd_kfig *k = &w->types[TM_NETWORK].k;
	assert_int_equal(k->started, 100);
	assert_int_equal(k->ended, 100);
	near(tmd_hist_quantile(k->latency, 0.50), 50000, 0.02);
	near(tmd_hist_quantile(k->latency, 0.99), 99000, 0.02);
	near(tmd_hist_quantile(k->latency, 1.0), 100000, 0.02);
	assert_int_equal(k->latency->max_ns, 100000);
	near(tmd_hist_quantile(k->run, 0.95), 950000, 0.02);
	/* Machine-wide, under the built-in name. */
	const struct tmd_machine *mc = tmd_merge_machine(m);
	int mt = find_mtype(mc, "network");
	assert_true(mt >= 0);
	assert_int_equal(mc->types[mt].k.started, 100);
	assert_int_equal(mc->k.ended, 100);
	/* Per task. */
	const struct tmd_task *t = tmd_merge_find_task(m, me, 7);
	assert_non_null(t);
	assert_string_equal(t->name, "fetch");
	assert_int_equal(t->type, TM_NETWORK);
	assert_int_equal(t->status, TM_SUCCEEDED);
	assert_int_equal(t->latency_ns, 7000);
	assert_int_equal(t->oncpu_ns, 70000);
	assert_true(t->flags & TMD_T_FINISHED);
	assert_true(t->flags & TMD_T_LATENCY);
	tmd_merge_free(m);
}

static void test_hostile_events(void **state)
{
	(void)state;
	struct tmd_merge *m;
	struct tmd_merge_counters c;
	pid_t me = getpid();
	uint64_t now = bt_now_ns();
	assert_int_equal(tmd_merge_new(&m, NULL), 0);
	struct tm_ev_task_start s = mk_start(me, 1, 99, "x", 5000, 0);   /* type out of range */
	memcpy(s.name, "\x01\xff" "abc", 6);
	feed(m, &s, sizeof(s), now);
	s = mk_start(me, 0, TM_GENERAL, "zero", 5000, 0);                /* task id 0: no record */
	feed(m, &s, sizeof(s), now);
	s = mk_start(me, 2, TM_GENERAL, "late", 0, 0);
	s.flags = TM_EVF_NO_SPAWN;
	feed(m, &s, sizeof(s), now);
	memset(s.name, 'A', sizeof(s.name));                              /* no NUL at all */
	s.h.task_id = 3;
	s.flags = 0;
	feed(m, &s, sizeof(s), now);
	struct tm_ev_task_end e = mk_end(me, 2, 0, -1, TM_EVF_THREAD_EXIT);
	feed(m, &e, sizeof(e), now);
	e = mk_end(me, 4, 0, TM_FAILED, TM_EVF_PARTIAL);
	feed(m, &e, sizeof(e), now);
	assert_int_equal(tmd_merge_event(m, &s, 8, now), -EBADMSG);     /* shorter than a header */
	assert_int_equal(tmd_merge_event(m, &s, sizeof(struct tm_ev_hdr), now), -EBADMSG);   /* shorter than its kind */
	s.h.kind = 77;
	assert_int_equal(tmd_merge_event(m, &s, sizeof(s), now), -EBADMSG);
	s.h.kind = TM_EV_TASK_START;
	s.h.pid = 0;   /* no such workload */
	feed(m, &s, sizeof(s), now);

	tmd_merge_get_counters(m, &c);
	assert_int_equal(c.malformed, 3);
	assert_int_equal(c.unattributed, 1);
	const struct tmd_workload *w = tmd_merge_find_workload(m, me);
	assert_int_equal(w->k.started, 4);
	assert_int_equal(w->k.spawns_seen, 3);
	assert_int_equal(w->k.partial, 1);
	assert_true(w->untyped_events >= 1);
	const struct tmd_task *t = tmd_merge_find_task(m, me, 1);
	assert_string_equal(t->name, "??abc");
	assert_int_equal(t->type, TMD_TYPE_UNKNOWN);
	assert_null(tmd_merge_find_task(m, me, 0));
	t = tmd_merge_find_task(m, me, 2);
	assert_false(t->flags & TMD_T_LATENCY);
	assert_true(t->flags & TMD_T_EXITED);
	assert_int_equal(t->status, TMD_STATUS_UNKNOWN);
	t = tmd_merge_find_task(m, me, 3);
	assert_int_equal(strlen(t->name), TM_NAME_MAX - 1);
	t = tmd_merge_find_task(m, me, 4);
	assert_true(t->flags & TMD_T_PARTIAL);
	assert_int_equal(tmd_merge_machine(m)->k.started, 5);
	tmd_merge_free(m);
}

static void test_bounds_and_retention(void **state)
{
	(void)state;
	struct tmd_merge *m;
	struct tmd_merge_counters c;
	pid_t me = getpid(), gone[4];
	uint64_t now = bt_now_ns(), id = 1;
	assert_int_equal(tmd_merge_new(&m, TMD_MERGE_OPTS(.retention_ns = SEC, .max_tasks = 64,
	                                                  .hist_bytes = 3 * sizeof(struct tmd_hist))), 0);
	/* 1000 finished tasks: the oldest make room for the newest. */
	for (; id <= 1000; id++) {
		struct tm_ev_task_start s = mk_start(me, id, TM_DATABASE, "q", 1000, 0);
		struct tm_ev_task_end e = mk_end(me, id, 1000, TM_SUCCEEDED, 0);
		feed(m, &s, sizeof(s), now);
		feed(m, &e, sizeof(e), now);
	}
	tmd_merge_get_counters(m, &c);
	assert_int_equal(c.tasks_kept, 64);
	assert_int_equal(c.tasks_evicted, 1000 - 64);
	assert_null(tmd_merge_find_task(m, me, 1));
	assert_non_null(tmd_merge_find_task(m, me, 1000));
	/* Running tasks are never evicted: past the bound new ones are not kept. */
	for (; id <= 1100; id++) {
		struct tm_ev_task_start s = mk_start(me, id, TM_DATABASE, "r", 1000, 0);
		feed(m, &s, sizeof(s), now);
	}
	tmd_merge_get_counters(m, &c);
	assert_int_equal(c.tasks_kept, 64);
	assert_int_equal(c.tasks_dropped, 100 - 64);
	const struct tmd_workload *w = tmd_merge_find_workload(m, me);
	assert_int_equal(w->k.started, 1100);   /* totals count every task */
	assert_int_equal(w->k.ended, 1000);
	/* The histogram budget: three granted (machine and workload), the rest refused. */
	assert_int_equal(c.hist_bytes, 3 * sizeof(struct tmd_hist));
	assert_true(c.hist_refused > 0);
	assert_true(w->types[TM_DATABASE].k.no_hist);
	tmd_merge_free(m);

	/* Retention: finished tasks go after it, at most a batch per tick; totals stay. */
	assert_int_equal(tmd_merge_new(&m, TMD_MERGE_OPTS(.retention_ns = SEC, .max_tasks = 2000)), 0);
	for (id = 1; id <= 600; id++) {
		struct tm_ev_task_start s = mk_start(me, id, TM_UI, "u", 1000, 0);
		struct tm_ev_task_end e = mk_end(me, id, 1000, TM_SUCCEEDED, 0);
		feed(m, &s, sizeof(s), now);
		feed(m, &e, sizeof(e), now);
	}
	struct tm_ev_task_start run = mk_start(me, 601, TM_UI, "running", 1000, 0);
	feed(m, &run, sizeof(run), now);
	assert_int_equal(tmd_merge_tick(m, now + SEC / 2, gone, 4), 0);
	tmd_merge_get_counters(m, &c);
	assert_int_equal(c.tasks_kept, 601);
	tmd_merge_tick(m, now + 2 * SEC, gone, 4);
	tmd_merge_get_counters(m, &c);
	assert_true(c.tasks_expired > 0 && c.tasks_expired < 600);
	tmd_merge_tick(m, now + 2 * SEC, gone, 4);
	tmd_merge_get_counters(m, &c);
	assert_int_equal(c.tasks_expired, 600);
	assert_int_equal(c.tasks_kept, 1);
	assert_non_null(tmd_merge_find_task(m, me, 601));
	w = tmd_merge_find_workload(m, me);
	assert_int_equal(w->k.ended, 600);
	assert_int_equal(w->task_count, 1);
	print_message("merge memory with one task kept: %llu bytes\n", (unsigned long long)c.memory_bytes);
	tmd_merge_free(m);
}

static int quick(void *arg)
{
	(void)arg;
	return 0;
}

static void spawn_join(const char *name, int type, int n)
{
	for (int i = 0; i < n; i++) {
		tm_task *t;
		assert_int_equal(tm_spawn(&t, name, quick, NULL, TM_SPAWN_OPTS(.type = type)), 0);
		assert_int_equal(tm_join(t, -1, NULL, NULL), 0);
	}
}

/* This process's own registry: names and statuses from it, kernel figures
 * merged into the same records; a second registry after tm_shutdown and
 * tm_init keeps the first one's counters in the machine-wide totals. */
static void test_registry(void **state)
{
	(void)state;
	struct tmd_merge *m;
	uint64_t counters[TMD_C_COUNT];
	pid_t me = getpid();
	assert_int_equal(tm_init(NULL), 0);
	spawn_join("reader", TM_DATABASE, 3);
	assert_int_equal(tmd_merge_new(&m, NULL), 0);
	assert_int_equal(tmd_merge_add(m, me, bt_now_ns()), 0);
	const struct tmd_workload *w = tmd_merge_find_workload(m, me);
	assert_true(w->has_registry);
	assert_string_equal(w->types[TM_DATABASE].name, "database");
	assert_int_equal(w->types[TM_DATABASE].counters[TM_C_SPAWNED], 3);
	assert_int_equal(w->types[TM_DATABASE].counters[TM_C_SUCCEEDED], 3);
	assert_int_equal(w->stats.total_spawned, 3);
	assert_int_equal(w->task_count, 3);
	const struct tmd_task *t = NULL;
	for (uint32_t s = 0; s < w->task_cap && !t; s++)
		if (w->tasks[s].id)
			t = &w->tasks[s];
	assert_non_null(t);
	uint64_t id = t->id;
	assert_string_equal(t->name, "reader");
	assert_int_equal(t->status, TM_SUCCEEDED);
	assert_true(t->flags & TMD_T_REGISTRY);
	assert_true(t->flags & TMD_T_FINISHED);
	struct tm_ev_task_start s = mk_start(me, id, TM_DATABASE, "reader", 4242, 0);
	assert_int_equal(tmd_merge_event(m, &s, sizeof(s), bt_now_ns()), 0);
	t = tmd_merge_find_task(m, me, id);
	assert_int_equal(t->latency_ns, 4242);
	assert_true(t->flags & TMD_T_REGISTRY);
	assert_int_equal(w->task_count, 3);   /* the same record, not a new one */

	tm_shutdown();
	assert_int_equal(tm_init(NULL), 0);
	spawn_join("writer", TM_DATABASE, 2);
	tmd_merge_refresh(m, bt_now_ns(), 0);
	tmd_merge_machine_counters(m, counters);
	assert_int_equal(counters[TM_C_SPAWNED], 5);
	assert_int_equal(w->types[TM_DATABASE].counters[TM_C_SPAWNED], 2);
	int mt = find_mtype(tmd_merge_machine(m), "database");
	assert_true(mt >= 0);
	tmd_merge_mtype_counters(m, (size_t)mt, counters);
	assert_int_equal(counters[TM_C_SPAWNED], 5);
	tm_shutdown();
	tmd_merge_free(m);
}

static int panics(void *arg)
{
	tm_panic("disk on fire: %s\n(errno 28)", (const char *)arg);
}

static json_t *snapshot_task(json_t *snap, uint64_t id)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(snap, "tasks"), i, t)
		if ((uint64_t)json_integer_value(json_object_get(t, "id")) == id)
			return t;
	return NULL;
}

/* Panics on its first run, then waits to be cancelled. */
static int panics_once(void *arg)
{
	if (__atomic_fetch_add((unsigned *)arg, 1, __ATOMIC_RELAXED) == 0)
		tm_panic("first run fails");
	while (tm_sleep_ms(1000) == 0)
		;
	return 0;
}

/* A panicked task's message comes from the registry's ring, a critical
 * task's restart delays from its task_restart events; both reach the
 * snapshot. */
static void test_messages_and_restarts(void **state)
{
	(void)state;
	struct tmd_merge *m;
	pid_t me = getpid();
	tm_task *t, *c, *ok;
	enum tm_status st;
	assert_int_equal(tm_init(NULL), 0);
	assert_int_equal(tm_spawn(&t, "burner", panics, (void *)"/var", NULL), 0);
	uint64_t tid = tm_task_id(t);   /* tm_join gives the handle back */
	assert_int_equal(tm_join(t, -1, &st, NULL), 0);
	assert_int_equal(st, TM_PANICKED);
	assert_int_equal(tm_spawn_critical(&c, "keeper", panics, (void *)"/srv",
	                                   TM_CRITICAL_OPTS(.restart = TM_RESTART_ON_PANIC, .max_restarts = 2,
	                                                    .backoff = { TM_BACKOFF_FIXED, .base_ms = 1 })), 0);
	uint64_t cid = tm_task_id(c);
	assert_int_equal(tm_join(c, -1, &st, NULL), 0);
	assert_int_equal(st, TM_PANICKED);
	assert_int_equal(tm_spawn(&ok, "fine", quick, NULL, NULL), 0);
	uint64_t okid = tm_task_id(ok);
	assert_int_equal(tm_join(ok, -1, NULL, NULL), 0);

	assert_int_equal(tmd_merge_new(&m, NULL), 0);
	assert_int_equal(tmd_merge_add(m, me, bt_now_ns()), 0);
	/* The kernel side's restart events, as the USDT probe reports them: ten,
	 * of which the last TMD_RESTART_HIST are kept. */
	for (uint64_t a = 1; a <= 10; a++) {
		struct tm_ev_task_restart e;
		memset(&e, 0, sizeof(e));
		e.h = (struct tm_ev_hdr){ .ts_ns = bt_now_ns(), .task_id = cid, .kind = TM_EV_TASK_RESTART,
		                          .pid = (__u32)me, .tid = (__u32)me };
		e.attempt = a;
		e.delay_ms = 100 * a;
		feed(m, &e, sizeof(e), bt_now_ns());
	}
	const struct tmd_task *mt = tmd_merge_find_task(m, me, tid);
	assert_non_null(mt);
	assert_non_null(mt->extra);
	assert_string_equal(mt->extra->message, "disk on fire: /var (errno 28)");
	assert_int_equal(mt->extra->message_kind, TM_SHM_MSG_PANIC);
	mt = tmd_merge_find_task(m, me, cid);
	assert_int_equal(mt->extra->restart_events, 10);
	assert_int_equal(mt->extra->nrestarts, TMD_RESTART_HIST);
	assert_null(tmd_merge_find_task(m, me, okid)->extra);   /* nothing extra for a plain task */

	/* A critical task still running after a restart: its previous run's panic
	 * message is looked up at the registry read after the restart event. */
	unsigned runs = 0;
	tm_task *lp;
	assert_int_equal(tm_spawn_critical(&lp, "looper", panics_once, &runs,
	                                   TM_CRITICAL_OPTS(.restart = TM_RESTART_ON_PANIC,
	                                                    .backoff = { TM_BACKOFF_FIXED, .base_ms = 0 })), 0);
	uint64_t lid = tm_task_id(lp);
	for (int i = 0; i < 500 && __atomic_load_n(&runs, __ATOMIC_RELAXED) < 2; i++)
		usleep(2000);
	assert_int_equal(__atomic_load_n(&runs, __ATOMIC_RELAXED), 2);
	tmd_merge_refresh(m, bt_now_ns(), 0);
	const struct tmd_task *lt = tmd_merge_find_task(m, me, lid);
	assert_non_null(lt);
	assert_int_equal(lt->status, TM_RUNNING);
	assert_true(lt->extra == NULL || lt->extra->message == NULL);   /* no restart event yet: not looked for */
	struct tm_ev_task_restart re;
	memset(&re, 0, sizeof(re));
	re.h = (struct tm_ev_hdr){ .ts_ns = bt_now_ns(), .task_id = lid, .kind = TM_EV_TASK_RESTART,
	                           .pid = (__u32)me, .tid = (__u32)me };
	re.attempt = 1;
	feed(m, &re, sizeof(re), bt_now_ns());
	tmd_merge_refresh(m, bt_now_ns(), 0);
	lt = tmd_merge_find_task(m, me, lid);
	assert_non_null(lt->extra);
	assert_string_equal(lt->extra->message, "first run fails");
	assert_int_equal(tm_cancel(lp), 0);
	assert_int_equal(tm_join(lp, -1, &st, NULL), 0);
	assert_int_equal(st, TM_CANCELLED);

	size_t len;
	struct tmd_collector_info ci = { .pid = 1, .mode = "tp_btf", .started_ns = bt_now_ns() };
	char *doc = tmd_snapshot_json(m, &ci, TMD_SNAPSHOT_OPTS(.all_workloads = true), bt_now_ns(), &len);
	json_error_t jerr;
	json_t *j = json_loads(doc, 0, &jerr);
	free(doc);
	assert_non_null(j);
	json_t *jt = snapshot_task(j, tid);
	assert_non_null(jt);
	assert_string_equal(json_string_value(json_object_get(jt, "status")), "panicked");
	assert_string_equal(json_string_value(json_object_get(jt, "message")), "disk on fire: /var (errno 28)");
	assert_int_equal(json_array_size(json_object_get(jt, "restart_history")), 0);
	jt = snapshot_task(j, cid);
	assert_non_null(jt);
	assert_int_equal(json_integer_value(json_object_get(jt, "restarts")), 2);
	assert_string_equal(json_string_value(json_object_get(jt, "message")), "disk on fire: /srv (errno 28)");
	json_t *hist = json_object_get(jt, "restart_history");
	assert_int_equal(json_array_size(hist), TMD_RESTART_HIST);
	uint64_t prev_at = 0;
	for (size_t i = 0; i < TMD_RESTART_HIST; i++) {
		json_t *r = json_array_get(hist, i);
		uint64_t want = 10 - TMD_RESTART_HIST + 1 + i;   /* oldest first, the first two dropped */
		assert_int_equal(json_integer_value(json_object_get(r, "attempt")), want);
		assert_int_equal(json_integer_value(json_object_get(r, "delay_ms")), 100 * want);
		uint64_t at = (uint64_t)json_integer_value(json_object_get(r, "at_ns"));
		assert_true(at >= prev_at && at > 0);
		prev_at = at;
	}
	jt = snapshot_task(j, okid);
	assert_true(json_is_null(json_object_get(jt, "message")));
	assert_int_equal(json_array_size(json_object_get(jt, "restart_history")), 0);
	json_decref(j);
	tmd_merge_free(m);
	tm_shutdown();
}

/* Starts the integration workload (no collector) and waits for "done". */
static pid_t start_workload(const char *tasks, FILE **out, int *in)
{
	char path[PATH_MAX], line[128];
	int to[2], from[2];
	pid_t pid;
	bt_sibling(path, sizeof(path), "integration/workload");
	assert_int_equal(pipe2(to, O_CLOEXEC), 0);
	assert_int_equal(pipe2(from, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, to[0], 0);
	posix_spawn_file_actions_adddup2(&fa, from[1], 1);
	char *argv[] = { path, (char *)"--hold", (char *)tasks, NULL };
	assert_int_equal(posix_spawn(&pid, path, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(to[0]);
	close(from[1]);
	*in = to[1];
	*out = fdopen(from[0], "r");
	bool done = false;
	while (!done && fgets(line, sizeof(line), *out))
		done = strncmp(line, "done", 4) == 0;
	assert_true(done);
	return pid;
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* A workload killed outright leaves its segment: the merge keeps its final
 * figures, its counters in the machine-wide totals, and removes the segment. */
static void test_dead_workload(void **state)
{
	(void)state;
	struct tmd_merge *m;
	uint64_t counters[TMD_C_COUNT];
	char seg[64];
	pid_t gone[4];
	FILE *out;
	int in, st;
	pid_t pid = start_workload("general=4", &out, &in);
	snprintf(seg, sizeof(seg), TM_SHM_DIR "/" TM_SHM_PREFIX "%d", (int)pid);
	uint64_t now = bt_now_ns();
	assert_int_equal(tmd_merge_new(&m, TMD_MERGE_OPTS(.retention_ns = 10 * SEC)), 0);
	assert_int_equal(tmd_merge_add(m, pid, now), 0);
	const struct tmd_workload *w = tmd_merge_find_workload(m, pid);
	assert_true(w->has_registry);
	assert_string_equal(w->comm, "workload");
	assert_int_equal(w->types[TM_GENERAL].counters[TM_C_SPAWNED], 4);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	fclose(out);
	close(in);
	assert_true(file_exists(seg));   /* no atexit ran */
	assert_int_equal(tmd_merge_tick(m, now + 2 * SEC, gone, 4), 1);
	assert_int_equal(gone[0], pid);
	w = tmd_merge_find_workload(m, pid);
	assert_false(w->alive);
	assert_true(w->segment_removed);
	assert_false(file_exists(seg));
	assert_int_equal(w->types[TM_GENERAL].counters[TM_C_SPAWNED], 4);   /* its final figures */
	assert_int_equal(w->task_count, 4);
	tmd_merge_machine_counters(m, counters);
	assert_int_equal(counters[TM_C_SPAWNED], 4);
	assert_int_equal(tmd_merge_machine(m)->departed[TM_C_SPAWNED], 4);
	assert_int_equal(tmd_merge_machine(m)->workloads_gone, 1);
	/* After the retention period it is forgotten; its counters are not. */
	tmd_merge_tick(m, now + 20 * SEC, gone, 4);
	tmd_merge_tick(m, now + 20 * SEC, gone, 4);
	assert_null(tmd_merge_find_workload(m, pid));
	tmd_merge_machine_counters(m, counters);
	assert_int_equal(counters[TM_C_SPAWNED], 4);
	int mt = find_mtype(tmd_merge_machine(m), "general");
	tmd_merge_mtype_counters(m, (size_t)mt, counters);
	assert_int_equal(counters[TM_C_SPAWNED], 4);
	tmd_merge_free(m);
}

static void test_snapshot_json(void **state)
{
	(void)state;
	struct tmd_merge *m;
	pid_t me = getpid();
	uint64_t now = bt_now_ns();
	size_t len;
	json_error_t jerr;
	assert_int_equal(tmd_merge_new(&m, NULL), 0);
	for (uint64_t i = 1; i <= 5; i++) {
		struct tm_ev_task_start s = mk_start(me, i, TM_CONSENSUS, "vote\"\\", 2000 * i, 10);
		feed(m, &s, sizeof(s), now);
		if (i <= 3) {
			struct tm_ev_task_end e = mk_end(me, i, 5000, TM_FAILED, 0);
			e.rc = 7;
			feed(m, &e, sizeof(e), now);
		}
	}
	struct tmd_collector_info ci = { .pid = 1, .mode = "tp_btf", .started_ns = now - SEC, .lost = 3 };
	char *doc = tmd_snapshot_json(m, &ci, TMD_SNAPSHOT_OPTS(.all_workloads = true), now, &len);
	assert_non_null(doc);
	assert_int_equal(strlen(doc), len);
	json_t *j = json_loads(doc, 0, &jerr);
	if (!j)
		fail_msg("not JSON: %s at %d", jerr.text, jerr.position);
	free(doc);
	assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
	json_t *col = json_object_get(j, "collector");
	assert_int_equal(json_integer_value(json_object_get(col, "events")), 8);
	assert_int_equal(json_integer_value(json_object_get(col, "lost")), 3);
	json_t *ws = json_object_get(j, "workloads");
	assert_int_equal(json_array_size(ws), 1);
	json_t *w = json_array_get(ws, 0);
	assert_int_equal(json_integer_value(json_object_get(w, "pid")), me);
	json_t *wk = json_object_get(w, "kernel");
	assert_int_equal(json_integer_value(json_object_get(wk, "tasks_started")), 5);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(wk, "spawn_latency"), "max_ns")), 10000);
	json_t *types = json_object_get(j, "types");
	assert_int_equal(json_array_size(types), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(types, 0), "name")), "consensus");
	json_t *tasks = json_object_get(j, "tasks");
	assert_int_equal(json_array_size(tasks), 5);
	/* Running first, then finished newest first. */
	json_t *t0 = json_array_get(tasks, 0), *t2 = json_array_get(tasks, 2);
	assert_string_equal(json_string_value(json_object_get(t0, "status")), "unknown");
	assert_false(json_is_true(json_object_get(t0, "finished")));
	assert_int_equal(json_integer_value(json_object_get(t2, "id")), 3);
	assert_string_equal(json_string_value(json_object_get(t2, "status")), "failed");
	assert_int_equal(json_integer_value(json_object_get(t2, "rc")), 7);
	assert_string_equal(json_string_value(json_object_get(t2, "name")), "vote\"\\");
	assert_string_equal(json_string_value(json_object_get(t2, "type_name")), "consensus");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(t2, "kernel"), "spawn_latency_ns")), 6000);
	json_decref(j);

	/* Another user sees the machine, not the workloads; limits on tasks. */
	doc = tmd_snapshot_json(m, &ci, TMD_SNAPSHOT_OPTS(.uid = getuid() + 1), now, &len);
	j = json_loads(doc, 0, &jerr);
	free(doc);
	assert_true(json_is_true(json_object_get(j, "filtered")));
	assert_int_equal(json_array_size(json_object_get(j, "workloads")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "tasks")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(j, "machine"), "kernel"),
	                                                    "tasks_started")), 5);
	json_decref(j);
	doc = tmd_snapshot_json(m, &ci, TMD_SNAPSHOT_OPTS(.all_workloads = true, .max_tasks = 2), now, &len);
	j = json_loads(doc, 0, &jerr);
	free(doc);
	assert_int_equal(json_array_size(json_object_get(j, "tasks")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "tasks_omitted")), 3);
	json_decref(j);
	doc = tmd_snapshot_json(m, &ci, TMD_SNAPSHOT_OPTS(.all_workloads = true, .no_tasks = true), now, &len);
	j = json_loads(doc, 0, &jerr);
	free(doc);
	assert_int_equal(json_array_size(json_object_get(j, "tasks")), 0);
	json_decref(j);
	tmd_merge_free(m);
}

static atomic_int g_gate;

static int waits_at_gate(void *arg)
{
	(void)arg;
	gate_wait(&g_gate);
	return 0;
}

/* Tasks spawned past kernel_trace_rate: the registry's count reaches the
 * merge, and a crash on the thread of such a task (whose crash event has no
 * task id: the kernel never heard of the task) marks that task crashed. */
static void test_untraced_tasks(void **state)
{
	(void)state;
	struct tmd_merge *m;
	pid_t me = getpid();
	assert_int_equal(bt_use_trace_rate("1"), 0);
	assert_int_equal(tm_init(NULL), 0);
	bt_drop_trace_rate();
	atomic_store(&g_gate, 0);
	spawn_join("traced", TM_NETWORK, 1);      /* the burst's one task */
	tm_task *h;
	assert_int_equal(tm_spawn(&h, "untraced", waits_at_gate, NULL, TM_SPAWN_OPTS(.type = TM_NETWORK)), 0);
	struct tm_task_info info;
	for (int i = 0; i < 5000 && !(tm_list_tasks(&info, 1, true) == 1 && info.tid); i++)
		usleep(1000);
	assert_int_equal(info.id, tm_task_id(h));
	assert_true(info.tid > 0);
	assert_int_equal(tmd_merge_new(&m, NULL), 0);
	assert_int_equal(tmd_merge_add(m, me, bt_now_ns()), 0);
	const struct tmd_workload *w = tmd_merge_find_workload(m, me);
	assert_int_equal(w->types[TM_NETWORK].counters[TMD_C_TRACE_SKIPPED], 1);
	struct tm_ev_crash c;
	memset(&c, 0, sizeof(c));
	c.h = (struct tm_ev_hdr){ .ts_ns = bt_now_ns(), .task_id = 0, .kind = TM_EV_CRASH, .pid = (__u32)me,
	                          .tid = (__u32)info.tid };
	c.sig = SIGSEGV;
	c.code = 1;
	feed(m, &c, sizeof(c), bt_now_ns());
	const struct tmd_task *t = tmd_merge_find_task(m, me, info.id);
	assert_non_null(t);
	assert_true(t->flags & TMD_T_CRASHED);
	assert_int_equal(w->crashes, 1);
	gate_open(&g_gate);
	assert_int_equal(tm_join(h, 10000, NULL, NULL), 0);
	tm_shutdown();
	tmd_merge_free(m);
}

int main(void)
{
	/* Never register with a collector that may run on this machine. */
	setenv("TASKMON_SOCKET", "/nonexistent/taskmond.sock", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kernel_figures),
		cmocka_unit_test(test_hostile_events),
		cmocka_unit_test(test_bounds_and_retention),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_messages_and_restarts),
		cmocka_unit_test(test_dead_workload),
		cmocka_unit_test(test_snapshot_json),
		cmocka_unit_test(test_untraced_tasks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
