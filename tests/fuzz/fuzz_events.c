/* Kernel events as taskmond --verbose prints them (user/event_fmt.c): a
 * ring-buffer record carries the workload's task name and thread name, bytes
 * a hostile workload chooses. Whatever the record, the line must be
 * NUL-terminated within its buffer and printable ASCII, and a record of an
 * unknown kind or a short one refused. */
#include "fuzz.h"

#include "event_fmt.h"
#include "taskmon_events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[512];
	/* An aligned copy: records come 8-aligned from the ring buffer. */
	uint64_t *copy = malloc(size ? size : 1);
	FUZZ_CHECK(copy);
	memcpy(copy, data, size);
	for (size_t cap = sizeof(line); cap >= 16; cap /= 8) {
		memset(line, 'x', sizeof(line));
		int kind = tmd_event_format(copy, size, line, cap);
		if (kind < 0) {
			FUZZ_CHECK(kind == -EBADMSG);
			continue;
		}
		FUZZ_CHECK(kind >= TM_EV_TASK_START && kind < TM_EV_KIND_COUNT);
		FUZZ_CHECK(size >= tmd_event_size((unsigned)kind));
		size_t n = strnlen(line, cap);
		FUZZ_CHECK(n < cap);
		FUZZ_CHECK(fuzz_printable(line, n));
	}
	free(copy);
	return 0;
}
