/* One io_uring worker: the event loop of a shard, its connections, timers
 * and the messages other threads send it.
 *
 * Every object here belongs to one worker and is touched only by that
 * worker's thread ("owner shard only"), except worker_post(), which any
 * thread may call. Not for protocol logic: the layers above get bytes
 * through struct conn_ops callbacks (dependency inversion: net/ defines the
 * callbacks it needs, app/ implements them). */
#ifndef ONIONRING_NET_WORKER_H
#define ONIONRING_NET_WORKER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/timer.h"

struct worker;
struct conn;
struct runtime;

/* Callbacks of a connection's owner. All run on the owner worker. */
struct conn_ops {
	/* Outbound only: the TCP connect finished with res 0 or -errno. On
	 * failure on_closed follows. */
	void (*on_connected)(struct conn *c, int res);
	/* Bytes arrived: borrowed for the call only; consume or copy them all.
	 * Call conn_pause_recv() to push back on the peer. */
	void (*on_recv)(struct conn *c, const uint8_t *data, size_t len);
	/* A send finished and at most drained_mark bytes stay queued (0:
	 * everything queued with conn_send() has been written). Optional. */
	void (*on_drained)(struct conn *c);
	/* The low-water mark for on_drained: a mark above 0 lets an owner
	 * that pushed back resume before its queue runs dry (app/socks.c). */
	size_t drained_mark;
	/* Last call: the connection is gone (err 0 = orderly close by either
	 * side, else -errno). c is invalid after it returns. */
	void (*on_closed)(struct conn *c, int err);
};

/* Called on the accepting worker for each new inbound connection; the
 * callee sets the ops with conn_set_ops() (or closes c). */
typedef void (*conn_accept_fn)(struct worker *w, struct conn *c, void *arg);
/* A message run on the target worker. */
typedef void (*worker_msg_fn)(struct worker *w, void *arg);
/* A hand-off that did not happen (conn_handoff): runs on the worker that
 * still owns c, with the arg given to conn_handoff. */
typedef void (*conn_handoff_fail_fn)(struct conn *c, int err, void *arg);

/* Per-worker counters: written by the owner only, read by anyone with
 * relaxed loads (stats aggregation on the coordinator). */
struct worker_stats {
	uint64_t accepted;
	uint64_t connects;
	uint64_t closed;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t msgs_in;
	uint64_t no_buffer;
	uint64_t cqe_batches;
	uint64_t cqes;
	uint64_t conns_open;
	uint64_t sockopts;       /* TCP_NODELAY set on an outbound socket */
	uint64_t sockopt_failed; /* the kernel refused it (logged once) */
	uint64_t quick_acks;     /* TCP_QUICKACKs sent to relay links that went quiet */
	uint64_t quick_ack_failed; /* ... that the kernel refused */
	uint64_t sends;          /* send operations prepared */
	uint64_t sends_outbound; /* ... of them on outbound connections (relay links) */
	uint64_t recvs;          /* receives that brought bytes */
	uint64_t handoffs_out;   /* connections that left for another worker */
	uint64_t handoffs_in;    /* connections that arrived from another worker */
	uint64_t handoff_failed; /* hand-offs that failed: the connection stayed here */
	uint64_t handoff_carried; /* bytes received during a hand-off and carried by net/ */
	uint64_t send_nobufs;    /* conn_send refused: the send-chunk pool was at its cap */
	uint64_t pool_trims;     /* magazines the trim timer gave back to the chunk pool's depot */
};

/* --- The worker ---------------------------------------------------------- */

unsigned worker_id(const struct worker *w);
struct runtime *worker_runtime(const struct worker *w);
/* Return the worker running on the calling thread, or NULL. */
struct worker *worker_current(void);
struct timer_heap *worker_timers(struct worker *w);
/* Monotonic time of the current loop iteration (cheap). Owner only. */
uint64_t worker_now_ns(const struct worker *w);
/* Copy the counters; any thread. */
void worker_stats_read(const struct worker *w, struct worker_stats *out);
/* Per-worker slot for the layer above (app/ hangs its shard here). */
void worker_set_user(struct worker *w, void *user);
void *worker_user(const struct worker *w);

/* Run fn(target, arg) on the target worker's thread. Any thread.
 * Delivered with IORING_OP_MSG_RING (see net/README.md). Return 0 or
 * -errno (the target has stopped, or the runtime is in its final drain:
 * fn is not run). arg is borrowed by the message until fn runs. A
 * message accepted (0) is always run exactly once, on the target's
 * thread: if it arrives after the target's loop ended (even in the last
 * instant before its ring would have gone), it runs in the final drain,
 * after worker_stopping, when every worker of the runtime has left its
 * loop; worker_post from inside such a late fn returns -ESHUTDOWN. */
int worker_post(struct worker *target, worker_msg_fn fn, void *arg);

/* --- Connections (owner worker only) ------------------------------------ */

/* Open a TCP connection to addr. Returns the new connection (its
 * on_connected/on_closed report the outcome) or NULL with *err set. */
struct conn *conn_connect(struct worker *w, const struct sockaddr *addr, socklen_t len,
			  const struct conn_ops *ops, void *user, int *err);
void conn_set_ops(struct conn *c, const struct conn_ops *ops, void *user);
void *conn_user(const struct conn *c);
struct worker *conn_worker(const struct conn *c);
/* Queue len bytes (copied) for sending, in chunks from the runtime's
 * send-chunk pool. All or nothing: return 0, or -ENOBUFS when the pool is
 * at its cap (nothing was queued: push back, or close with that error),
 * -EPIPE when the connection is closing, -EBUSY during a hand-off. */
int conn_send(struct conn *c, const void *data, size_t len);
/* Bytes queued and not yet written (for backpressure decisions). */
size_t conn_send_queued(const struct conn *c);
/* The most bytes one on_recv call can bring (a receive buffer's size). */
size_t conn_recv_size(const struct conn *c);
void conn_pause_recv(struct conn *c);
void conn_resume_recv(struct conn *c);
/* Close: pending operations are cancelled, queued bytes are dropped unless
 * flush is true (then the close waits until they are written), and
 * on_closed runs later with err. Safe to call more than once. */
void conn_close(struct conn *c, int err, bool flush);
bool conn_is_closing(const struct conn *c);
/* The peer's address as text ("127.0.0.1:4242"), or "?" when unknown. */
const char *conn_peer_name(const struct conn *c);

/* --- Moving a connection to another worker (owner worker only) ------------
 *
 * What for: a shard with no ready circuit hands a SOCKS client to a shard
 * that has one (issue 6, net/README.md). The socket moves; the protocol
 * state is the caller's to move, inside arg.
 *
 * conn_handoff() gives c to worker `to`: the descriptor travels with
 * IORING_OP_MSG_RING / IORING_MSG_SEND_FD into a free slot of to's ring,
 * then to runs on_arrival(to, c2, arg) with a new struct conn c2 for the
 * same socket (set its ops there, as in an accept callback; its receive is
 * armed when on_arrival returns, not paused; conn_peer_name is kept).
 *
 * The rule, checked at the call (nothing changes when it returns < 0):
 *   - c is connected, not closing, not already being handed off;
 *   - nothing is queued for sending and no send is in flight (-EBUSY:
 *     try again from on_drained);
 *   - to is another worker of the same runtime that is running (-ESRCH
 *     once it has stopped taking hand-offs), and ours is not stopping
 *     (-ESHUTDOWN).
 * The armed receive is cancelled first. Bytes that it still delivers in
 * that window are net/'s to carry: to's on_recv gets them first, right
 * after on_arrival. Bytes the caller already got through on_recv and has
 * not consumed (a half-parsed request) are the caller's to put in arg.
 *
 * Returns 0: c now belongs to the hand-off. Do not use c (no send, close,
 * pause) until exactly one of these happens:
 *   - it arrived: on_arrival runs on `to` with the new conn (also when to
 *     is stopping: then c2 is closed with -ESHUTDOWN right after, and its
 *     on_closed follows). Our c is released quietly: no on_closed, and its
 *     ops and user pointer are forgotten.
 *   - it failed: on_failed(c, err, arg) runs here, later (never from
 *     inside conn_handoff), and c is back with its ops, working as before
 *     (bytes that arrived meanwhile go to its on_recv after on_failed).
 *     err: -ENFILE (to has no free descriptor slot), -EOWNERDEAD (to's
 *     thread is gone), another -errno from the kernel (-EOVERFLOW: see
 *     net/README.md), or, when c closed meanwhile (the peer went away, or
 *     the runtime is stopping), its close error or -EPIPE. Whatever err
 *     is, conn_is_closing(c) says whether c is still usable; when it is
 *     closing, its on_closed follows.
 * Either way arg is delivered exactly once. on_arrival and on_failed may
 * call conn_handoff again on their conn. Returns -errno otherwise:
 * -EINVAL, -EPIPE (closing), -EALREADY, -ENOTCONN, -EBUSY, -ESHUTDOWN,
 * -ESRCH, -ENOMEM. Owner worker of c only. */
int conn_handoff(struct conn *c, struct worker *to, conn_accept_fn on_arrival, conn_handoff_fail_fn on_failed,
		 void *arg);

#endif
