/* The worker's event loop, its connections and incoming messages (see
 * worker.h). Owner shard only, except worker_post(). */
#include "net/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/clock.h"
#include "core/log.h"
#include "net/uring_compat.h"
#include "net/worker_int.h"
#include "pool/mag.h"

#define RECV_BGID 0

static _Thread_local struct worker *current_worker;

/* TCP_NODELAY's value for outbound sockets. The kernel reads it when the
 * linked setsockopt runs, after conn_connect returned: it must outlive
 * every request, hence static. */
static const int nodelay_on = 1;
/* TCP_QUICKACK's value for a quiet relay link (worker_quiet_acks). */
static const int quickack_on = 1;
/* How long a relay link that received stays quiet before we acknowledge
 * what it sent at once: see worker_quiet_acks. */
#define ACK_QUIET_NS 500000u
/* A relay link that received at least ACK_STREAMING_BYTES in the last
 * ACK_RATE_WINDOW_NS (6.4 MB/s) is streaming: the kernel acknowledges as
 * our reads move its window, and quick ACKs would only cost CPU. */
#define ACK_RATE_WINDOW_NS 10000000u
#define ACK_STREAMING_BYTES 65536u
/* One log line per process when the kernel refuses that setsockopt.
 * Relaxed: it only limits logging. */
static _Atomic bool nodelay_refusal_logged;

/* --- user_data ----------------------------------------------------------- */

static inline uint64_t ud_conn(enum uop op, const struct conn *c)
{
	return (uint64_t)op | ((uint64_t)c->slot << 8) | ((uint64_t)(c->gen & 0xffffff) << 40);
}

static inline uint64_t ud_ptr(enum uop op, const void *p)
{
	return (uint64_t)op | ((uint64_t)(uintptr_t)p << 8);
}

static inline enum uop ud_op(uint64_t ud) { return (enum uop)(ud & 0xff); }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)(ud >> 8); }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)(ud >> 40); }
static inline void *ud_to_ptr(uint64_t ud) { return (void *)(uintptr_t)(ud >> 8); }

/* --- small accessors ----------------------------------------------------- */

unsigned worker_id(const struct worker *w) { return w->id; }
struct runtime *worker_runtime(const struct worker *w) { return w->rt; }
struct worker *worker_current(void) { return current_worker; }
struct timer_heap *worker_timers(struct worker *w) { return &w->timers; }
uint64_t worker_now_ns(const struct worker *w) { return w->now_ns; }
/* Release/acquire: other shards read a worker's user pointer (app/'s
 * cross-shard rebalancing looks at every shard's published supply), so
 * what the owner set up before publishing it must be visible with it. */
void worker_set_user(struct worker *w, void *user) { __atomic_store_n(&w->user, user, __ATOMIC_RELEASE); }
void *worker_user(const struct worker *w) { return __atomic_load_n(&w->user, __ATOMIC_ACQUIRE); }
void *conn_user(const struct conn *c) { return c->user; }
struct worker *conn_worker(const struct conn *c) { return c->w; }
size_t conn_send_queued(const struct conn *c) { return c->out_bytes; }
size_t conn_recv_size(const struct conn *c) { return c->w->buf_size; }
bool conn_is_closing(const struct conn *c) { return c->flags & CONN_CLOSING; }
const char *conn_peer_name(const struct conn *c) { return c->peer[0] ? c->peer : "?"; }

#define STAT_ADD(w, field, n) \
	atomic_store_explicit((_Atomic uint64_t *)&(w)->stats.field, \
			      atomic_load_explicit((_Atomic uint64_t *)&(w)->stats.field, memory_order_relaxed) + (n), \
			      memory_order_relaxed)

void worker_stats_read(const struct worker *w, struct worker_stats *out)
{
	const _Atomic uint64_t *src = (const _Atomic uint64_t *)&w->stats;
	uint64_t *dst = (uint64_t *)out;

	/* Relaxed loads pair with the owner's relaxed stores in STAT_ADD: each
	 * counter is exact on its own; the set is not a snapshot. */
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = atomic_load_explicit(&src[i], memory_order_relaxed);
}

/* --- SQEs ----------------------------------------------------------------- */

/* Get an SQE, submitting what is queued when the SQ is full. */
static struct io_uring_sqe *get_sqe(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (unlikely(!sqe)) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
		BUG_ON(!sqe);
	}
	return sqe;
}

/* --- messages ------------------------------------------------------------- */

int worker_post(struct worker *target, worker_msg_fn fn, void *arg)
{
	struct worker *self = current_worker;
	struct worker_msg *m;
	/* Load-acquire pairs with the store-release in worker_main once the
	 * target's ring exists. */
	int fd = atomic_load_explicit(&target->ring_fd, memory_order_acquire);

	if (fd < 0 || atomic_load_explicit(&target->dead, memory_order_acquire))
		return -ESRCH;
	if (self && self->final_drain)
		return -ESHUTDOWN; /* nobody would submit it (worker_main) */
	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	/* Pairs with the load-acquire in handle_msg. */
	atomic_store_explicit(&m->posted, 1, memory_order_release);
	if (self && self->ring_ready) {
		struct io_uring_sqe *sqe = get_sqe(self);

		io_uring_prep_msg_ring(sqe, fd, 0, ud_ptr(UOP_MSG, m), 0);
		io_uring_sqe_set_data64(sqe, ud_ptr(UOP_MSG_SENT, m));
		self->pending_msgs++;
		/* Submitted with the next batch; a message to ourselves is
		 * delivered the same way, after the current batch. */
		return 0;
	} else {
		struct runtime *rt = target->rt;
		struct io_uring_sqe *sqe;
		struct io_uring_cqe *cqe;
		int r;

		pthread_mutex_lock(&rt->post_lock);
		/* Under post_lock, paired with the store under it in
		 * worker_final_drain: a post either completes before the
		 * target's final drain (which then finds it) or is refused. */
		if (atomic_load_explicit(&target->posts_closed, memory_order_relaxed)) {
			pthread_mutex_unlock(&rt->post_lock);
			free(m);
			return -ESRCH;
		}
		sqe = io_uring_get_sqe(&rt->post_ring);
		io_uring_prep_msg_ring(sqe, fd, 0, ud_ptr(UOP_MSG, m), 0);
		io_uring_sqe_set_data64(sqe, 0);
		r = io_uring_submit_and_wait(&rt->post_ring, 1);
		if (r >= 0) {
			r = io_uring_wait_cqe(&rt->post_ring, &cqe);
			if (r == 0) {
				r = cqe->res;
				io_uring_cqe_seen(&rt->post_ring, cqe);
			}
		}
		pthread_mutex_unlock(&rt->post_lock);
		if (r < 0) {
			free(m);
			return r;
		}
		return 0;
	}
}

static void handle_msg(struct worker *w, struct worker_msg *m)
{
	/* Pairs with the store-release in worker_post. */
	BUG_ON(atomic_load_explicit(&m->posted, memory_order_acquire) != 1);
	STAT_ADD(w, msgs_in, 1);
	m->fn(w, m->arg);
	free(m);
}

static void handle_msg_sent(struct worker *w, struct worker_msg *m, int res)
{
	w->pending_msgs--;
	if (res < 0) {
		/* The target is gone (-EOWNERDEAD) or its CQ overflowed: the
		 * message was not delivered, so it is still ours to free. */
		log_warn("cross-shard message from worker %u not delivered: %s", w->id, strerror(-res));
		free(m);
	}
}

/* --- connections ---------------------------------------------------------- */

static struct conn *conn_at(struct worker *w, uint32_t slot)
{
	return slot < w->max_conns ? &w->conns[slot] : NULL;
}

static void conn_init_slot(struct worker *w, struct conn *c, uint32_t slot, bool outbound)
{
	uint32_t gen = c->gen + 1;

	memset(c, 0, sizeof(*c));
	c->w = w;
	c->slot = slot;
	c->gen = gen;
	c->flags = CONN_IN_USE | (outbound ? CONN_OUTBOUND : 0);
	w->open_conns++;
	STAT_ADD(w, conns_open, 1);
}

static void conn_free_out(struct conn *c)
{
	struct out_chunk *ch = c->out_head;

	while (ch) {
		struct out_chunk *next = ch->next;
		buf_put(c->w->rt->chunk_pool, c->w->id, ch);
		ch = next;
	}
	c->out_head = c->out_tail = NULL;
	c->out_bytes = 0;
}

static void conn_release(struct worker *w, struct conn *c)
{
	const struct conn_ops *ops = c->ops;
	int err = c->close_err;
	uint32_t slot = c->slot;
	bool outbound = c->flags & CONN_OUTBOUND;
	bool handed = c->flags & CONN_HANDED;

	BUG_ON(c->ho); /* a hand-off resolves before the slot can be released */
	conn_free_out(c);
	c->flags = 0;
	w->open_conns--;
	STAT_ADD(w, conns_open, (uint64_t)-1);
	if (outbound && slot < w->out_slots)
		w->free_out[w->nfree_out++] = slot;
	if (handed)
		return; /* the socket lives on in another worker: nobody here is told */
	STAT_ADD(w, closed, 1);
	if (ops && ops->on_closed)
		ops->on_closed(c, err);
}

static void conn_arm_recv(struct worker *w, struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->flags & (CONN_RECV_ARMED | CONN_RECV_PAUSED | CONN_CLOSING | CONN_HANDOFF))
		return;
	sqe = get_sqe(w);
	io_uring_prep_recv(sqe, (int)c->slot, NULL, w->buf_size, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = RECV_BGID;
	io_uring_sqe_set_data64(sqe, ud_conn(UOP_RECV, c));
	c->flags |= CONN_RECV_ARMED;
	c->inflight++;
}

static void conn_arm_send(struct worker *w, struct conn *c)
{
	struct out_chunk *ch = c->out_head;
	struct io_uring_sqe *sqe;

	if ((c->flags & CONN_SEND_ARMED) || !ch || !(c->flags & CONN_CONNECTED))
		return;
	if ((c->flags & CONN_CLOSING) && !(c->flags & CONN_FLUSH))
		return;
	sqe = get_sqe(w);
	if (ch->next && ch->len == ch->cap) {
		/* The queued bytes span chunks: one sendmsg for up to
		 * SEND_IOV_MAX of them, not a send per chunk (each send wakes
		 * the peer; see worker_loop for when sends wait to grow). */
		struct out_chunk *x = ch;
		unsigned n = 0;

		memset(&ch->msg, 0, sizeof(ch->msg));
		for (; x && n < SEND_IOV_MAX && x->len > x->off; x = x->next) {
			ch->iov[n].iov_base = x->data + x->off;
			ch->iov[n].iov_len = x->len - x->off;
			n++;
			if (x->len != x->cap)
				break; /* the tail: nothing after it */
		}
		ch->msg.msg_iov = ch->iov;
		ch->msg.msg_iovlen = n;
		io_uring_prep_sendmsg(sqe, (int)c->slot, &ch->msg, MSG_NOSIGNAL);
	} else {
		io_uring_prep_send(sqe, (int)c->slot, ch->data + ch->off, ch->len - ch->off, MSG_NOSIGNAL);
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, ud_conn(UOP_SEND, c));
	c->flags |= CONN_SEND_ARMED;
	c->inflight++;
	STAT_ADD(w, sends, 1);
	if (c->flags & CONN_OUTBOUND)
		STAT_ADD(w, sends_outbound, 1);
}

/* Ask for a send at the end of this loop iteration rather than now. A send
 * takes the bytes its chunk holds when it is prepared, and completions
 * come in batches (a TLS read turns into many cells, each written with its
 * own conn_send): prepared at once, the first cell would go alone and the
 * rest wait for its completion. Submission happens at the end of the
 * iteration anyway, so waiting costs nothing. Falls back to sending now
 * when the list is full (many slots reused in one iteration). */
static void conn_want_send(struct worker *w, struct conn *c)
{
	if (c->flags & (CONN_SEND_ARMED | CONN_SEND_WANTED))
		return;
	if (unlikely(w->nsend_wanted == w->max_conns)) {
		conn_arm_send(w, c);
		return;
	}
	c->flags |= CONN_SEND_WANTED;
	w->send_wanted[w->nsend_wanted++] = c->slot;
}

/* Prepare the sends asked for in this iteration. A slot whose connection
 * was released (flags cleared) or released and reused (a new connection
 * that asked again has its own entry) no longer has CONN_SEND_WANTED set
 * in this entry's turn, so it is skipped. */
static void worker_flush_sends(struct worker *w, bool hold_inbound)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < w->nsend_wanted; i++) {
		struct conn *c = &w->conns[w->send_wanted[i]];

		if (!(c->flags & CONN_SEND_WANTED))
			continue;
		if (hold_inbound && !(c->flags & CONN_OUTBOUND)) {
			w->send_wanted[kept++] = w->send_wanted[i]; /* asked again next time */
			continue;
		}
		c->flags &= ~CONN_SEND_WANTED;
		conn_arm_send(w, c);
	}
	w->nsend_wanted = kept;
}

/* Move a closing connection along: cancel what is pending, then close the
 * descriptor, then release the slot. */
static void conn_close_progress(struct worker *w, struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (!(c->flags & CONN_CLOSING))
		return;
	if ((c->flags & CONN_FLUSH) && c->out_head && (c->flags & CONN_CONNECTED) && c->close_err == 0)
		return; /* still writing what the owner asked us to flush */
	if (c->inflight > 0) {
		if (!(c->flags & CONN_CANCEL_SENT)) {
			sqe = get_sqe(w);
			uring_prep_cancel_fixed(sqe, c->slot);
			io_uring_sqe_set_data64(sqe, ud_conn(UOP_CANCEL, c));
			c->flags |= CONN_CANCEL_SENT;
			c->inflight++;
		}
		return;
	}
	if (!(c->flags & CONN_CLOSE_SENT)) {
		sqe = get_sqe(w);
		io_uring_prep_close_direct(sqe, c->slot);
		io_uring_sqe_set_data64(sqe, ud_conn(UOP_CLOSE, c));
		c->flags |= CONN_CLOSE_SENT;
		c->inflight++;
	}
}

void conn_close(struct conn *c, int err, bool flush)
{
	struct worker *w = c->w;

	if (c->flags & CONN_CLOSING)
		return;
	c->flags |= CONN_CLOSING;
	c->close_err = err;
	if (flush)
		c->flags |= CONN_FLUSH;
	else
		c->flags &= ~CONN_FLUSH;
	conn_close_progress(w, c);
}

void conn_set_ops(struct conn *c, const struct conn_ops *ops, void *user)
{
	c->ops = ops;
	c->user = user;
}

/* Take n chunks from the pool into a list (returned, owned), or none at
 * all: NULL when the pool is at its cap. Owner worker only. */
static struct out_chunk *chunks_get(struct worker *w, size_t n)
{
	struct out_chunk *head = NULL;

	for (size_t i = 0; i < n; i++) {
		struct out_chunk *t = buf_get(w->rt->chunk_pool, w->id);

		if (unlikely(!t)) {
			while (head) {
				struct out_chunk *next = head->next;
				buf_put(w->rt->chunk_pool, w->id, head);
				head = next;
			}
			return NULL;
		}
		t->next = head;
		t->len = t->off = 0;
		t->cap = OUT_CHUNK_SIZE;
		head = t;
	}
	return head;
}

int conn_send(struct conn *c, const void *data, size_t len)
{
	struct worker *w = c->w;
	const uint8_t *p = data;
	struct out_chunk *t = c->out_tail;
	size_t room = t ? t->cap - t->len : 0;

	if (c->flags & CONN_CLOSING)
		return -EPIPE;
	if (unlikely(c->flags & CONN_HANDOFF))
		return -EBUSY; /* the caller gave c away (conn_handoff) */
	if (len > room) {
		/* All or nothing: a partial queue would cut a TLS record or a
		 * stream in the middle. */
		struct out_chunk *more = chunks_get(w, (len - room + OUT_CHUNK_SIZE - 1) / OUT_CHUNK_SIZE);

		if (unlikely(!more)) {
			STAT_ADD(w, send_nobufs, 1);
			return -ENOBUFS;
		}
		if (t)
			t->next = more;
		else
			c->out_head = more;
		while (more->next)
			more = more->next;
		c->out_tail = more;
		if (!t || t->len == t->cap)
			t = t ? t->next : c->out_head;
	}
	while (len > 0) {
		size_t n = MIN(len, (size_t)(t->cap - t->len));

		memcpy(t->data + t->len, p, n);
		t->len += (uint32_t)n;
		c->out_bytes += n;
		p += n;
		len -= n;
		if (len)
			t = t->next;
	}
	conn_want_send(w, c);
	return 0;
}

void conn_pause_recv(struct conn *c)
{
	c->flags |= CONN_RECV_PAUSED;
}

void conn_resume_recv(struct conn *c)
{
	if (!(c->flags & CONN_RECV_PAUSED))
		return;
	c->flags &= ~CONN_RECV_PAUSED;
	if (c->flags & CONN_CONNECTED)
		conn_arm_recv(c->w, c);
}

static void format_peer(struct conn *c, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(c->peer, sizeof(c->peer), "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host, ntohs(in6->sin6_port));
	}
}

struct conn *conn_connect(struct worker *w, const struct sockaddr *addr, socklen_t len,
			  const struct conn_ops *ops, void *user, int *err)
{
	struct io_uring_sqe *sqe;
	struct conn *c;
	uint32_t slot;

	if (w->stopping) {
		*err = -ESHUTDOWN;
		return NULL;
	}
	if (w->nfree_out == 0 || len > sizeof(c->peer_addr)) {
		*err = w->nfree_out == 0 ? -EMFILE : -EINVAL;
		return NULL;
	}
	slot = w->free_out[--w->nfree_out];
	c = &w->conns[slot];
	conn_init_slot(w, c, slot, true);
	c->ops = ops;
	c->user = user;
	memcpy(&c->peer_addr, addr, len);
	format_peer(c, addr);

	/* socket, setsockopt and connect as one linked chain on our own slot.
	 * A chain must not be split by get_sqe submitting half of it, so make
	 * room for all three first. */
	if (io_uring_sq_space_left(&w->ring) < 3)
		io_uring_submit(&w->ring);
	sqe = get_sqe(w);
	/* No SOCK_CLOEXEC: the kernel refuses it for direct descriptors (they are
	 * not in the fd table, so there is nothing to close on exec). */
	io_uring_prep_socket_direct(sqe, addr->sa_family, SOCK_STREAM, IPPROTO_TCP, slot, 0);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, ud_conn(UOP_SOCKET, c));
	c->inflight++;
	if (w->nodelay_ok) {
		/* TCP_NODELAY on relay connections: see net/README.md. A direct
		 * descriptor has no fd for setsockopt(2), so it goes through the
		 * ring. HARDLINK: a refusal does not cancel the connect (a failed
		 * socket still cancels the whole chain). */
		sqe = get_sqe(w);
		uring_prep_setsockopt_fixed(sqe, slot, IPPROTO_TCP, TCP_NODELAY, &nodelay_on, sizeof(nodelay_on));
		sqe->flags |= IOSQE_IO_HARDLINK;
		io_uring_sqe_set_data64(sqe, ud_conn(UOP_SOCKOPT, c));
		c->inflight++;
	}
	sqe = get_sqe(w);
	io_uring_prep_connect(sqe, (int)slot, (const struct sockaddr *)&c->peer_addr, len);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, ud_conn(UOP_CONNECT, c));
	c->inflight++;
	STAT_ADD(w, connects, 1);
	*err = 0;
	return c;
}

/* --- moving a connection to another worker --------------------------------
 *
 * conn_handoff (worker.h) in three steps on the sending worker: cancel the
 * armed receive and wait until nothing of c is in flight (CONN_HANDOFF),
 * pass the descriptor with MSG_RING (CONN_HANDOFF_SENT: from here on the
 * record may be the target's), then close our slot quietly on
 * success or give c back on failure. The receiving worker learns of it
 * from the CQE the kernel posts with the descriptor's new slot
 * (handle_handoff_in). */

/* Reserve a hand-off to `to`: return 0, or -ESRCH when it takes no more.
 * Seq_cst increment then load, paired with the seq_cst store then load in
 * worker_main: either we see handoffs_closed and back off, or `to` sees our
 * reservation and stays in its loop until the hand-off has resolved, so
 * the descriptor never lands in a table that nobody reads. */
static int handoff_reserve(struct worker *to)
{
	/* Load-acquire pairs with the store-release in worker_main. */
	if (atomic_load_explicit(&to->ring_fd, memory_order_acquire) < 0)
		return -ESRCH;
	atomic_fetch_add_explicit(&to->handoffs_in, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&to->handoffs_closed, memory_order_seq_cst)) {
		atomic_fetch_sub_explicit(&to->handoffs_in, 1, memory_order_seq_cst);
		return -ESRCH;
	}
	return 0;
}

static void handoff_unreserve(struct worker *to)
{
	/* Pairs with the loads in worker_done and worker_main. */
	atomic_fetch_sub_explicit(&to->handoffs_in, 1, memory_order_seq_cst);
}

/* Nothing of c is in flight: send the descriptor. */
static void handoff_submit(struct worker *w, struct conn *c)
{
	struct handoff *h = c->ho;
	/* Load-acquire pairs with the store-release in worker_main; the
	 * reservation keeps that ring open. */
	int fd = atomic_load_explicit(&h->to->ring_fd, memory_order_acquire);
	struct io_uring_sqe *sqe = get_sqe(w);

	c->flags |= CONN_HANDOFF_SENT;
	/* Pairs with the load-acquire in handle_handoff_in: every write to h
	 * (and to the caller's arg) is before this. */
	atomic_fetch_add_explicit(&h->posted, 1, memory_order_release);
	uring_prep_msg_ring_fd_alloc(sqe, fd, c->slot, ud_ptr(UOP_HANDOFF_IN, h));
	io_uring_sqe_set_data64(sqe, ud_conn(UOP_HANDOFF_SENT, c));
	c->inflight++;
}

/* After on_arrival or on_failed returned: unless the callback handed c on
 * (h went with it), give c the bytes net/ carried, then let it receive. */
static void handoff_settle(struct worker *w, struct conn *c, struct handoff *h)
{
	if (c->flags & CONN_HANDOFF)
		return;
	c->ho = NULL;
	if (h->carry_len && !(c->flags & CONN_CLOSING) && c->ops && c->ops->on_recv)
		c->ops->on_recv(c, h->carry, h->carry_len);
	free(h);
	conn_arm_recv(w, c);
}

/* The hand-off of c did not happen: c stays here, its owner is told. */
static void handoff_fail(struct worker *w, struct conn *c, int err)
{
	struct handoff *h = c->ho;

	handoff_unreserve(h->to);
	c->flags &= ~(CONN_HANDOFF | CONN_HANDOFF_SENT);
	STAT_ADD(w, handoff_failed, 1);
	h->on_failed(c, err, h->arg);
	handoff_settle(w, c, h);
}

/* A receive that completed while c waits to leave: keep the bytes for the
 * new owner. At most one receive is armed and none is re-armed during a
 * hand-off, so they fit the record's one buffer. */
static void handoff_carry(struct worker *w, struct conn *c, const uint8_t *data, size_t len)
{
	struct handoff *h = c->ho;

	BUG_ON((c->flags & CONN_HANDOFF_SENT) || len > h->carry_cap - h->carry_len);
	memcpy(h->carry + h->carry_len, data, len);
	h->carry_len += (uint32_t)len;
	STAT_ADD(w, handoff_carried, len);
}

/* A completion of c came in while its receive is being cancelled. */
static void handoff_progress(struct worker *w, struct conn *c)
{
	if (c->flags & CONN_CLOSING) {
		/* The peer closed, a receive failed, or we are stopping. */
		handoff_fail(w, c, c->close_err ? c->close_err : -EPIPE);
		return;
	}
	if (c->inflight == 0)
		handoff_submit(w, c);
}

int conn_handoff(struct conn *c, struct worker *to, conn_accept_fn on_arrival, conn_handoff_fail_fn on_failed,
		 void *arg)
{
	struct worker *w = c->w;
	struct handoff *h = c->ho;
	int r;

	BUG_ON(current_worker != w);
	if (!to || !on_arrival || !on_failed || to == w || to->rt != w->rt)
		return -EINVAL;
	if (c->flags & CONN_CLOSING)
		return -EPIPE;
	if (c->flags & CONN_HANDOFF)
		return -EALREADY;
	if (!(c->flags & CONN_CONNECTED))
		return -ENOTCONN;
	if (c->out_bytes || (c->flags & CONN_SEND_ARMED))
		return -EBUSY;
	if (w->stopping)
		return -ESHUTDOWN;
	if (!h) {
		/* Otherwise on_arrival or on_failed is running and c->ho holds
		 * the record with bytes not yet delivered: they travel on. */
		h = malloc(sizeof(*h) + w->buf_size);
		if (!h)
			return -ENOMEM;
		memset(h, 0, sizeof(*h));
		atomic_init(&h->posted, 0);
		h->carry_cap = w->buf_size;
		memcpy(&h->peer_addr, &c->peer_addr, sizeof(h->peer_addr));
		memcpy(h->peer, c->peer, sizeof(h->peer));
	}
	r = handoff_reserve(to);
	if (r < 0) {
		if (h != c->ho)
			free(h);
		return r;
	}
	h->on_arrival = on_arrival;
	h->on_failed = on_failed;
	h->arg = arg;
	h->to = to;
	c->ho = h;
	c->flags |= CONN_HANDOFF;
	if (c->flags & CONN_RECV_ARMED) {
		/* Its completion (-ECANCELED, or bytes we carry, or the peer's
		 * close) and the cancel's own drive handoff_progress. */
		struct io_uring_sqe *sqe = get_sqe(w);

		io_uring_prep_cancel64(sqe, ud_conn(UOP_RECV, c), 0);
		io_uring_sqe_set_data64(sqe, ud_conn(UOP_CANCEL, c));
		c->inflight++;
	}
	if (c->inflight == 0)
		handoff_submit(w, c);
	return 0;
}

/* Our MSG_RING for c completed: res is the descriptor's slot in the
 * target's table, or -errno. */
static void handle_handoff_sent(struct worker *w, struct conn *c, int res)
{
	struct handoff *h = c->ho;

	BUG_ON(!(c->flags & CONN_HANDOFF_SENT) || !h);
	if (res >= 0) {
		/* The target owns the socket and h (it may be using or have
		 * freed h already: do not read it): close our slot, tell
		 * nobody (conn_release). */
		c->ho = NULL;
		c->flags = (c->flags & ~(CONN_HANDOFF | CONN_HANDOFF_SENT | CONN_FLUSH)) | CONN_HANDED | CONN_CLOSING;
		c->ops = NULL;
		c->user = NULL;
		STAT_ADD(w, handoffs_out, 1);
		return; /* handle_conn_cqe closes the slot */
	}
	if (res == -EOVERFLOW)
		/* The kernel installed the descriptor in the target's table but
		 * could not post its CQE (io_uring/msg_ring.c): that slot holds
		 * the socket, unknown to the target, until its ring goes. */
		log_warn("worker %u: hand-off of %s to worker %u: the target's completion queue overflowed; "
			 "the connection stays here",
			 w->id, log_scrub(conn_peer_name(c)), h->to->id); /* an accepted client: SafeLogging */
	else
		log_debug("worker %u: hand-off of %s to worker %u failed: %s", w->id, log_scrub(conn_peer_name(c)), h->to->id,
			  strerror(-res));
	handoff_fail(w, c, res);
}

/* A connection arrived from another worker in our slot `res`. */
static void handle_handoff_in(struct worker *w, struct handoff *h, int res)
{
	struct conn *c;

	/* Pairs with the store-release in handoff_submit. */
	BUG_ON(atomic_load_explicit(&h->posted, memory_order_acquire) == 0);
	if (res < 0) {
		/* The kernel posts this CQE only after installing the
		 * descriptor; the sender was told the error and still owns h. */
		log_err("worker %u: hand-off completion with error %d", w->id, res);
		return;
	}
	c = conn_at(w, (uint32_t)res);
	handoff_unreserve(w);
	if (!c || (c->flags & CONN_IN_USE)) {
		/* The kernel allocated a slot we think is taken: our table and
		 * the kernel's disagree. The caller's arg is lost with h. */
		log_err("worker %u: hand-off arrived in unexpected slot %d", w->id, res);
		free(h);
		return;
	}
	conn_init_slot(w, c, (uint32_t)res, false);
	c->flags |= CONN_CONNECTED;
	memcpy(&c->peer_addr, &h->peer_addr, sizeof(c->peer_addr));
	memcpy(c->peer, h->peer, sizeof(c->peer));
	c->ho = h;
	STAT_ADD(w, handoffs_in, 1);
	h->on_arrival(w, c, h->arg);
	if (w->stopping && !(c->flags & (CONN_CLOSING | CONN_HANDOFF)))
		conn_close(c, -ESHUTDOWN, false);
	handoff_settle(w, c, h);
}

/* --- completions ---------------------------------------------------------- */

static void recycle_buf(struct worker *w, unsigned bid)
{
	io_uring_buf_ring_add(w->br, w->bufs + (size_t)bid * w->buf_size, w->buf_size, (unsigned short)bid,
			      io_uring_buf_ring_mask(w->nbufs), 0);
	io_uring_buf_ring_advance(w->br, 1);
}

/* Note that relay link c received: worker_quiet_acks acknowledges it
 * once the link has been quiet for ACK_QUIET_NS. */
static void conn_owe_ack(struct worker *w, struct conn *c, size_t n)
{
	uint64_t span;

	if (!w->nodelay_ok)
		return; /* this kernel cannot set socket options through the ring */
	span = w->now_ns - c->rate_start_ns;
	if (span >= ACK_RATE_WINDOW_NS) {
		/* A window with a quiet gap in it counts its bytes over the
		 * whole span (a span too long to multiply never streams). */
		c->streaming = span <= UINT64_MAX / ACK_STREAMING_BYTES &&
			       (uint64_t)c->rate_bytes * ACK_RATE_WINDOW_NS >= (uint64_t)ACK_STREAMING_BYTES * span;
		c->rate_start_ns = w->now_ns;
		c->rate_bytes = 0;
	}
	c->rate_bytes += (uint32_t)MIN(n, (size_t)UINT32_MAX - c->rate_bytes);
	c->last_recv_ns = w->now_ns;
	if ((c->flags & CONN_ACK_OWED) || c->streaming)
		return;
	if (w->nack_owed == w->out_slots)
		return; /* only stale entries can fill it; the next pass drops them */
	c->flags |= CONN_ACK_OWED;
	w->ack_owed[w->nack_owed++] = c->slot;
}

/* Acknowledge now what the relay links that went quiet received, with
 * TCP_QUICKACK through the ring. Why: relays (tor) keep Nagle on, so a
 * small tail of what a relay writes us (a CONNECTED cell, the last cell
 * of a reply) waits until we acknowledge the data before it; Linux
 * delays that ACK up to 40 ms when we have nothing to send back, and
 * the tail waits with it. Measured under churn (perf/README.md, "Quick
 * ACKs"): half of the guard's packets left within 0.1 ms of one of our
 * packets, and TTFB p50 fell from 103 to 63 ms with these ACKs. Only
 * after ACK_QUIET_NS of quiet, and not on a streaming link (whose ACKs
 * the kernel sends as our reads move the window): quick ACKs on every
 * receive cost 31-34% more CPU per GB in bulk and many-stream runs.
 * Returns when the next one is due. */
static uint64_t worker_quiet_acks(struct worker *w)
{
	uint64_t due = UINT64_MAX;
	unsigned kept = 0;

	for (unsigned i = 0; i < w->nack_owed; i++) {
		struct conn *c = &w->conns[w->ack_owed[i]];
		struct io_uring_sqe *sqe;

		if ((c->flags & (CONN_IN_USE | CONN_ACK_OWED | CONN_CLOSING)) != (CONN_IN_USE | CONN_ACK_OWED)) {
			c->flags &= ~CONN_ACK_OWED;
			continue; /* closed, closing, or a stale entry of a reused slot */
		}
		if (w->now_ns - c->last_recv_ns < ACK_QUIET_NS) {
			due = MIN(due, c->last_recv_ns + ACK_QUIET_NS);
			w->ack_owed[kept++] = c->slot;
			continue;
		}
		c->flags &= ~CONN_ACK_OWED;
		if (!w->nodelay_ok)
			continue;
		sqe = get_sqe(w);
		uring_prep_setsockopt_fixed(sqe, c->slot, IPPROTO_TCP, TCP_QUICKACK, &quickack_on,
					    sizeof(quickack_on));
		io_uring_sqe_set_data64(sqe, ud_conn(UOP_QUICKACK, c));
		c->inflight++;
		STAT_ADD(w, quick_acks, 1);
	}
	w->nack_owed = kept;
	return due;
}

static void handle_recv(struct worker *w, struct conn *c, struct io_uring_cqe *cqe)
{
	int res = cqe->res;

	c->flags &= ~CONN_RECV_ARMED;
	if (res > 0) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		BUG_ON(!(cqe->flags & IORING_CQE_F_BUFFER));
		STAT_ADD(w, bytes_in, (uint64_t)res);
		STAT_ADD(w, recvs, 1);
		if (unlikely(c->flags & CONN_HANDOFF) && !(c->flags & CONN_CLOSING))
			handoff_carry(w, c, w->bufs + (size_t)bid * w->buf_size, (size_t)res);
		else if (!(c->flags & CONN_CLOSING) && c->ops && c->ops->on_recv)
			c->ops->on_recv(c, w->bufs + (size_t)bid * w->buf_size, (size_t)res);
		recycle_buf(w, bid);
		if ((c->flags & (CONN_OUTBOUND | CONN_CLOSING)) == CONN_OUTBOUND)
			conn_owe_ack(w, c, (size_t)res);
		conn_arm_recv(w, c);
		if ((cqe->flags & IORING_CQE_F_SOCK_NONEMPTY) && (c->flags & CONN_RECV_ARMED))
			w->recv_more = true; /* the new receive completes at once */
		return;
	}
	if (cqe->flags & IORING_CQE_F_BUFFER)
		recycle_buf(w, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	if (res == -ENOBUFS) {
		/* Every receive buffer of this worker is in use: try again. The
		 * buffers come back as soon as their on_recv calls return. */
		STAT_ADD(w, no_buffer, 1);
		conn_arm_recv(w, c);
		return;
	}
	if (res == -ECANCELED && (c->flags & (CONN_CLOSING | CONN_HANDOFF)))
		return;
	conn_close(c, res == 0 ? 0 : res, false);
}

static void handle_send(struct worker *w, struct conn *c, int res)
{
	struct out_chunk *ch = c->out_head;

	c->flags &= ~CONN_SEND_ARMED;
	if (res < 0) {
		if (!(c->flags & CONN_CLOSING) || res != -ECANCELED)
			c->close_err = c->close_err ? c->close_err : res;
		c->flags &= ~CONN_FLUSH;
		conn_free_out(c);
		conn_close(c, res, false);
		return;
	}
	STAT_ADD(w, bytes_out, (uint64_t)res);
	BUG_ON(!ch);
	c->out_bytes -= (size_t)res;
	/* res may cover several chunks (sendmsg) or end inside one. */
	for (size_t left = (size_t)res; ch;) {
		size_t take = MIN(left, (size_t)(ch->len - ch->off));

		ch->off += (uint32_t)take;
		left -= take;
		if (ch->off < ch->len)
			break; /* the send ended inside this chunk */
		c->out_head = ch->next;
		if (!c->out_head)
			c->out_tail = NULL;
		buf_put(w->rt->chunk_pool, w->id, ch);
		ch = c->out_head;
		if (!left)
			break;
	}
	if (c->out_head)
		conn_want_send(w, c);
	if (!(c->flags & CONN_CLOSING) && c->ops && c->ops->on_drained && c->out_bytes <= c->ops->drained_mark)
		c->ops->on_drained(c);
}

static void handle_connect(struct worker *w, struct conn *c, int res)
{
	if (res == 0 && !(c->flags & CONN_CLOSING)) {
		c->flags |= CONN_CONNECTED;
		if (c->ops && c->ops->on_connected)
			c->ops->on_connected(c, 0);
		if (!(c->flags & CONN_CLOSING)) {
			conn_arm_recv(w, c);
			conn_arm_send(w, c);
		}
		return;
	}
	if (res == 0)
		res = -ECANCELED;
	if (!(c->flags & CONN_CLOSING) && c->ops && c->ops->on_connected)
		c->ops->on_connected(c, res);
	conn_close(c, res, false);
}

static void handle_sockopt(struct worker *w, int res)
{
	if (res >= 0) {
		STAT_ADD(w, sockopts, 1);
		return;
	}
	if (res == -ECANCELED)
		return; /* the socket failed: the chain was cancelled */
	/* -EOPNOTSUPP (before 6.7) or -EINVAL: this kernel cannot set socket
	 * options through io_uring, so stop asking on this worker. Either
	 * way this connection goes on without TCP_NODELAY. */
	if (res == -EOPNOTSUPP || res == -EINVAL)
		w->nodelay_ok = false;
	STAT_ADD(w, sockopt_failed, 1);
	if (!atomic_exchange_explicit(&nodelay_refusal_logged, true, memory_order_relaxed))
		log_warn("worker %u: the kernel refused TCP_NODELAY through io_uring (%s); relay connections go on "
			 "without it",
			 w->id, strerror(-res));
}

static void handle_accept(struct worker *w, struct io_uring_cqe *cqe, unsigned li)
{
	struct listener_slot *l = &w->listeners[li];
	int res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->armed = false;
	if (res >= 0) {
		struct conn *c = conn_at(w, (uint32_t)res);

		if (!c || (c->flags & CONN_IN_USE)) {
			log_err("worker %u: accept returned unexpected slot %d", w->id, res);
		} else {
			conn_init_slot(w, c, (uint32_t)res, false);
			c->flags |= CONN_CONNECTED;
			STAT_ADD(w, accepted, 1);
			if (w->stopping) {
				conn_close(c, -ESHUTDOWN, false);
			} else {
				l->fn(w, c, l->arg);
				if (!(c->flags & CONN_CLOSING))
					conn_arm_recv(w, c);
			}
		}
	} else if (res != -ECANCELED) {
		/* -ENFILE: every slot is taken: the connection limit. The
		 * kernel has already taken that connection off the backlog and
		 * closes it (the client reads EOF; seen on 6.18 with a 2-slot
		 * table), and ends the multishot accept, re-armed below. */
		log_info("worker %u: accept: %s", w->id, strerror(-res));
	}
	if (!l->armed && !w->stopping && l->fd >= 0) {
		struct io_uring_sqe *sqe = get_sqe(w);

		io_uring_prep_multishot_accept_direct(sqe, l->fd, NULL, NULL, 0);
		io_uring_sqe_set_data64(sqe, (uint64_t)UOP_ACCEPT | ((uint64_t)li << 8));
		l->armed = true;
	}
}

static void handle_conn_cqe(struct worker *w, enum uop op, uint64_t ud, struct io_uring_cqe *cqe)
{
	struct conn *c = conn_at(w, ud_slot(ud));

	if (!c || !(c->flags & CONN_IN_USE) || (c->gen & 0xffffff) != ud_gen(ud)) {
		log_err("worker %u: completion for a stale connection slot %u", w->id, ud_slot(ud));
		return;
	}
	BUG_ON(c->inflight == 0);
	c->inflight--;
	switch (op) {
	case UOP_SOCKET:
		if (cqe->res < 0) {
			/* No socket: the linked connect completes -ECANCELED and
			 * there is no descriptor to close. */
			c->close_err = cqe->res;
			c->flags |= CONN_SOCKET_FAILED;
		}
		break;
	case UOP_CONNECT:
		if (c->flags & CONN_SOCKET_FAILED) {
			if (!(c->flags & CONN_CLOSING) && c->ops && c->ops->on_connected)
				c->ops->on_connected(c, c->close_err);
			c->flags |= CONN_CLOSING | CONN_CLOSE_SENT;
			break;
		}
		handle_connect(w, c, cqe->res);
		break;
	case UOP_SOCKOPT:
		handle_sockopt(w, cqe->res);
		break;
	case UOP_QUICKACK:
		if (cqe->res < 0 && cqe->res != -ECANCELED)
			STAT_ADD(w, quick_ack_failed, 1);
		break;
	case UOP_RECV:
		handle_recv(w, c, cqe);
		break;
	case UOP_SEND:
		handle_send(w, c, cqe->res);
		break;
	case UOP_HANDOFF_SENT:
		handle_handoff_sent(w, c, cqe->res);
		break;
	case UOP_CANCEL:
	case UOP_CLOSE: /* CONN_CLOSE_SENT is set: the slot is released below */
		break;
	default:
		BUG_ON(1);
	}
	/* Before the close below: a hand-off that fails because c closed
	 * meanwhile reports on_failed before on_closed. */
	if ((c->flags & (CONN_HANDOFF | CONN_HANDOFF_SENT)) == CONN_HANDOFF)
		handoff_progress(w, c);
	if (c->flags & CONN_CLOSING) {
		if (c->inflight == 0 && (c->flags & CONN_CLOSE_SENT))
			conn_release(w, c);
		else
			conn_close_progress(w, c);
	}
}

static void handle_cqe(struct worker *w, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	enum uop op = ud_op(ud);

	switch (op) {
	case UOP_NONE:
		break;
	case UOP_ACCEPT:
		handle_accept(w, cqe, ud_slot(ud));
		break;
	case UOP_MSG:
		handle_msg(w, ud_to_ptr(ud));
		break;
	case UOP_MSG_SENT:
		handle_msg_sent(w, ud_to_ptr(ud), cqe->res);
		break;
	case UOP_HANDOFF_IN:
		handle_handoff_in(w, ud_to_ptr(ud), cqe->res);
		break;
	default:
		handle_conn_cqe(w, op, ud, cqe);
		break;
	}
}

/* --- stop and the loop ---------------------------------------------------- */

void worker_stop_accepting(struct worker *w, void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < w->nlisteners; i++) {
		struct listener_slot *l = &w->listeners[i];

		if (l->fd >= 0) {
			/* Cancel the multishot accept, then close the socket. */
			struct io_uring_sqe *sqe = get_sqe(w);
			io_uring_prep_cancel64(sqe, (uint64_t)UOP_ACCEPT | ((uint64_t)i << 8), 0);
			io_uring_sqe_set_data64(sqe, 0);
			io_uring_submit(&w->ring);
			close(l->fd);
			l->fd = -1;
		}
	}
}

void worker_begin_stop(struct worker *w, void *arg)
{
	if (w->stopping)
		return;
	w->stopping = true;
	worker_stop_accepting(w, arg);
	for (unsigned s = 0; s < w->max_conns; s++) {
		struct conn *c = &w->conns[s];
		if (c->flags & CONN_IN_USE)
			conn_close(c, -ESHUTDOWN, false);
	}
}

/* Whether the ring knows IORING_OP_URING_CMD at all (5.19+). Without it a
 * setsockopt SQE would fail at submission and take its whole chain (the
 * connect) with it, so then we never send one. Whether sockets support
 * the setsockopt command (6.7+) shows in its completion. */
static bool worker_ring_has_uring_cmd(struct io_uring *ring)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_URING_CMD);

	if (probe)
		io_uring_free_probe(probe);
	if (!ok && !atomic_exchange_explicit(&nodelay_refusal_logged, true, memory_order_relaxed))
		log_warn("io_uring has no URING_CMD here: relay connections go without TCP_NODELAY");
	return ok;
}

static int worker_setup_ring(struct worker *w)
{
	struct io_uring_params p;
	int r, err;

	memset(&p, 0, sizeof(p));
	/* SINGLE_ISSUER: only this thread submits, so the kernel skips
	 * locking. DEFER_TASKRUN: completion work runs when we wait, in
	 * batches, not as interrupts in the middle of our processing. */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
	p.flags |= IORING_SETUP_CQSIZE;
	p.cq_entries = 8192;
	r = io_uring_queue_init_params(1024, &w->ring, &p);
	if (r < 0)
		return r;
	r = io_uring_register_files_sparse(&w->ring, w->max_conns);
	if (r < 0)
		return r;
	/* The kernel picks accepted sockets' slots above out_slots; we pick
	 * outbound ones below. */
	r = io_uring_register_file_alloc_range(&w->ring, w->out_slots, w->max_conns - w->out_slots);
	if (r < 0)
		return r;
	io_uring_register_ring_fd(&w->ring); /* an optimisation: failure is fine */
	w->nodelay_ok = worker_ring_has_uring_cmd(&w->ring);
	w->br = uring_setup_buf_ring(&w->ring, w->nbufs, RECV_BGID, &err);
	if (!w->br)
		return err;
	w->bufs = aligned_alloc(4096, (size_t)w->nbufs * w->buf_size);
	if (!w->bufs)
		return -ENOMEM;
	for (unsigned i = 0; i < w->nbufs; i++)
		io_uring_buf_ring_add(w->br, w->bufs + (size_t)i * w->buf_size, w->buf_size, (unsigned short)i,
				      io_uring_buf_ring_mask(w->nbufs), (int)i);
	io_uring_buf_ring_advance(w->br, (int)w->nbufs);
	return 0;
}

static void worker_teardown(struct worker *w)
{
	if (w->br)
		uring_free_buf_ring(&w->ring, w->br, w->nbufs, RECV_BGID);
	w->br = NULL;
	free(w->bufs);
	w->bufs = NULL;
	if (w->ring_ready)
		io_uring_queue_exit(&w->ring);
	w->ring_ready = false;
	timer_heap_free(&w->timers);
}

static void worker_report_start(struct worker *w, int err)
{
	struct runtime *rt = w->rt;

	pthread_mutex_lock(&rt->lock);
	rt->started++;
	if (err && !rt->start_err)
		rt->start_err = err;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
}

static bool worker_done(struct worker *w)
{
	/* Relaxed: a hint that is re-read seq_cst once the loop ended (worker_main). */
	return w->stopping && w->open_conns == 0 && w->pending_msgs == 0 &&
	       atomic_load_explicit(&w->handoffs_in, memory_order_relaxed) == 0;
}

/* Iterations in a row whose sends may wait for a receive's remaining
 * bytes (worker_loop): 7 lets eight receives share one send. */
#define SEND_DEFER_MAX 7u

static void worker_loop(struct worker *w)
{
	while (!worker_done(w)) {
		struct __kernel_timespec ts, *tsp = NULL;
		struct io_uring_cqe *cqe;
		uint64_t next = timer_heap_next(&w->timers);
		unsigned head, n = 0;
		int r;

		/* A stopping worker waits for the hand-offs reserved to it; a
		 * failed one only shows as the sender's decrement, with no CQE
		 * here, so look again now and then. */
		if (w->stopping && atomic_load_explicit(&w->handoffs_in, memory_order_relaxed) != 0) {
			uint64_t soon = clock_mono_ns() + 10000000u;

			next = MIN(next, soon);
		}
		if (w->sends_deferred)
			next = MIN(next, clock_mono_ns() + 1000000u); /* never wait long with sends held */
		next = MIN(next, w->ack_due_ns);
		if (next != UINT64_MAX) {
			uint64_t now = clock_mono_ns();
			uint64_t d = next > now ? next - now : 0;
			ts.tv_sec = (long long)(d / 1000000000u);
			ts.tv_nsec = (long long)(d % 1000000000u);
			tsp = &ts;
		}
		r = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, tsp, NULL);
		if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			log_warn("worker %u: io_uring wait: %s", w->id, strerror(-r));
		w->now_ns = clock_mono_ns();
		/* Handle the whole batch, then advance the CQ once. */
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			handle_cqe(w, cqe);
			n++;
		}
		if (n) {
			io_uring_cq_advance(&w->ring, n);
			STAT_ADD(w, cqe_batches, 1);
			STAT_ADD(w, cqes, n);
		}
		timer_heap_run(&w->timers, w->now_ns);
		w->ack_due_ns = w->nack_owed ? worker_quiet_acks(w) : UINT64_MAX;
		/* A receive that left bytes in its socket (the kernel says so)
		 * completes again at the next submit, without waiting: let what
		 * it brings join this iteration's sends to accepted clients (up
		 * to SEND_IOV_MAX chunks a send) instead of sending twice.
		 * Sends to relays go now: their SENDMEs pace the exit's
		 * congestion window. Bounded, so a socket that is never empty
		 * cannot hold the sends back. */
		if (w->recv_more && w->sends_deferred < SEND_DEFER_MAX) {
			w->sends_deferred++;
			worker_flush_sends(w, true);
		} else {
			w->sends_deferred = 0;
			worker_flush_sends(w, false);
		}
		w->recv_more = false;
	}
	io_uring_submit(&w->ring);
}

/* Submit what worker_stopping posted and wait for those MSG_RINGs to
 * complete (they complete without the target's help). No timers run:
 * the app's shard is gone. Messages to ourselves are run on the way. */
static void worker_flush_posts(struct worker *w)
{
	while (w->pending_msgs > 0) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int r = io_uring_submit_and_wait(&w->ring, 1);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			log_warn("worker %u: io_uring wait at stop: %s", w->id, strerror(-r));
			break;
		}
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			handle_cqe(w, cqe);
			n++;
		}
		io_uring_cq_advance(&w->ring, n);
	}
}

/* Wait until every worker thread of the runtime has left its loop for
 * good (and set dead). From then on no worker prepares a MSG_RING, and
 * each one that was prepared has completed on its sender (pending_msgs
 * reached 0 before the sender left its loop), so its message sits in the
 * target's CQ or the target's deferred task work. */
static void worker_quiesce(struct worker *w)
{
	struct runtime *rt = w->rt;

	pthread_mutex_lock(&rt->lock);
	rt->quiesced++;
	pthread_cond_broadcast(&rt->cond);
	while (!rt->threads_final || rt->quiesced < rt->threads)
		pthread_cond_wait(&rt->cond, &rt->lock);
	pthread_mutex_unlock(&rt->lock);
}

/* The last look at our CQ, once every worker left its loop: refuse new
 * posts from ringless threads (under post_lock, so one in progress
 * finishes first), flush the deferred task work (DEFER_TASKRUN: only we
 * may), and run every message left so that nothing it carries leaks.
 * Nothing can arrive after this: the ring goes next. */
static void worker_final_drain(struct worker *w)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	w->final_drain = true;
	pthread_mutex_lock(&w->rt->post_lock);
	atomic_store_explicit(&w->posts_closed, true, memory_order_relaxed);
	pthread_mutex_unlock(&w->rt->post_lock);
	/* One io_uring_enter runs only a batch of the deferred work (and
	 * flushes only what fits of an overflowed CQ): go on until a pass
	 * finds nothing. */
	do {
		n = 0;
		io_uring_get_events(&w->ring);
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);

			if (ud_op(ud) == UOP_MSG)
				handle_msg(w, ud_to_ptr(ud));
			n++;
		}
		io_uring_cq_advance(&w->ring, n);
	} while (n > 0);
}

/* Give the chunk pool back the magazines this shard did not need since
 * the last tick (pool/README.md: low-water trimming), once a second. */
#define WORKER_TRIM_PERIOD_NS 1000000000ull

static void worker_trim_tick(struct timer *t, void *arg)
{
	struct worker *w = arg;
	unsigned n = buf_pool_trim(w->rt->chunk_pool, w->id);

	if (n)
		STAT_ADD(w, pool_trims, n);
	if (!w->stopping)
		timer_arm(&w->timers, t, w->now_ns + WORKER_TRIM_PERIOD_NS);
}

void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct runtime *rt = w->rt;
	int r;

	snprintf(w->name, sizeof(w->name), "w%u", w->id);
	log_set_thread_name(w->name);
	pthread_setname_np(pthread_self(), w->name);
	current_worker = w;
	timer_heap_init(&w->timers);
	r = worker_setup_ring(w);
	if (r < 0) {
		log_err("worker %u: cannot set up io_uring: %s", w->id, strerror(-r));
		worker_teardown(w);
		atomic_store_explicit(&w->dead, true, memory_order_release);
		worker_report_start(w, r);
		worker_quiesce(w);
		return NULL;
	}
	w->ring_ready = true;
	w->now_ns = clock_mono_ns();
	/* Store-release pairs with the load-acquire in worker_post. */
	atomic_store_explicit(&w->ring_fd, w->ring.ring_fd, memory_order_release);
	timer_init(&w->trim_timer, worker_trim_tick, w);
	timer_arm(&w->timers, &w->trim_timer, w->now_ns + WORKER_TRIM_PERIOD_NS);
	if (rt->cfg.worker_started)
		rt->cfg.worker_started(w, rt->cfg.arg);
	for (unsigned i = 0; i < w->nlisteners; i++) {
		struct io_uring_sqe *sqe = get_sqe(w);

		io_uring_prep_multishot_accept_direct(sqe, w->listeners[i].fd, NULL, NULL, 0);
		io_uring_sqe_set_data64(sqe, (uint64_t)UOP_ACCEPT | ((uint64_t)i << 8));
		w->listeners[i].armed = true;
	}
	worker_report_start(w, 0);
	if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
		worker_begin_stop(w, NULL);
	worker_loop(w);
	/* No new hand-offs from here on. Seq_cst store then load, paired with
	 * the seq_cst increment then load in handoff_reserve: either the
	 * sender sees this flag and backs off, or we see its reservation and
	 * serve it (the connection arrives and is closed like any other). */
	atomic_store_explicit(&w->handoffs_closed, true, memory_order_seq_cst);
	while (atomic_load_explicit(&w->handoffs_in, memory_order_seq_cst) != 0)
		worker_loop(w);
	if (rt->cfg.worker_stopping)
		rt->cfg.worker_stopping(w, rt->cfg.arg);
	worker_flush_posts(w);
	/* Store-release pairs with the load-acquire in worker_post: new
	 * senders back off. One that raced past it still reaches our ring,
	 * which stays until the final drain below. */
	atomic_store_explicit(&w->dead, true, memory_order_release);
	worker_quiesce(w);
	worker_final_drain(w);
	worker_teardown(w);
	current_worker = NULL;
	return NULL;
}
