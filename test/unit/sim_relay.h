/* A simulated chain of relays for the circuit tests, the circuit fuzz
 * target and perf/bench_circuit.c: the relay side of ntor, ntor v3 (with
 * the proposal 324 CC response) and CREATE_FAST, tor1 relay crypto, and an
 * exit with SENDME windows that checks the client's SENDME v1 digests.
 *
 * Written from the spec's relay-side rules with core/crypto.h only, as an
 * independent computation (it shares no code with proto/circuit.c or
 * proto/relay_crypto.c); the ntor/ntor v3 server formulas follow
 * test_ntor.c / test_ntor3.c, which check them against known answers.
 * Test code: a failed check aborts. Not for production use. */
#ifndef ONIONRING_TEST_SIM_RELAY_H
#define ONIONRING_TEST_SIM_RELAY_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "proto/cell.h"
#include "proto/circuit.h"
#include "proto/relay.h"

#define SIM_HOPS 4
#ifndef SIM_OUTQ
#define SIM_OUTQ 8192
#endif
#define SIM_STREAMS 16
#define SIM_PROTOID "ntor-curve25519-sha256-1"
#define SIM_PROTOID3 "ntor3-curve25519-sha3_256-1"

#define SIM_CHECK(x)                                                             \
	do {                                                                     \
		if (!(x)) {                                                      \
			fprintf(stderr, "%s:%d: sim check failed: %s\n", __FILE__, \
				__LINE__, #x);                                   \
			abort();                                                 \
		}                                                                \
	} while (0)

struct sim_hop {
	uint8_t b[32], B[32], rsa_id[20], ed_id[32];
	bool cc_enabled;    /* answers a CC request (FlowCtrl=2) */
	uint8_t sendme_inc; /* its cc_sendme_inc */
	bool keyed;
	struct crypto_aes_ctr kf, kb;
	struct crypto_sha1 df, db;
};

struct sim_stream {
	uint16_t id;
	bool open, xoff;
	int32_t pkg, dlv;
	uint8_t end_reason; /* END received from the client */
	uint64_t rx, tx;    /* bytes; data is the pattern (offset * 7 + id) & 0xff */
};

struct sim {
	uint32_t circ_id;
	int n_hops; /* configured relays */
	int built;  /* keyed hops */
	struct sim_hop hop[SIM_HOPS];
	int early_seen;
	const char *killed; /* why the relays tore the circuit down, or NULL */
	/* Exit flow control (tor-spec 7.3, 7.4; 324 §2.1). */
	bool cc;
	uint32_t inc;
	int32_t pkg, dlv;        /* circuit windows of the exit */
	int64_t inflight, cwnd;  /* with CC: a fixed window, enough for the tests */
	uint64_t data_rx, data_tx; /* DATA cells */
	uint8_t expect[512][20]; /* backward digests our SENDMEs must carry */
	unsigned exp_head, exp_len;
	bool withhold;           /* do not send SENDMEs to the client */
	uint8_t owed[512][20];
	uint16_t owed_sid[512];
	unsigned owed_len;
	uint64_t sendmes_rx;
	struct sim_stream st[SIM_STREAMS];
	bool refuse_begin;
	uint8_t begin_cmd;      /* the last BEGIN / BEGIN_DIR seen, and its body */
	char begin_host[256];
	uint16_t begin_port;
	uint32_t begin_flags;
	struct cell outq[SIM_OUTQ];
	size_t out_head, out_len;
	struct relay_pad_rng rng;
};

static inline void sim_hop_keys(struct sim_hop *h, const uint8_t *k /* Df Db Kf Kb */)
{
	static const uint8_t iv[16];

	crypto_aes_ctr_init(&h->kf, k + 40, iv);
	crypto_aes_ctr_init(&h->kb, k + 56, iv);
	crypto_sha1_init(&h->df);
	crypto_sha1_update(&h->df, k, 20);
	crypto_sha1_init(&h->db);
	crypto_sha1_update(&h->db, k + 20, 20);
	h->keyed = true;
}

/* Make n relays with fresh keys; hop i answers CC requests when cc. */
static inline void sim_init(struct sim *s, uint32_t circ_id, int n, bool cc, uint8_t inc)
{
	memset(s, 0, sizeof(*s));
	s->circ_id = circ_id;
	s->n_hops = n;
	for (int i = 0; i < n; i++) {
		struct sim_hop *h = &s->hop[i];

		crypto_x25519_keypair(h->B, h->b);
		crypto_rand(h->rsa_id, 20);
		crypto_rand(h->ed_id, 32);
		h->cc_enabled = cc;
		h->sendme_inc = inc;
	}
	relay_pad_rng_init(&s->rng);
}

static inline void sim_target(const struct sim *s, int i, struct hop_target *t, bool request_cc)
{
	memset(t, 0, sizeof(*t));
	t->ipv4[0] = 127, t->ipv4[3] = 1;
	t->port = (uint16_t)(9000 + i);
	memcpy(t->rsa_id, s->hop[i].rsa_id, 20);
	memcpy(t->ed_id, s->hop[i].ed_id, 32);
	t->has_ed_id = true;
	memcpy(t->ntor_key, s->hop[i].B, 32);
	t->protos = HOP_PROTO_NTOR3 | HOP_PROTO_FLOWCTRL_CC;
	t->request_cc = request_cc;
}

/* ntor server (tor-spec 5.1.4, 5.2.2): reply = Y | AUTH, k = 92 bytes. */
static inline void sim_ntor_server(struct sim_hop *h, const uint8_t *skin, uint8_t reply[64],
				   uint8_t k[92])
{
	uint8_t y[32], Y[32], si[204], ai[178], *p = si;

	SIM_CHECK(memcmp(skin, h->rsa_id, 20) == 0 && memcmp(skin + 20, h->B, 32) == 0);
	crypto_x25519_keypair(Y, y);
	SIM_CHECK(crypto_x25519(p, y, skin + 52));
	p += 32;
	SIM_CHECK(crypto_x25519(p, h->b, skin + 52));
	p += 32;
	memcpy(p, h->rsa_id, 20), p += 20;
	memcpy(p, h->B, 32), p += 32;
	memcpy(p, skin + 52, 32), p += 32;
	memcpy(p, Y, 32), p += 32;
	memcpy(p, SIM_PROTOID, 24);
	crypto_hmac_sha256(SIM_PROTOID ":verify", 31, si, sizeof(si), ai);
	p = ai + 32;
	memcpy(p, h->rsa_id, 20), p += 20;
	memcpy(p, h->B, 32), p += 32;
	memcpy(p, Y, 32), p += 32;
	memcpy(p, skin + 52, 32), p += 32;
	memcpy(p, SIM_PROTOID "Server", 30);
	memcpy(reply, Y, 32);
	crypto_hmac_sha256(SIM_PROTOID ":mac", 28, ai, sizeof(ai), reply + 32);
	SIM_CHECK(crypto_hkdf_sha256(k, 92, si, sizeof(si), SIM_PROTOID ":key_extract", 36,
				     SIM_PROTOID ":key_expand", 35) == 0);
}

static inline void sim_encap(struct crypto_sha3 *h, const void *s, size_t n)
{
	uint8_t len[8];

	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	crypto_sha3_256_update(h, len, 8);
	crypto_sha3_256_update(h, s, n);
}

static inline size_t sim_put_encap(uint8_t *p, const void *s, size_t n)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	memcpy(p + 8, s, n);
	return 8 + n;
}

static inline void sim_aes256(const uint8_t key[32], uint8_t *buf, size_t n)
{
	static const uint8_t iv[16];
	struct crypto_aes256_ctr a;

	crypto_aes256_ctr_init(&a, key, iv);
	crypto_aes256_ctr_xor(&a, buf, n);
	crypto_aes256_ctr_clear(&a);
}

/* ntor v3 server (proposal 332) with verification "circuit extend". The
 * client message is decrypted into cm; the server message sm goes back. */
static inline size_t sim_ntor3_server(struct sim_hop *hp, const uint8_t *hs, size_t hs_len,
				      uint8_t *cm, size_t *cm_len, const uint8_t *sm, size_t sm_len,
				      uint8_t *reply, uint8_t k[92])
{
	static const char ver[] = "circuit extend";
	const uint8_t *id = hs, *B = hs + 32, *X = hs + 64, *msg = hs + 96;
	size_t msg_len = hs_len - 128, n = 0;
	uint8_t buf[512], k1[64], mac[32], Xb[32], Xy[32], y[32], Y[32], seed[32], verify[32];
	uint8_t raw[32 + 92];
	struct crypto_sha3 h;

	SIM_CHECK(hs_len >= 128 && memcmp(id, hp->ed_id, 32) == 0 && memcmp(B, hp->B, 32) == 0);
	SIM_CHECK(crypto_x25519(Xb, hp->b, X));
	n += sim_put_encap(buf, SIM_PROTOID3 ":kdf_phase1", sizeof(SIM_PROTOID3 ":kdf_phase1") - 1);
	memcpy(buf + n, Xb, 32), n += 32;
	memcpy(buf + n, id, 32), n += 32;
	memcpy(buf + n, X, 32), n += 32;
	memcpy(buf + n, B, 32), n += 32;
	memcpy(buf + n, SIM_PROTOID3, 27), n += 27;
	n += sim_put_encap(buf + n, ver, sizeof(ver) - 1);
	crypto_shake256(buf, n, k1, 64);
	crypto_sha3_256_init(&h);
	sim_encap(&h, SIM_PROTOID3 ":msg_mac", sizeof(SIM_PROTOID3 ":msg_mac") - 1);
	sim_encap(&h, k1 + 32, 32);
	crypto_sha3_256_update(&h, hs, 96 + msg_len);
	crypto_sha3_256_final(&h, mac);
	SIM_CHECK(memcmp(mac, hs + hs_len - 32, 32) == 0);
	memcpy(cm, msg, msg_len);
	*cm_len = msg_len;
	sim_aes256(k1, cm, msg_len);

	crypto_x25519_keypair(Y, y);
	SIM_CHECK(crypto_x25519(Xy, y, X));
	n = 0;
	memcpy(buf + n, Xy, 32), n += 32;
	memcpy(buf + n, Xb, 32), n += 32;
	memcpy(buf + n, id, 32), n += 32;
	memcpy(buf + n, B, 32), n += 32;
	memcpy(buf + n, X, 32), n += 32;
	memcpy(buf + n, Y, 32), n += 32;
	memcpy(buf + n, SIM_PROTOID3, 27), n += 27;
	n += sim_put_encap(buf + n, ver, sizeof(ver) - 1);
	crypto_sha3_256_init(&h);
	sim_encap(&h, SIM_PROTOID3 ":key_seed", sizeof(SIM_PROTOID3 ":key_seed") - 1);
	crypto_sha3_256_update(&h, buf, n);
	crypto_sha3_256_final(&h, seed);
	crypto_sha3_256_init(&h);
	sim_encap(&h, SIM_PROTOID3 ":verify", sizeof(SIM_PROTOID3 ":verify") - 1);
	crypto_sha3_256_update(&h, buf, n);
	crypto_sha3_256_final(&h, verify);
	n = sim_put_encap(buf, SIM_PROTOID3 ":kdf_final", sizeof(SIM_PROTOID3 ":kdf_final") - 1);
	memcpy(buf + n, seed, 32), n += 32;
	crypto_shake256(buf, n, raw, sizeof(raw));
	memcpy(reply, Y, 32);
	memcpy(reply + 64, sm, sm_len);
	sim_aes256(raw, reply + 64, sm_len);
	memcpy(k, raw + 32, 92);
	crypto_sha3_256_init(&h);
	sim_encap(&h, SIM_PROTOID3 ":auth_final", sizeof(SIM_PROTOID3 ":auth_final") - 1);
	crypto_sha3_256_update(&h, verify, 32);
	crypto_sha3_256_update(&h, id, 32);
	crypto_sha3_256_update(&h, B, 32);
	crypto_sha3_256_update(&h, Y, 32);
	crypto_sha3_256_update(&h, X, 32);
	crypto_sha3_256_update(&h, hs + hs_len - 32, 32);
	sim_encap(&h, reply + 64, sm_len);
	crypto_sha3_256_update(&h, SIM_PROTOID3 "Server", 27 + 6);
	crypto_sha3_256_final(&h, reply + 32);
	return 64 + sm_len;
}

/* Answer a CREATE2/EXTEND2 handshake at hop i: write the CREATED2 body
 * (HLEN | HDATA) to body and key the hop. Returns the body length. */
static inline size_t sim_handshake(struct sim *s, int i, uint16_t htype, const uint8_t *hdata,
				   size_t hlen, uint8_t *body)
{
	struct sim_hop *h = &s->hop[i];
	uint8_t k[92], cm[64], sm[8];
	size_t cm_len = 0, sm_len = 0, rlen;

	SIM_CHECK(i < s->n_hops && i == s->built);
	if (htype == CELL_HTYPE_NTOR) {
		SIM_CHECK(hlen == 84);
		sim_ntor_server(h, hdata, body + 2, k);
		rlen = 64;
	} else {
		SIM_CHECK(htype == CELL_HTYPE_NTOR_V3);
		/* CM: N_EXTENSIONS, then TYPE LEN BODY; answer a CC request
		 * with CC_RESPONSE(sendme_inc) (324 §10.3). */
		rlen = 0;
		sm[sm_len++] = 0;
		{
			uint8_t tmp[512];
			size_t n = sim_ntor3_server(h, hdata, hlen, cm, &cm_len, sm, 0, tmp, k);
			(void)n;
		}
		SIM_CHECK(cm_len >= 1);
		if (cm_len == 3 && cm[0] == 1 && cm[1] == 1 && cm[2] == 0 && h->cc_enabled) {
			sm[0] = 1, sm[1] = 2, sm[2] = 1, sm[3] = h->sendme_inc;
			sm_len = 4;
			s->cc = true;
			s->inc = h->sendme_inc;
		}
		/* The first call only decrypted CM; answer for real. */
		rlen = sim_ntor3_server(h, hdata, hlen, cm, &cm_len, sm, sm_len, body + 2, k);
	}
	body[0] = (uint8_t)(rlen >> 8);
	body[1] = (uint8_t)rlen;
	sim_hop_keys(h, k);
	s->built++;
	if (!s->cc)
		s->inc = 100;
	s->pkg = s->dlv = 1000;
	s->cwnd = 2000;
	s->inflight = 0;
	return rlen + 2;
}

/* Queue a cell to the client from hop i: digest, then the layers. */
static inline void sim_send_from(struct sim *s, int i, uint8_t cmd, uint16_t sid,
				 const uint8_t *body, size_t len, uint8_t *dig_out)
{
	struct cell *cl;
	uint8_t d[20];

	SIM_CHECK(s->out_len < SIM_OUTQ);
	cl = &s->outq[(s->out_head + s->out_len++) % SIM_OUTQ];
	memset(cl, 0, sizeof(*cl));
	cl->circ_id = s->circ_id;
	cl->command = CELL_RELAY;
	SIM_CHECK(relay_encode(cl->payload, cmd, sid, body, len, &s->rng) == (ssize_t)len);
	crypto_sha1_update(&s->hop[i].db, cl->payload, CELL_PAYLOAD_LEN);
	crypto_sha1_peek(&s->hop[i].db, d);
	memcpy(cl->payload + 5, d, 4);
	if (dig_out)
		memcpy(dig_out, d, 20);
	for (int h = i; h >= 0; h--)
		crypto_aes_ctr_xor(&s->hop[h].kb, cl->payload, CELL_PAYLOAD_LEN);
}

/* Queue a raw (non-relay) cell to the client. */
static inline void sim_send_cell(struct sim *s, uint8_t command, const uint8_t *body, size_t len)
{
	struct cell *cl;

	SIM_CHECK(s->out_len < SIM_OUTQ);
	cl = &s->outq[(s->out_head + s->out_len++) % SIM_OUTQ];
	memset(cl, 0, sizeof(*cl));
	cl->circ_id = s->circ_id;
	cl->command = command;
	memcpy(cl->payload, body, len);
}

static inline struct sim_stream *sim_stream(struct sim *s, uint16_t sid)
{
	for (int i = 0; i < SIM_STREAMS; i++)
		if (s->st[i].open && s->st[i].id == sid)
			return &s->st[i];
	return NULL;
}

static inline uint8_t sim_pattern(uint16_t sid, uint64_t off) { return (uint8_t)(off * 7 + sid); }

/* The exit sends a circuit SENDME v1 for a DATA cell with digest d. */
static inline void sim_exit_sendme(struct sim *s, const uint8_t d[20])
{
	uint8_t body[23] = { 1, 0, 20 };

	if (s->withhold) {
		SIM_CHECK(s->owed_len < 512);
		s->owed_sid[s->owed_len] = 0;
		memcpy(s->owed[s->owed_len++], d, 20);
		return;
	}
	memcpy(body + 3, d, 20);
	sim_send_from(s, s->built - 1, RELAY_SENDME, 0, body, sizeof(body), NULL);
}

/* The exit sends a stream SENDME (empty, tor-spec 7.4). */
static inline void sim_exit_stream_sendme(struct sim *s, uint16_t sid)
{
	if (s->withhold) {
		SIM_CHECK(s->owed_len < 512);
		s->owed_sid[s->owed_len++] = sid;
		return;
	}
	sim_send_from(s, s->built - 1, RELAY_SENDME, sid, NULL, 0, NULL);
}

/* Stop withholding and send the SENDMEs owed, oldest first. */
static inline void sim_release(struct sim *s)
{
	s->withhold = false;
	for (unsigned i = 0; i < s->owed_len; i++)
		if (s->owed_sid[i])
			sim_exit_stream_sendme(s, s->owed_sid[i]);
		else
			sim_exit_sendme(s, s->owed[i]);
	s->owed_len = 0;
}

static inline void sim_exit_data(struct sim *s, const struct relay_msg *m, const uint8_t d[20])
{
	struct sim_stream *st = sim_stream(s, m->stream_id);

	s->data_rx++;
	if (--s->dlv < 0) {
		s->killed = "client overran the circuit window";
		return;
	}
	/* Every inc-th DATA cell triggers a SENDME carrying its digest. */
	if (1000 - s->dlv >= (int32_t)s->inc) {
		s->dlv += (int32_t)s->inc;
		sim_exit_sendme(s, d);
	}
	if (!st)
		return;
	if (!s->cc && --st->dlv < 0) {
		s->killed = "client overran the stream window";
		return;
	}
	for (uint16_t i = 0; i < m->length; i++)
		if (m->data[i] != sim_pattern(st->id, st->rx + i)) {
			s->killed = "stream data corrupted";
			return;
		}
	st->rx += m->length;
	if (!s->cc && st->dlv <= 450) {
		st->dlv += 50;
		sim_exit_stream_sendme(s, st->id);
	}
}

/* The exit checks a SENDME from the client (tor-spec 7.3.1). */
static inline void sim_exit_sendme_in(struct sim *s, const struct relay_msg *m)
{
	struct relay_sendme sm;
	struct sim_stream *st;

	if (m->stream_id) {
		st = sim_stream(s, m->stream_id);
		if (s->cc)
			s->killed = "stream SENDME with congestion control";
		else if (st && (st->pkg += 50) > 500)
			s->killed = "stream SENDME beyond window";
		return;
	}
	s->sendmes_rx++;
	if (relay_sendme_parse(m->data, m->length, &sm, NULL) != PARSE_OK || sm.version != 1 ||
	    s->exp_len == 0 || memcmp(sm.digest, s->expect[s->exp_head], 20) != 0) {
		s->killed = "bad SENDME v1 from the client";
		return;
	}
	s->exp_head = (s->exp_head + 1) % 512;
	s->exp_len--;
	if (s->cc)
		s->inflight -= s->inc;
	else if ((s->pkg += (int32_t)s->inc) > 1000)
		s->killed = "circuit SENDME beyond window";
}

static inline void sim_exit_begin(struct sim *s, const struct relay_msg *m)
{
	static const uint8_t connected4[8] = { 1, 2, 3, 4, 0, 0, 1, 44 };
	struct sim_stream *st = NULL;
	uint8_t reason = RELAY_END_EXITPOLICY;

	s->begin_cmd = m->command;
	if (m->command == RELAY_BEGIN) {
		struct relay_begin b;

		SIM_CHECK(relay_begin_parse(m->data, m->length, &b, NULL) == PARSE_OK);
		memcpy(s->begin_host, b.host, b.host_len);
		s->begin_host[b.host_len] = 0;
		s->begin_port = b.port;
		s->begin_flags = b.flags;
	}
	if (s->refuse_begin) {
		sim_send_from(s, s->built - 1, RELAY_END, m->stream_id, &reason, 1, NULL);
		return;
	}
	for (int i = 0; i < SIM_STREAMS && !st; i++)
		if (!s->st[i].open)
			st = &s->st[i];
	SIM_CHECK(st && !sim_stream(s, m->stream_id));
	memset(st, 0, sizeof(*st));
	st->id = m->stream_id;
	st->open = true;
	st->pkg = st->dlv = 500;
	if (m->command == RELAY_BEGIN)
		sim_send_from(s, s->built - 1, RELAY_CONNECTED, st->id, connected4, 8, NULL);
	else
		sim_send_from(s, s->built - 1, RELAY_CONNECTED, st->id, NULL, 0, NULL);
}

static inline void sim_exit_msg(struct sim *s, int hop, const struct relay_msg *m,
				const uint8_t d[20])
{
	struct sim_stream *st;
	uint8_t body[512];

	switch (m->command) {
	case RELAY_EXTEND2: {
		struct relay_extend2 e;

		SIM_CHECK(relay_extend2_parse(m->data, m->length, &e, NULL) == PARSE_OK);
		/* IPv4, legacy RSA id, Ed25519 id (tor-spec 5.1.2). */
		SIM_CHECK(e.n_spec >= 3 && e.spec[0].type == RELAY_LS_IPV4 &&
			  e.spec[0].body[0] == 127 && e.spec[0].body[3] == 1 &&
			  (e.spec[0].body[4] << 8 | e.spec[0].body[5]) == 9000 + hop + 1 &&
			  e.spec[1].type == RELAY_LS_LEGACY_ID &&
			  memcmp(e.spec[1].body, s->hop[hop + 1].rsa_id, 20) == 0 &&
			  e.spec[2].type == RELAY_LS_ED25519_ID &&
			  memcmp(e.spec[2].body, s->hop[hop + 1].ed_id, 32) == 0);
		size_t n = sim_handshake(s, hop + 1, e.htype, e.hdata, e.hlen, body);
		sim_send_from(s, hop, RELAY_EXTENDED2, 0, body, n, NULL);
		return;
	}
	case RELAY_BEGIN:
	case RELAY_BEGIN_DIR:
		sim_exit_begin(s, m);
		return;
	case RELAY_RESOLVE: {
		static const uint8_t ans[] = { 4, 4, 10, 0, 0, 7, 0, 0, 0, 60 };
		sim_send_from(s, hop, RELAY_RESOLVED, m->stream_id, ans, sizeof(ans), NULL);
		return;
	}
	case RELAY_DATA:
		sim_exit_data(s, m, d);
		return;
	case RELAY_SENDME:
		sim_exit_sendme_in(s, m);
		return;
	case RELAY_END:
		st = sim_stream(s, m->stream_id);
		if (st) {
			st->end_reason = m->length ? m->data[0] : 0;
			st->open = false;
		}
		return;
	case RELAY_XOFF:
	case RELAY_XON:
		st = sim_stream(s, m->stream_id);
		if (!s->cc)
			s->killed = "XON/XOFF without congestion control";
		else if (st)
			st->xoff = m->command == RELAY_XOFF;
		return;
	default:
		s->killed = "unexpected relay command at the exit";
	}
}

/* Feed one cell from the client to the chain. */
static inline void sim_from_client(struct sim *s, struct cell *cl)
{
	uint8_t body[512], d[20], saved[4];

	SIM_CHECK(cl->circ_id == s->circ_id);
	if (s->killed)
		return;
	if (cl->command == CELL_CREATE2) {
		uint16_t htype = (uint16_t)(cl->payload[0] << 8 | cl->payload[1]);
		uint16_t hlen = (uint16_t)(cl->payload[2] << 8 | cl->payload[3]);
		size_t n = sim_handshake(s, 0, htype, cl->payload + 4, hlen, body);

		sim_send_cell(s, CELL_CREATED2, body, n);
		return;
	}
	if (cl->command == CELL_CREATE_FAST) {
		/* K0 = X | Y; K = SHA1(K0|00) | SHA1(K0|01) | ... : KH Df Db Kf Kb. */
		uint8_t k0[41], K[100];

		memcpy(k0, cl->payload, 20);
		crypto_rand(k0 + 20, 20);
		for (int i = 0; i < 5; i++) {
			k0[40] = (uint8_t)i;
			crypto_sha1(k0, 41, K + 20 * i);
		}
		memcpy(body, k0 + 20, 20);
		memcpy(body + 20, K, 20);
		sim_hop_keys(&s->hop[0], K + 20);
		s->built = 1;
		s->inc = 100;
		s->pkg = s->dlv = 1000;
		sim_send_cell(s, CELL_CREATED_FAST, body, 40);
		return;
	}
	if (cl->command == CELL_DESTROY) {
		s->killed = "client sent DESTROY";
		return;
	}
	SIM_CHECK(cl->command == CELL_RELAY || cl->command == CELL_RELAY_EARLY);
	if (cl->command == CELL_RELAY_EARLY && ++s->early_seen > 8) {
		s->killed = "more than 8 RELAY_EARLY cells (tor-spec 5.6)";
		return;
	}
	for (int h = 0; h < s->built; h++) {
		struct crypto_sha1 tmp = s->hop[h].df;
		struct relay_msg m;

		crypto_aes_ctr_xor(&s->hop[h].kf, cl->payload, CELL_PAYLOAD_LEN);
		if (cl->payload[1] | cl->payload[2])
			continue;
		memcpy(saved, cl->payload + 5, 4);
		memset(cl->payload + 5, 0, 4);
		crypto_sha1_update(&tmp, cl->payload, CELL_PAYLOAD_LEN);
		crypto_sha1_peek(&tmp, d);
		memcpy(cl->payload + 5, saved, 4);
		if (memcmp(d, saved, 4) != 0)
			continue;
		s->hop[h].df = tmp;
		SIM_CHECK(relay_parse(cl->payload, &m, NULL) == PARSE_OK);
		if ((m.command == RELAY_EXTEND2) != false && cl->command != CELL_RELAY_EARLY) {
			s->killed = "EXTEND2 outside RELAY_EARLY";
			return;
		}
		sim_exit_msg(s, h, &m, d);
		return;
	}
	s->killed = "cell recognized by no relay";
}

/* The exit sends up to len bytes on stream sid as far as its windows
 * allow; returns bytes sent. */
static inline uint64_t sim_exit_send(struct sim *s, uint16_t sid, uint64_t len)
{
	struct sim_stream *st = sim_stream(s, sid);
	uint8_t body[RELAY_DATA_MAX];
	uint64_t sent = 0;

	SIM_CHECK(st);
	while (sent < len && !st->xoff && s->out_len < SIM_OUTQ - 64 &&
	       (s->cc ? s->inflight < s->cwnd : (s->pkg > 0 && st->pkg > 0))) {
		size_t n = (size_t)(len - sent < RELAY_DATA_MAX ? len - sent : RELAY_DATA_MAX);
		uint8_t d[20];

		for (size_t i = 0; i < n; i++)
			body[i] = sim_pattern(sid, st->tx + i);
		sim_send_from(s, s->built - 1, RELAY_DATA, sid, body, n, d);
		st->tx += n;
		sent += n;
		if (s->cc) {
			s->inflight++;
		} else {
			s->pkg--;
			st->pkg--;
		}
		if (++s->data_tx % s->inc == 0) {
			SIM_CHECK(s->exp_len < 512);
			memcpy(s->expect[(s->exp_head + s->exp_len++) % 512], d, 20);
		}
	}
	return sent;
}

/* Take up to max queued cells for the client (pointers into the queue,
 * valid until the next sim call that queues). */
static inline size_t sim_take(struct sim *s, struct cell *out[], size_t max)
{
	size_t n = 0;

	while (n < max && s->out_len > 0) {
		out[n++] = &s->outq[s->out_head];
		s->out_head = (s->out_head + 1) % SIM_OUTQ;
		s->out_len--;
	}
	return n;
}

/* --- A client circuit wired to the simulated chain ------------------- */

struct hx {
	struct circ c;
	struct sim s;
	struct relay_pad_rng rng;
	size_t batch;       /* cells per circ_input_cells / circ_stream_data call */
	uint64_t now;       /* simulated monotonic microseconds */
	uint64_t rtt;       /* added to now per delivery round */
	unsigned ev_count[16];
	struct circ_event last[16]; /* last event of each type (DATA: pointer stale) */
	uint64_t rx[CIRC_STREAMS_MAX]; /* stream bytes received, by slot */
	uint64_t tx[CIRC_STREAMS_MAX];
	bool corrupt;       /* received stream bytes differ from the pattern */
	struct cell cbuf[64];
	struct cell *cptr[64];
};

static inline void hx_on_event(struct hx *x, const struct circ_event *e)
{
	SIM_CHECK(e->type < 16);
	x->ev_count[e->type]++;
	x->last[e->type] = *e;
	if (e->type == CIRC_EV_DATA) {
		uint64_t *rx = &x->rx[e->stream_id & (CIRC_STREAMS_MAX - 1)];

		for (size_t i = 0; i < e->u.data.len; i++)
			if (e->u.data.data[i] != sim_pattern(e->stream_id, *rx + i))
				x->corrupt = true;
		*rx += e->u.data.len;
	}
}

/* Send the client's queued control cells to the chain. */
static inline void hx_flush(struct hx *x)
{
	size_t n;

	do {
		circ_flush(&x->c, x->cptr, x->batch, &n);
		for (size_t i = 0; i < n; i++)
			sim_from_client(&x->s, x->cptr[i]);
	} while (n > 0);
}

/* Move everything the chain queued into the client, batch by batch, with
 * the client's control answers going back; bounded. */
static inline void hx_deliver(struct hx *x)
{
	struct cell *in[64];
	struct circ_event ev[65];

	for (int round = 0; round < 100000 && x->s.out_len > 0; round++) {
		size_t n = sim_take(&x->s, in, x->batch), nev = 0;

		x->now += x->rtt;
		circ_input_cells(&x->c, in, n, x->now, ev, 65, &nev);
		for (size_t i = 0; i < nev; i++)
			hx_on_event(x, &ev[i]);
		if (x->c.state != CIRC_ST_CLOSED)
			hx_flush(x);
	}
}

static inline void hx_init(struct hx *x, int n_relays, bool relays_cc, uint8_t inc)
{
	struct circ_params p;

	memset(x, 0, sizeof(*x));
	relay_pad_rng_init(&x->rng);
	circ_params_default(&p);
	circ_init(&x->c, 0x80000001u, &p, &x->rng);
	sim_init(&x->s, 0x80000001u, n_relays, relays_cc, inc);
	x->batch = 32;
	x->rtt = 1000;
	x->now = 1000000;
	for (int i = 0; i < 64; i++)
		x->cptr[i] = &x->cbuf[i];
}

/* Build a circuit over all relays; the last hop asks for CC when want_cc.
 * Returns the number of hops built. */
static inline int hx_build(struct hx *x, bool fast, bool want_cc)
{
	struct hop_target t;

	if (fast)
		SIM_CHECK(circ_begin_create_fast(&x->c, &x->cbuf[0]) == 0);
	else {
		sim_target(&x->s, 0, &t, want_cc && x->s.n_hops == 1);
		SIM_CHECK(circ_begin_create(&x->c, &t, &x->cbuf[0]) == 0);
	}
	sim_from_client(&x->s, &x->cbuf[0]);
	hx_deliver(x);
	for (int i = 1; i < x->s.n_hops && x->c.state == CIRC_ST_OPEN; i++) {
		sim_target(&x->s, i, &t, want_cc && i == x->s.n_hops - 1);
		SIM_CHECK(circ_begin_extend(&x->c, &t, &x->cbuf[0]) == 0);
		sim_from_client(&x->s, &x->cbuf[0]);
		hx_deliver(x);
	}
	return x->c.n_hops;
}

/* Open a BEGIN stream and wait for CONNECTED; returns the stream id. */
static inline uint16_t hx_open(struct hx *x)
{
	uint16_t sid = 0;

	SIM_CHECK(circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "example.com", 11, 80, 0, &sid,
				   &x->cbuf[0]) == 0);
	sim_from_client(&x->s, &x->cbuf[0]);
	hx_deliver(x);
	return sid;
}

/* Send up to len pattern bytes on sid; returns bytes the circuit took. */
static inline uint64_t hx_send(struct hx *x, uint16_t sid, uint64_t len)
{
	uint8_t buf[64 * RELAY_DATA_MAX];
	uint64_t *tx = &x->tx[sid & (CIRC_STREAMS_MAX - 1)], total = 0;

	while (total < len) {
		size_t want = (size_t)(len - total < sizeof(buf) ? len - total : sizeof(buf));
		size_t taken = 0, n = 0;

		for (size_t i = 0; i < want; i++)
			buf[i] = sim_pattern(sid, *tx + i);
		x->now += 1;
		SIM_CHECK(circ_stream_data(&x->c, sid, buf, want, x->now, &taken, x->cptr, x->batch,
					   &n) == 0);
		for (size_t i = 0; i < n; i++)
			sim_from_client(&x->s, x->cptr[i]);
		*tx += taken;
		total += taken;
		if (taken == 0)
			break;
	}
	return total;
}

/* Send up to n DATA cells on sid, one per call; returns cells sent. */
static inline unsigned hx_send_cells(struct hx *x, uint16_t sid, unsigned n)
{
	uint8_t buf[RELAY_DATA_MAX];
	uint64_t *tx = &x->tx[sid & (CIRC_STREAMS_MAX - 1)];
	unsigned cells = 0;

	while (cells < n) {
		size_t taken = 0, k = 0;

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = sim_pattern(sid, *tx + i);
		x->now += 1;
		SIM_CHECK(circ_stream_data(&x->c, sid, buf, sizeof(buf), x->now, &taken, x->cptr, 1,
					   &k) == 0);
		for (size_t i = 0; i < k; i++)
			sim_from_client(&x->s, x->cptr[i]);
		*tx += taken;
		if (taken == 0 && k == 0)
			break;
		cells += taken > 0;
	}
	return cells;
}

#endif
