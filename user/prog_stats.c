/* BPF program statistics of this process (see prog_stats.h). Single-threaded,
 * like the collector's loop that calls it. */
#include "prog_stats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#define MAX_PROGS 64

static struct {
	int fd;
	uint32_t id;
} progs[MAX_PROGS];
static int nprogs = -1;   /* -1 = not looked for yet */

static int prog_info(int fd, struct bpf_prog_info *info)
{
	uint32_t len = sizeof(*info);
	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

/* Every descriptor of this process that is a BPF program. */
static int find_programs(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	nprogs = 0;
	struct dirent *e;
	while ((e = readdir(d)) && nprogs < MAX_PROGS) {
		char path[64], target[64];
		int fd = atoi(e->d_name);
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		struct bpf_prog_info info;
		if (strcmp(target, "anon_inode:bpf-prog") != 0 || prog_info(fd, &info) < 0)
			continue;
		progs[nprogs].fd = fd;
		progs[nprogs].id = info.id;
		nprogs++;
	}
	closedir(d);
	return 0;
}

static bool stats_enabled(void)
{
	char c = '0';
	int fd = open("/proc/sys/kernel/bpf_stats_enabled", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &c, 1) != 1)
			c = '0';
		close(fd);
	}
	return c == '1';
}

/* One pass over the known programs; -ESTALE when one changed. */
static int sum(struct tmd_prog_stats *out)
{
	out->run_ns = out->runs = 0;
	for (int i = 0; i < nprogs; i++) {
		struct bpf_prog_info info;
		if (prog_info(progs[i].fd, &info) < 0 || info.id != progs[i].id)
			return -ESTALE;
		out->run_ns += info.run_time_ns;
		out->runs += info.run_cnt;
	}
	out->programs = nprogs;
	return 0;
}

int tmd_prog_stats_read(struct tmd_prog_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->enabled = stats_enabled();
	int r = 0;
	if (nprogs <= 0 || sum(out) == -ESTALE) {
		r = find_programs();
		if (r == 0)
			r = sum(out);
	}
	if (r < 0)
		out->programs = 0;
	return r;
}

void tmd_prog_stats_reset(void)
{
	nprogs = -1;
}
