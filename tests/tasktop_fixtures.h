/* Fixture files of tasktop's data-side tests (tests/fixtures/tasktop/):
 * found from the working directory (make test runs from the top of the tree)
 * or from the test binary's place in build/. */
#ifndef TASKTOP_FIXTURES_H
#define TASKTOP_FIXTURES_H

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline const char *tt_fixture_dir(void)
{
	static char dir[PATH_MAX];
	if (dir[0])
		return dir;
	struct stat st;
	if (stat("tests/fixtures/tasktop", &st) == 0) {
		snprintf(dir, sizeof(dir), "tests/fixtures/tasktop");
		return dir;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	char *d = dirname(self);
	for (int up = 0; up < 5; up++) {
		char cand[PATH_MAX + 64];
		snprintf(cand, sizeof(cand), "%s/tests/fixtures/tasktop", d);
		if (stat(cand, &st) == 0 && strlen(cand) < sizeof(dir)) {
			memcpy(dir, cand, strlen(cand) + 1);
			return dir;
		}
		d = dirname(d);
	}
	snprintf(dir, sizeof(dir), "tests/fixtures/tasktop");
	return dir;
}

/* The whole fixture, malloc'ed and NUL-terminated; NULL when missing. */
static inline char *tt_fixture_read(const char *name, size_t *len)
{
	char path[2 * PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", tt_fixture_dir(), name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
	size_t got = buf ? fread(buf, 1, (size_t)sz, f) : 0;
	fclose(f);
	if (!buf || got != (size_t)sz) {
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	if (len)
		*len = got;
	return buf;
}

#endif
