/* Path selection (path-spec 2.2): choose the relays of a circuit, weighted
 * by bandwidth times the consensus bandwidth-weights of each position
 * (dir-spec 3.8.3 / 3.4.1 "bandwidth-weights"), honouring the family,
 * subnet, flag, exit-policy and configured node-set rules.
 *
 * For: one path_sel per directory snapshot (nodelist + configuration) that
 * precomputes each position's cumulative weights, then fast choices from
 * it. Not for: guard state (app/guard.h picks the first hop of real
 * circuits and passes it in), or building circuits. Onion-service
 * circuits are internal paths, some with a fixed last hop (req->last).
 *
 * Threads: path_sel_new runs on the coordinator; a built path_sel is
 * read-only, and path_choose may run on any thread (it reads only, plus the
 * caller's badrelays table, which must be that caller's own). */
#ifndef ONIONRING_APP_PATH_H
#define ONIONRING_APP_PATH_H

#include <stdbool.h>
#include <stdint.h>

#include "app/badrelays.h"
#include "app/nodes.h"
#include "core/config.h"

#define PATH_MAX_HOPS 3

enum path_pos {
	PATH_POS_GUARD,
	PATH_POS_MIDDLE,
	PATH_POS_EXIT,
	PATH_POS_DIR, /* one-hop BEGIN_DIR fetches */
	PATH_POS_COUNT,
};

enum path_purpose {
	PATH_PURPOSE_EXIT,       /* 3 hops, last one exits to req->port */
	PATH_PURPOSE_INTERNAL,   /* 3 hops, no exit policy needed (onion services, tests) */
	PATH_PURPOSE_DIR_ONEHOP, /* 1 hop to a directory cache */
};

enum path_err {
	PATH_OK = 0,
	PATH_ERR_NO_EXIT,        /* no relay may exit to that port under the rules */
	PATH_ERR_NO_GUARD,
	PATH_ERR_NO_MIDDLE,
	PATH_ERR_NO_DIR,
	PATH_ERR_GUARD_CONFLICT, /* the given guard conflicts with every usable exit */
};

struct path_request {
	enum path_purpose purpose;
	uint16_t port;        /* PATH_PURPOSE_EXIT: target port; 0 = any (a resolve) */
	bool need_stable;     /* long-lived streams, onion services (path-spec 2.2) */
	bool need_fast;       /* "fast" circuits: every hop has Fast */
	const struct node *guard;      /* NULL: weighted guard choice; else the fixed first hop */
	const struct node *last;       /* PATH_PURPOSE_INTERNAL: the fixed last hop (an HSDir,
					* an introduction point), or NULL: middle-weighted choice */
	const struct badrelays *bad;   /* NULL: none; relays it avoids are skipped */
	uint64_t now_ms;               /* for bad */
	/* PATH_PURPOSE_EXIT: RSA ids of exits never to choose (the exits
	 * that failed the stream being retried, app/stream_retry.h). Unlike
	 * bad, never relaxed: no exit left gives PATH_ERR_NO_EXIT. */
	const uint8_t *exclude_exits; /* n_exclude_exits ids of 20 bytes each */
	unsigned n_exclude_exits;
};

struct path {
	const struct node *hop[PATH_MAX_HOPS];
	unsigned n;
};

/* The rules that do not change per request, taken from a configuration. */
struct path_rules {
	bool enforce_distinct_subnets; /* EnforceDistinctSubnets */
	bool strict_nodes;             /* StrictNodes: ExitNodes never relaxed */
	struct nodeset *exclude;       /* ExcludeNodes (owned by the path_sel) */
	struct nodeset *exclude_exit;  /* ExcludeExitNodes */
	struct nodeset *exit_nodes;    /* ExitNodes (empty: any exit) */
};

struct path_sel;

/* Build the selector for nl (borrowed; must outlive it) under cfg
 * (borrowed, read now only). Returns owned (path_sel_free); aborts on OOM.
 * Coordinator thread. */
struct path_sel *path_sel_new(const struct nodelist *nl, const struct config *cfg);
void path_sel_free(struct path_sel *ps);

/* Choose a path for req into *out (hops front to back). Returns PATH_OK or
 * why no path is possible. Exit first, then guard, then middle (path-spec
 * 2.2). Borrows everything; any thread. */
enum path_err path_choose(const struct path_sel *ps, const struct path_request *req,
			  struct path *out);

/* Choose one relay for pos, weighted, that conflicts with none of
 * avoid[0..navoid) and meets req's dynamic rules; NULL if none. */
const struct node *path_choose_pos(const struct path_sel *ps, enum path_pos pos,
				   const struct path_request *req, const struct node *const *avoid,
				   unsigned navoid);

/* The weight of node n in position pos (0: never chosen there), as used by
 * the sampler; for guard sampling and tests. Any thread. */
uint64_t path_weight(const struct path_sel *ps, enum path_pos pos, const struct node *n);

/* True when a and b may share a circuit under ps's rules. */
bool path_compatible(const struct path_sel *ps, const struct node *a, const struct node *b);

const struct path_rules *path_sel_rules(const struct path_sel *ps);
const struct nodelist *path_sel_nodes(const struct path_sel *ps);

/* path-spec 2.2: the "long-lived" ports that need Stable circuits. */
bool path_port_needs_stable(uint16_t port);

/* A short English reason for e ("no exit allows the port"). */
const char *path_err_str(enum path_err e);

#endif
