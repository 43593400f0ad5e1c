/* The ring buffer between the kernel programs and the collector: nothing is
 * lost silently (a full buffer is counted, exactly), the collector keeps up
 * once it polls, and a collector that goes away and comes back neither
 * disturbs the workload nor misses its later tasks. The test process is the
 * workload: it links libtaskmon statically and watches itself with the
 * embedded loader. Needs root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integration/bpf_test.h"
#include "taskmon.h"
#include "taskmon_shm.h"

/* Per task the kernel side submits exactly two records: task_start (at the
 * task_start probe) and task_end (at task_end). task_spawn only fills a map;
 * a thread that exits between tasks, as cached library threads do, has no
 * task to close out. Nothing else in this process raises a crash signal or
 * exits while the tests count. */
#define EVENTS_PER_TASK 2

#define BURST_SMALL 2000      /* against one page: most of it must overflow */
#define BURST_BIG   5000      /* 10,000 records, about 1.2 MB of them */
#define BIG_RING    (4u << 20)   /* holds them all even if the poller never ran */
#define AFTER_TASKS 50

/* What the loader delivered, in arrival order: kind and task id. */
struct log {
	_Atomic size_t n;
	size_t cap;
	_Atomic size_t overflow;
	_Atomic size_t other_pid;
	struct rec { uint32_t kind, flags; uint64_t task_id; } *r;
};

static int log_event(void *ctx, const void *data, size_t len)
{
	struct log *lg = ctx;
	const struct tm_ev_hdr *h = data;
	if (len < sizeof(*h))
		return 0;
	if (h->pid != (uint32_t)getpid())
		atomic_fetch_add(&lg->other_pid, 1);
	size_t i = atomic_load(&lg->n);
	if (i == lg->cap) {
		atomic_fetch_add(&lg->overflow, 1);
		return 0;
	}
	lg->r[i].kind = h->kind;
	lg->r[i].task_id = h->task_id;
	lg->r[i].flags = h->kind == TM_EV_TASK_START && len >= sizeof(struct tm_ev_task_start)
	                         ? ((const struct tm_ev_task_start *)data)->flags
	                 : h->kind == TM_EV_TASK_END && len >= sizeof(struct tm_ev_task_end)
	                         ? ((const struct tm_ev_task_end *)data)->flags
	                         : 0;
	atomic_store(&lg->n, i + 1);
	return 0;
}

static struct log *log_new(size_t cap)
{
	struct log *lg = calloc(1, sizeof(*lg));
	if (lg) {
		lg->cap = cap;
		lg->r = calloc(cap, sizeof(*lg->r));
	}
	return lg;
}

static void log_free(struct log *lg)
{
	if (lg)
		free(lg->r);
	free(lg);
}

static void log_reset(struct log *lg)
{
	atomic_store(&lg->n, 0);
	atomic_store(&lg->overflow, 0);
	atomic_store(&lg->other_pid, 0);
}

static size_t log_count(const struct log *lg, uint32_t kind)
{
	size_t n = 0, total = atomic_load(&lg->n);
	for (size_t i = 0; i < total; i++)
		n += lg->r[i].kind == kind;
	return n;
}

#define ANY_FLAGS 0, 0
#define NO_FLAGS  ~0u, 0

/* How many records of that kind name that task with (flags & mask) == want. */
static size_t log_find(const struct log *lg, uint32_t kind, uint64_t id, uint32_t mask, uint32_t want)
{
	size_t n = 0, total = atomic_load(&lg->n);
	for (size_t i = 0; i < total; i++)
		n += lg->r[i].kind == kind && lg->r[i].task_id == id && (lg->r[i].flags & mask) == want;
	return n;
}

/* Reads what is in the buffer now. The ring buffer's poll is level
 * triggered (readable while data is there), so an empty poll means empty;
 * bounded, because a running workload keeps adding records. */
static void drain(struct tmd_loader *l)
{
	uint64_t end = bt_now_ns() + 1000000000ull;
	while (tmd_loader_poll(l, 0) > 0 && bt_now_ns() < end)
		;
}

static struct tmd_loader *open_watching(const struct tmd_loader_opts *o, struct log *lg)
{
	struct tmd_loader *l = NULL;
	int err = tmd_loader_open(&l, o, log_event, lg);
	if (err < 0) {
		print_error("loader: %s\n", tmd_loader_error());
		return NULL;
	}
	/* This executable carries libtaskmon's probes. */
	if (tmd_loader_watch(l, getpid()) < 1) {
		print_error("watch: %s\n", tmd_loader_error());
		tmd_loader_close(l);
		return NULL;
	}
	return l;
}

static int trivial(void *arg)
{
	(void)arg;
	return 0;
}

/* Spawns n trivial tasks as fast as it can, then joins them all; every one
 * must have been spawned and have succeeded, or the count would be off. */
static void burst(uint64_t *ids, size_t n)
{
	tm_task **t = calloc(n, sizeof(*t));
	assert_non_null(t);
	for (size_t i = 0; i < n; i++) {
		int r = tm_spawn(&t[i], "burst", trivial, NULL, NULL);
		if (r != 0)
			print_error("spawn %zu of %zu: %s\n", i, n, tm_last_error());
		assert_int_equal(r, 0);
		ids[i] = tm_task_id(t[i]);
	}
	for (size_t i = 0; i < n; i++) {
		enum tm_status st;
		assert_int_equal(tm_join(t[i], 10000, &st, NULL), 0);
		assert_int_equal(st, TM_SUCCEEDED);
	}
	free(t);
}

static int group_setup(void **state)
{
	(void)state;
	tmd_libbpf_print(false);
	/* Every task traced: the counts below are per task. */
	return bt_use_trace_rate("0") < 0 ? -1 : tm_init(NULL);
}

static int group_teardown(void **state)
{
	(void)state;
	tm_shutdown();
	bt_drop_trace_rate();
	return 0;
}

/* ---- overflow ------------------------------------------------------------ */

struct poller {
	struct tmd_loader *l;
	atomic_bool stop;
	int err;
};

static void *poll_thread(void *arg)
{
	struct poller *p = arg;
	while (!atomic_load(&p->stop)) {
		int r = tmd_loader_poll(p->l, 20);
		if (r < 0 && r != -EINTR) {
			p->err = r;
			break;
		}
	}
	return NULL;
}

/* Every task of the burst appears in exactly one start and one end record,
 * none of them partial. */
static void check_complete(const struct log *lg, const uint64_t *ids, size_t n)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		size_t s = log_find(lg, TM_EV_TASK_START, ids[i], TM_EVF_NO_SPAWN, 0);
		size_t e = log_find(lg, TM_EV_TASK_END, ids[i], NO_FLAGS);
		if (s != 1 || e != 1) {
			if (bad++ < 5)
				print_error("task %llu: %zu start and %zu complete end records\n",
				            (unsigned long long)ids[i], s, e);
		}
	}
	assert_int_equal(bad, 0);
}

static void test_overflow_counted_exactly(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	static uint64_t ids[BURST_BIG];
	struct log *lg = log_new(2 * BURST_BIG + 1024);
	assert_non_null(lg);
	long page = sysconf(_SC_PAGESIZE);
	struct tmd_loader *l = open_watching(TMD_LOADER_OPTS(.ringbuf_bytes = (uint32_t)page), lg);
	assert_non_null(l);
	drain(l);
	log_reset(lg);
	uint64_t lost0 = tmd_loader_stat(l, TM_STAT_LOST);

	/* A burst with nobody reading: the page fills after a few dozen records. */
	burst(ids, BURST_SMALL);
	drain(l);
	uint64_t produced = (uint64_t)EVENTS_PER_TASK * BURST_SMALL;
	uint64_t lost = tmd_loader_stat(l, TM_STAT_LOST) - lost0, got = atomic_load(&lg->n);
	size_t starts = log_count(lg, TM_EV_TASK_START), ends = log_count(lg, TM_EV_TASK_END);
	print_message("one-page ring buffer (%ld bytes), %d tasks in a burst, not polled: %llu records produced, "
	              "%llu received (%zu starts, %zu ends) + %llu counted lost = %llu\n", page, BURST_SMALL,
	              (unsigned long long)produced, (unsigned long long)got, starts, ends,
	              (unsigned long long)lost, (unsigned long long)(got + lost));
	assert_int_equal(atomic_load(&lg->overflow), 0);
	assert_int_equal(atomic_load(&lg->other_pid), 0);
	assert_int_equal(starts + ends, got);   /* nothing but task records */
	assert_true(lost > 0);                   /* it did overflow */
	assert_true(got > 0);                    /* and delivered what fitted */
	assert_int_equal(got + lost, produced);
	/* Each task's records: at most one start and one end. */
	for (size_t i = 0; i < BURST_SMALL; i++) {
		assert_true(log_find(lg, TM_EV_TASK_START, ids[i], ANY_FLAGS) <= 1);
		assert_true(log_find(lg, TM_EV_TASK_END, ids[i], ANY_FLAGS) <= 1);
	}

	/* The same page, read as the tasks come: nothing more is lost. */
	log_reset(lg);
	uint64_t lost1 = tmd_loader_stat(l, TM_STAT_LOST);
	for (size_t i = 0; i < AFTER_TASKS; i++) {
		burst(&ids[i], 1);
		drain(l);
	}
	print_message("the same ring buffer polled between tasks: %d tasks, %zu records, %llu more lost\n",
	              AFTER_TASKS, atomic_load(&lg->n),
	              (unsigned long long)(tmd_loader_stat(l, TM_STAT_LOST) - lost1));
	assert_int_equal(tmd_loader_stat(l, TM_STAT_LOST), lost1);
	check_complete(lg, ids, AFTER_TASKS);
	tmd_loader_close(l);

	/* A big ring buffer with a thread polling, as taskmond does: a bigger
	 * burst, none of it lost. (Big enough for the whole burst: a poller in
	 * the workload's own process competes with its task threads for the
	 * CPUs and may not run for a while; bench_collector measures that.) */
	log_reset(lg);
	l = open_watching(TMD_LOADER_OPTS(.ringbuf_bytes = BIG_RING), lg);
	assert_non_null(l);
	struct poller p = { .l = l };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, poll_thread, &p), 0);
	uint64_t t0 = bt_now_ns();
	burst(ids, BURST_BIG);
	uint64_t t1 = bt_now_ns();
	while (atomic_load(&lg->n) < (size_t)EVENTS_PER_TASK * BURST_BIG && bt_now_ns() - t1 < 5000000000ull)
		usleep(1000);
	atomic_store(&p.stop, true);
	pthread_join(th, NULL);
	drain(l);
	print_message("%u MiB ring buffer, polled by a thread: %d tasks in %.1f ms, %zu records received, %llu lost\n",
	              BIG_RING >> 20, BURST_BIG, (t1 - t0) / 1e6, atomic_load(&lg->n),
	              (unsigned long long)tmd_loader_stat(l, TM_STAT_LOST));
	assert_int_equal(p.err, 0);
	assert_int_equal(tmd_loader_stat(l, TM_STAT_LOST), 0);
	assert_int_equal(atomic_load(&lg->n), (size_t)EVENTS_PER_TASK * BURST_BIG);
	check_complete(lg, ids, BURST_BIG);
	tmd_loader_close(l);
	log_free(lg);
}

/* ---- the trace budget ---------------------------------------------------- */

static uint64_t trace_skipped_now(void)
{
	tm_shm_reader *r;
	struct tm_shm_type_snapshot *t = calloc(TM_MAX_TYPES, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(tm_shm_open_pid(&r, getpid()), 0);
	int n = tm_shm_read_types(r, t, TM_MAX_TYPES);
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v += t[i].trace_skipped;
	tm_shm_close(r);
	free(t);
	return v;
}

/* With kernel_trace_rate = 1000 a burst fires the probes of about a hundred
 * tasks: the kernel reports exactly those (a start and an end each) and the
 * registry counts exactly the others. */
static void test_trace_budget_exact(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	static uint64_t ids[BURST_BIG];
	tm_shutdown();
	assert_int_equal(bt_use_trace_rate("1000"), 0);
	assert_int_equal(tm_init(NULL), 0);
	struct log *lg = log_new(2 * BURST_BIG + 1024);
	assert_non_null(lg);
	struct tmd_loader *l = open_watching(TMD_LOADER_OPTS(.ringbuf_bytes = BIG_RING), lg);
	assert_non_null(l);
	drain(l);
	log_reset(lg);
	uint64_t skip0 = trace_skipped_now();
	burst(ids, BURST_BIG);
	drain(l);
	uint64_t skipped = trace_skipped_now() - skip0;
	size_t starts = 0, ends = 0, whole = 0;
	for (size_t i = 0; i < BURST_BIG; i++) {
		size_t s = log_find(lg, TM_EV_TASK_START, ids[i], ANY_FLAGS), e = log_find(lg, TM_EV_TASK_END, ids[i], ANY_FLAGS);
		starts += s;
		ends += e;
		whole += s == 1 && e == 1 && log_find(lg, TM_EV_TASK_START, ids[i], TM_EVF_NO_SPAWN, 0) == 1;
	}
	print_message("kernel_trace_rate 1000: %d tasks, %llu skipped by the budget, kernel records for %zu "
	              "(%zu starts, %zu ends, %zu whole), %llu lost\n", BURST_BIG, (unsigned long long)skipped,
	              (size_t)(BURST_BIG - skipped), starts, ends, whole,
	              (unsigned long long)tmd_loader_stat(l, TM_STAT_LOST));
	assert_int_equal(tmd_loader_stat(l, TM_STAT_LOST), 0);
	assert_true(skipped > 0 && skipped < BURST_BIG);
	assert_int_equal(starts, BURST_BIG - skipped);
	assert_int_equal(ends, starts);
	assert_int_equal(whole, starts);
	tmd_loader_close(l);
	log_free(lg);
	tm_shutdown();
	assert_int_equal(bt_use_trace_rate("0"), 0);
	assert_int_equal(tm_init(NULL), 0);
}

/* ---- collector restart --------------------------------------------------- */

#define RESTART_MAX 20000

/* A workload that spawns and joins one short task after another, and says
 * when each spawn began and each join returned. */
struct workload {
	atomic_bool stop;
	_Atomic size_t n;
	size_t failed;
	struct wl_task { uint64_t id, spawned_ns, joined_ns; enum tm_status st; int err; } t[RESTART_MAX];
};

static int short_task(void *arg)
{
	(void)arg;
	usleep(100);
	return 0;
}

static void *workload_thread(void *arg)
{
	struct workload *w = arg;
	while (!atomic_load(&w->stop) && atomic_load(&w->n) < RESTART_MAX) {
		size_t i = atomic_load(&w->n);
		struct wl_task *k = &w->t[i];
		tm_task *t;
		k->spawned_ns = bt_now_ns();
		k->err = tm_spawn(&t, "restart", short_task, NULL, NULL);
		if (k->err == 0) {
			k->id = tm_task_id(t);
			k->err = tm_join(t, 10000, &k->st, NULL);
		}
		k->joined_ns = bt_now_ns();
		atomic_store(&w->n, i + 1);
		usleep(500);
	}
	return NULL;
}

/* Polls for ms milliseconds. */
static void poll_for(struct tmd_loader *l, unsigned ms)
{
	uint64_t end = bt_now_ns() + ms * 1000000ull;
	while (bt_now_ns() < end)
		assert_true(tmd_loader_poll(l, 10) >= 0);
}

/* A task that runs across the restart: started under the first collector,
 * ended under the second, which sees only its end. */
static atomic_int g_long_release;

static int long_task(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_long_release))
		usleep(1000);
	return 0;
}

/* Tasks wholly inside [from, to] must each be in lg once as a start with
 * spawn information and once as a complete end. */
static size_t check_window(const struct workload *w, size_t n, const struct log *lg, uint64_t from, uint64_t to,
                           const char *what)
{
	size_t in = 0, bad = 0;
	for (size_t i = 0; i < n; i++) {
		const struct wl_task *k = &w->t[i];
		if (k->spawned_ns < from || k->joined_ns > to)
			continue;
		in++;
		size_t s = log_find(lg, TM_EV_TASK_START, k->id, TM_EVF_NO_SPAWN, 0);
		size_t e = log_find(lg, TM_EV_TASK_END, k->id, NO_FLAGS);
		if ((s != 1 || e != 1) && bad++ < 5)
			print_error("%s: task %llu has %zu start and %zu end records\n", what, (unsigned long long)k->id,
			            s, e);
	}
	assert_int_equal(bad, 0);
	return in;
}

static void test_collector_restart(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	struct workload *w = calloc(1, sizeof(*w));
	struct log *lg1 = log_new(4 * RESTART_MAX), *lg2 = log_new(4 * RESTART_MAX);
	assert_non_null(w);
	assert_non_null(lg1);
	assert_non_null(lg2);

	struct tmd_loader *l = open_watching(TMD_LOADER_OPTS(), lg1);
	assert_non_null(l);
	uint64_t watch1 = bt_now_ns();
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, workload_thread, w), 0);
	tm_task *lt;
	atomic_store(&g_long_release, 0);
	assert_int_equal(tm_spawn(&lt, "across", long_task, NULL, NULL), 0);
	uint64_t long_id = tm_task_id(lt);
	poll_for(l, 300);

	/* The collector goes away while tasks are being spawned. */
	uint64_t close1 = bt_now_ns();
	drain(l);
	size_t before_close = atomic_load(&w->n);
	tmd_loader_close(l);
	uint64_t closed = bt_now_ns();
	usleep(300000);
	size_t during_gap = atomic_load(&w->n);

	/* A new one watches again. */
	l = open_watching(TMD_LOADER_OPTS(), lg2);
	assert_non_null(l);
	uint64_t watch2 = bt_now_ns();
	poll_for(l, 300);
	atomic_store(&g_long_release, 1);
	enum tm_status lst;
	assert_int_equal(tm_join(lt, 5000, &lst, NULL), 0);
	assert_int_equal(lst, TM_SUCCEEDED);
	atomic_store(&w->stop, true);
	pthread_join(th, NULL);
	uint64_t end2 = bt_now_ns();
	drain(l);
	size_t n = atomic_load(&w->n);

	/* The workload never noticed. */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(w->t[i].err, 0);
		assert_int_equal(w->t[i].st, TM_SUCCEEDED);
	}
	size_t in1 = check_window(w, n, lg1, watch1, close1, "first collector");
	size_t in2 = check_window(w, n, lg2, watch2, end2, "second collector");
	/* Nothing from the gap reached the second one: no start of a task whose
	 * start it could not have seen. */
	size_t gap_in_2 = 0;
	for (size_t i = 0; i < n; i++)
		if (w->t[i].joined_ns < closed)
			gap_in_2 += log_find(lg2, TM_EV_TASK_START, w->t[i].id, ANY_FLAGS) +
		            log_find(lg2, TM_EV_TASK_END, w->t[i].id, ANY_FLAGS);
	print_message("collector restart: %zu tasks spawned by the workload (%zu before the close, %zu more while "
	              "the collector closed (%.0f ms) and stayed away (%.0f ms)), all succeeded; first collector saw "
	              "%zu whole tasks, second %zu; task across the restart: start in first %zu, end in second %zu "
	              "(partial %zu); lost %llu\n", n, before_close, during_gap - before_close, (closed - close1) / 1e6,
	              (watch2 - closed) / 1e6, in1, in2,
	              log_find(lg1, TM_EV_TASK_START, long_id, ANY_FLAGS), log_find(lg2, TM_EV_TASK_END, long_id, ANY_FLAGS),
	              log_find(lg2, TM_EV_TASK_END, long_id, TM_EVF_PARTIAL, TM_EVF_PARTIAL),
	              (unsigned long long)tmd_loader_stat(l, TM_STAT_LOST));
	assert_true(during_gap > before_close);   /* the workload went on without a collector */
	assert_true(in1 >= 20);
	assert_true(in2 >= 20);
	assert_int_equal(gap_in_2, 0);
	/* The long task: its start went to the first collector, its end (partial:
	 * no start seen) to the second. */
	assert_int_equal(log_find(lg1, TM_EV_TASK_START, long_id, TM_EVF_NO_SPAWN, 0), 1);
	assert_int_equal(log_find(lg1, TM_EV_TASK_END, long_id, ANY_FLAGS), 0);
	assert_int_equal(log_find(lg2, TM_EV_TASK_START, long_id, ANY_FLAGS), 0);
	assert_int_equal(log_find(lg2, TM_EV_TASK_END, long_id, TM_EVF_PARTIAL, TM_EVF_PARTIAL), 1);
	assert_int_equal(tmd_loader_stat(l, TM_STAT_LOST), 0);
	tmd_loader_close(l);
	log_free(lg1);
	log_free(lg2);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overflow_counted_exactly),
		cmocka_unit_test(test_collector_restart),
		cmocka_unit_test(test_trace_budget_exact),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
