/* What the user looks at and how: screen, selection, scroll, sort, filters,
 * pause, an open prompt. Keys change it through view_key(), a pure function
 * of the view and the key (no terminal, no model), so every key is testable.
 *
 * The renderer tells the view how many rows the current list has and how
 * many fit (tt_view_set_rows); the selection is kept by identity across
 * refreshes (sel_key), by index while the user moves it.
 */
#ifndef TT_VIEW_H
#define TT_VIEW_H

#include <stdbool.h>
#include <stdint.h>

enum tt_screen {
	TT_SCR_TYPES,
	TT_SCR_TASKS,
	TT_SCR_DETAIL,
	TT_SCR_CRASHES,
	TT_SCR_WARNINGS,
	TT_SCR_HELP,
	TT_SCR_COUNT
};

/* Tasks screen columns, in display order; every one sorts. */
enum tt_task_col {
	TT_TC_ID, TT_TC_WORKLOAD, TT_TC_NAME, TT_TC_TYPE, TT_TC_STATE, TT_TC_AGE,
	TT_TC_CPU, TT_TC_RUNQ, TT_TC_BLOCKED, TT_TC_VCSW, TT_TC_IVCSW, TT_TC_RESTARTS,
	TT_TC_WARN, TT_TC_COUNT
};

/* Types screen columns. */
enum tt_type_col {
	TT_YC_WORKLOAD, TT_YC_TYPE, TT_YC_RUNNING, TT_YC_SPAWNED, TT_YC_RATE, TT_YC_SUCCEEDED, TT_YC_FAILED,
	TT_YC_PANICKED, TT_YC_CANCELLED, TT_YC_TIMED_OUT, TT_YC_RESTARTS, TT_YC_P50,
	TT_YC_P99, TT_YC_CPU, TT_YC_COUNT
};

/* State filter values, cycled with S. */
enum tt_state_filter {
	TT_SF_ALL, TT_SF_RUNNING, TT_SF_SUCCEEDED, TT_SF_FAILED, TT_SF_PANICKED,
	TT_SF_CANCELLED, TT_SF_TIMED_OUT, TT_SF_CRASHED, TT_SF_ENDED_BADLY, TT_SF_COUNT
};

enum tt_prompt {
	TT_PROMPT_NONE,
	TT_PROMPT_FILTER,   /* "/": text in name, type or workload */
	TT_PROMPT_TYPE,     /* "t": type name */
	TT_PROMPT_JUMP,     /* ":" in replay: a time */
};

/* What the caller must do after a key. */
enum tt_action {
	TT_ACT_NONE,        /* nothing changed */
	TT_ACT_REDRAW,      /* the view changed: draw again from the same data */
	TT_ACT_QUIT,
	TT_ACT_STEP,        /* replay: move by view.step records */
	TT_ACT_JUMP,        /* replay: go to the time in view.jump */
	TT_ACT_PAUSE,       /* pause toggled (view.paused) */
};

#define TT_TEXT_MAX 64

/* Identity of a selected row: a task (pid, id) or a type (pid, type id). */
struct tt_row_key {
	int32_t pid;
	uint64_t id;
};

struct tt_list_pos {
	int sel;              /* selected row index */
	int top;              /* first row shown */
	int rows;             /* rows in the list, from the renderer */
	int page;             /* rows that fit, from the renderer */
	bool key_valid;       /* sel_key names the selection (false: sel does) */
	struct tt_row_key key;
};

struct tt_view {
	enum tt_screen screen;
	enum tt_screen back;          /* where Esc returns from detail and help */
	struct tt_list_pos pos[TT_SCR_COUNT];
	int task_sort;                /* enum tt_task_col */
	bool task_desc;
	int type_sort;                /* enum tt_type_col */
	bool type_desc;
	char filter[TT_TEXT_MAX];     /* "" = none */
	char type_filter[TT_TEXT_MAX];
	int state_filter;             /* enum tt_state_filter */
	bool running_only;
	bool paused;
	bool replay;                  /* ←/→, [ ], : step and jump */
	bool batch;                   /* text output: names are never cut */
	enum tt_prompt prompt;
	char edit[TT_TEXT_MAX];       /* prompt text being typed */
	char saved[TT_TEXT_MAX];      /* the value before the prompt, for Esc */
	int step;                     /* TT_ACT_STEP: records, negative = back */
	char jump[TT_TEXT_MAX];       /* TT_ACT_JUMP: the time typed */
	/* Detail screen: the task shown, fixed when it opened. */
	struct tt_row_key detail;
	bool detail_valid;
	/* Tasks of one type of one workload (Enter on Types): pid, type id. */
	struct tt_row_key type_key;
	bool type_key_on;
};

/* Keys beyond ASCII: curses' values for function and cursor keys are
 * translated to these by the terminal module, so that the view needs no
 * curses header. */
enum tt_key {
	TT_KEY_UP = 0x1000, TT_KEY_DOWN, TT_KEY_LEFT, TT_KEY_RIGHT,
	TT_KEY_PGUP, TT_KEY_PGDN, TT_KEY_HOME, TT_KEY_END,
	TT_KEY_ENTER, TT_KEY_ESC, TT_KEY_BACKSPACE, TT_KEY_TAB, TT_KEY_BTAB,
	TT_KEY_F1,   /* F1..F10 are TT_KEY_F1 + 0..9 */
	TT_KEY_RESIZE = TT_KEY_F1 + 16,
};
#define TT_KEY_F(n) (TT_KEY_F1 + (n) - 1)

void tt_view_init(struct tt_view *v, bool replay);
enum tt_action tt_view_key(struct tt_view *v, int key);

/* The renderer's part: the list now has `rows` rows of which `page` fit;
 * `keys` gives each row's identity (may be NULL). Resolves the selection
 * (by identity when it is known and still listed), clamps it and the scroll. */
void tt_view_set_rows(struct tt_view *v, enum tt_screen scr, int rows, int page,
                      const struct tt_row_key *keys);

/* What a jump prompt asked for: an absolute time, a time relative to the
 * record shown, or a record number. */
enum tt_jump_kind { TT_JUMP_BAD = -1, TT_JUMP_TIME = 1, TT_JUMP_INDEX = 2 };
/* "HH:MM[:SS]" (local time, on the day of cur_unix_ns), "+30s", "-5m",
 * "+2h", "-1d" (relative to cur_unix_ns), "#N" (record N, from 1).
 * Sets *unix_ns or *index (0-based). */
enum tt_jump_kind tt_parse_jump(const char *text, uint64_t cur_unix_ns, uint64_t *unix_ns, long *index);

const char *tt_screen_name(enum tt_screen s);
const char *tt_task_col_name(int col);
const char *tt_type_col_name(int col);
const char *tt_state_filter_name(int sf);

#endif
