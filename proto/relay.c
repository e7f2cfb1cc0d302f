/* Relay header and relay body codecs, names, and the RELAY_EARLY budget
 * (see relay.h). Sans-IO, no allocation. Not for relay crypto or stream and
 * circuit state. */
#include "proto/relay.h"

#include <errno.h>
#include <string.h>

#include "core/bug.h"
#include "core/bytes.h"
#include "core/compiler.h"
#include "core/crypto.h"

static enum parse_result invalid(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return PARSE_INVALID;
}

static ssize_t wr_result(const struct wr *w)
{
	return w->err ? -ENOSPC : (ssize_t)w->len;
}

/* --- Names --------------------------------------------------------------- */

static const char *const relay_names[] = {
	[RELAY_BEGIN] = "BEGIN",
	[RELAY_DATA] = "DATA",
	[RELAY_END] = "END",
	[RELAY_CONNECTED] = "CONNECTED",
	[RELAY_SENDME] = "SENDME",
	[RELAY_EXTEND] = "EXTEND",
	[RELAY_EXTENDED] = "EXTENDED",
	[RELAY_TRUNCATE] = "TRUNCATE",
	[RELAY_TRUNCATED] = "TRUNCATED",
	[RELAY_DROP] = "DROP",
	[RELAY_RESOLVE] = "RESOLVE",
	[RELAY_RESOLVED] = "RESOLVED",
	[RELAY_BEGIN_DIR] = "BEGIN_DIR",
	[RELAY_EXTEND2] = "EXTEND2",
	[RELAY_EXTENDED2] = "EXTENDED2",
	[RELAY_CONFLUX_LINK] = "CONFLUX_LINK",
	[RELAY_CONFLUX_LINKED] = "CONFLUX_LINKED",
	[RELAY_CONFLUX_LINKED_ACK] = "CONFLUX_LINKED_ACK",
	[RELAY_CONFLUX_SWITCH] = "CONFLUX_SWITCH",
	[RELAY_ESTABLISH_INTRO] = "ESTABLISH_INTRO",
	[RELAY_ESTABLISH_RENDEZVOUS] = "ESTABLISH_RENDEZVOUS",
	[RELAY_INTRODUCE1] = "INTRODUCE1",
	[RELAY_INTRODUCE2] = "INTRODUCE2",
	[RELAY_RENDEZVOUS1] = "RENDEZVOUS1",
	[RELAY_RENDEZVOUS2] = "RENDEZVOUS2",
	[RELAY_INTRO_ESTABLISHED] = "INTRO_ESTABLISHED",
	[RELAY_RENDEZVOUS_ESTABLISHED] = "RENDEZVOUS_ESTABLISHED",
	[RELAY_INTRODUCE_ACK] = "INTRODUCE_ACK",
	[RELAY_PADDING_NEGOTIATE] = "PADDING_NEGOTIATE",
	[RELAY_PADDING_NEGOTIATED] = "PADDING_NEGOTIATED",
	[RELAY_XOFF] = "XOFF",
	[RELAY_XON] = "XON",
};

bool relay_command_is_known(uint8_t command)
{
	return command < ARRAY_LEN(relay_names) && relay_names[command] != NULL;
}

const char *relay_command_name(uint8_t command)
{
	return relay_command_is_known(command) ? relay_names[command] : "UNKNOWN";
}

/* --- Header -------------------------------------------------------------- */

enum parse_result relay_parse(const uint8_t payload[CELL_PAYLOAD_LEN], struct relay_msg *out,
			      const char **why)
{
	out->command = payload[0];
	out->recognized = be16_load(payload + 1);
	out->stream_id = be16_load(payload + 3);
	memcpy(out->digest, payload + RELAY_DIGEST_OFFSET, RELAY_DIGEST_LEN);
	out->length = be16_load(payload + 9);
	if (out->length > RELAY_DATA_MAX)
		return invalid(why, "relay Length exceeds 498");
	out->data = payload + RELAY_HEADER_LEN;
	return PARSE_OK;
}

void relay_pad_rng_init(struct relay_pad_rng *r)
{
	uint8_t key[AES128_KEY_LEN], iv[16];

	crypto_rand(key, sizeof(key));
	crypto_rand(iv, sizeof(iv));
	crypto_aes_ctr_init(&r->ctr, key, iv);
	crypto_wipe(key, sizeof(key));
	r->used = 0;
}

void relay_pad_rng_fill(struct relay_pad_rng *r, uint8_t *out, size_t n)
{
	if (unlikely(r->used >= RELAY_PAD_REKEY)) {
		crypto_aes_ctr_clear(&r->ctr);
		relay_pad_rng_init(r);
	}
	memset(out, 0, n);
	crypto_aes_ctr_xor(&r->ctr, out, n);
	r->used += n;
}

void relay_pad_rng_clear(struct relay_pad_rng *r)
{
	crypto_aes_ctr_clear(&r->ctr);
	r->used = 0;
}

void relay_header_write(uint8_t payload[CELL_PAYLOAD_LEN], uint8_t command, uint16_t stream_id,
			size_t len, struct relay_pad_rng *rng)
{
	size_t pad_at = RELAY_HEADER_LEN + len, zeros, rand_at;

	BUG_ON(len > RELAY_DATA_MAX);
	payload[0] = command;
	be16_store(payload + 1, 0);
	be16_store(payload + 3, stream_id);
	memset(payload + RELAY_DIGEST_OFFSET, 0, RELAY_DIGEST_LEN);
	be16_store(payload + 9, (uint16_t)len);
	/* Padding: four zero bytes, then random bytes (tor-spec 6.1). */
	zeros = MIN((size_t)4, CELL_PAYLOAD_LEN - pad_at);
	memset(payload + pad_at, 0, zeros);
	rand_at = pad_at + zeros;
	if (rand_at == CELL_PAYLOAD_LEN)
		return;
	if (rng)
		relay_pad_rng_fill(rng, payload + rand_at, CELL_PAYLOAD_LEN - rand_at);
	else
		crypto_rand(payload + rand_at, CELL_PAYLOAD_LEN - rand_at);
}

ssize_t relay_encode(uint8_t payload[CELL_PAYLOAD_LEN], uint8_t command, uint16_t stream_id,
		     const uint8_t *data, size_t len, struct relay_pad_rng *rng)
{
	if (len > RELAY_DATA_MAX)
		return -EMSGSIZE;
	if (len)
		memmove(payload + RELAY_HEADER_LEN, data, len);
	relay_header_write(payload, command, stream_id, len, rng);
	return (ssize_t)len;
}

/* --- BEGIN --------------------------------------------------------------- */

/* Parse a decimal port 1..65535 with no sign, no leading zero run past 5
 * digits. */
static bool port_parse(const char *s, size_t n, uint16_t *port)
{
	uint32_t v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* Split "host:port" / "[v6]:port" into out->host and out->port. */
static bool addrport_split(const char *s, size_t n, struct relay_begin *out)
{
	const char *colon = memrchr(s, ':', n);
	size_t hl;

	if (!colon)
		return false;
	hl = (size_t)(colon - s);
	if (!port_parse(colon + 1, n - hl - 1, &out->port))
		return false;
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		out->host = s + 1;
		out->host_len = hl - 2;
		if (memchr(out->host, '[', out->host_len) || memchr(out->host, ']', out->host_len))
			return false;
	} else {
		if (memchr(s, ':', hl) || memchr(s, '[', hl) || memchr(s, ']', hl))
			return false; /* an IPv6 literal must be in brackets */
		out->host = s;
		out->host_len = hl;
	}
	return out->host_len > 0 && out->host_len <= RELAY_HOST_MAX;
}

enum parse_result relay_begin_parse(const uint8_t *data, size_t len, struct relay_begin *out,
				    const char **why)
{
	const uint8_t *nul = memchr(data, 0, len);
	size_t n, rest;

	if (!nul)
		return invalid(why, "BEGIN ADDRPORT is not NUL-terminated");
	n = (size_t)(nul - data);
	if (!addrport_split((const char *)data, n, out))
		return invalid(why, "BEGIN ADDRPORT is malformed");
	rest = len - n - 1;
	/* FLAGS are optional: old clients send none. */
	out->flags = rest >= 4 ? be32_load(nul + 1) : 0;
	return PARSE_OK;
}

ssize_t relay_begin_encode(uint8_t *out, size_t cap, const char *host, size_t host_len,
			   uint16_t port, uint32_t flags)
{
	struct wr w = wr_init(out, cap);
	bool v6 = memchr(host, ':', host_len) != NULL;
	char digits[5];
	size_t nd = 0;

	if (port == 0 || host_len == 0 || host_len > RELAY_HOST_MAX || memchr(host, 0, host_len))
		return -EINVAL;
	for (unsigned v = port; v; v /= 10)
		nd++;
	for (unsigned v = port, i = (unsigned)nd; v; v /= 10)
		digits[--i] = (char)('0' + v % 10);
	if (v6)
		wr_u8(&w, '[');
	wr_bytes(&w, host, host_len);
	if (v6)
		wr_u8(&w, ']');
	wr_u8(&w, ':');
	wr_bytes(&w, digits, nd);
	wr_u8(&w, 0);
	if (flags)
		wr_u32(&w, flags);
	return wr_result(&w);
}

ssize_t relay_begin_onion_encode(uint8_t *out, size_t cap, uint16_t port, uint32_t flags)
{
	struct wr w = wr_init(out, cap);
	char digits[5];
	size_t nd = 0;

	if (port == 0)
		return -EINVAL;
	for (unsigned v = port; v; v /= 10)
		nd++;
	for (unsigned v = port, i = (unsigned)nd; v; v /= 10)
		digits[--i] = (char)('0' + v % 10);
	wr_u8(&w, ':');
	wr_bytes(&w, digits, nd);
	wr_u8(&w, 0);
	if (flags)
		wr_u32(&w, flags);
	return wr_result(&w);
}

/* --- END ----------------------------------------------------------------- */

enum parse_result relay_end_parse(const uint8_t *data, size_t len, struct relay_end *out,
				  const char **why)
{
	(void)why;
	memset(out, 0, sizeof(*out));
	out->ttl = RELAY_TTL_NONE;
	/* An empty END is treated as REASON_MISC (tor-spec 6.3). */
	out->reason = len ? data[0] : RELAY_END_MISC;
	if (out->reason != RELAY_END_EXITPOLICY || len < 5)
		return PARSE_OK;
	/* Address of 4 or 16 bytes, then an optional TTL; any other size
	 * means the address is absent or wrong and is ignored. */
	switch (len - 1) {
	case 4:
	case 8:
		out->addr_type = CELL_ADDR_IPV4;
		memcpy(out->addr, data + 1, 4);
		if (len - 1 == 8)
			out->ttl = be32_load(data + 5);
		break;
	case 16:
	case 20:
		out->addr_type = CELL_ADDR_IPV6;
		memcpy(out->addr, data + 1, 16);
		if (len - 1 == 20)
			out->ttl = be32_load(data + 17);
		break;
	default:
		break;
	}
	return PARSE_OK;
}

ssize_t relay_end_encode(uint8_t *out, size_t cap, const struct relay_end *e)
{
	struct wr w = wr_init(out, cap);

	wr_u8(&w, e->reason);
	if (e->reason == RELAY_END_EXITPOLICY && e->addr_type) {
		if (e->addr_type != CELL_ADDR_IPV4 && e->addr_type != CELL_ADDR_IPV6)
			return -EINVAL;
		wr_bytes(&w, e->addr, e->addr_type == CELL_ADDR_IPV4 ? 4 : 16);
		wr_u32(&w, e->ttl);
	}
	return wr_result(&w);
}

static const char *const end_names[][2] = {
	[RELAY_END_MISC] = { "MISC", "misc error" },
	[RELAY_END_RESOLVEFAILED] = { "RESOLVEFAILED", "could not resolve hostname" },
	[RELAY_END_CONNECTREFUSED] = { "CONNECTREFUSED", "connection refused" },
	[RELAY_END_EXITPOLICY] = { "EXITPOLICY", "exit policy refused" },
	[RELAY_END_DESTROY] = { "DESTROY", "circuit destroyed" },
	[RELAY_END_DONE] = { "DONE", "closed normally" },
	[RELAY_END_TIMEOUT] = { "TIMEOUT", "connection timed out" },
	[RELAY_END_NOROUTE] = { "NOROUTE", "no route to host" },
	[RELAY_END_HIBERNATING] = { "HIBERNATING", "relay hibernating" },
	[RELAY_END_INTERNAL] = { "INTERNAL", "internal error at relay" },
	[RELAY_END_RESOURCELIMIT] = { "RESOURCELIMIT", "relay out of resources" },
	[RELAY_END_CONNRESET] = { "CONNRESET", "connection reset" },
	[RELAY_END_TORPROTOCOL] = { "TORPROTOCOL", "tor protocol violation" },
	[RELAY_END_NOTDIRECTORY] = { "NOTDIRECTORY", "relay is not a directory" },
};

const char *relay_end_reason_name(uint8_t reason)
{
	if (reason < ARRAY_LEN(end_names) && end_names[reason][0])
		return end_names[reason][0];
	return "UNKNOWN";
}

const char *relay_end_reason_text(uint8_t reason)
{
	if (reason < ARRAY_LEN(end_names) && end_names[reason][1])
		return end_names[reason][1];
	return "unknown reason";
}

/* --- CONNECTED ----------------------------------------------------------- */

enum parse_result relay_connected_parse(const uint8_t *data, size_t len,
					struct relay_connected *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return PARSE_OK;
	if (len < 4)
		return invalid(why, "CONNECTED is truncated");
	if (be32_load(data) != 0) {
		/* IPv4 form; like tor, accept a missing TTL. */
		out->addr_type = CELL_ADDR_IPV4;
		memcpy(out->addr, data, 4);
		out->ttl = len >= 8 ? be32_load(data + 4) : RELAY_TTL_NONE;
		return PARSE_OK;
	}
	/* Four zero bytes, type 6, IPv6 address, TTL (tor-spec 6.2). */
	if (len < 25)
		return invalid(why, "CONNECTED IPv6 form is truncated");
	if (data[4] != CELL_ADDR_IPV6)
		return invalid(why, "CONNECTED has an unknown address type");
	out->addr_type = CELL_ADDR_IPV6;
	memcpy(out->addr, data + 5, 16);
	out->ttl = be32_load(data + 21);
	return PARSE_OK;
}

ssize_t relay_connected_encode(uint8_t *out, size_t cap, const struct relay_connected *c)
{
	struct wr w = wr_init(out, cap);

	if (c->addr_type == CELL_ADDR_IPV4) {
		if (be32_load(c->addr) == 0)
			return -EINVAL; /* 0.0.0.0 would read as the IPv6 form */
		wr_bytes(&w, c->addr, 4);
	} else if (c->addr_type == CELL_ADDR_IPV6) {
		wr_u32(&w, 0);
		wr_u8(&w, CELL_ADDR_IPV6);
		wr_bytes(&w, c->addr, 16);
	} else if (c->addr_type == 0) {
		return 0;
	} else {
		return -EINVAL;
	}
	wr_u32(&w, c->ttl);
	return wr_result(&w);
}

/* --- SENDME -------------------------------------------------------------- */

enum parse_result relay_sendme_parse(const uint8_t *data, size_t len, struct relay_sendme *out,
				     const char **why)
{
	struct rd r = rd_init(data, len);
	uint16_t dlen;
	const uint8_t *d;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return PARSE_OK; /* an empty body is a version 0 SENDME */
	out->version = rd_u8(&r);
	if (out->version == 0)
		return PARSE_OK; /* "the rest of the payload should be ignored" */
	if (out->version != 1)
		return invalid(why, "unknown SENDME version");
	dlen = rd_u16(&r);
	d = rd_bytes(&r, dlen);
	if (!d)
		return invalid(why, "SENDME DATA_LEN runs past the body");
	/* Fewer than 20 bytes: close the circuit; more: use the first 20
	 * (tor-spec 7.3.1). */
	if (dlen < RELAY_SENDME_DIGEST_LEN)
		return invalid(why, "SENDME v1 digest shorter than 20 bytes");
	memcpy(out->digest, d, RELAY_SENDME_DIGEST_LEN);
	return PARSE_OK;
}

ssize_t relay_sendme_encode(uint8_t *out, size_t cap, const struct relay_sendme *s)
{
	struct wr w = wr_init(out, cap);

	if (s->version == 0)
		return 0;
	if (s->version != 1)
		return -EINVAL;
	wr_u8(&w, 1);
	wr_u16(&w, RELAY_SENDME_DIGEST_LEN);
	wr_bytes(&w, s->digest, RELAY_SENDME_DIGEST_LEN);
	return wr_result(&w);
}

/* --- EXTEND2 / EXTENDED2 / TRUNCATED ------------------------------------- */

/* Return the fixed length of a known link specifier type, or -1. */
static int linkspec_fixed_len(uint8_t type)
{
	switch (type) {
	case RELAY_LS_IPV4:
		return 6;
	case RELAY_LS_IPV6:
		return 18;
	case RELAY_LS_LEGACY_ID:
		return 20;
	case RELAY_LS_ED25519_ID:
		return 32;
	default:
		return -1;
	}
}

void relay_linkspec_set(struct relay_linkspec *ls, uint8_t type, const uint8_t *value, uint8_t len)
{
	ls->type = type;
	ls->len = len;
	ls->body = value;
}

static enum parse_result linkspecs_read(struct rd *r, struct relay_extend2 *out, const char **why)
{
	unsigned n_legacy = 0, n_ed = 0;

	out->n_spec = rd_u8(r);
	if (out->n_spec > RELAY_LINKSPECS_MAX)
		return invalid(why, "too many link specifiers");
	for (unsigned i = 0; i < out->n_spec; i++) {
		struct relay_linkspec *ls = &out->spec[i];
		int want;

		ls->type = rd_u8(r);
		ls->len = rd_u8(r);
		ls->body = rd_bytes(r, ls->len);
		if (r->err)
			return invalid(why, "link specifier runs past the body");
		want = linkspec_fixed_len(ls->type);
		if (want >= 0 && ls->len != want)
			return invalid(why, "link specifier length does not match its type");
		n_legacy += ls->type == RELAY_LS_LEGACY_ID;
		n_ed += ls->type == RELAY_LS_ED25519_ID;
	}
	/* At most one identity of each kind (tor-spec 5.1.2). */
	if (n_legacy > 1 || n_ed > 1)
		return invalid(why, "duplicate identity link specifier");
	return PARSE_OK;
}

enum parse_result relay_extend2_parse(const uint8_t *data, size_t len, struct relay_extend2 *out,
				      const char **why)
{
	struct rd r = rd_init(data, len);
	enum parse_result res = linkspecs_read(&r, out, why);

	if (res != PARSE_OK)
		return r.err ? invalid(why, "EXTEND2 is truncated") : res;
	out->htype = rd_u16(&r);
	out->hlen = rd_u16(&r);
	if (r.err)
		return invalid(why, "EXTEND2 is truncated");
	out->hdata = rd_bytes(&r, out->hlen);
	if (r.err)
		return invalid(why, "EXTEND2 HLEN runs past the body");
	return PARSE_OK;
}

ssize_t relay_extend2_encode(uint8_t *out, size_t cap, const struct relay_extend2 *e)
{
	struct wr w = wr_init(out, cap);

	if (e->n_spec > RELAY_LINKSPECS_MAX)
		return -EINVAL;
	wr_u8(&w, e->n_spec);
	for (unsigned i = 0; i < e->n_spec; i++) {
		const struct relay_linkspec *ls = &e->spec[i];
		int want = linkspec_fixed_len(ls->type);

		if (want >= 0 && ls->len != want)
			return -EINVAL;
		wr_u8(&w, ls->type);
		wr_u8(&w, ls->len);
		wr_bytes(&w, ls->body, ls->len);
	}
	wr_u16(&w, e->htype);
	wr_u16(&w, e->hlen);
	wr_bytes(&w, e->hdata, e->hlen);
	return wr_result(&w);
}

enum parse_result relay_extended2_parse(const uint8_t *data, size_t len,
					struct cell_created2 *out, const char **why)
{
	return cell_created2_parse(data, len, out, why);
}

enum parse_result relay_truncated_parse(const uint8_t *data, size_t len, uint8_t *reason,
					const char **why)
{
	(void)why;
	*reason = len ? data[0] : CELL_DESTROY_NONE;
	return PARSE_OK;
}

/* --- RESOLVE / RESOLVED -------------------------------------------------- */

enum parse_result relay_resolve_parse(const uint8_t *data, size_t len, const char **name,
				      size_t *name_len, const char **why)
{
	const uint8_t *nul = memchr(data, 0, len);

	if (!nul)
		return invalid(why, "RESOLVE hostname is not NUL-terminated");
	if (nul == data)
		return invalid(why, "RESOLVE hostname is empty");
	*name = (const char *)data;
	*name_len = (size_t)(nul - data);
	return PARSE_OK;
}

ssize_t relay_resolve_encode(uint8_t *out, size_t cap, const char *name, size_t name_len)
{
	struct wr w = wr_init(out, cap);

	if (name_len == 0 || memchr(name, 0, name_len))
		return -EINVAL;
	wr_bytes(&w, name, name_len);
	wr_u8(&w, 0);
	return wr_result(&w);
}

static bool resolved_type_is_error(uint8_t type)
{
	return type == RELAY_RESOLVED_ERROR_TRANSIENT || type == RELAY_RESOLVED_ERROR_NONTRANSIENT;
}

enum parse_result relay_resolved_parse(const uint8_t *data, size_t len,
				       struct relay_resolved_answer *out, size_t max,
				       size_t *n_total, const char **why)
{
	struct rd r = rd_init(data, len);
	size_t n = 0;
	bool error = false;

	while (rd_left(&r) > 0) {
		struct relay_resolved_answer a;

		a.type = rd_u8(&r);
		a.len = rd_u8(&r);
		a.value = rd_bytes(&r, a.len);
		a.ttl = rd_u32(&r);
		if (r.err)
			return invalid(why, "RESOLVED answer is truncated");
		if ((a.type == RELAY_RESOLVED_IPV4 && a.len != 4) ||
		    (a.type == RELAY_RESOLVED_IPV6 && a.len != 16))
			return invalid(why, "RESOLVED address has the wrong length");
		/* Hostnames are "not NUL-terminated" (tor-spec 6.4): callers may
		 * treat them as strings, so refuse empty ones and embedded NULs. */
		if (a.type == RELAY_RESOLVED_HOSTNAME && (a.len == 0 || memchr(a.value, 0, a.len)))
			return invalid(why, "RESOLVED hostname is empty or has a NUL");
		error |= resolved_type_is_error(a.type);
		if (n < max)
			out[n] = a;
		n++;
	}
	/* "If any answer has a type of 'Error', then no other answer may be
	 * given" (tor-spec 6.4). */
	if (error && n > 1)
		return invalid(why, "RESOLVED mixes an error with other answers");
	*n_total = n;
	return PARSE_OK;
}

ssize_t relay_resolved_encode(uint8_t *out, size_t cap, const struct relay_resolved_answer *a,
			      size_t n)
{
	struct wr w = wr_init(out, cap);

	for (size_t i = 0; i < n; i++) {
		wr_u8(&w, a[i].type);
		wr_u8(&w, a[i].len);
		wr_bytes(&w, a[i].value, a[i].len);
		wr_u32(&w, a[i].ttl);
	}
	return wr_result(&w);
}

/* --- XOFF / XON ---------------------------------------------------------- */

enum parse_result relay_xoff_parse(const uint8_t *data, size_t len, const char **why)
{
	if (len < 1)
		return invalid(why, "XOFF is truncated");
	/* Unrecognized versions are a protocol violation (prop 324, 4.1). */
	if (data[0] != 0)
		return invalid(why, "unknown XOFF version");
	return PARSE_OK;
}

ssize_t relay_xoff_encode(uint8_t *out, size_t cap)
{
	if (cap < 1)
		return -ENOSPC;
	out[0] = 0;
	return 1;
}

enum parse_result relay_xon_parse(const uint8_t *data, size_t len, struct relay_xon *out,
				  const char **why)
{
	struct rd r = rd_init(data, len);

	out->version = rd_u8(&r);
	out->kbps_ewma = rd_u32(&r);
	if (r.err)
		return invalid(why, "XON is truncated");
	if (out->version != 0)
		return invalid(why, "unknown XON version");
	return PARSE_OK;
}

ssize_t relay_xon_encode(uint8_t *out, size_t cap, uint32_t kbps_ewma)
{
	struct wr w = wr_init(out, cap);

	wr_u8(&w, 0);
	wr_u32(&w, kbps_ewma);
	return wr_result(&w);
}

/* --- RELAY_EARLY budget -------------------------------------------------- */

int relay_early_choose(struct relay_early_budget *b, uint8_t relay_command, unsigned hop_index)
{
	bool extend = relay_command == RELAY_EXTEND || relay_command == RELAY_EXTEND2;

	if (relay_early_has_budget(b) && (extend || hop_index > 0)) {
		b->sent++;
		return CELL_RELAY_EARLY;
	}
	/* Clients MUST send EXTEND2 only in RELAY_EARLY (tor-spec 5.6). */
	return extend ? -ENOSPC : CELL_RELAY;
}

/* --- Onion-service framing ----------------------------------------------- */

enum parse_result relay_establish_rendezvous_parse(const uint8_t *data, size_t len,
						   const uint8_t **cookie, const char **why)
{
	if (len < RELAY_REND_COOKIE_LEN)
		return invalid(why, "ESTABLISH_RENDEZVOUS cookie is truncated");
	*cookie = data; /* extra bytes MUST be ignored (rend-spec-v3 4.1) */
	return PARSE_OK;
}

ssize_t relay_establish_rendezvous_encode(uint8_t *out, size_t cap,
					  const uint8_t cookie[RELAY_REND_COOKIE_LEN])
{
	if (cap < RELAY_REND_COOKIE_LEN)
		return -ENOSPC;
	memcpy(out, cookie, RELAY_REND_COOKIE_LEN);
	return RELAY_REND_COOKIE_LEN;
}

/* Read N_EXTENSIONS and the (type, len, body) entries (rend-spec-v3 3.1.1). */
static enum parse_result exts_read(struct rd *r, struct relay_exts *x, const char **why)
{
	x->n = rd_u8(r);
	if (r->err)
		return invalid(why, "extension count is missing");
	if (x->n > RELAY_EXTS_MAX)
		return invalid(why, "too many extensions");
	for (unsigned i = 0; i < x->n; i++) {
		x->e[i].type = rd_u8(r);
		x->e[i].len = rd_u8(r);
		x->e[i].body = rd_bytes(r, x->e[i].len);
		if (r->err)
			return invalid(why, "extension runs past the body");
	}
	return PARSE_OK;
}

static bool exts_write(struct wr *w, const struct relay_exts *x)
{
	if (x->n > RELAY_EXTS_MAX)
		return false;
	wr_u8(w, x->n);
	for (unsigned i = 0; i < x->n; i++) {
		wr_u8(w, x->e[i].type);
		wr_u8(w, x->e[i].len);
		wr_bytes(w, x->e[i].body, x->e[i].len);
	}
	return true;
}

enum parse_result relay_introduce1_parse(const uint8_t *data, size_t len,
					 struct relay_introduce1 *out, const char **why)
{
	struct rd r = rd_init(data, len);
	enum parse_result res;

	out->legacy_key_id = rd_bytes(&r, RELAY_LEGACY_KEY_ID_LEN);
	out->auth_key_type = rd_u8(&r);
	out->auth_key_len = rd_u16(&r);
	out->auth_key = rd_bytes(&r, out->auth_key_len);
	if (r.err)
		return invalid(why, "INTRODUCE1 is truncated");
	res = exts_read(&r, &out->exts, why);
	if (res != PARSE_OK)
		return res;
	out->encrypted = r.p;
	out->encrypted_len = rd_left(&r);
	return PARSE_OK;
}

ssize_t relay_introduce1_encode(uint8_t *out, size_t cap, const struct relay_introduce1 *in)
{
	struct wr w = wr_init(out, cap);
	static const uint8_t zero_id[RELAY_LEGACY_KEY_ID_LEN];

	/* New-style cells carry 20 zero bytes here (rend-spec-v3 3.2.1). */
	wr_bytes(&w, in->legacy_key_id ? in->legacy_key_id : zero_id, RELAY_LEGACY_KEY_ID_LEN);
	wr_u8(&w, in->auth_key_type);
	wr_u16(&w, in->auth_key_len);
	wr_bytes(&w, in->auth_key, in->auth_key_len);
	if (!exts_write(&w, &in->exts))
		return -EINVAL;
	wr_bytes(&w, in->encrypted, in->encrypted_len);
	return wr_result(&w);
}

enum parse_result relay_introduce_ack_parse(const uint8_t *data, size_t len,
					    struct relay_introduce_ack *out, const char **why)
{
	struct rd r = rd_init(data, len);

	out->status = rd_u16(&r);
	if (r.err)
		return invalid(why, "INTRODUCE_ACK is truncated");
	return exts_read(&r, &out->exts, why);
}

ssize_t relay_introduce_ack_encode(uint8_t *out, size_t cap, const struct relay_introduce_ack *a)
{
	struct wr w = wr_init(out, cap);

	wr_u16(&w, a->status);
	if (!exts_write(&w, &a->exts))
		return -EINVAL;
	return wr_result(&w);
}

enum parse_result relay_rendezvous2_parse(const uint8_t *data, size_t len,
					  struct relay_rendezvous2 *out, const char **why)
{
	/* HANDSHAKE_INFO of the hs-ntor handshake: SERVER_PK, AUTH
	 * (rend-spec-v3 4.2). */
	if (len < RELAY_RENDEZVOUS2_MIN)
		return invalid(why, "RENDEZVOUS2 handshake info is truncated");
	out->server_pk = data;
	out->auth = data + 32;
	out->handshake_info = data;
	out->handshake_info_len = len;
	return PARSE_OK;
}

ssize_t relay_rendezvous2_encode(uint8_t *out, size_t cap, const uint8_t *handshake_info,
				 size_t len)
{
	if (len > RELAY_DATA_MAX)
		return -EMSGSIZE;
	if (cap < len)
		return -ENOSPC;
	memcpy(out, handshake_info, len);
	return (ssize_t)len;
}
