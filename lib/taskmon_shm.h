/* The shared-memory registry of a workload: binary layout and reader.
 *
 * A workload using libtaskmon publishes /dev/shm/taskmon.<pid> (mode 0600):
 *
 *   offset 0               struct tm_shm_header
 *   header.types_offset    struct tm_shm_type   [TM_MAX_TYPES]
 *   header.slots_offset    struct tm_shm_slot   [header.slot_count]
 *   header.messages_offset struct tm_shm_message[header.message_count]
 *
 * All integers are native-endian; the segment is only ever read on the
 * machine that wrote it. Every field a reader looks at while the workload runs
 * is read with relaxed atomic loads. A slot is written under a sequence
 * counter: `seq` is odd while its writer is changing it and is bumped to the
 * next even value when done, so a reader that sees the same even value before
 * and after copying has a consistent record. Counters and histogram buckets
 * only grow, so they need no sequence.
 *
 * The message ring keeps the panic messages (and contained faults'
 * descriptions) that the library otherwise holds in-process only
 * (tm_task_message): a writer claims the entry header.messages_written %
 * message_count by moving its even sequence to odd with a compare-and-swap,
 * fills it, and closes it as a slot is closed. The ring is a fixed area, not
 * per task: the newest message_count messages are kept, older ones are
 * overwritten. A message is published before its task's status says
 * panicked, so a reader that sees the status finds the message unless the
 * ring has wrapped since.
 *
 * The reader treats the segment as untrusted input: every size, offset, count
 * and string is checked, a segment truncated under it is caught, and a forged
 * or torn segment yields an error, never a crash.
 */
#ifndef TASKMON_SHM_H
#define TASKMON_SHM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "taskmon.h"

#pragma GCC visibility push(default)

#define TM_SHM_MAGIC      0x314e4f4d4b534154ULL  /* "TASKMON1" read as little-endian bytes */
#define TM_SHM_VERSION    3   /* 3: the message ring */
#define TM_SHM_PREFIX     "taskmon."            /* /dev/shm/taskmon.<pid> */
#define TM_SHM_DIR        "/dev/shm"

/* Log-linear latency histogram, HDR style: values below 2^TM_HIST_SUB_BITS ns
 * have a bucket each; above, every power of two is split into
 * 2^TM_HIST_SUB_BITS equal buckets, so a bucket's width is at most 1/32 of its
 * lower bound and its midpoint is within 1.6% of any value in it. Values at or
 * above 2^(TM_HIST_MAX_EXP+1) ns (about 73 minutes) land in the last bucket. */
#define TM_HIST_SUB_BITS  5
#define TM_HIST_SUB       (1u << TM_HIST_SUB_BITS)
#define TM_HIST_MAX_EXP   41
#define TM_HIST_BUCKETS   ((TM_HIST_MAX_EXP - TM_HIST_SUB_BITS + 2) * TM_HIST_SUB)   /* 1216 */

/* Index into struct tm_shm_type.counters */
enum tm_counter { TM_C_SPAWNED, TM_C_RUNNING, TM_C_SUCCEEDED, TM_C_FAILED, TM_C_PANICKED,
                  TM_C_CANCELLED, TM_C_TIMED_OUT, TM_C_RESTARTS, TM_C_REJECTED,
                  TM_C_CRASHED, TM_C_ESCALATIONS, TM_C_COUNT };

struct tm_shm_header {
	uint64_t magic;             /* TM_SHM_MAGIC */
	uint32_t version;           /* TM_SHM_VERSION */
	uint32_t header_size;       /* sizeof(struct tm_shm_header) */
	uint32_t type_size;         /* sizeof(struct tm_shm_type) */
	uint32_t slot_size;         /* sizeof(struct tm_shm_slot) */
	uint32_t type_count;        /* TM_MAX_TYPES */
	uint32_t hist_buckets;      /* TM_HIST_BUCKETS */
	uint64_t types_offset;
	uint64_t slots_offset;
	uint64_t total_size;        /* bytes in the segment */
	uint32_t slot_count;        /* capacity (max_tracked_tasks) */
	int32_t  pid;               /* the workload; must match the file name */
	uint64_t proc_start_ticks;  /* field 22 of /proc/<pid>/stat: tells a reused pid apart */
	uint64_t created_mono_ns;   /* CLOCK_MONOTONIC when the segment was made */
	uint64_t created_real_ns;   /* CLOCK_REALTIME at the same moment */
	uint64_t slots_used;        /* slots [0, slots_used) have been written at least once */
	uint64_t next_task_id;      /* ids below it have been given out */
	uint64_t types_used;        /* types [0, types_used) are registered */
	uint64_t flags;             /* TM_SHM_F_* */
	uint64_t max_concurrent_total; /* 0 = unlimited */
	char     comm[16];          /* the workload's executable name, NUL-terminated */
	uint64_t tracked_records;   /* task records held (running and retained) */
	uint64_t tracker_bytes;     /* memory those records take, private parts included */
	uint64_t messages_offset;   /* the message ring; any value when message_count is 0 */
	uint32_t message_size;      /* sizeof(struct tm_shm_message) */
	uint32_t message_count;     /* ring entries; 0 = no ring */
	uint64_t messages_written;  /* entries claimed so far: the next goes to messages_written % message_count */
	uint64_t reserved[3];       /* zero */
};
#define TM_SHM_F_METRICS  1u    /* spawn-latency histograms are being recorded */
#define TM_SHM_F_CLOSED   2u    /* the workload called tm_shutdown: the figures are final */

struct tm_shm_type {
	char     name[TM_NAME_MAX];          /* NUL-terminated printable ASCII; empty = unused id */
	uint64_t counters[TM_C_COUNT];       /* enum tm_counter */
	uint64_t max_concurrent;             /* 0 = unlimited */
	uint64_t default_timeout_ms;         /* 0 = none */
	uint64_t latency_count;              /* samples in hist */
	uint64_t latency_max_ns;
	uint64_t latency_sum_ns;
	uint64_t hist[TM_HIST_BUCKETS];      /* spawn latency, ns */
	uint64_t trace_skipped;              /* spawned without firing its probes: over the
	                                      * spawner's kernel_trace_rate (0 in segments of
	                                      * libraries before it; reserved space then) */
	uint64_t reserved[2];
};

struct tm_shm_slot {
	uint32_t seq;        /* odd while being written; 0 = never used */
	uint32_t tid;        /* kernel thread id running it; 0 before it starts */
	uint64_t id;         /* task id, never reused; 0 = free slot */
	uint64_t spawn_ns;   /* CLOCK_MONOTONIC at tm_spawn */
	uint64_t start_ns;   /* first instruction of the body; 0 = pending */
	uint64_t end_ns;     /* 0 = still running */
	uint64_t cpu_ns;     /* thread CPU time of the body, filled at end */
	int32_t  rc;         /* return code of the body */
	uint16_t type;
	uint8_t  status;     /* enum tm_status */
	uint8_t  flags;      /* TM_SLOT_F_* */
	uint32_t restarts;
	uint32_t reserved;
	char     name[TM_NAME_MAX];
};
#define TM_SLOT_F_CANCEL_REQ 1u   /* cancellation was requested */
#define TM_SLOT_F_MESSAGE    2u   /* a panic message is kept (in-process; its start also in the message ring) */
#define TM_SLOT_F_CRITICAL   4u   /* a critical task: restarts counts its incarnations */
#define TM_SLOT_F_BACKOFF    8u   /* between incarnations, waiting out a restart delay */

/* One message of the ring. */
#define TM_SHM_MESSAGE_TEXT 120   /* bytes of text with its NUL: messages are cut to 119 */
#define TM_SHM_MESSAGES     256   /* entries the library's ring has */
struct tm_shm_message {
	uint32_t seq;        /* odd while being written; 0 = never used */
	uint16_t len;        /* bytes of text before its NUL, < TM_SHM_MESSAGE_TEXT */
	uint8_t  kind;       /* TM_SHM_MSG_* */
	uint8_t  flags;      /* TM_SHM_MSG_F_* */
	uint64_t task_id;    /* whose; never 0 in a written entry */
	uint64_t serial;     /* messages_written when it was claimed: larger = newer */
	uint64_t time_ns;    /* CLOCK_MONOTONIC when written */
	uint32_t restarts;   /* the task's restarts then: which incarnation it was */
	uint32_t reserved;
	char     text[TM_SHM_MESSAGE_TEXT];   /* printable ASCII, NUL-terminated at len */
};
#define TM_SHM_MSG_PANIC     1u   /* tm_panic's message */
#define TM_SHM_MSG_CRASH     2u   /* a contained fault: signal, address, instruction */
#define TM_SHM_MSG_F_CUT     1u   /* the message was longer: its first 116 bytes and "..." */

/* ---- reader ---------------------------------------------------------------- */
typedef struct tm_shm_reader tm_shm_reader;

/* Opens and validates a segment. -ENOENT when it does not exist, -EACCES when
 * it may not be read, -EBADMSG for anything malformed (tm_last_error says
 * what), -ENOMEM. */
int  tm_shm_open_pid(tm_shm_reader **out, pid_t pid);
int  tm_shm_open_path(tm_shm_reader **out, const char *path);
void tm_shm_close(tm_shm_reader *r);

pid_t       tm_shm_pid(const tm_shm_reader *r);
const char *tm_shm_comm(const tm_shm_reader *r);       /* validated copy */
/* True when the workload that wrote it is gone (its pid is free or belongs to
 * a newer process). */
bool tm_shm_is_stale(const tm_shm_reader *r);
bool tm_shm_is_closed(const tm_shm_reader *r);
/* Records the reader has skipped as malformed (bad type, status or name) since
 * it was opened: non-zero means a forged or corrupted segment, not a busy one. */
uint64_t tm_shm_invalid_records(const tm_shm_reader *r);

/* Per-type figures copied out of the segment. */
struct tm_shm_type_snapshot {
	int      id;
	char     name[TM_NAME_MAX];
	uint64_t counters[TM_C_COUNT];
	uint64_t max_concurrent, default_timeout_ms;
	uint64_t latency_count, latency_max_ns, latency_sum_ns;
	uint64_t trace_skipped;              /* tasks the kernel was not told of (kernel_trace_rate) */
	uint64_t hist[TM_HIST_BUCKETS];
};
/* Fills up to cap registered types; returns how many, or -EBADMSG / -EIO. */
int tm_shm_read_types(tm_shm_reader *r, struct tm_shm_type_snapshot *out, size_t cap);
/* Totals, per-type counters and latency quantiles, as tm_get_stats does in-process. */
int tm_shm_read_stats(tm_shm_reader *r, struct tm_stats *out);
/* Consistent copies of task records; a record still being written after a few
 * retries is left out. Returns how many were written, or -EBADMSG / -EIO. */
int tm_shm_read_tasks(tm_shm_reader *r, struct tm_task_info *out, size_t cap, bool running_only);

/* A message copied out of the ring and validated (entries with a bad length,
 * kind, missing NUL or a byte outside printable ASCII are skipped and
 * counted by tm_shm_invalid_records; entries being written are retried a
 * few times, then left out). */
struct tm_shm_message_info {
	uint64_t task_id, serial, time_ns;
	uint32_t restarts;
	unsigned kind;                       /* TM_SHM_MSG_PANIC or TM_SHM_MSG_CRASH */
	bool     cut;                        /* longer in the workload: ends with "..." */
	char     text[TM_SHM_MESSAGE_TEXT];  /* printable ASCII, NUL-terminated */
};
/* Up to cap messages, newest first. Returns how many, or -EBADMSG / -EIO /
 * -ENOMEM. A segment without a ring has none. */
int tm_shm_read_messages(tm_shm_reader *r, struct tm_shm_message_info *out, size_t cap);
/* The newest message of one task: 0, -ENOENT when the ring holds none (never
 * written, or overwritten since), -EIO, -ENOMEM. */
int tm_shm_read_task_message(tm_shm_reader *r, uint64_t task_id, struct tm_shm_message_info *out);

/* Lists pids with a segment in dir (NULL = /dev/shm); returns how many (at most cap). */
int tm_shm_list(const char *dir, pid_t *pids, size_t cap);
/* Removes the segment of a workload that is gone; -EBUSY when it is alive. */
int tm_shm_remove_stale(pid_t pid);

/* ---- histogram helpers (shared by the library, the collector, the tools) --- */
unsigned tm_hist_bucket(uint64_t value_ns);
uint64_t tm_hist_bucket_low(unsigned bucket);     /* smallest value in the bucket */
uint64_t tm_hist_bucket_mid(unsigned bucket);     /* what a quantile reports */
/* Value at quantile q (0 < q <= 1) of hist, 0 when empty; `max` caps the result. */
uint64_t tm_hist_quantile(const uint64_t *hist, uint64_t max, double q);

#pragma GCC visibility pop
#endif
