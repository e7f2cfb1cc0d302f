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
 * scrape answers 500. Zero-initialise it; free with metrics_buf_free. */
struct metrics_buf {
	char *p;
	size_t len;
	size_t cap;
	bool failed;
	const char *last_family;
};

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

/* Room for any value metrics_format_double writes, with its NUL. */
#define METRICS_DOUBLE_MAX 32

/* Every function below borrows its arguments and may be called from any
 * thread on a buffer that thread owns. */

/* Start a family: the HELP and TYPE lines. name must carry the onionring_
 * prefix (or a standard one like process_) and, for counters, the _total
 * suffix; help is escaped (backslash, newline) as the format requires. */
void metrics_family(struct metrics_buf *b, const char *name, enum metrics_type type, const char *help);
/* One sample of the current family. labels: NULL or 'shard="0"' style text
 * whose values were escaped with metrics_escape_label. */
void metrics_sample(struct metrics_buf *b, const char *name, const char *labels, double value);
void metrics_sample_u64(struct metrics_buf *b, const char *name, const char *labels, uint64_t value);
/* A histogram's buckets, sum and count: cumulative[i] counts observations
 * <= bounds[i] (bounds ascending, finite); the +Inf bucket is count. labels
 * (NULL or text as above) go before the le label of each bucket. count is
 * raised to cumulative[nbounds - 1] if smaller, and the buckets are made
 * non-decreasing, so that counters read one by one while they move still
 * form a valid histogram. */
void metrics_histogram(struct metrics_buf *b, const char *name, const char *labels, const double *bounds,
		       const uint64_t *cumulative, size_t nbounds, uint64_t count, double sum);
/* Turn per-bucket counts (in[i]: observations in (bounds[i-1], bounds[i]])
 * into cumulative counts in out (may equal in). */
void metrics_cumulate(const uint64_t *in, uint64_t *out, size_t n);
/* Write value as the exposition format wants it ("NaN", "+Inf", "-Inf",
 * or the shortest decimal that reads back as the same double) into out
 * (cap >= METRICS_DOUBLE_MAX). */
void metrics_format_double(char *out, size_t cap, double value);
/* Escape a label value (backslash, double quote, newline) into out; always
 * NUL-terminated when cap > 0. Return the length the full escape needs
 * (not counting the NUL): >= cap means it was cut short. */
size_t metrics_escape_label(char *out, size_t cap, const char *value);
void metrics_buf_free(struct metrics_buf *b);

/* A buffer pool (pool/mag.h) to export, under a label pool="name". */
struct buf_pool;
struct metrics_pool {
	const char *name;             /* borrowed; escaped on output */
	const struct buf_pool *pool;  /* borrowed */
};
/* Export every pool's magazine counters per shard (labels pool, shard;
 * shard="foreign" is the non-worker cache) and its depot per pool. One
 * call for all pools, so that each family appears once. Only for pools
 * that exist: with npools 0 nothing is written. */
void metrics_buf_pools(struct metrics_buf *b, const struct metrics_pool *pools, size_t npools);

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
