/* What the three sources share (source.c) and what each implements. */
#ifndef TASKTOP_SOURCE_INTERNAL_H
#define TASKTOP_SOURCE_INTERNAL_H

#include "crashes.h"
#include "source.h"

struct tt_source;

struct tt_source_ops {
	/* A new sample (not yet derived) in *out; or a negative errno with the
	 * source's status set. */
	int  (*sample)(struct tt_source *s, int timeout_ms, struct tt_model **out);
	void (*close)(struct tt_source *s);
	/* replay only */
	long (*seek)(struct tt_source *s, size_t index);
	bool (*pos)(const struct tt_source *s, struct tt_replay_pos *out);
	long (*seek_time)(struct tt_source *s, uint64_t unix_ns);
};

struct tt_source {
	enum tt_source_kind kind;
	const struct tt_source_ops *ops;
	struct tt_source_opts opts;      /* strings point into the copies below */
	char socket_path[108];
	char shm_dir[TT_PATH_CAP];
	char replay_dir[TT_PATH_CAP];
	char status[TT_TEXT_CAP];
	enum tt_health health;
	char kernel_off_reason[TT_TEXT_CAP];   /* standalone: why */
	struct tt_model *prev;           /* the last sample, derived (live and standalone) */
	uint64_t seq;
	struct tt_crashlog *crashes;
	char crash_path[TT_PATH_CAP + 32];
	void *impl;
};

void tt__source_status(struct tt_source *s, enum tt_health h, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Allocates the common part and copies the options. */
int  tt__source_new(struct tt_source **out, enum tt_source_kind kind, const struct tt_source_ops *ops,
                    const struct tt_source_opts *opts, char *err, size_t errlen);
/* Crash log at path into m (when readable), up to until_unix_ns (0 = all). */
void tt__source_crashes(struct tt_source *s, struct tt_model *m, const char *path, uint64_t until_unix_ns);
/* The socket path the options name (opts, $TASKMON_SOCKET, the default). */
const char *tt__socket_path(const struct tt_source_opts *o);

/* Each kind's opener, for tt_source_open_auto. */
int tt__shm_open(struct tt_source **out, const struct tt_source_opts *opts, const char *why_off, char *err,
                 size_t errlen);
/* 0 when a collector accepts a connection at path; negative errno otherwise. */
int tt__socket_probe(const char *path);

uint64_t tt__now_ns(int clock);

#endif
