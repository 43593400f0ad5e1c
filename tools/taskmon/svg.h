/* A small hand-written SVG chart: panels stacked one above the other, each a
 * set of series over shared x and y axes. Enough for the capacity plan's
 * picture, readable in any browser, and nothing more.
 *
 * Every label is escaped, and any byte outside printable ASCII is written as
 * '?', so that names taken from hostile records can neither break the XML
 * nor inject markup. Points whose x or y is not finite are left out (a line
 * breaks there). */
#ifndef TM_SVG_H
#define TM_SVG_H

#include <stddef.h>
#include <stdio.h>

enum tm_svg_style {
	TM_SVG_LINE,    /* solid polyline through the points in order */
	TM_SVG_DASHED,  /* dashed polyline: fitted lines */
	TM_SVG_DOTS,    /* one dot per point: scatter plots */
};

struct tm_svg_series {
	const char *label;          /* legend text, one entry per colour (the first label given); NULL = none */
	const double *x, *y;
	size_t n;
	enum tm_svg_style style;
	unsigned color;             /* index into a fixed palette, taken modulo its size */
};

struct tm_svg_panel {
	const char *title, *x_label, *y_label;
	const struct tm_svg_series *series;
	size_t nseries;
	double x_lo, x_hi;          /* x range when x_hi > x_lo (panels over one time span); else the data's */
};

/* Writes a complete SVG document to f. 0, or -EIO when a write failed. */
int tm_svg_write(FILE *f, const char *title, const struct tm_svg_panel *panels, size_t npanels);

#endif
