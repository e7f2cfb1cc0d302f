/* Prometheus text exposition (format 0.0.4) and the HTTP endpoint that
 * serves it at MetricsPort: GET /metrics and GET /health.
 *
 * For: building the text and answering scrapes. Not for: deciding what is
 * measured (the collectors registered by the gateway do) or any data path.
 * The endpoint runs on whichever worker accepted the scrape and reads other
 * shards' counters with relaxed atomic loads. */
#ifndef ONIONRING_APP_METRICS_H
#define ONIONRING_APP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/worker.h"

/* A growable text buffer; allocation failures make it "failed" and the
 * scrape answers 500. */
struct metrics_buf {
	char *p;
	size_t len;
	size_t cap;
	bool failed;
	const char *last_family;
};

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

/* Start a family: the HELP and TYPE lines. name (borrowed) must carry the
 * onionring_ prefix and, for counters, the _total suffix. */
void metrics_family(struct metrics_buf *b, const char *name, enum metrics_type type, const char *help);
/* One sample of the current family. labels: NULL or 'shard="0"' style text. */
void metrics_sample(struct metrics_buf *b, const char *name, const char *labels, double value);
void metrics_sample_u64(struct metrics_buf *b, const char *name, const char *labels, uint64_t value);
/* A histogram's buckets (cumulative counts for each upper bound), sum and
 * count. */
void metrics_histogram(struct metrics_buf *b, const char *name, const double *bounds, const uint64_t *counts,
		       size_t nbounds, uint64_t count, double sum);
void metrics_buf_free(struct metrics_buf *b);

/* Called for every scrape, on the worker that serves it. */
typedef void (*metrics_collect_fn)(struct metrics_buf *b, void *arg);
/* /health: return true when healthy; else write a short reason. */
typedef bool (*metrics_health_fn)(char *reason, size_t len, void *arg);

struct metrics_endpoint {
	metrics_collect_fn collect;
	metrics_health_fn health;
	void *arg;
};

/* The accept callback for a MetricsPort listener; arg is a struct
 * metrics_endpoint (borrowed, must outlive the runtime). */
void metrics_accept(struct worker *w, struct conn *c, void *arg);

/* Append the process's CPU seconds, resident memory, open fds and start
 * time (from /proc/self) as standard process_* metrics. */
void metrics_process(struct metrics_buf *b);

#endif
