/* SOCKS sessions: one per client connection on a SocksPort. Runs the
 * proto/socks.h parser, opens a stream through app/stream.h with the right
 * isolation key, replies with tor's codes, then pumps bytes both ways with
 * backpressure. Owner shard only. Not for parsing (proto/) or circuits. */
#ifndef ONIONRING_APP_SOCKS_H
#define ONIONRING_APP_SOCKS_H

#include <stdbool.h>
#include <stdint.h>

#include "net/worker.h"

struct config_port;

/* One SocksPort line's behaviour (tor's isolation flags). */
struct socks_listener {
	unsigned index;          /* which SocksPort: streams of different ports never share circuits */
	bool isolate_socks_auth; /* default on (IsolateSOCKSAuth / NoIsolateSOCKSAuth) */
	bool isolate_dest_addr;
	bool isolate_dest_port;
};

/* Fill l from a SocksPort entry's flags text. Return 0, or -1 with a
 * message in err naming the unknown flag. */
int socks_listener_init(struct socks_listener *l, unsigned index, const struct config_port *p, char *err,
			size_t errlen);

/* The accept callback for SocksPort listeners; arg is a struct
 * socks_listener (borrowed, outlives the runtime). */
void socks_accept(struct worker *w, struct conn *c, void *arg);

/* SocksTimeout (tor's meaning): a client has ns from its connect to
 * finish its request, and its stream keeps trying circuits and exits until
 * the same deadline, then the client gets an error. Applies to clients
 * that connect after the call (SIGHUP, SETCONF). Any thread. */
void socks_set_timeout(uint64_t ns);

/* Most SOCKS sessions the calling worker keeps open at once, over all its
 * SocksPorts (MaxClientConnections spread over the workers; unlimited until
 * the first call). A lowered limit closes no session: clients beyond it
 * are refused at accept until enough sessions have ended. Owner shard: call
 * it on each worker (at start, and from a worker_post message on SIGHUP or
 * SETCONF). */
void socks_set_session_limit(uint64_t per_worker);

/* Sessions moved between shards (issue 6: a new stream that would wait
 * for a circuit build moves to a shard with a ready circuit; see
 * socks.c). Counted per shard by its worker. */
#define SOCKS_MAX_SHARDS 256 /* NumWorkers' maximum */
struct socks_stats {
	uint64_t handed_off;     /* sessions that left this shard */
	uint64_t handed_in;      /* sessions that arrived here */
	uint64_t handoff_failed; /* hand-offs that failed: the session stayed */
	uint64_t handed_off_keyed; /* of handed_off, to a circuit reserved for its key */
};
/* Copy shard's counters. Any thread. */
void socks_stats_read(unsigned shard, struct socks_stats *out);

/* Open SOCKS sessions on the calling worker (for metrics). */
uint64_t socks_sessions_open(void);

#endif
