/* proto/microdesc: the microdescriptors written by test/vectors/gen_netdoc.py
 * (an independent computation: Python wrote them and put their SHA-256 in
 * the consensus "m" lines) parse, digest to the consensus's values, carry
 * the fields the generator put in, and are refused or reported unwanted
 * when malformed, truncated or altered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/consensus.h"
#include "proto/microdesc.h"
#include "netdoc_vectors.h"

static struct microdesc_batch *load_batch(const char *doc, size_t len)
{
	struct microdesc_batch *b = NULL;
	struct netdoc_err err = { 0 };

	if (microdesc_parse_batch(doc, len, &b, &err) != PARSE_OK)
		fail_msg("%s at line %u", err.reason, err.line);
	return b;
}

/* The consensus's "m" digests, in router order. */
static uint8_t (*consensus_digests(const char *name, size_t *n))[32]
{
	size_t len;
	char *doc = vec_load(name, &len);
	struct consensus *c;
	struct netdoc_err err;
	uint8_t(*d)[32];

	assert_int_equal(consensus_parse(doc, len, &c, &err), PARSE_OK);
	d = malloc(c->n_routers * 32);
	for (size_t i = 0; i < c->n_routers; i++)
		memcpy(d[i], c->routers[i].md_digest, 32);
	*n = c->n_routers;
	consensus_free(c);
	free(doc);
	return d;
}

static void test_microdesc_digests_match_the_consensus_m_lines(void **state)
{
	size_t len, nd;
	char *doc = vec_load("microdescs", &len);
	struct microdesc_batch *b = load_batch(doc, len);
	uint8_t(*want)[32] = consensus_digests("consensus-microdesc", &nd);
	bool *ok = calloc(b->n, 1);

	(void)state;
	assert_int_equal(b->n, 300);
	assert_int_equal(nd, 300);
	for (size_t i = 0; i < b->n; i++)
		assert_memory_equal(b->mds[i].digest, want[i], 32);
	assert_int_equal(microdesc_check_wanted(b, (const uint8_t(*)[32])want, nd, ok), 300);
	for (size_t i = 0; i < b->n; i++)
		assert_true(ok[i]);
	free(ok);
	free(want);
	microdesc_batch_free(b);
	free(doc);
}

static void test_microdesc_fields_match_the_generator(void **state)
{
	size_t len;
	char *doc = vec_load("microdescs", &len);
	struct microdesc_batch *b = load_batch(doc, len);

	(void)state;
	for (size_t i = 0; i < b->n; i++) {
		const struct microdesc *m = &b->mds[i];
		assert_int_equal(m->has_tap_key, i % 3 != 2);
		assert_int_equal(m->family.len > 0, i % 5 == 0);
		assert_true(m->has_ed25519);
		assert_true(m->has_protos && protover_supports(&m->protos, PROTOVER_RELAY, 4));
		assert_int_equal(policy_summary_allows(&m->p, 80), i % 4 == 0);
		assert_int_equal(policy_summary_allows(&m->p, 443), i % 4 == 0);
		assert_int_equal(policy_summary_allows(&m->p, 1000), i % 4 == 0);
		assert_int_equal(policy_summary_allows(&m->p, 2000), i % 4 == 0);
		assert_false(policy_summary_allows(&m->p, 2001));
		assert_false(policy_summary_allows(&m->p, 81));
		assert_int_equal(policy_summary_allows(&m->p6, 443), i % 7 == 0);
		assert_false(policy_summary_allows(&m->p6, 80));
		assert_int_equal(m->text[m->text_len - 1], '\n');
		assert_memory_equal(m->text, "onion-key\n", 10);
	}
	assert_int_equal(b->mds[0].family.len, 2 * 41 + 1);
	microdesc_batch_free(b);
	free(doc);
}

static void test_microdesc_missing_policy_lines_allow_no_port(void **state)
{
	const char *doc = "onion-key\nntor-onion-key AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
	struct microdesc_batch *b = load_batch(doc, strlen(doc));

	(void)state;
	assert_false(policy_summary_allows(&b->mds[0].p, 80));
	assert_false(policy_summary_allows(&b->mds[0].p6, 443));
	assert_false(policy_summary_allows(&b->mds[0].p, 1));
	microdesc_batch_free(b);
}

static void test_microdesc_reject_summary_allows_unlisted_ports(void **state)
{
	const char *doc = "onion-key\nntor-onion-key AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
			  "p reject 25,119,135-139,445\n";
	struct microdesc_batch *b = load_batch(doc, strlen(doc));

	(void)state;
	assert_false(policy_summary_allows(&b->mds[0].p, 25));
	assert_false(policy_summary_allows(&b->mds[0].p, 137));
	assert_true(policy_summary_allows(&b->mds[0].p, 80));
	assert_true(policy_summary_allows(&b->mds[0].p, 65535));
	assert_false(b->mds[0].has_tap_key);
	microdesc_batch_free(b);
}

static void test_microdesc_altered_text_is_reported_unwanted(void **state)
{
	size_t len, blen, nd;
	char *doc = vec_load("microdescs-small", &len);
	char *bad = vec_replace(doc, len, "p reject 1-65535", "p reject 1-65534", &blen);
	struct microdesc_batch *b = load_batch(bad, blen);
	uint8_t(*want)[32] = consensus_digests("consensus-small", &nd);
	bool ok[3];

	(void)state;
	assert_int_equal(b->n, 3);
	assert_int_equal(microdesc_check_wanted(b, (const uint8_t(*)[32])want, nd, ok), 2);
	assert_true(ok[0]);
	assert_false(ok[1]); /* the altered one: its digest matches no m line */
	assert_true(ok[2]);
	free(want);
	microdesc_batch_free(b);
	free(bad);
	free(doc);
}

static void test_microdesc_duplicate_in_a_batch_counts_once(void **state)
{
	size_t len, nd;
	char *doc = vec_load("microdescs-small", &len);
	char *twice = malloc(2 * len);
	uint8_t(*want)[32] = consensus_digests("consensus-small", &nd);
	bool ok[6];

	(void)state;
	memcpy(twice, doc, len);
	memcpy(twice + len, doc, len);
	struct microdesc_batch *b = load_batch(twice, 2 * len);
	assert_int_equal(b->n, 6);
	assert_int_equal(microdesc_check_wanted(b, (const uint8_t(*)[32])want, nd, ok), 3);
	assert_true(ok[0] && ok[1] && ok[2]);
	assert_false(ok[3] || ok[4] || ok[5]);
	assert_int_equal(microdesc_check_wanted(b, NULL, 0, ok), 0);
	free(want);
	microdesc_batch_free(b);
	free(twice);
	free(doc);
}

static void test_microdesc_annotations_are_skipped_and_not_digested(void **state)
{
	size_t len, alen;
	char *doc = vec_load("microdescs-small", &len);
	char *ann = vec_replace(doc, len, "onion-key", "@last-listed 2026-11-27 12:00:00\nonion-key", &alen);
	struct microdesc_batch *plain = load_batch(doc, len);
	struct microdesc_batch *b = load_batch(ann, alen);

	(void)state;
	assert_int_equal(b->n, plain->n);
	for (size_t i = 0; i < b->n; i++)
		assert_memory_equal(b->mds[i].digest, plain->mds[i].digest, 32);
	assert_int_equal(b->mds[0].line, 2);
	microdesc_batch_free(b);
	microdesc_batch_free(plain);
	free(ann);
	free(doc);
}

static void test_microdesc_every_prefix_is_refused_or_a_shorter_batch(void **state)
{
	size_t len;
	char *doc = vec_load("microdescs-small", &len);
	struct microdesc_batch *full = load_batch(doc, len);

	(void)state;
	for (size_t n = 0; n < len; n++) {
		char *copy = malloc(n ? n : 1); /* exact size: ASan catches overreads */
		struct microdesc_batch *b;
		struct netdoc_err err;
		memcpy(copy, doc, n);
		enum parse_result pr = microdesc_parse_batch(copy, n, &b, &err);
		if (pr == PARSE_OK) {
			/* A cut at a line end: all but the last are whole and the same. */
			assert_int_equal(copy[n - 1], '\n');
			assert_true(b->n <= full->n);
			for (size_t i = 0; i + 1 < b->n; i++)
				assert_memory_equal(b->mds[i].digest, full->mds[i].digest, 32);
			microdesc_batch_free(b);
		} else {
			assert_true(err.line >= 1);
		}
		free(copy);
	}
	microdesc_batch_free(full);
	free(doc);
}

static void expect_invalid(const char *doc, const char *reason, unsigned line)
{
	struct microdesc_batch *b;
	struct netdoc_err err = { 0 };

	assert_int_equal(microdesc_parse_batch(doc, strlen(doc), &b, &err), PARSE_INVALID);
	assert_string_equal(err.reason, reason);
	assert_int_equal(err.line, line);
}

#define NTOR "ntor-onion-key AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"

static void test_microdesc_rejects_malformed_items_with_line_numbers(void **state)
{
	(void)state;
	expect_invalid("onion-key\np accept 80\n", "microdescriptor lacks ntor-onion-key", 1);
	expect_invalid("onion-key\nntor-onion-key AAAA\n", "bad or repeated microdescriptor item", 2);
	expect_invalid("onion-key\n" NTOR "p accept 80\np accept 443\n",
		       "bad or repeated microdescriptor item", 4);
	expect_invalid("onion-key\n" NTOR "p accept 443-80\n", "bad or repeated microdescriptor item", 3);
	expect_invalid("onion-key\n" NTOR "p accept 65536\n", "bad or repeated microdescriptor item", 3);
	expect_invalid("onion-key\n" NTOR "p accept 0\n", "bad or repeated microdescriptor item", 3);
	expect_invalid("onion-key\n" NTOR "p allow 80\n", "bad or repeated microdescriptor item", 3);
	expect_invalid("onion-key\n" NTOR "p accept 80-\n", "bad or repeated microdescriptor item", 3);
	expect_invalid("onion-key\n" NTOR "id ed25519 AAAA\n", "bad or repeated microdescriptor item", 3);
	expect_invalid(NTOR "onion-key\n", "microdescriptor does not start with onion-key", 1);
	expect_invalid("onion-key extra\n" NTOR, "bad onion-key", 1);
	expect_invalid("onion-key\n-----BEGIN SIGNATURE-----\nAAAA\n-----END SIGNATURE-----\n" NTOR,
		       "bad onion-key", 1);
	expect_invalid("onion-key\n-----BEGIN RSA PUBLIC KEY-----\nAAA*\n-----END RSA PUBLIC KEY-----\n" NTOR,
		       "bad onion-key", 1);
	static const char nul[] = "onion-key\n" NTOR "p accept\0 80\n";
	struct microdesc_batch *b;
	struct netdoc_err err;
	assert_int_equal(microdesc_parse_batch(nul, sizeof(nul) - 1, &b, &err), PARSE_INVALID);
	assert_string_equal(err.reason, "NUL byte");
	assert_int_equal(err.line, 3);
}

/* Real microdescriptors of a private tor 0.4.9 network (test/testnet):
 * as served by /tor/micro/d/ and as tor caches them with "@last-listed"
 * annotations; every digest is one the real consensus asked for. */
static void test_microdesc_real_testnet_digests_are_all_wanted(void **state)
{
	static const char *const files[] = { "testnet-micro-d", "testnet-cached-microdescs" };
	size_t nd;
	uint8_t(*want)[32] = consensus_digests("testnet-consensus-microdesc", &nd);

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		size_t len;
		char *doc = vec_load(files[f], &len);
		struct microdesc_batch *b = load_batch(doc, len);
		bool ok[64];
		assert_true(b->n >= 1 && b->n <= 64);
		assert_int_equal(microdesc_check_wanted(b, (const uint8_t(*)[32])want, nd, ok), b->n);
		microdesc_batch_free(b);
		free(doc);
	}
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_microdesc_digests_match_the_consensus_m_lines),
		cmocka_unit_test(test_microdesc_fields_match_the_generator),
		cmocka_unit_test(test_microdesc_missing_policy_lines_allow_no_port),
		cmocka_unit_test(test_microdesc_reject_summary_allows_unlisted_ports),
		cmocka_unit_test(test_microdesc_altered_text_is_reported_unwanted),
		cmocka_unit_test(test_microdesc_duplicate_in_a_batch_counts_once),
		cmocka_unit_test(test_microdesc_annotations_are_skipped_and_not_digested),
		cmocka_unit_test(test_microdesc_every_prefix_is_refused_or_a_shorter_batch),
		cmocka_unit_test(test_microdesc_rejects_malformed_items_with_line_numbers),
		cmocka_unit_test(test_microdesc_real_testnet_digests_are_all_wanted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
