/* taskmond's command line: --check, the privilege sentence, signals, and the
 * events it prints for a workload that crashes. Needs root (the privilege
 * test drops to nobody itself). Every taskmond here has a socket and state
 * directory of its own under a temporary directory, and the workloads are
 * pointed at that socket: a collector already running on the machine is
 * neither disturbed nor used. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/bpf_test.h"
#include "taskmon_shm.h"

static char g_dir[64];            /* temporary directory of this run */
static char g_socket[128];        /* taskmond's socket in it */

struct run {
	pid_t pid;
	int out;                 /* its stdout (and stderr, when asked) */
	char buf[65536];
	size_t len;
};

/* Starts taskmond with args, its socket and state directory in g_dir;
 * drop = run it as nobody; both = stderr too. */
static void start(struct run *r, const char *const *args, bool drop, bool both)
{
	char path[PATH_MAX];
	const char *argv[20];
	int p[2], n = 0;
	bt_sibling(path, sizeof(path), "../taskmond");
	argv[n++] = path;
	argv[n++] = "--socket";
	argv[n++] = g_socket;
	argv[n++] = "--state-dir";
	argv[n++] = g_dir;
	while (*args && n < 19)
		argv[n++] = *args++;
	argv[n] = NULL;
	assert_int_equal(pipe(p), 0);
	r->len = 0;
	r->buf[0] = '\0';
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		dup2(p[1], 1);
		if (both)
			dup2(p[1], 2);
		else
			freopen("/dev/null", "w", stderr);
		close(p[0]);
		close(p[1]);
		if (drop && (setgroups(0, NULL) || setgid(65534) || setuid(65534)))
			_exit(99);
		execv(path, (char *const *)argv);
		_exit(98);
	}
	close(p[1]);
	r->out = p[0];
}

/* Reads its output until `want` shows up (NULL: until it closes) or the time is up. */
static bool read_until(struct run *r, const char *want, unsigned timeout_ms)
{
	uint64_t end = bt_now_ns() + timeout_ms * 1000000ull;
	while (!want || !strstr(r->buf, want)) {
		uint64_t now = bt_now_ns();
		if (now > end)
			return false;
		struct pollfd pfd = { .fd = r->out, .events = POLLIN };
		if (poll(&pfd, 1, (int)((end - now) / 1000000 + 1)) <= 0)
			continue;
		ssize_t k = read(r->out, r->buf + r->len, sizeof(r->buf) - 1 - r->len);
		if (k <= 0)
			return want == NULL;
		r->len += (size_t)k;
		r->buf[r->len] = '\0';
	}
	return true;
}

/* cmocka's print_message has a small buffer: one line at a time. */
static void print_lines(const char *text)
{
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);
		print_message("%.*s\n", len, p);
		p += len + (nl != NULL);
	}
}

/* Waits for it to exit; returns the exit code, or 128 + signal. */
static int finish(struct run *r, unsigned timeout_ms)
{
	int st = 0;
	read_until(r, NULL, timeout_ms);
	uint64_t end = bt_now_ns() + timeout_ms * 1000000ull;
	while (waitpid(r->pid, &st, WNOHANG) == 0) {
		if (bt_now_ns() > end) {
			kill(r->pid, SIGKILL);
			waitpid(r->pid, &st, 0);
			break;
		}
		usleep(5000);
	}
	close(r->out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_check(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	static struct run r;
	start(&r, (const char *[]){ "--check", NULL }, false, false);
	assert_int_equal(finish(&r, 10000), 0);
	print_lines(r.buf);
	static const char *const features[] = { "privileges", "btf", "tp_btf", "raw_tp", "ringbuf", "uprobes", "sched_info" };
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "%-11s pass", features[i]);
		assert_non_null(strstr(r.buf, line));
	}
}

static void test_unprivileged(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();   /* to become nobody */
	static struct run r;
	start(&r, (const char *[]){ "--foreground", NULL }, true, true);
	assert_int_equal(finish(&r, 10000), 1);
	print_message("as nobody: %s", r.buf);
	assert_non_null(strstr(r.buf, "needs CAP_BPF and CAP_PERFMON"));
	assert_non_null(strstr(r.buf, "run it as root"));
	/* One sentence, one line: it never half-started. */
	assert_int_equal(strchr(r.buf, '\n') - r.buf + 1, (long)r.len);

	/* --check still reports, and fails on what is missing. */
	start(&r, (const char *[]){ "--check", NULL }, true, true);
	assert_int_equal(finish(&r, 10000), 1);
	assert_non_null(strstr(r.buf, "privileges  FAIL"));
}

static void test_bad_usage(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	static struct run r;
	start(&r, (const char *[]){ "--bogus", NULL }, false, true);
	assert_int_equal(finish(&r, 30000), 2);
	assert_non_null(strstr(r.buf, "usage: taskmond"));
	/* A process that does not exist: an error, not a collector watching nothing. */
	start(&r, (const char *[]){ "--foreground", "--pid", "4194303", NULL }, false, true);
	assert_int_equal(finish(&r, 10000), 1);
	assert_non_null(strstr(r.buf, "4194303"));
}

static void test_sigint(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	static struct run r;
	start(&r, (const char *[]){ "--foreground", "--verbose", NULL }, false, false);
	assert_true(read_until(&r, "programs attached", 30000));
	/* Detaching waits for the kernel: an RCU grace period per uprobe, for
	 * every binary attached (the workloads found on the machine included). */
	kill(r.pid, SIGINT);
	assert_int_equal(finish(&r, 30000), 0);
	assert_non_null(strstr(r.buf, "events,"));
}

/* The whole path: taskmond finds libtaskmon.so in the crasher's mappings and
 * prints its tasks, the crash with its stack, and the exit. */
static void test_crash_reported(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	static struct run r;
	struct crasher c;
	char pid[16], want[64];
	assert_int_equal(crasher_start(&c, "segv"), 0);
	snprintf(pid, sizeof(pid), "%d", (int)c.pid);
	start(&r, (const char *[]){ "--foreground", "--verbose", "--pid", pid, NULL }, false, false);
	snprintf(want, sizeof(want), "watch  pid %s (1 binary", pid);
	bool attached = read_until(&r, "programs attached", 30000) && strstr(r.buf, want);
	crasher_go(&c);
	int st = crasher_wait(&c, 10000);
	snprintf(want, sizeof(want), "exit   pid %s 'crasher' killed by signal 11", pid);
	bool saw_exit = read_until(&r, want, 5000);
	snprintf(want, sizeof(want), "unwatch pid %s (gone)", pid);
	bool unwatched = read_until(&r, want, 3000);   /* at its next rescan */
	kill(r.pid, SIGTERM);
	int rc = finish(&r, 30000);
	tm_shm_remove_stale(c.pid);
	print_lines(r.buf);
	assert_true(attached);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	assert_true(saw_exit);
	assert_int_equal(rc, 0);
	snprintf(want, sizeof(want), "crash  pid %s", pid);
	const char *crash = strstr(r.buf, want);
	assert_non_null(crash);
	assert_non_null(strstr(crash, "'dice_roll' signal 11 (SEGV) code 1 addr 0x0 stack 0x"));
	assert_non_null(strstr(r.buf, "'dice_roll' type 3 latency"));
	assert_true(unwatched);
}

static int make_dir(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/test_bpf_taskmond.XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	snprintf(g_socket, sizeof(g_socket), "%s/taskmond.sock", g_dir);
	/* The workloads (the crasher) register here, never at the default path. */
	return setenv("TASKMON_SOCKET", g_socket, 1);
}

static int remove_dir(void **state)
{
	(void)state;
	char path[160];
	static const char *const files[] = { "taskmond.sock", "crashes.jsonl" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", g_dir, files[i]);
		unlink(path);
	}
	return rmdir(g_dir) == 0 ? 0 : (print_message("left %s: %s\n", g_dir, strerror(errno)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_unprivileged),
		cmocka_unit_test(test_bad_usage),
		cmocka_unit_test(test_sigint),
		cmocka_unit_test(test_crash_reported),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
