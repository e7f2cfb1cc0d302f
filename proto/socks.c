/* SOCKS4/4a/5 server-side codec: one incremental parser step per client
 * message, reply encoders and address helpers. See socks.h for the API.
 * Not for sockets or policy: the caller sends replies and decides what a
 * request may reach. */
#include "proto/socks.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/bytes.h"
#include "core/compiler.h"
#include "core/crypto.h"

#define SOCKS_VER_4 0x04
#define SOCKS_VER_5 0x05
#define SOCKS_VER_AUTH 0x01 /* RFC 1929 sub-negotiation version */
#define SOCKS4_HDR_LEN 8    /* VN CD DSTPORT(2) DSTIP(4) */

void socks_parser_init(struct socks_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->state = SOCKS_ST_START;
}

void socks_parser_clear(struct socks_parser *p)
{
	crypto_wipe(p, sizeof(*p));
	p->state = SOCKS_ST_START;
}

static void step_reset(struct socks_step *out)
{
	memset(out, 0, sizeof(*out));
	out->event = SOCKS_EV_NONE;
}

/* Record an error whose reply is raw[0..n) and fail the session. */
static enum parse_result fail_with(struct socks_parser *p, struct socks_step *out,
				   const uint8_t *raw, size_t n, const char *reason)
{
	p->state = SOCKS_ST_FAILED;
	out->event = SOCKS_EV_ERROR;
	out->reason = reason;
	out->consumed = 0;
	if (n)
		memcpy(out->reply, raw, n);
	out->reply_len = (uint8_t)n;
	return PARSE_INVALID;
}

static enum parse_result fail5(struct socks_parser *p, struct socks_step *out,
			       enum socks5_reply rep, const char *reason)
{
	uint8_t r[SOCKS_REPLY_MAX];
	size_t n = socks5_reply_encode(r, sizeof(r), rep, NULL, 0);

	return fail_with(p, out, r, n, reason);
}

static enum parse_result fail4(struct socks_parser *p, struct socks_step *out,
			       const char *reason)
{
	static const uint8_t zero_ip[4];
	uint8_t r[SOCKS4_REPLY_LEN];

	socks4_reply_encode(r, SOCKS4_REJECTED, 0, zero_ip);
	return fail_with(p, out, r, sizeof(r), reason);
}

static enum parse_result reply_ok(struct socks_step *out, size_t consumed,
				  uint8_t b0, uint8_t b1)
{
	out->event = SOCKS_EV_REPLY;
	out->consumed = consumed;
	out->reply[0] = b0;
	out->reply[1] = b1;
	out->reply_len = 2;
	return PARSE_OK;
}

/* RFC 1928 section 3: VER NMETHODS METHODS[NMETHODS]. Like tor, prefer
 * username/password when offered, so it can isolate streams by it. */
static enum parse_result parse_greeting(struct socks_parser *p, const uint8_t *in,
					size_t len, struct socks_step *out)
{
	bool userpass = false, noauth = false;
	size_t n;

	if (len < 2)
		return PARSE_NEED_MORE;
	n = in[1];
	if (len < 2 + n)
		return PARSE_NEED_MORE;
	for (size_t i = 0; i < n; i++) {
		userpass |= in[2 + i] == SOCKS5_METHOD_USERPASS;
		noauth |= in[2 + i] == SOCKS5_METHOD_NO_AUTH;
	}
	p->req.version = SOCKS_VER_5;
	if (userpass) {
		p->state = SOCKS_ST_AUTH;
		return reply_ok(out, 2 + n, SOCKS_VER_5, SOCKS5_METHOD_USERPASS);
	}
	if (noauth) {
		p->req.auth = SOCKS_AUTH_NONE;
		p->state = SOCKS_ST_REQUEST;
		return reply_ok(out, 2 + n, SOCKS_VER_5, SOCKS5_METHOD_NO_AUTH);
	}
	{
		const uint8_t r[2] = { SOCKS_VER_5, SOCKS5_METHOD_NONE_ACCEPTABLE };
		return fail_with(p, out, r, sizeof(r), "socks5: no acceptable auth method");
	}
}

/* RFC 1929 section 2: VER(1) ULEN UNAME PLEN PASSWD. Any credentials are
 * accepted, empty ones too (socks-extensions 1.1: some clients send them). */
static enum parse_result parse_userpass(struct socks_parser *p, const uint8_t *in,
					size_t len, struct socks_step *out)
{
	size_t ulen, plen;

	if (in[0] != SOCKS_VER_AUTH) {
		const uint8_t r[2] = { SOCKS_VER_AUTH, 0x01 };
		return fail_with(p, out, r, sizeof(r), "socks5: bad auth version");
	}
	if (len < 2)
		return PARSE_NEED_MORE;
	ulen = in[1];
	if (len < 3 + ulen)
		return PARSE_NEED_MORE;
	plen = in[2 + ulen];
	if (len < 3 + ulen + plen)
		return PARSE_NEED_MORE;
	memcpy(p->req.username, in + 2, ulen);
	p->req.username_len = (uint8_t)ulen;
	memcpy(p->req.password, in + 3 + ulen, plen);
	p->req.password_len = (uint8_t)plen;
	p->req.auth = SOCKS_AUTH_USERPASS;
	p->got_auth_msg = true;
	p->state = SOCKS_ST_REQUEST;
	return reply_ok(out, 3 + ulen + plen, SOCKS_VER_AUTH, 0x00);
}

static bool cmd_is_supported5(uint8_t cmd)
{
	return cmd == SOCKS_CMD_CONNECT || cmd == SOCKS_CMD_RESOLVE ||
	       cmd == SOCKS_CMD_RESOLVE_PTR;
}

/* Return the length of the address field of a SOCKS5 request whose ATYP
 * is at in[3], 0 if more input is needed to know, -1 if ATYP is unknown. */
static int addr_field_len5(const uint8_t *in, size_t len)
{
	switch (in[3]) {
	case SOCKS_ADDR_IPV4:
		return 4;
	case SOCKS_ADDR_IPV6:
		return 16;
	case SOCKS_ADDR_HOSTNAME:
		return len < 5 ? 0 : 1 + in[4];
	default:
		return -1;
	}
}

/* Copy a hostname into dest after checking it as tor's
 * string_is_valid_dest() does. */
static bool dest_set_host(struct socks_addr *dest, const uint8_t *h, size_t n)
{
	if (n == 0 || n > SOCKS_HOST_MAX || !socks_host_is_valid((const char *)h, n))
		return false;
	dest->type = SOCKS_ADDR_HOSTNAME;
	memcpy(dest->host, h, n);
	dest->host[n] = '\0';
	dest->host_len = (uint8_t)n;
	return true;
}

/* RESOLVE_PTR needs an IP (socks-extensions 2); a hostname that is an IP
 * literal becomes that IP, as tor parses the address text. */
static bool dest_force_ip(struct socks_addr *dest)
{
	uint8_t ip[16];

	if (dest->type != SOCKS_ADDR_HOSTNAME)
		return true;
	if (socks_ipv4_parse(dest->host, dest->host_len, ip)) {
		memset(dest, 0, sizeof(*dest));
		dest->type = SOCKS_ADDR_IPV4;
		memcpy(dest->ip, ip, 4);
		return true;
	}
	if (socks_ipv6_parse(dest->host, dest->host_len, ip)) {
		memset(dest, 0, sizeof(*dest));
		dest->type = SOCKS_ADDR_IPV6;
		memcpy(dest->ip, ip, 16);
		return true;
	}
	return false;
}

/* Check the fixed part VER CMD RSV ATYP as soon as each byte arrives, so
 * a bad request fails without waiting for the rest. */
static enum parse_result check_request_head5(struct socks_parser *p, const uint8_t *in,
					     size_t len, struct socks_step *out)
{
	if (in[0] != SOCKS_VER_5)
		return fail5(p, out, SOCKS5_GENERAL_FAILURE, "socks5: bad request version");
	if (len < 2)
		return PARSE_NEED_MORE;
	if (!cmd_is_supported5(in[1]))
		return fail5(p, out, SOCKS5_COMMAND_NOT_SUPPORTED, "socks5: command not supported");
	if (len < 3)
		return PARSE_NEED_MORE;
	if (in[2] != 0)
		return fail5(p, out, SOCKS5_GENERAL_FAILURE, "socks5: reserved byte not zero");
	if (len < 4)
		return PARSE_NEED_MORE;
	return PARSE_OK;
}

/* RFC 1928 section 4: VER CMD RSV ATYP DST.ADDR DST.PORT. */
static enum parse_result parse_request5(struct socks_parser *p, const uint8_t *in,
					size_t len, struct socks_step *out)
{
	struct socks_request *req = &p->req;
	enum parse_result r = check_request_head5(p, in, len, out);
	int alen;

	if (r != PARSE_OK)
		return r;
	alen = addr_field_len5(in, len);
	if (alen < 0)
		return fail5(p, out, SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED, "socks5: unknown address type");
	if (alen == 0 || len < 4 + (size_t)alen + 2)
		return PARSE_NEED_MORE;
	memset(&req->dest, 0, sizeof(req->dest));
	req->dest.type = in[3];
	if (in[3] == SOCKS_ADDR_HOSTNAME) {
		if (!dest_set_host(&req->dest, in + 5, (size_t)alen - 1))
			return fail5(p, out, SOCKS5_GENERAL_FAILURE, "socks5: malformed hostname");
	} else {
		memcpy(req->dest.ip, in + 4, (size_t)alen);
	}
	req->command = in[1];
	if (req->command == SOCKS_CMD_RESOLVE_PTR && !dest_force_ip(&req->dest))
		return fail5(p, out, SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED,
			     "socks5: RESOLVE_PTR of a non-IP address");
	req->port = be16_load(in + 4 + alen);
	req->version = SOCKS_VER_5;
	p->state = SOCKS_ST_DONE;
	out->event = SOCKS_EV_REQUEST;
	out->consumed = 4 + (size_t)alen + 2;
	return PARSE_OK;
}

/* Return the length of the NUL-terminated string at in[off], -1 if its NUL
 * has not arrived yet, -2 if it is longer than max. */
static long nul_string_len(const uint8_t *in, size_t len, size_t off, size_t max)
{
	size_t avail = len > off ? len - off : 0;
	const uint8_t *z = memchr(in + MIN(off, len), 0, MIN(avail, max + 1));

	if (z)
		return (long)(z - (in + off));
	return avail > max ? -2 : -1;
}

/* SOCKS4: VN CD DSTPORT DSTIP USERID NUL, and 4a: DSTIP 0.0.0.x (x != 0)
 * then HOSTNAME NUL. Tor allows CONNECT and RESOLVE (socks-extensions 2),
 * and rejects a zero IP or, for CONNECT, a zero port (proto_socks.c). */
static enum parse_result parse_socks4(struct socks_parser *p, const uint8_t *in,
				      size_t len, struct socks_step *out)
{
	struct socks_request *req = &p->req;
	long ulen, hlen = 0;
	size_t hoff;
	bool is4a;

	if (len < 2)
		return PARSE_NEED_MORE;
	if (in[1] != SOCKS_CMD_CONNECT && in[1] != SOCKS_CMD_RESOLVE)
		return fail4(p, out, "socks4: command not supported");
	if (len < SOCKS4_HDR_LEN)
		return PARSE_NEED_MORE;
	if (be32_load(in + 4) == 0)
		return fail4(p, out, "socks4: destination IP is zero");
	if (be16_load(in + 2) == 0 && in[1] != SOCKS_CMD_RESOLVE)
		return fail4(p, out, "socks4: port is zero");
	ulen = nul_string_len(in, len, SOCKS4_HDR_LEN, SOCKS_CRED_MAX);
	if (ulen == -2)
		return fail4(p, out, "socks4: user id too long");
	if (ulen < 0)
		return PARSE_NEED_MORE;
	is4a = in[4] == 0 && in[5] == 0 && in[6] == 0;
	hoff = SOCKS4_HDR_LEN + (size_t)ulen + 1;
	if (is4a) {
		hlen = nul_string_len(in, len, hoff, SOCKS_HOST_MAX);
		if (hlen == -2)
			return fail4(p, out, "socks4a: hostname too long");
		if (hlen < 0)
			return PARSE_NEED_MORE;
	}
	memset(&req->dest, 0, sizeof(req->dest));
	if (is4a) {
		if (!dest_set_host(&req->dest, in + hoff, (size_t)hlen))
			return fail4(p, out, "socks4a: malformed hostname");
	} else {
		req->dest.type = SOCKS_ADDR_IPV4;
		memcpy(req->dest.ip, in + 4, 4);
	}
	memcpy(req->username, in + SOCKS4_HDR_LEN, (size_t)ulen);
	req->username_len = (uint8_t)ulen;
	req->auth = ulen ? SOCKS_AUTH_SOCKS4_USER : SOCKS_AUTH_NONE;
	req->version = SOCKS_VER_4;
	req->command = in[1];
	req->port = be16_load(in + 2);
	req->socks4a = is4a;
	p->state = SOCKS_ST_DONE;
	out->event = SOCKS_EV_REQUEST;
	out->consumed = is4a ? hoff + (size_t)hlen + 1 : hoff;
	return PARSE_OK;
}

static enum parse_result parse_start(struct socks_parser *p, const uint8_t *in,
				     size_t len, struct socks_step *out)
{
	switch (in[0]) {
	case SOCKS_VER_5:
		return parse_greeting(p, in, len, out);
	case SOCKS_VER_4:
		return parse_socks4(p, in, len, out);
	case 'G': /* socks-extensions 4: GET, HEAD, POST/PUT, CONNECT */
	case 'H':
	case 'P':
	case 'C':
		out->looks_like_http = true;
		return fail_with(p, out, NULL, 0, "socks: client sent HTTP to a SOCKS port");
	default:
		return fail_with(p, out, NULL, 0, "socks: unknown SOCKS version");
	}
}

enum parse_result socks_parse(struct socks_parser *p, const uint8_t *in, size_t len,
			      struct socks_step *out)
{
	step_reset(out);
	if (p->state == SOCKS_ST_DONE || p->state == SOCKS_ST_FAILED)
		return fail_with(p, out, NULL, 0, "socks: handshake already finished");
	if (len == 0)
		return PARSE_NEED_MORE;
	switch (p->state) {
	case SOCKS_ST_START:
		return parse_start(p, in, len, out);
	case SOCKS_ST_AUTH:
		return parse_userpass(p, in, len, out);
	default:
		/* socks-extensions 1.1: accept an RFC 1929 message even when
		 * no-auth was selected, for broken clients. */
		if (in[0] == SOCKS_VER_AUTH && !p->got_auth_msg)
			return parse_userpass(p, in, len, out);
		return parse_request5(p, in, len, out);
	}
}

size_t socks5_reply_encode(uint8_t *out, size_t cap, enum socks5_reply rep,
			   const struct socks_addr *bound, uint16_t port)
{
	struct wr w = wr_init(out, cap);

	wr_u8(&w, SOCKS_VER_5);
	wr_u8(&w, (uint8_t)rep);
	wr_u8(&w, 0);
	if (!bound) {
		wr_u8(&w, SOCKS_ADDR_IPV4);
		wr_zero(&w, 4);
	} else if (bound->type == SOCKS_ADDR_IPV4) {
		wr_u8(&w, SOCKS_ADDR_IPV4);
		wr_bytes(&w, bound->ip, 4);
	} else if (bound->type == SOCKS_ADDR_IPV6) {
		wr_u8(&w, SOCKS_ADDR_IPV6);
		wr_bytes(&w, bound->ip, 16);
	} else if (bound->type == SOCKS_ADDR_HOSTNAME && bound->host_len > 0) {
		wr_u8(&w, SOCKS_ADDR_HOSTNAME);
		wr_u8(&w, bound->host_len);
		wr_bytes(&w, bound->host, bound->host_len);
	} else {
		return 0;
	}
	wr_u16(&w, port);
	return w.err ? 0 : w.len;
}

size_t socks4_reply_encode(uint8_t out[SOCKS4_REPLY_LEN], enum socks4_reply code,
			   uint16_t port, const uint8_t ipv4[4])
{
	out[0] = 0; /* reply VN is 0 in SOCKS4 */
	out[1] = (uint8_t)code;
	be16_store(out + 2, port);
	memcpy(out + 4, ipv4, 4);
	return SOCKS4_REPLY_LEN;
}

static const char http_misuse_reply[] =
	"HTTP/1.0 501 This is a SOCKS proxy, not an HTTP proxy\r\n"
	"Content-Type: text/plain; charset=us-ascii\r\n"
	"\r\n"
	"This port speaks SOCKS4/SOCKS5, not HTTP.\n"
	"Configure your application to use it as a SOCKS proxy.\n";

const char *socks_http_misuse_reply(size_t *len)
{
	*len = sizeof(http_misuse_reply) - 1;
	return http_misuse_reply;
}

/* --- Address helpers ---------------------------------------------------- */

bool socks_ipv4_parse(const char *s, size_t len, uint8_t out[4])
{
	uint8_t ip[4];
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t start;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		start = i;
		while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		/* No leading zeros: "010" is octal to some parsers. */
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return false;
		ip[part] = (uint8_t)v;
	}
	if (i != len)
		return false;
	memcpy(out, ip, 4);
	return true;
}

bool socks_ipv6_parse(const char *s, size_t len, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN];

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	/* inet_pton wants a C string: refuse what a copy would change. */
	if (len == 0 || len >= sizeof(buf) || memchr(s, 0, len))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1;
}

size_t socks_addr_format(const struct socks_addr *a, char *out, size_t cap)
{
	char buf[SOCKS_HOST_MAX + 1];
	size_t n;

	switch (a->type) {
	case SOCKS_ADDR_IPV4:
		snprintf(buf, sizeof(buf), "%u.%u.%u.%u", a->ip[0], a->ip[1], a->ip[2], a->ip[3]);
		break;
	case SOCKS_ADDR_IPV6:
		if (!inet_ntop(AF_INET6, a->ip, buf, sizeof(buf)))
			return 0;
		break;
	case SOCKS_ADDR_HOSTNAME:
		memcpy(buf, a->host, a->host_len);
		buf[a->host_len] = '\0';
		break;
	default:
		return 0;
	}
	n = strlen(buf);
	if (n == 0 || n >= cap)
		return 0;
	memcpy(out, buf, n + 1);
	return n;
}

static bool host_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Tor's string_is_valid_nonrfc_hostname(): labels of [A-Za-z0-9_-], none
 * empty, none starting with '-' or '_', one trailing dot allowed. */
static bool host_labels_ok(const char *h, size_t len)
{
	size_t start = 0;

	if (h[len - 1] == '.')
		len--;
	if (len == 0)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || h[i] == '.') {
			if (i == start || h[start] == '-' || h[start] == '_')
				return false;
			start = i + 1;
		} else if (!host_char_ok(h[i])) {
			return false;
		}
	}
	return true;
}

bool socks_host_is_valid(const char *host, size_t len)
{
	uint8_t ip[16];

	if (len == 0 || memchr(host, 0, len))
		return false;
	if (host[0] == '[')
		return socks_ipv6_parse(host, len, ip) && host[len - 1] == ']';
	if (socks_ipv4_parse(host, len, ip) || socks_ipv6_parse(host, len, ip))
		return true;
	return host_labels_ok(host, len);
}

bool socks_host_is_onion(const char *host, size_t len)
{
	static const char suffix[] = ".onion";
	const size_t sl = sizeof(suffix) - 1;

	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len <= sl || host[len - sl - 1] == '.')
		return false;
	for (size_t i = 0; i < sl; i++) {
		char c = host[len - sl + i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != suffix[i])
			return false;
	}
	return true;
}

bool socks_host_is_ipv4_literal(const char *host, size_t len, uint8_t out[4])
{
	uint8_t ip[4];

	if (!socks_ipv4_parse(host, len, ip))
		return false;
	if (out)
		memcpy(out, ip, 4);
	return true;
}

void socks_host_lower(char *host, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (host[i] >= 'A' && host[i] <= 'Z')
			host[i] = (char)(host[i] - 'A' + 'a');
}
