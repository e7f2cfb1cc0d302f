/* HTTP/1.0 response head parser and GET builder for directory fetches.
 * See http.h. Not for bodies or general-purpose HTTP. */
#include "proto/http.h"

#include <stdio.h>
#include <string.h>

#include "core/compiler.h"

#define INVALID(msg) (*why = (msg), PARSE_INVALID)

static bool ci_equal(const uint8_t *a, size_t n, const char *lit)
{
	if (strlen(lit) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = a[i];

		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c != (uint8_t)lit[i])
			return false;
	}
	return true;
}

static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* RFC 7230 3.2.6 tchar: visible ASCII except separators. */
static bool is_tchar(uint8_t c)
{
	return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

/* Field text: visible ASCII, SP, HT and obs-text; no other control bytes. */
static bool is_text(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return false;
	return true;
}

/* "HTTP/1.x SSS[ reason]" (RFC 1945 6.1); tor's parse_http_response()
 * accepts the same shape. */
static enum parse_result parse_status_line(const uint8_t *p, size_t n,
					   struct http_response *out, const char **why)
{
	size_t rlen;

	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || !is_digit(p[7]) || p[8] != ' ')
		return INVALID("http: malformed status line");
	if (!is_digit(p[9]) || !is_digit(p[10]) || !is_digit(p[11]))
		return INVALID("http: malformed status code");
	out->minor_version = (uint8_t)(p[7] - '0');
	out->status = (uint16_t)((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
	if (out->status < 100 || out->status > 599)
		return INVALID("http: status code out of range");
	if (n > 12 && p[12] != ' ')
		return INVALID("http: malformed status line");
	if (n > 13 && !is_text(p + 13, n - 13))
		return INVALID("http: control byte in reason phrase");
	rlen = n > 13 ? MIN(n - 13, (size_t)HTTP_REASON_MAX - 1) : 0;
	memcpy(out->reason, p + 13, rlen);
	out->reason[rlen] = '\0';
	return PARSE_OK;
}

static enum parse_result parse_content_length(const uint8_t *v, size_t n,
					      struct http_response *out, const char **why)
{
	uint64_t x = 0;

	if (n == 0 || n > 19) /* 19 digits cannot overflow uint64_t */
		return INVALID("http: bad Content-Length");
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(v[i]))
			return INVALID("http: bad Content-Length");
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (out->has_content_length && out->content_length != x)
		return INVALID("http: conflicting Content-Length headers");
	out->has_content_length = true;
	out->content_length = x;
	return PARSE_OK;
}

static enum http_encoding encoding_from(const uint8_t *v, size_t n)
{
	if (ci_equal(v, n, "identity"))
		return HTTP_ENC_IDENTITY;
	if (ci_equal(v, n, "deflate"))
		return HTTP_ENC_DEFLATE;
	if (ci_equal(v, n, "gzip") || ci_equal(v, n, "x-gzip"))
		return HTTP_ENC_GZIP;
	if (ci_equal(v, n, "x-tor-lzma"))
		return HTTP_ENC_X_TOR_LZMA;
	if (ci_equal(v, n, "x-zstd"))
		return HTTP_ENC_X_ZSTD;
	return HTTP_ENC_UNKNOWN;
}

/* One "Name: value" line without its CRLF. Line folding (a line starting
 * with SP/HT) is refused: tor never sends it. */
static enum parse_result parse_header_line(const uint8_t *p, size_t n, bool *seen_enc,
					   struct http_response *out, const char **why)
{
	const uint8_t *colon = memchr(p, ':', n);
	const uint8_t *v, *end = p + n;

	if (!colon || colon == p)
		return INVALID("http: header line without a name");
	for (const uint8_t *c = p; c < colon; c++)
		if (!is_tchar(*c))
			return INVALID("http: bad header name");
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (!is_text(v, (size_t)(end - v)))
		return INVALID("http: control byte in header value");
	if (ci_equal(p, (size_t)(colon - p), "content-length"))
		return parse_content_length(v, (size_t)(end - v), out, why);
	if (ci_equal(p, (size_t)(colon - p), "content-encoding")) {
		if (*seen_enc)
			return INVALID("http: repeated Content-Encoding");
		*seen_enc = true;
		out->encoding = (uint8_t)encoding_from(v, (size_t)(end - v));
	}
	return PARSE_OK;
}

/* Parse the lines of head[0..n), which ends with the CRLF of its last line. */
static enum parse_result parse_lines(const uint8_t *head, size_t n,
				     struct http_response *out, const char **why)
{
	const uint8_t *pos = head, *stop = head + n;
	bool seen_enc = false;
	enum parse_result r;
	const uint8_t *le = memmem(pos, n, "\r\n", 2);

	r = parse_status_line(pos, (size_t)(le - pos), out, why);
	for (pos = le + 2; r == PARSE_OK && pos < stop; pos = le + 2) {
		le = memmem(pos, (size_t)(stop - pos), "\r\n", 2);
		r = parse_header_line(pos, (size_t)(le - pos), &seen_enc, out, why);
	}
	return r;
}

enum parse_result http_response_parse(const uint8_t *in, size_t len,
				      struct http_response *out, const char **why)
{
	const char *unused;
	const uint8_t *end;

	if (!why)
		why = &unused;
	*why = NULL;
	if (len == 0)
		return PARSE_NEED_MORE;
	if (memcmp(in, "HTTP/", MIN(len, (size_t)5)) != 0)
		return INVALID("http: not an HTTP response");
	end = memmem(in, MIN(len, (size_t)HTTP_HEADER_MAX), "\r\n\r\n", 4);
	if (!end)
		return len >= HTTP_HEADER_MAX ? INVALID("http: headers too long") : PARSE_NEED_MORE;
	if (memchr(in, 0, (size_t)(end - in)))
		return INVALID("http: NUL in headers");
	memset(out, 0, sizeof(*out));
	if (parse_lines(in, (size_t)(end - in) + 2, out, why) != PARSE_OK) {
		memset(out, 0, sizeof(*out));
		return PARSE_INVALID;
	}
	out->header_len = (size_t)(end - in) + 4;
	return PARSE_OK;
}

bool http_encoding_is_supported(enum http_encoding enc)
{
	return enc == HTTP_ENC_IDENTITY || enc == HTTP_ENC_DEFLATE || enc == HTTP_ENC_GZIP;
}

const char *http_encoding_name(enum http_encoding enc)
{
	static const char *const names[] = {
		[HTTP_ENC_IDENTITY] = "identity", [HTTP_ENC_DEFLATE] = "deflate",
		[HTTP_ENC_GZIP] = "gzip",         [HTTP_ENC_X_TOR_LZMA] = "x-tor-lzma",
		[HTTP_ENC_X_ZSTD] = "x-zstd",     [HTTP_ENC_UNKNOWN] = "unknown",
	};

	return (unsigned)enc < ARRAY_LEN(names) ? names[enc] : "unknown";
}

static bool is_visible_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

size_t http_request_build(char *out, size_t cap, const char *path, const char *host)
{
	int n;

	if (path[0] != '/' || !is_visible_word(path) || !is_visible_word(host))
		return 0;
	n = snprintf(out, cap, "GET %s HTTP/1.0\r\nHost: %s\r\n"
		     "Accept-Encoding: deflate, gzip\r\n\r\n", path, host);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}
