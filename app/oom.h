/* MaxMemInQueues: which circuits to close when queued data uses too much
 * memory (tor's circuits_handle_oom: the circuits whose queued data is
 * oldest go first, until the total is under about 90% of the limit).
 *
 * Pure and allocation-free, so the choice is unit-tested on its own
 * (test/unit/test_oom.c). Who counts and who closes: the shards count what
 * they hold (app/circmgr.c: relaxed per-shard gauges of the bytes and the
 * age of the oldest), the coordinator sums them and, over the limit, runs
 * oom_select over the shards (oldest queue first) to ask those that hold
 * the oldest data to shed a part of the excess each (app/gateway.c); each
 * such shard runs oom_select over its own circuits.
 * Any thread. */
#ifndef ONIONRING_APP_OOM_H
#define ONIONRING_APP_OOM_H

#include <stddef.h>
#include <stdint.h>

/* tor frees down to 90% of MaxMemInQueues (relay.c, circuits_handle_oom:
 * "mem_target = mem_limit * 0.9" via MEM_SHRINK_PERCENT 10). */
#define OOM_TARGET_PERCENT 90u

/* One circuit's queued data: bytes, and when the oldest of it was queued
 * (any monotonic clock; 0: nothing queued). id is the caller's. */
struct oom_item {
	uint64_t bytes;
	uint64_t oldest_ns;
	uint64_t id;
};

/* The bytes to free when total bytes are queued under limit: down to
 * 90% of limit, or 0 when total <= limit. */
uint64_t oom_excess(uint64_t total, uint64_t limit);

/* Sort items[0..n) so that the circuits with the oldest queued data come
 * first (items with nothing queued, 0 bytes or no age, last; ties by more bytes first) and
 * return how many of the first ones to close so that their bytes reach
 * to_free (all with data when they cannot). 0 when to_free is 0. */
size_t oom_select(struct oom_item *items, size_t n, uint64_t to_free);

#endif
