/* v3 onion-service descriptors, client side (see hs_desc.h). */
#include "proto/hs_desc.h"

#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/bug.h"
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

/* Longest SECRET_DATA: blinded key and descriptor cookie (2.5.2.1). */
#define LAYER_SECRET_MAX 64

/* keys = SHAKE-256(secret | subcred | INT_8(rev) | salt | constant, 80). */
static void layer_keys(uint8_t keys[80], const uint8_t *secret, size_t secret_len,
		       const uint8_t subcred[32], uint64_t revision, const uint8_t *salt,
		       const char *constant)
{
	size_t clen = strlen(constant), n = secret_len + 32 + 8 + HS_DESC_SALT_LEN + clen;
	uint8_t in[LAYER_SECRET_MAX + 32 + 8 + HS_DESC_SALT_LEN + 64];
	struct wr w = wr_init(in, sizeof(in));

	/* Callers check secret_len; the constants are ours and short. */
	BUG_ON(n > sizeof(in));
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

	if (len < HS_DESC_SALT_LEN + HS_DESC_MAC_LEN || cap < len || secret_len > LAYER_SECRET_MAX)
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

	if (cap < len + HS_DESC_SALT_LEN + HS_DESC_MAC_LEN || secret_len > LAYER_SECRET_MAX)
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

/* ---- first-layer plaintext (2.5.1.2) ---- */

enum { M_TYPE = 1, M_EPH = 2, M_ENC = 4, M_ALL = 7 };

/* client-id (8) iv (16) encrypted-cookie (16). 2.5.1.2 calls the cookie
 * "32 random bytes" but tor's cookies (and so its lines) are 16 bytes:
 * seen in descriptors tor published (test/vectors/hs/auth.desc). */
static bool auth_client_args(const struct netdoc_tok *t, uint8_t id[8], uint8_t iv[16],
			     uint8_t ck[HS_DESC_COOKIE_LEN])
{
	struct netdoc_span a[4];

	return netdoc_args(t, a, 4) == 3 && netdoc_parse_b64_exact(a[0], id, 8) &&
	       netdoc_parse_b64_exact(a[1], iv, 16) && netdoc_parse_b64_exact(a[2], ck, HS_DESC_COOKIE_LEN);
}

static enum parse_result middle_item(const struct netdoc_tok *t, struct hs_desc_middle *out,
				     unsigned *seen, uint8_t *buf, size_t cap, const char **why)
{
	struct netdoc_span a[2];
	uint8_t id[8], iv[16], ck[HS_DESC_COOKIE_LEN];
	size_t used = 0;
	unsigned bit = 0;

	if (netdoc_span_eq(t->kw, "desc-auth-type")) {
		bit = M_TYPE;
		if (netdoc_args(t, a, 2) < 1 || !netdoc_span_eq(a[0], "x25519"))
			return (*why = "unknown desc-auth-type", PARSE_INVALID);
	} else if (netdoc_span_eq(t->kw, "desc-auth-ephemeral-key")) {
		bit = M_EPH;
		if (netdoc_args(t, a, 2) != 1 || !netdoc_parse_b64_exact(a[0], out->ephemeral_key, 32))
			return (*why = "bad desc-auth-ephemeral-key", PARSE_INVALID);
	} else if (netdoc_span_eq(t->kw, "auth-client")) {
		if (!auth_client_args(t, id, iv, ck))
			return (*why = "bad auth-client", PARSE_INVALID);
		out->n_auth_client++;
	} else if (netdoc_span_eq(t->kw, "encrypted")) {
		bit = M_ENC;
		if (!take_object(t, MSG_OBJ, buf, cap, &used, &out->encrypted, &out->encrypted_len))
			return (*why = "bad encrypted", PARSE_INVALID);
	}
	if (*seen & bit)
		return (*why = "item repeated", PARSE_INVALID);
	*seen |= bit;
	return PARSE_OK;
}

enum parse_result hs_desc_middle_parse(const char *pt, size_t len, struct hs_desc_middle *out,
				       uint8_t *buf, size_t cap, const char **why)
{
	struct netdoc_reader r;
	struct netdoc_tok t;
	enum parse_result pr;
	unsigned seen = 0;

	memset(out, 0, sizeof(*out));
	out->text = pt;
	out->text_len = len;
	netdoc_reader_init(&r, pt, len);
	while (!netdoc_at_end(&r)) {
		if ((pr = next_tok(&r, &t, why)) != PARSE_OK)
			return pr;
		if ((pr = middle_item(&t, out, &seen, buf, cap, why)) != PARSE_OK)
			return pr;
	}
	if (seen != M_ALL)
		return (*why = "required item missing", PARSE_INVALID);
	/* 2.5.1.2: auth-client is "at least once". */
	if (out->n_auth_client == 0)
		return (*why = "no auth-client", PARSE_INVALID);
	return PARSE_OK;
}

bool hs_desc_middle_cookie(const struct hs_desc_middle *m, const uint8_t client_sk[32],
			   const uint8_t subcred[32], uint8_t cookie[HS_DESC_COOKIE_LEN])
{
	uint8_t in[64], keys[40], id[8], iv[16], ck[HS_DESC_COOKIE_LEN];
	struct netdoc_reader r;
	struct netdoc_tok t;
	struct netdoc_err err;
	bool found = false;

	memcpy(in, subcred, 32);
	if (!crypto_x25519(in + 32, client_sk, m->ephemeral_key))
		return false;
	crypto_shake256(in, sizeof(in), keys, sizeof(keys));
	netdoc_reader_init(&r, m->text, m->text_len);
	while (!found && !netdoc_at_end(&r) && netdoc_next(&r, &t, &err) == PARSE_OK) {
		if (!netdoc_span_eq(t.kw, "auth-client") || !auth_client_args(&t, id, iv, ck))
			continue;
		found = crypto_memeq(id, keys, 8);
	}
	if (found) {
		struct crypto_aes256_ctr aes;

		/* encrypted-cookie = STREAM(iv, COOKIE-KEY) XOR N_hs_desc_enc. */
		memcpy(cookie, ck, HS_DESC_COOKIE_LEN);
		crypto_aes256_ctr_init(&aes, keys + 8, iv);
		crypto_aes256_ctr_xor(&aes, cookie, HS_DESC_COOKIE_LEN);
		crypto_aes256_ctr_clear(&aes);
	}
	crypto_wipe(in, sizeof(in));
	crypto_wipe(keys, sizeof(keys));
	return found;
}

/* ---- second-layer plaintext (2.5.2.2) ---- */

/* Per intro point: which items were seen, and whether it is still usable. */
enum { I_ONION = 1, I_AUTH = 2, I_ENC = 4, I_ENCCERT = 8, I_ALL = 15, I_BAD = 16 };

struct inner_state {
	const uint8_t *signing_key;
	time_t now;
	struct hs_desc_intro *cur; /* NULL before the first introduction-point */
	unsigned bits;
	unsigned n_items;          /* introduction-point items seen */
	bool have_create2;
};

/* Basic link specifier checks (tor-spec 5.1.2 via 2.5.2.2): well-formed,
 * known types of the right length, and IPv4 and legacy id present. */
static bool link_specs_ok(const uint8_t *p, size_t n)
{
	static const uint8_t want_len[4] = { 6, 18, 20, 32 };
	struct rd r = rd_init(p, n);
	unsigned nspec = rd_u8(&r), have = 0;

	for (unsigned i = 0; i < nspec && !r.err; i++) {
		uint8_t type = rd_u8(&r), len = rd_u8(&r);

		(void)rd_bytes(&r, len);
		if (type < 4 && len != want_len[type])
			return false;
		if (type < 4)
			have |= 1u << type;
	}
	return !r.err && rd_left(&r) == 0 && (have & 5) == 5;
}

/* "ntor <base64 key>" arguments of onion-key / enc-key; false for other
 * key types (ignored, 2.5.2.2). */
static bool ntor_key_arg(const struct netdoc_tok *t, uint8_t key[32], bool *malformed)
{
	struct netdoc_span a[3];
	size_t n = netdoc_args(t, a, 3);

	*malformed = false;
	if (n < 1 || !netdoc_span_eq(a[0], "ntor"))
		return false;
	if (n != 2 || !netdoc_parse_b64_exact(a[1], key, 32))
		*malformed = true;
	return !*malformed;
}

/* Check an intro point cert (type 9 or 11) signed by the descriptor
 * signing key; write its certified key. */
static bool intro_cert(const struct netdoc_tok *t, uint8_t type, const struct inner_state *st,
		       uint8_t key[32])
{
	uint8_t buf[512];
	struct ed25519_cert c;
	const char *why = NULL;
	ssize_t n = netdoc_object_decode(t, CERT_OBJ, buf, sizeof(buf));

	if (n < 0 || ed25519_cert_parse(buf, (size_t)n, &c, &why) != PARSE_OK || c.len != (size_t)n ||
	    c.cert_type != type || c.key_type != ED25519_CERT_KEY_ED25519 || !c.signing_key)
		return false;
	if (st->signing_key && (!crypto_memeq(c.signing_key, st->signing_key, 32) ||
				ed25519_cert_check(&c, st->signing_key, st->now) != NULL))
		return false;
	memcpy(key, c.certified_key, 32);
	return true;
}

static void intro_item(const struct netdoc_tok *t, struct inner_state *st)
{
	struct hs_desc_intro *ip = st->cur;
	unsigned bit = 0;
	bool ok = true, bad = false;

	if (netdoc_span_eq(t->kw, "onion-key")) {
		if (ntor_key_arg(t, ip->onion_key, &bad))
			bit = I_ONION;
	} else if (netdoc_span_eq(t->kw, "enc-key")) {
		if (ntor_key_arg(t, ip->enc_key, &bad))
			bit = I_ENC;
	} else if (netdoc_span_eq(t->kw, "auth-key")) {
		bit = I_AUTH;
		ok = intro_cert(t, ED25519_CERT_TYPE_HS_INTRO_AUTH, st, ip->auth_key);
	} else if (netdoc_span_eq(t->kw, "enc-key-cert")) {
		bit = I_ENCCERT;
		ok = intro_cert(t, ED25519_CERT_TYPE_HS_ENC_KEY, st, (uint8_t[32]){ 0 });
	}
	if (bad || !ok || (st->bits & bit))
		st->bits |= I_BAD;
	st->bits |= bit;
}

/* Keep the intro point in progress if it is complete and sound. */
static void intro_finish(struct hs_desc_inner *out, struct inner_state *st)
{
	if (st->cur && (st->bits & (I_ALL | I_BAD)) == I_ALL)
		out->n_intro++;
	st->cur = NULL;
}

static enum parse_result intro_start(const struct netdoc_tok *t, struct hs_desc_inner *out,
				     struct inner_state *st, const char **why)
{
	struct netdoc_span a[2];
	struct hs_desc_intro *ip;
	uint8_t buf[HS_DESC_LSPEC_MAX];
	ssize_t n;

	intro_finish(out, st);
	/* 2.5.4: at most 20, usable or not. */
	if (++st->n_items > HS_DESC_MAX_INTRO)
		return (*why = "too many introduction points", PARSE_INVALID);
	ip = &out->intro[out->n_intro];
	memset(ip, 0, sizeof(*ip));
	st->cur = ip;
	st->bits = 0;
	if (netdoc_args(t, a, 2) != 1)
		return (*why = "bad introduction-point", PARSE_INVALID);
	n = base64_decode(buf, sizeof(buf), a[0].p, a[0].len);
	if (n < 0 || !link_specs_ok(buf, (size_t)n)) {
		st->bits = I_BAD;
		return PARSE_OK;
	}
	memcpy(ip->link_specs, buf, (size_t)n);
	ip->link_specs_len = (size_t)n;
	return PARSE_OK;
}

static enum parse_result header_item(const struct netdoc_tok *t, struct hs_desc_inner *out,
				     struct inner_state *st, const char **why)
{
	struct netdoc_span a[32], rest;
	uint64_t v;

	if (netdoc_span_eq(t->kw, "create2-formats")) {
		size_t n = netdoc_args(t, a, 32);

		if (st->have_create2 || n == 0 || n > 32)
			return (*why = "bad create2-formats", PARSE_INVALID);
		for (size_t i = 0; i < n; i++)
			if (netdoc_parse_u64(a[i], 65535, &v) && v < 32)
				out->create2_formats |= 1u << v;
		st->have_create2 = true;
	} else if (netdoc_span_eq(t->kw, "intro-auth-required")) {
		out->intro_auth_required = true;
	} else if (netdoc_span_eq(t->kw, "single-onion-service")) {
		out->single_onion = true;
	} else if (netdoc_span_eq(t->kw, "flow-control")) {
		/* "flow-control" SP version-range SP sendme-inc (proposal 324). */
		rest = t->args;
		if (!netdoc_arg_next(&rest, &a[0]) || !netdoc_arg_next(&rest, &a[1]) ||
		    !netdoc_parse_u64(a[1], 255, &v))
			return (*why = "bad flow-control", PARSE_INVALID);
		out->flow_control = true;
		out->sendme_inc = (uint8_t)v;
	}
	return PARSE_OK;
}

enum parse_result hs_desc_inner_parse(const char *pt, size_t len, const uint8_t *signing_key,
				      time_t now, struct hs_desc_inner *out, const char **why)
{
	struct inner_state st = { signing_key, now, NULL, 0, 0, false };
	struct netdoc_reader r;
	struct netdoc_tok t;
	enum parse_result pr;

	memset(out, 0, sizeof(*out));
	netdoc_reader_init(&r, pt, len);
	while (!netdoc_at_end(&r)) {
		if ((pr = next_tok(&r, &t, why)) != PARSE_OK)
			return pr;
		if (netdoc_span_eq(t.kw, "introduction-point"))
			pr = intro_start(&t, out, &st, why);
		else if (st.cur)
			intro_item(&t, &st);
		else
			pr = header_item(&t, out, &st, why);
		if (pr != PARSE_OK)
			return pr;
	}
	intro_finish(out, &st);
	if (!st.have_create2)
		return (*why = "no create2-formats", PARSE_INVALID);
	return PARSE_OK;
}

/* ---- everything at once (control plane) ---- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		abort(); /* control plane: allocation failure is fatal (STYLE.md) */
	return p;
}

/* Copy text[0..len) into a new buffer that ends with NL (tor leaves the
 * last NL off the first-layer plaintext, 2.5.1.2 compatibility note). */
static char *with_final_nl(const char *text, size_t len, size_t *out_len)
{
	char *s = xmalloc(len + 1);

	memcpy(s, text, len);
	*out_len = len;
	if (len == 0 || s[len - 1] != '\n')
		s[(*out_len)++] = '\n';
	return s;
}

/* Decrypt the superencrypted layer and parse it into *m; the buffers are
 * owned by the caller afterwards (*text, *blob). */
static enum hs_desc_err open_middle(const struct hs_desc_outer *o, const uint8_t blinded[32],
				    const uint8_t subcred[32], struct hs_desc_middle *m,
				    char **text, uint8_t **blob, const char **why)
{
	uint8_t *pt = xmalloc(o->superenc_len);
	ssize_t n = hs_desc_layer_decrypt(pt, o->superenc_len, o->superenc, o->superenc_len, blinded,
					  32, subcred, o->revision, HS_DESC_CONST_SUPERENC);
	size_t tlen;

	if (n < 0) {
		free(pt);
		return (*why = "superencrypted MAC mismatch", HS_DESC_BAD_OUTER_MAC);
	}
	*text = with_final_nl((const char *)pt, (size_t)n, &tlen);
	free(pt);
	*blob = xmalloc(tlen);
	if (hs_desc_middle_parse(*text, tlen, m, *blob, tlen, why) != PARSE_OK)
		return HS_DESC_BAD_MIDDLE;
	return HS_DESC_OK;
}

/* Decrypt the inner layer with secret (blinded | cookie, or blinded). */
static ssize_t open_inner(const struct hs_desc_middle *m, const uint8_t *secret, size_t slen,
			  const uint8_t subcred[32], uint64_t rev, uint8_t *out)
{
	return hs_desc_layer_decrypt(out, m->encrypted_len, m->encrypted, m->encrypted_len, secret,
				     slen, subcred, rev, HS_DESC_CONST_ENC);
}

/* 2.5.1.3 and the 0xF4/0xF5 distinction: with a key, use our cookie if an
 * auth-client line is ours, else try without one; without a key, a MAC
 * failure means the service wants client auth. */
static enum hs_desc_err decrypt_inner(const struct hs_desc_middle *m, const uint8_t blinded[32],
				      const uint8_t subcred[32], const uint8_t *client_sk, uint64_t rev,
				      uint8_t *out, size_t *out_len, const char **why)
{
	uint8_t secret[32 + HS_DESC_COOKIE_LEN];
	ssize_t n = -1;
	bool mine = false;

	memcpy(secret, blinded, 32);
	if (client_sk && (mine = hs_desc_middle_cookie(m, client_sk, subcred, secret + 32)))
		n = open_inner(m, secret, sizeof(secret), subcred, rev, out);
	if (!mine)
		n = open_inner(m, secret, 32, subcred, rev, out);
	crypto_wipe(secret, sizeof(secret));
	if (n >= 0) {
		*out_len = (size_t)n;
		return HS_DESC_OK;
	}
	if (!client_sk)
		return (*why = "service requires client authorization", HS_DESC_NEED_CLIENT_AUTH);
	return (*why = mine ? "client authorization key opens a cookie that does not decrypt"
			    : "no auth-client entry for our key",
		HS_DESC_BAD_CLIENT_AUTH);
}

/* Layers two and three, after the outer checks passed. */
static enum hs_desc_err decode_layers(const struct hs_desc_outer *o, const uint8_t blinded[32],
				      const uint8_t subcred[32], const uint8_t *client_sk,
				      const uint8_t signing_key[32], time_t now,
				      struct hs_desc_inner *res, const char **why)
{
	struct hs_desc_middle m;
	char *mtext = NULL, *itext = NULL;
	uint8_t *mblob = NULL, *ipt = NULL;
	size_t ilen = 0, tlen;
	enum hs_desc_err e;

	e = open_middle(o, blinded, subcred, &m, &mtext, &mblob, why);
	if (e == HS_DESC_OK) {
		ipt = xmalloc(m.encrypted_len);
		e = decrypt_inner(&m, blinded, subcred, client_sk, o->revision, ipt, &ilen, why);
	}
	if (e == HS_DESC_OK) {
		itext = with_final_nl((const char *)ipt, ilen, &tlen);
		if (hs_desc_inner_parse(itext, tlen, signing_key, now, res, why) != PARSE_OK)
			e = HS_DESC_BAD_INNER;
		else if (res->n_intro == 0)
			e = (*why = "no usable introduction point", HS_DESC_NO_INTRO);
	}
	if (ipt)
		crypto_wipe(ipt, m.encrypted_len);
	free(ipt);
	free(itext);
	free(mtext);
	free(mblob);
	return e;
}

enum hs_desc_err hs_desc_decode(const char *doc, size_t len, const uint8_t blinded[32],
				const uint8_t subcred[32], const uint8_t *client_sk, time_t now,
				struct hs_desc_inner **out, uint64_t *revision, const char **why)
{
	struct hs_desc_outer o;
	struct hs_desc_inner *res;
	uint8_t signing_key[32], *buf;
	size_t dlen;
	char *d;
	enum hs_desc_err e;

	*out = NULL;
	*why = "";
	if (len > HS_DESC_MAX_LEN)
		return (*why = "descriptor too large", HS_DESC_MALFORMED);
	d = with_final_nl(doc, len, &dlen);
	buf = xmalloc(dlen);
	if (hs_desc_outer_parse(d, dlen, &o, buf, dlen, why) != PARSE_OK) {
		e = HS_DESC_MALFORMED;
	} else if ((e = hs_desc_outer_check(&o, d, blinded, now, signing_key)) != HS_DESC_OK) {
		*why = hs_desc_strerror(e);
	} else {
		res = xmalloc(sizeof(*res));
		e = decode_layers(&o, blinded, subcred, client_sk, signing_key, now, res, why);
		if (e == HS_DESC_OK) {
			*out = res;
			*revision = o.revision;
		} else {
			free(res);
		}
	}
	free(buf);
	free(d);
	if (e != HS_DESC_OK)
		log_info("onion service descriptor refused: %s (%s)", hs_desc_strerror(e), *why);
	return e;
}

void hs_desc_inner_free(struct hs_desc_inner *d)
{
	free(d);
}

const char *hs_desc_strerror(enum hs_desc_err err)
{
	switch (err) {
	case HS_DESC_OK: return "ok";
	case HS_DESC_MALFORMED: return "descriptor does not parse";
	case HS_DESC_BAD_CERT: return "bad descriptor signing-key certificate";
	case HS_DESC_WRONG_KEY: return "descriptor is for another blinded key";
	case HS_DESC_EXPIRED: return "descriptor signing-key certificate expired";
	case HS_DESC_BAD_SIGNATURE: return "bad descriptor signature";
	case HS_DESC_BAD_OUTER_MAC: return "superencrypted layer MAC mismatch";
	case HS_DESC_BAD_MIDDLE: return "first-layer plaintext does not parse";
	case HS_DESC_NEED_CLIENT_AUTH: return "client authorization required";
	case HS_DESC_BAD_CLIENT_AUTH: return "client authorization key is wrong";
	case HS_DESC_BAD_INNER: return "second-layer plaintext does not parse";
	case HS_DESC_NO_INTRO: return "no usable introduction point";
	}
	return "unknown descriptor error";
}

uint8_t hs_desc_socks_reply(enum hs_desc_err err)
{
	if (err == HS_DESC_NEED_CLIENT_AUTH)
		return SOCKS5_HS_MISSING_CLIENT_AUTH;
	if (err == HS_DESC_BAD_CLIENT_AUTH)
		return SOCKS5_HS_WRONG_CLIENT_AUTH;
	return SOCKS5_HS_DESC_INVALID;
}
