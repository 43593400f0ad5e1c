/* Supervision decisions of a critical task: whether to restart, when, and
 * when to give up. The running loop lives in task.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"
#include "internal.h"

#define DEFAULT_BASE_MS   100
#define DEFAULT_MAX_MS    30000
#define MAX_WINDOW_RESTARTS 100000u  /* a ring of restart times this long at most */

static int read_crit_opts(const struct tm_critical_opts *u, struct tm_critical_opts *o)
{
	return tm__read_opts(o, sizeof(*o), u, "critical", "TM_CRITICAL_OPTS");
}

static int check_crit_opts(const struct tm_critical_opts *o)
{
	if ((unsigned)o->restart > TM_RESTART_ON_FAILURE)
		return tm__fail(EINVAL, "unknown restart policy %d", (int)o->restart);
	if ((unsigned)o->backoff.kind > TM_BACKOFF_FIBONACCI)
		return tm__fail(EINVAL, "unknown backoff kind %d", (int)o->backoff.kind);
	if ((unsigned)o->backoff.jitter > TM_JITTER_DECORRELATED)
		return tm__fail(EINVAL, "unknown jitter kind %d", (int)o->backoff.jitter);
	if (!(o->backoff.multiplier >= 0.0))
		return tm__fail(EINVAL, "backoff multiplier must be a number >= 1 (or 0 for the configured one)");
	if (o->window_ms && o->max_restarts > MAX_WINDOW_RESTARTS)
		return tm__fail(EINVAL, "max_restarts %u within a window is more than %u", o->max_restarts,
		                MAX_WINDOW_RESTARTS);
	return 0;
}

/* An all-zero backoff means "not given": a fixed 100 ms. Otherwise the fields
 * are taken as they are, so base_ms 0 restarts at once and max_ms 0 means no
 * cap; only a zero multiplier falls back to the configured one. */
static void fill_defaults(struct tm_critical_opts *o)
{
	static const struct tm_backoff none;
	if (!memcmp(&o->backoff, &none, sizeof(none))) {
		o->backoff.base_ms = DEFAULT_BASE_MS;
		o->backoff.max_ms = DEFAULT_MAX_MS;
	}
	if (o->backoff.multiplier == 0.0)
		o->backoff.multiplier = tm__g.cfg.panic_backoff_multiplier;
	if (!o->max_restarts)
		o->max_restarts = tm__g.cfg.max_restarts;
}

int tm__crit_new(struct tm__crit **out, const struct tm_critical_opts *u)
{
	struct tm_critical_opts o;
	int r = read_crit_opts(u, &o);
	if (r < 0 || (r = check_crit_opts(&o)) < 0)
		return r;
	fill_defaults(&o);
	struct tm__crit *c = calloc(1, sizeof(*c));
	if (!c)
		return tm__fail(ENOMEM, "out of memory for a critical task");
	c->o = o;
	c->rng = tm__now_ns() ^ (uintptr_t)c;
	if (o.window_ms && o.max_restarts) {
		c->times_cap = o.max_restarts;
		c->times = calloc(c->times_cap, sizeof(*c->times));
		if (!c->times) {
			free(c);
			return tm__fail(ENOMEM, "out of memory for a critical task's restart window");
		}
	}
	*out = c;
	return 0;
}

void tm__crit_free(struct tm__crit *c)
{
	if (c) {
		free(c->times);
		free(c);
	}
}

bool tm__crit_wants_restart(const struct tm__crit *c, int status, int rc, void *arg)
{
	if (status == TM_CANCELLED)
		return false;          /* a cancel always wins */
	if (c->o.should_restart)
		return c->o.should_restart((enum tm_status)status, rc, arg);
	switch (c->o.restart) {
	case TM_RESTART_ALWAYS:
		return true;
	case TM_RESTART_ON_PANIC:
		return status == TM_PANICKED || status == TM_CRASHED;
	case TM_RESTART_ON_FAILURE:
		return status != TM_SUCCEEDED;
	default:
		return false;
	}
}

/* Restarts still inside the sliding window, after dropping older ones. */
static unsigned restarts_in_window(struct tm__crit *c, uint64_t now_ns)
{
	uint64_t window_ns = c->o.window_ms * 1000000ull;
	while (c->times_len) {
		unsigned oldest = (c->times_head + c->times_cap - c->times_len) % c->times_cap;
		if (now_ns - c->times[oldest] < window_ns)
			break;
		c->times_len--;
	}
	return c->times_len;
}

static void remember_restart(struct tm__crit *c, uint64_t now_ns)
{
	c->times[c->times_head] = now_ns;
	c->times_head = (c->times_head + 1) % c->times_cap;
	if (c->times_len < c->times_cap)
		c->times_len++;
}

bool tm__crit_plan_restart(struct tm__crit *c, uint64_t now_ns, uint64_t ran_ns, uint64_t *delay_ms,
                           unsigned *attempt)
{
	if (c->o.reset_after_ms && ran_ns >= c->o.reset_after_ms * 1000000ull) {
		c->attempt = 0;         /* a healthy run: start the delays over */
		c->prev_delay_ms = 0;
	}
	unsigned done = c->times ? restarts_in_window(c, now_ns) : (unsigned)(c->restarts > UINT32_MAX ? UINT32_MAX : c->restarts);
	if (done >= c->o.max_restarts)
		return false;
	if (c->times)
		remember_restart(c, now_ns);
	if (c->attempt < UINT32_MAX)
		c->attempt++;
	c->restarts++;
	*delay_ms = tm_backoff_delay_ms(&c->o.backoff, c->attempt, c->prev_delay_ms, &c->rng);
	c->prev_delay_ms = *delay_ms;
	*attempt = c->attempt;
	return true;
}
