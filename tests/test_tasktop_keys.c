/* tasktop's keys: tt_view_key is a pure function of the view and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "view.h"

static const struct tt_row_key rows5[5] = { { 10, 1 }, { 10, 2 }, { 10, 3 }, { 20, 1 }, { 20, 2 } };

static int setup(void **state)
{
	struct tt_view *v = calloc(1, sizeof(*v));
	assert_non_null(v);
	tt_view_init(v, false);
	*state = v;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static void type_text(struct tt_view *v, const char *s)
{
	for (; *s; s++)
		tt_view_key(v, (unsigned char)*s);
}

static void test_defaults(void **state)
{
	struct tt_view *v = *state;
	assert_int_equal(v->screen, TT_SCR_TASKS);
	assert_int_equal(v->task_sort, TT_TC_CPU);
	assert_true(v->task_desc);
	assert_false(v->paused);
	assert_int_equal(v->prompt, TT_PROMPT_NONE);
}

static void test_quit(void **state)
{
	struct tt_view *v = *state;
	assert_int_equal(tt_view_key(v, 'q'), TT_ACT_QUIT);
	assert_int_equal(tt_view_key(v, TT_KEY_F(10)), TT_ACT_QUIT);
	/* In a prompt, q is text. */
	tt_view_key(v, '/');
	assert_int_equal(tt_view_key(v, 'q'), TT_ACT_REDRAW);
	assert_string_equal(v->filter, "q");
}

static void test_moves(void **state)
{
	struct tt_view *v = *state;
	tt_view_set_rows(v, TT_SCR_TASKS, 5, 2, rows5);
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 0);
	assert_int_equal(tt_view_key(v, 'k'), TT_ACT_NONE);          /* already at the top */
	assert_int_equal(tt_view_key(v, 'j'), TT_ACT_REDRAW);
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 1);
	assert_int_equal(v->pos[TT_SCR_TASKS].top, 0);
	tt_view_key(v, TT_KEY_DOWN);
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 2);
	assert_int_equal(v->pos[TT_SCR_TASKS].top, 1);                /* scrolled: a page is 2 rows */
	tt_view_key(v, 'G');
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 4);
	assert_int_equal(v->pos[TT_SCR_TASKS].top, 3);
	assert_int_equal(tt_view_key(v, TT_KEY_END), TT_ACT_NONE);
	tt_view_key(v, TT_KEY_PGUP);
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 2);
	tt_view_key(v, 'g');
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 0);
	assert_int_equal(v->pos[TT_SCR_TASKS].top, 0);
	tt_view_key(v, TT_KEY_PGDN);
	tt_view_key(v, TT_KEY_PGDN);
	tt_view_key(v, TT_KEY_PGDN);
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 4);                /* clamped */
	tt_view_key(v, TT_KEY_UP);
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 3);
}

/* The selection follows its task when the rows change order or count. */
static void test_selection_follows_identity(void **state)
{
	struct tt_view *v = *state;
	tt_view_set_rows(v, TT_SCR_TASKS, 5, 10, rows5);
	tt_view_key(v, 'j');
	tt_view_key(v, 'j');
	tt_view_set_rows(v, TT_SCR_TASKS, 5, 10, rows5);              /* the draw names it: {10, 3} */
	const struct tt_row_key reordered[4] = { { 10, 3 }, { 20, 2 }, { 10, 1 }, { 20, 1 } };
	tt_view_set_rows(v, TT_SCR_TASKS, 4, 10, reordered);
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 0);
	assert_int_equal(v->pos[TT_SCR_TASKS].key.id, 3);
	/* Gone: the index stays, clamped. */
	const struct tt_row_key fewer[2] = { { 20, 2 }, { 10, 1 } };
	tt_view_key(v, 'j');
	tt_view_key(v, 'j');
	tt_view_key(v, 'j');
	tt_view_set_rows(v, TT_SCR_TASKS, 2, 10, fewer);
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 1);
	tt_view_set_rows(v, TT_SCR_TASKS, 0, 10, NULL);
	assert_int_equal(v->pos[TT_SCR_TASKS].sel, 0);
	assert_false(v->pos[TT_SCR_TASKS].key_valid);
}

static void test_screens(void **state)
{
	struct tt_view *v = *state;
	assert_int_equal(tt_view_key(v, '1'), TT_ACT_REDRAW);
	assert_int_equal(v->screen, TT_SCR_TYPES);
	tt_view_key(v, TT_KEY_F(4));
	assert_int_equal(v->screen, TT_SCR_CRASHES);
	tt_view_key(v, '5');
	assert_int_equal(v->screen, TT_SCR_WARNINGS);
	tt_view_key(v, TT_KEY_TAB);
	assert_int_equal(v->screen, TT_SCR_TYPES);                    /* help is not in the cycle */
	tt_view_key(v, TT_KEY_BTAB);
	assert_int_equal(v->screen, TT_SCR_WARNINGS);
	tt_view_key(v, 'h');
	assert_int_equal(v->screen, TT_SCR_HELP);
	tt_view_key(v, TT_KEY_ESC);
	assert_int_equal(v->screen, TT_SCR_WARNINGS);
	tt_view_key(v, '?');
	tt_view_key(v, '?');                                          /* toggles */
	assert_int_equal(v->screen, TT_SCR_WARNINGS);
	assert_int_equal(tt_view_key(v, '5'), TT_ACT_NONE);
}

static void test_enter_detail(void **state)
{
	struct tt_view *v = *state;
	assert_int_equal(tt_view_key(v, TT_KEY_ENTER), TT_ACT_NONE);  /* no rows yet */
	tt_view_set_rows(v, TT_SCR_TASKS, 5, 10, rows5);
	tt_view_key(v, 'G');
	tt_view_set_rows(v, TT_SCR_TASKS, 5, 10, rows5);
	assert_int_equal(tt_view_key(v, TT_KEY_ENTER), TT_ACT_REDRAW);
	assert_int_equal(v->screen, TT_SCR_DETAIL);
	assert_true(v->detail_valid);
	assert_int_equal(v->detail.pid, 20);
	assert_int_equal(v->detail.id, 2);
	tt_view_key(v, TT_KEY_ESC);
	assert_int_equal(v->screen, TT_SCR_TASKS);
	/* 3 from Tasks: the task selected now. */
	tt_view_key(v, 'g');
	tt_view_set_rows(v, TT_SCR_TASKS, 5, 10, rows5);
	tt_view_key(v, '3');
	assert_int_equal(v->detail.pid, 10);
	assert_int_equal(v->detail.id, 1);
	tt_view_key(v, '2');
	/* Enter on a type lists its tasks. */
	tt_view_key(v, '1');
	tt_view_set_rows(v, TT_SCR_TYPES, 5, 10, rows5);
	tt_view_key(v, 'j');
	tt_view_set_rows(v, TT_SCR_TYPES, 5, 10, rows5);
	tt_view_key(v, TT_KEY_ENTER);
	assert_int_equal(v->screen, TT_SCR_TASKS);
	assert_true(v->type_key_on);
	assert_int_equal(v->type_key.pid, 10);
	assert_int_equal(v->type_key.id, 2);
	/* Esc on Tasks clears every filter. */
	assert_int_equal(tt_view_key(v, TT_KEY_ESC), TT_ACT_REDRAW);
	assert_false(v->type_key_on);
	assert_int_equal(tt_view_key(v, TT_KEY_ESC), TT_ACT_NONE);
}

static void test_detail_scrolls(void **state)
{
	struct tt_view *v = *state;
	tt_view_key(v, '3');
	assert_int_equal(v->screen, TT_SCR_DETAIL);
	assert_false(v->detail_valid);
	tt_view_set_rows(v, TT_SCR_DETAIL, 30, 10, NULL);
	tt_view_key(v, 'j');
	assert_int_equal(v->pos[TT_SCR_DETAIL].top, 1);
	tt_view_key(v, 'G');
	assert_int_equal(v->pos[TT_SCR_DETAIL].top, 20);
	tt_view_key(v, TT_KEY_PGDN);
	assert_int_equal(v->pos[TT_SCR_DETAIL].top, 20);
	tt_view_key(v, 'g');
	assert_int_equal(v->pos[TT_SCR_DETAIL].top, 0);
}

static void test_sort_keys(void **state)
{
	struct tt_view *v = *state;
	tt_view_key(v, 's');
	assert_int_equal(v->task_sort, TT_TC_RUNQ);
	assert_true(v->task_desc);                                    /* figures: largest first */
	for (int i = 0; i < 2; i++)
		tt_view_key(v, '<');
	assert_int_equal(v->task_sort, TT_TC_AGE);
	tt_view_key(v, '<');
	assert_int_equal(v->task_sort, TT_TC_STATE);
	assert_false(v->task_desc);                                   /* text: A to Z */
	tt_view_key(v, 'i');
	assert_true(v->task_desc);
	for (int i = 0; i < TT_TC_COUNT; i++)
		tt_view_key(v, '>');
	assert_int_equal(v->task_sort, TT_TC_STATE);                  /* a full cycle */
	/* Live: Left/Right move the column too; Types has its own. */
	tt_view_key(v, TT_KEY_RIGHT);
	assert_int_equal(v->task_sort, TT_TC_AGE);
	tt_view_key(v, '1');
	tt_view_key(v, 's');
	assert_int_equal(v->type_sort, TT_YC_TYPE);
	assert_int_equal(v->task_sort, TT_TC_AGE);
	tt_view_key(v, 'i');
	assert_true(v->type_desc);
}

static void test_filter_prompt(void **state)
{
	struct tt_view *v = *state;
	tt_view_key(v, '2');
	assert_int_equal(tt_view_key(v, '/'), TT_ACT_REDRAW);
	assert_int_equal(v->prompt, TT_PROMPT_FILTER);
	type_text(v, "netx");
	assert_string_equal(v->filter, "netx");                       /* filters while typing */
	tt_view_key(v, TT_KEY_BACKSPACE);
	assert_int_equal(tt_view_key(v, TT_KEY_ENTER), TT_ACT_REDRAW);
	assert_int_equal(v->prompt, TT_PROMPT_NONE);
	assert_string_equal(v->filter, "net");
	/* Esc in the prompt restores what was there. */
	tt_view_key(v, '/');
	type_text(v, "abc");
	tt_view_key(v, TT_KEY_ESC);
	assert_string_equal(v->filter, "net");
	/* Control keys are not text; the buffer is bounded. */
	tt_view_key(v, 't');
	assert_int_equal(v->prompt, TT_PROMPT_TYPE);
	assert_int_equal(tt_view_key(v, TT_KEY_UP), TT_ACT_NONE);
	for (int i = 0; i < 200; i++)
		tt_view_key(v, 'x');
	assert_int_equal(strlen(v->type_filter), TT_TEXT_MAX - 1);
	tt_view_key(v, TT_KEY_ENTER);
	/* '/' from another screen goes to Tasks; Types filters itself. */
	tt_view_key(v, '4');
	tt_view_key(v, '/');
	assert_int_equal(v->screen, TT_SCR_TASKS);
	tt_view_key(v, TT_KEY_ESC);
	tt_view_key(v, '1');
	tt_view_key(v, '/');
	assert_int_equal(v->screen, TT_SCR_TYPES);
}

static void test_state_running_pause(void **state)
{
	struct tt_view *v = *state;
	for (int i = 1; i < TT_SF_COUNT; i++) {
		tt_view_key(v, 'S');
		assert_int_equal(v->state_filter, i);
	}
	tt_view_key(v, 'S');
	assert_int_equal(v->state_filter, TT_SF_ALL);
	tt_view_key(v, 'r');
	assert_true(v->running_only);
	assert_int_equal(tt_view_key(v, 'p'), TT_ACT_PAUSE);
	assert_true(v->paused);
	assert_int_equal(tt_view_key(v, ' '), TT_ACT_PAUSE);
	assert_false(v->paused);
}

static void test_replay_keys(void **state)
{
	struct tt_view *v = *state;
	assert_int_equal(tt_view_key(v, '['), TT_ACT_NONE);           /* live: no stepping */
	assert_int_equal(tt_view_key(v, ':'), TT_ACT_NONE);
	tt_view_init(v, true);
	assert_int_equal(tt_view_key(v, TT_KEY_LEFT), TT_ACT_STEP);
	assert_int_equal(v->step, -1);
	assert_int_equal(tt_view_key(v, TT_KEY_RIGHT), TT_ACT_STEP);
	assert_int_equal(v->step, 1);
	assert_int_equal(tt_view_key(v, ']'), TT_ACT_STEP);
	assert_int_equal(v->step, 10);
	assert_int_equal(tt_view_key(v, '['), TT_ACT_STEP);
	assert_int_equal(v->step, -10);
	assert_int_equal(tt_view_key(v, ':'), TT_ACT_REDRAW);
	assert_int_equal(v->prompt, TT_PROMPT_JUMP);
	type_text(v, "+30s");
	assert_int_equal(tt_view_key(v, TT_KEY_ENTER), TT_ACT_JUMP);
	assert_string_equal(v->jump, "+30s");
	tt_view_key(v, ':');
	assert_int_equal(tt_view_key(v, TT_KEY_ENTER), TT_ACT_REDRAW); /* empty: nothing */
}

static void test_parse_jump(void **state)
{
	(void)state;
	uint64_t t = 0;
	long idx = -1;
	const uint64_t s = 1000000000ull, cur = 1764158400ull * s;   /* 2025-11-26 12:00:00 UTC */
	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(tt_parse_jump("+30s", cur, &t, &idx), TT_JUMP_TIME);
	assert_true(t == cur + 30 * s);
	assert_int_equal(tt_parse_jump("-5m", cur, &t, &idx), TT_JUMP_TIME);
	assert_true(t == cur - 300 * s);
	assert_int_equal(tt_parse_jump("+2h", cur, &t, &idx), TT_JUMP_TIME);
	assert_true(t == cur + 7200 * s);
	assert_int_equal(tt_parse_jump("-10", cur, &t, &idx), TT_JUMP_TIME);
	assert_true(t == cur - 10 * s);
	assert_int_equal(tt_parse_jump("13:05:09", cur, &t, &idx), TT_JUMP_TIME);
	assert_true(t == cur + (3600 + 5 * 60 + 9) * s);
	assert_int_equal(tt_parse_jump("11:30", cur, &t, &idx), TT_JUMP_TIME);
	assert_true(t == cur - 30 * 60 * s);
	assert_int_equal(tt_parse_jump("#12", cur, &t, &idx), TT_JUMP_INDEX);
	assert_int_equal(idx, 11);
	const char *bad[] = { "", "#0", "#x", "+", "+5q", "+5mm", "25:00", "12:60", "12:30:61", "12:30x", "noon", "-99999999d" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tt_parse_jump(bad[i], cur, &t, &idx), TT_JUMP_BAD);
	assert_int_equal(tt_parse_jump("-100d", 5 * s, &t, &idx), TT_JUMP_TIME);
	assert_true(t == 0);                                          /* never before the epoch */
}

static void test_unknown_keys(void **state)
{
	struct tt_view *v = *state;
	struct tt_view before = *v;
	assert_int_equal(tt_view_key(v, 'z'), TT_ACT_NONE);
	assert_int_equal(tt_view_key(v, 0x7fffffff), TT_ACT_NONE);
	assert_int_equal(tt_view_key(v, -5), TT_ACT_NONE);
	assert_memory_equal(&before, v, sizeof(before));
	assert_int_equal(tt_view_key(v, TT_KEY_RESIZE), TT_ACT_REDRAW);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_selection_follows_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_screens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enter_detail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detail_scrolls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sort_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filter_prompt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_running_pause, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
