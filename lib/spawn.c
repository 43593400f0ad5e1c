/* Spawning: checking what the caller asked for, admitting the task under the
 * limits, publishing its record and handing it to a thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"
#include "internal.h"
#include "usdt.h"

#define RECLAIM_BATCH   2       /* records freed per spawn or end: enough to keep up, never a pause */

static int read_opts(const struct tm_spawn_opts *u, struct tm_spawn_opts *o)
{
	return tm__read_opts(o, sizeof(*o), u, "spawn", "TM_SPAWN_OPTS");
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

/* Adds one to *n unless that would pass lim (0 = no limit). A compare and
 * swap, not an add then a take-back: a reader must never see a count above
 * its limit, even for an instant. */
static bool take_one(uint64_t *n, uint64_t lim)
{
	uint64_t cur = __atomic_load_n(n, __ATOMIC_RELAXED);
	do {
		if (lim && cur >= lim)
			return false;
	} while (!__atomic_compare_exchange_n(n, &cur, cur + 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return true;
}

static bool take_one_total(_Atomic uint64_t *n, uint64_t lim)
{
	uint64_t cur = atomic_load_explicit(n, memory_order_relaxed);
	do {
		if (lim && cur >= lim)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(n, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed));
	return true;
}

/* Counts the task as running unless that breaks a limit. The total first:
 * the per-type counts, whose sum the stats report as running, only grow for
 * a task the total admitted, so that sum never passes max_concurrent_total. */
static int admit(int type)
{
	struct tm__lib *g = &tm__g;
	uint64_t *running = &g->types[type].counters[TM_C_RUNNING];
	uint64_t lim = g->type_limit[type];
	if (!take_one_total(&g->running_total, g->cfg.max_concurrent_total)) {
		tm__count(type, TM_C_REJECTED, 1);
		return tm__fail(EAGAIN, "%llu tasks already run, the limit max_concurrent_total in [task_limits]",
		                (unsigned long long)g->cfg.max_concurrent_total);
	}
	if (!take_one(running, lim)) {
		char key[80];
		atomic_fetch_sub_explicit(&g->running_total, 1, memory_order_relaxed);
		tm__count(type, TM_C_REJECTED, 1);
		return tm__fail(EAGAIN, "type '%s' already runs %llu tasks, its limit (%s)", g->types[type].name,
		                (unsigned long long)lim, limit_key(type, key, sizeof(key)));
	}
	return 0;
}

void tm__unadmit(int type)
{
	__atomic_fetch_sub(&tm__g.types[type].counters[TM_C_RUNNING], 1, __ATOMIC_RELAXED);
	atomic_fetch_sub_explicit(&tm__g.running_total, 1, memory_order_relaxed);
}

static int resolve(int type, size_t want_stack, size_t *stack)
{
	int ntypes = (int)__atomic_load_n(&tm__g.hdr->types_used, __ATOMIC_ACQUIRE);
	if (type < 0 || type >= ntypes)
		return tm__fail(EINVAL, "task type %d is not registered (%d types are)", type, ntypes);
	*stack = want_stack ? want_stack : tm__g.type_stack[type];
	if (!*stack)
		*stack = tm__pool_default_stack();
	if (*stack < 16384)
		return tm__fail(EINVAL, "stack size %zu is below the minimum of 16384 bytes", *stack);
	return 0;
}

static uint64_t deadline_after(uint64_t now, uint64_t ms)
{
	uint64_t ns;
	if (!ms)
		return 0;
	if (__builtin_mul_overflow(ms, 1000000ull, &ns) || __builtin_add_overflow(now, ns, &ns))
		return UINT64_MAX;
	return ns;
}

/* What a spawn needs beyond the caller's arguments. */
struct request {
	const char *name;
	int type;
	size_t stack;
	uint64_t timeout_ms;
	tm_group *group;
	bool wait_for_group;
	bool want_handle;
	struct tm__crit *crit;
};

/* Undoes a spawn whose thread could not be had: nothing stays half-registered. */
static void abandon(const struct request *q, uint32_t slot, uint64_t id, struct tm_task *h, bool traced)
{
	tm__unadmit(q->type);
	tm__count(q->type, TM_C_REJECTED, 1);
	if (traced)
		TM_PROBE_END(id, (int)TM_FAILED, -EAGAIN);
	if (q->group)
		tm__group_leave_unstarted(q->group);
	if (h) {
		tm__account_bytes(0, -(int64_t)sizeof(*h));
		free(h);
	}
	tm__slot_discard(slot);
}

/* A group member whose thread could not be had stays listed, ended at once
 * with the error as its rc, so that the group's results stay whole. */
static void end_listed_member(const struct request *q, const struct tm__desc *d, uint64_t id, int err)
{
	atomic_fetch_or(&tm__g.ctl[d->slot].state, TM__S_DONE);
	tm__slot_publish_end(d->slot, TM_FAILED, err, tm__now_ns(), 0);
	tm__count(q->type, TM_C_REJECTED, 1);
	tm__unadmit(q->type);
	if (d->traced)
		TM_PROBE_END(id, (int)TM_FAILED, err);
	tm__group_member_ended(q->group, d->member, TM_FAILED, err);
	tm__finish_handle(d->handle, TM_FAILED, err);
	if (q->want_handle)
		tm__handle_put(d->handle);   /* the caller gets no handle from a failed spawn */
	tm__slot_retire(d->slot);
}

static int launch(tm_task **out, tm_fn fn, void *arg, const struct request *q)
{
	uint32_t slot;
	int r = tm__slot_alloc(&slot);
	if (r < 0) {
		tm__unadmit(q->type);
		tm__count(q->type, TM_C_REJECTED, 1);
		if (q->group)
			tm__group_leave_unstarted(q->group);
		return r;
	}
	uint64_t id = __atomic_add_fetch(&tm__g.hdr->next_task_id, 1, __ATOMIC_RELAXED);
	/* The probe right beside the clock read, so that the kernel's spawn time
	 * and the library's mean the same moment (a heap or page fault below
	 * would otherwise sit between them). */
	uint64_t now = tm__now_ns();
	bool traced = q->crit || tm__trace_admit(now);
	if (traced)
		TM_PROBE_SPAWN(id, q->type, q->name);
	else
		tm__trace_skipped(q->type);
	uint32_t holders = (q->want_handle ? 1u : 0u) + (q->group ? 1u : 0u);
	struct tm_task *h = holders ? tm__new_handle(id, slot, q->name, holders) : NULL;
	if (holders && !h) {
		abandon(q, slot, id, NULL, traced);
		return tm__fail(ENOMEM, "out of memory for the handle of task '%s'", q->name);
	}
	if (h)
		h->critical = q->crit != NULL;
	atomic_store_explicit(&tm__g.ctl[slot].state, (uint64_t)tm__gen(id) << 32 | (h ? TM__S_PINNED : 0),
	                      memory_order_relaxed);
	tm__slot_publish_spawn(slot, id, q->type, q->name, now, q->crit ? TM_SLOT_F_CRITICAL : 0);

	struct tm__desc d = { .fn = fn, .arg = arg, .handle = h, .crit = q->crit, .group = q->group, .slot = slot,
	                      .deadline_ns = deadline_after(now, q->timeout_ms),
	                      .stack_default = q->stack == tm__pool_default_stack(), .traced = traced };
	if (q->group) {
		int m = tm__group_add(q->group, h);
		if (m < 0) {
			abandon(q, slot, id, h, traced);
			return m;
		}
		d.member = (uint32_t)m;
	}
	if ((r = tm__pool_submit(&d, q->stack)) < 0) {
		if (q->group)
			end_listed_member(q, &d, id, r);
		else
			abandon(q, slot, id, h, traced);
		return r;
	}
	tm__count(q->type, TM_C_SPAWNED, 1);
	if (out)
		*out = q->want_handle ? h : NULL;
	tm__reclaim(now, tm__g.cfg.task_retention_ms * 1000000ull, RECLAIM_BATCH, false);
	return 0;
}

static int spawn_request(tm_task **out, tm_fn fn, void *arg, struct request *q)
{
	int r;
	if (!fn)
		return tm__fail(EINVAL, "task '%s' has no function", q->name);
	if (atomic_load(&tm__g.shutting_down))
		return tm__fail(EAGAIN, "taskmon is shutting down; task '%s' was not started", q->name);
	if (q->group && (r = tm__group_enter(q->group, q->wait_for_group)) < 0)
		return r;
	if ((r = admit(q->type)) < 0) {
		if (q->group)
			tm__group_leave_unstarted(q->group);
		return r;
	}
	return launch(out, fn, arg, q);
}

int tm__spawn_common(tm_task **out, const char *name, tm_fn fn, void *arg,
                     const struct tm_spawn_opts *uopts, bool wait_for_group)
{
	struct tm_spawn_opts o;
	if (out)
		*out = NULL;
	int r = tm__ensure_init();
	if (r < 0 || (r = read_opts(uopts, &o)) < 0 || (r = check_name(name)) < 0)
		return r;
	struct request q = { .name = name, .type = o.type, .group = o.group, .wait_for_group = wait_for_group,
	                     .want_handle = out != NULL };
	if ((r = resolve(o.type, o.stack_size, &q.stack)) < 0)
		return r;
	q.timeout_ms = o.timeout_ms ? o.timeout_ms : tm__g.type_timeout_ms[o.type];
	return spawn_request(out, fn, arg, &q);
}

int tm_spawn(tm_task **out, const char *name, tm_fn fn, void *arg, const struct tm_spawn_opts *opts)
{
	return tm__spawn_common(out, name, fn, arg, opts, true);
}

int tm_spawn_critical(tm_task **out, const char *name, tm_fn fn, void *arg, const struct tm_critical_opts *opts)
{
	if (out)
		*out = NULL;
	int r = tm__ensure_init();
	if (r < 0 || (r = check_name(name)) < 0)
		return r;
	struct request q = { .name = name, .wait_for_group = true, .want_handle = out != NULL };
	if ((r = tm__crit_new(&q.crit, opts)) < 0)
		return r;
	q.type = q.crit->o.type;
	q.group = q.crit->o.group;
	if ((r = resolve(q.type, q.crit->o.stack_size, &q.stack)) < 0 ||
	    (r = spawn_request(out, fn, arg, &q)) < 0)
		tm__crit_free(q.crit);
	return r;
}
