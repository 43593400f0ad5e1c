/* Crash records (user/crashlog.c) from hostile parts: the thread name the
 * kernel reports is whatever the workload set (prctl(PR_SET_NAME) takes any
 * bytes), and the task name and type come from the workload too. Whatever
 * they hold, the record must be one line of valid JSON (control bytes
 * escaped, invalid UTF-8 replaced), and the text line for --verbose must
 * carry no byte that a terminal would act on.
 *
 * Input: a struct tm_ev_crash (its kind forced to TM_EV_CRASH), then u8
 * flags (bit 0: a task name follows, bit 1: a type name follows, bit 2: no
 * mappings), then the names, NUL-separated. */
#include "fuzz.h"

#include <jansson.h>
#include "crashlog.h"

static struct tmd_maps *maps;

/* JSON text: no raw control byte (ESC, BEL, CR, newline) may reach a file or a pipe. */
static void check_json_bytes(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)s[i] >= 0x20);
}

/* The next NUL-terminated piece of the rest of the input. */
static const char *piece(struct fuzz_in *in, char *buf, size_t cap)
{
	size_t n = 0;
	while (in->n > 0 && n + 1 < cap) {
		char ch = (char)*in->p++;
		in->n--;
		if (!ch)
			break;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct tm_ev_crash ev;
	char task[64], type[64], line[8192];
	if (!maps) {
		static const char text[] = "555555554000-555555558000 r-xp 00000000 00:00 0 [anon]\n"
		                           "7ffff7fc1000-7ffff7fc3000 r-xp 00000000 00:00 0 [vdso]\n"
		                           "7ffff7e00000-7ffff7e80000 r-xp 00001000 08:01 99999999 /nonexistent/lib\033[31m.so\n";
		FUZZ_CHECK(tmd_maps_from_text(0, text, sizeof(text) - 1, &maps) == 0);
	}
	fuzz_take(&in, &ev, sizeof(ev));
	ev.h.kind = TM_EV_CRASH;
	uint8_t flags = fuzz_u8(&in);
	const char *tn = (flags & 1) ? piece(&in, task, sizeof(task)) : NULL;
	const char *ty = (flags & 2) ? piece(&in, type, sizeof(type)) : NULL;

	struct tmd_crash_out out;
	int rc = tmd_crash_build(&ev, (flags & 4) ? NULL : maps,
	                         TMD_CRASH_OPTS(.task_name = tn, .task_type = (int8_t)(flags >> 3), .type_name = ty,
	                                        .no_registry = true),
	                         &out);
	FUZZ_CHECK(rc == 0 || rc == -ENOMEM);
	if (rc == 0) {
		FUZZ_CHECK(out.line != NULL);
		size_t n = strlen(out.line);
		check_json_bytes(out.line, n);
		json_error_t jerr;
		json_t *j = json_loadb(out.line, n, 0, &jerr);
		FUZZ_CHECK(j != NULL);   /* valid JSON, valid UTF-8 */
		FUZZ_CHECK(json_is_object(j) && json_is_array(json_object_get(j, "frames")));
		json_decref(j);
		int k = tmd_crash_format_line(&out, line, sizeof(line));
		FUZZ_CHECK(k >= 0);
		FUZZ_CHECK(fuzz_printable(line, strnlen(line, sizeof(line))));   /* for a terminal: ASCII only */
	}
	tmd_crash_out_release(&out);
	return 0;
}
