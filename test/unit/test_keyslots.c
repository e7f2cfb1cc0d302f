/* Tests for app/keyslots: the table of isolation keys a shard holds
 * reserved circuits for publishes exactly the owner's set, a slot is
 * claimed once until released, a claim survives republishing while its key
 * stays, a claimed slot is not reused for another key, and concurrent
 * claimers never both win one slot. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "app/keyslots.h"

static uint64_t hash_of(uint8_t tag)
{
	struct isolation_key k;

	memset(&k, tag, sizeof(k));
	return keyslots_hash(&k);
}

static void test_keyslots_hash_is_never_zero(void **state)
{
	struct isolation_key k;

	(void)state;
	memset(&k, 0, sizeof(k));
	assert_int_not_equal(keyslots_hash(&k), 0);
	assert_int_not_equal(hash_of(1), hash_of(2));
}

static void test_keyslots_publishes_exactly_the_owner_set(void **state)
{
	struct keyslots t;
	uint64_t set[2] = { hash_of(1), hash_of(2) };

	(void)state;
	keyslots_init(&t);
	assert_false(keyslots_has_unclaimed(&t, hash_of(1)));
	assert_int_equal(keyslots_claim(&t, hash_of(1)), -1);
	keyslots_publish(&t, set, 2);
	assert_true(keyslots_has_unclaimed(&t, hash_of(1)));
	assert_true(keyslots_has_unclaimed(&t, hash_of(2)));
	assert_false(keyslots_has_unclaimed(&t, hash_of(3)));
	set[0] = hash_of(3);
	keyslots_publish(&t, set, 2);
	assert_false(keyslots_has_unclaimed(&t, hash_of(1)));
	assert_true(keyslots_has_unclaimed(&t, hash_of(3)));
	keyslots_publish(&t, NULL, 0);
	assert_false(keyslots_has_unclaimed(&t, hash_of(2)));
	assert_false(keyslots_has_unclaimed(&t, hash_of(3)));
}

static void test_keyslots_claims_a_slot_once_until_released(void **state)
{
	struct keyslots t;
	uint64_t set[1] = { hash_of(7) };
	int slot;

	(void)state;
	keyslots_init(&t);
	keyslots_publish(&t, set, 1);
	slot = keyslots_claim(&t, hash_of(7));
	assert_true(slot >= 0);
	assert_false(keyslots_has_unclaimed(&t, hash_of(7)));
	assert_int_equal(keyslots_claim(&t, hash_of(7)), -1);
	keyslots_release(&t, slot);
	assert_true(keyslots_has_unclaimed(&t, hash_of(7)));
	assert_int_equal(keyslots_claim(&t, hash_of(7)), slot);
	keyslots_release(&t, -1); /* out of range: ignored */
	keyslots_release(&t, KEYSLOTS_N);
	assert_false(keyslots_has_unclaimed(&t, hash_of(7)));
}

static void test_keyslots_two_circuits_of_one_key_take_two_claims(void **state)
{
	struct keyslots t;
	uint64_t set[2] = { hash_of(4), hash_of(4) };
	int a, b;

	(void)state;
	keyslots_init(&t);
	keyslots_publish(&t, set, 2);
	a = keyslots_claim(&t, hash_of(4));
	b = keyslots_claim(&t, hash_of(4));
	assert_true(a >= 0 && b >= 0 && a != b);
	assert_int_equal(keyslots_claim(&t, hash_of(4)), -1);
}

static void test_keyslots_claim_survives_republish_while_key_stays(void **state)
{
	struct keyslots t;
	uint64_t set[2] = { hash_of(1), hash_of(2) };
	int slot;

	(void)state;
	keyslots_init(&t);
	keyslots_publish(&t, set, 2);
	slot = keyslots_claim(&t, hash_of(2));
	assert_true(slot >= 0);
	set[0] = hash_of(5); /* key 1 went, key 2 stays claimed */
	keyslots_publish(&t, set, 2);
	assert_false(keyslots_has_unclaimed(&t, hash_of(2)));
	assert_int_equal(keyslots_claim(&t, hash_of(2)), -1);
	keyslots_release(&t, slot);
	assert_int_equal(keyslots_claim(&t, hash_of(2)), slot);
}

static void test_keyslots_claimed_slot_of_a_gone_key_is_not_reused(void **state)
{
	struct keyslots t;
	uint64_t set[KEYSLOTS_N];
	int slot, other;

	(void)state;
	keyslots_init(&t);
	set[0] = hash_of(1);
	keyslots_publish(&t, set, 1);
	slot = keyslots_claim(&t, hash_of(1));
	assert_true(slot >= 0);
	/* Key 1's circuit went; the table fills with other keys. */
	for (size_t i = 0; i < KEYSLOTS_N; i++)
		set[i] = hash_of((uint8_t)(100 + i));
	keyslots_publish(&t, set, KEYSLOTS_N);
	assert_int_equal(atomic_load(&t.slot[slot].hash), 0);
	/* The late release of key 1's claim frees no other key's slot. */
	other = keyslots_claim(&t, hash_of(100));
	assert_true(other >= 0 && other != slot);
	keyslots_release(&t, slot);
	assert_int_equal(keyslots_claim(&t, hash_of(100)), -1);
	/* KEYSLOTS_N - 1 slots were free: the last key was left out. */
	assert_false(keyslots_has_unclaimed(&t, hash_of((uint8_t)(100 + KEYSLOTS_N - 1))));
	keyslots_publish(&t, set, KEYSLOTS_N);
	assert_true(keyslots_has_unclaimed(&t, hash_of((uint8_t)(100 + KEYSLOTS_N - 1))));
}

/* Racing claimers: each round the owner publishes one reserved circuit
 * for key 9 and two threads try to claim it; exactly one wins. */
struct race {
	struct keyslots *t;
	pthread_barrier_t *go;
	int rounds;
	int wins;
};

static void *claimer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < r->rounds; i++) {
		pthread_barrier_wait(r->go);
		if (keyslots_claim(r->t, hash_of(9)) >= 0)
			r->wins++;
		pthread_barrier_wait(r->go);
		pthread_barrier_wait(r->go); /* main releases and republishes */
	}
	return NULL;
}

static void test_keyslots_racing_claimers_win_once(void **state)
{
	enum { ROUNDS = 2000 };
	struct keyslots t;
	pthread_barrier_t go;
	pthread_t th[2];
	struct race r[2];
	uint64_t set[1] = { hash_of(9) };

	(void)state;
	keyslots_init(&t);
	keyslots_publish(&t, set, 1);
	pthread_barrier_init(&go, NULL, 3);
	for (int i = 0; i < 2; i++) {
		r[i] = (struct race){ .t = &t, .go = &go, .rounds = ROUNDS };
		assert_int_equal(pthread_create(&th[i], NULL, claimer, &r[i]), 0);
	}
	for (int i = 0; i < ROUNDS; i++) {
		pthread_barrier_wait(&go);
		pthread_barrier_wait(&go);
		assert_false(keyslots_has_unclaimed(&t, hash_of(9)));
		for (int s = 0; s < KEYSLOTS_N; s++)
			keyslots_release(&t, s);
		keyslots_publish(&t, set, 1);
		pthread_barrier_wait(&go);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	assert_int_equal(r[0].wins + r[1].wins, ROUNDS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyslots_hash_is_never_zero),
		cmocka_unit_test(test_keyslots_publishes_exactly_the_owner_set),
		cmocka_unit_test(test_keyslots_claims_a_slot_once_until_released),
		cmocka_unit_test(test_keyslots_two_circuits_of_one_key_take_two_claims),
		cmocka_unit_test(test_keyslots_claim_survives_republish_while_key_stays),
		cmocka_unit_test(test_keyslots_claimed_slot_of_a_gone_key_is_not_reused),
		cmocka_unit_test(test_keyslots_racing_claimers_win_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
