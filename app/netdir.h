/* The directory snapshot: one verified microdesc consensus, the
 * microdescriptors matched to its routers, and the node view built from
 * them, immutable once published and reference-counted. Workers read the
 * current snapshot without locks (netdir_acquire / netdir_release); the
 * directory manager swaps in a new one atomically.
 *
 * For: everything that reads the directory (path selection, /health,
 * metrics). Not for: fetching, verifying or caching documents
 * (app/dirmgr.h) or choosing relays (app/path.h).
 *
 * Lifetime scheme (split reference counting): a slot holds one 64-bit word
 * packing the current snapshot's pointer (low 48 bits, user-space x86-64 and
 * arm64 pointers fit) and an "outer" count of readers that have loaded the
 * pointer but not yet taken an inner reference. A reader adds 1 to the outer
 * count (which pins the snapshot), takes an inner reference, then gives its
 * outer count back with a CAS if the slot still points to the same snapshot;
 * if it was swapped meanwhile, the swapper transferred that count to the
 * inner count for us, so we drop one inner reference instead. The swapper
 * adds the pending outer count to the old snapshot's inner count BEFORE it
 * swaps (one CAS on the whole word, retried, with the addition undone, if a
 * reader pinned or unpinned in between), so a reader that sees the new
 * pointer also sees its pin counted and can never drop the count to zero
 * early. The snapshot is freed when its inner count reaches zero. No reader
 * ever blocks or waits for the coordinator; see netdir.c for each atomic's
 * pair. (test_netdir's 10,000-swap race found the transfer-after-swap
 * variant's double free under ASan/TSan.) */
#ifndef ONIONRING_APP_NETDIR_H
#define ONIONRING_APP_NETDIR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "app/nodes.h"
#include "proto/consensus.h"
#include "proto/microdesc.h"

/* A parsed microdescriptor batch shared between snapshots (a refresh keeps
 * the microdescs it already had). Reference-counted; any thread may drop a
 * reference. */
struct md_batch_ref {
	_Atomic long refs;
	struct microdesc_batch *b; /* owned */
};

/* Wrap b (takes ownership); returns owned with one reference. */
struct md_batch_ref *md_batch_ref_new(struct microdesc_batch *b);
/* Add a reference (the caller already holds one). Any thread. */
void md_batch_ref_get(struct md_batch_ref *r);
/* Drop a reference; the last one frees the batch (NULL-safe). Any thread. */
void md_batch_ref_put(struct md_batch_ref *r);

/* A verified consensus shared between snapshots (each microdescriptor
 * arrival makes a new snapshot of the same consensus). Reference-counted;
 * any thread may drop a reference. */
struct consensus_ref {
	_Atomic long refs;
	struct consensus *c; /* owned */
};

/* Wrap c (takes ownership); returns owned with one reference. */
struct consensus_ref *consensus_ref_new(struct consensus *c);
void consensus_ref_get(struct consensus_ref *r);
/* Drop a reference; the last one frees the consensus (NULL-safe). */
void consensus_ref_put(struct consensus_ref *r);

/* tor's "min_paths_for_circs_pct" consensus parameter (param-spec): the
 * share of possible paths (guard x middle x exit bandwidth with a
 * microdescriptor) needed before circuits are built. */
#define NETDIR_MIN_PATHS_PCT_DEFAULT 60
#define NETDIR_MIN_PATHS_PCT_MIN 25
#define NETDIR_MIN_PATHS_PCT_MAX 95

struct netdir {
	_Atomic long refs;
	uint64_t generation;             /* unique per snapshot (process-wide counter) */
	const struct consensus *c;       /* cref->c */
	struct consensus_ref *cref;      /* owned reference */
	const struct microdesc **md;     /* c->n_routers entries; NULL: missing */
	size_t n_md;                     /* non-NULL entries of md */
	struct md_batch_ref **batches;   /* owned references */
	size_t n_batches;
	struct nodelist *nodes;          /* owned; borrows c and the batches */
	double frac_paths;               /* guard x middle x exit share, 0..1 */
	bool usable;                     /* frac_paths >= min_paths_for_circs_pct */
};

/* Build a snapshot of cr (borrowed; the snapshot takes a reference) with the microdescriptors from
 * the batches[0..n) (borrowed; the snapshot takes its own references to
 * those it uses) whose digests the consensus lists. Returns owned with one
 * reference. Coordinator thread. */
struct netdir *netdir_new(struct consensus_ref *cr, struct md_batch_ref *const *batches, size_t n);

/* Add a reference to d (the caller holds one). Any thread. */
void netdir_ref(struct netdir *d);
/* Drop a reference (NULL-safe); the last frees it. Any thread; never blocks. */
void netdir_release(struct netdir *d);

/* The microdescriptor of router i, or NULL. */
static inline const struct microdesc *netdir_md(const struct netdir *d, size_t i)
{
	return d->md[i];
}

/* Consensus parameter (param-spec.txt) clamped to [min, max], def if unset. */
int32_t netdir_param(const struct netdir *d, const char *name, int32_t def, int32_t min, int32_t max);
/* The bandwidth-weights line (present == false when the consensus has none). */
const struct consensus_bw_weights *netdir_bw_weights(const struct netdir *d);

static inline time_t netdir_valid_after(const struct netdir *d) { return d->c->valid_after; }
static inline time_t netdir_fresh_until(const struct netdir *d) { return d->c->fresh_until; }
static inline time_t netdir_valid_until(const struct netdir *d) { return d->c->valid_until; }

/* True when circuits may be built with d at now: enough microdescriptors
 * (d->usable) and the consensus is live or reasonably live (dir-spec 5.1).
 * Any thread. */
bool netdir_is_usable(const struct netdir *d, time_t now);

/* Compute the fraction of paths with microdescriptors (tor's rule, see
 * netdir.c) for c with md[] per router. Pure; any thread. */
double netdir_frac_paths(const struct consensus *c, const struct microdesc *const *md);

/* The publication slot (see the top of this file). Zero-initialised is an
 * empty slot. */
struct netdir_slot {
	_Atomic uint64_t word;
};

/* Return the current snapshot with a reference the caller owns (release
 * with netdir_release), or NULL if none was published. Any thread;
 * lock-free, never blocks. */
struct netdir *netdir_slot_acquire(struct netdir_slot *s);

/* Publish d (takes ownership of the caller's reference; NULL empties the
 * slot) and drop the slot's reference to the previous snapshot. Readers
 * holding the old one keep it until they release it. One publisher at a
 * time (the coordinator thread). Never publish a snapshot that was
 * published before (the outer count is per publication: re-publishing the
 * same pointer would be an ABA); build a new one with netdir_new. */
void netdir_slot_publish(struct netdir_slot *s, struct netdir *d);

/* The process-wide slot the directory manager publishes into. */
struct netdir_slot *netdir_global(void);

/* netdir_slot_acquire(netdir_global()). Any thread. */
struct netdir *netdir_acquire(void);

#endif
