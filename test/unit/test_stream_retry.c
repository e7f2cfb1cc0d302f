/* Tests for app/stream_retry: which failures before CONNECTED get another
 * circuit (tor's connection_ap_process_end_not_open and
 * connection_ap_expire_beginning), the exits a stream avoids afterwards,
 * the backoff, the SocksTimeout deadline and the reply the client gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "app/stream_retry.h"
#include "proto/relay.h"

#define MS 1000000ull
#define S 1000000000ull
#define T0 (1000 * S)

static void id_of(uint8_t out[20], uint8_t tag)
{
	memset(out, tag, 20);
}

static void test_exit_policy_end_retries_elsewhere_without_a_count_limit(void **state)
{
	struct stream_retry r;
	struct retry_verdict v;
	uint8_t id[20];

	(void)state;
	stream_retry_init(&r, T0 + 120 * S);
	for (uint8_t k = 1; k <= 6; k++) {
		stream_retry_attempt(&r);
		id_of(id, k);
		stream_retry_failed(&r, RETRY_END, RELAY_END_EXITPOLICY, id, T0, "EXITPOLICY", &v);
		assert_true(v.retry);
		/* tor keeps the circuit for other addresses; only this stream
		 * avoids the exit. */
		assert_false(v.circuit_unusable);
		assert_true(stream_retry_excludes(&r, id));
	}
	assert_int_equal(r.nexcluded, 6);
	id_of(id, 99);
	assert_false(stream_retry_excludes(&r, id));
}

static void test_resolve_failed_gives_up_after_tors_three_failures(void **state)
{
	struct stream_retry r;
	struct retry_verdict v;
	uint8_t a[20], b[20], c[20];

	(void)state;
	id_of(a, 1);
	id_of(b, 2);
	id_of(c, 3);
	stream_retry_init(&r, T0 + 120 * S);
	stream_retry_failed(&r, RETRY_END, RELAY_END_RESOLVEFAILED, a, T0, "RESOLVEFAILED", &v);
	assert_true(v.retry);
	assert_true(v.circuit_unusable);
	stream_retry_failed(&r, RETRY_END, RELAY_END_MISC, b, T0, "MISC", &v);
	assert_true(v.retry);
	stream_retry_failed(&r, RETRY_END, RELAY_END_RESOLVEFAILED, c, T0, "RESOLVEFAILED", &v);
	assert_false(v.retry);
	assert_int_equal(v.code, SOCKS5_HOST_UNREACHABLE);
	assert_string_equal(v.why, "RESOLVEFAILED");
}

static void test_connection_refused_ends_at_once_with_tors_reply(void **state)
{
	struct stream_retry r;
	struct retry_verdict v;
	uint8_t a[20];

	(void)state;
	id_of(a, 7);
	stream_retry_init(&r, T0 + 120 * S);
	stream_retry_failed(&r, RETRY_END, RELAY_END_CONNECTREFUSED, a, T0, "CONNECTREFUSED", &v);
	assert_false(v.retry);
	assert_int_equal(v.code, SOCKS5_CONNECTION_REFUSED);
	assert_false(stream_retry_excludes(&r, a));
	stream_retry_init(&r, T0 + 120 * S);
	stream_retry_failed(&r, RETRY_END, RELAY_END_DONE, a, T0, "DONE", &v);
	assert_false(v.retry);
}

static void test_full_exit_is_avoided_and_its_circuit_retired(void **state)
{
	struct stream_retry r;
	struct retry_verdict v;
	uint8_t a[20];

	(void)state;
	id_of(a, 5);
	stream_retry_init(&r, T0 + 120 * S);
	for (int k = 0; k < 5; k++) {
		stream_retry_failed(&r, RETRY_END, RELAY_END_RESOURCELIMIT, a, T0, "RESOURCELIMIT", &v);
		assert_true(v.retry);
		assert_true(v.circuit_unusable);
	}
	assert_true(stream_retry_excludes(&r, a));
	assert_int_equal(r.nexcluded, 1); /* remembered once */
}

static void test_backoff_doubles_from_200_ms_up_to_5_s(void **state)
{
	static const uint64_t want_ms[] = { 200, 400, 800, 1600, 3200, 5000, 5000, 5000 };
	struct stream_retry r;
	struct retry_verdict v;

	(void)state;
	stream_retry_init(&r, T0 + 3600 * S);
	for (size_t k = 0; k < sizeof(want_ms) / sizeof(want_ms[0]); k++) {
		stream_retry_failed(&r, RETRY_CIRCUIT, 0, NULL, T0, "circuit build timed out", &v);
		assert_true(v.retry);
		assert_false(v.circuit_unusable);
		assert_int_equal(v.at_ns - T0, want_ms[k] * MS);
	}
	assert_int_equal(r.nexcluded, 0); /* circuit trouble names no exit */
}

static void test_no_retry_is_scheduled_past_the_deadline(void **state)
{
	struct stream_retry r;
	struct retry_verdict v;

	(void)state;
	stream_retry_init(&r, T0 + 1 * S);
	stream_retry_failed(&r, RETRY_NO_CIRCUIT, 0, NULL, T0, "no usable directory yet", &v);
	assert_true(v.retry);
	assert_int_equal(v.at_ns, T0 + 200 * MS);
	/* 400 ms from T0 + 700 ms would end after the deadline: stop now with
	 * the last error. */
	stream_retry_failed(&r, RETRY_CIRCUIT, 0, NULL, T0 + 700 * MS, "channel closed", &v);
	assert_false(v.retry);
	assert_int_equal(v.code, SOCKS5_GENERAL_FAILURE);
	assert_string_equal(v.why, "channel closed");
}

static void test_no_exit_left_gives_the_last_exit_error(void **state)
{
	struct stream_retry r;
	struct retry_verdict v;
	uint8_t a[20];

	(void)state;
	id_of(a, 1);
	stream_retry_init(&r, T0 + 120 * S);
	stream_retry_failed(&r, RETRY_END, RELAY_END_EXITPOLICY, a, T0, "EXITPOLICY", &v);
	assert_true(v.retry);
	stream_retry_failed(&r, RETRY_NO_EXIT, 0, NULL, T0 + 200 * MS, "no usable exit allows the requested port",
			    &v);
	assert_false(v.retry);
	assert_int_equal(v.code, SOCKS5_NOT_ALLOWED);
	assert_string_equal(v.why, "EXITPOLICY");

	stream_retry_init(&r, T0 + 120 * S);
	stream_retry_failed(&r, RETRY_END, RELAY_END_RESOLVEFAILED, a, T0, "RESOLVEFAILED", &v);
	stream_retry_failed(&r, RETRY_NO_EXIT, 0, NULL, T0, "no usable exit allows the requested port", &v);
	assert_false(v.retry);
	assert_int_equal(v.code, SOCKS5_HOST_UNREACHABLE);

	/* No exit allows the port at all: tor rejects at once. */
	stream_retry_init(&r, T0 + 120 * S);
	stream_retry_failed(&r, RETRY_NO_EXIT, 0, NULL, T0, "no usable exit allows the requested port", &v);
	assert_false(v.retry);
	assert_int_equal(v.code, SOCKS5_NOT_ALLOWED);
	assert_string_equal(v.why, "no usable exit allows the requested port");
}

static void test_attempt_timeout_is_10_s_twice_then_15_s_and_avoids_the_exit(void **state)
{
	struct stream_retry r;
	struct retry_verdict v;
	uint8_t a[20];

	(void)state;
	id_of(a, 3);
	stream_retry_init(&r, T0 + 120 * S);
	stream_retry_attempt(&r);
	assert_int_equal(stream_retry_attempt_timeout_ns(&r), 10 * S);
	stream_retry_attempt(&r);
	assert_int_equal(stream_retry_attempt_timeout_ns(&r), 10 * S);
	stream_retry_attempt(&r);
	assert_int_equal(stream_retry_attempt_timeout_ns(&r), 15 * S);
	stream_retry_failed(&r, RETRY_TIMEOUT, 0, a, T0 + 10 * S, "the exit did not answer", &v);
	assert_true(v.retry);
	assert_true(v.circuit_unusable);
	assert_true(stream_retry_excludes(&r, a));
}

static void test_expiry_reports_the_last_error_or_ttl_expired(void **state)
{
	struct stream_retry r;
	struct retry_verdict v;
	enum socks5_reply code;
	const char *why;

	(void)state;
	stream_retry_init(&r, T0 + 120 * S);
	stream_retry_expired(&r, &code, &why);
	assert_int_equal(code, SOCKS5_TTL_EXPIRED);
	assert_non_null(why);
	stream_retry_failed(&r, RETRY_CIRCUIT, 0, NULL, T0, "circuit build timed out", &v);
	stream_retry_expired(&r, &code, &why);
	assert_int_equal(code, SOCKS5_GENERAL_FAILURE);
	assert_string_equal(why, "circuit build timed out");
	stream_retry_failed(&r, RETRY_TIMEOUT, 0, NULL, T0, "the exit did not answer", &v);
	stream_retry_expired(&r, &code, &why);
	assert_int_equal(code, SOCKS5_TTL_EXPIRED);
}

static void test_exclusion_list_forgets_the_oldest_when_full(void **state)
{
	struct stream_retry r;
	struct retry_verdict v;
	uint8_t id[20];

	(void)state;
	stream_retry_init(&r, T0 + 3600 * S);
	for (uint8_t k = 1; k <= RETRY_EXCLUDE_MAX + 2; k++) {
		id_of(id, k);
		stream_retry_failed(&r, RETRY_END, RELAY_END_EXITPOLICY, id, T0, "EXITPOLICY", &v);
		assert_true(v.retry);
	}
	assert_int_equal(r.nexcluded, RETRY_EXCLUDE_MAX);
	id_of(id, 1);
	assert_false(stream_retry_excludes(&r, id));
	id_of(id, 2);
	assert_false(stream_retry_excludes(&r, id));
	for (uint8_t k = 3; k <= RETRY_EXCLUDE_MAX + 2; k++) {
		id_of(id, k);
		assert_true(stream_retry_excludes(&r, id));
	}
}

static void test_end_reasons_map_to_tors_socks_replies(void **state)
{
	(void)state;
	assert_int_equal(stream_retry_end_reply(RELAY_END_MISC), SOCKS5_GENERAL_FAILURE);
	assert_int_equal(stream_retry_end_reply(RELAY_END_RESOLVEFAILED), SOCKS5_HOST_UNREACHABLE);
	assert_int_equal(stream_retry_end_reply(RELAY_END_CONNECTREFUSED), SOCKS5_CONNECTION_REFUSED);
	assert_int_equal(stream_retry_end_reply(RELAY_END_EXITPOLICY), SOCKS5_NOT_ALLOWED);
	assert_int_equal(stream_retry_end_reply(RELAY_END_DESTROY), SOCKS5_GENERAL_FAILURE);
	assert_int_equal(stream_retry_end_reply(RELAY_END_TIMEOUT), SOCKS5_TTL_EXPIRED);
	assert_int_equal(stream_retry_end_reply(RELAY_END_NOROUTE), SOCKS5_TTL_EXPIRED);
	assert_int_equal(stream_retry_end_reply(RELAY_END_HIBERNATING), SOCKS5_GENERAL_FAILURE);
	assert_int_equal(stream_retry_end_reply(RELAY_END_RESOURCELIMIT), SOCKS5_GENERAL_FAILURE);
	assert_int_equal(stream_retry_end_reply(RELAY_END_CONNRESET), SOCKS5_CONNECTION_REFUSED);
	assert_int_equal(stream_retry_end_reply(RELAY_END_TORPROTOCOL), SOCKS5_GENERAL_FAILURE);
	assert_int_equal(stream_retry_end_reply(200), SOCKS5_GENERAL_FAILURE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_policy_end_retries_elsewhere_without_a_count_limit),
		cmocka_unit_test(test_resolve_failed_gives_up_after_tors_three_failures),
		cmocka_unit_test(test_connection_refused_ends_at_once_with_tors_reply),
		cmocka_unit_test(test_full_exit_is_avoided_and_its_circuit_retired),
		cmocka_unit_test(test_backoff_doubles_from_200_ms_up_to_5_s),
		cmocka_unit_test(test_no_retry_is_scheduled_past_the_deadline),
		cmocka_unit_test(test_no_exit_left_gives_the_last_exit_error),
		cmocka_unit_test(test_attempt_timeout_is_10_s_twice_then_15_s_and_avoids_the_exit),
		cmocka_unit_test(test_expiry_reports_the_last_error_or_ttl_expired),
		cmocka_unit_test(test_exclusion_list_forgets_the_oldest_when_full),
		cmocka_unit_test(test_end_reasons_map_to_tors_socks_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
