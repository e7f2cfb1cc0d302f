/* proto/ntor3: the ntor v3 client (proposal 332) and the congestion
 * control extension (proposal 324 §10).
 *
 * The known answers are proposal 332's test vectors (section X.2), used
 * exactly. The relay side for round trips is written here from the
 * proposal's server formulas with core/crypto.h only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/crypto.h"
#include "proto/ntor3.h"

#define PROTOID "ntor3-curve25519-sha3_256-1"

/* Proposal 332, X.2. */
static const char P_b[] = "4051daa5921cfa2a1c27b08451324919538e79e788a81b38cbed097a5dff454a";
static const char P_B[] = "f8307a2bc1870b00b828bb74dbb8fd88e632a6375ab3bcd1ae706aaa8b6cdd1d";
static const char P_ID[] = "9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2";
static const char P_x[] = "b825a3719147bcbe5fb1d0b0fcb9c09e51948048e2e3283d2ab7b45b5ef38b49";
static const char P_CM[] = "68656c6c6f20776f726c64";
static const char P_VER[] = "78797a7a79";
static const char P_y[] = "4865a5b7689dafd978f529291c7171bc159be076b92186405d13220b80e2a053";
static const char P_SM[] = "486f6c61204d756e646f";
static const char P_CLIENT[] =
	"9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2f8307a2bc1870b00b828bb74dbb8fd88"
	"e632a6375ab3bcd1ae706aaa8b6cdd1d252fe9ae91264c91d4ecb8501f79d0387e34ad8ca0f7c995184f7d11d5da4f46"
	"3bebd9151fd3b47c180abc9e044d53565f04d82bbb3bebed3d06cea65db8be9c72b68cd461942088502f67";
static const char P_SERVER[] =
	"4bf4814326fdab45ad5184f5518bd7fae25dc59374062698201a50a22954246d2fc5f8773ca824542bc6cf6f57c7c29b"
	"bf4e5476461ab130c5b18ab0a91276651202c3e1e87c0d32054c";
static const char P_KEYSTREAM[] =
	"9c19b631fd94ed86a817e01f6c80b0743a43f5faebd39cfaa8b00fa8bcc65c3bfeaa403d91acbd68a821bf6ee8504602"
	"b094a254392a07737d5662768c7a9fb1b2814bb34780eaee6e867c773e28c212ead563e98a1cd5d5b4576f5ee61c59bd"
	"e025ff2851bb19b721421694f263818e3531e43a9e4e3e2c661e2ad547d8984caa28ebecd3e4525452299be26b9185a2"
	"0a90ce1eac20a91f2832d731b54502b09749b5a2a2949292f8cfcbeffb790c7790ed935a9d251e7e336148ea83b063a5"
	"618fcff674a44581585fd22077ca0e52c59a24347a38d1a1ceebddbf238541f226b8f88d0fb9c07a1bcd2ea764bbbb5d"
	"acdaf5312a14c0b9e4f06309b0333b4a";

static size_t hex2bin(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void encap(struct crypto_sha3 *h, const void *s, size_t n)
{
	uint8_t len[8];

	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	crypto_sha3_256_update(h, len, 8);
	crypto_sha3_256_update(h, s, n);
}

static size_t put_encap(uint8_t *p, const void *s, size_t n)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	memcpy(p + 8, s, n);
	return 8 + n;
}

struct relay_result {
	uint8_t cm[256];
	size_t cm_len;
	uint8_t reply[512];
	size_t reply_len;
	uint8_t keys[256];
};

static void aes256_zero_iv(const uint8_t key[32], uint8_t *buf, size_t n)
{
	static const uint8_t iv[16];
	struct crypto_aes256_ctr a;

	crypto_aes256_ctr_init(&a, key, iv);
	crypto_aes256_ctr_xor(&a, buf, n);
	crypto_aes256_ctr_clear(&a);
}

/* The relay's half of proposal 332: returns false if the MAC is wrong. */
static bool relay_respond(const uint8_t b[32], const uint8_t y[32], const uint8_t *ver, size_t ver_len,
			  const uint8_t *hs, size_t hs_len, const uint8_t *sm, size_t sm_len,
			  struct relay_result *out)
{
	const uint8_t *id = hs, *B = hs + 32, *X = hs + 64, *msg = hs + 96;
	size_t msg_len = hs_len - 128;
	uint8_t buf[512], k1[64], mac[32], Xb[32], Xy[32], Y[32], seed[32], verify[32], raw[32 + 256];
	struct crypto_sha3 h;
	size_t n = 0;

	assert_true(crypto_x25519(Xb, b, X));
	n += put_encap(buf, PROTOID ":kdf_phase1", sizeof(PROTOID ":kdf_phase1") - 1);
	memcpy(buf + n, Xb, 32), n += 32;
	memcpy(buf + n, id, 32), n += 32;
	memcpy(buf + n, X, 32), n += 32;
	memcpy(buf + n, B, 32), n += 32;
	memcpy(buf + n, PROTOID, 27), n += 27;
	n += put_encap(buf + n, ver, ver_len);
	crypto_shake256(buf, n, k1, 64);
	crypto_sha3_256_init(&h);
	encap(&h, PROTOID ":msg_mac", sizeof(PROTOID ":msg_mac") - 1);
	encap(&h, k1 + 32, 32);
	crypto_sha3_256_update(&h, hs, 96 + msg_len);
	crypto_sha3_256_final(&h, mac);
	if (!crypto_memeq(mac, hs + hs_len - 32, 32))
		return false;
	memcpy(out->cm, msg, msg_len);
	out->cm_len = msg_len;
	aes256_zero_iv(k1, out->cm, msg_len);

	crypto_x25519_public(Y, y);
	assert_true(crypto_x25519(Xy, y, X));
	n = 0;
	memcpy(buf + n, Xy, 32), n += 32;
	memcpy(buf + n, Xb, 32), n += 32;
	memcpy(buf + n, id, 32), n += 32;
	memcpy(buf + n, B, 32), n += 32;
	memcpy(buf + n, X, 32), n += 32;
	memcpy(buf + n, Y, 32), n += 32;
	memcpy(buf + n, PROTOID, 27), n += 27;
	n += put_encap(buf + n, ver, ver_len);
	crypto_sha3_256_init(&h);
	encap(&h, PROTOID ":key_seed", sizeof(PROTOID ":key_seed") - 1);
	crypto_sha3_256_update(&h, buf, n);
	crypto_sha3_256_final(&h, seed);
	crypto_sha3_256_init(&h);
	encap(&h, PROTOID ":verify", sizeof(PROTOID ":verify") - 1);
	crypto_sha3_256_update(&h, buf, n);
	crypto_sha3_256_final(&h, verify);

	n = put_encap(buf, PROTOID ":kdf_final", sizeof(PROTOID ":kdf_final") - 1);
	memcpy(buf + n, seed, 32), n += 32;
	crypto_shake256(buf, n, raw, sizeof(raw));
	memcpy(out->reply, Y, 32);
	memcpy(out->reply + 64, sm, sm_len);
	aes256_zero_iv(raw, out->reply + 64, sm_len);
	out->reply_len = 64 + sm_len;
	memcpy(out->keys, raw + 32, 256);

	crypto_sha3_256_init(&h);
	encap(&h, PROTOID ":auth_final", sizeof(PROTOID ":auth_final") - 1);
	crypto_sha3_256_update(&h, verify, 32);
	crypto_sha3_256_update(&h, id, 32);
	crypto_sha3_256_update(&h, B, 32);
	crypto_sha3_256_update(&h, Y, 32);
	crypto_sha3_256_update(&h, X, 32);
	crypto_sha3_256_update(&h, hs + hs_len - 32, 32);
	encap(&h, out->reply + 64, sm_len);
	crypto_sha3_256_update(&h, PROTOID "Server", 27 + 6);
	crypto_sha3_256_final(&h, out->reply + 32);
	return true;
}

static void test_ntor3_client_matches_proposal_332_vectors(void **state)
{
	uint8_t id[32], B[32], x[32], cm[16], ver[8], want[256], hs[256], reply[128], sm[64], keys[256];
	size_t cm_len, ver_len, want_len, reply_len, sm_len;
	struct ntor3_client st;

	(void)state;
	hex2bin(P_ID, id, 32);
	hex2bin(P_B, B, 32);
	hex2bin(P_x, x, 32);
	cm_len = hex2bin(P_CM, cm, sizeof(cm));
	ver_len = hex2bin(P_VER, ver, sizeof(ver));
	want_len = hex2bin(P_CLIENT, want, sizeof(want));
	assert_int_equal(ntor3_client_start_with_key(&st, id, B, x, ver, ver_len, cm, cm_len, hs, sizeof(hs)),
			 (int)want_len);
	assert_memory_equal(hs, want, want_len);

	reply_len = hex2bin(P_SERVER, reply, sizeof(reply));
	assert_int_equal(ntor3_client_finish(&st, reply, reply_len, sm, sizeof(sm), &sm_len, keys, 256), 0);
	want_len = hex2bin(P_SM, want, sizeof(want));
	assert_int_equal(sm_len, want_len);
	assert_memory_equal(sm, want, sm_len);
	hex2bin(P_KEYSTREAM, want, sizeof(want));
	assert_memory_equal(keys, want, 256);
}

static void test_ntor3_test_relay_matches_proposal_332_vectors(void **state)
{
	uint8_t b[32], y[32], cm[16], ver[8], sm[16], hs[256], want[256];
	size_t ver_len, sm_len, hs_len, want_len;
	struct relay_result r;

	(void)state;
	hex2bin(P_b, b, 32);
	hex2bin(P_y, y, 32);
	hex2bin(P_CM, cm, sizeof(cm));
	ver_len = hex2bin(P_VER, ver, sizeof(ver));
	sm_len = hex2bin(P_SM, sm, sizeof(sm));
	hs_len = hex2bin(P_CLIENT, hs, sizeof(hs));
	assert_true(relay_respond(b, y, ver, ver_len, hs, hs_len, sm, sm_len, &r));
	assert_memory_equal(r.cm, cm, r.cm_len);
	want_len = hex2bin(P_SERVER, want, sizeof(want));
	assert_int_equal(r.reply_len, want_len);
	assert_memory_equal(r.reply, want, want_len);
	hex2bin(P_KEYSTREAM, want, sizeof(want));
	assert_memory_equal(r.keys, want, 256);
}

/* One full exchange with random keys: the client asks for congestion
 * control; the relay answers with sendme_inc 31. */
static void run_cc_exchange(struct ntor3_client *st, uint8_t B[32], uint8_t b[32], struct relay_result *r,
			    uint8_t hs[256], size_t *hs_len)
{
	static const uint8_t sm[] = { 1, NTOR3_EXT_CC_RESPONSE, 1, 31 };
	uint8_t id[32], y[32], Y[32], cm[8];
	size_t cm_len = ntor3_ext_encode_cc_request(cm, sizeof(cm));
	int n;

	crypto_rand(id, sizeof(id));
	crypto_x25519_keypair(B, b);
	crypto_x25519_keypair(Y, y);
	n = ntor3_client_start(st, id, B, (const uint8_t *)NTOR3_CIRC_VERIFICATION,
			       strlen(NTOR3_CIRC_VERIFICATION), cm, cm_len, hs, 256);
	assert_int_equal(n, NTOR3_CLIENT_OVERHEAD + 3);
	*hs_len = (size_t)n;
	assert_true(relay_respond(b, y, (const uint8_t *)NTOR3_CIRC_VERIFICATION, strlen(NTOR3_CIRC_VERIFICATION),
				  hs, *hs_len, sm, sizeof(sm), r));
	assert_int_equal(r->cm_len, cm_len);
	assert_memory_equal(r->cm, cm, cm_len);
}

static void test_ntor3_round_trip_negotiates_congestion_control(void **state)
{
	uint8_t B[32], b[32], hs[256], sm[32], keys[92];
	size_t hs_len, sm_len;
	struct relay_result r;
	struct ntor3_client st;
	bool present;
	uint8_t inc;
	const char *why = NULL;

	(void)state;
	run_cc_exchange(&st, B, b, &r, hs, &hs_len);
	assert_int_equal(ntor3_client_finish(&st, r.reply, r.reply_len, sm, sizeof(sm), &sm_len, keys, 92), 0);
	assert_memory_equal(keys, r.keys, 92);
	assert_int_equal(ntor3_ext_parse_cc_response(sm, sm_len, true, &present, &inc, &why), PARSE_OK);
	assert_true(present);
	assert_int_equal(inc, 31);
}

static void test_ntor3_rejects_tampered_reply_and_wipes_state(void **state)
{
	uint8_t B[32], b[32], hs[256], sm[32], keys[92], zero[92] = { 0 }, bad[512];
	size_t hs_len, sm_len;
	struct relay_result r;
	struct ntor3_client st, saved, wiped;

	(void)state;
	memset(&wiped, 0, sizeof(wiped));
	run_cc_exchange(&st, B, b, &r, hs, &hs_len);
	saved = st;
	for (size_t i = 0; i < r.reply_len; i += 5) {
		memcpy(bad, r.reply, r.reply_len);
		bad[i] ^= 0x04;
		st = saved;
		memset(keys, 0x55, sizeof(keys));
		assert_int_equal(ntor3_client_finish(&st, bad, r.reply_len, sm, sizeof(sm), &sm_len, keys, 92), -1);
		assert_memory_equal(keys, zero, 92);
		assert_int_equal(sm_len, 0);
		assert_memory_equal(&st, &wiped, sizeof(st));
	}
	/* Truncated replies and a message that does not fit fail too. */
	st = saved;
	assert_int_equal(ntor3_client_finish(&st, r.reply, r.reply_len - 1, sm, sizeof(sm), &sm_len, keys, 92), -1);
	st = saved;
	assert_int_equal(ntor3_client_finish(&st, r.reply, 63, sm, sizeof(sm), &sm_len, keys, 92), -1);
	st = saved;
	assert_int_equal(ntor3_client_finish(&st, r.reply, r.reply_len, sm, 3, &sm_len, keys, 92), -1);
	st = saved;
	assert_int_equal(ntor3_client_finish(&st, r.reply, r.reply_len, sm, sizeof(sm), &sm_len, keys, 92), 0);
}

static void test_ntor3_relay_rejects_tampered_client_mac(void **state)
{
	uint8_t B[32], b[32], y[32], Y[32], hs[256], cm[8];
	size_t cm_len = ntor3_ext_encode_cc_request(cm, sizeof(cm));
	struct relay_result r;
	struct ntor3_client st;
	int n;

	(void)state;
	crypto_x25519_keypair(B, b);
	crypto_x25519_keypair(Y, y);
	n = ntor3_client_start(&st, (const uint8_t *)"0123456789abcdef0123456789abcdef", B,
			       (const uint8_t *)"v", 1, cm, cm_len, hs, sizeof(hs));
	assert_true(relay_respond(b, y, (const uint8_t *)"v", 1, hs, (size_t)n, (const uint8_t *)"", 0, &r));
	hs[96] ^= 1; /* the encrypted client message */
	assert_false(relay_respond(b, y, (const uint8_t *)"v", 1, hs, (size_t)n, (const uint8_t *)"", 0, &r));
	hs[96] ^= 1;
	assert_false(relay_respond(b, y, (const uint8_t *)"w", 1, hs, (size_t)n, (const uint8_t *)"", 0, &r));
	ntor3_client_abandon(&st);
}

static void test_ntor3_start_rejects_bad_arguments(void **state)
{
	uint8_t B[32], b[32], id[32] = { 0 }, hs[256], ver[NTOR3_MAX_VER_LEN + 1] = { 0 }, low[32] = { 0 };
	struct ntor3_client st;

	(void)state;
	crypto_x25519_keypair(B, b);
	assert_int_equal(ntor3_client_start(&st, id, B, ver, sizeof(ver), NULL, 0, hs, sizeof(hs)), -1);
	assert_int_equal(ntor3_client_start(&st, id, B, ver, 1, hs, 10, hs, NTOR3_CLIENT_OVERHEAD + 9), -1);
	assert_int_equal(ntor3_client_start(&st, id, low, ver, 1, NULL, 0, hs, sizeof(hs)), -1);
	assert_int_equal(ntor3_client_start(&st, id, B, ver, 1, NULL, 0, hs, NTOR3_CLIENT_OVERHEAD),
			 NTOR3_CLIENT_OVERHEAD);
	ntor3_client_abandon(&st);
}

static void test_cc_request_encodes_one_empty_extension(void **state)
{
	uint8_t out[8];

	(void)state;
	assert_int_equal(ntor3_ext_encode_cc_request(out, sizeof(out)), 3);
	assert_memory_equal(out, "\x01\x01\x00", 3);
	assert_int_equal(ntor3_ext_encode_cc_request(out, 2), 0);
}

static enum parse_result parse(const uint8_t *m, size_t n, bool req, bool *present, uint8_t *inc)
{
	const char *why = NULL;
	enum parse_result r = ntor3_ext_parse_cc_response(m, n, req, present, inc, &why);

	if (r != PARSE_OK)
		assert_non_null(why);
	return r;
}

static void test_cc_response_uses_first_field_and_ignores_unknown(void **state)
{
	static const uint8_t m[] = { 4, 9, 2, 0xaa, 0xbb, 2, 1, 33, 2, 1, 77, 0x42, 0 };
	static const uint8_t none[] = { 1, 9, 0 }, empty_list[] = { 0 };
	bool present;
	uint8_t inc;

	(void)state;
	assert_int_equal(parse(m, sizeof(m), true, &present, &inc), PARSE_OK);
	assert_true(present);
	assert_int_equal(inc, 33);
	assert_int_equal(parse(none, sizeof(none), true, &present, &inc), PARSE_OK);
	assert_false(present);
	assert_int_equal(parse(empty_list, 1, false, &present, &inc), PARSE_OK);
	assert_false(present);
	/* Every proper prefix is malformed (the message is complete). */
	for (size_t n = 0; n < sizeof(m); n++)
		assert_int_equal(parse(m, n, true, &present, &inc), PARSE_INVALID);
}

static void test_cc_response_rejects_malformed_and_unrequested(void **state)
{
	static const uint8_t ok[] = { 1, 2, 1, 31 }, empty_body[] = { 1, 2, 0 }, trailing[] = { 1, 2, 1, 31, 0 };
	static const uint8_t overlong[] = { 1, 2, 5, 31 };
	bool present;
	uint8_t inc;

	(void)state;
	assert_int_equal(parse(ok, sizeof(ok), false, &present, &inc), PARSE_INVALID);
	assert_false(present);
	assert_int_equal(parse(empty_body, sizeof(empty_body), true, &present, &inc), PARSE_INVALID);
	assert_int_equal(parse(trailing, sizeof(trailing), true, &present, &inc), PARSE_INVALID);
	assert_int_equal(parse(overlong, sizeof(overlong), true, &present, &inc), PARSE_INVALID);
	assert_int_equal(parse(ok, sizeof(ok), true, &present, &inc), PARSE_OK);
}

static void test_cc_sendme_inc_must_be_within_factor_two_of_consensus(void **state)
{
	(void)state;
	assert_true(ntor3_cc_sendme_inc_acceptable(31, 31));
	assert_true(ntor3_cc_sendme_inc_acceptable(16, 31));
	assert_false(ntor3_cc_sendme_inc_acceptable(15, 31));
	assert_true(ntor3_cc_sendme_inc_acceptable(62, 31));
	assert_false(ntor3_cc_sendme_inc_acceptable(63, 31));
	assert_false(ntor3_cc_sendme_inc_acceptable(0, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ntor3_client_matches_proposal_332_vectors),
		cmocka_unit_test(test_ntor3_test_relay_matches_proposal_332_vectors),
		cmocka_unit_test(test_ntor3_round_trip_negotiates_congestion_control),
		cmocka_unit_test(test_ntor3_rejects_tampered_reply_and_wipes_state),
		cmocka_unit_test(test_ntor3_relay_rejects_tampered_client_mac),
		cmocka_unit_test(test_ntor3_start_rejects_bad_arguments),
		cmocka_unit_test(test_cc_request_encodes_one_empty_extension),
		cmocka_unit_test(test_cc_response_uses_first_field_and_ignores_unknown),
		cmocka_unit_test(test_cc_response_rejects_malformed_and_unrequested),
		cmocka_unit_test(test_cc_sendme_inc_must_be_within_factor_two_of_consensus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
