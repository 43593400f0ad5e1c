/* The Prometheus exposition of taskmond's merged stats: text format 0.0.4,
 * served on /metrics (metrics_http.h does the HTTP part).
 *
 * taskmond serves it on 127.0.0.1:9464 by default; `--metrics ADDR:PORT`
 * moves it (ADDR a numeric IPv4 address, or an IPv6 one in brackets:
 * [::1]:9464; 0.0.0.0 for every interface), `--metrics off` turns it off.
 * When the default address is taken, taskmond says so and runs without it;
 * an address given with --metrics that cannot be bound stops it.
 *
 * Names follow the Prometheus conventions: prefix taskmon_, base units
 * (seconds, bytes), counters end in _total. Labels are bounded: task figures
 * carry `workload` (the executable name, comm) and `type` (the task type's
 * name); never a task name or a pid. Workloads of the same name are summed.
 * At most TMD_METRICS_MAX_SERIES (workload, type) pairs are kept; further
 * pairs are counted under workload="(other)".
 *
 * A workload that is gone keeps its totals: a few seconds after it is gone
 * (when its last queued events are in) its figures move into totals kept
 * here, per workload name and type, for the collector's lifetime, so that a
 * counter never goes down when a workload exits or the collector forgets it.
 * (The running gauge counts live workloads only.)
 *
 * Task figures, labels {workload, type}:
 *   taskmon_tasks_spawned_total          tm_spawn calls that made a task (the library's counter)
 *   taskmon_tasks_completed_total        tasks that succeeded (body returned 0)
 *   taskmon_tasks_failed_total           ... returned non-zero
 *   taskmon_tasks_panicked_total         ... called tm_panic
 *   taskmon_tasks_cancelled_total        ... were cancelled
 *   taskmon_tasks_timed_out_total        ... passed their deadline
 *   taskmon_tasks_crashed_total          ... ended by a contained fault
 *   taskmon_tasks_restarted_total        restarts of critical tasks
 *   taskmon_tasks_escalated_total        critical tasks that gave up restarting
 *   taskmon_tasks_rejected_total         spawns refused by a limit
 *   taskmon_tasks_running                gauge
 *   taskmon_tasks_trace_skipped_total    spawned past kernel_trace_rate: no kernel figures
 *   taskmon_task_spawn_latency_seconds   histogram: task_spawn -> first instruction (kernel clock)
 *   taskmon_task_oncpu_seconds           histogram: on-CPU time per ended task
 *   taskmon_task_runqueue_wait_seconds   histogram: time runnable but waiting for a CPU, per ended task
 * Crashes, labels {workload, signal}:
 *   taskmon_crashes_total                crash signals (SIGSEGV, SIGBUS, ...) raised in watched processes
 * The collector itself, no labels:
 *   taskmon_collector_events_total, _events_lost_total, _events_malformed_total,
 *   _spawns_missed_total, _registrations_total, _registrations_refused_total,
 *   _workloads_watched, _workloads_live, _workloads_departed, _workloads_seen_total,
 *   _tasks_tracked, _memory_bytes, _histograms_refused_total, _series_overflow_total,
 *   _bpf_programs, _bpf_stats_enabled, _bpf_run_seconds_total, _bpf_runs_total,
 *   _start_time_seconds, _scrapes_total, _http_rejected_total,
 *   _scrape_duration_seconds, and taskmon_collector_info{mode}.
 * The kernel counts BPF program run time and runs only while
 * kernel.bpf_stats_enabled is 1 (sysctl -w kernel.bpf_stats_enabled=1; it
 * costs a few ns per program run); taskmond does not turn it on, and
 * taskmon_collector_bpf_stats_enabled says whether it is on.
 *
 * Histogram buckets: le = 1 us ... 10 s in 1-2.5-5 steps, from the merge's
 * log-linear histograms (see lib/taskmon_shm.h). A log-linear bucket is
 * counted under the first `le` that its highest value does not exceed, so a
 * bucket's cumulative count is exact except for the samples of the one
 * log-linear bucket that straddles `le`: samples at most 1/32 (3.1%) below
 * `le` may be counted in the next bucket up. _sum and _count are exact.
 */
#ifndef TMD_METRICS_H
#define TMD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "merge.h"
#include "snapshot.h"

#define TMD_METRICS_DEFAULT_ADDR  "127.0.0.1:9464"
#define TMD_METRICS_MAX_SERIES    1024   /* (workload, type) pairs */
#define TMD_METRICS_MAX_WORKLOADS 1024   /* workload names with crash series */
#define TMD_METRICS_FOLD_DELAY_NS 3000000000ull   /* a gone workload's figures are final after this */
#define TMD_METRICS_CONTENT_TYPE  "text/plain; version=0.0.4; charset=utf-8"

/* A further figure the collector wants exposed (a part's own counter). */
struct tmd_metrics_extra {
	const char *name;          /* [a-zA-Z_:][a-zA-Z0-9_:]*; others are skipped */
	const char *help;
	bool        counter;       /* false: gauge */
	uint64_t    value;
};

/* What the collector reports about itself, besides what the merge holds. */
struct tmd_metrics_info {
	const struct tmd_collector_info *ci;   /* may be NULL */
	uint64_t started_unix_ns;  /* when the collector started, realtime; 0 = unknown */
	int      bpf_programs;     /* its loaded programs; < 0 = unknown (run figures left out) */
	bool     bpf_stats_enabled;
	uint64_t bpf_run_ns, bpf_runs;   /* summed over its programs */
	uint64_t scrapes;          /* including this one */
	uint64_t http_rejected;    /* requests answered with an error */
	const struct tmd_metrics_extra *extra;
	size_t   nextra;
};

struct tmd_metrics;

int  tmd_metrics_new(struct tmd_metrics **out);
void tmd_metrics_free(struct tmd_metrics *mx);
/* Lowers the (workload, type) pair limit (never below the pairs already
 * kept): for tests, which cannot easily make a thousand workloads. */
void tmd_metrics_set_max_series(struct tmd_metrics *mx, size_t max);

/* Moves the figures of workloads gone for TMD_METRICS_FOLD_DELAY_NS into the
 * kept totals. Cheap (it looks at departed workloads only); call it every
 * second or so, so that none is forgotten by the merge unseen. */
void tmd_metrics_observe(struct tmd_metrics *mx, const struct tmd_merge *m, uint64_t now_ns);

/* The exposition (observing first), malloc'ed and NUL-terminated, *len bytes
 * without the NUL. NULL with errno = ENOMEM. */
char *tmd_metrics_render(struct tmd_metrics *mx, const struct tmd_merge *m, const struct tmd_metrics_info *info,
                         uint64_t now_ns, size_t *len);

/* A label value escaped per the format (backslash, double quote, newline)
 * into out; bytes that are not printable ASCII become '?'. Returns the length
 * the whole value needs (as snprintf does). */
size_t tmd_metrics_escape_label(char *out, size_t cap, const char *in);

#endif
