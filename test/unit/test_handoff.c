/* conn_handoff: a connection accepted on one worker moves to another with
 * IORING_MSG_SEND_FD and is served there; bytes that arrive while it
 * moves go with it; a target without a free slot leaves it where it was;
 * thousands of moves leak no slot, descriptor or record; stopping the
 * runtime in the middle of moves loses nothing. Exits 77 (skipped) when
 * the kernel refuses io_uring or a feature we use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "net/runtime.h"
#include "test/unit/rt_fixture.h"

/* 64 slots per worker (the runtime's minimum): 8 for outbound sockets, 56
 * for accepted and handed-over ones. Few, so that a leaked slot shows. */
enum { MAX_CONNS = 64, IN_SLOTS = MAX_CONNS - MAX_CONNS / 8 };

/* --- the runtime and the client side -------------------------------------- */

static struct runtime *start_runtime(uint16_t *port, conn_accept_fn fn)
{
	struct runtime_config cfg;

	runtime_config_defaults(&cfg);
	cfg.nworkers = 2;
	cfg.max_conns = MAX_CONNS;
	cfg.recv_bufs = 64;
	cfg.coordinator_tick_ms = 20;
	return rt_fixture_runtime_start(&cfg, fn, port);
}

static int connect_client(uint16_t port)
{
	return rt_fixture_connect(port);
}

/* Read exactly len bytes within a bounded time. */
static void read_exact(int fd, uint8_t *buf, size_t len)
{
	rt_fixture_read_exact(fd, buf, len, 10000);
}

/* Whether the peer closed fd within a bounded time (EOF or reset). */
static bool sees_close(int fd)
{
	uint64_t deadline = clock_mono_ms() + 10000;
	uint8_t b;

	while (clock_mono_ms() < deadline) {
		struct pollfd pfd = { fd, POLLIN, 0 };

		if (poll(&pfd, 1, 100) > 0)
			return read(fd, &b, 1) <= 0;
	}
	return false;
}

/* Wait (bounded) until *v reaches want. */
static bool wait_for(_Atomic unsigned *v, unsigned want)
{
	uint64_t deadline = clock_mono_ms() + 10000;

	while (atomic_load(v) < want) {
		if (clock_mono_ms() > deadline)
			return false;
		usleep(200);
	}
	return true;
}

static unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Wait (bounded) until the workers hold `want` connections between them:
 * the old slot of a moved connection closes after the move is reported. */
static bool wait_conns_open(struct runtime *rt, uint64_t want)
{
	uint64_t deadline = clock_mono_ms() + 10000;

	for (;;) {
		struct worker_stats a, b;

		worker_stats_read(runtime_worker(rt, 0), &a);
		worker_stats_read(runtime_worker(rt, 1), &b);
		if (a.conns_open + b.conns_open == want)
			return true;
		if (clock_mono_ms() > deadline)
			return false;
		usleep(200);
	}
}

static struct worker *other_worker(struct worker *w)
{
	return runtime_worker(worker_runtime(w), worker_id(w) ^ 1);
}

static struct worker_stats stats_of(struct runtime *rt, unsigned i)
{
	struct worker_stats st;

	worker_stats_read(runtime_worker(rt, i), &st);
	return st;
}

/* --- what the tests' connections do ----------------------------------------- */

static struct {
	_Atomic unsigned accepted;
	_Atomic int accepted_on;      /* worker of the last accept */
	_Atomic unsigned arrived;
	_Atomic int arrived_on;       /* worker of the last arrival */
	_Atomic int echoed_on;        /* worker that last echoed */
	_Atomic unsigned failed;
	_Atomic int failed_err;
	_Atomic bool failed_closing;
	_Atomic unsigned closed;
	_Atomic unsigned hops;
	_Atomic unsigned unexpected;  /* a call that should not have come */
	_Atomic int live_tokens;      /* hand-off args allocated and not yet freed */
	struct conn *_Atomic held;
	_Atomic unsigned busy, go;
	_Atomic int handoff_res;
} t;

static void echo_recv(struct conn *c, const uint8_t *data, size_t len)
{
	atomic_store(&t.echoed_on, (int)worker_id(conn_worker(c)));
	WORKER_CHECK_EQ(conn_send(c, data, len), 0);
}

static void count_closed(struct conn *c, int err)
{
	(void)c;
	(void)err;
	atomic_fetch_add(&t.closed, 1);
}

static const struct conn_ops echo_ops = {
	.on_recv = echo_recv,
	.on_closed = count_closed,
};

static void arrive_echo(struct worker *w, struct conn *c, void *arg)
{
	WORKER_CHECK_EQ((int)(intptr_t)arg, 42);
	conn_set_ops(c, &echo_ops, NULL);
	atomic_store(&t.arrived_on, (int)worker_id(w));
	atomic_fetch_add(&t.arrived, 1);
}

static void failed_record(struct conn *c, int err, void *arg)
{
	WORKER_CHECK_EQ((int)(intptr_t)arg, 42);
	atomic_store(&t.failed_err, err);
	atomic_store(&t.failed_closing, conn_is_closing(c));
	atomic_fetch_add(&t.failed, 1);
}

/* --- a connection moves and is served where it arrived ----------------------- */

static void accept_and_hand_over(struct worker *w, struct conn *c, void *arg)
{
	(void)arg;
	atomic_store(&t.accepted_on, (int)worker_id(w));
	atomic_fetch_add(&t.accepted, 1);
	conn_set_ops(c, &echo_ops, NULL);
	WORKER_CHECK_EQ(conn_handoff(c, other_worker(w), arrive_echo, failed_record, (void *)(intptr_t)42), 0);
}

static void test_handed_off_connection_is_echoed_by_the_target(void **state)
{
	static const char msg[] = "hello from the client";
	uint8_t in[sizeof(msg)];
	struct worker_stats from, to;
	struct runtime *rt;
	uint16_t port;
	int fd, src, dst;

	(void)state;
	memset(&t, 0, sizeof(t));
	rt = start_runtime(&port, accept_and_hand_over);
	fd = connect_client(port);
	/* Written at once: the bytes may reach the socket before, during or
	 * after the move; they must come back either way. */
	assert_int_equal(write(fd, msg, sizeof(msg)), (ssize_t)sizeof(msg));
	read_exact(fd, in, sizeof(in));
	assert_memory_equal(in, msg, sizeof(msg));
	src = atomic_load(&t.accepted_on);
	dst = atomic_load(&t.arrived_on);
	assert_int_equal(atomic_load(&t.arrived), 1);
	assert_int_not_equal(src, dst);
	assert_int_equal(atomic_load(&t.echoed_on), dst);
	assert_int_equal(atomic_load(&t.failed), 0);
	assert_true(wait_conns_open(rt, 1));
	from = stats_of(rt, (unsigned)src);
	to = stats_of(rt, (unsigned)dst);
	assert_int_equal(from.handoffs_out, 1);
	assert_int_equal(to.handoffs_in, 1);
	assert_int_equal(from.closed, 0); /* the move is not a close */
	assert_int_equal(from.conns_open, 0);
	assert_int_equal(to.conns_open, 1);
	close(fd);
	assert_true(wait_for(&t.closed, 1)); /* the target's on_closed, once */
	rt_fixture_runtime_stop();
	assert_int_equal(atomic_load(&t.closed), 1);
}

/* --- the rule: what conn_handoff refuses ------------------------------------- */

static void refuse_drained(struct conn *c);

static const struct conn_ops refuse_ops = {
	.on_drained = refuse_drained,
	.on_recv = echo_recv,
	.on_closed = count_closed,
};

static void accept_and_try_bad_handoffs(struct worker *w, struct conn *c, void *arg)
{
	(void)arg;
	conn_set_ops(c, &refuse_ops, NULL);
	atomic_store(&t.accepted_on, (int)worker_id(w));
	/* To ourselves, to nobody, without callbacks. */
	WORKER_CHECK_EQ(conn_handoff(c, w, arrive_echo, failed_record, NULL), -EINVAL);
	WORKER_CHECK_EQ(conn_handoff(c, NULL, arrive_echo, failed_record, NULL), -EINVAL);
	WORKER_CHECK_EQ(conn_handoff(c, other_worker(w), NULL, failed_record, NULL), -EINVAL);
	/* With bytes queued for sending: not yet (on_drained tries again). */
	WORKER_CHECK_EQ(conn_send(c, "x", 1), 0);
	WORKER_CHECK_EQ(conn_handoff(c, other_worker(w), arrive_echo, failed_record, (void *)(intptr_t)42),
			 -EBUSY);
	atomic_fetch_add(&t.accepted, 1);
}

static void refuse_drained(struct conn *c)
{
	struct worker *to = other_worker(conn_worker(c));

	WORKER_CHECK_EQ(conn_handoff(c, to, arrive_echo, failed_record, (void *)(intptr_t)42), 0);
	/* c is the hand-off's now. */
	WORKER_CHECK_EQ(conn_handoff(c, to, arrive_echo, failed_record, (void *)(intptr_t)42), -EALREADY);
	WORKER_CHECK_EQ(conn_send(c, "y", 1), -EBUSY);
}

static void test_handoff_refuses_what_it_cannot_move_safely(void **state)
{
	uint16_t port;
	uint8_t b[3];
	int fd;

	(void)state;
	memset(&t, 0, sizeof(t));
	start_runtime(&port, accept_and_try_bad_handoffs);
	fd = connect_client(port);
	read_exact(fd, b, 1); /* the "x" queued before the move */
	assert_int_equal(b[0], 'x');
	assert_true(wait_for(&t.arrived, 1));
	assert_int_not_equal(atomic_load(&t.arrived_on), atomic_load(&t.accepted_on));
	assert_int_equal(write(fd, "ok!", 3), 3);
	read_exact(fd, b, 3);
	assert_memory_equal(b, "ok!", 3);
	assert_int_equal(atomic_load(&t.echoed_on), atomic_load(&t.arrived_on));
	assert_int_equal(atomic_load(&t.failed), 0);
	close(fd);
	rt_fixture_runtime_stop();
	assert_int_equal(atomic_load(&t.closed), 1);
}

/* --- bytes that arrive while the receive is being cancelled ------------------ */

static void hold_recv(struct conn *c, const uint8_t *data, size_t len)
{
	(void)c;
	(void)data;
	(void)len;
	atomic_fetch_add(&t.unexpected, 1);
}

static const struct conn_ops hold_ops = {
	.on_recv = hold_recv,
	.on_closed = count_closed,
};

static void accept_and_hold(struct worker *w, struct conn *c, void *arg)
{
	(void)arg;
	conn_set_ops(c, &hold_ops, NULL);
	atomic_store(&t.accepted_on, (int)worker_id(w));
	atomic_store(&t.held, c);
	atomic_fetch_add(&t.accepted, 1);
}

/* Keep the worker busy until the test says go, so that what the test
 * does meanwhile queues up as task work for its ring. */
static void msg_block(struct worker *w, void *arg)
{
	uint64_t deadline = clock_mono_ms() + 5000;

	(void)w;
	(void)arg;
	atomic_store(&t.busy, 1);
	while (!atomic_load(&t.go) && clock_mono_ms() < deadline)
		usleep(1000);
}

static void msg_hand_held_over(struct worker *w, void *arg)
{
	(void)arg;
	atomic_store(&t.handoff_res, conn_handoff(atomic_load(&t.held), other_worker(w), arrive_echo,
						  failed_record, (void *)(intptr_t)42));
}

/* The worker's ring is DEFER_TASKRUN: the message asking for the move and
 * the client's bytes both wait as task work while the worker is blocked,
 * and run in that order when it next waits. So the move starts (and
 * cancels the armed receive) in the same batch in which that receive
 * completes with the bytes: net/ must carry them, and the target's
 * on_recv must get them first. */
static void test_bytes_received_during_the_move_reach_the_target(void **state)
{
	static const char msg[] = "bytes in flight during the move";
	uint8_t in[sizeof(msg)];
	struct worker_stats from;
	struct runtime *rt;
	uint16_t port;
	int fd;
	unsigned src;

	(void)state;
	memset(&t, 0, sizeof(t));
	rt = start_runtime(&port, accept_and_hold);
	fd = connect_client(port);
	assert_true(wait_for(&t.accepted, 1));
	src = (unsigned)atomic_load(&t.accepted_on);
	/* The accept armed a receive; it is submitted before the worker
	 * sees this message. */
	assert_int_equal(worker_post(runtime_worker(rt, src), msg_block, NULL), 0);
	assert_true(wait_for(&t.busy, 1));
	assert_int_equal(worker_post(runtime_worker(rt, src), msg_hand_held_over, NULL), 0);
	assert_int_equal(write(fd, msg, sizeof(msg)), (ssize_t)sizeof(msg));
	usleep(50000); /* loopback delivers the bytes (and wakes the receive) */
	atomic_store(&t.go, 1);
	read_exact(fd, in, sizeof(in));
	assert_memory_equal(in, msg, sizeof(msg));
	assert_int_equal(atomic_load(&t.handoff_res), 0);
	assert_int_equal(atomic_load(&t.unexpected), 0); /* the old owner saw none of it */
	assert_int_not_equal(atomic_load(&t.echoed_on), (int)src);
	assert_true(wait_conns_open(rt, 1));
	from = stats_of(rt, src);
	assert_int_equal(from.handoff_carried, sizeof(msg));
	assert_int_equal(from.handoffs_out, 1);
	close(fd);
	rt_fixture_runtime_stop();
}

/* --- a target without a free slot -------------------------------------------- */

static void accept_fill(struct worker *w, struct conn *c, void *arg)
{
	(void)arg;
	conn_set_ops(c, &echo_ops, NULL);
	if (worker_id(w) == 0) {
		if (atomic_load(&t.held))
			conn_close(c, 0, false); /* only one on worker 0 */
		else
			atomic_store(&t.held, c);
	}
	atomic_store(&t.accepted_on, (int)worker_id(w));
	atomic_fetch_add(&t.accepted, 1);
}

static void check_echo_from(int fd, int worker)
{
	uint8_t b[4];

	assert_int_equal(write(fd, "ping", 4), 4);
	read_exact(fd, b, 4);
	assert_memory_equal(b, "ping", 4);
	assert_int_equal(atomic_load(&t.echoed_on), worker);
}

static void test_target_without_free_slot_leaves_the_connection_here(void **state)
{
	int full[IN_SLOTS], nfull = 0, cand = -1;
	struct runtime *rt;
	uint16_t port;

	(void)state;
	memset(&t, 0, sizeof(t));
	rt = start_runtime(&port, accept_fill);
	/* Connect one at a time until worker 0 holds one connection and
	 * every accept slot of worker 1 is taken (the kernel spreads them by
	 * a hash of the ports; bounded). */
	for (unsigned i = 0; i < 2000 && nfull < IN_SLOTS; i++) {
		int fd = connect_client(port);

		assert_true(wait_for(&t.accepted, i + 1));
		if (atomic_load(&t.accepted_on) == 1)
			full[nfull++] = fd;
		else if (cand < 0)
			cand = fd;
		else
			close(fd);
	}
	assert_int_equal(nfull, IN_SLOTS);
	assert_true(cand >= 0);
	assert_int_equal(stats_of(rt, 1).conns_open, IN_SLOTS);

	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_hand_held_over, NULL), 0);
	assert_true(wait_for(&t.failed, 1));
	assert_int_equal(atomic_load(&t.handoff_res), 0);
	assert_int_equal(atomic_load(&t.failed_err), -ENFILE);
	assert_false(atomic_load(&t.failed_closing));
	assert_int_equal(atomic_load(&t.arrived), 0);
	/* Still here and still served. */
	check_echo_from(cand, 0);
	assert_int_equal(stats_of(rt, 0).handoff_failed, 1);
	assert_int_equal(stats_of(rt, 1).handoffs_in, 0);

	/* Free one slot on worker 1: now it moves. */
	close(full[--nfull]);
	RT_WAIT_UNTIL(stats_of(rt, 1).conns_open == IN_SLOTS - 1, 2000);
	assert_int_equal(stats_of(rt, 1).conns_open, IN_SLOTS - 1);
	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_hand_held_over, NULL), 0);
	assert_true(wait_for(&t.arrived, 1));
	assert_int_equal(atomic_load(&t.arrived_on), 1);
	check_echo_from(cand, 1);
	assert_int_equal(atomic_load(&t.failed), 1);

	close(cand);
	while (nfull > 0)
		close(full[--nfull]);
	rt_fixture_runtime_stop();
}

/* --- many moves back and forth -------------------------------------------- */

enum { HOPS = 1000 };

static void pp_drained(struct conn *c);
static void pp_arrive(struct worker *w, struct conn *c, void *arg);

static void pp_failed(struct conn *c, int err, void *arg)
{
	(void)c;
	(void)err;
	(void)arg;
	atomic_fetch_add(&t.failed, 1);
}

static const struct conn_ops pp_ops = {
	.on_recv = echo_recv,
	.on_drained = pp_drained,
	.on_closed = count_closed,
};

/* Each echo, once written, sends the connection to the other worker: the
 * armed receive is cancelled every time. */
static void pp_drained(struct conn *c)
{
	if (atomic_load(&t.hops) >= HOPS)
		return;
	WORKER_CHECK_EQ(conn_handoff(c, other_worker(conn_worker(c)), pp_arrive, pp_failed, NULL), 0);
}

static void pp_arrive(struct worker *w, struct conn *c, void *arg)
{
	(void)arg;
	conn_set_ops(c, &pp_ops, NULL);
	atomic_store(&t.arrived_on, (int)worker_id(w));
	atomic_fetch_add(&t.hops, 1);
}

static void accept_pp(struct worker *w, struct conn *c, void *arg)
{
	(void)w;
	(void)arg;
	conn_set_ops(c, &pp_ops, NULL);
	atomic_fetch_add(&t.accepted, 1);
}

/* HOPS is many times the 56 accept slots of a worker: a move that left its
 * old slot open would run the target out of slots (-ENFILE) long before. */
static void test_thousand_moves_after_echoes_leak_no_slot_or_fd(void **state)
{
	struct worker_stats a, b;
	struct runtime *rt;
	uint16_t port;
	unsigned fds_before, fds_running;
	int fd;

	(void)state;
	memset(&t, 0, sizeof(t));
	fds_before = count_fds();
	rt = start_runtime(&port, accept_pp);
	fds_running = count_fds();
	fd = connect_client(port);
	for (unsigned i = 0; i < HOPS; i++) {
		uint8_t out = (uint8_t)(i * 13 + 1), in;

		assert_int_equal(write(fd, &out, 1), 1);
		read_exact(fd, &in, 1);
		assert_int_equal(in, out);
		assert_true(wait_for(&t.hops, i + 1));
	}
	assert_int_equal(atomic_load(&t.failed), 0);
	assert_true(wait_conns_open(rt, 1));
	a = stats_of(rt, 0);
	b = stats_of(rt, 1);
	assert_int_equal(a.handoffs_out + b.handoffs_out, HOPS);
	assert_int_equal(a.handoffs_in + b.handoffs_in, HOPS);
	assert_int_equal(a.handoff_failed + b.handoff_failed, 0);
	assert_int_equal(a.closed + b.closed, 0);
	assert_int_equal(a.conns_open + b.conns_open, 1);
	assert_int_equal(count_fds(), fds_running + 1); /* the client socket, nothing else */
	/* Still a working connection after all that, served where it is. */
	check_echo_from(fd, atomic_load(&t.arrived_on));
	close(fd);
	assert_true(wait_for(&t.closed, 1));
	rt_fixture_runtime_stop();
	assert_int_equal(count_fds(), fds_before);
}

static void loop_arrive(struct worker *w, struct conn *c, void *arg)
{
	(void)arg;
	conn_set_ops(c, &echo_ops, NULL);
	if (atomic_fetch_add(&t.hops, 1) + 1 < HOPS)
		WORKER_CHECK_EQ(conn_handoff(c, other_worker(w), loop_arrive, pp_failed, NULL), 0);
}

static void accept_loop(struct worker *w, struct conn *c, void *arg)
{
	(void)arg;
	conn_set_ops(c, &echo_ops, NULL);
	atomic_fetch_add(&t.accepted, 1);
	WORKER_CHECK_EQ(conn_handoff(c, other_worker(w), loop_arrive, pp_failed, NULL), 0);
}

/* Moves straight from on_arrival (nothing to cancel), with the client's
 * bytes written at once: wherever they are read, they come back once. */
static void test_thousand_moves_from_arrival_leak_nothing(void **state)
{
	static const char msg[] = "after a thousand moves";
	uint8_t in[sizeof(msg)];
	struct worker_stats a, b;
	struct runtime *rt;
	uint16_t port;
	unsigned fds_before;
	int fd;

	(void)state;
	memset(&t, 0, sizeof(t));
	fds_before = count_fds();
	rt = start_runtime(&port, accept_loop);
	fd = connect_client(port);
	assert_int_equal(write(fd, msg, sizeof(msg)), (ssize_t)sizeof(msg));
	assert_true(wait_for(&t.hops, HOPS));
	read_exact(fd, in, sizeof(in));
	assert_memory_equal(in, msg, sizeof(msg));
	assert_true(wait_conns_open(rt, 1));
	a = stats_of(rt, 0);
	b = stats_of(rt, 1);
	assert_int_equal(a.handoffs_out + b.handoffs_out, HOPS);
	assert_int_equal(a.handoffs_in + b.handoffs_in, HOPS);
	assert_int_equal(a.conns_open + b.conns_open, 1);
	assert_int_equal(atomic_load(&t.failed), 0);
	close(fd);
	assert_true(wait_for(&t.closed, 1));
	rt_fixture_runtime_stop();
	assert_int_equal(count_fds(), fds_before);
}

/* --- stopping while connections move ----------------------------------------- */

static void token_arrive(struct worker *w, struct conn *c, void *arg);

static void *token_new(void)
{
	int *p = malloc(sizeof(*p));

	WORKER_CHECK(p != NULL);
	atomic_fetch_add(&t.live_tokens, 1);
	return p;
}

static void token_free(void *p)
{
	atomic_fetch_sub(&t.live_tokens, 1);
	free(p);
}

static void token_failed(struct conn *c, int err, void *arg)
{
	(void)err;
	token_free(arg);
	atomic_fetch_add(&t.failed, 1);
	/* Back here with its ops; try again unless it is closing. */
	if (!conn_is_closing(c)) {
		void *tok = token_new();

		if (conn_handoff(c, other_worker(conn_worker(c)), token_arrive, token_failed, tok) < 0)
			token_free(tok);
	}
}

static void token_arrive(struct worker *w, struct conn *c, void *arg)
{
	void *tok;

	token_free(arg);
	conn_set_ops(c, &echo_ops, NULL);
	atomic_fetch_add(&t.hops, 1);
	tok = token_new();
	if (conn_handoff(c, other_worker(w), token_arrive, token_failed, tok) < 0)
		token_free(tok); /* stopping: it stays and is closed here */
}

static void accept_tokens(struct worker *w, struct conn *c, void *arg)
{
	void *tok = token_new();

	(void)arg;
	conn_set_ops(c, &echo_ops, NULL);
	atomic_fetch_add(&t.accepted, 1);
	if (conn_handoff(c, other_worker(w), token_arrive, token_failed, tok) < 0)
		token_free(tok);
}

/* Connections bounce between the workers without pause while the runtime
 * stops: every one is closed exactly once, every hand-off's arg comes
 * back (to on_arrival or on_failed), the threads end. Repeated, since
 * where the stop falls differs each time. */
static void test_stop_during_moves_loses_nothing(void **state)
{
	enum { ROUNDS = 10, CLIENTS = 4 };
	unsigned fds_before = count_fds();

	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		int fds[CLIENTS];
		uint16_t port;

		memset(&t, 0, sizeof(t));
		start_runtime(&port, accept_tokens);
		for (int i = 0; i < CLIENTS; i++)
			fds[i] = connect_client(port);
		assert_true(wait_for(&t.hops, 50 * (unsigned)CLIENTS));
		usleep((useconds_t)(round * 1000));
		rt_fixture_runtime_stop();
		assert_int_equal(atomic_load(&t.closed), CLIENTS);
		assert_int_equal(atomic_load(&t.live_tokens), 0);
		for (int i = 0; i < CLIENTS; i++) {
			assert_true(sees_close(fds[i]));
			close(fds[i]);
		}
	}
	assert_int_equal(count_fds(), fds_before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handed_off_connection_is_echoed_by_the_target, rt_fixture_setup, rt_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_handoff_refuses_what_it_cannot_move_safely, rt_fixture_setup, rt_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_bytes_received_during_the_move_reach_the_target, rt_fixture_setup, rt_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_target_without_free_slot_leaves_the_connection_here, rt_fixture_setup, rt_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_thousand_moves_after_echoes_leak_no_slot_or_fd, rt_fixture_setup, rt_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_thousand_moves_from_arrival_leak_nothing, rt_fixture_setup, rt_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_stop_during_moves_loses_nothing, rt_fixture_setup, rt_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
