/* Configuration as a workload sees it: limits and timeouts from the file,
 * bad files refused with a precise sentence, TASKMON_CONFIG, re-initialising
 * after tm_shutdown, and the shared-memory segment that mirrors the library.
 *
 * Every config file is written into a private temporary directory. */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "taskmon.h"
#include "test_util.h"
#include "taskmon_shm.h"

/* ---- helpers ------------------------------------------------------------- */

#define assert_contains(hay, needle) do { \
	const char *h_ = (hay), *n_ = (needle); \
	if (h_ == NULL || strstr(h_, n_) == NULL) \
		fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)"); \
} while (0)

static struct tm_stats stats_now(void)
{
	struct tm_stats s;
	memset(&s, 0xa5, sizeof(s));
	assert_int_equal(tm_get_stats(&s), 0);
	return s;
}

static char tmpdir[64];
static int nfiles;

/* Writes text to a new file in tmpdir. The returned path is overwritten by
 * the next call: a caller keeping two copies it. */
static const char *write_config(const char *text)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/c%d.ini", tmpdir, nfiles++);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void shm_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%d", TM_SHM_DIR, TM_SHM_PREFIX, (int)getpid());
}

static bool shm_exists(void)
{
	char p[64];
	struct stat st;
	shm_path(p, sizeof(p));
	return stat(p, &st) == 0;
}

/* Restarts the library on a fresh config; the state is process-wide and
 * tm_init on a running library changes nothing, hence the shutdown first. */
static void use_config(const char *text)
{
	const char *path = write_config(text);
	tm_shutdown();
	int rc = tm_init(path);
	if (rc != 0)
		fail_msg("tm_init(%s) = %d: %s", path, rc, tm_last_error());
}

/* The message names the line: the number stands alone, not inside another
 * number (the path is cut out first, since it may contain digits). */
static bool names_line(const char *msg, const char *path, unsigned line)
{
	char copy[512], num[16];
	snprintf(copy, sizeof(copy), "%s", msg);
	for (char *p; (p = strstr(copy, path)) != NULL; )
		memmove(p, p + strlen(path), strlen(p + strlen(path)) + 1);
	snprintf(num, sizeof(num), "%u", line);
	for (const char *p = copy; (p = strstr(p, num)) != NULL; p++) {
		bool left = p == copy || p[-1] < '0' || p[-1] > '9';
		char r = p[strlen(num)];
		if (left && (r < '0' || r > '9'))
			return true;
	}
	return false;
}

/* ---- task bodies and fixture --------------------------------------------- */

static atomic_int started, returned, deaf_done;
static int sleep_rcs[64];

/* arg carries the index into sleep_rcs so each sleeper's outcome is kept. */
static int sleeper(void *arg)
{
	int i = (int)(intptr_t)arg;
	atomic_fetch_add(&started, 1);
	sleep_rcs[i] = tm_sleep_ms(3600ull * 1000);
	atomic_fetch_add(&returned, 1);
	return 0;
}

static int short_sleeper(void *arg)
{
	int i = (int)(intptr_t)arg;
	atomic_fetch_add(&started, 1);
	sleep_rcs[i] = tm_sleep_ms(200);
	atomic_fetch_add(&returned, 1);
	return 0;
}

/* Sees the cancel and still takes 200 ms to wind down: tm_shutdown must
 * wait for that, not abandon it. */
static int slow_to_stop(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!tm_cancelled())
		sched_yield();
	sleep_ms(200);
	atomic_store(&deaf_done, 1);
	atomic_fetch_add(&returned, 1);
	return 0;
}

static int returns_arg(void *arg)
{
	atomic_fetch_add(&returned, 1);
	return (int)(intptr_t)arg;
}

static int panics(void *arg)
{
	(void)arg;
	tm_panic("segment test panic");
}

#define MAX_HELD 128
static tm_task *held[MAX_HELD];

static int nheld;

/* Slots are handed out in order and never reused within a test, so two
 * hold() calls before either spawn get distinct slots. */
static tm_task **hold(void)
{
	if (nheld == MAX_HELD)
		fail_msg("too many held handles");
	return &held[nheld++];
}

/* Joins every handle still held; tests end their tasks themselves so that
 * teardown's tm_shutdown is not what ends them. */
static void join_all_held(enum tm_status want)
{
	for (int i = 0; i < nheld; i++) {
		if (!held[i])
			continue;
		enum tm_status st;
		int rc = tm_join(held[i], 5000, &st, NULL);
		if (rc != 0)
			fail_msg("join of held task %d: %d", i, rc);
		held[i] = NULL;
		assert_int_equal(st, want);
	}
}

static int spawn_sleeper(tm_task **out, int idx, int type)
{
	return tm_spawn(out, "limit-sleeper", sleeper, (void *)(intptr_t)idx, TM_SPAWN_OPTS(.type = type));
}

static void cancel_join(tm_task **t, enum tm_status want)
{
	enum tm_status st;
	assert_int_equal(tm_cancel(*t), 0);
	assert_int_equal(tm_join(*t, 5000, &st, NULL), 0);
	*t = NULL;
	assert_int_equal(st, want);
}

static int rc_env_init = 1;

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/taskmon-limits-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	/* TASKMON_CONFIG must be in place before the process's first tm_init. */
	char path[128];
	snprintf(path, sizeof(path), "%s/env.ini", tmpdir);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs("; from the environment\n[task_limits]\nmax_concurrent_network = 2\n", f);
	fclose(f);
	setenv("TASKMON_CONFIG", path, 1);
	rc_env_init = tm_init(NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tm_shutdown();
	char path[160];
	for (int i = 0; i < nfiles; i++) {
		snprintf(path, sizeof(path), "%s/c%d.ini", tmpdir, i);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/env.ini", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	atomic_store(&started, 0);
	atomic_store(&returned, 0);
	atomic_store(&deaf_done, 0);
	memset(sleep_rcs, 0, sizeof(sleep_rcs));
	memset(held, 0, sizeof(held));
	nheld = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tm_shutdown();
	for (int i = 0; i < MAX_HELD; i++)
		if (held[i]) {
			tm_release(held[i]);
			held[i] = NULL;
		}
	return 0;
}

/* ---- TASKMON_CONFIG ------------------------------------------------------ */

static void test_env_config(void **state)
{
	(void)state;
	if (rc_env_init != 0)
		fail_msg("tm_init(NULL) with TASKMON_CONFIG set = %d: %s", rc_env_init, tm_last_error());
	tm_task **a = hold(), **b = hold();
	assert_int_equal(spawn_sleeper(a, 0, TM_NETWORK), 0);
	assert_int_equal(spawn_sleeper(b, 1, TM_NETWORK), 0);
	tm_task *c = NULL;
	assert_int_equal(spawn_sleeper(&c, 2, TM_NETWORK), -EAGAIN);
	assert_contains(tm_last_error(), "max_concurrent_network");
	cancel_join(a, TM_CANCELLED);
	cancel_join(b, TM_CANCELLED);

	/* tm_spawn without tm_init initialises from the environment too. */
	tm_shutdown();
	a = hold();
	b = hold();
	assert_int_equal(spawn_sleeper(a, 0, TM_NETWORK), 0);
	assert_int_equal(spawn_sleeper(b, 1, TM_NETWORK), 0);
	assert_int_equal(spawn_sleeper(&c, 2, TM_NETWORK), -EAGAIN);
	cancel_join(a, TM_CANCELLED);
	cancel_join(b, TM_CANCELLED);

	/* Without it: built-in defaults, no network limit. */
	tm_shutdown();
	unsetenv("TASKMON_CONFIG");
	assert_int_equal(tm_init(NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(spawn_sleeper(hold(), i, TM_NETWORK), 0);
	assert_int_equal(tm_cancel_type(TM_NETWORK), 3);
	join_all_held(TM_CANCELLED);
}

/* ---- limits ---------------------------------------------------------------- */

static void test_type_limit(void **state)
{
	(void)state;
	use_config("[task_limits]\nmax_concurrent_network = 3\n");
	struct tm_stats before = stats_now();
	tm_task **t[3];
	for (int i = 0; i < 3; i++) {
		t[i] = hold();
		assert_int_equal(spawn_sleeper(t[i], i, TM_NETWORK), 0);
	}

	tm_task *x = NULL;
	uint64_t t0 = now_ns();
	int rc = spawn_sleeper(&x, 3, TM_NETWORK);
	uint64_t us = (now_ns() - t0) / 1000;
	assert_int_equal(rc, -EAGAIN);
	assert_null(x);
	assert_true(us < 1000000);	/* refused at once, not after waiting for room */
	assert_contains(tm_last_error(), "max_concurrent_network");
	/* Detached spawns count against the limit the same way. */
	assert_int_equal(spawn_sleeper(NULL, 4, TM_NETWORK), -EAGAIN);

	struct tm_stats s = stats_now();
	assert_int_equal(s.by_type[TM_NETWORK].rejected - before.by_type[TM_NETWORK].rejected, 2);
	assert_int_equal(s.total_rejected - before.total_rejected, 2);
	assert_int_equal(s.by_type[TM_NETWORK].spawned - before.by_type[TM_NETWORK].spawned, 3);
	assert_int_equal(s.by_type[TM_NETWORK].running, 3);
	assert_int_equal(s.by_type[TM_GENERAL].rejected, 0);

	/* The limit is per type: other types are unaffected. */
	tm_task **g = hold();
	assert_int_equal(spawn_sleeper(g, 5, TM_GENERAL), 0);

	/* Room again once one ends. */
	cancel_join(t[0], TM_CANCELLED);
	tm_task **again = hold();
	rc = spawn_sleeper(again, 6, TM_NETWORK);
	if (rc != 0)
		fail_msg("spawn after a network task ended: %d (%s)", rc, tm_last_error());
	assert_int_equal(tm_cancel_type(TM_NETWORK), 3);
	assert_int_equal(tm_cancel_type(TM_GENERAL), 1);
	join_all_held(TM_CANCELLED);
}

static void test_total_limit(void **state)
{
	(void)state;
	use_config("[task_limits]\nmax_concurrent_total = 5\nmax_concurrent_network = 10\n");
	struct tm_stats before = stats_now();
	const int types[5] = { TM_GENERAL, TM_NETWORK, TM_DATABASE, TM_UI, TM_BACKGROUND };
	tm_task **t[5];
	for (int i = 0; i < 5; i++) {
		t[i] = hold();
		assert_int_equal(spawn_sleeper(t[i], i, types[i]), 0);
	}
	tm_task *x = NULL;
	assert_int_equal(spawn_sleeper(&x, 5, TM_GAME_LOGIC), -EAGAIN);
	assert_null(x);
	assert_contains(tm_last_error(), "max_concurrent_total");
	/* Under its own limit of 10, network is still held back by the total. */
	assert_int_equal(spawn_sleeper(&x, 6, TM_NETWORK), -EAGAIN);
	assert_contains(tm_last_error(), "max_concurrent_total");

	struct tm_stats s = stats_now();
	assert_int_equal(s.total_rejected - before.total_rejected, 2);
	assert_int_equal(s.by_type[TM_GAME_LOGIC].rejected - before.by_type[TM_GAME_LOGIC].rejected, 1);
	assert_int_equal(s.by_type[TM_NETWORK].rejected - before.by_type[TM_NETWORK].rejected, 1);
	assert_int_equal(s.currently_running, 5);
	assert_int_equal(s.total_spawned - before.total_spawned, 5);

	cancel_join(t[2], TM_CANCELLED);
	tm_task **again = hold();
	int rc = spawn_sleeper(again, 7, TM_GAME_LOGIC);
	if (rc != 0)
		fail_msg("spawn after a task ended under the total limit: %d (%s)", rc, tm_last_error());
	for (int type = 0; type < TM_BUILTIN_TYPES; type++)
		tm_cancel_type(type);
	join_all_held(TM_CANCELLED);
}

/* Every record held by a running task: a spawn past max_tracked_tasks is
 * refused, counted, and leaves the running count as it was. */
static void test_registry_full(void **state)
{
	(void)state;
	use_config("[task_management]\nmax_tracked_tasks = 3\n");
	struct tm_stats before = stats_now();
	tm_task **t[3];
	for (int i = 0; i < 3; i++) {
		t[i] = hold();
		assert_int_equal(spawn_sleeper(t[i], i, TM_GENERAL), 0);
	}
	tm_task *x = NULL;
	assert_int_equal(spawn_sleeper(&x, 3, TM_DATABASE), -EAGAIN);
	assert_null(x);
	assert_contains(tm_last_error(), "max_tracked_tasks");
	struct tm_stats s = stats_now();
	assert_int_equal(s.currently_running, 3);
	assert_int_equal(s.by_type[TM_DATABASE].running, 0);
	assert_int_equal(s.by_type[TM_DATABASE].rejected - before.by_type[TM_DATABASE].rejected, 1);
	assert_int_equal(s.total_spawned - before.total_spawned, 3);
	/* Once one ends and its handle is gone, its record makes room. */
	cancel_join(t[0], TM_CANCELLED);
	tm_task **again = hold();
	assert_int_equal(spawn_sleeper(again, 4, TM_DATABASE), 0);
	tm_cancel_type(TM_GENERAL);
	tm_cancel_type(TM_DATABASE);
	join_all_held(TM_CANCELLED);
}

static void test_type_timeout_from_config(void **state)
{
	(void)state;
	use_config("[task_timeouts]\nnetwork = 0.05\n");
	tm_task **net = hold(), **gen = hold(), **net_long = hold();
	uint64_t t0 = now_ns();
	assert_int_equal(spawn_sleeper(net, 0, TM_NETWORK), 0);
	/* Types without a configured timeout have none. */
	assert_int_equal(tm_spawn(gen, "no-timeout", short_sleeper, (void *)1, NULL), 0);
	/* An explicit timeout wins over the type's. */
	assert_int_equal(tm_spawn(net_long, "own-timeout", short_sleeper, (void *)2,
	                          TM_SPAWN_OPTS(.type = TM_NETWORK, .timeout_ms = 60000)), 0);

	enum tm_status st;
	assert_int_equal(tm_join(*net, 5000, &st, NULL), 0);
	*net = NULL;
	uint64_t ms = (now_ns() - t0) / 1000000;
	assert_int_equal(st, TM_TIMED_OUT);
	assert_int_equal(sleep_rcs[0], -ECANCELED);
	assert_true(ms < 2000);

	assert_int_equal(tm_join(*gen, 5000, &st, NULL), 0);
	*gen = NULL;
	assert_int_equal(st, TM_SUCCEEDED);
	assert_int_equal(sleep_rcs[1], 0);
	assert_int_equal(tm_join(*net_long, 5000, &st, NULL), 0);
	*net_long = NULL;
	assert_int_equal(st, TM_SUCCEEDED);
	assert_int_equal(sleep_rcs[2], 0);
}

static void test_custom_type_from_config(void **state)
{
	(void)state;
	use_config("[type.ingest]\nmax_concurrent = 2\n");
	int id = tm_type_register("ingest");
	assert_true(id >= TM_BUILTIN_TYPES && id < TM_MAX_TYPES);
	assert_string_equal(tm_type_name(id), "ingest");
	assert_int_equal(spawn_sleeper(hold(), 0, id), 0);
	assert_int_equal(spawn_sleeper(hold(), 1, id), 0);
	tm_task *x = NULL;
	assert_int_equal(spawn_sleeper(&x, 2, id), -EAGAIN);
	assert_contains(tm_last_error(), "max_concurrent");
	assert_contains(tm_last_error(), "ingest");
	assert_int_equal(stats_now().by_type[id].rejected, 1);
	assert_int_equal(tm_cancel_type(id), 2);
	join_all_held(TM_CANCELLED);
}

static void test_retention_from_config(void **state)
{
	(void)state;
	use_config("[task_management]\ntask_retention_secs = 1\ncleanup_interval_secs = 0.1\n");
	tm_task *t = NULL;
	assert_int_equal(tm_spawn(&t, "retained", returns_arg, NULL, NULL), 0);
	uint64_t id = tm_task_id(t);
	assert_int_equal(tm_join(t, 5000, NULL, NULL), 0);

	struct tm_task_info buf[16];
	sleep_ms(500);
	int n = tm_list_tasks(buf, 16, false);
	assert_int_equal(n, 1);
	assert_int_equal(buf[0].id, id);
	/* Ages count from the record's own end (same clock), not from when the
	 * join happened to return. */
	uint64_t t_end = buf[0].end_ns;
	assert_true(t_end != 0);

	/* Then the periodic cleanup drops it, without anyone calling tm_cleanup. */
	while (tm_list_tasks(buf, 16, false) != 0 && now_ns() - t_end < 5000000000ull)
		sleep_ms(20);
	assert_int_equal(tm_list_tasks(buf, 16, false), 0);
	double gone_ms = (double)(now_ns() - t_end) / 1e6;
	print_message("  record dropped %.0f ms after the task ended\n", gone_ms);
	assert_true(gone_ms >= 1000);
	assert_int_equal(stats_now().tracked_records, 0);
}

/* ---- bad files --------------------------------------------------------------- */

struct bad_case {
	const char *text;
	unsigned    line;
	const char *key;     /* NULL: the line has no key to name */
};

static void test_bad_configs(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
		{ "[task_limits]\nmax_concurrent_network = banana\n", 2, "max_concurrent_network" },
		{ "# comment\n; another\n\n[task_management]\nmax_restarts = 3\ntask_retention_secs = -5\n",
		  6, "task_retention_secs" },
		{ "[task_limits]\nmax_concurrent_total = 12abc\n", 2, "max_concurrent_total" },
		{ "[task_timeouts]\nnetwork = soon\n", 2, "network" },
		{ "[task_management]\nmax_restarts = 1\nmax_restarts = 2\nmax_restarts = 3\n"
		  "max_restarts = 4\nmax_restarts = 5\nmax_restarts = 6\nmax_restarts = 7\n"
		  "max_restarts = 8\nmax_restarts = 9\nmax_restarts = 10\nenable_task_metrics = maybe\n",
		  12, "enable_task_metrics" },
		{ "[task_management]\nmax_retries = 3\n", 2, "max_retries" },
		{ "[task_limits]\nmax_concurrent_netwrok = 3\n", 2, "max_concurrent_netwrok" },
		{ "[task_management]\nstack_size = 12Q\n", 2, "stack_size" },
		{ "[task_limits]\nmax_concurrent_total = 3\nthis line is not ini\n", 3, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s", write_config(cases[i].text));
		tm_shutdown();
		int rc = tm_init(path);
		const char *msg = tm_last_error();
		if (rc != -EINVAL)
			fail_msg("case %zu: tm_init = %d, want -EINVAL (%s)", i, rc, msg);
		assert_contains(msg, path);
		if (!names_line(msg, path, cases[i].line))
			fail_msg("case %zu: line %u not named in \"%s\"", i, cases[i].line, msg);
		if (cases[i].key)
			assert_contains(msg, cases[i].key);
		/* Nothing half-started: no segment is left behind. */
		assert_false(shm_exists());
	}

	char missing[128];
	snprintf(missing, sizeof(missing), "%s/does-not-exist.ini", tmpdir);
	assert_int_equal(tm_init(missing), -ENOENT);
	assert_contains(tm_last_error(), missing);

	/* A refused file leaves the library able to start. */
	use_config("[task_limits]\nmax_concurrent_total = 3\n");
	assert_true(shm_exists());
}

static void test_init_idempotent(void **state)
{
	(void)state;
	use_config("[task_limits]\nmax_concurrent_network = 3\n");
	char other[128], bad[128];
	snprintf(other, sizeof(other), "%s", write_config("[task_limits]\nmax_concurrent_network = 1\n"));
	snprintf(bad, sizeof(bad), "%s", write_config("[task_limits]\nnonsense = 1\n"));
	assert_int_equal(tm_init(other), 0);
	assert_int_equal(tm_init(bad), 0);
	assert_int_equal(tm_init(NULL), 0);

	/* Still the first file's limit of 3. */
	for (int i = 0; i < 3; i++) {
		int rc = spawn_sleeper(hold(), i, TM_NETWORK);
		if (rc != 0)
			fail_msg("network spawn %d: %d (%s): a second tm_init changed the limits", i, rc,
			         tm_last_error());
	}
	assert_int_equal(spawn_sleeper(NULL, 3, TM_NETWORK), -EAGAIN);
	assert_int_equal(tm_cancel_type(TM_NETWORK), 3);
	join_all_held(TM_CANCELLED);
}

/* ---- tm_shutdown ----------------------------------------------------------------- */

static void test_shutdown_cancels_and_joins(void **state)
{
	(void)state;
	use_config("");
	assert_true(shm_exists());
	for (int i = 0; i < 7; i++)
		assert_int_equal(spawn_sleeper(NULL, i, i % 2 ? TM_NETWORK : TM_BACKGROUND), 0);
	assert_int_equal(tm_spawn(NULL, "slow-to-stop", slow_to_stop, NULL, NULL), 0);
	assert_true(wait_count(&started, 8, 5000));

	uint64_t t0 = now_ns();
	tm_shutdown();
	double ms = (double)(now_ns() - t0) / 1e6;
	print_message("  tm_shutdown took %.0f ms\n", ms);
	assert_true(ms < 5000);

	/* Joined: every body has returned by the time tm_shutdown does. */
	assert_int_equal(atomic_load(&returned), 8);
	assert_int_equal(atomic_load(&deaf_done), 1);
	for (int i = 0; i < 7; i++)
		assert_int_equal(sleep_rcs[i], -ECANCELED);
	assert_false(shm_exists());

	/* And the library starts again, on another config. */
	use_config("[task_limits]\nmax_concurrent_ui = 1\n");
	assert_true(shm_exists());
	tm_task **t = hold();
	assert_int_equal(spawn_sleeper(t, 10, TM_UI), 0);
	assert_int_equal(spawn_sleeper(NULL, 11, TM_UI), -EAGAIN);
	assert_contains(tm_last_error(), "max_concurrent_ui");
	cancel_join(t, TM_CANCELLED);
}

/* The header promises that handles held across tm_shutdown stay valid for
 * tm_join and tm_release, also once the library runs again. */
static void test_handles_survive_shutdown(void **state)
{
	(void)state;
	use_config("");
	tm_task **t[3];
	for (int i = 0; i < 3; i++) {
		t[i] = hold();
		assert_int_equal(spawn_sleeper(t[i], i, TM_DATABASE), 0);
	}
	assert_true(wait_count(&started, 3, 5000));
	tm_shutdown();
	assert_int_equal(atomic_load(&returned), 3);

	enum tm_status st = TM_RUNNING;
	assert_int_equal(tm_join(*t[0], 0, &st, NULL), 0);
	*t[0] = NULL;
	assert_int_equal(st, TM_CANCELLED);
	tm_release(*t[1]);
	*t[1] = NULL;

	/* A handle from the previous run must not touch the new run's books. */
	use_config("");
	struct tm_stats before = stats_now();
	assert_int_equal(tm_join(*t[2], 0, &st, NULL), 0);
	*t[2] = NULL;
	assert_int_equal(st, TM_CANCELLED);
	struct tm_stats after = stats_now();
	assert_int_equal(after.tracker_bytes, before.tracker_bytes);
	assert_int_equal(after.tracked_records, before.tracked_records);
}

/* ---- the shared-memory segment -------------------------------------------------- */

static int cmp_info(const void *a, const void *b)
{
	uint64_t x = ((const struct tm_task_info *)a)->id, y = ((const struct tm_task_info *)b)->id;
	return x < y ? -1 : x > y;
}

static void assert_same_tasks(struct tm_task_info *a, int na, struct tm_task_info *b, int nb)
{
	assert_int_equal(na, nb);
	qsort(a, (size_t)na, sizeof(*a), cmp_info);
	qsort(b, (size_t)nb, sizeof(*b), cmp_info);
	for (int i = 0; i < na; i++) {
		assert_int_equal(a[i].id, b[i].id);
		assert_int_equal(a[i].tid, b[i].tid);
		assert_int_equal(a[i].type, b[i].type);
		assert_int_equal(a[i].status, b[i].status);
		assert_int_equal(a[i].rc, b[i].rc);
		assert_string_equal(a[i].name, b[i].name);
		assert_int_equal(a[i].spawn_ns, b[i].spawn_ns);
		assert_int_equal(a[i].start_ns, b[i].start_ns);
		assert_int_equal(a[i].end_ns, b[i].end_ns);
		assert_int_equal(a[i].cpu_ns, b[i].cpu_ns);
		assert_int_equal(a[i].restarts, b[i].restarts);
	}
}

static void assert_same_counters(const struct tm_stats *a, const struct tm_stats *b)
{
	assert_int_equal(a->total_spawned, b->total_spawned);
	assert_int_equal(a->currently_running, b->currently_running);
	assert_int_equal(a->total_completed, b->total_completed);
	assert_int_equal(a->total_failed, b->total_failed);
	assert_int_equal(a->total_panicked, b->total_panicked);
	assert_int_equal(a->total_cancelled, b->total_cancelled);
	assert_int_equal(a->total_timed_out, b->total_timed_out);
	assert_int_equal(a->total_restarts, b->total_restarts);
	assert_int_equal(a->total_rejected, b->total_rejected);
	assert_int_equal(a->tracked_records, b->tracked_records);
	assert_int_equal(a->tracker_bytes, b->tracker_bytes);
	for (int i = 0; i < TM_MAX_TYPES; i++)
		if (memcmp(&a->by_type[i], &b->by_type[i], sizeof(a->by_type[i])) != 0)
			fail_msg("type %d counters differ between tm_get_stats and the segment", i);
}

static void test_shm_segment(void **state)
{
	(void)state;
	/* With no umask to hide behind, 0600 must come from the library itself. */
	mode_t old_umask = umask(0);
	use_config("[task_limits]\nmax_concurrent_network = 2\n");
	umask(old_umask);

	char path[64];
	struct stat sb;
	shm_path(path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	if ((sb.st_mode & 07777) != 0600)
		fail_msg("%s has mode %04o, want 0600", path, (unsigned)(sb.st_mode & 07777));
	assert_int_equal(sb.st_uid, geteuid());

	/* Some of every outcome, a running pair and a rejection. */
	tm_task *h = NULL;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tm_spawn(&h, "shm-ok", returns_arg, NULL, NULL), 0);
		assert_int_equal(tm_join(h, 5000, NULL, NULL), 0);
	}
	assert_int_equal(tm_spawn(&h, "shm-fails", returns_arg, (void *)7, TM_SPAWN_OPTS(.type = TM_DATABASE)), 0);
	assert_int_equal(tm_join(h, 5000, NULL, NULL), 0);
	assert_int_equal(tm_spawn(&h, "shm-panics", panics, NULL, TM_SPAWN_OPTS(.type = TM_CONSENSUS)), 0);
	assert_int_equal(tm_join(h, 5000, NULL, NULL), 0);
	tm_task **s1 = hold(), **s2 = hold();
	assert_int_equal(spawn_sleeper(s1, 0, TM_NETWORK), 0);
	assert_int_equal(spawn_sleeper(s2, 1, TM_NETWORK), 0);
	assert_int_equal(spawn_sleeper(NULL, 2, TM_NETWORK), -EAGAIN);
	assert_true(wait_count(&started, 2, 5000));

	tm_shm_reader *r = NULL;
	int rc = tm_shm_open_pid(&r, getpid());
	if (rc != 0)
		fail_msg("tm_shm_open_pid(self) = %d: %s", rc, tm_last_error());
	assert_int_equal(tm_shm_pid(r), getpid());
	char comm[32] = "";
	FILE *f = fopen("/proc/self/comm", "r");
	assert_non_null(f);
	assert_non_null(fgets(comm, sizeof(comm), f));
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	assert_string_equal(tm_shm_comm(r), comm);
	assert_false(tm_shm_is_stale(r));
	assert_false(tm_shm_is_closed(r));

	struct tm_stats in = stats_now(), out;
	memset(&out, 0x5a, sizeof(out));
	assert_int_equal(tm_shm_read_stats(r, &out), 0);
	assert_same_counters(&in, &out);
	assert_int_equal(out.total_completed, 3);
	assert_int_equal(out.total_failed, 1);
	assert_int_equal(out.total_panicked, 1);
	assert_int_equal(out.total_rejected, 1);
	assert_int_equal(out.currently_running, 2);
	/* The reader computes quantiles from the same histograms. */
	assert_int_equal(in.spawn_latency_p50_ns, out.spawn_latency_p50_ns);
	assert_int_equal(in.spawn_latency_p99_ns, out.spawn_latency_p99_ns);
	assert_int_equal(in.spawn_latency_max_ns, out.spawn_latency_max_ns);

	struct tm_task_info a[32], b[32];
	int na = tm_list_tasks(a, 32, false), nb = tm_shm_read_tasks(r, b, 32, false);
	assert_int_equal(na, 7);
	assert_same_tasks(a, na, b, nb);
	na = tm_list_tasks(a, 32, true);
	nb = tm_shm_read_tasks(r, b, 32, true);
	assert_int_equal(na, 2);
	assert_same_tasks(a, na, b, nb);

	struct tm_shm_type_snapshot *types = calloc(TM_MAX_TYPES, sizeof(*types));
	assert_non_null(types);
	int nt = tm_shm_read_types(r, types, TM_MAX_TYPES);
	assert_true(nt >= TM_BUILTIN_TYPES);
	bool seen_network = false;
	for (int i = 0; i < nt; i++) {
		assert_string_equal(types[i].name, tm_type_name(types[i].id));
		if (types[i].id != TM_NETWORK)
			continue;
		seen_network = true;
		assert_int_equal(types[i].max_concurrent, 2);
		assert_int_equal(types[i].counters[TM_C_RUNNING], 2);
		assert_int_equal(types[i].counters[TM_C_REJECTED], 1);
		assert_int_equal(types[i].counters[TM_C_SPAWNED], 2);
	}
	free(types);
	assert_true(seen_network);

	pid_t pids[256];
	int np = tm_shm_list(NULL, pids, 256);
	bool listed = false;
	for (int i = 0; i < np; i++)
		listed |= pids[i] == getpid();
	assert_true(listed);

	/* After shutdown the file is gone; a reader that had it open sees the
	 * final figures marked closed. */
	cancel_join(s1, TM_CANCELLED);
	cancel_join(s2, TM_CANCELLED);
	tm_shutdown();
	assert_false(shm_exists());
	assert_true(tm_shm_is_closed(r));
	tm_shm_close(r);
	assert_int_equal(tm_shm_open_pid(&r, getpid()), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_env_config),	/* first: it relies on the group setup's tm_init */
		T(test_type_limit),
		T(test_total_limit),
		T(test_registry_full),
		T(test_type_timeout_from_config),
		T(test_custom_type_from_config),
		T(test_retention_from_config),
		T(test_bad_configs),
		T(test_init_idempotent),
		T(test_shutdown_cancels_and_joins),
		T(test_handles_survive_shutdown),
		T(test_shm_segment),
#undef T
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
