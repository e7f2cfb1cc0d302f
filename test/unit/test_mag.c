/* Buffer pool (pool/mag.h): every buffer handed out is distinct and inside
 * the pool, none is lost after everything is given back (the pool's
 * accounting balances), the cap gives NULL, trimming moves surplus to the
 * depot and pages to the OS, and producer/consumer threads on different
 * shards neither lose nor duplicate a buffer. Built twice: test_mag, and
 * test_mag_faults with ONIONRING_POOL_FAULTS (fault injection). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/spsc.h"
#include "onionring_build.h"
#include "pool/mag.h"

#define CELL 514
#define MAG ONIONRING_MAGAZINE_SIZE

static struct buf_pool_stats stats_of(struct buf_pool *p)
{
	struct buf_pool_stats st;

	buf_pool_stats(p, &st);
	return st;
}

/* Every carved object is either cached in a shard, in the depot, or out. */
static void assert_accounting(struct buf_pool *p, uint64_t outstanding)
{
	struct buf_pool_stats st = stats_of(p);

	assert_int_equal(st.held + st.depot_objs + outstanding, st.frontier);
	assert_int_equal(st.carved, st.frontier);
	assert_true(st.frontier <= st.max_objs);
}

/* Get until NULL from shard, checking each object is new, in range and
 * aligned; return how many were handed out (all stored in objs). */
static size_t get_all(struct buf_pool *p, unsigned shard, void **objs, uint8_t *seen, size_t max)
{
	size_t n = 0;
	void *o;

	while (n < max && (o = buf_get(p, shard)) != NULL) {
		long idx = buf_pool_index(p, o);

		assert_true(idx >= 0);
		assert_int_equal(seen[idx], 0);
		seen[idx] = 1;
		assert_int_equal((uintptr_t)o % CACHE_LINE, 0);
		memset(o, 0xa5, buf_pool_obj_size(p));
		objs[n++] = o;
	}
	return n;
}

static void test_buf_pool_new_rejects_bad_arguments(void **state)
{
	(void)state;
	assert_null(buf_pool_new(0, 1, 1 << 20));
	assert_null(buf_pool_new(CELL, 0, 1 << 20));
	assert_null(buf_pool_new(CELL, 1, 100)); /* smaller than one object */
	assert_null(buf_pool_new(SIZE_MAX, 1, 1 << 20));
	assert_null(buf_pool_new(CELL, 5000, 1 << 20));
	buf_pool_free(NULL);
}

static void test_buf_get_hands_out_each_object_once_until_the_cap(void **state)
{
	const size_t nobj = 1000;
	struct buf_pool *p = buf_pool_new(CELL, 1, nobj * 576);
	void **objs = calloc(nobj + 1, sizeof(void *));
	uint8_t *seen = calloc(nobj, 1);

	(void)state;
	assert_non_null(p);
	assert_int_equal(buf_pool_stride(p), 576);
	assert_int_equal(get_all(p, 0, objs, seen, nobj + 1), nobj);
	assert_null(buf_get(p, 0));
	assert_int_equal(stats_of(p).fails, 2);
	assert_accounting(p, nobj);
	for (size_t i = 0; i < nobj; i++)
		buf_put(p, 0, objs[i]);
	assert_accounting(p, 0);
	/* Everything given back can be had again, still each object once. */
	memset(seen, 0, nobj);
	assert_int_equal(get_all(p, 0, objs, seen, nobj + 1), nobj);
	assert_int_equal(stats_of(p).frontier, nobj);
	for (size_t i = 0; i < nobj; i++)
		buf_put(p, 0, objs[i]);
	assert_accounting(p, 0);
	buf_pool_free(p);
	free(objs);
	free(seen);
}

static void test_buf_get_put_pairs_reuse_without_carving(void **state)
{
	struct buf_pool *p = buf_pool_new(CELL, 2, 1 << 20);
	struct buf_pool_stats st;

	(void)state;
	for (int i = 0; i < 100000; i++) {
		void *a = buf_get(p, 1), *b = buf_get(p, 1);

		assert_non_null(a);
		assert_non_null(b);
		assert_ptr_not_equal(a, b);
		buf_put(p, 1, b);
		buf_put(p, 1, a);
	}
	st = stats_of(p);
	assert_int_equal(st.frontier, MAG);
	assert_int_equal(st.exchanges, 0);
	assert_int_equal(st.hits + st.misses, 200000);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.puts, 200000);
	assert_accounting(p, 0);
	buf_pool_free(p);
}

static void test_buf_put_on_another_shard_migrates_through_the_depot(void **state)
{
	const size_t n = 10 * MAG;
	struct buf_pool *p = buf_pool_new(CELL, 2, 1 << 22);
	void **objs = calloc(n, sizeof(void *));
	uint8_t *seen = calloc(stats_of(p).max_objs, 1);
	struct buf_pool_stats s1;

	(void)state;
	for (int round = 0; round < 5; round++) {
		memset(seen, 0, stats_of(p).max_objs);
		assert_int_equal(get_all(p, 0, objs, seen, n), n);
		for (size_t i = 0; i < n; i++)
			buf_put(p, 1, objs[i]);
		assert_accounting(p, 0);
	}
	buf_pool_shard_stats(p, 1, &s1);
	assert_true(s1.exchanges > 0);
	assert_int_equal(s1.held, 2 * MAG); /* the rest went to the depot */
	/* Shard 0 reused what shard 1 pushed: only shard 1's own two
	 * magazines are missing from the depot each round. */
	assert_int_equal(stats_of(p).frontier, n + 2 * MAG);
	buf_pool_free(p);
	free(objs);
	free(seen);
}

static void test_buf_get_returns_null_at_cap_and_recovers_after_put(void **state)
{
	struct buf_pool *p = buf_pool_new(16384, 1, 3 * 16384);
	void *a = buf_get(p, 0), *b = buf_get(p, 0), *c = buf_get(p, 0);

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_null(buf_get(p, 0));
	assert_null(buf_get(p, 0));
	buf_put(p, 0, b);
	assert_ptr_equal(buf_get(p, 0), b);
	assert_null(buf_get(p, 0));
	assert_int_equal(stats_of(p).fails, 3);
	buf_put(p, 0, a);
	buf_put(p, 0, b);
	buf_put(p, 0, c);
	assert_accounting(p, 0);
	buf_pool_free(p);
}

static void test_buf_pool_index_rejects_pointers_not_from_the_pool(void **state)
{
	struct buf_pool *p = buf_pool_new(CELL, 1, 1 << 20);
	char *o = buf_get(p, 0);
	int local;

	(void)state;
	assert_int_equal(buf_pool_index(p, o), 0);
	assert_int_equal(buf_pool_index(p, o + 1), -1);
	assert_int_equal(buf_pool_index(p, &local), -1);
	assert_int_equal(buf_pool_index(p, o + buf_pool_stride(p)), 1);
	buf_put(p, 0, o);
	buf_pool_free(p);
}

static void test_buf_trim_gives_unneeded_magazines_to_the_depot(void **state)
{
	struct buf_pool *p = buf_pool_new(CELL, 1, 1 << 20);
	void *objs[4 * MAG];
	uint8_t *seen = calloc(stats_of(p).max_objs, 1);

	(void)state;
	assert_int_equal(get_all(p, 0, objs, seen, 4 * MAG), 4 * MAG);
	for (size_t i = 0; i < 4 * MAG; i++)
		buf_put(p, 0, objs[i]);
	assert_int_equal(stats_of(p).held, 2 * MAG);
	/* The first trim only starts the interval; nothing was measured. */
	assert_int_equal(buf_pool_trim(p, 0), 0);
	/* One get, then idle: all but one object stayed cached all along. */
	buf_put(p, 0, buf_get(p, 0));
	assert_int_equal(buf_pool_trim(p, 0), 1);
	assert_int_equal(stats_of(p).held, MAG);
	assert_int_equal(stats_of(p).depot_full, 3);
	assert_int_equal(buf_pool_trim(p, 0), 1);
	assert_int_equal(stats_of(p).held, 0);
	assert_int_equal(buf_pool_trim(p, 0), 0);
	assert_accounting(p, 0);
	/* Busy shards keep their magazines. */
	memset(seen, 0, stats_of(p).max_objs);
	assert_int_equal(get_all(p, 0, objs, seen, 4 * MAG), 4 * MAG);
	assert_int_equal(stats_of(p).frontier, 4 * MAG);
	for (size_t i = 0; i < 4 * MAG; i++)
		buf_put(p, 0, objs[i]);
	buf_pool_trim(p, 0);
	memset(seen, 0, stats_of(p).max_objs);
	assert_int_equal(get_all(p, 0, objs, seen, 2 * MAG), 2 * MAG);
	for (size_t i = 0; i < 2 * MAG; i++)
		buf_put(p, 0, objs[i]);
	assert_int_equal(buf_pool_trim(p, 0), 0);
	buf_pool_free(p);
	free(seen);
}

static bool page_resident(void *addr)
{
	unsigned char v = 0;

	assert_int_equal(mincore(addr, 1, &v), 0);
	return (v & 1) != 0;
}

static void test_buf_trim_returns_pages_of_surplus_depot_magazines_to_the_os(void **state)
{
	const size_t n = 4 * MAG;
	struct buf_pool *p = buf_pool_new(16384, 1, n * 16384);
	void **objs = calloc(n, sizeof(void *));
	uint8_t *seen = calloc(n, 1);
	struct buf_pool_stats st;
	size_t cold = 0;

	(void)state;
	buf_pool_set_depot_limit(p, 0);
	assert_int_equal(get_all(p, 0, objs, seen, n), n);
	for (size_t i = 0; i < n; i++)
		assert_true(page_resident(objs[i]));
	for (size_t i = 0; i < n; i++)
		buf_put(p, 0, objs[i]);
	buf_pool_trim(p, 0);
	st = stats_of(p);
	assert_int_equal(st.depot_full, 0);
	assert_int_equal(st.depot_cold, 2);
	for (size_t i = 0; i < n; i++)
		cold += !page_resident(objs[i]);
	assert_int_equal(cold, 2 * MAG);
	/* Cold objects are handed out again (zero-filled by the kernel)
	 * before anything new is carved. */
	memset(seen, 0, n);
	assert_int_equal(get_all(p, 0, objs, seen, n), n);
	assert_int_equal(stats_of(p).frontier, n);
	for (size_t i = 0; i < n; i++)
		buf_put(p, 0, objs[i]);
	assert_accounting(p, 0);
	buf_pool_free(p);
	free(objs);
	free(seen);
}

static void test_buf_foreign_put_and_get_share_the_depot(void **state)
{
	struct buf_pool *p = buf_pool_new(CELL, 1, 1 << 20);
	void *objs[3 * MAG];
	uint8_t *seen = calloc(stats_of(p).max_objs, 1);

	(void)state;
	assert_int_equal(get_all(p, 0, objs, seen, 3 * MAG), 3 * MAG);
	for (size_t i = 0; i < 3 * MAG; i++)
		buf_put_foreign(p, objs[i]);
	assert_int_equal(stats_of(p).depot_full, 1);
	for (size_t i = 0; i < 3 * MAG; i++) {
		objs[i] = buf_get_foreign(p);
		assert_non_null(objs[i]);
	}
	assert_int_equal(stats_of(p).frontier, 3 * MAG);
	for (size_t i = 0; i < 3 * MAG; i++)
		buf_put(p, 0, objs[i]);
	assert_accounting(p, 0);
	buf_pool_free(p);
	free(seen);
}

/* --- Producer on shard 0, consumer on shard 1 (or a foreign thread). --- */

struct stress {
	struct buf_pool *p;
	struct spsc *ring;
	_Atomic uint8_t *out; /* 1 while the object is handed out */
	uint64_t n;           /* objects to pass */
	bool foreign;         /* consumer uses buf_put_foreign */
	uint64_t nulls;       /* gets that returned NULL (producer) */
	uint64_t bad_prod;    /* duplicates seen by the producer */
	uint64_t bad_cons;    /* stamp mismatches seen by the consumer */
	uint64_t consumed;
	uint64_t deadline_ns;
};

static void *stress_producer(void *arg)
{
	struct stress *s = arg;

	for (uint64_t i = 0; i < s->n && clock_mono_ns() < s->deadline_ns;) {
		uint64_t *o = buf_get(s->p, 0);
		long idx;

		if (o == NULL) { /* at the cap, or an injected fault: retry */
			s->nulls++;
			sched_yield();
			continue;
		}
		idx = buf_pool_index(s->p, o);
		if (idx < 0 || atomic_exchange_explicit(&s->out[idx], 1, memory_order_relaxed) != 0)
			s->bad_prod++;
		o[0] = i;
		o[1] = (uint64_t)idx;
		while (!spsc_push(s->ring, o) && clock_mono_ns() < s->deadline_ns)
			sched_yield();
		i++;
	}
	return NULL;
}

static void *stress_consumer(void *arg)
{
	struct stress *s = arg;
	void *v;

	while (s->consumed < s->n && clock_mono_ns() < s->deadline_ns) {
		uint64_t *o;

		if (!spsc_pop(s->ring, &v)) {
			sched_yield();
			continue;
		}
		o = v;
		if (o[0] != s->consumed || (long)o[1] != buf_pool_index(s->p, o)
		    || atomic_exchange_explicit(&s->out[o[1]], 0, memory_order_relaxed) != 1)
			s->bad_cons++;
		s->consumed++;
		if (s->foreign)
			buf_put_foreign(s->p, o);
		else
			buf_put(s->p, 1, o);
		if ((s->consumed & 1023) == 0 && !s->foreign)
			buf_pool_trim(s->p, 1);
	}
	return NULL;
}

static void run_stress(size_t max_objs, bool foreign, uint64_t fault_every)
{
	struct stress s = { 0 };
	pthread_t prod, cons;
	struct buf_pool_stats st;

	s.p = buf_pool_new(CELL, 2, max_objs * 576);
	s.ring = spsc_new(256);
	s.out = calloc(max_objs, 1);
	s.n = 200000;
	s.foreign = foreign;
	s.deadline_ns = clock_mono_ns() + 60ull * 1000000000ull;
	assert_non_null(s.p);
	if (fault_every != 0)
		assert_true(buf_pool_set_fault_every(s.p, fault_every));
	assert_int_equal(pthread_create(&prod, NULL, stress_producer, &s), 0);
	assert_int_equal(pthread_create(&cons, NULL, stress_consumer, &s), 0);
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	assert_int_equal(s.consumed, s.n);
	assert_int_equal(s.bad_prod, 0);
	assert_int_equal(s.bad_cons, 0);
	st = stats_of(s.p);
	assert_int_equal(st.fails, s.nulls);
	if (fault_every != 0)
		assert_true(s.nulls >= s.n / fault_every);
	assert_int_equal(st.puts, s.n);
	/* Injected faults return before the hit/miss count; cap misses count
	 * as misses. Every successful get was put back exactly once. */
	if (fault_every != 0)
		assert_int_equal(st.hits + st.misses, s.n);
	else
		assert_int_equal(st.hits + st.misses - st.fails, s.n);
	for (size_t i = 0; i < max_objs; i++)
		assert_int_equal(s.out[i], 0);
	assert_accounting(s.p, 0);
	buf_pool_free(s.p);
	spsc_free(s.ring);
	free(s.out);
}

static void test_buf_cross_thread_frees_lose_and_duplicate_nothing(void **state)
{
	(void)state;
	run_stress(8192, false, 0);
}

static void test_buf_cross_thread_frees_at_the_cap_lose_nothing(void **state)
{
	(void)state;
	/* Producer hits the cap whenever the consumer's caches and the ring
	 * hold most objects; it must see NULL and retry. */
	run_stress(5 * MAG, false, 0);
}

static void test_buf_foreign_thread_frees_lose_and_duplicate_nothing(void **state)
{
	(void)state;
	run_stress(8192, true, 0);
}

/* --- The depot stack alone, under heavy contention. -------------------- */

struct depot_run {
	struct buf_pool *p;
	_Atomic uint8_t *owned; /* per magazine: 1 while a thread holds it */
	uint64_t rounds;
	uint64_t bad;
	uint64_t popped;
};

static void *depot_worker(void *arg)
{
	struct depot_run *r = arg;
	struct mag *held[3];

	for (uint64_t i = 0; i < r->rounds; i++) {
		int n = 0;

		while (n < 3 && (held[n] = mag_stack_pop(r->p, &r->p->empty)) != NULL) {
			if (atomic_exchange_explicit(&r->owned[held[n]->idx], 1, memory_order_relaxed))
				r->bad++;
			held[n]->count = (uint32_t)i; /* written by the holder only */
			n++;
		}
		r->popped += (uint64_t)n;
		while (n > 0) {
			n--;
			if (held[n]->count != (uint32_t)i)
				r->bad++;
			held[n]->count = 0;
			atomic_store_explicit(&r->owned[held[n]->idx], 0, memory_order_relaxed);
			mag_stack_push(r->p, &r->p->empty, held[n]);
		}
	}
	return NULL;
}

static void test_mag_stack_never_hands_one_magazine_to_two_threads(void **state)
{
	/* Few magazines, many pops: pop/push races (and ABA) are frequent. */
	struct buf_pool *p = buf_pool_new(CELL, 1, 576);
	struct buf_pool_stats st;
	struct depot_run runs[3];
	pthread_t th[3];
	uint64_t nempty = p->empty.nmags, popped = 0;

	(void)state;
	assert_true(nempty >= 3);
	for (int i = 0; i < 3; i++) {
		runs[i] = (struct depot_run){ .p = p, .rounds = 100000 };
		runs[i].owned = calloc(p->nmags, 1);
		assert_int_equal(pthread_create(&th[i], NULL, depot_worker, &runs[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(runs[i].bad, 0);
		popped += runs[i].popped;
		free(runs[i].owned);
	}
	assert_true(popped >= 100000);
	/* Every magazine came back: walk the stack and count. */
	for (uint64_t i = 0; i < nempty; i++)
		assert_non_null(mag_stack_pop(p, &p->empty));
	assert_null(mag_stack_pop(p, &p->empty));
	buf_pool_stats(p, &st);
	assert_int_equal(st.depot_full, 0);
	buf_pool_free(p);
}

/* --- Fault injection (test_mag_faults only) --------------------------- */
#ifdef ONIONRING_POOL_FAULTS

static void test_buf_injected_faults_return_null_and_lose_nothing(void **state)
{
	const size_t n = 700;
	struct buf_pool *p = buf_pool_new(CELL, 1, 1 << 20);
	void **objs = calloc(n, sizeof(void *));
	uint8_t *seen = calloc(stats_of(p).max_objs, 1);
	size_t got = 0, nulls = 0;

	(void)state;
	assert_true(buf_pool_set_fault_every(p, 7));
	for (size_t i = 0; i < n; i++) {
		void *o = buf_get(p, 0);

		if (o == NULL) {
			nulls++;
			continue;
		}
		assert_int_equal(seen[buf_pool_index(p, o)], 0);
		seen[buf_pool_index(p, o)] = 1;
		objs[got++] = o;
	}
	assert_int_equal(nulls, n / 7);
	assert_int_equal(stats_of(p).fails, n / 7);
	buf_pool_set_fault_every(p, 0);
	for (size_t i = 0; i < got; i++)
		buf_put(p, 0, objs[i]);
	assert_accounting(p, 0);
	buf_pool_free(p);
	free(objs);
	free(seen);
}

static void test_buf_injected_faults_under_threads_lose_nothing(void **state)
{
	(void)state;
	run_stress(8192, false, 3);
}
#else
static void test_buf_fault_knob_is_absent_from_normal_builds(void **state)
{
	struct buf_pool *p = buf_pool_new(CELL, 1, 1 << 20);

	(void)state;
	assert_false(buf_pool_set_fault_every(p, 1));
	assert_non_null(buf_get(p, 0));
	buf_pool_free(p);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_pool_new_rejects_bad_arguments),
		cmocka_unit_test(test_buf_get_hands_out_each_object_once_until_the_cap),
		cmocka_unit_test(test_buf_get_put_pairs_reuse_without_carving),
		cmocka_unit_test(test_buf_put_on_another_shard_migrates_through_the_depot),
		cmocka_unit_test(test_buf_get_returns_null_at_cap_and_recovers_after_put),
		cmocka_unit_test(test_buf_pool_index_rejects_pointers_not_from_the_pool),
		cmocka_unit_test(test_buf_trim_gives_unneeded_magazines_to_the_depot),
		cmocka_unit_test(test_buf_trim_returns_pages_of_surplus_depot_magazines_to_the_os),
		cmocka_unit_test(test_buf_foreign_put_and_get_share_the_depot),
		cmocka_unit_test(test_buf_cross_thread_frees_lose_and_duplicate_nothing),
		cmocka_unit_test(test_buf_cross_thread_frees_at_the_cap_lose_nothing),
		cmocka_unit_test(test_buf_foreign_thread_frees_lose_and_duplicate_nothing),
		cmocka_unit_test(test_mag_stack_never_hands_one_magazine_to_two_threads),
#ifdef ONIONRING_POOL_FAULTS
		cmocka_unit_test(test_buf_injected_faults_return_null_and_lose_nothing),
		cmocka_unit_test(test_buf_injected_faults_under_threads_lose_nothing),
#else
		cmocka_unit_test(test_buf_fault_knob_is_absent_from_normal_builds),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
