/* taskmond's Unix socket: registrations from the library and snapshots.
 *
 * Socket: default /run/taskmon/taskmond.sock (taskmond --socket PATH; the
 * library reads $TASKMON_SOCKET). Its directory is created 0755 when missing;
 * the socket is 0666, so that workloads of any user can register. A socket
 * file left by a collector that died is replaced; one that a live collector
 * answers on is not (the second collector refuses to start).
 *
 * Protocol, version 1 (wire structs in lib/wire.h): a SOCK_STREAM of
 * messages, each a 16-byte header then `len` payload bytes, native byte order:
 *
 *   struct tm_wire_hdr { u32 magic = "TMW1"; u16 version = 1; u16 type; u32 len; s32 status; }
 *
 * Requests (status 0), one at a time; a connection may carry several:
 *   REGISTER (1), len 0. The pid to watch is the peer's, taken from
 *       SO_PEERCRED, never from the message. The collector attaches its
 *       probes to the process before it answers, so that they are in place
 *       before its first task spawns. Reply: REGISTER|REPLY (0x8001), status
 *       0, len 0. Rate-limited per uid (default 10 per second, burst 10);
 *       over the limit the reply is an ERROR with -EAGAIN.
 *   SNAPSHOT (2), len 0 or 8: optional struct tm_wire_snapshot_req { u32
 *       flags (1 = no tasks); u32 max_tasks (0 = default 1000) }. Reply:
 *       SNAPSHOT|REPLY (0x8002), status 0, payload the JSON document of
 *       snapshot.h. A peer that is neither root nor the collector's own user
 *       only sees the workloads (and tasks) it owns; machine-wide figures are
 *       shown to all.
 * Errors: ERROR (0xffff), status a negative errno, payload one sentence
 * (ASCII, no NUL). After an ERROR the collector closes the connection. Bad
 * magic or version, an unknown type, a payload over 64 bytes or of the wrong
 * size: -EPROTO / -EINVAL. Too many connections (default 64, 16 per uid):
 * -EMFILE, then closed. Replies queued beyond 64 MiB in all: -EBUSY.
 *
 * Never blocking the loop on one client: every socket is non-blocking, a
 * request must arrive whole within 2 s of the connection (or of the previous
 * reply) and a reply must be taken within 10 s, or the connection is closed.
 */
#ifndef TMD_SERVER_H
#define TMD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire.h"

struct tmd_server;

struct tmd_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

struct tmd_server_ops {
	/* REGISTER: watch peer->pid, before returning. 0, or negative errno with a sentence in why. */
	int (*on_register)(void *ctx, const struct tmd_peer *peer, char *why, size_t len);
	/* SNAPSHOT: the document, malloc'ed (the server frees it), *len bytes;
	 * NULL with errno set on failure. */
	char *(*on_snapshot)(void *ctx, const struct tmd_peer *peer, const struct tm_wire_snapshot_req *req,
	                     size_t *len);
};

struct tmd_server_opts {
	size_t   sz;
	unsigned max_clients;          /* 0 = 64 */
	unsigned max_clients_per_uid;  /* 0 = 16 */
	unsigned register_rate;        /* registrations per second per uid (also the burst); 0 = 10 */
	unsigned request_timeout_ms;   /* 0 = 2000 */
	unsigned reply_timeout_ms;     /* 0 = 10000 */
	size_t   max_pending_bytes;    /* reply bytes queued in all; 0 = 64 MiB */
};
#define TMD_SERVER_OPTS(...) (&(struct tmd_server_opts){ .sz = sizeof(struct tmd_server_opts), __VA_ARGS__ })

struct tmd_server_stats {
	uint64_t accepted, refused_connections;
	uint64_t registrations, registrations_refused, snapshots;
	uint64_t bad_requests, timeouts;
	unsigned clients;
};

/* Creates the directory when missing, replaces a stale socket file, binds,
 * sets the mode, listens. Negative errno with a sentence in err. */
int  tmd_server_open(struct tmd_server **out, const char *path, const struct tmd_server_opts *opts,
                     const struct tmd_server_ops *ops, void *ctx, char *err, size_t errlen);
/* Closes every connection and removes the socket file (when it is still ours). */
void tmd_server_close(struct tmd_server *s);
/* An epoll instance: polls readable when tmd_server_run has work. */
int  tmd_server_fd(const struct tmd_server *s);
/* Handles what is ready without blocking, then closes connections past their deadline. */
void tmd_server_run(struct tmd_server *s, uint64_t now_ns);
void tmd_server_get_stats(const struct tmd_server *s, struct tmd_server_stats *out);

#endif
