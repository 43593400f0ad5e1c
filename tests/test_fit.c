/* Least squares, R², prediction band and quantiles of the capacity plan. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "../tools/taskmon/fit.h"

#define assert_near(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol))

static void test_exact_line(void **state)
{
	(void)state;
	double x[] = { 0, 1, 2, 3, 10 }, y[5];
	struct tm_fit f;
	for (int i = 0; i < 5; i++)
		y[i] = 5 + 2 * x[i];
	assert_int_equal(tm_fit_line(x, y, 5, &f), 0);
	assert_int_equal(f.n, 5);
	assert_near(f.slope, 2, 1e-12);
	assert_near(f.intercept, 5, 1e-12);
	assert_near(f.r2, 1, 1e-12);
	assert_near(f.resid_sd, 0, 1e-12);
	assert_near(tm_fit_at(&f, 100), 205, 1e-9);
	assert_near(tm_fit_band(&f, 100), 0, 1e-9);
	assert_near(f.x_min, 0, 0);
	assert_near(f.x_max, 10, 0);
	assert_near(f.y_min, 5, 0);
	assert_near(f.y_max, 25, 0);
}

/* Worked by hand: means 3 and 4, Sxx 10, Sxy 6, SStot 6, SSres 2.4. */
static void test_hand_computed(void **state)
{
	(void)state;
	double x[] = { 1, 2, 3, 4, 5 }, y[] = { 2, 4, 5, 4, 5 };
	struct tm_fit f;
	assert_int_equal(tm_fit_line(x, y, 5, &f), 0);
	assert_near(f.slope, 0.6, 1e-12);
	assert_near(f.intercept, 2.2, 1e-12);
	assert_near(f.r2, 0.6, 1e-12);
	assert_near(f.resid_sd, sqrt(2.4 / 3), 1e-12);
	/* at the mean: t(3) * s * sqrt(1 + 1/5) */
	assert_near(tm_fit_band(&f, 3), 3.182 * sqrt(0.8) * sqrt(1.2), 1e-9);
	/* further out the band widens */
	assert_true(tm_fit_band(&f, 50) > tm_fit_band(&f, 5));
	assert_true(tm_fit_band(&f, 5) > tm_fit_band(&f, 3));
}

/* RSS-like figures: a large base, a small slope and noise a few bytes wide
 * must not drown in rounding. */
static void test_large_values_keep_precision(void **state)
{
	(void)state;
	enum { N = 2000 };
	static double x[N], y[N];
	struct tm_fit f;
	for (int i = 0; i < N; i++) {
		x[i] = 1e6 + i;
		y[i] = 4e12 + 8192.0 * x[i] + ((i % 7) - 3);
	}
	assert_int_equal(tm_fit_line(x, y, N, &f), 0);
	assert_near(f.slope, 8192.0, 1e-3);
	assert_true(f.r2 > 0.999999);
	assert_true(f.resid_sd < 3);
}

static void test_flat_y_is_exact(void **state)
{
	(void)state;
	double x[] = { 1, 2, 3 }, y[] = { 7, 7, 7 };
	struct tm_fit f;
	assert_int_equal(tm_fit_line(x, y, 3, &f), 0);
	assert_near(f.slope, 0, 0);
	assert_near(f.intercept, 7, 1e-12);
	assert_near(f.r2, 1, 0);
}

static void test_noise_only_has_low_r2(void **state)
{
	(void)state;
	double x[] = { 1, 2, 3, 4, 5, 6 }, y[] = { 1, -1, 1, -1, 1, -1 };
	struct tm_fit f;
	assert_int_equal(tm_fit_line(x, y, 6, &f), 0);
	assert_true(f.r2 < 0.2);
	assert_true(f.r2 >= 0);
}

static void test_refusals(void **state)
{
	(void)state;
	double x[] = { 1, 2, 3 }, y[] = { 1, 2, 3 };
	double same[] = { 4, 4, 4 }, bad[] = { 1, NAN, 3 }, inf[] = { 1, 2, INFINITY };
	struct tm_fit f;
	memset(&f, 0xab, sizeof(f));
	assert_int_equal(tm_fit_line(x, y, 2, &f), -EINVAL);
	assert_int_equal(tm_fit_line(x, y, 0, &f), -EINVAL);
	assert_int_equal(tm_fit_line(NULL, y, 3, &f), -EINVAL);
	assert_int_equal(tm_fit_line(x, y, 3, NULL), -EINVAL);
	assert_int_equal(tm_fit_line(bad, y, 3, &f), -EINVAL);
	assert_int_equal(tm_fit_line(x, inf, 3, &f), -EINVAL);
	assert_int_equal(tm_fit_line(same, y, 3, &f), -EDOM);
	double huge[] = { 1e300, -1e300, 1e300 };
	assert_int_equal(tm_fit_line(x, huge, 3, &f), -ERANGE);
	/* out untouched on failure */
	for (size_t i = 0; i < sizeof(f); i++)
		assert_int_equal(((unsigned char *)&f)[i], 0xab);
}

static void test_t95(void **state)
{
	(void)state;
	assert_near(tm_t95(1), 12.706, 1e-9);
	assert_near(tm_t95(30), 2.042, 1e-9);
	assert_near(tm_t95(40), 2.021, 0.003);
	assert_near(tm_t95(120), 1.980, 0.003);
	assert_near(tm_t95(1000000), 1.960, 0.001);
	assert_true(isinf(tm_t95(0)));
	for (size_t d = 1; d < 200; d++)
		assert_true(tm_t95(d + 1) <= tm_t95(d));
}

static void test_quantile(void **state)
{
	(void)state;
	double v[100], one[] = { 42 };
	for (int i = 0; i < 100; i++)
		v[i] = 100 - i;   /* unsorted on purpose */
	assert_near(tm_quantile(v, 100, 0.5), 50, 0);
	assert_near(tm_quantile(v, 100, 0.99), 99, 0);
	assert_near(tm_quantile(v, 100, 1), 100, 0);
	assert_near(tm_quantile(v, 100, 0), 1, 0);
	assert_near(tm_quantile(v, 100, 0.001), 1, 0);
	assert_near(tm_quantile(one, 1, 0.99), 42, 0);
}

static void test_distinct(void **state)
{
	(void)state;
	double v[] = { 3, 3, 1, 3, 2, 1, 7, 7 };
	assert_int_equal(tm_distinct(v, 8, 10), 4);
	assert_int_equal(tm_distinct(v, 8, 3), 3);
	assert_int_equal(tm_distinct(v, 2, 10), 1);
	assert_int_equal(tm_distinct(v, 0, 10), 0);
	assert_int_equal(tm_distinct(v, 8, 100), 4);   /* stop is capped, not trusted */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_line),
		cmocka_unit_test(test_hand_computed),
		cmocka_unit_test(test_large_values_keep_precision),
		cmocka_unit_test(test_flat_y_is_exact),
		cmocka_unit_test(test_noise_only_has_low_r2),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_t95),
		cmocka_unit_test(test_quantile),
		cmocka_unit_test(test_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
