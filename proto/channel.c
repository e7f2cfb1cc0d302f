/* The client side of the link handshake (see channel.h). */
#include "proto/channel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/compiler.h"

static enum channel_hs_result hs_fail(struct channel_hs *h, enum channel_hs_error e,
				      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum channel_hs_result hs_fail(struct channel_hs *h, enum channel_hs_error e,
				      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->err, sizeof(h->err), fmt, ap);
	va_end(ap);
	h->state = CHANNEL_HS_FAILED;
	h->error = e;
	return CHANNEL_HS_ERROR;
}

void channel_hs_addr_set(struct cell_addr *a, const uint8_t *bytes, size_t len)
{
	memset(a, 0, sizeof(*a));
	if (len == 4 || len == 16) {
		a->type = len == 4 ? CELL_ADDR_IPV4 : CELL_ADDR_IPV6;
		a->len = (uint8_t)len;
		a->known = true;
		memcpy(a->bytes, bytes, len);
	}
}

void channel_hs_init(struct channel_hs *h, const struct relay_identity_expect *expect,
		     const struct cell_addr *peer_addr)
{
	memset(h, 0, sizeof(*h));
	h->state = CHANNEL_HS_INIT;
	if (expect)
		h->expect = *expect;
	if (peer_addr)
		h->peer_addr = *peer_addr;
}

ssize_t channel_hs_start(struct channel_hs *h, uint8_t *out, size_t cap)
{
	ssize_t n = cell_versions_encode(out, cap);

	if (n >= 0)
		h->state = CHANNEL_HS_WAIT_VERSIONS;
	return n;
}

const char *channel_hs_error(const struct channel_hs *h) { return h->err; }

static bool addr_equal(const struct cell_addr *a, const struct cell_addr *b)
{
	return a->known && b->known && a->type == b->type && a->len == b->len &&
	       memcmp(a->bytes, b->bytes, a->len) == 0;
}

static enum channel_hs_result on_versions(struct channel_hs *h, const struct cell_view *cv)
{
	const char *why = NULL;
	uint16_t chosen;

	if (cell_versions_choose(cv->payload, cv->payload_len, &chosen, &why) != PARSE_OK)
		return hs_fail(h, CHANNEL_HS_ERR_VERSION, "bad VERSIONS cell from relay: %s",
			       why ? why : "invalid");
	h->link_proto = chosen;
	h->state = CHANNEL_HS_WAIT_CERTS;
	return CHANNEL_HS_NEED_MORE;
}

static enum channel_hs_result on_certs(struct channel_hs *h, const struct cell_view *cv,
				       const uint8_t *tls_der, size_t tls_len, time_t now)
{
	char why[CHANNEL_HS_ERR_MAX - 32];

	if (!tls_der || tls_len == 0)
		return hs_fail(h, CHANNEL_HS_ERR_CERTS, "no TLS certificate to check CERTS against");
	if (certs_validate_responder_cell(cv->payload, cv->payload_len, tls_der, tls_len, now,
					  &h->proven, why, sizeof(why)) != PARSE_OK)
		return hs_fail(h, CHANNEL_HS_ERR_CERTS, "CERTS cell rejected: %s", why);
	if (!relay_identity_check_expected(&h->proven, h->expect.has_rsa ? h->expect.rsa_id : NULL,
					   h->expect.has_ed ? h->expect.ed_id : NULL, why,
					   sizeof(why)))
		return hs_fail(h, CHANNEL_HS_ERR_IDENTITY, "%s", why);
	h->state = CHANNEL_HS_WAIT_NETINFO;
	return CHANNEL_HS_NEED_MORE;
}

static enum channel_hs_result on_auth_challenge(struct channel_hs *h, const struct cell_view *cv)
{
	struct cell_auth_challenge ac;
	const char *why = NULL;

	/* tor-spec 4: a client that does not authenticate just sends NETINFO;
	 * we still insist the cell is well-formed and comes once. */
	if (h->got_auth_challenge)
		return hs_fail(h, CHANNEL_HS_ERR_PROTOCOL, "second AUTH_CHALLENGE cell");
	if (cell_auth_challenge_parse(cv->payload, cv->payload_len, &ac, &why) != PARSE_OK)
		return hs_fail(h, CHANNEL_HS_ERR_PROTOCOL, "malformed AUTH_CHALLENGE: %s",
			       why ? why : "invalid");
	h->got_auth_challenge = true;
	return CHANNEL_HS_NEED_MORE;
}

/* Read the relay's NETINFO and append ours to out. */
static enum channel_hs_result on_netinfo(struct channel_hs *h, const struct cell_view *cv,
					 struct wr *out, time_t now)
{
	struct cell_netinfo ni;
	uint8_t body[CELL_PAYLOAD_LEN];
	const char *why = NULL;
	ssize_t blen;

	if (cell_netinfo_parse(cv->payload, cv->payload_len, &ni, &why) != PARSE_OK)
		return hs_fail(h, CHANNEL_HS_ERR_PROTOCOL, "malformed NETINFO: %s",
			       why ? why : "invalid");
	h->peer_time = ni.timestamp;
	h->clock_skew = (int64_t)ni.timestamp - (int64_t)now;
	h->our_addr_seen = ni.other;
	for (size_t i = 0; i < ni.n_my_addrs && i < CELL_NETINFO_MY_ADDRS_MAX; i++)
		if (addr_equal(&ni.my[i], &h->peer_addr))
			h->peer_addr_canonical = true;
	/* tor-spec 4.5: "Clients SHOULD send 0 as their timestamp, to avoid
	 * fingerprinting"; OTHERADDR is the relay's address as we reached it;
	 * a client lists no addresses of its own. */
	blen = cell_netinfo_encode(body, sizeof(body), 0, h->peer_addr.known ? &h->peer_addr : NULL,
				   NULL, 0);
	if (blen < 0 || !wr_room(out, CELL_LEN))
		return hs_fail(h, CHANNEL_HS_ERR_PROTOCOL, "no room for our NETINFO");
	if (cell_fixed_encode(out->p + out->len, out->cap - out->len, 0, CELL_NETINFO, body,
			      (size_t)blen) != CELL_LEN)
		return hs_fail(h, CHANNEL_HS_ERR_PROTOCOL, "cannot encode our NETINFO");
	out->len += CELL_LEN;
	h->state = CHANNEL_HS_OPEN;
	return CHANNEL_HS_DONE;
}

/* Handle one framed cell according to the state (tor-spec 4: only
 * VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO and padding may come). */
static enum channel_hs_result hs_cell(struct channel_hs *h, const struct cell_view *cv,
				      struct wr *out, const uint8_t *tls_der, size_t tls_len,
				      time_t now)
{
	uint8_t cmd = cv->command;

	if (cmd == CELL_VPADDING || (cmd == CELL_PADDING && h->link_proto != 0))
		return CHANNEL_HS_NEED_MORE;
	switch (h->state) {
	case CHANNEL_HS_WAIT_VERSIONS:
		if (cmd == CELL_AUTHORIZE)
			return CHANNEL_HS_NEED_MORE; /* reserved; tor-spec 4 allows it first */
		if (cmd == CELL_VERSIONS)
			return on_versions(h, cv);
		break;
	case CHANNEL_HS_WAIT_CERTS:
		if (cmd == CELL_VERSIONS)
			return CHANNEL_HS_NEED_MORE; /* tor-spec 4.1: later ones are ignored */
		if (cmd == CELL_CERTS)
			return on_certs(h, cv, tls_der, tls_len, now);
		break;
	case CHANNEL_HS_WAIT_NETINFO:
		if (cmd == CELL_VERSIONS)
			return CHANNEL_HS_NEED_MORE;
		if (cmd == CELL_AUTH_CHALLENGE)
			return on_auth_challenge(h, cv);
		if (cmd == CELL_NETINFO)
			return on_netinfo(h, cv, out, now);
		break;
	default:
		break;
	}
	return hs_fail(h, CHANNEL_HS_ERR_PROTOCOL, "unexpected %s cell (command %u) during the "
		       "link handshake", cell_command_name(cmd), cmd);
}

enum channel_hs_result channel_hs_input(struct channel_hs *h, const uint8_t *data, size_t len,
					size_t *consumed, struct wr *out, const uint8_t *tls_der,
					size_t tls_len, time_t now)
{
	size_t off = 0;

	*consumed = 0;
	if (h->state == CHANNEL_HS_FAILED)
		return CHANNEL_HS_ERROR;
	if (h->state == CHANNEL_HS_OPEN)
		return CHANNEL_HS_DONE;
	if (h->state == CHANNEL_HS_INIT)
		return hs_fail(h, CHANNEL_HS_ERR_PROTOCOL, "relay bytes before our VERSIONS");
	while (off < len) {
		struct cell_view cv;
		const char *why = NULL;
		size_t n = 0;
		enum parse_result pr = cell_frame(data + off, len - off, h->link_proto, &cv, &n, &why);
		enum channel_hs_result r;

		if (pr == PARSE_NEED_MORE)
			break;
		if (pr != PARSE_OK)
			return hs_fail(h, h->link_proto ? CHANNEL_HS_ERR_PROTOCOL : CHANNEL_HS_ERR_VERSION,
				       "relay did not send a %s cell: %s",
				       h->link_proto ? "valid" : "VERSIONS", why ? why : "unframeable");
		r = hs_cell(h, &cv, out, tls_der, tls_len, now);
		if (r == CHANNEL_HS_ERROR)
			return r;
		off += n;
		*consumed = off;
		if (r == CHANNEL_HS_DONE)
			return r;
	}
	return CHANNEL_HS_NEED_MORE;
}
