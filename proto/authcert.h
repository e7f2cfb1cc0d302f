/* Directory authority key certificates (dir-spec.txt section 3.1): parse
 * one or several concatenated certificates (as /tor/keys/all returns),
 * checking the fingerprint, the certification signature (identity key
 * over the certificate) and the cross-certificate (signing key over the
 * identity digest). Validity times are checked separately against a
 * caller's clock (authcert_is_live), since parsing must not read clocks.
 *
 * Control-plane: allocates the result. Any thread; objects are not
 * shared between threads without the caller's locking. Not for votes or
 * for deciding which authorities are trusted (consensus_verify does). */
#ifndef ONIONRING_PROTO_AUTHCERT_H
#define ONIONRING_PROTO_AUTHCERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/crypto.h"
#include "core/status.h"
#include "proto/netdoc.h"

/* Clock skew we tolerate on dir-key-published (a cert "from the future"). */
#define AUTHCERT_PUBLISHED_SKEW (24 * 60 * 60)

struct authcert {
	uint8_t identity_digest[SHA1_LEN];    /* SHA-1 of the identity key DER (v3ident) */
	uint8_t signing_key_digest[SHA1_LEN]; /* SHA-1 of the signing key DER */
	struct crypto_rsa *signing_key;       /* owned */
	time_t published;
	time_t expires;
	uint32_t dir_ipv4; /* host order; 0 without a dir-address line */
	uint16_t dir_port;
};

/* Parse and check the first certificate in doc[0..len) (borrowed).
 * On PARSE_OK set *out (returns owned; free with authcert_free) and
 * *consumed to the bytes through the end of its dir-key-certification
 * object. PARSE_NEED_MORE: the input stops inside the certificate.
 * PARSE_INVALID: malformed, or a signature/fingerprint check failed; err
 * says why and on which line. */
enum parse_result authcert_parse(const char *doc, size_t len, size_t *consumed,
				 struct authcert **out, struct netdoc_err *err);

/* Parse every certificate in doc (borrowed). On PARSE_OK set *out to an
 * owned array of *n owned certificates (free with authcert_free_all).
 * Fails as a whole if any certificate fails; err lines count from the
 * start of doc. */
enum parse_result authcert_parse_all(const char *doc, size_t len, struct authcert ***out,
				     size_t *n, struct netdoc_err *err);

/* True when now lies in [published - AUTHCERT_PUBLISHED_SKEW, expires). */
bool authcert_is_live(const struct authcert *c, time_t now);

/* Free c and its signing key (NULL-safe). Takes ownership. */
void authcert_free(struct authcert *c);
/* Free n certificates and the array (NULL-safe). Takes ownership. */
void authcert_free_all(struct authcert **certs, size_t n);

#endif
