/* The snapshot: taskmond's merged stats as one JSON document, what the
 * socket's SNAPSHOT request returns (see server.h) for the terminal tool and
 * scripts.
 *
 * Format, version 1. Times are nanoseconds; *_ns values that are instants are
 * CLOCK_MONOTONIC (the clock of the registry and the kernel events), except
 * now_unix_ns. Integers never exceed 2^63 - 1 (larger values are clamped).
 * A consumer must ignore keys it does not know: later versions of the same
 * major number only add keys.
 *
 * {
 *   "version": 1,
 *   "now_ns": <monotonic>, "now_unix_ns": <realtime>,
 *   "filtered": <bool: true when the peer only sees its own workloads>,
 *   "collector": { "pid", "mode" ("tp_btf"|"raw_tp"), "uptime_ns",
 *       "events" (ring-buffer records merged), "lost" (records the kernel could
 *       not queue), "malformed", "unattributed", "spawn_missed", "watched",
 *       "registrations", "registrations_refused", "snapshots", "clients",
 *       "retention_s", "max_tasks", "max_tasks_total", "max_workloads",
 *       "tasks_kept", "tasks_dropped", "tasks_evicted", "tasks_expired",
 *       "workloads_live", "workloads_dead", "workloads_refused",
 *       "workloads_dropped", "segments_removed", "hist_bytes", "hist_refused",
 *       "memory_bytes", "socket", "state_dir" },
 *   "machine": { "workloads_seen", "workloads_live", "workloads_gone",
 *       "registry": COUNTERS (every workload's library counters, those gone included),
 *       "kernel": KFIG (every task event, workloads gone included) },
 *   "types": [ { "name", "registry": COUNTERS, "kernel": KFIG } ... ]    machine-wide, by type name,
 *   "workloads": [ WORKLOAD ... ]    live ones first, then those gone (kept for the retention period),
 *   "tasks": [ TASK ... ]            per workload: running ones, then finished ones newest first,
 *   "tasks_omitted": <records left out by max_tasks>
 * }
 *
 * COUNTERS = { "spawned", "running", "succeeded", "failed", "panicked",
 *     "cancelled", "timed_out", "restarts", "rejected", "crashed",
 *     "escalations", "trace_skipped" }: the library's own counters from the
 *     registry; trace_skipped counts tasks spawned past their spawner's
 *     kernel_trace_rate, which fired no probe and have no kernel figures.
 * HIST = { "count", "mean_ns", "p50_ns", "p95_ns", "p99_ns", "max_ns" }
 *     (log-linear histogram: quantiles within 1.6%).
 * KFIG = { "tasks_started" (start events), "spawns_seen" (with the spawn seen),
 *     "tasks_ended" (end events with totals), "tasks_partial" (without),
 *     "spawn_latency": HIST (task_spawn -> task_start, kernel clock),
 *     "spawn_runq_ns" (run-queue wait within those latencies, summed),
 *     "run_time": HIST (on-CPU time per ended task),
 *     "oncpu_ns", "runq_ns", "blocked_ns" (summed over ended tasks: busy,
 *     waiting for a CPU, blocked = wall - on-CPU - run-queue),
 *     "voluntary_switches", "involuntary_switches", "migrations",
 *     "histograms_complete" (false when the histogram memory budget refused one) }
 * WORKLOAD = { "pid", "comm", "uid", "start_ticks", "alive", "has_registry",
 *     "exited", "exit": null | { "code", "signal", "core_dumped" },
 *     "segment_removed", "seen_ns", "gone_ns" (0 while alive),
 *     "crashes", "kills", "restarts", "giveups", "invalid_records",
 *     "registry_errors", "tasks_kept", "tasks_dropped", "untyped_events",
 *     "registry": COUNTERS + { "spawn_latency": { "p50_ns", "p95_ns",
 *         "p99_ns", "max_ns" } (the library's own figure), "tracked_records",
 *         "tracker_bytes" },
 *     "kernel": KFIG,
 *     "types": [ { "id", "name", "registry": COUNTERS + { "spawn_latency":
 *         HIST without mean_ns (the library's own) }, "kernel": KFIG } ... ]
 *         (types with a name or with events) }
 * TASK = { "pid", "id", "name", "type" (-1 unknown), "type_name", "status"
 *     ("running", "succeeded", ..., "unknown"; a task its process took down
 *     with it is "crashed" when a crash signal hit its thread, else "unknown"),
 *     "rc", "restarts", "tid",
 *     "spawn_ns", "start_ns", "end_ns" (0 = not known / not yet; for a task
 *     closed out by its process's end, when the collector saw it end),
 *     "finished",
 *     "message": the panic message of a task that ended "panicked" (or the
 *         description of a contained fault, "crashed"), for a critical task
 *         also that of its latest incarnation that did: its first 119 bytes,
 *         printable ASCII, ending in "..." when it was longer; null when there
 *         is none, or the workload's message ring no longer held it when the
 *         collector looked (within a second of the end or restart),
 *     "restart_history": [ { "at_ns" (when the restart was decided), "attempt"
 *         (restart number since the policy last started over), "delay_ms"
 *         (the backoff waited before it; 0 for a group's restart) } ... ]
 *         a critical task's last 8 restarts seen by the kernel side, oldest
 *         first ([] when none),
 *     "kernel": { "started", "spawn_latency_ns" (null when the spawn was not
 *         seen), "spawn_runq_ns", "ended", "oncpu_ns", "runq_ns",
 *         "blocked_ns", "voluntary_switches", "involuntary_switches",
 *         "migrations", "incarnations", "exited" (closed out by its thread's
 *         exit), "crashed", "partial" } }
 */
#ifndef TMD_SNAPSHOT_H
#define TMD_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "merge.h"

/* What the collector knows about itself. */
struct tmd_collector_info {
	pid_t pid;
	const char *mode;
	uint64_t started_ns;
	uint64_t lost, spawn_missed, watched;
	uint64_t registrations, registrations_refused, snapshots, clients;
	const char *socket, *state_dir;
};

#define TMD_SNAPSHOT_TASKS_DEFAULT 1000

struct tmd_snapshot_opts {
	size_t   sz;
	bool     all_workloads;   /* false: only the workloads that `uid` owns */
	uid_t    uid;
	bool     no_tasks;
	uint32_t max_tasks;       /* 0 = TMD_SNAPSHOT_TASKS_DEFAULT */
};
#define TMD_SNAPSHOT_OPTS(...) (&(struct tmd_snapshot_opts){ .sz = sizeof(struct tmd_snapshot_opts), __VA_ARGS__ })

/* The document, malloc'ed and NUL-terminated; *len is its length without the
 * NUL. NULL with errno = ENOMEM. */
char *tmd_snapshot_json(const struct tmd_merge *m, const struct tmd_collector_info *ci,
                        const struct tmd_snapshot_opts *opts, uint64_t now_ns, size_t *len);

#endif
