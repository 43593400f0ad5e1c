/* Crash log reader (see crashes.h). The log is written by the collector
 * (root), but is read as untrusted all the same. */
#include "crashes.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FIRST_READ_MAX (8u << 20)   /* a first read starts this far from the end */
#define LINE_MAX_BYTES (1u << 20)   /* longer lines are skipped */

struct tt_crashlog {
	struct tt_crash ring[TT_MAX_CRASHES];   /* frames owned */
	size_t head, n;                          /* oldest at head */
	dev_t dev;
	ino_t ino;
	off_t off;                               /* read up to here */
	char *partial;                           /* a line without its '\n' yet */
	size_t plen;
	bool skipping;                           /* inside an over-long line */
	uint64_t bad;
};

struct tt_crashlog *tt_crashlog_new(void)
{
	return calloc(1, sizeof(struct tt_crashlog));
}

static void clear(struct tt_crashlog *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->ring[(c->head + i) % TT_MAX_CRASHES].frames);
	c->head = c->n = 0;
	free(c->partial);
	c->partial = NULL;
	c->plen = 0;
	c->off = 0;
	c->skipping = false;
}

void tt_crashlog_free(struct tt_crashlog *c)
{
	if (!c)
		return;
	clear(c);
	free(c);
}

uint64_t tt_crashlog_bad_lines(const struct tt_crashlog *c)
{
	return c->bad;
}

size_t tt_crashlog_count(const struct tt_crashlog *c)
{
	return c->n;
}

/* ---- one record ----------------------------------------------------------- */

static unsigned copy_str(const json_t *o, const char *key, char *buf, size_t cap)
{
	buf[0] = '\0';
	const json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return v && !json_is_null(v) ? TT_STR_BADTYPE : 0;
	size_t len = json_string_length(v), n = strnlen(json_string_value(v), len);
	unsigned flags = n < len ? TT_STR_CTRL | TT_STR_TRUNC : 0;
	if (n >= cap) {
		n = cap - 1;
		flags |= TT_STR_TRUNC;
	}
	memcpy(buf, json_string_value(v), n);
	buf[n] = '\0';
	return flags | tt_str_flags(buf, n);
}

static uint64_t get_u64(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v) : 0;
}

static int64_t get_int(const json_t *o, const char *key, int64_t lo, int64_t hi, int64_t dflt)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return dflt;
	return json_integer_value(v);
}

/* "0x..." → value; false for null, a non-string or a malformed one */
static bool get_hex(const json_t *o, const char *key, uint64_t *out)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return false;
	const char *s = json_string_value(v);
	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || !s[2] || strlen(s) > 18)
		return false;
	uint64_t x = 0;
	for (const char *p = s + 2; *p; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
		      : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;
		if (d < 0)
			return false;
		x = x << 4 | (uint64_t)d;
	}
	*out = x;
	return true;
}

/* "2025-01-31T12:00:00.123Z" → unix ns; 0 when it does not parse */
static uint64_t parse_time(const char *s)
{
	struct tm tm = { 0 };
	unsigned ms = 0;
	int used = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3uZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	           &tm.tm_sec, &ms, &used) != 7 || used == 0 || s[used] != '\0')
		return 0;
	if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return t < 0 ? 0 : (uint64_t)t * 1000000000ull + ms * 1000000ull;
}

static int parse_frames(const json_t *a, struct tt_crash *out)
{
	size_t n = json_array_size(a);
	if (n > TT_MAX_FRAMES) {
		out->frames_dropped += n - TT_MAX_FRAMES;
		n = TT_MAX_FRAMES;
	}
	if (!n)
		return 0;
	out->frames = calloc(n, sizeof(*out->frames));
	if (!out->frames)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *f = json_array_get(a, i);
		if (!json_is_object(f))
			continue;
		struct tt_frame *fr = &out->frames[out->nframes++];
		get_hex(f, "addr", &fr->addr);
		fr->offset_known = get_hex(f, "offset", &fr->offset);
		fr->flags = copy_str(f, "module", fr->module, sizeof(fr->module));
		fr->flags |= copy_str(f, "symbol", fr->symbol, sizeof(fr->symbol));
		const json_t *so = json_object_get(f, "symbol_offset");
		fr->symbol_offset_known = json_is_integer(so) && json_integer_value(so) >= 0;
		fr->symbol_offset = fr->symbol_offset_known ? (uint64_t)json_integer_value(so) : 0;
	}
	return 0;
}

static void parse_task(const json_t *task, struct tt_crash *out)
{
	out->type_id = -1;
	if (!json_is_object(task))
		return;
	out->task_known = true;
	out->task_id = get_u64(task, "id");
	out->task_name.flags = copy_str(task, "name", out->task_name.s, sizeof(out->task_name.s));
	out->type_name.flags = copy_str(task, "type", out->type_name.s, sizeof(out->type_name.s));
	out->type_id = (int)get_int(task, "type_id", 0, 1 << 16, -1);
}

int tt_crash_parse_line(const char *line, size_t len, struct tt_crash *out)
{
	*out = (struct tt_crash){ 0 };
	json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(o) || get_int(o, "version", 1, 1, 0) != 1) {
		json_decref(o);
		return -EBADMSG;
	}
	copy_str(o, "time", out->time, sizeof(out->time));
	out->time_unix_ns = parse_time(out->time);
	out->ts_ns = get_u64(o, "ts_ns");
	out->pid = (pid_t)get_int(o, "pid", 0, INT32_MAX, 0);
	out->tid = (uint32_t)get_int(o, "tid", 0, INT32_MAX, 0);
	out->sender_pid = (uint32_t)get_int(o, "sender_pid", 0, INT32_MAX, 0);
	out->comm.flags = copy_str(o, "comm", out->comm.s, sizeof(out->comm.s));
	out->thread.flags = copy_str(o, "thread", out->thread.s, sizeof(out->thread.s));
	parse_task(json_object_get(o, "task"), out);
	copy_str(o, "signal", out->signal, sizeof(out->signal));
	copy_str(o, "code", out->code, sizeof(out->code));
	out->signo = (int)get_int(o, "signo", 0, 128, 0);
	out->si_code = (int)get_int(o, "si_code", INT32_MIN, INT32_MAX, 0);
	out->fault_addr_known = get_hex(o, "fault_addr", &out->fault_addr);
	out->frames_dropped = get_u64(o, "frames_dropped");
	out->stack_error = (int)get_int(o, "stack_error", -4095, 0, 0);
	int rc = parse_frames(json_object_get(o, "frames"), out);
	json_decref(o);
	return rc;
}

/* ---- the file ------------------------------------------------------------- */

static void keep(struct tt_crashlog *c, struct tt_crash *cr)
{
	if (c->n == TT_MAX_CRASHES) {
		free(c->ring[c->head].frames);
		c->ring[c->head] = *cr;
		c->head = (c->head + 1) % TT_MAX_CRASHES;
		return;
	}
	c->ring[(c->head + c->n++) % TT_MAX_CRASHES] = *cr;
}

static void take_line(struct tt_crashlog *c, const char *line, size_t len)
{
	if (!len)
		return;
	struct tt_crash cr;
	if (tt_crash_parse_line(line, len, &cr) < 0) {
		free(cr.frames);
		c->bad++;
		return;
	}
	keep(c, &cr);
}

static int append_partial(struct tt_crashlog *c, const char *p, size_t n)
{
	char *q = realloc(c->partial, c->plen + n + 1);
	if (!q)
		return -ENOMEM;
	c->partial = q;
	memcpy(c->partial + c->plen, p, n);
	c->plen += n;
	return 0;
}

/* Splits buf into lines, joining the partial line left from the last read. */
static int take_bytes(struct tt_crashlog *c, const char *buf, size_t n)
{
	const char *p = buf, *end = buf + n;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t seg = (size_t)((nl ? nl : end) - p);
		const char *next = nl ? nl + 1 : end;
		if (c->skipping) {   /* the rest of an over-long (or cut) line */
			c->skipping = !nl;
		} else if (c->plen + seg > LINE_MAX_BYTES) {
			c->bad++;
			c->plen = 0;
			c->skipping = !nl;
		} else if (!nl) {
			if (append_partial(c, p, seg) < 0)
				return -ENOMEM;
		} else if (c->plen) {
			if (append_partial(c, p, seg) < 0)
				return -ENOMEM;
			take_line(c, c->partial, c->plen);
			c->plen = 0;
		} else {
			take_line(c, p, seg);
		}
		p = next;
	}
	return 0;
}

int tt_crashlog_update(struct tt_crashlog *c, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (st.st_dev != c->dev || st.st_ino != c->ino || st.st_size < c->off) {
		clear(c);
		c->dev = st.st_dev;
		c->ino = st.st_ino;
		if (st.st_size > (off_t)FIRST_READ_MAX) {
			c->off = st.st_size - (off_t)FIRST_READ_MAX;
			c->skipping = true;   /* the first line there is likely cut */
		}
	}
	char buf[65536];
	int rc = 0;
	while (c->off < st.st_size) {
		ssize_t r = pread(fd, buf, sizeof(buf), c->off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : 0;
			break;
		}
		c->off += r;
		if ((rc = take_bytes(c, buf, (size_t)r)) < 0)
			break;
	}
	close(fd);
	return rc;
}

int tt_crashlog_fill(const struct tt_crashlog *c, struct tt_model *m, uint64_t until_unix_ns, const char *path)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++) {
		const struct tt_crash *cr = &c->ring[(c->head + i) % TT_MAX_CRASHES];
		n += !until_unix_ns || cr->time_unix_ns <= until_unix_ns;
	}
	struct tt_crash *out = n ? calloc(n, sizeof(*out)) : NULL;
	if (n && !out)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < c->n && k < n; i++) {
		const struct tt_crash *cr = &c->ring[(c->head + i) % TT_MAX_CRASHES];
		if (until_unix_ns && cr->time_unix_ns > until_unix_ns)
			continue;
		out[k] = *cr;
		out[k].frames = NULL;
		out[k].nframes = 0;
		if (cr->nframes && (out[k].frames = malloc(cr->nframes * sizeof(*cr->frames)))) {
			memcpy(out[k].frames, cr->frames, cr->nframes * sizeof(*cr->frames));
			out[k].nframes = cr->nframes;
		}
		k++;
	}
	for (size_t i = 0; i < m->ncrashes; i++)
		free(m->crashes[i].frames);
	free(m->crashes);
	m->crashes = out;
	m->ncrashes = k;
	m->crashes_known = true;
	snprintf(m->crashes_source, sizeof(m->crashes_source), "%s", path ? path : "");
	return 0;
}
