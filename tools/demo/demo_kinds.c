/* The node's kinds of task, the load mix, the packed job argument and the
 * random numbers the spawner draws its choices from. */
#include <string.h>

#include "demo.h"

/* Percent of spawns by type, from the seed's description of a dice-game node. */
const struct demo_share demo_mix[] = {
	{ TM_NETWORK, 3700 }, { TM_CONSENSUS, 2400 }, { TM_DATABASE, 1700 }, { TM_GAME_LOGIC, 1200 },
	{ TM_BACKGROUND, 600 }, { TM_MAINTENANCE, 300 }, { TM_UI, 80 }, { TM_GENERAL, 20 },
};
const unsigned demo_mix_count = sizeof(demo_mix) / sizeof(demo_mix[0]);

/* Waiting times are what a node on a LAN sees (peers answer in a few ms, a
 * disk write takes several); computing times keep the node at a few percent
 * of a core at the default rate. Bets must settle within 40 ms. */
const struct demo_kind demo_kinds[] = {
	/* name             type            weight sleep ms    cpu us       timeout late% special */
	{ "peer_recv",      TM_NETWORK,     40,    1,   15,    20,   80,    0,  0, false },
	{ "peer_send",      TM_NETWORK,     35,    1,   10,    20,   60,    0,  0, false },
	{ "gossip_relay",   TM_NETWORK,     15,    2,   20,    30,  100,    0,  0, false },
	{ "peer_handshake", TM_NETWORK,     10,    5,   40,   100,  300,    0,  0, false },
	{ "vote_round",     TM_CONSENSUS,    1,    5,   30,    50,  150,    0,  0, true },
	{ "round_close",    TM_CONSENSUS,    1,    0,    0,     0,    0,    0,  0, true },
	{ "validate_block", TM_CONSENSUS,    1,    2,   10,   200,  600,    0,  0, true },
	{ "commit_block",   TM_CONSENSUS,    1,    5,   20,   100,  300,    0,  0, true },
	{ "db_write",       TM_DATABASE,    50,    2,   12,    50,  200,    0,  0, false },
	{ "db_read",        TM_DATABASE,    35,    1,    6,    20,  100,    0,  0, false },
	{ "db_index",       TM_DATABASE,    15,    5,   25,   200,  800,    0,  0, false },
	{ "dice_roll",      TM_GAME_LOGIC,  40,    1,    5,    50,  200,    0,  0, false },
	{ "bet_process",    TM_GAME_LOGIC,  45,    5,   30,    50,  150,   40,  5, false },
	{ "payout_calc",    TM_GAME_LOGIC,  15,    2,    8,   100,  300,    0,  0, false },
	{ "metrics_flush",  TM_BACKGROUND,  40,   20,   80,   100,  400,    0,  0, false },
	{ "peer_score",     TM_BACKGROUND,  35,   10,   60,   200,  600,    0,  0, false },
	{ "cache_warm",     TM_BACKGROUND,  25,   30,  120,   300, 1000,    0,  0, false },
	{ "gc_sweep",       TM_MAINTENANCE, 40,   50,  150,  1000, 4000,    0,  0, false },
	{ "db_compact",     TM_MAINTENANCE, 30,  100,  300,  2000, 6000,    0,  0, false },
	{ "log_rotate",     TM_MAINTENANCE, 30,   20,   60,   100,  300,    0,  0, false },
	{ "ui_update",      TM_UI,          70,   16,   33,   200,  600,    0,  0, false },
	{ "ui_render",      TM_UI,          30,   16,   16,   500, 1500,    0,  0, false },
	{ "health_check",   TM_GENERAL,     60,    1,    5,    10,   50,    0,  0, false },
	{ "config_reload",  TM_GENERAL,     40,    2,   10,    50,  200,    0,  0, false },
};
const unsigned demo_kind_count = sizeof(demo_kinds) / sizeof(demo_kinds[0]);

int demo_kind_index(const char *name)
{
	for (unsigned i = 0; i < demo_kind_count; i++)
		if (strcmp(demo_kinds[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* 6 bits kind, 2 bits outcome, 12 bits sleep, 12 bits cpu/4: fits a 32-bit pointer. */
uintptr_t demo_job_pack(const struct demo_job *j)
{
	unsigned sleep = j->sleep_ms > 4095 ? 4095 : j->sleep_ms;
	unsigned cpu = j->cpu_us / 4 > 4095 ? 4095 : j->cpu_us / 4;
	return (uintptr_t)((j->kind & 63u) | ((unsigned)j->outcome & 3u) << 6 | sleep << 8 | cpu << 20);
}

struct demo_job demo_job_unpack(uintptr_t v)
{
	return (struct demo_job){ .kind = v & 63u, .outcome = (enum demo_outcome)(v >> 6 & 3u),
	                          .sleep_ms = v >> 8 & 4095u, .cpu_us = (v >> 20 & 4095u) * 4 };
}

uint64_t demo_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

unsigned demo_rand_range(uint64_t *state, unsigned lo, unsigned hi)
{
	return hi <= lo ? lo : lo + (unsigned)(demo_rand(state) % ((uint64_t)hi - lo + 1));
}

double demo_rand_unit(uint64_t *state)
{
	return (double)(demo_rand(state) >> 11) * (1.0 / 9007199254740992.0);
}
