/* Ed25519 certificates (cert-spec.txt 2.1): parse, check and encode, against
 * certificates from test/vectors/gen_certs.py (an independent computation
 * with python3-cryptography) and hand-made invalid ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/crypto.h"
#include "proto/ed25519_cert.h"
#include "test/vectors/certs/certs_vectors.h"

/* Parse a heap copy of exactly len bytes, so ASan sees any overread. */
static enum parse_result parse_copy(const uint8_t *p, size_t len, struct ed25519_cert *c,
				    uint8_t **copy, const char **why)
{
	*copy = malloc(len ? len : 1);
	assert_non_null(*copy);
	memcpy(*copy, p, len);
	return ed25519_cert_parse(*copy, len, c, why);
}

static void test_ed25519_cert_parses_identity_signing_cert(void **state)
{
	struct ed25519_cert c;
	const char *why;

	(void)state;
	assert_int_equal(ed25519_cert_parse(cv_t4, sizeof(cv_t4), &c, &why), PARSE_OK);
	assert_int_equal(c.len, sizeof(cv_t4));
	assert_int_equal(c.cert_type, ED25519_CERT_TYPE_ID_SIGNING);
	assert_int_equal(c.key_type, ED25519_CERT_KEY_ED25519);
	assert_int_equal(c.exp_hours, CV_EXP_T4);
	assert_int_equal(c.expires, CV_EXP_T4 * 3600);
	assert_int_equal(c.n_extensions, 1);
	assert_memory_equal(c.certified_key, cv_ed_sign_pub, 32);
	assert_non_null(c.signing_key);
	assert_memory_equal(c.signing_key, cv_ed_id, 32);
	assert_ptr_equal(c.signature, cv_t4 + sizeof(cv_t4) - 64);
}

static void test_ed25519_cert_checks_with_extension_or_given_key(void **state)
{
	struct ed25519_cert c;
	const char *why;

	(void)state;
	assert_int_equal(ed25519_cert_parse(cv_t4, sizeof(cv_t4), &c, &why), PARSE_OK);
	assert_null(ed25519_cert_check(&c, NULL, CV_NOW));
	assert_null(ed25519_cert_check(&c, cv_ed_id, CV_NOW));
	assert_string_equal(ed25519_cert_check(&c, cv_ed_sign_pub, CV_NOW),
			    "signed-with-ed25519-key extension names another key");
}

static void test_ed25519_cert_without_extension_needs_a_key(void **state)
{
	struct ed25519_cert c;
	const char *why;

	(void)state;
	assert_int_equal(ed25519_cert_parse(cv_t5, sizeof(cv_t5), &c, &why), PARSE_OK);
	assert_null(c.signing_key);
	assert_int_equal(c.key_type, ED25519_CERT_KEY_SHA256_X509);
	assert_non_null(ed25519_cert_check(&c, NULL, CV_NOW));
	assert_null(ed25519_cert_check(&c, cv_ed_sign_pub, CV_NOW));
	assert_string_equal(ed25519_cert_check(&c, cv_ed_id, CV_NOW),
			    "bad Ed25519 certificate signature");
}

static void test_ed25519_cert_is_valid_until_its_expiration_hour(void **state)
{
	struct ed25519_cert c;
	const char *why;
	time_t expires = (time_t)CV_EXP_T4 * 3600;

	(void)state;
	assert_int_equal(ed25519_cert_parse(cv_t4, sizeof(cv_t4), &c, &why), PARSE_OK);
	assert_null(ed25519_cert_check(&c, NULL, expires));
	assert_string_equal(ed25519_cert_check(&c, NULL, expires + 1), "Ed25519 certificate expired");
	assert_int_equal(ed25519_cert_parse(cv_t4_expired, sizeof(cv_t4_expired), &c, &why), PARSE_OK);
	assert_string_equal(ed25519_cert_check(&c, NULL, CV_NOW), "Ed25519 certificate expired");
}

static void test_ed25519_cert_rejects_any_flipped_bit(void **state)
{
	uint8_t buf[sizeof(cv_t4)];
	struct ed25519_cert c;
	const char *why;

	(void)state;
	/* Every byte after the version: changed body or signature must fail. */
	for (size_t i = 1; i < sizeof(buf); i++) {
		memcpy(buf, cv_t4, sizeof(buf));
		buf[i] ^= 0x01;
		enum parse_result r = ed25519_cert_parse(buf, sizeof(buf), &c, &why);
		if (r != PARSE_OK)
			continue;  /* e.g. the extension length or type changed */
		assert_non_null(ed25519_cert_check(&c, cv_ed_id, CV_NOW - 3600));
	}
}

static void test_ed25519_cert_signed_by_other_key_fails(void **state)
{
	struct ed25519_cert c;
	const char *why;

	(void)state;
	assert_int_equal(ed25519_cert_parse(cv_t4_signed_by_other, sizeof(cv_t4_signed_by_other),
					    &c, &why), PARSE_OK);
	assert_string_equal(ed25519_cert_check(&c, NULL, CV_NOW), "bad Ed25519 certificate signature");
}

static void test_ed25519_cert_rejects_unknown_critical_extension(void **state)
{
	struct ed25519_cert c;
	const char *why;

	(void)state;
	assert_int_equal(ed25519_cert_parse(cv_t4_critical_ext, sizeof(cv_t4_critical_ext), &c, &why),
			 PARSE_INVALID);
	assert_string_equal(why, "unknown extension flagged AFFECTS_VALIDATION");
}

static void test_ed25519_cert_skips_unknown_noncritical_extension(void **state)
{
	struct ed25519_cert c;
	const char *why;

	(void)state;
	assert_int_equal(ed25519_cert_parse(cv_t4_noncritical_ext, sizeof(cv_t4_noncritical_ext),
					    &c, &why), PARSE_OK);
	assert_int_equal(c.n_extensions, 2);
	assert_memory_equal(c.signing_key, cv_ed_id, 32);
	assert_null(ed25519_cert_check(&c, NULL, CV_NOW));
}

/* Build an unsigned cert with the given extensions (signature bytes zero). */
static size_t handmade(uint8_t *out, uint8_t version, uint8_t n_ext, const uint8_t *exts,
		       size_t ext_len)
{
	size_t o = 0;

	out[o++] = version;
	out[o++] = 4;
	memset(out + o, 0x11, 4);
	o += 4;
	out[o++] = 1;
	memset(out + o, 0x22, 32);
	o += 32;
	out[o++] = n_ext;
	if (ext_len)
		memcpy(out + o, exts, ext_len);
	o += ext_len;
	memset(out + o, 0, 64);
	return o + 64;
}

static void test_ed25519_cert_rejects_handmade_invalid(void **state)
{
	uint8_t buf[300], ext[80];
	struct ed25519_cert c;
	const char *why;
	size_t n;

	(void)state;
	n = handmade(buf, 2, 0, NULL, 0);
	assert_int_equal(ed25519_cert_parse(buf, n, &c, &why), PARSE_INVALID);
	assert_string_equal(why, "Ed25519 certificate version is not 1");

	/* Signed-with-key extension of 31 and 33 bytes. */
	for (uint16_t len = 31; len <= 33; len += 2) {
		memset(ext, 0x33, sizeof(ext));
		ext[0] = 0, ext[1] = (uint8_t)len, ext[2] = 4, ext[3] = 0;
		n = handmade(buf, 1, 1, ext, 4 + len);
		assert_int_equal(ed25519_cert_parse(buf, n, &c, &why), PARSE_INVALID);
		assert_string_equal(why, "signed-with-ed25519-key extension is not 32 bytes");
	}
	/* Two signed-with-key extensions. */
	memset(ext, 0x33, sizeof(ext));
	ext[0] = 0, ext[1] = 32, ext[2] = 4, ext[3] = 0;
	memcpy(ext + 36, ext, 4);
	n = handmade(buf, 1, 2, ext, 72);
	assert_int_equal(ed25519_cert_parse(buf, n, &c, &why), PARSE_INVALID);
	assert_string_equal(why, "two signed-with-ed25519-key extensions");
	/* One extension announced, none there: the signature is eaten. */
	n = handmade(buf, 1, 1, NULL, 0);
	assert_int_equal(ed25519_cert_parse(buf, n, &c, &why), PARSE_NEED_MORE);
}

static void test_ed25519_cert_every_prefix_needs_more(void **state)
{
	const struct { const uint8_t *p; size_t len; } certs[] = {
		{ cv_t4, sizeof(cv_t4) }, { cv_t5, sizeof(cv_t5) },
		{ cv_t4_noncritical_ext, sizeof(cv_t4_noncritical_ext) },
	};
	struct ed25519_cert c;
	const char *why;
	uint8_t *copy;

	(void)state;
	for (size_t k = 0; k < sizeof(certs) / sizeof(certs[0]); k++) {
		for (size_t len = 0; len < certs[k].len; len++) {
			assert_int_equal(parse_copy(certs[k].p, len, &c, &copy, &why), PARSE_NEED_MORE);
			assert_string_equal(why, "Ed25519 certificate is truncated");
			free(copy);
		}
		assert_int_equal(parse_copy(certs[k].p, certs[k].len, &c, &copy, &why), PARSE_OK);
		free(copy);
	}
}

static void test_ed25519_cert_reports_length_before_trailing_bytes(void **state)
{
	uint8_t buf[sizeof(cv_t5) + 7];
	struct ed25519_cert c;
	const char *why;

	(void)state;
	memcpy(buf, cv_t5, sizeof(cv_t5));
	memset(buf + sizeof(cv_t5), 0xee, 7);
	assert_int_equal(ed25519_cert_parse(buf, sizeof(buf), &c, &why), PARSE_OK);
	assert_int_equal(c.len, sizeof(cv_t5));
	assert_null(ed25519_cert_check(&c, cv_ed_sign_pub, CV_NOW));
}

static void test_ed25519_cert_encoder_matches_independent_certs(void **state)
{
	uint8_t out[200], tls_digest[32];
	struct ed25519_cert_params p4 = {
		.cert_type = 4, .key_type = 1, .exp_hours = (uint32_t)CV_EXP_T4,
		.certified_key = cv_ed_sign_pub, .include_signing_key = true,
	};
	struct ed25519_cert_params p5 = {
		.cert_type = 5, .key_type = 3, .exp_hours = (uint32_t)CV_EXP_T5,
		.certified_key = tls_digest, .include_signing_key = false,
	};

	(void)state;
	/* Ed25519 signatures are deterministic: the bytes must match Python's. */
	assert_int_equal(ed25519_cert_encode(out, sizeof(out), &p4, cv_ed_id_seed), sizeof(cv_t4));
	assert_memory_equal(out, cv_t4, sizeof(cv_t4));
	crypto_sha256(cv_tls_der, sizeof(cv_tls_der), tls_digest);
	assert_int_equal(ed25519_cert_encode(out, sizeof(out), &p5, cv_ed_sign_seed), sizeof(cv_t5));
	assert_memory_equal(out, cv_t5, sizeof(cv_t5));
	for (size_t cap = 0; cap < sizeof(cv_t5); cap++)
		assert_int_equal(ed25519_cert_encode(out, cap, &p5, cv_ed_sign_seed), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ed25519_cert_parses_identity_signing_cert),
		cmocka_unit_test(test_ed25519_cert_checks_with_extension_or_given_key),
		cmocka_unit_test(test_ed25519_cert_without_extension_needs_a_key),
		cmocka_unit_test(test_ed25519_cert_is_valid_until_its_expiration_hour),
		cmocka_unit_test(test_ed25519_cert_rejects_any_flipped_bit),
		cmocka_unit_test(test_ed25519_cert_signed_by_other_key_fails),
		cmocka_unit_test(test_ed25519_cert_rejects_unknown_critical_extension),
		cmocka_unit_test(test_ed25519_cert_skips_unknown_noncritical_extension),
		cmocka_unit_test(test_ed25519_cert_rejects_handmade_invalid),
		cmocka_unit_test(test_ed25519_cert_every_prefix_needs_more),
		cmocka_unit_test(test_ed25519_cert_reports_length_before_trailing_bytes),
		cmocka_unit_test(test_ed25519_cert_encoder_matches_independent_certs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
