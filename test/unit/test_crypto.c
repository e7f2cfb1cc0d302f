/* The crypto wrappers give the published known answers (FIPS 180, FIPS 202,
 * RFC 5869, RFC 7748, RFC 8032). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/crypto.h"

static void hex2bin(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static void assert_hex(const uint8_t *got, const char *hex)
{
	size_t n = strlen(hex) / 2;
	uint8_t want[256];

	hex2bin(hex, want, n);
	assert_memory_equal(got, want, n);
}

static void test_sha1_and_sha256_of_abc(void **state)
{
	uint8_t out[64];

	(void)state;
	crypto_sha1("abc", 3, out);
	assert_hex(out, "a9993e364706816aba3e25717850c26c9cd0d89d");
	crypto_sha256("abc", 3, out);
	assert_hex(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha1_peek_does_not_disturb_running_digest(void **state)
{
	struct crypto_sha1 c;
	uint8_t out[SHA1_LEN];

	(void)state;
	crypto_sha1_init(&c);
	crypto_sha1_update(&c, "a", 1);
	crypto_sha1_peek(&c, out);
	crypto_sha1_update(&c, "bc", 2);
	crypto_sha1_peek(&c, out);
	assert_hex(out, "a9993e364706816aba3e25717850c26c9cd0d89d");
	crypto_sha1_clear(&c);
}

static void test_sha3_256_and_shake256(void **state)
{
	uint8_t out[64];
	struct crypto_sha3 c;

	(void)state;
	crypto_sha3_256("abc", 3, out);
	assert_hex(out, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
	crypto_sha3_256_init(&c);
	crypto_sha3_256_update(&c, "a", 1);
	crypto_sha3_256_update(&c, "bc", 2);
	crypto_sha3_256_final(&c, out);
	assert_hex(out, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
	crypto_shake256("", 0, out, 32);
	assert_hex(out, "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f");
}

static void test_hkdf_sha256_rfc5869_case1(void **state)
{
	uint8_t ikm[22], salt[13], info[10], okm[42];

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	hex2bin("000102030405060708090a0b0c", salt, sizeof(salt));
	hex2bin("f0f1f2f3f4f5f6f7f8f9", info, sizeof(info));
	assert_int_equal(crypto_hkdf_sha256(okm, sizeof(okm), ikm, sizeof(ikm), salt, sizeof(salt),
					    info, sizeof(info)), 0);
	assert_hex(okm, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

static void test_x25519_rfc7748_vector(void **state)
{
	uint8_t scalar[32], point[32], out[32];

	(void)state;
	hex2bin("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", scalar, 32);
	hex2bin("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", point, 32);
	assert_true(crypto_x25519(out, scalar, point));
	assert_hex(out, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
}

static void test_x25519_rejects_low_order_point(void **state)
{
	uint8_t priv[32], zero[32] = { 0 }, out[32];

	(void)state;
	crypto_rand(priv, sizeof(priv));
	assert_false(crypto_x25519(out, priv, zero));
}

static void test_ed25519_rfc8032_test1(void **state)
{
	uint8_t seed[32], pub[32], sig[64];

	(void)state;
	hex2bin("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
	crypto_ed25519_public_from_seed(pub, seed);
	assert_hex(pub, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
	crypto_ed25519_sign_seed(sig, (const uint8_t *)"", 0, seed);
	assert_hex(sig, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
	assert_true(crypto_ed25519_verify((const uint8_t *)"", 0, sig, pub));
	sig[0] ^= 1;
	assert_false(crypto_ed25519_verify((const uint8_t *)"", 0, sig, pub));
}

/* Tor's src/test/ed25519_vectors.inc, vector 0. Those stored vectors were
 * made with an older tweak: the blinding factor is
 * SHA-512("Derive temporary signing key" | param)[:32], clamped by us. */
static void old_tor_tweak(const char *param_hex, uint8_t h[32])
{
	uint8_t buf[28 + 32], d[64];

	memcpy(buf, "Derive temporary signing key", 28);
	hex2bin(param_hex, buf + 28, 32);
	crypto_sha512(buf, sizeof(buf), d);
	memcpy(h, d, 32);
}

static void test_ed25519_expanded_key_signs_like_rfc8032(void **state)
{
	uint8_t seed[32], exp[64], pub[32], sig[64];

	(void)state;
	hex2bin("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
	crypto_ed25519_expand_seed(exp, seed);
	crypto_ed25519_public_from_expanded(pub, exp);
	assert_hex(pub, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
	crypto_ed25519_sign_expanded(sig, (const uint8_t *)"", 0, exp, pub);
	assert_hex(sig, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
}

static void test_ed25519_blinding_matches_tor_vectors(void **state)
{
	static const char *params[] = {
		"54a513898b471d1d448a2f3c55c1de2c0ef718c447b04497eeb999ed32027823",
		"831e9b5325b5d31b7ae6197e9c7a7baf2ec361e08248bce055908971047a2347",
	};
	static const char *expanded[] = {
		"c0a4de23cc64392d85aa1da82b3defddbea946d13bb053bf8489fa9296281f49"
		"5022f1f7ec0dcf52f07d4c7965c4eaed121d5d88d0a8ff546b06116a20e97755",
		"18a8a69a06790dac778e882f7e868baacfa12521a5c058f5194f3a729184514a"
		"2a656fe7799c3e41f43d756da8d9cd47a061316cfe6147e23ea2f90d1ca45f30",
	};
	static const char *pubs[] = {
		"c2247870536a192d142d056abefca68d6193158e7c1a59c1654c954eccaff894",
		"1519a3b15816a1aafab0b213892026ebf5c0dc232c58b21088d88cb90e9b940d",
	};
	static const char *bsec[] = {
		"014e83abadb2ca9a27e0ffe23920333d817729f48700e97656ec2823d694050e"
		"171d43f24e3f53e70ec7ac280044ac77d4942dee5d6807118a59bdf3ee647e89",
		"fad8cca0b4335847795288b1452508752b253e64e6c7c78d4a02dbbd7d46aa0e"
		"b8ceff20dfcf53eb52b891fc078c934efbf0353af7242e7dc51bb32a093afa29",
	};
	static const char *bpub[] = {
		"722d6da6348e618967ef782e71061e27163a8b35f21856475d9d2023f65b6495",
		"1dffa0586da6cbfcff2024eedf4fc6c818242d9a82dbbe635d6da1b975a1160d",
	};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		uint8_t h[32], exp[64], pub[32], bexp[64], bp[32], bp2[32], sig[64];

		old_tor_tweak(params[i], h);
		hex2bin(expanded[i], exp, 64);
		hex2bin(pubs[i], pub, 32);
		assert_true(crypto_ed25519_point_is_valid(pub));
		assert_true(crypto_ed25519_blind_public(bp, pub, h));
		assert_hex(bp, bpub[i]);
		crypto_ed25519_blind_expanded(bexp, exp, h);
		assert_hex(bexp, bsec[i]);
		crypto_ed25519_public_from_expanded(bp2, bexp);
		assert_memory_equal(bp, bp2, 32);
		crypto_ed25519_sign_expanded(sig, (const uint8_t *)"msg", 3, bexp, bp);
		assert_true(crypto_ed25519_verify((const uint8_t *)"msg", 3, sig, bp));
	}
}

static void test_ed25519_point_check_rejects_torsion_and_small_order(void **state)
{
	uint8_t pub[32], tors[32], ident[32] = { 1 };

	(void)state;
	hex2bin("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pub, 32);
	assert_true(crypto_ed25519_point_is_valid(pub));
	/* The identity point (y = 1) has small order. */
	assert_false(crypto_ed25519_point_is_valid(ident));
	/* The point of order 2, (0, -1): y = p - 1 = 0x7fff...ffec. */
	memset(tors, 0xff, 32);
	tors[0] = 0xec;
	tors[31] = 0x7f;
	assert_false(crypto_ed25519_point_is_valid(tors));
	assert_false(crypto_ed25519_blind_public(pub, tors, pub));
}

static void test_aes128_ctr_sp800_38a(void **state)
{
	uint8_t key[16], iv[16], buf[32];
	struct crypto_aes_ctr c;

	(void)state;
	hex2bin("2b7e151628aed2a6abf7158809cf4f3c", key, 16);
	hex2bin("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", iv, 16);
	hex2bin("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51", buf, 32);
	crypto_aes_ctr_init(&c, key, iv);
	/* Split across calls: the keystream position must carry over. */
	crypto_aes_ctr_xor(&c, buf, 7);
	crypto_aes_ctr_xor(&c, buf + 7, 25);
	assert_hex(buf, "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff");
	crypto_aes_ctr_clear(&c);
}

static void test_rand_uint64_stays_below_bound(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++)
		assert_true(crypto_rand_uint64(7) < 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha1_and_sha256_of_abc),
		cmocka_unit_test(test_sha1_peek_does_not_disturb_running_digest),
		cmocka_unit_test(test_sha3_256_and_shake256),
		cmocka_unit_test(test_hkdf_sha256_rfc5869_case1),
		cmocka_unit_test(test_x25519_rfc7748_vector),
		cmocka_unit_test(test_x25519_rejects_low_order_point),
		cmocka_unit_test(test_ed25519_rfc8032_test1),
		cmocka_unit_test(test_ed25519_expanded_key_signs_like_rfc8032),
		cmocka_unit_test(test_ed25519_blinding_matches_tor_vectors),
		cmocka_unit_test(test_ed25519_point_check_rejects_torsion_and_small_order),
		cmocka_unit_test(test_aes128_ctr_sp800_38a),
		cmocka_unit_test(test_rand_uint64_stays_below_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
