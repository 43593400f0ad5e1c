/* The kernel trace budget: how many tasks a second each spawning thread lets
 * fire their probes (kernel_trace_rate).
 *
 * While a collector watches, every probe that fires is a breakpoint trap
 * and a task fires three (spawn, start, end): measured here, a traced task
 * costs 3.7 us more CPU back to back and 5-8 us when paced, more than a
 * short task costs in all; a thread spawning flat out would run at a third
 * of its speed. At the default 2,000 a second the probes cost a spawning
 * thread 1-2% of a core at most. So each spawning thread has a token
 * bucket: it earns one nanosecond of credit per nanosecond, a traced task
 * costs 1e9 / rate of it, and the credit is capped at a tenth of a second's
 * worth (bursts of up to rate / 10 tasks, or one). The tasks past the
 * budget run the same, are counted in the registry (trace_skipped, per
 * type) and keep exact library figures; only their kernel figures are
 * missing. Per thread, so the decision touches no shared cache line;
 * critical tasks are always traced. */
#include "core.h"

#define BURST_NS 100000000ull   /* credit cap: 0.1 s of the budget */

static __thread uint64_t credit_ns;   /* unspent credit */
static __thread uint64_t credit_at;   /* when it was last brought up to date; 0 = never */
static __thread uint32_t credit_epoch;/* tm__g.epoch then: a new tm_init starts a full bucket */

bool tm__trace_admit(uint64_t now_ns)
{
	uint64_t cost = tm__g.trace_cost_ns;
	if (!cost)
		return true;
	uint64_t cap = cost > BURST_NS ? cost : BURST_NS;   /* below 10 a second: room for one */
	if (!credit_at || credit_epoch != tm__g.epoch) {
		credit_ns = cap;
		credit_epoch = tm__g.epoch;
	} else if (now_ns > credit_at) {
		credit_ns += now_ns - credit_at;
	}
	credit_at = now_ns;
	if (credit_ns > cap)
		credit_ns = cap;
	if (credit_ns < cost)
		return false;
	credit_ns -= cost;
	return true;
}

void tm__trace_skipped(int type)
{
	__atomic_fetch_add(&tm__g.types[type].trace_skipped, 1, __ATOMIC_RELAXED);
}
