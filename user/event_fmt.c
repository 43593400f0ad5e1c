/* Kernel events as text. */
#include "event_fmt.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "taskmon.h"
#include "taskmon_events.h"

size_t tmd_event_size(unsigned kind)
{
	switch (kind) {
	case TM_EV_TASK_START:   return sizeof(struct tm_ev_task_start);
	case TM_EV_TASK_END:     return sizeof(struct tm_ev_task_end);
	case TM_EV_TASK_RESTART:
	case TM_EV_TASK_GIVEUP:  return sizeof(struct tm_ev_task_restart);
	case TM_EV_CRASH:        return sizeof(struct tm_ev_crash);
	case TM_EV_KILL:         return sizeof(struct tm_ev_kill);
	case TM_EV_EXIT:         return sizeof(struct tm_ev_exit);
	default:                 return 0;
	}
}

/* Kernel strings are NUL-terminated by the helpers; this bounds them anyway. */
#define STR(a) (int)strnlen((a), sizeof(a)), (a)

static int fmt_start(const struct tm_ev_task_start *e, char *buf, size_t cap)
{
	if (e->flags & TM_EVF_NO_SPAWN)
		return snprintf(buf, cap, "start  pid %u tid %u task %llu (spawn not seen)", e->h.pid,
		                e->h.tid, e->h.task_id);
	return snprintf(buf, cap, "start  pid %u tid %u task %llu '%.*s' type %u latency %.1f us"
	                " (run-queue %.1f us%s)", e->h.pid, e->h.tid, e->h.task_id, STR(e->name), e->type,
	                e->latency_ns / 1e3, e->runq_ns / 1e3, e->flags & TM_EVF_NEW_THREAD ? ", new thread" : "");
}

static int fmt_end(const struct tm_ev_task_end *e, char *buf, size_t cap)
{
	if (e->flags & (TM_EVF_NOT_STARTED | TM_EVF_PARTIAL))
		return snprintf(buf, cap, "end    pid %u tid %u task %llu status %d rc %d (%s)", e->h.pid,
		                e->h.tid, e->h.task_id, e->status, e->rc,
		                e->flags & TM_EVF_NOT_STARTED ? "never started" : "start not seen");
	const char *status = e->flags & TM_EVF_THREAD_EXIT ? "thread exited" : tm_status_name((enum tm_status)e->status);
	return snprintf(buf, cap, "end    pid %u tid %u task %llu %s rc %d: on-cpu %.3f ms run-queue %.3f ms"
	                " blocked %.3f ms, %u voluntary %u involuntary switches, %u migrations", e->h.pid, e->h.tid,
	                e->h.task_id, status, e->rc, e->oncpu_ns / 1e6, e->runq_ns / 1e6, e->blocked_ns / 1e6,
	                e->nvcsw, e->nivcsw,
	                e->migrations);
}

static int fmt_crash(const struct tm_ev_crash *e, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "crash  pid %u tid %u task %llu '%.*s' signal %d (%s) code %d addr 0x%llx"
	                 " stack", e->h.pid, e->h.tid, e->h.task_id, STR(e->comm), e->sig,
	                 sigabbrev_np(e->sig) ? sigabbrev_np(e->sig) : "?", e->code, e->addr);
	size_t frames = e->stack_sz > 0 ? (size_t)e->stack_sz / 8 : 0;
	for (size_t i = 0; i < frames && i < TM_EV_STACK_MAX && n > 0 && (size_t)n < cap; i++) {
		bool scanned = (e->flags & TM_EVF_STACK_SCAN) && i == e->scan_from;
		n += snprintf(buf + n, cap - (size_t)n, "%s 0x%llx", scanned ? " | scanned:" : "", e->stack[i]);
	}
	if (!frames && n > 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, " none (%lld)", e->stack_sz);
	return n;
}

static int fmt_kill(const struct tm_ev_kill *e, char *buf, size_t cap)
{
	return snprintf(buf, cap, "kill   pid %u tid %u task %llu signal %d code %d from pid %u tid %u '%.*s'",
	                e->h.pid, e->h.tid, e->h.task_id, e->sig, e->code, e->sender_pid, e->sender_tid,
	                STR(e->sender_comm));
}

static int fmt_exit(const struct tm_ev_exit *e, char *buf, size_t cap)
{
	if (e->sig)
		return snprintf(buf, cap, "exit   pid %u '%.*s' killed by signal %d (%s)%s", e->h.pid, STR(e->comm),
		                e->sig, sigabbrev_np(e->sig) ? sigabbrev_np(e->sig) : "?",
		                e->core_dumped ? ", core dumped" : "");
	return snprintf(buf, cap, "exit   pid %u '%.*s' exit code %d", e->h.pid, STR(e->comm), e->exit_code);
}

static int fmt_restart(const struct tm_ev_task_restart *e, char *buf, size_t cap)
{
	if (e->h.kind == TM_EV_TASK_GIVEUP)
		return snprintf(buf, cap, "giveup pid %u task %llu after %llu restarts", e->h.pid,
		                e->h.task_id, e->attempt);
	return snprintf(buf, cap, "restart pid %u task %llu attempt %llu in %llu ms", e->h.pid,
	                e->h.task_id, e->attempt, e->delay_ms);
}

int tmd_event_format(const void *data, size_t len, char *buf, size_t cap)
{
	const struct tm_ev_hdr *h = data;
	if (len < sizeof(*h) || cap == 0)
		return -EBADMSG;
	size_t need = tmd_event_size(h->kind);
	if (!need || len < need)
		return -EBADMSG;
	switch (h->kind) {
	case TM_EV_TASK_START:  fmt_start(data, buf, cap); break;
	case TM_EV_TASK_END:    fmt_end(data, buf, cap); break;
	case TM_EV_CRASH:       fmt_crash(data, buf, cap); break;
	case TM_EV_KILL:        fmt_kill(data, buf, cap); break;
	case TM_EV_EXIT:        fmt_exit(data, buf, cap); break;
	default:                fmt_restart(data, buf, cap); break;
	}
	/* Names and comms are the workload's bytes: none may reach a terminal as a control sequence. */
	for (size_t i = 0; buf[i]; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
			buf[i] = '?';
	return (int)h->kind;
}
