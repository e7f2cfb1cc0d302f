/* CERTS cells (tor-spec.txt section 4.2): given the entries (split by
 * proto/cell.h's cell_certs_parse, or from any other source), run every
 * check a client (the initiator) must make of the responder's certificates,
 * yielding the relay's RSA identity digest and Ed25519 identity; then
 * compare those with the identities we expected.
 *
 * Only the Ed25519+RSA path is accepted: a responder without Ed25519
 * certificates (tor-spec's "RSA identity only" list, type 1 + 2) is
 * rejected, because every relay a 0.4.9-era client may use has an Ed25519
 * identity (see proto/README.md). Not for the responder side (AUTH_CHALLENGE
 * / AUTHENTICATE, types 3 and 6) nor for TLS itself: the caller hands in the
 * DER of the TLS peer certificate. Sans-IO; the X.509/RSA objects it makes
 * are freed before it returns. Any thread. */
#ifndef ONIONRING_PROTO_CERTS_H
#define ONIONRING_PROTO_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/status.h"
#include "proto/cell.h"

/* X.509 clock-skew allowances, as tor applies them to CERTS-cell X.509
 * certs (tor_tls_cert_is_valid): an ID cert may have expired up to 48 hours
 * ago, and its validAfter may be up to 30 days ahead. */
#define CERTS_X509_PAST_SLOP (48 * 3600)
#define CERTS_X509_FUTURE_SLOP (30 * 86400)

/* The identities a responder proved. */
struct relay_identity {
	uint8_t rsa_id[20];  /* SHA1 of the PKCS#1 DER of the RSA identity key */
	uint8_t ed_id[32];   /* Ed25519 identity key */
};

/* Run tor-spec 4.2's "authenticate the responder as having a given
 * Ed25519,RSA identity key combination" checks over entries[0..n) (from
 * cell_certs_parse in proto/cell.h, or any other source), with
 * tls_der[0..tls_len) the DER of the certificate that authenticated the TLS
 * connection, at time now. PARSE_OK fills *out; PARSE_INVALID writes the
 * reason to err[0..errlen) (NUL-terminated, truncated if need be). Borrows
 * all inputs. Any thread. */
enum parse_result certs_validate_responder(const struct cell_cert_entry *entries, size_t n,
					   const uint8_t *tls_der, size_t tls_len, time_t now,
					   struct relay_identity *out, char *err, size_t errlen);

/* cell_certs_parse then certs_validate_responder on a complete CERTS cell
 * body (the whole var-cell payload): PARSE_OK or PARSE_INVALID, never
 * PARSE_NEED_MORE. Borrows all inputs. */
enum parse_result certs_validate_responder_cell(const uint8_t *body, size_t len,
						const uint8_t *tls_der, size_t tls_len,
						time_t now, struct relay_identity *out,
						char *err, size_t errlen);

/* Return true when got matches want_rsa (20 bytes) and want_ed (32 bytes);
 * either may be NULL (not checked). On a mismatch write to err[0..errlen) a
 * message naming the wanted and the received identities as tor prints them
 * (RSA: 40 upper-case hex digits; Ed25519: base64 without padding). */
bool relay_identity_check_expected(const struct relay_identity *got, const uint8_t *want_rsa,
				   const uint8_t *want_ed, char *err, size_t errlen);

/* Format an RSA identity digest as 40 upper-case hex digits plus NUL. */
void relay_identity_rsa_hex(const uint8_t rsa_id[20], char out[41]);
/* Format an Ed25519 identity as 43 base64 characters (no padding) plus NUL. */
void relay_identity_ed_b64(const uint8_t ed_id[32], char out[44]);

#endif
