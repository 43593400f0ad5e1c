/* The curses-free screen: see canvas.h. */
#include "canvas.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


static int alloc_cells(struct tt_canvas *c, int w, int h)
{
	if (w < 1 || h < 1 || w > TT_CANVAS_MAX_W || h > TT_CANVAS_MAX_H)
		return -EINVAL;
	char *text = malloc((size_t)w * (size_t)h);
	uint8_t *style = malloc((size_t)w * (size_t)h);
	if (!text || !style) {
		free(text);
		free(style);
		return -ENOMEM;
	}
	free(c->text);
	free(c->style);
	c->text = text;
	c->style = style;
	c->w = w;
	c->h = h;
	tt_canvas_clear(c);
	return 0;
}

int tt_canvas_init(struct tt_canvas *c, int w, int h)
{
	memset(c, 0, sizeof(*c));
	return alloc_cells(c, w, h);
}

int tt_canvas_resize(struct tt_canvas *c, int w, int h)
{
	if (c->text && w == c->w && h == c->h)
		return 0;
	return alloc_cells(c, w, h);
}

void tt_canvas_free(struct tt_canvas *c)
{
	free(c->text);
	free(c->style);
	memset(c, 0, sizeof(*c));
}

void tt_canvas_clear(struct tt_canvas *c)
{
	memset(c->text, ' ', (size_t)c->w * (size_t)c->h);
	memset(c->style, TT_NORMAL, (size_t)c->w * (size_t)c->h);
}

/* Cells [x, x + w) of row y that lie on the canvas; false when none. */
static int clip(const struct tt_canvas *c, int y, int *x, int *w)
{
	if (y < 0 || y >= c->h || *x >= c->w)
		return 0;
	if (*w < 0 || *w > c->w - *x)
		*w = c->w - *x;
	if (*x < 0) {
		*w += *x;
		*x = 0;
	}
	return *w > 0;
}

static char printable(unsigned char ch)
{
	return (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
}

int tt_canvas_put(struct tt_canvas *c, int y, int x, int maxw, enum tt_style st, const char *s)
{
	if (!s || !clip(c, y, &x, &maxw))
		return 0;
	size_t at = (size_t)y * (size_t)c->w + (size_t)x;
	int n = 0;
	for (; n < maxw && s[n]; n++) {
		c->text[at + (size_t)n] = printable((unsigned char)s[n]);
		c->style[at + (size_t)n] = (uint8_t)st;
	}
	return n;
}

int tt_canvas_printf(struct tt_canvas *c, int y, int x, int maxw, enum tt_style st, const char *fmt, ...)
{
	char buf[TT_CANVAS_MAX_W + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return tt_canvas_put(c, y, x, maxw, st, buf);
}

int tt_canvas_put_right(struct tt_canvas *c, int y, int x, int w, enum tt_style st, const char *s)
{
	if (w <= 0 || !s)
		return 0;
	size_t len = strlen(s);
	if (len > (size_t)w)
		s += len - (size_t)w, len = (size_t)w;
	return tt_canvas_put(c, y, x + w - (int)len, (int)len, st, s);
}

void tt_canvas_style(struct tt_canvas *c, int y, int x, int w, enum tt_style st)
{
	if (clip(c, y, &x, &w))
		memset(c->style + (size_t)y * (size_t)c->w + (size_t)x, st, (size_t)w);
}

void tt_canvas_fill(struct tt_canvas *c, int y, int x, int w, char ch, enum tt_style st)
{
	if (!clip(c, y, &x, &w))
		return;
	memset(c->text + (size_t)y * (size_t)c->w + (size_t)x, printable((unsigned char)ch), (size_t)w);
	memset(c->style + (size_t)y * (size_t)c->w + (size_t)x, st, (size_t)w);
}

void tt_canvas_copy_rows(struct tt_canvas *dst, int dy, const struct tt_canvas *src, int sy, int n)
{
	int w = dst->w < src->w ? dst->w : src->w;
	for (int i = 0; i < n; i++) {
		if (dy + i < 0 || dy + i >= dst->h || sy + i < 0 || sy + i >= src->h)
			continue;
		size_t d = (size_t)(dy + i) * (size_t)dst->w, s = (size_t)(sy + i) * (size_t)src->w;
		memcpy(dst->text + d, src->text + s, (size_t)w);
		memcpy(dst->style + d, src->style + s, (size_t)w);
	}
}

size_t tt_canvas_line(const struct tt_canvas *c, int y, char *buf, size_t cap)
{
	if (cap == 0)
		return 0;
	buf[0] = '\0';
	if (y < 0 || y >= c->h)
		return 0;
	const char *row = c->text + (size_t)y * (size_t)c->w;
	size_t n = (size_t)c->w;
	while (n > 0 && row[n - 1] == ' ')
		n--;
	if (n > cap - 1)
		n = cap - 1;
	memcpy(buf, row, n);
	buf[n] = '\0';
	return n;
}

int tt_canvas_row_differs(const struct tt_canvas *a, const struct tt_canvas *b, int y)
{
	if (a->w != b->w || y >= a->h || y >= b->h)
		return 1;
	size_t off = (size_t)y * (size_t)a->w;
	return memcmp(a->text + off, b->text + off, (size_t)a->w) != 0 ||
	       memcmp(a->style + off, b->style + off, (size_t)a->w) != 0;
}

int tt_canvas_write(const struct tt_canvas *c, FILE *f)
{
	char buf[TT_CANVAS_MAX_W + 1];
	int last = c->h - 1;
	while (last >= 0 && tt_canvas_line(c, last, buf, sizeof(buf)) == 0)
		last--;
	for (int y = 0; y <= last; y++) {
		size_t n = tt_canvas_line(c, y, buf, sizeof(buf));
		buf[n] = '\n';
		if (fwrite(buf, 1, n + 1, f) != n + 1)
			return -EIO;
	}
	return 0;
}
