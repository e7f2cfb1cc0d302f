/* HTTP/1.0 for directory fetches over BEGIN_DIR, sans-IO: a response header
 * parser (status line, Content-Length, Content-Encoding, end of headers)
 * and a GET request builder (dir-spec.txt section 6 / appendix B URLs).
 *
 * Not for: bodies (the caller reads Content-Length bytes or until the
 * stream ends, and inflates them with proto/inflate.h), chunked transfer,
 * keep-alive, or any HTTP beyond what tor directory servers send. */
#ifndef ONIONRING_PROTO_HTTP_H
#define ONIONRING_PROTO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Headers longer than this are refused: tor's directory responses carry a
 * handful of short headers. */
#define HTTP_HEADER_MAX 16384
#define HTTP_REASON_MAX 64

enum http_encoding {
	HTTP_ENC_IDENTITY = 0, /* no Content-Encoding, or "identity" */
	HTTP_ENC_DEFLATE,      /* "deflate": zlib stream (RFC 1950) */
	HTTP_ENC_GZIP,         /* "gzip" / "x-gzip" (RFC 1952) */
	HTTP_ENC_X_TOR_LZMA,   /* tor's LZMA: known, not supported here */
	HTTP_ENC_X_ZSTD,       /* tor's Zstandard: known, not supported here */
	HTTP_ENC_UNKNOWN,      /* anything else */
};

struct http_response {
	uint16_t status;          /* 100..599 */
	uint8_t minor_version;    /* HTTP/1.x */
	bool has_content_length;
	uint64_t content_length;
	uint8_t encoding;         /* enum http_encoding */
	size_t header_len;        /* bytes through the blank line; the body follows */
	char reason[HTTP_REASON_MAX]; /* reason phrase, truncated, NUL-terminated */
};

/* Parse the response head at the start of in[0..len).
 *   PARSE_OK: *out is filled; the body starts at in + out->header_len.
 *   PARSE_NEED_MORE: no blank line yet (and fewer than HTTP_HEADER_MAX bytes).
 *   PARSE_INVALID: malformed or too long; *why names the problem.
 * Stateless: call again with the grown buffer. Borrows in; writes *out and
 * *why (a static string; why may be NULL). Any thread. */
enum parse_result http_response_parse(const uint8_t *in, size_t len,
				      struct http_response *out, const char **why);

/* True for the encodings proto/inflate.h can undo (identity, deflate, gzip). */
bool http_encoding_is_supported(enum http_encoding enc);

/* "identity", "deflate", ... for logs. */
const char *http_encoding_name(enum http_encoding enc);

/* Write "GET <path> HTTP/1.0\r\nHost: <host>\r\nAccept-Encoding: deflate,
 * gzip\r\n\r\n" into out[0..cap) with a NUL. path must start with '/';
 * path and host must be non-empty visible ASCII (no spaces, CR or LF).
 * Return the length without the NUL, or 0 if invalid or it does not fit.
 * Borrows everything. Any thread. */
size_t http_request_build(char *out, size_t cap, const char *path, const char *host);

#endif
