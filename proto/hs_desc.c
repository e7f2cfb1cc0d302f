/* v3 onion-service descriptors, client side (see hs_desc.h). */
#include "proto/hs_desc.h"

#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/bytes.h"
#include "core/crypto.h"
#include "core/log.h"
#include "proto/ed25519_cert.h"
#include "proto/netdoc.h"
#include "proto/socks.h"

#define CERT_OBJ "ED25519 CERT"
#define MSG_OBJ "MESSAGE"

/* Map the tokenizer's result for a document that must go on. */
static enum parse_result next_tok(struct netdoc_reader *r, struct netdoc_tok *t, const char **why)
{
	struct netdoc_err err = { 0 };
	enum parse_result pr = netdoc_next(r, t, &err);

	if (pr != PARSE_OK)
		*why = err.reason ? err.reason : "bad item";
	return pr;
}

static bool one_u64_arg(const struct netdoc_tok *t, uint64_t max, uint64_t *out)
{
	struct netdoc_span a[2];

	return netdoc_args(t, a, 2) == 1 && netdoc_parse_u64(a[0], max, out);
}

/* Decode t's object of type `type` into buf at *used; set *p and *n. */
static bool take_object(const struct netdoc_tok *t, const char *type, uint8_t *buf, size_t cap,
			size_t *used, const uint8_t **p, size_t *n)
{
	ssize_t got = netdoc_object_decode(t, type, buf + *used, cap - *used);

	if (got < 0)
		return false;
	*p = buf + *used;
	*n = (size_t)got;
	*used += (size_t)got;
	return true;
}

/* Bits for "exactly once" bookkeeping of the outer items. */
enum { O_LIFETIME = 1, O_CERT = 2, O_REV = 4, O_SUPERENC = 8, O_ALL = 15 };

static enum parse_result outer_item(const struct netdoc_tok *t, struct hs_desc_outer *out,
				    unsigned *seen, uint8_t *buf, size_t cap, size_t *used,
				    const char **why)
{
	uint64_t v;
	unsigned bit = 0;

	if (netdoc_span_eq(t->kw, "descriptor-lifetime")) {
		bit = O_LIFETIME;
		/* 2.4: between 30 and 720 minutes. */
		if (!one_u64_arg(t, 720, &v) || v < 30)
			return (*why = "bad descriptor-lifetime", PARSE_INVALID);
		out->lifetime_min = (uint32_t)v;
	} else if (netdoc_span_eq(t->kw, "descriptor-signing-key-cert")) {
		bit = O_CERT;
		if (!take_object(t, CERT_OBJ, buf, cap, used, &out->cert, &out->cert_len))
			return (*why = "bad descriptor-signing-key-cert", PARSE_INVALID);
	} else if (netdoc_span_eq(t->kw, "revision-counter")) {
		bit = O_REV;
		if (!one_u64_arg(t, UINT64_MAX, &out->revision))
			return (*why = "bad revision-counter", PARSE_INVALID);
	} else if (netdoc_span_eq(t->kw, "superencrypted")) {
		bit = O_SUPERENC;
		if (!take_object(t, MSG_OBJ, buf, cap, used, &out->superenc, &out->superenc_len))
			return (*why = "bad superencrypted", PARSE_INVALID);
	} else if (netdoc_span_eq(t->kw, "hs-descriptor")) {
		return (*why = "hs-descriptor not first", PARSE_INVALID);
	}
	/* Unknown items are ignored (2.5.2.2's rule applies to all layers). */
	if (*seen & bit)
		return (*why = "item repeated", PARSE_INVALID);
	*seen |= bit;
	return PARSE_OK;
}

enum parse_result hs_desc_outer_parse(const char *doc, size_t len, struct hs_desc_outer *out,
				      uint8_t *buf, size_t cap, const char **why)
{
	struct netdoc_reader r;
	struct netdoc_tok t;
	struct netdoc_span a[2];
	enum parse_result pr;
	unsigned seen = 0;
	size_t used = 0;
	uint64_t v;

	memset(out, 0, sizeof(*out));
	netdoc_reader_init(&r, doc, len);
	if ((pr = next_tok(&r, &t, why)) != PARSE_OK)
		return pr;
	if (!netdoc_span_eq(t.kw, "hs-descriptor") || t.start != doc)
		return (*why = "does not start with hs-descriptor", PARSE_INVALID);
	if (netdoc_args(&t, a, 2) != 1 || !netdoc_parse_u64(a[0], UINT32_MAX, &v) || v != 3)
		return (*why = "not a version 3 descriptor", PARSE_INVALID);
	for (;;) {
		if ((pr = next_tok(&r, &t, why)) != PARSE_OK)
			return pr == PARSE_NEED_MORE ? (*why = "no signature", pr) : pr;
		if (netdoc_span_eq(t.kw, "signature"))
			break;
		if ((pr = outer_item(&t, out, &seen, buf, cap, &used, why)) != PARSE_OK)
			return pr;
	}
	if (seen != O_ALL)
		return (*why = "required item missing", PARSE_INVALID);
	if (netdoc_args(&t, a, 2) != 1 || !netdoc_parse_b64_exact(a[0], out->sig, 64) || t.obj_type.len)
		return (*why = "bad signature item", PARSE_INVALID);
	if (!netdoc_at_end(&r))
		return (*why = "items after signature", PARSE_INVALID);
	out->signed_len = (size_t)(t.start - doc);
	return PARSE_OK;
}

enum hs_desc_err hs_desc_outer_check(const struct hs_desc_outer *o, const char *doc,
				     const uint8_t blinded[32], time_t now, uint8_t signing_key[32])
{
	static const char prefix[] = HS_DESC_SIG_PREFIX;
	struct ed25519_cert c;
	const char *why = NULL;
	uint8_t *msg;
	size_t n = sizeof(prefix) - 1 + o->signed_len;
	bool ok;

	if (ed25519_cert_parse(o->cert, o->cert_len, &c, &why) != PARSE_OK || c.len != o->cert_len ||
	    c.cert_type != ED25519_CERT_TYPE_HS_DESC_SIGNING || c.key_type != ED25519_CERT_KEY_ED25519 ||
	    !c.signing_key)
		return HS_DESC_BAD_CERT;
	if (!crypto_memeq(c.signing_key, blinded, 32))
		return HS_DESC_WRONG_KEY;
	if (c.expires < now)
		return HS_DESC_EXPIRED;
	if (ed25519_cert_check(&c, blinded, now) != NULL)
		return HS_DESC_BAD_CERT;
	/* 2.4 "signature": over the prefix then everything before the
	 * signature line (tor: up to and including the preceding NL). */
	msg = malloc(n);
	if (!msg)
		abort();
	memcpy(msg, prefix, sizeof(prefix) - 1);
	memcpy(msg + sizeof(prefix) - 1, doc, o->signed_len);
	ok = crypto_ed25519_verify(msg, n, o->sig, c.certified_key);
	free(msg);
	if (!ok)
		return HS_DESC_BAD_SIGNATURE;
	memcpy(signing_key, c.certified_key, 32);
	return HS_DESC_OK;
}

/* keys = SHAKE-256(secret | subcred | INT_8(rev) | salt | constant, 80). */
static void layer_keys(uint8_t keys[80], const uint8_t *secret, size_t secret_len,
		       const uint8_t subcred[32], uint64_t revision, const uint8_t *salt,
		       const char *constant)
{
	size_t clen = strlen(constant), n = secret_len + 32 + 8 + HS_DESC_SALT_LEN + clen;
	uint8_t in[128];
	struct wr w = wr_init(in, sizeof(in));

	if (n > sizeof(in))
		abort(); /* our own constants and key sizes only */
	memcpy(in, secret, secret_len);
	memcpy(in + secret_len, subcred, 32);
	w.len = secret_len + 32;
	wr_u64(&w, revision);
	memcpy(in + w.len, salt, HS_DESC_SALT_LEN);
	memcpy(in + w.len + HS_DESC_SALT_LEN, constant, clen);
	crypto_shake256(in, n, keys, 80);
	crypto_wipe(in, sizeof(in));
}

/* D_MAC = SHA3-256(INT_8(32) | MAC_KEY | INT_8(16) | SALT | ENCRYPTED). */
static void layer_mac(uint8_t out[32], const uint8_t mac_key[32], const uint8_t *salt,
		      const uint8_t *enc, size_t enc_len)
{
	static const uint8_t l32[8] = { 0, 0, 0, 0, 0, 0, 0, 32 };
	static const uint8_t l16[8] = { 0, 0, 0, 0, 0, 0, 0, 16 };
	struct crypto_sha3 h;

	crypto_sha3_256_init(&h);
	crypto_sha3_256_update(&h, l32, 8);
	crypto_sha3_256_update(&h, mac_key, 32);
	crypto_sha3_256_update(&h, l16, 8);
	crypto_sha3_256_update(&h, salt, HS_DESC_SALT_LEN);
	crypto_sha3_256_update(&h, enc, enc_len);
	crypto_sha3_256_final(&h, out);
}

ssize_t hs_desc_layer_decrypt(uint8_t *out, size_t cap, const uint8_t *blob, size_t len,
			      const uint8_t *secret, size_t secret_len, const uint8_t subcred[32],
			      uint64_t revision, const char *constant)
{
	uint8_t keys[80], mac[32];
	struct crypto_aes256_ctr aes;
	size_t n;
	bool ok;

	if (len < HS_DESC_SALT_LEN + HS_DESC_MAC_LEN || cap < len)
		return -1;
	n = len - HS_DESC_SALT_LEN - HS_DESC_MAC_LEN;
	layer_keys(keys, secret, secret_len, subcred, revision, blob, constant);
	layer_mac(mac, keys + 48, blob, blob + HS_DESC_SALT_LEN, n);
	ok = crypto_memeq(mac, blob + len - HS_DESC_MAC_LEN, 32);
	if (ok) {
		memcpy(out, blob + HS_DESC_SALT_LEN, n);
		crypto_aes256_ctr_init(&aes, keys, keys + 32);
		crypto_aes256_ctr_xor(&aes, out, n);
		crypto_aes256_ctr_clear(&aes);
	}
	crypto_wipe(keys, sizeof(keys));
	if (!ok)
		return -1;
	/* 2.5.1.1: the plaintext is NUL-padded; the text ends at the first NUL. */
	return (ssize_t)strnlen((const char *)out, n);
}

ssize_t hs_desc_layer_encrypt(uint8_t *out, size_t cap, const uint8_t *pt, size_t len,
			      const uint8_t *secret, size_t secret_len, const uint8_t subcred[32],
			      uint64_t revision, const char *constant,
			      const uint8_t salt[HS_DESC_SALT_LEN])
{
	uint8_t keys[80];
	struct crypto_aes256_ctr aes;

	if (cap < len + HS_DESC_SALT_LEN + HS_DESC_MAC_LEN)
		return -1;
	layer_keys(keys, secret, secret_len, subcred, revision, salt, constant);
	memcpy(out, salt, HS_DESC_SALT_LEN);
	memcpy(out + HS_DESC_SALT_LEN, pt, len);
	crypto_aes256_ctr_init(&aes, keys, keys + 32);
	crypto_aes256_ctr_xor(&aes, out + HS_DESC_SALT_LEN, len);
	crypto_aes256_ctr_clear(&aes);
	layer_mac(out + HS_DESC_SALT_LEN + len, keys + 48, salt, out + HS_DESC_SALT_LEN, len);
	crypto_wipe(keys, sizeof(keys));
	return (ssize_t)(len + HS_DESC_SALT_LEN + HS_DESC_MAC_LEN);
}
