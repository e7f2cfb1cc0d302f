/* The runtime: N io_uring worker threads (one per core by default, each
 * pinned to a CPU), their listeners, and a coordinator thread that is not on
 * the data path (directory refreshes, circuit-pool planning and stats
 * aggregation run there as app/ provides them).
 *
 * Lifecycle: runtime_new() -> runtime_add_listener()... -> runtime_start()
 * -> runtime_stop() (any thread; also from a signal-watching thread) ->
 * runtime_join() -> runtime_free(). */
#ifndef ONIONRING_NET_RUNTIME_H
#define ONIONRING_NET_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/worker.h"

struct buf_pool;

/* Same as MaxMemInQueues' default (app/ passes that key). */
#define RUNTIME_CHUNK_POOL_DEFAULT ((size_t)1 << 30)

struct runtime_config {
	unsigned nworkers;          /* 0 = one per CPU the process may use */
	unsigned max_conns;         /* per worker (direct descriptor slots) */
	unsigned recv_buf_size;     /* bytes per provided receive buffer */
	unsigned recv_bufs;         /* provided buffers per worker (power of 2) */
	bool pin_cpus;              /* pin worker i to the (i % n)-th of the n CPUs
				       runtime_usable_cpus lists */
	/* Cap on the memory of queued send chunks, all workers together
	 * (the chunk pool, net/README.md). 0 = RUNTIME_CHUNK_POOL_DEFAULT.
	 * Raised to a floor that keeps every shard's magazines filled. A
	 * conn_send past it fails with -ENOBUFS. */
	size_t chunk_pool_bytes;
	uint64_t coordinator_tick_ms; /* period of the coordinator's tick */
	/* Called on each worker's thread after its ring is up, before it
	 * accepts anything; and on the way out, after all its connections
	 * closed. Optional. */
	void (*worker_started)(struct worker *w, void *arg);
	void (*worker_stopping)(struct worker *w, void *arg);
	/* Called on the coordinator thread at start, every tick, and at stop.
	 * Optional. */
	void (*coord_tick)(struct runtime *rt, void *arg);
	void *arg;
};

/* Fill cfg with defaults (nworkers from the meson option default_workers). */
void runtime_config_defaults(struct runtime_config *cfg);

/* Check that this kernel gives us io_uring with the features we use
 * (SINGLE_ISSUER, DEFER_TASKRUN, provided buffer rings, MSG_RING). Return 0
 * or -errno with a one-line reason in why. Any thread. */
int runtime_probe(char *why, size_t whylen);

/* Write into cpus[0..cap) the CPUs the calling thread may run on (its
 * affinity mask: taskset, cgroup cpuset), lowest first, and return how
 * many; all online CPUs when the mask cannot be read. runtime_new uses it
 * for the default worker count and the pinning, from the thread that
 * calls it. Any thread. */
unsigned runtime_usable_cpus(int *cpus, unsigned cap);

/* Returns owned, or NULL with a logged reason. Worker i is pinned (when
 * pin_cpus) to the (i % n)-th CPU of runtime_usable_cpus, read here on
 * the calling thread. Control plane. */
struct runtime *runtime_new(const struct runtime_config *cfg);
/* Listen on addr on every worker (SO_REUSEPORT: the kernel spreads new
 * connections over the workers). Before runtime_start only. Port 0 picks
 * one free port shared by all workers; the bound port is returned in
 * *bound_port. Return 0 or -errno. */
int runtime_add_listener(struct runtime *rt, const struct sockaddr *addr, socklen_t len,
			 conn_accept_fn fn, void *arg, uint16_t *bound_port);
/* The same on the workers whose bit is set in workers (bit i: worker i;
 * UINT64_MAX: all). What for: a test that needs every new connection on
 * one shard (onionring's testing-only __SocksListenerShards). -EINVAL when
 * no worker of the runtime is in the mask. */
int runtime_add_listener_on(struct runtime *rt, const struct sockaddr *addr, socklen_t len,
			    conn_accept_fn fn, void *arg, uint16_t *bound_port, uint64_t workers);
int runtime_start(struct runtime *rt);
/* Ask every thread to stop: listeners stop accepting, connections close,
 * threads exit. Any thread; async-signal-safe it is not (use a signalfd
 * or a watching thread). */
void runtime_stop(struct runtime *rt);
/* Close every listener and keep the open connections (the first step of a
 * drain). Any thread. */
void runtime_stop_accepting(struct runtime *rt);
void runtime_join(struct runtime *rt);
void runtime_free(struct runtime *rt);

unsigned runtime_nworkers(const struct runtime *rt);
struct worker *runtime_worker(struct runtime *rt, unsigned i);
bool runtime_stopping(const struct runtime *rt);
/* The pool of send chunks (for statistics: pool/mag.h buf_pool_shard_stats,
 * shard = worker id). Lives until runtime_free. Any thread. */
const struct buf_pool *runtime_chunk_pool(const struct runtime *rt);

#endif
