/* The microdescriptor-flavoured consensus (dir-spec.txt 3.4.1, 3.9.2):
 * parse it into a struct (preamble, params, authorities, router entries,
 * footer, signatures with the digest of the signed portion) and verify it
 * against trusted authorities' key certificates.
 *
 * Control-plane: consensus_parse copies the document (so a cached copy can
 * be written back as is) and makes one allocation for the router array;
 * strings the struct exposes point into that copy. A parsed consensus is
 * read-only and may be read from any thread once published to it. Not for
 * the ns flavour, votes or detached signatures. */
#ifndef ONIONRING_PROTO_CONSENSUS_H
#define ONIONRING_PROTO_CONSENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/crypto.h"
#include "core/status.h"
#include "proto/authcert.h"
#include "proto/netdoc.h"

#define CONSENSUS_MAX_AUTHORITIES 16
#define CONSENSUS_MAX_SIGNATURES 32 /* 9 authorities today, x2 digest algorithms */
#define CONSENSUS_MAX_NICKNAME 19
/* dir-spec.txt 5.1: a consensus that expired less than 24 hours ago is
 * "reasonably live" and may still be used (bootstrapping from a cache). */
#define CONSENSUS_REASONABLY_LIVE_SECS (24 * 60 * 60)
/* How long before valid-after a consensus is still accepted, for clocks
 * that run a little behind, before we call it "not yet valid". */
#define CONSENSUS_EARLY_SKEW_SECS (60 * 60)

/* Router flags as a bitmask (dir-spec.txt 3.4.1 "known-flags"). */
enum consensus_flag {
	RFLAG_AUTHORITY = 1u << 0,
	RFLAG_BADEXIT = 1u << 1,
	RFLAG_EXIT = 1u << 2,
	RFLAG_FAST = 1u << 3,
	RFLAG_GUARD = 1u << 4,
	RFLAG_HSDIR = 1u << 5,
	RFLAG_MIDDLEONLY = 1u << 6,
	RFLAG_NOEDCONSENSUS = 1u << 7,
	RFLAG_RUNNING = 1u << 8,
	RFLAG_STABLE = 1u << 9,
	RFLAG_STALEDESC = 1u << 10,
	RFLAG_SYBIL = 1u << 11,
	RFLAG_V2DIR = 1u << 12,
	RFLAG_VALID = 1u << 13,
};

struct consensus_router {
	char nickname[CONSENSUS_MAX_NICKNAME + 1];
	uint8_t identity[SHA1_LEN];
	uint8_t md_digest[SHA256_LEN]; /* "m": SHA-256 of the microdescriptor */
	time_t published;
	uint32_t ipv4; /* host order */
	uint16_t or_port;
	uint16_t dir_port;
	bool has_ipv6;
	bool bw_unmeasured;
	uint16_t ipv6_port;
	uint8_t ipv6[16];
	uint32_t flags;     /* enum consensus_flag bits */
	uint32_t bandwidth; /* "w Bandwidth=" in kilobytes/s; 0 if absent */
	struct netdoc_span version; /* "v" arguments ("Tor 0.4.9.11"); len 0 if absent */
	struct protover protos;     /* "pr" */
};

struct consensus_authority {
	char nickname[CONSENSUS_MAX_NICKNAME + 1 + 8]; /* may end in "-legacy" */
	uint8_t identity[SHA1_LEN];
	uint32_t ipv4;
	uint16_t dir_port;
	uint16_t or_port;
};

/* Signatures with other algorithms are skipped when parsing (3.4.1). */
enum consensus_sig_alg { CONSENSUS_SIG_SHA1, CONSENSUS_SIG_SHA256 };

struct consensus_sig {
	enum consensus_sig_alg alg;
	uint8_t identity[SHA1_LEN];
	uint8_t signing_key_digest[SHA1_LEN];
	uint16_t sig_len;
	uint8_t sig[512];
	unsigned line;
};

struct consensus_param {
	struct netdoc_span name;
	int32_t value;
};

/* bandwidth-weights (dir-spec.txt 3.4.1 footer); -1 when absent. */
struct consensus_bw_weights {
	int32_t wbd, wbe, wbg, wbm, wdb, web, wed, wee, weg, wem, wgb, wgd, wgg, wgm, wmb, wmd,
		wme, wmg, wmm;
	bool present;
};

struct consensus {
	char *doc; /* owned copy of the document, NUL-terminated */
	size_t doc_len;
	time_t valid_after, fresh_until, valid_until;
	uint32_t vote_delay, dist_delay;
	uint32_t consensus_method;
	uint32_t known_flags; /* enum consensus_flag bits the authorities voted on */
	struct protover recommended_client, required_client, recommended_relay, required_relay;
	struct consensus_param *params; /* sorted by name; points into doc */
	size_t n_params;
	bool has_srv_previous, has_srv_current;
	uint8_t srv_previous[32], srv_current[32];
	struct consensus_authority authorities[CONSENSUS_MAX_AUTHORITIES];
	size_t n_authorities;
	struct consensus_router *routers; /* sorted by identity as in the document */
	size_t n_routers;
	struct consensus_bw_weights weights;
	struct consensus_sig sigs[CONSENSUS_MAX_SIGNATURES];
	size_t n_sigs;
	size_t signed_len; /* doc[0..signed_len) is the signed portion */
	uint8_t digest_sha256[SHA256_LEN];
	uint8_t digest_sha1[SHA1_LEN];
};

/* Parse the microdesc consensus in doc[0..len) (borrowed; copied). On
 * PARSE_OK set *out (returns owned; consensus_free). PARSE_NEED_MORE means
 * the document is truncated; PARSE_INVALID that it is malformed. err gets
 * the reason and line either way. Does not check signatures or times. */
enum parse_result consensus_parse(const char *doc, size_t len, struct consensus **out,
				  struct netdoc_err *err);

/* Free c (NULL-safe). Takes ownership. */
void consensus_free(struct consensus *c);

/* Return the consensus parameter name (param-spec.txt) clamped to
 * [min, max], or def if the consensus does not set it. Borrows c. */
int32_t consensus_param(const struct consensus *c, const char *name, int32_t def, int32_t min,
			int32_t max);

/* Find the router with this RSA identity (binary search); NULL if none. */
const struct consensus_router *consensus_find_router(const struct consensus *c,
						     const uint8_t identity[SHA1_LEN]);

enum consensus_liveness {
	CONSENSUS_NOT_YET_VALID,
	CONSENSUS_LIVE,            /* valid-after <= now <= valid-until */
	CONSENSUS_REASONABLY_LIVE, /* expired less than 24 h ago (dir-spec 5.1) */
	CONSENSUS_TOO_OLD,
};
enum consensus_liveness consensus_liveness(const struct consensus *c, time_t now);

/* Verify c: count valid signatures by DISTINCT trusted authorities
 * (trusted_ids, their v3 identity digests) whose certificate in certs
 * matches the signature's identity and signing-key digest and is live at
 * now; require more than half of ntrusted (dir-spec 3.4.1 / tor's rule),
 * and that c is live or reasonably live at now. Return PARSE_OK;
 * PARSE_NEED_MORE when the threshold is not reached only because some
 * signing trusted authorities' certificates are missing (fetch them and
 * retry); PARSE_INVALID otherwise. Writes a reason into err (errlen bytes).
 * Borrows everything; any thread. */
enum parse_result consensus_verify(const struct consensus *c,
				   const struct authcert *const *certs, size_t ncerts,
				   const uint8_t (*trusted_ids)[SHA1_LEN], size_t ntrusted,
				   time_t now, char *err, size_t errlen);

#endif
