/* The whole screen, and batch mode's plain-text samples. */
#include <errno.h>
#include <stdlib.h>

#include "screen.h"

void tt_render(struct tt_canvas *c, const struct tt_model *m, struct tt_view *v, const struct tt_render_info *ri)
{
	tt_canvas_clear(c);
	int y = tt_draw_header(c, 0, m, v, ri);
	tt_draw_tabs(c, y++, m, v);
	struct tt_area a = { y, 0, c->w, c->h - 1 - y };
	if (a.h >= 3) {
		switch (v->screen) {
		case TT_SCR_TYPES: tt_screen_types(c, a, m, v); break;
		case TT_SCR_TASKS: tt_screen_tasks(c, a, m, v); break;
		case TT_SCR_DETAIL: tt_screen_detail(c, a, m, v); break;
		case TT_SCR_CRASHES: tt_screen_crashes(c, a, m, v); break;
		case TT_SCR_WARNINGS: tt_screen_warnings(c, a, m, v); break;
		default: tt_screen_help(c, a, m, v); break;
		}
	}
	tt_draw_keybar(c, c->h - 1, v);
}

int tt_render_batch(FILE *f, const struct tt_model *m, struct tt_view *v, int width)
{
	struct tt_canvas c;
	v->batch = true;
	size_t rows = 16;
	if (m) {
		rows += m->ntasks + m->nwarnings;
		for (size_t w = 0; w < m->nworkloads; w++)
			rows += m->workloads[w].ntypes;
	}
	if (rows > TT_CANVAS_MAX_H)
		rows = TT_CANVAS_MAX_H;
	int r = tt_canvas_init(&c, width, (int)rows);
	if (r < 0)
		return r;
	int y = tt_draw_header(&c, 0, m, v, NULL) + 1;
	if (m) {
		y = tt_types_batch(&c, y, m, v) + 1;
		y = tt_tasks_batch(&c, y, m, v) + 1;
		if (m->nwarnings)
			tt_canvas_printf(&c, y++, 0, -1, TT_TITLE, "Warnings %zu", m->nwarnings);
		for (size_t i = 0; i < m->nwarnings && y < c.h; i++)
			tt_canvas_printf(&c, y++, 0, -1, TT_NORMAL, "%s: %s", tt_warn_kind_name(m->warnings[i].kind),
			                 m->warnings[i].text);
	}
	r = tt_canvas_write(&c, f);
	if (r == 0 && (fputc('\n', f) == EOF || fflush(f) != 0))
		r = -EIO;
	tt_canvas_free(&c);
	return r;
}
