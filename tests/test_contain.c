/* Fault containment (lib/contain.c): a task's own SIGSEGV, SIGBUS, SIGFPE or
 * SIGILL ends it TM_CRASHED; every other fault still kills the process.
 *
 * Each scenario runs in a child that re-executes this binary, for three
 * reasons: containment, once on, stays on for the life of a process (and the
 * "off" cases need a process where it never was); a scenario that should
 * kill its process must not take the test run with it; and cmocka swaps its
 * own SIGSEGV/SIGILL/SIGFPE/SIGBUS handlers in and out around every test,
 * which would uninstall the library's. A child checks what it can itself and
 * exits 0, or prints the failed check and exits 1; the parent checks how it
 * ended. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "taskmon.h"
#include "taskmon_shm.h"
#include "test_util.h"

#define CHILD_FLAG      "--contain-child"
#define CHILD_TIMEOUT_S 30
#define JOIN_MS         10000
#define FN_SPAN         4096     /* a faulting instruction lies this close after its function's start */
#define SURVIVED        3        /* exit code of a child that should have been killed */

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#endif
#if defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#define TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#if __has_feature(thread_sanitizer)
#define SANITIZED 1
#define TSAN 1
#endif
#endif

/* The faults are the point: no sanitizer check may get to them first (UBSan
 * would stop at the null store and the division, TSan's shadow access could
 * fault in its own runtime instead of in the function). */
#ifdef SANITIZED
#define FAULTS __attribute__((noinline, no_sanitize("address", "undefined", "thread")))
#else
#define FAULTS __attribute__((noinline))
#endif

/* ASan would handle SIGSEGV, SIGBUS and SIGFPE itself and, by default, keep
 * the program from installing its own SIGSEGV handler. */
#ifdef SANITIZED
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:allow_user_segv_handler=1";
}
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0";
}
#endif

/* ---- in the child ------------------------------------------------------------ */

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c))                                                                 \
			fail_child(__LINE__, "%s", #c);                                   \
	} while (0)
#define CHECK_EQ(a, b)                                                                    \
	do {                                                                              \
		long long a_ = (long long)(a), b_ = (long long)(b);                       \
		if (a_ != b_)                                                             \
			fail_child(__LINE__, "%s == %s (%lld != %lld)", #a, #b, a_, b_);  \
	} while (0)

__attribute__((format(printf, 2, 3), noreturn))
static void fail_child(int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: check failed: ", __FILE__, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (%s)\n", tm_last_error());
	_exit(1);
}

static pid_t current_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static bool ip_in(uint64_t ip, uintptr_t fn)
{
	return ip >= fn && ip < fn + FN_SPAN;
}

static void init_contained(void)
{
	unsetenv("TASKMON_CONFIG");
	CHECK_EQ(tm_init_opts(TM_INIT_OPTS(.contain_faults = true)), 0);
}

static void init_plain(void)
{
	unsetenv("TASKMON_CONFIG");
	CHECK_EQ(tm_init(NULL), 0);
}

static tm_task *spawn(const char *name, tm_fn fn, void *arg)
{
	tm_task *t = NULL;

	CHECK_EQ(tm_spawn(&t, name, fn, arg, NULL), 0);
	return t;
}

static enum tm_status join(tm_task *t, int *rc)
{
	enum tm_status st = TM_RUNNING;

	CHECK_EQ(tm_join(t, JOIN_MS, &st, rc), 0);
	return st;
}

/* Spawns fn, waits for it to end TM_CRASHED, returns what it left. */
static struct tm_crash_info crash_of(const char *name, tm_fn fn, void *arg, uint64_t *id_out)
{
	struct tm_crash_info ci;
	tm_task *t = spawn(name, fn, arg);
	uint64_t id = tm_task_id(t);

	CHECK_EQ(join(t, NULL), TM_CRASHED);
	memset(&ci, 0xa5, sizeof(ci));
	CHECK_EQ(tm_task_crash(id, &ci), 0);
	if (id_out)
		*id_out = id;
	return ci;
}

/* The process was meant to die before this. */
static int survived(unsigned wait_ms)
{
	sleep_ms(wait_ms);
	fprintf(stderr, "the child was not killed\n");
	return SURVIVED;
}

/* ---- faulting bodies --------------------------------------------------------- */

static _Atomic pid_t fault_tid;

FAULTS static int null_writer(void *arg)
{
	volatile int *volatile p = NULL;   /* gcc would otherwise turn the store into a trap, or drop it */

	(void)arg;
	atomic_store(&fault_tid, current_tid());
	*p = 1;
	return 0;
}

FAULTS static int divider(void *arg)
{
	volatile int num = 1, den = 0;

	(void)arg;
	return num / den;
}

static volatile int recurse_stop = -1;   /* never reached: keeps the recursion from looking infinite */

FAULTS static int recurse(int depth)
{
	volatile char frame[256];   /* well under a page per frame: each one touches the guard */

	frame[0] = (char)depth;
	if (depth == recurse_stop)
		return 0;
	return recurse(depth + 1) + frame[0];
}

static _Atomic uintptr_t overflow_base;

static int overflower(void *arg)
{
	volatile char here = 0;

	(void)arg;
	atomic_store(&overflow_base, (uintptr_t)&here);
	return recurse(0) + here;
}

FAULTS static int illegal(void *arg)
{
	(void)arg;
#if defined(__x86_64__)
	__asm__ volatile("ud2");
#elif defined(__aarch64__)
	__asm__ volatile(".inst 0x00000000");   /* udf #0 */
#endif
	return 0;
}

static void *bus_map;

FAULTS static int bus_reader(void *arg)
{
	(void)arg;
	return *(volatile char *)bus_map;   /* the file behind the page is empty */
}

static int raiser(void *arg)
{
	raise(*(int *)arg);
	return 0;
}

static int killer(void *arg)
{
	kill(getpid(), *(int *)arg);
	sleep_ms(5000);   /* the signal may land on any thread */
	return 0;
}

static int quick(void *arg)
{
	(void)arg;
	return 0;
}

static int record_tid(void *arg)
{
	atomic_store((_Atomic pid_t *)arg, current_tid());
	return 0;
}

static atomic_int bystander_ticks, bystander_started, bystander_gate;

static int bystander(void *arg)
{
	(void)arg;
	atomic_fetch_add(&bystander_started, 1);
	while (!atomic_load(&bystander_gate)) {
		atomic_fetch_add(&bystander_ticks, 1);
		tm_sleep_ms(1);
	}
	return 0;
}

/* ---- scenarios: contained --------------------------------------------------- */

#define BYSTANDERS 4

/* A write through NULL ends only its own task; the others run on to success. */
static int scn_null_write(void)
{
	tm_task *by[BYSTANDERS];
	struct tm_crash_info ci;
	struct tm_stats st;
	int rc = -1;

	init_contained();
	for (int i = 0; i < BYSTANDERS; i++)
		by[i] = spawn("bystander", bystander, NULL);
	CHECK(wait_count(&bystander_started, BYSTANDERS, JOIN_MS));
	ci = crash_of("null_writer", null_writer, NULL, NULL);
	CHECK_EQ(ci.signo, SIGSEGV);
	CHECK_EQ(ci.code, SEGV_MAPERR);
	CHECK_EQ(ci.addr, 0);
	CHECK(ip_in(ci.ip, (uintptr_t)null_writer));
	int ticks = atomic_load(&bystander_ticks);
	CHECK(wait_count(&bystander_ticks, ticks + 10 * BYSTANDERS, JOIN_MS));
	gate_open(&bystander_gate);
	for (int i = 0; i < BYSTANDERS; i++) {
		uint64_t id = tm_task_id(by[i]);
		struct tm_crash_info none;
		CHECK_EQ(join(by[i], &rc), TM_SUCCEEDED);
		CHECK_EQ(rc, 0);
		CHECK_EQ(tm_task_crash(id, &none), -ENOENT);
	}
	CHECK_EQ(tm_get_stats(&st), 0);
	CHECK_EQ(st.total_crashed, 1);
	CHECK_EQ(st.by_type[TM_GENERAL].crashed, 1);
	CHECK_EQ(st.total_completed, BYSTANDERS);
	tm_shutdown();
	return 0;
}

/* The thread that ran the fault is never given another task, and goes away. */
static int scn_retire(void)
{
	_Atomic pid_t a = 0, b = 0, after = 0;
	char path[64];
	struct stat sb;
	pid_t crashed;

	init_contained();
	/* Control: with nothing else running, one thread serves task after task;
	 * the pause lets it get back to idle. */
	CHECK_EQ(join(spawn("first", record_tid, &a), NULL), TM_SUCCEEDED);
	sleep_ms(50);
	CHECK_EQ(join(spawn("second", record_tid, &b), NULL), TM_SUCCEEDED);
	CHECK_EQ(atomic_load(&b), atomic_load(&a));
	sleep_ms(50);
	crash_of("null_writer", null_writer, NULL, NULL);
	crashed = atomic_load(&fault_tid);
	CHECK_EQ(crashed, atomic_load(&a));
	sleep_ms(50);
	CHECK_EQ(join(spawn("after", record_tid, &after), NULL), TM_SUCCEEDED);
	CHECK(atomic_load(&after) != 0);
	CHECK(atomic_load(&after) != crashed);
	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)crashed);
	for (int i = 0; i < 500 && stat(path, &sb) == 0; i++)
		sleep_ms(10);
	CHECK(stat(path, &sb) != 0);
	tm_shutdown();
	return 0;
}

static int scn_div_zero(void)
{
	struct tm_crash_info ci;

	init_contained();
	ci = crash_of("divider", divider, NULL, NULL);
	CHECK_EQ(ci.signo, SIGFPE);
	CHECK_EQ(ci.code, FPE_INTDIV);
	CHECK(ip_in(ci.ip, (uintptr_t)divider));
	CHECK_EQ(ci.addr, ci.ip);   /* x86 reports the instruction as the address */
	CHECK_EQ(join(spawn("quick", quick, NULL), NULL), TM_SUCCEEDED);
	tm_shutdown();
	return 0;
}

/* Only the alternate signal stack lets the handler run at all here. */
static int scn_stack_overflow(void)
{
	struct tm_crash_info ci;
	uintptr_t base;

	init_contained();
	ci = crash_of("overflower", overflower, NULL, NULL);
	base = atomic_load(&overflow_base);
	CHECK_EQ(ci.signo, SIGSEGV);
	CHECK(ci.code == SEGV_ACCERR || ci.code == SEGV_MAPERR);
	CHECK(ip_in(ci.ip, (uintptr_t)recurse));
	CHECK(ci.addr < base && base - ci.addr < (16u << 20));   /* just below the task's stack */
	CHECK_EQ(join(spawn("quick", quick, NULL), NULL), TM_SUCCEEDED);
	tm_shutdown();
	return 0;
}

static int scn_illegal(void)
{
	struct tm_crash_info ci;

	init_contained();
	ci = crash_of("illegal", illegal, NULL, NULL);
	CHECK_EQ(ci.signo, SIGILL);
	CHECK(ci.code == ILL_ILLOPN || ci.code == ILL_ILLOPC);
	CHECK(ip_in(ci.ip, (uintptr_t)illegal));
	CHECK_EQ(join(spawn("quick", quick, NULL), NULL), TM_SUCCEEDED);
	tm_shutdown();
	return 0;
}

static int scn_bus(void)
{
	struct tm_crash_info ci;
	char path[] = "/tmp/tm_contain.XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	unlink(path);
	bus_map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(bus_map != MAP_FAILED);
	close(fd);
	init_contained();
	ci = crash_of("bus_reader", bus_reader, NULL, NULL);
	CHECK_EQ(ci.signo, SIGBUS);
	CHECK_EQ(ci.code, BUS_ADRERR);
	CHECK_EQ(ci.addr, (uintptr_t)bus_map);
	CHECK(ip_in(ci.ip, (uintptr_t)bus_reader));
	CHECK_EQ(join(spawn("quick", quick, NULL), NULL), TM_SUCCEEDED);
	tm_shutdown();
	return 0;
}

/* contain_faults = true in the file is enough. */
static int scn_config_file(void)
{
	char path[] = "/tmp/tm_contain.XXXXXX";
	int fd = mkstemp(path);
	static const char text[] = "[task_management]\ncontain_faults = true\n";
	struct tm_crash_info ci;

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, text, sizeof(text) - 1), (long long)sizeof(text) - 1);
	close(fd);
	unsetenv("TASKMON_CONFIG");
	CHECK_EQ(tm_init(path), 0);
	unlink(path);
	ci = crash_of("null_writer", null_writer, NULL, NULL);
	CHECK_EQ(ci.signo, SIGSEGV);
	tm_shutdown();
	return 0;
}

static int count_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0, ch;

	CHECK(f != NULL);
	while ((ch = getc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

#define LEAK_CRASHES 100

/* Each retired thread gives its signal stack back (two mappings: the stack
 * and its guard page). */
static int scn_no_leak(void)
{
	int before;

	init_contained();
	crash_of("null_writer", null_writer, NULL, NULL);   /* warm-up: caches settle */
	sleep_ms(50);
	before = count_mappings();
	for (int i = 0; i < LEAK_CRASHES; i++)
		crash_of("null_writer", null_writer, NULL, NULL);
	sleep_ms(200);   /* the last retired threads finish exiting */
	CHECK(count_mappings() - before < LEAK_CRASHES / 2);
	tm_shutdown();
	return 0;
}

/* ---- scenarios: not contained ------------------------------------------------ */

static int scn_off_null_write(void)
{
	init_plain();
	join(spawn("null_writer", null_writer, NULL), NULL);
	return survived(0);
}

static int scn_raise_in_task(void)
{
	static int sig = SIGSEGV;

	init_contained();
	join(spawn("raiser", raiser, &sig), NULL);
	return survived(0);
}

static int scn_kill_in_task(void)
{
	static int sig = SIGSEGV;

	init_contained();
	join(spawn("killer", killer, &sig), NULL);
	return survived(0);
}

static void *thread_null_writer(void *arg)
{
	null_writer(arg);
	return NULL;
}

static int scn_non_task_thread(void)
{
	pthread_t th;

	init_contained();
	CHECK_EQ(join(spawn("quick", quick, NULL), NULL), TM_SUCCEEDED);   /* the pool is up */
	CHECK_EQ(pthread_create(&th, NULL, thread_null_writer, NULL), 0);
	pthread_join(th, NULL);
	return survived(0);
}

static int bad_status_pointer(void *arg)
{
	tm_task *t = spawn("quick", quick, NULL);

	return tm_join(t, JOIN_MS, (enum tm_status *)arg, NULL);
}

/* tm_join stores the status through the caller's pointer in libtaskmon's own
 * code: a fault there is the library's, however a task caused it. A scalar
 * store, so that no compiler or sanitizer turns it into a call to memcpy
 * elsewhere; into a page of ours, so that no sanitizer's shadow lookup of a
 * wild address faults first. */
static int scn_library_fault(void)
{
	void *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(page != MAP_FAILED);
	init_contained();
	join(spawn("bad_status_pointer", bad_status_pointer, page), NULL);
	return survived(0);
}

/* ---- scenarios: handing on to the handler installed before ------------------ */

#define PREV_SIGINFO_EXIT 42
#define PREV_PLAIN_EXIT   43

static void prev_siginfo(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIGSEGV && si != NULL && si->si_code == SEGV_MAPERR && si->si_addr == NULL)
		_exit(PREV_SIGINFO_EXIT);
	_exit(4);
}

static void prev_plain(int sig)
{
	_exit(sig == SIGBUS ? PREV_PLAIN_EXIT : 5);
}

static int scn_prev_siginfo(void)
{
	struct sigaction sa = { .sa_sigaction = prev_siginfo, .sa_flags = SA_SIGINFO };
	pthread_t th;

	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
	init_contained();
	CHECK_EQ(pthread_create(&th, NULL, thread_null_writer, NULL), 0);
	pthread_join(th, NULL);
	return survived(0);
}

static atomic_int prev_calls;

static void prev_counting(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	atomic_fetch_add(&prev_calls, 1);
}

/* Handing a signal on to a real handler leaves containment in place. */
static int scn_prev_kept(void)
{
	struct sigaction sa = { .sa_sigaction = prev_counting, .sa_flags = SA_SIGINFO };
	struct tm_crash_info ci;

	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
	init_contained();
	CHECK_EQ(raise(SIGSEGV), 0);
	CHECK_EQ(atomic_load(&prev_calls), 1);
	ci = crash_of("null_writer", null_writer, NULL, NULL);
	CHECK_EQ(ci.signo, SIGSEGV);
	CHECK_EQ(atomic_load(&prev_calls), 1);
	tm_shutdown();
	return 0;
}

static int scn_prev_plain(void)
{
	struct sigaction sa = { .sa_handler = prev_plain };
	static int sig = SIGBUS;

	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGBUS, &sa, NULL), 0);
	init_contained();
	join(spawn("raiser", raiser, &sig), NULL);
	return survived(0);
}

static const struct scenario {
	const char *name;
	int (*run)(void);
} scenarios[] = {
	{ "null_write", scn_null_write },
	{ "retire", scn_retire },
	{ "div_zero", scn_div_zero },
	{ "stack_overflow", scn_stack_overflow },
	{ "illegal", scn_illegal },
	{ "bus", scn_bus },
	{ "config_file", scn_config_file },
	{ "no_leak", scn_no_leak },
	{ "off_null_write", scn_off_null_write },
	{ "raise_in_task", scn_raise_in_task },
	{ "kill_in_task", scn_kill_in_task },
	{ "non_task_thread", scn_non_task_thread },
	{ "library_fault", scn_library_fault },
	{ "prev_siginfo", scn_prev_siginfo },
	{ "prev_plain", scn_prev_plain },
	{ "prev_kept", scn_prev_kept },
};

static int child_main(const char *name)
{
	struct rlimit no_core = { 0, 0 };

	setrlimit(RLIMIT_CORE, &no_core);   /* the deaths are expected: no core files */
	alarm(CHILD_TIMEOUT_S);             /* a hang ends as SIGALRM, which no test accepts */
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (strcmp(scenarios[i].name, name) == 0)
			return scenarios[i].run();
	fprintf(stderr, "no scenario '%s'\n", name);
	return 2;
}

/* ---- in the parent ------------------------------------------------------------ */

static int run_child(const char *name)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_contain", CHILD_FLAG, name, (char *)NULL);
		_exit(126);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void describe(const char *name, int status)
{
	if (WIFSIGNALED(status))
		print_message("scenario %s: killed by %s\n", name, strsignal(WTERMSIG(status)));
	else
		print_message("scenario %s: exit code %d\n", name, WEXITSTATUS(status));
}

static void expect_exit(const char *name, int code)
{
	int status = run_child(name);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != code) {
		describe(name, status);
		fail_msg("scenario %s should have exited %d", name, code);
	}
}

static void expect_killed(const char *name, int sig)
{
	int status = run_child(name);

	if (!WIFSIGNALED(status) || WTERMSIG(status) != sig) {
		describe(name, status);
		fail_msg("scenario %s should have been killed by %s", name, strsignal(sig));
	}
}

static void test_null_write_contained(void **state)
{
	(void)state;
	expect_exit("null_write", 0);
}

static void test_crashed_thread_retired(void **state)
{
	(void)state;
	expect_exit("retire", 0);
}

static void test_div_zero_contained(void **state)
{
	(void)state;
#if defined(__x86_64__)
	expect_exit("div_zero", 0);
#else
	skip();   /* integer division by zero does not trap on this architecture */
#endif
}

static void test_stack_overflow_contained(void **state)
{
	(void)state;
	expect_exit("stack_overflow", 0);
}

static void test_illegal_instruction_contained(void **state)
{
	(void)state;
#if defined(__x86_64__) || defined(__aarch64__)
	expect_exit("illegal", 0);
#else
	skip();   /* no known undefined instruction for this architecture here */
#endif
}

static void test_sigbus_contained(void **state)
{
	(void)state;
	expect_exit("bus", 0);
}

static void test_enabled_by_config_file(void **state)
{
	(void)state;
	expect_exit("config_file", 0);
}

static void test_signal_stacks_freed(void **state)
{
	(void)state;
#ifdef TSAN
	print_message("skipped: TSan keeps mappings for every thread that ever ran, so counting them says nothing\n");
	skip();
#else
	expect_exit("no_leak", 0);
#endif
}

static void test_off_by_default(void **state)
{
	(void)state;
	expect_killed("off_null_write", SIGSEGV);
}

static void test_raise_not_contained(void **state)
{
	(void)state;
	expect_killed("raise_in_task", SIGSEGV);
}

static void test_kill_not_contained(void **state)
{
	(void)state;
	expect_killed("kill_in_task", SIGSEGV);
}

static void test_non_task_thread_not_contained(void **state)
{
	(void)state;
	expect_killed("non_task_thread", SIGSEGV);
}

static void test_library_fault_not_contained(void **state)
{
	(void)state;
	expect_killed("library_fault", SIGSEGV);
}

static void test_previous_siginfo_handler_called(void **state)
{
	(void)state;
	expect_exit("prev_siginfo", PREV_SIGINFO_EXIT);
}

static void test_previous_handler_keeps_containment(void **state)
{
	(void)state;
	expect_exit("prev_kept", 0);
}

static void test_previous_plain_handler_called(void **state)
{
	(void)state;
	expect_exit("prev_plain", PREV_PLAIN_EXIT);
}

/* The linker's bounds of libtaskmon's code, as contain.c sees them: every
 * public function inside, this program's own code outside. */
extern const char __start_taskmon_text[] __attribute__((weak));
extern const char __stop_taskmon_text[] __attribute__((weak));

static void test_library_section_bounds(void **state)
{
	const uintptr_t lib_fns[] = {
		(uintptr_t)tm_init, (uintptr_t)tm_init_opts, (uintptr_t)tm_shutdown,
		(uintptr_t)tm_last_error, (uintptr_t)tm_spawn, (uintptr_t)tm_join,
		(uintptr_t)tm_release, (uintptr_t)tm_cancel, (uintptr_t)tm_cancel_type,
		(uintptr_t)tm_cancelled, (uintptr_t)tm_sleep_ms, (uintptr_t)tm_panic,
		(uintptr_t)tm_current_id, (uintptr_t)tm_task_id, (uintptr_t)tm_type_register,
		(uintptr_t)tm_type_name, (uintptr_t)tm_status_name, (uintptr_t)tm_get_stats,
		(uintptr_t)tm_spawn_latency_ns, (uintptr_t)tm_list_tasks,
		(uintptr_t)tm_task_message, (uintptr_t)tm_cleanup, (uintptr_t)tm_spawn_critical,
		(uintptr_t)tm_group_new, (uintptr_t)tm_group_wait_all, (uintptr_t)tm_group_free,
		(uintptr_t)tm_chain, (uintptr_t)tm_task_crash, (uintptr_t)tm_shm_open_pid,
		(uintptr_t)tm_shm_read_tasks, (uintptr_t)tm_shm_list, (uintptr_t)tm_hist_bucket,
	};
	const uintptr_t own_fns[] = {
		(uintptr_t)child_main, (uintptr_t)null_writer, (uintptr_t)recurse,
		(uintptr_t)test_library_section_bounds,
	};
	uintptr_t lo = (uintptr_t)__start_taskmon_text, hi = (uintptr_t)__stop_taskmon_text;

	(void)state;
	assert_true(lo != 0);
	assert_true(hi > lo);
	for (size_t i = 0; i < sizeof(lib_fns) / sizeof(lib_fns[0]); i++) {
		uintptr_t f = lib_fns[i];
		if (f < lo || f >= hi)
			fail_msg("library function #%zu at %#lx is outside [%#lx, %#lx)", i,
				 (unsigned long)f, (unsigned long)lo, (unsigned long)hi);
	}
	for (size_t i = 0; i < sizeof(own_fns) / sizeof(own_fns[0]); i++) {
		uintptr_t f = own_fns[i];
		if (f >= lo && f < hi)
			fail_msg("test function #%zu at %#lx is inside the library's code", i, (unsigned long)f);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_library_section_bounds),
		cmocka_unit_test(test_null_write_contained),
		cmocka_unit_test(test_crashed_thread_retired),
		cmocka_unit_test(test_div_zero_contained),
		cmocka_unit_test(test_stack_overflow_contained),
		cmocka_unit_test(test_illegal_instruction_contained),
		cmocka_unit_test(test_sigbus_contained),
		cmocka_unit_test(test_enabled_by_config_file),
		cmocka_unit_test(test_signal_stacks_freed),
		cmocka_unit_test(test_off_by_default),
		cmocka_unit_test(test_raise_not_contained),
		cmocka_unit_test(test_kill_not_contained),
		cmocka_unit_test(test_non_task_thread_not_contained),
		cmocka_unit_test(test_library_fault_not_contained),
		cmocka_unit_test(test_previous_siginfo_handler_called),
		cmocka_unit_test(test_previous_plain_handler_called),
		cmocka_unit_test(test_previous_handler_keeps_containment),
	};

	if (argc == 3 && strcmp(argv[1], CHILD_FLAG) == 0)
		_exit(child_main(argv[2]));
	return cmocka_run_group_tests_name("contain", tests, NULL, NULL);
}
