/* hakmem_batch_queue.h: a bounded lock-free queue of block batches, for ownership policies
 * that keep central lists (Option F: ownership_central.c, and hybrid's F classes). C11 only
 * (it uses <stdatomic.h>); plugins include it beside hakmem_policy.h.
 *
 * Multi-producer, multi-consumer, HAK_BATCH_QUEUE_SLOTS cells, each with a sequence number
 * (D. Vyukov's bounded MPMC queue): the cell of ticket pos is free for the put that draws pos
 * when its number is pos, and full for the take that draws pos when it is pos + 1. A put on a
 * full queue and a take on an empty one fail at once. The two ticket counters sit on lines of
 * their own. */
#ifndef HAKMEM_BATCH_QUEUE_H
#define HAKMEM_BATCH_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HAK_BATCH_QUEUE_SLOTS 64 /* a power of two */

struct hak_batch_queue {
	_Atomic size_t xenq; /* next put ticket */
	char pad0[64 - sizeof(size_t)];
	_Atomic size_t xdeq; /* next take ticket */
	char pad1[64 - sizeof(size_t)];
	struct hak_batch_cell {
		_Atomic size_t xseq; /* see above */
		void *batch;         /* the head of a chain */
	} cells[HAK_BATCH_QUEUE_SLOTS];
};

/* Empty. Not concurrent with anything. */
static inline void hak_batch_queue_reset(struct hak_batch_queue *q)
{
	for (size_t i = 0; i < HAK_BATCH_QUEUE_SLOTS; i++)
		atomic_store_explicit(&q->cells[i].xseq, i, memory_order_relaxed);
	atomic_store_explicit(&q->xenq, 0, memory_order_relaxed);
	atomic_store_explicit(&q->xdeq, 0, memory_order_relaxed);
}

/* Claim the next cell at *xpos (the put or the take ticket) once its number says it is ready:
 * pos for a put (ahead 0), pos + 1 for a take (ahead 1). NULL when the queue is full (put) or
 * empty (take); otherwise the cell, and its ticket in *out. */
static inline struct hak_batch_cell *hak__batch_queue_claim(struct hak_batch_queue *q, _Atomic size_t *xpos,
							  size_t ahead, size_t *out)
{
	size_t pos = atomic_load_explicit(xpos, memory_order_relaxed);
	for (;;) {
		struct hak_batch_cell *cell = &q->cells[pos & (HAK_BATCH_QUEUE_SLOTS - 1)];
		size_t seq = atomic_load_explicit(&cell->xseq, memory_order_acquire);
		intptr_t dif = (intptr_t)seq - (intptr_t)(pos + ahead);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(xpos, &pos, pos + 1, memory_order_relaxed,
								  memory_order_relaxed)) {
				*out = pos;
				return cell;
			}
		} else if (dif < 0) {
			return NULL;
		} else {
			pos = atomic_load_explicit(xpos, memory_order_relaxed);
		}
	}
}

/* false when the queue is full. */
static inline bool hak_batch_queue_put(struct hak_batch_queue *q, void *batch)
{
	size_t pos;
	struct hak_batch_cell *cell = hak__batch_queue_claim(q, &q->xenq, 0, &pos);
	if (!cell)
		return false;
	cell->batch = batch;
	atomic_store_explicit(&cell->xseq, pos + 1, memory_order_release);
	return true;
}

/* NULL when the queue is empty. */
static inline void *hak_batch_queue_take(struct hak_batch_queue *q)
{
	size_t pos;
	struct hak_batch_cell *cell = hak__batch_queue_claim(q, &q->xdeq, 1, &pos);
	if (!cell)
		return NULL;
	void *batch = cell->batch;
	atomic_store_explicit(&cell->xseq, pos + HAK_BATCH_QUEUE_SLOTS, memory_order_release);
	return batch;
}

/* A fork child's (only the forking thread lives on): a put or a take another thread had half
 * done would block its cell for ever, so the queue is rebuilt around every published batch, in
 * order. (The chain in a cell whose put was half done is lost to the child: a leak, not a
 * fault.) */
static inline void hak_batch_queue_fork_child(struct hak_batch_queue *q)
{
	void *kept[HAK_BATCH_QUEUE_SLOTS];
	unsigned n = 0;
	size_t deq = atomic_load(&q->xdeq), enq = atomic_load(&q->xenq);
	for (size_t pos = deq; pos != enq && n < HAK_BATCH_QUEUE_SLOTS; pos++) {
		struct hak_batch_cell *cell = &q->cells[pos & (HAK_BATCH_QUEUE_SLOTS - 1)];
		if (atomic_load(&cell->xseq) == pos + 1)
			kept[n++] = cell->batch;
	}
	hak_batch_queue_reset(q);
	for (unsigned k = 0; k < n; k++)
		hak_batch_queue_put(q, kept[k]);
}

#endif /* HAKMEM_BATCH_QUEUE_H */
