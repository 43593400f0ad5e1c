/* A workload with a known mix of tasks, for the collector's tests.
 *
 *   workload [--wait] [--hold] TYPE=COUNT...
 *
 * Calls tm_init (which registers with the collector at $TASKMON_SOCKET),
 * prints "ready <pid>", waits for a line on stdin with --wait, then spawns
 * COUNT tasks of each TYPE (a built-in type name, or a new one it registers),
 * named "<type>_<i>", each sleeping 2 ms, joins them all and prints "done
 * <count>". With --hold it then waits for a line (or end of file) on stdin
 * before it returns from main.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskmon.h"

#define MAX_TASKS 4096

static unsigned sink;   /* keeps the loop; atomic: tasks run side by side */

static int body(void *arg)
{
	(void)arg;
	unsigned x = 0;
	for (unsigned i = 0; i < 100000; i++)
		x = x * 31 + i;   /* a little CPU: on-CPU time to measure */
	__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
	tm_sleep_ms(2);
	return 0;
}

static int type_id(const char *name)
{
	for (int t = 0; t < TM_BUILTIN_TYPES; t++)
		if (strcmp(tm_type_name(t), name) == 0)
			return t;
	return tm_type_register(name);
}

static int wait_line(void)
{
	char line[64];
	return fgets(line, sizeof(line), stdin) ? 0 : -1;
}

int main(int argc, char **argv)
{
	static tm_task *tasks[MAX_TASKS];
	bool wait = false, hold = false;
	int n = 0, i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[i], "--hold") == 0)
			hold = true;
	}
	if (tm_init(NULL) != 0) {
		fprintf(stderr, "workload: tm_init: %s\n", tm_last_error());
		return 2;
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	if (wait && wait_line() < 0)
		return 3;
	for (; i < argc; i++) {
		char type[TM_NAME_MAX], name[TM_NAME_MAX + 16];
		int count;
		if (sscanf(argv[i], "%31[^=]=%d", type, &count) != 2 || count < 0) {
			fprintf(stderr, "workload: '%s' is not TYPE=COUNT\n", argv[i]);
			return 2;
		}
		int t = type_id(type);
		if (t < 0) {
			fprintf(stderr, "workload: type '%s': %s\n", type, tm_last_error());
			return 2;
		}
		for (int k = 0; k < count && n < MAX_TASKS; k++) {
			snprintf(name, sizeof(name), "%.20s_%d", type, k);
			if (tm_spawn(&tasks[n], name, body, NULL, TM_SPAWN_OPTS(.type = t)) != 0) {
				fprintf(stderr, "workload: tm_spawn: %s\n", tm_last_error());
				return 4;
			}
			n++;
		}
	}
	for (int k = 0; k < n; k++)
		tm_join(tasks[k], -1, NULL, NULL);
	printf("done %d\n", n);
	fflush(stdout);
	if (hold)
		wait_line();
	return 0;
}
