/* The shard's circuit manager (see circmgr.h). */
#include "app/circmgr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/badrelays.h"
#include "app/circmgr_int.h"
#include "app/circpool.h"
#include "app/hs_client.h"
#include "app/events.h"
#include "app/guardmgr.h"
#include "app/nodes.h"
#include "app/orconn.h"
#include "app/oom.h"
#include "app/path.h"
#include "app/stream_retry.h"
#include "core/config.h"
#include "core/log.h"
#include "net/chanpool.h"
#include "net/runtime.h"
#include "net/worker.h"
#include "onionring_build.h"
#include "proto/onion_addr.h"
#include "proto/relay.h"

#define STREAM_DEFAULT_TIMEOUT_NS (120ull * 1000000000ull) /* tor's SocksTimeout default */

const double circmgr_build_bounds_ms[12] = { 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000 };

static _Atomic uint64_t next_gid = 1; /* ids for circuits and streams */

static dirview_acquire_fn dir_acquire;
static dirview_release_fn dir_release;

void circmgr_set_directory(dirview_acquire_fn acquire, dirview_release_fn release)
{
	dir_acquire = acquire;
	dir_release = release;
}

bool circmgr_dir_acquire(struct dirview *dv)
{
	return dir_acquire && dir_acquire(dv);
}

void circmgr_dir_release(struct dirview *dv)
{
	if (dir_release)
		dir_release(dv->ref);
}

/* --- lists ---------------------------------------------------------------- */

static void stream_link(struct stream **head, struct stream *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

static void stream_unlink(struct stream **head, struct stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
}

static struct shard *shard_of(struct worker *w) { return worker_user(w); }

static uint64_t wall_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --- control-port events ------------------------------------------------- */

/* "$FP~nick,..." (control-spec 4.1.1 LongName): the nickname comes from
 * the directory snapshot the circuit holds (exit circuits), else from the
 * channel target (the first hop of a directory circuit). */
static void circ_path_text(const struct ocirc *oc, unsigned nhops, char *out, size_t cap)
{
	size_t off = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < nhops && i < oc->nhops && off + 64 < cap; i++) {
		const struct node *n = oc->has_dv && oc->dv.nl ? nodelist_find(oc->dv.nl, oc->hops[i].rsa_id) : NULL;
		const char *nick = n ? n->rs->nickname : i == 0 ? oc->first.nickname : "";
		int len = snprintf(out + off, cap - off, "%s$", i ? "," : "");

		off += (size_t)len;
		for (unsigned k = 0; k < 20; k++)
			off += (size_t)snprintf(out + off, cap - off, "%02X", oc->hops[i].rsa_id[k]);
		if (nick[0] && off + 2 + strlen(nick) < cap)
			off += (size_t)snprintf(out + off, cap - off, "~%s", nick);
	}
}

/* The CIRC fields of oc (path into path[cap]) for events and GETINFO
 * circuit-status, which must print the same text. BUILD_FLAGS say only
 * what the path request asked for: ONEHOP_TUNNEL for a directory circuit,
 * NEED_UPTIME when the exit port needs Stable relays (path-spec 2.2). */
static void circ_info(const struct ocirc *oc, unsigned nhops, struct events_circ_info *info, char *path, size_t cap)
{
	circ_path_text(oc, nhops, path, cap);
	memset(info, 0, sizeof(*info));
	info->path = path;
	info->purpose = oc->ctl_purpose ? oc->ctl_purpose : "GENERAL"; /* HS_CLIENT_* for onion circuits */
	if (oc->purpose == OC_DIR)
		info->build_flags = "ONEHOP_TUNNEL";
	else if (path_port_needs_stable(oc->exit_port))
		info->build_flags = "NEED_UPTIME";
	info->created_us = oc->created_us;
}

static void publish_circ(const struct ocirc *oc, enum events_circ_status status, const char *reason)
{
	struct events_circ_info info;
	char path[512];

	if (!events_wanted(EVENT_CIRC))
		return;
	circ_info(oc, status == EVENTS_CIRC_LAUNCHED ? 0 : oc->c.n_hops, &info, path, sizeof(path));
	info.reason = reason;
	events_publish_circ_info(oc->gid, status, &info);
}

#define STREAM_TARGET_MAX (SOCKS_ADDR_TEXT_MAX + SOCKS_HOST_MAX + 8)

/* "host:port" as the SOCKS client asked (STREAM events, stream-status). */
static void stream_target_text(const struct stream *st, char *out, size_t cap)
{
	char host[SOCKS_ADDR_TEXT_MAX + SOCKS_HOST_MAX];

	socks_addr_format(&st->t.dest, host, sizeof(host));
	snprintf(out, cap, "%s:%u", host, st->t.port);
}

static void publish_stream(const struct stream *st, enum events_stream_status status, const char *reason)
{
	char target[STREAM_TARGET_MAX];

	if (!events_wanted(EVENT_STREAM) || st->is_dir)
		return;
	stream_target_text(st, target, sizeof(target));
	events_publish_stream(st->gid, status, st->oc ? st->oc->gid : 0, target, reason, NULL);
}

/* --- sending ---------------------------------------------------------------- */

static void send_cells(struct ocirc *oc, struct cell *const cells[], size_t n)
{
	struct shard *sh = oc->sh;

	if (!n || !oc->ch)
		return;
	/* channel_send_cells wants them contiguous; they usually already are
	 * (our scratch array), so only copy the ones that are not. */
	for (size_t i = 0; i < n; i++)
		if (cells[i] != &sh->out[i])
			sh->out[i] = *cells[i];
	if (channel_send_cells(oc->ch, sh->out, n) < 0)
		log_info("circuit %08x: channel send failed", oc->circ_id);
	STAT_ADD(sh, cells_out, n);
}

static void send_one(struct ocirc *oc, struct cell *c)
{
	struct cell *p = c;
	send_cells(oc, &p, 1);
}

void circmgr_send_one(struct ocirc *oc, struct cell *c)
{
	send_one(oc, c);
}

static void flush_ctrl(struct ocirc *oc)
{
	struct shard *sh = oc->sh;
	size_t n;

	while (circ_has_output(&oc->c)) {
		circ_flush(&oc->c, sh->outp, OUT_CAP, &n);
		if (!n)
			break;
		send_cells(oc, sh->outp, n);
	}
}

/* --- supply and demand (circmgr.h "Rebalancing") ---------------------------------- */

static bool circ_is_clean(const struct shard *sh, const struct ocirc *oc);

/* Publish, for other threads, what this shard has to offer and what it
 * lacks, in one walk over its circuits:
 * - its open clean circuits (circmgr_ready_clean, the metrics gauges),
 *   and the keys of those reserved for one key (app/keyslots: other
 *   shards hand sessions of these keys here, keyed_elsewhere);
 * - its streams waiting for a circuit (backing off, or on a circuit still
 *   building: circmgr_waiting).
 * Called when a figure changed (a clean circuit opened, was taken or
 * closed, a stream started to wait) and from the 1 s ticks. Owner shard. */
static void publish_supply(struct shard *sh)
{
	uint64_t any = 0, reserved = 0, waiting = 0;
	uint64_t keys[KEYSLOTS_N];

	for (const struct ocirc *oc = sh->circs; oc; oc = oc->next) {
		if (oc->state == OC_OPEN && circ_is_clean(sh, oc)) {
			if (oc->has_iso) {
				if (reserved < KEYSLOTS_N)
					keys[reserved] = keyslots_hash(&oc->iso);
				reserved++;
			} else {
				any++;
			}
		} else if (oc->state != OC_OPEN && oc->state != OC_CLOSED) {
			for (const struct stream *st = oc->waiting; st; st = st->next)
				waiting += !st->is_dir;
		}
	}
	/* Not sh->pending: those are placed at the end of this loop iteration,
	 * and counting them would make a burst of N placements cost N^2. */
	for (const struct stream *st = sh->backoff; st; st = st->next)
		waiting++;
	keyslots_publish(&sh->keys, keys, reserved < KEYSLOTS_N ? reserved : KEYSLOTS_N);
	/* Relaxed stores pair with circmgr_stats_read's, circmgr_ready_clean's
	 * and circmgr_waiting's relaxed loads: counts, no data behind them. */
	atomic_store_explicit((_Atomic uint64_t *)&sh->stats.circs_ready, any, memory_order_relaxed);
	atomic_store_explicit((_Atomic uint64_t *)&sh->stats.circs_reserved, reserved, memory_order_relaxed);
	atomic_store_explicit(&sh->waiting, waiting, memory_order_relaxed);
}

/* True when another shard of the runtime has a ready clean circuit that no
 * hand-off has claimed yet. Owner shard. */
static bool ready_elsewhere(const struct shard *sh)
{
	struct runtime *rt = worker_runtime(sh->w);
	unsigned n = runtime_nworkers(rt);

	for (unsigned i = 0; i < n; i++) {
		struct worker *w = runtime_worker(rt, i);

		if (w != sh->w && circmgr_available(w) > 0)
			return true;
	}
	return false;
}

/* True when another shard of the runtime publishes an unclaimed circuit
 * reserved for iso (borrowed). Owner shard. */
static bool keyed_elsewhere(const struct shard *sh, const struct isolation_key *iso)
{
	struct runtime *rt = worker_runtime(sh->w);
	unsigned n = runtime_nworkers(rt);
	uint64_t hash = keyslots_hash(iso);

	for (unsigned i = 0; i < n; i++) {
		struct worker *w = runtime_worker(rt, i);
		struct shard *other = w == sh->w ? NULL : shard_of(w);

		if (other && keyslots_has_unclaimed(&other->keys, hash))
			return true;
	}
	return false;
}

/* --- circuit lifecycle --------------------------------------------------------- */

static void circ_launch_for(struct shard *sh, struct stream *st);
static void on_channel(struct channel *ch, int err, const char *why, void *arg);
static void stream_attach(struct ocirc *oc, struct stream *st);
static void stream_end_to_session(struct stream *st, enum socks5_reply code, const char *why);

static void ocirc_free(struct ocirc *oc)
{
	struct shard *sh = oc->sh;

	/* Armed at launch; a circuit freed before it closed normally (no
	 * directory, no path) must not leave it behind. */
	timer_cancel(worker_timers(sh->w), &oc->build_timer);

	if (oc->prev)
		oc->prev->next = oc->next;
	else
		sh->circs = oc->next;
	if (oc->next)
		oc->next->prev = oc->prev;
	sh->ncircs--;
	circ_clear(&oc->c);
	if (oc->has_dv && dir_release)
		dir_release(oc->dv.ref);
	free(oc);
}

/* --- retries and early data ------------------------------------------------ */

static void stream_place(struct shard *sh, struct stream *st);
static void stream_detach(struct ocirc *oc, struct stream *st);

/* Give back the claim a stream handed here holds (circmgr_claim_ready). */
static void stream_drop_claim(struct stream *st)
{
	if (!st->holds_claim)
		return;
	st->holds_claim = false;
	if (st->claim_keyed) {
		keyslots_release(&st->sh->keys, st->t.key_slot);
		return;
	}
	/* Relaxed: pairs with circmgr_claim_ready's CAS; a count, no data. */
	atomic_fetch_sub_explicit(&st->sh->claimed, 1, memory_order_relaxed);
}

static void stream_free(struct stream *st)
{
	stream_drop_claim(st);
	timer_cancel(worker_timers(st->sh->w), &st->timer);
	free(st->early);
	free(st);
}

/* Arm st's timer for at, or for its deadline when that comes first. */
static void stream_arm(struct stream *st, uint64_t at)
{
	if (at > st->retry.deadline_ns)
		at = st->retry.deadline_ns;
	if (timer_arm(worker_timers(st->sh->w), &st->timer, at) < 0)
		log_warn("stream %llu: no timer for its deadline", (unsigned long long)st->gid);
}

/* "$FINGERPRINT" of an exit's RSA id (NULL: "none") for the log. */
static void exit_text(const uint8_t *id, char *out, size_t cap)
{
	snprintf(out, cap, "none");
	if (!id || cap < 42)
		return;
	out[0] = '$';
	for (unsigned i = 0; i < 20; i++)
		snprintf(out + 1 + 2 * i, 3, "%02X", id[i]);
}

/* An attempt of st failed: cause (stream_retry.h), the END reason, on oc
 * (NULL: none; its exit is the one to avoid) with why. st is on no list.
 * Try again after the policy's backoff, or end st. */
static void stream_failed(struct shard *sh, struct stream *st, struct ocirc *oc, enum retry_cause cause,
			  uint8_t reason, const char *why)
{
	const uint8_t *exit_id = oc && oc->purpose == OC_EXIT && oc->nhops ? oc->hops[oc->nhops - 1].rsa_id : NULL;
	struct retry_verdict v;
	char exit_hex[48];

	exit_text(exit_id, exit_hex, sizeof(exit_hex));
	st->oc = NULL;
	st->sid = 0;
	st->optimistic = false;
	st->early_sent = 0; /* the next exit gets every early byte again */
	/* A directory stream, an open one, or one an onion service ended
	 * (there is no other exit to try: the service refused it) ends here. */
	if (st->is_dir || st->state == ST_OPEN || sh->stopped || (st->onion && cause == RETRY_END)) {
		stream_end_to_session(st, cause == RETRY_END && st->state != ST_OPEN ? stream_retry_end_reply(reason)
											: SOCKS5_GENERAL_FAILURE,
				      sh->stopped ? "shutting down" : why);
		return;
	}
	stream_retry_failed(&st->retry, cause, reason, exit_id, worker_now_ns(sh->w), why, &v);
	if (v.circuit_unusable && oc)
		oc->unusable = true;
	if (!v.retry) {
		log_info("stream %llu: exit %s: %s; giving up after %u attempt(s): %s", (unsigned long long)st->gid,
			 exit_hex, why, st->retry.attempts, v.why);
		stream_end_to_session(st, v.code, v.why);
		return;
	}
	STAT_ADD(sh, streams_retried, 1);
	log_info("stream %llu: exit %s: %s; trying another circuit in %llu ms", (unsigned long long)st->gid,
		 exit_hex, why, (unsigned long long)((v.at_ns - worker_now_ns(sh->w)) / 1000000u));
	publish_stream(st, EVENTS_STREAM_DETACHED, NULL);
	st->state = ST_BACKOFF;
	stream_link(&sh->backoff, st);
	stream_arm(st, v.at_ns);
}

/* SocksTimeout is over: take st off whatever it waits on and end it with
 * the reply for its last error. */
static void stream_expired(struct shard *sh, struct stream *st)
{
	struct ocirc *oc = st->oc;
	enum socks5_reply code;
	const char *why;

	if (st->queued) {
		stream_unlink(&sh->pending, st);
		st->queued = false;
	} else if (st->state == ST_BACKOFF) {
		stream_unlink(&sh->backoff, st);
	} else if (st->hs_wait) {
		hs_client_stream_gone(st);
	} else if (oc && st->state == ST_WAITING) {
		stream_unlink(&oc->waiting, st);
	} else if (oc && st->state == ST_CONNECTING) {
		struct cell cell;
		/* tor ends a stream it gives up on with reason TIMEOUT. */
		if (oc->state == OC_OPEN && circ_stream_end(&oc->c, st->sid, RELAY_END_TIMEOUT, &cell) == 0)
			send_one(oc, &cell);
		stream_detach(oc, st);
	}
	st->oc = NULL;
	stream_retry_expired(&st->retry, &code, &why);
	log_info("stream %llu: SocksTimeout reached after %u attempt(s): %s", (unsigned long long)st->gid,
		 st->retry.attempts, why);
	stream_end_to_session(st, code, why);
}

/* st's timer: the deadline, the end of a backoff, or an attempt that got
 * no CONNECTED/RESOLVED in time (tor: 10 s, then 15 s; END TIMEOUT, and
 * another circuit). */
static void stream_tick(struct timer *t, void *arg)
{
	struct stream *st = arg;
	struct shard *sh = st->sh;
	struct ocirc *oc = st->oc;

	(void)t;
	if (worker_now_ns(sh->w) >= st->retry.deadline_ns || sh->stopped) {
		stream_expired(sh, st);
		return;
	}
	if (st->state == ST_BACKOFF) {
		stream_unlink(&sh->backoff, st);
		st->state = ST_WAITING;
		stream_arm(st, st->retry.deadline_ns);
		stream_place(sh, st);
	} else if (st->state == ST_CONNECTING && oc) {
		struct cell cell;

		if (oc->state == OC_OPEN && circ_stream_end(&oc->c, st->sid, RELAY_END_TIMEOUT, &cell) == 0)
			send_one(oc, &cell);
		stream_detach(oc, st);
		stream_failed(sh, st, oc, RETRY_TIMEOUT, 0, "the exit did not answer the stream in time");
	} else {
		stream_arm(st, st->retry.deadline_ns);
	}
}

/* tor-spec 6.2: an exit from 0.2.3.1-alpha on queues DATA that follows
 * BEGIN before it answers. Every relay that lists subprotocols (proposal
 * 264: 0.2.9 on) is newer; Relay=2 is what clients require anyway. The
 * consensus can turn it off (param-spec "UseOptimisticData", default 1
 * since 0.2.9.1). */
static bool exit_takes_optimistic(const struct ocirc *oc)
{
	return oc->purpose == OC_EXIT && oc->has_dv && oc->dv.optimistic_data && oc->exit &&
	       protover_supports(&oc->exit->rs->protos, PROTOVER_RELAY, 2);
}

/* Send the early bytes this attempt has not sent yet, as far as the
 * windows allow; return true when none is left. st is attached to an open
 * circuit, CONNECTED or optimistic. */
static bool early_flush(struct stream *st)
{
	struct ocirc *oc = st->oc;
	struct shard *sh = st->sh;

	while (st->early_sent < st->early_len) {
		size_t taken = 0, n = 0;

		if (circ_stream_data(&oc->c, st->sid, st->early + st->early_sent, st->early_len - st->early_sent,
				     worker_now_ns(sh->w) / 1000u, &taken, sh->outp, OUT_CAP, &n) < 0)
			return false;
		send_cells(oc, sh->outp, n);
		st->early_sent += taken;
		if (st->state == ST_CONNECTING)
			STAT_ADD(sh, optimistic_bytes, taken);
		if (taken == 0)
			return false;
	}
	return true;
}

/* After CONNECTED: send what is left, then drop the copy (no retry can
 * need it any more). Return true when nothing early is left. */
static bool early_drain(struct stream *st)
{
	if (!st->early)
		return true;
	if (!early_flush(st))
		return false;
	free(st->early);
	st->early = NULL;
	st->early_len = st->early_sent = 0;
	return true;
}

/* stream_write before CONNECTED: keep up to STREAM_EARLY_MAX bytes for
 * this and any later attempt, and send them now if the exit takes
 * optimistic data. */
static size_t stream_write_early(struct stream *st, const uint8_t *data, size_t len)
{
	size_t take = len;
	uint8_t *grown;

	if (st->is_dir || st->t.kind != STREAM_CONNECT) {
		st->blocked = true;
		return 0;
	}
	if (take > STREAM_EARLY_MAX - st->early_len)
		take = STREAM_EARLY_MAX - st->early_len;
	if (take) {
		grown = realloc(st->early, st->early_len + take);
		if (!grown) {
			st->blocked = true; /* the session keeps them until CONNECTED */
			return 0;
		}
		st->early = grown;
		memcpy(st->early + st->early_len, data, take);
		st->early_len += take;
	}
	if (st->state == ST_CONNECTING && st->optimistic && st->oc && st->oc->state == OC_OPEN)
		early_flush(st);
	if (take < len)
		st->blocked = true;
	return take;
}

/* The streams waiting for oc to open try another circuit (RETRY_CIRCUIT). */
static void fail_waiting(struct ocirc *oc, const char *why)
{
	struct stream *st;

	while ((st = oc->waiting)) {
		stream_unlink(&oc->waiting, st);
		stream_failed(oc->sh, st, oc, RETRY_CIRCUIT, 0, why);
	}
}

/* Close oc: tell the relay (send_destroy) unless it told us, then fail or
 * retry its streams. ctl_reason is the CIRC event's REASON (NULL: from
 * how it died: TIMEOUT, REQUESTED or DESTROYED). */
static void ocirc_close_reason(struct ocirc *oc, bool send_destroy, const char *why, const char *ctl_reason)
{
	struct shard *sh = oc->sh;
	struct stream *st;
	bool was_open = oc->state == OC_OPEN;

	if (oc->state == OC_CLOSED)
		return;
	if (oc->state != OC_OPEN) {
		STAT_ADD(sh, circs_failed, 1);
		/* guard-spec 4.7: only a failure to reach the guard itself
		 * counts against it; later hops failing say nothing about it. */
		if (oc->via_guard && oc->c.n_hops == 0)
			guardmgr_report(oc->first.rsa_id, false);
		/* The hop we were extending to failed: avoid it for a while. */
		if (sh->bad && oc->c.n_hops >= 1 && oc->c.n_hops < oc->nhops)
			badrelays_record_failure(sh->bad, oc->hops[oc->c.n_hops].rsa_id,
						 worker_now_ns(sh->w) / 1000000u);
		if (oc->purpose == OC_EXIT && oc->timed_out)
			guardmgr_report_build(0, true);
	} else {
		STAT_ADD(sh, circs_open, (uint64_t)-1);
	}
	log_info("circuit %08x closed: %s", oc->circ_id, why);
	if (oc->purpose == OC_HS && oc->hs)
		hs_client_circ_closed(oc, why); /* clears oc->hs */
	publish_circ(oc, was_open ? EVENTS_CIRC_CLOSED : EVENTS_CIRC_FAILED,
		     ctl_reason ? ctl_reason : oc->timed_out ? "TIMEOUT" : send_destroy ? "REQUESTED" : "DESTROYED");
	oc->state = OC_CLOSED;
	if (oc->prebuilt && was_open)
		publish_supply(sh);
	timer_cancel(worker_timers(sh->w), &oc->build_timer);
	if (oc->ch) {
		if (send_destroy && oc->circ_id) {
			struct cell d;
			circ_destroy_cell(&oc->c, &d);
			channel_send_cell(oc->ch, &d);
		}
		channel_circ_unregister(oc->ch, oc->circ_id);
		oc->ch = NULL;
	} else if (sh->chans) {
		/* Still waiting for the first hop's channel: forget that wait. */
		chanpool_cancel(sh->chans, on_channel, oc);
	}
	while ((st = oc->streams)) {
		stream_unlink(&oc->streams, st);
		oc->by_slot[st->sid & (CIRC_STREAMS_MAX - 1)] = NULL;
		stream_failed(sh, st, oc, RETRY_CIRCUIT, 0, was_open ? "circuit closed" : why);
	}
	fail_waiting(oc, why);
	if (was_open && oc->purpose == OC_EXIT && !oc->has_iso)
		publish_supply(sh); /* a ready clean circuit went away */
	if (oc->busy)
		oc->dead = true;
	else
		ocirc_free(oc);
}

static void ocirc_close(struct ocirc *oc, bool send_destroy, const char *why)
{
	ocirc_close_reason(oc, send_destroy, why, NULL);
}

/* The close time (path-spec 2.4.4) passed: abandon the circuit. */
static void build_abandoned(struct timer *t, void *arg)
{
	struct ocirc *oc = arg;

	(void)t;
	oc->timed_out = true;
	ocirc_close(oc, oc->ch != NULL, "circuit build timed out");
}

/* The build timeout passed. path-spec 2.4.4: an exit circuit becomes a
 * measurement circuit: no stream will use it (the waiting ones try
 * another circuit now), but it keeps building until the close time so
 * that its build time, the tail of the distribution, is recorded.
 * Without that tail the learned timeout stays low, and a loaded network
 * times out ever more circuits. Other circuits are abandoned at once. */
static void build_timed_out(struct timer *t, void *arg)
{
	struct ocirc *oc = arg;
	struct shard *sh = oc->sh;
	uint64_t close_ns = guardmgr_build_close_ms() * 1000000ull;
	uint64_t now = worker_now_ns(sh->w);

	if (oc->purpose != OC_EXIT || oc->nhops != 3 || !close_ns || oc->launched_ns + close_ns <= now) {
		build_abandoned(t, arg);
		return;
	}
	oc->timed_out = true;
	oc->unusable = true; /* no stream, no pool: circ_is_retired */
	oc->prebuilt = false;
	log_info("circuit %08x: build timeout passed; kept building as a measurement circuit", oc->circ_id);
	fail_waiting(oc, "circuit build timed out");
	publish_supply(sh);
	timer_init(&oc->build_timer, build_abandoned, oc);
	timer_arm(worker_timers(sh->w), &oc->build_timer, oc->launched_ns + close_ns);
}

static void ocirc_opened(struct ocirc *oc)
{
	struct shard *sh = oc->sh;
	uint64_t ms = (worker_now_ns(sh->w) - oc->launched_ns) / 1000000u;
	struct stream *st;

	oc->state = OC_OPEN;
	oc->opened_ns = worker_now_ns(sh->w);
	timer_cancel(worker_timers(sh->w), &oc->build_timer);
	STAT_ADD(sh, circs_built, 1);
	STAT_ADD(sh, circs_open, 1);
	STAT_ADD(sh, build_ms_sum, ms);
	for (unsigned i = 0; i < 12; i++) {
		if ((double)ms <= circmgr_build_bounds_ms[i]) {
			STAT_ADD(sh, build_hist[i], 1);
			break;
		}
	}
	if (log_get_level() <= LOG_INFO) {
		char path[512];
		circ_path_text(oc, oc->nhops, path, sizeof(path));
		log_info("circuit %08x built (%u hops) in %llu ms: %s", oc->circ_id, oc->nhops,
			 (unsigned long long)ms, path);
	}
	publish_circ(oc, EVENTS_CIRC_BUILT, NULL);
	if (oc->via_guard)
		guardmgr_report(oc->first.rsa_id, true);
	if (oc->purpose == OC_EXIT && oc->nhops == 3)
		guardmgr_report_build(ms ? (uint32_t)ms : 1, oc->timed_out);
	if (oc->timed_out) {
		/* A measurement circuit: its time is recorded, its work done. */
		ocirc_close_reason(oc, true, "measurement circuit built after the build timeout", "FINISHED");
		return;
	}
	while ((st = oc->waiting)) {
		stream_unlink(&oc->waiting, st);
		stream_attach(oc, st);
	}
	/* Launched for streams that all left while it was building: a clean
	 * circuit for their key now, the pool's to keep or close. */
	if (oc->purpose == OC_EXIT && !oc->streams && !oc->dirty_ns)
		oc->prebuilt = true;
	if (oc->purpose == OC_EXIT)
		publish_supply(sh);
	if (oc->purpose == OC_HS && oc->hs)
		hs_client_circ_opened(oc);
	else if (oc->purpose == OC_HSDIR && !oc->streams)
		ocirc_close(oc, true, "descriptor fetch gone before the circuit opened");
}

/* --- inbound ---------------------------------------------------------------- */

static void handle_event(struct ocirc *oc, const struct circ_event *e);

static void process_batch(struct ocirc *oc)
{
	struct shard *sh = oc->sh;
	struct cell *ptrs[BATCH];
	size_t nev = 0;

	if (!oc->nin)
		return;
	for (size_t i = 0; i < oc->nin; i++)
		ptrs[i] = &oc->in[i];
	STAT_ADD(sh, cells_in, oc->nin);
	circ_input_cells(&oc->c, ptrs, oc->nin, worker_now_ns(sh->w) / 1000u, sh->ev,
			 sizeof(sh->ev) / sizeof(sh->ev[0]), &nev);
	oc->nin = 0;
	oc->busy++;
	for (size_t i = 0; i < nev && !oc->dead; i++)
		handle_event(oc, &sh->ev[i]);
	if (!oc->dead && oc->state != OC_CLOSED)
		flush_ctrl(oc);
	oc->busy--;
	if (oc->dead && !oc->busy)
		ocirc_free(oc);
}

static void on_circ_cell(struct channel *ch, const struct cell_view *cv, void *arg)
{
	struct ocirc *oc = arg;
	struct cell *c;
	size_t n;

	(void)ch;
	if (oc->state == OC_CLOSED)
		return;
	if (oc->nin == BATCH)
		process_batch(oc);
	if (oc->state == OC_CLOSED)
		return;
	c = &oc->in[oc->nin++];
	c->circ_id = cv->circ_id;
	c->command = cv->command;
	n = cv->payload_len < sizeof(c->payload) ? cv->payload_len : sizeof(c->payload);
	memcpy(c->payload, cv->payload, n);
	/* Fixed-size cells fill the payload: zero only a short one's tail. */
	if (n < sizeof(c->payload))
		memset(c->payload + n, 0, sizeof(c->payload) - n);
}

static void on_circ_batch_end(struct channel *ch, uint32_t circ_id, void *arg)
{
	(void)ch;
	(void)circ_id;
	process_batch(arg);
}

static void on_circ_channel_closed(struct channel *ch, uint32_t circ_id, int err, void *arg)
{
	struct ocirc *oc = arg;

	(void)circ_id;
	(void)err;
	oc->ch = NULL; /* unregistered by the channel */
	ocirc_close(oc, false, channel_error(ch)[0] ? channel_error(ch) : "channel closed");
}

static const struct channel_circ_ops ocirc_chan_ops = {
	.on_cell = on_circ_cell,
	.on_batch_end = on_circ_batch_end,
	.on_channel_closed = on_circ_channel_closed,
};

/* --- building ------------------------------------------------------------------ */

static void start_create(struct ocirc *oc)
{
	struct cell cell;
	int r;

	oc->circ_id = channel_alloc_circ_id(oc->ch);
	if (!oc->circ_id || channel_circ_register(oc->ch, oc->circ_id, &ocirc_chan_ops, oc) < 0) {
		oc->circ_id = 0;
		ocirc_close(oc, false, "no free circuit ID on the channel");
		return;
	}
	circ_init(&oc->c, oc->circ_id, &oc->dv.cparams, &oc->sh->rng);
	if (oc->purpose == OC_DIR && !oc->hops[0].ntor_key[0] && !oc->hops[0].ntor_key[31])
		r = circ_begin_create_fast(&oc->c, &cell);
	else
		r = circ_begin_create(&oc->c, &oc->hops[0], &cell);
	if (r < 0) {
		ocirc_close(oc, false, "cannot encode CREATE");
		return;
	}
	if (oc->purpose == OC_DIR)
		log_info("directory circuit %08x to %s: %s", oc->circ_id,
			 oc->first.nickname[0] ? oc->first.nickname : "relay",
			 oc->c.hs_kind == CIRC_HS_FAST ? "CREATE_FAST (no ntor key known)" : "CREATE2 (ntor)");
	oc->state = OC_BUILDING;
	send_one(oc, &cell);
}

static void on_channel(struct channel *ch, int err, const char *why, void *arg)
{
	struct ocirc *oc = arg;

	if (oc->state == OC_CLOSED)
		return;
	if (!ch || err < 0) {
		ocirc_close(oc, false, why ? why : "channel failed");
		return;
	}
	oc->ch = ch;
	start_create(oc);
}

static struct ocirc *ocirc_new(struct shard *sh, enum ocirc_purpose purpose)
{
	struct ocirc *oc = calloc(1, sizeof(*oc));

	if (!oc)
		return NULL;
	oc->sh = sh;
	oc->purpose = purpose;
	oc->state = OC_WAIT_CHANNEL;
	oc->gid = atomic_fetch_add_explicit(&next_gid, 1, memory_order_relaxed);
	oc->epoch = events_newnym_epoch();
	oc->launched_ns = worker_now_ns(sh->w);
	oc->created_us = wall_now_us();
	timer_init(&oc->build_timer, build_timed_out, oc);
	{
		/* path-spec 2.4: the learned timeout once there is one. */
		uint64_t learned = guardmgr_build_timeout_ms() * 1000000ull;
		timer_arm(worker_timers(sh->w), &oc->build_timer,
			  oc->launched_ns + (learned ? learned : sh->cfg.build_timeout_ns));
	}
	oc->next = sh->circs;
	if (sh->circs)
		sh->circs->prev = oc;
	sh->circs = oc;
	sh->ncircs++;
	STAT_ADD(sh, circs_launched, 1);
	return oc;
}

static void ocirc_connect_first(struct ocirc *oc)
{
	int err = 0;
	struct channel *ch = chanpool_get(oc->sh->chans, &oc->first, on_channel, oc, &err);

	if (ch) {
		oc->ch = ch;
		start_create(oc);
	} else if (err < 0) {
		ocirc_close(oc, false, "cannot open a channel to the first hop");
	}
}

static void node_to_targets(const struct node *n, struct hop_target *h, struct relay_target *rt)
{
	const struct consensus_router *rs = n->rs;

	memset(h, 0, sizeof(*h));
	h->ipv4[0] = (uint8_t)(rs->ipv4 >> 24);
	h->ipv4[1] = (uint8_t)(rs->ipv4 >> 16);
	h->ipv4[2] = (uint8_t)(rs->ipv4 >> 8);
	h->ipv4[3] = (uint8_t)rs->ipv4;
	h->port = rs->or_port;
	memcpy(h->rsa_id, rs->identity, SHA1_LEN);
	if (n->md) {
		memcpy(h->ntor_key, n->md->ntor_key, 32);
		if (n->md->has_ed25519) {
			h->has_ed_id = true;
			memcpy(h->ed_id, n->md->ed25519_id, 32);
		}
	}
	/* tor-spec 5.1.4 / prop 332: ntor v3 needs Relay=4; CC needs FlowCtrl=2. */
	if (protover_supports(&rs->protos, PROTOVER_RELAY, 4))
		h->protos |= HOP_PROTO_NTOR3;
	if (protover_supports(&rs->protos, PROTOVER_FLOWCTRL, 2))
		h->protos |= HOP_PROTO_FLOWCTRL_CC;
	if (rt) {
		struct sockaddr_in *in = (struct sockaddr_in *)&rt->addr;

		memset(rt, 0, sizeof(*rt));
		in->sin_family = AF_INET;
		in->sin_port = htons(rs->or_port);
		in->sin_addr.s_addr = htonl(rs->ipv4);
		rt->addr_len = sizeof(*in);
		memcpy(rt->rsa_id, rs->identity, SHA1_LEN);
		rt->has_ed = h->has_ed_id;
		memcpy(rt->ed_id, h->ed_id, 32);
		snprintf(rt->nickname, sizeof(rt->nickname), "%s", rs->nickname);
	}
}

/* The set-up every 3-hop circuit shares: the shard's hard cap
 * (max_circuits), a new circuit of purpose holding the current directory,
 * and *req for path purpose pp through the process's guard (guard-spec:
 * every circuit enters through it) with the shard's failed relays. With
 * strict_guard, "every guard is down" fails the launch (exit circuits do
 * not go around the guards). Returns the circuit (not announced, not
 * connecting) or NULL with *why (nothing left behind). */
static struct ocirc *circ_prepare(struct shard *sh, enum ocirc_purpose purpose, enum path_purpose pp,
				  bool strict_guard, struct path_request *req, const char **why)
{
	struct ocirc *oc;
	uint8_t gid[20];

	if (sh->ncircs >= sh->cfg.max_circuits) {
		*why = "too many circuits on this shard";
		return NULL;
	}
	oc = ocirc_new(sh, purpose);
	if (!oc) {
		*why = "out of memory";
		return NULL;
	}
	if (!dir_acquire || !dir_acquire(&oc->dv)) {
		ocirc_free(oc);
		*why = "no usable directory yet (not bootstrapped)";
		return NULL;
	}
	oc->has_dv = true;
	memset(req, 0, sizeof(*req));
	if (guardmgr_current(gid)) {
		req->guard = nodelist_find(oc->dv.nl, gid);
	} else if (strict_guard && guardmgr_all_down()) {
		ocirc_free(oc);
		*why = "every entry guard is unreachable";
		return NULL;
	}
	req->purpose = pp;
	req->now_ms = worker_now_ns(sh->w) / 1000000u;
	req->bad = sh->bad;
	return oc;
}

/* Launch an exit circuit for port (0: any) on sh: directory, guard, path
 * avoiding the exits excl (NULL: none) remembers.
 * Returns the circuit, connecting to its first hop, or NULL with *code
 * and *why set (nothing is left behind). */
static struct ocirc *circ_launch_exit(struct shard *sh, uint16_t port, const struct stream_retry *excl,
				      enum socks5_reply *code, const char **why)
{
	struct path_request req;
	struct path path;
	struct ocirc *oc;
	enum path_err pe;

	oc = circ_prepare(sh, OC_EXIT, PATH_PURPOSE_EXIT, true, &req, why);
	if (!oc) {
		*code = SOCKS5_GENERAL_FAILURE;
		return NULL;
	}
	req.port = port;
	req.need_stable = path_port_needs_stable(req.port);
	if (excl) {
		req.exclude_exits = excl->excluded[0];
		req.n_exclude_exits = excl->nexcluded;
	}
	pe = path_choose(oc->dv.ps, &req, &path);
	if (pe != PATH_OK) {
		char port_shown[16]; /* the user's port: SafeLogging scrubs it */

		if (log_safe_logging())
			snprintf(port_shown, sizeof(port_shown), "%s", LOG_SCRUBBED);
		else
			snprintf(port_shown, sizeof(port_shown), "%u", (unsigned)req.port);
		/* Once a minute at notice per shard; the rest at info (the
		 * prebuild tick would otherwise repeat it every second). */
		if (worker_now_ns(sh->w) - sh->path_warned_ns > 60ull * 1000000000ull || !sh->path_warned_ns) {
			log_notice("cannot choose a path for port %s: %s", port_shown, path_err_str(pe));
			sh->path_warned_ns = worker_now_ns(sh->w);
		} else {
			log_info("cannot choose a path for port %s: %s", port_shown, path_err_str(pe));
		}
		oc->state = OC_CLOSED;
		ocirc_free(oc);
		*code = pe == PATH_ERR_NO_EXIT ? SOCKS5_NOT_ALLOWED : SOCKS5_GENERAL_FAILURE;
		*why = path_err_str(pe);
		return NULL;
	}
	oc->nhops = path.n;
	oc->via_guard = req.guard != NULL;
	for (unsigned i = 0; i < path.n; i++)
		node_to_targets(path.hop[i], &oc->hops[i], i == 0 ? &oc->first : NULL);
	/* Ask the exit for congestion control when the consensus runs it. */
	oc->hops[path.n - 1].request_cc = oc->dv.cc_enabled;
	oc->exit = path.hop[path.n - 1];
	oc->exit_port = req.port;
	publish_circ(oc, EVENTS_CIRC_LAUNCHED, NULL);
	return oc;
}

struct ocirc *circmgr_launch_internal(struct shard *sh, const uint8_t *last_id,
				      const struct hop_target *last_target, const char **why)
{
	struct path_request req;
	struct path path;
	struct ocirc *oc;
	enum path_err pe;

	oc = circ_prepare(sh, OC_HS, PATH_PURPOSE_INTERNAL, false, &req, why);
	if (!oc)
		return NULL;
	req.need_stable = true; /* path-spec 2.2: onion-service circuits are long-lived */
	if (last_id) {
		req.last = nodelist_find(oc->dv.nl, last_id);
		if (!req.last && !last_target) {
			oc->state = OC_CLOSED;
			ocirc_free(oc);
			*why = "the relay is not in the consensus";
			return NULL;
		}
	}
	pe = path_choose(oc->dv.ps, &req, &path);
	if (pe == PATH_ERR_NO_MIDDLE || pe == PATH_ERR_GUARD_CONFLICT) {
		/* Our guard is the fixed last hop (or its family), or the
		 * Stable rule leaves no middle on a small network: another
		 * guard, and any middle, beat giving up. */
		req.guard = NULL;
		req.need_stable = false;
		pe = path_choose(oc->dv.ps, &req, &path);
	}
	if (pe == PATH_ERR_NO_MIDDLE && !last_id) {
		/* A young network's bandwidth weights may leave a single relay
		 * with middle weight: then the free last hop (a rendezvous
		 * point may be any relay) comes from the guard or exit weights
		 * so that relay can be the middle. */
		static const enum path_pos alt[] = { PATH_POS_GUARD, PATH_POS_EXIT };

		for (size_t i = 0; i < sizeof(alt) / sizeof(alt[0]) && pe != PATH_OK; i++) {
			req.last = path_choose_pos(oc->dv.ps, alt[i], &req, NULL, 0);
			if (req.last)
				pe = path_choose(oc->dv.ps, &req, &path);
		}
	}
	if (pe != PATH_OK) {
		log_info("cannot choose an onion-service path: %s", path_err_str(pe));
		oc->state = OC_CLOSED;
		ocirc_free(oc);
		*why = path_err_str(pe);
		return NULL;
	}
	oc->nhops = path.n;
	oc->via_guard = req.guard != NULL && path.hop[0] == req.guard;
	for (unsigned i = 0; i < path.n; i++)
		node_to_targets(path.hop[i], &oc->hops[i], i == 0 ? &oc->first : NULL);
	if (last_target) {
		uint32_t protos = req.last ? oc->hops[path.n - 1].protos : 0;

		oc->hops[path.n - 1] = *last_target;
		oc->hops[path.n - 1].protos |= protos;
	}
	/* No congestion control with the rendezvous or introduction point:
	 * streams never end there (324 §10.1 asks it of exits only). */
	oc->hops[path.n - 1].request_cc = false;
	return oc;
}

void circmgr_ocirc_connect(struct ocirc *oc)
{
	publish_circ(oc, EVENTS_CIRC_LAUNCHED, NULL);
	ocirc_connect_first(oc);
}

/* Launch an exit circuit suited to st (its port, isolation key and the
 * exits that failed it) and queue st on it; on failure retry later or end
 * st (stream_failed). */
static void circ_launch_for(struct shard *sh, struct stream *st)
{
	enum socks5_reply code = SOCKS5_GENERAL_FAILURE;
	const char *why = "no circuit";
	struct ocirc *oc;

	if (st->onion) {
		/* app/hs_client.c places it (descriptor, introduction and
		 * rendezvous); the stream's deadline still holds. */
		hs_client_place(sh, st);
		return;
	}
	stream_retry_attempt(&st->retry);
	oc = circ_launch_exit(sh, st->t.kind == STREAM_CONNECT ? st->t.port : 0, &st->retry, &code, &why);
	if (!oc) {
		/* circ_launch_exit says NOT_ALLOWED only when no exit fits. */
		stream_failed(sh, st, NULL, code == SOCKS5_NOT_ALLOWED ? RETRY_NO_EXIT : RETRY_NO_CIRCUIT, 0, why);
		return;
	}
	oc->has_iso = true;
	oc->iso = st->t.iso;
	st->oc = oc;
	stream_link(&oc->waiting, st);
	ocirc_connect_first(oc);
}

/* --- the circuit pool (issue 6; the policy is app/circpool.h) ------------------ */

#define PREBUILD_PERIOD_NS (1000000000ull)
#define PREBUILD_LAUNCHES_MAX 2 /* a second: a failing network is not hammered */

/* Whether oc will never take another stream: SIGNAL NEWNYM or a node-rule
 * change since its launch (both bump the epoch), MaxCircuitDirtiness past
 * its first stream, or marked unusable (an exit failed a stream on it, it
 * is full). */
static bool circ_is_retired(const struct shard *sh, const struct ocirc *oc)
{
	return oc->unusable || oc->epoch != events_newnym_epoch() ||
	       (oc->dirty_ns && worker_now_ns(sh->w) - oc->dirty_ns > sh->cfg.max_dirtiness_ns);
}

/* A pool circuit no stream has used, still able to take its first. */
static bool circ_is_clean(const struct shard *sh, const struct ocirc *oc)
{
	return oc->purpose == OC_EXIT && oc->prebuilt && oc->state != OC_CLOSED && !circ_is_retired(sh, oc);
}

/* Close the open exit circuits that will take no new stream and carry
 * none, as tor's circuit_expire_old_circuits_clientside does (END_CIRC_
 * REASON_FINISHED: CIRC CLOSED REASON=FINISHED). One with a stream
 * attached or waiting stays until its last stream ends: never cut one. */
static void pool_sweep(struct shard *sh)
{
	struct ocirc *next;

	for (struct ocirc *oc = sh->circs; oc; oc = next) {
		next = oc->next;
		if (oc->purpose != OC_EXIT || oc->state != OC_OPEN || oc->streams || oc->waiting ||
		    !circ_is_retired(sh, oc))
			continue;
		STAT_ADD(sh, circs_retired, 1);
		ocirc_close_reason(oc, true, oc->epoch != events_newnym_epoch() ? "retired: new identity or node rules"
					      : oc->unusable ? "retired: takes no new streams"
					      : "retired: past MaxCircuitDirtiness", "FINISHED");
	}
}

/* Describe oc for the planner: clean or carrying its key, and which
 * predicted ports its exit allows. */
static void pool_describe(const struct shard *sh, const struct ocirc *oc, struct circpool_circ *c)
{
	memset(c, 0, sizeof(*c));
	c->clean = oc->prebuilt;
	c->has_key = oc->has_iso;
	if (oc->has_iso)
		c->key = oc->iso;
	for (unsigned i = 0; i < sh->pool.nports; i++) {
		uint16_t port = sh->pool.ports[i].port;

		if (oc->exit_port == port || (oc->exit && node_allows_exit_port(oc->exit, port)))
			c->port_mask |= 1u << i;
	}
}

/* Ask the planner what the pool needs (CircuitPoolMinSize circuits any
 * key may take, one reserved for each recent key without a usable
 * circuit, the predicted ports covered; CircuitPoolMaxSize clean ones at
 * most), close open clean circuits it does not keep, and launch up to
 * PREBUILD_LAUNCHES_MAX of what it asks for. */
static void pool_refill(struct shard *sh)
{
	struct circpool_launch out[PREBUILD_LAUNCHES_MAX];
	struct circpool_circ *cv = calloc(sh->ncircs + 1, sizeof(*cv));
	struct ocirc **who = calloc(sh->ncircs + 1, sizeof(*who));
	size_t n = 0, nl;
	int64_t min;

	if (!cv || !who) {
		free(cv);
		free(who);
		log_warn("worker %u: out of memory planning the circuit pool", worker_id(sh->w));
		return;
	}
	for (struct ocirc *oc = sh->circs; oc; oc = oc->next) {
		if (oc->purpose != OC_EXIT || oc->state == OC_CLOSED || circ_is_retired(sh, oc) ||
		    (!oc->prebuilt && !oc->has_iso))
			continue;
		pool_describe(sh, oc, &cv[n]);
		who[n++] = oc;
	}
	/* The coordinator's quota move (circmgr_set_prebuild_boost) shifts the
	 * minimum, within CircuitPoolMaxSize. Relaxed: pairs with its store. */
	min = (int64_t)sh->cfg.prebuild + atomic_load_explicit(&sh->prebuild_boost, memory_order_relaxed);
	if (min < 0)
		min = 0;
	if (min > (int64_t)sh->cfg.pool_max)
		min = sh->cfg.pool_max;
	nl = circpool_plan(&sh->pool, (unsigned)min, sh->cfg.pool_max, cv, n, out, PREBUILD_LAUNCHES_MAX);
	for (size_t i = 0; i < n; i++) {
		/* Surplus: beyond CircuitPoolMaxSize (lowered), or demand that
		 * aged out. A building one is left to open and go next tick. */
		if (cv[i].clean && !cv[i].keep && who[i]->state == OC_OPEN) {
			STAT_ADD(sh, circs_retired, 1);
			ocirc_close_reason(who[i], true, "surplus clean circuit", "FINISHED");
		}
	}
	for (size_t i = 0; i < nl; i++) {
		enum socks5_reply code;
		const char *why;
		struct ocirc *oc = circ_launch_exit(sh, out[i].port, NULL, &code, &why);

		if (!oc)
			break;
		oc->prebuilt = true;
		if (out[i].has_key) {
			oc->has_iso = true; /* only that key's streams may take it */
			oc->iso = out[i].key;
		}
		ocirc_connect_first(oc);
	}
	free(cv);
	free(who);
}

/* The pool's tick: retire, forget old demand, refill. */
static void prebuild_tick(struct timer *t, void *arg)
{
	struct shard *sh = arg;

	if (sh->stopped || runtime_stopping(worker_runtime(sh->w)))
		return; /* not re-armed: the worker is stopping */
	pool_sweep(sh);
	circpool_expire(&sh->pool, worker_now_ns(sh->w));
	pool_refill(sh);
	publish_supply(sh);
	timer_arm(worker_timers(sh->w), t, worker_now_ns(sh->w) + PREBUILD_PERIOD_NS);
}

/* Armed when a retired circuit's last stream ends: close it now rather
 * than at the next tick (not from stream_detach itself, whose callers may
 * still look at the circuit). */
static void retire_tick(struct timer *t, void *arg)
{
	struct shard *sh = arg;

	(void)t;
	if (sh->stopped)
		return;
	pool_sweep(sh);
	publish_supply(sh);
}

/* --- events --------------------------------------------------------------------- */

static struct stream *stream_by_sid(struct ocirc *oc, uint16_t sid)
{
	struct stream *st = oc->by_slot[sid & (CIRC_STREAMS_MAX - 1)];

	return st && st->sid == sid ? st : NULL;
}

static void stream_detach(struct ocirc *oc, struct stream *st)
{
	stream_unlink(&oc->streams, st);
	oc->by_slot[st->sid & (CIRC_STREAMS_MAX - 1)] = NULL;
	st->oc = NULL;
	/* Onion-service circuits that can serve nothing more: a descriptor
	 * fetch's circuit after its one stream, a joined rendezvous circuit
	 * that takes no new streams (dirty or full) after its last one. The
	 * caller may still look at oc: while busy it is only marked dead. */
	if (!oc->streams && !oc->waiting && oc->state == OC_OPEN &&
	    (oc->purpose == OC_HSDIR || (oc->purpose == OC_HS && oc->c.hs_joined && oc->unusable)))
		ocirc_close(oc, true, oc->purpose == OC_HSDIR ? "descriptor fetch done" : "rendezvous circuit retired");
	/* An exit circuit that takes no new streams goes with its last one
	 * (tor: circuit_expire_old_circuits_clientside). */
	else if (oc->purpose == OC_EXIT && !oc->streams && !oc->waiting && oc->state == OC_OPEN &&
		 circ_is_retired(oc->sh, oc))
		timer_arm(worker_timers(oc->sh->w), &oc->sh->retire_timer, worker_now_ns(oc->sh->w));
}

static void stream_end_to_session(struct stream *st, enum socks5_reply code, const char *why)
{
	struct shard *sh = st->sh;

	if (st->state == ST_OPEN)
		STAT_ADD(sh, streams_open, (uint64_t)-1);
	else if (code != SOCKS5_SUCCEEDED)
		STAT_ADD(sh, streams_failed, 1);
	publish_stream(st, code == SOCKS5_SUCCEEDED ? EVENTS_STREAM_CLOSED : EVENTS_STREAM_FAILED,
		       code == SOCKS5_SUCCEEDED ? "DONE" : "MISC");
	st->ev->on_end(st->sess, code, why);
	stream_free(st);
}

static void on_connected_ev(struct ocirc *oc, struct stream *st, const struct circ_event *e)
{
	struct socks_addr bound, *b = NULL;

	st->state = ST_OPEN;
	timer_cancel(worker_timers(oc->sh->w), &st->timer); /* no deadline once connected */
	if (!early_drain(st))
		st->blocked = true; /* the windows closed: CIRC_EV_WRITABLE sends the rest */
	publish_stream(st, EVENTS_STREAM_SUCCEEDED, NULL);
	STAT_ADD(oc->sh, streams_opened, 1);
	STAT_ADD(oc->sh, streams_open, 1);
	memset(&bound, 0, sizeof(bound));
	if (e->u.connected.addr_type == 4) {
		bound.type = SOCKS_ADDR_IPV4;
		memcpy(bound.ip, e->u.connected.addr, 4);
		b = &bound;
	} else if (e->u.connected.addr_type == 6) {
		bound.type = SOCKS_ADDR_IPV6;
		memcpy(bound.ip, e->u.connected.addr, 16);
		b = &bound;
	}
	st->ev->on_connected(st->sess, b);
	/* Bytes the client sent before CONNECTED can go now. */
	if (st->oc == oc && st->ev->on_writable)
		st->ev->on_writable(st->sess);
}

static void on_resolved_ev(struct ocirc *oc, struct stream *st, const struct circ_event *e)
{
	struct relay_resolved_answer ans[4];
	size_t n = 0;
	const char *why = NULL;
	struct socks_addr a;

	stream_detach(oc, st);
	if (relay_resolved_parse(e->u.raw.body, e->u.raw.len, ans, 4, &n, &why) != PARSE_OK || n == 0) {
		stream_end_to_session(st, SOCKS5_GENERAL_FAILURE, why ? why : "bad RESOLVED");
		return;
	}
	memset(&a, 0, sizeof(a));
	for (size_t i = 0; i < n && i < 4; i++) {
		if (ans[i].type == RELAY_RESOLVED_IPV4 && ans[i].len == 4) {
			a.type = SOCKS_ADDR_IPV4;
			memcpy(a.ip, ans[i].value, 4);
		} else if (ans[i].type == RELAY_RESOLVED_IPV6 && ans[i].len == 16) {
			a.type = SOCKS_ADDR_IPV6;
			memcpy(a.ip, ans[i].value, 16);
		} else if (ans[i].type == RELAY_RESOLVED_HOSTNAME && ans[i].len > 0) {
			a.type = SOCKS_ADDR_HOSTNAME;
			a.host_len = ans[i].len;
			memcpy(a.host, ans[i].value, ans[i].len);
			a.host[ans[i].len] = '\0';
		} else {
			continue;
		}
		st->ev->on_resolved(st->sess, &a, ans[i].ttl);
		st->state = ST_WAITING;
		stream_free(st);
		return;
	}
	stream_end_to_session(st, SOCKS5_HOST_UNREACHABLE, "the exit could not resolve the name");
}

static void on_end_ev(struct ocirc *oc, struct stream *st, uint8_t reason)
{
	bool connecting = st->state == ST_CONNECTING;

	stream_detach(oc, st);
	if (connecting) {
		/* tor-spec 6.3 / tor's connection_ap_process_end_not_open: some
		 * reasons are worth another exit (stream_retry.c says which). */
		stream_failed(oc->sh, st, oc, RETRY_END, reason, relay_end_reason_name(reason));
		return;
	}
	stream_end_to_session(st, SOCKS5_SUCCEEDED, relay_end_reason_name(reason));
}

static void handle_event(struct ocirc *oc, const struct circ_event *e)
{
	struct stream *st;

	switch (e->type) {
	case CIRC_EV_HOP_ADDED:
		if (oc->c.n_hops < oc->nhops) {
			struct cell cell;
			if (circ_begin_extend(&oc->c, &oc->hops[oc->c.n_hops], &cell) < 0) {
				ocirc_close(oc, true, "cannot encode EXTEND2");
				return;
			}
			send_one(oc, &cell);
		} else {
			ocirc_opened(oc);
		}
		break;
	case CIRC_EV_CONNECTED:
		if ((st = stream_by_sid(oc, e->stream_id)))
			on_connected_ev(oc, st, e);
		break;
	case CIRC_EV_DATA:
		if ((st = stream_by_sid(oc, e->stream_id)) && st->state == ST_OPEN)
			st->ev->on_data(st->sess, e->u.data.data, e->u.data.len);
		break;
	case CIRC_EV_END:
		if ((st = stream_by_sid(oc, e->stream_id)))
			on_end_ev(oc, st, e->u.end.reason);
		break;
	case CIRC_EV_RESOLVED:
		if ((st = stream_by_sid(oc, e->stream_id)))
			on_resolved_ev(oc, st, e);
		break;
	case CIRC_EV_WRITABLE:
		for (st = oc->streams; st; st = st->next) {
			if (st->early_sent < st->early_len && (e->stream_id == 0 || st->sid == e->stream_id)) {
				if (st->state == ST_OPEN)
					early_drain(st);
				else if (st->optimistic)
					early_flush(st);
			}
			if (st->blocked && (e->stream_id == 0 || st->sid == e->stream_id)) {
				st->blocked = false;
				st->ev->on_writable(st->sess);
				if (oc->dead)
					return;
			}
		}
		break;
	case CIRC_EV_TRUNCATED:
	case CIRC_EV_CLOSED:
		ocirc_close(oc, true, e->u.close.why ? e->u.close.why : "protocol error");
		break;
	case CIRC_EV_DESTROYED:
		ocirc_close(oc, false, e->u.close.why ? e->u.close.why : "destroyed by the relay");
		break;
	case CIRC_EV_HS:
		if (oc->purpose == OC_HS && oc->hs)
			hs_client_on_cell(oc, e->u.hs.command, e->u.hs.body, e->u.hs.len);
		break;
	}
}

/* --- streams ------------------------------------------------------------------- */

static void stream_attach(struct ocirc *oc, struct stream *st)
{
	enum circ_stream_kind kind;
	const char *host;
	char text[SOCKS_ADDR_TEXT_MAX + 8];
	size_t host_len = 0;
	struct cell cell;
	uint16_t sid;

	if (st->is_dir) {
		kind = CIRC_STREAM_BEGIN_DIR;
		host = "";
	} else if (st->onion) {
		kind = CIRC_STREAM_BEGIN; /* empty address: the service maps the port (rend-spec-v3 4.2) */
		host = "";
	} else {
		kind = st->t.kind == STREAM_CONNECT ? CIRC_STREAM_BEGIN : CIRC_STREAM_RESOLVE;
		if (st->t.dest.type == SOCKS_ADDR_HOSTNAME) {
			host = st->t.dest.host;
			host_len = st->t.dest.host_len;
		} else {
			host_len = socks_addr_format(&st->t.dest, text, sizeof(text));
			host = text;
		}
	}
	if (circ_stream_open(&oc->c, kind, host, host_len, st->t.port, 0, &sid, &cell) < 0) {
		/* The circuit is full of streams: take a new one for this. */
		oc->unusable = true;
		st->oc = NULL;
		if (st->is_dir)
			stream_end_to_session(st, SOCKS5_GENERAL_FAILURE, "directory circuit full");
		else
			circ_launch_for(oc->sh, st);
		return;
	}
	st->oc = oc;
	st->sid = sid;
	st->state = ST_CONNECTING;
	oc->by_slot[sid & (CIRC_STREAMS_MAX - 1)] = st;
	stream_link(&oc->streams, st);
	if (!oc->dirty_ns)
		oc->dirty_ns = worker_now_ns(oc->sh->w);
	if (oc->prebuilt) {
		oc->prebuilt = false; /* taken: no longer the pool's */
		publish_supply(oc->sh);
	}
	/* The isolation key's first bytes let tests and operators see which
	 * streams share a circuit without logging destinations. */
	log_info("stream %u (isolation %02x%02x%02x%02x) attached to circuit %08x", sid, st->t.iso.digest[0],
		 st->t.iso.digest[1], st->t.iso.digest[2], st->t.iso.digest[3], oc->circ_id);
	publish_stream(st, kind == CIRC_STREAM_RESOLVE ? EVENTS_STREAM_SENTRESOLVE : EVENTS_STREAM_SENTCONNECT, NULL);
	send_one(oc, &cell);
	if (st->is_dir)
		return;
	stream_arm(st, worker_now_ns(oc->sh->w) + stream_retry_attempt_timeout_ns(&st->retry));
	st->optimistic = kind == CIRC_STREAM_BEGIN && exit_takes_optimistic(oc);
	if (st->optimistic && st->early_len)
		early_flush(st);
}

static bool circ_usable_for(struct shard *sh, struct ocirc *oc, const struct stream *st)
{
	if (oc->purpose != OC_EXIT || oc->unusable || oc->state == OC_CLOSED)
		return false;
	if (oc->epoch != events_newnym_epoch()) {
		oc->unusable = true; /* SIGNAL NEWNYM: new streams get new circuits */
		return false;
	}
	if (oc->dirty_ns && worker_now_ns(sh->w) - oc->dirty_ns > sh->cfg.max_dirtiness_ns) {
		oc->unusable = true; /* MaxCircuitDirtiness: no new streams */
		return false;
	}
	if (oc->has_iso && memcmp(&oc->iso, &st->t.iso, sizeof(oc->iso)) != 0)
		return false;
	if (st->retry.nexcluded && oc->nhops && stream_retry_excludes(&st->retry, oc->hops[oc->nhops - 1].rsa_id))
		return false; /* this exit failed st before */
	if (st->t.kind == STREAM_CONNECT && oc->exit_port != st->t.port &&
	    !(oc->exit && node_allows_exit_port(oc->exit, st->t.port)))
		return false;
	return true;
}

/* st found no open circuit here and would wait for a build. On its first
 * placement, when another shard has a circuit reserved for st's key or a
 * ready clean circuit, offer its session the move
 * (stream_events.on_would_wait); count the wait otherwise. Return true
 * when st is gone (moved). Owner shard. */
static bool stream_moved_away(struct shard *sh, struct stream *st, bool first)
{
	bool elsewhere;

	if (!first)
		return false; /* a retry: not a new stream */
	elsewhere = keyed_elsewhere(sh, &st->t.iso) || ready_elsewhere(sh);
	if (elsewhere && st->ev->on_would_wait &&
	    st->ev->on_would_wait(st->sess, &st->t.iso, st->early, st->early_len)) {
		/* The session is on its way to another shard, where it opens a
		 * new stream (a NEW event with a new id). */
		publish_stream(st, EVENTS_STREAM_DETACHED, "MISC");
		stream_free(st);
		return true;
	}
	STAT_ADD(sh, streams_waited_build, 1);
	if (elsewhere) {
		STAT_ADD(sh, streams_waited_ready_elsewhere, 1);
		log_info("stream %llu waits for a circuit build while another shard has a ready circuit",
			 (unsigned long long)st->gid);
	}
	return false;
}

/* Put st on a circuit: one already carrying its key, an open clean
 * (prebuilt) one, one still building, or a new one. May end st (through
 * on_end) when nothing can carry it: never call it from stream_open. */
static void stream_place(struct shard *sh, struct stream *st)
{
	struct ocirc *oc, *building = NULL, *clean = NULL;
	bool first = !st->placed;

	st->placed = true;
	for (oc = sh->circs; oc; oc = oc->next) {
		if (!circ_usable_for(sh, oc, st))
			continue;
		if (oc->state == OC_OPEN && oc->has_iso) {
			stream_retry_attempt(&st->retry);
			stream_drop_claim(st); /* before: stream_attach may end st */
			stream_attach(oc, st);
			return;
		}
		if (oc->state == OC_OPEN && !clean)
			clean = oc;
		else if (oc->state != OC_OPEN && !building)
			building = oc;
	}
	if (!clean && stream_moved_away(sh, st, first))
		return;
	if (clean || building) {
		bool took_clean = clean && clean->prebuilt;

		oc = clean ? clean : building;
		if (!oc->has_iso) {
			oc->has_iso = true; /* the stream's key now owns this circuit */
			oc->iso = st->t.iso;
		}
		stream_retry_attempt(&st->retry);
		if (oc->state != OC_OPEN) {
			oc->prebuilt = false; /* taken while building */
			st->oc = oc;
			stream_link(&oc->waiting, st);
		}
		if (took_clean || !clean || st->holds_claim)
			publish_supply(sh);
		/* After the publish (the claimed circuit no longer counts as
		 * ready), before stream_attach, which may end st. */
		stream_drop_claim(st);
		if (oc->state == OC_OPEN)
			stream_attach(oc, st);
		return;
	}
	stream_drop_claim(st);
	circ_launch_for(sh, st); /* may end st */
	publish_supply(sh);
}

/* Give the first hop of the directory circuit oc the ntor onion key the
 * current directory lists for its relay, if any: the circuit then uses
 * CREATE2 (ntor) rather than CREATE_FAST, which is only for a relay whose
 * key we do not know yet (tor-spec 5.1.5: CREATE_FAST "is currently
 * deprecated whenever it is not necessary", i.e. outside bootstrap). */
static void dir_hop_learn_ntor_key(struct ocirc *oc)
{
	struct dirview dv;
	const struct node *n;

	if (!dir_acquire || !dir_acquire(&dv))
		return;
	n = nodelist_find(dv.nl, oc->first.rsa_id);
	if (n && n->md)
		memcpy(oc->hops[0].ntor_key, n->md->ntor_key, sizeof(oc->hops[0].ntor_key));
	dir_release(dv.ref);
}

/* The same for a directory stream: the one-hop circuit to its relay. */
static void stream_place_dir(struct shard *sh, struct stream *st)
{
	const struct relay_target *t = &st->dir_target;
	struct ocirc *oc;

	if (st->anon_dir) {
		/* A descriptor fetch: a fresh 3-hop circuit ending at the
		 * HSDir, so the HSDir does not learn who asks (rend-spec-v3
		 * 2.2.6 "clients fetch ... over an anonymous circuit"). */
		const char *why = "no circuit";

		oc = circmgr_launch_internal(sh, t->rsa_id, NULL, &why);
		if (!oc) {
			stream_end_to_session(st, SOCKS5_GENERAL_FAILURE, why);
			return;
		}
		oc->purpose = OC_HSDIR;
		oc->ctl_purpose = "HS_CLIENT_HSDIR";
		oc->unusable = true; /* one fetch per circuit */
		st->oc = oc;
		stream_link(&oc->waiting, st);
		circmgr_ocirc_connect(oc);
		return;
	}
	for (oc = sh->circs; oc; oc = oc->next) {
		if (oc->purpose == OC_DIR && !oc->unusable && oc->state != OC_CLOSED &&
		    memcmp(oc->first.rsa_id, t->rsa_id, SHA1_LEN) == 0) {
			if (oc->state == OC_OPEN) {
				stream_attach(oc, st);
			} else {
				st->oc = oc;
				stream_link(&oc->waiting, st);
			}
			return;
		}
	}
	oc = ocirc_new(sh, OC_DIR);
	if (!oc) {
		stream_end_to_session(st, SOCKS5_GENERAL_FAILURE, "out of memory");
		return;
	}
	/* The parameters of a one-hop directory circuit do not depend on the
	 * consensus we may not have yet: defaults, no congestion control. */
	circ_params_default(&oc->dv.cparams);
	oc->nhops = 1;
	oc->first = *t;
	memcpy(oc->hops[0].rsa_id, t->rsa_id, SHA1_LEN);
	oc->hops[0].port = ntohs(((const struct sockaddr_in *)&t->addr)->sin_port);
	dir_hop_learn_ntor_key(oc);
	st->oc = oc;
	stream_link(&oc->waiting, st);
	ocirc_connect_first(oc);
}

/* Streams opened since the last loop iteration get their circuits here,
 * outside stream_open, so that any failure reaches the session through a
 * callback after stream_open has returned (the stream.h contract). */
static void place_pending(struct timer *t, void *arg)
{
	struct shard *sh = arg;
	struct stream *st;

	(void)t;
	while ((st = sh->pending)) {
		stream_unlink(&sh->pending, st);
		st->queued = false;
		if (st->is_dir) {
			stream_place_dir(sh, st);
		} else if (st->onion) {
			st->attempts++;
			hs_client_place(sh, st);
		} else {
			stream_place(sh, st);
		}
	}
}

static void queue_for_placement(struct shard *sh, struct stream *st)
{
	st->queued = true;
	stream_link(&sh->pending, st);
	if (!timer_is_armed(&sh->pending_timer))
		timer_arm(worker_timers(sh->w), &sh->pending_timer, worker_now_ns(sh->w));
}

struct stream *stream_open(struct worker *w, const struct stream_target *target,
			   const struct stream_events *ev, void *sess, enum socks5_reply *code, const char **why)
{
	struct shard *sh = shard_of(w);
	struct stream *st;

	if (!sh || sh->stopped) {
		*code = SOCKS5_GENERAL_FAILURE;
		*why = "no circuit manager on this worker";
		return NULL;
	}
	if (target->dest.type == SOCKS_ADDR_HOSTNAME && onion_addr_is_onion(target->dest.host, target->dest.host_len)) {
		uint8_t id[32];
		enum onion_addr_err e = onion_addr_parse(target->dest.host, target->dest.host_len, id);

		if (e != ONION_ADDR_OK) {
			*code = (enum socks5_reply)onion_addr_socks_reply(e); /* 0xF6: bad onion address */
			*why = onion_addr_strerror(e);
			return NULL;
		}
		if (target->kind != STREAM_CONNECT) {
			*code = SOCKS5_HS_BAD_ADDRESS; /* tor: onion names do not resolve */
			*why = "onion addresses cannot be resolved";
			return NULL;
		}
	}
	if (!dir_acquire) {
		*code = SOCKS5_GENERAL_FAILURE;
		*why = "no directory source installed";
		return NULL;
	}
	/* Not bootstrapped yet is no reason to refuse: as in tor, the stream
	 * waits for a usable directory and a circuit until its deadline
	 * (each launch that finds none is a RETRY_NO_CIRCUIT). */
	st = calloc(1, sizeof(*st));
	if (!st) {
		*code = SOCKS5_GENERAL_FAILURE;
		*why = "out of memory";
		return NULL;
	}
	st->sh = sh;
	st->t = *target;
	st->ev = ev;
	st->sess = sess;
	st->state = ST_WAITING;
	st->gid = atomic_fetch_add_explicit(&next_gid, 1, memory_order_relaxed);
	st->onion = target->dest.type == SOCKS_ADDR_HOSTNAME &&
		    onion_addr_is_onion(target->dest.host, target->dest.host_len);
	st->holds_claim = target->handed_in;
	st->claim_keyed = target->handed_in && target->keyed;
	stream_retry_init(&st->retry, target->deadline_ns ? target->deadline_ns
							  : worker_now_ns(w) + STREAM_DEFAULT_TIMEOUT_NS);
	timer_init(&st->timer, stream_tick, st);
	stream_arm(st, st->retry.deadline_ns);
	publish_stream(st, EVENTS_STREAM_NEW, NULL);
	if (!st->onion) /* the pool's demand: predicted ports and recent keys */
		circpool_note(&sh->pool, target->kind == STREAM_CONNECT ? target->port : 0, &target->iso,
			      worker_now_ns(w));
	queue_for_placement(sh, st);
	return st;
}

struct stream *stream_open_dir_anon(struct worker *w, const struct relay_target *t,
				    const struct stream_events *ev, void *sess, const char **why)
{
	struct stream *st = stream_open_dir(w, t, ev, sess, why);

	if (st)
		st->anon_dir = true;
	return st;
}

struct stream *stream_open_dir(struct worker *w, const struct relay_target *t,
			       const struct stream_events *ev, void *sess, const char **why)
{
	struct shard *sh = shard_of(w);
	struct stream *st;

	if (!sh || sh->stopped) {
		*why = "no circuit manager on this worker";
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		*why = "out of memory";
		return NULL;
	}
	st->sh = sh;
	st->is_dir = true;
	st->dir_target = *t;
	st->ev = ev;
	st->sess = sess;
	timer_init(&st->timer, stream_tick, st); /* never armed: no retries */
	queue_for_placement(sh, st);
	return st;
}

size_t stream_write(struct stream *st, const uint8_t *data, size_t len)
{
	struct ocirc *oc = st->oc;
	struct shard *sh = st->sh;
	size_t total = 0;

	if (st->state != ST_OPEN)
		return stream_write_early(st, data, len);
	if (!oc || oc->state != OC_OPEN || !early_drain(st)) {
		st->blocked = true;
		return 0;
	}
	while (total < len) {
		size_t taken = 0, n = 0;

		if (circ_stream_data(&oc->c, st->sid, data + total, len - total, worker_now_ns(sh->w) / 1000u, &taken,
				     sh->outp, OUT_CAP, &n) < 0)
			break;
		send_cells(oc, sh->outp, n);
		total += taken;
		if (taken == 0)
			break;
	}
	if (total < len)
		st->blocked = true;
	return total;
}

void stream_set_reading(struct stream *st, bool reading)
{
	struct ocirc *oc = st->oc;

	if (!oc || oc->state != OC_OPEN || !st->sid)
		return;
	circ_stream_set_reading(&oc->c, st->sid, reading);
	flush_ctrl(oc);
}

void stream_close(struct stream *st)
{
	struct ocirc *oc = st->oc;

	if (st->queued) {
		stream_unlink(&st->sh->pending, st);
		st->queued = false;
	} else if (st->state == ST_BACKOFF) {
		stream_unlink(&st->sh->backoff, st);
	} else if (st->hs_wait) {
		hs_client_stream_gone(st);
	} else if (oc) {
		if (st->state == ST_WAITING) {
			stream_unlink(&oc->waiting, st);
		} else {
			struct cell cell;
			if (oc->state == OC_OPEN && circ_stream_end(&oc->c, st->sid, RELAY_END_DONE, &cell) == 0)
				send_one(oc, &cell);
			stream_detach(oc, st);
		}
	}
	if (st->state == ST_OPEN)
		STAT_ADD(st->sh, streams_open, (uint64_t)-1);
	publish_stream(st, EVENTS_STREAM_CLOSED, "DONE");
	stream_free(st);
}

void circmgr_stream_attach(struct ocirc *oc, struct stream *st)
{
	stream_attach(oc, st);
}

void circmgr_stream_end(struct stream *st, enum socks5_reply code, const char *why)
{
	stream_end_to_session(st, code, why);
}

void circmgr_ocirc_close(struct ocirc *oc, bool send_destroy, const char *why)
{
	ocirc_close(oc, send_destroy, why);
}

/* --- the shard ------------------------------------------------------------------- */

void circmgr_config_from(struct circmgr_config *out, const struct config *cfg)
{
	memset(out, 0, sizeof(*out));
	out->max_dirtiness_ns = (uint64_t)cfg->max_circuit_dirtiness * 1000000000ull;
	out->build_timeout_ns = 60ull * 1000000000ull; /* path-spec 2.4: the initial timeout */
	out->chan_max_idle_ns = (uint64_t)cfg->channel_pool_max_idle * 1000000000ull;
	out->chan_max_lifetime_ns = (uint64_t)cfg->channel_pool_max_lifetime * 1000000000ull;
	out->prebuild = cfg->circuit_prebuild ? (unsigned)cfg->circuit_pool_min_size : 0;
	out->pool_max = cfg->circuit_prebuild ? (unsigned)cfg->circuit_pool_max_size : 0;
	out->max_circuits = (unsigned)cfg->circuit_pool_max_size * 64u;
	if (out->max_circuits < 64)
		out->max_circuits = 64;
}

#define SUMMARY_PERIOD_NS 1000000000ull

/* What oc's streams hold for (and from) their clients: bytes, and the
 * oldest time one was queued (0: nothing). Owner shard. */
static uint64_t circ_queued(const struct ocirc *oc, uint64_t *oldest_ns)
{
	uint64_t bytes = 0;

	*oldest_ns = 0;
	for (const struct stream *st = oc->streams; st; st = st->next) {
		uint64_t since = 0;
		size_t n;

		if (!st->ev || !st->ev->queued)
			continue;
		n = st->ev->queued(st->sess, &since);
		if (!n)
			continue;
		bytes += n;
		if (since && (!*oldest_ns || since < *oldest_ns))
			*oldest_ns = since;
	}
	return bytes;
}

/* Refresh the shard's MaxMemInQueues gauges. Owner shard. */
static void queued_publish(struct shard *sh)
{
	uint64_t bytes = 0, oldest = 0;

	for (const struct ocirc *oc = sh->circs; oc; oc = oc->next) {
		uint64_t since;

		bytes += circ_queued(oc, &since);
		if (since && (!oldest || since < oldest))
			oldest = since;
	}
	/* Relaxed: pairs with circmgr_stats_read's relaxed loads; a gauge. */
	atomic_store_explicit((_Atomic uint64_t *)&sh->stats.queued_bytes, bytes, memory_order_relaxed);
	atomic_store_explicit((_Atomic uint64_t *)&sh->stats.queued_oldest_ns, oldest, memory_order_relaxed);
}

static struct ocirc *circ_by_gid(struct shard *sh, uint64_t id);

#define SHED_MAX 256 /* circuits looked at per shed request (the oldest of them go) */

void circmgr_shed(struct worker *w, uint64_t keep)
{
	struct shard *sh = shard_of(w);
	struct oom_item items[SHED_MAX];
	size_t n = 0, k;
	uint64_t now, freed = 0, held = 0, to_free;

	if (!sh || sh->stopped)
		return;
	now = worker_now_ns(w);
	for (struct ocirc *oc = sh->circs; oc && n < SHED_MAX; oc = oc->next) {
		uint64_t since, bytes = oc->state == OC_CLOSED ? 0 : circ_queued(oc, &since);

		if (bytes)
			items[n++] = (struct oom_item){ .bytes = bytes, .oldest_ns = since, .id = oc->gid };
		held += bytes;
	}
	to_free = held > keep ? held - keep : 0;
	k = oom_select(items, n, to_free);
	for (size_t i = 0; i < k; i++) {
		struct stream *sts[CIRC_STREAMS_MAX];
		size_t ns = 0;
		struct ocirc *oc = circ_by_gid(sh, items[i].id);

		if (!oc)
			continue;
		log_warn("MaxMemInQueues: closing circuit %llu (%08x): %llu bytes queued, the oldest for %llu ms",
			 (unsigned long long)oc->gid, oc->circ_id, (unsigned long long)items[i].bytes,
			 (unsigned long long)((now - items[i].oldest_ns) / 1000000u));
		for (struct stream *st = oc->streams; st && ns < CIRC_STREAMS_MAX; st = st->next)
			if (st->ev && st->ev->drop)
				sts[ns++] = st;
		/* Each drop closes its client without flushing and its stream
		 * (stream_close); the circuit may go with its last stream (an
		 * onion one does), so it is looked up again by id. */
		for (size_t j = 0; j < ns; j++)
			sts[j]->ev->drop(sts[j]->sess);
		oc = circ_by_gid(sh, items[i].id);
		if (oc)
			ocirc_close(oc, true, "MaxMemInQueues: oldest queued data");
		freed += items[i].bytes;
	}
	queued_publish(sh);
	if (k)
		log_notice("MaxMemInQueues: worker %u closed %zu circuit(s), %llu of %llu bytes freed (asked to keep at "
			   "most %llu)",
			   worker_id(w), k, (unsigned long long)freed, (unsigned long long)held, (unsigned long long)keep);
	else
		log_info("MaxMemInQueues: worker %u holds %llu bytes now, at most %llu asked: nothing to close",
			 worker_id(w), (unsigned long long)held, (unsigned long long)keep);
}

/* Publish what only this shard may read: the pool's plain counters and
 * each open circuit's cwnd/inflight/RTT (proto/cc.h). Owner shard. */
static void summary_tick(struct timer *t, void *arg)
{
	struct shard *sh = arg;
	struct circmgr_summary s = { .updated_ns = worker_now_ns(sh->w) };
	_Atomic uint64_t *dst = (_Atomic uint64_t *)&sh->summary;
	const uint64_t *src = (const uint64_t *)&s;

	publish_supply(sh); /* also catches streams that went away while waiting */
	s.chans = chanpool_size(sh->chans);
	s.chan = *chanpool_stats(sh->chans);
	for (const struct ocirc *oc = sh->circs; oc; oc = oc->next) {
		const struct cc *cc = &oc->c.cc;

		if (oc->state != OC_OPEN)
			continue;
		if (!oc->c.cc_on) {
			s.fixed_circs++;
			s.fixed_package_window += oc->c.package_window > 0 ? (uint64_t)oc->c.package_window : 0;
			continue;
		}
		s.cc_circs++;
		s.cc_cwnd += cc->cwnd > 0 ? (uint64_t)cc->cwnd : 0;
		s.cc_inflight += cc->inflight > 0 ? (uint64_t)cc->inflight : 0;
		s.cc_slow_start += cc->in_slow_start;
		s.cc_rtt_circs += cc->ewma_rtt_usec != 0;
		s.cc_rtt_usec += cc->ewma_rtt_usec;
	}
	queued_publish(sh);
	_Static_assert(sizeof(s) % sizeof(uint64_t) == 0, "summary is all uint64_t");
	/* Relaxed stores pair with circmgr_summary_read's relaxed loads. */
	for (size_t i = 0; i < sizeof(s) / sizeof(uint64_t); i++)
		atomic_store_explicit(&dst[i], src[i], memory_order_relaxed);
	if (timer_arm(worker_timers(sh->w), t, worker_now_ns(sh->w) + SUMMARY_PERIOD_NS) < 0)
		log_warn("worker %u: metrics summary timer not re-armed", worker_id(sh->w));
}

int circmgr_start(struct worker *w, const struct circmgr_config *cfg)
{
	struct shard *sh = calloc(1, sizeof(*sh));
	struct chanpool_config cc;

	if (!sh)
		return -ENOMEM;
	sh->w = w;
	sh->cfg = *cfg;
	chanpool_config_defaults(&cc);
	if (cfg->chan_max_idle_ns)
		cc.max_idle_ns = cfg->chan_max_idle_ns;
	if (cfg->chan_max_lifetime_ns)
		cc.max_lifetime_ns = cfg->chan_max_lifetime_ns;
	cc.observe = orconn_observe; /* ORCONN events (app/orconn.h) */
	sh->chans = chanpool_new(w, &cc);
	if (!sh->chans) {
		free(sh);
		return -ENOMEM;
	}
	relay_pad_rng_init(&sh->rng);
	events_newnym_set_supported();
	for (unsigned i = 0; i < OUT_CAP; i++)
		sh->outp[i] = &sh->out[i];
	keyslots_init(&sh->keys);
	circpool_init(&sh->pool, 0); /* no demand yet: port 80, as tor predicts */
	sh->bad = badrelays_new(10ull * 60 * 1000); /* a failure weighs half after 10 minutes */
	sh->hs = hs_client_new(sh);
	timer_init(&sh->prebuild_timer, prebuild_tick, sh);
	timer_init(&sh->retire_timer, retire_tick, sh);
	timer_init(&sh->pending_timer, place_pending, sh);
	/* Always ticking: even with CircuitPrebuild 0 it retires circuits. */
	timer_arm(worker_timers(w), &sh->prebuild_timer, worker_now_ns(w) + PREBUILD_PERIOD_NS);
	timer_init(&sh->summary_timer, summary_tick, sh);
	if (timer_arm(worker_timers(w), &sh->summary_timer, worker_now_ns(w) + SUMMARY_PERIOD_NS) < 0)
		log_warn("worker %u: no metrics summary timer", worker_id(w));
	worker_set_user(w, sh);
	return 0;
}

void circmgr_reconfigure(struct worker *w, const struct circmgr_config *cfg)
{
	struct shard *sh = shard_of(w);
	uint64_t build_timeout_ns;

	if (!sh || sh->stopped)
		return;
	build_timeout_ns = sh->cfg.build_timeout_ns; /* not a key: app/cbt owns it */
	sh->cfg = *cfg;
	sh->cfg.build_timeout_ns = build_timeout_ns;
	if (chanpool_reconfigure(sh->chans, cfg->chan_max_idle_ns, cfg->chan_max_lifetime_ns) < 0)
		log_warn("worker %u: channel pool sweep not re-armed after a configuration change", worker_id(w));
	/* A changed pool size is acted on at once, not after the next
	 * period: launches for a raised one, closes for a lowered one. */
	circmgr_refill_now(w, NULL);
}

void circmgr_stop(struct worker *w)
{
	struct shard *sh = shard_of(w);

	if (!sh)
		return;
	if (sh->stopped)
		return;
	sh->stopped = true;
	timer_cancel(worker_timers(w), &sh->pending_timer);
	while (sh->pending) {
		struct stream *st = sh->pending;
		stream_unlink(&sh->pending, st);
		st->queued = false;
		stream_end_to_session(st, SOCKS5_GENERAL_FAILURE, "shutting down");
	}
	while (sh->backoff) {
		struct stream *st = sh->backoff;
		stream_unlink(&sh->backoff, st);
		stream_end_to_session(st, SOCKS5_GENERAL_FAILURE, "shutting down");
	}
	hs_client_free(sh->hs);
	sh->hs = NULL;
	while (sh->circs)
		ocirc_close(sh->circs, false, "shutting down");
	timer_cancel(worker_timers(w), &sh->summary_timer);
	timer_cancel(worker_timers(w), &sh->prebuild_timer);
	timer_cancel(worker_timers(w), &sh->retire_timer);
	chanpool_free(sh->chans);
	sh->chans = NULL;
	badrelays_free(sh->bad);
	sh->bad = NULL;
	relay_pad_rng_clear(&sh->rng);
	/* Nothing to hand sessions to any more (relaxed, as publish_supply). */
	atomic_store_explicit((_Atomic uint64_t *)&sh->stats.circs_ready, 0, memory_order_relaxed);
	atomic_store_explicit((_Atomic uint64_t *)&sh->stats.circs_reserved, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->waiting, 0, memory_order_relaxed);
	/* The shard itself stays until circmgr_free: metrics scrapes on other
	 * workers may still read its counters while this runtime stops. */
}

void circmgr_free(struct worker *w)
{
	struct shard *sh = shard_of(w);

	if (!sh)
		return;
	circmgr_stop(w);
	worker_set_user(w, NULL);
	free(sh);
}

/* Copy len bytes of uint64_t counters that the owner shard publishes with
 * relaxed stores (STAT_ADD for the stats, summary_tick for the summary)
 * from src into dst, one relaxed load each: every counter is whole, the
 * set is not a snapshot. Any thread. */
static void counters_read(void *dst, const void *src, size_t len)
{
	const _Atomic uint64_t *from = src;
	uint64_t *to = dst;

	for (size_t i = 0; i < len / sizeof(uint64_t); i++)
		to[i] = atomic_load_explicit(&from[i], memory_order_relaxed);
}

void circmgr_stats_read(struct worker *w, struct circmgr_stats *out)
{
	struct shard *sh = shard_of(w);

	_Static_assert(sizeof(*out) % sizeof(uint64_t) == 0, "stats are all uint64_t");
	memset(out, 0, sizeof(*out));
	if (sh)
		counters_read(out, &sh->stats, sizeof(*out));
}

unsigned circmgr_ready_clean(struct worker *w, enum circmgr_ready_kind kind)
{
	struct shard *sh = shard_of(w);
	const _Atomic uint64_t *src;

	if (!sh)
		return 0;
	src = (const _Atomic uint64_t *)(kind == CIRCMGR_READY_RESERVED ? &sh->stats.circs_reserved
									   : &sh->stats.circs_ready);
	/* Relaxed: pairs with publish_supply's relaxed store (a count only). */
	return (unsigned)atomic_load_explicit(src, memory_order_relaxed);
}

void circmgr_summary_read(struct worker *w, struct circmgr_summary *out)
{
	struct shard *sh = shard_of(w);

	memset(out, 0, sizeof(*out));
	if (sh)
		counters_read(out, &sh->summary, sizeof(*out));
}

void circmgr_dump(struct worker *w)
{
	struct shard *sh = shard_of(w);

	if (!sh)
		return;
	for (struct ocirc *oc = sh->circs; oc; oc = oc->next)
		log_notice("circuit %08x: %s, %u hops, state %d, %s", oc->circ_id,
			   oc->purpose == OC_DIR ? "dir" : oc->purpose == OC_EXIT ? "exit"
			   : oc->ctl_purpose ? oc->ctl_purpose : "onion service", oc->nhops, oc->state,
			   oc->purpose == OC_EXIT && circ_is_retired(sh, oc) ? "no new streams"
			   : oc->unusable ? "no new streams"
			   : circ_is_clean(sh, oc) ? (oc->has_iso ? "clean, reserved for a key" : "clean")
			   : "usable");
}

/* --- the control port (control-spec 3.9, 3.16, 3.17) ------------------------------- */

static struct ocirc *circ_by_gid(struct shard *sh, uint64_t id)
{
	for (struct ocirc *oc = sh->circs; oc; oc = oc->next)
		if (oc->gid == id && oc->state != OC_CLOSED)
			return oc;
	return NULL;
}

static struct stream *stream_in_list(struct stream *head, uint64_t id)
{
	for (struct stream *st = head; st; st = st->next)
		if (st->gid == id && !st->is_dir)
			return st;
	return NULL;
}

static struct stream *stream_by_gid(struct shard *sh, uint64_t id)
{
	struct stream *st = stream_in_list(sh->pending, id);

	if (!st)
		st = stream_in_list(sh->backoff, id);
	for (struct ocirc *oc = sh->circs; oc && !st; oc = oc->next)
		if (oc->state != OC_CLOSED && !(st = stream_in_list(oc->streams, id)))
			st = stream_in_list(oc->waiting, id);
	return st;
}

int circmgr_close_stream(struct worker *w, uint64_t id, uint8_t reason)
{
	struct shard *sh = shard_of(w);
	struct stream *st = sh && !sh->stopped && id ? stream_by_gid(sh, id) : NULL;
	struct ocirc *oc;
	bool was_open;

	if (!st)
		return -ENOENT;
	oc = st->oc;
	was_open = st->state == ST_OPEN;
	if (st->queued) {
		stream_unlink(&sh->pending, st);
		st->queued = false;
	} else if (st->state == ST_BACKOFF) {
		stream_unlink(&sh->backoff, st);
	} else if (oc && st->state == ST_WAITING) {
		stream_unlink(&oc->waiting, st);
		st->oc = NULL;
	} else if (oc) {
		struct cell cell;

		/* tor-spec 6.3: RELAY_END carries the controller's reason. */
		if (oc->state == OC_OPEN && circ_stream_end(&oc->c, st->sid, reason, &cell) == 0)
			send_one(oc, &cell);
		stream_detach(oc, st);
	}
	log_info("stream %llu closed by a controller (%s)", (unsigned long long)id, relay_end_reason_name(reason));
	if (was_open)
		STAT_ADD(sh, streams_open, (uint64_t)-1);
	else
		STAT_ADD(sh, streams_failed, 1);
	publish_stream(st, was_open ? EVENTS_STREAM_CLOSED : EVENTS_STREAM_FAILED, relay_end_reason_name(reason));
	/* A stream still waiting for CONNECTED gets tor's SOCKS reply for the
	 * reason; an open one ends like any other (buffered bytes go first). */
	st->ev->on_end(st->sess, was_open ? SOCKS5_SUCCEEDED : stream_retry_end_reply(reason), "closed by a controller");
	stream_free(st);
	return 0;
}

int circmgr_close_circuit(struct worker *w, uint64_t id, bool if_unused)
{
	struct shard *sh = shard_of(w);
	struct ocirc *oc = sh && !sh->stopped && id ? circ_by_gid(sh, id) : NULL;

	if (!oc)
		return -ENOENT;
	/* control-spec 3.17: IfUnused leaves a circuit with streams alone
	 * and still answers 250 (tor does the same). */
	if (if_unused && (oc->streams || oc->waiting))
		return 0;
	log_info("circuit %llu closed by a controller", (unsigned long long)id);
	/* As any circuit death: DESTROY (REASON=REQUESTED), streams retried
	 * or failed by ocirc_close. */
	ocirc_close(oc, true, "closed by a controller");
	return 0;
}

static void status_circ(const struct ocirc *oc, circmgr_status_fn fn, void *ctx)
{
	enum events_circ_status status = EVENTS_CIRC_BUILT;
	struct events_circ_info info;
	char path[512], line[1024];
	size_t n;

	if (oc->state != OC_OPEN)
		status = oc->c.n_hops ? EVENTS_CIRC_EXTENDED : EVENTS_CIRC_LAUNCHED;
	circ_info(oc, oc->state == OC_OPEN ? oc->nhops : oc->c.n_hops, &info, path, sizeof(path));
	n = events_format_circ_info(line, sizeof(line), oc->gid, status, &info);
	/* control-spec 3.9: the CIRC event's text without "650 CIRC " and CRLF. */
	if (n > 9 + 2)
		fn(ctx, oc->gid, line + 9, n - 9 - 2);
}

static void status_stream(const struct stream *st, circmgr_status_fn fn, void *ctx)
{
	char target[STREAM_TARGET_MAX], line[STREAM_TARGET_MAX + 96];
	enum events_stream_status status = EVENTS_STREAM_NEW;
	int n;

	if (st->is_dir)
		return;
	if (st->state == ST_OPEN)
		status = EVENTS_STREAM_SUCCEEDED;
	else if (st->state == ST_CONNECTING)
		status = st->t.kind == STREAM_CONNECT ? EVENTS_STREAM_SENTCONNECT : EVENTS_STREAM_SENTRESOLVE;
	else if (st->state == ST_BACKOFF)
		status = EVENTS_STREAM_DETACHED; /* as its last STREAM event said */
	stream_target_text(st, target, sizeof(target));
	/* control-spec 3.9: StreamID SP StreamStatus SP CircuitID SP Target;
	 * a stream not attached yet names circuit 0. */
	n = snprintf(line, sizeof(line), "%llu %s %llu %s", (unsigned long long)st->gid,
		     events_stream_status_name(status),
		     (unsigned long long)(st->state != ST_WAITING && st->state != ST_BACKOFF && st->oc ? st->oc->gid : 0),
		     target);
	if (n > 0 && (size_t)n < sizeof(line))
		fn(ctx, st->gid, line, (size_t)n);
}

void circmgr_status(struct worker *w, bool circs, circmgr_status_fn fn, void *ctx)
{
	struct shard *sh = shard_of(w);

	if (!sh || sh->stopped)
		return;
	if (!circs) {
		for (const struct stream *st = sh->pending; st; st = st->next)
			status_stream(st, fn, ctx);
		for (const struct stream *st = sh->backoff; st; st = st->next)
			status_stream(st, fn, ctx);
	}
	for (const struct ocirc *oc = sh->circs; oc; oc = oc->next) {
		if (oc->state == OC_CLOSED)
			continue;
		if (circs) {
			status_circ(oc, fn, ctx);
			continue;
		}
		for (const struct stream *st = oc->streams; st; st = st->next)
			status_stream(st, fn, ctx);
		for (const struct stream *st = oc->waiting; st; st = st->next)
			status_stream(st, fn, ctx);
	}
}

const struct chanpool *circmgr_chanpool(struct worker *w)
{
	struct shard *sh = shard_of(w);

	return sh ? sh->chans : NULL;
}

/* --- rebalancing ------------------------------------------------------------------ */

void circmgr_refill_now(struct worker *w, void *arg)
{
	struct shard *sh = shard_of(w);

	(void)arg;
	if (sh && !sh->stopped)
		timer_arm(worker_timers(w), &sh->prebuild_timer, worker_now_ns(w));
}

void circmgr_offer_waiting(struct worker *w, void *arg)
{
	struct shard *sh = shard_of(w);

	(void)arg;
	if (!sh || sh->stopped)
		return;
	for (struct ocirc *oc = sh->circs, *onext; oc; oc = onext) {
		onext = oc->next;
		if (oc->purpose != OC_EXIT || oc->state == OC_OPEN || oc->state == OC_CLOSED)
			continue;
		for (struct stream *st = oc->waiting, *snext; st; st = snext) {
			snext = st->next;
			if (st->retry.failures || !st->ev->on_would_wait)
				continue; /* a retry: not a new stream */
			if (!keyed_elsewhere(sh, &st->t.iso) && !ready_elsewhere(sh))
				continue;
			stream_unlink(&oc->waiting, st);
			st->oc = NULL;
			if (!st->ev->on_would_wait(st->sess, &st->t.iso, st->early, st->early_len)) {
				st->oc = oc;
				stream_link(&oc->waiting, st); /* at the head: not met again */
				continue;
			}
			publish_stream(st, EVENTS_STREAM_DETACHED, "MISC");
			stream_free(st);
		}
		/* Launched for a stream that left before it used it: it carried
		 * nothing, so it is a clean circuit like a prebuilt one. */
		if (!oc->waiting && !oc->streams && oc->has_iso && !oc->dirty_ns)
			oc->has_iso = false;
	}
	publish_supply(sh);
}

/* --- rebalancing (any thread) --------------------------------------------------- */

/* Another thread may ask before the shard's manager exists (NULL) or after
 * it stopped: no supply then. The shard itself stays until circmgr_free,
 * after every thread joined (the same reasoning as circmgr_stats_read). */
uint64_t circmgr_waiting(struct worker *w)
{
	struct shard *sh = shard_of(w);

	/* Relaxed: pairs with publish_supply's store. */
	return sh ? atomic_load_explicit(&sh->waiting, memory_order_relaxed) : 0;
}

uint64_t circmgr_available(struct worker *w)
{
	struct shard *sh = shard_of(w);
	uint64_t ready, claimed;

	/* Not sh->stopped: the owner writes it plainly. A stopped shard's
	 * hand-offs fail (-ESRCH) and give their claim back. */
	if (!sh)
		return 0;
	/* Relaxed: pairs with the claim CAS. */
	ready = circmgr_ready_clean(w, CIRCMGR_READY_ANY);
	claimed = atomic_load_explicit(&sh->claimed, memory_order_relaxed);
	return ready > claimed ? ready - claimed : 0;
}

bool circmgr_claim_ready(struct worker *w)
{
	struct shard *sh = shard_of(w);
	uint64_t claimed;

	if (!sh)
		return false;
	claimed = atomic_load_explicit(&sh->claimed, memory_order_relaxed);
	do {
		/* Relaxed: a count that only steers where sessions go; the
		 * session itself travels with conn_handoff's own ordering. */
		if (circmgr_ready_clean(w, CIRCMGR_READY_ANY) <= claimed)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&sh->claimed, &claimed, claimed + 1, memory_order_relaxed,
							memory_order_relaxed));
	return true;
}

int circmgr_claim_reserved(struct worker *w, const struct isolation_key *iso)
{
	struct shard *sh = shard_of(w);

	return sh ? keyslots_claim(&sh->keys, keyslots_hash(iso)) : -1;
}

void circmgr_release_reserved(struct worker *w, int slot)
{
	struct shard *sh = shard_of(w);

	if (sh)
		keyslots_release(&sh->keys, slot);
}

void circmgr_release_claim(struct worker *w)
{
	struct shard *sh = shard_of(w);

	/* Relaxed: pairs with circmgr_claim_ready's CAS. */
	if (sh)
		atomic_fetch_sub_explicit(&sh->claimed, 1, memory_order_relaxed);
}

void circmgr_set_prebuild_boost(struct worker *w, int64_t delta)
{
	struct shard *sh = shard_of(w);

	/* Relaxed: pairs with prebuild_tick's load. */
	if (sh)
		atomic_store_explicit(&sh->prebuild_boost, delta, memory_order_relaxed);
}

int64_t circmgr_prebuild_boost(struct worker *w)
{
	struct shard *sh = shard_of(w);

	/* Relaxed: pairs with circmgr_set_prebuild_boost's store. */
	return sh ? atomic_load_explicit(&sh->prebuild_boost, memory_order_relaxed) : 0;
}
