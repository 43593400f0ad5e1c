/* USDT probes of provider "taskmon". Each is a single nop in the code until a
 * tracer attaches; the arguments are plain registers or stack slots.
 *
 * Not the 5-byte nop that Linux 6.18 can turn into a call to a trampoline
 * after the first hit (half the cost of the breakpoint trap every hit takes
 * here): on 6.18 a process that forks after that call was patched in gives
 * its child the patched code but not the trampoline, and the child dies of
 * SIGSEGV at its first probe. A workload that forks and goes on using the
 * library is supported, so the probes stay breakpoints.
 */
#ifndef TM_USDT_H
#define TM_USDT_H

#include <sys/sdt.h>

#define TM_PROBE_SPAWN(id, type, name)  STAP_PROBE3(taskmon, task_spawn, id, type, name)
#define TM_PROBE_START(id)              STAP_PROBE1(taskmon, task_start, id)
#define TM_PROBE_END(id, status, rc)    STAP_PROBE3(taskmon, task_end, id, status, rc)
#define TM_PROBE_RESTART(id, attempt, delay_ms) STAP_PROBE3(taskmon, task_restart, id, attempt, delay_ms)
#define TM_PROBE_GIVEUP(id, restarts)   STAP_PROBE2(taskmon, task_giveup, id, restarts)

#endif
