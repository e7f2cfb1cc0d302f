/* The initiator's checks of a responder's CERTS cell (tor-spec.txt 4.2) and
 * the expected-identity comparison, against a certificate set made by
 * test/vectors/gen_certs.py (an independent computation of the formats with
 * python3-cryptography: RSA-1024 identity, X.509 identity and link certs,
 * Ed25519 types 4 and 5, RSA->Ed25519 cross-cert type 7), one defect at a
 * time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/certs.h"
#include "test/vectors/certs/certs_vectors.h"

#define ENT(t, arr) { .type = (t), .len = sizeof(arr), .body = (arr) }

/* The valid set, as a relay sends it: types 1, 2, 4, 5, 7. */
static struct cell_cert_entry set[6];
static size_t set_n;

static void set_reset(void)
{
	const struct cell_cert_entry valid[] = {
		ENT(1, cv_t1), ENT(2, cv_t2), ENT(4, cv_t4), ENT(5, cv_t5), ENT(7, cv_t7),
	};
	memcpy(set, valid, sizeof(valid));
	set_n = 5;
}

static void set_replace(uint8_t type, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < set_n; i++) {
		if (set[i].type == type) {
			set[i].body = p;
			set[i].len = (uint16_t)len;
			return;
		}
	}
	fail_msg("no entry of type %u", type);
}

static void set_remove(uint8_t type)
{
	for (size_t i = 0; i < set_n; i++) {
		if (set[i].type == type) {
			memmove(&set[i], &set[i + 1], (set_n - i - 1) * sizeof(set[0]));
			set_n--;
			return;
		}
	}
	fail_msg("no entry of type %u", type);
}

static char err[256];

static enum parse_result validate_at(time_t now, struct relay_identity *id)
{
	return certs_validate_responder(set, set_n, cv_tls_der, sizeof(cv_tls_der), now, id, err,
					sizeof(err));
}

/* The set must fail at CV_NOW with a reason containing want. */
static void expect_failure(const char *want)
{
	struct relay_identity id;

	assert_int_equal(validate_at(CV_NOW, &id), PARSE_INVALID);
	if (!strstr(err, want))
		fail_msg("reason \"%s\" lacks \"%s\"", err, want);
}

static void test_certs_valid_set_yields_both_identities(void **state)
{
	struct relay_identity id;

	(void)state;
	set_reset();
	assert_int_equal(validate_at(CV_NOW, &id), PARSE_OK);
	assert_memory_equal(id.rsa_id, cv_rsa_id, 20);
	assert_memory_equal(id.ed_id, cv_ed_id, 32);
}

static void test_certs_valid_cell_body_validates(void **state)
{
	struct relay_identity id;

	(void)state;
	assert_int_equal(certs_validate_responder_cell(cv_body, sizeof(cv_body), cv_tls_der,
						       sizeof(cv_tls_der), CV_NOW, &id, err,
						       sizeof(err)), PARSE_OK);
	assert_memory_equal(id.rsa_id, cv_rsa_id, 20);
	assert_memory_equal(id.ed_id, cv_ed_id, 32);
}

static void test_certs_ignores_link_cert_order_and_unknown_types(void **state)
{
	struct relay_identity id;
	const struct cell_cert_entry shuffled[] = {
		ENT(7, cv_t7), { .type = 9, .len = 3, .body = cv_t7 }, ENT(5, cv_t5),
		ENT(4, cv_t4), ENT(2, cv_t2),
	};

	(void)state;
	assert_int_equal(certs_validate_responder(shuffled, 5, cv_tls_der, sizeof(cv_tls_der), CV_NOW,
						  &id, err, sizeof(err)), PARSE_OK);
	assert_memory_equal(id.ed_id, cv_ed_id, 32);
}

static void test_certs_rejects_missing_certificate_of_each_type(void **state)
{
	const uint8_t needed[] = { 2, 5, 7 };
	char want[32];

	(void)state;
	for (size_t i = 0; i < sizeof(needed); i++) {
		set_reset();
		set_remove(needed[i]);
		snprintf(want, sizeof(want), "lacks a certificate of type %u", needed[i]);
		expect_failure(want);
	}
	set_reset();
	set_remove(4);
	expect_failure("no Ed25519 identity certificate (type 4)");
}

static void test_certs_rejects_rsa_only_responder(void **state)
{
	(void)state;
	set_reset();
	set_remove(4);
	set_remove(5);
	set_remove(7);
	expect_failure("RSA-only responders are not supported");
}

static void test_certs_rejects_duplicate_certificate_of_each_type(void **state)
{
	char want[48];

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		set_reset();
		set[set_n++] = set[i];
		snprintf(want, sizeof(want), "two certificates of type %u", set[i].type);
		expect_failure(want);
	}
}

static void test_certs_rejects_expired_ed25519_certs(void **state)
{
	(void)state;
	set_reset();
	set_replace(4, cv_t4_expired, sizeof(cv_t4_expired));
	expect_failure("type 4 certificate: Ed25519 certificate expired");
	set_reset();
	set_replace(5, cv_t5_expired, sizeof(cv_t5_expired));
	expect_failure("type 5 certificate: Ed25519 certificate expired");
	set_reset();
	set_replace(7, cv_t7_expired, sizeof(cv_t7_expired));
	expect_failure("type 7 certificate: cross-certificate expired");
}

static void test_certs_rejects_the_valid_set_after_the_link_cert_expires(void **state)
{
	struct relay_identity id;

	(void)state;
	set_reset();
	assert_int_equal(validate_at((time_t)CV_EXP_T5 * 3600, &id), PARSE_OK);
	assert_int_equal(validate_at((time_t)CV_EXP_T5 * 3600 + 1, &id), PARSE_INVALID);
	assert_non_null(strstr(err, "type 5 certificate: Ed25519 certificate expired"));
}

static void test_certs_rejects_expired_or_future_x509_identity(void **state)
{
	struct relay_identity id;

	(void)state;
	set_reset();
	set_replace(2, cv_t2_expired, sizeof(cv_t2_expired));
	expect_failure("RSA identity certificate (type 2) expired");
	/* It expired 3 days before CV_NOW: 47 hours after, tor's slop admits it. */
	assert_int_equal(validate_at(CV_NOW - 3 * 86400 + 47 * 3600, &id), PARSE_OK);
	assert_int_equal(validate_at(CV_NOW - 3 * 86400 + 49 * 3600, &id), PARSE_INVALID);
	set_reset();
	set_replace(2, cv_t2_not_yet_valid, sizeof(cv_t2_not_yet_valid));
	expect_failure("RSA identity certificate (type 2) not valid until");
}

/* Copy arr with its byte at index i (from the end when negative) flipped. */
static uint8_t *flipped(const uint8_t *p, size_t len, long i)
{
	uint8_t *c = malloc(len);

	assert_non_null(c);
	memcpy(c, p, len);
	c[i < 0 ? (long)len + i : i] ^= 0x01;
	return c;
}

static void test_certs_rejects_a_wrong_signature_on_each_cert(void **state)
{
	const struct { uint8_t type; const uint8_t *p; size_t len; const char *want; } cases[] = {
		{ 2, cv_t2, sizeof(cv_t2), "(type 2) is not self-signed" },
		{ 4, cv_t4, sizeof(cv_t4), "type 4 certificate: bad Ed25519 certificate signature" },
		{ 5, cv_t5, sizeof(cv_t5), "type 5 certificate: bad Ed25519 certificate signature" },
		{ 7, cv_t7, sizeof(cv_t7), "type 7 certificate: cross-certificate is not signed" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *bad = flipped(cases[i].p, cases[i].len, -1);

		set_reset();
		set_replace(cases[i].type, bad, cases[i].len);
		expect_failure(cases[i].want);
		free(bad);
	}
}

static void test_certs_rejects_certs_signed_by_the_wrong_key(void **state)
{
	(void)state;
	set_reset();
	set_replace(4, cv_t4_signed_by_other, sizeof(cv_t4_signed_by_other));
	expect_failure("type 4 certificate: bad Ed25519 certificate signature");
	set_reset();
	set_replace(5, cv_t5_signed_by_id, sizeof(cv_t5_signed_by_id));
	expect_failure("type 5 certificate: bad Ed25519 certificate signature");
	set_reset();
	set_replace(2, cv_t2_not_self_signed, sizeof(cv_t2_not_self_signed));
	expect_failure("(type 2) is not self-signed");
}

static void test_certs_rejects_link_cert_not_matching_tls_cert(void **state)
{
	struct relay_identity id;

	(void)state;
	set_reset();
	set_replace(5, cv_t5_wrong_tls, sizeof(cv_t5_wrong_tls));
	expect_failure("type 5 certificate does not certify the TLS certificate");
	set_reset();
	assert_int_equal(certs_validate_responder(set, set_n, cv_t2, sizeof(cv_t2), CV_NOW, &id, err,
						  sizeof(err)), PARSE_INVALID);
	assert_non_null(strstr(err, "does not certify the TLS certificate"));
}

static void test_certs_accepts_link_cert_with_legacy_key_type_1(void **state)
{
	struct relay_identity id;

	(void)state;
	set_reset();
	set_replace(5, cv_t5_keytype01, sizeof(cv_t5_keytype01));
	assert_int_equal(validate_at(CV_NOW, &id), PARSE_OK);
}

static void test_certs_rejects_crosscert_from_other_rsa_key_or_for_other_ed_key(void **state)
{
	(void)state;
	set_reset();
	set_replace(7, cv_t7_other_rsa, sizeof(cv_t7_other_rsa));
	expect_failure("type 7 certificate: cross-certificate is not signed by the RSA identity key");
	set_reset();
	set_replace(7, cv_t7_wrong_ed, sizeof(cv_t7_wrong_ed));
	expect_failure("type 7 certificate: cross-certificate certifies another Ed25519 key");
}

static void test_certs_rejects_rsa_2048_identity(void **state)
{
	(void)state;
	set_reset();
	set_replace(2, cv_t2_rsa2048, sizeof(cv_t2_rsa2048));
	expect_failure("RSA identity key has 2048 bits, not 1024");
}

static void test_certs_rejects_unknown_critical_extension(void **state)
{
	struct relay_identity id;

	(void)state;
	set_reset();
	set_replace(4, cv_t4_critical_ext, sizeof(cv_t4_critical_ext));
	expect_failure("type 4 certificate: unknown extension flagged AFFECTS_VALIDATION");
	set_reset();
	set_replace(4, cv_t4_noncritical_ext, sizeof(cv_t4_noncritical_ext));
	assert_int_equal(validate_at(CV_NOW, &id), PARSE_OK);
	assert_memory_equal(id.ed_id, cv_ed_id, 32);
}

static void test_certs_rejects_identity_cert_without_identity_or_of_wrong_type(void **state)
{
	(void)state;
	set_reset();
	set_replace(4, cv_t4_no_signing_ext, sizeof(cv_t4_no_signing_ext));
	expect_failure("type 4 certificate does not name the identity key");
	set_reset();
	set_replace(4, cv_t4_as_type6, sizeof(cv_t4_as_type6));
	expect_failure("type 4 entry holds an Ed25519 cert of type 6");
}

static void test_certs_rejects_trailing_bytes_and_garbage(void **state)
{
	uint8_t buf[sizeof(cv_t7) + 1];

	(void)state;
	set_reset();
	set_replace(4, cv_t4_noncritical_ext, sizeof(cv_t4_noncritical_ext) - 6);
	expect_failure("type 4 certificate");
	memcpy(buf, cv_t7, sizeof(cv_t7));
	buf[sizeof(cv_t7)] = 0;
	set_reset();
	set_replace(7, buf, sizeof(buf));
	expect_failure("type 7 certificate has trailing bytes");
	set_reset();
	set_replace(2, cv_t4, sizeof(cv_t4));
	expect_failure("cannot parse the RSA identity certificate (type 2)");
}

static void test_certs_every_proper_prefix_of_each_cert_is_rejected(void **state)
{
	const uint8_t types[] = { 2, 4, 5, 7 };
	const struct cell_cert_entry *e;

	(void)state;
	set_reset();
	for (size_t k = 0; k < sizeof(types); k++) {
		size_t full;
		const uint8_t *orig;

		set_reset();
		e = &set[0];
		while (e->type != types[k])
			e++;
		orig = e->body;
		full = e->len;
		for (size_t len = 0; len < full; len++) {
			uint8_t *copy = malloc(len ? len : 1);

			assert_non_null(copy);
			memcpy(copy, orig, len);
			set_replace(types[k], copy, len);
			/* X.509 prefixes do not parse; the others are truncated. */
			expect_failure(types[k] == 2 ? "cannot parse the RSA identity certificate"
						     : "certificate is truncated");
			free(copy);
		}
	}
}

static void test_certs_every_proper_prefix_of_the_cell_is_rejected(void **state)
{
	struct relay_identity id;

	(void)state;
	for (size_t len = 0; len < sizeof(cv_body); len++) {
		uint8_t *copy = malloc(len ? len : 1);

		assert_non_null(copy);
		memcpy(copy, cv_body, len);
		assert_int_equal(certs_validate_responder_cell(copy, len, cv_tls_der, sizeof(cv_tls_der),
							       CV_NOW, &id, err, sizeof(err)),
				 PARSE_INVALID);
		assert_true(err[0] != '\0');
		free(copy);
	}
}

static void test_identity_check_accepts_match_and_unset_expectations(void **state)
{
	struct relay_identity id;

	(void)state;
	memcpy(id.rsa_id, cv_rsa_id, 20);
	memcpy(id.ed_id, cv_ed_id, 32);
	assert_true(relay_identity_check_expected(&id, cv_rsa_id, cv_ed_id, err, sizeof(err)));
	assert_true(relay_identity_check_expected(&id, NULL, cv_ed_id, err, sizeof(err)));
	assert_true(relay_identity_check_expected(&id, cv_rsa_id, NULL, err, sizeof(err)));
	assert_true(relay_identity_check_expected(&id, NULL, NULL, err, sizeof(err)));
}

static void test_identity_check_names_both_identities_on_mismatch(void **state)
{
	struct relay_identity id;
	uint8_t other_rsa[20];
	char other_hex[41];

	(void)state;
	memcpy(id.rsa_id, cv_rsa_id, 20);
	memcpy(id.ed_id, cv_ed_id, 32);
	assert_false(relay_identity_check_expected(&id, NULL, cv_ed_sign_pub, err, sizeof(err)));
	assert_non_null(strstr(err, "wanted RSA (any) + ed25519 " CV_ED_SIGN_PUB_B64));
	assert_non_null(strstr(err, "got RSA " CV_RSA_ID_HEX " + ed25519 " CV_ED_ID_B64));
	assert_non_null(strstr(err, "mismatch (ed25519)"));

	memcpy(other_rsa, cv_rsa_id, 20);
	other_rsa[0] ^= 0xff;
	relay_identity_rsa_hex(other_rsa, other_hex);
	assert_int_equal(strlen(other_hex), 40);
	assert_memory_equal(&other_hex[2], &CV_RSA_ID_HEX[2], 38);
	assert_false(relay_identity_check_expected(&id, other_rsa, cv_ed_id, err, sizeof(err)));
	assert_non_null(strstr(err, "mismatch (RSA)"));
	assert_non_null(strstr(err, other_hex));
	assert_non_null(strstr(err, "got RSA " CV_RSA_ID_HEX));
}

static void test_identity_formats_match_tor(void **state)
{
	char hex[41], b64[44];

	(void)state;
	relay_identity_rsa_hex(cv_rsa_id, hex);
	assert_string_equal(hex, CV_RSA_ID_HEX);
	relay_identity_ed_b64(cv_ed_id, b64);
	assert_string_equal(b64, CV_ED_ID_B64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_certs_valid_set_yields_both_identities),
		cmocka_unit_test(test_certs_valid_cell_body_validates),
		cmocka_unit_test(test_certs_ignores_link_cert_order_and_unknown_types),
		cmocka_unit_test(test_certs_rejects_missing_certificate_of_each_type),
		cmocka_unit_test(test_certs_rejects_rsa_only_responder),
		cmocka_unit_test(test_certs_rejects_duplicate_certificate_of_each_type),
		cmocka_unit_test(test_certs_rejects_expired_ed25519_certs),
		cmocka_unit_test(test_certs_rejects_the_valid_set_after_the_link_cert_expires),
		cmocka_unit_test(test_certs_rejects_expired_or_future_x509_identity),
		cmocka_unit_test(test_certs_rejects_a_wrong_signature_on_each_cert),
		cmocka_unit_test(test_certs_rejects_certs_signed_by_the_wrong_key),
		cmocka_unit_test(test_certs_rejects_link_cert_not_matching_tls_cert),
		cmocka_unit_test(test_certs_accepts_link_cert_with_legacy_key_type_1),
		cmocka_unit_test(test_certs_rejects_crosscert_from_other_rsa_key_or_for_other_ed_key),
		cmocka_unit_test(test_certs_rejects_rsa_2048_identity),
		cmocka_unit_test(test_certs_rejects_unknown_critical_extension),
		cmocka_unit_test(test_certs_rejects_identity_cert_without_identity_or_of_wrong_type),
		cmocka_unit_test(test_certs_rejects_trailing_bytes_and_garbage),
		cmocka_unit_test(test_certs_every_proper_prefix_of_each_cert_is_rejected),
		cmocka_unit_test(test_certs_every_proper_prefix_of_the_cell_is_rejected),
		cmocka_unit_test(test_identity_check_accepts_match_and_unset_expectations),
		cmocka_unit_test(test_identity_check_names_both_identities_on_mismatch),
		cmocka_unit_test(test_identity_formats_match_tor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
