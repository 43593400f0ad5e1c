/* The shared-memory segment reader on forged segments.
 *
 * A raw file of fuzz bytes would almost never get past the header checks (a
 * valid segment is over 300 KiB), so the input describes a segment instead:
 *
 *   u8  mode      bit 0: name the file taskmon.<our pid> (the pid check applies)
 *                 bit 1: truncate the file after it is opened (reads must say -EIO, not crash)
 *                 bit 2: list running tasks only; bits 3-7: slot count - 1
 *   u8  raw       each bit leaves a group of header fields as the input has
 *                 them instead of making them valid: 0 magic/version, 1 sizes,
 *                 2 region offsets, 3 total_size, 4 pid, 5 file size off by
 *                 a multiple of 8 (u16 that follows, signed)
 *   header bytes  laid over a valid header (first u8: how many)
 *   slots         slot_count * sizeof(struct tm_shm_slot) bytes
 *   types         per type, its bytes before the histogram (name, counters, limits,
 *                 latency figures), then one histogram bucket (u16 index, u64 value)
 *   messages      what is left, over the MSGS entries of the message ring after the slots
 *                 (raw bit 1 leaves message_size, bit 2 messages_offset and message_count)
 *
 * Whatever the bytes, the reader must answer with a count or a negative
 * errno, and what it hands out must be valid: names printable and
 * NUL-terminated, types and statuses in range, no more records than asked. */
#include "fuzz.h"

#include <limits.h>
#include <stddef.h>
#include "taskmon_shm.h"

#define TYPE_HEAD offsetof(struct tm_shm_type, hist)   /* name, counters, limits, latency figures */
#define MSGS      8                                      /* ring entries of the segment */

static char plain_path[128], pid_path[128];
static unsigned char *seg;
static size_t seg_cap;

static void paths(void)
{
	if (plain_path[0])
		return;
	snprintf(plain_path, sizeof(plain_path), "%s/segment", fuzz_dir());
	snprintf(pid_path, sizeof(pid_path), "%s/taskmon.%d", fuzz_dir(), (int)getpid());
}

static void valid_header(struct tm_shm_header *h, uint32_t slots, size_t msgs_off, size_t total, unsigned raw,
                         const struct tm_shm_header *in)
{
	if (!(raw & 1)) {
		h->magic = TM_SHM_MAGIC;
		h->version = TM_SHM_VERSION;
	}
	if (!(raw & 2)) {
		h->header_size = sizeof(struct tm_shm_header);
		h->type_size = sizeof(struct tm_shm_type);
		h->slot_size = sizeof(struct tm_shm_slot);
		h->type_count = TM_MAX_TYPES;
		h->hist_buckets = TM_HIST_BUCKETS;
		h->message_size = sizeof(struct tm_shm_message);
	}
	if (!(raw & 4)) {
		h->types_offset = sizeof(struct tm_shm_header);
		h->slots_offset = h->types_offset + TM_MAX_TYPES * sizeof(struct tm_shm_type);
		h->slot_count = slots;
		h->messages_offset = msgs_off;
		h->message_count = MSGS;
	}
	if (!(raw & 8))
		h->total_size = total;
	if (!(raw & 16))
		h->pid = getpid();
	(void)in;
}

static void check_name(const char *name)
{
	size_t n = strnlen(name, TM_NAME_MAX);
	FUZZ_CHECK(n > 0 && n < TM_NAME_MAX);
	FUZZ_CHECK(fuzz_printable(name, n));
}

static void read_all(tm_shm_reader *r, bool running_only, size_t cap)
{
	static struct tm_shm_type_snapshot types[TM_MAX_TYPES + 1];
	static struct tm_task_info tasks[64];
	struct tm_stats st;

	const char *comm = tm_shm_comm(r);
	FUZZ_CHECK(strnlen(comm, 16) < 16 && fuzz_printable(comm, strlen(comm)));
	FUZZ_CHECK(tm_shm_pid(r) > 0);
	(void)tm_shm_is_closed(r);
	(void)tm_shm_is_stale(r);   /* kill(pid, 0) and /proc: harmless for any pid */

	int n = tm_shm_read_types(r, types, TM_MAX_TYPES);
	FUZZ_CHECK(n == -EIO || (n >= 0 && n <= TM_MAX_TYPES));
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(types[i].id >= 0 && types[i].id < TM_MAX_TYPES);
		check_name(types[i].name);
	}
	int rc = tm_shm_read_stats(r, &st);
	FUZZ_CHECK(rc == 0 || rc == -EIO);
	if (rc == 0)   /* quantiles of one histogram, capped by its maximum */
		FUZZ_CHECK(st.spawn_latency_p50_ns <= st.spawn_latency_p95_ns &&
		           st.spawn_latency_p95_ns <= st.spawn_latency_p99_ns &&
		           (st.spawn_latency_max_ns == 0 || st.spawn_latency_p99_ns <= st.spawn_latency_max_ns));
	n = tm_shm_read_tasks(r, tasks, cap, running_only);
	FUZZ_CHECK(n == -EIO || (n >= 0 && (size_t)n <= cap));
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(tasks[i].id != 0);
		FUZZ_CHECK(tasks[i].type >= 0 && tasks[i].type < TM_MAX_TYPES);
		FUZZ_CHECK((unsigned)tasks[i].status < TM_STATUS_COUNT);
		FUZZ_CHECK(!running_only || tasks[i].status == TM_RUNNING);
		FUZZ_CHECK(tasks[i].tid >= 0);
		check_name(tasks[i].name);
	}
	FUZZ_CHECK(tm_shm_read_tasks(r, NULL, 0, false) == 0 || tm_shm_read_tasks(r, NULL, 0, false) == -EIO);

	static struct tm_shm_message_info msgs[MSGS + 1];
	size_t mcap = (size_t)(running_only ? MSGS + 1 : MSGS / 2);
	n = tm_shm_read_messages(r, msgs, mcap);
	FUZZ_CHECK(n == -EIO || n == -ENOMEM || (n >= 0 && (size_t)n <= mcap));
	for (int i = 0; i < n; i++) {
		size_t len = strnlen(msgs[i].text, TM_SHM_MESSAGE_TEXT);
		FUZZ_CHECK(len < TM_SHM_MESSAGE_TEXT && fuzz_printable(msgs[i].text, len));
		FUZZ_CHECK(msgs[i].task_id != 0);
		FUZZ_CHECK(msgs[i].kind == TM_SHM_MSG_PANIC || msgs[i].kind == TM_SHM_MSG_CRASH);
		FUZZ_CHECK(i == 0 || msgs[i - 1].serial >= msgs[i].serial);
	}
	struct tm_shm_message_info one;
	rc = tm_shm_read_task_message(r, n > 0 ? msgs[0].task_id : 1, &one);
	FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EIO || rc == -ENOMEM);
	if (rc == 0)
		FUZZ_CHECK(strnlen(one.text, TM_SHM_MESSAGE_TEXT) < TM_SHM_MESSAGE_TEXT && one.task_id != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	paths();
	uint8_t mode = fuzz_u8(&in), raw = fuzz_u8(&in);
	uint32_t slots = (uint32_t)(mode >> 3) + 1;
	int16_t delta = (int16_t)fuzz_u16(&in);
	size_t types_off = sizeof(struct tm_shm_header);
	size_t slots_off = types_off + TM_MAX_TYPES * sizeof(struct tm_shm_type);
	size_t msgs_off = slots_off + slots * sizeof(struct tm_shm_slot);
	size_t total = msgs_off + MSGS * sizeof(struct tm_shm_message);
	size_t file = total;
	if (raw & 32)
		file = (size_t)((long long)total + (long long)delta * 8 > 0 ? (long long)total + (long long)delta * 8 : 0);

	size_t need = file > total ? file : total;
	if (need > seg_cap) {
		free(seg);
		seg = malloc(seg_cap = need);
		FUZZ_CHECK(seg);
	}
	memset(seg, 0, need);

	/* The header: valid, with the input laid over it, then the groups not left raw made valid again. */
	struct tm_shm_header h, over;
	memset(&h, 0, sizeof(h));
	valid_header(&h, slots, msgs_off, total, 0, NULL);
	h.slots_used = slots;
	h.types_used = TM_MAX_TYPES;
	size_t hlen = fuzz_u8(&in);
	if (hlen > sizeof(h))
		hlen = sizeof(h);
	memcpy(&over, &h, sizeof(h));
	fuzz_take(&in, &over, hlen);
	if (hlen < sizeof(h))   /* fuzz_take zero-filled the rest: restore it */
		memcpy((char *)&over + hlen, (char *)&h + hlen, sizeof(h) - hlen);
	valid_header(&over, slots, msgs_off, total, raw, &h);
	memcpy(seg, &over, sizeof(over));

	fuzz_take(&in, seg + slots_off, slots * sizeof(struct tm_shm_slot));
	for (size_t t = 0; t < TM_MAX_TYPES && in.n > 0; t++) {
		unsigned char *tp = seg + types_off + t * sizeof(struct tm_shm_type);
		fuzz_take(&in, tp, TYPE_HEAD);
		uint16_t b = fuzz_u16(&in) % TM_HIST_BUCKETS;
		uint64_t v = fuzz_u64(&in);
		memcpy(tp + TYPE_HEAD + b * sizeof(uint64_t), &v, sizeof(v));
	}
	fuzz_take(&in, seg + msgs_off, MSGS * sizeof(struct tm_shm_message));

	const char *path = (mode & 1) ? pid_path : plain_path;
	fuzz_write_file(path, seg, file);
	tm_shm_reader *r = NULL;
	int rc = tm_shm_open_path(&r, path);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	FUZZ_CHECK((rc == 0) == (r != NULL));
	if (rc == 0) {
		if (mode & 2) {
			/* Cut it short while the mapping stays: the next loads past the end fault. */
			if (truncate(path, (off_t)(file / 2)) != 0)
				abort();
		}
		read_all(r, mode & 4, (size_t)(raw >> 6) * 16 + 16);
		tm_shm_close(r);
	}
	unlink(path);
	return 0;
}
