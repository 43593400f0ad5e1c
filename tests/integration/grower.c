/* A workload that grows its concurrency in steps, for the capacity plan's
 * test: what the plan fits from the collector's records is compared with
 * what this process measures of itself.
 *
 *   grower [--step N] [--steps K] [--hold-ms MS] [--wait]
 *
 * Calls tm_init (which registers with the collector at $TASKMON_SOCKET),
 * prints "ready <pid>", then K times: spawns N more tasks that sleep until
 * cancelled, waits until every one of them runs, and holds MS milliseconds
 * so that the recorder sees the new level. Around each step it reads its own
 * resident set from /proc/self/statm and prints
 *   step <k> tasks <before> <after> rss <before> <after> per_task <bytes>
 * and at the end
 *   truth tasks <first> <last> rss <first> <last> per_task <bytes>
 * (the resident bytes the process really added per task over all steps),
 * with --wait waits for a line (or end of file) on stdin, so that a recorder
 * can be stopped before the tasks end, then cancels and joins everything and
 * prints "done".
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "taskmon.h"

static atomic_uint started;

static int sleeper(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (tm_sleep_ms(60000) == 0)
		;
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Resident bytes, the second field of statm in pages. */
static long long rss_bytes(void)
{
	long long size, resident;
	FILE *f = fopen("/proc/self/statm", "re");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%lld %lld", &size, &resident);
	fclose(f);
	return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

/* Every spawned task has entered its body, and the library's bookkeeping of
 * the last spawn has settled. */
static int wait_started(unsigned want)
{
	for (int i = 0; i < 30000 && atomic_load(&started) < want; i++)
		sleep_ms(1);
	if (atomic_load(&started) < want)
		return -1;
	sleep_ms(50);
	return 0;
}

static unsigned parse_arg(const char *flag, const char *v)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v ? v : "", &end, 10);
	if (!v || errno || *end || end == v || n == 0 || n > 1000000) {
		fprintf(stderr, "grower: %s needs a whole number from 1 to 1000000\n", flag);
		exit(2);
	}
	return (unsigned)n;
}

static int grow(unsigned step, unsigned steps, unsigned hold_ms)
{
	unsigned tasks = 0;
	long long first = rss_bytes(), before = first, after = first;

	for (unsigned k = 1; k <= steps; k++) {
		for (unsigned i = 0; i < step; i++) {
			int r = tm_spawn(NULL, "sleeper", sleeper, NULL, NULL);
			if (r != 0) {
				fprintf(stderr, "grower: tm_spawn: %s\n", tm_last_error());
				return -1;
			}
		}
		if (wait_started(tasks + step) != 0) {
			fprintf(stderr, "grower: tasks did not start within 30 s\n");
			return -1;
		}
		after = rss_bytes();
		printf("step %u tasks %u %u rss %lld %lld per_task %.0f\n", k, tasks, tasks + step,
		       before, after, (double)(after - before) / step);
		fflush(stdout);
		tasks += step;
		before = after;
		sleep_ms(hold_ms);
	}
	printf("truth tasks 0 %u rss %lld %lld per_task %.0f\n", tasks, first, after,
	       (double)(after - first) / tasks);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned step = 250, steps = 8, hold_ms = 1000;
	bool wait = false;
	char line[64];
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--wait") == 0) {
			wait = true;
			continue;
		}
		if (strcmp(argv[i], "--step") == 0)
			step = parse_arg(argv[i], v);
		else if (strcmp(argv[i], "--steps") == 0)
			steps = parse_arg(argv[i], v);
		else if (strcmp(argv[i], "--hold-ms") == 0)
			hold_ms = parse_arg(argv[i], v);
		else {
			fprintf(stderr, "usage: grower [--step N] [--steps K] [--hold-ms MS] [--wait]\n");
			return 2;
		}
		i++;
	}
	if (tm_init(NULL) != 0) {
		fprintf(stderr, "grower: tm_init: %s\n", tm_last_error());
		return 1;
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	rc = grow(step, steps, hold_ms);
	if (wait && !rc && !fgets(line, sizeof(line), stdin) && ferror(stdin))
		rc = -1;
	tm_shutdown();
	printf("done\n");
	return rc ? 1 : 0;
}
