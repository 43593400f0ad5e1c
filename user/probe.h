/* What the kernel and the caller's privileges allow: taskmond --check, and
 * the choice between tp_btf and raw_tp programs. */
#ifndef TMD_PROBE_H
#define TMD_PROBE_H

#include <stdbool.h>
#include <stddef.h>

struct tmd_feature {
	const char *name;
	bool needed;            /* taskmond cannot run without it */
	bool ok;
	char detail[160];
};

/* Runs every probe; fills up to cap entries and returns how many. */
size_t tmd_probe_features(struct tmd_feature *out, size_t cap);

/* 0 when the effective capabilities allow loading and attaching the programs
 * (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN); otherwise -EPERM with the
 * missing ones named in `missing`, e.g. "CAP_BPF and CAP_PERFMON". */
int tmd_check_privileges(char *missing, size_t len);

/* True when typed tracepoint programs (tp_btf) load and attach to `tp`. */
bool tmd_probe_tp_btf(const char *tp);
/* True when raw tracepoint programs attach to `tp`. */
bool tmd_probe_raw_tp(const char *tp);

#endif
