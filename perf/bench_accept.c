/* Benchmark: how the io_uring workers should listen (issue 4). Three
 * designs, measured in one run, interleaved:
 *   reuseport  one SO_REUSEPORT listener per worker (what net/runtime.c does):
 *              the kernel hashes each new connection to one worker's queue;
 *   shared     one listener socket, every worker arms a multishot accept on
 *              the same fd: whichever worker the kernel wakes takes it;
 *   handoff    shared, and the accepting worker hands the connections round
 *              robin to every worker (itself included): the direct
 *              descriptor travels with IORING_OP_MSG_RING / MSG_SEND_FD into
 *              a slot the target's kernel picks, then the source slot is
 *              closed (hard-linked after the message).
 * Workers set up their rings as net/worker.c does (SINGLE_ISSUER |
 * DEFER_TASKRUN | SUBMIT_ALL, a sparse direct-descriptor table with a
 * kernel-allocated range, multishot accept into it) and close each accepted
 * descriptor at once (close_direct). Client threads keep a fixed number of
 * non-blocking connections in flight to 127.0.0.1: connect, wait for the
 * server's FIN (so a connection is "served" once a worker accepted and
 * closed it), then close with RST (SO_LINGER 0: no TIME_WAIT, so ephemeral
 * ports never run out). Closed loop: at most clients x inflight connections
 * wait in the accept queues, below the backlog, so no SYN is ever dropped.
 *
 * Reports per run and as medians: accepts/s of wall time, accepts per CPU
 * second of the worker threads and of the whole process (clients included:
 * on loopback the handshake runs in the client's context), each worker's
 * share of the connections served (min/max: a shard that gets most of
 * them overloads), and the service latency (connect() start until the client
 * sees the server's FIN: queueing + accept + close) p50/p99. Then the
 * ratios shared/reuseport and handoff/reuseport. Not for: data transfer,
 * TLS, SOCKS (those are perf/loadgen's). Never run by meson test.
 * Usage: bench_accept --help */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/compiler.h"

#define MAX_THREADS 64
#define SLOTS 4096              /* direct descriptors per worker ring */
#define BACKLOG 4096            /* capped by net.core.somaxconn */
#define CONN_TIMEOUT_NS 2000000000ull /* a connection not served by then counts as a timeout */
#define LAT_CAP (1u << 21)      /* latency samples kept per client per run */
#define UD_ACCEPT 1
#define UD_CLOSE 2
#define UD_HANDED 3 /* a connection another worker handed us (res = our slot) */
#define UD_HANDOFF 4 /* our MSG_RING that hands one over (a CQE only on failure) */

enum mode { MODE_REUSEPORT, MODE_SHARED, MODE_HANDOFF, MODE_COUNT };
static const char *const mode_name[MODE_COUNT] = { "reuseport", "shared", "handoff" };

struct opts {
	unsigned workers, clients, inflight, reps;
	unsigned work_us; /* CPU time each worker spends per accepted connection */
	double seconds;
	int worker_cpu[MAX_THREADS]; /* -1: not pinned */
	int client_cpu[MAX_THREADS];
	bool clients_pinned;
};

/* Shared by every thread of one run. */
struct run {
	_Atomic bool stop_clients; /* store-release by main, load-acquire by clients */
	_Atomic bool stop_workers; /* likewise, for workers */
	_Atomic unsigned ready;    /* workers with their accept armed, or failed */
	uint16_t port;
};

struct worker {
	/* Owner thread writes; main reads the atomics. */
	pthread_t th;
	struct run *run;
	unsigned id;
	unsigned work_us;
	int cpu;
	int lfd;
	int setup_err;              /* written before `ready` is incremented (release) */
	struct worker *peers;       /* every worker of the run (handoff mode), or NULL */
	unsigned npeers;
	unsigned rr;                /* next hand-off target */
	_Atomic int ring_fd;        /* store-release before `ready`; peers load-acquire */
	CACHE_ALIGNED _Atomic uint64_t accepted; /* connections served here (after any hand-off) */
	_Atomic uint64_t accept_errors;
};

struct client {
	pthread_t th;
	struct run *run;
	int cpu;
	unsigned inflight;
	uint64_t served, errors, timeouts, lat_dropped;
	uint32_t *lat; /* ns, connect start to the server's FIN */
	size_t nlat;
	char first_error[96];
};

struct result {
	uint64_t accepts, served, errors, timeouts;
	double wall_s, worker_cpu_s, proc_cpu_s;
	double min_share, max_share;
	double p50_us, p99_us;
};

static int pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static double ts_s(const struct timespec *t) { return (double)t->tv_sec + (double)t->tv_nsec / 1e9; }

static double thread_cpu_s(pthread_t th)
{
	clockid_t id;
	struct timespec t;

	if (pthread_getcpuclockid(th, &id) != 0 || clock_gettime(id, &t) != 0)
		return 0;
	return ts_s(&t);
}

static double proc_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

/* --- listeners ------------------------------------------------------------ */

/* A listening socket on 127.0.0.1:port (0 = any). Return the fd or -errno. */
static int listen_on(uint16_t port, bool reuseport)
{
	struct sockaddr_in sin;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, BACKLOG) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		return 0;
	return ntohs(sin.sin_port);
}

/* --- workers -------------------------------------------------------------- */

static void arm_accept(struct io_uring *ring, int lfd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	io_uring_prep_multishot_accept_direct(sqe, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, UD_ACCEPT);
}

static int worker_ring_setup(struct io_uring *ring)
{
	struct io_uring_params p;
	int r;

	memset(&p, 0, sizeof(p));
	/* The flags of net/worker.c's worker_setup_ring. */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
		  IORING_SETUP_CQSIZE;
	p.cq_entries = 8192;
	r = io_uring_queue_init_params(1024, ring, &p);
	if (r < 0)
		return r;
	r = io_uring_register_files_sparse(ring, SLOTS);
	if (r == 0)
		r = io_uring_register_file_alloc_range(ring, 0, SLOTS);
	if (r < 0) {
		io_uring_queue_exit(ring);
		return r;
	}
	io_uring_register_ring_fd(ring); /* an optimisation, as in the runtime */
	return 0;
}

/* Burn us microseconds of this thread's CPU time. */
static void spin_us(unsigned us)
{
	struct timespec t;
	double end;

	if (us == 0)
		return;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	end = ts_s(&t) + us / 1e6;
	do
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	while (ts_s(&t) < end);
}

/* Room for n SQEs, submitting what is queued if needed (a link must not
 * be split across two submissions). */
static void sq_reserve(struct io_uring *ring, unsigned n)
{
	if (io_uring_sq_space_left(ring) < n)
		io_uring_submit(ring);
}

/* Serve the connection in our slot: the work, then close. */
static void serve(struct worker *w, struct io_uring *ring, unsigned slot)
{
	struct io_uring_sqe *sqe;

	/* The real worker would arm a receive here; --work-us stands for the
	 * work a connection brings (a SOCKS handshake, a stream on a circuit). */
	spin_us(w->work_us);
	sq_reserve(ring, 1);
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_close_direct(sqe, slot);
	io_uring_sqe_set_data64(sqe, UD_CLOSE);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

/* Hand the connection in our slot to worker t: MSG_RING with
 * IORING_MSG_SEND_FD into a slot t's kernel allocates (t gets a CQE with
 * UD_HANDED and the slot), hard-linked to closing our slot, so the close
 * waits for the message even when the kernel runs it asynchronously.
 * liburing 2.3 has no helper (see ../shared/PLATFORM.md). */
static void hand_off(struct io_uring *ring, unsigned slot, int target_fd)
{
	struct io_uring_sqe *sqe;

	sq_reserve(ring, 2);
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_rw(IORING_OP_MSG_RING, sqe, target_fd, (void *)(uintptr_t)IORING_MSG_SEND_FD, 0, UD_HANDED);
	sqe->addr3 = slot;
	sqe->file_index = IORING_FILE_INDEX_ALLOC;
	sqe->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, UD_HANDOFF);
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_close_direct(sqe, slot);
	io_uring_sqe_set_data64(sqe, UD_CLOSE);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

/* A new connection in our slot: serve it, or hand it to the next worker
 * in turn. Return 1 when it was served here. */
static unsigned on_accepted(struct worker *w, struct io_uring *ring, unsigned slot)
{
	if (w->peers) {
		struct worker *t = &w->peers[w->rr++ % w->npeers];
		/* Pairs with the store-release in worker_main. */
		int fd = atomic_load_explicit(&t->ring_fd, memory_order_acquire);

		if (t != w && fd >= 0) {
			hand_off(ring, slot, fd);
			return 0;
		}
	}
	serve(w, ring, slot);
	return 1;
}

/* Handle one batch of completions; return how many. */
static unsigned worker_reap(struct worker *w, struct io_uring *ring, bool *rearm)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	uint64_t acc = 0, errs = 0;

	io_uring_for_each_cqe(ring, head, cqe) {
		n++;
		if (cqe->user_data == UD_ACCEPT) {
			if (cqe->res >= 0)
				acc += on_accepted(w, ring, (unsigned)cqe->res);
			else if (cqe->res != -ECANCELED)
				errs++;
			if (!(cqe->flags & IORING_CQE_F_MORE))
				*rearm = true;
		} else if (cqe->user_data == UD_HANDED) {
			if (cqe->res >= 0) {
				serve(w, ring, (unsigned)cqe->res);
				acc++;
			} else {
				errs++;
			}
		} else if ((cqe->user_data == UD_CLOSE || cqe->user_data == UD_HANDOFF) && cqe->res < 0) {
			errs++;
		}
	}
	io_uring_cq_advance(ring, n);
	/* Single writer: relaxed stores; main reads them with relaxed loads. */
	if (acc)
		atomic_store_explicit(&w->accepted, atomic_load_explicit(&w->accepted, memory_order_relaxed) + acc,
				      memory_order_relaxed);
	if (errs)
		atomic_store_explicit(&w->accept_errors,
				      atomic_load_explicit(&w->accept_errors, memory_order_relaxed) + errs,
				      memory_order_relaxed);
	return n;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct io_uring ring;
	int r;

	pin_self(w->cpu);
	r = worker_ring_setup(&ring);
	w->setup_err = r;
	if (r == 0) {
		/* Pairs with the load-acquire in on_accepted. */
		atomic_store_explicit(&w->ring_fd, ring.ring_fd, memory_order_release);
		arm_accept(&ring, w->lfd);
		io_uring_submit(&ring);
	}
	/* Pairs with the load-acquire in run_once's wait for readiness. */
	atomic_fetch_add_explicit(&w->run->ready, 1, memory_order_release);
	if (r < 0)
		return NULL;
	/* Pairs with the store-release in run_once. The 10 ms timeout bounds
	 * how long a stop takes to be seen. */
	while (!atomic_load_explicit(&w->run->stop_workers, memory_order_acquire)) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 10000000 };
		struct io_uring_cqe *cqe;
		bool rearm = false;

		io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
		worker_reap(w, &ring, &rearm);
		if (rearm)
			arm_accept(&ring, w->lfd);
	}
	/* Peers may still message this ring until they stop too: a message to
	 * a ring whose owner left fails (-EOWNERDEAD) and counts as their
	 * error, after the measured window. */
	atomic_store_explicit(&w->ring_fd, -1, memory_order_release);
	io_uring_queue_exit(&ring); /* cancels the accept, closes every direct descriptor */
	return NULL;
}

/* --- clients -------------------------------------------------------------- */

struct cslot {
	int fd;
	uint64_t t0;
};

static void client_note_error(struct client *c, const char *what, int err)
{
	c->errors++;
	if (!c->first_error[0])
		snprintf(c->first_error, sizeof(c->first_error), "%s: %s", what, strerror(err));
}

/* Start one connection in slot i. Return false when it could not start. */
static bool client_start(struct client *c, int ep, struct cslot *s, unsigned i)
{
	struct sockaddr_in sin;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct epoll_event ev;
	int fd;

	s->fd = -1;
	s->t0 = clock_mono_ns();
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		client_note_error(c, "socket", errno);
		return false;
	}
	/* RST on close: neither side keeps TIME_WAIT state. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(c->run->port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		client_note_error(c, "connect", errno);
		close(fd);
		return false;
	}
	/* Refused or reset shows as EPOLLERR/EPOLLHUP; the server's FIN as
	 * EPOLLIN/EPOLLRDHUP. */
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.u32 = i;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		client_note_error(c, "epoll_ctl", errno);
		close(fd);
		return false;
	}
	s->fd = fd;
	return true;
}

static void client_finish(struct client *c, struct cslot *s, uint32_t events, uint64_t now)
{
	if (events & EPOLLERR) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		client_note_error(c, "connection", err ? err : ECONNRESET);
	} else {
		uint64_t d = now - s->t0;

		c->served++;
		if (c->nlat < LAT_CAP)
			c->lat[c->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		else
			c->lat_dropped++;
	}
	close(s->fd);
	s->fd = -1;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct cslot *slots = calloc(c->inflight, sizeof(*slots));
	struct epoll_event evs[64];
	uint64_t next_scan = clock_mono_ns() + 100000000ull;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	pin_self(c->cpu);
	if (!slots || ep < 0) {
		client_note_error(c, "setup", slots ? errno : ENOMEM);
		free(slots);
		if (ep >= 0)
			close(ep);
		return NULL;
	}
	for (unsigned i = 0; i < c->inflight; i++)
		client_start(c, ep, &slots[i], i);
	/* Pairs with the store-release in run_once. */
	while (!atomic_load_explicit(&c->run->stop_clients, memory_order_acquire)) {
		int n = epoll_wait(ep, evs, (int)ARRAY_LEN(evs), 5);
		uint64_t now = clock_mono_ns();

		for (int k = 0; k < n; k++) {
			struct cslot *s = &slots[evs[k].data.u32];

			client_finish(c, s, evs[k].events, now);
			client_start(c, ep, s, evs[k].data.u32);
		}
		if (now >= next_scan) {
			/* Time out connections nobody served; restart idle slots
			 * whose start failed (e.g. a transient EMFILE). */
			next_scan = now + 100000000ull;
			for (unsigned i = 0; i < c->inflight; i++) {
				/* t0 can be later than now: restarted in this round. */
				if (slots[i].fd >= 0 && now > slots[i].t0 && now - slots[i].t0 > CONN_TIMEOUT_NS) {
					c->timeouts++;
					close(slots[i].fd);
					slots[i].fd = -1;
				}
				if (slots[i].fd < 0)
					client_start(c, ep, &slots[i], i);
			}
		}
	}
	for (unsigned i = 0; i < c->inflight; i++)
		if (slots[i].fd >= 0)
			close(slots[i].fd);
	close(ep);
	free(slots);
	return NULL;
}

/* --- one run --------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const uint32_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}

/* Open the listeners of mode m: fds[i] is worker i's. Return 0 or -errno. */
static int open_listeners(enum mode m, unsigned nw, int *fds, uint16_t *port)
{
	int fd = listen_on(0, m == MODE_REUSEPORT);

	if (fd < 0)
		return fd;
	*port = bound_port(fd);
	fds[0] = fd;
	for (unsigned i = 1; i < nw; i++) {
		if (m != MODE_REUSEPORT) {
			fds[i] = fd;
			continue;
		}
		fds[i] = listen_on(*port, true);
		if (fds[i] < 0) {
			int e = fds[i];
			for (unsigned j = 0; j < i; j++)
				close(fds[j]);
			return e;
		}
	}
	return 0;
}

static void close_listeners(enum mode m, unsigned nw, const int *fds)
{
	for (unsigned i = 0; i < (m == MODE_REUSEPORT ? nw : 1); i++)
		close(fds[i]);
}

static int run_once(const struct opts *o, enum mode m, struct client *cl, struct result *res)
{
	struct run run;
	struct worker *wk = aligned_alloc(CACHE_LINE, sizeof(*wk) * MAX_THREADS);
	int fds[MAX_THREADS];
	double wcpu0[MAX_THREADS] = { 0 }, wcpu1[MAX_THREADS] = { 0 };
	uint64_t acc0[MAX_THREADS] = { 0 }, acc1[MAX_THREADS] = { 0 }, t0 = 0, t1 = 0, deadline;
	uint32_t *all = NULL;
	size_t nall = 0;
	double pcpu0 = 0, pcpu1 = 0;
	int r;

	if (!wk)
		return -ENOMEM;
	memset(wk, 0, sizeof(*wk) * MAX_THREADS);
	memset(&run, 0, sizeof(run));
	r = open_listeners(m, o->workers, fds, &run.port);
	if (r < 0) {
		free(wk);
		return r;
	}
	/* Before any thread starts: a worker may look at any peer's ring. */
	for (unsigned i = 0; i < o->workers; i++)
		atomic_init(&wk[i].ring_fd, -1);
	for (unsigned i = 0; i < o->workers; i++) {
		wk[i].run = &run;
		wk[i].id = i;
		wk[i].cpu = o->worker_cpu[i];
		wk[i].lfd = fds[i];
		wk[i].work_us = o->work_us;
		wk[i].peers = m == MODE_HANDOFF ? wk : NULL;
		wk[i].npeers = o->workers;
		wk[i].rr = i;
		if (pthread_create(&wk[i].th, NULL, worker_main, &wk[i]) != 0) {
			fprintf(stderr, "bench_accept: cannot start worker thread\n");
			exit(1);
		}
	}
	/* Bounded wait until every worker armed its accept (or failed). */
	deadline = clock_mono_ns() + 5000000000ull;
	while (atomic_load_explicit(&run.ready, memory_order_acquire) < o->workers && clock_mono_ns() < deadline)
		usleep(1000);
	r = atomic_load_explicit(&run.ready, memory_order_acquire) < o->workers ? -ETIMEDOUT : 0;
	for (unsigned i = 0; i < o->workers && r == 0; i++)
		r = wk[i].setup_err;
	if (r == 0) {
		for (unsigned i = 0; i < o->workers; i++) {
			wcpu0[i] = thread_cpu_s(wk[i].th);
			acc0[i] = atomic_load_explicit(&wk[i].accepted, memory_order_relaxed);
		}
		pcpu0 = proc_cpu_s();
		t0 = clock_mono_ns();
		for (unsigned i = 0; i < o->clients; i++) {
			struct client *c = &cl[i];
			uint32_t *lat = c->lat;

			memset(c, 0, sizeof(*c));
			c->lat = lat;
			c->run = &run;
			c->cpu = o->client_cpu[i];
			c->inflight = o->inflight;
			if (pthread_create(&c->th, NULL, client_main, c) != 0) {
				fprintf(stderr, "bench_accept: cannot start client thread\n");
				exit(1);
			}
		}
		usleep((useconds_t)(o->seconds * 1e6));
		t1 = clock_mono_ns();
		for (unsigned i = 0; i < o->workers; i++) {
			wcpu1[i] = thread_cpu_s(wk[i].th);
			acc1[i] = atomic_load_explicit(&wk[i].accepted, memory_order_relaxed);
		}
		pcpu1 = proc_cpu_s();
		/* Pairs with the load-acquire in client_main. */
		atomic_store_explicit(&run.stop_clients, true, memory_order_release);
		for (unsigned i = 0; i < o->clients; i++)
			pthread_join(cl[i].th, NULL);
	}
	/* Pairs with the load-acquire in worker_main. */
	atomic_store_explicit(&run.stop_workers, true, memory_order_release);
	for (unsigned i = 0; i < o->workers; i++)
		pthread_join(wk[i].th, NULL);
	close_listeners(m, o->workers, fds);
	if (r < 0) {
		free(wk);
		return r;
	}

	memset(res, 0, sizeof(*res));
	res->wall_s = (double)(t1 - t0) / 1e9;
	res->proc_cpu_s = pcpu1 - pcpu0;
	res->min_share = 1;
	for (unsigned i = 0; i < o->workers; i++) {
		res->accepts += acc1[i] - acc0[i];
		res->worker_cpu_s += wcpu1[i] - wcpu0[i];
		res->errors += atomic_load_explicit(&wk[i].accept_errors, memory_order_relaxed);
	}
	for (unsigned i = 0; i < o->workers; i++) {
		double share = res->accepts ? (double)(acc1[i] - acc0[i]) / (double)res->accepts : 0;
		res->min_share = MIN(res->min_share, share);
		res->max_share = MAX(res->max_share, share);
	}
	for (unsigned i = 0; i < o->clients; i++) {
		res->served += cl[i].served;
		res->errors += cl[i].errors;
		res->timeouts += cl[i].timeouts;
		nall += cl[i].nlat;
		if (cl[i].first_error[0])
			fprintf(stderr, "bench_accept: client %u: first error: %s\n", i, cl[i].first_error);
	}
	all = malloc((nall ? nall : 1) * sizeof(*all));
	if (all) {
		size_t k = 0;
		for (unsigned i = 0; i < o->clients; i++) {
			memcpy(all + k, cl[i].lat, cl[i].nlat * sizeof(*all));
			k += cl[i].nlat;
		}
		qsort(all, nall, sizeof(*all), cmp_u32);
		res->p50_us = pct_us(all, nall, 0.50);
		res->p99_us = pct_us(all, nall, 0.99);
		free(all);
	}
	free(wk);
	return 0;
}

/* --- reporting ------------------------------------------------------------- */

static double rate(double n, double s) { return s > 0 ? n / s : 0; }

static void print_header(void)
{
	printf("%-5s %-10s %9s %10s %14s %12s %6s %6s %8s %8s %6s %6s\n", "run", "mode", "accepts", "acc/s",
	       "acc/worker-cpu", "acc/proc-cpu", "min%", "max%", "p50_us", "p99_us", "errs", "tmo");
}

static void print_row(const char *run, enum mode m, const struct result *r)
{
	printf("%-5s %-10s %9llu %10.0f %14.0f %12.0f %6.1f %6.1f %8.1f %8.1f %6llu %6llu\n", run, mode_name[m],
	       (unsigned long long)r->accepts, rate((double)r->accepts, r->wall_s),
	       rate((double)r->accepts, r->worker_cpu_s), rate((double)r->accepts, r->proc_cpu_s),
	       100 * r->min_share, 100 * r->max_share, r->p50_us, r->p99_us, (unsigned long long)r->errors,
	       (unsigned long long)r->timeouts);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum metric { M_WALL, M_WCPU, M_PCPU, M_MIN, M_MAX, M_P50, M_P99, M_COUNT };

static double metric_of(const struct result *r, enum metric k)
{
	switch (k) {
	case M_WALL: return rate((double)r->accepts, r->wall_s);
	case M_WCPU: return rate((double)r->accepts, r->worker_cpu_s);
	case M_PCPU: return rate((double)r->accepts, r->proc_cpu_s);
	case M_MIN: return 100 * r->min_share;
	case M_MAX: return 100 * r->max_share;
	case M_P50: return r->p50_us;
	default: return r->p99_us;
	}
}

/* --- options --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_accept [--workers W] [--clients C] [--inflight K] [--work-us U]\n"
		"                    [--seconds S] [--reps R] [--worker-cpus LIST] [--client-cpus LIST]\n"
		"  --workers W       io_uring worker threads (default 2, max %d)\n"
		"  --clients C       client threads (default 2, max %d)\n"
		"  --inflight K      connections each client keeps in flight (default 32;\n"
		"                    C x K must stay below the backlog, %d)\n"
		"  --work-us U       CPU microseconds a worker spends on each accepted connection\n"
		"                    (default 0: accept and close only)\n"
		"  --seconds S       length of each measured run (default 2, max 60)\n"
		"  --reps R          runs of each mode, interleaved (default 5, max 50)\n"
		"  --worker-cpus L   comma list of CPUs for the workers (default: worker i on CPU\n"
		"                    i %% ncpu, as net/runtime.c pins them); '-' = not pinned\n"
		"  --client-cpus L   CPUs for the clients (default: the CPUs after the workers'\n"
		"                    when the machine has that many, else not pinned); '-' = not pinned\n"
		"Only 127.0.0.1 is used. Total time ~ 3 x R x (S + 0.1) s.\n",
		MAX_THREADS, MAX_THREADS, BACKLOG);
}

static int parse_cpus(const char *s, int *out, unsigned n, long ncpu)
{
	unsigned k = 0;
	char *end;

	if (strcmp(s, "-") == 0) {
		for (unsigned i = 0; i < n; i++)
			out[i] = -1;
		return 0;
	}
	while (*s && k < MAX_THREADS) {
		long v = strtol(s, &end, 10);
		if (end == s || v < 0 || v >= ncpu)
			return -1;
		out[k++] = (int)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	if (k == 0)
		return -1;
	for (unsigned i = k; i < n; i++)
		out[i] = out[i % k]; /* a short list repeats */
	return 0;
}

static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	const char *wcpus = NULL, *ccpus = NULL;

	if (ncpu < 1)
		ncpu = 1;
	*o = (struct opts){ .workers = 2, .clients = 2, .inflight = 32, .reps = 5, .seconds = 2 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = v != NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--workers") == 0) {
			ok = ok && parse_uint(v, 1, MAX_THREADS, &o->workers);
		} else if (strcmp(a, "--clients") == 0) {
			ok = ok && parse_uint(v, 1, MAX_THREADS, &o->clients);
		} else if (strcmp(a, "--inflight") == 0) {
			ok = ok && parse_uint(v, 1, BACKLOG, &o->inflight);
		} else if (strcmp(a, "--work-us") == 0) {
			ok = ok && parse_uint(v, 0, 100000, &o->work_us);
		} else if (strcmp(a, "--reps") == 0) {
			ok = ok && parse_uint(v, 1, 50, &o->reps);
		} else if (strcmp(a, "--seconds") == 0) {
			char *end;
			o->seconds = ok ? strtod(v, &end) : 0;
			ok = ok && *end == '\0' && o->seconds >= 0.1 && o->seconds <= 60;
		} else if (strcmp(a, "--worker-cpus") == 0) {
			wcpus = v;
		} else if (strcmp(a, "--client-cpus") == 0) {
			ccpus = v;
		} else {
			fprintf(stderr, "bench_accept: unknown option '%s'\n", a);
			usage(stderr);
			return -1;
		}
		if (!ok) {
			fprintf(stderr, "bench_accept: bad or missing value for %s\n", a);
			return -1;
		}
		i++;
	}
	if ((uint64_t)o->clients * o->inflight >= BACKLOG) {
		fprintf(stderr, "bench_accept: clients x inflight (%u) must stay below the backlog (%d)\n",
			o->clients * o->inflight, BACKLOG);
		return -1;
	}
	for (unsigned i = 0; i < o->workers; i++)
		o->worker_cpu[i] = (int)(i % (unsigned)ncpu);
	o->clients_pinned = (unsigned)ncpu >= o->workers + o->clients;
	for (unsigned i = 0; i < o->clients; i++)
		o->client_cpu[i] = o->clients_pinned ? (int)(o->workers + i) : -1;
	if ((wcpus && parse_cpus(wcpus, o->worker_cpu, o->workers, ncpu) < 0) ||
	    (ccpus && parse_cpus(ccpus, o->client_cpu, o->clients, ncpu) < 0)) {
		fprintf(stderr, "bench_accept: a CPU list is 'N,M,...' of online CPUs (0..%ld) or '-'\n", ncpu - 1);
		return -1;
	}
	if (ccpus)
		o->clients_pinned = o->client_cpu[0] >= 0;
	return 0;
}

static void print_cpus(const char *what, const int *cpus, unsigned n)
{
	printf("%s", what);
	for (unsigned i = 0; i < n; i++)
		printf(i ? ",%d" : " %d", cpus[i]);
}

static int raise_nofile(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max < need)
		return -EMFILE;
	rl.rlim_cur = need;
	return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct client *cl;
	struct result *res[MODE_COUNT];
	double v[MODE_COUNT][M_COUNT];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	static const char *const mname[M_COUNT] = { "accepts/s (wall)", "accepts/worker-CPU-s",
						     "accepts/process-CPU-s", "min share %",
						     "max share %", "p50 latency us", "p99 latency us" };

	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	if (raise_nofile((rlim_t)o.clients * o.inflight + o.workers + 64) < 0) {
		fprintf(stderr, "bench_accept: RLIMIT_NOFILE too low for %u connections\n", o.clients * o.inflight);
		return 1;
	}
	cl = calloc(o.clients, sizeof(*cl));
	for (unsigned m = 0; m < MODE_COUNT; m++) {
		res[m] = calloc(o.reps, sizeof(struct result));
		if (!res[m])
			return 1;
	}
	if (!cl)
		return 1;
	for (unsigned i = 0; i < o.clients; i++) {
		cl[i].lat = malloc(LAT_CAP * sizeof(uint32_t));
		if (!cl[i].lat)
			return 1;
	}
	printf("bench_accept: %u workers", o.workers);
	print_cpus(" pinned to CPUs", o.worker_cpu, o.workers);
	printf("; %u clients", o.clients);
	if (o.clients_pinned)
		print_cpus(" pinned to CPUs", o.client_cpu, o.clients);
	else
		printf(" not pinned (%ld CPUs)", ncpu);
	printf("; %u connections in flight per client; %u us of work per connection; %.1f s per run; "
	       "%u reps per mode, interleaved\n",
	       o.inflight, o.work_us, o.seconds, o.reps);
	print_header();
	for (unsigned rep = 0; rep < o.reps; rep++) {
		/* Alternate which mode goes first so that a drift in the
		 * machine's load hits both alike. */
		for (unsigned k = 0; k < MODE_COUNT; k++) {
			enum mode m = (enum mode)((rep + k) % MODE_COUNT);
			char name[16];
			int r = run_once(&o, m, cl, &res[m][rep]);

			if (r < 0) {
				fprintf(stderr, "bench_accept: %s run failed: %s\n", mode_name[m], strerror(-r));
				return 1;
			}
			snprintf(name, sizeof(name), "%u", rep + 1);
			print_row(name, m, &res[m][rep]);
			fflush(stdout);
		}
	}
	printf("\nmedians over %u reps       %12s %12s %12s %8s %8s\n", o.reps, mode_name[MODE_REUSEPORT],
	       mode_name[MODE_SHARED], mode_name[MODE_HANDOFF], "shrd/rp", "hand/rp");
	for (unsigned k = 0; k < M_COUNT; k++) {
		for (unsigned m = 0; m < MODE_COUNT; m++) {
			double *tmp = malloc(o.reps * sizeof(double));
			if (!tmp)
				return 1;
			for (unsigned rep = 0; rep < o.reps; rep++)
				tmp[rep] = metric_of(&res[m][rep], (enum metric)k);
			v[m][k] = median(tmp, o.reps);
			free(tmp);
		}
		printf("%-26s %12.1f %12.1f %12.1f %8.2f %8.2f\n", mname[k], v[MODE_REUSEPORT][k], v[MODE_SHARED][k],
		       v[MODE_HANDOFF][k], v[MODE_REUSEPORT][k] > 0 ? v[MODE_SHARED][k] / v[MODE_REUSEPORT][k] : 0,
		       v[MODE_REUSEPORT][k] > 0 ? v[MODE_HANDOFF][k] / v[MODE_REUSEPORT][k] : 0);
	}
	for (unsigned i = 0; i < o.clients; i++)
		free(cl[i].lat);
	free(cl);
	for (unsigned m = 0; m < MODE_COUNT; m++)
		free(res[m]);
	return 0;
}
