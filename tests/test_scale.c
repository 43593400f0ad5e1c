/* The seed scenarios at full size: 10,000 concurrent tasks, cancelling 1000
 * sleeping tasks by type, and 10,000 finished records cleaned up.
 *
 * Time bounds here are generous on purpose (CI machines are shared and
 * noisy); the tight targets are measured by the benchmarks. */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "taskmon.h"
#include "test_util.h"

enum { N_CONCURRENT = 10000, N_BACKGROUND = 1000, BATCHES = 100, BATCH = 100 };

/* ThreadSanitizer's runtime reserves a trace per thread and cannot map
 * 10,000 of them ("can not mmap thread trace"); under it the concurrent
 * scenario runs smaller, which still exercises the same paths for races. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifdef UNDER_TSAN
#define CONCURRENT_HERE 2000
#else
#define CONCURRENT_HERE N_CONCURRENT
#endif

/* ---- helpers ------------------------------------------------------------- */

static struct tm_stats stats_now(void)
{
	struct tm_stats s;
	memset(&s, 0xa5, sizeof(s));
	assert_int_equal(tm_get_stats(&s), 0);
	return s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double ms_since(uint64_t t0)
{
	return (double)(now_ns() - t0) / 1e6;
}

/* ---- fixture ------------------------------------------------------------- */

struct slot {
	pid_t tid;
	int   sleep_rc;
};

struct fx {
	atomic_int gate, started, returned;
	tm_task **h;                 /* held handles; NULL once joined */
	struct slot *slot;
	struct tm_task_info *info;   /* room for every record */
	size_t n;                    /* entries in h, slot; info has n + 64 */
};

static struct fx *fx_of(void **state)
{
	return *state;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->n = N_CONCURRENT;
	f->h = calloc(f->n, sizeof(*f->h));
	f->slot = calloc(f->n, sizeof(*f->slot));
	f->info = calloc(f->n + 64, sizeof(*f->info));
	if (!f->h || !f->slot || !f->info)
		return -1;
	*state = f;
	/* Defaults only: an environment config could cap the concurrency. */
	unsetenv("TASKMON_CONFIG");
	int rc = tm_init(NULL);
	if (rc != 0) {
		print_error("tm_init(NULL) = %d: %s\n", rc, tm_last_error());
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = fx_of(state);
	gate_open(&f->gate);
	tm_shutdown();
	for (size_t i = 0; i < f->n; i++)
		if (f->h[i])
			tm_release(f->h[i]);
	free(f->h);
	free(f->slot);
	free(f->info);
	free(f);
	return 0;
}

/* Task bodies reach the fixture through a file-scope pointer and their slot
 * through arg, so one body serves every scenario. */
static struct fx *cur;

static int gated_body(void *arg)
{
	struct slot *s = arg;
	s->tid = gettid();
	atomic_fetch_add(&cur->started, 1);
	gate_wait(&cur->gate);
	atomic_fetch_add(&cur->returned, 1);
	return 0;
}

static int sleeper_body(void *arg)
{
	struct slot *s = arg;
	s->tid = gettid();
	atomic_fetch_add(&cur->started, 1);
	s->sleep_rc = tm_sleep_ms(3600ull * 1000);
	atomic_fetch_add(&cur->returned, 1);
	return 0;
}

static int quick_body(void *arg)
{
	(void)arg;
	atomic_fetch_add(&cur->returned, 1);
	return 0;
}

static void spawn_or_fail(struct fx *f, size_t i, const char *name, tm_fn fn, int type)
{
	int rc = tm_spawn(&f->h[i], name, fn, &f->slot[i], TM_SPAWN_OPTS(.type = type));
	if (rc != 0)
		fail_msg("spawn #%zu (%s): %d, %s", i, name, rc, tm_last_error());
}

static void join_ok(struct fx *f, size_t i, enum tm_status want)
{
	enum tm_status st;
	int rc = tm_join(f->h[i], 10000, &st, NULL);
	if (rc != 0)
		fail_msg("join #%zu: %d", i, rc);
	f->h[i] = NULL;
	if (st != want)
		fail_msg("task #%zu ended %s, want %s", i, tm_status_name(st), tm_status_name(want));
}

/* ---- scenarios ----------------------------------------------------------- */

static void test_ten_thousand_concurrent(void **state)
{
	struct fx *f = cur = fx_of(state);
	const int n = CONCURRENT_HERE;
	struct tm_stats before = stats_now();
	if (n != N_CONCURRENT)
		print_message("  ThreadSanitizer build: %d concurrent tasks instead of %d\n", n, N_CONCURRENT);

	uint64_t t0 = now_ns();
	for (int i = 0; i < n; i++)
		spawn_or_fail(f, (size_t)i, "scale-worker", gated_body, TM_GENERAL);
	double spawn_ms = ms_since(t0);
	if (!wait_count(&f->started, n, 20000))
		fail_msg("only %d of %d tasks started", atomic_load(&f->started), n);
	print_message("  %d spawns in %.0f ms, all running after %.0f ms\n", n, spawn_ms, ms_since(t0));

	/* Everyone is blocked on the gate now: all counted, all listed. */
	struct tm_stats mid = stats_now();
	assert_true(mid.currently_running >= (uint64_t)n);
	assert_int_equal(mid.total_spawned - before.total_spawned, n);
	assert_int_equal(mid.by_type[TM_GENERAL].running, n);

	int listed = tm_list_tasks(f->info, f->n + 64, true);
	assert_int_equal(listed, n);
	uint64_t *ids = calloc((size_t)n, sizeof(*ids));
	uint64_t *want = calloc((size_t)n, sizeof(*want));
	assert_non_null(ids);
	assert_non_null(want);
	for (int i = 0; i < n; i++) {
		ids[i] = f->info[i].id;
		want[i] = tm_task_id(f->h[i]);
	}
	qsort(ids, (size_t)n, sizeof(*ids), cmp_u64);
	qsort(want, (size_t)n, sizeof(*want), cmp_u64);
	for (int i = 0; i < n; i++)
		if (ids[i] != want[i]) {
			uint64_t a = ids[i], b = want[i];
			free(ids);
			free(want);
			fail_msg("listed ids differ from spawned ids at %d: %llu vs %llu", i,
			         (unsigned long long)a, (unsigned long long)b);
		}

	/* One thread per task: 10,000 distinct kernel threads. */
	for (int i = 0; i < n; i++)
		ids[i] = (uint64_t)f->slot[i].tid;
	qsort(ids, (size_t)n, sizeof(*ids), cmp_u64);
	int dup = 0;
	for (int i = 1; i < n; i++)
		dup += ids[i] == ids[i - 1];
	free(ids);
	free(want);
	assert_int_equal(dup, 0);

	gate_open(&f->gate);
	for (int i = 0; i < n; i++)
		join_ok(f, (size_t)i, TM_SUCCEEDED);
	assert_int_equal(atomic_load(&f->returned), n);

	struct tm_stats after = stats_now();
	assert_int_equal(after.total_completed - before.total_completed, n);
	assert_int_equal(after.by_type[TM_GENERAL].succeeded - before.by_type[TM_GENERAL].succeeded, n);
	assert_int_equal(after.total_failed - before.total_failed, 0);
	assert_int_equal(after.currently_running, 0);
	print_message("  whole scenario %.0f ms\n", ms_since(t0));
}

static void test_cancel_type_thousand(void **state)
{
	struct fx *f = cur = fx_of(state);
	const int n = N_BACKGROUND;
	struct tm_stats before = stats_now();

	for (int i = 0; i < n; i++)
		spawn_or_fail(f, (size_t)i, "bg-sleeper", sleeper_body, TM_BACKGROUND);
	/* A task of another type, to show the cancel is by type only. */
	spawn_or_fail(f, (size_t)n, "bystander", sleeper_body, TM_MAINTENANCE);
	if (!wait_count(&f->started, n + 1, 20000))
		fail_msg("only %d of %d tasks started", atomic_load(&f->started), n + 1);
	sleep_ms(50);	/* let the last ones get into tm_sleep_ms proper */

	uint64_t t0 = now_ns();
	int cancelled = tm_cancel_type(TM_BACKGROUND);
	double call_ms = ms_since(t0);
	assert_int_equal(cancelled, n);
	assert_true(call_ms < 2000);

	/* All of them end promptly, without any join driving them. */
	struct tm_stats s = stats_now();
	while (s.by_type[TM_BACKGROUND].running != 0 && ms_since(t0) < 4000) {
		sleep_ms(1);
		s = stats_now();
	}
	double end_ms = ms_since(t0);
	print_message("  tm_cancel_type: %.2f ms, all %d ended after %.2f ms\n", call_ms, n, end_ms);
	assert_int_equal(s.by_type[TM_BACKGROUND].running, 0);
	assert_true(end_ms - call_ms < 2000);

	int woken = 0;
	for (int i = 0; i < n; i++) {
		join_ok(f, (size_t)i, TM_CANCELLED);
		woken += f->slot[i].sleep_rc == -ECANCELED;
	}
	assert_int_equal(woken, n);

	struct tm_stats after = stats_now();
	assert_int_equal(after.total_cancelled - before.total_cancelled, n);
	assert_int_equal(after.by_type[TM_BACKGROUND].cancelled - before.by_type[TM_BACKGROUND].cancelled, n);
	assert_int_equal(after.total_completed - before.total_completed, 0);

	/* The bystander sleeps on; nothing of the type is left to cancel. */
	assert_int_equal(after.by_type[TM_MAINTENANCE].running, 1);
	assert_int_equal(atomic_load(&f->returned), n);
	assert_int_equal(tm_cancel_type(TM_BACKGROUND), 0);
	assert_int_equal(tm_cancel(f->h[n]), 0);
	join_ok(f, (size_t)n, TM_CANCELLED);
}

static void test_batches_then_cleanup(void **state)
{
	struct fx *f = cur = fx_of(state);
	struct tm_stats start = stats_now();
	const int total = BATCHES * BATCH;

	uint64_t t0 = now_ns();
	for (int b = 0; b < BATCHES; b++) {
		for (int i = 0; i < BATCH; i++)
			spawn_or_fail(f, (size_t)i, "batch-task", quick_body, TM_DATABASE);
		for (int i = 0; i < BATCH; i++)
			join_ok(f, (size_t)i, TM_SUCCEEDED);
	}
	print_message("  %d batches of %d in %.0f ms\n", BATCHES, BATCH, ms_since(t0));

	struct tm_stats done = stats_now();
	assert_int_equal(done.total_completed - start.total_completed, total);
	/* Retention (300 s by default) keeps every finished record visible. */
	assert_int_equal(done.tracked_records - start.tracked_records, total);
	assert_true(done.tracker_bytes > start.tracker_bytes);
	int listed = tm_list_tasks(f->info, f->n + 64, false);
	assert_int_equal(listed, (int)start.tracked_records + total);
	assert_int_equal(tm_cleanup(60000), 0);	/* none is a minute old */

	/* Some tasks still running when the finished ones are dropped. */
	enum { RUNNING = 3 };
	uint64_t run_ids[RUNNING];
	for (int i = 0; i < RUNNING; i++) {
		spawn_or_fail(f, (size_t)i, "survivor", gated_body, TM_DATABASE);
		run_ids[i] = tm_task_id(f->h[i]);
	}
	assert_true(wait_count(&f->started, RUNNING, 5000));

	int dropped = tm_cleanup(0);
	assert_int_equal(dropped, (int)start.tracked_records + total);
	listed = tm_list_tasks(f->info, f->n + 64, false);
	assert_int_equal(listed, RUNNING);
	for (int i = 0; i < listed; i++) {
		assert_int_equal(f->info[i].status, TM_RUNNING);
		bool mine = false;
		for (int j = 0; j < RUNNING; j++)
			mine |= f->info[i].id == run_ids[j];
		assert_true(mine);
	}
	assert_int_equal(stats_now().tracked_records, RUNNING);

	/* Once they end and are dropped too, the tracker is back where it began. */
	gate_open(&f->gate);
	for (int i = 0; i < RUNNING; i++)
		join_ok(f, (size_t)i, TM_SUCCEEDED);
	assert_int_equal(tm_cleanup(0), RUNNING);
	struct tm_stats end = stats_now();
	assert_int_equal(tm_list_tasks(f->info, f->n + 64, false), 0);
	assert_int_equal(end.tracked_records, 0);
	/* A handle's memory goes when its last reference does: the task thread
	 * drops its own just after tm_join has returned, so a slow machine (a
	 * sanitizer build) may see one still held for a moment. */
	for (uint64_t until = now_ns() + 5000000000ull; end.tracker_bytes != start.tracker_bytes && now_ns() < until;
	     end = stats_now())
		sleep_ms(1);
	assert_int_equal(end.tracker_bytes, start.tracker_bytes);
	/* Dropping records forgets no counts. */
	assert_int_equal(end.total_completed - start.total_completed, total + RUNNING);
}

/* tm_cleanup(age) drops only what is at least that old. */
static void test_cleanup_by_age(void **state)
{
	struct fx *f = cur = fx_of(state);
	spawn_or_fail(f, 0, "old-record", quick_body, TM_GENERAL);
	uint64_t old_id = tm_task_id(f->h[0]);
	join_ok(f, 0, TM_SUCCEEDED);
	sleep_ms(800);
	spawn_or_fail(f, 1, "new-record", quick_body, TM_GENERAL);
	uint64_t new_id = tm_task_id(f->h[1]);
	join_ok(f, 1, TM_SUCCEEDED);

	assert_int_equal(tm_cleanup(400), 1);
	int listed = tm_list_tasks(f->info, f->n + 64, false);
	assert_int_equal(listed, 1);
	assert_int_equal(f->info[0].id, new_id);
	assert_true(f->info[0].id != old_id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ten_thousand_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_type_thousand, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches_then_cleanup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_by_age, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
