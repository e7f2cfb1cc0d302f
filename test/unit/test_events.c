/* The control-port event bus (app/events.h): the control-spec 4.1 lines
 * it formats, SETEVENTS names, the global "wanted" mask, bootstrap state
 * taken from tor-style log lines, and delivery on a real two-worker
 * runtime: lines published from another thread and from another worker
 * reach the subscriber's worker, in publish order. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "app/events.h"
#include "net/runtime.h"
#include "net/worker.h"
#include "test/unit/rt_fixture.h"

static void test_events_format_circ_lines(void **state)
{
	char out[512];
	size_t n;

	(void)state;
	n = events_format_circ(out, sizeof(out), 12, EVENTS_CIRC_LAUNCHED, NULL, NULL, NULL);
	assert_int_equal(n, strlen(out));
	assert_string_equal(out, "650 CIRC 12 LAUNCHED PURPOSE=GENERAL\r\n");
	events_format_circ(out, sizeof(out), 12, EVENTS_CIRC_BUILT,
			   "$0123456789ABCDEF0123456789ABCDEF01234567~relay1,$89ABCDEF0123456789ABCDEF0123456789ABCDEF~exit1",
			   NULL, NULL);
	assert_string_equal(out, "650 CIRC 12 BUILT $0123456789ABCDEF0123456789ABCDEF01234567~relay1,"
				 "$89ABCDEF0123456789ABCDEF0123456789ABCDEF~exit1 PURPOSE=GENERAL\r\n");
	events_format_circ(out, sizeof(out), 3, EVENTS_CIRC_FAILED, "", "HS_CLIENT_REND", "TIMEOUT");
	assert_string_equal(out, "650 CIRC 3 FAILED PURPOSE=HS_CLIENT_REND REASON=TIMEOUT\r\n");
	assert_int_equal(events_format_circ(out, 16, 3, EVENTS_CIRC_CLOSED, NULL, NULL, NULL), 0);
	assert_int_equal(events_format_circ(out, sizeof(out), 3, (enum events_circ_status)99, NULL, NULL, NULL), 0);
}

static void test_events_format_circ_info_has_build_flags_and_time_created(void **state)
{
	struct events_circ_info info = {
		.path = "$0123456789ABCDEF0123456789ABCDEF01234567~g",
		.build_flags = "NEED_CAPACITY,NEED_UPTIME",
		/* 2026-11-27 17:28:39.000042 UTC */
		.created_us = 1795800519ull * 1000000u + 42u,
		.reason = "REQUESTED",
	};
	char out[512];

	(void)state;
	events_format_circ_info(out, sizeof(out), 9, EVENTS_CIRC_CLOSED, &info);
	/* 4.1.1's order: path, BUILD_FLAGS, PURPOSE, TIME_CREATED, REASON. */
	assert_string_equal(out, "650 CIRC 9 CLOSED $0123456789ABCDEF0123456789ABCDEF01234567~g "
				 "BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=GENERAL "
				 "TIME_CREATED=2026-11-27T17:28:39.000042 REASON=REQUESTED\r\n");
	memset(&info, 0, sizeof(info));
	info.purpose = "GENERAL";
	info.build_flags = "ONEHOP_TUNNEL";
	events_format_circ_info(out, sizeof(out), 10, EVENTS_CIRC_LAUNCHED, &info);
	assert_string_equal(out, "650 CIRC 10 LAUNCHED BUILD_FLAGS=ONEHOP_TUNNEL PURPOSE=GENERAL\r\n");
}

static void test_events_format_stream_lines(void **state)
{
	char out[512];

	(void)state;
	events_format_stream(out, sizeof(out), 5, EVENTS_STREAM_NEW, 0, "example.com:80", NULL, "127.0.0.1:5555");
	assert_string_equal(out, "650 STREAM 5 NEW 0 example.com:80 SOURCE_ADDR=127.0.0.1:5555 PURPOSE=USER\r\n");
	events_format_stream(out, sizeof(out), 5, EVENTS_STREAM_CLOSED, 12, "example.com:80", "DONE", NULL);
	assert_string_equal(out, "650 STREAM 5 CLOSED 12 example.com:80 REASON=DONE PURPOSE=USER\r\n");
	assert_int_equal(events_format_stream(out, sizeof(out), 5, EVENTS_STREAM_NEW, 0, NULL, NULL, NULL), 0);
}

static void test_events_names_round_trip(void **state)
{
	(void)state;
	for (int e = 0; e < EVENT_COUNT_; e++) {
		const char *n = events_name((enum events_type)e);

		assert_int_equal(events_parse(n, strlen(n)), e);
	}
	assert_int_equal(events_parse("circ", 4), EVENT_CIRC);
	assert_int_equal(events_parse("status_client", 13), EVENT_STATUS_CLIENT);
	assert_int_equal(events_parse("CIRC_MINOR", 10), -1);
	assert_int_equal(events_parse("CIR", 3), -1);
}

static void test_events_wanted_follows_subscriptions(void **state)
{
	struct events_sub *a, *b;

	(void)state;
	assert_false(events_wanted(EVENT_CIRC));
	a = events_subscribe(NULL, NULL, NULL);
	b = events_subscribe(NULL, NULL, NULL);
	assert_false(events_wanted(EVENT_CIRC));
	events_set_mask(a, EVENT_BIT(EVENT_CIRC) | EVENT_BIT(EVENT_BW));
	events_set_mask(b, EVENT_BIT(EVENT_BW));
	assert_true(events_wanted(EVENT_CIRC));
	assert_true(events_wanted(EVENT_BW));
	assert_false(events_wanted(EVENT_STREAM));
	assert_int_equal(events_mask(a), EVENT_BIT(EVENT_CIRC) | EVENT_BIT(EVENT_BW));
	events_unsubscribe(a);
	assert_false(events_wanted(EVENT_CIRC));
	assert_true(events_wanted(EVENT_BW));
	events_set_mask(b, 0);
	assert_false(events_wanted(EVENT_BW));
	events_unsubscribe(b);
	events_unsubscribe(NULL);
}

static void test_events_bootstrap_from_log_lines(void **state)
{
	char phase[600];

	(void)state;
	events_bootstrap_phase(phase, sizeof(phase));
	assert_string_equal(phase, "NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY=\"Starting\"");
	assert_false(events_bootstrap_done());
	/* Only notices that look like tor's bootstrap lines count. */
	events_log_hook(LOG_INFO, "Nov 27 14:33:44.123 [info] Bootstrapped 99% (x): y\n", NULL);
	events_log_hook(LOG_NOTICE, "Nov 27 14:33:44.123 [notice] {coord} Bootstrapped 1000% (x): y\n", NULL);
	events_bootstrap_phase(phase, sizeof(phase));
	assert_string_equal(phase, "NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY=\"Starting\"");
	events_log_hook(LOG_NOTICE,
			"Nov 27 14:33:44.123 [notice] {coord} Bootstrapped 45% (loading_descriptors): Loading \"relay\" descriptors\n",
			NULL);
	events_bootstrap_phase(phase, sizeof(phase));
	assert_string_equal(phase, "NOTICE BOOTSTRAP PROGRESS=45 TAG=loading_descriptors "
				   "SUMMARY=\"Loading \\\"relay\\\" descriptors\"");
	assert_false(events_bootstrap_done());
	events_log_hook(LOG_NOTICE, "Nov 27 14:33:45.000 [notice] Bootstrapped 100% (done): Done\n", NULL);
	events_bootstrap_phase(phase, sizeof(phase));
	assert_string_equal(phase, "NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\"");
	assert_true(events_bootstrap_done());
}

static void test_events_newnym_refused_until_supported(void **state)
{
	uint64_t e0;

	(void)state;
	e0 = events_newnym_epoch();
	assert_int_equal(events_newnym(), -ENOTSUP);
	assert_int_equal(events_newnym_epoch(), e0);
	events_newnym_set_supported();
	assert_int_equal(events_newnym(), 0);
	assert_int_equal(events_newnym_epoch(), e0 + 1);
}

/* --- delivery on a running runtime --- */

static struct {
	struct rt_fixture_text text;
	_Atomic int wrong_worker;
	struct events_sub *_Atomic sub;
	_Atomic int unsubscribed;
} dl = { .text = RT_FIXTURE_TEXT_INIT };

static void deliver(void *arg, const char *lines, size_t len)
{
	(void)arg;
	if (!worker_current() || worker_id(worker_current()) != 1)
		atomic_fetch_add(&dl.wrong_worker, 1);
	rt_fixture_text_append(&dl.text, lines, len);
}

static void msg_subscribe(struct worker *w, void *arg)
{
	struct events_sub *s = events_subscribe(w, deliver, NULL);

	(void)arg;
	events_set_mask(s, EVENT_BIT(EVENT_CIRC) | EVENT_BIT(EVENT_STREAM));
	atomic_store(&dl.sub, s);
}

static void msg_unsubscribe(struct worker *w, void *arg)
{
	(void)w;
	(void)arg;
	events_unsubscribe(atomic_load(&dl.sub));
	atomic_store(&dl.unsubscribed, 1);
}

static void msg_publish_streams(struct worker *w, void *arg)
{
	(void)w;
	(void)arg;
	for (uint64_t i = 1; i <= 10; i++)
		events_publish_stream(i, EVENTS_STREAM_SUCCEEDED, 7, "example.com:80", NULL, NULL);
}

static size_t count(const char *needle)
{
	return rt_fixture_text_count(&dl.text, needle);
}

/* The case's runtime: two workers (cmocka setup; the teardown stops it). */
static int setup_two_workers(void **state)
{
	struct runtime_config cfg;

	runtime_config_defaults(&cfg);
	cfg.nworkers = 2;
	cfg.max_conns = 64;
	cfg.recv_bufs = 16;
	return rt_fixture_setup_runtime(state, &cfg);
}

static void test_events_reach_the_subscriber_worker_in_order(void **state)
{
	static char lines[sizeof(dl.text.buf)];
	struct runtime *rt = rt_fixture_state(state);
	char want[64];
	const char *p;

	assert_int_equal(worker_post(runtime_worker(rt, 1), msg_subscribe, NULL), 0);
	RT_WAIT_UNTIL(atomic_load(&dl.sub), 5000);
	assert_non_null(atomic_load(&dl.sub));
	assert_true(events_wanted(EVENT_CIRC));
	assert_false(events_wanted(EVENT_BW));

	/* From this (non-worker) thread, then from worker 0. */
	for (uint64_t id = 1; id <= 100; id++)
		events_publish_circ(id, EVENTS_CIRC_BUILT, NULL, NULL, NULL);
	events_publish_bw(1, 2); /* not subscribed: dropped */
	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_publish_streams, NULL), 0);
	RT_WAIT_UNTIL(count("650 CIRC ") >= 100 && count("650 STREAM ") >= 10, 5000);
	assert_int_equal(count("650 CIRC "), 100);
	assert_int_equal(count("650 STREAM "), 10);
	assert_int_equal(count("650 BW"), 0);
	assert_int_equal(atomic_load(&dl.wrong_worker), 0);
	/* Lines from one publisher arrive in the order it published them. */
	rt_fixture_text_copy(&dl.text, lines, sizeof(lines));
	p = lines;
	for (uint64_t id = 1; id <= 100; id++) {
		snprintf(want, sizeof(want), "650 CIRC %llu BUILT PURPOSE=GENERAL\r\n", (unsigned long long)id);
		p = strstr(p, want);
		assert_non_null(p);
	}

	assert_int_equal(worker_post(runtime_worker(rt, 1), msg_unsubscribe, NULL), 0);
	RT_WAIT_UNTIL(atomic_load(&dl.unsubscribed), 5000);
	assert_false(events_wanted(EVENT_CIRC));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_format_circ_lines),
		cmocka_unit_test(test_events_format_circ_info_has_build_flags_and_time_created),
		cmocka_unit_test(test_events_format_stream_lines),
		cmocka_unit_test(test_events_names_round_trip),
		cmocka_unit_test(test_events_wanted_follows_subscriptions),
		cmocka_unit_test(test_events_bootstrap_from_log_lines),
		cmocka_unit_test(test_events_newnym_refused_until_supported),
		cmocka_unit_test_setup_teardown(test_events_reach_the_subscriber_worker_in_order, setup_two_workers,
						rt_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
