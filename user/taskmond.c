/* taskmond: loads the kernel programs, watches workloads, reads their events.
 *
 *   taskmond [--check] [--verbose] [--foreground] [--pid PID]... [--duration SECONDS]
 *
 * This first collector watches the processes named with --pid and every
 * workload that publishes a registry in /dev/shm (rescanned each second),
 * and with --verbose prints one line per event.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event_fmt.h"
#include "discover.h"
#include "loader.h"
#include "probe.h"
#include "taskmon_events.h"

#define MAX_PIDS 256

struct options {
	bool check, verbose, foreground;
	pid_t pids[MAX_PIDS];
	size_t npids;
	double duration;      /* seconds; 0 = until a signal */
};

struct daemon_state {
	struct options opt;
	struct tmd_loader *loader;
	pid_t failed[64];     /* workloads that could not be watched: not retried every second */
	size_t nfailed;
	uint64_t events;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: taskmond [--check] [--verbose] [--foreground] [--pid PID]... [--duration SECONDS]\n"
	           "  --check       probe the kernel and privileges, one line per feature, then exit\n"
	           "  --verbose     print one line per kernel event and libbpf's debug messages\n"
	           "  --foreground  stay attached to the terminal (default: run in the background)\n"
	           "  --pid PID     watch this process (besides the workloads found in /dev/shm)\n"
	           "  --duration S  stop after S seconds\n");
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "check", no_argument, NULL, 'c' },      { "verbose", no_argument, NULL, 'v' },
		{ "foreground", no_argument, NULL, 'f' }, { "pid", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "cvfp:d:h", longs, NULL)) != -1) {
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
		case 'd':
			o->duration = strtod(optarg, &end);
			if (*end || !(o->duration > 0)) {
				fprintf(stderr, "taskmond: --duration takes a number of seconds, not '%s'\n", optarg);
				return -1;
			}
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
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

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int on_event(void *ctx, const void *data, size_t len)
{
	struct daemon_state *d = ctx;
	char line[1024];
	int kind = tmd_event_format(data, len, line, sizeof(line));
	d->events++;
	if (kind < 0) {
		fprintf(stderr, "taskmond: malformed event of %zu bytes skipped\n", len);
		return 0;
	}
	if (d->opt.verbose)
		printf("%s\n", line);
	return 0;
}

static int watch(struct daemon_state *d, pid_t pid)
{
	if (tmd_loader_watching(d->loader, pid))
		return 0;
	int n = tmd_loader_watch(d->loader, pid);
	if (n < 0)
		fprintf(stderr, "taskmond: %s\n", tmd_loader_error());
	else if (d->opt.verbose)
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

static void rescan(struct daemon_state *d)
{
	pid_t pids[1024];
	/* An exited workload stays watched until it is gone from /proc, not only
	 * until its exit event: its threads that exit after that event still
	 * close out their tasks. */
	size_t gone = tmd_loader_prune(d->loader, pids, 1024);
	for (size_t i = 0; i < gone && i < 1024 && d->opt.verbose; i++)
		printf("unwatch pid %d (gone)\n", (int)pids[i]);
	int n = tmd_list_workloads(NULL, pids, 1024);
	for (int i = 0; i < n; i++) {
		if (failed_before(d, pids[i]) || watch(d, pids[i]) >= 0)
			continue;
		if (d->nfailed == sizeof(d->failed) / sizeof(d->failed[0]))
			d->nfailed = 0;   /* forget the oldest batch: a pid may be reused */
		d->failed[d->nfailed++] = pids[i];
	}
}

static int serve(struct daemon_state *d)
{
	double start = now_s(), last_scan = start;
	while (!stop) {
		int r = tmd_loader_poll(d->loader, 200);
		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "taskmond: reading events failed: %s\n", strerror(-r));
			return 1;
		}
		if (d->opt.verbose)
			fflush(stdout);
		double t = now_s();
		if (d->opt.duration > 0 && t - start >= d->opt.duration)
			break;
		if (t - last_scan >= 1.0) {
			rescan(d);
			last_scan = t;
		}
	}
	return 0;
}

static void install_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;   /* no SA_RESTART: the poll returns at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv)
{
	struct daemon_state d;
	char missing[64];
	int rc = 1;
	memset(&d, 0, sizeof(d));
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
	int err = tmd_loader_open(&d.loader, TMD_LOADER_OPTS(), on_event, &d);
	if (err < 0) {
		fprintf(stderr, "taskmond: %s\n", tmd_loader_error());
		goto cleanup;
	}
	for (size_t i = 0; i < d.opt.npids; i++)
		if (watch(&d, d.opt.pids[i]) < 0)
			goto cleanup;
	rescan(&d);
	if (d.opt.verbose)
		printf("taskmond: %s programs attached, watching %zu process%s\n", tmd_loader_mode(d.loader),
		       tmd_loader_watch_count(d.loader), tmd_loader_watch_count(d.loader) == 1 ? "" : "es");
	fflush(stdout);
	/* Everything is attached: only now leave the terminal, so that no error goes unseen. */
	if (!d.opt.foreground && daemon(0, d.opt.verbose) != 0) {
		fprintf(stderr, "taskmond: cannot go to the background: %s\n", strerror(errno));
		goto cleanup;
	}
	rc = serve(&d);
	if (d.opt.verbose)
		printf("taskmond: %llu events, %llu lost\n", (unsigned long long)d.events,
		       (unsigned long long)tmd_loader_stat(d.loader, TM_STAT_LOST));
cleanup:
	tmd_loader_close(d.loader);
	return rc;
}
