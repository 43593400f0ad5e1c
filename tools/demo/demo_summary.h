/* The node's own account when it stops: tasks by type and status, with the
 * library's spawn-latency quantiles, and what became of the game. */
#ifndef TASKMON_DEMO_SUMMARY_H
#define TASKMON_DEMO_SUMMARY_H

#include <stdint.h>
#include <stdio.h>

struct demo_summary_in {
	double seconds;
	const char *why;            /* what stopped the node */
	int cancelled_at_stop;
	uint64_t skipped;           /* draws skipped at the concurrency limit */
	uint64_t sync_id;           /* game_sync's task id, 0 = none */
};

void demo_summary_print(FILE *out, const struct demo_summary_in *in);

#endif
