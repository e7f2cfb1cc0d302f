/* proto/circuit: building client circuits and handling what comes back
 * (tor-spec.txt 5, 6; proposals 324 §10, 332).
 *
 * The relays are simulated (test/unit/sim_relay.h): the relay side of
 * ntor, ntor v3 and CREATE_FAST and the tor1 relay crypto written from the
 * spec with core/crypto.h only, an independent computation. KDF-TOR known
 * answers come from test/vectors/handshake/gen_kdf_tor.py (hashlib). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "test/unit/sim_relay.h"
#include "test/vectors/handshake/kdf_tor.inc"

static size_t hex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = strlen(h) / 2;

	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static struct hx *hx_new(int relays, bool cc, uint8_t inc)
{
	struct hx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	hx_init(x, relays, cc, inc);
	return x;
}

static void hx_free(struct hx *x)
{
	circ_clear(&x->c);
	free(x);
}

static void test_kdf_tor_matches_independent_vectors(void **state)
{
	uint8_t k0[40], want[92], got[92], short_k0[3], want45[45];

	(void)state;
	hex(KDF_TOR_X, k0, 20);
	hex(KDF_TOR_Y, k0 + 20, 20);
	hex(KDF_TOR_K92, want, sizeof(want));
	circ_kdf_tor(k0, 40, got, 92);
	assert_memory_equal(got, want, 92);
	hex(KDF_TOR_SHORT_K0, short_k0, 3);
	hex(KDF_TOR_SHORT45, want45, 45);
	circ_kdf_tor(short_k0, 3, got, 45);
	assert_memory_equal(got, want45, 45);
}

static void test_create_fast_installs_kdf_tor_keys_and_checks_kh(void **state)
{
	struct hx *x = hx_new(1, false, 31);
	uint8_t k[92], y[20], d[20], want[20];
	struct cell cl, *in[1] = { &cl };
	struct circ_event ev[2];
	size_t nev;

	(void)state;
	assert_int_equal(circ_begin_create_fast(&x->c, &cl), 0);
	assert_int_equal(cl.command, CELL_CREATE_FAST);
	/* Test hook: plant the vector's X as the handshake secret. */
	hex(KDF_TOR_X, x->c.hs.fast_x, 20);
	hex(KDF_TOR_Y, y, 20);
	hex(KDF_TOR_K92, k, 92);
	memset(&cl, 0, sizeof(cl));
	cl.command = CELL_CREATED_FAST;
	memcpy(cl.payload, y, 20);
	memcpy(cl.payload + 20, k, 20); /* KH */
	circ_input_cells(&x->c, in, 1, 0, ev, 2, &nev);
	assert_int_equal(nev, 1);
	assert_int_equal(ev[0].type, CIRC_EV_HOP_ADDED);
	/* Df and Db seed the running digests (5.2.1: K = KH Df Db Kf Kb). */
	relay_crypto_hop_digest(&x->c.crypto, 0, true, d);
	crypto_sha1(k + 20, 20, want);
	assert_memory_equal(d, want, 20);
	relay_crypto_hop_digest(&x->c.crypto, 0, false, d);
	crypto_sha1(k + 40, 20, want);
	assert_memory_equal(d, want, 20);
	hx_free(x);

	/* A KH that does not match closes the circuit. */
	x = hx_new(1, false, 31);
	assert_int_equal(circ_begin_create_fast(&x->c, &cl), 0);
	memset(&cl, 0, sizeof(cl));
	cl.command = CELL_CREATED_FAST;
	memcpy(cl.payload, y, 20);
	memcpy(cl.payload + 20, k, 20);
	circ_input_cells(&x->c, in, 1, 0, ev, 2, &nev);
	assert_int_equal(ev[0].type, CIRC_EV_CLOSED);
	assert_int_equal(ev[0].u.close.reason, CELL_DESTROY_PROTOCOL);
	assert_int_equal(x->c.n_hops, 0);
	hx_free(x);
}

static void test_create_fast_circuit_carries_a_begin_dir_stream(void **state)
{
	struct hx *x = hx_new(1, false, 31);
	uint16_t sid;

	(void)state;
	assert_int_equal(hx_build(x, true, false), 1);
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN_DIR, NULL, 0, 0, 0, &sid,
					  &x->cbuf[0]), 0);
	/* One hop: BEGIN_DIR goes in plain RELAY (5.6: early only past hop 0). */
	assert_int_equal(x->cbuf[0].command, CELL_RELAY);
	sim_from_client(&x->s, &x->cbuf[0]);
	hx_deliver(x);
	assert_null(x->s.killed);
	assert_int_equal(x->ev_count[CIRC_EV_CONNECTED], 1);
	assert_int_equal(x->last[CIRC_EV_CONNECTED].u.connected.addr_type, 0);
	assert_true(circ_can_send(&x->c, sid));
	hx_free(x);
}

static void test_three_hops_with_ntor_and_extend2_in_relay_early(void **state)
{
	struct hx *x = hx_new(3, false, 31);

	(void)state;
	assert_int_equal(hx_build(x, false, false), 3);
	assert_null(x->s.killed);
	assert_int_equal(x->ev_count[CIRC_EV_HOP_ADDED], 3);
	assert_int_equal(x->last[CIRC_EV_HOP_ADDED].hop, 2);
	assert_int_equal(x->s.early_seen, 2);
	assert_false(x->c.cc_on);
	assert_int_equal(x->c.package_window, 1000);
	hx_free(x);
}

static void test_ntor3_to_the_exit_negotiates_congestion_control(void **state)
{
	struct hx *x = hx_new(3, true, 31);

	(void)state;
	assert_int_equal(hx_build(x, false, true), 3);
	assert_null(x->s.killed);
	assert_true(x->s.cc);
	assert_true(x->c.cc_on);
	assert_int_equal(x->c.sendme_inc, 31);
	assert_int_equal(x->c.cc.cwnd, 124);
	hx_free(x);
}

static void test_no_cc_request_when_consensus_cc_alg_is_zero(void **state)
{
	struct hx *x = hx_new(3, true, 31);

	(void)state;
	x->c.params.cc.alg = 0;
	assert_int_equal(hx_build(x, false, true), 3);
	assert_false(x->s.cc); /* the relay saw plain ntor */
	assert_false(x->c.cc_on);
	hx_free(x);
}

static void test_cc_response_with_far_sendme_inc_closes_circuit(void **state)
{
	struct hx *x = hx_new(3, true, 100); /* consensus says 31: > factor 2 */

	(void)state;
	hx_build(x, false, true);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	assert_int_equal(x->c.state, CIRC_ST_CLOSED);
	assert_int_equal(x->c.n_hops, 2);
	hx_free(x);
}

static void test_ninth_relay_early_is_sent_as_relay(void **state)
{
	struct hx *x = hx_new(3, false, 31);
	struct hop_target t;
	uint16_t sid;
	int early = 0;

	(void)state;
	hx_build(x, false, false); /* 2 RELAY_EARLY */
	sid = hx_open(x);          /* the 3rd */
	for (int i = 0; i < 10; i++) {
		size_t taken, n;
		uint8_t b[10] = { 0 };

		for (int j = 0; j < 10; j++)
			b[j] = sim_pattern(sid, x->tx[sid & 31] + (unsigned)j);
		assert_int_equal(circ_stream_data(&x->c, sid, b, 10, 0, &taken, x->cptr, 1, &n), 0);
		assert_int_equal(n, 1);
		x->tx[sid & 31] += 10;
		early += x->cptr[0]->command == CELL_RELAY_EARLY;
		assert_true(x->cptr[0]->command == CELL_RELAY_EARLY ||
			    x->cptr[0]->command == CELL_RELAY);
		sim_from_client(&x->s, x->cptr[0]);
	}
	assert_int_equal(early, 5);
	assert_int_equal(x->s.early_seen, 8);
	assert_null(x->s.killed);
	assert_int_equal(circ_stream_end(&x->c, sid, RELAY_END_DONE, &x->cbuf[0]), 0);
	sim_from_client(&x->s, &x->cbuf[0]);
	sim_target(&x->s, 2, &t, false);
	assert_int_equal(circ_begin_extend(&x->c, &t, &x->cbuf[0]), -ENOSPC);
	hx_free(x);
}

static void test_begin_connected_and_end_with_reasons(void **state)
{
	struct hx *x = hx_new(3, false, 31);
	uint16_t sid;

	(void)state;
	hx_build(x, false, false);
	sid = hx_open(x);
	assert_int_equal(x->ev_count[CIRC_EV_CONNECTED], 1);
	assert_int_equal(x->last[CIRC_EV_CONNECTED].stream_id, sid);
	assert_int_equal(x->last[CIRC_EV_CONNECTED].u.connected.addr_type, CELL_ADDR_IPV4);
	assert_int_equal(x->last[CIRC_EV_CONNECTED].u.connected.ttl, 300);
	/* Our END reaches the exit with its reason and frees the id. */
	assert_int_equal(circ_stream_end(&x->c, sid, RELAY_END_DONE, &x->cbuf[0]), 0);
	sim_from_client(&x->s, &x->cbuf[0]);
	assert_int_equal(x->s.st[0].end_reason, RELAY_END_DONE);
	assert_false(circ_can_send(&x->c, sid));
	assert_int_equal(circ_stream_end(&x->c, sid, RELAY_END_DONE, &x->cbuf[0]), -EINVAL);
	/* The exit refuses the next one: END with EXITPOLICY. */
	x->s.refuse_begin = true;
	sid = hx_open(x);
	assert_int_equal(x->ev_count[CIRC_EV_END], 1);
	assert_int_equal(x->last[CIRC_EV_END].stream_id, sid);
	assert_int_equal(x->last[CIRC_EV_END].u.end.reason, RELAY_END_EXITPOLICY);
	assert_int_equal(circ_stream_end(&x->c, sid, RELAY_END_DONE, &x->cbuf[0]), -EINVAL);
	hx_free(x);
}

static void test_begin_carries_host_port_and_flags(void **state)
{
	struct hx *x = hx_new(3, false, 31);
	uint16_t sid;

	(void)state;
	hx_build(x, false, false);
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "2001:db8::1", 11, 443,
					  RELAY_BEGIN_FLAG_IPV6_OK | RELAY_BEGIN_FLAG_IPV6_PREFERRED,
					  &sid, &x->cbuf[0]), 0);
	assert_int_equal(x->cbuf[0].command, CELL_RELAY_EARLY); /* 3rd of 8, past hop 0 */
	sim_from_client(&x->s, &x->cbuf[0]);
	assert_null(x->s.killed);
	assert_int_equal(x->s.begin_cmd, RELAY_BEGIN);
	assert_string_equal(x->s.begin_host, "2001:db8::1");
	assert_int_equal(x->s.begin_port, 443);
	assert_int_equal(x->s.begin_flags,
			 RELAY_BEGIN_FLAG_IPV6_OK | RELAY_BEGIN_FLAG_IPV6_PREFERRED);
	hx_free(x);
}

static void test_resolve_yields_resolved_body(void **state)
{
	struct hx *x = hx_new(3, false, 31);
	struct relay_resolved_answer a[2];
	size_t total;
	uint16_t sid;

	(void)state;
	hx_build(x, false, false);
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_RESOLVE, "example.com", 11, 0, 0,
					  &sid, &x->cbuf[0]), 0);
	sim_from_client(&x->s, &x->cbuf[0]);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_RESOLVED], 1);
	assert_int_equal(x->last[CIRC_EV_RESOLVED].stream_id, sid);
	/* The body borrows the input cell, which nothing has reused yet. */
	assert_int_equal(relay_resolved_parse(x->last[CIRC_EV_RESOLVED].u.raw.body,
					      x->last[CIRC_EV_RESOLVED].u.raw.len, a, 2, &total,
					      NULL), PARSE_OK);
	assert_int_equal(total, 1);
	assert_int_equal(a[0].type, RELAY_RESOLVED_IPV4);
	assert_memory_equal(a[0].value, "\x0a\x00\x00\x07", 4);
	assert_int_equal(a[0].ttl, 60);
	/* A RESOLVE stream is single-use: the id is free again. */
	assert_false(circ_can_send(&x->c, sid));
	hx_free(x);
}

static void test_stream_ids_are_nonzero_unique_and_bounded(void **state)
{
	struct hx *x = hx_new(3, false, 31);
	uint16_t ids[CIRC_STREAMS_MAX], sid;

	(void)state;
	hx_build(x, false, false);
	for (int i = 0; i < CIRC_STREAMS_MAX; i++) {
		assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "a.b", 3, 443, 0,
						  &ids[i], &x->cbuf[0]), 0);
		assert_int_not_equal(ids[i], 0);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(ids[i], ids[j]);
	}
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "a.b", 3, 443, 0, &sid,
					  &x->cbuf[0]), -EAGAIN);
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "", 0, 443, 0, &sid,
					  &x->cbuf[0]), -EINVAL);
	hx_free(x);
}

static void test_cell_recognized_by_no_hop_closes_circuit(void **state)
{
	struct hx *x = hx_new(3, false, 31);
	uint8_t junk[CELL_PAYLOAD_LEN];

	(void)state;
	hx_build(x, false, false);
	crypto_rand(junk, sizeof(junk));
	sim_send_cell(&x->s, CELL_RELAY, junk, sizeof(junk));
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	assert_int_equal(x->last[CIRC_EV_CLOSED].u.close.reason, CELL_DESTROY_PROTOCOL);
	assert_int_equal(x->c.state, CIRC_ST_CLOSED);
	hx_free(x);
}

static void test_client_only_relay_commands_close_circuit(void **state)
{
	static const uint8_t cmds[] = { RELAY_BEGIN, RELAY_EXTEND2, RELAY_BEGIN_DIR, RELAY_TRUNCATE };

	(void)state;
	for (size_t i = 0; i < sizeof(cmds); i++) {
		struct hx *x = hx_new(3, false, 31);

		hx_build(x, false, false);
		sim_send_from(&x->s, 2, cmds[i], 0, NULL, 0, NULL);
		hx_deliver(x);
		assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
		hx_free(x);
	}
}

static void test_drop_and_unknown_commands_are_ignored(void **state)
{
	struct hx *x = hx_new(3, false, 31);

	(void)state;
	hx_build(x, false, false);
	sim_send_from(&x->s, 1, RELAY_DROP, 0, NULL, 0, NULL);
	sim_send_from(&x->s, 2, 200, 0, (const uint8_t *)"x", 1, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 0);
	assert_int_equal(x->c.state, CIRC_ST_OPEN);
	hx_free(x);
}

static void test_destroy_closes_circuit_and_later_cells_are_ignored(void **state)
{
	struct hx *x = hx_new(3, false, 31);
	uint8_t reason = CELL_DESTROY_FINISHED;

	(void)state;
	hx_build(x, false, false);
	sim_send_cell(&x->s, CELL_DESTROY, &reason, 1);
	sim_send_from(&x->s, 2, RELAY_DROP, 0, NULL, 0, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_DESTROYED], 1);
	assert_int_equal(x->last[CIRC_EV_DESTROYED].u.close.reason, CELL_DESTROY_FINISHED);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 0);
	assert_int_equal(x->c.state, CIRC_ST_CLOSED);
	hx_free(x);
}

static void test_truncated_drops_later_hops_and_closes(void **state)
{
	struct hx *x = hx_new(3, false, 31);
	uint8_t reason = CELL_DESTROY_CONNECTFAILED;
	struct cell d;

	(void)state;
	hx_build(x, false, false);
	sim_send_from(&x->s, 1, RELAY_TRUNCATED, 0, &reason, 1, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_TRUNCATED], 1);
	assert_int_equal(x->last[CIRC_EV_TRUNCATED].hop, 1);
	assert_int_equal(x->last[CIRC_EV_TRUNCATED].u.close.reason, CELL_DESTROY_CONNECTFAILED);
	assert_int_equal(x->c.n_hops, 2);
	assert_int_equal(x->c.crypto.n_hops, 2);
	assert_int_equal(x->c.state, CIRC_ST_CLOSED);
	circ_destroy_cell(&x->c, &d);
	assert_int_equal(d.command, CELL_DESTROY);
	assert_int_equal(d.payload[0], CELL_DESTROY_NONE);
	assert_int_equal(d.circ_id, x->c.circ_id);
	hx_free(x);
}

static void test_unexpected_created2_and_extended2_close_circuit(void **state)
{
	struct hx *x = hx_new(3, false, 31);
	uint8_t body[70] = { 0, 64 };

	(void)state;
	hx_build(x, false, false);
	sim_send_from(&x->s, 2, RELAY_EXTENDED2, 0, body, sizeof(body) - 4, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	hx_free(x);
	x = hx_new(3, false, 31);
	hx_build(x, false, false);
	sim_send_cell(&x->s, CELL_CREATED2, body, sizeof(body));
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	hx_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kdf_tor_matches_independent_vectors),
		cmocka_unit_test(test_create_fast_installs_kdf_tor_keys_and_checks_kh),
		cmocka_unit_test(test_create_fast_circuit_carries_a_begin_dir_stream),
		cmocka_unit_test(test_three_hops_with_ntor_and_extend2_in_relay_early),
		cmocka_unit_test(test_ntor3_to_the_exit_negotiates_congestion_control),
		cmocka_unit_test(test_no_cc_request_when_consensus_cc_alg_is_zero),
		cmocka_unit_test(test_cc_response_with_far_sendme_inc_closes_circuit),
		cmocka_unit_test(test_ninth_relay_early_is_sent_as_relay),
		cmocka_unit_test(test_begin_connected_and_end_with_reasons),
		cmocka_unit_test(test_begin_carries_host_port_and_flags),
		cmocka_unit_test(test_resolve_yields_resolved_body),
		cmocka_unit_test(test_stream_ids_are_nonzero_unique_and_bounded),
		cmocka_unit_test(test_cell_recognized_by_no_hop_closes_circuit),
		cmocka_unit_test(test_client_only_relay_commands_close_circuit),
		cmocka_unit_test(test_drop_and_unknown_commands_are_ignored),
		cmocka_unit_test(test_destroy_closes_circuit_and_later_cells_are_ignored),
		cmocka_unit_test(test_truncated_drops_later_hops_and_closes),
		cmocka_unit_test(test_unexpected_created2_and_extended2_close_circuit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
