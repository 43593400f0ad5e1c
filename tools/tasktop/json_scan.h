/* A small, strict JSON reader for the snapshot: one pass into a flat array of
 * nodes, strings unescaped in place, no allocation per value.
 *
 * Why not jansson alone: a 1000-task snapshot (about 0.5 MB) took jansson
 * 12-19 ms to load here, most of tasktop's budget of 2% of a core at one
 * refresh a second. This reader turns the same document into the model in a
 * fifth to a quarter of the time jansson takes to load it alone
 * (test_tasktop_model prints both), and is as strict about the grammar:
 * RFC 8259, depth and node count bounded,
 * \u escapes checked (surrogates in pairs), every error reported with its
 * byte offset. Raw bytes of 0x80 and above pass through as they are: the
 * model flags names that hold them, and the screens escape those.
 */
#ifndef TASKTOP_JSON_SCAN_H
#define TASKTOP_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tt_json_type { TT_JSON_NULL, TT_JSON_FALSE, TT_JSON_TRUE, TT_JSON_INT, TT_JSON_REAL, TT_JSON_STRING,
                    TT_JSON_ARRAY, TT_JSON_OBJECT };

struct tt_json_node {
	uint8_t  type;          /* enum tt_json_type */
	bool     big;           /* TT_JSON_INT that did not fit int64 (u holds it when it fits uint64) */
	uint32_t next;          /* next sibling's index; 0 = none (node 0 is the root) */
	uint32_t first;         /* arrays/objects: first child's index; 0 = empty */
	uint32_t count;         /* arrays/objects: children */
	const char *key;        /* member of an object: its name (unescaped, may hold NUL) */
	uint32_t key_len;
	uint32_t len;           /* strings: bytes (unescaped, may hold NUL) */
	union {
		const char *s;      /* TT_JSON_STRING: in the document's buffer, not NUL-terminated */
		int64_t i;          /* TT_JSON_INT */
		uint64_t u;         /* TT_JSON_INT with big */
		double d;           /* TT_JSON_REAL */
	} v;
};

struct tt_json {
	struct tt_json_node *nodes;
	uint32_t n, cap;
	char *buf;              /* the document, owned, unescaped in place */
};

#define TT_JSON_MAX_DEPTH 64
#define TT_JSON_MAX_NODES (4u << 20)   /* 160 MiB of nodes at most; a 65536-task snapshot needs about 3 M */

/* Parses len bytes of text (copied). 0, or -EBADMSG with one sentence in err
 * (what and at which byte), -ENOMEM, -E2BIG past TT_JSON_MAX_NODES. */
int  tt_json_parse(struct tt_json *doc, const char *text, size_t len, char *err, size_t errlen);
/* The same, taking ownership of buf (malloc'ed, len bytes + 1 writable). */
int  tt_json_parse_owned(struct tt_json *doc, char *buf, size_t len, char *err, size_t errlen);
void tt_json_free(struct tt_json *doc);

static inline const struct tt_json_node *tt_json_root(const struct tt_json *doc)
{
	return doc->n ? &doc->nodes[0] : NULL;
}
/* Member of an object by name (the first one with it), or NULL. */
const struct tt_json_node *tt_json_get(const struct tt_json *doc, const struct tt_json_node *obj, const char *key);
static inline const struct tt_json_node *tt_json_child(const struct tt_json *doc, const struct tt_json_node *n)
{
	return n && n->first ? &doc->nodes[n->first] : NULL;
}
static inline const struct tt_json_node *tt_json_next(const struct tt_json *doc, const struct tt_json_node *n)
{
	return n->next ? &doc->nodes[n->next] : NULL;
}

#endif
