/* What the kernel reports about this process's own BPF programs: how many it
 * holds, and their summed run time and run count. The kernel counts those
 * only while kernel.bpf_stats_enabled is 1 (it costs a few ns per program
 * run, so it is off by default and taskmond leaves it so). */
#ifndef TMD_PROG_STATS_H
#define TMD_PROG_STATS_H

#include <stdbool.h>
#include <stdint.h>

struct tmd_prog_stats {
	int      programs;         /* loaded programs found among this process's descriptors */
	bool     enabled;          /* kernel.bpf_stats_enabled */
	uint64_t run_ns, runs;     /* summed over them */
};

/* The programs are found once (their descriptors are listed in
 * /proc/self/fd) and looked up again only when one no longer answers with
 * the same id. 0, or negative errno (programs = 0 then). */
int tmd_prog_stats_read(struct tmd_prog_stats *out);
/* Forgets the descriptors found (after the programs were closed). */
void tmd_prog_stats_reset(void);

#endif
