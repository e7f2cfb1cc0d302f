/* Nodes: one view per consensus router, joined with its microdescriptor,
 * plus the relationships path selection must respect (family, same /16)
 * and node sets parsed from ExcludeNodes / ExcludeExitNodes / ExitNodes.
 *
 * For: building that view once per directory snapshot and answering
 * "may these two relays share a circuit?" quickly. Not for: choosing relays
 * (app/path.h, app/guard.h), fetching or verifying directory documents.
 *
 * Threads: a nodelist is built by the coordinator thread and read-only
 * afterwards; once published it may be read from any thread. It borrows the
 * consensus and the microdescriptors: they must outlive it. */
#ifndef ONIONRING_APP_NODES_H
#define ONIONRING_APP_NODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/crypto.h"
#include "proto/consensus.h"
#include "proto/microdesc.h"

struct node {
	const struct consensus_router *rs; /* borrowed from the consensus */
	const struct microdesc *md;        /* NULL while we lack it */
	uint32_t idx;                      /* position in nodelist->nodes */
	uint32_t fam_off, fam_len;         /* mutual family members: nodelist->fam[] */
};

struct nodelist {
	const struct consensus *c; /* borrowed */
	struct node *nodes;        /* one per router, same order as c->routers */
	size_t n;
	uint32_t *fam; /* per node, sorted indexes of its mutual family members */
	size_t n_fam;
};

/* Build the node view of c (borrowed) joined with the microdescriptors
 * mds[0..nmds) (borrowed pointers; matched by digest; NULL entries and
 * extra ones are fine). Returns owned (nodelist_free); aborts on OOM.
 * Coordinator thread. */
struct nodelist *nodelist_new(const struct consensus *c, const struct microdesc *const *mds,
			      size_t nmds);

/* Free nl (NULL-safe). Takes ownership; the consensus is not freed. */
void nodelist_free(struct nodelist *nl);

/* Return the node with RSA identity id, or NULL. Borrows; any thread. */
const struct node *nodelist_find(const struct nodelist *nl, const uint8_t id[SHA1_LEN]);

static inline bool node_has_flags(const struct node *n, uint32_t flags)
{
	return (n->rs->flags & flags) == flags;
}

/* True when a and b are in one family: each lists the other in its
 * microdescriptor "family" line (path-spec 2.2, dir-spec 2.1.1). A node is
 * not its own family member here; compare pointers for that. Any thread. */
bool node_same_family(const struct nodelist *nl, const struct node *a, const struct node *b);

/* True when a and b share an IPv4 /16, or both have IPv6 and share a /32
 * (path-spec 2.2; tor applies the /32 to IPv6 as well). Any thread. */
bool node_same_subnet(const struct node *a, const struct node *b);

/* True when a and b may not be in one circuit: the same node, one family,
 * or (when distinct_subnets) one subnet. Any thread. */
bool node_conflicts(const struct nodelist *nl, const struct node *a, const struct node *b,
		    bool distinct_subnets);

/* True when the node's policy summary allows exits to port; port 0 means
 * "any port at all" (a resolve: the policy is not reject-all). Without a
 * microdescriptor: false. Any thread. */
bool node_allows_exit_port(const struct node *n, uint16_t port);

/* A set of relays from ExcludeNodes-style items: "$FINGERPRINT" (or without
 * "$", with an optional "~nick"/"=nick"), nicknames (case-insensitive),
 * IPv4 addresses "1.2.3.4", "1.2.3.0/24" and "1.2.*". "{cc}" country codes
 * need GeoIP, which onionring lacks: logged and ignored. */
struct nodeset;

/* Parse the items (borrowed). Returns owned (nodeset_free), never NULL;
 * an unusable item is logged (with its text) and skipped. Any thread. */
struct nodeset *nodeset_new(const struct config_lines *items);
void nodeset_free(struct nodeset *s);
/* True when s holds no usable item (NULL-safe). */
bool nodeset_is_empty(const struct nodeset *s);
/* True when n matches an item of s (NULL s: false). Any thread. */
bool nodeset_contains(const struct nodeset *s, const struct node *n);

#endif
