/* Benchmark: alloc+free pairs per second of the magazine buffer pool
 * (pool/mag.h) against jemalloc's and glibc's malloc/free, in one process,
 * printed as ratios. Patterns: same thread (one get+put at a time, and
 * bursts of 32 gets then 32 puts), and producer/consumer across two
 * threads (producer gets, an SPSC ring carries the buffer, the consumer
 * puts). Sizes: a cell (514 B) and an I/O chunk (16 KiB).
 *
 * jemalloc is linked in, so malloc/free are jemalloc's (checked at start
 * with mallctl); glibc's allocator is still reachable as
 * __libc_malloc/__libc_free. Not part of the test suite.
 * Usage: bench_mag [reps]   (median of reps runs, default 5) */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/spsc.h"
#include "pool/mag.h"

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *ptr);
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

enum alloc_kind { K_POOL, K_JE, K_GLIBC, K_COUNT };

#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

static struct buf_pool *bench_pool;

static inline void *alloc_one(enum alloc_kind k, size_t size, unsigned shard)
{
	switch (k) {
	case K_POOL: return buf_get(bench_pool, shard);
	case K_JE: return malloc(size);
	default: return __libc_malloc(size);
	}
}

static inline void free_one(enum alloc_kind k, void *p, unsigned shard)
{
	switch (k) {
	case K_POOL: buf_put(bench_pool, shard, p); break;
	case K_JE: free(p); break;
	default: __libc_free(p); break;
	}
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void die_null(void *p)
{
	if (p == NULL) {
		fprintf(stderr, "bench_mag: allocation failed\n");
		exit(1);
	}
}

/* Each function is instantiated per allocator so the calls inline. */
#define SAME_PAIR(k)                                                        \
	static double same_pair_##k(size_t size, uint64_t n)                   \
	{                                                                      \
		uint64_t t0 = clock_mono_ns();                                 \
		for (uint64_t i = 0; i < n; i++) {                             \
			char *p = alloc_one(k, size, 0);                       \
			die_null(p);                                           \
			p[0] = (char)i;                                        \
			ESCAPE(p);                                             \
			free_one(k, p, 0);                                     \
		}                                                              \
		return (double)n * 1e9 / (double)(clock_mono_ns() - t0);       \
	}
#define SAME_BURST(k)                                                       \
	static double same_burst_##k(size_t size, uint64_t n)                  \
	{                                                                      \
		char *b[32];                                                   \
		uint64_t t0 = clock_mono_ns();                                 \
		for (uint64_t i = 0; i < n / 32; i++) {                        \
			for (int j = 0; j < 32; j++) {                         \
				b[j] = alloc_one(k, size, 0);                  \
				die_null(b[j]);                                \
				b[j][0] = (char)j;                             \
			}                                                      \
			ESCAPE(b);                                             \
			for (int j = 0; j < 32; j++)                           \
				free_one(k, b[j], 0);                          \
		}                                                              \
		return (double)(n / 32 * 32) * 1e9 / (double)(clock_mono_ns() - t0); \
	}
SAME_PAIR(K_POOL)
SAME_PAIR(K_JE)
SAME_PAIR(K_GLIBC)
SAME_BURST(K_POOL)
SAME_BURST(K_JE)
SAME_BURST(K_GLIBC)

struct xthread {
	enum alloc_kind kind;
	size_t size;
	uint64_t n;
	struct spsc *ring;
};

static void *x_consumer(void *arg)
{
	struct xthread *x = arg;
	void *v;

	pin(1);
	for (uint64_t i = 0; i < x->n;) {
		if (!spsc_pop(x->ring, &v))
			continue;
		if (((char *)v)[0] != (char)i)
			abort();
		free_one(x->kind, v, 1);
		i++;
	}
	return NULL;
}

static double cross_thread(enum alloc_kind k, size_t size, uint64_t n)
{
	struct xthread x = { .kind = k, .size = size, .n = n, .ring = spsc_new(1024) };
	pthread_t cons;
	uint64_t t0;

	pin(0);
	t0 = clock_mono_ns();
	if (pthread_create(&cons, NULL, x_consumer, &x) != 0)
		abort();
	for (uint64_t i = 0; i < n; i++) {
		char *p = alloc_one(k, size, 0);

		die_null(p);
		p[0] = (char)i;
		while (!spsc_push(x.ring, p))
			;
	}
	pthread_join(cons, NULL);
	spsc_free(x.ring);
	return (double)n * 1e9 / (double)(clock_mono_ns() - t0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

typedef double (*bench_fn)(size_t size, uint64_t n);

static double median_of(int reps, enum alloc_kind k, bench_fn same, size_t size, uint64_t n)
{
	double v[32];

	for (int r = 0; r < reps; r++)
		v[r] = same != NULL ? same(size, n) : cross_thread(k, size, n);
	qsort(v, (size_t)reps, sizeof(double), cmp_double);
	return v[reps / 2];
}

static void check_jemalloc(void)
{
	const char *ver = NULL;
	size_t len = sizeof(ver);

	if (mallctl("version", &ver, &len, NULL, 0) != 0 || ver == NULL) {
		fprintf(stderr, "bench_mag: jemalloc is not the malloc in this process\n");
		exit(1);
	}
	printf("jemalloc %s; glibc via __libc_malloc; magazine size %u\n", ver,
		bench_pool->mag_size);
}

static void row(const char *pattern, size_t size, const double r[K_COUNT])
{
	printf("%-14s %6zu  %9.1f %9.1f %9.1f   %6.2fx   %6.2fx\n", pattern, size,
		r[K_POOL] / 1e6, r[K_JE] / 1e6, r[K_GLIBC] / 1e6,
		r[K_POOL] / r[K_JE], r[K_POOL] / r[K_GLIBC]);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 514, 16384 };
	bench_fn pair[K_COUNT] = { same_pair_K_POOL, same_pair_K_JE, same_pair_K_GLIBC };
	bench_fn burst[K_COUNT] = { same_burst_K_POOL, same_burst_K_JE, same_burst_K_GLIBC };
	int reps = argc > 1 ? atoi(argv[1]) : 5;

	if (reps < 1 || reps > 31)
		reps = 5;
	bench_pool = buf_pool_new(514, 2, 64u << 20);
	die_null(bench_pool);
	check_jemalloc();
	printf("%-14s %6s  %9s %9s %9s   %7s  %7s\n", "pattern", "bytes",
		"pool M/s", "je M/s", "glibc M/s", "pool/je", "pool/glibc");
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		double r[K_COUNT];

		buf_pool_free(bench_pool);
		bench_pool = buf_pool_new(sizes[s], 2, 256u << 20);
		die_null(bench_pool);
		pin(1);
		for (int k = 0; k < K_COUNT; k++)
			r[k] = median_of(reps, k, pair[k], sizes[s], 20000000);
		row("same-pair", sizes[s], r);
		for (int k = 0; k < K_COUNT; k++)
			r[k] = median_of(reps, k, burst[k], sizes[s], 20000000);
		row("same-burst32", sizes[s], r);
		for (int k = 0; k < K_COUNT; k++)
			r[k] = median_of(reps, k, NULL, sizes[s], 5000000);
		row("cross-thread", sizes[s], r);
	}
	buf_pool_free(bench_pool);
	return 0;
}
