/* Straight-line least squares for the capacity plan, and the few statistics
 * around it. Pure functions: no I/O, no allocation except tm_quantile's
 * caller-owned array, so that every figure the plan prints can be checked
 * against hand-computed data. */
#ifndef TM_FIT_H
#define TM_FIT_H

#include <stddef.h>

/* Fewer points than this give no residual to judge a line by. */
#define TM_FIT_MIN_POINTS 3

/* y = intercept + slope * x over n points. */
struct tm_fit {
	size_t n;
	double slope, intercept;
	double r2;          /* 1 - SSres / SStot; 1 when y never varied (the flat line is exact) */
	double resid_sd;    /* sqrt(SSres / (n - 2)): the scatter around the line */
	double x_mean, sxx; /* sum (x - x_mean)^2, for the prediction band */
	double x_min, x_max, y_min, y_max;
};

/* 0, -EINVAL when n < TM_FIT_MIN_POINTS or a value is not finite, -EDOM when
 * x takes a single value (no slope can be told from that), -ERANGE when the
 * values are so large that the sums overflow. out is written only on 0. */
int tm_fit_line(const double *x, const double *y, size_t n, struct tm_fit *out);

/* How many distinct values v holds, counting no further than stop (at most
 * 16), so that the cost stays n × stop. */
size_t tm_distinct(const double *v, size_t n, size_t stop);

/* The line at x. */
double tm_fit_at(const struct tm_fit *f, double x);

/* Half-width of the 95% prediction interval at x (Student's t): how far a
 * new measurement at x may lie from the line if the residuals are
 * independent and alike. Grows with the distance from the measured x. */
double tm_fit_band(const struct tm_fit *f, double x);

/* Two-sided 95% quantile of Student's t with dof degrees of freedom
 * (dof >= 1; table to 30, then an approximation within 0.3%). */
double tm_t95(size_t dof);

/* The q-quantile (0..1, nearest rank) of v[0..n-1]; sorts v. n must be > 0. */
double tm_quantile(double *v, size_t n, double q);

#endif
