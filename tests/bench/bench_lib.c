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

/* ---- children ----------------------------------------------------------------------- */

typedef int (*job_fn)(struct msg *m, const struct sizes *z);
static const job_fn jobs[J_COUNT] = { job_throughput, job_latency, job_conc_raw, job_conc_lib, job_churn };
static const char *const job_names[J_COUNT] = { "throughput", "latency", "concurrent (raw pthread)",
						"concurrent (taskmon)", "churn" };

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
	if (j != J_CONC_RAW)
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
	if (j == J_CONC_RAW || access(path, F_OK))
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

/* ---- JSON ---------------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_tail(FILE *f, const struct msg *m)
{
	fprintf(f, ",\"notes\":");
	json_str(f, m->note);
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
	json_str(f, l->limit);
	fprintf(f, ",\"raw_limit\":");
	json_str(f, w->limit);
	fprintf(f, ",\"raw_notes\":");
	json_str(f, raw->note);
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
	fprintf(f, "usage: bench_lib [--quick] [--only throughput|latency|concurrent|churn] [OUTDIR]\n"
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
	static const enum job order[J_COUNT] = { J_THROUGHPUT, J_LATENCY, J_CONC_RAW, J_CONC_LIB, J_CHURN };
	static const enum section of[J_COUNT] = { S_THROUGHPUT, S_LATENCY, S_CONCURRENT, S_CONCURRENT, S_CHURN };
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
	for (int j = 0; j < J_COUNT; j++)
		if (r->ran[j] && r->m[j].note[0])
			printf("note (%s): %s\n", job_names[j], r->m[j].note);
}

static void json_section(FILE *f, const struct run *r, enum job j, bool *first)
{
	static const char *const keys[J_COUNT] = { "throughput", "latency", "", "concurrent", "churn" };
	const struct msg *m = &r->m[j];
	if (!r->ran[j])
		return;
	fprintf(f, "%s\"%s\":", *first ? "" : ",", keys[j]);
	*first = false;
	if (m->err[0] || (j == J_CONC_LIB && r->m[J_CONC_RAW].err[0])) {
		fprintf(f, "{\"error\":");
		json_str(f, m->err[0] ? m->err : r->m[J_CONC_RAW].err);
		fprintf(f, "}");
	} else if (j == J_THROUGHPUT) {
		json_throughput(f, m);
	} else if (j == J_LATENCY) {
		json_latency(f, m, r->z);
	} else if (j == J_CONC_LIB) {
		json_concurrent(f, m, &r->m[J_CONC_RAW]);
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
		if (j != J_CONC_RAW)
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
