/* Exact nearest-rank percentiles over stored samples (see loadgen_stats.h).
 * Not for streaming estimation: the load generator keeps every sample. */
#include "perf/loadgen_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void samples_add(struct samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			fprintf(stderr, "loadgen: out of memory for samples\n");
			abort();
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
	s->sorted = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

uint64_t samples_percentile(struct samples *s, double p)
{
	size_t rank;

	if (s->n == 0)
		return 0;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
		s->sorted = 1;
	}
	if (p <= 0)
		return s->v[0];
	/* Nearest rank: ceil(p*n/100), 1-based; the epsilon keeps 90% of 10
	 * samples at rank 9 despite rounding in the product. */
	rank = (size_t)ceil(p * (double)s->n / 100.0 - 1e-9);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->v[rank - 1];
}

uint64_t samples_max(struct samples *s)
{
	return samples_percentile(s, 100.0);
}

void samples_free(struct samples *s)
{
	if (!s)
		return;
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
	s->sorted = 0;
}
