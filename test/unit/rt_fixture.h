/* Shared fixtures of the unit tests that run io_uring or a real net/
 * runtime (test_runtime, test_handoff, test_uring_compat, test_events,
 * test_orconn, test_shardreq): the skip when the kernel refuses io_uring,
 * a worker-like ring, loopback sockets, bounded reads, and "the case's
 * runtime" that a cmocka teardown stops and joins even after a failed
 * assert, so no worker of one case runs into the next.
 *
 * cmocka asserts longjmp into the main thread's stack: code on a worker
 * thread must not call them. It records what it found wrong with
 * WORKER_CHECK / WORKER_CHECK_EQ; rt_fixture_teardown (after the join)
 * fails the case with that record.
 *
 * Not for: what a test checks; test code only. Main thread only, except
 * the WORKER_CHECK macros (any thread). */
#ifndef ONIONRING_TEST_RT_FIXTURE_H
#define ONIONRING_TEST_RT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <pthread.h>

#include "net/runtime.h"

struct io_uring;

/* Whether the kernel gives us io_uring with what the runtime uses
 * (runtime_probe); prints the reason to stderr when not. */
bool rt_fixture_uring_usable(void);

/* Exit 77 (the whole program skipped) when io_uring is refused. */
void rt_fixture_require_uring(void);

/* Set ring up like a worker's (net/worker.c: SINGLE_ISSUER,
 * DEFER_TASKRUN, SUBMIT_ALL) with entries SQEs and direct_slots sparse
 * direct descriptor slots. */
void rt_fixture_ring_init(struct io_uring *ring, unsigned entries, unsigned direct_slots);

/* Fill sin with 127.0.0.1:port. */
void rt_fixture_loopback(struct sockaddr_in *sin, uint16_t port);

/* A blocking TCP socket connected to 127.0.0.1:port (asserts). */
int rt_fixture_connect(uint16_t port);

/* Read exactly len bytes from fd into buf within timeout_ms (asserts). */
void rt_fixture_read_exact(int fd, void *buf, size_t len, unsigned timeout_ms);

void rt_fixture_sleep_ms(long ms);

/* Wait, bounded, for what another thread does: evaluate cond every 2 ms
 * until it holds or limit_ms have passed. The caller asserts it after, so
 * a wait that runs out fails the case with that assert's message rather
 * than hanging it. cond may be a comma expression that refreshes what it
 * reads, e.g. (worker_stats_read(w, &st), st.bytes_out >= n). */
#define RT_WAIT_UNTIL(cond, limit_ms)                                                   \
	do {                                                                            \
		for (long rt_waited_ms_ = 0; !(cond) && rt_waited_ms_ < (long)(limit_ms); \
		     rt_waited_ms_ += 2)                                                \
			rt_fixture_sleep_ms(2);                                         \
	} while (0)

/* --- the case's runtime -------------------------------------------------- */

/* runtime_new(cfg); with accept, a listener on 127.0.0.1 (any port, its
 * number in *port) served by accept on every worker; runtime_start. The
 * runtime becomes the case's: rt_fixture_teardown stops it. Exits 77
 * when io_uring is refused; asserts the rest. */
struct runtime *rt_fixture_runtime_start(const struct runtime_config *cfg, conn_accept_fn accept, uint16_t *port);

/* Make rt, started by the test itself, the case's runtime. */
void rt_fixture_runtime_adopt(struct runtime *rt);

/* The case's runtime, or NULL. */
struct runtime *rt_fixture_runtime(void);

/* Run fn(rt) after the case's runtime is joined and before it is freed
 * (the test's per-worker state that outlives the threads). Cleared by the
 * teardown. */
void rt_fixture_on_join(void (*fn)(struct runtime *rt));

/* Stop, join and free the case's runtime now (for a case that checks what
 * the stop did); a no-op without one. */
void rt_fixture_runtime_stop(void);

/* cmocka setup: forget a previous case's worker checks. state unused. */
int rt_fixture_setup(void **state);

/* cmocka setup for a case that runs on one runtime made from cfg: *state
 * is the started runtime, or NULL when io_uring is refused (the case then
 * skips with rt_fixture_state). Return -1 if the runtime cannot start. */
int rt_fixture_setup_runtime(void **state, const struct runtime_config *cfg);

/* The runtime rt_fixture_setup_runtime put in *state; skip() the case
 * when there is none. */
struct runtime *rt_fixture_state(void **state);

/* cmocka teardown: stop, join and free the case's runtime if it still
 * runs, then fail the case (-1) if a worker recorded a failed check. */
int rt_fixture_teardown(void **state);

/* --- text that workers produce (event lines, control replies) ------------ */

/* Appended to by any thread, read by the test through a copy: a failed
 * assert must never leave the lock held while workers still append. */
struct rt_fixture_text {
	pthread_mutex_t lock;
	size_t len;
	char buf[65536]; /* NUL-terminated; what does not fit is dropped */
};

#define RT_FIXTURE_TEXT_INIT { .lock = PTHREAD_MUTEX_INITIALIZER }

/* Forget what text holds. */
void rt_fixture_text_reset(struct rt_fixture_text *text);

/* Append len bytes of data (any thread). */
void rt_fixture_text_append(struct rt_fixture_text *text, const char *data, size_t len);

/* Copy text into out (cap bytes, NUL-terminated); return its length. */
size_t rt_fixture_text_copy(struct rt_fixture_text *text, char *out, size_t cap);

/* How many times needle occurs in text. */
size_t rt_fixture_text_count(struct rt_fixture_text *text, const char *needle);

/* Wait (bounded: timeout_ms) until text holds at least len bytes; return
 * whether it does. */
bool rt_fixture_text_wait_len(struct rt_fixture_text *text, size_t len, unsigned timeout_ms);

/* --- checks on worker threads --------------------------------------------- */

/* Record the first failed check (file, line, text); any thread. */
void rt_fixture_worker_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Whether a worker recorded a failed check in this case (any thread). */
bool rt_fixture_worker_failed(void);

#define WORKER_CHECK(cond)                                                   \
	do {                                                                 \
		if (!(cond))                                                 \
			rt_fixture_worker_fail(__FILE__, __LINE__, "%s", #cond); \
	} while (0)

#define WORKER_CHECK_EQ(a, b)                                                              \
	do {                                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);                         \
		if (a_ != b_)                                                              \
			rt_fixture_worker_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, \
					       a_, b_);                                    \
	} while (0)

#endif
