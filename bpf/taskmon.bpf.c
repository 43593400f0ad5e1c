// SPDX-License-Identifier: GPL-2.0
/* Kernel side of taskmon: per-task scheduling figures and crash capture for
 * the workloads the collector watches.
 *
 * Every program exists twice: a tp_btf one (typed arguments, direct loads)
 * and a raw_tp twin for kernels without tp_btf; the collector keeps one set
 * with bpf_program__set_autoload() before loading. Both call the same inline
 * handlers. The hot ones (switch, wakeup) take a compile-time `btf` flag and
 * read the task with plain loads in the tp_btf programs (a relocated load,
 * against a helper call per field); the rest reads kernel memory only
 * through BPF_CORE_READ, which accepts either kind of pointer.
 *
 * Cost model: a context switch of a thread outside the watched workloads
 * costs the `nr_watched` check and, when anything is watched, one inlined
 * array lookup per process involved (no helper call). No wakeup is hooked:
 * run-queue wait is the kernel's own sched_info.run_delay, switch counts and
 * migrations its own counters, all read where the thread is current (a
 * probe, its switch-out, its exit). A switch of a watched thread keeps only
 * what those counters cannot say (when it went off and on a CPU) in
 * per-thread state (task-local storage, or the `threads` map for raw_tp);
 * the ring buffer only carries lifecycle events.
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

/* Ring-buffer wakeups. A wakeup is an interrupt the submitting CPU sends
 * itself (a VM exit under a hypervisor, microseconds), and a reader woken
 * for every record reads two or three at a time. So task records wake the
 * reader only each time the unread data crosses a multiple of wakeup_bytes;
 * the reader polls on its own at least every few tens of ms (loader.h) and
 * reads everything before a snapshot. Crash, kill and exit records wake it
 * at once. 0 = the kernel's default: wake a reader that has read all. */
const volatile __u32 wakeup_bytes = 0;

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

/* Per-thread state. Where the programs see typed task pointers (tp_btf) it
 * lives in task-local storage: found in the task itself with no hashing,
 * freed with the task. The raw_tp twins keep it in `threads`, by thread id
 * (LRU: a missed exit cannot leak). `task_storage` says which, per load. */
const volatile bool task_storage = false;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tm_thread);
} thread_store SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tm_thread);
} threads SEC(".maps");

/* Sized to a power of two at load time; spawn_mask = entries - 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tm_spawn_val);
} spawns SEC(".maps");
const volatile __u32 spawn_mask = 16383;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);   /* set at load time (loader.c) */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tm_oncpu);
} oncpu SEC(".maps");

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

/* Each record takes its size plus an 8-byte header in the ring. */
#define RB_SLOT(sz) ((((__u64)(sz)) + 8 + 7) & ~7ull)

static __always_inline void ev_submit(void *e, __u64 size)
{
	__u64 flags = 0;
	if (wakeup_bytes) {
		__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA), slot = RB_SLOT(size);
		bool crossed = avail >= slot && avail / wakeup_bytes != (avail - slot) / wakeup_bytes;
		flags = crossed ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void ev_submit_now(void *e)
{
	bpf_ringbuf_submit(e, wakeup_bytes ? BPF_RB_FORCE_WAKEUP : 0);
}

static __always_inline void fill_hdr(struct tm_ev_hdr *h, __u64 now, __u32 tgid, __u32 tid, __u64 task_id)
{
	h->ts_ns = now;
	h->task_id = task_id;
	h->pid = tgid;
	h->tid = tid;
	h->cpu = bpf_get_smp_processor_id();
}

/* The state of thread `tid`, whose task_struct is `task`. `typed` (a
 * constant at every call site) says the pointer may go to a helper that
 * wants a typed task (tp_btf arguments, bpf_get_current_task_btf()). */
static __always_inline struct tm_thread *thread_find(struct task_struct *task, __u32 tid, bool typed)
{
	if (typed && task_storage)
		return bpf_task_storage_get(&thread_store, task, 0, 0);
	return bpf_map_lookup_elem(&threads, &tid);
}

/* The same, created (zeroed) on first sight. */
static __always_inline struct tm_thread *thread_get(struct task_struct *task, __u32 tid, bool typed)
{
	struct tm_thread *t = thread_find(task, tid, typed);
	if (t)
		return t;
	count(TM_STAT_THREAD_NEW);
	if (typed && task_storage)
		return bpf_task_storage_get(&thread_store, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct tm_thread init = {};
	bpf_map_update_elem(&threads, &tid, &init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&threads, &tid);
}

static __always_inline void thread_drop(struct task_struct *task, __u32 tid, bool typed)
{
	if (typed && task_storage)
		bpf_task_storage_delete(&thread_store, task);
	else
		bpf_map_delete_elem(&threads, &tid);
}

/* A task_struct field: a direct load where the pointer is typed (tp_btf),
 * a probe read otherwise. `btf` is a constant at every call site. */
#define TASK_FIELD(btf, p, field) ((btf) ? (p)->field : BPF_CORE_READ(p, field))

/* The kernel's own counters of a thread, read while it is current (or is
 * `prev` at its switch-out): run_delay then covers every wait up to its
 * latest switch-in, which is all of them. run_delay is in sched_info, which
 * only kernels built with CONFIG_SCHED_INFO have (every major
 * distribution's); without it run-queue figures read 0 and `taskmond
 * --check` says why. */
#define MIGRATIONS_OF(task)  BPF_CORE_READ(task, se.nr_migrations)
#define RUN_DELAY(btf, p) (bpf_core_field_exists((p)->sched_info) ? TASK_FIELD(btf, p, sched_info.run_delay) : 0)
#define RUNQ_OF(task) RUN_DELAY(false, task)

/* On-CPU time of the current thread now: the kernel's se.sum_exec_runtime
 * is brought up to date only at ticks and switches, so it is extrapolated
 * from the latest switch-in when that was seen; otherwise (a thread running
 * since before the watch) the kernel's figure, a tick stale at most. */
static __always_inline __u64 oncpu_now(const struct tm_oncpu *o, struct task_struct *cur, __u64 now)
{
	if (o && now > o->since)
		return o->cpu_at_in + (now - o->since);
	return BPF_CORE_READ(cur, se.sum_exec_runtime);
}

/* The switch-in of thread tid, when it is the one on this CPU and that
 * switch-in was seen; NULL otherwise. */
static __always_inline struct tm_oncpu *oncpu_of(__u32 tid)
{
	__u32 zero = 0;
	struct tm_oncpu *o = bpf_map_lookup_elem(&oncpu, &zero);
	return o && o->tid == tid ? o : NULL;
}

/* ---- scheduler ----------------------------------------------------------- */

static __always_inline void switch_out(struct task_struct *prev, __u64 now, bool involuntary, bool btf)
{
	__u32 tid = TASK_FIELD(btf, prev, pid);
	struct tm_oncpu *o = oncpu_of(tid);
	if (o)
		o->tid = 0;
	struct tm_thread *t = thread_get(prev, tid, btf);
	if (!t)
		return;
	t->last_out_ns = now;
	if (involuntary) {
		/* prev is current here. Consecutive preemptions at the same point
		 * keep the first time: the thread got no further in between. */
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		__u64 ip = btf ? regs->ip : BPF_CORE_READ(regs, ip);
		if (!t->preempt_ns || t->preempt_ip != ip) {
			t->preempt_ns = now;
			t->preempt_ip = ip;
		}
	} else {
		t->preempt_ns = 0;
		if (!t->task_id) {
			t->runq_mark = RUN_DELAY(btf, prev);
			t->runq_mark_ns = now;
		}
	}
}

static __always_inline void switch_in(struct task_struct *next, __u64 now, bool btf)
{
	__u32 zero = 0;
	struct tm_oncpu *o = bpf_map_lookup_elem(&oncpu, &zero);
	if (!o)
		return;
	o->tid = TASK_FIELD(btf, next, pid);
	o->since = now;
	o->cpu_at_in = TASK_FIELD(btf, next, se.sum_exec_runtime);
	/* The kernel adds the wait this switch ends after the tracepoint. */
	o->runq_at_in = RUN_DELAY(btf, next);
}

static __always_inline int on_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
                                     unsigned int prev_state, bool prev_watched, bool next_watched, bool btf)
{
	if (!prev_watched && !next_watched)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (prev_watched)
		switch_out(prev, now, preempt || prev_state == TASK_RUNNING, btf);
	if (next_watched)
		switch_in(next, now, btf);
	return 0;
}

/* The running task's totals from its start to now, into an end event; cur
 * is the current thread. */
static __always_inline void task_totals(struct tm_ev_task_end *e, const struct tm_thread *t,
                                        const struct tm_oncpu *o, struct task_struct *cur, __u64 now,
                                        __u64 runq_after)
{
	__u64 wall = now > t->task_start_ns ? now - t->task_start_ns : 0;
	__u64 cpu = oncpu_now(o, cur, now), runq = RUNQ_OF(cur) - runq_after;
	e->start_ns = t->task_start_ns;
	e->oncpu_ns = cpu > t->base_oncpu ? cpu - t->base_oncpu : 0;
	e->runq_ns = runq > t->base_runq ? runq - t->base_runq : 0;
	e->blocked_ns = wall > e->oncpu_ns + e->runq_ns ? wall - e->oncpu_ns - e->runq_ns : 0;
	e->nvcsw = BPF_CORE_READ(cur, nvcsw) - t->base_nvcsw;
	e->nivcsw = BPF_CORE_READ(cur, nivcsw) - t->base_nivcsw;
	e->migrations = MIGRATIONS_OF(cur) - t->base_migrations;
}

static __always_inline int on_exit(struct task_struct *p, bool btf)
{
	__u32 tid = BPF_CORE_READ(p, pid), tgid = BPF_CORE_READ(p, tgid);
	__u64 now = bpf_ktime_get_ns();
	struct tm_thread *t = thread_find(p, tid, btf);
	if (t && t->task_id) {
		/* The thread dies inside a task (a crash, exit(), a kill): close it
		 * out. It is current: the exit runs in the exiting thread. */
		struct tm_ev_task_end *e = EV_RESERVE(struct tm_ev_task_end, TM_EV_TASK_END);
		if (e) {
			fill_hdr(&e->h, now, tgid, tid, t->task_id);
			task_totals(e, t, oncpu_of(tid), p, now, 0);
			e->status = -1;
			e->flags = TM_EVF_THREAD_EXIT;
			ev_submit(e, sizeof(*e));
		}
	}
	if (t)
		thread_drop(p, tid, btf);
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
		ev_submit_now(x);
	}
	return 0;
}

/* ---- signals ------------------------------------------------------------- */

/* Stack scanning, for the frames a frame-pointer walk misses. */
#define SCAN_CHUNK_WORDS 32
#define SCAN_CHUNKS      8      /* 2 KiB above the stack pointer */
#define SCAN_WORDS       (SCAN_CHUNK_WORDS * SCAN_CHUNKS)

struct scan_buf {
	__u64 w[SCAN_WORDS];              /* the stack, as read */
	__u64 found[TM_EV_STACK_MAX];     /* return addresses found in it */
	__u32 nfound;
	__u32 max;                        /* room left in the event */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scan_buf);
} scan_scratch SEC(".maps");

/* Whether the code just before addr is a call instruction that returns
 * there: e8 rel32, ff 15 disp32 (through the GOT), ff d0+r (a register),
 * ff 50+r disp8 (a register plus offset). Unmapped: no. */
static __always_inline bool after_call(__u64 addr)
{
	__u8 b[8];
	if (addr < 4096 || addr >= (1ull << 47) || bpf_probe_read_user(b, sizeof(b), (void *)(addr - 8)))
		return false;
	return b[3] == 0xe8 || (b[2] == 0xff && b[3] == 0x15) || (b[6] == 0xff && (b[7] & 0xf8) == 0xd0) ||
	       (b[5] == 0xff && (b[6] & 0xf8) == 0x50);
}

static long scan_word(__u32 i, void *ctx)
{
	__u32 zero = 0;
	struct scan_buf *buf = bpf_map_lookup_elem(&scan_scratch, &zero);
	(void)ctx;
	if (!buf || buf->nfound >= buf->max || buf->nfound >= TM_EV_STACK_MAX)
		return 1;
	__u64 v = buf->w[i & (SCAN_WORDS - 1)];
	if (!after_call(v))
		return 0;
	__u32 k = buf->nfound;
	if (k > 0 && buf->found[(k - 1) & (TM_EV_STACK_MAX - 1)] == v)
		return 0;
	buf->found[k & (TM_EV_STACK_MAX - 1)] = v;
	buf->nfound = k + 1;
	return 0;
}

/* The frame-pointer walk of a thread in code without frame pointers ends
 * early, or follows a stale frame pointer round a loop (the same frame over
 * and over). Its frames up to the first repeat stay; return addresses found
 * in the stack memory above the stack pointer follow them. */
static __always_inline void scan_stack(struct tm_ev_crash *e, __u32 n)
{
	__u32 zero = 0;
	struct scan_buf *buf = bpf_map_lookup_elem(&scan_scratch, &zero);
	if (!buf || !bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_loop))
		return;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 sp = BPF_CORE_READ(regs, sp);
	__u32 words = 0;
	/* Chunk by chunk: the top of the stack may be nearer than 2 KiB. */
	for (int c = 0; c < SCAN_CHUNKS; c++) {
		if (bpf_probe_read_user(&buf->w[c * SCAN_CHUNK_WORDS], SCAN_CHUNK_WORDS * 8,
		                        (void *)(sp + c * SCAN_CHUNK_WORDS * 8)))
			break;
		words += SCAN_CHUNK_WORDS;
	}
	buf->nfound = 0;
	buf->max = TM_EV_STACK_MAX - n;
	bpf_loop(words, scan_word, NULL, 0);
	e->scan_from = n;
	e->flags |= TM_EVF_STACK_SCAN;
	for (int i = 0; i < TM_EV_STACK_MAX; i++) {
		__u32 at = n;
		if (i >= buf->nfound || at >= TM_EV_STACK_MAX)
			break;
		/* Keeps the compiler from forming the address before the check. */
		__asm__ volatile("" : "+r"(at));
		e->stack[at & (TM_EV_STACK_MAX - 1)] = buf->found[i & (TM_EV_STACK_MAX - 1)];
		n++;
	}
	e->stack_sz = n * 8;
}

/* Frames of the walk up to its first repeat. */
static __always_inline __u32 walk_frames(const struct tm_ev_crash *e)
{
	__u32 n = e->stack_sz > 0 ? (__u32)(e->stack_sz / 8) : 0;
	for (int i = 1; i < TM_EV_STACK_MAX; i++)
		if (i < n && e->stack[i] == e->stack[i - 1])
			return i;
	return n;
}

/* Frames of a walk that went astray, up to the first that is no return
 * address (the innermost is the instruction pointer itself). */
static __always_inline __u32 valid_frames(const struct tm_ev_crash *e, __u32 n)
{
	for (int i = 1; i < TM_EV_STACK_MAX; i++)
		if (i < n && !after_call(e->stack[i]))
			return i;
	return n;
}

static __always_inline void crash_event(void *ctx, int sig, struct kernel_siginfo *info, struct task_struct *task,
                                        int result, __u32 tgid, __u32 tid, bool btf)
{
	__u64 now = bpf_ktime_get_ns();
	struct tm_thread *t = thread_find(task, tid, btf);
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
		if (e->stack_sz > 0) {
			e->flags |= TM_EVF_STACK;
			__u32 n = walk_frames(e);
			e->scan_from = n;
			/* A signal the thread sent itself (abort, raise) is raised in
			 * a system call of the C library, whose frames the walk
			 * cannot follow; a short or looping walk went astray too. */
			if (e->code <= 0 || n < 3 || n * 8 < e->stack_sz)
				scan_stack(e, valid_frames(e, n));
		}
	} else {
		e->stack_sz = -95;   /* -EOPNOTSUPP: not current, or stacks are off */
	}
	ev_submit_now(e);
}

static __always_inline void kill_event(int sig, struct kernel_siginfo *info, struct task_struct *task, int result,
                                       __u32 tgid, __u32 tid, bool btf)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tm_thread *t = thread_find(task, tid, btf);
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
	ev_submit_now(e);
}

static __always_inline int on_signal(void *ctx, int sig, struct kernel_siginfo *info, struct task_struct *task,
                                     int result, __u32 tgid, bool btf)
{
	if (!is_watched(tgid))
		return 0;
	__u32 tid = BPF_CORE_READ(task, pid);
	if (sig == SIGKILL)
		kill_event(sig, info, task, result, tgid, tid, btf);
	else if (sig > 0 && sig < 32 && (crash_signals & (1u << sig)))
		crash_event(ctx, sig, info, task, result, tgid, tid, btf);
	return 0;
}

/* ---- tp_btf programs ----------------------------------------------------- */

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	if (!nr_watched)
		return 0;
	return on_switch(preempt, prev, next, prev_state, is_watched(prev->tgid), is_watched(next->tgid), true);
}

/* Kernels before 6.16 pass only the task; group_dead is not needed (see on_exit). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p)
{
	if (!nr_watched || !is_watched(p->tgid))
		return 0;
	return on_exit(p, true);
}

SEC("tp_btf/signal_generate")
int BPF_PROG(signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task, int group, int result)
{
	if (!nr_watched)
		return 0;
	return on_signal(ctx, sig, info, task, result, task->tgid, true);
}

/* ---- raw_tp twins -------------------------------------------------------- */

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
             unsigned int prev_state)
{
	if (!nr_watched)
		return 0;
	return on_switch(preempt, prev, next, prev_state, is_watched(BPF_CORE_READ(prev, tgid)),
	                 is_watched(BPF_CORE_READ(next, tgid)), false);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(raw_sched_process_exit, struct task_struct *p)
{
	if (!nr_watched || !is_watched(BPF_CORE_READ(p, tgid)))
		return 0;
	return on_exit(p, false);
}

SEC("raw_tp/signal_generate")
int BPF_PROG(raw_signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
             int result)
{
	if (!nr_watched)
		return 0;
	return on_signal(ctx, sig, info, task, result, BPF_CORE_READ(task, tgid), false);
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
static __always_inline struct probe_time probe_time(struct pt_regs *ctx, struct tm_thread *t,
                                                    const struct tm_oncpu *o, __u64 now)
{
	struct probe_time p = { .at = now };
	if (!t)
		return p;
	__u64 since = o ? o->since : 0;
	if (t->preempt_ns && t->preempt_ip == PT_REGS_IP(ctx) + 1) {
		p.at = t->preempt_ns;
		if (since > t->preempt_ns)
			p.runq_after = since - t->preempt_ns;
	} else if (t->last_out_ns && since > t->last_out_ns) {
		p.off = t->last_out_ns;
		p.on = since;
	}
	t->preempt_ns = 0;
	return p;
}

static __always_inline struct tm_spawn_val *spawn_slot(__u64 id, __u32 tgid)
{
	__u32 i = (__u32)((id ^ ((__u64)tgid << 32)) * 0x9E3779B97F4A7C15ull >> 40) & spawn_mask;
	return bpf_map_lookup_elem(&spawns, &i);
}

/* Takes the pending spawn of this task out of its slot into *out; false when
 * there is none (never seen, or overwritten). The writer clears task_id
 * first and sets it last (x86 keeps stores in order), so a copy made while
 * task_id stayed ours throughout is whole. */
static __always_inline bool spawn_take(__u64 id, __u32 tgid, struct tm_spawn_val *out)
{
	struct tm_spawn_val *v = spawn_slot(id, tgid);
	if (!v || v->task_id != id || v->tgid != tgid)
		return false;
	barrier();
	__builtin_memcpy(out, v, sizeof(*out));
	barrier();
	return __sync_val_compare_and_swap(&v->task_id, id, 0) == id && out->task_id == id;
}

SEC("usdt")
int BPF_USDT(task_spawn, __u64 id, int type, const char *name)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	if (!is_watched(tgid))
		return 0;
	struct tm_spawn_val *v = spawn_slot(id, tgid);
	if (!v)
		return 0;
	struct task_struct *cur = bpf_get_current_task_btf();
	struct probe_time p = probe_time(ctx, thread_find(cur, tid, true), oncpu_of(tid), now);
	v->task_id = 0;
	barrier();
	v->ts_ns = p.at;
	v->off_ns = p.off;
	v->on_ns = p.on;
	v->tgid = tgid;
	v->spawner_tid = tid;
	v->type = type;
	bpf_probe_read_user_str(v->name, sizeof(v->name), name);
	barrier();
	v->task_id = id;
	return 0;
}

/* Run-queue wait of the task thread between the spawn and the start. All
 * since the thread last blocked or ended a task, when that was after the
 * spawn (the wakeup or creation for this task and any preemption since);
 * otherwise (a busy thread took it from the queue, or a thread that was
 * blocked since before the spawn was woken for it) its latest wait, the one
 * its latest switch-in ended, clipped to after the spawn. */
static __always_inline __u64 spawn_runq(const struct tm_thread *t, const struct tm_oncpu *o,
                                        const struct probe_time *p, __u64 runq_now, __u64 spawn_ns, __u64 latency)
{
	__u64 runq = 0;
	if (t->runq_mark_ns >= spawn_ns) {
		runq = runq_now - p->runq_after - t->runq_mark;
	} else if (o && !p->runq_after && o->since > spawn_ns && runq_now >= o->runq_at_in) {
		__u64 last = runq_now - o->runq_at_in, end = o->since;
		__u64 start = end > last ? end - last : 0;
		runq = end - (start > spawn_ns ? start : spawn_ns);
	}
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
	struct task_struct *cur = bpf_get_current_task_btf();
	struct tm_thread *t = thread_get(cur, tid, true);
	if (!t)
		return 0;
	struct tm_oncpu *o = oncpu_of(tid);
	struct probe_time p = probe_time(ctx, t, o, now);
	__u64 runq_now = RUNQ_OF(cur);
	now = p.at;
	struct tm_spawn_val spawn;
	struct tm_spawn_val *sv = spawn_take(id, tgid, &spawn) ? &spawn : NULL;
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
			e->runq_ns = spawn_runq(t, o, &p, runq_now, sv->ts_ns, e->latency_ns);
			if (BPF_CORE_READ(cur, start_time) >= sv->ts_ns)
				e->flags |= TM_EVF_NEW_THREAD;
		} else {
			e->flags |= TM_EVF_NO_SPAWN;
		}
		ev_submit(e, sizeof(*e));
	}
	if (!sv)
		count(TM_STAT_SPAWN_MISSED);
	/* A restarted critical task starts again under its id: totals go on. */
	if (t->task_id == id)
		return 0;
	t->task_id = id;
	t->task_start_ns = now;
	t->base_oncpu = oncpu_now(o, cur, now);
	t->base_runq = runq_now - p.runq_after;
	t->base_nvcsw = BPF_CORE_READ(cur, nvcsw);
	t->base_nivcsw = BPF_CORE_READ(cur, nivcsw);
	t->base_migrations = MIGRATIONS_OF(cur);
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
	struct task_struct *cur = bpf_get_current_task_btf();
	struct tm_thread *t = thread_find(cur, tid, true);
	struct tm_oncpu *o = oncpu_of(tid);
	struct probe_time p = probe_time(ctx, t, o, now);
	now = p.at;
	struct tm_ev_task_end *e = EV_RESERVE(struct tm_ev_task_end, TM_EV_TASK_END);
	if (e) {
		fill_hdr(&e->h, now, tgid, tid, id);
		e->status = status;
		e->rc = rc;
	}
	if (t && t->task_id == id) {
		if (e)
			task_totals(e, t, o, cur, now, p.runq_after);
		t->task_id = 0;
		t->runq_mark = RUNQ_OF(cur);
		t->runq_mark_ns = now;
	} else {
		/* Ended where it never ran: a spawn whose thread could not be had
		 * ends in the spawning thread. Or it started before the watch. */
		struct tm_spawn_val *v = spawn_slot(id, tgid);
		bool pending = v && v->task_id == id && v->tgid == tgid &&
		               __sync_val_compare_and_swap(&v->task_id, id, 0) == id;
		if (e)
			e->flags = pending ? TM_EVF_NOT_STARTED : TM_EVF_PARTIAL;
	}
	if (e)
		ev_submit(e, sizeof(*e));
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
	ev_submit(e, sizeof(*e));
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
