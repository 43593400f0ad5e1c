/* Groups: members in spawn order, a concurrency limit, first-failure
 * cancellation (errgroup) and the restart strategies of critical members
 * (OTP's one_for_one, one_for_all, rest_for_one).
 *
 * One mutex guards a group. Task threads enter it only briefly, to record an
 * end or to take a snapshot: nothing waits for a task while holding it. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core.h"
#include "internal.h"

#define FIRST_MEMBERS 8

struct member {
	struct tm_task *h;        /* the group's holder reference */
	uint64_t id;
	int status, rc;
	bool ended;
	bool stopping;            /* a peer in a strategy application that is under way */
	char name[TM_NAME_MAX];
};

struct tm_group {
	char name[TM_NAME_MAX];
	struct tm_group_opts o;
	pthread_mutex_t lock;
	pthread_cond_t room;      /* an admission came free, or spawning stopped */
	pthread_cond_t changed;   /* a member ended, or group state changed */
	struct member *m;         /* in spawn order; indices are never reused */
	uint32_t n, cap;
	uint32_t live;            /* added and not ended: each holds an admission */
	uint32_t pending;         /* admitted, not yet added */
	uint32_t sleepers;        /* spawners blocked in tm__group_enter */
	bool failed;              /* cancel_on_failure fired: no new members */
	bool freeing;             /* tm_group_free: no new members */
	bool restarting;          /* a strategy application is under way */
	uint64_t cancels;         /* bumped by every cancel of the whole group */
	uint64_t failed_id;
	char failed_name[TM_NAME_MAX];
};

/* ---- creating ------------------------------------------------------------- */

static int read_opts(const struct tm_group_opts *u, struct tm_group_opts *o)
{
	int r = tm__read_opts(o, sizeof(*o), u, "group", "TM_GROUP_OPTS");
	if (r == 0 && (unsigned)o->strategy > TM_REST_FOR_ONE)
		r = tm__fail(EINVAL, "unknown group strategy %d", (int)o->strategy);
	return r;
}

static int init_sync(tm_group *g)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return -ENOMEM;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int r = pthread_mutex_init(&g->lock, NULL);
	if (r == 0 && (r = pthread_cond_init(&g->room, &ca)) != 0)
		pthread_mutex_destroy(&g->lock);
	if (r == 0 && (r = pthread_cond_init(&g->changed, &ca)) != 0) {
		pthread_cond_destroy(&g->room);
		pthread_mutex_destroy(&g->lock);
	}
	pthread_condattr_destroy(&ca);
	return -r;
}

int tm_group_new_opts(tm_group **out, const char *name, const struct tm_group_opts *opts)
{
	struct tm_group_opts o;
	if (!out)
		return tm__fail(EINVAL, "tm_group_new got a NULL result pointer");
	*out = NULL;
	if (!name)
		return tm__fail(EINVAL, "group name is NULL");
	if (!tm__valid_name(name))
		return tm__fail(EINVAL, "group name '%.40s' is not 1 to %d bytes of printable ASCII",
		                name, TM_NAME_MAX - 1);
	int r = read_opts(opts, &o);
	if (r < 0)
		return r;
	tm_group *g = calloc(1, sizeof(*g));
	struct member *m = calloc(FIRST_MEMBERS, sizeof(*m));
	if (!g || !m || init_sync(g) < 0) {
		free(g);
		free(m);
		return tm__fail(ENOMEM, "out of memory for group '%s'", name);
	}
	strcpy(g->name, name);
	g->o = o;
	g->m = m;
	g->cap = FIRST_MEMBERS;
	*out = g;
	return 0;
}

int tm_group_new(tm_group **out, const char *name)
{
	return tm_group_new_opts(out, name, NULL);
}

/* ---- admission and membership (called by spawn.c) ------------------------------ */

static bool full(const tm_group *g)
{
	return g->o.max_concurrent && g->live + g->pending >= g->o.max_concurrent;
}

/* -ECANCELED with the reason when the group takes no more members. */
static int closed(const tm_group *g)
{
	if (g->freeing)
		return tm__fail(ECANCELED, "group '%s' is being freed", g->name);
	if (g->failed)
		return tm__fail(ECANCELED, "group '%s' was cancelled when member '%s' (task %llu) failed",
		                g->name, g->failed_name, (unsigned long long)g->failed_id);
	return 0;
}

int tm__group_enter(tm_group *g, bool wait)
{
	int r;
	pthread_mutex_lock(&g->lock);
	while ((r = closed(g)) == 0 && full(g)) {
		if (!wait) {
			r = tm__fail(EAGAIN, "group '%s' already runs %u members, its limit (max_concurrent)",
			             g->name, g->o.max_concurrent);
			break;
		}
		g->sleepers++;
		pthread_cond_wait(&g->room, &g->lock);
		g->sleepers--;
		if (g->freeing)   /* tm_group_free waits for the last sleeper to leave */
			pthread_cond_broadcast(&g->changed);
	}
	if (r == 0)
		g->pending++;
	pthread_mutex_unlock(&g->lock);
	return r;
}

/* Called with the lock held whenever an admission comes free. */
static void admission_freed(tm_group *g)
{
	pthread_cond_broadcast(&g->room);
	pthread_cond_broadcast(&g->changed);
}

void tm__group_leave_unstarted(tm_group *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->pending)
		g->pending--;
	admission_freed(g);
	pthread_mutex_unlock(&g->lock);
}

static int grow(tm_group *g)
{
	if (g->n < g->cap)
		return 0;
	if (g->cap > UINT32_MAX / 2)
		return -ENOMEM;
	struct member *m = realloc(g->m, (size_t)g->cap * 2 * sizeof(*m));
	if (!m)
		return -ENOMEM;
	g->m = m;
	g->cap *= 2;
	return 0;
}

/* On failure the admission stays pending: the caller gives it back. */
int tm__group_add(tm_group *g, struct tm_task *h)
{
	pthread_mutex_lock(&g->lock);
	if (grow(g) < 0) {
		pthread_mutex_unlock(&g->lock);
		return tm__fail(ENOMEM, "out of memory for member %u of group '%s'", g->n + 1, g->name);
	}
	uint32_t i = g->n++;
	struct member *m = &g->m[i];
	memset(m, 0, sizeof(*m));
	m->h = h;
	m->id = tm_task_id(h);
	m->status = TM_RUNNING;
	tm__handle_result(h, NULL, NULL, m->name);
	if (g->pending)
		g->pending--;
	g->live++;
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
	return (int)i;
}

static bool is_failure(int status)
{
	return status == TM_FAILED || status == TM_PANICKED || status == TM_TIMED_OUT || status == TM_CRASHED;
}

/* tm_cancel only sets flags and wakes the task: safe under the lock. */
static int cancel_live(tm_group *g, uint32_t except)
{
	int n = 0;
	g->cancels++;
	for (uint32_t i = 0; i < g->n; i++)
		if (i != except && !g->m[i].ended && tm_cancel(g->m[i].h) == 0)
			n++;
	return n;
}

void tm__group_member_ended(tm_group *g, uint32_t member, int status, int rc)
{
	pthread_mutex_lock(&g->lock);
	struct member *m = &g->m[member];
	m->status = status;
	m->rc = rc;
	m->ended = true;
	g->live--;
	if (g->o.cancel_on_failure && is_failure(status) && !g->failed) {
		g->failed = true;
		g->failed_id = m->id;
		memcpy(g->failed_name, m->name, TM_NAME_MAX);
		cancel_live(g, member);
	}
	admission_freed(g);
	pthread_mutex_unlock(&g->lock);
}

/* ---- waiting, cancelling, freeing ------------------------------------------------ */

static void abs_deadline(int64_t timeout_ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(timeout_ms / 1000);
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* A member waiting for its own group would wait for itself. */
static bool caller_is_live_member(const tm_group *g)
{
	uint64_t self = tm_current_id();
	for (uint32_t i = 0; self && i < g->n; i++)
		if (g->m[i].id == self && !g->m[i].ended)
			return true;
	return false;
}

static void copy_results(const tm_group *g, struct tm_result *out, size_t cap)
{
	for (uint32_t i = 0; out && i < g->n && i < cap; i++) {
		const struct member *m = &g->m[i];
		out[i].id = m->id;
		memcpy(out[i].name, m->name, TM_NAME_MAX);
		out[i].status = (enum tm_status)m->status;
		out[i].rc = m->rc;
	}
}

int tm_group_wait_all(tm_group *g, int64_t timeout_ms, struct tm_result *results, size_t cap)
{
	if (!g)
		return tm__fail(EINVAL, "tm_group_wait_all got a NULL group");
	struct timespec until;
	if (timeout_ms > 0)
		abs_deadline(timeout_ms > INT64_MAX / 2 ? INT64_MAX / 2 : timeout_ms, &until);
	int r = 0;
	pthread_mutex_lock(&g->lock);
	if (caller_is_live_member(g))
		r = tm__fail(EDEADLK, "task %llu is a member of group '%s' and cannot wait for it",
		             (unsigned long long)tm_current_id(), g->name);
	/* A spawn between admission and listing is a member already. */
	while (r == 0 && (g->live || g->pending)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&g->changed, &g->lock);
		else if ((timeout_ms == 0 || pthread_cond_timedwait(&g->changed, &g->lock, &until) == ETIMEDOUT) &&
		         (g->live || g->pending))
			r = tm__fail(ETIMEDOUT, "group '%s': %u of %u members still running after %lld ms",
			             g->name, g->live + g->pending, g->n + g->pending, (long long)timeout_ms);
	}
	if (r == 0) {
		tm__lib_enter();   /* a bad results pointer must not be contained with the lock held */
		copy_results(g, results, cap);
		tm__lib_leave();
		r = (int)g->n;
	}
	pthread_mutex_unlock(&g->lock);
	/* A member leaves the group just before its handle says done: wait out
	 * that moment, so that a tm_join(h, 0) after this returns at once. The
	 * group's reference keeps each handle; g->m may move under new spawns. */
	for (int i = 0; i < r; i++) {
		pthread_mutex_lock(&g->lock);
		struct tm_task *h = g->m[i].h;
		pthread_mutex_unlock(&g->lock);
		tm__handle_wait(h, 0);
	}
	return r;
}

/* Current members only: the group stays open to new spawns (tm_group_free
 * closes it). A group that is meant to stop taking work is freed, not
 * cancelled; cancel is for "stop what runs now", e.g. before a retry. */
int tm_group_cancel(tm_group *g)
{
	if (!g)
		return tm__fail(EINVAL, "tm_group_cancel got a NULL group");
	pthread_mutex_lock(&g->lock);
	int n = cancel_live(g, UINT32_MAX);
	pthread_mutex_unlock(&g->lock);
	return n;
}

void tm_group_free(tm_group *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	if (caller_is_live_member(g)) {
		fprintf(stderr, "taskmon: task %llu called tm_group_free on its own group '%s', which would wait "
		        "for itself forever\n", (unsigned long long)tm_current_id(), g->name);
		abort();
	}
	g->freeing = true;
	pthread_cond_broadcast(&g->room);
	pthread_cond_broadcast(&g->changed);
	/* Spawners still inside enter, or between enter and add, touch g. */
	while (g->sleepers || g->pending)
		pthread_cond_wait(&g->changed, &g->lock);
	cancel_live(g, UINT32_MAX);
	pthread_mutex_unlock(&g->lock);

	/* No member is added any more, so g->m and g->n stay put. Each member
	 * leaves the group (tm__group_member_ended) before its handle says done. */
	for (uint32_t i = 0; i < g->n; i++)
		tm__handle_wait(g->m[i].h, 0);
	for (uint32_t i = 0; i < g->n; i++)
		tm__handle_put(g->m[i].h);
	pthread_cond_destroy(&g->changed);
	pthread_cond_destroy(&g->room);
	pthread_mutex_destroy(&g->lock);
	free(g->m);
	free(g);
}

int tm_group_try_spawn(tm_task **out, const char *name, tm_fn fn, void *arg, const struct tm_spawn_opts *opts)
{
	const size_t need = offsetof(struct tm_spawn_opts, group) + sizeof(opts->group);
	if (out)
		*out = NULL;
	struct tm_spawn_opts o;
	int r = tm__read_opts(&o, sizeof(o), opts, "spawn", "TM_SPAWN_OPTS");
	if (r < 0)
		return r;
	if (!opts || opts->sz < need || !o.group)
		return tm__fail(EINVAL, "tm_group_try_spawn needs options with .group set");
	return tm__spawn_common(out, name, fn, arg, opts, false);
}

/* ---- restart strategies ------------------------------------------------------------ */

struct peer {
	struct tm_task *h;   /* a holder reference of our own: the peer cannot vanish */
	uint32_t idx;
};

/* Takes the peers of member idx under the lock, each marked stopping.
 * Returns how many, or -1 when the caller must not apply a strategy: it is
 * itself being stopped, the group is being freed, or memory ran out (the
 * member then restarts alone). */
static int take_peers(tm_group *g, uint32_t idx, struct peer **out, uint64_t *cancels)
{
	*out = NULL;
	pthread_mutex_lock(&g->lock);
	/* One application at a time. A member that another application is
	 * stopping returns at once: that one stops and resumes it, and its own
	 * peers are a subset of that one's (every other, or those after it).
	 * Waiting there would deadlock: the other waits for it to stop. */
	while (g->restarting && !g->m[idx].stopping && !g->freeing)
		pthread_cond_wait(&g->changed, &g->lock);
	uint32_t from = g->o.strategy == TM_REST_FOR_ONE ? idx + 1 : 0;
	struct peer *p = NULL;
	if (!g->m[idx].stopping && !g->freeing)
		p = malloc((size_t)(g->n - from) * sizeof(*p) + 1);
	int n = 0;
	for (uint32_t i = from; p && i < g->n; i++)
		if (i != idx && !g->m[i].ended) {
			g->m[i].stopping = true;
			tm__handle_hold(g->m[i].h);
			p[n++] = (struct peer){ g->m[i].h, i };
		}
	*cancels = g->cancels;
	if (p) {
		g->restarting = true;
		/* A peer blocked above must see that it is being stopped. */
		pthread_cond_broadcast(&g->changed);
	}
	pthread_mutex_unlock(&g->lock);
	*out = p;
	return p ? n : -1;
}

void tm__group_restart_peers(tm_group *g, uint32_t idx)
{
	if (g->o.strategy == TM_ONE_FOR_ONE)
		return;
	struct peer *p;
	uint64_t cancels;
	int n = take_peers(g, idx, &p, &cancels);
	if (n < 0)
		return;
	/* As OTP: stopped one after another, last spawned first. */
	for (int i = n - 1; i >= 0; i--)
		if (tm__peer_stop(p[i].h) == 0)
			tm__peer_wait_stopped(p[i].h);
	/* The application ends peer by peer, so that a resumed peer that fails
	 * again at once applies its own strategy (after this one) instead of
	 * being taken for one still being stopped. This member is live all the
	 * while, so tm_group_free cannot take g away.
	 * A group cancel that came while a peer was being stopped may have
	 * landed on the stop rather than on the task: such a peer is cancelled
	 * now instead of resumed. Under the lock, so that a cancel either sees
	 * the peer resumed or is seen here. */
	for (int i = 0; i < n; i++) {
		pthread_mutex_lock(&g->lock);
		g->m[p[i].idx].stopping = false;
		if (g->cancels != cancels)
			tm_cancel(p[i].h);
		else
			tm__peer_resume(p[i].h);
		pthread_mutex_unlock(&g->lock);
	}
	pthread_mutex_lock(&g->lock);
	g->restarting = false;
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
	for (int i = 0; i < n; i++)
		tm__handle_put(p[i].h);
	free(p);
}
