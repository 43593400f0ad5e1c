/* Crash, kill and exit events for a workload that dies: the crasher
 * (tests/integration/crasher.c, linked with libtaskmon.so) is watched the way
 * taskmond watches a workload, through its mappings. Needs root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/bpf_test.h"
#include "event_fmt.h"
#include "taskmon.h"
#include "taskmon_shm.h"

struct fixture {
	struct tmd_loader *l;
	struct bt_store *s;
	struct crasher c;
};

static const bool mode_raw_tp = true;

/* prestate: NULL, or &mode_raw_tp for the raw_tp twins. */
static int setup(void **state)
{
	bool raw = *state != NULL;
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || !(f->s = calloc(1, sizeof(*f->s))))
		return -1;
	f->c.pid = 0;
	f->c.in = -1;
	if (!bpf_test_skip_reason() &&
	    tmd_loader_open(&f->l, TMD_LOADER_OPTS(.force_raw_tp = raw), bt_store_event, f->s) < 0) {
		print_error("loader: %s\n", tmd_loader_error());
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->c.pid > 0) {
		if (f->c.in >= 0)
			crasher_wait(&f->c, 0);   /* kills it if it is still there */
		tm_shm_remove_stale(f->c.pid);
	}
	tmd_loader_close(f->l);
	free(f->s);
	free(f);
	return 0;
}

/* Starts the crasher in `mode`, watches it, lets it run to its end. */
static int run_crasher(struct fixture *f, const char *mode)
{
	assert_int_equal(crasher_start(&f->c, mode), 0);
	int n = tmd_loader_watch(f->l, f->c.pid);
	if (n < 1)
		print_error("watch: %s\n", n < 0 ? tmd_loader_error() : "no libtaskmon with probes in its mappings");
	assert_int_equal(n, 1);   /* libtaskmon.so; the executable has no probes of its own */
	crasher_go(&f->c);
	if (strcmp(mode, "wait") == 0) {
		usleep(200000);   /* its dice_roll task is up and sleeping */
		kill(f->c.pid, SIGKILL);
	}
	int st = crasher_wait(&f->c, 10000);
	assert_true(bt_poll_until(f->l, f->s, 5000, bt_exited, &f->c.pid));
	/* Threads that get to their exit after the one that reported the
	 * process's still report theirs. */
	for (int i = 0; i < 5; i++)
		tmd_loader_poll(f->l, 20);
	return st;
}

static void print_events(const struct bt_store *s)
{
	char line[1024];
	for (size_t i = 0; i < s->n; i++)
		if (tmd_event_format(&s->ev[i].u, s->ev[i].len, line, sizeof(line)) > 0)
			print_message("  %s\n", line);
}

/* The registry the dead workload left behind names the task. */
static void registry_task(pid_t pid, const char *name, struct tm_task_info *out)
{
	tm_shm_reader *r;
	struct tm_task_info t[16];
	assert_int_equal(tm_shm_open_pid(&r, pid), 0);
	assert_true(tm_shm_is_stale(r));
	int n = tm_shm_read_tasks(r, t, 16, false);
	tm_shm_close(r);
	for (int i = 0; i < n; i++) {
		if (strcmp(t[i].name, name) == 0) {
			*out = t[i];
			return;
		}
	}
	fail_msg("no task '%s' in the registry of %d", name, (int)pid);
}

/* The dice_roll task's start event: name and type as spawned. */
static const struct tm_ev_task_start *dice_roll_start(const struct fixture *f)
{
	for (size_t i = 0; i < f->s->n; i++) {
		const struct tm_ev_task_start *e = &f->s->ev[i].u.start;
		if (e->h.kind == TM_EV_TASK_START && e->h.pid == (uint32_t)f->c.pid && strcmp(e->name, "dice_roll") == 0)
			return e;
	}
	fail_msg("no start event for dice_roll");
	return NULL;
}

static void test_segv(void **state)
{
	BPF_TEST_REQUIRE();
	struct fixture *f = *state;
	int st = run_crasher(f, "segv");
	print_events(f->s);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);

	const struct tm_ev_task_start *start = dice_roll_start(f);
	assert_int_equal(start->type, TM_GAME_LOGIC);
	const struct bt_event *ev = bt_find(f->s, TM_EV_CRASH, f->c.pid, 0);
	assert_non_null(ev);
	const struct tm_ev_crash *c = &ev->u.crash;
	assert_int_equal(c->sig, SIGSEGV);
	assert_int_equal(c->code, SEGV_MAPERR);
	assert_int_equal(c->addr, 0);
	assert_int_equal(c->h.tid, start->h.tid);
	assert_int_equal(c->h.task_id, start->h.task_id);
	/* The faulting thread's own stack, innermost first: the store in dice_roll. */
	assert_true(c->flags & TM_EVF_STACK);
	assert_true(c->stack_sz >= 16);
	assert_true(c->stack[0] >= f->c.dice_roll && c->stack[0] < f->c.dice_roll + 256);
	assert_false(c->flags & TM_EVF_STACK_SCAN);   /* the walk through frame pointers was whole */

	struct tm_task_info info;
	registry_task(f->c.pid, "dice_roll", &info);
	assert_int_equal(info.id, c->h.task_id);
	assert_int_equal(info.tid, c->h.tid);
	assert_int_equal(info.type, TM_GAME_LOGIC);

	/* Its thread died inside the task: closed out with the totals so far. */
	ev = bt_find(f->s, TM_EV_TASK_END, f->c.pid, c->h.task_id);
	assert_non_null(ev);
	assert_true(ev->u.end.flags & TM_EVF_THREAD_EXIT);
	ev = bt_find(f->s, TM_EV_EXIT, f->c.pid, 0);
	assert_int_equal(ev->u.exit.sig, SIGSEGV);
	assert_string_equal(ev->u.exit.comm, "crasher");
	print_message("crash of dice_roll: tid %u task %llu signal %d code %d addr 0x%llx, %lld frames, top 0x%llx "
	              "= dice_roll+%llu\n", c->h.tid, (unsigned long long)c->h.task_id, c->sig, c->code,
	              (unsigned long long)c->addr, (long long)c->stack_sz / 8, (unsigned long long)c->stack[0],
	              (unsigned long long)(c->stack[0] - f->c.dice_roll));
}

static void test_abort(void **state)
{
	BPF_TEST_REQUIRE();
	struct fixture *f = *state;
	int st = run_crasher(f, "abort");
	print_events(f->s);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	const struct tm_ev_task_start *start = dice_roll_start(f);
	const struct bt_event *ev = bt_find(f->s, TM_EV_CRASH, f->c.pid, 0);
	assert_non_null(ev);
	const struct tm_ev_crash *c = &ev->u.crash;
	assert_int_equal(c->sig, SIGABRT);
	assert_int_equal(c->code, SI_TKILL);          /* raise() */
	assert_int_equal(c->sender_pid, f->c.pid);
	assert_int_equal(c->h.tid, start->h.tid);
	assert_int_equal(c->h.task_id, start->h.task_id);
	assert_true(c->flags & TM_EVF_STACK);
	assert_true(c->stack_sz >= 8);
	/* The frame-pointer walk ends in libc; the scan of the stack finds
	 * abort's return address into dice_roll, the function that called it
	 * (into its cold part, which gcc places apart, within the crasher's
	 * few KiB of code: test_bpf_crashlog checks the symbol). */
	assert_true(c->flags & TM_EVF_STACK_SCAN);
	size_t frames = (size_t)c->stack_sz / 8, caller = frames;
	assert_true(c->scan_from >= 1 && c->scan_from <= frames);
	for (size_t i = c->scan_from; i < frames && caller == frames; i++)
		if (c->stack[i] + 65536 > f->c.dice_roll && c->stack[i] < f->c.dice_roll + 65536)
			caller = i;
	assert_true(caller < frames);
	print_message("abort in dice_roll: %zu frames, %u from the frame-pointer walk, the crasher's code at frame %zu "
	              "(dice_roll%+lld)\n", frames, c->scan_from, caller,
	              (long long)(c->stack[caller] - f->c.dice_roll));
	ev = bt_find(f->s, TM_EV_EXIT, f->c.pid, 0);
	assert_int_equal(ev->u.exit.sig, SIGABRT);
}

static void test_kill(void **state)
{
	BPF_TEST_REQUIRE();
	struct fixture *f = *state;
	int st = run_crasher(f, "wait");
	print_events(f->s);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	const struct bt_event *ev = bt_find(f->s, TM_EV_KILL, f->c.pid, 0);
	assert_non_null(ev);
	assert_int_equal(ev->u.kill.sig, SIGKILL);
	assert_int_equal(ev->u.kill.code, SI_USER);
	assert_int_equal(ev->u.kill.sender_pid, getpid());
	assert_null(bt_find(f->s, TM_EV_CRASH, f->c.pid, 0));
	/* The sleeping dice_roll task is closed out by its thread's exit. */
	const struct tm_ev_task_start *start = dice_roll_start(f);
	ev = bt_find(f->s, TM_EV_TASK_END, f->c.pid, start->h.task_id);
	assert_non_null(ev);
	assert_true(ev->u.end.flags & TM_EVF_THREAD_EXIT);
	assert_true(ev->u.end.blocked_ns > 100000000ull);   /* it slept ~200 ms of it */
	ev = bt_find(f->s, TM_EV_EXIT, f->c.pid, 0);
	assert_int_equal(ev->u.exit.sig, SIGKILL);
}

static void test_segv_raw_tp(void **state)
{
	BPF_TEST_REQUIRE();
	assert_string_equal(tmd_loader_mode(((struct fixture *)*state)->l), "raw_tp");
	test_segv(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_segv, setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_segv_raw_tp, setup, teardown, (void *)&mode_raw_tp),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill, setup, teardown),
	};
	tmd_libbpf_print(false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
