/* The collector socket's wire format, shared by the library (lib/register.c,
 * which registers the process in tm_init) and taskmond (user/server.c, which
 * documents the protocol in full). Not installed: a client outside this tree
 * copies these few lines.
 *
 * A byte stream (SOCK_STREAM) of messages, each a header followed by `len`
 * payload bytes. Native byte order: both ends run on the same machine.
 */
#ifndef TM_WIRE_H
#define TM_WIRE_H

#include <stdint.h>

#define TM_WIRE_MAGIC    0x31574d54u   /* "TMW1" as little-endian bytes */
#define TM_WIRE_VERSION  1
#define TM_WIRE_SOCKET   "/run/taskmon/taskmond.sock"   /* default; $TASKMON_SOCKET overrides */

struct tm_wire_hdr {
	uint32_t magic;      /* TM_WIRE_MAGIC */
	uint16_t version;    /* TM_WIRE_VERSION */
	uint16_t type;       /* enum tm_wire_type */
	uint32_t len;        /* payload bytes that follow */
	int32_t  status;     /* requests: 0; replies: 0 or a negative errno */
};

enum tm_wire_type {
	TM_WIRE_REGISTER = 1,        /* no payload: watch me (pid from SO_PEERCRED) */
	TM_WIRE_SNAPSHOT = 2,        /* optional struct tm_wire_snapshot_req; reply: JSON */
	TM_WIRE_REPLY    = 0x8000,   /* or'ed into the request type of its answer */
	TM_WIRE_ERROR    = 0xffff,   /* status < 0, payload: one sentence (not NUL-terminated) */
};

struct tm_wire_snapshot_req {
	uint32_t flags;      /* TM_WIRE_SNAP_* */
	uint32_t max_tasks;  /* task records in the reply; 0 = the collector's default */
};
#define TM_WIRE_SNAP_NO_TASKS 1u   /* leave the "tasks" array empty */

#endif
