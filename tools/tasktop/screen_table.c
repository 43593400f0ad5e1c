/* Tables: which columns fit, how wide each is, and cells that never spill. */
#include <string.h>

#include "screen.h"

void tt_layout(const struct tt_col *cols, int n, int width, int keep, int grow, int *widths)
{
	int total = -1;
	for (int i = 0; i < n; i++) {
		widths[i] = cols[i].min;
		total += cols[i].min + 1;
	}
	/* Drop the least important columns until the rest fit. */
	while (total > width) {
		int drop = -1;
		for (int i = 0; i < n; i++)
			if (widths[i] && i != keep && i != grow && (drop < 0 || cols[i].prio < cols[drop].prio))
				drop = i;
		if (drop < 0)
			break;
		total -= widths[drop] + 1;
		widths[drop] = 0;
	}
	int spare = width - total;
	/* Spare width: the most important columns reach their preferred width first. */
	for (int p = 1000; spare > 0 && p >= 0; p--) {
		for (int i = 0; i < n && spare > 0; i++) {
			if (!widths[i] || cols[i].prio != p || widths[i] >= cols[i].pref)
				continue;
			int add = cols[i].pref - widths[i];
			if (add > spare)
				add = spare;
			widths[i] += add;
			spare -= add;
		}
	}
	/* The rest to the growing column, up to twice its preferred width: a
	 * wider name column would only push the figures away from the names. */
	if (spare > 0 && grow >= 0 && grow < n && widths[grow]) {
		int room = 2 * cols[grow].pref - widths[grow];
		widths[grow] += spare < room ? spare : room > 0 ? room : 0;
	}
}

int tt_draw_cell(struct tt_canvas *c, int y, int x, const struct tt_col *col, int width,
                 enum tt_style st, const char *text)
{
	int len = (int)strlen(text);
	if (width <= 0)
		return x;
	if (len > width) {
		/* Cut, and say so: the last cell shows '~'. */
		tt_canvas_put(c, y, x, width - 1, st, text);
		tt_canvas_put(c, y, x + width - 1, 1, st, "~");
	} else if (col->right) {
		tt_canvas_put(c, y, x + width - len, len, st, text);
	} else {
		tt_canvas_put(c, y, x, width, st, text);
	}
	return x + width + 1;
}

void tt_draw_colheads(struct tt_canvas *c, int y, int x, const struct tt_col *cols, int n,
                      const int *widths, int sorted, bool desc)
{
	tt_canvas_style(c, y, 0, -1, TT_COLHEAD);
	for (int i = 0; i < n; i++) {
		if (!widths[i])
			continue;
		enum tt_style st = i == sorted ? TT_SORTED : TT_COLHEAD;
		if (i == sorted)
			tt_canvas_style(c, y, x, widths[i], st);
		x = tt_draw_cell(c, y, x, &cols[i], widths[i], st, cols[i].head);
	}
	(void)desc;
}
