/* A test's side of taskmond's socket (user/server.h): connect, one request,
 * a parsed snapshot, a workload in it. For the privileged tests that run
 * taskmond as a child; needs jansson. */
#ifndef TM_TMD_CLIENT_H
#define TM_TMD_CLIENT_H

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

static inline void tc_msleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A connection with 5 s send and receive timeouts, or negative errno. */
static inline int tc_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Waits until a collector answers on path: true, or false once `alive`
 * says it died or `tries` polls 25 ms apart went unanswered. */
static inline bool tc_wait_up(const char *path, int tries, bool (*alive)(void))
{
	for (int i = 0; i < tries; i++) {
		int fd = tc_connect(path);
		if (fd >= 0) {
			close(fd);
			return true;
		}
		if (!alive())
			return false;
		tc_msleep(25);
	}
	return false;
}

static inline bool tc_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* One request on fd; the reply's header in *rep and its payload (malloc'ed,
 * NUL-terminated) in *body. 0 or negative errno. */
static inline int tc_request(int fd, uint16_t type, const void *payload, uint32_t len, struct tm_wire_hdr *rep,
                             char **body)
{
	struct tm_wire_hdr h = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION, .type = type, .len = len };
	*body = NULL;
	if (send(fd, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
		return -EIO;
	if (len && send(fd, payload, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -EIO;
	if (!tc_read_full(fd, rep, sizeof(*rep)) || rep->magic != TM_WIRE_MAGIC)
		return -EPROTO;
	if (rep->len > (256u << 20))
		return -EFBIG;
	*body = malloc(rep->len + 1);
	if (!*body || !tc_read_full(fd, *body, rep->len)) {
		free(*body);
		*body = NULL;
		return -EIO;
	}
	(*body)[rep->len] = '\0';
	return 0;
}

/* The snapshot with up to max_tasks tasks, parsed; NULL when none came. With
 * raw, the document's text too (malloc'ed). */
static inline json_t *tc_snapshot(const char *path, uint32_t max_tasks, char **raw)
{
	int fd = tc_connect(path);
	if (fd < 0)
		return NULL;
	struct tm_wire_hdr rep;
	char *body;
	struct tm_wire_snapshot_req req = { .flags = 0, .max_tasks = max_tasks };
	int rc = tc_request(fd, TM_WIRE_SNAPSHOT, &req, sizeof(req), &rep, &body);
	close(fd);
	if (rc != 0 || rep.type != (TM_WIRE_SNAPSHOT | TM_WIRE_REPLY)) {
		free(body);
		return NULL;
	}
	json_t *doc = json_loadb(body, rep.len, 0, NULL);
	if (raw)
		*raw = body;
	else
		free(body);
	return doc;
}

/* The workload of that pid in a snapshot (a borrowed reference), or NULL. */
static inline json_t *tc_workload_of(json_t *doc, pid_t pid)
{
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(doc, "workloads"), i, w)
		if (json_integer_value(json_object_get(w, "pid")) == pid)
			return w;
	return NULL;
}

#endif
