/* The configuration parser (lib/config.c) on arbitrary files: it must
 * accept or refuse with -EINVAL and one sentence, leave the configuration
 * untouched when it refuses, and only ever produce values inside the
 * documented bounds when it accepts. */
#include "fuzz.h"

#include <stdbool.h>
#include "config.h"

static char path[128];

static void check_accepted(const struct tm__config *c)
{
	FUZZ_CHECK(c->ntypes >= TM_BUILTIN_TYPES && c->ntypes <= TM_MAX_TYPES);
	for (unsigned i = 0; i < c->ntypes; i++) {
		FUZZ_CHECK(tm__valid_name(c->types[i].name));
		FUZZ_CHECK(c->types[i].stack_size == 0 ||
		           (c->types[i].stack_size >= (16u << 10) && c->types[i].stack_size <= (1u << 30)));
		FUZZ_CHECK(!c->types[i].has_timeout || c->types[i].timeout_ms <= 1000000000000ull);
		for (unsigned k = 0; k < i; k++)   /* every type name once */
			FUZZ_CHECK(strcmp(c->types[i].name, c->types[k].name) != 0);
	}
	for (unsigned i = c->ntypes; i < TM_MAX_TYPES; i++)
		FUZZ_CHECK(c->types[i].name[0] == '\0');
	FUZZ_CHECK(c->stack_size >= (16u << 10) && c->stack_size <= (1u << 30));
	FUZZ_CHECK(c->default_timeout_ms <= 1000000000000ull && c->task_retention_ms <= 1000000000000ull &&
	           c->cleanup_interval_ms <= 1000000000000ull && c->thread_keepalive_ms <= 1000000000000ull);
	FUZZ_CHECK(c->panic_backoff_multiplier >= 1.0 && c->panic_backoff_multiplier == c->panic_backoff_multiplier);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tm__config c, before;
	char err[512];
	if (!path[0])
		snprintf(path, sizeof(path), "%s/taskmon.ini", fuzz_dir());
	fuzz_write_file(path, data, size);
	tm__config_defaults(&c);
	before = c;
	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	int rc = tm__config_load(&c, path, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0) {
		check_accepted(&c);
	} else {
		FUZZ_CHECK(memcmp(&c, &before, sizeof(c)) == 0);
		size_t n = strnlen(err, sizeof(err));
		FUZZ_CHECK(n > 0 && n < sizeof(err));
		FUZZ_CHECK(strstr(err, path) != NULL);        /* names the file */
		FUZZ_CHECK(fuzz_printable(err, n));           /* the file's bytes are quoted safely */
	}
	return 0;
}
