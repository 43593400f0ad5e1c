/* Symbolizing user stacks from a copy of the workload's mappings. */
#include "symbolize.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "discover.h"

/* ---- the snapshot --------------------------------------------------------- */

struct tmd_maps {
	pid_t pid;
	unsigned long long start_ticks;   /* tells a reused pid apart */
	uint64_t hash;                    /* of the executable lines: what tmd_maps_changed compares */
	size_t n, cap;
	struct tmd_mapping *v;
	char comm[16];
};

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
	return h;
}

static bool parse_hex(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;
	for (; s < end; s++, digits++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (digits == 16)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*p = s;
	*out = v;
	return digits > 0;
}

static bool parse_dec(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (s == *p)
		return false;
	*p = s;
	*out = v;
	return true;
}

static bool expect(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

static void skip_spaces(const char **p, const char *end)
{
	while (*p < end && (**p == ' ' || **p == '\t'))
		(*p)++;
}

/* The executable line as a mapping; false for any other line. The path is
 * left in (*path, *plen), not copied. */
static bool parse_exec_line(const char *s, const char *end, struct tmd_mapping *mp, const char **path, size_t *plen)
{
	uint64_t maj, min;
	const char *p = s;
	if (!parse_hex(&p, end, &mp->start) || !expect(&p, end, '-') || !parse_hex(&p, end, &mp->end) ||
	    !expect(&p, end, ' ') || end - p < 5 || p[2] != 'x' || p[4] != ' ')
		return false;
	p += 5;
	if (!parse_hex(&p, end, &mp->offset) || !expect(&p, end, ' ') || !parse_hex(&p, end, &maj) ||
	    !expect(&p, end, ':') || !parse_hex(&p, end, &min) || !expect(&p, end, ' ') ||
	    !parse_dec(&p, end, &mp->inode) || mp->end <= mp->start)
		return false;
	mp->dev = makedev((unsigned)maj, (unsigned)min);
	skip_spaces(&p, end);
	if (p == end) {   /* anonymous (JIT code): no file, but return addresses there are real */
		*path = "[anon]";
		*plen = 6;
		mp->deleted = false;
		mp->inode = 0;
		return true;
	}
	static const char del[] = " (deleted)";
	size_t n = (size_t)(end - p);
	mp->deleted = n > sizeof(del) - 1 && memcmp(end - (sizeof(del) - 1), del, sizeof(del) - 1) == 0;
	if (mp->deleted)
		n -= sizeof(del) - 1;
	if (*p != '/' && *p != '[')
		return false;
	*path = p;
	*plen = n;
	return true;
}

/* Calls fn for every line of /proc/<pid>/maps (without its newline); a line
 * longer than the buffer is cut. 0 or negative errno. */
typedef int (*line_fn)(void *ctx, const char *line, size_t len);

static int each_line(int fd, line_fn fn, void *ctx)
{
	enum { BUF = 64 * 1024 };
	char *buf = malloc(BUF);
	if (!buf)
		return -ENOMEM;
	size_t have = 0;
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, buf + have, BUF - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		have += (size_t)r;
		bool eof = r == 0;
		size_t used = 0;
		while (used < have) {
			char *nl = memchr(buf + used, '\n', have - used);
			size_t len;
			if (nl)
				len = (size_t)(nl - (buf + used));
			else if (eof || (used == 0 && have == BUF))
				len = have - used;   /* the last line, or one longer than the buffer: cut */
			else
				break;
			if ((rc = fn(ctx, buf + used, len)) != 0)
				goto out;
			used += len + (nl ? 1 : 0);
		}
		memmove(buf, buf + used, have - used);
		have -= used;
		if (eof)
			break;
	}
out:
	free(buf);
	return rc;
}

static int add_line(struct tmd_maps *m, const char *line, size_t len)
{
	struct tmd_mapping mp = { 0 };
	const char *path;
	size_t plen;
	if (!parse_exec_line(line, line + len, &mp, &path, &plen))
		return 0;
	m->hash = fnv(fnv(m->hash, line, len), "\n", 1);
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct tmd_mapping *v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	char *copy = strndup(path, plen);
	if (!copy)
		return -ENOMEM;
	if (*copy == '[')
		mp.inode = 0;
	mp.path = copy;
	m->v[m->n++] = mp;
	return 0;
}

static int add_line_cb(void *ctx, const char *line, size_t len)
{
	return add_line(ctx, line, len);
}

static int cmp_start(const void *a, const void *b)
{
	const struct tmd_mapping *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

static void maps_release(struct tmd_maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free((char *)m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = m->cap = 0;
}

void tmd_maps_free(struct tmd_maps *m)
{
	if (!m)
		return;
	maps_release(m);
	free(m);
}

int tmd_maps_from_text(pid_t pid, const char *text, size_t len, struct tmd_maps **out)
{
	struct tmd_maps *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->pid = pid;
	m->hash = FNV_OFFSET;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (add_line(m, p, (size_t)(le - p)) < 0) {
			tmd_maps_free(m);
			return -ENOMEM;
		}
		p = nl ? nl + 1 : end;
	}
	if (m->n)
		qsort(m->v, m->n, sizeof(*m->v), cmp_start);
	*out = m;
	return 0;
}

static int open_proc(pid_t pid, const char *what)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return fd;
}

static void read_comm(pid_t pid, char comm[16])
{
	int fd = open_proc(pid, "comm");
	comm[0] = '\0';
	if (fd < 0)
		return;
	ssize_t n = read(fd, comm, 15);
	close(fd);
	if (n < 0)
		n = 0;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
}

static void warm_cache(const struct tmd_maps *m);

/* Reads the process's maps into m (emptied first). */
static int read_maps(pid_t pid, struct tmd_maps *m)
{
	unsigned long long before, after;
	if (tmd_proc_start(pid, &before) < 0)
		return -ESRCH;
	int fd = open_proc(pid, "maps");
	if (fd < 0)
		return fd;
	m->pid = pid;
	m->hash = FNV_OFFSET;
	int rc = each_line(fd, add_line_cb, m);
	close(fd);
	/* Gone, or another process has the pid now. A process that has exited
	 * and not been reaped yet still has its stat but no mappings: a process
	 * that runs has at least its executable. */
	if (rc == 0 && (m->n == 0 || tmd_proc_start(pid, &after) < 0 || after != before))
		rc = -ESRCH;
	if (rc < 0)
		return rc;
	m->start_ticks = before;
	read_comm(pid, m->comm);
	qsort(m->v, m->n, sizeof(*m->v), cmp_start);
	return 0;
}

int tmd_maps_snapshot(pid_t pid, struct tmd_maps **out)
{
	*out = NULL;
	if (pid <= 0)
		return -EINVAL;
	struct tmd_maps *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	int rc = read_maps(pid, m);
	if (rc < 0) {
		tmd_maps_free(m);
		return rc;
	}
	warm_cache(m);
	*out = m;
	return 0;
}

struct hash_ctx {
	uint64_t h;
	size_t n;
};

static int hash_cb(void *ctx, const char *line, size_t len)
{
	struct hash_ctx *c = ctx;
	struct tmd_mapping mp;
	const char *path;
	size_t plen;
	if (parse_exec_line(line, line + len, &mp, &path, &plen)) {
		c->h = fnv(fnv(c->h, line, len), "\n", 1);
		c->n++;
	}
	return 0;
}

int tmd_maps_changed(const struct tmd_maps *m)
{
	unsigned long long ticks;
	if (!m || m->pid <= 0 || tmd_proc_start(m->pid, &ticks) < 0 || ticks != m->start_ticks)
		return -ESRCH;
	int fd = open_proc(m->pid, "maps");
	if (fd < 0)
		return fd;
	struct hash_ctx c = { FNV_OFFSET, 0 };
	int rc = each_line(fd, hash_cb, &c);
	close(fd);
	if (rc < 0)
		return rc;
	if (c.n == 0)
		return -ESRCH;   /* exited, not reaped yet */
	return c.h != m->hash;
}

int tmd_maps_refresh(struct tmd_maps *m)
{
	int rc = tmd_maps_changed(m);
	if (rc <= 0)
		return rc;
	struct tmd_maps fresh = { 0 };
	rc = read_maps(m->pid, &fresh);
	if (rc < 0) {
		maps_release(&fresh);
		return rc;
	}
	if (fresh.start_ticks != m->start_ticks) {
		maps_release(&fresh);
		return -ESRCH;
	}
	maps_release(m);
	*m = fresh;
	warm_cache(m);
	return 1;
}

pid_t tmd_maps_pid(const struct tmd_maps *m)
{
	return m ? m->pid : 0;
}

const char *tmd_maps_comm(const struct tmd_maps *m)
{
	return m ? m->comm : "";
}

size_t tmd_maps_count(const struct tmd_maps *m)
{
	return m ? m->n : 0;
}

const struct tmd_mapping *tmd_maps_get(const struct tmd_maps *m, size_t i)
{
	return m && i < m->n ? &m->v[i] : NULL;
}

const struct tmd_mapping *tmd_maps_find(const struct tmd_maps *m, uint64_t addr)
{
	if (!m)
		return NULL;
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->v[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->v[lo].start <= addr && addr < m->v[lo].end ? &m->v[lo] : NULL;
}

/* ---- the set ---------------------------------------------------------------- */

#define SET_FIRST_CHECK_NS 1000000000ull
#define SET_MAX_CHECK_NS   60000000000ull

struct set_entry {
	struct tmd_maps *m;
	uint64_t next_check, interval;
	int retired;            /* ticks seen since it was retired; 0 = live */
};

struct tmd_maps_set {
	struct set_entry *v;
	size_t n, max;
};

struct tmd_maps_set *tmd_maps_set_new(size_t max)
{
	struct tmd_maps_set *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->max = max ? max : 1024;
	s->v = calloc(s->max, sizeof(*s->v));
	if (!s->v) {
		free(s);
		return NULL;
	}
	return s;
}

void tmd_maps_set_free(struct tmd_maps_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		tmd_maps_free(s->v[i].m);
	free(s->v);
	free(s);
}

static struct set_entry *set_find(const struct tmd_maps_set *s, pid_t pid)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].m->pid == pid)
			return &s->v[i];
	return NULL;
}

static void set_drop(struct tmd_maps_set *s, struct set_entry *e)
{
	tmd_maps_free(e->m);
	*e = s->v[--s->n];
}

static void set_schedule(struct set_entry *e, uint64_t now, bool changed)
{
	if (changed || e->interval == 0)
		e->interval = SET_FIRST_CHECK_NS;
	else if (e->interval < SET_MAX_CHECK_NS)
		e->interval = e->interval * 2 < SET_MAX_CHECK_NS ? e->interval * 2 : SET_MAX_CHECK_NS;
	e->next_check = now + e->interval;
}

int tmd_maps_set_add(struct tmd_maps_set *s, pid_t pid, uint64_t now_ns)
{
	struct tmd_maps *m;
	struct set_entry *e = set_find(s, pid);
	if (!e && s->n == s->max)
		return -ENOSPC;
	int rc = tmd_maps_snapshot(pid, &m);
	if (rc < 0)
		return rc;
	if (e)
		tmd_maps_free(e->m);
	else
		e = &s->v[s->n++];
	*e = (struct set_entry){ .m = m };
	set_schedule(e, now_ns, true);
	return 0;
}

const struct tmd_maps *tmd_maps_set_get(const struct tmd_maps_set *s, pid_t pid)
{
	struct set_entry *e = set_find(s, pid);
	return e ? e->m : NULL;
}

const struct tmd_maps *tmd_maps_set_latest(struct tmd_maps_set *s, pid_t pid, uint64_t now_ns)
{
	struct set_entry *e = set_find(s, pid);
	if (!e)
		return tmd_maps_set_add(s, pid, now_ns) == 0 ? tmd_maps_set_get(s, pid) : NULL;
	if (tmd_maps_refresh(e->m) == 1)
		set_schedule(e, now_ns, true);
	return e->m;
}

void tmd_maps_set_retire(struct tmd_maps_set *s, pid_t pid)
{
	struct set_entry *e = set_find(s, pid);
	if (e && !e->retired)
		e->retired = 1;
}

size_t tmd_maps_set_tick(struct tmd_maps_set *s, uint64_t now_ns)
{
	size_t replaced = 0;
	for (size_t i = 0; i < s->n;) {
		struct set_entry *e = &s->v[i];
		if (e->retired && ++e->retired > 2) {
			set_drop(s, e);
			continue;
		}
		if (!e->retired && now_ns >= e->next_check) {
			int rc = tmd_maps_refresh(e->m);
			replaced += rc == 1;
			set_schedule(e, now_ns, rc == 1);
		}
		i++;
	}
	return replaced;
}

size_t tmd_maps_set_count(const struct tmd_maps_set *s)
{
	return s ? s->n : 0;
}

/* ---- ELF files ------------------------------------------------------------ */

#define MAX_LOADS 16

struct load_seg {
	uint64_t offset, filesz, vaddr;
};

/* An allocated section's addresses: a symbol must lie inside the one it names. */
struct sec_range {
	uint64_t addr, size;
	bool alloc;
};

/* A code symbol that passed every check, in a table sorted by address. */
struct sym_ent {
	uint64_t start, size;
	const char *name;       /* in the string table's data */
	uint32_t shndx;
	unsigned char bind;
};

/* A symbol table whose every entry and name is checked before use. */
struct symtab {
	Elf_Data *syms;         /* NULL = none */
	Elf_Data *strs;
	size_t count;
	bool full;              /* .symtab: local functions and zero-size labels are trusted too */
	struct sec_range *secs; /* by section index, of the file the table is in */
	size_t nsecs;
	bool indexed;           /* idx built (at the first lookup) */
	struct sym_ent *idx;
	size_t n;
	uint64_t max_size;      /* of any entry: how far below an address a symbol covering it can start */
};

struct elf_mod {
	dev_t dev;
	uint64_t ino;
	int fd, dbg_fd;
	Elf *elf, *dbg;         /* dbg: the separate debug file, when the module is stripped */
	uint64_t size;
	bool bad;               /* malformed: a negative entry, kept so that it is not re-parsed */
	bool tabs_loaded;
	uint64_t last_use;
	char *path;
	size_t nload;
	struct load_seg load[MAX_LOADS];
	size_t build_id_len;
	uint8_t build_id[TMD_BUILD_ID_MAX];
	struct symtab tabs[2];  /* .symtab (of the file or its debug file), .dynsym */
};

#define DEFAULT_LIMIT 64

static struct {
	pthread_mutex_t lock;
	struct elf_mod **v;
	size_t n, cap, limit;
	uint64_t clock;
	uint64_t hits, misses, evictions, bad;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER, .limit = DEFAULT_LIMIT };

static void libelf_version(void)
{
	elf_version(EV_CURRENT);
}

static void libelf_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, libelf_version);
}

static bool range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* A section's header, when its contents lie inside the file. */
static bool section_ok(Elf_Scn *scn, uint64_t size, GElf_Shdr *sh)
{
	if (!gelf_getshdr(scn, sh))
		return false;
	return sh->sh_type == SHT_NOBITS || range_ok(sh->sh_offset, sh->sh_size, size);
}

static size_t note_build_id(Elf_Data *d, uint8_t *id, size_t cap)
{
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off, next;
	if (!d || !d->d_buf)
		return 0;
	while (off < d->d_size && (next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > off) {
		off = next;
		if (!range_ok(name_off, nh.n_namesz, d->d_size) || !range_ok(desc_off, nh.n_descsz, d->d_size))
			return 0;
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    memcmp((const char *)d->d_buf + name_off, "GNU", 4) == 0) {
			if (nh.n_descsz == 0 || nh.n_descsz > cap)
				return 0;
			memcpy(id, (const char *)d->d_buf + desc_off, nh.n_descsz);
			return nh.n_descsz;
		}
	}
	return 0;
}

/* The build-id: from PT_NOTE segments (present in any loadable file), else SHT_NOTE sections. */
static size_t read_build_id(Elf *e, uint64_t size, uint8_t *id, size_t cap)
{
	size_t n = 0, len = 0;
	if (elf_getphdrnum(e, &n) == 0) {
		for (size_t i = 0; i < n && !len; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_NOTE || !range_ok(ph.p_offset, ph.p_filesz, size))
				continue;
			len = note_build_id(elf_getdata_rawchunk(e, (int64_t)ph.p_offset, ph.p_filesz, ELF_T_NHDR), id, cap);
		}
	}
	Elf_Scn *scn = NULL;
	while (!len && (scn = elf_nextscn(e, scn)) != NULL) {
		GElf_Shdr sh;
		if (section_ok(scn, size, &sh) && sh.sh_type == SHT_NOTE)
			len = note_build_id(elf_getdata(scn, NULL), id, cap);
	}
	return len;
}

static struct sec_range *section_ranges(Elf *e, size_t *n)
{
	size_t shnum;
	if (elf_getshdrnum(e, &shnum) != 0 || shnum == 0)
		return NULL;
	if (shnum > SHN_LORESERVE)
		shnum = SHN_LORESERVE;   /* the most a symbol can name */
	struct sec_range *r = calloc(shnum, sizeof(*r));
	for (size_t i = 0; r && i < shnum; i++) {
		Elf_Scn *scn = elf_getscn(e, i);
		GElf_Shdr sh;
		if (scn && gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_ALLOC) && sh.sh_addr <= UINT64_MAX - sh.sh_size)
			r[i] = (struct sec_range){ sh.sh_addr, sh.sh_size, true };
	}
	*n = r ? shnum : 0;
	return r;
}

/* The symbol table of that type, with its string table, checked. */
static void find_symtab(Elf *e, uint64_t size, Elf64_Word type, struct symtab *t)
{
	size_t shnum;
	Elf_Scn *scn = NULL;
	memset(t, 0, sizeof(*t));
	if (elf_getshdrnum(e, &shnum) != 0)
		return;
	size_t entsize = gelf_fsize(e, ELF_T_SYM, 1, EV_CURRENT);
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		GElf_Shdr sh, strsh;
		if (!section_ok(scn, size, &sh) || sh.sh_type != type)
			continue;
		if (sh.sh_type == SHT_NOBITS || sh.sh_entsize != entsize || entsize == 0 || sh.sh_link == 0 ||
		    sh.sh_link >= shnum)
			return;
		Elf_Scn *strscn = elf_getscn(e, sh.sh_link);
		if (!strscn || !section_ok(strscn, size, &strsh) || strsh.sh_type != SHT_STRTAB)
			return;
		Elf_Data *syms = elf_getdata(scn, NULL), *strs = elf_getdata(strscn, NULL);
		if (!syms || !strs || !syms->d_buf || !strs->d_buf || syms->d_size < entsize || strs->d_size == 0)
			return;
		t->secs = section_ranges(e, &t->nsecs);
		if (!t->secs)
			return;
		t->syms = syms;
		t->strs = strs;
		t->count = syms->d_size / entsize;
		t->full = type == SHT_SYMTAB;
		return;
	}
}

/* Opens an ELF file; checks its headers. fd is taken over on success. */
static Elf *elf_open_fd(int fd, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return NULL;
	*size = (uint64_t)st.st_size;
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);   /* pread, not mmap: a file truncated under us cannot SIGBUS */
	GElf_Ehdr eh;
	if (!e || elf_kind(e) != ELF_K_ELF || !gelf_getehdr(e, &eh) ||
	    (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)) {
		if (e)
			elf_end(e);
		return NULL;
	}
	return e;
}

static void load_segments(struct elf_mod *f)
{
	size_t n;
	if (elf_getphdrnum(f->elf, &n) != 0)
		return;
	for (size_t i = 0; i < n && f->nload < MAX_LOADS; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(f->elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_filesz > 0 &&
		    ph.p_offset <= UINT64_MAX - ph.p_filesz)
			f->load[f->nload++] = (struct load_seg){ ph.p_offset, ph.p_filesz, ph.p_vaddr };
	}
}

/* A stripped module's symbols from the debug file its build-id names, when
 * one is installed and carries the same build-id. */
static void open_debug_file(struct elf_mod *f)
{
	char path[128], hex[2 * TMD_BUILD_ID_MAX + 1];
	if (f->build_id_len < 2)
		return;
	tmd_build_id_hex(f->build_id, f->build_id_len, hex, sizeof(hex));
	snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%.2s/%s.debug", hex, hex + 2);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	uint64_t size;
	uint8_t id[TMD_BUILD_ID_MAX];
	Elf *e = elf_open_fd(fd, &size);
	if (e && read_build_id(e, size, id, sizeof(id)) == f->build_id_len &&
	    memcmp(id, f->build_id, f->build_id_len) == 0) {
		find_symtab(e, size, SHT_SYMTAB, &f->tabs[0]);
		if (f->tabs[0].syms) {
			f->dbg = e;
			f->dbg_fd = fd;
			return;
		}
		free(f->tabs[0].secs);
		memset(&f->tabs[0], 0, sizeof(f->tabs[0]));
	}
	if (e)
		elf_end(e);
	close(fd);
}

static void load_symbols(struct elf_mod *f)
{
	if (f->tabs_loaded)
		return;
	f->tabs_loaded = true;
	find_symtab(f->elf, f->size, SHT_SYMTAB, &f->tabs[0]);
	find_symtab(f->elf, f->size, SHT_DYNSYM, &f->tabs[1]);
	if (!f->tabs[0].syms)
		open_debug_file(f);
}

static void mod_free(struct elf_mod *f)
{
	if (!f)
		return;
	for (int i = 0; i < 2; i++) {
		free(f->tabs[i].secs);
		free(f->tabs[i].idx);
	}
	if (f->dbg)
		elf_end(f->dbg);
	if (f->elf)
		elf_end(f->elf);
	if (f->dbg_fd >= 0)
		close(f->dbg_fd);
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	free(f);
}

/* Parses the file behind fd: a module, or a bad one (kept as a negative entry). */
static struct elf_mod *mod_from_fd(int fd, const char *path)
{
	struct elf_mod *f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return NULL;
	}
	f->fd = fd;
	f->dbg_fd = -1;
	f->path = strdup(path);
	libelf_init();
	f->elf = elf_open_fd(fd, &f->size);
	if (!f->elf || !f->path) {
		f->bad = true;
		return f;
	}
	load_segments(f);
	f->build_id_len = read_build_id(f->elf, f->size, f->build_id, sizeof(f->build_id));
	if (f->nload == 0)
		f->bad = true;
	return f;
}

/* The mapped file, opened by path when that is still the same file, else
 * through /proc/<pid>/map_files while the process lives. -1 if neither. */
static int open_mapped(const struct tmd_mapping *mp, pid_t pid)
{
	struct stat st;
	/* A deleted file's path may name a newer file now: the inode tells. On
	 * overlayfs, maps may give the lower file's device and stat the overlay's,
	 * so only the inode is compared. */
	int fd = open(mp->path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == mp->inode)
		return fd;
	if (fd >= 0)
		close(fd);
	if (pid > 0) {
		char path[96];
		snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid, (unsigned long long)mp->start,
		         (unsigned long long)mp->end);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == mp->inode)
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

static void cache_evict_to(size_t keep)
{
	while (cache.n > keep) {
		size_t old = 0;
		for (size_t i = 1; i < cache.n; i++)
			if (cache.v[i]->last_use < cache.v[old]->last_use)
				old = i;
		mod_free(cache.v[old]);
		cache.v[old] = cache.v[--cache.n];
		cache.evictions++;
	}
}

static bool cache_insert(struct elf_mod *f)
{
	if (cache.limit == 0)
		return false;
	cache_evict_to(cache.limit - 1);
	if (cache.n == cache.cap) {
		size_t cap = cache.cap ? cache.cap * 2 : 16;
		struct elf_mod **v = realloc(cache.v, cap * sizeof(*v));
		if (!v)
			return false;
		cache.v = v;
		cache.cap = cap;
	}
	cache.v[cache.n++] = f;
	return true;
}

/* The cached module for a mapping (cache.lock held); NULL when its file
 * cannot be opened now (not cached: it may be openable later). */
static struct elf_mod *mod_get(const struct tmd_mapping *mp, pid_t pid)
{
	for (size_t i = 0; i < cache.n; i++) {
		struct elf_mod *f = cache.v[i];
		if (f->dev == mp->dev && f->ino == mp->inode) {
			f->last_use = ++cache.clock;
			cache.hits++;
			return f;
		}
	}
	cache.misses++;
	int fd = open_mapped(mp, pid);
	if (fd < 0)
		return NULL;
	struct elf_mod *f = mod_from_fd(fd, mp->path);
	if (!f)
		return NULL;
	f->dev = mp->dev;
	f->ino = mp->inode;
	f->last_use = ++cache.clock;
	if (f->bad)
		cache.bad++;
	if (!cache_insert(f)) {
		mod_free(f);
		return NULL;
	}
	return f;
}

static void warm_cache(const struct tmd_maps *m)
{
	pthread_mutex_lock(&cache.lock);
	for (size_t i = 0; i < m->n && i < cache.limit; i++)
		if (m->v[i].inode)
			mod_get(&m->v[i], m->pid);
	pthread_mutex_unlock(&cache.lock);
}

void tmd_symcache_limit(size_t max_files)
{
	pthread_mutex_lock(&cache.lock);
	cache.limit = max_files ? max_files : DEFAULT_LIMIT;
	cache_evict_to(cache.limit);
	pthread_mutex_unlock(&cache.lock);
}

void tmd_symcache_stats(struct tmd_symcache_stats *out)
{
	pthread_mutex_lock(&cache.lock);
	*out = (struct tmd_symcache_stats){ .files = cache.n, .limit = cache.limit, .hits = cache.hits,
	                                    .misses = cache.misses, .evictions = cache.evictions, .bad = cache.bad };
	pthread_mutex_unlock(&cache.lock);
}

void tmd_symcache_clear(void)
{
	pthread_mutex_lock(&cache.lock);
	for (size_t i = 0; i < cache.n; i++)
		mod_free(cache.v[i]);
	free(cache.v);
	cache.v = NULL;
	cache.n = cache.cap = 0;
	pthread_mutex_unlock(&cache.lock);
}

/* ---- symbol lookup -------------------------------------------------------- */

static bool file_offset_to_vaddr(const struct elf_mod *f, uint64_t off, uint64_t *vaddr)
{
	for (size_t i = 0; i < f->nload; i++) {
		const struct load_seg *s = &f->load[i];
		if (off >= s->offset && off - s->offset < s->filesz) {
			*vaddr = s->vaddr + (off - s->offset);
			return true;
		}
	}
	return false;
}

/* The name of symbol i when it is a NUL-terminated string inside the table. */
static const char *sym_name(const struct symtab *t, const GElf_Sym *s)
{
	if (s->st_name == 0 || s->st_name >= t->strs->d_size)
		return NULL;
	const char *p = (const char *)t->strs->d_buf + s->st_name;
	if (!memchr(p, '\0', t->strs->d_size - s->st_name) || *p == '\0')
		return NULL;
	return p;
}

static unsigned underscores(const char *s)
{
	unsigned n = 0;
	while (s[n] == '_')
		n++;
	return n;
}

/* The symbol lies inside the allocated section it names (a forged size or
 * value cannot make it cover everything). */
static bool sym_in_section(const struct symtab *t, const GElf_Sym *s)
{
	if (s->st_shndx >= t->nsecs || !t->secs[s->st_shndx].alloc)
		return false;
	const struct sec_range *r = &t->secs[s->st_shndx];
	return s->st_value >= r->addr && s->st_value - r->addr <= r->size &&
	       s->st_size <= r->size - (s->st_value - r->addr);
}

static bool in_section(const struct symtab *t, size_t shndx, uint64_t vaddr)
{
	return shndx < t->nsecs && t->secs[shndx].alloc && vaddr >= t->secs[shndx].addr &&
	       vaddr - t->secs[shndx].addr < t->secs[shndx].size;
}

struct sym_hit {
	const char *name;
	uint64_t start;
};

/* Is a better than b for the same address? The innermost (smallest) symbol,
 * then the public name of aliases: fewer leading underscores, global binding. */
static bool better(const struct sym_ent *a, const struct sym_ent *b)
{
	if (a->size != b->size)
		return a->size < b->size;
	if (underscores(a->name) != underscores(b->name))
		return underscores(a->name) < underscores(b->name);
	return a->bind == STB_GLOBAL && b->bind != STB_GLOBAL;
}

static int cmp_ent(const void *a, const void *b)
{
	const struct sym_ent *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

/* The code symbols that pass every check, sorted: a lookup is a binary
 * search and a short walk down, not a pass over the whole table. */
static void build_index(struct symtab *t)
{
	GElf_Sym s;
	t->indexed = true;
	if (!t->syms || !(t->idx = malloc(t->count * sizeof(*t->idx))))
		return;
	for (size_t i = 1; i < t->count; i++) {
		if (!gelf_getsym(t->syms, (int)i, &s))
			break;
		int type = GELF_ST_TYPE(s.st_info);
		const char *name;
		if ((type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_NOTYPE) || !sym_in_section(t, &s) ||
		    !(name = sym_name(t, &s)) || (s.st_size == 0 && !t->full))
			continue;
		t->idx[t->n++] = (struct sym_ent){ s.st_value, s.st_size, name, s.st_shndx, GELF_ST_BIND(s.st_info) };
		if (s.st_size > t->max_size)
			t->max_size = s.st_size;
	}
	qsort(t->idx, t->n, sizeof(*t->idx), cmp_ent);
}

static bool lookup(struct symtab *t, uint64_t vaddr, struct sym_hit *out)
{
	if (!t->indexed)
		build_index(t);
	size_t lo = 0, hi = t->n;
	while (lo < hi) {   /* the first entry above vaddr */
		size_t mid = lo + (hi - lo) / 2;
		if (t->idx[mid].start <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct sym_ent *best = NULL, *label = NULL;
	bool seen_sized = false;
	for (size_t i = lo; i-- > 0;) {
		const struct sym_ent *e = &t->idx[i];
		uint64_t d = vaddr - e->start;
		if (d >= t->max_size && (seen_sized || label))
			break;   /* nothing further down can cover vaddr */
		if (e->size) {
			seen_sized = true;
			if (d < e->size && (!best || better(e, best)))
				best = e;
		} else if (!label && !seen_sized) {
			label = e;   /* an assembly label (full tables only) with nothing sized after it */
		}
	}
	/* A label names the address only when both are in the same section (not
	 * a PLT stub after _init, say). */
	if (!best && label && in_section(t, label->shndx, vaddr))
		best = label;
	if (!best)
		return false;
	out->name = best->name;
	out->start = best->start;
	return true;
}

static void copy_symbol(char *dst, const char *src)
{
	size_t n = strnlen(src, TMD_SYMBOL_MAX);
	if (n < TMD_SYMBOL_MAX) {
		memcpy(dst, src, n + 1);
		return;
	}
	memcpy(dst, src, TMD_SYMBOL_MAX - 4);
	memcpy(dst + TMD_SYMBOL_MAX - 4, "...", 4);
}

/* Fills the symbol of a file offset in f (cache.lock held). */
static int symbolize_in(struct elf_mod *f, uint64_t lookup_off, struct tmd_frame *out)
{
	uint64_t vaddr;
	struct sym_hit hit;
	if (f->bad)
		return out->status = TMD_SYM_BAD_ELF;
	memcpy(out->build_id, f->build_id, f->build_id_len);
	out->build_id_len = f->build_id_len;
	if (!file_offset_to_vaddr(f, lookup_off, &vaddr))
		return out->status = TMD_SYM_NO_SYMBOL;
	load_symbols(f);
	if (!lookup(&f->tabs[0], vaddr, &hit) && !lookup(&f->tabs[1], vaddr, &hit))
		return out->status = TMD_SYM_NO_SYMBOL;
	copy_symbol(out->symbol, hit.name);
	/* vaddr is of the byte looked up (a return address less one); the offset is of the address itself. */
	out->sym_offset = vaddr + (out->file_offset - lookup_off) - hit.start;
	return out->status = TMD_SYM_OK;
}

static void frame_init(struct tmd_frame *out, uint64_t addr)
{
	out->addr = addr;
	out->file_offset = out->sym_offset = 0;
	out->status = TMD_SYM_NO_MODULE;
	out->build_id_len = 0;
	out->module[0] = out->symbol[0] = '\0';
}

int tmd_symbolize_addr(const struct tmd_maps *m, uint64_t addr, bool return_addr, struct tmd_frame *out)
{
	frame_init(out, addr);
	uint64_t look = return_addr && addr > 0 ? addr - 1 : addr;
	const struct tmd_mapping *mp = tmd_maps_find(m, look);
	if (!mp)
		return out->status;
	snprintf(out->module, sizeof(out->module), "%s", mp->path);
	out->file_offset = addr - mp->start + mp->offset;
	if (!mp->inode)
		return out->status = TMD_SYM_NO_FILE;
	pthread_mutex_lock(&cache.lock);
	struct elf_mod *f = mod_get(mp, m->pid);
	int st = f ? symbolize_in(f, look - mp->start + mp->offset, out) : (out->status = TMD_SYM_BAD_ELF);
	pthread_mutex_unlock(&cache.lock);
	return st;
}

size_t tmd_symbolize_stack(const struct tmd_maps *m, const uint64_t *ips, size_t n, struct tmd_frame *out)
{
	for (size_t i = 0; i < n; i++)
		tmd_symbolize_addr(m, ips[i], i > 0, &out[i]);
	return n;
}

int tmd_symbolize_build_id(const struct tmd_maps *m, const uint8_t *id, size_t id_len, uint64_t file_offset,
                           struct tmd_frame *out)
{
	frame_init(out, 0);
	out->file_offset = file_offset;
	if (!id || id_len == 0 || id_len > TMD_BUILD_ID_MAX)
		return out->status;
	pthread_mutex_lock(&cache.lock);
	struct elf_mod *f = NULL;
	for (size_t i = 0; m && i < m->n && !f; i++) {
		struct elf_mod *c = m->v[i].inode ? mod_get(&m->v[i], m->pid) : NULL;
		if (c && !c->bad && c->build_id_len == id_len && memcmp(c->build_id, id, id_len) == 0)
			f = c;
	}
	for (size_t i = 0; !m && i < cache.n && !f; i++) {
		struct elf_mod *c = cache.v[i];
		if (!c->bad && c->build_id_len == id_len && memcmp(c->build_id, id, id_len) == 0)
			f = c;
	}
	int st = out->status;
	if (f) {
		f->last_use = ++cache.clock;
		snprintf(out->module, sizeof(out->module), "%s", f->path);
		st = symbolize_in(f, file_offset, out);
	}
	pthread_mutex_unlock(&cache.lock);
	return st;
}

/* ---- by path (tests, tools) ----------------------------------------------- */

static struct elf_mod *mod_from_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? NULL : mod_from_fd(fd, path);
}

int tmd_elf_build_id(const char *path, uint8_t *id, size_t cap)
{
	struct elf_mod *f = mod_from_path(path);
	if (!f)
		return -errno;
	int rc = f->bad ? -EBADMSG : (int)(f->build_id_len <= cap ? f->build_id_len : 0);
	if (rc > 0)
		memcpy(id, f->build_id, (size_t)rc);
	mod_free(f);
	return rc;
}

int tmd_elf_symbol(const char *path, uint64_t vaddr, char *name, size_t cap, uint64_t *off)
{
	struct elf_mod *f = mod_from_path(path);
	struct sym_hit hit;
	int st = TMD_SYM_BAD_ELF;
	if (cap)
		name[0] = '\0';
	if (f && !f->bad) {
		load_symbols(f);
		st = TMD_SYM_NO_SYMBOL;
		if (lookup(&f->tabs[0], vaddr, &hit) || lookup(&f->tabs[1], vaddr, &hit)) {
			snprintf(name, cap, "%s", hit.name);
			*off = vaddr - hit.start;
			st = TMD_SYM_OK;
		}
	}
	mod_free(f);
	return st;
}

char *tmd_build_id_hex(const uint8_t *id, size_t len, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0;
	for (; i < len && 2 * i + 2 < cap; i++) {
		buf[2 * i] = hex[id[i] >> 4];
		buf[2 * i + 1] = hex[id[i] & 15];
	}
	if (cap)
		buf[2 * i < cap ? 2 * i : cap - 1] = '\0';
	return buf;
}
