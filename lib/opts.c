/* Reading an options struct that starts with `size_t sz`, the way libbpf's
 * OPTS do: a caller built against an older header passes a smaller struct
 * (the rest reads as zero), one built against a newer header may pass a
 * larger one as long as everything this library does not know is zero. */
#include <errno.h>
#include <string.h>
#include "internal.h"

#define MAX_OPTS_SZ 4096   /* a larger sz is a caller bug, not a newer header */

int tm__read_opts(void *dst, size_t dst_sz, const void *src, const char *what, const char *macro)
{
	memset(dst, 0, dst_sz);
	if (!src)
		return 0;
	size_t sz;
	memcpy(&sz, src, sizeof(sz));
	if (sz < sizeof(sz) || sz > MAX_OPTS_SZ)
		return tm__fail(EINVAL, "%s options have sz %zu; fill them with %s() or set sz to their sizeof (%zu)",
		                what, sz, macro, dst_sz);
	memcpy(dst, src, sz < dst_sz ? sz : dst_sz);
	for (size_t i = dst_sz; i < sz; i++)
		if (((const unsigned char *)src)[i])
			return tm__fail(EINVAL, "%s options set fields this library does not know (sz %zu > %zu): "
			                "was the program built against a newer taskmon.h?", what, sz, dst_sz);
	memcpy(dst, &dst_sz, sizeof(dst_sz));
	return 0;
}
