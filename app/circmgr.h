/* The circuit manager of one shard: builds circuits over the shard's
 * channel pool along paths from app/path.h, attaches streams to them
 * (app/stream.h is implemented here), runs the batched cell pipeline
 * (all cells of a circuit that arrive in one completion batch go through
 * one proto/ call), and retries streams on another circuit when an exit
 * fails them the way tor does.
 *
 * Every function: owner shard only, except circmgr_set_directory, the
 * stats and summary readers and circmgr_ready_clean. The prebuild policy
 * (which clean circuits to keep) is app/circpool.h. Not for choosing paths (path.c), the link handshake
 * (net/channel.c) or per-cell protocol rules (proto/circuit.c). */
#ifndef ONIONRING_APP_CIRCMGR_H
#define ONIONRING_APP_CIRCMGR_H

#include <stdbool.h>
#include <stdint.h>

#include "app/stream.h"
#include "net/channel.h"
#include "net/chanpool.h"
#include "proto/circuit.h"

struct nodelist;
struct path_sel;
struct config;
struct chanpool;
struct worker;

/* What building circuits needs of the current directory. netdir provides
 * it; ref keeps that snapshot alive until released. */
struct dirview {
	const struct nodelist *nl;
	const struct path_sel *ps;
	struct circ_params cparams;
	bool cc_enabled; /* the consensus runs congestion control (cc_alg != 0) */
	bool optimistic_data; /* "UseOptimisticData" (param-spec; default 1) */
	struct cc_params cc_onion; /* Vegas for onion-service circuits (_onion params) */
	void *ref;
};
typedef bool (*dirview_acquire_fn)(struct dirview *out);
typedef void (*dirview_release_fn)(void *ref);

/* Install the directory accessors (once, before workers start). */
void circmgr_set_directory(dirview_acquire_fn acquire, dirview_release_fn release);

struct circmgr_config {
	uint64_t max_dirtiness_ns;   /* MaxCircuitDirtiness */
	uint64_t build_timeout_ns;   /* until app/cbt learns better: 60 s */
	uint64_t chan_max_idle_ns;   /* ChannelPoolMaxIdle */
	uint64_t chan_max_lifetime_ns; /* ChannelPoolMaxLifetime */
	unsigned prebuild;           /* ready clean exit circuits any key may take
				      * (CircuitPoolMinSize; 0 with CircuitPrebuild 0) */
	unsigned pool_max;           /* clean (prebuilt, unused) circuits at most
				      * (CircuitPoolMaxSize; 0 with CircuitPrebuild 0) */
	unsigned max_circuits;       /* hard cap on all circuits of a shard, streams'
				      * included: CircuitPoolMaxSize * 64, at least 64 */
};

void circmgr_config_from(struct circmgr_config *out, const struct config *cfg);

/* Per-shard counters: written by the owner with relaxed stores, read by
 * any thread (metrics). */
struct circmgr_stats {
	uint64_t circs_launched;
	uint64_t circs_built;
	uint64_t circs_failed;
	uint64_t circs_open;      /* gauge */
	uint64_t streams_opened;
	uint64_t streams_failed;
	uint64_t streams_retried;
	uint64_t streams_open;    /* gauge */
	uint64_t optimistic_bytes; /* client bytes sent after BEGIN, before CONNECTED */
	uint64_t circs_ready;     /* gauge: open clean circuits any key may take */
	uint64_t circs_reserved;  /* gauge: open clean circuits kept for a recent key */
	uint64_t circs_retired;   /* closed after their last stream (dirty, NEWNYM, rules) or as surplus */
	uint64_t streams_waited_build; /* new streams that waited for a circuit build */
	uint64_t streams_waited_ready_elsewhere; /* of them, while another shard had a ready clean circuit */
	uint64_t cells_in;
	uint64_t cells_out;
	uint64_t build_ms_sum;
	uint64_t build_hist[12];  /* counts of builds <= 10,25,50,100,250,500,1000,2500,5000,10000,30000,60000 ms */
	/* MaxMemInQueues (app/oom.h): bytes queued to and from this shard's
	 * SOCKS clients on its circuits' streams, and the worker-clock time
	 * the oldest of them was queued (0: none). Gauges, refreshed once a
	 * second and after circmgr_shed. */
	uint64_t queued_bytes;
	uint64_t queued_oldest_ns;
};
extern const double circmgr_build_bounds_ms[12];

/* Create and destroy the shard's manager; w's user pointer holds it. */
int circmgr_start(struct worker *w, const struct circmgr_config *cfg);
/* Put cfg (borrowed) in force on this shard (SIGHUP/SETCONF; owner shard
 * only). MaxCircuitDirtiness applies to every circuit, open ones included,
 * at its next stream (and one past it with no stream left closes); a raised
 * CircuitPoolMinSize is acted on at once (at most two launches a second);
 * a lowered CircuitPoolMaxSize or CircuitPrebuild 0 closes the clean
 * circuits beyond the new bound at once (never one carrying a stream).
 * The channel keys go to chanpool_reconfigure. */
void circmgr_reconfigure(struct worker *w, const struct circmgr_config *cfg);
/* Close every circuit and channel (on the worker, as it stops); the
 * counters stay readable until circmgr_free (after the workers joined). */
void circmgr_stop(struct worker *w);
void circmgr_free(struct worker *w);
void circmgr_stats_read(struct worker *w, struct circmgr_stats *out);
/* MaxMemInQueues: close this shard's circuits whose queued data is oldest
 * until the shard holds at most keep bytes queued (counted now: the
 * coordinator's figure is up to a second old, and a client's queue may
 * have shrunk or grown since), dropping what their streams hold for their
 * clients; logs each circuit. Owner shard only (the coordinator posts it:
 * app/gateway.c). */
void circmgr_shed(struct worker *w, uint64_t keep);

/* How many ready clean circuits (open, prebuilt, never used) the shard of
 * w has of kind: CIRCMGR_READY_ANY, which any stream may take, or
 * CIRCMGR_READY_RESERVED, which the pool keeps for an isolation key that
 * asked recently. Any thread (e.g. cross-shard rebalancing): a relaxed
 * load of the count the owner stores whenever a pool circuit opens, is
 * taken or closes, so it may be a moment old; 0 before circmgr_start.
 * Like circmgr_stats_read, not after circmgr_free (app/README: the known
 * race with a stopping runtime). */
enum circmgr_ready_kind { CIRCMGR_READY_ANY, CIRCMGR_READY_RESERVED };
unsigned circmgr_ready_clean(struct worker *w, enum circmgr_ready_kind kind);

/* What only the owner shard may read (its channel pool's plain counters,
 * each open circuit's congestion state), copied once a second by a
 * per-shard timer into relaxed atomics: a scrape on any thread then needs
 * no cross-shard message and no wait, and sees data at most ~1 s old. */
struct circmgr_summary {
	uint64_t updated_ns;      /* worker clock of the last copy (0: none yet) */
	uint64_t chans;           /* channels in the pool (chanpool_size) */
	struct chanpool_stats chan;
	uint64_t cc_circs;        /* open circuits running congestion control */
	uint64_t cc_cwnd;         /* sum of their cwnd, cells */
	uint64_t cc_inflight;     /* sum of their inflight, cells */
	uint64_t cc_slow_start;   /* of them, still in slow start */
	uint64_t cc_rtt_circs;    /* of them, with an RTT sample */
	uint64_t cc_rtt_usec;     /* sum of those smoothed RTTs */
	uint64_t fixed_circs;     /* open circuits on fixed SENDME windows */
	uint64_t fixed_package_window; /* sum of their package windows, cells */
};
/* Copy the last summary into out (zeros before the first). Any thread. */
void circmgr_summary_read(struct worker *w, struct circmgr_summary *out);

/* A directory stream: BEGIN_DIR on a one-hop circuit to the relay t (a
 * directory authority or cache), built with CREATE_FAST when no ntor key
 * is known (bootstrap) and reused for later fetches to the same relay. */
struct stream *stream_open_dir(struct worker *w, const struct relay_target *t,
			       const struct stream_events *ev, void *sess, const char **why);

/* The same over a fresh 3-hop circuit ending at t (which must be in the
 * consensus): onion-service descriptor fetches from HSDirs. */
struct stream *stream_open_dir_anon(struct worker *w, const struct relay_target *t,
				    const struct stream_events *ev, void *sess, const char **why);

/* --- Rebalancing across shards (issue 6; app/README.md "rebalancing") -------
 * Circuits cannot move (their channel's TLS lives on one ring); a waiting
 * SOCKS session can (app/socks.c, conn_handoff). Each shard publishes in
 * relaxed atomics its supply, the open clean exit circuits (no isolation
 * key bound yet: any new stream whose port the exit allows can use one),
 * and its demand, the streams waiting for a circuit. A shard handing a
 * session to w first claims one of w's clean circuits, so two shards do
 * not both count on the last one; the stream opened on w with
 * stream_target.handed_in gives the claim back once placed (or gone).
 * The figures are hints, not locks: w's own new streams may still take a
 * claimed circuit, and then the arriving stream waits there like any other.
 * All of these: any thread. */

/* Supply: circmgr_ready_clean (above), CIRCMGR_READY_ANY. */
/* w's streams waiting for a circuit. */
uint64_t circmgr_waiting(struct worker *w);
/* Ready clean circuits of w not claimed by a hand-off on its way. */
uint64_t circmgr_available(struct worker *w);
/* Claim one of w's available circuits for a session about to be handed to
 * w. Return false when none is left. Give it back with
 * circmgr_release_claim when the hand-off fails. */
bool circmgr_claim_ready(struct worker *w);
void circmgr_release_claim(struct worker *w);
/* Claim w's open circuit reserved for iso (borrowed; CIRCMGR_READY_
 * RESERVED, published in w's key table, app/keyslots.h) for a session
 * about to be handed to w. Return the slot (>= 0; the stream opened on w
 * carries it in stream_target.keyed/key_slot and releases it once placed),
 * or -1 when w publishes no unclaimed one for iso. A hash match of another
 * key is harmless: the session then waits on w like any stream. Give it
 * back with circmgr_release_reserved when the hand-off fails. */
int circmgr_claim_reserved(struct worker *w, const struct isolation_key *iso);
void circmgr_release_reserved(struct worker *w, int slot);
/* Move build quota (the coordinator): w keeps CircuitPoolMinSize + delta
 * clean circuits (clamped to 0..the pool cap) from its next prebuild step
 * (within 1 s). Only while CircuitPrebuild is on. */
void circmgr_set_prebuild_boost(struct worker *w, int64_t delta);
int64_t circmgr_prebuild_boost(struct worker *w);

/* A worker_msg_fn (post it to w; it runs on w, arg unused): offer each
 * stream waiting on w for a circuit build, still on its first attempt, to
 * move while another shard has an unclaimed ready clean circuit
 * (stream_events.on_would_wait). A circuit launched for streams that all
 * left becomes a clean one. The coordinator posts it to starved shards. */
void circmgr_offer_waiting(struct worker *w, void *arg);

/* A worker_msg_fn (post it to w; arg unused): run the circuit pool's
 * period now (sweep, refill) instead of at its next tick. The coordinator
 * posts it once the first usable directory and guard exist, so the first
 * circuits do not wait up to a period for them. */
void circmgr_refill_now(struct worker *w, void *arg);

/* Log one line per open circuit (SIGNAL DUMP and tests). */
void circmgr_dump(struct worker *w);

/* --- The control port (owner shard only) ------------------------------------
 * Ids are the process-unique ones the CIRC and STREAM events publish; a
 * caller that does not know the owner asks every shard (app/shardreq.h). */

/* Close the stream with this id (CLOSESTREAM, control-spec 3.16): a
 * RELAY_END with reason (tor-spec 6.3) when it is on a circuit, a STREAM
 * FAILED/CLOSED event with that reason, and its session's on_end (tor's
 * SOCKS reply for reason when it was not connected yet). Return 0, or
 * -ENOENT when this shard has no such stream. */
int circmgr_close_stream(struct worker *w, uint64_t id, uint8_t reason);
/* Close the circuit with this id (CLOSECIRCUIT, 3.17) as any circuit
 * death: DESTROY, CIRC CLOSED/FAILED REASON=REQUESTED, its streams retried
 * or failed. With if_unused a circuit that carries or awaits streams stays
 * (still 0). Return 0, or -ENOENT when this shard has no such circuit. */
int circmgr_close_circuit(struct worker *w, uint64_t id, bool if_unused);
/* Call fn(ctx, id, text, len) once per live circuit (circs) or stream
 * (!circs) of this shard with its GETINFO circuit-status / stream-status
 * line (3.9), no line ending; text is borrowed for the call. */
typedef void (*circmgr_status_fn)(void *ctx, uint64_t id, const char *text, size_t len);
void circmgr_status(struct worker *w, bool circs, circmgr_status_fn fn, void *ctx);
/* This shard's channel pool (GETINFO orconn-status, app/orconn.h), or
 * NULL before circmgr_start. Borrowed; owner shard only. */
const struct chanpool *circmgr_chanpool(struct worker *w);

#endif
