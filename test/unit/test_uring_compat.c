/* net/uring_compat.h's hand-made SQEs against the running kernel, and the
 * kernel facts the runtime's TCP_NODELAY choice rests on: an accepted
 * socket inherits TCP_NODELAY from its listener (plain accept and io_uring
 * multishot accept into a direct descriptor), and the setsockopt SQE sets
 * it on a socket that exists only as a direct descriptor; and the
 * MSG_RING fd-passing SQE that conn_handoff uses. Direct
 * descriptors are read back by installing them as normal fds
 * (FIXED_FD_INSTALL). Exits 77 when io_uring is refused; a test whose
 * kernel feature is missing is skipped, never passed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/runtime.h"
#include "net/uring_compat.h"
#include "test/unit/rt_fixture.h"

static int nodelay_of(int fd)
{
	int v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
	return v;
}

/* A listener on 127.0.0.1 (any port) with TCP_NODELAY on or off. */
static int listener(bool nodelay, uint16_t *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (nodelay)
		assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
	rt_fixture_loopback(&sin, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A ring set up like a worker's (net/worker.c), with 8 direct slots. */
static void ring_init(struct io_uring *ring)
{
	rt_fixture_ring_init(ring, 16, 8);
}

/* Submit what is queued and reap exactly n completions (bounded: 5 s),
 * storing res by user_data (0..7) in res[]. */
static void reap(struct io_uring *ring, unsigned n, int *res)
{
	struct __kernel_timespec ts = { .tv_sec = 5, .tv_nsec = 0 };

	assert_true(io_uring_submit(ring) >= 0);
	for (unsigned i = 0; i < n; i++) {
		struct io_uring_cqe *cqe;

		assert_int_equal(io_uring_wait_cqe_timeout(ring, &cqe, &ts), 0);
		assert_true(cqe->user_data < 8);
		res[cqe->user_data] = cqe->res;
		io_uring_cqe_seen(ring, cqe);
	}
}

/* Install direct slot as a normal fd; skip when the kernel (< 6.8) lacks
 * FIXED_FD_INSTALL, since nothing else can read a direct socket back. */
static int install_fd(struct io_uring *ring, unsigned slot)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	int res[8] = { 0 };

	uring_prep_fixed_fd_install(sqe, slot);
	io_uring_sqe_set_data64(sqe, 0);
	reap(ring, 1, res);
	if (res[0] == -EINVAL || res[0] == -EOPNOTSUPP) {
		fprintf(stderr, "FIXED_FD_INSTALL refused (%s): kernel < 6.8\n", strerror(-res[0]));
		io_uring_queue_exit(ring);
		skip();
	}
	assert_true(res[0] >= 0);
	return res[0];
}

static void test_accepted_socket_inherits_nodelay_from_listener(void **state)
{
	(void)state;
	for (int on = 0; on <= 1; on++) {
		uint16_t port;
		int l = listener(on, &port);
		int c = rt_fixture_connect(port);
		int a = accept(l, NULL, NULL);

		assert_true(a >= 0);
		/* The accepted socket carries the listener's setting, both ways. */
		assert_int_equal(nodelay_of(a) != 0, on);
		close(a);
		close(c);
		close(l);
	}
}

static void test_multishot_accept_direct_inherits_nodelay(void **state)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	uint16_t port;
	int res[8] = { 0 };
	int l, c, fd;

	(void)state;
	rt_fixture_require_uring();
	ring_init(&ring);
	l = listener(true, &port);
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_multishot_accept_direct(sqe, l, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, 1);
	assert_true(io_uring_submit(&ring) >= 0);
	c = rt_fixture_connect(port);
	reap(&ring, 1, res);
	assert_true(res[1] >= 0); /* the slot the kernel picked */
	fd = install_fd(&ring, (unsigned)res[1]);
	assert_int_equal(nodelay_of(fd), 1);
	close(fd);
	close(c);
	close(l);
	io_uring_queue_exit(&ring);
}

/* The chain conn_connect submits (socket -> setsockopt, hard-linked), read
 * back through an installed fd; without the setsockopt the same socket
 * reads 0, so the check can fail. */
static void test_setsockopt_sqe_sets_nodelay_on_direct_socket(void **state)
{
	static const int on = 1;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	int res[8] = { 0 };
	int fd;

	(void)state;
	rt_fixture_require_uring();
	ring_init(&ring);
	for (unsigned slot = 0; slot < 2; slot++) {
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_socket_direct(sqe, AF_INET, SOCK_STREAM, IPPROTO_TCP, slot, 0);
		io_uring_sqe_set_data64(sqe, 2);
		if (slot == 1) {
			sqe->flags |= IOSQE_IO_LINK;
			sqe = io_uring_get_sqe(&ring);
			uring_prep_setsockopt_fixed(sqe, slot, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
			io_uring_sqe_set_data64(sqe, 3);
		}
		reap(&ring, slot == 1 ? 2 : 1, res);
		assert_int_equal(res[2], 0);
		if (slot == 1 && (res[3] == -EOPNOTSUPP || res[3] == -EINVAL)) {
			fprintf(stderr, "socket setsockopt through io_uring refused (%s): kernel < 6.7\n",
				strerror(-res[3]));
			io_uring_queue_exit(&ring);
			skip();
		}
		if (slot == 1)
			assert_int_equal(res[3], 0);
		fd = install_fd(&ring, slot);
		assert_int_equal(nodelay_of(fd), (int)slot);
		close(fd);
	}
	io_uring_queue_exit(&ring);
}

/* A failing setsockopt (a level TCP does not know) is hard-linked: the
 * next request of the chain still runs, as conn_connect relies on. */
static void test_refused_setsockopt_does_not_cancel_the_next_link(void **state)
{
	static const int on = 1;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	int res[8] = { 0 };
	int fd;

	(void)state;
	rt_fixture_require_uring();
	ring_init(&ring);
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_socket_direct(sqe, AF_INET, SOCK_STREAM, IPPROTO_TCP, 0, 0);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, 2);
	sqe = io_uring_get_sqe(&ring);
	uring_prep_setsockopt_fixed(sqe, 0, IPPROTO_TCP, 0x7fff, &on, sizeof(on));
	sqe->flags |= IOSQE_IO_HARDLINK;
	io_uring_sqe_set_data64(sqe, 3);
	sqe = io_uring_get_sqe(&ring);
	uring_prep_setsockopt_fixed(sqe, 0, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	io_uring_sqe_set_data64(sqe, 4);
	reap(&ring, 3, res);
	assert_int_equal(res[2], 0);
	assert_true(res[3] < 0 && res[3] != -ECANCELED);
	if (res[4] == -EOPNOTSUPP) {
		io_uring_queue_exit(&ring);
		skip(); /* kernel < 6.7: no socket setsockopt through io_uring */
	}
	assert_int_equal(res[4], 0);
	fd = install_fd(&ring, 0);
	assert_int_equal(nodelay_of(fd), 1);
	close(fd);
	io_uring_queue_exit(&ring);
}

/* uring_prep_msg_ring_fd_alloc: the descriptor in our slot 0 lands in the
 * target ring's allocation range, the target's CQE carries our user_data
 * and its new slot, our CQE the same slot; with the range full we get
 * -ENFILE and the target nothing. What conn_handoff (net/worker.c) builds
 * on. Both rings are this thread's, so the kernel's task work for the
 * DEFER_TASKRUN target runs when our own syscalls return. */
static void test_msg_ring_fd_alloc_passes_a_direct_socket(void **state)
{
	struct io_uring src, dst;
	struct io_uring_sqe *sqe;
	int res[8] = { 0 }, got[8] = { 0 };
	int sv[2], fd;
	char b[4];

	(void)state;
	rt_fixture_require_uring();
	ring_init(&src);
	ring_init(&dst);
	assert_int_equal(io_uring_register_file_alloc_range(&dst, 6, 2), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(io_uring_register_files_update(&src, 0, &sv[0], 1), 1);
	close(sv[0]); /* slot 0 holds it now */
	for (uint64_t i = 0; i < 3; i++) {
		sqe = io_uring_get_sqe(&src);
		uring_prep_msg_ring_fd_alloc(sqe, dst.ring_fd, 0, 5);
		io_uring_sqe_set_data64(sqe, i);
	}
	/* The kernel runs the three installs as task work, in no promised
	 * order (here: the last first): two get slots 6 and 7, one -ENFILE. */
	reap(&src, 3, res);
	assert_int_equal(res[0] + res[1] + res[2], 6 + 7 - ENFILE);
	for (int i = 0; i < 3; i++)
		assert_true(res[i] == 6 || res[i] == 7 || res[i] == -ENFILE);
	assert_true(res[0] != res[1] && res[1] != res[2] && res[0] != res[2]);
	for (int i = 0; i < 3; i++) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = i < 2 ? 999999999 : 50000000 };
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe_timeout(&dst, &cqe, &ts);

		if (i == 2) {
			assert_int_equal(r, -ETIME); /* nothing for the refused one */
			break;
		}
		assert_int_equal(r, 0);
		assert_int_equal(cqe->user_data, 5);
		got[cqe->res == 6 ? 0 : 1] = cqe->res;
		io_uring_cqe_seen(&dst, cqe);
	}
	assert_int_equal(got[0], 6);
	assert_int_equal(got[1], 7);
	/* The target's slot 6 is the same socket. */
	fd = install_fd(&dst, 6);
	assert_int_equal(write(sv[1], "ping", 4), 4);
	assert_int_equal(read(fd, b, 4), 4);
	assert_memory_equal(b, "ping", 4);
	close(fd);
	close(sv[1]);
	io_uring_queue_exit(&src);
	io_uring_queue_exit(&dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted_socket_inherits_nodelay_from_listener),
		cmocka_unit_test(test_multishot_accept_direct_inherits_nodelay),
		cmocka_unit_test(test_setsockopt_sqe_sets_nodelay_on_direct_socket),
		cmocka_unit_test(test_refused_setsockopt_does_not_cancel_the_next_link),
		cmocka_unit_test(test_msg_ring_fd_alloc_passes_a_direct_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
