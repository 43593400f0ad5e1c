/* taskmon-demo-report: what the collector saw of a demo run, for `make demo`.
 *
 *   taskmon-demo-report --socket PATH --ping
 *   taskmon-demo-report --socket PATH --pid PID [--wait-gone SECONDS]
 *                       [--crash-log FILE] [--wait-crash SECONDS]
 *
 * --ping exits 0 once the collector answers a snapshot request. Otherwise it
 * prints the workload's tasks by type and status with the kernel's
 * spawn-latency and on-CPU quantiles, taken from one snapshot (the collector
 * keeps a workload's final figures after it exits; --wait-gone waits for it
 * to have seen the exit), and the crash records of
 * that pid from the crash log, waiting up to --wait-crash seconds for one.
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "wire.h"

#define MAX_DOC   (64u << 20)
#define TOP_FRAMES 6

static int full_io(int fd, void *buf, size_t len, bool writing)
{
	char *p = buf;
	while (len) {
		ssize_t n = writing ? send(fd, p, len, MSG_NOSIGNAL) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EPIPE : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One snapshot, without task records; NULL with a sentence in err. */
static json_t *snapshot(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "the socket path %s is too long", path);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { 5, 0 };
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "no collector answers at %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct { struct tm_wire_hdr h; struct tm_wire_snapshot_req r; } req = {
		{ TM_WIRE_MAGIC, TM_WIRE_VERSION, TM_WIRE_SNAPSHOT, sizeof(struct tm_wire_snapshot_req), 0 },
		{ TM_WIRE_SNAP_NO_TASKS, 0 },
	};
	struct tm_wire_hdr h;
	json_t *doc = NULL;
	char *body = NULL;
	int e = full_io(fd, &req, sizeof(req), true);
	if (e == 0)
		e = full_io(fd, &h, sizeof(h), false);
	if (e < 0)
		snprintf(err, errlen, "the collector at %s did not answer: %s", path, strerror(-e));
	else if (h.magic != TM_WIRE_MAGIC || h.len > MAX_DOC || !(body = malloc(h.len ? h.len : 1)))
		snprintf(err, errlen, "the collector at %s sent a reply this tool does not understand", path);
	else if ((e = full_io(fd, body, h.len, false)) < 0)
		snprintf(err, errlen, "the collector's reply was cut short: %s", strerror(-e));
	else if (h.type != (TM_WIRE_SNAPSHOT | TM_WIRE_REPLY))
		snprintf(err, errlen, "the collector refused the snapshot: %.*s", (int)(h.len > 200 ? 200 : h.len), body);
	else if (!(doc = json_loadb(body, h.len, 0, NULL)))
		snprintf(err, errlen, "the collector's snapshot is not JSON");
	free(body);
	close(fd);
	return doc;
}

static long long num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* A string member, or "-" when it is missing or not a string. */
static const char *str(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "-";
}

static double quantile_us(json_t *kernel, const char *hist, const char *q)
{
	return num(json_object_get(kernel, hist), q) / 1000.0;
}

static void type_row(const char *name, json_t *reg, json_t *kernel, long long total)
{
	long long spawned = num(reg, "spawned");
	printf("%-12s %8lld %6.1f%% %9lld %7lld %8lld %9lld %9lld %7lld %8lld %9.1f / %-9.1f %9.1f / %.1f us\n", name,
	       spawned, total > 0 ? 100.0 * spawned / total : 0.0, num(reg, "succeeded"), num(reg, "failed"),
	       num(reg, "panicked"), num(reg, "cancelled"), num(reg, "timed_out"), num(reg, "crashed"),
	       num(reg, "restarts"), quantile_us(kernel, "spawn_latency", "p50_ns"),
	       quantile_us(kernel, "spawn_latency", "p99_ns"), quantile_us(kernel, "run_time", "p50_ns"),
	       quantile_us(kernel, "run_time", "p99_ns"));
}

static int by_spawned_desc(const void *a, const void *b)
{
	long long x = num(json_object_get(*(json_t *const *)a, "registry"), "spawned");
	long long y = num(json_object_get(*(json_t *const *)b, "registry"), "spawned");
	return (x < y) - (x > y);
}

/* One row per type that spawned anything, busiest first, then the total. */
static void type_table(json_t *w)
{
	json_t *types = json_object_get(w, "types"), *rows[64], *t;
	long long total = num(json_object_get(w, "registry"), "spawned");
	size_t i, n = 0;
	printf("%-12s %8s %7s %9s %7s %8s %9s %9s %7s %8s %21s %23s\n", "type", "spawned", "share", "succeeded",
	       "failed", "panicked", "cancelled", "timed_out", "crashed", "restarts", "spawn latency p50/p99",
	       "on-CPU per task p50/p99");
	json_array_foreach(types, i, t) {
		if (n < sizeof(rows) / sizeof(rows[0]) && num(json_object_get(t, "registry"), "spawned") > 0)
			rows[n++] = t;
	}
	qsort(rows, n, sizeof(rows[0]), by_spawned_desc);
	for (i = 0; i < n; i++)
		type_row(str(rows[i], "name"), json_object_get(rows[i], "registry"),
		         json_object_get(rows[i], "kernel"), total);
	type_row("all", json_object_get(w, "registry"), json_object_get(w, "kernel"), total);
}

static void print_exit(json_t *w)
{
	json_t *ex = json_object_get(w, "exit");
	if (json_is_true(json_object_get(w, "alive")))
		printf("still running");
	else if (json_is_object(ex) && num(ex, "signal"))
		printf("killed by signal %lld%s", num(ex, "signal"), num(ex, "signal") == 11 ? " (SIGSEGV)" : "");
	else if (json_is_object(ex))
		printf("exited with status %lld", num(ex, "code"));
	else
		printf("gone");
}

static json_t *find_workload(json_t *doc, long long pid)
{
	json_t *w = NULL, *each;
	size_t i;
	json_array_foreach(json_object_get(doc, "workloads"), i, each) {
		if (num(each, "pid") == pid)
			w = each;   /* the last: a pid reused within the retention period is the newest */
	}
	return w;
}

static int print_workload(json_t *doc, long long pid)
{
	json_t *w = find_workload(doc, pid);
	if (!w) {
		printf("The collector has no record of pid %lld: it may have ended before registering.\n", pid);
		return 1;
	}
	json_t *k = json_object_get(w, "kernel");
	printf("What taskmond saw of %s (pid %lld, ", str(w, "comm"), pid);
	print_exit(w);
	printf("): library counters, kernel latencies\n");
	type_table(w);
	printf("kernel: %lld task starts and %lld ends seen; on-CPU %.2f s, waiting for a CPU %.2f s, blocked %.2f s; "
	       "%lld voluntary and %lld involuntary switches\n", num(k, "tasks_started"), num(k, "tasks_ended"),
	       num(k, "oncpu_ns") / 1e9, num(k, "runq_ns") / 1e9, num(k, "blocked_ns") / 1e9,
	       num(k, "voluntary_switches"), num(k, "involuntary_switches"));
	json_t *c = json_object_get(doc, "collector");
	printf("collector: %lld kernel events merged (from every workload it watched), %lld lost\n", num(c, "events"),
	       num(c, "lost"));
	return 0;
}

static void print_crash(json_t *rec)
{
	json_t *task = json_object_get(rec, "task");
	printf("crash: task %s (id %lld, type %s) in %s (pid %lld, thread %lld): %s (%s), fault address %s\n",
	       json_is_object(task) ? str(task, "name") : "(none)", json_is_object(task) ? num(task, "id") : 0,
	       json_is_object(task) ? str(task, "type") : "-", str(rec, "comm"), num(rec, "pid"), num(rec, "tid"),
	       str(rec, "signal"), str(rec, "code"), str(rec, "fault_addr"));
	json_t *f, *frames = json_object_get(rec, "frames");
	size_t i;
	json_array_foreach(frames, i, f) {
		if (i == TOP_FRAMES) {
			size_t more = json_array_size(frames) - TOP_FRAMES;
			printf("  ... %zu more frame%s\n", more, more == 1 ? "" : "s");
			break;
		}
		const char *sym = json_string_value(json_object_get(f, "symbol"));
		const char *mod = json_string_value(json_object_get(f, "module"));
		if (sym)
			printf("  #%zu %s+%lld  %s\n", i, sym, num(f, "symbol_offset"), mod ? mod : "");
		else
			printf("  #%zu %s  %s\n", i, str(f, "addr"), mod ? mod : "");
	}
}

/* Prints the crash records of pid; how many there were. */
static int print_crashes(const char *log, long long pid)
{
	FILE *f = fopen(log, "r");
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0;
	int n = 0;
	while (getline(&line, &cap, f) > 0) {
		json_t *rec = json_loads(line, 0, NULL);
		if (json_is_object(rec) && num(rec, "pid") == pid) {
			print_crash(rec);
			n++;
		}
		json_decref(rec);
	}
	free(line);
	fclose(f);
	return n;
}

static int usage(const char *why)
{
	fprintf(stderr, "taskmon-demo-report: %s; usage: taskmon-demo-report --socket PATH (--ping | --pid PID "
	        "[--crash-log FILE] [--wait-crash SECONDS])\n", why);
	return 2;
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *log = NULL;
	long long pid = 0;
	double wait_crash = 0, wait_gone = 0;
	bool ping = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		if (strcmp(a, "--ping") == 0) {
			ping = true;
			continue;
		}
		if (!v)
			return usage("an option is missing its value");
		if (strcmp(a, "--socket") == 0)
			sock = v;
		else if (strcmp(a, "--crash-log") == 0)
			log = v;
		else if (strcmp(a, "--pid") == 0 && (pid = strtoll(v, &end, 10)) > 0 && !*end)
			;
		else if (strcmp(a, "--wait-crash") == 0 && (wait_crash = strtod(v, &end)) >= 0 && !*end)
			;
		else if (strcmp(a, "--wait-gone") == 0 && (wait_gone = strtod(v, &end)) >= 0 && !*end)
			;
		else
			return usage("bad option or value");
		i++;
	}
	if (!sock || (!ping && pid <= 0))
		return usage("--socket, and --ping or --pid, are needed");
	char err[256];
	json_t *doc = snapshot(sock, err, sizeof(err));
	/* The collector sees an exit on its next turn: until then the workload is alive. */
	for (int waited_ms = 0; !ping && doc && waited_ms < wait_gone * 1000; waited_ms += 100) {
		json_t *w = find_workload(doc, pid);
		if (w && !json_is_true(json_object_get(w, "alive")))
			break;
		poll(NULL, 0, 100);
		json_decref(doc);
		doc = snapshot(sock, err, sizeof(err));
	}
	if (ping) {
		json_decref(doc);
		return doc ? 0 : 1;
	}
	int rc = 0;
	if (!doc) {
		printf("No summary from the collector: %s.\n", err);
		rc = 1;
	} else {
		rc = print_workload(doc, pid);
		json_decref(doc);
	}
	if (!log)
		return rc;
	/* The collector writes a crash record as soon as it sees the signal; give it a moment. */
	for (int waited_ms = 0; print_crashes(log, pid) == 0; waited_ms += 100) {
		if (waited_ms >= wait_crash * 1000) {
			if (wait_crash > 0) {
				printf("No crash record for pid %lld in %s.\n", pid, log);
				rc = 1;
			}
			break;
		}
		poll(NULL, 0, 100);
	}
	return rc;
}
