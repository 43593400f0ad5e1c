/* curses behind term.h. Flicker-free: screens draw into a canvas; only the
 * rows that changed since the last frame are written, and curses sends only
 * the cells that changed in them. erase(), never clear(), so no frame starts
 * from a blank terminal. */
#include "term.h"

#include <curses.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "view.h"

static bool active;
static volatile sig_atomic_t stop_signal;
static struct tt_canvas shown;     /* what the terminal shows; w == 0: unknown */
static attr_t style_attr[TT_STYLE_COUNT];

static void on_stop(int sig)
{
	if (stop_signal) {
		/* A second signal while the loop is stuck: leave as the default would. */
		signal(sig, SIG_DFL);
		raise(sig);
	}
	stop_signal = sig;
}

bool tt_term_stop_requested(void)
{
	return stop_signal != 0;
}

static bool want_color(void)
{
	const char *nc = getenv("NO_COLOR");
	return !(nc && nc[0]) && has_colors();
}

/* Styles to attributes; with colours, pairs 1.. by style. */
static void setup_styles(bool color)
{
	static const struct { attr_t mono; short fg, bg; attr_t extra; } map[TT_STYLE_COUNT] = {
		[TT_NORMAL]   = { A_NORMAL, -1, -1, A_NORMAL },
		[TT_TITLE]    = { A_BOLD, COLOR_CYAN, -1, A_BOLD },
		[TT_COLHEAD]  = { A_BOLD | A_UNDERLINE, COLOR_BLACK, COLOR_GREEN, A_NORMAL },
		[TT_SORTED]   = { A_REVERSE | A_UNDERLINE, COLOR_BLACK, COLOR_CYAN, A_BOLD },
		[TT_SELECTED] = { A_REVERSE | A_BOLD, COLOR_BLACK, COLOR_CYAN, A_NORMAL },
		[TT_KEY]      = { A_BOLD, -1, -1, A_BOLD },
		[TT_KEYLABEL] = { A_REVERSE, COLOR_BLACK, COLOR_CYAN, A_NORMAL },
		[TT_GOOD]     = { A_NORMAL, COLOR_GREEN, -1, A_NORMAL },
		[TT_WARN]     = { A_BOLD, COLOR_YELLOW, -1, A_BOLD },
		[TT_BAD]      = { A_BOLD | A_UNDERLINE, COLOR_RED, -1, A_BOLD },
		[TT_DIM]      = { A_DIM, -1, -1, A_DIM },
		[TT_BAR]      = { A_BOLD, COLOR_GREEN, -1, A_BOLD },
	};
	if (color) {
		start_color();
		use_default_colors();
	}
	for (int s = 0; s < TT_STYLE_COUNT; s++) {
		if (!color || (map[s].fg < 0 && map[s].bg < 0)) {
			style_attr[s] = map[s].mono;
			continue;
		}
		init_pair((short)(s + 1), map[s].fg, map[s].bg);
		style_attr[s] = COLOR_PAIR(s + 1) | map[s].extra;
	}
}

int tt_term_open(char *err, size_t errlen)
{
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		snprintf(err, errlen, "standard input and output must be a terminal (use -b for batch mode)");
		return -ENOTTY;
	}
	if (!newterm(NULL, stdout, stdin)) {
		snprintf(err, errlen, "cannot use terminal type '%s'", getenv("TERM") ? getenv("TERM") : "");
		return -ENOTTY;
	}
	active = true;
	atexit(tt_term_close);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	setup_styles(want_color());
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;   /* no SA_RESTART: poll wakes up */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	tt_term_invalidate();
	return 0;
}

void tt_term_close(void)
{
	if (!active)
		return;
	active = false;
	curs_set(1);
	endwin();
	tt_canvas_free(&shown);
}

void tt_term_size(int *w, int *h)
{
	getmaxyx(stdscr, *h, *w);
}

void tt_term_invalidate(void)
{
	tt_canvas_free(&shown);
}

static void draw_row(const struct tt_canvas *c, int y)
{
	const char *text = c->text + (size_t)y * (size_t)c->w;
	const uint8_t *st = c->style + (size_t)y * (size_t)c->w;
	move(y, 0);
	for (int x = 0; x < c->w;) {
		int run = 1;
		while (x + run < c->w && st[x + run] == st[x])
			run++;
		attrset(style_attr[st[x] < TT_STYLE_COUNT ? st[x] : TT_NORMAL]);
		addnstr(text + x, run);   /* the bottom-right cell may return ERR: it is drawn */
		x += run;
	}
	attrset(A_NORMAL);
}

void tt_term_draw(const struct tt_canvas *c)
{
	int w, h;
	tt_term_size(&w, &h);
	bool all = shown.w != c->w || shown.h != c->h;
	if (all) {
		erase();
		if (tt_canvas_init(&shown, c->w, c->h) < 0)
			shown.w = 0;
	}
	for (int y = 0; y < c->h && y < h; y++) {
		if (!all && !tt_canvas_row_differs(&shown, c, y))
			continue;
		draw_row(c, y);
		if (shown.w) {
			memcpy(shown.text + (size_t)y * (size_t)c->w, c->text + (size_t)y * (size_t)c->w, (size_t)c->w);
			memcpy(shown.style + (size_t)y * (size_t)c->w, c->style + (size_t)y * (size_t)c->w, (size_t)c->w);
		}
	}
	refresh();
}

static int translate(int ch)
{
	switch (ch) {
	case KEY_UP: return TT_KEY_UP;
	case KEY_DOWN: return TT_KEY_DOWN;
	case KEY_LEFT: return TT_KEY_LEFT;
	case KEY_RIGHT: return TT_KEY_RIGHT;
	case KEY_PPAGE: return TT_KEY_PGUP;
	case KEY_NPAGE: return TT_KEY_PGDN;
	case KEY_HOME: return TT_KEY_HOME;
	case KEY_END: return TT_KEY_END;
	case KEY_ENTER: case '\n': case '\r': return TT_KEY_ENTER;
	case 27: return TT_KEY_ESC;
	case KEY_BACKSPACE: case 127: case 8: return TT_KEY_BACKSPACE;
	case '\t': return TT_KEY_TAB;
	case KEY_BTAB: return TT_KEY_BTAB;
	case KEY_RESIZE: return TT_KEY_RESIZE;
	default:
		break;
	}
	if (ch >= KEY_F(1) && ch <= KEY_F(10))
		return TT_KEY_F(ch - KEY_F(0));
	if (ch >= 0x20 && ch < 0x7f)
		return ch;
	return -2;   /* a key tasktop does not use */
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tt_term_key(int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		if (stop_signal)
			return -1;
		int ch = getch();
		if (ch != ERR) {
			int k = translate(ch);
			if (k != -2)
				return k;
			continue;
		}
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -1;
		/* Wakes on a key, or on a signal: after SIGWINCH getch() gives KEY_RESIZE. */
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -1;
	}
}
