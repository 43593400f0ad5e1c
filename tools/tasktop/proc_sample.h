/* What the data sources do not carry, read from /proc by tasktop itself:
 *   - a running task's on-CPU and run-queue time so far, from its thread's
 *     /proc/<pid>/task/<tid>/schedstat (the kernel's own accounting; the
 *     collector reports these only when a task ends);
 *   - the voluntary and involuntary switch counts of busy running tasks, from
 *     .../status (several times dearer than schedstat, so only for tasks that
 *     used at least a tenth of the interval on a CPU: the no-yield warning's
 *     candidates);
 *   - each workload's and the collector's CPU time, RSS and threads, from
 *     /proc/<pid>/stat (checked against the process start time, so that a
 *     reused pid is not taken for the workload).
 * A file that cannot be read leaves the figure unknown; nothing here fails.
 */
#ifndef TASKTOP_PROC_SAMPLE_H
#define TASKTOP_PROC_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "model.h"

struct tt_proc_stat {
	uint64_t cpu_ns;        /* utime + stime */
	uint64_t rss_bytes;
	uint64_t threads;
	uint64_t start_ticks;   /* field 22 */
};

/* Fills cur's tasks' proc, workloads' proc_* and the collector's cpu/rss.
 * prev (may be NULL) tells which tasks were busy in the interval. proc_root
 * NULL = "/proc". Sets cur->proc_figures when any task was read. */
void tt_proc_sample(const struct tt_model *prev, struct tt_model *cur, const char *proc_root);

/* One process's /proc/<pid>/stat. 0 or negative errno. */
int tt_proc_read_stat(const char *proc_root, pid_t pid, struct tt_proc_stat *out);
/* One thread's schedstat: on-CPU ns, run-queue ns, timeslices. 0 or negative errno. */
int tt_proc_read_schedstat(const char *proc_root, pid_t pid, pid_t tid, uint64_t *oncpu_ns, uint64_t *runq_ns,
                           uint64_t *slices);
/* One thread's voluntary and involuntary switches. 0 or negative errno. */
int tt_proc_read_switches(const char *proc_root, pid_t pid, pid_t tid, uint64_t *voluntary, uint64_t *involuntary);

#endif
