/* Where a process runs libtaskmon: the binaries to attach USDT probes to. */
#ifndef TMD_DISCOVER_H
#define TMD_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define TMD_MAX_TARGETS 8
#define TMD_PATH_MAX    4096

struct tmd_targets {
	size_t n;
	char path[TMD_MAX_TARGETS][TMD_PATH_MAX];
};

/* True when the ELF file carries a USDT note of provider "taskmon". */
bool tmd_elf_has_taskmon_probes(const char *path);

/* Fills t with the copies of libtaskmon process pid runs: every mapped file
 * named libtaskmon*.so* and its executable, each kept only when it has the
 * "taskmon" USDT notes. Returns how many, or negative errno (-ESRCH when the
 * process is gone). */
int tmd_find_targets(pid_t pid, struct tmd_targets *t);

/* Start time of a process (field 22 of /proc/<pid>/stat): tells a reused
 * pid apart. 0 or -ESRCH. */
int tmd_proc_start(pid_t pid, unsigned long long *ticks);

/* Live workloads that publish a registry in dir (NULL = /dev/shm), owned by
 * the user the process runs as; returns how many were written (at most
 * cap), or negative errno. */
int tmd_list_workloads(const char *dir, pid_t *pids, size_t cap);

#endif
