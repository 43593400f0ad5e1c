/* taskmond against hostile workloads and clients (root: it loads BPF).
 *
 * taskmond runs as a child with its socket and state directory in a
 * private temporary directory. The workloads are children of this test
 * (this binary links the library, so the collector attaches to it); the
 * test process itself never calls tm_init, so nothing is patched into its
 * code before it forks.
 *
 *   - a forger, running as nobody, publishes a segment under its own pid and
 *     keeps rewriting it (huge counts, bad offsets, names without NUL or
 *     with terminal escapes, torn slots, the file cut short and grown again):
 *     taskmond stays alive, answers snapshots in bounded time, and a real
 *     workload's figures do not change;
 *   - socket abuse: a flood of connections from one user does not lock out
 *     another, an oversize request is refused, registrations are rate-limited,
 *     a REGISTER that names a pid is refused;
 *   - names with terminal escapes (a workload's comm) leave the snapshot and
 *     the crash log escaped;
 *   - a workload that creates a million short tasks leaves the collector's
 *     memory bounded;
 *   - a watched workload that forks: the child's first task must not crash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "integration/bpf_test.h"
#include "integration/tmd_client.h"
#include "taskmon.h"
#include "taskmon_shm.h"
#include "wire.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static char g_dir[64], g_socket[96], g_state[96];
static pid_t g_tmd = -1;

/* ---- helpers ----------------------------------------------------------------------- */

static bool tmd_alive(void)
{
	int st;
	return g_tmd > 0 && waitpid(g_tmd, &st, WNOHANG) == 0;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* A snapshot document (parsed), and how long it took; NULL when none came. */
static json_t *snapshot(uint64_t *took_ns, char **raw)
{
	uint64_t t0 = bt_now_ns();
	int fd = tc_connect(g_socket);
	if (fd < 0)
		return NULL;
	struct tm_wire_hdr rep;
	char *body;
	struct tm_wire_snapshot_req req = { .flags = 0, .max_tasks = 200 };
	int rc = tc_request(fd, TM_WIRE_SNAPSHOT, &req, sizeof(req), &rep, &body);
	close(fd);
	if (took_ns)
		*took_ns = bt_now_ns() - t0;
	if (rc != 0 || rep.type != (TM_WIRE_SNAPSHOT | TM_WIRE_REPLY)) {
		free(body);
		return NULL;
	}
	json_error_t err;
	json_t *doc = json_loadb(body, rep.len, 0, &err);
	if (raw)
		*raw = body;
	else
		free(body);
	return doc;
}

static long long reg_counter(json_t *w, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(w, "registry"), key));
}

/* Waits until the snapshot shows pid with `spawned` tasks all ended; the workload, or NULL. */
static json_t *wait_workload(pid_t pid, long long spawned, unsigned timeout_ms, json_t **doc_out)
{
	uint64_t end = bt_now_ns() + timeout_ms * 1000000ull;
	do {
		json_t *doc = snapshot(NULL, NULL);
		json_t *w = doc ? tc_workload_of(doc, pid) : NULL;
		if (w && reg_counter(w, "spawned") == spawned && reg_counter(w, "running") == 0) {
			*doc_out = doc;
			return w;
		}
		json_decref(doc);
		tc_msleep(100);
	} while (bt_now_ns() < end);
	return NULL;
}

static bool drop_to_nobody(void)
{
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw ? pw->pw_uid : 65534;
	gid_t gid = pw ? pw->pw_gid : 65534;
	return setgroups(0, NULL) == 0 && setgid(gid) == 0 && setuid(uid) == 0;
}

/* A child that runs fn and exits with its result; a signal ends it as usual. */
static pid_t child(int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);   /* not cmocka's: a crash must show as one */
		alarm(300);
		_exit(fn(arg));
	}
	return pid;
}

static int reap(pid_t pid, unsigned timeout_ms)
{
	int st;
	uint64_t end = bt_now_ns() + timeout_ms * 1000000ull;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (bt_now_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		tc_msleep(5);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- workloads (children) ------------------------------------------------------------ */

static int body_short(void *arg)
{
	(void)arg;
	return 0;
}

/* A pipe the parent closes to say "stop". */
static int stop_pipe[2];

static void wait_stop(void)
{
	char c;
	close(stop_pipe[1]);
	while (read(stop_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
}

/* The real workload: 300 network tasks, all joined, then it holds still. */
#define REAL_TASKS 300
static int real_workload(void *arg)
{
	(void)arg;
	if (tm_init(NULL) != 0)
		return 10;
	for (int i = 0; i < REAL_TASKS; i++) {
		tm_task *t;
		char name[32];
		snprintf(name, sizeof(name), "real_%d", i);
		if (tm_spawn(&t, name, body_short, NULL, TM_SPAWN_OPTS(.type = TM_NETWORK)) != 0 ||
		    tm_join(t, 10000, NULL, NULL) != 0)
			return 11;
	}
	wait_stop();
	tm_shutdown();
	return 0;
}

/* ---- the forger ---------------------------------------------------------------------------- */

struct seg {
	int fd;
	size_t size;
	uint32_t slots;
};

static void pw(int fd, const void *buf, size_t len, size_t off)
{
	(void)!pwrite(fd, buf, len, (off_t)off);
}

static void valid_header(struct seg *s, struct tm_shm_header *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = TM_SHM_MAGIC;
	h->version = TM_SHM_VERSION;
	h->header_size = sizeof(*h);
	h->type_size = sizeof(struct tm_shm_type);
	h->slot_size = sizeof(struct tm_shm_slot);
	h->type_count = TM_MAX_TYPES;
	h->hist_buckets = TM_HIST_BUCKETS;
	h->types_offset = sizeof(*h);
	h->slots_offset = sizeof(*h) + TM_MAX_TYPES * sizeof(struct tm_shm_type);
	h->total_size = s->size;
	h->slot_count = s->slots;
	h->pid = getpid();
	h->slots_used = s->slots;
	h->types_used = 3;
	snprintf(h->comm, sizeof(h->comm), "forg\033[2Jer");
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* One round of damage, of kind k. */
static void forge(struct seg *s, unsigned k, uint64_t *rng)
{
	struct tm_shm_header h;
	valid_header(s, &h);
	struct tm_shm_type t;
	struct tm_shm_slot sl;
	switch (k % 7) {
	case 0:   /* huge counts */
		h.types_used = UINT64_MAX;
		h.slots_used = UINT64_MAX;
		h.tracked_records = UINT64_MAX;
		pw(s->fd, &h, sizeof(h), 0);
		memset(&t, 0xff, sizeof(t));
		memcpy(t.name, "network", 8);   /* the real workload's type name: its figures must not move */
		for (int i = 0; i < 3; i++)
			pw(s->fd, &t, sizeof(t), h.types_offset + i * sizeof(t));
		break;
	case 1:   /* names without NUL, and with terminal escapes */
		pw(s->fd, &h, sizeof(h), 0);
		for (uint32_t i = 0; i < s->slots; i++) {
			memset(&sl, 0, sizeof(sl));
			sl.seq = 2;
			sl.id = i + 1;
			sl.tid = (uint32_t)getpid();
			sl.type = 1;
			if (i % 2)
				memset(sl.name, 'A', sizeof(sl.name));
			else
				snprintf(sl.name, sizeof(sl.name), "t\033]0;owned\007\033[2J%u", i);
			pw(s->fd, &sl, sizeof(sl), h.slots_offset + i * sizeof(sl));
		}
		memset(&t, 0, sizeof(t));
		memcpy(t.name, "\033[31mred\033[0m", 13);
		pw(s->fd, &t, sizeof(t), h.types_offset + sizeof(t));
		break;
	case 2:   /* torn: every slot odd, then flipping while being read */
		pw(s->fd, &h, sizeof(h), 0);
		for (int round = 0; round < 50; round++)
			for (uint32_t i = 0; i < s->slots; i++) {
				uint32_t seq = (uint32_t)(round * 2 + 1 + (i & round & 1));
				pw(s->fd, &seq, sizeof(seq), h.slots_offset + i * sizeof(sl));
			}
		break;
	case 3:   /* bad offsets and sizes */
		h.types_offset = UINT64_MAX - 7;
		h.slots_offset = 8;
		h.slot_count = UINT32_MAX;
		h.total_size = 1ull << 40;
		pw(s->fd, &h, sizeof(h), 0);
		break;
	case 4:   /* cut short under the reader, then back */
		(void)!ftruncate(s->fd, 64);
		tc_msleep(2);
		(void)!ftruncate(s->fd, (off_t)s->size);
		pw(s->fd, &h, sizeof(h), 0);
		break;
	case 5: { /* noise over everything but the magic */
		uint64_t buf[512];
		for (size_t off = 8; off < s->size; off += sizeof(buf)) {
			for (size_t i = 0; i < 512; i++)
				buf[i] = xorshift(rng);
			pw(s->fd, buf, off + sizeof(buf) <= s->size ? sizeof(buf) : s->size - off, off);
		}
		break;
	}
	default:  /* grown past what the header says, or another pid named */
		h.pid = 1;
		pw(s->fd, &h, sizeof(h), 0);
		(void)!ftruncate(s->fd, (off_t)s->size + 4096);
		tc_msleep(1);
		(void)!ftruncate(s->fd, (off_t)s->size);
		break;
	}
}

static int register_self(void)
{
	int fd = tc_connect(g_socket);
	if (fd < 0)
		return fd;
	struct tm_wire_hdr rep;
	char *body;
	int rc = tc_request(fd, TM_WIRE_REGISTER, NULL, 0, &rep, &body);
	free(body);
	close(fd);
	return rc < 0 ? rc : rep.status;
}

static int forger(void *arg)
{
	unsigned seconds = *(unsigned *)arg;
	if (!drop_to_nobody())
		return 20;
	prctl(PR_SET_NAME, "forg\033[2Jer", 0, 0, 0);
	struct seg s = { .slots = 64 };
	s.size = sizeof(struct tm_shm_header) + TM_MAX_TYPES * sizeof(struct tm_shm_type) +
	         s.slots * sizeof(struct tm_shm_slot);
	char path[64];
	snprintf(path, sizeof(path), "%s/%s%d", TM_SHM_DIR, TM_SHM_PREFIX, (int)getpid());
	s.fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s.fd < 0 || ftruncate(s.fd, (off_t)s.size) != 0)
		return 21;
	struct tm_shm_header h;
	valid_header(&s, &h);
	pw(s.fd, &h, sizeof(h), 0);
	register_self();   /* watched at once, not only at the next rescan */
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	uint64_t end = bt_now_ns() + seconds * 1000000000ull;
	for (unsigned k = 0; bt_now_ns() < end; k++)
		forge(&s, k, &rng);
	close(s.fd);
	unlink(path);
	return 0;
}

/* ---- taskmond ------------------------------------------------------------------------------ */

static void start_taskmond(void)
{
	char path[PATH_MAX];
	bt_sibling(path, sizeof(path), "../taskmond");
	fflush(NULL);
	g_tmd = fork();
	assert_true(g_tmd >= 0);
	if (g_tmd == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execl(path, path, "--socket", g_socket, "--state-dir", g_state, "--foreground", "--metrics", "off",
		      "--retention", "60", (char *)NULL);
		_exit(98);
	}
	if (!tc_wait_up(g_socket, 400, tmd_alive))
		fail_msg("taskmond did not come up on %s", g_socket);
}

static void stop_taskmond(void)
{
	if (g_tmd > 0) {
		uint64_t t0 = bt_now_ns();
		kill(g_tmd, SIGTERM);
		int rc = reap(g_tmd, 30000);
		print_message("taskmond %s %.2f s after SIGTERM\n", rc < 0 ? "was killed, still running" : "stopped",
		              (double)(bt_now_ns() - t0) / 1e9);
	}
	g_tmd = -1;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* n snapshots; their median and maximum time. */
static void time_snapshots(int n, uint64_t *median, uint64_t *max)
{
	uint64_t t[64];
	assert_true(n <= 64);
	for (int i = 0; i < n; i++) {
		json_t *doc = snapshot(&t[i], NULL);
		if (!doc)
			fail_msg("snapshot %d failed (taskmond %s)", i, tmd_alive() ? "alive" : "dead");
		json_decref(doc);
		tc_msleep(20);
	}
	qsort(t, (size_t)n, sizeof(t[0]), cmp_u64);
	*median = t[n / 2];
	*max = t[n - 1];
}

static bool printable_str(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* Every string in the document decodes to printable ASCII. */
static bool all_printable(json_t *j)
{
	size_t i;
	const char *k;
	json_t *v;
	if (json_is_string(j))
		return printable_str(json_string_value(j));
	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			if (!all_printable(v))
				return false;
	}
	if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			if (!printable_str(k) || !all_printable(v))
				return false;
	}
	return true;
}

/* A control byte other than the whitespace JSON may put between tokens. */
static bool raw_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\r' && *s != '\t')
			return true;
	return false;
}

static void test_forged_segment(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	assert_int_equal(pipe(stop_pipe), 0);
	pid_t real = child(real_workload, NULL);
	close(stop_pipe[0]);
	json_t *doc0 = NULL;
	json_t *w0 = wait_workload(real, REAL_TASKS, 20000, &doc0);
	if (!w0)
		fail_msg("the real workload %d never showed %d ended tasks", (int)real, REAL_TASKS);
	char *before = json_dumps(w0, JSON_SORT_KEYS | JSON_COMPACT);

	uint64_t base_med, base_max, med, max;
	time_snapshots(20, &base_med, &base_max);

	unsigned seconds = 6;
	pid_t forg = child(forger, &seconds);
	tc_msleep(300);
	time_snapshots(30, &med, &max);
	print_message("snapshot time: median %.2f ms, max %.2f ms without the forger; median %.2f ms, max %.2f ms "
	              "while it forges (ratio of medians %.2f)\n",
	              base_med / 1e6, base_max / 1e6, med / 1e6, max / 1e6, (double)med / (double)base_med);
	assert_true(tmd_alive());
	assert_true(max < 2000000000ull);              /* never hangs: far under the clients' timeouts */
	assert_true(med < 20 * base_med + 50000000ull); /* not slowed beyond noise on a shared machine */

	/* What the collector made of the forgery: counted as invalid, printable, escaped. */
	char *raw = NULL;
	json_t *doc = snapshot(NULL, &raw);
	assert_non_null(doc);
	assert_false(raw_has_control(raw));
	assert_true(all_printable(doc));
	json_t *fw = tc_workload_of(doc, forg);
	if (fw)
		print_message("forged workload: invalid_records %lld, registry_errors %lld, comm \"%s\"\n",
		              json_integer_value(json_object_get(fw, "invalid_records")),
		              json_integer_value(json_object_get(fw, "registry_errors")),
		              json_string_value(json_object_get(fw, "comm")));
	else
		print_message("the forged workload is not in the snapshot (refused)\n");
	free(raw);
	json_decref(doc);

	assert_int_equal(reap(forg, 30000), 0);
	assert_true(tmd_alive());

	/* The real workload's figures are what they were. */
	doc = snapshot(NULL, NULL);
	assert_non_null(doc);
	json_t *w1 = tc_workload_of(doc, real);
	assert_non_null(w1);
	char *after = json_dumps(w1, JSON_SORT_KEYS | JSON_COMPACT);
	json_t *r0 = json_object_get(w0, "registry"), *r1 = json_object_get(w1, "registry");
	if (!json_equal(r0, r1))
		fail_msg("the real workload's registry figures changed:\n%s\n%s", before, after);
	if (!json_equal(json_object_get(w0, "kernel"), json_object_get(w1, "kernel")))
		fail_msg("the real workload's kernel figures changed:\n%s\n%s", before, after);
	assert_int_equal(reg_counter(w1, "spawned"), REAL_TASKS);
	assert_int_equal(reg_counter(w1, "succeeded"), REAL_TASKS);
	free(before);
	free(after);
	json_decref(doc);
	json_decref(doc0);
	close(stop_pipe[1]);
	assert_int_equal(reap(real, 20000), 0);
}

static int flood_victim(void *arg)
{
	(void)arg;
	if (!drop_to_nobody())
		return 30;
	uint64_t took;
	json_t *doc = snapshot(&took, NULL);
	if (!doc)
		return 31;
	json_decref(doc);
	return took < 2000000000ull ? 0 : 32;
}

static void test_socket_abuse(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	long rss0 = rss_kib(g_tmd);

	/* A flood of connections from one user: bounded; another user still gets in. */
	enum { FLOOD = 200 };
	int fds[FLOOD], refused = 0, open_ok = 0;
	for (int i = 0; i < FLOOD; i++) {
		fds[i] = tc_connect(g_socket);
		open_ok += fds[i] >= 0;
	}
	tc_msleep(300);
	for (int i = 0; i < FLOOD; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		if (fds[i] >= 0 && poll(&p, 1, 0) == 1) {
			struct tm_wire_hdr h;
			if (recv(fds[i], &h, sizeof(h), MSG_DONTWAIT) == (ssize_t)sizeof(h) && h.type == TM_WIRE_ERROR &&
			    h.status == -EMFILE)
				refused++;
		}
	}
	print_message("flood: %d of %d connections made, %d refused with -EMFILE\n", open_ok, FLOOD, refused);
	assert_true(refused >= open_ok - 16);   /* at most 16 held per user */
	assert_int_equal(reap(child(flood_victim, NULL), 20000), 0);
	for (int i = 0; i < FLOOD; i++)
		if (fds[i] >= 0)
			close(fds[i]);

	/* Oversize and malformed requests: refused with a sentence, connection closed. */
	int fd = tc_connect(g_socket);
	assert_true(fd >= 0);
	struct tm_wire_hdr h = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = TM_WIRE_SNAPSHOT,
	                         .len = 1u << 30 }, rep;
	assert_int_equal(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
	assert_true(tc_read_full(fd, &rep, sizeof(rep)));
	assert_int_equal(rep.type, TM_WIRE_ERROR);
	assert_int_equal(rep.status, -EINVAL);
	close(fd);

	/* A REGISTER cannot name a pid: any payload is refused. */
	fd = tc_connect(g_socket);
	assert_true(fd >= 0);
	pid_t other = 1;
	char *body;
	assert_int_equal(tc_request(fd, TM_WIRE_REGISTER, &other, sizeof(other), &rep, &body), 0);
	assert_int_equal(rep.type, TM_WIRE_ERROR);
	assert_int_equal(rep.status, -EINVAL);
	free(body);
	close(fd);

	/* Registrations are rate-limited per user. */
	int ok = 0, limited = 0;
	uint64_t t0 = bt_now_ns();
	for (int i = 0; i < 40; i++) {
		int r = register_self();
		ok += r == 0;
		limited += r == -EAGAIN;
	}
	double secs = (double)(bt_now_ns() - t0) / 1e9;
	print_message("40 registrations in %.2f s: %d accepted, %d refused by the rate limit\n", secs, ok, limited);
	assert_true(limited > 0);
	assert_true(ok <= 10 + (int)(secs * 10) + 1);

	long rss1 = rss_kib(g_tmd);
	print_message("taskmond RSS %ld KiB before, %ld KiB after the abuse\n", rss0, rss1);
	assert_true(rss1 < rss0 + 32 * 1024);
	assert_true(tmd_alive());
	json_t *doc = snapshot(NULL, NULL);
	assert_non_null(doc);
	json_decref(doc);
}

/* Sanitized builds must let the fault kill the process, as it would any workload. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "handle_segv=0";
}
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "handle_segv=0";
}

__attribute__((no_sanitize("address", "undefined", "thread")))
static int body_crash(void *arg)
{
	*(volatile int *)((char *)arg + 16) = 1;   /* arg is NULL: a fault inside the task */
	return 0;
}

/* A watched workload whose comm is a terminal escape crashes inside a task. */
static int escaped_crasher(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "cr\033]0;x\007\033[2J", 0, 0, 0);
	if (tm_init(NULL) != 0)
		return 40;
	tm_task *t;
	if (tm_spawn(&t, "about_to_crash", body_short, NULL, NULL) != 0)
		return 41;
	tm_join(t, 5000, NULL, NULL);
	/* Crash only once the collector watches this process (the parent says
	 * so with a file): a slow (sanitized, loaded) collector may take longer
	 * than the library's registration wait, and then find it by its scan. */
	char go[PATH_MAX];
	snprintf(go, sizeof(go), "%s/go.%d", g_state, (int)getpid());
	for (int i = 0; i < 400 && access(go, F_OK) != 0; i++)
		tc_msleep(50);
	tm_spawn(&t, "crashes", body_crash, NULL, NULL);
	tm_join(t, 5000, NULL, NULL);
	return 42;
}

static void test_escapes_leave_escaped(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	pid_t pid = child(escaped_crasher, NULL);
	json_t *doc = NULL;
	json_t *w = wait_workload(pid, 1, 20000, &doc);
	if (w) {
		const char *comm = json_string_value(json_object_get(w, "comm"));
		print_message("workload comm in the snapshot: \"%s\"\n", comm ? comm : "(none)");
		assert_true(all_printable(doc));
		json_decref(doc);
	} else {
		print_message("the workload did not show up in 20 s\n");
	}
	char go[PATH_MAX];
	snprintf(go, sizeof(go), "%s/go.%d", g_state, (int)pid);
	close(open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	int st = reap(pid, 20000);
	assert_int_equal(st, 128 + SIGSEGV);

	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/crashes.jsonl", g_state);
	char buf[65536] = "";
	for (int i = 0; i < 100; i++) {
		FILE *f = fopen(path, "r");
		if (f) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			buf[n] = '\0';
			fclose(f);
			if (strstr(buf, "SIGSEGV"))
				break;
		}
		tc_msleep(50);
	}
	if (!strstr(buf, "SIGSEGV"))
		fail_msg("no crash record in %s", path);
	for (const char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\n')
			fail_msg("a raw control byte 0x%02x in the crash log", (unsigned char)*p);
	print_message("crash log line escapes the comm: %s\n", strstr(buf, "\\u001b") ? "yes" : "(no escape seen)");
}

/* A million short tasks from one workload. */
static int many_tasks(void *arg)
{
	long n = *(long *)arg;
	if (tm_init(NULL) != 0)
		return 50;
	for (long i = 0; i < n;) {
		int rc = tm_spawn(NULL, "short", body_short, NULL, NULL);
		if (rc == 0)
			i++;
		else if (rc != -EAGAIN)
			return 51;
	}
	struct tm_stats s;
	do {
		tc_msleep(10);
	} while (tm_get_stats(&s) == 0 && s.currently_running > 0);
	tc_msleep(1500);   /* the registry is re-read once a second */
	tm_shutdown();
	return 0;
}

static void test_million_short_tasks(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
	long n = SANITIZED ? 200000 : 1000000;
	const char *env = getenv("TM_HOSTILE_TASKS");
	if (env && atol(env) > 0)
		n = atol(env);
	if (SANITIZED && !env)
		print_message("sanitized build: %ld tasks instead of a million\n", n);
	long rss0 = rss_kib(g_tmd);
	uint64_t t0 = bt_now_ns();
	pid_t pid = child(many_tasks, &n);
	long peak = rss0;
	int st;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		long r = rss_kib(g_tmd);
		if (r > peak)
			peak = r;
		tc_msleep(100);
		assert_true(bt_now_ns() - t0 < 600ull * 1000000000ull);
	}
	double secs = (double)(bt_now_ns() - t0) / 1e9;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	tc_msleep(1500);
	long rss1 = rss_kib(g_tmd);
	json_t *doc = snapshot(NULL, NULL);
	assert_non_null(doc);
	json_t *c = json_object_get(doc, "collector");
	long long kept = json_integer_value(json_object_get(c, "tasks_kept"));
	long long cap = json_integer_value(json_object_get(c, "max_tasks_total"));
	long long mem = json_integer_value(json_object_get(c, "memory_bytes"));
	long long lost = json_integer_value(json_object_get(c, "lost"));
	print_message("%ld tasks in %.1f s; taskmond RSS %ld KiB before, peak %ld KiB, %ld KiB after; "
	              "tasks kept %lld (cap %lld), memory_bytes %lld, events lost %lld\n",
	              n, secs, rss0, peak, rss1, kept, cap, mem, lost);
	json_decref(doc);
	assert_true(kept <= cap);
	/* Bounded: task records are capped (max_tasks per workload, max_tasks_total), so a
	 * million tasks may not cost more than a bounded amount over the start. */
	assert_true(peak - rss0 < 256 * 1024);
	assert_true(tmd_alive());
}

/* A watched workload forks; the child uses the library. */
static int forking_workload(void *arg)
{
	(void)arg;
	if (tm_init(NULL) != 0)
		return 60;
	for (int i = 0; i < 50; i++) {   /* probes attached and hit in the parent */
		tm_task *t;
		if (tm_spawn(&t, "before_fork", body_short, NULL, NULL) != 0 || tm_join(t, 5000, NULL, NULL) != 0)
			return 61;
		tc_msleep(20);
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		tm_task *t;
		int rc = tm_spawn(&t, "after_fork", body_short, NULL, NULL);
		_exit(rc == 0 && tm_join(t, 5000, NULL, NULL) == 0 ? 0 : 62);
	}
	int st;
	waitpid(pid, &st, 0);
	tm_shutdown();
	if (WIFSIGNALED(st))
		return 100 + WTERMSIG(st);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 63;
}

static void test_fork_of_watched_workload(void **state)
{
	(void)state;
	BPF_TEST_REQUIRE();
#ifdef __SANITIZE_THREAD__
	/* TSan itself refuses new threads in the child of a multithreaded fork. */
	print_message("skipped: ThreadSanitizer refuses threads in the child of a multithreaded fork\n");
	skip();
#endif
	int rc = reap(child(forking_workload, NULL), 60000);
	if (rc == 100 + SIGSEGV)
		fail_msg("the forked child of a watched workload died of SIGSEGV at its first task: the probe "
		         "site the kernel patched in the parent is inherited without the kernel's trampoline");
	assert_int_equal(rc, 0);
}

static int setup(void **state)
{
	(void)state;
	if (bpf_test_skip_reason())
		return 0;
	snprintf(g_dir, sizeof(g_dir), "/tmp/tm_hostile.XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	chmod(g_dir, 0755);   /* children running as nobody connect to the socket in it */
	snprintf(g_socket, sizeof(g_socket), "%s/taskmond.sock", g_dir);
	snprintf(g_state, sizeof(g_state), "%s/state", g_dir);
	mkdir(g_state, 0755);
	setenv("TASKMON_SOCKET", g_socket, 1);
	unsetenv("TASKMON_CONFIG");
	signal(SIGPIPE, SIG_IGN);
	start_taskmond();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (bpf_test_skip_reason())
		return 0;
	stop_taskmond();
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		print_message("could not remove %s\n", g_dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forged_segment),
		cmocka_unit_test(test_socket_abuse),
		cmocka_unit_test(test_escapes_leave_escaped),
		cmocka_unit_test(test_million_short_tasks),
		cmocka_unit_test(test_fork_of_watched_workload),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
