/* Unit tests for lib/config.c: defaults, the INI file, and every refusal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <ini.h>
#include "config.h"

static const char seed[] =
	"[task_management]\n"
	"max_restarts = 5\n"
	"default_timeout_secs = 30\n"
	"panic_backoff_multiplier = 2.0\n"
	"enable_task_metrics = true\n"
	"cleanup_interval_secs = 60\n"
	"max_tracked_tasks = 100000\n"
	"task_retention_secs = 300\n"
	"[task_limits]\n"
	"max_concurrent_network = 25000\n"
	"max_concurrent_consensus = 15000\n"
	"max_concurrent_database = 10000\n"
	"max_concurrent_total = 75000\n";

struct fx {
	char dir[32];
	char path[64];
	char err[512];
	struct tm__config c;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/tm_config.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/config.ini", f->dir);
	tm__config_defaults(&f->c);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_bytes(struct fx *f, const char *data, size_t len)
{
	FILE *out = fopen(f->path, "w");

	assert_non_null(out);
	assert_int_equal(fwrite(data, 1, len, out), len);
	assert_int_equal(fclose(out), 0);
}

static int load(struct fx *f, const char *text)
{
	write_bytes(f, text, strlen(text));
	f->err[0] = '\0';
	return tm__config_load(&f->c, f->path, f->err, sizeof(f->err));
}

static void load_ok(struct fx *f, const char *text)
{
	int rc = load(f, text);

	if (rc != 0)
		fail_msg("unexpected failure %d: %s", rc, f->err);
}

/* The file must be refused with exactly "PATH:LINE: msg". */
static void check_error(struct fx *f, int line, const char *msg)
{
	char want[600];

	snprintf(want, sizeof(want), "%s:%d: %s", f->path, line, msg);
	assert_string_equal(f->err, want);
}

static void load_bad(struct fx *f, const char *text, int line, const char *msg)
{
	assert_int_equal(load(f, text), -EINVAL);
	check_error(f, line, msg);
}

/* ---- defaults and the seed file --------------------------------------------- */

static void test_defaults(void **state)
{
	struct fx *f = *state;
	struct tm__config *c = &f->c;

	assert_int_equal(c->max_restarts, 5);
	assert_int_equal(c->default_timeout_ms, 0);
	assert_true(c->panic_backoff_multiplier == 2.0);
	assert_true(c->enable_task_metrics);
	assert_int_equal(c->cleanup_interval_ms, 60000);
	assert_int_equal(c->max_tracked_tasks, 100000);
	assert_int_equal(c->task_retention_ms, 300000);
	assert_int_equal(c->stack_size, 65536);
	assert_int_equal(c->thread_keepalive_ms, 10000);
	assert_int_equal(c->max_idle_threads, 256);
	assert_false(c->contain_faults);
	assert_int_equal(c->max_concurrent_total, 0);
	assert_int_equal(c->ntypes, TM_BUILTIN_TYPES);
	for (int i = 0; i < TM_BUILTIN_TYPES; i++) {
		assert_string_equal(c->types[i].name, tm__builtin_type_names[i]);
		assert_int_equal(c->types[i].max_concurrent, 0);
		assert_int_equal(c->types[i].timeout_ms, 0);
		assert_int_equal(c->types[i].stack_size, 0);
		assert_false(c->types[i].has_timeout);
	}
	assert_string_equal(tm__builtin_type_names[TM_GENERAL], "general");
	assert_string_equal(tm__builtin_type_names[TM_GAME_LOGIC], "game_logic");
	assert_string_equal(tm__builtin_type_names[TM_BACKGROUND], "background");
}

static void test_seed_file(void **state)
{
	struct fx *f = *state;
	struct tm__config *c = &f->c;

	/* start from values the file must overwrite */
	c->max_restarts = 99;
	c->enable_task_metrics = false;
	c->panic_backoff_multiplier = 7.5;
	load_ok(f, seed);
	assert_int_equal(c->max_restarts, 5);
	assert_int_equal(c->default_timeout_ms, 30000);
	assert_true(c->panic_backoff_multiplier == 2.0);
	assert_true(c->enable_task_metrics);
	assert_int_equal(c->cleanup_interval_ms, 60000);
	assert_int_equal(c->max_tracked_tasks, 100000);
	assert_int_equal(c->task_retention_ms, 300000);
	assert_int_equal(c->types[TM_NETWORK].max_concurrent, 25000);
	assert_int_equal(c->types[TM_CONSENSUS].max_concurrent, 15000);
	assert_int_equal(c->types[TM_DATABASE].max_concurrent, 10000);
	assert_int_equal(c->types[TM_GENERAL].max_concurrent, 0);
	assert_int_equal(c->max_concurrent_total, 75000);
	assert_int_equal(c->stack_size, 65536);
	assert_int_equal(c->ntypes, TM_BUILTIN_TYPES);
	for (int i = 0; i < TM_BUILTIN_TYPES; i++)
		assert_false(c->types[i].has_timeout);
}

static void test_same_result_twice(void **state)
{
	struct fx *f = *state;
	struct tm__config first;

	load_ok(f, seed);
	first = f->c;
	tm__config_defaults(&f->c);
	load_ok(f, seed);
	assert_memory_equal(&first, &f->c, sizeof(first));
}

static void test_every_management_key(void **state)
{
	struct fx *f = *state;
	struct tm__config *c = &f->c;

	load_ok(f, "[task_management]\n"
		   "max_restarts = 0\n"
		   "default_timeout_ms = 250\n"
		   "panic_backoff_multiplier = 1.25\n"
		   "enable_task_metrics = off\n"
		   "cleanup_interval_ms = 500\n"
		   "max_tracked_tasks = 16777216\n"
		   "task_retention_secs = 0\n"
		   "stack_size = 128K\n"
		   "thread_keepalive_secs = 2.5\n"
		   "max_idle_threads = 1000000\n"
		   "contain_faults = yes\n");
	assert_int_equal(c->max_restarts, 0);
	assert_int_equal(c->default_timeout_ms, 250);
	assert_true(c->panic_backoff_multiplier == 1.25);
	assert_false(c->enable_task_metrics);
	assert_int_equal(c->cleanup_interval_ms, 500);
	assert_int_equal(c->max_tracked_tasks, 16777216);
	assert_int_equal(c->task_retention_ms, 0);
	assert_int_equal(c->stack_size, 128 * 1024);
	assert_int_equal(c->thread_keepalive_ms, 2500);
	assert_int_equal(c->max_idle_threads, 1000000);
	assert_true(c->contain_faults);
	load_ok(f, "[task_management]\nthread_keepalive_ms = 7\ncleanup_interval_secs = 0.001\n"
		   "task_retention_ms = 9\ndefault_timeout_secs = 1.5000\n");
	assert_int_equal(c->thread_keepalive_ms, 7);
	assert_int_equal(c->cleanup_interval_ms, 1);
	assert_int_equal(c->task_retention_ms, 9);
	assert_int_equal(c->default_timeout_ms, 1500);
}

/* ---- values ------------------------------------------------------------------ */

static void test_stack_size(void **state)
{
	static const struct { const char *text; size_t bytes; } good[] = {
		{ "16384", 16384 }, { "16K", 16384 }, { "64k", 65536 }, { "1M", 1 << 20 },
		{ "3m", 3 << 20 }, { "1G", 1 << 30 }, { "1g", 1 << 30 }, { "1024M", 1 << 30 },
	};
	static const char *const bad[] = {
		"16383", "15K", "1025M", "2G", "0", "1T", "16KB", "16 K", "K", "-16K", "+16K",
		"99999999999999999999G", "18014398509481984K", "0x4000", "",
	};
	struct fx *f = *state;
	char text[128];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "[task_management]\nstack_size = %s\n", good[i].text);
		load_ok(f, text);
		assert_int_equal(f->c.stack_size, good[i].bytes);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char msg[256];
		snprintf(text, sizeof(text), "[task_management]\nstack_size = %s\n", bad[i]);
		snprintf(msg, sizeof(msg), "bad value '%s' for stack_size: expected a size in bytes "
			 "from 16K to 1G, with an optional K, M or G suffix", bad[i]);
		load_bad(f, text, 2, msg);
		assert_int_equal(f->c.stack_size, 1 << 30);  /* the last good value stays */
	}
}

static void test_booleans(void **state)
{
	static const char *const yes[] = { "true", "TRUE", "Yes", "on", "ON", "1" };
	static const char *const no[] = { "false", "False", "no", "NO", "off", "0" };
	static const char *const bad[] = { "maybe", "2", "tru", "truee", "y", "" };
	struct fx *f = *state;
	char text[128];

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		f->c.enable_task_metrics = false;
		snprintf(text, sizeof(text), "[task_management]\nenable_task_metrics = %s\n", yes[i]);
		load_ok(f, text);
		assert_true(f->c.enable_task_metrics);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		f->c.enable_task_metrics = true;
		snprintf(text, sizeof(text), "[task_management]\nenable_task_metrics = %s\n", no[i]);
		load_ok(f, text);
		assert_false(f->c.enable_task_metrics);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char msg[256];
		snprintf(text, sizeof(text), "[task_management]\nenable_task_metrics = %s\n", bad[i]);
		snprintf(msg, sizeof(msg), "bad value '%s' for enable_task_metrics: "
			 "expected true/false, yes/no, on/off or 1/0", bad[i]);
		load_bad(f, text, 2, msg);
	}
}

/* Off unless the file turns it on; a later file can turn it off again. */
static void test_contain_faults(void **state)
{
	struct fx *f = *state;

	load_ok(f, seed);
	assert_false(f->c.contain_faults);
	load_ok(f, "[task_management]\ncontain_faults = true\n");
	assert_true(f->c.contain_faults);
	load_ok(f, "[task_management]\nmax_restarts = 3\n");
	assert_true(f->c.contain_faults);  /* a file without the key keeps it */
	load_ok(f, "[task_management]\ncontain_faults = off\n");
	assert_false(f->c.contain_faults);
	load_bad(f, "[task_management]\ncontain_faults = sometimes\n", 2,
		 "bad value 'sometimes' for contain_faults: expected true/false, yes/no, on/off or 1/0");
	assert_false(f->c.contain_faults);
	load_bad(f, "[task_limits]\ncontain_faults = true\n", 2,
		 "unknown key 'contain_faults' in [task_limits]");
}

static void test_seconds(void **state)
{
	static const char *const bad[] = {
		"-1", "1.", ".5", "1.0001", "1e3", "0x10", "inf", "nan", "1,5", "1000000000.001",
		"18446744073709551616", "",
	};
	struct fx *f = *state;
	char text[128], msg[256];

	load_ok(f, "[task_management]\ndefault_timeout_secs = 1000000000\n");
	assert_int_equal(f->c.default_timeout_ms, 1000000000000ull);
	load_ok(f, "[task_management]\ndefault_timeout_secs = 0.25\n");
	assert_int_equal(f->c.default_timeout_ms, 250);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[task_management]\ndefault_timeout_secs = %s\n", bad[i]);
		snprintf(msg, sizeof(msg), "bad value '%s' for default_timeout_secs: expected a number "
			 "of seconds from 0 to 1000000000 with at most 3 decimals", bad[i]);
		load_bad(f, text, 2, msg);
	}
	/* a periodic cleanup every 0 ms would spin */
	load_bad(f, "[task_management]\ncleanup_interval_secs = 0\n", 2,
		 "bad value '0' for cleanup_interval_secs: expected a number of seconds "
		 "from 0.001 to 1000000000 with at most 3 decimals");
	load_bad(f, "[task_management]\ncleanup_interval_ms = 0\n", 2,
		 "bad value '0' for cleanup_interval_ms: expected a number of milliseconds "
		 "from 1 to 1000000000000");
	load_bad(f, "[task_management]\ntask_retention_ms = 1.5\n", 2,
		 "bad value '1.5' for task_retention_ms: expected a number of milliseconds "
		 "from 0 to 1000000000000");
}

static void test_multiplier(void **state)
{
	static const char *const bad[] = {
		"0.5", "0.999", "0", "-2", "nan", "inf", "1e3", "2.", "0x2", "2.0.0", "",
	};
	struct fx *f = *state;
	char text[128], msg[256];

	load_ok(f, "[task_management]\npanic_backoff_multiplier = 1\n");
	assert_true(f->c.panic_backoff_multiplier == 1.0);
	load_ok(f, "[task_management]\npanic_backoff_multiplier = 1.1\n");
	assert_true(f->c.panic_backoff_multiplier == 1.1);
	load_ok(f, "[task_management]\npanic_backoff_multiplier = 10.375\n");
	assert_true(f->c.panic_backoff_multiplier == 10.375);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[task_management]\npanic_backoff_multiplier = %s\n", bad[i]);
		snprintf(msg, sizeof(msg), "bad value '%s' for panic_backoff_multiplier: "
			 "expected a decimal number of at least 1.0", bad[i]);
		load_bad(f, text, 2, msg);
	}
}

static void test_integer_ranges(void **state)
{
	struct fx *f = *state;

	load_bad(f, "[task_management]\nmax_tracked_tasks = 0\n", 2,
		 "bad value '0' for max_tracked_tasks: expected an integer from 1 to 16777216");
	load_bad(f, "[task_management]\nmax_tracked_tasks = 16777217\n", 2,
		 "bad value '16777217' for max_tracked_tasks: expected an integer from 1 to 16777216");
	load_bad(f, "[task_management]\nmax_idle_threads = 1000001\n", 2,
		 "bad value '1000001' for max_idle_threads: expected an integer from 0 to 1000000");
	load_bad(f, "[task_management]\nmax_restarts = 4294967296\n", 2,
		 "bad value '4294967296' for max_restarts: expected a non-negative integer");
	load_ok(f, "[task_management]\nmax_restarts = 4294967295\n");
	assert_int_equal(f->c.max_restarts, 4294967295u);
	load_ok(f, "[task_limits]\nmax_concurrent_total = 18446744073709551615\n");
	assert_true(f->c.max_concurrent_total == UINT64_MAX);
	load_bad(f, "[task_limits]\nmax_concurrent_total = 18446744073709551616\n", 2,
		 "bad value '18446744073709551616' for max_concurrent_total: "
		 "expected a non-negative integer");
	load_ok(f, "[task_limits]\nmax_concurrent_total = 007\n");
	assert_int_equal(f->c.max_concurrent_total, 7);
}

/* ---- refusals ----------------------------------------------------------------- */

static void test_unknown_section(void **state)
{
	struct fx *f = *state;

	load_bad(f, "[task_management]\nmax_restarts = 1\n[task_limit]\nmax_concurrent_total = 5\n", 3,
		 "unknown section [task_limit]");
	/* even with no key in it */
	load_bad(f, "# nothing here\n[tasks]\n", 2, "unknown section [tasks]");
	load_bad(f, "[]\nx = 1\n", 1, "unknown section []");
	load_bad(f, "[ task_limits ]\n", 1, "unknown section [ task_limits ]");
	load_bad(f, "[task_limits] extra\n", 1, "syntax error (expected [section] or key = value)");
}

static void test_unknown_key(void **state)
{
	struct fx *f = *state;

	load_bad(f, "[task_management]\nmax_restarts = 5\n\n; limits\n\n[task_limits]\n"
		    "max_concurent_total = 5\n", 7,
		 "unknown key 'max_concurent_total' in [task_limits]");
	load_bad(f, "[task_management]\nmax_concurrent_total = 5\n", 2,
		 "unknown key 'max_concurrent_total' in [task_management]");
	load_bad(f, "[task_limits]\nmax_concurrent_gpu = 5\n", 2,
		 "unknown key 'max_concurrent_gpu' in [task_limits]");
	load_bad(f, "[task_limits]\nmax_concurrent_ = 5\n", 2,
		 "unknown key 'max_concurrent_' in [task_limits]");
	load_bad(f, "[type.network]\ntimeout = 5\n", 2, "unknown key 'timeout' in [type.network]");
	load_bad(f, "max_restarts = 5\n[task_management]\n", 1,
		 "key 'max_restarts' is outside any [section]");
	/* keys are case-sensitive */
	load_bad(f, "[task_management]\nMax_Restarts = 5\n", 2,
		 "unknown key 'Max_Restarts' in [task_management]");
}

static void test_bad_numbers(void **state)
{
	struct fx *f = *state;

	load_bad(f, "[task_limits]\nmax_concurrent_total = -5\n", 2,
		 "bad value '-5' for max_concurrent_total: expected a non-negative integer");
	load_bad(f, "[task_limits]\nmax_concurrent_network = -1\n", 2,
		 "bad value '-1' for max_concurrent_network: expected a non-negative integer");
	load_bad(f, "[task_limits]\nmax_concurrent_total = 10x\n", 2,
		 "bad value '10x' for max_concurrent_total: expected a non-negative integer");
	load_bad(f, "[task_limits]\nmax_concurrent_total = 10 20\n", 2,
		 "bad value '10 20' for max_concurrent_total: expected a non-negative integer");
	load_bad(f, "[task_limits]\nmax_concurrent_total = ten\n", 2,
		 "bad value 'ten' for max_concurrent_total: expected a non-negative integer");
	load_bad(f, "[task_limits]\nmax_concurrent_total =\n", 2,
		 "bad value '' for max_concurrent_total: expected a non-negative integer");
	load_bad(f, "[task_limits]\nmax_concurrent_total = +5\n", 2,
		 "bad value '+5' for max_concurrent_total: expected a non-negative integer");
	load_bad(f, "[task_limits]\nmax_concurrent_total = 0x10\n", 2,
		 "bad value '0x10' for max_concurrent_total: expected a non-negative integer");
	/* '#' only starts a comment at the start of a line */
	load_bad(f, "[task_limits]\nmax_concurrent_total = 5 # five\n", 2,
		 "bad value '5 # five' for max_concurrent_total: expected a non-negative integer");
}

static void test_quoting(void **state)
{
	struct fx *f = *state;

	load_bad(f, "[task_limits]\nmax_concurrent_total = 1\x01\x7f\xc3\xa9\n", 2,
		 "bad value '1?\?\?\?' for max_concurrent_total: expected a non-negative integer");
	load_bad(f, "[task_limits]\nmax_concurrent_total = "
		    "1234567890123456789012345678901234567890123456789012345678901234567890\n", 2,
		 "bad value '123456789012345678901234567890123456789012345678...' for "
		 "max_concurrent_total: expected a non-negative integer");
}

static void test_long_lines(void **state)
{
	struct fx *f = *state;
	char text[512], msg[64];
	/* inih needs room for "\r\n" and the NUL beyond the longest line */
	int limit = ini_max_line - 3;  /* 200 in Debian's build */
	int head = (int)strlen("[task_management]\n");

	strcpy(text, "[task_management]\n");
	for (int len = limit - 1; len <= limit + 1; len++) {
		/* a comment line of exactly len bytes */
		memset(text + head, ';', (size_t)len);
		strcpy(text + head + len, "\nmax_restarts = 3\n");
		f->c.max_restarts = 0;
		if (len <= limit) {
			load_ok(f, text);
			assert_int_equal(f->c.max_restarts, 3);
			continue;
		}
		snprintf(msg, sizeof(msg), "line is longer than %d bytes", limit);
		load_bad(f, text, 2, msg);
		assert_int_equal(f->c.max_restarts, 0);
	}
	/* a long value must not be cut and half of it read as the next line */
	memset(text, 0, sizeof(text));
	strcpy(text, "[task_limits]\nmax_concurrent_total = ");
	memset(text + strlen(text), '1', 300);
	strcat(text, "\n");
	snprintf(msg, sizeof(msg), "line is longer than %d bytes", limit);
	load_bad(f, text, 2, msg);
	/* a CR before the LF does not count */
	strcpy(text, "[task_management]\r\n");
	head = (int)strlen(text);
	memset(text + head, ';', (size_t)limit);
	strcpy(text + head + limit, "\r\nmax_restarts = 4\r\n");
	load_ok(f, text);
	assert_int_equal(f->c.max_restarts, 4);
}

static void test_syntax_error(void **state)
{
	struct fx *f = *state;

	load_bad(f, "[task_management]\nmax_restarts 5\n", 2,
		 "syntax error (expected [section] or key = value)");
	load_bad(f, "[task_management\nmax_restarts = 5\n", 1,
		 "syntax error (expected [section] or key = value)");
	/* the first error is reported, whichever kind it is */
	load_bad(f, "[task_management]\njunk\nmax_restarts = -1\n", 2,
		 "syntax error (expected [section] or key = value)");
	load_bad(f, "[task_management]\nmax_restarts = -1\njunk\n", 2,
		 "bad value '-1' for max_restarts: expected a non-negative integer");
}

static void test_nul_byte(void **state)
{
	static const char text[] = "[task_management]\nmax_restarts = 1\0 2\n";
	struct fx *f = *state;

	write_bytes(f, text, sizeof(text) - 1);
	assert_int_equal(tm__config_load(&f->c, f->path, f->err, sizeof(f->err)), -EINVAL);
	check_error(f, 2, "line contains a NUL byte");
}

static void test_missing_file(void **state)
{
	struct fx *f = *state;
	char want[256];

	assert_int_equal(tm__config_load(&f->c, f->path, f->err, sizeof(f->err)), -ENOENT);
	snprintf(want, sizeof(want), "cannot open config file '%s': No such file or directory", f->path);
	assert_string_equal(f->err, want);
}

static void test_directory(void **state)
{
	struct fx *f = *state;
	char want[256];

	assert_int_equal(tm__config_load(&f->c, f->dir, f->err, sizeof(f->err)), -EISDIR);
	snprintf(want, sizeof(want), "cannot read config file '%s': Is a directory", f->dir);
	assert_string_equal(f->err, want);
}

static void test_failure_leaves_config(void **state)
{
	struct fx *f = *state;
	struct tm__config before = f->c;

	load_bad(f, "[type.extra]\nmax_concurrent = 3\n[task_management]\nmax_restarts = 9\n"
		    "stack_size = 1\n", 5,
		 "bad value '1' for stack_size: expected a size in bytes from 16K to 1G, "
		 "with an optional K, M or G suffix");
	assert_memory_equal(&before, &f->c, sizeof(before));
}

static void test_small_error_buffer(void **state)
{
	struct fx *f = *state;
	char small[12];

	write_bytes(f, "[x]\n", 4);
	memset(small, 'z', sizeof(small));
	assert_int_equal(tm__config_load(&f->c, f->path, small, sizeof(small)), -EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(strncmp(small, f->path, sizeof(small) - 1), 0);
	assert_int_equal(tm__config_load(&f->c, f->path, NULL, 0), -EINVAL);
}

/* ---- types ----------------------------------------------------------------------- */

static void test_custom_type(void **state)
{
	struct fx *f = *state;
	struct tm__config *c = &f->c;
	struct tm__type_conf *t = &c->types[TM_BUILTIN_TYPES];

	load_ok(f, "[type.video encode]\nmax_concurrent = 4\nstack_size = 1M\n"
		   "[task_timeouts]\nvideo encode = 2.5\nnetwork = 0\nui = 1\n"
		   "[task_limits]\nmax_concurrent_video encode = 6\n");
	assert_int_equal(c->ntypes, TM_BUILTIN_TYPES + 1);
	assert_string_equal(t->name, "video encode");
	assert_int_equal(t->max_concurrent, 6);
	assert_int_equal(t->stack_size, 1 << 20);
	assert_true(t->has_timeout);
	assert_int_equal(t->timeout_ms, 2500);
	/* 0 is "no timeout for this type", not "use the default" */
	assert_true(c->types[TM_NETWORK].has_timeout);
	assert_int_equal(c->types[TM_NETWORK].timeout_ms, 0);
	assert_true(c->types[TM_UI].has_timeout);
	assert_int_equal(c->types[TM_UI].timeout_ms, 1000);
	assert_false(c->types[TM_DATABASE].has_timeout);
}

static void test_type_sections(void **state)
{
	struct fx *f = *state;
	struct tm__config *c = &f->c;

	/* a built-in name configures the built-in entry; an empty section still declares */
	load_ok(f, "[type.network]\ntimeout_ms = 40\n[type.idle]\n[type.network]\nmax_concurrent = 2\n"
		   "[task_timeouts]\nidle = 3\n");
	assert_int_equal(c->ntypes, TM_BUILTIN_TYPES + 1);
	assert_int_equal(c->types[TM_NETWORK].timeout_ms, 40);
	assert_true(c->types[TM_NETWORK].has_timeout);
	assert_int_equal(c->types[TM_NETWORK].max_concurrent, 2);
	assert_string_equal(c->types[TM_BUILTIN_TYPES].name, "idle");
	assert_int_equal(c->types[TM_BUILTIN_TYPES].timeout_ms, 3000);
	/* declaring again in a second file reuses the entry */
	load_ok(f, "[type.idle]\nmax_concurrent = 1\n");
	assert_int_equal(c->ntypes, TM_BUILTIN_TYPES + 1);
	assert_int_equal(c->types[TM_BUILTIN_TYPES].max_concurrent, 1);
}

static void test_unknown_type(void **state)
{
	struct fx *f = *state;

	load_bad(f, "[task_timeouts]\nnetwork = 5\nrender = 5\n", 3,
		 "unknown type 'render' in [task_timeouts]");
	/* a custom type must be declared before it is used */
	load_bad(f, "[task_timeouts]\nrender = 5\n[type.render]\n", 2,
		 "unknown type 'render' in [task_timeouts]");
	load_bad(f, "[task_timeouts]\nNetwork = 5\n", 2, "unknown type 'Network' in [task_timeouts]");
	load_bad(f, "[task_timeouts]\nnetwork = -5\n", 2,
		 "bad value '-5' for network: expected a number of seconds from 0 to 1000000000 "
		 "with at most 3 decimals");
}

static void test_bad_type_name(void **state)
{
	struct fx *f = *state;

	load_bad(f, "[type.]\n", 1,
		 "bad type name '' in [type.]: expected 1 to 31 printable ASCII characters");
	load_bad(f, "[task_management]\n[type.abcdefghijklmnopqrstuvwxyz123456]\n", 2,
		 "bad type name 'abcdefghijklmnopqrstuvwxyz123456' in "
		 "[type.abcdefghijklmnopqrstuvwxyz123456]: expected 1 to 31 printable ASCII characters");
	load_bad(f, "[type.tab\there]\n", 1,
		 "bad type name 'tab?here' in [type.tab?here]: expected 1 to 31 printable ASCII characters");
	load_ok(f, "[type.abcdefghijklmnopqrstuvwxyz12345]\n");
	assert_string_equal(f->c.types[TM_BUILTIN_TYPES].name, "abcdefghijklmnopqrstuvwxyz12345");
}

static void test_too_many_types(void **state)
{
	struct fx *f = *state;
	char text[2048];
	size_t len = 0;
	int spare = TM_MAX_TYPES - TM_BUILTIN_TYPES;

	for (int i = 0; i < spare; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "[type.t%d]\n", i);
	load_ok(f, text);
	assert_int_equal(f->c.ntypes, TM_MAX_TYPES);
	assert_string_equal(f->c.types[TM_MAX_TYPES - 1].name, "t23");
	/* existing names still take no slot */
	load_ok(f, "[type.t0]\n[type.network]\n");
	tm__config_defaults(&f->c);
	snprintf(text + len, sizeof(text) - len, "[type.one_too_many]\n");
	load_bad(f, text, spare + 1, "cannot declare type 'one_too_many': all 32 types are taken");
	assert_int_equal(f->c.ntypes, TM_BUILTIN_TYPES);
}

static void test_per_type_stack_size(void **state)
{
	struct fx *f = *state;

	load_bad(f, "[type.ui]\nstack_size = 8K\n", 2,
		 "bad value '8K' for stack_size: expected a size in bytes from 16K to 1G, "
		 "with an optional K, M or G suffix");
	load_ok(f, "[type.ui]\nstack_size = 32K\n");
	assert_int_equal(f->c.types[TM_UI].stack_size, 32768);
}

/* ---- layout ----------------------------------------------------------------------- */

static void test_comments_and_layout(void **state)
{
	struct fx *f = *state;
	struct tm__config *c = &f->c;

	load_ok(f, "\xef\xbb\xbf[task_management]\r\n"
		   "; a comment\n"
		   "# another comment\n"
		   "\n"
		   "   \t\n"
		   "    max_restarts = 7 ; inline comment\n"
		   "    max_idle_threads = 9\n"
		   "\tstack_size=32K\n"
		   "  [task_limits]   ; section comment\n"
		   "max_concurrent_ui:12\n"
		   "max_concurrent_total = 1\n"
		   "max_concurrent_total = 2\n"
		   "; max_concurrent_total = 3\n"
		   "#max_concurrent_total = 4\n"
		   "[task_timeouts] # section comment\n"
		   "background = 1");  /* no final newline */
	assert_int_equal(c->max_restarts, 7);
	assert_int_equal(c->max_idle_threads, 9);
	assert_int_equal(c->stack_size, 32768);
	assert_int_equal(c->types[TM_UI].max_concurrent, 12);
	assert_int_equal(c->max_concurrent_total, 2);
	assert_int_equal(c->types[TM_BACKGROUND].timeout_ms, 1000);
	load_ok(f, "");
	load_ok(f, "; only a comment\n");
	assert_int_equal(c->max_restarts, 7);
}

static void test_valid_name(void **state)
{
	(void)state;
	assert_false(tm__valid_name(NULL));
	assert_false(tm__valid_name(""));
	assert_true(tm__valid_name("a"));
	assert_true(tm__valid_name(" spaced name ~"));
	assert_true(tm__valid_name("abcdefghijklmnopqrstuvwxyz12345"));
	assert_false(tm__valid_name("abcdefghijklmnopqrstuvwxyz123456"));
	assert_false(tm__valid_name("tab\there"));
	assert_false(tm__valid_name("del\x7f"));
	assert_false(tm__valid_name("caf\xc3\xa9"));
	assert_false(tm__valid_name("\x1f"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults), T(test_seed_file), T(test_same_result_twice),
		T(test_every_management_key), T(test_stack_size), T(test_booleans),
		T(test_contain_faults), T(test_seconds), T(test_multiplier), T(test_integer_ranges),
		T(test_unknown_section), T(test_unknown_key), T(test_bad_numbers),
		T(test_quoting), T(test_long_lines), T(test_syntax_error), T(test_nul_byte),
		T(test_missing_file), T(test_directory), T(test_failure_leaves_config),
		T(test_small_error_buffer), T(test_custom_type), T(test_type_sections),
		T(test_unknown_type), T(test_bad_type_name), T(test_too_many_types),
		T(test_per_type_stack_size), T(test_comments_and_layout), T(test_valid_name),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
