/* The RSA->Ed25519 cross-certificate (CERTS cell type 7, cert-spec.txt
 * section 2.3): a relay's RSA-1024 identity key vouches for its Ed25519
 * identity key. Parse into a borrowed view and check it.
 *
 * Not for Ed25519-signed certificates (proto/ed25519_cert.h) nor for the
 * ntor-onion-key cross-certificate of router descriptors. Sans-IO, no
 * allocation; any thread. */
#ifndef ONIONRING_PROTO_RSA_CROSSCERT_H
#define ONIONRING_PROTO_RSA_CROSSCERT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/status.h"

struct crypto_rsa;

/* ED25519_KEY [32] and EXPIRATION_DATE [4] are what the signature covers. */
#define RSA_CROSSCERT_SIGNED_LEN 36
#define RSA_CROSSCERT_PREFIX "Tor TLS RSA/Ed25519 cross-certificate"

/* A parsed cross-certificate; pointers borrow from the parsed buffer. */
struct rsa_crosscert {
	const uint8_t *encoded;  /* the whole certificate; signed part first */
	size_t len;              /* bytes consumed */
	const uint8_t *ed_key;   /* 32 bytes: the certified Ed25519 identity */
	uint32_t exp_hours;      /* hours since the epoch */
	time_t expires;          /* exp_hours * 3600 */
	const uint8_t *sig;      /* siglen bytes */
	uint8_t siglen;
};

/* Parse a cross-certificate from the start of p[0..len); set out->len to
 * the bytes used. PARSE_NEED_MORE when p ends inside it. The format has no
 * invalid byte values, so PARSE_INVALID is only for siglen 0. Borrows p. */
enum parse_result rsa_crosscert_parse(const uint8_t *p, size_t len, struct rsa_crosscert *out,
				      const char **why);

/* Check that cc certifies ed_id (32 bytes), has not expired at now, and is
 * signed by rsa_id over SHA256(RSA_CROSSCERT_PREFIX || signed part) with
 * tor's raw-digest PKCS#1 v1.5. Return NULL when valid, else a static
 * reason. Borrows all. Any thread. */
const char *rsa_crosscert_check(const struct rsa_crosscert *cc, const struct crypto_rsa *rsa_id,
				const uint8_t ed_id[32], time_t now);

#endif
