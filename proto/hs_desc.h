/* v3 onion-service descriptors, client side (rend-spec-v3 2.4 [DESC-OUTER],
 * 2.5 [HS-DESC-ENC]): parse the outer document and check its signing-key
 * certificate and signature; decrypt the superencrypted layer; parse the
 * middle layer and recover the descriptor cookie with a client-auth key
 * (2.5.1.2); decrypt and parse the inner layer's introduction points.
 *
 * Two levels of API:
 *  - the steps (hs_desc_outer_parse, hs_desc_outer_check, hs_desc_layer_*,
 *    hs_desc_middle_*, hs_desc_inner_parse): sans-IO, views borrowing the
 *    caller's buffers, no allocation except hs_desc_outer_check's copy of
 *    the signed text (Ed25519 needs prefix and text in one span); the fuzz
 *    targets drive these;
 *  - hs_desc_decode: all of it for the app layer, with control-plane
 *    allocation of the working buffers, giving an owned result.
 * Not for: fetching (the app asks an HSDir over BEGIN_DIR for
 * /tor/hs/3/<base64 blinded key>), choosing the HSDir (proto/hs_keys.h),
 * or building descriptors (the service side; hs_desc_layer_encrypt exists
 * for tests). Any thread. */
#ifndef ONIONRING_PROTO_HS_DESC_H
#define ONIONRING_PROTO_HS_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/status.h"

/* HSDirs refuse descriptors above 50 KB (2.4). */
#define HS_DESC_MAX_LEN 50000
/* 2.5.4: at most 20 introduction points. */
#define HS_DESC_MAX_INTRO 20
/* Link specifier block of one intro point: NSPEC | specs; room for
 * IPv4, IPv6, legacy id, ed25519 id and a few unknown ones. */
#define HS_DESC_LSPEC_MAX 255
#define HS_DESC_SALT_LEN 16
#define HS_DESC_MAC_LEN 32
#define HS_DESC_COOKIE_LEN 16 /* tor's N_hs_desc_enc (the spec says 32) */
#define HS_DESC_SIG_PREFIX "Tor onion service descriptor sig v3"
#define HS_DESC_CONST_SUPERENC "hsdir-superencrypted-data"
#define HS_DESC_CONST_ENC "hsdir-encrypted-data"

/* Why a descriptor could not be used. The SOCKS mapping is
 * hs_desc_socks_reply. */
enum hs_desc_err {
	HS_DESC_OK = 0,
	HS_DESC_MALFORMED,         /* outer document does not parse */
	HS_DESC_BAD_CERT,          /* signing-key cert: wrong type/key/signature */
	HS_DESC_WRONG_KEY,         /* cert's blinded key is not the one we asked for */
	HS_DESC_EXPIRED,           /* signing-key cert expired */
	HS_DESC_BAD_SIGNATURE,     /* descriptor signature does not verify */
	HS_DESC_BAD_OUTER_MAC,     /* first layer MAC: not this service's descriptor */
	HS_DESC_BAD_MIDDLE,        /* first-layer plaintext does not parse */
	HS_DESC_NEED_CLIENT_AUTH,  /* inner layer needs a cookie and we have no key */
	HS_DESC_BAD_CLIENT_AUTH,   /* we have a key but it opens nothing */
	HS_DESC_BAD_INNER,         /* second-layer plaintext does not parse */
	HS_DESC_NO_INTRO,          /* parsed, but no usable introduction point */
};

/* The outer document, borrowing the text given to hs_desc_outer_parse. */
struct hs_desc_outer {
	uint32_t lifetime_min;
	uint64_t revision;
	const uint8_t *cert;        /* decoded cert bytes (in the caller's buffer) */
	size_t cert_len;
	const uint8_t *superenc;    /* decoded blob (in the caller's buffer) */
	size_t superenc_len;
	uint8_t sig[64];
	size_t signed_len;          /* doc[0 .. signed_len) is what the signature covers */
};

/* Parse doc[0..len) (it must end with the signature line and its NL) into
 * out, decoding the cert and the superencrypted blob into buf (cap bytes:
 * len is always enough). PARSE_NEED_MORE when doc stops inside an item or
 * before the signature; PARSE_INVALID with *why for the rest. Checks no
 * signature. Borrows doc and buf. */
enum parse_result hs_desc_outer_parse(const char *doc, size_t len, struct hs_desc_outer *out,
				      uint8_t *buf, size_t cap, const char **why);

/* Check o's signing-key cert (type 8, certified ed25519 key, signed with
 * its signed-with-key extension, which must equal blinded) at now, and the
 * descriptor signature over doc with the certified key. On HS_DESC_OK
 * write the descriptor signing key to signing_key. */
enum hs_desc_err hs_desc_outer_check(const struct hs_desc_outer *o, const char *doc,
				     const uint8_t blinded[32], time_t now, uint8_t signing_key[32]);

/* Decrypt one layer (2.5.3): blob = SALT | ENCRYPTED | MAC, keys from
 * SHAKE-256(secret | subcred | INT_8(revision) | SALT | constant). Write the
 * plaintext, cut at its first NUL (the padding), to out (cap >= blob
 * length) and return its length; -1 for a short blob, a MAC mismatch or
 * a secret longer than 64 bytes. */
ssize_t hs_desc_layer_decrypt(uint8_t *out, size_t cap, const uint8_t *blob, size_t len,
			      const uint8_t *secret, size_t secret_len, const uint8_t subcred[32],
			      uint64_t revision, const char *constant);
/* The inverse, with the caller's salt (tests and the service side):
 * returns the blob length or -1 when cap is too small. No padding added. */
ssize_t hs_desc_layer_encrypt(uint8_t *out, size_t cap, const uint8_t *pt, size_t len,
			      const uint8_t *secret, size_t secret_len, const uint8_t subcred[32],
			      uint64_t revision, const char *constant,
			      const uint8_t salt[HS_DESC_SALT_LEN]);

/* The first-layer plaintext (2.5.1.2), borrowing the text. */
struct hs_desc_middle {
	uint8_t ephemeral_key[32];
	const char *text;           /* the plaintext (auth-client lines are re-read) */
	size_t text_len;
	unsigned n_auth_client;
	const uint8_t *encrypted;   /* decoded "encrypted" blob, in the caller's buffer */
	size_t encrypted_len;
};

/* Parse pt[0..len) (must end with NL) into out, decoding the inner blob
 * into buf (cap >= len). Tri-state as above. */
enum parse_result hs_desc_middle_parse(const char *pt, size_t len, struct hs_desc_middle *out,
				       uint8_t *buf, size_t cap, const char **why);

/* Find the auth-client line for the client's x25519 secret key (2.5.1.2:
 * SECRET_SEED = X25519(sk, ephemeral), KEYS = SHAKE-256(subcred |
 * SECRET_SEED, 40), CLIENT-ID = KEYS[0:8], COOKIE-KEY = KEYS[8:40]) and
 * decrypt its cookie into cookie. False when no line has our client id. */
bool hs_desc_middle_cookie(const struct hs_desc_middle *m, const uint8_t client_sk[32],
			   const uint8_t subcred[32], uint8_t cookie[HS_DESC_COOKIE_LEN]);

/* One introduction point (2.5.2.2), by value. */
struct hs_desc_intro {
	uint8_t link_specs[HS_DESC_LSPEC_MAX]; /* NSPEC | specs, verbatim for EXTEND2 */
	size_t link_specs_len;
	uint8_t onion_key[32];      /* the intro relay's ntor key */
	uint8_t auth_key[32];       /* KP_hs_ipt_sid: INTRODUCE1's AUTH_KEY */
	uint8_t enc_key[32];        /* KP_hss_ntor: hs-ntor's B */
};

#define HS_DESC_CREATE2_NTOR (1u << 2)

struct hs_desc_inner {
	uint32_t create2_formats;   /* bit n set for HTYPE n (n < 32) */
	bool intro_auth_required;
	bool single_onion;
	bool flow_control;          /* "flow-control" present: congestion control */
	uint8_t sendme_inc;         /* its sendme increment (0 when absent) */
	size_t n_intro;
	struct hs_desc_intro intro[HS_DESC_MAX_INTRO];
};

/* Parse the second-layer plaintext pt[0..len) (must end with NL) into out.
 * Each intro point's auth-key (type 9) and enc-key-cert (type 11) must be
 * signed by signing_key and unexpired at now; signing_key NULL skips those
 * signature checks (fuzzing only). Intro points with unknown key types or
 * without IPv4 and legacy-id link specifiers are skipped, not fatal.
 * Tri-state; out->n_intro may be 0. Borrows pt. */
enum parse_result hs_desc_inner_parse(const char *pt, size_t len, const uint8_t *signing_key,
				      time_t now, struct hs_desc_inner *out, const char **why);

/* Everything at once for the app layer. doc is the HSDir's reply body
 * (borrowed); blinded/subcred from proto/hs_keys.h for the period the
 * descriptor was fetched for; client_sk the x25519 key from
 * ClientOnionAuthDir for this address, or NULL. On HS_DESC_OK *out is an
 * owned result (free with hs_desc_inner_free); else *why says more.
 * Allocates (control plane). Any thread. */
enum hs_desc_err hs_desc_decode(const char *doc, size_t len, const uint8_t blinded[32],
				const uint8_t subcred[32], const uint8_t *client_sk, time_t now,
				struct hs_desc_inner **out, uint64_t *revision, const char **why);
void hs_desc_inner_free(struct hs_desc_inner *d);

/* A line for logs, and the SOCKS5 reply for err: 0xF4 missing client
 * auth, 0xF5 wrong client auth, 0xF1 invalid descriptor otherwise
 * (socks-extensions.txt). Static strings. */
const char *hs_desc_strerror(enum hs_desc_err err);
uint8_t hs_desc_socks_reply(enum hs_desc_err err);

#endif
