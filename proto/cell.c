/* Link-level cell framing and cell body codecs (see cell.h). Sans-IO, no
 * allocation: parsers return views into their input. Not for relay cells
 * (relay.c) nor for deciding which cell is allowed when (the channel). */
#include "proto/cell.h"

#include <errno.h>
#include <string.h>

#include "core/bytes.h"
#include "core/compiler.h"

static enum parse_result invalid(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return PARSE_INVALID;
}

const char *cell_command_name(uint8_t command)
{
	static const char *const fixed[] = {
		"PADDING", "CREATE", "CREATED", "RELAY", "DESTROY", "CREATE_FAST",
		"CREATED_FAST", "VERSIONS", "NETINFO", "RELAY_EARLY", "CREATE2",
		"CREATED2", "PADDING_NEGOTIATE",
	};
	static const char *const var[] = {
		"VPADDING", "CERTS", "AUTH_CHALLENGE", "AUTHENTICATE", "AUTHORIZE",
	};

	if (command < ARRAY_LEN(fixed))
		return fixed[command];
	if (command >= 128 && command - 128u < ARRAY_LEN(var))
		return var[command - 128];
	return "UNKNOWN";
}

/* --- Framing ------------------------------------------------------------ */

static enum parse_result frame_var(const uint8_t *buf, size_t len, size_t idlen,
				   struct cell_view *out, size_t *consumed)
{
	size_t hdr = idlen + 3, plen;

	if (len < hdr)
		return PARSE_NEED_MORE;
	plen = be16_load(buf + idlen + 1);
	if (len - hdr < plen)
		return PARSE_NEED_MORE;
	out->circ_id = idlen == 2 ? be16_load(buf) : be32_load(buf);
	out->command = buf[idlen];
	out->is_var = true;
	out->payload = buf + hdr;
	out->payload_len = plen;
	*consumed = hdr + plen;
	return PARSE_OK;
}

enum parse_result cell_frame(const uint8_t *buf, size_t len, int link_proto,
			     struct cell_view *out, size_t *consumed, const char **why)
{
	if (link_proto == CELL_LINK_PROTO_NONE) {
		/* Before VERSIONS: CIRCID_LEN is 2, and the in-protocol handshake
		 * allows only VERSIONS, VPADDING or AUTHORIZE, all
		 * variable-length (tor-spec 3, 4). */
		if (len < 3)
			return PARSE_NEED_MORE;
		if (!cell_command_is_var(buf[2]))
			return invalid(why, "fixed-length cell before VERSIONS");
		return frame_var(buf, len, 2, out, consumed);
	}
	if (link_proto < CELL_LINK_PROTO_MIN || link_proto > CELL_LINK_PROTO_MAX)
		return invalid(why, "unsupported link protocol");
	if (len < CELL_CIRCID_LEN + 1)
		return PARSE_NEED_MORE;
	if (cell_command_is_var(buf[CELL_CIRCID_LEN]))
		return frame_var(buf, len, CELL_CIRCID_LEN, out, consumed);
	if (len < CELL_LEN)
		return PARSE_NEED_MORE;
	out->circ_id = be32_load(buf);
	out->command = buf[CELL_CIRCID_LEN];
	out->is_var = false;
	out->payload = buf + CELL_CIRCID_LEN + 1;
	out->payload_len = CELL_PAYLOAD_LEN;
	*consumed = CELL_LEN;
	return PARSE_OK;
}

void cell_encode(const struct cell *c, uint8_t out[CELL_LEN])
{
	be32_store(out, c->circ_id);
	out[CELL_CIRCID_LEN] = c->command;
	memcpy(out + CELL_CIRCID_LEN + 1, c->payload, CELL_PAYLOAD_LEN);
}

ssize_t cell_fixed_encode(uint8_t *out, size_t cap, uint32_t circ_id, uint8_t command,
			  const uint8_t *body, size_t body_len)
{
	if (body_len > CELL_PAYLOAD_LEN || cell_command_is_var(command))
		return body_len > CELL_PAYLOAD_LEN ? -EMSGSIZE : -EINVAL;
	if (cap < CELL_LEN)
		return -ENOSPC;
	be32_store(out, circ_id);
	out[CELL_CIRCID_LEN] = command;
	if (body_len)
		memmove(out + CELL_CIRCID_LEN + 1, body, body_len);
	memset(out + CELL_CIRCID_LEN + 1 + body_len, 0, CELL_PAYLOAD_LEN - body_len);
	return CELL_LEN;
}

ssize_t cell_var_encode(uint8_t *out, size_t cap, int link_proto, uint32_t circ_id,
			uint8_t command, const uint8_t *body, size_t body_len)
{
	struct wr w = wr_init(out, cap);

	if (!cell_command_is_var(command))
		return -EINVAL;
	if (body_len > CELL_VAR_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (link_proto == CELL_LINK_PROTO_NONE) {
		if (circ_id > 0xffff)
			return -EINVAL;
		wr_u16(&w, (uint16_t)circ_id);
	} else if (link_proto >= CELL_LINK_PROTO_MIN && link_proto <= CELL_LINK_PROTO_MAX) {
		wr_u32(&w, circ_id);
	} else {
		return -EINVAL;
	}
	wr_u8(&w, command);
	wr_u16(&w, (uint16_t)body_len);
	wr_bytes(&w, body, body_len);
	return w.err ? -ENOSPC : (ssize_t)w.len;
}

/* --- VERSIONS ------------------------------------------------------------ */

enum parse_result cell_versions_choose(const uint8_t *body, size_t len, uint16_t *chosen,
				       const char **why)
{
	uint16_t best = 0;

	/* An odd number of bytes is "not well-formed" (tor-spec 4.1). */
	if (len % 2)
		return invalid(why, "VERSIONS body has odd length");
	for (size_t i = 0; i < len; i += 2) {
		uint16_t v = be16_load(body + i);

		if (v >= CELL_LINK_PROTO_MIN && v <= CELL_LINK_PROTO_MAX && v > best)
			best = v;
	}
	if (!best)
		return invalid(why, "no link protocol version in common");
	*chosen = best;
	return PARSE_OK;
}

ssize_t cell_versions_encode(uint8_t *out, size_t cap)
{
	static const uint8_t body[] = { 0, 4, 0, 5 };

	return cell_var_encode(out, cap, CELL_LINK_PROTO_NONE, 0, CELL_VERSIONS, body, sizeof(body));
}

/* --- CERTS --------------------------------------------------------------- */

enum parse_result cell_certs_parse(const uint8_t *body, size_t len, struct cell_certs *out,
				   const char **why)
{
	struct rd r = rd_init(body, len);
	uint8_t n = rd_u8(&r);

	if (r.err)
		return invalid(why, "CERTS body is empty");
	if (n > CELL_CERTS_MAX)
		return invalid(why, "too many certificates in CERTS");
	out->n = 0;
	for (unsigned i = 0; i < n; i++) {
		struct cell_cert_entry *e = &out->e[i];

		e->type = rd_u8(&r);
		e->len = rd_u16(&r);
		e->body = rd_bytes(&r, e->len);
		if (r.err)
			return invalid(why, "CERTS entry runs past the cell");
		if (cell_certs_find(out, e->type))
			return invalid(why, "duplicate certificate type in CERTS");
		out->n = i + 1;
	}
	/* Extra bytes after the entries MUST be ignored (tor-spec 4.2). */
	return PARSE_OK;
}

ssize_t cell_certs_encode(uint8_t *out, size_t cap, const struct cell_certs *c)
{
	struct wr w = wr_init(out, cap);

	if (c->n > CELL_CERTS_MAX)
		return -EINVAL;
	wr_u8(&w, (uint8_t)c->n);
	for (size_t i = 0; i < c->n; i++) {
		wr_u8(&w, c->e[i].type);
		wr_u16(&w, c->e[i].len);
		wr_bytes(&w, c->e[i].body, c->e[i].len);
	}
	return w.err ? -ENOSPC : (ssize_t)w.len;
}

const struct cell_cert_entry *cell_certs_find(const struct cell_certs *c, uint8_t type)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].type == type)
			return &c->e[i];
	return NULL;
}

/* --- AUTH_CHALLENGE ------------------------------------------------------ */

enum parse_result cell_auth_challenge_parse(const uint8_t *body, size_t len,
					    struct cell_auth_challenge *out, const char **why)
{
	struct rd r = rd_init(body, len);

	out->challenge = rd_bytes(&r, CELL_AUTH_CHALLENGE_LEN);
	out->n_methods = rd_u16(&r);
	out->methods = rd_bytes(&r, 2u * out->n_methods);
	if (r.err)
		return invalid(why, "AUTH_CHALLENGE is truncated");
	return PARSE_OK; /* unexpected trailing bytes are ignored (tor-spec 4.3) */
}

bool cell_auth_challenge_has_method(const struct cell_auth_challenge *ac, uint16_t method)
{
	for (unsigned i = 0; i < ac->n_methods; i++)
		if (be16_load(ac->methods + 2 * i) == method)
			return true;
	return false;
}

ssize_t cell_auth_challenge_encode(uint8_t *out, size_t cap, const uint8_t challenge[32],
				   const uint16_t *methods, uint16_t n_methods)
{
	struct wr w = wr_init(out, cap);

	wr_bytes(&w, challenge, CELL_AUTH_CHALLENGE_LEN);
	wr_u16(&w, n_methods);
	for (unsigned i = 0; i < n_methods; i++)
		wr_u16(&w, methods[i]);
	return w.err ? -ENOSPC : (ssize_t)w.len;
}

/* --- NETINFO ------------------------------------------------------------- */

static bool addr_read(struct rd *r, struct cell_addr *a)
{
	const uint8_t *v;

	a->type = rd_u8(r);
	a->len = rd_u8(r);
	v = rd_bytes(r, a->len);
	if (!v)
		return false;
	/* A wrong ALEN for the type means "ignore the address" (tor-spec 4.5). */
	a->known = (a->type == CELL_ADDR_IPV4 && a->len == 4) ||
		   (a->type == CELL_ADDR_IPV6 && a->len == 16);
	memset(a->bytes, 0, sizeof(a->bytes));
	if (a->known)
		memcpy(a->bytes, v, a->len);
	return true;
}

enum parse_result cell_netinfo_parse(const uint8_t *body, size_t len, struct cell_netinfo *out,
				     const char **why)
{
	struct rd r = rd_init(body, len);
	struct cell_addr scratch;

	out->timestamp = rd_u32(&r);
	if (!addr_read(&r, &out->other))
		return invalid(why, "NETINFO other address is truncated");
	out->n_my_addrs = rd_u8(&r);
	if (r.err)
		return invalid(why, "NETINFO is truncated");
	for (unsigned i = 0; i < out->n_my_addrs; i++) {
		struct cell_addr *a = i < CELL_NETINFO_MY_ADDRS_MAX ? &out->my[i] : &scratch;

		if (!addr_read(&r, a))
			return invalid(why, "NETINFO my address is truncated");
	}
	return PARSE_OK; /* trailing bytes are ignored (tor-spec 4.5) */
}

static void addr_write(struct wr *w, const struct cell_addr *a)
{
	size_t n = a->type == CELL_ADDR_IPV4 ? 4 : 16;

	wr_u8(w, a->type);
	wr_u8(w, (uint8_t)n);
	wr_bytes(w, a->bytes, n);
}

ssize_t cell_netinfo_encode(uint8_t *out, size_t cap, uint32_t timestamp,
			    const struct cell_addr *other, const struct cell_addr *my, size_t n_my)
{
	struct wr w = wr_init(out, cap);

	if (n_my > 255 ||
	    (other && other->type != CELL_ADDR_IPV4 && other->type != CELL_ADDR_IPV6))
		return -EINVAL;
	for (size_t i = 0; i < n_my; i++)
		if (my[i].type != CELL_ADDR_IPV4 && my[i].type != CELL_ADDR_IPV6)
			return -EINVAL;
	wr_u32(&w, timestamp);
	if (other) {
		addr_write(&w, other);
	} else {
		/* Unknown: type 0, length 0, which a receiver ignores. */
		wr_u8(&w, 0);
		wr_u8(&w, 0);
	}
	wr_u8(&w, (uint8_t)n_my);
	for (size_t i = 0; i < n_my; i++)
		addr_write(&w, &my[i]);
	return w.err ? -ENOSPC : (ssize_t)w.len;
}

/* --- CREATE2 / CREATED2 -------------------------------------------------- */

enum parse_result cell_create2_parse(const uint8_t *body, size_t len, struct cell_create2 *out,
				     const char **why)
{
	struct rd r = rd_init(body, len);

	out->htype = rd_u16(&r);
	out->hlen = rd_u16(&r);
	if (r.err)
		return invalid(why, "CREATE2 is truncated");
	out->hdata = rd_bytes(&r, out->hlen);
	if (r.err)
		return invalid(why, "CREATE2 HLEN runs past the cell");
	return PARSE_OK;
}

enum parse_result cell_created2_parse(const uint8_t *body, size_t len, struct cell_created2 *out,
				      const char **why)
{
	struct rd r = rd_init(body, len);

	out->hlen = rd_u16(&r);
	if (r.err)
		return invalid(why, "CREATED2 is truncated");
	out->hdata = rd_bytes(&r, out->hlen);
	if (r.err)
		return invalid(why, "CREATED2 HLEN runs past the cell");
	return PARSE_OK;
}

ssize_t cell_create2_encode(uint8_t *out, size_t cap, uint16_t htype, const uint8_t *hdata,
			    size_t hlen)
{
	struct wr w = wr_init(out, cap);

	if (hlen > CELL_PAYLOAD_LEN - 4)
		return -EMSGSIZE;
	wr_u16(&w, htype);
	wr_u16(&w, (uint16_t)hlen);
	wr_bytes(&w, hdata, hlen);
	return w.err ? -ENOSPC : (ssize_t)w.len;
}

ssize_t cell_created2_encode(uint8_t *out, size_t cap, const uint8_t *hdata, size_t hlen)
{
	struct wr w = wr_init(out, cap);

	if (hlen > CELL_PAYLOAD_LEN - 2)
		return -EMSGSIZE;
	wr_u16(&w, (uint16_t)hlen);
	wr_bytes(&w, hdata, hlen);
	return w.err ? -ENOSPC : (ssize_t)w.len;
}

/* --- CREATE_FAST / CREATED_FAST ------------------------------------------ */

ssize_t cell_create_fast_encode(uint8_t *out, size_t cap, const uint8_t x[CELL_CREATE_FAST_LEN])
{
	if (cap < CELL_CREATE_FAST_LEN)
		return -ENOSPC;
	memcpy(out, x, CELL_CREATE_FAST_LEN);
	return CELL_CREATE_FAST_LEN;
}

enum parse_result cell_created_fast_parse(const uint8_t *body, size_t len, const uint8_t **y,
					  const uint8_t **kh, const char **why)
{
	if (len < CELL_CREATED_FAST_LEN)
		return invalid(why, "CREATED_FAST body shorter than Y and KH");
	*y = body;
	*kh = body + CELL_CREATE_FAST_LEN;
	return PARSE_OK;
}

/* --- DESTROY ------------------------------------------------------------- */

enum parse_result cell_destroy_parse(const uint8_t *body, size_t len, uint8_t *reason,
				     const char **why)
{
	if (len < 1)
		return invalid(why, "DESTROY has no reason");
	*reason = body[0];
	return PARSE_OK;
}

ssize_t cell_destroy_encode(uint8_t *out, size_t cap, uint8_t reason)
{
	if (cap < 1)
		return -ENOSPC;
	out[0] = reason;
	return 1;
}

const char *cell_destroy_reason_name(uint8_t reason)
{
	static const char *const names[] = {
		"NONE", "PROTOCOL", "INTERNAL", "REQUESTED", "HIBERNATING",
		"RESOURCELIMIT", "CONNECTFAILED", "OR_IDENTITY", "CHANNEL_CLOSED",
		"FINISHED", "TIMEOUT", "DESTROYED", "NOSUCHSERVICE",
	};

	return reason < ARRAY_LEN(names) ? names[reason] : "UNKNOWN";
}

/* --- PADDING_NEGOTIATE --------------------------------------------------- */

enum parse_result cell_padding_negotiate_parse(const uint8_t *body, size_t len,
					       struct cell_padding_negotiate *out,
					       const char **why)
{
	struct rd r = rd_init(body, len);

	out->version = rd_u8(&r);
	out->command = rd_u8(&r);
	out->ito_low_ms = rd_u16(&r);
	out->ito_high_ms = rd_u16(&r);
	if (r.err)
		return invalid(why, "PADDING_NEGOTIATE is truncated");
	/* Only version 0 is defined; its commands are 1 and 2 (tor-spec 7.2). */
	if (out->version != 0)
		return invalid(why, "unknown PADDING_NEGOTIATE version");
	if (out->command != CELL_PADNEG_STOP && out->command != CELL_PADNEG_START)
		return invalid(why, "unknown PADDING_NEGOTIATE command");
	return PARSE_OK;
}

ssize_t cell_padding_negotiate_encode(uint8_t *out, size_t cap,
				      const struct cell_padding_negotiate *pn)
{
	struct wr w = wr_init(out, cap);

	wr_u8(&w, pn->version);
	wr_u8(&w, pn->command);
	wr_u16(&w, pn->ito_low_ms);
	wr_u16(&w, pn->ito_high_ms);
	return w.err ? -ENOSPC : (ssize_t)w.len;
}
