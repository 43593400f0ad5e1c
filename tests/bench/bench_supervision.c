/* Supervision benchmark: restart round trip of a critical task and the cost
 * of groups, each beside the baseline a user would write without them, in
 * the same run. Prints a table and writes OUTDIR/supervision.json. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "taskmon.h"

#define RESTARTS 2000
#define GROUP_TASKS 20000

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t quantile(uint64_t *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i];
}

/* ---- restart round trip: panic to the next incarnation's first instruction ---- */

static uint64_t panic_at[RESTARTS + 1], start_at[RESTARTS + 1];
static atomic_int runs;

static int flapping(void *arg)
{
	(void)arg;
	int n = atomic_fetch_add(&runs, 1);
	start_at[n] = now_ns();
	if (n < RESTARTS) {
		panic_at[n] = now_ns();
		tm_panic("run %d", n);
	}
	return 0;
}

static int supervised(uint64_t *trip)
{
	tm_task *t;
	atomic_store(&runs, 0);
	/* max_ms 1 with base 0: restart at once, so the figure has no delay in it. */
	int r = tm_spawn_critical(&t, "flapping", flapping, NULL,
	                          TM_CRITICAL_OPTS(.restart = TM_RESTART_ON_PANIC, .max_restarts = RESTARTS,
	                                           .backoff = { .base_ms = 0, .max_ms = 1 }));
	if (r < 0 || (r = tm_join(t, 60000, NULL, NULL)) < 0)
		return r;
	for (int i = 0; i < RESTARTS; i++)
		trip[i] = start_at[i + 1] - panic_at[i];
	return 0;
}

/* Baseline: what a caller does by hand: join the task, see it panicked, spawn it again. */
static int by_hand(uint64_t *trip)
{
	atomic_store(&runs, 0);
	for (int i = 0; i <= RESTARTS; i++) {
		tm_task *t;
		enum tm_status st;
		int r = tm_spawn(&t, "flapping", flapping, NULL, NULL);
		if (r < 0 || (r = tm_join(t, 60000, &st, NULL)) < 0)
			return r;
		if (st != TM_PANICKED)
			break;
	}
	for (int i = 0; i < RESTARTS; i++)
		trip[i] = start_at[i + 1] - panic_at[i];
	return 0;
}

/* ---- groups: spawn N members and wait for all, vs spawn and join each ---- */

static int trivial(void *arg)
{
	(void)arg;
	return 0;
}

static double group_ns_per_task(void)
{
	tm_group *g;
	if (tm_group_new(&g, "bench") < 0)
		return -1;
	uint64_t t0 = now_ns();
	for (int i = 0; i < GROUP_TASKS; i++)
		if (tm_spawn(NULL, "member", trivial, NULL, TM_SPAWN_OPTS(.group = g)) < 0)
			return -1;
	if (tm_group_wait_all(g, 60000, NULL, 0) != GROUP_TASKS)
		return -1;
	double ns = (double)(now_ns() - t0) / GROUP_TASKS;
	tm_group_free(g);
	return ns;
}

static tm_task *handles[GROUP_TASKS];

static double join_ns_per_task(void)
{
	uint64_t t0 = now_ns();
	for (int i = 0; i < GROUP_TASKS; i++)
		if (tm_spawn(&handles[i], "member", trivial, NULL, NULL) < 0)
			return -1;
	for (int i = 0; i < GROUP_TASKS; i++)
		if (tm_join(handles[i], 60000, NULL, NULL) < 0)
			return -1;
	return (double)(now_ns() - t0) / GROUP_TASKS;
}

static double median3(double a, double b, double c)
{
	return a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
}

int main(int argc, char **argv)
{
	const char *outdir = argc > 1 ? argv[1] : "build/bench";
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: bench_supervision [OUTDIR]\n  restart round trip and group overhead beside their baselines;"
		       " writes OUTDIR/supervision.json\n");
		return 0;
	}
	if (tm_init(NULL) < 0) {
		fprintf(stderr, "bench_supervision: %s\n", tm_last_error());
		return 1;
	}
	static uint64_t sup[RESTARTS], hand[RESTARTS];
	if (by_hand(hand) < 0 || supervised(sup) < 0) {
		fprintf(stderr, "bench_supervision: %s\n", tm_last_error());
		return 1;
	}
	uint64_t s50 = quantile(sup, RESTARTS, 0.5), s99 = quantile(sup, RESTARTS, 0.99);
	uint64_t h50 = quantile(hand, RESTARTS, 0.5), h99 = quantile(hand, RESTARTS, 0.99);
	double g[3], j[3];
	for (int i = 0; i < 3; i++) {   /* alternated, so that a noisy stretch hits both */
		j[i] = join_ns_per_task();
		g[i] = group_ns_per_task();
		if (g[i] < 0 || j[i] < 0) {
			fprintf(stderr, "bench_supervision: %s\n", tm_last_error());
			return 1;
		}
	}
	double gm = median3(g[0], g[1], g[2]), jm = median3(j[0], j[1], j[2]);
	printf("taskmon supervision benchmark\n");
	printf("%-36s %-12s %-30s %s\n", "figure", "taskmon", "baseline", "ratio");
	printf("%-36s %-12.1f %-30s %.2fx\n", "restart round trip p50 us", s50 / 1e3, "", (double)s50 / (double)h50);
	printf("%-36s %-12s by hand (join, respawn) %.1f\n", "", "", h50 / 1e3);
	printf("%-36s %-12.1f by hand %-22.1f %.2fx\n", "restart round trip p99 us", s99 / 1e3, h99 / 1e3,
	       (double)s99 / (double)h99);
	printf("%-36s %-12.0f spawn+join each %-14.0f %.2fx\n", "group spawn+wait_all ns per task", gm, jm, gm / jm);
	char path[512];
	snprintf(path, sizeof(path), "%s/supervision.json", outdir);
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "bench_supervision: cannot write %s\n", path);
		return 1;
	}
	fprintf(f, "{\"restart_round_trip_ns\":{\"p50\":%llu,\"p99\":%llu,\"by_hand_p50\":%llu,\"by_hand_p99\":%llu},"
	        "\"group_ns_per_task\":{\"group\":%.0f,\"spawn_join\":%.0f,\"ratio\":%.3f}}\n",
	        (unsigned long long)s50, (unsigned long long)s99, (unsigned long long)h50, (unsigned long long)h99,
	        gm, jm, gm / jm);
	fclose(f);
	printf("figures written to %s\n", path);
	tm_shutdown();
	return 0;
}
