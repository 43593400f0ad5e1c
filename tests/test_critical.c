/* Critical tasks: restart policies, backoff timing, intensity, reset, cancel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include "taskmon.h"
#include "test_util.h"

#define MAX_RUNS 64

/* What a test's body sees: how often it ran and when. */
struct script {
	atomic_int runs;
	uint64_t started[MAX_RUNS];
	int fail_first;           /* this many runs fail (panic or return 1), then succeed */
	bool panic;               /* fail by tm_panic rather than by returning 1 */
	unsigned run_ms;          /* each run lasts this long (tm_sleep_ms) */
	atomic_int cancelled_seen;
};

static int scripted(void *arg)
{
	struct script *s = arg;
	int n = atomic_fetch_add(&s->runs, 1);
	if (n < MAX_RUNS)
		s->started[n] = now_ns();
	if (s->run_ms && tm_sleep_ms(s->run_ms) == -ECANCELED) {
		atomic_fetch_add(&s->cancelled_seen, 1);
		return 2;
	}
	if (n < s->fail_first) {
		if (s->panic)
			tm_panic("run %d fails", n);
		return 1;
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return tm_init(NULL);
}

static int teardown(void **state)
{
	(void)state;
	tm_shutdown();
	return 0;
}

static struct tm_stats stats_now(void)
{
	struct tm_stats s;
	assert_int_equal(tm_get_stats(&s), 0);
	return s;
}

/* The seed's scenario: panics three times, then succeeds. */
static void test_panics_three_times_then_succeeds(void **state)
{
	(void)state;
	static struct script s = { .fail_first = 3, .panic = true };
	struct tm_stats before = stats_now();
	tm_task *t;
	assert_int_equal(tm_spawn_critical(&t, "game_sync", scripted, &s,
	                 TM_CRITICAL_OPTS(.type = TM_GAME_LOGIC, .restart = TM_RESTART_ON_PANIC,
	                                  .backoff = { .kind = TM_BACKOFF_EXPONENTIAL, .base_ms = 20,
	                                               .max_ms = 1000, .multiplier = 2.0 })), 0);
	uint64_t id = tm_task_id(t);
	enum tm_status st;
	int rc = -1;
	assert_int_equal(tm_join(t, 10000, &st, &rc), 0);
	assert_int_equal(st, TM_SUCCEEDED);
	assert_int_equal(rc, 0);
	assert_int_equal(atomic_load(&s.runs), 4);
	/* Delays 20, 40, 80 ms: each gap at least the delay, and not wildly more. */
	const uint64_t want[3] = { 20, 40, 80 };
	for (int i = 0; i < 3; i++) {
		uint64_t gap_ms = (s.started[i + 1] - s.started[i]) / 1000000;
		if (gap_ms < want[i] || gap_ms > want[i] + 500)
			fail_msg("restart %d came %llu ms after the run before; expected %llu ms", i + 1,
			         (unsigned long long)gap_ms, (unsigned long long)want[i]);
	}
	struct tm_stats after = stats_now();
	assert_int_equal(after.by_type[TM_GAME_LOGIC].spawned - before.by_type[TM_GAME_LOGIC].spawned, 1);
	assert_int_equal(after.by_type[TM_GAME_LOGIC].panicked - before.by_type[TM_GAME_LOGIC].panicked, 3);
	assert_int_equal(after.by_type[TM_GAME_LOGIC].restarts - before.by_type[TM_GAME_LOGIC].restarts, 3);
	assert_int_equal(after.by_type[TM_GAME_LOGIC].succeeded - before.by_type[TM_GAME_LOGIC].succeeded, 1);
	assert_int_equal(after.by_type[TM_GAME_LOGIC].running, before.by_type[TM_GAME_LOGIC].running);
	assert_int_equal(after.total_escalations, before.total_escalations);
	/* The record counts the incarnations under the one id. */
	struct tm_task_info info[64];
	int n = tm_list_tasks(info, 64, false);
	bool found = false;
	for (int i = 0; i < n; i++)
		if (info[i].id == id) {
			found = true;
			assert_int_equal(info[i].restarts, 3);
			assert_int_equal(info[i].status, TM_SUCCEEDED);
		}
	assert_true(found);
}

/* OTP intensity: 6 failures within the window, at most 5 restarts. */
static void test_intensity_gives_up_after_exactly_five(void **state)
{
	(void)state;
	static struct script s = { .fail_first = 1000 };
	struct tm_stats before = stats_now();
	tm_task *t;
	assert_int_equal(tm_spawn_critical(&t, "flapping", scripted, &s,
	                 TM_CRITICAL_OPTS(.restart = TM_RESTART_ON_FAILURE, .max_restarts = 5, .window_ms = 60000,
	                                  .backoff = { .base_ms = 1 })), 0);
	enum tm_status st;
	int rc = 0;
	assert_int_equal(tm_join(t, 10000, &st, &rc), 0);
	assert_int_equal(st, TM_FAILED);        /* it ends with its last status */
	assert_int_equal(rc, 1);
	assert_int_equal(atomic_load(&s.runs), 6);
	struct tm_stats after = stats_now();
	assert_int_equal(after.total_restarts - before.total_restarts, 5);
	assert_int_equal(after.total_failed - before.total_failed, 6);
	assert_int_equal(after.total_escalations - before.total_escalations, 1);
}

/* Restarts spread wider than the window never add up to giving up. */
static void test_window_slides(void **state)
{
	(void)state;
	static struct script s = { .fail_first = 6 };
	tm_task *t;
	/* 2 restarts allowed per 50 ms, each 40 ms apart: never 3 within 50 ms. */
	assert_int_equal(tm_spawn_critical(&t, "slow_flap", scripted, &s,
	                 TM_CRITICAL_OPTS(.restart = TM_RESTART_ON_FAILURE, .max_restarts = 2, .window_ms = 50,
	                                  .backoff = { .base_ms = 40 })), 0);
	enum tm_status st;
	assert_int_equal(tm_join(t, 10000, &st, NULL), 0);
	assert_int_equal(st, TM_SUCCEEDED);
	assert_int_equal(atomic_load(&s.runs), 7);
}

/* A healthy run resets the attempt counter: the delay starts over. */
static void test_reset_after_healthy_run(void **state)
{
	(void)state;
	static struct script s = { .fail_first = 3, .run_ms = 60 };
	tm_task *t;
	assert_int_equal(tm_spawn_critical(&t, "resets", scripted, &s,
	                 TM_CRITICAL_OPTS(.restart = TM_RESTART_ON_FAILURE, .reset_after_ms = 50,
	                                  .backoff = { .kind = TM_BACKOFF_EXPONENTIAL, .base_ms = 10,
	                                               .max_ms = 5000, .multiplier = 10.0 })), 0);
	assert_int_equal(tm_join(t, 10000, NULL, NULL), 0);
	assert_int_equal(atomic_load(&s.runs), 4);
	/* Without the reset the third delay would be 1000 ms; with it every delay is 10 ms. */
	for (int i = 0; i < 3; i++) {
		uint64_t gap_ms = (s.started[i + 1] - s.started[i]) / 1000000;
		if (gap_ms > 60 + 10 + 400)
			fail_msg("restart %d came after %llu ms: the healthy run did not reset the delay", i + 1,
			         (unsigned long long)gap_ms);
	}
}

static void test_policies(void **state)
{
	(void)state;
	struct { enum tm_restart policy; bool panic; int want_runs; enum tm_status want; } cases[] = {
		{ TM_RESTART_NEVER, true, 1, TM_PANICKED },
		{ TM_RESTART_ON_PANIC, false, 1, TM_FAILED },     /* a plain failure is not a panic */
		{ TM_RESTART_ON_PANIC, true, 2, TM_SUCCEEDED },
		{ TM_RESTART_ON_FAILURE, false, 2, TM_SUCCEEDED },
		{ TM_RESTART_ALWAYS, false, 6, TM_SUCCEEDED },   /* success restarts too, 5 times by default */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		static struct script s;
		memset(&s, 0, sizeof(s));
		s.fail_first = 1;
		s.panic = cases[i].panic;
		tm_task *t;
		assert_int_equal(tm_spawn_critical(&t, "policy", scripted, &s,
		                 TM_CRITICAL_OPTS(.restart = cases[i].policy, .backoff = { .base_ms = 1 })), 0);
		enum tm_status st;
		assert_int_equal(tm_join(t, 10000, &st, NULL), 0);
		if (st != cases[i].want || atomic_load(&s.runs) != cases[i].want_runs)
			fail_msg("case %zu: status %s after %d runs; expected %s after %d", i, tm_status_name(st),
			         atomic_load(&s.runs), tm_status_name(cases[i].want), cases[i].want_runs);
	}
}

/* ALWAYS restarts a success too, until the intensity limit. */
static void test_always_restarts_success(void **state)
{
	(void)state;
	static struct script s;
	tm_task *t;
	assert_int_equal(tm_spawn_critical(&t, "loop", scripted, &s,
	                 TM_CRITICAL_OPTS(.restart = TM_RESTART_ALWAYS, .max_restarts = 3,
	                                  .backoff = { .base_ms = 1 })), 0);
	enum tm_status st;
	assert_int_equal(tm_join(t, 10000, &st, NULL), 0);
	assert_int_equal(st, TM_SUCCEEDED);
	assert_int_equal(atomic_load(&s.runs), 4);
}

static bool only_rc_7(enum tm_status status, int rc, void *arg)
{
	(void)arg;
	return status == TM_FAILED && rc == 7;
}

static int returns_7_then_8(void *arg)
{
	atomic_int *n = arg;
	return atomic_fetch_add(n, 1) == 0 ? 7 : 8;
}

static void test_should_restart_overrides(void **state)
{
	(void)state;
	static atomic_int n;
	tm_task *t;
	assert_int_equal(tm_spawn_critical(&t, "custom", returns_7_then_8, &n,
	                 TM_CRITICAL_OPTS(.restart = TM_RESTART_NEVER, .should_restart = only_rc_7,
	                                  .backoff = { .base_ms = 1 })), 0);
	enum tm_status st;
	int rc;
	assert_int_equal(tm_join(t, 10000, &st, &rc), 0);
	assert_int_equal(atomic_load(&n), 2);
	assert_int_equal(st, TM_FAILED);
	assert_int_equal(rc, 8);
}

/* A cancel during the backoff delay ends the task at once, cancelled. */
static void test_cancel_during_backoff(void **state)
{
	(void)state;
	static struct script s = { .fail_first = 1000 };
	tm_task *t;
	assert_int_equal(tm_spawn_critical(&t, "long_delay", scripted, &s,
	                 TM_CRITICAL_OPTS(.restart = TM_RESTART_ON_FAILURE, .backoff = { .base_ms = 3600000 })), 0);
	assert_true(wait_count(&s.runs, 1, 5000));
	sleep_ms(20);
	uint64_t t0 = now_ns();
	assert_int_equal(tm_cancel(t), 0);
	enum tm_status st;
	assert_int_equal(tm_join(t, 5000, &st, NULL), 0);
	assert_true(now_ns() - t0 < 2000000000ull);
	assert_int_equal(st, TM_CANCELLED);
	assert_int_equal(atomic_load(&s.runs), 1);
}

/* A cancelled run is never restarted, whatever the policy. */
static void test_cancel_wins_over_restart(void **state)
{
	(void)state;
	static struct script s = { .run_ms = 3600000 };
	struct tm_stats before = stats_now();
	tm_task *t;
	assert_int_equal(tm_spawn_critical(&t, "forever", scripted, &s,
	                 TM_CRITICAL_OPTS(.restart = TM_RESTART_ALWAYS, .backoff = { .base_ms = 1 })), 0);
	assert_true(wait_count(&s.runs, 1, 5000));
	assert_int_equal(tm_cancel(t), 0);
	enum tm_status st;
	int rc;
	assert_int_equal(tm_join(t, 5000, &st, &rc), 0);
	assert_int_equal(st, TM_CANCELLED);
	assert_int_equal(rc, 2);
	assert_int_equal(atomic_load(&s.runs), 1);
	assert_int_equal(atomic_load(&s.cancelled_seen), 1);
	struct tm_stats after = stats_now();
	assert_int_equal(after.total_restarts, before.total_restarts);
	assert_int_equal(after.total_cancelled - before.total_cancelled, 1);
}

static void test_bad_options(void **state)
{
	(void)state;
	static struct script s;
	tm_task *t = (tm_task *)&s;
	assert_int_equal(tm_spawn_critical(&t, "x", scripted, &s, TM_CRITICAL_OPTS(.restart = (enum tm_restart)9)),
	                 -EINVAL);
	assert_null(t);
	assert_non_null(strstr(tm_last_error(), "restart policy"));
	assert_int_equal(tm_spawn_critical(NULL, "x", scripted, &s,
	                 TM_CRITICAL_OPTS(.backoff = { .kind = (enum tm_backoff_kind)7 })), -EINVAL);
	assert_int_equal(tm_spawn_critical(NULL, "x", scripted, &s,
	                 TM_CRITICAL_OPTS(.backoff = { .multiplier = -1.0 })), -EINVAL);
	assert_int_equal(tm_spawn_critical(NULL, "", scripted, &s, NULL), -EINVAL);
	assert_int_equal(tm_spawn_critical(NULL, "x", NULL, &s, NULL), -EINVAL);
	struct tm_critical_opts o = { .sz = 3 };
	assert_int_equal(tm_spawn_critical(NULL, "x", scripted, &s, &o), -EINVAL);
	assert_int_equal(atomic_load(&s.runs), 0);
}

/* Default options: no restart, and the task runs once like any other. */
static void test_defaults(void **state)
{
	(void)state;
	static struct script s = { .fail_first = 1 };
	tm_task *t;
	assert_int_equal(tm_spawn_critical(&t, "plain", scripted, &s, NULL), 0);
	enum tm_status st;
	assert_int_equal(tm_join(t, 5000, &st, NULL), 0);
	assert_int_equal(st, TM_FAILED);
	assert_int_equal(atomic_load(&s.runs), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_panics_three_times_then_succeeds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intensity_gives_up_after_exactly_five, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_slides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_after_healthy_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_always_restarts_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_should_restart_overrides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_during_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_wins_over_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
