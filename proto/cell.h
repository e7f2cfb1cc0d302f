/* Link-level cells (tor-spec.txt sections 3, 4, 5.1, 5.4, 7.2): the framer
 * that splits a byte stream into fixed and variable-length cells, the
 * encoders that write cells into caller buffers, and the parsers and
 * encoders of the bodies of the link-handshake and circuit cells.
 *
 * Sans-IO and allocation-free: parsers return borrowed views into the input
 * span, encoders write into caller buffers. Not for relay cells (relay.h),
 * not for certificate validation (only splitting CERTS into entries), and not
 * for any state machine (which cell may come when is the channel's job).
 *
 * Every parser returns PARSE_OK / PARSE_NEED_MORE / PARSE_INVALID; on INVALID
 * it sets *why (when why is not NULL) to a static reason for the log. Body
 * parsers see a complete cell body, so a short body is INVALID, never
 * NEED_MORE; only the framer says NEED_MORE. All functions: any thread,
 * they touch only their arguments. */
#ifndef ONIONRING_PROTO_CELL_H
#define ONIONRING_PROTO_CELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/status.h"

/* Link protocols 4 and 5 only: 4-byte circuit IDs (tor-spec 3). */
#define CELL_CIRCID_LEN 4
#define CELL_PAYLOAD_LEN 509
#define CELL_LEN (CELL_CIRCID_LEN + 1 + CELL_PAYLOAD_LEN) /* 514 */
#define CELL_VAR_HEADER_LEN (CELL_CIRCID_LEN + 1 + 2)    /* 7 */
/* The first VERSIONS cell always has a 2-byte circuit ID (tor-spec 3). */
#define CELL_VERSIONS_HEADER_LEN (2 + 1 + 2) /* 5 */
#define CELL_VAR_PAYLOAD_MAX 65535

/* Link protocols this code speaks; 0 means "VERSIONS not yet negotiated". */
#define CELL_LINK_PROTO_NONE 0
#define CELL_LINK_PROTO_MIN 4
#define CELL_LINK_PROTO_MAX 5

enum cell_command {
	CELL_PADDING = 0,
	CELL_CREATE = 1,
	CELL_CREATED = 2,
	CELL_RELAY = 3,
	CELL_DESTROY = 4,
	CELL_CREATE_FAST = 5,
	CELL_CREATED_FAST = 6,
	CELL_VERSIONS = 7,
	CELL_NETINFO = 8,
	CELL_RELAY_EARLY = 9,
	CELL_CREATE2 = 10,
	CELL_CREATED2 = 11,
	CELL_PADDING_NEGOTIATE = 12,
	CELL_VPADDING = 128,
	CELL_CERTS = 129,
	CELL_AUTH_CHALLENGE = 130,
	CELL_AUTHENTICATE = 131,
	CELL_AUTHORIZE = 132,
};

/* An owned fixed-length cell, as queued for sending or after receipt. */
struct cell {
	uint32_t circ_id;
	uint8_t command;
	uint8_t payload[CELL_PAYLOAD_LEN];
};

/* A framed cell borrowed from the input span: payload points into it.
 * For a fixed cell payload_len is CELL_PAYLOAD_LEN. */
struct cell_view {
	uint32_t circ_id;
	uint8_t command;
	bool is_var;
	const uint8_t *payload;
	size_t payload_len;
};

/* Return true when command is a variable-length command on link protocol
 * >= 3: VERSIONS (7) or >= 128 (tor-spec 3). */
static inline bool cell_command_is_var(uint8_t command)
{
	return command == CELL_VERSIONS || command >= 128;
}

/* Return a static name of command ("RELAY", "CERTS"), or "UNKNOWN". */
const char *cell_command_name(uint8_t command);

/* Frame one cell from buf[0..len) for link_proto (0 = not negotiated yet:
 * 2-byte circuit ID and only variable-length cells; 4 or 5: 4-byte IDs).
 * On OK fill *out with views borrowed from buf and set *consumed. NEED_MORE
 * when buf holds only part of a cell; INVALID for a link protocol we do not
 * speak or a fixed cell before VERSIONS. */
enum parse_result cell_frame(const uint8_t *buf, size_t len, int link_proto,
			     struct cell_view *out, size_t *consumed, const char **why);

/* Write the 514-byte wire form of c into out. Borrows c. */
void cell_encode(const struct cell *c, uint8_t out[CELL_LEN]);

/* Write a fixed cell with body[0..body_len) zero-padded to 509 bytes into
 * out. Return CELL_LEN, or -EMSGSIZE when body_len > 509, -ENOSPC when cap
 * is too small. */
ssize_t cell_fixed_encode(uint8_t *out, size_t cap, uint32_t circ_id, uint8_t command,
			  const uint8_t *body, size_t body_len);

/* Write a variable-length cell for link_proto (0 = 2-byte circuit ID, as the
 * first VERSIONS cell needs) into out. Return its length or -errno
 * (-EINVAL: not a var command or bad link_proto; -EMSGSIZE; -ENOSPC). */
ssize_t cell_var_encode(uint8_t *out, size_t cap, int link_proto, uint32_t circ_id,
			uint8_t command, const uint8_t *body, size_t body_len);

/* --- VERSIONS (tor-spec 4.1) ------------------------------------------- */

/* Pick the highest version listed in body that is also in [4, 5]. OK with
 * *chosen set; INVALID for an odd-length body ("not well-formed") or when
 * there is no common version. */
enum parse_result cell_versions_choose(const uint8_t *body, size_t len, uint16_t *chosen,
				       const char **why);

/* Write the whole first VERSIONS cell (2-byte circuit ID 0) listing 4 and 5
 * into out. Return its length or -ENOSPC. */
ssize_t cell_versions_encode(uint8_t *out, size_t cap);

/* --- CERTS (tor-spec 4.2): split only, no validation ------------------- */

#define CELL_CERTS_MAX 8

enum cell_cert_type {
	CELL_CERT_RSA_LINK = 1,
	CELL_CERT_RSA_ID = 2,
	CELL_CERT_RSA_AUTH = 3,
	CELL_CERT_ED_ID_SIGNING = 4,
	CELL_CERT_ED_SIGNING_LINK = 5,
	CELL_CERT_ED_SIGNING_AUTH = 6,
	CELL_CERT_RSA_ED_CROSS = 7,
};

struct cell_cert_entry {
	uint8_t type;
	uint16_t len;
	const uint8_t *body; /* borrowed from the cell */
};

struct cell_certs {
	size_t n;
	struct cell_cert_entry e[CELL_CERTS_MAX];
};

/* Split a CERTS body into entries borrowed from body. INVALID when an
 * entry runs past the body, more than CELL_CERTS_MAX entries are listed, or
 * one type appears twice ("no more than one certificate of each CertType").
 * Extra bytes after the last entry are ignored, as the spec requires. */
enum parse_result cell_certs_parse(const uint8_t *body, size_t len, struct cell_certs *out,
				   const char **why);

/* Write a CERTS body listing c's entries into out. Return length or -errno. */
ssize_t cell_certs_encode(uint8_t *out, size_t cap, const struct cell_certs *c);

/* Return the entry of type in c, or NULL. Borrows c. */
const struct cell_cert_entry *cell_certs_find(const struct cell_certs *c, uint8_t type);

/* --- AUTH_CHALLENGE (tor-spec 4.3) ------------------------------------- */

#define CELL_AUTH_CHALLENGE_LEN 32

struct cell_auth_challenge {
	const uint8_t *challenge; /* 32 bytes, borrowed */
	uint16_t n_methods;
	const uint8_t *methods; /* n_methods big-endian u16, borrowed */
};

/* Borrow the challenge and method list from body; trailing bytes are
 * ignored (tor-spec 4.3). INVALID when the methods run past the body. */
enum parse_result cell_auth_challenge_parse(const uint8_t *body, size_t len,
					    struct cell_auth_challenge *out, const char **why);
/* Return true when ac lists method (3 = Ed25519-SHA256-RFC5705). */
bool cell_auth_challenge_has_method(const struct cell_auth_challenge *ac, uint16_t method);
/* Write an AUTH_CHALLENGE body. Return length or -errno. */
ssize_t cell_auth_challenge_encode(uint8_t *out, size_t cap, const uint8_t challenge[32],
				   const uint16_t *methods, uint16_t n_methods);

/* --- NETINFO (tor-spec 4.5) -------------------------------------------- */

#define CELL_ADDR_IPV4 4
#define CELL_ADDR_IPV6 6
#define CELL_NETINFO_MY_ADDRS_MAX 8

/* A typed address. known is false for an unknown type or a length that does
 * not match its type: the spec says such an address is ignored. */
struct cell_addr {
	uint8_t type;
	uint8_t len;
	bool known;
	uint8_t bytes[16]; /* the value when known (4 or 16 bytes) */
};

struct cell_netinfo {
	uint32_t timestamp;
	struct cell_addr other;
	uint8_t n_my_addrs; /* as listed; only the first MAX are stored */
	struct cell_addr my[CELL_NETINFO_MY_ADDRS_MAX];
};

/* Parse a NETINFO body; stores the first CELL_NETINFO_MY_ADDRS_MAX of the
 * relay's addresses but checks all. INVALID when an address runs past the
 * body; trailing bytes are ignored. */
enum parse_result cell_netinfo_parse(const uint8_t *body, size_t len, struct cell_netinfo *out,
				     const char **why);
/* Write a NETINFO body into out (cap >= 509 gives a full payload). A client
 * sends timestamp 0 and no addresses of its own (tor-spec 4.5): pass
 * n_my = 0. other NULL (the peer's address is not known) writes an
 * address of type 0 and length 0, which receivers ignore. Return length or
 * -errno (-EINVAL for an address type other than 4 or 6). Borrows other
 * and my. */
ssize_t cell_netinfo_encode(uint8_t *out, size_t cap, uint32_t timestamp,
			    const struct cell_addr *other, const struct cell_addr *my, size_t n_my);

/* --- CREATE2 / CREATED2 (tor-spec 5.1) --------------------------------- */

#define CELL_HTYPE_TAP 0x0000
#define CELL_HTYPE_NTOR 0x0002
#define CELL_HTYPE_NTOR_V3 0x0003

struct cell_create2 {
	uint16_t htype;
	uint16_t hlen;
	const uint8_t *hdata; /* borrowed */
};

struct cell_created2 {
	uint16_t hlen;
	const uint8_t *hdata; /* borrowed */
};

/* Borrow HDATA from body; INVALID when HLEN runs past it. */
enum parse_result cell_create2_parse(const uint8_t *body, size_t len, struct cell_create2 *out,
				     const char **why);
enum parse_result cell_created2_parse(const uint8_t *body, size_t len, struct cell_created2 *out,
				      const char **why);
/* Write a CREATE2 / CREATED2 body. Return length or -errno. */
ssize_t cell_create2_encode(uint8_t *out, size_t cap, uint16_t htype, const uint8_t *hdata,
			    size_t hlen);
ssize_t cell_created2_encode(uint8_t *out, size_t cap, const uint8_t *hdata, size_t hlen);

/* --- CREATE_FAST / CREATED_FAST (tor-spec 5.1.5) ---------------------- */

#define CELL_CREATE_FAST_LEN 20  /* X [HASH_LEN] */
#define CELL_CREATED_FAST_LEN 40 /* Y [HASH_LEN] | KH [HASH_LEN] */

/* Write a CREATE_FAST body (x, 20 bytes). Return length or -ENOSPC. */
ssize_t cell_create_fast_encode(uint8_t *out, size_t cap, const uint8_t x[CELL_CREATE_FAST_LEN]);
/* Borrow Y and KH (20 bytes each) of a CREATED_FAST body; INVALID when the
 * body is shorter than 40 bytes (the rest of a fixed cell is padding). */
enum parse_result cell_created_fast_parse(const uint8_t *body, size_t len, const uint8_t **y,
					  const uint8_t **kh, const char **why);

/* --- DESTROY (tor-spec 5.4) -------------------------------------------- */

enum cell_destroy_reason {
	CELL_DESTROY_NONE = 0,
	CELL_DESTROY_PROTOCOL = 1,
	CELL_DESTROY_INTERNAL = 2,
	CELL_DESTROY_REQUESTED = 3,
	CELL_DESTROY_HIBERNATING = 4,
	CELL_DESTROY_RESOURCELIMIT = 5,
	CELL_DESTROY_CONNECTFAILED = 6,
	CELL_DESTROY_OR_IDENTITY = 7,
	CELL_DESTROY_CHANNEL_CLOSED = 8,
	CELL_DESTROY_FINISHED = 9,
	CELL_DESTROY_TIMEOUT = 10,
	CELL_DESTROY_DESTROYED = 11,
	CELL_DESTROY_NOSUCHSERVICE = 12,
};

/* Read the reason of a DESTROY (or RELAY_TRUNCATED) body; INVALID if empty. */
enum parse_result cell_destroy_parse(const uint8_t *body, size_t len, uint8_t *reason,
				     const char **why);
/* Write a DESTROY body (one reason byte). An OP uses NONE for its own
 * DESTROY cells (tor-spec 5.4). Return 1 or -ENOSPC. */
ssize_t cell_destroy_encode(uint8_t *out, size_t cap, uint8_t reason);
/* Return a static name of a DESTROY reason ("FINISHED"), or "UNKNOWN". */
const char *cell_destroy_reason_name(uint8_t reason);

/* --- PADDING_NEGOTIATE (tor-spec 7.2, padding-spec 2) ------------------ */

#define CELL_PADNEG_STOP 1
#define CELL_PADNEG_START 2

struct cell_padding_negotiate {
	uint8_t version; /* only 0 is defined */
	uint8_t command; /* CELL_PADNEG_STOP or CELL_PADNEG_START */
	uint16_t ito_low_ms;
	uint16_t ito_high_ms;
};

/* INVALID for a version other than 0 or a command other than STOP/START;
 * the ito values are returned as sent (the padding code clamps them). */
enum parse_result cell_padding_negotiate_parse(const uint8_t *body, size_t len,
					       struct cell_padding_negotiate *out,
					       const char **why);
ssize_t cell_padding_negotiate_encode(uint8_t *out, size_t cap,
				      const struct cell_padding_negotiate *pn);

#endif
