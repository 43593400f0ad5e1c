/* Resource exhaustion: the limits hold under a spawn storm from many threads.
 *
 * test_limits.c checks each limit with one spawning thread; here sixteen
 * threads spawn at once, so that admissions race:
 *   - max_concurrent_total, a built-in type's max_concurrent_<type> and a
 *     custom type's max_concurrent are never exceeded, as the task bodies
 *     themselves count (a body runs only after its admission, and ends
 *     before its release);
 *   - max_tracked_tasks bounds the records held, refusals say so;
 *   - every refusal is counted once, every admitted task ends once:
 *     spawned = ended + running at every step, nothing is left running. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "taskmon.h"
#include "test_util.h"

#define THREADS 16
#define TOTAL_LIMIT 48
#define NET_LIMIT 8
#define IO_LIMIT 4

static char tmpdir[64];

#define assert_contains(hay, needle) do { \
	const char *h_ = (hay), *n_ = (needle); \
	if (h_ == NULL || strstr(h_, n_) == NULL) \
		fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)"); \
} while (0)

static void use_config(const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/storm.ini", tmpdir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	tm_shutdown();
	if (tm_init(path) != 0)
		fail_msg("tm_init: %s", tm_last_error());
}

/* ---- bodies that count themselves ---------------------------------------------- */

struct live {
	atomic_int now, max;
};
static struct live live_total, live_type[TM_MAX_TYPES];

static void enter(struct live *l)
{
	int n = atomic_fetch_add(&l->now, 1) + 1;
	int m = atomic_load(&l->max);
	while (n > m && !atomic_compare_exchange_weak(&l->max, &m, n))
		;
}

static int body_counted(void *arg)
{
	int type = (int)(intptr_t)arg;
	enter(&live_total);
	enter(&live_type[type]);
	tm_sleep_ms(1 + (unsigned)(tm_current_id() % 3));
	atomic_fetch_sub(&live_type[type].now, 1);
	atomic_fetch_sub(&live_total.now, 1);
	return 0;
}

static void reset_live(void)
{
	memset(&live_total, 0, sizeof(live_total));
	memset(live_type, 0, sizeof(live_type));
}

/* ---- the storm ------------------------------------------------------------------- */

struct stormer {
	pthread_t thread;
	int types[3];
	int attempts;
	int ok, refused, other;
	char other_error[256];
};

static atomic_int go;

static void *storm(void *arg)
{
	struct stormer *s = arg;
	gate_wait(&go);
	for (int i = 0; i < s->attempts; i++) {
		int type = s->types[i % 3];
		int rc = tm_spawn(NULL, "storm", body_counted, (void *)(intptr_t)type, TM_SPAWN_OPTS(.type = type));
		if (rc == 0)
			s->ok++;
		else if (rc == -EAGAIN && ++s->refused % 4 == 0)
			usleep(200);   /* now and then room for the others: a storm of admissions, not only of refusals */
		else if (rc != -EAGAIN && s->other++ == 0)
			snprintf(s->other_error, sizeof(s->other_error), "%d: %s", rc, tm_last_error());
	}
	return NULL;
}

static void wait_idle(struct tm_stats *s)
{
	uint64_t end = now_ns() + 60ull * 1000000000ull;
	do {
		assert_int_equal(tm_get_stats(s), 0);
		if (s->currently_running == 0)
			return;
		sleep_ms(2);
	} while (now_ns() < end);
	fail_msg("%llu tasks still running a minute after the storm", (unsigned long long)s->currently_running);
}

static uint64_t ended(const struct tm_stats *s)
{
	return s->total_completed + s->total_failed + s->total_panicked + s->total_cancelled + s->total_timed_out +
	       s->total_crashed;
}

static void test_limits_under_storm(void **state)
{
	(void)state;
	use_config("[task_limits]\n"
	           "max_concurrent_total = 48\n"
	           "max_concurrent_network = 8\n"
	           "[type.io]\n"
	           "max_concurrent = 4\n");
	int io = tm_type_register("io");
	assert_true(io >= TM_BUILTIN_TYPES);
	reset_live();
	struct tm_stats before, after;
	assert_int_equal(tm_get_stats(&before), 0);

	static struct stormer st[THREADS];
	atomic_store(&go, 0);
	for (int i = 0; i < THREADS; i++) {
		st[i] = (struct stormer){ .types = { TM_GENERAL, TM_NETWORK, io }, .attempts = 600 };
		assert_int_equal(pthread_create(&st[i].thread, NULL, storm, &st[i]), 0);
	}
	gate_open(&go);
	/* While it rages, the counters add up at every look. */
	for (int k = 0; k < 50; k++) {
		struct tm_stats s;
		assert_int_equal(tm_get_stats(&s), 0);
		assert_true(s.currently_running <= TOTAL_LIMIT);
		assert_true(s.by_type[TM_NETWORK].running <= NET_LIMIT);
		assert_true(s.by_type[io].running <= IO_LIMIT);
		sleep_ms(2);
	}
	int ok = 0, refused = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(st[i].thread, NULL);
		if (st[i].other)
			fail_msg("a spawn failed other than with -EAGAIN: %s", st[i].other_error);
		ok += st[i].ok;
		refused += st[i].refused;
	}
	wait_idle(&after);
	print_message("%d spawns from %d threads: %d admitted, %d refused; at most %d ran at once "
	              "(general %d, network %d, io %d)\n", THREADS * 600, THREADS, ok, refused,
	              atomic_load(&live_total.max), atomic_load(&live_type[TM_GENERAL].max),
	              atomic_load(&live_type[TM_NETWORK].max), atomic_load(&live_type[io].max));
	assert_true(atomic_load(&live_total.max) <= TOTAL_LIMIT);
	assert_true(atomic_load(&live_type[TM_NETWORK].max) <= NET_LIMIT);
	assert_true(atomic_load(&live_type[io].max) <= IO_LIMIT);
	assert_true(refused > 0);   /* the storm did reach the limits */
	assert_int_equal(after.total_spawned - before.total_spawned, (uint64_t)ok);
	assert_int_equal(after.total_rejected - before.total_rejected, (uint64_t)refused);
	assert_int_equal(ended(&after) - ended(&before), (uint64_t)ok);
	assert_int_equal(after.total_completed - before.total_completed, (uint64_t)ok);
	assert_int_equal(after.currently_running, 0);
}

/* ---- the registry's bound ---------------------------------------------------------- */

static atomic_int release;

static int body_held(void *arg)
{
	(void)arg;
	gate_wait(&release);
	return 0;
}

struct holder {
	pthread_t thread;
	int ok, refused, other;
	char last_refusal[256];
};

static void *hold_storm(void *arg)
{
	struct holder *h = arg;
	gate_wait(&go);
	while (h->refused < 50) {
		tm_task *t = NULL;
		int rc = tm_spawn(&t, "held", body_held, NULL, NULL);
		if (rc == 0) {
			h->ok++;
			tm_release(t);
		} else if (rc == -EAGAIN) {
			if (h->refused++ == 0)
				snprintf(h->last_refusal, sizeof(h->last_refusal), "%s", tm_last_error());
		} else {
			h->other++;
		}
	}
	return NULL;
}

static void test_registry_bound_under_storm(void **state)
{
	(void)state;
	use_config("[task_management]\nmax_tracked_tasks = 64\ntask_retention_secs = 3600\n");
	struct tm_stats before, s;
	assert_int_equal(tm_get_stats(&before), 0);
	atomic_store(&release, 0);
	atomic_store(&go, 0);
	static struct holder h[THREADS];
	for (int i = 0; i < THREADS; i++) {
		h[i] = (struct holder){ 0 };
		assert_int_equal(pthread_create(&h[i].thread, NULL, hold_storm, &h[i]), 0);
	}
	gate_open(&go);
	int ok = 0, refused = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(h[i].thread, NULL);
		assert_int_equal(h[i].other, 0);
		assert_contains(h[i].last_refusal, "max_tracked_tasks");
		ok += h[i].ok;
		refused += h[i].refused;
	}
	assert_int_equal(tm_get_stats(&s), 0);
	print_message("%d threads: %d held tasks admitted, %d refused; %llu records tracked\n", THREADS, ok, refused,
	              (unsigned long long)s.tracked_records);
	assert_int_equal(ok, 64);   /* every record held by a running task: not one more */
	assert_true(s.tracked_records <= 64);
	assert_int_equal(s.currently_running, 64);
	assert_int_equal(s.total_rejected - before.total_rejected, (uint64_t)refused);
	gate_open(&release);
	wait_idle(&s);
	assert_int_equal(s.total_spawned - before.total_spawned, 64);
	assert_int_equal(ended(&s) - ended(&before), 64);
	/* Ended records make room for new tasks before their retention is up. */
	tm_task *t;
	assert_int_equal(tm_spawn(&t, "after", body_held, NULL, NULL), 0);
	assert_int_equal(tm_join(t, 10000, NULL, NULL), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tm_storm.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	char sock[128];
	snprintf(sock, sizeof(sock), "%s/no-collector.sock", tmpdir);
	setenv("TASKMON_SOCKET", sock, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char path[128];
	/* A test that failed before it let its held tasks go must not leave
	 * tm_shutdown waiting for them. */
	gate_open(&release);
	tm_shutdown();
	snprintf(path, sizeof(path), "%s/storm.ini", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits_under_storm),
		cmocka_unit_test(test_registry_bound_under_storm),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
