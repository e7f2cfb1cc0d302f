/* proto/cc: Tor Vegas congestion control (proposal 324 §2.1, §3.3) driven
 * with synthetic RTTs. The expected windows are worked out by hand from the
 * proposal's pseudocode and defaults (cc_sendme_inc 31, cc_cwnd_init 124,
 * cc_cwnd_inc_pct_ss 50, gamma 186, ss_max 5000), not by calling cc.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/cc.h"

#define MS 1000u

static void start(struct cc *cc)
{
	struct cc_params p;

	cc_params_default(&p);
	cc_init(cc, &p, 31, 31 * 256);
}

/* One SENDME with the window full (inflight = cwnd) at rtt. */
static void ack_full(struct cc *cc, uint64_t rtt)
{
	cc->inflight = cc->cwnd;
	assert_int_equal(cc_on_sendme(cc, rtt), 0);
}

static void test_cc_starts_at_cwnd_init_and_stops_at_cwnd(void **state)
{
	struct cc cc;

	(void)state;
	start(&cc);
	assert_int_equal(cc.cwnd, 124);
	assert_true(cc.in_slow_start);
	for (int i = 0; i < 124; i++) {
		assert_true(cc_can_send(&cc));
		cc_note_sent(&cc);
	}
	assert_false(cc_can_send(&cc));
	assert_int_equal(cc_package_window(&cc), 0);
}

static void test_cc_slow_start_adds_half_an_increment_per_full_ack(void **state)
{
	struct cc cc;

	(void)state;
	start(&cc);
	cc.inflight = 124;
	assert_int_equal(cc_on_sendme(&cc, 50 * MS), 0);
	/* round(50% * 31) = 16; the ack retires 31 cells. */
	assert_int_equal(cc.cwnd, 140);
	assert_int_equal(cc.inflight, 93);
	assert_int_equal(cc.ewma_rtt_usec, 50 * MS);
	assert_int_equal(cc.min_rtt_usec, 50 * MS);
	for (int i = 0; i < 10; i++)
		ack_full(&cc, 50 * MS);
	assert_int_equal(cc.cwnd, 300);
	assert_true(cc.in_slow_start);
}

static void test_cc_not_full_window_does_not_grow(void **state)
{
	struct cc cc;

	(void)state;
	start(&cc);
	cc.inflight = 40; /* 40 + 31 < 124 and 100*40 < 75*124: not full */
	assert_int_equal(cc_on_sendme(&cc, 50 * MS), 0);
	assert_int_equal(cc.cwnd, 124);
	assert_int_equal(cc.inflight, 9);
}

static void test_cc_queue_delay_exits_slow_start_at_bdp_plus_gamma(void **state)
{
	struct cc cc;

	(void)state;
	start(&cc);
	for (int i = 0; i < 11; i++)
		ack_full(&cc, 50 * MS);
	assert_int_equal(cc.cwnd, 300);
	ack_full(&cc, 200 * MS);
	/* ewma = (2*200 + 1*50)/3 = 150 ms; BDP = 300*50/150 = 100;
	 * queue 200 > gamma 186: cwnd = 100 + 186. */
	assert_int_equal(cc.ewma_rtt_usec, 150 * MS);
	assert_false(cc.in_slow_start);
	assert_int_equal(cc.cwnd, 286);
}

static void test_cc_steady_state_grows_at_min_rtt_and_shrinks_on_delay(void **state)
{
	struct cc cc;
	int64_t before;

	(void)state;
	start(&cc);
	for (int i = 0; i < 11; i++)
		ack_full(&cc, 50 * MS);
	ack_full(&cc, 200 * MS);
	before = cc.cwnd;
	for (int i = 0; i < 40; i++)
		ack_full(&cc, 50 * MS);
	assert_true(cc.cwnd > before);
	assert_false(cc.in_slow_start);
	before = cc.cwnd;
	for (int i = 0; i < 40; i++)
		ack_full(&cc, 500 * MS);
	assert_true(cc.cwnd < before);
	/* Under a 100x RTT Vegas backs off until the queue estimate
	 * cwnd * (1 - 1/100) is at most beta (248): cwnd <= 250. */
	for (int i = 0; i < 400; i++)
		ack_full(&cc, 5000 * MS);
	assert_true(cc.cwnd <= 250);
	assert_true(cc.cwnd >= 200);
}

static void test_cc_delta_backoff_stops_at_cwnd_min(void **state)
{
	struct cc_params p;
	struct cc cc;

	(void)state;
	cc_params_default(&p);
	p.vegas_alpha = p.vegas_beta = p.vegas_gamma = p.vegas_delta = 0;
	cc_init(&cc, &p, 31, 31 * 256);
	ack_full(&cc, 50 * MS);
	for (int i = 0; i < 100; i++)
		ack_full(&cc, 500 * MS);
	/* queue > delta: cwnd = BDP + 0 - 31, floored at cc_cwnd_min. */
	assert_int_equal(cc.cwnd, 31);
}

static void test_cc_slow_start_is_capped_at_ss_max(void **state)
{
	struct cc cc;

	(void)state;
	start(&cc);
	for (int i = 0; i < 2000 && cc.in_slow_start; i++)
		ack_full(&cc, 50 * MS);
	assert_false(cc.in_slow_start);
	assert_int_equal(cc.cwnd, 5000);
}

static void test_cc_cwnd_never_exceeds_the_digest_ring_cap(void **state)
{
	struct cc_params p;
	struct cc cc;

	(void)state;
	cc_params_default(&p);
	cc_init(&cc, &p, 31, 200);
	for (int i = 0; i < 100; i++)
		ack_full(&cc, 50 * MS);
	assert_true(cc.cwnd <= 200);
	assert_true(cc.cwnd >= 190);
}

static void test_cc_zero_rtt_is_a_clock_stall(void **state)
{
	struct cc cc;

	(void)state;
	start(&cc);
	ack_full(&cc, 50 * MS);
	cc.inflight = cc.cwnd;
	assert_int_equal(cc_on_sendme(&cc, 0), 0);
	assert_int_equal(cc.cwnd, 140);
	assert_int_equal(cc.inflight, 140 - 31);
	assert_int_equal(cc.ewma_rtt_usec, 50 * MS);
	assert_true(cc.clock_stalled);
}

static void test_cc_rtt_jump_after_slow_start_is_ignored(void **state)
{
	struct cc cc;
	uint64_t ewma;
	int64_t cwnd;

	(void)state;
	start(&cc);
	for (int i = 0; i < 11; i++)
		ack_full(&cc, 50 * MS);
	ack_full(&cc, 200 * MS);
	ewma = cc.ewma_rtt_usec;
	cwnd = cc.cwnd;
	ack_full(&cc, ewma * 5001);
	assert_int_equal(cc.ewma_rtt_usec, ewma);
	assert_int_equal(cc.cwnd, cwnd);
}

static void test_cc_sendme_for_cells_never_sent_is_refused(void **state)
{
	struct cc cc;

	(void)state;
	start(&cc);
	cc.inflight = 30;
	assert_int_equal(cc_on_sendme(&cc, 50 * MS), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cc_starts_at_cwnd_init_and_stops_at_cwnd),
		cmocka_unit_test(test_cc_slow_start_adds_half_an_increment_per_full_ack),
		cmocka_unit_test(test_cc_not_full_window_does_not_grow),
		cmocka_unit_test(test_cc_queue_delay_exits_slow_start_at_bdp_plus_gamma),
		cmocka_unit_test(test_cc_steady_state_grows_at_min_rtt_and_shrinks_on_delay),
		cmocka_unit_test(test_cc_delta_backoff_stops_at_cwnd_min),
		cmocka_unit_test(test_cc_slow_start_is_capped_at_ss_max),
		cmocka_unit_test(test_cc_cwnd_never_exceeds_the_digest_ring_cap),
		cmocka_unit_test(test_cc_zero_rtt_is_a_clock_stall),
		cmocka_unit_test(test_cc_rtt_jump_after_slow_start_is_ignored),
		cmocka_unit_test(test_cc_sendme_for_cells_never_sent_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
