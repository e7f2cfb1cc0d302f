/* The onion-service client of one shard (see hs_client.h). */
#include "app/hs_client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/circmgr_int.h"
#include "app/dirfetch.h"
#include "app/onion_auth.h"
#include "app/nodes.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "net/worker.h"
#include "proto/consensus.h"
#include "proto/hs_desc.h"
#include "proto/hs_keys.h"
#include "proto/hs_ntor.h"
#include "proto/onion_addr.h"
#include "proto/relay.h"

/* A connection attempt gives up after this long (tor's SocksTimeout is
 * 120 s; a descriptor that no HSDir has fails much sooner: 0xF0). */
#define HS_CONN_TIMEOUT_NS (90ull * 1000000000ull)
#define HS_FETCH_TIMEOUT_NS (30ull * 1000000000ull)
/* A cached descriptor is used for its time period, at most this long. */
#define HS_DESC_CACHE_NS (15ull * 60 * 1000000000ull)
#define HS_DESC_CACHE_MAX 512 /* descriptors per shard; the oldest go first */
#define HS_MAX_HSDIRS 32
#define HS_REND_TRIES 3   /* rendezvous circuits per attempt */
/* After INTRODUCE_ACK, how long RENDEZVOUS2 may take before we start over
 * with a new rendezvous and the next introduction point (tor gives up on
 * such a circuit after a while too; a service that cannot reach our
 * rendezvous point would otherwise hold the stream for the whole bound). */
#define HS_REND_WAIT_NS (20ull * 1000000000ull)
#define HS_FETCH_MAX (2 * HS_DESC_MAX_LEN)

struct hs_desc_entry {
	struct hs_desc_entry *next;
	uint8_t id[32];
	uint64_t period;
	uint64_t expires_ns;
	struct hs_desc_inner *desc; /* owned */
};

enum hs_conn_state { HC_FETCH, HC_CONNECT, HC_READY };

struct hs_fetch; /* a descriptor fetch in flight: outlives its conn if need be */

struct hs_conn {
	struct hs_conn *next, *prev;
	struct hs_client *hc;
	uint64_t gid;
	uint8_t id[32];
	struct isolation_key iso;
	enum hs_conn_state state;
	struct stream *waiting;
	struct timer timeout;
	struct timer rend_wait;    /* armed from INTRODUCE_ACK to RENDEZVOUS2 */
	unsigned busy;             /* inside a call that may fail cn: defer the free */
	bool dead;                 /* failed or freed; memory kept while busy */
	/* The period's keys (2.1, 2.2). */
	uint64_t period;
	uint8_t blinded[32], subcred[32];
	/* Descriptor fetch. */
	struct hs_fetch *fetch;
	struct relay_target hsdirs[HS_MAX_HSDIRS];
	unsigned n_hsdirs, next_hsdir, n_404;
	enum hs_desc_err desc_err; /* the last descriptor that did not decode */
	/* Introduction and rendezvous (3, 4). */
	struct hs_desc_inner *desc; /* owned copy */
	struct ocirc *rend, *intro;
	bool linked;   /* on hc->conns (new streams may find it) */
	bool rend_established, intro_sent, intro_acked;
	bool ever_acked;           /* some introduction point acknowledged us */
	unsigned rend_tries, intro_idx, intro_tried;
	uint8_t cookie[HS_REND_COOKIE_LEN];
	bool cc_requested; /* INTRODUCE1 carried CC_REQUEST */
	struct hs_ntor_client ntor;
	char name[24]; /* the address's first characters, for logs */
	bool has_auth_key;
	uint8_t auth_sk[32]; /* our x25519 client-auth secret for it (ClientOnionAuthDir) */
};

struct hs_fetch {
	struct hs_conn *conn; /* NULL once the conn is gone */
};

struct hs_client {
	struct shard *sh;
	struct hs_conn *conns;
	struct hs_desc_entry *cache;
};

static struct hs_client_io io = { dirfetch_start_anon, clock_wall };

void hs_client_set_io(const struct hs_client_io *set)
{
	io.fetch = set && set->fetch ? set->fetch : dirfetch_start_anon;
	io.wall = set && set->wall ? set->wall : clock_wall;
}

static struct worker *hc_worker(const struct hs_client *hc) { return hc->sh->w; }
static uint64_t hc_now(const struct hs_client *hc) { return worker_now_ns(hc_worker(hc)); }

/* --- the descriptor cache -------------------------------------------------- */

static struct hs_desc_entry *cache_find(struct hs_client *hc, const uint8_t id[32], uint64_t period)
{
	struct hs_desc_entry **pp = &hc->cache, *e;
	uint64_t now = hc_now(hc);

	while ((e = *pp)) {
		if (e->expires_ns <= now) {
			*pp = e->next;
			hs_desc_inner_free(e->desc);
			free(e);
			continue;
		}
		if (e->period == period && memcmp(e->id, id, 32) == 0)
			return e;
		pp = &e->next;
	}
	return NULL;
}

static void cache_drop(struct hs_client *hc, const uint8_t id[32])
{
	struct hs_desc_entry **pp = &hc->cache, *e;

	while ((e = *pp)) {
		if (memcmp(e->id, id, 32) == 0) {
			*pp = e->next;
			hs_desc_inner_free(e->desc);
			free(e);
			continue;
		}
		pp = &e->next;
	}
}

/* Store a copy of d for (id, period). */
static void cache_put(struct hs_client *hc, const uint8_t id[32], uint64_t period, const struct hs_desc_inner *d)
{
	struct hs_desc_entry *e;

	cache_drop(hc, id);
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->desc = malloc(sizeof(*d));
	if (!e->desc) {
		free(e);
		return;
	}
	memcpy(e->desc, d, sizeof(*d));
	memcpy(e->id, id, 32);
	e->period = period;
	e->expires_ns = hc_now(hc) + HS_DESC_CACHE_NS;
	e->next = hc->cache;
	hc->cache = e;
	/* Newest first: cut the list after HS_DESC_CACHE_MAX entries. */
	for (unsigned n = 1; e->next; e = e->next, n++) {
		if (n < HS_DESC_CACHE_MAX)
			continue;
		while (e->next) {
			struct hs_desc_entry *old = e->next;

			e->next = old->next;
			hs_desc_inner_free(old->desc);
			free(old);
		}
		break;
	}
}

/* --- connections ------------------------------------------------------------ */

static void conn_unlink(struct hs_conn *cn)
{
	struct hs_client *hc = cn->hc;

	if (!cn->linked)
		return;
	cn->linked = false;
	if (cn->prev)
		cn->prev->next = cn->next;
	else
		hc->conns = cn->next;
	if (cn->next)
		cn->next->prev = cn->prev;
	cn->next = cn->prev = NULL;
}

/* Finish cn: nothing refers to it afterwards. Its memory goes now, or
 * when the outermost conn_hold ends (conn_put). */
static void conn_free(struct hs_conn *cn)
{
	struct hs_client *hc = cn->hc;

	if (cn->dead)
		return;
	cn->dead = true;
	timer_cancel(worker_timers(hc_worker(hc)), &cn->timeout);
	timer_cancel(worker_timers(hc_worker(hc)), &cn->rend_wait);
	if (cn->fetch)
		cn->fetch->conn = NULL; /* its callback frees it */
	conn_unlink(cn);
	hs_ntor_client_clear(&cn->ntor);
	crypto_wipe(cn->cookie, sizeof(cn->cookie));
	crypto_wipe(cn->auth_sk, sizeof(cn->auth_sk));
	hs_desc_inner_free(cn->desc);
	cn->desc = NULL;
	if (!cn->busy)
		free(cn);
}

/* Around calls into the circuit manager that may close one of cn's
 * circuits synchronously (a channel that fails at once): the hooks may
 * then fail cn. conn_put returns false when cn is gone (do not touch it). */
static void conn_hold(struct hs_conn *cn) { cn->busy++; }

static bool conn_put(struct hs_conn *cn)
{
	cn->busy--;
	if (!cn->dead)
		return true;
	if (!cn->busy)
		free(cn);
	return false;
}

/* Let go of oc (it no longer works for cn) and close it. */
static void conn_drop_circ(struct hs_conn *cn, struct ocirc **slot, const char *why)
{
	struct ocirc *oc = *slot;

	(void)cn;
	*slot = NULL;
	if (!oc)
		return;
	oc->hs = NULL;
	circmgr_ocirc_close(oc, true, why);
}

/* Give up: every waiting stream gets code (an 0xF_ reply), the circuits
 * close, cn is freed. */
static void conn_fail(struct hs_conn *cn, enum socks5_reply code, const char *why)
{
	struct stream *st;

	if (cn->dead)
		return;
	log_notice("onion service %s...: connection failed (SOCKS 0x%02x): %s", log_scrub(cn->name), (unsigned)code, why);
	/* First out of the list: closing the circuits below may retry
	 * streams, which must not find this connection. */
	conn_unlink(cn);
	conn_drop_circ(cn, &cn->intro, why);
	conn_drop_circ(cn, &cn->rend, why);
	while ((st = cn->waiting)) {
		cn->waiting = st->next;
		st->next = st->prev = NULL;
		st->hs_wait = NULL;
		circmgr_stream_end(st, code, why);
	}
	conn_free(cn);
}

static void conn_timed_out(struct timer *t, void *arg)
{
	struct hs_conn *cn = arg;

	(void)t;
	if (cn->state == HC_FETCH)
		conn_fail(cn, SOCKS5_HS_DESC_NOT_FOUND, "timed out fetching the descriptor");
	else if (cn->intro_sent && !cn->intro_acked)
		conn_fail(cn, SOCKS5_HS_INTRO_TIMED_OUT, "timed out waiting for the introduction");
	else if (cn->intro_acked)
		conn_fail(cn, SOCKS5_HS_REND_FAILED, "timed out waiting for the rendezvous");
	else
		conn_fail(cn, SOCKS5_HS_INTRO_TIMED_OUT, "timed out building the circuits");
}

static bool conn_launch_rend(struct hs_conn *cn);
static bool conn_launch_intro(struct hs_conn *cn);

/* The service was introduced but never came to our rendezvous point: a
 * new rendezvous circuit (new cookie) and the next introduction point,
 * while HS_REND_TRIES lasts. */
static void conn_rend_wait_over(struct timer *t, void *arg)
{
	struct hs_conn *cn = arg;

	(void)t;
	log_info("onion service %s...: no RENDEZVOUS2 within %llu s; another rendezvous", log_scrub(cn->name),
		 HS_REND_WAIT_NS / 1000000000ull);
	conn_drop_circ(cn, &cn->intro, "rendezvous abandoned");
	conn_drop_circ(cn, &cn->rend, "no RENDEZVOUS2");
	cn->intro_sent = cn->intro_acked = false;
	if (cn->intro_tried >= cn->desc->n_intro)
		cn->intro_tried = 0; /* every point was tried: go round again */
	if (conn_launch_rend(cn))
		(void)conn_launch_intro(cn);
}

static void conn_wait(struct hs_conn *cn, struct stream *st)
{
	st->oc = NULL;
	st->state = ST_WAITING;
	st->hs_wait = cn;
	st->prev = NULL;
	st->next = cn->waiting;
	if (cn->waiting)
		cn->waiting->prev = st;
	cn->waiting = st;
}

void hs_client_stream_gone(struct stream *st)
{
	struct hs_conn *cn = st->hs_wait;

	if (!cn)
		return;
	if (st->prev)
		st->prev->next = st->next;
	else
		cn->waiting = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->next = st->prev = NULL;
	st->hs_wait = NULL;
}

/* --- time periods and the HSDir ring (rend-spec-v3 2.2) ---------------------- */

/* tor makes a period 24 voting intervals long and offsets it by 12 (the
 * shared-random protocol run and phase): 1440/720 minutes on the live
 * network's hourly votes; a consensus "hsdir-interval" overrides the
 * length (2.2.1). */
void hs_client_period_cfg(const struct consensus *c, struct hs_period_cfg *pc)
{
	uint64_t iv = c->fresh_until > c->valid_after ? (uint64_t)(c->fresh_until - c->valid_after) : 3600;
	int32_t len = consensus_param(c, "hsdir-interval", -1, HS_PERIOD_LEN_MIN, HS_PERIOD_LEN_MAX);

	pc->length = len > 0 ? (uint64_t)len : 24 * iv / 60;
	pc->offset = 12 * iv / 60;
	if (!pc->length)
		pc->length = 1;
}

/* Fill cn's period keys and its HSDirs to ask, in random order, from the
 * directory dv. Returns how many HSDirs (0: none is known). */
static unsigned conn_pick_hsdirs(struct hs_conn *cn, const struct dirview *dv)
{
	const struct nodelist *nl = dv->nl;
	const struct consensus *c = nl->c;
	struct hs_period_cfg pc;
	struct hs_ring_entry *ring;
	uint32_t pick[HS_MAX_HSDIRS];
	uint8_t srv[32];
	size_t n = 0, np;
	unsigned replicas, spread;

	hs_client_period_cfg(c, &pc);
	cn->period = hs_period_num(&pc, c->valid_after);
	if (!hs_blinded_key(cn->blinded, cn->id, cn->period, pc.length))
		return 0;
	hs_subcredential(cn->subcred, cn->id, cn->blinded);
	/* 2.2.4.1 / 2.3.1: the SRV the client uses, or the disaster value. */
	if (hs_period_uses_current_srv(&pc, c->valid_after) ? c->has_srv_current : c->has_srv_previous)
		memcpy(srv, hs_period_uses_current_srv(&pc, c->valid_after) ? c->srv_current : c->srv_previous, 32);
	else
		hs_disaster_srv(srv, cn->period, pc.length);
	ring = calloc(nl->n ? nl->n : 1, sizeof(*ring));
	if (!ring)
		return 0;
	for (size_t i = 0; i < nl->n; i++) {
		const struct node *nd = &nl->nodes[i];

		if (!node_has_flags(nd, RFLAG_HSDIR | RFLAG_RUNNING | RFLAG_VALID) || !nd->md || !nd->md->has_ed25519)
			continue;
		hs_relay_index(ring[n].index, nd->md->ed25519_id, srv, cn->period, pc.length);
		ring[n].handle = (uint32_t)i;
		n++;
	}
	hs_ring_sort(ring, n);
	replicas = (unsigned)consensus_param(c, "hsdir_n_replicas", HS_N_REPLICAS_DEFAULT, 1, HS_N_REPLICAS_MAX);
	spread = (unsigned)consensus_param(c, "hsdir_spread_fetch", HS_SPREAD_FETCH_DEFAULT, 1, HS_SPREAD_MAX);
	np = hs_ring_pick(ring, n, cn->blinded, cn->period, pc.length, replicas, spread, pick, HS_MAX_HSDIRS);
	free(ring);
	/* 2.2.3: the client picks among them at random. */
	for (size_t i = np; i > 1; i--) {
		size_t j = (size_t)crypto_rand_uint64(i);
		uint32_t t = pick[i - 1];
		pick[i - 1] = pick[j];
		pick[j] = t;
	}
	cn->n_hsdirs = 0;
	for (size_t i = 0; i < np; i++) {
		const struct consensus_router *rs = nl->nodes[pick[i]].rs;
		struct relay_target *t = &cn->hsdirs[cn->n_hsdirs++];

		memset(t, 0, sizeof(*t));
		memcpy(t->rsa_id, rs->identity, sizeof(t->rsa_id));
		snprintf(t->nickname, sizeof(t->nickname), "%s", rs->nickname);
	}
	return cn->n_hsdirs;
}

/* --- descriptor fetch -------------------------------------------------------- */

static void conn_fetch_next(struct hs_conn *cn);
static void conn_start_intro_rend(struct hs_conn *cn);

static void fetch_done(void *arg, int status, uint8_t *body, size_t len, const char *why)
{
	struct hs_fetch *f = arg;
	struct hs_conn *cn = f->conn;
	struct hs_desc_inner *d = NULL;
	enum hs_desc_err err;
	uint64_t rev = 0;
	const char *dwhy = NULL;

	free(f);
	if (!cn) {
		free(body);
		return;
	}
	cn->fetch = NULL;
	if (status != 200) {
		if (status == 404)
			cn->n_404++;
		log_info("onion service %s...: HSDir %s: %s (%d)", log_scrub(cn->name), cn->hsdirs[cn->next_hsdir - 1].nickname,
			 why ? why : "HTTP error", status);
		free(body);
		conn_fetch_next(cn);
		return;
	}
	err = hs_desc_decode((const char *)body, len, cn->blinded, cn->subcred, cn->has_auth_key ? cn->auth_sk : NULL,
			     io.wall(), &d, &rev, &dwhy);
	free(body);
	if (err != HS_DESC_OK) {
		log_info("onion service %s...: descriptor from %s unusable: %s (%s)", log_scrub(cn->name),
			 cn->hsdirs[cn->next_hsdir - 1].nickname, hs_desc_strerror(err), dwhy ? dwhy : "");
		if (err == HS_DESC_NEED_CLIENT_AUTH || err == HS_DESC_BAD_CLIENT_AUTH) {
			/* Another HSDir has the same descriptor: no point asking. */
			conn_fail(cn, (enum socks5_reply)hs_desc_socks_reply(err), hs_desc_strerror(err));
			return;
		}
		cn->desc_err = err;
		conn_fetch_next(cn);
		return;
	}
	log_info("onion service %s...: descriptor revision %llu, %zu introduction points", log_scrub(cn->name),
		 (unsigned long long)rev, d->n_intro);
	cache_put(cn->hc, cn->id, cn->period, d);
	cn->desc = d;
	conn_start_intro_rend(cn);
}

static void conn_fetch_next(struct hs_conn *cn)
{
	char path[96], b64[64];
	struct hs_fetch *f;

	/* dir-spec / rend-spec-v3 2.2.6: GET /tor/hs/3/<base64 blinded key>. */
	if (base64_encode(b64, sizeof(b64), cn->blinded, 32, false) < 0) {
		conn_fail(cn, SOCKS5_GENERAL_FAILURE, "cannot encode the blinded key");
		return;
	}
	snprintf(path, sizeof(path), "/tor/hs/3/%s", b64);
	while (cn->next_hsdir < cn->n_hsdirs) {
		const struct relay_target *t = &cn->hsdirs[cn->next_hsdir++];

		f = calloc(1, sizeof(*f));
		if (!f)
			break;
		f->conn = cn;
		if (io.fetch(hc_worker(cn->hc), t, path, HS_FETCH_MAX, HS_FETCH_TIMEOUT_NS, fetch_done, f) == 0) {
			cn->fetch = f;
			return;
		}
		free(f);
	}
	if (cn->desc_err != HS_DESC_OK)
		conn_fail(cn, (enum socks5_reply)hs_desc_socks_reply(cn->desc_err), hs_desc_strerror(cn->desc_err));
	else
		conn_fail(cn, SOCKS5_HS_DESC_NOT_FOUND,
			  cn->n_404 ? "no HSDir has the descriptor" : "could not fetch the descriptor from any HSDir");
}

/* --- introduction and rendezvous (rend-spec-v3 3, 4) ----------------------------- */

/* conn_launch_rend / conn_launch_intro return false when they failed cn
 * (it is freed). */

/* The hop target of intro point ip from its link specifiers (2.5.2.2:
 * IPv4, legacy id, ed25519 id; IPv6 kept when present). False when it
 * lacks IPv4 or the legacy id. */
bool hs_client_intro_target(const struct hs_desc_intro *ip, struct hop_target *t)
{
	const uint8_t *p = ip->link_specs, *end = p + ip->link_specs_len;
	bool v4 = false, legacy = false;
	unsigned n;

	memset(t, 0, sizeof(*t));
	if (p >= end)
		return false;
	n = *p++;
	for (unsigned i = 0; i < n; i++) {
		uint8_t type, len;

		if (end - p < 2)
			return false;
		type = p[0];
		len = p[1];
		p += 2;
		if ((size_t)(end - p) < len)
			return false;
		if (type == RELAY_LS_IPV4 && len == 6) {
			memcpy(t->ipv4, p, 4);
			t->port = (uint16_t)(p[4] << 8 | p[5]);
			v4 = true;
		} else if (type == RELAY_LS_IPV6 && len == 18) {
			memcpy(t->ipv6, p, 16);
			t->ipv6_port = (uint16_t)(p[16] << 8 | p[17]);
			t->has_ipv6 = true;
		} else if (type == RELAY_LS_LEGACY_ID && len == 20) {
			memcpy(t->rsa_id, p, 20);
			legacy = true;
		} else if (type == RELAY_LS_ED25519_ID && len == 32) {
			memcpy(t->ed_id, p, 32);
			t->has_ed_id = true;
		}
		p += len;
	}
	memcpy(t->ntor_key, ip->onion_key, 32);
	return v4 && legacy;
}

/* NSPEC | specs for the rendezvous point t, as INTRODUCE1's encrypted part
 * carries them (3.3: the link specifiers of EXTEND2). */
size_t hs_client_rend_link_specs(const struct hop_target *t, uint8_t out[HS_CLIENT_LSPEC_MAX])
{
	size_t k = 1;

	out[0] = 0;
	out[k++] = RELAY_LS_IPV4;
	out[k++] = 6;
	memcpy(out + k, t->ipv4, 4);
	out[k + 4] = (uint8_t)(t->port >> 8);
	out[k + 5] = (uint8_t)t->port;
	k += 6;
	out[0]++;
	out[k++] = RELAY_LS_LEGACY_ID;
	out[k++] = 20;
	memcpy(out + k, t->rsa_id, 20);
	k += 20;
	out[0]++;
	if (t->has_ed_id) {
		out[k++] = RELAY_LS_ED25519_ID;
		out[k++] = 32;
		memcpy(out + k, t->ed_id, 32);
		k += 32;
		out[0]++;
	}
	return k;
}

/* Both circuits are ready: INTRODUCE1 on the intro circuit (3.2). */
static void conn_send_intro(struct hs_conn *cn)
{
	const struct hs_desc_intro *ip = &cn->desc->intro[cn->intro_idx];
	const struct hop_target *rp = &cn->rend->hops[cn->rend->nhops - 1];
	uint8_t specs[HS_CLIENT_LSPEC_MAX], body[RELAY_DATA_MAX];
	struct hs_intro1_params p;
	struct cell cell;
	int n;

	memset(&p, 0, sizeof(p));
	p.auth_key = ip->auth_key;
	p.enc_key = ip->enc_key;
	p.subcred = cn->subcred;
	p.rend_cookie = cn->cookie;
	p.rend_onion_key = rp->ntor_key;
	p.rend_link_specs = specs;
	p.rend_link_specs_len = hs_client_rend_link_specs(rp, specs);
	/* Congestion control only when the descriptor's flow-control line
	 * offers it (rend-spec-v3 2.5.2.2 "flow-control", proposal 324 §10.3)
	 * and the consensus runs it; else fixed SENDME windows. */
	p.request_cc = cn->desc->flow_control && cn->desc->sendme_inc > 0 && cn->rend->dv.cc_enabled;
	cn->cc_requested = p.request_cc;
	hs_ntor_client_clear(&cn->ntor);
	hs_ntor_client_init(&cn->ntor, &p, NULL);
	n = hs_intro1_encode(body, sizeof(body), &cn->ntor, &p);
	if (n < 0 || circ_send_hs(&cn->intro->c, RELAY_INTRODUCE1, body, (size_t)n, &cell) < 0) {
		conn_fail(cn, SOCKS5_HS_INTRO_FAILED, "cannot encode INTRODUCE1");
		return;
	}
	cn->intro_sent = true;
	log_info("onion service %s...: INTRODUCE1 sent via introduction point %u", log_scrub(cn->name), cn->intro_idx);
	circmgr_send_one(cn->intro, &cell);
}

static void conn_maybe_intro(struct hs_conn *cn)
{
	if (cn->rend_established && cn->intro && cn->intro->state == OC_OPEN && !cn->intro_sent)
		conn_send_intro(cn);
}

static bool conn_launch_rend(struct hs_conn *cn)
{
	const char *why = "no circuit";
	struct ocirc *oc;

	if (cn->rend_tries++ >= HS_REND_TRIES) {
		conn_fail(cn, SOCKS5_HS_REND_FAILED, cn->ever_acked ? "introduced, but the service never came to the rendezvous"
								   : "no rendezvous circuit could be built");
		return false;
	}
	cn->rend_established = false;
	oc = circmgr_launch_internal(cn->hc->sh, NULL, NULL, &why);
	if (!oc) {
		conn_fail(cn, SOCKS5_HS_REND_FAILED, why);
		return false;
	}
	oc->hs = cn;
	oc->ctl_purpose = "HS_CLIENT_REND";
	cn->rend = oc;
	/* A channel failure closes oc at once: hs_client_circ_closed then
	 * relaunches or fails cn. */
	conn_hold(cn);
	circmgr_ocirc_connect(oc);
	return conn_put(cn);
}

/* The next introduction point we have not tried (3.2.2: "try another"). */
static bool conn_launch_intro(struct hs_conn *cn)
{
	const char *why = "no circuit";

	while (cn->intro_tried < cn->desc->n_intro) {
		struct hop_target t;
		struct ocirc *oc;

		cn->intro_idx = (cn->intro_idx + (cn->intro_tried ? 1 : 0)) % (unsigned)cn->desc->n_intro;
		cn->intro_tried++;
		if (!hs_client_intro_target(&cn->desc->intro[cn->intro_idx], &t))
			continue;
		oc = circmgr_launch_internal(cn->hc->sh, t.rsa_id, &t, &why);
		if (!oc)
			continue;
		cn->intro_sent = cn->intro_acked = false;
		oc->hs = cn;
		oc->ctl_purpose = "HS_CLIENT_INTRO";
		cn->intro = oc;
		conn_hold(cn);
		circmgr_ocirc_connect(oc);
		return conn_put(cn);
	}
	/* Every introduction point failed: the descriptor may be stale. */
	cache_drop(cn->hc, cn->id);
	conn_fail(cn, SOCKS5_HS_INTRO_FAILED, "every introduction point failed");
	return false;
}

static void conn_start_intro_rend(struct hs_conn *cn)
{
	if (cn->desc->n_intro == 0) {
		conn_fail(cn, SOCKS5_HS_DESC_INVALID, "the descriptor lists no usable introduction point");
		return;
	}
	cn->state = HC_CONNECT;
	cn->intro_idx = (unsigned)crypto_rand_uint64(cn->desc->n_intro);
	cn->intro_tried = 0;
	if (conn_launch_rend(cn))
		(void)conn_launch_intro(cn);
}

void hs_client_circ_opened(struct ocirc *oc)
{
	struct hs_conn *cn = oc->hs;
	uint8_t body[HS_REND_COOKIE_LEN];
	struct cell cell;
	ssize_t n;

	if (oc == cn->rend) {
		/* 4.1: ESTABLISH_RENDEZVOUS with a fresh random cookie. */
		crypto_rand(cn->cookie, sizeof(cn->cookie));
		n = relay_establish_rendezvous_encode(body, sizeof(body), cn->cookie);
		if (n < 0 || circ_send_hs(&oc->c, RELAY_ESTABLISH_RENDEZVOUS, body, (size_t)n, &cell) < 0) {
			conn_fail(cn, SOCKS5_HS_REND_FAILED, "cannot encode ESTABLISH_RENDEZVOUS");
			return;
		}
		circmgr_send_one(oc, &cell);
	} else if (oc == cn->intro) {
		conn_maybe_intro(cn);
	}
}

void hs_client_circ_closed(struct ocirc *oc, const char *why)
{
	struct hs_conn *cn = oc->hs;

	oc->hs = NULL;
	if (!cn)
		return;
	if (oc == cn->rend) {
		cn->rend = NULL;
		if (cn->state == HC_READY) {
			/* Its streams are retried by the circuit manager (a new
			 * connection); this one is done. */
			conn_free(cn);
			return;
		}
		log_info("onion service %s...: rendezvous circuit closed (%s); another", log_scrub(cn->name), why);
		/* A new cookie: the introduction must be redone too. */
		timer_cancel(worker_timers(hc_worker(cn->hc)), &cn->rend_wait);
		if (cn->intro_acked || cn->intro_sent) {
			conn_drop_circ(cn, &cn->intro, "rendezvous lost");
			cn->intro_tried = 0;
		}
		if (conn_launch_rend(cn) && !cn->intro)
			(void)conn_launch_intro(cn);
	} else if (oc == cn->intro) {
		cn->intro = NULL;
		if (cn->intro_acked)
			return; /* we close it ourselves after the ACK */
		log_info("onion service %s...: introduction circuit closed (%s); next introduction point", log_scrub(cn->name), why);
		(void)conn_launch_intro(cn);
	}
}

static void on_rend2(struct hs_conn *cn, const uint8_t *body, size_t len)
{
	uint8_t keys[HS_NTOR_EXPANDED_LEN];
	struct stream *st;
	bool ok;

	/* 4.2: HANDSHAKE_INFO = SERVER_PK | AUTH; check AUTH, derive keys. */
	ok = hs_ntor_client_rend2(&cn->ntor, body, len, keys);
	hs_ntor_client_clear(&cn->ntor);
	if (!ok) {
		conn_fail(cn, SOCKS5_HS_REND_FAILED, "RENDEZVOUS2 does not authenticate the service");
		return;
	}
	if (cn->cc_requested) {
		struct cc_params cc = cn->rend->dv.cc_onion;

		cc.sendme_inc = cn->desc->sendme_inc;
		ok = circ_hs_join(&cn->rend->c, keys, &cc) == 0;
	} else {
		ok = circ_hs_join(&cn->rend->c, keys, NULL) == 0;
	}
	crypto_wipe(keys, sizeof(keys));
	if (!ok) {
		conn_fail(cn, SOCKS5_HS_REND_FAILED, "cannot join the rendezvous circuit");
		return;
	}
	cn->state = HC_READY;
	timer_cancel(worker_timers(hc_worker(cn->hc)), &cn->timeout);
	timer_cancel(worker_timers(hc_worker(cn->hc)), &cn->rend_wait);
	conn_drop_circ(cn, &cn->intro, "introduction done");
	log_info("onion service %s...: rendezvous circuit %08x joined (%s)", log_scrub(cn->name), cn->rend->circ_id,
		 cn->cc_requested ? "congestion control" : "SENDME windows");
	cn->rend->has_iso = true;
	cn->rend->iso = cn->iso;
	while ((st = cn->waiting) && cn->rend && !cn->rend->dead && cn->rend->state == OC_OPEN) {
		cn->waiting = st->next;
		if (cn->waiting)
			cn->waiting->prev = NULL;
		st->next = st->prev = NULL;
		st->hs_wait = NULL;
		circmgr_stream_attach(cn->rend, st);
	}
}

void hs_client_on_cell(struct ocirc *oc, uint8_t command, const uint8_t *body, size_t len)
{
	struct hs_conn *cn = oc->hs;
	struct relay_introduce_ack ack;
	const char *why = NULL;

	if (oc == cn->rend && command == RELAY_RENDEZVOUS_ESTABLISHED && !cn->rend_established) {
		cn->rend_established = true;
		log_info("onion service %s...: rendezvous point ready", log_scrub(cn->name));
		conn_maybe_intro(cn);
	} else if (oc == cn->rend && command == RELAY_RENDEZVOUS2 && cn->intro_sent && cn->state == HC_CONNECT) {
		on_rend2(cn, body, len);
	} else if (oc == cn->intro && command == RELAY_INTRODUCE_ACK && cn->intro_sent && !cn->intro_acked) {
		if (relay_introduce_ack_parse(body, len, &ack, &why) != PARSE_OK)
			ack.status = RELAY_INTRO_ACK_BAD_FORMAT;
		if (ack.status == RELAY_INTRO_ACK_SUCCESS) {
			/* 3.2.2: the service was told; the intro circuit is done. */
			cn->intro_acked = true;
			cn->ever_acked = true;
			conn_drop_circ(cn, &cn->intro, "introduction acknowledged");
			timer_arm(worker_timers(hc_worker(cn->hc)), &cn->rend_wait, hc_now(cn->hc) + HS_REND_WAIT_NS);
			return;
		}
		log_info("onion service %s...: introduction point %u refused (status %u)", log_scrub(cn->name), cn->intro_idx,
			 (unsigned)ack.status);
		conn_drop_circ(cn, &cn->intro, "introduction refused");
		(void)conn_launch_intro(cn);
	} else {
		log_info("onion service %s...: unexpected relay command %u on circuit %08x", log_scrub(cn->name), command,
			 oc->circ_id);
	}
}

/* --- client authorization keys ----------------------------------------------- */

/* Look cn's service up in the published ClientOnionAuthDir snapshot
 * (app/onion_auth.h: read on the main/coordinator thread at start and at
 * every SIGHUP/SETCONF, so a key added then counts for the next
 * connection; never a file read on this worker). */
static void conn_load_auth_key(struct hs_conn *cn)
{
	struct onion_auth_keys *k = onion_auth_acquire();

	cn->has_auth_key = onion_auth_find(k, cn->id, cn->auth_sk);
	onion_auth_release(k);
}

/* --- placing streams ------------------------------------------------------------ */

static struct hs_conn *conn_find(struct hs_client *hc, const uint8_t id[32], const struct isolation_key *iso)
{
	uint64_t now = hc_now(hc);

	for (struct hs_conn *cn = hc->conns; cn; cn = cn->next) {
		if (memcmp(cn->id, id, 32) != 0 || memcmp(&cn->iso, iso, sizeof(*iso)) != 0)
			continue;
		/* MaxCircuitDirtiness holds for rendezvous circuits too (tor). */
		if (cn->state == HC_READY && cn->rend && cn->rend->dirty_ns &&
		    now - cn->rend->dirty_ns > hc->sh->cfg.max_dirtiness_ns)
			cn->rend->unusable = true;
		/* A joined circuit that takes no more streams (full, or dirty):
		 * a new connection for new streams. */
		if (cn->state == HC_READY && (!cn->rend || cn->rend->unusable || cn->rend->dead ||
					      cn->rend->state != OC_OPEN))
			continue;
		return cn;
	}
	return NULL;
}

void hs_client_place(struct shard *sh, struct stream *st)
{
	struct hs_client *hc = sh->hs;
	struct hs_conn *cn;
	struct desc_lookup {
		struct dirview dv;
		bool ok;
	} d;
	uint8_t id[32];
	struct hs_desc_entry *e;

	if (!hc || sh->stopped) {
		/* No client, or a stream retried while the shard stops. */
		circmgr_stream_end(st, SOCKS5_GENERAL_FAILURE, hc ? "shutting down" : "no onion-service client on this shard");
		return;
	}
	if (onion_addr_parse(st->t.dest.host, st->t.dest.host_len, id) != ONION_ADDR_OK) {
		circmgr_stream_end(st, SOCKS5_HS_BAD_ADDRESS, "bad onion address");
		return;
	}
	cn = conn_find(hc, id, &st->t.iso);
	if (cn && cn->state == HC_READY) {
		circmgr_stream_attach(cn->rend, st);
		return;
	}
	if (cn) {
		conn_wait(cn, st);
		return;
	}
	cn = calloc(1, sizeof(*cn));
	if (!cn) {
		circmgr_stream_end(st, SOCKS5_GENERAL_FAILURE, "out of memory");
		return;
	}
	cn->hc = hc;
	memcpy(cn->id, id, 32);
	cn->iso = st->t.iso;
	snprintf(cn->name, sizeof(cn->name), "%.*s", (int)(st->t.dest.host_len < 8 ? st->t.dest.host_len : 8),
		 st->t.dest.host);
	cn->next = hc->conns;
	if (hc->conns)
		hc->conns->prev = cn;
	hc->conns = cn;
	cn->linked = true;
	timer_init(&cn->timeout, conn_timed_out, cn);
	timer_init(&cn->rend_wait, conn_rend_wait_over, cn);
	timer_arm(worker_timers(sh->w), &cn->timeout, hc_now(hc) + HS_CONN_TIMEOUT_NS);
	conn_wait(cn, st);

	conn_load_auth_key(cn);
	memset(&d, 0, sizeof(d));
	d.ok = circmgr_dir_acquire(&d.dv);
	if (!d.ok) {
		conn_fail(cn, SOCKS5_GENERAL_FAILURE, "no usable directory yet (not bootstrapped)");
		return;
	}
	if (!conn_pick_hsdirs(cn, &d.dv)) {
		circmgr_dir_release(&d.dv);
		conn_fail(cn, SOCKS5_HS_DESC_NOT_FOUND, "no HSDir in the consensus");
		return;
	}
	circmgr_dir_release(&d.dv);
	e = cache_find(hc, cn->id, cn->period);
	if (e) {
		cn->desc = malloc(sizeof(*cn->desc));
		if (!cn->desc) {
			conn_fail(cn, SOCKS5_GENERAL_FAILURE, "out of memory");
			return;
		}
		memcpy(cn->desc, e->desc, sizeof(*cn->desc));
		conn_start_intro_rend(cn);
		return;
	}
	cn->state = HC_FETCH;
	conn_fetch_next(cn);
}

/* --- life cycle ---------------------------------------------------------------- */

struct hs_client *hs_client_new(struct shard *sh)
{
	struct hs_client *hc = calloc(1, sizeof(*hc));

	if (hc)
		hc->sh = sh;
	return hc;
}

void hs_client_free(struct hs_client *hc)
{
	if (!hc)
		return;
	while (hc->conns)
		conn_fail(hc->conns, SOCKS5_GENERAL_FAILURE, "shutting down");
	while (hc->cache) {
		struct hs_desc_entry *e = hc->cache;
		hc->cache = e->next;
		hs_desc_inner_free(e->desc);
		free(e);
	}
	free(hc);
}
