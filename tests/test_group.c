/* Groups and chains: results in spawn order, first-failure cancellation,
 * cancel and free, the concurrency limit, argument checking, chains of
 * steps, and the restart strategies of critical members.
 *
 * Task bodies never call cmocka asserts (they run on other threads and
 * cmocka fails by longjmp); they record what they saw into a struct marg
 * that lives in the fixture, so that a failing test leaves nothing on its
 * stack for a still-running task to write to. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "taskmon.h"
#include "test_util.h"

#define assert_contains(hay, needle) do { \
	const char *h_ = (hay), *n_ = (needle); \
	if (h_ == NULL || strcasestr(h_, n_) == NULL) \
		fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)"); \
} while (0)

/* Generous bounds: CI machines are shared and noisy. */
#define LONG_MS  30000   /* "forever" for a member: far past any bound below */
#define BOUND_MS 10000   /* the most any wait in a test may take */

static uint64_t ms_since(uint64_t t0)
{
	return (now_ns() - t0) / 1000000;
}

/* ---- the one member body ------------------------------------------------- */

enum mode {
	M_RETURN,          /* return ret at once */
	M_SLEEP,           /* tm_sleep_ms(ms), then return ret */
	M_UNTIL_CANCEL,    /* sleep until cancelled (or stopped), then return ret */
	M_UNTIL_RELEASE,   /* until *release is set (or a cancel), then return ret */
	M_DEAF_SLEEP,      /* a plain sleep of ms that no cancel can shorten */
	M_FAIL_ONCE,       /* first run: until *release, return ret; later runs: M_UNTIL_CANCEL, 0 */
	M_SLOW_STOP,       /* M_UNTIL_CANCEL, then a plain sleep of ms before it returns */
};

#define MAX_RUNS 8

struct marg {
	enum mode mode;
	int ret;
	uint64_t ms;
	atomic_int release;
	/* seen by the body */
	atomic_int calls;            /* runs started (a critical task runs again) */
	atomic_int ended;            /* runs ended */
	atomic_int cancels;          /* runs that ended because of a cancel or stop */
	atomic_int stop_seq[MAX_RUNS];  /* global order of those ends, 1-based; 0 = none */
	atomic_int end_seq;          /* global order of the last end, 1-based */
	_Atomic uint64_t task_id;
};

static atomic_int seq;           /* orders events across members */

static void note_cancel(struct marg *a, int run)
{
	int s = atomic_fetch_add(&seq, 1) + 1;
	if (run < MAX_RUNS)
		atomic_store(&a->stop_seq[run], s);
	atomic_fetch_add(&a->cancels, 1);
}

static void sleep_until_cancelled(struct marg *a, int run)
{
	while (tm_sleep_ms(LONG_MS) == 0)
		;
	note_cancel(a, run);
}

static int member_body(void *p)
{
	struct marg *a = p;
	int run = atomic_fetch_add(&a->calls, 1);
	int ret = a->ret;
	atomic_store(&a->task_id, tm_current_id());
	switch (a->mode) {
	case M_RETURN:
		break;
	case M_SLEEP:
		if (tm_sleep_ms(a->ms) < 0)
			note_cancel(a, run);
		break;
	case M_UNTIL_CANCEL:
		sleep_until_cancelled(a, run);
		break;
	case M_UNTIL_RELEASE:
		while (!atomic_load(&a->release))
			if (tm_sleep_ms(2) < 0) {
				note_cancel(a, run);
				break;
			}
		break;
	case M_DEAF_SLEEP:
		sleep_ms((unsigned)a->ms);
		break;
	case M_SLOW_STOP:
		sleep_until_cancelled(a, run);
		sleep_ms((unsigned)a->ms);
		break;
	case M_FAIL_ONCE:
		if (run == 0) {
			while (!atomic_load(&a->release) && tm_sleep_ms(2) == 0)
				;
		} else {
			sleep_until_cancelled(a, run);
			ret = 0;
		}
		break;
	}
	atomic_store(&a->end_seq, atomic_fetch_add(&seq, 1) + 1);
	atomic_fetch_add(&a->ended, 1);
	return ret;
}

/* ---- fixture ------------------------------------------------------------- */

#define MAX_ARGS   16
#define MAX_GROUPS 8
#define MAX_HELD   32

struct fx {
	struct marg a[MAX_ARGS];
	tm_group *groups[MAX_GROUPS];
	tm_task *held[MAX_HELD];
	int nheld;
};

static int suite_setup(void **state)
{
	(void)state;
	/* The defaults are what these tests assume: an environment config could
	 * set limits or timeouts that change the outcomes. */
	unsetenv("TASKMON_CONFIG");
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	atomic_store(&seq, 0);
	int rc = tm_init(NULL);
	if (rc != 0) {
		print_error("tm_init(NULL) = %d: %s\n", rc, tm_last_error());
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

/* Groups a failed test left behind are freed first: that cancels and joins
 * their members, so none of them touches the fixture after it is gone. */
static int teardown(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < MAX_ARGS; i++)
		atomic_store(&f->a[i].release, 1);
	for (int i = 0; i < MAX_GROUPS; i++)
		tm_group_free(f->groups[i]);
	for (int i = 0; i < MAX_HELD; i++)
		tm_release(f->held[i]);
	tm_shutdown();
	free(f);
	return 0;
}

static tm_group *new_group(struct fx *f, const char *name, const struct tm_group_opts *o)
{
	for (int i = 0; i < MAX_GROUPS; i++)
		if (!f->groups[i]) {
			int r = tm_group_new_opts(&f->groups[i], name, o);
			if (r != 0)
				fail_msg("tm_group_new_opts(%s) = %d: %s", name, r, tm_last_error());
			return f->groups[i];
		}
	fail_msg("too many groups");
	return NULL;
}

/* The test frees it itself. */
static void forget_group(struct fx *f, tm_group *g)
{
	for (int i = 0; i < MAX_GROUPS; i++)
		if (f->groups[i] == g)
			f->groups[i] = NULL;
}

static void free_group(struct fx *f, tm_group *g)
{
	forget_group(f, g);
	tm_group_free(g);
}

/* Slots are handed out in order, so that two hold() calls before either
 * spawn get distinct slots. */
static tm_task **hold(struct fx *f)
{
	if (f->nheld == MAX_HELD)
		fail_msg("too many held handles");
	return &f->held[f->nheld++];
}

/* A member that the test keeps no handle of. */
static void spawn_member(tm_group *g, const char *name, struct marg *a)
{
	int r = tm_spawn(NULL, name, member_body, a, TM_SPAWN_OPTS(.group = g));
	if (r != 0)
		fail_msg("tm_spawn(%s) = %d: %s", name, r, tm_last_error());
}

/* A member whose id the test keeps; the handle goes at once, the group keeps its own. */
static uint64_t spawn_member_id(tm_group *g, const char *name, struct marg *a)
{
	tm_task *t = NULL;
	int r = tm_spawn(&t, name, member_body, a, TM_SPAWN_OPTS(.group = g));
	if (r != 0)
		fail_msg("tm_spawn(%s) = %d: %s", name, r, tm_last_error());
	uint64_t id = tm_task_id(t);
	tm_release(t);
	return id;
}

static bool is_running(uint64_t id)
{
	enum { CAP = 4096 };
	struct tm_task_info *all = calloc(CAP, sizeof(*all));
	assert_non_null(all);
	int n = tm_list_tasks(all, CAP, true);
	bool found = false;
	for (int i = 0; i < n; i++)
		found |= all[i].id == id;
	free(all);
	return found;
}

static bool find_task(uint64_t id, struct tm_task_info *out)
{
	enum { CAP = 4096 };
	struct tm_task_info *all = calloc(CAP, sizeof(*all));
	assert_non_null(all);
	int n = tm_list_tasks(all, CAP, false);
	bool found = false;
	for (int i = 0; i < n && !found; i++)
		if (all[i].id == id) {
			*out = all[i];
			found = true;
		}
	free(all);
	return found;
}

/* ---- results ------------------------------------------------------------- */

/* Members end in reverse spawn order; results come in spawn order anyway. */
static void test_results_in_spawn_order(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "order", NULL);
	static const char *const names[4] = { "m0", "m1", "m2", "m3" };
	static const int rets[4] = { 0, 3, 0, -5 };
	uint64_t ids[4];
	tm_task **joined = hold(f);
	for (int i = 0; i < 4; i++) {
		f->a[i] = (struct marg){ .mode = M_SLEEP, .ms = 400 - 100 * (uint64_t)i, .ret = rets[i] };
		if (i == 1) {
			/* The caller's handle and the group's are separate holders. */
			assert_int_equal(tm_spawn(joined, names[i], member_body, &f->a[i], TM_SPAWN_OPTS(.group = g)), 0);
			ids[i] = tm_task_id(*joined);
		} else {
			ids[i] = spawn_member_id(g, names[i], &f->a[i]);
		}
	}
	enum tm_status st;
	int rc;
	assert_int_equal(tm_join(*joined, BOUND_MS, &st, &rc), 0);
	*joined = NULL;
	assert_int_equal(st, TM_FAILED);
	assert_int_equal(rc, 3);

	struct tm_result res[8];
	memset(res, 0xa5, sizeof(res));
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, res, 8), 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(res[i].id, ids[i]);
		assert_string_equal(res[i].name, names[i]);
		assert_int_equal(res[i].status, rets[i] ? TM_FAILED : TM_SUCCEEDED);
		assert_int_equal(res[i].rc, rets[i]);
		assert_int_equal(atomic_load(&f->a[i].ended), 1);
	}
	/* They did end in reverse order. */
	for (int i = 1; i < 4; i++)
		assert_true(atomic_load(&f->a[i].end_seq) < atomic_load(&f->a[i - 1].end_seq));
	assert_int_equal(res[4].rc, (int)0xa5a5a5a5);

	/* Ended groups answer a poll; a short array gets the first members only. */
	struct tm_result two[3];
	memset(two, 0xa5, sizeof(two));
	assert_int_equal(tm_group_wait_all(g, 0, two, 2), 4);
	assert_int_equal(two[0].id, ids[0]);
	assert_int_equal(two[1].id, ids[1]);
	assert_int_equal(two[2].rc, (int)0xa5a5a5a5);
	assert_int_equal(tm_group_wait_all(g, -1, NULL, 0), 4);
	free_group(f, g);
}

static void test_wait_all_empty_and_null(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "empty", NULL);
	assert_int_equal(tm_group_wait_all(g, 0, NULL, 0), 0);
	assert_int_equal(tm_group_wait_all(g, -1, NULL, 0), 0);
	assert_int_equal(tm_group_cancel(g), 0);
	assert_int_equal(tm_group_wait_all(NULL, 0, NULL, 0), -EINVAL);
	assert_int_equal(tm_group_cancel(NULL), -EINVAL);
	tm_group_free(NULL);
	free_group(f, g);
}

/* A member spawned while wait_all waits is waited for too. */
static void test_wait_all_counts_later_members(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "later", NULL);
	f->a[0] = (struct marg){ .mode = M_UNTIL_RELEASE };
	f->a[1] = (struct marg){ .mode = M_SLEEP, .ms = 300, .ret = 4 };
	spawn_member(g, "first", &f->a[0]);
	assert_int_equal(tm_group_wait_all(g, 50, NULL, 0), -ETIMEDOUT);
	spawn_member(g, "second", &f->a[1]);
	atomic_store(&f->a[0].release, 1);
	struct tm_result res[2];
	uint64_t t0 = now_ns();
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, res, 2), 2);
	assert_true(ms_since(t0) >= 250);
	assert_int_equal(res[1].status, TM_FAILED);
	assert_int_equal(res[1].rc, 4);
	free_group(f, g);
}

/* A member cannot wait for its own group: it would wait for itself. */
static atomic_int self_wait_rc;
static tm_group *self_group;
static int self_waiter(void *p)
{
	(void)p;
	atomic_store(&self_wait_rc, tm_group_wait_all(self_group, -1, NULL, 0));
	return 0;
}

static void test_member_cannot_wait_for_its_group(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "self", NULL);
	self_group = g;
	atomic_store(&self_wait_rc, 1);
	assert_int_equal(tm_spawn(NULL, "self-waiter", self_waiter, NULL, TM_SPAWN_OPTS(.group = g)), 0);
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, NULL, 0), 1);
	assert_int_equal(atomic_load(&self_wait_rc), -EDEADLK);
	free_group(f, g);
}

/* ---- first-failure cancellation -------------------------------------------- */

static void spawn_five_and_a_failure(struct fx *f, tm_group *g)
{
	char name[16];
	for (int i = 0; i < 5; i++) {
		f->a[i] = (struct marg){ .mode = M_UNTIL_CANCEL };
		snprintf(name, sizeof(name), "sleeper-%d", i);
		spawn_member(g, name, &f->a[i]);
	}
	f->a[5] = (struct marg){ .mode = M_SLEEP, .ms = 20, .ret = 9 };
	spawn_member(g, "fails", &f->a[5]);
}

static void check_five_cancelled_one_failed(struct fx *f, const struct tm_result *res)
{
	for (int i = 0; i < 5; i++) {
		assert_int_equal(res[i].status, TM_CANCELLED);
		assert_int_equal(atomic_load(&f->a[i].cancels), 1);
	}
	assert_int_equal(res[5].status, TM_FAILED);
	assert_int_equal(res[5].rc, 9);
	assert_string_equal(res[5].name, "fails");
	assert_int_equal(atomic_load(&f->a[5].cancels), 0);
}

static void test_cancel_on_failure(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "errgroup", TM_GROUP_OPTS(.cancel_on_failure = true));
	uint64_t t0 = now_ns();
	spawn_five_and_a_failure(f, g);
	struct tm_result res[6];
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, res, 6), 6);
	assert_true(ms_since(t0) < BOUND_MS / 2);
	check_five_cancelled_one_failed(f, res);

	/* A failed group takes no new members, and says why. */
	f->a[6] = (struct marg){ .mode = M_RETURN };
	assert_int_equal(tm_spawn(NULL, "too-late", member_body, &f->a[6], TM_SPAWN_OPTS(.group = g)), -ECANCELED);
	assert_contains(tm_last_error(), "errgroup");
	assert_contains(tm_last_error(), "fails");
	assert_int_equal(atomic_load(&f->a[6].calls), 0);
	assert_int_equal(tm_group_wait_all(g, 0, NULL, 0), 6);
	free_group(f, g);
}

/* Cancelled members do not count as failures: one cancel does not cancel all. */
static void test_cancel_is_not_a_failure(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "not-failure", TM_GROUP_OPTS(.cancel_on_failure = true));
	tm_task **t = hold(f);
	f->a[0] = (struct marg){ .mode = M_UNTIL_CANCEL };
	f->a[1] = (struct marg){ .mode = M_UNTIL_RELEASE };
	f->a[2] = (struct marg){ .mode = M_SLEEP, .ms = 50, .ret = 0 };
	assert_int_equal(tm_spawn(t, "victim", member_body, &f->a[0], TM_SPAWN_OPTS(.group = g)), 0);
	spawn_member(g, "bystander", &f->a[1]);
	spawn_member(g, "succeeds", &f->a[2]);
	assert_int_equal(tm_cancel(*t), 0);
	enum tm_status st;
	assert_int_equal(tm_join(*t, BOUND_MS, &st, NULL), 0);
	*t = NULL;
	assert_int_equal(st, TM_CANCELLED);
	assert_true(wait_count(&f->a[2].ended, 1, BOUND_MS));
	sleep_ms(50);
	assert_int_equal(atomic_load(&f->a[1].cancels), 0);
	atomic_store(&f->a[1].release, 1);
	struct tm_result res[3];
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, res, 3), 3);
	assert_int_equal(res[0].status, TM_CANCELLED);
	assert_int_equal(res[1].status, TM_SUCCEEDED);
	assert_int_equal(res[2].status, TM_SUCCEEDED);
	free_group(f, g);
}

static void test_failure_without_option_cancels_nothing(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "no-errgroup", NULL);
	spawn_five_and_a_failure(f, g);
	assert_true(wait_count(&f->a[5].ended, 1, BOUND_MS));
	assert_int_equal(tm_group_wait_all(g, 200, NULL, 0), -ETIMEDOUT);
	assert_contains(tm_last_error(), "no-errgroup");
	assert_contains(tm_last_error(), "5 of 6");
	/* A poll does not wait. */
	uint64_t t0 = now_ns();
	assert_int_equal(tm_group_wait_all(g, 0, NULL, 0), -ETIMEDOUT);
	assert_true(ms_since(t0) < 1000);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(atomic_load(&f->a[i].ended), 0);
		assert_int_equal(atomic_load(&f->a[i].cancels), 0);
	}
	assert_int_equal(tm_group_cancel(g), 5);
	struct tm_result res[6];
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, res, 6), 6);
	check_five_cancelled_one_failed(f, res);
	/* tm_group_cancel leaves the group open. */
	f->a[6] = (struct marg){ .mode = M_RETURN, .ret = 0 };
	spawn_member(g, "after-cancel", &f->a[6]);
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, res, 6), 7);
	free_group(f, g);
}

/* ---- cancel and free ----------------------------------------------------------- */

struct canceller { tm_group *g; unsigned delay_ms; atomic_int rc; atomic_int done; };

static void *cancel_later(void *p)
{
	struct canceller *c = p;
	sleep_ms(c->delay_ms);
	atomic_store(&c->rc, tm_group_cancel(c->g));
	atomic_store(&c->done, 1);
	return NULL;
}

static void test_cancel_during_wait(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "cancel-wait", NULL);
	for (int i = 0; i < 4; i++) {
		f->a[i] = (struct marg){ .mode = M_UNTIL_CANCEL };
		spawn_member(g, "sleeper", &f->a[i]);
	}
	struct canceller c = { .g = g, .delay_ms = 100 };
	atomic_init(&c.rc, -1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, cancel_later, &c), 0);
	uint64_t t0 = now_ns();
	struct tm_result res[4];
	int r = tm_group_wait_all(g, BOUND_MS, res, 4);
	uint64_t ms = ms_since(t0);
	pthread_join(th, NULL);
	assert_int_equal(r, 4);
	assert_true(ms >= 90 && ms < BOUND_MS);
	assert_int_equal(atomic_load(&c.rc), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(res[i].status, TM_CANCELLED);
	free_group(f, g);
}

static void test_free_waits_for_members(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "free-me", NULL);
	uint64_t ids[6];
	for (int i = 0; i < 5; i++) {
		f->a[i] = (struct marg){ .mode = M_UNTIL_CANCEL };
		ids[i] = spawn_member_id(g, "sleeper", &f->a[i]);
	}
	/* Deaf to cancellation: free must still wait for it. */
	f->a[5] = (struct marg){ .mode = M_DEAF_SLEEP, .ms = 300 };
	ids[5] = spawn_member_id(g, "deaf", &f->a[5]);
	for (int i = 0; i < 6; i++)
		assert_true(wait_count(&f->a[i].calls, 1, BOUND_MS));
	free_group(f, g);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(atomic_load(&f->a[i].ended), 1);
		assert_false(is_running(ids[i]));
	}
	for (int i = 0; i < 5; i++)
		assert_int_equal(atomic_load(&f->a[i].cancels), 1);
	struct tm_task_info info;
	assert_true(find_task(ids[0], &info));
	assert_int_equal(info.status, TM_CANCELLED);
}

/* ---- the concurrency limit ----------------------------------------------------- */

struct spawner {
	tm_group *g;
	struct marg *a;
	atomic_int returned;
	atomic_int rc;
	char err[256];
};

static void *spawn_blocking(void *p)
{
	struct spawner *s = p;
	int r = tm_spawn(NULL, "late", member_body, s->a, TM_SPAWN_OPTS(.group = s->g));
	snprintf(s->err, sizeof(s->err), "%s", tm_last_error());
	atomic_store(&s->rc, r);
	atomic_store(&s->returned, 1);
	return NULL;
}

static void test_concurrency_limit(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "limited", TM_GROUP_OPTS(.max_concurrent = 3));
	for (int i = 0; i < 3; i++) {
		f->a[i] = (struct marg){ .mode = M_UNTIL_RELEASE };
		spawn_member(g, "holder", &f->a[i]);
	}
	f->a[3] = (struct marg){ .mode = M_RETURN };
	tm_task *t = (tm_task *)&t;
	assert_int_equal(tm_group_try_spawn(&t, "fourth", member_body, &f->a[3], TM_SPAWN_OPTS(.group = g)), -EAGAIN);
	assert_null(t);
	assert_contains(tm_last_error(), "limited");
	assert_contains(tm_last_error(), "3");
	assert_contains(tm_last_error(), "max_concurrent");

	/* tm_spawn waits for room instead. */
	static struct spawner s;
	memset(&s, 0, sizeof(s));
	s.g = g;
	s.a = &f->a[4];
	f->a[4] = (struct marg){ .mode = M_UNTIL_RELEASE };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, spawn_blocking, &s), 0);
	sleep_ms(100);
	assert_int_equal(atomic_load(&s.returned), 0);
	assert_int_equal(atomic_load(&f->a[4].calls), 0);

	atomic_store(&f->a[1].release, 1);
	uint64_t t0 = now_ns();
	bool back = wait_count(&s.returned, 1, BOUND_MS);
	if (!back)
		free_group(f, g);   /* wakes the spawner, so that the join below returns */
	pthread_join(th, NULL);
	assert_true(back);
	assert_true(ms_since(t0) < BOUND_MS);
	assert_int_equal(atomic_load(&s.rc), 0);
	assert_true(wait_count(&f->a[4].calls, 1, BOUND_MS));

	/* Full again: two holders and the late one. */
	assert_int_equal(tm_group_try_spawn(NULL, "fourth", member_body, &f->a[3], TM_SPAWN_OPTS(.group = g)), -EAGAIN);
	atomic_store(&f->a[0].release, 1);
	atomic_store(&f->a[2].release, 1);
	atomic_store(&f->a[4].release, 1);
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, NULL, 0), 4);
	/* Room again. */
	assert_int_equal(tm_group_try_spawn(NULL, "fourth", member_body, &f->a[3], TM_SPAWN_OPTS(.group = g)), 0);
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, NULL, 0), 5);
	assert_int_equal(atomic_load(&f->a[3].calls), 1);
	free_group(f, g);
}

static void *free_in_thread(void *p)
{
	tm_group_free(p);
	return NULL;
}

/* A spawner waiting for room in a group that is freed gives up. */
static void test_free_wakes_waiting_spawner(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "one-room", TM_GROUP_OPTS(.max_concurrent = 1));
	f->a[0] = (struct marg){ .mode = M_UNTIL_CANCEL };
	spawn_member(g, "occupant", &f->a[0]);
	static struct spawner s;
	memset(&s, 0, sizeof(s));
	s.g = g;
	s.a = &f->a[1];
	f->a[1] = (struct marg){ .mode = M_RETURN };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, spawn_blocking, &s), 0);
	sleep_ms(100);
	assert_int_equal(atomic_load(&s.returned), 0);
	/* Freed on another thread, so that a free that never returns fails the
	 * test instead of hanging it. */
	forget_group(f, g);
	pthread_t fr;
	assert_int_equal(pthread_create(&fr, NULL, free_in_thread, g), 0);
	assert_true(wait_count(&s.returned, 1, BOUND_MS));
	pthread_join(th, NULL);
	pthread_join(fr, NULL);
	assert_int_equal(atomic_load(&s.rc), -ECANCELED);
	assert_contains(s.err, "one-room");
	assert_int_equal(atomic_load(&f->a[1].calls), 0);
	assert_int_equal(atomic_load(&f->a[0].cancels), 1);
}

/* ---- races ----------------------------------------------------------------------- */

/* A cancel that comes after the body returned changes nothing. */
static void test_cancel_after_end_keeps_success(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "quick", NULL);
	enum { N = 8 };
	tm_task **t[N];
	for (int i = 0; i < N; i++) {
		f->a[i] = (struct marg){ .mode = M_RETURN, .ret = 0 };
		t[i] = hold(f);
		assert_int_equal(tm_spawn(t[i], "quick", member_body, &f->a[i], TM_SPAWN_OPTS(.group = g)), 0);
	}
	struct tm_result res[N];
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, res, N), N);
	assert_int_equal(tm_group_cancel(g), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(tm_cancel(*t[i]), -ESRCH);
	assert_int_equal(tm_group_wait_all(g, 0, res, N), N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(res[i].status, TM_SUCCEEDED);
		enum tm_status st;
		assert_int_equal(tm_join(*t[i], 0, &st, NULL), 0);
		*t[i] = NULL;
		assert_int_equal(st, TM_SUCCEEDED);
	}
	free_group(f, g);
}

/* Racing: whenever a cancel reports the task had already ended, the task's
 * outcome is its own. Repeated so that both sides of the race happen. */
static void test_cancel_race_with_return(void **state)
{
	struct fx *f = *state;
	int lost = 0;
	tm_task **t = hold(f);
	for (int round = 0; round < 50; round++) {
		tm_group *g = new_group(f, "race", NULL);
		f->a[0] = (struct marg){ .mode = M_RETURN, .ret = 0 };
		assert_int_equal(tm_spawn(t, "racer", member_body, &f->a[0], TM_SPAWN_OPTS(.group = g)), 0);
		if (round & 1)
			sleep_ms(5);
		int c = tm_cancel(*t);
		struct tm_result res;
		assert_int_equal(tm_group_wait_all(g, BOUND_MS, &res, 1), 1);
		if (c == -ESRCH) {
			lost++;
			assert_int_equal(res.status, TM_SUCCEEDED);
		} else {
			assert_int_equal(c, 0);
			assert_true(res.status == TM_SUCCEEDED || res.status == TM_CANCELLED);
		}
		tm_release(*t);
		*t = NULL;
		free_group(f, g);
	}
	/* With a 5 ms head start the body has returned nearly every time. */
	assert_true(lost > 0);
}

/* ---- arguments ----------------------------------------------------------------------- */

static void test_try_spawn_needs_group(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "args", NULL);
	f->a[0] = (struct marg){ .mode = M_RETURN };
	tm_task *t = (tm_task *)&t;
	assert_int_equal(tm_group_try_spawn(&t, "x", member_body, &f->a[0], NULL), -EINVAL);
	assert_null(t);
	assert_contains(tm_last_error(), "group");
	assert_int_equal(tm_group_try_spawn(NULL, "x", member_body, &f->a[0], TM_SPAWN_OPTS(.type = TM_GENERAL)), -EINVAL);
	assert_contains(tm_last_error(), "group");
	/* sz short of the group field: no group given. */
	struct tm_spawn_opts o = { .sz = offsetof(struct tm_spawn_opts, group), .group = g };
	assert_int_equal(tm_group_try_spawn(NULL, "x", member_body, &f->a[0], &o), -EINVAL);
	o.sz = 3;
	assert_int_equal(tm_group_try_spawn(NULL, "x", member_body, &f->a[0], &o), -EINVAL);
	o.sz = 5000;
	assert_int_equal(tm_group_try_spawn(NULL, "x", member_body, &f->a[0], &o), -EINVAL);
	/* The usual spawn checks apply. */
	assert_int_equal(tm_group_try_spawn(NULL, "", member_body, &f->a[0], TM_SPAWN_OPTS(.group = g)), -EINVAL);
	assert_int_equal(tm_group_try_spawn(NULL, "x", NULL, &f->a[0], TM_SPAWN_OPTS(.group = g)), -EINVAL);
	assert_int_equal(tm_spawn(NULL, "x", NULL, NULL, TM_SPAWN_OPTS(.group = g)), -EINVAL);
	assert_int_equal(tm_group_wait_all(g, 0, NULL, 0), 0);
	assert_int_equal(atomic_load(&f->a[0].calls), 0);
	/* And a good one. */
	assert_int_equal(tm_group_try_spawn(&t, "x", member_body, &f->a[0], TM_SPAWN_OPTS(.group = g)), 0);
	assert_non_null(t);
	assert_int_equal(tm_join(t, BOUND_MS, NULL, NULL), 0);
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, NULL, 0), 1);
	free_group(f, g);
}

static void test_group_new_checks(void **state)
{
	(void)state;
	tm_group *g = (tm_group *)&g;
	assert_int_equal(tm_group_new(&g, NULL), -EINVAL);
	assert_null(g);
	assert_int_equal(tm_group_new(&g, ""), -EINVAL);
	assert_int_equal(tm_group_new(&g, "0123456789abcdef0123456789abcdef"), -EINVAL);  /* 32 bytes */
	assert_int_equal(tm_group_new(&g, "tab\there"), -EINVAL);
	assert_int_equal(tm_group_new(&g, "caf\xc3\xa9"), -EINVAL);
	assert_contains(tm_last_error(), "group name");
	assert_null(g);
	assert_int_equal(tm_group_new(NULL, "ok"), -EINVAL);

	/* 31 bytes is fine. */
	assert_int_equal(tm_group_new(&g, "0123456789abcdef0123456789abcde"), 0);
	tm_group_free(g);

	struct { struct tm_group_opts o; unsigned char more[16]; } big;
	memset(&big, 0, sizeof(big));
	big.o.sz = 3;
	assert_int_equal(tm_group_new_opts(&g, "g", &big.o), -EINVAL);
	assert_contains(tm_last_error(), "sz");
	big.o.sz = 5000;
	assert_int_equal(tm_group_new_opts(&g, "g", &big.o), -EINVAL);
	big.o.sz = sizeof(big);
	big.more[7] = 1;
	assert_int_equal(tm_group_new_opts(&g, "g", &big.o), -EINVAL);
	assert_contains(tm_last_error(), "newer");
	assert_null(g);
	big.more[7] = 0;
	assert_int_equal(tm_group_new_opts(&g, "g", &big.o), 0);
	tm_group_free(g);
	big.o.sz = sizeof(struct tm_group_opts);
	big.o.strategy = (enum tm_group_strategy)7;
	assert_int_equal(tm_group_new_opts(&g, "g", &big.o), -EINVAL);
	assert_contains(tm_last_error(), "strategy");
	big.o.strategy = (enum tm_group_strategy)-1;
	assert_int_equal(tm_group_new_opts(&g, "g", &big.o), -EINVAL);
}

/* Fields past the caller's sz read as zero: a limit there is not seen. */
static void test_group_opts_short_sz(void **state)
{
	struct fx *f = *state;
	struct tm_group_opts o = { .sz = sizeof(size_t), .cancel_on_failure = true, .max_concurrent = 1 };
	tm_group *g = new_group(f, "short", &o);
	for (int i = 0; i < 3; i++) {
		f->a[i] = (struct marg){ .mode = M_UNTIL_RELEASE, .ret = 1 };
		assert_int_equal(tm_group_try_spawn(NULL, "m", member_body, &f->a[i], TM_SPAWN_OPTS(.group = g)), 0);
	}
	atomic_store(&f->a[0].release, 1);
	assert_true(wait_count(&f->a[0].ended, 1, BOUND_MS));
	sleep_ms(50);
	/* No cancel_on_failure either. */
	assert_int_equal(atomic_load(&f->a[1].cancels), 0);
	atomic_store(&f->a[1].release, 1);
	atomic_store(&f->a[2].release, 1);
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, NULL, 0), 3);
	free_group(f, g);
}

/* ---- chains ----------------------------------------------------------------------- */

static void test_chain_all_succeed(void **state)
{
	struct fx *f = *state;
	struct tm_chain_step steps[3] = {
		{ "step-a", member_body, &f->a[0], TM_GENERAL, 0 },
		{ "step-b", member_body, &f->a[1], TM_NETWORK, 0 },
		{ "step-c", member_body, &f->a[2], TM_GENERAL, 0 },
	};
	for (int i = 0; i < 3; i++)
		f->a[i] = (struct marg){ .mode = M_SLEEP, .ms = 30 - 10 * (uint64_t)i };
	struct tm_result res[4];
	memset(res, 0xa5, sizeof(res));
	assert_int_equal(tm_chain(steps, 3, res), 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(res[i].name, steps[i].name);
		assert_int_equal(res[i].status, TM_SUCCEEDED);
		assert_int_equal(res[i].rc, 0);
		assert_int_equal(res[i].id, atomic_load(&f->a[i].task_id));
		assert_int_equal(atomic_load(&f->a[i].calls), 1);
	}
	/* One after another, although the later ones sleep less. */
	for (int i = 1; i < 3; i++)
		assert_true(atomic_load(&f->a[i].end_seq) > atomic_load(&f->a[i - 1].end_seq));
	assert_true(res[0].id != res[1].id && res[1].id != res[2].id);
	assert_int_equal(res[3].rc, (int)0xa5a5a5a5);
	/* Each step is a tracked task of its own type. */
	struct tm_task_info info;
	assert_true(find_task(res[1].id, &info));
	assert_int_equal(info.type, TM_NETWORK);
	assert_string_equal(info.name, "step-b");
	assert_int_equal(info.status, TM_SUCCEEDED);
}

static void test_chain_stops_at_failure(void **state)
{
	struct fx *f = *state;
	struct tm_chain_step steps[3] = {
		{ "one", member_body, &f->a[0], TM_GENERAL, 0 },
		{ "two", member_body, &f->a[1], TM_GENERAL, 0 },
		{ "three", member_body, &f->a[2], TM_GENERAL, 0 },
	};
	f->a[0] = (struct marg){ .mode = M_RETURN };
	f->a[1] = (struct marg){ .mode = M_RETURN, .ret = 7 };
	f->a[2] = (struct marg){ .mode = M_RETURN };
	struct tm_result res[3];
	memset(res, 0xa5, sizeof(res));
	assert_int_equal(tm_chain(steps, 3, res), 2);
	assert_int_equal(res[0].status, TM_SUCCEEDED);
	assert_int_equal(res[1].status, TM_FAILED);
	assert_int_equal(res[1].rc, 7);
	assert_string_equal(res[1].name, "two");
	assert_int_equal(atomic_load(&f->a[2].calls), 0);
	assert_int_equal(res[2].rc, (int)0xa5a5a5a5);
}

static void test_chain_step_timeout(void **state)
{
	struct fx *f = *state;
	struct tm_chain_step steps[2] = {
		{ "slow", member_body, &f->a[0], TM_GENERAL, 50 },
		{ "never", member_body, &f->a[1], TM_GENERAL, 0 },
	};
	f->a[0] = (struct marg){ .mode = M_SLEEP, .ms = LONG_MS };
	f->a[1] = (struct marg){ .mode = M_RETURN };
	struct tm_result res[2];
	uint64_t t0 = now_ns();
	assert_int_equal(tm_chain(steps, 2, res), 1);
	uint64_t ms = ms_since(t0);
	assert_int_equal(res[0].status, TM_TIMED_OUT);
	assert_in_range(ms, 45, BOUND_MS);
	assert_int_equal(atomic_load(&f->a[1].calls), 0);
}

static void test_chain_args(void **state)
{
	struct fx *f = *state;
	struct tm_result res[3];
	struct tm_chain_step steps[3] = {
		{ "fine", member_body, &f->a[0], TM_GENERAL, 0 },
		{ "no-fn", NULL, NULL, TM_GENERAL, 0 },
		{ "after", member_body, &f->a[1], TM_GENERAL, 0 },
	};
	f->a[0] = (struct marg){ .mode = M_RETURN };
	f->a[1] = (struct marg){ .mode = M_RETURN };
	assert_int_equal(tm_chain(NULL, 1, res), -EINVAL);
	assert_int_equal(tm_chain(steps, 1, NULL), -EINVAL);
	assert_int_equal(tm_chain(NULL, 0, NULL), 0);
	assert_int_equal(atomic_load(&f->a[0].calls), 0);

	memset(res, 0xa5, sizeof(res));
	assert_int_equal(tm_chain(steps, 3, res), -EINVAL);
	assert_contains(tm_last_error(), "step 2");
	assert_int_equal(res[0].status, TM_SUCCEEDED);
	assert_string_equal(res[0].name, "fine");
	assert_int_equal(atomic_load(&f->a[1].calls), 0);

	struct tm_chain_step bad[1] = { { "bad\nname", member_body, &f->a[1], TM_GENERAL, 0 } };
	assert_int_equal(tm_chain(bad, 1, res), -EINVAL);
	struct tm_chain_step badtype[1] = { { "t", member_body, &f->a[1], TM_MAX_TYPES + 1, 0 } };
	assert_int_equal(tm_chain(badtype, 1, res), -EINVAL);
	assert_int_equal(atomic_load(&f->a[1].calls), 0);
}

struct inner_chain { struct marg *a; struct tm_result res[2]; int r; uint64_t outer_id; };

static int chain_in_task(void *p)
{
	struct inner_chain *c = p;
	struct tm_chain_step steps[2] = {
		{ "inner-1", member_body, &c->a[0], TM_GENERAL, 0 },
		{ "inner-2", member_body, &c->a[1], TM_GENERAL, 0 },
	};
	c->outer_id = tm_current_id();
	c->r = tm_chain(steps, 2, c->res);
	return c->r == 2 ? 0 : 100;
}

static void test_chain_inside_task(void **state)
{
	struct fx *f = *state;
	static struct inner_chain c;
	memset(&c, 0, sizeof(c));
	c.a = &f->a[0];
	f->a[0] = (struct marg){ .mode = M_SLEEP, .ms = 10 };
	f->a[1] = (struct marg){ .mode = M_RETURN, .ret = 0 };
	tm_task **t = hold(f);
	assert_int_equal(tm_spawn(t, "outer", chain_in_task, &c, NULL), 0);
	enum tm_status st;
	assert_int_equal(tm_join(*t, BOUND_MS, &st, NULL), 0);
	*t = NULL;
	assert_int_equal(st, TM_SUCCEEDED);
	assert_int_equal(c.r, 2);
	assert_int_equal(c.res[1].status, TM_SUCCEEDED);
	assert_true(c.res[0].id != c.outer_id && c.res[1].id != c.outer_id);
	assert_int_equal(c.res[0].id, atomic_load(&f->a[0].task_id));
}

/* ---- restart strategies (critical members) ------------------------------------------ */

/* Plain B, critical A, critical C, plain D, in that spawn order; once all
 * run, A fails (once). */
enum { B, A, C, D };

static void spawn_scenario(struct fx *f, tm_group *g, tm_task **hb, tm_task **hd)
{
	const struct tm_critical_opts *co = TM_CRITICAL_OPTS(
		.restart = TM_RESTART_ALWAYS, .backoff = { .kind = TM_BACKOFF_FIXED, .base_ms = 10 },
		.max_restarts = 5, .group = g);
	f->a[B] = (struct marg){ .mode = M_UNTIL_CANCEL };
	f->a[A] = (struct marg){ .mode = M_FAIL_ONCE, .ret = 1 };
	f->a[C] = (struct marg){ .mode = M_UNTIL_CANCEL };
	f->a[D] = (struct marg){ .mode = M_UNTIL_CANCEL };
	assert_int_equal(tm_spawn(hb, "plain-b", member_body, &f->a[B], TM_SPAWN_OPTS(.group = g)), 0);
	int r = tm_spawn_critical(NULL, "crit-a", member_body, &f->a[A], co);
	if (r != 0)
		fail_msg("tm_spawn_critical = %d: %s", r, tm_last_error());
	assert_int_equal(tm_spawn_critical(NULL, "crit-c", member_body, &f->a[C], co), 0);
	assert_int_equal(tm_spawn(hd, "plain-d", member_body, &f->a[D], TM_SPAWN_OPTS(.group = g)), 0);
	for (int i = 0; i < 4; i++)
		assert_true(wait_count(&f->a[i].calls, 1, BOUND_MS));
	atomic_store(&f->a[A].release, 1);
	assert_true(wait_count(&f->a[A].calls, 2, BOUND_MS));
}

static void finish_scenario(struct fx *f, tm_group *g)
{
	tm_group_cancel(g);
	struct tm_result res[4];
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, res, 4), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(res[i].status, TM_CANCELLED);
	assert_string_equal(res[A].name, "crit-a");
	assert_string_equal(res[C].name, "crit-c");
	free_group(f, g);
}

static void expect_stopped_plain(tm_task **h, struct marg *a)
{
	enum tm_status st;
	assert_int_equal(tm_join(*h, BOUND_MS, &st, NULL), 0);
	*h = NULL;
	assert_int_equal(st, TM_CANCELLED);
	assert_int_equal(atomic_load(&a->calls), 1);
	assert_int_equal(atomic_load(&a->cancels), 1);
}

static void test_one_for_all(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "all", TM_GROUP_OPTS(.strategy = TM_ONE_FOR_ALL));
	tm_task **hb = hold(f), **hd = hold(f);
	spawn_scenario(f, g, hb, hd);
	/* C was stopped and runs again; B and D were stopped and stay so. */
	assert_true(wait_count(&f->a[C].calls, 2, BOUND_MS));
	expect_stopped_plain(hb, &f->a[B]);
	expect_stopped_plain(hd, &f->a[D]);
	int sd = atomic_load(&f->a[D].stop_seq[0]);
	int sc = atomic_load(&f->a[C].stop_seq[0]);
	int sb = atomic_load(&f->a[B].stop_seq[0]);
	if (!(sd && sc && sb && sd < sc && sc < sb))
		fail_msg("stop order D %d, C %d, B %d: expected reverse spawn order D < C < B", sd, sc, sb);
	sleep_ms(150);
	/* Nothing cascades: A's restart stopped the others once. */
	assert_int_equal(atomic_load(&f->a[A].calls), 2);
	assert_int_equal(atomic_load(&f->a[C].calls), 2);
	assert_int_equal(atomic_load(&f->a[A].cancels), 0);
	finish_scenario(f, g);
}

static void test_rest_for_one(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "rest", TM_GROUP_OPTS(.strategy = TM_REST_FOR_ONE));
	tm_task **hb = hold(f), **hd = hold(f);
	spawn_scenario(f, g, hb, hd);
	assert_true(wait_count(&f->a[C].calls, 2, BOUND_MS));
	expect_stopped_plain(hd, &f->a[D]);
	int sd = atomic_load(&f->a[D].stop_seq[0]);
	int sc = atomic_load(&f->a[C].stop_seq[0]);
	if (!(sd && sc && sd < sc))
		fail_msg("stop order D %d, C %d: expected D first", sd, sc);
	sleep_ms(150);
	/* B was spawned before A: untouched. */
	assert_int_equal(atomic_load(&f->a[B].calls), 1);
	assert_int_equal(atomic_load(&f->a[B].cancels), 0);
	assert_int_equal(tm_join(*hb, 0, NULL, NULL), -ETIMEDOUT);
	assert_int_equal(atomic_load(&f->a[A].calls), 2);
	assert_int_equal(atomic_load(&f->a[C].calls), 2);
	finish_scenario(f, g);
}

static void test_one_for_one(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "one", TM_GROUP_OPTS(.strategy = TM_ONE_FOR_ONE));
	tm_task **hb = hold(f), **hd = hold(f);
	spawn_scenario(f, g, hb, hd);
	sleep_ms(200);
	for (int i = 0; i < 4; i++) {
		if (i == A)
			continue;
		assert_int_equal(atomic_load(&f->a[i].calls), 1);
		assert_int_equal(atomic_load(&f->a[i].cancels), 0);
	}
	assert_int_equal(tm_join(*hb, 0, NULL, NULL), -ETIMEDOUT);
	assert_int_equal(tm_join(*hd, 0, NULL, NULL), -ETIMEDOUT);
	assert_int_equal(atomic_load(&f->a[A].calls), 2);
	finish_scenario(f, g);
}

/* A cancel that comes while a strategy stops a critical peer is not lost to
 * the stop: the peer ends instead of being resumed. C takes 300 ms to stop;
 * the cancel comes in that time. */
static void cancel_while_stopping(struct fx *f, bool whole_group)
{
	tm_group *g = new_group(f, "stopping", TM_GROUP_OPTS(.strategy = TM_ONE_FOR_ALL));
	const struct tm_critical_opts *co = TM_CRITICAL_OPTS(
		.restart = TM_RESTART_ALWAYS, .backoff = { .kind = TM_BACKOFF_FIXED, .base_ms = 10 },
		.max_restarts = 5, .group = g);
	tm_task **hc = hold(f);
	f->a[0] = (struct marg){ .mode = M_UNTIL_CANCEL };
	f->a[1] = (struct marg){ .mode = M_FAIL_ONCE, .ret = 1 };
	f->a[2] = (struct marg){ .mode = M_SLOW_STOP, .ms = 300 };
	spawn_member(g, "plain", &f->a[0]);
	assert_int_equal(tm_spawn_critical(NULL, "fails", member_body, &f->a[1], co), 0);
	assert_int_equal(tm_spawn_critical(hc, "slow-stop", member_body, &f->a[2], co), 0);
	for (int i = 0; i < 3; i++)
		assert_true(wait_count(&f->a[i].calls, 1, BOUND_MS));
	atomic_store(&f->a[1].release, 1);
	assert_true(wait_count(&f->a[2].cancels, 1, BOUND_MS));
	if (whole_group)
		assert_true(tm_group_cancel(g) >= 1);
	else
		assert_int_equal(tm_cancel(*hc), 0);
	enum tm_status st;
	int r = tm_join(*hc, BOUND_MS, &st, NULL);
	if (r != 0)
		fail_msg("the cancelled peer did not end (runs %d): resumed after its cancel?",
		         atomic_load(&f->a[2].calls));
	*hc = NULL;
	assert_int_equal(st, TM_CANCELLED);
	assert_int_equal(atomic_load(&f->a[2].calls), 1);
	if (!whole_group)
		tm_group_cancel(g);
	struct tm_result res[3];
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, res, 3), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(res[i].status, TM_CANCELLED);
	free_group(f, g);
}

static void test_group_cancel_while_stopping(void **state)
{
	cancel_while_stopping(*state, true);
}

static void test_task_cancel_while_stopping(void **state)
{
	cancel_while_stopping(*state, false);
}

/* A critical member that gives up ends for good: with cancel_on_failure, that
 * failure cancels the rest, whereas its restarts did not. */
static void test_critical_escalation_fails_group(void **state)
{
	struct fx *f = *state;
	tm_group *g = new_group(f, "escalate", TM_GROUP_OPTS(.cancel_on_failure = true));
	f->a[0] = (struct marg){ .mode = M_UNTIL_CANCEL };
	f->a[1] = (struct marg){ .mode = M_RETURN, .ret = 3 };
	spawn_member(g, "bystander", &f->a[0]);
	assert_int_equal(tm_spawn_critical(NULL, "flaky", member_body, &f->a[1],
	                 TM_CRITICAL_OPTS(.restart = TM_RESTART_ON_FAILURE, .max_restarts = 2,
	                                  .backoff = { .kind = TM_BACKOFF_FIXED, .base_ms = 5 }, .group = g)), 0);
	struct tm_result res[2];
	assert_int_equal(tm_group_wait_all(g, BOUND_MS, res, 2), 2);
	assert_int_equal(atomic_load(&f->a[1].calls), 3);   /* the first run and 2 restarts */
	assert_int_equal(res[1].status, TM_FAILED);
	assert_int_equal(res[1].rc, 3);
	assert_int_equal(res[0].status, TM_CANCELLED);
	free_group(f, g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_results_in_spawn_order),
		T(test_wait_all_empty_and_null),
		T(test_wait_all_counts_later_members),
		T(test_member_cannot_wait_for_its_group),
		T(test_cancel_on_failure),
		T(test_cancel_is_not_a_failure),
		T(test_failure_without_option_cancels_nothing),
		T(test_cancel_during_wait),
		T(test_free_waits_for_members),
		T(test_concurrency_limit),
		T(test_free_wakes_waiting_spawner),
		T(test_cancel_after_end_keeps_success),
		T(test_cancel_race_with_return),
		T(test_try_spawn_needs_group),
		T(test_group_new_checks),
		T(test_group_opts_short_sz),
		T(test_chain_all_succeed),
		T(test_chain_stops_at_failure),
		T(test_chain_step_timeout),
		T(test_chain_args),
		T(test_chain_inside_task),
		T(test_one_for_all),
		T(test_rest_for_one),
		T(test_one_for_one),
		T(test_critical_escalation_fails_group),
		T(test_group_cancel_while_stopping),
		T(test_task_cancel_while_stopping),
#undef T
	};
	return cmocka_run_group_tests(tests, suite_setup, NULL);
}
