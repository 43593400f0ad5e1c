/* The example in README.md, built against an installed copy of the library. */
#include <stdio.h>
#include <taskmon.h>

static int fetch(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++) {
		if (tm_sleep_ms(100) < 0)      /* woken at once by a cancel or the timeout */
			return 1;
	}
	return 0;
}

int main(void)
{
	tm_task *t;
	enum tm_status st;
	int rc;
	if (tm_spawn(&t, "fetch_peers", fetch, NULL,
	             TM_SPAWN_OPTS(.type = TM_NETWORK, .timeout_ms = 500)) < 0) {
		fprintf(stderr, "spawn: %s\n", tm_last_error());
		return 1;
	}
	tm_join(t, -1, &st, &rc);
	printf("fetch_peers ended %s (rc %d)\n", tm_status_name(st), rc);   /* timed_out */
	tm_shutdown();
	return 0;
}
