/* Congestion control for one circuit endpoint: Tor Vegas with RFC 3742
 * limited slow start (proposal 324 §3.3), the RTT estimator with N_EWMA
 * smoothing (§2.1, §2.1.2) and the clock-jump heuristics (§2.1.1).
 *
 * For: the client side of a circuit on which congestion control was
 * negotiated (proposal 324 §10): cwnd/inflight replace the fixed package
 * window. Not for: SENDME digests (proto/circuit.c keeps them), XON/XOFF
 * (stream flow control lives with the streams), or reading the consensus
 * (app/ fills struct cc_params). Time is an input: callers pass monotonic
 * microseconds; nothing here reads a clock. No allocation. A struct cc is
 * owned by its circuit: owner shard only. */
#ifndef ONIONRING_PROTO_CC_H
#define ONIONRING_PROTO_CC_H

#include <stdbool.h>
#include <stdint.h>

enum cc_alg {
	CC_ALG_FIXED = 0, /* SENDME windows (tor-spec 7.3) */
	CC_ALG_VEGAS = 2, /* the only algorithm we run (324 §6.5.1: "2=Vegas") */
};

/* Consensus parameters (proposal 324 §6.5); cc_params_default gives the
 * proposal's defaults for exit circuits. */
struct cc_params {
	uint8_t alg;          /* cc_alg */
	uint8_t sendme_inc;   /* cc_sendme_inc */
	uint32_t cwnd_init;   /* cc_cwnd_init */
	uint32_t cwnd_min;    /* cc_cwnd_min */
	uint32_t cwnd_max;    /* cc_cwnd_max */
	uint32_t cwnd_inc;    /* cc_cwnd_inc */
	uint32_t cwnd_inc_rate;   /* cc_cwnd_inc_rate */
	uint32_t cwnd_inc_pct_ss; /* cc_cwnd_inc_pct_ss */
	uint32_t ss_max;      /* cc_ss_max */
	uint32_t sscap;       /* cc_sscap_exit (or _onion) */
	uint32_t vegas_alpha, vegas_beta, vegas_gamma, vegas_delta; /* cc_vegas_*_exit */
	uint32_t cwnd_full_gap;    /* cc_cwnd_full_gap */
	uint32_t cwnd_full_minpct; /* cc_cwnd_full_minpct */
	bool cwnd_full_per_cwnd;   /* cc_cwnd_full_per_cwnd */
	uint32_t ewma_cwnd_pct;    /* cc_ewma_cwnd_pct */
	uint32_t ewma_max;         /* cc_ewma_max */
	uint32_t ewma_ss;          /* cc_ewma_ss */
};

struct cc {
	struct cc_params p; /* a copy: a consensus change does not touch a live circuit */
	uint32_t sendme_inc; /* negotiated (proposal 324 §10.3) */
	int64_t cwnd;
	int64_t inflight; /* DATA cells sent and not yet acked by a SENDME */
	uint64_t ewma_rtt_usec; /* 0 until the first sample */
	uint64_t min_rtt_usec;  /* minimum of ewma_rtt_usec (§3.1.2) */
	uint32_t next_cc_event, next_cwnd_event;
	bool in_slow_start;
	bool cwnd_full;
	bool clock_stalled; /* §2.1.1 keeps this "globally"; we keep it per circuit */
};

/* Fill p with the proposal 324 §6.5 defaults (Vegas, exit circuits). */
void cc_params_default(struct cc_params *p);

/* Start congestion control on a circuit with the negotiated sendme_inc
 * (>= 1). cwnd_cap (>= sendme_inc) bounds cwnd in addition to cwnd_max:
 * the circuit's SENDME digest ring holds cwnd_cap / sendme_inc entries.
 * Borrows p. */
void cc_init(struct cc *cc, const struct cc_params *p, uint32_t sendme_inc, uint32_t cwnd_cap);

/* Return true while one more DATA cell fits: inflight < cwnd (§3: cells
 * cease being sent when cwnd - inflight <= 0). */
static inline bool cc_can_send(const struct cc *cc) { return cc->inflight < cc->cwnd; }

/* Return cwnd - inflight, or 0 when that is negative (§3). */
static inline uint32_t cc_package_window(const struct cc *cc)
{
	return cc->inflight >= cc->cwnd ? 0 : (uint32_t)(cc->cwnd - cc->inflight);
}

/* Count one DATA cell sent. */
static inline void cc_note_sent(struct cc *cc) { cc->inflight++; }

/* Process one circuit SENDME whose triggering DATA cell was sent rtt_usec
 * ago: update the RTT estimate and run Vegas (§3.3). Returns 0, or -1 when
 * fewer than sendme_inc cells are in flight (a SENDME for data never sent:
 * the caller closes the circuit). */
int cc_on_sendme(struct cc *cc, uint64_t rtt_usec);

/* The current cwnd-based BDP estimate (§3.1.2), in cells. */
uint64_t cc_bdp(const struct cc *cc);

#endif
