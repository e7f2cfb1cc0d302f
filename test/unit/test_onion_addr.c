/* v3 onion addresses: known answers from independent implementations and
 * the spec's rule set (rend-spec-v3 section 6, 2.2.7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/base64.h"
#include "core/crypto.h"
#include "proto/onion_addr.h"
#include "proto/socks.h"

static void hex2bin(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

/* Pairs published by other projects (bitcoin-s, a Python onion tool, and
 * tor's own hs_build_address.py with the RFC 8032 test-1 key). */
static const struct {
	const char *pub;
	const char *addr;
} known[] = {
	{ "98908ec971ad17171365865a249c420d04a66f103f973a62d8404ce2f4af1ee2",
	  "tcii5slrvulroe3fqzncjhccbuckm3yqh6ltuywyibgof5fpd3rpycyd.onion" },
	{ "53f75b474bcc984e37efbdc130c19c95d93f4cdbfea50d3eb61118ea65446ef5",
	  "kp3vwr2lzsme4n7pxxatbqm4sxmt6tg372sq2pvwcemouzken325dkad.onion" },
	{ "b858d727e5f97d316dc2089cc1cc3d9966146526213557daec62097b914f88b4",
	  "xbmnoj7f7f6tc3ocbcomdtb5tftbizjgee2vpwxmmiexxekprc2o76yd.onion" },
};

static void test_onion_addr_parses_and_encodes_known_pairs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		uint8_t want[32], got[32];
		char enc[ONION_ADDR_STR_LEN + 1];

		hex2bin(known[i].pub, want, 32);
		assert_int_equal(onion_addr_parse(known[i].addr, strlen(known[i].addr), got), ONION_ADDR_OK);
		assert_memory_equal(got, want, 32);
		onion_addr_encode(enc, want);
		assert_string_equal(enc, known[i].addr);
	}
}

static void test_onion_addr_accepts_subdomains_uppercase_and_root_dot(void **state)
{
	uint8_t want[32], got[32];
	const char *names[] = {
		"www.tcii5slrvulroe3fqzncjhccbuckm3yqh6ltuywyibgof5fpd3rpycyd.onion",
		"a.b.tcii5slrvulroe3fqzncjhccbuckm3yqh6ltuywyibgof5fpd3rpycyd.onion",
		"TCII5SLRVULROE3FQZNCJHCCBUCKM3YQH6LTUYWYIBGOF5FPD3RPYCYD.ONION",
		"tcii5slrvulroe3fqzncjhccbuckm3yqh6ltuywyibgof5fpd3rpycyd.onion.",
	};

	(void)state;
	hex2bin(known[0].pub, want, 32);
	for (size_t i = 0; i < 4; i++) {
		memset(got, 0, 32);
		assert_int_equal(onion_addr_parse(names[i], strlen(names[i]), got), ONION_ADDR_OK);
		assert_memory_equal(got, want, 32);
	}
}

/* Build base32(key | SHA3-256(".onion checksum" | key | v)[:2] | v).onion
 * here, independently of onion_addr_encode. */
static const char *addr_with_version(char out[80], const char *pub_hex, uint8_t v)
{
	uint8_t in[15 + 32 + 1], d[32], raw[35];

	memcpy(in, ".onion checksum", 15);
	hex2bin(pub_hex, in + 15, 32);
	in[47] = v;
	crypto_sha3_256(in, sizeof(in), d);
	memcpy(raw, in + 15, 32);
	memcpy(raw + 32, d, 2);
	raw[34] = v;
	assert_int_equal(base32_encode(out, 80, raw, 35), 56);
	strcpy(out + 56, ".onion");
	return out;
}

static enum onion_addr_err parse_str(const char *s)
{
	uint8_t k[32];

	return onion_addr_parse(s, strlen(s), k);
}

static void test_onion_addr_rejects_each_kind_of_bad_address(void **state)
{
	char buf[80];

	(void)state;
	assert_int_equal(parse_str("example.com"), ONION_ADDR_NOT_ONION);
	assert_int_equal(parse_str(""), ONION_ADDR_NOT_ONION);
	assert_int_equal(parse_str(".onion"), ONION_ADDR_BAD_LENGTH);
	/* A v2 address (16 characters) is refused by length. */
	assert_int_equal(parse_str("expyuzz4wqqyqhjn.onion"), ONION_ADDR_BAD_LENGTH);
	/* A character outside the base32 alphabet. */
	strcpy(buf, known[0].addr);
	buf[3] = '1';
	assert_int_equal(parse_str(buf), ONION_ADDR_BAD_BASE32);
	/* One changed key character: the checksum no longer matches. */
	strcpy(buf, known[0].addr);
	buf[0] = buf[0] == 'a' ? 'b' : 'a';
	assert_int_equal(parse_str(buf), ONION_ADDR_BAD_CHECKSUM);
	/* Version 4 with its own correct checksum: refused for the version. */
	assert_int_equal(parse_str(addr_with_version(buf, known[0].pub, 4)), ONION_ADDR_BAD_VERSION);
	assert_int_equal(parse_str(addr_with_version(buf, known[0].pub, 3)), ONION_ADDR_OK);
}

static void test_onion_addr_rejects_torsion_and_small_order_keys(void **state)
{
	/* The identity point (y = 1) encoded as an address with a correct
	 * checksum and version: the spec's 2.2.7 check must refuse it. */
	uint8_t ident[32] = { 1 };
	char enc[ONION_ADDR_STR_LEN + 1];

	(void)state;
	onion_addr_encode(enc, ident);
	assert_int_equal(parse_str(enc), ONION_ADDR_BAD_KEY);
}

static void test_onion_addr_every_prefix_is_refused_without_overread(void **state)
{
	const char *a = known[1].addr;
	size_t n = strlen(a);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		uint8_t k[32];
		char *copy = test_malloc(i ? i : 1);

		memcpy(copy, a, i);
		assert_int_not_equal(onion_addr_parse(copy, i, k), ONION_ADDR_OK);
		test_free(copy);
	}
}

static void test_onion_addr_failures_map_to_socks_f6_with_reasons(void **state)
{
	(void)state;
	for (int e = ONION_ADDR_NOT_ONION; e <= ONION_ADDR_BAD_KEY; e++) {
		assert_int_equal(onion_addr_socks_reply((enum onion_addr_err)e), SOCKS5_HS_BAD_ADDRESS);
		assert_true(strlen(onion_addr_strerror((enum onion_addr_err)e)) > 5);
	}
	assert_true(onion_addr_is_onion("x.ONION", 7));
	assert_false(onion_addr_is_onion("onion", 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_onion_addr_parses_and_encodes_known_pairs),
		cmocka_unit_test(test_onion_addr_accepts_subdomains_uppercase_and_root_dot),
		cmocka_unit_test(test_onion_addr_rejects_each_kind_of_bad_address),
		cmocka_unit_test(test_onion_addr_rejects_torsion_and_small_order_keys),
		cmocka_unit_test(test_onion_addr_every_prefix_is_refused_without_overread),
		cmocka_unit_test(test_onion_addr_failures_map_to_socks_f6_with_reasons),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
