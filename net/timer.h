/* Per-shard timers: an intrusive binary min-heap keyed by monotonic
 * deadline. Owners embed a struct timer in their objects (handshake
 * timeouts, idle channels, circuit builds). Owner shard only; not for
 * cross-thread use. */
#ifndef ONIONRING_NET_TIMER_H
#define ONIONRING_NET_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIMER_NOT_ARMED UINT32_MAX

struct timer;
typedef void (*timer_fn)(struct timer *t, void *arg);

struct timer {
	uint64_t deadline_ns;
	uint32_t heap_idx; /* TIMER_NOT_ARMED when not in the heap */
	timer_fn fn;
	void *arg;
};

struct timer_heap {
	struct timer **items;
	uint32_t len;
	uint32_t cap;
};

/* Prepare t with its callback; borrows arg. */
void timer_init(struct timer *t, timer_fn fn, void *arg);
static inline bool timer_is_armed(const struct timer *t) { return t->heap_idx != TIMER_NOT_ARMED; }

void timer_heap_init(struct timer_heap *h);
void timer_heap_free(struct timer_heap *h);
/* Arm (or re-arm) t to fire at deadline_ns (CLOCK_MONOTONIC). Return 0 or
 * -ENOMEM. */
int timer_arm(struct timer_heap *h, struct timer *t, uint64_t deadline_ns);
void timer_cancel(struct timer_heap *h, struct timer *t);
/* Earliest deadline, or UINT64_MAX when no timer is armed. */
uint64_t timer_heap_next(const struct timer_heap *h);
/* Fire every timer due at now_ns, earliest first; return how many fired.
 * A callback may arm or cancel any timer, itself included. */
unsigned timer_heap_run(struct timer_heap *h, uint64_t now_ns);

#endif
