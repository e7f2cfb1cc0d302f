/* ORCONN (app/orconn.h, control-spec 4.1.3 and 3.9): the event lines, the
 * LongName of a relay, the reason each channel error maps to, and the
 * channel pool's observer calls turned into events that reach a
 * subscriber on a real one-worker runtime. The channel pool's own steps
 * are test_chanpool.c's; real relays are test_control_streams.sh's. */
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
#include "app/orconn.h"
#include "net/runtime.h"
#include "net/worker.h"
#include "test/unit/rt_fixture.h"

static void target_of(struct relay_target *t, const char *nick)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < 20; i++)
		t->rsa_id[i] = (uint8_t)(0xA0 + i);
	snprintf(t->nickname, sizeof(t->nickname), "%s", nick);
}

static void test_orconn_longname_is_dollar_fingerprint_tilde_nickname(void **state)
{
	struct relay_target t;
	char out[64];

	(void)state;
	target_of(&t, "test003r");
	assert_string_equal(orconn_longname(&t, out, sizeof(out)), "$A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3~test003r");
	target_of(&t, "");
	assert_string_equal(orconn_longname(&t, out, sizeof(out)), "$A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3");
	/* 19 characters, the longest nickname (dir-spec 2.1.1). */
	target_of(&t, "abcdefghijklmnopqrs");
	assert_string_equal(orconn_longname(&t, out, sizeof(out)),
			    "$A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3~abcdefghijklmnopqrs");
}

static void test_orconn_reasons_follow_control_spec_4_1_3(void **state)
{
	(void)state;
	assert_string_equal(orconn_reason(0), "DONE");
	assert_string_equal(orconn_reason(-ECANCELED), "DONE");
	assert_string_equal(orconn_reason(-ESHUTDOWN), "DONE");
	assert_string_equal(orconn_reason(-ECONNREFUSED), "CONNECTREFUSED");
	assert_string_equal(orconn_reason(-EPERM), "IDENTITY");
	assert_string_equal(orconn_reason(-EBADMSG), "IDENTITY");
	assert_string_equal(orconn_reason(-ECONNRESET), "CONNECTRESET");
	assert_string_equal(orconn_reason(-EPIPE), "CONNECTRESET");
	assert_string_equal(orconn_reason(-ETIMEDOUT), "TIMEOUT");
	assert_string_equal(orconn_reason(-ENETUNREACH), "NOROUTE");
	assert_string_equal(orconn_reason(-EHOSTUNREACH), "NOROUTE");
	assert_string_equal(orconn_reason(-ENOTCONN), "NOROUTE");
	assert_string_equal(orconn_reason(-EMFILE), "RESOURCELIMIT");
	assert_string_equal(orconn_reason(-ENOMEM), "RESOURCELIMIT");
	assert_string_equal(orconn_reason(-EIO), "IOERROR");
	assert_string_equal(orconn_reason(-EPROTO), "MISC");
	assert_string_equal(orconn_reason(-EPROTONOSUPPORT), "MISC");
	assert_string_equal(orconn_reason(-12345), "MISC");
}

static void test_orconn_event_lines(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(events_format_orconn(out, sizeof(out), "$AB~r1", EVENTS_ORCONN_LAUNCHED, NULL, -1, 7),
			 strlen("650 ORCONN $AB~r1 LAUNCHED ID=7\r\n"));
	assert_string_equal(out, "650 ORCONN $AB~r1 LAUNCHED ID=7\r\n");
	events_format_orconn(out, sizeof(out), "$AB~r1", EVENTS_ORCONN_CLOSED, "DONE", 3, 7);
	assert_string_equal(out, "650 ORCONN $AB~r1 CLOSED REASON=DONE NCIRCS=3 ID=7\r\n");
	events_format_orconn(out, sizeof(out), "127.0.0.1:9001", EVENTS_ORCONN_NEW, NULL, -1, 8);
	assert_string_equal(out, "650 ORCONN 127.0.0.1:9001 NEW ID=8\r\n");
	/* Nothing for a missing target, an unknown status or no room. */
	assert_int_equal(events_format_orconn(out, sizeof(out), "", EVENTS_ORCONN_NEW, NULL, -1, 8), 0);
	assert_int_equal(events_format_orconn(out, sizeof(out), "$AB", (enum events_orconn_status)99, NULL, -1, 8), 0);
	assert_int_equal(events_format_orconn(out, 10, "$AB", EVENTS_ORCONN_NEW, NULL, -1, 8), 0);
}

/* --- the observer, through the event bus ------------------------------- */

static struct {
	struct rt_fixture_text text;
	struct events_sub *_Atomic sub;
	_Atomic int step;
} dl = { .text = RT_FIXTURE_TEXT_INIT };

static void deliver(void *arg, const char *lines, size_t len)
{
	(void)arg;
	rt_fixture_text_append(&dl.text, lines, len);
}

static void msg_subscribe(struct worker *w, void *arg)
{
	struct events_sub *s = events_subscribe(w, deliver, NULL);

	(void)arg;
	events_set_mask(s, EVENT_BIT(EVENT_ORCONN));
	atomic_store(&dl.sub, s);
	atomic_store(&dl.step, 1);
}

/* What a channel pool tells its observer over one channel's life. */
static void msg_observe(struct worker *w, void *arg)
{
	struct relay_target t;
	struct chanpool_chan_info ci = { .id = 42, .target = &t, .ncircs = 2 };

	(void)w;
	(void)arg;
	target_of(&t, "guard1");
	orconn_observe(NULL, CHANPOOL_CHAN_LAUNCHED, &ci);
	ci.open = true;
	orconn_observe(NULL, CHANPOOL_CHAN_CONNECTED, &ci);
	ci.open = false;
	ci.err = -ECONNRESET;
	ci.why = "connection closed by the relay";
	orconn_observe(NULL, CHANPOOL_CHAN_CLOSED, &ci);
	ci.id = 43;
	ci.ncircs = 1;
	ci.err = -ETIMEDOUT;
	orconn_observe(NULL, CHANPOOL_CHAN_LAUNCHED, &ci);
	orconn_observe(NULL, CHANPOOL_CHAN_FAILED, &ci);
}

static void msg_unsubscribe(struct worker *w, void *arg)
{
	(void)w;
	(void)arg;
	events_unsubscribe(atomic_load(&dl.sub));
	atomic_store(&dl.step, 2);
}

static void wait_step(int want)
{
	RT_WAIT_UNTIL(atomic_load(&dl.step) >= want, 5000);
	assert_int_equal(atomic_load(&dl.step), want);
}

/* The case's runtime: one worker (cmocka setup; the teardown stops it). */
static int setup_one_worker(void **state)
{
	struct runtime_config cfg;

	runtime_config_defaults(&cfg);
	cfg.nworkers = 1;
	cfg.max_conns = 16;
	cfg.recv_bufs = 16;
	return rt_fixture_setup_runtime(state, &cfg);
}

static void test_orconn_observer_publishes_each_channel_step(void **state)
{
	static const char fp[] = "$A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3~guard1";
	struct runtime *rt = rt_fixture_state(state);
	static char got[sizeof(dl.text.buf)];
	char want[1024];

	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_subscribe, NULL), 0);
	wait_step(1);
	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_observe, NULL), 0);
	snprintf(want, sizeof(want),
		 "650 ORCONN %s LAUNCHED ID=42\r\n"
		 "650 ORCONN %s CONNECTED ID=42\r\n"
		 "650 ORCONN %s CLOSED REASON=CONNECTRESET NCIRCS=2 ID=42\r\n"
		 "650 ORCONN %s LAUNCHED ID=43\r\n"
		 "650 ORCONN %s FAILED REASON=TIMEOUT NCIRCS=1 ID=43\r\n",
		 fp, fp, fp, fp, fp);
	rt_fixture_text_wait_len(&dl.text, strlen(want), 5000);
	rt_fixture_text_copy(&dl.text, got, sizeof(got));
	assert_string_equal(got, want);
	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_unsubscribe, NULL), 0);
	wait_step(2);
	assert_false(events_wanted(EVENT_ORCONN));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_orconn_longname_is_dollar_fingerprint_tilde_nickname),
		cmocka_unit_test(test_orconn_reasons_follow_control_spec_4_1_3),
		cmocka_unit_test(test_orconn_event_lines),
		cmocka_unit_test_setup_teardown(test_orconn_observer_publishes_each_channel_step, setup_one_worker,
						rt_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
