/* Warnings (see warnings.h for what each means and why). */
#include "warnings.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tt_warn_opts_default(struct tt_warn_opts *o)
{
	*o = (struct tt_warn_opts){
		.no_yield_ns = 1000000000ull,
		.starved_pct = 50.0,
		.starved_min_wall_ns = 100000000ull,
		.restart_loop_restarts = 3,
		.restart_loop_window_ns = 60000000000ull,
		.leak_samples = 8,
		.leak_min_growth = 8,
	};
}

static bool task_no_yield(const struct tt_task *t, const struct tt_warn_opts *o)
{
	return t->cpu_since_voluntary_ns > o->no_yield_ns;
}

static bool task_starved(const struct tt_task *t, const struct tt_model *m, const struct tt_warn_opts *o)
{
	if (!t->runq_known || t->runq_pct <= o->starved_pct)
		return false;
	if (t->pct_basis == TT_PCT_INTERVAL)
		return m->interval_ns >= o->starved_min_wall_ns;
	uint64_t wall = t->k.oncpu_ns + t->k.runq_ns + t->k.blocked_ns;
	return wall >= o->starved_min_wall_ns;
}

/* Restarts seen within the window: the count now minus the count last seen
 * before the window began. A task first seen with restarts already made is
 * not judged on those: when they happened is not known. */
static uint32_t restarts_in_window(const struct tt_task *t, uint64_t now_unix_ns, uint64_t window_ns)
{
	if (!t->nrestart_hist)
		return 0;
	uint64_t start = now_unix_ns > window_ns ? now_unix_ns - window_ns : 0;
	uint32_t base = t->restart_hist[0].restarts;
	for (unsigned i = 0; i < t->nrestart_hist; i++)
		if (t->restart_hist[i].seen_unix_ns < start)
			base = t->restart_hist[i].restarts;
	return t->restarts > base ? t->restarts - base : 0;
}

static bool type_leaking(const struct tt_type *ty, const struct tt_warn_opts *o)
{
	unsigned steps = o->leak_samples;
	if (steps < 2)
		steps = 2;
	if (steps > TT_TREND_N - 1)
		steps = TT_TREND_N - 1;
	if (ty->ntrend < steps + 1)
		return false;
	const uint32_t *v = ty->running_trend + (ty->ntrend - (steps + 1));
	unsigned rises = 0;
	for (unsigned i = 1; i <= steps; i++) {
		if (v[i] < v[i - 1])
			return false;
		rises += v[i] > v[i - 1];
	}
	return rises * 4 >= steps * 3 && v[steps] - v[0] >= o->leak_min_growth;
}

/* ---- the list ------------------------------------------------------------- */

struct wlist {
	struct tt_warning *w;
	size_t n, cap;
	bool oom;
};

static void add(struct wlist *l, enum tt_warn_kind kind, pid_t pid, uint64_t task_id, int type, size_t task_index,
                const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void add(struct wlist *l, enum tt_warn_kind kind, pid_t pid, uint64_t task_id, int type, size_t task_index,
                const char *fmt, ...)
{
	if (l->n == TT_MAX_WARNINGS || l->oom)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct tt_warning *w = realloc(l->w, cap * sizeof(*w));
		if (!w) {
			l->oom = true;
			return;
		}
		l->w = w;
		l->cap = cap;
	}
	struct tt_warning *w = &l->w[l->n++];
	*w = (struct tt_warning){ .kind = kind, .pid = pid, .task_id = task_id, .type = type, .task_index = task_index };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->text, sizeof(w->text), fmt, ap);
	va_end(ap);
}

/* "'name' (id 12, pid 345 comm)" with the names escaped */
static void describe_task(const struct tt_model *m, const struct tt_task *t, char *buf, size_t len)
{
	char name[TT_NAME_CAP * 2], comm[TT_COMM_CAP * 2] = "?";
	tt_escape(t->name.s, name, sizeof(name));
	if (t->widx < m->nworkloads)
		tt_escape(m->workloads[t->widx].comm.s, comm, sizeof(comm));
	snprintf(buf, len, "task '%s' (id %llu, pid %d %s)", name, (unsigned long long)t->id, (int)t->pid, comm);
}

static void task_warnings(struct wlist *l, struct tt_model *m, const struct tt_warn_opts *o)
{
	for (size_t i = 0; i < m->ntasks; i++) {
		struct tt_task *t = &m->tasks[i];
		char who[TT_NAME_CAP * 2 + TT_COMM_CAP * 2 + 64];
		unsigned bits = 0;
		if (task_no_yield(t, o))
			bits |= TT_W_NO_YIELD;
		if (task_starved(t, m, o))
			bits |= TT_W_STARVED;
		uint32_t r = restarts_in_window(t, m->now_unix_ns, o->restart_loop_window_ns);
		if (r >= o->restart_loop_restarts)
			bits |= TT_W_RESTART_LOOP;
		t->warnings = bits;
		if (!bits)
			continue;
		describe_task(m, t, who, sizeof(who));
		if (bits & TT_W_NO_YIELD)
			add(l, TT_WK_NO_YIELD, t->pid, t->id, t->type, i, "%s %s on CPU for %.1f s without a voluntary switch",
			    who, t->finished ? "was" : "has been", (double)t->cpu_since_voluntary_ns / 1e9);
		if (bits & TT_W_STARVED)
			add(l, TT_WK_STARVED, t->pid, t->id, t->type, i,
			    "%s %s waiting for a CPU %.0f%% of the time (starved)", who,
			    t->pct_basis == TT_PCT_INTERVAL ? "is" : "was", t->runq_pct);
		if (bits & TT_W_RESTART_LOOP)
			add(l, TT_WK_RESTART_LOOP, t->pid, t->id, t->type, i,
			    "%s restarted %u times in the last %llu s (%u in all)", who, r,
			    (unsigned long long)(o->restart_loop_window_ns / 1000000000ull), t->restarts);
	}
}

static void type_warnings(struct wlist *l, struct tt_model *m, const struct tt_warn_opts *o)
{
	unsigned steps = o->leak_samples < 2 ? 2 : o->leak_samples > TT_TREND_N - 1 ? TT_TREND_N - 1 : o->leak_samples;
	for (size_t i = 0; i < m->nworkloads; i++) {
		struct tt_workload *w = &m->workloads[i];
		for (size_t k = 0; k < w->ntypes; k++) {
			struct tt_type *ty = &w->types[k];
			ty->warnings = 0;
			if (!w->alive)
				continue;
			char name[TT_NAME_CAP * 2], comm[TT_COMM_CAP * 2];
			tt_escape(ty->name.s, name, sizeof(name));
			tt_escape(w->comm.s, comm, sizeof(comm));
			if (type_leaking(ty, o)) {
				ty->warnings |= TT_W_LEAK;
				const uint32_t *v = ty->running_trend + (ty->ntrend - (steps + 1));
				add(l, TT_WK_LEAK, w->pid, 0, ty->id, SIZE_MAX,
				    "type '%s' of pid %d %s: running tasks grew from %u to %u over the last %u samples (leak?)",
				    name, (int)w->pid, comm, v[0], v[steps], steps);
			}
			uint64_t skipped = ty->reg.delta_valid ? ty->reg.delta[TT_C_TRACE_SKIPPED] : 0;
			if (skipped) {
				uint64_t spawned = ty->reg.delta[TM_C_SPAWNED];
				ty->warnings |= TT_W_SAMPLED;
				add(l, TT_WK_SAMPLED, w->pid, 0, ty->id, SIZE_MAX,
				    "type '%s' of pid %d %s: kernel figures for %llu of %llu tasks spawned in the last %.1f s "
				    "(the rest past kernel_trace_rate)", name, (int)w->pid, comm,
				    (unsigned long long)(spawned > skipped ? spawned - skipped : 0),
				    (unsigned long long)(spawned > skipped ? spawned : skipped), (double)m->interval_ns / 1e9);
			}
		}
	}
}

int tt_warnings_compute(const struct tt_model *prev, struct tt_model *cur, const struct tt_warn_opts *opts)
{
	(void)prev;   /* what the warnings need of it is in cur's derived fields and histories */
	struct tt_warn_opts o;
	if (opts)
		o = *opts;
	else
		tt_warn_opts_default(&o);
	struct wlist l = { 0 };
	if (cur->collector.rates_valid && cur->collector.lost_delta)
		add(&l, TT_WK_LOST_EVENTS, 0, 0, -1, SIZE_MAX,
		    "the kernel lost %llu events in the last %.1f s: kernel figures undercount",
		    (unsigned long long)cur->collector.lost_delta, (double)cur->interval_ns / 1e9);
	task_warnings(&l, cur, &o);
	type_warnings(&l, cur, &o);
	if (l.oom) {
		free(l.w);
		return -ENOMEM;
	}
	free(cur->warnings);
	cur->warnings = l.w;
	cur->nwarnings = l.n;
	return 0;
}
