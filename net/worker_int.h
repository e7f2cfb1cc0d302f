/* Layouts shared by net/worker.c and net/runtime.c only. Nothing outside
 * net/ includes this file. */
#ifndef ONIONRING_NET_WORKER_INT_H
#define ONIONRING_NET_WORKER_INT_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/compiler.h"
#include "net/runtime.h"
#include "net/timer.h"
#include "net/worker.h"

#define RUNTIME_MAX_LISTENERS 16

/* user_data layout (liburing examples/proxy.c packs the same way):
 *   bits 0..7   operation (enum uop)
 *   bits 8..39  direct-descriptor slot (conn ops) or listener index
 *   bits 40..63 generation of the slot, so a stale completion of a slot
 *               that was closed and reused is recognised and dropped
 * For messages, bits 8..63 hold a pointer (user space pointers fit in 47
 * bits on x86_64 and arm64). */
enum uop {
	UOP_NONE = 0,
	UOP_ACCEPT,
	UOP_SOCKET,
	UOP_CONNECT,
	UOP_RECV,
	UOP_SEND,
	UOP_CANCEL,
	UOP_CLOSE,
	UOP_MSG,      /* a message arrived from another thread */
	UOP_MSG_SENT, /* our MSG_RING to another worker completed */
	UOP_SOCKOPT,  /* setsockopt (URING_CMD) on a new outbound socket */
	UOP_QUICKACK, /* TCP_QUICKACK (URING_CMD) on a quiet relay link */
	UOP_HANDOFF_SENT, /* our MSG_RING that passes a connection away completed */
	UOP_HANDOFF_IN,   /* a connection arrived from another worker (a pointer) */
};

#define OUT_CHUNK_SIZE 16384u /* data bytes of one send chunk */

/* A send chunk: one object of the runtime's chunk pool (rt->chunk_pool,
 * OUT_CHUNK_OBJ bytes), taken and given back by the owner worker of its
 * connection only. */
#define SEND_IOV_MAX 8u /* chunks one send may cover */

struct out_chunk {
	struct out_chunk *next;
	uint32_t len; /* bytes filled */
	uint32_t off; /* bytes already sent */
	uint32_t cap;
	/* A send that covers several chunks (sendmsg) keeps its message in
	 * the first one, which lives until that send completes. */
	struct msghdr msg;
	struct iovec iov[SEND_IOV_MAX];
	uint8_t data[];
};

enum conn_flag {
	CONN_IN_USE = 1u << 0,
	CONN_OUTBOUND = 1u << 1,
	CONN_CONNECTED = 1u << 2,
	CONN_RECV_ARMED = 1u << 3,
	CONN_RECV_PAUSED = 1u << 4,
	CONN_SEND_ARMED = 1u << 5,
	CONN_CLOSING = 1u << 6,
	CONN_FLUSH = 1u << 7,
	CONN_CLOSE_SENT = 1u << 8,
	CONN_CANCEL_SENT = 1u << 9,
	CONN_SOCKET_FAILED = 1u << 10,
	CONN_SEND_WANTED = 1u << 11, /* in worker.send_wanted: send at the end of this iteration */
	CONN_HANDOFF = 1u << 12,     /* leaving: c->ho is the hand-off under way; without
					HANDOFF_SENT, the armed receive is being cancelled */
	CONN_HANDOFF_SENT = 1u << 13, /* the MSG_RING is in flight: c->ho may be the target's
					 already, do not read it before the completion */
	CONN_HANDED = 1u << 14,      /* left: our slot closes without on_closed */
	CONN_ACK_OWED = 1u << 15,    /* in worker.ack_owed: acknowledge once the link is quiet */
};

/* A hand-off (conn_handoff): allocated by the sending worker, owned by it
 * until the kernel has installed the descriptor in the target's table, by
 * the target from then on. Also held by a conn (c->ho, no CONN_HANDOFF)
 * while on_arrival or on_failed runs, so that bytes net/ carries reach the
 * new owner's on_recv after them, or travel on if the callback hands the
 * connection on again. */
struct handoff {
	conn_accept_fn on_arrival;
	conn_handoff_fail_fn on_failed;
	void *arg;
	struct worker *to;
	/* Store-release by the sender right before the MSG_RING (a new value
	 * each time the record travels), load-acquire by the receiver: the
	 * kernel orders them, this shows it to the memory model and TSan. */
	_Atomic uint32_t posted;
	struct sockaddr_storage peer_addr;
	char peer[64];
	uint32_t carry_len;
	uint32_t carry_cap; /* one receive buffer: at most one receive lands in a hand-off */
	uint8_t carry[];
};

struct conn {
	struct worker *w;
	const struct conn_ops *ops;
	void *user;
	uint32_t slot;
	uint32_t gen;
	uint32_t flags;
	uint16_t inflight;
	int close_err;
	struct out_chunk *out_head;
	struct out_chunk *out_tail;
	size_t out_bytes;
	struct handoff *ho;
	uint64_t last_recv_ns; /* relay links: when a receive last completed */
	uint64_t rate_start_ns; /* relay links: start of the receive-rate window */
	uint32_t rate_bytes;    /* bytes received in that window */
	bool streaming;         /* the last window received at least ACK_STREAMING_BYTES */
	struct sockaddr_storage peer_addr;
	char peer[64];
};

struct worker_msg {
	worker_msg_fn fn;
	void *arg;
	/* Store-release by the sender before the MSG_RING, load-acquire by the
	 * receiver: the kernel already orders them, this makes the pairing
	 * visible to the memory model (and to ThreadSanitizer). */
	_Atomic int posted;
};

struct listener_slot {
	int fd;
	conn_accept_fn fn;
	void *arg;
	bool armed;
};

struct worker {
	/* Written by the owner thread only. */
	struct io_uring ring;
	struct runtime *rt;
	unsigned id;
	int cpu;
	uint64_t now_ns;
	struct timer_heap timers;
	struct conn *conns;       /* indexed by direct-descriptor slot */
	unsigned max_conns;
	unsigned out_slots;       /* [0, out_slots) for outbound sockets */
	uint32_t *free_out;       /* stack of free outbound slots */
	unsigned nfree_out;
	unsigned open_conns;
	uint32_t *send_wanted;    /* slots whose send is prepared at the end of the loop iteration */
	unsigned nsend_wanted;
	bool recv_more;           /* a receive this iteration left bytes in its socket */
	unsigned sends_deferred;  /* iterations in a row that left the sends for later */
	unsigned pending_msgs;    /* MSG_RINGs we sent and that did not complete */
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	unsigned nbufs;
	unsigned buf_size;
	struct listener_slot listeners[RUNTIME_MAX_LISTENERS];
	unsigned nlisteners;
	bool stopping;
	bool ring_ready;
	bool final_drain;         /* every worker left its loop: worker_post from here refuses */
	struct timer trim_timer;  /* gives the chunk pool back what this shard did not need */
	bool nodelay_ok;          /* false once the kernel refused the setsockopt */
	uint32_t *ack_owed;       /* relay-link slots that received since their last quick ACK */
	unsigned nack_owed;       /* entries in ack_owed (capacity: out_slots) */
	uint64_t ack_due_ns;      /* the earliest quick ACK ahead; UINT64_MAX: none */
	char name[16];
	void *user;
	pthread_t thread;

	/* Read by other threads. */
	CACHE_ALIGNED _Atomic int ring_fd; /* -1 until the ring is up; store-release pairs
					      with the load-acquire in worker_post */
	_Atomic bool dead;                 /* set when the thread left its loop */
	/* Hand-offs to this worker that are reserved and not yet resolved:
	 * incremented by the sender in conn_handoff, decremented by us when
	 * one arrives or by the sender when it failed. A stopping worker does
	 * not leave its loop while it is non-zero (the descriptor could land
	 * in a table nobody reads). Seq_cst, with handoffs_closed: see
	 * handoff_reserve in worker.c. */
	_Atomic unsigned handoffs_in;
	_Atomic bool handoffs_closed;      /* set when the loop ended: no new reservations */
	/* Set under rt->post_lock right before the final drain: posts from
	 * threads without a ring (they hold post_lock) are refused from then
	 * on; posts from workers cannot happen any more (they all left their
	 * loops). Relaxed loads outside the lock are hints. */
	_Atomic bool posts_closed;
	struct worker_stats stats;         /* relaxed stores by owner, relaxed loads by readers */
};

/* Run the worker's loop until it has stopped; called on its thread. */
void *worker_main(void *arg);
/* Stop message handler (runs on the worker). */
void worker_begin_stop(struct worker *w, void *arg);
/* Close this worker's listeners; connections stay (runs on the worker). */
void worker_stop_accepting(struct worker *w, void *arg);

struct runtime {
	struct runtime_config cfg;
	unsigned nworkers;
	struct worker *workers;
	pthread_t coord_thread;
	bool coord_started;
	_Atomic bool stopping;

	/* Send chunks of every worker's connections (net/README.md). */
	struct buf_pool *chunk_pool;

	/* Ring that non-worker threads use to send MSG_RINGs (control plane,
	 * so a mutex is fine here). */
	struct io_uring post_ring;
	pthread_mutex_t post_lock;

	/* Start-up handshake and coordinator wakeups. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned started;
	int start_err;
	/* Shutdown barrier (under lock): worker threads that left their loop
	 * for good, threads started, and whether runtime_start has finished
	 * starting them. No ring is torn down before every started worker
	 * has arrived (worker_main). */
	unsigned quiesced;
	unsigned threads;
	bool threads_final;
};

#endif
