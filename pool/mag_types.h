/* Layouts of the buffer pool (pool/mag.h), here only because the inline
 * fast paths of buf_get/buf_put need them. Callers use the functions in
 * pool/mag.h and never touch these fields. */
#ifndef ONIONRING_POOL_MAG_TYPES_H
#define ONIONRING_POOL_MAG_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

/* A magazine: a stack of up to mag_size free objects. Held by exactly one
 * shard (as loaded or previous) or sitting in one depot stack; only its
 * holder touches count and objs. */
struct mag {
	uint32_t count;
	uint32_t idx;              /* position in buf_pool.mags, fixed */
	_Atomic uint32_t next;     /* depot stack link: idx + 1 of the next, 0 = end */
	uint32_t pad_;
	void *objs[];
};

/* A depot stack (Treiber stack) of magazines, lock-free. head packs a
 * 32-bit version tag (high half) and idx + 1 of the top magazine (low
 * half, 0 = empty); the tag changes on every push and pop, so a pop that
 * raced with pop+push of the same magazine fails its CAS (no ABA).
 * Magazines are never freed while the pool lives, so reading a popped
 * magazine's link is always a read of valid memory. */
struct mag_stack {
	CACHE_ALIGNED _Atomic uint64_t head;
	_Atomic uint64_t nmags; /* >= the true size while threads race, exact at rest */
};

/* Per-shard statistics. Written by the shard's owner only (plain
 * load+store, no lock prefix); any thread may read them relaxed. */
struct buf_shard_counters {
	_Atomic uint64_t hits;      /* gets served by the loaded magazine */
	_Atomic uint64_t misses;    /* gets that took the slow path */
	_Atomic uint64_t fails;     /* gets that returned NULL */
	_Atomic uint64_t puts;
	_Atomic uint64_t exchanges; /* magazines pushed to or popped from the depot */
	_Atomic uint64_t carved;    /* fresh objects taken from the backing region */
	_Atomic uint64_t held;      /* objects cached in this shard's magazines */
};

/* One shard's cache: everything here is written by the owner thread only
 * (the foreign shard: under foreign_lock), and the struct is cache-line
 * aligned so two shards never share a line. */
struct buf_shard {
	CACHE_ALIGNED struct mag *loaded;
	struct mag *prev;
	uint64_t low_water; /* fewest objects held since the last trim */
	struct buf_shard_counters c;
};

struct buf_pool {
	/* Read-only after buf_pool_new: the fast path reads this line. */
	CACHE_ALIGNED struct buf_shard *shards; /* nshards + 1 (foreign last) */
	uintptr_t base;     /* first object */
	size_t span;        /* max_objs * stride */
	size_t obj_size;
	size_t stride;      /* obj_size rounded up to a cache line */
	uint32_t mag_size;
	uint32_t nshards;
	uint64_t max_objs;
	unsigned char *mags_mem;
	size_t mag_bytes;   /* bytes per magazine in mags_mem */
	uint32_t nmags;
	/* Depot, shared by every shard. */
	struct mag_stack full;
	struct mag_stack empty;
	struct mag_stack cold;  /* full, but their pages were returned to the OS */
	CACHE_ALIGNED _Atomic uint64_t frontier; /* objects carved so far */
	_Atomic uint64_t depot_limit;            /* full magazines kept warm */
	_Atomic uint64_t fault_every;            /* fault injection; 0 = off */
	_Atomic uint64_t fault_count;
	pthread_mutex_t foreign_lock;
};

#endif
