/* The kernel trace budget (kernel_trace_rate): each spawning thread lets at
 * most rate tasks a second fire their probes, in bursts of up to rate / 10;
 * the rest are counted per type in the registry (trace_skipped) and run the
 * same. Critical tasks are always traced. No privileges needed: what is
 * checked is the library's decision and its count, read back through the
 * shared-memory reader as the collector reads it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskmon.h"
#include "taskmon_shm.h"
#include "test_util.h"

static char g_conf[64];

static int trivial(void *arg)
{
	(void)arg;
	return 0;
}

/* Starts the library with that kernel_trace_rate. */
static void init_with_rate(const char *rate)
{
	FILE *f = fopen(g_conf, "w");
	assert_non_null(f);
	fprintf(f, "[task_management]\nkernel_trace_rate = %s\n", rate);
	fclose(f);
	assert_int_equal(tm_init(g_conf), 0);
}

/* Per-type trace_skipped of this process, as a collector reads it. */
static uint64_t skipped(int type)
{
	tm_shm_reader *r;
	struct tm_shm_type_snapshot *t = calloc(TM_MAX_TYPES, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(tm_shm_open_pid(&r, getpid()), 0);
	int n = tm_shm_read_types(r, t, TM_MAX_TYPES);
	uint64_t v = UINT64_MAX;
	for (int i = 0; i < n; i++)
		if (t[i].id == type)
			v = t[i].trace_skipped;
	tm_shm_close(r);
	free(t);
	assert_true(v != UINT64_MAX);
	return v;
}

/* Spawns n trivial tasks flat out and joins them; returns the elapsed ns. */
static uint64_t burst(size_t n, int type)
{
	tm_task **t = calloc(n, sizeof(*t));
	assert_non_null(t);
	uint64_t t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		assert_int_equal(tm_spawn(&t[i], "burst", trivial, NULL, TM_SPAWN_OPTS(.type = type)), 0);
	uint64_t t1 = now_ns();
	for (size_t i = 0; i < n; i++)
		assert_int_equal(tm_join(t[i], 10000, NULL, NULL), 0);
	free(t);
	return t1 - t0;
}

/* Rate 1000: a burst of 100 is traced whole, then about one task a ms. */
static void test_budget_limits_traced_tasks(void **state)
{
	(void)state;
	init_with_rate("1000");
	const size_t n = 5000;
	uint64_t ns = burst(n, TM_NETWORK);
	uint64_t skip = skipped(TM_NETWORK), traced = n - skip;
	uint64_t most = 100 + 1000 * ns / 1000000000ull + 1;
	print_message("rate 1000/s: %zu tasks spawned in %.1f ms, %llu traced (at most %llu allowed), %llu skipped\n", n,
	              ns / 1e6, (unsigned long long)traced, (unsigned long long)most, (unsigned long long)skip);
	assert_true(skip <= n);
	assert_true(traced >= 100);   /* the first burst is traced */
	assert_true(traced <= most);
	/* Other types are untouched, and the stats count every task. */
	assert_int_equal(skipped(TM_DATABASE), 0);
	struct tm_stats s;
	assert_int_equal(tm_get_stats(&s), 0);
	assert_int_equal(s.by_type[TM_NETWORK].spawned, n);
	assert_int_equal(s.by_type[TM_NETWORK].succeeded, n);

	/* After a quiet spell the credit is back: a burst of 100 is traced whole. */
	sleep_ms(150);
	uint64_t before = skipped(TM_NETWORK);
	burst(100, TM_NETWORK);
	assert_int_equal(skipped(TM_NETWORK), before);
	tm_shutdown();
}

static void *spawner(void *arg)
{
	burst(400, (int)(intptr_t)arg);
	return NULL;
}

/* The budget is per spawning thread: two threads each get their own burst. */
static void test_budget_is_per_thread(void **state)
{
	(void)state;
	init_with_rate("1000");
	pthread_t a, b;
	assert_int_equal(pthread_create(&a, NULL, spawner, (void *)(intptr_t)TM_NETWORK), 0);
	assert_int_equal(pthread_create(&b, NULL, spawner, (void *)(intptr_t)TM_DATABASE), 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	uint64_t ta = 400 - skipped(TM_NETWORK), tb = 400 - skipped(TM_DATABASE);
	print_message("two spawning threads at rate 1000/s: %llu and %llu of 400 traced\n", (unsigned long long)ta,
	              (unsigned long long)tb);
	assert_true(ta >= 100);
	assert_true(tb >= 100);
	tm_shutdown();
}

/* Rate 0 traces every task. */
static void test_rate_zero_traces_all(void **state)
{
	(void)state;
	init_with_rate("0");
	burst(5000, TM_NETWORK);
	assert_int_equal(skipped(TM_NETWORK), 0);
	tm_shutdown();
}

static int critical_body(void *arg)
{
	(void)arg;
	return 0;
}

/* Critical tasks are traced whatever the budget says. */
static void test_critical_always_traced(void **state)
{
	(void)state;
	init_with_rate("1");
	burst(50, TM_NETWORK);   /* spends the credit of this thread */
	uint64_t before = skipped(TM_BACKGROUND);
	for (int i = 0; i < 20; i++) {
		tm_task *t;
		assert_int_equal(tm_spawn_critical(&t, "crit", critical_body, NULL,
		                                   TM_CRITICAL_OPTS(.type = TM_BACKGROUND,
		                                                    .restart = TM_RESTART_NEVER)),
		                 0);
		assert_int_equal(tm_join(t, 10000, NULL, NULL), 0);
	}
	assert_int_equal(skipped(TM_BACKGROUND), before);
	assert_true(skipped(TM_NETWORK) > 0);
	tm_shutdown();
}

/* Below ten a second the burst still holds one task: rate 1 traces the
 * first task, then one a second. */
static void *five(void *arg)
{
	(void)arg;
	burst(5, TM_NETWORK);
	return NULL;
}

static void test_slow_rate_traces_one(void **state)
{
	(void)state;
	init_with_rate("1");
	pthread_t th;   /* a thread of its own: the budget is per spawning thread */
	assert_int_equal(pthread_create(&th, NULL, five, NULL), 0);
	pthread_join(th, NULL);
	assert_int_equal(skipped(TM_NETWORK), 4);
	tm_shutdown();
}

/* A bad value is refused with one sentence naming the key. */
static void test_bad_rate_refused(void **state)
{
	(void)state;
	FILE *f = fopen(g_conf, "w");
	assert_non_null(f);
	fprintf(f, "[task_management]\nkernel_trace_rate = lots\n");
	fclose(f);
	assert_int_equal(tm_init(g_conf), -EINVAL);
	print_message("%s\n", tm_last_error());
	assert_non_null(strstr(tm_last_error(), "kernel_trace_rate"));
}

int main(void)
{
	snprintf(g_conf, sizeof(g_conf), "/tmp/taskmon-trace-budget-%d.ini", (int)getpid());
	unsetenv("TASKMON_SOCKET");
	setenv("TASKMON_SOCKET", "/nonexistent/taskmond.sock", 1);   /* no collector: tm_init does not wait */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_limits_traced_tasks),
		cmocka_unit_test(test_budget_is_per_thread),
		cmocka_unit_test(test_rate_zero_traces_all),
		cmocka_unit_test(test_critical_always_traced),
		cmocka_unit_test(test_slow_rate_traces_one),
		cmocka_unit_test(test_bad_rate_refused),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(g_conf);
	return r;
}
