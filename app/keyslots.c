/* The reserved-circuit key table (app/keyslots.h): publish on the owner,
 * look up and claim from any thread. Not for: policy (circpool.c). */
#include "app/keyslots.h"

#include <string.h>

uint64_t keyslots_hash(const struct isolation_key *k)
{
	uint64_t h;

	/* The digest is SHA3-256 output (socks.c isolation_key): its first
	 * 8 bytes are as good a hash as any. */
	memcpy(&h, k->digest, sizeof(h));
	return h ? h : 1;
}

void keyslots_init(struct keyslots *t)
{
	for (size_t i = 0; i < KEYSLOTS_N; i++) {
		atomic_init(&t->slot[i].hash, 0);
		atomic_init(&t->slot[i].claimed, 0);
	}
}

/* Owner shard: a free slot for hash (not kept, not claimed). */
static bool place(struct keyslots *t, bool kept[KEYSLOTS_N], uint64_t hash)
{
	for (size_t i = 0; i < KEYSLOTS_N; i++) {
		/* Acquire: pairs with keyslots_release's release store; a slot
		 * still claimed for a key that went is not reused, so a late
		 * release cannot free a new key's claim. */
		if (kept[i] || atomic_load_explicit(&t->slot[i].claimed, memory_order_acquire))
			continue;
		/* Release: pairs with keyslots_claim's acquire loads. */
		atomic_store_explicit(&t->slot[i].hash, hash, memory_order_release);
		kept[i] = true;
		return true;
	}
	return false;
}

void keyslots_publish(struct keyslots *t, const uint64_t *hashes, size_t n)
{
	bool kept[KEYSLOTS_N] = { false };
	bool matched[KEYSLOTS_N] = { false };

	if (n > KEYSLOTS_N)
		n = KEYSLOTS_N; /* the rest are not published: hand-offs miss them */
	/* A wanted hash a slot already holds stays there with its claim. */
	for (size_t j = 0; j < n; j++) {
		for (size_t i = 0; i < KEYSLOTS_N && !matched[j]; i++) {
			/* Relaxed: only the owner writes hash. */
			if (!kept[i] && atomic_load_explicit(&t->slot[i].hash, memory_order_relaxed) == hashes[j])
				kept[i] = matched[j] = true;
		}
	}
	for (size_t i = 0; i < KEYSLOTS_N; i++)
		if (!kept[i]) /* Release: pairs with keyslots_claim's acquire. */
			atomic_store_explicit(&t->slot[i].hash, 0, memory_order_release);
	for (size_t j = 0; j < n; j++)
		if (!matched[j] && !place(t, kept, hashes[j]))
			break; /* every free slot is claimed: left out */
}

bool keyslots_has_unclaimed(const struct keyslots *t, uint64_t hash)
{
	for (size_t i = 0; i < KEYSLOTS_N; i++)
		/* Relaxed: a hint (pairs with keyslots_publish's stores). */
		if (atomic_load_explicit(&t->slot[i].hash, memory_order_relaxed) == hash &&
		    !atomic_load_explicit(&t->slot[i].claimed, memory_order_relaxed))
			return true;
	return false;
}

int keyslots_claim(struct keyslots *t, uint64_t hash)
{
	for (size_t i = 0; i < KEYSLOTS_N; i++) {
		struct keyslot *s = &t->slot[i];
		uint32_t zero = 0;

		/* Acquire: pairs with keyslots_publish's release store. */
		if (atomic_load_explicit(&s->hash, memory_order_acquire) != hash)
			continue;
		/* Acq_rel CAS: pairs with keyslots_release and other claimers. */
		if (!atomic_compare_exchange_strong_explicit(&s->claimed, &zero, 1, memory_order_acq_rel,
							     memory_order_relaxed))
			continue;
		/* The owner may have given the slot to another key between the
		 * load and the CAS: look again now that it cannot be reused. */
		if (atomic_load_explicit(&s->hash, memory_order_acquire) == hash)
			return (int)i;
		atomic_store_explicit(&s->claimed, 0, memory_order_release);
	}
	return -1;
}

void keyslots_release(struct keyslots *t, int slot)
{
	if (slot < 0 || slot >= KEYSLOTS_N)
		return;
	/* Release: pairs with keyslots_claim's CAS and publish's acquire. */
	atomic_store_explicit(&t->slot[slot].claimed, 0, memory_order_release);
}
