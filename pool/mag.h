/* Fixed-size buffer pools for cells and I/O chunks: per-shard magazines
 * over a shared, lock-free depot.
 *
 * One struct buf_pool per size class. Each worker shard (0..nshards-1)
 * owns a cache of two magazines (loaded and previous); buf_get/buf_put
 * touch only that cache unless it is empty/full, and then trade whole
 * magazines with the depot (a lock-free stack), so the data path takes no
 * lock. Buffers of one pool are interchangeable: any shard may put a buffer
 * that another shard got (a cross-thread free), into its OWN magazine.
 * Memory migrates back through the depot: a shard that frees more than it
 * gets pushes full magazines, a shard that gets more than it frees pops
 * them. Non-worker threads (the coordinator) use buf_get_foreign /
 * buf_put_foreign, a shared cache behind a mutex, off the data path.
 *
 * Backing memory: one virtual reservation of max_bytes (MAP_NORESERVE,
 * pages committed on first touch), carved a magazine at a time; a get past
 * the cap returns NULL and the caller must handle it. buf_pool_trim gives
 * surplus magazines to the depot (low-water mark) and surplus depot
 * magazines' pages back to the OS (madvise) where objects span whole pages.
 *
 * Not for variable-size allocation, and not a general allocator: objects
 * never move between pools. Build with -DONIONRING_POOL_FAULTS to compile
 * in buf_pool_set_fault_every (every Nth get fails). */
#ifndef ONIONRING_POOL_MAG_H
#define ONIONRING_POOL_MAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bug.h"
#include "core/compiler.h"
#include "pool/mag_types.h"

/* Snapshot of one shard's counters, or of the whole pool. */
struct buf_pool_stats {
	uint64_t hits, misses, fails, puts, exchanges, carved;
	uint64_t held;        /* objects cached in shard magazines */
	uint64_t bytes_held;  /* held * stride */
	/* Pool-wide only (zero in a shard snapshot): */
	uint64_t depot_full;  /* full magazines in the depot */
	uint64_t depot_cold;  /* full magazines whose pages went back to the OS */
	uint64_t depot_objs;  /* objects in depot magazines (full + cold) */
	uint64_t frontier;    /* objects carved from the reservation */
	uint64_t max_objs;
};

/* Return a pool of objects of obj_size bytes (cache-line aligned) for
 * nshards worker shards, holding at most max_bytes of objects; NULL on bad
 * arguments or when memory cannot be reserved. Returns owned (free with
 * buf_pool_free). Magazines hold ONIONRING_MAGAZINE_SIZE objects. Control
 * thread, before workers use it. */
struct buf_pool *buf_pool_new(size_t obj_size, unsigned nshards, size_t max_bytes);

/* Free p and all its memory (NULL-safe). Every buffer must be back or
 * never used again. No other thread may use p any more. */
void buf_pool_free(struct buf_pool *p);
#define buf_pool_free_and_null(p) do { buf_pool_free(p); (p) = NULL; } while (0)

/* Object size and the distance between objects. Any thread. */
static inline size_t buf_pool_obj_size(const struct buf_pool *p) { return p->obj_size; }
static inline size_t buf_pool_stride(const struct buf_pool *p) { return p->stride; }

/* Return the index (0..max_objs-1) of obj in p, or -1 when obj is not an
 * object of p. Borrows obj. Any thread. */
long buf_pool_index(const struct buf_pool *p, const void *obj);

void *buf_get_slow(struct buf_pool *p, unsigned shard) COLD;
void buf_put_slow(struct buf_pool *p, unsigned shard, void *obj) COLD;
bool buf_fault_now(struct buf_pool *p) COLD;

/* Single-writer counter update: no lock prefix, readers load relaxed. */
static inline void buf_stat_add(_Atomic uint64_t *c, uint64_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
		memory_order_relaxed);
}

/* Return an owned buffer of buf_pool_obj_size(p) bytes (contents
 * undefined), or NULL when the pool is at its cap (the caller must cope).
 * Owner thread of shard only (shard < nshards). */
static inline void *buf_get(struct buf_pool *p, unsigned shard)
{
	struct buf_shard *s = &p->shards[shard];
	struct mag *m = s->loaded;
	uint64_t held;

#ifdef ONIONRING_POOL_FAULTS
	if (unlikely(atomic_load_explicit(&p->fault_every, memory_order_relaxed) != 0)
	    && buf_fault_now(p)) {
		buf_stat_add(&s->c.fails, 1);
		return NULL;
	}
/* Depot internals, exposed for tests and benchmarks only. */

/* Push m (taking it from the caller) onto st, a depot stack of p. Any
 * thread. */
void mag_stack_push(struct buf_pool *p, struct mag_stack *st, struct mag *m);

/* Pop a magazine from st and return it (owned by the caller until pushed
 * back), or NULL when st is empty. Any thread. */
struct mag *mag_stack_pop(struct buf_pool *p, struct mag_stack *st);

#endif
	if (unlikely(m->count == 0))
		return buf_get_slow(p, shard);
	buf_stat_add(&s->c.hits, 1);
	held = atomic_load_explicit(&s->c.held, memory_order_relaxed) - 1;
	atomic_store_explicit(&s->c.held, held, memory_order_relaxed);
	if (held < s->low_water)
		s->low_water = held;
	return m->objs[--m->count];
}

/* Give obj back (takes ownership). obj must come from buf_get or
 * buf_get_foreign on p, from any shard or thread. Owner thread of shard
 * only (shard < nshards). */
static inline void buf_put(struct buf_pool *p, unsigned shard, void *obj)
{
	struct buf_shard *s = &p->shards[shard];
	struct mag *m = s->loaded;

	BUG_ON((uintptr_t)obj - p->base >= p->span);
	if (unlikely(m->count == p->mag_size)) {
		buf_put_slow(p, shard, obj);
		return;
	}
	m->objs[m->count++] = obj;
	buf_stat_add(&s->c.puts, 1);
	buf_stat_add(&s->c.held, 1);
}

/* buf_get / buf_put for threads that own no shard (coordinator, helpers):
 * a shared cache behind a mutex. Same ownership rules. Any thread. */
void *buf_get_foreign(struct buf_pool *p);
void buf_put_foreign(struct buf_pool *p, void *obj);

/* Return magazines that shard has not needed since the last call (its
 * low-water mark) to the depot, and move full depot magazines beyond the
 * depot limit to the cold stack, returning their pages to the OS when
 * objects span whole pages. Return the number of magazines moved. Owner
 * thread of shard only; call it from a periodic timer. */
unsigned buf_pool_trim(struct buf_pool *p, unsigned shard);

/* Keep at most n full magazines warm in the depot (default: 2 per
 * shard). Any thread. */
void buf_pool_set_depot_limit(struct buf_pool *p, uint64_t n);

/* Fill *out with shard's counters (shard == nshards: the foreign cache).
 * Any thread; values are relaxed snapshots. */
void buf_pool_shard_stats(const struct buf_pool *p, unsigned shard, struct buf_pool_stats *out);

/* Fill *out with the sum over all shards plus the depot. Any thread. */
void buf_pool_stats(const struct buf_pool *p, struct buf_pool_stats *out);

/* Make every nth buf_get/buf_get_foreign return NULL (n == 0: off).
 * Return false when the pool was built without ONIONRING_POOL_FAULTS.
 * Any thread. */
bool buf_pool_set_fault_every(struct buf_pool *p, uint64_t n);

/* Depot internals, exposed for tests and benchmarks only. */

/* Push m (taking it from the caller) onto st, a depot stack of p. Any
 * thread. */
void mag_stack_push(struct buf_pool *p, struct mag_stack *st, struct mag *m);

/* Pop a magazine from st and return it (owned by the caller until pushed
 * back), or NULL when st is empty. Any thread. */
struct mag *mag_stack_pop(struct buf_pool *p, struct mag_stack *st);

#endif
