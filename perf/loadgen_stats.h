/* Latency samples and percentiles for the load generator.
 *
 * Stores every sample (a run has at most a few hundred thousand requests)
 * so percentiles are exact (nearest-rank), not bucketed. Not thread-safe:
 * the load generator is one thread. Not for the gateway's own metrics. */
#ifndef ONIONRING_PERF_LOADGEN_STATS_H
#define ONIONRING_PERF_LOADGEN_STATS_H

#include <stddef.h>
#include <stdint.h>

struct samples {
	uint64_t *v;   /* owned; nanoseconds */
	size_t n;
	size_t cap;
	int sorted;
};

/* Append one sample (ns). Aborts on OOM (control-plane tool). */
void samples_add(struct samples *s, uint64_t ns);

/* Return the nearest-rank p-th percentile (0 < p <= 100) in ns: the
 * smallest sample such that at least p% of the samples are <= it; 0 when
 * there are no samples. Sorts s in place (later adds unsort it again). */
uint64_t samples_percentile(struct samples *s, double p);

/* Return the largest sample, 0 when empty. */
uint64_t samples_max(struct samples *s);

/* Free the storage; s can be reused (empty) afterwards. NULL-safe. */
void samples_free(struct samples *s);

#endif
