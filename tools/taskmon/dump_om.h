/* taskmon dump --format openmetrics: OpenMetrics wants each metric family's
 * samples together, and within it each series' samples together in time
 * order, which is not the order records are read in. Samples are grouped in
 * memory (16 bytes each, at most DUMP_OM_MAX_SAMPLES) and printed at the end. */
#ifndef TM_DUMP_OM_H
#define TM_DUMP_OM_H

#include <stddef.h>
#include <stdio.h>

#include "dump_row.h"
#include "records.h"

#define DUMP_OM_MAX_SAMPLES (8u << 20)

struct dump_om;

/* The families: the selected fields that are numbers (not labels). NULL on ENOMEM. */
struct dump_om *dump_om_new(const int *sel, size_t nsel);
/* The row of record rec (its index in r): 0, or -ENOMEM past the limit. */
int  dump_om_add(struct dump_om *om, const struct dump_row *row, size_t rec);
/* Every family, then "# EOF". 0 or -EIO. */
int  dump_om_print(struct dump_om *om, const struct tm_records *r, FILE *out);
void dump_om_free(struct dump_om *om);

#endif
