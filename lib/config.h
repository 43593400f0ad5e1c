/* Configuration of libtaskmon: defaults and the INI file parser. */
#ifndef TM_CONFIG_H
#define TM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "taskmon.h"

/* Per-type settings, by type name: the eight built-in types are always
 * present (entries 0..7 in enum order); a [type.NAME] section adds a custom
 * type that tm_init registers. */
struct tm__type_conf {
	char     name[TM_NAME_MAX];
	uint64_t max_concurrent;   /* 0 = unlimited */
	uint64_t timeout_ms;       /* meaningful when has_timeout */
	size_t   stack_size;       /* 0 = the global stack_size */
	bool     has_timeout;      /* false: use default_timeout_ms */
};

struct tm__config {
	/* [task_management] */
	unsigned max_restarts;             /* 5 */
	uint64_t default_timeout_ms;       /* 0 = no timeout */
	double   panic_backoff_multiplier; /* 2.0 */
	bool     enable_task_metrics;      /* true: spawn-latency histograms */
	uint64_t cleanup_interval_ms;      /* 60000 */
	uint64_t max_tracked_tasks;        /* 100000: registry slots */
	uint64_t task_retention_ms;        /* 300000 */
	size_t   stack_size;               /* 65536 */
	uint64_t thread_keepalive_ms;      /* 10000: idle task threads retire after this */
	unsigned max_idle_threads;         /* 256: bound of the thread cache */
	bool     contain_faults;           /* false: a task's SIGSEGV etc. ends the process */
	uint64_t kernel_trace_rate;        /* 2000: tasks a second per spawning thread whose
	                                    * probes fire; 0 = every task */
	/* [task_limits] */
	uint64_t max_concurrent_total;     /* 0 = unlimited */
	/* per type: [task_limits] max_concurrent_<builtin>, [task_timeouts] <type> = secs,
	 * [type.NAME] max_concurrent / timeout_secs / timeout_ms / stack_size */
	struct tm__type_conf types[TM_MAX_TYPES];
	unsigned ntypes;                   /* >= TM_BUILTIN_TYPES */
};

extern const char *const tm__builtin_type_names[TM_BUILTIN_TYPES];

void tm__config_defaults(struct tm__config *c);
/* Parses path over the values already in c. 0, -ENOENT/-EACCES/-errno when
 * it cannot be opened, -EINVAL for bad content. On failure err receives one
 * sentence naming the file, the line and the key, and c is left unchanged.
 * Durations are capped at 10^9 s so that ms * 10^6 + now cannot overflow. */
int  tm__config_load(struct tm__config *c, const char *path, char *err, size_t errlen);
/* 1..31 bytes of printable ASCII (0x20..0x7e). */
bool tm__valid_name(const char *name);

#endif
