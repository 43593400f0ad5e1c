/* The record-directory reader (tools/common/records.c) on hostile
 * directories: taskmon dump and tasktop --replay read files that anyone
 * who could write the directory may have planted or cut short.
 *
 * Input: u8 flags (bit 0: a lower time bound follows as u64, bit 1: an
 * upper one; bits 2-3: how many files, 1 to 4; bit 4: also plant a file
 * with a name the reader must ignore), then per file a u16 length and that
 * many bytes. The files are named taskmon-20260101T00000<i>Z.jsonl.
 * The reader must answer with records in time order inside the bounds, a
 * parsed object or NULL for each, and never crash or read out of bounds. */
#include "fuzz.h"

#include <dirent.h>
#include <sys/stat.h>
#include <jansson.h>
#include "records.h"

static char dir[128];

static void clear_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[400];
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	char path[400], err[256];
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "%s/records", fuzz_dir());
		FUZZ_CHECK(mkdir(dir, 0700) == 0);
	}
	clear_dir();
	uint8_t flags = fuzz_u8(&in);
	uint64_t since = (flags & 1) ? fuzz_u64(&in) : 0;
	uint64_t until = (flags & 2) ? fuzz_u64(&in) : 0;
	int nfiles = ((flags >> 2) & 3) + 1;
	for (int i = 0; i < nfiles; i++) {
		size_t len = fuzz_u16(&in);
		if (len > in.n)
			len = in.n;
		snprintf(path, sizeof(path), "%s/taskmon-20260101T00000%dZ.jsonl", dir, i);
		fuzz_write_file(path, in.p, len);
		in.p += len;
		in.n -= len;
	}
	if (flags & 16) {
		snprintf(path, sizeof(path), "%s/taskmon-2026.jsonl", dir);
		fuzz_write_file(path, "{\"record\":{\"time_unix_ns\":1}}\n", 30);
	}

	struct tm_records *r = NULL;
	err[0] = '\0';
	int rc = tm_records_open(&r, dir, since, until, err, sizeof(err));
	if (rc != 0) {
		/* a range that ends before it starts is refused too */
		FUZZ_CHECK(rc == -ENOMEM || (rc == -EINVAL && until != 0 && since > until));
		FUZZ_CHECK(err[0] != '\0');
		return 0;
	}
	size_t n = tm_records_count(r);
	uint64_t prev = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t t = tm_records_time(r, i);
		FUZZ_CHECK(t >= prev);
		FUZZ_CHECK(t >= since && (until == 0 || t <= until));
		prev = t;
	}
	for (size_t i = 0; i < n && i < 16; i++) {
		json_t *j = tm_records_get(r, i);
		FUZZ_CHECK(j == NULL || json_is_object(j));
	}
	FUZZ_CHECK(tm_records_get(r, n) == NULL);
	(void)tm_records_get(r, 0);   /* again: from the cache, or read anew */
	FUZZ_CHECK(tm_records_skipped(r) <= 1u << 20);
	for (size_t i = 0; i < tm_records_file_count(r); i++)
		FUZZ_CHECK(strstr(tm_records_file_name(r, i), "taskmon-20260101T") != NULL);   /* never the planted name */
	tm_records_close(r);
	return 0;
}
