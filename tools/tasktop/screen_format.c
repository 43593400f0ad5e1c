/* Figures and names as the screens show them: each fits the width it is
 * given, so that a column never pushes the next one aside. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "screen.h"

void tt_fmt_count(char *buf, size_t cap, uint64_t v, int width)
{
	static const char units[] = "kMGTPE";
	int n = snprintf(buf, cap, "%" PRIu64, v);
	if (n <= width)
		return;
	double d = (double)v;
	for (int u = 0; units[u]; u++) {
		d /= 1000.0;
		if (d < 999.95 && snprintf(buf, cap, "%.1f%c", d, units[u]) <= width)
			return;
		if (d < 999.5 && snprintf(buf, cap, "%.0f%c", d, units[u]) <= width)
			return;
	}
	snprintf(buf, cap, "%.*s", width, "++++++++++++++++");
}

void tt_fmt_rate(char *buf, size_t cap, double per_s, bool valid, int width)
{
	if (!valid || !(per_s >= 0)) {
		snprintf(buf, cap, "-");
		return;
	}
	if (per_s < 999.95 && snprintf(buf, cap, "%.1f", per_s) <= width)
		return;
	tt_fmt_count(buf, cap, (uint64_t)(per_s + 0.5), width);
}

/* value in units of u, with two, one or no decimals: truncated, never rounded
 * up past the width. */
static void fmt_unit(char *buf, size_t cap, uint64_t ns, uint64_t u, const char *name)
{
	uint64_t whole = ns / u;
	if (whole < 10)
		snprintf(buf, cap, "%" PRIu64 ".%02" PRIu64 "%s", whole, ns * 100 / u % 100, name);
	else if (whole < 100)
		snprintf(buf, cap, "%" PRIu64 ".%" PRIu64 "%s", whole, ns * 10 / u % 10, name);
	else
		snprintf(buf, cap, "%" PRIu64 "%s", whole, name);
}

void tt_fmt_dur(char *buf, size_t cap, uint64_t ns)
{
	const uint64_t us = 1000, ms = 1000 * us, s = 1000 * ms, min = 60 * s, h = 60 * min, d = 24 * h;
	if (ns < us)
		snprintf(buf, cap, "%" PRIu64 "ns", ns);
	else if (ns < ms)
		fmt_unit(buf, cap, ns, us, "us");
	else if (ns < s)
		fmt_unit(buf, cap, ns, ms, "ms");
	else if (ns < min)
		fmt_unit(buf, cap, ns, s, "s");
	else if (ns < h)
		snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", ns / min, ns % min / s);
	else if (ns < d)
		snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", ns / h, ns % h / min);
	else if (ns < 100 * d)
		snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", ns / d, ns % d / h);
	else
		snprintf(buf, cap, "%" PRIu64 "d", ns / d > 99999 ? (uint64_t)99999 : ns / d);
}

void tt_fmt_pct(char *buf, size_t cap, double pct, bool valid)
{
	if (!valid || !(pct >= 0))
		snprintf(buf, cap, "-");
	else if (pct < 99.95)
		snprintf(buf, cap, "%.1f", pct);
	else if (pct < 99999)
		snprintf(buf, cap, "%.0f", pct);
	else
		snprintf(buf, cap, "99999");
}

void tt_fmt_bytes(char *buf, size_t cap, uint64_t bytes)
{
	static const char units[] = "KMGTPE";
	if (bytes < 1024) {
		snprintf(buf, cap, "%" PRIu64 "B", bytes);
		return;
	}
	double d = (double)bytes;
	int u = -1;
	do {
		d /= 1024.0;
		u++;
	} while (d >= 1023.95 && units[u + 1]);
	snprintf(buf, cap, d < 9.995 ? "%.2f%c" : d < 99.95 ? "%.1f%c" : "%.0f%c", d, units[u]);
}

void tt_fmt_time(char *buf, size_t cap, uint64_t unix_ns, bool with_date)
{
	time_t t = (time_t)(unix_ns / 1000000000u);
	struct tm tm;
	if (unix_ns == 0 || !localtime_r(&t, &tm) ||
	    strftime(buf, cap, with_date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm) == 0)
		snprintf(buf, cap, "-");
}

void tt_disp(char *buf, size_t cap, const char *s, unsigned flags)
{
	if (flags & TT_STR_CTRL)
		tt_escape(s, buf, cap);
	else
		snprintf(buf, cap, "%s", s);
}

void tt_fmt_workload(char *buf, size_t cap, const struct tt_model *m, pid_t pid, int width)
{
	char comm[TT_COMM_CAP * 4 + 1] = "";
	char id[16];
	const struct tt_workload *w = m ? tt_model_find_workload(m, pid) : NULL;
	if (w)
		tt_disp(comm, sizeof(comm), w->comm.s, w->comm.flags);
	int idlen = snprintf(id, sizeof(id), "%d", (int)pid);
	int room = width - idlen - 1;
	if (!comm[0] || room < 1)
		snprintf(buf, cap, "%s", id);
	else
		snprintf(buf, cap, "%.*s:%s", room, comm, id);
}

void tt_fmt_warn(char *buf, size_t cap, unsigned warnings)
{
	static const char letters[TT_WK_COUNT] = { 'Y', 'S', 'R', 'L', 'E', 'K' };
	size_t n = 0;
	for (int k = 0; k < TT_WK_COUNT && n + 1 < cap; k++)
		if (warnings & (1u << k))
			buf[n++] = letters[k];
	if (cap)
		buf[n < cap ? n : cap - 1] = '\0';
}

bool tt_task_switches(const struct tt_task *t, uint64_t *vol, uint64_t *invol)
{
	if (t->proc.valid && t->proc.switches_known) {
		*vol = t->proc.voluntary_switches;
		*invol = t->proc.involuntary_switches;
		return true;
	}
	if (t->k.present && (t->k.ended || t->k.voluntary_switches || t->k.involuntary_switches)) {
		*vol = t->k.voluntary_switches;
		*invol = t->k.involuntary_switches;
		return true;
	}
	*vol = *invol = 0;
	return false;
}

const char *tt_health_name(enum tt_health h)
{
	switch (h) {
	case TT_HEALTH_OK: return "ok";
	case TT_HEALTH_DEGRADED: return "degraded";
	case TT_HEALTH_STALE: return "stale";
	default: return "no data";
	}
}
