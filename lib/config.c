/* Configuration: built-in defaults, and the INI file laid over them.
 *
 * libinih splits the file into sections and key = value pairs; all meaning is
 * given here. inih reads through our own line reader rather than straight
 * from the FILE because on its own it would cut a line longer than its fixed
 * buffer in two without a word, could not see a NUL byte, would take an
 * indented key for the continuation of the previous value, and never reports
 * a section that holds no keys (an empty [type.NAME] must still declare its
 * type, and a misspelt empty section must still be an error). */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config.h"

const char *const tm__builtin_type_names[TM_BUILTIN_TYPES] = {
	"general", "network", "database", "game_logic",
	"consensus", "maintenance", "ui", "background",
};

/* 10^9 s, about 31 years: now plus this many ms, counted in ns, still fits a
 * uint64_t, so no user of a duration has to guard against overflow. */
#define MAX_DURATION_MS 1000000000000ull
#define MIN_STACK       (16ull << 10)
#define MAX_STACK       (1ull << 30)
#define SECTION_MAX     48  /* longer than any section we accept: "type." + 31 */
#define SHOW_MAX        48  /* bytes of a rejected word quoted back in a message */

void tm__config_defaults(struct tm__config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_restarts = 5;
	c->panic_backoff_multiplier = 2.0;
	c->enable_task_metrics = true;
	c->cleanup_interval_ms = 60000;
	c->max_tracked_tasks = 100000;
	c->task_retention_ms = 300000;
	c->stack_size = 65536;
	c->thread_keepalive_ms = 10000;
	c->max_idle_threads = 256;
	c->contain_faults = false;
	c->kernel_trace_rate = 2000;
	for (unsigned i = 0; i < TM_BUILTIN_TYPES; i++)
		strcpy(c->types[i].name, tm__builtin_type_names[i]);
	c->ntypes = TM_BUILTIN_TYPES;
}

bool tm__valid_name(const char *name)
{
	size_t n;

	if (!name)
		return false;
	for (n = 0; name[n]; n++) {
		unsigned char ch = (unsigned char)name[n];
		if (ch < 0x20 || ch > 0x7e || n == TM_NAME_MAX - 1)
			return false;
	}
	return n > 0;
}

/* ---- values ---------------------------------------------------------------- */

enum kind {
	K_UINT,   /* unsigned */
	K_U64,    /* uint64_t */
	K_SECS,   /* uint64_t ms, written as seconds with at most 3 decimals */
	K_MSECS,  /* uint64_t ms */
	K_SIZE,   /* size_t bytes, optional K, M or G suffix */
	K_BOOL,   /* bool */
	K_RATIO,  /* double, at least 1.0 */
};

struct key {
	const char *name;
	enum kind   kind;
	size_t      off;       /* into struct tm__config or struct tm__type_conf */
	uint64_t    min, max;  /* in ms for durations, bytes for sizes */
	bool        timeout;   /* also sets the type's has_timeout */
};

union val {
	uint64_t u;
	double   d;
	bool     b;
};

/* strtoull alone would also take leading blanks, a sign (and wrap "-5"
 * around to a huge value), so the first character must be a digit. */
static bool scan_u64(const char *s, const char **end, uint64_t *out)
{
	char *e;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno)
		return false;
	*end = e;
	*out = v;
	return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	const char *end;

	return scan_u64(s, &end, out) && *end == '\0';
}

/* Splits "12.345" into 12 and "345"; plain decimal only, because strtod
 * follows the caller's locale and also takes hex, exponents, inf and nan. */
static bool parse_decimal(const char *s, uint64_t *whole, const char **frac)
{
	const char *end;

	if (!scan_u64(s, &end, whole))
		return false;
	*frac = "";
	if (*end == '\0')
		return true;
	if (*end != '.' || end[1] == '\0')
		return false;
	*frac = end + 1;
	return strspn(*frac, "0123456789") == strlen(*frac);
}

static bool parse_secs(const char *s, uint64_t *ms)
{
	uint64_t whole, part = 0;
	const char *frac;

	if (!parse_decimal(s, &whole, &frac) || whole > UINT64_MAX / 1000 - 1)
		return false;
	for (int i = 0; i < 3; i++)
		part = part * 10 + (uint64_t)(*frac ? *frac++ - '0' : 0);
	if (strspn(frac, "0") != strlen(frac))
		return false;  /* finer than a millisecond */
	*ms = whole * 1000 + part;
	return true;
}

static bool parse_ratio(const char *s, double *out)
{
	uint64_t whole, digits = 0, scale = 1;
	const char *frac;

	if (!parse_decimal(s, &whole, &frac) || strlen(frac) > 15)
		return false;
	for (; *frac; frac++) {
		digits = digits * 10 + (uint64_t)(*frac - '0');
		scale *= 10;
	}
	/* One division of exact integers rounds like strtod would. */
	if (whole <= ((1ull << 53) - digits) / scale)
		*out = (double)(whole * scale + digits) / (double)scale;
	else
		*out = (double)whole + (double)digits / (double)scale;
	return *out >= 1.0;
}

static bool parse_size(const char *s, uint64_t *out)
{
	const char *end;
	unsigned shift = 0;
	uint64_t v;

	if (!scan_u64(s, &end, &v))
		return false;
	if (*end) {
		const char *p = strchr("KkMmGg", *end);
		if (!p || end[1])
			return false;
		shift = 10 * (unsigned)(1 + (p - "KkMmGg") / 2);
	}
	if (v > UINT64_MAX >> shift)
		return false;
	*out = v << shift;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const words[] = { "false", "true", "no", "yes", "off", "on", "0", "1" };

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcasecmp(s, words[i]) == 0) {
			*out = i % 2;
			return true;
		}
	}
	return false;
}

/* Checks the range too: one "bad value" sentence covers both. */
static bool parse_value(const struct key *k, const char *s, union val *v)
{
	bool ok = false;

	switch (k->kind) {
	case K_UINT:
	case K_U64:
	case K_MSECS:
		ok = parse_u64(s, &v->u);
		break;
	case K_SECS:
		ok = parse_secs(s, &v->u);
		break;
	case K_SIZE:
		ok = parse_size(s, &v->u);
		break;
	case K_BOOL:
		return parse_bool(s, &v->b);
	case K_RATIO:
		return parse_ratio(s, &v->d);
	}
	return ok && v->u >= k->min && v->u <= k->max;
}

static void store(const struct key *k, void *base, union val v)
{
	char *field = (char *)base + k->off;

	switch (k->kind) {
	case K_UINT:
		*(unsigned *)field = (unsigned)v.u;
		break;
	case K_U64:
	case K_SECS:
	case K_MSECS:
		*(uint64_t *)field = v.u;
		break;
	case K_SIZE:
		*(size_t *)field = (size_t)v.u;
		break;
	case K_BOOL:
		*(bool *)field = v.b;
		break;
	case K_RATIO:
		*(double *)field = v.d;
		break;
	}
	if (k->timeout)
		((struct tm__type_conf *)base)->has_timeout = true;
}

/* ---- what a value should have been ----------------------------------------- */

static void fmt_secs(char *buf, size_t len, uint64_t ms)
{
	if (ms % 1000)
		snprintf(buf, len, "%llu.%03llu", (unsigned long long)(ms / 1000),
			 (unsigned long long)(ms % 1000));
	else
		snprintf(buf, len, "%llu", (unsigned long long)(ms / 1000));
}

static void fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "GMK";
	unsigned shift = 30;

	for (const char *u = units; *u; u++, shift -= 10) {
		if (bytes >= (1ull << shift) && bytes % (1ull << shift) == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(bytes >> shift), *u);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

static void describe_int(const struct key *k, char *buf, size_t len)
{
	uint64_t top = k->kind == K_UINT ? UINT_MAX : UINT64_MAX;

	if (k->min == 0 && k->max == top)
		snprintf(buf, len, "a non-negative integer");
	else
		snprintf(buf, len, "an integer from %llu to %llu",
			 (unsigned long long)k->min, (unsigned long long)k->max);
}

static void describe(const struct key *k, char *buf, size_t len)
{
	char lo[24], hi[24];

	switch (k->kind) {
	case K_UINT:
	case K_U64:
		describe_int(k, buf, len);
		break;
	case K_SECS:
		fmt_secs(lo, sizeof(lo), k->min);
		fmt_secs(hi, sizeof(hi), k->max);
		snprintf(buf, len, "a number of seconds from %s to %s with at most 3 decimals", lo, hi);
		break;
	case K_MSECS:
		snprintf(buf, len, "a number of milliseconds from %llu to %llu",
			 (unsigned long long)k->min, (unsigned long long)k->max);
		break;
	case K_SIZE:
		fmt_size(lo, sizeof(lo), k->min);
		fmt_size(hi, sizeof(hi), k->max);
		snprintf(buf, len, "a size in bytes from %s to %s, with an optional K, M or G suffix", lo, hi);
		break;
	case K_BOOL:
		snprintf(buf, len, "true/false, yes/no, on/off or 1/0");
		break;
	case K_RATIO:
		snprintf(buf, len, "a decimal number of at least 1.0");
		break;
	}
}

/* ---- the keys ---------------------------------------------------------------- */

#define MG(f) offsetof(struct tm__config, f)
#define TY(f) offsetof(struct tm__type_conf, f)
#define DURATION(name, f, min) \
	{ name "_secs", K_SECS, MG(f), min, MAX_DURATION_MS, false }, \
	{ name "_ms", K_MSECS, MG(f), min, MAX_DURATION_MS, false }

static const struct key management_keys[] = {
	{ "max_restarts", K_UINT, MG(max_restarts), 0, UINT_MAX, false },
	DURATION("default_timeout", default_timeout_ms, 0),
	{ "panic_backoff_multiplier", K_RATIO, MG(panic_backoff_multiplier), 0, 0, false },
	{ "enable_task_metrics", K_BOOL, MG(enable_task_metrics), 0, 0, false },
	/* 0 would make the periodic cleanup spin */
	DURATION("cleanup_interval", cleanup_interval_ms, 1),
	{ "max_tracked_tasks", K_U64, MG(max_tracked_tasks), 1, 1u << 24, false },
	DURATION("task_retention", task_retention_ms, 0),
	{ "stack_size", K_SIZE, MG(stack_size), MIN_STACK, MAX_STACK, false },
	DURATION("thread_keepalive", thread_keepalive_ms, 0),
	{ "max_idle_threads", K_UINT, MG(max_idle_threads), 0, 1000000, false },
	{ "contain_faults", K_BOOL, MG(contain_faults), 0, 0, false },
	{ "kernel_trace_rate", K_U64, MG(kernel_trace_rate), 0, 1000000000, false },
};

static const struct key type_keys[] = {
	{ "max_concurrent", K_U64, TY(max_concurrent), 0, UINT64_MAX, false },
	{ "timeout_secs", K_SECS, TY(timeout_ms), 0, MAX_DURATION_MS, true },
	{ "timeout_ms", K_MSECS, TY(timeout_ms), 0, MAX_DURATION_MS, true },
	{ "stack_size", K_SIZE, TY(stack_size), MIN_STACK, MAX_STACK, false },
};

static const struct key total_limit_key =
	{ "max_concurrent_total", K_U64, MG(max_concurrent_total), 0, UINT64_MAX, false };
static const struct key type_limit_key =
	{ "max_concurrent_", K_U64, TY(max_concurrent), 0, UINT64_MAX, false };
static const struct key type_timeout_key =
	{ "", K_SECS, TY(timeout_ms), 0, MAX_DURATION_MS, true };

/* ---- parsing state and errors ------------------------------------------------ */

enum section { SEC_NONE, SEC_MANAGEMENT, SEC_LIMITS, SEC_TIMEOUTS, SEC_TYPE };

struct parse {
	struct tm__config    *c;
	FILE                 *f;
	const char           *path;
	char                 *err;
	size_t                errlen;
	unsigned              lineno;    /* of the line last handed to inih */
	unsigned              err_line;  /* of the first error; valid when rc != 0 */
	int                   rc;        /* first error, negative errno */
	enum section          sec;
	struct tm__type_conf *type;      /* the [type.NAME] being read */
};

/* A word from the file made safe to quote: control and non-ASCII bytes would
 * garble a terminal or a log line. Returned by value so that two can appear
 * in one call. */
struct shown {
	char s[SHOW_MAX + 4];
};

static struct shown show(const char *word)
{
	struct shown out;
	size_t n;

	for (n = 0; word[n] && n < SHOW_MAX; n++) {
		unsigned char ch = (unsigned char)word[n];
		out.s[n] = ch >= 0x20 && ch <= 0x7e ? (char)ch : '?';
	}
	strcpy(out.s + n, word[n] ? "..." : "");
	return out;
}

/* Bad content: keeps the first error only. Returns 0, an inih handler's "no". */
__attribute__((format(printf, 2, 3)))
static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->rc)
		return 0;
	p->rc = -EINVAL;
	p->err_line = p->lineno;
	n = snprintf(p->err, p->errlen, "%s:%u: ", p->path, p->lineno);
	if (n < 0 || (size_t)n >= p->errlen)
		return 0;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

static int fail_file(struct parse *p, int err, const char *what)
{
	if (p->rc)
		return 0;
	p->rc = -err;
	p->err_line = p->lineno;
	snprintf(p->err, p->errlen, "cannot %s config file '%s': %s", what, p->path, strerror(err));
	return 0;
}

static int bad_value(struct parse *p, const struct key *k, const char *name, const char *value)
{
	char want[128];

	describe(k, want, sizeof(want));
	return fail(p, "bad value '%s' for %s: expected %s", show(value).s, show(name).s, want);
}

static int apply(struct parse *p, const struct key *k, void *base, const char *name, const char *value)
{
	union val v;

	if (!parse_value(k, value, &v))
		return bad_value(p, k, name, value);
	store(k, base, v);
	return 1;
}

static struct tm__type_conf *find_type(struct tm__config *c, const char *name)
{
	for (unsigned i = 0; i < c->ntypes; i++)
		if (strcmp(c->types[i].name, name) == 0)
			return &c->types[i];
	return NULL;
}

/* ---- keys ---------------------------------------------------------------------- */

static int set_from(struct parse *p, const struct key *keys, size_t nkeys, void *base,
		    const char *section, const char *name, const char *value)
{
	for (size_t i = 0; i < nkeys; i++)
		if (strcmp(keys[i].name, name) == 0)
			return apply(p, &keys[i], base, name, value);
	return fail(p, "unknown key '%s' in [%s]", show(name).s, show(section).s);
}

static int set_limit(struct parse *p, const char *name, const char *value)
{
	size_t plen = strlen(type_limit_key.name);
	struct tm__type_conf *t = NULL;

	if (strcmp(name, total_limit_key.name) == 0)
		return apply(p, &total_limit_key, p->c, name, value);
	if (strncmp(name, type_limit_key.name, plen) == 0)
		t = find_type(p->c, name + plen);
	if (!t)
		return fail(p, "unknown key '%s' in [task_limits]", show(name).s);
	return apply(p, &type_limit_key, t, name, value);
}

static int set_timeout(struct parse *p, const char *name, const char *value)
{
	struct tm__type_conf *t = find_type(p->c, name);

	if (!t)
		return fail(p, "unknown type '%s' in [task_timeouts]", show(name).s);
	return apply(p, &type_timeout_key, t, name, value);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;

	if (p->rc)
		return 0;
	switch (p->sec) {
	case SEC_MANAGEMENT:
		return set_from(p, management_keys, sizeof(management_keys) / sizeof(management_keys[0]),
				p->c, section, name, value);
	case SEC_LIMITS:
		return set_limit(p, name, value);
	case SEC_TIMEOUTS:
		return set_timeout(p, name, value);
	case SEC_TYPE:
		return set_from(p, type_keys, sizeof(type_keys) / sizeof(type_keys[0]),
				p->type, section, name, value);
	case SEC_NONE:
		break;
	}
	return fail(p, "key '%s' is outside any [section]", show(name).s);
}

/* ---- sections ------------------------------------------------------------------ */

static void enter_type(struct parse *p, const char *name)
{
	struct tm__config *c = p->c;
	struct tm__type_conf *t;

	if (!tm__valid_name(name)) {
		fail(p, "bad type name '%s' in [type.%s]: expected 1 to %d printable ASCII characters",
		     show(name).s, show(name).s, TM_NAME_MAX - 1);
		return;
	}
	t = find_type(c, name);
	if (!t && c->ntypes == TM_MAX_TYPES) {
		fail(p, "cannot declare type '%s': all %d types are taken", name, TM_MAX_TYPES);
		return;
	}
	if (!t) {
		t = &c->types[c->ntypes++];
		memset(t, 0, sizeof(*t));
		strcpy(t->name, name);
	}
	p->sec = SEC_TYPE;
	p->type = t;
}

static void enter_named(struct parse *p, const char *name)
{
	static const struct { const char *name; enum section sec; } fixed[] = {
		{ "task_management", SEC_MANAGEMENT },
		{ "task_limits", SEC_LIMITS },
		{ "task_timeouts", SEC_TIMEOUTS },
	};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(name, fixed[i].name) == 0) {
			p->sec = fixed[i].sec;
			return;
		}
	}
	if (strncmp(name, "type.", 5) == 0)
		enter_type(p, name + 5);
	else
		fail(p, "unknown section [%s]", show(name).s);
}

/* line starts with '['. inih ignores whatever follows the ']'; we allow only a comment. */
static void enter_section(struct parse *p, const char *line)
{
	const char *bracket = strchr(line, ']');
	const char *rest;
	char name[SECTION_MAX];
	size_t n;

	p->sec = SEC_NONE;
	p->type = NULL;
	if (!bracket)
		return;  /* inih reports the line as a syntax error */
	rest = bracket + 1 + strspn(bracket + 1, " \t");
	if (*rest && *rest != ';' && *rest != '#') {
		fail(p, "syntax error (expected [section] or key = value)");
		return;
	}
	n = (size_t)(bracket - line - 1);
	if (n >= sizeof(name))
		n = sizeof(name) - 1;  /* too long to be valid, still worth quoting */
	memcpy(name, line + 1, n);
	name[n] = '\0';
	enter_named(p, name);
}

/* ---- lines --------------------------------------------------------------------- */

/* Reads one line into buf without its end of line. false at the end of the
 * file and on a line refused here. */
static bool fetch_line(struct parse *p, char *buf, size_t size)
{
	/* inih asks for room for "\r\n" and the NUL on top of the longest line */
	size_t n = 0, limit = size > 3 ? size - 3 : 0;
	int ch;

	while ((ch = getc(p->f)) != EOF && ch != '\n') {
		if (ch == '\0')
			return fail(p, "line contains a NUL byte");
		if (n == size - 1)
			return fail(p, "line is longer than %zu bytes", limit);
		buf[n++] = (char)ch;
	}
	if (ferror(p->f))
		return fail_file(p, errno ? errno : EIO, "read");
	if (ch == EOF && n == 0)
		return false;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n > limit)
		return fail(p, "line is longer than %zu bytes", limit);
	buf[n] = '\0';
	return true;
}

/* A UTF-8 byte order mark is dropped here rather than by inih so that a
 * first-line section header is still seen as one. */
static void strip_start(char *buf, bool first)
{
	size_t skip = 0;

	if (first && strncmp(buf, "\xef\xbb\xbf", 3) == 0)
		skip = 3;
	skip += strspn(buf + skip, " \t");
	memmove(buf, buf + skip, strlen(buf + skip) + 1);
}

/* inih's reader, called like fgets once per line. */
static char *read_line(char *buf, int size, void *stream)
{
	struct parse *p = stream;

	if (p->rc || size < 1)
		return NULL;  /* the first error ends the parse */
	p->lineno++;
	if (!fetch_line(p, buf, (size_t)size))
		return NULL;
	strip_start(buf, p->lineno == 1);
	if (buf[0] == '[')
		enter_section(p, buf);
	return buf;
}

/* inih returns the first line it found wrong, ours or its own: when that
 * comes before our first error it is a line inih could not split. */
static int finish(struct parse *p, int r)
{
	if (r < 0) {
		p->rc = 0;
		p->lineno = 0;
		fail_file(p, ENOMEM, "read");
	} else if (r > 0 && (!p->rc || (unsigned)r < p->err_line)) {
		p->rc = 0;
		p->lineno = (unsigned)r;
		fail(p, "syntax error (expected [section] or key = value)");
	}
	return p->rc;
}

/* Works on a copy so that c changes all at once or not at all. */
int tm__config_load(struct tm__config *c, const char *path, char *err, size_t errlen)
{
	struct tm__config work = *c;
	struct parse p = { .c = &work, .path = path, .err = err, .errlen = err ? errlen : 0 };
	int r;

	if (c->ntypes < TM_BUILTIN_TYPES || c->ntypes > TM_MAX_TYPES || !path) {
		snprintf(p.err, p.errlen, "no config path, or a configuration not set to defaults first");
		return -EINVAL;
	}
	p.f = fopen(path, "re");
	if (!p.f) {
		fail_file(&p, errno, "open");
		return p.rc;
	}
	r = ini_parse_stream(read_line, &p, on_key, &p);
	fclose(p.f);
	r = finish(&p, r);
	if (r == 0)
		*c = work;
	return r;
}
