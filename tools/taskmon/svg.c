/* See svg.h. Coordinates are written with one decimal: enough for a screen,
 * and a document of a week's records stays a few megabytes. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include "svg.h"

#define WIDTH     960.0
#define PANEL_H   270.0
#define TOP       30.0    /* document title */
#define MARGIN_L  80.0
#define MARGIN_R  24.0
#define MARGIN_T  34.0    /* panel title */
#define MARGIN_B  46.0    /* tick labels and x label */
#define MAX_TICKS 12

static const char *const palette[] = {
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
	"#bcbd22", "#7f7f7f", "#393b79", "#ad494a",
};
#define NCOLORS (sizeof(palette) / sizeof(palette[0]))

struct box {            /* data range and where it lands on the page */
	double x0, x1, y0, y1;
	double left, right, top, bottom;
};

static void text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(c >= 0x20 && c < 0x7f ? c : '?', f);
		}
	}
}

static bool finite_point(const struct tm_svg_series *s, size_t i)
{
	return isfinite(s->x[i]) && isfinite(s->y[i]);
}

/* Inside the panel's box (a fixed x range may leave points out). */
static bool shown(const struct tm_svg_series *s, size_t i, const struct box *b)
{
	return finite_point(s, i) && s->x[i] >= b->x0 && s->x[i] <= b->x1;
}

/* The data range of a panel. y always includes 0: capacity figures read
 * wrongly against a cut-off axis. */
static bool data_range(const struct tm_svg_panel *p, struct box *b)
{
	bool any = false;

	b->x0 = b->x1 = 0;
	b->y0 = b->y1 = 0;
	for (size_t k = 0; k < p->nseries; k++) {
		const struct tm_svg_series *s = &p->series[k];
		for (size_t i = 0; i < s->n; i++) {
			if (!finite_point(s, i))
				continue;
			if (!any || s->x[i] < b->x0)
				b->x0 = s->x[i];
			if (!any || s->x[i] > b->x1)
				b->x1 = s->x[i];
			b->y0 = fmin(b->y0, s->y[i]);
			b->y1 = fmax(b->y1, s->y[i]);
			any = true;
		}
	}
	if (isfinite(p->x_lo) && isfinite(p->x_hi) && p->x_hi > p->x_lo) {
		b->x0 = p->x_lo;
		b->x1 = p->x_hi;
	}
	if (b->x1 - b->x0 <= fabs(b->x0) * 1e-12) {
		b->x0 -= 1;
		b->x1 += 1;
	}
	if (b->y1 - b->y0 <= fabs(b->y0) * 1e-12)
		b->y1 = b->y0 + 1;
	return any;
}

/* 1, 2 or 5 times a power of ten, so that about five ticks span the range. */
static double tick_step(double span)
{
	double raw = span / 5, mag = pow(10, floor(log10(raw))), m = raw / mag;
	return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * mag;
}

static double px(const struct box *b, double x)
{
	return b->left + (x - b->x0) / (b->x1 - b->x0) * (b->right - b->left);
}

static double py(const struct box *b, double y)
{
	return b->bottom - (y - b->y0) / (b->y1 - b->y0) * (b->bottom - b->top);
}

/* 12k, 1.5M rather than 1.2e+04, 1.5e+06. */
static const char *tick_label(char *buf, size_t len, double v)
{
	static const char *const suffix[] = { "", "k", "M", "G", "T", "P" };
	double a = fabs(v);
	unsigned k = 0;

	if (a >= 1e4)   /* 5000 stays 5000 */
		do {
			a /= 1000;
			k++;
		} while (a >= 1000 && k + 1 < sizeof(suffix) / sizeof(suffix[0]));
	snprintf(buf, len, "%s%.4g%s", v < 0 ? "-" : "", a, suffix[k]);
	return buf;
}

static void ticks(FILE *f, const struct box *b)
{
	char buf[32];
	double sx = tick_step(b->x1 - b->x0), sy = tick_step(b->y1 - b->y0);

	/* counted loops: at magnitudes where v + step == v a float loop never ends */
	for (int i = 0; i <= MAX_TICKS; i++) {
		double v = ceil(b->x0 / sx) * sx + i * sx, x = px(b, v);
		if (v > b->x1 + sx * 1e-9)
			break;
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
		        x, b->top, x, b->bottom);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
		        x, b->bottom + 16, tick_label(buf, sizeof(buf), fabs(v) < sx * 1e-9 ? 0.0 : v));
	}
	for (int i = 0; i <= MAX_TICKS; i++) {
		double v = ceil(b->y0 / sy) * sy + i * sy, y = py(b, v);
		if (v > b->y1 + sy * 1e-9)
			break;
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
		        b->left, y, b->right, y);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
		        b->left - 6, y + 4, tick_label(buf, sizeof(buf), fabs(v) < sy * 1e-9 ? 0.0 : v));
	}
}

/* Consecutive points in one pixel column are drawn as the first, lowest,
 * highest and last of them: the same picture from at most four points a
 * column, however many records a week holds. */
struct column {
	long x;
	size_t idx[4];      /* first, lowest, highest, last */
	bool any;
};

struct line_out {
	FILE *f;
	const struct tm_svg_series *s;
	const struct box *b;
	const char *color;
	bool open;
};

static void vertex(struct line_out *o, size_t i)
{
	if (!o->open)
		fprintf(o->f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"", o->color,
		        o->s->style == TM_SVG_DASHED ? " stroke-dasharray=\"6 4\"" : "");
	fprintf(o->f, "%s%.1f,%.1f", o->open ? " " : "", px(o->b, o->s->x[i]), py(o->b, o->s->y[i]));
	o->open = true;
}

static void flush_column(struct line_out *o, struct column *c)
{
	size_t *v = c->idx;

	if (!c->any)
		return;
	for (int i = 1; i < 4; i++)   /* four indices in series order */
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			size_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	for (int i = 0; i < 4; i++)
		if (i == 0 || v[i] != v[i - 1])
			vertex(o, v[i]);
	c->any = false;
}

static void polyline(FILE *f, const struct tm_svg_series *s, const struct box *b, const char *color)
{
	struct line_out o = { f, s, b, color, false };
	struct column c = { .any = false };

	for (size_t i = 0; i <= s->n; i++) {
		long col;
		if (i == s->n || !shown(s, i, b)) {
			flush_column(&o, &c);
			if (o.open)
				fputs("\"/>\n", f);
			o.open = false;
			continue;
		}
		col = lround(px(b, s->x[i]));
		if (c.any && col == c.x) {
			if (s->y[i] < s->y[c.idx[1]])
				c.idx[1] = i;
			if (s->y[i] > s->y[c.idx[2]])
				c.idx[2] = i;
			c.idx[3] = i;
			continue;
		}
		flush_column(&o, &c);
		c = (struct column){ .x = col, .idx = { i, i, i, i }, .any = true };
	}
}

/* One dot per pixel: a dot drawn over another adds nothing but bytes. */
static void dots(FILE *f, const struct tm_svg_series *s, const struct box *b, const char *color)
{
	long w = lround(b->right - b->left) + 1, h = lround(b->bottom - b->top) + 1;
	unsigned char *seen = calloc((size_t)(w * h + 7) / 8, 1);

	fprintf(f, "<g fill=\"%s\" fill-opacity=\"0.55\">\n", color);
	for (size_t i = 0; i < s->n; i++) {
		double x, y;
		long cell;
		if (!shown(s, i, b))
			continue;
		x = px(b, s->x[i]);
		y = py(b, s->y[i]);
		cell = (lround(y - b->top) * w + lround(x - b->left));
		if (seen && cell >= 0 && cell < w * h) {
			if (seen[cell / 8] & (1u << (cell % 8)))
				continue;
			seen[cell / 8] |= (unsigned char)(1u << (cell % 8));
		}
		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>\n", x, y);
	}
	fputs("</g>\n", f);
	free(seen);
}

/* One legend for the whole document under its title: a series keeps its
 * colour in every panel, so each colour is named once, in the order first
 * seen, in rows that wrap at the page width. Returns the height it took. */
static double legend(FILE *f, const struct tm_svg_panel *panels, size_t npanels, double top)
{
	unsigned char named[NCOLORS] = { 0 };
	double x = MARGIN_L, y = top + 14;

	for (size_t i = 0; i < npanels; i++)
		for (size_t k = 0; k < panels[i].nseries; k++) {
			const struct tm_svg_series *s = &panels[i].series[k];
			size_t len = 0;
			if (!s->label || named[s->color % NCOLORS])
				continue;
			named[s->color % NCOLORS] = 1;
			while (s->label[len] && len < 60)
				len++;
			if (x > MARGIN_L && x + 28 + 7.0 * (double)len > WIDTH - MARGIN_R) {
				x = MARGIN_L;
				y += 18;
			}
			if (f) {
				fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
				        x, y - 4, x + 16, y - 4, palette[s->color % NCOLORS]);
				fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", x + 20, y);
				text(f, s->label);
				fputs("</text>\n", f);
			}
			x += 28 + 7.0 * (double)len;
		}
	if (f)
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">dots and solid lines: measured; dashed lines: "
		        "fitted</text>\n", MARGIN_L, y + 18);
	return y + 18 + 8 - top;
}

static void panel(FILE *f, const struct tm_svg_panel *p, double top)
{
	struct box b;
	bool any = data_range(p, &b);

	b.left = MARGIN_L;
	b.right = WIDTH - MARGIN_R;
	b.top = top + MARGIN_T;
	b.bottom = top + PANEL_H - MARGIN_B;
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">", MARGIN_L, top + 24);
	text(f, p->title);
	fputs("</text>\n", f);
	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fcfcfc\" stroke=\"#999\"/>\n",
	        b.left, b.top, b.right - b.left, b.bottom - b.top);
	if (!any) {
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no data</text>\n",
		        (b.left + b.right) / 2, (b.top + b.bottom) / 2);
	} else {
		ticks(f, &b);
		for (size_t k = 0; k < p->nseries; k++) {
			const char *color = palette[p->series[k].color % NCOLORS];
			if (p->series[k].style == TM_SVG_DOTS)
				dots(f, &p->series[k], &b, color);
			else
				polyline(f, &p->series[k], &b, color);
		}
	}
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (b.left + b.right) / 2, b.bottom + 36);
	text(f, p->x_label);
	fprintf(f, "</text>\n<text transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\">",
	        20.0, (b.top + b.bottom) / 2);
	text(f, p->y_label);
	fputs("</text>\n", f);
}

int tm_svg_write(FILE *f, const char *title, const struct tm_svg_panel *panels, size_t npanels)
{
	double head = TOP + legend(NULL, panels, npanels, TOP);
	double height = head + PANEL_H * (double)npanels + 10;

	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\""
	        " font-family=\"sans-serif\" font-size=\"11\">\n"
	        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
	        WIDTH, height, WIDTH, height);
	fprintf(f, "<text x=\"%.1f\" y=\"20\" font-size=\"16\" font-weight=\"bold\">", MARGIN_L);
	text(f, title);
	fputs("</text>\n", f);
	legend(f, panels, npanels, TOP);
	for (size_t i = 0; i < npanels; i++)
		panel(f, &panels[i], head + PANEL_H * (double)i);
	fputs("</svg>\n", f);
	return ferror(f) ? -EIO : 0;
}
