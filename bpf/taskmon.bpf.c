// SPDX-License-Identifier: GPL-2.0
/* Kernel side of taskmon: per-task scheduling figures and crash capture for
 * the workloads the collector watches.
 *
 * Every program exists twice: a tp_btf one (typed arguments, direct loads)
 * and a raw_tp twin for kernels without tp_btf; the collector keeps one set
 * with bpf_program__set_autoload() before loading. Both call the same inline
 * handlers, which read kernel memory only through BPF_CORE_READ so that they
 * accept either kind of pointer.
 *
 * Cost model: a context switch or wakeup of a thread outside the watched
 * workloads costs the `nr_watched` check and, when anything is watched, one
 * inlined array lookup per process involved (no helper call). Per-switch
 * accounting lives in the `threads` map; the ring buffer only carries
 * lifecycle events.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "taskmon_events.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_RUNNING 0
#define SIGKILL      9
#define SI_KERNEL    0x80

/* Tunables, set by the collector between open and load. */
const volatile bool capture_stacks = true;
/* Signals that count as a crash: SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGSYS. */
const volatile __u32 crash_signals = (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8) |
                                     (1u << 11) | (1u << 31);

/* How many processes are watched; 0 lets every hook return at once. Written
 * by the collector through the mmapped .bss. */
__u32 nr_watched = 0;

/* watched[tgid] = TM_WATCH_* flags. An array sized to pid_max at load time:
 * its lookup is inlined by the verifier, a bounds check and a load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, __u64);   /* 64 bits for the atomic or; array slots are 8 bytes anyway */
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tm_thread);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tm_spawn_key);
	__type(value, struct tm_spawn_val);
} spawns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TM_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &which);
	if (c)
		*c += 1;
}

static __always_inline bool is_watched(__u32 tgid)
{
	__u64 *f = bpf_map_lookup_elem(&watched, &tgid);
	return f && *f;
}

/* Reserves and zeroes a record; a failed reservation is counted, never silent. */
#define EV_RESERVE(type, kind_)                                                   \
	({                                                                        \
		type *e_ = bpf_ringbuf_reserve(&events, sizeof(type), 0);         \
		if (e_) {                                                         \
			__builtin_memset(e_, 0, sizeof(type));                    \
			e_->h.kind = (kind_);                                     \
		} else {                                                          \
			count(TM_STAT_LOST);                                      \
		}                                                                 \
		e_;                                                               \
	})

static __always_inline void fill_hdr(struct tm_ev_hdr *h, __u64 now, __u32 tgid, __u32 tid, __u64 task_id)
{
	h->ts_ns = now;
	h->task_id = task_id;
	h->pid = tgid;
	h->tid = tid;
	h->cpu = bpf_get_smp_processor_id();
}

/* The thread's state, created on first sight. */
static __always_inline struct tm_thread *thread_get(__u32 tid)
{
	struct tm_thread *t = bpf_map_lookup_elem(&threads, &tid);
	if (t)
		return t;
	struct tm_thread init = {};
	init.last_cpu = ~0u;
	bpf_map_update_elem(&threads, &tid, &init, BPF_NOEXIST);
	count(TM_STAT_THREAD_NEW);
	return bpf_map_lookup_elem(&threads, &tid);
}

/* Cumulative on-CPU time of a thread now. Exact at switch-out (the kernel's
 * se.sum_exec_runtime); while it runs, extrapolated from its last switch-in. */
static __always_inline __u64 oncpu_now(const struct tm_thread *t, __u64 now)
{
	if (t->oncpu_since && now > t->oncpu_since)
		return t->cpu_at_switch_in + (now - t->oncpu_since);
	return t->oncpu_total;
}

/* Called in the thread itself (USDT, exit): a thread first seen while running
 * has no switch-in yet; its runtime so far is the kernel's, a tick stale at most. */
static __always_inline void ensure_on_cpu(struct tm_thread *t, __u64 now)
{
	if (t->oncpu_since)
		return;
	struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
	t->oncpu_since = now;
	t->cpu_at_switch_in = BPF_CORE_READ(cur, se.sum_exec_runtime);
}

/* ---- scheduler ----------------------------------------------------------- */

static __always_inline void switch_out(struct task_struct *prev, __u64 now, bool involuntary)
{
	__u32 tid = BPF_CORE_READ(prev, pid);
	struct tm_thread *t = thread_get(tid);
	if (!t)
		return;
	/* Updated by put_prev_task just before this tracepoint: exact. */
	t->oncpu_total = BPF_CORE_READ(prev, se.sum_exec_runtime);
	t->oncpu_since = 0;
	t->last_out_ns = now;
	if (involuntary) {
		t->nivcsw++;
		t->runnable_since = now;
		/* prev is current here. Consecutive preemptions at the same point
		 * keep the first time: the thread got no further in between. */
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		__u64 ip = BPF_CORE_READ(regs, ip);
		if (!t->preempt_ns || t->preempt_ip != ip) {
			t->preempt_ns = now;
			t->preempt_ip = ip;
		}
	} else {
		t->nvcsw++;
		t->runnable_since = 0;
		t->preempt_ns = 0;
		if (!t->task_id) {
			t->runq_mark = t->runq_total;
			t->runq_mark_ns = now;
		}
	}
}

static __always_inline void switch_in(struct task_struct *next, __u64 now)
{
	__u32 tid = BPF_CORE_READ(next, pid);
	__u32 cpu = bpf_get_smp_processor_id();
	struct tm_thread *t = thread_get(tid);
	if (!t)
		return;
	if (t->runnable_since && now > t->runnable_since) {
		t->runq_total += now - t->runnable_since;
		t->runq_last_start = t->runnable_since;
		t->runq_last_end = now;
	}
	t->runnable_since = 0;
	t->oncpu_since = now;
	t->cpu_at_switch_in = BPF_CORE_READ(next, se.sum_exec_runtime);
	if (t->last_cpu != ~0u && t->last_cpu != cpu)
		t->migrations++;
	t->last_cpu = cpu;
}

static __always_inline int on_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
                                     unsigned int prev_state, bool prev_watched, bool next_watched)
{
	if (!prev_watched && !next_watched)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (prev_watched)
		switch_out(prev, now, preempt || prev_state == TASK_RUNNING);
	if (next_watched)
		switch_in(next, now);
	return 0;
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);
	struct tm_thread *t = thread_get(tid);
	/* A wakeup of a thread still on its CPU (it had not slept yet) is no wait. */
	if (t && !t->oncpu_since && !t->runnable_since)
		t->runnable_since = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int on_wakeup_new(struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);
	__u64 now = bpf_ktime_get_ns();
	struct tm_thread init = {};
	init.last_cpu = ~0u;
	init.runnable_since = now;
	init.created_ns = now;
	/* A new thread: whatever an earlier thread of that id left is stale. */
	bpf_map_update_elem(&threads, &tid, &init, BPF_ANY);
	count(TM_STAT_THREAD_NEW);
	return 0;
}

/* The running task's totals from its start to now, into an end event. */
static __always_inline void task_totals(struct tm_ev_task_end *e, const struct tm_thread *t, __u64 now,
                                        __u64 runq_after)
{
	__u64 wall = now > t->task_start_ns ? now - t->task_start_ns : 0;
	__u64 cpu = oncpu_now(t, now);
	e->start_ns = t->task_start_ns;
	e->oncpu_ns = cpu > t->base_oncpu ? cpu - t->base_oncpu : 0;
	e->runq_ns = t->runq_total - runq_after - t->base_runq;
	e->blocked_ns = wall > e->oncpu_ns + e->runq_ns ? wall - e->oncpu_ns - e->runq_ns : 0;
	e->nvcsw = t->nvcsw - t->base_nvcsw;
	e->nivcsw = t->nivcsw - t->base_nivcsw;
	e->migrations = t->migrations - t->base_migrations;
}

static __always_inline int on_exit(struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid), tgid = BPF_CORE_READ(p, tgid);
	__u64 now = bpf_ktime_get_ns();
	struct tm_thread *t = bpf_map_lookup_elem(&threads, &tid);
	if (t && t->task_id) {
		/* The thread dies inside a task (a crash, exit(), a kill): close it out. */
		ensure_on_cpu(t, now);
		struct tm_ev_task_end *e = EV_RESERVE(struct tm_ev_task_end, TM_EV_TASK_END);
		if (e) {
			fill_hdr(&e->h, now, tgid, tid, t->task_id);
			task_totals(e, t, now, 0);
			e->status = -1;
			e->flags = TM_EVF_THREAD_EXIT;
			bpf_ringbuf_submit(e, 0);
		}
	}
	if (t)
		bpf_map_delete_elem(&threads, &tid);
	/* do_exit() drops signal->live before this tracepoint, so once it is 0
	 * every thread is past that point; the first to see it here reports the
	 * exit. (6.16 passes group_dead, but other threads may still be on their
	 * way here: the watch stays until the collector drops it, so that their
	 * tasks are closed out too.) */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	__u64 *w = bpf_map_lookup_elem(&watched, &tgid);
	if (!w || (__sync_fetch_and_or(w, TM_WATCH_EXITED) & TM_WATCH_EXITED))
		return 0;
	struct tm_ev_exit *x = EV_RESERVE(struct tm_ev_exit, TM_EV_EXIT);
	if (x) {
		int code = BPF_CORE_READ(p, exit_code);
		fill_hdr(&x->h, now, tgid, tid, 0);
		x->exit_code = (code >> 8) & 0xff;
		x->sig = code & 0x7f;
		x->core_dumped = (code & 0x80) != 0;
		BPF_CORE_READ_STR_INTO(&x->comm, p, group_leader, comm);
		bpf_ringbuf_submit(x, 0);
	}
	return 0;
}

/* ---- signals ------------------------------------------------------------- */

static __always_inline void crash_event(void *ctx, int sig, struct kernel_siginfo *info, struct task_struct *task,
                                        int result, __u32 tgid, __u32 tid)
{
	__u64 now = bpf_ktime_get_ns();
	struct tm_thread *t = bpf_map_lookup_elem(&threads, &tid);
	struct tm_ev_crash *e = EV_RESERVE(struct tm_ev_crash, TM_EV_CRASH);
	if (!e)
		return;
	fill_hdr(&e->h, now, tgid, tid, t ? t->task_id : 0);
	e->sig = sig;
	e->result = result;
	e->sender_pid = bpf_get_current_pid_tgid() >> 32;
	/* SEND_SIG_NOINFO (0) and SEND_SIG_PRIV (1) are not pointers. */
	if ((unsigned long)info > 1) {
		e->code = BPF_CORE_READ(info, si_code);
		if (e->code > 0 && e->code < SI_KERNEL)   /* a fault: si_addr is meaningful */
			e->addr = (__u64)BPF_CORE_READ(info, _sifields._sigfault._addr);
	} else {
		e->code = SI_KERNEL;
	}
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	/* Only the thread that faults or raises its own signal is current: the
	 * user stack of another thread is not reachable from here. */
	if (capture_stacks && (__u64)task == bpf_get_current_task()) {
		e->stack_sz = bpf_get_stack(ctx, e->stack, sizeof(e->stack), BPF_F_USER_STACK);
		if (e->stack_sz > 0)
			e->flags |= TM_EVF_STACK;
	} else {
		e->stack_sz = -95;   /* -EOPNOTSUPP: not current, or stacks are off */
	}
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void kill_event(int sig, struct kernel_siginfo *info, int result, __u32 tgid, __u32 tid)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tm_thread *t = bpf_map_lookup_elem(&threads, &tid);
	struct tm_ev_kill *e = EV_RESERVE(struct tm_ev_kill, TM_EV_KILL);
	if (!e)
		return;
	fill_hdr(&e->h, bpf_ktime_get_ns(), tgid, tid, t ? t->task_id : 0);
	e->sig = sig;
	e->result = result;
	e->sender_pid = pid_tgid >> 32;
	e->sender_tid = (__u32)pid_tgid;
	e->code = (unsigned long)info > 1 ? BPF_CORE_READ(info, si_code) : SI_KERNEL;
	bpf_get_current_comm(e->sender_comm, sizeof(e->sender_comm));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int on_signal(void *ctx, int sig, struct kernel_siginfo *info, struct task_struct *task,
                                     int result, __u32 tgid)
{
	if (!is_watched(tgid))
		return 0;
	__u32 tid = BPF_CORE_READ(task, pid);
	if (sig == SIGKILL)
		kill_event(sig, info, result, tgid, tid);
	else if (sig > 0 && sig < 32 && (crash_signals & (1u << sig)))
		crash_event(ctx, sig, info, task, result, tgid, tid);
	return 0;
}

/* ---- tp_btf programs ----------------------------------------------------- */

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	if (!nr_watched)
		return 0;
	return on_switch(preempt, prev, next, prev_state, is_watched(prev->tgid), is_watched(next->tgid));
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	if (!nr_watched || !is_watched(p->tgid))
		return 0;
	return on_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct *p)
{
	if (!nr_watched || !is_watched(p->tgid))
		return 0;
	return on_wakeup_new(p);
}

/* Kernels before 6.16 pass only the task; group_dead is not needed (see on_exit). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p)
{
	if (!nr_watched || !is_watched(p->tgid))
		return 0;
	return on_exit(p);
}

SEC("tp_btf/signal_generate")
int BPF_PROG(signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task, int group, int result)
{
	if (!nr_watched)
		return 0;
	return on_signal(ctx, sig, info, task, result, task->tgid);
}

/* ---- raw_tp twins -------------------------------------------------------- */

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
             unsigned int prev_state)
{
	if (!nr_watched)
		return 0;
	return on_switch(preempt, prev, next, prev_state, is_watched(BPF_CORE_READ(prev, tgid)),
	                 is_watched(BPF_CORE_READ(next, tgid)));
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(raw_sched_wakeup, struct task_struct *p)
{
	if (!nr_watched || !is_watched(BPF_CORE_READ(p, tgid)))
		return 0;
	return on_wakeup(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(raw_sched_wakeup_new, struct task_struct *p)
{
	if (!nr_watched || !is_watched(BPF_CORE_READ(p, tgid)))
		return 0;
	return on_wakeup_new(p);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(raw_sched_process_exit, struct task_struct *p)
{
	if (!nr_watched || !is_watched(BPF_CORE_READ(p, tgid)))
		return 0;
	return on_exit(p);
}

SEC("raw_tp/signal_generate")
int BPF_PROG(raw_signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
             int result)
{
	if (!nr_watched)
		return 0;
	return on_signal(ctx, sig, info, task, result, BPF_CORE_READ(task, tgid));
}

/* ---- the library's USDT probes (provider "taskmon", lib/usdt.h) ---------- */

struct probe_time {
	__u64 at;               /* when the thread reached the probe */
	__u64 off, on;          /* its last off-CPU stretch before that; 0, 0 = none known */
	__u64 runq_after;       /* run-queue wait between `at` and the handler */
};

/* The breakpoint trap returns to user mode through the scheduler before the
 * handler runs: a thread preempted right there, its instruction pointer just
 * past the int3, reached the probe when it was preempted, not when the
 * handler finally runs. */
static __always_inline struct probe_time probe_time(struct pt_regs *ctx, struct tm_thread *t, __u64 now)
{
	struct probe_time p = { .at = now };
	if (!t)
		return p;
	if (t->preempt_ns && t->preempt_ip == PT_REGS_IP(ctx) + 1) {
		p.at = t->preempt_ns;
		if (t->oncpu_since > t->preempt_ns)
			p.runq_after = t->oncpu_since - t->preempt_ns;
	} else if (t->last_out_ns && t->oncpu_since > t->last_out_ns) {
		p.off = t->last_out_ns;
		p.on = t->oncpu_since;
	}
	t->preempt_ns = 0;
	return p;
}

SEC("usdt")
int BPF_USDT(task_spawn, __u64 id, int type, const char *name)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	if (!is_watched(tgid))
		return 0;
	struct tm_spawn_key k = { .task_id = id, .tgid = tgid };
	struct tm_spawn_val v = {};
	struct probe_time p = probe_time(ctx, bpf_map_lookup_elem(&threads, &tid), now);
	v.ts_ns = p.at;
	v.off_ns = p.off;
	v.on_ns = p.on;
	v.spawner_tid = tid;
	v.type = type;
	bpf_probe_read_user_str(v.name, sizeof(v.name), name);
	bpf_map_update_elem(&spawns, &k, &v, BPF_ANY);
	return 0;
}

/* Run-queue wait of the task thread between the spawn and the start. All
 * since the thread last blocked or ended a task, when that was after the
 * spawn (the wakeup or creation for this task and any preemption since);
 * otherwise (a busy thread took it from the queue) its latest wait, clipped. */
static __always_inline __u64 spawn_runq(const struct tm_thread *t, const struct probe_time *p, __u64 spawn_ns,
                                        __u64 latency)
{
	__u64 runq = 0;
	if (t->runq_mark_ns >= spawn_ns)
		runq = t->runq_total - p->runq_after - t->runq_mark;
	else if (!p->runq_after && t->runq_last_end > spawn_ns)
		runq = t->runq_last_end - (t->runq_last_start > spawn_ns ? t->runq_last_start : spawn_ns);
	return runq < latency ? runq : latency;
}

SEC("usdt")
int BPF_USDT(task_start, __u64 id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	if (!is_watched(tgid))
		return 0;
	struct tm_thread *t = thread_get(tid);
	if (!t)
		return 0;
	ensure_on_cpu(t, now);
	struct probe_time p = probe_time(ctx, t, now);
	now = p.at;
	struct tm_spawn_key k = { .task_id = id, .tgid = tgid };
	struct tm_spawn_val *sv = bpf_map_lookup_elem(&spawns, &k);
	struct tm_ev_task_start *e = EV_RESERVE(struct tm_ev_task_start, TM_EV_TASK_START);
	if (e) {
		fill_hdr(&e->h, now, tgid, tid, id);
		e->off_ns = p.off;
		e->on_ns = p.on;
		if (sv) {
			e->spawner_off_ns = sv->off_ns;
			e->spawner_on_ns = sv->on_ns;
			e->spawn_ns = sv->ts_ns;
			e->latency_ns = now > sv->ts_ns ? now - sv->ts_ns : 0;
			e->spawner_tid = sv->spawner_tid;
			e->type = sv->type;
			__builtin_memcpy(e->name, sv->name, sizeof(e->name));
			e->runq_ns = spawn_runq(t, &p, sv->ts_ns, e->latency_ns);
			if (t->created_ns >= sv->ts_ns)
				e->flags |= TM_EVF_NEW_THREAD;
		} else {
			e->flags |= TM_EVF_NO_SPAWN;
		}
		bpf_ringbuf_submit(e, 0);
	}
	if (sv)
		bpf_map_delete_elem(&spawns, &k);
	else
		count(TM_STAT_SPAWN_MISSED);
	/* A restarted critical task starts again under its id: totals go on. */
	if (t->task_id == id)
		return 0;
	t->task_id = id;
	t->task_start_ns = now;
	t->base_oncpu = oncpu_now(t, now);
	t->base_runq = t->runq_total - p.runq_after;
	t->base_nvcsw = t->nvcsw;
	t->base_nivcsw = t->nivcsw;
	t->base_migrations = t->migrations;
	return 0;
}

SEC("usdt")
int BPF_USDT(task_end, __u64 id, int status, int rc)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	if (!is_watched(tgid))
		return 0;
	struct tm_thread *t = bpf_map_lookup_elem(&threads, &tid);
	if (t)
		ensure_on_cpu(t, now);
	struct probe_time p = probe_time(ctx, t, now);
	now = p.at;
	struct tm_ev_task_end *e = EV_RESERVE(struct tm_ev_task_end, TM_EV_TASK_END);
	if (e) {
		fill_hdr(&e->h, now, tgid, tid, id);
		e->status = status;
		e->rc = rc;
	}
	if (t && t->task_id == id) {
		if (e)
			task_totals(e, t, now, p.runq_after);
		t->task_id = 0;
		t->runq_mark = t->runq_total;
		t->runq_mark_ns = now;
	} else {
		/* Ended where it never ran: a spawn whose thread could not be had
		 * ends in the spawning thread. Or it started before the watch. */
		struct tm_spawn_key k = { .task_id = id, .tgid = tgid };
		bool pending = bpf_map_delete_elem(&spawns, &k) == 0;
		if (e)
			e->flags = pending ? TM_EVF_NOT_STARTED : TM_EVF_PARTIAL;
	}
	if (e)
		bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int restart_event(__u32 kind, __u64 id, __u64 attempt, __u64 delay_ms)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!is_watched(tgid))
		return 0;
	struct tm_ev_task_restart *e = EV_RESERVE(struct tm_ev_task_restart, kind);
	if (!e)
		return 0;
	fill_hdr(&e->h, bpf_ktime_get_ns(), tgid, (__u32)pid_tgid, id);
	e->attempt = attempt;
	e->delay_ms = delay_ms;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("usdt")
int BPF_USDT(task_restart, __u64 id, unsigned int attempt, __u64 delay_ms)
{
	return restart_event(TM_EV_TASK_RESTART, id, attempt, delay_ms);
}

SEC("usdt")
int BPF_USDT(task_giveup, __u64 id, __u64 restarts)
{
	return restart_event(TM_EV_TASK_GIVEUP, id, restarts, 0);
}
