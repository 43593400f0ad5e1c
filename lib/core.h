/* The library's process-wide state and the interfaces between its parts:
 * registry.c (shared-memory records), pool.c (task threads), task.c (spawn,
 * run, cancel), init.c, stats.c. */
#ifndef TM_CORE_H
#define TM_CORE_H

#include <pthread.h>
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
	char *message;          /* panic message, under g.msg_lock */
};
#define TM__S_CANCEL   0x01u   /* cancellation requested */
#define TM__S_TIMEOUT  0x02u   /* the task saw its deadline pass */
#define TM__S_SLEEPING 0x04u   /* parked in tm_sleep_ms: a cancel must wake it */
#define TM__S_DONE     0x08u   /* the body returned: no cancel lands any more */
#define TM__S_PINNED   0x10u   /* a handle refers to the record: keep it */
#define TM__S_WANTED   0x20u   /* reclaim skipped it while pinned: the unpinner frees it */

#define TM__RECORD_BYTES (sizeof(struct tm_shm_slot) + sizeof(struct tm__ctl))

struct tm_task {                 /* a handle */
	uint64_t id;
	uint32_t slot;
	_Atomic uint32_t done;       /* futex: 0 running, 1 ended */
	_Atomic uint32_t waiters;
	_Atomic uint32_t refs;       /* the caller and the running task */
	uint32_t epoch;              /* tm__g.epoch when made: the records it points at */
	int status, rc;
};

struct tm__lib {
	pthread_mutex_t init_lock;
	_Atomic bool ready;
	_Atomic bool shutting_down;
	uint32_t epoch;               /* bumped by every tm_init that builds a registry */
	struct tm__config cfg;

	/* shared-memory segment */
	char shm_name[64];
	void *map;
	size_t map_size;
	struct tm_shm_header *hdr;
	struct tm_shm_type *types;
	struct tm_shm_slot *slots;
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
	uint64_t deadline_ns;   /* 0 = none */
	uint32_t slot;
	uint32_t stack_default; /* 1 when it may run on a cached thread */
};

/* init.c */
int  tm__ensure_init(void);

/* registry.c */
int  tm__registry_create(void);
void tm__registry_destroy(void);
int  tm__slot_alloc(uint32_t *out);
void tm__slot_publish_spawn(uint32_t s, uint64_t id, int type, const char *name, uint64_t now_ns);
void tm__slot_publish_start(uint32_t s, uint32_t tid, uint64_t start_ns);
void tm__slot_publish_end(uint32_t s, int status, int rc, uint64_t end_ns, uint64_t cpu_ns);
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

/* pool.c */
int  tm__pool_init(const struct tm__config *c);
size_t tm__pool_default_stack(void);
int  tm__pool_submit(const struct tm__desc *d, size_t stack_size);
void tm__pool_stop(void);
void tm__pool_reset_after_fork(void);
/* task.c: runs one task on the calling pool thread */
void tm__run(const struct tm__desc *d);
bool tm__in_task(void);
void tm__task_forget_after_fork(void);

#endif
