/* Facts about a process read from /proc: what the shared-memory registry
 * records so that a reader can tell the workload apart from a later process
 * that was given the same pid. */
#ifndef TM_PROC_H
#define TM_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Field 22 (starttime, clock ticks after boot) of /proc/<pid>/stat. 0, or
 * -ESRCH when there is no such process, -EPROTO when the line cannot be
 * parsed, -EINVAL for pid <= 0, another -errno when /proc cannot be read.
 * Sets tm_last_error on failure. */
int tm__proc_start_ticks(pid_t pid, uint64_t *out);

/* The process's name (/proc/<pid>/comm), at most 15 bytes, NUL-terminated,
 * as the kernel keeps it (it may hold any byte but NUL and newline). 0 or
 * -errno as above. */
int tm__proc_comm(pid_t pid, char out[16]);

#endif
