/* Events and map values shared by the kernel programs (bpf/taskmon.bpf.c) and
 * the collector (user/). Every struct is laid out by hand: fixed-width fields,
 * largest first, padding spelled out, so that both compilers agree on every
 * offset and a record zeroed before it is filled leaks no kernel memory.
 *
 * Times are bpf_ktime_get_ns(), which is CLOCK_MONOTONIC: the same clock as
 * the library's registry (spawn_ns, start_ns, end_ns), so the two compare
 * directly.
 */
#ifndef TASKMON_EVENTS_H
#define TASKMON_EVENTS_H

#ifndef __VMLINUX_H__           /* user space; the BPF side has vmlinux.h */
#include <linux/types.h>
#endif

#define TM_EV_NAME_MAX     32   /* = TM_NAME_MAX of lib/taskmon.h */
#define TM_EV_COMM_MAX     16
#define TM_EV_STACK_MAX    32   /* user frames kept in a crash event */

/* What a ring-buffer record is: the first field of every event. */
enum tm_ev_kind {
	TM_EV_TASK_START = 1,   /* struct tm_ev_task_start */
	TM_EV_TASK_END,         /* struct tm_ev_task_end */
	TM_EV_TASK_RESTART,     /* struct tm_ev_task_restart */
	TM_EV_TASK_GIVEUP,      /* struct tm_ev_task_restart (attempt = restarts) */
	TM_EV_CRASH,            /* struct tm_ev_crash */
	TM_EV_KILL,             /* struct tm_ev_kill */
	TM_EV_EXIT,             /* struct tm_ev_exit */
	TM_EV_KIND_COUNT
};

/* Common head of every event. */
struct tm_ev_hdr {
	__u64 ts_ns;            /* when it happened */
	__u64 task_id;          /* task running on that thread; 0 = none */
	__u32 kind;             /* enum tm_ev_kind */
	__u32 pid;              /* tgid of the workload */
	__u32 tid;              /* thread */
	__u32 cpu;
};

/* tm_ev_task_start.flags */
#define TM_EVF_NO_SPAWN    1u   /* task_spawn was not seen (a restart, or a spawn before the watch) */
#define TM_EVF_NEW_THREAD  2u   /* the task thread was created for it (its task_struct start_time is after the spawn) */

/* A probe's time is when its thread reached it; a thread preempted in the
 * breakpoint trap itself is credited with the time it was preempted. The
 * last off-CPU stretch of each thread before its probe is reported too
 * (0, 0 when none is known): a clock read just before the probe, in the
 * library, and the probe are that much further apart when it falls between. */
struct tm_ev_task_start {
	struct tm_ev_hdr h;     /* h.ts_ns = task_start */
	__u64 spawn_ns;         /* task_spawn in the spawning thread; 0 with TM_EVF_NO_SPAWN */
	__u64 latency_ns;       /* h.ts_ns - spawn_ns */
	__u64 runq_ns;          /* run-queue wait of the task thread within the latency */
	__u64 spawner_off_ns;   /* the spawning thread's last switch-out before task_spawn ... */
	__u64 spawner_on_ns;    /* ... and the switch-in that ended it */
	__u64 off_ns;           /* the same for the task thread before task_start */
	__u64 on_ns;
	__u32 spawner_tid;
	__u32 type;
	__u32 flags;            /* TM_EVF_* */
	__u32 pad;
	char  name[TM_EV_NAME_MAX];
};

/* tm_ev_task_end.flags */
#define TM_EVF_NOT_STARTED 1u   /* ended without running (a spawn that failed): no totals */
#define TM_EVF_THREAD_EXIT 2u   /* closed out by the thread's exit, not by task_end */
#define TM_EVF_PARTIAL     4u   /* task_start was not seen: totals cover only part of the run */

/* blocked_ns + oncpu_ns + runq_ns = end - start (tokio-console's Idle/Busy/Sched). */
struct tm_ev_task_end {
	struct tm_ev_hdr h;     /* h.ts_ns = task_end */
	__u64 start_ns;         /* task_start; 0 when not seen */
	__u64 oncpu_ns;         /* on CPU, the kernel's own sum_exec_runtime accounting */
	__u64 runq_ns;          /* runnable but waiting for a CPU (after wakeup or preemption) */
	__u64 blocked_ns;       /* the rest of the wall time */
	__u32 nvcsw;            /* voluntary context switches */
	__u32 nivcsw;           /* involuntary (preempted) */
	__u32 migrations;       /* switched in on another CPU than last time */
	__s32 status;           /* enum tm_status from the probe; -1 with TM_EVF_THREAD_EXIT */
	__s32 rc;
	__u32 flags;            /* TM_EVF_NOT_STARTED, TM_EVF_THREAD_EXIT, TM_EVF_PARTIAL */
};

struct tm_ev_task_restart {
	struct tm_ev_hdr h;
	__u64 delay_ms;         /* 0 for a give-up */
	__u64 attempt;          /* restart number, or the restarts made for a give-up */
};

/* tm_ev_crash.flags */
#define TM_EVF_STACK       1u   /* stack[] holds stack_sz / 8 frames of the faulting thread */
#define TM_EVF_STACK_SCAN  2u   /* stack[scan_from..] were found by scanning stack memory */

struct tm_ev_crash {
	struct tm_ev_hdr h;     /* h.tid is the thread the signal is for */
	__u64 addr;             /* si_addr: the fault address */
	__s64 stack_sz;         /* bytes written to stack[], or a negative error */
	__s32 sig;
	__s32 code;             /* si_code */
	__u32 result;           /* signal_generate's result: 0 delivered, else ignored/pending/... */
	__u32 flags;            /* TM_EVF_STACK */
	__u32 sender_pid;       /* who raised it: the thread itself for a fault */
	/* Frames from stack[scan_from] on are not from the frame-pointer walk,
	 * which stops or goes astray in code built without frame pointers
	 * (glibc's abort, raise, memcpy ...), but return addresses found in the
	 * 2 KiB of stack above the stack pointer, innermost first: each follows
	 * a call instruction, but may be left over from an earlier call. With
	 * TM_EVF_STACK_SCAN only; otherwise stack_sz / 8. */
	__u32 scan_from;
	char  comm[TM_EV_COMM_MAX];
	__u64 stack[TM_EV_STACK_MAX];  /* user return addresses, innermost first */
};

/* A SIGKILL to a watched process (kill -9, the OOM killer, ...). */
struct tm_ev_kill {
	struct tm_ev_hdr h;     /* h.pid/tid: the target */
	__u32 sender_pid;       /* tgid of the sender; the OOM killer runs in whoever ran short */
	__u32 sender_tid;
	__s32 sig;
	__s32 code;             /* si_code: SI_USER for kill(2), SI_KERNEL for the kernel's own */
	__u32 result;
	__u32 pad;
	char  sender_comm[TM_EV_COMM_MAX];
};

/* A watched process is gone (its last thread exited). */
struct tm_ev_exit {
	struct tm_ev_hdr h;     /* h.tid: the last thread to exit */
	__s32 exit_code;        /* exit status when it exited normally */
	__s32 sig;              /* terminating signal, 0 when it exited */
	__u32 core_dumped;
	__u32 pad;
	char  comm[TM_EV_COMM_MAX];
};

/* ---- map values ---------------------------------------------------------- */

/* watched[tgid] (__u64): set by the collector; 0 = not watched. */
#define TM_WATCH_ON        1u
#define TM_WATCH_EXITED    2u   /* set by the kernel side once it reported the exit */

/* spawns[slot]: task_spawn seen, task_start not yet. An array indexed by a
 * hash of (tgid, task id), not a hash map: no allocation, no lock, its
 * lookup inlined. A slot taken by another pending spawn is overwritten (the
 * earlier task's start then counts as TM_STAT_SPAWN_MISSED); task_id 0 =
 * free. */
struct tm_spawn_val {
	__u64 task_id;          /* written last, cleared first */
	__u64 ts_ns;
	__u64 off_ns, on_ns;    /* the spawner's last off-CPU stretch before it */
	__u32 tgid;
	__u32 spawner_tid;
	__u32 type;
	__u32 pad;
	char  name[TM_EV_NAME_MAX];
};

/* Per-thread scheduler state of watched threads: task-local storage, or
 * threads[tid] for the raw_tp programs (LRU: a missed exit cannot leak).
 * Most of a task's figures come from the kernel's own per-thread counters,
 * read where the thread is current: se.sum_exec_runtime (on CPU),
 * sched_info.run_delay (run-queue wait, CONFIG_SCHED_INFO), nvcsw, nivcsw
 * and se.nr_migrations. A task's totals are their difference between its
 * end and its start; this state keeps the bases and what the counters
 * cannot say (when the thread last went off and on a CPU). */
struct tm_thread {
	__u64 task_id;          /* current task; 0 = none */
	__u64 task_start_ns;
	__u64 runq_mark;        /* run_delay when it last blocked or ended a task ... */
	__u64 runq_mark_ns;     /* ... and when */
	__u64 last_out_ns;      /* last switch-out */
	__u64 preempt_ns;       /* last involuntary switch-out; 0 after a voluntary one */
	__u64 preempt_ip;       /* user instruction pointer it was preempted at */
	/* the kernel's counters at task_start */
	__u64 base_oncpu;
	__u64 base_runq;
	__u64 base_nvcsw;
	__u64 base_nivcsw;
	__u64 base_migrations;
};

/* oncpu[0], per CPU: the watched thread switched in there last, while it
 * runs (tid 0 = none). Kept per CPU, not per thread, so that a switch-in
 * costs no per-thread lookup; the thread's probes, which run on its CPU,
 * find it there. */
struct tm_oncpu {
	__u64 since;            /* switch-in time */
	__u64 cpu_at_in;        /* se.sum_exec_runtime then */
	__u64 runq_at_in;       /* sched_info.run_delay then: without the wait that switch-in ended */
	__u32 tid;
	__u32 pad;
};

/* Counters in the per-CPU `stats` array. */
enum tm_stat {
	TM_STAT_LOST,           /* ring-buffer reservations that failed: events lost */
	TM_STAT_SPAWN_MISSED,   /* task_start without a spawn record */
	TM_STAT_THREAD_NEW,     /* thread state created */
	TM_STAT_COUNT
};

#endif
