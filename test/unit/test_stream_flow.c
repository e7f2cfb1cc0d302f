/* proto/circuit streams and flow control: DATA packing, circuit and stream
 * SENDME windows with SENDME v1 digests (tor-spec.txt 7.3, 7.3.1, 7.4),
 * the congestion window and XON/XOFF (proposal 324 §3, §4).
 *
 * The relays are simulated (test/unit/sim_relay.h, written from the spec
 * with core/crypto.h only): the exit checks every client SENDME v1 digest
 * against the running digest of its own cell, and tears the circuit down
 * on any window overrun. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/compiler.h"
#include "test/unit/sim_relay.h"

#define TEN_MB (10u * 1000u * 1000u)

static struct hx *hx_up(int relays, bool cc)
{
	struct hx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	hx_init(x, relays, cc, 31);
	assert_int_equal(hx_build(x, false, cc), relays);
	assert_int_equal(x->c.cc_on, cc);
	return x;
}

static void hx_free(struct hx *x)
{
	circ_clear(&x->c);
	free(x);
}

static void move_ten_megabytes_each_way(bool cc, size_t batch)
{
	struct hx *x = hx_up(3, cc);
	uint16_t sid = hx_open(x);
	uint64_t up = 0;
	struct sim_stream *st = sim_stream(&x->s, sid);

	x->batch = batch;
	assert_non_null(st);
	for (int i = 0; i < 200000 && (up < TEN_MB || x->rx[sid & 31] < TEN_MB); i++) {
		if (up < TEN_MB)
			up += hx_send(x, sid, MIN(TEN_MB - up, 64u * RELAY_DATA_MAX));
		if (st->tx < TEN_MB)
			sim_exit_send(&x->s, sid, MIN(TEN_MB - st->tx, 64u * RELAY_DATA_MAX));
		hx_deliver(x);
		assert_null(x->s.killed);
	}
	assert_int_equal(up, TEN_MB);
	assert_int_equal(st->rx, TEN_MB);
	assert_int_equal(x->rx[sid & 31], TEN_MB);
	assert_false(x->corrupt);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 0);
	/* Our SENDMEs: one per sendme_inc DATA cells, each v1 and checked. */
	assert_int_equal(x->s.sendmes_rx, x->s.data_tx / x->c.sendme_inc);
	assert_true(x->s.data_tx >= TEN_MB / RELAY_DATA_MAX);
	if (cc) {
		/* RTTs were sampled and Vegas left its initial window. */
		assert_true(x->c.cc.ewma_rtt_usec > 0);
		assert_int_not_equal(x->c.cc.cwnd, 124);
	}
	hx_free(x);
}

static void test_ten_megabytes_each_way_with_sendme_windows(void **state)
{
	(void)state;
	move_ten_megabytes_each_way(false, 32);
}

static void test_ten_megabytes_each_way_with_congestion_control(void **state)
{
	(void)state;
	move_ten_megabytes_each_way(true, 8);
}

static void test_sender_stops_at_exactly_the_stream_then_circuit_window(void **state)
{
	struct hx *x = hx_up(3, false);
	uint16_t a, b, c;

	(void)state;
	x->s.withhold = true;
	a = hx_open(x);
	assert_int_equal(hx_send_cells(x, a, 100000), 500);
	assert_int_equal(x->s.data_rx, 500);
	assert_false(circ_can_send(&x->c, a));
	b = hx_open(x);
	assert_int_equal(hx_send_cells(x, b, 100000), 500);
	assert_int_equal(x->s.data_rx, 1000);
	c = hx_open(x);
	assert_false(circ_can_send(&x->c, c)); /* the circuit window is spent */
	assert_int_equal(hx_send_cells(x, c, 100000), 0);
	assert_int_equal(x->c.package_window, 0);
	assert_null(x->s.killed);
	sim_release(&x->s);
	hx_deliver(x);
	assert_true(x->ev_count[CIRC_EV_WRITABLE] >= 3);
	assert_true(circ_can_send(&x->c, a));
	assert_true(circ_can_send(&x->c, c));
	assert_int_equal(hx_send(x, c, 100u * RELAY_DATA_MAX), 100u * RELAY_DATA_MAX);
	assert_null(x->s.killed);
	hx_free(x);
}

static void test_consensus_circwindow_bounds_the_package_window(void **state)
{
	struct hx *x = calloc(1, sizeof(*x));
	uint16_t sid;

	(void)state;
	assert_non_null(x);
	hx_init(x, 3, false, 31);
	x->c.params.circwindow = 300; /* tor-spec 7.3: 'circwindow' */
	assert_int_equal(hx_build(x, false, false), 3);
	x->s.withhold = true;
	sid = hx_open(x);
	assert_int_equal(hx_send_cells(x, sid, 100000), 300);
	assert_false(circ_can_send(&x->c, sid));
	assert_null(x->s.killed);
	hx_free(x);
}

static void test_congestion_window_stops_the_sender_at_cwnd(void **state)
{
	struct hx *x = hx_up(3, true);
	uint16_t sid;

	(void)state;
	x->s.withhold = true;
	sid = hx_open(x);
	assert_int_equal(hx_send_cells(x, sid, 100000), 124);
	assert_int_equal(x->s.data_rx, x->c.cc.cwnd);
	assert_int_equal(x->c.cc.inflight, 124);
	assert_false(circ_can_send(&x->c, sid));
	sim_release(&x->s);
	hx_deliver(x);
	assert_true(circ_can_send(&x->c, sid));
	assert_true(x->c.cc.cwnd > 124); /* slow start grew it */
	assert_null(x->s.killed);
	hx_free(x);
}

/* Send n DATA cells with the exit withholding its SENDMEs. */
static struct hx *sent_cells(bool cc, unsigned n, uint16_t *sid)
{
	struct hx *x = hx_up(3, cc);

	x->s.withhold = true;
	*sid = hx_open(x);
	assert_int_equal(hx_send_cells(x, *sid, n), n);
	return x;
}

/* The digest of the circuit SENDME the exit owes (stream ones have none). */
static const uint8_t *owed_circuit_digest(const struct sim *s)
{
	for (unsigned i = 0; i < s->owed_len; i++)
		if (s->owed_sid[i] == 0)
			return s->owed[i];
	fail();
	return NULL;
}

static void test_forged_sendme_digest_closes_circuit(void **state)
{
	uint8_t body[23] = { 1, 0, 20 };
	uint16_t sid;
	struct hx *x = sent_cells(false, 100, &sid);

	(void)state;
	assert_int_equal(x->s.owed_len, 1 + 2); /* 1 circuit + 2 stream SENDMEs */
	memcpy(body + 3, owed_circuit_digest(&x->s), 20);
	body[3 + 7] ^= 1;
	sim_send_from(&x->s, 2, RELAY_SENDME, 0, body, sizeof(body), NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	assert_string_equal(x->last[CIRC_EV_CLOSED].u.close.why,
			    "SENDME v1 digest does not match the cell sent");
	hx_free(x);

	/* The right digest is accepted. */
	x = sent_cells(false, 100, &sid);
	memcpy(body + 3, owed_circuit_digest(&x->s), 20);
	sim_send_from(&x->s, 2, RELAY_SENDME, 0, body, sizeof(body), NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 0);
	assert_int_equal(x->c.package_window, 1000);
	hx_free(x);
}

static void test_sendme_with_nothing_outstanding_closes_circuit(void **state)
{
	uint8_t body[23] = { 1, 0, 20 };
	uint16_t sid;
	struct hx *x = sent_cells(false, 99, &sid);

	(void)state;
	sim_send_from(&x->s, 2, RELAY_SENDME, 0, body, sizeof(body), NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	hx_free(x);
	/* With congestion control too. */
	x = sent_cells(true, 30, &sid);
	sim_send_from(&x->s, 2, RELAY_SENDME, 0, body, sizeof(body), NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	hx_free(x);
}

static void test_sendme_v0_refused_when_accept_min_version_is_one(void **state)
{
	uint16_t sid;
	struct hx *x = sent_cells(false, 100, &sid);

	(void)state;
	x->c.params.sendme_accept_min_version = 1;
	sim_send_from(&x->s, 2, RELAY_SENDME, 0, NULL, 0, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	hx_free(x);
	x = sent_cells(false, 100, &sid);
	sim_send_from(&x->s, 2, RELAY_SENDME, 0, NULL, 0, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 0);
	hx_free(x);
}

static void test_client_holds_stream_sendmes_while_not_reading(void **state)
{
	struct hx *x = hx_up(3, false);
	uint16_t sid = hx_open(x);
	struct sim_stream *st = sim_stream(&x->s, sid);

	(void)state;
	assert_int_equal(circ_stream_set_reading(&x->c, sid, false), 0);
	for (int i = 0; i < 20; i++) {
		sim_exit_send(&x->s, sid, 1000000);
		hx_deliver(x);
	}
	/* The exit's stream window (500 cells) is all it could send. */
	assert_int_equal(st->tx, 500u * RELAY_DATA_MAX);
	assert_int_equal(x->rx[sid & 31], 500u * RELAY_DATA_MAX);
	assert_int_equal(x->c.streams[sid & 31].deliver_window, 0);
	assert_int_equal(circ_stream_set_reading(&x->c, sid, true), 0);
	hx_flush(x);
	assert_int_equal(st->pkg, 500);
	sim_exit_send(&x->s, sid, 1000000);
	hx_deliver(x);
	assert_true(st->tx > 500u * RELAY_DATA_MAX);
	assert_null(x->s.killed);
	hx_free(x);
}

static void test_xoff_stops_and_xon_resumes_a_stream(void **state)
{
	static const uint8_t xoff[1] = { 0 }, xon[5] = { 0, 0, 0, 0, 0 };
	struct hx *x = hx_up(3, true);
	uint16_t sid = hx_open(x);

	(void)state;
	sim_send_from(&x->s, 2, RELAY_XOFF, sid, xoff, 1, NULL);
	hx_deliver(x);
	assert_false(circ_can_send(&x->c, sid));
	assert_int_equal(hx_send(x, sid, 10000), 0);
	sim_send_from(&x->s, 2, RELAY_XON, sid, xon, 5, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_WRITABLE], 1);
	assert_int_equal(x->last[CIRC_EV_WRITABLE].stream_id, sid);
	assert_true(circ_can_send(&x->c, sid));
	assert_int_equal(hx_send(x, sid, 10000), 10000);
	assert_null(x->s.killed);
	hx_free(x);
}

static void test_not_reading_sends_xoff_then_xon_with_cc(void **state)
{
	struct hx *x = hx_up(3, true);
	uint16_t sid = hx_open(x);
	struct sim_stream *st = sim_stream(&x->s, sid);

	(void)state;
	assert_int_equal(circ_stream_set_reading(&x->c, sid, false), 0);
	hx_flush(x);
	assert_true(st->xoff);
	assert_int_equal(sim_exit_send(&x->s, sid, 1000), 0);
	assert_int_equal(circ_stream_set_reading(&x->c, sid, true), 0);
	hx_flush(x);
	assert_false(st->xoff);
	assert_null(x->s.killed);
	hx_free(x);
}

static void test_xoff_without_cc_and_stream_sendme_with_cc_close_circuit(void **state)
{
	static const uint8_t xoff[1] = { 0 };
	struct hx *x = hx_up(3, false);
	uint16_t sid = hx_open(x);

	(void)state;
	sim_send_from(&x->s, 2, RELAY_XOFF, sid, xoff, 1, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	hx_free(x);
	x = hx_up(3, true);
	sid = hx_open(x);
	sim_send_from(&x->s, 2, RELAY_SENDME, sid, NULL, 0, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	hx_free(x);
}

static void test_data_for_unknown_stream_is_dropped_but_counted(void **state)
{
	struct hx *x = hx_up(3, false);

	(void)state;
	sim_send_from(&x->s, 2, RELAY_DATA, 999, (const uint8_t *)"abc", 3, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_DATA], 0);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 0);
	assert_int_equal(x->c.deliver_window, 999);
	hx_free(x);
}

static void test_data_from_a_middle_hop_closes_circuit(void **state)
{
	struct hx *x = hx_up(3, false);
	uint16_t sid = hx_open(x);

	(void)state;
	sim_send_from(&x->s, 1, RELAY_DATA, sid, (const uint8_t *)"abc", 3, NULL);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CLOSED], 1);
	hx_free(x);
}

/* tor-spec 6.2: DATA may follow BEGIN before CONNECTED (optimistic data);
 * the exit queues it and it counts against the same windows. Not for a
 * RESOLVE or a BEGIN_DIR, which carry no such data. */
static void test_optimistic_data_follows_begin_before_connected(void **state)
{
	struct hx *x = hx_up(3, false);
	uint8_t b[10] = { 0 };
	size_t taken = 0, n = 0;
	uint16_t sid = 0, rsid = 0, dsid = 0;
	struct sim_stream *st;

	(void)state;
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "example.com", 11, 80, 0, &sid, &x->cbuf[0]),
			 0);
	sim_from_client(&x->s, &x->cbuf[0]);
	/* No CONNECTED delivered yet: 3000 bytes go out right after BEGIN. */
	assert_int_equal(hx_send(x, sid, 3000), 3000);
	st = sim_stream(&x->s, sid);
	assert_non_null(st);
	assert_int_equal(st->rx, 3000);
	assert_int_equal(x->ev_count[CIRC_EV_CONNECTED], 0);
	hx_deliver(x);
	assert_int_equal(x->ev_count[CIRC_EV_CONNECTED], 1);
	assert_int_equal(hx_send(x, sid, 2000), 2000);
	assert_int_equal(st->rx, 5000);
	assert_null(x->s.killed);

	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_RESOLVE, "example.com", 11, 0, 0, &rsid, &x->cbuf[0]),
			 0);
	assert_int_equal(circ_stream_data(&x->c, rsid, b, sizeof(b), x->now, &taken, x->cptr, 1, &n), -EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN_DIR, NULL, 0, 0, 0, &dsid, &x->cbuf[0]), 0);
	assert_int_equal(circ_stream_data(&x->c, dsid, b, sizeof(b), x->now, &taken, x->cptr, 1, &n), -EINVAL);
	assert_int_equal(taken, 0);
	hx_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_optimistic_data_follows_begin_before_connected),
		cmocka_unit_test(test_ten_megabytes_each_way_with_sendme_windows),
		cmocka_unit_test(test_ten_megabytes_each_way_with_congestion_control),
		cmocka_unit_test(test_sender_stops_at_exactly_the_stream_then_circuit_window),
		cmocka_unit_test(test_consensus_circwindow_bounds_the_package_window),
		cmocka_unit_test(test_congestion_window_stops_the_sender_at_cwnd),
		cmocka_unit_test(test_forged_sendme_digest_closes_circuit),
		cmocka_unit_test(test_sendme_with_nothing_outstanding_closes_circuit),
		cmocka_unit_test(test_sendme_v0_refused_when_accept_min_version_is_one),
		cmocka_unit_test(test_client_holds_stream_sendmes_while_not_reading),
		cmocka_unit_test(test_xoff_stops_and_xon_resumes_a_stream),
		cmocka_unit_test(test_not_reading_sends_xoff_then_xon_with_cc),
		cmocka_unit_test(test_xoff_without_cc_and_stream_sendme_with_cc_close_circuit),
		cmocka_unit_test(test_data_for_unknown_stream_is_dropped_but_counted),
		cmocka_unit_test(test_data_from_a_middle_hop_closes_circuit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
