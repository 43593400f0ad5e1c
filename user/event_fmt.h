/* One line of text per kernel event, for taskmond --verbose and the tests. */
#ifndef TMD_EVENT_FMT_H
#define TMD_EVENT_FMT_H

#include <stddef.h>

/* The size a record of that kind must have, 0 for an unknown kind. */
size_t tmd_event_size(unsigned kind);
/* Writes the line (no newline) into buf; returns the event's kind, or
 * -EBADMSG for a record that is too short or of an unknown kind. */
int tmd_event_format(const void *data, size_t len, char *buf, size_t cap);

#endif
