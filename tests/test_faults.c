/* Fault injection into the library: every allocation, mapping, segment
 * creation and thread creation it makes can fail.
 *
 * Linked with -Wl,--wrap for malloc, calloc, realloc, free, pthread_create,
 * mmap, shm_open and ftruncate (mk/reliability.mk): the library's calls go
 * through the wrappers below, libc's and cmocka's own do not. For N = 1, 2,
 * ... a scenario that uses every public entry point runs with the Nth
 * wrapped call made on the test's thread failing, until a run gets through
 * with nothing left to fail. Each time:
 *   - every call returns success or its documented error, with a sentence;
 *   - once everything has ended, the counters add up: spawned + restarts =
 *     succeeded + failed + panicked + cancelled + timed_out + crashed, and
 *     nothing runs;
 *   - no task whose spawn failed appears in the registry;
 *   - after tm_shutdown the library holds exactly the allocations and file
 *     descriptors it held after the first clean run (nothing leaks, also
 *     without ASan), and its segment is gone;
 *   - the process is still alive.
 * Then the thread limit itself: pthread_create failing with EAGAIN, and a
 * real RLIMIT_NPROC in a child that runs as nobody. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "taskmon.h"
#include "taskmon_shm.h"
#include "test_util.h"

/* ---- the wrappers ---------------------------------------------------------------- */

enum { F_ALLOC = 1, F_THREAD = 2, F_MAP = 4, F_SHM = 8, F_TRUNC = 16, F_ALL = 31 };

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_shm_open(const char *name, int oflag, mode_t mode);
int __real_ftruncate(int fd, off_t len);

static _Thread_local bool armed;       /* only the test's own thread counts: task threads run unpredictably */
static atomic_long countdown;          /* wrapped calls left before the one that fails */
static atomic_int kinds = F_ALL;       /* which calls count */
static atomic_int injected;            /* failures handed out */
static atomic_int thread_errno = EAGAIN;
static atomic_long live_allocs;        /* library allocations not yet freed */

static bool should_fail(int kind)
{
	if (!armed || !(atomic_load(&kinds) & kind))
		return false;
	if (atomic_fetch_sub(&countdown, 1) != 1)
		return false;
	atomic_fetch_add(&injected, 1);
	return true;
}

void *__wrap_malloc(size_t n)
{
	if (should_fail(F_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_malloc(n);
	if (p)
		atomic_fetch_add(&live_allocs, 1);
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	if (should_fail(F_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_calloc(n, size);
	if (p)
		atomic_fetch_add(&live_allocs, 1);
	return p;
}

void *__wrap_realloc(void *old, size_t n)
{
	if (should_fail(F_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_realloc(old, n);
	if (p && !old)
		atomic_fetch_add(&live_allocs, 1);
	return p;
}

void __wrap_free(void *p)
{
	if (p)
		atomic_fetch_sub(&live_allocs, 1);
	__real_free(p);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
	if (should_fail(F_THREAD))
		return atomic_load(&thread_errno);
	return __real_pthread_create(t, a, fn, arg);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (should_fail(F_MAP)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __real_mmap(addr, len, prot, flags, fd, off);
}

int __wrap_shm_open(const char *name, int oflag, mode_t mode)
{
	if (should_fail(F_SHM)) {
		errno = EMFILE;
		return -1;
	}
	return __real_shm_open(name, oflag, mode);
}

int __wrap_ftruncate(int fd, off_t len)
{
	if (should_fail(F_TRUNC)) {
		errno = ENOSPC;
		return -1;
	}
	return __real_ftruncate(fd, len);
}

static void arm(long n, int which)
{
	atomic_store(&kinds, which);
	atomic_store(&injected, 0);
	atomic_store(&countdown, n);
	armed = true;
}

static void disarm(void)
{
	armed = false;
	atomic_store(&countdown, 0);
}

/* ---- helpers ------------------------------------------------------------------------ */

static char tmpdir[64];

#define assert_contains(hay, needle) do { \
	const char *h_ = (hay), *n_ = (needle); \
	if (h_ == NULL || strstr(h_, n_) == NULL) \
		fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)"); \
} while (0)

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static bool segment_exists(void)
{
	char p[64];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s%d", TM_SHM_DIR, TM_SHM_PREFIX, (int)getpid());
	return stat(p, &st) == 0;
}

/* A call's result: success, or one of the errors it documents, with a sentence. */
static void expect_ok_or(int rc, const char *what, const int *allowed, size_t n)
{
	if (rc >= 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (rc == allowed[i]) {
			const char *e = tm_last_error();
			if (!e || !*e)
				fail_msg("%s failed with %d but left no sentence", what, rc);
			return;
		}
	fail_msg("%s returned %d (%s), not a documented error", what, rc, tm_last_error());
}

/* tm_init: -ENOMEM, or the errno of the registry's creation (shm_open EMFILE, ftruncate ENOSPC). */
static const int init_errs[] = { -ENOMEM, -EMFILE, -ENOSPC };
/* tm_spawn and friends: tm_init's errors (it runs tm_init when needed), -ENOMEM, -EAGAIN. */
static const int spawn_errs[] = { -ENOMEM, -EAGAIN, -EMFILE, -ENOSPC };
#define EXPECT(rc, what, errs) expect_ok_or((rc), (what), (errs), sizeof(errs) / sizeof(errs[0]))

static int body_ok(void *arg)
{
	(void)arg;
	return 0;
}

static int body_fail(void *arg)
{
	(void)arg;
	return 7;
}

static int body_panic(void *arg)
{
	(void)arg;
	tm_panic("injected panic %d", 42);
}

static int body_sleep(void *arg)
{
	(void)arg;
	tm_sleep_ms(20000);
	return 0;
}

static atomic_int crit_runs;
static int body_fails_twice(void *arg)
{
	(void)arg;
	return atomic_fetch_add(&crit_runs, 1) < 2 ? 1 : 0;
}

/* Names of tasks whose spawn failed: none may be in the registry. */
static char failed_names[64][TM_NAME_MAX];
static int nfailed;

static int spawn_named(tm_task **h, const char *name, tm_fn fn, const struct tm_spawn_opts *o)
{
	int rc = tm_spawn(h, name, fn, NULL, o);
	EXPECT(rc, name, spawn_errs);
	if (rc < 0 && nfailed < 64)
		snprintf(failed_names[nfailed++], TM_NAME_MAX, "%s", name);
	if (rc < 0 && h)
		assert_null(*h);
	return rc;
}

static void join_expect(tm_task *h, enum tm_status want)
{
	enum tm_status st;
	int rc;
	if (!h)
		return;
	assert_int_equal(tm_join(h, 30000, &st, &rc), 0);
	assert_int_equal(st, want);
}

/* Everything a workload does, once, with any call allowed to fail as documented. */
static void scenario(void)
{
	tm_task *h = NULL;
	int rc = tm_init(NULL);
	EXPECT(rc, "tm_init", init_errs);

	spawn_named(&h, "ok", body_ok, NULL);
	join_expect(h, TM_SUCCEEDED);
	spawn_named(NULL, "detached_fail", body_fail, NULL);
	if (spawn_named(&h, "panics", body_panic, NULL) == 0)
		join_expect(h, TM_PANICKED);
	if (spawn_named(&h, "own_stack", body_ok, TM_SPAWN_OPTS(.stack_size = 256 << 10)) == 0)
		join_expect(h, TM_SUCCEEDED);
	if (spawn_named(&h, "sleeper", body_sleep, TM_SPAWN_OPTS(.type = TM_NETWORK)) == 0) {
		assert_int_equal(tm_cancel(h), 0);
		join_expect(h, TM_CANCELLED);
	}
	spawn_named(NULL, "timed", body_sleep, TM_SPAWN_OPTS(.type = TM_DATABASE, .timeout_ms = 1));

	rc = tm_type_register("injected_type");
	if (rc < 0)
		EXPECT(rc, "tm_type_register", spawn_errs);

	tm_group *g = NULL;
	rc = tm_group_new_opts(&g, "grp", TM_GROUP_OPTS(.max_concurrent = 2));
	EXPECT(rc, "tm_group_new_opts", spawn_errs);
	if (rc == 0) {
		struct tm_result res[4];
		spawn_named(NULL, "member_a", body_ok, TM_SPAWN_OPTS(.group = g));
		spawn_named(NULL, "member_b", body_fail, TM_SPAWN_OPTS(.group = g));
		spawn_named(NULL, "member_c", body_ok, TM_SPAWN_OPTS(.group = g, .stack_size = 128 << 10));
		rc = tm_group_wait_all(g, 30000, res, 4);
		EXPECT(rc, "tm_group_wait_all", spawn_errs);
		tm_group_free(g);
	}

	atomic_store(&crit_runs, 0);
	rc = tm_spawn_critical(&h, "crit", body_fails_twice, NULL,
	                       TM_CRITICAL_OPTS(.restart = TM_RESTART_ON_FAILURE, .max_restarts = 5,
	                                        .backoff = { TM_BACKOFF_FIXED, .base_ms = 0 }));
	EXPECT(rc, "tm_spawn_critical", spawn_errs);
	if (rc == 0)
		join_expect(h, TM_SUCCEEDED);
	else
		snprintf(failed_names[nfailed++], TM_NAME_MAX, "crit");

	struct tm_chain_step steps[2] = { { "step_one", body_ok, NULL, TM_GENERAL, 0 },
	                                  { "step_two", body_ok, NULL, TM_UI, 0 } };
	struct tm_result cres[2];
	rc = tm_chain(steps, 2, cres);
	EXPECT(rc, "tm_chain", spawn_errs);

	struct tm_stats s;
	EXPECT(tm_get_stats(&s), "tm_get_stats", spawn_errs);
	uint64_t ns;
	EXPECT(tm_spawn_latency_ns(-1, 0.5, &ns), "tm_spawn_latency_ns", spawn_errs);
	struct tm_task_info list[8];
	EXPECT(tm_list_tasks(list, 8, false), "tm_list_tasks", spawn_errs);
	char msg[64];
	(void)tm_task_message(1, msg, sizeof(msg));
	EXPECT(tm_cleanup(0), "tm_cleanup", spawn_errs);
}

/* With nothing armed: every task ends, the counters add up, failed spawns left nothing behind. */
static void check_consistent(void)
{
	struct tm_stats s;
	uint64_t end = now_ns() + 30ull * 1000000000ull;
	do {
		assert_int_equal(tm_get_stats(&s), 0);
		if (s.currently_running == 0)
			break;
		sleep_ms(1);
	} while (now_ns() < end);
	assert_int_equal(s.currently_running, 0);
	uint64_t ended = s.total_completed + s.total_failed + s.total_panicked + s.total_cancelled +
	                 s.total_timed_out + s.total_crashed;
	if (s.total_spawned + s.total_restarts != ended)
		fail_msg("spawned %llu + restarts %llu != ended %llu", (unsigned long long)s.total_spawned,
		         (unsigned long long)s.total_restarts, (unsigned long long)ended);
	static struct tm_task_info list[256];
	int n = tm_list_tasks(list, 256, false);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < nfailed; k++)
			/* a group member whose thread could not be had stays listed, ended (group.c) */
			if (strcmp(list[i].name, failed_names[k]) == 0 && strncmp(failed_names[k], "member_", 7) != 0)
				fail_msg("task '%s' whose spawn failed is in the registry", failed_names[k]);
}

static long clean_allocs;
static int clean_fds;

/* One run with the nth call of the given kinds failing; true when nothing was left to fail. */
static bool run_with_failure(long n, int which)
{
	nfailed = 0;
	arm(n, which);
	scenario();
	disarm();
	bool done = atomic_load(&injected) == 0;
	check_consistent();
	tm_shutdown();
	assert_false(segment_exists());
	long allocs = atomic_load(&live_allocs);
	int fds = count_fds();
	if (allocs != clean_allocs || fds != clean_fds)
		fail_msg("failure at call %ld: %ld allocations and %d fds held after tm_shutdown, %ld and %d after a clean run",
		         n, allocs, fds, clean_allocs, clean_fds);
	return done;
}

static void test_every_call_may_fail(void **state)
{
	(void)state;
	/* A first clean run: what the library keeps for the process's life (the hand-over queue, say). */
	nfailed = 0;
	scenario();
	check_consistent();
	tm_shutdown();
	clean_allocs = atomic_load(&live_allocs);
	clean_fds = count_fds();

	long n;
	for (n = 1; n < 5000; n++)
		if (run_with_failure(n, F_ALL))
			break;
	assert_true(n < 5000);
	print_message("every one of %ld wrapped calls failed once in turn; errors, counters and resources checked\n",
	              n - 1);
}

/* Every call again, this time with each thread creation refused as ENOMEM would be by a kernel out of memory. */
static void test_thread_creation_enomem(void **state)
{
	(void)state;
	atomic_store(&thread_errno, ENOMEM);
	long n;
	for (n = 1; n < 500; n++)
		if (run_with_failure(n, F_THREAD))
			break;
	atomic_store(&thread_errno, EAGAIN);
	assert_true(n < 500);
	print_message("%ld thread creations failed in turn\n", n - 1);
}

/* The kernel's thread limit, as pthread_create reports it. */
static void test_pthread_eagain(void **state)
{
	(void)state;
	struct tm_stats before, after;
	tm_task *h = (tm_task *)1;
	assert_int_equal(tm_init(NULL), 0);
	assert_int_equal(tm_get_stats(&before), 0);
	arm(1, F_THREAD);   /* no idle thread after tm_init: the first spawn creates one */
	int rc = tm_spawn(&h, "over_the_limit", body_ok, NULL, NULL);
	disarm();
	assert_int_equal(rc, -EAGAIN);
	assert_null(h);
	assert_int_equal(atomic_load(&injected), 1);
	assert_contains(tm_last_error(), "kernel refused a new task thread");
	assert_contains(tm_last_error(), "kernel.threads-max");
	assert_contains(tm_last_error(), "ulimit -u");
	assert_int_equal(tm_get_stats(&after), 0);
	assert_int_equal(after.total_spawned, before.total_spawned);
	assert_int_equal(after.currently_running, 0);
	assert_int_equal(after.total_rejected, before.total_rejected + 1);

	/* Nothing half-registered: no record in process, none in the segment. */
	struct tm_task_info list[16];
	int n = tm_list_tasks(list, 16, false);
	for (int i = 0; i < n; i++)
		assert_string_not_equal(list[i].name, "over_the_limit");
	tm_shm_reader *r;
	assert_int_equal(tm_shm_open_pid(&r, getpid()), 0);
	n = tm_shm_read_tasks(r, list, 16, false);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++)
		assert_string_not_equal(list[i].name, "over_the_limit");
	struct tm_stats seg;
	assert_int_equal(tm_shm_read_stats(r, &seg), 0);
	assert_int_equal(seg.total_spawned, after.total_spawned);
	assert_int_equal(seg.currently_running, 0);
	tm_shm_close(r);

	/* The same call works once the kernel gives threads again. */
	assert_int_equal(tm_spawn(&h, "over_the_limit", body_ok, NULL, NULL), 0);
	join_expect(h, TM_SUCCEEDED);
	tm_shutdown();
}

/* ---- a real thread limit ---------------------------------------------------------- */

static atomic_int gate;

static int body_gate(void *arg)
{
	(void)arg;
	gate_wait(&gate);
	return 0;
}

/* In the child: as nobody under RLIMIT_NPROC, spawn holding tasks until the kernel says no. */
static int child_under_nproc(void)
{
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw ? pw->pw_uid : 65534;
	gid_t gid = pw ? pw->pw_gid : 65534;
	struct rlimit rl = { 24, 24 };
	if (setrlimit(RLIMIT_NPROC, &rl) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
		return 10;
	if (tm_init(NULL) != 0)
		return 11;
	int rc = 0, spawned = 0;
	for (int i = 0; i < 500 && rc == 0; i++) {
		char name[32];
		snprintf(name, sizeof(name), "hold_%d", i);
		rc = tm_spawn(NULL, name, body_gate, NULL, NULL);
		spawned += rc == 0;
	}
	if (rc != -EAGAIN)
		return 12;
	const char *e = tm_last_error();
	if (!strstr(e, "ulimit -u") || !strstr(e, "kernel.threads-max"))
		return 13;
	struct tm_stats s;
	if (tm_get_stats(&s) != 0 || s.total_spawned != (uint64_t)spawned || s.currently_running != (uint64_t)spawned ||
	    s.total_rejected != 1)
		return 14;
	gate_open(&gate);
	for (int i = 0; i < 30000 && tm_get_stats(&s) == 0 && s.currently_running != 0; i++)
		sleep_ms(1);
	if (s.currently_running != 0 || s.total_completed != (uint64_t)spawned)
		return 15;
	tm_shutdown();
	return 0;
}

static void test_real_thread_limit(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip();   /* needs root: a real RLIMIT_NPROC binds only a user without CAP_SYS_RESOURCE */
	}
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka's handlers would carry on with the parent's tests in the child */
		int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		alarm(60);   /* never a hung test */
		_exit(child_under_nproc());
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("child under RLIMIT_NPROC: %s %d (10 setup, 11 init, 12 no -EAGAIN, 13 sentence, "
		         "14 counters, 15 after the tasks ended)", WIFEXITED(st) ? "exit" : "signal",
		         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tm_faults.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	chmod(tmpdir, 0755);   /* the child that runs as nobody reads the config too */
	char path[128], sock[128];
	snprintf(path, sizeof(path), "%s/small.ini", tmpdir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("[task_management]\nmax_tracked_tasks = 256\nthread_keepalive_ms = 200\n", f);
	fclose(f);
	setenv("TASKMON_CONFIG", path, 1);
	snprintf(sock, sizeof(sock), "%s/no-collector.sock", tmpdir);
	setenv("TASKMON_SOCKET", sock, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char path[160];
	tm_shutdown();
	snprintf(path, sizeof(path), "%s/small.ini", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* First: the child is forked before this process has a segment a collector could attach to. */
		cmocka_unit_test(test_real_thread_limit),
		cmocka_unit_test(test_every_call_may_fail),
		cmocka_unit_test(test_thread_creation_enomem),
		cmocka_unit_test(test_pthread_eagain),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
