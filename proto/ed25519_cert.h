/* Tor's Ed25519 certificates (cert-spec.txt section 2.1): parse into a
 * borrowed view, check signature and expiry, and encode (tests, and the
 * onion-service code for descriptor signing certs of type 8).
 *
 * Not for the RSA->Ed25519 cross-certificate (type 7 has its own format:
 * proto/rsa_crosscert.h) nor for deciding which certs a CERTS cell needs
 * (proto/certs.h). Sans-IO, no allocation; any thread. */
#ifndef ONIONRING_PROTO_ED25519_CERT_H
#define ONIONRING_PROTO_ED25519_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/status.h"

/* CERT_TYPE values (cert-spec A.1). */
#define ED25519_CERT_TYPE_ID_SIGNING 4
#define ED25519_CERT_TYPE_SIGNING_LINK 5
#define ED25519_CERT_TYPE_SIGNING_AUTH 6
#define ED25519_CERT_TYPE_HS_DESC_SIGNING 8
#define ED25519_CERT_TYPE_HS_INTRO_AUTH 9
#define ED25519_CERT_TYPE_NTOR_CROSSCERT 10
#define ED25519_CERT_TYPE_HS_ENC_KEY 11

/* CERT_KEY_TYPE values (cert-spec A.4). */
#define ED25519_CERT_KEY_ED25519 1
#define ED25519_CERT_KEY_SHA256_RSA 2
#define ED25519_CERT_KEY_SHA256_X509 3

/* Extension types and flags (cert-spec 2.1, 2.2, A.2). */
#define ED25519_CERT_EXT_SIGNED_WITH_KEY 4
#define ED25519_CERT_EXT_AFFECTS_VALIDATION 0x01

#define ED25519_CERT_KEY_LEN 32
#define ED25519_CERT_SIG_LEN 64
/* VERSION, CERT_TYPE, EXPIRATION_DATE, CERT_KEY_TYPE, CERTIFIED_KEY, N_EXTENSIONS. */
#define ED25519_CERT_HEADER_LEN (1 + 1 + 4 + 1 + 32 + 1)
#define ED25519_CERT_MIN_LEN (ED25519_CERT_HEADER_LEN + ED25519_CERT_SIG_LEN)

/* A parsed certificate. Every pointer borrows from the buffer given to
 * ed25519_cert_parse, which must outlive the view. */
struct ed25519_cert {
	const uint8_t *encoded;        /* the whole certificate */
	size_t len;                    /* its length (bytes consumed) */
	uint8_t cert_type;
	uint8_t key_type;
	uint32_t exp_hours;            /* EXPIRATION_DATE: hours since the epoch */
	time_t expires;                /* exp_hours * 3600: invalid after this */
	const uint8_t *certified_key;  /* 32 bytes */
	const uint8_t *signing_key;    /* 32 bytes from extension 4, or NULL */
	uint8_t n_extensions;
	const uint8_t *signature;      /* 64 bytes over encoded[0 .. len-64) */
};

/* Parse one certificate from the start of p[0..len). On PARSE_OK fill *out
 * (borrowing p) and set out->len to the bytes used; trailing bytes are the
 * caller's business. PARSE_NEED_MORE when p ends inside the certificate;
 * PARSE_INVALID with *why set (static string) for a bad version, a
 * signed-with-key extension that is not 32 bytes or appears twice, or an
 * unknown extension flagged AFFECTS_VALIDATION. Checks no signature. */
enum parse_result ed25519_cert_parse(const uint8_t *p, size_t len, struct ed25519_cert *out,
				     const char **why);

/* Check cert's signature with signing_key, or with the key of its
 * signed-with-ed25519-key extension when signing_key is NULL, and that it
 * has not expired at now. Return NULL when valid, else a static reason.
 * Borrows both. Any thread. */
const char *ed25519_cert_check(const struct ed25519_cert *cert, const uint8_t *signing_key,
			       time_t now);

/* What to encode. certified_key is 32 bytes; signing_seed is the 32-byte
 * Ed25519 seed of the signer (secret: the caller wipes it). */
struct ed25519_cert_params {
	uint8_t cert_type;
	uint8_t key_type;
	uint32_t exp_hours;
	const uint8_t *certified_key;
	bool include_signing_key;      /* add extension 4 with the signer's key */
};

/* Encode and sign a certificate into out[0..cap). Return its length, or -1
 * when cap is too small. Borrows everything. Any thread. */
int ed25519_cert_encode(uint8_t *out, size_t cap, const struct ed25519_cert_params *params,
			const uint8_t signing_seed[32]);

#endif
