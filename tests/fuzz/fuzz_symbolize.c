/* The ELF symbolizer (user/symbolize.c) on malformed ELF files: a module in
 * a workload's mappings is a file its owner may have written, so every
 * offset, count, index and string it claims is hostile.
 *
 * The input is the file. Its build-id is read, and a few addresses (the
 * entry point, the last 8 bytes of the input, both of those less one, 0)
 * are looked up by path and through a mapping of the file, so that the
 * cache, the file-offset translation and both symbol tables are exercised.
 * Answers must be one of the documented statuses, and names NUL-terminated
 * within their buffers. */
#include "fuzz.h"

#include <elf.h>
#include <sys/stat.h>
#include "symbolize.h"

static char path[128];

static void check_frame(const struct tmd_frame *f, int st)
{
	FUZZ_CHECK(st == f->status);
	FUZZ_CHECK(st >= TMD_SYM_OK && st <= TMD_SYM_NO_MODULE);
	FUZZ_CHECK(strnlen(f->symbol, sizeof(f->symbol)) < sizeof(f->symbol));
	FUZZ_CHECK(strnlen(f->module, sizeof(f->module)) < sizeof(f->module));
	FUZZ_CHECK(f->build_id_len <= TMD_BUILD_ID_MAX);
	FUZZ_CHECK(st == TMD_SYM_OK || f->symbol[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0])
		snprintf(path, sizeof(path), "%s/module.so", fuzz_dir());
	fuzz_write_file(path, data, size);

	uint8_t id[TMD_BUILD_ID_MAX];
	int n = tmd_elf_build_id(path, id, sizeof(id));
	FUZZ_CHECK(n == -EBADMSG || (n >= 0 && n <= TMD_BUILD_ID_MAX));

	uint64_t addrs[5] = { 0 };
	if (size >= sizeof(Elf64_Ehdr)) {
		Elf64_Ehdr eh;
		memcpy(&eh, data, sizeof(eh));
		addrs[0] = eh.e_entry;
	}
	if (size >= 8)
		memcpy(&addrs[1], data + size - 8, 8);
	addrs[2] = addrs[0] - 1;
	addrs[3] = addrs[1] - 1;
	for (int i = 0; i < 5; i++) {
		char name[TMD_SYMBOL_MAX];
		uint64_t off = 0;
		int st = tmd_elf_symbol(path, addrs[i], name, sizeof(name), &off);
		FUZZ_CHECK(st == TMD_SYM_OK || st == TMD_SYM_NO_SYMBOL || st == TMD_SYM_BAD_ELF);
		FUZZ_CHECK(strnlen(name, sizeof(name)) < sizeof(name));
		FUZZ_CHECK(st == TMD_SYM_OK || name[0] == '\0');
	}

	/* The same file as a workload's mapping: by the cache, with a file offset. */
	struct stat sb;
	FUZZ_CHECK(stat(path, &sb) == 0);
	char maps[512];
	int len = snprintf(maps, sizeof(maps),
	                   "555555554000-555555558000 r-xp 00000000 00:00 %llu %s\n"
	                   "7ffff7fc1000-7ffff7fc3000 r-xp 00000000 00:00 0 [vdso]\n",
	                   (unsigned long long)sb.st_ino, path);
	struct tmd_maps *m = NULL;
	FUZZ_CHECK(tmd_maps_from_text(0, maps, (size_t)len, &m) == 0 && m);
	uint64_t ips[6] = { 0x555555554000ull + (addrs[0] & 0x3fff), 0x555555554000ull + (addrs[1] & 0x3fff),
	                    0x555555557fffull, 0x7ffff7fc1010ull, 0x1000, 0x555555554001ull };
	struct tmd_frame frames[6];
	FUZZ_CHECK(tmd_symbolize_stack(m, ips, 6, frames) == 6);
	for (int i = 0; i < 6; i++)
		check_frame(&frames[i], frames[i].status);
	if (n > 0) {
		struct tmd_frame f;
		check_frame(&f, tmd_symbolize_build_id(m, id, (size_t)n, addrs[1] & 0xffff, &f));
	}
	tmd_maps_free(m);
	tmd_symcache_clear();   /* the next input reuses the inode: no stale cache entry */
	return 0;
}
