/* taskmond end to end: the built daemon with its own socket and state
 * directory, the integration workload registering through that socket, and
 * snapshots read back over it. Needs root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "integration/bpf_test.h"
#include "taskmon.h"
#include "taskmon_shm.h"
#include "wire.h"

struct daemon {
	char dir[64], sock[96], state[96], log[96];
	pid_t pid;
};
static struct daemon tmd;

/* ---- the socket ------------------------------------------------------------------ */

static int sock_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", tmd.sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static ssize_t read_all(int fd, void *buf, size_t n, unsigned timeout_ms)
{
	size_t got = 0;
	uint64_t end = bt_now_ns() + timeout_ms * 1000000ull;
	while (got < n && bt_now_ns() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t k = recv(fd, (char *)buf + got, n - got, 0);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/* One request on a new connection; the reply header in *h, its body returned (malloc'ed). */
static char *request(const void *req, size_t len, struct tm_wire_hdr *h)
{
	int fd = sock_connect();
	if (fd < 0)
		return NULL;
	char *body = NULL;
	if (send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len && read_all(fd, h, sizeof(*h), 5000) == sizeof(*h) &&
	    (body = malloc(h->len + 1)) != NULL) {
		if (read_all(fd, body, h->len, 10000) != (ssize_t)h->len) {
			free(body);
			body = NULL;
		} else {
			body[h->len] = '\0';
		}
	}
	close(fd);
	return body;
}

static json_t *snapshot(void)
{
	struct {
		struct tm_wire_hdr h;
		struct tm_wire_snapshot_req r;
	} req = { { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = TM_WIRE_SNAPSHOT,
	            .len = sizeof(req.r) }, { .max_tasks = 100000 } };
	struct tm_wire_hdr h;
	json_error_t err;
	char *body = request(&req, sizeof(req), &h);
	if (!body || h.type != (TM_WIRE_SNAPSHOT | TM_WIRE_REPLY)) {
		free(body);
		return NULL;
	}
	json_t *j = json_loads(body, 0, &err);
	if (!j)
		print_error("snapshot is not JSON: %s\n", err.text);
	free(body);
	return j;
}

static uint64_t jint(json_t *obj, const char *path)
{
	char key[64];
	const char *p = path;
	while (obj && *p) {
		size_t n = strcspn(p, ".");
		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		obj = json_object_get(obj, key);
		p += n + (p[n] == '.');
	}
	return (uint64_t)json_integer_value(obj);
}

static json_t *find_by(json_t *array, const char *key, json_int_t pid, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(array, i, v) {
		if (name ? strcmp(json_string_value(json_object_get(v, key)) ?: "", name) == 0
		         : json_integer_value(json_object_get(v, key)) == pid)
			return v;
	}
	return NULL;
}

static json_t *workload_of(json_t *snap, pid_t pid)
{
	return find_by(json_object_get(snap, "workloads"), "pid", pid, NULL);
}

/* Library counters of the workloads that are gone, as the machine-wide figure shows them. */
static uint64_t departed_spawned(json_t *snap)
{
	uint64_t live = 0;
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(snap, "workloads"), i, w)
		if (json_is_true(json_object_get(w, "alive")))
			live += jint(w, "registry.spawned");
	return jint(snap, "machine.registry.spawned") - live;
}

/* ---- the daemon --------------------------------------------------------------------- */

static int start_daemon(void **state)
{
	(void)state;
	char path[PATH_MAX], lib[PATH_MAX];
	if (bpf_test_skip_reason())
		return 0;
	snprintf(tmd.dir, sizeof(tmd.dir), "/tmp/tm_collector.XXXXXX");
	if (!mkdtemp(tmd.dir))
		return -1;
	snprintf(tmd.sock, sizeof(tmd.sock), "%s/run/taskmond.sock", tmd.dir);
	snprintf(tmd.state, sizeof(tmd.state), "%s/state/taskmon", tmd.dir);
	snprintf(tmd.log, sizeof(tmd.log), "%s/taskmond.log", tmd.dir);
	bt_sibling(path, sizeof(path), "../taskmond");
	bt_sibling(lib, sizeof(lib), "../libtaskmon.so");
	tmd.pid = fork();
	if (tmd.pid < 0)
		return -1;
	if (tmd.pid == 0) {
		int fd = open(tmd.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(path, path, "--foreground", "--socket", tmd.sock, "--state-dir", tmd.state, "--library", lib,
		      "--retention", "60", "--duration", "300", (char *)NULL);
		_exit(98);
	}
	/* Up once it answers a snapshot. */
	for (int i = 0; i < 200; i++) {
		json_t *j = snapshot();
		if (j) {
			json_decref(j);
			return 0;
		}
		usleep(50000);
	}
	print_error("taskmond did not come up; see %s\n", tmd.log);
	return -1;
}

static void show_log(void)
{
	char line[512];
	FILE *f = fopen(tmd.log, "r");
	while (f && fgets(line, sizeof(line), f))
		print_message("taskmond: %s", line);
	if (f)
		fclose(f);
}

static int stop_daemon(void **state)
{
	(void)state;
	char cmd[128];
	int st = 0;
	if (tmd.pid <= 0)
		return 0;
	kill(tmd.pid, SIGTERM);
	uint64_t end = bt_now_ns() + 10000000000ull;
	while (waitpid(tmd.pid, &st, WNOHANG) == 0 && bt_now_ns() < end)
		usleep(10000);
	if (bt_now_ns() >= end) {
		kill(tmd.pid, SIGKILL);
		waitpid(tmd.pid, &st, 0);
	}
	bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (!ok)
		show_log();
	struct stat sb;
	bool socket_left = stat(tmd.sock, &sb) == 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmd.dir);
	if (system(cmd) != 0)
		return -1;
	return ok && !socket_left ? 0 : -1;
}

/* ---- the workload -------------------------------------------------------------------- */

struct workload {
	pid_t pid;
	int in;
	FILE *out;
};

/* Starts tests/integration/workload, registering at our socket; waits for "done". */
static void workload_start(struct workload *w, const char *const *tasks)
{
	char path[PATH_MAX], line[128], env_sock[160];
	const char *argv[16];
	int to[2], from[2], n = 0;
	bt_sibling(path, sizeof(path), "integration/workload");
	argv[n++] = path;
	argv[n++] = "--hold";
	while (*tasks && n < 15)
		argv[n++] = *tasks++;
	argv[n] = NULL;
	snprintf(env_sock, sizeof(env_sock), "TASKMON_SOCKET=%s", tmd.sock);
	char *envp[256];
	size_t ne = 0;
	envp[ne++] = env_sock;
	envp[ne++] = (char *)"ASAN_OPTIONS=detect_leaks=0";
	for (char **e = environ; *e && ne < 255; e++)
		if (strncmp(*e, "TASKMON_SOCKET=", 15) && strncmp(*e, "ASAN_OPTIONS=", 13))
			envp[ne++] = *e;
	envp[ne] = NULL;
	assert_int_equal(pipe2(to, O_CLOEXEC), 0);
	assert_int_equal(pipe2(from, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, to[0], 0);
	posix_spawn_file_actions_adddup2(&fa, from[1], 1);
	assert_int_equal(posix_spawn(&w->pid, path, &fa, NULL, (char *const *)argv, envp), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(to[0]);
	close(from[1]);
	w->in = to[1];
	w->out = fdopen(from[0], "r");
	bool done = false;
	while (!done && fgets(line, sizeof(line), w->out))
		done = strncmp(line, "done", 4) == 0;
	assert_true(done);
}

/* Lets it return from main (kill = 0) or kills it; reaps it. */
static void workload_end(struct workload *w, int sig)
{
	int st;
	if (sig)
		kill(w->pid, sig);
	else if (write(w->in, "\n", 1) != 1)
		kill(w->pid, SIGKILL);
	close(w->in);
	fclose(w->out);
	assert_int_equal(waitpid(w->pid, &st, 0), w->pid);
	if (!sig)
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Snapshots until the workload has `ended` kernel end events (or 10 s). */
static json_t *snapshot_when_ended(pid_t pid, uint64_t ended)
{
	for (int i = 0; i < 100; i++) {
		json_t *j = snapshot();
		json_t *w = j ? workload_of(j, pid) : NULL;
		if (w && jint(w, "kernel.tasks_ended") >= ended && jint(w, "registry.succeeded") >= ended)
			return j;
		json_decref(j);
		usleep(100000);
	}
	return snapshot();
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_counts_latency_comm(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	struct workload wl;
	static const char *const mix[] = { "general=5", "network=3", "game_logic=2", NULL };
	static const struct { const char *type; uint64_t n; } want[] = { { "general", 5 }, { "network", 3 },
	                                                                   { "game_logic", 2 } };
	workload_start(&wl, mix);
	json_t *snap = snapshot_when_ended(wl.pid, 10);
	workload_end(&wl, 0);
	assert_non_null(snap);
	json_t *w = workload_of(snap, wl.pid);
	assert_non_null(w);
	assert_string_equal(json_string_value(json_object_get(w, "comm")), "workload");
	assert_true(json_is_true(json_object_get(w, "alive")));
	assert_true(json_is_true(json_object_get(w, "has_registry")));
	json_t *types = json_object_get(w, "types");
	for (size_t i = 0; i < 3; i++) {
		json_t *t = find_by(types, "name", 0, want[i].type);
		assert_non_null(t);
		print_message("%-10s spawned %llu (library), %llu started / %llu ended (kernel), spawn latency p50 %llu ns\n",
		              want[i].type, (unsigned long long)jint(t, "registry.spawned"),
		              (unsigned long long)jint(t, "kernel.tasks_started"),
		              (unsigned long long)jint(t, "kernel.tasks_ended"),
		              (unsigned long long)jint(t, "kernel.spawn_latency.p50_ns"));
		assert_int_equal(jint(t, "registry.spawned"), want[i].n);
		assert_int_equal(jint(t, "kernel.tasks_started"), want[i].n);
		assert_int_equal(jint(t, "kernel.spawns_seen"), want[i].n);
		assert_int_equal(jint(t, "kernel.tasks_ended"), want[i].n);
		assert_int_equal(jint(t, "kernel.spawn_latency.count"), want[i].n);
		assert_true(jint(t, "kernel.spawn_latency.p50_ns") > 0);
		assert_true(jint(t, "kernel.run_time.max_ns") > 0);
	}
	/* Every task, with the kernel's spawn latency. */
	size_t i, n = 0;
	json_t *t;
	json_array_foreach(json_object_get(snap, "tasks"), i, t) {
		if (json_integer_value(json_object_get(t, "pid")) != wl.pid)
			continue;
		n++;
		json_t *lat = json_object_get(json_object_get(t, "kernel"), "spawn_latency_ns");
		assert_true(json_is_integer(lat) && json_integer_value(lat) > 0);
		assert_string_equal(json_string_value(json_object_get(t, "status")), "succeeded");
		assert_true(jint(t, "kernel.oncpu_ns") > 0);
	}
	assert_int_equal(n, 10);
	assert_true(jint(snap, "collector.registrations") >= 1);
	assert_int_equal(jint(snap, "collector.lost"), 0);
	json_decref(snap);
}

/* Registered in tm_init, before it returned: the very first task's start
 * and its spawn were seen. */
static void test_watched_before_first_spawn(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	struct workload wl;
	json_t *before = snapshot();
	assert_non_null(before);
	static const char *const mix[] = { "database=1", NULL };
	workload_start(&wl, mix);
	json_t *snap = snapshot_when_ended(wl.pid, 1);
	workload_end(&wl, 0);
	assert_non_null(snap);
	assert_true(jint(snap, "collector.registrations") > jint(before, "collector.registrations"));
	json_t *first = NULL, *t;
	size_t i;
	json_array_foreach(json_object_get(snap, "tasks"), i, t)
		if (json_integer_value(json_object_get(t, "pid")) == wl.pid &&
		    (!first || jint(t, "id") < jint(first, "id")))
			first = t;
	assert_non_null(first);
	json_t *k = json_object_get(first, "kernel");
	print_message("first task %llu: kernel start %s, spawn latency %lld ns\n", (unsigned long long)jint(first, "id"),
	              json_is_true(json_object_get(k, "started")) ? "seen" : "missed",
	              json_integer_value(json_object_get(k, "spawn_latency_ns")));
	assert_true(json_is_true(json_object_get(k, "started")));
	assert_true(json_is_integer(json_object_get(k, "spawn_latency_ns")));
	json_decref(before);
	json_decref(snap);
}

/* Killed outright: its final figures stay, in the machine-wide ones too, and
 * the segment it left is removed. */
static void test_dead_workload(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	struct workload wl;
	char seg[64];
	struct stat st;
	static const char *const mix[] = { "maintenance=4", NULL };
	workload_start(&wl, mix);
	json_t *before = snapshot_when_ended(wl.pid, 4);
	assert_non_null(before);
	uint64_t departed0 = departed_spawned(before);
	workload_end(&wl, SIGKILL);
	snprintf(seg, sizeof(seg), TM_SHM_DIR "/" TM_SHM_PREFIX "%d", (int)wl.pid);
	print_message("segment right after the kill: %s\n", stat(seg, &st) == 0 ? "present" : "already removed");
	json_t *snap = NULL, *w = NULL;
	for (int i = 0; i < 100; i++) {
		json_decref(snap);
		snap = snapshot();
		w = snap ? workload_of(snap, wl.pid) : NULL;
		if (w && !json_is_true(json_object_get(w, "alive")))
			break;
		usleep(100000);
	}
	assert_non_null(w);
	assert_false(json_is_true(json_object_get(w, "alive")));
	assert_true(json_is_true(json_object_get(w, "exited")));
	assert_int_equal(jint(w, "exit.signal"), SIGKILL);
	assert_true(json_is_true(json_object_get(w, "segment_removed")));
	assert_int_not_equal(stat(seg, &st), 0);
	assert_int_equal(jint(w, "registry.spawned"), 4);   /* its final figures */
	assert_true(jint(snap, "collector.segments_removed") > jint(before, "collector.segments_removed"));
	uint64_t departed1 = departed_spawned(snap);
	print_message("departed workloads' spawns in the machine-wide figure: %llu -> %llu\n",
	              (unsigned long long)departed0, (unsigned long long)departed1);
	assert_true(departed1 >= departed0 + 4);
	json_t *mt = find_by(json_object_get(snap, "types"), "name", 0, "maintenance");
	assert_non_null(mt);
	assert_true(jint(mt, "registry.spawned") >= 4);
	assert_true(jint(mt, "kernel.tasks_started") >= 4);
	json_decref(before);
	json_decref(snap);
}

static void expect_error(const void *req, size_t len, int status)
{
	struct tm_wire_hdr h;
	char *why = request(req, len, &h);
	assert_non_null(why);
	assert_int_equal(h.type, TM_WIRE_ERROR);
	assert_int_equal(h.status, status);
	print_message("error reply: %s\n", why);
	free(why);
}

static void test_malformed_request(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	struct tm_wire_hdr bad = { .magic = 0xdeadbeef, .version = TM_WIRE_VERSION, .type = TM_WIRE_SNAPSHOT };
	expect_error(&bad, sizeof(bad), -EPROTO);
	bad = (struct tm_wire_hdr){ .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = 12345, .len = 3 };
	expect_error(&bad, sizeof(bad), -EINVAL);
	static const char junk[] = "{\"snapshot\": true}\n";
	expect_error(junk, sizeof(junk) - 1, -EPROTO);
	int fd = sock_connect();   /* half a header, then gone */
	assert_true(fd >= 0);
	assert_int_equal(send(fd, &bad, 5, MSG_NOSIGNAL), 5);
	close(fd);
	json_t *j = snapshot();   /* still serving */
	assert_non_null(j);
	assert_int_equal(jint(j, "version"), 1);
	json_decref(j);
	assert_int_equal(kill(tmd.pid, 0), 0);
}

static void test_second_collector_refused(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	char path[PATH_MAX], cmd[PATH_MAX + 256];
	struct stat st;
	bt_sibling(path, sizeof(path), "../taskmond");
	snprintf(cmd, sizeof(cmd), "'%s' --foreground --socket '%s' --state-dir '%s' --duration 5 2>&1", path, tmd.sock,
	         tmd.state);
	FILE *p = popen(cmd, "r");
	char out[512] = "";
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int st_ = pclose(p);
	print_message("second taskmond: %s", out);
	assert_true(WIFEXITED(st_) && WEXITSTATUS(st_) == 1);
	assert_non_null(strstr(out, "another taskmond is serving"));
	assert_int_equal(stat(tmd.sock, &st), 0);   /* the first one's socket stays */
	assert_int_equal(stat(tmd.state, &st), 0);  /* created by the first one */
	json_t *j = snapshot();
	assert_non_null(j);
	json_decref(j);
}

static int panic_three_times(void *arg)
{
	unsigned *runs = arg;
	tm_panic("ledger corrupt (run %u)", __atomic_add_fetch(runs, 1, __ATOMIC_RELAXED));
}

/* This process as the workload: a critical task panics, is restarted twice
 * after linear delays (20 ms, then 40 ms) and gives up. The kernel side's
 * restart events carry the delays into the snapshot, and the registry's
 * message ring the last panic message. */
static void test_restart_delays_and_message(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	unsigned runs = 0;
	tm_task *t;
	enum tm_status st;
	setenv("TASKMON_SOCKET", tmd.sock, 1);
	assert_int_equal(tm_init(NULL), 0);
	/* Followed (and its probes attached) before the restarts happen, even
	 * when a loaded machine made the registration in tm_init time out and the
	 * collector finds the segment by its scan instead. */
	bool followed = false;
	for (int i = 0; i < 200 && !followed; i++) {
		json_t *j = snapshot();
		followed = j && workload_of(j, getpid()) && json_is_true(json_object_get(workload_of(j, getpid()), "has_registry"));
		json_decref(j);
		if (!followed)
			usleep(100000);
	}
	assert_true(followed);
	assert_int_equal(tm_spawn_critical(&t, "ledger", panic_three_times, &runs,
	                                   TM_CRITICAL_OPTS(.restart = TM_RESTART_ON_PANIC, .max_restarts = 2,
	                                                    .backoff = { TM_BACKOFF_LINEAR, .base_ms = 20 })), 0);
	uint64_t id = tm_task_id(t);
	assert_int_equal(tm_join(t, -1, &st, NULL), 0);
	assert_int_equal(st, TM_PANICKED);
	assert_int_equal(runs, 3);
	json_t *snap = NULL, *task = NULL;
	for (int i = 0; i < 200; i++) {   /* the registry is re-read within a second */
		json_decref(snap);
		snap = snapshot();
		size_t k;
		json_t *v;
		task = NULL;
		json_array_foreach(snap ? json_object_get(snap, "tasks") : NULL, k, v)
			if (json_integer_value(json_object_get(v, "pid")) == getpid() &&
			    (uint64_t)json_integer_value(json_object_get(v, "id")) == id)
				task = v;
		if (task && json_is_string(json_object_get(task, "message")) &&
		    json_array_size(json_object_get(task, "restart_history")) >= 2)
			break;
		usleep(100000);
	}
	if (!task) {   /* say why: no answer, not followed, or no room for its record */
		json_t *w = snap ? workload_of(snap, getpid()) : NULL;
		print_error("ledger not in the snapshot: %s; this workload %s, tasks kept %llu, dropped %llu\n",
		            snap ? "answered" : "no answer", w ? "followed" : "not followed",
		            (unsigned long long)jint(w, "tasks_kept"), (unsigned long long)jint(w, "tasks_dropped"));
	}
	assert_non_null(task);
	print_message("ledger: status %s, message \"%s\", %zu restarts in its history\n",
	              json_string_value(json_object_get(task, "status")),
	              json_string_value(json_object_get(task, "message")) ?: "(null)",
	              json_array_size(json_object_get(task, "restart_history")));
	assert_string_equal(json_string_value(json_object_get(task, "status")), "panicked");
	assert_string_equal(json_string_value(json_object_get(task, "message")), "ledger corrupt (run 3)");
	json_t *hist = json_object_get(task, "restart_history");
	assert_int_equal(json_array_size(hist), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *r = json_array_get(hist, i);
		assert_int_equal(jint(r, "attempt"), i + 1);
		assert_int_equal(jint(r, "delay_ms"), 20 * (i + 1));
		assert_true(jint(r, "at_ns") > 0);
	}
	assert_true(jint(json_array_get(hist, 1), "at_ns") - jint(json_array_get(hist, 0), "at_ns") >= 20000000ull);
	json_decref(snap);
	tm_shutdown();
	unsetenv("TASKMON_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_latency_comm),
		cmocka_unit_test(test_watched_before_first_spawn),
		cmocka_unit_test(test_dead_workload),
		cmocka_unit_test(test_malformed_request),
		cmocka_unit_test(test_second_collector_refused),
		cmocka_unit_test(test_restart_delays_and_message),
	};
	return cmocka_run_group_tests(tests, start_daemon, stop_daemon);
}
