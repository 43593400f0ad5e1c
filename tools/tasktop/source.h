/* Where tasktop's samples come from: taskmond's snapshot socket (live), the
 * workloads' shared-memory registries (standalone), or a record directory
 * (replay). Every source hands out ready models (model.h) with the derived
 * figures already computed against its previous sample: the screens only
 * draw.
 *
 * No source ever blocks for longer than the timeout it is given, and none
 * gives up on a failure: a live source whose collector went away keeps
 * returning -EAGAIN with a sentence (and reconnects on the next fetch); bad
 * data yields an error sentence, never a crash.
 */
#ifndef TASKTOP_SOURCE_H
#define TASKTOP_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct tt_source;

struct tt_source_opts {
	size_t      sz;                 /* sizeof(struct tt_source_opts) */
	const char *socket_path;        /* live: NULL = $TASKMON_SOCKET, else /run/taskmon/taskmond.sock */
	const char *shm_dir;            /* standalone: NULL = /dev/shm */
	const char *replay_dir;         /* replay: the record directory */
	uint64_t    since_unix_ns, until_unix_ns;   /* replay: 0 = all */
	uint32_t    max_tasks;          /* live: tasks asked for; 0 = the collector's default (1000) */
	bool        no_tasks;           /* live: figures only */
	bool        no_proc;            /* do not read /proc (schedstat, status, stat) for running tasks */
	bool        no_crashes;         /* do not read the crash log */
};
#define TT_SOURCE_OPTS(...) (&(struct tt_source_opts){ .sz = sizeof(struct tt_source_opts), __VA_ARGS__ })

/* Opening never needs the other end to be there: a live source without a
 * collector opens and reports it on fetch. Negative errno with one sentence in
 * err (bad options, an unreadable record directory, ENOMEM). */
int  tt_source_open_socket(struct tt_source **out, const struct tt_source_opts *opts, char *err, size_t errlen);
int  tt_source_open_shm(struct tt_source **out, const struct tt_source_opts *opts, char *err, size_t errlen);
int  tt_source_open_replay(struct tt_source **out, const struct tt_source_opts *opts, char *err, size_t errlen);
/* Live when a collector answers at the socket, standalone otherwise (the
 * model's kernel_off_reason says why). */
int  tt_source_open_auto(struct tt_source **out, const struct tt_source_opts *opts, char *err, size_t errlen);
void tt_source_close(struct tt_source *s);

enum tt_source_kind tt_source_kind(const struct tt_source *s);

/* Takes a sample (replay: the record at the cursor) and returns it in *out,
 * derived against the source's previous sample. Waits at most timeout_ms.
 * The caller releases it with tt_model_free; the source keeps a reference of
 * its own (the next sample is derived from it), so the model is read-only.
 * Returns 0 with *out set, or a negative errno with *out NULL and a sentence
 * in tt_source_status (-EAGAIN: try again later, e.g. collector gone and
 * reconnecting; -ENOENT: replay has no records; -ENOMEM). */
int  tt_source_fetch(struct tt_source *s, int timeout_ms, struct tt_model **out);

/* The source's current state in one sentence, and its health. */
const char *tt_source_status(const struct tt_source *s);
enum tt_health tt_source_health(const struct tt_source *s);

/* Replay only (-ENOTSUP elsewhere). Moves the cursor; the next fetch returns
 * that record (derived against the one before it, so that rates are right in
 * either direction). Positions are clamped to [0, count - 1]; returns the new
 * index or a negative errno. */
long tt_source_seek(struct tt_source *s, size_t index);
long tt_source_step(struct tt_source *s, long delta);
/* The last record at or before t (the first one when t is earlier). */
long tt_source_seek_time(struct tt_source *s, uint64_t unix_ns);
/* Cursor and extent; false for a source that is not a replay. */
bool tt_source_replay_pos(const struct tt_source *s, struct tt_replay_pos *out);

#endif
