/* libtaskmon: named, typed, tracked tasks on pthreads.
 *
 * Every task runs on its own kernel thread for its whole life (threads are
 * cached and reused between tasks), is announced through USDT probes
 * (provider "taskmon") and is published in a shared-memory registry
 * /dev/shm/taskmon.<pid> that taskmond and tasktop read.
 *
 * Errors are negative errno values; tm_last_error() gives a sentence that
 * says exactly what was wrong, for the last failure on the calling thread.
 */
#ifndef TASKMON_H
#define TASKMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif
/* Everything declared here is the exported ABI; the rest of the library is hidden. */
#pragma GCC visibility push(default)

/* ---- task types ---------------------------------------------------------- */
enum { TM_GENERAL, TM_NETWORK, TM_DATABASE, TM_GAME_LOGIC, TM_CONSENSUS,
       TM_MAINTENANCE, TM_UI, TM_BACKGROUND, TM_BUILTIN_TYPES };
#define TM_MAX_TYPES 32
#define TM_NAME_MAX  32            /* bytes, NUL included */

/* Registers a further named type (same name rules as task names). Returns its
 * id, the existing id when the name is already registered, -EINVAL for a bad
 * name, -ENOSPC when all TM_MAX_TYPES ids are taken. */
int         tm_type_register(const char *name);
/* "general", "network", ...; NULL for an id that is not registered. */
const char *tm_type_name(int type);

/* ---- statuses ------------------------------------------------------------ */
enum tm_status { TM_RUNNING, TM_SUCCEEDED, TM_FAILED, TM_PANICKED, TM_CANCELLED, TM_TIMED_OUT,
                 TM_CRASHED /* a contained fault: see contain_faults */ };
#define TM_STATUS_COUNT 7
const char *tm_status_name(enum tm_status s);   /* "running", ...; "unknown" when out of range */

/* ---- spawning ------------------------------------------------------------ */
typedef struct tm_task tm_task;
typedef struct tm_group tm_group;
typedef int (*tm_fn)(void *arg);  /* 0 = success, any other value = failure code */

struct tm_spawn_opts {
	size_t   sz;          /* sizeof(struct tm_spawn_opts): the struct may grow without breaking callers */
	int      type;        /* default TM_GENERAL */
	uint64_t timeout_ms;  /* 0 = the type's configured default (which may be none) */
	size_t   stack_size;  /* 0 = configured default */
	tm_group *group;      /* the task belongs to this group (tm_group_new); NULL = none */
};
#define TM_SPAWN_OPTS(...) (&(struct tm_spawn_opts){ .sz = sizeof(struct tm_spawn_opts), __VA_ARGS__ })

/* Optional; NULL = $TASKMON_CONFIG or built-in defaults. Idempotent: a second
 * call with the library already running returns 0 and changes nothing.
 * -EINVAL for a bad configuration file (tm_last_error names file, line, key),
 * -errno when the file cannot be read or the registry cannot be created. */
int  tm_init(const char *config_path);
/* tm_init with options that may also come from the file; a field set here wins. */
struct tm_init_opts {
	size_t sz;
	const char *config_path;  /* as for tm_init */
	bool contain_faults;      /* true: see "fault containment" below; else the file decides */
};
#define TM_INIT_OPTS(...) (&(struct tm_init_opts){ .sz = sizeof(struct tm_init_opts), __VA_ARGS__ })
int  tm_init_opts(const struct tm_init_opts *opts);
/* Cancels and joins all tasks, removes the shared-memory segment. Handles
 * still held stay valid for tm_join/tm_release. tm_init may be called again. */
void tm_shutdown(void);
const char *tm_last_error(void);

/* out may be NULL: detached. opts may be NULL. Returns 0, -EINVAL (bad name,
 * type, options), -EAGAIN (a concurrency limit is reached, or the kernel
 * refused a thread), -ENOMEM, -ECANCELED (opts->group is being freed, or has
 * failed under cancel_on_failure). Calls tm_init(NULL) when needed. */
int  tm_spawn(tm_task **out, const char *name, tm_fn fn, void *arg, const struct tm_spawn_opts *opts);
/* timeout_ms < 0 waits forever; -ETIMEDOUT leaves the task running and the
 * handle valid. On 0 the handle is consumed (released). status and rc may be NULL. */
int  tm_join(tm_task *t, int64_t timeout_ms, enum tm_status *status, int *rc);
void tm_release(tm_task *t);      /* drop a handle; the task runs on, detached */
/* 0 when the cancel was delivered, -ESRCH when the task had already ended. */
int  tm_cancel(tm_task *t);
/* Returns how many running (or pending) tasks of that type were cancelled,
 * or -EINVAL for an unregistered type. */
int  tm_cancel_type(int type);
uint64_t tm_task_id(const tm_task *t);

/* ---- inside a task --------------------------------------------------------- */
bool tm_cancelled(void);          /* true once cancelled or past its deadline; false outside tasks */
/* 0 after sleeping ms, or -ECANCELED at once when the task is cancelled or
 * times out. Outside a task it is a plain sleep. */
int  tm_sleep_ms(uint64_t ms);
/* Ends this task as TM_PANICKED with the formatted message kept; the process
 * carries on. Outside a task it prints the message and aborts. */
_Noreturn void tm_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t tm_current_id(void);     /* id of the calling task, 0 outside tasks */

/* ---- statistics ------------------------------------------------------------ */
struct tm_type_stats { uint64_t spawned, running, succeeded, failed, panicked, cancelled, timed_out, restarts, rejected;
                       uint64_t crashed, escalations; };
struct tm_stats {
	uint64_t total_spawned, currently_running, total_completed /* = succeeded */, total_failed,
	         total_panicked, total_cancelled, total_timed_out, total_restarts, total_rejected;
	uint64_t spawn_latency_p50_ns, spawn_latency_p95_ns, spawn_latency_p99_ns, spawn_latency_max_ns;
	uint64_t tracked_records, tracker_bytes;
	struct tm_type_stats by_type[TM_MAX_TYPES];
	uint64_t total_crashed, total_escalations;
};
int tm_get_stats(struct tm_stats *out);
/* Latency quantile (0 < q <= 1) for one type, or for all types with type = -1. */
int tm_spawn_latency_ns(int type, double q, uint64_t *out_ns);

struct tm_task_info { uint64_t id; pid_t tid; int type; enum tm_status status; int rc;
                      char name[TM_NAME_MAX]; uint64_t spawn_ns, start_ns, end_ns, cpu_ns; unsigned restarts; };
/* Returns the number written (at most cap). Times are CLOCK_MONOTONIC ns;
 * start_ns/end_ns are 0 until the task starts/ends; cpu_ns is filled when it ends. */
int tm_list_tasks(struct tm_task_info *out, size_t cap, bool running_only);
/* Panic message of a task that ended TM_PANICKED, copied into buf; -ENOENT otherwise. */
int tm_task_message(uint64_t id, char *buf, size_t len);
/* Drops finished records at least that old; returns how many. */
int tm_cleanup(uint64_t older_than_ms);

/* ---- supervision: critical tasks ------------------------------------------------ */
enum tm_restart { TM_RESTART_NEVER, TM_RESTART_ALWAYS, TM_RESTART_ON_PANIC, TM_RESTART_ON_FAILURE };
enum tm_backoff_kind { TM_BACKOFF_FIXED, TM_BACKOFF_LINEAR, TM_BACKOFF_EXPONENTIAL, TM_BACKOFF_FIBONACCI };
enum tm_jitter { TM_JITTER_NONE, TM_JITTER_FULL, TM_JITTER_EQUAL, TM_JITTER_DECORRELATED };
struct tm_backoff { enum tm_backoff_kind kind; uint64_t base_ms, max_ms; double multiplier; enum tm_jitter jitter; };

/* Delay before restart number `attempt` (1-based), in ms:
 *   fixed        base
 *   linear       base * attempt
 *   exponential  base * multiplier^(attempt - 1)
 *   Fibonacci    base * F(attempt), F(1) = F(2) = 1 (O(log attempt) time, O(1) memory)
 * capped at max_ms (0 = no cap) without overflow for any attempt. Then jitter:
 *   full          uniform(0, d)
 *   equal         d/2 + uniform(0, d/2)
 *   decorrelated  min(max_ms, uniform(base, prev_ms * 3)), prev_ms = base on the first attempt
 * rng is caller-owned splitmix64 state (any value, 0 included), so that
 * sequences are reproducible. attempt 0 is treated as 1; NULL b gives 0. */
uint64_t tm_backoff_delay_ms(const struct tm_backoff *b, unsigned attempt, uint64_t prev_ms, uint64_t *rng);

struct tm_critical_opts {
	size_t sz;                       /* sizeof, as for tm_spawn_opts */
	int type;
	enum tm_restart restart;         /* default TM_RESTART_NEVER: set it */
	struct tm_backoff backoff;       /* all zero = fixed 100 ms (capped at 30 s); otherwise as given:
	                                    base_ms 0 restarts at once, max_ms 0 = no cap, multiplier 0 =
	                                    the configured panic_backoff_multiplier */
	unsigned max_restarts;           /* within window_ms; 0 = the configured max_restarts */
	uint64_t window_ms;              /* restart intensity period; 0 = count over the whole life */
	uint64_t reset_after_ms;         /* a run healthy this long resets the attempt counter; 0 = never */
	bool (*should_restart)(enum tm_status status, int rc, void *arg);  /* optional: overrides `restart` */
	tm_group *group;                 /* member of this group, under its restart strategy */
	size_t stack_size;               /* 0 = configured default */
};
#define TM_CRITICAL_OPTS(...) (&(struct tm_critical_opts){ .sz = sizeof(struct tm_critical_opts), __VA_ARGS__ })
/* A task that is started again, by calling fn(arg) afresh, after it ends in a
 * way its policy restarts, after the backoff delay; under the same id, each run
 * an incarnation. Gives up (an escalation) after more than max_restarts
 * restarts within window_ms, ending with its last status. A cancel always wins:
 * it is never restarted after one, and a cancel during a backoff delay ends it
 * at once. No timeout applies to critical tasks. Errors as tm_spawn. */
int tm_spawn_critical(tm_task **out, const char *name, tm_fn fn, void *arg, const struct tm_critical_opts *opts);

/* ---- structured concurrency: groups and chains ------------------------------------- */
enum tm_group_strategy {
	TM_ONE_FOR_ONE,   /* a critical member that restarts restarts alone (default) */
	TM_ONE_FOR_ALL,   /* ... every other member is stopped (in reverse spawn order), and the other
	                     critical members restart with it; plain members stay stopped */
	TM_REST_FOR_ONE,  /* ... the same for the members spawned after it */
};
struct tm_group_opts {
	size_t sz;
	bool cancel_on_failure;          /* the first member that ends failed, panicked, timed out or
	                                    crashed cancels the rest (errgroup) */
	unsigned max_concurrent;         /* members running at once; 0 = unlimited. tm_spawn into a full
	                                    group waits for room; tm_group_try_spawn returns -EAGAIN */
	enum tm_group_strategy strategy;
};
#define TM_GROUP_OPTS(...) (&(struct tm_group_opts){ .sz = sizeof(struct tm_group_opts), __VA_ARGS__ })
int  tm_group_new(tm_group **out, const char *name);
int  tm_group_new_opts(tm_group **out, const char *name, const struct tm_group_opts *opts);
/* tm_spawn that never waits: -EAGAIN at once when the group is full. opts->group must be set. */
int  tm_group_try_spawn(tm_task **out, const char *name, tm_fn fn, void *arg, const struct tm_spawn_opts *opts);
struct tm_result { uint64_t id; char name[TM_NAME_MAX]; enum tm_status status; int rc; };
/* Waits until every member has ended; results in spawn order (at most cap);
 * returns how many members there are. -ETIMEDOUT leaves the group intact. */
int  tm_group_wait_all(tm_group *g, int64_t timeout_ms, struct tm_result *results, size_t cap);
int  tm_group_cancel(tm_group *g);            /* cancels every member; returns how many were running */
void tm_group_free(tm_group *g);              /* cancels and joins what is left: nothing outlives its group */

struct tm_chain_step { const char *name; tm_fn fn; void *arg; int type; uint64_t timeout_ms; };
/* Runs the steps as tracked tasks one after another and stops at the first
 * that does not succeed. results[i] is filled for every step that ran;
 * returns how many ran, or a negative errno when a step could not be spawned
 * (results hold the steps before it). */
int  tm_chain(const struct tm_chain_step *steps, size_t n, struct tm_result *results);

/* ---- fault containment (opt-in: contain_faults) -------------------------------------
 * With it on, a synchronous SIGSEGV, SIGBUS, SIGFPE or SIGILL raised by a
 * task's own code on a task thread ends that task TM_CRASHED; its thread is
 * retired, and every other task keeps running. A fault anywhere else, or inside
 * libtaskmon, still terminates the process with the original signal. It cannot
 * release locks the task held or free its memory. */
struct tm_crash_info { int signo, code; uint64_t addr, ip; };
/* Crash details of a task that ended TM_CRASHED; -ENOENT otherwise. */
int tm_task_crash(uint64_t id, struct tm_crash_info *out);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
