/* Bounded multi-producer multi-consumer queue of task descriptors: the hand-off
 * from tm_spawn to an idle task thread, without a lock. Each cell carries a
 * sequence number that tells producers and consumers whose turn it is. */
#ifndef TM_QUEUE_H
#define TM_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tm__desc;

struct tm__queue {
	struct tm__qcell *cells;
	size_t mask;
	_Alignas(64) _Atomic size_t head;   /* next cell to take */
	_Alignas(64) _Atomic size_t tail;   /* next cell to fill */
};

/* capacity is rounded up to a power of two. 0 or -ENOMEM. */
int  tm__queue_init(struct tm__queue *q, size_t capacity);
void tm__queue_free(struct tm__queue *q);
bool tm__queue_push(struct tm__queue *q, const struct tm__desc *d);   /* false when full */
bool tm__queue_pop(struct tm__queue *q, struct tm__desc *out);        /* false when empty */

#endif
