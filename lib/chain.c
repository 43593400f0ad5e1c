/* Chains: steps run one after another, each a tracked task of its own, so
 * that every step shows up in the registry with its type, timeout and
 * outcome. A chain called from inside a task works the same way: the caller
 * only waits. */
#include <errno.h>
#include <string.h>
#include "core.h"
#include "internal.h"

static int run_step(const struct tm_chain_step *s, struct tm_result *out)
{
	tm_task *t;
	enum tm_status st = TM_RUNNING;
	int rc = 0;
	int r = tm_spawn(&t, s->name, s->fn, s->arg, TM_SPAWN_OPTS(.type = s->type, .timeout_ms = s->timeout_ms));
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	out->id = tm_task_id(t);
	strncpy(out->name, s->name, TM_NAME_MAX - 1);   /* tm_spawn checked it fits */
	/* Cannot time out, and a step is never the caller itself. */
	r = tm_join(t, -1, &st, &rc);
	if (r < 0) {
		tm_release(t);
		return r;
	}
	out->status = st;
	out->rc = rc;
	return 0;
}

int tm_chain(const struct tm_chain_step *steps, size_t n, struct tm_result *results)
{
	if (n && !steps)
		return tm__fail(EINVAL, "tm_chain got %zu steps but a NULL step array", n);
	if (n && !results)
		return tm__fail(EINVAL, "tm_chain got %zu steps but a NULL result array", n);
	if (n > INT32_MAX)
		return tm__fail(EINVAL, "tm_chain got %zu steps, more than %d", n, INT32_MAX);
	for (size_t i = 0; i < n; i++) {
		int r = run_step(&steps[i], &results[i]);
		if (r < 0) {
			char why[200];
			strncpy(why, tm_last_error(), sizeof(why) - 1);
			why[sizeof(why) - 1] = '\0';
			return tm__fail(-r, "chain step %zu of %zu: %s", i + 1, n, why);
		}
		if (results[i].status != TM_SUCCEEDED)
			return (int)i + 1;
	}
	return (int)n;
}
