/* Entry guards (guard-spec.txt): the persistent sampled set, the derived
 * filtered / usable-filtered sets, the confirmed list, the primary guards,
 * the retry schedule, choosing a guard for a circuit, outcome reports, and
 * the DataDirectory/state file (tor's "Guard k=v ..." lines plus the
 * circuit build timeout histogram of app/cbt.h), written atomically.
 *
 * For: the coordinator's circuit manager. Not for: the circuit states
 * <waiting_for_better_guard> etc. (guard-spec 4.9: the circuit manager
 * keeps them; guard_rank gives it the priority order), bridges, or the
 * restricted-sample instances of guard-spec 2.B (only "default" is used;
 * other instances' lines are kept as they were).
 *
 * Threads: one owner (the coordinator); not thread-safe. */
#ifndef ONIONRING_APP_GUARD_H
#define ONIONRING_APP_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "app/cbt.h"
#include "app/nodes.h"
#include "app/path.h"

enum guard_reach { GUARD_REACH_MAYBE, GUARD_REACH_YES, GUARD_REACH_NO };

struct guard_entry {
	/* persistent (guard-spec 4.1, 4.3, A.5) */
	uint8_t id[SHA1_LEN];
	char nickname[CONSENSUS_MAX_NICKNAME + 1];
	time_t sampled_on;
	char sampled_by[32];
	bool listed;
	time_t unlisted_since; /* 0: none */
	time_t confirmed_on;   /* 0: not confirmed */
	int confirmed_idx;     /* -1: not confirmed */
	char *extra;           /* unrecognised k=v items, kept verbatim (owned) */
	/* not persistent */
	enum guard_reach reach;
	time_t last_tried, failing_since; /* 0: never */
	bool pending, filtered, primary;
	const struct node *node; /* in the current nodelist, or NULL */
};

/* guard-spec A.1 / param-spec guard-* parameters. */
struct guard_params {
	int32_t n_primary, n_primary_to_use, n_primary_dir_to_use, min_filtered, max_sample_size,
		max_sample_pct, lifetime_days, confirmed_min_lifetime_days, remove_unlisted_days,
		internet_down_interval;
};

void guard_params_get(struct guard_params *p, const struct consensus *c);

struct guard_state {
	struct guard_params p;
	struct guard_entry *e; /* sample order */
	size_t n, cap;
	size_t *prim; /* indexes into e, primary order */
	size_t n_prim;
	char **foreign; /* "Guard" values of other instances, kept verbatim */
	size_t n_foreign;
	time_t last_time_on_internet; /* 0: never */
	time_t exhausted_at;          /* last "all guards <maybe> again" (4.6); 0: never */
};

/* guard-spec 4.6 says that when every sampled guard is <no>, all are marked
 * <maybe> "so that we can keep on trying". Done on every selection, that
 * bypasses the retry schedule (4.5) and, with guards that fail at once
 * (connection refused), cycles through them several times a second. So it
 * is done at most once per this many seconds; in between guard_select
 * finds no guard. 60 s is how long tor remembers a failed connection to a
 * relay before it connects to it again (connection_or.c's failure cache). */
#define GUARD_EXHAUSTED_RETRY_SECS 60

/* Return an owned empty state with default parameters (guard_state_free). */
struct guard_state *guard_state_new(void);
void guard_state_free(struct guard_state *gs);

/* guard-spec 4.10: a new consensus (or configuration). Update IS_LISTED,
 * expire old entries, refilter, top up the sample, recompute primaries.
 * ps (borrowed) is the selector for the new snapshot; now is wall time. */
void guard_on_consensus(struct guard_state *gs, const struct path_sel *ps, time_t now);

enum guard_usable {
	GUARD_USABLE_ON_COMPLETION,   /* a primary guard: use the circuit when built */
	GUARD_USABLE_IF_NO_BETTER,    /* exploratory: wait for better guards first */
};

struct guard_pick {
	const struct node *node;
	size_t entry; /* index in gs->e */
	enum guard_usable usable;
};

/* guard-spec 4.6: choose a guard for a circuit whose other hops must not
 * conflict with avoid (the chosen exit; NULL: none) under ps's rules. for_dir
 * uses guard-n-primary-dir-guards-to-use. Return false when no guard is
 * usable: none is filtered, or all are <no> and the last "all <maybe>
 * again" was less than GUARD_EXHAUSTED_RETRY_SECS ago (guard_all_held
 * tells which). Runs the retry schedule first. */
bool guard_select(struct guard_state *gs, const struct path_sel *ps, const struct node *avoid,
		  bool for_dir, time_t now, struct guard_pick *out);

/* True when every filtered guard is <no> and the next "all <maybe> again"
 * (see GUARD_EXHAUSTED_RETRY_SECS) is still to come: until then no circuit
 * should be built; *retry_at (may be NULL) gets its time. */
bool guard_all_held(const struct guard_state *gs, time_t now, time_t *retry_at);

/* The directory guards (guard-spec 4.6 for directory requests, tor's
 * UseEntryGuardsAsDirGuards): copy the identities of the first
 * guard-n-primary-dir-guards-to-use primary guards that are listed,
 * filtered and not known unreachable, in primary order, to ids[0..cap);
 * return how many. Every guard has V2Dir (4.0), so each is a cache. */
size_t guard_dir_guards(const struct guard_state *gs, uint8_t (*ids)[SHA1_LEN], size_t cap);

/* guard-spec 4.8 / 4.7: the circuit through guard id succeeded / failed in a
 * way that shows whether the guard is reachable. Unknown ids are ignored. */
void guard_on_success(struct guard_state *gs, const uint8_t id[SHA1_LEN], time_t now);
void guard_on_failure(struct guard_state *gs, const uint8_t id[SHA1_LEN], time_t now);

/* A directory request through guard id got an answer: the guard is
 * reachable (guard-spec 4.8: <yes>, failing_since "never", not pending).
 * Unlike guard_on_success it does not confirm the guard: 4.3 confirms a
 * guard when a circuit through it is used "for user traffic", and a
 * directory circuit is not. A failed directory request that shows the guard
 * unreachable is guard_on_failure (4.7), as for any circuit. */
void guard_on_reachable(struct guard_state *gs, const uint8_t id[SHA1_LEN], time_t now);

/* guard-spec 4.5: mark <no> guards <maybe> again when the schedule says so. */
void guard_retry_due(struct guard_state *gs, time_t now);

/* The retry interval after failing for failing_for seconds (guard-spec
 * A.1 PRIMARY_GUARDS_RETRY_SCHED / GUARDS_RETRY_SCHED). */
time_t guard_retry_interval(bool primary, time_t failing_for);

/* Lower is better: guard-spec 4.3 priority of entry i (for waiting circuits). */
uint64_t guard_rank(const struct guard_state *gs, size_t i);

/* ---- The state file ------------------------------------------------------ */

/* Write DataDirectory/state (datadir borrowed) from gs and cbt atomically:
 * state.tmp, fsync, rename, fsync of the directory. Returns 0 or -errno. */
int guard_statefile_save(const char *datadir, const struct guard_state *gs, const struct cbt *cbt,
			 time_t now);

/* Load DataDirectory/state into gs and cbt (both reset first). A missing
 * file gives a fresh state and 0. A corrupt one is logged with the line and
 * reason, renamed to state.corrupt, and a fresh state is used: returns 1.
 * Other I/O errors: -errno, fresh state. */
int guard_statefile_load(const char *datadir, struct guard_state *gs, struct cbt *cbt);

#endif
