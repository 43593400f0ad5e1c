/* Strict one-pass JSON reader into a flat node array (see json_scan.h). */
#include "json_scan.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scan {
	struct tt_json *doc;
	char *p, *end;
	int depth;
	int err;
	char *msg;
	size_t msglen;
};

static int fail(struct scan *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct scan *s, int err, const char *fmt, ...)
{
	if (s->err)
		return s->err;
	char what[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(s->msg, s->msglen, "invalid JSON at byte %zu: %s", (size_t)(s->p - s->doc->buf), what);
	s->err = err;
	return err;
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* A new node; its index, or 0 on failure (node 0 is only ever the root, made first). */
static uint32_t new_node(struct scan *s, uint8_t type)
{
	struct tt_json *d = s->doc;
	if (d->n == d->cap) {
		if (d->cap >= TT_JSON_MAX_NODES) {
			fail(s, -E2BIG, "more than %u values", TT_JSON_MAX_NODES);
			return UINT32_MAX;
		}
		uint32_t cap = d->cap ? d->cap * 2 : 1024;
		struct tt_json_node *n = realloc(d->nodes, (size_t)cap * sizeof(*n));
		if (!n) {
			fail(s, -ENOMEM, "out of memory");
			return UINT32_MAX;
		}
		d->nodes = n;
		d->cap = cap;
	}
	d->nodes[d->n] = (struct tt_json_node){ .type = type };
	return d->n++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_hex4(struct scan *s, const char *q, unsigned *out)
{
	if (s->end - q < 4)
		return fail(s, -EBADMSG, "a \\u escape cut short");
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(q[i]);
		if (h < 0)
			return fail(s, -EBADMSG, "a \\u escape with a non-hex digit");
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return 0;
}

static char *put_utf8(char *w, unsigned cp)
{
	if (cp < 0x80) {
		*w++ = (char)cp;
	} else if (cp < 0x800) {
		*w++ = (char)(0xc0 | cp >> 6);
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*w++ = (char)(0xe0 | cp >> 12);
		*w++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*w++ = (char)(0xf0 | cp >> 18);
		*w++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*w++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	}
	return w;
}

/* One escape after the backslash at *rp; writes its bytes at *wp. The
 * output never outgrows the input (\uXXXX: 6 bytes in, at most 3 out; a
 * surrogate pair: 12 in, 4 out), so unescaping in place is safe. */
static int unescape_one(struct scan *s, char **rp, char **wp)
{
	char *r = *rp + 1;
	if (r >= s->end)
		return fail(s, -EBADMSG, "a string cut short");
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *k = *r ? strchr(from, *r) : NULL;
	if (k) {
		*(*wp)++ = to[k - from];
		*rp = r + 1;
		return 0;
	}
	if (*r != 'u')
		return fail(s, -EBADMSG, "an unknown escape \\%c", *r);
	unsigned cp;
	if (read_hex4(s, r + 1, &cp) < 0)
		return s->err;
	r += 5;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(s, -EBADMSG, "a lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		unsigned lo;
		if (s->end - r < 6 || r[0] != '\\' || r[1] != 'u')
			return fail(s, -EBADMSG, "a high surrogate without its low half");
		if (read_hex4(s, r + 2, &lo) < 0)
			return s->err;
		if (lo < 0xdc00 || lo > 0xdfff)
			return fail(s, -EBADMSG, "a high surrogate without its low half");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		r += 6;
	}
	*wp = put_utf8(*wp, cp);
	*rp = r;
	return 0;
}

/* The string at s->p (on its opening quote): unescaped in place. */
static int scan_string(struct scan *s, const char **out, uint32_t *len)
{
	char *r = ++s->p, *w = r, *start = r;
	for (;;) {
		/* the common case: a run of plain bytes */
		while (r < s->end && *r != '"' && *r != '\\' && (unsigned char)*r >= 0x20)
			*w++ = *r++;
		if (r >= s->end)
			return fail(s, -EBADMSG, "a string without its closing quote");
		if (*r == '"')
			break;
		if (*r != '\\') {
			s->p = r;
			return fail(s, -EBADMSG, "a control byte 0x%02x inside a string", (unsigned char)*r);
		}
		s->p = r;
		if (unescape_one(s, &r, &w) < 0)
			return s->err;
	}
	if (w - start > UINT32_MAX)
		return fail(s, -EBADMSG, "a string over 4 GiB");
	*out = start;
	*len = (uint32_t)(w - start);
	s->p = r + 1;
	return 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int scan_number(struct scan *s, struct tt_json_node *n)
{
	const char *p = s->p, *e = s->end;
	bool neg = false, exact = true;
	if (p < e && *p == '-') {
		neg = true;
		p++;
	}
	if (p >= e || !is_digit(*p))
		return fail(s, -EBADMSG, "a number without digits");
	uint64_t mant = 0;
	int drop = 0;   /* integer digits beyond what mant holds */
	if (*p == '0') {
		p++;
	} else {
		for (; p < e && is_digit(*p); p++) {
			unsigned dgt = (unsigned)(*p - '0');
			if (mant > (UINT64_MAX - dgt) / 10) {
				exact = false;
				drop++;
			} else {
				mant = mant * 10 + dgt;
			}
		}
	}
	int frac = 0;
	if (p < e && *p == '.') {
		exact = false;
		p++;
		if (p >= e || !is_digit(*p))
			return fail(s, -EBADMSG, "a number with nothing after its point");
		for (; p < e && is_digit(*p); p++)
			if (mant <= (UINT64_MAX - 9) / 10) {
				mant = mant * 10 + (uint64_t)(*p - '0');
				frac++;
			}
	}
	long ex = 0;
	if (p < e && (*p == 'e' || *p == 'E')) {
		exact = false;
		p++;
		bool eneg = false;
		if (p < e && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		if (p >= e || !is_digit(*p))
			return fail(s, -EBADMSG, "a number with an empty exponent");
		for (; p < e && is_digit(*p); p++)
			if (ex < 100000)
				ex = ex * 10 + (*p - '0');
		if (eneg)
			ex = -ex;
	}
	s->p = (char *)p;
	if (exact && !neg && mant <= INT64_MAX) {
		n->type = TT_JSON_INT;
		n->v.i = (int64_t)mant;
	} else if (exact && neg && mant <= (uint64_t)INT64_MAX + 1) {
		n->type = TT_JSON_INT;
		n->v.i = mant == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mant;
	} else if (exact && !neg) {
		n->type = TT_JSON_INT;
		n->big = true;
		n->v.u = mant;
	} else {
		/* Locale-free (a terminal program may have set LC_NUMERIC): digits
		 * times a power of ten. Not correctly rounded in the last bits, which
		 * the snapshot's few reals (retention_s) do not need. */
		double d = (double)mant * pow(10.0, (double)(ex + drop - frac));
		n->type = TT_JSON_REAL;
		n->v.d = neg ? -d : d;
	}
	return 0;
}

static int scan_value(struct scan *s, uint32_t *idx);

static int scan_literal(struct scan *s, const char *word, uint8_t type, uint32_t *idx)
{
	size_t len = strlen(word);
	if ((size_t)(s->end - s->p) < len || memcmp(s->p, word, len) != 0)
		return fail(s, -EBADMSG, "an unexpected character '%c'", *s->p);
	s->p += len;
	*idx = new_node(s, type);
	return s->err;
}

/* Arrays and objects: children chained through next. */
static int scan_container(struct scan *s, bool object, uint32_t *idx)
{
	if (++s->depth > TT_JSON_MAX_DEPTH)
		return fail(s, -EBADMSG, "nesting deeper than %d", TT_JSON_MAX_DEPTH);
	uint32_t me = new_node(s, object ? TT_JSON_OBJECT : TT_JSON_ARRAY), last = 0, count = 0;
	if (s->err)
		return s->err;
	char close = object ? '}' : ']';
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		*idx = me;
		return 0;
	}
	for (;;) {
		const char *key = NULL;
		uint32_t key_len = 0, child;
		skip_ws(s);
		if (object) {
			if (s->p >= s->end || *s->p != '"')
				return fail(s, -EBADMSG, "an object member without a quoted name");
			if (scan_string(s, &key, &key_len) < 0)
				return s->err;
			skip_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return fail(s, -EBADMSG, "a member name without ':'");
			s->p++;
		}
		if (scan_value(s, &child) < 0)
			return s->err;
		struct tt_json_node *c = &s->doc->nodes[child];
		c->key = key;
		c->key_len = key_len;
		if (last)
			s->doc->nodes[last].next = child;
		else
			s->doc->nodes[me].first = child;
		last = child;
		count++;
		skip_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			break;
		}
		return fail(s, -EBADMSG, "expected ',' or '%c'", close);
	}
	s->doc->nodes[me].count = count;
	s->depth--;
	*idx = me;
	return 0;
}

static int scan_value(struct scan *s, uint32_t *idx)
{
	skip_ws(s);
	if (s->p >= s->end)
		return fail(s, -EBADMSG, "the document ends where a value was expected");
	switch (*s->p) {
	case '{':
		return scan_container(s, true, idx);
	case '[':
		return scan_container(s, false, idx);
	case '"': {
		*idx = new_node(s, TT_JSON_STRING);
		if (s->err)
			return s->err;
		const char *str;
		uint32_t len;
		if (scan_string(s, &str, &len) < 0)
			return s->err;
		s->doc->nodes[*idx].v.s = str;
		s->doc->nodes[*idx].len = len;
		return 0;
	}
	case 't':
		return scan_literal(s, "true", TT_JSON_TRUE, idx);
	case 'f':
		return scan_literal(s, "false", TT_JSON_FALSE, idx);
	case 'n':
		return scan_literal(s, "null", TT_JSON_NULL, idx);
	default:
		if (*s->p == '-' || is_digit(*s->p)) {
			*idx = new_node(s, TT_JSON_INT);
			if (s->err)
				return s->err;
			return scan_number(s, &s->doc->nodes[*idx]);
		}
		return fail(s, -EBADMSG, "an unexpected character 0x%02x", (unsigned char)*s->p);
	}
}

int tt_json_parse_owned(struct tt_json *doc, char *buf, size_t len, char *err, size_t errlen)
{
	*doc = (struct tt_json){ .buf = buf };
	buf[len] = '\0';
	struct scan s = { .doc = doc, .p = buf, .end = buf + len, .msg = err, .msglen = errlen };
	uint32_t root;
	if (scan_value(&s, &root) == 0) {
		skip_ws(&s);
		if (s.p != s.end)
			fail(&s, -EBADMSG, "text after the document");
	}
	if (s.err) {
		tt_json_free(doc);
		return s.err;
	}
	return 0;
}

int tt_json_parse(struct tt_json *doc, const char *text, size_t len, char *err, size_t errlen)
{
	char *buf = len < SIZE_MAX ? malloc(len + 1) : NULL;
	if (!buf) {
		*doc = (struct tt_json){ 0 };
		snprintf(err, errlen, "out of memory for a %zu-byte document", len);
		return -ENOMEM;
	}
	memcpy(buf, text, len);
	return tt_json_parse_owned(doc, buf, len, err, errlen);
}

void tt_json_free(struct tt_json *doc)
{
	free(doc->nodes);
	free(doc->buf);
	*doc = (struct tt_json){ 0 };
}

const struct tt_json_node *tt_json_get(const struct tt_json *doc, const struct tt_json_node *obj, const char *key)
{
	if (!obj || obj->type != TT_JSON_OBJECT)
		return NULL;
	size_t klen = strlen(key);
	for (uint32_t i = obj->first; i; i = doc->nodes[i].next) {
		const struct tt_json_node *n = &doc->nodes[i];
		if (n->key_len == klen && memcmp(n->key, key, klen) == 0)
			return n;
	}
	return NULL;
}
