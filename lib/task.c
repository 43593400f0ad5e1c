/* Running tasks: one incarnation after another on a task thread, the end of
 * a task, and what a task body may call (tm_cancelled, tm_sleep_ms,
 * tm_panic). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core.h"
#include "futex.h"
#include "internal.h"
#include "usdt.h"

#define MESSAGE_MAX     512     /* panic messages are kept up to this many bytes */
#define RECLAIM_BATCH   2
#define JUMP_PANIC      1
#define JUMP_CRASH      2

/* What the calling thread is running, when it is a task thread. Initial-exec:
 * the fault handler reads it on any thread, where a lazily allocated TLS
 * block could mean a call to malloc inside a signal handler. */
static __attribute__((tls_model("initial-exec"))) _Thread_local struct {
	bool in_task;               /* inside a body: tm_cancelled and the fault handler apply */
	unsigned in_lib;            /* inside a library call made by the body: faults are not the task's */
	bool retire;                /* ran a contained fault: the thread is not reused */
	uint32_t slot;
	uint64_t id;
	uint64_t deadline_ns;
	pid_t tid;
	char thread_name[16];
	struct tm_crash_info crash;
	sigjmp_buf jmp;             /* tm_panic and the fault handler leave the body here */
} tl;

/* One run of a body. */
struct run {
	uint64_t ready_ns;          /* when it could start: spawn, or the end of a restart delay */
	uint64_t start_ns, end_ns, cpu_ns;
	int rc, status;
	bool panicked, crashed;
};

bool tm__in_task(void)
{
	return tl.in_task;
}

void tm__task_forget_after_fork(void)
{
	tl.in_task = false;
	tl.retire = false;
	tl.thread_name[0] = '\0';
	tl.tid = 0;
}

sigjmp_buf *tm__task_crash_jmp(void)
{
	return tl.in_task && !tl.in_lib ? &tl.jmp : NULL;
}

/* Around library code that writes caller memory while holding a lock: a
 * fault there is the library's, and containing it would leave the lock held. */
void tm__lib_enter(void)
{
	tl.in_lib++;
}

void tm__lib_leave(void)
{
	tl.in_lib--;
}

void tm__task_note_crash(int signo, int code, uint64_t addr, uint64_t ip)
{
	tl.crash = (struct tm_crash_info){ .signo = signo, .code = code, .addr = addr, .ip = ip };
}

/* ---- bits of a run ---------------------------------------------------------- */

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The kernel keeps 15 bytes of a thread name; renaming costs a system call,
 * so a thread that runs a task of the same name again skips it. */
static void name_thread(uint32_t slot)
{
	char name[16];
	memcpy(name, tm__g.slots[slot].name, 15);
	name[15] = '\0';
	if (strcmp(name, tl.thread_name) != 0) {
		pthread_setname_np(pthread_self(), name);
		memcpy(tl.thread_name, name, sizeof(name));
	}
}

static void record_latency(int type, uint64_t ns)
{
	struct tm_shm_type *t = &tm__g.types[type];
	__atomic_fetch_add(&t->hist[tm_hist_bucket(ns)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&t->latency_count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&t->latency_sum_ns, ns, __ATOMIC_RELAXED);
	uint64_t max = __atomic_load_n(&t->latency_max_ns, __ATOMIC_RELAXED);
	while (ns > max && !__atomic_compare_exchange_n(&t->latency_max_ns, &max, ns, true,
	                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* Keeps a panic message or crash details with the record (one per record:
 * a later incarnation's replaces an earlier one's). */
static void attach_extra(uint32_t slot, const char *msg, const struct tm_crash_info *crash)
{
	/* Published first: readers that see the status find the message. */
	tm__message_publish(slot, msg, crash ? TM_SHM_MSG_CRASH : TM_SHM_MSG_PANIC);
	size_t len = strlen(msg) + 1;
	struct tm__extra *x = malloc(sizeof(*x) + len);
	if (!x)
		return;
	memset(x, 0, sizeof(*x));
	if (crash) {
		x->crash = *crash;
		x->crashed = true;
	}
	memcpy(x->message, msg, len);
	pthread_mutex_lock(&tm__g.msg_lock);
	struct tm__extra *old = tm__g.ctl[slot].extra;
	tm__g.ctl[slot].extra = x;
	pthread_mutex_unlock(&tm__g.msg_lock);
	int64_t delta = (int64_t)(sizeof(*x) + len);
	if (old) {
		delta -= (int64_t)(sizeof(*old) + strlen(old->message) + 1);
		free(old);
	}
	tm__account_bytes(0, delta);
}

static void keep_crash(uint32_t slot)
{
	char msg[128];
	const char *name = sigabbrev_np(tl.crash.signo);
	snprintf(msg, sizeof(msg), "SIG%s (si_code %d) at address 0x%llx, instruction 0x%llx",
	         name ? name : "?", tl.crash.code, (unsigned long long)tl.crash.addr,
	         (unsigned long long)tl.crash.ip);
	attach_extra(slot, msg, &tl.crash);
}

/* Calls the body; tm_panic and a contained fault come back here. Kept apart
 * so that nothing live across sigsetjmp needs to be volatile. */
static int call_body(const struct tm__desc *d, int *rc)
{
	int jumped = sigsetjmp(tl.jmp, tm__contain_enabled());
	if (jumped)
		return jumped;
	tl.in_task = true;
	*rc = d->fn(d->arg);
	tl.in_task = false;
	return 0;
}

/* What happened, in order of precedence: a fault or a panic is what ended
 * the body; a deadline seen or a cancel delivered before the body returned
 * explains any other end; a deadline passed unseen still counts as the
 * timeout firing. */
static int judge(const struct run *r, uint64_t state, uint64_t deadline)
{
	if (r->crashed)
		return TM_CRASHED;
	if (r->panicked)
		return TM_PANICKED;
	if (state & TM__S_TIMEOUT)
		return TM_TIMED_OUT;
	if (state & TM__S_CANCEL)
		return TM_CANCELLED;
	if (deadline && r->end_ns >= deadline)
		return TM_TIMED_OUT;
	return r->rc == 0 ? TM_SUCCEEDED : TM_FAILED;
}

static void run_body(const struct tm__desc *d, int type, uint64_t id, struct run *r)
{
	uint32_t slot = d->slot;
	r->start_ns = tm__now_ns();
	r->rc = 0;
	r->cpu_ns = 0;
	r->panicked = r->crashed = false;
	tm__slot_publish_start(slot, (uint32_t)tl.tid, r->start_ns);
	if (tm__g.cfg.enable_task_metrics)
		record_latency(type, r->start_ns - r->ready_ns);
	if (d->traced)
		TM_PROBE_START(id);
	if (!(atomic_load(&tm__g.ctl[slot].state) & TM__S_CANCEL)) {
		uint64_t cpu0 = thread_cpu_ns();
		int jumped = call_body(d, &r->rc);
		tl.in_task = false;
		r->panicked = jumped == JUMP_PANIC;
		if (jumped == JUMP_CRASH) {
			r->crashed = tl.retire = true;
			keep_crash(slot);
		}
		r->cpu_ns = thread_cpu_ns() - cpu0;
	}
	r->end_ns = tm__now_ns();
	r->status = judge(r, atomic_load(&tm__g.ctl[slot].state), d->deadline_ns);
}

static const enum tm_counter status_counter[TM_STATUS_COUNT] = {
	[TM_SUCCEEDED] = TM_C_SUCCEEDED, [TM_FAILED] = TM_C_FAILED, [TM_PANICKED] = TM_C_PANICKED,
	[TM_CANCELLED] = TM_C_CANCELLED, [TM_TIMED_OUT] = TM_C_TIMED_OUT, [TM_CRASHED] = TM_C_CRASHED,
};

/* The task is over: its last word goes to the record, the counters, the
 * probes, its group and its holders, in that order. */
static void finish(const struct tm__desc *d, int type, uint64_t id, struct run *r)
{
	uint64_t old = atomic_fetch_or(&tm__g.ctl[d->slot].state, TM__S_DONE);
	int status = judge(r, old, d->deadline_ns);
	uint64_t end = r->end_ns ? r->end_ns : tm__now_ns();
	tm__slot_publish_end(d->slot, status, r->rc, end, r->cpu_ns);
	tm__count(type, status_counter[status], 1);
	tm__unadmit(type);
	if (d->traced)
		TM_PROBE_END(id, status, r->rc);
	/* Retired before anyone is told: a joiner that spawns at once must find
	 * the record reclaimable (a handle's pin still keeps it until released). */
	tm__slot_retire(d->slot);
	if (d->group)
		tm__group_member_ended(d->group, d->member, status, r->rc);
	if (d->handle)
		tm__finish_handle(d->handle, status, r->rc);
	tm__crit_free(d->crit);
	tm__reclaim(end, tm__g.cfg.task_retention_ms * 1000000ull, RECLAIM_BATCH, false);
}

/* ---- between incarnations of a critical task ------------------------------------ */

enum wake { WAKE_TIME, WAKE_CANCEL, WAKE_RESTART };

/* Sleeps on the record's state word until `until` (0 = no limit) unless a
 * cancel or a group's restart request comes first; `parked` marks the wait as
 * one the group ends with tm__peer_resume. */
static enum wake wait_on_state(uint32_t slot, uint64_t until, bool parked)
{
	_Atomic uint64_t *st = &tm__g.ctl[slot].state;
	for (;;) {
		uint64_t v = atomic_load(st);
		if (v & TM__S_CANCEL && !(v & TM__S_RESTART))
			return WAKE_CANCEL;
		if (!parked && (v & TM__S_RESTART))
			return WAKE_RESTART;
		if (parked ? !(v & TM__S_PARKED) : (until && tm__now_ns() >= until))
			return WAKE_TIME;
		if (!atomic_compare_exchange_weak(st, &v, v | TM__S_SLEEPING))
			continue;
		tm__futex_wait(tm__state_word(slot), (uint32_t)(v | TM__S_SLEEPING), parked ? 0 : until);
		atomic_fetch_and(st, ~(uint64_t)TM__S_SLEEPING);
	}
}

/* A group stops this task to restart it: park until it says go. */
static enum wake park(uint32_t slot)
{
	_Atomic uint64_t *st = &tm__g.ctl[slot].state;
	uint64_t v = atomic_load(st);
	do {
		if (!(v & TM__S_RESTART))   /* a real cancel came on top of the stop */
			return WAKE_CANCEL;
	} while (!atomic_compare_exchange_weak(st, &v, (v & ~(uint64_t)(TM__S_CANCEL | TM__S_RESTART | TM__S_TIMEOUT)) |
	                                             TM__S_PARKED));
	tm__futex_wake(tm__state_word(slot), INT_MAX);
	return wait_on_state(slot, 0, true);
}

static void note_restart(const struct tm__desc *d, int type, uint64_t id, const struct run *r,
                         unsigned attempt, uint64_t delay_ms)
{
	tm__count(type, TM_C_RESTARTS, 1);
	tm__slot_publish_restart(d->slot, r->rc, r->cpu_ns, (uint32_t)d->crit->restarts);
	TM_PROBE_RESTART(id, attempt, delay_ms);
}

/* A restart that must happen on another thread (this one ran a contained
 * fault): the next incarnation is handed over with its delay. */
static bool hand_over(const struct tm__desc *d, uint64_t delay_ms)
{
	struct tm__desc next = *d;
	next.resume_at_ns = tm__now_ns() + delay_ms * 1000000ull;
	next.stack_default = 0;  /* a fresh thread of its own */
	size_t stack = d->crit->o.stack_size ? d->crit->o.stack_size : tm__pool_default_stack();
	return tm__pool_submit(&next, stack) == 0;
}

enum step { STEP_END, STEP_AGAIN, STEP_MOVED };

/* After an incarnation of a critical task: restart it (now or after a delay),
 * or let it end. */
static enum step supervise(const struct tm__desc *d, int type, uint64_t id, struct run *r)
{
	struct tm__crit *c = d->crit;
	uint64_t v = atomic_load(&tm__g.ctl[d->slot].state);
	if (v & TM__S_RESTART) {          /* stopped by its group, not ended */
		if (park(d->slot) == WAKE_CANCEL) {
			r->panicked = r->crashed = false;
			return STEP_END;
		}
		c->restarts++;
		note_restart(d, type, id, r, c->attempt, 0);
		r->ready_ns = tm__now_ns();
		return STEP_AGAIN;
	}
	uint64_t delay_ms;
	unsigned attempt;
	if ((v & TM__S_CANCEL) || !tm__crit_wants_restart(c, r->status, r->rc, d->arg))
		return STEP_END;
	if (!tm__crit_plan_restart(c, r->end_ns, r->end_ns - r->start_ns, &delay_ms, &attempt)) {
		tm__count(type, TM_C_ESCALATIONS, 1);
		TM_PROBE_GIVEUP(id, c->restarts);
		return STEP_END;
	}
	tm__count(type, status_counter[r->status], 1);
	note_restart(d, type, id, r, attempt, delay_ms);
	if (d->group)
		tm__group_restart_peers(d->group, d->member);
	if (tl.retire)
		return hand_over(d, delay_ms) ? STEP_MOVED : STEP_END;
	uint64_t until = tm__now_ns() + delay_ms * 1000000ull;
	enum wake w = wait_on_state(d->slot, until, false);
	if (w == WAKE_RESTART)
		w = park(d->slot);
	if (w == WAKE_CANCEL) {
		/* Cancelled between runs: it ends cancelled, now. */
		r->panicked = r->crashed = false;
		r->end_ns = tm__now_ns();
		return STEP_END;
	}
	atomic_fetch_and(&tm__g.ctl[d->slot].state, ~(uint64_t)TM__S_TIMEOUT);
	r->ready_ns = tm__now_ns();
	return STEP_AGAIN;
}

/* A critical task handed over after a fault waits out its delay first. */
static bool delayed_start(const struct tm__desc *d, struct run *r)
{
	enum wake w = wait_on_state(d->slot, d->resume_at_ns, false);
	if (w == WAKE_RESTART)
		w = park(d->slot);
	r->ready_ns = tm__now_ns();
	return w != WAKE_CANCEL;
}

bool tm__run(const struct tm__desc *d)
{
	uint32_t slot = d->slot;
	uint64_t id = __atomic_load_n(&tm__g.slots[slot].id, __ATOMIC_RELAXED);
	int type = __atomic_load_n(&tm__g.slots[slot].type, __ATOMIC_RELAXED);
	struct run r = { .ready_ns = tm__g.slots[slot].spawn_ns };
	if (!tl.tid)
		tl.tid = gettid();
	tl.slot = slot;
	tl.id = id;
	tl.deadline_ns = d->deadline_ns;
	name_thread(slot);
	if (d->resume_at_ns && !delayed_start(d, &r)) {
		finish(d, type, id, &r);
		return !tl.retire;
	}
	for (;;) {
		run_body(d, type, id, &r);
		enum step s = d->crit ? supervise(d, type, id, &r) : STEP_END;
		if (s == STEP_MOVED)
			return false;
		if (s == STEP_END)
			break;
	}
	finish(d, type, id, &r);
	return !tl.retire;
}

/* ---- inside a task ---------------------------------------------------------------- */

bool tm_cancelled(void)
{
	if (!tl.in_task)
		return false;
	_Atomic uint64_t *st = &tm__g.ctl[tl.slot].state;
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);
	if (v & (TM__S_CANCEL | TM__S_TIMEOUT))
		return true;
	if (tl.deadline_ns && tm__now_ns() >= tl.deadline_ns) {
		atomic_fetch_or(st, TM__S_TIMEOUT);
		return true;
	}
	return false;
}

static int plain_sleep(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return 0;
}

int tm_sleep_ms(uint64_t ms)
{
	if (!tl.in_task)
		return plain_sleep(ms);
	if (!ms || tm_cancelled())
		return tm_cancelled() ? -ECANCELED : 0;
	_Atomic uint64_t *st = &tm__g.ctl[tl.slot].state;
	uint64_t now = tm__now_ns(), ns, end;
	if (__builtin_mul_overflow(ms, 1000000ull, &ns) || __builtin_add_overflow(now, ns, &end))
		end = UINT64_MAX;
	for (;;) {
		if (tm_cancelled())
			return -ECANCELED;
		if (tm__now_ns() >= end)
			return 0;
		uint64_t wake = tl.deadline_ns && tl.deadline_ns < end ? tl.deadline_ns : end;
		uint64_t v = atomic_load(st);
		do {
			if (v & TM__S_CANCEL)
				return -ECANCELED;
		} while (!atomic_compare_exchange_weak(st, &v, v | TM__S_SLEEPING));
		tm__futex_wait(tm__state_word(tl.slot), (uint32_t)(v | TM__S_SLEEPING), wake);
		atomic_fetch_and(st, ~(uint64_t)TM__S_SLEEPING);
	}
}

_Noreturn void tm_panic(const char *fmt, ...)
{
	char msg[MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!tl.in_task) {
		fprintf(stderr, "taskmon: tm_panic outside a task: %s\n", msg);
		abort();
	}
	attach_extra(tl.slot, msg, NULL);
	tl.in_task = false;
	siglongjmp(tl.jmp, JUMP_PANIC);
}

uint64_t tm_current_id(void)
{
	return tl.in_task ? tl.id : 0;
}
