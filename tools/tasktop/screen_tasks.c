/* The Tasks screen: one row per task, filtered and sorted on any column. */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "screen.h"

static const struct tt_col task_cols[TT_TC_COUNT] = {
	[TT_TC_ID]       = { "ID", 5, 7, 100, true },
	[TT_TC_WORKLOAD] = { "WORKLOAD", 8, 16, 60, false },
	[TT_TC_NAME]     = { "NAME", 12, 24, 99, false },
	[TT_TC_TYPE]     = { "TYPE", 8, 12, 90, false },
	[TT_TC_STATE]    = { "STATE", 9, 9, 95, false },
	[TT_TC_AGE]      = { "AGE", 6, 6, 70, true },
	[TT_TC_CPU]      = { "CPU%", 5, 5, 80, true },
	[TT_TC_RUNQ]     = { "RUNQ%", 5, 5, 55, true },
	[TT_TC_BLOCKED]  = { "BLK%", 5, 5, 40, true },
	[TT_TC_VCSW]     = { "VCSW", 5, 7, 20, true },
	[TT_TC_IVCSW]    = { "IVCSW", 5, 7, 19, true },
	[TT_TC_RESTARTS] = { "RST", 3, 4, 30, true },
	[TT_TC_WARN]     = { "WARN", 4, 5, 50, false },
};

static const char *workload_comm(const struct tt_model *m, const struct tt_task *t)
{
	return t->widx < m->nworkloads ? m->workloads[t->widx].comm.s : "";
}

/* Case-insensitive substring; an empty needle matches. */
static bool contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	if (n == 0)
		return true;
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

static bool state_passes(const struct tt_task *t, int sf)
{
	switch (sf) {
	case TT_SF_ALL: return true;
	case TT_SF_RUNNING: return t->state == TT_ST_RUNNING;
	case TT_SF_SUCCEEDED: return t->state == TT_ST_SUCCEEDED;
	case TT_SF_FAILED: return t->state == TT_ST_FAILED;
	case TT_SF_PANICKED: return t->state == TT_ST_PANICKED;
	case TT_SF_CANCELLED: return t->state == TT_ST_CANCELLED;
	case TT_SF_TIMED_OUT: return t->state == TT_ST_TIMED_OUT;
	case TT_SF_CRASHED: return t->state == TT_ST_CRASHED;
	case TT_SF_ENDED_BADLY:
		return t->state == TT_ST_FAILED || t->state == TT_ST_PANICKED || t->state == TT_ST_TIMED_OUT ||
		       t->state == TT_ST_CRASHED;
	default: return true;
	}
}

static bool passes(const struct tt_model *m, const struct tt_view *v, const struct tt_task *t)
{
	if (v->running_only && t->state != TT_ST_RUNNING)
		return false;
	if (!state_passes(t, v->state_filter))
		return false;
	if (v->type_key_on && (t->pid != v->type_key.pid || (uint64_t)(int64_t)t->type != v->type_key.id))
		return false;
	if (v->type_filter[0] && !contains(t->type_name.s, v->type_filter))
		return false;
	if (v->filter[0] && !contains(t->name.s, v->filter) && !contains(t->type_name.s, v->filter) &&
	    !contains(workload_comm(m, t), v->filter))
		return false;
	return true;
}

struct sort_ctx {
	const struct tt_model *m;
	int col;
	bool desc;
};

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_dbl(double a, double b)
{
	return a < b ? -1 : a > b;
}

/* Unknown percentages sort below every known one. */
static double pct_key(const struct tt_task *t, int col)
{
	if (t->pct_basis == TT_PCT_NONE || (col != TT_TC_CPU && !t->runq_known))
		return -1;
	return col == TT_TC_CPU ? t->cpu_pct : col == TT_TC_RUNQ ? t->runq_pct : t->blocked_pct;
}

static int64_t switches_key(const struct tt_task *t, bool vol)
{
	uint64_t v, iv;
	if (!tt_task_switches(t, &v, &iv))
		return -1;
	return (int64_t)(vol ? v : iv);
}

static int cmp_col(const struct sort_ctx *cx, const struct tt_task *a, const struct tt_task *b)
{
	switch (cx->col) {
	case TT_TC_ID: return cmp_u64(a->id, b->id);
	case TT_TC_WORKLOAD: {
		int r = strcmp(workload_comm(cx->m, a), workload_comm(cx->m, b));
		return r ? r : (a->pid > b->pid) - (a->pid < b->pid);
	}
	case TT_TC_NAME: return strcmp(a->name.s, b->name.s);
	case TT_TC_TYPE: return strcmp(a->type_name.s, b->type_name.s);
	case TT_TC_STATE: return strcmp(tt_state_name(a->state), tt_state_name(b->state));
	case TT_TC_AGE: return cmp_u64(a->age_ns, b->age_ns);
	case TT_TC_CPU: case TT_TC_RUNQ: case TT_TC_BLOCKED:
		return cmp_dbl(pct_key(a, cx->col), pct_key(b, cx->col));
	case TT_TC_VCSW: case TT_TC_IVCSW: {
		int64_t x = switches_key(a, cx->col == TT_TC_VCSW), y = switches_key(b, cx->col == TT_TC_VCSW);
		return (x > y) - (x < y);
	}
	case TT_TC_RESTARTS: return cmp_u64(a->restarts, b->restarts);
	case TT_TC_WARN: return cmp_u64(a->warnings, b->warnings);
	default: return 0;
	}
}

static int cmp_rows(const void *pa, const void *pb, void *arg)
{
	const struct sort_ctx *cx = arg;
	const struct tt_task *a = &cx->m->tasks[*(const size_t *)pa], *b = &cx->m->tasks[*(const size_t *)pb];
	int r = cmp_col(cx, a, b);
	if (cx->desc)
		r = -r;
	if (r)
		return r;
	/* Ties: the order of the data (running first, newest first), stable across refreshes. */
	return cmp_u64(*(const size_t *)pa, *(const size_t *)pb);
}

size_t tt_task_rows(const struct tt_model *m, const struct tt_view *v, size_t **out)
{
	*out = NULL;
	if (!m || m->ntasks == 0)
		return 0;
	size_t *rows = malloc(m->ntasks * sizeof(*rows)), n = 0;
	if (!rows)
		return 0;
	for (size_t i = 0; i < m->ntasks; i++)
		if (passes(m, v, &m->tasks[i]))
			rows[n++] = i;
	struct sort_ctx cx = { m, v->task_sort, v->task_desc };
	qsort_r(rows, n, sizeof(*rows), cmp_rows, &cx);
	*out = rows;
	return n;
}

static enum tt_style state_style(const struct tt_task *t)
{
	switch (t->state) {
	case TT_ST_FAILED: case TT_ST_PANICKED: case TT_ST_TIMED_OUT: case TT_ST_CRASHED: return TT_BAD;
	case TT_ST_SUCCEEDED: return TT_GOOD;
	case TT_ST_CANCELLED: case TT_ST_UNKNOWN: return TT_DIM;
	default: return TT_NORMAL;
	}
}

/* The text of one cell. */
static void cell_text(char *buf, size_t cap, const struct tt_model *m, const struct tt_task *t, int col, int width)
{
	uint64_t vol, invol;
	bool pct = t->pct_basis != TT_PCT_NONE;
	switch (col) {
	case TT_TC_ID: snprintf(buf, cap, "%" PRIu64, t->id); break;
	case TT_TC_WORKLOAD: tt_fmt_workload(buf, cap, m, t->pid, width); break;
	case TT_TC_NAME: tt_disp(buf, cap, t->name.s, t->name.flags); break;
	case TT_TC_TYPE:
		if (t->type_name.s[0])
			tt_disp(buf, cap, t->type_name.s, t->type_name.flags);
		else
			snprintf(buf, cap, t->type < 0 ? "?" : "#%d", t->type);
		break;
	case TT_TC_STATE: snprintf(buf, cap, "%s", t->pending ? "pending" : tt_state_name(t->state)); break;
	case TT_TC_AGE: tt_fmt_dur(buf, cap, t->age_ns); break;
	case TT_TC_CPU: tt_fmt_pct(buf, cap, t->cpu_pct, pct); break;
	case TT_TC_RUNQ: tt_fmt_pct(buf, cap, t->runq_pct, pct && t->runq_known); break;
	case TT_TC_BLOCKED: tt_fmt_pct(buf, cap, t->blocked_pct, pct && t->runq_known); break;
	case TT_TC_VCSW: case TT_TC_IVCSW:
		if (tt_task_switches(t, &vol, &invol))
			tt_fmt_count(buf, cap, col == TT_TC_VCSW ? vol : invol, width);
		else
			snprintf(buf, cap, "-");
		break;
	case TT_TC_RESTARTS: tt_fmt_count(buf, cap, t->restarts, width); break;
	case TT_TC_WARN: tt_fmt_warn(buf, cap, t->warnings); break;
	default: buf[0] = '\0';
	}
}

/* ID grows to the longest id listed, so that ids are never cut. */
static void fit_id(struct tt_col *cols, const struct tt_model *m, const size_t *rows, size_t n)
{
	uint64_t max = 0;
	for (size_t i = 0; i < n; i++)
		if (m->tasks[rows[i]].id > max)
			max = m->tasks[rows[i]].id;
	int digits = 1;
	for (; max >= 10; max /= 10)
		digits++;
	if (digits > cols[TT_TC_ID].min)
		cols[TT_TC_ID].min = cols[TT_TC_ID].pref = digits;
}

static void draw_row(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_task *t,
                     const struct tt_col *cols, const int *widths, bool selected)
{
	char buf[TT_NAME_CAP * 4 + 32];
	int x = 0;
	for (int col = 0; col < TT_TC_COUNT; col++) {
		if (!widths[col])
			continue;
		cell_text(buf, sizeof(buf), m, t, col, widths[col]);
		enum tt_style st = TT_NORMAL;
		if (col == TT_TC_STATE)
			st = state_style(t);
		else if (col == TT_TC_WARN && t->warnings)
			st = TT_WARN;
		x = tt_draw_cell(c, y, x, &cols[col], widths[col], selected ? TT_SELECTED : st, buf);
	}
	if (selected)
		tt_canvas_style(c, y, 0, -1, TT_SELECTED);
}

static void info_line(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v, size_t n)
{
	char line[512];
	size_t len = (size_t)snprintf(line, sizeof(line), "Tasks %zu of %zu", n, m ? m->ntasks : 0);
	if (m && m->tasks_omitted)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " (+%" PRIu64 " omitted)", m->tasks_omitted);
	len += (size_t)snprintf(line + len, sizeof(line) - len, "  sort %s %s", tt_task_col_name(v->task_sort),
	                        v->task_desc ? "desc" : "asc");
	if (v->filter[0])
		len += (size_t)snprintf(line + len, sizeof(line) - len, "  filter \"%s\"", v->filter);
	if (v->type_filter[0])
		len += (size_t)snprintf(line + len, sizeof(line) - len, "  type \"%s\"", v->type_filter);
	if (v->type_key_on) {
		const struct tt_workload *w = m ? tt_model_find_workload(m, v->type_key.pid) : NULL;
		const struct tt_type *ty = w ? tt_workload_find_type(w, (int)v->type_key.id) : NULL;
		char name[TT_NAME_CAP * 4];
		if (ty)
			tt_disp(name, sizeof(name), ty->name.s, ty->name.flags);
		else
			snprintf(name, sizeof(name), "#%d", (int)v->type_key.id);
		len += (size_t)snprintf(line + len, sizeof(line) - len, "  type %s of pid %d", name, (int)v->type_key.pid);
	}
	if (v->state_filter != TT_SF_ALL && len < sizeof(line))
		len += (size_t)snprintf(line + len, sizeof(line) - len, "  state %s", tt_state_filter_name(v->state_filter));
	if (v->running_only && len < sizeof(line))
		snprintf(line + len, sizeof(line) - len, "  running only");
	tt_canvas_put(c, y, 0, -1, TT_TITLE, line);
}

/* Batch output is for scripts: the name column fits the longest name. */
static void fit_name(struct tt_col *cols, const struct tt_model *m, const size_t *rows, size_t n)
{
	char buf[TT_NAME_CAP * 4 + 1];
	for (size_t i = 0; i < n; i++) {
		const struct tt_task *t = &m->tasks[rows[i]];
		tt_disp(buf, sizeof(buf), t->name.s, t->name.flags);
		int len = (int)strlen(buf);
		if (len > cols[TT_TC_NAME].min)
			cols[TT_TC_NAME].min = cols[TT_TC_NAME].pref = len;
	}
}

static void layout(struct tt_col *cols, int *widths, const struct tt_model *m, const struct tt_view *v,
                   const size_t *rows, size_t n, int width)
{
	memcpy(cols, task_cols, sizeof(task_cols));
	if (m)
		fit_id(cols, m, rows, n);
	if (m && v->batch)
		fit_name(cols, m, rows, n);
	tt_layout(cols, TT_TC_COUNT, width, v->task_sort, TT_TC_NAME, widths);
}

void tt_tasks_layout(const struct tt_model *m, const struct tt_view *v, int width, int widths[TT_TC_COUNT])
{
	struct tt_col cols[TT_TC_COUNT];
	size_t *rows;
	size_t n = tt_task_rows(m, v, &rows);
	layout(cols, widths, m, v, rows, n, width);
	free(rows);
}

void tt_screen_tasks(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v)
{
	size_t *rows;
	size_t n = tt_task_rows(m, v, &rows);
	struct tt_col cols[TT_TC_COUNT];
	int widths[TT_TC_COUNT];
	layout(cols, widths, m, v, rows, n, a.w);
	info_line(c, a.y, m, v, n);
	tt_draw_colheads(c, a.y + 1, a.x, cols, TT_TC_COUNT, widths, v->task_sort, v->task_desc);
	int page = a.h - 2;
	struct tt_row_key *keys = n ? malloc(n * sizeof(*keys)) : NULL;
	for (size_t i = 0; keys && i < n; i++)
		keys[i] = (struct tt_row_key){ m->tasks[rows[i]].pid, m->tasks[rows[i]].id };
	tt_view_set_rows(v, TT_SCR_TASKS, keys ? (int)n : 0, page, keys);
	const struct tt_list_pos *p = &v->pos[TT_SCR_TASKS];
	for (int r = 0; r < page && p->top + r < p->rows; r++) {
		int i = p->top + r;
		draw_row(c, a.y + 2 + r, m, &m->tasks[rows[i]], cols, widths, i == p->sel);
	}
	if (n == 0)
		tt_canvas_put(c, a.y + 2, 0, -1, TT_DIM, m && m->ntasks ? "no task matches the filters (Esc clears them)"
		                                                         : "no tasks");
	free(keys);
	free(rows);
}

/* Batch mode: every row, no selection. */
int tt_tasks_batch(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v)
{
	size_t *rows;
	size_t n = tt_task_rows(m, v, &rows);
	struct tt_col cols[TT_TC_COUNT];
	int widths[TT_TC_COUNT];
	layout(cols, widths, m, v, rows, n, c->w);
	info_line(c, y++, m, v, n);
	tt_draw_colheads(c, y++, 0, cols, TT_TC_COUNT, widths, v->task_sort, v->task_desc);
	for (size_t i = 0; i < n && y < c->h; i++)
		draw_row(c, y++, m, &m->tasks[rows[i]], cols, widths, false);
	free(rows);
	return y;
}
