/* A forked child gets a registry of its own and never writes its parent's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "taskmon.h"
#include "taskmon_shm.h"

static int quick(void *arg)
{
	(void)arg;
	return 0;
}

/* Runs in the child: spawns 3 tasks there; exit code 0 when that worked
 * and the child's own segment exists. */
static int child_spawns(void)
{
	for (int i = 0; i < 3; i++) {
		tm_task *t;
		enum tm_status st;
		if (tm_spawn(&t, "child_task", quick, NULL, NULL) < 0 || tm_join(t, 5000, &st, NULL) < 0 ||
		    st != TM_SUCCEEDED)
			return 1;
	}
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/taskmon.%d", (int)getpid());
	struct stat sb;
	if (stat(path, &sb) < 0)
		return 2;
	struct tm_stats s;
	if (tm_get_stats(&s) < 0 || s.total_spawned != 3)
		return 3;
	return 0;
}

static int forker(void *arg)
{
	pid_t *out = arg;
	pid_t pid = fork();
	if (pid == 0) {
		int code = child_spawns();
		/* _exit skips the parent's test harness state; tm_shutdown removes the segment. */
		tm_shutdown();
		_exit(code);
	}
	*out = pid;
	return 0;
}

static void test_fork_inside_task(void **state)
{
	(void)state;
#ifdef __SANITIZE_THREAD__
	/* TSan itself refuses new threads in the child of a multithreaded fork. */
	print_message("skipped: ThreadSanitizer refuses threads in the child of a multithreaded fork\n");
	skip();
#endif
	assert_int_equal(tm_init(NULL), 0);
	struct tm_stats before;
	assert_int_equal(tm_get_stats(&before), 0);

	pid_t child = 0;
	tm_task *t;
	enum tm_status st;
	assert_int_equal(tm_spawn(&t, "forker", forker, &child, NULL), 0);
	assert_int_equal(tm_join(t, 5000, &st, NULL), 0);
	assert_int_equal(st, TM_SUCCEEDED);
	assert_true(child > 0);
	int ws;
	assert_int_equal(waitpid(child, &ws, 0), child);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);

	/* The parent saw exactly its own one task; the child's three went elsewhere. */
	struct tm_stats after;
	assert_int_equal(tm_get_stats(&after), 0);
	assert_int_equal(after.total_spawned - before.total_spawned, 1);
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/taskmon.%d", (int)child);
	assert_int_equal(access(path, F_OK), -1);   /* removed at the child's exit */
	tm_shutdown();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fork_inside_task),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
