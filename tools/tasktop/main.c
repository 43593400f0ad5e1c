/* tasktop: the live terminal view of every task, with replay.
 *
 *   tasktop [-d SECONDS] [--socket PATH | --standalone | --replay DIR]
 *   tasktop -b [-n N] [-d SECONDS] ...      plain-text samples, as top -b
 *
 * The loop only moves data: the source (source.h) makes models, the screens
 * (screen.h) draw them into a canvas, the terminal module shows the canvas.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canvas.h"
#include "screen.h"
#include "source.h"
#include "term.h"
#include "view.h"

struct options {
	double interval_s;
	bool batch;
	long iterations;        /* batch: 0 = until killed */
	const char *socket;
	const char *replay;
	bool standalone;
	long max_tasks;         /* live: tasks asked of the collector; 0 = its default */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tasktop [-d SECONDS] [--socket PATH | --standalone | --replay DIR]\n"
	        "       tasktop -b [-n N] [-d SECONDS] [--socket PATH | --standalone | --replay DIR]\n"
	        "\n"
	        "  -d SECONDS     refresh interval (default 1; 0.1 to 3600)\n"
	        "  -b             batch mode: plain-text samples on standard output\n"
	        "  -n N           batch mode: N samples, then exit (default: until killed)\n"
	        "  --socket PATH  the collector's socket (default $TASKMON_SOCKET or\n"
	        "                 /run/taskmon/taskmond.sock); without a collector tasktop\n"
	        "                 reads the workloads' shared memory (library figures only)\n"
	        "  --standalone   read the workloads' shared memory, never the collector\n"
	        "  --max-tasks N  live: ask the collector for up to N tasks (default: its 1000)\n"
	        "  --replay DIR   replay a record directory (taskmond --record)\n"
	        "  -h, --help     this text; in tasktop, h or ? shows the keys\n");
}

static int bad_option(const char *fmt, const char *arg)
{
	fprintf(stderr, "tasktop: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (tasktop --help lists the options)\n");
	return 2;
}

/* 0, 1 when the program should exit 0 (help), or 2 after a sentence. */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "socket", required_argument, NULL, 'S' }, { "replay", required_argument, NULL, 'R' },
		{ "standalone", no_argument, NULL, 'A' }, { "max-tasks", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	char *end;
	int ch;
	*o = (struct options){ .interval_s = 1.0 };
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":d:bn:h", longs, NULL)) != -1) {
		switch (ch) {
		case 'd':
			errno = 0;
			o->interval_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o->interval_s >= 0.1 && o->interval_s <= 3600))
				return bad_option("-d takes seconds from 0.1 to 3600, not '%s'", optarg);
			break;
		case 'b': o->batch = true; break;
		case 'n':
			errno = 0;
			o->iterations = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || o->iterations < 1)
				return bad_option("-n takes a count of 1 or more, not '%s'", optarg);
			break;
		case 'M':
			errno = 0;
			o->max_tasks = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || o->max_tasks < 1 || o->max_tasks > TT_MAX_TASKS)
				return bad_option("--max-tasks takes a count from 1 to 65536, not '%s'", optarg);
			break;
		case 'S': o->socket = optarg; break;
		case 'R': o->replay = optarg; break;
		case 'A': o->standalone = true; break;
		case 'h': usage(stdout); return 1;
		case ':': return bad_option("option %s needs a value", argv[optind - 1]);
		default: {
			char opt[3] = { '-', (char)optopt, '\0' };
			return bad_option("unknown option '%s'", optopt ? opt : argv[optind - 1]);
		}
		}
	}
	if (optind < argc)
		return bad_option("unexpected argument '%s'", argv[optind]);
	if ((o->replay != NULL) + (o->socket != NULL) + o->standalone > 1)
		return bad_option("%s", "--socket, --standalone and --replay exclude each other");
	if (o->iterations && !o->batch)
		return bad_option("%s", "-n needs -b");
	return 0;
}

static int open_source(const struct options *o, struct tt_source **s, char *err, size_t len)
{
	const struct tt_source_opts *so = TT_SOURCE_OPTS(.socket_path = o->socket, .replay_dir = o->replay,
	                                                 .max_tasks = (uint32_t)o->max_tasks);
	if (o->replay)
		return tt_source_open_replay(s, so, err, len);
	if (o->standalone)
		return tt_source_open_shm(s, so, err, len);
	return tt_source_open_auto(s, so, err, len);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

/* Batch: N samples as text. Wide enough for every column unless COLUMNS says less. */
static int run_batch(const struct options *o, struct tt_source *s)
{
	struct tt_view v;
	int width = 160;
	const char *cols = getenv("COLUMNS");
	if (cols && atoi(cols) >= 40 && atoi(cols) <= TT_CANVAS_MAX_W)
		width = atoi(cols);
	tt_view_init(&v, tt_source_kind(s) == TT_SRC_REPLAY);
	int64_t interval = (int64_t)llround(o->interval_s * 1000);
	for (long i = 0; o->iterations == 0 || i < o->iterations; i++) {
		int64_t started = now_ms();
		struct tt_model *m = NULL;
		int r = tt_source_fetch(s, (int)(interval < 2000 ? 2000 : interval), &m);
		if (r < 0) {
			printf("tasktop: %s\n\n", tt_source_status(s));
			fflush(stdout);
		} else if (tt_render_batch(stdout, m, &v, width) < 0) {
			tt_model_free(m);
			return 1;   /* standard output closed: a pipe's reader left */
		}
		tt_model_free(m);
		if (tt_source_kind(s) == TT_SRC_REPLAY) {
			struct tt_replay_pos pos;
			if (tt_source_replay_pos(s, &pos) && pos.index + 1 >= pos.count)
				break;   /* the last record */
			tt_source_step(s, 1);
			continue;   /* records play as fast as they print */
		}
		if (o->iterations == 0 || i + 1 < o->iterations) {
			int64_t left = started + interval - now_ms();
			if (left > 0)
				sleep_ms(left);
		}
	}
	return 0;
}

struct ui {
	struct tt_source *src;
	struct tt_model *model;
	struct tt_view view;
	struct tt_canvas canvas;
	struct tt_render_info info;
	char status[TT_TEXT_CAP];
	int64_t interval, next_fetch;
};

static void fetch(struct ui *u)
{
	struct tt_model *m = NULL;
	int r = tt_source_fetch(u->src, (int)(u->interval < 1000 ? u->interval : 1000), &m);
	if (r == 0) {
		tt_model_free(u->model);
		u->model = m;
		u->info.status = NULL;
	} else {
		/* Keep drawing the last sample, with the source's sentence. */
		snprintf(u->status, sizeof(u->status), "%s", tt_source_status(u->src));
		u->info.status = u->status;
		u->info.health = tt_source_health(u->src);
	}
	u->next_fetch = now_ms() + u->interval;
}

/* Replay plays one record per interval until paused or at the end. */
static void advance_replay(struct ui *u)
{
	struct tt_replay_pos pos;
	if (!tt_source_replay_pos(u->src, &pos) || pos.index + 1 >= pos.count) {
		u->view.paused = true;
		return;
	}
	tt_source_step(u->src, 1);
}

static void jump(struct ui *u)
{
	uint64_t t = 0;
	long index = 0;
	uint64_t cur = u->model ? u->model->now_unix_ns : 0;
	switch (tt_parse_jump(u->view.jump, cur, &t, &index)) {
	case TT_JUMP_TIME: tt_source_seek_time(u->src, t); break;
	case TT_JUMP_INDEX: tt_source_seek(u->src, (size_t)index); break;
	default:
		snprintf(u->status, sizeof(u->status), "cannot jump to '%s': give HH:MM:SS, +30s, -5m or #record",
		         u->view.jump);
		u->info.status = u->status;
		u->info.health = TT_HEALTH_DEGRADED;
		return;
	}
	fetch(u);
}

static void resize(struct ui *u)
{
	int w, h;
	tt_term_size(&w, &h);
	tt_canvas_resize(&u->canvas, w > 0 ? w : 1, h > 0 ? h : 1);
	tt_term_invalidate();
}

/* Handles one key; false to quit. */
static bool on_key(struct ui *u, int key)
{
	switch (tt_view_key(&u->view, key)) {
	case TT_ACT_QUIT:
		return false;
	case TT_ACT_STEP:
		u->view.paused = true;
		tt_source_step(u->src, u->view.step);
		fetch(u);
		break;
	case TT_ACT_JUMP:
		u->view.paused = true;
		jump(u);
		break;
	case TT_ACT_PAUSE:
		if (!u->view.paused)
			u->next_fetch = now_ms();   /* resume at once */
		break;
	default:
		break;
	}
	if (key == TT_KEY_RESIZE)
		resize(u);
	return true;
}

static int run_ui(const struct options *o, struct tt_source *s)
{
	struct ui u = { .src = s, .interval = (int64_t)llround(o->interval_s * 1000) };
	char err[256];
	if (tt_term_open(err, sizeof(err)) < 0) {
		fprintf(stderr, "tasktop: %s\n", err);
		return 1;
	}
	tt_view_init(&u.view, tt_source_kind(s) == TT_SRC_REPLAY);
	int w, h;
	tt_term_size(&w, &h);
	if (tt_canvas_init(&u.canvas, w > 0 ? w : 1, h > 0 ? h : 1) < 0) {
		tt_term_close();
		fprintf(stderr, "tasktop: out of memory\n");
		return 1;
	}
	for (;;) {
		if (now_ms() >= u.next_fetch && (!u.view.paused || !u.model)) {
			if (u.view.replay && u.model)
				advance_replay(&u);   /* at the last record it pauses instead */
			if (!u.view.paused || !u.model)
				fetch(&u);
			else
				u.next_fetch = now_ms() + u.interval;
		}
		tt_render(&u.canvas, u.model, &u.view, &u.info);
		tt_term_draw(&u.canvas);
		int64_t wait = u.view.paused && u.model ? 60000 : u.next_fetch - now_ms();
		int key = tt_term_key(wait > 0 ? (int)wait : 0);
		if (tt_term_stop_requested())
			break;
		if (key >= 0 && !on_key(&u, key))
			break;
	}
	tt_term_close();
	tt_canvas_free(&u.canvas);
	tt_model_free(u.model);
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	int r = parse_options(argc, argv, &o);
	if (r)
		return r == 1 ? 0 : r;
	struct tt_source *s;
	char err[512];
	if (open_source(&o, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "tasktop: %s\n", err);
		return 1;
	}
	r = o.batch ? run_batch(&o, s) : run_ui(&o, s);
	tt_source_close(s);
	return r;
}
