/* Crash records: merged, symbolized, kept, appended to the crash log. */
#include "crashlog.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "taskmon.h"
#include "taskmon_shm.h"

/* ---- names ---------------------------------------------------------------- */

static const char *const sig_names[] = {
	[SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",     [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
	[SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",   [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
	[SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1",   [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
	[SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",   [SIGTERM] = "SIGTERM", [SIGSTKFLT] = "SIGSTKFLT",
	[SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT",   [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
	[SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU",   [SIGURG] = "SIGURG",   [SIGXCPU] = "SIGXCPU",
	[SIGXFSZ] = "SIGXFSZ", [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
	[SIGIO] = "SIGIO",     [SIGPWR] = "SIGPWR",     [SIGSYS] = "SIGSYS",
};

const char *tmd_signal_name(int sig)
{
	if (sig <= 0 || (size_t)sig >= sizeof(sig_names) / sizeof(sig_names[0]))
		return NULL;
	return sig_names[sig];
}

/* Signal-specific codes, by number (linux/include/uapi/asm-generic/siginfo.h):
 * the C library may lack the newer names. Index = code - 1. */
static const char *const segv_codes[] = { "SEGV_MAPERR", "SEGV_ACCERR", "SEGV_BNDERR", "SEGV_PKUERR", "SEGV_ACCADI",
                                          "SEGV_ADIDERR", "SEGV_ADIPERR", "SEGV_MTEAERR", "SEGV_MTESERR", "SEGV_CPERR" };
static const char *const bus_codes[] = { "BUS_ADRALN", "BUS_ADRERR", "BUS_OBJERR", "BUS_MCEERR_AR", "BUS_MCEERR_AO" };
static const char *const ill_codes[] = { "ILL_ILLOPC", "ILL_ILLOPN", "ILL_ILLADR", "ILL_ILLTRP", "ILL_PRVOPC",
                                         "ILL_PRVREG", "ILL_COPROC", "ILL_BADSTK", "ILL_BADIADDR" };
static const char *const fpe_codes[] = { "FPE_INTDIV", "FPE_INTOVF", "FPE_FLTDIV", "FPE_FLTOVF", "FPE_FLTUND",
                                         "FPE_FLTRES", "FPE_FLTINV", "FPE_FLTSUB", NULL, NULL, NULL, NULL, NULL,
                                         "FPE_FLTUNK", "FPE_CONDTRAP" };
static const char *const trap_codes[] = { "TRAP_BRKPT", "TRAP_TRACE", "TRAP_BRANCH", "TRAP_HWBKPT", "TRAP_UNK",
                                          "TRAP_PERF" };
static const char *const sys_codes[] = { "SYS_SECCOMP", "SYS_USER_DISPATCH" };

#define PICK(tab) ((size_t)code <= sizeof(tab) / sizeof(tab[0]) ? tab[code - 1] : NULL)

const char *tmd_si_code_name(int sig, int code)
{
	switch (code) {
	case 0:     return "SI_USER";
	case 0x80:  return "SI_KERNEL";
	case -1:    return "SI_QUEUE";
	case -2:    return "SI_TIMER";
	case -3:    return "SI_MESGQ";
	case -4:    return "SI_ASYNCIO";
	case -5:    return "SI_SIGIO";
	case -6:    return "SI_TKILL";
	case -7:    return "SI_DETHREAD";
	case -60:   return "SI_ASYNCNL";
	}
	if (code < 1)
		return NULL;
	switch (sig) {
	case SIGSEGV: return PICK(segv_codes);
	case SIGBUS:  return PICK(bus_codes);
	case SIGILL:  return PICK(ill_codes);
	case SIGFPE:  return PICK(fpe_codes);
	case SIGTRAP: return PICK(trap_codes);
	case SIGSYS:  return PICK(sys_codes);
	default:      return NULL;
	}
}

/* ---- the task, from the registry ------------------------------------------ */

static void copy_str(char *dst, size_t cap, const char *src, size_t max)
{
	size_t n = strnlen(src, max);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* The task with that id; or, for id 0, the task running on thread tid (a
 * task spawned past its spawner's kernel_trace_rate fired no probe, so the
 * kernel could not name it: the registry still can). */
static int find_task(tm_shm_reader *r, uint64_t id, uint32_t tid, struct tm_task_info *out)
{
	int rc = -ENOENT;
	for (size_t cap = 256; cap <= (1u << 20); cap *= 4) {
		struct tm_task_info *t = malloc(cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		int n = tm_shm_read_tasks(r, t, cap, id == 0);
		for (int i = 0; i < n && rc == -ENOENT; i++)
			if (id ? t[i].id == id : (uint32_t)t[i].tid == tid && t[i].start_ns && !t[i].end_ns) {
				*out = t[i];
				rc = 0;
			}
		free(t);
		if (n < 0)
			return n;
		if (rc == 0 || (size_t)n < cap)
			break;
	}
	return rc;
}

static void type_name_from(tm_shm_reader *r, int type, char *out, size_t cap)
{
	struct tm_shm_type_snapshot *types = calloc(TM_MAX_TYPES, sizeof(*types));   /* ~10 KiB each */
	if (!types)
		return;
	int n = tm_shm_read_types(r, types, TM_MAX_TYPES);
	for (int i = 0; i < n; i++)
		if (types[i].id == type)
			copy_str(out, cap, types[i].name, sizeof(types[i].name));
	free(types);
}

/* Name and type of the task from the workload's registry; the workload's
 * executable name too. 0, or negative errno (-ENOENT: no segment, or no
 * such task in it). */
static int from_registry(struct tmd_crash_out *out, char *reg_comm, size_t comm_cap)
{
	tm_shm_reader *r;
	struct tm_task_info t;
	int rc = tm_shm_open_pid(&r, (pid_t)out->pid);
	if (rc < 0)
		return rc;
	copy_str(reg_comm, comm_cap, tm_shm_comm(r), 16);
	rc = find_task(r, out->task_id, out->tid, &t);
	if (rc == 0 && t.tid != 0 && (uint32_t)t.tid != out->tid)
		rc = -ESRCH;   /* an older process's segment, whose ids happen to match */
	if (rc == 0) {
		out->task_id = t.id;
		copy_str(out->task_name, sizeof(out->task_name), t.name, sizeof(t.name));
		out->task_type = t.type;
		out->type_name[0] = '\0';
		type_name_from(r, t.type, out->type_name, sizeof(out->type_name));
		out->task_known = true;
	}
	tm_shm_close(r);
	return rc;
}

static void from_opts(struct tmd_crash_out *out, const struct tmd_crash_opts *o)
{
	if (!o || !o->task_name || !out->task_id)
		return;
	copy_str(out->task_name, sizeof(out->task_name), o->task_name, TM_EV_NAME_MAX);
	out->task_type = o->task_type;
	const char *tn = o->type_name;
	if (!tn && o->task_type >= 0 && o->task_type < TM_BUILTIN_TYPES)
		tn = tm_type_name(o->task_type);
	copy_str(out->type_name, sizeof(out->type_name), tn ? tn : "", TM_EV_NAME_MAX);
	out->task_known = true;
}

/* ---- JSON ------------------------------------------------------------------ */

/* A JSON string of bytes that may not be UTF-8 (names from a forged ELF
 * file or registry): invalid bytes become '?'. NULL gives null. */
static json_t *jstr(const char *s)
{
	if (!s)
		return json_null();
	size_t n = strlen(s);
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	char *c = strdup(s);
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)c[i] >= 0x80)
			c[i] = '?';
	j = json_stringn(c, n);
	free(c);
	return j;
}

static json_t *jhex(uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "0x%llx", (unsigned long long)v);
	return json_string(b);
}

/* Sets key; a NULL value (out of memory) is remembered in *ok. */
static void put(json_t *o, const char *key, json_t *v, bool *ok)
{
	if (!v || json_object_set_new(o, key, v) != 0)
		*ok = false;
}

static json_t *frame_json(const struct tmd_frame *f)
{
	bool ok = true, mod = f->status != TMD_SYM_NO_MODULE, sym = f->status == TMD_SYM_OK;
	char hex[2 * TMD_BUILD_ID_MAX + 1];
	json_t *o = json_object();
	if (!o)
		return NULL;
	put(o, "addr", jhex(f->addr), &ok);
	put(o, "module", mod ? jstr(f->module) : json_null(), &ok);
	put(o, "offset", mod ? jhex(f->file_offset) : json_null(), &ok);
	put(o, "symbol", sym ? jstr(f->symbol) : json_null(), &ok);
	put(o, "symbol_offset", sym ? json_integer((json_int_t)f->sym_offset) : json_null(), &ok);
	put(o, "build_id", f->build_id_len ? jstr(tmd_build_id_hex(f->build_id, f->build_id_len, hex, sizeof(hex)))
	                                   : json_null(), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *task_json(const struct tmd_crash_out *out, const char *source)
{
	bool ok = true;
	if (!out->task_id)
		return json_null();
	json_t *o = json_object();
	if (!o)
		return NULL;
	put(o, "id", json_integer((json_int_t)out->task_id), &ok);
	put(o, "name", out->task_known ? jstr(out->task_name) : json_null(), &ok);
	put(o, "type", out->task_known && out->type_name[0] ? jstr(out->type_name) : json_null(), &ok);
	put(o, "type_id", out->task_known && out->task_type >= 0 ? json_integer(out->task_type) : json_null(), &ok);
	put(o, "source", jstr(source), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *now_json(void)
{
	struct timespec ts;
	struct tm tm;
	char b[40];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(b + n, sizeof(b) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return json_string(b);
}

static bool is_fault(const struct tmd_crash_out *out)
{
	return out->code > 0 && out->code < 0x80;   /* SI_KERNEL */
}

static json_t *record_json(const struct tmd_crash_out *out, const char *source)
{
	bool ok = true;
	json_t *o = json_object(), *frames = json_array();
	if (!o || !frames) {
		json_decref(o);
		json_decref(frames);
		return NULL;
	}
	put(o, "version", json_integer(1), &ok);
	put(o, "time", now_json(), &ok);
	put(o, "ts_ns", json_integer((json_int_t)out->ts_ns), &ok);
	put(o, "pid", json_integer(out->pid), &ok);
	put(o, "comm", jstr(out->comm), &ok);
	put(o, "tid", json_integer(out->tid), &ok);
	put(o, "thread", jstr(out->thread_comm), &ok);
	put(o, "task", task_json(out, source), &ok);
	put(o, "signal", jstr(tmd_signal_name(out->sig)), &ok);
	put(o, "signo", json_integer(out->sig), &ok);
	put(o, "code", jstr(tmd_si_code_name(out->sig, out->code)), &ok);
	put(o, "si_code", json_integer(out->code), &ok);
	put(o, "sender_pid", json_integer(out->sender_pid), &ok);
	put(o, "fault_addr", is_fault(out) ? jhex(out->addr) : json_null(), &ok);
	for (size_t i = 0; i < out->nframes && ok; i++) {
		json_t *f = frame_json(&out->frames[i]);
		if (!f || json_array_append_new(frames, f) != 0)
			ok = false;
	}
	put(o, "frames", frames, &ok);
	put(o, "frames_dropped", json_integer((json_int_t)out->frames_dropped), &ok);
	put(o, "stack_error", out->stack_error ? json_integer(out->stack_error) : json_null(), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- building -------------------------------------------------------------- */

static void fill_event(struct tmd_crash_out *out, const struct tm_ev_crash *ev)
{
	out->ts_ns = ev->h.ts_ns;
	out->task_id = ev->h.task_id;
	out->pid = ev->h.pid;
	out->tid = ev->h.tid;
	out->sig = ev->sig;
	out->code = ev->code;
	out->addr = ev->addr;
	out->sender_pid = ev->sender_pid;
	out->task_type = -1;
	if (!(ev->flags & TM_EVF_STACK) || ev->stack_sz <= 0)
		out->stack_error = ev->stack_sz < 0 && ev->stack_sz > INT_MIN ? (int)ev->stack_sz : -ENODATA;
	copy_str(out->thread_comm, sizeof(out->thread_comm), ev->comm, sizeof(ev->comm));
}

static int symbolize_frames(struct tmd_crash_out *out, const struct tm_ev_crash *ev, const struct tmd_maps *maps)
{
	size_t n = 0;
	if ((ev->flags & TM_EVF_STACK) && ev->stack_sz > 0)
		n = (size_t)ev->stack_sz / sizeof(ev->stack[0]);
	if (n > TM_EV_STACK_MAX)
		n = TM_EV_STACK_MAX;
	while (n > 0 && ev->stack[n - 1] == 0)
		n--;
	if (n == 0)
		return 0;
	out->frames = calloc(n, sizeof(*out->frames));
	if (!out->frames)
		return -ENOMEM;
	size_t kept = n;
	for (size_t i = 0; i < n && kept == n; i++) {   /* every frame but the innermost is a return address */
		tmd_symbolize_addr(maps, ev->stack[i], i > 0, &out->frames[i]);
		if (i > 0 && maps && out->frames[i].status == TMD_SYM_NO_MODULE)
			kept = i;   /* not code: the frame-pointer walk went astray here */
	}
	out->nframes = kept;
	out->frames_dropped = n - kept;
	return 0;
}

/* The caller's options: fields past its sz read as zero, unknown non-zero trailing bytes refused. */
static int read_opts(const struct tmd_crash_opts *in, struct tmd_crash_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (!in)
		return 0;
	if (in->sz < sizeof(in->sz))
		return -EINVAL;
	memcpy(o, in, in->sz < sizeof(*o) ? in->sz : sizeof(*o));
	for (size_t i = sizeof(*o); i < in->sz; i++)
		if (((const unsigned char *)in)[i])
			return -EINVAL;
	return 0;
}

int tmd_crash_build(const struct tm_ev_crash *ev, const struct tmd_maps *maps, const struct tmd_crash_opts *opts,
                    struct tmd_crash_out *out)
{
	char reg_comm[TM_EV_COMM_MAX] = "";
	const char *source = NULL;
	struct tmd_crash_opts o;
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));   /* releasable whatever happens */
	if (!ev || ev->h.kind != TM_EV_CRASH || read_opts(opts, &o) < 0)
		return -EINVAL;
	fill_event(out, ev);
	if (!o.no_registry && from_registry(out, reg_comm, sizeof(reg_comm)) == 0)
		source = "registry";
	if (!source && out->task_id && o.task_name) {
		from_opts(out, &o);
		source = "collector";
	}
	/* The workload's name as ps shows it, else as its registry has it, else the thread's. */
	const char *comm = maps && *tmd_maps_comm(maps) ? tmd_maps_comm(maps) : reg_comm[0] ? reg_comm : out->thread_comm;
	copy_str(out->comm, sizeof(out->comm), comm, TM_EV_COMM_MAX);
	int rc = symbolize_frames(out, ev, maps);
	if (rc == 0) {
		out->json = record_json(out, source);
		out->line = out->json ? json_dumps(out->json, JSON_COMPACT) : NULL;
		rc = out->line ? 0 : -ENOMEM;
	}
	if (rc < 0)
		tmd_crash_out_release(out);
	return rc;
}

void tmd_crash_out_release(struct tmd_crash_out *out)
{
	if (!out)
		return;
	free(out->frames);
	free(out->line);
	json_decref(out->json);
	out->frames = NULL;
	out->line = NULL;
	out->json = NULL;
	out->nframes = 0;
}

/* ---- the log ---------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The line, with a newline before it when the log's last line was cut (a
 * crash of ours, a full disk): each record stays a line of its own. */
static int append_line(int fd, const char *line)
{
	struct stat st;
	char last = '\n';
	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
		return -errno;
	size_t n = strlen(line);
	char *buf = malloc(n + 2);
	if (!buf)
		return -ENOMEM;
	size_t k = 0;
	if (last != '\n')
		buf[k++] = '\n';
	memcpy(buf + k, line, n);
	k += n;
	buf[k++] = '\n';
	int rc = write_all(fd, buf, k);   /* one write with O_APPEND: records of two writers do not interleave */
	free(buf);
	if (rc < 0 && ftruncate(fd, st.st_size) != 0)
		return rc;   /* the cut line stays; the next append starts on a new line */
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	return rc;
}

int tmd_crash_append(const char *state_dir, struct tmd_crash_out *out)
{
	char path[PATH_MAX];
	if (!state_dir || !out || !out->line)
		return -EINVAL;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", state_dir, TMD_CRASH_LOG) >= sizeof(path))
		return out->write_error = -ENAMETOOLONG;
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);   /* read: its last byte */
	if (fd < 0)
		return out->write_error = -errno;
	int rc = append_line(fd, out->line);
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	return out->write_error = rc;
}

int tmd_crash_record(const struct tm_ev_crash *ev, const struct tmd_maps *maps, const char *state_dir,
                     struct tmd_crash_out *out)
{
	int rc = tmd_crash_build(ev, maps, NULL, out);
	return rc < 0 ? rc : tmd_crash_append(state_dir, out);
}

/* ---- text ----------------------------------------------------------------------- */

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int fmt_frame(const struct tmd_frame *f, char *buf, size_t cap)
{
	switch (f->status) {
	case TMD_SYM_OK:
		return snprintf(buf, cap, " %s+0x%llx (%s)", f->symbol, (unsigned long long)f->sym_offset,
		                base_name(f->module));
	case TMD_SYM_NO_MODULE:
		return snprintf(buf, cap, " 0x%llx", (unsigned long long)f->addr);
	default:
		return snprintf(buf, cap, " 0x%llx (%s+0x%llx)", (unsigned long long)f->addr, base_name(f->module),
		                (unsigned long long)f->file_offset);
	}
}

int tmd_crash_format_line(const struct tmd_crash_out *out, char *buf, size_t cap)
{
	char task[96] = "no task", addr[32] = "";
	const char *sig = tmd_signal_name(out->sig), *code = tmd_si_code_name(out->sig, out->code);
	if (out->task_id && out->task_known)
		snprintf(task, sizeof(task), "task %llu '%s' (%s)", (unsigned long long)out->task_id, out->task_name,
		         out->type_name[0] ? out->type_name : "?");
	else if (out->task_id)
		snprintf(task, sizeof(task), "task %llu", (unsigned long long)out->task_id);
	if (is_fault(out))
		snprintf(addr, sizeof(addr), " addr 0x%llx", (unsigned long long)out->addr);
	int n = snprintf(buf, cap, "crash  pid %u '%s' tid %u %s: %s (%s)%s at", out->pid, out->comm, out->tid, task,
	                 sig ? sig : "?", code ? code : "?", addr);
	for (size_t i = 0; i < out->nframes && n >= 0 && (size_t)n < cap; i++)
		n += fmt_frame(&out->frames[i], buf + n, cap - (size_t)n);
	if (out->nframes == 0 && n >= 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, " (no stack)");
	if (out->frames_dropped && n >= 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, " (+%zu frames past a broken frame chain)", out->frames_dropped);
	/* Names come from the workload (thread, task, symbols, paths): no byte of
	 * them may reach a terminal as a control sequence. */
	for (size_t i = 0; cap && buf[i]; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
			buf[i] = '?';
	return n;
}
