/* Task detail (Enter on a task, crash or warning): where its time went,
 * latency and run-time histograms of its type, restarts, how it ended, and
 * its crash. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "screen.h"

#define BAR_MAX 40

static int bar_width(const struct tt_page *p)
{
	int w = p->c.w - 30;
	return w > BAR_MAX ? BAR_MAX : w < 10 ? 10 : w;
}

static void pct_bar(struct tt_page *p, const struct tt_task *t)
{
	int w = bar_width(p);
	double runq = t->runq_known ? t->runq_pct : 0, blocked = t->runq_known ? t->blocked_pct : 0;
	double total = t->runq_known ? t->cpu_pct + runq + blocked : 100;
	if (total <= 0)
		total = 100;
	int busy = (int)lround(t->cpu_pct / total * w), sched = (int)lround(runq / total * w);
	if (busy > w)
		busy = w;
	if (busy + sched > w)
		sched = w - busy;
	int x = tt_page_put(p, 2, TT_NORMAL, "[");
	tt_canvas_fill(&p->c, p->y, x, busy, '#', TT_BAR);
	tt_canvas_fill(&p->c, p->y, x + busy, sched, '=', TT_WARN);
	tt_canvas_fill(&p->c, p->y, x + busy + sched, w - busy - sched, '.', TT_DIM);
	x = tt_page_put(p, x + w, TT_NORMAL, "]");
	char line[96], b[8], s[8], i[8];
	tt_fmt_pct(b, sizeof(b), t->cpu_pct, true);
	tt_fmt_pct(s, sizeof(s), t->runq_pct, true);
	tt_fmt_pct(i, sizeof(i), t->blocked_pct, true);
	if (t->runq_known)
		snprintf(line, sizeof(line), " busy %s%%  sched %s%%  idle %s%%", b, s, i);
	else
		snprintf(line, sizeof(line), " busy %s%%  (sched and idle need the kernel's figures)", b);
	tt_page_put(p, x, TT_NORMAL, line);
	tt_page_newline(p);
}

static void busy_sched_idle(struct tt_page *p, const struct tt_task *t)
{
	char a[16], b[16], c[16];
	if (t->pct_basis == TT_PCT_NONE)
		tt_page_line(p, TT_DIM, "Busy/Sched/Idle", "not known (%s)",
		             t->state == TT_ST_RUNNING ? "needs /proc of the workload, or a second sample"
		                                       : "needs the collector's kernel figures");
	else
		tt_page_line(p, TT_NORMAL, "Busy/Sched/Idle", "%s",
		             t->pct_basis == TT_PCT_INTERVAL ? "over the last interval" : "over its run");
	if (t->pct_basis != TT_PCT_NONE)
		pct_bar(p, t);
	if (t->k.present && t->k.ended) {
		tt_fmt_dur(a, sizeof(a), t->k.oncpu_ns);
		tt_fmt_dur(b, sizeof(b), t->k.runq_ns);
		tt_fmt_dur(c, sizeof(c), t->k.blocked_ns);
		tt_page_line(p, TT_NORMAL, "  kernel totals", "on CPU %s, run queue %s, blocked %s", a, b, c);
	}
	if (t->lib_cpu_ns) {
		tt_fmt_dur(a, sizeof(a), t->lib_cpu_ns);
		tt_page_line(p, TT_NORMAL, "  library", "on CPU %s (the body's thread CPU time)", a);
	}
	if (t->live_cpu_ns) {
		tt_fmt_dur(a, sizeof(a), t->live_cpu_ns);
		tt_page_line(p, TT_NORMAL, "  seen running", "on CPU %s", a);
	}
	uint64_t vol, invol;
	if (tt_task_switches(t, &vol, &invol))
		tt_page_line(p, TT_NORMAL, "Switches", "voluntary %" PRIu64 ", involuntary %" PRIu64 ", migrations %" PRIu64,
		             vol, invol, t->k.migrations);
	else
		tt_page_line(p, TT_DIM, "Switches", "not known");
}

/* Quantiles as bars on a log scale: each doubling of the value is a step. */
static void quantile_bars(struct tt_page *p, const char *title, const struct tt_hist *h)
{
	char v[16];
	if (!h->present || h->count == 0) {
		tt_page_line(p, TT_DIM, title, "no samples");
		return;
	}
	tt_page_line(p, TT_NORMAL, title, "%" PRIu64 " samples", h->count);
	const char *names[] = { "p50", "p95", "p99", "max" };
	uint64_t vals[] = { h->p50_ns, h->p95_ns, h->p99_ns, h->max_ns };
	double lo = vals[0] > 4 ? log2((double)vals[0]) - 2 : 0, hi = vals[3] > 1 ? log2((double)vals[3]) : 1;
	int w = bar_width(p);
	for (int i = 0; i < 4; i++) {
		double f = hi > lo && vals[i] > 0 ? (log2((double)vals[i]) - lo) / (hi - lo) : 1;
		int n = (int)lround((f < 0 ? 0 : f > 1 ? 1 : f) * w);
		tt_fmt_dur(v, sizeof(v), vals[i]);
		int x = tt_page_put(p, 4, TT_NORMAL, names[i]);
		tt_canvas_fill(&p->c, p->y, x + 1, n > 0 ? n : 1, '#', TT_BAR);
		tt_canvas_put(&p->c, p->y, x + 2 + w, -1, TT_NORMAL, v);
		tt_page_newline(p);
	}
}

/* The whole log-linear histogram (standalone only), one row per power of two. */
static void bucket_bars(struct tt_page *p, const struct tt_hist *h)
{
	uint64_t groups[TM_HIST_BUCKETS / TM_HIST_SUB] = { 0 }, max = 0;
	int first = -1, last = -1, ng = (int)(TM_HIST_BUCKETS / TM_HIST_SUB);
	for (int b = 0; b < (int)TM_HIST_BUCKETS; b++)
		groups[b / TM_HIST_SUB] += h->buckets[b];
	for (int g = 0; g < ng; g++) {
		if (!groups[g])
			continue;
		if (first < 0)
			first = g;
		last = g;
		if (groups[g] > max)
			max = groups[g];
	}
	if (first < 0)
		return;
	int w = bar_width(p);
	for (int g = first; g <= last; g++) {
		char lo[16], hi[16], line[48];
		tt_fmt_dur(lo, sizeof(lo), tm_hist_bucket_low((unsigned)(g * TM_HIST_SUB)));
		tt_fmt_dur(hi, sizeof(hi), g + 1 < ng ? tm_hist_bucket_low((unsigned)((g + 1) * TM_HIST_SUB)) : 0);
		snprintf(line, sizeof(line), "%6s-%-6s", lo, g + 1 < ng ? hi : "");
		int x = tt_page_put(p, 4, TT_NORMAL, line);
		int n = (int)((groups[g] * (uint64_t)w + max - 1) / max);
		tt_canvas_fill(&p->c, p->y, x + 1, n, '#', TT_BAR);
		snprintf(line, sizeof(line), "%" PRIu64, groups[g]);
		tt_canvas_put(&p->c, p->y, x + 2 + w, -1, TT_NORMAL, line);
		tt_page_newline(p);
	}
}

static void histograms(struct tt_page *p, const struct tt_model *m, const struct tt_task *t)
{
	char v[16], q[16], title[TT_NAME_CAP * 4 + 40], name[TT_NAME_CAP * 4];
	if (t->k.spawn_latency_known) {
		tt_fmt_dur(v, sizeof(v), t->k.spawn_latency_ns);
		tt_fmt_dur(q, sizeof(q), t->k.spawn_runq_ns);
		tt_page_line(p, TT_NORMAL, "Spawn latency", "%s (of it waiting for a CPU: %s)", v, q);
	} else {
		tt_page_line(p, TT_DIM, "Spawn latency", "not seen by the kernel");
	}
	const struct tt_workload *w = t->widx < m->nworkloads ? &m->workloads[t->widx] : NULL;
	const struct tt_type *ty = w && t->type >= 0 ? tt_workload_find_type(w, t->type) : NULL;
	if (!ty)
		return;
	tt_disp(name, sizeof(name), ty->name.s, ty->name.flags);
	if (ty->k.present && ty->k.spawn_latency.present && ty->k.spawn_latency.count) {
		snprintf(title, sizeof(title), "Spawn latency of type %s (kernel)", name);
		tt_page_line(p, TT_TITLE, NULL, "%s", title);
		quantile_bars(p, "", &ty->k.spawn_latency);
	} else {
		snprintf(title, sizeof(title), "Spawn latency of type %s (library)", name);
		tt_page_line(p, TT_TITLE, NULL, "%s", title);
		if (ty->lib_latency.buckets)
			bucket_bars(p, &ty->lib_latency);
		else
			quantile_bars(p, "", &ty->lib_latency);
	}
	snprintf(title, sizeof(title), "Run time of type %s (on CPU per task)", name);
	tt_page_line(p, TT_TITLE, NULL, "%s", title);
	if (ty->k.present && ty->k.run_time.present)
		quantile_bars(p, "", &ty->k.run_time);
	else
		tt_page_line(p, TT_DIM, "", "needs the collector's kernel figures");
}

/* The kernel side's restart events: when, which attempt, after what delay.
 * Their times are monotonic; shown as wall-clock times through the sample's
 * pair of clocks. */
static void restart_delays(struct tt_page *p, const struct tt_model *m, const struct tt_task *t)
{
	char when[32], delay[16];
	tt_page_line(p, TT_NORMAL, "Restarts", "%" PRIu32 " (the last %u with their delays)", t->restarts,
	             (unsigned)t->nrestart_delays);
	for (int i = 0; i < t->nrestart_delays && i < TT_RESTART_HIST_N; i++) {
		const struct tt_restart_delay *r = &t->restart_delays[i];
		if (m->now_unix_ns && m->now_ns >= r->at_ns && m->now_ns - r->at_ns <= m->now_unix_ns)
			tt_fmt_time(when, sizeof(when), m->now_unix_ns - (m->now_ns - r->at_ns), false);
		else
			snprintf(when, sizeof(when), "-");
		tt_fmt_dur(delay, sizeof(delay), r->delay_ms > UINT64_MAX / 1000000 ? UINT64_MAX : r->delay_ms * 1000000);
		tt_page_line(p, TT_NORMAL, "", "%s  attempt %" PRIu64 ", after %s%s", when, r->attempt,
		             r->delay_ms ? "a delay of " : "", r->delay_ms ? delay : "no delay");
	}
}

static void restarts(struct tt_page *p, const struct tt_model *m, const struct tt_task *t)
{
	char when[32];
	int seen = 0;
	if (t->nrestart_delays) {
		restart_delays(p, m, t);
		return;
	}
	for (int i = 0; i < t->nrestart_hist && i < TT_RESTART_HIST_N; i++)
		seen += t->restart_hist[i].restarts > 0;
	tt_page_line(p, TT_NORMAL, "Restarts", "%" PRIu32 "%s", t->restarts,
	             !seen ? "" : t->restart_delays_known ? " (seen growing at)"
	                                                  : " (seen growing at; this source does not report the delays)");
	for (int i = 0; i < t->nrestart_hist && i < TT_RESTART_HIST_N; i++) {
		if (!t->restart_hist[i].restarts)
			continue;
		tt_fmt_time(when, sizeof(when), t->restart_hist[i].seen_unix_ns, false);
		tt_page_line(p, TT_NORMAL, "", "%s  %" PRIu32 " restarts", when, t->restart_hist[i].restarts);
	}
}

/* A message escaped, wrapped over as many lines as it takes beside its label:
 * a panic message is read whole, not cut at the screen's edge. */
static void message_lines(struct tt_page *p, const char *label, const char *raw)
{
	char msg[TT_MESSAGE_CAP * 4];
	size_t n = tt_escape(raw, msg, sizeof(msg));
	size_t w = p->c.w > 16 + 20 ? (size_t)p->c.w - 16 : 20;
	for (size_t at = 0; at < n || at == 0; at += w) {
		char part[TT_MESSAGE_CAP * 4];
		size_t k = n - at < w ? n - at : w;
		memcpy(part, msg + at, k);
		part[k] = '\0';
		tt_page_line(p, TT_BAD, at ? "" : label, "%s", part);
		if (!n)
			break;
	}
}

static void ending(struct tt_page *p, const struct tt_task *t)
{
	if (!t->finished) {
		tt_page_line(p, TT_NORMAL, "Status", "%s", t->pending ? "pending (not started)" : "running");
		if (t->panic_message)   /* a critical task: what its latest panicked run said */
			message_lines(p, "Last panic", t->panic_message);
		return;
	}
	enum tt_style st = t->state == TT_ST_SUCCEEDED ? TT_GOOD : t->state == TT_ST_CANCELLED ? TT_NORMAL : TT_BAD;
	tt_page_line(p, st, "Last status", "%s, rc %d", tt_state_name(t->state), t->rc);
	if (t->state == TT_ST_PANICKED) {
		if (t->panic_message) {
			message_lines(p, "Panic message", t->panic_message);
		} else {
			tt_page_line(p, TT_DIM, "Panic message", "not available (the workload's message ring no longer holds it)");
		}
	} else if (t->state == TT_ST_CRASHED && t->panic_message) {
		message_lines(p, "Fault", t->panic_message);
	}
}

static void crash(struct tt_page *p, const struct tt_crash *cr)
{
	char comm[TT_COMM_CAP * 4], buf[TT_PATH_CAP * 4 + TT_NAME_CAP * 8];
	tt_disp(comm, sizeof(comm), cr->thread.s, cr->thread.flags);
	tt_page_line(p, TT_BAD, "Crash", "%s%s%s (signal %d, code %d) in thread %s (tid %" PRIu32 ")",
	             cr->signal[0] ? cr->signal : "signal", cr->code[0] ? " " : "", cr->code, cr->signo, cr->si_code,
	             comm, cr->tid);
	tt_page_line(p, TT_NORMAL, "Time", "%s", cr->time[0] ? cr->time : "-");
	if (cr->fault_addr_known)
		tt_page_line(p, TT_NORMAL, "Fault address", "0x%" PRIx64, cr->fault_addr);
	if (cr->stack_error)
		tt_page_line(p, TT_DIM, "Stack", "not captured (error %d)", cr->stack_error);
	for (size_t i = 0; i < cr->nframes; i++) {
		const struct tt_frame *f = &cr->frames[i];
		size_t n = (size_t)snprintf(buf, sizeof(buf), "#%-2zu 0x%016" PRIx64, i, f->addr);
		char sym[TT_NAME_CAP * 8], mod[TT_PATH_CAP * 4];
		tt_disp(sym, sizeof(sym), f->symbol, f->flags);
		tt_disp(mod, sizeof(mod), f->module, f->flags);
		if (sym[0])
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s", sym);
		if (sym[0] && f->symbol_offset_known && n < sizeof(buf))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "+0x%" PRIx64, f->symbol_offset);
		if (mod[0] && n < sizeof(buf))
			snprintf(buf + n, sizeof(buf) - n, " (%s)", mod);
		tt_page_line(p, TT_NORMAL, "", "%s", buf);
	}
	if (cr->frames_dropped)
		tt_page_line(p, TT_DIM, "", "... %" PRIu64 " more frames", cr->frames_dropped);
}

static void task_head(struct tt_page *p, const struct tt_model *m, const struct tt_task *t)
{
	char name[TT_NAME_CAP * 4], type[TT_NAME_CAP * 4], wl[TT_COMM_CAP * 4 + 16], age[16], run[16];
	tt_disp(name, sizeof(name), t->name.s, t->name.flags);
	tt_disp(type, sizeof(type), t->type_name.s[0] ? t->type_name.s : "?", t->type_name.flags);
	tt_fmt_workload(wl, sizeof(wl), m, t->pid, (int)sizeof(wl) - 1);
	tt_page_line(p, TT_TITLE, "Task", "%" PRIu64 " %s", t->id, name);
	tt_page_line(p, TT_NORMAL, "Workload", "%s", wl);
	tt_page_line(p, TT_NORMAL, "Type", "%s (id %d)", type, t->type);
	tt_fmt_dur(age, sizeof(age), t->age_ns);
	tt_fmt_dur(run, sizeof(run), t->run_ns);
	tt_page_line(p, TT_NORMAL, "State", "%s, age %s, ran %s, thread %" PRIu32 ", incarnations %" PRIu64,
	             t->pending ? "pending" : tt_state_name(t->state), age, t->start_ns ? run : "-", t->tid,
	             t->k.incarnations);
}

static void warnings(struct tt_page *p, const struct tt_model *m, pid_t pid, uint64_t id)
{
	for (size_t i = 0; i < m->nwarnings; i++) {
		const struct tt_warning *w = &m->warnings[i];
		if (w->pid == pid && w->task_id == id)
			tt_page_line(p, TT_WARN, "Warning", "%s: %s", tt_warn_kind_name(w->kind), w->text);
	}
}

void tt_screen_detail(struct tt_canvas *c, struct tt_area a, const struct tt_model *m, struct tt_view *v)
{
	struct tt_page p;
	tt_page_open(&p, a.w);
	pid_t pid = v->detail.pid;
	uint64_t id = v->detail.id;
	size_t ti = m && v->detail_valid ? tt_model_find_task(m, pid, id) : SIZE_MAX;
	if (!m || !v->detail_valid) {
		tt_page_line(&p, TT_DIM, NULL, "No task chosen: select one on the Tasks screen and press Enter.");
	} else if (ti == SIZE_MAX) {
		tt_page_line(&p, TT_TITLE, "Task", "%" PRIu64 " of pid %d", id, (int)pid);
		tt_page_line(&p, TT_DIM, NULL, "Not in this sample (finished and dropped, or not listed).");
	} else {
		const struct tt_task *t = &m->tasks[ti];
		task_head(&p, m, t);
		ending(&p, t);
		busy_sched_idle(&p, t);
		restarts(&p, m, t);
		histograms(&p, m, t);
	}
	for (size_t i = 0; m && v->detail_valid && i < m->ncrashes; i++) {
		const struct tt_crash *cr = &m->crashes[m->ncrashes - 1 - i];
		if (cr->pid == pid && cr->task_known && cr->task_id == id)
			crash(&p, cr);
	}
	if (m && v->detail_valid)
		warnings(&p, m, pid, id);
	tt_page_show(&p, c, a, v, TT_SCR_DETAIL);
}

void tt_page_crash(struct tt_page *p, const struct tt_crash *cr)
{
	crash(p, cr);
}
