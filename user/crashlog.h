/* Crash records: a kernel crash event, merged with the workload's registry
 * (task name and type) and symbolized against its saved mappings, kept in
 * memory and appended to <state-dir>/crashes.jsonl, one JSON object a line.
 *
 * A record, keys in this order (addresses and file offsets are "0x..."
 * strings: a JSON number cannot carry 64 bits in every reader):
 *
 *   {"version":1, "time":"2025-01-31T12:00:00.123Z", "ts_ns":N,
 *    "pid":N, "comm":"crasher", "tid":N, "thread":"crasher",
 *    "task":{"id":N, "name":"dice_roll", "type":"game_logic", "type_id":3, "source":"registry"} | null,
 *    "signal":"SIGSEGV", "signo":11, "code":"SEGV_MAPERR", "si_code":1, "sender_pid":N,
 *    "fault_addr":"0x0" | null,
 *    "frames":[{"addr":"0x...", "module":"/path" | null, "offset":"0x..." | null,
 *               "symbol":"dice_roll" | null, "symbol_offset":N | null, "build_id":"hex" | null}, ...],
 *    "frames_dropped":N, "stack_error":null | N}
 *
 * time: CLOCK_REALTIME when the record was made; ts_ns: the event's
 * CLOCK_MONOTONIC time. task is null when no task ran on the thread (task id
 * 0); its name and type are null when neither the registry nor the caller
 * knew them, and source says which did ("registry" or "collector").
 * signal/code are null for numbers without a name; fault_addr is null unless
 * the signal is a fault (0 < si_code < SI_KERNEL). frames: top (faulting)
 * frame first, up to the first return address that is in no executable
 * mapping: the kernel walks frame pointers, and code built without them
 * (libc's, for one) sends the walk into data; frames_dropped says how many
 * frames the kernel gave after that point. stack_error: the kernel's negative errno when no stack was
 * taken (-95: the signal was not raised by the thread itself, or stacks are
 * off).
 */
#ifndef TMD_CRASHLOG_H
#define TMD_CRASHLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolize.h"
#include "taskmon_events.h"

#define TMD_CRASH_LOG "crashes.jsonl"

struct json_t;   /* jansson's */

/* What the collector knows of the task from its start event: used when the
 * registry is gone or does not have it. */
struct tmd_crash_opts {
	size_t sz;                 /* sizeof(struct tmd_crash_opts) */
	const char *task_name;     /* NULL = not known */
	int task_type;             /* its type id (the start event carries both) */
	const char *type_name;     /* NULL: the built-in name of task_type, if it is one */
	bool no_registry;          /* do not read /dev/shm/taskmon.<pid> */
};
#define TMD_CRASH_OPTS(...) (&(struct tmd_crash_opts){ .sz = sizeof(struct tmd_crash_opts), __VA_ARGS__ })

struct tmd_crash_out {
	uint64_t ts_ns, task_id, addr;
	uint32_t pid, tid, sender_pid;
	int sig, code;
	int stack_error;                    /* 0, or why there are no frames (negative errno) */
	char comm[TM_EV_COMM_MAX];          /* the workload */
	char thread_comm[TM_EV_COMM_MAX];
	bool task_known;                    /* name and type found */
	char task_name[TM_EV_NAME_MAX];
	int task_type;                      /* -1 = not known */
	char type_name[TM_EV_NAME_MAX];
	size_t nframes;
	struct tmd_frame *frames;           /* top first */
	size_t frames_dropped;              /* after a return address outside any code */
	char *line;                         /* the JSON object, no newline */
	struct json_t *json;                /* the same as a jansson object (json_incref to keep it) */
	int write_error;                    /* of the last append: 0 or negative errno */
};

/* Builds the record in out (no disk I/O): reads the registry unless told not
 * to, symbolizes the stack against maps (NULL: addresses only). ev must be a
 * whole TM_EV_CRASH record. 0, -EINVAL or -ENOMEM. Release out afterwards. */
int  tmd_crash_build(const struct tm_ev_crash *ev, const struct tmd_maps *maps, const struct tmd_crash_opts *opts,
                     struct tmd_crash_out *out);
/* Appends out->line to <state_dir>/crashes.jsonl and syncs it. 0 or
 * negative errno (-ENOSPC, -EROFS, -EACCES, -ENOENT for a missing
 * directory, ...), also kept in out->write_error; the record stays in out
 * either way, and a partly written line is cut off again. */
int  tmd_crash_append(const char *state_dir, struct tmd_crash_out *out);
/* Both: build, then append. Negative errno; out holds the record whenever
 * the build succeeded, even when the append failed (out->line != NULL). */
int  tmd_crash_record(const struct tm_ev_crash *ev, const struct tmd_maps *maps, const char *state_dir,
                      struct tmd_crash_out *out);
void tmd_crash_out_release(struct tmd_crash_out *out);

/* One line of text (no newline) for --verbose: workload, task, signal,
 * address and the frames as symbol+offset (module). Returns what snprintf does. */
int  tmd_crash_format_line(const struct tmd_crash_out *out, char *buf, size_t cap);

/* "SIGSEGV"; NULL for a number without a name. */
const char *tmd_signal_name(int sig);
/* "SEGV_MAPERR", "SI_TKILL", ...: the si_code's name for that signal; NULL when it has none. */
const char *tmd_si_code_name(int sig, int code);

#endif
