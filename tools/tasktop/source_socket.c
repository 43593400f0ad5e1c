/* Live source: taskmond's snapshot socket (protocol in user/server.h, wire
 * structs in lib/wire.h).
 *
 * Never blocking past the caller's timeout: the socket is non-blocking and
 * every wait is a poll with the time left. A reply still on its way when the
 * time is up is picked up by the next fetch (the request is not sent again);
 * one that takes longer than REPLY_GIVE_UP_MS, or a collector that goes away,
 * closes the connection, and the next fetches reconnect, no more often than a
 * backoff of 100 ms doubling up to 2 s allows.
 */
#include "source_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "snapshot_parse.h"
#include "wire.h"

#define MAX_REPLY          (64u << 20)    /* bytes, as the collector bounds its queued replies */
#define MAX_ERROR_TEXT     1024u
#define REPLY_GIVE_UP_MS   10000u         /* the collector itself drops a reply not taken in 10 s */
#define BACKOFF_MIN_MS     100u
#define BACKOFF_MAX_MS     2000u

enum conn_state { C_CLOSED, C_IDLE, C_WAIT_HDR, C_WAIT_BODY };

struct sock_impl {
	int fd;
	enum conn_state st;
	struct tm_wire_hdr hdr;
	size_t got;               /* bytes of hdr or body read so far */
	char *body;
	uint64_t sent_ns;         /* when the pending request went out */
	uint64_t next_try_ns;     /* reconnect not before */
	unsigned failures;        /* in a row */
	bool ever_connected;
	char last_error[160];
};

static uint64_t mono(void)
{
	return tt__now_ns(CLOCK_MONOTONIC);
}

static int ms_left(uint64_t deadline)
{
	uint64_t now = mono();
	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

static void conn_close(struct sock_impl *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	k->st = C_CLOSED;
	free(k->body);
	k->body = NULL;
	k->got = 0;
}

/* After a failure (what + detail): close, back off, and say so. Always
 * -EAGAIN: try later. */
static int failed(struct tt_source *s, const char *what, const char *detail)
{
	struct sock_impl *k = s->impl;
	conn_close(k);
	k->failures++;
	uint64_t delay = BACKOFF_MIN_MS << (k->failures < 6 ? k->failures - 1 : 5);
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	k->next_try_ns = mono() + delay * 1000000ull;
	snprintf(k->last_error, sizeof(k->last_error), "%s%s", what, detail);
	if (s->prev)
		tt__source_status(s, TT_HEALTH_STALE, "collector at %s gone (%s): reconnecting, attempt %u",
		                  s->socket_path, k->last_error, k->failures);
	else
		tt__source_status(s, TT_HEALTH_NONE, "no collector at %s (%s): retrying", s->socket_path,
		                  k->last_error);
	return -EAGAIN;
}

static int make_addr(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	strcpy(a->sun_path, path);
	return 0;
}

/* A non-blocking connection, established within the deadline. fd or -errno. */
static int connect_within(const char *path, uint64_t deadline)
{
	struct sockaddr_un a;
	int rc = make_addr(path, &a);
	if (rc < 0)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	rc = -errno;
	if (rc == -EINPROGRESS || rc == -EAGAIN) {
		/* the listen queue is full: wait for room, as long as allowed */
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int err = 0;
		socklen_t len = sizeof(err);
		if (poll(&p, 1, ms_left(deadline)) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && !err)
			return fd;
		rc = err ? -err : -ETIMEDOUT;
	}
	close(fd);
	return rc;
}

int tt__socket_probe(const char *path)
{
	int fd = connect_within(path, mono() + 200 * 1000000ull);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/* The request is 24 bytes: it fits in any socket buffer, so one send does it
 * or the connection is broken. */
static int send_request(struct tt_source *s)
{
	struct sock_impl *k = s->impl;
	struct {
		struct tm_wire_hdr h;
		struct tm_wire_snapshot_req r;
	} msg = {
		.h = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = TM_WIRE_SNAPSHOT,
		       .len = sizeof(struct tm_wire_snapshot_req) },
		.r = { .flags = s->opts.no_tasks ? TM_WIRE_SNAP_NO_TASKS : 0, .max_tasks = s->opts.max_tasks },
	};
	ssize_t n = send(k->fd, &msg, sizeof(msg), MSG_NOSIGNAL);
	if (n != (ssize_t)sizeof(msg))
		return n < 0 ? -errno : -EPIPE;
	k->st = C_WAIT_HDR;
	k->got = 0;
	k->sent_ns = mono();
	return 0;
}

/* Reads into buf[k->got, want) until complete or the deadline. 1 done, 0 not
 * yet, negative errno (-EPIPE: the collector closed the connection). */
static int read_some(struct sock_impl *k, void *buf, size_t want, uint64_t deadline)
{
	while (k->got < want) {
		ssize_t n = recv(k->fd, (char *)buf + k->got, want - k->got, 0);
		if (n > 0) {
			k->got += (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int left = ms_left(deadline);
		if (!left)
			return 0;
		struct pollfd p = { .fd = k->fd, .events = POLLIN };
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return -errno;
	}
	return 1;
}

/* Keeps printable ASCII of the collector's error sentence. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

static int check_header(struct tt_source *s)
{
	struct sock_impl *k = s->impl;
	const struct tm_wire_hdr *h = &k->hdr;
	char what[96];
	if (h->magic != TM_WIRE_MAGIC || h->version != TM_WIRE_VERSION) {
		snprintf(what, sizeof(what), "magic %#x version %u", h->magic, h->version);
		return failed(s, "not a taskmon collector reply: ", what);
	}
	if (h->type == TM_WIRE_ERROR) {
		if (h->len > MAX_ERROR_TEXT)
			return failed(s, "an error reply too long to be one", "");
		return 0;
	}
	if (h->type != (TM_WIRE_SNAPSHOT | TM_WIRE_REPLY)) {
		snprintf(what, sizeof(what), "type %#x", h->type);
		return failed(s, "an unexpected reply: ", what);
	}
	if (h->len > MAX_REPLY || h->len == 0) {
		snprintf(what, sizeof(what), "%u bytes", h->len);
		return failed(s, "a snapshot of an unlikely size: ", what);
	}
	return 0;
}

/* Waits for the reply's header, then its body. 1 complete, 0 not yet, -EAGAIN after a failure. */
static int receive(struct tt_source *s, uint64_t deadline)
{
	struct sock_impl *k = s->impl;
	int rc;
	if (k->st == C_WAIT_HDR) {
		rc = read_some(k, &k->hdr, sizeof(k->hdr), deadline);
		if (rc <= 0)
			return rc < 0 ? failed(s, "", rc == -EPIPE ? "it closed the connection" : strerror(-rc)) : 0;
		if ((rc = check_header(s)) < 0)
			return rc;
		k->body = malloc((size_t)k->hdr.len + 1);
		if (!k->body)
			return failed(s, "out of memory for the snapshot", "");
		k->st = C_WAIT_BODY;
		k->got = 0;
	}
	rc = read_some(k, k->body, k->hdr.len, deadline);
	if (rc <= 0)
		return rc < 0 ? failed(s, "", rc == -EPIPE ? "it closed the connection" : strerror(-rc)) : 0;
	return 1;
}

/* A whole reply in k->body: a model, or an error sentence from the collector. */
static int take_reply(struct tt_source *s, struct tt_model **out)
{
	struct sock_impl *k = s->impl;
	char *body = k->body;
	size_t len = k->hdr.len;
	k->body = NULL;
	k->st = C_IDLE;
	if (k->hdr.type == TM_WIRE_ERROR) {
		body[len] = '\0';
		sanitize(body);
		char msg[MAX_ERROR_TEXT + 64];
		int st = k->hdr.status;
		snprintf(msg, sizeof(msg), "it refused the snapshot: %s (%s)", body,
		         st < 0 && st > -4096 ? strerror(-st) : "no error number");
		free(body);
		return failed(s, msg, "");   /* the collector closes after an error */
	}
	struct tt_model *m = tt_model_new(TT_SRC_LIVE);
	if (!m) {
		free(body);
		return failed(s, "out of memory", "");
	}
	char err[200];
	int rc = tt_snapshot_parse_owned(m, body, len, err, sizeof(err));
	if (rc < 0) {
		tt_model_free(m);
		return failed(s, "it sent a malformed snapshot: ", err);
	}
	k->failures = 0;
	k->ever_connected = true;
	m->kernel_figures = true;
	m->source = TT_SRC_LIVE;
	tt__source_status(s, m->bad_fields ? TT_HEALTH_DEGRADED : TT_HEALTH_OK,
	                  "live from %s (collector pid %d, %s)%s", s->socket_path, (int)m->collector.pid,
	                  m->collector.mode[0] ? m->collector.mode : "mode unknown",
	                  m->bad_fields ? ": some fields were malformed and read as 0" : "");
	*out = m;
	return 0;
}

static int sock_sample(struct tt_source *s, int timeout_ms, struct tt_model **out)
{
	struct sock_impl *k = s->impl;
	uint64_t deadline = mono() + (uint64_t)timeout_ms * 1000000ull;
	if (k->st == C_CLOSED) {
		if (mono() < k->next_try_ns)
			return -EAGAIN;   /* status still says why */
		int fd = connect_within(s->socket_path, deadline);
		if (fd < 0)
			return failed(s, "connect: ", strerror(-fd));
		k->fd = fd;
		k->st = C_IDLE;
	}
	if (k->st == C_IDLE) {
		int rc = send_request(s);
		if (rc < 0)
			return failed(s, "send: ", strerror(-rc));
	}
	int rc = receive(s, deadline);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		if (mono() - k->sent_ns > REPLY_GIVE_UP_MS * 1000000ull)
			return failed(s, "no reply within 10 s", "");
		tt__source_status(s, s->prev ? TT_HEALTH_STALE : TT_HEALTH_NONE,
		                  "waiting for the collector at %s to answer", s->socket_path);
		return -EAGAIN;
	}
	return take_reply(s, out);
}

static void sock_close(struct tt_source *s)
{
	struct sock_impl *k = s->impl;
	if (!k)
		return;
	conn_close(k);
	free(k);
}

static const struct tt_source_ops sock_ops = {
	.sample = sock_sample,
	.close = sock_close,
};

int tt_source_open_socket(struct tt_source **out, const struct tt_source_opts *opts, char *err, size_t errlen)
{
	struct tt_source *s;
	int rc = tt__source_new(&s, TT_SRC_LIVE, &sock_ops, opts, err, errlen);
	if (rc < 0)
		return rc;
	struct sockaddr_un a;
	if (make_addr(s->socket_path, &a) < 0) {
		snprintf(err, errlen, "the socket path %s is too long for a Unix socket", s->socket_path);
		tt_source_close(s);
		return -ENAMETOOLONG;
	}
	struct sock_impl *k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		tt_source_close(s);
		return -ENOMEM;
	}
	k->fd = -1;
	s->impl = k;
	tt__source_status(s, TT_HEALTH_NONE, "connecting to the collector at %s", s->socket_path);
	*out = s;
	return 0;
}
