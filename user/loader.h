/* The kernel programs, loaded and attached: open -> configure -> load ->
 * attach -> watch workloads -> poll events. Shared by taskmond and the
 * privileged tests, which embed it to watch their own process. */
#ifndef TMD_LOADER_H
#define TMD_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tmd_loader;

struct tmd_loader_opts {
	size_t   sz;               /* sizeof(struct tmd_loader_opts) */
	bool     force_raw_tp;     /* use the raw_tp programs even where tp_btf works */
	bool     no_stacks;        /* crash events without user stacks */
	uint32_t ringbuf_bytes;    /* power of two >= page size; 0 = 8 MiB (some 65,000 task records: 0.2 s at 300,000/s for a reader that is slow to get a CPU) */
	uint32_t max_threads;      /* per-thread state entries of the raw_tp programs; 0 = 16384 (tp_btf: task storage, unbounded) */
	uint32_t max_pending;      /* tasks spawned and not yet started; 0 = 16384 (rounded up to a power of two) */
	/* Task records wake a sleeping reader each time this much unread data
	 * has gathered; 0 = ringbuf_bytes / 512 (16 KiB, some 130 records, of the
	 * default ring: the reader is woken early and has the rest of the ring
	 * to spare when it is slow to get a CPU). Below that the reader finds
	 * them at its next poll (TMD_LOADER_POLL_MS). Crash, kill and exit
	 * records always wake it. */
	uint32_t wakeup_bytes;
	bool     wake_per_record;  /* the kernel's default instead: a reader that has read all is woken by the next record */
};
#define TMD_LOADER_OPTS(...) (&(struct tmd_loader_opts){ .sz = sizeof(struct tmd_loader_opts), __VA_ARGS__ })

/* Called for every ring-buffer record (see bpf/taskmon_events.h); a non-zero
 * return stops the current poll and is returned by it. */
typedef int (*tmd_event_fn)(void *ctx, const void *data, size_t len);

/* Loads and attaches the scheduler and signal programs. Negative errno;
 * tmd_loader_error() says what failed. */
int  tmd_loader_open(struct tmd_loader **out, const struct tmd_loader_opts *opts, tmd_event_fn fn, void *ctx);
void tmd_loader_close(struct tmd_loader *l);

/* Starts watching a process: its threads are accounted from now on, and the
 * library's USDT probes are attached to every copy of libtaskmon it runs
 * (libtaskmon.so* it maps, or its executable when linked statically).
 * Returns the number of binaries attached (0: the process uses no
 * libtaskmon; scheduler and signal figures still flow), or negative errno. */
int  tmd_loader_watch(struct tmd_loader *l, pid_t pid);
/* The probes of a binary are attached once for every process that runs it
 * and stay attached, shared by all watches, until the slot is needed for
 * another binary (64 at most; see loader.c). This attaches them ahead of any
 * watch: a workload that registers is then watched without waiting for the
 * kernel to install uprobes. 0, -ENOENT when the file has no taskmon probes,
 * or negative errno. */
int  tmd_loader_attach_binary(struct tmd_loader *l, const char *path);
/* Stops watching. -ENOENT when it was not watched. */
int  tmd_loader_unwatch(struct tmd_loader *l, pid_t pid);
bool tmd_loader_watching(const struct tmd_loader *l, pid_t pid);
/* Unwatches the processes that are gone, or whose pid a newer process has
 * taken (their exit event may have been lost); lists up to cap of them in
 * gone and returns how many there were. */
size_t tmd_loader_prune(struct tmd_loader *l, pid_t *gone, size_t cap);
size_t tmd_loader_watch_count(const struct tmd_loader *l);

/* Task records reach a reader that sleeps at the latest this long after
 * they were written, provided it reads at least this often: an event loop
 * of one's own must call tmd_loader_consume() at least every
 * TMD_LOADER_POLL_MS (tmd_loader_poll() does it by itself). */
#define TMD_LOADER_POLL_MS 25

/* Waits up to timeout_ms (at most TMD_LOADER_POLL_MS; negative = that) for
 * a wakeup, then hands every waiting event to the callback; returns how many
 * were consumed, or negative errno (-EINTR on a signal). */
int  tmd_loader_poll(struct tmd_loader *l, int timeout_ms);

/* For an event loop of one's own: a file descriptor (an epoll instance)
 * that polls readable when the kernel wakes the reader (see
 * TMD_LOADER_POLL_MS: not for every record), and a read of every waiting
 * event without blocking (count consumed, or negative errno). */
int  tmd_loader_epoll_fd(const struct tmd_loader *l);
int  tmd_loader_consume(struct tmd_loader *l);

/* How often each loaded program ran and for how long in all (the kernel
 * keeps the times only while statistics are on: tmd_loader_enable_stats()
 * or the sysctl kernel.bpf_stats_enabled). Fills up to cap entries and
 * returns how many programs there are. */
struct tmd_prog_stat {
	const char *name;          /* the program's name in bpf/taskmon.bpf.c */
	uint64_t runs;
	uint64_t run_ns;
};
size_t tmd_loader_prog_stats(const struct tmd_loader *l, struct tmd_prog_stat *out, size_t cap);
/* Turns the kernel's per-program run times on for as long as the returned
 * descriptor stays open (they cost two clock reads per run); negative errno. */
int  tmd_loader_enable_stats(void);

/* Kernel-side counters summed over CPUs (enum tm_stat), 0 on error. */
uint64_t tmd_loader_stat(const struct tmd_loader *l, unsigned which);
const char *tmd_loader_mode(const struct tmd_loader *l);   /* "tp_btf" or "raw_tp" */
const char *tmd_loader_error(void);   /* the last failure, as a sentence */

/* libbpf's messages: warnings always, debug lines only when verbose. */
void tmd_libbpf_print(bool verbose);

#endif
