/* The task registry: public records in the shared-memory segment, their
 * private halves, and how records are handed out, published and reclaimed.
 *
 * Slots come from a lock-free stack; ended records go on a push-only stack
 * that the single reclaimer drains into an end-ordered FIFO and frees from the
 * old end, a few at a time, so reclamation never stops the world. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core.h"
#include "futex.h"
#include "internal.h"
#include "proc.h"

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)
#define LD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
/* Release stores keep every field store after the slot's odd sequence store
 * without a separate fence (plain moves on x86). */
#define ST(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* ---- segment ---------------------------------------------------------------- */

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_segment(const char *name, size_t size)
{
	int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		/* Our pid is ours alone, so a segment under it is a dead
		 * predecessor's leftover. */
		shm_unlink(name);
		fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return tm__fail(errno, "cannot create shared-memory segment /dev/shm%s: %s", name, strerror(errno));
	if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)size) < 0) {
		int e = errno;
		close(fd);
		shm_unlink(name);
		return tm__fail(e, "cannot size shared-memory segment /dev/shm%s to %zu bytes: %s", name, size, strerror(e));
	}
	return fd;
}

static void fill_header(struct tm_shm_header *h, size_t types_off, size_t slots_off, size_t msgs_off, size_t total)
{
	pid_t pid = getpid();
	h->version = TM_SHM_VERSION;
	h->header_size = sizeof(*h);
	h->type_size = sizeof(struct tm_shm_type);
	h->slot_size = sizeof(struct tm_shm_slot);
	h->type_count = TM_MAX_TYPES;
	h->hist_buckets = TM_HIST_BUCKETS;
	h->types_offset = types_off;
	h->slots_offset = slots_off;
	h->messages_offset = msgs_off;
	h->message_size = sizeof(struct tm_shm_message);
	h->message_count = TM_SHM_MESSAGES;
	h->total_size = total;
	h->slot_count = tm__g.capacity;
	h->pid = pid;
	if (tm__proc_start_ticks(pid, &h->proc_start_ticks) < 0)
		h->proc_start_ticks = 0;
	h->created_mono_ns = tm__now_ns();
	h->created_real_ns = realtime_ns();
	h->flags = tm__g.cfg.enable_task_metrics ? TM_SHM_F_METRICS : 0;
	h->max_concurrent_total = tm__g.cfg.max_concurrent_total;
	if (tm__proc_comm(pid, h->comm) < 0)
		strcpy(h->comm, "?");
	/* Last, so a reader that opens the file early never sees half a header. */
	__atomic_store_n(&h->magic, TM_SHM_MAGIC, __ATOMIC_RELEASE);
}

int tm__registry_create(void)
{
	struct tm__lib *g = &tm__g;
	g->capacity = (uint32_t)g->cfg.max_tracked_tasks;
	size_t types_off = ALIGN64(sizeof(struct tm_shm_header));
	size_t slots_off = ALIGN64(types_off + TM_MAX_TYPES * sizeof(struct tm_shm_type));
	size_t msgs_off = ALIGN64(slots_off + (size_t)g->capacity * sizeof(struct tm_shm_slot));
	/* A fixed area, not per task: tracker_bytes does not count it. */
	size_t total = msgs_off + TM_SHM_MESSAGES * sizeof(struct tm_shm_message);

	snprintf(g->shm_name, sizeof(g->shm_name), "/" TM_SHM_PREFIX "%d", (int)getpid());
	int fd = open_segment(g->shm_name, total);
	if (fd < 0)
		return fd;
	void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int e = errno;
	close(fd);
	if (map == MAP_FAILED) {
		shm_unlink(g->shm_name);
		return tm__fail(e, "cannot map shared-memory segment: %s", strerror(e));
	}
	g->ctl_size = (size_t)g->capacity * sizeof(struct tm__ctl);
	g->ctl = mmap(NULL, g->ctl_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->ctl == MAP_FAILED) {
		munmap(map, total);
		shm_unlink(g->shm_name);
		return tm__fail(ENOMEM, "cannot reserve %zu bytes for task records", g->ctl_size);
	}
	g->map = map;
	g->map_size = total;
	g->hdr = map;
	g->types = (struct tm_shm_type *)((char *)map + types_off);
	g->slots = (struct tm_shm_slot *)((char *)map + slots_off);
	g->messages = (struct tm_shm_message *)((char *)map + msgs_off);
	fill_header(g->hdr, types_off, slots_off, msgs_off, total);
	atomic_store(&g->free_top, 0);
	atomic_store(&g->retired, 0);
	g->fifo_head = g->fifo_tail = 0;
	return 0;
}

void tm__registry_destroy(void)
{
	struct tm__lib *g = &tm__g;
	if (!g->map)
		return;
	__atomic_fetch_or(&g->hdr->flags, TM_SHM_F_CLOSED, __ATOMIC_RELEASE);
	for (uint64_t i = 0; i < LD(&g->hdr->slots_used); i++)
		free(g->ctl[i].extra);
	shm_unlink(g->shm_name);
	munmap(g->map, g->map_size);
	munmap(g->ctl, g->ctl_size);
	g->map = NULL;
	g->hdr = NULL;
	g->types = NULL;
	g->slots = NULL;
	g->messages = NULL;
	g->ctl = NULL;
}

/* ---- counters ------------------------------------------------------------- */

void tm__count(int type, enum tm_counter c, int64_t delta)
{
	__atomic_fetch_add(&tm__g.types[type].counters[c], (uint64_t)delta, __ATOMIC_RELAXED);
}

void tm__account_bytes(int64_t records, int64_t bytes)
{
	if (records)
		__atomic_fetch_add(&tm__g.hdr->tracked_records, (uint64_t)records, __ATOMIC_RELAXED);
	if (bytes)
		__atomic_fetch_add(&tm__g.hdr->tracker_bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
}

/* ---- types ---------------------------------------------------------------- */

static void write_name(char *dst, const char *src)
{
	uint64_t w[TM_NAME_MAX / 8] = {0};
	memcpy(w, src, strnlen(src, TM_NAME_MAX - 1));
	for (unsigned i = 0; i < TM_NAME_MAX / 8; i++)
		ST((uint64_t *)dst + i, w[i]);
}

int tm__type_add(const char *name, uint64_t limit, uint64_t timeout_ms, size_t stack)
{
	struct tm__lib *g = &tm__g;
	pthread_mutex_lock(&g->type_lock);
	uint64_t n = LD(&g->hdr->types_used);
	for (uint64_t i = 0; i < n; i++) {
		if (strncmp(g->types[i].name, name, TM_NAME_MAX) == 0) {
			pthread_mutex_unlock(&g->type_lock);
			return (int)i;
		}
	}
	if (n >= TM_MAX_TYPES) {
		pthread_mutex_unlock(&g->type_lock);
		return tm__fail(ENOSPC, "all %d task type ids are taken; '%s' cannot be registered", TM_MAX_TYPES, name);
	}
	g->type_limit[n] = limit;
	g->type_timeout_ms[n] = timeout_ms;
	g->type_stack[n] = stack;
	ST(&g->types[n].max_concurrent, limit);
	ST(&g->types[n].default_timeout_ms, timeout_ms);
	write_name(g->types[n].name, name);
	/* Readers look at types below types_used only: publish the name first. */
	__atomic_store_n(&g->hdr->types_used, n + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&g->type_lock);
	return (int)n;
}

/* ---- slot publication under the per-slot sequence counter ------------------- */

static void seq_begin(struct tm_shm_slot *s)
{
	ST(&s->seq, LD(&s->seq) + 1);
}

static void seq_end(struct tm_shm_slot *s)
{
	uint32_t v = LD(&s->seq) + 1;
	/* 0 means "never used" to readers: skip it when the counter wraps. */
	__atomic_store_n(&s->seq, v ? v : 2, __ATOMIC_RELEASE);
}

void tm__slot_publish_spawn(uint32_t i, uint64_t id, int type, const char *name, uint64_t now_ns, uint8_t flags)
{
	struct tm_shm_slot *s = &tm__g.slots[i];
	seq_begin(s);
	ST(&s->id, id);
	ST(&s->tid, 0);
	ST(&s->spawn_ns, now_ns);
	ST(&s->start_ns, 0);
	ST(&s->end_ns, 0);
	ST(&s->cpu_ns, 0);
	ST(&s->rc, 0);
	ST(&s->type, (uint16_t)type);
	ST(&s->status, (uint8_t)TM_RUNNING);
	ST(&s->flags, flags);
	ST(&s->restarts, 0);
	write_name(s->name, name);
	seq_end(s);
}

void tm__slot_publish_start(uint32_t i, uint32_t tid, uint64_t start_ns)
{
	struct tm_shm_slot *s = &tm__g.slots[i];
	seq_begin(s);
	ST(&s->tid, tid);
	ST(&s->start_ns, start_ns);
	ST(&s->flags, (uint8_t)(LD(&s->flags) & ~TM_SLOT_F_BACKOFF));
	seq_end(s);
}

/* Between incarnations of a critical task: its latest run ended so, and it
 * waits out a restart delay (or its group) before the next. */
void tm__slot_publish_restart(uint32_t i, int rc, uint64_t cpu_ns, uint32_t restarts)
{
	struct tm_shm_slot *s = &tm__g.slots[i];
	seq_begin(s);
	ST(&s->rc, (int32_t)rc);
	ST(&s->cpu_ns, cpu_ns);
	ST(&s->restarts, restarts);
	ST(&s->flags, (uint8_t)(LD(&s->flags) | TM_SLOT_F_BACKOFF));
	seq_end(s);
}

void tm__slot_publish_end(uint32_t i, int status, int rc, uint64_t end_ns, uint64_t cpu_ns)
{
	struct tm_shm_slot *s = &tm__g.slots[i];
	uint8_t flags = LD(&s->flags);
	if (atomic_load_explicit(&tm__g.ctl[i].state, memory_order_relaxed) & TM__S_CANCEL)
		flags |= TM_SLOT_F_CANCEL_REQ;
	flags &= (uint8_t)~TM_SLOT_F_BACKOFF;
	if (tm__g.ctl[i].extra)
		flags |= TM_SLOT_F_MESSAGE;
	seq_begin(s);
	ST(&s->end_ns, end_ns);
	ST(&s->cpu_ns, cpu_ns);
	ST(&s->rc, (int32_t)rc);
	ST(&s->flags, flags);
	ST(&s->status, (uint8_t)status);
	seq_end(s);
}

/* ---- the message ring ------------------------------------------------------- */

/* Printable ASCII for readers that refuse anything else: white space becomes
 * a blank, other bytes '?'; a longer message keeps its start and "...". */
static size_t message_text(char out[TM_SHM_MESSAGE_TEXT], const char *msg, bool *cut)
{
	size_t n = strlen(msg);
	*cut = n > TM_SHM_MESSAGE_TEXT - 1;
	if (*cut)
		n = TM_SHM_MESSAGE_TEXT - 4;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)msg[i];
		out[i] = c >= 0x20 && c <= 0x7e ? (char)c : c == '\n' || c == '\t' || c == '\r' ? ' ' : '?';
	}
	if (*cut) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	memset(out + n, 0, TM_SHM_MESSAGE_TEXT - n);
	return n;
}

/* Claims the next entry whose writer is done: two tasks panicking at the
 * same moment on a wrapped ring never share one. */
static struct tm_shm_message *message_claim(uint64_t *serial, uint32_t *seq)
{
	struct tm__lib *g = &tm__g;
	for (unsigned tries = 0; tries < TM_SHM_MESSAGES; tries++) {
		uint64_t n = __atomic_fetch_add(&g->hdr->messages_written, 1, __ATOMIC_RELAXED);
		struct tm_shm_message *e = &g->messages[n % TM_SHM_MESSAGES];
		uint32_t s = LD(&e->seq);
		if (!(s & 1u) && __atomic_compare_exchange_n(&e->seq, &s, s + 1, false, __ATOMIC_ACQ_REL,
		                                             __ATOMIC_RELAXED)) {
			*serial = n;
			*seq = s + 1;
			return e;
		}
	}
	return NULL;
}

void tm__message_publish(uint32_t slot, const char *msg, unsigned kind)
{
	struct tm__lib *g = &tm__g;
	uint64_t words[TM_SHM_MESSAGE_TEXT / 8], serial;
	uint32_t seq;
	bool cut;
	size_t len = message_text((char *)words, msg, &cut);
	struct tm_shm_message *e = message_claim(&serial, &seq);
	if (!e)
		return;   /* every entry busy: the message stays in-process only */
	ST(&e->len, (uint16_t)len);
	ST(&e->kind, (uint8_t)kind);
	ST(&e->flags, (uint8_t)(cut ? TM_SHM_MSG_F_CUT : 0));
	ST(&e->task_id, LD(&g->slots[slot].id));
	ST(&e->serial, serial);
	ST(&e->time_ns, tm__now_ns());
	ST(&e->restarts, LD(&g->slots[slot].restarts));
	for (unsigned i = 0; i < TM_SHM_MESSAGE_TEXT / 8; i++)
		ST((uint64_t *)(void *)e->text + i, words[i]);
	uint32_t v = seq + 1;
	__atomic_store_n(&e->seq, v ? v : 2, __ATOMIC_RELEASE);
}

/* ---- allocation ------------------------------------------------------------- */

static void free_push(uint32_t i)
{
	struct tm__lib *g = &tm__g;
	uint64_t top = atomic_load_explicit(&g->free_top, memory_order_relaxed);
	uint64_t nt;
	do {
		ST(&g->ctl[i].next, (uint32_t)top);
		nt = (((top >> 32) + 1) << 32) | (i + 1);
	} while (!atomic_compare_exchange_weak_explicit(&g->free_top, &top, nt,
	                                                memory_order_release, memory_order_relaxed));
}

static bool free_pop(uint32_t *out)
{
	struct tm__lib *g = &tm__g;
	uint64_t top = atomic_load_explicit(&g->free_top, memory_order_acquire);
	while ((uint32_t)top) {
		uint32_t i = (uint32_t)top - 1;
		/* Stale when another thread popped i meanwhile; the tag makes the CAS fail then. */
		uint64_t nt = (((top >> 32) + 1) << 32) | LD(&g->ctl[i].next);
		if (atomic_compare_exchange_weak_explicit(&g->free_top, &top, nt,
		                                          memory_order_acquire, memory_order_acquire)) {
			*out = i;
			return true;
		}
	}
	return false;
}

static bool fresh_slot(uint32_t *out)
{
	uint64_t *used = &tm__g.hdr->slots_used;
	uint64_t n = LD(used);
	while (n < tm__g.capacity) {
		if (__atomic_compare_exchange_n(used, &n, n + 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			*out = (uint32_t)n;
			return true;
		}
	}
	return false;
}

static bool evict_oldest(void);

int tm__slot_alloc(uint32_t *out)
{
	for (;;) {
		if (free_pop(out) || fresh_slot(out)) {
			tm__account_bytes(1, (int64_t)TM__RECORD_BYTES);
			return 0;
		}
		/* Full: the oldest ended record makes room before its retention is up. */
		if (!evict_oldest())
			return tm__fail(EAGAIN, "all max_tracked_tasks (%u) records are held by running tasks or handles",
			                tm__g.capacity);
	}
}

static void free_record(uint32_t i)
{
	struct tm__lib *g = &tm__g;
	struct tm_shm_slot *s = &g->slots[i];
	if (g->ctl[i].extra) {
		pthread_mutex_lock(&g->msg_lock);
		size_t len = sizeof(struct tm__extra) + strlen(g->ctl[i].extra->message) + 1;
		free(g->ctl[i].extra);
		g->ctl[i].extra = NULL;
		pthread_mutex_unlock(&g->msg_lock);
		tm__account_bytes(0, -(int64_t)len);
	}
	seq_begin(s);
	ST(&s->id, 0);
	seq_end(s);
	atomic_store_explicit(&g->ctl[i].state, 0, memory_order_relaxed);
	tm__account_bytes(-1, -(int64_t)TM__RECORD_BYTES);
	free_push(i);
}

void tm__slot_discard(uint32_t i)
{
	free_record(i);
}

/* ---- ending and reclaiming ---------------------------------------------------- */

void tm__slot_retire(uint32_t i)
{
	struct tm__lib *g = &tm__g;
	uint32_t top = atomic_load_explicit(&g->retired, memory_order_relaxed);
	do
		ST(&g->ctl[i].next, top);
	while (!atomic_compare_exchange_weak_explicit(&g->retired, &top, i + 1,
	                                              memory_order_release, memory_order_relaxed));
}

void tm__slot_unpin(uint32_t i)
{
	uint64_t old = atomic_fetch_and(&tm__g.ctl[i].state, ~(uint64_t)TM__S_PINNED);
	if (old & TM__S_WANTED)
		free_record(i);
}

/* Frees a record unless a handle pins it; then the unpinner frees it. */
static bool release_record(uint32_t i)
{
	_Atomic uint64_t *st = &tm__g.ctl[i].state;
	uint64_t v = atomic_load(st);
	while (v & TM__S_PINNED) {
		if (atomic_compare_exchange_weak(st, &v, v | TM__S_WANTED))
			return false;
	}
	free_record(i);
	return true;
}

/* Moves what ended since the last call onto the FIFO, oldest first. */
static void drain_retired(void)
{
	struct tm__lib *g = &tm__g;
	uint32_t top = atomic_exchange_explicit(&g->retired, 0, memory_order_acquire);
	uint32_t rev = 0;
	while (top) {
		uint32_t next = LD(&g->ctl[top - 1].next);
		ST(&g->ctl[top - 1].next, rev);
		rev = top;
		top = next;
	}
	if (!rev)
		return;
	if (g->fifo_tail)
		ST(&g->ctl[g->fifo_tail - 1].next, rev);
	else
		__atomic_store_n(&g->fifo_head, rev, __ATOMIC_RELAXED);
	while (LD(&g->ctl[rev - 1].next))
		rev = LD(&g->ctl[rev - 1].next);
	g->fifo_tail = rev;
}

static uint32_t fifo_pop(void)
{
	struct tm__lib *g = &tm__g;
	uint32_t i = g->fifo_head - 1;
	__atomic_store_n(&g->fifo_head, LD(&g->ctl[i].next), __ATOMIC_RELAXED);
	if (!g->fifo_head)
		g->fifo_tail = 0;
	return i;
}

static bool evict_oldest(void)
{
	struct tm__lib *g = &tm__g;
	bool freed = false;
	pthread_mutex_lock(&g->reclaim_lock);
	drain_retired();
	while (!freed && g->fifo_head)
		freed = release_record(fifo_pop());
	pthread_mutex_unlock(&g->reclaim_lock);
	return freed;
}

unsigned tm__reclaim(uint64_t now_ns, uint64_t older_than_ns, unsigned max, bool wait)
{
	struct tm__lib *g = &tm__g;
	if (!atomic_load_explicit(&g->retired, memory_order_relaxed) &&
	    !__atomic_load_n(&g->fifo_head, __ATOMIC_RELAXED) && !wait)
		return 0;
	if (wait ? pthread_mutex_lock(&g->reclaim_lock) : pthread_mutex_trylock(&g->reclaim_lock))
		return 0;
	drain_retired();
	unsigned n = 0;
	while (n < max && g->fifo_head) {
		uint32_t i = g->fifo_head - 1;
		if (LD(&g->slots[i].end_ns) + older_than_ns > now_ns)
			break;
		fifo_pop();
		if (release_record(i))
			n++;
	}
	pthread_mutex_unlock(&g->reclaim_lock);
	return n;
}

/* ---- cancellation ------------------------------------------------------------- */

int tm__cancel_slot(uint32_t i, uint64_t id)
{
	_Atomic uint64_t *st = &tm__g.ctl[i].state;
	uint64_t v = atomic_load(st);
	/* A group stopping a critical task sets CANCEL with RESTART; a real
	 * cancel then clears RESTART, so that the task ends instead of parking. */
	do {
		if ((uint32_t)(v >> 32) != tm__gen(id) || (v & TM__S_DONE))
			return -ESRCH;
		if ((v & TM__S_CANCEL) && !(v & TM__S_RESTART))
			return 0;
	} while (!atomic_compare_exchange_weak(st, &v, (v | TM__S_CANCEL) & ~(uint64_t)TM__S_RESTART));
	/* Only the task itself waits on its word; waking one also stops the
	 * kernel's walk of the hash bucket at the first match. */
	if (v & TM__S_SLEEPING)
		tm__futex_wake(tm__state_word(i), 1);
	return 0;
}
