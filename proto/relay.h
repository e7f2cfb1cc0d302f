/* Relay cells (tor-spec.txt sections 5.1.2, 5.6, 6, 7.3; prop 324; rend-spec
 * v3): the relay header over a decrypted 509-byte payload, the parsers and
 * encoders of every relay body a client sends or receives, command and
 * reason names, and the per-circuit RELAY_EARLY budget.
 *
 * Sans-IO and allocation-free: parsers return views borrowed from their
 * input, encoders write into caller buffers. Not for relay crypto (digest
 * and AES are the relay crypto's job: relay_encode leaves recognized and
 * digest zero) and not for stream or circuit state.
 *
 * Parsers return PARSE_OK / PARSE_INVALID with a static reason in *why (when
 * why is not NULL). A relay body is complete once its header parsed, so a
 * short body is INVALID, never NEED_MORE. Encoders return the number of bytes
 * written, or -errno (-ENOSPC, -EINVAL, -EMSGSIZE). Any thread. */
#ifndef ONIONRING_PROTO_RELAY_H
#define ONIONRING_PROTO_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/crypto.h"
#include "core/status.h"
#include "proto/cell.h"

#define RELAY_HEADER_LEN 11
#define RELAY_DATA_MAX (CELL_PAYLOAD_LEN - RELAY_HEADER_LEN) /* 498 */
#define RELAY_DIGEST_OFFSET 5
#define RELAY_DIGEST_LEN 4

enum relay_command {
	RELAY_BEGIN = 1,
	RELAY_DATA = 2,
	RELAY_END = 3,
	RELAY_CONNECTED = 4,
	RELAY_SENDME = 5,
	RELAY_EXTEND = 6,
	RELAY_EXTENDED = 7,
	RELAY_TRUNCATE = 8,
	RELAY_TRUNCATED = 9,
	RELAY_DROP = 10,
	RELAY_RESOLVE = 11,
	RELAY_RESOLVED = 12,
	RELAY_BEGIN_DIR = 13,
	RELAY_EXTEND2 = 14,
	RELAY_EXTENDED2 = 15,
	/* 16..18 reserved for UDP (prop 339). */
	RELAY_CONFLUX_LINK = 19,
	RELAY_CONFLUX_LINKED = 20,
	RELAY_CONFLUX_LINKED_ACK = 21,
	RELAY_CONFLUX_SWITCH = 22,
	RELAY_ESTABLISH_INTRO = 32,
	RELAY_ESTABLISH_RENDEZVOUS = 33,
	RELAY_INTRODUCE1 = 34,
	RELAY_INTRODUCE2 = 35,
	RELAY_RENDEZVOUS1 = 36,
	RELAY_RENDEZVOUS2 = 37,
	RELAY_INTRO_ESTABLISHED = 38,
	RELAY_RENDEZVOUS_ESTABLISHED = 39,
	RELAY_INTRODUCE_ACK = 40,
	RELAY_PADDING_NEGOTIATE = 41,
	RELAY_PADDING_NEGOTIATED = 42,
	RELAY_XOFF = 43,
	RELAY_XON = 44,
};

/* A relay message borrowed from a decrypted payload. */
struct relay_msg {
	uint8_t command;
	uint16_t recognized;
	uint16_t stream_id;
	uint8_t digest[RELAY_DIGEST_LEN];
	uint16_t length;
	const uint8_t *data; /* length bytes, borrowed from the payload */
};

/* Return a static name ("BEGIN", "EXTEND2"), or "UNKNOWN". */
const char *relay_command_name(uint8_t command);
/* Return true when command is one listed in enum relay_command. Unknown
 * commands parse fine (their cells still count for digests and windows,
 * tor-spec 6.1); the caller drops them. */
bool relay_command_is_known(uint8_t command);

/* Parse the relay header of a decrypted 509-byte payload. INVALID when
 * Length > 498. Borrows payload for out->data. */
enum parse_result relay_parse(const uint8_t payload[CELL_PAYLOAD_LEN], struct relay_msg *out,
			      const char **why);

/* A fast source of unpredictable padding bytes: AES-128-CTR keystream under
 * a key from the OS generator, re-keyed every RELAY_PAD_REKEY bytes. The OS
 * generator costs ~300 ns per short cell; this costs a few ns per block.
 * Owned by one shard (owner shard only); wipe with relay_pad_rng_clear. */
struct relay_pad_rng {
	struct crypto_aes_ctr ctr;
	uint64_t used;
};

#define RELAY_PAD_REKEY (1ull << 30)

void relay_pad_rng_init(struct relay_pad_rng *r);
void relay_pad_rng_fill(struct relay_pad_rng *r, uint8_t *out, size_t n);
void relay_pad_rng_clear(struct relay_pad_rng *r);

/* Write the header (recognized and digest zero) of a relay cell whose body
 * of len bytes is already at payload + RELAY_HEADER_LEN, then pad: four zero
 * bytes and random bytes after them (tor-spec 6.1, prop 289), from rng, or
 * from the OS generator when rng is NULL. len <= 498 (our invariant). Hot
 * path: no allocation, no copy of the body. Borrows rng. */
void relay_header_write(uint8_t payload[CELL_PAYLOAD_LEN], uint8_t command, uint16_t stream_id,
			size_t len, struct relay_pad_rng *rng);

/* Copy data[0..len) into payload as the body of a relay cell and write its
 * header and padding (as relay_header_write). data may point into payload.
 * Return len, or -EMSGSIZE when len > 498. */
ssize_t relay_encode(uint8_t payload[CELL_PAYLOAD_LEN], uint8_t command, uint16_t stream_id,
		     const uint8_t *data, size_t len, struct relay_pad_rng *rng);

/* --- BEGIN (tor-spec 6.2) ---------------------------------------------- */

#define RELAY_BEGIN_FLAG_IPV6_OK (1u << 0)
#define RELAY_BEGIN_FLAG_IPV4_NOT_OK (1u << 1)
#define RELAY_BEGIN_FLAG_IPV6_PREFERRED (1u << 2)
#define RELAY_HOST_MAX 255

struct relay_begin {
	const char *host; /* borrowed, NOT NUL-terminated; IPv6 without brackets */
	size_t host_len;
	uint16_t port;
	uint32_t flags;
};

/* Split "ADDRPORT\0" [FLAGS] (tor-spec 6.2): host 1..255 bytes (IPv6 must
 * be bracketed), port 1..65535 in decimal; FLAGS 0 when absent. */
enum parse_result relay_begin_parse(const uint8_t *data, size_t len, struct relay_begin *out,
				    const char **why);
/* Write "host:port\0" (host in brackets when it holds ':') and flags when
 * nonzero. Return length or -errno (-EINVAL for port 0 or a bad host). */
ssize_t relay_begin_encode(uint8_t *out, size_t cap, const char *host, size_t host_len,
			   uint16_t port, uint32_t flags);
/* BEGIN to an onion service over a joined rendezvous circuit: an empty
 * address, ":port" NUL [flags] (rend-spec-v3 4.2). -EINVAL for port 0. */
ssize_t relay_begin_onion_encode(uint8_t *out, size_t cap, uint16_t port, uint32_t flags);

/* --- END (tor-spec 6.3) ------------------------------------------------ */

enum relay_end_reason {
	RELAY_END_MISC = 1,
	RELAY_END_RESOLVEFAILED = 2,
	RELAY_END_CONNECTREFUSED = 3,
	RELAY_END_EXITPOLICY = 4,
	RELAY_END_DESTROY = 5,
	RELAY_END_DONE = 6,
	RELAY_END_TIMEOUT = 7,
	RELAY_END_NOROUTE = 8,
	RELAY_END_HIBERNATING = 9,
	RELAY_END_INTERNAL = 10,
	RELAY_END_RESOURCELIMIT = 11,
	RELAY_END_CONNRESET = 12,
	RELAY_END_TORPROTOCOL = 13,
	RELAY_END_NOTDIRECTORY = 14,
};

#define RELAY_TTL_NONE 0xffffffffu

struct relay_end {
	uint8_t reason;
	uint8_t addr_type; /* 0 (none), CELL_ADDR_IPV4 or CELL_ADDR_IPV6 */
	uint8_t addr[16];
	uint32_t ttl; /* RELAY_TTL_NONE when absent */
};

/* Never INVALID for a well-framed message: an empty END means MISC and a
 * missing or odd-sized EXITPOLICY address is ignored (tor-spec 6.3). */
enum parse_result relay_end_parse(const uint8_t *data, size_t len, struct relay_end *out,
				  const char **why);
ssize_t relay_end_encode(uint8_t *out, size_t cap, const struct relay_end *e);
/* Return the spec name of an END reason ("EXITPOLICY"), or "UNKNOWN". */
const char *relay_end_reason_name(uint8_t reason);
/* Return short text for logs and SOCKS errors ("exit policy refused"). */
const char *relay_end_reason_text(uint8_t reason);

/* --- CONNECTED (tor-spec 6.2) ------------------------------------------ */

struct relay_connected {
	uint8_t addr_type; /* 0 (empty body), CELL_ADDR_IPV4 or CELL_ADDR_IPV6 */
	uint8_t addr[16];
	uint32_t ttl; /* RELAY_TTL_NONE when an IPv4 form has no TTL */
};

/* A client ignores the body of the CONNECTED that answers BEGIN_DIR
 * (tor-spec 6.2.1): do not call this parser for it. INVALID for 1..3 bytes,
 * or a zero IPv4 address not followed by the IPv6 form. */
enum parse_result relay_connected_parse(const uint8_t *data, size_t len,
					struct relay_connected *out, const char **why);
ssize_t relay_connected_encode(uint8_t *out, size_t cap, const struct relay_connected *c);

/* --- SENDME (tor-spec 7.3.1) ------------------------------------------- */

#define RELAY_SENDME_DIGEST_LEN 20

struct relay_sendme {
	uint8_t version; /* 0, or 1 (authenticated) */
	uint8_t digest[RELAY_SENDME_DIGEST_LEN]; /* version 1 only */
};

/* Empty body or version 0: version 0. Version 1: the first 20 bytes of
 * DATA. INVALID for any other version or a v1 DATA_LEN < 20 (7.3.1). */
enum parse_result relay_sendme_parse(const uint8_t *data, size_t len, struct relay_sendme *out,
				     const char **why);
/* Version 0 writes an empty body (stream SENDMEs are empty, 7.4). */
ssize_t relay_sendme_encode(uint8_t *out, size_t cap, const struct relay_sendme *s);

/* --- EXTEND2 / EXTENDED2 (tor-spec 5.1.2) ------------------------------ */

enum relay_linkspec_type {
	RELAY_LS_IPV4 = 0,
	RELAY_LS_IPV6 = 1,
	RELAY_LS_LEGACY_ID = 2,
	RELAY_LS_ED25519_ID = 3,
};

#define RELAY_LINKSPECS_MAX 8

struct relay_linkspec {
	uint8_t type;
	uint8_t len;
	const uint8_t *body; /* borrowed; known types have their fixed length */
};

struct relay_extend2 {
	uint8_t n_spec;
	struct relay_linkspec spec[RELAY_LINKSPECS_MAX];
	uint16_t htype;
	uint16_t hlen;
	const uint8_t *hdata; /* borrowed */
};

/* Parse link specifiers and the handshake (tor-spec 5.1.2). Unknown link
 * specifier types are kept (callers ignore them). INVALID for more than
 * RELAY_LINKSPECS_MAX specifiers, a known type with the wrong length, two
 * identities of one kind, or anything running past the body. */
enum parse_result relay_extend2_parse(const uint8_t *data, size_t len, struct relay_extend2 *out,
				      const char **why);
ssize_t relay_extend2_encode(uint8_t *out, size_t cap, const struct relay_extend2 *e);
/* Fill ls with a borrowed view of a link specifier; value must outlive ls. */
void relay_linkspec_set(struct relay_linkspec *ls, uint8_t type, const uint8_t *value, uint8_t len);

/* EXTENDED2 carries a CREATED2 body (tor-spec 5.1.2). */
enum parse_result relay_extended2_parse(const uint8_t *data, size_t len,
					struct cell_created2 *out, const char **why);

/* TRUNCATED carries a DESTROY reason; an empty body means NONE. */
enum parse_result relay_truncated_parse(const uint8_t *data, size_t len, uint8_t *reason,
					const char **why);

/* --- RESOLVE / RESOLVED (tor-spec 6.4) --------------------------------- */

enum relay_resolved_type {
	RELAY_RESOLVED_HOSTNAME = 0x00,
	RELAY_RESOLVED_IPV4 = 0x04,
	RELAY_RESOLVED_IPV6 = 0x06,
	RELAY_RESOLVED_ERROR_TRANSIENT = 0xf0,
	RELAY_RESOLVED_ERROR_NONTRANSIENT = 0xf1,
};

struct relay_resolved_answer {
	uint8_t type;
	uint8_t len;
	const uint8_t *value; /* borrowed */
	uint32_t ttl;
};

/* Borrow the hostname (before its NUL) of a RESOLVE body. */
enum parse_result relay_resolve_parse(const uint8_t *data, size_t len, const char **name,
				      size_t *name_len, const char **why);
ssize_t relay_resolve_encode(uint8_t *out, size_t cap, const char *name, size_t name_len);

/* Check every answer of a RESOLVED body and store the first max in out;
 * *n_total counts all of them. INVALID for a truncated answer, an address of
 * the wrong length, or an error answer next to another answer. */
enum parse_result relay_resolved_parse(const uint8_t *data, size_t len,
				       struct relay_resolved_answer *out, size_t max,
				       size_t *n_total, const char **why);
ssize_t relay_resolved_encode(uint8_t *out, size_t cap, const struct relay_resolved_answer *a,
			      size_t n);

/* --- XOFF / XON (prop 324, 4.1) ---------------------------------------- */

struct relay_xon {
	uint8_t version;
	uint32_t kbps_ewma; /* 0 means unlimited */
};

enum parse_result relay_xoff_parse(const uint8_t *data, size_t len, const char **why);
ssize_t relay_xoff_encode(uint8_t *out, size_t cap);
enum parse_result relay_xon_parse(const uint8_t *data, size_t len, struct relay_xon *out,
				  const char **why);
ssize_t relay_xon_encode(uint8_t *out, size_t cap, uint32_t kbps_ewma);

/* --- Onion-service framing (rend-spec-v3 3.2, 4.1, 4.2) ---------------- */

#define RELAY_REND_COOKIE_LEN 20
#define RELAY_LEGACY_KEY_ID_LEN 20
#define RELAY_HS_AUTH_KEY_ED25519 2
#define RELAY_EXTS_MAX 8

struct relay_ext {
	uint8_t type;
	uint8_t len;
	const uint8_t *body; /* borrowed */
};

struct relay_exts {
	uint8_t n;
	struct relay_ext e[RELAY_EXTS_MAX];
};

/* INTRODUCE1 (and INTRODUCE2, same format). */
struct relay_introduce1 {
	const uint8_t *legacy_key_id; /* 20 bytes; all zero in new-style cells */
	uint8_t auth_key_type;
	uint16_t auth_key_len;
	const uint8_t *auth_key;
	struct relay_exts exts;
	const uint8_t *encrypted; /* up to the end of the body */
	size_t encrypted_len;
};

enum relay_intro_ack_status {
	RELAY_INTRO_ACK_SUCCESS = 0,
	RELAY_INTRO_ACK_UNKNOWN_SERVICE = 1,
	RELAY_INTRO_ACK_BAD_FORMAT = 2,
	RELAY_INTRO_ACK_CANT_RELAY = 3,
};

struct relay_introduce_ack {
	uint16_t status;
	struct relay_exts exts;
};

#define RELAY_RENDEZVOUS2_MIN 64 /* SERVER_PK [32] + AUTH [32] */

struct relay_rendezvous2 {
	const uint8_t *server_pk; /* 32 bytes, borrowed */
	const uint8_t *auth;      /* 32 bytes, borrowed */
	const uint8_t *handshake_info;
	size_t handshake_info_len;
};

/* ESTABLISH_RENDEZVOUS: borrow the 20-byte cookie; extra bytes ignored. */
enum parse_result relay_establish_rendezvous_parse(const uint8_t *data, size_t len,
						   const uint8_t **cookie, const char **why);
ssize_t relay_establish_rendezvous_encode(uint8_t *out, size_t cap,
					  const uint8_t cookie[RELAY_REND_COOKIE_LEN]);
/* Parse INTRODUCE1/INTRODUCE2 framing; ENCRYPTED is everything after the
 * extensions (its crypto is the onion-service code's). */
enum parse_result relay_introduce1_parse(const uint8_t *data, size_t len,
					 struct relay_introduce1 *out, const char **why);
ssize_t relay_introduce1_encode(uint8_t *out, size_t cap, const struct relay_introduce1 *in);
enum parse_result relay_introduce_ack_parse(const uint8_t *data, size_t len,
					    struct relay_introduce_ack *out, const char **why);
ssize_t relay_introduce_ack_encode(uint8_t *out, size_t cap, const struct relay_introduce_ack *a);
/* RENDEZVOUS2: INVALID when HANDSHAKE_INFO is shorter than 64 bytes. */
enum parse_result relay_rendezvous2_parse(const uint8_t *data, size_t len,
					  struct relay_rendezvous2 *out, const char **why);
ssize_t relay_rendezvous2_encode(uint8_t *out, size_t cap, const uint8_t *handshake_info,
				 size_t len);
/* RENDEZVOUS_ESTABLISHED, BEGIN_DIR, DROP, TRUNCATE and DATA bodies need no
 * parser: clients ignore their content (or it is opaque stream data). */

/* --- RELAY_EARLY budget (tor-spec 5.6) --------------------------------- */

/* A relay drops a circuit after more than 8 RELAY_EARLY cells. */
#define RELAY_EARLY_MAX 8

/* Kept by the circuit owner (owner shard only). */
struct relay_early_budget {
	uint8_t sent;
};

static inline void relay_early_init(struct relay_early_budget *b) { b->sent = 0; }

/* Return true while a RELAY_EARLY cell may still be sent on the circuit. */
static inline bool relay_early_has_budget(const struct relay_early_budget *b)
{
	return b->sent < RELAY_EARLY_MAX;
}

/* Choose the cell command for a relay cell carrying relay_command to hop
 * hop_index (0 = first hop) and spend budget when it is RELAY_EARLY.
 * EXTEND/EXTEND2 must go in RELAY_EARLY; other cells do too while budget
 * remains and they pass the first hop, to hide the circuit length (5.6).
 * Return CELL_RELAY_EARLY, CELL_RELAY, or -ENOSPC for an EXTEND2 when the
 * budget is spent (the circuit cannot be extended any further). */
int relay_early_choose(struct relay_early_budget *b, uint8_t relay_command, unsigned hop_index);

#endif
