/* The summary taskmon-demo prints when it stops, from the library's own
 * counters (tm_get_stats, tm_spawn_latency_ns) and task records
 * (tm_list_tasks, tm_task_message, tm_task_crash). */
#include <signal.h>
#include <stdlib.h>

#include "demo.h"
#include "demo_summary.h"

#define RECORDS_SCANNED 8192

static double latency_us(int type, double q)
{
	uint64_t ns = 0;
	return tm_spawn_latency_ns(type, q, &ns) == 0 ? ns / 1000.0 : 0;
}

static void type_row(FILE *out, const char *name, const struct tm_type_stats *t, uint64_t total, int type)
{
	fprintf(out, "%-12s %8llu %6.1f%% %9llu %7llu %8llu %9llu %9llu %7llu %8llu %10.1f / %.1f us\n", name,
	        (unsigned long long)t->spawned, total ? 100.0 * t->spawned / total : 0.0,
	        (unsigned long long)t->succeeded, (unsigned long long)t->failed, (unsigned long long)t->panicked,
	        (unsigned long long)t->cancelled, (unsigned long long)t->timed_out, (unsigned long long)t->crashed,
	        (unsigned long long)t->restarts, latency_us(type, 0.5), latency_us(type, 0.99));
}

static void print_types(FILE *out, const struct tm_stats *st)
{
	fprintf(out, "%-12s %8s %7s %9s %7s %8s %9s %9s %7s %8s   spawn latency p50 / p99\n", "type", "spawned",
	        "share", "succeeded", "failed", "panicked", "cancelled", "timed_out", "crashed", "restarts");
	for (unsigned i = 0; i < demo_mix_count; i++) {
		int type = demo_mix[i].type;
		type_row(out, tm_type_name(type), &st->by_type[type], st->total_spawned, type);
	}
	struct tm_type_stats all = {
		.spawned = st->total_spawned, .succeeded = st->total_completed, .failed = st->total_failed,
		.panicked = st->total_panicked, .cancelled = st->total_cancelled, .timed_out = st->total_timed_out,
		.crashed = st->total_crashed, .restarts = st->total_restarts,
	};
	type_row(out, "all", &all, st->total_spawned, -1);
}

static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS:  return "SIGBUS";
	case SIGFPE:  return "SIGFPE";
	case SIGILL:  return "SIGILL";
	default:      return "a signal";
	}
}

/* The newest panic and any contained crash, and game_sync's restarts. */
static void print_tasks(FILE *out, uint64_t sync_id)
{
	struct tm_task_info *tasks = calloc(RECORDS_SCANNED, sizeof(*tasks));
	if (!tasks)
		return;
	int n = tm_list_tasks(tasks, RECORDS_SCANNED, false);
	const struct tm_task_info *panic = NULL;
	for (int i = 0; i < n; i++) {
		const struct tm_task_info *t = &tasks[i];
		if (t->id == sync_id)
			fprintf(out, "game_sync (task %llu): restarted %u time%s, ended %s\n", (unsigned long long)t->id,
			        t->restarts, t->restarts == 1 ? "" : "s", tm_status_name(t->status));
		if (t->status == TM_PANICKED && (!panic || t->end_ns > panic->end_ns))
			panic = t;
		struct tm_crash_info c;
		if (t->status == TM_CRASHED && tm_task_crash(t->id, &c) == 0)
			fprintf(out, "crash (contained): %s (task %llu) %s at address 0x%llx, instruction 0x%llx\n",
			        t->name, (unsigned long long)t->id, signal_name(c.signo), (unsigned long long)c.addr,
			        (unsigned long long)c.ip);
	}
	char msg[256];
	if (panic && tm_task_message(panic->id, msg, sizeof(msg)) == 0)
		fprintf(out, "last panic: %s (task %llu): %s\n", panic->name, (unsigned long long)panic->id, msg);
	free(tasks);
}

void demo_summary_print(FILE *out, const struct demo_summary_in *in)
{
	struct tm_stats st;
	if (tm_get_stats(&st) != 0) {
		fprintf(out, "taskmon-demo: no statistics: %s\n", tm_last_error());
		return;
	}
	fprintf(out, "taskmon-demo: stopped after %.1f s (%s); %d tasks still running were cancelled\n",
	        in->seconds, in->why, in->cancelled_at_stop);
	print_types(out, &st);
	fprintf(out, "game: %llu dice rolled, %llu bets settled, %llu rounds committed, %llu short of a quorum\n",
	        (unsigned long long)atomic_load(&demo_game.dice_rolled),
	        (unsigned long long)atomic_load(&demo_game.bets_settled),
	        (unsigned long long)atomic_load(&demo_game.rounds_committed),
	        (unsigned long long)atomic_load(&demo_game.rounds_short));
	print_tasks(out, in->sync_id);
	fprintf(out, "draws skipped at the concurrency limit: %llu; spawns rejected by the library's limits: %llu\n",
	        (unsigned long long)in->skipped, (unsigned long long)st.total_rejected);
	fflush(out);
}
