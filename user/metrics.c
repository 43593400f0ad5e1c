/* The Prometheus exposition (format and names in metrics.h): the merge's
 * figures summed per (workload name, type), plus the totals of workloads that
 * are gone, written family by family into one buffer. */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "taskmon.h"

#define OTHER "(other)"
#define NLE 22                      /* finite bucket bounds */
#define NSLOT (NLE + 1)             /* ... and +Inf */

static const uint64_t le_ns[NLE] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 25000000, 50000000, 100000000, 250000000, 500000000,
	1000000000, 2500000000, 5000000000, 10000000000,
};
static const char *const le_text[NLE] = {
	"1e-06", "2.5e-06", "5e-06", "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005",
	"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
	"1", "2.5", "5", "10",
};

enum { H_LATENCY, H_ONCPU, H_RUNQ, H_COUNT };

/* A histogram in the exposition's buckets, not cumulative yet. */
struct phist {
	uint64_t slot[NSLOT];
	uint64_t count, sum_ns;
};

struct figures {
	uint64_t counters[TMD_C_COUNT];
	struct phist h[H_COUNT];
};

struct series {
	char workload[16];
	char type[TM_NAME_MAX];
	struct figures kept;        /* workloads that are gone */
	struct figures now;         /* live ones (and gone ones not folded yet), this scrape */
};

struct crash_series {
	char workload[16];
	uint64_t kept[32], now[32];
};

struct folded {
	pid_t pid;
	unsigned long long start_ticks;
	uint64_t seen_ns;
	bool present;               /* mark for the sweep */
};

struct tmd_metrics {
	struct series *s;           /* sorted by (workload, type) */
	size_t ns;
	struct crash_series *c;     /* sorted by workload */
	size_t nc;
	struct folded *f;           /* departed workloads already in `kept` */
	size_t nf, fcap;
	uint64_t overflow;          /* pairs put under "(other)" */
	size_t max_series;          /* TMD_METRICS_MAX_SERIES, or less (tests) */
	uint8_t slot_of[TM_HIST_BUCKETS];
};

/* ---- output buffer ---------------------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
	bool oom;
};

static void reserve(struct out *o, size_t n)
{
	if (o->oom || o->len + n + 1 <= o->cap)
		return;
	size_t cap = o->cap ? o->cap : 65536;
	while (cap < o->len + n + 1)
		cap *= 2;
	char *p = realloc(o->p, cap);
	if (!p) {
		o->oom = true;
		return;
	}
	o->p = p;
	o->cap = cap;
}

static void put(struct out *o, const char *s, size_t n)
{
	reserve(o, n);
	if (o->oom)
		return;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	for (int pass = 0; pass < 2; pass++) {
		bool can = o->p && !o->oom;
		size_t room = can ? o->cap - o->len : 0;
		va_start(ap, fmt);
		int n = vsnprintf(can ? o->p + o->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0 || o->oom)
			return;
		if ((size_t)n < room) {
			o->len += (size_t)n;
			return;
		}
		reserve(o, (size_t)n);
	}
}

static void put_u64(struct out *o, uint64_t v)
{
	char b[24], *p = b + sizeof(b);
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	put(o, p, (size_t)(b + sizeof(b) - p));
}

/* Nanoseconds as seconds, exactly: "12.000345678". */
static void put_seconds(struct out *o, uint64_t ns)
{
	putf(o, "%llu.%09llu", (unsigned long long)(ns / 1000000000u), (unsigned long long)(ns % 1000000000u));
}

size_t tmd_metrics_escape_label(char *out, size_t cap, const char *in)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		char e[2] = { (char)*p, 0 };
		size_t k = 1;
		if (*p == '\\' || *p == '"' || *p == '\n') {
			e[0] = '\\';
			e[1] = *p == '\n' ? 'n' : (char)*p;
			k = 2;
		} else if (*p < 0x20 || *p > 0x7e) {
			e[0] = '?';
		}
		for (size_t i = 0; i < k; i++, n++)
			if (cap && n < cap - 1)
				out[n] = e[i];
	}
	if (cap)
		out[n < cap ? n : cap - 1] = '\0';
	return n;
}

static void put_label(struct out *o, const char *name, const char *value, bool first)
{
	char buf[4 * TM_NAME_MAX + 8];
	size_t n = tmd_metrics_escape_label(buf, sizeof(buf), value);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;   /* not reached: keys are at most TM_NAME_MAX - 1 bytes */
	if (!first)
		put(o, ",", 1);
	puts_(o, name);
	put(o, "=\"", 2);
	put(o, buf, n);
	put(o, "\"", 1);
}

/* HELP text: backslash and newline escaped. */
static void put_family(struct out *o, const char *name, const char *type, const char *help)
{
	puts_(o, "# HELP ");
	puts_(o, name);
	put(o, " ", 1);
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			put(o, "\\\\", 2);
		else if (*p == '\n')
			put(o, "\\n", 2);
		else
			put(o, p, 1);
	}
	puts_(o, "\n# TYPE ");
	puts_(o, name);
	put(o, " ", 1);
	puts_(o, type);
	put(o, "\n", 1);
}

static void put_scalar(struct out *o, const char *name, const char *type, const char *help, uint64_t v)
{
	put_family(o, name, type, help);
	puts_(o, name);
	put(o, " ", 1);
	put_u64(o, v);
	put(o, "\n", 1);
}

/* ---- the kept series ---------------------------------------------------------- */

/* Label values as kept: printable ASCII and newlines, anything else '?', so
 * that two names never escape to the same text. */
static void key_copy(char *dst, size_t cap, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = c == '\n' || (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
	}
	dst[i] = '\0';
}

static int series_cmp(const char *w, const char *t, const struct series *s)
{
	int c = strcmp(w, s->workload);
	return c ? c : strcmp(t, s->type);
}

/* Index of the pair, or where it goes (*found false). */
static size_t series_pos(const struct tmd_metrics *mx, const char *w, const char *t, bool *found)
{
	size_t lo = 0, hi = mx->ns;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = series_cmp(w, t, &mx->s[mid]);
		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

/* The series of (workload, type), made when new; past the limit the pair is
 * counted under "(other)" (there is always room for that: types are few). */
static struct series *series_get(struct tmd_metrics *mx, const char *workload, const char *type)
{
	char w[16], t[TM_NAME_MAX];
	bool found;
	key_copy(w, sizeof(w), workload);
	key_copy(t, sizeof(t), *type ? type : "unknown");
	size_t at = series_pos(mx, w, t, &found);
	if (found)
		return &mx->s[at];
	if (mx->ns >= mx->max_series) {
		mx->overflow++;
		snprintf(w, sizeof(w), "%s", OTHER);
		at = series_pos(mx, w, t, &found);
		if (found)
			return &mx->s[at];
	}
	/* Capacity: TMD_METRICS_MAX_SERIES + one "(other)" per machine-wide type name and "unknown". */
	if (mx->ns >= TMD_METRICS_MAX_SERIES + TMD_MAX_MTYPES + 2)
		return NULL;
	memmove(&mx->s[at + 1], &mx->s[at], (mx->ns - at) * sizeof(*mx->s));
	memset(&mx->s[at], 0, sizeof(*mx->s));
	snprintf(mx->s[at].workload, sizeof(mx->s[at].workload), "%s", w);
	snprintf(mx->s[at].type, sizeof(mx->s[at].type), "%s", t);
	mx->ns++;
	return &mx->s[at];
}

static struct crash_series *crash_get(struct tmd_metrics *mx, const char *workload)
{
	char w[16];
	key_copy(w, sizeof(w), workload);
	size_t lo = 0, hi = mx->nc;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(w, mx->c[mid].workload);
		if (!c)
			return &mx->c[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	/* Past the limit, "(other)", which always has room. */
	if (mx->nc >= TMD_METRICS_MAX_WORKLOADS && strcmp(w, OTHER) != 0)
		return crash_get(mx, OTHER);
	if (mx->nc > TMD_METRICS_MAX_WORKLOADS)
		return NULL;
	memmove(&mx->c[lo + 1], &mx->c[lo], (mx->nc - lo) * sizeof(*mx->c));
	memset(&mx->c[lo], 0, sizeof(*mx->c));
	snprintf(mx->c[lo].workload, sizeof(mx->c[lo].workload), "%s", w);
	mx->nc++;
	return &mx->c[lo];
}

int tmd_metrics_new(struct tmd_metrics **out)
{
	struct tmd_metrics *mx = calloc(1, sizeof(*mx));
	if (!mx)
		return -ENOMEM;
	mx->s = calloc(TMD_METRICS_MAX_SERIES + TMD_MAX_MTYPES + 2, sizeof(*mx->s));
	mx->c = calloc(TMD_METRICS_MAX_WORKLOADS + 1, sizeof(*mx->c));
	if (!mx->s || !mx->c) {
		tmd_metrics_free(mx);
		return -ENOMEM;
	}
	mx->max_series = TMD_METRICS_MAX_SERIES;
	/* Each log-linear bucket goes under the first bound its highest value does not pass. */
	for (unsigned b = 0; b < TM_HIST_BUCKETS; b++) {
		uint64_t high = b + 1 < TM_HIST_BUCKETS ? tm_hist_bucket_low(b + 1) - 1 : UINT64_MAX;
		unsigned slot = 0;
		while (slot < NLE && high > le_ns[slot])
			slot++;
		mx->slot_of[b] = (uint8_t)slot;
	}
	*out = mx;
	return 0;
}

void tmd_metrics_set_max_series(struct tmd_metrics *mx, size_t max)
{
	if (max < mx->max_series && max >= mx->ns)
		mx->max_series = max;
}

void tmd_metrics_free(struct tmd_metrics *mx)
{
	if (!mx)
		return;
	free(mx->s);
	free(mx->c);
	free(mx->f);
	free(mx);
}

/* ---- adding a workload's figures ---------------------------------------------- */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	uint64_t s;
	return __builtin_add_overflow(a, b, &s) ? UINT64_MAX : s;
}

static void phist_add(const struct tmd_metrics *mx, struct phist *p, const struct tmd_hist *h)
{
	if (!h || !h->count)
		return;
	p->count = sat_add(p->count, h->count);
	p->sum_ns = sat_add(p->sum_ns, h->sum_ns);
	for (unsigned b = 0; b < TM_HIST_BUCKETS; b++)
		if (h->bucket[b])
			p->slot[mx->slot_of[b]] = sat_add(p->slot[mx->slot_of[b]], h->bucket[b]);
}

static bool has_figures(const struct tmd_wtype *t)
{
	if (t->k.started || t->k.ended || t->k.partial)
		return true;
	for (int c = 0; c < TMD_C_COUNT; c++)
		if (t->counters[c])
			return true;
	return false;
}

/* A workload type's label: its machine-wide name (a bounded set) when resolved. */
static const char *type_label(const struct tmd_merge *m, const struct tmd_workload *w, unsigned id)
{
	const struct tmd_machine *mc = tmd_merge_machine(m);
	int mt = w->types[id].mtype;
	if (mt >= 0 && (size_t)mt < mc->ntypes)
		return mc->types[mt].name;
	return tmd_workload_type_name(w, id);
}

/* Adds w's figures to `kept` (a gone workload, once) or to `now`. */
static void add_workload(struct tmd_metrics *mx, const struct tmd_merge *m, const struct tmd_workload *w, bool kept)
{
	for (unsigned id = 0; id < TM_MAX_TYPES; id++) {
		const struct tmd_wtype *t = &w->types[id];
		if (!has_figures(t))
			continue;
		struct series *s = series_get(mx, w->comm, type_label(m, w, id));
		if (!s)
			continue;
		struct figures *f = kept ? &s->kept : &s->now;
		for (int c = 0; c < TMD_C_COUNT; c++)
			if (c != TM_C_RUNNING || w->alive)
				f->counters[c] = sat_add(f->counters[c], t->counters[c]);
		phist_add(mx, &f->h[H_LATENCY], t->k.latency);
		phist_add(mx, &f->h[H_ONCPU], t->k.run);
		phist_add(mx, &f->h[H_RUNQ], t->k.runq);
	}
	bool crashed = false;
	for (int sig = 1; sig < 32; sig++)
		crashed |= w->crash_signals[sig] != 0;
	struct crash_series *c = crashed ? crash_get(mx, w->comm) : NULL;
	for (int sig = 1; c && sig < 32; sig++) {
		uint64_t *v = kept ? &c->kept[sig] : &c->now[sig];
		*v = sat_add(*v, w->crash_signals[sig]);
	}
}

static struct folded *folded_find(struct tmd_metrics *mx, const struct tmd_workload *w)
{
	for (size_t i = 0; i < mx->nf; i++)
		if (mx->f[i].pid == w->pid && mx->f[i].start_ticks == w->start_ticks && mx->f[i].seen_ns == w->seen_ns)
			return &mx->f[i];
	return NULL;
}

void tmd_metrics_observe(struct tmd_metrics *mx, const struct tmd_merge *m, uint64_t now)
{
	size_t n = tmd_merge_workload_count(m);
	struct tmd_merge_counters c;
	tmd_merge_get_counters(m, &c);
	/* With the departed list half full, a burst of exits could push the
	 * oldest out before their delay is up: fold them at once. */
	bool hurry = c.workloads_dead > tmd_merge_options(m)->max_dead / 2;
	for (size_t i = 0; i < mx->nf; i++)
		mx->f[i].present = false;
	for (size_t i = 0; i < n; i++) {
		const struct tmd_workload *w = tmd_merge_workload_at(m, i);
		if (w->alive)
			continue;
		struct folded *f = folded_find(mx, w);
		if (f) {
			f->present = true;
			continue;
		}
		if (!hurry && w->gone_ns + TMD_METRICS_FOLD_DELAY_NS > now)
			continue;
		if (mx->nf == mx->fcap) {
			size_t cap = mx->fcap ? mx->fcap * 2 : 64;
			struct folded *p = realloc(mx->f, cap * sizeof(*p));
			if (!p)
				continue;   /* tried again at the next call */
			mx->f = p;
			mx->fcap = cap;
		}
		add_workload(mx, m, w, true);
		mx->f[mx->nf++] = (struct folded){ .pid = w->pid, .start_ticks = w->start_ticks, .seen_ns = w->seen_ns,
		                                   .present = true };
	}
	/* The merge forgot these: no need to tell them apart any longer. */
	size_t k = 0;
	for (size_t i = 0; i < mx->nf; i++)
		if (mx->f[i].present)
			mx->f[k++] = mx->f[i];
	mx->nf = k;
}

/* ---- writing ---------------------------------------------------------------------- */

struct counter_family {
	int counter;
	const char *name, *type, *help;
};

static const struct counter_family task_counters[] = {
	{ TM_C_SPAWNED, "taskmon_tasks_spawned_total", "counter", "Tasks spawned (tm_spawn calls that made a task)." },
	{ TM_C_SUCCEEDED, "taskmon_tasks_completed_total", "counter",
	  "Tasks that completed successfully (body returned 0)." },
	{ TM_C_FAILED, "taskmon_tasks_failed_total", "counter", "Tasks whose body returned non-zero." },
	{ TM_C_PANICKED, "taskmon_tasks_panicked_total", "counter", "Tasks that ended in tm_panic." },
	{ TM_C_CANCELLED, "taskmon_tasks_cancelled_total", "counter", "Tasks that ended cancelled." },
	{ TM_C_TIMED_OUT, "taskmon_tasks_timed_out_total", "counter", "Tasks that ended past their deadline." },
	{ TM_C_CRASHED, "taskmon_tasks_crashed_total", "counter",
	  "Tasks ended by a contained fault (contain_faults)." },
	{ TM_C_RESTARTS, "taskmon_tasks_restarted_total", "counter", "Restarts of critical tasks." },
	{ TM_C_ESCALATIONS, "taskmon_tasks_escalated_total", "counter", "Critical tasks that gave up restarting." },
	{ TM_C_REJECTED, "taskmon_tasks_rejected_total", "counter", "Spawns refused by a configured limit." },
	{ TMD_C_TRACE_SKIPPED, "taskmon_tasks_trace_skipped_total", "counter",
	  "Tasks spawned past their spawner's kernel_trace_rate: no kernel figures." },
	{ TM_C_RUNNING, "taskmon_tasks_running", "gauge", "Tasks running now (live workloads)." },
};

static const struct {
	const char *name, *help;
} hist_families[H_COUNT] = {
	[H_LATENCY] = { "taskmon_task_spawn_latency_seconds",
	                "Time from tm_spawn to the task's first instruction, kernel clock." },
	[H_ONCPU] = { "taskmon_task_oncpu_seconds", "On-CPU time per ended task." },
	[H_RUNQ] = { "taskmon_task_runqueue_wait_seconds",
	             "Time runnable but waiting for a CPU, per ended task." },
};

static void put_pair_labels(struct out *o, const struct series *s)
{
	put(o, "{", 1);
	put_label(o, "workload", s->workload, true);
	put_label(o, "type", s->type, false);
}

static void write_counters(struct out *o, const struct tmd_metrics *mx)
{
	for (size_t k = 0; k < sizeof(task_counters) / sizeof(task_counters[0]); k++) {
		const struct counter_family *cf = &task_counters[k];
		put_family(o, cf->name, cf->type, cf->help);
		for (size_t i = 0; i < mx->ns; i++) {
			const struct series *s = &mx->s[i];
			puts_(o, cf->name);
			put_pair_labels(o, s);
			put(o, "} ", 2);
			put_u64(o, sat_add(s->kept.counters[cf->counter], s->now.counters[cf->counter]));
			put(o, "\n", 1);
		}
	}
}

static void write_histogram(struct out *o, const char *name, const struct series *s, const struct phist *a,
                            const struct phist *b)
{
	uint64_t cum = 0;
	for (unsigned i = 0; i < NSLOT; i++) {
		cum = sat_add(cum, sat_add(a->slot[i], b->slot[i]));
		puts_(o, name);
		puts_(o, "_bucket");
		put_pair_labels(o, s);
		puts_(o, ",le=\"");
		puts_(o, i < NLE ? le_text[i] : "+Inf");
		put(o, "\"} ", 3);
		put_u64(o, cum);
		put(o, "\n", 1);
	}
	puts_(o, name);
	puts_(o, "_sum");
	put_pair_labels(o, s);
	put(o, "} ", 2);
	put_seconds(o, sat_add(a->sum_ns, b->sum_ns));
	put(o, "\n", 1);
	puts_(o, name);
	puts_(o, "_count");
	put_pair_labels(o, s);
	put(o, "} ", 2);
	/* The +Inf bucket and _count agree by construction. */
	put_u64(o, cum);
	put(o, "\n", 1);
}

static void write_histograms(struct out *o, const struct tmd_metrics *mx)
{
	for (int h = 0; h < H_COUNT; h++) {
		put_family(o, hist_families[h].name, "histogram", hist_families[h].help);
		for (size_t i = 0; i < mx->ns; i++)
			write_histogram(o, hist_families[h].name, &mx->s[i], &mx->s[i].kept.h[h], &mx->s[i].now.h[h]);
	}
}

static const char *const signal_names[32] = {
	[1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [4] = "SIGILL", [5] = "SIGTRAP", [6] = "SIGABRT",
	[7] = "SIGBUS", [8] = "SIGFPE", [9] = "SIGKILL", [10] = "SIGUSR1", [11] = "SIGSEGV", [12] = "SIGUSR2",
	[13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM", [16] = "SIGSTKFLT", [17] = "SIGCHLD",
	[18] = "SIGCONT", [19] = "SIGSTOP", [20] = "SIGTSTP", [21] = "SIGTTIN", [22] = "SIGTTOU", [23] = "SIGURG",
	[24] = "SIGXCPU", [25] = "SIGXFSZ", [26] = "SIGVTALRM", [27] = "SIGPROF", [28] = "SIGWINCH",
	[29] = "SIGIO", [30] = "SIGPWR", [31] = "SIGSYS",
};

static void write_crashes(struct out *o, const struct tmd_metrics *mx)
{
	put_family(o, "taskmon_crashes_total", "counter",
	           "Crash signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS) raised in watched "
	           "processes.");
	for (size_t i = 0; i < mx->nc; i++) {
		const struct crash_series *c = &mx->c[i];
		for (int sig = 1; sig < 32; sig++) {
			uint64_t v = sat_add(c->kept[sig], c->now[sig]);
			if (!v)
				continue;
			puts_(o, "taskmon_crashes_total{");
			put_label(o, "workload", c->workload, true);
			put_label(o, "signal", signal_names[sig], false);
			put(o, "} ", 2);
			put_u64(o, v);
			put(o, "\n", 1);
		}
	}
}

static bool valid_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == ':'))
			return false;
	return true;
}

static void write_collector(struct out *o, const struct tmd_metrics *mx, const struct tmd_merge *m,
                            const struct tmd_metrics_info *in)
{
	static const struct tmd_collector_info none;
	const struct tmd_collector_info *ci = in->ci ? in->ci : &none;
	struct tmd_merge_counters c;
	tmd_merge_get_counters(m, &c);
	const struct tmd_machine *mc = tmd_merge_machine(m);
	put_family(o, "taskmon_collector_info", "gauge",
	           "Always 1; mode is the scheduler programs' kind (tp_btf or raw_tp).");
	puts_(o, "taskmon_collector_info{");
	put_label(o, "mode", ci->mode ? ci->mode : "unknown", true);
	puts_(o, "} 1\n");
	put_scalar(o, "taskmon_collector_events_total", "counter", "Kernel event records merged.", c.events);
	put_scalar(o, "taskmon_collector_events_lost_total", "counter",
	           "Kernel event records lost: the ring buffer was full.", ci->lost);
	put_scalar(o, "taskmon_collector_events_malformed_total", "counter", "Kernel event records malformed.",
	           c.malformed);
	put_scalar(o, "taskmon_collector_spawns_missed_total", "counter",
	           "Task starts whose spawn the kernel programs did not see.", ci->spawn_missed);
	put_scalar(o, "taskmon_collector_registrations_total", "counter", "Workload registrations answered.",
	           ci->registrations);
	put_scalar(o, "taskmon_collector_registrations_refused_total", "counter", "Workload registrations refused.",
	           ci->registrations_refused);
	put_scalar(o, "taskmon_collector_workloads_watched", "gauge", "Processes the kernel programs watch.",
	           ci->watched);
	put_scalar(o, "taskmon_collector_workloads_live", "gauge", "Live workloads followed.", c.workloads_live);
	put_scalar(o, "taskmon_collector_workloads_departed", "gauge", "Departed workloads still kept in detail.",
	           c.workloads_dead);
	put_scalar(o, "taskmon_collector_workloads_seen_total", "counter", "Workloads followed since the start.",
	           mc->workloads_seen);
	put_scalar(o, "taskmon_collector_tasks_tracked", "gauge", "Task records the collector holds.", c.tasks_kept);
	put_scalar(o, "taskmon_collector_memory_bytes", "gauge", "Memory the merged stats take, roughly.",
	           c.memory_bytes);
	put_scalar(o, "taskmon_collector_histograms_refused_total", "counter",
	           "Histograms not made: the memory budget was spent (quantiles incomplete).", c.hist_refused);
	put_scalar(o, "taskmon_collector_series_overflow_total", "counter",
	           "Workload and type pairs counted under workload=\"(other)\": the series limit was reached.",
	           mx->overflow);
	if (in->bpf_programs >= 0) {
		put_scalar(o, "taskmon_collector_bpf_programs", "gauge", "Kernel programs the collector has loaded.",
		           (uint64_t)in->bpf_programs);
		put_scalar(o, "taskmon_collector_bpf_stats_enabled", "gauge",
		           "1 when kernel.bpf_stats_enabled is on: only then are run time and runs counted.",
		           in->bpf_stats_enabled);
		put_family(o, "taskmon_collector_bpf_run_seconds_total", "counter",
		           "Time the collector's kernel programs ran (counted while kernel.bpf_stats_enabled is 1).");
		puts_(o, "taskmon_collector_bpf_run_seconds_total ");
		put_seconds(o, in->bpf_run_ns);
		put(o, "\n", 1);
		put_scalar(o, "taskmon_collector_bpf_runs_total", "counter",
		           "Runs of the collector's kernel programs (counted while kernel.bpf_stats_enabled is 1).",
		           in->bpf_runs);
	}
	if (in->started_unix_ns) {
		put_family(o, "taskmon_collector_start_time_seconds", "gauge",
		           "When the collector started, Unix time.");
		puts_(o, "taskmon_collector_start_time_seconds ");
		put_seconds(o, in->started_unix_ns);
		put(o, "\n", 1);
	}
	put_scalar(o, "taskmon_collector_scrapes_total", "counter", "Requests for /metrics answered.", in->scrapes);
	put_scalar(o, "taskmon_collector_http_rejected_total", "counter",
	           "HTTP requests answered with an error (wrong path or method).", in->http_rejected);
	for (size_t i = 0; i < in->nextra; i++) {
		const struct tmd_metrics_extra *e = &in->extra[i];
		if (valid_name(e->name))
			put_scalar(o, e->name, e->counter ? "counter" : "gauge", e->help ? e->help : e->name, e->value);
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sums every workload not folded yet into the series' `now` figures. */
static void gather(struct tmd_metrics *mx, const struct tmd_merge *m)
{
	for (size_t i = 0; i < mx->ns; i++)
		memset(&mx->s[i].now, 0, sizeof(mx->s[i].now));
	for (size_t i = 0; i < mx->nc; i++)
		memset(mx->c[i].now, 0, sizeof(mx->c[i].now));
	size_t n = tmd_merge_workload_count(m);
	for (size_t i = 0; i < n; i++) {
		const struct tmd_workload *w = tmd_merge_workload_at(m, i);
		if (w->alive || !folded_find(mx, w))
			add_workload(mx, m, w, false);
	}
}

char *tmd_metrics_render(struct tmd_metrics *mx, const struct tmd_merge *m, const struct tmd_metrics_info *info,
                         uint64_t now, size_t *len)
{
	static const struct tmd_metrics_info no_info = { .bpf_programs = -1 };
	uint64_t t0 = mono_ns();
	if (!info)
		info = &no_info;
	tmd_metrics_observe(mx, m, now);
	gather(mx, m);
	struct out o = { 0 };
	reserve(&o, 4096 + mx->ns * 9000);   /* about what a pair takes */
	write_counters(&o, mx);
	write_histograms(&o, mx);
	write_crashes(&o, mx);
	write_collector(&o, mx, m, info);
	put_family(&o, "taskmon_collector_scrape_duration_seconds", "gauge",
	           "Time this scrape took to gather and write everything above.");
	puts_(&o, "taskmon_collector_scrape_duration_seconds ");
	put_seconds(&o, mono_ns() - t0);
	put(&o, "\n", 1);
	if (o.oom) {
		free(o.p);
		errno = ENOMEM;
		return NULL;
	}
	*len = o.len;
	return o.p;
}
