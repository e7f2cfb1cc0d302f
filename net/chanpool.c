/* The per-shard channel pool (see chanpool.h). */
#include "net/chanpool.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/log.h"

#define NS_PER_S 1000000000ull
#define CHANPOOL_BUCKETS 1024 /* power of 2 */
#define SWEEP_MIN_NS (10ull * 1000000ull)
#define SWEEP_MAX_NS (10ull * NS_PER_S)

struct waiter {
	struct waiter *next;
	chanpool_cb cb;
	void *arg;
};

struct pool_entry {
	struct pool_entry *hnext;          /* hash chain (current entries only) */
	struct pool_entry *prev, *next;    /* every entry, retired ones too */
	struct chanpool *pool;
	struct channel *ch;
	struct waiter *waiters;
	uint8_t rsa_id[20];
	uint64_t id;                       /* the observer's channel id */
	bool hashed;
	bool retired;
	bool opened;                       /* CONNECTED was reported */
	bool ended;                        /* FAILED or CLOSED was reported */
};

/* Channel ids for the observer: one counter for every shard's pool, so an
 * id names one channel in the whole process (ORCONN's ID=). Relaxed: only
 * uniqueness matters. */
static _Atomic uint64_t next_chan_id = 1;

struct chanpool {
	struct worker *w;
	struct chanpool_config cfg;
	struct chanpool_stats stats;
	struct timer sweep;
	uint64_t sweep_ns;
	size_t n;
	struct pool_entry *all;
	struct pool_entry *buckets[CHANPOOL_BUCKETS];
};

void chanpool_config_defaults(struct chanpool_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_idle_ns = CHANPOOL_DEFAULT_MAX_IDLE_S * NS_PER_S;
	cfg->max_lifetime_ns = CHANPOOL_DEFAULT_MAX_LIFETIME_S * NS_PER_S;
	channel_config_defaults(&cfg->chan);
}

void chanpool_config_set_seconds(struct chanpool_config *cfg, int64_t max_idle_s,
				 int64_t max_lifetime_s)
{
	if (max_idle_s > 0)
		cfg->max_idle_ns = (uint64_t)max_idle_s * NS_PER_S;
	if (max_lifetime_s > 0)
		cfg->max_lifetime_ns = (uint64_t)max_lifetime_s * NS_PER_S;
}

static size_t bucket_of(const uint8_t rsa_id[20])
{
	/* The id is a SHA1 digest: its first bytes are already uniform. */
	return (((size_t)rsa_id[0] << 8) | rsa_id[1]) & (CHANPOOL_BUCKETS - 1);
}

static struct pool_entry *lookup(struct chanpool *p, const uint8_t rsa_id[20])
{
	for (struct pool_entry *e = p->buckets[bucket_of(rsa_id)]; e; e = e->hnext)
		if (memcmp(e->rsa_id, rsa_id, 20) == 0)
			return e;
	return NULL;
}

static void unhash(struct pool_entry *e)
{
	struct pool_entry **pp;

	if (!e->hashed)
		return;
	for (pp = &e->pool->buckets[bucket_of(e->rsa_id)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	e->hashed = false;
}

static void entry_free(struct pool_entry *e)
{
	struct chanpool *p = e->pool;

	unhash(e);
	if (e->prev)
		e->prev->next = e->next;
	else
		p->all = e->next;
	if (e->next)
		e->next->prev = e->prev;
	p->n--;
	free(e);
}

static size_t count_waiters(const struct pool_entry *e)
{
	size_t n = 0;

	for (const struct waiter *wt = e->waiters; wt; wt = wt->next)
		n++;
	return n;
}

/* What the observer and chanpool_foreach see of e. */
static void entry_info(const struct pool_entry *e, struct chanpool_chan_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->id = e->id;
	ci->target = channel_target(e->ch);
	ci->open = e->opened && !e->ended;
	ci->ncircs = channel_n_circs(e->ch) + count_waiters(e);
}

/* Tell the observer about e; FAILED/CLOSED at most once, and CLOSED only
 * after CONNECTED (else it is FAILED, as control-spec 4.1.3 defines). */
static void observe(struct pool_entry *e, enum chanpool_chan_event ev, int err, const char *why,
		    size_t ncircs)
{
	struct chanpool *p = e->pool;
	struct chanpool_chan_info ci;

	if (ev == CHANPOOL_CHAN_FAILED || ev == CHANPOOL_CHAN_CLOSED) {
		if (e->ended)
			return;
		e->ended = true;
		ev = e->opened ? CHANPOOL_CHAN_CLOSED : CHANPOOL_CHAN_FAILED;
	} else if (ev == CHANPOOL_CHAN_CONNECTED) {
		e->opened = true;
	}
	if (!p->cfg.observe)
		return;
	entry_info(e, &ci);
	ci.ncircs = ncircs;
	ci.err = err;
	ci.why = why;
	p->cfg.observe(p->cfg.observe_arg, ev, &ci);
}

/* Answer every waiter of e (ch NULL: with the error). The list is taken
 * first: a callback may call chanpool_get again. */
static void wake_waiters(struct pool_entry *e, struct channel *ch, int err, const char *why)
{
	struct waiter *wt = e->waiters;

	e->waiters = NULL;
	while (wt) {
		struct waiter *next = wt->next;

		wt->cb(ch, err, why, wt->arg);
		free(wt);
		wt = next;
	}
}

static void pool_on_open(struct channel *ch, int err, const char *why, void *arg)
{
	struct pool_entry *e = arg;

	if (err == 0) {
		observe(e, CHANPOOL_CHAN_CONNECTED, 0, NULL, count_waiters(e));
		wake_waiters(e, ch, 0, NULL);
		return;
	}
	observe(e, CHANPOOL_CHAN_FAILED, err, why, count_waiters(e));
	e->pool->stats.failed++;
	unhash(e); /* the next get opens afresh */
	wake_waiters(e, NULL, err, why);
}

static void pool_on_closed(struct channel *ch, int err, const char *why, void *arg)
{
	struct pool_entry *e = arg;

	if (err != 0 && !e->retired)
		e->pool->stats.lost++;
	observe(e, CHANPOOL_CHAN_CLOSED, err, why, channel_n_circs_at_close(ch) + count_waiters(e));
	/* Normally empty; not when the open failed before anyone waited. */
	wake_waiters(e, NULL, err ? err : -ECONNRESET, why);
	entry_free(e);
}

static const struct channel_ops pool_channel_ops = {
	.on_open = pool_on_open,
	.on_closed = pool_on_closed,
};

static int add_waiter(struct pool_entry *e, chanpool_cb cb, void *arg)
{
	struct waiter *wt = malloc(sizeof(*wt));

	if (!wt)
		return -ENOMEM;
	wt->cb = cb;
	wt->arg = arg;
	wt->next = e->waiters;
	e->waiters = wt;
	return 0;
}

static struct pool_entry *entry_new(struct chanpool *p, const struct relay_target *t)
{
	struct pool_entry *e = calloc(1, sizeof(*e));
	size_t b = bucket_of(t->rsa_id);

	if (!e)
		return NULL;
	e->pool = p;
	memcpy(e->rsa_id, t->rsa_id, 20);
	e->hnext = p->buckets[b];
	p->buckets[b] = e;
	e->hashed = true;
	e->next = p->all;
	if (p->all)
		p->all->prev = e;
	p->all = e;
	p->n++;
	return e;
}

/* An open channel proved the RSA id; check the Ed25519 id if t has one. */
static bool ed_matches(struct channel *ch, const struct relay_target *t)
{
	return !t->has_ed || crypto_memeq(channel_identity(ch)->ed_id, t->ed_id, 32);
}

struct channel *chanpool_get(struct chanpool *p, const struct relay_target *t, chanpool_cb cb,
			     void *arg, int *err)
{
	struct pool_entry *e = lookup(p, t->rsa_id);

	*err = 0;
	if (e && channel_state(e->ch) == CHANNEL_CLOSING) {
		unhash(e); /* going away: its waiters get the error; open afresh */
		e = NULL;
	}
	if (e && channel_is_open(e->ch)) {
		if (!ed_matches(e->ch, t)) {
			log_warn("channel to %s proved another Ed25519 identity than asked for",
				 channel_name(e->ch));
			*err = -EPERM;
			return NULL;
		}
		p->stats.reused++;
		return e->ch;
	}
	if (e) {
		*err = add_waiter(e, cb, arg);
		if (*err == 0)
			p->stats.joined++;
		return NULL;
	}
	e = entry_new(p, t);
	if (!e || add_waiter(e, cb, arg) < 0) {
		if (e)
			entry_free(e);
		*err = -ENOMEM;
		return NULL;
	}
	p->stats.opened++;
	/* Relaxed: see next_chan_id. */
	e->id = atomic_fetch_add_explicit(&next_chan_id, 1, memory_order_relaxed);
	e->ch = channel_open(p->w, t, &p->cfg.chan, &pool_channel_ops, e, err);
	if (p->cfg.observe) {
		struct chanpool_chan_info ci = { .id = e->id, .target = t, .ncircs = 1 };

		if (e->ch)
			entry_info(e, &ci);
		p->cfg.observe(p->cfg.observe_arg, CHANPOOL_CHAN_LAUNCHED, &ci);
		if (!e->ch) {
			/* Refused at once (no outbound slot: -EMFILE, or
			 * stopping): still a launch that failed, as tor
			 * reports one. */
			ci.err = *err;
			ci.why = "cannot open a connection";
			p->cfg.observe(p->cfg.observe_arg, CHANPOOL_CHAN_FAILED, &ci);
		}
	}
	if (!e->ch) {
		free(e->waiters);
		e->waiters = NULL;
		entry_free(e);
		p->stats.failed++;
		return NULL;
	}
	return NULL;
}

void chanpool_cancel(struct chanpool *p, chanpool_cb cb, void *arg)
{
	for (struct pool_entry *e = p->all; e; e = e->next) {
		struct waiter **pp = &e->waiters;

		while (*pp) {
			struct waiter *wt = *pp;

			if (wt->cb == cb && wt->arg == arg) {
				*pp = wt->next;
				free(wt);
			} else {
				pp = &wt->next;
			}
		}
	}
}

/* Close idle channels, retire old ones; closes complete later. */
static void sweep(struct timer *t, void *arg)
{
	struct chanpool *p = arg;
	uint64_t now = worker_now_ns(p->w);

	for (struct pool_entry *e = p->all; e; e = e->next) {
		struct channel *ch = e->ch;

		if (!ch || !channel_is_open(ch))
			continue;
		if (!e->retired && now - channel_opened_at(ch) >= p->cfg.max_lifetime_ns) {
			e->retired = true;
			unhash(e);
			p->stats.retired++;
			log_info("channel to %s reached ChannelPoolMaxLifetime: no new circuits",
				 channel_name(ch));
		}
		if (channel_n_circs(ch) > 0)
			continue;
		if (e->retired) {
			channel_close(ch, 0, "retired (ChannelPoolMaxLifetime) and without circuits");
		} else if (now - channel_idle_since(ch) >= p->cfg.max_idle_ns) {
			p->stats.closed_idle++;
			channel_close(ch, 0, "idle for ChannelPoolMaxIdle");
		}
	}
	timer_arm(worker_timers(p->w), t, now + p->sweep_ns);
}

/* Sweep often enough that a channel outlives its limit by <= 25%. */
static uint64_t sweep_period(const struct chanpool_config *cfg)
{
	uint64_t m = cfg->max_idle_ns < cfg->max_lifetime_ns ? cfg->max_idle_ns : cfg->max_lifetime_ns;

	m /= 4;
	if (m < SWEEP_MIN_NS)
		m = SWEEP_MIN_NS;
	if (m > SWEEP_MAX_NS)
		m = SWEEP_MAX_NS;
	return m;
}

int chanpool_reconfigure(struct chanpool *p, uint64_t max_idle_ns, uint64_t max_lifetime_ns)
{
	if (max_idle_ns)
		p->cfg.max_idle_ns = max_idle_ns;
	if (max_lifetime_ns)
		p->cfg.max_lifetime_ns = max_lifetime_ns;
	p->sweep_ns = sweep_period(&p->cfg);
	/* Re-arm from now: a shorter limit must not wait out the old period. */
	return timer_arm(worker_timers(p->w), &p->sweep, worker_now_ns(p->w) + p->sweep_ns);
}

struct chanpool *chanpool_new(struct worker *w, const struct chanpool_config *cfg)
{
	struct chanpool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->w = w;
	if (cfg)
		p->cfg = *cfg;
	else
		chanpool_config_defaults(&p->cfg);
	p->sweep_ns = sweep_period(&p->cfg);
	timer_init(&p->sweep, sweep, p);
	if (timer_arm(worker_timers(w), &p->sweep, worker_now_ns(w) + p->sweep_ns) < 0) {
		free(p);
		return NULL;
	}
	return p;
}

void chanpool_free(struct chanpool *p)
{
	struct pool_entry *e;

	if (!p)
		return;
	timer_cancel(worker_timers(p->w), &p->sweep);
	while ((e = p->all) != NULL) {
		if (e->ch)
			observe(e, CHANPOOL_CHAN_CLOSED, -ECANCELED, "channel pool shut down",
				channel_n_circs(e->ch) + count_waiters(e));
		wake_waiters(e, NULL, -ECANCELED, "channel pool shut down");
		if (e->ch) {
			channel_set_owner(e->ch, NULL, NULL);
			channel_close(e->ch, -ECANCELED, "channel pool shut down");
		}
		entry_free(e);
	}
	free(p);
}

void chanpool_foreach(const struct chanpool *p,
		      void (*fn)(void *ctx, const struct chanpool_chan_info *ci), void *ctx)
{
	struct chanpool_chan_info ci;

	for (const struct pool_entry *e = p->all; e; e = e->next) {
		if (!e->ch || e->ended)
			continue;
		entry_info(e, &ci);
		fn(ctx, &ci);
	}
}

size_t chanpool_size(const struct chanpool *p) { return p->n; }
const struct chanpool_stats *chanpool_stats(const struct chanpool *p) { return &p->stats; }
