/* The library's process-wide state and the interfaces between its parts:
 * registry.c (shared-memory records), pool.c (task threads), task.c (spawn,
 * run, cancel), init.c, stats.c. */
#ifndef TM_CORE_H
#define TM_CORE_H

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "queue.h"
#include "taskmon.h"
#include "taskmon_shm.h"

/* Private part of a task record, beside its public slot. `state` packs the
 * low 32 bits of the task id (high half) with TM__S_* flags (low half), so a
 * cancel aimed at one task can never land on a later task that reuses the
 * slot; the low half doubles as the futex the task sleeps on. */
struct tm__ctl {
	_Atomic uint64_t state;
	uint32_t next;          /* free stack / retire list link: slot index + 1, 0 = none */
	uint32_t unused;
	struct tm__extra *extra;/* panic message or crash details, under g.msg_lock */
};

/* What a task leaves behind beyond its slot: rare, so kept apart. */
struct tm__extra {
	struct tm_crash_info crash;
	bool crashed;
	char message[];
};
#define TM__S_CANCEL   0x01u   /* cancellation requested */
#define TM__S_TIMEOUT  0x02u   /* the task saw its deadline pass */
#define TM__S_SLEEPING 0x04u   /* parked in tm_sleep_ms: a cancel must wake it */
#define TM__S_DONE     0x08u   /* the body returned: no cancel lands any more */
#define TM__S_PINNED   0x10u   /* a handle refers to the record: keep it */
#define TM__S_WANTED   0x20u   /* reclaim skipped it while pinned: the unpinner frees it */
#define TM__S_RESTART  0x40u   /* its group stops this critical task to restart it */
#define TM__S_PARKED   0x80u   /* stopped by its group, waiting to be resumed */

#define TM__RECORD_BYTES (sizeof(struct tm_shm_slot) + sizeof(struct tm__ctl))

struct tm_task {                 /* a handle */
	uint64_t id;
	uint32_t slot;
	uint32_t epoch;              /* tm__g.epoch when made: the records it points at */
	_Atomic uint32_t done;       /* futex: 0 running, 1 ended */
	_Atomic uint32_t waiters;
	_Atomic uint32_t refs;       /* the holders and the running task */
	_Atomic uint32_t holders;    /* the caller, a group: the record stays pinned while any hold it */
	int status, rc;
	bool critical;
	char name[TM_NAME_MAX];
};

/* A critical task's supervision state, owned by whichever thread runs it. */
struct tm__crit {
	struct tm_critical_opts o;   /* normalised: defaults filled in */
	unsigned attempt;            /* restarts since the last reset */
	uint64_t prev_delay_ms;
	uint64_t rng;
	uint64_t restarts;           /* in all */
	uint64_t *times;             /* ring of restart times (ns) within the window */
	unsigned times_cap, times_len, times_head;
};

struct tm__lib {
	pthread_mutex_t init_lock;
	_Atomic bool ready;
	_Atomic bool shutting_down;
	uint32_t epoch;               /* bumped by every tm_init that builds a registry */
	struct tm__config cfg;
	uint64_t trace_cost_ns;       /* 1e9 / cfg.kernel_trace_rate, 0 when it is 0 (trace_budget.c) */

	/* shared-memory segment */
	char shm_name[64];
	void *map;
	size_t map_size;
	struct tm_shm_header *hdr;
	struct tm_shm_type *types;
	struct tm_shm_slot *slots;
	struct tm_shm_message *messages;   /* the ring, TM_SHM_MESSAGES entries */
	struct tm__ctl *ctl;          /* private, anonymous mapping */
	size_t ctl_size;
	uint32_t capacity;

	/* records */
	_Atomic uint64_t free_top;    /* Treiber stack: (tag << 32) | (index + 1) */
	_Atomic uint32_t retired;     /* lock-free push-only stack of ended records */
	pthread_mutex_t reclaim_lock; /* one reclaimer at a time; spawns only trylock */
	uint32_t fifo_head, fifo_tail;/* ended records in end order (reclaimer only) */
	pthread_mutex_t msg_lock;
	pthread_mutex_t type_lock;

	_Atomic uint64_t running_total;
	uint64_t type_timeout_ms[TM_MAX_TYPES];
	uint64_t type_limit[TM_MAX_TYPES];
	size_t type_stack[TM_MAX_TYPES];
};
extern struct tm__lib tm__g;

/* A task waiting for a thread. */
struct tm__desc {
	tm_fn fn;
	void *arg;
	struct tm_task *handle;
	struct tm__crit *crit;  /* critical tasks only */
	tm_group *group;
	uint64_t deadline_ns;   /* 0 = none */
	uint64_t resume_at_ns;  /* a critical task moved to a new thread: restart then */
	uint32_t slot;
	uint32_t member;        /* index in group */
	uint32_t stack_default; /* 1 when it may run on a cached thread */
	uint32_t traced;        /* 1: its probes fire (the spawner's kernel trace budget allowed it) */
};

/* critical.c */
int  tm__crit_new(struct tm__crit **out, const struct tm_critical_opts *o);
void tm__crit_free(struct tm__crit *c);
/* Whether the policy restarts an incarnation that ended so. */
bool tm__crit_wants_restart(const struct tm__crit *c, int status, int rc, void *arg);
/* Applies intensity and backoff to a restart at now_ns after a run of ran_ns:
 * false = give up; true = restart after *delay_ms (attempt number in *attempt). */
bool tm__crit_plan_restart(struct tm__crit *c, uint64_t now_ns, uint64_t ran_ns, uint64_t *delay_ms,
                           unsigned *attempt);

/* spawn.c */
int  tm__spawn_common(tm_task **out, const char *name, tm_fn fn, void *arg,
                      const struct tm_spawn_opts *opts, bool wait_for_group);

/* init.c */
int  tm__ensure_init(void);

/* register.c: tells taskmond (at $TASKMON_SOCKET or the default socket) that
 * this process uses the library, waiting at most 50 ms for its answer. 0 when
 * the collector is watching us; negative errno otherwise, which callers
 * ignore: the library works the same without a collector. */
int  tm__collector_register(void);

/* registry.c */
int  tm__registry_create(void);
void tm__registry_destroy(void);
int  tm__slot_alloc(uint32_t *out);
void tm__slot_publish_spawn(uint32_t s, uint64_t id, int type, const char *name, uint64_t now_ns, uint8_t flags);
void tm__slot_publish_restart(uint32_t s, int rc, uint64_t cpu_ns, uint32_t restarts);
void tm__slot_publish_start(uint32_t s, uint32_t tid, uint64_t start_ns);
void tm__slot_publish_end(uint32_t s, int status, int rc, uint64_t end_ns, uint64_t cpu_ns);
/* Copies the start of a panic message or fault description of the task in
 * slot s into the segment's message ring (TM_SHM_MSG_*). */
void tm__message_publish(uint32_t s, const char *msg, unsigned kind);
void tm__slot_retire(uint32_t s);
void tm__slot_discard(uint32_t s);
void tm__slot_unpin(uint32_t s);
unsigned tm__reclaim(uint64_t now_ns, uint64_t older_than_ns, unsigned max, bool wait);
int  tm__cancel_slot(uint32_t s, uint64_t id);
void tm__count(int type, enum tm_counter c, int64_t delta);
void tm__account_bytes(int64_t records, int64_t bytes);
int  tm__type_add(const char *name, uint64_t limit, uint64_t timeout_ms, size_t stack);
/* Never 0, which is the state of a free slot. */
static inline uint32_t tm__gen(uint64_t id) { return (uint32_t)id ? (uint32_t)id : 1u; }
/* The futex half of a record's state word. */
static inline _Atomic uint32_t *tm__state_word(uint32_t s)
{
	_Atomic uint32_t *w = (_Atomic uint32_t *)&tm__g.ctl[s].state;
	return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? w : w + 1;
}

/* shm_reader.c */
void tm__stats_add_type(struct tm_stats *s, int id, const uint64_t *counters);

/* ---- groups (group.c) and the task primitives they use (task.c) ---------- */
/* Admission under the group's concurrency limit: 0, -EAGAIN when full and
 * !wait, -ECANCELED when the group is being cancelled or freed. */
int  tm__group_enter(tm_group *g, bool wait);
/* Gives back an admission whose spawn then failed. */
void tm__group_leave_unstarted(tm_group *g);
/* Appends a member in spawn order; the group takes over one holder reference
 * of h (see tm__handle_hold). Returns the member index or -ENOMEM. */
int  tm__group_add(tm_group *g, struct tm_task *h);
/* On the task thread when a member has ended for good, before its handle
 * says done: records the result, frees its admission, and applies
 * cancel_on_failure. */
void tm__group_member_ended(tm_group *g, uint32_t member, int status, int rc);
/* On a critical member's thread when it is about to restart: applies the
 * group's strategy to its peers (stops them in reverse spawn order, then
 * resumes the critical ones in spawn order). */
void tm__group_restart_peers(tm_group *g, uint32_t member);

/* Handles shared by several holders (the caller, a group). */
void tm__handle_hold(struct tm_task *h);          /* one more holder */
void tm__handle_put(struct tm_task *h);           /* a holder lets go (as tm_release) */
int  tm__handle_wait(struct tm_task *h, uint64_t deadline_ns);  /* 0 when ended, -ETIMEDOUT */
bool tm__handle_ended(const struct tm_task *h);
void tm__handle_result(const struct tm_task *h, int *status, int *rc, char name[TM_NAME_MAX]);
/* Stopping a peer for a group strategy: a plain task is cancelled; a critical
 * task ends its current incarnation and parks, then tm__peer_resume restarts
 * it at once (a restart, no backoff). -ESRCH when it had already ended. */
int  tm__peer_stop(struct tm_task *h);
void tm__peer_wait_stopped(struct tm_task *h);   /* ended, or parked */
void tm__peer_resume(struct tm_task *h);         /* no-op unless parked */

/* ---- fault containment (contain.c) and what it needs from task.c ---------- */
int  tm__contain_init(void);           /* installs the fault handlers once; 0 or -errno */
bool tm__contain_enabled(void);
int  tm__contain_thread_start(void);   /* on each task thread: an alternate signal stack */
void tm__contain_thread_exit(void);
/* For the fault handler, async-signal-safe: the jump target of the task body
 * running on this thread, or NULL outside a body. */
sigjmp_buf *tm__task_crash_jmp(void);
void tm__task_note_crash(int signo, int code, uint64_t addr, uint64_t ip);
/* Brackets library code that writes caller memory under a lock (see task.c). */
void tm__lib_enter(void);
void tm__lib_leave(void);

/* pool.c */
int  tm__pool_init(const struct tm__config *c);
size_t tm__pool_default_stack(void);
int  tm__pool_submit(const struct tm__desc *d, size_t stack_size);
void tm__pool_stop(void);
void tm__pool_reset_after_fork(void);
/* trace_budget.c: whether a task spawned now by the calling thread fires its
 * probes (kernel_trace_rate); a task that does not is counted with tm__trace_skipped. */
bool tm__trace_admit(uint64_t now_ns);
void tm__trace_skipped(int type);
/* task.c: runs one task on the calling pool thread */
/* Returns false when the thread must not be reused (it ran a contained fault). */
bool tm__run(const struct tm__desc *d);
void tm__finish_handle(struct tm_task *h, int status, int rc);
void tm__put_handle_ref(struct tm_task *h);
struct tm_task *tm__new_handle(uint64_t id, uint32_t slot, const char *name, uint32_t holders);
void tm__unadmit(int type);
bool tm__in_task(void);
void tm__task_forget_after_fork(void);

#endif
