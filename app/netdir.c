/* The directory snapshot and its lock-free publication slot (see netdir.h
 * for the scheme). Not for fetching or verifying documents. */
#include "app/netdir.h"

#include <stdlib.h>
#include <string.h>

#include "core/bug.h"

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p)
		abort(); /* control plane: OOM aborts (STYLE.md) */
	return p;
}

/* --- shared microdescriptor batches --------------------------------------- */

struct md_batch_ref *md_batch_ref_new(struct microdesc_batch *b)
{
	struct md_batch_ref *r = xcalloc(1, sizeof(*r));

	r->b = b;
	atomic_init(&r->refs, 1);
	return r;
}

void md_batch_ref_get(struct md_batch_ref *r)
{
	/* Relaxed: the caller already holds a reference, so the object cannot
	 * go away; ordering comes from how the new holder receives it. */
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void md_batch_ref_put(struct md_batch_ref *r)
{
	if (!r)
		return;
	/* acq_rel: the release half orders our reads of the batch before the
	 * decrement; the acquire half, on whoever drops the last reference,
	 * pairs with every other holder's release so the free comes after all
	 * their reads. (An acquire fence would do; TSan does not model fences.) */
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
		return;
	microdesc_batch_free(r->b);
	free(r);
}

/* --- shared consensus ------------------------------------------------------ */

struct consensus_ref *consensus_ref_new(struct consensus *c)
{
	struct consensus_ref *r = xcalloc(1, sizeof(*r));

	r->c = c;
	atomic_init(&r->refs, 1);
	return r;
}

void consensus_ref_get(struct consensus_ref *r)
{
	/* Relaxed: see md_batch_ref_get. */
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void consensus_ref_put(struct consensus_ref *r)
{
	if (!r)
		return;
	/* acq_rel: pairs with the other holders' decrements (md_batch_ref_put). */
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
		return;
	consensus_free(r->c);
	free(r);
}

/* --- building a snapshot --------------------------------------------------- */

struct md_index {
	const struct microdesc *md;
	size_t batch;
};

static int cmp_index(const void *a, const void *b)
{
	return memcmp(((const struct md_index *)a)->md->digest, ((const struct md_index *)b)->md->digest,
		      SHA256_LEN);
}

static int cmp_key(const void *key, const void *elt)
{
	return memcmp(key, ((const struct md_index *)elt)->md->digest, SHA256_LEN);
}

/* Fill d->md[] from the batches; take references to the batches used. */
static void join(struct netdir *d, struct md_batch_ref *const *batches, size_t n)
{
	size_t total = 0, k = 0;
	struct md_index *ix;
	bool *used = xcalloc(n, sizeof(bool));

	for (size_t i = 0; i < n; i++)
		total += batches[i]->b->n;
	ix = xcalloc(total, sizeof(*ix));
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < batches[i]->b->n; j++)
			ix[k++] = (struct md_index){&batches[i]->b->mds[j], i};
	qsort(ix, total, sizeof(*ix), cmp_index);
	d->md = xcalloc(d->c->n_routers, sizeof(*d->md));
	for (size_t r = 0; r < d->c->n_routers; r++) {
		const struct md_index *hit =
			total ? bsearch(d->c->routers[r].md_digest, ix, total, sizeof(*ix), cmp_key) : NULL;
		if (!hit)
			continue;
		d->md[r] = hit->md;
		d->n_md++;
		used[hit->batch] = true;
	}
	d->batches = xcalloc(n, sizeof(*d->batches));
	for (size_t i = 0; i < n; i++) {
		if (!used[i])
			continue;
		md_batch_ref_get(batches[i]);
		d->batches[d->n_batches++] = batches[i];
	}
	free(ix);
	free(used);
}

struct netdir *netdir_new(struct consensus_ref *cr, struct md_batch_ref *const *batches, size_t n)
{
	struct netdir *d = xcalloc(1, sizeof(*d));
	const struct consensus *c = cr->c;
	int32_t pct;

	static _Atomic uint64_t next_generation = 1;

	/* Relaxed: only uniqueness matters (views compare generations). */
	d->generation = atomic_fetch_add_explicit(&next_generation, 1, memory_order_relaxed);
	consensus_ref_get(cr);
	d->cref = cr;
	d->c = c;
	join(d, batches, n);
	d->nodes = nodelist_new(c, d->md, c->n_routers);
	d->frac_paths = netdir_frac_paths(c, d->md);
	pct = consensus_param(c, "min_paths_for_circs_pct", NETDIR_MIN_PATHS_PCT_DEFAULT,
			      NETDIR_MIN_PATHS_PCT_MIN, NETDIR_MIN_PATHS_PCT_MAX);
	d->usable = d->frac_paths * 100.0 >= (double)pct;
	atomic_init(&d->refs, 1);
	return d;
}

static void netdir_free(struct netdir *d)
{
	nodelist_free(d->nodes);
	for (size_t i = 0; i < d->n_batches; i++)
		md_batch_ref_put(d->batches[i]);
	free(d->batches);
	free(d->md);
	consensus_ref_put(d->cref);
	free(d);
}

void netdir_ref(struct netdir *d)
{
	/* Relaxed: the caller holds a reference already (see md_batch_ref_get). */
	atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
}

void netdir_release(struct netdir *d)
{
	if (!d)
		return;
	/* acq_rel: pairs with every other holder's decrement (and with the
	 * publisher's transfer in netdir_slot_publish), so all readers'
	 * accesses happen before the free. */
	if (atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
		return;
	netdir_free(d);
}

/* --- accessors -------------------------------------------------------------- */

int32_t netdir_param(const struct netdir *d, const char *name, int32_t def, int32_t min, int32_t max)
{
	return consensus_param(d->c, name, def, min, max);
}

const struct consensus_bw_weights *netdir_bw_weights(const struct netdir *d)
{
	return &d->c->weights;
}

bool netdir_is_usable(const struct netdir *d, time_t now)
{
	enum consensus_liveness l;

	if (!d || !d->usable)
		return false;
	l = consensus_liveness(d->c, now);
	return l == CONSENSUS_LIVE || l == CONSENSUS_REASONABLY_LIVE;
}

/* Share of the bandwidth (or, when every weight is 0, of the count) of the
 * routers with all of want_flags (and none of bad_flags) that have a
 * microdescriptor; -1 when there are none such. */
static double frac_with_md(const struct consensus *c, const struct microdesc *const *md,
			   uint32_t want_flags, uint32_t bad_flags)
{
	uint64_t bw_all = 0, bw_have = 0, n_all = 0, n_have = 0;

	for (size_t i = 0; i < c->n_routers; i++) {
		const struct consensus_router *r = &c->routers[i];

		if ((r->flags & want_flags) != want_flags || (r->flags & bad_flags))
			continue;
		n_all++;
		bw_all += r->bandwidth;
		if (md[i]) {
			n_have++;
			bw_have += r->bandwidth;
		}
	}
	if (n_all == 0)
		return -1.0;
	if (bw_all == 0)
		return (double)n_have / (double)n_all;
	return (double)bw_have / (double)bw_all;
}

/* tor's rule (nodelist.c, compute_frac_paths_available; control-spec 5.5
 * "loading_descriptors" says 25%..95%): the product of the fractions of
 * guard, middle and exit bandwidth whose microdescriptors we have. With no
 * exit in the consensus tor counts exits as 1 (internal paths only). We
 * weight by the consensus bandwidth without the position weights tor
 * applies: slightly more conservative where Wgg < 1. */
double netdir_frac_paths(const struct consensus *c, const struct microdesc *const *md)
{
	const uint32_t run = RFLAG_RUNNING | RFLAG_VALID;
	double g = frac_with_md(c, md, run | RFLAG_GUARD, 0);
	double m = frac_with_md(c, md, run, 0);
	double e = frac_with_md(c, md, run | RFLAG_EXIT, RFLAG_BADEXIT);

	if (m < 0)
		return 0.0; /* no running relay at all */
	if (g < 0)
		g = m; /* no Guard flag (tiny test networks): any relay may be first */
	if (e < 0)
		e = 1.0;
	return g * m * e;
}

/* --- the publication slot ------------------------------------------------------ */

#define SLOT_PTR_BITS 48
#define SLOT_PTR_MASK ((UINT64_C(1) << SLOT_PTR_BITS) - 1)
#define SLOT_ONE_OUTER (UINT64_C(1) << SLOT_PTR_BITS)

static inline struct netdir *slot_ptr(uint64_t w)
{
	return (struct netdir *)(uintptr_t)(w & SLOT_PTR_MASK);
}

struct netdir *netdir_slot_acquire(struct netdir_slot *s)
{
	/* Acquire: pairs with the release half of the exchange in
	 * netdir_slot_publish, so the snapshot's contents are visible. The
	 * outer count we add pins the snapshot (the publisher transfers it). */
	uint64_t w = atomic_fetch_add_explicit(&s->word, SLOT_ONE_OUTER, memory_order_acquire);
	struct netdir *d = slot_ptr(w);

	if (!d) {
		/* Nothing published: give the outer count back. A publish in
		 * between transferred our count to nobody (NULL had no refs),
		 * so only undo it while the slot still reads NULL. */
		uint64_t cur = atomic_load_explicit(&s->word, memory_order_relaxed);
		while (slot_ptr(cur) == NULL &&
		       !atomic_compare_exchange_weak_explicit(&s->word, &cur, cur - SLOT_ONE_OUTER,
							      memory_order_relaxed, memory_order_relaxed))
			;
		return NULL;
	}
	/* Our inner reference. Relaxed is enough: the pinned outer count
	 * keeps d alive, and the acq_rel decrement in netdir_release orders
	 * our use before any free. */
	atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
	/* Give the outer count back if d is still current. Release pairs with
	 * the publisher's acquire load / failed CAS: it then sees the word
	 * without our pin and does not transfer it. Acquire (on the load and
	 * on a failed CAS) pairs with the publisher's successful CAS below, so
	 * if we see another pointer we also see its transfer of our pin. */
	uint64_t cur = atomic_load_explicit(&s->word, memory_order_acquire);
	while (slot_ptr(cur) == d) {
		if (atomic_compare_exchange_weak_explicit(&s->word, &cur, cur - SLOT_ONE_OUTER,
							  memory_order_release, memory_order_acquire))
			return d;
	}
	/* Swapped: the publisher added our pin to d->refs BEFORE its swap
	 * became visible to us, so we hold two inner references; drop one
	 * (not the last: we keep the other). */
	atomic_fetch_sub_explicit(&d->refs, 1, memory_order_relaxed);
	return d;
}

void netdir_slot_publish(struct netdir_slot *s, struct netdir *d)
{
	uint64_t nw = (uint64_t)(uintptr_t)d;
	/* Acquire: pairs with readers' release CAS (their unpins). */
	uint64_t old = atomic_load_explicit(&s->word, memory_order_acquire);
	struct netdir *od;

	BUG_ON((nw & ~SLOT_PTR_MASK) != 0);
	for (;;) {
		long outer = (long)(old >> SLOT_PTR_BITS);

		od = slot_ptr(old);
		/* Transfer the pending pins to the inner count FIRST, so a
		 * reader that sees the new pointer also sees its pin counted
		 * (a transfer after the swap let a reader drop its extra
		 * reference early and free a snapshot still owed one). */
		if (od && outer)
			atomic_fetch_add_explicit(&od->refs, outer, memory_order_relaxed);
		/* acq_rel on success: release publishes d's contents (readers'
		 * acquire fetch_add) and our transfer (readers' acquire load);
		 * acquire pairs with unpins. On failure (a reader pinned or
		 * unpinned meanwhile) undo the transfer and retry; the undo
		 * cannot reach zero: od still holds the slot's reference. */
		if (atomic_compare_exchange_strong_explicit(&s->word, &old, nw, memory_order_acq_rel,
							    memory_order_acquire))
			break;
		if (od && outer)
			atomic_fetch_sub_explicit(&od->refs, outer, memory_order_relaxed);
	}
	/* Drop the slot's own reference to the old snapshot. Readers that
	 * pinned NULL took no reference: nothing to do for them. */
	if (od)
		netdir_release(od);
}

static struct netdir_slot global_slot;

struct netdir_slot *netdir_global(void)
{
	return &global_slot;
}

struct netdir *netdir_acquire(void)
{
	return netdir_slot_acquire(&global_slot);
}
