/* taskmond's Unix socket (protocol in server.h). Single-threaded and
 * non-blocking: one epoll instance holds the listener and the connections;
 * every connection has a deadline. */
#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST   64     /* payload bytes a request may carry */
#define RATE_SLOTS    64     /* uids the rate limiter remembers */
#define ACCEPT_BATCH  64

struct client {
	int fd;
	bool closing;
	bool replying;           /* a reply is being written: no request is read meanwhile */
	bool close_after;        /* after the reply: an error ends the connection */
	struct tmd_peer peer;
	uint64_t deadline;
	/* the request being read */
	struct tm_wire_hdr req;
	size_t req_got;
	unsigned char payload[MAX_REQUEST];
	size_t payload_got;
	/* the reply being written: header, then body */
	struct tm_wire_hdr rep;
	char *body;
	size_t body_len, sent;   /* sent counts header and body bytes */
};

struct rate {
	uid_t uid;
	double tokens;
	uint64_t last_ns;
	bool used;
};

struct tmd_server {
	struct tmd_server_opts o;
	struct tmd_server_ops ops;
	void *ctx;
	int lfd, epfd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct client **clients;
	size_t nclients;
	size_t pending_bytes;
	uint64_t now;
	struct rate rates[RATE_SLOTS];
	struct tmd_server_stats st;
};

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t len, int e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && len)
		vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -e;
}

/* ---- the socket file ------------------------------------------------------------ */

/* Creates the missing directories of path's parent, 0755. */
static int make_parent(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(dir, 0755) == 0)
			chmod(dir, 0755);   /* whatever the umask */
		else if (errno != EEXIST)
			return fail(err, errlen, errno, "cannot create directory %s: %s", dir, strerror(errno));
		*p = c;
		if (!c)
			return 0;
	}
}

/* A socket file already there: a live collector's (refuse), a dead one's (remove), or no socket (refuse). */
static int clear_stale(const struct sockaddr_un *sa, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(sa->sun_path, &st) != 0)
		return errno == ENOENT ? 0 : fail(err, errlen, errno, "%s: %s", sa->sun_path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return fail(err, errlen, EEXIST, "%s exists and is not a socket; left alone", sa->sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errlen, errno, "socket: %s", strerror(errno));
	int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int e = errno;
	close(fd);
	if (r == 0)
		return fail(err, errlen, EADDRINUSE, "another taskmond is serving %s; stop it or give --socket another path",
		            sa->sun_path);
	if (e != ECONNREFUSED && e != ENOENT)
		return fail(err, errlen, e, "cannot check %s: %s", sa->sun_path, strerror(e));
	if (unlink(sa->sun_path) != 0 && errno != ENOENT)
		return fail(err, errlen, errno, "cannot remove the stale socket %s: %s", sa->sun_path, strerror(errno));
	return 0;
}

static int listen_on(struct tmd_server *s, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return fail(err, errlen, ENAMETOOLONG, "the socket path must be 1 to %zu bytes", sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int r = make_parent(path, err, errlen);
	if (r == 0)
		r = clear_stale(&sa, err, errlen);
	if (r < 0)
		return r;
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return fail(err, errlen, errno, "socket: %s", strerror(errno));
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return fail(err, errlen, errno, "cannot bind %s: %s", path, strerror(errno));
	snprintf(s->path, sizeof(s->path), "%s", path);
	if (lstat(path, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
	/* World-connectable: workloads of every user register. */
	if (chmod(path, 0666) != 0)
		return fail(err, errlen, errno, "cannot chmod %s: %s", path, strerror(errno));
	if (listen(s->lfd, 128) != 0)
		return fail(err, errlen, errno, "cannot listen on %s: %s", path, strerror(errno));
	return 0;
}

/* ---- connections ------------------------------------------------------------------ */

static void set_events(struct tmd_server *s, struct client *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void client_close(struct tmd_server *s, struct client *c)
{
	if (c->closing)
		return;
	c->closing = true;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	if (c->body) {
		s->pending_bytes -= c->body_len;
		free(c->body);
		c->body = NULL;
	}
}

/* Frees the connections closed during this run: events later in the same
 * batch may still point at them. */
static void reap(struct tmd_server *s)
{
	size_t k = 0;
	for (size_t i = 0; i < s->nclients; i++) {
		if (s->clients[i]->closing)
			free(s->clients[i]);
		else
			s->clients[k++] = s->clients[i];
	}
	s->nclients = k;
}

static size_t reply_size(const struct client *c)
{
	return sizeof(c->rep) + c->body_len;
}

/* Writes what the socket takes; true when the reply is all out. */
static bool write_some(struct tmd_server *s, struct client *c)
{
	while (c->sent < reply_size(c)) {
		struct iovec iov[2];
		int n = 0;
		if (c->sent < sizeof(c->rep))
			iov[n++] = (struct iovec){ (char *)&c->rep + c->sent, sizeof(c->rep) - c->sent };
		size_t body_off = c->sent > sizeof(c->rep) ? c->sent - sizeof(c->rep) : 0;
		if (c->body_len > body_off)
			iov[n++] = (struct iovec){ c->body + body_off, c->body_len - body_off };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				client_close(s, c);   /* the peer went away */
			return false;
		}
		c->sent += (size_t)w;
	}
	return true;
}

static void reply_done(struct tmd_server *s, struct client *c)
{
	if (c->body) {
		s->pending_bytes -= c->body_len;
		free(c->body);
		c->body = NULL;
	}
	c->body_len = c->sent = 0;
	c->replying = false;
	if (c->close_after) {
		client_close(s, c);
		return;
	}
	c->req_got = c->payload_got = 0;
	c->deadline = s->now + s->o.request_timeout_ms * 1000000ull;
	set_events(s, c, EPOLLIN | EPOLLRDHUP);
}

/* Queues a reply (body taken over) and writes what it can at once. */
static void send_reply(struct tmd_server *s, struct client *c, uint16_t type, int32_t status, char *body,
                       size_t len, bool close_after)
{
	c->rep = (struct tm_wire_hdr){ .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = type,
	                               .len = (uint32_t)len, .status = status };
	c->body = body;
	c->body_len = len;
	c->sent = 0;
	c->replying = true;
	c->close_after = close_after;
	s->pending_bytes += len;
	c->deadline = s->now + s->o.reply_timeout_ms * 1000000ull;
	if (write_some(s, c))
		reply_done(s, c);
	else if (!c->closing)
		set_events(s, c, EPOLLOUT);
}

__attribute__((format(printf, 4, 5)))
static void send_error(struct tmd_server *s, struct client *c, int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
	char *body = len ? malloc(len) : NULL;
	if (body)
		memcpy(body, msg, len);
	send_reply(s, c, TM_WIRE_ERROR, -err, body, body ? len : 0, true);
}

/* Token bucket per uid: `register_rate` per second, as many in a burst. */
static bool rate_allow(struct tmd_server *s, uid_t uid)
{
	struct rate *r = NULL, *oldest = &s->rates[0];
	for (size_t i = 0; i < RATE_SLOTS && !r; i++) {
		if (s->rates[i].used && s->rates[i].uid == uid)
			r = &s->rates[i];
		else if (!s->rates[i].used || (oldest->used && s->rates[i].last_ns < oldest->last_ns))
			oldest = &s->rates[i];
	}
	double rate = s->o.register_rate;
	if (!r) {
		r = oldest;
		*r = (struct rate){ .uid = uid, .tokens = rate, .last_ns = s->now, .used = true };
	}
	r->tokens += (double)(s->now - r->last_ns) / 1e9 * rate;
	if (r->tokens > rate)
		r->tokens = rate;
	r->last_ns = s->now;
	if (r->tokens < 1.0)
		return false;
	r->tokens -= 1.0;
	return true;
}

static void do_register(struct tmd_server *s, struct client *c)
{
	char why[256] = "";
	if (c->req.len != 0) {
		s->st.bad_requests++;
		send_error(s, c, EINVAL, "REGISTER carries no payload (got %u bytes)", c->req.len);
		return;
	}
	if (!rate_allow(s, c->peer.uid)) {
		s->st.registrations_refused++;
		send_error(s, c, EAGAIN, "registrations from uid %u exceed %u per second", (unsigned)c->peer.uid,
		           s->o.register_rate);
		return;
	}
	int r = s->ops.on_register ? s->ops.on_register(s->ctx, &c->peer, why, sizeof(why)) : -ENOSYS;
	if (r < 0) {
		s->st.registrations_refused++;
		send_error(s, c, -r, "cannot watch process %d: %s", (int)c->peer.pid, why[0] ? why : strerror(-r));
		return;
	}
	s->st.registrations++;
	send_reply(s, c, TM_WIRE_REGISTER | TM_WIRE_REPLY, 0, NULL, 0, false);
}

static void do_snapshot(struct tmd_server *s, struct client *c)
{
	struct tm_wire_snapshot_req req = { 0 };
	if (c->req.len != 0 && c->req.len != sizeof(req)) {
		s->st.bad_requests++;
		send_error(s, c, EINVAL, "SNAPSHOT takes 0 or %zu payload bytes, not %u", sizeof(req), c->req.len);
		return;
	}
	memcpy(&req, c->payload, c->req.len);
	if (s->pending_bytes >= s->o.max_pending_bytes) {
		send_error(s, c, EBUSY, "too many snapshots are being sent; try again");
		return;
	}
	size_t len = 0;
	char *doc = s->ops.on_snapshot ? s->ops.on_snapshot(s->ctx, &c->peer, &req, &len) : (errno = ENOSYS, NULL);
	if (!doc || len > UINT32_MAX) {
		int e = doc ? EFBIG : errno ? errno : ENOMEM;
		free(doc);
		send_error(s, c, e, "cannot make a snapshot: %s", strerror(e));
		return;
	}
	s->st.snapshots++;
	send_reply(s, c, TM_WIRE_SNAPSHOT | TM_WIRE_REPLY, 0, doc, len, false);
}

static bool header_ok(struct tmd_server *s, struct client *c)
{
	const struct tm_wire_hdr *h = &c->req;
	if (h->magic != TM_WIRE_MAGIC || h->version != TM_WIRE_VERSION) {
		s->st.bad_requests++;
		send_error(s, c, EPROTO, "not a taskmon request (magic %#x, version %u; want %#x, %u)", h->magic,
		           h->version, TM_WIRE_MAGIC, TM_WIRE_VERSION);
		return false;
	}
	if (h->type != TM_WIRE_REGISTER && h->type != TM_WIRE_SNAPSHOT) {
		s->st.bad_requests++;
		send_error(s, c, EINVAL, "unknown request type %u", h->type);
		return false;
	}
	if (h->len > MAX_REQUEST) {
		s->st.bad_requests++;
		send_error(s, c, EINVAL, "request payload of %u bytes; at most %d", h->len, MAX_REQUEST);
		return false;
	}
	return true;
}

/* Reads what has arrived; handles the request once it is whole. */
static void read_some(struct tmd_server *s, struct client *c)
{
	for (;;) {
		void *dst;
		size_t want;
		if (c->req_got < sizeof(c->req)) {
			dst = (char *)&c->req + c->req_got;
			want = sizeof(c->req) - c->req_got;
		} else {
			dst = c->payload + c->payload_got;
			want = c->req.len - c->payload_got;
		}
		ssize_t n = want ? recv(c->fd, dst, want, MSG_DONTWAIT) : 0;
		if (want && n == 0) {
			client_close(s, c);   /* the peer is done */
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				client_close(s, c);
			return;
		}
		if (c->req_got < sizeof(c->req)) {
			c->req_got += (size_t)n;
			if (c->req_got == sizeof(c->req) && !header_ok(s, c))
				return;
			if (c->req_got < sizeof(c->req))
				continue;
		} else {
			c->payload_got += (size_t)n;
		}
		if (c->payload_got < c->req.len)
			continue;
		if (c->req.type == TM_WIRE_REGISTER)
			do_register(s, c);
		else
			do_snapshot(s, c);
		return;   /* one request at a time: the next is read once the reply is out */
	}
}

static unsigned clients_of(const struct tmd_server *s, uid_t uid)
{
	unsigned n = 0;
	for (size_t i = 0; i < s->nclients; i++)
		n += !s->clients[i]->closing && s->clients[i]->peer.uid == uid;
	return n;
}

/* Too many: a best-effort error, then closed. */
static void refuse(struct tmd_server *s, int fd, const char *why)
{
	struct tm_wire_hdr h = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = TM_WIRE_ERROR,
	                         .status = -EMFILE, .len = (uint32_t)strlen(why) };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)why, h.len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	(void)!sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
	s->st.refused_connections++;
}

static void accept_some(struct tmd_server *s)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;   /* EAGAIN, or a connection that went away: the next one waits */
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
			close(fd);
			continue;
		}
		if (s->nclients >= s->o.max_clients) {
			refuse(s, fd, "too many connections to taskmond");
			continue;
		}
		if (clients_of(s, cred.uid) >= s->o.max_clients_per_uid) {
			refuse(s, fd, "too many connections to taskmond from this user");
			continue;
		}
		struct client *c = calloc(1, sizeof(*c));
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		if (!c || epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->peer = (struct tmd_peer){ .pid = cred.pid, .uid = cred.uid, .gid = cred.gid };
		c->deadline = s->now + s->o.request_timeout_ms * 1000000ull;
		s->clients[s->nclients++] = c;
		s->st.accepted++;
	}
}

static void client_io(struct tmd_server *s, struct client *c, uint32_t events)
{
	if (c->closing)
		return;
	if (c->replying) {
		if (write_some(s, c))
			reply_done(s, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		read_some(s, c);
}

void tmd_server_run(struct tmd_server *s, uint64_t now)
{
	struct epoll_event ev[32];
	s->now = now;
	int n = epoll_wait(s->epfd, ev, 32, 0);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == NULL)
			accept_some(s);
		else
			client_io(s, ev[i].data.ptr, ev[i].events);
	}
	for (size_t i = 0; i < s->nclients; i++) {
		struct client *c = s->clients[i];
		if (!c->closing && now >= c->deadline) {
			s->st.timeouts++;
			client_close(s, c);
		}
	}
	reap(s);
}

/* ---- life ---------------------------------------------------------------------------- */

int tmd_server_open(struct tmd_server **out, const char *path, const struct tmd_server_opts *opts,
                    const struct tmd_server_ops *ops, void *ctx, char *err, size_t errlen)
{
	struct tmd_server_opts o = { .sz = sizeof(o) };
	if (opts)
		memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	o.max_clients = o.max_clients ? o.max_clients : 64;
	o.max_clients_per_uid = o.max_clients_per_uid ? o.max_clients_per_uid : 16;
	o.register_rate = o.register_rate ? o.register_rate : 10;
	o.request_timeout_ms = o.request_timeout_ms ? o.request_timeout_ms : 2000;
	o.reply_timeout_ms = o.reply_timeout_ms ? o.reply_timeout_ms : 10000;
	o.max_pending_bytes = o.max_pending_bytes ? o.max_pending_bytes : 64u << 20;
	struct tmd_server *s = calloc(1, sizeof(*s));
	if (!s)
		return fail(err, errlen, ENOMEM, "out of memory");
	s->o = o;
	s->ops = *ops;
	s->ctx = ctx;
	s->lfd = -1;
	s->epfd = -1;
	s->clients = calloc(o.max_clients, sizeof(*s->clients));
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	int r;
	if (!s->clients || s->epfd < 0) {
		r = fail(err, errlen, s->clients ? errno : ENOMEM, "cannot set up the server: %s",
		         strerror(s->clients ? errno : ENOMEM));
		goto cleanup;
	}
	if ((r = listen_on(s, path, err, errlen)) < 0)
		goto cleanup;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) != 0) {
		r = fail(err, errlen, errno, "epoll: %s", strerror(errno));
		goto cleanup;
	}
	*out = s;
	return 0;
cleanup:
	tmd_server_close(s);
	return r;
}

void tmd_server_close(struct tmd_server *s)
{
	struct stat st;
	if (!s)
		return;
	for (size_t i = 0; i < s->nclients; i++)
		client_close(s, s->clients[i]);
	reap(s);
	if (s->lfd >= 0) {
		close(s->lfd);
		/* Only our own file: a newer collector may have replaced it. */
		if (s->path[0] && lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
			unlink(s->path);
	}
	if (s->epfd >= 0)
		close(s->epfd);
	free(s->clients);
	free(s);
}

int tmd_server_fd(const struct tmd_server *s)
{
	return s->epfd;
}

void tmd_server_get_stats(const struct tmd_server *s, struct tmd_server_stats *out)
{
	*out = s->st;
	out->clients = (unsigned)s->nclients;
}
