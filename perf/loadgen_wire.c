/* SOCKS5 client messages and HTTP/1.0 response heads for the load generator
 * (see loadgen_wire.h). Not for the gateway's SOCKS server (proto/socks.c). */
#include "perf/loadgen_wire.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include "core/bytes.h"

size_t lg_socks_greeting(uint8_t *out, uint8_t method)
{
	out[0] = 5;
	out[1] = 1;
	out[2] = method;
	return 3;
}

enum parse_result lg_socks_method_parse(const uint8_t *in, size_t len,
					uint8_t *method, size_t *used)
{
	if (len >= 1 && in[0] != 5)
		return PARSE_INVALID;
	if (len < 2)
		return PARSE_NEED_MORE;
	*method = in[1];
	*used = 2;
	return PARSE_OK;
}

size_t lg_socks_auth(uint8_t *out, size_t cap, const char *user, const char *pass)
{
	size_t ul = strlen(user), pl = strlen(pass);

	if (ul > 255 || pl > 255 || cap < 3 + ul + pl)
		return 0;
	out[0] = 1;            /* RFC 1929 subnegotiation version */
	out[1] = (uint8_t)ul;
	memcpy(out + 2, user, ul);
	out[2 + ul] = (uint8_t)pl;
	memcpy(out + 3 + ul, pass, pl);
	return 3 + ul + pl;
}

enum parse_result lg_socks_auth_parse(const uint8_t *in, size_t len, bool *ok, size_t *used)
{
	if (len >= 1 && in[0] != 1)
		return PARSE_INVALID;
	if (len < 2)
		return PARSE_NEED_MORE;
	*ok = in[1] == 0;
	*used = 2;
	return PARSE_OK;
}

size_t lg_socks_connect(uint8_t *out, size_t cap, const char *host, uint16_t port, bool as_ip)
{
	struct wr w = wr_init(out, cap);
	struct in_addr a;
	size_t hl = strlen(host);

	wr_u8(&w, 5);
	wr_u8(&w, 1);          /* CONNECT */
	wr_u8(&w, 0);
	if (as_ip && inet_pton(AF_INET, host, &a) == 1) {
		wr_u8(&w, 1);
		wr_bytes(&w, &a.s_addr, 4);
	} else {
		if (hl == 0 || hl > 255)
			return 0;
		wr_u8(&w, 3);
		wr_u8(&w, (uint8_t)hl);
		wr_bytes(&w, host, hl);
	}
	wr_u16(&w, port);
	return w.err ? 0 : w.len;
}

enum parse_result lg_socks_reply_parse(const uint8_t *in, size_t len, uint8_t *rep, size_t *used)
{
	size_t addr_len;

	if (len >= 1 && in[0] != 5)
		return PARSE_INVALID;
	if (len >= 3 && in[2] != 0)
		return PARSE_INVALID;
	if (len < 5)
		return PARSE_NEED_MORE;
	switch (in[3]) {
	case 1: addr_len = 4; break;
	case 3: addr_len = 1 + (size_t)in[4]; break;
	case 4: addr_len = 16; break;
	default: return PARSE_INVALID;
	}
	if (len < 4 + addr_len + 2)
		return PARSE_NEED_MORE;
	*rep = in[1];
	*used = 4 + addr_len + 2;
	return PARSE_OK;
}

/* Find "\r\n\r\n" in in[0..len); return the offset after it, or 0. */
static size_t http_head_end(const uint8_t *in, size_t len)
{
	size_t i;

	for (i = 3; i < len; i++) {
		if (in[i] == '\n' && in[i - 1] == '\r' && in[i - 2] == '\n' && in[i - 3] == '\r')
			return i + 1;
	}
	return 0;
}

/* Parse "HTTP/1.x SSS" at the start of the head; return the status or -1. */
static int http_status_parse(const uint8_t *in, size_t len)
{
	if (len < 12 || memcmp(in, "HTTP/1.", 7) != 0 || !isdigit(in[7]) || in[8] != ' ')
		return -1;
	if (!isdigit(in[9]) || !isdigit(in[10]) || !isdigit(in[11]))
		return -1;
	if (len > 12 && in[12] != ' ' && in[12] != '\r')
		return -1;
	return (in[9] - '0') * 100 + (in[10] - '0') * 10 + (in[11] - '0');
}

/* Parse the value of a Content-Length line (after the colon) in
 * in[0..len); return it or -1 if it is not a plain decimal number. */
static int64_t http_length_parse(const uint8_t *in, size_t len)
{
	int64_t v = 0;
	size_t i = 0, digits = 0;

	while (i < len && (in[i] == ' ' || in[i] == '\t'))
		i++;
	for (; i < len && isdigit(in[i]); i++, digits++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (in[i] - '0');
	}
	while (i < len && (in[i] == ' ' || in[i] == '\t'))
		i++;
	return (digits == 0 || i != len) ? -1 : v;
}

enum parse_result lg_http_head_parse(const uint8_t *in, size_t len, int *status,
				     int64_t *content_length, size_t *head_len)
{
	static const char cl[] = "content-length:";
	size_t end = http_head_end(in, len < LG_HTTP_HEAD_MAX ? len : LG_HTTP_HEAD_MAX);
	size_t pos, eol;
	int64_t length = -1;

	if (len >= 1 && in[0] != 'H')
		return PARSE_INVALID;
	if (end == 0)
		return len >= LG_HTTP_HEAD_MAX ? PARSE_INVALID : PARSE_NEED_MORE;
	*status = http_status_parse(in, end);
	if (*status < 0)
		return PARSE_INVALID;
	for (pos = 0; pos < end - 2; pos = eol + 2) {
		const uint8_t *crlf = memmem(in + pos, end - pos, "\r\n", 2);

		eol = (size_t)(crlf - in);
		if (eol - pos >= sizeof(cl) - 1 && strncasecmp((const char *)in + pos, cl, sizeof(cl) - 1) == 0) {
			if (length >= 0)
				return PARSE_INVALID;    /* two Content-Length lines */
			length = http_length_parse(in + pos + sizeof(cl) - 1, eol - pos - (sizeof(cl) - 1));
			if (length < 0)
				return PARSE_INVALID;
		}
	}
	*content_length = length;
	*head_len = end;
	return PARSE_OK;
}
