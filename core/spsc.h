/* Bounded single-producer single-consumer ring of pointers (Lamport ring
 * with cached indices), for handing objects from exactly one thread to
 * exactly one other: a worker to its helper, a benchmark's producer to its
 * consumer. Not for several producers (use core/mpsc.h) and not for
 * blocking waits: push fails when full and pop fails when empty, and the
 * caller decides whether to spin, sleep or drop.
 *
 * Layout: what the producer writes, what the consumer writes and what
 * nobody writes after spsc_new() sit on separate cache lines.
 * Header-only; spsc_new/spsc_free allocate (control plane). */
#ifndef ONIONRING_CORE_SPSC_H
#define ONIONRING_CORE_SPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/compiler.h"

struct spsc {
	/* Written by the producer only. */
	CACHE_ALIGNED _Atomic uint32_t head;
	uint32_t tail_cache; /* last tail the producer saw */
	/* Written by the consumer only. */
	CACHE_ALIGNED _Atomic uint32_t tail;
	uint32_t head_cache; /* last head the consumer saw */
	/* Read-only after spsc_new. */
	CACHE_ALIGNED uint32_t mask;
	void **slots;
};

/* Return an empty ring with room for cap pointers (cap: a power of two,
 * >= 2), owned by the caller; NULL on bad cap or OOM. Any thread. */
/* noinline: control plane, and it keeps gcc 12 from inferring a NULL q
 * at inlined call sites and warning (-Wstringop-overflow) on atomics. */
static __attribute__((noinline, unused)) struct spsc *spsc_new(uint32_t cap)
{
	struct spsc *q;

	if (cap < 2 || (cap & (cap - 1)) != 0)
		return NULL;
	q = aligned_alloc(CACHE_LINE, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->slots = calloc(cap, sizeof(void *));
	if (q->slots == NULL) {
		free(q);
		return NULL;
	}
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	q->tail_cache = 0;
	q->head_cache = 0;
	q->mask = cap - 1;
	return q;
}

/* Free q (NULL-safe); items still inside are not touched. No thread may
 * use q any more. */
static inline void spsc_free(struct spsc *q)
{
	if (q == NULL)
		return;
	free(q->slots);
	free(q);
}

/* Append item (borrowed pointer, handed over to the consumer); return false
 * when the ring is full. Producer thread only. */
static inline bool spsc_push(struct spsc *q, void *item)
{
	uint32_t h = atomic_load_explicit(&q->head, memory_order_relaxed);

	if (unlikely(h - q->tail_cache > q->mask)) {
		/* Pairs with the release store of tail in spsc_pop: the slot the
		 * consumer gave back is no longer read by it. */
		q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
		if (h - q->tail_cache > q->mask)
			return false;
	}
	q->slots[h & q->mask] = item;
	/* Pairs with the acquire load of head in spsc_pop: the slot (and what
	 * the item points to) is written before the consumer sees it. */
	atomic_store_explicit(&q->head, h + 1, memory_order_release);
	return true;
}

/* Take the oldest item into *item; return false when the ring is empty.
 * Consumer thread only. */
static inline bool spsc_pop(struct spsc *q, void **item)
{
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);

	if (unlikely(t == q->head_cache)) {
		/* Pairs with the release store of head in spsc_push. */
		q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
		if (t == q->head_cache)
			return false;
	}
	*item = q->slots[t & q->mask];
	/* Pairs with the acquire load of tail in spsc_push: we are done
	 * reading the slot before the producer may overwrite it. */
	atomic_store_explicit(&q->tail, t + 1, memory_order_release);
	return true;
}

#endif
