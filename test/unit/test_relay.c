/* Relay cells (proto/relay.h) follow tor-spec 5.1.2, 5.6, 6, 7.3.1, prop 324
 * and rend-spec-v3. Expected bytes are written out by hand from the spec's
 * field tables, not produced by our encoders. Prefixes are copied into
 * exact-size heap buffers so that ASan catches any read past the input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/bytes.h"
#include "proto/relay.h"

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	assert_non_null(d);
	if (n)
		memcpy(d, p, n);
	return d;
}

typedef enum parse_result (*body_parser)(const uint8_t *data, size_t len, void *out);

/* Parse every proper prefix of a valid body; each must be INVALID. */
static void assert_prefixes_invalid(const uint8_t *body, size_t len, body_parser parse, void *out)
{
	for (size_t n = 0; n < len; n++) {
		uint8_t *d = dup_exact(body, n);

		assert_int_equal(parse(d, n, out), PARSE_INVALID);
		free(d);
	}
}

/* --- Header --- */

static void test_relay_header_round_trips_with_zero_then_random_padding(void **state)
{
	uint8_t p[CELL_PAYLOAD_LEN], q[CELL_PAYLOAD_LEN];
	struct relay_msg m;

	(void)state;
	memset(p, 0xcc, sizeof(p));
	assert_int_equal(relay_encode(p, RELAY_DATA, 0x1234, (const uint8_t *)"hello", 5, NULL), 5);
	/* Command 2, Recognized 0000, StreamID 1234, Digest 00000000,
	 * Length 0005, "hello", then four zero bytes (tor-spec 6.1). */
	static const uint8_t want[] = { 2, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 5, 'h', 'e', 'l', 'l',
					'o', 0, 0, 0, 0 };
	assert_memory_equal(p, want, sizeof(want));
	assert_int_equal(relay_parse(p, &m, NULL), PARSE_OK);
	assert_int_equal(m.command, RELAY_DATA);
	assert_int_equal(m.stream_id, 0x1234);
	assert_int_equal(m.recognized, 0);
	assert_int_equal(m.length, 5);
	assert_ptr_equal(m.data, p + RELAY_HEADER_LEN);
	/* The padding after the four zeros is random: two encodings differ. */
	memcpy(q, p, sizeof(q));
	relay_encode(p, RELAY_DATA, 0x1234, (const uint8_t *)"hello", 5, NULL);
	assert_memory_not_equal(p + 20, q + 20, CELL_PAYLOAD_LEN - 20);
}

static void test_relay_full_data_cell_has_no_padding(void **state)
{
	uint8_t p[CELL_PAYLOAD_LEN], data[RELAY_DATA_MAX];
	struct relay_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	assert_int_equal(relay_encode(p, RELAY_DATA, 1, data, sizeof(data), NULL), RELAY_DATA_MAX);
	assert_int_equal(relay_parse(p, &m, NULL), PARSE_OK);
	assert_int_equal(m.length, 498);
	assert_memory_equal(m.data, data, sizeof(data));
	assert_int_equal(relay_encode(p, RELAY_DATA, 1, data, RELAY_DATA_MAX + 1, NULL), -EMSGSIZE);
	/* 495..497 bytes leave 1..3 bytes of padding: all zero. */
	relay_encode(p, RELAY_DATA, 1, data, 496, NULL);
	assert_int_equal(p[CELL_PAYLOAD_LEN - 2], 0);
	assert_int_equal(p[CELL_PAYLOAD_LEN - 1], 0);
}

static void test_relay_pad_rng_pads_with_zeros_then_fresh_random_bytes(void **state)
{
	uint8_t p[CELL_PAYLOAD_LEN], q[CELL_PAYLOAD_LEN], zero[CELL_PAYLOAD_LEN] = { 0 };
	struct relay_pad_rng rng;
	struct relay_msg m;

	(void)state;
	relay_pad_rng_init(&rng);
	memset(p, 0xcc, sizeof(p));
	/* The body may already sit in the payload (zero-copy path). */
	memcpy(p + RELAY_HEADER_LEN, "abc", 3);
	relay_header_write(p, RELAY_DATA, 9, 3, &rng);
	assert_int_equal(relay_parse(p, &m, NULL), PARSE_OK);
	assert_int_equal(m.length, 3);
	assert_memory_equal(m.data, "abc", 3);
	assert_memory_equal(p + 14, zero, 4);
	assert_memory_not_equal(p + 18, zero, CELL_PAYLOAD_LEN - 18);
	memcpy(q, p, sizeof(q));
	relay_encode(p, RELAY_DATA, 9, p + RELAY_HEADER_LEN, 3, &rng);
	assert_memory_equal(p, q, 18);
	assert_memory_not_equal(p + 18, q + 18, CELL_PAYLOAD_LEN - 18);
	/* After RELAY_PAD_REKEY bytes the keystream is re-keyed. */
	rng.used = RELAY_PAD_REKEY;
	relay_pad_rng_fill(&rng, q, 16);
	assert_int_equal(rng.used, 16);
	relay_pad_rng_clear(&rng);
}

static void test_relay_parse_rejects_length_over_498(void **state)
{
	uint8_t p[CELL_PAYLOAD_LEN] = { RELAY_DATA };
	struct relay_msg m;
	const char *why = NULL;

	(void)state;
	be16_store(p + 9, 499);
	assert_int_equal(relay_parse(p, &m, &why), PARSE_INVALID);
	assert_non_null(why);
	be16_store(p + 9, 0xffff);
	assert_int_equal(relay_parse(p, &m, NULL), PARSE_INVALID);
}

static void test_relay_unknown_commands_parse_but_are_reported(void **state)
{
	uint8_t p[CELL_PAYLOAD_LEN] = { 200 };
	struct relay_msg m;

	(void)state;
	assert_int_equal(relay_parse(p, &m, NULL), PARSE_OK);
	assert_false(relay_command_is_known(m.command));
	assert_string_equal(relay_command_name(m.command), "UNKNOWN");
	assert_false(relay_command_is_known(16));
	assert_false(relay_command_is_known(0));
	assert_true(relay_command_is_known(RELAY_XON));
	assert_string_equal(relay_command_name(RELAY_EXTEND2), "EXTEND2");
	assert_string_equal(relay_command_name(RELAY_RENDEZVOUS_ESTABLISHED), "RENDEZVOUS_ESTABLISHED");
	assert_string_equal(relay_command_name(RELAY_CONFLUX_SWITCH), "CONFLUX_SWITCH");
}

/* --- BEGIN --- */

static enum parse_result begin_p(const uint8_t *d, size_t n, void *o)
{
	return relay_begin_parse(d, n, o, NULL);
}

static void test_relay_begin_encodes_addrport_and_flags_exactly(void **state)
{
	/* "example.com:443" NUL, FLAGS 00000001 (IPv6 okay; tor-spec 6.2). */
	static const uint8_t want[] = "example.com:443\0\0\0\0\1";
	uint8_t out[RELAY_DATA_MAX];
	struct relay_begin b;
	ssize_t n = relay_begin_encode(out, sizeof(out), "example.com", 11, 443,
				       RELAY_BEGIN_FLAG_IPV6_OK);

	(void)state;
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(out, want, sizeof(want) - 1);
	assert_int_equal(relay_begin_parse(out, (size_t)n, &b, NULL), PARSE_OK);
	assert_int_equal(b.host_len, 11);
	assert_memory_equal(b.host, "example.com", 11);
	assert_int_equal(b.port, 443);
	assert_int_equal(b.flags, RELAY_BEGIN_FLAG_IPV6_OK);
	/* Prefixes up to the NUL are INVALID; after it flags are optional. */
	assert_prefixes_invalid(out, 16, begin_p, &b);
}

static void test_relay_begin_brackets_ipv6_and_omits_zero_flags(void **state)
{
	uint8_t out[RELAY_DATA_MAX];
	struct relay_begin b;
	ssize_t n = relay_begin_encode(out, sizeof(out), "2001:db8::1", 11, 80, 0);

	(void)state;
	assert_int_equal(n, 17);
	assert_memory_equal(out, "[2001:db8::1]:80\0", 17);
	assert_int_equal(relay_begin_parse(out, (size_t)n, &b, NULL), PARSE_OK);
	assert_int_equal(b.host_len, 11);
	assert_memory_equal(b.host, "2001:db8::1", 11);
	assert_int_equal(b.port, 80);
	assert_int_equal(b.flags, 0);
	assert_int_equal(relay_begin_encode(out, sizeof(out), "a", 1, 0, 0), -EINVAL);
	assert_int_equal(relay_begin_encode(out, sizeof(out), "", 0, 1, 0), -EINVAL);
	assert_int_equal(relay_begin_encode(out, 5, "abcd", 4, 1, 0), -ENOSPC);
}

/* rend-spec-v3 4.2: BEGIN to an onion service has an empty address. */
static void test_relay_begin_onion_is_colon_port_nul_and_flags(void **state)
{
	uint8_t out[32];

	(void)state;
	assert_int_equal(relay_begin_onion_encode(out, sizeof(out), 80, 0), 4);
	assert_memory_equal(out, ":80\0", 4);
	assert_int_equal(relay_begin_onion_encode(out, sizeof(out), 65535, 1), 11);
	assert_memory_equal(out, ":65535\0\0\0\0\1", 11);
	assert_int_equal(relay_begin_onion_encode(out, sizeof(out), 0, 0), -EINVAL);
	assert_int_equal(relay_begin_onion_encode(out, 3, 80, 0), -ENOSPC);
}

static void test_relay_begin_rejects_bad_addrports(void **state)
{
	static const char *const bad[] = {
		"example.com", "example.com:", ":80", "example.com:0", "example.com:65536",
		"example.com:+80", "example.com:8o", "2001:db8::1:80", "[::1:80", "[]:80",
		"example.com:123456",
	};
	struct relay_begin b;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;

		assert_int_equal(relay_begin_parse((const uint8_t *)bad[i], strlen(bad[i]) + 1, &b, &why),
				 PARSE_INVALID);
		assert_non_null(why);
	}
	/* No NUL at all. */
	assert_int_equal(relay_begin_parse((const uint8_t *)"a.b:1", 5, &b, NULL), PARSE_INVALID);
	assert_int_equal(relay_begin_parse((const uint8_t *)"a.b:65535", 10, &b, NULL), PARSE_OK);
	assert_int_equal(b.port, 65535);
}

/* --- END --- */

static void test_relay_end_exitpolicy_carries_address_and_ttl(void **state)
{
	struct relay_end e = { .reason = RELAY_END_EXITPOLICY, .addr_type = CELL_ADDR_IPV4,
			       .addr = { 192, 0, 2, 7 }, .ttl = 300 }, got;
	/* Reason 4, IPv4 c0000207, TTL 0000012c (tor-spec 6.3). */
	static const uint8_t want[] = { 4, 192, 0, 2, 7, 0, 0, 0x01, 0x2c };
	uint8_t out[64];

	(void)state;
	assert_int_equal(relay_end_encode(out, sizeof(out), &e), sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(relay_end_parse(out, sizeof(want), &got, NULL), PARSE_OK);
	assert_int_equal(got.addr_type, CELL_ADDR_IPV4);
	assert_int_equal(got.ttl, 300);
	assert_memory_equal(got.addr, e.addr, 4);
	/* The IPv6 form. */
	e.addr_type = CELL_ADDR_IPV6;
	memset(e.addr, 0x20, 16);
	assert_int_equal(relay_end_encode(out, sizeof(out), &e), 21);
	assert_int_equal(relay_end_parse(out, 21, &got, NULL), PARSE_OK);
	assert_int_equal(got.addr_type, CELL_ADDR_IPV6);
	assert_int_equal(got.ttl, 300);
	/* Without TTL: treated as 0xffffffff. */
	assert_int_equal(relay_end_parse(out, 17, &got, NULL), PARSE_OK);
	assert_int_equal(got.addr_type, CELL_ADDR_IPV6);
	assert_int_equal(got.ttl, RELAY_TTL_NONE);
	/* A wrong-length address is ignored, the END still counts. */
	assert_int_equal(relay_end_parse(out, 7, &got, NULL), PARSE_OK);
	assert_int_equal(got.reason, RELAY_END_EXITPOLICY);
	assert_int_equal(got.addr_type, 0);
}

static void test_relay_end_empty_means_misc_and_other_reasons_have_no_address(void **state)
{
	static const uint8_t done_with_junk[] = { RELAY_END_DONE, 1, 2, 3, 4, 5, 6, 7, 8 };
	struct relay_end got;
	struct relay_end e = { .reason = RELAY_END_DONE };
	uint8_t out[4];

	(void)state;
	assert_int_equal(relay_end_parse(done_with_junk, 0, &got, NULL), PARSE_OK);
	assert_int_equal(got.reason, RELAY_END_MISC);
	assert_int_equal(relay_end_parse(done_with_junk, sizeof(done_with_junk), &got, NULL), PARSE_OK);
	assert_int_equal(got.reason, RELAY_END_DONE);
	assert_int_equal(got.addr_type, 0);
	assert_int_equal(relay_end_encode(out, sizeof(out), &e), 1);
	assert_int_equal(out[0], 6);
	for (unsigned r = 1; r <= 14; r++)
		assert_string_not_equal(relay_end_reason_name((uint8_t)r), "UNKNOWN");
	assert_string_equal(relay_end_reason_name(4), "EXITPOLICY");
	assert_string_equal(relay_end_reason_text(RELAY_END_CONNECTREFUSED), "connection refused");
	assert_string_equal(relay_end_reason_name(0), "UNKNOWN");
	assert_string_equal(relay_end_reason_name(99), "UNKNOWN");
	assert_string_equal(relay_end_reason_text(99), "unknown reason");
}

/* --- CONNECTED --- */

static enum parse_result connected_p(const uint8_t *d, size_t n, void *o)
{
	/* The empty body is valid on its own, and so is an IPv4 address
	 * without TTL (4..7 bytes); every other prefix must be INVALID. */
	if (n == 0 || (n >= 4 && n < 8 && be32_load(d) != 0))
		return PARSE_INVALID;
	return relay_connected_parse(d, n, o, NULL);
}

static void test_relay_connected_ipv4_and_ipv6_forms(void **state)
{
	struct relay_connected c = { .addr_type = CELL_ADDR_IPV4, .addr = { 10, 1, 2, 3 }, .ttl = 60 };
	struct relay_connected got;
	/* IPv6 form: 00000000, 06, address, TTL (tor-spec 6.2). */
	uint8_t want6[25] = { 0, 0, 0, 0, 6, 0x20, 0x01, 0x0d, 0xb8, [20] = 1, [24] = 60 };
	uint8_t out[32];

	(void)state;
	assert_int_equal(relay_connected_encode(out, sizeof(out), &c), 8);
	assert_memory_equal(out, "\x0a\x01\x02\x03\0\0\0\x3c", 8);
	assert_int_equal(relay_connected_parse(out, 8, &got, NULL), PARSE_OK);
	assert_int_equal(got.addr_type, CELL_ADDR_IPV4);
	assert_int_equal(got.ttl, 60);
	assert_prefixes_invalid(out, 8, connected_p, &got);
	assert_int_equal(relay_connected_parse(out, 5, &got, NULL), PARSE_OK);
	assert_int_equal(got.addr_type, CELL_ADDR_IPV4);
	assert_int_equal(got.ttl, RELAY_TTL_NONE);
	assert_int_equal(relay_connected_parse(out, 3, &got, NULL), PARSE_INVALID);
	c.addr_type = CELL_ADDR_IPV6;
	memcpy(c.addr, want6 + 5, 16);
	assert_int_equal(relay_connected_encode(out, sizeof(out), &c), 25);
	assert_memory_equal(out, want6, 25);
	assert_int_equal(relay_connected_parse(out, 25, &got, NULL), PARSE_OK);
	assert_int_equal(got.addr_type, CELL_ADDR_IPV6);
	assert_memory_equal(got.addr, want6 + 5, 16);
	assert_prefixes_invalid(out, 25, connected_p, &got);
	out[4] = 4;
	assert_int_equal(relay_connected_parse(out, 25, &got, NULL), PARSE_INVALID);
	assert_int_equal(relay_connected_parse(out, 0, &got, NULL), PARSE_OK);
	assert_int_equal(got.addr_type, 0);
	c.addr_type = CELL_ADDR_IPV4;
	memset(c.addr, 0, 4);
	assert_int_equal(relay_connected_encode(out, sizeof(out), &c), -EINVAL);
}

/* --- SENDME --- */

static enum parse_result sendme_p(const uint8_t *d, size_t n, void *o)
{
	return n == 0 ? PARSE_INVALID : relay_sendme_parse(d, n, o, NULL);
}

static void test_relay_sendme_v1_carries_the_digest(void **state)
{
	struct relay_sendme s = { .version = 1 }, got;
	uint8_t out[64];

	(void)state;
	for (int i = 0; i < 20; i++)
		s.digest[i] = (uint8_t)(0xd0 + i);
	/* VERSION 01, DATA_LEN 0014, DIGEST [20] (tor-spec 7.3.1). */
	assert_int_equal(relay_sendme_encode(out, sizeof(out), &s), 23);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 20);
	assert_memory_equal(out + 3, s.digest, 20);
	assert_int_equal(relay_sendme_parse(out, 23, &got, NULL), PARSE_OK);
	assert_int_equal(got.version, 1);
	assert_memory_equal(got.digest, s.digest, 20);
	assert_prefixes_invalid(out, 23, sendme_p, &got);
	/* DATA_LEN > 20: read the first 20. */
	out[2] = 21;
	out[23] = 0xff;
	assert_int_equal(relay_sendme_parse(out, 24, &got, NULL), PARSE_OK);
	assert_memory_equal(got.digest, s.digest, 20);
	/* DATA_LEN < 20 closes the circuit. */
	out[2] = 19;
	assert_int_equal(relay_sendme_parse(out, 23, &got, NULL), PARSE_INVALID);
	out[0] = 2;
	assert_int_equal(relay_sendme_parse(out, 23, &got, NULL), PARSE_INVALID);
}

static void test_relay_sendme_v0_is_empty_and_ignores_the_rest(void **state)
{
	struct relay_sendme s = { .version = 0 }, got;
	static const uint8_t v0_junk[] = { 0, 0xff, 0xff };
	uint8_t out[4];

	(void)state;
	assert_int_equal(relay_sendme_encode(out, sizeof(out), &s), 0);
	assert_int_equal(relay_sendme_parse(out, 0, &got, NULL), PARSE_OK);
	assert_int_equal(got.version, 0);
	assert_int_equal(relay_sendme_parse(v0_junk, sizeof(v0_junk), &got, NULL), PARSE_OK);
	s.version = 1;
	assert_int_equal(relay_sendme_encode(out, sizeof(out), &s), -ENOSPC);
}

/* --- EXTEND2 / EXTENDED2 / TRUNCATED --- */

static enum parse_result extend2_p(const uint8_t *d, size_t n, void *o)
{
	return relay_extend2_parse(d, n, o, NULL);
}

static void test_relay_extend2_encoding_is_exact(void **state)
{
	static const uint8_t v4[6] = { 127, 0, 0, 1, 0x23, 0x29 }; /* :9001 */
	uint8_t rsa[20], ed[32], hdata[84], out[RELAY_DATA_MAX];
	struct relay_extend2 e = { .n_spec = 3, .htype = CELL_HTYPE_NTOR, .hlen = 84, .hdata = hdata };
	struct relay_extend2 got;
	ssize_t n;

	(void)state;
	memset(rsa, 0x11, sizeof(rsa));
	memset(ed, 0x22, sizeof(ed));
	memset(hdata, 0x33, sizeof(hdata));
	relay_linkspec_set(&e.spec[0], RELAY_LS_IPV4, v4, 6);
	relay_linkspec_set(&e.spec[1], RELAY_LS_LEGACY_ID, rsa, 20);
	relay_linkspec_set(&e.spec[2], RELAY_LS_ED25519_ID, ed, 32);
	n = relay_extend2_encode(out, sizeof(out), &e);
	/* NSPEC 3 | 00 06 7f000001 2329 | 02 14 rsa | 03 20 ed |
	 * HTYPE 0002 HLEN 0054 HDATA (tor-spec 5.1.2). */
	assert_int_equal(n, 1 + 8 + 22 + 34 + 4 + 84);
	assert_memory_equal(out, "\x03\x00\x06\x7f\x00\x00\x01\x23\x29\x02\x14", 11);
	assert_memory_equal(out + 11, rsa, 20);
	assert_memory_equal(out + 31, "\x03\x20", 2);
	assert_memory_equal(out + 33, ed, 32);
	assert_memory_equal(out + 65, "\x00\x02\x00\x54", 4);
	assert_memory_equal(out + 69, hdata, 84);
	assert_int_equal(relay_extend2_parse(out, (size_t)n, &got, NULL), PARSE_OK);
	assert_int_equal(got.n_spec, 3);
	assert_int_equal(got.spec[2].type, RELAY_LS_ED25519_ID);
	assert_memory_equal(got.spec[1].body, rsa, 20);
	assert_int_equal(got.htype, 2);
	assert_int_equal(got.hlen, 84);
	assert_prefixes_invalid(out, (size_t)n, extend2_p, &got);
}

static void test_relay_extend2_rejects_length_mismatch_and_duplicate_ids(void **state)
{
	/* IPv4 link specifier claiming 5 bytes. */
	static const uint8_t short_v4[] = { 1, 0, 5, 1, 2, 3, 4, 5, 0, 2, 0, 0 };
	/* Two legacy ids. */
	uint8_t two_rsa[1 + 2 * 22 + 4] = { 2, 2, 20, [23] = 2, [24] = 20 };
	/* IPv6 specifier of 18 bytes, unknown type 9 with 3 bytes: fine. */
	uint8_t ok[1 + 20 + 5 + 4] = { 2, 1, 18, [21] = 9, [22] = 3 };
	static const uint8_t hlen_past[] = { 0, 0, 2, 0, 10, 1 };
	uint8_t many[1 + 9 * 2 + 4] = { 9 };
	struct relay_extend2 got;
	const char *why = NULL;

	(void)state;
	assert_int_equal(relay_extend2_parse(short_v4, sizeof(short_v4), &got, &why), PARSE_INVALID);
	assert_non_null(why);
	assert_int_equal(relay_extend2_parse(two_rsa, sizeof(two_rsa), &got, NULL), PARSE_INVALID);
	assert_int_equal(relay_extend2_parse(ok, sizeof(ok), &got, NULL), PARSE_OK);
	assert_int_equal(got.spec[1].type, 9);
	assert_int_equal(got.hlen, 0);
	assert_int_equal(relay_extend2_parse(hlen_past, sizeof(hlen_past), &got, NULL), PARSE_INVALID);
	for (int i = 0; i < 9; i++)
		many[1 + 2 * i] = 9;
	assert_int_equal(relay_extend2_parse(many, sizeof(many), &got, NULL), PARSE_INVALID);
	got.n_spec = 1;
	relay_linkspec_set(&got.spec[0], RELAY_LS_ED25519_ID, ok, 31);
	assert_int_equal(relay_extend2_encode(ok, sizeof(ok), &got), -EINVAL);
}

static void test_relay_extended2_and_truncated(void **state)
{
	static const uint8_t ext[] = { 0, 3, 'a', 'b', 'c' };
	struct cell_created2 c2;
	uint8_t reason = 0xff;

	(void)state;
	assert_int_equal(relay_extended2_parse(ext, sizeof(ext), &c2, NULL), PARSE_OK);
	assert_int_equal(c2.hlen, 3);
	assert_int_equal(relay_extended2_parse(ext, 4, &c2, NULL), PARSE_INVALID);
	assert_int_equal(relay_truncated_parse((const uint8_t *)"\x0a", 1, &reason, NULL), PARSE_OK);
	assert_int_equal(reason, CELL_DESTROY_TIMEOUT);
	assert_int_equal(relay_truncated_parse(ext, 0, &reason, NULL), PARSE_OK);
	assert_int_equal(reason, CELL_DESTROY_NONE);
}

/* --- RESOLVE / RESOLVED --- */

static void test_relay_resolve_round_trips(void **state)
{
	uint8_t out[64];
	const char *name;
	size_t nl;

	(void)state;
	assert_int_equal(relay_resolve_encode(out, sizeof(out), "torproject.org", 14), 15);
	assert_memory_equal(out, "torproject.org\0", 15);
	assert_int_equal(relay_resolve_parse(out, 15, &name, &nl, NULL), PARSE_OK);
	assert_int_equal(nl, 14);
	assert_memory_equal(name, "torproject.org", 14);
	for (size_t k = 0; k < 15; k++)
		assert_int_equal(relay_resolve_parse(out, k, &name, &nl, NULL), PARSE_INVALID);
	assert_int_equal(relay_resolve_parse((const uint8_t *)"", 1, &name, &nl, NULL), PARSE_INVALID);
	assert_int_equal(relay_resolve_encode(out, sizeof(out), "a\0b", 3), -EINVAL);
}

static void test_relay_resolved_answers_round_trip(void **state)
{
	static const uint8_t v4[4] = { 192, 0, 2, 1 }, v6[16] = { 0x20, 0x01, [15] = 9 };
	struct relay_resolved_answer a[3] = {
		{ RELAY_RESOLVED_IPV4, 4, v4, 3600 },
		{ RELAY_RESOLVED_IPV6, 16, v6, 60 },
		{ RELAY_RESOLVED_HOSTNAME, 7, (const uint8_t *)"foo.bar", 5 },
	};
	struct relay_resolved_answer got[2];
	uint8_t out[128];
	size_t n = 0;
	ssize_t len = relay_resolved_encode(out, sizeof(out), a, 3);

	(void)state;
	/* Type 04, Length 04, c0000201, TTL 00000e10 first (tor-spec 6.4). */
	assert_int_equal(len, 10 + 22 + 13);
	assert_memory_equal(out, "\x04\x04\xc0\x00\x02\x01\x00\x00\x0e\x10", 10);
	assert_int_equal(relay_resolved_parse(out, (size_t)len, got, 2, &n, NULL), PARSE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(got[0].ttl, 3600);
	assert_memory_equal(got[1].value, v6, 16);
	/* Prefixes that end between answers are complete, the rest INVALID. */
	for (ssize_t k = 1; k < len; k++) {
		uint8_t *d = dup_exact(out, (size_t)k);
		enum parse_result r = relay_resolved_parse(d, (size_t)k, got, 2, &n, NULL);

		assert_int_equal(r, (k == 10 || k == 32) ? PARSE_OK : PARSE_INVALID);
		free(d);
	}
}

static void test_relay_resolved_rejects_wrong_lengths_and_mixed_errors(void **state)
{
	static const uint8_t bad_v4[] = { 4, 3, 1, 2, 3, 0, 0, 0, 0 };
	static const uint8_t err_and_v4[] = { 0xf0, 0, 0, 0, 0, 0, 4, 4, 1, 2, 3, 4, 0, 0, 0, 0 };
	static const uint8_t err_only[] = { 0xf1, 2, 'n', 'o', 0, 0, 0, 0 };
	static const uint8_t empty_name[] = { 0, 0, 0, 0, 0, 0 };
	static const uint8_t nul_name[] = { 0, 3, 'a', 0, 'b', 0, 0, 0, 0 };
	struct relay_resolved_answer got[1];
	size_t n;

	(void)state;
	assert_int_equal(relay_resolved_parse(bad_v4, sizeof(bad_v4), got, 1, &n, NULL), PARSE_INVALID);
	assert_int_equal(relay_resolved_parse(err_and_v4, sizeof(err_and_v4), got, 1, &n, NULL),
			 PARSE_INVALID);
	assert_int_equal(relay_resolved_parse(err_only, sizeof(err_only), got, 1, &n, NULL), PARSE_OK);
	assert_int_equal(got[0].type, RELAY_RESOLVED_ERROR_NONTRANSIENT);
	assert_int_equal(relay_resolved_parse(empty_name, sizeof(empty_name), got, 1, &n, NULL),
			 PARSE_INVALID);
	assert_int_equal(relay_resolved_parse(nul_name, sizeof(nul_name), got, 1, &n, NULL),
			 PARSE_INVALID);
}

/* --- XOFF / XON --- */

static void test_relay_xon_xoff_follow_prop324(void **state)
{
	uint8_t out[8];
	struct relay_xon x;

	(void)state;
	assert_int_equal(relay_xoff_encode(out, sizeof(out)), 1);
	assert_int_equal(out[0], 0);
	assert_int_equal(relay_xoff_parse(out, 1, NULL), PARSE_OK);
	assert_int_equal(relay_xoff_parse(out, 0, NULL), PARSE_INVALID);
	out[0] = 1;
	assert_int_equal(relay_xoff_parse(out, 1, NULL), PARSE_INVALID);
	/* version 00, kbps_ewma u32 = 0x00012345. */
	assert_int_equal(relay_xon_encode(out, sizeof(out), 0x12345), 5);
	assert_memory_equal(out, "\x00\x00\x01\x23\x45", 5);
	assert_int_equal(relay_xon_parse(out, 5, &x, NULL), PARSE_OK);
	assert_int_equal(x.kbps_ewma, 0x12345);
	for (size_t k = 0; k < 5; k++)
		assert_int_equal(relay_xon_parse(out, k, &x, NULL), PARSE_INVALID);
	out[0] = 7;
	assert_int_equal(relay_xon_parse(out, 5, &x, NULL), PARSE_INVALID);
	assert_int_equal(relay_xon_encode(out, 4, 1), -ENOSPC);
}

/* --- Onion-service framing --- */

static enum parse_result intro1_p(const uint8_t *d, size_t n, void *o)
{
	return relay_introduce1_parse(d, n, o, NULL);
}

static void test_relay_introduce1_round_trips(void **state)
{
	uint8_t key[32], enc[100], ext_body[3] = { 1, 2, 3 }, out[RELAY_DATA_MAX];
	struct relay_introduce1 in = { .auth_key_type = RELAY_HS_AUTH_KEY_ED25519,
				       .auth_key_len = 32, .auth_key = key,
				       .exts = { .n = 1, .e = { { 2, 3, ext_body } } },
				       .encrypted = enc, .encrypted_len = sizeof(enc) };
	struct relay_introduce1 got;
	ssize_t n;

	(void)state;
	memset(key, 0x44, sizeof(key));
	memset(enc, 0x55, sizeof(enc));
	n = relay_introduce1_encode(out, sizeof(out), &in);
	/* LEGACY_KEY_ID 20 zero bytes, 02, 0020, key, N_EXT 01, 02 03 010203,
	 * ENCRYPTED (rend-spec-v3 3.2.1). */
	assert_int_equal(n, 20 + 3 + 32 + 1 + 5 + 100);
	for (int i = 0; i < 20; i++)
		assert_int_equal(out[i], 0);
	assert_memory_equal(out + 20, "\x02\x00\x20", 3);
	assert_memory_equal(out + 55, "\x01\x02\x03\x01\x02\x03", 6);
	assert_int_equal(relay_introduce1_parse(out, (size_t)n, &got, NULL), PARSE_OK);
	assert_int_equal(got.auth_key_len, 32);
	assert_int_equal(got.exts.n, 1);
	assert_memory_equal(got.exts.e[0].body, ext_body, 3);
	assert_int_equal(got.encrypted_len, 100);
	assert_memory_equal(got.encrypted, enc, 100);
	/* Everything before ENCRYPTED is required. */
	assert_prefixes_invalid(out, 61, intro1_p, &got);
	in.exts.n = RELAY_EXTS_MAX + 1;
	assert_int_equal(relay_introduce1_encode(out, sizeof(out), &in), -EINVAL);
}

static void test_relay_introduce_ack_rendezvous_cells(void **state)
{
	static const uint8_t ack[] = { 0, 1, 0 };
	static const uint8_t ack_bad_ext[] = { 0, 0, 1, 5, 9 };
	uint8_t cookie[20], out[128], hs[64];
	struct relay_introduce_ack a = { .status = RELAY_INTRO_ACK_CANT_RELAY }, ga;
	struct relay_rendezvous2 r2;
	const uint8_t *c = NULL;

	(void)state;
	assert_int_equal(relay_introduce_ack_parse(ack, sizeof(ack), &ga, NULL), PARSE_OK);
	assert_int_equal(ga.status, RELAY_INTRO_ACK_UNKNOWN_SERVICE);
	assert_int_equal(relay_introduce_ack_parse(ack, 2, &ga, NULL), PARSE_INVALID);
	assert_int_equal(relay_introduce_ack_parse(ack_bad_ext, sizeof(ack_bad_ext), &ga, NULL),
			 PARSE_INVALID);
	assert_int_equal(relay_introduce_ack_encode(out, sizeof(out), &a), 3);
	assert_memory_equal(out, "\x00\x03\x00", 3);
	memset(cookie, 0x77, sizeof(cookie));
	assert_int_equal(relay_establish_rendezvous_encode(out, sizeof(out), cookie), 20);
	assert_int_equal(relay_establish_rendezvous_parse(out, 20, &c, NULL), PARSE_OK);
	assert_memory_equal(c, cookie, 20);
	assert_int_equal(relay_establish_rendezvous_parse(out, 19, &c, NULL), PARSE_INVALID);
	for (int i = 0; i < 64; i++)
		hs[i] = (uint8_t)i;
	assert_int_equal(relay_rendezvous2_encode(out, sizeof(out), hs, 64), 64);
	assert_int_equal(relay_rendezvous2_parse(out, 64, &r2, NULL), PARSE_OK);
	assert_ptr_equal(r2.server_pk, out);
	assert_ptr_equal(r2.auth, out + 32);
	assert_int_equal(r2.auth[0], 32);
	assert_int_equal(relay_rendezvous2_parse(out, 63, &r2, NULL), PARSE_INVALID);
}

/* --- RELAY_EARLY budget --- */

static void test_relay_early_allows_at_most_eight_per_circuit(void **state)
{
	struct relay_early_budget b;
	unsigned early = 0;

	(void)state;
	relay_early_init(&b);
	/* Cells for the first hop need no RELAY_EARLY. */
	assert_int_equal(relay_early_choose(&b, RELAY_BEGIN_DIR, 0), CELL_RELAY);
	/* Two EXTEND2s, then data to the last hop. */
	assert_int_equal(relay_early_choose(&b, RELAY_EXTEND2, 0), CELL_RELAY_EARLY);
	assert_int_equal(relay_early_choose(&b, RELAY_EXTEND2, 1), CELL_RELAY_EARLY);
	for (int i = 0; i < 20; i++)
		early += relay_early_choose(&b, RELAY_DATA, 2) == CELL_RELAY_EARLY;
	assert_int_equal(early, RELAY_EARLY_MAX - 2);
	assert_false(relay_early_has_budget(&b));
	assert_int_equal(relay_early_choose(&b, RELAY_DATA, 2), CELL_RELAY);
	/* An EXTEND2 cannot go in a plain RELAY cell. */
	assert_int_equal(relay_early_choose(&b, RELAY_EXTEND2, 2), -ENOSPC);
	assert_int_equal(b.sent, RELAY_EARLY_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_header_round_trips_with_zero_then_random_padding),
		cmocka_unit_test(test_relay_full_data_cell_has_no_padding),
		cmocka_unit_test(test_relay_pad_rng_pads_with_zeros_then_fresh_random_bytes),
		cmocka_unit_test(test_relay_parse_rejects_length_over_498),
		cmocka_unit_test(test_relay_unknown_commands_parse_but_are_reported),
		cmocka_unit_test(test_relay_begin_encodes_addrport_and_flags_exactly),
		cmocka_unit_test(test_relay_begin_onion_is_colon_port_nul_and_flags),
		cmocka_unit_test(test_relay_begin_brackets_ipv6_and_omits_zero_flags),
		cmocka_unit_test(test_relay_begin_rejects_bad_addrports),
		cmocka_unit_test(test_relay_end_exitpolicy_carries_address_and_ttl),
		cmocka_unit_test(test_relay_end_empty_means_misc_and_other_reasons_have_no_address),
		cmocka_unit_test(test_relay_connected_ipv4_and_ipv6_forms),
		cmocka_unit_test(test_relay_sendme_v1_carries_the_digest),
		cmocka_unit_test(test_relay_sendme_v0_is_empty_and_ignores_the_rest),
		cmocka_unit_test(test_relay_extend2_encoding_is_exact),
		cmocka_unit_test(test_relay_extend2_rejects_length_mismatch_and_duplicate_ids),
		cmocka_unit_test(test_relay_extended2_and_truncated),
		cmocka_unit_test(test_relay_resolve_round_trips),
		cmocka_unit_test(test_relay_resolved_answers_round_trip),
		cmocka_unit_test(test_relay_resolved_rejects_wrong_lengths_and_mixed_errors),
		cmocka_unit_test(test_relay_xon_xoff_follow_prop324),
		cmocka_unit_test(test_relay_introduce1_round_trips),
		cmocka_unit_test(test_relay_introduce_ack_rendezvous_cells),
		cmocka_unit_test(test_relay_early_allows_at_most_eight_per_circuit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
