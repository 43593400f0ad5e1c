/* The collector's crash log (<state-dir>/crashes.jsonl, user/crashlog.h) for
 * the Crashes screen: read once, then only what was appended, keeping the
 * newest TT_MAX_CRASHES records. A file replaced or cut short is read afresh;
 * a line that does not parse is counted, never fatal; a first read of a huge
 * file starts at its last few MiB.
 */
#ifndef TASKTOP_CRASHES_H
#define TASKTOP_CRASHES_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct tt_crashlog;

struct tt_crashlog *tt_crashlog_new(void);   /* NULL on ENOMEM */
void tt_crashlog_free(struct tt_crashlog *c);

/* Reads what is new in path. 0, or negative errno (-ENOENT: no crash log
 * yet, which is normal) with what was read before kept. */
int  tt_crashlog_update(struct tt_crashlog *c, const char *path);
/* Lines that did not parse, so far. */
uint64_t tt_crashlog_bad_lines(const struct tt_crashlog *c);
size_t   tt_crashlog_count(const struct tt_crashlog *c);

/* Copies into m the crashes made at or before until_unix_ns (0 = all),
 * oldest first; sets m->crashes_known and crashes_source. 0 or -ENOMEM. */
int  tt_crashlog_fill(const struct tt_crashlog *c, struct tt_model *m, uint64_t until_unix_ns, const char *path);

/* One record (a line of the log) into a crash; for the tests. 0 or -EBADMSG. */
int  tt_crash_parse_line(const char *line, size_t len, struct tt_crash *out);

#endif
