/* taskmon plan: the capacity-planning report.
 *
 *   taskmon plan DIR... [--tasks N] [--spawn-rate R] [--svg FILE] [--config FILE]
 *                       [--workload NAME] [--pid PID]
 *
 * Reads the records taskmond --record wrote and fits, per workload (by
 * executable name), by least squares:
 *   memory:  RSS   = base + per_task × running tasks     (one point per process per record)
 *   cpu:     cores = base + cost_per_spawn × spawns/s     (one point per process per interval)
 * and for the collector its cores against the machine's spawn rate. It states
 * the measured spawn latency against the spawn rate, answers --tasks and
 * --spawn-rate from the fits, and compares the load with the [task_limits]
 * of a library configuration file.
 *
 * Memory is fitted on the running count at each record, so records taken
 * while tasks are ending (a process keeps much of their memory cached) pull
 * the per-task figure down; the plan is of growth.
 *
 * Records are hostile input: every figure is checked to be a finite,
 * non-negative number before use, and a record that lacks one simply does
 * not contribute. Nothing printed can be NaN: a fit that cannot be made is
 * reported in words instead.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "config.h"
#include "fit.h"
#include "records.h"
#include "svg.h"

#define MAX_DIRS       64
#define NAME_LEN       64      /* sanitized executable names */
#define LOAD_BUCKETS   4       /* rows of the latency-against-load table */
#define FAR_FACTOR     1.5     /* an answer past 1.5 × the measured maximum is far out */
#define MIN_LEVELS     3       /* distinct x values a fit needs (see fit_levels) */
#define FIT_TWO_LEVELS 1       /* a reason not to fit that is not an errno */
#define ROUGH_R2       0.5     /* below this a fit's answer is called rough */
#define FINE_CORES     0.005   /* CPU counted in coarser steps than this gets a note */
#define SAMPLES_MAX    64      /* task latencies kept per interval: a week of records stays in memory */
#define WORKLOADS_MAX  1024    /* executable names, and processes, beyond these are left out */
#define PROCS_MAX      65536

/* ---- growable arrays ------------------------------------------------------ */

struct dvec { double *v; size_t n, cap; };

static int push(struct dvec *d, double x)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		double *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = x;
	return 0;
}

static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
	size_t c;
	void *p;

	if (n < *cap)
		return arr;
	c = *cap ? *cap * 2 : 16;
	p = realloc(arr, c * size);
	if (p)
		*cap = c;
	return p;
}

/* ---- the data taken from the records -------------------------------------- */

/* Between two records of one process. */
struct ival {
	double t, rate, cores, running, spawns;
	double lat_n, lat_mean;    /* spawn latencies the kernel measured in it (mean: exact, from the histogram) */
	size_t s_first, s_n;       /* its tasks' own latencies in the workload's samples */
	size_t proc;               /* index into plan.procs */
};

struct type_peak { char name[TM_NAME_MAX]; double peak; };

/* The processes of one executable name. */
struct workload {
	char name[NAME_LEN];
	size_t procs;
	struct dvec t, running, rss;           /* one entry per process per record */
	size_t *owner, ownercap;               /* for each of those, its index into plan.procs */
	struct ival *iv;
	size_t niv, ivcap;
	struct dvec samples;                   /* task spawn latencies, ns, in interval order */
	struct type_peak types[TM_MAX_TYPES];
	unsigned ntypes;
	double hist_count, hist_p50, hist_p99, hist_max;   /* kernel histogram of the latest record */
	double cpu_step, cpu_step_dt;          /* smallest CPU increase seen in an interval, ns; its length, s */
	struct tm_fit mem, cpu;
	int mem_rc, cpu_rc;                    /* 0 = fitted, else why not */
};

/* One workload process within one collector run: what the next record's
 * figures are differences from. */
struct proc {
	unsigned dir;
	double collector, pid, start_ticks;
	size_t wl;
	double mono, spawned, cpu_ns, lat_count, lat_mean;
	bool has_lat;
};

struct run {          /* one collector process in one directory */
	unsigned dir;
	double pid, mono, cpu_ns, spawned;
};

struct plan {
	/* options */
	const char *dirs[MAX_DIRS];
	unsigned ndirs;
	double tasks, spawn_rate;   /* 0 = not asked */
	const char *svg, *config, *only;     /* only: --workload NAME */
	double only_pid;                     /* --pid PID; 0 = all */
	struct tm__config limits;
	/* what the records held */
	size_t records, skipped, unusable;
	double t0_ns, t1_ns;
	struct workload *wl;
	size_t nwl, wlcap;
	struct proc *procs;
	size_t nprocs, proccap, hint;          /* hint: where the next lookup likely succeeds */
	size_t left_out;                       /* workload entries past WORKLOADS_MAX or PROCS_MAX */
	uint64_t rng;                          /* for the latency reservoir; fixed seed: reports reproduce */
	struct run *runs;
	size_t nruns, runcap;
	struct dvec ct, crss;                  /* collector: time, RSS */
	struct dvec crate, ccores;             /* collector: per interval */
	struct tm_fit ccpu;
	int ccpu_rc;
};

/* Snapshot integers never exceed 2^63 - 1; anything larger is a lie, and
 * bounding every input keeps every sum and square of the fits finite. */
#define MAX_FIGURE 9.3e18

/* A finite, non-negative number under key, or false. */
static bool num(const json_t *o, const char *key, double *out)
{
	const json_t *v = json_object_get(o, key);
	double d;

	if (json_is_integer(v))
		d = (double)json_integer_value(v);
	else if (json_is_real(v))
		d = json_real_value(v);
	else
		return false;
	if (!isfinite(d) || d < 0 || d > MAX_FIGURE)
		return false;
	*out = d;
	return true;
}

static json_t *obj(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_object(v) ? v : NULL;
}

/* Printable ASCII only: names come from processes we do not trust. */
static void sanitize(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; src && src[i] && i + 1 < len; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
	if (i == 0)
		snprintf(dst, len, "?");
}

static struct workload *workload_for(struct plan *p, const char *comm)
{
	char name[NAME_LEN];
	struct workload *w;

	sanitize(name, sizeof(name), comm);
	for (size_t i = 0; i < p->nwl; i++)
		if (strcmp(p->wl[i].name, name) == 0)
			return &p->wl[i];
	if (p->nwl == WORKLOADS_MAX)
		return NULL;
	w = grow(p->wl, &p->wlcap, p->nwl, sizeof(*w));
	if (!w)
		return NULL;
	p->wl = w;
	w = &p->wl[p->nwl++];
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->mem_rc = w->cpu_rc = -ENODATA;
	return w;
}

static struct proc *proc_for(struct plan *p, unsigned dir, double collector, double pid,
                             double ticks, size_t wl, bool *fresh)
{
	struct proc *q;

	*fresh = false;
	/* Records list the same processes in the same order, so the search
	 * starts where the last one ended and usually succeeds at once. */
	for (size_t k = 0; k < p->nprocs; k++) {
		size_t i = (p->hint + k) % p->nprocs;
		q = &p->procs[i];
		if (q->dir == dir && q->collector == collector && q->pid == pid && q->start_ticks == ticks && q->wl == wl) {
			p->hint = i + 1;
			return q;
		}
	}
	if (p->nprocs == PROCS_MAX)
		return NULL;
	q = grow(p->procs, &p->proccap, p->nprocs, sizeof(*q));
	if (!q)
		return NULL;
	p->procs = q;
	q = &p->procs[p->nprocs++];
	*q = (struct proc){ .dir = dir, .collector = collector, .pid = pid, .start_ticks = ticks, .wl = wl };
	*fresh = true;
	return q;
}

static void note_types(struct workload *w, const json_t *types)
{
	size_t i;
	json_t *ty;

	json_array_foreach(types, i, ty) {
		const char *name = json_string_value(json_object_get(ty, "name"));
		double running;
		unsigned k;
		if (!name || !num(obj(ty, "registry"), "running", &running))
			continue;
		for (k = 0; k < w->ntypes && strcmp(w->types[k].name, name) != 0; k++)
			;
		if (k == w->ntypes) {
			if (k == TM_MAX_TYPES)
				continue;
			w->ntypes++;
			sanitize(w->types[k].name, sizeof(w->types[k].name), name);
			w->types[k].peak = 0;
		}
		w->types[k].peak = fmax(w->types[k].peak, running);
	}
}

static uint64_t next_random(uint64_t *s)
{
	/* xorshift64*: any non-zero seed */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* The spawn latencies of this process's tasks that started in (from, to]:
 * a task's latency is known from its start, so each is taken exactly once,
 * and the window does not lean towards quick starts. At most SAMPLES_MAX,
 * drawn uniformly (reservoir sampling) from those the record lists. */
static int take_samples(struct plan *p, struct workload *w, const json_t *tasks, double pid, double from, double to)
{
	size_t i, first = w->samples.n, seen = 0;
	json_t *t;

	json_array_foreach(tasks, i, t) {
		double tp, start, lat;
		if (!num(t, "pid", &tp) || tp != pid || !num(t, "start_ns", &start) || start <= from || start > to)
			continue;
		if (!num(obj(t, "kernel"), "spawn_latency_ns", &lat))
			continue;
		if (++seen <= SAMPLES_MAX) {
			if (push(&w->samples, lat))
				return -ENOMEM;
		} else {
			uint64_t j = next_random(&p->rng) % seen;
			if (j < SAMPLES_MAX)
				w->samples.v[first + j] = lat;
		}
	}
	return 0;
}

static int push_owner(struct workload *w, size_t proc)
{
	size_t *o = grow(w->owner, &w->ownercap, w->t.n, sizeof(*o));

	if (!o)
		return -ENOMEM;
	w->owner = o;
	o[w->t.n] = proc;
	return 0;
}

static const json_t *process_entry(const json_t *meta, double pid)
{
	const json_t *list = json_object_get(meta, "processes");
	size_t i;
	json_t *e;
	double v;

	json_array_foreach(list, i, e)
		if (num(e, "pid", &v) && v == pid)
			return e;
	return NULL;
}

static int take_interval(struct plan *p, struct workload *w, struct proc *q, const json_t *rec,
                         double mono, double t, double running, double spawned, double cpu_ns,
                         const json_t *lat)
{
	struct ival iv = { .t = t, .running = running, .s_first = w->samples.n, .proc = (size_t)(q - p->procs) };
	double dt = (mono - q->mono) / 1e9, count, mean;
	struct ival *arr;

	iv.spawns = spawned - q->spawned;
	iv.rate = iv.spawns / dt;
	iv.cores = (cpu_ns - q->cpu_ns) / 1e9 / dt;
	if (cpu_ns > q->cpu_ns && (w->cpu_step == 0 || cpu_ns - q->cpu_ns < w->cpu_step)) {
		w->cpu_step = cpu_ns - q->cpu_ns;
		w->cpu_step_dt = dt;
	}
	iv.lat_mean = -1;
	if (q->has_lat && num(lat, "count", &count) && num(lat, "mean_ns", &mean) && count > q->lat_count) {
		iv.lat_n = count - q->lat_count;
		iv.lat_mean = (count * mean - q->lat_count * q->lat_mean) / iv.lat_n;
		if (!isfinite(iv.lat_mean) || iv.lat_mean < 0) {   /* a reset or a lie */
			iv.lat_n = 0;
			iv.lat_mean = -1;
		}
	}
	if (take_samples(p, w, json_object_get(rec, "tasks"), q->pid, q->mono, mono))
		return -ENOMEM;
	iv.s_n = w->samples.n - iv.s_first;
	arr = grow(w->iv, &w->ivcap, w->niv, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	w->iv = arr;
	w->iv[w->niv++] = iv;
	return 0;
}

static int take_workload(struct plan *p, unsigned dir, double collector, const json_t *rec,
                         const json_t *wj, double mono, double t)
{
	const json_t *reg = obj(wj, "registry"), *lat = obj(obj(wj, "kernel"), "spawn_latency"), *pe;
	double pid, ticks = 0, running, spawned, rss, cpu_ns, v;
	const char *comm;
	struct workload *w;
	struct proc *q;
	bool fresh;

	if (!json_is_true(json_object_get(wj, "alive")) || !num(wj, "pid", &pid) ||
	    !num(reg, "running", &running) || !num(reg, "spawned", &spawned))
		return 0;
	pe = process_entry(obj(rec, "record"), pid);
	if (!pe || !num(pe, "rss_bytes", &rss) || !num(pe, "cpu_ns", &cpu_ns))
		return 0;
	num(wj, "start_ticks", &ticks);
	comm = json_string_value(json_object_get(wj, "comm"));
	if ((p->only && (!comm || strcmp(comm, p->only) != 0)) || (p->only_pid && pid != p->only_pid))
		return 0;
	w = workload_for(p, comm);
	if (!w) {
		p->left_out++;
		return 0;
	}
	q = proc_for(p, dir, collector, pid, ticks, (size_t)(w - p->wl), &fresh);
	if (!q) {
		p->left_out++;
		return 0;
	}
	if (push_owner(w, (size_t)(q - p->procs)) || push(&w->t, t) || push(&w->running, running) || push(&w->rss, rss))
		return -ENOMEM;
	note_types(w, json_object_get(wj, "types"));
	if (num(lat, "count", &v) && v > 0) {
		w->hist_count = v;
		num(lat, "p50_ns", &w->hist_p50);
		num(lat, "p99_ns", &w->hist_p99);
		num(lat, "max_ns", &w->hist_max);
	}
	if (fresh)
		w->procs++;
	else if (mono > q->mono && spawned >= q->spawned && cpu_ns >= q->cpu_ns &&
	         take_interval(p, w, q, rec, mono, t, running, spawned, cpu_ns, lat))
		return -ENOMEM;
	q->mono = mono;
	q->spawned = spawned;
	q->cpu_ns = cpu_ns;
	q->has_lat = num(lat, "count", &q->lat_count) && num(lat, "mean_ns", &q->lat_mean);
	return 0;
}

static int take_collector(struct plan *p, unsigned dir, double pid, const json_t *rec, double mono, double t)
{
	const json_t *c = obj(obj(rec, "record"), "collector");
	double rss, cpu_ns, spawned;
	struct run *r = NULL;

	if (!num(c, "rss_bytes", &rss) || !num(c, "cpu_ns", &cpu_ns) ||
	    !num(obj(obj(rec, "machine"), "registry"), "spawned", &spawned))
		return 0;
	if (push(&p->ct, t) || push(&p->crss, rss))
		return -ENOMEM;
	for (size_t i = 0; i < p->nruns; i++)
		if (p->runs[i].dir == dir && p->runs[i].pid == pid)
			r = &p->runs[i];
	if (!r) {
		r = grow(p->runs, &p->runcap, p->nruns, sizeof(*r));
		if (!r)
			return -ENOMEM;
		p->runs = r;
		r = &p->runs[p->nruns++];
		*r = (struct run){ .dir = dir, .pid = pid, .mono = mono, .cpu_ns = cpu_ns, .spawned = spawned };
		return 0;
	}
	if (mono > r->mono && cpu_ns >= r->cpu_ns && spawned >= r->spawned) {
		double dt = (mono - r->mono) / 1e9;
		if (push(&p->crate, (spawned - r->spawned) / dt) || push(&p->ccores, (cpu_ns - r->cpu_ns) / 1e9 / dt))
			return -ENOMEM;
	}
	r->mono = mono;
	r->cpu_ns = cpu_ns;
	r->spawned = spawned;
	return 0;
}

static int take_record(struct plan *p, unsigned dir, const json_t *rec, double t)
{
	const json_t *wls = json_object_get(rec, "workloads");
	double mono, cpid;
	size_t i;
	json_t *wj;

	if (!obj(rec, "record") || !num(rec, "now_ns", &mono) || !num(obj(rec, "collector"), "pid", &cpid)) {
		p->unusable++;
		return 0;
	}
	if (take_collector(p, dir, cpid, rec, mono, t))
		return -ENOMEM;
	json_array_foreach(wls, i, wj)
		if (take_workload(p, dir, cpid, rec, wj, mono, t))
			return -ENOMEM;
	return 0;
}

/* Opens every directory first: times on the charts count from the earliest
 * record of them all. */
static int load(struct plan *p)
{
	struct tm_records *r[MAX_DIRS] = { 0 };
	char err[256];
	int rc = 0;

	p->t0_ns = INFINITY;
	p->t1_ns = 0;
	for (unsigned d = 0; d < p->ndirs && !rc; d++) {
		err[0] = '\0';
		rc = tm_records_open(&r[d], p->dirs[d], 0, 0, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "taskmon plan: %s\n", err[0] ? err : strerror(-rc));
			break;
		}
		if (tm_records_count(r[d]) > 0) {
			p->t0_ns = fmin(p->t0_ns, (double)tm_records_time(r[d], 0));
			p->t1_ns = fmax(p->t1_ns, (double)tm_records_time(r[d], tm_records_count(r[d]) - 1));
		}
	}
	for (unsigned d = 0; d < p->ndirs && !rc; d++) {
		size_t n = tm_records_count(r[d]);
		for (size_t i = 0; i < n && !rc; i++) {
			json_t *rec = tm_records_get(r[d], i);
			if (!rec) {
				p->unusable++;
				continue;
			}
			p->records++;
			rc = take_record(p, d, rec, ((double)tm_records_time(r[d], i) - p->t0_ns) / 1e9);
		}
		p->skipped += tm_records_skipped(r[d]);
	}
	if (rc == -ENOMEM)
		fprintf(stderr, "taskmon plan: out of memory while reading the records\n");
	for (unsigned d = 0; d < p->ndirs; d++)
		if (r[d])
			tm_records_close(r[d]);
	return rc;
}

/* ---- fitting -------------------------------------------------------------- */

/* A line through two levels of x passes through both means whatever the
 * shape in between, and its R² only says how tight each level is: such a fit
 * would look perfect and prove nothing. */
static int fit_levels(const double *x, const double *y, size_t n, struct tm_fit *f)
{
	if (n >= TM_FIT_MIN_POINTS && tm_distinct(x, n, MIN_LEVELS) == 2)
		return FIT_TWO_LEVELS;
	return tm_fit_line(x, y, n, f);
}

static void fit_workload(struct workload *w)
{
	struct dvec x = { 0 }, y = { 0 };

	w->mem_rc = fit_levels(w->running.v, w->rss.v, w->running.n, &w->mem);
	for (size_t i = 0; i < w->niv; i++)
		if (push(&x, w->iv[i].rate) || push(&y, w->iv[i].cores))
			break;
	w->cpu_rc = x.n == w->niv ? fit_levels(x.v, y.v, x.n, &w->cpu) : -ENOMEM;
	free(x.v);
	free(y.v);
}

/* ---- printing ------------------------------------------------------------- */

static const char *bytes(char *buf, size_t len, double b)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double a = fabs(b);
	unsigned u = 0;

	while (a >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		a /= 1024;
		u++;
	}
	snprintf(buf, len, "%s%.*f %s", b < 0 ? "-" : "", u == 0 || a >= 100 ? 0 : a >= 10 ? 1 : 2, a, unit[u]);
	return buf;
}

static const char *duration(char *buf, size_t len, double ns)
{
	const char *sign = ns < 0 ? "-" : "";
	double a = fabs(ns);

	if (a < 999.5)
		snprintf(buf, len, "%s%.0f ns", sign, a);
	else if (a < 999.5e3)
		snprintf(buf, len, "%s%.3g µs", sign, a / 1e3);
	else if (a < 999.5e6)
		snprintf(buf, len, "%s%.3g ms", sign, a / 1e6);
	else
		snprintf(buf, len, "%s%.3g s", sign, a / 1e9);
	return buf;
}

/* Four decimals, without the "-0.0000" of a base a hair below zero. */
static double cores(double v)
{
	return fabs(v) < 0.00005 ? 0.0 : v;
}

static const char *why_not(int rc, const char *what, const char *x)
{
	static char buf[200];

	if (rc == -EDOM)
		snprintf(buf, sizeof(buf), "not fitted: %s never varied across the records, so its effect cannot be told; "
		         "record while the load changes", x);
	else if (rc == -ENOMEM)
		snprintf(buf, sizeof(buf), "not fitted: out of memory");
	else if (rc == -ERANGE)
		snprintf(buf, sizeof(buf), "not fitted: the figures are too large to fit");
	else if (rc == FIT_TWO_LEVELS)
		snprintf(buf, sizeof(buf), "not fitted: %s took only two values, and a line through two levels fits "
		         "any shape; record at least %d", x, MIN_LEVELS);
	else
		snprintf(buf, sizeof(buf), "not fitted: fewer than %d %s", TM_FIT_MIN_POINTS, what);
	return buf;
}

static void print_memory_fit(const struct workload *w)
{
	char b1[32], b2[32], b3[32], b4[32];

	if (w->mem_rc) {
		printf("  memory  %s\n", why_not(w->mem_rc, "samples", "the running task count"));
		return;
	}
	printf("  memory  RSS = %s %c %s × running tasks   R² %.3f  (%zu samples, running %.0f..%.0f, RSS %s..%s)\n",
	       bytes(b1, sizeof(b1), w->mem.intercept), w->mem.slope < 0 ? '-' : '+',
	       bytes(b2, sizeof(b2), fabs(w->mem.slope)), w->mem.r2, w->mem.n,
	       w->mem.x_min, w->mem.x_max, bytes(b3, sizeof(b3), w->mem.y_min), bytes(b4, sizeof(b4), w->mem.y_max));
	if (w->mem.slope <= 0)
		printf("          the data do not show memory growing with tasks: the per-task figure is not a cost\n");
}

static void print_cpu_fit(const char *indent, const char *who, const struct tm_fit *f, int rc, const char *x)
{
	char b1[32];

	if (rc) {
		printf("%scpu     %s\n", indent, why_not(rc, "intervals", x));
		return;
	}
	printf("%scpu     %s cores = %.4f %c %s × %s   R² %.3f  (%zu intervals, %.0f..%.0f spawns/s)\n", indent, who,
	       cores(f->intercept), f->slope < 0 ? '-' : '+', duration(b1, sizeof(b1), fabs(f->slope) * 1e9), x, f->r2,
	       f->n, f->x_min, f->x_max);
}

/* Right-aligned in width columns: printf counts the two bytes of "µ" as two. */
static void cell(const char *s, int width)
{
	int cols = 0;

	for (const char *c = s; *c; c++)
		cols += ((unsigned char)*c & 0xc0) != 0x80;
	printf("%*s%s", width > cols ? width - cols : 0, "", s);
}

static int cmp_rate(const void *a, const void *b)
{
	const struct ival *x = *(const struct ival *const *)a, *y = *(const struct ival *const *)b;
	return (x->rate > y->rate) - (x->rate < y->rate);
}

static void print_bucket(const struct workload *w, struct ival **iv, size_t n)
{
	struct dvec s = { 0 };
	double spawns = 0, lat_n = 0, lat_sum = 0, rmin = INFINITY, rmax = 0;
	char m[32] = "-", q50[32] = "-", q99[32] = "-", rates[48], run[48];

	for (size_t i = 0; i < n; i++) {
		spawns += iv[i]->spawns;
		rmin = fmin(rmin, iv[i]->running);
		rmax = fmax(rmax, iv[i]->running);
		if (iv[i]->lat_mean >= 0) {
			lat_n += iv[i]->lat_n;
			lat_sum += iv[i]->lat_n * iv[i]->lat_mean;
		}
		for (size_t k = 0; k < iv[i]->s_n; k++)
			if (push(&s, w->samples.v[iv[i]->s_first + k]))
				break;
	}
	if (lat_n > 0)
		duration(m, sizeof(m), lat_sum / lat_n);
	if (s.n > 0) {
		duration(q50, sizeof(q50), tm_quantile(s.v, s.n, 0.50));
		duration(q99, sizeof(q99), tm_quantile(s.v, s.n, 0.99));
	}
	snprintf(rates, sizeof(rates), "%.0f..%.0f", iv[0]->rate, iv[n - 1]->rate);
	snprintf(run, sizeof(run), "%.0f..%.0f", rmin, rmax);
	printf("    %-18s %-16s %9zu %9.0f", rates, run, n, spawns);
	cell(m, 11);
	cell(q50, 11);
	cell(q99, 11);
	printf(" %8zu\n", s.n);
	free(s.v);
}

/* Intervals with spawns, sorted by spawn rate and cut into LOAD_BUCKETS rows
 * of equal count: each row holds the same weight of evidence. */
static void print_latency(const struct workload *w)
{
	struct ival **busy = malloc((w->niv ? w->niv : 1) * sizeof(*busy));
	size_t n = 0, idle;
	char b1[32], b2[32], b3[32];

	if (!busy)
		return;
	for (size_t i = 0; i < w->niv; i++)
		if (w->iv[i].spawns > 0)
			busy[n++] = &w->iv[i];
	idle = w->niv - n;
	if (n == 0) {
		printf("  spawn latency: no interval with spawns (%zu idle)\n", idle);
		free(busy);
		return;
	}
	qsort(busy, n, sizeof(*busy), cmp_rate);
	printf("  spawn latency against load (task_spawn -> task_start; mean over every spawn the kernel saw,\n"
	       "  p50/p99 over the tasks the records list, at most %d drawn per interval; %zu idle interval%s left out):\n",
	       SAMPLES_MAX, idle, idle == 1 ? "" : "s");
	printf("    %-18s %-16s %9s %9s %11s %11s %11s %8s\n", "spawns/s", "running", "intervals", "spawns",
	       "mean", "p50", "p99", "samples");
	for (size_t b = 0; b < LOAD_BUCKETS && b < n; b++) {
		size_t from = n * b / LOAD_BUCKETS, to = n * (b + 1) / LOAD_BUCKETS;
		if (n < LOAD_BUCKETS)
			from = b, to = b + 1;
		if (to > from)
			print_bucket(w, busy + from, to - from);
	}
	if (w->hist_count > 0)
		printf("    process lifetime (latest record): p50 %s, p99 %s, max %s over %.0f spawns\n",
		       duration(b1, sizeof(b1), w->hist_p50), duration(b2, sizeof(b2), w->hist_p99),
		       duration(b3, sizeof(b3), w->hist_max), w->hist_count);
	free(busy);
}

static void print_reach(double x, double lo, double hi, const char *what)
{
	if (x > hi * FAR_FACTOR && hi > 0)
		printf("          warning: %.3g× the largest %s measured (%.0f): far outside the data, the line may not hold there\n",
		       x / hi, what, hi);
	else if (x > hi || x < lo)
		printf("          note: outside the %s measured (%.0f..%.0f): extrapolated\n", what, lo, hi);
}

static void answer_tasks(const struct plan *p, const struct workload *w)
{
	char b1[32], b2[32];

	if (w->mem_rc) {
		printf("  --tasks %.0f: no answer, the memory fit is missing\n", p->tasks);
		return;
	}
	if (w->mem.slope <= 0) {
		printf("  --tasks %.0f: no answer, memory did not grow with the running count in these records\n", p->tasks);
		return;
	}
	printf("  --tasks %.0f: RSS %s ± %s (95%% prediction interval; fit R² %.3f)\n", p->tasks,
	       bytes(b1, sizeof(b1), tm_fit_at(&w->mem, p->tasks)), bytes(b2, sizeof(b2), tm_fit_band(&w->mem, p->tasks)),
	       w->mem.r2);
	print_reach(p->tasks, w->mem.x_min, w->mem.x_max, "concurrency");
}

/* A process's cores at a spawn rate: the fitted line where CPU grows with the
 * rate; where it did not, the measured mean (a per-spawn cost the data do not
 * show is not extrapolated, neither up nor below zero). */
static double cpu_share(const struct tm_fit *f, double rate, bool *flat)
{
	*flat = !(f->slope > 0);
	return *flat ? tm_fit_at(f, f->x_mean) : tm_fit_at(f, rate);
}

static void cpu_notes(const char *who, const struct tm_fit *f, bool flat)
{
	if (flat)
		printf("          note: the %s's CPU did not grow with the spawn rate in these records: its mean is taken\n",
		       who);
	else if (f->r2 < ROUGH_R2)
		printf("          note: the %s's fit explains %.0f%% of the variation in its CPU: a rough figure\n", who,
		       100 * f->r2);
}

static void answer_rate(const struct plan *p, const struct workload *w)
{
	double own, coll;
	bool own_flat, coll_flat = false;

	if (w->cpu_rc) {
		printf("  --spawn-rate %g: no answer, the cpu fit is missing\n", p->spawn_rate);
		return;
	}
	own = cpu_share(&w->cpu, p->spawn_rate, &own_flat);
	if (p->ccpu_rc) {
		printf("  --spawn-rate %g: %.3f cores in the workload (R² %.3f); the collector's share is not fitted\n",
		       p->spawn_rate, cores(own), w->cpu.r2);
	} else {
		coll = cpu_share(&p->ccpu, p->spawn_rate, &coll_flat);
		printf("  --spawn-rate %g: %.3f cores = %.3f in the workload (R² %.3f) + %.3f in the collector (R² %.3f)\n",
		       p->spawn_rate, cores(own + coll), cores(own), w->cpu.r2, cores(coll), p->ccpu.r2);
	}
	cpu_notes("workload", &w->cpu, own_flat);
	if (!p->ccpu_rc)
		cpu_notes("collector", &p->ccpu, coll_flat);
	print_reach(p->spawn_rate, w->cpu.x_min, w->cpu.x_max, "spawn rate");
}

static void headroom_line(const char *limit, double max, double peak)
{
	if (peak > max)
		printf("    %s = %.0f: peak %.0f running exceeds it (the records were not made under this limit)\n",
		       limit, max, peak);
	else
		printf("    %s = %.0f: peak %.0f running, %.0f%% headroom\n", limit, max, peak, 100 * (1 - peak / max));
}

static void print_headroom(const struct plan *p, const struct workload *w)
{
	const struct tm__config *c = &p->limits;
	double peak = w->running.n ? w->running.v[0] : 0;
	char b1[32];
	bool any = false;

	for (size_t i = 1; i < w->running.n; i++)
		peak = fmax(peak, w->running.v[i]);
	printf("  limits (%s):\n", p->config ? p->config : "library defaults; give --config FILE for the configured ones");
	if (c->max_concurrent_total) {
		double max = (double)c->max_concurrent_total;
		any = true;
		headroom_line("max_concurrent_total", max, peak);
		if (!w->mem_rc)
			printf("      at the limit the process needs RSS %s\n", bytes(b1, sizeof(b1), tm_fit_at(&w->mem, max)));
		if (p->tasks > max)
			printf("      --tasks %.0f is past it: spawns beyond %.0f are refused (EAGAIN)\n", p->tasks, max);
		else if (p->tasks > 0)
			printf("      --tasks %.0f leaves %.0f%% headroom\n", p->tasks, 100 * (1 - p->tasks / max));
	}
	for (unsigned t = 0; t < c->ntypes; t++) {
		char name[64];
		double tpeak = 0;
		if (!c->types[t].max_concurrent)
			continue;
		any = true;
		for (unsigned k = 0; k < w->ntypes; k++)
			if (strcmp(w->types[k].name, c->types[t].name) == 0)
				tpeak = w->types[k].peak;
		snprintf(name, sizeof(name), "%s max_concurrent", c->types[t].name);
		headroom_line(name, (double)c->types[t].max_concurrent, tpeak);
	}
	if (!any)
		printf("    none: no concurrency limit is configured\n");
}

/* Several processes under one name are fitted as one workload; their pids
 * let the reader take one apart with --pid. */
static void print_pids(const struct plan *p, const struct workload *w)
{
	size_t shown = 0, wl = (size_t)(w - p->wl);

	printf("  %zu processes share this name and are fitted together (--pid PID takes one): pid", w->procs);
	for (size_t i = 0; i < p->nprocs && shown < 8; i++)
		if (p->procs[i].wl == wl)
			printf("%s %.0f", shown++ ? "," : "", p->procs[i].pid);
	printf("%s\n", w->procs > shown ? ", ..." : "");
}

static void print_workload(const struct plan *p, const struct workload *w)
{
	char b1[32];

	printf("\nworkload %s: %zu process%s, %zu samples, %zu intervals\n", w->name, w->procs, w->procs == 1 ? "" : "es",
	       w->running.n, w->niv);
	if (w->procs > 1)
		print_pids(p, w);
	print_memory_fit(w);
	print_cpu_fit("  ", "workload", &w->cpu, w->cpu_rc, "spawns/s");
	if (w->cpu_step_dt > 0 && w->cpu_step / 1e9 / w->cpu_step_dt > FINE_CORES)
		printf("          CPU time moved in steps as small as %s, %.3g cores over an interval: "
		       "a longer interval gives finer figures\n", duration(b1, sizeof(b1), w->cpu_step),
		       w->cpu_step / 1e9 / w->cpu_step_dt);
	print_latency(w);
	if (p->tasks > 0)
		answer_tasks(p, w);
	if (p->spawn_rate > 0)
		answer_rate(p, w);
	print_headroom(p, w);
}

static void print_collector(const struct plan *p)
{
	char b1[32], b2[32];
	double lo = INFINITY, hi = 0;

	for (size_t i = 0; i < p->crss.n; i++) {
		lo = fmin(lo, p->crss.v[i]);
		hi = fmax(hi, p->crss.v[i]);
	}
	printf("\ncollector: %zu run%s, %zu samples\n", p->nruns, p->nruns == 1 ? "" : "s", p->crss.n);
	print_cpu_fit("  ", "collector", &p->ccpu, p->ccpu_rc, "machine spawns/s");
	if (p->crss.n)
		printf("  memory  RSS %s..%s\n", bytes(b1, sizeof(b1), lo), bytes(b2, sizeof(b2), hi));
}

static void print_header(const struct plan *p)
{
	char from[32] = "", to[32] = "";
	time_t a = (time_t)(p->t0_ns / 1e9), b = (time_t)(p->t1_ns / 1e9);
	struct tm tm;

	if (gmtime_r(&a, &tm))
		strftime(from, sizeof(from), "%Y-%m-%d %H:%M:%S", &tm);
	if (gmtime_r(&b, &tm))   /* the date again only when it changed */
		strftime(to, sizeof(to), b / 86400 == a / 86400 ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
	printf("taskmon plan: %zu records from %u director%s, %s to %s UTC (%.0f s)", p->records, p->ndirs,
	       p->ndirs == 1 ? "y" : "ies", from, to, (p->t1_ns - p->t0_ns) / 1e9);
	if (p->skipped || p->unusable)
		printf("; %zu lines did not parse, %zu records lacked the figures", p->skipped, p->unusable);
	if (p->left_out)
		printf("; %zu workload entries past %d names or %d processes left out", p->left_out, WORKLOADS_MAX,
		       PROCS_MAX);
	printf("\n");
}

/* ---- the chart ------------------------------------------------------------ */

/* The columns a chart plots: over time per process (a line through two
 * processes' points would zigzag between them), scatter and fits per
 * workload. */
struct proc_cols { struct dvec t, running, rss_mib, fit_mib, ivt, rate, p99; };
struct wl_cols { struct dvec rate, cores, rss_mib, run_fit, rss_fit, rate_fit, cores_fit; };

static void free_proc_cols(struct proc_cols *c)
{
	struct dvec *v[] = { &c->t, &c->running, &c->rss_mib, &c->fit_mib, &c->ivt, &c->rate, &c->p99 };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]->v);
}

static void free_wl_cols(struct wl_cols *c)
{
	struct dvec *v[] = { &c->rate, &c->cores, &c->rss_mib, &c->run_fit, &c->rss_fit, &c->rate_fit, &c->cores_fit };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]->v);
}

/* p99 of one interval's task samples, in ms; NaN (a gap in the line) without any. */
static int interval_p99(const struct workload *w, const struct ival *iv, double *out)
{
	struct dvec s = { 0 };

	*out = NAN;
	for (size_t k = 0; k < iv->s_n; k++)
		if (push(&s, w->samples.v[iv->s_first + k])) {
			free(s.v);
			return -ENOMEM;
		}
	if (s.n)
		*out = tm_quantile(s.v, s.n, 0.99) / 1e6;
	free(s.v);
	return 0;
}

/* The two ends of a fitted line over the x range it was fitted on. */
static int fit_ends(const struct tm_fit *f, double scale, struct dvec *x, struct dvec *y)
{
	return push(x, f->x_min) || push(x, f->x_max) || push(y, tm_fit_at(f, f->x_min) / scale) ||
	       push(y, tm_fit_at(f, f->x_max) / scale) ? -ENOMEM : 0;
}

static int process_columns(const struct workload *w, struct proc_cols *pc)
{
	for (size_t i = 0; i < w->t.n; i++) {
		struct proc_cols *c = &pc[w->owner[i]];
		if (push(&c->t, w->t.v[i]) || push(&c->running, w->running.v[i]) ||
		    push(&c->rss_mib, w->rss.v[i] / 1048576.0) ||
		    push(&c->fit_mib, w->mem_rc ? NAN : tm_fit_at(&w->mem, w->running.v[i]) / 1048576.0))
			return -ENOMEM;
	}
	for (size_t i = 0; i < w->niv; i++) {
		struct proc_cols *c = &pc[w->iv[i].proc];
		double p99;
		if (interval_p99(w, &w->iv[i], &p99) || push(&c->ivt, w->iv[i].t) || push(&c->rate, w->iv[i].rate) ||
		    push(&c->p99, p99))
			return -ENOMEM;
	}
	return 0;
}

static int workload_columns(const struct workload *w, struct wl_cols *c)
{
	for (size_t i = 0; i < w->rss.n; i++)
		if (push(&c->rss_mib, w->rss.v[i] / 1048576.0))
			return -ENOMEM;
	for (size_t i = 0; i < w->niv; i++)
		if (push(&c->rate, w->iv[i].rate) || push(&c->cores, w->iv[i].cores))
			return -ENOMEM;
	if (!w->mem_rc && fit_ends(&w->mem, 1048576.0, &c->run_fit, &c->rss_fit))
		return -ENOMEM;
	if (!w->cpu_rc && fit_ends(&w->cpu, 1.0, &c->rate_fit, &c->cores_fit))
		return -ENOMEM;
	return 0;
}

/* Latencies under a millisecond read better in microseconds: rescales the
 * p99 columns (kept in ms) when every one of them is below 1 ms. */
static bool small_latencies(struct proc_cols *c, size_t n)
{
	double max = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < c[i].p99.n; k++)
			if (isfinite(c[i].p99.v[k]))
				max = fmax(max, c[i].p99.v[k]);
	if (max >= 1)
		return false;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < c[i].p99.n; k++)
			c[i].p99.v[k] *= 1000;
	return true;
}

enum { P_RUNNING, P_RATE, P_P99, P_RSS, P_MEMFIT, P_CPUFIT, NPANELS };

struct panel_series { struct tm_svg_series *s; size_t n, cap; };

static int add(struct panel_series *ps, const char *label, const struct dvec *x, const struct dvec *y,
               enum tm_svg_style style, unsigned color)
{
	struct tm_svg_series *a = grow(ps->s, &ps->cap, ps->n, sizeof(*a));

	if (!a)
		return -ENOMEM;
	ps->s = a;
	a[ps->n++] = (struct tm_svg_series){ label, x->v, y->v, x->n < y->n ? x->n : y->n, style, color };
	return 0;
}

static int add_process(struct panel_series *ps, const char *nm, const struct proc_cols *c, unsigned col)
{
	return add(&ps[P_RUNNING], nm, &c->t, &c->running, TM_SVG_LINE, col) ||
	       add(&ps[P_RATE], nm, &c->ivt, &c->rate, TM_SVG_LINE, col) ||
	       add(&ps[P_P99], nm, &c->ivt, &c->p99, TM_SVG_DOTS, col) ||
	       add(&ps[P_RSS], nm, &c->t, &c->rss_mib, TM_SVG_LINE, col) ||
	       add(&ps[P_RSS], NULL, &c->t, &c->fit_mib, TM_SVG_DASHED, col) ? -ENOMEM : 0;
}

static int add_workload(struct panel_series *ps, const struct workload *w, const struct wl_cols *c, unsigned col)
{
	const char *nm = w->name;

	return add(&ps[P_MEMFIT], nm, &w->running, &c->rss_mib, TM_SVG_DOTS, col) ||
	       add(&ps[P_MEMFIT], NULL, &c->run_fit, &c->rss_fit, TM_SVG_DASHED, col) ||
	       add(&ps[P_CPUFIT], nm, &c->rate, &c->cores, TM_SVG_DOTS, col) ||
	       add(&ps[P_CPUFIT], NULL, &c->rate_fit, &c->cores_fit, TM_SVG_DASHED, col) ? -ENOMEM : 0;
}

static int write_chart(const struct plan *p, FILE *f)
{
	struct wl_cols *wc = calloc(p->nwl + 1, sizeof(*wc));
	struct proc_cols *pc = calloc(p->nprocs + 1, sizeof(*pc));
	struct panel_series ps[NPANELS] = { 0 };
	struct tm_svg_panel panels[NPANELS] = {
		{ .title = "Concurrency", .x_label = "time (s)", .y_label = "running tasks" },
		{ .title = "Spawn rate", .x_label = "time (s)", .y_label = "spawns/s" },
		{ .title = "Spawn latency p99 per interval (tasks listed in the records)", .x_label = "time (s)", .y_label = "p99 (ms)" },
		{ .title = "Memory (dashed: the fit at the running count)", .x_label = "time (s)", .y_label = "RSS (MiB)" },
		{ .title = "Memory against concurrency, with the fitted line", .x_label = "running tasks", .y_label = "RSS (MiB)" },
		{ .title = "CPU against spawn rate, with the fitted lines", .x_label = "spawns/s", .y_label = "cores" },
	};
	struct dvec cfit_x = { 0 }, cfit_y = { 0 };
	int rc = wc && pc ? 0 : -ENOMEM;
	char title[200];

	for (size_t i = 0; i < p->nwl && !rc; i++) {
		rc = workload_columns(&p->wl[i], &wc[i]) || process_columns(&p->wl[i], pc) ? -ENOMEM : 0;
		if (!rc)
			rc = add_workload(ps, &p->wl[i], &wc[i], (unsigned)i);
	}
	for (size_t i = 0; i < p->nprocs && !rc; i++)
		rc = add_process(ps, p->wl[p->procs[i].wl].name, &pc[i], (unsigned)p->procs[i].wl);
	if (!rc && small_latencies(pc, p->nprocs))
		panels[P_P99].y_label = "p99 (us)";
	if (!rc && p->crate.n)
		rc = add(&ps[P_CPUFIT], "collector (machine spawns/s)", &p->crate, &p->ccores, TM_SVG_DOTS, (unsigned)p->nwl);
	if (!rc && !p->ccpu_rc) {
		rc = fit_ends(&p->ccpu, 1.0, &cfit_x, &cfit_y);
		if (!rc)
			rc = add(&ps[P_CPUFIT], NULL, &cfit_x, &cfit_y, TM_SVG_DASHED, (unsigned)p->nwl);
	}
	if (!rc) {
		for (int k = 0; k < NPANELS; k++) {
			panels[k].series = ps[k].s;
			panels[k].nseries = ps[k].n;
			if (k <= P_RSS) {   /* the time panels share one span */
				panels[k].x_lo = 0;
				panels[k].x_hi = (p->t1_ns - p->t0_ns) / 1e9;
			}
		}
		snprintf(title, sizeof(title), "taskmon plan: %zu records over %.0f s", p->records,
		         (p->t1_ns - p->t0_ns) / 1e9);
		rc = tm_svg_write(f, title, panels, NPANELS);
	}
	for (int k = 0; k < NPANELS; k++)
		free(ps[k].s);
	free(cfit_x.v);
	free(cfit_y.v);
	for (size_t i = 0; wc && i < p->nwl; i++)
		free_wl_cols(&wc[i]);
	for (size_t i = 0; pc && i < p->nprocs; i++)
		free_proc_cols(&pc[i]);
	free(wc);
	free(pc);
	return rc;
}

/* ---- the command ---------------------------------------------------------- */

#define USAGE \
	"usage: taskmon plan DIR... [--tasks N] [--spawn-rate R] [--svg FILE] [--config FILE]\n" \
	"                    [--workload NAME] [--pid PID]\n" \
	"  Fits memory = base + per_task x running tasks and CPU = base + cost x spawn rate\n" \
	"  from the records taskmond --record wrote into each DIR, and answers:\n" \
	"  --tasks N        memory needed to hold N tasks at once, per workload\n" \
	"  --spawn-rate R   CPU cores needed at R spawns/s (workload and collector)\n" \
	"  --svg FILE       a chart of the records and the fits\n" \
	"  --config FILE    the library configuration whose [task_limits] the load is held against\n" \
	"  --workload NAME  only the workloads of this executable name (the collector is always shown)\n" \
	"  --pid PID        only this process\n"

/* A positive number no larger than max (whole when whole is set). */
static bool parse_number(const char *s, double max, bool whole, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v <= 0 || v > max || (whole && v != floor(v)))
		return false;
	*out = v;
	return true;
}

/* "--name VALUE" or "--name=VALUE": the value, or NULL when arg is another flag. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, bool *matched)
{
	size_t len = strlen(name);
	const char *a = argv[*i];

	*matched = false;
	if (strncmp(a, name, len) != 0 || (a[len] != '\0' && a[len] != '='))
		return NULL;
	*matched = true;
	if (a[len] == '=')
		return a + len + 1;
	return ++*i < argc ? argv[*i] : NULL;
}

static int parse_args(struct plan *p, int argc, char **argv)
{
	bool dashdash = false, m;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		if (dashdash || a[0] != '-' || a[1] == '\0') {
			if (p->ndirs == MAX_DIRS) {
				fprintf(stderr, "taskmon plan: at most %d directories\n", MAX_DIRS);
				return 2;
			}
			p->dirs[p->ndirs++] = a;
		} else if (strcmp(a, "--") == 0) {
			dashdash = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(USAGE, stdout);
			return -1;
		} else if ((v = flag_value(argc, argv, &i, "--tasks", &m)), m) {
			if (!parse_number(v, 1e9, true, &p->tasks)) {
				fprintf(stderr, "taskmon plan: --tasks needs a whole number from 1 to 1000000000\n");
				return 2;
			}
		} else if ((v = flag_value(argc, argv, &i, "--spawn-rate", &m)), m) {
			if (!parse_number(v, 1e9, false, &p->spawn_rate)) {
				fprintf(stderr, "taskmon plan: --spawn-rate needs a number of spawns per second above 0 and at most 1e9\n");
				return 2;
			}
		} else if ((v = flag_value(argc, argv, &i, "--svg", &m)), m) {
			if (!v || !*v) {
				fprintf(stderr, "taskmon plan: --svg needs a file name\n");
				return 2;
			}
			p->svg = v;
		} else if ((v = flag_value(argc, argv, &i, "--workload", &m)), m) {
			if (!v || !*v) {
				fprintf(stderr, "taskmon plan: --workload needs an executable name\n");
				return 2;
			}
			p->only = v;
		} else if ((v = flag_value(argc, argv, &i, "--pid", &m)), m) {
			if (!parse_number(v, 4194304, true, &p->only_pid)) {
				fprintf(stderr, "taskmon plan: --pid needs a process id from 1 to 4194304\n");
				return 2;
			}
		} else if ((v = flag_value(argc, argv, &i, "--config", &m)), m) {
			if (!v || !*v) {
				fprintf(stderr, "taskmon plan: --config needs a file name\n");
				return 2;
			}
			p->config = v;
		} else {
			fprintf(stderr, "taskmon plan: unknown option '%s'\n%s", a, USAGE);
			return 2;
		}
	}
	if (p->ndirs == 0) {
		fprintf(stderr, "taskmon plan: no record directory given\n%s", USAGE);
		return 2;
	}
	return 0;
}

static int load_limits(struct plan *p)
{
	char err[512] = "";
	int rc;

	tm__config_defaults(&p->limits);
	if (!p->config)
		return 0;
	rc = tm__config_load(&p->limits, p->config, err, sizeof(err));
	if (rc)
		fprintf(stderr, "taskmon plan: %s\n", err[0] ? err : strerror(-rc));
	return rc;
}

/* One sentence when the records cannot carry a plan at all. */
static bool enough(const struct plan *p)
{
	bool any = false;

	if (p->records < TM_FIT_MIN_POINTS) {
		fprintf(stderr, "taskmon plan: %zu record%s in %s%s; a plan needs at least %d, taken while the load changes\n",
		        p->records, p->records == 1 ? "" : "s", p->dirs[0], p->ndirs > 1 ? " and the others" : "",
		        TM_FIT_MIN_POINTS);
		return false;
	}
	if (p->nwl == 0 && (p->only || p->only_pid)) {
		fprintf(stderr, "taskmon plan: none of the %zu records holds a live workload %s with its task "
		        "counts and its memory\n", p->records, p->only_pid ? "of that --pid" : "of that --workload name");
		return false;
	}
	if (p->nwl == 0) {
		fprintf(stderr, "taskmon plan: none of the %zu records holds a live workload with its task counts and "
		        "its memory; record while a program linked with libtaskmon runs\n", p->records);
		return false;
	}
	for (size_t i = 0; i < p->nwl; i++)
		any = any || !p->wl[i].mem_rc || !p->wl[i].cpu_rc;
	if (!any) {
		fprintf(stderr, "taskmon plan: no workload's running task count or spawn rate varied across the %zu records, "
		        "so neither memory per task nor CPU per spawn can be fitted; record while the load changes\n",
		        p->records);
		return false;
	}
	return true;
}

/* Non-zero when a question asked found no workload to answer it. */
static bool unanswered(const struct plan *p)
{
	bool tasks = false, rate = false;

	for (size_t i = 0; i < p->nwl; i++) {
		tasks = tasks || !p->wl[i].mem_rc;
		rate = rate || !p->wl[i].cpu_rc;
	}
	return (p->tasks > 0 && !tasks) || (p->spawn_rate > 0 && !rate);
}

static int save_chart(const struct plan *p)
{
	FILE *f = fopen(p->svg, "we");
	int rc;

	if (!f) {
		fprintf(stderr, "taskmon plan: cannot write %s: %s\n", p->svg, strerror(errno));
		return -errno;
	}
	rc = write_chart(p, f);
	if (fclose(f) != 0 && !rc)
		rc = -EIO;
	if (rc)
		fprintf(stderr, "taskmon plan: writing %s failed: %s\n", p->svg, strerror(-rc));
	return rc;
}

static void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->nwl; i++) {
		free(p->wl[i].t.v);
		free(p->wl[i].running.v);
		free(p->wl[i].rss.v);
		free(p->wl[i].samples.v);
		free(p->wl[i].iv);
		free(p->wl[i].owner);
	}
	free(p->wl);
	free(p->procs);
	free(p->runs);
	free(p->ct.v);
	free(p->crss.v);
	free(p->crate.v);
	free(p->ccores.v);
}

static int run_plan(struct plan *p)
{
	if (load_limits(p) || load(p))
		return 1;
	for (size_t i = 0; i < p->nwl; i++)
		fit_workload(&p->wl[i]);
	p->ccpu_rc = tm_fit_line(p->crate.v, p->ccores.v, p->crate.n, &p->ccpu);
	if (!enough(p))
		return 1;
	print_header(p);
	printf("(± is the 95%% prediction interval of a fit, which assumes independent residuals)\n");
	for (size_t i = 0; i < p->nwl; i++)
		print_workload(p, &p->wl[i]);
	print_collector(p);
	if (fflush(stdout) != 0)
		return 1;
	if (p->svg && save_chart(p))
		return 1;
	if (unanswered(p)) {
		fprintf(stderr, "taskmon plan: no workload's records could answer %s; see the reasons above\n",
		        p->tasks > 0 && p->spawn_rate > 0 ? "--tasks and --spawn-rate" :
		        p->tasks > 0 ? "--tasks" : "--spawn-rate");
		return 1;
	}
	return 0;
}

int tm_cmd_plan(int argc, char **argv)
{
	struct plan *p = calloc(1, sizeof(*p));
	int rc;

	if (!p) {
		fprintf(stderr, "taskmon plan: out of memory\n");
		return 1;
	}
	p->rng = 0x9e3779b97f4a7c15ull;
	rc = parse_args(p, argc, argv);
	if (rc == 0)
		rc = run_plan(p);
	else if (rc < 0)
		rc = 0;   /* --help */
	plan_free(p);
	free(p);
	return rc;
}
