/* Registration with the collector in tm_init (lib/register.c), against a fake
 * collector: a thread that listens on a socket in a temporary directory named
 * by $TASKMON_SOCKET. Unprivileged. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "core.h"
#include "taskmon.h"
#include "test_util.h"
#include "wire.h"

enum behaviour { ANSWER, ANSWER_ERROR, SILENT, HANG_UP };

struct fake {
	char dir[32], path[64];
	int lfd;
	enum behaviour how;
	unsigned delay_ms;       /* before answering */
	pthread_t thread;
	/* what it saw */
	bool got;
	struct tm_wire_hdr req;
	ssize_t req_bytes;
	struct ucred peer;
	uint64_t answered_ns;
};

/* Waits up to ms for fd to be readable. */
static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, ms) > 0;
}

static void *serve_one(void *arg)
{
	struct fake *f = arg;
	if (!readable(f->lfd, 5000))
		return NULL;
	int c = accept(f->lfd, NULL, NULL);
	if (c < 0)
		return NULL;
	socklen_t len = sizeof(f->peer);
	getsockopt(c, SOL_SOCKET, SO_PEERCRED, &f->peer, &len);
	if (f->how == HANG_UP) {
		close(c);
		return NULL;
	}
	if (readable(c, 5000)) {
		f->req_bytes = recv(c, &f->req, sizeof(f->req), MSG_WAITALL);
		f->got = true;
	}
	if (f->how == SILENT) {
		readable(c, 2000);   /* until the client gives up and closes */
		close(c);
		return NULL;
	}
	sleep_ms(f->delay_ms);
	static const char why[] = "registrations from uid 0 exceed 10 per second";
	struct tm_wire_hdr rep = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION,
	                           .type = TM_WIRE_REGISTER | TM_WIRE_REPLY };
	if (f->how == ANSWER_ERROR)
		rep = (struct tm_wire_hdr){ .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION,
		                            .type = TM_WIRE_ERROR, .status = -EAGAIN, .len = sizeof(why) - 1 };
	f->answered_ns = now_ns();
	if (send(c, &rep, sizeof(rep), MSG_NOSIGNAL) == (ssize_t)sizeof(rep) && rep.len)
		send(c, why, rep.len, MSG_NOSIGNAL);
	readable(c, 1000);
	close(c);
	return NULL;
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/tm_register.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/taskmond.sock", f->dir);
	f->lfd = -1;
	setenv("TASKMON_SOCKET", f->path, 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;
	if (f->lfd >= 0)
		close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	unsetenv("TASKMON_SOCKET");
	free(f);
	return 0;
}

static void listen_on(struct fake *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
}

/* Joins the server thread and removes its socket, for a second round. */
static void stop_fake(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
	f->lfd = -1;
	unlink(f->path);
}

static void start_fake(struct fake *f, enum behaviour how, unsigned delay_ms)
{
	f->how = how;
	f->delay_ms = delay_ms;
	listen_on(f);
	assert_int_equal(pthread_create(&f->thread, NULL, serve_one, f), 0);
}

/* tm_init's duration in ms; it must succeed. */
static double timed_init(void)
{
	uint64_t t0 = now_ns();
	assert_int_equal(tm_init(NULL), 0);
	double ms = (double)(now_ns() - t0) / 1e6;
	tm_shutdown();
	return ms;
}

static void test_registration_sent_and_awaited(void **state)
{
	struct fake *f = *state;
	start_fake(f, ANSWER, 20);
	uint64_t t0 = now_ns();
	assert_int_equal(tm_init(NULL), 0);
	uint64_t t1 = now_ns();
	tm_shutdown();
	pthread_join(f->thread, NULL);
	assert_true(f->got);
	assert_int_equal(f->req_bytes, sizeof(struct tm_wire_hdr));
	assert_int_equal(f->req.magic, TM_WIRE_MAGIC);
	assert_int_equal(f->req.version, TM_WIRE_VERSION);
	assert_int_equal(f->req.type, TM_WIRE_REGISTER);
	assert_int_equal(f->req.len, 0);
	assert_int_equal(f->req.status, 0);
	assert_int_equal(f->peer.pid, getpid());
	/* tm_init returned after the answer, not before. */
	assert_true(t1 >= f->answered_ns);
	print_message("tm_init with a collector answering after 20 ms: %.1f ms\n", (double)(t1 - t0) / 1e6);
}

static void test_register_result(void **state)
{
	struct fake *f = *state;
	start_fake(f, ANSWER, 0);
	assert_int_equal(tm__collector_register(), 0);
	pthread_join(f->thread, NULL);
}

static void test_error_reply_is_silent(void **state)
{
	struct fake *f = *state;
	start_fake(f, ANSWER_ERROR, 0);
	assert_int_equal(tm__collector_register(), -EAGAIN);
	stop_fake(f);
	start_fake(f, ANSWER_ERROR, 0);
	double ms = timed_init();
	pthread_join(f->thread, NULL);
	assert_true(ms < 1000);
}

static void test_no_collector_is_fast(void **state)
{
	struct fake *f = *state;
	/* No socket file: ENOENT at once. */
	uint64_t t0 = now_ns();
	assert_int_equal(tm__collector_register(), -ENOENT);
	double reg_ms = (double)(now_ns() - t0) / 1e6;
	double ms = timed_init();
	print_message("no collector: registration %.3f ms, tm_init %.1f ms\n", reg_ms, ms);
	assert_true(reg_ms < 10);
	assert_true(ms < 45);   /* far from the 50 ms an unanswered registration waits */

	/* A socket file nobody listens on (a collector that died): ECONNREFUSED at once. */
	listen_on(f);
	close(f->lfd);
	f->lfd = -1;
	t0 = now_ns();
	assert_int_equal(tm__collector_register(), -ECONNREFUSED);
	reg_ms = (double)(now_ns() - t0) / 1e6;
	ms = timed_init();
	print_message("dead collector: registration %.3f ms, tm_init %.1f ms\n", reg_ms, ms);
	assert_true(reg_ms < 10);
	assert_true(ms < 45);
}

static void test_silent_collector_costs_50ms(void **state)
{
	struct fake *f = *state;
	start_fake(f, SILENT, 0);
	uint64_t t0 = now_ns();
	assert_int_equal(tm__collector_register(), -ETIMEDOUT);
	double reg_ms = (double)(now_ns() - t0) / 1e6;
	stop_fake(f);
	assert_true(f->got);
	print_message("silent collector: registration gave up after %.1f ms\n", reg_ms);
	assert_true(reg_ms >= 49 && reg_ms < 500);

	start_fake(f, SILENT, 0);
	double ms = timed_init();
	pthread_join(f->thread, NULL);
	print_message("silent collector: tm_init %.1f ms\n", ms);
	assert_true(ms >= 49 && ms < 1000);
}

static void test_hang_up(void **state)
{
	struct fake *f = *state;
	start_fake(f, HANG_UP, 0);
	int r = tm__collector_register();
	pthread_join(f->thread, NULL);
	assert_true(r == -ECONNRESET || r == -EPIPE);
}

/* Each test gets its own socket: the fake is set up anew. */
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_registration_sent_and_awaited),
		T(test_register_result),
		T(test_error_reply_is_silent),
		T(test_no_collector_is_fast),
		T(test_silent_collector_costs_50ms),
		T(test_hang_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
