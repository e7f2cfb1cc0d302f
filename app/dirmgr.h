/* The directory manager: bootstraps and keeps a verified, fresh directory.
 * A state machine run from the coordinator tick: it loads the cache in
 * DataDirectory, fetches authority key certificates, the microdesc
 * consensus and the missing microdescriptors (in batches, by digest),
 * verifies them, caches them, schedules the next consensus fetch per
 * dir-spec 5.1, reports bootstrap progress like tor, and publishes
 * immutable snapshots (app/netdir.h) for the workers.
 *
 * Whom it asks (dir-spec 5.1): while no usable directory is published, the
 * fallbacks and then the authorities in rotation; afterwards caches from
 * the consensus (the directory guards first, then V2Dir relays weighted by
 * bandwidth), each cache or fallback that fails held back for a while,
 * and after DIRMGR_CACHE_TRIES failed cache fetches in a row one
 * authority fetch.
 *
 * For: deciding what to fetch, when and from whom, and what to believe.
 * Not for: moving bytes (a struct dir_fetcher does: app/dirfetch_http.h
 * over a DirPort, or BEGIN_DIR over a one-hop circuit) or reading the
 * directory (app/netdir.h). Everything but dirmgr_fetch_done and
 * dirmgr_stats_read runs on the coordinator thread. */
#ifndef ONIONRING_APP_DIRMGR_H
#define ONIONRING_APP_DIRMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "app/dirauth.h"
#include "app/netdir.h"

/* Consecutive failed fetches from directory caches after which the next
 * fetch goes to an authority (or fallback) instead. */
#define DIRMGR_CACHE_TRIES 3

/* tor asks for at most 92 microdescriptors per request (routerlist.c:
 * keeps "/tor/micro/d/" URLs under 4 KiB for HTTP proxies: 92 base64
 * digests of 43 characters plus separators). */
#define DIRMGR_MD_BATCH 92

/* Deliver the result of one fetch: status 200 with the (already inflated)
 * body in body[0..len) (borrowed for the call), another HTTP status with no
 * body, or a negative errno for a transport failure (-ETIMEDOUT,
 * -ECONNREFUSED, -ECANCELED when the fetcher shuts down...). why (borrowed
 * for the call; NULL: none) says what went wrong in the fetcher's words
 * when the errno alone would hide it ("TCP connect failed: Connection
 * refused" for a channel that could not open). Called exactly once per
 * accepted fetch, from any thread. */
typedef void (*dir_fetch_done_fn)(void *arg, int status, const uint8_t *body, size_t len, const char *why);

/* The I/O the manager needs. fetch starts a GET of path (borrowed, copied)
 * from src (borrowed for the call) and returns 0, after which done(done_arg,
 * ...) is called exactly once from any thread; or returns a negative errno
 * (done is then never called). Coordinator thread. */
struct dir_fetcher {
	int (*fetch)(void *ctx, const struct dir_source *src, const char *path, dir_fetch_done_fn done,
		     void *done_arg);
	void *ctx;
	bool needs_dirport; /* only sources with a DirPort can be asked (plain HTTP) */
};

struct dirmgr_config {
	const struct dirauth_list *auths; /* borrowed; copied */
	const char *data_directory;       /* borrowed; copied; NULL: no cache */
	struct dir_fetcher fetcher;
	struct netdir_slot *slot;         /* where snapshots go; NULL: netdir_global() */
	time_t (*now)(void *arg);         /* wall clock; NULL: clock_wall */
	void *now_arg;
	/* Report "Bootstrapped 100% (done)" as soon as the directory is
	 * usable: until the circuit layer reports phases 80-100 itself. */
	bool report_done;
	unsigned max_md_inflight; /* microdesc requests at once; 0: 4 */
	/* The client's directory guards (guard-spec 4.6 with
	 * guard-n-primary-dir-guards-to-use): write up to cap RSA identities,
	 * best first, to ids and return how many. Called on the coordinator
	 * thread. NULL: no guards; caches are then chosen by bandwidth. */
	size_t (*dir_guards)(void *arg, uint8_t (*ids)[SHA1_LEN], size_t cap);
	/* How a fetch from a directory guard went (guard-spec 4.7 / 4.8: the
	 * directory guards are the entry guards, and a directory request is a
	 * circuit through one): reachable when it answered at all (any HTTP
	 * status), not reachable when it could not be reached (the channel or
	 * circuit failed, the stream ended before an answer, time-out). Other
	 * failures (a bad document) say nothing. Coordinator thread; NULL:
	 * nobody listens. Gets dir_guards_arg. */
	void (*dir_guard_result)(void *arg, const uint8_t id[SHA1_LEN], bool reachable);
	void *dir_guards_arg;
};

enum dir_fetch_kind { DIR_FETCH_CONSENSUS, DIR_FETCH_CERTS, DIR_FETCH_MICRODESCS, DIR_FETCH_KINDS };
enum dir_fetch_result {
	DIR_RESULT_OK,       /* fetched and accepted */
	DIR_RESULT_FAILED,   /* transport error or HTTP status other than 200 */
	DIR_RESULT_REJECTED, /* fetched, but the document was refused */
	DIR_RESULTS,
};

/* A copy of the counters, for /metrics and /health. */
struct dirmgr_stats {
	int bootstrap_pct;
	bool usable;              /* the published snapshot is usable now */
	bool loaded_from_cache;   /* the first usable directory came from the cache */
	time_t valid_after;       /* of the published consensus; 0: none */
	time_t fresh_until, valid_until;
	time_t next_consensus_fetch; /* 0: none scheduled */
	uint64_t n_routers, n_microdescs;
	uint64_t fetches[DIR_FETCH_KINDS][DIR_RESULTS];
};

struct dirmgr;

/* Return a new manager (owned; dirmgr_free), or NULL with the reason in
 * err. Writes "Bootstrapped 0% (starting): Starting". Nothing is read or
 * fetched until the first dirmgr_tick. Coordinator (or main before it
 * starts). */
struct dirmgr *dirmgr_new(const struct dirmgr_config *cfg, char *err, size_t errlen);

/* Free d. The fetcher must be stopped first (every fetch completed or
 * cancelled), since fetches call back into d. Writes the microdescriptor
 * cache if it changed. NULL-safe. */
void dirmgr_free(struct dirmgr *d);

/* One step: load the cache (first call), handle finished fetches, publish
 * a new snapshot if there is a better one, start the fetches that are due.
 * Coordinator thread. */
void dirmgr_tick(struct dirmgr *d);

/* The earliest wall-clock time at which dirmgr_tick has timed work (the
 * next consensus fetch or retry). Coordinator thread. */
time_t dirmgr_next_wakeup(const struct dirmgr *d);

/* Copy the counters into *out. Any thread (relaxed atomic reads). */
void dirmgr_stats_read(const struct dirmgr *d, struct dirmgr_stats *out);

/* The name of a kind/result for metric labels ("consensus", "ok"...). */
const char *dir_fetch_kind_name(enum dir_fetch_kind k);
const char *dir_fetch_result_name(enum dir_fetch_result r);

/* Pick the time to fetch the next consensus, per dir-spec 5.1: uniformly
 * in [fresh_until + 3/4 (fresh_until - valid_after), that + 7/8 of the
 * rest until valid_until]. rnd is a uniform random 64-bit value. Pure. */
time_t dirmgr_refresh_time(time_t valid_after, time_t fresh_until, time_t valid_until, uint64_t rnd);

#endif
