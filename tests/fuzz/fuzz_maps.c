/* The /proc/<pid>/maps parser (user/symbolize.c): the paths in it are file
 * names a workload chose, and anything the parser keeps is later printed and
 * opened. Whatever the text, it must keep only sorted, non-empty executable
 * ranges with NUL-terminated paths, and look-ups must agree with them. The
 * kernel never lists overlapping ranges; look-ups are only checked for text
 * without them (the binary search relies on that). */
#include "fuzz.h"

#include <stdbool.h>
#include "symbolize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tmd_maps *m = NULL;
	int rc = tmd_maps_from_text(0, (const char *)data, size, &m);
	FUZZ_CHECK(rc == 0 || rc == -ENOMEM || rc == -EINVAL || rc == -EBADMSG);
	if (rc != 0) {
		FUZZ_CHECK(m == NULL);
		return 0;
	}
	size_t n = tmd_maps_count(m);
	bool disjoint = true;
	for (size_t i = 0; i < n; i++) {
		const struct tmd_mapping *mp = tmd_maps_get(m, i);
		FUZZ_CHECK(mp && mp->path);
		FUZZ_CHECK(mp->start < mp->end);
		FUZZ_CHECK(i == 0 || mp->start >= tmd_maps_get(m, i - 1)->start);
		if (i > 0 && mp->start < tmd_maps_get(m, i - 1)->end)
			disjoint = false;
	}
	for (size_t i = 0; disjoint && i < n; i++) {
		const struct tmd_mapping *mp = tmd_maps_get(m, i);
		FUZZ_CHECK(tmd_maps_find(m, mp->start) == mp);
		FUZZ_CHECK(tmd_maps_find(m, mp->end - 1) == mp);
	}
	FUZZ_CHECK(tmd_maps_get(m, n) == NULL);
	uint64_t probe = 0;
	if (size >= 8)
		memcpy(&probe, data, 8);
	const struct tmd_mapping *hit = tmd_maps_find(m, probe);
	FUZZ_CHECK(!hit || (probe >= hit->start && probe < hit->end));
	tmd_maps_free(m);
	return 0;
}
