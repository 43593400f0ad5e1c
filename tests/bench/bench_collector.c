/* bench_collector: what the kernel programs and the collector cost, each
 * figure beside a baseline measured in the same run (these machines are
 * shared and noisy: only same-run comparisons mean anything).
 *
 *   1. Scheduler-hook overhead per context switch, the stable way: a
 *      ping-pong pinned to one CPU, runs alternated without and with the
 *      programs (A B A B ..., one pair at a time), the median of the
 *      per-pair differences. Two ping-pongs:
 *        - `taskset -c 1 perf bench sched pipe`, a process the collector does
 *          not watch, while it watches another (every hook does its lookups);
 *        - two libtaskmon tasks of this process, watched: full per-task
 *          accounting on every switch.
 *      libbpf-tools' runqlat, where installed, is measured the same way.
 *   2. Spawn throughput and paced spawn latency of the library with the
 *      collector watching (probes attached, a thread polling) and without:
 *      throughput in A B B A pairs at the library's default trace budget,
 *      then again with every task traced (kernel_trace_rate = 0).
 *   3. Event capacity: task records per second read with zero loss at the
 *      default ring size while the workload spawns trivial tasks flat out.
 *   4. Collector CPU at 20,000 task records per second (10,000 paced spawns
 *      per second): the polling thread's CPU time per second of wall time,
 *      beside the same with the ring buffer waking the collector for every
 *      record it finds idle (the kernel's default, the collector's former
 *      way).
 *
 * The collector here is the embedded loader (user/loader.h) polled by a
 * thread the way taskmond polls it. Needs root (it loads kernel programs);
 * otherwise it says so and exits 0.
 *
 * With --prog-stats the kernel's per-program run times are on (they add two
 * clock reads to every run of every program, so the A/B figures of such a
 * run are not the ones to quote) and each section ends with the mean time
 * per run of each program: where the cost is.
 *
 *   bench_collector [--quick] [--only switch|spawn|capacity|cpu] [--batch-us N] [--wake-per-record] [--prog-stats] [-v] [OUTDIR]
 *   (OUTDIR default build/bench)
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "loader.h"
#include "taskmon.h"
#include "taskmon_events.h"

extern char **environ;

#define MAX_PAIRS 64
#define SETTLE_NS (20 * 1000000ull)   /* after loading or unloading programs */
#define WARM_ROUNDS 5000

struct sizes {
	unsigned pairs;          /* A B B A pairs per switch figure */
	uint64_t pp_rounds;      /* round trips per ping-pong run (2 switches each) */
	unsigned spawn_pairs;    /* throughput pairs */
	uint64_t spawn_n;        /* tasks per throughput run */
	unsigned lat_pairs;
	uint64_t lat_rate;       /* paced spawns per second */
	uint64_t lat_n;          /* per latency run */
	uint64_t cap_n;          /* tasks of the capacity run (2 records each) */
	uint64_t cpu_rate;       /* paced spawns per second for the CPU figure */
	double cpu_secs;
};

static const struct sizes full_sizes = { 20, 50000, 10, 100000, 3, 10000, 10000, 200000, 10000, 3.0 };
static const struct sizes quick_sizes = { 6, 30000, 3, 20000, 2, 10000, 3000, 50000, 10000, 1.0 };

/* Targets from issue 4. */
#define T_UNWATCHED_NS 50.0
#define T_WATCHED_NS   150.0
#define T_SPAWN_RATIO  0.9
#define T_EVENTS_PER_S 200000.0
#define T_CPU_PCT      5.0

static char g_err[512];   /* the first failure, for the summary */
static char g_notes[2048];

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	size_t used = strlen(g_notes);
	va_list ap;
	if (used && used + 3 < sizeof(g_notes)) {
		strcpy(g_notes + used, "\n  ");
		used += 3;
	}
	va_start(ap, fmt);
	if (used < sizeof(g_notes))
		vsnprintf(g_notes + used, sizeof(g_notes) - used, fmt, ap);
	va_end(ap);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (!g_err[0])
		vsnprintf(g_err, sizeof(g_err), fmt, ap);
	va_end(ap);
	return -1;
}

static int pinned_cpu(void)
{
	return sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * BU_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median and quartiles of n values (sorted copy). */
struct spread { double med, q1, q3, min, max; };

static struct spread spread_of(const double *v, size_t n)
{
	double s[MAX_PAIRS];
	struct spread r = { 0, 0, 0, 0, 0 };
	if (!n)
		return r;
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	r.med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	r.q1 = s[(n - 1) / 4];
	r.q3 = s[(3 * (n - 1) + 3) / 4];
	r.min = s[0];
	r.max = s[n - 1];
	return r;
}

/* ---- per-program run times (--prog-stats) ------------------------------------ */

enum section { S_SWITCH, S_SWITCH_WATCHED, S_SPAWN, S_CAPACITY, S_CPU, S_COUNT };
static const char *const section_names[S_COUNT] = { "switch_unwatched", "switch_watched", "spawn", "capacity", "cpu" };
#define MAX_PROGS 16

/* Shared with the collector process: whichever process closes a collector
 * adds its programs' figures to the section under way. */
struct prog_fig { char name[32]; uint64_t runs, ns; };
struct prog_acc {
	int section;
	struct prog_fig p[S_COUNT][MAX_PROGS];
};
static struct prog_acc *g_prog;   /* MAP_SHARED; NULL without --prog-stats */

static void prog_acc_add(struct tmd_loader *l)
{
	struct tmd_prog_stat st[MAX_PROGS];
	if (!g_prog)
		return;
	size_t n = tmd_loader_prog_stats(l, st, MAX_PROGS);
	for (size_t i = 0; i < n && i < MAX_PROGS; i++) {
		for (int k = 0; k < MAX_PROGS; k++) {
			struct prog_fig *a = &g_prog->p[g_prog->section][k];
			if (a->name[0] && strcmp(a->name, st[i].name))
				continue;
			snprintf(a->name, sizeof(a->name), "%s", st[i].name);
			a->runs += st[i].runs;
			a->ns += st[i].run_ns;
			break;
		}
	}
}

/* ---- the collector: the embedded loader and a polling thread ---------------- */

struct collector {
	struct tmd_loader *l;
	pthread_t th;
	bool running;
	atomic_bool stop;
	_Atomic uint64_t events, starts, ends, other;
	_Atomic uint64_t wakeups;      /* polls that returned records */
	_Atomic uint64_t max_gap_ns;   /* longest stretch between two reads */
	int err;
};

static int on_event(void *ctx, const void *data, size_t len)
{
	struct collector *c = ctx;
	const struct tm_ev_hdr *h = data;
	atomic_fetch_add_explicit(&c->events, 1, memory_order_relaxed);
	if (len < sizeof(*h))
		return 0;
	if (h->kind == TM_EV_TASK_START)
		atomic_fetch_add_explicit(&c->starts, 1, memory_order_relaxed);
	else if (h->kind == TM_EV_TASK_END)
		atomic_fetch_add_explicit(&c->ends, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&c->other, 1, memory_order_relaxed);
	return 0;
}

/* --batch-us: a pause after each poll that found records, so that the next
 * poll finds many (0: none, the loop taskmond runs). */
static unsigned g_batch_us;
/* --wake-per-record: the ring buffer's default wakeups (a reader that has
 * read everything is woken by the next record), as the collector ran before
 * it batched them; for before/after comparisons in one run. */
static bool g_wake_per_record;
static bool g_verbose;   /* -v: every ping-pong run on stderr */

/* The loop taskmond runs: a poll with a timeout, over and over. */
static void *poll_loop(void *arg)
{
	struct collector *c = arg;
	uint64_t last = bu_now_ns();
	while (!atomic_load(&c->stop)) {
		int r = tmd_loader_poll(c->l, 200);
		uint64_t now = bu_now_ns();
		if (now - last > atomic_load_explicit(&c->max_gap_ns, memory_order_relaxed))
			atomic_store_explicit(&c->max_gap_ns, now - last, memory_order_relaxed);
		last = now;
		if (r < 0 && r != -EINTR) {
			c->err = r;
			break;
		}
		if (r > 0)
			atomic_fetch_add_explicit(&c->wakeups, 1, memory_order_relaxed);
		if (r > 0 && g_batch_us)
			bu_sleep_ns(g_batch_us * 1000ull);
	}
	return NULL;
}

/* Loads and attaches the programs and watches `pid` (0: nothing); with
 * `poll`, a thread reads the ring buffer from then on. */
static int collector_open(struct collector *c, pid_t pid, bool poll)
{
	memset(c, 0, sizeof(*c));
	if (tmd_loader_open(&c->l, TMD_LOADER_OPTS(.wake_per_record = g_wake_per_record), on_event, c) < 0)
		return fail("loader: %s", tmd_loader_error());
	if (pid > 0 && tmd_loader_watch(c->l, pid) < 0) {
		fail("watch %d: %s", (int)pid, tmd_loader_error());
		tmd_loader_close(c->l);
		c->l = NULL;
		return -1;
	}
	if (poll) {
		if (pthread_create(&c->th, NULL, poll_loop, c) != 0) {
			tmd_loader_close(c->l);
			c->l = NULL;
			return fail("cannot start the polling thread");
		}
		c->running = true;
	}
	return 0;
}

static uint64_t collector_cpu_ns(const struct collector *c)
{
	clockid_t id;
	if (!c->running || pthread_getcpuclockid(c->th, &id) != 0)
		return 0;
	return clock_ns(id);
}

/* Stops polling, reads what is left, detaches; returns the records lost. */
static uint64_t collector_close(struct collector *c)
{
	uint64_t lost;
	if (!c->l)
		return 0;
	if (c->running) {
		atomic_store(&c->stop, true);
		pthread_join(c->th, NULL);
		c->running = false;
	}
	while (tmd_loader_poll(c->l, 0) > 0)
		;
	lost = tmd_loader_stat(c->l, TM_STAT_LOST);
	prog_acc_add(c->l);
	tmd_loader_close(c->l);
	c->l = NULL;
	return lost;
}

/* The same collector in a process of its own, as taskmond runs: forked
 * before any thread exists, in a session of its own (the scheduler's
 * autogroup then shares the CPUs between it and the workload, not between
 * its one thread and the workload's many). It serves open/stat/close
 * requests on a pipe; its counters live in memory both processes map. */
enum { OP_OPEN, OP_STAT, OP_CLOSE };
struct req { int op; pid_t pid; bool wake_per_record; };
struct rep { int rc; uint64_t lost, cpu_ns; char err[256]; };

static struct collector *g_shared;   /* MAP_SHARED */
static pid_t g_server = -1;
static int g_req = -1, g_rep = -1;

static _Noreturn void server_main(int in, int out)
{
	struct req q;
	setsid();
	while (read(in, &q, sizeof(q)) == (ssize_t)sizeof(q)) {
		struct rep p;
		memset(&p, 0, sizeof(p));
		g_err[0] = '\0';
		if (q.op == OP_OPEN) {
			g_wake_per_record = q.wake_per_record;
			p.rc = collector_open(g_shared, q.pid, true);
		} else if (q.op == OP_STAT && g_shared->l) {
			p.lost = tmd_loader_stat(g_shared->l, TM_STAT_LOST);
			p.cpu_ns = collector_cpu_ns(g_shared);
		} else if (q.op == OP_CLOSE) {
			p.lost = collector_close(g_shared);
		}
		snprintf(p.err, sizeof(p.err), "%s", g_err);
		if (write(out, &p, sizeof(p)) != (ssize_t)sizeof(p))
			break;
	}
	if (g_shared->l)
		collector_close(g_shared);
	_exit(0);
}

static void start_server(void)
{
	int a[2], b[2];
	g_shared = mmap(NULL, sizeof(*g_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_shared == MAP_FAILED || pipe(a) || pipe(b)) {
		g_shared = NULL;
		return;
	}
	g_server = fork();
	if (g_server == 0) {
		close(a[1]);
		close(b[0]);
		server_main(a[0], b[1]);
	}
	close(a[0]);
	close(b[1]);
	g_req = a[1];
	g_rep = b[0];
}

static void stop_server(void)
{
	if (g_server <= 0)
		return;
	close(g_req);   /* it detaches and exits when its pipe closes */
	if (waitpid(g_server, NULL, 0) < 0)
		kill(g_server, SIGKILL);
	close(g_rep);
	g_server = -1;
}

static int server_call(int op, pid_t pid, struct rep *p)
{
	struct req q = { op, pid, g_wake_per_record };
	if (g_server <= 0)
		return fail("the collector process did not start");
	if (write(g_req, &q, sizeof(q)) != (ssize_t)sizeof(q) || read(g_rep, p, sizeof(*p)) != (ssize_t)sizeof(*p))
		return fail("the collector process does not answer");
	if (p->rc < 0)
		return fail("%s", p->err);
	return 0;
}

/* A collector of either kind, to the sections. */
enum cmode { CM_THREAD, CM_PROCESS };
struct coll {
	enum cmode mode;
	struct collector *c;     /* counters: own memory, or the shared mapping */
	struct collector local;
};

static int coll_open(struct coll *h, enum cmode m, pid_t pid)
{
	struct rep p;
	h->mode = m;
	if (m == CM_THREAD) {
		h->c = &h->local;
		return collector_open(h->c, pid, true);
	}
	h->c = g_shared;
	return server_call(OP_OPEN, pid, &p);
}

static uint64_t coll_events(const struct coll *h)
{
	return atomic_load(&h->c->events);
}

/* Records lost so far, and the polling thread's CPU time. */
static void coll_stat(struct coll *h, uint64_t *lost, uint64_t *cpu_ns)
{
	struct rep p = { 0, 0, 0, "" };
	if (h->mode == CM_PROCESS) {
		server_call(OP_STAT, 0, &p);
	} else {
		p.lost = tmd_loader_stat(h->c->l, TM_STAT_LOST);
		p.cpu_ns = collector_cpu_ns(h->c);
	}
	if (lost)
		*lost = p.lost;
	if (cpu_ns)
		*cpu_ns = p.cpu_ns;
}

static uint64_t coll_close(struct coll *h)
{
	struct rep p = { 0, 0, 0, "" };
	if (h->mode == CM_THREAD)
		return collector_close(h->c);
	server_call(OP_CLOSE, 0, &p);
	return p.lost;
}

/* A process that only sleeps: watched while `perf` is not, so that the hooks
 * take the path of an unwatched thread on a machine that watches something. */
static pid_t g_sleeper = -1;

static void start_sleeper(void)
{
	g_sleeper = fork();
	if (g_sleeper == 0) {
		for (;;)
			pause();
	}
}

static void stop_sleeper(void)
{
	if (g_sleeper > 0) {
		kill(g_sleeper, SIGKILL);
		waitpid(g_sleeper, NULL, 0);
		g_sleeper = -1;
	}
}

/* ---- ping-pong between two task threads pinned to one CPU --------------------- */

struct pp {
	int ab[2], ba[2];
	pthread_barrier_t bar;
	uint64_t rounds;
	uint64_t t0, t1;        /* side 0's clock around the loop */
	uint64_t sw[2];         /* context switches of each side in the loop */
	int err;
};

struct pp_side {
	struct pp *pp;
	int side;
};

static uint64_t thread_switches(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
}

/* The pool thread's affinity is put back afterwards: it serves later tasks. */
static int pp_body(void *arg)
{
	struct pp_side *s = arg;
	struct pp *p = s->pp;
	cpu_set_t old, one;
	char c = 0;
	sched_getaffinity(0, sizeof(old), &old);
	CPU_ZERO(&one);
	CPU_SET(pinned_cpu(), &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		p->err = errno;
	pthread_barrier_wait(&p->bar);
	uint64_t sw0 = thread_switches(), t0 = bu_now_ns();
	for (uint64_t i = 0; i < p->rounds; i++) {
		if (s->side == 0) {
			if (write(p->ab[1], &c, 1) != 1 || read(p->ba[0], &c, 1) != 1)
				p->err = EIO;
		} else {
			if (read(p->ab[0], &c, 1) != 1 || write(p->ba[1], &c, 1) != 1)
				p->err = EIO;
		}
	}
	uint64_t t1 = bu_now_ns();
	p->sw[s->side] = thread_switches() - sw0;
	if (s->side == 0) {
		p->t0 = t0;
		p->t1 = t1;
	}
	sched_setaffinity(0, sizeof(old), &old);
	return 0;
}

static void *pp_thread(void *arg)
{
	pp_body(arg);
	return NULL;
}

struct pp_run { double ns_per_rt; double sw_per_rt; };

/* One ping-pong run, on two libtaskmon tasks or on two plain threads. */
static int pp_run(uint64_t rounds, bool tasks, struct pp_run *out)
{
	struct pp p;
	struct pp_side side[2] = { { &p, 0 }, { &p, 1 } };
	int r = 0;
	memset(&p, 0, sizeof(p));
	p.rounds = rounds;
	if (pipe(p.ab) || pipe(p.ba))
		return fail("pipe: %s", strerror(errno));
	pthread_barrier_init(&p.bar, NULL, 2);
	if (tasks) {
		tm_task *t[2];
		for (int i = 0; i < 2 && r == 0; i++)
			if ((r = tm_spawn(&t[i], "pingpong", pp_body, &side[i], NULL)) < 0)
				fail("spawn: %s", tm_last_error());
		for (int i = 0; i < 2 && r == 0; i++)
			if ((r = tm_join(t[i], 120000, NULL, NULL)) < 0)
				fail("join: %s", tm_last_error());
	} else {
		pthread_t t[2];
		for (int i = 0; i < 2; i++)
			pthread_create(&t[i], NULL, pp_thread, &side[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
	}
	for (int i = 0; i < 2; i++) {
		close(p.ab[i]);
		close(p.ba[i]);
	}
	pthread_barrier_destroy(&p.bar);
	if (r < 0)
		return r;
	if (p.err)
		return fail("ping-pong: %s", strerror(p.err));
	out->ns_per_rt = (double)(p.t1 - p.t0) / (double)rounds;
	out->sw_per_rt = (double)(p.sw[0] + p.sw[1]) / (double)rounds;
	return 0;
}

/* ---- perf bench sched pipe ------------------------------------------------------ */

static bool g_have_perf;

/* Runs argv with stdout into buf (stderr to /dev/null); returns the exit
 * status and the child's context switches (its waited-for children included). */
static int run_capture(char *const argv[], char *buf, size_t len, uint64_t *switches)
{
	int out[2], st = -1;
	pid_t pid;
	posix_spawn_file_actions_t fa;
	struct rusage ru;
	size_t used = 0;
	if (pipe(out))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	if (err) {
		close(out[0]);
		return -1;
	}
	for (;;) {
		ssize_t n = read(out[0], buf + used, len - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		if (used == len - 1)
			break;
	}
	buf[used] = '\0';
	close(out[0]);
	if (wait4(pid, &st, 0, &ru) < 0)
		return -1;
	if (switches)
		*switches = (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
	return st;
}

/* One pinned `perf bench sched pipe` run: ns per round trip (2 switches). */
static int perf_run(uint64_t rounds, struct pp_run *out)
{
	char cpu[8], loops[24], buf[4096];
	uint64_t sw = 0;
	snprintf(cpu, sizeof(cpu), "%d", pinned_cpu());
	snprintf(loops, sizeof(loops), "%llu", (unsigned long long)rounds);
	char *argv[] = { (char *)"taskset", (char *)"-c", cpu, (char *)"perf", (char *)"bench", (char *)"sched",
		         (char *)"pipe", (char *)"-l", loops, NULL };
	int st = run_capture(argv, buf, sizeof(buf), &sw);
	const char *p = strstr(buf, "usecs/op");
	double us = 0;
	if (st != 0 || !p)
		return fail("taskset -c %s perf bench sched pipe -l %s failed (status %d)", cpu, loops, st);
	while (p > buf && p[-1] != '\n')
		p--;
	if (sscanf(p, "%lf", &us) != 1 || us <= 0)
		return fail("cannot read perf's usecs/op");
	out->ns_per_rt = us * 1000;
	out->sw_per_rt = (double)sw / (double)rounds;
	return 0;
}

static bool perf_available(void)
{
	char buf[4096];
	char *argv[] = { (char *)"taskset", (char *)"-c", (char *)"0", (char *)"perf", (char *)"bench",
		         (char *)"sched", (char *)"pipe", (char *)"-l", (char *)"100", NULL };
	return run_capture(argv, buf, sizeof(buf), NULL) == 0 && strstr(buf, "usecs/op");
}

/* The unwatched ping-pong: perf, or two plain threads of this process when
 * perf is missing (this process is not watched in those runs either). */
static int unwatched_run(uint64_t rounds, struct pp_run *out)
{
	return g_have_perf ? perf_run(rounds, out) : pp_run(rounds, false, out);
}

/* ---- runqlat, where installed ---------------------------------------------------- */

static bool find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s:/usr/sbin:/sbin:/usr/share/bcc/tools", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", dir, name);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

static char g_runqlat[1024];

struct tool { pid_t pid; int out; };

/* Starts runqlat and waits for it to say it is tracing (its probes are attached). */
static int runqlat_start(struct tool *t)
{
	int out[2];
	posix_spawn_file_actions_t fa;
	char line[4096];
	size_t used = 0;
	/* Line-buffered: into a pipe, its "Tracing ..." line would otherwise
	 * wait in its stdio buffer until it exits. stdbuf execs it: same pid. */
	char *argv[] = { "stdbuf", "-oL", g_runqlat, NULL };
	if (pipe(out))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int err = posix_spawnp(&t->pid, "stdbuf", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	if (err) {
		close(out[0]);
		return fail("cannot start %s: %s", g_runqlat, strerror(err));
	}
	t->out = out[0];
	uint64_t end = bu_now_ns() + 30 * BU_NS_PER_S;
	while (bu_now_ns() < end && used + 1 < sizeof(line)) {
		struct pollfd pfd = { out[0], POLLIN, 0 };
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		ssize_t n = read(out[0], line + used, sizeof(line) - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		line[used] = '\0';
		if (strstr(line, "Tracing"))
			return 0;
	}
	kill(t->pid, SIGKILL);
	waitpid(t->pid, NULL, 0);
	close(out[0]);
	return fail("%s did not start tracing", g_runqlat);
}

static void runqlat_stop(struct tool *t)
{
	kill(t->pid, SIGINT);
	uint64_t end = bu_now_ns() + 5 * BU_NS_PER_S;
	char buf[4096];
	/* It prints its histogram on the way out: keep its pipe from filling. */
	while (waitpid(t->pid, NULL, WNOHANG) == 0) {
		if (bu_now_ns() > end) {
			kill(t->pid, SIGKILL);
			waitpid(t->pid, NULL, 0);
			break;
		}
		struct pollfd pfd = { t->out, POLLIN, 0 };
		if (poll(&pfd, 1, 20) > 0 && read(t->out, buf, sizeof(buf)) <= 0)
			usleep(1000);
	}
	close(t->out);
}

/* ---- section 1: ns per context switch ---------------------------------------------- */

enum hook { H_UNWATCHED, H_WATCHED, H_RUNQLAT, H_COUNT };
static const char *const hook_keys[H_COUNT] = { "unwatched", "watched_tasks", "runqlat" };

struct switch_res {
	bool ran;
	unsigned n;                           /* pairs */
	double base[MAX_PAIRS], with[MAX_PAIRS];   /* ns per round trip */
	double added[MAX_PAIRS];              /* ns per switch */
	double sw_per_rt_base, sw_per_rt_with;     /* measured switches per round trip, medians */
	const char *baseline;                 /* what ran */
};

static struct switch_res g_sw[H_COUNT];

/* A short untimed run first: a vCPU that sat idle comes back slow for a while. */
static int one_run(enum hook h, uint64_t rounds, struct pp_run *out)
{
	struct pp_run warm;
	int err = h == H_WATCHED ? pp_run(WARM_ROUNDS, true, &warm) : unwatched_run(WARM_ROUNDS, &warm);
	if (err == 0)
		err = h == H_WATCHED ? pp_run(rounds, true, out) : unwatched_run(rounds, out);
	return err;
}

static void mean2(struct pp_run *out, const struct pp_run *x, const struct pp_run *y)
{
	out->ns_per_rt = (x->ns_per_rt + y->ns_per_rt) / 2;
	out->sw_per_rt = (x->sw_per_rt + y->sw_per_rt) / 2;
}

/* One pair, A B B A: A without programs, B as `hook` says. These VMs slow
 * down for stretches of a second or more; the pair is short and symmetric
 * so that a stretch (or a drift) falls on both sides alike. */
static int switch_pair(enum hook h, uint64_t rounds, struct pp_run *a, struct pp_run *b)
{
	struct collector c;
	struct tool t;
	struct pp_run r[4];
	int err;
	if ((err = one_run(h, rounds, &r[0])) < 0)
		return err;
	if (h == H_RUNQLAT ? runqlat_start(&t) < 0
	                   : collector_open(&c, h == H_WATCHED ? getpid() : g_sleeper, false) < 0)
		return -1;
	bu_sleep_ns(SETTLE_NS);
	err = one_run(h, rounds, &r[1]);
	if (err == 0)
		err = one_run(h, rounds, &r[2]);
	if (h == H_RUNQLAT)
		runqlat_stop(&t);
	else
		collector_close(&c);
	bu_sleep_ns(SETTLE_NS);
	if (err == 0)
		err = one_run(h, rounds, &r[3]);
	if (g_verbose)
		fprintf(stderr, "  %s ns per round trip: A %.0f | B %.0f %.0f | A %.0f\n", hook_keys[h], r[0].ns_per_rt,
		        r[1].ns_per_rt, r[2].ns_per_rt, r[3].ns_per_rt);
	mean2(a, &r[0], &r[3]);
	mean2(b, &r[1], &r[2]);
	return err;
}

static int section_switch(enum hook h, const struct sizes *z)
{
	struct switch_res *s = &g_sw[h];
	double swa[MAX_PAIRS], swb[MAX_PAIRS];
	s->ran = true;
	if (g_prog)
		g_prog->section = h == H_WATCHED ? S_SWITCH_WATCHED : S_SWITCH;
	s->baseline = h == H_WATCHED ? "two tasks of this process" : g_have_perf ? "perf bench sched pipe"
	                                                                           : "two threads of this process";
	/* One warm-up pair, not counted: first runs pay for page faults and caches. */
	for (unsigned i = 0; i <= z->pairs; i++) {
		struct pp_run a, b;
		if (switch_pair(h, z->pp_rounds, &a, &b) < 0)
			return -1;
		if (i == 0)
			continue;
		s->base[s->n] = a.ns_per_rt;
		s->with[s->n] = b.ns_per_rt;
		swa[s->n] = a.sw_per_rt;
		swb[s->n] = b.sw_per_rt;
		/* Two switches per round trip: the pinned pair hands the CPU back and forth. */
		s->added[s->n] = (b.ns_per_rt - a.ns_per_rt) / 2;
		s->n++;
	}
	s->sw_per_rt_base = spread_of(swa, s->n).med;
	s->sw_per_rt_with = spread_of(swb, s->n).med;
	if (s->sw_per_rt_base < 1.8 || s->sw_per_rt_base > 2.2)
		note("%s: %.2f switches per round trip measured, not 2: the CPU was shared", hook_keys[h],
		     s->sw_per_rt_base);
	return 0;
}

/* ---- section 2: spawn throughput and latency with and without the collector ---------- */

static _Atomic uint64_t g_done;

static int counted(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&g_done, 1, memory_order_release);
	return 0;
}

static int wait_done(uint64_t n, uint64_t limit_ns)
{
	uint64_t end = bu_now_ns() + limit_ns;
	while (atomic_load_explicit(&g_done, memory_order_acquire) < n) {
		if (bu_now_ns() > end)
			return fail("only %llu of %llu tasks completed in time",
			            (unsigned long long)atomic_load(&g_done), (unsigned long long)n);
		bu_sleep_ns(50000);
	}
	return 0;
}

static uint64_t g_eagain;

static int spawn_retry(const char *name, tm_fn fn, void *arg)
{
	int r;
	while ((r = tm_spawn(NULL, name, fn, arg, NULL)) == -EAGAIN) {
		g_eagain++;
		sched_yield();
	}
	return r < 0 ? fail("spawn: %s", tm_last_error()) : 0;
}

/* Spawns n trivial tasks flat out; tasks per second, spawn to all complete. */
static double spawn_rate(uint64_t n)
{
	atomic_store(&g_done, 0);
	uint64_t t0 = bu_now_ns();
	for (uint64_t i = 0; i < n; i++)
		if (spawn_retry("flat_out", counted, NULL) < 0)
			return -1;
	if (wait_done(n, 120 * BU_NS_PER_S) < 0)
		return -1;
	return (double)n * 1e9 / (double)(bu_now_ns() - t0);
}

/* Restarts the library with kernel_trace_rate = rate (NULL: the library's
 * default budget). Capacity is measured with every task traced: it is the
 * collector's ceiling, not the library's budget, that is asked for. */
static bool g_lib_up;

static int use_trace_rate(const char *rate)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/bench-collector-%d.ini", (int)getpid());
	FILE *f = fopen(path, "w");
	if (!f)
		return fail("%s: %s", path, strerror(errno));
	fprintf(f, "[task_management]\n");
	if (rate)
		fprintf(f, "kernel_trace_rate = %s\n", rate);
	fclose(f);
	setenv("TASKMON_CONFIG", path, 1);
	if (g_lib_up)
		tm_shutdown();
	g_lib_up = tm_init(NULL) == 0;
	unlink(path);
	return g_lib_up ? 0 : fail("tm_init: %s", tm_last_error());
}

struct lat_slot { uint64_t t_spawn, lat; };

/* The clock is read first: "spawn call to the task's first instruction". */
static int lat_task(void *arg)
{
	uint64_t now = bu_now_ns();
	struct lat_slot *s = arg;
	s->lat = now - s->t_spawn;
	atomic_fetch_add_explicit(&g_done, 1, memory_order_release);
	return 0;
}

static int paced(struct lat_slot *slots, uint64_t n, uint64_t rate, tm_fn fn)
{
	uint64_t period = BU_NS_PER_S / rate, next = bu_now_ns();
	atomic_store(&g_done, 0);
	for (uint64_t i = 0; i < n; i++, next += period) {
		bu_pace_until(next);
		if (slots)
			slots[i].t_spawn = bu_now_ns();
		if (spawn_retry("paced", fn, slots ? &slots[i] : NULL) < 0)
			return -1;
	}
	return wait_done(n, 60 * BU_NS_PER_S);
}

struct spawn_res {
	bool ran;
	unsigned n;
	uint64_t tasks_per_run;
	double without[MAX_PAIRS], with[MAX_PAIRS], ratio[MAX_PAIRS];   /* tasks/s, the default budget */
	double all_without[MAX_PAIRS], all_with[MAX_PAIRS], all_ratio[MAX_PAIRS];   /* every task traced */
	uint64_t lost;
	/* latency, all runs pooled, ns */
	uint64_t lat_n;
	uint64_t off[3], on[3];   /* p50, p95, p99, the default budget */
	uint64_t all_off[3], all_on[3];   /* every task traced */
};

static struct spawn_res g_spawn;

static void lat_quantiles(struct lat_slot *slots, uint64_t n, uint64_t *v, uint64_t q[3])
{
	for (uint64_t i = 0; i < n; i++)
		v[i] = slots[i].lat;
	qsort(v, n, sizeof(*v), bu_cmp_u64);
	q[0] = bu_quantile(v, n, 0.50);
	q[1] = bu_quantile(v, n, 0.95);
	q[2] = bu_quantile(v, n, 0.99);
}

/* Throughput with the collector watching: the collector is opened, left
 * 100 ms to finish attaching (its start is not the steady state measured),
 * then the run. */
#define ATTACH_SETTLE_NS (100 * 1000000ull)

static double watched_rate(uint64_t n, uint64_t *lost)
{
	struct coll c;
	if (coll_open(&c, CM_PROCESS, getpid()) < 0)
		return -1;
	bu_sleep_ns(ATTACH_SETTLE_NS);
	double r = spawn_rate(n);
	*lost += coll_close(&c);
	return r;
}

/* Pairs in A B B A order (without, with; then with, without), so that a
 * drift of the machine during the section falls on both sides alike. */
static int spawn_pairs(const struct sizes *z, double *without, double *with, double *ratio, uint64_t *lost)
{
	if (spawn_rate(z->spawn_n) < 0)   /* warm-up: the thread cache fills */
		return -1;
	for (unsigned i = 0; i < z->spawn_pairs; i++) {
		double a, b;
		if (i % 2 == 0) {
			a = spawn_rate(z->spawn_n);
			b = a < 0 ? -1 : watched_rate(z->spawn_n, lost);
		} else {
			b = watched_rate(z->spawn_n, lost);
			a = b < 0 ? -1 : spawn_rate(z->spawn_n);
		}
		if (a < 0 || b < 0)
			return -1;
		without[i] = a;
		with[i] = b;
		ratio[i] = b / a;
	}
	return 0;
}

/* Paced spawn latency, without and with the collector, pooled over the pairs. */
static int paced_pairs(const struct sizes *z, uint64_t q_off[3], uint64_t q_on[3], uint64_t *lost)
{
	struct coll c;
	uint64_t n = z->lat_n * z->lat_pairs;
	struct lat_slot *off = calloc(n, sizeof(*off)), *on = calloc(n, sizeof(*on));
	uint64_t *v = calloc(n, sizeof(*v));
	int r = off && on && v ? 0 : fail("out of memory");
	for (unsigned i = 0; r == 0 && i < z->lat_pairs; i++) {
		r = paced(off + i * z->lat_n, z->lat_n, z->lat_rate, lat_task);
		if (r == 0 && (r = coll_open(&c, CM_PROCESS, getpid())) == 0) {
			r = paced(on + i * z->lat_n, z->lat_n, z->lat_rate, lat_task);
			*lost += coll_close(&c);
		}
	}
	if (r == 0) {
		lat_quantiles(off, n, v, q_off);
		lat_quantiles(on, n, v, q_on);
	}
	free(off);
	free(on);
	free(v);
	return r;
}

static int section_spawn(const struct sizes *z)
{
	struct spawn_res *s = &g_spawn;
	s->ran = true;
	s->tasks_per_run = z->spawn_n;
	if (spawn_pairs(z, s->without, s->with, s->ratio, &s->lost) < 0)
		return -1;
	s->n = z->spawn_pairs;
	/* The same with every task traced (kernel_trace_rate = 0): what the
	 * probes cost a task when none is skipped. */
	if (use_trace_rate("0") < 0 || spawn_pairs(z, s->all_without, s->all_with, s->all_ratio, &s->lost) < 0 ||
	    use_trace_rate(NULL) < 0)
		return -1;
	/* Paced latency at the default budget, then with every task traced. */
	if (paced_pairs(z, s->off, s->on, &s->lost) < 0 || use_trace_rate("0") < 0 ||
	    paced_pairs(z, s->all_off, s->all_on, &s->lost) < 0 || use_trace_rate(NULL) < 0)
		return -1;
	s->lat_n = z->lat_n * z->lat_pairs;
	return 0;
}

/* ---- section 3: event capacity ----------------------------------------------------- */

static const char *const mode_names[2] = { "thread", "process" };

struct cap_res {
	bool ran;
	uint64_t tasks, records, lost, other, wakeups;
	uint64_t max_gap_ns;        /* the reader's longest stretch between two reads */
	double records_per_s;       /* received, first spawn to last record */
	double baseline_tasks_per_s;   /* the same workload without the collector */
	double poller_cpu_pct;      /* of one core, over the same interval */
};

static struct cap_res g_cap[2];

static int section_capacity_run(const struct sizes *z, enum cmode m, struct cap_res *s);

static int section_capacity(const struct sizes *z, enum cmode m)
{
	struct cap_res *s = &g_cap[m];
	s->ran = true;
	s->tasks = z->cap_n;
	if (use_trace_rate("0") < 0)
		return -1;
	int r = section_capacity_run(z, m, s);
	return use_trace_rate(NULL) < 0 ? -1 : r;
}

static int section_capacity_run(const struct sizes *z, enum cmode m, struct cap_res *s)
{
	struct coll c;
	uint64_t lost = 0, cpu0 = 0, cpu1 = 0;
	if ((s->baseline_tasks_per_s = spawn_rate(z->cap_n)) < 0)
		return -1;
	if (coll_open(&c, m, getpid()) < 0)
		return -1;
	coll_stat(&c, NULL, &cpu0);
	uint64_t want = 2 * z->cap_n, t0 = bu_now_ns(), t1 = 0;
	int r = 0;
	atomic_store(&g_done, 0);
	for (uint64_t i = 0; r == 0 && i < z->cap_n; i++)
		r = spawn_retry("capacity", counted, NULL);
	if (r == 0)
		r = wait_done(z->cap_n, 120 * BU_NS_PER_S);
	/* Every record either arrives or is counted lost: wait for the sum. */
	uint64_t end = bu_now_ns() + 30 * BU_NS_PER_S;
	while (r == 0) {
		coll_stat(&c, &lost, NULL);
		if (coll_events(&c) + lost >= want)
			break;
		if (bu_now_ns() > end) {
			r = fail("capacity: %llu of %llu records arrived or were counted lost",
			         (unsigned long long)(coll_events(&c) + lost), (unsigned long long)want);
			break;
		}
		bu_sleep_ns(50000);
	}
	t1 = bu_now_ns();
	coll_stat(&c, NULL, &cpu1);
	s->lost = coll_close(&c);
	s->records = coll_events(&c);
	s->other = atomic_load(&c.c->other);
	s->wakeups = atomic_load(&c.c->wakeups);
	s->max_gap_ns = atomic_load(&c.c->max_gap_ns);
	s->records_per_s = (double)s->records * 1e9 / (double)(t1 - t0);
	s->poller_cpu_pct = 100.0 * (double)(cpu1 - cpu0) / (double)(t1 - t0);
	if (r == 0 && s->records + s->lost != want)
		note("capacity (%s): %llu received + %llu lost, %llu produced", mode_names[m],
		     (unsigned long long)s->records, (unsigned long long)s->lost, (unsigned long long)want);
	return r;
}

/* ---- section 4: collector CPU at 20,000 records/s ------------------------------------ */

struct cpu_fig {
	double idle_pct;          /* the polling thread with nothing to read, same run */
	double busy_pct;          /* at the paced rate */
	double records_per_s;     /* what it read meanwhile */
	uint64_t lost, wakeups;
};

struct cpu_res {
	bool ran;
	double secs;
	struct cpu_fig batched;   /* as the collector runs (or as --wake-per-record says) */
	struct cpu_fig per_record;   /* baseline: the kernel's default wakeups, same run */
};

static struct cpu_res g_cpu[2];

static int cpu_once(const struct sizes *z, enum cmode m, uint64_t n, struct cpu_fig *s)
{
	struct coll c;
	uint64_t c0, c1, c2;
	if (coll_open(&c, m, getpid()) < 0)
		return -1;
	uint64_t w0 = bu_now_ns();
	coll_stat(&c, NULL, &c0);
	bu_sleep_ns(BU_NS_PER_S);
	uint64_t w1 = bu_now_ns(), e1 = coll_events(&c), k1 = atomic_load(&c.c->wakeups);
	coll_stat(&c, NULL, &c1);
	int r = paced(NULL, n, z->cpu_rate, counted);
	/* The last records are on their way: give them one poll. */
	bu_sleep_ns(BU_NS_PER_S / 20);
	coll_stat(&c, NULL, &c2);
	uint64_t w2 = bu_now_ns(), e2 = coll_events(&c), k2 = atomic_load(&c.c->wakeups);
	s->lost = coll_close(&c);
	s->idle_pct = 100.0 * (double)(c1 - c0) / (double)(w1 - w0);
	s->busy_pct = 100.0 * (double)(c2 - c1) / (double)(w2 - w1);
	s->records_per_s = (double)(e2 - e1) * 1e9 / (double)(w2 - w1);
	s->wakeups = k2 - k1;
	return r;
}

/* The collector's CPU, and beside it the same with a wakeup per record (the
 * ring buffer's default, what the collector did before it batched them). */
static int section_cpu(const struct sizes *z, enum cmode m)
{
	struct cpu_res *s = &g_cpu[m];
	uint64_t n = (uint64_t)(z->cpu_secs * (double)z->cpu_rate);
	bool wake = g_wake_per_record;
	s->ran = true;
	s->secs = z->cpu_secs;
	/* Every task traced: the collector's cost per record is asked for. */
	if (use_trace_rate("0") < 0 || paced(NULL, n / 4, z->cpu_rate, counted) < 0)   /* the thread cache at this pace */
		return -1;
	g_wake_per_record = true;
	int r = cpu_once(z, m, n, &s->per_record);
	g_wake_per_record = wake;
	if (r == 0)
		r = cpu_once(z, m, n, &s->batched);
	return use_trace_rate(NULL) < 0 ? -1 : r;
}

/* ---- the table ----------------------------------------------------------------------- */

static void row(const char *fig, const char *ours, const char *base, const char *ratio, const char *target,
                const char *verdict)
{
	printf("%-34s %-14s %-30s %8s   %-10s %s\n", fig, ours, base, ratio, target, verdict);
}

static void print_switch(enum hook h)
{
	const struct switch_res *s = &g_sw[h];
	struct spread a = spread_of(s->added, s->n), b = spread_of(s->base, s->n), w = spread_of(s->with, s->n);
	char f[64], o[32], bl[64], ra[16], t[16];
	const char *label[H_COUNT] = { "unwatched switch, ns added", "watched task switch, ns added",
		                       "runqlat switch, ns added" };
	double target = h == H_UNWATCHED ? T_UNWATCHED_NS : h == H_WATCHED ? T_WATCHED_NS : 0;
	snprintf(o, sizeof(o), "%+.1f", a.med);
	snprintf(bl, sizeof(bl), "%.0f ns/switch bare", b.med / 2);
	snprintf(ra, sizeof(ra), "%.3fx", b.med / w.med);
	snprintf(t, sizeof(t), "<= %.0f", target);
	row(label[h], o, bl, ra, target > 0 ? t : "", target <= 0 ? "" : a.med <= target ? "PASS" : "MISS");
	snprintf(f, sizeof(f), "  %u ABBA pairs: IQR, range", s->n);
	snprintf(o, sizeof(o), "%+.1f..%+.1f", a.q1, a.q3);
	snprintf(bl, sizeof(bl), "%+.1f..%+.1f", a.min, a.max);
	row(f, o, bl, "", "", "");
	snprintf(o, sizeof(o), "%.2f/%.2f", s->sw_per_rt_base, s->sw_per_rt_with);
	snprintf(bl, sizeof(bl), "(%s)", s->baseline);
	row("  switches per round trip A/B", o, bl, "", "", "");
}

static void print_spawn(void)
{
	const struct spawn_res *s = &g_spawn;
	struct spread r = spread_of(s->ratio, s->n), a = spread_of(s->without, s->n), b = spread_of(s->with, s->n);
	char o[32], bl[64], ra[16], cnt[32], t[16];
	snprintf(t, sizeof(t), ">= %.1f", T_SPAWN_RATIO);
	snprintf(bl, sizeof(bl), "without %s", bu_count(cnt, sizeof(cnt), (uint64_t)a.med));
	snprintf(ra, sizeof(ra), "%.3fx", r.med);
	row("spawn+complete /s, watched", bu_count(o, sizeof(o), (uint64_t)b.med), bl, ra, t,
	    r.med >= T_SPAWN_RATIO ? "PASS" : "MISS");
	snprintf(o, sizeof(o), "%.3f..%.3f", r.min, r.max);
	row("  per-pair ratio min..max", o, "", "", "", "");
	struct spread ar = spread_of(s->all_ratio, s->n), aa = spread_of(s->all_without, s->n),
	              ab = spread_of(s->all_with, s->n);
	snprintf(bl, sizeof(bl), "without %s", bu_count(cnt, sizeof(cnt), (uint64_t)aa.med));
	snprintf(ra, sizeof(ra), "%.3fx", ar.med);
	row("  every task traced (rate 0)", bu_count(o, sizeof(o), (uint64_t)ab.med), bl, ra, "", "");
	static const char *const qn[3] = { "p50", "p95", "p99" };
	for (int i = 0; i < 3; i++) {
		char f[64];
		double ratio = (double)s->off[i] / (double)s->on[i];
		snprintf(f, sizeof(f), "paced spawn latency %s us", qn[i]);
		snprintf(o, sizeof(o), "%.1f", s->on[i] / 1e3);
		snprintf(bl, sizeof(bl), "without %.1f", s->off[i] / 1e3);
		snprintf(ra, sizeof(ra), "%.3fx", ratio);
		row(f, o, bl, ra, i == 0 ? t : "", i == 0 ? (ratio >= T_SPAWN_RATIO ? "PASS" : "MISS") : "");
	}
	for (int i = 0; i < 3; i++) {
		char f[64];
		snprintf(f, sizeof(f), "  every task traced, %s us", qn[i]);
		snprintf(o, sizeof(o), "%.1f", s->all_on[i] / 1e3);
		snprintf(bl, sizeof(bl), "without %.1f", s->all_off[i] / 1e3);
		snprintf(ra, sizeof(ra), "%.3fx", (double)s->all_off[i] / (double)s->all_on[i]);
		row(f, o, bl, ra, "", "");
	}
	if (s->lost)
		row("  records lost meanwhile", bu_count(o, sizeof(o), s->lost), "", "", "0", "MISS");
}

static const char *const mode_labels[2] = { "poller in workload", "own process" };

static void print_capacity(enum cmode m)
{
	const struct cap_res *s = &g_cap[m];
	char f[64], o[32], bl[64], cnt[32], t[40], ra[16];
	snprintf(t, sizeof(t), ">= %s", bu_count(cnt, sizeof(cnt), (uint64_t)T_EVENTS_PER_S));
	snprintf(f, sizeof(f), "records/s read, %s", mode_labels[m]);
	snprintf(bl, sizeof(bl), "workload alone %s", bu_count(cnt, sizeof(cnt), (uint64_t)(2 * s->baseline_tasks_per_s)));
	snprintf(ra, sizeof(ra), "%.3fx", s->records_per_s / (2 * s->baseline_tasks_per_s));
	row(f, bu_count(o, sizeof(o), (uint64_t)s->records_per_s), bl, ra, t,
	    s->records_per_s >= T_EVENTS_PER_S && s->lost == 0 ? "PASS" : "MISS");
	snprintf(bl, sizeof(bl), "of %s produced", bu_count(cnt, sizeof(cnt), 2 * s->tasks));
	row("  records lost", bu_count(o, sizeof(o), s->lost), bl, "", "0", s->lost ? "MISS" : "PASS");
	snprintf(o, sizeof(o), "%.1f", s->poller_cpu_pct);
	snprintf(bl, sizeof(bl), "%.0f ns/record, %.1f records/poll",
	         s->records_per_s > 0 ? s->poller_cpu_pct / 100 * 1e9 / s->records_per_s : 0,
	         s->wakeups ? (double)s->records / (double)s->wakeups : 0);
	row("  polling thread CPU %", o, bl, "", "", "");
	snprintf(o, sizeof(o), "%.1f", s->max_gap_ns / 1e6);
	row("  longest gap between reads, ms", o, "", "", "", "");
}

static void print_cpu(enum cmode m)
{
	const struct cpu_res *r = &g_cpu[m];
	const struct cpu_fig *s = &r->batched, *b = &r->per_record;
	char o[32], bl[64], cnt[32], t[16], f[64], ra[16];
	snprintf(t, sizeof(t), "<= %.0f", T_CPU_PCT);
	snprintf(f, sizeof(f), "CPU %% at %s rec/s, %s", bu_count(cnt, sizeof(cnt), (uint64_t)s->records_per_s),
	         m == CM_THREAD ? "in workload" : "own process");
	snprintf(o, sizeof(o), "%.2f", s->busy_pct);
	snprintf(bl, sizeof(bl), "woken per record %.2f", b->busy_pct);
	snprintf(ra, sizeof(ra), "%.3fx", b->busy_pct > 0 ? s->busy_pct / b->busy_pct : 0);
	row(f, o, bl, ra, t, s->busy_pct <= T_CPU_PCT ? "PASS" : "MISS");
	snprintf(o, sizeof(o), "%.1f/%.1f", s->wakeups ? s->records_per_s * r->secs / (double)s->wakeups : 0,
	         b->wakeups ? b->records_per_s * r->secs / (double)b->wakeups : 0);
	snprintf(bl, sizeof(bl), "idle %.3f/%.3f %% of a core", s->idle_pct, b->idle_pct);
	row("  records per poll, batched/per record", o, bl, "", "", "");
	if (s->lost || b->lost) {
		snprintf(o, sizeof(o), "%llu/%llu", (unsigned long long)s->lost, (unsigned long long)b->lost);
		row("  records lost", o, "", "", "0", "MISS");
	}
}

static void print_prog_stats(void)
{
	for (int sec = 0; sec < S_COUNT; sec++) {
		if (!g_prog->p[sec][0].name[0])
			continue;
		printf("kernel programs, %s section (statistics on): mean ns per run (runs)\n ", section_names[sec]);
		for (int k = 0; k < MAX_PROGS && g_prog->p[sec][k].name[0]; k++) {
			const struct prog_fig *a = &g_prog->p[sec][k];
			if (a->runs)
				printf(" %s %.0f (%llu)", a->name, (double)a->ns / (double)a->runs, (unsigned long long)a->runs);
		}
		printf("\n");
	}
}

static void json_prog_stats(FILE *f)
{
	fprintf(f, ",\"programs_ns_per_run\":{");
	bool first = true;
	for (int sec = 0; sec < S_COUNT; sec++) {
		if (!g_prog->p[sec][0].name[0])
			continue;
		fprintf(f, "%s\"%s\":{", first ? "" : ",", section_names[sec]);
		first = false;
		bool any = false;
		for (int k = 0; k < MAX_PROGS && g_prog->p[sec][k].name[0]; k++) {
			const struct prog_fig *a = &g_prog->p[sec][k];
			if (!a->runs)
				continue;
			fprintf(f, "%s\"%s\":{\"runs\":%llu,\"ns_per_run\":%.1f}", any ? "," : "", a->name,
			        (unsigned long long)a->runs, (double)a->ns / (double)a->runs);
			any = true;
		}
		fprintf(f, "}");
	}
	fprintf(f, "}");
}

static void print_table(bool quick)
{
	char date[64];
	time_t now = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M", localtime(&now));
	char how[96];
	snprintf(how, sizeof(how), "reads as taskmond does: when woken%s, at least every %d ms",
	         g_wake_per_record ? " per record" : " per batch", TMD_LOADER_POLL_MS);
	if (g_batch_us)
		snprintf(how + strlen(how), sizeof(how) - strlen(how), ", pausing %u us after each read", g_batch_us);
	printf("\ntaskmon collector benchmark (%ld CPUs, %s%s; the collector %s)\n", sysconf(_SC_NPROCESSORS_ONLN),
	       date, quick ? ", --quick" : "", how);
	row("figure", "taskmon", "same-run baseline", "ratio", "target", "");
	for (int h = 0; h < H_COUNT; h++)
		if (g_sw[h].ran && g_sw[h].n)
			print_switch((enum hook)h);
	if (g_sw[H_UNWATCHED].ran && !g_sw[H_RUNQLAT].ran)
		row("runqlat switch, ns added", "-", "runqlat not installed", "", "", "");
	if (g_spawn.ran && g_spawn.n && g_spawn.lat_n)
		print_spawn();
	for (int m = 0; m < 2; m++)
		if (g_cap[m].ran && g_cap[m].records)
			print_capacity((enum cmode)m);
	for (int m = 0; m < 2; m++)
		if (g_cpu[m].ran && g_cpu[m].batched.records_per_s > 0)
			print_cpu((enum cmode)m);
	if (g_prog)
		print_prog_stats();
	if (g_eagain)
		printf("note: %llu spawns retried after -EAGAIN\n", (unsigned long long)g_eagain);
	if (g_notes[0])
		printf("notes:\n  %s\n", g_notes);
	if (g_err[0])
		printf("FAILED: %s\n", g_err);
}

/* ---- JSON ---------------------------------------------------------------------------- */

static void json_arr(FILE *f, const char *key, const double *v, size_t n)
{
	fprintf(f, "\"%s\":[", key);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%.2f", i ? "," : "", v[i]);
	fprintf(f, "]");
}

static void json_switch(FILE *f, enum hook h)
{
	const struct switch_res *s = &g_sw[h];
	struct spread a = spread_of(s->added, s->n), b = spread_of(s->base, s->n), w = spread_of(s->with, s->n);
	double target = h == H_UNWATCHED ? T_UNWATCHED_NS : h == H_WATCHED ? T_WATCHED_NS : 0;
	fprintf(f, "\"%s\":{\"pingpong\":", hook_keys[h]);
	bu_json_str(f, s->baseline);
	fprintf(f, ",\"pairs\":%u,\"runs_per_side\":2,\"ns_added_per_switch\":{\"median\":%.2f,\"q1\":%.2f,\"q3\":%.2f,\"min\":%.2f,"
	        "\"max\":%.2f},\"baseline_ns_per_switch\":%.2f,\"with_ns_per_switch\":%.2f,\"throughput_ratio\":%.4f,"
	        "\"switches_per_round_trip\":{\"baseline\":%.3f,\"with\":%.3f},",
	        s->n, a.med, a.q1, a.q3, a.min, a.max, b.med / 2, w.med / 2, b.med / w.med, s->sw_per_rt_base,
	        s->sw_per_rt_with);
	json_arr(f, "per_pair_ns_added", s->added, s->n);
	if (target > 0)
		fprintf(f, ",\"target_ns\":%.0f,\"pass\":%s", target, a.med <= target ? "true" : "false");
	fprintf(f, "}");
}

static void json_spawn(FILE *f)
{
	const struct spawn_res *s = &g_spawn;
	struct spread r = spread_of(s->ratio, s->n);
	fprintf(f, "\"spawn\":{\"pairs\":%u,\"tasks_per_run\":%llu,", s->n, (unsigned long long)s->tasks_per_run);
	json_arr(f, "without_per_s", s->without, s->n);
	fprintf(f, ",");
	json_arr(f, "with_per_s", s->with, s->n);
	fprintf(f, ",\"every_task_traced\":{");
	json_arr(f, "without_per_s", s->all_without, s->n);
	fprintf(f, ",");
	json_arr(f, "with_per_s", s->all_with, s->n);
	fprintf(f, ",\"ratio_median\":%.4f", spread_of(s->all_ratio, s->n).med);
	fprintf(f, ",\"latency_us\":{\"without\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f},\"with\":{\"p50\":%.3f,"
	        "\"p95\":%.3f,\"p99\":%.3f}}}", s->all_off[0] / 1e3, s->all_off[1] / 1e3, s->all_off[2] / 1e3,
	        s->all_on[0] / 1e3, s->all_on[1] / 1e3, s->all_on[2] / 1e3);
	fprintf(f, ",\"kernel_trace_rate\":\"library default\",\"ratio_median\":%.4f,\"latency_tasks\":%llu,\"latency_us\":{\"without\":{\"p50\":%.3f,"
	        "\"p95\":%.3f,\"p99\":%.3f},\"with\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f}},"
	        "\"latency_p50_ratio\":%.4f,\"records_lost\":%llu,\"target_ratio\":%.2f,\"pass\":%s}",
	        r.med, (unsigned long long)s->lat_n, s->off[0] / 1e3, s->off[1] / 1e3, s->off[2] / 1e3,
	        s->on[0] / 1e3, s->on[1] / 1e3, s->on[2] / 1e3, (double)s->off[0] / (double)s->on[0],
	        (unsigned long long)s->lost, T_SPAWN_RATIO,
	        r.med >= T_SPAWN_RATIO && (double)s->off[0] / (double)s->on[0] >= T_SPAWN_RATIO ? "true" : "false");
}

static void json_capacity(FILE *f, enum cmode m)
{
	const struct cap_res *s = &g_cap[m];
	fprintf(f, "\"%s\":{\"tasks\":%llu,\"records_produced\":%llu,\"records_received\":%llu,"
	        "\"records_lost\":%llu,\"records_per_s\":%.0f,\"workload_alone_records_per_s\":%.0f,"
	        "\"poller_cpu_pct\":%.2f,\"records_per_poll\":%.2f,\"max_gap_between_reads_ms\":%.2f,\"target_per_s\":%.0f,\"pass\":%s}",
	        mode_names[m], (unsigned long long)s->tasks, (unsigned long long)(2 * s->tasks),
	        (unsigned long long)s->records, (unsigned long long)s->lost, s->records_per_s,
	        2 * s->baseline_tasks_per_s, s->poller_cpu_pct,
	        s->wakeups ? (double)s->records / (double)s->wakeups : 0, s->max_gap_ns / 1e6, T_EVENTS_PER_S,
	        s->records_per_s >= T_EVENTS_PER_S && !s->lost ? "true" : "false");
}

static void json_cpu_fig(FILE *f, const struct cpu_fig *s)
{
	fprintf(f, "{\"records_per_s\":%.0f,\"cpu_pct\":%.3f,\"idle_cpu_pct\":%.3f,\"polls_with_records\":%llu,"
	        "\"records_lost\":%llu}", s->records_per_s, s->busy_pct, s->idle_pct, (unsigned long long)s->wakeups,
	        (unsigned long long)s->lost);
}

static void json_cpu(FILE *f, enum cmode m)
{
	const struct cpu_res *r = &g_cpu[m];
	const struct cpu_fig *s = &r->batched;
	fprintf(f, "\"%s\":{\"seconds\":%.1f,\"records_per_s\":%.0f,\"cpu_pct\":%.3f,\"idle_cpu_pct\":%.3f,"
	        "\"polls_with_records\":%llu,\"records_lost\":%llu,\"woken_per_record\":",
	        mode_names[m], r->secs, s->records_per_s, s->busy_pct, s->idle_pct, (unsigned long long)s->wakeups,
	        (unsigned long long)s->lost);
	json_cpu_fig(f, &r->per_record);
	fprintf(f, ",\"target_pct\":%.1f,\"pass\":%s}", T_CPU_PCT, s->busy_pct <= T_CPU_PCT ? "true" : "false");
}

static int write_json(const char *outdir, bool quick)
{
	char path[4096];
	mkdir(outdir, 0755);
	snprintf(path, sizeof(path), "%s/collector.json", outdir);
	FILE *f = fopen(path, "w");
	if (!f)
		return fprintf(stderr, "bench_collector: %s: %s\n", path, strerror(errno)), -1;
	fprintf(f, "{\"cpus\":%ld,\"quick\":%s,\"pinned_cpu\":%d,\"poll_pause_us\":%u,\"prog_stats\":%s,\"switch\":{",
	        sysconf(_SC_NPROCESSORS_ONLN), quick ? "true" : "false", pinned_cpu(), g_batch_us,
	        g_prog ? "true" : "false");
	bool first = true;
	for (int h = 0; h < H_COUNT; h++) {
		if (!g_sw[h].ran || !g_sw[h].n)
			continue;
		fprintf(f, "%s", first ? "" : ",");
		first = false;
		json_switch(f, (enum hook)h);
	}
	fprintf(f, "}");
	if (g_spawn.ran && g_spawn.n && g_spawn.lat_n) {
		fprintf(f, ",");
		json_spawn(f);
	}
	for (int k = 0; k < 2; k++) {
		bool any = false;
		fprintf(f, ",\"%s\":{", k == 0 ? "capacity" : "collector_cpu");
		for (int m = 0; m < 2; m++) {
			if (k == 0 ? !g_cap[m].ran || !g_cap[m].records : !g_cpu[m].ran || g_cpu[m].batched.records_per_s <= 0)
				continue;
			fprintf(f, "%s", any ? "," : "");
			any = true;
			k == 0 ? json_capacity(f, (enum cmode)m) : json_cpu(f, (enum cmode)m);
		}
		fprintf(f, "}");
	}
	if (g_prog)
		json_prog_stats(f);
	fprintf(f, ",\"notes\":");
	bu_json_str(f, g_notes);
	fprintf(f, ",\"error\":");
	bu_json_str(f, g_err);
	fprintf(f, "}\n");
	if (fclose(f))
		return fprintf(stderr, "bench_collector: %s: %s\n", path, strerror(errno)), -1;
	printf("figures written to %s\n", path);
	return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static bool wanted(const char *only, const char *section)
{
	return !only || !strcmp(only, section);
}

static void on_signal(int sig)
{
	if (g_sleeper > 0)
		kill(g_sleeper, SIGKILL);
	if (g_server > 0)
		kill(g_server, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

int main(int argc, char **argv)
{
	const char *outdir = "build/bench", *only = NULL;
	bool quick = false, prog_stats = false;
	int stats_fd = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: bench_collector [--quick] [--only switch|spawn|capacity|cpu] [--batch-us N] [--wake-per-record] [--prog-stats] [-v] [OUTDIR]\n"
			       "  Scheduler-hook overhead per context switch, spawn throughput and latency with the\n"
			       "  collector watching, event capacity and collector CPU, each beside a same-run\n"
			       "  baseline; prints a table and writes OUTDIR/collector.json (default build/bench).\n"
			       "  Needs root. Exits 0 whether targets are met or not; 1 when a section failed.\n"
			       "  --batch-us N  the collector pauses N us after each poll that found records (default 0:\n"
			       "                it reads again at once, as taskmond does)\n"
			       "  --wake-per-record  the ring buffer wakes the collector for every record it finds\n"
			       "                idle (the kernel's default) instead of in batches\n"
			       "  --prog-stats  the kernel programs' mean time per run, per section (statistics on:\n"
			       "                the A/B figures of such a run carry their cost)\n"
			       "  -v            every ping-pong run on stderr\n");
			return 0;
		} else if (!strcmp(argv[i], "--quick")) {
			quick = true;
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "-v")) {
			g_verbose = true;
		} else if (!strcmp(argv[i], "--wake-per-record")) {
			g_wake_per_record = true;
		} else if (!strcmp(argv[i], "--prog-stats")) {
			prog_stats = true;
		} else if (!strcmp(argv[i], "--batch-us") && i + 1 < argc) {
			g_batch_us = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "bench_collector: unknown option %s\n", argv[i]);
			return 2;
		} else {
			outdir = argv[i];
		}
	}
	if (geteuid() != 0) {
		printf("bench_collector: skipped: needs root to load the kernel programs (run make bench as root)\n");
		return 0;
	}
	const struct sizes *z = quick ? &quick_sizes : &full_sizes;
	if (z->pairs > MAX_PAIRS || z->spawn_pairs > MAX_PAIRS)
		return 2;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	tmd_libbpf_print(false);
	if (prog_stats) {
		/* Before the collector process is forked: both add to it. */
		g_prog = mmap(NULL, sizeof(*g_prog), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (g_prog == MAP_FAILED || (stats_fd = tmd_loader_enable_stats()) < 0) {
			fprintf(stderr, "bench_collector: --prog-stats: %s\n",
			        g_prog == MAP_FAILED ? strerror(errno) : tmd_loader_error());
			return 1;
		}
		memset(g_prog, 0, sizeof(*g_prog));
	}
	start_sleeper();   /* before any thread: the children start single-threaded */
	start_server();
	if (use_trace_rate(NULL) < 0) {
		fprintf(stderr, "bench_collector: %s\n", g_err);
		stop_server();
		stop_sleeper();
		return 1;
	}
	g_have_perf = perf_available();
	if (!g_have_perf)
		note("perf bench sched pipe is not available: the unwatched ping-pong is two threads of this process");
	bool have_runqlat = find_in_path("runqlat", g_runqlat, sizeof(g_runqlat)) ||
	                    find_in_path("runqlat-bpfcc", g_runqlat, sizeof(g_runqlat));

	int failed = 0;
	if (wanted(only, "switch")) {
		if (g_prog)
			g_prog->section = S_SWITCH;
		fprintf(stderr, "bench_collector: context switches (%u pairs A B B A, %llu round trips a run, pinned to "
		        "CPU %d)...\n", z->pairs, (unsigned long long)z->pp_rounds, pinned_cpu());
		failed |= section_switch(H_UNWATCHED, z) < 0;
		failed |= section_switch(H_WATCHED, z) < 0;
		if (have_runqlat && section_switch(H_RUNQLAT, z) < 0) {
			note("runqlat at %s could not be measured: %s", g_runqlat, g_err);
			g_err[0] = '\0';
			g_sw[H_RUNQLAT].n = 0;
		}
	}
	if (wanted(only, "spawn")) {
		if (g_prog)
			g_prog->section = S_SPAWN;
		fprintf(stderr, "bench_collector: spawn throughput and latency...\n");
		failed |= section_spawn(z) < 0;
	}
	if (wanted(only, "capacity")) {
		if (g_prog)
			g_prog->section = S_CAPACITY;
		fprintf(stderr, "bench_collector: event capacity...\n");
		failed |= section_capacity(z, CM_THREAD) < 0;
		failed |= section_capacity(z, CM_PROCESS) < 0;
	}
	if (wanted(only, "cpu")) {
		if (g_prog)
			g_prog->section = S_CPU;
		fprintf(stderr, "bench_collector: collector CPU...\n");
		failed |= section_cpu(z, CM_THREAD) < 0;
		failed |= section_cpu(z, CM_PROCESS) < 0;
	}

	print_table(quick);
	failed |= write_json(outdir, quick) != 0;
	tm_shutdown();
	stop_server();
	stop_sleeper();
	if (stats_fd >= 0)
		close(stats_fd);
	return failed;
}
