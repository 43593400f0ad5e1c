/* The rows of taskmon dump (schema in dump.c and docs/dump-format.md): the
 * field table, and a cursor that turns one parsed record into its rows. */
#ifndef TM_DUMP_ROW_H
#define TM_DUMP_ROW_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define DUMP_SCHEMA_VERSION 1

/* Where a field belongs: what its OpenMetrics samples are labelled with. */
enum dump_level {
	DL_LABEL,   /* time, seq, pid, workload, type: labels or timestamps, not families */
	DL_ROW,     /* per workload and type */
	DL_PROC,    /* per process */
	DL_REC,     /* per record (the collector) */
};

enum dump_kind { DK_NONE, DK_COUNTER, DK_GAUGE };

struct dump_field {
	const char *name;
	enum dump_level level;
	enum dump_kind kind;
	const char *om_name;   /* the family's name (a counter's samples add _total) */
	const char *unit;      /* OpenMetrics unit, NULL = none */
	double scale;          /* value × scale in OpenMetrics (ns -> seconds) */
	const char *help;
	int how;               /* extraction, dump_row.c */
	const char *k1, *k2;
};

#define DUMP_FIELD_COUNT 35
extern const struct dump_field dump_fields[DUMP_FIELD_COUNT];

/* Index of a field by name, or -1. */
int  dump_field_index(const char *name);
/* The names, comma-separated, wrapped to lines that start with indent (NULL:
 * one line). */
void dump_fields_list(FILE *f, const char *indent);

struct dump_val {
	bool null;
	const char *str;   /* a string field; NULL for a number */
	long long num;
};

struct dump_row {
	struct dump_val v[DUMP_FIELD_COUNT];
	char time[40];
	char type_id[24];
};

/* Strings in a row borrow from the record: valid while it is. */
struct dump_cursor {
	json_t *rec, *workloads, *processes;
	uint64_t time;
	size_t wi, ti;
};
void dump_cursor_init(struct dump_cursor *c, json_t *rec, uint64_t time_unix_ns);
/* The next row of the record; false when there is none. */
bool dump_cursor_next(struct dump_cursor *c, struct dump_row *row);

#endif
