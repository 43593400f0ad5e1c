/* Task threads. Each task runs on a thread of its own; a thread whose task
 * ends offers itself as idle and takes the next task handed over through the
 * queue, so bursts of short tasks run at pool speed, while a spawn that finds
 * no idle thread creates one at once and never waits behind a busy task.
 *
 * The hand-over is counted: `reservable` is the number of idle threads not yet
 * promised a task. A spawner that takes one from it owes that thread exactly
 * one queued task, so the queue never holds more tasks than there are idle
 * threads to run them, and an idle thread may retire only by taking itself out
 * of `reservable` first. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include "core.h"
#include "futex.h"
#include "internal.h"

#define SPIN_NS 30000ull   /* one idle thread watches the queue this long before sleeping */
#define BURST_NS 20000ull  /* a thread came back to idle this recently: more will */
#define HANDOFF_WAIT_NS 2000ull

static struct {
	struct tm__queue q;
	pthread_attr_t attr;
	size_t default_stack;
	unsigned max_idle;
	uint64_t keepalive_ns;
	_Alignas(64) _Atomic int64_t reservable;
	_Atomic int64_t idle_threads;
	_Atomic int32_t spinners;
	_Atomic uint64_t last_idle_ns;            /* when a thread last came back to idle */
	_Alignas(64) _Atomic uint32_t work_seq;   /* eventcount the sleepers wait on */
	_Atomic int32_t sleepers;
	_Alignas(64) _Atomic uint32_t live;       /* threads alive; futex for tm__pool_stop */
	_Atomic bool stopping;
	bool ready;
} P;

int tm__pool_init(const struct tm__config *c)
{
	if (!P.ready) {
		size_t cap = c->max_idle_threads < 64 ? 64 : c->max_idle_threads;
		if (cap > 65536)
			cap = 65536;   /* more idle threads than cells just fall back to new threads */
		if (tm__queue_init(&P.q, cap) < 0)
			return tm__fail(ENOMEM, "cannot allocate the task hand-over queue");
		P.ready = true;
	}
	pthread_attr_init(&P.attr);
	pthread_attr_setdetachstate(&P.attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&P.attr, c->stack_size);
	P.default_stack = c->stack_size;
	P.max_idle = c->max_idle_threads;
	P.keepalive_ns = c->thread_keepalive_ms * 1000000ull;
	atomic_store(&P.stopping, false);
	return 0;
}

size_t tm__pool_default_stack(void)
{
	return P.default_stack;
}

static bool take_reservation(_Atomic int64_t *counter)
{
	int64_t n = atomic_load_explicit(counter, memory_order_relaxed);
	while (n > 0) {
		if (atomic_compare_exchange_weak(counter, &n, n - 1))
			return true;
	}
	return false;
}

static bool queue_maybe_nonempty(void)
{
	return atomic_load(&P.q.head) != atomic_load(&P.q.tail);
}

static void wake_one_sleeper(void)
{
	if (atomic_load(&P.sleepers) > 0)
		tm__futex_wake(&P.work_seq, 1);
}

static bool enter_idle(void)
{
	int64_t n = atomic_load(&P.idle_threads);
	do {
		if (n >= (int64_t)P.max_idle || atomic_load(&P.stopping))
			return false;
	} while (!atomic_compare_exchange_weak(&P.idle_threads, &n, n + 1));
	atomic_fetch_add(&P.reservable, 1);
	atomic_store_explicit(&P.last_idle_ns, tm__now_ns(), memory_order_relaxed);
	return true;
}

/* Watches the queue for a short while; true when it got a task. */
static bool spin_for_task(struct tm__desc *d)
{
	int32_t zero = 0;
	if (!atomic_compare_exchange_strong(&P.spinners, &zero, 1))
		return false;
	uint64_t until = tm__now_ns() + SPIN_NS;
	bool got = false;
	do {
		for (int i = 0; i < 64 && !(got = tm__queue_pop(&P.q, d)); i++)
			__builtin_ia32_pause();
	} while (!got && tm__now_ns() < until && !atomic_load(&P.stopping));
	atomic_store(&P.spinners, 0);
	/* Spawners skip the wake-up while someone spins; pass on what is left. */
	if (got && queue_maybe_nonempty())
		wake_one_sleeper();
	return got;
}

/* Waits for a task as an idle thread; false when the thread should exit. */
static bool idle_wait(struct tm__desc *d)
{
	if (!enter_idle())
		return false;
	uint64_t deadline = tm__now_ns() + P.keepalive_ns;
	bool spun = false;
	for (;;) {
		uint32_t seq = atomic_load(&P.work_seq);
		if (tm__queue_pop(&P.q, d) || (!spun && (spun = true) && spin_for_task(d)))
			break;
		bool expired = tm__now_ns() >= deadline;
		if ((expired || atomic_load(&P.stopping)) && take_reservation(&P.reservable)) {
			atomic_fetch_sub(&P.idle_threads, 1);
			return false;
		}
		if (expired)   /* promised to a spawner that has yet to queue its task */
			deadline = tm__now_ns() + 1000000;
		atomic_fetch_add(&P.sleepers, 1);
		tm__futex_wait(&P.work_seq, seq, deadline);
		atomic_fetch_sub(&P.sleepers, 1);
	}
	atomic_fetch_sub(&P.idle_threads, 1);
	return true;
}

static void *task_thread(void *arg)
{
	struct tm__desc d = *(struct tm__desc *)arg;
	free(arg);
	bool cached = d.stack_default;
	tm__contain_thread_start();
	/* A thread that ran a contained fault is never reused. */
	bool reusable = tm__run(&d);
	while (cached && reusable && idle_wait(&d))
		reusable = tm__run(&d);
	tm__contain_thread_exit();
	if (atomic_fetch_sub(&P.live, 1) == 1)
		tm__futex_wake(&P.live, INT_MAX);
	return NULL;
}

/* Since Linux 6.16 a process has a private futex hash table that starts
 * small (16 buckets on 2 CPUs). With tens of thousands of task threads asleep
 * in tm_sleep_ms, every cancel would walk a bucket of thousands of waiters, so
 * the table grows with the thread count. Older kernels refuse the call;
 * they use the global table, which is sized for the machine. */
#define PR_FUTEX_HASH_ 78
#define PR_FUTEX_HASH_SET_SLOTS_ 1
#define FUTEX_HASH_MIN_THREADS 1024u
#define FUTEX_HASH_MAX_SLOTS 65536u

static void grow_futex_hash(uint32_t threads)
{
	static _Atomic uint32_t sized_for;
	if (threads < FUTEX_HASH_MIN_THREADS || (threads & (threads - 1)))
		return;   /* only at powers of two from 1024 on: a handful of calls in a process's life */
	uint32_t prev = atomic_load(&sized_for);
	if (threads <= prev || !atomic_compare_exchange_strong(&sized_for, &prev, threads))
		return;
	uint32_t slots = threads / 2 > FUTEX_HASH_MAX_SLOTS ? FUTEX_HASH_MAX_SLOTS : threads / 2;
	prctl(PR_FUTEX_HASH_, PR_FUTEX_HASH_SET_SLOTS_, (unsigned long)slots, 0ul, 0ul);
}

static int new_thread(const struct tm__desc *d, size_t stack_size)
{
	struct tm__desc *arg = malloc(sizeof(*arg));
	if (!arg)
		return tm__fail(ENOMEM, "out of memory starting a task thread");
	*arg = *d;
	pthread_attr_t own, *attr = &P.attr;
	if (!d->stack_default) {
		attr = &own;
		pthread_attr_init(&own);
		pthread_attr_setdetachstate(&own, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&own, stack_size);
	}
	grow_futex_hash(atomic_fetch_add(&P.live, 1) + 1);
	pthread_t t;
	int r = pthread_create(&t, attr, task_thread, arg);
	if (attr == &own)
		pthread_attr_destroy(&own);
	if (r == 0)
		return 0;
	atomic_fetch_sub(&P.live, 1);
	free(arg);
	return tm__fail(r == EAGAIN ? EAGAIN : ENOMEM,
	                "the kernel refused a new task thread (%s): see kernel.threads-max, kernel.pid_max, "
	                "vm.max_map_count and ulimit -u", strerror(r));
}

/* In a burst of short tasks, threads come back to idle every few
 * microseconds and the one that does takes the queued task at once: waking a
 * sleeper for it as well would cost a system call and a context switch, the
 * price that otherwise dominates a burst. So while threads have been coming
 * back recently, the spawner gives them a moment to take the task before it
 * wakes anyone. Paced spawns, with no thread back lately, wake at once. */
static void make_sure_someone_takes_it(void)
{
	if (atomic_load(&P.spinners) != 0)
		return;
	uint64_t now = tm__now_ns();
	if (now - atomic_load_explicit(&P.last_idle_ns, memory_order_relaxed) < BURST_NS) {
		uint64_t until = now + HANDOFF_WAIT_NS;
		while (queue_maybe_nonempty() && tm__now_ns() < until)
			__builtin_ia32_pause();
		if (!queue_maybe_nonempty())
			return;
	}
	wake_one_sleeper();
}

int tm__pool_submit(const struct tm__desc *d, size_t stack_size)
{
	if (d->stack_default && take_reservation(&P.reservable)) {
		if (tm__queue_push(&P.q, d)) {
			atomic_fetch_add(&P.work_seq, 1);
			make_sure_someone_takes_it();
			return 0;
		}
		atomic_fetch_add(&P.reservable, 1);
	}
	return new_thread(d, stack_size);
}

/* Every task has ended: send the idle threads away and wait until all are gone. */
void tm__pool_stop(void)
{
	atomic_store(&P.stopping, true);
	atomic_fetch_add(&P.work_seq, 1);
	tm__futex_wake(&P.work_seq, INT_MAX);
	uint32_t n;
	while ((n = atomic_load(&P.live)) != 0)
		tm__futex_wait(&P.live, n, 0);
	pthread_attr_destroy(&P.attr);
}

/* In a forked child only the forking thread exists: forget the others. */
void tm__pool_reset_after_fork(void)
{
	atomic_store(&P.reservable, 0);
	atomic_store(&P.idle_threads, 0);
	atomic_store(&P.spinners, 0);
	atomic_store(&P.sleepers, 0);
	atomic_store(&P.live, 0);
	/* The queue may hold the parent's tasks: start a new one. */
	tm__queue_free(&P.q);
	P.ready = false;
}
