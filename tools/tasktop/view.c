/* View state and keys: see view.h. Nothing here knows curses or the model. */
#include "view.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const screen_names[TT_SCR_COUNT] = {
	"Types", "Tasks", "Detail", "Crashes", "Warnings", "Help",
};
static const char *const task_cols[TT_TC_COUNT] = {
	"ID", "WORKLOAD", "NAME", "TYPE", "STATE", "AGE", "CPU%", "RUNQ%", "BLK%",
	"VCSW", "IVCSW", "RST", "WARN",
};
static const char *const type_cols[TT_YC_COUNT] = {
	"WORKLOAD", "TYPE", "RUN", "SPAWNED", "SPWN/S", "OK", "FAIL", "PANIC", "CNCL", "TMOUT",
	"RST", "P50", "P99", "CPU%",
};
static const char *const state_filters[TT_SF_COUNT] = {
	"all", "running", "succeeded", "failed", "panicked", "cancelled", "timed_out", "crashed", "ended badly",
};

const char *tt_screen_name(enum tt_screen s)
{
	return (unsigned)s < TT_SCR_COUNT ? screen_names[s] : "?";
}

const char *tt_task_col_name(int col)
{
	return (unsigned)col < TT_TC_COUNT ? task_cols[col] : "?";
}

const char *tt_type_col_name(int col)
{
	return (unsigned)col < TT_YC_COUNT ? type_cols[col] : "?";
}

const char *tt_state_filter_name(int sf)
{
	return (unsigned)sf < TT_SF_COUNT ? state_filters[sf] : "?";
}

void tt_view_init(struct tt_view *v, bool replay)
{
	memset(v, 0, sizeof(*v));
	v->screen = TT_SCR_TASKS;
	v->back = TT_SCR_TASKS;
	v->task_sort = TT_TC_CPU;
	v->task_desc = true;
	v->type_sort = TT_YC_WORKLOAD;
	v->replay = replay;
}

/* Text columns sort ascending when chosen, figures descending (largest first). */
static bool task_col_is_text(int col)
{
	return col == TT_TC_WORKLOAD || col == TT_TC_NAME || col == TT_TC_TYPE || col == TT_TC_STATE ||
	       col == TT_TC_ID;
}

static bool type_col_is_text(int col)
{
	return col == TT_YC_WORKLOAD || col == TT_YC_TYPE;
}

/* The screen whose sort the keys change: Types on Types, Tasks elsewhere. */
static enum tt_action move_sort(struct tt_view *v, int delta)
{
	if (v->screen == TT_SCR_TYPES) {
		v->type_sort = (v->type_sort + delta + TT_YC_COUNT) % TT_YC_COUNT;
		v->type_desc = !type_col_is_text(v->type_sort);
	} else {
		v->task_sort = (v->task_sort + delta + TT_TC_COUNT) % TT_TC_COUNT;
		v->task_desc = !task_col_is_text(v->task_sort);
	}
	return TT_ACT_REDRAW;
}

static enum tt_action invert_sort(struct tt_view *v)
{
	if (v->screen == TT_SCR_TYPES)
		v->type_desc = !v->type_desc;
	else
		v->task_desc = !v->task_desc;
	return TT_ACT_REDRAW;
}

static enum tt_action go_screen(struct tt_view *v, enum tt_screen s)
{
	if (s == v->screen)
		return TT_ACT_NONE;
	if (s == TT_SCR_DETAIL && v->pos[TT_SCR_TASKS].key_valid && (v->screen == TT_SCR_TASKS || !v->detail_valid)) {
		/* From the menu: the task selected on the Tasks screen (from
		 * elsewhere, the one shown last, when there is one). */
		v->detail_valid = true;
		v->detail = v->pos[TT_SCR_TASKS].key;
		v->pos[TT_SCR_DETAIL].top = 0;
	}
	if (s == TT_SCR_DETAIL || s == TT_SCR_HELP) {
		if (v->screen != TT_SCR_DETAIL && v->screen != TT_SCR_HELP)
			v->back = v->screen;
	}
	v->screen = s;
	return TT_ACT_REDRAW;
}

static enum tt_action move_sel(struct tt_view *v, int delta, bool absolute)
{
	struct tt_list_pos *p = &v->pos[v->screen];
	int before = p->sel, top = p->top;
	int page = p->page > 0 ? p->page : 1;
	if (v->screen == TT_SCR_DETAIL || v->screen == TT_SCR_HELP) {
		/* Text screens scroll instead of selecting. */
		int max = p->rows - page;
		p->top = absolute ? (delta < 0 ? 0 : max) : p->top + delta;
		if (p->top > max)
			p->top = max;
		if (p->top < 0)
			p->top = 0;
		return p->top != top ? TT_ACT_REDRAW : TT_ACT_NONE;
	}
	if (absolute)
		p->sel = delta < 0 ? 0 : p->rows - 1;
	else
		p->sel += delta;
	if (p->sel >= p->rows)
		p->sel = p->rows - 1;
	if (p->sel < 0)
		p->sel = 0;
	if (p->sel < p->top)
		p->top = p->sel;
	if (p->sel >= p->top + page)
		p->top = p->sel - page + 1;
	if (p->sel == before && p->top == top)
		return TT_ACT_NONE;
	p->key_valid = false;   /* the index names the selection until the next draw */
	return TT_ACT_REDRAW;
}

static void open_prompt(struct tt_view *v, enum tt_prompt pr, const char *current)
{
	v->prompt = pr;
	snprintf(v->saved, sizeof(v->saved), "%s", current);
	snprintf(v->edit, sizeof(v->edit), "%s", current);
}

/* The filter a prompt edits live, NULL for the jump prompt. */
static char *prompt_target(struct tt_view *v)
{
	if (v->prompt == TT_PROMPT_FILTER)
		return v->filter;
	if (v->prompt == TT_PROMPT_TYPE)
		return v->type_filter;
	return NULL;
}

static enum tt_action prompt_key(struct tt_view *v, int key)
{
	char *target = prompt_target(v);
	size_t len = strlen(v->edit);
	if (key == TT_KEY_ESC) {
		if (target)
			snprintf(target, TT_TEXT_MAX, "%s", v->saved);
		v->prompt = TT_PROMPT_NONE;
		return TT_ACT_REDRAW;
	}
	if (key == TT_KEY_ENTER) {
		enum tt_prompt pr = v->prompt;
		v->prompt = TT_PROMPT_NONE;
		if (pr == TT_PROMPT_JUMP) {
			snprintf(v->jump, sizeof(v->jump), "%s", v->edit);
			return v->jump[0] ? TT_ACT_JUMP : TT_ACT_REDRAW;
		}
		return TT_ACT_REDRAW;
	}
	if (key == TT_KEY_BACKSPACE) {
		if (len == 0)
			return TT_ACT_NONE;
		v->edit[len - 1] = '\0';
	} else if (key >= 0x20 && key < 0x7f) {
		if (len + 1 >= sizeof(v->edit))
			return TT_ACT_NONE;
		v->edit[len] = (char)key;
		v->edit[len + 1] = '\0';
	} else {
		return TT_ACT_NONE;
	}
	if (target)
		snprintf(target, TT_TEXT_MAX, "%s", v->edit);   /* filters as the user types */
	return TT_ACT_REDRAW;
}

static enum tt_action enter_key(struct tt_view *v)
{
	struct tt_list_pos *p = &v->pos[v->screen];
	switch (v->screen) {
	case TT_SCR_TASKS:
	case TT_SCR_CRASHES:
	case TT_SCR_WARNINGS:
		/* The renderer keys crash and warning rows by their task. */
		if (p->rows <= 0 || !p->key_valid)
			return TT_ACT_NONE;
		v->detail_valid = true;
		v->detail = p->key;
		v->pos[TT_SCR_DETAIL].top = 0;
		v->back = v->screen;
		v->screen = TT_SCR_DETAIL;
		return TT_ACT_REDRAW;
	case TT_SCR_TYPES:
		/* The tasks of the selected type in its workload. */
		if (p->rows <= 0 || !p->key_valid)
			return TT_ACT_NONE;
		v->type_key_on = true;
		v->type_key = p->key;
		v->screen = TT_SCR_TASKS;
		return TT_ACT_REDRAW;
	default:
		return TT_ACT_NONE;
	}
}

static enum tt_action esc_key(struct tt_view *v)
{
	if (v->screen == TT_SCR_DETAIL || v->screen == TT_SCR_HELP) {
		v->screen = v->back;
		return TT_ACT_REDRAW;
	}
	if (v->screen == TT_SCR_TASKS &&
	    (v->filter[0] || v->type_filter[0] || v->type_key_on || v->state_filter || v->running_only)) {
		v->filter[0] = v->type_filter[0] = '\0';
		v->type_key_on = false;
		v->state_filter = TT_SF_ALL;
		v->running_only = false;
		return TT_ACT_REDRAW;
	}
	return TT_ACT_NONE;
}

static enum tt_action step(struct tt_view *v, int n)
{
	if (!v->replay)
		return TT_ACT_NONE;
	v->step = n;
	return TT_ACT_STEP;
}

static enum tt_action screen_key(struct tt_view *v, int key)
{
	if (key >= '1' && key <= '6')
		return go_screen(v, (enum tt_screen)(key - '1'));
	if (key >= TT_KEY_F(1) && key <= TT_KEY_F(6))
		return go_screen(v, (enum tt_screen)(key - TT_KEY_F(1)));
	if (key == TT_KEY_TAB || key == TT_KEY_BTAB) {
		/* Cycles through the list screens; help is left out. */
		int n = TT_SCR_COUNT - 1, d = key == TT_KEY_TAB ? 1 : n - 1;
		return go_screen(v, (enum tt_screen)((v->screen + d) % n));
	}
	if (key == 'h' || key == '?')
		return v->screen == TT_SCR_HELP ? (v->screen = v->back, TT_ACT_REDRAW) : go_screen(v, TT_SCR_HELP);
	return TT_ACT_NONE;
}

enum tt_action tt_view_key(struct tt_view *v, int key)
{
	if (v->prompt != TT_PROMPT_NONE)
		return prompt_key(v, key);
	struct tt_list_pos *p = &v->pos[v->screen];
	int page = p->page > 0 ? p->page : 1;
	switch (key) {
	case 'q': case 'Q': case TT_KEY_F(10):
		return TT_ACT_QUIT;
	case TT_KEY_UP: case 'k':
		return move_sel(v, -1, false);
	case TT_KEY_DOWN: case 'j':
		return move_sel(v, 1, false);
	case TT_KEY_PGUP:
		return move_sel(v, -page, false);
	case TT_KEY_PGDN:
		return move_sel(v, page, false);
	case TT_KEY_HOME: case 'g':
		return move_sel(v, -1, true);
	case TT_KEY_END: case 'G':
		return move_sel(v, 1, true);
	case TT_KEY_ENTER:
		return enter_key(v);
	case TT_KEY_ESC:
		return esc_key(v);
	case 's': case '>':
		return move_sort(v, 1);
	case '<':
		return move_sort(v, -1);
	case 'i': case 'I':
		return invert_sort(v);
	case TT_KEY_LEFT:
		return v->replay ? step(v, -1) : move_sort(v, -1);
	case TT_KEY_RIGHT:
		return v->replay ? step(v, 1) : move_sort(v, 1);
	case '[':
		return step(v, -10);
	case ']':
		return step(v, 10);
	case ':':
		if (!v->replay)
			return TT_ACT_NONE;
		open_prompt(v, TT_PROMPT_JUMP, "");
		return TT_ACT_REDRAW;
	case '/':
		open_prompt(v, TT_PROMPT_FILTER, v->filter);
		if (v->screen != TT_SCR_TYPES)
			v->screen = TT_SCR_TASKS;
		return TT_ACT_REDRAW;
	case 't':
		open_prompt(v, TT_PROMPT_TYPE, v->type_filter);
		if (v->screen != TT_SCR_TYPES)
			v->screen = TT_SCR_TASKS;
		return TT_ACT_REDRAW;
	case 'S':
		v->state_filter = (v->state_filter + 1) % TT_SF_COUNT;
		return TT_ACT_REDRAW;
	case 'r':
		v->running_only = !v->running_only;
		return TT_ACT_REDRAW;
	case 'p': case ' ':
		v->paused = !v->paused;
		return TT_ACT_PAUSE;
	case TT_KEY_RESIZE:
		return TT_ACT_REDRAW;
	default:
		return screen_key(v, key);
	}
}

void tt_view_set_rows(struct tt_view *v, enum tt_screen scr, int rows, int page,
                      const struct tt_row_key *keys)
{
	struct tt_list_pos *p = &v->pos[scr];
	p->rows = rows < 0 ? 0 : rows;
	p->page = page < 1 ? 1 : page;
	if (keys && p->key_valid) {
		for (int i = 0; i < p->rows; i++) {
			if (keys[i].pid == p->key.pid && keys[i].id == p->key.id) {
				p->sel = i;
				break;
			}
		}
	}
	if (p->sel >= p->rows)
		p->sel = p->rows - 1;
	if (p->sel < 0)
		p->sel = 0;
	if (scr == TT_SCR_DETAIL || scr == TT_SCR_HELP) {
		/* Scrolled text: top only. */
		if (p->top > p->rows - p->page)
			p->top = p->rows - p->page;
	} else {
		if (p->sel < p->top)
			p->top = p->sel;
		if (p->sel >= p->top + p->page)
			p->top = p->sel - p->page + 1;
		if (p->top > p->rows - p->page)
			p->top = p->rows - p->page;
	}
	if (p->top < 0)
		p->top = 0;
	if (keys && p->rows > 0) {
		p->key = keys[p->sel];
		p->key_valid = true;
	} else if (p->rows == 0) {
		p->key_valid = false;
	}
}

static enum tt_jump_kind parse_relative(const char *text, uint64_t cur, uint64_t *unix_ns)
{
	char *end;
	errno = 0;
	long long n = strtoll(text + 1, &end, 10);
	if (errno || end == text + 1 || n < 0 || n > 366LL * 86400)
		return TT_JUMP_BAD;
	uint64_t unit = 1;
	switch (*end) {
	case '\0': case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return TT_JUMP_BAD;
	}
	if (*end && end[1])
		return TT_JUMP_BAD;
	uint64_t delta = (uint64_t)n * unit * 1000000000u;
	if (text[0] == '-')
		*unix_ns = delta > cur ? 0 : cur - delta;
	else
		*unix_ns = cur + delta;
	return TT_JUMP_TIME;
}

enum tt_jump_kind tt_parse_jump(const char *text, uint64_t cur_unix_ns, uint64_t *unix_ns, long *index)
{
	while (*text == ' ')
		text++;
	if (text[0] == '#') {
		char *end;
		errno = 0;
		long n = strtol(text + 1, &end, 10);
		if (errno || end == text + 1 || *end || n < 1)
			return TT_JUMP_BAD;
		*index = n - 1;
		return TT_JUMP_INDEX;
	}
	if (text[0] == '+' || text[0] == '-')
		return parse_relative(text, cur_unix_ns, unix_ns);
	int h, m, sec = 0, used = 0;
	if (sscanf(text, "%2d:%2d%n:%2d%n", &h, &m, &used, &sec, &used) < 2 || text[used] || h > 23 || m > 59 ||
	    sec > 59 || h < 0 || m < 0 || sec < 0)
		return TT_JUMP_BAD;
	time_t t = (time_t)(cur_unix_ns / 1000000000u);
	struct tm tm;
	if (!localtime_r(&t, &tm))
		return TT_JUMP_BAD;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	time_t at = mktime(&tm);
	if (at == (time_t)-1 || at < 0)
		return TT_JUMP_BAD;
	*unix_ns = (uint64_t)at * 1000000000u;
	return TT_JUMP_TIME;
}
