/* Scrollable text pages for the detail and help screens. */
#include <stdarg.h>
#include <stdio.h>

#include "screen.h"

#define PAGE_ROWS 1000   /* a stack of TT_MAX_FRAMES per crash and a few crashes fit */

void tt_page_open(struct tt_page *p, int width)
{
	p->y = 0;
	p->ok = tt_canvas_init(&p->c, width > 0 ? width : 1, PAGE_ROWS) == 0;
}

void tt_page_line(struct tt_page *p, enum tt_style st, const char *label, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	if (!p->ok)
		return;
	int x = 0;
	if (label) {
		tt_canvas_put(&p->c, p->y, 0, -1, TT_TITLE, label);
		x = 16;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	tt_canvas_put(&p->c, p->y, x, -1, st, buf);
	p->y++;
}

int tt_page_put(struct tt_page *p, int x, enum tt_style st, const char *s)
{
	return p->ok ? x + tt_canvas_put(&p->c, p->y, x, -1, st, s) : x;
}

void tt_page_newline(struct tt_page *p)
{
	p->y++;
}

void tt_page_show(struct tt_page *p, struct tt_canvas *c, struct tt_area a, struct tt_view *v, enum tt_screen scr)
{
	int rows = p->ok ? (p->y < p->c.h ? p->y : p->c.h) : 0;
	tt_view_set_rows(v, scr, rows, a.h, NULL);
	if (p->ok) {
		const struct tt_list_pos *pos = &v->pos[scr];
		int n = rows - pos->top < a.h ? rows - pos->top : a.h;
		tt_canvas_copy_rows(c, a.y, &p->c, pos->top, n);
		tt_canvas_free(&p->c);
	}
}
