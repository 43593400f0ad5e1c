/* taskmon-demo: one node of a peer-to-peer dice game, as a workload for
 * libtaskmon. demo.c parses the options and runs the spawner; demo_work.c
 * and demo_kinds.c hold what the node's tasks do; demo_summary.c prints the
 * node's own account at the end.
 */
#ifndef TASKMON_DEMO_H
#define TASKMON_DEMO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "taskmon.h"

/* What a spawned task is to do, packed into its argument (a uintptr_t): the
 * spawner decides everything from its own seeded generator, so that --seed
 * repeats a run's choices. */
enum demo_outcome { DEMO_OK, DEMO_FAIL, DEMO_PANIC, DEMO_CRASH };

struct demo_job {
	unsigned kind;          /* index into demo_kinds */
	enum demo_outcome outcome;
	unsigned sleep_ms;      /* time spent waiting (peers, disk), < 4096 */
	unsigned cpu_us;        /* time spent computing, < 16384, in steps of 4 */
};

uintptr_t demo_job_pack(const struct demo_job *j);
struct demo_job demo_job_unpack(uintptr_t v);

/* One kind of task: a name, its type, how often it comes within its type,
 * and the ranges its waiting and computing are drawn from. */
struct demo_kind {
	const char *name;
	int type;
	unsigned weight;            /* relative, within the type */
	unsigned sleep_min_ms, sleep_max_ms;
	unsigned cpu_min_us, cpu_max_us;
	uint64_t timeout_ms;        /* 0 = none */
	unsigned late_pct;          /* percent of runs that wait past the timeout */
	bool special;               /* spawned by the consensus round logic, not by the mix */
};

extern const struct demo_kind demo_kinds[];
extern const unsigned demo_kind_count;
int demo_kind_index(const char *name);   /* -1 when there is none */

/* The seed's load mix: percent of spawns by type, in hundredths. */
struct demo_share { int type; unsigned hundredths; };
extern const struct demo_share demo_mix[];
extern const unsigned demo_mix_count;

/* splitmix64: small, seedable, good enough for a demo's dice. */
uint64_t demo_rand(uint64_t *state);
unsigned demo_rand_range(uint64_t *state, unsigned lo, unsigned hi);   /* lo..hi inclusive */
double   demo_rand_unit(uint64_t *state);                              /* [0, 1) */

/* Task bodies. arg is a packed demo_job for demo_task_body. */
int demo_task_body(void *arg);

/* A consensus round: votes run in a group; round_close waits for them,
 * and when a quorum voted yes it runs validate_block then commit_block as a
 * chain. The extra consensus spawns it makes are counted in chain_spawns so
 * the spawner can keep the mix. */
#define DEMO_VOTES_PER_ROUND 4
#define DEMO_QUORUM          3
struct demo_round {
	tm_group *group;
	tm_task *closer;             /* round_close's handle, NULL until spawned */
	unsigned votes;
	uint64_t number;
	uintptr_t validate_job, commit_job;   /* the chain's steps, decided by the spawner */
};
int demo_round_close(void *arg);

/* game_sync: the critical task that keeps this node's game state in step
 * with its peers; it panics when it finds the state diverged. */
struct demo_sync {
	double desync_rate;          /* probability of a panic per sync step */
	uint64_t seed;
	_Atomic uint64_t steps;
};
#define DEMO_SYNC_STEP_MS 100
int demo_game_sync(void *arg);

/* Counters the tasks keep about the game itself (not task statuses: the
 * library counts those). */
struct demo_game {
	_Atomic uint64_t dice_rolled, bets_settled, rounds_committed, rounds_short, chain_spawns;
};
extern struct demo_game demo_game;

#endif
