/* taskmond --record: one record per interval, appended to hourly files.
 *
 * The directory format (also read by tools/common/records.c):
 *   DIR/taskmon-YYYYMMDDTHHMMSSZ.jsonl, named by the UTC time of the file's
 *   first record, so that name order is time order. A new file is started
 *   for each collector run, every hour, and when the current one passes
 *   64 MiB (less when --retain SIZE is small). Each line is one record: the
 *   snapshot document plus a "record" key (record.h), the line's last, with
 *   "time_unix_ns" its own last key: a reader finds a record's time in the
 *   line's last bytes without parsing the rest.
 *
 * Crash safety: a record is one write() of the whole line, '\n' included, on
 * an O_APPEND descriptor, then fdatasync(). A collector killed mid-write
 * leaves at most a final line without '\n', which readers ignore; a short
 * write (a full disk) is cut off again with ftruncate() before the next
 * record, and a file reopened after a crash loses its torn tail first, so a
 * torn line is never followed by a good one.
 *
 * Threads: the loop builds the line (it owns the merge); the writer thread
 * does everything that may block on the disk. They share the queue and the
 * stats under one mutex.
 */
#include "record.h"
#include "record_name.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "merge.h"
#include "taskmon_shm.h"

#define QUEUE_MAX        4            /* records waiting for the writer */
#define RETENTION_EVERY  (60ull * 1000000000ull)
#define MIN_ROTATE_BYTES (64ull << 10)
#define NAME_LEN         TM_RECORD_NAME_LEN
#define SEC              1000000000ull

struct item {
	char *line;
	size_t len;
	uint64_t time_unix_ns;
};

struct tmd_recorder {
	char dir[PATH_MAX];
	struct tmd_record_opts o;
	uint64_t next_due, seq;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work, idle;
	struct item queue[QUEUE_MAX];
	size_t qhead, qlen;
	bool busy, stop;
	struct tmd_record_stats st;

	/* The writer thread's alone. */
	int fd;
	char cur_name[NAME_LEN + 1];
	uint64_t file_start_ns;      /* realtime of the file's first record */
	uint64_t good_size;          /* bytes of whole records in the current file */
	bool dirty;                  /* a short write is still to be cut off */
	uint64_t last_retention;     /* monotonic */
	uint64_t lost_while_failing;
};

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t realtime_now(void)
{
	return clock_ns(CLOCK_REALTIME);
}

/* ---- option values ---------------------------------------------------------------- */

/* A plain decimal number (digits and a point: no sign, exponent or hex)
 * and what follows it. */
static int number_prefix(const char *s, double *v, const char **rest)
{
	char *end;
	if (!s || !(*s >= '0' && *s <= '9'))
		return -EINVAL;
	*v = strtod(s, &end);
	if (end != s + strspn(s, "0123456789.") || !(*v >= 0) || *v > 1e15)
		return -EINVAL;
	*rest = end;
	return 0;
}

int tmd_parse_duration(const char *s, bool allow_bare, uint64_t *ns)
{
	static const struct { const char *unit; double ns; } units[] = {
		{ "ms", 1e6 }, { "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 }, { "d", 86400e9 },
	};
	const char *rest;
	double v, scale = 0;
	if (number_prefix(s, &v, &rest) < 0)
		return -EINVAL;
	if (!*rest && allow_bare)
		scale = 1e9;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !scale; i++)
		if (strcmp(rest, units[i].unit) == 0)
			scale = units[i].ns;
	if (!scale || v * scale >= 1e18 || v * scale < 1)
		return -EINVAL;
	*ns = (uint64_t)(v * scale);
	return 0;
}

int tmd_parse_size(const char *s, uint64_t *bytes)
{
	static const char units[] = "KMGT";
	const char *rest, *u;
	double v;
	if (number_prefix(s, &v, &rest) < 0 || !*rest || !(u = strchr(units, *rest)))
		return -EINVAL;
	if (rest[1] && strcmp(rest + 1, "B") != 0 && strcmp(rest + 1, "iB") != 0)
		return -EINVAL;
	double b = v * (double)(1ull << (10 * (u - units + 1)));
	if (b < 1 || b >= 1e18)
		return -EINVAL;
	*bytes = (uint64_t)b;
	return 0;
}

/* ---- the record line ---------------------------------------------------------------- */

struct proc_figures {
	uint64_t rss_bytes, threads, cpu_ns, start_ticks;
};

/* /proc/<pid>/stat (or "self"): fields after the last ')' of the comm. */
static int read_proc_stat(const char *pid, struct proc_figures *f)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	unsigned long long v[22];   /* fields 3..24; field 3 (state) is a letter */
	char *save = NULL, *tok = strtok_r(p + 1, " ", &save);
	for (int i = 0; i < 22; i++, tok = strtok_r(NULL, " ", &save)) {
		if (!tok)
			return -EIO;
		v[i] = i == 0 ? 0 : strtoull(tok, NULL, 10);
	}
	static long tick_hz, page;
	if (!tick_hz) {   /* the same values on every thread: a benign race */
		page = sysconf(_SC_PAGESIZE);
		tick_hz = sysconf(_SC_CLK_TCK);
	}
	f->cpu_ns = (v[11] + v[12]) * (SEC / (uint64_t)(tick_hz > 0 ? tick_hz : 100));
	f->threads = v[17];
	f->start_ticks = v[19];
	f->rss_bytes = v[21] * (uint64_t)(page > 0 ? page : 4096);
	return 0;
}

static json_t *u64(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Live workloads only: a departed one has no process to measure, and one
 * whose pid now names another process (start time differs) is left out. */
static json_t *processes_json(const struct tmd_merge *m)
{
	json_t *a = json_array();
	size_t n = tmd_merge_workload_count(m);
	for (size_t i = 0; i < n && a; i++) {
		const struct tmd_workload *w = tmd_merge_workload_at(m, i);
		struct proc_figures f;
		char pid[24];
		if (!w->alive)
			continue;
		snprintf(pid, sizeof(pid), "%d", (int)w->pid);
		if (read_proc_stat(pid, &f) < 0 || (w->start_ticks && f.start_ticks != w->start_ticks))
			continue;
		json_t *p = json_object();
		json_object_set_new(p, "pid", json_integer(w->pid));
		json_object_set_new(p, "comm", json_string(w->comm));
		json_object_set_new(p, "rss_bytes", u64(f.rss_bytes));
		json_object_set_new(p, "threads", u64(f.threads));
		json_object_set_new(p, "cpu_ns", u64(f.cpu_ns));
		json_array_append_new(a, p);
	}
	return a;
}

/* The non-empty buckets as [smallest value in the bucket (ns), count]: what
 * a reader needs to merge histograms over records and workloads. */
static json_t *buckets_json(const struct tmd_hist *h)
{
	json_t *a = json_array();
	for (unsigned b = 0; b < TM_HIST_BUCKETS && a; b++)
		if (h->bucket[b])
			json_array_append_new(a, json_pack("[Io]", (json_int_t)tm_hist_bucket_low(b), u64(h->bucket[b])));
	return a;
}

/* Per workload and type, the kernel's spawn-latency and run-time
 * histograms (the snapshot gives only their quantiles). */
static json_t *histograms_json(const struct tmd_merge *m)
{
	json_t *a = json_array();
	size_t n = tmd_merge_workload_count(m);
	for (size_t i = 0; i < n && a; i++) {
		const struct tmd_workload *w = tmd_merge_workload_at(m, i);
		for (unsigned t = 0; t < TM_MAX_TYPES; t++) {
			const struct tmd_kfig *k = &w->types[t].k;
			if (!k->latency && !k->run)
				continue;
			json_t *h = json_object();
			json_object_set_new(h, "pid", json_integer(w->pid));
			json_object_set_new(h, "type", json_integer(t));
			json_object_set_new(h, "type_name", json_string(tmd_workload_type_name(w, t)));
			json_object_set_new(h, "spawn_latency", k->latency ? buckets_json(k->latency) : json_array());
			json_object_set_new(h, "run_time", k->run ? buckets_json(k->run) : json_array());
			json_array_append_new(a, h);
		}
	}
	return a;
}

static json_t *record_json(const struct tmd_merge *m, uint64_t seq, uint64_t interval_ns, uint64_t time_unix_ns)
{
	struct proc_figures self = { 0 };
	json_t *r = json_object(), *c = json_object();
	read_proc_stat("self", &self);
	json_object_set_new(c, "rss_bytes", u64(self.rss_bytes));
	json_object_set_new(c, "cpu_ns", u64(self.cpu_ns));
	json_object_set_new(r, "version", json_integer(TMD_RECORD_VERSION));
	json_object_set_new(r, "seq", u64(seq));
	json_object_set_new(r, "interval_ns", u64(interval_ns));
	json_object_set_new(r, "processes", processes_json(m));
	json_object_set_new(r, "collector", c);
	json_object_set_new(r, "histograms", histograms_json(m));
	/* Last of the line: readers index records by the time in their tail. */
	json_object_set_new(r, "time_unix_ns", u64(time_unix_ns));
	return r;
}

char *tmd_record_line(const struct tmd_merge *m, const struct tmd_collector_info *ci, uint64_t now_ns,
                      uint64_t seq, uint64_t interval_ns, uint64_t time_unix_ns, uint32_t max_tasks,
                      size_t *len)
{
	size_t slen;
	char *snap = tmd_snapshot_json(m, ci, TMD_SNAPSHOT_OPTS(.all_workloads = true, .max_tasks = max_tasks),
	                               now_ns, &slen);
	if (!snap)
		return NULL;
	/* The document ends "}\n": the record key goes before that brace. */
	while (slen && (snap[slen - 1] == '\n' || snap[slen - 1] == ' '))
		slen--;
	json_t *rec = record_json(m, seq, interval_ns, time_unix_ns);
	char *tail = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	if (!slen || snap[slen - 1] != '}' || !tail) {
		free(snap);
		free(tail);
		errno = tail ? EPROTO : ENOMEM;
		return NULL;
	}
	size_t tlen = strlen(tail), total = slen - 1 + strlen(",\"record\":") + tlen + 2;
	char *line = realloc(snap, total + 1);
	if (!line) {
		free(snap);
		free(tail);
		errno = ENOMEM;
		return NULL;
	}
	char *p = line + slen - 1;
	p += sprintf(p, ",\"record\":");
	memcpy(p, tail, tlen);
	p += tlen;
	memcpy(p, "}\n", 3);
	free(tail);
	*len = total;
	return line;
}

/* ---- the writer: files --------------------------------------------------------------- */

/* mkdir -p, new directories 0755. */
static int make_dirs(const char *path)
{
	char d[PATH_MAX];
	snprintf(d, sizeof(d), "%s", path);
	for (char *p = d + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(d, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (!c)
			return 0;
	}
}

/* A file left by a collector killed mid-write ends in a torn line: cut it
 * off, so that the next record does not make it a bad one. */
static int cut_torn_tail(int fd, uint64_t *size)
{
	char buf[4096];
	uint64_t end = *size;
	while (end > 0) {
		size_t k = end < sizeof(buf) ? (size_t)end : sizeof(buf);
		if (pread(fd, buf, k, (off_t)(end - k)) != (ssize_t)k)
			return -EIO;
		char *nl = memrchr(buf, '\n', k);
		if (nl) {
			end = end - k + (uint64_t)(nl - buf) + 1;
			break;
		}
		end -= k;
	}
	if (end != *size && ftruncate(fd, (off_t)end) != 0)
		return -errno;
	*size = end;
	return 0;
}

static int open_file(struct tmd_recorder *r, uint64_t unix_ns)
{
	char path[PATH_MAX + NAME_LEN + 2];
	struct stat sb;
	int e = make_dirs(r->dir);
	if (e < 0)
		return e;
	tm_record_file_name(r->cur_name, unix_ns);
	snprintf(path, sizeof(path), "%s/%s", r->dir, r->cur_name);
	/* 0640, as the crash log: a record holds every user's workloads and task
	 * names, which the socket shows a user only for their own. */
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	uint64_t size = fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	if (size && (e = cut_torn_tail(fd, &size)) < 0) {
		close(fd);
		return e;
	}
	r->fd = fd;
	r->good_size = size;
	r->dirty = false;
	r->file_start_ns = unix_ns;
	if (!size) {
		pthread_mutex_lock(&r->lock);
		r->st.files_created++;
		pthread_mutex_unlock(&r->lock);
	}
	return 0;
}

struct rfile {
	char name[NAME_LEN + 1];
	int64_t t;
	uint64_t size;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct rfile *)a)->name, ((const struct rfile *)b)->name);
}

/* The record files of the directory, in name order; -errno. */
static int list_files(const char *dir, struct rfile **out, size_t *n)
{
	DIR *d = opendir(dir);
	size_t cap = 0;
	struct dirent *de;
	struct stat sb;
	*out = NULL;
	*n = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int64_t t = tm_record_name_time(de->d_name);
		if (t < 0 || fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
			continue;
		if (*n == cap) {
			struct rfile *p = realloc(*out, (cap = cap ? cap * 2 : 64) * sizeof(*p));
			if (!p)
				break;
			*out = p;
		}
		struct rfile *f = &(*out)[(*n)++];
		snprintf(f->name, sizeof(f->name), "%s", de->d_name);
		f->t = t;
		f->size = (uint64_t)sb.st_size;
	}
	closedir(d);
	qsort(*out, *n, sizeof(**out), by_name);
	return 0;
}

/* Whole files, oldest first, never the current one: by age, those whose
 * successor began before the cutoff (every record of theirs is older); by
 * size, while the directory holds more than allowed. */
static void apply_retention(struct tmd_recorder *r)
{
	struct rfile *f;
	size_t n;
	uint64_t total = 0, removed = 0;
	if (!r->o.retain_age_ns && !r->o.retain_bytes)
		return;
	if (list_files(r->dir, &f, &n) < 0)
		return;
	uint64_t now = r->o.realtime_ns();
	int64_t cutoff = now > r->o.retain_age_ns ? (int64_t)((now - r->o.retain_age_ns) / SEC) : -1;
	for (size_t i = 0; i < n; i++)
		total += f[i].size;
	for (size_t i = 0; i + 1 < n; i++) {
		if (r->fd >= 0 && strcmp(f[i].name, r->cur_name) == 0)
			break;
		bool old = r->o.retain_age_ns && f[i + 1].t <= cutoff;
		bool over = r->o.retain_bytes && total > r->o.retain_bytes;
		if (!old && !over)
			break;
		char path[PATH_MAX + NAME_LEN + 2];
		snprintf(path, sizeof(path), "%s/%s", r->dir, f[i].name);
		if (unlink(path) == 0 || errno == ENOENT) {
			total -= f[i].size;
			removed++;
		}
	}
	free(f);
	pthread_mutex_lock(&r->lock);
	r->st.files_removed += removed;
	pthread_mutex_unlock(&r->lock);
}

/* An empty file is removed: a full disk retried every interval would
 * otherwise leave one behind each time. */
static void close_file(struct tmd_recorder *r)
{
	if (r->fd < 0)
		return;
	if (r->good_size == 0) {
		char path[PATH_MAX + NAME_LEN + 2];
		snprintf(path, sizeof(path), "%s/%s", r->dir, r->cur_name);
		unlink(path);
	}
	close(r->fd);
	r->fd = -1;
}

/* One record: rotate when due, then one write and a sync. 0 or -errno. */
static int write_item(struct tmd_recorder *r, const struct item *it)
{
	bool new_file = false;
	struct stat sb;
	if (r->fd >= 0 && (r->good_size >= r->o.rotate_bytes || it->time_unix_ns >= r->file_start_ns + r->o.rotate_ns))
		close_file(r);
	/* Removed under us (the directory cleaned by hand): a new file, rather
	 * than records appended where no reader will find them. */
	if (r->fd >= 0 && fstat(r->fd, &sb) == 0 && sb.st_nlink == 0) {
		close(r->fd);
		r->fd = -1;
	}
	if (r->fd < 0) {
		int e = open_file(r, it->time_unix_ns);
		if (e < 0)
			return e;
		new_file = true;
	}
	if (r->dirty) {
		if (ftruncate(r->fd, (off_t)r->good_size) != 0)
			return -errno;
		r->dirty = false;
	}
	ssize_t k = write(r->fd, it->line, it->len);
	if (k != (ssize_t)it->len) {
		int e = k < 0 ? errno : ENOSPC;   /* a short write: the disk filled up */
		if (k > 0 && ftruncate(r->fd, (off_t)r->good_size) != 0)
			r->dirty = true;
		return -e;
	}
	r->good_size += it->len;
	int e = fdatasync(r->fd) != 0 ? -errno : 0;
	if (new_file)
		apply_retention(r);
	return e;
}

static void report(struct tmd_recorder *r, int e, bool was_failing, uint64_t lost)
{
	if (r->o.quiet)
		return;
	if (e < 0 && !was_failing)
		fprintf(stderr, "taskmond: recording to %s stopped: %s; live data is still served, and recording "
		                "resumes when it can write again\n", r->dir, strerror(-e));
	else if (e == 0 && was_failing)
		fprintf(stderr, "taskmond: recording to %s resumed (%" PRIu64 " record%s lost)\n", r->dir, lost,
		        lost == 1 ? "" : "s");
}

static void account(struct tmd_recorder *r, const struct item *it, int e, uint64_t took)
{
	pthread_mutex_lock(&r->lock);
	bool was = r->st.failing;
	uint64_t lost = r->lost_while_failing;
	if (e < 0) {
		r->st.errors++;
		r->st.records_dropped++;
		r->st.last_error = -e;
		r->lost_while_failing++;
	} else {
		r->st.records_written++;
		r->st.bytes_written += it->len;
		r->st.last_write_ns = took;
		r->lost_while_failing = 0;
	}
	r->st.failing = e < 0;
	pthread_mutex_unlock(&r->lock);
	report(r, e, was, lost);
	if (e < 0) {
		close_file(r);   /* reopened (and the directory re-made) at the next record */
		if (e == -ENOSPC || e == -EDQUOT)
			apply_retention(r);   /* room the retention rules would make anyway */
	}
}

static void *writer(void *arg)
{
	struct tmd_recorder *r = arg;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->qlen && !r->stop)
			pthread_cond_wait(&r->work, &r->lock);
		if (!r->qlen)
			break;
		struct item it = r->queue[r->qhead];
		r->qhead = (r->qhead + 1) % QUEUE_MAX;
		r->qlen--;
		r->busy = true;
		pthread_mutex_unlock(&r->lock);

		uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
		int e = write_item(r, &it);
		account(r, &it, e, clock_ns(CLOCK_MONOTONIC) - t0);
		free(it.line);
		if (e == 0 && t0 - r->last_retention >= RETENTION_EVERY) {
			apply_retention(r);
			r->last_retention = t0;
		}

		pthread_mutex_lock(&r->lock);
		r->busy = false;
		pthread_cond_broadcast(&r->idle);
	}
	pthread_mutex_unlock(&r->lock);
	close_file(r);
	return NULL;
}

/* ---- the loop's side ---------------------------------------------------------------- */

int tmd_record_open(struct tmd_recorder **out, const char *dir, const struct tmd_record_opts *opts,
                    char *err, size_t errlen)
{
	struct tmd_recorder *r;
	*out = NULL;
	if (!dir || !*dir || strlen(dir) >= PATH_MAX - NAME_LEN - 2) {
		snprintf(err, errlen, "the record directory must be a path shorter than %d bytes", PATH_MAX - 40);
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->o.sz = sizeof(r->o);
	if (opts)
		memcpy(&r->o, opts, opts->sz < sizeof(r->o) ? opts->sz : sizeof(r->o));
	if (!r->o.interval_ns)
		r->o.interval_ns = 10 * SEC;
	if (r->o.interval_ns < TMD_RECORD_MIN_INTERVAL_NS) {
		snprintf(err, errlen, "the record interval must be at least 10ms");
		free(r);
		return -EINVAL;
	}
	if (!r->o.rotate_ns)
		r->o.rotate_ns = TMD_RECORD_ROTATE_NS;
	if (!r->o.realtime_ns)
		r->o.realtime_ns = realtime_now;
	if (!r->o.rotate_bytes) {
		r->o.rotate_bytes = TMD_RECORD_ROTATE_BYTES;
		if (r->o.retain_bytes && r->o.retain_bytes / 4 < r->o.rotate_bytes)
			r->o.rotate_bytes = r->o.retain_bytes / 4 > MIN_ROTATE_BYTES ? r->o.retain_bytes / 4 : MIN_ROTATE_BYTES;
	}
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	r->fd = -1;
	r->last_retention = clock_ns(CLOCK_MONOTONIC);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->work, NULL);
	pthread_cond_init(&r->idle, NULL);
	int e = pthread_create(&r->thread, NULL, writer, r);
	if (e) {
		snprintf(err, errlen, "cannot start the record writer: %s", strerror(e));
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->work);
		pthread_cond_destroy(&r->idle);
		free(r);
		return -e;
	}
	*out = r;
	return 0;
}

uint64_t tmd_record_due(const struct tmd_recorder *r)
{
	return r->next_due;
}

int tmd_record_tick(struct tmd_recorder *r, const struct tmd_merge *m, const struct tmd_collector_info *ci,
                    uint64_t now, bool force)
{
	if (!force && now < r->next_due)
		return 0;
	/* Next one an interval after this one was due; no burst to catch up. */
	r->next_due = r->next_due && r->next_due + r->o.interval_ns > now ? r->next_due + r->o.interval_ns
	                                                                  : now + r->o.interval_ns;
	struct item it = { .time_unix_ns = r->o.realtime_ns() };
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	it.line = tmd_record_line(m, ci, now, r->seq, r->o.interval_ns, it.time_unix_ns, r->o.max_tasks, &it.len);
	uint64_t took = clock_ns(CLOCK_MONOTONIC) - t0;
	int e = it.line ? 0 : -errno;
	pthread_mutex_lock(&r->lock);
	r->st.records_built++;
	r->st.last_build_ns = took;
	if (took > r->st.max_build_ns)
		r->st.max_build_ns = took;
	if (it.line) {
		r->seq++;
		r->st.last_record_bytes = it.len;
		if (r->qlen == QUEUE_MAX) {
			r->st.records_dropped++;   /* the writer is behind: the newest waits no longer */
			free(it.line);
			e = -EAGAIN;
		} else {
			r->queue[(r->qhead + r->qlen++) % QUEUE_MAX] = it;
			pthread_cond_signal(&r->work);
		}
	} else {
		r->st.records_dropped++;
	}
	pthread_mutex_unlock(&r->lock);
	return e < 0 ? e : 1;
}

int tmd_record_flush(struct tmd_recorder *r, unsigned timeout_ms)
{
	struct timespec dl;
	int e = 0;
	clock_gettime(CLOCK_REALTIME, &dl);
	uint64_t t = (uint64_t)dl.tv_nsec + (uint64_t)timeout_ms * 1000000ull;
	dl.tv_sec += (time_t)(t / SEC);
	dl.tv_nsec = (long)(t % SEC);
	pthread_mutex_lock(&r->lock);
	while ((r->qlen || r->busy) && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&r->idle, &r->lock, &dl);
	bool done = !r->qlen && !r->busy;
	pthread_mutex_unlock(&r->lock);
	return done ? 0 : -ETIMEDOUT;
}

void tmd_record_get_stats(const struct tmd_recorder *r, struct tmd_record_stats *out)
{
	struct tmd_recorder *w = (struct tmd_recorder *)r;   /* the lock, not the figures, changes */
	pthread_mutex_lock(&w->lock);
	*out = r->st;
	pthread_mutex_unlock(&w->lock);
}

void tmd_record_close(struct tmd_recorder *r)
{
	struct timespec dl;
	if (!r)
		return;
	tmd_record_flush(r, 5000);
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->work);
	pthread_mutex_unlock(&r->lock);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	/* A writer stuck in the kernel (a hung network file system) is left
	 * behind with its memory, rather than hanging the collector's exit. */
	if (pthread_timedjoin_np(r->thread, NULL, &dl) != 0) {
		pthread_detach(r->thread);
		return;
	}
	for (size_t i = 0; i < r->qlen; i++)
		free(r->queue[(r->qhead + i) % QUEUE_MAX].line);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->work);
	pthread_cond_destroy(&r->idle);
	free(r);
}
