/* Shared-memory reader: segments built by hand, valid and forged. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "proc.h"
#include "taskmon_shm.h"

/* A sanitizer's SIGBUS handler, chained to from the reader's, reports and
 * exits instead of dying by the signal that test_unguarded_sigbus_is_fatal
 * expects. Guarded reads work either way. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "handle_sigbus=0";
}

const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "handle_sigbus=0";
}

#define NSLOTS      12
#define HDR_SIZE    sizeof(struct tm_shm_header)
#define TYPES_OFF   HDR_SIZE
#define SLOTS_OFF   (TYPES_OFF + TM_MAX_TYPES * sizeof(struct tm_shm_type))
#define MSGS_OFF(n) (SLOTS_OFF + (n) * sizeof(struct tm_shm_slot))
#define NMSGS       8
#define SEG_SIZE(n) (MSGS_OFF(n) + NMSGS * sizeof(struct tm_shm_message))

struct seg {
	unsigned char *buf;
	size_t size;
};

struct fx {
	char dir[64];
	char path[128];   /* dir/seg: a name that implies no pid */
	struct seg seg;
	uint64_t ticks;   /* ours, for a segment that is not stale */
};

static struct tm_shm_header *H(struct seg *s)
{
	return (void *)s->buf;
}

static struct tm_shm_type *T(struct seg *s, int i)
{
	return (void *)(s->buf + TYPES_OFF + (size_t)i * sizeof(struct tm_shm_type));
}

static struct tm_shm_slot *S(struct seg *s, int i)
{
	return (void *)(s->buf + SLOTS_OFF + (size_t)i * sizeof(struct tm_shm_slot));
}

static struct tm_shm_message *M(struct seg *s, int i)
{
	return (void *)(s->buf + H(s)->messages_offset + (size_t)i * sizeof(struct tm_shm_message));
}

/* ---- building segments ---------------------------------------------------- */

static void set_counters(struct tm_shm_type *t, uint64_t base)
{
	for (int c = 0; c < TM_C_COUNT; c++)
		t->counters[c] = base + (uint64_t)c;
}

static void build_types(struct seg *s)
{
	strcpy(T(s, 0)->name, "general");
	set_counters(T(s, 0), 100);
	T(s, 0)->hist[tm_hist_bucket(10)] = 90;
	T(s, 0)->latency_count = 90;
	T(s, 0)->latency_max_ns = 10;
	T(s, 0)->max_concurrent = 4;

	strcpy(T(s, 1)->name, "network");
	set_counters(T(s, 1), 10);
	T(s, 1)->hist[tm_hist_bucket(20)] = 9;
	T(s, 1)->hist[tm_hist_bucket(1000)] = 1;
	T(s, 1)->latency_count = 10;
	T(s, 1)->latency_max_ns = 1000;
	T(s, 1)->default_timeout_ms = 2500;

	strcpy(T(s, 3)->name, "bad\001name");     /* non-printable: skipped, counted */
	set_counters(T(s, 3), 1000000);
	T(s, 3)->hist[tm_hist_bucket(5000000)] = 1000;

	strcpy(T(s, 5)->name, "custom-x");
	set_counters(T(s, 5), 1);
	H(s)->types_used = 6;
}

static void put_slot(struct seg *s, int i, uint32_t seq, uint64_t id, unsigned type,
		     unsigned status, const char *name)
{
	struct tm_shm_slot *sl = S(s, i);
	sl->seq = seq;
	sl->id = id;
	sl->type = (uint16_t)type;
	sl->status = (uint8_t)status;
	sl->tid = 1000 + (uint32_t)i;
	sl->spawn_ns = 100 * id;
	sl->start_ns = 100 * id + 5;
	sl->rc = -(int)i;
	sl->restarts = (uint32_t)i;
	memset(sl->name, 0, TM_NAME_MAX);
	memcpy(sl->name, name, strnlen(name, TM_NAME_MAX));
}

static void build_slots(struct seg *s)
{
	put_slot(s, 0, 2, 1, 1, TM_RUNNING, "net-1");
	put_slot(s, 1, 4, 2, 0, TM_SUCCEEDED, "gen");
	S(s, 1)->end_ns = 999;
	S(s, 1)->cpu_ns = 77;
	put_slot(s, 2, 2, 3, 40, TM_RUNNING, "bad-type");
	put_slot(s, 3, 2, 4, 0, 9, "bad-status");
	put_slot(s, 4, 2, 5, 0, TM_RUNNING, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); /* no NUL */
	put_slot(s, 5, 2, 6, 0, TM_RUNNING, "\001abc");
	put_slot(s, 6, 3, 7, 0, TM_RUNNING, "being-written");  /* odd seq: left out */
	put_slot(s, 7, 2, 0, 0, TM_RUNNING, "free");           /* id 0: free */
	put_slot(s, 8, 6, 9, 2, TM_FAILED, "x");
	put_slot(s, 9, 2, 10, 0, TM_RUNNING, "tid-too-big");
	S(s, 9)->tid = 0xffffffffu;
	/* slot 10 never used (seq 0); 11 beyond slots_used */
	put_slot(s, 11, 2, 12, 0, TM_RUNNING, "past-used");
	H(s)->slots_used = 11;
}

static void put_message(struct seg *s, int i, uint32_t seq, uint64_t task, uint64_t serial, unsigned kind,
			const char *text)
{
	struct tm_shm_message *m = M(s, i);
	memset(m, 0, sizeof(*m));
	m->seq = seq;
	m->task_id = task;
	m->serial = serial;
	m->kind = (uint8_t)kind;
	m->time_ns = 1000 + serial;
	m->restarts = (uint32_t)i;
	m->len = (uint16_t)strnlen(text, TM_SHM_MESSAGE_TEXT);
	memcpy(m->text, text, m->len < TM_SHM_MESSAGE_TEXT ? m->len : TM_SHM_MESSAGE_TEXT);
}

static void build_messages(struct seg *s)
{
	put_message(s, 0, 2, 2, 10, TM_SHM_MSG_PANIC, "boom!");
	put_message(s, 1, 4, 2, 12, TM_SHM_MSG_PANIC, "second time");
	put_message(s, 2, 2, 9, 11, TM_SHM_MSG_CRASH, "SIGSEGV at 0x0...");
	M(s, 2)->flags = TM_SHM_MSG_F_CUT;
	put_message(s, 3, 2, 3, 13, TM_SHM_MSG_PANIC, "forged length");
	M(s, 3)->len = 200;                                      /* past the text: skipped, counted */
	put_message(s, 4, 2, 4, 14, TM_SHM_MSG_PANIC, "no nul here");
	M(s, 4)->len = 5;                                        /* text[5] is not the NUL */
	put_message(s, 5, 2, 5, 15, TM_SHM_MSG_PANIC, "\033[2Jred"); /* terminal escape */
	put_message(s, 6, 3, 6, 16, TM_SHM_MSG_PANIC, "being written");  /* odd: left out */
	/* entry 7 never used */
}

static void build_segment(struct seg *s, uint32_t nslots, pid_t pid, uint64_t ticks)
{
	s->size = SEG_SIZE(nslots);
	s->buf = calloc(1, s->size);
	assert_non_null(s->buf);
	struct tm_shm_header *h = H(s);
	h->magic = TM_SHM_MAGIC;
	h->version = TM_SHM_VERSION;
	h->header_size = HDR_SIZE;
	h->type_size = sizeof(struct tm_shm_type);
	h->slot_size = sizeof(struct tm_shm_slot);
	h->type_count = TM_MAX_TYPES;
	h->hist_buckets = TM_HIST_BUCKETS;
	h->types_offset = TYPES_OFF;
	h->slots_offset = SLOTS_OFF;
	h->messages_offset = MSGS_OFF(nslots);
	h->message_size = sizeof(struct tm_shm_message);
	h->message_count = NMSGS;
	h->total_size = s->size;
	h->slot_count = nslots;
	h->pid = pid;
	h->proc_start_ticks = ticks;
	h->flags = TM_SHM_F_METRICS;
	memcpy(h->comm, "work\tload\377", 11);
	h->tracked_records = 5;
	h->tracker_bytes = 4096;
	build_types(s);
	build_slots(s);
	build_messages(s);
}

static void build_valid(struct seg *s, pid_t pid, uint64_t ticks)
{
	build_segment(s, NSLOTS, pid, ticks);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void write_seg(const char *path, const struct seg *s)
{
	write_file(path, s->buf, s->size);
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) != 0)
			unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/tm_shm_test.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/seg", f->dir);
	if (tm__proc_start_ticks(getpid(), &f->ticks) != 0)
		return -1;
	build_valid(&f->seg, getpid(), f->ticks);
	write_seg(f->path, &f->seg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	remove_tree(f->dir);
	free(f->seg.buf);
	free(f);
	return 0;
}

static tm_shm_reader *open_ok(const char *path)
{
	tm_shm_reader *r = NULL;
	int rc = tm_shm_open_path(&r, path);
	if (rc != 0)
		fail_msg("open %s: %d %s", path, rc, tm_last_error());
	return r;
}

static pid_t exited_child(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

/* ---- a valid segment ------------------------------------------------------- */

static void test_valid_header(void **state)
{
	struct fx *f = *state;
	tm_shm_reader *r = open_ok(f->path);
	assert_int_equal(tm_shm_pid(r), getpid());
	assert_string_equal(tm_shm_comm(r), "work?load?");
	assert_false(tm_shm_is_closed(r));
	assert_false(tm_shm_is_stale(r));
	tm_shm_close(r);

	H(&f->seg)->flags |= TM_SHM_F_CLOSED;
	write_seg(f->path, &f->seg);
	r = open_ok(f->path);
	assert_true(tm_shm_is_closed(r));
	tm_shm_close(r);
	tm_shm_close(NULL);
}

static void test_valid_types(void **state)
{
	struct fx *f = *state;
	tm_shm_reader *r = open_ok(f->path);
	static struct tm_shm_type_snapshot t[TM_MAX_TYPES];
	assert_int_equal(tm_shm_read_types(r, t, TM_MAX_TYPES), 3);
	assert_int_equal(tm_shm_invalid_records(r), 1);   /* type 3 */
	assert_int_equal(t[0].id, 0);
	assert_string_equal(t[0].name, "general");
	assert_int_equal(t[0].counters[TM_C_SPAWNED], 100);
	assert_int_equal(t[0].counters[TM_C_REJECTED], 108);
	assert_int_equal(t[0].max_concurrent, 4);
	assert_int_equal(t[0].hist[10], 90);
	assert_int_equal(t[1].id, 1);
	assert_string_equal(t[1].name, "network");
	assert_int_equal(t[1].default_timeout_ms, 2500);
	assert_int_equal(t[1].latency_max_ns, 1000);
	assert_int_equal(t[1].hist[tm_hist_bucket(1000)], 1);
	assert_int_equal(t[2].id, 5);
	assert_string_equal(t[2].name, "custom-x");

	assert_int_equal(tm_shm_read_types(r, t, 2), 2);
	assert_int_equal(tm_shm_read_types(r, NULL, 0), 0);
	assert_int_equal(tm_shm_read_types(r, NULL, 1), -EINVAL);
	tm_shm_close(r);

	/* types_used bounds what is read, whatever the header claims */
	H(&f->seg)->types_used = 1;
	write_seg(f->path, &f->seg);
	r = open_ok(f->path);
	assert_int_equal(tm_shm_read_types(r, t, TM_MAX_TYPES), 1);
	tm_shm_close(r);
	H(&f->seg)->types_used = UINT64_MAX;
	write_seg(f->path, &f->seg);
	r = open_ok(f->path);
	assert_int_equal(tm_shm_read_types(r, t, TM_MAX_TYPES), 3);
	tm_shm_close(r);
}

static void test_valid_stats(void **state)
{
	struct fx *f = *state;
	tm_shm_reader *r = open_ok(f->path);
	struct tm_stats st;
	memset(&st, 0xa5, sizeof(st));
	assert_int_equal(tm_shm_read_stats(r, &st), 0);
	assert_int_equal(st.by_type[0].spawned, 100);
	assert_int_equal(st.by_type[0].running, 101);
	assert_int_equal(st.by_type[0].succeeded, 102);
	assert_int_equal(st.by_type[0].rejected, 108);
	assert_int_equal(st.by_type[1].timed_out, 16);
	assert_int_equal(st.by_type[5].restarts, 8);
	assert_int_equal(st.by_type[3].spawned, 0);       /* invalid name: not counted */
	assert_int_equal(st.by_type[2].spawned, 0);
	assert_int_equal(st.total_spawned, 100 + 10 + 1);
	assert_int_equal(st.currently_running, 101 + 11 + 2);
	assert_int_equal(st.total_completed, 102 + 12 + 3);
	assert_int_equal(st.total_failed, 103 + 13 + 4);
	assert_int_equal(st.total_rejected, 108 + 18 + 9);
	/* 90 samples at 10 ns, 9 at 20, 1 at 1000 */
	assert_int_equal(st.spawn_latency_p50_ns, 10);
	assert_int_equal(st.spawn_latency_p95_ns, 20);
	assert_int_equal(st.spawn_latency_p99_ns, 20);
	assert_int_equal(st.spawn_latency_max_ns, 1000);
	assert_int_equal(st.tracked_records, 5);
	assert_int_equal(st.tracker_bytes, 4096);
	tm_shm_close(r);

	/* counter sums saturate instead of wrapping */
	T(&f->seg, 0)->counters[TM_C_SPAWNED] = UINT64_MAX - 1;
	T(&f->seg, 1)->counters[TM_C_SPAWNED] = UINT64_MAX - 1;
	T(&f->seg, 0)->hist[tm_hist_bucket(10)] = UINT64_MAX;
	write_seg(f->path, &f->seg);
	r = open_ok(f->path);
	assert_int_equal(tm_shm_read_stats(r, &st), 0);
	assert_true(st.total_spawned == UINT64_MAX);
	assert_int_equal(st.spawn_latency_p50_ns, 10);
	tm_shm_close(r);
}

static void test_valid_tasks(void **state)
{
	struct fx *f = *state;
	tm_shm_reader *r = open_ok(f->path);
	struct tm_task_info t[NSLOTS];
	assert_int_equal(tm_shm_read_tasks(r, t, NSLOTS, false), 3);
	/* bad type, bad status, unterminated name, non-printable name, huge tid */
	assert_int_equal(tm_shm_invalid_records(r), 5);
	assert_int_equal(t[0].id, 1);
	assert_string_equal(t[0].name, "net-1");
	assert_int_equal(t[0].type, 1);
	assert_int_equal(t[0].status, TM_RUNNING);
	assert_int_equal(t[0].tid, 1000);
	assert_int_equal(t[0].spawn_ns, 100);
	assert_int_equal(t[0].start_ns, 105);
	assert_int_equal(t[1].id, 2);
	assert_string_equal(t[1].name, "gen");
	assert_int_equal(t[1].status, TM_SUCCEEDED);
	assert_int_equal(t[1].end_ns, 999);
	assert_int_equal(t[1].cpu_ns, 77);
	assert_int_equal(t[1].rc, -1);
	assert_int_equal(t[1].restarts, 1);
	assert_int_equal(t[2].id, 9);
	assert_int_equal(t[2].status, TM_FAILED);

	assert_int_equal(tm_shm_read_tasks(r, t, NSLOTS, true), 1);
	assert_int_equal(t[0].id, 1);
	assert_int_equal(tm_shm_read_tasks(r, t, 1, false), 1);
	assert_int_equal(tm_shm_read_tasks(r, NULL, 0, false), 0);
	tm_shm_close(r);

	/* slots_used past the slot count is clamped to it */
	H(&f->seg)->slots_used = UINT64_MAX;
	write_seg(f->path, &f->seg);
	r = open_ok(f->path);
	assert_int_equal(tm_shm_read_tasks(r, t, NSLOTS, false), 4);
	assert_int_equal(t[3].id, 12);
	tm_shm_close(r);
}

/* Slots being written are retried a bounded number of times in all, and a
 * good slot after them is still read. */
static void test_busy_slots_bounded(void **state)
{
	struct fx *f = *state;
	struct seg s;
	struct tm_task_info t[4];
	build_segment(&s, 1000, getpid(), f->ticks);
	for (int i = 0; i < 999; i++)
		put_slot(&s, i, 1, (uint64_t)i + 1, 0, TM_RUNNING, "busy");
	put_slot(&s, 999, 2, 5000, 0, TM_RUNNING, "last");
	H(&s)->slots_used = 1000;
	write_seg(f->path, &s);
	tm_shm_reader *r = open_ok(f->path);
	assert_int_equal(tm_shm_read_tasks(r, t, 4, false), 1);
	assert_int_equal(t[0].id, 5000);
	assert_int_equal(tm_shm_invalid_records(r), 0);
	tm_shm_close(r);
	free(s.buf);
}

/* ---- the message ring ------------------------------------------------------- */

static void test_valid_messages(void **state)
{
	struct fx *f = *state;
	tm_shm_reader *r = open_ok(f->path);
	struct tm_shm_message_info m[NMSGS];
	memset(m, 0xa5, sizeof(m));
	assert_int_equal(tm_shm_read_messages(r, m, NMSGS), 3);
	/* forged length, missing NUL, terminal escape; the odd one is busy, not invalid */
	assert_int_equal(tm_shm_invalid_records(r), 3);
	assert_int_equal(m[0].serial, 12);   /* newest first */
	assert_int_equal(m[0].task_id, 2);
	assert_string_equal(m[0].text, "second time");
	assert_int_equal(m[0].kind, TM_SHM_MSG_PANIC);
	assert_int_equal(m[0].restarts, 1);
	assert_int_equal(m[0].time_ns, 1012);
	assert_false(m[0].cut);
	assert_int_equal(m[1].task_id, 9);
	assert_int_equal(m[1].kind, TM_SHM_MSG_CRASH);
	assert_true(m[1].cut);
	assert_int_equal(m[2].task_id, 2);
	assert_string_equal(m[2].text, "boom!");

	assert_int_equal(tm_shm_read_messages(r, m, 1), 1);
	assert_int_equal(m[0].serial, 12);
	assert_int_equal(tm_shm_read_messages(r, NULL, 0), 0);
	assert_int_equal(tm_shm_read_messages(r, NULL, 1), -EINVAL);
	assert_int_equal(tm_shm_read_task_message(r, 2, &m[0]), 0);
	assert_string_equal(m[0].text, "second time");
	assert_int_equal(tm_shm_read_task_message(r, 9, &m[0]), 0);
	assert_string_equal(m[0].text, "SIGSEGV at 0x0...");
	assert_int_equal(tm_shm_read_task_message(r, 3, &m[0]), -ENOENT);   /* only a forged one */
	assert_int_equal(tm_shm_read_task_message(r, 6, &m[0]), -ENOENT);   /* only a torn one */
	assert_int_equal(tm_shm_read_task_message(r, 77, &m[0]), -ENOENT);
	assert_non_null(strstr(tm_last_error(), "no message of task 77"));
	assert_int_equal(tm_shm_read_task_message(r, 0, &m[0]), -EINVAL);
	tm_shm_close(r);

	/* bad kind, task id 0, length exactly at the end of the text, a full-length text */
	put_message(&f->seg, 0, 2, 20, 30, 3, "kind 3");
	put_message(&f->seg, 1, 2, 0, 31, TM_SHM_MSG_PANIC, "task 0");
	put_message(&f->seg, 2, 2, 21, 32, TM_SHM_MSG_PANIC, "x");
	memset(M(&f->seg, 2)->text, 'x', TM_SHM_MESSAGE_TEXT);
	M(&f->seg, 2)->len = TM_SHM_MESSAGE_TEXT;
	put_message(&f->seg, 3, 2, 22, 33, TM_SHM_MSG_PANIC, "x");
	memset(M(&f->seg, 3)->text, 'y', TM_SHM_MESSAGE_TEXT - 1);
	M(&f->seg, 3)->len = TM_SHM_MESSAGE_TEXT - 1;
	write_seg(f->path, &f->seg);
	r = open_ok(f->path);
	assert_int_equal(tm_shm_read_messages(r, m, NMSGS), 1);
	assert_int_equal(m[0].task_id, 22);
	assert_int_equal(strlen(m[0].text), TM_SHM_MESSAGE_TEXT - 1);
	assert_int_equal(tm_shm_invalid_records(r), 5);
	tm_shm_close(r);

	/* no ring at all: no messages, and the rest reads as before */
	H(&f->seg)->message_count = 0;
	H(&f->seg)->message_size = 0;
	write_seg(f->path, &f->seg);
	r = open_ok(f->path);
	assert_int_equal(tm_shm_read_messages(r, m, NMSGS), 0);
	assert_int_equal(tm_shm_read_task_message(r, 2, &m[0]), -ENOENT);
	tm_shm_close(r);
}

/* Every entry being written: the reader gives up after its retry budget. */
static void test_busy_messages_bounded(void **state)
{
	struct fx *f = *state;
	struct tm_shm_message_info m[NMSGS];
	for (int i = 0; i < NMSGS; i++)
		M(&f->seg, i)->seq = 7;
	write_seg(f->path, &f->seg);
	tm_shm_reader *r = open_ok(f->path);
	assert_int_equal(tm_shm_read_messages(r, m, NMSGS), 0);
	assert_int_equal(tm_shm_invalid_records(r), 0);
	tm_shm_close(r);
}

static int panicking(void *arg)
{
	tm_panic("%s", (const char *)arg);
}

static uint64_t panic_task(const char *msg)
{
	tm_task *t;
	enum tm_status st;
	assert_int_equal(tm_spawn(&t, "panicker", panicking, (void *)msg, NULL), 0);
	uint64_t id = tm_task_id(t);
	assert_int_equal(tm_join(t, -1, &st, NULL), 0);
	assert_int_equal(st, TM_PANICKED);
	return id;
}

/* The library's own ring: what tm_panic wrote, as another process reads it. */
static void test_library_messages(void **state)
{
	(void)state;
	char longmsg[300];
	memset(longmsg, 'z', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	assert_int_equal(tm_init(NULL), 0);
	uint64_t a = panic_task("disk full\non /var\t(errno 28) \001");
	uint64_t b = panic_task(longmsg);
	tm_shm_reader *r;
	assert_int_equal(tm_shm_open_pid(&r, getpid()), 0);
	struct tm_shm_message_info m;
	assert_int_equal(tm_shm_read_task_message(r, a, &m), 0);
	assert_string_equal(m.text, "disk full on /var (errno 28) ?");
	assert_int_equal(m.kind, TM_SHM_MSG_PANIC);
	assert_false(m.cut);
	assert_true(m.time_ns > 0);
	assert_int_equal(tm_shm_read_task_message(r, b, &m), 0);
	assert_true(m.cut);
	assert_int_equal(strlen(m.text), TM_SHM_MESSAGE_TEXT - 1);
	assert_string_equal(m.text + TM_SHM_MESSAGE_TEXT - 4, "...");
	/* the ring keeps the newest TM_SHM_MESSAGES: the first is overwritten in time */
	for (int i = 0; i < TM_SHM_MESSAGES; i++)
		panic_task("again");
	assert_int_equal(tm_shm_read_task_message(r, a, &m), -ENOENT);
	static struct tm_shm_message_info all[TM_SHM_MESSAGES + 1];
	assert_int_equal(tm_shm_read_messages(r, all, TM_SHM_MESSAGES + 1), TM_SHM_MESSAGES);
	for (int i = 1; i < TM_SHM_MESSAGES; i++)
		assert_true(all[i - 1].serial > all[i].serial);
	assert_int_equal(tm_shm_invalid_records(r), 0);
	tm_shm_close(r);
	tm_shutdown();
}

/* ---- forged segments -------------------------------------------------------- */

#define TM_STR_(x) #x
#define TM_STR(x) TM_STR_(x)

/* Messages are matched on their layout-independent part, so that a change
 * of struct sizes does not need the table rewritten. */
struct forgery {
	const char *what;
	void (*forge)(struct seg *s);
	const char *message;
};

static void bad_magic(struct seg *s) { H(s)->magic ^= 1; }
static void bad_version(struct seg *s) { H(s)->version = TM_SHM_VERSION + 1; }
static void bad_header_size(struct seg *s) { H(s)->header_size += 8; }
static void bad_type_size(struct seg *s) { H(s)->type_size -= 8; }
static void bad_slot_size(struct seg *s) { H(s)->slot_size = 1 << 30; }
static void bad_type_count(struct seg *s) { H(s)->type_count = 33; }
static void bad_buckets(struct seg *s) { H(s)->hist_buckets = 64; }
static void bad_total(struct seg *s) { H(s)->total_size += 104; }   /* not even a whole slot */
static void zero_slots(struct seg *s) { H(s)->slot_count = 0; }
static void types_misaligned(struct seg *s) { H(s)->types_offset += 4; }
static void slots_misaligned(struct seg *s) { H(s)->slots_offset -= 2; }
static void types_in_header(struct seg *s) { H(s)->types_offset = 0; }
static void slots_in_header(struct seg *s) { H(s)->slots_offset = 200; }
static void slots_overflow(struct seg *s) { H(s)->slots_offset = UINT64_MAX - 7; }
static void types_overflow(struct seg *s) { H(s)->types_offset = UINT64_MAX - 0xfff; }
static void slots_too_many(struct seg *s) { H(s)->slot_count = UINT32_MAX; }
static void slots_one_too_many(struct seg *s) { H(s)->slot_count = NSLOTS + 1; }   /* into the ring */
static void types_past_end(struct seg *s) { H(s)->types_offset = SLOTS_OFF; }
static void regions_overlap(struct seg *s) { H(s)->slots_offset = TYPES_OFF + 8; H(s)->slot_count = 1; }
static void regions_same(struct seg *s) { H(s)->slots_offset = TYPES_OFF; }
static void zero_pid(struct seg *s) { H(s)->pid = 0; }
static void negative_pid(struct seg *s) { H(s)->pid = -5; }
static void short_of_slots(struct seg *s)
{
	H(s)->message_count = 0;
	s->size = MSGS_OFF(NSLOTS) - sizeof(struct tm_shm_slot);
	H(s)->total_size = s->size;
}
static void bad_message_size(struct seg *s) { H(s)->message_size = 8; }
static void msgs_too_many(struct seg *s) { H(s)->message_count = 65537; }
static void msgs_one_too_many(struct seg *s) { H(s)->message_count = NMSGS + 1; }
static void msgs_misaligned(struct seg *s) { H(s)->messages_offset += 4; }
static void msgs_in_header(struct seg *s) { H(s)->messages_offset = 8; }
static void msgs_in_types(struct seg *s) { H(s)->messages_offset = TYPES_OFF + 64; }
static void msgs_in_slots(struct seg *s) { H(s)->messages_offset = SLOTS_OFF + 8 * sizeof(struct tm_shm_slot); }
static void msgs_overflow(struct seg *s) { H(s)->messages_offset = UINT64_MAX - 7; }
static void shorter_than_header(struct seg *s) { s->size = 100; }
static void empty_file(struct seg *s) { s->size = 0; }
static void longer_than_total(struct seg *s) { H(s)->total_size -= 8; }

static const struct forgery forgeries[] = {
	{ "magic", bad_magic, "bad magic 0x314e4f4d4b534155" },
	{ "version", bad_version, "this reader understands " TM_STR(TM_SHM_VERSION) },
	{ "header size", bad_header_size, "header size is" },
	{ "type size", bad_type_size, "type size is" },
	{ "slot size", bad_slot_size, "slot size is 1073741824" },
	{ "type count", bad_type_count, "type count is 33, this reader expects 32" },
	{ "buckets", bad_buckets, "histogram bucket count is 64, this reader expects 1216" },
	{ "total", bad_total, "in the header, but the file has" },
	{ "no slots", zero_slots, "slot count is 0" },
	{ "types misaligned", types_misaligned, "is not 8-byte aligned" },
	{ "slots misaligned", slots_misaligned, "is not 8-byte aligned" },
	{ "types in header", types_in_header, "type region at offset 0 overlaps the header" },
	{ "slots in header", slots_in_header, "slot region at offset 200 overlaps the header" },
	{ "slots overflow", slots_overflow, "slot region offset 18446744073709551608 + 12 x" },
	{ "types overflow", types_overflow, "type region offset 18446744073709547520 + 32 x" },
	{ "slot count huge", slots_too_many, "slot region ends past the end of the file" },
	{ "slot count +1", slots_one_too_many, "overlaps the type or slot region" },
	{ "types past end", types_past_end, "type region ends past the end of the file" },
	{ "overlap", regions_overlap, "and slot region [" },
	{ "same region", regions_same, "overlap" },
	{ "pid 0", zero_pid, "pid 0 in the header is not a process id" },
	{ "pid -5", negative_pid, "pid -5 in the header is not a process id" },
	{ "short of slots", short_of_slots, "slot region ends past the end of the file" },
	{ "shorter than header", shorter_than_header, "file is 100 bytes, shorter than the" },
	{ "empty", empty_file, "file is 0 bytes, shorter than the" },
	{ "longer than total", longer_than_total, "in the header, but the file has" },
	{ "message size", bad_message_size, "message size is 8, this reader expects" },
	{ "message count huge", msgs_too_many, "message count 65537 is more than the 65536" },
	{ "message count +1", msgs_one_too_many, "message region ends past the end of the file" },
	{ "messages misaligned", msgs_misaligned, "message region offset" },
	{ "messages in header", msgs_in_header, "message region at offset 8 overlaps the header" },
	{ "messages in types", msgs_in_types, "overlaps the type or slot region" },
	{ "messages in slots", msgs_in_slots, "overlaps the type or slot region" },
	{ "messages overflow", msgs_overflow, "message region offset 18446744073709551608 + 8 x" },
};

static void test_forged(void **state)
{
	struct fx *f = *state;
	struct seg s = { .buf = malloc(f->seg.size) };
	assert_non_null(s.buf);
	for (size_t i = 0; i < sizeof(forgeries) / sizeof(forgeries[0]); i++) {
		const struct forgery *g = &forgeries[i];
		memcpy(s.buf, f->seg.buf, f->seg.size);
		s.size = f->seg.size;
		g->forge(&s);
		write_seg(f->path, &s);
		tm_shm_reader *r = (tm_shm_reader *)&s;   /* must be reset to NULL */
		int rc = tm_shm_open_path(&r, f->path);
		if (rc != -EBADMSG || r != NULL)
			fail_msg("%s: rc %d (%s)", g->what, rc, tm_last_error());
		if (strstr(tm_last_error(), g->message) == NULL)
			fail_msg("%s: message \"%s\" lacks \"%s\"", g->what, tm_last_error(), g->message);
		if (strstr(tm_last_error(), f->path) == NULL)
			fail_msg("%s: message \"%s\" does not name the file", g->what, tm_last_error());
	}
	free(s.buf);
}

static void test_not_a_segment(void **state)
{
	struct fx *f = *state;
	tm_shm_reader *r;
	char p[160];

	snprintf(p, sizeof(p), "%s/missing", f->dir);
	assert_int_equal(tm_shm_open_path(&r, p), -ENOENT);
	assert_null(r);
	assert_int_equal(tm_shm_open_path(&r, f->dir), -EBADMSG);
	assert_non_null(strstr(tm_last_error(), "not a regular file"));

	snprintf(p, sizeof(p), "%s/link", f->dir);
	assert_int_equal(symlink(f->path, p), 0);
	assert_int_equal(tm_shm_open_path(&r, p), -EBADMSG);
	assert_non_null(strstr(tm_last_error(), "symbolic link"));

	/* O_NONBLOCK: a FIFO is refused at once instead of hanging the open */
	snprintf(p, sizeof(p), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(tm_shm_open_path(&r, p), -EBADMSG);
	assert_non_null(strstr(tm_last_error(), "not a regular file"));

	assert_int_equal(tm_shm_open_path(&r, NULL), -EINVAL);
	assert_int_equal(tm_shm_open_pid(&r, 0), -EINVAL);
	assert_int_equal(tm_shm_open_pid(&r, -1), -EINVAL);

	if (geteuid() == 0)
		return;   /* root reads a mode 000 file: nothing to test */
	assert_int_equal(chmod(f->path, 0), 0);
	assert_int_equal(tm_shm_open_path(&r, f->path), -EACCES);
}

/* A file named after a pid belongs to that pid. */
static void test_name_names_pid(void **state)
{
	struct fx *f = *state;
	tm_shm_reader *r;
	char p[160];

	snprintf(p, sizeof(p), "%s/taskmon.%d", f->dir, (int)getpid());
	write_seg(p, &f->seg);
	r = open_ok(p);
	tm_shm_close(r);

	snprintf(p, sizeof(p), "%s/taskmon.%d", f->dir, (int)getpid() + 1);
	write_seg(p, &f->seg);
	assert_int_equal(tm_shm_open_path(&r, p), -EBADMSG);
	char want[96];
	snprintf(want, sizeof(want), "the header names pid %d, the file name pid %d",
		 (int)getpid(), (int)getpid() + 1);
	assert_non_null(strstr(tm_last_error(), want));

	/* not a segment name (leading zero): no pid implied */
	snprintf(p, sizeof(p), "%s/taskmon.0%d", f->dir, (int)getpid() + 1);
	write_seg(p, &f->seg);
	r = open_ok(p);
	tm_shm_close(r);
}

/* ---- truncation under the reader ------------------------------------------ */

/* cmocka puts its own SIGBUS handler in place around every test and fixture
 * (with signal(), which also drops SA_SIGINFO when it restores the previous
 * one), so the reader's handler, which does not chain from a handler
 * installed after it, is captured before cmocka starts and put back for the
 * tests that fault. */
static struct sigaction reader_bus;

static void capture_reader_handler(void)
{
	struct seg s;
	char dir[] = "/tmp/tm_shm_test.XXXXXX", path[64];
	tm_shm_reader *r;
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/seg", dir);
	build_valid(&s, getpid(), 0);
	write_seg(path, &s);
	if (tm_shm_open_path(&r, path) != 0)
		abort();
	(void)tm_shm_is_closed(r);   /* the first guarded read installs the handler */
	tm_shm_close(r);
	free(s.buf);
	remove_tree(dir);
	sigaction(SIGBUS, NULL, &reader_bus);
	if (!(reader_bus.sa_flags & SA_SIGINFO))
		abort();
}

static void arm_reader_handler(struct sigaction *saved)
{
	assert_int_equal(sigaction(SIGBUS, &reader_bus, saved), 0);
}

static void disarm_reader_handler(const struct sigaction *saved)
{
	sigaction(SIGBUS, saved, NULL);
}

static void assert_sigbus_unblocked(void)
{
	sigset_t set;
	assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &set), 0);
	assert_false(sigismember(&set, SIGBUS));
}

static void assert_eio(int rc)
{
	assert_int_equal(rc, -EIO);
	assert_non_null(strstr(tm_last_error(), "segment was truncated while being read"));
	assert_sigbus_unblocked();
}

static void test_truncated_while_open(void **state)
{
	struct fx *f = *state;
	static struct tm_shm_type_snapshot t[TM_MAX_TYPES];
	struct tm_task_info ti[NSLOTS];
	struct tm_stats st;
	struct sigaction cmocka_bus;

	arm_reader_handler(&cmocka_bus);
	tm_shm_reader *r = open_ok(f->path);
	assert_int_equal(truncate(f->path, 4096), 0);   /* header stays, the rest goes */
	assert_eio(tm_shm_read_types(r, t, TM_MAX_TYPES));
	assert_eio(tm_shm_read_stats(r, &st));
	assert_eio(tm_shm_read_tasks(r, ti, NSLOTS, false));
	struct tm_shm_message_info mi[NMSGS];
	assert_eio(tm_shm_read_messages(r, mi, NMSGS));
	assert_eio(tm_shm_read_task_message(r, 2, mi));
	assert_false(tm_shm_is_closed(r));   /* the header page is still there */
	assert_int_equal(truncate(f->path, 0), 0);
	assert_false(tm_shm_is_closed(r));
	assert_eio(tm_shm_read_tasks(r, ti, NSLOTS, true));
	assert_int_equal(tm_shm_pid(r), getpid());   /* copied at open, no access */
	tm_shm_close(r);

	/* the guard is re-armed each time: a fresh segment reads normally */
	write_seg(f->path, &f->seg);
	r = open_ok(f->path);
	assert_int_equal(tm_shm_read_tasks(r, ti, NSLOTS, false), 3);
	assert_int_equal(truncate(f->path, 1000), 0);
	assert_eio(tm_shm_read_tasks(r, ti, NSLOTS, false));
	tm_shm_close(r);
	disarm_reader_handler(&cmocka_bus);
}

/* Maps a file, shrinks it and touches the lost page outside any guard. */
static void fault_outside_guard(const char *dir)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/victim", dir);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 8192) != 0)
		_exit(90);
	volatile const char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || ftruncate(fd, 0) != 0)
		_exit(91);
	(void)m[4096];
}

static void no_core_dump(void)
{
	struct rlimit rl = { 0, 0 };
	setrlimit(RLIMIT_CORE, &rl);
}

static int wait_child(pid_t pid)
{
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/* A SIGBUS that is not a guarded read still ends the process. */
static void test_unguarded_sigbus_is_fatal(void **state)
{
	struct fx *f = *state;
	for (int sent = 0; sent < 2; sent++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			no_core_dump();
			sigaction(SIGBUS, &reader_bus, NULL);
			tm_shm_reader *r;
			struct tm_task_info ti[NSLOTS];
			if (tm_shm_open_path(&r, f->path) != 0 || tm_shm_read_tasks(r, ti, NSLOTS, false) != 3)
				_exit(80);
			if (sent)
				kill(getpid(), SIGBUS);
			else
				fault_outside_guard(f->dir);
			_exit(81);
		}
		int status = wait_child(pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGBUS)
			fail_msg("child %s: status 0x%x, expected death by SIGBUS", sent ? "kill" : "fault", status);
	}
}

static void child_siginfo_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	_exit(si != NULL && si->si_code > 0 ? 42 : 44);
}

static void child_plain_handler(int sig)
{
	(void)sig;
	_exit(43);
}

/* Runs in a fresh process (re-executed), so its handler is in place before
 * the reader installs its own. */
static int chain_child(const char *mode, const char *dir, const char *path)
{
	struct sigaction sa = { 0 };
	sigemptyset(&sa.sa_mask);
	if (strcmp(mode, "siginfo") == 0) {
		sa.sa_sigaction = child_siginfo_handler;
		sa.sa_flags = SA_SIGINFO;
	} else {
		sa.sa_handler = child_plain_handler;
	}
	sigaction(SIGBUS, &sa, NULL);
	tm_shm_reader *r;
	struct tm_task_info ti[NSLOTS];
	if (tm_shm_open_path(&r, path) != 0 || tm_shm_read_tasks(r, ti, NSLOTS, false) != 3)
		return 80;
	fault_outside_guard(dir);
	return 81;
}

static void test_chains_to_previous_handler(void **state)
{
	struct fx *f = *state;
	static const struct { const char *mode; int code; } cases[] = { { "siginfo", 42 }, { "plain", 43 } };
	for (size_t i = 0; i < 2; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char *argv[] = { "test_shm_reader", "--chain-child", (char *)cases[i].mode,
					 f->dir, f->path, NULL };
			execv("/proc/self/exe", argv);
			_exit(99);
		}
		int status = wait_child(pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != cases[i].code)
			fail_msg("%s handler: status 0x%x, expected exit %d", cases[i].mode, status, cases[i].code);
	}
}

/* ---- liveness --------------------------------------------------------------- */

static int is_stale_with(struct fx *f, pid_t pid, uint64_t ticks)
{
	H(&f->seg)->pid = pid;
	H(&f->seg)->proc_start_ticks = ticks;
	write_seg(f->path, &f->seg);
	tm_shm_reader *r = open_ok(f->path);
	bool stale = tm_shm_is_stale(r);
	tm_shm_close(r);
	return stale;
}

static void test_stale(void **state)
{
	struct fx *f = *state;
	pid_t gone = exited_child();
	assert_true(is_stale_with(f, gone, f->ticks));
	assert_false(is_stale_with(f, getpid(), f->ticks));
	assert_true(is_stale_with(f, getpid(), f->ticks + 1));   /* our pid, another process */
	assert_false(is_stale_with(f, getpid(), 0));             /* start time unknown */
	assert_false(is_stale_with(f, 1, 0));                    /* init: EPERM or alive */
}

static void test_proc(void **state)
{
	(void)state;
	uint64_t t1, t2;
	char old[16], comm[16];
	assert_int_equal(tm__proc_start_ticks(getpid(), &t1), 0);
	assert_true(t1 > 0);
	assert_int_equal(tm__proc_comm(getpid(), old), 0);
	/* a name that looks like the fields after it */
	assert_int_equal(prctl(PR_SET_NAME, "a) R 1 ) 2 3", 0, 0, 0), 0);
	assert_int_equal(tm__proc_start_ticks(getpid(), &t2), 0);
	assert_int_equal(t1, t2);
	assert_int_equal(tm__proc_comm(getpid(), comm), 0);
	assert_string_equal(comm, "a) R 1 ) 2 3");
	assert_int_equal(prctl(PR_SET_NAME, "x\ny", 0, 0, 0), 0);
	assert_int_equal(tm__proc_comm(getpid(), comm), 0);
	assert_string_equal(comm, "x\ny");
	assert_int_equal(prctl(PR_SET_NAME, old, 0, 0, 0), 0);

	pid_t gone = exited_child();
	assert_int_equal(tm__proc_start_ticks(gone, &t2), -ESRCH);
	assert_int_equal(tm__proc_comm(gone, comm), -ESRCH);
	assert_int_equal(tm__proc_start_ticks(0, &t2), -EINVAL);
	assert_int_equal(tm__proc_start_ticks(-3, &t2), -EINVAL);
}

/* ---- the directory ------------------------------------------------------------ */

static void touch(const char *dir, const char *name)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	write_file(p, "", 0);
}

static void test_list(void **state)
{
	struct fx *f = *state;
	static const char *const junk[] = {
		"taskmon.0", "taskmon.0123", "taskmon.12a", "taskmon.", "taskmon.2147483648",
		"taskmon.-5", "taskmon.+5", "taskmon. 5", "taskmon.99999999999999999999",
		"xtaskmon.7", "Taskmon.7", "taskmon7", "taskmon.5 ", "taskmon.5.tmp",
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		touch(f->dir, junk[i]);
	touch(f->dir, "taskmon.123");
	touch(f->dir, "taskmon.45");
	touch(f->dir, "taskmon.2147483647");
	char p[160], q[160];
	snprintf(p, sizeof(p), "%s/taskmon.8", f->dir);
	assert_int_equal(symlink(f->path, p), 0);
	snprintf(q, sizeof(q), "%s/taskmon.9", f->dir);
	assert_int_equal(mkdir(q, 0700), 0);

	pid_t pids[32];
	assert_int_equal(tm_shm_list(f->dir, pids, 32), 3);
	assert_int_equal(pids[0], 45);
	assert_int_equal(pids[1], 123);
	assert_int_equal(pids[2], 2147483647);
	assert_int_equal(tm_shm_list(f->dir, pids, 2), 2);
	assert_int_equal(tm_shm_list(f->dir, NULL, 0), 0);
	snprintf(p, sizeof(p), "%s/nothing-here", f->dir);
	assert_int_equal(tm_shm_list(p, pids, 32), -ENOENT);
}

/* /dev/shm itself: open by pid and removal of stale segments. */
static void test_open_pid_remove_stale(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char p[96];
	if (stat(TM_SHM_DIR, &st) != 0 || !S_ISDIR(st.st_mode) || access(TM_SHM_DIR, W_OK) != 0)
		skip();   /* no writable /dev/shm on this machine */

	pid_t gone = exited_child();
	snprintf(p, sizeof(p), TM_SHM_DIR "/taskmon.%d", (int)gone);
	H(&f->seg)->pid = gone;
	write_seg(p, &f->seg);
	tm_shm_reader *r;
	assert_int_equal(tm_shm_open_pid(&r, gone), 0);
	assert_true(tm_shm_is_stale(r));
	tm_shm_close(r);
	assert_int_equal(tm_shm_remove_stale(gone), 0);
	assert_int_not_equal(lstat(p, &st), 0);
	assert_int_equal(tm_shm_remove_stale(gone), -ENOENT);
	assert_int_equal(tm_shm_open_pid(&r, gone), -ENOENT);

	/* a symbolic link under a segment name is left alone */
	assert_int_equal(symlink(f->path, p), 0);
	assert_int_equal(tm_shm_remove_stale(gone), -EBADMSG);
	assert_int_equal(lstat(p, &st), 0);
	unlink(p);

	/* ours, alive */
	snprintf(p, sizeof(p), TM_SHM_DIR "/taskmon.%d", (int)getpid());
	H(&f->seg)->pid = getpid();
	write_seg(p, &f->seg);
	int rc = tm_shm_remove_stale(getpid());
	assert_int_equal(stat(p, &st), 0);
	unlink(p);
	assert_int_equal(rc, -EBUSY);
	assert_int_equal(tm_shm_remove_stale(0), -EINVAL);
}

/* ---- a writer at work ------------------------------------------------------------ */

struct writer {
	struct tm_shm_slot *slots;
	int done;
};

static void store_slot(struct tm_shm_slot *s, uint64_t id)
{
	uint64_t name[TM_NAME_MAX / 8] = { 0 };
	snprintf((char *)name, sizeof(name), "t%llu", (unsigned long long)id);
	uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
	/* Release stores rather than a fence after the odd seq: the same order,
	 * and one that TSan understands. */
	__atomic_store_n(&s->id, id, __ATOMIC_RELEASE);
	__atomic_store_n(&s->spawn_ns, id * 3, __ATOMIC_RELEASE);
	__atomic_store_n(&s->status, (uint8_t)(id % TM_STATUS_COUNT), __ATOMIC_RELEASE);
	for (size_t i = 0; i < TM_NAME_MAX / 8; i++)
		__atomic_store_n((uint64_t *)(void *)s->name + i, name[i], __ATOMIC_RELEASE);
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	for (uint64_t id = 1; id <= 200000; id++)
		store_slot(&w->slots[id % 4], id);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void check_consistent(const struct tm_task_info *t)
{
	char want[TM_NAME_MAX];
	snprintf(want, sizeof(want), "t%llu", (unsigned long long)t->id);
	if (t->spawn_ns != t->id * 3 || strcmp(t->name, want) != 0 || (uint64_t)t->status != t->id % TM_STATUS_COUNT)
		fail_msg("torn record: id %llu spawn %llu name %s", (unsigned long long)t->id,
			 (unsigned long long)t->spawn_ns, t->name);
}

static void test_concurrent_writer(void **state)
{
	struct fx *f = *state;
	memset(f->seg.buf + SLOTS_OFF, 0, NSLOTS * sizeof(struct tm_shm_slot));
	H(&f->seg)->slots_used = 4;
	write_seg(f->path, &f->seg);
	int fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char *m = mmap(NULL, f->seg.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	close(fd);

	tm_shm_reader *r = open_ok(f->path);
	struct writer w = { .slots = (void *)(m + SLOTS_OFF) };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	unsigned long seen = 0;
	struct tm_task_info t[4];
	while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE)) {
		int n = tm_shm_read_tasks(r, t, 4, false);
		assert_true(n >= 0 && n <= 4);
		for (int i = 0; i < n; i++)
			check_consistent(&t[i]);
		seen += (unsigned long)n;
	}
	pthread_join(th, NULL);
	assert_int_equal(tm_shm_read_tasks(r, t, 4, false), 4);
	for (int i = 0; i < 4; i++)
		check_consistent(&t[i]);
	assert_int_equal(tm_shm_invalid_records(r), 0);
	tm_shm_close(r);
	munmap(m, f->seg.size);
	(void)seen;
}

/* The library's writer protocol on one ring entry, as fast as it goes. */
static void store_message(struct tm_shm_message *e, uint64_t n)
{
	uint64_t text[TM_SHM_MESSAGE_TEXT / 8] = { 0 };
	int len = snprintf((char *)text, sizeof(text), "message %llu", (unsigned long long)n);
	uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&e->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&e->task_id, n, __ATOMIC_RELEASE);
	__atomic_store_n(&e->serial, n, __ATOMIC_RELEASE);
	__atomic_store_n(&e->kind, (uint8_t)TM_SHM_MSG_PANIC, __ATOMIC_RELEASE);
	__atomic_store_n(&e->len, (uint16_t)len, __ATOMIC_RELEASE);
	for (size_t i = 0; i < TM_SHM_MESSAGE_TEXT / 8; i++)
		__atomic_store_n((uint64_t *)(void *)e->text + i, text[i], __ATOMIC_RELEASE);
	__atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
}

struct msg_writer {
	struct tm_shm_message *ring;
	int done;
};

static void *msg_writer_main(void *arg)
{
	struct msg_writer *w = arg;
	for (uint64_t n = 1; n <= 200000; n++)
		store_message(&w->ring[n % NMSGS], n);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Torn writes: every message handed out is one the writer wrote whole. */
static void test_concurrent_message_writer(void **state)
{
	struct fx *f = *state;
	memset(M(&f->seg, 0), 0, NMSGS * sizeof(struct tm_shm_message));
	write_seg(f->path, &f->seg);
	int fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char *map = mmap(NULL, f->seg.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	close(fd);
	tm_shm_reader *r = open_ok(f->path);
	struct msg_writer w = { .ring = (void *)(map + H(&f->seg)->messages_offset) };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, msg_writer_main, &w), 0);
	struct tm_shm_message_info m[NMSGS];
	char want[TM_SHM_MESSAGE_TEXT];
	while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE)) {
		int n = tm_shm_read_messages(r, m, NMSGS);
		assert_true(n >= 0 && n <= NMSGS);
		for (int i = 0; i < n; i++) {
			snprintf(want, sizeof(want), "message %llu", (unsigned long long)m[i].task_id);
			if (m[i].serial != m[i].task_id || strcmp(m[i].text, want) != 0)
				fail_msg("torn message: task %llu serial %llu text %s", (unsigned long long)m[i].task_id,
					 (unsigned long long)m[i].serial, m[i].text);
		}
	}
	pthread_join(th, NULL);
	assert_int_equal(tm_shm_read_messages(r, m, NMSGS), NMSGS);
	assert_int_equal(m[0].serial, 200000);
	assert_int_equal(tm_shm_invalid_records(r), 0);
	tm_shm_close(r);
	munmap(map, f->seg.size);
}

/* ---- random damage ------------------------------------------------------------------ */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Mostly where a flip changes a decision: the header, the slots, type names. */
static size_t pick_offset(size_t size)
{
	switch (rng() % 7) {
	case 0: case 1:
		return rng() % HDR_SIZE;
	case 2: case 3:
		return SLOTS_OFF + rng() % (size - SLOTS_OFF);
	case 5:
		return MSGS_OFF(NSLOTS) + rng() % (NMSGS * sizeof(struct tm_shm_message));
	case 4:
		return TYPES_OFF + (rng() % TM_MAX_TYPES) * sizeof(struct tm_shm_type) + rng() % 160;
	default:
		return rng() % size;
	}
}

static void read_everything(const char *path, unsigned *opened)
{
	static struct tm_shm_type_snapshot t[TM_MAX_TYPES];
	struct tm_task_info ti[NSLOTS];
	struct tm_stats st;
	tm_shm_reader *r;
	int rc = tm_shm_open_path(&r, path);
	if (rc != 0) {
		assert_true(rc == -EBADMSG);
		return;
	}
	(*opened)++;
	rc = tm_shm_read_types(r, t, TM_MAX_TYPES);
	assert_true(rc >= 0 && rc <= TM_MAX_TYPES);
	for (int i = 0; i < rc; i++)
		assert_true(t[i].id >= 0 && t[i].id < TM_MAX_TYPES && strlen(t[i].name) > 0);
	assert_int_equal(tm_shm_read_stats(r, &st), 0);
	rc = tm_shm_read_tasks(r, ti, NSLOTS, rng() & 1);
	assert_true(rc >= 0 && rc <= NSLOTS);
	for (int i = 0; i < rc; i++) {
		assert_true(ti[i].type >= 0 && ti[i].type < TM_MAX_TYPES);
		assert_true((unsigned)ti[i].status < TM_STATUS_COUNT);
		assert_true(ti[i].tid >= 0);
		assert_true(strlen(ti[i].name) > 0 && strlen(ti[i].name) < TM_NAME_MAX);
	}
	struct tm_shm_message_info mi[NMSGS];
	rc = tm_shm_read_messages(r, mi, NMSGS);
	assert_true(rc >= 0 && rc <= NMSGS);
	for (int i = 0; i < rc; i++) {
		size_t n = strlen(mi[i].text);
		assert_true(n < TM_SHM_MESSAGE_TEXT && mi[i].task_id != 0);
		assert_true(mi[i].kind == TM_SHM_MSG_PANIC || mi[i].kind == TM_SHM_MSG_CRASH);
		for (size_t k = 0; k < n; k++)
			assert_true(mi[i].text[k] >= 0x20 && mi[i].text[k] <= 0x7e);
		assert_true(i == 0 || mi[i - 1].serial >= mi[i].serial);
	}
	(void)tm_shm_is_closed(r);
	(void)tm_shm_is_stale(r);
	assert_true(strlen(tm_shm_comm(r)) < 16);
	tm_shm_close(r);
}

static void test_random_damage(void **state)
{
	struct fx *f = *state;
	unsigned opened = 0;
	int fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	for (int iter = 0; iter < 2000; iter++) {
		size_t off[8];
		unsigned char old[8];
		int n = 1 + (int)(rng() % 8);
		for (int i = 0; i < n; i++) {
			off[i] = pick_offset(f->seg.size);
			unsigned char v = f->seg.buf[off[i]] ^ (unsigned char)(1 + rng() % 255);
			old[i] = f->seg.buf[off[i]];
			assert_int_equal(pwrite(fd, &v, 1, (off_t)off[i]), 1);
		}
		read_everything(f->path, &opened);
		/* undo in reverse: the same byte may have been picked twice */
		for (int i = n - 1; i >= 0; i--)
			assert_int_equal(pwrite(fd, &old[i], 1, (off_t)off[i]), 1);
	}
	close(fd);
	print_message("%u of 2000 damaged segments opened and were read\n", opened);
	/* a good share of the damage must have got past open to the readers */
	if (opened < 200)
		fail_msg("only %u of 2000 damaged segments opened", opened);
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--chain-child") == 0)
		return chain_child(argv[2], argv[3], argv[4]);
	/* Never register with a collector that may run on this machine. */
	setenv("TASKMON_SOCKET", "/nonexistent/taskmond.sock", 1);
	capture_reader_handler();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_valid_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_valid_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_valid_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_valid_tasks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_slots_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_valid_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_messages_bounded, setup, teardown),
		cmocka_unit_test(test_library_messages),
		cmocka_unit_test_setup_teardown(test_forged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_names_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_while_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unguarded_sigbus_is_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chains_to_previous_handler, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale, setup, teardown),
		cmocka_unit_test(test_proc),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_pid_remove_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_message_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_damage, setup, teardown),
	};
	return cmocka_run_group_tests_name("shm_reader", tests, NULL, NULL);
}
