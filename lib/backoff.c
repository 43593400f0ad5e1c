/* Restart backoff delays for critical tasks: the growth formulas, the cap and
 * the jitter, as a pure function of (policy, attempt, previous delay, rng
 * state) so that supervision code and tests get reproducible sequences. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "taskmon.h"

/* The largest n with F(n) < 2^64; every F(n) past it exceeds any cap. */
#define FIB_MAX_N 93u

/* splitmix64: one 64-bit add per step walks a full-period Weyl sequence, so
 * every state is usable (0 included, it is not a fixed point) and a caller's
 * copied state replays exactly the same draws. The mix turns that sequence
 * into well-distributed outputs. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Callers that do not care about reproducibility pass NULL; a per-thread
 * state needs no lock. The address term keeps threads seeded in the same
 * nanosecond apart. */
static uint64_t *thread_rng(void)
{
	static _Thread_local uint64_t state;
	static _Thread_local bool seeded;

	if (!seeded) {
		state = tm__now_ns() ^ (uint64_t)(uintptr_t)&state;
		seeded = true;
	}
	return &state;
}

/* Uniform in [lo, hi], both ends included, lo <= hi. The high half of x * n
 * lands in [0, n); a plain multiply-high over-weights some results, so the
 * 2^64 mod n lowest products are drawn again, which makes it exact. */
static uint64_t uniform(uint64_t *rng, uint64_t lo, uint64_t hi)
{
	uint64_t span = hi - lo;

	if (span == UINT64_MAX)        /* n = 2^64 does not fit; every draw is fair */
		return splitmix64(rng);
	uint64_t n = span + 1;
	unsigned __int128 m = (unsigned __int128)splitmix64(rng) * n;
	if ((uint64_t)m < n) {         /* only then can it be in the biased zone */
		uint64_t reject = -n % n;  /* 2^64 mod n */
		while ((uint64_t)m < reject)
			m = (unsigned __int128)splitmix64(rng) * n;
	}
	return lo + (uint64_t)(m >> 64);
}

static uint64_t mul_capped(uint64_t a, uint64_t b, uint64_t cap)
{
	uint64_t r;

	if (__builtin_mul_overflow(a, b, &r) || r > cap)
		return cap;
	return r;
}

/* base * multiplier^(attempt - 1) by square-and-multiply: O(log attempt)
 * steps, and it stops once past the cap because every remaining factor is
 * >= 1. long double holds any u64 base exactly on x86-64, and overflow there
 * only goes to infinity, which compares above the cap. Rounded to nearest, so
 * that a multiplier such as 1.7, which double stores a hair low, still gives
 * 100 * 1.7 = 170 rather than 169. */
static uint64_t exponential(uint64_t base, double multiplier, unsigned attempt, uint64_t cap)
{
	long double m = multiplier > 1.0 ? multiplier : 1.0;  /* NaN compares false */
	long double limit = (long double)cap;
	long double d = (long double)base;                    /* base > 0: no 0 * inf */
	unsigned e = attempt - 1;

	while (e != 0 && d < limit) {
		if (e & 1u)
			d *= m;
		e >>= 1;
		if (e != 0)
			m *= m;
	}
	long double r = d + 0.5L;
	/* r < limit <= 2^64 here, so the conversion is defined */
	return r >= limit ? cap : (uint64_t)r;
}

/* F(n) for 1 <= n <= FIB_MAX_N by fast doubling from the top bit down:
 *   F(2k) = F(k) * (2F(k+1) - F(k)),  F(2k+1) = F(k)^2 + F(k+1)^2.
 * Seven steps cover n < 128. 128-bit because the pair also carries F(n+1),
 * which for n = 93 is past 2^64. */
static uint64_t fibonacci(unsigned n)
{
	unsigned __int128 a = 0, b = 1;  /* F(k), F(k+1) with k = 0 */

	for (int bit = 6; bit >= 0; bit--) {
		unsigned __int128 even = a * (2 * b - a);
		unsigned __int128 odd = a * a + b * b;
		if ((n >> bit) & 1u) {
			a = odd;
			b = even + odd;
		} else {
			a = even;
			b = odd;
		}
	}
	return (uint64_t)a;
}

/* The delay before jitter, already capped. base > 0. An unknown kind is
 * treated as fixed: a restart never waits longer than asked by mistake. */
static uint64_t raw_delay(const struct tm_backoff *b, unsigned attempt, uint64_t cap)
{
	switch (b->kind) {
	case TM_BACKOFF_LINEAR:
		return mul_capped(b->base_ms, attempt, cap);
	case TM_BACKOFF_EXPONENTIAL:
		return exponential(b->base_ms, b->multiplier, attempt, cap);
	case TM_BACKOFF_FIBONACCI:
		/* base >= 1, so past F(93) the product exceeds 2^64 > any cap */
		return attempt > FIB_MAX_N ? cap : mul_capped(b->base_ms, fibonacci(attempt), cap);
	case TM_BACKOFF_FIXED:
	default:
		return b->base_ms < cap ? b->base_ms : cap;
	}
}

/* Grows from the previous delay rather than the attempt number, which spreads
 * restarts of many tasks better than full jitter; prev * 3 saturates. */
static uint64_t decorrelated(uint64_t base, uint64_t prev, uint64_t cap, uint64_t *rng)
{
	uint64_t from = prev < base ? base : prev;
	uint64_t hi;

	if (__builtin_mul_overflow(from, 3u, &hi))
		hi = UINT64_MAX;
	uint64_t d = uniform(rng, base, hi);
	return d < cap ? d : cap;
}

/* Jitter none never draws, so it leaves *rng as it was. */
uint64_t tm_backoff_delay_ms(const struct tm_backoff *b, unsigned attempt, uint64_t prev_ms, uint64_t *rng)
{
	if (!b)
		return 0;
	uint64_t cap = b->max_ms ? b->max_ms : UINT64_MAX;
	if (attempt == 0)
		attempt = 1;
	if (!rng && b->jitter != TM_JITTER_NONE)
		rng = thread_rng();
	if (b->jitter == TM_JITTER_DECORRELATED)
		return decorrelated(b->base_ms, prev_ms, cap, rng);

	uint64_t d = b->base_ms ? raw_delay(b, attempt, cap) : 0;
	switch (b->jitter) {
	case TM_JITTER_FULL:
		return uniform(rng, 0, d);
	case TM_JITTER_EQUAL:
		/* d - d/2 rather than d/2: an odd d still reaches d */
		return d / 2 + uniform(rng, 0, d - d / 2);
	case TM_JITTER_NONE:
	default:
		return d;
	}
}
