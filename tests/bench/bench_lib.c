/* bench_lib: what libtaskmon costs, each figure measured in the same run as
 * a baseline and reported beside it, because these machines are shared and
 * noisy and only same-run ratios mean anything.
 *
 * Each section runs in a forked child: the library's state (thread cache,
 * registry, configuration) is per process and tm_init is idempotent, so a
 * fresh process is the only way to give every section a clean start and its
 * own configuration. Children send a fixed-size result struct up a pipe and
 * have an alarm, so a library bug ends in a report, not a hang.
 *
 *   bench_lib [--quick] [--only SECTION] [OUTDIR]    (OUTDIR default build/bench)
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "taskmon.h"

#define CHILD_TIME_LIMIT_S 300
#define STACK_BYTES        65536
#define POLL_NS            100000ull           /* completion polling: frequent, but leaves the CPUs to the work */
#define STALL_NS           (5 * BU_NS_PER_S)  /* -EAGAIN for this long without a success = stuck, not busy */
#define LIMIT_STALL_NS     (BU_NS_PER_S / 2)  /* concurrent: -EAGAIN this long = a limit is reached */
#define WAIT_NS            (120 * BU_NS_PER_S)
#define ROUNDS             3

/* ---- sizes and options --------------------------------------------------- */

enum section { S_THROUGHPUT, S_LATENCY, S_CONCURRENT, S_CHURN, S_CANCEL, S_COUNT };
static const char *const section_names[S_COUNT] = { "throughput", "latency", "concurrent", "churn", "cancel" };

/* The concurrent and cancel sections are two children each: the raw baseline
 * must not share an address space (glibc's stack cache, the futex hash the
 * library resizes) with the library run. */
enum job { J_THROUGHPUT, J_LATENCY, J_CONC_RAW, J_CONC_LIB, J_CHURN, J_CANCEL_RAW, J_CANCEL_LIB, J_COUNT };

static bool job_is_raw(enum job j)
{
	return j == J_CONC_RAW || j == J_CANCEL_RAW;
}

struct sizes {
	uint64_t thr_n;       /* tasks per throughput round */
	uint64_t lat_rate;    /* spawns per second */
	uint64_t lat_secs;
	uint64_t conc_n;
	uint64_t churn_n;
	uint64_t churn_mark;  /* tracker size is sampled after this many */
	uint64_t cancel_n;    /* sleepers cancelled at once; the spec's targets are for 1000 */
};

static const struct sizes full_sizes  = { 200000, 10000, 5, 50000, 1000000, 10000, 1000 };
static const struct sizes quick_sizes = { 20000, 10000, 1, 5000, 100000, 10000, 1000 };

#define CANCEL_ROUNDS     5
#define CANCEL_MAX        4096
#define CANCEL_SETTLE_NS  (50 * 1000000ull)   /* after the last sleeper counted itself */
#define CANCEL_POLL_NS    20000ull
#define CANCEL_TARGET_MS  10.0

/* ---- results ----------------------------------------------------------------- */

struct thr_res {
	uint64_t n, lib_eagain, raw_eagain;
	double lib[ROUNDS], raw[ROUNDS], glib[ROUNDS];   /* spawns per second */
};

struct lat_q { uint64_t p50, p95, p99, max; };   /* ns */

struct lat_res {
	uint64_t n, lib_late, raw_late;   /* late: the pacer missed a deadline by a whole period */
	struct lat_q lib;                 /* tm_spawn_latency_ns on the section's own type */
	struct lat_q lib_global;          /* tm_get_stats, all types (only one in use) */
	struct lat_q own;                 /* the same spawns, timed by this program */
	struct lat_q raw;
};

struct conc_res {
	uint64_t want, reached, tracker_bytes, running;
	uint64_t cancelled_calls, cancelled_stat;
	long rss_before, rss_after;   /* KiB */
	double cancel_ms, ended_ms;   /* from the start of cancelling (raw: of the broadcast) */
	char limit[240];
};

struct churn_res {
	uint64_t n, mark, eagain;
	uint64_t tracker_mark, tracker_end, records_mark, records_end;
	long rss_mark, rss_end;
	double per_s;
};

/* Per round, in ns. Library: "cancel" is the tm_cancel_type call, "ended"
 * from its return until currently_running is 0, "bodies" from its return
 * until every body has returned. Raw: "cancel" is signalling every
 * sleeper's condition variable one by one, "ended" from the last signal
 * until every thread has left its function; "bodies" is the same. */
struct cancel_res {
	uint64_t n, rounds, eagain;
	uint64_t cancel[CANCEL_ROUNDS], ended[CANCEL_ROUNDS], bodies[CANCEL_ROUNDS];
};

struct msg {
	char err[320];
	char note[480];
	union {
		struct thr_res thr;
		struct lat_res lat;
		struct conc_res conc;
		struct churn_res churn;
		struct cancel_res cancel;
	} u;
};

static void appendf(char *buf, size_t len, const char *fmt, va_list ap)
{
	size_t used = strlen(buf);
	if (used && used + 2 < len) {
		strcpy(buf + used, "; ");
		used += 2;
	}
	if (used < len)
		vsnprintf(buf + used, len - used, fmt, ap);
}

/* A finding worth a look (inexact stats, a leftover file) that does not fail the run. */
static void note(struct msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct msg *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	appendf(m->note, sizeof(m->note), fmt, ap);
	va_end(ap);
}

static int fail(struct msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct msg *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	appendf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- task bodies --------------------------------------------------------------- */

static _Atomic uint64_t g_done, g_started;

static int trivial(void *arg)
{
	(void)arg;
	return 0;
}

static void *raw_trivial(void *arg)
{
	trivial(arg);
	atomic_fetch_add_explicit(&g_done, 1, memory_order_release);
	return NULL;
}

static void glib_trivial(gpointer data, gpointer user)
{
	(void)user;
	trivial(data);
	atomic_fetch_add_explicit(&g_done, 1, memory_order_release);
}

struct lat_slot { uint64_t t_spawn, lat; };

/* The clock is read first: the figure is "spawn call to first instruction". */
static int lat_task(void *arg)
{
	uint64_t now = bu_now_ns();
	struct lat_slot *s = arg;
	s->lat = now - s->t_spawn;
	atomic_fetch_add_explicit(&g_done, 1, memory_order_release);
	return 0;
}

static void *raw_lat(void *arg)
{
	lat_task(arg);
	return NULL;
}

static int conc_task(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&g_started, 1, memory_order_release);
	return tm_sleep_ms(3600 * 1000) == -ECANCELED ? 0 : 1;
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static bool g_go;

static void *raw_waiter(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&g_started, 1, memory_order_release);
	pthread_mutex_lock(&g_mu);
	while (!g_go)
		pthread_cond_wait(&g_cv, &g_mu);
	pthread_mutex_unlock(&g_mu);
	return NULL;
}

/* ---- spawning with retry ------------------------------------------------------- */

static pthread_attr_t g_raw_attr;

static void raw_attr_init(void)
{
	pthread_attr_init(&g_raw_attr);
	pthread_attr_setstacksize(&g_raw_attr, STACK_BYTES);
}

/* A limit reached for a moment is part of the load being measured, so it is
 * retried and counted; one that does not clear within stall_ns is returned. */
static int raw_spawn(pthread_t *t, void *(*fn)(void *), void *arg, bool detach,
		     uint64_t stall_ns, uint64_t *eagain)
{
	uint64_t since = 0;
	pthread_t tmp;
	int rc;
	if (!t)
		t = &tmp;
	while ((rc = pthread_create(t, &g_raw_attr, fn, arg)) == EAGAIN) {
		uint64_t now = bu_now_ns();
		++*eagain;
		if (!since)
			since = now;
		else if (now - since > stall_ns)
			return -EAGAIN;
		bu_sleep_ns(20000);
	}
	if (!rc && detach)
		pthread_detach(*t);
	return -rc;
}

static int lib_spawn(const char *name, tm_fn fn, void *arg, const struct tm_spawn_opts *o,
		     uint64_t stall_ns, uint64_t *eagain)
{
	uint64_t since = 0;
	int rc;
	while ((rc = tm_spawn(NULL, name, fn, arg, o)) == -EAGAIN) {
		uint64_t now = bu_now_ns();
		++*eagain;
		if (!since)
			since = now;
		else if (now - since > stall_ns)
			return -EAGAIN;
		bu_sleep_ns(20000);
	}
	return rc;
}

static int wait_counter(_Atomic uint64_t *c, uint64_t target, uint64_t limit_ns)
{
	uint64_t end = bu_now_ns() + limit_ns;
	while (atomic_load_explicit(c, memory_order_acquire) < target) {
		if (bu_now_ns() > end)
			return -ETIMEDOUT;
		bu_sleep_ns(POLL_NS);
	}
	return 0;
}

/* "All completed" is what the library says: the figure includes its own
 * bookkeeping of the end of each task, not only the body having run. */
static int wait_completed(struct msg *m, uint64_t target, struct tm_stats *s)
{
	uint64_t end = bu_now_ns() + WAIT_NS;
	for (;;) {
		int rc = tm_get_stats(s);
		if (rc)
			return fail(m, "tm_get_stats: %s (%s)", strerror(-rc), tm_last_error());
		if (s->total_completed >= target)
			return 0;
		if (bu_now_ns() > end)
			return fail(m, "total_completed stuck at %llu of %llu after %llu s (running %llu, failed %llu)",
				    (unsigned long long)s->total_completed, (unsigned long long)target,
				    WAIT_NS / BU_NS_PER_S, (unsigned long long)s->currently_running,
				    (unsigned long long)s->total_failed);
		bu_sleep_ns(POLL_NS);
	}
}

static int lib_init(struct msg *m, const char *config)
{
	int rc = tm_init(config);
	if (rc)
		return fail(m, "tm_init(%s): %s: %s", config ? config : "NULL", strerror(-rc), tm_last_error());
	return 0;
}

static int lib_stats(struct msg *m, struct tm_stats *s)
{
	int rc = tm_get_stats(s);
	if (rc)
		return fail(m, "tm_get_stats: %s (%s)", strerror(-rc), tm_last_error());
	return 0;
}

/* ---- section 1: throughput ------------------------------------------------------ */

static double per_s(uint64_t n, uint64_t t0)
{
	return (double)n * 1e9 / (double)(bu_now_ns() - t0);
}

static double thr_raw(struct msg *m, uint64_t n)
{
	uint64_t t0, i;
	atomic_store(&g_done, 0);
	t0 = bu_now_ns();
	for (i = 0; i < n; i++) {
		int rc = raw_spawn(NULL, raw_trivial, NULL, true, STALL_NS, &m->u.thr.raw_eagain);
		if (rc)
			return fail(m, "raw pthread_create #%llu: %s", (unsigned long long)i, strerror(-rc));
	}
	if (wait_counter(&g_done, n, WAIT_NS))
		return fail(m, "raw threads did not all finish");
	return per_s(n, t0);
}

/* Stats must be exact: a counter that overshoots or misses is a library bug. */
static void thr_check(struct msg *m, const struct tm_stats *before, const struct tm_stats *after, uint64_t n)
{
	if (after->total_spawned - before->total_spawned != n)
		note(m, "throughput: total_spawned grew by %llu for %llu spawns",
		     (unsigned long long)(after->total_spawned - before->total_spawned), (unsigned long long)n);
	if (after->total_completed - before->total_completed != n)
		note(m, "throughput: total_completed grew by %llu for %llu tasks",
		     (unsigned long long)(after->total_completed - before->total_completed), (unsigned long long)n);
}

static double thr_lib(struct msg *m, uint64_t n)
{
	struct tm_stats before, after;
	uint64_t t0, i;
	double r;
	if (lib_stats(m, &before))
		return -1;
	t0 = bu_now_ns();
	for (i = 0; i < n; i++) {
		int rc = lib_spawn("bench_thr", trivial, NULL, NULL, STALL_NS, &m->u.thr.lib_eagain);
		if (rc)
			return fail(m, "tm_spawn #%llu: %s (%s)", (unsigned long long)i, strerror(-rc), tm_last_error());
	}
	if (wait_completed(m, before.total_completed + n, &after))
		return -1;
	r = per_s(n, t0);
	thr_check(m, &before, &after, n);
	return r;
}

static double thr_glib(struct msg *m, uint64_t n)
{
	GError *ge = NULL;
	GThreadPool *pool = g_thread_pool_new(glib_trivial, NULL, 2, FALSE, &ge);
	uint64_t t0, i;
	double r;
	if (!pool)
		return fail(m, "g_thread_pool_new: %s", ge ? ge->message : "failed");
	atomic_store(&g_done, 0);
	t0 = bu_now_ns();
	for (i = 0; i < n; i++)
		if (!g_thread_pool_push(pool, GUINT_TO_POINTER(1), &ge))
			return fail(m, "g_thread_pool_push: %s", ge ? ge->message : "failed");
	if (wait_counter(&g_done, n, WAIT_NS))
		return fail(m, "GThreadPool items did not all finish");
	r = per_s(n, t0);
	g_thread_pool_free(pool, FALSE, TRUE);
	return r;
}

/* Alternating the three spreads the machine's drift over all of them. */
static int job_throughput(struct msg *m, const struct sizes *z)
{
	struct thr_res *r = &m->u.thr;
	r->n = z->thr_n;
	raw_attr_init();
	if (lib_init(m, NULL))
		return -1;
	for (int i = 0; i < ROUNDS; i++) {
		if ((r->raw[i] = thr_raw(m, r->n)) < 0 || (r->lib[i] = thr_lib(m, r->n)) < 0 ||
		    (r->glib[i] = thr_glib(m, r->n)) < 0)
			return -1;
		fprintf(stderr, "  round %d/%d: raw pthread %.0f/s, taskmon %.0f/s, GThreadPool %.0f/s\n",
			i + 1, ROUNDS, r->raw[i], r->lib[i], r->glib[i]);
	}
	return 0;
}

/* ---- section 2: latency ------------------------------------------------------------ */

static int lat_spawn_lib(struct lat_slot *s, int type)
{
	s->t_spawn = bu_now_ns();
	return tm_spawn(NULL, "bench_latency", lat_task, s, TM_SPAWN_OPTS(.type = type));
}

static int lat_spawn_raw(struct lat_slot *s)
{
	pthread_t t;
	int rc;
	s->t_spawn = bu_now_ns();
	rc = pthread_create(&t, &g_raw_attr, raw_lat, s);
	if (!rc)
		pthread_detach(t);
	return -rc;
}

/* Absolute deadlines: a late spawn does not push back the ones after it. */
static int lat_pace(struct msg *m, struct lat_slot *slots, uint64_t n, uint64_t period, int type, uint64_t *late)
{
	uint64_t t0 = bu_now_ns() + 1000000;
	atomic_store(&g_done, 0);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t deadline = t0 + i * period;
		int rc;
		bu_pace_until(deadline);
		*late += bu_now_ns() > deadline + period;
		rc = type < 0 ? lat_spawn_raw(&slots[i]) : lat_spawn_lib(&slots[i], type);
		if (rc)
			return fail(m, "%s #%llu: %s (%s)", type < 0 ? "raw pthread_create" : "tm_spawn",
				    (unsigned long long)i, strerror(-rc), type < 0 ? "" : tm_last_error());
	}
	if (wait_counter(&g_done, n, WAIT_NS))
		return fail(m, "latency: tasks did not all run");
	return 0;
}

static void lat_own_quantiles(const struct lat_slot *slots, uint64_t n, struct lat_q *q)
{
	uint64_t *v = malloc(n * sizeof(*v));
	if (!v)
		return;
	for (uint64_t i = 0; i < n; i++)
		v[i] = slots[i].lat;
	qsort(v, n, sizeof(*v), bu_cmp_u64);
	*q = (struct lat_q){ bu_quantile(v, n, 0.50), bu_quantile(v, n, 0.95),
			     bu_quantile(v, n, 0.99), v[n - 1] };
	free(v);
}

static int lat_lib_quantiles(struct msg *m, int type, struct lat_q *q)
{
	const double qs[4] = { 0.50, 0.95, 0.99, 1.0 };
	uint64_t *out[4] = { &q->p50, &q->p95, &q->p99, &q->max };
	for (int i = 0; i < 4; i++) {
		int rc = tm_spawn_latency_ns(type, qs[i], out[i]);
		if (rc)
			return fail(m, "tm_spawn_latency_ns(%d, %.2f): %s (%s)", type, qs[i], strerror(-rc),
				    tm_last_error());
	}
	return 0;
}

/* The library times itself; this program timed the same spawns from outside.
 * A histogram may round, but not by this much. */
static void lat_check(struct msg *m, const struct lat_res *r)
{
	const uint64_t lib[3] = { r->lib.p50, r->lib.p95, r->lib.p99 };
	const uint64_t own[3] = { r->own.p50, r->own.p95, r->own.p99 };
	const char *names[3] = { "p50", "p95", "p99" };
	for (int i = 0; i < 3; i++) {
		uint64_t d = lib[i] > own[i] ? lib[i] - own[i] : own[i] - lib[i];
		if (d > 2000 && d * 4 > own[i])
			note(m, "latency: library %s %.1f us but the bench timed %.1f us for the same spawns",
			     names[i], lib[i] / 1e3, own[i] / 1e3);
	}
}

/* Reads the library's figures once all its spawns have completed. */
static int lat_library(struct msg *m, struct lat_res *r, const struct lat_slot *slots, int type)
{
	struct tm_stats s;
	if (wait_completed(m, r->n, &s) || lat_lib_quantiles(m, type, &r->lib))
		return -1;
	r->lib_global = (struct lat_q){ s.spawn_latency_p50_ns, s.spawn_latency_p95_ns,
				       s.spawn_latency_p99_ns, s.spawn_latency_max_ns };
	if (s.by_type[type].spawned != r->n || s.by_type[type].succeeded != r->n)
		note(m, "latency: type stats say spawned %llu, succeeded %llu for %llu tasks",
		     (unsigned long long)s.by_type[type].spawned, (unsigned long long)s.by_type[type].succeeded,
		     (unsigned long long)r->n);
	lat_own_quantiles(slots, r->n, &r->own);
	lat_check(m, r);
	return 0;
}

/* One-second segments, raw and library in turn, so that a noisy stretch of
 * the shared machine falls on both rather than on whichever ran then. */
static int lat_segments(struct msg *m, const struct sizes *z, struct lat_slot *raw, struct lat_slot *lib, int type)
{
	struct lat_res *r = &m->u.lat;
	uint64_t period = BU_NS_PER_S / z->lat_rate;
	for (uint64_t i = 0; i < z->lat_secs; i++) {
		uint64_t at = i * z->lat_rate;
		if (lat_pace(m, raw + at, z->lat_rate, period, -1, &r->raw_late) ||
		    lat_pace(m, lib + at, z->lat_rate, period, type, &r->lib_late))
			return -1;
	}
	lat_own_quantiles(raw, r->n, &r->raw);
	return lat_library(m, r, lib, type);
}

static int job_latency(struct msg *m, const struct sizes *z)
{
	struct lat_res *r = &m->u.lat;
	struct lat_slot *raw, *lib;
	int type, rc = -1;
	r->n = z->lat_rate * z->lat_secs;
	raw = calloc(r->n, sizeof(*raw));
	lib = calloc(r->n, sizeof(*lib));
	if (!raw || !lib) {
		fail(m, "out of memory");
		goto out;
	}
	/* Default timer slack is 50 us, as large as what is being measured. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	raw_attr_init();
	if (lib_init(m, NULL))
		goto out;
	/* A type of its own: the per-type histogram then holds only these spawns. */
	type = tm_type_register("bench_latency");
	if (type < 0)
		fail(m, "tm_type_register: %s (%s)", strerror(-type), tm_last_error());
	else
		rc = lat_segments(m, z, raw, lib, type);
out:
	free(raw);
	free(lib);
	return rc;
}

/* ---- section 3: concurrent ------------------------------------------------------- */

/* Names the limit that most likely stopped thread creation, so the reader
 * knows which knob to turn. */
static void describe_limit(char *buf, size_t len, uint64_t reached, const char *lib_error)
{
	long pid_max = 0, maps_max = 0, threads_max = 0, maps = bu_count_lines("/proc/self/maps");
	long running = 0, total = 0;
	char cause[160], count[32];
	struct rlimit nproc = { 0, 0 };
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%*s %*s %*s %ld/%ld", &running, &total) != 2)
			total = 0;
		fclose(f);
	}
	bu_read_long("/proc/sys/kernel/pid_max", &pid_max);
	bu_read_long("/proc/sys/vm/max_map_count", &maps_max);
	bu_read_long("/proc/sys/kernel/threads-max", &threads_max);
	getrlimit(RLIMIT_NPROC, &nproc);
	if (maps_max && maps >= maps_max - 64)
		snprintf(cause, sizeof(cause), "vm.max_map_count=%ld", maps_max);
	else if (pid_max && total >= pid_max - 512)
		snprintf(cause, sizeof(cause), "kernel.pid_max=%ld", pid_max);
	else if (threads_max && total >= threads_max - 512)
		snprintf(cause, sizeof(cause), "kernel.threads-max=%ld", threads_max);
	else if (nproc.rlim_cur != RLIM_INFINITY && (rlim_t)total + 512 >= nproc.rlim_cur)
		snprintf(cause, sizeof(cause), "RLIMIT_NPROC=%llu", (unsigned long long)nproc.rlim_cur);
	else
		snprintf(cause, sizeof(cause), "no kernel limit near: %s", lib_error);
	snprintf(buf, len, "stopped at %s tasks: %s%s", bu_count(count, sizeof(count), reached), cause,
		 geteuid() ? " (run as root to raise it)" : "");
}

static int conc_spawn_all(struct msg *m, struct conc_res *r)
{
	uint64_t eagain = 0;
	for (r->reached = 0; r->reached < r->want; r->reached++) {
		int type = (int)(r->reached % TM_BUILTIN_TYPES);
		int rc = lib_spawn("bench_conc", conc_task, NULL,
				   TM_SPAWN_OPTS(.type = type, .stack_size = STACK_BYTES), LIMIT_STALL_NS, &eagain);
		if (rc == -EAGAIN) {
			describe_limit(r->limit, sizeof(r->limit), r->reached, tm_last_error());
			break;
		}
		if (rc)
			return fail(m, "tm_spawn #%llu: %s (%s)", (unsigned long long)r->reached, strerror(-rc),
				    tm_last_error());
	}
	if (wait_counter(&g_started, r->reached, WAIT_NS))
		return fail(m, "only %llu of %llu tasks started", (unsigned long long)atomic_load(&g_started),
			    (unsigned long long)r->reached);
	return 0;
}

static int conc_cancel(struct msg *m, struct conc_res *r)
{
	struct tm_stats s;
	uint64_t t0 = bu_now_ns(), end = t0 + WAIT_NS;
	for (int t = 0; t < TM_BUILTIN_TYPES; t++) {
		int n = tm_cancel_type(t);
		if (n < 0)
			return fail(m, "tm_cancel_type(%d): %s (%s)", t, strerror(-n), tm_last_error());
		r->cancelled_calls += (uint64_t)n;
	}
	r->cancel_ms = (double)(bu_now_ns() - t0) / 1e6;
	do {
		if (lib_stats(m, &s))
			return -1;
		if (bu_now_ns() > end)
			return fail(m, "currently_running still %llu after cancelling",
				    (unsigned long long)s.currently_running);
	} while (s.currently_running && (bu_sleep_ns(POLL_NS), 1));
	r->ended_ms = (double)(bu_now_ns() - t0) / 1e6;
	for (int t = 0; t < TM_BUILTIN_TYPES; t++)
		r->cancelled_stat += s.by_type[t].cancelled;
	return 0;
}

static void conc_check(struct msg *m, const struct conc_res *r)
{
	if (r->cancelled_calls != r->reached)
		note(m, "concurrent: tm_cancel_type returned %llu in all for %llu running tasks",
		     (unsigned long long)r->cancelled_calls, (unsigned long long)r->reached);
	if (r->cancelled_stat != r->reached)
		note(m, "concurrent: by_type[].cancelled sums to %llu for %llu cancelled tasks",
		     (unsigned long long)r->cancelled_stat, (unsigned long long)r->reached);
	if (r->running != r->reached)
		note(m, "concurrent: currently_running %llu with %llu tasks started",
		     (unsigned long long)r->running, (unsigned long long)r->reached);
}

static int job_conc_lib(struct msg *m, const struct sizes *z)
{
	struct conc_res *r = &m->u.conc;
	struct tm_stats s;
	r->want = z->conc_n;
	if (lib_init(m, NULL))
		return -1;
	r->rss_before = bu_rss_kib();
	if (conc_spawn_all(m, r))
		return -1;
	r->rss_after = bu_rss_kib();
	if (lib_stats(m, &s))
		return -1;
	r->tracker_bytes = s.tracker_bytes;
	r->running = s.currently_running;
	fprintf(stderr, "  taskmon: %llu tasks sleeping, cancelling\n", (unsigned long long)r->reached);
	if (conc_cancel(m, r))
		return -1;
	conc_check(m, r);
	return 0;
}

/* Baseline: bare threads parked on a condition variable, the least a thread
 * per task can cost; "ended" is broadcast to all joined. */
static int conc_raw_wake(struct msg *m, struct conc_res *r, pthread_t *t)
{
	uint64_t t0 = bu_now_ns();
	pthread_mutex_lock(&g_mu);
	g_go = true;
	pthread_cond_broadcast(&g_cv);
	pthread_mutex_unlock(&g_mu);
	for (uint64_t i = 0; i < r->reached; i++)
		if (pthread_join(t[i], NULL))
			return fail(m, "pthread_join #%llu failed", (unsigned long long)i);
	r->ended_ms = (double)(bu_now_ns() - t0) / 1e6;
	return 0;
}

static int job_conc_raw(struct msg *m, const struct sizes *z)
{
	struct conc_res *r = &m->u.conc;
	uint64_t eagain = 0;
	pthread_t *t = calloc(z->conc_n, sizeof(*t));
	int rc = -1;
	if (!t)
		return fail(m, "out of memory");
	raw_attr_init();
	r->want = z->conc_n;
	r->rss_before = bu_rss_kib();
	for (r->reached = 0; r->reached < r->want; r->reached++) {
		int err = raw_spawn(&t[r->reached], raw_waiter, NULL, false, LIMIT_STALL_NS, &eagain);
		if (err == -EAGAIN) {
			describe_limit(r->limit, sizeof(r->limit), r->reached, strerror(EAGAIN));
			break;
		}
		if (err) {
			fail(m, "pthread_create #%llu: %s", (unsigned long long)r->reached, strerror(-err));
			goto out;
		}
	}
	if (wait_counter(&g_started, r->reached, WAIT_NS)) {
		fail(m, "raw threads did not all start");
		goto out;
	}
	r->rss_after = bu_rss_kib();
	fprintf(stderr, "  raw pthread: %llu threads waiting, waking\n", (unsigned long long)r->reached);
	rc = conc_raw_wake(m, r, t);
out:
	free(t);
	return rc;
}

/* ---- section 4: churn ------------------------------------------------------------- */

static int churn_config(struct msg *m, char *path, size_t len)
{
	char dir[] = "/tmp/bench_lib.XXXXXX";
	FILE *f;
	int rc;
	if (!mkdtemp(dir))
		return fail(m, "mkdtemp: %s", strerror(errno));
	snprintf(path, len, "%s/taskmon.conf", dir);
	f = fopen(path, "w");
	if (!f || fputs("[task_management]\ntask_retention_secs = 0\n", f) < 0 || fclose(f)) {
		rmdir(dir);
		return fail(m, "writing %s: %s", path, strerror(errno));
	}
	rc = lib_init(m, path);
	unlink(path);
	rmdir(dir);
	return rc;
}

static int churn_run(struct msg *m, struct churn_res *r, uint64_t from, uint64_t to, struct tm_stats *s)
{
	for (uint64_t i = from; i < to; i++) {
		int rc = lib_spawn("bench_churn", trivial, NULL, NULL, STALL_NS, &r->eagain);
		if (rc)
			return fail(m, "tm_spawn #%llu: %s (%s)", (unsigned long long)i, strerror(-rc), tm_last_error());
	}
	return wait_completed(m, to, s);
}

static int job_churn(struct msg *m, const struct sizes *z)
{
	struct churn_res *r = &m->u.churn;
	struct tm_stats s;
	char path[64];
	uint64_t t0;
	r->n = z->churn_n;
	r->mark = z->churn_mark;
	if (churn_config(m, path, sizeof(path)))
		return -1;
	t0 = bu_now_ns();
	if (churn_run(m, r, 0, r->mark, &s))
		return -1;
	r->tracker_mark = s.tracker_bytes;
	r->records_mark = s.tracked_records;
	r->rss_mark = bu_rss_kib();
	if (churn_run(m, r, r->mark, r->n, &s))
		return -1;
	r->per_s = per_s(r->n, t0);
	r->tracker_end = s.tracker_bytes;
	r->records_end = s.tracked_records;
	r->rss_end = bu_rss_kib();
	if (s.total_completed != r->n || s.total_spawned != r->n)
		note(m, "churn: total_spawned %llu, total_completed %llu for %llu tasks",
		     (unsigned long long)s.total_spawned, (unsigned long long)s.total_completed,
		     (unsigned long long)r->n);
	return 0;
}

/* ---- section 5: cancel ------------------------------------------------------------ */

/* The spec's seed scenario: a thousand background tasks asleep in
 * tm_sleep_ms, all cancelled by type. The baseline is the least a thread
 * per task can do for the same: bare threads, each parked on its own
 * condition variable, woken one by one. */

static _Atomic uint64_t g_bad_sleeps;
static _Atomic int g_bad_rc;

static int cancel_task(void *arg)
{
	int rc;
	(void)arg;
	atomic_fetch_add_explicit(&g_started, 1, memory_order_release);
	rc = tm_sleep_ms(3600 * 1000);
	if (rc != -ECANCELED) {
		atomic_store(&g_bad_rc, rc);
		atomic_fetch_add(&g_bad_sleeps, 1);
	}
	atomic_fetch_add_explicit(&g_done, 1, memory_order_release);
	return rc == -ECANCELED ? 0 : 1;
}

struct sleeper {
	_Alignas(64) pthread_mutex_t mu;   /* one cache line each: the wakes must not contend */
	pthread_cond_t cv;
	bool go;
	pthread_t t;
};

static void *raw_sleeper(void *arg)
{
	struct sleeper *s = arg;
	pthread_mutex_lock(&s->mu);
	atomic_fetch_add_explicit(&g_started, 1, memory_order_release);
	while (!s->go)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add_explicit(&g_done, 1, memory_order_release);
	return NULL;
}

/* The default 50 us timer slack would make a 20 us poll a 70 us one; only
 * the polling thread gets less, and only while it polls, so that no thread
 * the library creates inherits it. */
static void poll_slack(bool fine)
{
	prctl(PR_SET_TIMERSLACK, fine ? 1UL : 0UL, 0, 0, 0);
}

/* A finding that may recur every round: the first one is kept in full and
 * the rounds it showed up in are counted. */
struct oddity {
	int rounds, last;   /* last: the round last counted, so a poll loop counts once */
	char first[200];
};

static void oddity(struct oddity *o, int round, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void oddity(struct oddity *o, int round, const char *fmt, ...)
{
	va_list ap;
	if (o->rounds && o->last == round)
		return;
	o->last = round;
	if (o->rounds++)
		return;
	snprintf(o->first, sizeof(o->first), "round %d: ", round + 1);
	va_start(ap, fmt);
	vsnprintf(o->first + strlen(o->first), sizeof(o->first) - strlen(o->first), fmt, ap);
	va_end(ap);
}

static void oddities_note(struct msg *m, const struct oddity *o, size_t n, int rounds)
{
	for (size_t i = 0; i < n; i++)
		if (o[i].rounds)
			note(m, "cancel: %s (in %d of %d rounds)", o[i].first, o[i].rounds, rounds);
}

static int raw_sleepers_start(struct msg *m, struct cancel_res *r, struct sleeper *s)
{
	atomic_store(&g_started, 0);
	atomic_store(&g_done, 0);
	for (uint64_t i = 0; i < r->n; i++) {
		int rc;
		pthread_mutex_init(&s[i].mu, NULL);
		pthread_cond_init(&s[i].cv, NULL);
		s[i].go = false;
		rc = raw_spawn(&s[i].t, raw_sleeper, &s[i], false, STALL_NS, &r->eagain);
		if (rc)
			return fail(m, "round %llu: pthread_create #%llu: %s", (unsigned long long)r->rounds + 1,
				    (unsigned long long)i, strerror(-rc));
	}
	if (wait_counter(&g_started, r->n, WAIT_NS))
		return fail(m, "round %llu: only %llu of %llu raw threads went to sleep",
			    (unsigned long long)r->rounds + 1, (unsigned long long)atomic_load(&g_started),
			    (unsigned long long)r->n);
	bu_sleep_ns(CANCEL_SETTLE_NS);
	return 0;
}

static int raw_sleepers_wake(struct msg *m, struct cancel_res *r, struct sleeper *s)
{
	uint64_t i = r->rounds, t0, t1, end;
	poll_slack(true);
	t0 = bu_now_ns();
	for (uint64_t k = 0; k < r->n; k++) {
		pthread_mutex_lock(&s[k].mu);
		s[k].go = true;
		pthread_mutex_unlock(&s[k].mu);
		pthread_cond_signal(&s[k].cv);
	}
	t1 = bu_now_ns();
	end = t1 + WAIT_NS;
	while (atomic_load_explicit(&g_done, memory_order_acquire) < r->n) {
		if (bu_now_ns() > end) {
			poll_slack(false);
			return fail(m, "round %llu: only %llu of %llu raw threads woke", (unsigned long long)i + 1,
				    (unsigned long long)atomic_load(&g_done), (unsigned long long)r->n);
		}
		bu_sleep_ns(CANCEL_POLL_NS);
	}
	r->ended[i] = r->bodies[i] = bu_now_ns() - t1;
	r->cancel[i] = t1 - t0;
	poll_slack(false);
	return 0;
}

static void raw_sleepers_reap(struct cancel_res *r, struct sleeper *s)
{
	for (uint64_t i = 0; i < r->n; i++) {
		pthread_join(s[i].t, NULL);
		pthread_cond_destroy(&s[i].cv);
		pthread_mutex_destroy(&s[i].mu);
	}
}

static int job_cancel_raw(struct msg *m, const struct sizes *z)
{
	struct cancel_res *r = &m->u.cancel;
	struct sleeper *s;
	if (z->cancel_n > CANCEL_MAX)
		return fail(m, "cancel_n %llu is above %d", (unsigned long long)z->cancel_n, CANCEL_MAX);
	r->n = z->cancel_n;
	s = aligned_alloc(64, r->n * sizeof(*s));
	if (!s)
		return fail(m, "out of memory");
	memset(s, 0, r->n * sizeof(*s));
	raw_attr_init();
	for (r->rounds = 0; r->rounds < CANCEL_ROUNDS; r->rounds++) {
		int rc = raw_sleepers_start(m, r, s);
		if (!rc)
			rc = raw_sleepers_wake(m, r, s);
		if (rc)
			return -1;   /* threads left asleep: the child exits without joining */
		raw_sleepers_reap(r, s);
		fprintf(stderr, "  raw pthread round %llu/%d: wake %.3f ms, all exited %.3f ms later\n",
			(unsigned long long)r->rounds + 1, CANCEL_ROUNDS, r->cancel[r->rounds] / 1e6,
			r->ended[r->rounds] / 1e6);
	}
	free(s);
	return 0;
}

enum { ODD_RETURNED, ODD_COUNTERS, ODD_BODIES, ODD_SLEEP_RC, ODD_RUNNING, ODD_COUNT };

static int lib_sleepers_start(struct msg *m, struct cancel_res *r, struct oddity *odd)
{
	uint64_t end;
	struct tm_stats s;
	int round = (int)r->rounds;
	atomic_store(&g_started, 0);
	atomic_store(&g_done, 0);
	for (uint64_t i = 0; i < r->n; i++) {
		int rc = lib_spawn("bench_cancel", cancel_task, NULL,
				   TM_SPAWN_OPTS(.type = TM_BACKGROUND, .stack_size = STACK_BYTES), STALL_NS, &r->eagain);
		if (rc)
			return fail(m, "round %d: tm_spawn #%llu: %s (%s)", round + 1, (unsigned long long)i,
				    strerror(-rc), tm_last_error());
	}
	end = bu_now_ns() + WAIT_NS;
	for (;;) {
		uint64_t started = atomic_load_explicit(&g_started, memory_order_acquire);
		if (lib_stats(m, &s))
			return -1;
		if (s.currently_running > r->n)
			oddity(&odd[ODD_RUNNING], round, "currently_running %llu with %llu tasks spawned",
			       (unsigned long long)s.currently_running, (unsigned long long)r->n);
		if (s.currently_running == r->n && started == r->n)
			break;
		if (bu_now_ns() > end)
			return fail(m, "round %d: %llu of %llu tasks asleep, currently_running %llu after %llu s",
				    round + 1, (unsigned long long)started, (unsigned long long)r->n,
				    (unsigned long long)s.currently_running, WAIT_NS / BU_NS_PER_S);
		bu_sleep_ns(POLL_NS);
	}
	bu_sleep_ns(CANCEL_SETTLE_NS);
	return 0;
}

/* "Ended" is what the library says (currently_running 0); when the bodies
 * returned is timed beside it, from the same polls. */
static int lib_sleepers_wait(struct msg *m, struct cancel_res *r, uint64_t t1, struct tm_stats *s)
{
	uint64_t i = r->rounds, end = t1 + WAIT_NS;
	bool bodies = false;
	for (;;) {
		uint64_t now;
		if (lib_stats(m, s))
			return -1;
		now = bu_now_ns();
		if (!bodies && atomic_load_explicit(&g_done, memory_order_acquire) >= r->n) {
			r->bodies[i] = now - t1;
			bodies = true;
		}
		if (!s->currently_running) {
			r->ended[i] = now - t1;
			if (!bodies)
				r->bodies[i] = now - t1;   /* counted as a finding by the caller */
			return 0;
		}
		if (now > end)
			return fail(m, "round %llu: currently_running still %llu %llu s after tm_cancel_type "
				    "(%llu of %llu bodies returned)", (unsigned long long)i + 1,
				    (unsigned long long)s->currently_running, WAIT_NS / BU_NS_PER_S,
				    (unsigned long long)atomic_load(&g_done), (unsigned long long)r->n);
		bu_sleep_ns(CANCEL_POLL_NS);
	}
}

/* Every one of the n tasks was cancelled asleep: the counters must say
 * exactly that, and nothing else may have moved. */
static void lib_cancel_check(struct cancel_res *r, int returned, uint64_t bodies_at_end,
			     const struct tm_stats *b, const struct tm_stats *a, struct oddity *odd)
{
	const struct tm_type_stats *tb = &b->by_type[TM_BACKGROUND], *ta = &a->by_type[TM_BACKGROUND];
	int round = (int)r->rounds;
	uint64_t other = (a->total_completed - b->total_completed) + (a->total_failed - b->total_failed) +
			 (a->total_panicked - b->total_panicked) + (a->total_timed_out - b->total_timed_out);
	if ((uint64_t)returned != r->n)
		oddity(&odd[ODD_RETURNED], round, "tm_cancel_type returned %d for %llu sleeping tasks", returned,
		       (unsigned long long)r->n);
	if (ta->cancelled - tb->cancelled != r->n || a->total_cancelled - b->total_cancelled != r->n ||
	    ta->spawned - tb->spawned != r->n || ta->running || other)
		oddity(&odd[ODD_COUNTERS], round,
		       "for %llu cancelled: background spawned +%llu, cancelled +%llu, running %llu; "
		       "total_cancelled +%llu; other ends +%llu", (unsigned long long)r->n,
		       (unsigned long long)(ta->spawned - tb->spawned), (unsigned long long)(ta->cancelled - tb->cancelled),
		       (unsigned long long)ta->running, (unsigned long long)(a->total_cancelled - b->total_cancelled),
		       (unsigned long long)other);
	if (bodies_at_end < r->n)
		oddity(&odd[ODD_BODIES], round, "currently_running was 0 with %llu of %llu bodies returned",
		       (unsigned long long)bodies_at_end, (unsigned long long)r->n);
}

static int lib_cancel_round(struct msg *m, struct cancel_res *r, struct oddity *odd)
{
	struct tm_stats before, after;
	uint64_t i = r->rounds, t0, t1, bodies_at_end;
	int n;
	if (lib_stats(m, &before) || lib_sleepers_start(m, r, odd))
		return -1;
	poll_slack(true);
	t0 = bu_now_ns();
	n = tm_cancel_type(TM_BACKGROUND);
	t1 = bu_now_ns();
	if (n < 0) {
		poll_slack(false);
		return fail(m, "round %llu: tm_cancel_type(TM_BACKGROUND): %s (%s)", (unsigned long long)i + 1,
			    strerror(-n), tm_last_error());
	}
	r->cancel[i] = t1 - t0;
	n = lib_sleepers_wait(m, r, t1, &after) ? -1 : n;
	bodies_at_end = atomic_load_explicit(&g_done, memory_order_acquire);
	poll_slack(false);
	if (n < 0)
		return -1;
	lib_cancel_check(r, n, bodies_at_end, &before, &after, odd);
	return 0;
}

static int job_cancel_lib(struct msg *m, const struct sizes *z)
{
	struct cancel_res *r = &m->u.cancel;
	struct oddity odd[ODD_COUNT];
	memset(odd, 0, sizeof(odd));
	r->n = z->cancel_n;
	if (lib_init(m, NULL))
		return -1;
	atomic_store(&g_bad_sleeps, 0);
	for (r->rounds = 0; r->rounds < CANCEL_ROUNDS; r->rounds++) {
		uint64_t bad = atomic_load(&g_bad_sleeps);
		if (lib_cancel_round(m, r, odd))
			break;
		if (atomic_load(&g_bad_sleeps) != bad)
			oddity(&odd[ODD_SLEEP_RC], (int)r->rounds, "%llu tm_sleep_ms calls returned %d, not -ECANCELED",
			       (unsigned long long)(atomic_load(&g_bad_sleeps) - bad), atomic_load(&g_bad_rc));
		fprintf(stderr, "  taskmon round %llu/%d: tm_cancel_type %.3f ms, all ended %.3f ms later "
			"(bodies returned %.3f ms)\n", (unsigned long long)r->rounds + 1, CANCEL_ROUNDS,
			r->cancel[r->rounds] / 1e6, r->ended[r->rounds] / 1e6, r->bodies[r->rounds] / 1e6);
	}
	oddities_note(m, odd, ODD_COUNT, (int)r->rounds + (r->rounds < CANCEL_ROUNDS));
	return m->err[0] ? -1 : 0;
}

/* ---- children ----------------------------------------------------------------------- */

typedef int (*job_fn)(struct msg *m, const struct sizes *z);
static const job_fn jobs[J_COUNT] = { job_throughput, job_latency, job_conc_raw, job_conc_lib, job_churn,
				      job_cancel_raw, job_cancel_lib };
static const char *const job_names[J_COUNT] = { "throughput", "latency", "concurrent (raw pthread)",
						"concurrent (taskmon)", "churn", "cancel (raw pthread)",
						"cancel (taskmon)" };

struct knob {
	const char *path;
	long want, saved;
	char saved_text[24];
	volatile sig_atomic_t changed;
};

static struct knob knobs[] = {
	{ "/proc/sys/kernel/pid_max", 4194304, 0, "", 0 },
	{ "/proc/sys/vm/max_map_count", 262144, 0, "", 0 },
};
#define NKNOBS (sizeof(knobs) / sizeof(knobs[0]))
static volatile pid_t g_child;

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	ssize_t n;
	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

/* Called from signal handlers too: only async-signal-safe calls. */
static void knobs_restore(void)
{
	for (size_t i = 0; i < NKNOBS; i++)
		if (knobs[i].changed && write_text(knobs[i].path, knobs[i].saved_text) == 0)
			knobs[i].changed = 0;
}

static void on_signal(int sig)
{
	if (g_child > 0)
		kill(g_child, SIGKILL);
	knobs_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* 50,000 threads need more pids and mappings than a default machine allows. */
static void knobs_raise(void)
{
	struct rlimit rl;
	if (geteuid() != 0)
		return;
	for (size_t i = 0; i < NKNOBS; i++) {
		char text[24];
		if (bu_read_long(knobs[i].path, &knobs[i].saved) || knobs[i].saved >= knobs[i].want)
			continue;
		snprintf(knobs[i].saved_text, sizeof(knobs[i].saved_text), "%ld\n", knobs[i].saved);
		snprintf(text, sizeof(text), "%ld\n", knobs[i].want);
		knobs[i].changed = 1;
		if (write_text(knobs[i].path, text))
			knobs[i].changed = 0;
		else
			fprintf(stderr, "  raised %s from %ld to %ld (restored at the end)\n", knobs[i].path,
				knobs[i].saved, knobs[i].want);
	}
	if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NPROC, &rl);
	}
}

static void install_handlers(void)
{
	const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_signal);
	atexit(knobs_restore);
}

static void write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static size_t read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* The result goes up before tm_shutdown, so a shutdown that crashes or
 * hangs still leaves the figures, and the parent reports the shutdown. */
static _Noreturn void child_main(enum job j, const struct sizes *z, int fd)
{
	static struct msg m;
	const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	int rc;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	for (size_t i = 0; i < NKNOBS; i++)
		knobs[i].changed = 0;   /* the parent restores them, not each child */
	alarm(CHILD_TIME_LIMIT_S);
	rc = jobs[j](&m, z);
	write_full(fd, &m, sizeof(m));
	close(fd);
	if (!job_is_raw(j))
		tm_shutdown();
	_exit(rc ? 1 : 0);
}

static void describe_status(char *buf, size_t len, int st)
{
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		snprintf(buf, len, "killed by SIGALRM (its %d s time limit)", CHILD_TIME_LIMIT_S);
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
}

/* The library removes its registry on tm_shutdown; a leftover is a leak the
 * lead should hear about, and is removed so runs do not pile up files. */
static void check_shm(struct msg *m, pid_t pid, enum job j)
{
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/taskmon.%d", (int)pid);
	if (job_is_raw(j) || access(path, F_OK))
		return;
	note(m, "%s was left behind after the child ended (removed)", path);
	unlink(path);
}

static int run_job(enum job j, const struct sizes *z, struct msg *m)
{
	int fd[2], st = 0;
	char how[96];
	size_t got;
	pid_t pid;
	memset(m, 0, sizeof(*m));
	fprintf(stderr, "%s...\n", job_names[j]);
	if (pipe(fd))
		return fail(m, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return fail(m, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(fd[0]);
		child_main(j, z, fd[1]);
	}
	g_child = pid;
	close(fd[1]);
	got = read_full(fd[0], m, sizeof(*m));
	close(fd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	g_child = 0;
	describe_status(how, sizeof(how), st);
	if (got != sizeof(*m)) {
		memset(m, 0, sizeof(*m));
		return fail(m, "child %s before reporting", how);
	}
	check_shm(m, pid, j);
	if (!m->err[0] && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		fail(m, "child %s after reporting, in tm_shutdown", how);
	return m->err[0] ? -1 : 0;
}

/* ---- the table ---------------------------------------------------------------------- */

static void row(const char *fig, const char *lib, const char *base, const char *ratio,
		const char *target, const char *verdict)
{
	printf("%-30s %-12s %-22s %8s   %-12s %s\n", fig, lib, base, ratio, target, verdict);
}

static const char *fmt(char *buf, size_t len, const char *f, double v)
{
	snprintf(buf, len, f, v);
	return buf;
}

static const char *fmt_ratio(char *buf, size_t len, double a, double b)
{
	if (b <= 0)
		return "-";
	snprintf(buf, len, a / b < 0.1 ? "%.4fx" : "%.2fx", a / b);
	return buf;
}

static void print_failure(const char *section, const struct msg *m)
{
	printf("%-30s FAILED: %s\n", section, m->err);
}

static void print_throughput(const struct msg *m)
{
	const struct thr_res *r = &m->u.thr;
	double lib = bu_median3(r->lib), raw = bu_median3(r->raw), glib = bu_median3(r->glib);
	char a[32], b[48], c[16], cnt[32];
	snprintf(b, sizeof(b), "raw pthread %s", bu_count(cnt, sizeof(cnt), (uint64_t)raw));
	row("spawn+complete /s", bu_count(a, sizeof(a), (uint64_t)lib), b, fmt_ratio(c, sizeof(c), lib, raw),
	    ">= 3x", lib >= 3 * raw ? "PASS" : "MISS");
	snprintf(b, sizeof(b), "GThreadPool %s", bu_count(cnt, sizeof(cnt), (uint64_t)glib));
	row("", "", b, fmt_ratio(c, sizeof(c), lib, glib), "", "");
	if (r->lib_eagain || r->raw_eagain) {
		snprintf(b, sizeof(b), "raw pthread %llu", (unsigned long long)r->raw_eagain);
		row("  -EAGAIN retries", bu_count(a, sizeof(a), r->lib_eagain), b, "", "", "");
	}
}

static void lat_row(const char *fig, uint64_t lib, uint64_t raw, double target)
{
	char a[32], b[48], c[16], t[16];
	snprintf(b, sizeof(b), "raw pthread %.1f", raw / 1e3);
	snprintf(t, sizeof(t), "<= %.0f", target);
	row(fig, fmt(a, sizeof(a), "%.1f", lib / 1e3), b, fmt_ratio(c, sizeof(c), (double)lib, (double)raw),
	    target > 0 ? t : "", target <= 0 ? "" : lib <= target * 1e3 ? "PASS" : "MISS");
}

static void print_latency(const struct msg *m)
{
	const struct lat_res *r = &m->u.lat;
	char a[48];
	lat_row("spawn latency p50 us", r->lib.p50, r->raw.p50, 10);
	lat_row("spawn latency p95 us", r->lib.p95, r->raw.p95, 0);
	lat_row("spawn latency p99 us", r->lib.p99, r->raw.p99, 50);
	lat_row("spawn latency max us", r->lib.max, r->raw.max, 0);
	snprintf(a, sizeof(a), "%.1f/%.1f/%.1f", r->own.p50 / 1e3, r->own.p95 / 1e3, r->own.p99 / 1e3);
	row("  bench-timed p50/p95/p99 us", a, "", "", "", "");
	snprintf(a, sizeof(a), "%.1f/%.1f/%.1f", r->lib_global.p50 / 1e3, r->lib_global.p95 / 1e3,
		 r->lib_global.p99 / 1e3);
	row("  tm_get_stats p50/p95/p99 us", a, "", "", "", "");
	if (r->lib_late || r->raw_late) {
		char b[48];
		snprintf(a, sizeof(a), "%llu", (unsigned long long)r->lib_late);
		snprintf(b, sizeof(b), "raw pthread %llu", (unsigned long long)r->raw_late);
		row("  spawns a period late", a, b, "", "", "");
	}
}

static double rss_per(const struct conc_res *r)
{
	return r->reached ? (double)(r->rss_after - r->rss_before) / (double)r->reached : 0;
}

static void print_concurrent(const struct msg *lib, const struct msg *raw)
{
	const struct conc_res *l = &lib->u.conc, *w = &raw->u.conc;
	double lr = rss_per(l), wr = rss_per(w), tb = l->running ? (double)l->tracker_bytes / (double)l->running : 0;
	char a[32], b[48], c[16], cnt[32];
	snprintf(b, sizeof(b), "raw pthread %s", bu_count(cnt, sizeof(cnt), w->reached));
	row("concurrent tasks", bu_count(a, sizeof(a), l->reached), b, "", bu_count(c, sizeof(c), l->want), "");
	snprintf(b, sizeof(b), "raw pthread %.2f", wr);
	row("RSS per task KiB", fmt(a, sizeof(a), "%.2f", lr), b, fmt_ratio(c, sizeof(c), lr, wr), "<= 10",
	    lr <= 10 ? "PASS" : "MISS");
	row("tracker bytes per task", fmt(a, sizeof(a), "%.0f", tb), "-", "", "<= 128", tb <= 128 ? "PASS" : "MISS");
	row("tm_cancel_type x8 ms", fmt(a, sizeof(a), "%.2f", l->cancel_ms), "", "", "", "");
	snprintf(b, sizeof(b), "raw wake+join %.1f", w->ended_ms);
	row("all ended after cancel ms", fmt(a, sizeof(a), "%.1f", l->ended_ms), b,
	    fmt_ratio(c, sizeof(c), l->ended_ms, w->ended_ms), "<= 50", l->ended_ms <= 50 ? "PASS" : "MISS");
	if (l->limit[0])
		printf("  taskmon: %s\n", l->limit);
	if (w->limit[0])
		printf("  raw pthread: %s\n", w->limit);
}

static void print_churn(const struct msg *m)
{
	const struct churn_res *r = &m->u.churn;
	char a[32], b[48], f[48], cnt[32];
	row("churn spawn+complete /s", bu_count(a, sizeof(a), (uint64_t)r->per_s), "", "", "", "");
	snprintf(f, sizeof(f), "tracker bytes at %s", bu_count(cnt, sizeof(cnt), r->mark));
	row(f, bu_count(a, sizeof(a), r->tracker_mark), "", "", "", "");
	snprintf(f, sizeof(f), "tracker bytes at %s", bu_count(cnt, sizeof(cnt), r->n));
	snprintf(b, sizeof(b), "<= at %s", bu_count(cnt, sizeof(cnt), r->mark));
	row(f, bu_count(a, sizeof(a), r->tracker_end), "", "", b, r->tracker_end <= r->tracker_mark ? "PASS" : "MISS");
	snprintf(a, sizeof(a), "%llu/%llu", (unsigned long long)r->records_mark, (unsigned long long)r->records_end);
	row("  tracked records (mark/end)", a, "", "", "", "");
	snprintf(a, sizeof(a), "%ld/%ld", r->rss_mark, r->rss_end);
	row("  RSS KiB (mark/end)", a, "", "", "", "");
	if (r->eagain)
		row("  -EAGAIN retries", bu_count(a, sizeof(a), r->eagain), "", "", "", "");
}

struct cancel_fig { double med, worst; };   /* ms */

static struct cancel_fig cancel_fig(const struct cancel_res *r, const uint64_t *v)
{
	size_t n = r->rounds < CANCEL_ROUNDS ? (size_t)r->rounds : CANCEL_ROUNDS;
	struct cancel_fig f = { bu_median_u64(v, n) / 1e6, bu_max_u64(v, n) / 1e6 };
	return f;
}

static const char *verdict(double ms)
{
	return ms < CANCEL_TARGET_MS ? "PASS" : "MISS";
}

/* Medians of the rounds carry the verdict, as elsewhere; the worst round is
 * a row of its own because the target is a bound, not a typical value. */
static void print_cancel(const struct msg *lib, const struct msg *raw)
{
	const struct cancel_res *l = &lib->u.cancel, *w = &raw->u.cancel;
	bool have_raw = !raw->err[0] && w->rounds == CANCEL_ROUNDS;
	struct cancel_fig lc = cancel_fig(l, l->cancel), le = cancel_fig(l, l->ended), lb = cancel_fig(l, l->bodies);
	struct cancel_fig wc = cancel_fig(w, w->cancel), we = cancel_fig(w, w->ended);
	char f[48], a[32], b[48], c[16], t[16];
	snprintf(t, sizeof(t), "< %.0f", CANCEL_TARGET_MS);
	snprintf(f, sizeof(f), "tm_cancel_type(%llu) ms", (unsigned long long)l->n);
	snprintf(b, sizeof(b), have_raw ? "raw wake all %.2f" : "raw wake all -", wc.med);
	row(f, fmt(a, sizeof(a), "%.2f", lc.med), b, fmt_ratio(c, sizeof(c), lc.med, have_raw ? wc.med : 0), t,
	    verdict(lc.med));
	snprintf(b, sizeof(b), have_raw ? "raw all exited %.2f" : "raw all exited -", we.med);
	row("all ended after its return ms", fmt(a, sizeof(a), "%.2f", le.med), b,
	    fmt_ratio(c, sizeof(c), le.med, have_raw ? we.med : 0), t, verdict(le.med));
	snprintf(f, sizeof(f), "  worst of %llu: cancel/ended", (unsigned long long)l->rounds);
	snprintf(a, sizeof(a), "%.2f/%.2f", lc.worst, le.worst);
	if (have_raw)
		snprintf(b, sizeof(b), "raw %.2f/%.2f", wc.worst, we.worst);
	row(f, a, have_raw ? b : "", "", t, verdict(lc.worst > le.worst ? lc.worst : le.worst));
	snprintf(a, sizeof(a), "%.2f/%.2f", lb.med, lb.worst);
	row("  bodies returned ms med/worst", a, "", "", "", "");
	if (l->eagain || w->eagain) {
		snprintf(b, sizeof(b), "raw pthread %llu", (unsigned long long)w->eagain);
		row("  -EAGAIN retries", bu_count(a, sizeof(a), l->eagain), b, "", "", "");
	}
}

/* ---- JSON ---------------------------------------------------------------------------- */

static void json_tail(FILE *f, const struct msg *m)
{
	fprintf(f, ",\"notes\":");
	bu_json_str(f, m->note);
	fprintf(f, "}");
}

static void json_throughput(FILE *f, const struct msg *m)
{
	const struct thr_res *r = &m->u.thr;
	double lib = bu_median3(r->lib), raw = bu_median3(r->raw);
	fprintf(f, "{\"n\":%llu,\"rounds\":%d,\"taskmon_per_s\":%.0f,\"raw_pthread_per_s\":%.0f,"
		   "\"gthreadpool_per_s\":%.0f,\"ratio\":%.3f,\"target\":3.0,\"pass\":%s,"
		   "\"taskmon_eagain_retries\":%llu,\"raw_eagain_retries\":%llu",
		(unsigned long long)r->n, ROUNDS, lib, raw, bu_median3(r->glib), raw > 0 ? lib / raw : 0,
		lib >= 3 * raw ? "true" : "false", (unsigned long long)r->lib_eagain,
		(unsigned long long)r->raw_eagain);
	json_tail(f, m);
}

static void json_q(FILE *f, const char *key, const struct lat_q *q)
{
	fprintf(f, ",\"%s\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"max\":%.3f}", key, q->p50 / 1e3,
		q->p95 / 1e3, q->p99 / 1e3, q->max / 1e3);
}

static void json_latency(FILE *f, const struct msg *m, const struct sizes *z)
{
	const struct lat_res *r = &m->u.lat;
	fprintf(f, "{\"rate_per_s\":%llu,\"seconds\":%llu,\"tasks\":%llu", (unsigned long long)z->lat_rate,
		(unsigned long long)z->lat_secs, (unsigned long long)r->n);
	json_q(f, "taskmon_us", &r->lib);
	json_q(f, "raw_pthread_us", &r->raw);
	json_q(f, "taskmon_bench_timed_us", &r->own);
	json_q(f, "taskmon_get_stats_us", &r->lib_global);
	fprintf(f, ",\"target_p50_us\":10,\"target_p99_us\":50,\"pass_p50\":%s,\"pass_p99\":%s",
		r->lib.p50 <= 10000 ? "true" : "false", r->lib.p99 <= 50000 ? "true" : "false");
	json_tail(f, m);
}

static void json_concurrent(FILE *f, const struct msg *lib, const struct msg *raw)
{
	const struct conc_res *l = &lib->u.conc, *w = &raw->u.conc;
	double lr = rss_per(l), wr = rss_per(w), tb = l->running ? (double)l->tracker_bytes / (double)l->running : 0;
	fprintf(f, "{\"requested\":%llu,\"taskmon_tasks\":%llu,\"raw_pthread_threads\":%llu,"
		   "\"taskmon_rss_per_task_kib\":%.3f,\"raw_pthread_rss_per_thread_kib\":%.3f,\"ratio\":%.3f,"
		   "\"target_rss_kib\":10,\"pass_rss\":%s,\"tracker_bytes_per_task\":%.1f,"
		   "\"target_tracker_bytes\":128,\"pass_tracker\":%s,\"cancel_calls_ms\":%.3f,"
		   "\"all_ended_ms\":%.3f,\"raw_wake_join_ms\":%.3f,\"target_ended_ms\":50,\"pass_ended\":%s,"
		   "\"taskmon_limit\":",
		(unsigned long long)l->want, (unsigned long long)l->reached, (unsigned long long)w->reached, lr, wr,
		wr > 0 ? lr / wr : 0, lr <= 10 ? "true" : "false", tb, tb <= 128 ? "true" : "false", l->cancel_ms,
		l->ended_ms, w->ended_ms, l->ended_ms <= 50 ? "true" : "false");
	bu_json_str(f, l->limit);
	fprintf(f, ",\"raw_limit\":");
	bu_json_str(f, w->limit);
	fprintf(f, ",\"raw_notes\":");
	bu_json_str(f, raw->note);
	json_tail(f, lib);
}

static void json_churn(FILE *f, const struct msg *m)
{
	const struct churn_res *r = &m->u.churn;
	fprintf(f, "{\"tasks\":%llu,\"mark\":%llu,\"per_s\":%.0f,\"tracker_bytes_at_mark\":%llu,"
		   "\"tracker_bytes_end\":%llu,\"tracked_records_at_mark\":%llu,\"tracked_records_end\":%llu,"
		   "\"rss_kib_at_mark\":%ld,\"rss_kib_end\":%ld,\"eagain_retries\":%llu,\"pass\":%s",
		(unsigned long long)r->n, (unsigned long long)r->mark, r->per_s, (unsigned long long)r->tracker_mark,
		(unsigned long long)r->tracker_end, (unsigned long long)r->records_mark,
		(unsigned long long)r->records_end, r->rss_mark, r->rss_end, (unsigned long long)r->eagain,
		r->tracker_end <= r->tracker_mark ? "true" : "false");
	json_tail(f, m);
}

static void json_fig(FILE *f, const char *key, const struct cancel_res *r, const uint64_t *v)
{
	struct cancel_fig c = cancel_fig(r, v);
	fprintf(f, ",\"%s\":{\"median\":%.3f,\"worst\":%.3f,\"rounds\":[", key, c.med, c.worst);
	for (uint64_t i = 0; i < r->rounds && i < CANCEL_ROUNDS; i++)
		fprintf(f, "%s%.3f", i ? "," : "", v[i] / 1e6);
	fprintf(f, "]}");
}

static void json_cancel(FILE *f, const struct msg *lib, const struct msg *raw)
{
	const struct cancel_res *l = &lib->u.cancel, *w = &raw->u.cancel;
	struct cancel_fig lc = cancel_fig(l, l->cancel), le = cancel_fig(l, l->ended);
	struct cancel_fig wc = cancel_fig(w, w->cancel), we = cancel_fig(w, w->ended);
	fprintf(f, "{\"tasks\":%llu,\"rounds\":%llu,\"settle_ms\":%llu,\"poll_us\":%llu",
		(unsigned long long)l->n, (unsigned long long)l->rounds, CANCEL_SETTLE_NS / 1000000,
		CANCEL_POLL_NS / 1000);
	json_fig(f, "taskmon_cancel_type_ms", l, l->cancel);
	json_fig(f, "taskmon_ended_after_ms", l, l->ended);
	json_fig(f, "taskmon_bodies_returned_after_ms", l, l->bodies);
	json_fig(f, "raw_wake_all_ms", w, w->cancel);
	json_fig(f, "raw_exited_after_ms", w, w->ended);
	fprintf(f, ",\"cancel_ratio\":%.3f,\"ended_ratio\":%.3f,\"target_cancel_ms\":%.0f,"
		   "\"target_ended_ms\":%.0f,\"pass_cancel\":%s,\"pass_ended\":%s,\"pass_cancel_worst\":%s,"
		   "\"pass_ended_worst\":%s,\"taskmon_eagain_retries\":%llu,\"raw_eagain_retries\":%llu,"
		   "\"raw_notes\":",
		wc.med > 0 ? lc.med / wc.med : 0, we.med > 0 ? le.med / we.med : 0, CANCEL_TARGET_MS, CANCEL_TARGET_MS,
		lc.med < CANCEL_TARGET_MS ? "true" : "false", le.med < CANCEL_TARGET_MS ? "true" : "false",
		lc.worst < CANCEL_TARGET_MS ? "true" : "false", le.worst < CANCEL_TARGET_MS ? "true" : "false",
		(unsigned long long)l->eagain, (unsigned long long)w->eagain);
	bu_json_str(f, raw->note);
	json_tail(f, lib);
}

/* ---- main -------------------------------------------------------------------------------- */

struct run {
	bool quick;
	int only;   /* a section, or -1 for all */
	const char *outdir;
	const struct sizes *z;
	bool ran[J_COUNT];
	struct msg m[J_COUNT];
};

static bool wanted(const struct run *r, enum section s)
{
	return r->only < 0 || r->only == (int)s;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_lib [--quick] [--only throughput|latency|concurrent|churn|cancel] [OUTDIR]\n"
		   "  Measures libtaskmon beside same-run baselines; prints a table and writes OUTDIR/lib.json\n"
		   "  (default build/bench). Exits 0 whether targets are met or not; 1 when a section failed.\n"
		   "  --quick  smaller sizes, for a smoke run\n");
}

static int parse_args(struct run *r, int argc, char **argv)
{
	r->only = -1;
	r->outdir = "build/bench";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(argv[i], "--quick")) {
			r->quick = true;
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			for (r->only = S_COUNT - 1; r->only >= 0 && strcmp(section_names[r->only], argv[i + 1]); r->only--)
				;
			if (r->only < 0)
				return fprintf(stderr, "bench_lib: no section '%s'\n", argv[i + 1]), -1;
			i++;
		} else if (argv[i][0] == '-') {
			return usage(stderr), -1;
		} else {
			r->outdir = argv[i];
		}
	}
	r->z = r->quick ? &quick_sizes : &full_sizes;
	return 0;
}

static int run_sections(struct run *r)
{
	static const enum job order[J_COUNT] = { J_THROUGHPUT, J_LATENCY, J_CONC_RAW, J_CONC_LIB, J_CHURN,
						 J_CANCEL_RAW, J_CANCEL_LIB };
	static const enum section of[J_COUNT] = { S_THROUGHPUT, S_LATENCY, S_CONCURRENT, S_CONCURRENT, S_CHURN,
						  S_CANCEL, S_CANCEL };
	int failed = 0;
	for (int i = 0; i < J_COUNT; i++) {
		enum job j = order[i];
		if (!wanted(r, of[j]))
			continue;
		if (j == J_CONC_RAW)
			knobs_raise();
		r->ran[j] = true;
		failed |= run_job(j, r->z, &r->m[j]) != 0;
		if (j == J_CONC_LIB)
			knobs_restore();
	}
	return failed;
}

static void print_table(const struct run *r)
{
	char date[64];
	time_t now = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M", localtime(&now));
	printf("\ntaskmon library benchmark (%ld CPUs, %s%s)\n", sysconf(_SC_NPROCESSORS_ONLN), date,
	       r->quick ? ", --quick" : "");
	row("figure", "taskmon", "baseline", "ratio", "target", "");
	if (r->ran[J_THROUGHPUT])
		r->m[J_THROUGHPUT].err[0] ? print_failure("throughput", &r->m[J_THROUGHPUT])
					  : print_throughput(&r->m[J_THROUGHPUT]);
	if (r->ran[J_LATENCY])
		r->m[J_LATENCY].err[0] ? print_failure("latency", &r->m[J_LATENCY]) : print_latency(&r->m[J_LATENCY]);
	if (r->ran[J_CONC_RAW] && r->m[J_CONC_RAW].err[0])
		print_failure("concurrent (raw pthread)", &r->m[J_CONC_RAW]);
	if (r->ran[J_CONC_LIB] && r->m[J_CONC_LIB].err[0])
		print_failure("concurrent", &r->m[J_CONC_LIB]);
	else if (r->ran[J_CONC_LIB])
		print_concurrent(&r->m[J_CONC_LIB], &r->m[J_CONC_RAW]);
	if (r->ran[J_CHURN])
		r->m[J_CHURN].err[0] ? print_failure("churn", &r->m[J_CHURN]) : print_churn(&r->m[J_CHURN]);
	if (r->ran[J_CANCEL_RAW] && r->m[J_CANCEL_RAW].err[0])
		print_failure("cancel (raw pthread)", &r->m[J_CANCEL_RAW]);
	if (r->ran[J_CANCEL_LIB] && r->m[J_CANCEL_LIB].err[0])
		print_failure("cancel", &r->m[J_CANCEL_LIB]);
	if (r->ran[J_CANCEL_LIB] && r->m[J_CANCEL_LIB].u.cancel.rounds)
		print_cancel(&r->m[J_CANCEL_LIB], &r->m[J_CANCEL_RAW]);
	for (int j = 0; j < J_COUNT; j++)
		if (r->ran[j] && r->m[j].note[0])
			printf("note (%s): %s\n", job_names[j], r->m[j].note);
}

static void json_section(FILE *f, const struct run *r, enum job j, bool *first)
{
	static const char *const keys[J_COUNT] = { "throughput", "latency", "", "concurrent", "churn", "", "cancel" };
	const struct msg *m = &r->m[j];
	const struct msg *raw = j == J_CONC_LIB ? &r->m[J_CONC_RAW] : j == J_CANCEL_LIB ? &r->m[J_CANCEL_RAW] : NULL;
	if (!r->ran[j])
		return;
	fprintf(f, "%s\"%s\":", *first ? "" : ",", keys[j]);
	*first = false;
	if (m->err[0] || (raw && raw->err[0])) {
		fprintf(f, "{\"error\":");
		bu_json_str(f, m->err[0] ? m->err : raw->err);
		fprintf(f, "}");
	} else if (j == J_THROUGHPUT) {
		json_throughput(f, m);
	} else if (j == J_LATENCY) {
		json_latency(f, m, r->z);
	} else if (j == J_CONC_LIB) {
		json_concurrent(f, m, raw);
	} else if (j == J_CANCEL_LIB) {
		json_cancel(f, m, raw);
	} else {
		json_churn(f, m);
	}
}

static int write_json(const struct run *r)
{
	char path[4096];
	bool first = true;
	FILE *f;
	mkdir(r->outdir, 0755);
	snprintf(path, sizeof(path), "%s/lib.json", r->outdir);
	f = fopen(path, "w");
	if (!f)
		return fprintf(stderr, "bench_lib: %s: %s\n", path, strerror(errno)), -1;
	fprintf(f, "{\"cpus\":%ld,\"quick\":%s,\"sections\":{", sysconf(_SC_NPROCESSORS_ONLN),
		r->quick ? "true" : "false");
	for (int j = 0; j < J_COUNT; j++)
		if (!job_is_raw((enum job)j))
			json_section(f, r, (enum job)j, &first);
	fprintf(f, "}}\n");
	if (fclose(f))
		return fprintf(stderr, "bench_lib: %s: %s\n", path, strerror(errno)), -1;
	printf("figures written to %s\n", path);
	return 0;
}

int main(int argc, char **argv)
{
	static struct run r;
	int failed;
	if (parse_args(&r, argc, argv))
		return 2;
	if (getenv("TASKMON_CONFIG"))
		fprintf(stderr, "note: TASKMON_CONFIG=%s applies to the sections without their own config\n",
			getenv("TASKMON_CONFIG"));
	install_handlers();
	failed = run_sections(&r);
	print_table(&r);
	failed |= write_json(&r) != 0;
	return failed;
}
