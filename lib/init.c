/* Bringing the library up and down: configuration, registry, thread pool. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "core.h"
#include "internal.h"

struct tm__lib tm__g = {
	.init_lock = PTHREAD_MUTEX_INITIALIZER,
	.reclaim_lock = PTHREAD_MUTEX_INITIALIZER,
	.msg_lock = PTHREAD_MUTEX_INITIALIZER,
	.type_lock = PTHREAD_MUTEX_INITIALIZER,
};

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

/* At normal exit the segment goes; task threads may still run, so the
 * mapping stays until the process is gone. */
static void at_exit(void)
{
	if (atomic_load(&tm__g.ready) && tm__g.hdr) {
		__atomic_fetch_or(&tm__g.hdr->flags, TM_SHM_F_CLOSED, __ATOMIC_RELEASE);
		shm_unlink(tm__g.shm_name);
	}
}

/* The child of a fork has the parent's registry mapped but none of its
 * threads: it must not write the parent's segment, so it forgets the state and
 * builds its own on first use. */
static void after_fork_child(void)
{
	struct tm__lib *g = &tm__g;
	pthread_mutex_init(&g->init_lock, NULL);
	pthread_mutex_init(&g->reclaim_lock, NULL);
	pthread_mutex_init(&g->msg_lock, NULL);
	pthread_mutex_init(&g->type_lock, NULL);
	if (atomic_load(&g->ready)) {
		munmap(g->map, g->map_size);
		munmap(g->ctl, g->ctl_size);
		g->map = NULL;
		g->hdr = NULL;
	}
	atomic_store(&g->ready, false);
	atomic_store(&g->shutting_down, false);
	atomic_store(&g->running_total, 0);
	tm__pool_reset_after_fork();
	tm__task_forget_after_fork();
}

static void install_hooks(void)
{
	atexit(at_exit);
	pthread_atfork(NULL, NULL, after_fork_child);
}

static int load_config(struct tm__config *c, const char *path)
{
	char err[256];
	tm__config_defaults(c);
	if (!path) {
		path = getenv("TASKMON_CONFIG");
		if (path && !*path)
			path = NULL;
	}
	if (!path)
		return 0;
	int r = tm__config_load(c, path, err, sizeof(err));
	return r < 0 ? tm__fail(-r, "%s", err) : 0;
}

static int register_config_types(const struct tm__config *c)
{
	for (unsigned i = 0; i < c->ntypes; i++) {
		const struct tm__type_conf *t = &c->types[i];
		uint64_t timeout = t->has_timeout ? t->timeout_ms : c->default_timeout_ms;
		int r = tm__type_add(t->name, t->max_concurrent, timeout, t->stack_size);
		if (r < 0)
			return r;
	}
	return 0;
}

static int bring_up(const char *path, bool contain_faults)
{
	struct tm__lib *g = &tm__g;
	int r = load_config(&g->cfg, path);
	if (r < 0)
		return r;
	g->cfg.contain_faults |= contain_faults;
	g->trace_cost_ns = g->cfg.kernel_trace_rate ? 1000000000ull / g->cfg.kernel_trace_rate : 0;
	/* Handlers stay installed once on: containment is for the process's life. */
	if (g->cfg.contain_faults && (r = tm__contain_init()) < 0)
		return r;
	if ((r = tm__registry_create()) < 0)
		return r;
	g->epoch++;
	atomic_store(&g->running_total, 0);
	if ((r = register_config_types(&g->cfg)) < 0 || (r = tm__pool_init(&g->cfg)) < 0) {
		tm__registry_destroy();
		return r;
	}
	/* Last, with the registry and its types in place, and before tm_init
	 * returns, so before any task: a collector that answers has its probes
	 * attached before the first spawn. Failure is silent (no collector). */
	(void)tm__collector_register();
	return 0;
}

int tm_init_opts(const struct tm_init_opts *u)
{
	struct tm__lib *g = &tm__g;
	struct tm_init_opts o;
	int r = tm__read_opts(&o, sizeof(o), u, "init", "TM_INIT_OPTS");
	if (r < 0)
		return r;
	pthread_once(&hooks_once, install_hooks);
	pthread_mutex_lock(&g->init_lock);
	r = atomic_load(&g->ready) ? 0 : bring_up(o.config_path, o.contain_faults);
	if (r == 0)
		atomic_store_explicit(&g->ready, true, memory_order_release);
	pthread_mutex_unlock(&g->init_lock);
	return r;
}

int tm_init(const char *config_path)
{
	return tm_init_opts(TM_INIT_OPTS(.config_path = config_path));
}

int tm__ensure_init(void)
{
	if (atomic_load_explicit(&tm__g.ready, memory_order_acquire))
		return 0;
	return tm_init(NULL);
}

/* Cancels what runs until nothing does: tasks may spawn while being
 * cancelled, and those spawns are refused from the first pass on. */
static void cancel_and_wait_all(void)
{
	struct tm__lib *g = &tm__g;
	while (atomic_load(&g->running_total) > 0) {
		uint64_t ntypes = __atomic_load_n(&g->hdr->types_used, __ATOMIC_ACQUIRE);
		for (uint64_t t = 0; t < ntypes; t++)
			tm_cancel_type((int)t);
		for (int i = 0; i < 100 && atomic_load(&g->running_total) > 0; i++) {
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
		}
	}
}

void tm_shutdown(void)
{
	struct tm__lib *g = &tm__g;
	if (tm__in_task()) {
		tm__set_error("tm_shutdown cannot be called from inside a task: it waits for every task to end");
		return;
	}
	pthread_mutex_lock(&g->init_lock);
	if (atomic_load(&g->ready)) {
		atomic_store(&g->shutting_down, true);
		cancel_and_wait_all();
		tm__pool_stop();
		tm__registry_destroy();
		atomic_store(&g->ready, false);
		atomic_store(&g->shutting_down, false);
	}
	pthread_mutex_unlock(&g->init_lock);
}
