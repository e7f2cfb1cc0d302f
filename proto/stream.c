/* Outbound side of client circuits: the stream API, DATA packing under the
 * SENDME windows or the congestion window (tor-spec 6.2, 6.3, 7.3, 7.4;
 * proposal 324 §3, §4) and the queued control cells. See circuit.h.
 * Not for inbound handling (circuit.c). */
#include <errno.h>
#include <string.h>

#include "core/bug.h"
#include "core/compiler.h"
#include "core/crypto.h"
#include "proto/circuit.h"
#include "proto/circuit_int.h"

#define CIRC_OUT_CHUNK 64
/* A DATA cell of at most this many bytes carries >= 16 random padding
 * bytes after the 4 zero bytes (tor-spec 6.1, 7.3: "random bytes should be
 * added to at least one RELAY_DATA cell within one increment window"). */
#define CIRC_DATA_RANDOM_MAX (RELAY_DATA_MAX - 4 - 16)

bool circ_ctrl_push(struct circ *c, uint8_t command, uint16_t sid, const uint8_t *digest)
{
	struct circ_ctrl *q;

	if (c->ctrl_len >= CIRC_CTRL_MAX)
		return false;
	q = &c->ctrl[c->ctrl_len++];
	q->command = command;
	q->stream_id = sid;
	if (digest)
		memcpy(q->digest, digest, SHA1_LEN);
	else
		memset(q->digest, 0, SHA1_LEN);
	return true;
}

void circ_encrypt(struct circ *c, int hop, struct cell *const cells[], size_t n,
		  uint8_t *const digests[])
{
	uint8_t *pl[CIRC_OUT_CHUNK];
	bool virt = c->hs_joined && hop == c->n_hops;

	for (size_t done = 0; done < n; done += CIRC_OUT_CHUNK) {
		size_t m = MIN(n - done, (size_t)CIRC_OUT_CHUNK);

		for (size_t i = 0; i < m; i++)
			pl[i] = cells[done + i]->payload;
		if (!virt) {
			relay_crypto_encrypt_out(&c->crypto, hop, pl, m, digests ? digests + done : NULL);
			continue;
		}
		/* To the service: seal with the virtual hop first, then the
		 * real hops' layers without their digests (hs_hop.h). */
		for (size_t i = 0; i < m; i++) {
			hs_hop_seal_out(&c->hs_hop, pl[i]);
			if (digests && digests[done + i])
				hs_hop_digest(&c->hs_hop, true, digests[done + i]);
		}
		relay_crypto_encrypt_layers(&c->crypto, pl, m);
	}
}

/* Set a filled relay cell's circuit ID and command (RELAY_EARLY while the
 * budget lasts past the first hop, tor-spec 5.6). */
static void cell_frame_relay(struct circ *c, struct cell *cl, uint8_t relay_cmd)
{
	int cmd = relay_early_choose(&c->early, relay_cmd, c->edge_hop);

	cl->circ_id = c->circ_id;
	cl->command = (uint8_t)(cmd < 0 ? CELL_RELAY : cmd);
}

/* Encode queued control messages into out[0..cap); returns how many. */
static size_t fill_ctrl(struct circ *c, struct cell *const out[], size_t cap)
{
	size_t n = MIN((size_t)c->ctrl_len, cap);

	for (size_t i = 0; i < n; i++) {
		const struct circ_ctrl *q = &c->ctrl[i];
		uint8_t *body = out[i]->payload + RELAY_HEADER_LEN;
		ssize_t len = 0;

		if (q->command == RELAY_SENDME && q->stream_id == 0) {
			/* Always v1: every relay since 0.4.1 accepts it and the
			 * consensus minimum is <= 1 (tor-spec 7.3.1). */
			struct relay_sendme sm = { .version = 1 };

			memcpy(sm.digest, q->digest, SHA1_LEN);
			len = relay_sendme_encode(body, RELAY_DATA_MAX, &sm);
		} else if (q->command == RELAY_XON) {
			len = relay_xon_encode(body, RELAY_DATA_MAX, 0);
		} else if (q->command == RELAY_XOFF) {
			len = relay_xoff_encode(body, RELAY_DATA_MAX);
		} /* stream SENDMEs are empty (7.4) */
		BUG_ON(len < 0);
		relay_header_write(out[i]->payload, q->command, q->stream_id, (size_t)len, c->rng);
		cell_frame_relay(c, out[i], q->command);
	}
	memmove(c->ctrl, c->ctrl + n, (c->ctrl_len - n) * sizeof(c->ctrl[0]));
	c->ctrl_len = (uint16_t)(c->ctrl_len - n);
	return n;
}

void circ_flush(struct circ *c, struct cell *const out[], size_t cap, size_t *nout)
{
	size_t n = 0;

	if (c->state != CIRC_ST_CLOSED && c->n_hops > 0) {
		n = fill_ctrl(c, out, MIN(cap, (size_t)CIRC_OUT_CHUNK));
		circ_encrypt(c, c->edge_hop, out, n, NULL);
	}
	*nout = n;
}

/* Open, or a BEGIN awaiting its answer: tor-spec 6.2 lets DATA follow
 * BEGIN before CONNECTED (optimistic data) when the exit supports it,
 * which the caller knows. */
static bool stream_takes_data(const struct circ_stream *s)
{
	return s->state == CIRC_SS_OPEN || (s->state == CIRC_SS_CONNECTING && s->kind == CIRC_STREAM_BEGIN);
}

static bool stream_can_send(const struct circ *c, const struct circ_stream *s)
{
	if (!stream_takes_data(s) || s->xoff_received || c->state == CIRC_ST_CLOSED)
		return false;
	if (c->cc_on)
		return cc_can_send(&c->cc);
	return c->package_window > 0 && s->package_window > 0;
}

bool circ_can_send(const struct circ *c, uint16_t sid)
{
	const struct circ_stream *s = circ_stream_find((struct circ *)c, sid);

	return s && stream_can_send(c, s);
}

static uint32_t rand_below(struct circ *c, uint32_t bound)
{
	uint8_t b[4];
	uint32_t v;

	if (c->rng)
		relay_pad_rng_fill(c->rng, b, sizeof(b));
	else
		crypto_rand(b, sizeof(b));
	memcpy(&v, b, sizeof(v));
	return bound ? v % bound : 0;
}

/* Account one DATA cell sent to the edge hop; return where its running
 * digest must go when a SENDME will ack it (tor-spec 7.3), else NULL. */
static uint8_t *note_data_sent(struct circ *c, struct circ_stream *s, uint64_t now)
{
	struct circ_sendme_rec *r;

	if (c->cc_on) {
		cc_note_sent(&c->cc);
	} else {
		c->package_window--;
		s->package_window--;
	}
	if (++c->n_data_sent % c->sendme_inc != 0)
		return NULL;
	/* The window bounds the ring: 1000/100 entries, or cwnd_max/inc. */
	BUG_ON(c->ring_len >= CIRC_SENDME_RING);
	r = &c->ring[(c->ring_head + c->ring_len++) % CIRC_SENDME_RING];
	r->sent_usec = now;
	return r->digest;
}

/* Write one DATA cell for s with up to len bytes of data; return the count. */
static size_t pack_one(struct circ *c, struct circ_stream *s, struct cell *cl, const uint8_t *data,
		       size_t len)
{
	size_t max = c->rand_countdown == 0 ? CIRC_DATA_RANDOM_MAX : RELAY_DATA_MAX;
	size_t chunk = MIN(len, max);

	if (chunk <= CIRC_DATA_RANDOM_MAX) {
		uint32_t half = MAX(c->sendme_inc / 2, 1u);

		c->rand_countdown = half + rand_below(c, half);
	} else {
		c->rand_countdown--;
	}
	memcpy(cl->payload + RELAY_HEADER_LEN, data, chunk);
	relay_header_write(cl->payload, RELAY_DATA, s->id, chunk, c->rng);
	cell_frame_relay(c, cl, RELAY_DATA);
	return chunk;
}

int circ_stream_data(struct circ *c, uint16_t sid, const uint8_t *data, size_t len,
		     uint64_t now_usec, size_t *taken, struct cell *const out[], size_t out_cap,
		     size_t *nout)
{
	struct circ_stream *s = circ_stream_find(c, sid);
	uint8_t *dig[CIRC_OUT_CHUNK];
	size_t off = 0, k;

	*taken = 0;
	*nout = 0;
	if (!s || !stream_takes_data(s) || c->state == CIRC_ST_CLOSED)
		return -EINVAL;
	out_cap = MIN(out_cap, (size_t)CIRC_OUT_CHUNK);
	k = fill_ctrl(c, out, out_cap);
	for (size_t i = 0; i < k; i++)
		dig[i] = NULL;
	while (k < out_cap && off < len && stream_can_send(c, s)) {
		off += pack_one(c, s, out[k], data + off, len - off);
		dig[k++] = note_data_sent(c, s, now_usec);
	}
	circ_encrypt(c, c->edge_hop, out, k, dig);
	*taken = off;
	*nout = k;
	return 0;
}

/* Take a free stream slot; return it with its new id, or NULL. */
static struct circ_stream *stream_alloc(struct circ *c)
{
	for (unsigned tries = 0; tries < CIRC_STREAMS_MAX; tries++) {
		uint16_t id = c->next_stream_seq++;
		struct circ_stream *s;

		if (id == 0)
			id = c->next_stream_seq++; /* stream ID 0 is the circuit */
		s = &c->streams[id & (CIRC_STREAMS_MAX - 1)];
		if (s->state == CIRC_SS_FREE) {
			memset(s, 0, sizeof(*s));
			s->id = id;
			return s;
		}
	}
	return NULL;
}

int circ_stream_open(struct circ *c, enum circ_stream_kind kind, const char *host,
		     size_t host_len, uint16_t port, uint32_t flags, uint16_t *sid,
		     struct cell *out)
{
	uint8_t *body = out->payload + RELAY_HEADER_LEN;
	struct circ_stream *s;
	ssize_t len = 0;
	uint8_t cmd;

	if (c->state != CIRC_ST_OPEN)
		return -EINVAL;
	if (kind == CIRC_STREAM_BEGIN && host_len == 0 && c->hs_joined) {
		/* To an onion service: an empty address, the port only
		 * (rend-spec-v3 4.2 "the client sends a BEGIN with an empty
		 * address" ; tor writes ":port"). */
		cmd = RELAY_BEGIN;
		len = relay_begin_onion_encode(body, RELAY_DATA_MAX, port, flags);
	} else if (kind == CIRC_STREAM_BEGIN) {
		cmd = RELAY_BEGIN;
		len = relay_begin_encode(body, RELAY_DATA_MAX, host, host_len, port, flags);
	} else if (kind == CIRC_STREAM_RESOLVE) {
		cmd = RELAY_RESOLVE;
		len = relay_resolve_encode(body, RELAY_DATA_MAX, host, host_len);
	} else if (kind == CIRC_STREAM_BEGIN_DIR) {
		cmd = RELAY_BEGIN_DIR; /* empty body (tor-spec 6.2.1) */
	} else {
		return -EINVAL;
	}
	if (len < 0)
		return -EINVAL;
	s = stream_alloc(c);
	if (!s)
		return -EAGAIN;
	s->kind = (uint8_t)kind;
	s->state = kind == CIRC_STREAM_RESOLVE ? CIRC_SS_RESOLVING : CIRC_SS_CONNECTING;
	s->reading = true;
	s->package_window = STREAM_WINDOW_START;
	s->deliver_window = STREAM_WINDOW_START;
	relay_header_write(out->payload, cmd, s->id, (size_t)len, c->rng);
	cell_frame_relay(c, out, cmd);
	circ_encrypt(c, c->edge_hop, &out, 1, NULL);
	*sid = s->id;
	return 0;
}

int circ_stream_end(struct circ *c, uint16_t sid, uint8_t reason, struct cell *out)
{
	struct circ_stream *s = circ_stream_find(c, sid);
	struct relay_end e = { .reason = reason, .ttl = RELAY_TTL_NONE };
	ssize_t len;

	if (!s || c->state == CIRC_ST_CLOSED)
		return -EINVAL;
	len = relay_end_encode(out->payload + RELAY_HEADER_LEN, RELAY_DATA_MAX, &e);
	BUG_ON(len < 0);
	relay_header_write(out->payload, RELAY_END, sid, (size_t)len, c->rng);
	cell_frame_relay(c, out, RELAY_END);
	circ_encrypt(c, c->edge_hop, &out, 1, NULL);
	memset(s, 0, sizeof(*s));
	return 0;
}

int circ_stream_set_reading(struct circ *c, uint16_t sid, bool reading)
{
	struct circ_stream *s = circ_stream_find(c, sid);

	if (!s)
		return -EINVAL;
	if (s->reading == reading)
		return 0;
	s->reading = reading;
	if (c->cc_on)
		return circ_ctrl_push(c, reading ? RELAY_XON : RELAY_XOFF, sid, NULL) ? 0 : -EAGAIN;
	/* Release the stream SENDMEs held back while not reading (7.4). */
	while (reading && s->deliver_window <= STREAM_WINDOW_START - STREAM_WINDOW_INC) {
		if (!circ_ctrl_push(c, RELAY_SENDME, sid, NULL))
			return -EAGAIN;
		s->deliver_window += STREAM_WINDOW_INC;
	}
	return 0;
}
