/* RSA->Ed25519 cross-certificate (cert-spec.txt 2.3): parser and checker.
 * Not for choosing which certificates a handshake needs (proto/certs.c). */
#include "proto/rsa_crosscert.h"

#include <string.h>

#include "core/bytes.h"
#include "core/crypto.h"

enum parse_result rsa_crosscert_parse(const uint8_t *p, size_t len, struct rsa_crosscert *out,
				      const char **why)
{
	struct rd r = rd_init(p, len);

	memset(out, 0, sizeof(*out));
	*why = NULL;
	out->ed_key = rd_bytes(&r, 32);
	out->exp_hours = rd_u32(&r);
	out->siglen = rd_u8(&r);
	if (!r.err && out->siglen == 0) {
		*why = "cross-certificate has an empty signature";
		return PARSE_INVALID;
	}
	out->sig = rd_bytes(&r, out->siglen);
	if (r.err) {
		*why = "cross-certificate is truncated";
		return PARSE_NEED_MORE;
	}
	out->encoded = p;
	out->len = len - r.len;
	out->expires = (time_t)out->exp_hours * 3600;
	return PARSE_OK;
}

const char *rsa_crosscert_check(const struct rsa_crosscert *cc, const struct crypto_rsa *rsa_id,
				const uint8_t ed_id[32], time_t now)
{
	struct crypto_sha256 h;
	uint8_t digest[SHA256_LEN];
	bool ok;

	if (memcmp(cc->ed_key, ed_id, 32) != 0)
		return "cross-certificate certifies another Ed25519 key";
	if (now > cc->expires)
		return "cross-certificate expired";
	/* cert-spec 2.3: the digest covers the prefix and ED25519_KEY ||
	 * EXPIRATION_DATE, not SIGLEN (tor signs exactly those 36 bytes). */
	crypto_sha256_init(&h);
	crypto_sha256_update(&h, RSA_CROSSCERT_PREFIX, strlen(RSA_CROSSCERT_PREFIX));
	crypto_sha256_update(&h, cc->encoded, RSA_CROSSCERT_SIGNED_LEN);
	crypto_sha256_peek(&h, digest);
	crypto_sha256_clear(&h);
	ok = crypto_rsa_verify_digest(rsa_id, cc->sig, cc->siglen, digest, sizeof(digest));
	return ok ? NULL : "cross-certificate is not signed by the RSA identity key";
}
