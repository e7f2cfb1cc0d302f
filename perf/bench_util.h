/* What the micro-benchmarks share: thread CPU time (the machine is shared,
 * so a benchmark counts only the time its own thread ran), heap bytes the
 * thread allocated (to prove a hot path allocates nothing), and pinning to
 * one CPU. Header-only: each benchmark is one program. Not for the
 * gateway: perf/ only. */
#ifndef ONIONRING_PERF_BENCH_UTIL_H
#define ONIONRING_PERF_BENCH_UTIL_H

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "onionring_build.h"

#if ONIONRING_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
#else
#include <malloc.h>
#endif

/* CPU time of the calling thread, ns. A system call (a few hundred ns):
 * keep it out of per-cell loops. */
static inline uint64_t bench_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double bench_thread_cpu_s(void)
{
	return (double)bench_thread_cpu_ns() * 1e-9;
}

/* Bytes this thread has allocated so far (jemalloc's thread.allocated), or
 * glibc's heap in use when built with the system allocator. Only the
 * difference of two calls means something. */
static inline unsigned long long bench_allocated_bytes(void)
{
#if ONIONRING_USE_JEMALLOC
	uint64_t v = 0;
	size_t sz = sizeof(v);

	if (mallctl("thread.allocated", &v, &sz, NULL, 0) != 0)
		return 0;
	return v;
#else
	return (unsigned long long)mallinfo2().uordblks;
#endif
}

/* Pin the calling thread to cpu (< 0: the CPU it runs on now) and say so. */
static inline void bench_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		cpu = sched_getcpu();
	if (cpu < 0)
		cpu = 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0)
		printf("pinned to cpu %d\n", cpu);
	else
		printf("could not pin to cpu %d (running unpinned)\n", cpu);
}

#endif
