/* taskmon-demo: one node of a peer-to-peer dice game, as a workload for
 * libtaskmon and the tools that watch it. `taskmon-demo --help` explains it.
 *
 * The main thread is the spawner: every tick it draws tasks in the seed's
 * load mix at the requested rate, as long as fewer than --concurrency run,
 * and closes consensus rounds. SIGINT and SIGTERM are blocked in every
 * thread and taken by the spawner between ticks, so that a stop is handled
 * in one place: cancel what runs, print the summary, shut down.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"
#include "demo_options.h"
#include "demo_summary.h"

#define TICK_MS        10
#define MAX_ROUNDS     32     /* rounds whose closer still runs */
#define STATUS_EVERY_S 5

struct spawner {
	const struct demo_options *o;
	uint64_t rng;
	uint64_t issued, skipped, chain_spawns_seen, rounds_opened;
	struct demo_round *open_round;
	struct demo_round *closing[MAX_ROUNDS];
	tm_task *ui;                 /* the last UI task: a newer frame replaces it */
	unsigned running_now;        /* tasks running, from the library's counters, plus this tick's */
	bool crashed_yet;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int pick_type(struct spawner *s)
{
	unsigned r = (unsigned)(demo_rand(&s->rng) % 10000), acc = 0;
	for (unsigned i = 0; i < demo_mix_count; i++) {
		acc += demo_mix[i].hundredths;
		if (r < acc)
			return demo_mix[i].type;
	}
	return TM_GENERAL;
}

static unsigned pick_kind(struct spawner *s, int type)
{
	unsigned total = 0, last = 0;
	for (unsigned i = 0; i < demo_kind_count; i++)
		if (demo_kinds[i].type == type && !demo_kinds[i].special)
			total += demo_kinds[i].weight;
	unsigned r = total ? (unsigned)(demo_rand(&s->rng) % total) : 0;
	for (unsigned i = 0; i < demo_kind_count; i++) {
		if (demo_kinds[i].type != type || demo_kinds[i].special)
			continue;
		last = i;
		if (r < demo_kinds[i].weight)
			return i;
		r -= demo_kinds[i].weight;
	}
	return last;
}

/* Draws how a task of this kind will go. */
static uintptr_t draw_job(struct spawner *s, unsigned kind)
{
	const struct demo_kind *k = &demo_kinds[kind];
	struct demo_job j = { .kind = kind, .outcome = DEMO_OK };
	double u = demo_rand_unit(&s->rng);
	if (u < s->o->panic_rate)
		j.outcome = DEMO_PANIC;
	else if (u < s->o->panic_rate + s->o->fail_rate)
		j.outcome = DEMO_FAIL;
	j.sleep_ms = demo_rand_range(&s->rng, k->sleep_min_ms, k->sleep_max_ms);
	if (k->timeout_ms && demo_rand_range(&s->rng, 1, 100) <= k->late_pct)   /* a slow peer: past the deadline */
		j.sleep_ms = demo_rand_range(&s->rng, (unsigned)k->timeout_ms + 5, (unsigned)k->timeout_ms * 2);
	j.cpu_us = demo_rand_range(&s->rng, k->cpu_min_us, k->cpu_max_us);
	return demo_job_pack(&j);
}

/* A UI frame that is still being drawn when the next one is due is stale:
 * it is cancelled, and its handle dropped (the task ends on its own). */
static void replace_ui(struct spawner *s)
{
	if (!s->ui)
		return;
	tm_cancel(s->ui);   /* -ESRCH when it has ended: nothing to do */
	tm_release(s->ui);
	s->ui = NULL;
}

/* 0, or the negative errno of a spawn that failed for a reason other than a limit. */
static int spawn_kind(struct spawner *s, unsigned kind, uintptr_t job)
{
	const struct demo_kind *k = &demo_kinds[kind];
	tm_task **handle = NULL;
	if (k->type == TM_UI) {
		replace_ui(s);
		handle = &s->ui;
	}
	int r = tm_spawn(handle, k->name, demo_task_body, (void *)job,
	                 TM_SPAWN_OPTS(.type = k->type, .timeout_ms = k->timeout_ms));
	if (r == -EAGAIN)
		return 0;   /* a configured limit: the library counts it as rejected */
	if (r == 0)
		s->running_now++;
	return r;
}

static int open_round(struct spawner *s)
{
	struct demo_round *r = calloc(1, sizeof(*r));
	char name[TM_NAME_MAX];
	if (!r)
		return -ENOMEM;
	r->number = ++s->rounds_opened;
	snprintf(name, sizeof(name), "round_%llu", (unsigned long long)r->number);
	int e = tm_group_new_opts(&r->group, name, TM_GROUP_OPTS(.max_concurrent = DEMO_VOTES_PER_ROUND));
	if (e < 0) {
		free(r);
		return e;
	}
	s->open_round = r;
	return 0;
}

/* Hands the open round to a round_close task, which owns it until it ends. */
static int close_round(struct spawner *s)
{
	int slot = -1;
	for (int i = 0; i < MAX_ROUNDS && slot < 0; i++)
		if (!s->closing[i])
			slot = i;
	if (slot < 0)
		return 0;   /* too many rounds still closing: this draw is dropped */
	struct demo_round *r = s->open_round;
	r->validate_job = draw_job(s, (unsigned)demo_kind_index("validate_block"));
	r->commit_job = draw_job(s, (unsigned)demo_kind_index("commit_block"));
	int e = tm_spawn(&r->closer, "round_close", demo_round_close, r, TM_SPAWN_OPTS(.type = TM_CONSENSUS));
	if (e == -EAGAIN)
		return 0;
	if (e < 0)
		return e;
	s->running_now++;
	s->closing[slot] = r;
	s->open_round = NULL;
	return 0;
}

/* Consensus work comes as rounds: votes in a group, then the round's closer.
 * The closer's chain spawns two more consensus tasks, which the mix counts
 * by skipping as many consensus draws. */
static int spawn_consensus(struct spawner *s)
{
	uint64_t chained = atomic_load(&demo_game.chain_spawns);
	if (s->chain_spawns_seen < chained) {
		s->chain_spawns_seen++;
		return 0;
	}
	if (!s->open_round) {
		int e = open_round(s);
		if (e < 0)
			return e;
	}
	struct demo_round *r = s->open_round;
	if (r->votes == DEMO_VOTES_PER_ROUND)
		return close_round(s);
	unsigned kind = (unsigned)demo_kind_index("vote_round");
	int e = tm_group_try_spawn(NULL, "vote_round", demo_task_body, (void *)draw_job(s, kind),
	                           TM_SPAWN_OPTS(.type = TM_CONSENSUS, .group = r->group));
	if (e == -EAGAIN)
		return 0;
	if (e < 0)
		return e;
	r->votes++;
	s->running_now++;
	return 0;
}

static void reap_rounds(struct spawner *s, bool stopping)
{
	for (int i = 0; i < MAX_ROUNDS; i++) {
		struct demo_round *r = s->closing[i];
		if (!r)
			continue;
		if (stopping)
			tm_cancel(r->closer);
		if (tm_join(r->closer, stopping ? -1 : 0, NULL, NULL) != 0)
			continue;
		tm_group_free(r->group);
		free(r);
		s->closing[i] = NULL;
	}
	if (stopping && s->open_round) {
		tm_group_free(s->open_round->group);   /* cancels and joins its votes */
		free(s->open_round);
		s->open_round = NULL;
	}
}

static int spawn_one(struct spawner *s)
{
	int type = pick_type(s);
	if (type == TM_CONSENSUS)
		return spawn_consensus(s);
	unsigned kind = pick_kind(s, type);
	return spawn_kind(s, kind, draw_job(s, kind));
}

static void spawn_crash(struct spawner *s)
{
	struct demo_job j = { .kind = (unsigned)demo_kind_index("dice_roll"), .outcome = DEMO_CRASH };
	s->crashed_yet = true;
	fprintf(stderr, "taskmon-demo: --crash: a dice_roll task now reads through a NULL pointer%s\n",
	        s->o->contain ? " (contained: only that task ends)" : "; the process will die with SIGSEGV");
	if (spawn_kind(s, (unsigned)j.kind, demo_job_pack(&j)) < 0)
		fprintf(stderr, "taskmon-demo: the crashing dice_roll could not be spawned: %s\n", tm_last_error());
}

/* One tick: spawns what the rate asks for since the start, within the
 * concurrency limit. Draws that find the node full are skipped, not queued,
 * as a node under load sheds work. */
static int tick(struct spawner *s, double elapsed)
{
	struct tm_stats st;
	if (tm_get_stats(&st) == 0)
		s->running_now = (unsigned)st.currently_running;
	reap_rounds(s, false);
	if (s->o->crash && !s->crashed_yet && elapsed >= s->o->crash_after)
		spawn_crash(s);
	uint64_t due = (uint64_t)(elapsed * s->o->rate);
	if (due > s->issued + (uint64_t)s->o->rate)   /* held up: catch up one second at most */
		s->issued = due - (uint64_t)s->o->rate;
	for (; s->issued < due; s->issued++) {
		if (s->running_now >= s->o->concurrency) {
			s->skipped++;
			continue;
		}
		int e = spawn_one(s);
		if (e < 0) {
			fprintf(stderr, "taskmon-demo: spawning failed: %s\n", tm_last_error());
			return e;
		}
	}
	return 0;
}

static void status_line(double elapsed)
{
	struct tm_stats st;
	if (tm_get_stats(&st) != 0)
		return;
	printf("taskmon-demo: %3.0f s: %llu spawned, %llu running, %llu failed, %llu panicked, %llu timed out, "
	       "%llu restarts\n", elapsed, (unsigned long long)st.total_spawned,
	       (unsigned long long)st.currently_running, (unsigned long long)st.total_failed,
	       (unsigned long long)st.total_panicked, (unsigned long long)st.total_timed_out,
	       (unsigned long long)st.total_restarts);
}

/* game_sync: restarted on a panic, after 100 ms, 200 ms, 400 ms ... up to
 * 5 s, each delay drawn in full jitter; gives up after 20 restarts within a
 * minute; a run healthy for 10 s starts the delays over. */
static const struct tm_backoff sync_backoff = {
	.kind = TM_BACKOFF_EXPONENTIAL, .base_ms = 100, .max_ms = 5000, .multiplier = 2.0, .jitter = TM_JITTER_FULL,
};

static int start_game_sync(tm_task **out, struct demo_sync *sync)
{
	return tm_spawn_critical(out, "game_sync", demo_game_sync, sync,
	                         TM_CRITICAL_OPTS(.type = TM_CONSENSUS, .restart = TM_RESTART_ON_PANIC,
	                                          .backoff = sync_backoff, .max_restarts = 20,
	                                          .window_ms = 60000, .reset_after_ms = 10000));
}

static void print_start(const struct demo_options *o, const tm_task *sync)
{
	struct tm_backoff plain = sync_backoff;
	uint64_t rng = 0;
	plain.jitter = TM_JITTER_NONE;
	printf("taskmon-demo: pid %d, seed %llu, %g spawns/s, at most %u running, ", (int)getpid(),
	       (unsigned long long)o->seed, o->rate, o->concurrency);
	if (o->duration > 0)
		printf("for %g s\n", o->duration);
	else
		printf("until Ctrl-C or SIGTERM\n");
	printf("taskmon-demo: game_sync is task %llu; after a panic it restarts within", (unsigned long long)tm_task_id(sync));
	for (unsigned a = 1; a <= 4; a++)
		printf(" %llu%s", (unsigned long long)tm_backoff_delay_ms(&plain, a, 0, &rng), a < 4 ? "," : "");
	printf(" ... %llu ms (full jitter)\n", (unsigned long long)sync_backoff.max_ms);
}

/* Stops the node: the critical task first (a cancel always wins over its
 * restarts), the rounds, then every task still running. Returns how many
 * were cancelled. */
static int stop_node(struct spawner *s, tm_task *sync)
{
	int cancelled = 0;
	if (sync && tm_cancel(sync) == 0)
		cancelled++;
	replace_ui(s);
	reap_rounds(s, true);
	for (int t = 0; t < TM_BUILTIN_TYPES; t++) {
		int n = tm_cancel_type(t);
		cancelled += n > 0 ? n : 0;
	}
	/* Let the cancelled tasks end, so that the summary's counts are final. */
	struct tm_stats st;
	for (int i = 0; i < 200 && tm_get_stats(&st) == 0 && st.currently_running > 0; i++)
		usleep(10000);
	return cancelled;
}

int main(int argc, char **argv)
{
	struct demo_options o;
	int r = demo_options_parse(&o, argc, argv);
	if (r != DEMO_OPTIONS_RUN)
		return r == DEMO_OPTIONS_HELP ? 0 : 2;
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Blocked before the library starts any thread, so that every thread inherits it. */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	signal(SIGTERM, SIG_DFL);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	if (tm_init_opts(TM_INIT_OPTS(.contain_faults = o.contain)) != 0) {
		fprintf(stderr, "taskmon-demo: the task library did not start: %s\n", tm_last_error());
		return 1;
	}
	struct demo_sync sync_state = { .desync_rate = o.panic_rate, .seed = o.seed };
	tm_task *sync = NULL;
	if (start_game_sync(&sync, &sync_state) != 0) {
		fprintf(stderr, "taskmon-demo: game_sync did not start: %s\n", tm_last_error());
		tm_shutdown();
		return 1;
	}
	print_start(&o, sync);

	struct spawner s = { .o = &o, .rng = o.seed };
	double start = now_s(), elapsed = 0, next_status = STATUS_EVERY_S;
	const char *why = "its duration ended";
	struct timespec tick_ts = { 0, TICK_MS * 1000000L };
	for (;;) {
		elapsed = now_s() - start;
		if (o.duration > 0 && elapsed >= o.duration)
			break;
		if (tick(&s, elapsed) < 0) {
			why = "a spawn failed";
			break;
		}
		if (!o.quiet && elapsed >= next_status) {
			status_line(elapsed);
			next_status += STATUS_EVERY_S;
		}
		enum tm_status st;
		if (sync && tm_join(sync, 0, &st, NULL) == 0) {   /* it gave up: an escalation */
			printf("taskmon-demo: game_sync gave up (%s) after too many restarts; starting it again\n",
			       tm_status_name(st));
			if (start_game_sync(&sync, &sync_state) != 0)
				sync = NULL;
		}
		int sig = sigtimedwait(&stop_signals, NULL, &tick_ts);
		if (sig > 0) {
			why = sig == SIGINT ? "SIGINT" : "SIGTERM";
			break;
		}
	}
	int cancelled = stop_node(&s, sync);
	struct demo_summary_in in = { .seconds = elapsed, .why = why, .cancelled_at_stop = cancelled,
	                              .skipped = s.skipped, .sync_id = sync ? tm_task_id(sync) : 0 };
	demo_summary_print(stdout, &in);
	if (sync)
		tm_join(sync, -1, NULL, NULL);
	tm_shutdown();
	return 0;
}
