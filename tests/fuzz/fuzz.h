/* What the fuzz targets share. Each target defines LLVMFuzzerTestOneInput;
 * built with clang -fsanitize=fuzzer it is a libFuzzer binary (make fuzz),
 * linked with replay.c it runs over a corpus (make test). A target reports a
 * broken promise of the code under test with FUZZ_CHECK, which aborts: the
 * fuzzer keeps the input as a crash, the replay fails. */
#ifndef TM_FUZZ_H
#define TM_FUZZ_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* A private directory for the files a target hands to code that takes a
 * path, made once per process and removed at exit. In memory (tmpfs) when
 * /dev/shm is there: a name that starts "taskmon-" is never taken for a
 * workload's segment ("taskmon.<pid>"). */
static char fuzz_dir_path[64];

static inline void fuzz_dir_remove(void)
{
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir_path);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fuzz_dir_path);
}

static inline const char *fuzz_dir(void)
{
	if (!fuzz_dir_path[0]) {
		snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/taskmon-fuzz.XXXXXX",
		         access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (!mkdtemp(fuzz_dir_path)) {
			perror("mkdtemp");
			abort();
		}
		atexit(fuzz_dir_remove);
	}
	return fuzz_dir_path;
}

/* Replaces the file's contents with buf (truncating first). */
static inline void fuzz_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(path);
		abort();
	}
	const char *p = buf;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w <= 0) {
			perror(path);
			abort();
		}
		p += w;
		len -= (size_t)w;
	}
	close(fd);
}

/* Input consumed front to back; reads past the end give zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline size_t fuzz_take(struct fuzz_in *in, void *dst, size_t want)
{
	size_t k = want < in->n ? want : in->n;
	memcpy(dst, in->p, k);
	memset((char *)dst + k, 0, want - k);
	in->p += k;
	in->n -= k;
	return k;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v;
	fuzz_take(in, &v, 1);
	return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint16_t v;
	fuzz_take(in, &v, 2);
	return v;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
	uint64_t v;
	fuzz_take(in, &v, 8);
	return v;
}

/* True when every byte of s[0, n) is printable ASCII. */
static inline int fuzz_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

#endif
