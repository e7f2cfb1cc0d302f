/* The reserved-circuit key table of one shard (issue 6, rebalancing by
 * isolation key): which isolation keys the shard holds an open reserved
 * circuit for (app/circpool.h step 2), readable from any thread without a
 * lock, and a claim flag per entry that another shard's hand-off takes so
 * that two sessions do not both count on the same reserved circuit.
 *
 * For: a fixed table of KEYSLOTS_N slots, each a 64-bit hash of a key's
 * digest (0: empty) and a claim flag. The owner shard publishes its set;
 * any thread looks a hash up and claims a slot with a CAS. A false match
 * (two keys with one hash) is harmless: the session then waits on the
 * target as any stream would. The table is a hint, not a lock.
 * Not for: deciding what to reserve (app/circpool.c) or moving sessions
 * (app/socks.c). Pure: no I/O, no allocation. */
#ifndef ONIONRING_APP_KEYSLOTS_H
#define ONIONRING_APP_KEYSLOTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/stream.h"

/* Twice the keys the pool remembers (CIRCPOOL_KEYS_MAX): room for the
 * published set plus slots whose circuit went while a claim was out. */
#define KEYSLOTS_N 32

struct keyslot {
	_Atomic uint64_t hash;    /* owner writes; 0: empty */
	_Atomic uint32_t claimed; /* 1: a hand-off on its way holds it (any thread) */
};

struct keyslots {
	struct keyslot slot[KEYSLOTS_N];
};

/* The table's hash of k (borrowed): never 0. Any thread. */
uint64_t keyslots_hash(const struct isolation_key *k);
/* Empty every slot (before other threads see t). */
void keyslots_init(struct keyslots *t);
/* Owner shard: make the published set hashes[0..n) (a multiset; entries
 * beyond the free slots are left out). A slot whose hash stays keeps its
 * claim; a claimed slot whose hash went stays claimed (and unused) until
 * its claim is released. */
void keyslots_publish(struct keyslots *t, const uint64_t *hashes, size_t n);
/* Any thread: whether t has an unclaimed slot for hash. */
bool keyslots_has_unclaimed(const struct keyslots *t, uint64_t hash);
/* Any thread: claim an unclaimed slot holding hash; return its index, or
 * -1 when there is none. Give it back with keyslots_release. */
int keyslots_claim(struct keyslots *t, uint64_t hash);
/* Any thread: release the claim on slot (from keyslots_claim). Out of
 * range: ignored. */
void keyslots_release(struct keyslots *t, int slot);

#endif
