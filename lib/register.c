/* Registration with the collector. In tm_init the library tells taskmond,
 * when one runs, that this process uses it, and waits for the answer: the
 * collector attaches its probes before it answers, so they are in place before
 * the first task spawns. The collector takes the pid from the socket
 * (SO_PEERCRED); the message carries nothing else.
 *
 * Never an error and never a noticeable delay: without a collector this is a
 * socket() and a connect() that fails at once (ENOENT, ECONNREFUSED); a
 * collector that does not answer costs at most REGISTER_WAIT_MS. No thread,
 * no signal, no state kept: the socket is closed before returning.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "core.h"
#include "internal.h"
#include "wire.h"

#define REGISTER_WAIT_MS 50

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = tm__now_ns();
	return now >= deadline ? 0 : (int)((deadline - now + 999999u) / 1000000u);
}

/* True once fd is ready for `events` (or has an error to report) before the deadline. */
static bool wait_ready(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, remaining_ms(deadline));
		if (r > 0)
			return true;
		if (r == 0 || errno != EINTR)
			return false;
	}
}

static int connect_collector(int fd, const char *path, uint64_t deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return 0;
	/* A Unix socket connects at once or fails at once (EAGAIN: its backlog is
	 * full, a collector too busy to wait for); EINPROGRESS is handled anyway. */
	if (errno != EINPROGRESS)
		return -errno;
	int err = 0;
	socklen_t elen = sizeof(err);
	if (!wait_ready(fd, POLLOUT, deadline))
		return -ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		return -errno;
	return -err;
}

/* Reads the reply header; its payload (an error sentence) is of no use here. */
static int read_reply(int fd, uint64_t deadline)
{
	struct tm_wire_hdr h;
	size_t got = 0;
	while (got < sizeof(h)) {
		if (!wait_ready(fd, POLLIN, deadline))
			return -ETIMEDOUT;
		ssize_t n = recv(fd, (char *)&h + got, sizeof(h) - got, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	if (h.magic != TM_WIRE_MAGIC || h.version != TM_WIRE_VERSION)
		return -EPROTO;
	if (h.type == TM_WIRE_ERROR)
		return h.status < 0 ? h.status : -EPROTO;
	return h.type == (TM_WIRE_REGISTER | TM_WIRE_REPLY) ? 0 : -EPROTO;
}

int tm__collector_register(void)
{
	uint64_t deadline = tm__now_ns() + REGISTER_WAIT_MS * 1000000ull;
	const char *path = getenv("TASKMON_SOCKET");
	if (!path || !*path)
		path = TM_WIRE_SOCKET;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r = connect_collector(fd, path, deadline);
	if (r == 0) {
		struct tm_wire_hdr h = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION,
		                         .type = TM_WIRE_REGISTER };
		/* A fresh connection's buffer takes 16 bytes whole; anything else is a failure. */
		ssize_t n = send(fd, &h, sizeof(h), MSG_NOSIGNAL | MSG_DONTWAIT);
		r = n == (ssize_t)sizeof(h) ? read_reply(fd, deadline) : n < 0 ? -errno : -EIO;
	}
	close(fd);
	return r;
}
