/* OpenMetrics output of taskmon dump (dump_om.h). */
#include "dump_om.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sample {
	uint32_t rec;
	long long v;
};

struct vec {
	struct sample *s;
	size_t n, cap;
};

struct series {
	char *labels;          /* the text between the braces */
	enum dump_level level;
	struct vec *vals;      /* one per family */
};

struct dump_om {
	int fam[DUMP_FIELD_COUNT];
	size_t nfam;
	struct series *s;
	size_t ns, scap;
	uint32_t *table;       /* open addressing on labels: series index + 1 */
	size_t tmask;
	size_t samples;
};

struct dump_om *dump_om_new(const int *sel, size_t nsel)
{
	struct dump_om *om = calloc(1, sizeof(*om));
	if (!om)
		return NULL;
	for (size_t i = 0; i < nsel; i++) {
		bool dup = false;
		for (size_t k = 0; k < om->nfam; k++)
			dup |= om->fam[k] == sel[i];
		if (!dup && dump_fields[sel[i]].level != DL_LABEL)
			om->fam[om->nfam++] = sel[i];
	}
	om->tmask = 255;
	om->table = calloc(om->tmask + 1, sizeof(*om->table));
	if (!om->table) {
		free(om);
		return NULL;
	}
	return om;
}

void dump_om_free(struct dump_om *om)
{
	if (!om)
		return;
	for (size_t i = 0; i < om->ns; i++) {
		for (size_t f = 0; f < om->nfam; f++)
			free(om->s[i].vals[f].s);
		free(om->s[i].vals);
		free(om->s[i].labels);
	}
	free(om->s);
	free(om->table);
	free(om);
}

/* ---- series --------------------------------------------------------------------------------- */

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* A label value with \\, \" and \n escaped, as the format asks. */
static void put_label(char **p, size_t *left, const char *name, const char *value, bool first)
{
	int n = snprintf(*p, *left, "%s%s=\"", first ? "" : ",", name);
	if (n < 0 || (size_t)n >= *left)
		return;   /* no room: the caller's buffer is sized for names far longer than a comm */
	*p += n;
	*left -= (size_t)n;
	for (; *value && *left > 3; value++) {
		const char *esc = *value == '\\' ? "\\\\" : *value == '"' ? "\\\"" : *value == '\n' ? "\\n" : NULL;
		size_t k = esc ? 2 : 1;
		memcpy(*p, esc ? esc : value, k);
		*p += k;
		*left -= k;
	}
	if (*left > 1) {
		*(*p)++ = '"';
		(*left)--;
	}
	**p = '\0';
}

static void labels_of(const struct dump_row *row, enum dump_level level, char *buf, size_t len)
{
	char pid[24] = "";
	size_t left = len;
	char *p = buf;
	buf[0] = '\0';
	if (level == DL_REC)
		return;
	const struct dump_val *w = &row->v[dump_field_index("workload")], *pv = &row->v[dump_field_index("pid")];
	const struct dump_val *t = &row->v[dump_field_index("type")];
	if (!pv->null)
		snprintf(pid, sizeof(pid), "%lld", pv->num);
	put_label(&p, &left, "workload", w->null ? "" : w->str, true);
	put_label(&p, &left, "pid", pid, false);
	if (level == DL_ROW)
		put_label(&p, &left, "type", t->null ? "" : t->str, false);
}

static int grow_table(struct dump_om *om)
{
	size_t mask = om->tmask * 2 + 1;
	uint32_t *t = calloc(mask + 1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < om->ns; i++) {
		size_t h = (size_t)hash(om->s[i].labels) & mask;
		while (t[h])
			h = (h + 1) & mask;
		t[h] = (uint32_t)(i + 1);
	}
	free(om->table);
	om->table = t;
	om->tmask = mask;
	return 0;
}

/* The series of those labels at that level (the level is part of the key). */
static struct series *series_of(struct dump_om *om, const char *labels, enum dump_level level)
{
	char key[1100];
	snprintf(key, sizeof(key), "%d|%s", (int)level, labels);
	size_t h = (size_t)hash(key) & om->tmask;
	for (; om->table[h]; h = (h + 1) & om->tmask) {
		struct series *s = &om->s[om->table[h] - 1];
		if (s->level == level && strcmp(s->labels, labels) == 0)
			return s;
	}
	if (om->ns == om->scap) {
		size_t cap = om->scap ? om->scap * 2 : 64;
		struct series *p = realloc(om->s, cap * sizeof(*p));
		if (!p)
			return NULL;
		om->s = p;
		om->scap = cap;
	}
	struct series *s = &om->s[om->ns];
	s->labels = strdup(labels);
	s->level = level;
	s->vals = calloc(om->nfam ? om->nfam : 1, sizeof(*s->vals));
	if (!s->labels || !s->vals) {
		free(s->labels);
		free(s->vals);
		return NULL;
	}
	om->table[h] = (uint32_t)++om->ns;
	if (om->ns * 2 > om->tmask && grow_table(om) < 0)
		return NULL;
	return s;
}

int dump_om_add(struct dump_om *om, const struct dump_row *row, size_t rec)
{
	char labels[1024];
	for (enum dump_level level = DL_ROW; level <= DL_REC; level++) {
		struct series *s = NULL;
		for (size_t f = 0; f < om->nfam; f++) {
			const struct dump_field *fd = &dump_fields[om->fam[f]];
			const struct dump_val *v = &row->v[om->fam[f]];
			if (fd->level != level || v->null)
				continue;
			if (!s) {
				labels_of(row, level, labels, sizeof(labels));
				if (!(s = series_of(om, labels, level)))
					return -ENOMEM;
			}
			struct vec *vec = &s->vals[f];
			if (vec->n && vec->s[vec->n - 1].rec == rec)
				continue;   /* a process or record figure, already taken from another row */
			if (om->samples == DUMP_OM_MAX_SAMPLES)
				return -ENOMEM;
			if (vec->n == vec->cap) {
				size_t cap = vec->cap ? vec->cap * 2 : 16;
				struct sample *p = realloc(vec->s, cap * sizeof(*p));
				if (!p)
					return -ENOMEM;
				vec->s = p;
				vec->cap = cap;
			}
			vec->s[vec->n++] = (struct sample){ .rec = (uint32_t)rec, .v = v->num };
			om->samples++;
		}
	}
	return 0;
}

/* ---- printing --------------------------------------------------------------------------------- */

static void put_value(FILE *out, long long v, double scale)
{
	if (scale == 1)
		fprintf(out, "%lld", v);
	else   /* ns as seconds, exactly */
		fprintf(out, "%lld.%09lld", v / 1000000000LL, v % 1000000000LL);
}

int dump_om_print(struct dump_om *om, const struct tm_records *r, FILE *out)
{
	for (size_t f = 0; f < om->nfam; f++) {
		const struct dump_field *fd = &dump_fields[om->fam[f]];
		bool counter = fd->kind == DK_COUNTER;
		fprintf(out, "# TYPE %s %s\n", fd->om_name, counter ? "counter" : "gauge");
		if (fd->unit)
			fprintf(out, "# UNIT %s %s\n", fd->om_name, fd->unit);
		fprintf(out, "# HELP %s %s\n", fd->om_name, fd->help);
		for (size_t i = 0; i < om->ns; i++) {
			const struct series *s = &om->s[i];
			if (s->level != fd->level)
				continue;
			for (size_t k = 0; k < s->vals[f].n; k++) {
				const struct sample *x = &s->vals[f].s[k];
				uint64_t t = tm_records_time(r, x->rec);
				fprintf(out, "%s%s%s%s%s ", fd->om_name, counter ? "_total" : "", s->labels[0] ? "{" : "",
				        s->labels, s->labels[0] ? "}" : "");
				put_value(out, x->v, fd->scale);
				fprintf(out, " %llu.%03llu\n", (unsigned long long)(t / 1000000000ull),
				        (unsigned long long)(t % 1000000000ull / 1000000ull));
			}
		}
	}
	fprintf(out, "# EOF\n");
	return ferror(out) ? -EIO : 0;
}
