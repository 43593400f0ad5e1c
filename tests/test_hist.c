/* Histogram bucket arithmetic and quantiles. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "taskmon_shm.h"

#define LAST (TM_HIST_BUCKETS - 1u)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, so a failure reproduces */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* v lies in its bucket: low(b) <= v < low(b + 1). */
static void assert_in_bucket(uint64_t v)
{
	unsigned b = tm_hist_bucket(v);
	assert_true(b < TM_HIST_BUCKETS);
	assert_true(tm_hist_bucket_low(b) <= v);
	if (b < LAST)
		assert_true(v < tm_hist_bucket_low(b + 1));
}

static void test_small_values_exact(void **state)
{
	(void)state;
	for (uint64_t v = 0; v < 2 * TM_HIST_SUB; v++) {
		assert_int_equal(tm_hist_bucket(v), v);
		assert_int_equal(tm_hist_bucket_low((unsigned)v), v);
		assert_int_equal(tm_hist_bucket_mid((unsigned)v), v);
	}
	for (uint64_t v = 0; v <= 100; v++)
		assert_in_bucket(v);
	/* 64..127 go in steps of 2 */
	assert_int_equal(tm_hist_bucket(64), 64);
	assert_int_equal(tm_hist_bucket(65), 64);
	assert_int_equal(tm_hist_bucket(66), 65);
	assert_int_equal(tm_hist_bucket(100), 82);
	assert_int_equal(tm_hist_bucket_low(82), 100);
	assert_int_equal(tm_hist_bucket_mid(82), 101);
}

static void test_powers_of_two(void **state)
{
	(void)state;
	for (unsigned e = TM_HIST_SUB_BITS; e <= TM_HIST_MAX_EXP; e++) {
		uint64_t p = 1ull << e;
		unsigned first = (e - TM_HIST_SUB_BITS + 1) * TM_HIST_SUB;
		assert_int_equal(tm_hist_bucket(p), first);
		assert_int_equal(tm_hist_bucket(p - 1), first - 1);
		assert_int_equal(tm_hist_bucket(p + 1), e == TM_HIST_SUB_BITS ? first + 1 : first);
		assert_int_equal(tm_hist_bucket_low(first), p);
		assert_int_equal(tm_hist_bucket(2 * p - 1), first + TM_HIST_SUB - 1);
		assert_in_bucket(p - 1);
		assert_in_bucket(p);
		assert_in_bucket(p + 1);
	}
}

static void test_huge_values_last_bucket(void **state)
{
	(void)state;
	uint64_t top = 1ull << (TM_HIST_MAX_EXP + 1);
	assert_int_equal(tm_hist_bucket(top - 1), LAST);
	assert_int_equal(tm_hist_bucket(top), LAST);
	assert_int_equal(tm_hist_bucket(1ull << 50), LAST);
	assert_int_equal(tm_hist_bucket(UINT64_MAX), LAST);
	assert_int_equal(TM_HIST_BUCKETS, 1216);
	/* out-of-range bucket numbers clamp rather than shift past 64 bits */
	assert_int_equal(tm_hist_bucket_low(100000), tm_hist_bucket_low(LAST));
	assert_int_equal(tm_hist_bucket_mid(100000), tm_hist_bucket_mid(LAST));
}

static void test_monotonic(void **state)
{
	(void)state;
	for (unsigned b = 1; b < TM_HIST_BUCKETS; b++) {
		assert_true(tm_hist_bucket_low(b) > tm_hist_bucket_low(b - 1));
		assert_true(tm_hist_bucket_mid(b) >= tm_hist_bucket_low(b));
		assert_true(tm_hist_bucket_mid(b - 1) < tm_hist_bucket_low(b));
		assert_int_equal(tm_hist_bucket(tm_hist_bucket_low(b)), b);
	}
	unsigned prev = 0;
	for (uint64_t v = 0; v < (1u << 20); v++) {
		unsigned b = tm_hist_bucket(v);
		assert_true(b == prev || b == prev + 1);
		prev = b;
	}
}

static void assert_mid_close(uint64_t v)
{
	uint64_t mid = tm_hist_bucket_mid(tm_hist_bucket(v));
	uint64_t diff = mid > v ? mid - v : v - mid;
	/* diff / v <= 1/64 without floating point */
	if (diff * 64 > v)
		fail_msg("value %llu reported as %llu", (unsigned long long)v, (unsigned long long)mid);
}

static void test_relative_error(void **state)
{
	(void)state;
	for (uint64_t v = 1; v <= (1u << 20); v++)
		assert_mid_close(v);
	for (int i = 0; i < 1000000; i++) {
		uint64_t v = rng() >> (64 - (TM_HIST_MAX_EXP + 1));   /* below 2^42 */
		if (v == 0)
			continue;
		assert_mid_close(v);
		assert_in_bucket(v);
	}
}

static void fill_uniform(uint64_t *hist, uint64_t lo, uint64_t hi)
{
	for (uint64_t v = lo; v <= hi; v++)
		hist[tm_hist_bucket(v)]++;
}

static void assert_within(uint64_t got, uint64_t want, double rel)
{
	double d = (double)got - (double)want;
	if (d < 0)
		d = -d;
	if (d > rel * (double)want)
		fail_msg("got %llu, want %llu within %.1f%%", (unsigned long long)got,
			 (unsigned long long)want, rel * 100);
}

static void test_quantile_uniform(void **state)
{
	(void)state;
	static uint64_t hist[TM_HIST_BUCKETS];
	memset(hist, 0, sizeof(hist));
	fill_uniform(hist, 1, 10000);
	assert_within(tm_hist_quantile(hist, 0, 0.50), 5000, 0.02);
	assert_within(tm_hist_quantile(hist, 0, 0.95), 9500, 0.02);
	assert_within(tm_hist_quantile(hist, 0, 0.99), 9900, 0.02);
	assert_within(tm_hist_quantile(hist, 0, 0.10), 1000, 0.02);
	/* the top sample is 10000; its bucket's midpoint is a little above */
	assert_within(tm_hist_quantile(hist, 0, 1.0), 10000, 0.02);
	assert_int_equal(tm_hist_quantile(hist, 10000, 1.0), 10000);
	/* q <= 0 (and NaN) is the smallest sample; q > 1 the largest */
	assert_int_equal(tm_hist_quantile(hist, 0, 0.0), 1);
	assert_int_equal(tm_hist_quantile(hist, 0, -3.0), 1);
	assert_int_equal(tm_hist_quantile(hist, 0, __builtin_nan("")), 1);
	assert_int_equal(tm_hist_quantile(hist, 0, 7.0), tm_hist_quantile(hist, 0, 1.0));
}

static void test_quantile_exact_and_empty(void **state)
{
	(void)state;
	static uint64_t hist[TM_HIST_BUCKETS];
	memset(hist, 0, sizeof(hist));
	assert_int_equal(tm_hist_quantile(hist, 0, 0.5), 0);
	assert_int_equal(tm_hist_quantile(hist, 123, 0.99), 0);
	assert_int_equal(tm_hist_quantile(NULL, 0, 0.5), 0);
	hist[tm_hist_bucket(7)] = 90;
	hist[tm_hist_bucket(20)] = 9;
	hist[tm_hist_bucket(1000)] = 1;
	assert_int_equal(tm_hist_quantile(hist, 0, 0.5), 7);
	assert_int_equal(tm_hist_quantile(hist, 0, 0.90), 7);
	assert_int_equal(tm_hist_quantile(hist, 0, 0.91), 20);
	assert_int_equal(tm_hist_quantile(hist, 0, 0.99), 20);
	assert_within(tm_hist_quantile(hist, 0, 0.999), 1000, 1.0 / 64);
}

static void test_quantile_cap_and_huge(void **state)
{
	(void)state;
	static uint64_t hist[TM_HIST_BUCKETS];
	memset(hist, 0, sizeof(hist));
	hist[tm_hist_bucket(1000000)] = 5;
	/* the midpoint is above the true maximum: the maximum wins */
	uint64_t mid = tm_hist_bucket_mid(tm_hist_bucket(1000000));
	assert_true(mid > 999000);
	assert_int_equal(tm_hist_quantile(hist, 999000, 0.5), 999000);
	assert_int_equal(tm_hist_quantile(hist, mid + 1, 0.5), mid);

	memset(hist, 0, sizeof(hist));
	hist[tm_hist_bucket(UINT64_MAX)] = 1;
	assert_int_equal(tm_hist_quantile(hist, 0, 0.5), tm_hist_bucket_mid(LAST));
	assert_int_equal(tm_hist_quantile(hist, 1ull << 50, 0.5), tm_hist_bucket_mid(LAST));

	/* counts summing past 2^64 saturate instead of wrapping to "empty" */
	memset(hist, 0, sizeof(hist));
	hist[3] = UINT64_MAX;
	hist[40] = UINT64_MAX;
	assert_int_equal(tm_hist_quantile(hist, 0, 0.25), 3);
	uint64_t top = tm_hist_quantile(hist, 0, 1.0);
	assert_true(top == 3 || top == 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_values_exact),
		cmocka_unit_test(test_powers_of_two),
		cmocka_unit_test(test_huge_values_last_bucket),
		cmocka_unit_test(test_monotonic),
		cmocka_unit_test(test_relative_error),
		cmocka_unit_test(test_quantile_uniform),
		cmocka_unit_test(test_quantile_exact_and_empty),
		cmocka_unit_test(test_quantile_cap_and_huge),
	};
	return cmocka_run_group_tests_name("hist", tests, NULL, NULL);
}
