/* Bounded multi-producer single-consumer queue of pointers, for
 * cross-shard messages: any thread posts, the owning worker drains.
 *
 * Design (a bounded ring with a sequence number per slot, after Dmitry
 * Vyukov's bounded queue, specialised to one consumer): producers claim a
 * position with a CAS on `tail`, write the item, then publish it by storing
 * the slot's sequence; the consumer reads slots in order and hands each one
 * back by advancing its sequence by the capacity. Producers are lock-free
 * (a failed CAS means another producer progressed); the consumer sees an
 * item only once its producer has published it, so a producer preempted
 * between claim and publish delays the consumer (never corrupts order).
 * FIFO per producer; a total order across producers by claim order.
 *
 * Not for blocking waits (push fails when full; pop fails when empty: the
 * caller pairs the queue with an eventfd / MSG_RING wakeup) and not for
 * several consumers. Header-only; mpsc_new/mpsc_free allocate (control
 * plane). */
#ifndef ONIONRING_CORE_MPSC_H
#define ONIONRING_CORE_MPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/compiler.h"

struct mpsc_slot {
	_Atomic uint64_t seq; /* == pos: free for pos; == pos + 1: holds pos */
	void *item;
};

struct mpsc {
	/* Written by every producer (CAS). */
	CACHE_ALIGNED _Atomic uint64_t tail;
	/* Written by the consumer only. */
	CACHE_ALIGNED uint64_t head;
	/* Read-only after mpsc_new. */
	CACHE_ALIGNED uint64_t mask;
	struct mpsc_slot *slots;
};

/* Return an empty queue with room for cap items (cap: a power of two,
 * >= 2), owned by the caller; NULL on bad cap or OOM. Any thread. */
/* noinline: control plane, and it keeps gcc 12 from inferring a NULL q
 * at inlined call sites and warning (-Wstringop-overflow) on atomics. */
static __attribute__((noinline, unused)) struct mpsc *mpsc_new(uint32_t cap)
{
	struct mpsc *q;

	if (cap < 2 || (cap & (cap - 1)) != 0)
		return NULL;
	q = aligned_alloc(CACHE_LINE, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->slots = aligned_alloc(CACHE_LINE, (size_t)cap * sizeof(*q->slots) < CACHE_LINE
		? CACHE_LINE : (size_t)cap * sizeof(*q->slots));
	if (q->slots == NULL) {
		free(q);
		return NULL;
	}
	for (uint32_t i = 0; i < cap; i++) {
		atomic_init(&q->slots[i].seq, i);
		q->slots[i].item = NULL;
	}
	atomic_init(&q->tail, 0);
	q->head = 0;
	q->mask = cap - 1;
	return q;
}

/* Free q (NULL-safe); items still queued are not touched. No thread may use
 * q any more. */
static inline void mpsc_free(struct mpsc *q)
{
	if (q == NULL)
		return;
	free(q->slots);
	free(q);
}

/* Append item (a pointer handed over to the consumer); return false when
 * the queue is full. Any thread. */
static inline bool mpsc_push(struct mpsc *q, void *item)
{
	uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
	struct mpsc_slot *s;

	for (;;) {
		s = &q->slots[pos & q->mask];
		/* Pairs with the release store of seq in mpsc_pop: the consumer
		 * finished reading this slot's previous item. */
		uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		int64_t diff = (int64_t)(seq - pos);

		if (diff == 0) {
			/* Claim pos. Relaxed: only the slot's seq publishes data;
			 * the CAS just orders producers among themselves. On
			 * failure pos is reloaded with the winner's tail. */
			if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
					memory_order_relaxed, memory_order_relaxed))
				break;
		} else if (diff < 0) {
			return false; /* the slot still holds the item from one lap ago */
		} else {
			/* Another producer claimed pos already: catch up. */
			pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
		}
	}
	s->item = item;
	/* Pairs with the acquire load of seq in mpsc_pop: item is written
	 * before the consumer can see the slot as full. */
	atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
	return true;
}

/* Take the oldest published item into *item; return false when there is
 * none (empty, or the next producer has claimed but not yet published).
 * Consumer thread only. */
static inline bool mpsc_pop(struct mpsc *q, void **item)
{
	uint64_t pos = q->head;
	struct mpsc_slot *s = &q->slots[pos & q->mask];
	/* Pairs with the release store of seq in mpsc_push. */
	uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);

	if (seq != pos + 1)
		return false;
	*item = s->item;
	/* Pairs with the acquire load of seq in mpsc_push: the slot is free
	 * for the producer that claims pos + capacity. */
	atomic_store_explicit(&s->seq, pos + q->mask + 1, memory_order_release);
	q->head = pos + 1;
	return true;
}

#endif
