/* Control requests answered by every shard (app/shardreq.h) on a real
 * two-worker runtime with a circuit manager per worker (no directory, so
 * no circuits): a control session on worker 0 sends CLOSECIRCUIT,
 * CLOSESTREAM, GETINFO circuit-status/stream-status pipelined in one
 * batch; each is answered from both shards' messages, in command order,
 * without blocking the session's worker. Closing real circuits and
 * streams is test/integration/test_control_streams.sh's part. */
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

static struct runtime *rt;
static struct control_server srv;
static struct control_session *session; /* worker 0 only */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static char out[4096];
static size_t out_len;
static _Atomic int requests, freed;

static void on_send(void *arg, const char *data, size_t len)
{
	(void)arg;
	pthread_mutex_lock(&out_lock);
	if (out_len + len < sizeof(out)) {
		memcpy(out + out_len, data, len);
		out_len += len;
		out[out_len] = '\0';
	}
	pthread_mutex_unlock(&out_lock);
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
		.build_timeout_ns = 60000000000ull, .stream_attempts = 3, .max_circuits = 64,
	};

	(void)arg;
	assert_int_equal(circmgr_start(w, &cfg), 0);
}

static void worker_stopping(struct worker *w, void *arg)
{
	(void)arg;
	circmgr_stop(w);
}

static void msg_session(struct worker *w, void *arg)
{
	static const char input[] = "AUTHENTICATE\r\n"
				    "CLOSECIRCUIT 5\r\n"
				    "CLOSESTREAM 6 1\r\n"
				    "GETINFO circuit-status stream-status\r\n"
				    "CLOSECIRCUIT 5 IfUnused\r\n";

	(void)arg;
	session = control_session_new(&srv, w, on_send, NULL);
	control_session_input(session, (const uint8_t *)input, sizeof(input) - 1);
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
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void test_shardreq_answers_from_every_shard_in_command_order(void **state)
{
	static const char want[] = "250 OK\r\n"
				   "552 Unknown circuit \"5\"\r\n"
				   "552 Unknown stream \"6\"\r\n"
				   "250-circuit-status=\r\n250-stream-status=\r\n250 OK\r\n"
				   "552 Unknown circuit \"5\"\r\n";
	struct runtime_config cfg;
	char why[256];
	bool done = false;

	(void)state;
	if (runtime_probe(why, sizeof(why)) < 0)
		skip();
	runtime_config_defaults(&cfg);
	cfg.nworkers = 2;
	cfg.max_conns = 64;
	cfg.recv_bufs = 16;
	cfg.worker_started = worker_started;
	cfg.worker_stopping = worker_stopping;
	rt = runtime_new(&cfg);
	assert_non_null(rt);
	srv.be.request = on_request;
	assert_int_equal(runtime_start(rt), 0);
	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_session, NULL), 0);
	/* Bounded: the shards answer within milliseconds; the library's own
	 * timeout (SHARDREQ_TIMEOUT_MS) would answer 551, not hang. */
	for (int i = 0; i < 1000 && !done; i++) {
		pthread_mutex_lock(&out_lock);
		done = out_len >= sizeof(want) - 1;
		pthread_mutex_unlock(&out_lock);
		if (!done)
			sleep_ms(10);
	}
	pthread_mutex_lock(&out_lock);
	assert_string_equal(out, want);
	pthread_mutex_unlock(&out_lock);
	/* One request per command that needs the shards. */
	assert_int_equal(atomic_load(&requests), 4);
	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_free, NULL), 0);
	for (int i = 0; i < 500 && !atomic_load(&freed); i++)
		sleep_ms(10);
	assert_true(atomic_load(&freed));
	runtime_stop(rt);
	runtime_join(rt);
	for (unsigned i = 0; i < 2; i++)
		circmgr_free(runtime_worker(rt, i));
	runtime_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shardreq_answers_from_every_shard_in_command_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
