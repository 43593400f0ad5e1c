/* Small helpers the library's test binaries share. */
#ifndef TM_TEST_UTIL_H
#define TM_TEST_UTIL_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Polls rather than blocks so that a library that never runs a body makes the
 * test fail after the bound instead of hanging the binary. */
static inline bool wait_count(atomic_int *v, int want, unsigned timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	while (atomic_load(v) < want) {
		if (now_ns() > end)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* A futex gate: thousands of blocked tasks cost nothing while they wait,
 * unlike polling, and opening it is one system call. */
static inline void gate_wait(atomic_int *g)
{
	while (atomic_load(g) == 0)
		syscall(SYS_futex, (int *)g, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static inline void gate_open(atomic_int *g)
{
	atomic_store(g, 1);
	syscall(SYS_futex, (int *)g, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

#endif
