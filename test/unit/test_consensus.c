/* proto/consensus: a microdesc consensus written and signed by
 * test/vectors/gen_netdoc.py (an independent computation: Python writes the
 * text and signs it with tor-gencert's authority signing keys) parses into
 * the values the generator put there, verifies against the trusted
 * authorities, and is refused when signatures are too few, by unknown or
 * expired keys, over tampered text, or when it is too old. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/base64.h"
#include "proto/consensus.h"
#include "netdoc_vectors.h"

struct fixture {
	struct authcert **certs;
	size_t ncerts;
	uint8_t trusted[3][20];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	size_t len, alen;
	char *doc = vec_load("keys-all", &len);
	char *auths = vec_load("authorities", &alen);
	struct netdoc_err err;

	if (authcert_parse_all(doc, len, &f->certs, &f->ncerts, &err) != PARSE_OK || f->ncerts != 4)
		return -1;
	for (size_t i = 0; i < 3; i++)
		if (base16_decode(f->trusted[i], 20, auths + 41 * i, 40) != 20)
			return -1;
	free(doc);
	free(auths);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	authcert_free_all(f->certs, f->ncerts);
	free(f);
	return 0;
}

static struct consensus *load(const char *name)
{
	size_t len;
	char *doc = vec_load(name, &len);
	struct consensus *c = NULL;
	struct netdoc_err err = { 0 };

	if (consensus_parse(doc, len, &c, &err) != PARSE_OK)
		fail_msg("%s: %s at line %u", name, err.reason, err.line);
	free(doc);
	return c;
}

static enum parse_result verify(struct fixture *f, const struct consensus *c, size_t ncerts,
				time_t now, char *why)
{
	return consensus_verify(c, (const struct authcert *const *)f->certs, ncerts,
				(const uint8_t(*)[20])f->trusted, 3, now, why, 128);
}

static void test_consensus_preamble_params_and_weights_match_the_generator(void **state)
{
	struct consensus *c = load("consensus-microdesc");
	time_t va;

	(void)state;
	assert_true(netdoc_parse_time((struct netdoc_span){ strstr(c->doc, "valid-after ") + 12, 10 },
				      (struct netdoc_span){ strstr(c->doc, "valid-after ") + 23, 8 }, &va));
	assert_int_equal(c->valid_after, va);
	assert_int_equal(c->fresh_until, va + 3600);
	assert_int_equal(c->valid_until, va + 3 * 3600);
	assert_int_equal(c->vote_delay, 300);
	assert_int_equal(c->consensus_method, 34);
	assert_true(c->known_flags & RFLAG_MIDDLEONLY);
	assert_int_equal(consensus_param(c, "cc_alg", 0, 0, 2), 2);
	assert_int_equal(consensus_param(c, "cc_cwnd_min", 31, -100, 1000), -5);
	assert_int_equal(consensus_param(c, "cc_cwnd_min", 31, 0, 1000), 0); /* clamped */
	assert_int_equal(consensus_param(c, "bwweightscale", 1, 1, 100000), 10000);
	assert_int_equal(consensus_param(c, "absent_param", 77, 0, 100), 77);
	assert_true(c->weights.present);
	assert_int_equal(c->weights.wgg, 5859);
	assert_int_equal(c->weights.wmg, 4141);
	assert_int_equal(c->weights.wgd, 0);
	assert_int_equal(c->weights.wmm, 10000);
	assert_true(c->has_srv_current && c->has_srv_previous);
	assert_true(protover_supports(&c->required_client, PROTOVER_LINK, 4));
	assert_true(protover_supports(&c->required_client, PROTOVER_FLOWCTRL, 1));
	assert_int_equal(c->n_authorities, 3);
	assert_string_equal(c->authorities[2].nickname, "auth2");
	assert_int_equal(c->authorities[2].dir_port, 7002);
	consensus_free(c);
}

static void test_consensus_router_entries_match_the_generator(void **state)
{
	struct consensus *c = load("consensus-microdesc");
	char nick[32];

	(void)state;
	assert_int_equal(c->n_routers, 300);
	for (size_t i = 0; i < c->n_routers; i++) {
		const struct consensus_router *r = &c->routers[i];
		snprintf(nick, sizeof(nick), "relay%03zu", i);
		assert_string_equal(r->nickname, nick);
		assert_int_equal(r->bandwidth, 100 + 10 * i);
		assert_int_equal(r->bw_unmeasured, i % 9 == 0);
		assert_int_equal(r->has_ipv6, i % 10 == 0);
		assert_int_equal(!!(r->flags & RFLAG_GUARD), i % 2 == 0);
		assert_int_equal(!!(r->flags & RFLAG_EXIT), i % 3 == 0);
		assert_int_equal(!!(r->flags & RFLAG_HSDIR), i % 6 == 0);
		assert_true(r->flags & RFLAG_RUNNING);
		assert_int_equal(r->or_port, 9001 + i % 7);
		assert_true(protover_supports(&r->protos, PROTOVER_RELAY, 4));
		assert_true(protover_supports(&r->protos, PROTOVER_LINK, 5));
		assert_true(protover_supports(&r->protos, PROTOVER_FLOWCTRL, 2));
		assert_true(protover_supports(&r->protos, PROTOVER_HSDIR, 2));
		assert_false(protover_supports(&r->protos, PROTOVER_RELAY, 7));
		assert_true(r->version.len > 10 &&
			    netdoc_span_eq((struct netdoc_span){ r->version.p, 10 }, "Tor 0.4.9."));
		assert_ptr_equal(consensus_find_router(c, r->identity), r);
	}
	assert_int_equal(c->routers[10].ipv6_port, 9001 + 10 % 7);
	assert_int_equal(c->routers[10].ipv6[15], 11);
	consensus_free(c);
}

static void test_consensus_signed_portion_ends_after_the_first_signature_keyword(void **state)
{
	struct consensus *c = load("consensus-microdesc");
	uint8_t d[32];

	(void)state;
	const char *first = strstr(c->doc, "\ndirectory-signature ") + 1;
	assert_int_equal(c->signed_len, (size_t)(first - c->doc) + strlen("directory-signature "));
	crypto_sha256(c->doc, c->signed_len, d);
	assert_memory_equal(d, c->digest_sha256, 32);
	assert_int_equal(c->n_sigs, 3);
	assert_int_equal(c->sigs[0].alg, CONSENSUS_SIG_SHA256);
	assert_int_equal(c->sigs[0].line, vec_line_of(c->doc, "directory-signature "));
	consensus_free(c);
}

static void test_consensus_verifies_with_all_trusted_authorities(void **state)
{
	struct fixture *f = *state;
	struct consensus *c = load("consensus-microdesc");
	char why[128];

	assert_int_equal(verify(f, c, 3, c->valid_after + 600, why), PARSE_OK);
	assert_string_equal(why, "3 of 3 trusted authorities signed");
	assert_int_equal(consensus_liveness(c, c->valid_after + 600), CONSENSUS_LIVE);
	consensus_free(c);
	c = load("consensus-small");
	assert_int_equal(verify(f, c, 4, c->valid_after, why), PARSE_OK);
	consensus_free(c);
}

static void test_consensus_reasonably_live_for_24_hours_after_valid_until(void **state)
{
	struct fixture *f = *state;
	struct consensus *c = load("consensus-small");
	char why[128];

	assert_int_equal(consensus_liveness(c, c->valid_until + 3600), CONSENSUS_REASONABLY_LIVE);
	assert_int_equal(verify(f, c, 3, c->valid_until + 3600, why), PARSE_OK);
	assert_int_equal(consensus_liveness(c, c->valid_until + 24 * 3600), CONSENSUS_TOO_OLD);
	assert_int_equal(verify(f, c, 3, c->valid_until + 24 * 3600, why), PARSE_INVALID);
	assert_string_equal(why, "consensus is expired more than 24 hours ago");
	assert_int_equal(verify(f, c, 3, c->valid_after - 2 * 3600, why), PARSE_INVALID);
	assert_string_equal(why, "consensus is not yet valid");
	consensus_free(c);
}

static void test_consensus_too_few_signatures_is_invalid(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *doc = vec_load("consensus-small", &len);
	/* Keep only the first signature: 1 of 3 is not more than half. */
	char *second = strstr(strstr(doc, "\ndirectory-signature ") + 1, "\ndirectory-signature ");
	struct consensus *c;
	struct netdoc_err err;
	char why[128];

	assert_int_equal(consensus_parse(doc, (size_t)(second + 1 - doc), &c, &err), PARSE_OK);
	assert_int_equal(c->n_sigs, 1);
	assert_int_equal(verify(f, c, 3, c->valid_after, why), PARSE_INVALID);
	assert_string_equal(why, "only 1 of 3 trusted authorities signed validly (0 certificates missing)");
	consensus_free(c);
	free(doc);
}

static void test_consensus_missing_certificates_need_more(void **state)
{
	struct fixture *f = *state;
	struct consensus *c = load("consensus-small");
	char why[128];

	/* Only authority 0's certificate: the other two could still be fetched. */
	assert_int_equal(verify(f, c, 1, c->valid_after, why), PARSE_NEED_MORE);
	assert_string_equal(why, "only 1 of 3 trusted authorities signed validly (2 certificates missing)");
	consensus_free(c);
}

static void test_consensus_signature_by_an_unknown_key_does_not_count(void **state)
{
	struct fixture *f = *state;
	struct consensus *c = load("consensus-rogue");
	char why[128];

	/* Signed by trusted authority 0 and the rogue authority, whose
	 * certificate is valid and present but whose identity is not trusted. */
	assert_int_equal(c->n_sigs, 2);
	assert_int_equal(verify(f, c, 4, c->valid_after, why), PARSE_INVALID);
	assert_string_equal(why, "only 1 of 3 trusted authorities signed validly (0 certificates missing)");
	consensus_free(c);
}

static void test_consensus_signatures_by_expired_certificates_do_not_count(void **state)
{
	struct fixture *f = *state;
	struct consensus *c = load("consensus-small");
	time_t saved[2] = { f->certs[1]->expires, f->certs[2]->expires };
	char why[128];

	f->certs[1]->expires = c->valid_after - 1;
	f->certs[2]->expires = c->valid_after - 1;
	assert_int_equal(verify(f, c, 3, c->valid_after, why), PARSE_INVALID);
	f->certs[1]->expires = saved[0];
	f->certs[2]->expires = saved[1];
	assert_int_equal(verify(f, c, 3, c->valid_after, why), PARSE_OK);
	consensus_free(c);
}

static void test_consensus_tampered_byte_in_signed_portion_fails_verification(void **state)
{
	struct fixture *f = *state;
	size_t len, blen;
	char *doc = vec_load("consensus-small", &len);
	char *bad = vec_replace(doc, len, "w Bandwidth=110", "w Bandwidth=910", &blen);
	struct consensus *c;
	struct netdoc_err err;
	char why[128];

	assert_int_equal(consensus_parse(bad, blen, &c, &err), PARSE_OK);
	assert_int_equal(verify(f, c, 3, c->valid_after, why), PARSE_INVALID);
	assert_string_equal(why, "only 0 of 3 trusted authorities signed validly (0 certificates missing)");
	consensus_free(c);
	free(bad);
	free(doc);
}

static void test_consensus_every_truncation_needs_more_or_is_short_of_signatures(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *doc = vec_load("consensus-small", &len);
	char why[128];

	for (size_t n = 0; n < len; n++) {
		char *copy = malloc(n ? n : 1); /* exact size: ASan catches overreads */
		struct consensus *c;
		struct netdoc_err err;
		memcpy(copy, doc, n);
		enum parse_result pr = consensus_parse(copy, n, &c, &err);
		if (pr == PARSE_OK) {
			/* Only a cut right after a whole signature is a document. */
			assert_true(c->n_sigs < 3);
			assert_memory_equal(copy + n - 24, "-----END SIGNATURE-----\n", 24);
			if (c->n_sigs == 1)
				assert_int_equal(verify(f, c, 3, c->valid_after, why), PARSE_INVALID);
			consensus_free(c);
		} else {
			assert_int_not_equal(pr, PARSE_OK);
			assert_true(err.line >= 1);
		}
		free(copy);
	}
	free(doc);
}

static void expect_invalid(const char *from, const char *to, const char *reason, const char *at)
{
	size_t len, blen;
	char *doc = vec_load("consensus-small", &len);
	char *bad = vec_replace(doc, len, from, to, &blen);
	struct consensus *c;
	struct netdoc_err err = { 0 };

	assert_int_equal(consensus_parse(bad, blen, &c, &err), PARSE_INVALID);
	assert_string_equal(err.reason, reason);
	assert_int_equal(err.line, vec_line_of(bad, at));
	free(bad);
	free(doc);
}

static void test_consensus_rejects_duplicate_missing_and_malformed_items(void **state)
{
	(void)state;
	expect_invalid("fresh-until", "valid-after 2026-01-01 00:00:00\nfresh-until",
		       "bad, misplaced or repeated item", "valid-after 2026-01-01");
	expect_invalid("known-flags", "unknown-flags", "preamble lacks a required item", "dir-source");
	expect_invalid("network-status-version 3 microdesc", "network-status-version 3",
		       "not a microdesc consensus (network-status-version 3 microdesc)", "network");
	expect_invalid("params CircuitPriorityHalflifeMsec=30000", "params cc_alg=1 cc_alg=2",
		       "bad, misplaced or repeated item", "params");
	expect_invalid("\nm ", "\nm !!!", "bad, misplaced or repeated item", "m !!!");
	expect_invalid("\ns Fast Running V2Dir Valid\n", "\n",
		       "router entry lacks its m or s line", "r relay002");
	expect_invalid("directory-footer\n", "", "directory-signature before directory-footer",
		       "directory-signature");
	expect_invalid("-----BEGIN SIGNATURE-----\n", "-----BEGIN SIGNATURE-----\n*", "bad directory-signature",
		       "directory-signature");
	expect_invalid("-----END SIGNATURE-----\n", "-----END SIGNATURE-----\nextra-item\n",
		       "item after the signatures", "extra-item");
	expect_invalid("vote-status consensus", "vote-status vote", "bad, misplaced or repeated item",
		       "vote-status");
	expect_invalid("r relay001", "r relay001!", "bad or unsorted r line", "r relay001");
}

static void test_consensus_ignores_signatures_with_unknown_algorithms(void **state)
{
	struct fixture *f = *state;
	size_t len, blen;
	char *doc = vec_load("consensus-small", &len);
	char *odd = vec_replace(doc, len, "directory-signature sha256", "directory-signature sha3-512",
				&blen);
	struct consensus *c;
	struct netdoc_err err;
	char why[128];

	assert_int_equal(consensus_parse(odd, blen, &c, &err), PARSE_OK);
	assert_int_equal(c->n_sigs, 2);
	assert_int_equal(verify(f, c, 3, c->valid_after, why), PARSE_OK);
	assert_string_equal(why, "2 of 3 trusted authorities signed");
	consensus_free(c);
	free(odd);
	free(doc);
}

static void test_consensus_rejects_validity_times_out_of_order(void **state)
{
	size_t len, blen;
	char *doc = vec_load("consensus-small", &len);
	const char *fu = strstr(doc, "fresh-until ");
	char line[40];
	struct consensus *c;
	struct netdoc_err err;

	(void)state;
	/* fresh-until set to valid-after: no fresh interval. */
	memcpy(line, fu, 31);
	line[31] = '\0';
	char repl[40] = "fresh-until ";
	memcpy(repl + 12, strstr(doc, "valid-after ") + 12, 19);
	repl[31] = '\0';
	char *bad = vec_replace(doc, len, line, repl, &blen);
	assert_int_equal(consensus_parse(bad, blen, &c, &err), PARSE_INVALID);
	assert_string_equal(err.reason, "validity times out of order");
	assert_int_equal(err.line, vec_line_of(bad, "dir-source"));
	free(bad);
	free(doc);
}

static void test_consensus_rejects_unsorted_router_entries(void **state)
{
	size_t len;
	char *doc = vec_load("consensus-small", &len);
	/* Swap the identities of the first two routers. */
	char *r0 = strstr(doc, "\nr relay000 ") + 12;
	char *r1 = strstr(doc, "\nr relay001 ") + 12;
	char tmp[27];
	struct consensus *c;
	struct netdoc_err err;

	(void)state;
	memcpy(tmp, r0, 27);
	memcpy(r0, r1, 27);
	memcpy(r1, tmp, 27);
	assert_int_equal(consensus_parse(doc, len, &c, &err), PARSE_INVALID);
	assert_string_equal(err.reason, "bad or unsorted r line");
	assert_int_equal(err.line, vec_line_of(doc, "r relay001"));
	free(doc);
}

/* Real documents from a private tor 0.4.9 network (test/testnet, copied
 * from an authority's cache and its DirPort): they parse and verify. */
static void test_consensus_real_testnet_consensus_verifies(void **state)
{
	size_t clen, klen, alen, n;
	char *cdoc = vec_load("testnet-consensus-microdesc", &clen);
	char *kdoc = vec_load("testnet-keys-all", &klen);
	char *auths = vec_load("testnet-authorities", &alen);
	struct authcert **certs;
	struct consensus *c;
	struct netdoc_err err = { 0 };
	uint8_t trusted[3][20];
	char why[128];

	(void)state;
	assert_int_equal(authcert_parse_all(kdoc, klen, &certs, &n, &err), PARSE_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(base16_decode(trusted[i], 20, auths + 41 * i, 40), 20);
	if (consensus_parse(cdoc, clen, &c, &err) != PARSE_OK)
		fail_msg("%s at line %u", err.reason, err.line);
	assert_int_equal(c->n_routers, 9);
	assert_int_equal(c->n_sigs, 3);
	assert_int_equal(c->consensus_method, 35);
	assert_int_equal(consensus_param(c, "cc_cwnd_min", 31, 1, 1000), 124);
	assert_false(c->weights.present); /* this early consensus has none */
	assert_int_equal(c->weights.wgg, -1);
	assert_true(protover_supports(&c->routers[0].protos, PROTOVER_RELAY, 4));
	assert_int_equal(consensus_verify(c, (const struct authcert *const *)certs, n,
					  (const uint8_t(*)[20])trusted, 3, c->valid_after, why,
					  sizeof(why)),
			 PARSE_OK);
	assert_string_equal(why, "3 of 3 trusted authorities signed");
	consensus_free(c);
	authcert_free_all(certs, n);
	free(cdoc);
	free(kdoc);
	free(auths);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consensus_preamble_params_and_weights_match_the_generator),
		cmocka_unit_test(test_consensus_router_entries_match_the_generator),
		cmocka_unit_test(test_consensus_signed_portion_ends_after_the_first_signature_keyword),
		cmocka_unit_test(test_consensus_verifies_with_all_trusted_authorities),
		cmocka_unit_test(test_consensus_reasonably_live_for_24_hours_after_valid_until),
		cmocka_unit_test(test_consensus_too_few_signatures_is_invalid),
		cmocka_unit_test(test_consensus_missing_certificates_need_more),
		cmocka_unit_test(test_consensus_signature_by_an_unknown_key_does_not_count),
		cmocka_unit_test(test_consensus_signatures_by_expired_certificates_do_not_count),
		cmocka_unit_test(test_consensus_tampered_byte_in_signed_portion_fails_verification),
		cmocka_unit_test(test_consensus_every_truncation_needs_more_or_is_short_of_signatures),
		cmocka_unit_test(test_consensus_rejects_duplicate_missing_and_malformed_items),
		cmocka_unit_test(test_consensus_ignores_signatures_with_unknown_algorithms),
		cmocka_unit_test(test_consensus_rejects_validity_times_out_of_order),
		cmocka_unit_test(test_consensus_rejects_unsorted_router_entries),
		cmocka_unit_test(test_consensus_real_testnet_consensus_verifies),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
