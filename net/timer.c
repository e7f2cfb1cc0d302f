/* Per-shard timer heap (see timer.h). */
#include "net/timer.h"

#include <errno.h>
#include <stdlib.h>

void timer_init(struct timer *t, timer_fn fn, void *arg)
{
	t->deadline_ns = 0;
	t->heap_idx = TIMER_NOT_ARMED;
	t->fn = fn;
	t->arg = arg;
}

void timer_heap_init(struct timer_heap *h)
{
	h->items = NULL;
	h->len = 0;
	h->cap = 0;
}

void timer_heap_free(struct timer_heap *h)
{
	for (uint32_t i = 0; i < h->len; i++)
		h->items[i]->heap_idx = TIMER_NOT_ARMED;
	free(h->items);
	timer_heap_init(h);
}

static void heap_set(struct timer_heap *h, uint32_t i, struct timer *t)
{
	h->items[i] = t;
	t->heap_idx = i;
}

static void sift_up(struct timer_heap *h, uint32_t i)
{
	struct timer *t = h->items[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (h->items[parent]->deadline_ns <= t->deadline_ns)
			break;
		heap_set(h, i, h->items[parent]);
		i = parent;
	}
	heap_set(h, i, t);
}

static void sift_down(struct timer_heap *h, uint32_t i)
{
	struct timer *t = h->items[i];

	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		uint64_t best = t->deadline_ns;

		if (l < h->len && h->items[l]->deadline_ns < best) {
			m = l;
			best = h->items[l]->deadline_ns;
		}
		if (r < h->len && h->items[r]->deadline_ns < best)
			m = r;
		if (m == i)
			break;
		heap_set(h, i, h->items[m]);
		i = m;
	}
	heap_set(h, i, t);
}

static void heap_remove_at(struct timer_heap *h, uint32_t i)
{
	struct timer *last = h->items[--h->len];

	h->items[i]->heap_idx = TIMER_NOT_ARMED;
	if (i == h->len)
		return;
	heap_set(h, i, last);
	sift_up(h, i);
	sift_down(h, last->heap_idx);
}

int timer_arm(struct timer_heap *h, struct timer *t, uint64_t deadline_ns)
{
	if (timer_is_armed(t))
		heap_remove_at(h, t->heap_idx);
	if (h->len == h->cap) {
		uint32_t ncap = h->cap ? h->cap * 2 : 64;
		struct timer **n = realloc(h->items, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		h->items = n;
		h->cap = ncap;
	}
	t->deadline_ns = deadline_ns;
	heap_set(h, h->len++, t);
	sift_up(h, t->heap_idx);
	return 0;
}

void timer_cancel(struct timer_heap *h, struct timer *t)
{
	if (timer_is_armed(t))
		heap_remove_at(h, t->heap_idx);
}

uint64_t timer_heap_next(const struct timer_heap *h)
{
	return h->len ? h->items[0]->deadline_ns : UINT64_MAX;
}

unsigned timer_heap_run(struct timer_heap *h, uint64_t now_ns)
{
	unsigned fired = 0;

	while (h->len && h->items[0]->deadline_ns <= now_ns) {
		struct timer *t = h->items[0];
		heap_remove_at(h, 0);
		fired++;
		t->fn(t, t->arg);
	}
	return fired;
}
