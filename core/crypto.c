/* Crypto wrappers over BoringSSL, libsodium and nettle (see crypto.h).
 * Not for protocol logic: only the primitives, with tor's conventions where
 * a primitive has more than one (RSA signatures over raw digests). */
#include "core/crypto.h"

#include <openssl/aes.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/curve25519.h>
#include <openssl/hkdf.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <nettle/sha3.h>
#include <sodium.h>
#include <string.h>

#include "core/bug.h"

struct aes_ctr_state {
	AES_KEY key;
	uint8_t ivec[16];
	uint8_t ecount[16];
	unsigned int num;
};

_Static_assert(sizeof(SHA_CTX) <= sizeof(((struct crypto_sha1 *)0)->opaque), "sha1 ctx");
_Static_assert(sizeof(SHA256_CTX) <= sizeof(((struct crypto_sha256 *)0)->opaque), "sha256 ctx");
_Static_assert(sizeof(struct sha3_256_ctx) <= sizeof(((struct crypto_sha3 *)0)->opaque), "sha3 ctx");
_Static_assert(sizeof(struct aes_ctr_state) <= sizeof(((struct crypto_aes_ctr *)0)->opaque), "aes ctx");

void crypto_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

bool crypto_memeq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void crypto_rand(void *out, size_t n)
{
	RAND_bytes(out, n);
}

uint64_t crypto_rand_uint64(uint64_t bound)
{
	uint64_t v, limit;

	BUG_ON(bound == 0);
	/* Rejection sampling: discard the top partial range to stay uniform. */
	limit = UINT64_MAX - (UINT64_MAX % bound);
	do
		crypto_rand(&v, sizeof(v));
	while (v >= limit);
	return v % bound;
}

void crypto_sha1(const void *data, size_t len, uint8_t out[SHA1_LEN])
{
	SHA1(data, len, out);
}

void crypto_sha256(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
	SHA256(data, len, out);
}

void crypto_sha512(const void *data, size_t len, uint8_t out[SHA512_LEN])
{
	SHA512(data, len, out);
}

void crypto_sha3_256(const void *data, size_t len, uint8_t out[SHA3_256_LEN])
{
	struct sha3_256_ctx c;

	sha3_256_init(&c);
	sha3_256_update(&c, len, data);
	sha3_256_digest(&c, SHA3_256_LEN, out);
}

void crypto_shake256(const void *data, size_t len, uint8_t *out, size_t outlen)
{
	struct sha3_256_ctx c;

	/* nettle names SHAKE-256 after the SHA3-256 context it shares. */
	sha3_256_init(&c);
	sha3_256_update(&c, len, data);
	sha3_256_shake(&c, outlen, out);
	crypto_wipe(&c, sizeof(c));
}

void crypto_sha1_init(struct crypto_sha1 *c)
{
	SHA1_Init((SHA_CTX *)c->opaque);
}

void crypto_sha1_update(struct crypto_sha1 *c, const void *data, size_t len)
{
	SHA1_Update((SHA_CTX *)c->opaque, data, len);
}

void crypto_sha1_peek(const struct crypto_sha1 *c, uint8_t out[SHA1_LEN])
{
	SHA_CTX tmp;

	memcpy(&tmp, c->opaque, sizeof(tmp));
	SHA1_Final(out, &tmp);
}

void crypto_sha1_clear(struct crypto_sha1 *c)
{
	crypto_wipe(c, sizeof(*c));
}

void crypto_sha256_init(struct crypto_sha256 *c)
{
	SHA256_Init((SHA256_CTX *)c->opaque);
}

void crypto_sha256_update(struct crypto_sha256 *c, const void *data, size_t len)
{
	SHA256_Update((SHA256_CTX *)c->opaque, data, len);
}

void crypto_sha256_peek(const struct crypto_sha256 *c, uint8_t out[SHA256_LEN])
{
	SHA256_CTX tmp;

	memcpy(&tmp, c->opaque, sizeof(tmp));
	SHA256_Final(out, &tmp);
}

void crypto_sha256_clear(struct crypto_sha256 *c)
{
	crypto_wipe(c, sizeof(*c));
}

void crypto_sha3_256_init(struct crypto_sha3 *c)
{
	sha3_256_init((struct sha3_256_ctx *)c->opaque);
}

void crypto_sha3_256_update(struct crypto_sha3 *c, const void *data, size_t len)
{
	sha3_256_update((struct sha3_256_ctx *)c->opaque, len, data);
}

void crypto_sha3_256_final(struct crypto_sha3 *c, uint8_t out[SHA3_256_LEN])
{
	sha3_256_digest((struct sha3_256_ctx *)c->opaque, SHA3_256_LEN, out);
	crypto_wipe(c, sizeof(*c));
}

void crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
			uint8_t out[SHA256_LEN])
{
	unsigned int outlen = SHA256_LEN;

	HMAC(EVP_sha256(), key, keylen, data, len, out, &outlen);
}

int crypto_hkdf_sha256(uint8_t *out, size_t outlen, const void *secret, size_t secretlen,
		       const void *salt, size_t saltlen, const void *info, size_t infolen)
{
	return HKDF(out, outlen, EVP_sha256(), secret, secretlen, salt, saltlen, info, infolen) == 1 ? 0 : -1;
}

static void aes_ctr_init_bits(void *opaque, const uint8_t *key, unsigned bits, const uint8_t iv[16])
{
	struct aes_ctr_state *s = opaque;

	memset(s, 0, sizeof(*s));
	AES_set_encrypt_key(key, bits, &s->key);
	memcpy(s->ivec, iv, 16);
}

static void aes_ctr_xor_state(void *opaque, uint8_t *buf, size_t len)
{
	struct aes_ctr_state *s = opaque;

	AES_ctr128_encrypt(buf, buf, len, &s->key, s->ivec, s->ecount, &s->num);
}

void crypto_aes_ctr_init(struct crypto_aes_ctr *c, const uint8_t key[AES128_KEY_LEN], const uint8_t iv[16])
{
	aes_ctr_init_bits(c->opaque, key, 128, iv);
}

void crypto_aes_ctr_xor(struct crypto_aes_ctr *c, uint8_t *buf, size_t len)
{
	aes_ctr_xor_state(c->opaque, buf, len);
}

void crypto_aes_ctr_clear(struct crypto_aes_ctr *c)
{
	crypto_wipe(c, sizeof(*c));
}

void crypto_aes256_ctr_init(struct crypto_aes256_ctr *c, const uint8_t key[32], const uint8_t iv[16])
{
	aes_ctr_init_bits(c->opaque, key, 256, iv);
}

void crypto_aes256_ctr_xor(struct crypto_aes256_ctr *c, uint8_t *buf, size_t len)
{
	aes_ctr_xor_state(c->opaque, buf, len);
}

void crypto_aes256_ctr_clear(struct crypto_aes256_ctr *c)
{
	crypto_wipe(c, sizeof(*c));
}

void crypto_x25519_keypair(uint8_t pub[X25519_KEY_LEN], uint8_t priv[X25519_KEY_LEN])
{
	X25519_keypair(pub, priv);
}

void crypto_x25519_public(uint8_t pub[X25519_KEY_LEN], const uint8_t priv[X25519_KEY_LEN])
{
	X25519_public_from_private(pub, priv);
}

bool crypto_x25519(uint8_t out[X25519_KEY_LEN], const uint8_t priv[X25519_KEY_LEN],
		   const uint8_t peer[X25519_KEY_LEN])
{
	return X25519(out, priv, peer) == 1;
}

bool crypto_ed25519_verify(const uint8_t *msg, size_t len, const uint8_t sig[ED25519_SIG_LEN],
			   const uint8_t pub[ED25519_PUB_LEN])
{
	return ED25519_verify(msg, len, sig, pub) == 1;
}

void crypto_ed25519_sign_seed(uint8_t sig[ED25519_SIG_LEN], const uint8_t *msg, size_t len,
			      const uint8_t seed[ED25519_SEED_LEN])
{
	uint8_t pub[32], priv[64];

	ED25519_keypair_from_seed(pub, priv, seed);
	ED25519_sign(sig, msg, len, priv);
	crypto_wipe(priv, sizeof(priv));
}

void crypto_ed25519_public_from_seed(uint8_t pub[ED25519_PUB_LEN], const uint8_t seed[ED25519_SEED_LEN])
{
	uint8_t priv[64];

	ED25519_keypair_from_seed(pub, priv, seed);
	crypto_wipe(priv, sizeof(priv));
}

struct crypto_rsa *crypto_rsa_from_der(const uint8_t *der, size_t len)
{
	return (struct crypto_rsa *)RSA_public_key_from_bytes(der, len);
}

void crypto_rsa_free(struct crypto_rsa *k)
{
	if (k)
		RSA_free((RSA *)k);
}

unsigned crypto_rsa_bits(const struct crypto_rsa *k)
{
	return RSA_bits((const RSA *)k);
}

int crypto_rsa_to_der(const struct crypto_rsa *k, uint8_t *out, size_t cap)
{
	uint8_t *der = NULL;
	size_t len = 0;

	if (!RSA_public_key_to_bytes(&der, &len, (const RSA *)k))
		return -1;
	if (len > cap) {
		OPENSSL_free(der);
		return -1;
	}
	memcpy(out, der, len);
	OPENSSL_free(der);
	return (int)len;
}

bool crypto_rsa_fingerprint(const struct crypto_rsa *k, uint8_t out[SHA1_LEN])
{
	uint8_t der[1024];
	int len = crypto_rsa_to_der(k, der, sizeof(der));

	if (len < 0)
		return false;
	crypto_sha1(der, (size_t)len, out);
	return true;
}

bool crypto_rsa_verify_digest(const struct crypto_rsa *k, const uint8_t *sig, size_t siglen,
			      const uint8_t *digest, size_t digestlen)
{
	uint8_t out[1024];
	size_t outlen = 0;
	const RSA *rsa = (const RSA *)k;

	if (siglen != RSA_size(rsa) || siglen > sizeof(out))
		return false;
	/* tor signs the bare digest with PKCS#1 v1.5 type-1 padding. */
	if (!RSA_verify_raw((RSA *)rsa, &outlen, out, sizeof(out), sig, siglen, RSA_PKCS1_PADDING))
		return false;
	return outlen == digestlen && crypto_memeq(out, digest, digestlen);
}

struct crypto_x509 *crypto_x509_from_der(const uint8_t *der, size_t len)
{
	const uint8_t *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);

	if (x && p != der + len) {
		/* Trailing bytes after the certificate: not a clean encoding. */
		X509_free(x);
		return NULL;
	}
	return (struct crypto_x509 *)x;
}

void crypto_x509_free(struct crypto_x509 *c)
{
	if (c)
		X509_free((X509 *)c);
}

struct crypto_rsa *crypto_x509_rsa_key(const struct crypto_x509 *c)
{
	EVP_PKEY *pk = X509_get_pubkey((X509 *)c);
	RSA *rsa;

	if (!pk)
		return NULL;
	rsa = EVP_PKEY_get1_RSA(pk);
	EVP_PKEY_free(pk);
	return (struct crypto_rsa *)rsa;
}

static bool asn1_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
	ASN1_TIME *epoch;
	int days = 0, secs = 0, ok;

	if (!t)
		return false;
	/* This BoringSSL lacks ASN1_TIME_to_tm: measure the distance from the epoch. */
	epoch = ASN1_TIME_set(NULL, 0);
	if (!epoch)
		return false;
	ok = ASN1_TIME_diff(&days, &secs, epoch, t);
	ASN1_TIME_free(epoch);
	if (!ok)
		return false;
	*out = (time_t)days * 86400 + secs;
	return true;
}

bool crypto_x509_validity(const struct crypto_x509 *c, time_t *not_before, time_t *not_after)
{
	const X509 *x = (const X509 *)c;

	return asn1_time_to_time_t(X509_get0_notBefore(x), not_before) &&
	       asn1_time_to_time_t(X509_get0_notAfter(x), not_after);
}

bool crypto_x509_signed_by(const struct crypto_x509 *c, const struct crypto_rsa *key)
{
	EVP_PKEY *pk = EVP_PKEY_new();
	bool ok;

	if (!pk)
		return false;
	if (!EVP_PKEY_set1_RSA(pk, (RSA *)key)) {
		EVP_PKEY_free(pk);
		return false;
	}
	ok = X509_verify((X509 *)c, pk) == 1;
	EVP_PKEY_free(pk);
	return ok;
}

/* Ed25519 blinding and expanded-key signing (libsodium point/scalar ops). */
static void ed25519_clamp(uint8_t s[32])
{
	s[0] &= 248;
	s[31] &= 63;
	s[31] |= 64;
}

void crypto_ed25519_expand_seed(uint8_t out[ED25519_EXPANDED_LEN], const uint8_t seed[ED25519_SEED_LEN])
{
	SHA512(seed, ED25519_SEED_LEN, out);
	ed25519_clamp(out);
}

void crypto_ed25519_public_from_expanded(uint8_t pub[ED25519_PUB_LEN],
					 const uint8_t expanded[ED25519_EXPANDED_LEN])
{
	BUG_ON(sodium_init() < 0);
	/* Fails only for a zero scalar, which a clamped one never is. */
	BUG_ON(crypto_scalarmult_ed25519_base_noclamp(pub, expanded) != 0);
}

bool crypto_ed25519_point_is_valid(const uint8_t pub[ED25519_PUB_LEN])
{
	BUG_ON(sodium_init() < 0);
	return crypto_core_ed25519_is_valid_point(pub) == 1;
}

bool crypto_ed25519_blind_public(uint8_t out[ED25519_PUB_LEN], const uint8_t pub[ED25519_PUB_LEN],
				 const uint8_t h[32])
{
	uint8_t k[32];
	bool ok;

	BUG_ON(sodium_init() < 0);
	memcpy(k, h, 32);
	ed25519_clamp(k);
	/* noclamp: h is clamped above the way A.2 says, not X25519's way.
	 * libsodium refuses non-canonical, small-order and torsioned points. */
	ok = crypto_scalarmult_ed25519_noclamp(out, k, pub) == 0;
	crypto_wipe(k, sizeof(k));
	return ok;
}

void crypto_ed25519_blind_expanded(uint8_t out[ED25519_EXPANDED_LEN],
				   const uint8_t expanded[ED25519_EXPANDED_LEN], const uint8_t h[32])
{
	static const char rh_str[] = "Derive temporary signing key hash input";
	uint8_t k[32], d[64];
	SHA512_CTX c;

	BUG_ON(sodium_init() < 0);
	memcpy(k, h, 32);
	ed25519_clamp(k);
	crypto_core_ed25519_scalar_mul(out, k, expanded);
	SHA512_Init(&c);
	SHA512_Update(&c, rh_str, sizeof(rh_str) - 1);
	SHA512_Update(&c, expanded + 32, 32);
	SHA512_Final(d, &c);
	memcpy(out + 32, d, 32);
	crypto_wipe(k, sizeof(k));
	crypto_wipe(d, sizeof(d));
	crypto_wipe(&c, sizeof(c));
}

void crypto_ed25519_sign_expanded(uint8_t sig[ED25519_SIG_LEN], const uint8_t *msg, size_t len,
				  const uint8_t expanded[ED25519_EXPANDED_LEN],
				  const uint8_t pub[ED25519_PUB_LEN])
{
	uint8_t d[64], r[32], k[32], t[32];
	SHA512_CTX c;

	BUG_ON(sodium_init() < 0);
	SHA512_Init(&c);
	SHA512_Update(&c, expanded + 32, 32);
	SHA512_Update(&c, msg, len);
	SHA512_Final(d, &c);
	crypto_core_ed25519_scalar_reduce(r, d);
	/* r == 0 has probability 2^-252; sodium refuses it, so would we. */
	BUG_ON(crypto_scalarmult_ed25519_base_noclamp(sig, r) != 0);
	SHA512_Init(&c);
	SHA512_Update(&c, sig, 32);
	SHA512_Update(&c, pub, 32);
	SHA512_Update(&c, msg, len);
	SHA512_Final(d, &c);
	crypto_core_ed25519_scalar_reduce(k, d);
	crypto_core_ed25519_scalar_mul(t, k, expanded);
	crypto_core_ed25519_scalar_add(sig + 32, t, r);
	crypto_wipe(d, sizeof(d));
	crypto_wipe(r, sizeof(r));
	crypto_wipe(t, sizeof(t));
	crypto_wipe(&c, sizeof(c));
}
