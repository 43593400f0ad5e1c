/* Spawning, running, joining and cancelling tasks. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core.h"
#include "futex.h"
#include "internal.h"
#include "usdt.h"

#define MAX_OPTS_SZ     4096    /* a larger sz is a caller bug, not a newer header */
#define MESSAGE_MAX     512     /* panic messages are kept up to this many bytes */
#define RECLAIM_BATCH   2       /* records freed per spawn or end: enough to keep up, never a pause */

/* What the calling thread is running, when it is a task thread. */
static _Thread_local struct {
	bool in_task;
	uint32_t slot;
	uint64_t id;
	uint64_t deadline_ns;
	pid_t tid;
	char thread_name[16];
	jmp_buf panic_jmp;
} tl;

bool tm__in_task(void)
{
	return tl.in_task;
}

/* A task that forks: its child is not a task of the child's registry. */
void tm__task_forget_after_fork(void)
{
	tl.in_task = false;
	tl.thread_name[0] = '\0';
	tl.tid = 0;
}

/* ---- spawn ---------------------------------------------------------------- */

static int read_opts(const struct tm_spawn_opts *u, struct tm_spawn_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (!u)
		return 0;
	if (u->sz < sizeof(u->sz) || u->sz > MAX_OPTS_SZ)
		return tm__fail(EINVAL, "spawn options have sz %zu; fill them with TM_SPAWN_OPTS() or set sz to "
		                "sizeof(struct tm_spawn_opts) (%zu)", u->sz, sizeof(*o));
	memcpy(o, u, u->sz < sizeof(*o) ? u->sz : sizeof(*o));
	for (size_t i = sizeof(*o); i < u->sz; i++)
		if (((const unsigned char *)u)[i])
			return tm__fail(EINVAL, "spawn options set fields this library does not know (sz %zu > %zu): "
			                "was the program built against a newer taskmon.h?", u->sz, sizeof(*o));
	return 0;
}

static int check_name(const char *name)
{
	if (!name)
		return tm__fail(EINVAL, "task name is NULL");
	size_t n = strnlen(name, TM_NAME_MAX);
	if (n == 0)
		return tm__fail(EINVAL, "task name is empty; it must be 1 to %d bytes of printable ASCII", TM_NAME_MAX - 1);
	if (n >= TM_NAME_MAX)
		return tm__fail(EINVAL, "task name '%.*s...' is longer than %d bytes", 16, name, TM_NAME_MAX - 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c > 0x7e)
			return tm__fail(EINVAL, "task name has byte 0x%02x at offset %zu; only printable ASCII is allowed", c, i);
	}
	return 0;
}

static const char *limit_key(int type, char *buf, size_t len)
{
	if (type < TM_BUILTIN_TYPES)
		snprintf(buf, len, "max_concurrent_%s in [task_limits]", tm__builtin_type_names[type]);
	else
		snprintf(buf, len, "max_concurrent in [type.%s]", tm__g.types[type].name);
	return buf;
}

/* Counts the task as running unless that breaks a limit. */
static int admit(int type)
{
	struct tm__lib *g = &tm__g;
	uint64_t *running = &g->types[type].counters[TM_C_RUNNING];
	uint64_t lim = g->type_limit[type];
	uint64_t n = __atomic_add_fetch(running, 1, __ATOMIC_RELAXED);
	if (lim && n > lim) {
		char key[80];
		__atomic_fetch_sub(running, 1, __ATOMIC_RELAXED);
		tm__count(type, TM_C_REJECTED, 1);
		return tm__fail(EAGAIN, "type '%s' already runs %llu tasks, its limit (%s)", g->types[type].name,
		                (unsigned long long)lim, limit_key(type, key, sizeof(key)));
	}
	uint64_t total = atomic_fetch_add_explicit(&g->running_total, 1, memory_order_relaxed) + 1;
	if (g->cfg.max_concurrent_total && total > g->cfg.max_concurrent_total) {
		__atomic_fetch_sub(running, 1, __ATOMIC_RELAXED);
		atomic_fetch_sub_explicit(&g->running_total, 1, memory_order_relaxed);
		tm__count(type, TM_C_REJECTED, 1);
		return tm__fail(EAGAIN, "%llu tasks already run, the limit max_concurrent_total in [task_limits]",
		                (unsigned long long)g->cfg.max_concurrent_total);
	}
	return 0;
}

static void unadmit(int type)
{
	__atomic_fetch_sub(&tm__g.types[type].counters[TM_C_RUNNING], 1, __ATOMIC_RELAXED);
	atomic_fetch_sub_explicit(&tm__g.running_total, 1, memory_order_relaxed);
}

static int resolve(const struct tm_spawn_opts *o, size_t *stack, uint64_t *timeout_ms)
{
	int ntypes = (int)__atomic_load_n(&tm__g.hdr->types_used, __ATOMIC_ACQUIRE);
	if (o->type < 0 || o->type >= ntypes)
		return tm__fail(EINVAL, "task type %d is not registered (%d types are)", o->type, ntypes);
	*stack = o->stack_size ? o->stack_size : tm__g.type_stack[o->type];
	if (!*stack)
		*stack = tm__pool_default_stack();
	if (*stack < 16384)
		return tm__fail(EINVAL, "stack size %zu is below the minimum of 16384 bytes", *stack);
	*timeout_ms = o->timeout_ms ? o->timeout_ms : tm__g.type_timeout_ms[o->type];
	return 0;
}

static struct tm_task *new_handle(uint64_t id, uint32_t slot)
{
	struct tm_task *h = malloc(sizeof(*h));
	if (!h)
		return NULL;
	h->id = id;
	h->slot = slot;
	h->epoch = tm__g.epoch;
	atomic_init(&h->done, 0);
	atomic_init(&h->waiters, 0);
	atomic_init(&h->refs, 2);
	h->status = TM_RUNNING;
	h->rc = 0;
	tm__account_bytes(0, sizeof(*h));
	return h;
}

/* True while the registry the handle was made in is the current one. */
static bool handle_current(const struct tm_task *h)
{
	return atomic_load(&tm__g.ready) && h->epoch == tm__g.epoch;
}

static void put_handle(struct tm_task *h)
{
	if (atomic_fetch_sub(&h->refs, 1) == 1) {
		if (handle_current(h))
			tm__account_bytes(0, -(int64_t)sizeof(*h));
		free(h);
	}
}

static uint64_t deadline_after(uint64_t now, uint64_t ms)
{
	if (!ms)
		return 0;
	uint64_t ns;
	if (__builtin_mul_overflow(ms, 1000000ull, &ns) || __builtin_add_overflow(now, ns, &ns))
		return UINT64_MAX;
	return ns;
}

/* Undoes a spawn whose thread could not be had: nothing stays half-registered. */
static void abandon(uint32_t slot, int type, uint64_t id, struct tm_task *h)
{
	unadmit(type);
	tm__count(type, TM_C_REJECTED, 1);
	TM_PROBE_END(id, (int)TM_FAILED, -EAGAIN);
	if (h) {
		tm__account_bytes(0, -(int64_t)sizeof(*h));
		free(h);
	}
	tm__slot_discard(slot);
}

int tm_spawn(tm_task **out, const char *name, tm_fn fn, void *arg, const struct tm_spawn_opts *uopts)
{
	struct tm_spawn_opts o;
	size_t stack = 0;
	uint64_t timeout_ms = 0;
	if (out)
		*out = NULL;
	int r = tm__ensure_init();
	if (r < 0 || (r = read_opts(uopts, &o)) < 0 || (r = check_name(name)) < 0 ||
	    (r = resolve(&o, &stack, &timeout_ms)) < 0)
		return r;
	if (!fn)
		return tm__fail(EINVAL, "task '%s' has no function", name);
	if (atomic_load(&tm__g.shutting_down))
		return tm__fail(EAGAIN, "taskmon is shutting down; task '%s' was not started", name);
	if ((r = admit(o.type)) < 0)
		return r;

	uint32_t slot;
	if ((r = tm__slot_alloc(&slot)) < 0) {
		unadmit(o.type);
		tm__count(o.type, TM_C_REJECTED, 1);
		return r;
	}
	uint64_t now = tm__now_ns();
	uint64_t id = __atomic_add_fetch(&tm__g.hdr->next_task_id, 1, __ATOMIC_RELAXED);
	struct tm_task *h = out ? new_handle(id, slot) : NULL;
	if (out && !h) {
		unadmit(o.type);
		tm__slot_discard(slot);
		return tm__fail(ENOMEM, "out of memory for the handle of task '%s'", name);
	}
	atomic_store_explicit(&tm__g.ctl[slot].state, (uint64_t)tm__gen(id) << 32 | (h ? TM__S_PINNED : 0),
	                      memory_order_relaxed);
	tm__slot_publish_spawn(slot, id, o.type, name, now);
	TM_PROBE_SPAWN(id, o.type, name);

	struct tm__desc d = { .fn = fn, .arg = arg, .handle = h, .slot = slot,
	                      .deadline_ns = deadline_after(now, timeout_ms),
	                      .stack_default = stack == tm__pool_default_stack() };
	if ((r = tm__pool_submit(&d, stack)) < 0) {
		abandon(slot, o.type, id, h);
		return r;
	}
	tm__count(o.type, TM_C_SPAWNED, 1);
	if (out)
		*out = h;
	tm__reclaim(now, tm__g.cfg.task_retention_ms * 1000000ull, RECLAIM_BATCH, false);
	return 0;
}

/* ---- running ---------------------------------------------------------------- */

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

/* What happened, in order of precedence: a panic is what ended the body; a
 * deadline seen or a cancel delivered before the body returned explains any
 * other end; a deadline passed unseen still counts as the timeout firing. */
static int final_status(bool panicked, int rc, uint64_t state, uint64_t deadline, uint64_t end)
{
	if (panicked)
		return TM_PANICKED;
	if (state & TM__S_TIMEOUT)
		return TM_TIMED_OUT;
	if (state & TM__S_CANCEL)
		return TM_CANCELLED;
	if (deadline && end >= deadline)
		return TM_TIMED_OUT;
	return rc == 0 ? TM_SUCCEEDED : TM_FAILED;
}

static const enum tm_counter status_counter[TM_STATUS_COUNT] = {
	[TM_SUCCEEDED] = TM_C_SUCCEEDED, [TM_FAILED] = TM_C_FAILED, [TM_PANICKED] = TM_C_PANICKED,
	[TM_CANCELLED] = TM_C_CANCELLED, [TM_TIMED_OUT] = TM_C_TIMED_OUT, [TM_CRASHED] = TM_C_CRASHED,
};

static void finish_handle(struct tm_task *h, int status, int rc)
{
	h->status = status;
	h->rc = rc;
	atomic_store(&h->done, 1);
	if (atomic_load(&h->waiters))
		tm__futex_wake(&h->done, INT_MAX);
	put_handle(h);
}

/* Runs the body; false when tm_panic ended it. Kept apart so that nothing
 * live across setjmp needs to be volatile. */
static bool call_body(const struct tm__desc *d, int *rc)
{
	if (setjmp(tl.panic_jmp))
		return false;
	*rc = d->fn(d->arg);
	return true;
}

void tm__run(const struct tm__desc *d)
{
	struct tm__lib *g = &tm__g;
	uint32_t slot = d->slot;
	uint64_t id = __atomic_load_n(&g->slots[slot].id, __ATOMIC_RELAXED);
	int type = __atomic_load_n(&g->slots[slot].type, __ATOMIC_RELAXED);
	uint64_t start = tm__now_ns();
	if (!tl.tid)
		tl.tid = gettid();
	tl.slot = slot;
	tl.id = id;
	tl.deadline_ns = d->deadline_ns;
	name_thread(slot);
	tm__slot_publish_start(slot, (uint32_t)tl.tid, start);
	if (g->cfg.enable_task_metrics)
		record_latency(type, start - g->slots[slot].spawn_ns);
	TM_PROBE_START(id);

	int rc = 0;
	bool panicked = false;
	uint64_t cpu = 0;
	if (!(atomic_load(&g->ctl[slot].state) & TM__S_CANCEL)) {
		uint64_t cpu0 = thread_cpu_ns();
		tl.in_task = true;
		panicked = !call_body(d, &rc);
		tl.in_task = false;
		cpu = thread_cpu_ns() - cpu0;
	}
	uint64_t end = tm__now_ns();
	uint64_t state = atomic_fetch_or(&g->ctl[slot].state, TM__S_DONE);
	int status = final_status(panicked, rc, state, d->deadline_ns, end);

	tm__slot_publish_end(slot, status, rc, end, cpu);
	tm__count(type, status_counter[status], 1);
	unadmit(type);
	TM_PROBE_END(id, status, rc);
	if (d->handle)
		finish_handle(d->handle, status, rc);
	tm__slot_retire(slot);
	tm__reclaim(end, g->cfg.task_retention_ms * 1000000ull, RECLAIM_BATCH, false);
}

/* ---- inside a task -------------------------------------------------------------- */

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
	_Atomic uint64_t *st = &tm__g.ctl[tl.slot].state;
	uint64_t end = deadline_after(tm__now_ns(), ms);
	if (!ms)
		return tm_cancelled() ? -ECANCELED : 0;
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
	char *msg = malloc(MESSAGE_MAX);
	va_list ap;
	va_start(ap, fmt);
	if (msg)
		vsnprintf(msg, MESSAGE_MAX, fmt, ap);
	va_end(ap);
	if (!tl.in_task) {
		fprintf(stderr, "taskmon: tm_panic outside a task: %s\n", msg ? msg : fmt);
		abort();
	}
	if (msg) {
		size_t len = strlen(msg) + 1;
		char *fit = realloc(msg, len);
		msg = fit ? fit : msg;
		pthread_mutex_lock(&tm__g.msg_lock);
		tm__g.ctl[tl.slot].message = msg;
		pthread_mutex_unlock(&tm__g.msg_lock);
		tm__account_bytes(0, (int64_t)len);
	}
	tl.in_task = false;
	longjmp(tl.panic_jmp, 1);
}

uint64_t tm_current_id(void)
{
	return tl.in_task ? tl.id : 0;
}

/* ---- handles ------------------------------------------------------------------------ */

uint64_t tm_task_id(const tm_task *t)
{
	return t ? t->id : 0;
}

void tm_release(tm_task *t)
{
	if (!t)
		return;
	/* After tm_shutdown the records are gone; the handle alone remains. */
	if (handle_current(t))
		tm__slot_unpin(t->slot);
	put_handle(t);
}

int tm_join(tm_task *t, int64_t timeout_ms, enum tm_status *status, int *rc)
{
	if (!t)
		return tm__fail(EINVAL, "tm_join got a NULL task handle");
	if (tl.in_task && tl.id == t->id)
		return tm__fail(EDEADLK, "task %llu cannot join itself", (unsigned long long)t->id);
	uint64_t deadline = timeout_ms >= 0 ? deadline_after(tm__now_ns(), (uint64_t)timeout_ms) : 0;
	if (timeout_ms == 0)
		deadline = tm__now_ns();
	while (!atomic_load(&t->done)) {
		atomic_fetch_add(&t->waiters, 1);
		int r = tm__futex_wait(&t->done, 0, deadline);
		atomic_fetch_sub(&t->waiters, 1);
		if (r == -ETIMEDOUT && !atomic_load(&t->done))
			return tm__fail(ETIMEDOUT, "task %llu is still running after %lld ms",
			                (unsigned long long)t->id, (long long)timeout_ms);
	}
	if (status)
		*status = (enum tm_status)t->status;
	if (rc)
		*rc = t->rc;
	tm_release(t);
	return 0;
}

int tm_cancel(tm_task *t)
{
	if (!t)
		return tm__fail(EINVAL, "tm_cancel got a NULL task handle");
	if (atomic_load(&t->done) || !handle_current(t) ||
	    tm__cancel_slot(t->slot, t->id) < 0)
		return tm__fail(ESRCH, "task %llu has already ended", (unsigned long long)t->id);
	return 0;
}

int tm_cancel_type(int type)
{
	int r = tm__ensure_init();
	if (r < 0)
		return r;
	struct tm__lib *g = &tm__g;
	if (type < 0 || (uint64_t)type >= __atomic_load_n(&g->hdr->types_used, __ATOMIC_ACQUIRE))
		return tm__fail(EINVAL, "task type %d is not registered", type);
	uint64_t n = __atomic_load_n(&g->hdr->slots_used, __ATOMIC_ACQUIRE);
	int count = 0;
	for (uint64_t i = 0; i < n; i++) {
		struct tm_shm_slot *s = &g->slots[i];
		/* id first: if the slot is reused after this load, the cancel's id check fails. */
		uint64_t id = __atomic_load_n(&s->id, __ATOMIC_ACQUIRE);
		if (id && __atomic_load_n(&s->type, __ATOMIC_RELAXED) == type &&
		    __atomic_load_n(&s->status, __ATOMIC_RELAXED) == TM_RUNNING &&
		    tm__cancel_slot((uint32_t)i, id) == 0)
			count++;
	}
	return count;
}
