/* Circuit build timeout estimator (path-spec 2.4). See cbt.h. Not for
 * timers or for deciding which circuits to build. */
#include "app/cbt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/log.h"

#define CBT_NBINS 6000 /* 10 ms bins up to 60 s; longer times go in the last */

void cbt_params_get(struct cbt_params *p, const struct consensus *c)
{
	static const struct consensus empty;
	const struct consensus *k = c ? c : &empty;

	p->disabled = consensus_param(k, "cbtdisabled", 0, 0, 1);
	p->nummodes = consensus_param(k, "cbtnummodes", 10, 1, 20);
	p->recentcount = consensus_param(k, "cbtrecentcount", 20, 3, 1000);
	p->maxtimeouts = consensus_param(k, "cbtmaxtimeouts", 18, 3, 10000);
	p->mincircs = consensus_param(k, "cbtmincircs", 100, 1, 10000);
	p->quantile = consensus_param(k, "cbtquantile", 80, 10, 99);
	p->closequantile = consensus_param(k, "cbtclosequantile", 99, p->quantile, 99);
	p->mintimeout = consensus_param(k, "cbtmintimeout", 10, 10, INT32_MAX);
	p->initialtimeout = consensus_param(k, "cbtinitialtimeout", 60000, p->mintimeout, INT32_MAX);
}

static void cbt_reset_estimate(struct cbt *b)
{
	b->have_estimate = false;
	b->xm = b->alpha = 0;
	b->timeout_ms = b->close_ms = b->p.initialtimeout;
}

void cbt_init(struct cbt *b, const struct cbt_params *p)
{
	memset(b, 0, sizeof(*b));
	b->p = *p;
	cbt_reset_estimate(b);
}

void cbt_set_params(struct cbt *b, const struct cbt_params *p)
{
	b->p = *p;
	if (p->disabled) {
		cbt_init(b, p); /* 2.4.6 cbtdisabled: discard history */
		return;
	}
	cbt_reset_estimate(b);
	memset(b->recent, 0, sizeof(b->recent)); /* the window size may change */
	b->recent_n = b->recent_next = 0;
	if (b->n >= (size_t)b->p.mincircs)
		cbt_add_time(b, 0); /* re-estimate only */
}

static uint32_t bin_of(uint32_t ms)
{
	uint32_t k = ms / CBT_BIN_WIDTH_MS;

	return k >= CBT_NBINS ? CBT_NBINS - 1 : k;
}

/* path-spec 2.4.3: Xm is the count-weighted mean of the midpoints of the
 * cbtnummodes most frequent bins, ties going to the earlier bin. */
static double cbt_xm(const struct cbt *b)
{
	uint32_t *hist = calloc(CBT_NBINS, sizeof(*hist));
	uint32_t modes[20];
	int nmodes = 0;
	double num = 0, den = 0;

	if (!hist)
		abort();
	for (size_t i = 0; i < b->n; i++)
		hist[bin_of(b->times[i])]++;
	for (int m = 0; m < b->p.nummodes && m < 20; m++) {
		uint32_t best = CBT_NBINS;

		for (uint32_t k = 0; k < CBT_NBINS; k++) {
			bool taken = false;

			for (int q = 0; q < nmodes; q++)
				taken |= modes[q] == k;
			if (!taken && hist[k] && (best == CBT_NBINS || hist[k] > hist[best]))
				best = k;
		}
		if (best == CBT_NBINS)
			break;
		modes[nmodes++] = best;
	}
	for (int q = 0; q < nmodes; q++) {
		num += (modes[q] * CBT_BIN_WIDTH_MS + CBT_BIN_WIDTH_MS / 2.0) * hist[modes[q]];
		den += hist[modes[q]];
	}
	free(hist);
	return den > 0 ? num / den : 0;
}

static void cbt_estimate(struct cbt *b)
{
	double xm = cbt_xm(b), sum = 0, n = (double)b->n, t, c;

	if (xm <= 0)
		return;
	/* path-spec 2.4.3: alpha = n / (sum ln(max(Xm, x_i)) - n ln Xm). */
	for (size_t i = 0; i < b->n; i++)
		sum += log(fmax(xm, (double)b->times[i]));
	if (sum - n * log(xm) <= 0)
		return; /* every time at or below Xm: no tail to fit yet */
	b->xm = xm;
	b->alpha = n / (sum - n * log(xm));
	t = xm / pow(1.0 - b->p.quantile / 100.0, 1.0 / b->alpha);
	c = xm / pow(1.0 - b->p.closequantile / 100.0, 1.0 / b->alpha);
	t = fmin(t, (double)b->max_observed_ms);
	c = fmax(fmin(c, 2.0 * b->max_observed_ms), (double)b->p.initialtimeout);
	b->timeout_ms = fmax(t, (double)b->p.mintimeout);
	b->close_ms = fmax(c, b->timeout_ms);
	b->have_estimate = true;
}

void cbt_add_time(struct cbt *b, uint32_t ms)
{
	if (b->p.disabled)
		return;
	if (ms > 0) {
		b->times[b->next] = ms;
		b->next = (b->next + 1) % CBT_NCIRCUITS_TO_OBSERVE;
		if (b->n < CBT_NCIRCUITS_TO_OBSERVE)
			b->n++;
		if (ms > b->max_observed_ms)
			b->max_observed_ms = ms;
	}
	if (b->n >= (size_t)b->p.mincircs && b->p.mincircs <= CBT_NCIRCUITS_TO_OBSERVE)
		cbt_estimate(b);
}

void cbt_note_outcome(struct cbt *b, bool timed_out)
{
	size_t cnt = 0, window = (size_t)b->p.recentcount;

	b->recent[b->recent_next] = timed_out;
	b->recent_next = (b->recent_next + 1) % window;
	if (b->recent_n < window)
		b->recent_n++;
	for (size_t i = 0; i < b->recent_n; i++)
		cnt += b->recent[i];
	if (cnt < (size_t)b->p.maxtimeouts)
		return;
	/* path-spec 2.4.5: the network changed; forget and start over, and
	 * double the timeout if it was already at least the initial one. */
	double old = b->timeout_ms;

	log_notice("cbt: %zu of the last %zu circuits timed out; resetting the build timeout",
		   cnt, b->recent_n);
	memset(b->times, 0, sizeof(b->times));
	b->n = b->next = b->max_observed_ms = 0;
	memset(b->recent, 0, sizeof(b->recent));
	b->recent_n = b->recent_next = 0;
	cbt_reset_estimate(b);
	if (old >= b->p.initialtimeout)
		b->timeout_ms = b->close_ms = 2 * old;
}

static double actions(unsigned n)
{
	return n * (n + 1) / 2.0;
}

double cbt_timeout_ms(const struct cbt *b, unsigned hops)
{
	return b->timeout_ms * actions(hops) / actions(3);
}

double cbt_close_ms(const struct cbt *b, unsigned hops)
{
	return b->close_ms * actions(hops) / actions(3);
}

/* ---- State file lines (tor's format) ---------------------------------------- */

int cbt_state_write(const struct cbt *b, char *out, size_t cap)
{
	uint32_t *hist = calloc(CBT_NBINS, sizeof(*hist));
	size_t len = 0;
	int w;

	if (!hist)
		abort();
	for (size_t i = 0; i < b->n; i++)
		hist[bin_of(b->times[i])]++;
	w = snprintf(out, cap, "CircuitBuildAbandonedCount %u\nTotalBuildTimes %zu\n", b->abandoned, b->n);
	if (w < 0 || (size_t)w >= cap)
		goto full;
	len = (size_t)w;
	for (uint32_t k = 0; k < CBT_NBINS; k++) {
		if (!hist[k])
			continue;
		/* Each bin is written as its midpoint, as tor does. */
		w = snprintf(out + len, cap - len, "CircuitBuildTimeBin %u %u\n",
			     k * CBT_BIN_WIDTH_MS + CBT_BIN_WIDTH_MS / 2, hist[k]);
		if (w < 0 || (size_t)w >= cap - len)
			goto full;
		len += (size_t)w;
	}
	free(hist);
	return (int)len;
full:
	free(hist);
	return -1;
}

void cbt_state_begin(struct cbt *b)
{
	struct cbt_params p = b->p;

	cbt_init(b, &p);
}

bool cbt_state_owns_key(const char *key)
{
	return strcmp(key, "CircuitBuildAbandonedCount") == 0 || strcmp(key, "TotalBuildTimes") == 0 ||
	       strcmp(key, "CircuitBuildTimeBin") == 0;
}

static bool parse_u32(const char *s, char **end, uint32_t *out)
{
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, end, 10);
	if (errno || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

bool cbt_state_line(struct cbt *b, const char *key, const char *value)
{
	uint32_t ms, count;
	char *e;

	if (strcmp(key, "CircuitBuildAbandonedCount") == 0)
		return parse_u32(value, &e, &b->abandoned) && *e == '\0';
	if (strcmp(key, "TotalBuildTimes") == 0)
		return parse_u32(value, &e, &count) && *e == '\0'; /* recomputed from bins */
	if (strcmp(key, "CircuitBuildTimeBin") != 0)
		return false;
	if (!parse_u32(value, &e, &ms) || *e != ' ' || !parse_u32(e + 1, &e, &count) || *e != '\0')
		return false;
	if (ms == 0 || count > CBT_NCIRCUITS_TO_OBSERVE)
		return false;
	for (uint32_t i = 0; i < count && b->n < CBT_NCIRCUITS_TO_OBSERVE; i++) {
		b->times[b->n++] = ms;
		if (ms > b->max_observed_ms)
			b->max_observed_ms = ms;
	}
	return true;
}

void cbt_state_done(struct cbt *b)
{
	/* path-spec 2.4.2: shuffle so the oldest are not all from one bin. */
	for (size_t i = b->n; i > 1; i--) {
		size_t j = (size_t)crypto_rand_uint64(i);
		uint32_t t = b->times[i - 1];

		b->times[i - 1] = b->times[j];
		b->times[j] = t;
	}
	b->next = b->n % CBT_NCIRCUITS_TO_OBSERVE;
	if (b->n >= (size_t)b->p.mincircs)
		cbt_estimate(b);
}
