/* The kernel programs' per-task figures against the library's own and the
 * kernel's own accounting. The test process watches itself: the library is
 * linked in statically, so its USDT probes are in this executable.
 * Needs root; every test runs with the tp_btf programs and their raw_tp twins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "integration/bpf_test.h"
#include "taskmon.h"

struct fixture {
	struct tmd_loader *l;
	struct bt_store *s;
};

static const bool mode_tp_btf = false, mode_raw_tp = true;

static int setup(void **state)
{
	const bool *raw = *state;
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->s = calloc(1, sizeof(*f->s));
	if (!f->s)
		return -1;
	if (!bpf_test_skip_reason()) {
		int err = tmd_loader_open(&f->l, TMD_LOADER_OPTS(.force_raw_tp = *raw), bt_store_event, f->s);
		if (err < 0) {
			print_error("loader: %s\n", tmd_loader_error());
			return -1;
		}
		if (strcmp(tmd_loader_mode(f->l), *raw ? "raw_tp" : "tp_btf") != 0) {
			print_error("loader chose %s\n", tmd_loader_mode(f->l));
			return -1;
		}
		/* This executable carries libtaskmon's probes. */
		if (tmd_loader_watch(f->l, getpid()) < 1) {
			print_error("watch: %s\n", tmd_loader_error());
			return -1;
		}
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tmd_loader_close(f->l);
	free(f->s);
	free(f);
	return 0;
}

/* The library writes a task's registry slot (and its latency histogram)
 * between its clock read and its probe. On a fresh page of the segment that
 * write faults, and a shared-memory fault takes 10-40 us in these VMs: time
 * in the library's figure that no probe brackets. Populating the registry's
 * mapping first lets the test compare the two clocks, not the library's
 * first touches of its pages (BT_COLD_REGISTRY=1 shows the difference). */
static void populate_registry(void)
{
	char line[512], want[64];
	snprintf(want, sizeof(want), "/dev/shm/taskmon.%d", (int)getpid());
	FILE *fp = fopen("/proc/self/maps", "re");
	while (fp && fgets(line, sizeof(line), fp)) {
		unsigned long lo, hi;
		if (strstr(line, want) && sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
		    madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) != 0)
			print_message("note: cannot populate the registry: %s\n", strerror(errno));
	}
	if (fp)
		fclose(fp);
}

static int group_setup(void **state)
{
	(void)state;
	tmd_libbpf_print(false);
	int err = tm_init(NULL);
	if (err == 0 && !getenv("BT_COLD_REGISTRY"))
		populate_registry();
	return err;
}

static int group_teardown(void **state)
{
	(void)state;
	tm_shutdown();
	return 0;
}

/* ---- spawn latency ------------------------------------------------------- */

#define N_PACED 100
#define N_BURST 100
#define N_TASKS (N_PACED + N_BURST)

static int trivial(void *arg)
{
	(void)arg;
	return 0;
}

struct ids {
	size_t n;
	const uint64_t *id;
};

static bool have_starts(const struct bt_store *s, const void *arg)
{
	const struct ids *ids = arg;
	for (size_t i = 0; i < ids->n; i++)
		if (!bt_find(s, TM_EV_TASK_START, getpid(), ids->id[i]))
			return false;
	return true;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* A probe time moved back by the stretch its thread spent off the CPU
 * between the library's clock read (lib_ns) and the probe, when the kernel
 * reports one there: the two instants are then that much further apart. */
static uint64_t off_cpu_after(uint64_t lib_ns, uint64_t off, uint64_t on)
{
	if (!on || on <= lib_ns)
		return 0;
	return on - (off > lib_ns ? off : lib_ns);
}

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static void test_spawn_latency(void **state)
{
	BPF_TEST_REQUIRE();
#ifdef UNDER_TSAN
	/* Measured: the library's code between its clock reads and its probes
	 * (allocation, atomics) takes 2.5 us at the median and up to 140 us under
	 * TSan, against 0.3 us plain; the comparison is of the plain build. */
	print_message("skipped: under TSan the library's instrumented code between its clock read and its probe "
	              "dominates the comparison\n");
	skip();
#endif
	struct fixture *f = *state;
	static uint64_t id[N_TASKS];
	static struct tm_task_info info[4096];
	static int64_t diff[N_TASKS];
	tm_task *t[N_TASKS];
	for (int i = 0; i < N_TASKS; i++) {
		assert_int_equal(tm_spawn(&t[i], "latency", trivial, NULL, NULL), 0);
		id[i] = tm_task_id(t[i]);
		if (i < N_PACED)
			usleep(300);   /* paced: threads come back to the pool in between */
	}
	for (int i = 0; i < N_TASKS; i++)
		assert_int_equal(tm_join(t[i], 5000, NULL, NULL), 0);
	struct ids ids = { N_TASKS, id };
	assert_true(bt_poll_until(f->l, f->s, 5000, have_starts, &ids));

	int n = tm_list_tasks(info, 4096, false);
	assert_true(n > 0);
	size_t compared = 0, raw_out = 0, adj_out = 0, descheduled = 0;
	for (int i = 0; i < n; i++) {
		const struct bt_event *ev = bt_find(f->s, TM_EV_TASK_START, getpid(), info[i].id);
		if (!ev || info[i].start_ns == 0)
			continue;
		const struct tm_ev_task_start *e = &ev->u.start;
		assert_false(e->flags & TM_EVF_NO_SPAWN);
		assert_string_equal(e->name, "latency");
		assert_int_equal(e->h.tid, info[i].tid);
		assert_true(e->runq_ns <= e->latency_ns);
		int64_t lib = (int64_t)(info[i].start_ns - info[i].spawn_ns);
		int64_t kern = (int64_t)e->latency_ns, allowed = 20000 + lib / 10;
		uint64_t off_spawn = off_cpu_after(info[i].spawn_ns, e->spawner_off_ns, e->spawner_on_ns);
		uint64_t off_start = off_cpu_after(info[i].start_ns, e->off_ns, e->on_ns);
		int64_t adj = kern + (int64_t)off_spawn - (int64_t)off_start;
		descheduled += off_spawn || off_start;
		raw_out += llabs(kern - lib) > allowed;
		if (llabs(adj - lib) > allowed) {
			adj_out++;
			print_message("  outlier: task %llu kernel %.1f us, library %.1f us (spawn probe %+.1f us, start "
			              "probe %+.1f us after the library's clock reads)\n", (unsigned long long)info[i].id,
			              kern / 1e3, lib / 1e3, ((int64_t)e->spawn_ns - (int64_t)info[i].spawn_ns) / 1e3,
			              ((int64_t)e->h.ts_ns - (int64_t)info[i].start_ns) / 1e3);
		}
		diff[compared++] = kern - lib;
	}
	assert_int_equal(compared, N_TASKS);
	qsort(diff, compared, sizeof(diff[0]), cmp_i64);
	print_message("spawn latency, kernel - library over %zu tasks: median %+.2f us, p5 %+.2f us, p95 %+.2f us, "
	              "min %+.2f us, max %+.2f us; within 20 us + 10%%: %zu as measured, %zu once the %zu tasks "
	              "with a thread descheduled between the library's clock read and the probe are corrected\n",
	              compared, diff[compared / 2] / 1e3, diff[compared / 20] / 1e3,
	              diff[compared - 1 - compared / 20] / 1e3, diff[0] / 1e3, diff[compared - 1] / 1e3,
	              compared - raw_out, compared - adj_out, descheduled);
	/* The probes sit next to the library's clock reads, not on them: an
	 * interrupt, a stolen vCPU or a lock in the breakpoint path that falls
	 * in between shows in one figure only. Rare, never systematic. */
	assert_true(llabs(diff[compared / 2]) <= 2000);
	assert_true(adj_out * 50 <= compared);    /* >= 98% */
	assert_true(raw_out * 20 <= compared);    /* >= 95% */
	assert_int_equal(tmd_loader_stat(f->l, TM_STAT_LOST), 0);
}

/* ---- on-CPU time --------------------------------------------------------- */

struct schedstat {
	uint64_t oncpu, runq, slices;
};

static void read_schedstat(struct schedstat *out)
{
	FILE *fp = fopen("/proc/thread-self/schedstat", "re");
	unsigned long long a = 0, b = 0, c = 0;
	if (fp) {
		if (fscanf(fp, "%llu %llu %llu", &a, &b, &c) != 3)
			a = b = c = 0;
		fclose(fp);
	}
	out->oncpu = a;
	out->runq = b;
	out->slices = c;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct burn {
	uint64_t cpu_ns;            /* how much CPU to burn */
	uint64_t wall_ns;           /* or how long to spin, on the clock */
	int cpu;                    /* pin to this CPU first; -1 = no */
	pthread_barrier_t *barrier; /* meet the other tasks before measuring */
	struct schedstat s0, s1;
	uint64_t wall0, wall1;
};

/* A blocking sleep before each reading: the kernel updates a thread's
 * schedstat when it switches, so a value read just after a wakeup is exact. */
static int burn(void *arg)
{
	struct burn *b = arg;
	if (b->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(b->cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	usleep(2000);
	read_schedstat(&b->s0);
	if (b->barrier)
		pthread_barrier_wait(b->barrier);
	b->wall0 = bt_now_ns();
	uint64_t c0 = thread_cpu_ns();
	uint64_t x = 0;
	while (b->cpu_ns ? thread_cpu_ns() - c0 < b->cpu_ns : bt_now_ns() - b->wall0 < b->wall_ns)
		for (int i = 0; i < 1000; i++)
			__asm__ volatile("" : "+r"(x) : "r"(i));   /* real work the compiler keeps */
	b->wall1 = bt_now_ns();
	usleep(2000);
	read_schedstat(&b->s1);
	return 0;
}

static bool have_end(const struct bt_store *s, const void *arg)
{
	return bt_find(s, TM_EV_TASK_END, getpid(), *(const uint64_t *)arg) != NULL;
}

static void test_oncpu(void **state)
{
	BPF_TEST_REQUIRE();
	struct fixture *f = *state;
	struct burn b = { .cpu_ns = 250000000ull, .cpu = -1 };
	tm_task *t;
	assert_int_equal(tm_spawn(&t, "burn", burn, &b, NULL), 0);
	uint64_t id = tm_task_id(t);
	assert_int_equal(tm_join(t, 10000, NULL, NULL), 0);
	assert_true(bt_poll_until(f->l, f->s, 5000, have_end, &id));
	const struct tm_ev_task_end *e = &bt_find(f->s, TM_EV_TASK_END, getpid(), id)->u.end;
	assert_int_equal(e->flags, 0);
	assert_int_equal(e->status, TM_SUCCEEDED);
	double kernel = (double)(b.s1.oncpu - b.s0.oncpu), ours = (double)e->oncpu_ns;
	double rel = (ours - kernel) / kernel;
	print_message("on-CPU of a %.0f ms CPU-bound task: event %.3f ms, schedstat %.3f ms, difference %+.3f%% "
	              "(allowed 2%%); run-queue %.3f ms, blocked %.3f ms, %u+%u switches\n", b.cpu_ns / 1e6,
	              ours / 1e6, kernel / 1e6, rel * 100, e->runq_ns / 1e6, e->blocked_ns / 1e6, e->nvcsw,
	              e->nivcsw);
	assert_true(kernel >= 200e6);
	assert_true(rel > -0.02 && rel < 0.02);
	/* Busy + sched + idle is the wall time of the task, and it slept twice
	 * for 2 ms: off its CPU at least that long, minus the few microseconds
	 * between each timer's start and the switch away, the wait for a CPU
	 * after each wakeup counted as run-queue. */
	uint64_t wall = e->h.ts_ns - e->start_ns;
	assert_int_equal(e->oncpu_ns + e->runq_ns + e->blocked_ns, wall);
	assert_true(e->blocked_ns + e->runq_ns >= 4000000ull - 50000);
	assert_true(e->nvcsw >= 2);
}

/* ---- run-queue wait -------------------------------------------------------- */

static void test_runq_shared_cpu(void **state)
{
	BPF_TEST_REQUIRE();
	struct fixture *f = *state;
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	int cpu = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	struct burn b[2] = {
		{ .wall_ns = 300000000ull, .cpu = cpu, .barrier = &bar },
		{ .wall_ns = 300000000ull, .cpu = cpu, .barrier = &bar },
	};
	tm_task *t[2];
	uint64_t id[2];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(tm_spawn(&t[i], "shared_cpu", burn, &b[i], NULL), 0);
		id[i] = tm_task_id(t[i]);
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(tm_join(t[i], 10000, NULL, NULL), 0);
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < 2; i++) {
		assert_true(bt_poll_until(f->l, f->s, 5000, have_end, &id[i]));
		const struct tm_ev_task_end *e = &bt_find(f->s, TM_EV_TASK_END, getpid(), id[i])->u.end;
		double kernel = (double)(b[i].s1.runq - b[i].s0.runq), ours = (double)e->runq_ns;
		double spin = (double)(b[i].wall1 - b[i].wall0);
		print_message("task %d on CPU %d with another: run-queue wait %.1f ms (schedstat %.1f ms, %+.2f%%), "
		              "%.0f%% of its %.0f ms spin; on-CPU %.1f ms, %u involuntary switches\n", i, cpu,
		              ours / 1e6, kernel / 1e6, (ours - kernel) / kernel * 100, ours / spin * 100, spin / 1e6,
		              e->oncpu_ns / 1e6, e->nivcsw);
		/* Half the time each, give or take the scheduler's slices (and a
		 * busy neighbour on that CPU: the comparison above is the test). */
		assert_true(ours > 0.3 * spin && ours < 0.8 * spin);
		assert_true(ours - kernel <= 0.05 * kernel + 1e6 && kernel - ours <= 0.05 * kernel + 1e6);
		assert_true(e->nivcsw >= 5);
	}
}

/* The same checks through the raw_tp twins. */
static void test_spawn_latency_raw_tp(void **state)
{
	test_spawn_latency(state);
}

static void test_oncpu_raw_tp(void **state)
{
	test_oncpu(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate_setup_teardown(test_spawn_latency, setup, teardown, (void *)&mode_tp_btf),
		cmocka_unit_test_prestate_setup_teardown(test_oncpu, setup, teardown, (void *)&mode_tp_btf),
		cmocka_unit_test_prestate_setup_teardown(test_runq_shared_cpu, setup, teardown, (void *)&mode_tp_btf),
		cmocka_unit_test_prestate_setup_teardown(test_spawn_latency_raw_tp, setup, teardown, (void *)&mode_raw_tp),
		cmocka_unit_test_prestate_setup_teardown(test_oncpu_raw_tp, setup, teardown, (void *)&mode_raw_tp),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
