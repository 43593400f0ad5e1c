/* tasktop's snapshot parser (tools/tasktop/snapshot_parse.c) on arbitrary
 * documents: the snapshot comes over a socket from a process tasktop does
 * not control. It must refuse with -EBADMSG and one sentence, or fill a
 * model whose arrays stay within their bounds; the copy and the free must
 * hold whatever was parsed. Both entry points are run: the text parser and
 * the one that takes ownership of a buffer and unescapes it in place. */
#include "fuzz.h"

#include "model.h"
#include "snapshot_parse.h"

static void check(int rc, struct tt_model *m, const char *err)
{
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM);
	if (rc == -EBADMSG)
		FUZZ_CHECK(err[0] != '\0' && strnlen(err, 256) < 256);
	if (rc == 0) {
		for (size_t i = 0; i < m->ntasks; i++) {
			const struct tt_task *t = &m->tasks[i];
			FUZZ_CHECK(!t->panic_message || strnlen(t->panic_message, TT_MESSAGE_CAP) < TT_MESSAGE_CAP);
			FUZZ_CHECK(t->nrestart_delays <= TT_RESTART_HIST_N);
		}
		struct tt_model *c = tt_model_copy(m);
		FUZZ_CHECK(c != NULL);
		tt_model_free(c);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct tt_model *m = tt_model_new(TT_SRC_LIVE);
	FUZZ_CHECK(m != NULL);
	err[0] = '\0';
	check(tt_snapshot_parse(m, (const char *)data, size, err, sizeof(err)), m, err);
	tt_model_free(m);

	char *buf = malloc(size + 1);
	FUZZ_CHECK(buf != NULL);
	memcpy(buf, data, size);
	buf[size] = '\0';
	m = tt_model_new(TT_SRC_REPLAY);
	FUZZ_CHECK(m != NULL);
	err[0] = '\0';
	check(tt_snapshot_parse_owned(m, buf, size, err, sizeof(err)), m, err);   /* buf is the parser's now */
	tt_model_free(m);
	return 0;
}
