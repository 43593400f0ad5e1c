/* Fault containment: a synchronous SIGSEGV, SIGBUS, SIGFPE or SIGILL raised
 * by a task's own code ends that task (TM_CRASHED) instead of the process.
 *
 * The handler jumps back into task.c, which retires the thread. It contains a
 * fault only when all of these hold, and otherwise hands the signal on to
 * whatever was installed before, so that the process dies as it would have:
 *  - the kernel raised it (si_code > 0): kill, tgkill and sigqueue give <= 0,
 *    and the code that "faulted" then is just whoever was interrupted;
 *  - it arrived on a task thread inside a task body (tm__task_crash_jmp);
 *  - the faulting instruction is not libtaskmon's own: a fault there may have
 *    left a lock held or a record half written, and jumping out would turn
 *    one crash into a deadlock or a corrupt registry.
 * The Makefile moves all library code into the section taskmon_text, whose
 * bounds the linker provides as __start_/__stop_taskmon_text.
 *
 * Each task thread gets an alternate signal stack, without which a task that
 * overflows its stack could not be told about it.
 *
 * The handler may only do what is async-signal-safe: no malloc, no stdio, no
 * locks, no error sentences. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include "core.h"
#include "internal.h"

#define ALTSTACK_MIN (64u << 10)

/* Weak: a link that drops the section, or a linker that does not define
 * them, leaves them NULL, and then no fault is contained. */
extern const char __start_taskmon_text[] __attribute__((weak, visibility("hidden")));
extern const char __stop_taskmon_text[] __attribute__((weak, visibility("hidden")));

static const int fault_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL };
#define NSIG_FAULT (sizeof(fault_signals) / sizeof(fault_signals[0]))

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool enabled;
/* Written before the handlers are installed, read-only afterwards. */
static struct sigaction prev_action[NSIG_FAULT];
static size_t page_size, altstack_size;   /* altstack_size excludes the guard page */
static pthread_key_t altstack_key;        /* frees a stack whose thread skipped thread_exit */

struct altstack {
	unsigned char *map;   /* guard page, then the stack; NULL = none installed */
	stack_t prev;         /* what the thread had before, put back on exit */
};
static _Thread_local struct altstack alt;

/* ---- the handler ------------------------------------------------------------- */

static bool sent_signal(const siginfo_t *si)
{
	return si == NULL || si->si_code <= 0;
}

static int fault_index(int sig)
{
	for (size_t i = 0; i < NSIG_FAULT; i++)
		if (fault_signals[i] == sig)
			return (int)i;
	return -1;
}

/* false where this architecture's context is not known here: then the fault
 * might be the library's, and it is not contained. */
static bool fault_ip(const void *ucv, uintptr_t *ip)
{
	const ucontext_t *uc = ucv;

	if (uc == NULL)
		return false;
#if defined(__x86_64__)
	*ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	return true;
#elif defined(__aarch64__)
	*ip = (uintptr_t)uc->uc_mcontext.pc;
	return true;
#else
	(void)ip;
	return false;
#endif
}

static bool in_library(uintptr_t ip)
{
	uintptr_t lo = (uintptr_t)__start_taskmon_text, hi = (uintptr_t)__stop_taskmon_text;

	if (lo == 0 || hi <= lo)
		return true;   /* bounds unknown: it may be */
	return ip >= lo && ip < hi;
}

static void set_action(int sig, const struct sigaction *sa)
{
	sigaction(sig, sa, NULL);
}

/* Gives the signal to whoever had it before us. A handler is called as the
 * kernel would have called it; for the default action the disposition is put
 * back, so that a fault recurs when this handler returns and a sent signal,
 * raised again, arrives then (it is blocked until then). */
static void pass_on(int sig, siginfo_t *si, void *uc)
{
	int i = fault_index(sig);
	struct sigaction p;

	if (i < 0)
		return;
	p = prev_action[i];
	if (p.sa_handler == SIG_IGN && sent_signal(si))
		return;
	if (p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN) {
		if (p.sa_flags & SA_RESETHAND)
			set_action(sig, &(struct sigaction){ .sa_handler = SIG_DFL });
		pthread_sigmask(SIG_BLOCK, &p.sa_mask, NULL);   /* undone when we return */
		if (p.sa_flags & SA_SIGINFO)
			p.sa_sigaction(sig, si, uc);
		else
			p.sa_handler(sig);
		return;
	}
	/* SIG_IGN for a real fault ends up here too: the kernel does not let a
	 * fault it raises again be ignored, and kills the process. */
	set_action(sig, &p);
	if (sent_signal(si))
		raise(sig);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	int saved_errno = errno;
	uintptr_t ip;
	sigjmp_buf *jb;

	if (!sent_signal(si) && fault_ip(uc, &ip) && !in_library(ip) &&
	    (jb = tm__task_crash_jmp()) != NULL) {
		tm__task_note_crash(sig, si->si_code, (uint64_t)(uintptr_t)si->si_addr, (uint64_t)ip);
		siglongjmp(*jb, 2);   /* task.c: JUMP_CRASH */
	}
	pass_on(sig, si, uc);
	errno = saved_errno;
}

/* ---- installing ---------------------------------------------------------------- */

static void altstack_release(struct altstack *a);

static void altstack_dtor(void *p)
{
	altstack_release(p);
}

static void size_stacks(void)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t want = (size_t)SIGSTKSZ * 4;   /* SIGSTKSZ may be a sysconf call */

	page_size = page > 0 ? (size_t)page : 4096;
	if (want < ALTSTACK_MIN)
		want = ALTSTACK_MIN;
	altstack_size = (want + page_size - 1) / page_size * page_size;
}

/* Undoes the first n installations. */
static void uninstall(size_t n)
{
	for (size_t i = 0; i < n; i++)
		set_action(fault_signals[i], &prev_action[i]);
}

static int install(void)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	int r;

	size_stacks();
	r = pthread_key_create(&altstack_key, altstack_dtor);
	if (r != 0)
		return tm__fail(r, "cannot create the key for fault containment's signal stacks: %s",
				strerror(r));
	/* A fault in the handler itself must kill the process, not re-enter it. */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NSIG_FAULT; i++)
		sigaddset(&sa.sa_mask, fault_signals[i]);
	for (size_t i = 0; i < NSIG_FAULT; i++) {
		if (sigaction(fault_signals[i], &sa, &prev_action[i]) != 0) {
			int e = errno;
			uninstall(i);
			pthread_key_delete(altstack_key);
			return tm__fail(e, "cannot install the handler for %s that contains task faults: %s",
					strsignal(fault_signals[i]), strerror(e));
		}
	}
	return 0;
}

int tm__contain_init(void)
{
	int r = 0;

	if (atomic_load(&enabled))
		return 0;
	pthread_mutex_lock(&init_lock);
	if (!atomic_load(&enabled)) {
		r = install();
		if (r == 0)
			atomic_store(&enabled, true);
	}
	pthread_mutex_unlock(&init_lock);
	return r;
}

bool tm__contain_enabled(void)
{
	return atomic_load(&enabled);
}

/* ---- per-thread alternate stacks --------------------------------------------- */

/* A guard page below the stack: a handler that overran it would otherwise
 * write over whatever the kernel mapped there. */
int tm__contain_thread_start(void)
{
	size_t len = altstack_size + page_size;
	unsigned char *m;
	stack_t ss;

	if (!atomic_load(&enabled) || alt.map != NULL)
		return 0;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		return tm__fail(e, "cannot map a signal stack for fault containment: %s", strerror(e));
	}
	ss = (stack_t){ .ss_sp = m + page_size, .ss_size = altstack_size };
	if (mprotect(m, page_size, PROT_NONE) != 0 || sigaltstack(&ss, &alt.prev) != 0) {
		int e = errno;
		munmap(m, len);
		return tm__fail(e, "cannot install a signal stack for fault containment: %s", strerror(e));
	}
	alt.map = m;
	pthread_setspecific(altstack_key, &alt);
	return 0;
}

/* Puts back the thread's previous stack only if ours is still the one in
 * place; and never unmaps a stack the thread may be running on. */
static void altstack_release(struct altstack *a)
{
	stack_t cur, back = a->prev;

	if (a->map == NULL)
		return;
	if (sigaltstack(NULL, &cur) != 0 || (cur.ss_flags & SS_ONSTACK))
		return;
	if (cur.ss_sp == a->map + page_size && !(cur.ss_flags & SS_DISABLE)) {
		back.ss_flags &= SS_DISABLE;
		if (sigaltstack(&back, NULL) != 0)
			return;
	}
	munmap(a->map, altstack_size + page_size);
	a->map = NULL;
}

void tm__contain_thread_exit(void)
{
	if (alt.map == NULL)
		return;
	altstack_release(&alt);
	if (alt.map == NULL)
		pthread_setspecific(altstack_key, NULL);
}
