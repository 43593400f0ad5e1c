/* taskmond's socket server (user/server.c) on hostile clients.
 *
 * A real server on a socket in a private directory, driven by a script of
 * client actions that the input spells, one byte of opcode at a time:
 *
 *   0 connect          a new client (refused past the limits: the server
 *                      must say -EMFILE and close)
 *   1 send N bytes     on client k: N (u8) raw bytes from the input
 *   2 send a header    on client k: a well-formed request header whose type,
 *                      len and status come from the input (then its payload
 *                      may follow with 1)
 *   3 half-close       on client k (shutdown write)
 *   4 close            client k
 *   5 run              the server's loop, with the clock moved on by u16 ms
 *                      (timeouts, the per-uid rate limit)
 *   6 read             what has arrived on client k, checked as replies
 *   7 register result  what the collector's REGISTER handler answers next
 *
 * Every reply must be well formed (magic, version, a known type, an error
 * status below zero with a sentence of at most 255 bytes), the counts must
 * stay within the limits, and nothing may leak or block. */
#include "fuzz.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "server.h"

#define MAX_CLIENTS   6
#define PER_UID       4
#define CONNS         8
#define RX_CAP        (256u << 10)
#define PENDING_LIMIT (96u << 10)

struct conn {
	int fd;
	unsigned char *rx;
	size_t rx_len;
};

static char sock_path[96];
static int next_register = 0;

static int on_register(void *ctx, const struct tmd_peer *peer, char *why, size_t len)
{
	(void)ctx;
	FUZZ_CHECK(peer->pid == getpid());   /* the peer's pid comes from the kernel, never the message */
	if (next_register < 0)
		snprintf(why, len, "refused by the fuzz script");
	return next_register;
}

/* A document as long as the request's max_tasks says (bounded), so that
 * replies large enough to fill the socket buffer occur. */
static char *on_snapshot(void *ctx, const struct tmd_peer *peer, const struct tm_wire_snapshot_req *req, size_t *len)
{
	(void)ctx;
	(void)peer;
	if (req->flags & 0x80000000u) {
		errno = EIO;
		return NULL;
	}
	size_t n = req->max_tasks % (200u << 10) + 2;
	char *doc = malloc(n);
	if (!doc)
		return NULL;
	memset(doc, ' ', n);
	doc[0] = '{';
	doc[n - 1] = '}';
	*len = n;
	return doc;
}

/* Takes whole replies off the front of the buffer and checks each. */
static void check_replies(struct conn *c)
{
	size_t off = 0;
	while (c->rx_len - off >= sizeof(struct tm_wire_hdr)) {
		struct tm_wire_hdr h;
		memcpy(&h, c->rx + off, sizeof(h));
		FUZZ_CHECK(h.magic == TM_WIRE_MAGIC && h.version == TM_WIRE_VERSION);
		if (h.type == TM_WIRE_ERROR) {
			FUZZ_CHECK(h.status < 0 && h.len < 256);
			FUZZ_CHECK(fuzz_printable((const char *)c->rx + off + sizeof(h),
			                          c->rx_len - off - sizeof(h) < h.len ? c->rx_len - off - sizeof(h) : h.len));
		} else {
			FUZZ_CHECK(h.type == (TM_WIRE_REGISTER | TM_WIRE_REPLY) || h.type == (TM_WIRE_SNAPSHOT | TM_WIRE_REPLY));
			FUZZ_CHECK(h.status == 0);
			FUZZ_CHECK(h.type != (TM_WIRE_REGISTER | TM_WIRE_REPLY) || h.len == 0);
		}
		if (c->rx_len - off - sizeof(h) < h.len)
			break;
		off += sizeof(h) + h.len;
	}
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= off;
}

static void drain(struct conn *c)
{
	if (c->fd < 0)
		return;
	for (;;) {
		if (c->rx_len == RX_CAP)
			c->rx_len = 0;   /* a huge reply: only its header mattered */
		ssize_t n = recv(c->fd, c->rx + c->rx_len, RX_CAP - c->rx_len, MSG_DONTWAIT);
		if (n <= 0)
			break;
		c->rx_len += (size_t)n;
		check_replies(c);
	}
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->rx_len = 0;
}

static void conn_open(struct conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	conn_close(c);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(c->fd >= 0);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		conn_close(c);   /* the backlog is full: a flood the kernel bounds */
}

static void send_bytes(struct conn *c, const void *p, size_t n)
{
	if (c->fd >= 0 && n)
		(void)!send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conn conns[CONNS];
	struct fuzz_in in = { data, size };
	char err[256];
	struct tmd_server *s;
	struct tmd_server_ops ops = { .on_register = on_register, .on_snapshot = on_snapshot };
	uint64_t now = 1000000000ull;

	if (!sock_path[0]) {
		snprintf(sock_path, sizeof(sock_path), "%s/taskmond.sock", fuzz_dir());
		for (int i = 0; i < CONNS; i++) {
			conns[i].fd = -1;
			conns[i].rx = malloc(RX_CAP);
			FUZZ_CHECK(conns[i].rx);
		}
	}
	next_register = 0;
	int rc = tmd_server_open(&s, sock_path,
	                         TMD_SERVER_OPTS(.max_clients = MAX_CLIENTS, .max_clients_per_uid = PER_UID,
	                                         .register_rate = 3, .request_timeout_ms = 500,
	                                         .reply_timeout_ms = 1000, .max_pending_bytes = PENDING_LIMIT),
	                         &ops, NULL, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "cannot open the server: %s\n", err);
		abort();
	}
	for (unsigned steps = 0; in.n > 0 && steps < 512; steps++) {
		uint8_t op = fuzz_u8(&in);
		struct conn *c = &conns[(op >> 3) % CONNS];
		switch (op & 7) {
		case 0:
			conn_open(c);
			break;
		case 1: {
			uint8_t buf[256];
			size_t n = fuzz_take(&in, buf, fuzz_u8(&in));
			send_bytes(c, buf, n);
			break;
		}
		case 2: {
			struct tm_wire_hdr h = { .magic = TM_WIRE_MAGIC, .version = TM_WIRE_VERSION };
			h.type = fuzz_u16(&in);
			h.len = fuzz_u8(&in);
			h.status = (int8_t)fuzz_u8(&in);
			if (h.type & 0x100)   /* mostly the two real requests */
				h.type = 1 + (h.type & 1);
			send_bytes(c, &h, sizeof(h));
			break;
		}
		case 3:
			if (c->fd >= 0)
				shutdown(c->fd, SHUT_WR);
			break;
		case 4:
			conn_close(c);
			break;
		case 5:
			now += (uint64_t)fuzz_u16(&in) * 1000000ull;
			tmd_server_run(s, now);
			break;
		case 6:
			drain(c);
			break;
		case 7:
			next_register = (fuzz_u8(&in) & 1) ? -EPERM : 0;
			break;
		}
		struct tmd_server_stats st;
		tmd_server_get_stats(s, &st);
		FUZZ_CHECK(st.clients <= MAX_CLIENTS);
		FUZZ_CHECK(st.registrations <= 3 + (now - 1000000000ull) * 3 / 1000000000ull + 1);
	}
	/* Let the server finish what is queued, then check what every client got. */
	for (int round = 0; round < 4; round++) {
		tmd_server_run(s, now);
		for (int i = 0; i < CONNS; i++)
			drain(&conns[i]);
	}
	tmd_server_close(s);
	for (int i = 0; i < CONNS; i++)
		conn_close(&conns[i]);
	return 0;
}
