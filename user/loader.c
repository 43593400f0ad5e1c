/* Loading, attaching and feeding the kernel programs (bpf/taskmon.bpf.c). */
#include "loader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "discover.h"
#include "probe.h"
#include "taskmon_events.h"
#include "taskmon.skel.h"

#define N_SCHED  3
#define N_USDT   5
#define PID_LIMIT 4194304u   /* PID_MAX_LIMIT on 64-bit */

static const char *const usdt_names[N_USDT] = {
	"task_spawn", "task_start", "task_end", "task_restart", "task_giveup",
};

/* The USDT probes of one binary (a libtaskmon.so, or an executable linked
 * statically), attached for every process that runs it (pid -1) and shared by
 * the watches of all of them: the BPF side ignores processes that are not
 * watched after one map lookup. Attaching a uprobe costs the kernel an RCU
 * grace period (tens of ms here), more than a registering workload waits, so
 * a binary stays attached when its last watched process is gone, until its
 * slot is needed: the next workload that runs it is watched at once. */
#define MAX_BINARIES 64
struct binary {
	bool used;
	dev_t dev;
	ino_t ino;
	unsigned refs;              /* watches that use it */
	size_t nlinks;
	struct bpf_link *links[N_USDT];
};

struct watch {
	pid_t pid;
	unsigned long long start;   /* its start time, against pid reuse */
	int targets;
	size_t nbins;
	int bins[TMD_MAX_TARGETS];  /* indices into tmd_loader.bins */
};

struct tmd_loader {
	struct taskmon_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *sched_links[N_SCHED];
	bool raw_tp;
	tmd_event_fn fn;
	void *ctx;
	struct watch *w;
	size_t nw, capw;
	uint32_t pid_max;
	struct binary bins[MAX_BINARIES];
};

static _Thread_local char last_error[512];

__attribute__((format(printf, 2, 3)))
static int fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return -err;
}

const char *tmd_loader_error(void)
{
	return last_error;
}

static bool libbpf_verbose;

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !libbpf_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void tmd_libbpf_print(bool verbose)
{
	libbpf_verbose = verbose;
	libbpf_set_print(print_fn);
}

static uint32_t read_pid_max(void)
{
	unsigned v = 0;
	FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
	if (f) {
		if (fscanf(f, "%u", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v == 0 || v > PID_LIMIT ? 32768u : v;
}

/* The tp_btf programs and their raw_tp twins, in the same order. */
static void sched_progs(struct taskmon_bpf *s, bool raw, struct bpf_program *out[N_SCHED])
{
	struct bpf_program *tp[N_SCHED] = { s->progs.sched_switch, s->progs.sched_process_exit,
	                                    s->progs.signal_generate };
	struct bpf_program *rt[N_SCHED] = { s->progs.raw_sched_switch, s->progs.raw_sched_process_exit,
	                                    s->progs.raw_signal_generate };
	memcpy(out, raw ? rt : tp, sizeof(tp));
}

static struct bpf_program *usdt_prog(struct taskmon_bpf *s, int i)
{
	struct bpf_program *p[N_USDT] = { s->progs.task_spawn, s->progs.task_start, s->progs.task_end,
	                                  s->progs.task_restart, s->progs.task_giveup };
	return p[i];
}

static int configure(struct tmd_loader *l, const struct tmd_loader_opts *o)
{
	struct taskmon_bpf *s = l->skel;
	struct bpf_program *unused[N_SCHED];
	sched_progs(s, !l->raw_tp, unused);
	for (int i = 0; i < N_SCHED; i++)
		bpf_program__set_autoload(unused[i], false);
	s->rodata->capture_stacks = !o->no_stacks;
	s->rodata->task_storage = !l->raw_tp;   /* typed task pointers: tp_btf only */
	uint32_t ring = o->ringbuf_bytes ? o->ringbuf_bytes : 8u << 20;
	uint32_t pending = 1024;   /* a power of two: the kernel side masks a hash with it */
	while (pending < (o->max_pending ? o->max_pending : 16384) && pending < (1u << 24))
		pending *= 2;
	s->rodata->spawn_mask = pending - 1;
	s->rodata->wakeup_bytes = o->wake_per_record ? 0 : o->wakeup_bytes ? o->wakeup_bytes : ring / 512;
	int err = bpf_map__set_max_entries(s->maps.watched, l->pid_max);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.threads, l->raw_tp ? (o->max_threads ? o->max_threads : 16384)
		                                                          : 256);   /* unused: task storage instead */
	if (!err)
		err = bpf_map__set_max_entries(s->maps.spawns, pending);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.events, ring);
	/* Every watched process takes a few USDT specs per probe. */
	if (!err)
		err = bpf_map__set_max_entries(s->maps.__bpf_usdt_specs, 8192);
	return err ? fail(-err, "cannot size the maps: %s", strerror(-err)) : 0;
}

static int attach_sched(struct tmd_loader *l)
{
	struct bpf_program *p[N_SCHED];
	sched_progs(l->skel, l->raw_tp, p);
	for (int i = 0; i < N_SCHED; i++) {
		l->sched_links[i] = bpf_program__attach(p[i]);
		if (!l->sched_links[i]) {
			int err = errno;
			return fail(err, "cannot attach %s: %s", bpf_program__name(p[i]), strerror(err));
		}
	}
	return 0;
}

static int on_sample(void *ctx, void *data, size_t len)
{
	struct tmd_loader *l = ctx;
	return l->fn ? l->fn(l->ctx, data, len) : 0;
}

int tmd_loader_open(struct tmd_loader **out, const struct tmd_loader_opts *opts, tmd_event_fn fn, void *ctx)
{
	struct tmd_loader_opts o = { .sz = sizeof(o) };
	if (opts)
		memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	struct tmd_loader *l = calloc(1, sizeof(*l));
	if (!l)
		return fail(ENOMEM, "out of memory");
	int err;
	l->fn = fn;
	l->ctx = ctx;
	l->pid_max = read_pid_max();
	l->raw_tp = o.force_raw_tp || !tmd_probe_tp_btf("sched_switch");
	l->skel = taskmon_bpf__open();
	if (!l->skel) {
		err = fail(errno, "cannot open the BPF object: %s", strerror(errno));
		goto cleanup;
	}
	if ((err = configure(l, &o)) < 0)
		goto cleanup;
	if ((err = taskmon_bpf__load(l->skel)) < 0) {
		err = fail(-err, "cannot load the BPF programs (%s): %s", l->raw_tp ? "raw_tp" : "tp_btf",
		           strerror(-err));
		goto cleanup;
	}
	if ((err = attach_sched(l)) < 0)
		goto cleanup;
	l->rb = ring_buffer__new(bpf_map__fd(l->skel->maps.events), on_sample, l, NULL);
	if (!l->rb) {
		err = fail(errno, "cannot map the ring buffer: %s", strerror(errno));
		goto cleanup;
	}
	*out = l;
	return 0;
cleanup:
	tmd_loader_close(l);
	return err;
}

static void detach_binary(struct binary *b)
{
	for (size_t i = 0; i < b->nlinks; i++)
		bpf_link__destroy(b->links[i]);
	memset(b, 0, sizeof(*b));
}

static void unlink_watch(struct tmd_loader *l, struct watch *w)
{
	for (size_t i = 0; i < w->nbins; i++)
		l->bins[w->bins[i]].refs--;
	w->nbins = 0;
}

void tmd_loader_close(struct tmd_loader *l)
{
	if (!l)
		return;
	if (l->skel)
		l->skel->bss->nr_watched = 0;
	for (size_t i = 0; i < MAX_BINARIES; i++)
		detach_binary(&l->bins[i]);
	free(l->w);
	for (int i = 0; i < N_SCHED; i++)
		bpf_link__destroy(l->sched_links[i]);
	ring_buffer__free(l->rb);
	taskmon_bpf__destroy(l->skel);
	free(l);
}

static struct watch *find_watch(const struct tmd_loader *l, pid_t pid)
{
	for (size_t i = 0; i < l->nw; i++)
		if (l->w[i].pid == pid)
			return &l->w[i];
	return NULL;
}

static int set_flag(struct tmd_loader *l, pid_t pid, uint64_t flags)
{
	uint32_t key = (uint32_t)pid;
	int err = bpf_map__update_elem(l->skel->maps.watched, &key, sizeof(key), &flags, sizeof(flags), BPF_ANY);
	return err ? fail(-err, "cannot mark process %d: %s", (int)pid, strerror(-err)) : 0;
}

/* A free slot, or the slot of a binary no watched process runs. */
static struct binary *free_binary(struct tmd_loader *l)
{
	struct binary *idle = NULL;
	for (size_t i = 0; i < MAX_BINARIES; i++) {
		if (!l->bins[i].used)
			return &l->bins[i];
		if (!idle && l->bins[i].refs == 0)
			idle = &l->bins[i];
	}
	if (idle)
		detach_binary(idle);
	return idle;
}

/* All probes of one binary, for every process, once. The supervision probes
 * may be missing from an older library; the three task probes may not.
 * Returns its index or negative errno. */
static int attach_binary(struct tmd_loader *l, const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return fail(errno, "cannot read %s: %s", path, strerror(errno));
	for (int i = 0; i < MAX_BINARIES; i++)
		if (l->bins[i].used && l->bins[i].dev == st.st_dev && l->bins[i].ino == st.st_ino)
			return i;
	struct binary *b = free_binary(l);
	if (!b)
		return fail(ENOSPC, "probes are attached to %d binaries in use already", MAX_BINARIES);
	*b = (struct binary){ .used = true, .dev = st.st_dev, .ino = st.st_ino };
	for (int i = 0; i < N_USDT; i++) {
		struct bpf_link *link = bpf_program__attach_usdt(usdt_prog(l->skel, i), -1, path, "taskmon",
		                                                 usdt_names[i], NULL);
		if (link) {
			b->links[b->nlinks++] = link;
		} else if (i < 3) {
			int err = errno;
			detach_binary(b);
			return fail(err, "cannot attach taskmon:%s in %s: %s", usdt_names[i], path, strerror(err));
		}
	}
	return (int)(b - l->bins);
}

int tmd_loader_attach_binary(struct tmd_loader *l, const char *path)
{
	if (!tmd_elf_has_taskmon_probes(path))
		return fail(ENOENT, "%s has no taskmon probes", path);
	int b = attach_binary(l, path);
	return b < 0 ? b : 0;
}

static int grow(struct tmd_loader *l)
{
	if (l->nw < l->capw)
		return 0;
	size_t cap = l->capw ? l->capw * 2 : 16;
	struct watch *w = realloc(l->w, cap * sizeof(*w));
	if (!w)
		return fail(ENOMEM, "out of memory");
	l->w = w;
	l->capw = cap;
	return 0;
}

int tmd_loader_watch(struct tmd_loader *l, pid_t pid)
{
	struct tmd_targets t;
	struct watch *w = find_watch(l, pid);
	if (w)
		return w->targets;
	if (pid <= 0 || (uint32_t)pid >= l->pid_max)
		return fail(EINVAL, "%d is not a process id below pid_max (%u)", (int)pid, l->pid_max);
	unsigned long long start;
	int n = tmd_proc_start(pid, &start), err;
	if (n == 0)
		n = tmd_find_targets(pid, &t);
	if (n < 0)
		return fail(-n, "cannot read the mappings of process %d: %s", (int)pid, strerror(-n));
	if ((err = grow(l)) < 0)
		return err;
	w = &l->w[l->nw];
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->start = start;
	w->targets = n;
	/* Flag first: threads are accounted from the first probe hit on. */
	if ((err = set_flag(l, pid, TM_WATCH_ON)) < 0)
		return err;
	l->nw++;
	l->skel->bss->nr_watched = (uint32_t)l->nw;
	for (size_t i = 0; i < t.n; i++) {
		int b = attach_binary(l, t.path[i]);
		if (b < 0) {
			char why[sizeof(last_error)];
			memcpy(why, last_error, sizeof(why));
			tmd_loader_unwatch(l, pid);
			memcpy(last_error, why, sizeof(why));
			return b;
		}
		l->bins[b].refs++;
		w->bins[w->nbins++] = b;
	}
	return n;
}

int tmd_loader_unwatch(struct tmd_loader *l, pid_t pid)
{
	struct watch *w = find_watch(l, pid);
	if (!w)
		return fail(ENOENT, "process %d is not watched", (int)pid);
	unlink_watch(l, w);
	set_flag(l, pid, 0);
	*w = l->w[--l->nw];
	l->skel->bss->nr_watched = (uint32_t)l->nw;
	return 0;
}

size_t tmd_loader_prune(struct tmd_loader *l, pid_t *gone, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < l->nw;) {
		unsigned long long start;
		pid_t pid = l->w[i].pid;
		if (tmd_proc_start(pid, &start) == 0 && start == l->w[i].start) {
			i++;
			continue;
		}
		tmd_loader_unwatch(l, pid);   /* moves the last watch into slot i */
		if (n < cap)
			gone[n] = pid;
		n++;
	}
	return n;
}

bool tmd_loader_watching(const struct tmd_loader *l, pid_t pid)
{
	return find_watch(l, pid) != NULL;
}

size_t tmd_loader_watch_count(const struct tmd_loader *l)
{
	return l->nw;
}

int tmd_loader_poll(struct tmd_loader *l, int timeout_ms)
{
	if (timeout_ms < 0 || timeout_ms > TMD_LOADER_POLL_MS)
		timeout_ms = TMD_LOADER_POLL_MS;
	int n = ring_buffer__poll(l->rb, timeout_ms);
	if (n < 0)
		return n;
	/* Records written without a wakeup are read all the same. */
	int more = ring_buffer__consume(l->rb);
	return more < 0 ? more : n + more;
}

int tmd_loader_epoll_fd(const struct tmd_loader *l)
{
	return ring_buffer__epoll_fd(l->rb);
}

int tmd_loader_consume(struct tmd_loader *l)
{
	return ring_buffer__consume(l->rb);
}

size_t tmd_loader_prog_stats(const struct tmd_loader *l, struct tmd_prog_stat *out, size_t cap)
{
	size_t n = 0;
	struct bpf_program *p;
	bpf_object__for_each_program(p, l->skel->obj) {
		struct bpf_prog_info info;
		uint32_t len = sizeof(info);
		int fd = bpf_program__fd(p);
		memset(&info, 0, sizeof(info));
		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
			continue;   /* not loaded: the unused twin */
		if (n < cap)
			out[n] = (struct tmd_prog_stat){ bpf_program__name(p), info.run_cnt, info.run_time_ns };
		n++;
	}
	return n;
}

int tmd_loader_enable_stats(void)
{
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	return fd < 0 ? fail(-fd, "cannot turn on program statistics: %s", strerror(-fd)) : fd;
}

uint64_t tmd_loader_stat(const struct tmd_loader *l, unsigned which)
{
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0 || which >= TM_STAT_COUNT)
		return 0;
	uint64_t *v = calloc((size_t)ncpu, sizeof(*v)), sum = 0;
	uint32_t key = which;
	if (v && bpf_map_lookup_elem(bpf_map__fd(l->skel->maps.stats), &key, v) == 0)
		for (int i = 0; i < ncpu; i++)
			sum += v[i];
	free(v);
	return sum;
}

const char *tmd_loader_mode(const struct tmd_loader *l)
{
	return l->raw_tp ? "raw_tp" : "tp_btf";
}
