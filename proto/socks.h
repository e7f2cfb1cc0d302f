/* SOCKS4/4a/5 server-side codec, sans-IO: the handshake a SOCKS client
 * sends to the gateway, parsed incrementally, plus the reply encoders and the
 * address helpers the SOCKS session needs (IPv4/IPv6 text, hostname checks).
 *
 * Covers RFC 1928 (SOCKS5), RFC 1929 (username/password), SOCKS4 and 4a,
 * and Tor's extensions (socks-extensions.txt): RESOLVE (0xF0), RESOLVE_PTR
 * (0xF1) and the extended reply codes 0xF0-0xF7.
 *
 * Not for: sockets, timers, stream isolation policy or DNS. The parser state
 * is one fixed-size struct owned by the SOCKS session; nothing allocates. */
#ifndef ONIONRING_PROTO_SOCKS_H
#define ONIONRING_PROTO_SOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

enum socks_cmd {
	SOCKS_CMD_CONNECT = 0x01,
	SOCKS_CMD_BIND = 0x02,          /* not supported (socks-extensions 1.1) */
	SOCKS_CMD_UDP_ASSOCIATE = 0x03, /* not supported (socks-extensions 1.1) */
	SOCKS_CMD_RESOLVE = 0xF0,       /* socks-extensions 2 */
	SOCKS_CMD_RESOLVE_PTR = 0xF1,   /* socks-extensions 2, SOCKS5 only */
};

/* Address types, numbered as SOCKS5 ATYP (RFC 1928 section 4). */
enum socks_addr_type {
	SOCKS_ADDR_IPV4 = 0x01,
	SOCKS_ADDR_HOSTNAME = 0x03,
	SOCKS_ADDR_IPV6 = 0x04,
};

/* How the client identified itself; the app isolates streams by it. */
enum socks_auth {
	SOCKS_AUTH_NONE = 0,     /* SOCKS5 no-auth, or SOCKS4 with an empty user id */
	SOCKS_AUTH_USERPASS = 1, /* SOCKS5 RFC 1929: username/password hold it */
	SOCKS_AUTH_SOCKS4_USER = 2, /* SOCKS4/4a non-empty user id, in username */
};

/* SOCKS5 REP codes: RFC 1928 section 6, then Tor's ExtendedErrors for onion
 * services (tor.1 "ExtendedErrors", proposal 304). */
enum socks5_reply {
	SOCKS5_SUCCEEDED = 0x00,
	SOCKS5_GENERAL_FAILURE = 0x01,
	SOCKS5_NOT_ALLOWED = 0x02,
	SOCKS5_NET_UNREACHABLE = 0x03,
	SOCKS5_HOST_UNREACHABLE = 0x04,
	SOCKS5_CONNECTION_REFUSED = 0x05,
	SOCKS5_TTL_EXPIRED = 0x06,
	SOCKS5_COMMAND_NOT_SUPPORTED = 0x07,
	SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED = 0x08,
	SOCKS5_HS_DESC_NOT_FOUND = 0xF0,
	SOCKS5_HS_DESC_INVALID = 0xF1,
	SOCKS5_HS_INTRO_FAILED = 0xF2,
	SOCKS5_HS_REND_FAILED = 0xF3,
	SOCKS5_HS_MISSING_CLIENT_AUTH = 0xF4,
	SOCKS5_HS_WRONG_CLIENT_AUTH = 0xF5,
	SOCKS5_HS_BAD_ADDRESS = 0xF6,
	SOCKS5_HS_INTRO_TIMED_OUT = 0xF7,
};

/* SOCKS4 CD codes in replies. */
enum socks4_reply {
	SOCKS4_GRANTED = 0x5A,
	SOCKS4_REJECTED = 0x5B,
};

/* SOCKS5 method codes (RFC 1928 section 3). */
#define SOCKS5_METHOD_NO_AUTH 0x00
#define SOCKS5_METHOD_GSSAPI 0x01
#define SOCKS5_METHOD_USERPASS 0x02
#define SOCKS5_METHOD_NONE_ACCEPTABLE 0xFF

#define SOCKS_HOST_MAX 255   /* SOCKS5 length byte; also our SOCKS4a limit */
#define SOCKS_CRED_MAX 255   /* RFC 1929 length byte; also our SOCKS4 user id limit */
#define SOCKS_REPLY_MAX 10   /* longest reply the parser itself emits */
/* Longest SOCKS5 reply: VER REP RSV ATYP LEN host[255] PORT. */
#define SOCKS5_REPLY_ENCODED_MAX (4 + 1 + SOCKS_HOST_MAX + 2)
#define SOCKS4_REPLY_LEN 8
/* Text forms: 39 chars of IPv6 (45 with an IPv4 tail) + NUL. */
#define SOCKS_ADDR_TEXT_MAX 46

/* A destination or bound address. ip[] is in network byte order. */
struct socks_addr {
	uint8_t type;     /* enum socks_addr_type */
	uint8_t host_len; /* SOCKS_ADDR_HOSTNAME: 1..255 bytes in host[] */
	uint8_t ip[16];   /* IPV4: ip[0..3]; IPV6: ip[0..15] */
	char host[SOCKS_HOST_MAX + 1]; /* NUL-terminated, no embedded NUL */
};

/* What a finished handshake asked for. Credentials are raw bytes (any
 * value, possibly empty); username_len/password_len give their lengths. */
struct socks_request {
	uint8_t version; /* 4 or 5 */
	uint8_t command; /* enum socks_cmd: CONNECT, RESOLVE or RESOLVE_PTR */
	uint8_t auth;    /* enum socks_auth */
	bool socks4a;    /* SOCKS4 with 0.0.0.x and a hostname */
	uint16_t port;
	struct socks_addr dest;
	uint8_t username_len;
	uint8_t password_len;
	uint8_t username[SOCKS_CRED_MAX];
	uint8_t password[SOCKS_CRED_MAX];
};

enum socks_event {
	SOCKS_EV_NONE = 0,  /* PARSE_NEED_MORE: nothing consumed, read more */
	SOCKS_EV_REPLY,     /* send reply[], then call again on the rest */
	SOCKS_EV_REQUEST,   /* p->req is complete; the app connects and replies */
	SOCKS_EV_ERROR,     /* send reply[] if reply_len > 0, then close */
};

/* Output of one socks_parse() step. */
struct socks_step {
	enum socks_event event;
	size_t consumed;          /* input bytes used by this step */
	const char *reason;       /* static text for the log on SOCKS_EV_ERROR */
	bool looks_like_http;     /* ERROR: the client spoke HTTP to us */
	uint8_t reply_len;
	uint8_t reply[SOCKS_REPLY_MAX];
};

enum socks_state {
	SOCKS_ST_START = 0,      /* nothing yet: version byte decides 4 or 5 */
	SOCKS_ST_AUTH,           /* SOCKS5: user/pass chosen, RFC 1929 message due */
	SOCKS_ST_REQUEST,        /* SOCKS5: request due (or a late auth message) */
	SOCKS_ST_DONE,           /* request delivered */
	SOCKS_ST_FAILED,         /* error delivered; only close remains */
};

/* The per-session parser: fixed size, no pointers, owned by one session. */
struct socks_parser {
	uint8_t state;           /* enum socks_state */
	bool got_auth_msg;       /* an RFC 1929 message was seen */
	struct socks_request req;
};

/* Reset p for a new client connection. Borrows p. Owner shard only. */
void socks_parser_init(struct socks_parser *p);

/* Wipe the credentials and address p holds (they identify the user).
 * Borrows p. Owner shard only. */
void socks_parser_clear(struct socks_parser *p);

/* Parse at most one client message from in[0..len).
 *   PARSE_NEED_MORE: message incomplete; out->consumed is 0, state unchanged.
 *   PARSE_OK: out->event is SOCKS_EV_REPLY (send out->reply, then call again
 *     with in + consumed) or SOCKS_EV_REQUEST (p->req is ready; bytes after
 *     consumed are early stream data, socks-extensions 5).
 *   PARSE_INVALID: out->event is SOCKS_EV_ERROR; send out->reply (may be
 *     empty), then close.
 * Borrows p, in and out; writes only out and p. Owner shard only. */
enum parse_result socks_parse(struct socks_parser *p, const uint8_t *in, size_t len,
			      struct socks_step *out);

/* Encode a SOCKS5 reply with code rep and bound address bound (NULL means
 * 0.0.0.0) and port into out[0..cap). Return the length, or 0 if cap is too
 * small or bound is malformed. Borrows everything. Any thread. */
size_t socks5_reply_encode(uint8_t *out, size_t cap, enum socks5_reply rep,
			   const struct socks_addr *bound, uint16_t port);

/* Encode a SOCKS4 reply (VN 0, CD code, port, IPv4 in network order) into
 * out[0..SOCKS4_REPLY_LEN). Return SOCKS4_REPLY_LEN. Any thread. */
size_t socks4_reply_encode(uint8_t out[SOCKS4_REPLY_LEN], enum socks4_reply code,
			   uint16_t port, const uint8_t ipv4[4]);

/* The static body tor sends to an HTTP client on a SOCKS port
 * (socks-extensions 4); set *len to its length. Any thread. */
const char *socks_http_misuse_reply(size_t *len);

/* --- Address helpers (address-spec.txt); all borrow, any thread -------- */

/* Parse dotted-quad s[0..len) strictly (4 parts, 0..255, no leading zeros,
 * no spaces) into out (network order). */
bool socks_ipv4_parse(const char *s, size_t len, uint8_t out[4]);

/* Parse IPv6 text s[0..len) (RFC 4291 2.2 forms, with optional surrounding
 * brackets) into out. */
bool socks_ipv6_parse(const char *s, size_t len, uint8_t out[16]);

/* Write a's text form (IPv6 without brackets) into out[0..cap) with a NUL.
 * Return the length without the NUL, or 0 if it does not fit. */
size_t socks_addr_format(const struct socks_addr *a, char *out, size_t cap);

/* True if host[0..len) is a destination tor accepts: an IPv4 or IPv6
 * literal (IPv6 optionally in brackets), or dot-separated labels of
 * letters, digits, '-' and '_' not starting with '-' or '_', with at most
 * one trailing dot. Rejects empty names and any NUL or other byte. */
bool socks_host_is_valid(const char *host, size_t len);

/* True if host ends in ".onion" (any case, one optional trailing dot) with
 * a non-empty label before it (address-spec 3). */
bool socks_host_is_onion(const char *host, size_t len);

/* True if host is an "x.x.x.x" IPv4 literal; writes it to out if non-NULL. */
bool socks_host_is_ipv4_literal(const char *host, size_t len, uint8_t out[4]);

/* Lowercase ASCII letters of host[0..len) in place. */
void socks_host_lower(char *host, size_t len);

#endif
