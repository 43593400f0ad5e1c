/* A screen as lines of cells, each a printable ASCII character and a style,
 * independent of curses: the screens draw here, the terminal module copies the
 * lines that changed to curses, and batch mode and the tests read it as text.
 *
 * Every write is clipped to the canvas and to the width it is given, and every
 * byte that is not printable ASCII is stored as '?': nothing a workload names
 * can move the cursor or change the terminal (screens escape names first with
 * tt_escape of model.h, so that the user sees \x1b rather than '?').
 */
#ifndef TT_CANVAS_H
#define TT_CANVAS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Styles, not colours: the terminal module maps them to attributes (and to
 * colours unless NO_COLOR is set). */
enum tt_style {
	TT_NORMAL = 0,
	TT_TITLE,       /* header labels */
	TT_COLHEAD,     /* a table's column header line */
	TT_SORTED,      /* the sorted column's heading */
	TT_SELECTED,    /* the selection bar */
	TT_KEY,         /* a key in the key bar */
	TT_KEYLABEL,    /* its label */
	TT_GOOD,
	TT_WARN,
	TT_BAD,
	TT_DIM,
	TT_BAR,         /* histogram bars */
	TT_STYLE_COUNT
};

struct tt_canvas {
	int w, h;
	char *text;       /* h rows of w characters, no NULs */
	uint8_t *style;   /* enum tt_style per cell */
};

#define TT_CANVAS_MAX_W 1000
#define TT_CANVAS_MAX_H 100000   /* batch mode lists every task */

/* 0, or -ENOMEM / -EINVAL (sizes below 1 or above the maxima). */
int  tt_canvas_init(struct tt_canvas *c, int w, int h);
int  tt_canvas_resize(struct tt_canvas *c, int w, int h);
void tt_canvas_free(struct tt_canvas *c);
void tt_canvas_clear(struct tt_canvas *c);

/* Writes s at (y, x), at most maxw cells (maxw < 0: to the right edge).
 * Returns the cells written. */
int  tt_canvas_put(struct tt_canvas *c, int y, int x, int maxw, enum tt_style st, const char *s);
int  tt_canvas_printf(struct tt_canvas *c, int y, int x, int maxw, enum tt_style st, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* Writes s right-aligned in [x, x + w): cut on the left when too long. */
int  tt_canvas_put_right(struct tt_canvas *c, int y, int x, int w, enum tt_style st, const char *s);
/* Sets the style of w cells from (y, x) (w < 0: to the right edge). */
void tt_canvas_style(struct tt_canvas *c, int y, int x, int w, enum tt_style st);
/* Fills w cells with ch in style st. */
void tt_canvas_fill(struct tt_canvas *c, int y, int x, int w, char ch, enum tt_style st);

/* Copies n rows from src (from row sy) to dst (from row dy), as much of
 * each as both widths allow. */
void tt_canvas_copy_rows(struct tt_canvas *dst, int dy, const struct tt_canvas *src, int sy, int n);

/* The text of row y without trailing blanks, NUL-terminated into buf
 * (cap >= w + 1 for the whole line). Returns its length. */
size_t tt_canvas_line(const struct tt_canvas *c, int y, char *buf, size_t cap);
/* Whether row y differs between a and b (same width) in text or style. */
int  tt_canvas_row_differs(const struct tt_canvas *a, const struct tt_canvas *b, int y);
/* Every row, trailing blanks cut, each ending in '\n'; trailing empty rows
 * are left out. Returns 0 or -EIO. */
int  tt_canvas_write(const struct tt_canvas *c, FILE *f);

#endif
