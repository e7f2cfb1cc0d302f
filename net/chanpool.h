/* The per-shard channel pool: at most one usable channel per relay (keyed
 * by RSA identity), shared by every circuit of the shard that goes through
 * that relay.
 *
 * For: reusing an open channel, joining an opening one, opening a new one;
 * closing channels that have carried no circuit for ChannelPoolMaxIdle;
 * retiring channels older than ChannelPoolMaxLifetime (no new circuits;
 * closed once their last circuit is gone); forgetting channels the relay
 * closed or reset (their waiters get the error). Not for: choosing relays
 * or cross-shard sharing (each worker has its own pool).
 *
 * Defaults (doc/configuration.md): idle 3 minutes, lifetime 7 days. Tor
 * keeps an idle client channel open for padding-spec's nf_conntimeout_clients
 * (30 min, randomised up to 2x) only so that netflow padding has a channel
 * to run on; we send no padding, so a shorter idle time costs no anonymity
 * and frees the relay's socket sooner. Tor stops putting new circuits on an
 * OR connection older than a week (TIME_BEFORE_OR_CONN_IS_TOO_OLD), which is
 * what max lifetime does here.
 *
 * Owner shard only, every function. */
#ifndef ONIONRING_NET_CHANPOOL_H
#define ONIONRING_NET_CHANPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "net/channel.h"

#define CHANPOOL_DEFAULT_MAX_IDLE_S 180               /* ChannelPoolMaxIdle */
#define CHANPOOL_DEFAULT_MAX_LIFETIME_S (7 * 86400)   /* ChannelPoolMaxLifetime */

struct chanpool;

/* What happens to a channel the pool opens, for an observer above net/
 * (app/ turns these into control-spec 4.1.3 ORCONN events). Each channel
 * gets LAUNCHED, then CONNECTED or FAILED, and after CONNECTED one CLOSED. */
enum chanpool_chan_event {
	CHANPOOL_CHAN_LAUNCHED,  /* channel_open started (TCP connect) */
	CHANPOOL_CHAN_CONNECTED, /* the link handshake is done */
	CHANPOOL_CHAN_FAILED,    /* it ended before it opened */
	CHANPOOL_CHAN_CLOSED,    /* it ended after it opened */
};

/* One channel as the observer and chanpool_foreach see it; borrowed for
 * the call. */
struct chanpool_chan_info {
	uint64_t id;                      /* process-unique, nonzero */
	const struct relay_target *target;
	bool open;                        /* handshake done, not ended */
	size_t ncircs;                    /* circuits on it, or waiting for it */
	int err;                          /* FAILED/CLOSED: 0 or -errno */
	const char *why;                  /* FAILED/CLOSED: text, or NULL */
};

typedef void (*chanpool_observe_fn)(void *arg, enum chanpool_chan_event ev,
				    const struct chanpool_chan_info *ci);

struct chanpool_config {
	uint64_t max_idle_ns;     /* ChannelPoolMaxIdle */
	uint64_t max_lifetime_ns; /* ChannelPoolMaxLifetime */
	struct channel_config chan;
	/* Optional: told of every channel's steps, on the owner shard. */
	chanpool_observe_fn observe;
	void *observe_arg;
};

struct chanpool_stats {
	uint64_t opened;       /* channel_open calls */
	uint64_t reused;       /* gets answered with an open channel */
	uint64_t joined;       /* gets that waited on an opening channel */
	uint64_t failed;       /* opens that failed */
	uint64_t closed_idle;  /* closed after max_idle without circuits */
	uint64_t retired;      /* reached max_lifetime */
	uint64_t lost;         /* closed by the relay or the network */
};

/* Called once per pending get: ch is open (err 0) or NULL (err < 0, why
 * says why; borrowed for the call). */
typedef void (*chanpool_cb)(struct channel *ch, int err, const char *why, void *arg);

void chanpool_config_defaults(struct chanpool_config *cfg);
/* Set the two pool keys from configuration values in seconds (the
 * ChannelPoolMaxIdle / ChannelPoolMaxLifetime of core/config.h). */
void chanpool_config_set_seconds(struct chanpool_config *cfg, int64_t max_idle_s,
				 int64_t max_lifetime_s);

/* Returns owned, or NULL on OOM. cfg is copied. */
struct chanpool *chanpool_new(struct worker *w, const struct chanpool_config *cfg);
/* Close every channel (their circuits are told) and fail every pending get
 * with -ECANCELED. NULL-safe. */
void chanpool_free(struct chanpool *p);

/* Put new limits in force (ChannelPoolMaxIdle / ChannelPoolMaxLifetime
 * changed at run time; 0 keeps a limit as it is). They apply to the
 * channels already open too, at the next sweep, which is re-armed from now:
 * a channel idle or old beyond a lowered limit closes (or retires) within
 * about a quarter of the new limit (at most 10 s); a raised limit lets it
 * stay longer. Return 0, or -ENOMEM when the sweep timer could not be
 * re-armed (the pool then stops sweeping). */
int chanpool_reconfigure(struct chanpool *p, uint64_t max_idle_ns, uint64_t max_lifetime_ns);

/* Get a channel to t (copied when a channel is opened). Returns an open
 * channel (borrowed: valid until its circuits are told it closed), or NULL:
 * with *err == 0 cb(arg) runs later with the outcome; with *err < 0 the get
 * failed now and cb is not called. */
struct channel *chanpool_get(struct chanpool *p, const struct relay_target *t, chanpool_cb cb,
			     void *arg, int *err);
/* Forget the pending gets with this cb and arg (a circuit that gave up). */
void chanpool_cancel(struct chanpool *p, chanpool_cb cb, void *arg);
/* Call fn(ctx, ci) for every channel the pool knows (opening, open or
 * retired-but-busy), newest first. fn must not call into the pool. */
void chanpool_foreach(const struct chanpool *p,
		      void (*fn)(void *ctx, const struct chanpool_chan_info *ci), void *ctx);
/* Channels the pool knows (open, opening or retired-but-busy). */
size_t chanpool_size(const struct chanpool *p);
const struct chanpool_stats *chanpool_stats(const struct chanpool *p);

#endif
