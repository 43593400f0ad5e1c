/* /proc readers for the registry header. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "proc.h"

/* Field 22 is the 20th after the ')' that closes field 2 (comm). */
#define STARTTIME_FIELD 22
#define FIRST_FIELD_AFTER_COMM 3

/* Reads up to cap - 1 bytes of a /proc file and NUL-terminates them. Returns
 * the length or -errno, with a missing file meaning a missing process. */
static ssize_t read_proc_file(pid_t pid, const char *leaf, char *buf, size_t cap)
{
	char path[64];
	if (pid <= 0)
		return tm__fail(EINVAL, "pid %d is not a process id", (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, leaf);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno == ENOENT ? ESRCH : errno;
		return tm__fail(err, "cannot open %s: %s", path, strerror(errno));
	}
	size_t len = 0;
	while (len < cap - 1) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			close(fd);
			return tm__fail(err, "cannot read %s: %s", path, strerror(err));
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* Steps over one " field"; NULL when the line ends first. */
static const char *skip_field(const char *p, const char *end)
{
	if (p >= end || *p != ' ')
		return NULL;
	p++;
	const char *start = p;
	while (p < end && *p != ' ' && *p != '\n')
		p++;
	return p > start ? p : NULL;
}

static int parse_u64(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	if (p >= end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -1;
	}
	if (p < end && *p != ' ' && *p != '\n')
		return -1;
	*out = v;
	return 0;
}

/* comm may hold spaces and ')' itself, so the fields start after the last ')'. */
int tm__proc_start_ticks(pid_t pid, uint64_t *out)
{
	char buf[1024];
	ssize_t len = read_proc_file(pid, "stat", buf, sizeof(buf));
	if (len < 0)
		return (int)len;
	const char *end = buf + len;
	const char *p = memrchr(buf, ')', (size_t)len);
	if (p == NULL)
		return tm__fail(EPROTO, "/proc/%d/stat has no ')' after the command name", (int)pid);
	p++;
	for (int field = FIRST_FIELD_AFTER_COMM; field < STARTTIME_FIELD && p != NULL; field++)
		p = skip_field(p, end);
	if (p == NULL || p >= end || *p != ' ' || parse_u64(p + 1, end, out) != 0)
		return tm__fail(EPROTO, "/proc/%d/stat: field %d (starttime) is missing or not a number",
				(int)pid, STARTTIME_FIELD);
	return 0;
}

int tm__proc_comm(pid_t pid, char out[16])
{
	char buf[80];
	ssize_t len = read_proc_file(pid, "comm", buf, sizeof(buf));
	if (len < 0)
		return (int)len;
	if (len > 0 && buf[len - 1] == '\n')  /* the kernel's, not part of the name */
		len--;
	if (len > 15)
		len = 15;
	memcpy(out, buf, (size_t)len);
	memset(out + len, 0, 16 - (size_t)len);
	return 0;
}
