/* proto/ntor: the ntor client (tor-spec.txt 5.1.4, 5.2.2).
 *
 * tor-spec gives no ntor test vectors: the known answers in
 * test/vectors/handshake/ntor_v1.inc come from an independent computation
 * (gen_ntor_v1.py: python3-cryptography X25519/HMAC/HKDF written from the
 * spec). The relay side used for round trips is written here, from the
 * spec's server formulas, with core/crypto.h only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/crypto.h"
#include "proto/ntor.h"
#include "test/vectors/handshake/ntor_v1.inc"

#define PROTOID "ntor-curve25519-sha256-1"

static void hex2bin(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* The relay's half: reply = Y | AUTH and its 92 key bytes, computed from
 * Xy and Xb as given (so a test can plant a degenerate Xy). */
static void server_finish(const uint8_t id[20], const uint8_t B[32], const uint8_t X[32],
			  const uint8_t Y[32], const uint8_t Xy[32], const uint8_t Xb[32],
			  uint8_t reply[64], uint8_t keys[92])
{
	uint8_t si[32 + 32 + 20 + 32 + 32 + 32 + 24], ai[32 + 20 + 32 + 32 + 32 + 24 + 6];
	uint8_t *p = si;

	memcpy(p, Xy, 32), p += 32;
	memcpy(p, Xb, 32), p += 32;
	memcpy(p, id, 20), p += 20;
	memcpy(p, B, 32), p += 32;
	memcpy(p, X, 32), p += 32;
	memcpy(p, Y, 32), p += 32;
	memcpy(p, PROTOID, 24);
	crypto_hmac_sha256(PROTOID ":verify", 31, si, sizeof(si), ai);
	p = ai + 32;
	memcpy(p, id, 20), p += 20;
	memcpy(p, B, 32), p += 32;
	memcpy(p, Y, 32), p += 32;
	memcpy(p, X, 32), p += 32;
	memcpy(p, PROTOID "Server", 30);
	memcpy(reply, Y, 32);
	crypto_hmac_sha256(PROTOID ":mac", 28, ai, sizeof(ai), reply + 32);
	assert_int_equal(crypto_hkdf_sha256(keys, 92, si, sizeof(si), PROTOID ":key_extract", 36,
					    PROTOID ":key_expand", 35), 0);
}

/* The honest relay: parse the onionskin, answer with a fresh y. */
static void server_respond(const uint8_t id[20], const uint8_t b[32], const uint8_t skin[84],
			   uint8_t reply[64], uint8_t keys[92])
{
	uint8_t B[32], y[32], Y[32], Xy[32], Xb[32];

	crypto_x25519_public(B, b);
	assert_memory_equal(skin, id, 20);
	assert_memory_equal(skin + 20, B, 32);
	crypto_x25519_keypair(Y, y);
	assert_true(crypto_x25519(Xy, y, skin + 52));
	assert_true(crypto_x25519(Xb, b, skin + 52));
	server_finish(id, B, skin + 52, Y, Xy, Xb, reply, keys);
}

static void test_ntor_client_matches_independent_vectors(void **state)
{
	uint8_t id[20], B[32], x[32], skin[84], want_skin[84], reply[64], keys[92], want[92];
	struct ntor_client st;

	(void)state;
	hex2bin(V1_NODE_ID, id, 20);
	hex2bin(V1_B_PUB, B, 32);
	hex2bin(V1_X_PRIV, x, 32);
	hex2bin(V1_ONIONSKIN, want_skin, 84);
	hex2bin(V1_REPLY, reply, 64);
	hex2bin(V1_KEYS, want, 92);
	ntor_client_start_with_key(&st, id, B, x, skin);
	assert_memory_equal(skin, want_skin, 84);
	assert_int_equal(ntor_client_finish(&st, reply, keys, sizeof(keys)), 0);
	assert_memory_equal(keys, want, 92);
}

static void test_ntor_server_helper_matches_independent_vectors(void **state)
{
	uint8_t id[20], b[32], y[32], Y[32], skin[84], reply[64], want_reply[64], keys[92], want[92];
	uint8_t Xy[32], Xb[32];

	(void)state;
	hex2bin(V1_NODE_ID, id, 20);
	hex2bin(V1_B_PRIV, b, 32);
	hex2bin(V1_Y_PRIV, y, 32);
	hex2bin(V1_ONIONSKIN, skin, 84);
	hex2bin(V1_REPLY, want_reply, 64);
	hex2bin(V1_KEYS, want, 92);
	crypto_x25519_public(Y, y);
	assert_true(crypto_x25519(Xy, y, skin + 52));
	assert_true(crypto_x25519(Xb, b, skin + 52));
	server_finish(id, skin + 20, skin + 52, Y, Xy, Xb, reply, keys);
	assert_memory_equal(reply, want_reply, 64);
	assert_memory_equal(keys, want, 92);
}

static void test_ntor_round_trip_agrees_on_keys(void **state)
{
	uint8_t id[20], b[32], B[32], skin[84], reply[64], ck[92], sk[92];
	struct ntor_client st;

	(void)state;
	for (int round = 0; round < 4; round++) {
		crypto_rand(id, sizeof(id));
		crypto_x25519_keypair(B, b);
		ntor_client_start(&st, id, B, skin);
		server_respond(id, b, skin, reply, sk);
		assert_int_equal(ntor_client_finish(&st, reply, ck, sizeof(ck)), 0);
		assert_memory_equal(ck, sk, sizeof(ck));
	}
}

static void test_ntor_rejects_any_flipped_reply_bit(void **state)
{
	uint8_t id[20], b[32], B[32], skin[84], reply[64], bad[64], ck[92], sk[92], zero[92] = { 0 };
	struct ntor_client st, saved;

	(void)state;
	crypto_rand(id, sizeof(id));
	crypto_x25519_keypair(B, b);
	ntor_client_start(&st, id, B, skin);
	saved = st;
	server_respond(id, b, skin, reply, sk);
	for (size_t bit = 0; bit < 64 * 8; bit += 7) {
		memcpy(bad, reply, 64);
		bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		st = saved;
		memset(ck, 0xaa, sizeof(ck));
		assert_int_equal(ntor_client_finish(&st, bad, ck, sizeof(ck)), -1);
		assert_memory_equal(ck, zero, sizeof(ck));
	}
	st = saved;
	assert_int_equal(ntor_client_finish(&st, reply, ck, sizeof(ck)), 0);
	assert_memory_equal(ck, sk, sizeof(ck));
}

/* A relay that knows b can compute a valid AUTH for a low-order Y (whose
 * EXP(Y,x) is all zero); the client must still refuse it (5.1.4). */
static void test_ntor_rejects_low_order_server_key_even_with_valid_auth(void **state)
{
	static const uint8_t low_order[2][32] = {
		{ 0 },
		{ 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		  0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 },
	};
	uint8_t id[20], b[32], B[32], skin[84], reply[64], ck[92], sk[92], Xb[32], zero[32] = { 0 };
	struct ntor_client st;

	(void)state;
	crypto_rand(id, sizeof(id));
	crypto_x25519_keypair(B, b);
	for (int i = 0; i < 2; i++) {
		ntor_client_start(&st, id, B, skin);
		assert_true(crypto_x25519(Xb, b, skin + 52));
		server_finish(id, B, skin + 52, low_order[i], zero, Xb, reply, sk);
		assert_int_equal(ntor_client_finish(&st, reply, ck, sizeof(ck)), -1);
	}
}

static void test_ntor_finish_and_abandon_wipe_the_ephemeral_secret(void **state)
{
	uint8_t id[20] = { 1 }, b[32], B[32], skin[84], reply[64] = { 0 }, ck[92];
	struct ntor_client st, zero;

	(void)state;
	memset(&zero, 0, sizeof(zero));
	crypto_x25519_keypair(B, b);
	ntor_client_start(&st, id, B, skin);
	assert_int_equal(ntor_client_finish(&st, reply, ck, sizeof(ck)), -1);
	assert_memory_equal(&st, &zero, sizeof(st));
	ntor_client_start(&st, id, B, skin);
	ntor_client_abandon(&st);
	assert_memory_equal(&st, &zero, sizeof(st));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ntor_client_matches_independent_vectors),
		cmocka_unit_test(test_ntor_server_helper_matches_independent_vectors),
		cmocka_unit_test(test_ntor_round_trip_agrees_on_keys),
		cmocka_unit_test(test_ntor_rejects_any_flipped_reply_bit),
		cmocka_unit_test(test_ntor_rejects_low_order_server_key_even_with_valid_auth),
		cmocka_unit_test(test_ntor_finish_and_abandon_wipe_the_ephemeral_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
