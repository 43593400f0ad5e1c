/* User stack addresses of a workload to module, file offset and symbol.
 *
 * A workload's executable mappings are copied from /proc/<pid>/maps when it
 * is discovered (tmd_maps_snapshot) and refreshed when its libraries change
 * (tmd_maps_changed, tmd_maps_refresh): a crash is reported after the process
 * is gone, when /proc no longer has its maps.
 *
 * Symbols come from the module's ELF file, .symtab first, then .dynsym (and
 * the .symtab of /usr/lib/debug/.build-id/xx/yyyy.debug when the module is
 * stripped and that file is installed). Files are opened once per
 * (device, inode) and kept in a bounded LRU cache shared by every snapshot;
 * a file that is malformed gives "unknown", never a crash: every offset,
 * index and string the file claims is checked against what it holds.
 */
#ifndef TMD_SYMBOLIZE_H
#define TMD_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TMD_BUILD_ID_MAX  32    /* GNU build-ids are 20 bytes (SHA-1), 16 (MD5) or a chosen length */
#define TMD_MODULE_MAX    4096
#define TMD_SYMBOL_MAX    256   /* longer names are cut, ending in "..." */

/* ---- mappings ------------------------------------------------------------- */

/* One executable mapping: file-backed, a pseudo-file such as [vdso], or
 * anonymous memory ("[anon]": code made at run time). */
struct tmd_mapping {
	uint64_t start, end;    /* [start, end) */
	uint64_t offset;        /* file offset that start maps */
	uint64_t inode;         /* 0 for a pseudo-file */
	dev_t dev;
	bool deleted;           /* the kernel marked the path " (deleted)"; path has it stripped */
	const char *path;       /* owned by the snapshot */
};

struct tmd_maps;   /* a snapshot: opaque, owned by whoever took it */

/* Reads /proc/<pid>/maps and keeps its executable mappings; opens their
 * files into the cache (a file deleted later stays readable while cached).
 * 0 or negative errno: -ESRCH when the process is gone, -EACCES, -ENOMEM. */
int  tmd_maps_snapshot(pid_t pid, struct tmd_maps **out);
/* The same from maps text (the format of /proc/<pid>/maps), for tests and
 * tools; pid 0 means no process to refresh from. */
int  tmd_maps_from_text(pid_t pid, const char *text, size_t len, struct tmd_maps **out);
void tmd_maps_free(struct tmd_maps *m);

/* 1 when the process's executable mappings differ from the snapshot, 0 when
 * they are the same, -ESRCH when the process is gone or its pid reused.
 * Reads /proc/<pid>/maps once into a fixed buffer and compares a hash of the
 * executable lines (procfs gives no size or mtime that changes with them). */
int  tmd_maps_changed(const struct tmd_maps *m);
/* Takes a new copy in place when the mappings changed. 1 replaced, 0 the
 * same, negative errno (-ESRCH: process gone) with the old copy kept. */
int  tmd_maps_refresh(struct tmd_maps *m);

pid_t       tmd_maps_pid(const struct tmd_maps *m);
const char *tmd_maps_comm(const struct tmd_maps *m);   /* /proc/<pid>/comm at snapshot, "" if unknown */
size_t      tmd_maps_count(const struct tmd_maps *m);
const struct tmd_mapping *tmd_maps_get(const struct tmd_maps *m, size_t i);   /* sorted by start */
const struct tmd_mapping *tmd_maps_find(const struct tmd_maps *m, uint64_t addr);

/* ---- every watched workload's copy (taskmond's) ---------------------------- */

/* Copies by pid, bounded. Each is re-checked for changed mappings on a
 * backing-off schedule (1 s after it is taken or changed, doubling up to
 * 60 s): libraries mostly load at start, and a check reads the whole maps
 * file (30-300 us). A crash record takes the freshest copy instead
 * (tmd_maps_set_latest). Single-threaded, like the collector's loop. */
struct tmd_maps_set;

struct tmd_maps_set *tmd_maps_set_new(size_t max);   /* 0 = 1024 workloads */
void tmd_maps_set_free(struct tmd_maps_set *s);
/* Takes a copy of the process's mappings (replacing any older one for that
 * pid). 0 or negative errno: -ENOSPC when max copies are kept, -ESRCH. */
int  tmd_maps_set_add(struct tmd_maps_set *s, pid_t pid, uint64_t now_ns);
/* The copy, or NULL. */
const struct tmd_maps *tmd_maps_set_get(const struct tmd_maps_set *s, pid_t pid);
/* For a crash: refreshed first if the process still has its mappings (it
 * may have loaded a library since the last check), taken now if there was
 * none; else the copy as it is. NULL when there is none and cannot be. */
const struct tmd_maps *tmd_maps_set_latest(struct tmd_maps_set *s, pid_t pid, uint64_t now_ns);
/* The workload is gone: its copy is dropped at the second tmd_maps_set_tick
 * after this, so that its events still in the ring buffer find it. */
void tmd_maps_set_retire(struct tmd_maps_set *s, pid_t pid);
/* Re-checks the copies that are due; drops retired ones. Returns how many were replaced. */
size_t tmd_maps_set_tick(struct tmd_maps_set *s, uint64_t now_ns);
size_t tmd_maps_set_count(const struct tmd_maps_set *s);

/* ---- symbols -------------------------------------------------------------- */

enum tmd_sym_status {
	TMD_SYM_OK = 0,         /* module, offset and symbol known */
	TMD_SYM_NO_SYMBOL,      /* module and offset known; no symbol covers the address */
	TMD_SYM_BAD_ELF,        /* module and offset known; its file is unreadable, malformed,
	                           or not the file that was mapped (replaced since) */
	TMD_SYM_NO_FILE,        /* a pseudo-file or anonymous mapping ([vdso], [anon]): module name only */
	TMD_SYM_NO_MODULE,      /* no executable mapping covers the address */
};

struct tmd_frame {
	uint64_t addr;          /* as given */
	uint64_t file_offset;   /* offset of addr in the module's file */
	uint64_t sym_offset;    /* addr - start of the symbol */
	int status;             /* enum tmd_sym_status */
	size_t build_id_len;    /* 0 = the module carries no NT_GNU_BUILD_ID note */
	uint8_t build_id[TMD_BUILD_ID_MAX];
	char module[TMD_MODULE_MAX];   /* path; "" with TMD_SYM_NO_MODULE */
	char symbol[TMD_SYMBOL_MAX];   /* "" unless TMD_SYM_OK */
};

/* Symbolizes one address. `return_addr`: addr is a return address (every
 * stack frame but the innermost), so the symbol looked up is that of addr - 1,
 * the call instruction, not whatever follows a call that does not return.
 * Always fills out; returns out->status. */
int tmd_symbolize_addr(const struct tmd_maps *m, uint64_t addr, bool return_addr, struct tmd_frame *out);
/* The innermost frame, or any exact instruction address. */
static inline int tmd_symbolize(const struct tmd_maps *m, uint64_t addr, struct tmd_frame *out)
{
	return tmd_symbolize_addr(m, addr, false, out);
}
/* A user stack as bpf_get_stack gives it, innermost first; returns n. */
size_t tmd_symbolize_stack(const struct tmd_maps *m, const uint64_t *ips, size_t n, struct tmd_frame *out);
/* A frame as build-id and file offset (BPF_F_USER_BUILD_ID): the module is
 * the mapped file of m with that build-id. m may be NULL: then only files
 * already in the cache are searched. */
int tmd_symbolize_build_id(const struct tmd_maps *m, const uint8_t *id, size_t id_len, uint64_t file_offset,
                           struct tmd_frame *out);

/* A module's build-id from its file (a path, not a mapping). Returns its length, 0 when it has
 * none, or negative errno (-EBADMSG when the file is not a valid ELF file). */
int tmd_elf_build_id(const char *path, uint8_t *id, size_t cap);

/* Symbol of an ELF virtual address in a file, for tests and tools: fills name and offset;
 * returns TMD_SYM_OK, TMD_SYM_NO_SYMBOL or TMD_SYM_BAD_ELF. */
int tmd_elf_symbol(const char *path, uint64_t vaddr, char *name, size_t cap, uint64_t *off);

/* Hex text of a build-id into buf (2 * len + 1 bytes); returns buf. */
char *tmd_build_id_hex(const uint8_t *id, size_t len, char *buf, size_t cap);

/* ---- the file cache ------------------------------------------------------- */

struct tmd_symcache_stats {
	size_t files;           /* open now */
	size_t limit;
	uint64_t hits, misses, evictions, bad;   /* bad: files found malformed */
};
/* At most `max_files` files open at once (least recently used closed
 * first); 0 restores the default (64). Shrinks the cache at once. */
void tmd_symcache_limit(size_t max_files);
void tmd_symcache_stats(struct tmd_symcache_stats *out);
/* Closes every cached file (tests; taskmond at exit, so that leak checkers see nothing). */
void tmd_symcache_clear(void);

#endif
