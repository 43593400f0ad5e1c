/* Recording: taskmond --record DIR appends one record per interval to
 * DIR/taskmon-YYYYMMDDTHHMMSSZ.jsonl (the directory format is RECORD.md's,
 * kept in the header of user/record.c).
 *
 * A record is the snapshot document (snapshot.h, every workload, tasks up to
 * the default maximum) with one more top-level key, "record": the record's
 * sequence number, the interval, its realtime, each live workload's RSS,
 * thread count and CPU time from /proc, the collector's own, and each
 * workload type's spawn-latency and run-time histograms (non-empty buckets
 * as [smallest value in ns, count]).
 *
 * The loop thread builds the line (a few ms for a 1000-task snapshot); a
 * writer thread appends it with one write() on an O_APPEND descriptor and
 * fdatasync()s it, rotates files and applies retention, so a slow or full
 * disk never stalls the loop. At most a few records wait for the writer;
 * beyond that a new record is dropped and counted. A failing directory
 * (full, read-only, missing) is reported once on stderr, counted per record
 * lost, retried each interval, and reported once more when writes resume.
 */
#ifndef TMD_RECORD_H
#define TMD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

#define TMD_RECORD_VERSION      1
#define TMD_RECORD_ROTATE_BYTES (64ull << 20)   /* a new file past this size ... */
#define TMD_RECORD_ROTATE_NS    (3600ull * 1000000000ull)   /* ... or this age */
#define TMD_RECORD_MIN_INTERVAL_NS 10000000ull   /* 10 ms */

struct tmd_record_opts {
	size_t   sz;                /* sizeof(struct tmd_record_opts) */
	uint64_t interval_ns;       /* 0 = 10 s */
	uint64_t retain_age_ns;     /* delete files whose records are all older; 0 = keep */
	uint64_t retain_bytes;      /* delete oldest files while the directory holds more; 0 = keep */
	uint64_t rotate_bytes;      /* 0 = 64 MiB, or a quarter of retain_bytes when that is less */
	uint64_t rotate_ns;         /* 0 = one hour */
	uint32_t max_tasks;         /* tasks per record; 0 = TMD_SNAPSHOT_TASKS_DEFAULT */
	bool     quiet;             /* no stderr lines (tests) */
	uint64_t (*realtime_ns)(void);   /* record times and retention; NULL = CLOCK_REALTIME (tests set one) */
};
#define TMD_RECORD_OPTS(...) (&(struct tmd_record_opts){ .sz = sizeof(struct tmd_record_opts), __VA_ARGS__ })

/* What the recorder did so far; taskmond exports errors as
 * taskmon_record_errors_total. */
struct tmd_record_stats {
	uint64_t records_built;     /* lines made by tmd_record_tick */
	uint64_t records_written;   /* appended and synced */
	uint64_t records_dropped;   /* built but never written: the writer was behind or failing */
	uint64_t errors;            /* records that could not be written (open, write, sync failed) */
	uint64_t bytes_written;
	uint64_t files_created;
	uint64_t files_removed;     /* by retention */
	uint64_t last_build_ns;     /* the loop's cost of the last record: /proc reads + JSON */
	uint64_t max_build_ns;
	uint64_t last_write_ns;     /* the writer's cost of the last record: write + fdatasync */
	uint64_t last_record_bytes;
	int      last_error;        /* errno of the last failure, 0 = none */
	bool     failing;           /* the last attempt failed; recording resumes by itself */
};

struct tmd_recorder;

/* Starts the writer thread. The directory is created (mode 0755) when
 * missing; when it cannot be, that is reported as a failure and retried at
 * each record rather than refused: live data goes on being served. Negative
 * errno (-EINVAL bad options, -ENOMEM, thread creation) with a sentence in err. */
int  tmd_record_open(struct tmd_recorder **out, const char *dir, const struct tmd_record_opts *opts,
                     char *err, size_t errlen);
/* Flushes what is queued (bounded wait) and stops the writer. NULL is fine. */
void tmd_record_close(struct tmd_recorder *r);

/* The monotonic time at which the next record is due. */
uint64_t tmd_record_due(const struct tmd_recorder *r);

/* Builds a record when one is due (or when force is set) and hands it to the
 * writer. now_ns is CLOCK_MONOTONIC. 1 when a record was queued, 0 when none
 * was due, negative errno when building it failed (counted). */
int  tmd_record_tick(struct tmd_recorder *r, const struct tmd_merge *m, const struct tmd_collector_info *ci,
                     uint64_t now_ns, bool force);

/* Waits until every queued record has been written or failed, at most
 * timeout_ms. 0, or -ETIMEDOUT. */
int  tmd_record_flush(struct tmd_recorder *r, unsigned timeout_ms);

/* A consistent copy of the counters; callable from any thread. */
void tmd_record_get_stats(const struct tmd_recorder *r, struct tmd_record_stats *out);

/* The record line for the merge as it is now, built as tmd_record_tick does
 * (malloc'ed, '\n'-terminated, *len without the NUL); NULL with errno set.
 * For tests and benchmarks. */
char *tmd_record_line(const struct tmd_merge *m, const struct tmd_collector_info *ci, uint64_t now_ns,
                      uint64_t seq, uint64_t interval_ns, uint64_t time_unix_ns, uint32_t max_tasks,
                      size_t *len);

/* Option values: durations "500ms", "10s", "5m", "1h", "7d" (a plain number
 * is seconds when allow_bare), sizes "500K", "500M", "2G", "1T" (binary
 * units, an optional trailing "B" or "iB"). 0 or -EINVAL. */
int  tmd_parse_duration(const char *s, bool allow_bare, uint64_t *ns);
int  tmd_parse_size(const char *s, uint64_t *bytes);

#endif
