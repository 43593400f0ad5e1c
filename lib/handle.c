/* Task handles: waiting for, releasing and cancelling tasks, and the
 * primitives groups use to share handles and to stop and resume peers. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"
#include "futex.h"
#include "internal.h"

#define PEER_POLL_NS 1000000ull   /* a stopping peer is looked at this often */

struct tm_task *tm__new_handle(uint64_t id, uint32_t slot, const char *name, uint32_t holders)
{
	struct tm_task *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->id = id;
	h->slot = slot;
	h->epoch = tm__g.epoch;
	atomic_init(&h->refs, holders + 1);
	atomic_init(&h->holders, holders);
	h->status = TM_RUNNING;
	strncpy(h->name, name, TM_NAME_MAX - 1);
	tm__account_bytes(0, sizeof(*h));
	return h;
}

/* True while the registry the handle was made in is the current one. */
static bool handle_current(const struct tm_task *h)
{
	return atomic_load(&tm__g.ready) && h->epoch == tm__g.epoch;
}

void tm__put_handle_ref(struct tm_task *h)
{
	if (atomic_fetch_sub(&h->refs, 1) == 1) {
		if (handle_current(h))
			tm__account_bytes(0, -(int64_t)sizeof(*h));
		free(h);
	}
}

/* The task's own side: its end, told to every holder. */
void tm__finish_handle(struct tm_task *h, int status, int rc)
{
	h->status = status;
	h->rc = rc;
	atomic_store(&h->done, 1);
	if (atomic_load(&h->waiters))
		tm__futex_wake(&h->done, INT_MAX);
	tm__put_handle_ref(h);
}

void tm__handle_hold(struct tm_task *h)
{
	atomic_fetch_add(&h->refs, 1);
	atomic_fetch_add(&h->holders, 1);
}

void tm__handle_put(struct tm_task *h)
{
	/* The last holder unpins the record; after tm_shutdown only the handle remains. */
	if (atomic_fetch_sub(&h->holders, 1) == 1 && handle_current(h))
		tm__slot_unpin(h->slot);
	tm__put_handle_ref(h);
}

bool tm__handle_ended(const struct tm_task *h)
{
	return atomic_load(&((struct tm_task *)h)->done) != 0;
}

void tm__handle_result(const struct tm_task *h, int *status, int *rc, char name[TM_NAME_MAX])
{
	if (status)
		*status = h->status;
	if (rc)
		*rc = h->rc;
	if (name)
		memcpy(name, h->name, TM_NAME_MAX);
}

int tm__handle_wait(struct tm_task *h, uint64_t deadline_ns)
{
	while (!atomic_load(&h->done)) {
		atomic_fetch_add(&h->waiters, 1);
		int r = tm__futex_wait(&h->done, 0, deadline_ns);
		atomic_fetch_sub(&h->waiters, 1);
		if (r == -ETIMEDOUT && !atomic_load(&h->done))
			return -ETIMEDOUT;
	}
	return 0;
}

uint64_t tm_task_id(const tm_task *t)
{
	return t ? t->id : 0;
}

void tm_release(tm_task *t)
{
	if (t)
		tm__handle_put(t);
}

int tm_join(tm_task *t, int64_t timeout_ms, enum tm_status *status, int *rc)
{
	if (!t)
		return tm__fail(EINVAL, "tm_join got a NULL task handle");
	if (tm_current_id() == t->id)
		return tm__fail(EDEADLK, "task %llu cannot join itself", (unsigned long long)t->id);
	uint64_t deadline = 0;
	if (timeout_ms >= 0) {
		uint64_t now = tm__now_ns(), ns;
		deadline = __builtin_mul_overflow((uint64_t)timeout_ms, 1000000ull, &ns) ||
		           __builtin_add_overflow(now, ns, &deadline) ? UINT64_MAX : deadline;
		if (timeout_ms == 0)
			deadline = now;
	}
	if (tm__handle_wait(t, deadline) < 0)
		return tm__fail(ETIMEDOUT, "task %llu is still running after %lld ms",
		                (unsigned long long)t->id, (long long)timeout_ms);
	if (status)
		*status = (enum tm_status)t->status;
	if (rc)
		*rc = t->rc;
	tm__handle_put(t);
	return 0;
}

int tm_cancel(tm_task *t)
{
	if (!t)
		return tm__fail(EINVAL, "tm_cancel got a NULL task handle");
	if (atomic_load(&t->done) || !handle_current(t) || tm__cancel_slot(t->slot, t->id) < 0)
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

/* ---- peers of a group strategy ------------------------------------------------- */

int tm__peer_stop(struct tm_task *h)
{
	if (atomic_load(&h->done) || !handle_current(h))
		return -ESRCH;
	if (!h->critical)
		return tm__cancel_slot(h->slot, h->id);
	_Atomic uint64_t *st = &tm__g.ctl[h->slot].state;
	uint64_t v = atomic_load(st);
	do {
		if ((uint32_t)(v >> 32) != tm__gen(h->id) || (v & TM__S_DONE))
			return -ESRCH;
	} while (!atomic_compare_exchange_weak(st, &v, v | TM__S_RESTART | TM__S_CANCEL));
	if (v & TM__S_SLEEPING)
		tm__futex_wake(tm__state_word(h->slot), INT_MAX);
	return 0;
}

void tm__peer_wait_stopped(struct tm_task *h)
{
	if (!h->critical) {
		tm__handle_wait(h, 0);
		return;
	}
	/* Rare (a group restart): a short poll spares the task side a second
	 * wake-up protocol for parking. */
	while (!atomic_load(&h->done) && handle_current(h)) {
		uint64_t v = atomic_load(&tm__g.ctl[h->slot].state);
		if (v & TM__S_PARKED)
			return;
		tm__futex_wait(tm__state_word(h->slot), (uint32_t)v, tm__now_ns() + PEER_POLL_NS);
	}
}

void tm__peer_resume(struct tm_task *h)
{
	if (!h->critical || atomic_load(&h->done) || !handle_current(h))
		return;
	uint64_t v = atomic_fetch_and(&tm__g.ctl[h->slot].state, ~(uint64_t)TM__S_PARKED);
	if (v & TM__S_PARKED)
		tm__futex_wake(tm__state_word(h->slot), INT_MAX);
}
