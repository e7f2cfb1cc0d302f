/* Control requests answered by every shard (app/shardreq.h) on a real
 * two-worker runtime with a circuit manager per worker (no directory, so
 * no circuits): a control session on worker 0 sends CLOSECIRCUIT,
 * CLOSESTREAM, GETINFO circuit-status/stream-status/orconn-status pipelined in one
 * batch; each is answered from both shards' messages, in command order,
 * without blocking the session's worker. A shard that does not answer
 * (its worker blocked) costs SHARDREQ_TIMEOUT_MS and a 551, and its late
 * part is dropped. A runtime that stops while a request waits answers it
 * (551) and frees its bookkeeping (the ASan run checks for leaks). Closing
 * real circuits and streams is
 * test/integration/test_control_streams.sh's part. */
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

#include "app/circmgr.h"
#include "app/control.h"
#include "app/shardreq.h"
#include "net/runtime.h"
#include "net/worker.h"
#include "test/unit/rt_fixture.h"

static struct runtime *rt;
static struct control_server srv;
static struct control_session *session; /* worker 0 only */
static struct rt_fixture_text out = RT_FIXTURE_TEXT_INIT;
static _Atomic int requests, freed;

static void on_send(void *arg, const char *data, size_t len)
{
	(void)arg;
	rt_fixture_text_append(&out, data, len);
}

/* What the session sent so far (a copy: see struct rt_fixture_text). */
static const char *output(void)
{
	static char copy[sizeof(out.buf)];

	rt_fixture_text_copy(&out, copy, sizeof(copy));
	return copy;
}

static int on_request(void *arg, struct worker *w, struct control_req *req)
{
	(void)arg;
	atomic_fetch_add(&requests, 1);
	return shardreq_start(rt, w, req);
}

static void worker_started(struct worker *w, void *arg)
{
	struct circmgr_config cfg = {
		.build_timeout_ns = 60000000000ull, .max_circuits = 64,
	};

	(void)arg;
	WORKER_CHECK_EQ(circmgr_start(w, &cfg), 0);
}

static void worker_stopping(struct worker *w, void *arg)
{
	(void)arg;
	shardreq_worker_stopping(w);
	circmgr_stop(w);
}

/* Open a session on this worker and send it arg (a C string). */
static void msg_session(struct worker *w, void *arg)
{
	const char *input = arg;

	session = control_session_new(&srv, w, on_send, NULL);
	control_session_input(session, (const uint8_t *)input, strlen(input));
}

static _Atomic int blocked;

/* Keep this worker busy for arg ms (NULL: 6 s): it answers no message
 * meanwhile. */
static void msg_block(struct worker *w, void *arg)
{
	long ms = arg ? (long)(uintptr_t)arg : 6000;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	(void)w;
	atomic_store(&blocked, 1);
	nanosleep(&ts, NULL);
	atomic_store(&blocked, 0);
}

static void msg_free(struct worker *w, void *arg)
{
	(void)w;
	(void)arg;
	control_session_free(session);
	session = NULL;
	atomic_store(&freed, 1);
}

static void sleep_ms(long ms)
{
	rt_fixture_sleep_ms(ms);
}

/* After the workers are joined, before the runtime is freed: the session
 * if a case left it (no worker runs any more) and each worker's circuit
 * manager. */
static void free_after_join(struct runtime *r)
{
	control_session_free(session);
	session = NULL;
	for (unsigned i = 0; i < 2; i++)
		circmgr_free(runtime_worker(r, i));
	rt = NULL;
}

/* The case's runtime: two workers, each with a circuit manager, and the
 * control server's requests going to shardreq (cmocka setup). */
static int setup(void **state)
{
	struct runtime_config cfg;
	int r;

	rt_fixture_text_reset(&out);
	atomic_store(&requests, 0);
	atomic_store(&freed, 0);
	session = NULL;
	runtime_config_defaults(&cfg);
	cfg.nworkers = 2;
	cfg.max_conns = 64;
	cfg.recv_bufs = 16;
	cfg.worker_started = worker_started;
	cfg.worker_stopping = worker_stopping;
	srv.be.request = on_request;
	/* rt is set before any worker runs on_request: worker_started runs
	 * on the new threads, requests come only from the cases' messages. */
	r = rt_fixture_setup_runtime(state, &cfg);
	rt = *state;
	rt_fixture_on_join(free_after_join);
	return r;
}

/* Free the session on its worker while the runtime runs (the path a
 * running onionring takes), then stop, join (free_after_join) and free
 * everything, also after a failed assert. */
static int teardown(void **state)
{
	int rc = 0;

	if (rt) { /* msg_free reads session on worker 0, its owner */
		if (worker_post(runtime_worker(rt, 0), msg_free, NULL) != 0)
			rc = -1;
		RT_WAIT_UNTIL(atomic_load(&freed), 5000);
		if (!atomic_load(&freed)) {
			fprintf(stderr, "teardown: the session was not freed on its worker within 5 s\n");
			rc = -1;
		}
	}
	if (rt_fixture_teardown(state) != 0)
		rc = -1;
	return rc;
}

/* Wait (bounded: 10 s) until the output holds len bytes. */
static void wait_output(size_t len)
{
	rt_fixture_text_wait_len(&out, len, 10000);
}

static void test_shardreq_answers_from_every_shard_in_command_order(void **state)
{
	static const char want[] = "250 OK\r\n"
				   "552 Unknown circuit \"5\"\r\n"
				   "552 Unknown stream \"6\"\r\n"
				   "250-circuit-status=\r\n250-stream-status=\r\n250-orconn-status=\r\n250 OK\r\n"
				   "552 Unknown circuit \"5\"\r\n";

	rt_fixture_state(state);
	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_session,
				     "AUTHENTICATE\r\nCLOSECIRCUIT 5\r\nCLOSESTREAM 6 1\r\n"
				     "GETINFO circuit-status stream-status orconn-status\r\nCLOSECIRCUIT 5 IfUnused\r\n"),
			 0);
	/* The shards answer within milliseconds; the library's own timeout
	 * (SHARDREQ_TIMEOUT_MS) would answer 551, not hang. */
	wait_output(sizeof(want) - 1);
	assert_string_equal(output(), want);
	/* One request per command that needs the shards. */
	assert_int_equal(atomic_load(&requests), 4);
}

static void test_shardreq_gives_up_on_a_silent_shard_after_the_timeout(void **state)
{
	static const char want[] = "250 OK\r\n551 Cannot close the circuit: Connection timed out\r\n250-process/pid=";
	struct timespec t0, t1;
	double secs;

	rt_fixture_state(state);
	assert_int_equal(worker_post(runtime_worker(rt, 1), msg_block, NULL), 0);
	RT_WAIT_UNTIL(atomic_load(&blocked), 5000);
	assert_true(atomic_load(&blocked));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_session,
				     "AUTHENTICATE\r\nCLOSECIRCUIT 5\r\nGETINFO process/pid\r\n"),
			 0);
	wait_output(sizeof(want) - 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_memory_equal(output(), want, sizeof(want) - 1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(secs >= SHARDREQ_TIMEOUT_MS / 1000.0 - 0.1);
	/* The blocked worker's part arrives late and is dropped (ASan and
	 * TSan watch that path). */
	RT_WAIT_UNTIL(!atomic_load(&blocked), 5000);
	assert_false(atomic_load(&blocked));
	sleep_ms(200);
}

static void test_shardreq_answers_a_waiting_request_when_the_runtime_stops(void **state)
{
	static const char want[] = "250 OK\r\n551 Cannot close the circuit: onionring is shutting down\r\n";

	rt_fixture_state(state);
	/* Worker 1 holds its part for 1.5 s: well inside the 5 s timeout, so
	 * only the stop can answer the request. */
	assert_int_equal(worker_post(runtime_worker(rt, 1), msg_block, (void *)(uintptr_t)1500), 0);
	RT_WAIT_UNTIL(atomic_load(&blocked), 5000);
	assert_true(atomic_load(&blocked));
	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_session, "AUTHENTICATE\r\nCLOSECIRCUIT 5\r\n"), 0);
	wait_output(strlen("250 OK\r\n"));
	sleep_ms(100);
	assert_string_equal(output(), "250 OK\r\n"); /* still waiting for worker 1 */
	/* Stop, join, free the session (both workers have exited) and the
	 * circuit managers. */
	rt_fixture_runtime_stop();
	/* Worker 0 answered on its way out; worker 1's part, run after its
	 * block, found worker 0 gone and was freed there. */
	assert_string_equal(output(), want);
	assert_false(atomic_load(&blocked));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shardreq_answers_from_every_shard_in_command_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shardreq_gives_up_on_a_silent_shard_after_the_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shardreq_answers_a_waiting_request_when_the_runtime_stops, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
