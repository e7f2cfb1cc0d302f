/* proto/relay_crypto: tor1 layered relay crypto for the client
 * (tor-spec.txt 5.5, 6.1).
 *
 * The relays are simulated here with core/crypto.h directly, written from
 * the spec's relay-side rules (decrypt forward with Kf, recognize by
 * 'recognized' == 0 and the running digest; originate backward cells and
 * encrypt them with Kb at every hop towards the client): an independent
 * computation of what proto/ does on the client side. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/crypto.h"
#include "proto/relay_crypto.h"

#define HOPS 3
#define PL RELAY_PAYLOAD_LEN

struct sim_relay {
	struct crypto_aes_ctr fwd, back;
	struct crypto_sha1 fwd_digest, back_digest;
};

struct world {
	uint8_t material[HOPS][RELAY_KDF_LEN];
	struct sim_relay relay[HOPS];
	struct relay_crypto_circ circ;
};

static void world_init(struct world *w)
{
	static const uint8_t iv[16];

	relay_crypto_circ_init(&w->circ);
	for (int h = 0; h < HOPS; h++) {
		struct relay_hop_keys k;
		uint8_t *m = w->material[h];

		crypto_rand(m, RELAY_KDF_LEN);
		assert_int_equal(relay_keys_from_kdf(m, RELAY_KDF_LEN, &k), 0);
		assert_int_equal(relay_crypto_circ_add_hop(&w->circ, &k), h);
		/* Df = m[0..20), Db = m[20..40), Kf = m[40..56), Kb = m[56..72). */
		crypto_aes_ctr_init(&w->relay[h].fwd, m + 40, iv);
		crypto_aes_ctr_init(&w->relay[h].back, m + 56, iv);
		crypto_sha1_init(&w->relay[h].fwd_digest);
		crypto_sha1_update(&w->relay[h].fwd_digest, m, 20);
		crypto_sha1_init(&w->relay[h].back_digest);
		crypto_sha1_update(&w->relay[h].back_digest, m + 20, 20);
	}
}

/* A plaintext relay cell: random command/stream/data, recognized and
 * digest zero. */
static void make_cell(uint8_t p[PL])
{
	crypto_rand(p, PL);
	p[1] = p[2] = 0;
	memset(p + 5, 0, 4);
}

/* Relay-side recognition (6.1): on a match the digest keeps the cell and
 * the full running digest goes to tag. */
static bool sim_recognize(struct crypto_sha1 *d, const uint8_t p[PL], uint8_t tag[20])
{
	uint8_t copy[PL], dig[20];
	struct crypto_sha1 tmp = *d;

	if (p[1] || p[2])
		return false;
	memcpy(copy, p, PL);
	memset(copy + 5, 0, 4);
	crypto_sha1_update(&tmp, copy, PL);
	crypto_sha1_peek(&tmp, dig);
	if (memcmp(dig, p + 5, 4) != 0)
		return false;
	*d = tmp;
	memcpy(tag, dig, 20);
	return true;
}

/* The relays handle an outbound cell; return the hop that recognized it. */
static int sim_forward(struct world *w, uint8_t p[PL], uint8_t tag[20])
{
	for (int h = 0; h < HOPS; h++) {
		crypto_aes_ctr_xor(&w->relay[h].fwd, p, PL);
		if (sim_recognize(&w->relay[h].fwd_digest, p, tag))
			return h;
	}
	return -1;
}

/* Relay h originates p towards the client; tag gets its running digest. */
static void sim_backward(struct world *w, int h, uint8_t p[PL], uint8_t tag[20])
{
	crypto_sha1_update(&w->relay[h].back_digest, p, PL);
	crypto_sha1_peek(&w->relay[h].back_digest, tag);
	memcpy(p + 5, tag, 4);
	for (int i = h; i >= 0; i--)
		crypto_aes_ctr_xor(&w->relay[i].back, p, PL);
}

static void test_outbound_cells_are_recognized_by_the_target_hop_only(void **state)
{
	static uint8_t cells[40][PL], plain[40][PL], tags[40][20];
	uint8_t *ptr[40], *tagp[40], relay_tag[20];
	struct world w;

	(void)state;
	world_init(&w);
	for (int round = 0; round < 6; round++) {
		int target = round % HOPS;

		for (int i = 0; i < 40; i++) {
			make_cell(cells[i]);
			memcpy(plain[i], cells[i], PL);
			if (i % 2)
				memset(cells[i] + 5, 0xff, 4); /* stale digest field: overwritten */
			ptr[i] = cells[i];
			tagp[i] = (i % 3 == 0) ? tags[i] : NULL;
		}
		relay_crypto_encrypt_out(&w.circ, target, ptr, 40, tagp);
		for (int i = 0; i < 40; i++) {
			assert_int_equal(sim_forward(&w, cells[i], relay_tag), target);
			/* The relay sees our plaintext with the digest filled in. */
			assert_memory_equal(cells[i], plain[i], 5);
			assert_memory_equal(cells[i] + 9, plain[i] + 9, PL - 9);
			if (tagp[i])
				assert_memory_equal(tags[i], relay_tag, 20);
		}
	}
	relay_crypto_circ_clear(&w.circ);
}

static void test_inbound_cells_are_attributed_to_the_originating_hop(void **state)
{
	static uint8_t cells[64][PL], plain[64][PL], tags[64][20], want_tags[64][20];
	uint8_t *ptr[64], *tagp[64];
	int origin[64], hop_out[64];
	struct world w;

	(void)state;
	world_init(&w);
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 64; i++) {
			origin[i] = (int)crypto_rand_uint64(HOPS);
			make_cell(cells[i]);
			sim_backward(&w, origin[i], cells[i], want_tags[i]);
			memcpy(plain[i], cells[i], PL); /* overwritten below */
			ptr[i] = cells[i];
			tagp[i] = tags[i];
		}
		assert_int_equal(relay_crypto_decrypt_in(&w.circ, ptr, 64, hop_out, tagp), 0);
		for (int i = 0; i < 64; i++) {
			assert_int_equal(hop_out[i], origin[i]);
			assert_memory_equal(tags[i], want_tags[i], 20);
			assert_memory_equal(cells[i] + 5, want_tags[i], 4);
			assert_int_equal(cells[i][1] | cells[i][2], 0);
		}
	}
	relay_crypto_circ_clear(&w.circ);
}

static void test_inbound_corrupted_cell_is_recognized_by_no_hop(void **state)
{
	static uint8_t cells[5][PL];
	uint8_t *ptr[5], tag[20];
	int hop_out[5];
	struct world w;

	(void)state;
	world_init(&w);
	for (int i = 0; i < 5; i++) {
		make_cell(cells[i]);
		sim_backward(&w, HOPS - 1, cells[i], tag);
		ptr[i] = cells[i];
	}
	cells[4][200] ^= 0x10; /* one flipped data bit on the wire */
	assert_int_equal(relay_crypto_decrypt_in(&w.circ, ptr, 5, hop_out, NULL), 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(hop_out[i], HOPS - 1);
	assert_int_equal(hop_out[4], -1);
	relay_crypto_circ_clear(&w.circ);
}

/* A cell whose 'recognized' is zero at a hop but whose digest does not
 * match must leave that hop's running digest as it was (6.1). Relay 0
 * sends a cell and the wire flips a digest byte: hop 0 sees recognized ==
 * 0 and a wrong digest. Its digest must be unchanged, so the next cell
 * from relay 0 (whose running digest never saw the bad one either) is
 * still recognized. */
static void test_unmatched_digest_leaves_hop_digest_unchanged(void **state)
{
	static uint8_t cell[PL];
	uint8_t *ptr[1] = { cell }, tag[20], before[20], after[20];
	int hop_out[1];
	struct world w;
	struct crypto_sha1 relay0_digest;

	(void)state;
	world_init(&w);
	relay_crypto_hop_digest(&w.circ, 0, false, before);
	relay0_digest = w.relay[0].back_digest;
	make_cell(cell);
	sim_backward(&w, 0, cell, tag);
	w.relay[0].back_digest = relay0_digest; /* relay 0 "never sent" it */
	cell[5] ^= 0x01;
	relay_crypto_decrypt_in(&w.circ, ptr, 1, hop_out, NULL);
	assert_int_not_equal(hop_out[0], 0);
	relay_crypto_hop_digest(&w.circ, 0, false, after);
	assert_memory_equal(before, after, 20);

	make_cell(cell);
	sim_backward(&w, 0, cell, tag);
	assert_int_equal(relay_crypto_decrypt_in(&w.circ, ptr, 1, hop_out, NULL), 0);
	assert_int_equal(hop_out[0], 0);
	relay_crypto_circ_clear(&w.circ);
}

/* Run the same cell sequence through circuits with identical keys, once
 * one cell per call and once in batches of `batch`. */
static void check_batching_is_invisible(size_t batch)
{
	enum { N = 240 };
	static uint8_t a[N][PL], b[N][PL], ta[N][20], tb[N][20];
	static struct world w1, w2;
	uint8_t *pa[N], *pb[N], *qa[N], *qb[N];
	int ha[N], hb[N];

	world_init(&w1);
	w2 = w1;
	for (int dir = 0; dir < 2; dir++) {
		for (size_t i = 0; i < N; i++) {
			make_cell(a[i]);
			if (dir == 1)
				sim_backward(&w1, (int)(i % HOPS), a[i], ta[i]);
			memcpy(b[i], a[i], PL);
			pa[i] = a[i], pb[i] = b[i], qa[i] = ta[i], qb[i] = tb[i];
		}
		for (size_t i = 0; i < N; i++) {
			if (dir == 0)
				relay_crypto_encrypt_out(&w1.circ, 2, pa + i, 1, qa + i);
			else
				assert_int_equal(relay_crypto_decrypt_in(&w1.circ, pa + i, 1, ha + i, qa + i), 0);
		}
		for (size_t i = 0; i < N; i += batch) {
			size_t m = N - i < batch ? N - i : batch;

			if (dir == 0)
				relay_crypto_encrypt_out(&w2.circ, 2, pb + i, m, qb + i);
			else
				assert_int_equal(relay_crypto_decrypt_in(&w2.circ, pb + i, m, hb + i, qb + i), 0);
		}
		assert_memory_equal(a, b, sizeof(a));
		assert_memory_equal(ta, tb, sizeof(ta));
		if (dir == 1)
			assert_memory_equal(ha, hb, sizeof(ha));
	}
	relay_crypto_circ_clear(&w1.circ);
	relay_crypto_circ_clear(&w2.circ);
}

static void test_batches_of_1_7_32_200_match_one_by_one(void **state)
{
	(void)state;
	check_batching_is_invisible(1);
	check_batching_is_invisible(7);
	check_batching_is_invisible(32);
	check_batching_is_invisible(200);
}

/* Bad cells in a batch: cell 4 decrypts at hop 0 to 'recognized' zero but
 * a wrong digest (it must come back out of that layer untouched and go on
 * peeling), cell 9 is noise. Batched peeling must give the same payloads,
 * hops, tags and count as one cell per call. (Cells after a bad one are
 * garbage here too: the client's later layers consumed keystream for it,
 * and a real circuit is closed at once.) */
static void check_bad_cells_in_batches(size_t batch)
{
	enum { N = 16 };
	static uint8_t a[N][PL], b[N][PL], ta[N][20], tb[N][20];
	static struct world w1, w2;
	uint8_t *pa[N], *pb[N], *qa[N], *qb[N];
	int ha[N], hb[N];
	size_t bad_a = 0, bad_b = 0;

	world_init(&w1);
	w2 = w1;
	memset(ta, 0, sizeof(ta));
	memset(tb, 0, sizeof(tb));
	for (size_t i = 0; i < N; i++) {
		make_cell(a[i]);
		if (i == 4) {
			struct crypto_sha1 saved = w1.relay[0].back_digest;

			sim_backward(&w1, 0, a[i], ta[i]);
			w1.relay[0].back_digest = saved; /* relay 0 "never sent" it */
			a[i][5] ^= 0x01;
			memset(ta[i], 0, 20);
		} else if (i == 9) {
			crypto_rand(a[i], PL);
		} else {
			sim_backward(&w1, (int)(i % HOPS), a[i], ta[i]);
			memset(ta[i], 0, 20);
		}
		memcpy(b[i], a[i], PL);
		pa[i] = a[i], pb[i] = b[i], qa[i] = ta[i], qb[i] = tb[i];
	}
	for (size_t i = 0; i < N; i++)
		bad_a += relay_crypto_decrypt_in(&w1.circ, pa + i, 1, ha + i, qa + i);
	for (size_t i = 0; i < N; i += batch) {
		size_t m = N - i < batch ? N - i : batch;

		bad_b += relay_crypto_decrypt_in(&w2.circ, pb + i, m, hb + i, qb + i);
	}
	assert_true(bad_a >= 1); /* cell 9 is noise; cell 4 may fall to a later hop by chance only */
	assert_int_equal(ha[4], -1);
	assert_int_equal(ha[9], -1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ha[i], i % HOPS);
	assert_int_equal(bad_a, bad_b);
	assert_memory_equal(ha, hb, sizeof(ha));
	assert_memory_equal(a, b, sizeof(a));
	assert_memory_equal(ta, tb, sizeof(ta));
	relay_crypto_circ_clear(&w1.circ);
	relay_crypto_circ_clear(&w2.circ);
}

static void test_bad_cells_in_batches_of_4_5_16_match_one_by_one(void **state)
{
	(void)state;
	check_bad_cells_in_batches(4);
	check_bad_cells_in_batches(5);
	check_bad_cells_in_batches(16);
}

static void test_keys_from_kdf_split_df_db_kf_kb_nonce(void **state)
{
	uint8_t k[RELAY_KDF_LEN];
	struct relay_hop_keys out;

	(void)state;
	for (size_t i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)i;
	assert_int_equal(relay_keys_from_kdf(k, RELAY_KEY_MATERIAL_LEN - 1, &out), -1);
	assert_int_equal(relay_keys_from_kdf(k, sizeof(k), &out), 0);
	assert_int_equal(out.df[0], 0);
	assert_int_equal(out.db[0], 20);
	assert_int_equal(out.kf[0], 40);
	assert_int_equal(out.kb[0], 56);
	assert_int_equal(out.nonce[0], 72);
	assert_int_equal(out.nonce[19], 91);
	assert_int_equal(relay_keys_from_kdf(k, RELAY_KEY_MATERIAL_LEN, &out), 0);
	assert_int_equal(out.nonce[0] | out.nonce[19], 0);
}

static void test_circuit_holds_at_most_max_hops_and_clear_wipes_keys(void **state)
{
	static struct relay_crypto_circ c, zero;
	struct relay_hop_keys k;
	uint8_t m[RELAY_KDF_LEN];

	(void)state;
	crypto_rand(m, sizeof(m));
	relay_keys_from_kdf(m, sizeof(m), &k);
	relay_crypto_circ_init(&c);
	for (int i = 0; i < RELAY_CRYPTO_MAX_HOPS; i++)
		assert_int_equal(relay_crypto_circ_add_hop(&c, &k), i);
	assert_int_equal(relay_crypto_circ_add_hop(&c, &k), -1);
	assert_memory_not_equal(&c, &zero, sizeof(c));
	relay_crypto_circ_drop_last(&c);
	assert_int_equal(c.n_hops, RELAY_CRYPTO_MAX_HOPS - 1);
	assert_memory_equal(&c.hop[RELAY_CRYPTO_MAX_HOPS - 1], &zero.hop[0], sizeof(c.hop[0]));
	relay_crypto_circ_clear(&c);
	assert_memory_equal(&c, &zero, sizeof(c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outbound_cells_are_recognized_by_the_target_hop_only),
		cmocka_unit_test(test_inbound_cells_are_attributed_to_the_originating_hop),
		cmocka_unit_test(test_inbound_corrupted_cell_is_recognized_by_no_hop),
		cmocka_unit_test(test_unmatched_digest_leaves_hop_digest_unchanged),
		cmocka_unit_test(test_batches_of_1_7_32_200_match_one_by_one),
		cmocka_unit_test(test_bad_cells_in_batches_of_4_5_16_match_one_by_one),
		cmocka_unit_test(test_keys_from_kdf_split_df_db_kf_kb_nonce),
		cmocka_unit_test(test_circuit_holds_at_most_max_hops_and_clear_wipes_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
