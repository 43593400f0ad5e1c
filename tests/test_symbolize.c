/* Symbolizer and crash records, without privileges: addresses of this test
 * binary (PIE) and of libc, a child that is gone by the time its addresses
 * are symbolized, truncated and corrupted copies of a real ELF file, and the
 * JSON of crash records built from synthetic kernel events.
 *
 * `test_symbolize --child` is the child: it prints the addresses of a
 * function of its own and of libc, then serves commands on stdin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <jansson.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crashlog.h"
#include "symbolize.h"
#include "taskmon.h"
#include "taskmon_events.h"
#include "test_util.h"

extern char **environ;

/* Functions whose addresses the tests symbolize: not inlined, not merged. */
__attribute__((noinline)) int tsym_marker(int x);
__attribute__((noinline)) int tsym_marker(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * 3 + 1;
}

__attribute__((noinline)) static int tsym_static_fn(int x)
{
	__asm__ volatile("" ::: "memory");
	return tsym_marker(x) + 7;
}

__attribute__((noinline)) static int tsym_caller(int x)
{
	__asm__ volatile("" ::: "memory");
	return tsym_static_fn(x) * 2;
}

static uintptr_t addr_of(int (*fn)(int))
{
	return (uintptr_t)fn;
}

static void self_exe(char *out, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", out, cap - 1);
	out[n > 0 ? n : 0] = '\0';
}

/* ---- the child ------------------------------------------------------------ */

static int child_main(void)
{
	char line[PATH_MAX + 16];
	void *h = NULL;
	printf("ready %p %p\n", (void *)addr_of(tsym_static_fn), (void *)gnu_get_libc_version);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "dlopen ", 7) == 0) {
			h = dlopen(line + 7, RTLD_NOW | RTLD_LOCAL);
			printf("%p\n", h ? dlsym(h, "elf_version") : NULL);
			fflush(stdout);
		} else if (strcmp(line, "exit") == 0) {
			break;
		}
	}
	return tsym_caller(1) == 0;   /* keeps the functions referenced */
}

struct child {
	pid_t pid;
	FILE *in, *out;
	uintptr_t fn, libc_fn;
};

static void child_start(struct child *c)
{
	char exe[PATH_MAX];
	int to[2], from[2];
	self_exe(exe, sizeof(exe));
	assert_int_equal(pipe2(to, O_CLOEXEC), 0);
	assert_int_equal(pipe2(from, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, to[0], 0);
	posix_spawn_file_actions_adddup2(&fa, from[1], 1);
	char *argv[] = { exe, (char *)"--child", NULL };
	assert_int_equal(posix_spawn(&c->pid, exe, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(to[0]);
	close(from[1]);
	c->in = fdopen(to[1], "w");
	c->out = fdopen(from[0], "r");
	void *fn, *lfn;
	char line[128];
	assert_non_null(fgets(line, sizeof(line), c->out));
	assert_int_equal(sscanf(line, "ready %p %p", &fn, &lfn), 2);
	c->fn = (uintptr_t)fn;
	c->libc_fn = (uintptr_t)lfn;
}

static void child_say(struct child *c, const char *cmd)
{
	fprintf(c->in, "%s\n", cmd);
	fflush(c->in);
}

static int child_end(struct child *c)
{
	int st = -1;
	child_say(c, "exit");
	fclose(c->in);
	fclose(c->out);
	waitpid(c->pid, &st, 0);
	return st;
}

/* ---- helpers -------------------------------------------------------------- */

static char tmpdir[64];

static int group_setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/test_symbolize.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	tmd_symcache_clear();
	return system(cmd) == 0 ? 0 : -1;
}

static bool same_file(const char *a, const char *b)
{
	struct stat x, y;
	return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

static struct tmd_maps *snap_self(void)
{
	struct tmd_maps *m = NULL;
	assert_int_equal(tmd_maps_snapshot(getpid(), &m), 0);
	assert_non_null(m);
	return m;
}

/* The module that holds addr, as the dynamic linker sees it. */
static const char *dl_module(uintptr_t addr)
{
	Dl_info di;
	assert_true(dladdr((void *)addr, &di) != 0);
	return di.dli_fname;
}

/* Load bias of the main program: ELF virtual address = runtime address - bias. */
static int first_bias(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	*(uintptr_t *)data = info->dlpi_addr;
	return 1;
}

static uintptr_t exe_bias(void)
{
	uintptr_t b = 0;
	dl_iterate_phdr(first_bias, &b);
	return b;
}

/* Where addr of the main program is in its file, from the loader's program headers. */
struct off_ctx {
	uintptr_t addr;
	uint64_t off;
	bool found;
};

static int first_offset(struct dl_phdr_info *info, size_t size, void *data)
{
	struct off_ctx *c = data;
	(void)size;
	for (size_t i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + p->p_vaddr;
		if (p->p_type == PT_LOAD && c->addr >= lo && c->addr - lo < p->p_filesz) {
			c->off = c->addr - lo + p->p_offset;
			c->found = true;
		}
	}
	return 1;
}

static uint64_t exe_file_offset(uintptr_t addr)
{
	struct off_ctx c = { addr, 0, false };
	dl_iterate_phdr(first_offset, &c);
	assert_true(c.found);
	return c.off;
}

/* ---- symbolizing ------------------------------------------------------------ */

static void test_self_pie(void **state)
{
	(void)state;
	char exe[PATH_MAX];
	struct tmd_frame f;
	struct tmd_maps *m = snap_self();
	self_exe(exe, sizeof(exe));
	assert_true(tmd_maps_count(m) >= 3);   /* this binary, libc, ld.so at least */
	assert_string_equal(tmd_maps_comm(m), "test_symbolize");

	assert_int_equal(tmd_symbolize(m, addr_of(tsym_static_fn) + 5, &f), TMD_SYM_OK);
	print_message("tsym_static_fn+5 = %s+%llu in %s, file offset 0x%llx\n", f.symbol,
	              (unsigned long long)f.sym_offset, f.module, (unsigned long long)f.file_offset);
	assert_string_equal(f.symbol, "tsym_static_fn");   /* a local symbol: .symtab */
	assert_int_equal(f.sym_offset, 5);
	assert_true(same_file(f.module, exe));
	/* PIE: loaded at a bias; the offset is where those bytes are in the file. */
	assert_true(exe_bias() != 0);
	assert_int_equal(f.file_offset, exe_file_offset(addr_of(tsym_static_fn) + 5));

	uint8_t id[TMD_BUILD_ID_MAX];
	int n = tmd_elf_build_id(exe, id, sizeof(id));
	assert_true(n >= 0);
	assert_int_equal(f.build_id_len, (size_t)n);
	assert_memory_equal(f.build_id, id, (size_t)n);

	assert_int_equal(tmd_symbolize(m, addr_of(tsym_marker), &f), TMD_SYM_OK);
	assert_string_equal(f.symbol, "tsym_marker");
	assert_int_equal(f.sym_offset, 0);

	/* A return address is looked up one byte back: the call, not what follows it. */
	assert_int_equal(tmd_symbolize_addr(m, addr_of(tsym_caller) + 1, true, &f), TMD_SYM_OK);
	assert_string_equal(f.symbol, "tsym_caller");
	assert_int_equal(f.sym_offset, 1);
	tmd_symbolize_addr(m, addr_of(tsym_caller), true, &f);
	assert_true(f.status != TMD_SYM_OK || strcmp(f.symbol, "tsym_caller") != 0);

	/* The library's own code (section taskmon_text) is in this binary too. */
	assert_int_equal(tmd_symbolize(m, (uintptr_t)tm_task_id, &f), TMD_SYM_OK);
	assert_string_equal(f.symbol, "tm_task_id");
	tmd_maps_free(m);
}

static void test_libc_dynsym(void **state)
{
	(void)state;
	struct tmd_frame f;
	struct tmd_maps *m = snap_self();

	/* Not intercepted by any sanitizer: libc's own, from its .dynsym. */
	uintptr_t v = (uintptr_t)gnu_get_libc_version;
	assert_int_equal(tmd_symbolize(m, v + 2, &f), TMD_SYM_OK);
	assert_string_equal(f.symbol, "gnu_get_libc_version");
	assert_int_equal(f.sym_offset, 2);
	assert_true(same_file(f.module, dl_module(v)));
	assert_non_null(strstr(f.module, "libc.so"));

	/* printf: libc's (or a sanitizer's interceptor); any alias at that address. */
	uintptr_t p = (uintptr_t)&printf;
	assert_int_equal(tmd_symbolize(m, p, &f), TMD_SYM_OK);
	assert_int_equal(f.sym_offset, 0);
	assert_true(dlsym(RTLD_DEFAULT, f.symbol) == (void *)p);
	assert_true(same_file(f.module, dl_module(p)));
	print_message("&printf = %s in %s; build-id %zu bytes\n", f.symbol, f.module, f.build_id_len);

	/* Nothing is mapped at 0; a pseudo-file has a name and no symbols. */
	assert_int_equal(tmd_symbolize(m, 16, &f), TMD_SYM_NO_MODULE);
	assert_string_equal(f.module, "");
	uintptr_t vdso = 0;
	for (size_t i = 0; i < tmd_maps_count(m); i++)
		if (strcmp(tmd_maps_get(m, i)->path, "[vdso]") == 0)
			vdso = tmd_maps_get(m, i)->start;
	if (vdso) {
		assert_int_equal(tmd_symbolize(m, vdso + 8, &f), TMD_SYM_NO_FILE);
		assert_string_equal(f.module, "[vdso]");
	}
	tmd_maps_free(m);
}

/* Symbolized from the copy taken while it ran, after it is gone. */
static void test_dead_child(void **state)
{
	(void)state;
	struct child c;
	struct tmd_maps *m = NULL;
	struct tmd_frame f;
	child_start(&c);
	assert_int_equal(tmd_maps_snapshot(c.pid, &m), 0);
	assert_int_equal(tmd_maps_pid(m), c.pid);
	assert_int_equal(tmd_maps_changed(m), 0);
	int st = child_end(&c);
	assert_true(WIFEXITED(st));

	struct tmd_maps *gone = NULL;
	assert_int_equal(tmd_maps_snapshot(c.pid, &gone), -ESRCH);
	assert_null(gone);
	assert_int_equal(tmd_maps_changed(m), -ESRCH);
	assert_int_equal(tmd_maps_refresh(m), -ESRCH);   /* and the copy is kept */

	assert_int_equal(tmd_symbolize(m, c.fn + 3, &f), TMD_SYM_OK);
	assert_string_equal(f.symbol, "tsym_static_fn");
	assert_int_equal(f.sym_offset, 3);
	assert_int_equal(tmd_symbolize(m, c.libc_fn, &f), TMD_SYM_OK);
	assert_string_equal(f.symbol, "gnu_get_libc_version");
	assert_non_null(strstr(f.module, "libc.so"));
	/* Our own maps do not have its layout (unless address randomization is off). */
	bool randomized = c.fn != addr_of(tsym_static_fn);
	print_message("child %d: tsym_static_fn at %#lx (ours %#lx: layout %s)\n", (int)c.pid, (unsigned long)c.fn,
	              (unsigned long)addr_of(tsym_static_fn), randomized ? "differs" : "the same, ASLR off");
	tmd_maps_free(m);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	assert_true(in >= 0 && out >= 0);
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

/* A library loaded later: the change is seen, the refreshed copy has it,
 * and its file, deleted since, is still read through the cache. */
static void test_refresh_new_library(void **state)
{
	(void)state;
	struct child c;
	struct tmd_maps *m = NULL;
	struct tmd_frame f;
	char lib[128], cmd[160], line[64];
	void *fn = NULL;
	snprintf(lib, sizeof(lib), "%s/libcopy.so", tmpdir);
	copy_file(dl_module((uintptr_t)elf_version), lib);   /* a file no process maps yet */
	child_start(&c);
	assert_int_equal(tmd_maps_snapshot(c.pid, &m), 0);
	size_t before = tmd_maps_count(m);

	uint64_t t0 = now_ns();
	for (int i = 0; i < 100; i++)
		assert_int_equal(tmd_maps_changed(m), 0);
	uint64_t per_check = (now_ns() - t0) / 100;

	snprintf(cmd, sizeof(cmd), "dlopen %s", lib);
	child_say(&c, cmd);
	assert_non_null(fgets(line, sizeof(line), c.out));
	assert_int_equal(sscanf(line, "%p", &fn), 1);
	assert_non_null(fn);
	assert_int_equal(tmd_symbolize(m, (uintptr_t)fn, &f), TMD_SYM_NO_MODULE);   /* not in the old copy */
	assert_int_equal(tmd_maps_changed(m), 1);
	assert_int_equal(tmd_maps_refresh(m), 1);
	assert_int_equal(tmd_maps_changed(m), 0);
	assert_int_equal(tmd_maps_refresh(m), 0);
	assert_true(tmd_maps_count(m) > before);

	assert_int_equal(unlink(lib), 0);
	child_end(&c);
	assert_int_equal(tmd_symbolize(m, (uintptr_t)fn, &f), TMD_SYM_OK);
	assert_string_equal(f.symbol, "elf_version");
	assert_string_equal(f.module, lib);
	print_message("maps change check: %llu us per call (%zu executable mappings)\n",
	              (unsigned long long)(per_check / 1000), tmd_maps_count(m));
	tmd_maps_free(m);
}

/* taskmond's copies: bounded, re-checked when due, fresh for a crash, kept a little after the end. */
static void test_maps_set(void **state)
{
	(void)state;
	struct child a, b;
	char lib[128], cmd[160], line[64];
	void *fn = NULL;
	struct tmd_frame f;
	uint64_t t = 1000000000000ull;   /* the caller's clock */
	snprintf(lib, sizeof(lib), "%s/libset.so", tmpdir);
	copy_file(dl_module((uintptr_t)elf_version), lib);
	struct tmd_maps_set *s = tmd_maps_set_new(2);
	assert_non_null(s);
	child_start(&a);
	child_start(&b);
	assert_int_equal(tmd_maps_set_add(s, a.pid, t), 0);
	assert_int_equal(tmd_maps_set_add(s, b.pid, t), 0);
	assert_int_equal(tmd_maps_set_add(s, getpid(), t), -ENOSPC);
	assert_int_equal(tmd_maps_set_add(s, a.pid, t), 0);   /* a new copy in place */
	assert_int_equal(tmd_maps_set_count(s), 2);
	assert_null(tmd_maps_set_get(s, getpid()));

	snprintf(cmd, sizeof(cmd), "dlopen %s", lib);
	child_say(&a, cmd);
	assert_non_null(fgets(line, sizeof(line), a.out));
	assert_int_equal(sscanf(line, "%p", &fn), 1);
	assert_int_equal(tmd_maps_set_tick(s, t + 500000000ull), 0);      /* not due yet */
	assert_int_equal(tmd_maps_set_tick(s, t + 1000000000ull), 1);     /* due: a changed */
	assert_int_equal(tmd_symbolize(tmd_maps_set_get(s, a.pid), (uintptr_t)fn, &f), TMD_SYM_OK);
	assert_string_equal(f.symbol, "elf_version");

	/* Loaded after the last check: the crash takes a fresh copy while the process has one. */
	snprintf(lib, sizeof(lib), "%s/libset2.so", tmpdir);
	copy_file(dl_module((uintptr_t)elf_version), lib);
	snprintf(cmd, sizeof(cmd), "dlopen %s", lib);
	child_say(&b, cmd);
	assert_non_null(fgets(line, sizeof(line), b.out));
	assert_int_equal(sscanf(line, "%p", &fn), 1);
	assert_int_equal(tmd_symbolize(tmd_maps_set_get(s, b.pid), (uintptr_t)fn, &f), TMD_SYM_NO_MODULE);
	assert_int_equal(tmd_symbolize(tmd_maps_set_latest(s, b.pid, t), (uintptr_t)fn, &f), TMD_SYM_OK);
	assert_string_equal(f.module, lib);

	/* Gone: the copy stays for two more ticks, for the events still queued. */
	child_end(&b);
	tmd_maps_set_retire(s, b.pid);
	assert_non_null(tmd_maps_set_latest(s, b.pid, t));   /* the process is gone: the copy as it is */
	tmd_maps_set_tick(s, t + 2000000000ull);
	assert_non_null(tmd_maps_set_get(s, b.pid));
	tmd_maps_set_tick(s, t + 3000000000ull);
	assert_null(tmd_maps_set_get(s, b.pid));
	assert_int_equal(tmd_maps_set_count(s), 1);
	/* A process never added: a copy is taken for the crash when it can be. */
	assert_non_null(tmd_maps_set_latest(s, getpid(), t));
	assert_int_equal(tmd_maps_set_count(s), 2);
	child_end(&a);
	tmd_maps_set_free(s);
}

static void test_build_id_frame(void **state)
{
	(void)state;
	struct tmd_frame f, g;
	struct tmd_maps *m = snap_self();
	assert_int_equal(tmd_symbolize(m, addr_of(tsym_static_fn) + 9, &f), TMD_SYM_OK);
	if (f.build_id_len == 0) {
		print_message("skipped: this binary was linked without --build-id\n");
		tmd_maps_free(m);
		skip();
	}
	assert_int_equal(tmd_symbolize_build_id(m, f.build_id, f.build_id_len, f.file_offset, &g), TMD_SYM_OK);
	assert_string_equal(g.symbol, "tsym_static_fn");
	assert_int_equal(g.sym_offset, 9);
	assert_string_equal(g.module, f.module);
	/* From the cache alone, and an id nothing has. */
	assert_int_equal(tmd_symbolize_build_id(NULL, f.build_id, f.build_id_len, f.file_offset, &g), TMD_SYM_OK);
	assert_string_equal(g.symbol, "tsym_static_fn");
	uint8_t other[20] = { 1, 2, 3 };
	assert_int_equal(tmd_symbolize_build_id(m, other, sizeof(other), f.file_offset, &g), TMD_SYM_NO_MODULE);
	tmd_maps_free(m);
}

static void test_cache_bound(void **state)
{
	(void)state;
	struct tmd_symcache_stats st;
	struct tmd_frame f;
	tmd_symcache_clear();
	tmd_symcache_limit(2);
	struct tmd_maps *m = snap_self();
	tmd_symcache_stats(&st);
	assert_true(st.files <= 2);
	uint64_t ev0 = st.evictions;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tmd_symbolize(m, addr_of(tsym_static_fn), &f), TMD_SYM_OK);
		assert_string_equal(f.symbol, "tsym_static_fn");
		assert_int_equal(tmd_symbolize(m, (uintptr_t)gnu_get_libc_version, &f), TMD_SYM_OK);
		assert_int_equal(tmd_symbolize(m, (uintptr_t)elf_version, &f), TMD_SYM_OK);
		assert_string_equal(f.symbol, "elf_version");
		assert_int_equal(tmd_symbolize(m, (uintptr_t)json_object, &f), TMD_SYM_OK);
	}
	tmd_symcache_stats(&st);
	assert_true(st.files <= 2);
	assert_true(st.evictions > ev0);
	tmd_symcache_limit(0);
	tmd_symcache_stats(&st);
	assert_int_equal(st.limit, 64);
	tmd_maps_free(m);
}

/* ---- maps text ------------------------------------------------------------------ */

static void test_maps_text(void **state)
{
	(void)state;
	struct tmd_maps *m;
	struct tmd_frame f;
	static const char text[] =
		"7f0000001000-7f0000002000 r-xp 00001000 fd:01 1234                     /opt/a b/lib x.so\n"
		"7f0000000000-7f0000001000 r--p 00000000 fd:01 1234                     /opt/a b/lib x.so\n"
		"7f0000003000-7f0000004000 r-xp 00002000 08:02 99 /usr/lib/gone.so (deleted)\n"
		"7f0000005000-7f0000006000 r-xp 00000000 00:00 0                          [vdso]\n"
		"7f0000007000-7f0000008000 rwxp 00000000 00:00 0 \n"
		"garbage line\n"
		"7f0000009000-7f0000008000 r-xp 00000000 08:02 5 /backwards.so\n"
		"ffffffffffffffffff-1 r-xp 00000000 08:02 5 /too-long.so\n"
		"7f000000a000-7f000000b000 r-x";   /* cut, no newline */
	assert_int_equal(tmd_maps_from_text(0, text, strlen(text), &m), 0);
	assert_int_equal(tmd_maps_count(m), 4);
	const struct tmd_mapping *a = tmd_maps_get(m, 0), *b = tmd_maps_get(m, 1), *v = tmd_maps_get(m, 2);
	assert_string_equal(tmd_maps_get(m, 3)->path, "[anon]");   /* code made at run time */
	assert_string_equal(a->path, "/opt/a b/lib x.so");
	assert_int_equal(a->start, 0x7f0000001000ull);
	assert_int_equal(a->offset, 0x1000);
	assert_int_equal(a->inode, 1234);
	assert_int_equal(major(a->dev), 0xfd);
	assert_int_equal(minor(a->dev), 1);
	assert_false(a->deleted);
	assert_string_equal(b->path, "/usr/lib/gone.so");
	assert_true(b->deleted);
	assert_string_equal(v->path, "[vdso]");
	assert_int_equal(v->inode, 0);

	/* A file that cannot be opened: module and offset, no symbol. */
	assert_int_equal(tmd_symbolize(m, 0x7f0000001010ull, &f), TMD_SYM_BAD_ELF);
	assert_string_equal(f.module, "/opt/a b/lib x.so");
	assert_int_equal(f.file_offset, 0x1010);
	assert_int_equal(tmd_symbolize(m, 0x7f0000005000ull, &f), TMD_SYM_NO_FILE);
	assert_int_equal(tmd_symbolize(m, 0x7f0000002000ull, &f), TMD_SYM_NO_MODULE);   /* end is exclusive */
	assert_int_equal(tmd_maps_changed(m), -ESRCH);   /* no process behind it */
	tmd_maps_free(m);

	assert_int_equal(tmd_maps_from_text(0, "", 0, &m), 0);
	assert_int_equal(tmd_maps_count(m), 0);
	assert_int_equal(tmd_symbolize(m, 0x1000, &f), TMD_SYM_NO_MODULE);
	tmd_maps_free(m);
	assert_int_equal(tmd_symbolize(NULL, 0x1000, &f), TMD_SYM_NO_MODULE);
}

/* ---- malformed ELF files ---------------------------------------------------------- */

struct elf_copy {
	unsigned char *buf;
	size_t size;
	char path[128];
	uint64_t vaddr;          /* of tsym_static_fn in the file */
};

static void write_copy(const struct elf_copy *e, const unsigned char *buf, size_t size)
{
	int fd = open(e->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
}

static void load_self(struct elf_copy *e)
{
	char exe[PATH_MAX];
	struct stat st;
	self_exe(exe, sizeof(exe));
	int fd = open(exe, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	e->size = (size_t)st.st_size;
	e->buf = malloc(e->size);
	assert_non_null(e->buf);
	assert_int_equal(read(fd, e->buf, e->size), (ssize_t)e->size);
	close(fd);
	snprintf(e->path, sizeof(e->path), "%s/corrupt.elf", tmpdir);
	e->vaddr = addr_of(tsym_static_fn) - exe_bias();
}

/* Whatever the file holds, the answer is an answer: a status, a terminated name. */
static int probe_copy(const struct elf_copy *e, char *name, size_t cap)
{
	uint64_t off = 0;
	memset(name, 'x', cap);
	int st = tmd_elf_symbol(e->path, e->vaddr, name, cap, &off);
	assert_true(st == TMD_SYM_OK || st == TMD_SYM_NO_SYMBOL || st == TMD_SYM_BAD_ELF);
	assert_non_null(memchr(name, '\0', cap));
	uint8_t id[TMD_BUILD_ID_MAX];
	int n = tmd_elf_build_id(e->path, id, sizeof(id));
	assert_true(n >= -EBADMSG && n <= TMD_BUILD_ID_MAX);
	return st;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_elf_truncated(void **state)
{
	(void)state;
	struct elf_copy e;
	char name[TMD_SYMBOL_MAX];
	load_self(&e);
	write_copy(&e, e.buf, e.size);
	assert_int_equal(probe_copy(&e, name, sizeof(name)), TMD_SYM_OK);
	assert_string_equal(name, "tsym_static_fn");

	size_t cuts[] = { 0, 1, 4, 16, 52, 63, 64, 65, 128, 1000, 4096 };
	int ok = 0, total = 0;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]) + 64; i++) {
		size_t n = i < sizeof(cuts) / sizeof(cuts[0]) ? cuts[i] : e.size * (i - 10) / 65;
		if (n >= e.size)
			n = e.size - 1;
		write_copy(&e, e.buf, n);
		int st = probe_copy(&e, name, sizeof(name));
		total++;
		if (st == TMD_SYM_OK) {   /* only if what it found is the truth */
			assert_string_equal(name, "tsym_static_fn");
			ok++;
		}
	}
	print_message("%d truncated copies: %d still gave the symbol, the rest unknown\n", total, ok);
	free(e.buf);
}

static Elf64_Shdr *shdr(unsigned char *buf, size_t i)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	return (Elf64_Shdr *)(buf + eh->e_shoff + i * eh->e_shentsize);
}

static size_t find_section(unsigned char *buf, uint32_t type)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	for (size_t i = 1; i < eh->e_shnum; i++)
		if (shdr(buf, i)->sh_type == type)
			return i;
	return 0;
}

typedef void (*corrupt_fn)(unsigned char *buf, size_t size);

static void c_shoff(unsigned char *b, size_t s) { ((Elf64_Ehdr *)b)->e_shoff = s - 10; }
static void c_shnum(unsigned char *b, size_t s) { (void)s; ((Elf64_Ehdr *)b)->e_shnum = 0xffff; }
static void c_shstrndx(unsigned char *b, size_t s) { (void)s; ((Elf64_Ehdr *)b)->e_shstrndx = 0xfff0; }
static void c_phoff(unsigned char *b, size_t s) { ((Elf64_Ehdr *)b)->e_phoff = s + 4096; }
static void c_phnum(unsigned char *b, size_t s) { (void)s; ((Elf64_Ehdr *)b)->e_phnum = 0xffff; }
static void c_class(unsigned char *b, size_t s) { (void)s; b[EI_CLASS] = ELFCLASS32; }
static void c_symtab_offset(unsigned char *b, size_t s)
{
	shdr(b, find_section(b, SHT_SYMTAB))->sh_offset = s - 8;
}
static void c_symtab_size(unsigned char *b, size_t s)
{
	(void)s;
	shdr(b, find_section(b, SHT_SYMTAB))->sh_size = ~0ull / 2;
}
static void c_symtab_entsize(unsigned char *b, size_t s)
{
	(void)s;
	shdr(b, find_section(b, SHT_SYMTAB))->sh_entsize = 7;
}
static void c_symtab_link(unsigned char *b, size_t s)
{
	(void)s;
	shdr(b, find_section(b, SHT_SYMTAB))->sh_link = 0xfffff;
}
static void c_symtab_link_self(unsigned char *b, size_t s)
{
	(void)s;
	size_t i = find_section(b, SHT_SYMTAB);
	shdr(b, i)->sh_link = (uint32_t)i;   /* a "string table" that is not one */
}
static void c_strtab_unterminated(unsigned char *b, size_t s)
{
	(void)s;
	Elf64_Shdr *st = shdr(b, shdr(b, find_section(b, SHT_SYMTAB))->sh_link);
	memset(b + st->sh_offset, 'A', st->sh_size);
}
static void c_st_names(unsigned char *b, size_t s)
{
	(void)s;
	Elf64_Shdr *sh = shdr(b, find_section(b, SHT_SYMTAB));
	for (size_t i = 0; i < sh->sh_size / sizeof(Elf64_Sym); i++)
		((Elf64_Sym *)(b + sh->sh_offset))[i].st_name = 0xfffffff0u - (uint32_t)i;
}
static void c_st_shndx(unsigned char *b, size_t s)
{
	(void)s;
	Elf64_Shdr *sh = shdr(b, find_section(b, SHT_SYMTAB));
	for (size_t i = 0; i < sh->sh_size / sizeof(Elf64_Sym); i++)
		((Elf64_Sym *)(b + sh->sh_offset))[i].st_shndx = 0xfff0;
}
static void c_st_sizes(unsigned char *b, size_t s)
{
	(void)s;
	Elf64_Shdr *sh = shdr(b, find_section(b, SHT_SYMTAB));
	for (size_t i = 0; i < sh->sh_size / sizeof(Elf64_Sym); i++)
		((Elf64_Sym *)(b + sh->sh_offset))[i].st_size = ~0ull;
}
static void c_notes(unsigned char *b, size_t s)
{
	(void)s;
	size_t i = find_section(b, SHT_NOTE);
	for (; i && i < ((Elf64_Ehdr *)b)->e_shnum; i++)
		if (shdr(b, i)->sh_type == SHT_NOTE)
			memset(b + shdr(b, i)->sh_offset, 0xff, 12);   /* namesz, descsz, type: huge */
}
static void c_all_sections(unsigned char *b, size_t s)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	for (size_t i = 1; i < eh->e_shnum; i++) {
		shdr(b, i)->sh_offset = s - i;
		shdr(b, i)->sh_size = 4096 + i;
	}
}

static void test_elf_corrupted(void **state)
{
	(void)state;
	static const struct { const char *what; corrupt_fn fn; } cases[] = {
		{ "e_shoff near the end", c_shoff },       { "e_shnum 65535", c_shnum },
		{ "e_shstrndx out of range", c_shstrndx }, { "e_phoff past the end", c_phoff },
		{ "e_phnum 65535", c_phnum },              { "32-bit class, 64-bit contents", c_class },
		{ ".symtab offset past the end", c_symtab_offset }, { ".symtab size huge", c_symtab_size },
		{ ".symtab entsize 7", c_symtab_entsize }, { ".symtab link out of range", c_symtab_link },
		{ ".symtab linked to itself", c_symtab_link_self }, { ".strtab without a NUL", c_strtab_unterminated },
		{ "st_name past .strtab", c_st_names },    { "st_shndx reserved", c_st_shndx },
		{ "st_size 2^64-1", c_st_sizes },          { "notes with huge sizes", c_notes },
		{ "every section past the end", c_all_sections },
	};
	struct elf_copy e;
	char name[TMD_SYMBOL_MAX];
	load_self(&e);
	unsigned char *b = malloc(e.size);
	assert_non_null(b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(b, e.buf, e.size);
		cases[i].fn(b, e.size);
		write_copy(&e, b, e.size);
		int st = probe_copy(&e, name, sizeof(name));
		if (st == TMD_SYM_OK && strcmp(name, "tsym_static_fn") != 0)
			fail_msg("%s: '%s'", cases[i].what, name);
		print_message("  %-32s -> %s%s\n", cases[i].what,
		              st == TMD_SYM_OK ? "symbol " : st == TMD_SYM_NO_SYMBOL ? "no symbol" : "unknown (bad ELF)",
		              st == TMD_SYM_OK ? name : "");
	}
	/* Random bytes in the headers, the section table and the symbol tables. */
	Elf64_Ehdr *eh = (Elf64_Ehdr *)e.buf;
	size_t symtab = find_section(e.buf, SHT_SYMTAB), dynsym = find_section(e.buf, SHT_DYNSYM);
	struct { size_t off, len; } areas[] = {
		{ 0, 64 + (size_t)eh->e_phnum * eh->e_phentsize },
		{ eh->e_shoff, (size_t)eh->e_shnum * eh->e_shentsize },
		{ symtab ? shdr(e.buf, symtab)->sh_offset : 0, symtab ? shdr(e.buf, symtab)->sh_size : 64 },
		{ dynsym ? shdr(e.buf, dynsym)->sh_offset : 0, dynsym ? shdr(e.buf, dynsym)->sh_size : 64 },
	};
	int counts[4] = { 0 };
	for (int round = 0; round < 400; round++) {
		memcpy(b, e.buf, e.size);
		size_t a = (size_t)round % 4;
		for (int k = 0; k < 1 + round % 16; k++) {
			size_t off = areas[a].off + (size_t)(rng() % areas[a].len);
			if (off < e.size)
				b[off] = (unsigned char)rng();
		}
		write_copy(&e, b, e.size);
		int st = probe_copy(&e, name, sizeof(name));
		/* A forged value or size can name another symbol: only a crash would be wrong. */
		bool right = st == TMD_SYM_OK && strcmp(name, "tsym_static_fn") == 0;
		counts[right ? 0 : st == TMD_SYM_OK ? 1 : st == TMD_SYM_NO_SYMBOL ? 2 : 3]++;
	}
	print_message("400 randomly corrupted copies: %d the symbol, %d another symbol, %d no symbol, %d unknown\n",
	              counts[0], counts[1], counts[2], counts[3]);

	/* Through a mapping and the cache: the malformed file is "unknown". */
	memcpy(b, e.buf, e.size);
	c_all_sections(b, e.size);
	c_phnum(b, e.size);
	write_copy(&e, b, e.size);
	struct stat st;
	char text[512];
	struct tmd_frame f;
	struct tmd_maps *m;
	struct tmd_symcache_stats cs0, cs1;
	assert_int_equal(stat(e.path, &st), 0);
	snprintf(text, sizeof(text), "555555554000-555555556000 r-xp 00001000 %x:%x %llu %s\n", major(st.st_dev),
	         minor(st.st_dev), (unsigned long long)st.st_ino, e.path);
	assert_int_equal(tmd_maps_from_text(0, text, strlen(text), &m), 0);
	tmd_symcache_stats(&cs0);
	assert_int_equal(tmd_symbolize(m, 0x555555554010ull, &f), TMD_SYM_BAD_ELF);
	assert_string_equal(f.module, e.path);
	assert_int_equal(f.file_offset, 0x1010);
	assert_string_equal(f.symbol, "");
	assert_int_equal(tmd_symbolize(m, 0x555555554020ull, &f), TMD_SYM_BAD_ELF);   /* cached as bad */
	tmd_symcache_stats(&cs1);
	assert_int_equal(cs1.bad, cs0.bad + 1);
	tmd_maps_free(m);
	free(b);
	free(e.buf);
}

/* ---- crash records ----------------------------------------------------------------- */

static atomic_int gate, running;
static atomic_int task_tid;

static int blocked_task(void *arg)
{
	(void)arg;
	atomic_store(&task_tid, (int)gettid());
	atomic_fetch_add(&running, 1);
	gate_wait(&gate);
	return 0;
}

static void crash_event(struct tm_ev_crash *ev, pid_t pid, pid_t tid, uint64_t task_id)
{
	memset(ev, 0, sizeof(*ev));
	ev->h.kind = TM_EV_CRASH;
	ev->h.ts_ns = 123456789;
	ev->h.pid = (uint32_t)pid;
	ev->h.tid = (uint32_t)tid;
	ev->h.task_id = task_id;
	ev->sig = SIGSEGV;
	ev->code = SEGV_MAPERR;
	ev->addr = 0;
	ev->sender_pid = (uint32_t)pid;
	strcpy(ev->comm, "dice_roll");
	ev->flags = TM_EVF_STACK;
	ev->stack[0] = addr_of(tsym_static_fn) + 4;     /* the faulting instruction */
	ev->stack[1] = addr_of(tsym_caller) + 9;        /* a return address */
	ev->stack[2] = 0x10;                            /* nothing mapped */
	ev->stack_sz = 3 * 8;
}

static void expect_keys(json_t *o, const char *const *keys, size_t n)
{
	size_t i = 0;
	for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it), i++) {
		assert_true(i < n);
		assert_string_equal(json_object_iter_key(it), keys[i]);
	}
	assert_int_equal(i, n);
}

static const char *jget_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_non_null(v);
	return json_is_null(v) ? NULL : json_string_value(v);
}

static json_int_t jget_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void test_crash_record_registry(void **state)
{
	(void)state;
	static const char *const rec_keys[] = { "version", "time", "ts_ns", "pid", "comm", "tid", "thread", "task",
	                                        "signal", "signo", "code", "si_code", "sender_pid", "fault_addr",
	                                        "frames", "frames_dropped", "stack_error" };
	static const char *const task_keys[] = { "id", "name", "type", "type_id", "source" };
	static const char *const frame_keys[] = { "addr", "module", "offset", "symbol", "symbol_offset", "build_id" };
	char exe[PATH_MAX], hex[64], line[2048];
	tm_task *t;
	struct tm_ev_crash ev;
	struct tmd_crash_out out;
	json_error_t err;

	atomic_store(&gate, 0);
	atomic_store(&running, 0);
	assert_int_equal(tm_init(NULL), 0);
	assert_int_equal(tm_spawn(&t, "dice_roll", blocked_task, NULL, TM_SPAWN_OPTS(.type = TM_GAME_LOGIC)), 0);
	assert_true(wait_count(&running, 1, 5000));
	struct tmd_maps *m = snap_self();
	crash_event(&ev, getpid(), atomic_load(&task_tid), tm_task_id(t));
	assert_int_equal(tmd_crash_build(&ev, m, NULL, &out), 0);
	gate_open(&gate);
	assert_int_equal(tm_join(t, 5000, NULL, NULL), 0);
	tm_shutdown();

	print_message("%s\n", out.line);
	assert_null(strchr(out.line, '\n'));
	json_t *j = json_loads(out.line, 0, &err);
	assert_non_null(j);
	expect_keys(j, rec_keys, sizeof(rec_keys) / sizeof(rec_keys[0]));
	assert_int_equal(jget_int(j, "version"), 1);
	assert_int_equal(strlen(jget_str(j, "time")), strlen("2025-01-31T12:00:00.123Z"));
	assert_int_equal(jget_int(j, "ts_ns"), 123456789);
	assert_int_equal(jget_int(j, "pid"), getpid());
	assert_string_equal(jget_str(j, "comm"), "test_symbolize");
	assert_int_equal(jget_int(j, "tid"), atomic_load(&task_tid));
	assert_string_equal(jget_str(j, "thread"), "dice_roll");
	json_t *task = json_object_get(j, "task");
	expect_keys(task, task_keys, 5);
	assert_int_equal(jget_int(task, "id"), (json_int_t)ev.h.task_id);
	assert_string_equal(jget_str(task, "name"), "dice_roll");
	assert_string_equal(jget_str(task, "type"), "game_logic");
	assert_int_equal(jget_int(task, "type_id"), TM_GAME_LOGIC);
	assert_string_equal(jget_str(task, "source"), "registry");
	assert_string_equal(jget_str(j, "signal"), "SIGSEGV");
	assert_int_equal(jget_int(j, "signo"), SIGSEGV);
	assert_string_equal(jget_str(j, "code"), "SEGV_MAPERR");
	assert_int_equal(jget_int(j, "si_code"), SEGV_MAPERR);
	assert_int_equal(jget_int(j, "sender_pid"), getpid());
	assert_string_equal(jget_str(j, "fault_addr"), "0x0");
	assert_true(json_is_null(json_object_get(j, "stack_error")));

	/* The third "return address" is in no code: the walk went astray there. */
	json_t *frames = json_object_get(j, "frames");
	assert_int_equal(json_array_size(frames), 2);
	assert_int_equal(jget_int(j, "frames_dropped"), 1);
	json_t *f0 = json_array_get(frames, 0), *f1 = json_array_get(frames, 1);
	expect_keys(f0, frame_keys, 6);
	self_exe(exe, sizeof(exe));
	snprintf(hex, sizeof(hex), "0x%lx", (unsigned long)(addr_of(tsym_static_fn) + 4));
	assert_string_equal(jget_str(f0, "addr"), hex);
	assert_true(same_file(jget_str(f0, "module"), exe));
	assert_string_equal(jget_str(f0, "symbol"), "tsym_static_fn");
	assert_int_equal(jget_int(f0, "symbol_offset"), 4);
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)out.frames[0].file_offset);
	assert_string_equal(jget_str(f0, "offset"), hex);
	uint8_t id[TMD_BUILD_ID_MAX];
	int n = tmd_elf_build_id(exe, id, sizeof(id));
	if (n > 0)
		assert_string_equal(jget_str(f0, "build_id"), tmd_build_id_hex(id, (size_t)n, hex, sizeof(hex)));
	assert_string_equal(jget_str(f1, "symbol"), "tsym_caller");
	assert_int_equal(jget_int(f1, "symbol_offset"), 9);
	json_decref(j);

	tmd_crash_format_line(&out, line, sizeof(line));
	print_message("%s\n", line);
	char want[160];
	snprintf(want, sizeof(want), "task %llu 'dice_roll' (game_logic)", (unsigned long long)ev.h.task_id);
	assert_non_null(strstr(line, want));
	assert_non_null(strstr(line, "SIGSEGV (SEGV_MAPERR) addr 0x0 at tsym_static_fn+0x4 (test_symbolize) "
	                             "tsym_caller+0x9 (test_symbolize) (+1 frames past a broken frame chain)"));
	tmd_crash_out_release(&out);

	/* Without a copy of the mappings: every address, none named. */
	assert_int_equal(tmd_crash_build(&ev, NULL, TMD_CRASH_OPTS(.no_registry = true), &out), 0);
	j = json_loads(out.line, 0, &err);
	assert_non_null(j);
	frames = json_object_get(j, "frames");
	assert_int_equal(json_array_size(frames), 3);
	assert_int_equal(jget_int(j, "frames_dropped"), 0);
	json_t *f2 = json_array_get(frames, 2);
	expect_keys(f2, frame_keys, 6);
	assert_string_equal(jget_str(f2, "addr"), "0x10");
	for (size_t i = 1; i < 6; i++)
		assert_true(json_is_null(json_object_get(f2, frame_keys[i])));
	json_decref(j);
	tmd_crash_format_line(&out, line, sizeof(line));
	assert_non_null(strstr(line, " at 0x"));
	tmd_crash_out_release(&out);
	tmd_maps_free(m);
}

static void test_crash_record_no_registry(void **state)
{
	(void)state;
	struct tm_ev_crash ev;
	struct tmd_crash_out out;
	char line[1024];

	/* The registry is gone (never was: no segment for our pid now). */
	crash_event(&ev, getpid(), gettid(), 42);
	ev.sig = SIGABRT;
	ev.code = -6;   /* SI_TKILL: raise() */
	ev.addr = 0xdead;
	ev.flags = 0;
	ev.stack_sz = -95;
	assert_int_equal(tmd_crash_build(&ev, NULL, NULL, &out), 0);
	print_message("%s\n", out.line);
	assert_non_null(strstr(out.line, "\"task\":{\"id\":42,\"name\":null,\"type\":null,\"type_id\":null,\"source\":null}"));
	assert_non_null(strstr(out.line, "\"signal\":\"SIGABRT\",\"signo\":6,\"code\":\"SI_TKILL\",\"si_code\":-6,"));
	assert_non_null(strstr(out.line, "\"fault_addr\":null,\"frames\":[],\"frames_dropped\":0,\"stack_error\":-95}"));
	assert_non_null(strstr(out.line, "\"comm\":\"dice_roll\""));   /* no maps: the thread's name */
	tmd_crash_format_line(&out, line, sizeof(line));
	assert_non_null(strstr(line, "task 42: SIGABRT (SI_TKILL) at (no stack)"));
	tmd_crash_out_release(&out);

	/* What the collector knew from the start event stands in for it. */
	assert_int_equal(tmd_crash_build(&ev, NULL, TMD_CRASH_OPTS(.task_name = "dice_roll", .task_type = TM_GAME_LOGIC),
	                                 &out), 0);
	assert_non_null(strstr(out.line, "\"task\":{\"id\":42,\"name\":\"dice_roll\",\"type\":\"game_logic\","
	                                 "\"type_id\":3,\"source\":\"collector\"}"));
	tmd_crash_out_release(&out);

	/* No task on the thread; a signal and code without names; bytes that are not UTF-8. */
	ev.h.task_id = 0;
	ev.sig = 40;
	ev.code = 77;
	strcpy(ev.comm, "bad\xff\xfe name");
	assert_int_equal(tmd_crash_build(&ev, NULL, TMD_CRASH_OPTS(.no_registry = true), &out), 0);
	assert_non_null(strstr(out.line, "\"thread\":\"bad?? name\",\"task\":null,\"signal\":null,\"signo\":40,"
	                                 "\"code\":null,\"si_code\":77,"));
	tmd_crash_out_release(&out);

	/* Options of a newer caller: unknown fields must be zero. */
	struct { struct tmd_crash_opts o; uint64_t newer; } big = { .o = { .sz = sizeof(big) } };
	assert_int_equal(tmd_crash_build(&ev, NULL, &big.o, &out), 0);
	tmd_crash_out_release(&out);
	big.newer = 1;
	assert_int_equal(tmd_crash_build(&ev, NULL, &big.o, &out), -EINVAL);
	tmd_crash_out_release(&out);

	ev.h.kind = TM_EV_EXIT;
	assert_int_equal(tmd_crash_build(&ev, NULL, NULL, &out), -EINVAL);
	assert_null(out.line);
}

static void test_signal_names(void **state)
{
	(void)state;
	assert_string_equal(tmd_signal_name(SIGSEGV), "SIGSEGV");
	assert_string_equal(tmd_signal_name(SIGABRT), "SIGABRT");
	assert_string_equal(tmd_signal_name(SIGSYS), "SIGSYS");
	assert_null(tmd_signal_name(0));
	assert_null(tmd_signal_name(64));
	assert_string_equal(tmd_si_code_name(SIGSEGV, SEGV_MAPERR), "SEGV_MAPERR");
	assert_string_equal(tmd_si_code_name(SIGSEGV, SEGV_ACCERR), "SEGV_ACCERR");
	assert_string_equal(tmd_si_code_name(SIGBUS, BUS_ADRERR), "BUS_ADRERR");
	assert_string_equal(tmd_si_code_name(SIGILL, ILL_ILLOPN), "ILL_ILLOPN");
	assert_string_equal(tmd_si_code_name(SIGFPE, FPE_INTDIV), "FPE_INTDIV");
	assert_string_equal(tmd_si_code_name(SIGFPE, 15), "FPE_CONDTRAP");
	assert_null(tmd_si_code_name(SIGFPE, 9));
	assert_string_equal(tmd_si_code_name(SIGTRAP, TRAP_BRKPT), "TRAP_BRKPT");
	assert_string_equal(tmd_si_code_name(SIGSYS, 1), "SYS_SECCOMP");
	assert_string_equal(tmd_si_code_name(SIGABRT, SI_TKILL), "SI_TKILL");
	assert_string_equal(tmd_si_code_name(SIGSEGV, SI_KERNEL), "SI_KERNEL");
	assert_string_equal(tmd_si_code_name(SIGSEGV, SI_USER), "SI_USER");
	assert_null(tmd_si_code_name(SIGSEGV, 11));
	assert_null(tmd_si_code_name(SIGABRT, 1));
	assert_null(tmd_si_code_name(SIGSEGV, -100));
}

/* ---- the crash log -------------------------------------------------------------------- */

static size_t read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

static void test_crash_log_append(void **state)
{
	(void)state;
	char dir[128], path[192], buf[8192];
	struct tm_ev_crash ev;
	struct tmd_crash_out out;
	snprintf(dir, sizeof(dir), "%s/state", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, TMD_CRASH_LOG);
	crash_event(&ev, getpid(), gettid(), 0);
	assert_int_equal(tmd_crash_record(&ev, NULL, dir, &out), 0);
	assert_int_equal(out.write_error, 0);
	size_t len = strlen(out.line);
	assert_int_equal(read_file(path, buf, sizeof(buf)), len + 1);
	assert_memory_equal(buf, out.line, len);
	assert_int_equal(buf[len], '\n');
	assert_int_equal(tmd_crash_append(dir, &out), 0);
	assert_int_equal(read_file(path, buf, sizeof(buf)), 2 * (len + 1));

	/* A line cut short before (a full disk, a crash of the collector): the next record starts a new line. */
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "{\"version\":1,\"ti", 16), 16);
	close(fd);
	assert_int_equal(tmd_crash_append(dir, &out), 0);
	size_t n = read_file(path, buf, sizeof(buf));
	assert_int_equal(n, 3 * (len + 1) + 16 + 1);
	assert_memory_equal(buf + n - len - 1, out.line, len);
	assert_int_equal(buf[n - len - 2], '\n');
	int lines = 0;
	for (char *save, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(l, 0, NULL);
		lines++;
		if (lines == 3)
			assert_null(j);   /* the cut one */
		else
			assert_non_null(j);
		json_decref(j);
	}
	assert_int_equal(lines, 4);
	tmd_crash_out_release(&out);
}

static void test_crash_log_errors(void **state)
{
	(void)state;
	char dir[128], path[192], missing[160];
	struct tm_ev_crash ev;
	struct tmd_crash_out out;
	crash_event(&ev, getpid(), gettid(), 0);

	/* No such directory: the error, and the record still in memory. */
	snprintf(missing, sizeof(missing), "%s/no/such/dir", tmpdir);
	assert_int_equal(tmd_crash_record(&ev, NULL, missing, &out), -ENOENT);
	assert_int_equal(out.write_error, -ENOENT);
	assert_non_null(out.line);
	assert_non_null(strstr(out.line, "\"signal\":\"SIGSEGV\""));
	assert_int_equal(out.nframes, 3);   /* no maps given: all three kept, unnamed */

	/* A full disk: /dev/full in place of the log. */
	snprintf(dir, sizeof(dir), "%s/full", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, TMD_CRASH_LOG);
	assert_int_equal(symlink("/dev/full", path), 0);
	assert_int_equal(tmd_crash_append(dir, &out), -ENOSPC);
	assert_int_equal(out.write_error, -ENOSPC);
	assert_non_null(out.line);

	/* The log's name taken by a directory. */
	snprintf(dir, sizeof(dir), "%s/isdir", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, TMD_CRASH_LOG);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(tmd_crash_append(dir, &out), -EISDIR);

	/* A directory it may not write to (root may write anywhere: only as a user). */
	snprintf(dir, sizeof(dir), "%s/ro", tmpdir);
	assert_int_equal(mkdir(dir, 0555), 0);
	int rc = tmd_crash_append(dir, &out);
	if (geteuid() != 0)
		assert_int_equal(rc, -EACCES);
	else
		print_message("as root, a mode 0555 directory is writable: append gave %d\n", rc);
	assert_int_equal(tmd_crash_append(NULL, &out), -EINVAL);
	tmd_crash_out_release(&out);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--child") == 0)
		return child_main();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_pie),
		cmocka_unit_test(test_libc_dynsym),
		cmocka_unit_test(test_dead_child),
		cmocka_unit_test(test_refresh_new_library),
		cmocka_unit_test(test_maps_set),
		cmocka_unit_test(test_build_id_frame),
		cmocka_unit_test(test_cache_bound),
		cmocka_unit_test(test_maps_text),
		cmocka_unit_test(test_elf_truncated),
		cmocka_unit_test(test_elf_corrupted),
		cmocka_unit_test(test_crash_record_registry),
		cmocka_unit_test(test_crash_record_no_registry),
		cmocka_unit_test(test_signal_names),
		cmocka_unit_test(test_crash_log_append),
		cmocka_unit_test(test_crash_log_errors),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
