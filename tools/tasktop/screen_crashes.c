/* The Crashes screen: every crash the collector logged, newest first, and
 * the selected one's signal and stack below the list. */
#include <inttypes.h>
#include <stdlib.h>

#include "screen.h"

enum { CC_TIME, CC_WORKLOAD, CC_TASK, CC_NAME, CC_TYPE, CC_SIGNAL, CC_ADDR, CC_FRAME, CC_COUNT };

static const struct tt_col crash_cols[CC_COUNT] = {
	[CC_TIME]     = { "TIME", 8, 19, 30, false },
	[CC_WORKLOAD] = { "WORKLOAD", 8, 16, 80, false },
	[CC_TASK]     = { "TASK", 5, 7, 85, true },
	[CC_NAME]     = { "NAME", 8, 20, 84, false },
	[CC_TYPE]     = { "TYPE", 8, 12, 60, false },
	[CC_SIGNAL]   = { "SIGNAL", 7, 20, 95, false },
	[CC_ADDR]     = { "FAULT", 10, 18, 50, false },
	[CC_FRAME]    = { "TOP FRAME", 10, 30, 70, false },
};

static void cell_text(char *buf, size_t cap, const struct tt_model *m, const struct tt_crash *cr, int col, int w)
{
	buf[0] = '\0';
	switch (col) {
	case CC_TIME:
		tt_fmt_time(buf, cap, cr->time_unix_ns, w >= 19);
		break;
	case CC_WORKLOAD: {
		const struct tt_workload *wl = tt_model_find_workload(m, cr->pid);
		if (wl) {
			tt_fmt_workload(buf, cap, m, cr->pid, w);
		} else {
			char comm[TT_COMM_CAP * 4];
			tt_disp(comm, sizeof(comm), cr->comm.s, cr->comm.flags);
			snprintf(buf, cap, "%.*s:%d", w > 8 ? w - 7 : 1, comm, (int)cr->pid);
		}
		break;
	}
	case CC_TASK:
		if (cr->task_known)
			snprintf(buf, cap, "%" PRIu64, cr->task_id);
		else
			snprintf(buf, cap, "-");
		break;
	case CC_NAME: tt_disp(buf, cap, cr->task_name.s, cr->task_name.flags); break;
	case CC_TYPE: tt_disp(buf, cap, cr->type_name.s, cr->type_name.flags); break;
	case CC_SIGNAL:
		if (cr->signal[0])
			snprintf(buf, cap, "%s%s%s", cr->signal, cr->code[0] ? "/" : "", cr->code);
		else
			snprintf(buf, cap, "%d", cr->signo);
		break;
	case CC_ADDR:
		if (cr->fault_addr_known)
			snprintf(buf, cap, "0x%" PRIx64, cr->fault_addr);
		else
			snprintf(buf, cap, "-");
		break;
	case CC_FRAME:
		if (cr->nframes && cr->frames[0].symbol[0])
			tt_disp(buf, cap, cr->frames[0].symbol, cr->frames[0].flags);
		else if (cr->nframes)
			snprintf(buf, cap, "0x%" PRIx64, cr->frames[0].addr);
		break;
	}
}

void tt_screen_crashes(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v)
{
	char buf[TT_PATH_CAP * 4];
	size_t n = m ? m->ncrashes : 0;
	if (m && m->crashes_known)
		snprintf(buf, sizeof(buf), "Crashes %zu  from %s", n, m->crashes_source);
	else if (m && m->crashes_source[0])
		snprintf(buf, sizeof(buf), "Crashes: no crash log read (%s)", m->crashes_source);
	else
		snprintf(buf, sizeof(buf), "Crashes: no crash log read");
	tt_canvas_put(c, a.y, 0, -1, TT_TITLE, buf);
	int widths[CC_COUNT];
	tt_layout(crash_cols, CC_COUNT, a.w, -1, CC_FRAME, widths);
	tt_draw_colheads(c, a.y + 1, 0, crash_cols, CC_COUNT, widths, -1, false);
	/* The list takes up to half of the area; the selected crash the rest. */
	int list_h = n ? (int)n : 1;
	if (list_h > (a.h - 2) / 2)
		list_h = (a.h - 2) / 2 > 0 ? (a.h - 2) / 2 : 1;
	struct tt_row_key *keys = n ? malloc(n * sizeof(*keys)) : NULL;
	for (size_t i = 0; keys && i < n; i++) {
		const struct tt_crash *cr = &m->crashes[n - 1 - i];
		keys[i] = (struct tt_row_key){ cr->pid, cr->task_known ? cr->task_id : 0 };
	}
	tt_view_set_rows(v, TT_SCR_CRASHES, keys ? (int)n : 0, list_h, keys);
	free(keys);
	const struct tt_list_pos *p = &v->pos[TT_SCR_CRASHES];
	for (int r = 0; r < list_h && p->top + r < p->rows; r++) {
		const struct tt_crash *cr = &m->crashes[n - 1 - (size_t)(p->top + r)];
		bool sel = p->top + r == p->sel;
		int x = 0, y = a.y + 2 + r;
		for (int col = 0; col < CC_COUNT; col++) {
			if (!widths[col])
				continue;
			cell_text(buf, sizeof(buf), m, cr, col, widths[col]);
			x = tt_draw_cell(c, y, x, &crash_cols[col], widths[col],
			                 sel ? TT_SELECTED : col == CC_SIGNAL ? TT_BAD : TT_NORMAL, buf);
		}
		if (sel)
			tt_canvas_style(c, y, 0, -1, TT_SELECTED);
	}
	if (n == 0) {
		tt_canvas_put(c, a.y + 2, 0, -1, TT_DIM, "no crashes");
		return;
	}
	int y = a.y + 2 + list_h;
	tt_canvas_fill(c, y, 0, a.w, '-', TT_DIM);
	struct tt_page pg;
	tt_page_open(&pg, a.w);
	tt_page_crash(&pg, &m->crashes[n - 1 - (size_t)p->sel]);
	if (pg.ok) {
		tt_canvas_copy_rows(c, y + 1, &pg.c, 0, a.y + a.h - y - 1);
		tt_canvas_free(&pg.c);
	}
}
