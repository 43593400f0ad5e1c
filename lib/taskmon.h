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
enum tm_status { TM_RUNNING, TM_SUCCEEDED, TM_FAILED, TM_PANICKED, TM_CANCELLED, TM_TIMED_OUT };
#define TM_STATUS_COUNT 6
const char *tm_status_name(enum tm_status s);   /* "running", ...; "unknown" when out of range */

/* ---- spawning ------------------------------------------------------------ */
typedef struct tm_task tm_task;
typedef int (*tm_fn)(void *arg);  /* 0 = success, any other value = failure code */

struct tm_spawn_opts {
	size_t   sz;          /* sizeof(struct tm_spawn_opts): the struct may grow without breaking callers */
	int      type;        /* default TM_GENERAL */
	uint64_t timeout_ms;  /* 0 = the type's configured default (which may be none) */
	size_t   stack_size;  /* 0 = configured default */
};
#define TM_SPAWN_OPTS(...) (&(struct tm_spawn_opts){ .sz = sizeof(struct tm_spawn_opts), __VA_ARGS__ })

/* Optional; NULL = $TASKMON_CONFIG or built-in defaults. Idempotent: a second
 * call with the library already running returns 0 and changes nothing.
 * -EINVAL for a bad configuration file (tm_last_error names file, line, key),
 * -errno when the file cannot be read or the registry cannot be created. */
int  tm_init(const char *config_path);
/* Cancels and joins all tasks, removes the shared-memory segment. Handles
 * still held stay valid for tm_join/tm_release. tm_init may be called again. */
void tm_shutdown(void);
const char *tm_last_error(void);

/* out may be NULL: detached. opts may be NULL. Returns 0, -EINVAL (bad name,
 * type, options), -EAGAIN (a concurrency limit is reached, or the kernel
 * refused a thread), -ENOMEM. Calls tm_init(NULL) when needed. */
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
struct tm_type_stats { uint64_t spawned, running, succeeded, failed, panicked, cancelled, timed_out, restarts, rejected; };
struct tm_stats {
	uint64_t total_spawned, currently_running, total_completed /* = succeeded */, total_failed,
	         total_panicked, total_cancelled, total_timed_out, total_restarts, total_rejected;
	uint64_t spawn_latency_p50_ns, spawn_latency_p95_ns, spawn_latency_p99_ns, spawn_latency_max_ns;
	uint64_t tracked_records, tracker_bytes;
	struct tm_type_stats by_type[TM_MAX_TYPES];
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

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
