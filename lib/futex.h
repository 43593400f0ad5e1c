/* Thin futex wrappers: the library parks and wakes threads on plain words so
 * that the hot paths need no mutex. */
#ifndef TM_FUTEX_H
#define TM_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleeps while *word == expected, until abs_ns on CLOCK_MONOTONIC (0 = no
 * limit). Returns 0 when woken (or the value differed), -ETIMEDOUT, -EINTR. */
static inline int tm__futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t abs_ns)
{
	struct timespec ts, *tsp = NULL;
	if (abs_ns) {
		ts.tv_sec = (time_t)(abs_ns / 1000000000ull);
		ts.tv_nsec = (long)(abs_ns % 1000000000ull);
		tsp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, which
	 * keeps repeated waits from drifting. */
	long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
	                 expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (r == 0 || errno == EAGAIN)
		return 0;
	return -errno;
}

static inline void tm__futex_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

#endif
