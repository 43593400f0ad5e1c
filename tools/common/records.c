/* Reading a record directory (records.h; format in user/record.c).
 *
 * Opening reads each file once, in 1 MiB chunks, and indexes its lines: the
 * time of a record is the last "time_unix_ns" of the line, which the writer
 * puts at the very end (the "record" object's last key), looked for in the
 * line's tail (4 KiB, then 64 KiB, then 1 MiB), so that indexing a week of
 * records does not parse them all. A line without one there is skipped; one
 * that has it but is broken elsewhere, or whose record.time_unix_ns is
 * another, is caught when it is parsed (tm_records_get). */
#include "records.h"
#include "record_name.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK     (1u << 20)
#define NAME_LEN  TM_RECORD_NAME_LEN
#define SEC       1000000000ull
#define TIME_KEY  "\"time_unix_ns\":"

struct entry {
	uint64_t time, off;
	uint32_t len;
	uint32_t file : 31, bad : 1;
};

struct slot {
	size_t idx;
	json_t *j;
	uint64_t used;
};

struct tm_records {
	char dir[PATH_MAX];
	char (*files)[NAME_LEN + 1];
	size_t nfiles;
	struct entry *e;
	size_t n, cap;
	size_t skipped;
	struct slot cache[TM_RECORDS_CACHE];
	uint64_t clock;
	int fd;                 /* the file of the last record read, -1 none */
	uint32_t fd_file;
	char *tail;             /* scan buffer for lines that cross a chunk */
};

/* ---- file names ---------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int list_files(struct tm_records *r, char *err, size_t errlen)
{
	DIR *d = opendir(r->dir);
	struct dirent *de;
	struct stat sb;
	size_t cap = 0;
	if (!d) {
		int e = errno;
		snprintf(err, errlen, "cannot read the record directory %s: %s", r->dir, strerror(e));
		return -e;
	}
	while ((de = readdir(d))) {
		if (tm_record_name_time(de->d_name) < 0 || fstatat(dirfd(d), de->d_name, &sb, 0) != 0 || !S_ISREG(sb.st_mode))
			continue;
		if (r->nfiles == cap) {
			void *p = realloc(r->files, (cap = cap ? cap * 2 : 64) * sizeof(*r->files));
			if (!p) {
				closedir(d);
				snprintf(err, errlen, "out of memory listing %s", r->dir);
				return -ENOMEM;
			}
			r->files = p;
		}
		memcpy(r->files[r->nfiles++], de->d_name, NAME_LEN + 1);
	}
	closedir(d);
	if (r->nfiles)
		qsort(r->files, r->nfiles, sizeof(*r->files), by_name);
	return 0;
}

/* ---- indexing ------------------------------------------------------------------------- */

/* Last occurrence of needle in [p, p + n). */
static const char *last_of(const char *p, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	const char *found = NULL;
	for (const char *q = p; n >= k && (q = memmem(q, (size_t)(p + n - q), needle, k)); q++)
		found = q;
	return found;
}

/* The record time of a line from its tail: its last time_unix_ns. 0 when
 * not found there. */
static uint64_t tail_time(const char *tail, size_t n)
{
	static const size_t windows[] = { 4096, 65536, CHUNK };
	const char *t = NULL;
	for (size_t w = 0; w < 3 && !t; w++) {
		size_t k = n < windows[w] ? n : windows[w];
		t = last_of(tail + n - k, k, TIME_KEY);
		if (k == n)
			break;
	}
	if (!t)
		return 0;
	uint64_t v = 0;
	const char *p = t + strlen(TIME_KEY), *end = tail + n;
	if (p >= end || *p < '0' || *p > '9')
		return 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	return v;
}

struct scan {
	struct tm_records *r;
	uint32_t file;
	int fd;
	uint64_t since, until;
	const char *chunk;   /* the bytes in memory, from file offset chunk_off */
	uint64_t chunk_off;
	size_t chunk_len;
};

/* The bytes [off, off + len) of the file: in the chunk when they are there,
 * else read into the tail buffer (len <= CHUNK). */
static const char *bytes_at(struct scan *s, uint64_t off, size_t len)
{
	if (off >= s->chunk_off && off + len <= s->chunk_off + s->chunk_len)
		return s->chunk + (off - s->chunk_off);
	if (pread(s->fd, s->r->tail, len, (off_t)off) != (ssize_t)len)
		return NULL;
	return s->r->tail;
}

static int add_entry(struct tm_records *r, const struct entry *e)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1024;
		struct entry *p = realloc(r->e, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->e = p;
		r->cap = cap;
	}
	r->e[r->n++] = *e;
	return 0;
}

static int index_line(struct scan *s, uint64_t off, uint64_t len)
{
	const char *p;
	if (len == 0 || len > TM_RECORDS_MAX_LINE || !(p = bytes_at(s, off, 1)) || *p != '{') {
		s->r->skipped++;
		return 0;
	}
	size_t w = len < CHUNK ? (size_t)len : CHUNK;
	const char *tail = bytes_at(s, off + len - w, w);
	size_t n = w;
	while (tail && n && (tail[n - 1] == ' ' || tail[n - 1] == '\r' || tail[n - 1] == '\t'))
		n--;
	uint64_t t = tail && n && tail[n - 1] == '}' ? tail_time(tail, n) : 0;
	if (!t) {
		s->r->skipped++;
		return 0;
	}
	if ((s->since && t < s->since) || (s->until && t > s->until))
		return 0;
	struct entry e = { .time = t, .off = off, .len = (uint32_t)len, .file = s->file };
	return add_entry(s->r, &e);
}

static int scan_file(struct tm_records *r, uint32_t file, int fd, uint64_t since, uint64_t until, char *buf)
{
	struct scan s = { .r = r, .file = file, .fd = fd, .since = since, .until = until, .chunk = buf };
	uint64_t line_start = 0;
	for (;;) {
		ssize_t k = pread(fd, buf, CHUNK, (off_t)s.chunk_off);
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		s.chunk_len = (size_t)k;
		for (const char *p = buf, *nl; (nl = memchr(p, '\n', (size_t)(buf + k - p))); p = nl + 1) {
			uint64_t end = s.chunk_off + (uint64_t)(nl - buf);
			int e = index_line(&s, line_start, end - line_start);
			if (e < 0)
				return e;
			line_start = end + 1;
		}
		s.chunk_off += (uint64_t)k;
	}
	if (line_start < s.chunk_off)
		r->skipped++;   /* a final line without '\n': a record still being written */
	return 0;
}

static int by_time(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Files whose records all lie outside [since, until] are not read: a file's
 * records are no earlier than its name's second and earlier than the next
 * file's name's second + 1. */
static bool file_wanted(const struct tm_records *r, size_t i, uint64_t since, uint64_t until)
{
	uint64_t start = (uint64_t)tm_record_name_time(r->files[i]) * SEC;
	if (until && start > until)
		return false;
	if (since && i + 1 < r->nfiles && ((uint64_t)tm_record_name_time(r->files[i + 1]) + 1) * SEC <= since)
		return false;
	return true;
}

static int index_all(struct tm_records *r, uint64_t since, uint64_t until, char *err, size_t errlen)
{
	char *buf = malloc(CHUNK);
	int e = 0;
	r->tail = malloc(CHUNK);
	if (!buf || !r->tail) {
		free(buf);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->nfiles && !e; i++) {
		if (!file_wanted(r, i, since, until))
			continue;
		char path[PATH_MAX + NAME_LEN + 2];
		snprintf(path, sizeof(path), "%s/%s", r->dir, r->files[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			e = -errno;
			if (e == -ENOENT) {   /* removed by retention since it was listed */
				e = 0;
				continue;
			}
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(-e));
			break;
		}
		e = scan_file(r, (uint32_t)i, fd, since, until, buf);
		if (e < 0)
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(-e));
		close(fd);
	}
	free(buf);
	if (e)
		return e;
	bool sorted = true;
	for (size_t i = 1; i < r->n && sorted; i++)
		sorted = by_time(&r->e[i - 1], &r->e[i]) <= 0;
	if (!sorted)   /* the clock was set back while recording */
		qsort(r->e, r->n, sizeof(*r->e), by_time);
	return 0;
}

int tm_records_open(struct tm_records **out, const char *dir, uint64_t since, uint64_t until, char *err,
                    size_t errlen)
{
	*out = NULL;
	if (!dir || !*dir || strlen(dir) >= PATH_MAX - NAME_LEN - 2) {
		snprintf(err, errlen, "the record directory must be a path shorter than %d bytes", PATH_MAX - 40);
		return -EINVAL;
	}
	if (until && since > until) {
		snprintf(err, errlen, "the start of the time range is after its end");
		return -EINVAL;
	}
	struct tm_records *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	r->fd = -1;
	int e = list_files(r, err, errlen);
	if (!e && r->nfiles > (1u << 31)) {
		snprintf(err, errlen, "%s holds too many record files", dir);
		e = -E2BIG;
	}
	if (!e)
		e = index_all(r, since, until, err, errlen);
	if (e) {
		tm_records_close(r);
		return e;
	}
	free(r->tail);
	r->tail = NULL;
	*out = r;
	return 0;
}

/* ---- reading ---------------------------------------------------------------------------- */

size_t tm_records_count(const struct tm_records *r)
{
	return r ? r->n : 0;
}

uint64_t tm_records_time(const struct tm_records *r, size_t i)
{
	return r && i < r->n ? r->e[i].time : 0;
}

size_t tm_records_skipped(const struct tm_records *r)
{
	return r ? r->skipped : 0;
}

size_t tm_records_file_count(const struct tm_records *r)
{
	return r ? r->nfiles : 0;
}

const char *tm_records_file_name(const struct tm_records *r, size_t i)
{
	return r && i < r->nfiles ? r->files[i] : NULL;
}

static int file_fd(struct tm_records *r, uint32_t file)
{
	if (r->fd >= 0 && r->fd_file == file)
		return r->fd;
	if (r->fd >= 0)
		close(r->fd);
	char path[PATH_MAX + NAME_LEN + 2];
	snprintf(path, sizeof(path), "%s/%s", r->dir, r->files[file]);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	r->fd_file = file;
	return r->fd;
}

/* The line parsed, when it is the object the index promised. */
static json_t *parse_entry(struct tm_records *r, const struct entry *e)
{
	int fd = file_fd(r, e->file);
	char *buf = fd >= 0 ? malloc(e->len) : NULL;
	json_t *j = NULL;
	if (buf && pread(fd, buf, e->len, (off_t)e->off) == (ssize_t)e->len)
		j = json_loadb(buf, e->len, 0, NULL);
	free(buf);
	json_t *rec = json_object_get(j, "record");
	json_t *t = json_object_get(rec, "time_unix_ns");
	if (!json_is_object(j) || !json_is_object(rec) || !json_is_integer(t) ||
	    (uint64_t)json_integer_value(t) != e->time) {
		json_decref(j);
		return NULL;
	}
	return j;
}

json_t *tm_records_get(struct tm_records *r, size_t i)
{
	if (!r || i >= r->n || r->e[i].bad)
		return NULL;
	struct slot *victim = &r->cache[0];
	for (size_t k = 0; k < TM_RECORDS_CACHE; k++) {
		struct slot *s = &r->cache[k];
		if (s->j && s->idx == i) {
			s->used = ++r->clock;
			return s->j;
		}
		if (!s->j || (victim->j && s->used < victim->used))
			victim = s;
	}
	json_t *j = parse_entry(r, &r->e[i]);
	if (!j) {
		r->e[i].bad = 1;
		r->skipped++;
		return NULL;
	}
	json_decref(victim->j);
	*victim = (struct slot){ .idx = i, .j = j, .used = ++r->clock };
	return j;
}

void tm_records_close(struct tm_records *r)
{
	if (!r)
		return;
	for (size_t k = 0; k < TM_RECORDS_CACHE; k++)
		json_decref(r->cache[k].j);
	if (r->fd >= 0)
		close(r->fd);
	free(r->tail);
	free(r->files);
	free(r->e);
	free(r);
}
