/* tasktop's model: lifetime, deep copies, lookups, and the figures derived
 * from two consecutive samples (rates, percentages, trends). */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warnings.h"

/* ---- lifetime ------------------------------------------------------------- */

struct tt_model *tt_model_new(enum tt_source_kind source)
{
	struct tt_model *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->source = source;
	m->health = TT_HEALTH_NONE;
	m->refs = 1;
	return m;
}

static void hist_release(struct tt_hist *h)
{
	free(h->buckets);
	h->buckets = NULL;
}

static void kfig_release(struct tt_kfig *k)
{
	hist_release(&k->spawn_latency);
	hist_release(&k->run_time);
}

static void workload_release(struct tt_workload *w)
{
	for (size_t i = 0; i < w->ntypes; i++) {
		hist_release(&w->types[i].lib_latency);
		kfig_release(&w->types[i].k);
	}
	free(w->types);
	hist_release(&w->lib_latency);
	kfig_release(&w->k);
}

struct tt_model *tt_model_ref(struct tt_model *m)
{
	if (m)
		m->refs++;
	return m;
}

void tt_model_free(struct tt_model *m)
{
	if (!m)
		return;
	if (m->refs > 1) {
		m->refs--;
		return;
	}
	for (size_t i = 0; i < m->nworkloads; i++)
		workload_release(&m->workloads[i]);
	free(m->workloads);
	for (size_t i = 0; i < m->nmtypes; i++)
		kfig_release(&m->mtypes[i].k);
	free(m->mtypes);
	for (size_t i = 0; i < m->ntasks; i++)
		free(m->tasks[i].panic_message);
	free(m->tasks);
	for (size_t i = 0; i < m->ncrashes; i++)
		free(m->crashes[i].frames);
	free(m->crashes);
	free(m->warnings);
	kfig_release(&m->machine_k);
	hist_release(&m->header_latency);
	free(m);
}

/* ---- deep copy ------------------------------------------------------------ */

/* Copies n elements of size sz; NULL for n == 0 (and on ENOMEM, which *ok reports). */
static void *dup_array(const void *src, size_t n, size_t sz, bool *ok)
{
	if (!n || !src)
		return NULL;
	void *p = malloc(n * sz);
	if (!p) {
		*ok = false;
		return NULL;
	}
	memcpy(p, src, n * sz);
	return p;
}

static void hist_dup(struct tt_hist *h, bool *ok)
{
	if (h->buckets)
		h->buckets = dup_array(h->buckets, TM_HIST_BUCKETS, sizeof(uint64_t), ok);
}

static void kfig_dup(struct tt_kfig *k, bool *ok)
{
	hist_dup(&k->spawn_latency, ok);
	hist_dup(&k->run_time, ok);
}

struct tt_model *tt_model_copy(const struct tt_model *src)
{
	struct tt_model *m = malloc(sizeof(*m));
	if (!m)
		return NULL;
	*m = *src;
	m->refs = 1;
	bool ok = true;
	/* Pointers first, so that a failure part-way leaves a model tt_model_free can release. */
	m->workloads = dup_array(src->workloads, src->nworkloads, sizeof(*m->workloads), &ok);
	m->mtypes = dup_array(src->mtypes, src->nmtypes, sizeof(*m->mtypes), &ok);
	m->tasks = dup_array(src->tasks, src->ntasks, sizeof(*m->tasks), &ok);
	m->crashes = dup_array(src->crashes, src->ncrashes, sizeof(*m->crashes), &ok);
	m->warnings = dup_array(src->warnings, src->nwarnings, sizeof(*m->warnings), &ok);
	if (!ok) {
		/* Nothing below was duplicated yet: drop the shallow pointers before freeing. */
		free(m->workloads);
		free(m->mtypes);
		free(m->tasks);
		free(m->crashes);
		free(m->warnings);
		free(m);
		return NULL;
	}
	/* Every nested pointer is still the source's: detach them all, then duplicate. */
	for (size_t i = 0; i < m->nworkloads; i++) {
		struct tt_workload *w = &m->workloads[i];
		w->types = dup_array(w->types, w->ntypes, sizeof(*w->types), &ok);
		if (!w->types)
			w->ntypes = 0;
		hist_dup(&w->lib_latency, &ok);
		kfig_dup(&w->k, &ok);
		for (size_t t = 0; t < w->ntypes; t++) {
			hist_dup(&w->types[t].lib_latency, &ok);
			kfig_dup(&w->types[t].k, &ok);
		}
	}
	for (size_t i = 0; i < m->nmtypes; i++)
		kfig_dup(&m->mtypes[i].k, &ok);
	for (size_t i = 0; i < m->ntasks; i++)
		if (m->tasks[i].panic_message && !(m->tasks[i].panic_message = strdup(m->tasks[i].panic_message)))
			ok = false;
	for (size_t i = 0; i < m->ncrashes; i++) {
		struct tt_crash *c = &m->crashes[i];
		c->frames = dup_array(c->frames, c->nframes, sizeof(*c->frames), &ok);
		if (!c->frames)
			c->nframes = 0;
	}
	kfig_dup(&m->machine_k, &ok);
	hist_dup(&m->header_latency, &ok);
	if (!ok) {
		/* A failed dup left NULL where the source had a pointer: freeing is safe. */
		tt_model_free(m);
		return NULL;
	}
	return m;
}

/* ---- lookups -------------------------------------------------------------- */

struct tt_workload *tt_model_find_workload(const struct tt_model *m, pid_t pid)
{
	for (size_t i = 0; i < m->nworkloads; i++)
		if (m->workloads[i].pid == pid)
			return &m->workloads[i];
	return NULL;
}

size_t tt_model_find_task(const struct tt_model *m, pid_t pid, uint64_t id)
{
	for (size_t i = 0; i < m->ntasks; i++)
		if (m->tasks[i].pid == pid && m->tasks[i].id == id)
			return i;
	return SIZE_MAX;
}

struct tt_type *tt_workload_find_type(const struct tt_workload *w, int id)
{
	for (size_t i = 0; i < w->ntypes; i++)
		if (w->types[i].id == id)
			return &w->types[i];
	return NULL;
}

/* ---- names and text ------------------------------------------------------- */

void tt_model_set_status(struct tt_model *m, enum tt_health h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->status, sizeof(m->status), fmt, ap);
	va_end(ap);
	m->health = h;
}

const char *tt_state_name(enum tt_state s)
{
	static const char *const names[TT_ST_COUNT] = {
		[TT_ST_RUNNING] = "running", [TT_ST_SUCCEEDED] = "succeeded", [TT_ST_FAILED] = "failed",
		[TT_ST_PANICKED] = "panicked", [TT_ST_CANCELLED] = "cancelled", [TT_ST_TIMED_OUT] = "timed_out",
		[TT_ST_CRASHED] = "crashed", [TT_ST_UNKNOWN] = "unknown",
	};
	return (unsigned)s < TT_ST_COUNT ? names[s] : "unknown";
}

const char *tt_source_kind_name(enum tt_source_kind k)
{
	switch (k) {
	case TT_SRC_LIVE: return "live";
	case TT_SRC_STANDALONE: return "standalone";
	case TT_SRC_REPLAY: return "replay";
	}
	return "unknown";
}

const char *tt_warn_kind_name(enum tt_warn_kind k)
{
	static const char *const names[TT_WK_COUNT] = {
		[TT_WK_NO_YIELD] = "no-yield", [TT_WK_STARVED] = "starved", [TT_WK_RESTART_LOOP] = "restart-loop",
		[TT_WK_LEAK] = "leak", [TT_WK_LOST_EVENTS] = "lost-events", [TT_WK_SAMPLED] = "sampled",
	};
	return (unsigned)k < TT_WK_COUNT ? names[k] : "unknown";
}

static bool byte_needs_escape(unsigned char c)
{
	return c < 0x20 || c >= 0x7f;
}

unsigned tt_str_flags(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (byte_needs_escape((unsigned char)s[i]))
			return TT_STR_CTRL;
	return 0;
}

size_t tt_escape(const char *raw, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	if (!cap)
		return 0;
	for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
		char buf[4];
		size_t k = 0;
		if (*p == '\\') {
			buf[k++] = '\\';
			buf[k++] = '\\';
		} else if (byte_needs_escape(*p)) {
			buf[k++] = '\\';
			buf[k++] = 'x';
			buf[k++] = hex[*p >> 4];
			buf[k++] = hex[*p & 15];
		} else {
			buf[k++] = (char)*p;
		}
		if (n + k >= cap)   /* never half an escape */
			break;
		memcpy(out + n, buf, k);
		n += k;
	}
	out[n] = '\0';
	return n;
}

/* ---- derived figures ------------------------------------------------------ */

/* Open-addressing index of a model's tasks by (pid, id): the previous
 * sample's tasks are looked up once per current task. */
struct task_index {
	uint32_t *slot;   /* task index + 1, 0 = empty */
	size_t mask;
};

static uint64_t task_hash(pid_t pid, uint64_t id)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uint32_t)pid * 0xc2b2ae3d27d4eb4full;
	return x ^ (x >> 29);
}

static int task_index_build(struct task_index *ix, const struct tt_model *m)
{
	size_t cap = 16;
	while (cap < m->ntasks * 2)
		cap <<= 1;
	ix->slot = calloc(cap, sizeof(*ix->slot));
	if (!ix->slot)
		return -ENOMEM;
	ix->mask = cap - 1;
	for (size_t i = 0; i < m->ntasks; i++) {
		size_t h = task_hash(m->tasks[i].pid, m->tasks[i].id) & ix->mask;
		while (ix->slot[h])
			h = (h + 1) & ix->mask;
		ix->slot[h] = (uint32_t)i + 1;
	}
	return 0;
}

static const struct tt_task *task_index_find(const struct task_index *ix, const struct tt_model *m, pid_t pid,
                                             uint64_t id)
{
	for (size_t h = task_hash(pid, id) & ix->mask; ix->slot[h]; h = (h + 1) & ix->mask) {
		const struct tt_task *t = &m->tasks[ix->slot[h] - 1];
		if (t->pid == pid && t->id == id)
			return t;
	}
	return NULL;
}

static double per_second(uint64_t delta, uint64_t interval_ns)
{
	return interval_ns ? (double)delta * 1e9 / (double)interval_ns : 0.0;
}

static double pct(uint64_t part, uint64_t whole)
{
	if (!whole)
		return 0.0;
	double p = 100.0 * (double)part / (double)whole;
	return p > 100.0 ? 100.0 : p;
}

static uint64_t grow(uint64_t cur, uint64_t prev)
{
	return cur > prev ? cur - prev : 0;
}

static void counters_diff(struct tt_counters *cur, const struct tt_counters *prev)
{
	if (!prev) {
		cur->delta_valid = false;
		memset(cur->delta, 0, sizeof(cur->delta));
		return;
	}
	for (int i = 0; i < TT_C_COUNT; i++)
		cur->delta[i] = grow(cur->c[i], prev->c[i]);
	cur->delta_valid = true;
}

static void trend_push(uint32_t *trend, uint8_t *n, const uint32_t *prev_trend, uint8_t prev_n, uint64_t value)
{
	uint32_t v = value > UINT32_MAX ? UINT32_MAX : (uint32_t)value;
	uint8_t keep = prev_trend ? prev_n : 0;
	if (keep > TT_TREND_N - 1)
		keep = TT_TREND_N - 1;
	/* oldest first: the last `keep` entries of the previous trend, then v */
	uint32_t tmp[TT_TREND_N];
	if (keep)
		memcpy(tmp, prev_trend + (prev_n - keep), keep * sizeof(*tmp));
	tmp[keep] = v;
	memcpy(trend, tmp, (keep + 1u) * sizeof(*tmp));
	*n = (uint8_t)(keep + 1);
}

/* On-CPU time a task spent in the interval, and how much of it tasktop had
 * already counted while it ran (live_cpu_ns), so that an ended task's kernel
 * total is not counted twice. */
static uint64_t task_interval_cpu(const struct tt_task *t, const struct tt_task *p)
{
	if (t->pct_basis == TT_PCT_INTERVAL)
		return p ? grow(t->live_cpu_ns, p->live_cpu_ns) : 0;
	if (!t->finished)
		return 0;
	if (p && p->finished)
		return 0;   /* ended before the previous sample: counted then */
	uint64_t total = t->k.present && t->k.ended ? t->k.oncpu_ns : t->lib_cpu_ns;
	return grow(total, p ? p->live_cpu_ns : 0);
}

static void task_percentages(struct tt_task *t, const struct tt_task *p, uint64_t interval_ns)
{
	t->pct_basis = TT_PCT_NONE;
	t->cpu_pct = t->runq_pct = t->blocked_pct = 0;
	t->runq_known = false;
	t->live_cpu_ns = p ? p->live_cpu_ns : 0;
	t->cpu_since_voluntary_ns = 0;
	bool same_thread = p && t->proc.valid && p->proc.valid && p->tid == t->tid && !t->finished;
	/* the wall time between the two reads, when known: on a loaded machine
	 * it can differ from the samples' interval by a good part */
	if (same_thread && t->proc.read_ns && p->proc.read_ns)
		interval_ns = t->proc.read_ns > p->proc.read_ns ? t->proc.read_ns - p->proc.read_ns : 0;
	if (same_thread && interval_ns) {
		uint64_t dcpu = grow(t->proc.oncpu_ns, p->proc.oncpu_ns);
		uint64_t drunq = grow(t->proc.runq_ns, p->proc.runq_ns);
		t->pct_basis = TT_PCT_INTERVAL;
		t->cpu_pct = pct(dcpu, interval_ns);
		t->runq_pct = pct(drunq, interval_ns);
		double b = 100.0 - t->cpu_pct - t->runq_pct;
		t->blocked_pct = b > 0 ? b : 0;
		t->runq_known = true;
		t->live_cpu_ns = p->live_cpu_ns + dcpu;
		/* A voluntary switch seen in the interval resets the count; not knowing
		 * the switches (a task too idle to be read) resets it too: it cannot be a hog. */
		if (t->proc.switches_known && p->proc.switches_known &&
		    t->proc.voluntary_switches == p->proc.voluntary_switches)
			t->cpu_since_voluntary_ns = p->cpu_since_voluntary_ns + dcpu;
		return;
	}
	if (!t->finished)
		return;
	const struct tt_task_kernel *k = &t->k;
	uint64_t wall = k->oncpu_ns + k->runq_ns + k->blocked_ns;
	if (k->present && k->ended && wall) {
		t->pct_basis = TT_PCT_LIFETIME;
		t->cpu_pct = pct(k->oncpu_ns, wall);
		t->runq_pct = pct(k->runq_ns, wall);
		t->blocked_pct = pct(k->blocked_ns, wall);
		t->runq_known = true;
		if (k->voluntary_switches == 0)
			t->cpu_since_voluntary_ns = k->oncpu_ns;
	} else if (t->lib_cpu_ns && t->run_ns) {
		t->pct_basis = TT_PCT_LIFETIME;
		t->cpu_pct = pct(t->lib_cpu_ns, t->run_ns);
	}
}

static void restart_history(struct tt_task *t, const struct tt_task *p, uint64_t now_unix_ns)
{
	if (p) {
		t->nrestart_hist = p->nrestart_hist > TT_RESTART_HIST_N ? TT_RESTART_HIST_N : p->nrestart_hist;
		memcpy(t->restart_hist, p->restart_hist, sizeof(t->restart_hist));
	} else {
		t->nrestart_hist = 0;
	}
	/* The first sighting is the baseline; then every sample where the count moved. */
	if (t->nrestart_hist && t->restart_hist[t->nrestart_hist - 1].restarts == t->restarts)
		return;
	if (t->nrestart_hist == TT_RESTART_HIST_N) {
		memmove(t->restart_hist, t->restart_hist + 1, (TT_RESTART_HIST_N - 1) * sizeof(t->restart_hist[0]));
		t->nrestart_hist--;
	}
	t->restart_hist[t->nrestart_hist++] = (struct tt_restart_obs){ .seen_unix_ns = now_unix_ns,
	                                                               .restarts = t->restarts };
}

static void types_diff(struct tt_workload *w, const struct tt_workload *pw, uint64_t interval_ns)
{
	for (size_t i = 0; i < w->ntypes; i++) {
		struct tt_type *t = &w->types[i];
		const struct tt_type *p = pw ? tt_workload_find_type(pw, t->id) : NULL;
		/* a type id reused under another name is another type */
		if (p && strcmp(p->name.s, t->name.s) != 0)
			p = NULL;
		counters_diff(&t->reg, p ? &p->reg : NULL);
		t->rates_valid = p && interval_ns;
		t->spawned_per_s = t->rates_valid ? per_second(t->reg.delta[TM_C_SPAWNED], interval_ns) : 0;
		t->cpu_interval_ns = 0;
		t->cpu_pct = 0;
		trend_push(t->running_trend, &t->ntrend, p ? p->running_trend : NULL, p ? p->ntrend : 0,
		           t->reg.c[TM_C_RUNNING]);
		t->warnings = 0;
	}
}

static void workload_diff(struct tt_workload *w, const struct tt_workload *p, uint64_t interval_ns)
{
	/* a reused pid is another process */
	if (p && p->start_ticks != w->start_ticks)
		p = NULL;
	counters_diff(&w->reg, p ? &p->reg : NULL);
	w->rates_valid = p && interval_ns;
	w->spawned_per_s = w->rates_valid ? per_second(w->reg.delta[TM_C_SPAWNED], interval_ns) : 0;
	/* not pct(), which caps at 100: a process may use several cores */
	w->cpu_pct = w->rates_valid && w->proc_known && p->proc_known
	                     ? per_second(grow(w->proc_cpu_ns, p->proc_cpu_ns), interval_ns) / 1e7
	                     : 0;
	w->crashes_delta = p ? grow(w->crashes, p->crashes) : 0;
	w->task_cpu_pct = 0;
	trend_push(w->running_trend, &w->ntrend, p ? p->running_trend : NULL, p ? p->ntrend : 0,
	           w->reg.c[TM_C_RUNNING]);
	types_diff(w, p, interval_ns);
}

static void collector_diff(struct tt_collector *c, const struct tt_collector *p, uint64_t interval_ns)
{
	c->rates_valid = c->present && p && p->present && p->pid == c->pid && interval_ns;
	c->lost_delta = c->rates_valid ? grow(c->lost, p->lost) : 0;
	c->events_delta = c->rates_valid ? grow(c->events, p->events) : 0;
	c->events_per_s = per_second(c->events_delta, interval_ns);
	c->cpu_pct = c->rates_valid && c->cpu_known && p->cpu_known
	                     ? per_second(grow(c->cpu_ns, p->cpu_ns), interval_ns) / 1e7
	                     : 0;
}

static void mtypes_diff(struct tt_model *cur, const struct tt_model *prev)
{
	for (size_t i = 0; i < cur->nmtypes; i++) {
		struct tt_mtype *t = &cur->mtypes[i];
		const struct tt_mtype *p = NULL;
		for (size_t j = 0; prev && j < prev->nmtypes && !p; j++)
			if (strcmp(prev->mtypes[j].name.s, t->name.s) == 0)
				p = &prev->mtypes[j];
		counters_diff(&t->reg, p ? &p->reg : NULL);
		t->rates_valid = p && cur->interval_valid;
		t->spawned_per_s = t->rates_valid ? per_second(t->reg.delta[TM_C_SPAWNED], cur->interval_ns) : 0;
	}
}

/* Tasks: percentages, restart history, and their on-CPU time in the interval
 * added to their type's and workload's CPU%. */
static int tasks_diff(struct tt_model *cur, const struct tt_model *prev)
{
	struct task_index ix = { 0 };
	if (prev && prev->ntasks && task_index_build(&ix, prev) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < cur->ntasks; i++) {
		struct tt_task *t = &cur->tasks[i];
		const struct tt_task *p = ix.slot ? task_index_find(&ix, prev, t->pid, t->id) : NULL;
		task_percentages(t, p, cur->interval_valid ? cur->interval_ns : 0);
		restart_history(t, p, cur->now_unix_ns);
		t->warnings = 0;
		if (!cur->interval_valid || t->widx >= cur->nworkloads)
			continue;
		uint64_t cpu = task_interval_cpu(t, p);
		struct tt_workload *w = &cur->workloads[t->widx];
		struct tt_type *ty = t->type >= 0 ? tt_workload_find_type(w, t->type) : NULL;
		if (ty)
			ty->cpu_interval_ns += cpu;
	}
	free(ix.slot);
	for (size_t i = 0; i < cur->nworkloads; i++) {
		struct tt_workload *w = &cur->workloads[i];
		for (size_t k = 0; k < w->ntypes; k++) {
			struct tt_type *ty = &w->types[k];
			ty->cpu_pct = cur->interval_valid ? per_second(ty->cpu_interval_ns, cur->interval_ns) / 1e7 : 0;
			w->task_cpu_pct += ty->cpu_pct;
		}
	}
	return 0;
}

static void header_diff(struct tt_model *cur, const struct tt_model *prev)
{
	uint64_t running = 0;
	for (size_t i = 0; i < cur->nworkloads; i++)
		if (cur->workloads[i].alive)
			running += cur->workloads[i].reg.c[TM_C_RUNNING];
	cur->tasks_running = running;
	counters_diff(&cur->machine_reg, prev ? &prev->machine_reg : NULL);
	const uint64_t *d = cur->machine_reg.delta;
	bool v = cur->interval_valid;
	cur->spawned_per_s = v ? per_second(d[TM_C_SPAWNED], cur->interval_ns) : 0;
	cur->failed_delta = v ? d[TM_C_FAILED] : 0;
	cur->panicked_delta = v ? d[TM_C_PANICKED] : 0;
	cur->timed_out_delta = v ? d[TM_C_TIMED_OUT] : 0;
	/* Contained faults are counted by the library; fatal ones by the collector per workload. */
	uint64_t fatal = 0;
	for (size_t i = 0; i < cur->nworkloads; i++)
		fatal += cur->workloads[i].crashes_delta;
	cur->crashed_delta = v ? d[TM_C_CRASHED] + fatal : 0;
}

int tt_model_diff(const struct tt_model *prev, struct tt_model *cur)
{
	cur->interval_valid = prev && cur->now_ns > prev->now_ns;
	cur->interval_ns = cur->interval_valid ? cur->now_ns - prev->now_ns : 0;
	if (!cur->interval_valid)
		prev = NULL;   /* a clock that went backwards: another collector or boot; start afresh */
	collector_diff(&cur->collector, prev ? &prev->collector : NULL, cur->interval_ns);
	for (size_t i = 0; i < cur->nworkloads; i++) {
		struct tt_workload *w = &cur->workloads[i];
		workload_diff(w, prev ? tt_model_find_workload(prev, w->pid) : NULL, cur->interval_ns);
	}
	mtypes_diff(cur, prev);
	int rc = tasks_diff(cur, prev);
	if (rc < 0)
		return rc;
	header_diff(cur, prev);
	return tt_warnings_compute(prev, cur, NULL);
}
