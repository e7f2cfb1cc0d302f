/* SOCKS sessions (see socks.h). */
#include "app/socks.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/circmgr.h"
#include "app/stream.h"
#include "core/compiler.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/log.h"
#include "net/runtime.h"
#include "proto/socks.h"

#define SOCKS_INBUF 1024              /* a whole request fits (RFC 1929 + request < 800) */
#define CLIENT_SENDQ_HIGH (256u * 1024u) /* stop reading the circuit above this */
/* ... and read it again once no more than this waits: the client has
 * 64 KiB to read while the XON (or the SENDMEs) reach the exit and data
 * comes back, and a client that reads nothing keeps at least this much
 * queued, never a sliver (MaxMemInQueues counts it; test_oom.sh). Not
 * higher: each pause and resume costs an XOFF and an XON, and with 192
 * KiB a slow client's CPU s/GB rose ~8% (perf/ab_gateways many). */
#define CLIENT_SENDQ_LOW (64u * 1024u)
#define PENDING_PAUSE (32u * 1024u) /* client bytes held before the client's receives pause */

enum session_state {
	SESS_HANDSHAKE,  /* reading the SOCKS request */
	SESS_CONNECTING, /* stream opened, waiting for CONNECTED/RESOLVED */
	SESS_OPEN,       /* relaying */
	SESS_DONE,       /* reply sent or stream ended; closing */
};

/* The request and what parsing it needs: ~1.8 KiB that an open stream no
 * longer uses (a gateway holding 10,000 idle streams would keep ~18 MiB of
 * it), so it lives apart and goes once the stream is open. */
struct socks_handshake {
	struct socks_parser parser; /* the request, credentials included */
	size_t inlen;
	uint8_t inbuf[SOCKS_INBUF]; /* an unfinished message */
};

struct socks_session {
	struct conn *conn;
	const struct socks_listener *lst;
	struct stream *stream;
	enum session_state state;
	bool stream_paused;  /* we asked the stream to stop delivering */
	bool client_paused;  /* we stopped reading the client */
	bool moved;          /* handed to another shard once (or tried): never again */
	/* Until the stream is open (SESS_OPEN) or the session ends; NULL after. */
	struct socks_handshake *hs;
	struct timer timeout;  /* the request's part of SocksTimeout */
	uint64_t deadline_ns;  /* accept + SocksTimeout: request and stream both */
	/* Client bytes the stream could not take yet. */
	uint8_t *pending;
	size_t pending_len, pending_cap;
	uint64_t queued_since_ns; /* when the client's send queue last went from empty to not */
};

/* Hand-off counters per shard: written by that shard's worker, read by
 * any thread (metrics), relaxed both ways. One line each: no false
 * sharing between workers. */
struct socks_shard_counters {
	_Atomic uint64_t handed_off;
	_Atomic uint64_t handed_in;
	_Atomic uint64_t handoff_failed;
	_Atomic uint64_t handed_off_keyed;
} CACHE_ALIGNED;
static struct socks_shard_counters shard_counters[SOCKS_MAX_SHARDS];

static void count(_Atomic uint64_t *c)
{
	/* Relaxed: only this shard's worker writes; pairs with socks_stats_read. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

static struct socks_shard_counters *counters_of(struct worker *w)
{
	return &shard_counters[worker_id(w) % SOCKS_MAX_SHARDS];
}

void socks_stats_read(unsigned shard, struct socks_stats *out)
{
	const struct socks_shard_counters *c = &shard_counters[shard % SOCKS_MAX_SHARDS];

	/* Relaxed loads pair with count()'s relaxed stores. */
	out->handed_off = atomic_load_explicit(&c->handed_off, memory_order_relaxed);
	out->handed_in = atomic_load_explicit(&c->handed_in, memory_order_relaxed);
	out->handoff_failed = atomic_load_explicit(&c->handoff_failed, memory_order_relaxed);
	out->handed_off_keyed = atomic_load_explicit(&c->handed_off_keyed, memory_order_relaxed);
}

static _Thread_local uint64_t sessions_open;
static _Thread_local uint64_t session_limit = UINT64_MAX; /* MaxClientConnections, this worker's share */

/* SocksTimeout; written by the main thread (config), read by workers at
 * accept. Relaxed both ways: a session needs some recent value, and it
 * carries no other data with it. */
static _Atomic uint64_t socks_timeout_ns = 120ull * 1000000000ull;

void socks_set_timeout(uint64_t ns)
{
	atomic_store_explicit(&socks_timeout_ns, ns, memory_order_relaxed); /* pairs with socks_accept's load */
}

void socks_set_session_limit(uint64_t per_worker) { session_limit = per_worker; }

uint64_t socks_sessions_open(void) { return sessions_open; }

int socks_listener_init(struct socks_listener *l, unsigned index, const struct config_port *p, char *err,
			size_t errlen)
{
	char *copy, *tok, *save = NULL;

	memset(l, 0, sizeof(*l));
	l->index = index;
	l->isolate_socks_auth = true;
	if (!p || !p->flags)
		return 0;
	copy = strdup(p->flags);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (strcasecmp(tok, "IsolateDestAddr") == 0)
			l->isolate_dest_addr = true;
		else if (strcasecmp(tok, "IsolateDestPort") == 0)
			l->isolate_dest_port = true;
		else if (strcasecmp(tok, "IsolateSOCKSAuth") == 0)
			l->isolate_socks_auth = true;
		else if (strcasecmp(tok, "NoIsolateSOCKSAuth") == 0)
			l->isolate_socks_auth = false;
		else {
			snprintf(err, errlen, "SocksPort %u: unsupported flag \"%s\"", p->port, tok);
			free(copy);
			return -1;
		}
	}
	free(copy);
	return 0;
}

/* The isolation key: a digest of everything that must keep streams apart. */
static void isolation_key(const struct socks_session *s, const struct socks_request *req, struct isolation_key *k)
{
	struct crypto_sha3 h;
	uint8_t tag[8];

	crypto_sha3_256_init(&h);
	memcpy(tag, "sockport", 8);
	crypto_sha3_256_update(&h, tag, sizeof(tag));
	crypto_sha3_256_update(&h, &s->lst->index, sizeof(s->lst->index));
	if (s->lst->isolate_socks_auth && req->auth != SOCKS_AUTH_NONE) {
		uint8_t lens[2] = { req->username_len, req->password_len };
		crypto_sha3_256_update(&h, "auth", 4);
		crypto_sha3_256_update(&h, lens, 2);
		crypto_sha3_256_update(&h, req->username, req->username_len);
		crypto_sha3_256_update(&h, req->password, req->password_len);
	}
	if (s->lst->isolate_dest_addr) {
		crypto_sha3_256_update(&h, "addr", 4);
		crypto_sha3_256_update(&h, &req->dest, sizeof(req->dest));
	}
	if (s->lst->isolate_dest_port) {
		crypto_sha3_256_update(&h, "port", 4);
		crypto_sha3_256_update(&h, &req->port, sizeof(req->port));
	}
	crypto_sha3_256_final(&h, k->digest);
}

static void session_finish(struct socks_session *s, bool flush)
{
	if (s->state == SESS_DONE)
		return;
	s->state = SESS_DONE;
	if (s->stream) {
		stream_close(s->stream);
		s->stream = NULL;
	}
	conn_close(s->conn, 0, flush);
}

static void send_reply(struct socks_session *s, enum socks5_reply code, const struct socks_addr *bound,
		       uint16_t port)
{
	uint8_t buf[SOCKS5_REPLY_ENCODED_MAX];
	size_t n;

	if (s->hs && s->hs->parser.req.version == 4) {
		uint8_t ip[4] = { 0, 0, 0, 0 };
		if (bound && bound->type == SOCKS_ADDR_IPV4)
			memcpy(ip, bound->ip, 4);
		n = socks4_reply_encode(buf, code == SOCKS5_SUCCEEDED ? SOCKS4_GRANTED : SOCKS4_REJECTED, port, ip);
	} else {
		struct socks_addr zero = { .type = SOCKS_ADDR_IPV4 };
		n = socks5_reply_encode(buf, sizeof(buf), code, bound ? bound : &zero, port);
	}
	if (n)
		conn_send(s->conn, buf, n);
}

static void fail(struct socks_session *s, enum socks5_reply code, const char *why)
{
	char dest[SOCKS_ADDR_TEXT_MAX + SOCKS_HOST_MAX] = "?", shown[SOCKS_ADDR_TEXT_MAX + SOCKS_HOST_MAX + 8];
	uint16_t port = 0;

	if (s->hs) { /* always, before the stream is open */
		socks_addr_format(&s->hs->parser.req.dest, dest, sizeof(dest));
		port = s->hs->parser.req.port;
	}
	/* A client's failed request is routine for a gateway: info, not warn.
	 * The destination is the user's: SafeLogging scrubs it. */
	log_info("SOCKS request for %s failed (reply 0x%02x): %s", log_scrub_dest(shown, sizeof(shown), dest, port),
		 code, why);
	send_reply(s, code, NULL, 0);
	session_finish(s, true);
}

/* Wipe (credentials, and raw request bytes in inbuf) and free the
 * request once nothing will read it again. */
static void handshake_free(struct socks_session *s)
{
	if (!s->hs)
		return;
	crypto_wipe(s->hs, sizeof(*s->hs));
	free(s->hs);
	s->hs = NULL;
}

/* --- stream events ----------------------------------------------------------- */

static void ev_connected(void *arg, const struct socks_addr *bound)
{
	struct socks_session *s = arg;

	if (s->state != SESS_CONNECTING)
		return;
	s->state = SESS_OPEN;
	timer_cancel(worker_timers(conn_worker(s->conn)), &s->timeout);
	send_reply(s, SOCKS5_SUCCEEDED, bound, 0);
	/* From here no reply, move or failure report needs the request. */
	handshake_free(s);
}

static void ev_resolved(void *arg, const struct socks_addr *answer, uint32_t ttl)
{
	struct socks_session *s = arg;

	(void)ttl;
	/* The circuit layer frees the stream after on_resolved, as after
	 * on_end: closing it here too was a double free. */
	s->stream = NULL;
	if (s->state != SESS_CONNECTING)
		return;
	send_reply(s, SOCKS5_SUCCEEDED, answer, 0);
	session_finish(s, true);
}

static void ev_data(void *arg, const uint8_t *data, size_t len)
{
	struct socks_session *s = arg;

	if (s->state != SESS_OPEN)
		return;
	if (conn_send_queued(s->conn) == 0) /* the oldest queued byte is this one */
		s->queued_since_ns = worker_now_ns(conn_worker(s->conn));
	if (conn_send(s->conn, data, len) < 0) {
		session_finish(s, false);
		return;
	}
	if (!s->stream_paused && conn_send_queued(s->conn) > CLIENT_SENDQ_HIGH) {
		/* The client reads slower than the circuit delivers: push back. */
		s->stream_paused = true;
		stream_set_reading(s->stream, false);
	}
}

static void flush_pending(struct socks_session *s)
{
	size_t took;

	if (!s->pending_len || !s->stream)
		return;
	took = stream_write(s->stream, s->pending, s->pending_len);
	memmove(s->pending, s->pending + took, s->pending_len - took);
	s->pending_len -= took;
	if (s->pending_len == 0 && s->client_paused) {
		s->client_paused = false;
		conn_resume_recv(s->conn);
	}
}

static void ev_writable(void *arg)
{
	flush_pending(arg);
}

static void ev_end(void *arg, enum socks5_reply code, const char *why)
{
	struct socks_session *s = arg;

	s->stream = NULL; /* gone: no stream_close */
	if (s->state == SESS_CONNECTING) {
		fail(s, code, why);
		return;
	}
	log_debug("stream ended: %s", why);
	session_finish(s, true);
}

static bool session_would_wait(void *sess, const struct isolation_key *iso, const uint8_t *early, size_t early_len);
/* Bytes waiting for the client, and client bytes waiting for the stream
 * (MaxMemInQueues counts what is queued, wherever it lives). */
static size_t ev_queued(void *arg, uint64_t *since_ns)
{
	struct socks_session *s = arg;
	size_t to_client = s->state == SESS_DONE ? 0 : conn_send_queued(s->conn);

	*since_ns = 0;
	if (to_client)
		*since_ns = s->queued_since_ns;
	if (s->pending_len && !*since_ns)
		*since_ns = worker_now_ns(conn_worker(s->conn)); /* age not kept: the youngest */
	return to_client + s->pending_len;
}

static void ev_drop(void *arg)
{
	struct socks_session *s = arg;

	session_finish(s, false); /* queued bytes dropped, stream closed */
}

static const struct stream_events socks_stream_events = {
	.on_connected = ev_connected,
	.on_resolved = ev_resolved,
	.on_data = ev_data,
	.on_writable = ev_writable,
	.on_end = ev_end,
	.on_would_wait = session_would_wait,
	.queued = ev_queued,
	.drop = ev_drop,
};

/* --- client side -------------------------------------------------------------- */

/* Hand client bytes to the stream; keep what it cannot take (bounded). */
static void client_bytes(struct socks_session *s, const uint8_t *data, size_t len)
{
	/* Receives pause once PENDING_PAUSE bytes wait, so at most one more
	 * receive arrives, plus, after a move to another worker, the one
	 * that carried the request (the early bytes, socks_move). */
	const size_t max = PENDING_PAUSE + 2 * conn_recv_size(s->conn);
	size_t took = 0;

	if (!len)
		return;
	if (s->pending_len == 0 && s->stream)
		took = stream_write(s->stream, data, len);
	if (took == len)
		return;
	if (len - took > max - s->pending_len) {
		log_info("SOCKS client overran its buffer; closing");
		session_finish(s, false);
		return;
	}
	if (s->pending_len + len - took > s->pending_cap) {
		size_t cap = MIN(max, MAX(s->pending_len + len - took, 2 * s->pending_cap));
		uint8_t *p = realloc(s->pending, cap);

		if (!p) {
			session_finish(s, false);
			return;
		}
		s->pending = p;
		s->pending_cap = cap;
	}
	memcpy(s->pending + s->pending_len, data + took, len - took);
	s->pending_len += len - took;
	if (!s->client_paused && s->pending_len > PENDING_PAUSE) {
		s->client_paused = true;
		conn_pause_recv(s->conn);
	}
}

/* RESOLVE_PTR asks the exit for an in-addr.arpa / ip6.arpa name (tor-spec
 * 6.4 "For a reverse lookup, the OP sends a RELAY_RESOLVE cell containing
 * an in-addr.arpa address"), not for the address text. Rewrite t->dest
 * (an IPv4 or IPv6 address; the parser guarantees it) into that name. */
static void ptr_name(struct socks_addr *dest)
{
	static const char hex[] = "0123456789abcdef";
	struct socks_addr name;
	int n = 0;

	memset(&name, 0, sizeof(name));
	name.type = SOCKS_ADDR_HOSTNAME;
	if (dest->type == SOCKS_ADDR_IPV4) {
		n = snprintf(name.host, sizeof(name.host), "%u.%u.%u.%u.in-addr.arpa", dest->ip[3], dest->ip[2],
			     dest->ip[1], dest->ip[0]);
	} else {
		for (int i = 15; i >= 0; i--) {
			name.host[n++] = hex[dest->ip[i] & 0xf];
			name.host[n++] = '.';
			name.host[n++] = hex[dest->ip[i] >> 4];
			name.host[n++] = '.';
		}
		memcpy(name.host + n, "ip6.arpa", 9);
		n += 8;
	}
	name.host_len = (uint8_t)n;
	*dest = name;
}

/* True if a RESOLVE for dest needs no exit: dest is an IP address, or a
 * hostname that is IP address text. Tor's client answers those itself
 * (connection_edge.c, "Answering RESOLVE of an IP literal locally"), and
 * the exits of tor 0.4.9 answer such a RELAY_RESOLVE with an error. Sets
 * *ip to the address. */
static bool resolve_is_literal(const struct socks_addr *dest, struct socks_addr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (dest->type != SOCKS_ADDR_HOSTNAME) {
		*ip = *dest;
		return true;
	}
	if (socks_ipv4_parse(dest->host, dest->host_len, ip->ip)) {
		ip->type = SOCKS_ADDR_IPV4;
		return true;
	}
	if (socks_ipv6_parse(dest->host, dest->host_len, ip->ip)) {
		ip->type = SOCKS_ADDR_IPV6;
		return true;
	}
	return false;
}

/* The claim a hand-off to w holds: key_slot >= 0, a circuit reserved for
 * the session's key (circmgr_claim_reserved); else a clean one. */
static void claim_release(struct worker *w, int key_slot)
{
	if (key_slot >= 0)
		circmgr_release_reserved(w, key_slot);
	else
		circmgr_release_claim(w);
}

/* Open the stream for the parsed request; early[0..early_len) are client
 * bytes after it (optimistic data). handed_in: the session arrived from
 * another shard, which claimed one of this shard's circuits for it (the
 * reserved one in key_slot when >= 0). */
static void start_stream(struct socks_session *s, const uint8_t *early, size_t early_len, bool handed_in,
			 int key_slot)
{
	const struct socks_request *req = &s->hs->parser.req;
	struct stream_target t;
	struct socks_addr literal;
	enum socks5_reply code = SOCKS5_GENERAL_FAILURE;
	const char *why = "no route";

	memset(&t, 0, sizeof(t));
	t.kind = req->command == SOCKS_CMD_CONNECT ? STREAM_CONNECT
		 : req->command == SOCKS_CMD_RESOLVE ? STREAM_RESOLVE
						     : STREAM_RESOLVE_PTR;
	t.dest = req->dest;
	t.port = req->port;
	t.deadline_ns = s->deadline_ns;
	t.handed_in = handed_in;
	t.keyed = key_slot >= 0;
	t.key_slot = key_slot >= 0 ? (uint8_t)key_slot : 0;
	s->state = SESS_CONNECTING;
	if (t.kind == STREAM_RESOLVE && resolve_is_literal(&t.dest, &literal)) {
		if (handed_in) /* cannot happen (no stream, no move), but never leak a claim */
			claim_release(conn_worker(s->conn), key_slot);
		ev_resolved(s, &literal, 0);
		return;
	}
	if (t.kind == STREAM_RESOLVE_PTR)
		ptr_name(&t.dest);
	isolation_key(s, req, &t.iso);
	s->stream = stream_open(conn_worker(s->conn), &t, &socks_stream_events, s, &code, &why);
	if (!s->stream) {
		if (handed_in)
			claim_release(conn_worker(s->conn), key_slot);
		fail(s, code, why);
		return;
	}
	/* From here the stream layer keeps the deadline: it retries until
	 * then and ends the stream with the reply for the last error. */
	timer_cancel(worker_timers(conn_worker(s->conn)), &s->timeout);
	/* Bytes after the request: optimistic data, sent right after BEGIN. */
	if (t.kind == STREAM_CONNECT)
		client_bytes(s, early, early_len);
}

/* Send what the parser says for an invalid handshake, then close. */
static void handshake_reject(struct socks_session *s, const struct socks_step *step)
{
	if (step->looks_like_http) {
		size_t n;
		const char *page = socks_http_misuse_reply(&n);
		conn_send(s->conn, page, n);
	} else if (step->reply_len) {
		conn_send(s->conn, step->reply, step->reply_len);
	}
	log_info("bad SOCKS request: %s", step->reason ? step->reason : "invalid");
	session_finish(s, true);
}

/* Run the parser over buf[0..len); return the bytes it used. On a finished
 * request the rest of buf goes to the stream as early data. */
static size_t handshake_parse(struct socks_session *s, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (s->state == SESS_HANDSHAKE) {
		struct socks_step step;
		enum parse_result r = socks_parse(&s->hs->parser, buf + off, len - off, &step);

		if (r == PARSE_NEED_MORE)
			break;
		off += step.consumed;
		if (r == PARSE_INVALID) {
			handshake_reject(s, &step);
			return len;
		}
		if (step.event == SOCKS_EV_REPLY) {
			conn_send(s->conn, step.reply, step.reply_len);
		} else if (step.event == SOCKS_EV_REQUEST) {
			start_stream(s, buf + off, len - off, false, -1);
			return len;
		}
	}
	return off;
}

/* Parse straight from the receive buffer when nothing is held back, so a
 * request followed by optimistic data larger than inbuf in one receive is
 * not mistaken for an oversized request (socks-extensions 5); keep only an
 * unfinished message, which must fit in inbuf. */
static void handshake_input(struct socks_session *s, const uint8_t *data, size_t len)
{
	/* hs outlives this call: only ev_connected (a later cell) and the
	 * session's end (on_closed, after this callback) free it. */
	struct socks_handshake *hs = s->hs;
	size_t used, take = 0;

	if (hs->inlen == 0) {
		used = handshake_parse(s, data, len);
	} else {
		take = MIN(len, sizeof(hs->inbuf) - hs->inlen);
		memcpy(hs->inbuf + hs->inlen, data, take);
		hs->inlen += take;
		used = handshake_parse(s, hs->inbuf, hs->inlen);
		memmove(hs->inbuf, hs->inbuf + used, hs->inlen - used);
		hs->inlen -= used;
		if (s->state == SESS_HANDSHAKE && take == len)
			return;
		data += take;
		len -= take;
		used = 0;
		if (s->state == SESS_HANDSHAKE) {
			/* inbuf is full and its message still incomplete. */
			log_info("SOCKS client sent more than a request before its reply; closing");
			session_finish(s, false);
			return;
		}
	}
	if (s->state == SESS_CONNECTING || s->state == SESS_OPEN) {
		if (hs->inlen == 0)
			client_bytes(s, data + used, len - used);
		return;
	}
	if (s->state != SESS_HANDSHAKE || used == len)
		return;
	if (len - used > sizeof(hs->inbuf)) {
		log_info("SOCKS client sent more than a request before its reply; closing");
		session_finish(s, false);
		return;
	}
	memcpy(hs->inbuf, data + used, len - used);
	hs->inlen = len - used;
}

static void session_recv(struct conn *c, const uint8_t *data, size_t len)
{
	struct socks_session *s = conn_user(c);

	switch (s->state) {
	case SESS_HANDSHAKE:
		handshake_input(s, data, len);
		break;
	case SESS_CONNECTING:
	case SESS_OPEN:
		client_bytes(s, data, len);
		break;
	case SESS_DONE:
		break;
	}
}

/* The client's queue is down to CLIENT_SENDQ_LOW: read the stream again. */
static void session_drained(struct conn *c)
{
	struct socks_session *s = conn_user(c);

	if (s->stream_paused && s->stream) {
		s->stream_paused = false;
		stream_set_reading(s->stream, true);
	}
}

static void session_closed(struct conn *c, int err)
{
	struct socks_session *s = conn_user(c);

	(void)err;
	if (s->stream) {
		stream_close(s->stream);
		s->stream = NULL;
	}
	timer_cancel(worker_timers(conn_worker(c)), &s->timeout);
	handshake_free(s);
	free(s->pending);
	free(s);
	sessions_open--;
}

static void session_timed_out(struct timer *t, void *arg)
{
	struct socks_session *s = arg;

	(void)t;
	if (s->state == SESS_HANDSHAKE) {
		log_info("SOCKS client did not finish its request within SocksTimeout; closing");
		session_finish(s, false);
	}
}

static const struct conn_ops session_ops = {
	.on_recv = session_recv,
	.on_drained = session_drained,
	.drained_mark = CLIENT_SENDQ_LOW,
	.on_closed = session_closed,
};

/* Make the session of c (listener lst, borrowed) with its SocksTimeout
 * deadline and take c's callbacks; on failure close c. Return the session
 * or NULL. Owner shard. */
static struct socks_session *session_new(struct worker *w, struct conn *c, const struct socks_listener *lst,
					 uint64_t deadline_ns)
{
	struct socks_session *s = calloc(1, sizeof(*s));

	if (s)
		s->hs = calloc(1, sizeof(*s->hs));
	if (!s || !s->hs) {
		free(s);
		conn_close(c, -ENOMEM, false);
		return NULL;
	}
	s->conn = c;
	s->lst = lst;
	socks_parser_init(&s->hs->parser);
	timer_init(&s->timeout, session_timed_out, s);
	s->deadline_ns = deadline_ns;
	timer_arm(worker_timers(w), &s->timeout, s->deadline_ns);
	conn_set_ops(c, &session_ops, s);
	sessions_open++;
	return s;
}

/* --- moving a session to another shard (issue 6) ---------------------------------
 *
 * When its new stream would wait for a circuit build here while another
 * shard has a ready clean circuit, the session moves there: the socket
 * with conn_handoff (net/worker.h), everything else in a struct
 * socks_move. Only sessions whose request is complete and whose stream has
 * not been placed move, so what travels is the parsed request (with the
 * credentials that make its isolation key), the listener (its flags and
 * index), the SocksTimeout deadline from the original accept, and the
 * client bytes not yet sent (the stream's optimistic data, then what the
 * session held back). A shard publishing a circuit reserved for the
 * stream's isolation key is preferred (the key's circuit is ready there);
 * failing that, one with a clean circuit any key may take. The reply
 * still owed is the request's: its SOCKS version decides the format. The target resumes it with a new stream;
 * a failed hand-off resumes it here the same way. A session moves at
 * most once. */
struct socks_move {
	const struct socks_listener *lst; /* borrowed: outlives the runtime */
	struct socks_request req;         /* secret: username/password (wiped) */
	uint64_t deadline_ns;             /* worker clock (CLOCK_MONOTONIC, shared) */
	struct worker *from, *to;         /* to: one of its circuits is claimed */
	int key_slot;                     /* >= 0: the claim is to's circuit reserved
					   * for the session's key (that slot) */
	size_t len;
	uint8_t bytes[];                  /* client bytes to send, in order */
};

static void move_free(struct socks_move *m)
{
	crypto_wipe(&m->req, sizeof(m->req));
	free(m);
}

/* Rebuild the session of c from m on the calling worker and open its
 * stream (handed_in: c arrived from m->from). Takes ownership of m. */
static void session_resume(struct worker *w, struct conn *c, struct socks_move *m, bool handed_in)
{
	struct socks_session *s = session_new(w, c, m->lst, m->deadline_ns);

	if (!s) {
		if (handed_in)
			claim_release(w, m->key_slot);
		move_free(m);
		return;
	}
	s->moved = true;
	s->hs->parser.req = m->req;
	if (conn_is_closing(c)) {
		/* A failed hand-off of a client that went away: on_closed follows. */
		if (handed_in)
			claim_release(w, m->key_slot);
		s->state = SESS_DONE;
	} else if (worker_now_ns(w) >= s->deadline_ns) {
		start_stream(s, NULL, 0, handed_in, m->key_slot); /* the stream layer ends it at once (TTL expired) */
	} else {
		start_stream(s, m->bytes, m->len, handed_in, m->key_slot);
	}
	move_free(m);
}

/* conn_handoff's on_arrival: the session's new home. */
static void session_arrived(struct worker *w, struct conn *c, void *arg)
{
	struct socks_move *m = arg;

	count(&counters_of(w)->handed_in);
	log_info("SOCKS session arrived from worker %u", worker_id(m->from));
	session_resume(w, c, m, true);
}

/* conn_handoff's on_failed: the session stays here after all. */
static void session_handoff_failed(struct conn *c, int err, void *arg)
{
	struct socks_move *m = arg;
	struct worker *w = conn_worker(c);

	claim_release(m->to, m->key_slot);
	m->key_slot = -1; /* resumed here: no claim on this shard */
	count(&counters_of(w)->handoff_failed);
	log_info("SOCKS session stays on worker %u: hand-off to worker %u failed: %s", worker_id(w),
		 worker_id(m->to), strerror(-err));
	session_resume(w, c, m, false);
}

/* Callbacks while c belongs to the hand-off: net/ calls none of them
 * (worker.h), these only keep the table complete. */
static void moving_recv(struct conn *c, const uint8_t *data, size_t len)
{
	(void)c, (void)data, (void)len;
}

static void moving_closed(struct conn *c, int err)
{
	(void)c, (void)err;
}

static const struct conn_ops moving_ops = {
	.on_recv = moving_recv,
	.on_closed = moving_closed,
};

/* Claim, on another worker, the circuit reserved for iso (borrowed) when
 * one publishes it (*key_slot >= 0 then), else a ready clean circuit on
 * the one with the most unclaimed (*key_slot -1), and return that worker
 * (NULL: none). Owner shard. */
static struct worker *claim_target(struct worker *self, const struct isolation_key *iso, int *key_slot)
{
	struct runtime *rt = worker_runtime(self);
	unsigned n = runtime_nworkers(rt);

	*key_slot = -1;
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = runtime_worker(rt, i);

		if (w != self && (*key_slot = circmgr_claim_reserved(w, iso)) >= 0)
			return w;
	}

	for (int tries = 0; tries < 4; tries++) {
		struct worker *best = NULL;
		uint64_t most = 0;

		for (unsigned i = 0; i < n; i++) {
			struct worker *w = runtime_worker(rt, i);
			uint64_t a = w == self ? 0 : circmgr_available(w);

			if (a > most) {
				most = a;
				best = w;
			}
		}
		if (!best)
			return NULL;
		if (circmgr_claim_ready(best))
			return best;
	}
	return NULL;
}

/* stream_events.on_would_wait: move the session to a shard with a
 * circuit reserved for iso (borrowed), or else a ready clean circuit.
 * early: the stream's optimistic data (borrowed). */
static bool session_would_wait(void *sess, const struct isolation_key *iso, const uint8_t *early, size_t early_len)
{
	struct socks_session *s = sess;
	struct conn *c = s->conn;
	struct worker *w = conn_worker(c), *to;
	struct socks_move *m;
	int r, key_slot;

	if (s->moved || s->state != SESS_CONNECTING || conn_is_closing(c) || conn_send_queued(c))
		return false;
	to = claim_target(w, iso, &key_slot);
	if (!to)
		return false;
	m = malloc(sizeof(*m) + early_len + s->pending_len);
	if (!m) {
		claim_release(to, key_slot);
		return false;
	}
	m->key_slot = key_slot;
	m->lst = s->lst;
	m->req = s->hs->parser.req;
	m->deadline_ns = s->deadline_ns;
	m->from = w;
	m->to = to;
	m->len = early_len + s->pending_len;
	if (early_len)
		memcpy(m->bytes, early, early_len);
	if (s->pending_len)
		memcpy(m->bytes + early_len, s->pending, s->pending_len);
	conn_set_ops(c, &moving_ops, NULL);
	r = conn_handoff(c, to, session_arrived, session_handoff_failed, m);
	if (r < 0) {
		/* -EBUSY (a reply still being written) and the like: stay. */
		conn_set_ops(c, &session_ops, s);
		claim_release(to, key_slot);
		move_free(m);
		log_debug("SOCKS session not moved to worker %u: %s", worker_id(to), strerror(-r));
		return false;
	}
	count(&counters_of(w)->handed_off);
	if (key_slot >= 0)
		count(&counters_of(w)->handed_off_keyed);
	log_info("SOCKS session moves from worker %u to worker %u (%s)", worker_id(w), worker_id(to),
		 key_slot >= 0 ? "a circuit reserved for its isolation key there" : "a ready circuit there");
	/* What it needs travels in m; the stream is freed by the caller. */
	s->stream = NULL;
	timer_cancel(worker_timers(w), &s->timeout);
	handshake_free(s);
	free(s->pending);
	free(s);
	sessions_open--;
	return true;
}

void socks_accept(struct worker *w, struct conn *c, void *arg)
{
	if (sessions_open >= session_limit) {
		static _Thread_local uint64_t last_log_ns;
		if (worker_now_ns(w) - last_log_ns > 10ull * 1000000000ull) {
			log_warn("MaxClientConnections reached (%llu on this worker): refusing new SOCKS clients",
				 (unsigned long long)sessions_open);
			last_log_ns = worker_now_ns(w);
		}
		conn_close(c, -EMFILE, false);
		return;
	}
	/* One deadline covers the request and, after it, the stream's tries:
	 * tor's SocksTimeout counts from the connection's birth too
	 * (connection_ap_expire_beginning). */
	session_new(w, c, arg, worker_now_ns(w) + atomic_load_explicit(&socks_timeout_ns, memory_order_relaxed));
}
