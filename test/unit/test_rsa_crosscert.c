/* RSA->Ed25519 cross-certificates (cert-spec.txt 2.3) against certificates
 * from test/vectors/gen_certs.py (an independent computation with
 * python3-cryptography, RSA-signed with raw PKCS#1 v1.5 padding). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/crypto.h"
#include "proto/rsa_crosscert.h"
#include "test/vectors/certs/certs_vectors.h"

static struct crypto_rsa *rsa_id;

static int setup(void **state)
{
	(void)state;
	rsa_id = crypto_rsa_from_der(cv_rsa_id_pkcs1, sizeof(cv_rsa_id_pkcs1));
	return rsa_id ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	crypto_rsa_free(rsa_id);
	return 0;
}

static const char *check_bytes(const uint8_t *p, size_t len, const uint8_t *ed, time_t now)
{
	struct rsa_crosscert cc;
	const char *why;

	assert_int_equal(rsa_crosscert_parse(p, len, &cc, &why), PARSE_OK);
	assert_int_equal(cc.len, len);
	return rsa_crosscert_check(&cc, rsa_id, ed, now);
}

static void test_rsa_crosscert_parses_fields(void **state)
{
	struct rsa_crosscert cc;
	const char *why;

	(void)state;
	assert_int_equal(rsa_crosscert_parse(cv_t7, sizeof(cv_t7), &cc, &why), PARSE_OK);
	assert_memory_equal(cc.ed_key, cv_ed_id, 32);
	assert_int_equal(cc.exp_hours, CV_EXP_T7);
	assert_int_equal(cc.expires, CV_EXP_T7 * 3600);
	assert_int_equal(cc.siglen, 128);
	assert_ptr_equal(cc.sig, cv_t7 + 37);
}

static void test_rsa_crosscert_valid_cert_checks(void **state)
{
	(void)state;
	assert_null(check_bytes(cv_t7, sizeof(cv_t7), cv_ed_id, CV_NOW));
	assert_null(check_bytes(cv_t7, sizeof(cv_t7), cv_ed_id, (time_t)CV_EXP_T7 * 3600));
}

static void test_rsa_crosscert_rejects_expired(void **state)
{
	(void)state;
	assert_string_equal(check_bytes(cv_t7, sizeof(cv_t7), cv_ed_id, (time_t)CV_EXP_T7 * 3600 + 1),
			    "cross-certificate expired");
	assert_string_equal(check_bytes(cv_t7_expired, sizeof(cv_t7_expired), cv_ed_id, CV_NOW),
			    "cross-certificate expired");
}

static void test_rsa_crosscert_rejects_other_ed25519_key(void **state)
{
	(void)state;
	assert_string_equal(check_bytes(cv_t7, sizeof(cv_t7), cv_ed_sign_pub, CV_NOW),
			    "cross-certificate certifies another Ed25519 key");
	assert_string_equal(check_bytes(cv_t7_wrong_ed, sizeof(cv_t7_wrong_ed), cv_ed_id, CV_NOW),
			    "cross-certificate certifies another Ed25519 key");
}

static void test_rsa_crosscert_rejects_other_rsa_signer(void **state)
{
	(void)state;
	assert_string_equal(check_bytes(cv_t7_other_rsa, sizeof(cv_t7_other_rsa), cv_ed_id, CV_NOW),
			    "cross-certificate is not signed by the RSA identity key");
}

static void test_rsa_crosscert_signature_covers_expiration_and_sig(void **state)
{
	uint8_t buf[sizeof(cv_t7)];

	(void)state;
	/* A later expiration is not what the RSA key signed. */
	memcpy(buf, cv_t7, sizeof(buf));
	buf[35] ^= 0x01;
	assert_string_equal(check_bytes(buf, sizeof(buf), cv_ed_id, CV_NOW),
			    "cross-certificate is not signed by the RSA identity key");
	memcpy(buf, cv_t7, sizeof(buf));
	buf[sizeof(buf) - 1] ^= 0x01;
	assert_string_equal(check_bytes(buf, sizeof(buf), cv_ed_id, CV_NOW),
			    "cross-certificate is not signed by the RSA identity key");
}

static void test_rsa_crosscert_rejects_short_signature(void **state)
{
	uint8_t buf[sizeof(cv_t7)];

	(void)state;
	/* SIGLEN 127 over 127 bytes: parses, but is not a 1024-bit signature. */
	memcpy(buf, cv_t7, sizeof(buf));
	buf[36] = 127;
	assert_string_equal(check_bytes(buf, sizeof(buf) - 1, cv_ed_id, CV_NOW),
			    "cross-certificate is not signed by the RSA identity key");
}

static void test_rsa_crosscert_rejects_empty_signature(void **state)
{
	uint8_t buf[37];
	struct rsa_crosscert cc;
	const char *why;

	(void)state;
	memcpy(buf, cv_t7, 36);
	buf[36] = 0;
	assert_int_equal(rsa_crosscert_parse(buf, sizeof(buf), &cc, &why), PARSE_INVALID);
	assert_string_equal(why, "cross-certificate has an empty signature");
}

static void test_rsa_crosscert_every_prefix_needs_more(void **state)
{
	struct rsa_crosscert cc;
	const char *why;

	(void)state;
	for (size_t len = 0; len < sizeof(cv_t7); len++) {
		uint8_t *copy = malloc(len ? len : 1);

		assert_non_null(copy);
		memcpy(copy, cv_t7, len);
		assert_int_equal(rsa_crosscert_parse(copy, len, &cc, &why), PARSE_NEED_MORE);
		assert_string_equal(why, "cross-certificate is truncated");
		free(copy);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa_crosscert_parses_fields),
		cmocka_unit_test(test_rsa_crosscert_valid_cert_checks),
		cmocka_unit_test(test_rsa_crosscert_rejects_expired),
		cmocka_unit_test(test_rsa_crosscert_rejects_other_ed25519_key),
		cmocka_unit_test(test_rsa_crosscert_rejects_other_rsa_signer),
		cmocka_unit_test(test_rsa_crosscert_signature_covers_expiration_and_sig),
		cmocka_unit_test(test_rsa_crosscert_rejects_short_signature),
		cmocka_unit_test(test_rsa_crosscert_rejects_empty_signature),
		cmocka_unit_test(test_rsa_crosscert_every_prefix_needs_more),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
