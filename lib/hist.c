/* Log-linear spawn-latency histogram: bucket arithmetic and quantiles.
 *
 * Bucket b below TM_HIST_SUB holds the single value b. Above, row = b / 32
 * covers the power of two [2^(row+4), 2^(row+5)) in 32 equal steps, so rows
 * 0 and 1 are both exact and the relative width of a bucket never exceeds
 * 1/32. Row TM_HIST_MAX_EXP - 4 is the last; its final bucket also takes
 * every larger value.
 */
#include <stdint.h>
#include "taskmon_shm.h"

#define LAST_BUCKET (TM_HIST_BUCKETS - 1u)

_Static_assert(TM_HIST_BUCKETS == (TM_HIST_MAX_EXP - TM_HIST_SUB_BITS + 2) * TM_HIST_SUB,
	       "bucket count and row arithmetic disagree");

/* On the spawn path: two branches and a count-leading-zeros, nothing else. */
unsigned tm_hist_bucket(uint64_t value_ns)
{
	if (value_ns < TM_HIST_SUB)
		return (unsigned)value_ns;
	unsigned exp = 63u - (unsigned)__builtin_clzll(value_ns);
	if (exp > TM_HIST_MAX_EXP)
		return LAST_BUCKET;
	unsigned sub = (unsigned)(value_ns >> (exp - TM_HIST_SUB_BITS)) & (TM_HIST_SUB - 1u);
	return (exp - TM_HIST_SUB_BITS + 1u) * TM_HIST_SUB + sub;
}

uint64_t tm_hist_bucket_low(unsigned bucket)
{
	if (bucket > LAST_BUCKET)
		bucket = LAST_BUCKET;
	if (bucket < TM_HIST_SUB)
		return bucket;
	unsigned row = bucket >> TM_HIST_SUB_BITS;
	uint64_t mantissa = TM_HIST_SUB + (bucket & (TM_HIST_SUB - 1u));
	return mantissa << (row - 1u);
}

/* Half a bucket above its low end keeps the error within 1/64 either way;
 * buckets one nanosecond wide report their value exactly. */
uint64_t tm_hist_bucket_mid(unsigned bucket)
{
	if (bucket > LAST_BUCKET)
		bucket = LAST_BUCKET;
	uint64_t low = tm_hist_bucket_low(bucket);
	if (bucket < 2u * TM_HIST_SUB)
		return low;
	uint64_t width = 1ull << ((bucket >> TM_HIST_SUB_BITS) - 1u);
	return low + width / 2u;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	uint64_t s;
	return __builtin_add_overflow(a, b, &s) ? UINT64_MAX : s;
}

/* 1-based rank of the sample at quantile q among total samples. NaN and
 * q <= 0 mean the smallest sample; q > 1 means the largest. */
static uint64_t quantile_rank(uint64_t total, double q)
{
	if (!(q > 0.0))
		return 1;
	if (q >= 1.0)
		return total;
	double want = q * (double)total;
	if (want >= (double)total)  /* rounding in the conversion of total */
		return total;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want)
		rank++;
	return rank ? rank : 1;
}

uint64_t tm_hist_quantile(const uint64_t *hist, uint64_t max, double q)
{
	if (hist == NULL)
		return 0;
	uint64_t total = 0;
	for (unsigned b = 0; b < TM_HIST_BUCKETS; b++)
		total = sat_add(total, hist[b]);
	if (total == 0)
		return 0;
	uint64_t rank = quantile_rank(total, q), seen = 0;
	unsigned b = 0;
	/* Saturating sums end at total >= rank, so this stops inside the array. */
	for (; b < LAST_BUCKET; b++) {
		seen = sat_add(seen, hist[b]);
		if (seen >= rank)
			break;
	}
	uint64_t v = tm_hist_bucket_mid(b);
	return (max != 0 && v > max) ? max : v;
}
