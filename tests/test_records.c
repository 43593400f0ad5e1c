/* The record-directory reader (tools/common/records.c): file and time order,
 * --since/--until bounds, torn and garbage lines, huge lines, names that are
 * not record files, errors, and the parse cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "records.h"

#define SEC 1000000000ull
#define T0  1795698000ull   /* 2026-11-26T09:40:00Z */

struct fixture {
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_records.XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

static void name_at(char *out, size_t len, uint64_t unix_s)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "taskmon-%Y%m%dT%H%M%SZ.jsonl", &tm);
}

static FILE *open_in(const struct fixture *f, const char *name, const char *mode)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	FILE *fp = fopen(path, mode);
	assert_non_null(fp);
	return fp;
}

/* A record line as the writer makes it: the snapshot's keys, then "record". */
static void put_record(FILE *fp, uint64_t t_ns, unsigned seq)
{
	fprintf(fp, "{\"version\":1,\"now_ns\":5,\"workloads\":[],\"tasks\":[],\"record\":{\"version\":1,\"seq\":%u,"
	            "\"interval_ns\":1000000000,\"time_unix_ns\":%llu,\"processes\":[],\"collector\":{\"rss_bytes\":1,"
	            "\"cpu_ns\":2}}}\n", seq, (unsigned long long)t_ns);
}

/* A file of n records, one a second from its name's time. */
static void make_file(const struct fixture *f, uint64_t start_s, unsigned n, unsigned seq0)
{
	char name[64];
	name_at(name, sizeof(name), start_s);
	FILE *fp = open_in(f, name, "w");
	for (unsigned i = 0; i < n; i++)
		put_record(fp, (start_s + i) * SEC + 123, seq0 + i);
	fclose(fp);
}

static unsigned seq_of(json_t *rec)
{
	return (unsigned)json_integer_value(json_object_get(json_object_get(rec, "record"), "seq"));
}

static struct tm_records *open_ok(const struct fixture *f, uint64_t since, uint64_t until)
{
	struct tm_records *r;
	char err[256] = "";
	int e = tm_records_open(&r, f->dir, since, until, err, sizeof(err));
	if (e < 0)
		fail_msg("open: %s", err);
	return r;
}

static void test_order(void **state)
{
	struct fixture *f = *state;
	make_file(f, T0 + 7200, 5, 10);   /* written out of order on purpose */
	make_file(f, T0, 5, 0);
	make_file(f, T0 + 3600, 5, 5);
	struct tm_records *r = open_ok(f, 0, 0);
	assert_int_equal(tm_records_count(r), 15);
	assert_int_equal(tm_records_file_count(r), 3);
	char name[64];
	name_at(name, sizeof(name), T0);
	assert_string_equal(tm_records_file_name(r, 0), name);
	for (size_t i = 0; i < 15; i++) {
		json_t *j = tm_records_get(r, i);
		assert_non_null(j);
		assert_int_equal(seq_of(j), i);
		if (i)
			assert_true(tm_records_time(r, i) > tm_records_time(r, i - 1));
	}
	assert_int_equal(tm_records_time(r, 0), T0 * SEC + 123);
	assert_int_equal(tm_records_skipped(r), 0);
	assert_null(tm_records_get(r, 15));
	tm_records_close(r);
}

static void test_since_until(void **state)
{
	struct fixture *f = *state;
	make_file(f, T0, 10, 0);
	make_file(f, T0 + 3600, 10, 10);
	make_file(f, T0 + 7200, 10, 20);
	/* Bounds are inclusive. */
	struct tm_records *r = open_ok(f, (T0 + 5) * SEC + 123, (T0 + 3600 + 2) * SEC + 123);
	assert_int_equal(tm_records_count(r), 5 + 3);
	assert_int_equal(seq_of(tm_records_get(r, 0)), 5);
	assert_int_equal(seq_of(tm_records_get(r, 7)), 12);
	tm_records_close(r);
	r = open_ok(f, (T0 + 7200 + 9) * SEC, 0);
	assert_int_equal(tm_records_count(r), 1);
	assert_int_equal(seq_of(tm_records_get(r, 0)), 29);
	tm_records_close(r);
	r = open_ok(f, 0, T0 * SEC);
	assert_int_equal(tm_records_count(r), 0);
	tm_records_close(r);
	r = open_ok(f, (T0 + 99999) * SEC, 0);
	assert_int_equal(tm_records_count(r), 0);
	tm_records_close(r);
	char err[256];
	assert_int_equal(tm_records_open(&r, f->dir, 10, 5, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "after"));
}

static void test_torn_lines(void **state)
{
	struct fixture *f = *state;
	char name[64];
	/* An older file whose collector was killed mid-write, and the current
	 * one with its record in flight. */
	make_file(f, T0, 3, 0);
	name_at(name, sizeof(name), T0);
	FILE *fp = open_in(f, name, "a");
	fputs("{\"version\":1,\"workloads\":[{\"pid\":12", fp);
	fclose(fp);
	make_file(f, T0 + 60, 2, 3);
	name_at(name, sizeof(name), T0 + 60);
	fp = open_in(f, name, "a");
	fputs("{\"version\":1,\"now_ns\":5,\"record\":{\"version\":1,\"seq\":5,\"time_unix_ns\":1795698070000000000}", fp);
	fclose(fp);
	struct tm_records *r = open_ok(f, 0, 0);
	assert_int_equal(tm_records_count(r), 5);
	assert_int_equal(tm_records_skipped(r), 2);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(seq_of(tm_records_get(r, i)), i);
	tm_records_close(r);
}

static void test_garbage(void **state)
{
	struct fixture *f = *state;
	char name[64];
	name_at(name, sizeof(name), T0);
	FILE *fp = open_in(f, name, "w");
	put_record(fp, T0 * SEC, 0);
	static const char *const bad[] = {
		"",                                        /* empty line */
		"not json at all",
		"[1,2,3]",
		"42",
		"\"a string\"",
		"{\"version\":1}",                          /* no record */
		"{\"record\":{\"time_unix_ns\":\"12\"}}",   /* a string time */
		"{\"record\":{\"seq\":1}}",                 /* no time */
		"{\"record\":{\"time_unix_ns\":99999999999999999999999}}",   /* overflows */
		"{\"record\":[1]}",
		"\x01\x02\xff\xfe",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		fprintf(fp, "%s\n", bad[i]);
	/* Looks like a record from its tail, does not parse as a whole. */
	fprintf(fp, "{\"version\":1,\"workloads\":[}}},\"record\":{\"version\":1,\"seq\":7,\"time_unix_ns\":%llu}}\n",
	        (unsigned long long)(T0 * SEC + 5));
	/* Parses, but the last time in its tail is not the record's. */
	fprintf(fp, "{\"record\":{\"time_unix_ns\":%llu,\"seq\":8,\"y\":{\"time_unix_ns\":1}}}\n",
	        (unsigned long long)(T0 * SEC + 6));
	put_record(fp, T0 * SEC + 10, 9);
	fclose(fp);
	struct tm_records *r = open_ok(f, 0, 0);
	size_t n = sizeof(bad) / sizeof(bad[0]);
	assert_int_equal(tm_records_skipped(r), n);
	assert_int_equal(tm_records_count(r), 4);
	assert_int_equal(tm_records_time(r, 0), 1);   /* indexed by what its tail said ... */
	assert_null(tm_records_get(r, 0));            /* ... and found out when parsed */
	assert_int_equal(tm_records_skipped(r), n + 1);
	assert_int_equal(seq_of(tm_records_get(r, 1)), 0);
	assert_null(tm_records_get(r, 2));            /* the broken one */
	assert_int_equal(tm_records_skipped(r), n + 2);
	assert_null(tm_records_get(r, 2));            /* counted once */
	assert_int_equal(tm_records_skipped(r), n + 2);
	assert_int_equal(seq_of(tm_records_get(r, 3)), 9);
	tm_records_close(r);
}

static void test_not_record_files(void **state)
{
	struct fixture *f = *state;
	char path[256];
	make_file(f, T0, 2, 0);
	static const char *const names[] = { "notes.txt", "taskmon-2026.jsonl", "taskmon-20261326T000000Z.jsonl",
	                                     "taskmon-20261126T000000Z.jsonl.tmp", "xtaskmon-20261126T000000Z.jsonl" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		FILE *fp = open_in(f, names[i], "w");
		put_record(fp, T0 * SEC + 1, 99);
		fclose(fp);
	}
	snprintf(path, sizeof(path), "%s/taskmon-20261126T100000Z.jsonl", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);   /* a directory with a record file's name */
	struct tm_records *r = open_ok(f, 0, 0);
	assert_int_equal(tm_records_count(r), 2);
	assert_int_equal(tm_records_file_count(r), 1);
	assert_int_equal(tm_records_skipped(r), 0);
	tm_records_close(r);
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	struct tm_records *r = (struct tm_records *)1;
	char err[256], path[128];
	snprintf(path, sizeof(path), "%s/missing", f->dir);
	assert_int_equal(tm_records_open(&r, path, 0, 0, err, sizeof(err)), -ENOENT);
	assert_null(r);
	assert_non_null(strstr(err, path));
	snprintf(path, sizeof(path), "%s/file", f->dir);
	fclose(open_in(f, "file", "w"));
	assert_int_equal(tm_records_open(&r, path, 0, 0, err, sizeof(err)), -ENOTDIR);
	assert_int_equal(tm_records_open(&r, "", 0, 0, err, sizeof(err)), -EINVAL);
	/* An empty directory has no records, which is no error. */
	r = open_ok(f, 0, 0);
	assert_int_equal(tm_records_count(r), 0);
	assert_null(tm_records_get(r, 0));
	tm_records_close(r);
	tm_records_close(NULL);
}

/* A line past the limit is skipped without being held; a long one within it
 * (its record object megabytes long) is read. */
static void test_huge_lines(void **state)
{
	struct fixture *f = *state;
	char name[64];
	size_t pad = 3u << 20;
	char *big = malloc(pad + 1);
	assert_non_null(big);
	memset(big, 'x', pad);
	big[pad] = '\0';
	name_at(name, sizeof(name), T0);
	FILE *fp = open_in(f, name, "w");
	put_record(fp, T0 * SEC, 0);
	/* A record object of megabytes (many histograms), its time last. */
	fprintf(fp, "{\"record\":{\"seq\":1,\"pad\":\"%s\",\"time_unix_ns\":%llu}}\n", big,
	        (unsigned long long)(T0 * SEC + 1));
	fputs("{\"pad\":\"", fp);
	for (size_t k = 0; k <= TM_RECORDS_MAX_LINE / pad; k++)
		fwrite(big, 1, pad, fp);
	fprintf(fp, "\",\"record\":{\"seq\":2,\"time_unix_ns\":%llu}}\n", (unsigned long long)(T0 * SEC + 2));
	put_record(fp, T0 * SEC + 3, 3);
	fclose(fp);
	free(big);
	struct tm_records *r = open_ok(f, 0, 0);
	assert_int_equal(tm_records_count(r), 3);
	assert_int_equal(tm_records_skipped(r), 1);
	json_t *j = tm_records_get(r, 1);
	assert_non_null(j);
	assert_int_equal(seq_of(j), 1);
	assert_int_equal(strlen(json_string_value(json_object_get(json_object_get(j, "record"), "pad"))), pad);
	assert_int_equal(seq_of(tm_records_get(r, 2)), 3);
	tm_records_close(r);
}

/* No newline at all in a large file: one torn line, read in bounded chunks. */
static void test_no_newline(void **state)
{
	struct fixture *f = *state;
	char name[64];
	name_at(name, sizeof(name), T0);
	FILE *fp = open_in(f, name, "w");
	for (int i = 0; i < 3 * 1024; i++)
		fputs("{\"a\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,"
		      "34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,"
		      "67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,"
		      "100,101,102,103,104,105,106,107,108,109,110,111,112,113,114,115,116,117,118,119,120,121,122,123,124,"
		      "125,126,127,128,129,130,131,132,133,134,135,136,137,138,139,140,141,142,143,144,145,146,147,148,149,"
		      "150,151,152,153,154,155,156,157,158,159,160,161,162,163,164,165,166,167,168,169,170,171,172,173]}", fp);
	fclose(fp);
	struct tm_records *r = open_ok(f, 0, 0);
	assert_int_equal(tm_records_count(r), 0);
	assert_int_equal(tm_records_skipped(r), 1);
	tm_records_close(r);
}

/* The clock was set back while recording: records come out in time order. */
static void test_clock_set_back(void **state)
{
	struct fixture *f = *state;
	char name[64];
	name_at(name, sizeof(name), T0);
	FILE *fp = open_in(f, name, "w");
	put_record(fp, (T0 + 10) * SEC, 0);
	put_record(fp, (T0 + 2) * SEC, 1);
	put_record(fp, (T0 + 11) * SEC, 2);
	put_record(fp, (T0 + 2) * SEC, 3);
	fclose(fp);
	struct tm_records *r = open_ok(f, 0, 0);
	assert_int_equal(tm_records_count(r), 4);
	static const unsigned want[] = { 1, 3, 0, 2 };   /* equal times keep file order */
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(seq_of(tm_records_get(r, i)), want[i]);
	tm_records_close(r);
}

static void test_cache(void **state)
{
	struct fixture *f = *state;
	make_file(f, T0, 20, 0);
	struct tm_records *r = open_ok(f, 0, 0);
	json_t *a = tm_records_get(r, 3);
	assert_ptr_equal(tm_records_get(r, 3), a);   /* parsed once */
	json_incref(a);                              /* kept past the cache */
	for (size_t i = 0; i < 20; i++)
		assert_int_equal(seq_of(tm_records_get(r, i)), i);
	for (size_t i = 20; i-- > 0;)
		assert_int_equal(seq_of(tm_records_get(r, i)), i);
	assert_int_equal(seq_of(a), 3);
	json_decref(a);
	tm_records_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_since_until, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_record_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clock_set_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
