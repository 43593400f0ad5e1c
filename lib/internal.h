/* Names shared between the library's own files; not installed. */
#ifndef TM_INTERNAL_H
#define TM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Sets the calling thread's tm_last_error() sentence. */
void tm__set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* tm__set_error then return -err (err positive): `return tm__fail(EINVAL, "...")`. */
int  tm__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies an options struct that starts with size_t sz into dst (dst_sz
 * bytes), as described in opts.c; NULL src gives all zero. 0 or -EINVAL. */
int  tm__read_opts(void *dst, size_t dst_sz, const void *src, const char *what, const char *macro);

static inline uint64_t tm__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
