/* The top of every screen (source, machine figures, collector health), the
 * tab line, and the key bar or open prompt at the bottom. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "screen.h"

/* Label-value items laid out left to right, wrapping to the next row. */
struct flow {
	struct tt_canvas *c;
	int y, x;
};

static void flow_item(struct flow *f, const char *label, enum tt_style vst, const char *value)
{
	int need = (int)(strlen(label) + strlen(value)) + 2;
	if (f->x > 0 && f->x + need > f->c->w) {
		f->y++;
		f->x = 0;
	}
	f->x += tt_canvas_put(f->c, f->y, f->x, -1, TT_TITLE, label);
	f->x += tt_canvas_put(f->c, f->y, f->x, -1, TT_NORMAL, " ");
	f->x += tt_canvas_put(f->c, f->y, f->x, -1, vst, value);
	f->x += 3;
}

static void title_line(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v)
{
	char when[32], right[96] = "";
	int x = tt_canvas_put(c, y, 0, -1, TT_TITLE, "tasktop");
	if (!m)
		return;
	tt_fmt_time(when, sizeof(when), m->now_unix_ns, m->source == TT_SRC_REPLAY);
	tt_canvas_printf(c, y, x, -1, TT_NORMAL, "  %s  %s", tt_source_kind_name(m->source), when);
	if (m->source == TT_SRC_REPLAY && m->replay.count)
		snprintf(right, sizeof(right), "record %zu/%zu", m->replay.index + 1, m->replay.count);
	if (v->paused)
		snprintf(right + strlen(right), sizeof(right) - strlen(right), "%sPAUSED", right[0] ? "  " : "");
	tt_canvas_put_right(c, y, 0, c->w, v->paused ? TT_WARN : TT_NORMAL, right);
}

static void latency_text(char *buf, size_t cap, const struct tt_model *m)
{
	const struct tt_hist *h = &m->header_latency;
	char p50[16], p99[16];
	if (!h->present || h->count == 0) {
		snprintf(buf, cap, "-");
		return;
	}
	tt_fmt_dur(p50, sizeof(p50), h->p50_ns);
	tt_fmt_dur(p99, sizeof(p99), h->p99_ns);
	snprintf(buf, cap, "p50 %s p99 %s%s", p50, p99, m->header_latency_kernel ? "" : " (library)");
}

static void collector_text(char *buf, size_t cap, const struct tt_collector *co, bool *bad)
{
	char rate[16], cpu[16], rss[16];
	*bad = false;
	if (!co->present) {
		snprintf(buf, cap, "none");
		return;
	}
	*bad = co->rates_valid && co->lost_delta > 0;
	tt_fmt_rate(rate, sizeof(rate), co->events_per_s, co->rates_valid, 7);
	tt_fmt_pct(cpu, sizeof(cpu), co->cpu_pct, co->rates_valid && co->cpu_known);
	if (co->rss_bytes)
		tt_fmt_bytes(rss, sizeof(rss), co->rss_bytes);
	else
		snprintf(rss, sizeof(rss), "-");
	char lost[24];
	if (co->rates_valid)
		snprintf(lost, sizeof(lost), "%" PRIu64, co->lost_delta);
	else
		snprintf(lost, sizeof(lost), "-");
	snprintf(buf, cap, "lost %s/%" PRIu64 ", %s ev/s, CPU %s%%, RSS %s", lost, co->lost, rate, cpu, rss);
}

/* The source line: what the data is and how healthy. */
/* Returns the rows it took. */
static int status_line(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_render_info *ri)
{
	char line[TT_TEXT_CAP * 3], when[32], first[32], last[32];
	const char *status = ri && ri->status ? ri->status : m ? m->status : "waiting for data";
	enum tt_health h = ri && ri->status ? ri->health : m ? m->health : TT_HEALTH_NONE;
	size_t n = (size_t)snprintf(line, sizeof(line), "%s", status);
	if (m && !m->kernel_figures && m->kernel_off_reason[0] && !strstr(status, m->kernel_off_reason))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "; %s", m->kernel_off_reason);
	if (m && ri && ri->status) {
		tt_fmt_time(when, sizeof(when), m->now_unix_ns, false);
		n += (size_t)snprintf(line + n, sizeof(line) - n, "; showing %s", when);
	}
	if (m && m->source == TT_SRC_REPLAY && n < sizeof(line)) {
		tt_fmt_time(first, sizeof(first), m->replay.first_unix_ns, true);
		tt_fmt_time(last, sizeof(last), m->replay.last_unix_ns, true);
		n += (size_t)snprintf(line + n, sizeof(line) - n, "; record %zu of %zu, %s to %s", m->replay.index + 1,
		                      m->replay.count, first, last);
		if (m->replay.skipped && n < sizeof(line))
			snprintf(line + n, sizeof(line) - n, "; %zu lines skipped", m->replay.skipped);
	}
	enum tt_style st = h == TT_HEALTH_OK ? TT_GOOD : h == TT_HEALTH_DEGRADED ? TT_WARN : TT_BAD;
	/* Too long for one row: a second one, cut at a space, so that the
	 * reason (kernel figures off: why) stays readable at 80 columns. */
	int cut = (int)strlen(line);
	if (cut > c->w) {
		cut = c->w;
		while (cut > c->w / 2 && line[cut] != ' ')
			cut--;
		if (line[cut] != ' ')
			cut = c->w;
	}
	tt_canvas_put(c, y, 0, cut, st, line);
	if (line[cut] == '\0')
		return 1;
	tt_canvas_put(c, y + 1, 2, -1, st, line + cut + (line[cut] == ' '));
	return 2;
}

int tt_draw_header(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v,
                   const struct tt_render_info *ri)
{
	char buf[TT_TEXT_CAP];
	bool bad;
	title_line(c, y++, m, v);
	if (m) {
		struct flow f = { c, y, 0 };
		if (m->workloads_gone)
			snprintf(buf, sizeof(buf), "%" PRIu64 " live, %" PRIu64 " gone", m->workloads_live, m->workloads_gone);
		else
			snprintf(buf, sizeof(buf), "%" PRIu64 " live", m->workloads_live);
		flow_item(&f, "Workloads", TT_NORMAL, buf);
		snprintf(buf, sizeof(buf), "%" PRIu64, m->tasks_running);
		flow_item(&f, "Running", TT_NORMAL, buf);
		tt_fmt_rate(buf, sizeof(buf), m->spawned_per_s, m->interval_valid, 9);
		flow_item(&f, "Spawned/s", TT_NORMAL, buf);
		latency_text(buf, sizeof(buf), m);
		flow_item(&f, "Latency", TT_NORMAL, buf);
		if (m->interval_valid) {
			snprintf(buf, sizeof(buf), "%" PRIu64 " failed, %" PRIu64 " panicked, %" PRIu64 " timed out, %" PRIu64
			         " crashed", m->failed_delta, m->panicked_delta, m->timed_out_delta, m->crashed_delta);
			bad = m->failed_delta || m->panicked_delta || m->timed_out_delta || m->crashed_delta;
		} else {
			snprintf(buf, sizeof(buf), "-");
			bad = false;
		}
		flow_item(&f, "Interval", bad ? TT_BAD : TT_NORMAL, buf);
		collector_text(buf, sizeof(buf), &m->collector, &bad);
		flow_item(&f, "Collector", bad ? TT_BAD : TT_NORMAL, buf);
		y = f.y + 1;
	}
	return y + status_line(c, y, m, ri);
}

void tt_draw_tabs(struct tt_canvas *c, int y, const struct tt_model *m, const struct tt_view *v)
{
	int x = 0;
	for (int s = 0; s < TT_SCR_COUNT; s++) {
		char label[40];
		if (m && s == TT_SCR_CRASHES)
			snprintf(label, sizeof(label), "%d %s(%zu)", s + 1, tt_screen_name((enum tt_screen)s), m->ncrashes);
		else if (m && s == TT_SCR_WARNINGS)
			snprintf(label, sizeof(label), "%d %s(%zu)", s + 1, tt_screen_name((enum tt_screen)s), m->nwarnings);
		else
			snprintf(label, sizeof(label), "%d %s", s + 1, tt_screen_name((enum tt_screen)s));
		enum tt_style st = s == (int)v->screen ? TT_KEYLABEL : TT_NORMAL;
		if (s == TT_SCR_WARNINGS && m && m->nwarnings && st == TT_NORMAL)
			st = TT_WARN;
		x += tt_canvas_put(c, y, x, -1, st, label);
		x += 2;
	}
}

struct key_help {
	const char *key, *label;
};

static void keys(struct tt_canvas *c, int y, const struct key_help *k, size_t n, int *x)
{
	for (size_t i = 0; i < n && *x < c->w; i++) {
		*x += tt_canvas_put(c, y, *x, -1, TT_KEY, k[i].key);
		*x += tt_canvas_put(c, y, *x, -1, TT_KEYLABEL, k[i].label);
		*x += tt_canvas_put(c, y, *x, -1, TT_NORMAL, " ");
	}
}

static void prompt_line(struct tt_canvas *c, int y, const struct tt_view *v)
{
	const char *what = v->prompt == TT_PROMPT_FILTER ? "Filter (name, type, workload): "
	                 : v->prompt == TT_PROMPT_TYPE   ? "Type: "
	                                                 : "Jump to (HH:MM:SS, +30s, -5m, #record): ";
	int x = tt_canvas_put(c, y, 0, -1, TT_TITLE, what);
	x += tt_canvas_put(c, y, x, -1, TT_NORMAL, v->edit);
	tt_canvas_put(c, y, x, 1, TT_SELECTED, " ");   /* the cursor: curses' is hidden */
	tt_canvas_put_right(c, y, 0, c->w, TT_DIM, "Enter ok  Esc cancel");
}

void tt_draw_keybar(struct tt_canvas *c, int y, const struct tt_view *v)
{
	static const struct key_help list[] = {
		{ "Enter", "Detail" }, { "/", "Filter" }, { "t", "Type" }, { "s", "Sort" }, { "i", "Invert" },
		{ "S", "State" }, { "r", "Run" },
	};
	static const struct key_help text[] = { { "Esc", "Back" }, { "j/k", "Scroll" }, { "Tab", "Screen" } };
	static const struct key_help replay[] = { { "<-/->", "Step" }, { "[/]", "10" }, { ":", "Jump" } };
	static const struct key_help common[] = { { "p", "Pause" }, { "h", "Help" }, { "q", "Quit" } };
	if (v->prompt != TT_PROMPT_NONE) {
		prompt_line(c, y, v);
		return;
	}
	int x = 0;
	bool text_screen = v->screen == TT_SCR_DETAIL || v->screen == TT_SCR_HELP;
	/* Replay keys take the place of the filter keys that are also in help. */
	size_t nlist = v->replay ? 5 : sizeof(list) / sizeof(list[0]);
	if (text_screen)
		keys(c, y, text, sizeof(text) / sizeof(text[0]), &x);
	else
		keys(c, y, list, nlist, &x);
	if (v->replay)
		keys(c, y, replay, sizeof(replay) / sizeof(replay[0]), &x);
	keys(c, y, common, sizeof(common) / sizeof(common[0]), &x);
}
