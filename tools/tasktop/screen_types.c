/* The Types screen: one row per task type per workload. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "screen.h"

static const struct tt_col type_cols[TT_YC_COUNT] = {
	[TT_YC_WORKLOAD]  = { "WORKLOAD", 8, 16, 90, false },
	[TT_YC_TYPE]      = { "TYPE", 8, 14, 99, false },
	[TT_YC_RUNNING]   = { "RUN", 4, 6, 95, true },
	[TT_YC_SPAWNED]   = { "SPAWNED", 7, 8, 40, true },
	[TT_YC_RATE]      = { "SPWN/S", 6, 7, 88, true },
	[TT_YC_SUCCEEDED] = { "OK", 5, 7, 80, true },
	[TT_YC_FAILED]    = { "FAIL", 4, 6, 79, true },
	[TT_YC_PANICKED]  = { "PANIC", 5, 6, 78, true },
	[TT_YC_CANCELLED] = { "CNCL", 4, 6, 60, true },
	[TT_YC_TIMED_OUT] = { "TMOUT", 5, 6, 61, true },
	[TT_YC_RESTARTS]  = { "RST", 4, 6, 50, true },
	[TT_YC_P50]       = { "P50", 6, 7, 70, true },
	[TT_YC_P99]       = { "P99", 6, 7, 71, true },
	[TT_YC_CPU]       = { "CPU%", 5, 6, 75, true },
};

/* The spawn latency a type row shows: the kernel's when there is one. */
static const struct tt_hist *latency(const struct tt_type *t)
{
	if (t->k.present && t->k.spawn_latency.present && t->k.spawn_latency.count)
		return &t->k.spawn_latency;
	return &t->lib_latency;
}

static uint64_t counter_of(const struct tt_type *t, int col)
{
	switch (col) {
	case TT_YC_RUNNING: return t->reg.c[TM_C_RUNNING];
	case TT_YC_SPAWNED: return t->reg.c[TM_C_SPAWNED];
	case TT_YC_SUCCEEDED: return t->reg.c[TM_C_SUCCEEDED];
	case TT_YC_FAILED: return t->reg.c[TM_C_FAILED];
	case TT_YC_PANICKED: return t->reg.c[TM_C_PANICKED];
	case TT_YC_CANCELLED: return t->reg.c[TM_C_CANCELLED];
	case TT_YC_TIMED_OUT: return t->reg.c[TM_C_TIMED_OUT];
	case TT_YC_RESTARTS: return t->reg.c[TM_C_RESTARTS];
	default: return 0;
	}
}

struct sort_ctx {
	const struct tt_model *m;
	int col;
	bool desc;
};

static int cmp_dbl(double a, double b)
{
	return a < b ? -1 : a > b;
}

static int cmp_col(const struct sort_ctx *cx, const struct tt_type_ref *ra, const struct tt_type_ref *rb)
{
	const struct tt_workload *wa = &cx->m->workloads[ra->w], *wb = &cx->m->workloads[rb->w];
	const struct tt_type *a = &wa->types[ra->t], *b = &wb->types[rb->t];
	switch (cx->col) {
	case TT_YC_WORKLOAD: {
		int r = strcmp(wa->comm.s, wb->comm.s);
		return r ? r : (wa->pid > wb->pid) - (wa->pid < wb->pid);
	}
	case TT_YC_TYPE: return strcmp(a->name.s, b->name.s);
	case TT_YC_RATE: return cmp_dbl(a->rates_valid ? a->spawned_per_s : -1, b->rates_valid ? b->spawned_per_s : -1);
	case TT_YC_CPU: return cmp_dbl(a->rates_valid ? a->cpu_pct : -1, b->rates_valid ? b->cpu_pct : -1);
	case TT_YC_P50: return cmp_dbl((double)latency(a)->p50_ns, (double)latency(b)->p50_ns);
	case TT_YC_P99: return cmp_dbl((double)latency(a)->p99_ns, (double)latency(b)->p99_ns);
	default: {
		uint64_t x = counter_of(a, cx->col), y = counter_of(b, cx->col);
		return x < y ? -1 : x > y;
	}
	}
}

static int cmp_rows(const void *pa, const void *pb, void *arg)
{
	const struct sort_ctx *cx = arg;
	const struct tt_type_ref *a = pa, *b = pb;
	int r = cmp_col(cx, a, b);
	if (cx->desc)
		r = -r;
	if (r)
		return r;
	/* Ties: workload order of the data, then type id. */
	if (a->w != b->w)
		return a->w < b->w ? -1 : 1;
	return (a->t > b->t) - (a->t < b->t);
}

static bool passes(const struct tt_view *v, const struct tt_workload *w, const struct tt_type *t)
{
	if (v->type_filter[0] && !strcasestr(t->name.s, v->type_filter))
		return false;
	if (v->filter[0] && !strcasestr(t->name.s, v->filter) && !strcasestr(w->comm.s, v->filter))
		return false;
	/* A type never used would only add an empty row. */
	return t->reg.c[TM_C_SPAWNED] || t->reg.c[TM_C_RUNNING] || (t->k.present && t->k.tasks_started);
}

size_t tt_type_rows(const struct tt_model *m, const struct tt_view *v, struct tt_type_ref **out)
{
	size_t total = 0, n = 0;
	*out = NULL;
	for (size_t w = 0; m && w < m->nworkloads; w++)
		total += m->workloads[w].ntypes;
	if (total == 0)
		return 0;
	struct tt_type_ref *rows = malloc(total * sizeof(*rows));
	if (!rows)
		return 0;
	for (size_t w = 0; w < m->nworkloads; w++)
		for (size_t t = 0; t < m->workloads[w].ntypes; t++)
			if (passes(v, &m->workloads[w], &m->workloads[w].types[t]))
				rows[n++] = (struct tt_type_ref){ w, t };
	struct sort_ctx cx = { m, v->type_sort, v->type_desc };
	qsort_r(rows, n, sizeof(*rows), cmp_rows, &cx);
	*out = rows;
	return n;
}

static void cell_text(char *buf, size_t cap, const struct tt_model *m, const struct tt_workload *w,
                      const struct tt_type *t, int col, int width)
{
	switch (col) {
	case TT_YC_WORKLOAD: tt_fmt_workload(buf, cap, m, w->pid, width); break;
	case TT_YC_TYPE:
		if (t->name.s[0])
			tt_disp(buf, cap, t->name.s, t->name.flags);
		else
			snprintf(buf, cap, "#%d", t->id);
		break;
	case TT_YC_RATE: tt_fmt_rate(buf, cap, t->spawned_per_s, t->rates_valid, width); break;
	case TT_YC_CPU: tt_fmt_pct(buf, cap, t->cpu_pct, t->rates_valid); break;
	case TT_YC_P50: case TT_YC_P99: {
		const struct tt_hist *h = latency(t);
		if (h->present && h->count)
			tt_fmt_dur(buf, cap, col == TT_YC_P50 ? h->p50_ns : h->p99_ns);
		else
			snprintf(buf, cap, "-");
		break;
	}
	default: tt_fmt_count(buf, cap, counter_of(t, col), width);
	}
}

static enum tt_style cell_style(const struct tt_workload *w, const struct tt_type *t, int col)
{
	if (col == TT_YC_WORKLOAD && !w->alive)
		return TT_DIM;   /* gone: its figures are final */
	if ((col == TT_YC_FAILED || col == TT_YC_PANICKED || col == TT_YC_TIMED_OUT) && counter_of(t, col))
		return TT_BAD;
	if (col == TT_YC_RUNNING && (t->warnings & TT_W_LEAK))
		return TT_WARN;
	if (col == TT_YC_RESTARTS && (t->warnings & TT_W_RESTART_LOOP))
		return TT_WARN;
	return TT_NORMAL;
}

static void draw_row(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_type_ref *r,
                     const int *widths, bool selected)
{
	const struct tt_workload *w = &m->workloads[r->w];
	const struct tt_type *t = &w->types[r->t];
	char buf[TT_NAME_CAP * 4 + 32];
	int x = 0;
	for (int col = 0; col < TT_YC_COUNT; col++) {
		if (!widths[col])
			continue;
		cell_text(buf, sizeof(buf), m, w, t, col, widths[col]);
		x = tt_draw_cell(c, y, x, &type_cols[col], widths[col], selected ? TT_SELECTED : cell_style(w, t, col), buf);
	}
	if (selected)
		tt_canvas_style(c, y, 0, -1, TT_SELECTED);
}

static void info_line(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v, size_t n)
{
	char line[256];
	size_t len = (size_t)snprintf(line, sizeof(line), "Types %zu in %zu workloads  sort %s %s", n,
	                              m ? m->nworkloads : 0, tt_type_col_name(v->type_sort),
	                              v->type_desc ? "desc" : "asc");
	if (v->filter[0])
		len += (size_t)snprintf(line + len, sizeof(line) - len, "  filter \"%s\"", v->filter);
	if (v->type_filter[0])
		snprintf(line + len, sizeof(line) - len, "  type \"%s\"", v->type_filter);
	tt_canvas_put(c, y, 0, -1, TT_TITLE, line);
}

void tt_types_layout(const struct tt_view *v, int width, int widths[TT_YC_COUNT])
{
	tt_layout(type_cols, TT_YC_COUNT, width, v->type_sort, TT_YC_TYPE, widths);
}

void tt_screen_types(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v)
{
	struct tt_type_ref *rows;
	size_t n = tt_type_rows(m, v, &rows);
	int widths[TT_YC_COUNT];
	tt_types_layout(v, a.w, widths);
	info_line(c, a.y, m, v, n);
	tt_draw_colheads(c, a.y + 1, a.x, type_cols, TT_YC_COUNT, widths, v->type_sort, v->type_desc);
	int page = a.h - 2;
	struct tt_row_key *keys = n ? malloc(n * sizeof(*keys)) : NULL;
	for (size_t i = 0; keys && i < n; i++)
		keys[i] = (struct tt_row_key){ m->workloads[rows[i].w].pid,
		                               (uint64_t)(int64_t)m->workloads[rows[i].w].types[rows[i].t].id };
	tt_view_set_rows(v, TT_SCR_TYPES, keys ? (int)n : 0, page, keys);
	const struct tt_list_pos *p = &v->pos[TT_SCR_TYPES];
	for (int r = 0; r < page && p->top + r < p->rows; r++)
		draw_row(c, a.y + 2 + r, m, &rows[p->top + r], widths, p->top + r == p->sel);
	if (n == 0)
		tt_canvas_put(c, a.y + 2, 0, -1, TT_DIM, "no task types");
	free(keys);
	free(rows);
}

int tt_types_batch(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v)
{
	struct tt_type_ref *rows;
	size_t n = tt_type_rows(m, v, &rows);
	int widths[TT_YC_COUNT];
	tt_types_layout(v, c->w, widths);
	info_line(c, y++, m, v, n);
	tt_draw_colheads(c, y++, 0, type_cols, TT_YC_COUNT, widths, v->type_sort, v->type_desc);
	for (size_t i = 0; i < n && y < c->h; i++)
		draw_row(c, y++, m, &rows[i], widths, false);
	free(rows);
	return y;
}
