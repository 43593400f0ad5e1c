/* Warnings computed from the data, after tokio-console's lints: each is a
 * condition on one sample and the one before it (plus the short histories the
 * model carries), shown as a column of the task list and as a list.
 *
 *   no-yield      a task on CPU for over a second without a voluntary switch
 *                 (a running task: /proc switch counts over the samples; a
 *                 finished one: the kernel's totals)
 *   starved       run-queue wait above half of its wall time
 *   restart-loop  a critical task restarted again and again within a window
 *   leak          a type's running count growing steadily over the last samples
 *   lost-events   the kernel dropped events in the interval: figures undercount
 *   sampled       a type's tasks were spawned past their spawner's
 *                 kernel_trace_rate in the interval: they fired no probe, so
 *                 its kernel figures describe the traced ones only
 */
#ifndef TASKTOP_WARNINGS_H
#define TASKTOP_WARNINGS_H

#include "model.h"

struct tt_warn_opts {
	uint64_t no_yield_ns;              /* 1 s */
	double   starved_pct;              /* 50 (% of wall time) */
	uint64_t starved_min_wall_ns;      /* 100 ms: shorter spans are noise */
	uint32_t restart_loop_restarts;    /* 3 ... */
	uint64_t restart_loop_window_ns;   /* ... within 60 s */
	uint8_t  leak_samples;             /* 8 intervals (at most TT_TREND_N - 1) ... */
	uint32_t leak_min_growth;          /* ... grown by at least 8 tasks, never falling, in 3 of 4 intervals */
};
void tt_warn_opts_default(struct tt_warn_opts *o);

/* Sets the warning bits of cur's tasks and types and rebuilds cur->warnings.
 * prev may be NULL (fewer warnings can be known). opts NULL = defaults.
 * 0 or -ENOMEM. */
int tt_warnings_compute(const struct tt_model *prev, struct tt_model *cur, const struct tt_warn_opts *opts);

#endif
