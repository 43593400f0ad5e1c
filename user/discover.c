/* Finding workloads and the binaries that carry their USDT probes. */
#include "discover.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "taskmon_shm.h"

#define NT_STAPSDT 3

/* A stapsdt note's descriptor: pc, base, semaphore (3 addresses), then
 * provider, name and arguments as NUL-terminated strings. */
static bool note_is_taskmon(const char *desc, size_t len, bool is64)
{
	size_t skip = is64 ? 24 : 12;
	static const char provider[] = "taskmon";
	if (len < skip + sizeof(provider))
		return false;
	return memcmp(desc + skip, provider, sizeof(provider)) == 0;
}

static bool section_has_taskmon(Elf_Scn *scn, bool is64)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off;
	while (data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		if (nh.n_type == NT_STAPSDT && nh.n_namesz == sizeof("stapsdt") &&
		    memcmp((const char *)data->d_buf + name_off, "stapsdt", sizeof("stapsdt")) == 0 &&
		    note_is_taskmon((const char *)data->d_buf + desc_off, nh.n_descsz, is64))
			return true;
	}
	return false;
}

bool tmd_elf_has_taskmon_probes(const char *path)
{
	bool found = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	size_t shstrndx;
	if (e && elf_kind(e) == ELF_K_ELF && elf_getshdrstrndx(e, &shstrndx) == 0) {
		bool is64 = gelf_getclass(e) == ELFCLASS64;
		Elf_Scn *scn = NULL;
		GElf_Shdr sh;
		while (!found && (scn = elf_nextscn(e, scn)) != NULL) {
			if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
				continue;
			const char *name = elf_strptr(e, shstrndx, sh.sh_name);
			if (name && strcmp(name, ".note.stapsdt") == 0)
				found = section_has_taskmon(scn, is64);
		}
	}
	if (e)
		elf_end(e);
	close(fd);
	return found;
}

static bool have_target(const struct tmd_targets *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->path[i], path) == 0)
			return true;
	return false;
}

static void add_target(struct tmd_targets *t, const char *path)
{
	if (t->n < TMD_MAX_TARGETS && !have_target(t, path) && tmd_elf_has_taskmon_probes(path))
		snprintf(t->path[t->n++], TMD_PATH_MAX, "%s", path);
}

/* The file path of a /proc/<pid>/maps line, or NULL (anonymous, deleted). */
static const char *maps_path(char *line)
{
	int off = 0;
	char *nl = strchr(line, '\n');
	if (nl)
		*nl = '\0';
	/* address perms offset dev inode path */
	if (sscanf(line, "%*s %*s %*s %*s %*s %n", &off) < 0 || off <= 0 || line[off] != '/')
		return NULL;
	size_t len = strlen(line + off);
	static const char deleted[] = " (deleted)";
	if (len >= sizeof(deleted) - 1 && strcmp(line + off + len - (sizeof(deleted) - 1), deleted) == 0)
		return NULL;   /* replaced on disk: a uprobe on the new file would miss it */
	return line + off;
}

int tmd_find_targets(pid_t pid, struct tmd_targets *t)
{
	char path[64], line[TMD_PATH_MAX + 256], exe[TMD_PATH_MAX];
	t->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (fgets(line, sizeof(line), f)) {
		const char *p = maps_path(line);
		const char *base = p ? strrchr(p, '/') + 1 : NULL;
		if (base && strncmp(base, "libtaskmon", 10) == 0 && strstr(base, ".so"))
			add_target(t, p);
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		/* A rebuilt executable: its old inode is still reachable through /proc. */
		add_target(t, strstr(exe, " (deleted)") ? path : exe);
	}
	return (int)t->n;
}

int tmd_proc_start(pid_t pid, unsigned long long *ticks)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -ESRCH;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: count from the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
	                 ticks) != 1)
		return -ESRCH;
	return 0;
}

/* A segment in a world-writable directory names a pid; it is taken for that
 * process's own only when the same user owns both. */
static bool same_owner(const char *seg, pid_t pid)
{
	char proc[64];
	struct stat a, b;
	snprintf(proc, sizeof(proc), "/proc/%d", (int)pid);
	return stat(seg, &a) == 0 && stat(proc, &b) == 0 && a.st_uid == b.st_uid;
}

int tmd_list_workloads(const char *dir, pid_t *pids, size_t cap)
{
	pid_t all[4096];
	int n = tm_shm_list(dir, all, sizeof(all) / sizeof(all[0]));
	if (n < 0)
		return n;
	size_t k = 0;
	for (int i = 0; i < n && k < cap; i++) {
		tm_shm_reader *r;
		char seg[TMD_PATH_MAX];
		/* Segments of crashed workloads stay behind: skip the dead cheaply. */
		if (kill(all[i], 0) != 0 && errno == ESRCH)
			continue;
		snprintf(seg, sizeof(seg), "%s/" TM_SHM_PREFIX "%d", dir ? dir : TM_SHM_DIR, (int)all[i]);
		if (!same_owner(seg, all[i]) || tm_shm_open_path(&r, seg) != 0)
			continue;   /* unreadable or malformed: not ours to watch */
		if (!tm_shm_is_stale(r))
			pids[k++] = all[i];
		tm_shm_close(r);
	}
	return (int)k;
}
