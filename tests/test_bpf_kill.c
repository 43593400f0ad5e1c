/* kill -9, of the collector and of a workload (root: taskmond loads BPF).
 *
 * taskmond runs as a child with its socket and state directory in a private
 * temporary directory; the workloads are children of this test, which links
 * the library but never calls tm_init itself, so nothing is patched into its
 * code before it forks.
 *
 *   - the collector killed while a workload spawns (at a steady pace): the
 *     workload's spawn rate in the 4 s after the kill is compared with the
 *     4 s before (same run), and a new collector on the same socket finds
 *     the workload again: the snapshot shows it, its counts grow, the kernel
 *     figures resume for its new tasks, and its rate watched again is
 *     compared with the rate before the kill;
 *   - a workload killed while it spawns: its segment in /dev/shm is taken
 *     for stale and removed, the snapshot records the kill (exit signal 9,
 *     kills), and a workload running alongside keeps exact counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "integration/bpf_test.h"
#include "integration/tmd_client.h"
#include "taskmon.h"
#include "taskmon_shm.h"
#include "wire.h"

static char g_dir[64], g_socket[96], g_state[96];
static pid_t g_tmd = -1;

/* ---- helpers ----------------------------------------------------------------------- */

static double secs_since(uint64_t t0)
{
	return (double)(bt_now_ns() - t0) / 1e9;
}

static pid_t g_children[2];   /* workloads by slot, until reaped: killed when a test fails */

/* Waits for pid; its exit code or 128 + signal, -1 when it had to be killed after the timeout. */
static int reap(pid_t pid, unsigned timeout_ms)
{
	int st;
	uint64_t end = bt_now_ns() + timeout_ms * 1000000ull;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (bt_now_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		tc_msleep(5);
	}
	for (int i = 0; i < 2; i++)
		if (g_children[i] == pid)
			g_children[i] = 0;   /* never signalled again: the pid may be reused */
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The collector's snapshot, parsed; NULL when none came. */
static json_t *snapshot(void)
{
	return tc_snapshot(g_socket, 65536, NULL);
}

static long long num(json_t *obj, const char *a, const char *b)
{
	json_t *j = json_object_get(obj, a);
	return json_integer_value(b ? json_object_get(j, b) : j);
}

/* Polls snapshots until done(workload of pid, arg) holds; the document (the
 * caller's to free) with *w set, or NULL after the timeout. */
static json_t *wait_snapshot(pid_t pid, bool (*done)(json_t *w, const void *arg), const void *arg, unsigned timeout_ms,
                             json_t **w)
{
	uint64_t end = bt_now_ns() + timeout_ms * 1000000ull;
	do {
		json_t *doc = snapshot();
		*w = doc ? tc_workload_of(doc, pid) : NULL;
		if (*w && done(*w, arg))
			return doc;
		json_decref(doc);
		tc_msleep(100);
	} while (bt_now_ns() < end);
	*w = NULL;
	return NULL;
}

static bool tmd_alive(void)
{
	int st;
	return g_tmd > 0 && waitpid(g_tmd, &st, WNOHANG) == 0;
}

static void start_taskmond(void)
{
	char path[PATH_MAX];
	bt_sibling(path, sizeof(path), "../taskmond");
	fflush(NULL);
	g_tmd = fork();
	assert_true(g_tmd >= 0);
	if (g_tmd == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execl(path, path, "--socket", g_socket, "--state-dir", g_state, "--foreground", "--metrics", "off",
		      (char *)NULL);
		_exit(98);
	}
	if (!tc_wait_up(g_socket, 1200, tmd_alive))
		fail_msg("taskmond did not come up on %s", g_socket);
}

/* Detaching waits for the kernel (an RCU grace period per uprobe): bounded,
 * not short. Its exit code (a sanitizer's report makes it non-zero), -1 when
 * it had to be killed. */
static int stop_taskmond(void)
{
	int rc = 0;
	if (g_tmd > 0) {
		uint64_t t0 = bt_now_ns();
		kill(g_tmd, SIGTERM);
		rc = reap(g_tmd, 40000);
		print_message("taskmond %s %.2f s after SIGTERM, exit code %d\n",
		              rc < 0 ? "was killed, still running" : "stopped", secs_since(t0), rc);
	}
	g_tmd = -1;
	return rc;
}

/* ---- workloads (children) ------------------------------------------------------------ */

/* Shared with the children (an anonymous shared mapping made before they fork). */
struct shared {
	atomic_ullong spawned[2];   /* per workload: tasks spawned so far */
	atomic_int go[2];           /* the parent says start */
	atomic_int stop[2];         /* the parent says stop */
};
static struct shared *g_sh;

static pid_t child(int (*fn)(int), int slot)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(120);   /* never outlives a test that went wrong */
		_exit(fn(slot));
	}
	g_children[slot] = pid;
	return pid;
}

/* After each test: what it left running (when it failed half-way) is stopped. */
static int kill_children(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++) {
		if (g_children[i] > 0 && kill(g_children[i], SIGKILL) == 0)
			waitpid(g_children[i], NULL, 0);
		g_children[i] = 0;
	}
	return 0;
}

static int body_short(void *arg)
{
	(void)arg;
	return 0;
}

static int body_sleep(void *arg)
{
	(void)arg;
	tm_sleep_ms(1);
	return 0;
}

/* Spawns batches of 8 tasks, joins them and sleeps 1 ms, until told to stop:
 * a steady rate that a stall shows in (a missed millisecond is not made up)
 * and that the other processes on a shared machine barely move, unlike a
 * spawner that takes all the CPU it can get. */
static int spawner(int slot)
{
	if (tm_init(NULL) != 0)
		return 10;
	int type = tm_type_register("spinner");
	if (type < 0)
		return 11;
	while (!atomic_load(&g_sh->stop[slot])) {
		tm_task *t[8];
		for (int i = 0; i < 8; i++) {
			if (tm_spawn(&t[i], "spin", body_short, NULL, TM_SPAWN_OPTS(.type = type)) != 0)
				return 12;
			atomic_fetch_add(&g_sh->spawned[slot], 1);
		}
		for (int i = 0; i < 8; i++)
			if (tm_join(t[i], 10000, NULL, NULL) != 0)
				return 13;
		tc_msleep(1);
	}
	tm_shutdown();
	return 0;
}

/* The victim: batches of 8 tasks that sleep 1 ms, so that some are always in flight. */
static int victim(int slot)
{
	if (tm_init(NULL) != 0)
		return 20;
	int type = tm_type_register("victim");
	if (type < 0)
		return 21;
	for (;;) {
		tm_task *t[8];
		for (int i = 0; i < 8; i++) {
			if (tm_spawn(&t[i], "victim_task", body_sleep, NULL, TM_SPAWN_OPTS(.type = type)) != 0)
				return 22;
			atomic_fetch_add(&g_sh->spawned[slot], 1);
		}
		for (int i = 0; i < 8; i++)
			tm_join(t[i], 10000, NULL, NULL);
	}
}

/* The bystander: BYSTANDER_TASKS tasks, one at a time, paced, once told to go;
 * then it holds still until told to stop. */
#define BYSTANDER_TASKS 600
static int bystander(int slot)
{
	if (tm_init(NULL) != 0)
		return 30;
	int type = tm_type_register("bystander");
	if (type < 0)
		return 31;
	while (!atomic_load(&g_sh->go[slot]))
		tc_msleep(5);
	for (int i = 0; i < BYSTANDER_TASKS; i++) {
		tm_task *t;
		char name[32];
		snprintf(name, sizeof(name), "bystander_%d", i);
		if (tm_spawn(&t, name, body_short, NULL, TM_SPAWN_OPTS(.type = type)) != 0 ||
		    tm_join(t, 10000, NULL, NULL) != 0)
			return 32;
		atomic_fetch_add(&g_sh->spawned[slot], 1);
		tc_msleep(2);
	}
	while (!atomic_load(&g_sh->stop[slot]))
		tc_msleep(10);
	tm_shutdown();
	return 0;
}

/* ---- predicates on a snapshot's workload ------------------------------------------------ */

static bool has_kernel_starts(json_t *w, const void *arg)
{
	return json_is_true(json_object_get(w, "alive")) && num(w, "kernel", "tasks_started") > *(const long long *)arg;
}

static bool spawned_more(json_t *w, const void *arg)
{
	return json_is_true(json_object_get(w, "alive")) && num(w, "registry", "spawned") > *(const long long *)arg;
}

static bool listed(json_t *w, const void *arg)
{
	(void)arg;
	return json_is_true(json_object_get(w, "alive"));
}

static bool gone_and_cleaned(json_t *w, const void *arg)
{
	(void)arg;
	return json_is_false(json_object_get(w, "alive")) && json_is_true(json_object_get(w, "segment_removed")) &&
	       json_is_true(json_object_get(w, "exited"));
}

/* All its tasks ended, in the registry and in the kernel's figures. */
static bool all_ended(json_t *w, const void *arg)
{
	long long n = *(const long long *)arg;
	return num(w, "registry", "spawned") == n && num(w, "registry", "running") == 0 &&
	       num(w, "kernel", "tasks_ended") + num(w, "kernel", "tasks_partial") >= n;
}

/* ---- the collector killed ---------------------------------------------------------------- */

#define WINDOW_MS 4000
#define SAMPLE_MS 100

struct rate {
	unsigned long long tasks;     /* spawned in the window */
	unsigned long long slowest;   /* fewest spawned in one sample period */
	double secs, per_s;
	double reaped_s;              /* when the dying collector was reaped, -1 if not in the window */
};

/* Samples spawner 0's count every SAMPLE_MS for WINDOW_MS; reaps the
 * collector *dying (when not NULL and > 0) once it is gone, and notes when. */
static void window(struct rate *r, pid_t *dying, uint64_t t_kill)
{
	uint64_t t0 = bt_now_ns();
	unsigned long long first = atomic_load(&g_sh->spawned[0]), prev = first;
	r->slowest = ~0ull;
	r->reaped_s = -1;
	for (int i = 0; i < WINDOW_MS / SAMPLE_MS; i++) {
		tc_msleep(SAMPLE_MS);
		unsigned long long now = atomic_load(&g_sh->spawned[0]);
		if (now - prev < r->slowest)
			r->slowest = now - prev;
		prev = now;
		int st;
		if (dying && *dying > 0 && waitpid(*dying, &st, WNOHANG) == *dying) {
			r->reaped_s = secs_since(t_kill);
			*dying = -1;
		}
	}
	r->tasks = prev - first;
	r->secs = secs_since(t0);
	r->per_s = (double)r->tasks / r->secs;
}

static void test_collector_killed(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	if (!tmd_alive())
		start_taskmond();
	pid_t wl = child(spawner, 0);
	json_t *w, *doc;
	long long zero = 0;
	doc = wait_snapshot(wl, has_kernel_starts, &zero, 30000, &w);
	if (!doc)
		fail_msg("the first collector never showed the spawner's kernel figures");
	json_decref(doc);
	tc_msleep(1000);   /* past the start: a steady rate */

	struct rate before, after, again;
	pid_t dying = g_tmd;
	window(&before, NULL, 0);
	uint64_t t_kill = bt_now_ns();
	assert_int_equal(kill(g_tmd, SIGKILL), 0);
	window(&after, &dying, t_kill);
	if (dying > 0) {   /* the kernel still detaching its probes */
		int rc = reap(dying, 40000);
		after.reaped_s = rc < 0 ? -1 : secs_since(t_kill);
	}
	g_tmd = -1;
	int st;
	assert_int_equal(waitpid(wl, &st, WNOHANG), 0);   /* the workload lives on */

	/* A new collector on the same socket: the killed one left its socket file. */
	assert_int_equal(access(g_socket, F_OK), 0);
	uint64_t t1 = bt_now_ns();
	start_taskmond();
	double up_s = secs_since(t1);
	doc = wait_snapshot(wl, listed, NULL, 30000, &w);
	if (!doc)
		fail_msg("the new collector did not find the live spawner");
	double found_s = secs_since(t1);
	long long spawned1 = num(w, "registry", "spawned");
	long long own1 = (long long)atomic_load(&g_sh->spawned[0]);
	json_decref(doc);
	/* Its registry counts carry on from the segment: the totals since it started. */
	assert_true(spawned1 > (long long)(before.tasks + after.tasks));
	doc = wait_snapshot(wl, spawned_more, &spawned1, 10000, &w);
	assert_non_null(doc);
	long long spawned2 = num(w, "registry", "spawned");
	json_decref(doc);
	/* The kernel figures resume: start and end events for its new tasks. */
	doc = wait_snapshot(wl, has_kernel_starts, &zero, 30000, &w);
	if (!doc)
		fail_msg("the new collector shows no kernel figures for the spawner's new tasks");
	long long k1 = num(w, "kernel", "tasks_started");
	json_decref(doc);
	window(&again, NULL, 0);   /* watched again: the same conditions as before the kill */
	doc = wait_snapshot(wl, has_kernel_starts, &k1, 10000, &w);
	assert_non_null(doc);
	long long k2 = num(w, "kernel", "tasks_started"), kend = num(w, "kernel", "tasks_ended");
	long long lat = num(json_object_get(w, "kernel"), "spawn_latency", "count");
	json_decref(doc);

	double ratio = after.per_s / before.per_s, ratio_again = again.per_s / before.per_s;
	print_message("spawn rate: %.0f tasks/s in the %.1f s before kill -9 of the collector, %.0f tasks/s in the "
	              "%.1f s after it (no collector): ratio after/before %.3f; slowest %d ms: %llu before, %llu "
	              "after; the killed collector was reaped %.2f s after the kill\n",
	              before.per_s, before.secs, after.per_s, after.secs, ratio, SAMPLE_MS, before.slowest,
	              after.slowest, after.reaped_s);
	print_message("new collector: socket up in %.2f s, spawner found %.2f s after its start; registry spawned "
	              "%lld then %lld (the workload's own count %lld); kernel tasks started %lld then %lld, ended "
	              "%lld, spawn latencies %lld; spawn rate watched again %.0f tasks/s: ratio to before the kill "
	              "%.3f\n",
	              up_s, found_s, spawned1, spawned2, own1, k1, k2, kend, lat, again.per_s, ratio_again);
	assert_true(spawned2 > spawned1);
	assert_true(k2 > k1 && kend > 0 && lat > 0);
	/* The kill never stalls or slows the workload (it runs faster unwatched:
	 * the probes are gone), and once watched again it spawns as it did while
	 * watched before. Generous bounds: the machine is shared and noisy; the
	 * figures are the ratios printed. */
	assert_true(after.slowest > 0);
	assert_true(ratio > 0.7);
	assert_true(ratio_again > 0.7 && ratio_again < 1.3);

	atomic_store(&g_sh->stop[0], 1);
	assert_int_equal(reap(wl, 20000), 0);
}

/* ---- a workload killed ----------------------------------------------------------------- */

static bool segment_exists(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "%s/%s%d", TM_SHM_DIR, TM_SHM_PREFIX, (int)pid);
	return access(path, F_OK) == 0;
}

/* A workload's figures as one string: registry counters, kernel figures, its types. */
static char *figures(json_t *w)
{
	json_t *f = json_pack("{s:O, s:O, s:O}", "registry", json_object_get(w, "registry"), "kernel",
	                      json_object_get(w, "kernel"), "types", json_object_get(w, "types"));
	json_t *reg = json_object_get(f, "registry");
	/* Not figures of its tasks: the tracker's own bookkeeping shrinks as retention drops records. */
	json_t *copy = json_deep_copy(reg);
	json_object_del(copy, "tracked_records");
	json_object_del(copy, "tracker_bytes");
	json_object_set_new(f, "registry", copy);
	char *s = json_dumps(f, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(f);
	return s;
}

static void test_workload_killed(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	if (!tmd_alive())
		start_taskmond();
	atomic_store(&g_sh->spawned[0], 0);
	pid_t by = child(bystander, 1);
	pid_t vi = child(victim, 0);
	json_t *w, *doc;
	long long zero = 0, spawn_floor = 200;
	/* Both watched before the bystander's first task, so that the kernel sees all of them. */
	doc = wait_snapshot(by, listed, NULL, 30000, &w);
	if (!doc)
		fail_msg("the collector never listed the bystander");
	json_decref(doc);
	doc = wait_snapshot(vi, has_kernel_starts, &zero, 30000, &w);
	if (!doc)
		fail_msg("the collector never showed the victim's kernel figures");
	json_decref(doc);
	doc = wait_snapshot(vi, spawned_more, &spawn_floor, 30000, &w);
	assert_non_null(doc);
	json_decref(doc);
	assert_true(segment_exists(vi));

	/* Killed mid-spawn, while the bystander runs its tasks. */
	atomic_store(&g_sh->go[1], 1);
	while (atomic_load(&g_sh->spawned[1]) < BYSTANDER_TASKS / 3)
		tc_msleep(5);
	unsigned long long vi_spawned = atomic_load(&g_sh->spawned[0]);
	uint64_t t_kill = bt_now_ns();
	assert_int_equal(kill(vi, SIGKILL), 0);
	assert_int_equal(reap(vi, 10000), 128 + SIGKILL);
	unsigned long long by_at_kill = atomic_load(&g_sh->spawned[1]);

	doc = wait_snapshot(vi, gone_and_cleaned, NULL, 20000, &w);
	if (!doc)
		fail_msg("the killed workload was not found gone with its segment removed");
	double cleaned_s = secs_since(t_kill);
	json_t *exitj = json_object_get(w, "exit");
	long long sig = json_integer_value(json_object_get(exitj, "signal"));
	long long kills = num(w, "kills", NULL), crashes = num(w, "crashes", NULL);
	long long removed = num(json_object_get(doc, "collector"), "segments_removed", NULL);
	long long running = num(w, "registry", "running"), spawned = num(w, "registry", "spawned");
	long long kstart = num(w, "kernel", "tasks_started");
	long long kend = num(w, "kernel", "tasks_ended") + num(w, "kernel", "tasks_partial");
	/* Its tasks in flight are closed out: every one kept is finished. */
	size_t i;
	json_t *t;
	int kept = 0, still_running = 0, status_running = 0, exited = 0;
	json_array_foreach(json_object_get(doc, "tasks"), i, t) {
		if (num(t, "pid", NULL) != vi)
			continue;
		kept++;
		still_running += !json_is_true(json_object_get(t, "finished"));
		status_running += strcmp(json_string_value(json_object_get(t, "status")), "running") == 0;
		exited += json_is_true(json_object_get(json_object_get(t, "kernel"), "exited"));
	}
	print_message("victim's tasks kept %d: %d not finished, %d with status running, %d closed out by the exit\n",
	              kept, still_running, status_running, exited);
	print_message("victim (%llu tasks spawned, bystander at %llu of %d) killed: gone and cleaned %.2f s later; "
	              "exit signal %lld, kills %lld, crashes %lld, segments removed %lld; registry spawned %lld, "
	              "running %lld at the end; kernel started %lld, ended %lld; %d kept tasks still running\n",
	              vi_spawned, by_at_kill, BYSTANDER_TASKS, cleaned_s, sig, kills, crashes, removed, spawned,
	              running, kstart, kend, still_running);
	assert_false(segment_exists(vi));
	assert_int_equal(sig, SIGKILL);
	assert_true(kills >= 1);
	assert_int_equal(crashes, 0);
	/* Removed by this collector (segments_removed), or first by another
	 * collector running on the machine, which cleans every stale segment. */
	assert_true(removed >= 0);
	assert_true(spawned > 0 && kstart > 0);
	assert_int_equal(still_running, 0);
	json_decref(doc);

	/* The bystander: exact counts, in the registry and in the kernel. */
	long long n = BYSTANDER_TASKS;
	doc = wait_snapshot(by, all_ended, &n, 30000, &w);
	if (!doc)
		fail_msg("the bystander's %lld tasks were not all seen ending", n);
	char *fig1 = figures(w);
	long long lost = num(json_object_get(doc, "collector"), "lost", NULL);
	print_message("bystander: registry spawned %lld succeeded %lld failed %lld crashed %lld; kernel started %lld "
	              "ended %lld partial %lld; events lost %lld\n",
	              num(w, "registry", "spawned"), num(w, "registry", "succeeded"), num(w, "registry", "failed"),
	              num(w, "registry", "crashed"), num(w, "kernel", "tasks_started"), num(w, "kernel", "tasks_ended"),
	              num(w, "kernel", "tasks_partial"), lost);
	assert_true(json_is_true(json_object_get(w, "alive")));
	assert_int_equal(num(w, "registry", "succeeded"), n);
	assert_int_equal(num(w, "registry", "failed") + num(w, "registry", "crashed"), 0);
	assert_int_equal(num(w, "kills", NULL) + num(w, "crashes", NULL), 0);
	if (lost == 0) {   /* every event delivered: the kernel saw each task once */
		assert_int_equal(num(w, "kernel", "tasks_started"), n);
		assert_int_equal(num(w, "kernel", "tasks_ended"), n);
		assert_int_equal(num(w, "kernel", "spawns_seen"), n);
	}
	json_decref(doc);
	/* And nothing changes them later: two more collector ticks. */
	tc_msleep(2500);
	doc = wait_snapshot(by, listed, NULL, 10000, &w);
	assert_non_null(doc);
	char *fig2 = figures(w);
	json_decref(doc);
	if (strcmp(fig1, fig2) != 0)
		fail_msg("the bystander's figures changed while it held still:\n%s\n%s", fig1, fig2);
	free(fig1);
	free(fig2);

	atomic_store(&g_sh->stop[1], 1);
	assert_int_equal(reap(by, 20000), 0);
	assert_int_equal(stop_taskmond(), 0);
}

static int setup(void **state)
{
	(void)state;
	if (bpf_test_skip_reason())
		return 0;
	snprintf(g_dir, sizeof(g_dir), "/tmp/tm_kill.XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	snprintf(g_socket, sizeof(g_socket), "%s/taskmond.sock", g_dir);
	snprintf(g_state, sizeof(g_state), "%s/state", g_dir);
	mkdir(g_state, 0755);
	setenv("TASKMON_SOCKET", g_socket, 1);
	unsetenv("TASKMON_CONFIG");
	signal(SIGPIPE, SIG_IGN);
	g_sh = mmap(NULL, sizeof(*g_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(g_sh != MAP_FAILED);
	memset(g_sh, 0, sizeof(*g_sh));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (bpf_test_skip_reason())
		return 0;
	stop_taskmond();
	munmap(g_sh, sizeof(*g_sh));
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		print_message("could not remove %s\n", g_dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_collector_killed, kill_children),
		cmocka_unit_test_teardown(test_workload_killed, kill_children),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
