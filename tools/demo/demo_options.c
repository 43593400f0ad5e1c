/* taskmon-demo's options: defaults, help, and one sentence for a bad value. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "demo_options.h"

static const char usage[] =
"usage: taskmon-demo [--rate N] [--concurrency N] [--duration S] [--seed N]\n"
"                    [--fail-rate F] [--panic-rate F] [--crash [--crash-after S] [--contain]] [--quiet]\n"
"\n"
"One node of a peer-to-peer dice game, as a workload for taskmon. It spawns named,\n"
"typed tasks in such a node's load mix: network 37% (peer_recv, peer_send, ...),\n"
"consensus 24% (vote_round, round_close, validate_block, commit_block), database 17%\n"
"(db_write, ...), game logic 12% (dice_roll, bet_process, payout_calc), background 6%,\n"
"maintenance 3% (gc_sweep, ...), UI 0.8% (ui_update, ...), general 0.2%. Each task\n"
"waits a few ms (peers, disk) and computes a little. Bets must settle within 40 ms or\n"
"time out; the votes of a consensus round run in a group that round_close waits for,\n"
"then commits the block with a chain; a UI frame still drawing when the next is due\n"
"is cancelled; game_sync is a critical task that is restarted after a panic with\n"
"exponential backoff and jitter.\n"
"\n"
"  --rate N          tasks spawned per second (default 200; 0.1 to 100000)\n"
"  --concurrency N   at most N tasks running at once; draws past it are skipped and\n"
"                    counted (default 256; 1 to 100000)\n"
"  --duration S      stop after S seconds; 0 runs until Ctrl-C or SIGTERM (default 0)\n"
"  --seed N          seed of the random draws, to repeat a run's choices (default: from\n"
"                    the clock; printed at the start)\n"
"  --fail-rate F     fraction of tasks that fail by returning an error (default 0.03)\n"
"  --panic-rate F    fraction of tasks that panic (tm_panic); also game_sync's chance of\n"
"                    losing sync, a panic and a restart, at each 100 ms step (default 0.02)\n"
"  --crash           after --crash-after seconds one dice_roll task reads through a NULL\n"
"                    pointer: the process dies with SIGSEGV, and taskmond, when it runs,\n"
"                    records the crash with the task, the fault address and the stack\n"
"  --crash-after S   when --crash strikes (default 3)\n"
"  --contain         turn on fault containment: the crash ends only its task (crashed)\n"
"  --quiet           no status line every 5 s\n"
"  -h, --help        this text\n"
"\n"
"The library registers with taskmond at $TASKMON_SOCKET (default /run/taskmon/taskmond.sock)\n"
"when one runs; tasktop shows the node live. On a stop (the duration, Ctrl-C, SIGTERM) the\n"
"node cancels what still runs and prints its tasks by type and status with spawn-latency\n"
"quantiles. Exit status: 0; 1 when the task library fails; 2 for a bad option.\n";

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "taskmon-demo: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "; see taskmon-demo --help.\n");
	va_end(ap);
	return DEMO_OPTIONS_BAD;
}

/* A plain decimal number within [lo, hi]: no sign tricks, no "nan", no "1e999". */
static int number(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || isspace((unsigned char)*s) || *end || errno || !isfinite(v) || v < lo || v > hi) {
		return bad("%s wants a number from %.10g to %.10g, not '%s'", opt, lo, hi, s);
	}
	*out = v;
	return DEMO_OPTIONS_RUN;
}

static int seed_value(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno)
		return bad("--seed wants a whole number from 0 to 18446744073709551615, not '%s'", s);
	*out = v;
	return DEMO_OPTIONS_RUN;
}

static uint64_t clock_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^ (uint64_t)getpid() << 32;
}

static const struct option longopts[] = {
	{ "rate", required_argument, NULL, 'r' },        { "concurrency", required_argument, NULL, 'c' },
	{ "duration", required_argument, NULL, 'd' },    { "seed", required_argument, NULL, 's' },
	{ "fail-rate", required_argument, NULL, 'f' },   { "panic-rate", required_argument, NULL, 'p' },
	{ "crash", no_argument, NULL, 'C' },             { "crash-after", required_argument, NULL, 'A' },
	{ "contain", no_argument, NULL, 'K' },           { "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },              { NULL, 0, NULL, 0 },
};

struct seen { bool seed, help; };

static int one_option(struct demo_options *o, int c, const char *arg, struct seen *seen)
{
	double v;
	int r = DEMO_OPTIONS_RUN;
	switch (c) {
	case 'r': r = number("--rate", arg, 0.1, 100000, &o->rate); break;
	case 'c': r = number("--concurrency", arg, 1, 100000, &v); o->concurrency = (unsigned)v;
	          if (r == DEMO_OPTIONS_RUN && v != floor(v))
	                  r = bad("--concurrency wants a whole number, not '%s'", arg);
	          break;
	case 'd': r = number("--duration", arg, 0, 31536000, &o->duration); break;
	case 's': r = seed_value(arg, &o->seed); seen->seed = true; break;
	case 'f': r = number("--fail-rate", arg, 0, 1, &o->fail_rate); break;
	case 'p': r = number("--panic-rate", arg, 0, 1, &o->panic_rate); break;
	case 'A': r = number("--crash-after", arg, 0, 31536000, &o->crash_after); break;
	case 'C': o->crash = true; break;
	case 'K': o->contain = true; break;
	case 'q': o->quiet = true; break;
	case 'h': seen->help = true; break;
	default:  return DEMO_OPTIONS_BAD;
	}
	return r;
}

int demo_options_parse(struct demo_options *o, int argc, char **argv)
{
	*o = (struct demo_options){ .rate = 200, .concurrency = 256, .fail_rate = 0.03, .panic_rate = 0.02,
	                            .crash_after = -1 /* not given */ };
	struct seen seen = { 0 };
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		const char *arg = argv[optind - 1];
		if (c == ':')
			return bad("%s needs a value", arg);
		if (c == '?' && optopt)
			return bad("there is no option '-%c'", optopt);
		if (c == '?')
			return bad("there is no option '%s'", arg);
		int r = one_option(o, c, optarg, &seen);
		if (r != DEMO_OPTIONS_RUN)
			return r;
	}
	if (optind < argc)
		return bad("'%s' is not an option (it takes options only)", argv[optind]);
	if (o->fail_rate + o->panic_rate > 1)
		return bad("--fail-rate and --panic-rate add up to more than 1");
	if ((o->contain || o->crash_after >= 0) && !o->crash)
		return bad("%s only means something with --crash", o->contain ? "--contain" : "--crash-after");
	if (o->crash_after < 0)
		o->crash_after = 3;
	if (!seen.seed)
		o->seed = clock_seed();
	/* After the checks: `taskmon-demo OPTIONS --help` validates OPTIONS. */
	if (seen.help) {
		fputs(usage, stdout);
		return DEMO_OPTIONS_HELP;
	}
	return DEMO_OPTIONS_RUN;
}
