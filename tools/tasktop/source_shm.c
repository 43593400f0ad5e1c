/* Standalone source: no collector, no root. Every /dev/shm/taskmon.<pid>
 * segment the user may read, through the library's validating reader
 * (lib/taskmon_shm.h): the library's own figures only, and the model says
 * that kernel figures are off and why.
 *
 * Readers stay open between samples (opening validates the whole segment);
 * a segment that is gone is dropped. A workload that died without removing
 * its segment is read one last time and its reader closed: its final figures
 * are kept and shown as gone (without its tasks), the most recent
 * MAX_GONE_SHOWN of them, as the collector keeps a bounded number of departed
 * workloads. Machines where killed test processes left a thousand segments
 * behind then cost nothing per sample beyond listing the directory.
 */
#include "source_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "taskmon_shm.h"

#define MAX_SEGMENTS   4096   /* segments looked at per sample */
#define MAX_GONE_SHOWN 32     /* departed workloads shown, the most recent */
#define RETRY_NS       (30ull * 1000000000ull)   /* a segment that could not be opened, tried again */
#define MAX_MESSAGES   1024   /* message ring entries read per workload (the library's has 256) */

struct seg {
	pid_t pid;
	tm_shm_reader *r;    /* NULL once gone (final figures in `final`) or unreadable */
	bool gone;
	bool unreadable;     /* not ours to read (-EACCES) */
	bool malformed;      /* refused by the reader (or caught half made) */
	uint64_t retry_ns;   /* when to try opening it again after either */
	uint64_t gone_mtime; /* the segment's last change, to pick the most recent */
	struct tt_workload final;   /* its figures when it went (types owned, no buckets) */
};

struct shm_impl {
	struct seg *segs;
	size_t nsegs, cap;
	pid_t *pids;
	struct tm_shm_type_snapshot *types;   /* TM_MAX_TYPES, reused */
	struct tm_task_info *tasks;
	size_t task_cap;
	struct tm_shm_message_info *msgs;     /* MAX_MESSAGES, allocated on first need */
	size_t gone_hidden;                   /* departed workloads beyond MAX_GONE_SHOWN */
	char last_malformed[160];
};

static void seg_release(struct seg *g)
{
	tm_shm_close(g->r);
	g->r = NULL;
	free(g->final.types);
	g->final.types = NULL;
}

static void seg_path(const struct tt_source *s, pid_t pid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%d", s->opts.shm_dir ? s->opts.shm_dir : TM_SHM_DIR, TM_SHM_PREFIX, (int)pid);
}

/* A new segment: opened and validated once. A failure is remembered and
 * tried again only after RETRY_NS: a segment may be caught half made, and a
 * thousand unreadable ones must not cost a thousand opens a second. */
static void seg_open(struct tt_source *s, struct seg *g, uint64_t now)
{
	struct shm_impl *k = s->impl;
	char path[TT_PATH_CAP + 32];
	seg_path(s, g->pid, path, sizeof(path));
	int rc = tm_shm_open_path(&g->r, path);
	g->unreadable = rc == -EACCES || rc == -EPERM;
	g->malformed = rc < 0 && !g->unreadable && rc != -ENOENT;   /* -ENOENT: gone since the listing */
	if (g->malformed)
		snprintf(k->last_malformed, sizeof(k->last_malformed), "%s", tm_last_error());
	if (rc < 0) {
		g->r = NULL;
		g->retry_ns = now + RETRY_NS;
	}
}

/* Matches the listing against the segments known: new ones are added (not
 * yet opened), those no longer listed released. pids must be sorted. */
static int sync_segments(struct shm_impl *k, const pid_t *pids, size_t n)
{
	struct seg *out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	size_t i = 0, j = 0;
	for (; j < n; j++) {
		while (i < k->nsegs && k->segs[i].pid < pids[j])
			seg_release(&k->segs[i++]);
		if (i < k->nsegs && k->segs[i].pid == pids[j])
			out[j] = k->segs[i++];
		else
			out[j] = (struct seg){ .pid = pids[j] };
	}
	while (i < k->nsegs)
		seg_release(&k->segs[i++]);
	free(k->segs);
	k->segs = out;
	k->nsegs = n;
	return 0;
}

/* ---- one workload ---------------------------------------------------------- */

static void counters_from_stats(struct tt_counters *c, const struct tm_stats *st)
{
	*c = (struct tt_counters){ 0 };
	c->c[TM_C_SPAWNED] = st->total_spawned;
	c->c[TM_C_RUNNING] = st->currently_running;
	c->c[TM_C_SUCCEEDED] = st->total_completed;
	c->c[TM_C_FAILED] = st->total_failed;
	c->c[TM_C_PANICKED] = st->total_panicked;
	c->c[TM_C_CANCELLED] = st->total_cancelled;
	c->c[TM_C_TIMED_OUT] = st->total_timed_out;
	c->c[TM_C_RESTARTS] = st->total_restarts;
	c->c[TM_C_REJECTED] = st->total_rejected;
	c->c[TM_C_CRASHED] = st->total_crashed;
	c->c[TM_C_ESCALATIONS] = st->total_escalations;
}

static void hist_from_buckets(struct tt_hist *h, const uint64_t *b, uint64_t count, uint64_t sum, uint64_t max)
{
	h->present = true;
	h->count = count;
	h->mean_ns = count ? sum / count : 0;
	h->p50_ns = tm_hist_quantile(b, max, 0.50);
	h->p95_ns = tm_hist_quantile(b, max, 0.95);
	h->p99_ns = tm_hist_quantile(b, max, 0.99);
	h->max_ns = max;
}

static void set_name(struct tt_name *n, const char *s)
{
	snprintf(n->s, sizeof(n->s), "%s", s);
	n->flags = tt_str_flags(n->s, strlen(n->s));
}

static int read_types(struct tt_source *s, tm_shm_reader *r, struct tt_workload *w)
{
	struct shm_impl *k = s->impl;
	int n = tm_shm_read_types(r, k->types, TM_MAX_TYPES);
	if (n <= 0)
		return n;
	w->types = calloc((size_t)n, sizeof(*w->types));
	if (!w->types)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		const struct tm_shm_type_snapshot *src = &k->types[i];
		if (src->id < 0 || src->id >= TT_MAX_TYPES)
			continue;
		struct tt_type *t = &w->types[w->ntypes++];
		t->id = src->id;
		set_name(&t->name, src->name);
		memcpy(t->reg.c, src->counters, sizeof(src->counters));
		t->reg.c[TT_C_TRACE_SKIPPED] = src->trace_skipped;
		hist_from_buckets(&t->lib_latency, src->hist, src->latency_count, src->latency_sum_ns, src->latency_max_ns);
		if (src->latency_count && (t->lib_latency.buckets = malloc(sizeof(src->hist))))
			memcpy(t->lib_latency.buckets, src->hist, sizeof(src->hist));
	}
	return 0;
}

static int task_buffer(struct shm_impl *k, size_t n)
{
	if (n <= k->task_cap)
		return 0;
	struct tm_task_info *b = realloc(k->tasks, n * sizeof(*b));
	if (!b)
		return -ENOMEM;
	k->tasks = b;
	k->task_cap = n;
	return 0;
}

/* Up to cap records of a workload into k->tasks: all of them when they fit;
 * otherwise the running ones first, then finished ones. Count or -errno. */
static int pick_tasks(struct shm_impl *k, tm_shm_reader *r, uint64_t tracked, size_t cap)
{
	size_t want = tracked + 64 < cap ? tracked + 64 : cap;
	if (task_buffer(k, 2 * want) < 0)
		return -ENOMEM;
	int n = tm_shm_read_tasks(r, k->tasks, want, false);
	if (n < 0 || (size_t)n < want)
		return n;
	n = tm_shm_read_tasks(r, k->tasks, want, true);
	if (n < 0 || (size_t)n == want)
		return n;
	int all = tm_shm_read_tasks(r, k->tasks + want, want, false);
	for (int i = 0; i < all && (size_t)n < want; i++)
		if (k->tasks[want + i].status != TM_RUNNING)
			k->tasks[n++] = k->tasks[want + i];
	return n;
}

/* Messages of the tasks [first, m->ntasks) that ended panicked or crashed:
 * one read of the workload's ring, only when there is such a task. */
static int read_messages(struct shm_impl *k, tm_shm_reader *r, struct tt_model *m, size_t first)
{
	bool any = false;
	for (size_t i = first; i < m->ntasks && !any; i++)
		any = m->tasks[i].state == TT_ST_PANICKED || m->tasks[i].state == TT_ST_CRASHED;
	if (!any)
		return 0;
	if (!k->msgs && !(k->msgs = calloc(MAX_MESSAGES, sizeof(*k->msgs))))
		return -ENOMEM;
	int n = tm_shm_read_messages(r, k->msgs, MAX_MESSAGES);
	if (n <= 0)
		return n == -ENOMEM ? n : 0;   /* a torn ring costs the messages, not the tasks */
	for (size_t i = first; i < m->ntasks; i++) {
		struct tt_task *t = &m->tasks[i];
		if (t->state != TT_ST_PANICKED && t->state != TT_ST_CRASHED)
			continue;
		for (int j = 0; j < n; j++) {   /* newest first */
			if (k->msgs[j].task_id != t->id)
				continue;
			if (!(t->panic_message = strdup(k->msgs[j].text)))
				return -ENOMEM;
			break;
		}
	}
	return 0;
}

static int read_tasks(struct tt_source *s, tm_shm_reader *r, struct tt_model *m, size_t widx, size_t cap)
{
	struct shm_impl *k = s->impl;
	const struct tt_workload *w = &m->workloads[widx];
	int n = pick_tasks(k, r, w->tracked_records, cap);
	if (n < 0)
		return n;
	if (w->tracked_records > (uint64_t)n)
		m->dropped_tasks += w->tracked_records - (uint64_t)n;
	struct tt_task *tt = realloc(m->tasks, (m->ntasks + (size_t)n) * sizeof(*tt));
	if (!tt && n)
		return -ENOMEM;
	m->tasks = tt;
	for (int i = 0; i < n; i++) {
		const struct tm_task_info *src = &k->tasks[i];
		struct tt_task *t = &m->tasks[m->ntasks++];
		*t = (struct tt_task){ .widx = widx, .pid = w->pid, .id = src->id, .tid = (uint32_t)src->tid,
		                       .type = src->type, .rc = src->rc, .restarts = src->restarts,
		                       .spawn_ns = src->spawn_ns, .start_ns = src->start_ns, .end_ns = src->end_ns,
		                       .lib_cpu_ns = src->cpu_ns };
		set_name(&t->name, src->name);
		const struct tt_type *ty = tt_workload_find_type(w, src->type);
		if (ty)
			t->type_name = ty->name;
		t->state = (unsigned)src->status < TM_STATUS_COUNT ? (enum tt_state)src->status : TT_ST_UNKNOWN;
		t->finished = t->state != TT_ST_RUNNING;
		t->pending = !t->finished && !t->start_ns;
		uint64_t end = t->finished && t->end_ns ? t->end_ns : m->now_ns;
		t->age_ns = t->spawn_ns && end > t->spawn_ns ? end - t->spawn_ns : 0;
		t->run_ns = t->start_ns && end > t->start_ns ? end - t->start_ns : 0;
	}
	return read_messages(k, r, m, m->ntasks - (size_t)n);
}

/* A workload's figures (not its tasks) into m->workloads[m->nworkloads++]. */
static int read_workload_figures(struct tt_source *s, tm_shm_reader *r, struct tt_model *m)
{
	struct tm_stats st;
	if (tm_shm_read_stats(r, &st) < 0)
		return -EBADMSG;
	struct tt_workload *w = &m->workloads[m->nworkloads];
	*w = (struct tt_workload){ .pid = tm_shm_pid(r), .uid = (uid_t)-1, .has_registry = true, .alive = true };
	snprintf(w->comm.s, sizeof(w->comm.s), "%s", tm_shm_comm(r));
	w->comm.flags = tt_str_flags(w->comm.s, strlen(w->comm.s));
	w->closed = tm_shm_is_closed(r);
	w->invalid_records = tm_shm_invalid_records(r);
	counters_from_stats(&w->reg, &st);
	w->lib_latency = (struct tt_hist){ .present = true, .p50_ns = st.spawn_latency_p50_ns,
	                                   .p95_ns = st.spawn_latency_p95_ns, .p99_ns = st.spawn_latency_p99_ns,
	                                   .max_ns = st.spawn_latency_max_ns };
	w->tracked_records = st.tracked_records;
	w->tracker_bytes = st.tracker_bytes;
	int rc = read_types(s, r, w);
	if (rc < 0) {
		for (size_t i = 0; i < w->ntypes; i++)
			free(w->types[i].lib_latency.buckets);
		free(w->types);
		*w = (struct tt_workload){ 0 };
		return rc == -ENOMEM ? rc : -EBADMSG;
	}
	m->nworkloads++;
	return 0;
}

/* Figures and tasks; cap: the workload's share of the model's tasks. */
static int read_workload(struct tt_source *s, tm_shm_reader *r, struct tt_model *m, size_t cap)
{
	int rc = read_workload_figures(s, r, m);
	if (rc < 0)
		return rc;
	size_t budget = TT_MAX_TASKS - m->ntasks;
	if (cap > budget)
		cap = budget;
	if (cap && (rc = read_tasks(s, r, m, m->nworkloads - 1, cap)) < 0)
		return rc == -ENOMEM ? rc : 0;   /* figures without tasks are still worth showing */
	return 0;
}

/* ---- machine-wide ---------------------------------------------------------- */

static struct tt_mtype *mtype_for(struct tt_model *m, const char *name)
{
	for (size_t i = 0; i < m->nmtypes; i++)
		if (strcmp(m->mtypes[i].name.s, name) == 0)
			return &m->mtypes[i];
	if (m->nmtypes == TT_MAX_MTYPES)
		return NULL;
	struct tt_mtype *t = &m->mtypes[m->nmtypes++];
	set_name(&t->name, name);
	return t;
}

/* Sums over the workloads; spawn latency from every type's buckets merged. */
static int machine_totals(struct tt_model *m)
{
	uint64_t *all = calloc(TM_HIST_BUCKETS, sizeof(*all));
	m->mtypes = calloc(TT_MAX_MTYPES, sizeof(*m->mtypes));
	if (!all || !m->mtypes) {
		free(all);
		return -ENOMEM;
	}
	uint64_t count = 0, sum = 0, max = 0;
	for (size_t i = 0; i < m->nworkloads; i++) {
		const struct tt_workload *w = &m->workloads[i];
		for (int c = 0; c < TT_C_COUNT; c++)
			m->machine_reg.c[c] += c == TM_C_RUNNING && !w->alive ? 0 : w->reg.c[c];
		m->workloads_seen++;
		m->workloads_live += w->alive;
		m->workloads_gone += !w->alive;
		for (size_t k = 0; k < w->ntypes; k++) {
			const struct tt_type *t = &w->types[k];
			struct tt_mtype *mt = mtype_for(m, t->name.s);
			for (int c = 0; mt && c < TT_C_COUNT; c++)
				mt->reg.c[c] += t->reg.c[c];
			if (!t->lib_latency.buckets)
				continue;
			for (unsigned b = 0; b < TM_HIST_BUCKETS; b++)
				all[b] += t->lib_latency.buckets[b];
			count += t->lib_latency.count;
			sum += t->lib_latency.mean_ns * t->lib_latency.count;
			max = t->lib_latency.max_ns > max ? t->lib_latency.max_ns : max;
		}
	}
	if (!count) {
		free(all);
		return 0;
	}
	hist_from_buckets(&m->header_latency, all, count, sum, max);
	m->header_latency.buckets = all;
	return 0;
}

static int task_order(const void *a, const void *b)
{
	const struct tt_task *x = a, *y = b;
	if (x->widx != y->widx)
		return x->widx < y->widx ? -1 : 1;
	if (x->finished != y->finished)
		return x->finished ? 1 : -1;
	uint64_t kx = x->finished ? x->end_ns : x->spawn_ns, ky = y->finished ? y->end_ns : y->spawn_ns;
	/* running: oldest first, as the collector lists them; finished: newest first */
	if (kx != ky)
		return (kx < ky) == !x->finished ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* A deep copy of a departed workload's final figures (types, no buckets). */
static int copy_final(struct tt_workload *dst, const struct tt_workload *src)
{
	*dst = *src;
	dst->lib_latency.buckets = NULL;
	dst->types = NULL;
	if (!src->ntypes)
		return 0;
	dst->types = malloc(src->ntypes * sizeof(*dst->types));
	if (!dst->types)
		return -ENOMEM;
	memcpy(dst->types, src->types, src->ntypes * sizeof(*dst->types));
	for (size_t i = 0; i < dst->ntypes; i++)
		dst->types[i].lib_latency.buckets = NULL;
	return 0;
}

/* The workload of g went away: read it one last time, keep that, close. */
static void seg_gone(struct tt_source *s, struct seg *g)
{
	struct tt_model *tmp = tt_model_new(TT_SRC_STANDALONE);
	if (tmp && (tmp->workloads = calloc(1, sizeof(*tmp->workloads))) && read_workload_figures(s, g->r, tmp) == 0 &&
	    tmp->nworkloads == 1 && copy_final(&g->final, &tmp->workloads[0]) == 0) {
		g->final.alive = false;
		char path[TT_PATH_CAP + 32];
		struct stat st;
		seg_path(s, g->pid, path, sizeof(path));
		g->gone_mtime = stat(path, &st) == 0 ? (uint64_t)st.st_mtim.tv_sec * 1000000000ull +
		                                               (uint64_t)st.st_mtim.tv_nsec
		                                     : 0;
	}   /* else: nothing readable was left; final.pid stays 0 and it is not shown */
	tt_model_free(tmp);
	g->gone = true;
	tm_shm_close(g->r);
	g->r = NULL;
}

static int gone_order(const void *a, const void *b)
{
	const struct seg *x = *(const struct seg *const *)a, *y = *(const struct seg *const *)b;
	return (x->gone_mtime < y->gone_mtime) - (x->gone_mtime > y->gone_mtime);
}

/* Departed workloads, the most recent first, after the live ones. */
static int add_gone(struct shm_impl *k, struct tt_model *m)
{
	struct seg **gone = calloc(k->nsegs ? k->nsegs : 1, sizeof(*gone));
	if (!gone)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < k->nsegs; i++)
		if (k->segs[i].gone && k->segs[i].final.pid)
			gone[n++] = &k->segs[i];
	qsort(gone, n, sizeof(*gone), gone_order);
	k->gone_hidden = n > MAX_GONE_SHOWN ? n - MAX_GONE_SHOWN : 0;
	int rc = 0;
	for (size_t i = 0; i < n && i < MAX_GONE_SHOWN && rc == 0; i++)
		if ((rc = copy_final(&m->workloads[m->nworkloads], &gone[i]->final)) == 0)
			m->nworkloads++;
	free(gone);
	return rc;
}

static void say_status(struct tt_source *s, const struct tt_model *m)
{
	struct shm_impl *k = s->impl;
	size_t unreadable = 0, malformed = 0;
	for (size_t i = 0; i < k->nsegs; i++) {
		unreadable += k->segs[i].unreadable;
		malformed += k->segs[i].malformed;
	}
	char extra[400] = "";
	size_t len = 0;
	if (k->gone_hidden)
		len += (size_t)snprintf(extra + len, sizeof(extra) - len, "; %zu older departed not shown", k->gone_hidden);
	if (unreadable && len < sizeof(extra))
		len += (size_t)snprintf(extra + len, sizeof(extra) - len,
		                        "; %zu not readable (other users: run as root or start taskmond)", unreadable);
	if (malformed && len < sizeof(extra))
		snprintf(extra + len, sizeof(extra) - len, "; %zu malformed (%s)", malformed, k->last_malformed);
	tt__source_status(s, TT_HEALTH_DEGRADED, "standalone: %llu live workload%s from %s%s",
	                  (unsigned long long)m->workloads_live, m->workloads_live == 1 ? "" : "s",
	                  s->opts.shm_dir ? s->opts.shm_dir : TM_SHM_DIR, extra);
}

static int shm_sample(struct tt_source *s, int timeout_ms, struct tt_model **out)
{
	(void)timeout_ms;   /* reading memory does not wait */
	struct shm_impl *k = s->impl;
	int n = tm_shm_list(s->opts.shm_dir, k->pids, MAX_SEGMENTS);
	if (n < 0) {
		tt__source_status(s, TT_HEALTH_NONE, "cannot list %s: %s", s->opts.shm_dir ? s->opts.shm_dir : TM_SHM_DIR,
		                  tm_last_error());
		return -EAGAIN;
	}
	/* by pid, so that the workloads keep their order from one sample to the next */
	qsort(k->pids, (size_t)n, sizeof(*k->pids), pid_cmp);
	if (sync_segments(k, k->pids, (size_t)n) < 0)
		return -ENOMEM;
	size_t live = 0;
	uint64_t now = tt__now_ns(CLOCK_MONOTONIC);
	for (size_t i = 0; i < k->nsegs; i++) {
		struct seg *g = &k->segs[i];
		if (!g->r && !g->gone && now >= g->retry_ns)
			seg_open(s, g, now);
		if (g->r && tm_shm_is_stale(g->r))
			seg_gone(s, g);
		live += g->r != NULL;
	}
	struct tt_model *m = tt_model_new(TT_SRC_STANDALONE);
	size_t cap = live + MAX_GONE_SHOWN;
	if (!m || !(m->workloads = calloc(cap, sizeof(*m->workloads)))) {
		tt_model_free(m);
		return -ENOMEM;
	}
	m->now_ns = tt__now_ns(CLOCK_MONOTONIC);
	m->now_unix_ns = tt__now_ns(CLOCK_REALTIME);
	/* an equal share of the tasks each: one huge workload does not hide the others */
	size_t share = live ? TT_MAX_TASKS / live : TT_MAX_TASKS;
	if (share < 256)
		share = 256;
	int rc = 0;
	for (size_t i = 0; i < k->nsegs && rc != -ENOMEM; i++) {
		struct seg *g = &k->segs[i];
		if (g->r && (rc = read_workload(s, g->r, m, share)) == -EBADMSG) {
			g->malformed = true;   /* torn or forged: reopened (revalidated) later */
			g->retry_ns = now + RETRY_NS;
			snprintf(k->last_malformed, sizeof(k->last_malformed), "%s", tm_last_error());
			tm_shm_close(g->r);
			g->r = NULL;
		}
	}
	if (rc == -ENOMEM || add_gone(k, m) < 0 || machine_totals(m) < 0) {
		tt_model_free(m);
		return -ENOMEM;
	}
	qsort(m->tasks, m->ntasks, sizeof(*m->tasks), task_order);
	m->kernel_figures = false;
	snprintf(m->kernel_off_reason, sizeof(m->kernel_off_reason), "%s", s->kernel_off_reason);
	say_status(s, m);
	*out = m;
	return 0;
}

static void shm_close(struct tt_source *s)
{
	struct shm_impl *k = s->impl;
	if (!k)
		return;
	for (size_t i = 0; i < k->nsegs; i++)
		seg_release(&k->segs[i]);
	free(k->segs);
	free(k->pids);
	free(k->types);
	free(k->tasks);
	free(k->msgs);
	free(k);
}

static const struct tt_source_ops shm_ops = {
	.sample = shm_sample,
	.close = shm_close,
};

int tt__shm_open(struct tt_source **out, const struct tt_source_opts *opts, const char *why_off, char *err,
                 size_t errlen)
{
	struct tt_source *s;
	int rc = tt__source_new(&s, TT_SRC_STANDALONE, &shm_ops, opts, err, errlen);
	if (rc < 0)
		return rc;
	struct shm_impl *k = calloc(1, sizeof(*k));
	if (k) {
		k->pids = calloc(MAX_SEGMENTS, sizeof(*k->pids));
		k->types = calloc(TM_MAX_TYPES, sizeof(*k->types));
	}
	s->impl = k;
	if (!k || !k->pids || !k->types) {
		snprintf(err, errlen, "out of memory");
		tt_source_close(s);
		return -ENOMEM;
	}
	snprintf(s->kernel_off_reason, sizeof(s->kernel_off_reason), "%s",
	         why_off ? why_off : "standalone mode: kernel figures off");
	*out = s;
	return 0;
}

int tt_source_open_shm(struct tt_source **out, const struct tt_source_opts *opts, char *err, size_t errlen)
{
	return tt__shm_open(out, opts, NULL, err, errlen);
}
