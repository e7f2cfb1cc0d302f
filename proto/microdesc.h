/* Microdescriptors (dir-spec.txt section 3.3): parse a concatenation of
 * them (as /tor/micro/d/ returns, or tor's cached-microdescs with its "@"
 * annotations), computing each one's SHA-256 digest over its exact text
 * from "onion-key" up to the next microdescriptor, and check the received
 * set against the digests we asked for.
 *
 * Control-plane: one batch object owns a copy of the text and every array;
 * read-only once parsed, any thread. Not for server descriptors and not
 * for choosing paths (policy_summary_allows is the only policy logic). */
#ifndef ONIONRING_PROTO_MICRODESC_H
#define ONIONRING_PROTO_MICRODESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"
#include "core/status.h"
#include "proto/netdoc.h"

struct port_range {
	uint16_t lo, hi;
};

/* "p"/"p6" exit-policy summary: accept or reject the listed ports, all
 * others get the opposite. A missing line means "reject 1-65535". */
struct policy_summary {
	bool accept;
	uint16_t n;
	const struct port_range *ranges; /* ascending, owned by the batch */
};

/* True when the summary allows exits to port. Borrows p; any thread. */
bool policy_summary_allows(const struct policy_summary *p, uint16_t port);

struct microdesc {
	uint8_t digest[SHA256_LEN];   /* SHA-256 of text[0..text_len) */
	uint8_t ntor_key[32];         /* "ntor-onion-key" (curve25519) */
	uint8_t ed25519_id[32];       /* "id ed25519" when has_ed25519 */
	bool has_ed25519;
	bool has_tap_key;             /* "onion-key" carried an RSA key */
	bool has_ipv6;
	bool has_protos;
	uint16_t ipv6_port;
	uint8_t ipv6[16];
	struct policy_summary p, p6;
	struct netdoc_span family;    /* "family" arguments; len 0 if none */
	struct protover protos;       /* "pr" */
	const char *text;             /* into the batch's copy */
	size_t text_len;
	unsigned line;                /* line of its "onion-key" */
};

struct microdesc_batch {
	char *doc; /* owned copy of the input */
	size_t doc_len;
	struct microdesc *mds;
	size_t n;
	struct port_range *ranges; /* storage for every policy summary */
	size_t n_ranges;
};

/* Parse every microdescriptor in doc[0..len) (borrowed; copied). On
 * PARSE_OK set *out (returns owned; microdesc_batch_free). The batch is
 * refused as a whole on the first malformed microdescriptor (INVALID) or a
 * truncated last line or object (NEED_MORE); err has reason and line. */
enum parse_result microdesc_parse_batch(const char *doc, size_t len, struct microdesc_batch **out,
					struct netdoc_err *err);

void microdesc_batch_free(struct microdesc_batch *b);

/* For each microdescriptor of b, set is_wanted[i] (b->n entries) to true
 * when its digest is in wanted[0..nwanted) and no earlier one in b had the
 * same digest. Return how many distinct wanted digests were received.
 * Borrows all; allocates scratch; any thread. */
size_t microdesc_check_wanted(const struct microdesc_batch *b, const uint8_t (*wanted)[SHA256_LEN],
			      size_t nwanted, bool *is_wanted);

#endif
