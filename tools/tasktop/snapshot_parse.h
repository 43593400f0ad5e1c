/* The collector's snapshot document (user/snapshot.h, version 1) into a
 * tasktop model. The document is treated as untrusted: a key of the wrong
 * type or out of range is counted in model->bad_fields and read as zero or
 * empty, a missing key as zero; arrays beyond the model's bounds are cut and
 * counted in model->dropped_*. Only a document that is not a JSON object, or
 * is of another major version, is refused.
 */
#ifndef TASKTOP_SNAPSHOT_PARSE_H
#define TASKTOP_SNAPSHOT_PARSE_H

#include <stddef.h>

#include "model.h"

struct json_t;   /* jansson's */

/* Fills m (a fresh model from tt_model_new) from the document. 0, or
 * -EBADMSG (with one sentence in err) or -ENOMEM. On failure m may hold part
 * of the data: free it. */
int tt_snapshot_parse(struct tt_model *m, const char *json, size_t len, char *err, size_t errlen);
/* The same, taking ownership of buf (malloc'ed, len + 1 bytes: it is
 * unescaped in place and freed). */
int tt_snapshot_parse_owned(struct tt_model *m, char *buf, size_t len, char *err, size_t errlen);
/* The same from a parsed document (a record of a record directory). */
int tt_snapshot_from_json(struct tt_model *m, const struct json_t *root, char *err, size_t errlen);

#endif
