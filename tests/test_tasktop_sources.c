/* tasktop's sources: the standalone one against this process's own live
 * registry, the live one against a scripted fake collector (every failure a
 * real one can show) and, as root, against a real taskmond that goes away and
 * comes back, and replay over a record directory written here. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "source.h"
#include "taskmon.h"
#include "taskmon_shm.h"
#include "tasktop_fixtures.h"
#include "wire.h"

static char g_dir[64];   /* this run's temporary directory */
/* Children of the real-collector test, stopped by the teardown too: a failed
 * assertion must not leave a collector running. */
static pid_t g_collector, g_workload;
static int g_hold = -1;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void msleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Fetches until the result is `want` (or 0), retrying -EAGAIN, within timeout_ms. */
static int fetch_until(struct tt_source *s, int want, unsigned timeout_ms, struct tt_model **out)
{
	uint64_t end = mono_ns() + timeout_ms * 1000000ull;
	int rc;
	for (;;) {
		rc = tt_source_fetch(s, 100, out);
		if (rc == want || rc == 0 || mono_ns() > end)
			return rc;
		msleep(20);
	}
}

/* ---- standalone: this process's own registry ------------------------------ */

static atomic_int g_stop;

static int sleeper(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_stop) && tm_sleep_ms(5) == 0)
		;
	return 0;
}

static int spinner(void *arg)
{
	(void)arg;
	volatile uint64_t x = 0;
	while (!atomic_load(&g_stop) && !tm_cancelled())
		x++;
	return 0;
}

static int returns(void *arg)
{
	return (int)(intptr_t)arg;
}

static int panics(void *arg)
{
	(void)arg;
	tm_panic("deliberate");
	return 0;
}

static const struct tt_workload *own_workload(const struct tt_model *m)
{
	return tt_model_find_workload(m, getpid());
}

static const struct tt_task *task_named(const struct tt_model *m, const char *name)
{
	for (size_t i = 0; i < m->ntasks; i++)
		if (m->tasks[i].pid == getpid() && strcmp(m->tasks[i].name.s, name) == 0)
			return &m->tasks[i];
	return NULL;
}

static void test_standalone_own_registry(void **state)
{
	(void)state;
	tm_task *run[3];
	enum tm_status st;
	int rc;
	atomic_store(&g_stop, 0);
	assert_int_equal(tm_spawn(&run[0], "sleeper_a", sleeper, NULL, TM_SPAWN_OPTS(.type = TM_NETWORK)), 0);
	assert_int_equal(tm_spawn(&run[1], "sleeper_b", sleeper, NULL, TM_SPAWN_OPTS(.type = TM_NETWORK)), 0);
	assert_int_equal(tm_spawn(&run[2], "spinner", spinner, NULL, TM_SPAWN_OPTS(.type = TM_GAME_LOGIC)), 0);
	/* Ended tasks are not joined before the sample: a joined task's record
	 * may be reclaimed by the next spawn. */
	tm_task *ended[5];
	assert_int_equal(tm_spawn(&ended[0], "fails", returns, (void *)(intptr_t)3, TM_SPAWN_OPTS(.type = TM_DATABASE)),
	                 0);
	assert_int_equal(tm_spawn(&ended[1], "panics", panics, NULL, TM_SPAWN_OPTS(.type = TM_DATABASE)), 0);
	for (int i = 2; i < 5; i++)
		assert_int_equal(tm_spawn(&ended[i], "quick", returns, NULL, TM_SPAWN_OPTS(.type = TM_BACKGROUND)), 0);
	struct tm_stats now;
	uint64_t until = mono_ns() + 5000 * 1000000ull;
	do
		msleep(5);
	while (tm_get_stats(&now) == 0 && now.total_completed + now.total_failed + now.total_panicked < 5 &&
	       mono_ns() < until);
	msleep(50);   /* every running task has started */

	struct tt_source *s;
	char err[256];
	assert_int_equal(tt_source_open_shm(&s, TT_SOURCE_OPTS(0), err, sizeof(err)), 0);
	assert_int_equal(tt_source_kind(s), TT_SRC_STANDALONE);
	struct tt_model *a, *b;
	assert_int_equal(tt_source_fetch(s, 100, &a), 0);
	assert_false(a->kernel_figures);
	assert_string_equal(a->kernel_off_reason, "standalone mode: kernel figures off");
	assert_non_null(strstr(a->status, "standalone:"));
	const struct tt_workload *w = own_workload(a);
	assert_non_null(w);
	assert_true(w->alive);
	struct tm_stats stats;
	assert_int_equal(tm_get_stats(&stats), 0);
	assert_int_equal(w->reg.c[TM_C_SPAWNED], stats.total_spawned);
	assert_int_equal(w->reg.c[TM_C_FAILED], stats.total_failed);
	assert_int_equal(w->reg.c[TM_C_PANICKED], stats.total_panicked);
	assert_int_equal(w->reg.c[TM_C_RUNNING], 3);
	const struct tt_type *net = tt_workload_find_type(w, TM_NETWORK);
	assert_non_null(net);
	assert_string_equal(net->name.s, "network");
	assert_int_equal(net->reg.c[TM_C_RUNNING], 2);
	assert_non_null(net->lib_latency.buckets);   /* the whole histogram, from shared memory */
	assert_int_equal(net->lib_latency.count, 2);
	assert_true(a->header_latency.count >= 8);
	assert_non_null(a->header_latency.buckets);
	const struct tt_task *f = task_named(a, "fails"), *p = task_named(a, "panics"), *sp = task_named(a, "spinner");
	assert_non_null(f);
	assert_int_equal(f->state, TT_ST_FAILED);
	assert_int_equal(f->rc, 3);
	assert_true(f->finished);
	assert_string_equal(f->type_name.s, "database");
	assert_non_null(p);
	assert_int_equal(p->state, TT_ST_PANICKED);
	assert_non_null(sp);
	assert_int_equal(sp->state, TT_ST_RUNNING);
	assert_true(sp->tid > 0);
	assert_true(sp->proc.valid);   /* schedstat of its thread */
	assert_int_equal(sp->pct_basis, TT_PCT_NONE);   /* first sample */

	msleep(300);
	assert_int_equal(tt_source_fetch(s, 100, &b), 0);
	assert_true(b->interval_valid);
	sp = task_named(b, "spinner");
	const struct tt_task *sl = task_named(b, "sleeper_a");
	assert_non_null(sp);
	assert_non_null(sl);
	assert_int_equal(sp->pct_basis, TT_PCT_INTERVAL);
	assert_int_equal(sl->pct_basis, TT_PCT_INTERVAL);
	print_message("spinner %.1f%% CPU, %.1f%% run queue; sleeper %.1f%% CPU\n", sp->cpu_pct, sp->runq_pct,
	              sl->cpu_pct);
	/* the spinner is busy (on a shared machine: busy or waiting for a CPU); the sleeper is not */
	assert_true(sp->cpu_pct + sp->runq_pct > 50.0);
	assert_true(sl->cpu_pct < 20.0);
	if (sp->cpu_pct >= 10.0)
		assert_true(sp->proc.switches_known);   /* busy: its switch counts were read */
	w = own_workload(b);
	assert_true(w->rates_valid);
	assert_true(w->proc_known);
	assert_true(w->cpu_pct > 10.0);
	const struct tt_type *game = tt_workload_find_type(w, TM_GAME_LOGIC);
	assert_non_null(game);
	assert_true(game->cpu_pct > 10.0);
	tt_model_free(a);
	tt_model_free(b);
	tt_source_close(s);

	for (int i = 0; i < 5; i++)
		assert_int_equal(tm_join(ended[i], 5000, &st, &rc), 0);
	atomic_store(&g_stop, 1);
	for (int i = 0; i < 3; i++) {
		tm_cancel(run[i]);
		assert_int_equal(tm_join(run[i], 5000, &st, &rc), 0);
	}
}

/* Without a collector the automatic choice is standalone, and says why. */
static void test_auto_without_collector(void **state)
{
	(void)state;
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/absent.sock", g_dir);
	struct tt_source *s;
	assert_int_equal(tt_source_open_auto(&s, TT_SOURCE_OPTS(.socket_path = path), err, sizeof(err)), 0);
	assert_int_equal(tt_source_kind(s), TT_SRC_STANDALONE);
	struct tt_model *m;
	assert_int_equal(tt_source_fetch(s, 100, &m), 0);
	char want[256];
	snprintf(want, sizeof(want), "no collector at %s: kernel figures off", path);
	assert_string_equal(m->kernel_off_reason, want);
	assert_non_null(own_workload(m));
	tt_model_free(m);
	tt_source_close(s);
	/* a path too long for a Unix socket is refused at open */
	char longpath[200];
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	longpath[0] = '/';
	assert_int_equal(tt_source_open_socket(&s, TT_SOURCE_OPTS(.socket_path = longpath), err, sizeof(err)),
	                 -ENAMETOOLONG);
	assert_non_null(strstr(err, "too long"));
}

/* A private directory with this process's segment, a workload's left by a
 * kill, and a forged one: live, departed (figures, no tasks), malformed. */
static pid_t spawn_with(char *const argv[], int in_fd, char *const envp[]);
static void sibling(char *out, size_t len, const char *rel);

static void test_standalone_departed_and_forged(void **state)
{
	(void)state;
	char dir[64], path[160], seg[64], wl[PATH_MAX + 32], env[160], err[256];
	snprintf(dir, sizeof(dir), "/dev/shm/tt_dep_XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* ours */
	snprintf(seg, sizeof(seg), "/dev/shm/taskmon.%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/taskmon.%d", dir, (int)getpid());
	assert_int_equal(link(seg, path), 0);
	/* forged: the right name, garbage inside */
	snprintf(path, sizeof(path), "%s/taskmon.%d", dir, 2);
	FILE *f = fopen(path, "w");
	for (int i = 0; i < 4096; i++)
		fputc((i * 7919) & 0xff, f);
	fclose(f);
	/* a workload killed before it could remove its segment */
	sibling(wl, sizeof(wl), "integration/workload");
	snprintf(env, sizeof(env), "TASKMON_SOCKET=%s/none.sock", g_dir);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	char *argv[] = { wl, "--wait", "network=1", NULL }, *envp[] = { env, NULL };
	pid_t w = spawn_with(argv, p[0], envp);
	close(p[0]);
	snprintf(seg, sizeof(seg), "/dev/shm/taskmon.%d", (int)w);
	for (int i = 0; i < 500 && access(seg, F_OK) != 0; i++)
		msleep(10);
	snprintf(path, sizeof(path), "%s/taskmon.%d", dir, (int)w);
	assert_int_equal(link(seg, path), 0);
	kill(w, SIGKILL);
	waitpid(w, NULL, 0);
	close(p[1]);

	struct tt_source *s;
	assert_int_equal(tt_source_open_shm(&s, TT_SOURCE_OPTS(.shm_dir = dir), err, sizeof(err)), 0);
	struct tt_model *m;
	assert_int_equal(tt_source_fetch(s, 0, &m), 0);
	assert_int_equal(m->nworkloads, 2);
	assert_true(m->workloads[0].alive);   /* live ones first */
	assert_int_equal(m->workloads[0].pid, getpid());
	const struct tt_workload *gone = tt_model_find_workload(m, w);
	assert_non_null(gone);
	assert_false(gone->alive);
	assert_string_equal(gone->comm.s, "workload");
	for (size_t i = 0; i < m->ntasks; i++)
		assert_int_not_equal(m->tasks[i].pid, w);
	assert_int_equal(m->workloads_live, 1);
	assert_int_equal(m->workloads_gone, 1);
	assert_non_null(strstr(m->status, "standalone: 1 live workload from"));
	assert_non_null(strstr(m->status, "1 malformed"));
	tt_model_free(m);
	/* the departed one is not read again: the same figures come from memory */
	assert_int_equal(tt_source_fetch(s, 0, &m), 0);
	assert_non_null(tt_model_find_workload(m, w));
	tt_model_free(m);
	tt_source_close(s);

	tm_shm_remove_stale(w);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

/* ---- live: a scripted fake collector -------------------------------------- */

enum fake_mode { F_FIXTURE_A, F_FIXTURE_B, F_ERROR, F_GARBAGE, F_HUGE, F_MALFORMED, F_SLOW, F_CLOSE };

struct fake {
	char path[128];
	int lfd;
	pthread_t th;
	atomic_int mode;
	atomic_int stop;
	atomic_int requests;
	char *fix_a, *fix_b;
	size_t len_a, len_b;
};

static bool write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		c += w;
		n -= (size_t)w;
	}
	return true;
}

static bool read_all(int fd, void *p, size_t n)
{
	char *c = p;
	while (n) {
		ssize_t r = recv(fd, c, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		c += r;
		n -= (size_t)r;
	}
	return true;
}

static bool reply(int fd, uint16_t type, int32_t status, const void *body, uint32_t len)
{
	struct tm_wire_hdr h = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = type, .len = len,
	                         .status = status };
	return write_all(fd, &h, sizeof(h)) && (!len || write_all(fd, body, len));
}

/* Waits for a request; false when the fake is stopping (it closes the
 * connection then, as a collector that exits does). */
static bool request_ready(struct fake *f, int fd)
{
	while (!atomic_load(&f->stop)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 20) == 1)
			return true;
	}
	return false;
}

/* One connection: requests until the client closes or the mode ends it. */
static void serve(struct fake *f, int fd)
{
	for (;;) {
		struct tm_wire_hdr h;
		char payload[64];
		if (!request_ready(f, fd) || !read_all(fd, &h, sizeof(h)))
			return;
		if (h.magic != TM_WIRE_MAGIC || h.type != TM_WIRE_SNAPSHOT || h.len != 8 || !read_all(fd, payload, 8))
			return;
		atomic_fetch_add(&f->requests, 1);
		switch ((enum fake_mode)atomic_load(&f->mode)) {
		case F_FIXTURE_A:
			if (!reply(fd, TM_WIRE_SNAPSHOT | TM_WIRE_REPLY, 0, f->fix_a, (uint32_t)f->len_a))
				return;
			break;
		case F_FIXTURE_B:
			if (!reply(fd, TM_WIRE_SNAPSHOT | TM_WIRE_REPLY, 0, f->fix_b, (uint32_t)f->len_b))
				return;
			break;
		case F_ERROR:
			reply(fd, TM_WIRE_ERROR, -EACCES, "not allowed\x1b[2J", 15);
			return;
		case F_GARBAGE:
			write_all(fd, "0123456789abcdef", 16);
			return;
		case F_HUGE: {
			struct tm_wire_hdr big = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION,
			                           .type = TM_WIRE_SNAPSHOT | TM_WIRE_REPLY, .len = 1u << 30 };
			write_all(fd, &big, sizeof(big));
			return;
		}
		case F_MALFORMED:
			if (!reply(fd, TM_WIRE_SNAPSHOT | TM_WIRE_REPLY, 0, "{\"version\":1,\"tasks\":[", 22))
				return;
			break;
		case F_SLOW:
			msleep(300);
			if (!reply(fd, TM_WIRE_SNAPSHOT | TM_WIRE_REPLY, 0, f->fix_a, (uint32_t)f->len_a))
				return;
			break;
		case F_CLOSE:
			return;
		}
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	while (!atomic_load(&f->stop)) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };
		if (poll(&p, 1, 20) != 1)
			continue;
		int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(f, fd);
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *f)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	assert_true(strlen(f->path) < sizeof(a.sun_path));
	memcpy(a.sun_path, f->path, strlen(f->path) + 1);
	unlink(f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	atomic_store(&f->stop, 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, 1);
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->path);
}

static void expect_failure(struct tt_source *s, enum fake_mode mode, struct fake *f, const char *words)
{
	atomic_store(&f->mode, mode);
	struct tt_model *m = NULL;
	/* earlier failures may still hold the reconnect back: retry until this one shows */
	uint64_t end = mono_ns() + 5000 * 1000000ull;
	int rc;
	do {
		rc = tt_source_fetch(s, 200, &m);
		assert_null(m);
		if (rc == -EAGAIN && strstr(tt_source_status(s), words))
			break;
		msleep(20);
	} while (mono_ns() < end);
	if (!strstr(tt_source_status(s), words))
		fail_msg("mode %d: status '%s' lacks '%s'", mode, tt_source_status(s), words);
	assert_int_equal(rc, -EAGAIN);
	assert_int_equal(tt_source_health(s), TT_HEALTH_STALE);
}

static void test_live_fake_collector(void **state)
{
	(void)state;
	static struct fake f;
	snprintf(f.path, sizeof(f.path), "%s/fake.sock", g_dir);
	f.fix_a = tt_fixture_read("live_a.json", &f.len_a);
	f.fix_b = tt_fixture_read("live_b.json", &f.len_b);
	assert_non_null(f.fix_a);
	assert_non_null(f.fix_b);
	struct tt_source *s;
	char err[256];
	assert_int_equal(tt_source_open_socket(&s, TT_SOURCE_OPTS(.socket_path = f.path, .no_proc = true), err,
	                                       sizeof(err)),
	                 0);
	struct tt_model *m = NULL;
	/* nothing listens yet */
	assert_int_equal(tt_source_fetch(s, 100, &m), -EAGAIN);
	assert_non_null(strstr(tt_source_status(s), "no collector at"));
	assert_int_equal(tt_source_health(s), TT_HEALTH_NONE);
	fake_start(&f);
	atomic_store(&f.mode, F_FIXTURE_A);
	assert_int_equal(fetch_until(s, 0, 5000, &m), 0);
	assert_int_equal(m->source, TT_SRC_LIVE);
	assert_true(m->kernel_figures);
	assert_int_equal(m->health, TT_HEALTH_OK);
	assert_non_null(strstr(m->status, "live from"));
	assert_int_equal(m->seq, 1);
	assert_int_equal(m->ntasks, 32);
	/* the crash log named by the fixture's state directory was looked for */
	assert_true(m->crashes_source[0] != '\0');
	tt_model_free(m);
	atomic_store(&f.mode, F_FIXTURE_B);
	assert_int_equal(fetch_until(s, 0, 10000, &m), 0);
	assert_true(m->interval_valid);   /* derived against the first */
	assert_true(m->spawned_per_s > 0);
	assert_int_equal(atomic_load(&f.requests), 2);   /* one connection, two requests */
	tt_model_free(m);

	expect_failure(s, F_ERROR, &f, "refused the snapshot: not allowed?[2J (Permission denied)");
	expect_failure(s, F_GARBAGE, &f, "not a taskmon collector reply");
	expect_failure(s, F_HUGE, &f, "a snapshot of an unlikely size");
	expect_failure(s, F_MALFORMED, &f, "malformed snapshot: invalid JSON at byte 22");
	expect_failure(s, F_CLOSE, &f, "it closed the connection");

	/* a slow reply: the first fetch gives up waiting, the next one takes it */
	atomic_store(&f.mode, F_SLOW);
	int rc;
	uint64_t end = mono_ns() + 5000 * 1000000ull;
	while ((rc = tt_source_fetch(s, 50, &m)) == -EAGAIN && !strstr(tt_source_status(s), "waiting") &&
	       mono_ns() < end)
		msleep(20);
	assert_int_equal(rc, -EAGAIN);
	assert_non_null(strstr(tt_source_status(s), "waiting for the collector"));
	int before = atomic_load(&f.requests);
	msleep(400);
	assert_int_equal(fetch_until(s, 0, 10000, &m), 0);
	assert_int_equal(atomic_load(&f.requests), before);   /* not asked twice */
	tt_model_free(m);

	/* the collector goes away: the last good figures stay stale, then it comes back */
	fake_stop(&f);
	assert_int_equal(tt_source_fetch(s, 100, &m), -EAGAIN);
	assert_non_null(strstr(tt_source_status(s), "gone"));
	assert_non_null(strstr(tt_source_status(s), "reconnecting"));
	fake_start(&f);
	atomic_store(&f.mode, F_FIXTURE_B);
	assert_int_equal(fetch_until(s, 0, 5000, &m), 0);
	assert_non_null(strstr(m->status, "live from"));
	tt_model_free(m);
	tt_source_close(s);
	fake_stop(&f);
	free(f.fix_a);
	free(f.fix_b);
}

/* ---- live: a real collector (root) --------------------------------------- */

static void sibling(char *out, size_t len, const char *rel)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	snprintf(out, len, "%s/%s", dirname(self), rel);
}

/* posix_spawn, not fork: no fork handlers run in a child of this
 * multithreaded process (TSan reports the library's as races there). */
static pid_t spawn_with(char *const argv[], int in_fd, char *const envp[])
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(rc, 0);
	return pid;
}

extern char **environ;

static pid_t start_taskmond(const char *sock)
{
	char path[PATH_MAX + 32];
	sibling(path, sizeof(path), "../taskmond");
	char *argv[] = { path, "--socket", (char *)sock, "--state-dir", g_dir, "--foreground", "--metrics", "off", NULL };
	return spawn_with(argv, -1, environ);
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	int st;
	for (int i = 0; i < 3000 && waitpid(pid, &st, WNOHANG) == 0; i++)
		msleep(10);
	if (waitpid(pid, &st, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
}

/* A workload registered with that collector: it spawns its tasks on a first
 * line on its stdin, and ends at the end of it. */
static pid_t start_workload(const char *sock, int *hold)
{
	char path[PATH_MAX + 32], env[160];
	sibling(path, sizeof(path), "integration/workload");
	int p[2];
	/* close-on-exec: a collector started later must not hold the workload's stdin open */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	snprintf(env, sizeof(env), "TASKMON_SOCKET=%s", sock);
	char *argv[] = { path, "--wait", "--hold", "network=20", "tasktop_probe=5", NULL }, *envp[] = { env, NULL };
	pid_t pid = spawn_with(argv, p[0], envp);
	close(p[0]);
	*hold = p[1];
	return pid;
}

static int park(void *arg);
static uint64_t cpu_ns(void);

/* Raw request and reply, no parsing: the baseline of a live sample. */
static size_t raw_snapshot(const char *sock)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct {
		struct tm_wire_hdr h;
		struct tm_wire_snapshot_req r;
	} req = { .h = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = TM_WIRE_SNAPSHOT, .len = 8 } };
	assert_true(write_all(fd, &req, sizeof(req)));
	struct tm_wire_hdr h;
	assert_true(read_all(fd, &h, sizeof(h)));
	char *body = malloc(h.len);
	assert_true(read_all(fd, body, h.len));
	free(body);
	close(fd);
	return h.len;
}

/* 1000 running tasks of this process, followed by the collector: the CPU of
 * one live sample (request, parse, /proc for the running tasks, derivation)
 * beside the request and reply alone. */
static void live_gather_cost(struct tt_source *s, const char *sock)
{
	enum { N = 1000, ROUNDS = 5 };
	static tm_task *t[N];
	atomic_store(&g_stop, 0);
	int made = 0;
	while (made < N && tm_spawn(&t[made], "parked", park, NULL,
	                            TM_SPAWN_OPTS(.type = TM_BACKGROUND, .stack_size = 65536)) == 0)
		made++;
	struct tt_model *m = NULL;
	uint64_t end = mono_ns() + 20000 * 1000000ull;
	size_t running = 0;
	while (mono_ns() < end) {
		if (tt_source_fetch(s, 1000, &m) == 0) {
			running = 0;
			for (size_t i = 0; i < m->ntasks; i++)
				running += m->tasks[i].pid == getpid() && !m->tasks[i].finished;
			tt_model_free(m);
			if (running >= (size_t)made)
				break;
		}
		msleep(200);
	}
	/* the snapshot holds 1000 tasks of every workload the collector follows:
	 * other workloads on the machine may take part of them */
	if (made == N && running >= N / 2) {
		uint64_t best = UINT64_MAX, best_base = UINT64_MAX;
		size_t bytes = 0, ntasks = 0, valid = 0;
		for (int r = 0; r < ROUNDS; r++) {
			msleep(100);
			uint64_t c0 = cpu_ns();
			assert_int_equal(tt_source_fetch(s, 2000, &m), 0);
			uint64_t c1 = cpu_ns();
			bytes = raw_snapshot(sock);
			uint64_t c2 = cpu_ns();
			ntasks = m->ntasks;
			valid = 0;
			for (size_t i = 0; i < m->ntasks; i++)
				valid += m->tasks[i].proc.valid;
			tt_model_free(m);
			best = c1 - c0 < best ? c1 - c0 : best;
			best_base = c2 - c1 < best_base ? c2 - c1 : best_base;
		}
		print_message("live sample of %zu tasks (%zu running read from /proc, %zu bytes): %.2f ms CPU = %.2f%% of a "
		              "core at one a second; request and reply alone %.2f ms (ratio %.2f)\n",
		              ntasks, valid, bytes, best / 1e6, best / 1e7, best_base / 1e6, (double)best / (double)best_base);
		assert_true(valid >= N / 2);
	} else {
		print_message("live cost not measured: %d tasks spawned, %zu seen running by the collector\n", made, running);
	}
	atomic_store(&g_stop, 1);
	for (int i = 0; i < made; i++) {
		tm_cancel(t[i]);
		if (tm_join(t[i], 5000, NULL, NULL) != 0)
			tm_release(t[i]);
	}
}

/* The workload ends at the end of its stdin; the collector on SIGTERM. */
static void stop_children(void)
{
	if (g_hold >= 0)
		close(g_hold);
	g_hold = -1;
	if (g_workload)
		stop(g_workload);
	g_workload = 0;
	if (g_collector)
		stop(g_collector);
	g_collector = 0;
}

static bool has_kernel_figures(const struct tt_model *m, pid_t pid)
{
	const struct tt_workload *w = tt_model_find_workload(m, pid);
	return w && w->k.present && w->k.tasks_ended >= 25;
}

static void test_live_real_collector(void **state)
{
	(void)state;
	char tmd[PATH_MAX + 32], sock[128];
	sibling(tmd, sizeof(tmd), "../taskmond");
	if (geteuid() != 0 || access(tmd, X_OK) != 0) {
		print_message("skipped: needs root and %s\n", tmd);
		skip();
	}
	snprintf(sock, sizeof(sock), "%s/taskmond.sock", g_dir);
	g_collector = start_taskmond(sock);
	struct tt_source *s;
	char err[256];
	assert_int_equal(tt_source_open_socket(&s, TT_SOURCE_OPTS(.socket_path = sock), err, sizeof(err)), 0);
	struct tt_model *m = NULL;
	assert_int_equal(fetch_until(s, 0, 30000, &m), 0);
	tt_model_free(m);
	pid_t w = g_workload = start_workload(sock, &g_hold);
	/* its tasks start once the collector follows it: registration does not
	 * wait for the probes forever, and a loaded machine can be slower */
	uint64_t listed_by = mono_ns() + 30000 * 1000000ull;
	bool listed = false;
	while (!listed && mono_ns() < listed_by) {
		if (tt_source_fetch(s, 500, &m) == 0) {
			listed = tt_model_find_workload(m, w) != NULL;
			tt_model_free(m);
		}
		if (!listed)
			msleep(100);
	}
	assert_true(listed);
	msleep(500);
	assert_int_equal(write(g_hold, "\n", 1), 1);
	uint64_t end = mono_ns() + 30000 * 1000000ull;
	bool seen = false;
	char last[256] = "no sample";
	while (!seen && mono_ns() < end) {
		if (tt_source_fetch(s, 500, &m) == 0) {
			seen = has_kernel_figures(m, w);
			const struct tt_workload *x = tt_model_find_workload(m, w);
			snprintf(last, sizeof(last), "workload %s, kernel figures %s, %llu tasks ended, %llu succeeded",
			         x ? "listed" : "not listed", x && x->k.present ? "present" : "absent",
			         x ? (unsigned long long)x->k.tasks_ended : 0ull,
			         x ? (unsigned long long)x->reg.c[TM_C_SUCCEEDED] : 0ull);
			if (!seen)
				tt_model_free(m);
		}
		if (!seen)
			msleep(100);
	}
	if (!seen)
		fail_msg("the collector never showed the workload's kernel figures: %s", last);
	const struct tt_workload *wl = tt_model_find_workload(m, w);
	assert_string_equal(wl->comm.s, "workload");
	assert_int_equal(wl->reg.c[TM_C_SUCCEEDED], 25);
	const struct tt_type *probe = NULL;
	for (size_t i = 0; i < wl->ntypes; i++)
		if (strcmp(wl->types[i].name.s, "tasktop_probe") == 0)
			probe = &wl->types[i];
	assert_non_null(probe);
	assert_int_equal(probe->reg.c[TM_C_SPAWNED], 5);
	assert_int_equal(probe->k.tasks_ended, 5);
	assert_true(m->collector.cpu_known);   /* its /proc/<pid>/stat, read as root */
	assert_true(m->kernel_figures);
	tt_model_free(m);

	/* the collector goes away mid-session, and comes back */
	stop(g_collector);
	g_collector = 0;
	assert_int_equal(tt_source_fetch(s, 200, &m), -EAGAIN);
	assert_int_equal(tt_source_health(s), TT_HEALTH_STALE);
	assert_non_null(strstr(tt_source_status(s), "reconnecting"));
	g_collector = start_taskmond(sock);
	assert_int_equal(fetch_until(s, 0, 30000, &m), 0);
	assert_non_null(strstr(m->status, "live from"));
	tt_model_free(m);
	live_gather_cost(s, sock);
	tt_source_close(s);
	stop_children();
}

/* ---- replay: a record directory written here ------------------------------ */

static uint64_t crash_time_ns(void)
{
	char *text = tt_fixture_read("crashes.jsonl", NULL);
	assert_non_null(text);
	json_t *j = json_loads(text, JSON_DISABLE_EOF_CHECK, NULL);
	assert_non_null(j);
	struct tm tm = { 0 };
	unsigned ms;
	assert_int_equal(sscanf(json_string_value(json_object_get(j, "time")), "%d-%d-%dT%d:%d:%d.%uZ", &tm.tm_year,
	                        &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms),
	                 7);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	json_decref(j);
	free(text);
	return (uint64_t)timegm(&tm) * 1000000000ull + ms * 1000000ull;
}

#define NREC 12

/* Twelve records a second apart, the crash between the fifth and sixth; the
 * first workload spawns 10 tasks and uses half a CPU each second, the
 * collector 1%. A line that does not parse and one in flight are added. */
static void write_records(const char *dir, uint64_t t0)
{
	json_t *base = NULL;
	char path[256];
	snprintf(path, sizeof(path), "%s/live_a.json", tt_fixture_dir());
	base = json_load_file(path, 0, NULL);
	assert_non_null(base);
	json_t *w0 = json_array_get(json_object_get(base, "workloads"), 0);
	uint64_t spawned0 = (uint64_t)json_integer_value(json_object_get(json_object_get(w0, "registry"), "spawned"));
	uint64_t now0 = (uint64_t)json_integer_value(json_object_get(base, "now_ns"));
	snprintf(path, sizeof(path), "%s/taskmon-20261126T131600Z.jsonl", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < NREC; i++) {
		json_t *r = json_deep_copy(base);
		json_t *w = json_array_get(json_object_get(r, "workloads"), 0);
		json_object_set_new(json_object_get(w, "registry"), "spawned", json_integer((json_int_t)(spawned0 + 10 * i)));
		json_object_set_new(r, "now_ns", json_integer((json_int_t)(now0 + (uint64_t)i * 1000000000ull)));
		json_object_set_new(r, "now_unix_ns", json_integer((json_int_t)(t0 + (uint64_t)i * 1000000000ull)));
		json_t *proc = json_pack("{s:O, s:s, s:i, s:i, s:I}", "pid", json_object_get(w, "pid"), "comm", "x",
		                         "rss_bytes", 4096, "threads", 3, "cpu_ns", (json_int_t)i * 500000000);
		json_object_set_new(r, "record",
		                    json_pack("{s:i, s:i, s:I, s:I, s:[o], s:{s:i, s:I}}", "version", 1, "seq", i,
		                              "interval_ns", (json_int_t)1000000000, "time_unix_ns",
		                              (json_int_t)(t0 + (uint64_t)i * 1000000000ull), "processes", proc,
		                              "collector", "rss_bytes", 8192, "cpu_ns", (json_int_t)i * 10000000));
		char *line = json_dumps(r, JSON_COMPACT);
		fprintf(f, "%s\n", line);
		if (i == 6)
			fprintf(f, "{\"not a record\": true\n");
		free(line);
		json_decref(r);
	}
	fprintf(f, "{\"version\":1,\"record\":{\"time_unix_ns\":1");   /* in flight: no newline */
	fclose(f);
	json_decref(base);
	char *crash = tt_fixture_read("crashes.jsonl", NULL);
	snprintf(path, sizeof(path), "%s/crashes.jsonl", dir);
	f = fopen(path, "w");
	fputs(crash, f);
	fclose(f);
	free(crash);
}

static void test_replay(void **state)
{
	(void)state;
	char dir[128], err[256];
	snprintf(dir, sizeof(dir), "%s/records", g_dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	uint64_t crash = crash_time_ns(), t0 = crash - 4500000000ull;   /* records 0-4 before the crash */
	write_records(dir, t0);
	struct tt_source *s;
	assert_int_equal(tt_source_open_replay(&s, TT_SOURCE_OPTS(.replay_dir = dir), err, sizeof(err)), 0);
	assert_int_equal(tt_source_kind(s), TT_SRC_REPLAY);
	struct tt_replay_pos pos;
	assert_true(tt_source_replay_pos(s, &pos));
	assert_int_equal(pos.count, NREC);
	assert_int_equal(pos.index, 0);
	assert_int_equal(pos.first_unix_ns, t0);
	assert_true(pos.skipped >= 1);
	struct tt_model *m;
	assert_int_equal(tt_source_fetch(s, 0, &m), 0);
	assert_int_equal(m->source, TT_SRC_REPLAY);
	assert_false(m->interval_valid);
	assert_int_equal(m->replay.index, 0);
	assert_int_equal(m->crashes_known, true);
	assert_int_equal(m->ncrashes, 0);
	assert_non_null(strstr(m->status, "record 1 of 12"));
	tt_model_free(m);

	/* a jump: derived against the record before it all the same */
	assert_int_equal(tt_source_step(s, 3), 3);
	assert_int_equal(tt_source_fetch(s, 0, &m), 0);
	assert_true(m->interval_valid);
	assert_int_equal(m->interval_ns, 1000000000ull);
	const struct tt_workload *w = &m->workloads[0];
	assert_true(w->rates_valid);
	assert_true(fabs(w->spawned_per_s - 10.0) < 1e-9);
	assert_true(w->proc_known);
	assert_true(fabs(w->cpu_pct - 50.0) < 1e-9);
	assert_true(m->collector.cpu_known);
	assert_true(fabs(m->collector.cpu_pct - 1.0) < 1e-9);
	assert_int_equal(w->types[0].ntrend, 4);   /* the chain before the jump */
	assert_int_equal(m->replay.record_seq, 3);
	tt_model_free(m);

	/* after the crash, by time; then a step back keeps its rates */
	assert_int_equal(tt_source_seek_time(s, crash + 2000000000ull), 6);
	assert_int_equal(tt_source_fetch(s, 0, &m), 0);
	assert_int_equal(m->ncrashes, 1);
	assert_string_equal(m->crashes[0].task_name.s, "dice_roll");
	tt_model_free(m);
	assert_int_equal(tt_source_step(s, -1), 5);
	assert_int_equal(tt_source_fetch(s, 0, &m), 0);
	assert_true(m->workloads[0].rates_valid);
	assert_true(fabs(m->workloads[0].spawned_per_s - 10.0) < 1e-9);
	tt_model_free(m);
	/* bounds */
	assert_int_equal(tt_source_seek(s, 1000), NREC - 1);
	assert_int_equal(tt_source_step(s, -100), 0);
	assert_int_equal(tt_source_seek_time(s, 1), 0);
	assert_int_equal(tt_source_seek_time(s, UINT64_MAX), NREC - 1);
	tt_source_close(s);

	/* an empty directory, a missing one */
	char empty[160];
	snprintf(empty, sizeof(empty), "%s/empty", g_dir);
	assert_int_equal(mkdir(empty, 0700), 0);
	assert_int_equal(tt_source_open_replay(&s, TT_SOURCE_OPTS(.replay_dir = empty), err, sizeof(err)), 0);
	assert_int_equal(tt_source_fetch(s, 0, &m), -ENOENT);
	assert_non_null(strstr(tt_source_status(s), "no records"));
	tt_source_close(s);
	rmdir(empty);
	snprintf(empty, sizeof(empty), "%s/missing", g_dir);
	assert_true(tt_source_open_replay(&s, TT_SOURCE_OPTS(.replay_dir = empty), err, sizeof(err)) < 0);
	assert_true(strlen(err) > 0);
	/* not a live source: no replay controls */
	assert_int_equal(tt_source_open_shm(&s, TT_SOURCE_OPTS(0), err, sizeof(err)), 0);
	assert_int_equal(tt_source_step(s, 1), -ENOTSUP);
	assert_false(tt_source_replay_pos(s, &pos));
	tt_source_close(s);
}

/* ---- cost of gathering 1000 tasks once a second --------------------------- */

static int park(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_stop) && tm_sleep_ms(50) == 0)
		;
	return 0;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 1000 running tasks of this process, gathered as the standalone source does
 * each refresh (registry, /proc for every running task, derivation): CPU per
 * sample beside the CPU of reading the same 1000 schedstat files alone. */
static void test_gather_cost_1000_tasks(void **state)
{
	(void)state;
	enum { N = 1000, ROUNDS = 5 };
	static tm_task *t[N];
	atomic_store(&g_stop, 0);
	int made = 0;
	for (; made < N; made++)
		if (tm_spawn(&t[made], "parked", park, NULL, TM_SPAWN_OPTS(.type = TM_BACKGROUND, .stack_size = 65536)) <
		    0)
			break;
	if (made < N) {
		print_message("skipped: only %d of %d tasks could be spawned\n", made, N);
	} else {
		msleep(200);
		/* this process's segment alone, through a hard link in a directory of
		 * its own: other workloads on the machine are not part of the figure */
		char dir[64], seg[128], link_path[160];
		snprintf(dir, sizeof(dir), "/dev/shm/tt_gather_XXXXXX");
		assert_non_null(mkdtemp(dir));
		snprintf(seg, sizeof(seg), "/dev/shm/taskmon.%d", (int)getpid());
		snprintf(link_path, sizeof(link_path), "%s/taskmon.%d", dir, (int)getpid());
		assert_int_equal(link(seg, link_path), 0);
		struct tt_source *s;
		char err[256];
		assert_int_equal(tt_source_open_shm(&s, TT_SOURCE_OPTS(.shm_dir = dir), err, sizeof(err)), 0);
		struct tt_model *m;
		assert_int_equal(tt_source_fetch(s, 0, &m), 0);
		tt_model_free(m);
		uint64_t best = UINT64_MAX, best_base = UINT64_MAX;
		for (int r = 0; r < ROUNDS; r++) {
			uint64_t c0 = cpu_ns();
			assert_int_equal(tt_source_fetch(s, 0, &m), 0);
			uint64_t c1 = cpu_ns();
			/* baseline: the schedstat reads alone */
			uint64_t a, b, c;
			size_t read = 0;
			for (size_t i = 0; i < m->ntasks; i++)
				if (!m->tasks[i].finished && m->tasks[i].tid && m->tasks[i].pid == getpid()) {
					char p[96];
					snprintf(p, sizeof(p), "/proc/%d/task/%u/schedstat", (int)getpid(), m->tasks[i].tid);
					FILE *f = fopen(p, "r");
					if (f) {
						read += fscanf(f, "%lu %lu %lu", &a, &b, &c) == 3;
						fclose(f);
					}
				}
			uint64_t c2 = cpu_ns();
			const struct tt_workload *w = own_workload(m);
			assert_non_null(w);
			assert_int_equal(m->nworkloads, 1);
			assert_true(w->reg.c[TM_C_RUNNING] >= N);
			assert_true(read >= N);
			best = c1 - c0 < best ? c1 - c0 : best;
			best_base = c2 - c1 < best_base ? c2 - c1 : best_base;
			tt_model_free(m);
			msleep(100);
		}
		print_message("gathering %d running tasks (standalone, /proc included): %.2f ms CPU per sample = %.2f%% "
		              "of a core at one sample a second; the schedstat reads alone %.2f ms (ratio %.2f)\n",
		              N, best / 1e6, best / 1e7, best_base / 1e6, (double)best / (double)best_base);
		tt_source_close(s);
		unlink(link_path);
		rmdir(dir);
	}
	atomic_store(&g_stop, 1);
	for (int i = 0; i < made; i++) {
		tm_cancel(t[i]);
		if (tm_join(t[i], 5000, NULL, NULL) != 0)
			tm_release(t[i]);
	}
}

static int setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/tt_sources_XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	/* never the machine's collector: the library registers with one here, which is not there */
	char sock[128];
	snprintf(sock, sizeof(sock), "%s/none.sock", g_dir);
	setenv("TASKMON_SOCKET", sock, 1);
	signal(SIGPIPE, SIG_IGN);
	return tm_init(NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	stop_children();
	tm_shutdown();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_standalone_own_registry),
		cmocka_unit_test(test_auto_without_collector),
		cmocka_unit_test(test_standalone_departed_and_forged),
		cmocka_unit_test(test_live_fake_collector),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_gather_cost_1000_tasks),
		cmocka_unit_test(test_live_real_collector),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
