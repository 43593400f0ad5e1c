/* tasktop's screens on fixed models: expected lines at 80x24 and 132x40,
 * sorting, filtering, the detail screen, hostile names, truncation. The
 * screens read nothing but the model and the view, so these need no
 * terminal. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "canvas.h"
#include "model.h"
#include "screen.h"
#include "snapshot_parse.h"
#include "view.h"

#define S_NS 1000000000ull
#define MS_NS 1000000ull
#define US_NS 1000ull
#define NOW_UNIX (1764158400ull * S_NS)   /* 2025-11-26 12:00:00 UTC */

/* ---- the fixture: two workloads, three types, six tasks, a crash --------- */

static void set_name(struct tt_name *n, const char *s)
{
	snprintf(n->s, sizeof(n->s), "%s", s);
	n->flags = tt_str_flags(s, strlen(s));
}

static void set_comm(struct tt_comm *n, const char *s)
{
	snprintf(n->s, sizeof(n->s), "%s", s);
	n->flags = tt_str_flags(s, strlen(s));
}

static void hist(struct tt_hist *h, uint64_t count, uint64_t p50, uint64_t p95, uint64_t p99, uint64_t max)
{
	*h = (struct tt_hist){ .present = true, .count = count, .mean_ns = p50, .p50_ns = p50, .p95_ns = p95,
	                       .p99_ns = p99, .max_ns = max };
}

static struct tt_type *add_type(struct tt_workload *w, int id, const char *name, uint64_t running, uint64_t spawned,
                                uint64_t ok, uint64_t failed, double rate, double cpu)
{
	struct tt_type *t = &w->types[w->ntypes++];
	memset(t, 0, sizeof(*t));
	t->id = id;
	set_name(&t->name, name);
	t->reg.c[TM_C_RUNNING] = running;
	t->reg.c[TM_C_SPAWNED] = spawned;
	t->reg.c[TM_C_SUCCEEDED] = ok;
	t->reg.c[TM_C_FAILED] = failed;
	t->rates_valid = true;
	t->spawned_per_s = rate;
	t->cpu_pct = cpu;
	t->k.present = true;
	t->k.tasks_started = spawned;
	hist(&t->k.spawn_latency, spawned, 24 * US_NS, 80 * US_NS, 1200 * US_NS, 5 * MS_NS);
	hist(&t->k.run_time, spawned, 2 * MS_NS, 9 * MS_NS, 15 * MS_NS, 40 * MS_NS);
	return t;
}

static struct tt_task *add_task(struct tt_model *m, size_t widx, uint64_t id, const char *name, int type,
                                enum tt_state st, uint64_t age_ms, double cpu, double runq, double blocked)
{
	struct tt_task *t = &m->tasks[m->ntasks++];
	const struct tt_workload *w = &m->workloads[widx];
	memset(t, 0, sizeof(*t));
	t->widx = widx;
	t->pid = w->pid;
	t->id = id;
	t->tid = (uint32_t)(w->pid + id);
	set_name(&t->name, name);
	t->type = type;
	const struct tt_type *ty = tt_workload_find_type(w, type);
	if (ty)
		t->type_name = ty->name;
	t->state = st;
	t->finished = st != TT_ST_RUNNING;
	t->age_ns = age_ms * MS_NS;
	t->run_ns = t->age_ns;
	t->spawn_ns = 1000 * S_NS;
	t->start_ns = t->spawn_ns + 20 * US_NS;
	t->pct_basis = t->finished ? TT_PCT_LIFETIME : TT_PCT_INTERVAL;
	t->runq_known = true;
	t->cpu_pct = cpu;
	t->runq_pct = runq;
	t->blocked_pct = blocked;
	t->k.present = true;
	t->k.started = true;
	t->k.ended = t->finished;
	t->k.spawn_latency_known = true;
	t->k.spawn_latency_ns = 21 * US_NS;
	t->k.spawn_runq_ns = 3 * US_NS;
	t->k.voluntary_switches = id * 10;
	t->k.involuntary_switches = id;
	t->k.incarnations = 1;
	return t;
}

static struct tt_model *fixture(void)
{
	struct tt_model *m = tt_model_new(TT_SRC_LIVE);
	assert_non_null(m);
	m->health = TT_HEALTH_OK;
	snprintf(m->status, sizeof(m->status), "live from /tmp/t/taskmond.sock");
	m->kernel_figures = true;
	m->seq = 2;
	m->now_unix_ns = NOW_UNIX;
	m->interval_valid = true;
	m->interval_ns = S_NS;
	m->collector = (struct tt_collector){ .present = true, .pid = 77, .mode = "tp_btf", .lost = 3,
	                                      .rates_valid = true, .lost_delta = 0, .events_per_s = 1234.5,
	                                      .cpu_known = true, .cpu_pct = 0.4, .rss_bytes = 12u << 20 };
	m->workloads_seen = 2;
	m->workloads_live = 2;
	m->workloads = calloc(2, sizeof(*m->workloads));
	assert_non_null(m->workloads);
	m->nworkloads = 2;
	struct tt_workload *a = &m->workloads[0], *b = &m->workloads[1];
	a->pid = 4242;
	set_comm(&a->comm, "server");
	a->alive = true;
	a->types = calloc(2, sizeof(*a->types));
	assert_non_null(a->types);
	add_type(a, 1, "network", 2, 150, 140, 8, 12.5, 3.5);
	struct tt_type *db = add_type(a, 2, "database", 1, 40, 39, 0, 2.0, 1.0);
	db->reg.c[TM_C_PANICKED] = 0;
	b->pid = 5151;
	set_comm(&b->comm, "bat\x1b[31mch");   /* a hostile process name */
	b->alive = true;
	b->types = calloc(1, sizeof(*b->types));
	assert_non_null(b->types);
	struct tt_type *gen = add_type(b, 0, "general", 0, 7, 6, 0, 0.0, 0.0);
	gen->reg.c[TM_C_PANICKED] = 1;
	gen->k.present = false;
	hist(&gen->lib_latency, 7, 30 * US_NS, 60 * US_NS, 90 * US_NS, 100 * US_NS);

	m->tasks = calloc(8, sizeof(*m->tasks));
	assert_non_null(m->tasks);
	add_task(m, 0, 101, "network_0", 1, TT_ST_RUNNING, 12300, 45.0, 5.0, 50.0);
	struct tt_task *t = add_task(m, 0, 102, "network_1", 1, TT_ST_RUNNING, 800, 96.5, 3.5, 0.0);
	t->warnings = TT_W_NO_YIELD;
	t = add_task(m, 0, 103, "a_very_long_task_name_that_cannot_fit_in_any_column_at_all", 2, TT_ST_RUNNING,
	             61000, 1.0, 0.0, 99.0);
	t->restarts = 3;
	t->restart_hist[0] = (struct tt_restart_obs){ NOW_UNIX - 20 * S_NS, 2 };
	t->restart_hist[1] = (struct tt_restart_obs){ NOW_UNIX - 5 * S_NS, 3 };
	t->nrestart_hist = 2;
	t = add_task(m, 0, 99, "network_x", 1, TT_ST_FAILED, 15, 20.0, 10.0, 70.0);
	t->rc = 7;
	t = add_task(m, 1, 5, "evil\x1b[2J\x07name", 0, TT_ST_PANICKED, 2, 0.0, 0.0, 100.0);
	t->rc = -1;
	t = add_task(m, 1, 6, "general_6", 0, TT_ST_CRASHED, 3, 50.0, 50.0, 0.0);
	t->pct_basis = TT_PCT_NONE;

	m->tasks_running = 3;
	m->spawned_per_s = 14.5;
	hist(&m->header_latency, 190, 24 * US_NS, 80 * US_NS, 1200 * US_NS, 5 * MS_NS);
	m->header_latency_kernel = true;
	m->failed_delta = 1;

	m->warnings = calloc(1, sizeof(*m->warnings));
	assert_non_null(m->warnings);
	m->warnings[0] = (struct tt_warning){ TT_WK_NO_YIELD, 4242, 102, 1, 1,
	                                      "network_1 has been on CPU for 1.2 s without a voluntary switch" };
	m->nwarnings = 1;

	m->crashes = calloc(1, sizeof(*m->crashes));
	assert_non_null(m->crashes);
	struct tt_crash *cr = &m->crashes[0];
	cr->time_unix_ns = NOW_UNIX - 2 * S_NS;
	snprintf(cr->time, sizeof(cr->time), "2025-11-26T11:59:58.000Z");
	cr->pid = 5151;
	cr->tid = 5157;
	set_comm(&cr->comm, "batch");
	set_comm(&cr->thread, "general_6");
	cr->task_known = true;
	cr->task_id = 6;
	set_name(&cr->task_name, "general_6");
	set_name(&cr->type_name, "general");
	snprintf(cr->signal, sizeof(cr->signal), "SIGSEGV");
	snprintf(cr->code, sizeof(cr->code), "SEGV_MAPERR");
	cr->signo = 11;
	cr->si_code = 1;
	cr->fault_addr_known = true;
	cr->fault_addr = 0x10;
	cr->frames = calloc(2, sizeof(*cr->frames));
	assert_non_null(cr->frames);
	cr->nframes = 2;
	m->ncrashes = 1;
	cr->frames[0] = (struct tt_frame){ .addr = 0x401136, .symbol = "crash_body", .symbol_offset_known = true,
	                                   .symbol_offset = 0x16, .module = "/usr/bin/batch" };
	cr->frames[1] = (struct tt_frame){ .addr = 0x7f0000001000, .module = "/usr/lib/libtaskmon.so.0" };
	m->crashes_known = true;
	snprintf(m->crashes_source, sizeof(m->crashes_source), "/tmp/t/state/crashes.jsonl");
	return m;
}

/* ---- helpers -------------------------------------------------------------- */

struct fx {
	struct tt_model *m;
	struct tt_view v;
	struct tt_canvas c;
};

static int setup(void **state)
{
	setenv("TZ", "UTC", 1);
	tzset();
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->m = fixture();
	tt_view_init(&f->v, false);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	tt_model_free(f->m);
	tt_canvas_free(&f->c);
	free(f);
	return 0;
}

static void render(struct fx *f, int w, int h)
{
	assert_int_equal(tt_canvas_resize(&f->c, w, h), 0);
	tt_render(&f->c, f->m, &f->v, NULL);
}

static const char *line(const struct fx *f, int y)
{
	static char buf[TT_CANVAS_MAX_W + 1];
	tt_canvas_line(&f->c, y, buf, sizeof(buf));
	return buf;
}

/* The row whose text contains s, or -1. */
static int find_row(const struct fx *f, const char *s)
{
	for (int y = 0; y < f->c.h; y++)
		if (strstr(line(f, y), s))
			return y;
	return -1;
}

static void dump(const struct fx *f)
{
	for (int y = 0; y < f->c.h; y++)
		printf("%2d|%s|\n", y, line(f, y));
}

static void expect_lines(const struct fx *f, const char *const *want, int n)
{
	for (int y = 0; y < n; y++) {
		if (strcmp(line(f, y), want[y]) != 0) {
			dump(f);
			fail_msg("row %d:\n  got  '%s'\n  want '%s'", y, line(f, y), want[y]);
		}
	}
}

/* Every byte on the canvas is printable ASCII: nothing reaches the terminal raw. */
static void assert_printable(const struct fx *f)
{
	for (size_t i = 0; i < (size_t)f->c.w * (size_t)f->c.h; i++)
		assert_true(f->c.text[i] >= 0x20 && f->c.text[i] < 0x7f);
}

/* Truncation never breaks columns: the blank after every cell of the table
 * (rows first..last) stays blank, at the widths the screen itself uses. */
static void assert_gaps(const struct fx *f, const int *widths, int ncols, int first, int last)
{
	int x = 0;
	for (int col = 0; col < ncols; col++) {
		if (!widths[col])
			continue;
		x += widths[col];
		for (int y = first; y <= last && x < f->c.w; y++) {
			if (f->c.text[(size_t)y * (size_t)f->c.w + (size_t)x] != ' ') {
				dump(f);
				fail_msg("row %d spills over column %d's end at x %d", y, col, x);
			}
		}
		x++;
	}
}

static void assert_columns_aligned(const struct fx *f, int head_row, int first, int last)
{
	int widths[TT_TC_COUNT];
	(void)head_row;
	tt_tasks_layout(f->m, &f->v, f->c.w, widths);
	assert_gaps(f, widths, TT_TC_COUNT, first, last);
}

static void assert_types_aligned(const struct fx *f, int first, int last)
{
	int widths[TT_YC_COUNT];
	tt_types_layout(&f->v, f->c.w, widths);
	assert_gaps(f, widths, TT_YC_COUNT, first, last);
}

/* ---- tests ---------------------------------------------------------------- */

static const char *const header80[] = {
	"tasktop  live  12:00:00",
	"Workloads 2 live   Running 3   Spawned/s 14.5   Latency p50 24.0us p99 1.20ms",
	"Interval 1 failed, 0 panicked, 0 timed out, 0 crashed",
	"Collector lost 0/3, 1235 ev/s, CPU 0.4%, RSS 12.0M",
	"live from /tmp/t/taskmond.sock",
	"1 Types  2 Tasks  3 Detail  4 Crashes(1)  5 Warnings(1)  6 Help",
};

static void test_tasks_80x24(void **state)
{
	struct fx *f = *state;
	static const char *const want[] = {
		"Tasks 6 of 6  sort CPU% desc",
		"   ID WORKLOAD NAME         TYPE     STATE        AGE  CPU% RUNQ%  BLK% RST WARN",
		"  102 ser:4242 network_1    network  running    800ms  96.5   3.5   0.0   0 Y",
		"  101 ser:4242 network_0    network  running    12.3s  45.0   5.0  50.0   0",
		"   99 ser:4242 network_x    network  failed    15.0ms  20.0  10.0  70.0   0",
		"  103 ser:4242 a_very_long~ database running    1m01s   1.0   0.0  99.0   3",
		"    5 bat:5151 evil\\x1b[2J~ general  panicked  2.00ms   0.0   0.0   100   0",
		"    6 bat:5151 general_6    general  crashed   3.00ms     -     -     -   0",
		"",
	};
	render(f, 80, 24);
	expect_lines(f, header80, 6);
	for (int i = 0; i < 9; i++)
		if (strcmp(line(f, 6 + i), want[i]) != 0) {
			dump(f);
			fail_msg("row %d: got '%s', want '%s'", 6 + i, line(f, 6 + i), want[i]);
		}
	assert_string_equal(line(f, 23), "EnterDetail /Filter tType sSort iInvert SState rRun pPause hHelp qQuit");
	assert_printable(f);
	assert_columns_aligned(f, 7, 8, 13);
	/* The selection bar is on the first row, across the whole width. */
	for (int x = 0; x < 80; x++)
		assert_int_equal(f->c.style[8 * 80 + x], TT_SELECTED);
	assert_int_equal(f->c.style[9 * 80], TT_NORMAL);
	/* The sorted column's heading stands out. */
	const char *heads = line(f, 7);
	assert_int_equal(f->c.style[7 * 80 + (strstr(heads, "CPU%") - heads)], TT_SORTED);
	assert_int_equal(f->c.style[7 * 80 + (strstr(heads, "NAME") - heads)], TT_COLHEAD);
}

static void test_tasks_132x40(void **state)
{
	struct fx *f = *state;
	static const char *const want[] = {
		"tasktop  live  12:00:00",
		"Workloads 2 live   Running 3   Spawned/s 14.5   Latency p50 24.0us p99 1.20ms",
		"Interval 1 failed, 0 panicked, 0 timed out, 0 crashed   Collector lost 0/3, 1235 ev/s, CPU 0.4%, RSS 12.0M",
		"live from /tmp/t/taskmond.sock",
		"1 Types  2 Tasks  3 Detail  4 Crashes(1)  5 Warnings(1)  6 Help",
		"Tasks 6 of 6  sort CPU% desc",
		"     ID WORKLOAD         NAME                             TYPE         STATE        AGE  CPU% RUNQ%  BLK%    VCSW   IVCSW  RST WARN",
		"    102 server:4242      network_1                        network      running    800ms  96.5   3.5   0.0    1020     102    0 Y",
		"    101 server:4242      network_0                        network      running    12.3s  45.0   5.0  50.0    1010     101    0",
		"     99 server:4242      network_x                        network      failed    15.0ms  20.0  10.0  70.0     990      99    0",
		"    103 server:4242      a_very_long_task_name_that_cann~ database     running    1m01s   1.0   0.0  99.0    1030     103    3",
		"      5 bat\\x1b[31m:5151 evil\\x1b[2J\\x07name              general      panicked  2.00ms   0.0   0.0   100      50       5    0",
		"      6 bat\\x1b[31m:5151 general_6                        general      crashed   3.00ms     -     -     -      60       6    0",
		"",
	};
	render(f, 132, 40);
	expect_lines(f, want, 14);
	assert_string_equal(line(f, 39), "EnterDetail /Filter tType sSort iInvert SState rRun pPause hHelp qQuit");
	assert_printable(f);
	assert_columns_aligned(f, 6, 7, 12);
}

static void test_types_80_and_132(void **state)
{
	struct fx *f = *state;
	static const char *const want80[] = {
		"Types 3 in 2 workloads  sort WORKLOAD asc",
		"WORKLOAD TYPE         RUN SPWN/S    OK FAIL PANIC CNCL TMOUT    P50    P99  CPU%",
		"bat:5151 general        0    0.0     6    0     1    0     0 30.0us 90.0us   0.0",
		"ser:4242 network        2   12.5   140    8     0    0     0 24.0us 1.20ms   3.5",
		"ser:4242 database       1    2.0    39    0     0    0     0 24.0us 1.20ms   1.0",
		"",
	};
	static const char *const want132[] = {
		"Types 3 in 2 workloads  sort WORKLOAD asc",
		"WORKLOAD         TYPE                         RUN  SPAWNED  SPWN/S      OK   FAIL  PANIC   CNCL  TMOUT    RST     P50     P99   CPU%",
		"bat\\x1b[31m:5151 general                        0        7     0.0       6      0      1      0      0      0  30.0us  90.0us    0.0",
		"server:4242      network                        2      150    12.5     140      8      0      0      0      0  24.0us  1.20ms    3.5",
		"server:4242      database                       1       40     2.0      39      0      0      0      0      0  24.0us  1.20ms    1.0",
		"",
	};
	tt_view_key(&f->v, '1');
	render(f, 80, 24);
	expect_lines(f, header80, 5);
	for (int i = 0; i < 6; i++)
		assert_string_equal(line(f, 6 + i), want80[i]);
	assert_types_aligned(f, 7, 10);
	render(f, 132, 40);
	for (int i = 0; i < 6; i++)
		assert_string_equal(line(f, 5 + i), want132[i]);
	assert_types_aligned(f, 6, 9);
	/* Sorted by failures, most first; then by latency p50, least first. */
	for (int i = TT_YC_WORKLOAD; i < TT_YC_FAILED; i++)
		tt_view_key(&f->v, 's');
	render(f, 132, 40);
	assert_string_equal(line(f, 5), "Types 3 in 2 workloads  sort FAIL desc");
	assert_non_null(strstr(line(f, 7), "network"));
	tt_view_key(&f->v, '1');
	for (int i = TT_YC_FAILED; i < TT_YC_P50; i++)
		tt_view_key(&f->v, '>');
	tt_view_key(&f->v, 'i');
	render(f, 132, 40);
	assert_string_equal(line(f, 5), "Types 3 in 2 workloads  sort P50 asc");
	assert_non_null(strstr(line(f, 7), "network"));    /* 24us, ties in data order */
	assert_non_null(strstr(line(f, 8), "database"));
	assert_non_null(strstr(line(f, 9), "general"));    /* 30us */
}

/* Every column sorts, both ways; the order is that of the column's values. */
static void test_sort_every_column(void **state)
{
	struct fx *f = *state;
	static const struct { int col; bool desc; uint64_t ids[6]; } cases[] = {
		{ TT_TC_ID, false, { 5, 6, 99, 101, 102, 103 } },
		{ TT_TC_ID, true, { 103, 102, 101, 99, 6, 5 } },
		{ TT_TC_WORKLOAD, false, { 5, 6, 101, 102, 103, 99 } },   /* "bat..." < "server"; ties in data order */
		{ TT_TC_NAME, false, { 103, 5, 6, 101, 102, 99 } },
		{ TT_TC_NAME, true, { 99, 102, 101, 6, 5, 103 } },
		{ TT_TC_TYPE, false, { 103, 5, 6, 101, 102, 99 } },
		{ TT_TC_STATE, false, { 6, 99, 5, 101, 102, 103 } },
		{ TT_TC_AGE, true, { 103, 101, 102, 99, 6, 5 } },
		{ TT_TC_AGE, false, { 5, 6, 99, 102, 101, 103 } },
		{ TT_TC_CPU, true, { 102, 101, 99, 103, 5, 6 } },         /* unknown last */
		{ TT_TC_CPU, false, { 6, 5, 103, 99, 101, 102 } },
		{ TT_TC_RUNQ, true, { 99, 101, 102, 103, 5, 6 } },
		{ TT_TC_BLOCKED, true, { 5, 103, 99, 101, 102, 6 } },
		{ TT_TC_VCSW, true, { 103, 102, 101, 99, 6, 5 } },
		{ TT_TC_IVCSW, false, { 5, 6, 99, 101, 102, 103 } },
		{ TT_TC_RESTARTS, true, { 103, 101, 102, 99, 5, 6 } },
		{ TT_TC_WARN, true, { 102, 101, 103, 99, 5, 6 } },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		f->v.task_sort = cases[c].col;
		f->v.task_desc = cases[c].desc;
		size_t *rows;
		size_t n = tt_task_rows(f->m, &f->v, &rows);
		assert_int_equal(n, 6);
		for (size_t i = 0; i < n; i++)
			if (f->m->tasks[rows[i]].id != cases[c].ids[i])
				fail_msg("column %s %s: row %zu is task %llu, want %llu", tt_task_col_name(cases[c].col),
				         cases[c].desc ? "desc" : "asc", i, (unsigned long long)f->m->tasks[rows[i]].id,
				         (unsigned long long)cases[c].ids[i]);
		free(rows);
	}
	/* And on screen, through the keys: s moves, i inverts. */
	tt_view_key(&f->v, 'g');
	f->v.task_sort = TT_TC_CPU;
	f->v.task_desc = true;
	tt_view_key(&f->v, '<');
	tt_view_key(&f->v, 'i');
	render(f, 80, 24);
	assert_string_equal(line(f, 6), "Tasks 6 of 6  sort AGE asc");
	assert_non_null(strstr(line(f, 8), "evil"));
}

static int count_rows(struct fx *f)
{
	size_t *rows;
	size_t n = tt_task_rows(f->m, &f->v, &rows);
	free(rows);
	return (int)n;
}

static void test_filters(void **state)
{
	struct fx *f = *state;
	tt_view_key(&f->v, '/');
	tt_view_key(&f->v, 'N');
	tt_view_key(&f->v, 'e');
	tt_view_key(&f->v, 't');
	render(f, 80, 24);
	assert_string_equal(line(f, 6), "Tasks 3 of 6  sort CPU% desc  filter \"Net\"");
	assert_true(strncmp(line(f, 23), "Filter (name, type, workload): Net", 34) == 0);
	tt_view_key(&f->v, TT_KEY_ENTER);
	assert_int_equal(count_rows(f), 3);
	/* Text matches the workload too. */
	snprintf(f->v.filter, sizeof(f->v.filter), "SERV");
	assert_int_equal(count_rows(f), 4);
	f->v.filter[0] = '\0';
	tt_view_key(&f->v, 't');
	tt_view_key(&f->v, 'd');
	tt_view_key(&f->v, 'a');
	tt_view_key(&f->v, TT_KEY_ENTER);
	render(f, 80, 24);
	assert_string_equal(line(f, 6), "Tasks 1 of 6  sort CPU% desc  type \"da\"");
	assert_non_null(strstr(line(f, 8), "a_very_long"));
	tt_view_key(&f->v, TT_KEY_ESC);
	assert_int_equal(count_rows(f), 6);
	/* States: S cycles; r keeps running ones. */
	tt_view_key(&f->v, 'S');
	assert_int_equal(count_rows(f), 3);
	tt_view_key(&f->v, 'S');
	assert_int_equal(count_rows(f), 0);
	render(f, 80, 24);
	assert_string_equal(line(f, 6), "Tasks 0 of 6  sort CPU% desc  state succeeded");
	assert_string_equal(line(f, 8), "no task matches the filters (Esc clears them)");
	tt_view_key(&f->v, 'S');
	assert_int_equal(count_rows(f), 1);
	while (f->v.state_filter != TT_SF_ENDED_BADLY)
		tt_view_key(&f->v, 'S');
	assert_int_equal(count_rows(f), 3);   /* failed, panicked, crashed */
	tt_view_key(&f->v, TT_KEY_ESC);
	tt_view_key(&f->v, 'r');
	render(f, 80, 24);
	assert_string_equal(line(f, 6), "Tasks 3 of 6  sort CPU% desc  running only");
	tt_view_key(&f->v, 'r');
	/* Enter on a type: its tasks in its workload. */
	tt_view_key(&f->v, '1');
	render(f, 80, 24);
	tt_view_key(&f->v, 'j');
	render(f, 80, 24);
	tt_view_key(&f->v, TT_KEY_ENTER);
	render(f, 80, 24);
	assert_string_equal(line(f, 6), "Tasks 3 of 6  sort CPU% desc  type network of pid 4242");
	assert_null(strstr(line(f, 11), "a_very_long"));
}

static void test_detail(void **state)
{
	struct fx *f = *state;
	/* Sorted by id: 103 is the last row. */
	f->v.task_sort = TT_TC_ID;
	f->v.task_desc = false;
	render(f, 132, 40);
	tt_view_key(&f->v, 'G');
	render(f, 132, 40);
	tt_view_key(&f->v, TT_KEY_ENTER);
	render(f, 132, 40);
	assert_int_equal(f->v.screen, TT_SCR_DETAIL);
	assert_string_equal(line(f, 5), "Task            103 a_very_long_task_name_that_cannot_fit_in_any_column_at_all");
	assert_string_equal(line(f, 6), "Workload        server:4242");
	assert_string_equal(line(f, 7), "Type            database (id 2)");
	assert_string_equal(line(f, 8), "State           running, age 1m01s, ran 1m01s, thread 4345, incarnations 1");
	assert_true(find_row(f, "  [........................................] busy") > 0);
	assert_true(find_row(f, "busy 1.0%  sched 0.0%  idle 99.0%") > 0);
	int r = find_row(f, "Restarts        3 (seen growing at; this source does not report the delays)");
	assert_true(r > 0);
	assert_string_equal(line(f, r + 1), "                11:59:40  2 restarts");
	assert_string_equal(line(f, r + 2), "                11:59:55  3 restarts");
	/* A collector that reports the kernel's restart events: each with its delay,
	 * at wall-clock times through the sample's two clocks. */
	struct tt_task *t103 = &f->m->tasks[tt_model_find_task(f->m, 4242, 103)];
	f->m->now_ns = 1000 * S_NS;
	t103->restart_delays_known = true;
	t103->restart_delays[0] = (struct tt_restart_delay){ 970 * S_NS, 1, 250 };
	t103->restart_delays[1] = (struct tt_restart_delay){ 990 * S_NS, 2, 0 };
	t103->nrestart_delays = 2;
	render(f, 132, 40);
	r = find_row(f, "Restarts        3 (the last 2 with their delays)");
	assert_true(r > 0);
	assert_string_equal(line(f, r + 1), "                11:59:30  attempt 1, after a delay of 250ms");
	assert_string_equal(line(f, r + 2), "                11:59:50  attempt 2, after no delay");
	t103->nrestart_delays = 0;   /* none yet: back to what was seen */
	t103->panic_message = strdup("lost quorum\r\n");   /* its latest panicked run */
	assert_non_null(t103->panic_message);
	render(f, 132, 40);
	assert_true(find_row(f, "Restarts        3 (seen growing at)") > 0);
	assert_true(find_row(f, "Last panic      lost quorum\\x0d\\x0a") > 0);
	assert_true(find_row(f, "Spawn latency of type database (kernel)") > 0);
	assert_true(find_row(f, "    p99 ################################         1.20ms") > 0);
	assert_true(find_row(f, "Run time of type database (on CPU per task)") > 0);
	/* The selection stays on the task while the data changes under it. */
	tt_view_key(&f->v, TT_KEY_ESC);
	f->m->tasks[2].cpu_pct = 99.9;   /* task 103 */
	f->v.task_sort = TT_TC_CPU;
	f->v.task_desc = true;
	render(f, 132, 40);
	assert_non_null(strstr(line(f, 7), " 103 "));
	assert_int_equal(f->c.style[7 * 132], TT_SELECTED);
	/* A failed task: its return code. */
	size_t i = tt_model_find_task(f->m, 4242, 99);
	tt_view_key(&f->v, '3');
	render(f, 132, 40);
	assert_string_equal(line(f, 5), "Task            103 a_very_long_task_name_that_cannot_fit_in_any_column_at_all");
	f->v.detail = (struct tt_row_key){ 4242, 99 };
	f->v.detail_valid = true;
	render(f, 132, 40);
	assert_true(i != SIZE_MAX);
	assert_true(find_row(f, "Last status     failed, rc 7") > 0);
	assert_true(find_row(f, "kernel totals") > 0);
	/* A panicked one without its message (the ring wrapped), said so. */
	f->v.detail = (struct tt_row_key){ 5151, 5 };
	render(f, 132, 40);
	assert_true(find_row(f, "Task            5 evil\\x1b[2J\\x07name") > 0);
	assert_true(find_row(f, "Panic message   not available (the workload's message ring no longer holds it)") > 0);
	/* ... and with it: escaped, wrapped beside its label rather than cut. */
	struct tt_task *t5 = &f->m->tasks[tt_model_find_task(f->m, 5151, 5)];
	t5->panic_message = strdup("disk \x1b[2Jfull: ");
	assert_non_null(t5->panic_message);
	char *longer = malloc(300);
	assert_non_null(longer);
	snprintf(longer, 300, "%s%0150d", t5->panic_message, 7);
	free(t5->panic_message);
	t5->panic_message = longer;
	render(f, 132, 40);
	r = find_row(f, "Panic message   disk \\x1b[2Jfull: 000");
	assert_true(r > 0);
	assert_int_equal(strlen(line(f, r)), 132);
	assert_true(strncmp(line(f, r + 1), "                0000", 20) == 0);
	assert_true(strstr(line(f, r + 1), "07") != NULL);
	assert_true(find_row(f, "Spawn latency of type general (library)") > 0);
	assert_true(find_row(f, "needs the collector's kernel figures") > 0);
	/* The whole histogram, where the source has it (standalone): one row per
	 * power of two from the first sample to the last, bars to scale. */
	struct tt_hist *lh = &f->m->workloads[1].types[0].lib_latency;
	lh->buckets = calloc(TM_HIST_BUCKETS, sizeof(*lh->buckets));
	assert_non_null(lh->buckets);
	lh->buckets[tm_hist_bucket(30 * US_NS)] = 5;
	lh->buckets[tm_hist_bucket(100 * US_NS)] = 2;
	render(f, 132, 40);
	int h = find_row(f, "Spawn latency of type general (library)");
	assert_true(h > 0);
	assert_string_equal(line(f, h + 1), "    16.3us-32.7us ######################################## 5");
	assert_string_equal(line(f, h + 2), "    32.7us-65.5us                                          0");
	assert_string_equal(line(f, h + 3), "    65.5us-131us  ################                         2");
	/* Gone from the sample. */
	f->v.detail = (struct tt_row_key){ 5151, 999 };
	render(f, 132, 40);
	assert_true(find_row(f, "Not in this sample") > 0);
	assert_printable(f);
}

static void test_crash_screens(void **state)
{
	struct fx *f = *state;
	tt_view_key(&f->v, '4');
	render(f, 80, 24);
	assert_string_equal(line(f, 6), "Crashes 1  from /tmp/t/state/crashes.jsonl");
	assert_string_equal(line(f, 7), "TIME     WORKLOAD  TASK NAME     TYPE     SIGNAL           FAULT      TOP FRAME");
	assert_true(find_row(f, "Time            2025-11-26T11:59:58.000Z") > 0);
	assert_string_equal(line(f, 8), "11:59:58 bat:5151     6 general~ general  SIGSEGV/SEGV_MA~ 0x10       crash_body");
	assert_true(find_row(f, "#0  0x0000000000401136 crash_body+0x16 (/usr/bin/batch)") > 0);
	assert_true(find_row(f, "#1  0x00007f0000001000 (/usr/lib/libtaskmon.so.0)") > 0);
	/* Enter: the crashed task's detail, with its crash. */
	tt_view_key(&f->v, TT_KEY_ENTER);
	render(f, 132, 40);
	assert_int_equal(f->v.screen, TT_SCR_DETAIL);
	assert_string_equal(line(f, 5), "Task            6 general_6");
	assert_true(find_row(f, "Last status     crashed, rc 0") > 0);
	assert_true(find_row(f, "Fault address   0x10") > 0);
	assert_true(find_row(f, "Crash           SIGSEGV SEGV_MAPERR (signal 11, code 1) in thread general_6 (tid 5157)") > 0);
	assert_true(find_row(f, "Busy/Sched/Idle not known") > 0);
	/* Warnings: the list, and Enter on one. */
	tt_view_key(&f->v, '5');
	render(f, 132, 40);
	assert_string_equal(line(f, 6), "WARNING      WORKLOAD            TASK WHAT");
	assert_true(strncmp(line(f, 7), "no-yield     server:4242          102 network_1 has been on CPU", 62) == 0);
	tt_view_key(&f->v, TT_KEY_ENTER);
	render(f, 132, 40);
	assert_string_equal(line(f, 5), "Task            102 network_1");
	assert_true(find_row(f, "Warning         no-yield: network_1 has been on CPU for 1.2 s") > 0);
}

static void test_hostile_names(void **state)
{
	struct fx *f = *state;
	/* Raw control bytes never reach the canvas, even unescaped. */
	assert_int_equal(tt_canvas_resize(&f->c, 20, 2), 0);
	tt_canvas_clear(&f->c);
	assert_int_equal(tt_canvas_put(&f->c, 0, 0, -1, TT_NORMAL, "a\x1b[2Jb\x07\x9b\xff"), 9);
	assert_string_equal(line(f, 0), "a?[2Jb???");
	/* Names in the model: escaped as \xNN, on every screen. */
	struct tt_task *t = &f->m->tasks[0];
	set_name(&t->name, "\x1b]0;owned\x07\r\n\t");
	set_name(&t->type_name, "ty\x7fpe");
	for (int s = '1'; s <= '6'; s++) {
		tt_view_key(&f->v, s);
		render(f, 132, 40);
		assert_printable(f);
	}
	tt_view_key(&f->v, '2');
	f->v.task_sort = TT_TC_ID;
	f->v.task_desc = true;
	render(f, 200, 40);
	int r = find_row(f, "\\x1b]0;owned\\x07\\x0d\\x0a\\x09");
	assert_true(r > 0);
	assert_non_null(strstr(line(f, r), "ty\\x7fpe"));
	/* A name the size of the array, all escapes: cut, never spilling. */
	char big[TT_NAME_CAP];
	memset(big, 0x1b, sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	set_name(&t->name, big);
	render(f, 80, 24);
	assert_columns_aligned(f, 7, 8, 13);
	render(f, 132, 40);
	assert_columns_aligned(f, 6, 7, 12);
}

/* Truncation never breaks columns, at any width; tiny terminals draw what fits. */
static void test_widths(void **state)
{
	struct fx *f = *state;
	/* Figures too large for their columns are shortened, not cut. */
	f->m->tasks[0].k.voluntary_switches = 123456789012ull;
	f->m->tasks[0].restarts = 4000000000u;
	f->m->tasks[0].id = 12345678901234ull;
	f->m->tasks[0].age_ns = 400ull * 86400 * S_NS;
	f->m->workloads[0].types[0].reg.c[TM_C_SUCCEEDED] = 98765432109ull;
	for (int w = 80; w <= 240; w += 7) {
		render(f, w, 30);
		int head = find_row(f, "   ID ") >= 0 ? find_row(f, "   ID ") : find_row(f, " ID ");
		assert_true(head > 0);
		assert_columns_aligned(f, head, head + 1, head + 6);
	}
	render(f, 132, 40);
	int r = find_row(f, "12345678901234");
	assert_true(r > 0);
	assert_non_null(strstr(line(f, r), "400d"));
	assert_non_null(strstr(line(f, r), " 123.5G "));
	assert_non_null(strstr(line(f, r), "4.0G"));
	tt_view_key(&f->v, '1');
	for (int w = 80; w <= 240; w += 9) {
		render(f, w, 30);
		int head = 0;
		while (head < f->c.h && strncmp(line(f, head), "WORKLOAD", 8) != 0)
			head++;
		assert_true(head < f->c.h);
		assert_types_aligned(f, head + 1, head + 3);
	}
	render(f, 132, 40);
	assert_true(find_row(f, " 98.8G ") > 0);
	/* Below 80x24 nothing breaks. */
	for (int s = '1'; s <= '6'; s++) {
		tt_view_key(&f->v, s);
		for (int w = 1; w < 80; w += 13)
			for (int h = 1; h < 24; h += 5)
				render(f, w, h);
	}
}

static void test_no_data_and_status(void **state)
{
	struct fx *f = *state;
	assert_int_equal(tt_canvas_resize(&f->c, 80, 24), 0);
	tt_render(&f->c, NULL, &f->v, NULL);
	assert_string_equal(line(f, 0), "tasktop");
	assert_string_equal(line(f, 1), "waiting for data");
	assert_string_equal(line(f, 3), "Tasks 0 of 0  sort CPU% desc");
	assert_string_equal(line(f, 5), "no tasks");
	for (int s = '1'; s <= '6'; s++) {
		tt_view_key(&f->v, s);
		tt_render(&f->c, NULL, &f->v, NULL);
	}
	/* The collector went away: the last sample stays, the header says so. */
	tt_view_key(&f->v, '2');
	struct tt_render_info ri = { "collector gone: reconnecting to /tmp/t/taskmond.sock", TT_HEALTH_STALE };
	tt_render(&f->c, f->m, &f->v, &ri);
	assert_string_equal(line(f, 4), "collector gone: reconnecting to /tmp/t/taskmond.sock; showing 12:00:00");
	assert_int_equal(f->c.style[4 * 80], TT_BAD);
	assert_non_null(strstr(line(f, 8), "network_1"));
	/* Paused. */
	f->v.paused = true;
	render(f, 80, 24);
	assert_string_equal(line(f, 0), "tasktop  live  12:00:00                                                   PAUSED");
}

static void test_standalone_and_replay(void **state)
{
	struct fx *f = *state;
	f->m->source = TT_SRC_STANDALONE;
	f->m->health = TT_HEALTH_DEGRADED;
	f->m->kernel_figures = false;
	f->m->collector.present = false;
	snprintf(f->m->status, sizeof(f->m->status), "standalone: 2 workloads from /dev/shm");
	snprintf(f->m->kernel_off_reason, sizeof(f->m->kernel_off_reason),
	         "kernel figures off: no collector at /run/taskmon/taskmond.sock");
	render(f, 132, 40);
	assert_string_equal(line(f, 0), "tasktop  standalone  12:00:00");
	assert_non_null(strstr(line(f, 2), "Collector none"));
	assert_string_equal(line(f, 3),
	                    "standalone: 2 workloads from /dev/shm; kernel figures off: no collector at /run/taskmon/taskmond.sock");
	assert_int_equal(f->c.style[3 * 132], TT_WARN);
	/* Library CPU time alone: busy is known, run-queue and blocked are not. */
	struct tt_task *t = &f->m->tasks[3];   /* 99, finished */
	t->runq_known = false;
	t->lib_cpu_ns = 3 * MS_NS;
	f->v.task_sort = TT_TC_ID;
	f->v.task_desc = false;
	render(f, 132, 40);
	int r = find_row(f, " network_x ");
	assert_true(r > 0);
	assert_non_null(strstr(line(f, r), " 20.0     -     - "));
	f->v.detail = (struct tt_row_key){ 4242, 99 };
	f->v.detail_valid = true;
	tt_view_key(&f->v, '3');
	f->v.detail = (struct tt_row_key){ 4242, 99 };
	render(f, 132, 40);
	assert_true(find_row(f, "  [########................................] busy 20.0%  (sched and idle need the kernel's figures)") > 0);
	assert_true(find_row(f, "  library       on CPU 3.00ms (the body's thread CPU time)") > 0);
	tt_view_key(&f->v, '2');
	/* At 80 columns the reason wraps onto a second row rather than being cut. */
	render(f, 80, 24);
	r = find_row(f, "standalone: 2 workloads");
	assert_true(r > 0);
	assert_string_equal(line(f, r), "standalone: 2 workloads from /dev/shm; kernel figures off: no collector at");
	assert_string_equal(line(f, r + 1), "  /run/taskmon/taskmond.sock");
	assert_string_equal(line(f, r + 2), header80[5]);

	f->m->source = TT_SRC_REPLAY;
	f->m->replay = (struct tt_replay_pos){ .index = 2, .count = 10, .first_unix_ns = NOW_UNIX - 2 * S_NS,
	                                       .last_unix_ns = NOW_UNIX + 7 * S_NS, .skipped = 1 };
	snprintf(f->m->status, sizeof(f->m->status), "replay of /var/lib/taskmon/records");
	f->m->kernel_figures = true;
	tt_view_init(&f->v, true);
	render(f, 132, 40);
	assert_true(strncmp(line(f, 0), "tasktop  replay  2025-11-26 12:00:00    ", 40) == 0);
	assert_int_equal(strlen(line(f, 0)), 132);
	assert_string_equal(line(f, 0) + 132 - 11, "record 3/10");
	assert_string_equal(line(f, 3), "replay of /var/lib/taskmon/records; record 3 of 10, 2025-11-26 11:59:58 to "
	                                "2025-11-26 12:00:07; 1 lines skipped");
	assert_string_equal(line(f, 39), "EnterDetail /Filter tType sSort iInvert <-/->Step [/]10 :Jump pPause hHelp qQuit");
	tt_view_key(&f->v, ':');
	render(f, 132, 40);
	assert_true(strncmp(line(f, 39), "Jump to (HH:MM:SS, +30s, -5m, #record):", 39) == 0);
}

static void test_batch(void **state)
{
	struct fx *f = *state;
	char *out = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&out, &len);
	assert_non_null(mf);
	assert_int_equal(tt_render_batch(mf, f->m, &f->v, 160), 0);
	fclose(mf);
	/* Header, every type, every task, the warnings; no trailing blanks; no escapes. */
	assert_non_null(strstr(out, "tasktop  live  12:00:00\n"));
	assert_non_null(strstr(out, "\nTypes 3 in 2 workloads  sort WORKLOAD asc\n"));
	assert_non_null(strstr(out, "\nTasks 6 of 6  sort CPU% desc\n"));
	assert_non_null(strstr(out, "a_very_long_task_name_that_cannot_fit_in_any_column_at_all "));
	assert_non_null(strstr(out, "\nWarnings 1\nno-yield: network_1 has been on CPU"));
	assert_null(strstr(out, " \n"));
	for (size_t i = 0; i < len; i++)
		assert_true(out[i] == '\n' || (out[i] >= 0x20 && out[i] < 0x7f));
	int lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += out[i] == '\n';
	assert_int_equal(lines, 4 + 1 + 5 + 1 + 8 + 1 + 2 + 1);
	free(out);
}

/* A snapshot recorded from taskmond (a workload ran network=3 database=2 and
 * held; another workload and the unused types left out), through the
 * snapshot parser: what the screens show of it. */
static const char recorded[] =
	"{\"version\":1,\"now_ns\":10346667130228,\"now_unix_ns\":1795698998888722892,\"filtered\":false,\"collector\":"
	"{\"pid\":13933,\"mode\":\"tp_btf\",\"uptime_ns\":3451312970,\"events\":0,\"lost\":0,\"malformed\":0,\"unattributed\""
	":0,\"spawn_missed\":0,\"watched\":1,\"registrations\":1,\"registrations_refused\":0,\"snapshots\":1,\"clients\":"
	"1,\"retention_s\":300.0,\"max_tasks\":4096,\"max_tasks_total\":65536,\"max_workloads\":1024,\"tasks_kept\":5,\""
	"tasks_dropped\":0,\"tasks_evicted\":0,\"tasks_expired\":0,\"workloads_live\":1,\"workloads_dead\":0,\"workload"
	"s_refused\":0,\"workloads_dropped\":0,\"segments_removed\":0,\"hist_bytes\":0,\"hist_refused\":0,\"memory_byte"
	"s\":755192,\"socket\":\"/tmp/ttrec/s/sock\",\"state_dir\":\"/tmp/ttrec/state\"},\"machine\":{\"workloads_seen\":1"
	",\"workloads_live\":1,\"workloads_gone\":0,\"registry\":{\"spawned\":5,\"running\":1,\"succeeded\":5,\"failed\":0,"
	"\"panicked\":0,\"cancelled\":0,\"timed_out\":0,\"restarts\":0,\"rejected\":0,\"crashed\":0,\"escalations\":0},\"ker"
	"nel\":{\"tasks_started\":0,\"spawns_seen\":0,\"tasks_ended\":0,\"tasks_partial\":0,\"spawn_latency\":{\"count\":0"
	",\"mean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0,\"max_ns\":0},\"spawn_runq_ns\":0,\"run_time\":{\"count\":0,\"m"
	"ean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0,\"max_ns\":0},\"oncpu_ns\":0,\"runq_ns\":0,\"blocked_ns\":0,\"volu"
	"ntary_switches\":0,\"involuntary_switches\":0,\"migrations\":0,\"histograms_complete\":true}},\"types\":[{\"na"
	"me\":\"network\",\"registry\":{\"spawned\":3,\"running\":0,\"succeeded\":3,\"failed\":0,\"panicked\":0,\"cancelled\":"
	"0,\"timed_out\":0,\"restarts\":0,\"rejected\":0,\"crashed\":0,\"escalations\":0},\"kernel\":{\"tasks_started\":0,\""
	"spawns_seen\":0,\"tasks_ended\":0,\"tasks_partial\":0,\"spawn_latency\":{\"count\":0,\"mean_ns\":0,\"p50_ns\":0,\""
	"p95_ns\":0,\"p99_ns\":0,\"max_ns\":0},\"spawn_runq_ns\":0,\"run_time\":{\"count\":0,\"mean_ns\":0,\"p50_ns\":0,\"p95"
	"_ns\":0,\"p99_ns\":0,\"max_ns\":0},\"oncpu_ns\":0,\"runq_ns\":0,\"blocked_ns\":0,\"voluntary_switches\":0,\"involu"
	"ntary_switches\":0,\"migrations\":0,\"histograms_complete\":true}},{\"name\":\"database\",\"registry\":{\"spawne"
	"d\":2,\"running\":0,\"succeeded\":2,\"failed\":0,\"panicked\":0,\"cancelled\":0,\"timed_out\":0,\"restarts\":0,\"rej"
	"ected\":0,\"crashed\":0,\"escalations\":0},\"kernel\":{\"tasks_started\":0,\"spawns_seen\":0,\"tasks_ended\":0,\"t"
	"asks_partial\":0,\"spawn_latency\":{\"count\":0,\"mean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0,\"max_ns\":0},"
	"\"spawn_runq_ns\":0,\"run_time\":{\"count\":0,\"mean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0,\"max_ns\":0},\"on"
	"cpu_ns\":0,\"runq_ns\":0,\"blocked_ns\":0,\"voluntary_switches\":0,\"involuntary_switches\":0,\"migrations\":0,"
	"\"histograms_complete\":true}}],\"workloads\":[{\"pid\":14006,\"comm\":\"workload\",\"uid\":0,\"start_ticks\":1034"
	"488,\"alive\":true,\"has_registry\":true,\"exited\":false,\"exit\":null,\"segment_removed\":false,\"seen_ns\":10"
	"345214944108,\"gone_ns\":0,\"crashes\":0,\"kills\":0,\"restarts\":0,\"giveups\":0,\"invalid_records\":0,\"registr"
	"y_errors\":0,\"tasks_kept\":5,\"tasks_dropped\":0,\"untyped_events\":0,\"registry\":{\"spawned\":5,\"running\":0,"
	"\"succeeded\":5,\"failed\":0,\"panicked\":0,\"cancelled\":0,\"timed_out\":0,\"restarts\":0,\"rejected\":0,\"crashed"
	"\":0,\"escalations\":0,\"spawn_latency\":{\"p50_ns\":30146560,\"p95_ns\":30460614,\"p99_ns\":30460614,\"max_ns\":"
	"30460614},\"tracked_records\":5,\"tracker_bytes\":600},\"kernel\":{\"tasks_started\":0,\"spawns_seen\":0,\"task"
	"s_ended\":0,\"tasks_partial\":0,\"spawn_latency\":{\"count\":0,\"mean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0"
	",\"max_ns\":0},\"spawn_runq_ns\":0,\"run_time\":{\"count\":0,\"mean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0,\"m"
	"ax_ns\":0},\"oncpu_ns\":0,\"runq_ns\":0,\"blocked_ns\":0,\"voluntary_switches\":0,\"involuntary_switches\":0,\"m"
	"igrations\":0,\"histograms_complete\":true},\"types\":[{\"id\":1,\"name\":\"network\",\"registry\":{\"spawned\":3,\""
	"running\":0,\"succeeded\":3,\"failed\":0,\"panicked\":0,\"cancelled\":0,\"timed_out\":0,\"restarts\":0,\"rejected\""
	":0,\"crashed\":0,\"escalations\":0,\"spawn_latency\":{\"count\":3,\"p50_ns\":21233664,\"p95_ns\":30146560,\"p99_n"
	"s\":30146560,\"max_ns\":30209993}},\"kernel\":{\"tasks_started\":0,\"spawns_seen\":0,\"tasks_ended\":0,\"tasks_p"
	"artial\":0,\"spawn_latency\":{\"count\":0,\"mean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0,\"max_ns\":0},\"spawn"
	"_runq_ns\":0,\"run_time\":{\"count\":0,\"mean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0,\"max_ns\":0},\"oncpu_ns"
	"\":0,\"runq_ns\":0,\"blocked_ns\":0,\"voluntary_switches\":0,\"involuntary_switches\":0,\"migrations\":0,\"histo"
	"grams_complete\":true}},{\"id\":2,\"name\":\"database\",\"registry\":{\"spawned\":2,\"running\":0,\"succeeded\":2,\""
	"failed\":0,\"panicked\":0,\"cancelled\":0,\"timed_out\":0,\"restarts\":0,\"rejected\":0,\"crashed\":0,\"escalation"
	"s\":0,\"spawn_latency\":{\"count\":2,\"p50_ns\":30146560,\"p95_ns\":30460614,\"p99_ns\":30460614,\"max_ns\":30460"
	"614}},\"kernel\":{\"tasks_started\":0,\"spawns_seen\":0,\"tasks_ended\":0,\"tasks_partial\":0,\"spawn_latency\":"
	"{\"count\":0,\"mean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0,\"max_ns\":0},\"spawn_runq_ns\":0,\"run_time\":{\"c"
	"ount\":0,\"mean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0,\"max_ns\":0},\"oncpu_ns\":0,\"runq_ns\":0,\"blocked_n"
	"s\":0,\"voluntary_switches\":0,\"involuntary_switches\":0,\"migrations\":0,\"histograms_complete\":true}}]}],"
	"\"tasks\":[{\"pid\":14006,\"id\":5,\"name\":\"database_1\",\"type\":2,\"type_name\":\"database\",\"status\":\"succeeded"
	"\",\"rc\":0,\"restarts\":0,\"tid\":14013,\"spawn_ns\":10344942817684,\"start_ns\":10344973278298,\"end_ns\":10344"
	"976321483,\"finished\":true,\"kernel\":{\"started\":false,\"spawn_latency_ns\":null,\"spawn_runq_ns\":0,\"ended"
	"\":false,\"oncpu_ns\":0,\"runq_ns\":0,\"blocked_ns\":0,\"voluntary_switches\":0,\"involuntary_switches\":0,\"mig"
	"rations\":0,\"incarnations\":0,\"exited\":false,\"crashed\":false,\"partial\":false}},{\"pid\":14006,\"id\":4,\"na"
	"me\":\"database_0\",\"type\":2,\"type_name\":\"database\",\"status\":\"succeeded\",\"rc\":0,\"restarts\":0,\"tid\":1401"
	"2,\"spawn_ns\":10344942799227,\"start_ns\":10344973133500,\"end_ns\":10344976363430,\"finished\":true,\"kerne"
	"l\":{\"started\":false,\"spawn_latency_ns\":null,\"spawn_runq_ns\":0,\"ended\":false,\"oncpu_ns\":0,\"runq_ns\":0"
	",\"blocked_ns\":0,\"voluntary_switches\":0,\"involuntary_switches\":0,\"migrations\":0,\"incarnations\":0,\"exi"
	"ted\":false,\"crashed\":false,\"partial\":false}},{\"pid\":14006,\"id\":3,\"name\":\"network_2\",\"type\":1,\"type_n"
	"ame\":\"network\",\"status\":\"succeeded\",\"rc\":0,\"restarts\":0,\"tid\":14011,\"spawn_ns\":10344942780421,\"start"
	"_ns\":10344972990414,\"end_ns\":10344975164442,\"finished\":true,\"kernel\":{\"started\":false,\"spawn_latency"
	"_ns\":null,\"spawn_runq_ns\":0,\"ended\":false,\"oncpu_ns\":0,\"runq_ns\":0,\"blocked_ns\":0,\"voluntary_switche"
	"s\":0,\"involuntary_switches\":0,\"migrations\":0,\"incarnations\":0,\"exited\":false,\"crashed\":false,\"partia"
	"l\":false}},{\"pid\":14006,\"id\":2,\"name\":\"network_1\",\"type\":1,\"type_name\":\"network\",\"status\":\"succeeded"
	"\",\"rc\":0,\"restarts\":0,\"tid\":14010,\"spawn_ns\":10344942753034,\"start_ns\":10344964079683,\"end_ns\":10344"
	"966815464,\"finished\":true,\"kernel\":{\"started\":false,\"spawn_latency_ns\":null,\"spawn_runq_ns\":0,\"ended"
	"\":false,\"oncpu_ns\":0,\"runq_ns\":0,\"blocked_ns\":0,\"voluntary_switches\":0,\"involuntary_switches\":0,\"mig"
	"rations\":0,\"incarnations\":0,\"exited\":false,\"crashed\":false,\"partial\":false}},{\"pid\":14006,\"id\":1,\"na"
	"me\":\"network_0\",\"type\":1,\"type_name\":\"network\",\"status\":\"succeeded\",\"rc\":0,\"restarts\":0,\"tid\":14009,"
	"\"spawn_ns\":10344942624537,\"start_ns\":10344942882141,\"end_ns\":10344945100287,\"finished\":true,\"kernel\""
	":{\"started\":false,\"spawn_latency_ns\":null,\"spawn_runq_ns\":0,\"ended\":false,\"oncpu_ns\":0,\"runq_ns\":0,\""
	"blocked_ns\":0,\"voluntary_switches\":0,\"involuntary_switches\":0,\"migrations\":0,\"incarnations\":0,\"exite"
	"d\":false,\"crashed\":false,\"partial\":false}}],\"tasks_omitted\":0}";

static void test_recorded_snapshot(void **state)
{
	struct fx *f = *state;
	struct tt_model *m = tt_model_new(TT_SRC_LIVE);
	char err[256];
	assert_non_null(m);
	assert_int_equal(tt_snapshot_parse(m, recorded, strlen(recorded), err, sizeof(err)), 0);
	assert_int_equal(tt_model_diff(NULL, m), 0);
	tt_model_free(f->m);
	f->m = m;
	tt_view_key(&f->v, '1');
	render(f, 132, 40);
	/* Spawned and succeeded as recorded; no rates on a first sample. */
	assert_string_equal(line(f, 6), "workload:14006   network                        0        3       -       3      0      0      0      0      0  21.2ms  30.1ms      -");
	assert_string_equal(line(f, 7), "workload:14006   database                       0        2       -       2      0      0      0      0      0  30.1ms  30.4ms      -");
	tt_view_key(&f->v, '2');
	f->v.task_sort = TT_TC_NAME;
	f->v.task_desc = false;
	render(f, 132, 40);
	assert_string_equal(line(f, 4), "Tasks 5 of 5  sort NAME asc");
	assert_non_null(strstr(line(f, 6), " database_0 "));
	assert_non_null(strstr(line(f, 10), " network_2 "));
	assert_non_null(strstr(line(f, 10), " succeeded "));
	assert_columns_aligned(f, 5, 6, 10);
}

/* Figures always fit their widths; boundaries round down, never past a width. */
static void test_formats(void **state)
{
	(void)state;
	static const struct { uint64_t ns; const char *s; } durs[] = {
		{ 0, "0ns" }, { 999, "999ns" }, { 1000, "1.00us" }, { 9999, "9.99us" }, { 10000, "10.0us" },
		{ 999999, "999us" }, { 1000000, "1.00ms" }, { 999999999, "999ms" }, { 59999999999ull, "59.9s" },
		{ 60 * S_NS, "1m00s" }, { 3599 * S_NS, "59m59s" }, { 3600 * S_NS, "1h00m" }, { 86400 * S_NS, "1d00h" },
		{ 100 * 86400 * S_NS, "100d" }, { UINT64_MAX, "99999d" },
	};
	char buf[64];
	for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
		tt_fmt_dur(buf, sizeof(buf), durs[i].ns);
		assert_string_equal(buf, durs[i].s);
		assert_true(strlen(buf) <= 6);
	}
	static const struct { uint64_t v; int w; const char *s; } counts[] = {
		{ 0, 3, "0" }, { 999, 3, "999" }, { 1000, 3, "1k" }, { 1000, 4, "1000" }, { 1500, 3, "2k" }, { 12345, 5, "12345" },
		{ 12345, 4, "12k" }, { 123456, 5, "123k" }, { 999999, 4, "1.0M" }, { UINT64_MAX, 5, "18.4E" },
		{ UINT64_MAX, 3, "18E" },
	};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		tt_fmt_count(buf, sizeof(buf), counts[i].v, counts[i].w);
		assert_string_equal(buf, counts[i].s);
		assert_true((int)strlen(buf) <= counts[i].w);
	}
	tt_fmt_pct(buf, sizeof(buf), 99.94, true);
	assert_string_equal(buf, "99.9");
	tt_fmt_pct(buf, sizeof(buf), 99.96, true);
	assert_string_equal(buf, "100");
	tt_fmt_pct(buf, sizeof(buf), 1e300, true);
	assert_string_equal(buf, "99999");
	tt_fmt_pct(buf, sizeof(buf), -1, true);
	assert_string_equal(buf, "-");
	tt_fmt_rate(buf, sizeof(buf), NAN, true, 6);
	assert_string_equal(buf, "-");
	tt_fmt_rate(buf, sizeof(buf), 1234567.0, true, 6);
	assert_string_equal(buf, "1.2M");
	tt_fmt_bytes(buf, sizeof(buf), 12u << 20);
	assert_string_equal(buf, "12.0M");
	tt_fmt_warn(buf, sizeof(buf), TT_W_NO_YIELD | TT_W_LEAK | TT_W_LOST_EVENTS);
	assert_string_equal(buf, "YLE");
	/* Layout: the least important columns go first, never the kept one. */
	static const struct tt_col cols[3] = { { "A", 5, 5, 10, false }, { "B", 5, 5, 1, false }, { "C", 5, 9, 5, false } };
	int w[3];
	tt_layout(cols, 3, 11, -1, 2, w);
	assert_true(w[0] == 5 && w[1] == 0 && w[2] == 5);
	tt_layout(cols, 3, 11, 1, 2, w);
	assert_true(w[0] == 0 && w[1] == 5 && w[2] == 5);
	tt_layout(cols, 3, 40, -1, 2, w);
	assert_true(w[0] == 5 && w[1] == 5 && w[2] == 18);   /* grows to twice its preferred width */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tasks_80x24, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tasks_132x40, setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_80_and_132, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sort_every_column, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_screens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_widths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_data_and_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standalone_and_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorded_snapshot, setup, teardown),
		cmocka_unit_test(test_formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
