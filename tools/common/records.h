/* Reading a record directory written by taskmond --record (format in
 * user/record.c): every record of the directory within [since, until], in
 * time order, parsed on demand.
 *
 * Memory is bounded by the number of records, not their size: opening scans
 * the files once and keeps, per record, its file, offset, length and time
 * (about 32 bytes); tm_records_get reads and parses one line and keeps the
 * last few parsed.
 *
 * Everything in the directory is treated as hostile: only files named
 * taskmon-YYYYMMDDTHHMMSSZ.jsonl (regular files) are read, in name order; a
 * final line without '\n' (a record being written) is ignored; a line that
 * is longer than TM_RECORDS_MAX_LINE, is not a JSON object, or has no
 * "time_unix_ns" in its last MiB (the writer ends each line with it) is
 * skipped and counted, never fatal.
 */
#ifndef TM_RECORDS_H
#define TM_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define TM_RECORDS_MAX_LINE (64u << 20)   /* longer lines are skipped unread */

struct tm_records;

/* Every record of dir with since <= time <= until (0 = no bound), in time
 * order (records with equal times in file order). 0, or negative errno with
 * one sentence in err: -ENOENT/-ENOTDIR/-EACCES for the directory, -ENOMEM. */
int tm_records_open(struct tm_records **out, const char *dir, uint64_t since_unix_ns, uint64_t until_unix_ns,
                    char *err, size_t errlen);

size_t   tm_records_count(const struct tm_records *r);
/* record.time_unix_ns of record i (i < count). */
uint64_t tm_records_time(const struct tm_records *r, size_t i);

/* Record i parsed: a borrowed reference, valid until tm_records_close or
 * until TM_RECORDS_CACHE other records have been got since (json_incref to
 * keep it longer). NULL when i is out of range, the file cannot be read any
 * more, or the line turns out not to be a whole JSON object whose
 * record.time_unix_ns is the one indexed (the open scan reads only the
 * line's tail): such a line is counted in tm_records_skipped from then on. */
#define TM_RECORDS_CACHE 4
json_t  *tm_records_get(struct tm_records *r, size_t i);

/* Lines that were torn, too long, or did not parse (so far). */
size_t   tm_records_skipped(const struct tm_records *r);

/* The files that were read, in name order (i < tm_records_file_count). */
size_t      tm_records_file_count(const struct tm_records *r);
const char *tm_records_file_name(const struct tm_records *r, size_t i);

void     tm_records_close(struct tm_records *r);

#endif
