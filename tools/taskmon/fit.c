/* Least squares on centred sums: subtracting the means first keeps the
 * figures exact enough when x and y are large and close together (RSS in
 * bytes around a base of megabytes), where the textbook sum-of-squares
 * formula loses every significant digit. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include "fit.h"

static int all_finite(const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return 0;
	return 1;
}

static void range(const double *v, size_t n, double *lo, double *hi)
{
	*lo = *hi = v[0];
	for (size_t i = 1; i < n; i++) {
		if (v[i] < *lo)
			*lo = v[i];
		if (v[i] > *hi)
			*hi = v[i];
	}
}

static double mean(const double *v, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += v[i];
	return s / (double)n;
}

int tm_fit_line(const double *x, const double *y, size_t n, struct tm_fit *out)
{
	struct tm_fit f = { .n = n };
	double ym, sxy = 0, syy = 0, ssres = 0;

	if (!x || !y || !out || n < TM_FIT_MIN_POINTS || !all_finite(x, n) || !all_finite(y, n))
		return -EINVAL;
	range(x, n, &f.x_min, &f.x_max);
	range(y, n, &f.y_min, &f.y_max);
	if (f.x_min == f.x_max)
		return -EDOM;
	f.x_mean = mean(x, n);
	ym = mean(y, n);
	for (size_t i = 0; i < n; i++) {
		double dx = x[i] - f.x_mean, dy = y[i] - ym;
		f.sxx += dx * dx;
		sxy += dx * dy;
		syy += dy * dy;
	}
	/* distinct values whose deviations underflow to nothing */
	if (!(f.sxx > 0))
		return -EDOM;
	f.slope = sxy / f.sxx;
	f.intercept = ym - f.slope * f.x_mean;
	for (size_t i = 0; i < n; i++) {
		double r = y[i] - tm_fit_at(&f, x[i]);
		ssres += r * r;
	}
	/* Rounding can leave SSres a hair above SStot for a flat cloud. */
	f.r2 = syy > 0 ? fmax(0.0, 1.0 - ssres / syy) : 1.0;
	f.resid_sd = sqrt(ssres / (double)(n - 2));
	/* values so large that the sums overflowed */
	if (!isfinite(f.slope) || !isfinite(f.intercept) || !isfinite(f.r2) || !isfinite(f.resid_sd) ||
	    !isfinite(f.sxx))
		return -ERANGE;
	*out = f;
	return 0;
}

size_t tm_distinct(const double *v, size_t n, size_t stop)
{
	double seen[16];
	size_t k = 0;

	if (stop > sizeof(seen) / sizeof(seen[0]))
		stop = sizeof(seen) / sizeof(seen[0]);
	for (size_t i = 0; i < n && k < stop; i++) {
		size_t j = 0;
		while (j < k && seen[j] != v[i])
			j++;
		if (j == k)
			seen[k++] = v[i];
	}
	return k;
}

double tm_fit_at(const struct tm_fit *f, double x)
{
	return f->intercept + f->slope * x;
}

double tm_fit_band(const struct tm_fit *f, double x)
{
	double d = x - f->x_mean;
	double se = f->resid_sd * sqrt(1.0 + 1.0 / (double)f->n + d * d / f->sxx);
	return tm_t95(f->n - 2) * se;
}

double tm_t95(size_t dof)
{
	static const double table[30] = {
		12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
	};
	if (dof == 0)
		return INFINITY;
	if (dof <= 30)
		return table[dof - 1];
	/* 1.96 + 2.5/dof: 2.021 at 40 (2.021), 2.002 at 60 (2.000), 1.981 at 120 (1.980) */
	return 1.95996 + 2.5 / (double)dof;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double tm_quantile(double *v, size_t n, double q)
{
	size_t rank;

	qsort(v, n, sizeof(*v), cmp_double);
	if (!(q > 0))
		return v[0];
	if (q >= 1)
		return v[n - 1];
	rank = (size_t)ceil(q * (double)n);
	return v[rank ? rank - 1 : 0];
}
