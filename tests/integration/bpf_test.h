/* What the privileged tests (tests/test_bpf_*.c) share: the skip rule, an
 * event store fed by the loader, and the crasher workload. */
#ifndef TM_BPF_TEST_H
#define TM_BPF_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "taskmon_events.h"

extern char **environ;

/* Why these tests cannot run here, or NULL. */
static inline const char *bpf_test_skip_reason(void)
{
	if (geteuid() != 0)
		return "needs root";
	return NULL;
}

#define BPF_TEST_REQUIRE()                                                        \
	do {                                                                      \
		const char *why_ = bpf_test_skip_reason();                        \
		if (why_) {                                                       \
			print_message("skipped: %s\n", why_);                     \
			skip();                                                   \
		}                                                                 \
	} while (0)

/* Points TASKMON_CONFIG at a file setting kernel_trace_rate (tasks a second
 * per spawning thread whose probes fire; "0" = every task) for the next
 * tm_init. Tests that count kernel records per task over big bursts need
 * "0": the default budget lets bursts of 200 through, then 2,000 a second. */
static inline int bt_use_trace_rate(const char *rate)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/taskmon-bpf-test-%d.ini", (int)getpid());
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "[task_management]\nkernel_trace_rate = %s\n", rate);
	if (fclose(f) != 0)
		return -errno;
	return setenv("TASKMON_CONFIG", path, 1) == 0 ? 0 : -errno;
}

static inline void bt_drop_trace_rate(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/taskmon-bpf-test-%d.ini", (int)getpid());
	unlink(path);
	unsetenv("TASKMON_CONFIG");
}

static inline uint64_t bt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Every event the loader delivers, copied, in arrival order. */
#define BT_MAX_EVENTS 8192
struct bt_event {
	size_t len;
	union {
		struct tm_ev_hdr h;
		struct tm_ev_task_start start;
		struct tm_ev_task_end end;
		struct tm_ev_task_restart restart;
		struct tm_ev_crash crash;
		struct tm_ev_kill kill;
		struct tm_ev_exit exit;
	} u;
};
struct bt_store {
	size_t n;
	size_t dropped;          /* more than BT_MAX_EVENTS */
	struct bt_event ev[BT_MAX_EVENTS];
};

static inline int bt_store_event(void *ctx, const void *data, size_t len)
{
	struct bt_store *s = ctx;
	if (s->n == BT_MAX_EVENTS) {
		s->dropped++;
		return 0;
	}
	struct bt_event *e = &s->ev[s->n++];
	memset(e, 0, sizeof(*e));
	e->len = len < sizeof(e->u) ? len : sizeof(e->u);
	memcpy(&e->u, data, e->len);
	return 0;
}

/* The i-th event of that kind for that pid (0 = any pid), or NULL. */
static inline const struct bt_event *bt_find(const struct bt_store *s, unsigned kind, pid_t pid, uint64_t task_id)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct tm_ev_hdr *h = &s->ev[i].u.h;
		if (h->kind == kind && (!pid || h->pid == (uint32_t)pid) && (!task_id || h->task_id == task_id))
			return &s->ev[i];
	}
	return NULL;
}

/* Polls until `done` says so or the time is up; true when done. */
static inline bool bt_poll_until(struct tmd_loader *l, struct bt_store *s, unsigned timeout_ms,
                                 bool (*done)(const struct bt_store *, const void *), const void *arg)
{
	uint64_t end = bt_now_ns() + timeout_ms * 1000000ull;
	while (!done(s, arg)) {
		if (bt_now_ns() > end)
			return false;
		tmd_loader_poll(l, 20);
	}
	return true;
}

/* A file next to this test binary: <dir of the binary>/rel. */
static inline void bt_sibling(char *out, size_t len, const char *rel)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	snprintf(out, len, "%s/%s", dirname(self), rel);
}

/* ---- the crasher workload (tests/integration/crasher.c) ------------------- */
struct crasher {
	pid_t pid;
	int in;                  /* its stdin: a line starts the tasks */
	FILE *out;               /* its stdout */
	uintptr_t dice_roll;     /* address of the function that faults */
};

/* Starts `crasher mode` and waits for its "ready" line; 0 or negative errno. */
static inline int crasher_start(struct crasher *c, const char *mode)
{
	char path[PATH_MAX], line[128];
	int to[2], from[2];
	bt_sibling(path, sizeof(path), "integration/crasher");
	if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
		return -errno;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, to[0], 0);
	posix_spawn_file_actions_adddup2(&fa, from[1], 1);
	/* Let the signal do what it does by default, even under a sanitizer. */
	char *envp[256];
	size_t ne = 0;
	envp[ne++] = (char *)"ASAN_OPTIONS=handle_segv=0:handle_abort=0:detect_leaks=0";
	envp[ne++] = (char *)"TSAN_OPTIONS=handle_segv=0:handle_abort=0";
	for (char **e = environ; *e && ne < 255; e++)
		if (strncmp(*e, "ASAN_OPTIONS=", 13) && strncmp(*e, "TSAN_OPTIONS=", 13))
			envp[ne++] = *e;
	envp[ne] = NULL;
	char *argv[] = { path, (char *)mode, NULL };
	int err = posix_spawn(&c->pid, path, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(to[0]);
	close(from[1]);
	if (err) {
		close(to[1]);
		close(from[0]);
		return -err;
	}
	c->in = to[1];
	c->out = fdopen(from[0], "r");
	int pid;
	void *fn;
	if (!c->out || !fgets(line, sizeof(line), c->out) || sscanf(line, "ready %d %p", &pid, &fn) != 2)
		return -EPROTO;
	c->dice_roll = (uintptr_t)fn;
	return 0;
}

static inline void crasher_go(struct crasher *c)
{
	if (write(c->in, "go\n", 3) != 3)
		perror("crasher_go");
}

/* Waits for it to end; returns the wait status, -1 after the timeout (it is then killed). */
static inline int crasher_wait(struct crasher *c, unsigned timeout_ms)
{
	int st = -1;
	uint64_t end = bt_now_ns() + timeout_ms * 1000000ull;
	while (waitpid(c->pid, &st, WNOHANG) == 0) {
		if (bt_now_ns() > end) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &st, 0);
			st = -1;
			break;
		}
		usleep(2000);
	}
	close(c->in);
	if (c->out)
		fclose(c->out);
	c->in = -1;
	c->out = NULL;
	return st;
}

/* A bt_wait predicate: the process *(pid_t *)arg has an exit event. */
static inline bool bt_exited(const struct bt_store *s, const void *arg)
{
	return bt_find(s, TM_EV_EXIT, *(const pid_t *)arg, 0) != NULL;
}

#endif
