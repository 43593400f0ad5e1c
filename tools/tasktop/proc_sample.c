/* /proc figures for running tasks, workloads and the collector (see proc_sample.h). */
#include "proc_sample.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads a small /proc file into buf (NUL-terminated) with one read: these
 * files hand over their whole text at once when the buffer holds it, and a
 * second read only to see the end would cost a system call per task. Length
 * or negative errno. dirfd: AT_FDCWD or a directory the path is relative to. */
static ssize_t read_small_at(int dirfd, const char *path, char *buf, size_t cap)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n;
	do
		n = read(fd, buf, cap - 1);
	while (n < 0 && errno == EINTR);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return n;
}

static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	return read_small_at(AT_FDCWD, path, buf, cap);
}

/* Unsigned decimal at *p, advancing past it and one separator; false when none. */
static bool next_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	while (*s == ' ')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (uint64_t)(*s - '0');
	*out = v;
	*p = s;
	return true;
}

/* A /proc/<pid>/stat field: a signed decimal (tpgid, priority and nice may
 * be negative); negative values read as 0, none of them are used. */
static bool next_field(const char **p, uint64_t *out)
{
	while (**p == ' ')
		(*p)++;
	bool neg = **p == '-';
	if (neg)
		(*p)++;
	if (!next_u64(p, out))
		return false;
	if (neg)
		*out = 0;
	return true;
}

static const char *root_or_default(const char *proc_root)
{
	return proc_root ? proc_root : "/proc";
}

static int parse_schedstat(const char *buf, uint64_t *oncpu_ns, uint64_t *runq_ns, uint64_t *slices)
{
	const char *p = buf;
	if (!next_u64(&p, oncpu_ns) || !next_u64(&p, runq_ns) || !next_u64(&p, slices))
		return -EBADMSG;
	return 0;
}

/* A thread's schedstat relative to its process's task directory. */
static int schedstat_at(int taskdir, pid_t tid, uint64_t *oncpu_ns, uint64_t *runq_ns, uint64_t *slices)
{
	char path[32], buf[128];
	snprintf(path, sizeof(path), "%d/schedstat", (int)tid);
	ssize_t n = read_small_at(taskdir, path, buf, sizeof(buf));
	return n < 0 ? (int)n : parse_schedstat(buf, oncpu_ns, runq_ns, slices);
}

int tt_proc_read_schedstat(const char *proc_root, pid_t pid, pid_t tid, uint64_t *oncpu_ns, uint64_t *runq_ns,
                           uint64_t *slices)
{
	char path[128], buf[128];
	snprintf(path, sizeof(path), "%s/%d/task/%d/schedstat", root_or_default(proc_root), (int)pid, (int)tid);
	ssize_t n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	return parse_schedstat(buf, oncpu_ns, runq_ns, slices);
}

static bool field_u64(const char *text, const char *key, uint64_t *out)
{
	const char *p = strstr(text, key);
	if (!p)
		return false;
	p += strlen(key);
	while (*p == '\t' || *p == ' ')
		p++;
	return next_u64(&p, out);
}

static int parse_switches(const char *buf, uint64_t *voluntary, uint64_t *involuntary)
{
	/* "nonvoluntary_ctxt_switches" contains "voluntary_ctxt_switches": match the line start */
	if (!field_u64(buf, "\nvoluntary_ctxt_switches:", voluntary) ||
	    !field_u64(buf, "\nnonvoluntary_ctxt_switches:", involuntary))
		return -EBADMSG;
	return 0;
}

static int switches_at(int taskdir, pid_t tid, uint64_t *voluntary, uint64_t *involuntary)
{
	char path[32], buf[4096];
	snprintf(path, sizeof(path), "%d/status", (int)tid);
	ssize_t n = read_small_at(taskdir, path, buf, sizeof(buf));
	return n < 0 ? (int)n : parse_switches(buf, voluntary, involuntary);
}

int tt_proc_read_switches(const char *proc_root, pid_t pid, pid_t tid, uint64_t *voluntary, uint64_t *involuntary)
{
	char path[128], buf[4096];
	snprintf(path, sizeof(path), "%s/%d/task/%d/status", root_or_default(proc_root), (int)pid, (int)tid);
	ssize_t n = read_small(path, buf, sizeof(buf));
	return n < 0 ? (int)n : parse_switches(buf, voluntary, involuntary);
}

int tt_proc_read_stat(const char *proc_root, pid_t pid, struct tt_proc_stat *out)
{
	char path[128], buf[1024];
	snprintf(path, sizeof(path), "%s/%d/stat", root_or_default(proc_root), (int)pid);
	ssize_t n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	/* comm may hold spaces and parentheses: the fields start after the last ')' */
	const char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EBADMSG;
	p += 2;
	uint64_t f[25] = { 0 };   /* f[k] = field k+3 (state is field 3) */
	while (*p && *p != ' ')
		p++;                  /* state */
	for (int k = 1; k < 22; k++)
		if (!next_field(&p, &f[k]))
			return -EBADMSG;
	/* fields: 14 utime, 15 stime, 20 num_threads, 22 starttime, 24 rss (pages) */
	static long tck, page;
	if (!tck) {
		tck = sysconf(_SC_CLK_TCK);
		page = sysconf(_SC_PAGESIZE);
	}
	uint64_t ticks = f[14 - 3] + f[15 - 3];
	out->cpu_ns = tck > 0 ? ticks * (1000000000ull / (uint64_t)tck) : 0;
	out->threads = f[20 - 3];
	out->start_ticks = f[22 - 3];
	out->rss_bytes = f[24 - 3] * (uint64_t)(page > 0 ? page : 4096);
	return 0;
}

/* ---- the sample ----------------------------------------------------------- */

struct prev_lookup {
	const struct tt_model *m;
	size_t hint;   /* prev and cur list tasks in the same order, mostly */
};

static const struct tt_task *find_prev(struct prev_lookup *pl, const struct tt_task *t)
{
	const struct tt_model *m = pl->m;
	if (!m || !m->ntasks)
		return NULL;
	for (size_t k = 0; k < m->ntasks; k++) {
		size_t i = (pl->hint + k) % m->ntasks;
		if (m->tasks[i].id == t->id && m->tasks[i].pid == t->pid) {
			pl->hint = i + 1;
			return &m->tasks[i];
		}
		if (k == 64)   /* far off: fall back to the model's lookup */
			break;
	}
	size_t i = tt_model_find_task(m, t->pid, t->id);
	if (i == SIZE_MAX)
		return NULL;
	pl->hint = i + 1;
	return &m->tasks[i];
}

static void sample_task(int taskdir, struct tt_task *t, const struct tt_task *p, uint64_t interval_ns)
{
	struct tt_task_proc *pr = &t->proc;
	*pr = (struct tt_task_proc){ 0 };
	if (schedstat_at(taskdir, (pid_t)t->tid, &pr->oncpu_ns, &pr->runq_ns, &pr->timeslices) < 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pr->read_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	pr->valid = true;
	bool same = p && p->proc.valid && p->tid == t->tid;
	uint64_t dcpu = same && pr->oncpu_ns > p->proc.oncpu_ns ? pr->oncpu_ns - p->proc.oncpu_ns : 0;
	if (same && interval_ns && dcpu * 10 >= interval_ns)
		pr->switches_known =
			switches_at(taskdir, (pid_t)t->tid, &pr->voluntary_switches, &pr->involuntary_switches) == 0;
}

/* /proc/<pid>/task, opened once per workload: each thread's files are then
 * opened relative to it, without walking /proc/<pid> again. */
struct taskdir {
	pid_t pid;
	int fd;
};

static int taskdir_for(struct taskdir *d, const char *root, pid_t pid)
{
	if (d->pid == pid)
		return d->fd;
	if (d->fd >= 0)
		close(d->fd);
	char path[128];
	snprintf(path, sizeof(path), "%s/%d/task", root_or_default(root), (int)pid);
	d->pid = pid;
	d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return d->fd;
}

void tt_proc_sample(const struct tt_model *prev, struct tt_model *cur, const char *proc_root)
{
	struct prev_lookup pl = { .m = prev };
	struct taskdir dir = { .pid = 0, .fd = -1 };
	uint64_t interval = prev && cur->now_ns > prev->now_ns ? cur->now_ns - prev->now_ns : 0;
	for (size_t i = 0; i < cur->ntasks; i++) {
		struct tt_task *t = &cur->tasks[i];
		t->proc = (struct tt_task_proc){ 0 };
		if (t->finished || t->pending || !t->tid)
			continue;
		int fd = taskdir_for(&dir, proc_root, t->pid);
		if (fd < 0)
			continue;
		sample_task(fd, t, find_prev(&pl, t), interval);
		cur->proc_figures |= t->proc.valid;
	}
	if (dir.fd >= 0)
		close(dir.fd);
	for (size_t i = 0; i < cur->nworkloads; i++) {
		struct tt_workload *w = &cur->workloads[i];
		struct tt_proc_stat st;
		if (!w->alive || tt_proc_read_stat(proc_root, w->pid, &st) < 0)
			continue;
		if (w->start_ticks && st.start_ticks != w->start_ticks)
			continue;   /* the pid is another process's now */
		w->proc_known = true;
		w->proc_cpu_ns = st.cpu_ns;
		w->proc_rss_bytes = st.rss_bytes;
		w->proc_threads = st.threads;
	}
	struct tt_collector *c = &cur->collector;
	struct tt_proc_stat st;
	if (c->present && c->pid > 0 && tt_proc_read_stat(proc_root, c->pid, &st) == 0) {
		c->cpu_known = true;
		c->cpu_ns = st.cpu_ns;
		c->rss_bytes = st.rss_bytes;
	}
}
