/* Tracker stats: kernel events merged with the workloads' registries (see merge.h). */
#include "merge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "discover.h"
#include "event_fmt.h"
#include "taskmon_events.h"

#define SYNC_BUDGET_NS  2000000ull         /* registry re-reads per tick stop after this long */
#define EXPIRE_BATCH    512                /* finished tasks dropped per tick */
#define SLOW_EVERY_NS   1000000000ull      /* liveness, stale segments, departed workloads */
#define TYPES_FORCE_NS  100000000ull       /* an unknown type id re-reads the names at most this often */
#define OTHER_TYPE      "(other)"
#define MAX_MESSAGES    1024               /* ring entries read per registry (the library's has 256) */

struct tmd_merge {
	struct tmd_merge_opts o;
	uint64_t now;
	struct tmd_workload **live;    /* sorted by pid */
	size_t nlive, cap_live;
	struct tmd_workload **dead;    /* in the order they went, oldest first */
	size_t ndead;
	struct tmd_machine machine;
	struct tmd_merge_counters c;
	uint64_t tasks_total, task_bytes, last_slow;
	size_t sync_cursor;
	struct tm_shm_type_snapshot *types_buf;   /* [TM_MAX_TYPES]: registry reads */
	struct tm_task_info *tasks_buf;           /* [o.max_tasks] */
	struct tm_shm_message_info *msgs_buf;     /* [MAX_MESSAGES], allocated on first need */
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	uint64_t s;
	return __builtin_add_overflow(a, b, &s) ? UINT64_MAX : s;
}

/* Bytes from a workload or the kernel, made printable ASCII and NUL-terminated. */
static void printable(char *dst, size_t cap, const char *src, size_t src_len)
{
	size_t n = strnlen(src, src_len);
	if (n > cap - 1)
		n = cap - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[i] = ch >= 0x20 && ch <= 0x7e ? (char)ch : '?';
	}
	memset(dst + n, 0, cap - n);
}

/* ---- histograms and kernel figures ------------------------------------------ */

uint64_t tmd_hist_quantile(const struct tmd_hist *h, double q)
{
	return h && h->count ? tm_hist_quantile(h->bucket, h->max_ns, q) : 0;
}

/* The histogram in *slot, allocated on first use within the byte budget. */
static struct tmd_hist *hist_get(struct tmd_merge *m, struct tmd_kfig *k, struct tmd_hist **slot)
{
	if (*slot || k->no_hist)
		return *slot;
	if (m->c.hist_bytes + sizeof(struct tmd_hist) > m->o.hist_bytes ||
	    !(*slot = calloc(1, sizeof(struct tmd_hist)))) {
		k->no_hist = true;
		m->c.hist_refused++;
		return NULL;
	}
	m->c.hist_bytes += sizeof(struct tmd_hist);
	return *slot;
}

static void hist_add(struct tmd_hist *h, uint64_t v)
{
	if (!h)
		return;
	h->count++;
	h->sum_ns = sat_add(h->sum_ns, v);
	if (v > h->max_ns)
		h->max_ns = v;
	h->bucket[tm_hist_bucket(v)]++;
}

static void kfig_free(struct tmd_merge *m, struct tmd_kfig *k)
{
	struct tmd_hist **h[3] = { &k->latency, &k->run, &k->runq };
	for (int i = 0; i < 3; i++) {
		if (*h[i]) {
			free(*h[i]);
			*h[i] = NULL;
			m->c.hist_bytes -= sizeof(struct tmd_hist);
		}
	}
}

static void kfig_start(struct tmd_merge *m, struct tmd_kfig *k, const struct tm_ev_task_start *e)
{
	k->started++;
	if (e->flags & TM_EVF_NO_SPAWN)
		return;
	k->spawns_seen++;
	k->spawn_runq_ns = sat_add(k->spawn_runq_ns, e->runq_ns);
	hist_add(hist_get(m, k, &k->latency), e->latency_ns);
}

static void kfig_end(struct tmd_merge *m, struct tmd_kfig *k, const struct tm_ev_task_end *e)
{
	if (e->flags & (TM_EVF_NOT_STARTED | TM_EVF_PARTIAL)) {
		k->partial++;
		return;
	}
	k->ended++;
	k->oncpu_ns = sat_add(k->oncpu_ns, e->oncpu_ns);
	k->runq_ns = sat_add(k->runq_ns, e->runq_ns);
	k->blocked_ns = sat_add(k->blocked_ns, e->blocked_ns);
	k->nvcsw = sat_add(k->nvcsw, e->nvcsw);
	k->nivcsw = sat_add(k->nivcsw, e->nivcsw);
	k->migrations = sat_add(k->migrations, e->migrations);
	hist_add(hist_get(m, k, &k->run), e->oncpu_ns);
	hist_add(hist_get(m, k, &k->runq), e->runq_ns);
}

/* ---- types ------------------------------------------------------------------ */

const char *tmd_workload_type_name(const struct tmd_workload *w, unsigned type)
{
	if (type >= TM_MAX_TYPES)
		return "";
	if (w->types[type].name[0])
		return w->types[type].name;
	const char *builtin = type < TM_BUILTIN_TYPES ? tm_type_name((int)type) : NULL;
	return builtin ? builtin : "";
}

/* The machine-wide type of that name, made when new; past TMD_MAX_MTYPES
 * names, "(other)". */
static int mtype_by_name(struct tmd_merge *m, const char *name)
{
	struct tmd_machine *mc = &m->machine;
	for (size_t i = 0; i < mc->ntypes; i++)
		if (strcmp(mc->types[i].name, name) == 0)
			return (int)i;
	if (mc->ntypes >= TMD_MAX_MTYPES) {
		name = OTHER_TYPE;
		if (mc->ntypes == TMD_MAX_MTYPES + 1)
			return TMD_MAX_MTYPES;
	}
	struct tmd_mtype *t = &mc->types[mc->ntypes];
	snprintf(t->name, sizeof(t->name), "%s", name);
	return (int)mc->ntypes++;
}

static void sync_types(struct tmd_merge *m, struct tmd_workload *w);

/* Resolves a workload type's machine-wide type; -1 while its name is unknown. */
static int mtype_of(struct tmd_merge *m, struct tmd_workload *w, unsigned type)
{
	struct tmd_wtype *wt = &w->types[type];
	if (wt->mtype >= 0)
		return wt->mtype;
	const char *name = tmd_workload_type_name(w, type);
	if (!*name && w->reader && m->now - w->types_forced_ns >= TYPES_FORCE_NS) {
		/* Registered since the last read: look again, but not for every event. */
		w->types_forced_ns = m->now;
		sync_types(m, w);
		name = tmd_workload_type_name(w, type);
	}
	if (!*name)
		return -1;
	wt->mtype = (int16_t)mtype_by_name(m, name);
	return wt->mtype;
}

/* The figures an event counts in: machine, workload, its type, the type's
 * machine-wide name. */
static size_t levels(struct tmd_merge *m, struct tmd_workload *w, unsigned type, struct tmd_kfig *out[4])
{
	size_t n = 0;
	out[n++] = &m->machine.k;
	if (!w)
		return n;
	out[n++] = &w->k;
	if (type >= TM_MAX_TYPES) {
		w->untyped_events++;
		return n;
	}
	out[n++] = &w->types[type].k;
	int mt = mtype_of(m, w, type);
	if (mt >= 0)
		out[n++] = &m->machine.types[mt].k;
	return n;
}

/* ---- task records ------------------------------------------------------------ */

static uint32_t hash_id(uint64_t id, uint32_t mask)
{
	return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

/* Position of id in the index, or of the empty entry that ends its probe. */
static uint32_t index_pos(const struct tmd_workload *w, uint64_t id)
{
	uint32_t i = hash_id(id, w->index_mask);
	while (w->index[i] && w->tasks[w->index[i] - 1].id != id)
		i = (i + 1) & w->index_mask;
	return i;
}

static struct tmd_task *task_find(const struct tmd_workload *w, uint64_t id)
{
	if (!w->index || id == 0)
		return NULL;
	uint32_t v = w->index[index_pos(w, id)];
	return v ? &w->tasks[v - 1] : NULL;
}

/* Removal with backward shift: later entries of the probe move up, so no tombstones. */
static void index_del(struct tmd_workload *w, uint64_t id)
{
	uint32_t mask = w->index_mask, i = index_pos(w, id), j = i;
	if (!w->index[i])
		return;
	w->index[i] = 0;
	for (;;) {
		j = (j + 1) & mask;
		if (!w->index[j])
			return;
		uint32_t home = hash_id(w->tasks[w->index[j] - 1].id, mask);
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			w->index[i] = w->index[j];
			w->index[j] = 0;
			i = j;
		}
	}
}

static int tasks_grow(struct tmd_merge *m, struct tmd_workload *w)
{
	uint32_t cap = w->task_cap ? w->task_cap * 2 : 16;
	if (cap > m->o.max_tasks)
		cap = m->o.max_tasks;
	if (cap <= w->task_cap)
		return -ENOSPC;
	uint32_t isz = 1;
	while (isz < 2 * cap)
		isz <<= 1;
	uint32_t *idx = calloc(isz, sizeof(*idx));
	struct tmd_task *t = idx ? realloc(w->tasks, cap * sizeof(*t)) : NULL;
	if (!t) {
		free(idx);
		return -ENOMEM;
	}
	memset(t + w->task_cap, 0, (cap - w->task_cap) * sizeof(*t));
	m->task_bytes += (cap - w->task_cap) * sizeof(*t) + (isz - (w->index ? w->index_mask + 1 : 0)) * sizeof(*idx);
	for (uint32_t i = cap; i-- > w->task_cap;) {
		t[i].next = w->free_head;
		w->free_head = i + 1;
	}
	w->tasks = t;
	w->task_cap = cap;
	free(w->index);
	w->index = idx;
	w->index_mask = isz - 1;
	for (uint32_t s = 0; s < cap; s++)
		if (t[s].id)
			w->index[index_pos(w, t[s].id)] = s + 1;
	return 0;
}

static void fin_link(struct tmd_workload *w, struct tmd_task *t, uint64_t now)
{
	uint32_t s = (uint32_t)(t - w->tasks) + 1;
	t->flags |= TMD_T_FINISHED;
	t->done_at = now;
	t->next = 0;
	t->prev = w->fin_tail;
	if (w->fin_tail)
		w->tasks[w->fin_tail - 1].next = s;
	else
		w->fin_head = s;
	w->fin_tail = s;
}

static void fin_unlink(struct tmd_workload *w, struct tmd_task *t)
{
	if (!(t->flags & TMD_T_FINISHED))
		return;
	if (t->prev)
		w->tasks[t->prev - 1].next = t->next;
	else
		w->fin_head = t->next;
	if (t->next)
		w->tasks[t->next - 1].prev = t->prev;
	else
		w->fin_tail = t->prev;
	t->prev = t->next = 0;
	t->flags &= (uint8_t)~TMD_T_FINISHED;
}

/* ---- what few tasks have: messages, restart history ---------------------------- */

static struct tmd_task_extra *extra_get(struct tmd_merge *m, struct tmd_task *t)
{
	if (!t->extra && (t->extra = calloc(1, sizeof(*t->extra))))
		m->task_bytes += sizeof(*t->extra);
	return t->extra;
}

static void extra_free(struct tmd_merge *m, struct tmd_task *t)
{
	if (!t->extra)
		return;
	if (t->extra->message)
		m->task_bytes -= strlen(t->extra->message) + 1;
	free(t->extra->message);
	free(t->extra);
	m->task_bytes -= sizeof(*t->extra);
	t->extra = NULL;
}

static void note_restart(struct tmd_merge *m, struct tmd_task *t, const struct tm_ev_task_restart *e)
{
	struct tmd_task_extra *x = extra_get(m, t);
	if (!x)
		return;
	x->restart_events++;
	x->message_looked = false;   /* the incarnation that ended may have panicked: look at the next read */
	if (x->nrestarts == TMD_RESTART_HIST) {
		memmove(x->restarts, x->restarts + 1, (TMD_RESTART_HIST - 1) * sizeof(x->restarts[0]));
		x->nrestarts--;
	}
	x->restarts[x->nrestarts++] = (struct tmd_restart){ .at_ns = e->h.ts_ns, .delay_ms = e->delay_ms,
	                                                    .attempt = e->attempt };
}

static void set_message(struct tmd_merge *m, struct tmd_task *t, const struct tm_shm_message_info *mi)
{
	struct tmd_task_extra *x = extra_get(m, t);
	if (!x)
		return;
	x->message_looked = true;
	if (!mi)
		return;
	char text[TM_SHM_MESSAGE_TEXT];
	printable(text, sizeof(text), mi->text, sizeof(mi->text));
	char *copy = strdup(text);
	if (!copy)
		return;
	if (x->message)
		m->task_bytes -= strlen(x->message) + 1;
	free(x->message);
	x->message = copy;
	x->message_kind = (uint8_t)mi->kind;
	m->task_bytes += strlen(copy) + 1;
}

static void task_drop(struct tmd_merge *m, struct tmd_workload *w, struct tmd_task *t)
{
	extra_free(m, t);
	fin_unlink(w, t);
	index_del(w, t->id);
	memset(t, 0, sizeof(*t));
	t->next = w->free_head;
	w->free_head = (uint32_t)(t - w->tasks) + 1;
	w->task_count--;
	m->tasks_total--;
}

/* A new record, making room by dropping the oldest finished task when full. */
static struct tmd_task *task_new(struct tmd_merge *m, struct tmd_workload *w, uint64_t id)
{
	if (id == 0)
		return NULL;
	if (w->task_count >= m->o.max_tasks || m->tasks_total >= m->o.max_tasks_total) {
		if (!w->fin_head)
			goto dropped;
		task_drop(m, w, &w->tasks[w->fin_head - 1]);
		m->c.tasks_evicted++;
	}
	if (!w->free_head && tasks_grow(m, w) < 0)
		goto dropped;
	uint32_t s = w->free_head - 1;
	struct tmd_task *t = &w->tasks[s];
	w->free_head = t->next;
	memset(t, 0, sizeof(*t));
	t->id = id;
	t->status = TMD_STATUS_UNKNOWN;
	t->type = TMD_TYPE_UNKNOWN;
	w->index[index_pos(w, id)] = s + 1;
	w->task_count++;
	m->tasks_total++;
	return t;
dropped:
	w->tasks_dropped++;
	m->c.tasks_dropped++;
	return NULL;
}

static struct tmd_task *task_get(struct tmd_merge *m, struct tmd_workload *w, uint64_t id)
{
	if (!w)
		return NULL;
	struct tmd_task *t = task_find(w, id);
	return t ? t : task_new(m, w, id);
}

/* ---- workloads ------------------------------------------------------------------ */

static size_t live_pos(const struct tmd_merge *m, pid_t pid)
{
	size_t lo = 0, hi = m->nlive;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->live[mid]->pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct tmd_workload *find_live(const struct tmd_merge *m, pid_t pid)
{
	size_t i = live_pos(m, pid);
	return i < m->nlive && m->live[i]->pid == pid ? m->live[i] : NULL;
}

static struct tmd_workload *find_dead(const struct tmd_merge *m, pid_t pid)
{
	for (size_t i = m->ndead; i-- > 0;)
		if (m->dead[i]->pid == pid)
			return m->dead[i];
	return NULL;
}

bool tmd_merge_follows(const struct tmd_merge *m, pid_t pid)
{
	return find_live(m, pid) != NULL;
}

static int proc_uid(pid_t pid, uid_t *uid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) != 0)
		return -ESRCH;
	*uid = st.st_uid;
	return 0;
}

static void proc_comm(pid_t pid, char comm[16])
{
	char path[64], buf[64] = "";
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	buf[strcspn(buf, "\n")] = '\0';
	printable(comm, 16, buf, sizeof(buf));
}

/* A segment in /dev/shm names a pid; it is taken as that process's only
 * when the same user owns both, it validates, and it is not stale. */
static void open_registry(struct tmd_workload *w)
{
	char path[64];
	struct stat st;
	tm_shm_reader *r;
	if (tm_shm_open_pid(&r, w->pid) != 0)
		return;
	snprintf(path, sizeof(path), TM_SHM_DIR "/" TM_SHM_PREFIX "%d", (int)w->pid);
	if (stat(path, &st) != 0 || st.st_uid != w->uid || tm_shm_is_stale(r)) {
		tm_shm_close(r);
		return;
	}
	w->reader = r;
	w->has_registry = true;
	printable(w->comm, sizeof(w->comm), tm_shm_comm(r), 16);
}

static void sync_types(struct tmd_merge *m, struct tmd_workload *w)
{
	int n = tm_shm_read_types(w->reader, m->types_buf, TM_MAX_TYPES);
	if (n < 0) {
		w->registry_errors++;
		return;
	}
	for (int i = 0; i < n; i++) {
		const struct tm_shm_type_snapshot *s = &m->types_buf[i];
		if (s->id < 0 || s->id >= TM_MAX_TYPES)
			continue;
		struct tmd_wtype *wt = &w->types[s->id];
		char name[TM_NAME_MAX];
		printable(name, sizeof(name), s->name, sizeof(s->name));
		if (strcmp(wt->name, name) != 0) {
			memcpy(wt->name, name, sizeof(name));
			wt->mtype = -1;
		}
		memcpy(wt->counters, s->counters, sizeof(s->counters));
		wt->counters[TMD_C_TRACE_SKIPPED] = s->trace_skipped;
		wt->lib_latency_count = s->latency_count;
		wt->lib_p50_ns = tm_hist_quantile(s->hist, s->latency_max_ns, 0.50);
		wt->lib_p95_ns = tm_hist_quantile(s->hist, s->latency_max_ns, 0.95);
		wt->lib_p99_ns = tm_hist_quantile(s->hist, s->latency_max_ns, 0.99);
		wt->lib_max_ns = s->latency_max_ns;
		if (wt->name[0])
			mtype_of(m, w, (unsigned)s->id);
	}
	w->invalid_records = tm_shm_invalid_records(w->reader);
}

/* Merges one registry record; true when the task ended panicked or crashed,
 * or restarted (an incarnation may have panicked), and the message ring was
 * not searched for it since. */
static bool merge_registry_task(struct tmd_merge *m, struct tmd_workload *w, const struct tm_task_info *ti)
{
	bool ended = ti->status != TM_RUNNING;
	struct tmd_task *t = task_find(w, ti->id);
	if (!t) {
		/* Old news is taken only while it is within retention and there is room. */
		if (ended && ((ti->end_ns && ti->end_ns + m->o.retention_ns <= m->now) ||
		              w->task_count >= m->o.max_tasks || m->tasks_total >= m->o.max_tasks_total))
			return false;
		if (!(t = task_new(m, w, ti->id)))
			return false;
	}
	t->flags |= TMD_T_REGISTRY;
	printable(t->name, sizeof(t->name), ti->name, sizeof(ti->name));
	t->type = ti->type >= 0 && ti->type < TM_MAX_TYPES ? (uint16_t)ti->type : TMD_TYPE_UNKNOWN;
	t->status = (int8_t)ti->status;
	t->rc = ti->rc;
	t->restarts = ti->restarts;
	t->spawn_ns = ti->spawn_ns;
	t->start_ns = ti->start_ns;
	t->end_ns = ti->end_ns;
	if (!t->tid && ti->tid > 0)
		t->tid = (uint32_t)ti->tid;
	if (ended && !(t->flags & TMD_T_FINISHED))
		fin_link(w, t, m->now);
	bool may_have = ti->status == TM_PANICKED || ti->status == TM_CRASHED || (t->extra && t->extra->restart_events);
	return may_have && !(t->extra && t->extra->message_looked);
}

static int cmp_msg_task(const void *a, const void *b)
{
	const struct tm_shm_message_info *x = a, *y = b;
	if (x->task_id != y->task_id)
		return x->task_id < y->task_id ? -1 : 1;
	return (x->serial < y->serial) - (x->serial > y->serial);   /* newest first */
}

/* The newest message of id in msgs (sorted by cmp_msg_task), or NULL. */
static const struct tm_shm_message_info *msg_find(const struct tm_shm_message_info *msgs, size_t n, uint64_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (msgs[mid].task_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && msgs[lo].task_id == id ? &msgs[lo] : NULL;
}

/* One read of the ring for every task seen panicked since the last sync. */
static void sync_messages(struct tmd_merge *m, struct tmd_workload *w, const bool *want, int n)
{
	if (!m->msgs_buf && !(m->msgs_buf = calloc(MAX_MESSAGES, sizeof(*m->msgs_buf))))
		return;
	int nm = tm_shm_read_messages(w->reader, m->msgs_buf, MAX_MESSAGES);
	if (nm < 0) {
		w->registry_errors++;
		return;   /* looked for again at the next read */
	}
	qsort(m->msgs_buf, (size_t)nm, sizeof(*m->msgs_buf), cmp_msg_task);
	for (int i = 0; i < n; i++) {
		struct tmd_task *t = want[i] ? task_find(w, m->tasks_buf[i].id) : NULL;
		if (t)
			set_message(m, t, msg_find(m->msgs_buf, (size_t)nm, t->id));
	}
	w->invalid_records = tm_shm_invalid_records(w->reader);
}

static void sync_tasks(struct tmd_merge *m, struct tmd_workload *w)
{
	int n = tm_shm_read_tasks(w->reader, m->tasks_buf, m->o.max_tasks, false);
	if (n < 0) {
		w->registry_errors++;
		return;
	}
	bool *want = NULL;
	for (int i = 0; i < n; i++) {
		if (!m->tasks_buf[i].id || !merge_registry_task(m, w, &m->tasks_buf[i]))
			continue;
		if (!want && !(want = calloc((size_t)n, sizeof(*want))))
			return;
		want[i] = true;
	}
	if (want)
		sync_messages(m, w, want, n);
	free(want);
}

/* The library counters of a workload's current registry go into the
 * machine-wide departed totals: at its end, or when it starts a new registry
 * (tm_shutdown, then tm_init again). Tasks running then are not carried. */
static void fold_departed(struct tmd_merge *m, struct tmd_workload *w)
{
	for (unsigned id = 0; id < TM_MAX_TYPES; id++) {
		struct tmd_wtype *wt = &w->types[id];
		int mt = wt->name[0] ? mtype_of(m, w, id) : -1;
		for (int c = 0; c < TMD_C_COUNT; c++) {
			if (c == TM_C_RUNNING)
				continue;
			m->machine.departed[c] = sat_add(m->machine.departed[c], wt->counters[c]);
			if (mt >= 0)
				m->machine.types[mt].departed[c] = sat_add(m->machine.types[mt].departed[c], wt->counters[c]);
		}
	}
}

/* After tm_shutdown the segment is marked closed; a process that calls
 * tm_init again makes a new one under the same name. */
static void follow_new_registry(struct tmd_merge *m, struct tmd_workload *w)
{
	tm_shm_reader *old = w->reader;
	w->reader = NULL;
	open_registry(w);
	if (!w->reader || tm_shm_is_closed(w->reader)) {
		if (w->reader)
			tm_shm_close(w->reader);
		w->reader = old;
		return;
	}
	fold_departed(m, w);
	for (unsigned id = 0; id < TM_MAX_TYPES; id++)   /* the new registry counts from zero */
		memset(w->types[id].counters, 0, sizeof(w->types[id].counters));
	tm_shm_close(old);
}

static bool still_alive(const struct tmd_workload *w)
{
	unsigned long long ticks;
	return tmd_proc_start(w->pid, &ticks) == 0 && ticks == w->start_ticks;
}

/* Re-reads the registry. `final`: the process is gone, only what the mapping
 * holds counts; otherwise a registry that appeared or was replaced is taken
 * up, but only while the pid is still this process's. */
static void sync_workload(struct tmd_merge *m, struct tmd_workload *w, bool final)
{
	w->synced_ns = m->now;
	if (!final && (!w->reader || tm_shm_is_closed(w->reader)) && still_alive(w)) {
		if (!w->reader)
			open_registry(w);
		else
			follow_new_registry(m, w);
	}
	if (!w->reader)
		return;
	struct tm_stats st;
	sync_types(m, w);
	if (tm_shm_read_stats(w->reader, &st) == 0)
		w->stats = st;
	else
		w->registry_errors++;
	sync_tasks(m, w);
}

int tmd_merge_add(struct tmd_merge *m, pid_t pid, uint64_t now)
{
	unsigned long long ticks;
	m->now = now;
	if (pid <= 0)
		return -EINVAL;
	if (find_live(m, pid))
		return 0;
	if (m->nlive >= m->o.max_workloads) {
		m->c.workloads_refused++;
		return -ENOSPC;
	}
	if (m->nlive == m->cap_live) {
		size_t cap = m->cap_live ? m->cap_live * 2 : 16;
		struct tmd_workload **l = realloc(m->live, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		m->live = l;
		m->cap_live = cap;
	}
	struct tmd_workload *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	if (tmd_proc_start(pid, &ticks) < 0 || proc_uid(pid, &w->uid) < 0) {
		free(w);
		return -ESRCH;
	}
	w->pid = pid;
	w->start_ticks = ticks;
	w->alive = true;
	w->seen_ns = now;
	for (unsigned i = 0; i < TM_MAX_TYPES; i++)
		w->types[i].mtype = -1;
	proc_comm(pid, w->comm);
	size_t at = live_pos(m, pid);
	memmove(&m->live[at + 1], &m->live[at], (m->nlive - at) * sizeof(*m->live));
	m->live[at] = w;
	m->nlive++;
	m->machine.workloads_seen++;
	sync_workload(m, w, false);
	return 0;
}

static void workload_free(struct tmd_merge *m, struct tmd_workload *w)
{
	if (w->reader)
		tm_shm_close(w->reader);
	for (uint32_t s = 0; s < w->task_cap; s++)
		if (w->tasks[s].id)
			m->tasks_total--;
	for (uint32_t s = 0; s < w->task_cap; s++)
		extra_free(m, &w->tasks[s]);
	m->task_bytes -= w->task_cap * sizeof(*w->tasks) + (w->index ? w->index_mask + 1 : 0) * sizeof(*w->index);
	free(w->tasks);
	free(w->index);
	kfig_free(m, &w->k);
	for (unsigned i = 0; i < TM_MAX_TYPES; i++)
		kfig_free(m, &w->types[i].k);
	free(w);
}

static void try_remove_segment(struct tmd_merge *m, struct tmd_workload *w)
{
	int r = tm_shm_remove_stale(w->pid);
	if (r == 0)
		m->c.segments_removed++;
	/* -EBUSY: a zombie not yet reaped, or a new process has the pid (its
	 * segment is not stale): tried again later. Anything else is not ours. */
	if (r != -EBUSY && r != -EAGAIN)
		w->segment_removed = r == 0 || r == -ENOENT;
}

static void drop_dead(struct tmd_merge *m, size_t i)
{
	struct tmd_workload *w = m->dead[i];
	if (!w->segment_removed)
		try_remove_segment(m, w);
	memmove(&m->dead[i], &m->dead[i + 1], (m->ndead - i - 1) * sizeof(*m->dead));
	m->ndead--;
	m->c.workloads_dropped++;
	workload_free(m, w);
}

static void workload_gone(struct tmd_merge *m, size_t live_index)
{
	struct tmd_workload *w = m->live[live_index];
	/* The mapping outlives the file: the final figures are there even when
	 * the workload unlinked its segment at exit. */
	if (w->reader) {
		sync_workload(m, w, true);
		tm_shm_close(w->reader);
		w->reader = NULL;
	}
	fold_departed(m, w);   /* its counters stay on show as its final figures */
	for (uint32_t s = 0; s < w->task_cap; s++) {
		struct tmd_task *t = &w->tasks[s];
		if (t->id && !(t->flags & TMD_T_FINISHED)) {
			t->flags |= TMD_T_EXITED;
			fin_link(w, t, m->now);
		}
	}
	w->alive = false;
	w->gone_ns = m->now;
	m->machine.workloads_gone++;
	try_remove_segment(m, w);
	memmove(&m->live[live_index], &m->live[live_index + 1], (m->nlive - live_index - 1) * sizeof(*m->live));
	m->nlive--;
	m->dead[m->ndead++] = w;
	if (m->ndead > m->o.max_dead)
		drop_dead(m, 0);
}

void tmd_merge_gone(struct tmd_merge *m, pid_t pid, uint64_t now)
{
	m->now = now;
	size_t i = live_pos(m, pid);
	if (i < m->nlive && m->live[i]->pid == pid)
		workload_gone(m, i);
}

/* ---- events ---------------------------------------------------------------------- */

static void on_start(struct tmd_merge *m, struct tmd_workload *w, const struct tm_ev_task_start *e)
{
	bool spawn_seen = !(e->flags & TM_EVF_NO_SPAWN);
	unsigned type = spawn_seen && e->type < TM_MAX_TYPES ? e->type : TMD_TYPE_UNKNOWN;
	struct tmd_task *t = task_get(m, w, e->h.task_id);
	if (t) {
		t->flags |= TMD_T_KSTART;
		t->incarnations++;
		t->tid = e->h.tid;
		if (!t->start_ns)
			t->start_ns = e->h.ts_ns;
		if (spawn_seen && !(t->flags & TMD_T_LATENCY)) {
			t->flags |= TMD_T_LATENCY;
			t->latency_ns = e->latency_ns;
			t->spawn_runq_ns = e->runq_ns;
			if (!t->spawn_ns)
				t->spawn_ns = e->spawn_ns;
			if (!t->name[0])
				printable(t->name, sizeof(t->name), e->name, sizeof(e->name));
			if (t->type == TMD_TYPE_UNKNOWN)
				t->type = (uint16_t)type;
		}
		if (!spawn_seen)
			type = t->type;
		fin_unlink(w, t);   /* a critical task restarted on a new thread */
	}
	struct tmd_kfig *k[4];
	size_t n = levels(m, w, type, k);
	for (size_t i = 0; i < n; i++)
		kfig_start(m, k[i], e);
}

static void on_end(struct tmd_merge *m, struct tmd_workload *w, const struct tm_ev_task_end *e)
{
	struct tmd_task *t = task_get(m, w, e->h.task_id);
	unsigned type = t ? t->type : TMD_TYPE_UNKNOWN;
	if (t) {
		if (e->flags & (TM_EVF_NOT_STARTED | TM_EVF_PARTIAL)) {
			t->flags |= TMD_T_PARTIAL;
		} else {
			t->flags |= TMD_T_KEND;
			t->oncpu_ns = sat_add(t->oncpu_ns, e->oncpu_ns);
			t->runq_ns = sat_add(t->runq_ns, e->runq_ns);
			t->blocked_ns = sat_add(t->blocked_ns, e->blocked_ns);
			t->nvcsw += e->nvcsw;
			t->nivcsw += e->nivcsw;
			t->migrations += e->migrations;
		}
		if (e->flags & TM_EVF_THREAD_EXIT) {
			t->flags |= TMD_T_EXITED;
		} else if (e->status >= 0 && e->status < TM_STATUS_COUNT) {
			/* The registry says the same, and wins at its next read. */
			t->status = (int8_t)e->status;
			t->rc = e->rc;
		}
		if (!t->end_ns)
			t->end_ns = e->h.ts_ns;
		if (!(t->flags & TMD_T_FINISHED))
			fin_link(w, t, m->now);
	}
	struct tmd_kfig *k[4];
	size_t n = levels(m, w, type, k);
	for (size_t i = 0; i < n; i++)
		kfig_end(m, k[i], e);
}

/* The task the registry last showed running on thread tid: a crash record
 * carries no task id when the task was spawned past its spawner's
 * kernel_trace_rate (it fired no probe). Crashes are rare: a scan will do. */
static struct tmd_task *task_on_thread(const struct tmd_workload *w, uint32_t tid)
{
	for (uint32_t i = 0; w->tasks && i < w->task_cap; i++) {
		struct tmd_task *t = &w->tasks[i];
		if (t->id && t->tid == tid && t->start_ns && !t->end_ns)
			return t;
	}
	return NULL;
}

static void on_other(struct tmd_merge *m, struct tmd_workload *w, const void *data)
{
	const struct tm_ev_hdr *h = data;
	if (!w)
		return;
	switch (h->kind) {
	case TM_EV_CRASH: {
		w->crashes++;
		int sig = ((const struct tm_ev_crash *)data)->sig;
		if (sig > 0 && sig < 32)
			w->crash_signals[sig]++;
		struct tmd_task *t = h->task_id ? task_find(w, h->task_id) : task_on_thread(w, h->tid);
		if (t)
			t->flags |= TMD_T_CRASHED;
		break;
	}
	case TM_EV_KILL:
		w->kills++;
		break;
	case TM_EV_TASK_RESTART: {
		w->restarts++;
		struct tmd_task *t = task_get(m, w, h->task_id);
		if (t)
			note_restart(m, t, data);
		break;
	}
	case TM_EV_TASK_GIVEUP:
		w->giveups++;
		break;
	case TM_EV_EXIT: {
		const struct tm_ev_exit *x = data;
		w->exited = true;
		w->exit_code = x->exit_code;
		w->exit_signal = x->sig;
		w->core_dumped = x->core_dumped != 0;
		if (!w->comm[0])
			printable(w->comm, sizeof(w->comm), x->comm, sizeof(x->comm));
		break;
	}
	default:
		break;
	}
}

int tmd_merge_event(struct tmd_merge *m, const void *data, size_t len, uint64_t now)
{
	const struct tm_ev_hdr *h = data;
	m->now = now;
	m->c.events++;
	size_t need = len >= sizeof(*h) ? tmd_event_size(h->kind) : 0;
	if (!need || len < need) {
		m->c.malformed++;
		return -EBADMSG;
	}
	pid_t pid = (pid_t)h->pid;
	struct tmd_workload *w = pid > 0 ? find_live(m, pid) : NULL;
	if (!w && pid > 0 && !(w = find_dead(m, pid)) && tmd_merge_add(m, pid, now) == 0)
		w = find_live(m, pid);
	if (!w)
		m->c.unattributed++;
	if (h->kind == TM_EV_TASK_START)
		on_start(m, w, data);
	else if (h->kind == TM_EV_TASK_END)
		on_end(m, w, data);
	else
		on_other(m, w, data);
	return 0;
}

/* ---- housekeeping ---------------------------------------------------------------- */

static void expire_tasks(struct tmd_merge *m, struct tmd_workload *w, size_t *budget)
{
	while (*budget && w->fin_head) {
		struct tmd_task *t = &w->tasks[w->fin_head - 1];
		if (t->done_at + m->o.retention_ns > m->now)
			return;
		task_drop(m, w, t);
		m->c.tasks_expired++;
		--*budget;
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Re-reads that are due, round robin, within a time budget: a loop turn
 * never stalls on many or large registries. */
static void sync_due(struct tmd_merge *m)
{
	uint64_t t0 = mono_ns();
	size_t k = 0;
	for (; k < m->nlive; k++) {
		struct tmd_workload *w = m->live[(m->sync_cursor + k) % m->nlive];
		if (m->now - w->synced_ns < m->o.sync_interval_ns)
			continue;
		sync_workload(m, w, false);
		if (mono_ns() - t0 >= SYNC_BUDGET_NS) {
			k++;
			break;
		}
	}
	if (m->nlive)
		m->sync_cursor = (m->sync_cursor + k) % m->nlive;
}

size_t tmd_merge_tick(struct tmd_merge *m, uint64_t now, pid_t *gone, size_t cap)
{
	size_t ngone = 0, budget = EXPIRE_BATCH;
	m->now = now;
	if (now - m->last_slow >= SLOW_EVERY_NS) {
		m->last_slow = now;
		for (size_t i = m->nlive; i-- > 0;) {
			if (still_alive(m->live[i]))
				continue;
			if (ngone < cap)
				gone[ngone++] = m->live[i]->pid;
			workload_gone(m, i);
		}
		for (size_t i = 0; i < m->ndead; i++)
			if (!m->dead[i]->segment_removed)
				try_remove_segment(m, m->dead[i]);
		while (m->ndead && m->dead[0]->gone_ns + m->o.retention_ns <= now)
			drop_dead(m, 0);
	}
	sync_due(m);
	for (size_t i = 0; i < m->nlive && budget; i++)
		expire_tasks(m, m->live[i], &budget);
	for (size_t i = 0; i < m->ndead && budget; i++)
		expire_tasks(m, m->dead[i], &budget);
	return ngone;
}

void tmd_merge_refresh(struct tmd_merge *m, uint64_t now, uint64_t max_age_ns)
{
	m->now = now;
	for (size_t i = 0; i < m->nlive; i++)
		if (now - m->live[i]->synced_ns >= max_age_ns)
			sync_workload(m, m->live[i], false);
}

/* ---- reading ------------------------------------------------------------------------ */

const struct tmd_workload *tmd_merge_find_workload(const struct tmd_merge *m, pid_t pid)
{
	const struct tmd_workload *w = find_live(m, pid);
	return w ? w : find_dead(m, pid);
}

const struct tmd_task *tmd_merge_find_task(const struct tmd_merge *m, pid_t pid, uint64_t id)
{
	const struct tmd_workload *w = tmd_merge_find_workload(m, pid);
	return w ? task_find(w, id) : NULL;
}

size_t tmd_merge_workload_count(const struct tmd_merge *m)
{
	return m->nlive + m->ndead;
}

const struct tmd_workload *tmd_merge_workload_at(const struct tmd_merge *m, size_t i)
{
	if (i < m->nlive)
		return m->live[i];
	return i - m->nlive < m->ndead ? m->dead[i - m->nlive] : NULL;
}

const struct tmd_machine *tmd_merge_machine(const struct tmd_merge *m)
{
	return &m->machine;
}

const struct tmd_merge_opts *tmd_merge_options(const struct tmd_merge *m)
{
	return &m->o;
}

void tmd_merge_get_counters(const struct tmd_merge *m, struct tmd_merge_counters *out)
{
	*out = m->c;
	out->tasks_kept = m->tasks_total;
	out->workloads_live = m->nlive;
	out->workloads_dead = m->ndead;
	out->memory_bytes = sizeof(*m) + (m->nlive + m->ndead) * sizeof(struct tmd_workload) +
	                    (m->cap_live + m->o.max_dead + 1) * sizeof(void *) + m->task_bytes + m->c.hist_bytes +
	                    TM_MAX_TYPES * sizeof(*m->types_buf) + m->o.max_tasks * sizeof(*m->tasks_buf) +
	                    (m->msgs_buf ? MAX_MESSAGES * sizeof(*m->msgs_buf) : 0);
}

void tmd_merge_mtype_counters(const struct tmd_merge *m, size_t mt, uint64_t out[TMD_C_COUNT])
{
	memset(out, 0, TMD_C_COUNT * sizeof(*out));
	if (mt >= m->machine.ntypes)
		return;
	memcpy(out, m->machine.types[mt].departed, TMD_C_COUNT * sizeof(*out));
	for (size_t i = 0; i < m->nlive; i++)
		for (unsigned id = 0; id < TM_MAX_TYPES; id++)
			if (m->live[i]->types[id].mtype == (int)mt)
				for (int c = 0; c < TMD_C_COUNT; c++)
					out[c] = sat_add(out[c], m->live[i]->types[id].counters[c]);
}

void tmd_merge_machine_counters(const struct tmd_merge *m, uint64_t out[TMD_C_COUNT])
{
	memcpy(out, m->machine.departed, TMD_C_COUNT * sizeof(*out));
	for (size_t i = 0; i < m->nlive; i++)
		for (unsigned id = 0; id < TM_MAX_TYPES; id++)
			for (int c = 0; c < TMD_C_COUNT; c++)
				out[c] = sat_add(out[c], m->live[i]->types[id].counters[c]);
}

/* ---- life ---------------------------------------------------------------------------- */

int tmd_merge_new(struct tmd_merge **out, const struct tmd_merge_opts *opts)
{
	struct tmd_merge_opts o = { .sz = sizeof(o) };
	if (opts)
		memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	o.sz = sizeof(o);
	if (!o.retention_ns)
		o.retention_ns = 300000000000ull;
	if (!o.max_tasks)
		o.max_tasks = 4096;
	if (!o.max_tasks_total)
		o.max_tasks_total = 65536;
	if (!o.max_workloads)
		o.max_workloads = 1024;
	if (!o.max_dead)
		o.max_dead = 128;
	if (!o.hist_bytes)
		o.hist_bytes = 64ull << 20;
	if (!o.sync_interval_ns)
		o.sync_interval_ns = 1000000000ull;
	if (o.max_tasks > (1u << 24))
		o.max_tasks = 1u << 24;   /* records are indexed by 32-bit positions, index twice as large */
	struct tmd_merge *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->o = o;
	m->dead = calloc(o.max_dead + 1, sizeof(*m->dead));
	m->types_buf = calloc(TM_MAX_TYPES, sizeof(*m->types_buf));
	m->tasks_buf = calloc(o.max_tasks, sizeof(*m->tasks_buf));
	if (!m->dead || !m->types_buf || !m->tasks_buf) {
		tmd_merge_free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void tmd_merge_free(struct tmd_merge *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nlive; i++)
		workload_free(m, m->live[i]);
	for (size_t i = 0; i < m->ndead; i++)
		workload_free(m, m->dead[i]);
	kfig_free(m, &m->machine.k);
	for (size_t i = 0; i < m->machine.ntypes; i++)
		kfig_free(m, &m->machine.types[i].k);
	free(m->live);
	free(m->dead);
	free(m->types_buf);
	free(m->tasks_buf);
	free(m->msgs_buf);
	free(m);
}
