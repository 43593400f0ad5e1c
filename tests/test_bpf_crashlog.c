/* Crash records end to end: the crasher (tests/integration/crasher.c) is
 * watched as taskmond watches a workload, its mappings are copied when it is
 * found, and the crash event is turned into a record in the event callback,
 * as the collector does: the JSON line in a temporary state directory names
 * the task, its type, the signal and the function that faulted. Needs root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/bpf_test.h"
#include "crashlog.h"
#include "symbolize.h"
#include "taskmon.h"
#include "taskmon_shm.h"

struct fixture {
	struct tmd_loader *l;
	struct bt_store *s;
	struct crasher c;
	struct tmd_maps_set *maps;    /* the crasher's mappings, copied when it was found */
	char dir[64];                 /* the state directory */
	int records, record_rc;
	struct tmd_crash_out out;     /* the last record */
};

/* The collector's path: every event stored, a crash recorded at once. */
static int on_event(void *ctx, const void *data, size_t len)
{
	struct fixture *f = ctx;
	const struct tm_ev_hdr *h = data;
	bt_store_event(f->s, data, len);
	if (len >= sizeof(struct tm_ev_crash) && h->kind == TM_EV_CRASH && h->pid == (uint32_t)f->c.pid) {
		tmd_crash_out_release(&f->out);
		const struct tmd_maps *m = tmd_maps_set_latest(f->maps, (pid_t)h->pid, bt_now_ns());
		f->record_rc = tmd_crash_record(data, m, f->dir, &f->out);
		f->records++;
	}
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || !(f->s = calloc(1, sizeof(*f->s))))
		return -1;
	f->c.in = -1;
	strcpy(f->dir, "/tmp/test_bpf_crashlog.XXXXXX");
	if (!mkdtemp(f->dir) || !(f->maps = tmd_maps_set_new(0)))
		return -1;
	if (!bpf_test_skip_reason() && tmd_loader_open(&f->l, TMD_LOADER_OPTS(), on_event, f) < 0) {
		print_error("loader: %s\n", tmd_loader_error());
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];
	if (f->c.pid > 0) {
		if (f->c.in >= 0)
			crasher_wait(&f->c, 0);
		tm_shm_remove_stale(f->c.pid);
	}
	tmd_loader_close(f->l);
	tmd_maps_set_free(f->maps);
	tmd_crash_out_release(&f->out);
	snprintf(path, sizeof(path), "%s/%s", f->dir, TMD_CRASH_LOG);
	unlink(path);
	rmdir(f->dir);
	tmd_symcache_clear();
	free(f->s);
	free(f);
	return 0;
}

/* Starts the crasher, copies its mappings as discovery does, watches it, lets it die. */
static int run_crasher(struct fixture *f, const char *mode)
{
	assert_int_equal(crasher_start(&f->c, mode), 0);
	assert_int_equal(tmd_maps_set_add(f->maps, f->c.pid, bt_now_ns()), 0);
	assert_int_equal(tmd_loader_watch(f->l, f->c.pid), 1);
	crasher_go(&f->c);
	int st = crasher_wait(&f->c, 10000);
	assert_true(bt_poll_until(f->l, f->s, 5000, bt_exited, &f->c.pid));
	return st;
}

/* The one line in the crash log, parsed. */
static json_t *log_record(const struct fixture *f)
{
	char path[128], buf[16384];
	snprintf(path, sizeof(path), "%s/%s", f->dir, TMD_CRASH_LOG);
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	assert_true(n > 0 && buf[n - 1] == '\n');
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);   /* one record, one line */
	json_error_t err;
	json_t *j = json_loads(buf, 0, &err);
	if (!j)
		fail_msg("crash log line is not JSON: %s: %s", err.text, buf);
	return j;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void print_record(const struct fixture *f)
{
	char line[4096];
	tmd_crash_format_line(&f->out, line, sizeof(line));
	printf("%s\n%s\n", line, f->out.line);
	fflush(stdout);
}

static void expect_task(json_t *j, const char *source)
{
	json_t *task = json_object_get(j, "task");
	assert_true(json_is_object(task));
	assert_string_equal(str(task, "name"), "dice_roll");
	assert_string_equal(str(task, "type"), "game_logic");
	assert_int_equal(json_integer_value(json_object_get(task, "type_id")), TM_GAME_LOGIC);
	assert_string_equal(str(task, "source"), source);
}

static void test_segv_record(void **state)
{
	BPF_TEST_REQUIRE();
	struct fixture *f = *state;
	char crasher[PATH_MAX];
	int st = run_crasher(f, "segv");
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	assert_int_equal(f->records, 1);
	assert_int_equal(f->record_rc, 0);
	print_record(f);

	json_t *j = log_record(f);
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), f->c.pid);
	assert_string_equal(str(j, "comm"), "crasher");
	expect_task(j, "registry");
	assert_string_equal(str(j, "signal"), "SIGSEGV");
	assert_string_equal(str(j, "code"), "SEGV_MAPERR");
	assert_string_equal(str(j, "fault_addr"), "0x0");
	json_t *frames = json_object_get(j, "frames");
	assert_true(json_array_size(frames) >= 2);
	json_t *top = json_array_get(frames, 0);
	assert_string_equal(str(top, "symbol"), "dice_roll");   /* the store through NULL */
	bt_sibling(crasher, sizeof(crasher), "integration/crasher");
	char want[PATH_MAX];
	assert_non_null(realpath(crasher, want));
	assert_string_equal(str(top, "module"), want);
	assert_true(json_integer_value(json_object_get(top, "symbol_offset")) < 256);
	uint64_t pc = strtoull(str(top, "addr"), NULL, 16);
	assert_true(pc >= f->c.dice_roll && pc < f->c.dice_roll + 256);   /* the address the crasher printed */
	assert_int_equal(pc - f->c.dice_roll, json_integer_value(json_object_get(top, "symbol_offset")));
	json_decref(j);
}

static void test_abort_record(void **state)
{
	BPF_TEST_REQUIRE();
	struct fixture *f = *state;
	int st = run_crasher(f, "abort");
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	assert_int_equal(f->records, 1);
	assert_int_equal(f->record_rc, 0);
	print_record(f);

	json_t *j = log_record(f);
	expect_task(j, "registry");
	assert_string_equal(str(j, "signal"), "SIGABRT");
	assert_string_equal(str(j, "code"), "SI_TKILL");
	assert_true(json_is_null(json_object_get(j, "fault_addr")));
	/* Raised inside libc (pthread_kill under abort). The kernel walks frame
	 * pointers, which libc does not keep; the kernel side then scans the
	 * stack for return addresses, and the function that called abort is
	 * among the frames: abort's return address into dice_roll. */
	json_t *frames = json_object_get(j, "frames");
	assert_true(json_array_size(frames) >= 2);
	const char *mod = str(json_array_get(frames, 0), "module");
	assert_non_null(mod);
	print_message("top frame in %s; %zu frames kept, %lld dropped\n", mod, json_array_size(frames),
	              (long long)json_integer_value(json_object_get(j, "frames_dropped")));
	assert_true(json_array_size(frames) + (size_t)json_integer_value(json_object_get(j, "frames_dropped")) <=
	            TM_EV_STACK_MAX);
	/* gcc moves a call to a noreturn function into the function's cold
	 * part, symbol dice_roll.cold. */
	json_t *caller = NULL;
	for (size_t i = 1; i < json_array_size(frames) && !caller; i++) {
		const char *sym = str(json_array_get(frames, i), "symbol");
		if (sym && (strcmp(sym, "dice_roll") == 0 || strncmp(sym, "dice_roll.", 10) == 0))
			caller = json_array_get(frames, i);
	}
	assert_non_null(caller);
	print_message("the caller of abort: %s+%lld\n", str(caller, "symbol"),
	              (long long)json_integer_value(json_object_get(caller, "symbol_offset")));
	assert_true(json_integer_value(json_object_get(caller, "symbol_offset")) < 256);
	json_decref(j);
}

/* The registry gone before the record is made (a slow collector, a cleaned
 * /dev/shm): what the collector knew from the start event names the task. */
static void test_registry_gone(void **state)
{
	BPF_TEST_REQUIRE();
	struct fixture *f = *state;
	run_crasher(f, "segv");
	assert_int_equal(tm_shm_remove_stale(f->c.pid), 0);
	const struct bt_event *ev = bt_find(f->s, TM_EV_CRASH, f->c.pid, 0);
	assert_non_null(ev);
	const struct tm_ev_task_start *start = NULL;
	for (size_t i = 0; i < f->s->n && !start; i++)
		if (f->s->ev[i].u.h.kind == TM_EV_TASK_START && f->s->ev[i].u.h.task_id == ev->u.h.task_id)
			start = &f->s->ev[i].u.start;
	assert_non_null(start);

	struct tmd_crash_out out;
	const struct tmd_maps *m = tmd_maps_set_get(f->maps, f->c.pid);
	assert_non_null(m);
	assert_int_equal(tmd_crash_build(&ev->u.crash, m, NULL, &out), 0);
	assert_non_null(strstr(out.line, "\"name\":null,\"type\":null"));
	assert_non_null(strstr(out.line, "\"symbol\":\"dice_roll\""));   /* the maps copy still symbolizes */
	tmd_crash_out_release(&out);
	assert_int_equal(tmd_crash_build(&ev->u.crash, m,
	                                 TMD_CRASH_OPTS(.task_name = start->name, .task_type = (int)start->type), &out), 0);
	json_t *j = json_loads(out.line, 0, NULL);
	assert_non_null(j);
	expect_task(j, "collector");
	json_decref(j);
	tmd_crash_out_release(&out);
}

/* A task spawned past its spawner's kernel_trace_rate fires no probe: the
 * kernel does not know which task its thread runs, and the crash event
 * carries no task id. The record still names the task, from the registry,
 * by the thread it ran on. (The crasher spawns two warm-up tasks before
 * dice_roll; at one a second only the first is traced.) */
static void test_untraced_task_named(void **state)
{
	BPF_TEST_REQUIRE();
	struct fixture *f = *state;
	assert_int_equal(bt_use_trace_rate("1"), 0);
	int st = run_crasher(f, "segv");
	bt_drop_trace_rate();
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	const struct bt_event *ev = bt_find(f->s, TM_EV_CRASH, f->c.pid, 0);
	assert_non_null(ev);
	assert_int_equal(ev->u.h.task_id, 0);   /* the kernel could not name it */
	assert_int_equal(f->records, 1);
	assert_int_equal(f->record_rc, 0);
	print_record(f);
	json_t *j = log_record(f);
	expect_task(j, "registry");
	assert_true(json_integer_value(json_object_get(json_object_get(j, "task"), "id")) > 0);
	assert_string_equal(str(j, "signal"), "SIGSEGV");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_segv_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untraced_task_named, setup, teardown),
	};
	tmd_libbpf_print(false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
