/* Circuit build timeout learning (path-spec 2.4): keep the last 1000
 * three-hop build times, fit a Pareto tail (Xm from the cbtnummodes most
 * frequent 10 ms bins, alpha by maximum likelihood) and derive the
 * timeout (cbtquantile) and the close time (cbtclosequantile); start at
 * cbtinitialtimeout (60 s); reset when most recent circuits time out.
 *
 * For: the circuit manager asking "how long may this build take?" and
 * reporting outcomes; persisting the histogram as tor's state-file lines.
 * Not for: timers, or circuits shorter than three hops (not recorded).
 *
 * Threads: one owner (the coordinator); not thread-safe. */
#ifndef ONIONRING_APP_CBT_H
#define ONIONRING_APP_CBT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/consensus.h"

#define CBT_NCIRCUITS_TO_OBSERVE 1000 /* path-spec 2.4.2 */
#define CBT_BIN_WIDTH_MS 10
#define CBT_MAX_RECENT 1000

/* The path-spec 2.4.6 consensus parameters. */
struct cbt_params {
	int32_t disabled, nummodes, recentcount, maxtimeouts, mincircs, quantile, closequantile,
		mintimeout, initialtimeout;
};

/* Fill p from c (borrowed; NULL gives the defaults), clamped as the spec says. */
void cbt_params_get(struct cbt_params *p, const struct consensus *c);

struct cbt {
	struct cbt_params p;
	uint32_t times[CBT_NCIRCUITS_TO_OBSERVE]; /* ms, circular */
	size_t next, n;
	uint32_t max_observed_ms;
	bool have_estimate;
	double xm, alpha;
	double timeout_ms, close_ms; /* for 3 hops */
	uint8_t recent[CBT_MAX_RECENT]; /* 1 = timed out */
	size_t recent_next, recent_n;
	uint32_t abandoned;
};

/* Start with no history under params p (borrowed, copied). */
void cbt_init(struct cbt *b, const struct cbt_params *p);
/* Apply new consensus parameters; keeps the history (discarded if disabled). */
void cbt_set_params(struct cbt *b, const struct cbt_params *p);

/* Record a completed 3-hop build of ms milliseconds and re-estimate. */
void cbt_add_time(struct cbt *b, uint32_t ms);
/* Record whether a circuit that completed a first hop timed out
 * (path-spec 2.4.5); may reset the history. */
void cbt_note_outcome(struct cbt *b, bool timed_out);

/* The timeout and close time for a circuit of hops hops, in ms
 * (path-spec 2.4.3 scaling by Actions(N) = N(N+1)/2). */
double cbt_timeout_ms(const struct cbt *b, unsigned hops);
double cbt_close_ms(const struct cbt *b, unsigned hops);

/* Append tor's state lines ("CircuitBuildAbandonedCount", "TotalBuildTimes",
 * "CircuitBuildTimeBin MS COUNT") to out (cap bytes, NUL-terminated).
 * Return bytes written (without NUL) or -1 if cap is too small. */
int cbt_state_write(const struct cbt *b, char *out, size_t cap);

/* Begin loading state into b: clears history. Then feed each state line
 * whose key is one of the three above with cbt_state_line (key and value
 * borrowed); false when the value is malformed. Finish with
 * cbt_state_done, which shuffles the loaded times (path-spec 2.4.2) and
 * re-estimates. */
void cbt_state_begin(struct cbt *b);
bool cbt_state_line(struct cbt *b, const char *key, const char *value);
void cbt_state_done(struct cbt *b);
/* True when key is a state-file key cbt owns. */
bool cbt_state_owns_key(const char *key);

#endif
