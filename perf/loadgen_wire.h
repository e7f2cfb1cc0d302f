/* The load generator's client side of SOCKS5 (RFC 1928, RFC 1929 username
 * auth, as tor uses it: socks-extensions.txt) and of HTTP/1.0 response heads.
 *
 * Sans-IO: encoders write into a caller buffer, parsers take a byte span and
 * return the tri-state. Independent of proto/socks.c on purpose: the load
 * generator must not share a bug with the gateway it measures. Not for
 * servers, and not a general HTTP parser (no chunked encoding, no
 * keep-alive: httpd always sends Content-Length and closes). */
#ifndef ONIONRING_PERF_LOADGEN_WIRE_H
#define ONIONRING_PERF_LOADGEN_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define LG_SOCKS_AUTH_NONE 0x00
#define LG_SOCKS_AUTH_USERPASS 0x02
#define LG_HTTP_HEAD_MAX 16384

/* Write the method-selection greeting offering one method (NONE or
 * USERPASS) into out (>= 3 bytes, borrowed). Return its length. */
size_t lg_socks_greeting(uint8_t *out, uint8_t method);

/* Parse the server's method choice from in[0..len). On PARSE_OK set
 * *method and *used (bytes consumed). INVALID if the version is not 5. */
enum parse_result lg_socks_method_parse(const uint8_t *in, size_t len,
					uint8_t *method, size_t *used);

/* Write an RFC 1929 username/password request into out (cap bytes,
 * borrowed). Return its length, or 0 if user or pass is longer than 255
 * bytes or out is too small. */
size_t lg_socks_auth(uint8_t *out, size_t cap, const char *user, const char *pass);

/* Parse the RFC 1929 reply. On PARSE_OK set *ok (status 0) and *used. */
enum parse_result lg_socks_auth_parse(const uint8_t *in, size_t len, bool *ok, size_t *used);

/* Write a CONNECT to host:port into out (cap bytes, borrowed): ATYP 1
 * (IPv4) when as_ip and host is a dotted quad, else ATYP 3 (hostname).
 * Return its length, or 0 if host does not fit or out is too small. */
size_t lg_socks_connect(uint8_t *out, size_t cap, const char *host, uint16_t port, bool as_ip);

/* Parse a CONNECT reply (VER REP RSV ATYP BND.ADDR BND.PORT). On PARSE_OK
 * set *rep (0 = succeeded, else the RFC 1928 / tor error code) and *used.
 * INVALID on a wrong version, reserved byte or address type. */
enum parse_result lg_socks_reply_parse(const uint8_t *in, size_t len, uint8_t *rep, size_t *used);

/* Parse an HTTP/1.x response head from in[0..len). On PARSE_OK set
 * *status, *content_length (-1 when absent) and *head_len (through the
 * blank line). NEED_MORE until the blank line arrives; INVALID for a bad
 * status line or Content-Length, or a head over LG_HTTP_HEAD_MAX bytes. */
enum parse_result lg_http_head_parse(const uint8_t *in, size_t len, int *status,
				     int64_t *content_length, size_t *head_len);

#endif
