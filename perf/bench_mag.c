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
 * Each measurement runs 0.2 s; same-thread rates are per second of the
 * thread's CPU time; cross-thread rates both per second of wall time
 * (cross-wall) and per second of the two threads' mean CPU time
 * (cross-cpu, less skewed by other load on a shared machine); depot rates
 * per second of wall time. Usage: bench_mag [reps]   (median of reps
 * runs, default 5) */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/spsc.h"
#include "perf/bench_util.h"
#include "pool/mag.h"

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *ptr);
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

enum alloc_kind { K_POOL, K_JE, K_GLIBC, K_COUNT };

#define RUN_NS 200000000ull /* each measurement runs this long */
/* Ring between producer and consumer: large, so that on a shared machine
 * a thread that is descheduled does not stall its peer at once. */
#define XRING 8192
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

/* Spin briefly, then yield: on a loaded machine the peer may be off-CPU. */
static void spin_wait(unsigned *spins)
{
	if (++*spins > 1000)
		sched_yield();
	else
		__builtin_ia32_pause();
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
	static double same_pair_##k(size_t size, uint64_t ns)                  \
	{                                                                      \
		uint64_t t0 = bench_thread_cpu_ns(), n = 0, t;                       \
		do {                                                           \
		for (uint64_t i = 0; i < 4096; i++) {                          \
			char *p = alloc_one(k, size, 0);                       \
			die_null(p);                                           \
			p[0] = (char)i;                                        \
			ESCAPE(p);                                             \
			free_one(k, p, 0);                                     \
		}                                                              \
		n += 4096;                                                     \
		} while ((t = bench_thread_cpu_ns()) - t0 < ns);                     \
		return (double)n * 1e9 / (double)(t - t0);                     \
	}
#define SAME_BURST(k)                                                       \
	static double same_burst_##k(size_t size, uint64_t ns)                 \
	{                                                                      \
		char *b[32];                                                   \
		uint64_t t0 = bench_thread_cpu_ns(), n = 0, t;                       \
		do {                                                           \
		for (uint64_t i = 0; i < 128; i++) {                           \
			for (int j = 0; j < 32; j++) {                         \
				b[j] = alloc_one(k, size, 0);                  \
				die_null(b[j]);                                \
				b[j][0] = (char)j;                             \
			}                                                      \
			ESCAPE(b);                                             \
			for (int j = 0; j < 32; j++)                           \
				free_one(k, b[j], 0);                          \
		}                                                              \
		n += 128 * 32;                                                 \
		} while ((t = bench_thread_cpu_ns()) - t0 < ns);                     \
		return (double)n * 1e9 / (double)(t - t0);                     \
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
	struct spsc *ring;
	uint64_t cons_cpu_ns; /* consumer thread CPU time */
};

/* Pairs per second of the two threads' CPU time, of the last cross_thread. */
static double cross_cpu_rate;

static void *x_consumer(void *arg)
{
	struct xthread *x = arg;
	unsigned spins = 0;
	void *v;
	uint64_t c0;

	pin(1);
	c0 = bench_thread_cpu_ns();
	for (uint64_t i = 0;; i++) {
		while (!spsc_pop(x->ring, &v))
			spin_wait(&spins);
		spins = 0;
		if (v == NULL)
			break; /* the producer's end mark */
		if (((char *)v)[0] != (char)i)
			abort();
		free_one(x->kind, v, 1);
	}
	x->cons_cpu_ns = bench_thread_cpu_ns() - c0;
	return NULL;
}

static void push_wait(struct spsc *ring, void *p)
{
	for (unsigned spins = 0; !spsc_push(ring, p);)
		spin_wait(&spins);
}

static double cross_thread(enum alloc_kind k, size_t size, uint64_t ns)
{
	struct xthread x = { .kind = k, .size = size, .ring = spsc_new(XRING) };
	pthread_t cons;
	uint64_t t0, c0, n = 0;
	double wall;

	pin(0);
	t0 = clock_mono_ns();
	c0 = bench_thread_cpu_ns();
	if (pthread_create(&cons, NULL, x_consumer, &x) != 0)
		abort();
	do {
		for (int i = 0; i < 1024; i++, n++) {
			char *p = alloc_one(k, size, 0);

			die_null(p);
			p[0] = (char)n;
			push_wait(x.ring, p);
		}
	} while (clock_mono_ns() - t0 < ns);
	push_wait(x.ring, NULL);
	c0 = bench_thread_cpu_ns() - c0;
	pthread_join(cons, NULL);
	wall = (double)n * 1e9 / (double)(clock_mono_ns() - t0);
	/* Both threads busy all the time would make this equal the wall rate. */
	cross_cpu_rate = 2.0 * (double)n * 1e9 / (double)(c0 + x.cons_cpu_ns);
	spsc_free(x.ring);
	return wall;
}

static int cmp_double(const void *a, const void *b);

/* --- Depot: lock-free tagged stack vs the same stack behind a mutex. --- */

struct locked_stack {
	pthread_mutex_t lock;
	struct mag *items[64];
	unsigned n;
};

struct depot_arg {
	struct locked_stack *ls; /* NULL: the pool's lock-free empty stack */
	int cpu;
	uint64_t ns;
	double rate;
};

static struct mag *locked_pop(struct locked_stack *ls)
{
	struct mag *m = NULL;

	pthread_mutex_lock(&ls->lock);
	if (ls->n > 0)
		m = ls->items[--ls->n];
	pthread_mutex_unlock(&ls->lock);
	return m;
}

static void locked_push(struct locked_stack *ls, struct mag *m)
{
	pthread_mutex_lock(&ls->lock);
	ls->items[ls->n++] = m;
	pthread_mutex_unlock(&ls->lock);
}

static void *depot_worker(void *arg)
{
	struct depot_arg *a = arg;
	uint64_t n = 0, t0, t;

	pin(a->cpu);
	t0 = clock_mono_ns();
	do {
		for (int i = 0; i < 1024; i++) {
			struct mag *m = a->ls ? locked_pop(a->ls)
				: mag_stack_pop(bench_pool, &bench_pool->empty);

			if (m == NULL)
				continue;
			ESCAPE(m);
			if (a->ls)
				locked_push(a->ls, m);
			else
				mag_stack_push(bench_pool, &bench_pool->empty, m);
			n++;
		}
	} while ((t = clock_mono_ns()) - t0 < a->ns);
	a->rate = (double)n * 1e9 / (double)(t - t0);
	return NULL;
}

/* Return depot exchanges (pop + push) per second, two threads together. */
static double depot_bench(bool locked, uint64_t ns)
{
	static struct locked_stack ls = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct depot_arg a[2];
	pthread_t th[2];
	struct mag *m;

	if (locked) {
		/* Borrow the pool's empty magazines; give them back after. */
		while (ls.n < ARRAY_LEN(ls.items) && (m = mag_stack_pop(bench_pool, &bench_pool->empty)) != NULL)
			ls.items[ls.n++] = m;
	}
	for (int i = 0; i < 2; i++) {
		a[i] = (struct depot_arg){ .ls = locked ? &ls : NULL, .cpu = i, .ns = ns };
		if (pthread_create(&th[i], NULL, depot_worker, &a[i]) != 0)
			abort();
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	while (locked && ls.n > 0)
		mag_stack_push(bench_pool, &bench_pool->empty, ls.items[--ls.n]);
	return a[0].rate + a[1].rate;
}

static void depot_rows(int reps)
{
	double lf[32], lk[32];

	for (int r = 0; r < reps; r++) {
		lf[r] = depot_bench(false, RUN_NS);
		lk[r] = depot_bench(true, RUN_NS);
	}
	qsort(lf, (size_t)reps, sizeof(double), cmp_double);
	qsort(lk, (size_t)reps, sizeof(double), cmp_double);
	printf("depot exchanges, 2 threads: lock-free %.1f M/s, mutex %.1f M/s (%.2fx)\n",
		lf[reps / 2] / 1e6, lk[reps / 2] / 1e6, lf[reps / 2] / lk[reps / 2]);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

typedef double (*bench_fn)(size_t size, uint64_t ns);

/* Fill rate[k] with the median rate of reps runs of each allocator k
 * (same[k] NULL: the cross-thread pattern, whose median CPU-time rate goes
 * to cpu[k]). Runs interleave the allocators, so load that comes and goes
 * on a shared machine hits all of them alike. */
static void measure(int reps, bench_fn const same[K_COUNT], size_t size,
	double rate[K_COUNT], double cpu[K_COUNT])
{
	double v[K_COUNT][32], c[K_COUNT][32];

	for (int r = 0; r < reps; r++) {
		for (int k = 0; k < K_COUNT; k++) {
			v[k][r] = same[k] != NULL ? same[k](size, RUN_NS)
				: cross_thread(k, size, RUN_NS);
			c[k][r] = cross_cpu_rate;
		}
	}
	for (int k = 0; k < K_COUNT; k++) {
		qsort(v[k], (size_t)reps, sizeof(double), cmp_double);
		qsort(c[k], (size_t)reps, sizeof(double), cmp_double);
		rate[k] = v[k][reps / 2];
		if (cpu != NULL)
			cpu[k] = c[k][reps / 2];
	}
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
	printf("%-14s %6zu  %9.2f %9.2f %9.2f   %6.2fx   %6.2fx\n", pattern, size,
		r[K_POOL] / 1e6, r[K_JE] / 1e6, r[K_GLIBC] / 1e6,
		r[K_POOL] / r[K_JE], r[K_POOL] / r[K_GLIBC]);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 514, 16384 };
	bench_fn pair[K_COUNT] = { same_pair_K_POOL, same_pair_K_JE, same_pair_K_GLIBC };
	bench_fn burst[K_COUNT] = { same_burst_K_POOL, same_burst_K_JE, same_burst_K_GLIBC };
	bench_fn cross[K_COUNT] = { NULL, NULL, NULL };
	int reps = argc > 1 ? atoi(argv[1]) : 5;

	if (reps < 1 || reps > 31)
		reps = 5;
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_pool = buf_pool_new(514, 2, 64u << 20);
	die_null(bench_pool);
	check_jemalloc();
	printf("%-14s %6s  %9s %9s %9s   %7s  %7s\n", "pattern", "bytes",
		"pool M/s", "je M/s", "glibc M/s", "pool/je", "pool/glibc");
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		double r[K_COUNT], rc[K_COUNT];

		buf_pool_free(bench_pool);
		bench_pool = buf_pool_new(sizes[s], 2, 256u << 20);
		die_null(bench_pool);
		pin(1);
		measure(reps, pair, sizes[s], r, NULL);
		row("same-pair", sizes[s], r);
		measure(reps, burst, sizes[s], r, NULL);
		row("same-burst32", sizes[s], r);
		measure(reps, cross, sizes[s], r, rc);
		row("cross-wall", sizes[s], r);
		row("cross-cpu", sizes[s], rc);
	}
	depot_rows(reps);
	buf_pool_free(bench_pool);
	return 0;
}
