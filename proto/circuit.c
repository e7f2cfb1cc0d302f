/* Client circuit building and inbound cell handling (tor-spec.txt 5, 6.1,
 * 7.3; proposals 324, 332). See circuit.h. Outbound stream data and the
 * stream API are in stream.c. Not for the relay side of anything. */
#include "proto/circuit.h"

#include <errno.h>
#include <string.h>

#include "core/bug.h"
#include "core/compiler.h"
#include "core/crypto.h"
#include "core/log.h"
#include "proto/circuit_int.h"

void circ_params_default(struct circ_params *p)
{
	memset(p, 0, sizeof(*p));
	p->circwindow = CIRC_WINDOW_START;
	p->sendme_emit_min_version = 1;
	p->sendme_accept_min_version = 0;
	cc_params_default(&p->cc);
}

void circ_init(struct circ *c, uint32_t circ_id, const struct circ_params *params,
	       struct relay_pad_rng *rng)
{
	memset(c, 0, sizeof(*c));
	c->circ_id = circ_id;
	c->params = *params;
	if (c->params.circwindow < CIRC_WINDOW_INC || c->params.circwindow > CIRC_WINDOW_START)
		c->params.circwindow = CIRC_WINDOW_START;
	c->rng = rng;
	c->state = CIRC_ST_EMPTY;
	relay_early_init(&c->early);
	relay_crypto_circ_init(&c->crypto);
	c->next_stream_seq = 1;
}

static void hs_abandon(struct circ *c)
{
	if (c->hs_kind == CIRC_HS_NTOR)
		ntor_client_abandon(&c->hs.ntor);
	else if (c->hs_kind == CIRC_HS_NTOR3)
		ntor3_client_abandon(&c->hs.ntor3);
	crypto_wipe(&c->hs, sizeof(c->hs));
	c->hs_kind = CIRC_HS_NONE;
}

void circ_clear(struct circ *c)
{
	hs_abandon(c);
	hs_hop_clear(&c->hs_hop);
	c->hs_joined = false;
	relay_crypto_circ_clear(&c->crypto);
	crypto_wipe(c->ring, sizeof(c->ring));
	crypto_wipe(c->ctrl, sizeof(c->ctrl));
	c->state = CIRC_ST_CLOSED;
	c->n_hops = 0;
}

void circ_kdf_tor(const uint8_t *k0, size_t k0_len, uint8_t *out, size_t out_len)
{
	uint8_t buf[64 + 1], d[SHA1_LEN];

	BUG_ON(k0_len > 64);
	memcpy(buf, k0, k0_len);
	/* K = H(K0 | [00]) | H(K0 | [01]) | ... (tor-spec 5.2.1) */
	for (unsigned i = 0; out_len > 0; i++) {
		size_t m = MIN(out_len, (size_t)SHA1_LEN);

		BUG_ON(i > 255);
		buf[k0_len] = (uint8_t)i;
		crypto_sha1(buf, k0_len + 1, d);
		memcpy(out, d, m);
		out += m;
		out_len -= m;
	}
	crypto_wipe(buf, sizeof(buf));
	crypto_wipe(d, sizeof(d));
}

/* --- Building -------------------------------------------------------------- */

int circ_begin_create_fast(struct circ *c, struct cell *out)
{
	if (c->state != CIRC_ST_EMPTY)
		return -EINVAL;
	crypto_rand(c->hs.fast_x, CREATE_FAST_LEN);
	memset(out, 0, sizeof(*out));
	out->circ_id = c->circ_id;
	out->command = CELL_CREATE_FAST;
	(void)cell_create_fast_encode(out->payload, CELL_PAYLOAD_LEN, c->hs.fast_x);
	c->hs_kind = CIRC_HS_FAST;
	c->state = CIRC_ST_CREATING;
	return 0;
}

static bool hop_wants_cc(const struct circ *c, const struct hop_target *t)
{
	/* proposal 324 §10.1: consensus cc_alg != 0 and FlowCtrl=2; ntor v3
	 * (Relay=4) and an Ed25519 identity carry the request. */
	return t->request_cc && c->params.cc.alg != CC_ALG_FIXED && t->has_ed_id &&
	       (t->protos & HOP_PROTO_NTOR3) && (t->protos & HOP_PROTO_FLOWCTRL_CC);
}

/* Start the handshake with t; write HTYPE and HDATA. Returns hlen or -1. */
static int hs_start(struct circ *c, const struct hop_target *t, uint16_t *htype, uint8_t *hdata,
		    size_t cap)
{
	if (hop_wants_cc(c, t)) {
		uint8_t cm[8];
		size_t cm_len = ntor3_ext_encode_cc_request(cm, sizeof(cm));
		int n = ntor3_client_start(&c->hs.ntor3, t->ed_id, t->ntor_key,
					   (const uint8_t *)NTOR3_CIRC_VERIFICATION,
					   sizeof(NTOR3_CIRC_VERIFICATION) - 1, cm, cm_len, hdata, cap);
		if (n < 0)
			return -1;
		c->hs_kind = CIRC_HS_NTOR3;
		c->hs_cc_requested = true;
		*htype = CELL_HTYPE_NTOR_V3;
		return n;
	}
	BUG_ON(cap < NTOR_ONIONSKIN_LEN);
	ntor_client_start(&c->hs.ntor, t->rsa_id, t->ntor_key, hdata);
	c->hs_kind = CIRC_HS_NTOR;
	c->hs_cc_requested = false;
	*htype = CELL_HTYPE_NTOR;
	return NTOR_ONIONSKIN_LEN;
}

int circ_begin_create(struct circ *c, const struct hop_target *t, struct cell *out)
{
	uint8_t hdata[CELL_PAYLOAD_LEN];
	uint16_t htype;
	int n;

	if (c->state != CIRC_ST_EMPTY)
		return -EINVAL;
	n = hs_start(c, t, &htype, hdata, sizeof(hdata) - 4);
	if (n < 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->circ_id = c->circ_id;
	out->command = CELL_CREATE2;
	if (cell_create2_encode(out->payload, CELL_PAYLOAD_LEN, htype, hdata, (size_t)n) < 0) {
		hs_abandon(c);
		return -EINVAL;
	}
	c->state = CIRC_ST_CREATING;
	return 0;
}

/* Fill e's link specifiers from t (tor-spec 5.1.2): IPv4, legacy RSA id,
 * Ed25519 id, IPv6. buf holds the values ls borrows. */
static void extend2_linkspecs(const struct hop_target *t, struct relay_extend2 *e, uint8_t buf[24])
{
	memcpy(buf, t->ipv4, 4);
	buf[4] = (uint8_t)(t->port >> 8);
	buf[5] = (uint8_t)t->port;
	relay_linkspec_set(&e->spec[e->n_spec++], RELAY_LS_IPV4, buf, 6);
	relay_linkspec_set(&e->spec[e->n_spec++], RELAY_LS_LEGACY_ID, t->rsa_id, SHA1_LEN);
	if (t->has_ed_id)
		relay_linkspec_set(&e->spec[e->n_spec++], RELAY_LS_ED25519_ID, t->ed_id, 32);
	if (t->has_ipv6) {
		memcpy(buf + 6, t->ipv6, 16);
		buf[22] = (uint8_t)(t->ipv6_port >> 8);
		buf[23] = (uint8_t)t->ipv6_port;
		relay_linkspec_set(&e->spec[e->n_spec++], RELAY_LS_IPV6, buf + 6, 18);
	}
}

static bool circ_has_streams(const struct circ *c)
{
	for (size_t i = 0; i < CIRC_STREAMS_MAX; i++)
		if (c->streams[i].state != CIRC_SS_FREE)
			return true;
	return false;
}

int circ_begin_extend(struct circ *c, const struct hop_target *t, struct cell *out)
{
	uint8_t hdata[CELL_PAYLOAD_LEN], ls_buf[24];
	struct relay_extend2 e;
	uint8_t *body = out->payload + RELAY_HEADER_LEN;
	ssize_t len;
	int n, cmd;

	if (c->state != CIRC_ST_OPEN || c->n_hops >= CIRC_MAX_HOPS || circ_has_streams(c) ||
	    c->hs_joined)
		return -EINVAL;
	if (!relay_early_has_budget(&c->early))
		return -ENOSPC;
	memset(&e, 0, sizeof(e));
	extend2_linkspecs(t, &e, ls_buf);
	n = hs_start(c, t, &e.htype, hdata, sizeof(hdata));
	if (n < 0)
		return -EINVAL;
	e.hlen = (uint16_t)n;
	e.hdata = hdata;
	len = relay_extend2_encode(body, RELAY_DATA_MAX, &e);
	if (len < 0) {
		hs_abandon(c);
		return -EINVAL;
	}
	cmd = relay_early_choose(&c->early, RELAY_EXTEND2, (unsigned)(c->n_hops - 1));
	BUG_ON(cmd != CELL_RELAY_EARLY); /* budget checked above */
	relay_header_write(out->payload, RELAY_EXTEND2, 0, (size_t)len, c->rng);
	out->circ_id = c->circ_id;
	out->command = (uint8_t)cmd;
	circ_encrypt(c, c->n_hops - 1, &out, 1, NULL);
	c->state = CIRC_ST_EXTENDING;
	return 0;
}

void circ_destroy_cell(const struct circ *c, struct cell *out)
{
	memset(out, 0, sizeof(*out));
	out->circ_id = c->circ_id;
	out->command = CELL_DESTROY;
	out->payload[0] = CELL_DESTROY_NONE;
}

/* --- Handshake completion -------------------------------------------------- */

static void edge_reset(struct circ *c);

/* Install a hop from key material k (wiped here). */
static void install_hop(struct circ *c, uint8_t *k, size_t len)
{
	struct relay_hop_keys hk;
	int idx;

	BUG_ON(relay_keys_from_kdf(k, len, &hk) != 0);
	idx = relay_crypto_circ_add_hop(&c->crypto, &hk);
	BUG_ON(idx < 0); /* n_hops checked when the handshake started */
	crypto_wipe(&hk, sizeof(hk));
	crypto_wipe(k, len);
	c->n_hops = (uint8_t)(idx + 1);
	c->edge_hop = (uint8_t)idx;
	edge_reset(c);
	c->state = CIRC_ST_OPEN;
}

/* Flow control restarts for a new edge hop (tor-spec 7.3). */
static void edge_reset(struct circ *c)
{
	c->package_window = (int32_t)c->params.circwindow;
	/* Like tor, receive against the full 1000 whatever 'circwindow' says:
	 * the exit's package window is the one the parameter shrinks. */
	c->deliver_window = CIRC_WINDOW_START;
	c->sendme_inc = CIRC_WINDOW_INC;
	c->n_data_sent = 0;
	c->ring_head = c->ring_len = 0;
	c->cc_on = false;
}

/* Finish an ntor v3 handshake, with the CC response (324 §10.5).
 * Returns NULL or a static reason. */
static const char *finish_ntor3(struct circ *c, const uint8_t *h, size_t hlen)
{
	uint8_t sm[256], k[RELAY_KDF_LEN], inc = 0;
	size_t sm_len = 0;
	bool present = false;
	const char *why = NULL;

	if (ntor3_client_finish(&c->hs.ntor3, h, hlen, sm, sizeof(sm), &sm_len, k, sizeof(k)) != 0)
		return "ntor v3 handshake failed";
	c->hs_kind = CIRC_HS_NONE;
	if (ntor3_ext_parse_cc_response(sm, sm_len, c->hs_cc_requested, &present, &inc, &why) !=
	    PARSE_OK) {
		crypto_wipe(k, sizeof(k));
		return why ? why : "bad ntor v3 server message";
	}
	if (present && !ntor3_cc_sendme_inc_acceptable(inc, c->params.cc.sendme_inc)) {
		crypto_wipe(k, sizeof(k));
		return "sendme_inc too far from the consensus (324 10.5)";
	}
	install_hop(c, k, sizeof(k));
	if (present) {
		c->cc_on = true;
		c->sendme_inc = inc;
		cc_init(&c->cc, &c->params.cc, inc, (uint32_t)inc * CIRC_SENDME_RING);
	}
	return NULL;
}

/* Finish the pending handshake with hdata (CREATED2 / EXTENDED2 HDATA).
 * Returns NULL on success or a static reason. */
static const char *finish_handshake(struct circ *c, const uint8_t *h, size_t hlen)
{
	uint8_t k[RELAY_KDF_LEN];

	if (c->hs_kind == CIRC_HS_NTOR3)
		return finish_ntor3(c, h, hlen);
	if (c->hs_kind != CIRC_HS_NTOR)
		return "CREATED2 without a pending ntor handshake";
	if (hlen < NTOR_REPLY_LEN) {
		hs_abandon(c);
		return "short ntor reply";
	}
	c->hs_kind = CIRC_HS_NONE;
	if (ntor_client_finish(&c->hs.ntor, h, k, sizeof(k)) != 0)
		return "ntor handshake failed";
	install_hop(c, k, sizeof(k));
	return NULL;
}

static const char *finish_fast(struct circ *c, const uint8_t *body)
{
	const uint8_t *y, *kh;
	uint8_t k0[2 * SHA1_LEN], k[SHA1_LEN + RELAY_KEY_MATERIAL_LEN]; /* KH + tor1 keys */
	bool ok;

	if (c->hs_kind != CIRC_HS_FAST)
		return "CREATED_FAST without CREATE_FAST";
	(void)cell_created_fast_parse(body, CELL_PAYLOAD_LEN, &y, &kh, NULL);
	/* K0 = X | Y; K = KH | Df | Db | Kf | Kb (tor-spec 5.1.5, 5.2.1). */
	memcpy(k0, c->hs.fast_x, SHA1_LEN);
	memcpy(k0 + SHA1_LEN, y, SHA1_LEN);
	circ_kdf_tor(k0, sizeof(k0), k, SHA1_LEN + RELAY_KEY_MATERIAL_LEN);
	ok = crypto_memeq(k, kh, SHA1_LEN);
	crypto_wipe(k0, sizeof(k0));
	hs_abandon(c);
	if (!ok) {
		crypto_wipe(k, sizeof(k));
		return "CREATED_FAST KH mismatch";
	}
	/* tor1 reads Df Db Kf Kb then the nonce; KDF-TOR puts KH first. */
	memcpy(k0, k, SHA1_LEN);
	memmove(k, k + SHA1_LEN, RELAY_KEY_MATERIAL_LEN);
	memcpy(k + RELAY_KEY_MATERIAL_LEN, k0, SHA1_LEN);
	crypto_wipe(k0, sizeof(k0));
	install_hop(c, k, RELAY_KDF_LEN);
	crypto_wipe(k, sizeof(k));
	return NULL;
}

/* --- Inbound --------------------------------------------------------------- */

/* Close c with reason and report it; returns the event count (1). */
static size_t ev_close(struct circ *c, struct circ_event *ev, uint8_t reason, const char *why)
{
	hs_abandon(c);
	c->state = CIRC_ST_CLOSED;
	memset(ev, 0, sizeof(*ev));
	ev->type = CIRC_EV_CLOSED;
	ev->u.close.reason = reason;
	ev->u.close.why = why;
	log_info("circuit %u: closing: %s", c->circ_id, why);
	return 1;
}

#define PROTO_ERR(why) ev_close(c, ev, CELL_DESTROY_PROTOCOL, (why))

static size_t ev_simple(struct circ_event *ev, uint8_t type, int hop, uint16_t sid)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->hop = (uint8_t)hop;
	ev->stream_id = sid;
	return 1;
}

static void stream_free(struct circ_stream *s)
{
	memset(s, 0, sizeof(*s));
}

/* Count a DATA cell against the deliver windows and queue the SENDMEs the
 * counts call for (tor-spec 7.3, 7.4; 324 §2.1: every sendme_inc cells). */
static size_t on_data(struct circ *c, int hop, const struct relay_msg *m,
		      const uint8_t dig[SHA1_LEN], struct circ_event *ev)
{
	struct circ_stream *s;

	if (hop != c->edge_hop)
		return PROTO_ERR("DATA from a hop that carries no streams");
	if (--c->deliver_window < 0)
		return PROTO_ERR("circuit deliver window below zero");
	if (CIRC_WINDOW_START - c->deliver_window >= (int32_t)c->sendme_inc) {
		/* The SENDME v1 tag is this cell's digest (7.3.1). */
		if (!circ_ctrl_push(c, RELAY_SENDME, 0, dig))
			return ev_close(c, ev, CELL_DESTROY_RESOURCELIMIT, "control queue full");
		c->deliver_window += (int32_t)c->sendme_inc;
	}
	s = circ_stream_find(c, m->stream_id);
	if (!s)
		return 0; /* unknown or closed stream: dropped, the circuit counted it */
	if (s->state != CIRC_SS_OPEN)
		return PROTO_ERR("DATA on a stream that is not open");
	if (!c->cc_on) {
		if (--s->deliver_window < 0)
			return PROTO_ERR("stream deliver window below zero");
		while (s->reading && s->deliver_window <= STREAM_WINDOW_START - STREAM_WINDOW_INC) {
			if (!circ_ctrl_push(c, RELAY_SENDME, s->id, NULL))
				return ev_close(c, ev, CELL_DESTROY_RESOURCELIMIT, "control queue full");
			s->deliver_window += STREAM_WINDOW_INC;
		}
	}
	ev_simple(ev, CIRC_EV_DATA, hop, s->id);
	ev->u.data.data = m->data;
	ev->u.data.len = m->length;
	return 1;
}

static size_t on_stream_sendme(struct circ *c, int hop, uint16_t sid, struct circ_event *ev)
{
	struct circ_stream *s = circ_stream_find(c, sid);
	bool was_closed;

	if (c->cc_on)
		return PROTO_ERR("stream SENDME with congestion control (324 4)");
	if (!s)
		return 0;
	was_closed = s->package_window <= 0;
	s->package_window += STREAM_WINDOW_INC;
	if (s->package_window > STREAM_WINDOW_START)
		return PROTO_ERR("stream SENDME beyond the window");
	return was_closed ? ev_simple(ev, CIRC_EV_WRITABLE, hop, sid) : 0;
}

/* A circuit SENDME acks the oldest recorded DATA cell (tor-spec 7.3). */
static size_t on_sendme(struct circ *c, int hop, const struct relay_msg *m, uint64_t now,
			struct circ_event *ev)
{
	struct relay_sendme sm;
	struct circ_sendme_rec *r;
	const char *why = "bad SENDME";
	bool was_closed;

	if (relay_sendme_parse(m->data, m->length, &sm, &why) != PARSE_OK)
		return PROTO_ERR(why);
	if (m->stream_id != 0)
		return on_stream_sendme(c, hop, m->stream_id, ev);
	if (hop != c->edge_hop)
		return PROTO_ERR("circuit SENDME from a hop we sent no DATA to");
	if (sm.version < c->params.sendme_accept_min_version)
		return PROTO_ERR("SENDME version below sendme_accept_min_version");
	if (c->ring_len == 0)
		return PROTO_ERR("SENDME with no DATA awaiting one");
	r = &c->ring[c->ring_head];
	if (sm.version == 1 && !crypto_memeq(r->digest, sm.digest, SHA1_LEN))
		return PROTO_ERR("SENDME v1 digest does not match the cell sent");
	c->ring_head = (uint16_t)((c->ring_head + 1) % CIRC_SENDME_RING);
	c->ring_len--;
	if (c->cc_on) {
		was_closed = !cc_can_send(&c->cc);
		if (cc_on_sendme(&c->cc, now > r->sent_usec ? now - r->sent_usec : 0) != 0)
			return PROTO_ERR("SENDME for cells never sent");
		return was_closed && cc_can_send(&c->cc) ? ev_simple(ev, CIRC_EV_WRITABLE, hop, 0) : 0;
	}
	was_closed = c->package_window <= 0;
	c->package_window += (int32_t)c->sendme_inc;
	if (c->package_window > (int32_t)c->params.circwindow)
		return PROTO_ERR("circuit SENDME beyond the window");
	return was_closed ? ev_simple(ev, CIRC_EV_WRITABLE, hop, 0) : 0;
}

static size_t on_connected(struct circ *c, int hop, const struct relay_msg *m,
			   struct circ_event *ev)
{
	struct circ_stream *s = circ_stream_find(c, m->stream_id);
	struct relay_connected rc;
	const char *why = "bad CONNECTED";

	if (!s)
		return 0;
	if (s->state != CIRC_SS_CONNECTING)
		return PROTO_ERR("CONNECTED on a stream that is not connecting");
	memset(&rc, 0, sizeof(rc));
	rc.ttl = RELAY_TTL_NONE;
	/* A client ignores the body of a BEGIN_DIR's CONNECTED (6.2.1). */
	if (s->kind != CIRC_STREAM_BEGIN_DIR &&
	    relay_connected_parse(m->data, m->length, &rc, &why) != PARSE_OK)
		return PROTO_ERR(why);
	s->state = CIRC_SS_OPEN;
	ev_simple(ev, CIRC_EV_CONNECTED, hop, s->id);
	ev->u.connected.addr_type = rc.addr_type;
	memcpy(ev->u.connected.addr, rc.addr, sizeof(rc.addr));
	ev->u.connected.ttl = rc.ttl;
	return 1;
}

static size_t on_end(struct circ *c, int hop, const struct relay_msg *m, struct circ_event *ev)
{
	struct circ_stream *s = circ_stream_find(c, m->stream_id);
	struct relay_end e;

	if (!s)
		return 0;
	(void)relay_end_parse(m->data, m->length, &e, NULL); /* never INVALID (6.3) */
	stream_free(s);
	ev_simple(ev, CIRC_EV_END, hop, m->stream_id);
	ev->u.end.reason = e.reason;
	return 1;
}

static size_t on_resolved(struct circ *c, int hop, const struct relay_msg *m,
			  struct circ_event *ev)
{
	struct circ_stream *s = circ_stream_find(c, m->stream_id);

	if (!s)
		return 0;
	if (s->state != CIRC_SS_RESOLVING)
		return PROTO_ERR("RESOLVED on a stream that sent no RESOLVE");
	stream_free(s);
	ev_simple(ev, CIRC_EV_RESOLVED, hop, m->stream_id);
	ev->u.raw.body = m->data;
	ev->u.raw.len = m->length;
	return 1;
}

static size_t on_extended2(struct circ *c, int hop, const struct relay_msg *m,
			   struct circ_event *ev)
{
	struct cell_created2 cr;
	const char *why = "bad EXTENDED2";

	if (c->state != CIRC_ST_EXTENDING || hop != c->n_hops - 1 || m->stream_id != 0)
		return PROTO_ERR("unexpected EXTENDED2");
	if (relay_extended2_parse(m->data, m->length, &cr, &why) != PARSE_OK)
		return PROTO_ERR(why);
	why = finish_handshake(c, cr.hdata, cr.hlen);
	if (why)
		return PROTO_ERR(why);
	return ev_simple(ev, CIRC_EV_HOP_ADDED, c->n_hops - 1, 0);
}

static size_t on_truncated(struct circ *c, int hop, const struct relay_msg *m,
			   struct circ_event *ev)
{
	uint8_t reason = CELL_DESTROY_NONE;

	(void)relay_truncated_parse(m->data, m->length, &reason, NULL);
	while (c->crypto.n_hops > hop + 1)
		relay_crypto_circ_drop_last(&c->crypto);
	c->n_hops = (uint8_t)(hop + 1);
	hs_abandon(c);
	/* tor-spec 5.4: an OP does not reuse a truncated circuit; it sends
	 * DESTROY. */
	c->state = CIRC_ST_CLOSED;
	ev_simple(ev, CIRC_EV_TRUNCATED, hop, 0);
	ev->u.close.reason = reason;
	ev->u.close.why = "TRUNCATED";
	return 1;
}

static size_t on_xonoff(struct circ *c, int hop, const struct relay_msg *m,
			struct circ_event *ev)
{
	struct circ_stream *s;
	struct relay_xon xon;
	const char *why = "bad XON/XOFF";

	if (!c->cc_on || m->stream_id == 0)
		return PROTO_ERR("XON/XOFF without congestion control or stream");
	if (m->command == RELAY_XOFF ? relay_xoff_parse(m->data, m->length, &why) != PARSE_OK
				     : relay_xon_parse(m->data, m->length, &xon, &why) != PARSE_OK)
		return PROTO_ERR(why); /* unknown versions are violations (324 4.1) */
	s = circ_stream_find(c, m->stream_id);
	if (!s)
		return 0;
	if (m->command == RELAY_XOFF) {
		s->xoff_received = true;
		return 0;
	}
	/* XON's kbps_ewma is advisory (4.1.2); we do not rate-limit on it. */
	if (!s->xoff_received)
		return 0;
	s->xoff_received = false;
	return ev_simple(ev, CIRC_EV_WRITABLE, hop, s->id);
}

/* An onion-service message: only from the last real hop on stream 0
 * (rend-spec-v3 3.2, 4.1: the rendezvous or introduction point); the app
 * layer decides whether it expected it. Elsewhere it is ignored, as tor
 * ignores relay commands that make no sense where they arrive. */
static size_t on_hs(struct circ *c, int hop, const struct relay_msg *m, struct circ_event *ev)
{
	if (c->hs_joined || hop != c->n_hops - 1 || m->stream_id != 0)
		return 0;
	ev_simple(ev, CIRC_EV_HS, hop, 0);
	ev->u.hs.command = m->command;
	ev->u.hs.body = m->data;
	ev->u.hs.len = m->length;
	return 1;
}

/* Handle one recognized, decrypted relay cell from hop. */
static size_t handle_relay(struct circ *c, int hop, const uint8_t *payload,
			   const uint8_t dig[SHA1_LEN], uint64_t now, struct circ_event *ev)
{
	struct relay_msg m;
	const char *why = "bad relay header";

	if (relay_parse(payload, &m, &why) != PARSE_OK)
		return PROTO_ERR(why);
	switch (m.command) {
	case RELAY_DATA:
		return on_data(c, hop, &m, dig, ev);
	case RELAY_SENDME:
		return on_sendme(c, hop, &m, now, ev);
	case RELAY_CONNECTED:
		return on_connected(c, hop, &m, ev);
	case RELAY_END:
		return on_end(c, hop, &m, ev);
	case RELAY_RESOLVED:
		return on_resolved(c, hop, &m, ev);
	case RELAY_EXTENDED2:
		return on_extended2(c, hop, &m, ev);
	case RELAY_TRUNCATED:
		return on_truncated(c, hop, &m, ev);
	case RELAY_XOFF:
	case RELAY_XON:
		return on_xonoff(c, hop, &m, ev);
	case RELAY_RENDEZVOUS_ESTABLISHED:
	case RELAY_INTRODUCE_ACK:
	case RELAY_RENDEZVOUS2:
		return on_hs(c, hop, &m, ev);
	case RELAY_BEGIN:
	case RELAY_BEGIN_DIR:
	case RELAY_RESOLVE:
	case RELAY_EXTEND:
	case RELAY_EXTEND2:
	case RELAY_TRUNCATE:
	case RELAY_EXTENDED:
		return PROTO_ERR("relay command a client never receives");
	default:
		/* DROP, padding negotiation, onion-service and unknown
		 * commands: counted by the digest already, otherwise
		 * ignored (tor-spec 6.1). */
		return 0;
	}
}

/* Handle one non-relay cell. */
static size_t handle_cell(struct circ *c, const struct cell *cl, struct circ_event *ev)
{
	struct cell_created2 cr;
	const char *why = "bad CREATED2";

	switch (cl->command) {
	case CELL_CREATED2:
		if (c->state != CIRC_ST_CREATING || c->hs_kind == CIRC_HS_FAST)
			return PROTO_ERR("unexpected CREATED2");
		if (cell_created2_parse(cl->payload, CELL_PAYLOAD_LEN, &cr, &why) != PARSE_OK)
			return PROTO_ERR(why);
		why = finish_handshake(c, cr.hdata, cr.hlen);
		return why ? PROTO_ERR(why) : ev_simple(ev, CIRC_EV_HOP_ADDED, 0, 0);
	case CELL_CREATED_FAST:
		if (c->state != CIRC_ST_CREATING)
			return PROTO_ERR("unexpected CREATED_FAST");
		why = finish_fast(c, cl->payload);
		return why ? PROTO_ERR(why) : ev_simple(ev, CIRC_EV_HOP_ADDED, 0, 0);
	case CELL_DESTROY:
		hs_abandon(c);
		c->state = CIRC_ST_CLOSED;
		ev_simple(ev, CIRC_EV_DESTROYED, 0, 0);
		ev->u.close.reason = cl->payload[0];
		ev->u.close.why = "DESTROY";
		return 1;
	case CELL_PADDING:
	case CELL_VPADDING:
		return 0;
	default:
		return PROTO_ERR("unexpected cell command on a circuit");
	}
}

#define CIRC_IN_CHUNK 64

/* Decrypt and handle the run cells[0..n) of RELAY/RELAY_EARLY cells with
 * one decrypt call. Returns events written; stops at a close. */
static size_t input_relay_run(struct circ *c, struct cell *const cells[], size_t n, uint64_t now,
			      struct circ_event *ev)
{
	uint8_t *pl[CIRC_IN_CHUNK], *dp[CIRC_IN_CHUNK];
	uint8_t dig[CIRC_IN_CHUNK][SHA1_LEN];
	int hop[CIRC_IN_CHUNK];
	size_t k = 0;

	BUG_ON(n == 0 || n > CIRC_IN_CHUNK);
	if (c->crypto.n_hops == 0)
		return PROTO_ERR("relay cell before the first hop exists");
	for (size_t i = 0; i < n; i++) {
		pl[i] = cells[i]->payload;
		dp[i] = dig[i];
	}
	relay_crypto_decrypt_in(&c->crypto, pl, n, hop, dp);
	for (size_t i = 0; i < n && c->state != CIRC_ST_CLOSED; i++) {
		/* Every real hop peeled a cell from the service without
		 * recognizing it; the virtual hop opens it (hs_hop.h). */
		if (hop[i] < 0 && c->hs_joined && hs_hop_open_in(&c->hs_hop, pl[i])) {
			hop[i] = c->n_hops;
			hs_hop_digest(&c->hs_hop, false, dig[i]);
		}
		/* tor-spec 6.1 / 5.5.3: a cell no hop recognizes is a
		 * protocol violation; the circuit is destroyed. */
		if (hop[i] < 0)
			return k + PROTO_ERR("relay cell recognized by no hop");
		k += handle_relay(c, hop[i], pl[i], dig[i], now, ev + k);
	}
	return k;
}

static bool is_relay(uint8_t command)
{
	/* Inbound RELAY_EARLY is surprising but handled as RELAY, as tor does. */
	return command == CELL_RELAY || command == CELL_RELAY_EARLY;
}

void circ_input_cells(struct circ *c, struct cell *const cells[], size_t n, uint64_t now_usec,
		      struct circ_event *ev, size_t ev_cap, size_t *nev)
{
	size_t i = 0, k = 0;

	BUG_ON(ev_cap < n + 1);
	while (i < n && c->state != CIRC_ST_CLOSED) {
		size_t run = 0;

		while (i + run < n && run < CIRC_IN_CHUNK && is_relay(cells[i + run]->command))
			run++;
		if (run) {
			k += input_relay_run(c, cells + i, run, now_usec, ev + k);
			i += run;
		} else {
			k += handle_cell(c, cells[i], ev + k);
			i++;
		}
	}
	*nev = k;
}

/* --- Onion services ---------------------------------------------------------- */

int circ_send_hs(struct circ *c, uint8_t command, const uint8_t *body, size_t len,
		 struct cell *out)
{
	int cmd;

	if (c->state != CIRC_ST_OPEN || c->hs_joined || c->n_hops == 0 || len > RELAY_DATA_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memcpy(out->payload + RELAY_HEADER_LEN, body, len);
	relay_header_write(out->payload, command, 0, len, c->rng);
	cmd = relay_early_choose(&c->early, command, (unsigned)(c->n_hops - 1));
	out->circ_id = c->circ_id;
	out->command = (uint8_t)(cmd < 0 ? CELL_RELAY : cmd);
	circ_encrypt(c, c->n_hops - 1, &out, 1, NULL);
	return 0;
}

int circ_hs_join(struct circ *c, const uint8_t keys[HS_NTOR_EXPANDED_LEN], const struct cc_params *cc)
{
	if (c->state != CIRC_ST_OPEN || c->hs_joined || c->n_hops == 0 || circ_has_streams(c) ||
	    (cc && cc->sendme_inc == 0))
		return -EINVAL;
	hs_hop_init(&c->hs_hop, keys);
	c->hs_joined = true;
	c->edge_hop = c->n_hops;
	edge_reset(c);
	if (cc) {
		c->cc_on = true;
		c->sendme_inc = cc->sendme_inc;
		cc_init(&c->cc, cc, cc->sendme_inc, (uint32_t)cc->sendme_inc * CIRC_SENDME_RING);
	}
	return 0;
}
