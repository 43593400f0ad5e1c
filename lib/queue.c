#include <errno.h>
#include <stdlib.h>
#include "core.h"
#include "queue.h"

struct tm__qcell {
	_Atomic size_t seq;
	struct tm__desc d;
};

int tm__queue_init(struct tm__queue *q, size_t capacity)
{
	size_t n = 2;
	while (n < capacity)
		n <<= 1;
	q->cells = calloc(n, sizeof(*q->cells));
	if (!q->cells)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		atomic_init(&q->cells[i].seq, i);
	q->mask = n - 1;
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	return 0;
}

void tm__queue_free(struct tm__queue *q)
{
	free(q->cells);
	q->cells = NULL;
}

/* A cell at position pos is free for the producer when seq == pos, and holds
 * an item for the consumer when seq == pos + 1. */
bool tm__queue_push(struct tm__queue *q, const struct tm__desc *d)
{
	size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
	for (;;) {
		struct tm__qcell *c = &q->cells[pos & q->mask];
		size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		intptr_t dif = (intptr_t)seq - (intptr_t)pos;
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
			                                          memory_order_relaxed, memory_order_relaxed)) {
				c->d = *d;
				atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
				return true;
			}
		} else if (dif < 0) {
			return false;
		} else {
			pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
		}
	}
}

bool tm__queue_pop(struct tm__queue *q, struct tm__desc *out)
{
	size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
	for (;;) {
		struct tm__qcell *c = &q->cells[pos & q->mask];
		size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
			                                          memory_order_relaxed, memory_order_relaxed)) {
				*out = c->d;
				atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
				return true;
			}
		} else if (dif < 0) {
			return false;
		} else {
			pos = atomic_load_explicit(&q->head, memory_order_relaxed);
		}
	}
}
