/* Helpers for the taskmon benchmarks: clocks, pacing, /proc readers,
 * quantiles and number formatting. Header-only so that every bench .c stays
 * one binary. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BU_NS_PER_S 1000000000ull

static inline uint64_t bu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * BU_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline struct timespec bu_timespec(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / BU_NS_PER_S), (long)(ns % BU_NS_PER_S) };
	return ts;
}

static inline void bu_sleep_ns(uint64_t ns)
{
	struct timespec ts = bu_timespec(ns);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* The kernel wakes a sleeper tens of microseconds late, so sleep to just
 * before the deadline and spin the rest: the spin is what makes the pace exact. */
static inline void bu_pace_until(uint64_t deadline_ns)
{
	const uint64_t spin_ns = 50000;
	if (deadline_ns > bu_now_ns() + spin_ns) {
		struct timespec ts = bu_timespec(deadline_ns - spin_ns);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	while (bu_now_ns() < deadline_ns)
		;
}

/* VmRSS of this process in KiB, -1 when /proc cannot tell. */
static inline long bu_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static inline int bu_read_long(const char *path, long *out)
{
	FILE *f = fopen(path, "r");
	int ok;
	if (!f)
		return -errno;
	ok = fscanf(f, "%ld", out) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

static inline long bu_count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int c;
	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static inline int bu_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank quantile of a sorted array: the smallest value with at least
 * q of the samples at or below it. */
static inline uint64_t bu_quantile(const uint64_t *sorted, size_t n, double q)
{
	size_t rank;
	if (!n)
		return 0;
	rank = (size_t)(q * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	return sorted[(rank > n ? n : rank) - 1];
}

static inline double bu_median3(const double v[3])
{
	double a = v[0], b = v[1], c = v[2];
	if ((a <= b && b <= c) || (c <= b && b <= a))
		return b;
	if ((b <= a && a <= c) || (c <= a && a <= b))
		return a;
	return c;
}

/* Median of a few unsorted samples (the lower one for an even count); the
 * samples are left in their order. At most 64 are looked at. */
static inline uint64_t bu_median_u64(const uint64_t *v, size_t n)
{
	uint64_t tmp[64];
	if (!n)
		return 0;
	if (n > 64)
		n = 64;
	memcpy(tmp, v, n * sizeof(*v));
	qsort(tmp, n, sizeof(*tmp), bu_cmp_u64);
	return tmp[(n - 1) / 2];
}

static inline uint64_t bu_max_u64(const uint64_t *v, size_t n)
{
	uint64_t max = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] > max)
			max = v[i];
	return max;
}

/* 1234567 -> "1,234,567": large counts are read at a glance this way. */
static inline const char *bu_count(char *buf, size_t len, uint64_t v)
{
	char digits[32];
	size_t n = (size_t)snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
	size_t o = 0;
	for (size_t i = 0; i < n && o + 2 < len; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* Writes s as a JSON string literal. */
static inline void bu_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

#endif
