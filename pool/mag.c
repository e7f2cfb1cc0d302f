/* Buffer pools: construction, the depot, the magazine slow paths, trimming
 * and statistics. The fast paths are inline in pool/mag.h. Not for
 * anything that knows what the buffers hold. */
#include "pool/mag.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "onionring_build.h"

#define STACK_IDX(h) ((uint32_t)(h))
#define STACK_TAG(h) ((uint32_t)((h) >> 32))
#define STACK_HEAD(tag, idx1) (((uint64_t)(tag) << 32) | (idx1))

static struct mag *mag_at(const struct buf_pool *p, uint32_t idx)
{
	return (struct mag *)(void *)(p->mags_mem + (size_t)idx * p->mag_bytes);
}

void mag_stack_push(struct buf_pool *p, struct mag_stack *st, struct mag *m)
{
	uint64_t old = atomic_load_explicit(&st->head, memory_order_relaxed);
	uint64_t new;

	(void)p;
	/* Count before publishing and uncount after unpublishing, so nmags
	 * never drops below the true size (no transient wrap below zero). */
	atomic_fetch_add_explicit(&st->nmags, 1, memory_order_relaxed);
	do {
		atomic_store_explicit(&m->next, STACK_IDX(old), memory_order_relaxed);
		new = STACK_HEAD(STACK_TAG(old) + 1, m->idx + 1);
		/* Release pairs with the acquire in mag_stack_pop: m's count, objs
		 * and link (and the buffers' contents) are visible to whoever
		 * pops m. On failure old is reloaded; relaxed is enough because
		 * we only reuse it as the next link. */
	} while (!atomic_compare_exchange_weak_explicit(&st->head, &old, new,
			memory_order_release, memory_order_relaxed));
}

struct mag *mag_stack_pop(struct buf_pool *p, struct mag_stack *st)
{
	/* Pairs with the release CAS in mag_stack_push that published old. */
	uint64_t old = atomic_load_explicit(&st->head, memory_order_acquire);
	struct mag *m;
	uint64_t new;

	do {
		if (STACK_IDX(old) == 0)
			return NULL;
		m = mag_at(p, STACK_IDX(old) - 1);
		/* m may be popped and reused by another thread meanwhile; then
		 * the tag differs and the CAS below fails, so a stale link is
		 * never installed. Magazines are never freed while p lives. */
		new = STACK_HEAD(STACK_TAG(old) + 1,
			atomic_load_explicit(&m->next, memory_order_relaxed));
		/* Acquire (both ways) pairs with the release CAS in mag_stack_push. */
	} while (!atomic_compare_exchange_weak_explicit(&st->head, &old, new,
			memory_order_acquire, memory_order_acquire));
	atomic_fetch_sub_explicit(&st->nmags, 1, memory_order_relaxed);
	return m;
}

static void stack_init(struct mag_stack *st)
{
	atomic_init(&st->head, 0);
	atomic_init(&st->nmags, 0);
}

/* Reserve up to mag_size fresh objects and return how many (0 at the cap). */
static uint32_t frontier_take(struct buf_pool *p, uint64_t *first)
{
	uint64_t old = atomic_load_explicit(&p->frontier, memory_order_relaxed);
	uint64_t n;

	do {
		if (old >= p->max_objs)
			return 0;
		n = MIN((uint64_t)p->mag_size, p->max_objs - old);
		/* Relaxed: the range [old, old + n) is ours alone once the CAS
		 * wins; no other data is published through frontier. */
	} while (!atomic_compare_exchange_weak_explicit(&p->frontier, &old, old + n,
			memory_order_relaxed, memory_order_relaxed));
	*first = old;
	return (uint32_t)n;
}

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static bool pool_layout(struct buf_pool *p, size_t obj_size, unsigned nshards, size_t max_bytes)
{
	p->obj_size = obj_size;
	p->stride = round_up(obj_size, CACHE_LINE);
	p->mag_size = ONIONRING_MAGAZINE_SIZE;
	p->nshards = nshards;
	p->max_objs = max_bytes / p->stride;
	if (p->max_objs == 0 || p->max_objs > UINT32_MAX)
		return false;
	p->span = (size_t)p->max_objs * p->stride;
	/* Enough magazines that a put always finds an empty one: the depot
	 * holds only full or empty magazines, at most max_objs / mag_size can
	 * be full, and each cache holds two plus one in flight. */
	p->nmags = (uint32_t)((p->max_objs + p->mag_size - 1) / p->mag_size) + 3 * (nshards + 1) + 1;
	p->mag_bytes = round_up(sizeof(struct mag) + p->mag_size * sizeof(void *), CACHE_LINE);
	return true;
}

static bool pool_map(struct buf_pool *p)
{
	void *base = mmap(NULL, p->span, PROT_READ | PROT_WRITE,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (base == MAP_FAILED) {
		log_warn("buf_pool: cannot reserve %zu bytes: %s", p->span, strerror(errno));
		return false;
	}
	p->base = (uintptr_t)base;
	p->mags_mem = aligned_alloc(CACHE_LINE, (size_t)p->nmags * p->mag_bytes);
	p->shards = aligned_alloc(CACHE_LINE, (p->nshards + 1) * sizeof(struct buf_shard));
	return p->mags_mem != NULL && p->shards != NULL;
}

static void pool_fill_depot(struct buf_pool *p)
{
	uint32_t next = 0;

	for (uint32_t i = 0; i < p->nmags; i++) {
		struct mag *m = mag_at(p, i);

		m->count = 0;
		m->idx = i;
		atomic_init(&m->next, 0);
	}
	for (unsigned s = 0; s <= p->nshards; s++) {
		struct buf_shard *sh = &p->shards[s];

		memset(sh, 0, sizeof(*sh));
		sh->loaded = mag_at(p, next++);
		sh->prev = mag_at(p, next++);
	}
	while (next < p->nmags)
		mag_stack_push(p, &p->empty, mag_at(p, next++));
}

struct buf_pool *buf_pool_new(size_t obj_size, unsigned nshards, size_t max_bytes)
{
	struct buf_pool *p;

	if (obj_size == 0 || obj_size > ((size_t)1 << 30) || nshards == 0 || nshards > 4096)
		return NULL;
	p = aligned_alloc(CACHE_LINE, sizeof(*p));
	if (p == NULL)
		return NULL;
	memset(p, 0, sizeof(*p));
	p->base = (uintptr_t)MAP_FAILED;
	pthread_mutex_init(&p->foreign_lock, NULL);
	if (!pool_layout(p, obj_size, nshards, max_bytes) || !pool_map(p)) {
		buf_pool_free(p);
		return NULL;
	}
	stack_init(&p->full);
	stack_init(&p->empty);
	stack_init(&p->cold);
	atomic_init(&p->frontier, 0);
	atomic_init(&p->depot_limit, 2 * (uint64_t)nshards);
	atomic_init(&p->fault_every, 0);
	atomic_init(&p->fault_count, 0);
	pool_fill_depot(p);
	return p;
}

void buf_pool_free(struct buf_pool *p)
{
	if (p == NULL)
		return;
	if (p->base != (uintptr_t)MAP_FAILED)
		munmap((void *)p->base, p->span);
	pthread_mutex_destroy(&p->foreign_lock);
	free(p->mags_mem);
	free(p->shards);
	free(p);
}

long buf_pool_index(const struct buf_pool *p, const void *obj)
{
	uintptr_t off = (uintptr_t)obj - p->base;

	if (off >= p->span || off % p->stride != 0)
		return -1;
	return (long)(off / p->stride);
}

static void shard_held_add(struct buf_shard *s, uint64_t d)
{
	buf_stat_add(&s->c.held, d);
}

/* Pop from the loaded magazine after a slow path refilled it. */
static void *shard_take(struct buf_shard *s)
{
	uint64_t held = atomic_load_explicit(&s->c.held, memory_order_relaxed) - 1;

	atomic_store_explicit(&s->c.held, held, memory_order_relaxed);
	if (held < s->low_water)
		s->low_water = held;
	return s->loaded->objs[--s->loaded->count];
}

/* Fill the (empty) loaded magazine with fresh objects; return false at the
 * cap. */
static bool shard_carve(struct buf_pool *p, struct buf_shard *s)
{
	uint64_t first;
	uint32_t n = frontier_take(p, &first);

	if (n == 0)
		return false;
	/* Highest address at the bottom, so gets walk memory upwards. */
	for (uint32_t i = 0; i < n; i++)
		s->loaded->objs[i] = (void *)(p->base + (first + n - 1 - i) * p->stride);
	s->loaded->count = n;
	buf_stat_add(&s->c.carved, n);
	shard_held_add(s, n);
	return true;
}

void *buf_get_slow(struct buf_pool *p, unsigned shard)
{
	struct buf_shard *s = &p->shards[shard];
	struct mag *m;

	buf_stat_add(&s->c.misses, 1);
	if (s->prev->count > 0) {
		m = s->prev;
		s->prev = s->loaded;
		s->loaded = m;
		return shard_take(s);
	}
	/* Both magazines are empty: trade the loaded one for a full one. */
	m = mag_stack_pop(p, &p->full);
	if (m == NULL)
		m = mag_stack_pop(p, &p->cold);
	if (m != NULL) {
		mag_stack_push(p, &p->empty, s->loaded);
		s->loaded = m;
		buf_stat_add(&s->c.exchanges, 1);
		shard_held_add(s, m->count);
		return shard_take(s);
	}
	if (shard_carve(p, s))
		return shard_take(s);
	buf_stat_add(&s->c.fails, 1);
	return NULL;
}

/* Give the full previous magazine to the depot and take an empty one. */
static void shard_flush_prev(struct buf_pool *p, struct buf_shard *s)
{
	struct mag *e = mag_stack_pop(p, &p->empty);

	/* pool_layout sized the magazine array so this cannot run dry. */
	BUG_ON(e == NULL);
	BUG_ON(s->prev->count != p->mag_size);
	mag_stack_push(p, &p->full, s->prev);
	s->prev = e;
	buf_stat_add(&s->c.exchanges, 1);
	shard_held_add(s, -(uint64_t)p->mag_size);
}

void buf_put_slow(struct buf_pool *p, unsigned shard, void *obj)
{
	struct buf_shard *s = &p->shards[shard];
	struct mag *m;

	if (s->prev->count == p->mag_size)
		shard_flush_prev(p, s);
	m = s->prev;
	s->prev = s->loaded;
	s->loaded = m;
	m->objs[m->count++] = obj;
	buf_stat_add(&s->c.puts, 1);
	shard_held_add(s, 1);
}

void *buf_get_foreign(struct buf_pool *p)
{
	void *obj;

	pthread_mutex_lock(&p->foreign_lock);
	obj = buf_get(p, p->nshards);
	pthread_mutex_unlock(&p->foreign_lock);
	return obj;
}

void buf_put_foreign(struct buf_pool *p, void *obj)
{
	pthread_mutex_lock(&p->foreign_lock);
	buf_put(p, p->nshards, obj);
	pthread_mutex_unlock(&p->foreign_lock);
}

/* Move the coldest objects (bottom of loaded) into prev until prev is full. */
static void shard_top_up_prev(struct buf_pool *p, struct buf_shard *s)
{
	struct mag *l = s->loaded, *v = s->prev;
	uint32_t k = MIN(p->mag_size - v->count, l->count);

	memcpy(&v->objs[v->count], &l->objs[0], k * sizeof(void *));
	v->count += k;
	memmove(&l->objs[0], &l->objs[k], (l->count - k) * sizeof(void *));
	l->count -= k;
}

/* Return the pages wholly inside m's objects to the OS. Objects stay
 * addressable; the kernel gives zero pages on the next touch. */
static void mag_decommit(const struct buf_pool *p, const struct mag *m, size_t page)
{
	for (uint32_t i = 0; i < m->count; i++) {
		uintptr_t o = (uintptr_t)m->objs[i];
		uintptr_t lo = round_up(o, page);
		uintptr_t hi = (o + p->stride) / page * page;

		if (hi > lo)
			madvise((void *)lo, hi - lo, MADV_DONTNEED);
	}
}

static unsigned depot_trim(struct buf_pool *p)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t limit = atomic_load_explicit(&p->depot_limit, memory_order_relaxed);
	unsigned moved = 0;

	/* Objects smaller than a page share pages with neighbours that may be
	 * in use: nothing can be returned, so such pools stay bounded by
	 * max_bytes alone. */
	if (p->stride < page)
		return 0;
	while (atomic_load_explicit(&p->full.nmags, memory_order_relaxed) > limit) {
		struct mag *m = mag_stack_pop(p, &p->full);

		if (m == NULL)
			break;
		mag_decommit(p, m, page);
		mag_stack_push(p, &p->cold, m);
		moved++;
	}
	return moved;
}

unsigned buf_pool_trim(struct buf_pool *p, unsigned shard)
{
	struct buf_shard *s = &p->shards[shard];
	uint64_t lw = s->low_water;
	unsigned moved = 0;

	/* Objects that stayed cached through the whole interval were not
	 * needed (jemalloc's low-water idea); give back whole magazines'
	 * worth of them, the coldest first (DPDK flushes the colder half). */
	while (lw >= p->mag_size && s->loaded->count + s->prev->count >= p->mag_size) {
		shard_top_up_prev(p, s);
		shard_flush_prev(p, s);
		lw -= p->mag_size;
		moved++;
	}
	s->low_water = atomic_load_explicit(&s->c.held, memory_order_relaxed);
	return moved + depot_trim(p);
}

void buf_pool_set_depot_limit(struct buf_pool *p, uint64_t n)
{
	atomic_store_explicit(&p->depot_limit, n, memory_order_relaxed);
}

void buf_pool_shard_stats(const struct buf_pool *p, unsigned shard, struct buf_pool_stats *out)
{
	const struct buf_shard_counters *c = &p->shards[shard].c;

	memset(out, 0, sizeof(*out));
	out->hits = atomic_load_explicit(&c->hits, memory_order_relaxed);
	out->misses = atomic_load_explicit(&c->misses, memory_order_relaxed);
	out->fails = atomic_load_explicit(&c->fails, memory_order_relaxed);
	out->puts = atomic_load_explicit(&c->puts, memory_order_relaxed);
	out->exchanges = atomic_load_explicit(&c->exchanges, memory_order_relaxed);
	out->carved = atomic_load_explicit(&c->carved, memory_order_relaxed);
	out->held = atomic_load_explicit(&c->held, memory_order_relaxed);
	out->bytes_held = out->held * p->stride;
}

void buf_pool_stats(const struct buf_pool *p, struct buf_pool_stats *out)
{
	struct buf_pool_stats one;

	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i <= p->nshards; i++) {
		buf_pool_shard_stats(p, i, &one);
		out->hits += one.hits;
		out->misses += one.misses;
		out->fails += one.fails;
		out->puts += one.puts;
		out->exchanges += one.exchanges;
		out->carved += one.carved;
		out->held += one.held;
	}
	out->bytes_held = out->held * p->stride;
	out->depot_full = atomic_load_explicit(&p->full.nmags, memory_order_relaxed);
	out->depot_cold = atomic_load_explicit(&p->cold.nmags, memory_order_relaxed);
	out->depot_objs = (out->depot_full + out->depot_cold) * p->mag_size;
	out->frontier = atomic_load_explicit(&p->frontier, memory_order_relaxed);
	out->max_objs = p->max_objs;
}

bool buf_fault_now(struct buf_pool *p)
{
	uint64_t every = atomic_load_explicit(&p->fault_every, memory_order_relaxed);
	/* Relaxed: a counter only; no data is published through it. */
	uint64_t n = atomic_fetch_add_explicit(&p->fault_count, 1, memory_order_relaxed) + 1;

	return every != 0 && n % every == 0;
}

bool buf_pool_set_fault_every(struct buf_pool *p, uint64_t n)
{
#ifdef ONIONRING_POOL_FAULTS
	atomic_store_explicit(&p->fault_count, 0, memory_order_relaxed);
	atomic_store_explicit(&p->fault_every, n, memory_order_relaxed);
	return true;
#else
	(void)p;
	(void)n;
	return false;
#endif
}
