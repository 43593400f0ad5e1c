/* taskmon-demo's command line. */
#ifndef TASKMON_DEMO_OPTIONS_H
#define TASKMON_DEMO_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

struct demo_options {
	double rate;              /* spawns per second */
	unsigned concurrency;     /* tasks running at once, at most */
	double duration;          /* seconds; 0 = until a signal */
	uint64_t seed;
	double fail_rate, panic_rate;
	bool crash, contain, quiet;
	double crash_after;       /* seconds */
};

enum { DEMO_OPTIONS_RUN, DEMO_OPTIONS_HELP, DEMO_OPTIONS_BAD };
/* Fills o from argv. DEMO_OPTIONS_HELP after printing the help,
 * DEMO_OPTIONS_BAD after printing one sentence on stderr. */
int demo_options_parse(struct demo_options *o, int argc, char **argv);

#endif
