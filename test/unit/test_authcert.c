/* proto/authcert: real authority key certificates made by Debian's
 * tor-gencert (test/vectors/gen_netdoc.py; an independent computation)
 * parse and verify; tampered, truncated and malformed ones are refused
 * with the reason and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/base64.h"
#include "proto/authcert.h"
#include "netdoc_vectors.h"

/* Length of the first certificate in keys-all (through its last object). */
static size_t first_cert_len(const char *doc)
{
	const char *second = strstr(doc + 1, "dir-key-certificate-version");

	assert_non_null(second);
	return (size_t)(second - doc);
}

static void test_authcert_parses_all_tor_gencert_certificates(void **state)
{
	size_t len, alen, n;
	char *doc = vec_load("keys-all", &len);
	char *auths = vec_load("authorities", &alen);
	struct authcert **certs;
	struct netdoc_err err;
	uint8_t fp[20];

	(void)state;
	assert_int_equal(authcert_parse_all(doc, len, &certs, &n, &err), PARSE_OK);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(base16_decode(fp, 20, auths + 41 * i, 40), 20);
		assert_memory_equal(certs[i]->identity_digest, fp, 20);
		assert_true(certs[i]->expires > certs[i]->published);
		assert_int_equal(certs[i]->dir_ipv4, 0x7f000001);
		assert_int_equal(certs[i]->dir_port, 7000 + i);
		assert_true(crypto_rsa_bits(certs[i]->signing_key) >= 1024);
		assert_true(crypto_rsa_fingerprint(certs[i]->signing_key, fp));
		assert_memory_equal(certs[i]->signing_key_digest, fp, 20);
	}
	/* The rogue authority's certificate is valid too, just not trusted. */
	assert_memory_not_equal(certs[3]->identity_digest, certs[0]->identity_digest, 20);
	authcert_free_all(certs, n);
	free(doc);
	free(auths);
}

static void test_authcert_parse_reports_consumed_bytes_of_one_certificate(void **state)
{
	size_t len, used = 0;
	char *doc = vec_load("keys-all", &len);
	struct authcert *c;
	struct netdoc_err err;

	(void)state;
	assert_int_equal(authcert_parse(doc, len, &used, &c, &err), PARSE_OK);
	assert_int_equal(used, first_cert_len(doc));
	authcert_free(c);
	free(doc);
}

static void test_authcert_every_proper_prefix_needs_more_or_is_invalid(void **state)
{
	size_t len, used;
	char *doc = vec_load("keys-all", &len);
	size_t one = first_cert_len(doc);
	struct authcert *c;
	struct netdoc_err err;

	(void)state;
	for (size_t n = 0; n < one; n++) {
		char *copy = malloc(n ? n : 1); /* exact size: ASan catches overreads */
		memcpy(copy, doc, n);
		enum parse_result pr = authcert_parse(copy, n, &used, &c, &err);
		assert_int_not_equal(pr, PARSE_OK);
		if (pr == PARSE_NEED_MORE)
			assert_non_null(strstr(err.reason, "truncated"));
		free(copy);
	}
	free(doc);
}

static void expect_invalid(const char *doc, size_t len, const char *reason, unsigned line)
{
	size_t used;
	struct authcert *c;
	struct netdoc_err err;

	assert_int_equal(authcert_parse(doc, len, &used, &c, &err), PARSE_INVALID);
	assert_string_equal(err.reason, reason);
	assert_int_equal(err.line, line);
}

static void test_authcert_rejects_a_tampered_byte_in_the_signed_portion(void **state)
{
	size_t len, blen;
	char *doc = vec_load("keys-all", &len);
	char *bad = vec_replace(doc, first_cert_len(doc), "127.0.0.1:7000", "127.0.0.1:7009", &blen);

	(void)state;
	expect_invalid(bad, blen, "bad dir-key-certification signature",
		       vec_line_of(bad, "dir-key-certification"));
	free(bad);
	free(doc);
}

static void test_authcert_rejects_a_fingerprint_that_is_not_the_identity_key(void **state)
{
	size_t len, blen;
	char *doc = vec_load("keys-all", &len);
	char *bad = vec_replace(doc, first_cert_len(doc), "fingerprint ", "fingerprint 0", &blen);
	char *bad2;

	(void)state;
	/* One more hex digit: not 40 digits, refused on its own line. */
	expect_invalid(bad, blen, "bad or repeated certificate item", 3);
	free(bad);
	/* Well-formed but another authority's fingerprint. */
	const char *other = strstr(doc + first_cert_len(doc), "fingerprint ");
	char line[64];
	memcpy(line, other, 52);
	line[52] = '\0';
	const char *mine = strstr(doc, "fingerprint ");
	char from[64];
	memcpy(from, mine, 52);
	from[52] = '\0';
	bad2 = vec_replace(doc, first_cert_len(doc), from, line, &blen);
	expect_invalid(bad2, blen, "fingerprint does not match dir-identity-key",
		       vec_line_of(bad2, "dir-key-certification"));
	free(bad2);
	free(doc);
}

static void test_authcert_rejects_missing_repeated_and_bad_base64_items(void **state)
{
	size_t len, blen;
	char *doc = vec_load("keys-all", &len);
	size_t one = first_cert_len(doc);
	char *bad;

	(void)state;
	bad = vec_replace(doc, one, "dir-key-expires", "dir-key-expired", &blen);
	expect_invalid(bad, blen, "certificate lacks a required item",
		       vec_line_of(bad, "dir-key-certification"));
	free(bad);
	bad = vec_replace(doc, one, "dir-key-expires", "dir-key-published 2026-01-01 00:00:00\ndir-key-expires",
			  &blen);
	expect_invalid(bad, blen, "bad or repeated certificate item", 5);
	free(bad);
	bad = vec_replace(doc, one, "-----BEGIN RSA PUBLIC KEY-----\n", "-----BEGIN RSA PUBLIC KEY-----\n!", &blen);
	expect_invalid(bad, blen, "bad or repeated certificate item", 6);
	free(bad);
	bad = vec_replace(doc, one, "dir-key-expires 2027", "dir-key-expires 1999", &blen);
	expect_invalid(bad, blen, "certificate expires before it was published",
		       vec_line_of(bad, "dir-key-certification"));
	free(bad);
	free(doc);
}

static void test_authcert_rejects_a_crosscert_from_another_certificate(void **state)
{
	size_t len, blen;
	char *doc = vec_load("keys-all", &len);
	size_t one = first_cert_len(doc);
	struct authcert **certs;
	struct netdoc_err err;
	size_t n;
	char *bad;

	(void)state;
	/* Certificate 0's dir-key-crosscert replaced by certificate 1's: the
	 * certification fails first since it covers the crosscert. */
	const char *x0 = strstr(doc, "dir-key-crosscert");
	const char *x1 = strstr(doc + one, "dir-key-crosscert");
	const char *e0 = strstr(x0, "-----END ID SIGNATURE-----");
	char from[1024], to[1024];
	size_t fl = (size_t)(e0 - x0);
	memcpy(from, x0, fl);
	from[fl] = '\0';
	memcpy(to, x1, fl);
	to[fl] = '\0';
	bad = vec_replace(doc, len, from, to, &blen);
	assert_int_equal(authcert_parse_all(bad, blen, &certs, &n, &err), PARSE_INVALID);
	assert_string_equal(err.reason, "bad dir-key-certification signature");
	assert_int_equal(err.line, vec_line_of(bad, "dir-key-certification"));
	free(bad);
	free(doc);
}

static void test_authcert_rejects_a_crosscert_made_by_another_signing_key(void **state)
{
	size_t len;
	char *doc = vec_load("cert-bad-crosscert", &len);

	(void)state;
	/* Correctly certified by the identity key, but the crosscert is not by
	 * this certificate's signing key. */
	expect_invalid(doc, len, "bad dir-key-crosscert signature",
		       vec_line_of(doc, "dir-key-certification"));
	free(doc);
}

static void test_authcert_accepts_a_crosscert_without_the_id_prefix(void **state)
{
	size_t len, used, klen;
	char *doc = vec_load("cert-no-id-prefix", &len);
	char *keys = vec_load("keys-all", &klen);
	struct authcert *c, *orig;
	struct netdoc_err err;

	(void)state;
	assert_non_null(strstr(doc, "-----BEGIN SIGNATURE-----\n"));
	assert_null(strstr(doc, "ID SIGNATURE"));
	assert_int_equal(authcert_parse(doc, len, &used, &c, &err), PARSE_OK);
	assert_int_equal(authcert_parse(keys, klen, &used, &orig, &err), PARSE_OK);
	assert_memory_equal(c->identity_digest, orig->identity_digest, 20);
	assert_memory_equal(c->signing_key_digest, orig->signing_key_digest, 20);
	authcert_free(c);
	authcert_free(orig);
	free(doc);
	free(keys);
}

static void test_authcert_is_live_between_published_and_expires(void **state)
{
	size_t len, used;
	char *doc = vec_load("keys-all", &len);
	struct authcert *c;
	struct netdoc_err err;

	(void)state;
	assert_int_equal(authcert_parse(doc, len, &used, &c, &err), PARSE_OK);
	assert_true(authcert_is_live(c, c->published));
	assert_true(authcert_is_live(c, c->expires - 1));
	assert_false(authcert_is_live(c, c->expires));
	assert_true(authcert_is_live(c, c->published - AUTHCERT_PUBLISHED_SKEW));
	assert_false(authcert_is_live(c, c->published - AUTHCERT_PUBLISHED_SKEW - 1));
	authcert_free(c);
	free(doc);
}

static void test_authcert_rejects_other_documents_and_empty_input(void **state)
{
	const char *doc = "network-status-version 3 microdesc\n";
	struct authcert **certs;
	struct netdoc_err err;
	size_t n;

	(void)state;
	expect_invalid(doc, strlen(doc), "expected dir-key-certificate-version 3", 1);
	assert_int_equal(authcert_parse_all("\n\n", 2, &certs, &n, &err), PARSE_NEED_MORE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_authcert_parses_all_tor_gencert_certificates),
		cmocka_unit_test(test_authcert_parse_reports_consumed_bytes_of_one_certificate),
		cmocka_unit_test(test_authcert_every_proper_prefix_needs_more_or_is_invalid),
		cmocka_unit_test(test_authcert_rejects_a_tampered_byte_in_the_signed_portion),
		cmocka_unit_test(test_authcert_rejects_a_fingerprint_that_is_not_the_identity_key),
		cmocka_unit_test(test_authcert_rejects_missing_repeated_and_bad_base64_items),
		cmocka_unit_test(test_authcert_rejects_a_crosscert_from_another_certificate),
		cmocka_unit_test(test_authcert_rejects_a_crosscert_made_by_another_signing_key),
		cmocka_unit_test(test_authcert_accepts_a_crosscert_without_the_id_prefix),
		cmocka_unit_test(test_authcert_is_live_between_published_and_expires),
		cmocka_unit_test(test_authcert_rejects_other_documents_and_empty_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
