/* The prebuild planner of a shard's circuit pool (issue 6): it remembers
 * recent demand (the ports streams asked for, tor's predicted ports,
 * path-spec 2.1.1, and the isolation keys seen) and, given the circuits the
 * shard has, says which clean circuits to keep and which to launch, within
 * CircuitPoolMaxSize.
 *
 * For: pure policy with no I/O, no clock and no allocation; the caller
 * (app/circmgr.c) passes the time, describes its circuits, launches what
 * the plan asks for and closes clean circuits it does not keep.
 * Not for: choosing paths or exits (app/path.c), closing dirty circuits
 * (circmgr does that when their last stream ends).
 * Any thread; a struct circpool belongs to one shard. */
#ifndef ONIONRING_APP_CIRCPOOL_H
#define ONIONRING_APP_CIRCPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/stream.h"

#define CIRCPOOL_PORTS_MAX 8  /* predicted ports remembered (the most recent win) */
#define CIRCPOOL_KEYS_MAX 16  /* isolation keys remembered (the most recent win) */
/* tor forgets a predicted port after an hour without a stream to it
 * (PREDICTED_CIRCS_RELEVANCE_TIME); keys are remembered as long. */
#define CIRCPOOL_WINDOW_NS (3600ull * 1000000000ull)
#define CIRCPOOL_DEFAULT_PORT 80 /* tor predicts port 80 before any stream */

struct circpool_port {
	uint16_t port;
	uint64_t last_ns;
};

struct circpool_key {
	struct isolation_key key;
	uint16_t port;    /* the port its last stream asked for (0: a resolve) */
	uint64_t last_ns;
};

/* Recent demand. Entries are kept most recent first. */
struct circpool {
	uint64_t window_ns;
	unsigned nports, nkeys;
	struct circpool_port ports[CIRCPOOL_PORTS_MAX];
	struct circpool_key keys[CIRCPOOL_KEYS_MAX];
};

/* One exit circuit of the shard as the planner sees it. */
struct circpool_circ {
	bool clean;          /* prebuilt and never used: counts against the bound */
	bool has_key;        /* reserved for (clean) or carrying (!clean) key */
	struct isolation_key key;
	uint32_t port_mask;  /* bit i: its exit allows ports[i].port */
	bool keep;           /* out (clean only): needed; a clean circuit not kept is surplus */
};

/* A circuit to launch: for port (its exit must allow it), reserved for
 * key when has_key (else any key may take it). */
struct circpool_launch {
	uint16_t port;
	bool has_key;
	struct isolation_key key;
};

/* Start with no demand; window_ns 0 means CIRCPOOL_WINDOW_NS. */
void circpool_init(struct circpool *p, uint64_t window_ns);
/* A stream asked for port (0: a resolve, no port) with key (borrowed) at
 * now_ns: both become the most recent. */
void circpool_note(struct circpool *p, uint16_t port, const struct isolation_key *key, uint64_t now_ns);
/* Forget ports and keys not asked for within the window before now_ns. */
void circpool_expire(struct circpool *p, uint64_t now_ns);

/* Plan with min (CircuitPoolMinSize) and max (CircuitPoolMaxSize) over the
 * n circuits c (usable exit circuits only: clean ones and ones that still
 * take new streams for their key), after circpool_expire. In order, each
 * while clean circuits kept + launches < max:
 *  1. min clean circuits any key may take, covering the predicted ports
 *     (most recent first; port 80 with none);
 *  2. for each recent key (most recent first) with no usable circuit: one
 *     clean circuit reserved for it, for its last port;
 *  3. every predicted port not yet covered: one more clean circuit any key
 *     may take.
 * Sets c[i].keep on the clean circuits the plan keeps; writes up to cap
 * launches to out and returns how many it wrote. */
size_t circpool_plan(const struct circpool *p, unsigned min, unsigned max, struct circpool_circ *c, size_t n,
		     struct circpool_launch *out, size_t cap);

#endif
