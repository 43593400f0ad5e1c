/* taskmond: loads the kernel programs, watches workloads, merges their events
 * with their registries into tracker stats, and serves registrations and
 * snapshots on a Unix socket.
 *
 *   taskmond [--socket PATH] [--state-dir DIR] [--retention SECONDS] [--foreground]
 *            [--verbose] [--check] [--pid PID]... [--library PATH]... [--duration SECONDS]
 *            [--record DIR [--interval DURATION] [--retain AGE|SIZE]...]
 *            [--metrics ADDR:PORT|off]
 *
 * Workloads are found three ways: the library registers on the socket in
 * tm_init (watched before it answers), the registries in /dev/shm are
 * rescanned each second, and --pid names processes. With --verbose it prints
 * one line per event.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crashlog.h"
#include "discover.h"
#include "event_fmt.h"
#include "loader.h"
#include "merge.h"
#include "metrics_http.h"
#include "probe.h"
#include "record.h"
#include "server.h"
#include "snapshot.h"
#include "symbolize.h"
#include "taskmon_events.h"

#define MAX_PIDS 256
#define MAX_LIBS 8
#define DEFAULT_STATE_DIR "/var/lib/taskmon"
#define TM_SOVERSION "0"
#define TICK_MS  TMD_LOADER_POLL_MS   /* records written without a wakeup wait at most this long (loader.h) */
#define SNAPSHOT_MAX_AGE_NS 100000000ull   /* registries re-read for a snapshot when older */

struct options {
	bool check, verbose, foreground;
	pid_t pids[MAX_PIDS];
	size_t npids;
	const char *libs[MAX_LIBS];
	size_t nlibs;
	double duration;      /* seconds; 0 = until a signal */
	double retention;     /* seconds */
	char socket[PATH_MAX];
	char state_dir[PATH_MAX];
	char record_dir[PATH_MAX];   /* "" = not recording */
	uint64_t record_interval_ns, record_retain_ns, record_retain_bytes;
	char metrics[64];            /* ADDR:PORT or "off" */
	bool metrics_given;          /* --metrics: failing to bind it is an error */
};

struct daemon_state {
	struct options opt;
	struct tmd_loader *loader;
	struct tmd_merge *merge;
	struct tmd_server *server;
	struct tmd_maps_set *maps;   /* every watched workload's mappings, for its crash records */
	struct tmd_recorder *recorder;   /* --record */
	struct tmd_metrics_http *metrics;   /* /metrics, NULL when off */
	uint64_t crashes, crash_log_errors;
	int epfd;
	pid_t failed[64];     /* workloads that could not be watched: not retried every second */
	size_t nfailed;
	uint64_t events, started_ns, now;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: taskmond [--socket PATH] [--state-dir DIR] [--retention SECONDS] [--foreground]\n"
	           "                [--verbose] [--check] [--pid PID]... [--library PATH]... [--duration SECONDS]\n"
	           "  --socket PATH      where workloads register and tools ask for snapshots\n"
	           "                     (default " TM_WIRE_SOCKET ")\n"
	           "  --state-dir DIR    crash logs and other state (default " DEFAULT_STATE_DIR ")\n"
	           "  --retention S      keep finished tasks and departed workloads S seconds (default 300)\n"
	           "  --foreground       stay attached to the terminal (default: run in the background)\n"
	           "  --verbose          print one line per kernel event and libbpf's debug messages\n"
	           "  --check            probe the kernel and privileges, one line per feature, then exit\n"
	           "  --pid PID          watch this process (besides the workloads that register or are found)\n"
	           "  --library PATH     attach to this copy of libtaskmon at start (the installed one is by default)\n"
	           "  --duration S       stop after S seconds\n"
	           "  --record DIR       append one record of the merged stats per interval to files in DIR\n"
	           "  --interval D       recording interval: 500ms, 10s, 5m, 1h (default 10s)\n"
	           "  --retain AGE|SIZE  delete the oldest record files past an age (7d) or a size (500M, 2G);\n"
	           "                     may be given twice, once for each\n"
	           "  --metrics ADDR:PORT  serve Prometheus metrics on http://ADDR:PORT/metrics\n"
	           "                     (default " TMD_METRICS_DEFAULT_ADDR "; [::1]:PORT for IPv6; off: not served)\n");
}

/* An absolute path: the daemon leaves the working directory. */
static int absolute(char *out, const char *in, const char *what)
{
	char cwd[PATH_MAX];
	int n;
	if (!*in)
		n = -1;
	else if (in[0] == '/')
		n = snprintf(out, PATH_MAX, "%s", in);
	else
		n = getcwd(cwd, sizeof(cwd)) ? snprintf(out, PATH_MAX, "%s/%s", cwd, in) : -1;
	if (n < 0 || n >= PATH_MAX) {
		fprintf(stderr, "taskmond: %s takes a path, not '%s'\n", what, in);
		return -1;
	}
	return 0;
}

static int parse_seconds(const char *arg, const char *what, double *out)
{
	char *end;
	*out = strtod(arg, &end);
	if (*end || !(*out > 0) || *out > 1e9) {
		fprintf(stderr, "taskmond: %s takes a number of seconds, not '%s'\n", what, arg);
		return -1;
	}
	return 0;
}

enum { OPT_RECORD = 256, OPT_INTERVAL, OPT_RETAIN, OPT_METRICS };

static int parse_record_option(int c, const char *arg, struct options *o)
{
	uint64_t v;
	if (c == OPT_RECORD)
		return absolute(o->record_dir, arg, "--record");
	if (c == OPT_INTERVAL) {
		if (tmd_parse_duration(arg, true, &v) < 0 || v < TMD_RECORD_MIN_INTERVAL_NS) {
			fprintf(stderr, "taskmond: --interval takes a duration of at least 10ms like 500ms, 10s or 5m, "
			                "not '%s'\n", arg);
			return -1;
		}
		o->record_interval_ns = v;
	} else if (tmd_parse_duration(arg, false, &v) == 0) {
		o->record_retain_ns = v;
	} else if (tmd_parse_size(arg, &v) == 0) {
		o->record_retain_bytes = v;
	} else {
		fprintf(stderr, "taskmond: --retain takes an age like 12h or 7d, or a size like 500M or 2G, not '%s'\n",
		        arg);
		return -1;
	}
	return 0;
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "check", no_argument, NULL, 'c' },      { "verbose", no_argument, NULL, 'v' },
		{ "foreground", no_argument, NULL, 'f' }, { "pid", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' },
		{ "socket", required_argument, NULL, 's' }, { "state-dir", required_argument, NULL, 'S' },
		{ "retention", required_argument, NULL, 'r' }, { "library", required_argument, NULL, 'l' },
		{ "record", required_argument, NULL, OPT_RECORD }, { "interval", required_argument, NULL, OPT_INTERVAL },
		{ "retain", required_argument, NULL, OPT_RETAIN }, { "metrics", required_argument, NULL, OPT_METRICS },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	char *end;
	snprintf(o->socket, sizeof(o->socket), "%s", TM_WIRE_SOCKET);
	snprintf(o->state_dir, sizeof(o->state_dir), "%s", DEFAULT_STATE_DIR);
	o->retention = 300;
	snprintf(o->metrics, sizeof(o->metrics), "%s", TMD_METRICS_DEFAULT_ADDR);
	while ((c = getopt_long(argc, argv, "cvfp:d:hs:S:r:l:", longs, NULL)) != -1) {
		switch (c) {
		case 'c': o->check = true; break;
		case 'v': o->verbose = true; break;
		case 'f': o->foreground = true; break;
		case 'p': {
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 4194304 || o->npids == MAX_PIDS) {
				fprintf(stderr, "taskmond: --pid takes a process id, not '%s'\n", optarg);
				return -1;
			}
			o->pids[o->npids++] = (pid_t)v;
			break;
		}
		case 'l':
			if (o->nlibs == MAX_LIBS) {
				fprintf(stderr, "taskmond: at most %d --library options\n", MAX_LIBS);
				return -1;
			}
			o->libs[o->nlibs++] = optarg;
			break;
		case 'd':
			if (parse_seconds(optarg, "--duration", &o->duration) < 0)
				return -1;
			break;
		case 'r':
			if (parse_seconds(optarg, "--retention", &o->retention) < 0)
				return -1;
			break;
		case 's':
			if (absolute(o->socket, optarg, "--socket") < 0)
				return -1;
			break;
		case 'S':
			if (absolute(o->state_dir, optarg, "--state-dir") < 0)
				return -1;
			break;
		case OPT_RECORD:
		case OPT_INTERVAL:
		case OPT_RETAIN:
			if (parse_record_option(c, optarg, o) < 0)
				return -1;
			break;
		case OPT_METRICS: {
			struct sockaddr_storage ss;
			socklen_t len;
			char err[160];
			if (strlen(optarg) >= sizeof(o->metrics) ||
			    tmd_metrics_parse_addr(optarg, &ss, &len, err, sizeof(err)) < 0) {
				fprintf(stderr, "taskmond: --metrics takes ADDR:PORT or off, not '%s'\n", optarg);
				return -1;
			}
			snprintf(o->metrics, sizeof(o->metrics), "%s", optarg);
			o->metrics_given = true;
			break;
		}
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (!o->record_dir[0] && (o->record_interval_ns || o->record_retain_ns || o->record_retain_bytes)) {
		fprintf(stderr, "taskmond: --interval and --retain apply to --record DIR, which is missing\n");
		return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "taskmond: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

static int run_check(void)
{
	struct tmd_feature f[8];
	size_t n = tmd_probe_features(f, 8);
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		printf("%-11s %s  %s\n", f[i].name, f[i].ok ? "pass" : f[i].needed ? "FAIL" : "fail", f[i].detail);
		ok &= f[i].ok || !f[i].needed;
	}
	return ok ? 0 : 1;
}

/* mkdir -p, new directories 0755. */
static int make_dirs(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(dir, 0755) == 0)
			chmod(dir, 0755);
		else if (errno != EEXIST)
			return -errno;
		*p = c;
		if (!c)
			return 0;
	}
}

/* A crash record: symbolized against the workload's copied mappings (fresh
 * if it still has them), the task named from its registry or, when that is
 * gone, from what the merge learned from its start event; appended to the
 * crash log in the state directory. */
static void record_crash(struct daemon_state *d, const struct tm_ev_crash *ev)
{
	struct tmd_crash_out out;
	pid_t pid = (pid_t)ev->h.pid;
	const struct tmd_task *t = tmd_merge_find_task(d->merge, pid, ev->h.task_id);
	const struct tmd_workload *w = tmd_merge_find_workload(d->merge, pid);
	bool typed = t && t->type < TM_MAX_TYPES;
	int r = tmd_crash_build(ev, tmd_maps_set_latest(d->maps, pid, d->now),
	                        TMD_CRASH_OPTS(.task_name = t && t->name[0] ? t->name : NULL,
	                                       .task_type = typed ? t->type : -1,
	                                       .type_name = typed && w && w->types[t->type].name[0] ?
	                                                    w->types[t->type].name : NULL),
	                        &out);
	if (r < 0) {
		fprintf(stderr, "taskmond: crash of pid %d not recorded: %s\n", (int)pid, strerror(-r));
		return;
	}
	d->crashes++;
	r = tmd_crash_append(d->opt.state_dir, &out);
	if (r < 0) {
		d->crash_log_errors++;
		fprintf(stderr, "taskmond: %s/%s: %s; the record: %s\n", d->opt.state_dir, TMD_CRASH_LOG, strerror(-r),
		        out.line);
	}
	if (d->opt.verbose) {
		char line[4096];
		tmd_crash_format_line(&out, line, sizeof(line));
		printf("%s\n", line);
	}
	tmd_crash_out_release(&out);
}

static int on_event(void *ctx, const void *data, size_t len)
{
	struct daemon_state *d = ctx;
	char line[1024];
	d->events++;
	/* The crash record first, while the merge still knows the task. */
	if (len >= sizeof(struct tm_ev_crash) && ((const struct tm_ev_hdr *)data)->kind == TM_EV_CRASH)
		record_crash(d, data);
	/* Checks the record's size for its kind; a malformed one is counted there. */
	if (tmd_merge_event(d->merge, data, len, d->now) < 0) {
		fprintf(stderr, "taskmond: malformed event of %zu bytes skipped\n", len);
		return 0;
	}
	if (d->opt.verbose && tmd_event_format(data, len, line, sizeof(line)) >= 0)
		printf("%s\n", line);
	return 0;
}

/* Probes first, then the merge: a registration is answered only after both. */
static int watch(struct daemon_state *d, pid_t pid)
{
	if (tmd_loader_watching(d->loader, pid))
		return 0;
	int n = tmd_loader_watch(d->loader, pid);
	if (n < 0) {
		fprintf(stderr, "taskmond: %s\n", tmd_loader_error());
		return n;
	}
	int r = tmd_merge_add(d->merge, pid, now_ns());
	if (r == -ENOSPC) {
		fprintf(stderr, "taskmond: process %d not watched: %zu workloads are followed already\n", (int)pid,
		        (size_t)tmd_merge_options(d->merge)->max_workloads);
		tmd_loader_unwatch(d->loader, pid);
		return r;
	}
	/* Its mappings now, while it runs: a crash is recorded when it may be gone. */
	r = tmd_maps_set_add(d->maps, pid, now_ns());
	if (r < 0 && r != -ESRCH)
		fprintf(stderr, "taskmond: process %d: its mappings cannot be read (%s): crashes unsymbolized\n",
		        (int)pid, strerror(-r));
	if (d->opt.verbose)
		printf("watch  pid %d (%d binar%s with taskmon probes)\n", (int)pid, n, n == 1 ? "y" : "ies");
	return n;
}

static bool failed_before(const struct daemon_state *d, pid_t pid)
{
	for (size_t i = 0; i < d->nfailed; i++)
		if (d->failed[i] == pid)
			return true;
	return false;
}

static void gone(struct daemon_state *d, pid_t pid, const char *why)
{
	tmd_merge_gone(d->merge, pid, d->now);
	tmd_maps_set_retire(d->maps, pid);   /* kept two more seconds, for its queued events */
	if (tmd_loader_watching(d->loader, pid))
		tmd_loader_unwatch(d->loader, pid);
	if (d->opt.verbose)
		printf("unwatch pid %d (%s)\n", (int)pid, why);
}

static void rescan(struct daemon_state *d)
{
	pid_t pids[1024];
	/* An exited workload stays watched until it is gone from /proc, not only
	 * until its exit event: its threads that exit after that event still
	 * close out their tasks. */
	size_t n_gone = tmd_loader_prune(d->loader, pids, 1024);
	for (size_t i = 0; i < n_gone && i < 1024; i++)
		gone(d, pids[i], "gone");
	int n = tmd_list_workloads(NULL, pids, 1024);
	for (int i = 0; i < n; i++) {
		if (failed_before(d, pids[i]) || watch(d, pids[i]) >= 0)
			continue;
		if (d->nfailed == sizeof(d->failed) / sizeof(d->failed[0]))
			d->nfailed = 0;   /* forget the oldest batch: a pid may be reused */
		d->failed[d->nfailed++] = pids[i];
	}
}

/* Probes on the libraries workloads will load, before any registers: the
 * kernel takes tens of ms to install a uprobe, longer than tm_init waits. */
static int attach_libraries(struct daemon_state *d)
{
	static const char *const installed[] = {
		"/usr/local/lib/libtaskmon.so." TM_SOVERSION, "/usr/lib/libtaskmon.so." TM_SOVERSION,
		"/usr/lib/x86_64-linux-gnu/libtaskmon.so." TM_SOVERSION,
	};
	for (size_t i = 0; i < d->opt.nlibs; i++) {
		if (tmd_loader_attach_binary(d->loader, d->opt.libs[i]) < 0) {
			fprintf(stderr, "taskmond: --library %s: %s\n", d->opt.libs[i], tmd_loader_error());
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof(installed) / sizeof(installed[0]); i++)
		if (access(installed[i], R_OK) == 0 && tmd_loader_attach_binary(d->loader, installed[i]) < 0 &&
		    d->opt.verbose)
			fprintf(stderr, "taskmond: %s\n", tmd_loader_error());
	return 0;
}

/* ---- the socket's requests ------------------------------------------------------ */

static int on_register(void *ctx, const struct tmd_peer *peer, char *why, size_t len)
{
	struct daemon_state *d = ctx;
	if (peer->pid <= 0) {
		snprintf(why, len, "the peer has no process id");
		return -ESRCH;
	}
	int r = watch(d, peer->pid);
	if (r < 0) {
		snprintf(why, len, "%s", r == -ENOSPC ? "too many workloads are followed" : tmd_loader_error());
		return r;
	}
	if (d->opt.verbose)
		printf("register pid %d uid %u\n", (int)peer->pid, (unsigned)peer->uid);
	return 0;
}

/* What the collector says of itself in snapshots and records; `serving`
 * counts the snapshot being answered. */
static void collector_info(const struct daemon_state *d, struct tmd_collector_info *ci, unsigned serving)
{
	struct tmd_server_stats ss;
	tmd_server_get_stats(d->server, &ss);
	*ci = (struct tmd_collector_info){
		.pid = getpid(), .mode = tmd_loader_mode(d->loader), .started_ns = d->started_ns,
		.lost = tmd_loader_stat(d->loader, TM_STAT_LOST),
		.spawn_missed = tmd_loader_stat(d->loader, TM_STAT_SPAWN_MISSED),
		.watched = tmd_loader_watch_count(d->loader), .registrations = ss.registrations,
		.registrations_refused = ss.registrations_refused, .snapshots = ss.snapshots + serving,
		.clients = ss.clients, .socket = d->opt.socket, .state_dir = d->opt.state_dir,
	};
}

static char *on_snapshot(void *ctx, const struct tmd_peer *peer, const struct tm_wire_snapshot_req *req, size_t *len)
{
	struct daemon_state *d = ctx;
	struct tmd_collector_info ci;
	/* Everything that happened before the request is in it. */
	d->now = now_ns();
	tmd_loader_consume(d->loader);
	tmd_merge_refresh(d->merge, d->now, SNAPSHOT_MAX_AGE_NS);
	collector_info(d, &ci, 1);
	bool all = peer->uid == 0 || peer->uid == geteuid();
	return tmd_snapshot_json(d->merge, &ci,
	                         TMD_SNAPSHOT_OPTS(.all_workloads = all, .uid = peer->uid,
	                                           .no_tasks = (req->flags & TM_WIRE_SNAP_NO_TASKS) != 0,
	                                           .max_tasks = req->max_tasks),
	                         d->now, len);
}

/* ---- the loop --------------------------------------------------------------------- */

static int add_fd(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* ---- recording (user/record.h) ------------------------------------------------------ */

/* The loop's wait: a tick, or less when a record falls due sooner. */
static int wait_ms(const struct daemon_state *d)
{
	if (!d->recorder)
		return TICK_MS;
	uint64_t now = now_ns(), due = tmd_record_due(d->recorder);
	uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
	return ms < TICK_MS ? (int)ms : TICK_MS;
}

/* A record when one is due: the figures a snapshot would give now. The
 * writer thread does the disk's part. */
static void record_tick(struct daemon_state *d, bool force)
{
	struct tmd_collector_info ci;
	if (!d->recorder || (!force && d->now < tmd_record_due(d->recorder)))
		return;
	tmd_merge_refresh(d->merge, d->now, SNAPSHOT_MAX_AGE_NS);
	collector_info(d, &ci, 0);
	tmd_record_tick(d->recorder, d->merge, &ci, d->now, force);
}

/* After daemon(): the writer is a thread, which a fork would not carry over. */
static int record_open(struct daemon_state *d)
{
	char err[256];
	if (!d->opt.record_dir[0])
		return 0;
	int r = tmd_record_open(&d->recorder, d->opt.record_dir,
	                        TMD_RECORD_OPTS(.interval_ns = d->opt.record_interval_ns,
	                                        .retain_age_ns = d->opt.record_retain_ns,
	                                        .retain_bytes = d->opt.record_retain_bytes),
	                        err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "taskmond: --record %s: %s\n", d->opt.record_dir, err);
	return r;
}

/* The last record, written before the collector goes. */
static void record_close(struct daemon_state *d)
{
	if (!d->recorder)
		return;
	d->now = now_ns();
	tmd_loader_consume(d->loader);
	record_tick(d, true);
	tmd_record_close(d->recorder);
	d->recorder = NULL;
}

static int serve(struct daemon_state *d)
{
	struct epoll_event ev[4];
	uint64_t start = now_ns(), last_scan = start;
	pid_t pids[64];
	if (add_fd(d->epfd, tmd_loader_epoll_fd(d->loader)) || add_fd(d->epfd, tmd_server_fd(d->server)) ||
	    (d->metrics && add_fd(d->epfd, tmd_metrics_http_fd(d->metrics)))) {
		fprintf(stderr, "taskmond: epoll: %s\n", strerror(errno));
		return 1;
	}
	while (!stop) {
		if (epoll_wait(d->epfd, ev, 4, tmd_metrics_http_wait_ms(d->metrics, wait_ms(d))) < 0 && errno != EINTR) {
			fprintf(stderr, "taskmond: waiting for events failed: %s\n", strerror(errno));
			return 1;
		}
		d->now = now_ns();
		int r = tmd_loader_consume(d->loader);
		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "taskmond: reading events failed: %s\n", strerror(-r));
			return 1;
		}
		tmd_server_run(d->server, d->now);
		tmd_metrics_http_run(d->metrics, d->now);   /* MHD asks to run after every wait */
		size_t n = tmd_merge_tick(d->merge, d->now, pids, 64);
		for (size_t i = 0; i < n && i < 64; i++)
			gone(d, pids[i], "gone");
		record_tick(d, false);
		if (d->opt.verbose)
			fflush(stdout);
		if (d->opt.duration > 0 && d->now - start >= (uint64_t)(d->opt.duration * 1e9))
			break;
		if (d->now - last_scan >= 1000000000ull) {
			rescan(d);
			tmd_maps_set_tick(d->maps, d->now);   /* libraries loaded since: re-read when due */
			last_scan = d->now;
		}
	}
	return 0;
}

static void install_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;   /* no SA_RESTART: the wait returns at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- /metrics (user/metrics_http.h) ------------------------------------------------- */

/* The recorder's health, for the exposition. */
static size_t metrics_extra(void *ctx, struct tmd_metrics_extra *out, size_t cap)
{
	struct daemon_state *d = ctx;
	struct tmd_record_stats rs;
	if (!d->recorder || cap < 3)
		return 0;
	tmd_record_get_stats(d->recorder, &rs);
	out[0] = (struct tmd_metrics_extra){ "taskmon_record_records_written_total", "Records written (--record).",
	                                     true, rs.records_written };
	out[1] = (struct tmd_metrics_extra){ "taskmon_record_records_dropped_total",
	                                     "Records built but never written (--record).", true, rs.records_dropped };
	out[2] = (struct tmd_metrics_extra){ "taskmon_record_errors_total", "Records that could not be written.",
	                                     true, rs.errors };
	return 3;
}

/* The default address taken (another collector, say) is no reason not to run. */
static int metrics_open(struct daemon_state *d)
{
	char err[256];
	if (strcmp(d->opt.metrics, "off") == 0)
		return 0;
	int r = tmd_metrics_http_open(&d->metrics, d->opt.metrics,
	                              TMD_METRICS_SOURCES(.merge = d->merge, .loader = d->loader, .server = d->server,
	                                                  .socket = d->opt.socket, .state_dir = d->opt.state_dir,
	                                                  .started_ns = d->started_ns, .extra = metrics_extra,
	                                                  .extra_ctx = d),
	                              err, sizeof(err));
	if (r < 0 && (d->opt.metrics_given || r != -EADDRINUSE)) {
		fprintf(stderr, "taskmond: %s\n", err);
		return r;
	}
	if (r < 0)
		fprintf(stderr, "taskmond: %s; running without metrics (--metrics ADDR:PORT serves them elsewhere)\n", err);
	else if (d->opt.verbose)
		printf("taskmond: metrics on %s, port %u\n", d->opt.metrics, tmd_metrics_http_port(d->metrics));
	return 0;
}

static int open_all(struct daemon_state *d)
{
	char err[512];
	static const struct tmd_server_ops ops = { .on_register = on_register, .on_snapshot = on_snapshot };
	int r = make_dirs(d->opt.state_dir);
	if (r < 0) {
		fprintf(stderr, "taskmond: cannot create the state directory %s: %s\n", d->opt.state_dir, strerror(-r));
		return r;
	}
	r = tmd_merge_new(&d->merge, TMD_MERGE_OPTS(.retention_ns = (uint64_t)(d->opt.retention * 1e9)));
	if (r < 0) {
		fprintf(stderr, "taskmond: %s\n", strerror(-r));
		return r;
	}
	d->maps = tmd_maps_set_new(tmd_merge_options(d->merge)->max_workloads);
	if (!d->maps) {
		fprintf(stderr, "taskmond: %s\n", strerror(ENOMEM));
		return -ENOMEM;
	}
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0) {
		fprintf(stderr, "taskmond: epoll: %s\n", strerror(errno));
		return -errno;
	}
	/* Before the programs: a second collector on the same socket stops here. */
	r = tmd_server_open(&d->server, d->opt.socket, NULL, &ops, d, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "taskmond: %s\n", err);
		return r;
	}
	r = tmd_loader_open(&d->loader, TMD_LOADER_OPTS(), on_event, d);
	if (r < 0)
		fprintf(stderr, "taskmond: %s\n", tmd_loader_error());
	return r;
}

int main(int argc, char **argv)
{
	struct daemon_state d;
	char missing[64];
	int rc = 1;
	memset(&d, 0, sizeof(d));
	d.epfd = -1;
	if (parse(argc, argv, &d.opt) < 0)
		return 2;
	if (d.opt.check)
		return run_check();
	if (tmd_check_privileges(missing, sizeof(missing)) < 0) {
		fprintf(stderr, "taskmond: loading kernel programs needs %s, which this process lacks; "
		                "run it as root (sudo taskmond) or grant them (setcap cap_bpf,cap_perfmon+ep taskmond).\n",
		        missing);
		return 1;
	}
	install_handlers();
	tmd_libbpf_print(d.opt.verbose);
	d.started_ns = d.now = now_ns();
	if (open_all(&d) < 0 || attach_libraries(&d) < 0 || metrics_open(&d) < 0)
		goto cleanup;
	for (size_t i = 0; i < d.opt.npids; i++)
		if (watch(&d, d.opt.pids[i]) < 0)
			goto cleanup;
	rescan(&d);
	if (d.opt.verbose)
		printf("taskmond: %s programs attached, watching %zu process%s, socket %s\n", tmd_loader_mode(d.loader),
		       tmd_loader_watch_count(d.loader), tmd_loader_watch_count(d.loader) == 1 ? "" : "es",
		       d.opt.socket);
	fflush(stdout);
	/* Everything is attached: only now leave the terminal, so that no error goes unseen. */
	if (!d.opt.foreground && daemon(0, d.opt.verbose) != 0) {
		fprintf(stderr, "taskmond: cannot go to the background: %s\n", strerror(errno));
		goto cleanup;
	}
	if (record_open(&d) < 0)
		goto cleanup;
	rc = serve(&d);
	record_close(&d);
	if (d.opt.verbose)
		printf("taskmond: %llu events, %llu lost, %llu crashes recorded (%llu not written to the log)\n",
		       (unsigned long long)d.events, (unsigned long long)tmd_loader_stat(d.loader, TM_STAT_LOST),
		       (unsigned long long)d.crashes, (unsigned long long)d.crash_log_errors);
cleanup:
	tmd_record_close(d.recorder);
	tmd_metrics_http_close(d.metrics);
	tmd_server_close(d.server);
	tmd_loader_close(d.loader);
	tmd_merge_free(d.merge);
	tmd_maps_set_free(d.maps);
	tmd_symcache_clear();
	if (d.epfd >= 0)
		close(d.epfd);
	return rc;
}
