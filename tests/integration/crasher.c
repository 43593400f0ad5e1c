/* A workload that dies on request, for the collector's crash tests.
 *
 *   crasher segv|abort|wait
 *
 * Prints "ready <pid> <address of dice_roll's body>" once the library is up,
 * waits for a line on stdin, runs two ordinary tasks, then a task named
 * dice_roll of type game_logic that writes through a NULL pointer (segv),
 * calls abort() (abort), or sleeps until it is killed (wait).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskmon.h"

/* Read through a volatile pointer: the compiler cannot see the NULL and turn
 * the store into a trap instruction of its own. */
static int *volatile target;
static const char *mode = "segv";

static int warmup(void *arg)
{
	(void)arg;
	return 0;
}

/* Not instrumented: under UBSan the NULL store must still be a real one. */
__attribute__((noinline, no_sanitize("undefined"))) static int dice_roll(void *arg)
{
	(void)arg;
	if (strcmp(mode, "abort") == 0)
		abort();
	if (strcmp(mode, "wait") == 0)
		for (;;)
			pause();
	*target = 6;
	return 0;
}

int main(int argc, char **argv)
{
	char line[16];
	tm_task *t;
	if (argc > 1)
		mode = argv[1];
	if (tm_init(NULL) != 0) {
		fprintf(stderr, "crasher: tm_init: %s\n", tm_last_error());
		return 2;
	}
	printf("ready %d %p\n", (int)getpid(), (void *)dice_roll);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 3;
	for (int i = 0; i < 2; i++) {
		if (tm_spawn(&t, "warmup", warmup, NULL, NULL) != 0 || tm_join(t, -1, NULL, NULL) != 0)
			return 4;
	}
	if (tm_spawn(&t, "dice_roll", dice_roll, NULL, TM_SPAWN_OPTS(.type = TM_GAME_LOGIC)) != 0) {
		fprintf(stderr, "crasher: tm_spawn: %s\n", tm_last_error());
		return 5;
	}
	tm_join(t, -1, NULL, NULL);
	return 0;   /* not reached */
}
