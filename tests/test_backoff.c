/* Restart backoff: growth formulas, cap, overflow, jitter ranges and spread,
 * reproducibility from a caller-owned rng state. */
#include <float.h>
#include <limits.h>
#include <math.h>  /* NAN, INFINITY only: no libm */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "taskmon.h"

#define DRAWS 100000u

static const enum tm_backoff_kind kinds[] = {
	TM_BACKOFF_FIXED, TM_BACKOFF_LINEAR, TM_BACKOFF_EXPONENTIAL, TM_BACKOFF_FIBONACCI,
};
static const enum tm_jitter jitters[] = {
	TM_JITTER_NONE, TM_JITTER_FULL, TM_JITTER_EQUAL, TM_JITTER_DECORRELATED,
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])
#define N_JITTERS (sizeof jitters / sizeof jitters[0])

static struct tm_backoff policy(enum tm_backoff_kind kind, uint64_t base, uint64_t max, double mult)
{
	return (struct tm_backoff){ .kind = kind, .base_ms = base, .max_ms = max,
	                            .multiplier = mult, .jitter = TM_JITTER_NONE };
}

/* Delays for attempts 1..n with jitter none must equal want[]. */
static void assert_sequence(const struct tm_backoff *b, const uint64_t *want, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t got = tm_backoff_delay_ms(b, i + 1, 0, NULL);
		if (got != want[i])
			fail_msg("attempt %u: got %llu, want %llu", i + 1,
			         (unsigned long long)got, (unsigned long long)want[i]);
	}
}

/* Reference: the plain definition, F(1) = F(2) = 1, in u64 (fits to F(93)). */
static uint64_t fib_ref(unsigned n)
{
	uint64_t a = 0, b = 1;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t = a + b;
		a = b;
		b = t;
	}
	return a;
}

static void test_fixed_sequence(void **state)
{
	(void)state;
	struct tm_backoff b = policy(TM_BACKOFF_FIXED, 100, 10000, 2.0);
	for (unsigned a = 1; a <= 50; a++)
		assert_int_equal(tm_backoff_delay_ms(&b, a, 0, NULL), 100);
	assert_int_equal(tm_backoff_delay_ms(&b, UINT_MAX, 0, NULL), 100);
	b.max_ms = 40;  /* a cap below base wins */
	assert_int_equal(tm_backoff_delay_ms(&b, 3, 0, NULL), 40);
	b.max_ms = 0;
	b.base_ms = UINT64_MAX;
	assert_true(tm_backoff_delay_ms(&b, 7, 0, NULL) == UINT64_MAX);
}

static void test_linear_sequence(void **state)
{
	(void)state;
	struct tm_backoff b = policy(TM_BACKOFF_LINEAR, 100, 10000, 2.0);
	static const uint64_t want[] = { 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000 };
	assert_sequence(&b, want, 10);
	assert_int_equal(tm_backoff_delay_ms(&b, 99, 0, NULL), 9900);
	assert_int_equal(tm_backoff_delay_ms(&b, 100, 0, NULL), 10000);
	assert_int_equal(tm_backoff_delay_ms(&b, 101, 0, NULL), 10000);
	assert_int_equal(tm_backoff_delay_ms(&b, UINT_MAX, 0, NULL), 10000);
	b.max_ms = 0;
	assert_true(tm_backoff_delay_ms(&b, UINT_MAX, 0, NULL) == 100ull * UINT_MAX);
}

static void test_exponential_sequence(void **state)
{
	(void)state;
	struct tm_backoff b = policy(TM_BACKOFF_EXPONENTIAL, 100, 10000, 2.0);
	static const uint64_t want[] = { 100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000 };
	assert_sequence(&b, want, 10);

	/* 1.5 is exact in binary: 337.5, 506.25, 759.375 ... rounded to nearest */
	b.multiplier = 1.5;
	b.max_ms = 0;
	static const uint64_t half[] = { 100, 150, 225, 338, 506, 759, 1139, 1709 };
	assert_sequence(&b, half, 8);
	/* 1.7 is stored a hair below 1.7; the delay is still 170, not 169 */
	b.multiplier = 1.7;
	assert_int_equal(tm_backoff_delay_ms(&b, 2, 0, NULL), 170);
	assert_int_equal(tm_backoff_delay_ms(&b, 3, 0, NULL), 289);

	/* the last power of two below 2^64, then the (absent) cap */
	b = policy(TM_BACKOFF_EXPONENTIAL, 1, 0, 2.0);
	assert_true(tm_backoff_delay_ms(&b, 64, 0, NULL) == 1ull << 63);
	assert_true(tm_backoff_delay_ms(&b, 65, 0, NULL) == UINT64_MAX);
	b.max_ms = (1ull << 40) + 1;
	assert_true(tm_backoff_delay_ms(&b, 41, 0, NULL) == 1ull << 40);
	assert_true(tm_backoff_delay_ms(&b, 42, 0, NULL) == (1ull << 40) + 1);
}

static void test_fibonacci_sequence(void **state)
{
	(void)state;
	struct tm_backoff b = policy(TM_BACKOFF_FIBONACCI, 100, 10000, 2.0);
	static const uint64_t want[] = { 100, 100, 200, 300, 500, 800, 1300, 2100, 3400, 5500,
	                                 8900, 10000, 10000, 10000 };
	assert_sequence(&b, want, 14);
}

static void test_fibonacci_exact_to_93(void **state)
{
	(void)state;
	struct tm_backoff one = policy(TM_BACKOFF_FIBONACCI, 1, 0, 0);
	struct tm_backoff two = policy(TM_BACKOFF_FIBONACCI, 2, 0, 0);
	for (unsigned n = 1; n <= 93; n++) {
		uint64_t f = fib_ref(n);
		uint64_t got = tm_backoff_delay_ms(&one, n, 0, NULL);
		if (got != f)
			fail_msg("F(%u): got %llu, want %llu", n, (unsigned long long)got, (unsigned long long)f);
		/* 2 * F(n) fits up to n = 92 (2 * F(92) < 2^64 < 2 * F(93)) */
		uint64_t want2 = n <= 92 ? 2 * f : UINT64_MAX;
		assert_true(tm_backoff_delay_ms(&two, n, 0, NULL) == want2);
	}
	assert_true(fib_ref(92) == 7540113804746346429ull);
	assert_true(fib_ref(93) == 12200160415121876738ull);
}

static void test_fibonacci_large(void **state)
{
	(void)state;
	const uint64_t cap = 10000000000000000000ull;  /* 1e19: F(92) < cap < F(93) */
	struct tm_backoff b = policy(TM_BACKOFF_FIBONACCI, 1, cap, 0);
	assert_true(tm_backoff_delay_ms(&b, 92, 0, NULL) == 7540113804746346429ull);
	assert_true(tm_backoff_delay_ms(&b, 93, 0, NULL) == cap);
	assert_true(tm_backoff_delay_ms(&b, 94, 0, NULL) == cap);
	assert_true(tm_backoff_delay_ms(&b, 10000, 0, NULL) == cap);
	assert_true(tm_backoff_delay_ms(&b, UINT_MAX, 0, NULL) == cap);

	b.max_ms = 0;
	assert_true(tm_backoff_delay_ms(&b, 93, 0, NULL) == 12200160415121876738ull);
	assert_true(tm_backoff_delay_ms(&b, 94, 0, NULL) == UINT64_MAX);
	assert_true(tm_backoff_delay_ms(&b, 10000, 0, NULL) == UINT64_MAX);
	assert_true(tm_backoff_delay_ms(&b, UINT_MAX, 0, NULL) == UINT64_MAX);

	b.base_ms = 3;  /* 3 * F(92) = 2.26e19 overflows u64 */
	assert_true(tm_backoff_delay_ms(&b, 91, 0, NULL) == 3 * fib_ref(91));
	assert_true(tm_backoff_delay_ms(&b, 92, 0, NULL) == UINT64_MAX);
}

/* Linear does not always reach the cap: min(cap, base * attempt) in 128 bits. */
static uint64_t linear_want(uint64_t base, unsigned attempt, uint64_t cap)
{
	unsigned __int128 p = (unsigned __int128)base * attempt;
	uint64_t c = cap ? cap : UINT64_MAX;
	return p > c ? c : (uint64_t)p;
}

/* Growing kinds at absurd attempts, bases and multipliers land exactly on the
 * cap (UINT64_MAX without one), never on a wrapped small number. */
static void test_no_overflow(void **state)
{
	(void)state;
	static const unsigned attempts[] = { 10000, 65536, UINT_MAX - 1, UINT_MAX };
	static const uint64_t bases[] = { 100, UINT64_MAX / 2, UINT64_MAX };
	static const uint64_t caps[] = { 0, 5000, UINT64_MAX - 1, UINT64_MAX };
	static const double mults[] = { 2.0, 1e300, INFINITY };

	for (unsigned k = 1; k < N_KINDS; k++)
		for (size_t a = 0; a < 4; a++)
			for (size_t i = 0; i < 3; i++)
				for (size_t c = 0; c < 4; c++)
					for (size_t m = 0; m < 3; m++) {
						struct tm_backoff b = policy(kinds[k], bases[i], caps[c], mults[m]);
						uint64_t want = linear_want(bases[i], attempts[a], caps[c]);
						if (kinds[k] != TM_BACKOFF_LINEAR)
							want = caps[c] ? caps[c] : UINT64_MAX;
						uint64_t got = tm_backoff_delay_ms(&b, attempts[a], 0, NULL);
						if (got != want)
							fail_msg("kind %d attempt %u base %llu cap %llu mult %g: got %llu",
							         (int)kinds[k], attempts[a], (unsigned long long)bases[i],
							         (unsigned long long)caps[c], mults[m],
							         (unsigned long long)got);
					}

	/* just below and just past 2^64 */
	struct tm_backoff lin = policy(TM_BACKOFF_LINEAR, UINT64_MAX / 2, 0, 0);
	assert_true(tm_backoff_delay_ms(&lin, 2, 0, NULL) == UINT64_MAX - 1);
	assert_true(tm_backoff_delay_ms(&lin, 3, 0, NULL) == UINT64_MAX);
	struct tm_backoff exp = policy(TM_BACKOFF_EXPONENTIAL, UINT64_MAX / 2, 0, 2.0);
#if LDBL_MANT_DIG >= 64
	assert_true(tm_backoff_delay_ms(&exp, 2, 0, NULL) == UINT64_MAX - 1);
#endif
	assert_true(tm_backoff_delay_ms(&exp, 3, 0, NULL) == UINT64_MAX);

	/* a huge multiplier still starts at base */
	exp = policy(TM_BACKOFF_EXPONENTIAL, 100, 0, 1e300);
	assert_int_equal(tm_backoff_delay_ms(&exp, 1, 0, NULL), 100);
	assert_true(tm_backoff_delay_ms(&exp, 2, 0, NULL) == UINT64_MAX);
	exp.multiplier = INFINITY;
	assert_int_equal(tm_backoff_delay_ms(&exp, 1, 0, NULL), 100);
	assert_true(tm_backoff_delay_ms(&exp, 2, 0, NULL) == UINT64_MAX);
}

static void test_null_and_attempt_zero(void **state)
{
	(void)state;
	uint64_t s = 1;
	assert_int_equal(tm_backoff_delay_ms(NULL, 1, 0, NULL), 0);
	assert_int_equal(tm_backoff_delay_ms(NULL, 5, 1000, &s), 0);
	assert_int_equal(s, 1);

	for (size_t k = 0; k < N_KINDS; k++)
		for (size_t j = 0; j < N_JITTERS; j++) {
			struct tm_backoff b = policy(kinds[k], 100, 10000, 2.0);
			b.jitter = jitters[j];
			for (uint64_t seed = 0; seed < 50; seed++) {
				uint64_t s0 = seed, s1 = seed;
				uint64_t d0 = tm_backoff_delay_ms(&b, 0, 700, &s0);
				uint64_t d1 = tm_backoff_delay_ms(&b, 1, 700, &s1);
				assert_true(d0 == d1);
				assert_true(s0 == s1);
			}
		}
}

static void test_bad_multiplier_is_one(void **state)
{
	(void)state;
	static const double bad[] = { 0.0, -0.0, -3.0, 0.5, 1.0, NAN, -INFINITY };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct tm_backoff b = policy(TM_BACKOFF_EXPONENTIAL, 100, 10000, bad[i]);
		for (unsigned a = 1; a <= 40; a++)
			assert_int_equal(tm_backoff_delay_ms(&b, a, 0, NULL), 100);
		assert_int_equal(tm_backoff_delay_ms(&b, UINT_MAX, 0, NULL), 100);
	}
	/* the smallest double above 1 still grows */
	struct tm_backoff b = policy(TM_BACKOFF_EXPONENTIAL, 1ull << 52, 0, 1.0 + DBL_EPSILON);
	assert_true(tm_backoff_delay_ms(&b, 2, 0, NULL) == (1ull << 52) + 1);
}

static void test_base_zero(void **state)
{
	(void)state;
	for (size_t k = 0; k < N_KINDS; k++)
		for (size_t j = 0; j < 3; j++) {  /* none, full, equal */
			struct tm_backoff b = policy(kinds[k], 0, 10000, 2.0);
			b.jitter = jitters[j];
			uint64_t s = 9;
			for (unsigned a = 1; a <= 100; a++)
				assert_int_equal(tm_backoff_delay_ms(&b, a, 5000, &s), 0);
			assert_int_equal(tm_backoff_delay_ms(&b, UINT_MAX, 0, &s), 0);
		}

	/* decorrelated grows from prev alone */
	struct tm_backoff b = policy(TM_BACKOFF_FIXED, 0, 1000, 0);
	b.jitter = TM_JITTER_DECORRELATED;
	uint64_t s = 9;
	assert_int_equal(tm_backoff_delay_ms(&b, 1, 0, &s), 0);
	bool hi = false;
	for (int i = 0; i < 1000; i++) {
		uint64_t d = tm_backoff_delay_ms(&b, 2, 10, &s);
		assert_true(d <= 30);
		hi |= d == 30;
	}
	assert_true(hi);
	for (int i = 0; i < 1000; i++)
		assert_true(tm_backoff_delay_ms(&b, 3, 500, &s) <= 1000);
}

/* Jitter none draws nothing: interleaved policies keep their sequences. */
static void test_none_leaves_rng(void **state)
{
	(void)state;
	for (size_t k = 0; k < N_KINDS; k++) {
		struct tm_backoff b = policy(kinds[k], 100, 10000, 2.0);
		uint64_t s = 1234;
		for (unsigned a = 1; a < 30; a++)
			tm_backoff_delay_ms(&b, a, 100, &s);
		assert_int_equal(s, 1234);
	}
}

static void draw20(const struct tm_backoff *b, uint64_t seed, uint64_t out[20])
{
	uint64_t s = seed, prev = 0;
	for (unsigned a = 1; a <= 20; a++)
		out[a - 1] = prev = tm_backoff_delay_ms(b, a, prev, &s);
}

static void test_reproducible(void **state)
{
	(void)state;
	for (size_t j = 1; j < N_JITTERS; j++) {
		struct tm_backoff b = policy(TM_BACKOFF_EXPONENTIAL, 100, 1000000, 2.0);
		b.jitter = jitters[j];
		uint64_t x[20], y[20], z[20];
		draw20(&b, 42, x);
		draw20(&b, 42, y);
		draw20(&b, 43, z);
		assert_memory_equal(x, y, sizeof x);
		assert_memory_not_equal(x, z, sizeof x);
	}
}

/* The documented generator, with state 0 used as is: full jitter over the
 * whole u64 range returns its raw outputs. */
static void test_splitmix64_outputs(void **state)
{
	(void)state;
	struct tm_backoff b = policy(TM_BACKOFF_FIXED, UINT64_MAX, 0, 0);
	b.jitter = TM_JITTER_FULL;
	uint64_t s = 0;
	assert_true(tm_backoff_delay_ms(&b, 1, 0, &s) == 0xE220A8397B1DCDAFull);
	assert_true(s == 0x9E3779B97F4A7C15ull);
	assert_true(tm_backoff_delay_ms(&b, 1, 0, &s) == 0x6E789E6AA1B965F4ull);
	assert_true(tm_backoff_delay_ms(&b, 1, 0, &s) == 0x06C45D188009454Full);
}

/* How many splitmix64 outputs were used between two states: the state moves
 * by the odd constant each step, so multiply by its inverse mod 2^64. */
static uint64_t steps(uint64_t from, uint64_t to)
{
	const uint64_t gamma = 0x9E3779B97F4A7C15ull;
	uint64_t inv = gamma;  /* Newton: each round doubles the correct low bits */
	for (int i = 0; i < 6; i++)
		inv *= 2 - gamma * inv;
	return (to - from) * inv;
}

/* Unbiased draws discard the over-weighted zone. A range of 2^63 + 1 values
 * has about half of all outputs in it, so each draw takes about two; a range
 * of 2^32 values divides 2^64 and never discards. */
static void test_uniform_rejects_bias(void **state)
{
	(void)state;
	struct tm_backoff b = policy(TM_BACKOFF_FIXED, 1ull << 63, 0, 0);
	b.jitter = TM_JITTER_FULL;
	uint64_t s = 77;
	for (int i = 0; i < 1000; i++)
		assert_true(tm_backoff_delay_ms(&b, 1, 0, &s) <= 1ull << 63);
	uint64_t used = steps(77, s);
	if (used < 1800 || used > 2200)
		fail_msg("1000 draws used %llu outputs, want about 2000", (unsigned long long)used);

	b.base_ms = UINT32_MAX;
	s = 77;
	for (int i = 0; i < 1000; i++)
		tm_backoff_delay_ms(&b, 1, 0, &s);
	assert_int_equal(steps(77, s), 1000);
}

/* NULL rng: a private per-thread state; results still in range and varied. */
static void test_null_rng(void **state)
{
	(void)state;
	struct tm_backoff b = policy(TM_BACKOFF_FIXED, 1000000, 0, 0);
	b.jitter = TM_JITTER_FULL;
	uint64_t first = tm_backoff_delay_ms(&b, 1, 0, NULL);
	bool varied = false;
	for (int i = 0; i < 100; i++) {
		uint64_t d = tm_backoff_delay_ms(&b, 1, 0, NULL);
		assert_true(d <= 1000000);
		varied |= d != first;
	}
	assert_true(varied);
}

/* Values lo..lo+9999 (10000 of them): range, mean, and each tenth 10% +- 1%. */
static void check_spread(const struct tm_backoff *b, uint64_t prev, uint64_t lo, double mean_want)
{
	unsigned decile[10] = { 0 };
	double sum = 0;
	uint64_t s = 2024;
	for (unsigned i = 0; i < DRAWS; i++) {
		uint64_t d = tm_backoff_delay_ms(b, 1, prev, &s);
		if (d < lo || d > lo + 9999)
			fail_msg("draw %u: %llu outside [%llu, %llu]", i, (unsigned long long)d,
			         (unsigned long long)lo, (unsigned long long)lo + 9999);
		sum += (double)d;
		decile[(d - lo) / 1000]++;
	}
	double mean = sum / DRAWS;
	double err = mean > mean_want ? mean - mean_want : mean_want - mean;
	if (err > 0.02 * mean_want)
		fail_msg("mean %.1f, want %.1f +- 2%%", mean, mean_want);
	for (int i = 0; i < 10; i++)
		if (decile[i] < DRAWS / 100 * 9 || decile[i] > DRAWS / 100 * 11)
			fail_msg("decile %d: %u of %u", i, decile[i], DRAWS);
}

static void test_full_jitter(void **state)
{
	(void)state;
	struct tm_backoff b = policy(TM_BACKOFF_FIXED, 9999, 0, 0);
	b.jitter = TM_JITTER_FULL;
	check_spread(&b, 0, 0, 9999 / 2.0);

	/* both ends of [0, d] are reached */
	b.base_ms = 5;
	unsigned seen = 0;
	uint64_t s = 7;
	for (int i = 0; i < 1000; i++)
		seen |= 1u << tm_backoff_delay_ms(&b, 1, 0, &s);
	assert_int_equal(seen, 0x3f);
}

static void test_equal_jitter(void **state)
{
	(void)state;
	/* d = 19998: [9999, 19998], mean 3d/4 */
	struct tm_backoff b = policy(TM_BACKOFF_FIXED, 19998, 0, 0);
	b.jitter = TM_JITTER_EQUAL;
	check_spread(&b, 0, 9999, 0.75 * 19998);

	/* odd d = 7 covers exactly [3, 7] */
	b.base_ms = 7;
	unsigned seen = 0;
	uint64_t s = 7;
	for (int i = 0; i < 1000; i++) {
		uint64_t d = tm_backoff_delay_ms(&b, 1, 0, &s);
		assert_true(d >= 3 && d <= 7);
		seen |= 1u << d;
	}
	assert_int_equal(seen, 0xf8);

	/* the full u64 range does not overflow */
	b.base_ms = UINT64_MAX;
	for (int i = 0; i < 1000; i++)
		assert_true(tm_backoff_delay_ms(&b, 1, 0, &s) >= UINT64_MAX / 2);
}

static void test_decorrelated(void **state)
{
	(void)state;
	/* spread checks want 10000 values: [0, 3 * 3333] and [99, 3 * 3366] */
	struct tm_backoff b = policy(TM_BACKOFF_EXPONENTIAL, 100, 0, 2.0);
	b.jitter = TM_JITTER_DECORRELATED;
	struct tm_backoff z = b;
	z.base_ms = 0;
	check_spread(&z, 3333, 0, 9999 / 2.0);
	z.base_ms = 99;
	check_spread(&z, 3366, 99, (99 + 10098) / 2.0);

	/* prev below base (0 on the first attempt) counts as base: [100, 300] */
	uint64_t s = 5;
	bool lo = false, hi = false;
	for (int i = 0; i < 10000; i++) {
		uint64_t d = tm_backoff_delay_ms(&b, 1, i % 2 ? 0 : 50, &s);
		assert_true(d >= 100 && d <= 300);
		lo |= d == 100;
		hi |= d == 300;
	}
	assert_true(lo && hi);

	/* a chain stays within [base, min(cap, 3 * prev)] and the cap is reached */
	b.max_ms = 20000;
	uint64_t prev = 0;
	bool capped = false;
	for (unsigned a = 1; a <= 2000; a++) {
		uint64_t from = prev < 100 ? 100 : prev;
		uint64_t top = 3 * from < b.max_ms ? 3 * from : b.max_ms;
		uint64_t d = tm_backoff_delay_ms(&b, a, prev, &s);
		assert_true(d >= 100 && d <= top);
		capped |= d == b.max_ms;
		prev = d;
	}
	assert_true(capped);

	/* cap below base: the cap */
	b.max_ms = 50;
	assert_int_equal(tm_backoff_delay_ms(&b, 1, 0, &s), 50);

	/* prev * 3 saturates instead of wrapping to a small upper bound */
	b.max_ms = 0;
	uint64_t big = UINT64_MAX / 3 + 1;
	for (int i = 0; i < 1000; i++)
		assert_true(tm_backoff_delay_ms(&b, 9, big, &s) >= 100);
	bool above = false;
	for (int i = 0; i < 1000; i++)
		above |= tm_backoff_delay_ms(&b, 9, big, &s) > big;
	assert_true(above);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_sequence),
		cmocka_unit_test(test_linear_sequence),
		cmocka_unit_test(test_exponential_sequence),
		cmocka_unit_test(test_fibonacci_sequence),
		cmocka_unit_test(test_fibonacci_exact_to_93),
		cmocka_unit_test(test_fibonacci_large),
		cmocka_unit_test(test_no_overflow),
		cmocka_unit_test(test_null_and_attempt_zero),
		cmocka_unit_test(test_bad_multiplier_is_one),
		cmocka_unit_test(test_base_zero),
		cmocka_unit_test(test_none_leaves_rng),
		cmocka_unit_test(test_reproducible),
		cmocka_unit_test(test_splitmix64_outputs),
		cmocka_unit_test(test_uniform_rejects_bias),
		cmocka_unit_test(test_null_rng),
		cmocka_unit_test(test_full_jitter),
		cmocka_unit_test(test_equal_jitter),
		cmocka_unit_test(test_decorrelated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
