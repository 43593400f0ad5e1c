/* Reader of the shared-memory registry (see taskmon_shm.h).
 *
 * It runs inside a root collector on files that unprivileged processes write,
 * so every byte is hostile: the layout is checked once at open and copied into
 * the reader, live fields are re-read with relaxed atomic loads and checked
 * again on every use, and all access to the mapping happens inside a guard
 * that turns the SIGBUS of a file truncated under us into -EIO.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"
#include "proc.h"
#include "taskmon_shm.h"

/* Large enough for 41 million slots; bounds the mapping a forged file can ask for. */
#define MAX_SEGMENT_BYTES (4ull << 30)
/* A writer keeps a slot odd for a few stores; more than this and it was
 * preempted or died mid-write, and the record is left out of this read. */
#define SEQ_RETRIES 8
/* Retries one read may spend over all slots: a forged segment full of odd
 * counters costs one pass, not slot_count x SEQ_RETRIES yields. */
#define SEQ_RETRY_BUDGET 256
#define COMM_LEN 16
/* Bounds the ring a forged header can make a reader copy and sort. */
#define MAX_MESSAGES 65536

/* Word-wise copies and the 8-aligned regions rely on these. */
_Static_assert(sizeof(struct tm_shm_header) % 8 == 0, "header not a whole number of words");
_Static_assert(sizeof(struct tm_shm_type) % 8 == 0, "type not a whole number of words");
_Static_assert(sizeof(struct tm_shm_slot) % 8 == 0, "slot not a whole number of words");
_Static_assert(sizeof(struct tm_shm_message) % 8 == 0, "message not a whole number of words");
_Static_assert(TM_SHM_MESSAGE_TEXT <= UINT16_MAX, "message length field too small");
_Static_assert(offsetof(struct tm_shm_header, comm) % 8 == 0, "comm not word-aligned");
_Static_assert(offsetof(struct tm_shm_slot, name) % 8 == 0, "slot name not word-aligned");
_Static_assert(TM_NAME_MAX % 8 == 0 && COMM_LEN % 8 == 0, "strings not whole words");

struct tm_shm_reader {
	const unsigned char *base;      /* the mapping, size bytes */
	size_t   size;
	uint64_t types_offset, slots_offset, messages_offset;
	uint32_t slot_count;
	uint32_t message_count;         /* 0: no ring */
	pid_t    pid;
	uint64_t start_ticks;
	dev_t    dev;                   /* which file was validated, for remove_stale */
	ino_t    ino;
	uint64_t invalid;               /* records skipped as malformed; atomic */
	char     comm[COMM_LEN];
	char     path[128];             /* for messages; may be cut short */
};

/* ---- SIGBUS guard ---------------------------------------------------------- */

struct guard {
	sigjmp_buf jb;
	const unsigned char *lo;
	size_t len;
};

/* initial-exec: the handler reads it, and a dynamic TLS access there could
 * allocate. */
static _Thread_local struct guard *cur_guard __attribute__((tls_model("initial-exec")));
static struct sigaction prev_bus;
static int guard_err;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static bool is_sent_signal(const siginfo_t *si)
{
	return si == NULL || si->si_code <= 0;   /* kill, sigqueue, tgkill: not a fault */
}

/* Hands a SIGBUS that is not ours to whoever had it before us. */
static void chain_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct sigaction prev = prev_bus;
	if (prev.sa_handler == SIG_IGN && is_sent_signal(si))
		return;
	if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
		if (prev.sa_flags & SA_SIGINFO)
			prev.sa_sigaction(sig, si, uc);
		else
			prev.sa_handler(sig);
		return;
	}
	/* Default action: put it back; a fault recurs on return, a sent signal is
	 * raised again and arrives once this handler has returned. */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	if (is_sent_signal(si))
		raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct guard *g = cur_guard;
	if (g != NULL && !is_sent_signal(si)) {
		const unsigned char *addr = si->si_addr;
		if (addr >= g->lo && (size_t)(addr - g->lo) < g->len) {
			cur_guard = NULL;
			siglongjmp(g->jb, 1);
		}
	}
	chain_sigbus(sig, si, uc);
}

static void guard_install(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &prev_bus) != 0)
		guard_err = errno;
}

typedef int (*guarded_fn)(const tm_shm_reader *r, void *ctx);

/* Runs fn with the mapping guarded. fn may only load from the mapping and
 * store into memory it was given: no malloc, no locks, no error sentences,
 * since a fault abandons it wherever it is. */
static int run_guarded(const tm_shm_reader *r, guarded_fn fn, void *ctx)
{
	struct guard g;
	struct guard *const outer = cur_guard;

	pthread_once(&guard_once, guard_install);
	if (guard_err != 0)
		return tm__fail(guard_err, "cannot install the SIGBUS handler that guards segment reads: %s",
				strerror(guard_err));
	g.lo = r->base;
	g.len = r->size;
	if (sigsetjmp(g.jb, 1) != 0) {   /* 1: the handler's blocked SIGBUS must be unblocked */
		cur_guard = outer;
		return tm__fail(EIO, "segment %s: segment was truncated while being read", r->path);
	}
	cur_guard = &g;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);   /* armed before the first load */
	int rc = fn(r, ctx);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	cur_guard = outer;
	return rc;
}

/* ---- loading from the mapping ----------------------------------------------- */

/* Relaxed word loads, never memcpy: the workload is storing concurrently. */
static void load_words(void *dst, const void *src, size_t bytes)
{
	const uint64_t *s = src;
	unsigned char *d = dst;
	for (size_t i = 0; i < bytes / 8; i++) {
		/* Acquire: keeps a seqlock's closing sequence load after these, no fence needed. */
		uint64_t w = __atomic_load_n(&s[i], __ATOMIC_ACQUIRE);
		memcpy(d + 8 * i, &w, sizeof(w));
	}
}

static const struct tm_shm_header *hdr(const tm_shm_reader *r)
{
	return (const struct tm_shm_header *)(const void *)r->base;
}

static const struct tm_shm_type *type_at(const tm_shm_reader *r, size_t i)
{
	return (const void *)(r->base + r->types_offset + i * sizeof(struct tm_shm_type));
}

static const struct tm_shm_slot *slot_at(const tm_shm_reader *r, size_t i)
{
	return (const void *)(r->base + r->slots_offset + i * sizeof(struct tm_shm_slot));
}

static uint64_t load_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void count_invalid(const tm_shm_reader *r)
{
	/* The only thing a read changes in the reader; readers may share it. */
	__atomic_fetch_add(&((tm_shm_reader *)r)->invalid, 1, __ATOMIC_RELAXED);
}

/* 1..TM_NAME_MAX-1 printable ASCII bytes, NUL-terminated inside the field. */
static bool name_valid(const char *name)
{
	size_t n = strnlen(name, TM_NAME_MAX);
	if (n == 0 || n == TM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

static void copy_name(char dst[TM_NAME_MAX], const char *src)
{
	memset(dst, 0, TM_NAME_MAX);
	memcpy(dst, src, strnlen(src, TM_NAME_MAX - 1));
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	uint64_t s;
	return __builtin_add_overflow(a, b, &s) ? UINT64_MAX : s;
}

/* Types [0, types_used) are registered; the writer bumps types_used after
 * filling one, hence acquire. */
static size_t types_in_use(const tm_shm_reader *r)
{
	uint64_t used = __atomic_load_n(&hdr(r)->types_used, __ATOMIC_ACQUIRE);
	return used < TM_MAX_TYPES ? (size_t)used : TM_MAX_TYPES;
}

/* Copies type i; false for an unused id, or for a malformed one (counted). */
static bool load_type(const tm_shm_reader *r, size_t i, struct tm_shm_type *t)
{
	load_words(t, type_at(r, i), sizeof(*t));
	if (t->name[0] == '\0')
		return false;
	if (!name_valid(t->name)) {
		count_invalid(r);
		return false;
	}
	return true;
}

/* ---- opening ------------------------------------------------------------------ */

/* Acquire on the magic first: a writer that stores it last, with release,
 * hands over a complete header to whoever sees it. */
static int guarded_copy_header(const tm_shm_reader *r, void *ctx)
{
	(void)__atomic_load_n(&hdr(r)->magic, __ATOMIC_ACQUIRE);
	load_words(ctx, r->base, sizeof(struct tm_shm_header));
	return 0;
}

/* The region [off, off + count * size) must lie after the header and inside the file. */
static int check_region(const tm_shm_reader *r, const char *what, uint64_t off,
			uint64_t count, uint64_t size, uint64_t *end)
{
	uint64_t bytes;
	if (off % 8 != 0)
		return tm__fail(EBADMSG, "segment %s: %s region offset %llu is not 8-byte aligned",
				r->path, what, (unsigned long long)off);
	if (__builtin_mul_overflow(count, size, &bytes) || __builtin_add_overflow(off, bytes, end))
		return tm__fail(EBADMSG, "segment %s: %s region offset %llu + %llu x %llu bytes overflows",
				r->path, what, (unsigned long long)off, (unsigned long long)count,
				(unsigned long long)size);
	if (off < sizeof(struct tm_shm_header))
		return tm__fail(EBADMSG, "segment %s: %s region at offset %llu overlaps the header",
				r->path, what, (unsigned long long)off);
	if (*end > r->size)
		return tm__fail(EBADMSG, "segment %s: %s region ends past the end of the file (%llu > %zu bytes)",
				r->path, what, (unsigned long long)*end, r->size);
	return 0;
}

/* The ring must not overlap either region; none at all is fine. */
static int check_messages(const tm_shm_reader *r, const struct tm_shm_header *h, uint64_t types_end,
			  uint64_t slots_end)
{
	uint64_t end;
	if (h->message_count == 0)
		return 0;
	if (h->message_size != sizeof(struct tm_shm_message))
		return tm__fail(EBADMSG, "segment %s: message size is %u, this reader expects %zu",
				r->path, h->message_size, sizeof(struct tm_shm_message));
	if (h->message_count > MAX_MESSAGES)
		return tm__fail(EBADMSG, "segment %s: message count %u is more than the %d a ring may have",
				r->path, h->message_count, MAX_MESSAGES);
	int rc = check_region(r, "message", h->messages_offset, h->message_count, h->message_size, &end);
	if (rc == 0 && ((h->messages_offset < types_end && h->types_offset < end) ||
			(h->messages_offset < slots_end && h->slots_offset < end)))
		rc = tm__fail(EBADMSG, "segment %s: message region [%llu, %llu) overlaps the type or slot region",
			      r->path, (unsigned long long)h->messages_offset, (unsigned long long)end);
	return rc;
}

static int check_sizes(const tm_shm_reader *r, const struct tm_shm_header *h)
{
	static const struct { const char *what; size_t off; uint32_t want; } fields[] = {
		{ "header size", offsetof(struct tm_shm_header, header_size), sizeof(struct tm_shm_header) },
		{ "type size", offsetof(struct tm_shm_header, type_size), sizeof(struct tm_shm_type) },
		{ "slot size", offsetof(struct tm_shm_header, slot_size), sizeof(struct tm_shm_slot) },
		{ "type count", offsetof(struct tm_shm_header, type_count), TM_MAX_TYPES },
		{ "histogram bucket count", offsetof(struct tm_shm_header, hist_buckets), TM_HIST_BUCKETS },
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		uint32_t got;
		memcpy(&got, (const char *)h + fields[i].off, sizeof(got));
		if (got != fields[i].want)
			return tm__fail(EBADMSG, "segment %s: %s is %u, this reader expects %u",
					r->path, fields[i].what, got, fields[i].want);
	}
	return 0;
}

static int check_layout(const tm_shm_reader *r, const struct tm_shm_header *h)
{
	uint64_t types_end, slots_end;
	if (h->total_size != r->size)
		return tm__fail(EBADMSG, "segment %s: total size %llu in the header, but the file has %zu bytes",
				r->path, (unsigned long long)h->total_size, r->size);
	if (h->slot_count == 0)
		return tm__fail(EBADMSG, "segment %s: slot count is 0", r->path);
	int rc = check_region(r, "type", h->types_offset, h->type_count, h->type_size, &types_end);
	if (rc == 0)
		rc = check_region(r, "slot", h->slots_offset, h->slot_count, h->slot_size, &slots_end);
	if (rc == 0 && h->types_offset < slots_end && h->slots_offset < types_end)
		rc = tm__fail(EBADMSG, "segment %s: type region [%llu, %llu) and slot region [%llu, %llu) overlap",
			      r->path, (unsigned long long)h->types_offset, (unsigned long long)types_end,
			      (unsigned long long)h->slots_offset, (unsigned long long)slots_end);
	if (rc == 0)
		rc = check_messages(r, h, types_end, slots_end);
	return rc;
}

static int check_header(const tm_shm_reader *r, const struct tm_shm_header *h, pid_t want_pid)
{
	if (h->magic != TM_SHM_MAGIC)
		return tm__fail(EBADMSG, "segment %s: bad magic 0x%016llx, not a taskmon segment",
				r->path, (unsigned long long)h->magic);
	if (h->version != TM_SHM_VERSION)
		return tm__fail(EBADMSG, "segment %s: layout version %u, this reader understands %d",
				r->path, h->version, TM_SHM_VERSION);
	int rc = check_sizes(r, h);
	if (rc == 0)
		rc = check_layout(r, h);
	if (rc != 0)
		return rc;
	if (h->pid <= 0)
		return tm__fail(EBADMSG, "segment %s: pid %d in the header is not a process id", r->path, h->pid);
	if (want_pid > 0 && h->pid != want_pid)
		return tm__fail(EBADMSG, "segment %s: the header names pid %d, the file name pid %d",
				r->path, h->pid, (int)want_pid);
	return 0;
}

/* The kernel's comm may hold any byte; a terminal must not get them raw. */
static void sanitise_comm(char out[COMM_LEN], const char in[COMM_LEN])
{
	size_t n = strnlen(in, COMM_LEN - 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		out[i] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
	}
	memset(out + n, 0, COMM_LEN - n);
}

/* "taskmon.<pid>", decimal 1..INT_MAX without sign, padding or leading zeros; else 0. */
static pid_t parse_segment_name(const char *name)
{
	size_t plen = strlen(TM_SHM_PREFIX);
	if (strncmp(name, TM_SHM_PREFIX, plen) != 0)
		return 0;
	const char *p = name + plen;
	if (*p < '1' || *p > '9')
		return 0;
	long long v = 0;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (*p - '0');
		if (v > INT_MAX)
			return 0;
	}
	return (pid_t)v;
}

static int open_error(int err, const char *path)
{
	if (err == ENOENT)
		return tm__fail(ENOENT, "segment %s does not exist", path);
	if (err == EACCES || err == EPERM)
		return tm__fail(EACCES, "segment %s may not be read: %s", path, strerror(err));
	if (err == ELOOP)
		return tm__fail(EBADMSG, "segment %s is a symbolic link, not a segment", path);
	return tm__fail(err, "cannot open segment %s: %s", path, strerror(err));
}

static int check_file(const char *path, const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return tm__fail(EBADMSG, "segment %s is not a regular file", path);
	if (st->st_size < (off_t)sizeof(struct tm_shm_header))
		return tm__fail(EBADMSG, "segment %s: file is %lld bytes, shorter than the %zu-byte header",
				path, (long long)st->st_size, sizeof(struct tm_shm_header));
	if ((unsigned long long)st->st_size > MAX_SEGMENT_BYTES)
		return tm__fail(EBADMSG, "segment %s: file is %lld bytes, more than the %llu a segment may have",
				path, (long long)st->st_size, MAX_SEGMENT_BYTES);
	return 0;
}

/* Maps the open file into a new reader; the fd is not kept. */
static int map_file(tm_shm_reader **out, int fd, const char *path)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return tm__fail(errno, "cannot stat segment %s: %s", path, strerror(errno));
	int rc = check_file(path, &st);
	if (rc != 0)
		return rc;
	tm_shm_reader *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return tm__fail(ENOMEM, "out of memory opening segment %s", path);
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		rc = tm__fail(errno, "cannot map segment %s: %s", path, strerror(errno));
		free(r);
		return rc;
	}
	r->base = m;
	r->size = (size_t)st.st_size;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	snprintf(r->path, sizeof(r->path), "%s", path);
	*out = r;
	return 0;
}

/* Copies and checks the header; the layout fields are taken from this one
 * copy and never re-read, so a writer changing them later changes nothing. */
static int adopt_header(tm_shm_reader *r, pid_t want_pid)
{
	struct tm_shm_header h;
	int rc = run_guarded(r, guarded_copy_header, &h);
	if (rc == 0)
		rc = check_header(r, &h, want_pid);
	if (rc != 0)
		return rc;
	r->types_offset = h.types_offset;
	r->slots_offset = h.slots_offset;
	r->slot_count = h.slot_count;
	r->messages_offset = h.messages_offset;
	r->message_count = h.message_count;
	r->pid = h.pid;
	r->start_ticks = h.proc_start_ticks;
	sanitise_comm(r->comm, h.comm);
	return 0;
}

static int open_segment(tm_shm_reader **out, const char *path, pid_t want_pid)
{
	tm_shm_reader *r = NULL;
	*out = NULL;
	/* O_NONBLOCK: a FIFO planted under the name must not hang the collector. */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return open_error(errno, path);
	int rc = map_file(&r, fd, path);
	close(fd);
	if (rc == 0)
		rc = adopt_header(r, want_pid);
	if (rc != 0) {
		tm_shm_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

int tm_shm_open_path(tm_shm_reader **out, const char *path)
{
	if (out == NULL || path == NULL)
		return tm__fail(EINVAL, "tm_shm_open_path: out and path must not be NULL");
	const char *slash = strrchr(path, '/');
	/* A file that is named like a segment must be the segment of that pid. */
	return open_segment(out, path, parse_segment_name(slash ? slash + 1 : path));
}

static void segment_path(char *buf, size_t len, pid_t pid)
{
	snprintf(buf, len, "%s/%s%d", TM_SHM_DIR, TM_SHM_PREFIX, (int)pid);
}

int tm_shm_open_pid(tm_shm_reader **out, pid_t pid)
{
	char path[64];
	if (out == NULL)
		return tm__fail(EINVAL, "tm_shm_open_pid: out must not be NULL");
	*out = NULL;
	if (pid <= 0)
		return tm__fail(EINVAL, "pid %d is not a process id", (int)pid);
	segment_path(path, sizeof(path), pid);
	return open_segment(out, path, pid);
}

void tm_shm_close(tm_shm_reader *r)
{
	if (r == NULL)
		return;
	if (r->base != NULL)
		munmap((void *)r->base, r->size);
	free(r);
}

/* ---- facts about the workload ---------------------------------------------- */

pid_t tm_shm_pid(const tm_shm_reader *r)
{
	return r ? r->pid : 0;
}

const char *tm_shm_comm(const tm_shm_reader *r)
{
	return r ? r->comm : "";
}

/* Records skipped because they were malformed: a forged or badly torn
 * segment, as opposed to records merely being written. */
uint64_t tm_shm_invalid_records(const tm_shm_reader *r)
{
	return r ? __atomic_load_n(&r->invalid, __ATOMIC_RELAXED) : 0;
}

/* Only a definite answer counts as stale: a pid that is alive but whose /proc
 * entry cannot be read (hidepid, a race with exit) is left for the next look. */
bool tm_shm_is_stale(const tm_shm_reader *r)
{
	if (r == NULL)
		return false;
	int saved = errno;
	bool stale = false;
	uint64_t ticks;
	if (kill(r->pid, 0) != 0 && errno == ESRCH)
		stale = true;
	else if (r->start_ticks != 0 && tm__proc_start_ticks(r->pid, &ticks) == 0)
		stale = ticks != r->start_ticks;   /* the pid was reused */
	errno = saved;
	return stale;
}

static int guarded_flags(const tm_shm_reader *r, void *ctx)
{
	*(uint64_t *)ctx = __atomic_load_n(&hdr(r)->flags, __ATOMIC_ACQUIRE);
	return 0;
}

/* A segment truncated under us reports false; the next read says -EIO. */
bool tm_shm_is_closed(const tm_shm_reader *r)
{
	uint64_t flags = 0;
	if (r == NULL || run_guarded(r, guarded_flags, &flags) != 0)
		return false;
	return (flags & TM_SHM_F_CLOSED) != 0;
}

/* ---- types and statistics ------------------------------------------------------- */

struct types_ctx {
	struct tm_shm_type_snapshot *out;
	size_t cap, n;
	struct tm_shm_type scratch;
};

static void fill_type_snapshot(struct tm_shm_type_snapshot *s, int id, const struct tm_shm_type *t)
{
	s->id = id;
	copy_name(s->name, t->name);
	memcpy(s->counters, t->counters, sizeof(s->counters));
	s->max_concurrent = t->max_concurrent;
	s->default_timeout_ms = t->default_timeout_ms;
	s->latency_count = t->latency_count;
	s->latency_max_ns = t->latency_max_ns;
	s->latency_sum_ns = t->latency_sum_ns;
	s->trace_skipped = t->trace_skipped;
	memcpy(s->hist, t->hist, sizeof(s->hist));
}

static int guarded_types(const tm_shm_reader *r, void *arg)
{
	struct types_ctx *c = arg;
	size_t used = types_in_use(r);
	for (size_t i = 0; i < used && c->n < c->cap; i++) {
		if (load_type(r, i, &c->scratch))
			fill_type_snapshot(&c->out[c->n++], (int)i, &c->scratch);
	}
	return 0;
}

int tm_shm_read_types(tm_shm_reader *r, struct tm_shm_type_snapshot *out, size_t cap)
{
	if (r == NULL || (out == NULL && cap != 0))
		return tm__fail(EINVAL, "tm_shm_read_types: reader and output must not be NULL");
	struct types_ctx *c = malloc(sizeof(*c));  /* ~10 KiB of scratch: not on a small stack */
	if (c == NULL)
		return tm__fail(ENOMEM, "out of memory reading segment %s", r->path);
	*c = (struct types_ctx){ .out = out, .cap = cap };
	int rc = run_guarded(r, guarded_types, c);
	if (rc == 0)
		rc = (int)(c->n);
	free(c);
	return rc;
}

struct stats_ctx {
	struct tm_stats *out;
	uint64_t hist[TM_HIST_BUCKETS];   /* all types merged */
	uint64_t max_ns;
	struct tm_shm_type scratch;
};

/* Shared with the in-process tm_get_stats: one place maps counters to fields. */
void tm__stats_add_type(struct tm_stats *s, int id, const uint64_t *c)
{
	s->by_type[id] = (struct tm_type_stats){
		.spawned = c[TM_C_SPAWNED], .running = c[TM_C_RUNNING], .succeeded = c[TM_C_SUCCEEDED],
		.failed = c[TM_C_FAILED], .panicked = c[TM_C_PANICKED], .cancelled = c[TM_C_CANCELLED],
		.timed_out = c[TM_C_TIMED_OUT], .restarts = c[TM_C_RESTARTS], .rejected = c[TM_C_REJECTED],
		.crashed = c[TM_C_CRASHED], .escalations = c[TM_C_ESCALATIONS],
	};
	s->total_spawned = sat_add(s->total_spawned, c[TM_C_SPAWNED]);
	s->currently_running = sat_add(s->currently_running, c[TM_C_RUNNING]);
	s->total_completed = sat_add(s->total_completed, c[TM_C_SUCCEEDED]);
	s->total_failed = sat_add(s->total_failed, c[TM_C_FAILED]);
	s->total_panicked = sat_add(s->total_panicked, c[TM_C_PANICKED]);
	s->total_cancelled = sat_add(s->total_cancelled, c[TM_C_CANCELLED]);
	s->total_timed_out = sat_add(s->total_timed_out, c[TM_C_TIMED_OUT]);
	s->total_restarts = sat_add(s->total_restarts, c[TM_C_RESTARTS]);
	s->total_rejected = sat_add(s->total_rejected, c[TM_C_REJECTED]);
	s->total_crashed = sat_add(s->total_crashed, c[TM_C_CRASHED]);
	s->total_escalations = sat_add(s->total_escalations, c[TM_C_ESCALATIONS]);
}

static int guarded_stats(const tm_shm_reader *r, void *arg)
{
	struct stats_ctx *c = arg;
	size_t used = types_in_use(r);
	for (size_t i = 0; i < used; i++) {
		if (!load_type(r, i, &c->scratch))
			continue;
		tm__stats_add_type(c->out, (int)i, c->scratch.counters);
		for (size_t b = 0; b < TM_HIST_BUCKETS; b++)
			c->hist[b] = sat_add(c->hist[b], c->scratch.hist[b]);
		if (c->scratch.latency_max_ns > c->max_ns)
			c->max_ns = c->scratch.latency_max_ns;
	}
	c->out->tracked_records = load_u64(&hdr(r)->tracked_records);
	c->out->tracker_bytes = load_u64(&hdr(r)->tracker_bytes);
	return 0;
}

int tm_shm_read_stats(tm_shm_reader *r, struct tm_stats *out)
{
	if (r == NULL || out == NULL)
		return tm__fail(EINVAL, "tm_shm_read_stats: reader and output must not be NULL");
	struct stats_ctx *c = calloc(1, sizeof(*c));   /* ~20 KiB */
	if (c == NULL)
		return tm__fail(ENOMEM, "out of memory reading segment %s", r->path);
	struct tm_stats s = { 0 };
	c->out = &s;
	int rc = run_guarded(r, guarded_stats, c);
	if (rc == 0) {
		s.spawn_latency_p50_ns = tm_hist_quantile(c->hist, c->max_ns, 0.50);
		s.spawn_latency_p95_ns = tm_hist_quantile(c->hist, c->max_ns, 0.95);
		s.spawn_latency_p99_ns = tm_hist_quantile(c->hist, c->max_ns, 0.99);
		s.spawn_latency_max_ns = c->max_ns;
		*out = s;
	}
	free(c);
	return rc;
}

/* ---- task records -------------------------------------------------------------- */

enum slot_state { SLOT_OK, SLOT_FREE, SLOT_BUSY };

/* A consistent copy of slot i under its sequence counter; retries come out
 * of *budget. */
static enum slot_state load_slot(const tm_shm_reader *r, size_t i, struct tm_shm_slot *copy,
				 unsigned *budget)
{
	const struct tm_shm_slot *s = slot_at(r, i);
	for (int attempt = 0; attempt < SEQ_RETRIES; attempt++) {
		if (attempt > 0) {
			if (*budget == 0)
				break;
			--*budget;
			sched_yield();   /* let a preempted writer finish */
		}
		uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		if (seq == 0)
			return SLOT_FREE;
		if (seq & 1u)
			continue;
		load_words(copy, s, sizeof(*copy));
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq)
			return SLOT_OK;
	}
	return SLOT_BUSY;
}

static bool slot_valid(const struct tm_shm_slot *s)
{
	return s->type < TM_MAX_TYPES && s->status < TM_STATUS_COUNT && s->tid <= INT_MAX &&
	       name_valid(s->name);
}

static void fill_task_info(struct tm_task_info *t, const struct tm_shm_slot *s)
{
	*t = (struct tm_task_info){
		.id = s->id, .tid = (pid_t)s->tid, .type = s->type, .status = (enum tm_status)s->status,
		.rc = s->rc, .spawn_ns = s->spawn_ns, .start_ns = s->start_ns, .end_ns = s->end_ns,
		.cpu_ns = s->cpu_ns, .restarts = s->restarts,
	};
	copy_name(t->name, s->name);
}

struct tasks_ctx {
	struct tm_task_info *out;
	size_t cap, n;
	unsigned retry_budget;
	bool running_only;
};

/* slots_used is live and hostile: bounded by the slot count fixed at open. */
static size_t slots_in_use(const tm_shm_reader *r)
{
	uint64_t used = __atomic_load_n(&hdr(r)->slots_used, __ATOMIC_ACQUIRE);
	return used < r->slot_count ? (size_t)used : r->slot_count;
}

static int guarded_tasks(const tm_shm_reader *r, void *arg)
{
	struct tasks_ctx *c = arg;
	size_t used = slots_in_use(r);
	struct tm_shm_slot s;
	for (size_t i = 0; i < used && c->n < c->cap; i++) {
		if (load_slot(r, i, &s, &c->retry_budget) != SLOT_OK || s.id == 0)
			continue;
		if (!slot_valid(&s)) {
			count_invalid(r);
			continue;
		}
		if (c->running_only && s.status != TM_RUNNING)
			continue;
		fill_task_info(&c->out[c->n++], &s);
	}
	return 0;
}

int tm_shm_read_tasks(tm_shm_reader *r, struct tm_task_info *out, size_t cap, bool running_only)
{
	if (r == NULL || (out == NULL && cap != 0))
		return tm__fail(EINVAL, "tm_shm_read_tasks: reader and output must not be NULL");
	if (cap > INT_MAX)
		cap = INT_MAX;   /* the count is returned as an int */
	struct tasks_ctx c = { .out = out, .cap = cap, .retry_budget = SEQ_RETRY_BUDGET,
				 .running_only = running_only };
	int rc = run_guarded(r, guarded_tasks, &c);
	return rc == 0 ? (int)c.n : rc;
}

/* ---- the message ring ------------------------------------------------------------ */

static const struct tm_shm_message *message_at(const tm_shm_reader *r, size_t i)
{
	return (const void *)(r->base + r->messages_offset + i * sizeof(struct tm_shm_message));
}

struct messages_ctx {
	struct tm_shm_message *copy;    /* [message_count]: consistent copies, seq 0 = left out */
	unsigned retry_budget;
};

/* Copies every entry under its sequence counter; validation happens outside
 * the guard. An entry never used, or still being written after the retries,
 * is left with seq 0. */
static int guarded_messages(const tm_shm_reader *r, void *arg)
{
	struct messages_ctx *c = arg;
	for (size_t i = 0; i < r->message_count; i++) {
		const struct tm_shm_message *e = message_at(r, i);
		c->copy[i].seq = 0;
		for (int attempt = 0; attempt < SEQ_RETRIES; attempt++) {
			if (attempt > 0) {
				if (c->retry_budget == 0)
					break;
				c->retry_budget--;
				sched_yield();
			}
			uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
			if (seq == 0)
				break;
			if (seq & 1u)
				continue;
			load_words(&c->copy[i], e, sizeof(*e));
			if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) == seq) {
				c->copy[i].seq = seq;
				break;
			}
			c->copy[i].seq = 0;
		}
	}
	return 0;
}

/* Length within bounds, NUL right there, nothing but printable ASCII before it. */
static bool message_valid(const struct tm_shm_message *e)
{
	if (e->task_id == 0 || (e->kind != TM_SHM_MSG_PANIC && e->kind != TM_SHM_MSG_CRASH) ||
	    e->len >= TM_SHM_MESSAGE_TEXT || e->text[e->len] != '\0')
		return false;
	for (size_t i = 0; i < e->len; i++) {
		unsigned char ch = (unsigned char)e->text[i];
		if (ch < 0x20 || ch > 0x7e)
			return false;
	}
	return true;
}

static void fill_message_info(struct tm_shm_message_info *m, const struct tm_shm_message *e)
{
	*m = (struct tm_shm_message_info){
		.task_id = e->task_id, .serial = e->serial, .time_ns = e->time_ns, .restarts = e->restarts,
		.kind = e->kind, .cut = (e->flags & TM_SHM_MSG_F_CUT) != 0,
	};
	memcpy(m->text, e->text, e->len);
	m->text[e->len] = '\0';
}

static int cmp_serial_desc(const void *a, const void *b)
{
	const struct tm_shm_message_info *x = a, *y = b;
	return (x->serial < y->serial) - (x->serial > y->serial);
}

/* Every valid entry into a new array, newest first; *n how many. */
static int collect_messages(tm_shm_reader *r, struct tm_shm_message_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (r->message_count == 0)
		return 0;
	struct messages_ctx c = { .retry_budget = SEQ_RETRY_BUDGET };
	c.copy = calloc(r->message_count, sizeof(*c.copy));
	struct tm_shm_message_info *all = calloc(r->message_count, sizeof(*all));
	if (c.copy == NULL || all == NULL) {
		free(c.copy);
		free(all);
		return tm__fail(ENOMEM, "out of memory reading the messages of segment %s", r->path);
	}
	int rc = run_guarded(r, guarded_messages, &c);
	for (size_t i = 0; rc == 0 && i < r->message_count; i++) {
		if (c.copy[i].seq == 0)
			continue;
		if (!message_valid(&c.copy[i])) {
			count_invalid(r);
			continue;
		}
		fill_message_info(&all[(*n)++], &c.copy[i]);
	}
	free(c.copy);
	if (rc != 0) {
		free(all);
		*n = 0;
		return rc;
	}
	qsort(all, *n, sizeof(*all), cmp_serial_desc);
	*out = all;
	return 0;
}

int tm_shm_read_messages(tm_shm_reader *r, struct tm_shm_message_info *out, size_t cap)
{
	if (r == NULL || (out == NULL && cap != 0))
		return tm__fail(EINVAL, "tm_shm_read_messages: reader and output must not be NULL");
	struct tm_shm_message_info *all;
	size_t n;
	int rc = collect_messages(r, &all, &n);
	if (rc != 0)
		return rc;
	if (n > cap)
		n = cap;
	if (n > INT_MAX)
		n = INT_MAX;
	if (n)
		memcpy(out, all, n * sizeof(*out));
	free(all);
	return (int)n;
}

int tm_shm_read_task_message(tm_shm_reader *r, uint64_t task_id, struct tm_shm_message_info *out)
{
	if (r == NULL || out == NULL || task_id == 0)
		return tm__fail(EINVAL, "tm_shm_read_task_message: reader, output and task id must be given");
	struct tm_shm_message_info *all;
	size_t n;
	int rc = collect_messages(r, &all, &n);
	if (rc != 0)
		return rc;
	size_t i = 0;
	while (i < n && all[i].task_id != task_id)   /* newest first */
		i++;
	if (i < n)
		*out = all[i];
	free(all);
	if (i == n)
		return tm__fail(ENOENT, "segment %s holds no message of task %llu", r->path,
				(unsigned long long)task_id);
	return 0;
}

/* ---- the directory ----------------------------------------------------------------- */

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

int tm_shm_list(const char *dir, pid_t *pids, size_t cap)
{
	if (dir == NULL)
		dir = TM_SHM_DIR;
	if (pids == NULL && cap != 0)
		return tm__fail(EINVAL, "tm_shm_list: pids must not be NULL");
	if (cap > INT_MAX)
		cap = INT_MAX;
	DIR *d = opendir(dir);
	if (d == NULL)
		return tm__fail(errno, "cannot list %s: %s", dir, strerror(errno));
	size_t n = 0;
	struct dirent *e;
	while (n < cap && (e = readdir(d)) != NULL) {
		/* Symbolic links and the like are never segments; DT_UNKNOWN is left to open. */
		if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
			continue;
		pid_t pid = parse_segment_name(e->d_name);
		if (pid > 0)
			pids[n++] = pid;
	}
	closedir(d);
	if (n > 1)
		qsort(pids, n, sizeof(*pids), cmp_pid);
	return (int)n;
}

/* The validated file must still be the one under the name, or a new
 * workload that got the pid may just have created it. */
static int check_same_file(const tm_shm_reader *r, const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return tm__fail(errno, "segment %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_dev != r->dev || st.st_ino != r->ino)
		return tm__fail(EAGAIN, "segment %s was replaced while being checked; left alone", path);
	return 0;
}

int tm_shm_remove_stale(pid_t pid)
{
	char path[64];
	struct stat st;
	tm_shm_reader *r;
	if (pid <= 0)
		return tm__fail(EINVAL, "pid %d is not a process id", (int)pid);
	segment_path(path, sizeof(path), pid);
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? tm__fail(ENOENT, "segment %s does not exist", path)
				       : tm__fail(errno, "segment %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return tm__fail(EBADMSG, "segment %s is not a regular file; left alone", path);
	int rc = tm_shm_open_pid(&r, pid);
	if (rc != 0)
		return rc;
	if (!tm_shm_is_stale(r))
		rc = tm__fail(EBUSY, "segment %s: workload %d is still running", path, (int)pid);
	else
		rc = check_same_file(r, path);
	tm_shm_close(r);
	if (rc == 0 && unlink(path) != 0)
		rc = errno == ENOENT ? tm__fail(ENOENT, "segment %s does not exist", path)
				     : tm__fail(errno, "cannot remove segment %s: %s", path, strerror(errno));
	return rc;
}
