/* taskmon dump: the recorded series of a record directory, as JSON Lines,
 * CSV or OpenMetrics.
 *
 *   taskmon dump DIR [--since T] [--until T] [--format json|csv|openmetrics]
 *                    [--select FIELD,...]
 *
 * T: RFC 3339 ("2026-11-26T13:05:00Z", "...+01:00", fractions allowed),
 * "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD" in UTC, unix seconds ("1795698549"),
 * or relative to now: "-10m", "-2h", "-1d", "-30s", "now". Both bounds are
 * inclusive.
 *
 * Dump schema, version 1 (docs/dump-format.md says the same at more length).
 * One row per (record, workload, type) for every type of a workload that has
 * seen any activity (a spawn, a rejection, or a kernel start or end event);
 * rows in time order, then in the record's order of workloads and types.
 * Fields, in their default order:
 *   time               record time, RFC 3339 UTC with milliseconds
 *   time_unix_ns       record time, ns since the epoch
 *   seq                the record's sequence number in its collector run
 *   pid, workload      the process and its executable name (comm)
 *   type               the task type's name (its id when it has none)
 *   spawned running succeeded failed panicked cancelled timed_out restarts
 *   rejected crashed escalations
 *                      the library's counters for that type (running is a
 *                      gauge, the rest count since the process started)
 *   started ended      kernel task start and end events seen
 *   spawn_latency_count, spawn_latency_p50_ns, _p95_ns, _p99_ns, _max_ns
 *                      spawn latency (task_spawn -> task_start, kernel clock)
 *   run_time_p50_ns run_time_p99_ns   on-CPU time per ended task
 *   oncpu_ns runq_ns blocked_ns       summed over ended tasks
 *   rss_bytes threads cpu_ns          the process (user + system CPU)
 *   collector_rss_bytes collector_cpu_ns   the collector itself
 *   collector_events_lost                   kernel events the ring buffer could not take
 * A number missing from the record is null (JSON), empty (CSV) or left out
 * (OpenMetrics); process fields are null once the process has exited.
 *
 * json: one object per row, "schema": 1 first, then the selected fields in
 * the order given. csv: a header line with the selected names, then one line
 * per row (RFC 4180 quoting). openmetrics: one metric family per selected
 * numeric field, named in base units (seconds, bytes) with labels workload,
 * pid and type (process fields: workload and pid; collector fields: none),
 * one sample per record with its timestamp in seconds, ending "# EOF"; time,
 * seq and the label fields are not families and are ignored in --select.
 * Later versions of schema 1 only add fields; a consumer ignores fields it
 * does not know.
 *
 * Exit: 0 printed (also when no record matched: a note on stderr), 1 the
 * directory could not be read or output failed, 2 bad arguments.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "dump_om.h"
#include "dump_row.h"
#include "records.h"

#define SEC 1000000000ull

enum format { F_JSON, F_CSV, F_OPENMETRICS };

static void usage(FILE *f)
{
	fprintf(f, "usage: taskmon dump DIR [--since T] [--until T] [--format json|csv|openmetrics] [--select FIELDS]\n"
	           "  DIR                a directory written by taskmond --record\n"
	           "  --since T          records at or after T; T is RFC 3339 (2026-11-26T13:05:00Z),\n"
	           "                     'YYYY-MM-DD HH:MM:SS' (UTC), unix seconds, or relative: -10m, -2h, -1d\n"
	           "  --until T          records at or before T\n"
	           "  --format F         json (JSON Lines, the default), csv, or openmetrics\n"
	           "  --select FIELDS    comma-separated fields to print, in that order (default: all):\n");
	dump_fields_list(f, "                     ");
}

/* ---- time arguments --------------------------------------------------------------------- */

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

/* ".123" -> ns; the rest of the string after the digits in *end. */
static uint64_t fraction_ns(const char *s, const char **end)
{
	uint64_t ns = 0, scale = SEC / 10;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
			ns += (uint64_t)(*s - '0') * scale;
	*end = s;
	return ns;
}

static int relative_time(const char *s, uint64_t now, uint64_t *out)
{
	static const struct { char unit; double ns; } units[] = {
		{ 's', 1e9 }, { 'm', 60e9 }, { 'h', 3600e9 }, { 'd', 86400e9 }, { 'w', 604800e9 },
	};
	char *end;
	double v = strtod(s + 1, &end);
	if (!(s[1] >= '0' && s[1] <= '9') || !(v >= 0) || end[0] == '\0' || end[1] != '\0')
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (*end != units[i].unit)
			continue;
		double ns = v * units[i].ns;
		if (ns >= (double)now)
			return -EINVAL;
		*out = now - (uint64_t)ns;
		return 0;
	}
	return -EINVAL;
}

static int absolute_time(const char *s, uint64_t *out)
{
	struct tm tm;
	int n = 0;
	const char *p;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
		return -EINVAL;
	p = s + 10;
	uint64_t frac = 0;
	int64_t offset = 0;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (sscanf(p + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 3 || n != 8)
			return -EINVAL;
		frac = fraction_ns(p + 9, &p);
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh, om;
			if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
				return -EINVAL;
			offset = (*p == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
			p += 6;
		}
	}
	if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	int64_t t = (int64_t)timegm(&tm) - offset;
	if (t < 0)
		return -EINVAL;
	*out = (uint64_t)t * SEC + frac;
	return 0;
}

/* A time argument as ns since the epoch (see the header). */
static int parse_time(const char *s, uint64_t now, uint64_t *out)
{
	const char *end;
	if (strcmp(s, "now") == 0) {
		*out = now;
		return 0;
	}
	if (s[0] == '-')
		return relative_time(s, now, out);
	size_t digits = strspn(s, "0123456789");
	if (digits && digits <= 12 && (s[digits] == '\0' || s[digits] == '.')) {
		uint64_t ns = fraction_ns(s + digits, &end);
		if (*end)
			return -EINVAL;
		*out = strtoull(s, NULL, 10) * SEC + ns;
		return 0;
	}
	return absolute_time(s, out);
}

/* ---- output -------------------------------------------------------------------------------- */

static void print_json_row(const struct dump_row *row, const int *sel, size_t nsel)
{
	json_t *o = json_object();
	json_object_set_new(o, "schema", json_integer(DUMP_SCHEMA_VERSION));
	for (size_t i = 0; i < nsel; i++) {
		const struct dump_val *v = &row->v[sel[i]];
		json_object_set_new(o, dump_fields[sel[i]].name,
		                    v->null ? json_null() : v->str ? json_string(v->str) : json_integer(v->num));
	}
	json_dumpf(o, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(o);
}

static void csv_string(const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, stdout);
		return;
	}
	fputc('"', stdout);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', stdout);
		fputc(*s, stdout);
	}
	fputc('"', stdout);
}

static void print_csv_row(const struct dump_row *row, const int *sel, size_t nsel)
{
	for (size_t i = 0; i < nsel; i++) {
		const struct dump_val *v = &row->v[sel[i]];
		if (i)
			fputc(',', stdout);
		if (v->str)
			csv_string(v->str);
		else if (!v->null)
			printf("%lld", (long long)v->num);
	}
	fputs("\r\n", stdout);
}

/* ---- arguments ------------------------------------------------------------------------------ */

struct args {
	const char *dir;
	uint64_t since, until;
	enum format format;
	int sel[DUMP_FIELD_COUNT * 4];
	size_t nsel;
};

static int parse_select(const char *list, struct args *a)
{
	char buf[4096];
	if (strlen(list) >= sizeof(buf)) {
		fprintf(stderr, "taskmon dump: --select takes at most %zu bytes of field names\n", sizeof(buf) - 1);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	char *save = NULL;
	for (char *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		int k = dump_field_index(f);
		if (k < 0) {
			fprintf(stderr, "taskmon dump: unknown field '%s'; the fields are: ", f);
			dump_fields_list(stderr, NULL);
			return -1;
		}
		if (a->nsel == sizeof(a->sel) / sizeof(a->sel[0])) {
			fprintf(stderr, "taskmon dump: --select names too many fields\n");
			return -1;
		}
		a->sel[a->nsel++] = k;
	}
	if (!a->nsel) {
		fprintf(stderr, "taskmon dump: --select takes a comma-separated list of fields\n");
		return -1;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longs[] = {
		{ "since", required_argument, NULL, 's' }, { "until", required_argument, NULL, 'u' },
		{ "format", required_argument, NULL, 'f' }, { "select", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	uint64_t now = realtime_ns();
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 's':
		case 'u':
			if (parse_time(optarg, now, c == 's' ? &a->since : &a->until) < 0) {
				fprintf(stderr, "taskmon dump: --%s takes a time like 2026-11-26T13:05:00Z, "
				                "'2026-11-26 13:05:00', 1795698300 or -10m, not '%s'\n",
				        c == 's' ? "since" : "until", optarg);
				return 2;
			}
			break;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				a->format = F_JSON;
			else if (strcmp(optarg, "csv") == 0)
				a->format = F_CSV;
			else if (strcmp(optarg, "openmetrics") == 0)
				a->format = F_OPENMETRICS;
			else {
				fprintf(stderr, "taskmon dump: --format takes json, csv or openmetrics, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'S':
			if (parse_select(optarg, a) < 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (optopt && strchr("sufS", optopt))
				fprintf(stderr, "taskmon dump: option '%s' needs a value (see taskmon help dump)\n",
				        argv[optind - 1]);
			else
				fprintf(stderr, "taskmon dump: unknown option '%s' (see taskmon help dump)\n", argv[optind - 1]);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, optind >= argc ? "taskmon dump: which record directory? (taskmon dump DIR)\n"
		                               : "taskmon dump: one record directory, not several\n");
		return 2;
	}
	a->dir = argv[optind];
	if (a->until && a->since > a->until) {
		fprintf(stderr, "taskmon dump: --since is after --until\n");
		return 2;
	}
	if (!a->nsel)
		for (int k = 0; k < DUMP_FIELD_COUNT; k++)
			a->sel[a->nsel++] = k;
	return -1;
}

/* ---- the command ---------------------------------------------------------------------------- */

static int dump_records(struct tm_records *r, const struct args *a, struct dump_om *om)
{
	struct dump_row row;
	size_t rows = 0;
	if (a->format == F_CSV)
		for (size_t i = 0; i < a->nsel; i++)
			printf(i + 1 < a->nsel ? "%s," : "%s\r\n", dump_fields[a->sel[i]].name);
	for (size_t i = 0; i < tm_records_count(r); i++) {
		json_t *rec = tm_records_get(r, i);
		struct dump_cursor cur;
		if (!rec)
			continue;
		dump_cursor_init(&cur, rec, tm_records_time(r, i));
		while (dump_cursor_next(&cur, &row)) {
			rows++;
			if (a->format == F_JSON)
				print_json_row(&row, a->sel, a->nsel);
			else if (a->format == F_CSV)
				print_csv_row(&row, a->sel, a->nsel);
			else if (dump_om_add(om, &row, i) < 0)
				return -ENOMEM;
		}
		if (ferror(stdout))
			return -EIO;
	}
	if (!rows)
		fprintf(stderr, "taskmon dump: no records in %s%s\n", a->dir,
		        a->since || a->until ? " within that time range" : "");
	return 0;
}

int tm_cmd_dump(int argc, char **argv)
{
	struct args a = { .format = F_JSON };
	struct tm_records *r;
	struct dump_om *om = NULL;
	char err[512];
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	int e = tm_records_open(&r, a.dir, a.since, a.until, err, sizeof(err));
	if (e < 0) {
		fprintf(stderr, "taskmon dump: %s\n", err);
		return 1;
	}
	if (a.format == F_OPENMETRICS && !(om = dump_om_new(a.sel, a.nsel))) {
		fprintf(stderr, "taskmon dump: out of memory\n");
		tm_records_close(r);
		return 1;
	}
	e = dump_records(r, &a, om);
	if (e == 0 && om)
		e = dump_om_print(om, r, stdout);
	if (e == -ENOMEM)
		fprintf(stderr, "taskmon dump: too many samples to group for openmetrics (at most %u); "
		                "narrow the range with --since/--until or the fields with --select\n", DUMP_OM_MAX_SAMPLES);
	if (tm_records_skipped(r))
		fprintf(stderr, "taskmon dump: %zu line%s skipped in %s (a record still being written, or damaged)\n",
		        tm_records_skipped(r), tm_records_skipped(r) == 1 ? "" : "s", a.dir);
	dump_om_free(om);
	tm_records_close(r);
	if (fflush(stdout) != 0 || e == -EIO) {
		if (e != -ENOMEM)
			fprintf(stderr, "taskmon dump: writing the output failed: %s\n", strerror(errno ? errno : EIO));
		return 1;
	}
	return e < 0 ? 1 : 0;
}
