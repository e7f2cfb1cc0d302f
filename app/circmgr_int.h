/* Internals of the shard's circuit manager shared by app/circmgr.c and
 * app/hs_client.c (the onion-service client drives its own circuits and
 * streams through them). Not an API: nothing else includes this.
 * Everything here: owner shard only. */
#ifndef ONIONRING_APP_CIRCMGR_INT_H
#define ONIONRING_APP_CIRCMGR_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "app/circmgr.h"
#include "app/circpool.h"
#include "app/keyslots.h"
#include "app/path.h"
#include "app/stream.h"
#include "app/stream_retry.h"
#include "core/compiler.h"
#include "net/timer.h"
#include "onionring_build.h"

#define BATCH ONIONRING_CELL_BATCH
#define OUT_CAP 64 /* cells produced per circuit call; CIRC_OUT_CHUNK caps it too */

struct hs_client;
struct hs_conn;

enum ocirc_purpose {
	OC_EXIT,
	OC_DIR,   /* one hop, BEGIN_DIR */
	OC_HSDIR, /* 3 hops ending at an HSDir, BEGIN_DIR (descriptor fetch) */
	OC_HS,    /* 3 hops: rendezvous or introduction (app/hs_client.c drives it) */
};
enum ocirc_state { OC_WAIT_CHANNEL, OC_BUILDING, OC_OPEN, OC_CLOSED };
/* ST_WAITING: on the shard's pending list or a circuit's waiting list;
 * ST_BACKOFF: on the shard's backoff list until st->timer says try again. */
enum stream_state { ST_WAITING, ST_BACKOFF, ST_CONNECTING, ST_OPEN };

struct shard;
struct ocirc;

struct stream {
	struct stream *next, *prev; /* on its circuit's list, or the shard's wait list */
	uint64_t gid;               /* process-unique id (control port) */
	struct ocirc *oc;
	struct shard *sh;
	uint16_t sid;
	enum stream_state state;
	bool is_dir;
	bool blocked;   /* a write was cut short: on_writable is owed */
	bool queued;    /* on the shard's pending list, not yet placed */
	bool onion;     /* to a .onion address: app/hs_client.c places it */
	bool placed;    /* stream_place ran for it once (the rebalancer's moment) */
	bool holds_claim; /* t.handed_in: one of the shard's claimed counts is ours */
	bool claim_keyed; /* ... and it is slot t.key_slot of the shard's key table */
	bool anon_dir;  /* is_dir over a 3-hop circuit (OC_HSDIR) */
	struct hs_conn *hs_wait; /* waiting in this onion connection's list */
	unsigned attempts;
	bool optimistic; /* this attempt's exit takes DATA before CONNECTED */
	struct stream_retry retry; /* until CONNECTED (not for is_dir) */
	struct timer timer;        /* deadline, backoff or this attempt's wait */
	uint8_t *early;            /* client bytes before CONNECTED (STREAM_EARLY_MAX) */
	size_t early_len;
	size_t early_sent;         /* of them, sent on this attempt */
	struct relay_target dir_target; /* is_dir only */
	struct stream_target t;
	const struct stream_events *ev;
	void *sess;
};

struct ocirc {
	struct ocirc *next, *prev;
	struct shard *sh;
	enum ocirc_purpose purpose;
	enum ocirc_state state;
	struct channel *ch;
	uint32_t circ_id;
	unsigned nhops;
	struct hop_target hops[PATH_MAX_HOPS];
	struct relay_target first; /* the guard (or directory) as a channel target */
	struct dirview dv;         /* the directory the path came from (held) */
	bool has_dv;
	bool has_iso;
	struct isolation_key iso;
	bool unusable;             /* no new streams (dirty, or an exit failed one) */
	bool prebuilt;             /* launched by the pool and not used yet (clean) */
	uint16_t exit_port;        /* the port the exit was chosen for (0: any) */
	const struct node *exit;   /* in dv: the exit's policy decides other ports */
	uint64_t launched_ns, opened_ns, dirty_ns;
	bool via_guard;            /* the first hop is the process's entry guard */
	uint64_t gid;              /* process-unique id (control port, logs) */
	uint64_t epoch;            /* NEWNYM epoch at launch */
	uint64_t created_us;       /* wall clock at launch (TIME_CREATED, control-spec 4.1.1) */
	bool timed_out;
	unsigned busy;             /* inside event processing: defer the free */
	bool dead;                 /* closed while busy */
	struct timer build_timer;
	struct stream *streams;    /* attached: ST_CONNECTING or ST_OPEN */
	struct stream *waiting;    /* for this circuit to open */
	struct stream *by_slot[CIRC_STREAMS_MAX];
	size_t nin;
	struct cell in[BATCH];
	struct hs_conn *hs;        /* OC_HS: the onion connection it works for (NULL: orphaned) */
	const char *ctl_purpose;   /* control-port PURPOSE (static; NULL: GENERAL) */
	struct circ c;
};

struct shard {
	struct worker *w;
	bool stopped;
	struct circpool pool;      /* recent demand: what to prebuild (app/circpool.h) */
	struct badrelays *bad;     /* relays that failed our extends lately (path-spec: avoid a while) */
	uint64_t path_warned_ns;   /* last "cannot choose a path" notice */
	struct stream *pending;    /* opened, waiting for place_pending */
	struct stream *backoff;    /* ST_BACKOFF: waiting to try again */
	struct timer pending_timer;
	struct timer prebuild_timer; /* the pool's 1 s tick: plan, launch, sweep */
	struct timer retire_timer;   /* soon after a retired circuit's last stream ended */
	struct hs_client *hs;      /* onion-service client state (app/hs_client.h) */
	struct circmgr_config cfg;
	struct chanpool *chans;
	struct ocirc *circs;
	unsigned ncircs;
	struct relay_pad_rng rng;
	struct circmgr_stats stats;
	struct timer summary_timer;     /* publishes summary once a second */
	struct circmgr_summary summary; /* relaxed stores: circmgr_summary_read */
	/* Supply and demand for the rebalancer (circmgr.h "Rebalancing"). The
	 * owner stores waiting (the supply is stats.circs_ready); claimed is written by any
	 * worker that hands a stream here, so it has a line of its own. */
	_Atomic uint64_t waiting;        /* streams waiting for a circuit (relaxed) */
	_Atomic int64_t prebuild_boost;  /* coordinator's quota move (relaxed) */
	CACHE_ALIGNED _Atomic uint64_t claimed; /* hand-offs on their way here */
	/* The keys of the open reserved circuits (owner publishes in
	 * publish_supply) and their claims (any worker): app/keyslots.h. */
	CACHE_ALIGNED struct keyslots keys;
	struct cell out[OUT_CAP];
	struct cell *outp[OUT_CAP];
	struct circ_event ev[BATCH * 2 + 8];
};

#define STAT_ADD(sh, field, n) \
	atomic_store_explicit((_Atomic uint64_t *)&(sh)->stats.field, \
			      atomic_load_explicit((_Atomic uint64_t *)&(sh)->stats.field, memory_order_relaxed) + (n), \
			      memory_order_relaxed)


/* Helpers of circmgr.c that hs_client.c uses (see their comments there). */
bool circmgr_dir_acquire(struct dirview *dv);
void circmgr_dir_release(struct dirview *dv);
void circmgr_stream_attach(struct ocirc *oc, struct stream *st);
void circmgr_stream_end(struct stream *st, enum socks5_reply code, const char *why);
void circmgr_ocirc_close(struct ocirc *oc, bool send_destroy, const char *why);
void circmgr_send_one(struct ocirc *oc, struct cell *c);
/* Launch a 3-hop internal circuit (path-spec: onion-service circuits) of
 * purpose OC_HS: its last hop is the relay with RSA identity last_id when
 * given, else chosen like a middle; last_target (e.g. an introduction
 * point from a descriptor: its link specifiers and ntor key) replaces the
 * last hop when non-NULL. Returns the circuit (not yet connecting: set
 * it up, then circmgr_ocirc_connect) or NULL with *why. */
struct ocirc *circmgr_launch_internal(struct shard *sh, const uint8_t *last_id,
				      const struct hop_target *last_target, const char **why);
/* Announce oc (CIRC LAUNCHED with oc->ctl_purpose), then start its
 * channel and CREATE; failures close oc (maybe at once). */
void circmgr_ocirc_connect(struct ocirc *oc);

#endif
