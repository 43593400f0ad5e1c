/* taskmond's socket server (user/server.c) with stand-in callbacks, driven
 * by a thread as taskmond's loop drives it: the protocol, the peer's pid from
 * SO_PEERCRED, malformed requests, partial and slow clients, rate limits and
 * connection caps. Unprivileged: no BPF is loaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

struct fx {
	char dir[32], path[96];
	struct tmd_server *srv;
	pthread_t thread;
	atomic_bool stop;
	/* what the callbacks saw and do */
	atomic_int registered, last_pid, snapshots;
	atomic_uint snap_flags, snap_max;
	size_t doc_len;
	int register_error;
};

static int on_register(void *ctx, const struct tmd_peer *peer, char *why, size_t len)
{
	struct fx *f = ctx;
	atomic_store(&f->last_pid, peer->pid);
	if (f->register_error) {
		snprintf(why, len, "told to fail");
		return -f->register_error;
	}
	atomic_fetch_add(&f->registered, 1);
	return 0;
}

static char *on_snapshot(void *ctx, const struct tmd_peer *peer, const struct tm_wire_snapshot_req *req, size_t *len)
{
	struct fx *f = ctx;
	(void)peer;
	atomic_store(&f->snap_flags, req->flags);
	atomic_store(&f->snap_max, req->max_tasks);
	atomic_fetch_add(&f->snapshots, 1);
	/* Copied from a pattern made once: a byte loop under TSan would take the
	 * server thread a quarter of a second for 8 MiB. */
	static char *pattern;
	static size_t pattern_len;
	if (pattern_len < f->doc_len) {
		free(pattern);
		pattern = malloc(f->doc_len);
		for (size_t i = 0; i < f->doc_len; i++)
			pattern[i] = (char)('a' + i % 26);
		pattern_len = f->doc_len;
	}
	char *doc = malloc(f->doc_len);
	memcpy(doc, pattern, f->doc_len);
	*len = f->doc_len;
	return doc;
}

static void *drive(void *arg)
{
	struct fx *f = arg;
	while (!atomic_load(&f->stop)) {
		struct pollfd p = { .fd = tmd_server_fd(f->srv), .events = POLLIN };
		poll(&p, 1, 10);
		tmd_server_run(f->srv, now_ns());
	}
	return NULL;
}

static const struct tmd_server_ops ops = { .on_register = on_register, .on_snapshot = on_snapshot };

static int setup(void **state)
{
	char err[256];
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/tm_server.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/run/taskmon/taskmond.sock", f->dir);
	f->doc_len = 100;
	int r = tmd_server_open(&f->srv, f->path,
	                        TMD_SERVER_OPTS(.max_clients = 6, .max_clients_per_uid = 4, .register_rate = 10,
	                                        .request_timeout_ms = 300, .reply_timeout_ms = 1000),
	                        &ops, f, err, sizeof(err));
	if (r < 0) {
		print_error("server: %s\n", err);
		return -1;
	}
	pthread_create(&f->thread, NULL, drive, f);
	*state = f;
	return 0;
}

static void stop_driver(struct fx *f)
{
	if (!atomic_exchange(&f->stop, true))
		pthread_join(f->thread, NULL);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char dir[128];
	stop_driver(f);
	tmd_server_close(f->srv);
	snprintf(dir, sizeof(dir), "%s/run/taskmon", f->dir);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/run", f->dir);
	rmdir(dir);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- a client --------------------------------------------------------------------- */

static int cl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void cl_send_raw(int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void cl_send(int fd, uint16_t type, const void *payload, uint32_t len)
{
	struct tm_wire_hdr h = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = type, .len = len };
	cl_send_raw(fd, &h, sizeof(h));
	if (len)
		cl_send_raw(fd, payload, len);
}

/* Reads n bytes within timeout_ms: n, fewer at end of file, -1 on timeout. */
static ssize_t cl_read(int fd, void *buf, size_t n, int timeout_ms)
{
	size_t got = 0;
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	while (got < n) {
		uint64_t now = now_ns();
		if (now >= end)
			return -1;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)((end - now) / 1000000 + 1)) <= 0)
			continue;
		ssize_t k = recv(fd, (char *)buf + got, n - got, 0);
		if (k <= 0)
			return (ssize_t)got;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/* A whole reply; the body (NUL-terminated) is the caller's. */
static struct tm_wire_hdr cl_reply(int fd, char **body)
{
	struct tm_wire_hdr h;
	assert_int_equal(cl_read(fd, &h, sizeof(h), 5000), sizeof(h));
	assert_int_equal(h.magic, TM_WIRE_MAGIC);
	assert_int_equal(h.version, TM_WIRE_VERSION);
	char *b = malloc(h.len + 1);
	assert_int_equal(cl_read(fd, b, h.len, 10000), (ssize_t)h.len);
	b[h.len] = '\0';
	if (body)
		*body = b;
	else
		free(b);
	return h;
}

/* The server closed the connection: end of file within timeout_ms. */
static bool closed_by_server(int fd, int timeout_ms)
{
	char c;
	return cl_read(fd, &c, 1, timeout_ms) == 0;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_socket_file(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char dir[128], err[256];
	struct tmd_server *s2;
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0666);
	snprintf(dir, sizeof(dir), "%s/run/taskmon", f->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	/* A second server on a live socket refuses, and leaves it alone. */
	assert_int_equal(tmd_server_open(&s2, f->path, NULL, &ops, f, err, sizeof(err)), -EADDRINUSE);
	print_message("second server: %s\n", err);
	assert_int_equal(stat(f->path, &st), 0);
	/* A socket left by a dead server is replaced. */
	stop_driver(f);
	tmd_server_close(f->srv);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(tmd_server_open(&f->srv, f->path, NULL, &ops, f, err, sizeof(err)), 0);
	tmd_server_close(f->srv);
	assert_int_not_equal(stat(f->path, &st), 0);   /* removed at close */
	/* Not a socket: left alone. */
	FILE *file = fopen(f->path, "w");
	fclose(file);
	assert_int_equal(tmd_server_open(&f->srv, f->path, NULL, &ops, f, err, sizeof(err)), -EEXIST);
	unlink(f->path);
	assert_int_equal(tmd_server_open(&f->srv, f->path, NULL, &ops, f, err, sizeof(err)), 0);
}

static void test_register(void **state)
{
	struct fx *f = *state;
	int fd = cl_connect(f->path);
	cl_send(fd, TM_WIRE_REGISTER, NULL, 0);
	struct tm_wire_hdr h = cl_reply(fd, NULL);
	assert_int_equal(h.type, TM_WIRE_REGISTER | TM_WIRE_REPLY);
	assert_int_equal(h.status, 0);
	assert_int_equal(h.len, 0);
	assert_int_equal(atomic_load(&f->registered), 1);
	assert_int_equal(atomic_load(&f->last_pid), getpid());   /* from SO_PEERCRED */
	/* The connection goes on serving. */
	cl_send(fd, TM_WIRE_SNAPSHOT, NULL, 0);
	h = cl_reply(fd, NULL);
	assert_int_equal(h.type, TM_WIRE_SNAPSHOT | TM_WIRE_REPLY);
	/* A pid in the message is not how it works: an error, and closed. */
	int32_t pid = 1;
	cl_send(fd, TM_WIRE_REGISTER, &pid, sizeof(pid));
	char *why;
	h = cl_reply(fd, &why);
	assert_int_equal(h.type, TM_WIRE_ERROR);
	assert_int_equal(h.status, -EINVAL);
	print_message("error: %s\n", why);
	free(why);
	assert_true(closed_by_server(fd, 1000));
	close(fd);
	assert_int_equal(atomic_load(&f->registered), 1);
	/* A registration the collector cannot carry out. */
	f->register_error = ESRCH;
	fd = cl_connect(f->path);
	cl_send(fd, TM_WIRE_REGISTER, NULL, 0);
	h = cl_reply(fd, &why);
	assert_int_equal(h.type, TM_WIRE_ERROR);
	assert_int_equal(h.status, -ESRCH);
	assert_non_null(strstr(why, "told to fail"));
	free(why);
	close(fd);
}

static void test_snapshot(void **state)
{
	struct fx *f = *state;
	char *body;
	f->doc_len = 4u << 20;   /* more than a socket buffer: written over many turns */
	int fd = cl_connect(f->path);
	struct tm_wire_snapshot_req req = { .flags = TM_WIRE_SNAP_NO_TASKS, .max_tasks = 17 };
	cl_send(fd, TM_WIRE_SNAPSHOT, &req, sizeof(req));
	struct tm_wire_hdr h = cl_reply(fd, &body);
	assert_int_equal(h.type, TM_WIRE_SNAPSHOT | TM_WIRE_REPLY);
	assert_int_equal(h.len, 4u << 20);
	for (size_t i = 0; i < h.len; i += 4099)
		assert_int_equal(body[i], 'a' + i % 26);
	free(body);
	assert_int_equal(atomic_load(&f->snap_flags), TM_WIRE_SNAP_NO_TASKS);
	assert_int_equal(atomic_load(&f->snap_max), 17);
	close(fd);
}

static void expect_error(struct fx *f, const void *raw, size_t n, int status)
{
	int fd = cl_connect(f->path);
	char *why;
	cl_send_raw(fd, raw, n);
	struct tm_wire_hdr h = cl_reply(fd, &why);
	assert_int_equal(h.type, TM_WIRE_ERROR);
	assert_int_equal(h.status, status);
	assert_true(h.len > 0);
	print_message("error %d: %s\n", h.status, why);
	free(why);
	assert_true(closed_by_server(fd, 1000));
	close(fd);
}

static void test_malformed(void **state)
{
	struct fx *f = *state;
	struct tm_wire_hdr h = { .magic = 0x12345678, .version = TM_WIRE_VERSION, .type = TM_WIRE_SNAPSHOT };
	expect_error(f, &h, sizeof(h), -EPROTO);
	h = (struct tm_wire_hdr){ .magic = TM_WIRE_MAGIC, .version = 9, .type = TM_WIRE_SNAPSHOT };
	expect_error(f, &h, sizeof(h), -EPROTO);
	h = (struct tm_wire_hdr){ .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = 77 };
	expect_error(f, &h, sizeof(h), -EINVAL);
	h = (struct tm_wire_hdr){ .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = TM_WIRE_SNAPSHOT,
	                          .len = 1u << 30 };
	expect_error(f, &h, sizeof(h), -EINVAL);
	unsigned char odd[16 + 3];
	h = (struct tm_wire_hdr){ .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = TM_WIRE_SNAPSHOT, .len = 3 };
	memcpy(odd, &h, sizeof(h));
	expect_error(f, odd, sizeof(odd), -EINVAL);
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	expect_error(f, junk, sizeof(junk) - 1, -EPROTO);
	/* Garbage and a hang-up before a whole header: closed quietly. */
	int fd = cl_connect(f->path);
	cl_send_raw(fd, "abc", 3);
	close(fd);
	/* Still serving. */
	fd = cl_connect(f->path);
	cl_send(fd, TM_WIRE_SNAPSHOT, NULL, 0);
	assert_int_equal(cl_reply(fd, NULL).type, TM_WIRE_SNAPSHOT | TM_WIRE_REPLY);
	close(fd);
	struct tmd_server_stats st;
	stop_driver(f);
	tmd_server_get_stats(f->srv, &st);
	assert_int_equal(st.bad_requests, 6);
}

static void test_partial_and_stalled(void **state)
{
	struct fx *f = *state;
	/* A header in single bytes. */
	int fd = cl_connect(f->path);
	struct tm_wire_hdr h = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = TM_WIRE_SNAPSHOT };
	for (size_t i = 0; i < sizeof(h); i++) {
		cl_send_raw(fd, (char *)&h + i, 1);
		sleep_ms(3);
	}
	assert_int_equal(cl_reply(fd, NULL).type, TM_WIRE_SNAPSHOT | TM_WIRE_REPLY);
	close(fd);
	/* Half a header, then nothing: the others are served meanwhile, and it
	 * is closed after the request timeout. */
	int stalled = cl_connect(f->path);
	cl_send_raw(stalled, &h, 7);
	uint64_t t0 = now_ns();
	fd = cl_connect(f->path);
	cl_send(fd, TM_WIRE_REGISTER, NULL, 0);
	assert_int_equal(cl_reply(fd, NULL).status, 0);
	double served_ms = (double)(now_ns() - t0) / 1e6;
	close(fd);
	assert_true(closed_by_server(stalled, 3000));
	double closed_ms = (double)(now_ns() - t0) / 1e6;
	print_message("another client served in %.1f ms; the stalled one closed after %.0f ms\n", served_ms, closed_ms);
	assert_true(served_ms < 200);
	assert_true(closed_ms >= 250 && closed_ms < 2000);
	close(stalled);
	/* An idle connection is closed too. */
	fd = cl_connect(f->path);
	assert_true(closed_by_server(fd, 3000));
	close(fd);
}

static void test_slow_reader(void **state)
{
	struct fx *f = *state;
	f->doc_len = 8u << 20;
	int slow = cl_connect(f->path);
	cl_send(slow, TM_WIRE_SNAPSHOT, NULL, 0);   /* makes the pattern before anything is timed */
	char *warm;
	cl_reply(slow, &warm);
	free(warm);
	int never = cl_connect(f->path);
	cl_send(slow, TM_WIRE_SNAPSHOT, NULL, 0);
	cl_send(never, TM_WIRE_SNAPSHOT, NULL, 0);
	sleep_ms(100);
	/* Neither reads: the loop goes on. */
	uint64_t t0 = now_ns();
	int fd = cl_connect(f->path);
	cl_send(fd, TM_WIRE_REGISTER, NULL, 0);
	assert_int_equal(cl_reply(fd, NULL).status, 0);
	double ms = (double)(now_ns() - t0) / 1e6;
	close(fd);
	print_message("registration answered in %.1f ms while two snapshots wait to be read\n", ms);
	assert_true(ms < 200);
	/* The slow one reads it all, in time. */
	char *body;
	struct tm_wire_hdr h = cl_reply(slow, &body);
	assert_int_equal(h.len, 8u << 20);
	assert_int_equal(body[h.len - 1], 'a' + (h.len - 1) % 26);
	free(body);
	close(slow);
	/* The one that never reads is cut off after the reply timeout. */
	sleep_ms(1300);
	struct tm_wire_hdr hh;
	ssize_t n = cl_read(never, &hh, sizeof(hh), 1000);
	assert_int_equal(n, sizeof(hh));
	char buf[65536];
	size_t total = 0;
	ssize_t k;
	while ((k = cl_read(never, buf, sizeof(buf), 1000)) > 0)
		total += (size_t)k;
	assert_true(total < hh.len);
	close(never);
	struct tmd_server_stats st;
	stop_driver(f);
	tmd_server_get_stats(f->srv, &st);
	assert_true(st.timeouts >= 1);
}

static void test_rate_limit(void **state)
{
	struct fx *f = *state;
	int ok = 0, limited = 0;
	for (int i = 0; i < 15; i++) {
		int fd = cl_connect(f->path);
		cl_send(fd, TM_WIRE_REGISTER, NULL, 0);
		struct tm_wire_hdr h = cl_reply(fd, NULL);
		if (h.status == 0)
			ok++;
		else if (h.type == TM_WIRE_ERROR && h.status == -EAGAIN)
			limited++;
		close(fd);
	}
	print_message("15 registrations in a burst: %d answered, %d refused\n", ok, limited);
	assert_true(ok >= 10 && ok <= 11);   /* a token may come back during the burst */
	assert_int_equal(ok + limited, 15);
	sleep_ms(250);   /* 10 per second: two tokens back */
	int fd = cl_connect(f->path);
	cl_send(fd, TM_WIRE_REGISTER, NULL, 0);
	assert_int_equal(cl_reply(fd, NULL).status, 0);
	close(fd);
}

static void test_connection_cap(void **state)
{
	struct fx *f = *state;
	int fds[4];
	for (int i = 0; i < 4; i++)
		fds[i] = cl_connect(f->path);
	sleep_ms(50);
	int extra = cl_connect(f->path);
	struct tm_wire_hdr h = cl_reply(extra, NULL);
	assert_int_equal(h.type, TM_WIRE_ERROR);
	assert_int_equal(h.status, -EMFILE);
	assert_true(closed_by_server(extra, 1000));
	close(extra);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	sleep_ms(50);
	int fd = cl_connect(f->path);
	cl_send(fd, TM_WIRE_SNAPSHOT, NULL, 0);
	assert_int_equal(cl_reply(fd, NULL).type, TM_WIRE_SNAPSHOT | TM_WIRE_REPLY);
	close(fd);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_socket_file),      T(test_register), T(test_snapshot),   T(test_malformed),
		T(test_partial_and_stalled), T(test_slow_reader), T(test_rate_limit), T(test_connection_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
