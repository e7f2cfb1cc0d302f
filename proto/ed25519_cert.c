/* Ed25519 certificates (cert-spec.txt 2.1): parser, checker, encoder.
 * Not for deciding which certificates a handshake needs (proto/certs.c). */
#include "proto/ed25519_cert.h"

#include <string.h>

#include "core/bytes.h"
#include "core/crypto.h"

static enum parse_result cert_fail(const char **why, const char *reason)
{
	*why = reason;
	return PARSE_INVALID;
}

/* Read one extension from r into cert. On a short read leave r->err set and
 * return PARSE_OK; the caller turns that into NEED_MORE. */
static enum parse_result cert_parse_ext(struct rd *r, struct ed25519_cert *cert, const char **why)
{
	uint16_t ext_len = rd_u16(r);
	uint8_t ext_type = rd_u8(r);
	uint8_t flags = rd_u8(r);
	const uint8_t *data = rd_bytes(r, ext_len);

	if (!data)
		return PARSE_OK;
	if (ext_type == ED25519_CERT_EXT_SIGNED_WITH_KEY) {
		/* cert-spec 2.2.1: ExtLength = 32. tor rejects a second one too. */
		if (ext_len != ED25519_CERT_KEY_LEN)
			return cert_fail(why, "signed-with-ed25519-key extension is not 32 bytes");
		if (cert->signing_key)
			return cert_fail(why, "two signed-with-ed25519-key extensions");
		cert->signing_key = data;
	} else if (flags & ED25519_CERT_EXT_AFFECTS_VALIDATION) {
		/* cert-spec 2.1: must not accept what we do not understand. */
		return cert_fail(why, "unknown extension flagged AFFECTS_VALIDATION");
	}
	return PARSE_OK;
}

enum parse_result ed25519_cert_parse(const uint8_t *p, size_t len, struct ed25519_cert *out,
				     const char **why)
{
	struct rd r = rd_init(p, len);
	uint8_t version;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	version = rd_u8(&r);
	if (r.err) {
		*why = "Ed25519 certificate is truncated";
		return PARSE_NEED_MORE;
	}
	if (version != 1)
		return cert_fail(why, "Ed25519 certificate version is not 1");
	out->cert_type = rd_u8(&r);
	out->exp_hours = rd_u32(&r);
	out->key_type = rd_u8(&r);
	out->certified_key = rd_bytes(&r, ED25519_CERT_KEY_LEN);
	out->n_extensions = rd_u8(&r);
	for (unsigned i = 0; i < out->n_extensions && !r.err; i++) {
		if (cert_parse_ext(&r, out, why) != PARSE_OK)
			return PARSE_INVALID;
	}
	out->signature = rd_bytes(&r, ED25519_CERT_SIG_LEN);
	if (r.err) {
		*why = "Ed25519 certificate is truncated";
		return PARSE_NEED_MORE;
	}
	out->encoded = p;
	out->len = len - r.len;
	out->expires = (time_t)out->exp_hours * 3600;
	return PARSE_OK;
}

const char *ed25519_cert_check(const struct ed25519_cert *cert, const uint8_t *signing_key,
			       time_t now)
{
	if (!signing_key) {
		if (!cert->signing_key)
			return "no signing key given and no signed-with-ed25519-key extension";
		signing_key = cert->signing_key;
	} else if (cert->signing_key &&
		   memcmp(cert->signing_key, signing_key, ED25519_CERT_KEY_LEN) != 0) {
		/* cert-spec 2.2.1: the extension MUST match the signing key. */
		return "signed-with-ed25519-key extension names another key";
	}
	/* Valid through EXPIRATION_DATE itself, invalid after (tor does the same). */
	if (now > cert->expires)
		return "Ed25519 certificate expired";
	if (!crypto_ed25519_verify(cert->encoded, cert->len - ED25519_CERT_SIG_LEN,
				   cert->signature, signing_key))
		return "bad Ed25519 certificate signature";
	return NULL;
}

int ed25519_cert_encode(uint8_t *out, size_t cap, const struct ed25519_cert_params *params,
			const uint8_t signing_seed[32])
{
	uint8_t signer[ED25519_CERT_KEY_LEN];
	struct wr w = wr_init(out, cap);

	wr_u8(&w, 1);
	wr_u8(&w, params->cert_type);
	wr_u32(&w, params->exp_hours);
	wr_u8(&w, params->key_type);
	wr_bytes(&w, params->certified_key, ED25519_CERT_KEY_LEN);
	wr_u8(&w, params->include_signing_key ? 1 : 0);
	if (params->include_signing_key) {
		crypto_ed25519_public_from_seed(signer, signing_seed);
		wr_u16(&w, ED25519_CERT_KEY_LEN);
		wr_u8(&w, ED25519_CERT_EXT_SIGNED_WITH_KEY);
		wr_u8(&w, 0);
		wr_bytes(&w, signer, sizeof(signer));
	}
	if (w.err || !wr_room(&w, ED25519_CERT_SIG_LEN))
		return -1;
	crypto_ed25519_sign_seed(out + w.len, out, w.len, signing_seed);
	return (int)(w.len + ED25519_CERT_SIG_LEN);
}
