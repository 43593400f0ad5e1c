/* The record writer (user/record.c): option values, the record line built
 * from a merge (fed synthetic kernel events for this process), its cost for
 * a 1000-task snapshot, file rotation, retention by age and by size, a torn
 * tail left by a crash, and a full or read-only disk (a small tmpfs mounted
 * for the test; skipped when mounting is not allowed). Unprivileged apart
 * from the mounts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "merge.h"
#include "record.h"
#include "snapshot.h"
#include "taskmon.h"
#include "taskmon_events.h"

#define SEC 1000000000ull
#define MAX_FILES 256

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

/* A clock the test moves: record times, file names and retention follow it. */
static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return __atomic_load_n(&fake_now, __ATOMIC_RELAXED);
}
static void set_clock(uint64_t t)
{
	__atomic_store_n(&fake_now, t, __ATOMIC_RELAXED);
}

/* ---- a merge with tasks ------------------------------------------------------------------- */

static void feed_task(struct tmd_merge *m, uint64_t id, unsigned type, bool end, uint64_t now)
{
	struct tm_ev_task_start s;
	memset(&s, 0, sizeof(s));
	s.h = (struct tm_ev_hdr){ .ts_ns = mono_ns(), .task_id = id, .kind = TM_EV_TASK_START,
	                          .pid = (__u32)getpid(), .tid = (__u32)getpid() };
	s.latency_ns = 1000 + id * 37 % 50000;
	s.spawn_ns = s.h.ts_ns - s.latency_ns;
	s.type = type;
	snprintf(s.name, sizeof(s.name), "task_%llu", (unsigned long long)id);
	assert_int_equal(tmd_merge_event(m, &s, sizeof(s), now), 0);
	if (!end)
		return;
	struct tm_ev_task_end e;
	memset(&e, 0, sizeof(e));
	e.h = s.h;
	e.h.kind = TM_EV_TASK_END;
	e.h.ts_ns = mono_ns();
	e.oncpu_ns = 5000 + id;
	e.status = TM_SUCCEEDED;
	assert_int_equal(tmd_merge_event(m, &e, sizeof(e), now), 0);
}

/* n tasks of this process, a third of them finished, over four types. */
static struct tmd_merge *merge_with_tasks(unsigned n)
{
	struct tmd_merge *m;
	uint64_t now = mono_ns();
	assert_int_equal(tmd_merge_new(&m, TMD_MERGE_OPTS(.max_tasks = 8192)), 0);
	for (unsigned i = 1; i <= n; i++)
		feed_task(m, i, i % 4, i % 3 == 0, now);
	return m;
}

static const struct tmd_collector_info info = { .pid = 1, .mode = "tp_btf", .socket = "/tmp/s", .state_dir = "/tmp" };

/* ---- files -------------------------------------------------------------------------------- */

struct dir_files {
	char name[MAX_FILES][64];
	off_t size[MAX_FILES];
	size_t n;
	off_t total;
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The record files of dir, in name order (other files are left out). */
static void list(const char *dir, struct dir_files *f)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat sb;
	char path[512];
	memset(f, 0, sizeof(*f));
	assert_non_null(d);
	while ((de = readdir(d)) && f->n < MAX_FILES)
		if (strncmp(de->d_name, "taskmon-", 8) == 0)
			snprintf(f->name[f->n++], 64, "%.63s", de->d_name);
	closedir(d);
	qsort(f->name, f->n, sizeof(f->name[0]), cmp_name);
	for (size_t i = 0; i < f->n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, f->name[i]);
		assert_int_equal(stat(path, &sb), 0);
		f->size[i] = sb.st_size;
		f->total += sb.st_size;
	}
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Every line of every file is a whole record, and every file ends in '\n'.
 * Returns the number of records. */
static size_t check_whole(const char *dir)
{
	struct dir_files f;
	char path[512];
	size_t records = 0;
	list(dir, &f);
	for (size_t i = 0; i < f.n; i++) {
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", dir, f.name[i]);
		char *buf = slurp(path, &len);
		if (len)
			assert_int_equal(buf[len - 1], '\n');
		for (char *p = buf, *nl; (nl = memchr(p, '\n', (size_t)(buf + len - p))); p = nl + 1) {
			json_error_t e;
			json_t *j = json_loadb(p, (size_t)(nl - p), 0, &e);
			if (!j)
				fail_msg("%s: a line does not parse: %s", f.name[i], e.text);
			assert_true(json_is_object(json_object_get(j, "record")));
			json_decref(j);
			records++;
		}
		free(buf);
	}
	return records;
}

static void make_tmp(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/test_record.XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void remove_tree(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void file_name_at(char *out, size_t len, uint64_t unix_ns)
{
	time_t t = (time_t)(unix_ns / SEC);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "taskmon-%Y%m%dT%H%M%SZ.jsonl", &tm);
}

/* One record per call, written before it returns. */
static void record_one(struct tmd_recorder *r, struct tmd_merge *m)
{
	assert_int_equal(tmd_record_tick(r, m, &info, mono_ns(), true), 1);
	assert_int_equal(tmd_record_flush(r, 10000), 0);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_option_values(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(tmd_parse_duration("500ms", false, &v), 0);
	assert_int_equal(v, 500000000ull);
	assert_int_equal(tmd_parse_duration("10s", false, &v), 0);
	assert_int_equal(v, 10 * SEC);
	assert_int_equal(tmd_parse_duration("5m", false, &v), 0);
	assert_int_equal(v, 300 * SEC);
	assert_int_equal(tmd_parse_duration("1.5h", false, &v), 0);
	assert_int_equal(v, 5400 * SEC);
	assert_int_equal(tmd_parse_duration("7d", false, &v), 0);
	assert_int_equal(v, 7 * 86400 * SEC);
	assert_int_equal(tmd_parse_duration("2", true, &v), 0);
	assert_int_equal(v, 2 * SEC);
	static const char *const bad_durations[] = { "", "s", "10", "-1s", "10x", "10 s", "1e30d", "0s", "nan", "10sm", "0x10s", "1e3s" };
	for (size_t i = 0; i < sizeof(bad_durations) / sizeof(bad_durations[0]); i++)
		if (tmd_parse_duration(bad_durations[i], false, &v) != -EINVAL)
			fail_msg("'%s' taken as a duration", bad_durations[i]);
	assert_int_equal(tmd_parse_size("500M", &v), 0);
	assert_int_equal(v, 500ull << 20);
	assert_int_equal(tmd_parse_size("2G", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(tmd_parse_size("64KiB", &v), 0);
	assert_int_equal(v, 64ull << 10);
	assert_int_equal(tmd_parse_size("1TB", &v), 0);
	assert_int_equal(v, 1ull << 40);
	static const char *const bad_sizes[] = { "", "500", "M", "5Q", "-1M", "5MB2", "7d", "0M", "99999999T" };
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++)
		if (tmd_parse_size(bad_sizes[i], &v) != -EINVAL)
			fail_msg("'%s' taken as a size", bad_sizes[i]);
}

static void test_record_line(void **state)
{
	(void)state;
	struct tmd_merge *m = merge_with_tasks(1500);
	size_t len;
	char *line = tmd_record_line(m, &info, mono_ns(), 7, 10 * SEC, 1795698549000000000ull, 0, &len);
	assert_non_null(line);
	assert_int_equal(strlen(line), len);
	assert_int_equal(line[len - 1], '\n');
	assert_null(memchr(line, '\n', len - 1));   /* one line */
	json_error_t e;
	json_t *j = json_loadb(line, len, 0, &e);
	if (!j)
		fail_msg("the record does not parse: %s", e.text);
	/* The snapshot, with its tasks limited to the default. */
	assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
	assert_int_equal(json_array_size(json_object_get(j, "tasks")), TMD_SNAPSHOT_TASKS_DEFAULT);
	assert_int_equal(json_integer_value(json_object_get(j, "tasks_omitted")), 500);
	assert_false(json_is_true(json_object_get(j, "filtered")));
	/* The record key. */
	json_t *r = json_object_get(j, "record");
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 1);
	assert_int_equal(json_integer_value(json_object_get(r, "seq")), 7);
	assert_int_equal(json_integer_value(json_object_get(r, "interval_ns")), 10 * SEC);
	assert_int_equal(json_integer_value(json_object_get(r, "time_unix_ns")), 1795698549000000000ull);
	json_t *procs = json_object_get(r, "processes");
	assert_int_equal(json_array_size(procs), 1);
	json_t *p = json_array_get(procs, 0);
	assert_int_equal(json_integer_value(json_object_get(p, "pid")), getpid());
	assert_true(json_is_string(json_object_get(p, "comm")));
	assert_true(json_integer_value(json_object_get(p, "rss_bytes")) > 1 << 20);
	assert_true(json_integer_value(json_object_get(p, "threads")) >= 1);
	assert_true(json_is_integer(json_object_get(p, "cpu_ns")));
	json_t *c = json_object_get(r, "collector");
	assert_true(json_integer_value(json_object_get(c, "rss_bytes")) > 1 << 20);
	assert_true(json_is_integer(json_object_get(c, "cpu_ns")));
	/* Histograms per type: every sample in a bucket, buckets in order. */
	json_t *hists = json_object_get(r, "histograms"), *h;
	size_t i;
	assert_int_equal(json_array_size(hists), 4);
	json_array_foreach(hists, i, h) {
		json_int_t type = json_integer_value(json_object_get(h, "type"));
		assert_int_equal(json_integer_value(json_object_get(h, "pid")), getpid());
		assert_string_equal(json_string_value(json_object_get(h, "type_name")), tm_type_name((int)type));
		unsigned started = 0, ended = 0;
		for (unsigned id = 1; id <= 1500; id++) {
			started += id % 4 == (unsigned)type;
			ended += id % 4 == (unsigned)type && id % 3 == 0;
		}
		json_int_t sum = 0, last = -1;
		size_t k;
		json_t *b;
		json_array_foreach(json_object_get(h, "spawn_latency"), k, b) {
			assert_true(json_integer_value(json_array_get(b, 0)) > last);
			last = json_integer_value(json_array_get(b, 0));
			sum += json_integer_value(json_array_get(b, 1));
		}
		assert_int_equal(sum, started);
		sum = 0;
		json_array_foreach(json_object_get(h, "run_time"), k, b)
			sum += json_integer_value(json_array_get(b, 1));
		assert_int_equal(sum, ended);
	}
	json_decref(j);
	free(line);
	tmd_merge_free(m);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* What a record of a 1000-task snapshot costs the loop, beside the snapshot
 * alone (the socket's SNAPSHOT request) in the same run. Medians of 21. */
static void test_build_cost(void **state)
{
	(void)state;
	enum { RUNS = 21 };
	struct tmd_merge *m = merge_with_tasks(1000);
	uint64_t rec[RUNS], snap[RUNS];
	size_t rlen = 0, slen = 0;
	for (int i = 0; i < RUNS; i++) {
		uint64_t t0 = mono_ns();
		char *s = tmd_snapshot_json(m, &info, TMD_SNAPSHOT_OPTS(.all_workloads = true), mono_ns(), &slen);
		uint64_t t1 = mono_ns();
		char *l = tmd_record_line(m, &info, mono_ns(), (uint64_t)i, 10 * SEC, 1, 0, &rlen);
		uint64_t t2 = mono_ns();
		assert_non_null(s);
		assert_non_null(l);
		free(s);
		free(l);
		snap[i] = t1 - t0;
		rec[i] = t2 - t1;
	}
	qsort(rec, RUNS, sizeof(rec[0]), cmp_u64);
	qsort(snap, RUNS, sizeof(snap[0]), cmp_u64);
	print_message("record of 1000 tasks: %zu bytes, built in %.2f ms median (snapshot alone: %zu bytes, "
	              "%.2f ms; ratio %.2f)\n", rlen, rec[RUNS / 2] / 1e6, slen, snap[RUNS / 2] / 1e6,
	              (double)rec[RUNS / 2] / (double)snap[RUNS / 2]);
	assert_true(rlen > slen);
	assert_true(rec[RUNS / 2] < 2 * SEC);   /* generous: sanitizers and a busy machine */
	/* The writer thread's part, off the loop: write() + fdatasync(). */
	char dir[64], err[256];
	struct tmd_recorder *r;
	struct tmd_record_stats st;
	uint64_t wr[9];
	make_tmp(dir, sizeof(dir));
	assert_int_equal(tmd_record_open(&r, dir, TMD_RECORD_OPTS(.quiet = true), err, sizeof(err)), 0);
	for (int i = 0; i < 9; i++) {
		record_one(r, m);
		tmd_record_get_stats(r, &st);
		wr[i] = st.last_write_ns;
	}
	tmd_record_close(r);
	qsort(wr, 9, sizeof(wr[0]), cmp_u64);
	print_message("writer: %.2f ms median to append and sync a record in %s (max %.2f ms)\n", wr[4] / 1e6, dir,
	              wr[8] / 1e6);
	assert_int_equal(st.records_written, 9);
	remove_tree(dir);
	tmd_merge_free(m);
}

static void test_write_and_rotate(void **state)
{
	(void)state;
	char dir[64], sub[96], err[256];
	struct tmd_recorder *r;
	struct tmd_record_stats st;
	struct dir_files f;
	struct tmd_merge *m = merge_with_tasks(50);
	size_t one;
	free(tmd_record_line(m, &info, mono_ns(), 0, SEC, 1, 0, &one));
	make_tmp(dir, sizeof(dir));
	snprintf(sub, sizeof(sub), "%s/a/b", dir);   /* made by the recorder */
	uint64_t t0 = 1795698000ull * SEC;
	set_clock(t0);
	assert_int_equal(tmd_record_open(&r, sub, TMD_RECORD_OPTS(.interval_ns = SEC, .realtime_ns = fake_clock,
	                                                           .rotate_bytes = one * 5 / 2, .quiet = true),
	                                 err, sizeof(err)), 0);
	/* Three records in the first file's hour (the size limit is passed by the third)... */
	for (int i = 0; i < 3; i++) {
		set_clock(t0 + (uint64_t)i * 60 * SEC);
		record_one(r, m);
	}
	list(sub, &f);
	assert_int_equal(f.n, 1);
	/* ... a new file once the size limit is passed, and one per hour. */
	set_clock(t0 + 200 * SEC);
	record_one(r, m);
	set_clock(t0 + 200 * SEC + 3600 * SEC);
	record_one(r, m);
	record_one(r, m);
	list(sub, &f);
	tmd_record_get_stats(r, &st);
	tmd_record_close(r);
	char name[64];
	file_name_at(name, sizeof(name), t0);
	assert_string_equal(f.name[0], name);
	file_name_at(name, sizeof(name), t0 + 200 * SEC);
	assert_string_equal(f.name[1], name);
	file_name_at(name, sizeof(name), t0 + 3800 * SEC);
	assert_int_equal(f.n, 3);
	assert_string_equal(f.name[2], name);
	assert_int_equal(st.records_written, 6);
	assert_int_equal(st.files_created, 3);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.records_dropped, 0);
	assert_int_equal(st.bytes_written, (uint64_t)f.total);
	assert_int_equal(check_whole(sub), 6);
	/* seq counts from 0 in a run. */
	size_t len;
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", sub, f.name[2]);
	char *buf = slurp(path, &len);
	assert_non_null(strstr(buf, "\"seq\":4,"));
	assert_non_null(strstr(buf, "\"seq\":5,"));
	free(buf);
	remove_tree(dir);
	tmd_merge_free(m);
}

static void test_due(void **state)
{
	(void)state;
	char dir[64], err[256];
	struct tmd_recorder *r;
	struct tmd_merge *m = merge_with_tasks(3);
	make_tmp(dir, sizeof(dir));
	assert_int_equal(tmd_record_open(&r, dir, TMD_RECORD_OPTS(.interval_ns = SEC, .quiet = true), err, sizeof(err)),
	                 0);
	uint64_t now = mono_ns();
	assert_int_equal(tmd_record_tick(r, m, &info, now, false), 1);   /* the first at once */
	assert_int_equal(tmd_record_due(r), now + SEC);
	assert_int_equal(tmd_record_tick(r, m, &info, now + SEC / 2, false), 0);
	assert_int_equal(tmd_record_tick(r, m, &info, now + SEC + 5, false), 1);
	assert_int_equal(tmd_record_due(r), now + 2 * SEC);   /* on the grid, not drifting */
	assert_int_equal(tmd_record_tick(r, m, &info, now + 10 * SEC, false), 1);
	assert_int_equal(tmd_record_due(r), now + 11 * SEC);  /* no burst to catch up */
	assert_int_equal(tmd_record_flush(r, 10000), 0);
	tmd_record_close(r);
	assert_int_equal(check_whole(dir), 3);
	assert_int_equal(tmd_record_open(&r, dir, TMD_RECORD_OPTS(.interval_ns = 1000), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "10ms"));
	remove_tree(dir);
	tmd_merge_free(m);
}

static void test_retention_by_age(void **state)
{
	(void)state;
	char dir[64], err[256], name[64];
	struct tmd_recorder *r;
	struct dir_files f;
	struct tmd_merge *m = merge_with_tasks(3);
	uint64_t now = 1795698000ull * SEC, day = 86400 * SEC;
	make_tmp(dir, sizeof(dir));
	for (int d = 10; d >= 8; d--) {
		file_name_at(name, sizeof(name), now - (uint64_t)d * day);
		write_file(dir, name, "{\"record\":{\"time_unix_ns\":1}}\n");
	}
	write_file(dir, "notes.txt", "not a record file\n");
	write_file(dir, "taskmon-2000.jsonl", "not a record file's name\n");
	set_clock(now);
	assert_int_equal(tmd_record_open(&r, dir, TMD_RECORD_OPTS(.realtime_ns = fake_clock, .retain_age_ns = 7 * day,
	                                                           .quiet = true),
	                                 err, sizeof(err)), 0);
	record_one(r, m);
	struct tmd_record_stats st;
	tmd_record_get_stats(r, &st);
	tmd_record_close(r);
	/* Gone: the files whose successor began more than 7 days ago. Kept: the
	 * one of 8 days ago (its records may reach into the last 7 days). */
	list(dir, &f);
	assert_int_equal(st.files_removed, 2);
	assert_int_equal(f.n, 3);   /* the odd name, 8 days ago, now */
	assert_string_equal(f.name[0], "taskmon-2000.jsonl");
	file_name_at(name, sizeof(name), now - 8 * day);
	assert_string_equal(f.name[1], name);
	assert_int_equal(access(strcat(strcpy(name, dir), "/notes.txt"), F_OK), 0);
	remove_tree(dir);
	tmd_merge_free(m);
}

static void test_retention_by_size(void **state)
{
	(void)state;
	char dir[64], err[256];
	struct tmd_recorder *r;
	struct dir_files f;
	struct tmd_merge *m = merge_with_tasks(200);
	size_t len;
	char *one = tmd_record_line(m, &info, mono_ns(), 0, SEC, 1, 0, &len);
	free(one);
	make_tmp(dir, sizeof(dir));
	uint64_t t0 = 1795698000ull * SEC, limit = 4 * len + len / 2;
	assert_int_equal(tmd_record_open(&r, dir, TMD_RECORD_OPTS(.realtime_ns = fake_clock, .retain_bytes = limit,
	                                                           .quiet = true),
	                                 err, sizeof(err)), 0);
	for (int i = 0; i < 12; i++) {   /* a file per record: one an hour */
		set_clock(t0 + (uint64_t)i * 3600 * SEC);
		record_one(r, m);
		list(dir, &f);
		assert_true((uint64_t)f.total <= limit);
	}
	struct tmd_record_stats st;
	tmd_record_get_stats(r, &st);
	tmd_record_close(r);
	list(dir, &f);
	assert_int_equal(f.n, 4);   /* the newest four */
	char name[64];
	file_name_at(name, sizeof(name), t0 + 11 * 3600 * SEC);
	assert_string_equal(f.name[3], name);
	assert_int_equal(st.files_removed, 8);
	remove_tree(dir);
	tmd_merge_free(m);
}

/* A collector killed mid-write left a torn line: the next run, writing to
 * the same file, cuts it off first. */
static void test_torn_tail(void **state)
{
	(void)state;
	char dir[64], err[256], name[64], path[256];
	struct tmd_recorder *r;
	struct tmd_merge *m = merge_with_tasks(3);
	uint64_t t0 = 1795698000ull * SEC;
	make_tmp(dir, sizeof(dir));
	set_clock(t0);
	file_name_at(name, sizeof(name), t0);
	write_file(dir, name, "{\"version\":1,\"record\":{\"version\":1,\"seq\":0,\"time_unix_ns\":1795698000000000000}}\n"
	                      "{\"version\":1,\"workloads\":[{\"pid\":");
	assert_int_equal(tmd_record_open(&r, dir, TMD_RECORD_OPTS(.realtime_ns = fake_clock, .quiet = true), err,
	                                 sizeof(err)), 0);
	record_one(r, m);
	tmd_record_close(r);
	assert_int_equal(check_whole(dir), 2);
	size_t len;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	char *buf = slurp(path, &len);
	assert_null(strstr(buf, "\"workloads\":[{\"pid\":{"));
	assert_int_equal(strncmp(buf, "{\"version\":1,\"record\"", 21), 0);
	free(buf);
	remove_tree(dir);
	tmd_merge_free(m);
}

/* The directory removed by hand while recording: made again, and the next
 * record lands in a file a reader finds. */
static void test_removed_under(void **state)
{
	(void)state;
	char dir[64], sub[96], err[256];
	struct tmd_recorder *r;
	struct tmd_record_stats st;
	struct tmd_merge *m = merge_with_tasks(3);
	make_tmp(dir, sizeof(dir));
	snprintf(sub, sizeof(sub), "%s/rec", dir);
	set_clock(1795698000ull * SEC);
	assert_int_equal(tmd_record_open(&r, sub, TMD_RECORD_OPTS(.realtime_ns = fake_clock, .quiet = true), err,
	                                 sizeof(err)), 0);
	record_one(r, m);
	remove_tree(sub);
	record_one(r, m);
	record_one(r, m);
	tmd_record_get_stats(r, &st);
	tmd_record_close(r);
	assert_int_equal(st.errors, 0);
	assert_int_equal(check_whole(sub), 2);
	remove_tree(dir);
	tmd_merge_free(m);
}

/* stderr into a file for the duration of a test. */
struct capture {
	int saved;
	char path[64];
};

static void capture_start(struct capture *c)
{
	snprintf(c->path, sizeof(c->path), "/tmp/test_record_err.XXXXXX");
	int fd = mkstemp(c->path);
	assert_true(fd >= 0);
	fflush(stderr);
	c->saved = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(struct capture *c)
{
	size_t len;
	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	char *text = slurp(c->path, &len);
	unlink(c->path);
	return text;
}

static size_t count_of(const char *text, const char *what)
{
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, what)); p++)
		n++;
	return n;
}

/* A small tmpfs of its own, or a reason to skip. */
static bool mount_small(char *dir, size_t len, const char *opts)
{
	make_tmp(dir, len);
	if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
		print_message("skipped: cannot mount a tmpfs (%s): needs root\n", strerror(errno));
		rmdir(dir);
		return false;
	}
	return true;
}

static void unmount_small(const char *dir)
{
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
	rmdir(dir);
}

static void test_disk_full(void **state)
{
	(void)state;
	char dir[64], err[256], path[128];
	struct tmd_recorder *r;
	struct tmd_record_stats st;
	struct capture cap;
	if (!mount_small(dir, sizeof(dir), "size=1m")) {
		skip();
		return;
	}
	struct tmd_merge *m = merge_with_tasks(1000);
	/* Fill the disk but for less than a record. */
	snprintf(path, sizeof(path), "%s/filler", dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	static char block[4096];
	while (write(fd, block, sizeof(block)) == (ssize_t)sizeof(block))
		;
	close(fd);
	capture_start(&cap);
	assert_int_equal(tmd_record_open(&r, dir, TMD_RECORD_OPTS(.interval_ns = SEC), err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++)
		record_one(r, m);
	tmd_record_get_stats(r, &st);
	assert_true(st.failing);
	assert_int_equal(st.errors, 3);
	assert_int_equal(st.records_written, 0);
	assert_int_equal(st.last_error, ENOSPC);
	assert_int_equal(check_whole(dir), 0);   /* nothing torn left behind */
	/* Room again: recording resumes by itself. */
	unlink(path);
	record_one(r, m);
	record_one(r, m);
	tmd_record_get_stats(r, &st);
	tmd_record_close(r);
	char *text = capture_end(&cap);
	assert_false(st.failing);
	assert_int_equal(st.records_written, 2);
	assert_int_equal(st.errors, 3);
	assert_int_equal(check_whole(dir), 2);
	/* One line when it stopped, one when it resumed. */
	assert_int_equal(count_of(text, "stopped"), 1);
	assert_int_equal(count_of(text, "No space left on device"), 1);
	assert_int_equal(count_of(text, "resumed (3 records lost)"), 1);
	free(text);
	unmount_small(dir);
	tmd_merge_free(m);
}

/* A write that only partly fits is cut off: the file holds whole records. */
static void test_short_write(void **state)
{
	(void)state;
	char dir[64], err[256], path[128];
	struct tmd_recorder *r;
	struct tmd_record_stats st;
	if (!mount_small(dir, sizeof(dir), "size=2m")) {
		skip();
		return;
	}
	struct tmd_merge *m = merge_with_tasks(1000);
	size_t len;
	char *one = tmd_record_line(m, &info, mono_ns(), 0, SEC, 1, 0, &len);
	free(one);
	/* Leave room for one record and a half. */
	snprintf(path, sizeof(path), "%s/filler", dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	static char block[4096];
	while (write(fd, block, sizeof(block)) == (ssize_t)sizeof(block))
		;
	assert_int_equal(ftruncate(fd, lseek(fd, 0, SEEK_CUR) - (off_t)(len + len / 2) - 8192), 0);
	close(fd);
	assert_int_equal(tmd_record_open(&r, dir, TMD_RECORD_OPTS(.quiet = true), err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++)
		record_one(r, m);
	tmd_record_get_stats(r, &st);
	tmd_record_close(r);
	assert_int_equal(st.records_written, 1);
	assert_int_equal(st.errors, 2);
	assert_int_equal(check_whole(dir), 1);
	unmount_small(dir);
	tmd_merge_free(m);
}

static void test_read_only(void **state)
{
	(void)state;
	char dir[64], err[256], sub[96];
	struct tmd_recorder *r;
	struct tmd_record_stats st;
	if (!mount_small(dir, sizeof(dir), "size=4m")) {
		skip();
		return;
	}
	struct tmd_merge *m = merge_with_tasks(10);
	snprintf(sub, sizeof(sub), "%s/rec", dir);
	assert_int_equal(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, "size=4m"), 0);
	assert_int_equal(tmd_record_open(&r, sub, TMD_RECORD_OPTS(.quiet = true), err, sizeof(err)), 0);
	record_one(r, m);
	record_one(r, m);
	tmd_record_get_stats(r, &st);
	assert_true(st.failing);
	assert_int_equal(st.last_error, EROFS);
	assert_int_equal(st.errors, 2);
	assert_int_equal(mount(NULL, dir, NULL, MS_REMOUNT, "size=4m"), 0);
	record_one(r, m);
	tmd_record_get_stats(r, &st);
	tmd_record_close(r);
	assert_false(st.failing);
	assert_int_equal(st.records_written, 1);
	assert_int_equal(check_whole(sub), 1);
	unmount_small(dir);
	tmd_merge_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_option_values),
		cmocka_unit_test(test_record_line),
		cmocka_unit_test(test_build_cost),
		cmocka_unit_test(test_write_and_rotate),
		cmocka_unit_test(test_due),
		cmocka_unit_test(test_retention_by_age),
		cmocka_unit_test(test_retention_by_size),
		cmocka_unit_test(test_torn_tail),
		cmocka_unit_test(test_removed_under),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_short_write),
		cmocka_unit_test(test_read_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
