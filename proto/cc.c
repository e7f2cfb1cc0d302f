/* Tor Vegas congestion control (proposal 324 §2.1, §3.3). See cc.h.
 * Not for SENDME authentication or stream flow control. */
#include "proto/cc.h"

#include <stdint.h>
#include <string.h>

#include "core/compiler.h"

#define OUTBUF_CELLS 62 /* 324 §6.5.3 */

void cc_params_default(struct cc_params *p)
{
	memset(p, 0, sizeof(*p));
	p->alg = CC_ALG_VEGAS;
	p->sendme_inc = 31;
	p->cwnd_init = 4 * 31;
	p->cwnd_min = 31;
	p->cwnd_max = INT32_MAX;
	p->cwnd_inc = 31;
	p->cwnd_inc_rate = 1;
	p->cwnd_inc_pct_ss = 50;
	p->ss_max = 5000;
	p->sscap = 500; /* cc_sscap_exit */
	p->vegas_alpha = 2 * OUTBUF_CELLS;
	p->vegas_beta = 4 * OUTBUF_CELLS;
	p->vegas_gamma = 3 * OUTBUF_CELLS;
	p->vegas_delta = 6 * OUTBUF_CELLS;
	/* §3.3: gap 1 with per-cwnd caching is "slightly better for performance". */
	p->cwnd_full_gap = 1;
	p->cwnd_full_minpct = 75;
	p->cwnd_full_per_cwnd = true;
	p->ewma_cwnd_pct = 50;
	p->ewma_max = 10;
	p->ewma_ss = 2;
}

/* SENDME_PER_CWND (§3.3). */
static uint32_t sendme_per_cwnd(const struct cc *cc)
{
	return (uint32_t)((cc->cwnd + cc->sendme_inc / 2) / cc->sendme_inc);
}

/* CWND_UPDATE_RATE (§3.3): every SENDME in slow start, else every
 * cc_cwnd_inc_rate * sendme_inc cells of cwnd. */
static uint32_t cwnd_update_rate(const struct cc *cc)
{
	uint64_t unit = (uint64_t)cc->p.cwnd_inc_rate * cc->sendme_inc;

	if (cc->in_slow_start)
		return 1;
	return (uint32_t)MAX(((uint64_t)cc->cwnd + unit / 2) / unit, 1);
}

void cc_init(struct cc *cc, const struct cc_params *p, uint32_t sendme_inc, uint32_t cwnd_cap)
{
	memset(cc, 0, sizeof(*cc));
	cc->p = *p;
	cc->sendme_inc = sendme_inc ? sendme_inc : 1;
	if (cc->p.cwnd_max > cwnd_cap)
		cc->p.cwnd_max = cwnd_cap;
	if (cc->p.cwnd_min < cc->sendme_inc)
		cc->p.cwnd_min = cc->sendme_inc; /* "must never be set below cc_sendme_inc" */
	if (cc->p.cwnd_inc_rate == 0)
		cc->p.cwnd_inc_rate = 1;
	cc->cwnd = MIN(MAX(p->cwnd_init, cc->p.cwnd_min), cc->p.cwnd_max);
	cc->in_slow_start = true;
	cc->next_cc_event = cwnd_update_rate(cc);
	cc->next_cwnd_event = sendme_per_cwnd(cc);
}

uint64_t cc_bdp(const struct cc *cc)
{
	/* §3.1.2: BDP = cwnd * RTT_min / RTT_current_ewma. */
	if (cc->ewma_rtt_usec == 0)
		return (uint64_t)cc->cwnd;
	return (uint64_t)cc->cwnd * cc->min_rtt_usec / cc->ewma_rtt_usec;
}

/* §2.1.1: return false when rtt must not be used (a stall or a jump). */
static bool rtt_is_usable(struct cc *cc, uint64_t rtt)
{
	if (rtt == 0) {
		cc->clock_stalled = true;
		return false;
	}
	if (cc->ewma_rtt_usec == 0 || cc->in_slow_start)
		return true;
	if (rtt / 5000 > cc->ewma_rtt_usec)
		return false; /* jumped forward */
	if (rtt * 5000 < cc->ewma_rtt_usec)
		return !cc->clock_stalled; /* believe it only if no stall was seen */
	cc->clock_stalled = false;
	return true;
}

/* §2.1.2: N_EWMA with the second (rounding-defined) form. */
static void rtt_update(struct cc *cc, uint64_t rtt)
{
	uint64_t n;

	if (cc->ewma_rtt_usec == 0) {
		cc->ewma_rtt_usec = rtt;
	} else {
		if (cc->in_slow_start)
			n = cc->p.ewma_ss;
		else
			n = MAX(MIN((uint64_t)cwnd_update_rate(cc) * cc->p.ewma_cwnd_pct / 100,
				    (uint64_t)cc->p.ewma_max), 2);
		n = MAX(n, 2);
		cc->ewma_rtt_usec = (rtt * 2 + cc->ewma_rtt_usec * (n - 1)) / (n + 1);
		if (cc->ewma_rtt_usec == 0)
			cc->ewma_rtt_usec = 1;
	}
	if (cc->min_rtt_usec == 0 || cc->ewma_rtt_usec < cc->min_rtt_usec)
		cc->min_rtt_usec = cc->ewma_rtt_usec;
}

/* rfc3742_ss_inc (§3.3). */
static int64_t ss_inc(const struct cc *cc)
{
	if (cc->cwnd <= (int64_t)cc->p.sscap)
		return ((int64_t)cc->p.cwnd_inc_pct_ss * cc->sendme_inc + 50) / 100;
	return MAX(((int64_t)cc->sendme_inc * cc->p.sscap + cc->cwnd) / (2 * cc->cwnd), 1);
}

static void vegas_slow_start(struct cc *cc, uint64_t queue_use, uint64_t bdp)
{
	if (queue_use < cc->p.vegas_gamma) {
		if (cc->cwnd_full) {
			int64_t inc = ss_inc(cc);

			cc->cwnd += inc;
			/* Exit once the RFC 3742 increment per cwnd of acks
			 * is no better than steady state's. */
			if ((uint64_t)inc * sendme_per_cwnd(cc) <=
			    (uint64_t)cc->p.cwnd_inc * cc->p.cwnd_inc_rate)
				cc->in_slow_start = false;
		}
	} else {
		cc->in_slow_start = false;
		cc->cwnd = (int64_t)(bdp + cc->p.vegas_gamma);
	}
	if (cc->cwnd >= (int64_t)cc->p.ss_max) {
		cc->cwnd = cc->p.ss_max;
		cc->in_slow_start = false;
	}
}

static void vegas_steady(struct cc *cc, uint64_t queue_use, uint64_t bdp)
{
	if (queue_use > cc->p.vegas_delta)
		cc->cwnd = (int64_t)(bdp + cc->p.vegas_delta) - cc->p.cwnd_inc;
	else if (queue_use > cc->p.vegas_beta)
		cc->cwnd -= cc->p.cwnd_inc;
	else if (cc->cwnd_full && queue_use < cc->p.vegas_alpha)
		cc->cwnd += cc->p.cwnd_inc;
	cc->cwnd = MAX(cc->cwnd, (int64_t)cc->p.cwnd_min);
}

int cc_on_sendme(struct cc *cc, uint64_t rtt_usec)
{
	uint64_t bdp, queue_use;

	if (cc->inflight < (int64_t)cc->sendme_inc)
		return -1;
	if (cc->next_cc_event)
		cc->next_cc_event--;
	if (cc->next_cwnd_event)
		cc->next_cwnd_event--;
	if (!rtt_is_usable(cc, rtt_usec)) {
		cc->inflight -= cc->sendme_inc;
		return 0;
	}
	rtt_update(cc, rtt_usec);
	bdp = cc_bdp(cc);
	queue_use = bdp > (uint64_t)cc->cwnd ? 0 : (uint64_t)cc->cwnd - bdp;
	/* cwnd_is_full / cwnd_is_nonfull (§3.3). */
	if (cc->inflight + (int64_t)cc->p.cwnd_full_gap * cc->sendme_inc >= cc->cwnd)
		cc->cwnd_full = true;
	else if (100 * cc->inflight < (int64_t)cc->p.cwnd_full_minpct * cc->cwnd)
		cc->cwnd_full = false;
	/* orconn_blocked is not known to proto/: it stays false here. */
	if (cc->in_slow_start)
		vegas_slow_start(cc, queue_use, bdp);
	else if (cc->next_cc_event == 0)
		vegas_steady(cc, queue_use, bdp);
	cc->cwnd = MIN(MAX(cc->cwnd, (int64_t)cc->p.cwnd_min), (int64_t)cc->p.cwnd_max);
	if (cc->next_cc_event == 0)
		cc->next_cc_event = cwnd_update_rate(cc);
	if (cc->next_cwnd_event == 0)
		cc->next_cwnd_event = sendme_per_cwnd(cc);
	if (cc->p.cwnd_full_per_cwnd) {
		if (cc->next_cwnd_event == sendme_per_cwnd(cc))
			cc->cwnd_full = false;
	} else if (cc->next_cc_event == cwnd_update_rate(cc)) {
		cc->cwnd_full = false;
	}
	cc->inflight -= cc->sendme_inc;
	return 0;
}
