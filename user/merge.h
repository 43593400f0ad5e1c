/* Tracker stats: the kernel's events merged with each workload's registry.
 *
 * Four levels: per task, per type per workload, per workload, and
 * machine-wide (per type name, and in all). Two sources:
 *   - the registry (/dev/shm/taskmon.<pid>, through the validating reader of
 *     lib/taskmon_shm.h): task names, types, statuses, return codes, restarts,
 *     the library's own counters and spawn-latency figures, and the newest
 *     message of a task that panicked (or ended by a contained fault), read
 *     from the segment's message ring once when the task is first seen so
 *     ended, and after each restart of a critical task;
 *   - the kernel's task start and end events (bpf/taskmon_events.h): spawn
 *     latency and the run-queue wait within it, on-CPU time, run-queue wait,
 *     blocked time, voluntary and involuntary switches, migrations; and a
 *     critical task's restarts (attempt, delay), the last TMD_RESTART_HIST
 *     of each.
 * Histograms are log-linear (the tm_hist_* buckets: <= 1.6% error) and give
 * p50/p95/p99/max.
 *
 * Everything a workload writes is hostile: the reader validates the segment,
 * strings from events are cut to printable ASCII, type ids are range-checked,
 * and memory is bounded by the options: tasks per workload and in all (a
 * finished task is kept for `retention_ns`, then dropped a few hundred at a
 * time), live and departed workloads, and bytes of histograms. Totals per
 * workload and machine-wide outlive the tasks they count; a workload that is
 * gone keeps its final figures for the retention period, and its counters stay
 * in the machine-wide figures after that.
 *
 * Single-threaded: the collector's loop owns it. Times are CLOCK_MONOTONIC ns,
 * the clock of the events and of the registry.
 */
#ifndef TMD_MERGE_H
#define TMD_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "taskmon.h"
#include "taskmon_shm.h"

struct tmd_merge;

struct tmd_merge_opts {
	size_t   sz;                /* sizeof(struct tmd_merge_opts) */
	uint64_t retention_ns;      /* finished tasks and departed workloads; 0 = 300 s */
	uint32_t max_tasks;         /* task records per workload; 0 = 4096 */
	uint32_t max_tasks_total;   /* task records in all; 0 = 65536 */
	uint32_t max_workloads;     /* live workloads followed; 0 = 1024 */
	uint32_t max_dead;          /* departed workloads kept (figures only); 0 = 128 */
	uint64_t hist_bytes;        /* histogram memory; 0 = 64 MiB (~6,700 histograms) */
	uint64_t sync_interval_ns;  /* registry re-read per workload; 0 = 1 s */
};
#define TMD_MERGE_OPTS(...) (&(struct tmd_merge_opts){ .sz = sizeof(struct tmd_merge_opts), __VA_ARGS__ })

struct tmd_hist {
	uint64_t count, sum_ns, max_ns;
	uint64_t bucket[TM_HIST_BUCKETS];
};
/* Value at quantile q (0 < q <= 1); 0 for NULL or empty. */
uint64_t tmd_hist_quantile(const struct tmd_hist *h, double q);

/* Kernel figures of a set of tasks. */
struct tmd_kfig {
	uint64_t started;           /* task start events (incarnations) */
	uint64_t spawns_seen;       /* ... of them with task_spawn seen: latency known */
	uint64_t ended;             /* task end events with totals */
	uint64_t partial;           /* end events without totals (start not seen, never started) */
	uint64_t spawn_runq_ns;     /* run-queue wait within the spawn latencies */
	uint64_t oncpu_ns, runq_ns, blocked_ns;   /* summed over ended tasks */
	uint64_t nvcsw, nivcsw, migrations;
	struct tmd_hist *latency;   /* spawn latency; NULL until a sample, or out of budget */
	struct tmd_hist *run;       /* on-CPU time per ended task */
	struct tmd_hist *runq;      /* run-queue wait per ended task */
	bool no_hist;               /* the histogram budget refused one: quantiles incomplete */
};

/* tmd_task.flags */
#define TMD_T_REGISTRY  0x01u   /* seen in the registry */
#define TMD_T_KSTART    0x02u   /* a kernel start event */
#define TMD_T_LATENCY   0x04u   /* latency_ns, spawn_runq_ns are the kernel's */
#define TMD_T_KEND      0x08u   /* a kernel end event with totals */
#define TMD_T_FINISHED  0x10u   /* ended; on the workload's finished list */
#define TMD_T_EXITED    0x20u   /* closed out by its thread's exit (the process died) */
#define TMD_T_CRASHED   0x40u   /* a crash signal hit its thread while it ran */
#define TMD_T_PARTIAL   0x80u   /* an end event without totals */

/* One restart of a critical task, from its task_restart event. */
#define TMD_RESTART_HIST 8
struct tmd_restart {
	uint64_t at_ns;             /* when the library decided it (the event's time) */
	uint64_t delay_ms;          /* the backoff it then waited (0: at once, a group's restart) */
	uint64_t attempt;           /* restart number since the policy last started over */
};

/* What few tasks have, kept apart so that every other record stays small:
 * allocated when a task first restarts or is seen panicked or crashed. */
struct tmd_task_extra {
	char    *message;           /* printable ASCII from the message ring, the newest; NULL = none found */
	bool     message_looked;    /* the ring was searched since the task ended or last restarted */
	uint8_t  message_kind;      /* TM_SHM_MSG_PANIC / TM_SHM_MSG_CRASH when found */
	uint8_t  nrestarts;         /* entries in restarts, oldest first */
	uint64_t restart_events;    /* restart events in all (restarts[] keeps the last ones) */
	struct tmd_restart restarts[TMD_RESTART_HIST];
};

#define TMD_TYPE_UNKNOWN 0xffffu
#define TMD_STATUS_UNKNOWN (-1)

struct tmd_task {
	uint64_t id;                /* 0 = free record */
	uint64_t spawn_ns, start_ns, end_ns;        /* 0 = not (yet) known */
	uint64_t latency_ns, spawn_runq_ns;         /* kernel: task_spawn -> task_start, run-queue part */
	uint64_t oncpu_ns, runq_ns, blocked_ns;     /* kernel totals, all incarnations */
	uint64_t done_at;           /* collector clock when it was seen finished */
	uint32_t nvcsw, nivcsw, migrations;
	uint32_t incarnations;      /* kernel start events */
	uint32_t restarts;
	uint32_t tid;
	int32_t  rc;
	int8_t   status;            /* enum tm_status, TMD_STATUS_UNKNOWN */
	uint8_t  flags;             /* TMD_T_* */
	uint16_t type;              /* TMD_TYPE_UNKNOWN when not known */
	char     name[TM_NAME_MAX]; /* printable ASCII; "" when not known */
	uint32_t prev, next;        /* finished list / free list: index + 1, 0 = none */
	struct tmd_task_extra *extra;   /* NULL for most tasks */
};

/* Counters of a type: the library's (enum tm_counter), then the ones the
 * registry keeps beside them. */
enum { TMD_C_TRACE_SKIPPED = TM_C_COUNT,   /* tm_shm_type.trace_skipped */
       TMD_C_COUNT };

/* A type within a workload. */
struct tmd_wtype {
	char     name[TM_NAME_MAX]; /* "" = not registered, as far as known */
	uint64_t counters[TMD_C_COUNT];  /* the library's (enum tm_counter), then TMD_C_* */
	uint64_t lib_latency_count, lib_p50_ns, lib_p95_ns, lib_p99_ns, lib_max_ns;   /* the library's own */
	struct tmd_kfig k;
	int16_t  mtype;             /* index of its machine-wide type, -1 = not resolved yet */
};

struct tmd_workload {
	pid_t    pid;
	uid_t    uid;               /* owner of the process */
	unsigned long long start_ticks;
	char     comm[16];          /* printable ASCII */
	bool     alive;             /* false once gone: the figures are final */
	bool     has_registry;      /* a segment was found, validated, and is read */
	bool     exited;            /* its exit event came */
	bool     segment_removed;   /* gone, and no segment of it is left */
	int      exit_code, exit_signal;
	bool     core_dumped;
	uint64_t seen_ns, gone_ns, synced_ns;
	struct tm_stats stats;      /* the library's totals, last read; final once gone */
	struct tmd_wtype types[TM_MAX_TYPES];
	struct tmd_kfig k;
	uint64_t crashes, kills, restarts, giveups;
	uint64_t crash_signals[32]; /* crashes by signal number (1-31) */
	uint64_t invalid_records;   /* malformed records the reader skipped: a forged segment */
	uint64_t registry_errors;   /* reads that failed (truncated, malformed) */
	uint64_t tasks_dropped;     /* not kept: max_tasks reached with none finished */
	uint64_t untyped_events;    /* events whose task type was unknown or out of range */
	/* Task records: tasks[0, task_cap), id 0 = free. Finished ones are on a
	 * list in the order they finished, fin_head the oldest (index + 1). */
	struct tmd_task *tasks;
	uint32_t task_cap, task_count;
	uint32_t fin_head, fin_tail, free_head;
	uint32_t *index;            /* open addressing on id: index + 1, 0 = empty */
	uint32_t index_mask;
	tm_shm_reader *reader;      /* while alive and has_registry */
	uint64_t types_forced_ns;   /* last unscheduled re-read of the type names */
};

/* Machine-wide, by type name. */
#define TMD_MAX_MTYPES 64
struct tmd_mtype {
	char     name[TM_NAME_MAX]; /* "(other)" collects names beyond TMD_MAX_MTYPES */
	uint64_t departed[TMD_C_COUNT];   /* library counters of workloads that are gone */
	struct tmd_kfig k;
};

struct tmd_machine {
	struct tmd_kfig k;          /* every task event of every workload, gone or not */
	uint64_t departed[TMD_C_COUNT];   /* library counters of workloads that are gone */
	uint64_t workloads_seen, workloads_gone;
	size_t   ntypes;
	struct tmd_mtype types[TMD_MAX_MTYPES + 1];
};

struct tmd_merge_counters {
	uint64_t events;            /* records handed to tmd_merge_event */
	uint64_t malformed;         /* too short, or of an unknown kind */
	uint64_t unattributed;      /* for a process not followed (and not addable) */
	uint64_t tasks_kept;        /* records held now */
	uint64_t tasks_dropped;     /* not kept (a workload's records all running) */
	uint64_t tasks_evicted;     /* finished, dropped before their retention for room */
	uint64_t tasks_expired;     /* finished, dropped after their retention */
	uint64_t workloads_live, workloads_dead;
	uint64_t workloads_refused; /* max_workloads reached */
	uint64_t workloads_dropped; /* departed, forgotten after retention or over max_dead */
	uint64_t segments_removed;  /* stale registries deleted */
	uint64_t hist_bytes, hist_refused;
	uint64_t memory_bytes;      /* everything the merge holds, roughly */
};

int  tmd_merge_new(struct tmd_merge **out, const struct tmd_merge_opts *opts);
void tmd_merge_free(struct tmd_merge *m);
const struct tmd_merge_opts *tmd_merge_options(const struct tmd_merge *m);

/* Follows a live process: its owner, comm, start time, and its registry when
 * it has a valid one owned by the same user. 0 (also when already followed),
 * -ESRCH when it is gone, -ENOSPC at max_workloads, -ENOMEM. */
int  tmd_merge_add(struct tmd_merge *m, pid_t pid, uint64_t now_ns);
bool tmd_merge_follows(const struct tmd_merge *m, pid_t pid);

/* One ring-buffer record. 0, or -EBADMSG for a malformed one (counted). An
 * event for a process not followed yet adds it. */
int  tmd_merge_event(struct tmd_merge *m, const void *data, size_t len, uint64_t now_ns);

/* The process is gone: final figures from its registry, its counters into
 * the machine-wide departed totals, its stale segment removed. No-op for a
 * pid not followed. */
void tmd_merge_gone(struct tmd_merge *m, pid_t pid, uint64_t now_ns);

/* Housekeeping, cheap enough for every turn of the loop: registry re-reads
 * that are due (a few workloads per call), processes found gone (handled as
 * by tmd_merge_gone and listed in gone, up to cap; returns how many), stale
 * segments retried, finished tasks and departed workloads past retention
 * dropped (a bounded number per call). */
size_t tmd_merge_tick(struct tmd_merge *m, uint64_t now_ns, pid_t *gone, size_t cap);

/* Re-reads every live workload's registry last read more than max_age_ns ago. */
void tmd_merge_refresh(struct tmd_merge *m, uint64_t now_ns, uint64_t max_age_ns);

/* Reading the figures (valid until the next call that changes the merge). */
/* The workload of that pid (live first, else the latest gone), or NULL. */
const struct tmd_workload *tmd_merge_find_workload(const struct tmd_merge *m, pid_t pid);
/* A task kept for that workload, or NULL: its name and type for a crash record. */
const struct tmd_task *tmd_merge_find_task(const struct tmd_merge *m, pid_t pid, uint64_t id);
size_t tmd_merge_workload_count(const struct tmd_merge *m);          /* live, then departed */
const struct tmd_workload *tmd_merge_workload_at(const struct tmd_merge *m, size_t i);
const struct tmd_machine *tmd_merge_machine(const struct tmd_merge *m);
void tmd_merge_get_counters(const struct tmd_merge *m, struct tmd_merge_counters *out);
/* The library counters of a machine-wide type: departed plus every live workload's. */
void tmd_merge_mtype_counters(const struct tmd_merge *m, size_t mtype, uint64_t out[TMD_C_COUNT]);
/* ... and in all. */
void tmd_merge_machine_counters(const struct tmd_merge *m, uint64_t out[TMD_C_COUNT]);
/* A type's name within a workload: the registry's, else the built-in name,
 * else "" (unknown). */
const char *tmd_workload_type_name(const struct tmd_workload *w, unsigned type);

#endif
