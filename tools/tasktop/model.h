/* tasktop's model: one sample of everything the screens show, built by a
 * source (source.h: the collector's socket, the workloads' shared memory, or
 * a record directory) and never touched by drawing code except to read it.
 *
 * Data gathering and drawing are separate (htop's Machine/Table split): this
 * header and its modules know nothing of curses, and the screens render from a
 * struct tt_model alone, which is what lets them be tested on fixed input.
 *
 * Conventions:
 *   - Times are nanoseconds. *_ns instants are CLOCK_MONOTONIC (the clock of
 *     the registry and of the kernel events), *_unix_ns are CLOCK_REALTIME.
 *   - Integers from the data are clamped to [0, 2^63 - 1]; doubles are finite.
 *   - Strings are kept as the data gave them (up to the array's size, always
 *     NUL-terminated) and flagged when they hold anything a terminal must not
 *     see raw (control bytes, bytes >= 0x7f, an embedded NUL where the data
 *     was cut); drawing code escapes flagged strings (tt_escape helps).
 *   - "Derived" fields (rates, percentages, deltas, warnings, trends) need the
 *     previous sample: tt_model_diff(prev, cur) fills them; until then their
 *     *_valid flag is false.
 *   - Everything a model points to is owned by it: tt_model_free releases it.
 *   - Counts taken from the data never size an allocation beyond the TT_MAX_*
 *     bounds below; data beyond them is counted in `dropped_*`, not kept.
 */
#ifndef TASKTOP_MODEL_H
#define TASKTOP_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "taskmon.h"
#include "taskmon_shm.h"   /* enum tm_counter (TM_C_*), TM_HIST_BUCKETS */

/* ---- bounds --------------------------------------------------------------- */
#define TT_NAME_CAP        64      /* task and type names (the library's are < 32) */
#define TT_COMM_CAP        32      /* workload command names (the kernel's are < 16) */
#define TT_TEXT_CAP        256     /* sentences: status, reasons, warnings */
#define TT_PATH_CAP        256
#define TT_MAX_WORKLOADS   4096
#define TT_MAX_TYPES       64      /* per workload (ids >= this are dropped) */
#define TT_MAX_MTYPES      256     /* machine-wide types */
#define TT_MAX_TASKS       65536
#define TT_MAX_CRASHES     512     /* newest kept */
#define TT_MAX_FRAMES      64      /* per crash */
#define TT_MAX_WARNINGS    1024
#define TT_TREND_N         16      /* samples of history kept for trends (leak warning) */
#define TT_RESTART_HIST_N  8       /* observed restarts kept per task; restarts with delays too */
#define TT_MESSAGE_CAP     512     /* panic messages (the collector's are < 120 bytes) */

/* tt_str.flags */
#define TT_STR_CTRL   1u   /* holds a control byte, DEL, or a byte >= 0x80: escape before drawing */
#define TT_STR_TRUNC  2u   /* longer than the array: cut */
#define TT_STR_BADTYPE 4u  /* the data had a non-string here (kept empty) */

/* ---- sources -------------------------------------------------------------- */
enum tt_source_kind {
	TT_SRC_LIVE,         /* taskmond's snapshot socket: library and kernel figures merged */
	TT_SRC_STANDALONE,   /* /dev/shm/taskmon.* the user can read: library figures only */
	TT_SRC_REPLAY,       /* a record directory (taskmond --record) */
};

enum tt_health {
	TT_HEALTH_OK,        /* fresh data */
	TT_HEALTH_DEGRADED,  /* data, but something is off (kernel figures off, records skipped, lost events) */
	TT_HEALTH_STALE,     /* this is the last good sample; the source is failing (collector gone, reconnecting) */
	TT_HEALTH_NONE,      /* no data at all yet */
};

/* ---- figures shared by every level ---------------------------------------- */

/* A latency histogram as quantiles (the collector's HIST). `buckets`, when
 * not NULL, is the whole log-linear histogram (TM_HIST_BUCKETS counts, see
 * tm_hist_bucket_low/mid): only the standalone source has those. */
struct tt_hist {
	bool      present;             /* the data had this histogram */
	uint64_t  count, mean_ns, p50_ns, p95_ns, p99_ns, max_ns;
	uint64_t *buckets;             /* NULL, or TM_HIST_BUCKETS counts owned by the model */
};

/* Kernel figures of a set of tasks (the collector's KFIG): ended tasks only
 * for the time sums. */
struct tt_kfig {
	bool     present;              /* the data had them (false: standalone, or missing) */
	uint64_t tasks_started, spawns_seen, tasks_ended, tasks_partial;
	uint64_t spawn_runq_ns;
	uint64_t oncpu_ns, runq_ns, blocked_ns;
	uint64_t voluntary_switches, involuntary_switches, migrations;
	bool     histograms_complete;
	struct tt_hist spawn_latency;  /* task_spawn -> task_start, kernel clock */
	struct tt_hist run_time;       /* on-CPU time per ended task */
};

/* The library's counters (enum tm_counter order) and, derived, what changed. */
/* Counters: the library's (enum tm_counter), then the registry's others. */
enum { TT_C_TRACE_SKIPPED = TM_C_COUNT,   /* spawned past kernel_trace_rate: no kernel figures */
       TT_C_COUNT };

struct tt_counters {
	uint64_t c[TT_C_COUNT];
	/* derived by tt_model_diff: growth since the previous sample (0 when a
	 * counter went backwards: a restarted workload or collector) */
	bool     delta_valid;
	uint64_t delta[TT_C_COUNT];
};

/* A string from the data. */
struct tt_name {
	char     s[TT_NAME_CAP];
	unsigned flags;                /* TT_STR_* */
};
struct tt_comm {
	char     s[TT_COMM_CAP];
	unsigned flags;
};

/* ---- collector ------------------------------------------------------------ */
struct tt_collector {
	bool     present;              /* false: standalone/replay without a collector object */
	pid_t    pid;
	char     mode[16];             /* "tp_btf", "raw_tp", "" */
	uint64_t uptime_ns;
	uint64_t events, lost, malformed, unattributed, spawn_missed, watched;
	uint64_t registrations, registrations_refused, snapshots, clients;
	uint64_t tasks_kept, tasks_dropped, tasks_evicted, tasks_expired;
	uint64_t workloads_live, workloads_dead, workloads_refused, workloads_dropped;
	uint64_t hist_bytes, hist_refused, memory_bytes;
	uint64_t max_tasks, max_tasks_total, max_workloads;
	double   retention_s;
	char     socket[TT_PATH_CAP];
	char     state_dir[TT_PATH_CAP];
	/* its own resources, when known (live: /proc/<pid>/stat if readable;
	 * replay: the record's "collector" object) */
	bool     cpu_known;
	uint64_t cpu_ns;               /* utime + stime, cumulative */
	uint64_t rss_bytes;            /* 0 = not known */
	/* derived */
	bool     rates_valid;
	uint64_t lost_delta;           /* events lost in the interval */
	uint64_t events_delta;
	double   events_per_s;
	double   cpu_pct;              /* of one core, over the interval; valid with rates_valid && cpu_known */
};

/* ---- types ---------------------------------------------------------------- */

/* One type within one workload: a row of the Types screen. */
struct tt_type {
	int      id;                   /* the workload's type id, 0..TT_MAX_TYPES-1 */
	struct tt_name name;
	struct tt_counters reg;        /* the library's counters */
	struct tt_hist lib_latency;    /* the library's spawn latency (no mean) */
	struct tt_kfig k;
	/* derived */
	bool     rates_valid;
	double   spawned_per_s;
	double   cpu_pct;              /* on-CPU time of its tasks in the interval / interval, of one core */
	uint64_t cpu_interval_ns;      /* the on-CPU time behind cpu_pct */
	uint32_t running_trend[TT_TREND_N];   /* running count, oldest first; ntrend valid entries at the end */
	uint8_t  ntrend;
	unsigned warnings;             /* TT_W_* bits (TT_W_LEAK, TT_W_SAMPLED, TT_W_RESTART_LOOP) */
};

/* Machine-wide, by type name. */
struct tt_mtype {
	struct tt_name name;
	struct tt_counters reg;
	struct tt_kfig k;
	bool     rates_valid;
	double   spawned_per_s;
};

/* ---- workloads ------------------------------------------------------------ */
struct tt_workload {
	pid_t    pid;
	struct tt_comm comm;
	uid_t    uid;                  /* (uid_t)-1 = not known */
	uint64_t start_ticks;
	bool     alive, has_registry, exited;
	bool     exit_known;           /* exit_* below are set */
	int      exit_code, exit_signal;
	bool     core_dumped;
	bool     segment_removed;
	bool     closed;               /* standalone: the workload called tm_shutdown (figures final) */
	uint64_t seen_ns, gone_ns;
	uint64_t crashes, kills, restarts, giveups;
	uint64_t invalid_records, registry_errors, tasks_kept, tasks_dropped, untyped_events;
	struct tt_counters reg;        /* the library's totals */
	struct tt_hist lib_latency;    /* the library's spawn latency, all types */
	uint64_t tracked_records, tracker_bytes;
	struct tt_kfig k;
	struct tt_type *types;         /* ntypes, in id order */
	size_t   ntypes;
	/* its process, when known (live and standalone: /proc; replay: the record) */
	bool     proc_known;
	uint64_t proc_cpu_ns, proc_rss_bytes, proc_threads;
	/* derived */
	bool     rates_valid;
	double   spawned_per_s;
	double   cpu_pct;              /* the whole process (proc_cpu_ns delta), of one core */
	double   task_cpu_pct;         /* sum of its types' cpu_pct */
	uint64_t crashes_delta;
	uint32_t running_trend[TT_TREND_N];
	uint8_t  ntrend;
};

/* ---- tasks ---------------------------------------------------------------- */

/* tm_status values, plus one for a status the data did not name. */
enum tt_state {
	TT_ST_RUNNING = TM_RUNNING, TT_ST_SUCCEEDED = TM_SUCCEEDED, TT_ST_FAILED = TM_FAILED,
	TT_ST_PANICKED = TM_PANICKED, TT_ST_CANCELLED = TM_CANCELLED, TT_ST_TIMED_OUT = TM_TIMED_OUT,
	TT_ST_CRASHED = TM_CRASHED, TT_ST_UNKNOWN, TT_ST_COUNT
};

/* How a task's percentages were obtained. */
enum tt_pct_basis {
	TT_PCT_NONE,       /* not known (first sample, no kernel figures, /proc not readable) */
	TT_PCT_INTERVAL,   /* a running task over the last interval (/proc/<pid>/task/<tid>/schedstat deltas) */
	TT_PCT_LIFETIME,   /* a finished task over its run (the collector's kernel totals) */
};

struct tt_task_kernel {
	bool     present;              /* the data had the task's "kernel" object */
	bool     started, ended, exited, crashed, partial;
	bool     spawn_latency_known;
	uint64_t spawn_latency_ns, spawn_runq_ns;
	uint64_t oncpu_ns, runq_ns, blocked_ns;          /* ended incarnations only */
	uint64_t voluntary_switches, involuntary_switches, migrations, incarnations;
};

/* What tasktop itself read from /proc for a running task's thread. */
struct tt_task_proc {
	bool     valid;                /* schedstat read for this tid while this task ran on it */
	uint64_t oncpu_ns, runq_ns, timeslices;          /* the thread's, cumulative (schedstat) */
	bool     switches_known;       /* /proc/.../status read (only for busy tasks: it costs more) */
	uint64_t voluntary_switches, involuntary_switches;
	uint64_t read_ns;              /* CLOCK_MONOTONIC when read: the percentages' wall time (0 = the model's) */
};

/* One restart of a critical task as the kernel side saw it (the snapshot's
 * restart_history). */
struct tt_restart_delay {
	uint64_t at_ns;                /* CLOCK_MONOTONIC: when it was decided */
	uint64_t attempt;              /* restart number since the policy last started over */
	uint64_t delay_ms;             /* backoff before it (0: at once) */
};

struct tt_restart_obs {
	uint64_t seen_unix_ns;         /* sample in which the count was seen to grow */
	uint32_t restarts;             /* the count then */
};

struct tt_task {
	size_t   widx;                 /* index into model->workloads; SIZE_MAX when its workload is not listed */
	pid_t    pid;
	uint64_t id;
	uint32_t tid;                  /* 0 = not started / not known */
	struct tt_name name;
	int      type;                 /* -1 = not known */
	struct tt_name type_name;
	enum tt_state state;
	bool     pending;              /* running but not started yet (queued or between incarnations) */
	bool     finished;
	int      rc;
	uint32_t restarts;
	uint64_t spawn_ns, start_ns, end_ns;   /* 0 = not known / not yet */
	uint64_t age_ns;               /* running: now - spawn; finished: end - spawn */
	uint64_t run_ns;               /* running: now - start; finished: end - start; 0 when not started */
	struct tt_task_kernel k;
	struct tt_task_proc proc;
	uint64_t lib_cpu_ns;           /* the library's thread CPU of the body, set at its end (standalone); 0 = not known */
	/* Panic message of a panicked task, or the description of a contained
	 * fault of a crashed one: the snapshot's "message" (live, replay) or the
	 * workload's message ring (standalone); NULL when none. Raw bytes, at
	 * most TT_MESSAGE_CAP - 1 of them: draw via tt_escape(). */
	char    *panic_message;
	/* Restarts with their delays, oldest first (the last TT_RESTART_HIST_N);
	 * known only from a collector that reports them (restart_history). */
	bool     restart_delays_known;
	uint8_t  nrestart_delays;
	struct tt_restart_delay restart_delays[TT_RESTART_HIST_N];
	/* derived */
	enum tt_pct_basis pct_basis;
	double   cpu_pct, runq_pct, blocked_pct;          /* of wall time, 0..100 */
	bool     runq_known;           /* runq_pct and blocked_pct are known (not with the library's CPU time alone) */
	uint64_t cpu_since_voluntary_ns;   /* on-CPU time since its last voluntary switch was seen */
	uint64_t live_cpu_ns;          /* on-CPU time tasktop saw while it ran (interval deltas summed) */
	struct tt_restart_obs restart_hist[TT_RESTART_HIST_N];   /* oldest first */
	uint8_t  nrestart_hist;
	unsigned warnings;             /* TT_W_* bits */
};

/* ---- crashes (the Crashes screen; user/crashlog.h's records) -------------- */
struct tt_frame {
	uint64_t addr;
	bool     offset_known;
	uint64_t offset;               /* in the module */
	char     module[TT_PATH_CAP];  /* "" = not known */
	char     symbol[TT_NAME_CAP * 2];   /* "" = not known */
	bool     symbol_offset_known;
	uint64_t symbol_offset;
	unsigned flags;                /* TT_STR_* over module and symbol */
};

struct tt_crash {
	uint64_t time_unix_ns;         /* from "time" (0 when it did not parse) */
	char     time[40];             /* as written, e.g. "2025-01-31T12:00:00.123Z" */
	uint64_t ts_ns;                /* monotonic */
	pid_t    pid;
	uint32_t tid, sender_pid;
	struct tt_comm comm, thread;
	bool     task_known;
	uint64_t task_id;
	struct tt_name task_name, type_name;
	int      type_id;              /* -1 = not known */
	char     signal[16], code[24]; /* "" for numbers without a name */
	int      signo, si_code;
	bool     fault_addr_known;
	uint64_t fault_addr;
	struct tt_frame *frames;       /* nframes, top (faulting) first */
	size_t   nframes;
	uint64_t frames_dropped;
	int      stack_error;          /* 0 or the kernel's negative errno */
};

/* ---- warnings ------------------------------------------------------------- */
enum tt_warn_kind {
	TT_WK_NO_YIELD,      /* on CPU for over a second without a voluntary switch */
	TT_WK_STARVED,       /* run-queue wait above half of wall time */
	TT_WK_RESTART_LOOP,  /* a critical task restarting over and over */
	TT_WK_LEAK,          /* a type's running count growing steadily */
	TT_WK_LOST_EVENTS,   /* the kernel dropped events in the interval */
	TT_WK_SAMPLED,       /* a type spawned past kernel_trace_rate in the interval */
	TT_WK_COUNT
};
#define TT_W_NO_YIELD      (1u << TT_WK_NO_YIELD)
#define TT_W_STARVED       (1u << TT_WK_STARVED)
#define TT_W_RESTART_LOOP  (1u << TT_WK_RESTART_LOOP)
#define TT_W_LEAK          (1u << TT_WK_LEAK)
#define TT_W_LOST_EVENTS   (1u << TT_WK_LOST_EVENTS)
#define TT_W_SAMPLED       (1u << TT_WK_SAMPLED)

struct tt_warning {
	enum tt_warn_kind kind;
	pid_t    pid;                  /* 0 = machine-wide */
	uint64_t task_id;              /* 0 = not about one task */
	int      type;                 /* -1 = not about one type */
	size_t   task_index;           /* into model->tasks; SIZE_MAX when not about a listed task */
	char     text[TT_TEXT_CAP];    /* one sentence, printable ASCII (names escaped) */
};

/* ---- the model ------------------------------------------------------------ */
struct tt_replay_pos {
	size_t   index, count;         /* record index in [0, count) */
	uint64_t first_unix_ns, last_unix_ns;
	size_t   skipped;              /* lines that did not parse */
	uint64_t record_seq;           /* the record's own "seq" */
};

struct tt_model {
	enum tt_source_kind source;
	enum tt_health health;
	char     status[TT_TEXT_CAP];  /* one sentence for the header: "live from ...", "collector gone: reconnecting" */
	bool     kernel_figures;       /* false: library figures only */
	/* why not, e.g. "no collector at /run/taskmon/taskmond.sock: kernel figures off" */
	char     kernel_off_reason[TT_TEXT_CAP];
	bool     proc_figures;         /* running tasks' CPU/run-queue from /proc schedstat */
	bool     filtered;             /* the collector only showed this user's workloads */
	int      snapshot_version;

	uint64_t seq;                  /* samples taken by this source, from 1 */
	uint64_t now_ns, now_unix_ns;
	bool     interval_valid;
	uint64_t interval_ns;          /* since the previous sample */

	struct tt_replay_pos replay;   /* TT_SRC_REPLAY only */

	struct tt_collector collector;

	/* machine-wide */
	uint64_t workloads_seen, workloads_live, workloads_gone;
	struct tt_counters machine_reg;
	struct tt_kfig machine_k;
	struct tt_mtype *mtypes;
	size_t   nmtypes;

	struct tt_workload *workloads; /* live ones first, then those gone */
	size_t   nworkloads;

	struct tt_task *tasks;         /* per workload: running, then finished newest first */
	size_t   ntasks;
	uint64_t tasks_omitted;        /* the collector left them out (max_tasks) */

	struct tt_crash *crashes;      /* oldest first, newest TT_MAX_CRASHES */
	size_t   ncrashes;
	bool     crashes_known;        /* a crash log was found and read */
	char     crashes_source[TT_PATH_CAP];   /* the file read, or why none: "" */

	struct tt_warning *warnings;
	size_t   nwarnings;

	/* header figures (derived; valid with interval_valid) */
	uint64_t tasks_running;
	double   spawned_per_s;
	struct tt_hist header_latency; /* kernel spawn latency when present, else the library's (no buckets) */
	bool     header_latency_kernel;
	uint64_t failed_delta, panicked_delta, crashed_delta, timed_out_delta;

	/* what the data held beyond the bounds, or malformed */
	uint64_t dropped_workloads, dropped_types, dropped_tasks, dropped_crashes;
	uint64_t bad_fields;           /* fields of the wrong type or out of range, tolerated */

	/* Owners: tt_model_ref adds one, tt_model_free drops one. A source keeps
	 * a reference to the sample it handed out (its next derivation reads it),
	 * so a model from a source is read-only: sort an index, not the arrays. */
	unsigned refs;
};

/* ---- functions (model.c) -------------------------------------------------- */
struct tt_model *tt_model_new(enum tt_source_kind source);   /* zeroed; NULL on ENOMEM */
void tt_model_free(struct tt_model *m);            /* drops a reference; frees with the last */
struct tt_model *tt_model_ref(struct tt_model *m);   /* another reference to the same model */
/* A deep copy (the UI may keep one while the source fills the next). NULL on ENOMEM. */
struct tt_model *tt_model_copy(const struct tt_model *m);

struct tt_workload *tt_model_find_workload(const struct tt_model *m, pid_t pid);
/* index into m->tasks or SIZE_MAX */
size_t tt_model_find_task(const struct tt_model *m, pid_t pid, uint64_t id);
struct tt_type *tt_workload_find_type(const struct tt_workload *w, int id);

/* Derived figures of cur from prev (prev may be NULL: cur's derived fields
 * are reset and marked invalid); then the warnings (warnings.h) with default
 * thresholds. cur keeps no pointer into prev. 0 or -ENOMEM. */
int  tt_model_diff(const struct tt_model *prev, struct tt_model *cur);

/* Sets status and health in one call (printf-like). */
void tt_model_set_status(struct tt_model *m, enum tt_health h, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const char *tt_state_name(enum tt_state s);   /* "running", ..., "unknown" */
const char *tt_source_kind_name(enum tt_source_kind k);   /* "live", "standalone", "replay" */
/* "no-yield", "starved", "restart-loop", "leak", "lost-events" */
const char *tt_warn_kind_name(enum tt_warn_kind k);

/* Copies raw into out (cap bytes, NUL-terminated) with every byte below 0x20,
 * 0x7f and >= 0x80 written as \xHH and a backslash as \\. Returns the length
 * written (without the NUL). For drawing flagged strings. */
size_t tt_escape(const char *raw, char *out, size_t cap);

/* The flags TT_STR_* that s (len bytes) would get; for sources filling strings. */
unsigned tt_str_flags(const char *s, size_t len);

#endif
