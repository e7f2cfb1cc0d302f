/* Cell framing and link-cell bodies (proto/cell.h) follow tor-spec 3, 4, 5.1,
 * 5.4 and 7.2. Expected bytes below are written out by hand from the spec's
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

#include "proto/cell.h"

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	assert_non_null(d);
	if (n)
		memcpy(d, p, n);
	return d;
}

/* Frame every proper prefix of wire: each must ask for more bytes. */
static void assert_prefixes_need_more(const uint8_t *wire, size_t len, int link_proto)
{
	for (size_t n = 0; n < len; n++) {
		uint8_t *d = dup_exact(wire, n);
		struct cell_view v;
		size_t used = 0;

		assert_int_equal(cell_frame(d, n, link_proto, &v, &used, NULL), PARSE_NEED_MORE);
		free(d);
	}
}

static void test_cell_frames_first_versions_with_two_byte_circ_id(void **state)
{
	/* tor-spec 3 and 4.1: CircID [2] = 0, Command 7, Length [2] = 4,
	 * versions 4 and 5 as big-endian u16s. */
	static const uint8_t want[] = { 0x00, 0x00, 0x07, 0x00, 0x04, 0x00, 0x04, 0x00, 0x05 };
	uint8_t buf[64];
	ssize_t n = cell_versions_encode(buf, sizeof(buf));
	struct cell_view v;
	size_t used;
	uint16_t chosen = 0;

	(void)state;
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(cell_frame(want, sizeof(want), 0, &v, &used, NULL), PARSE_OK);
	assert_int_equal(used, sizeof(want));
	assert_true(v.is_var);
	assert_int_equal(v.command, CELL_VERSIONS);
	assert_int_equal(v.payload_len, 4);
	assert_int_equal(cell_versions_choose(v.payload, v.payload_len, &chosen, NULL), PARSE_OK);
	assert_int_equal(chosen, 5);
	assert_prefixes_need_more(want, sizeof(want), 0);
	assert_int_equal(cell_versions_encode(buf, sizeof(want) - 1), -ENOSPC);
}

static void test_cell_versions_picks_highest_common_version(void **state)
{
	static const uint8_t relay_3_4[] = { 0, 3, 0, 4 };
	static const uint8_t relay_5_4_9[] = { 0, 5, 0, 4, 0, 9 };
	static const uint8_t relay_1_2_3[] = { 0, 1, 0, 2, 0, 3 };
	static const uint8_t odd[] = { 0, 4, 0 };
	uint16_t v = 0;
	const char *why = NULL;

	(void)state;
	assert_int_equal(cell_versions_choose(relay_3_4, 4, &v, NULL), PARSE_OK);
	assert_int_equal(v, 4);
	assert_int_equal(cell_versions_choose(relay_5_4_9, 6, &v, NULL), PARSE_OK);
	assert_int_equal(v, 5);
	assert_int_equal(cell_versions_choose(relay_1_2_3, 6, &v, &why), PARSE_INVALID);
	assert_non_null(why);
	assert_int_equal(cell_versions_choose(odd, 3, &v, NULL), PARSE_INVALID);
	assert_int_equal(cell_versions_choose(odd, 0, &v, NULL), PARSE_INVALID);
}

static void test_cell_frames_fixed_cell_of_514_bytes(void **state)
{
	struct cell c = { .circ_id = 0x80000001u, .command = CELL_DESTROY };
	uint8_t wire[CELL_LEN + 3];
	struct cell_view v;
	size_t used = 0;
	uint8_t reason = 0xff;

	(void)state;
	memset(c.payload, 0, sizeof(c.payload));
	c.payload[0] = CELL_DESTROY_FINISHED;
	cell_encode(&c, wire);
	/* CircID [4], Command [1] = 4, reason 9 (FINISHED), zero padding. */
	assert_int_equal(wire[0], 0x80);
	assert_int_equal(wire[3], 0x01);
	assert_int_equal(wire[4], 4);
	assert_int_equal(wire[5], 9);
	assert_int_equal(wire[CELL_LEN - 1], 0);
	assert_int_equal(cell_frame(wire, sizeof(wire), 4, &v, &used, NULL), PARSE_OK);
	assert_int_equal(used, CELL_LEN);
	assert_false(v.is_var);
	assert_int_equal(v.circ_id, 0x80000001u);
	assert_int_equal(v.payload_len, CELL_PAYLOAD_LEN);
	assert_ptr_equal(v.payload, wire + 5);
	assert_int_equal(cell_destroy_parse(v.payload, v.payload_len, &reason, NULL), PARSE_OK);
	assert_int_equal(reason, CELL_DESTROY_FINISHED);
	assert_string_equal(cell_destroy_reason_name(reason), "FINISHED");
	assert_prefixes_need_more(wire, CELL_LEN, 5);
}

static void test_cell_frames_var_cells_on_link_protocol_4(void **state)
{
	static const uint8_t body[] = { 1, 2, 3 };
	uint8_t wire[32];
	ssize_t n = cell_var_encode(wire, sizeof(wire), 4, 0, CELL_VPADDING, body, sizeof(body));
	struct cell_view v;
	size_t used;
	/* CircID [4] = 0, Command 128, Length [2] = 3, payload. */
	static const uint8_t want[] = { 0, 0, 0, 0, 128, 0, 3, 1, 2, 3 };

	(void)state;
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(wire, want, sizeof(want));
	assert_int_equal(cell_frame(wire, (size_t)n, 4, &v, &used, NULL), PARSE_OK);
	assert_true(v.is_var);
	assert_int_equal(v.command, CELL_VPADDING);
	assert_int_equal(v.payload_len, 3);
	assert_int_equal(used, (size_t)n);
	assert_prefixes_need_more(wire, (size_t)n, 4);
}

static void test_cell_frame_splits_back_to_back_cells(void **state)
{
	uint8_t wire[2 * CELL_LEN + 16];
	size_t off = 0, used;
	struct cell_view v;
	ssize_t n;

	(void)state;
	n = cell_fixed_encode(wire, sizeof(wire), 7, CELL_PADDING, NULL, 0);
	assert_int_equal(n, CELL_LEN);
	n = cell_var_encode(wire + CELL_LEN, sizeof(wire) - CELL_LEN, 5, 0, CELL_CERTS,
			    (const uint8_t *)"\0", 1);
	assert_int_equal(n, 8);
	assert_int_equal(cell_frame(wire, CELL_LEN + 8, 5, &v, &used, NULL), PARSE_OK);
	assert_int_equal(v.command, CELL_PADDING);
	assert_int_equal(v.circ_id, 7);
	off += used;
	assert_int_equal(cell_frame(wire + off, CELL_LEN + 8 - off, 5, &v, &used, NULL), PARSE_OK);
	assert_int_equal(v.command, CELL_CERTS);
	assert_int_equal(off + used, CELL_LEN + 8);
}

static void test_cell_frame_rejects_fixed_cell_before_versions(void **state)
{
	static const uint8_t netinfo_first[] = { 0, 0, CELL_NETINFO, 0, 0 };
	struct cell_view v;
	size_t used;
	const char *why = NULL;

	(void)state;
	assert_int_equal(cell_frame(netinfo_first, sizeof(netinfo_first), 0, &v, &used, &why),
			 PARSE_INVALID);
	assert_non_null(why);
}

static void test_cell_frame_rejects_unsupported_link_protocols(void **state)
{
	uint8_t wire[CELL_LEN] = { 0 };
	struct cell_view v;
	size_t used;

	(void)state;
	assert_int_equal(cell_frame(wire, sizeof(wire), 3, &v, &used, NULL), PARSE_INVALID);
	assert_int_equal(cell_frame(wire, sizeof(wire), 6, &v, &used, NULL), PARSE_INVALID);
	assert_int_equal(cell_frame(wire, sizeof(wire), -1, &v, &used, NULL), PARSE_INVALID);
}

static void test_cell_encoders_refuse_bad_sizes_and_commands(void **state)
{
	uint8_t big[CELL_PAYLOAD_LEN + 1] = { 0 };
	uint8_t out[CELL_LEN];

	(void)state;
	assert_int_equal(cell_fixed_encode(out, sizeof(out), 1, CELL_RELAY, big, sizeof(big)),
			 -EMSGSIZE);
	assert_int_equal(cell_fixed_encode(out, sizeof(out) - 1, 1, CELL_RELAY, big, 1), -ENOSPC);
	assert_int_equal(cell_fixed_encode(out, sizeof(out), 1, CELL_CERTS, big, 1), -EINVAL);
	assert_int_equal(cell_var_encode(out, sizeof(out), 4, 0, CELL_RELAY, big, 1), -EINVAL);
	assert_int_equal(cell_var_encode(out, sizeof(out), 0, 0x10000, CELL_VERSIONS, big, 2),
			 -EINVAL);
	assert_int_equal(cell_var_encode(out, sizeof(out), 4, 0, CELL_CERTS, big, sizeof(big)),
			 -ENOSPC);
	assert_int_equal(cell_var_encode(out, sizeof(out), 2, 0, CELL_CERTS, big, 1), -EINVAL);
}

static void test_cell_command_names(void **state)
{
	(void)state;
	assert_string_equal(cell_command_name(CELL_RELAY_EARLY), "RELAY_EARLY");
	assert_string_equal(cell_command_name(CELL_AUTH_CHALLENGE), "AUTH_CHALLENGE");
	assert_string_equal(cell_command_name(CELL_PADDING_NEGOTIATE), "PADDING_NEGOTIATE");
	assert_string_equal(cell_command_name(13), "UNKNOWN");
	assert_string_equal(cell_command_name(200), "UNKNOWN");
	assert_string_equal(cell_destroy_reason_name(13), "UNKNOWN");
}

/* --- CERTS --- */

static void test_cell_certs_splits_entries_and_ignores_trailing_bytes(void **state)
{
	/* N = 2; type 4, CLEN 3, "abc"; type 7, CLEN 1, "z"; 2 extra bytes. */
	static const uint8_t body[] = { 2, 4, 0, 3, 'a', 'b', 'c', 7, 0, 1, 'z', 0xee, 0xee };
	struct cell_certs c;
	uint8_t out[32];

	(void)state;
	assert_int_equal(cell_certs_parse(body, sizeof(body), &c, NULL), PARSE_OK);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.e[0].type, CELL_CERT_ED_ID_SIGNING);
	assert_int_equal(c.e[0].len, 3);
	assert_memory_equal(c.e[0].body, "abc", 3);
	assert_ptr_equal(cell_certs_find(&c, 7), &c.e[1]);
	assert_null(cell_certs_find(&c, 2));
	assert_int_equal(cell_certs_encode(out, sizeof(out), &c), sizeof(body) - 2);
	assert_memory_equal(out, body, sizeof(body) - 2);
	for (size_t n = 0; n < sizeof(body) - 2; n++) {
		uint8_t *d = dup_exact(body, n);

		assert_int_equal(cell_certs_parse(d, n, &c, NULL), PARSE_INVALID);
		free(d);
	}
}

static void test_cell_certs_rejects_duplicates_and_too_many(void **state)
{
	static const uint8_t dup[] = { 2, 5, 0, 0, 5, 0, 0 };
	uint8_t many[1 + 3 * (CELL_CERTS_MAX + 1)] = { CELL_CERTS_MAX + 1 };
	struct cell_certs c;
	const char *why = NULL;

	(void)state;
	assert_int_equal(cell_certs_parse(dup, sizeof(dup), &c, &why), PARSE_INVALID);
	assert_non_null(why);
	for (unsigned i = 0; i <= CELL_CERTS_MAX; i++)
		many[1 + 3 * i] = (uint8_t)(i + 1);
	assert_int_equal(cell_certs_parse(many, sizeof(many), &c, NULL), PARSE_INVALID);
	many[0] = CELL_CERTS_MAX;
	assert_int_equal(cell_certs_parse(many, sizeof(many), &c, NULL), PARSE_OK);
	assert_int_equal(c.n, CELL_CERTS_MAX);
}

static void test_cell_certs_rejects_length_past_end(void **state)
{
	static const uint8_t body[] = { 1, 2, 0xff, 0xff, 0 };
	struct cell_certs c;

	(void)state;
	assert_int_equal(cell_certs_parse(body, sizeof(body), &c, NULL), PARSE_INVALID);
}

/* --- AUTH_CHALLENGE --- */

static void test_cell_auth_challenge_round_trips(void **state)
{
	uint8_t chal[32], out[64];
	static const uint16_t methods[] = { 1, 3 };
	struct cell_auth_challenge ac;
	ssize_t n;

	(void)state;
	for (int i = 0; i < 32; i++)
		chal[i] = (uint8_t)i;
	n = cell_auth_challenge_encode(out, sizeof(out), chal, methods, 2);
	/* Challenge [32], N_Methods [2] = 2, Methods 0x0001 0x0003. */
	assert_int_equal(n, 38);
	assert_int_equal(out[33], 2);
	assert_int_equal(out[35], 1);
	assert_int_equal(out[37], 3);
	assert_int_equal(cell_auth_challenge_parse(out, (size_t)n, &ac, NULL), PARSE_OK);
	assert_memory_equal(ac.challenge, chal, 32);
	assert_true(cell_auth_challenge_has_method(&ac, 3));
	assert_false(cell_auth_challenge_has_method(&ac, 2));
	for (ssize_t k = 0; k < n; k++) {
		uint8_t *d = dup_exact(out, (size_t)k);

		assert_int_equal(cell_auth_challenge_parse(d, (size_t)k, &ac, NULL), PARSE_INVALID);
		free(d);
	}
	assert_int_equal(cell_auth_challenge_encode(out, 37, chal, methods, 2), -ENOSPC);
}

/* --- NETINFO --- */

static void test_cell_netinfo_client_encoding_is_exact(void **state)
{
	/* A client sends TIME 0, the relay's address, and no own addresses:
	 * 00000000 | 04 04 7f000001 | 00 (tor-spec 4.5). */
	static const uint8_t want[] = { 0, 0, 0, 0, 4, 4, 127, 0, 0, 1, 0 };
	struct cell_addr other = { .type = CELL_ADDR_IPV4, .len = 4, .bytes = { 127, 0, 0, 1 } };
	uint8_t out[CELL_PAYLOAD_LEN];
	struct cell_netinfo ni;
	ssize_t n = cell_netinfo_encode(out, sizeof(out), 0, &other, NULL, 0);

	(void)state;
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(cell_netinfo_parse(out, (size_t)n, &ni, NULL), PARSE_OK);
	assert_int_equal(ni.timestamp, 0);
	assert_true(ni.other.known);
	assert_memory_equal(ni.other.bytes, other.bytes, 4);
	assert_int_equal(ni.n_my_addrs, 0);
	for (ssize_t k = 0; k < n; k++) {
		uint8_t *d = dup_exact(out, (size_t)k);

		assert_int_equal(cell_netinfo_parse(d, (size_t)k, &ni, NULL), PARSE_INVALID);
		free(d);
	}
}

static void test_cell_netinfo_relay_form_with_ipv6_and_ignored_addresses(void **state)
{
	struct cell_addr other = { .type = CELL_ADDR_IPV6, .len = 16, .bytes = { 0x20, 0x01 } };
	struct cell_addr my[2] = {
		{ .type = CELL_ADDR_IPV4, .len = 4, .bytes = { 10, 0, 0, 1 } },
		{ .type = CELL_ADDR_IPV6, .len = 16, .bytes = { [15] = 1 } },
	};
	uint8_t out[CELL_PAYLOAD_LEN];
	/* timestamp 0x5f5e1000, other: IPv4 with ALEN 5 (wrong: ignored),
	 * 1 my addr of unknown type 9. */
	static const uint8_t odd[] = { 0x5f, 0x5e, 0x10, 0x00, 4, 5, 1, 2, 3, 4, 5, 1, 9, 1, 7 };
	struct cell_netinfo ni;
	ssize_t n = cell_netinfo_encode(out, sizeof(out), 1234, &other, my, 2);

	(void)state;
	assert_int_equal(n, 4 + 18 + 1 + 6 + 18);
	assert_int_equal(cell_netinfo_parse(out, (size_t)n, &ni, NULL), PARSE_OK);
	assert_int_equal(ni.timestamp, 1234);
	assert_int_equal(ni.other.type, CELL_ADDR_IPV6);
	assert_int_equal(ni.n_my_addrs, 2);
	assert_memory_equal(ni.my[0].bytes, my[0].bytes, 4);
	assert_memory_equal(ni.my[1].bytes, my[1].bytes, 16);
	assert_int_equal(cell_netinfo_parse(odd, sizeof(odd), &ni, NULL), PARSE_OK);
	assert_int_equal(ni.timestamp, 0x5f5e1000u);
	assert_false(ni.other.known);
	assert_int_equal(ni.n_my_addrs, 1);
	assert_false(ni.my[0].known);
	other.type = 9;
	assert_int_equal(cell_netinfo_encode(out, sizeof(out), 0, &other, NULL, 0), -EINVAL);
	/* Unknown peer address: 00000000 | 00 00 | 00. */
	assert_int_equal(cell_netinfo_encode(out, sizeof(out), 0, NULL, NULL, 0), 7);
	assert_memory_equal(out, "\0\0\0\0\0\0\0", 7);
	assert_int_equal(cell_netinfo_parse(out, 7, &ni, NULL), PARSE_OK);
	assert_false(ni.other.known);
}

static void test_cell_netinfo_stores_only_first_addresses_but_checks_all(void **state)
{
	uint8_t body[4 + 6 + 1 + 20 * 6];
	size_t off = 0;
	struct cell_netinfo ni;

	(void)state;
	memset(body, 0, sizeof(body));
	off = 4;
	body[off++] = 4;
	body[off++] = 4;
	off += 4;
	body[off++] = 20;
	for (int i = 0; i < 20; i++) {
		body[off] = 4;
		body[off + 1] = 4;
		body[off + 5] = (uint8_t)i;
		off += 6;
	}
	assert_int_equal(off, sizeof(body));
	assert_int_equal(cell_netinfo_parse(body, sizeof(body), &ni, NULL), PARSE_OK);
	assert_int_equal(ni.n_my_addrs, 20);
	assert_int_equal(ni.my[CELL_NETINFO_MY_ADDRS_MAX - 1].bytes[3], CELL_NETINFO_MY_ADDRS_MAX - 1);
	assert_int_equal(cell_netinfo_parse(body, sizeof(body) - 1, &ni, NULL), PARSE_INVALID);
}

/* --- CREATE2 / CREATED2 --- */

static void test_cell_create2_ntor_encoding_is_exact(void **state)
{
	uint8_t hdata[84], out[CELL_PAYLOAD_LEN];
	struct cell_create2 c2;
	ssize_t n;

	(void)state;
	for (int i = 0; i < 84; i++)
		hdata[i] = (uint8_t)(0xa0 + i);
	n = cell_create2_encode(out, sizeof(out), CELL_HTYPE_NTOR, hdata, sizeof(hdata));
	/* HTYPE 0x0002, HLEN 0x0054 (84), HDATA (tor-spec 5.1). */
	assert_int_equal(n, 88);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[1], 0x02);
	assert_int_equal(out[2], 0x00);
	assert_int_equal(out[3], 0x54);
	assert_memory_equal(out + 4, hdata, 84);
	assert_int_equal(cell_create2_parse(out, CELL_PAYLOAD_LEN, &c2, NULL), PARSE_OK);
	assert_int_equal(c2.htype, CELL_HTYPE_NTOR);
	assert_int_equal(c2.hlen, 84);
	assert_ptr_equal(c2.hdata, out + 4);
	for (ssize_t k = 0; k < n; k++) {
		uint8_t *d = dup_exact(out, (size_t)k);

		assert_int_equal(cell_create2_parse(d, (size_t)k, &c2, NULL), PARSE_INVALID);
		free(d);
	}
	assert_int_equal(cell_create2_encode(out, sizeof(out), 2, hdata, CELL_PAYLOAD_LEN - 3),
			 -EMSGSIZE);
}

static void test_cell_created2_round_trips_and_rejects_hlen_past_end(void **state)
{
	uint8_t hdata[64], out[CELL_PAYLOAD_LEN];
	static const uint8_t bad[] = { 0x01, 0xfe, 0, 0 };
	struct cell_created2 c2;
	ssize_t n;

	(void)state;
	memset(hdata, 0x5a, sizeof(hdata));
	n = cell_created2_encode(out, sizeof(out), hdata, sizeof(hdata));
	assert_int_equal(n, 66);
	assert_int_equal(cell_created2_parse(out, (size_t)n, &c2, NULL), PARSE_OK);
	assert_int_equal(c2.hlen, 64);
	assert_memory_equal(c2.hdata, hdata, 64);
	for (ssize_t k = 0; k < n; k++) {
		uint8_t *d = dup_exact(out, (size_t)k);

		assert_int_equal(cell_created2_parse(d, (size_t)k, &c2, NULL), PARSE_INVALID);
		free(d);
	}
	assert_int_equal(cell_created2_parse(bad, sizeof(bad), &c2, NULL), PARSE_INVALID);
}

static void test_cell_destroy_needs_a_reason(void **state)
{
	uint8_t r, out[CELL_LEN], body[1];
	struct cell_view v;
	size_t used;

	(void)state;
	assert_int_equal(cell_destroy_parse((const uint8_t *)"", 0, &r, NULL), PARSE_INVALID);
	assert_int_equal(cell_destroy_encode(body, 0, CELL_DESTROY_NONE), -ENOSPC);
	assert_int_equal(cell_destroy_encode(body, 1, CELL_DESTROY_NONE), 1);
	assert_int_equal(cell_fixed_encode(out, sizeof(out), 0x80000002u, CELL_DESTROY, body, 1),
			 CELL_LEN);
	assert_int_equal(cell_frame(out, sizeof(out), 4, &v, &used, NULL), PARSE_OK);
	assert_int_equal(cell_destroy_parse(v.payload, v.payload_len, &r, NULL), PARSE_OK);
	assert_int_equal(r, CELL_DESTROY_NONE);
}

static void test_cell_frame_waits_for_the_whole_of_a_65535_byte_var_cell(void **state)
{
	/* CircID 0, CERTS, Length ffff: 7 + 65535 bytes in all. */
	size_t total = CELL_VAR_HEADER_LEN + CELL_VAR_PAYLOAD_MAX;
	uint8_t *wire = calloc(1, total);
	struct cell_view v;
	size_t used = 0;

	(void)state;
	assert_non_null(wire);
	wire[4] = CELL_CERTS;
	wire[5] = 0xff;
	wire[6] = 0xff;
	assert_int_equal(cell_frame(wire, total - 1, 4, &v, &used, NULL), PARSE_NEED_MORE);
	assert_int_equal(cell_frame(wire, 100, 4, &v, &used, NULL), PARSE_NEED_MORE);
	assert_int_equal(cell_frame(wire, total, 4, &v, &used, NULL), PARSE_OK);
	assert_int_equal(v.payload_len, CELL_VAR_PAYLOAD_MAX);
	assert_int_equal(used, total);
	free(wire);
}

/* --- PADDING_NEGOTIATE --- */

static void test_cell_padding_negotiate_round_trips(void **state)
{
	struct cell_padding_negotiate pn = { 0, CELL_PADNEG_START, 1500, 9500 }, got;
	/* Version 0, Command 2, ito_low_ms 1500 = 0x05dc, ito_high 0x251c. */
	static const uint8_t want[] = { 0, 2, 0x05, 0xdc, 0x25, 0x1c };
	uint8_t out[16];

	(void)state;
	assert_int_equal(cell_padding_negotiate_encode(out, sizeof(out), &pn), 6);
	assert_memory_equal(out, want, 6);
	assert_int_equal(cell_padding_negotiate_parse(out, 6, &got, NULL), PARSE_OK);
	assert_int_equal(got.ito_high_ms, 9500);
	for (size_t k = 0; k < 6; k++) {
		uint8_t *d = dup_exact(out, k);

		assert_int_equal(cell_padding_negotiate_parse(d, k, &got, NULL), PARSE_INVALID);
		free(d);
	}
	out[0] = 1;
	assert_int_equal(cell_padding_negotiate_parse(out, 6, &got, NULL), PARSE_INVALID);
	out[0] = 0;
	out[1] = 3;
	assert_int_equal(cell_padding_negotiate_parse(out, 6, &got, NULL), PARSE_INVALID);
}

static void test_cell_create_fast_and_created_fast_bodies(void **state)
{
	uint8_t x[CELL_CREATE_FAST_LEN], out[64], body[CELL_CREATED_FAST_LEN];
	const uint8_t *y = NULL, *kh = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(x); i++)
		x[i] = (uint8_t)(i + 1);
	assert_int_equal(cell_create_fast_encode(out, sizeof(out), x), CELL_CREATE_FAST_LEN);
	assert_memory_equal(out, x, CELL_CREATE_FAST_LEN);
	assert_int_equal(cell_create_fast_encode(out, CELL_CREATE_FAST_LEN - 1, x), -ENOSPC);
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(0x80 + i);
	/* Y then KH; every shorter body is INVALID (tor-spec 5.1.5). */
	assert_int_equal(cell_created_fast_parse(body, sizeof(body), &y, &kh, NULL), PARSE_OK);
	assert_ptr_equal(y, body);
	assert_ptr_equal(kh, body + 20);
	for (size_t n = 0; n < sizeof(body); n++)
		assert_int_equal(cell_created_fast_parse(body, n, &y, &kh, NULL), PARSE_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cell_frames_first_versions_with_two_byte_circ_id),
		cmocka_unit_test(test_cell_versions_picks_highest_common_version),
		cmocka_unit_test(test_cell_frames_fixed_cell_of_514_bytes),
		cmocka_unit_test(test_cell_frames_var_cells_on_link_protocol_4),
		cmocka_unit_test(test_cell_frame_splits_back_to_back_cells),
		cmocka_unit_test(test_cell_frame_rejects_fixed_cell_before_versions),
		cmocka_unit_test(test_cell_frame_rejects_unsupported_link_protocols),
		cmocka_unit_test(test_cell_encoders_refuse_bad_sizes_and_commands),
		cmocka_unit_test(test_cell_command_names),
		cmocka_unit_test(test_cell_certs_splits_entries_and_ignores_trailing_bytes),
		cmocka_unit_test(test_cell_certs_rejects_duplicates_and_too_many),
		cmocka_unit_test(test_cell_certs_rejects_length_past_end),
		cmocka_unit_test(test_cell_auth_challenge_round_trips),
		cmocka_unit_test(test_cell_netinfo_client_encoding_is_exact),
		cmocka_unit_test(test_cell_netinfo_relay_form_with_ipv6_and_ignored_addresses),
		cmocka_unit_test(test_cell_netinfo_stores_only_first_addresses_but_checks_all),
		cmocka_unit_test(test_cell_create2_ntor_encoding_is_exact),
		cmocka_unit_test(test_cell_created2_round_trips_and_rejects_hlen_past_end),
		cmocka_unit_test(test_cell_destroy_needs_a_reason),
		cmocka_unit_test(test_cell_create_fast_and_created_fast_bodies),
		cmocka_unit_test(test_cell_frame_waits_for_the_whole_of_a_65535_byte_var_cell),
		cmocka_unit_test(test_cell_padding_negotiate_round_trips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
