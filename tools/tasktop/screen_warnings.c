/* The Warnings screen: what the data says is wrong, one row per warning. */
#include <inttypes.h>
#include <stdlib.h>

#include "screen.h"

enum { WC_KIND, WC_WORKLOAD, WC_TASK, WC_TEXT, WC_COUNT };

static const struct tt_col warn_cols[WC_COUNT] = {
	[WC_KIND]     = { "WARNING", 12, 12, 90, false },
	[WC_WORKLOAD] = { "WORKLOAD", 8, 16, 80, false },
	[WC_TASK]     = { "TASK", 5, 7, 85, true },
	[WC_TEXT]     = { "WHAT", 20, 40, 95, false },
};

void tt_screen_warnings(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v)
{
	char buf[TT_TEXT_CAP + 32];
	size_t n = m ? m->nwarnings : 0;
	tt_canvas_printf(c, a.y, 0, -1, TT_TITLE, "Warnings %zu", n);
	int widths[WC_COUNT];
	tt_layout(warn_cols, WC_COUNT, a.w, -1, WC_TEXT, widths);
	tt_draw_colheads(c, a.y + 1, 0, warn_cols, WC_COUNT, widths, -1, false);
	int page = a.h - 2;
	struct tt_row_key *keys = n ? malloc(n * sizeof(*keys)) : NULL;
	for (size_t i = 0; keys && i < n; i++)
		keys[i] = (struct tt_row_key){ m->warnings[i].pid, m->warnings[i].task_id };
	tt_view_set_rows(v, TT_SCR_WARNINGS, keys ? (int)n : 0, page, keys);
	free(keys);
	const struct tt_list_pos *p = &v->pos[TT_SCR_WARNINGS];
	for (int r = 0; r < page && p->top + r < p->rows; r++) {
		const struct tt_warning *w = &m->warnings[p->top + r];
		bool sel = p->top + r == p->sel;
		int x = 0, y = a.y + 2 + r;
		for (int col = 0; col < WC_COUNT; col++) {
			if (!widths[col])
				continue;
			switch (col) {
			case WC_KIND: snprintf(buf, sizeof(buf), "%s", tt_warn_kind_name(w->kind)); break;
			case WC_WORKLOAD:
				if (w->pid)
					tt_fmt_workload(buf, sizeof(buf), m, w->pid, widths[col]);
				else
					snprintf(buf, sizeof(buf), "(machine)");
				break;
			case WC_TASK:
				if (w->task_id)
					snprintf(buf, sizeof(buf), "%" PRIu64, w->task_id);
				else
					snprintf(buf, sizeof(buf), "-");
				break;
			default: snprintf(buf, sizeof(buf), "%s", w->text);
			}
			x = tt_draw_cell(c, y, x, &warn_cols[col], widths[col],
			                 sel ? TT_SELECTED : col == WC_KIND ? TT_WARN : TT_NORMAL, buf);
		}
		if (sel)
			tt_canvas_style(c, y, 0, -1, TT_SELECTED);
	}
	if (n == 0)
		tt_canvas_put(c, a.y + 2, 0, -1, TT_DIM, "no warnings");
}
