/* The screens: each draws one part of the canvas from a model and the view,
 * reading nothing else (no /proc, no sockets, no clock), so that a fixed
 * model always gives the same lines.
 *
 * Layout, top to bottom: the header (source, machine figures, collector
 * health), a tab line (screens, filters, sort), the current screen, and the
 * key bar, or the open prompt, on the last row.
 */
#ifndef TT_SCREEN_H
#define TT_SCREEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "canvas.h"
#include "model.h"
#include "view.h"

/* What the main loop knows beyond the model. */
struct tt_render_info {
	const char *status;          /* the source's sentence when the last fetch failed; NULL: the model's */
	enum tt_health health;       /* with status */
};

/* The whole screen. m may be NULL (no sample yet). Tells the view the row
 * counts (tt_view_set_rows), so that keys move within what is shown. */
void tt_render(struct tt_canvas *c, const struct tt_model *m, struct tt_view *v,
               const struct tt_render_info *ri);

/* One batch-mode sample as plain text: the header, every type and every task
 * that the view's filters let through, in its sort order, `width` columns. */
int  tt_render_batch(FILE *f, const struct tt_model *m, struct tt_view *v, int width);

/* ---- for the screen_*.c files ---------------------------------------------- */

/* A rectangle of the canvas a screen may draw in. */
struct tt_area {
	int y, x, w, h;
};

int  tt_draw_header(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v,
                    const struct tt_render_info *ri);
void tt_draw_tabs(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v);
void tt_draw_keybar(struct tt_canvas *c, int y, const struct tt_view *v);

void tt_screen_types(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v);
void tt_screen_tasks(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v);
void tt_screen_detail(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v);
void tt_screen_crashes(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v);
void tt_screen_warnings(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v);
void tt_screen_help(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v);

/* Rows of the Tasks screen: indexes into m->tasks that pass the view's
 * filters, sorted by its column. *out is malloc'ed (NULL when n == 0 or out
 * of memory: then 0 rows). Returns the count. */
size_t tt_task_rows(const struct tt_model *m, const struct tt_view *v, size_t **out);

/* Rows of the Types screen: (workload index, type index) pairs, sorted. */
struct tt_type_ref {
	size_t w, t;
};
size_t tt_type_rows(const struct tt_model *m, const struct tt_view *v, struct tt_type_ref **out);

/* Batch mode: the info line, headings and every row from row y of a canvas
 * tall enough; returns the row after the last. */
int  tt_tasks_batch(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v);
int  tt_types_batch(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v);

/* The column widths (0: hidden) the Tasks and Types tables use at a width. */
void tt_tasks_layout(const struct tt_model *m, const struct tt_view *v, int width, int widths[TT_TC_COUNT]);
void tt_types_layout(const struct tt_view *v, int width, int widths[TT_YC_COUNT]);

/* Table layout: columns that do not fit are dropped, lowest priority first
 * (never `keep`); then spare width goes to each column up to its preferred
 * width, and what is left to the `grow` column. width[i] = 0: hidden. */
struct tt_col {
	const char *head;
	int min, pref;
	int prio;          /* higher stays longer */
	bool right;        /* right-aligned (figures) */
};
void tt_layout(const struct tt_col *cols, int n, int width, int keep, int grow, int *widths);
/* The heading line; the sorted column (-1: none) in TT_SORTED. */
void tt_draw_colheads(struct tt_canvas *c, int y, int x, const struct tt_col *cols, int n,
                      const int *widths, int sorted, bool desc);
/* Cell i of a row: text cut to the column's width (a '~' marks the cut of a
 * name, figures are formatted to fit). Returns the x after the cell. */
int  tt_draw_cell(struct tt_canvas *c, int y, int x, const struct tt_col *col, int width,
                  enum tt_style st, const char *text);

/* Text screens (detail, help) write lines into a page as tall as they
 * need, then show the part the view scrolled to. */
struct tt_page {
	struct tt_canvas c;
	int y;             /* next line */
	bool ok;           /* the canvas could be made */
};
void tt_page_open(struct tt_page *p, int width);
/* One line; label (may be NULL) in the title style, padded to 16. */
void tt_page_line(struct tt_page *p, enum tt_style st, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A part of a line at column x of the current line (no newline). */
int  tt_page_put(struct tt_page *p, int x, enum tt_style st, const char *s);
void tt_page_newline(struct tt_page *p);
/* A crash: signal, address, the symbolized stack. */
void tt_page_crash(struct tt_page *p, const struct tt_crash *cr);
/* Copies the scrolled part into a, tells the view, frees the page. */
void tt_page_show(struct tt_page *p, struct tt_canvas *c, struct tt_area a, struct tt_view *v, enum tt_screen scr);

/* Formatting: every result fits in the width given (>= 3). */
void tt_fmt_count(char *buf, size_t cap, uint64_t v, int width);
void tt_fmt_rate(char *buf, size_t cap, double per_s, bool valid, int width);
void tt_fmt_dur(char *buf, size_t cap, uint64_t ns);          /* at most 6 characters */
void tt_fmt_pct(char *buf, size_t cap, double pct, bool valid);   /* at most 5 */
void tt_fmt_bytes(char *buf, size_t cap, uint64_t bytes);
void tt_fmt_time(char *buf, size_t cap, uint64_t unix_ns, bool with_date);   /* local time */
/* A name from the data, escaped when flagged. */
void tt_disp(char *buf, size_t cap, const char *s, unsigned flags);
/* "comm:pid" in at most width characters, the pid kept whole. */
void tt_fmt_workload(char *buf, size_t cap, const struct tt_model *m, pid_t pid, int width);
/* Warning bits as letters (Y starved S ...), "" for none. */
void tt_fmt_warn(char *buf, size_t cap, unsigned warnings);

/* The switches of a task as the screens show them; false when not known. */
bool tt_task_switches(const struct tt_task *t, uint64_t *vol, uint64_t *invol);
const char *tt_health_name(enum tt_health h);

#endif
