/* What the node's tasks do: wait (for peers, the disk) and compute, then
 * succeed, fail or panic as the spawner decided; the consensus round and the
 * critical game_sync task; and the one real bug that --crash sets off. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "demo.h"

struct demo_game demo_game;

static _Atomic uint64_t sink;   /* keeps the computing from being optimised away */

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Spends about `us` of this thread's CPU time, and stops early on a cancel
 * or a timeout, as real work that checks in now and then would. */
static void compute_us(unsigned us)
{
	uint64_t start = thread_cpu_ns(), x = tm_current_id() | 1;
	while (us && !tm_cancelled()) {
		for (int i = 0; i < 2000; i++)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		if (thread_cpu_ns() - start >= us * 1000ull)
			break;
	}
	atomic_store_explicit(&sink, x, memory_order_relaxed);
}

/* gcc could clone or inline these and rename them; the crash record must
 * name them as they are written. */
#if defined(__clang__)
#define DEMO_KEEP_FRAME __attribute__((noinline, no_sanitize("undefined")))
#else
#define DEMO_KEEP_FRAME __attribute__((noipa, no_sanitize("undefined")))
#endif

struct die { unsigned sides; int faces[6]; };
/* Never loaded: the bug that --crash reaches. volatile, so that the compiler
 * emits the load through NULL instead of a trap of its own. */
static struct die *volatile loaded_die;

DEMO_KEEP_FRAME static void count_roll(void)
{
	atomic_fetch_add(&demo_game.dice_rolled, 1);
}

/* Not a leaf: a leaf gets no frame of its own, and the crash record's stack,
 * walked by frame pointers, would then skip its caller. */
DEMO_KEEP_FRAME static int read_die_face(unsigned face)
{
	count_roll();
	return loaded_die->faces[face % 6];
}

DEMO_KEEP_FRAME static int roll_dice(uint64_t seed)
{
	int face = read_die_face((unsigned)(seed % 6));
	return face + 1;   /* used after the call: no tail call, roll_dice stays on the stack */
}

/* A failure code per type: what a caller would log. */
static int failure_code(int type)
{
	switch (type) {
	case TM_NETWORK:    return ECONNRESET;
	case TM_DATABASE:   return EIO;
	case TM_GAME_LOGIC: return EINVAL;
	case TM_CONSENSUS:  return EPROTO;
	default:            return EAGAIN;
	}
}

_Noreturn static void panic_for(const struct demo_kind *k)
{
	uint64_t id = tm_current_id();
	switch (k->type) {
	case TM_NETWORK:    tm_panic("%s: malformed frame from peer %llu", k->name, (unsigned long long)(id % 64));
	case TM_DATABASE:   tm_panic("%s: page checksum mismatch in bets.db", k->name);
	case TM_GAME_LOGIC: tm_panic("%s: stake %lld is negative", k->name, -(long long)(id % 1000) - 1);
	case TM_CONSENSUS:  tm_panic("%s: vote for a block that is not the tip", k->name);
	default:            tm_panic("%s: invariant broken", k->name);
	}
}

int demo_task_body(void *arg)
{
	struct demo_job j = demo_job_unpack((uintptr_t)arg);
	if (j.kind >= demo_kind_count)
		return EINVAL;
	const struct demo_kind *k = &demo_kinds[j.kind];
	if (j.outcome == DEMO_CRASH)
		return roll_dice(tm_current_id()) > 0 ? 0 : 1;
	compute_us(j.cpu_us / 2);
	if (tm_sleep_ms(j.sleep_ms) < 0)
		return ECANCELED;   /* cancelled, or a bet past its deadline */
	compute_us(j.cpu_us - j.cpu_us / 2);
	if (strcmp(k->name, "log_rotate") == 0)
		tm_cleanup(60000);   /* trims the task records, as a log rotation trims logs */
	if (j.outcome == DEMO_PANIC)
		panic_for(k);
	if (j.outcome == DEMO_FAIL)
		return failure_code(k->type);
	if (strcmp(k->name, "dice_roll") == 0)
		atomic_fetch_add(&demo_game.dice_rolled, 1);
	else if (strcmp(k->name, "bet_process") == 0)
		atomic_fetch_add(&demo_game.bets_settled, 1);
	return 0;
}

int demo_round_close(void *arg)
{
	struct demo_round *r = arg;
	struct tm_result votes[DEMO_VOTES_PER_ROUND];
	int n;
	/* In steps, so that a cancel (the node stopping) is seen. */
	while ((n = tm_group_wait_all(r->group, 100, votes, DEMO_VOTES_PER_ROUND)) == -ETIMEDOUT) {
		if (tm_cancelled()) {
			tm_group_cancel(r->group);   /* the votes stop with the round */
			return ECANCELED;
		}
	}
	if (n < 0)
		return -n;
	int yes = 0;
	for (int i = 0; i < n && i < DEMO_VOTES_PER_ROUND; i++)
		yes += votes[i].status == TM_SUCCEEDED;
	if (yes < DEMO_QUORUM) {
		atomic_fetch_add(&demo_game.rounds_short, 1);
		return EPROTO;
	}
	const struct tm_chain_step steps[] = {
		{ "validate_block", demo_task_body, (void *)r->validate_job, TM_CONSENSUS, 0 },
		{ "commit_block", demo_task_body, (void *)r->commit_job, TM_CONSENSUS, 0 },
	};
	struct tm_result done[2];
	int ran = tm_chain(steps, 2, done);
	atomic_fetch_add(&demo_game.chain_spawns, ran > 0 ? (uint64_t)ran : 0);
	if (ran != 2 || done[1].status != TM_SUCCEEDED)
		return EPROTO;
	atomic_fetch_add(&demo_game.rounds_committed, 1);
	return 0;
}

int demo_game_sync(void *arg)
{
	struct demo_sync *s = arg;
	/* Each incarnation draws afresh, from where the last one stopped. */
	uint64_t rng = s->seed ^ atomic_load(&s->steps) * 0x9e3779b97f4a7c15ull;
	for (;;) {
		if (tm_sleep_ms(DEMO_SYNC_STEP_MS) < 0)
			return 0;   /* the node is stopping */
		compute_us(200);   /* hash the game state, compare with the peers' */
		uint64_t step = atomic_fetch_add(&s->steps, 1) + 1;
		if (demo_rand_unit(&rng) < s->desync_rate)
			tm_panic("game_sync: state hash diverged from the peers' at step %llu", (unsigned long long)step);
	}
}
