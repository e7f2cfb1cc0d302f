/* Crypto wrappers: the only place that includes BoringSSL's libcrypto,
 * libsodium and nettle headers. Every other layer calls these.
 *
 * Contexts are fixed-size opaque storage so callers can embed them without
 * seeing library headers (sizes are checked in crypto.c). Nothing here
 * allocates except the RSA/X509 objects, which have _free functions.
 * Secrets: callers wipe what they hold with crypto_wipe(); contexts holding
 * keys are wiped by their _clear functions. Any thread. */
#ifndef ONIONRING_CORE_CRYPTO_H
#define ONIONRING_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SHA1_LEN 20
#define SHA256_LEN 32
#define SHA3_256_LEN 32
#define SHA512_LEN 64
#define X25519_KEY_LEN 32
#define ED25519_PUB_LEN 32
#define ED25519_SIG_LEN 64
#define ED25519_SEED_LEN 32
#define AES128_KEY_LEN 16

/* Overwrite n bytes at p with zeros in a way the compiler keeps. */
void crypto_wipe(void *p, size_t n);
/* Return true when a and b are equal, in time independent of their content. */
bool crypto_memeq(const void *a, const void *b, size_t n);
/* Fill out with n random bytes from the OS generator. */
void crypto_rand(void *out, size_t n);
/* Return a uniformly random integer in [0, bound); bound > 0. */
uint64_t crypto_rand_uint64(uint64_t bound);

/* One-shot digests. */
void crypto_sha1(const void *data, size_t len, uint8_t out[SHA1_LEN]);
void crypto_sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);
void crypto_sha512(const void *data, size_t len, uint8_t out[SHA512_LEN]);
void crypto_sha3_256(const void *data, size_t len, uint8_t out[SHA3_256_LEN]);
/* SHAKE-256 of data, squeezed to outlen bytes (one shot). */
void crypto_shake256(const void *data, size_t len, uint8_t *out, size_t outlen);

/* Incremental SHA-1 (relay-cell running digests). _peek gives the digest of
 * everything so far without disturbing the context. */
struct crypto_sha1 {
	_Alignas(16) unsigned char opaque[128];
};
void crypto_sha1_init(struct crypto_sha1 *c);
void crypto_sha1_update(struct crypto_sha1 *c, const void *data, size_t len);
void crypto_sha1_peek(const struct crypto_sha1 *c, uint8_t out[SHA1_LEN]);
void crypto_sha1_clear(struct crypto_sha1 *c);

/* Incremental SHA-256 (the same contract; tor's relay crypto for HS uses it). */
struct crypto_sha256 {
	_Alignas(16) unsigned char opaque[128];
};
void crypto_sha256_init(struct crypto_sha256 *c);
void crypto_sha256_update(struct crypto_sha256 *c, const void *data, size_t len);
void crypto_sha256_peek(const struct crypto_sha256 *c, uint8_t out[SHA256_LEN]);
void crypto_sha256_clear(struct crypto_sha256 *c);

/* Incremental SHA3-256 (ntor v3 MACs and HS code). */
struct crypto_sha3 {
	_Alignas(16) unsigned char opaque[384];
};
void crypto_sha3_256_init(struct crypto_sha3 *c);
void crypto_sha3_256_update(struct crypto_sha3 *c, const void *data, size_t len);
void crypto_sha3_256_final(struct crypto_sha3 *c, uint8_t out[SHA3_256_LEN]);

/* HMAC-SHA256 and HKDF-SHA256 (RFC 5869). crypto_hkdf_sha256 returns 0 or -1. */
void crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
			uint8_t out[SHA256_LEN]);
int crypto_hkdf_sha256(uint8_t *out, size_t outlen, const void *secret, size_t secretlen,
		       const void *salt, size_t saltlen, const void *info, size_t infolen);

/* AES-128 in counter mode with a 16-byte big-endian counter starting at iv
 * (tor uses an all-zero IV). The keystream position carries across calls. */
struct crypto_aes_ctr {
	_Alignas(16) unsigned char opaque[320];
};
void crypto_aes_ctr_init(struct crypto_aes_ctr *c, const uint8_t key[AES128_KEY_LEN],
			 const uint8_t iv[16]);
void crypto_aes_ctr_xor(struct crypto_aes_ctr *c, uint8_t *buf, size_t len);
void crypto_aes_ctr_clear(struct crypto_aes_ctr *c);
/* AES-256-CTR, same contract (ntor v3 encrypted messages, HS descriptors). */
struct crypto_aes256_ctr {
	_Alignas(16) unsigned char opaque[320];
};
void crypto_aes256_ctr_init(struct crypto_aes256_ctr *c, const uint8_t key[32], const uint8_t iv[16]);
void crypto_aes256_ctr_xor(struct crypto_aes256_ctr *c, uint8_t *buf, size_t len);
void crypto_aes256_ctr_clear(struct crypto_aes256_ctr *c);

/* X25519 (RFC 7748). crypto_x25519 returns false for an all-zero result
 * (a low-order peer point), which callers must treat as a failure. */
void crypto_x25519_keypair(uint8_t pub[X25519_KEY_LEN], uint8_t priv[X25519_KEY_LEN]);
void crypto_x25519_public(uint8_t pub[X25519_KEY_LEN], const uint8_t priv[X25519_KEY_LEN]);
bool crypto_x25519(uint8_t out[X25519_KEY_LEN], const uint8_t priv[X25519_KEY_LEN],
		   const uint8_t peer[X25519_KEY_LEN]);

/* Ed25519 (RFC 8032). */
bool crypto_ed25519_verify(const uint8_t *msg, size_t len, const uint8_t sig[ED25519_SIG_LEN],
			   const uint8_t pub[ED25519_PUB_LEN]);
/* Sign with the key derived from seed (tests and onion-service code). */
void crypto_ed25519_sign_seed(uint8_t sig[ED25519_SIG_LEN], const uint8_t *msg, size_t len,
			      const uint8_t seed[ED25519_SEED_LEN]);
void crypto_ed25519_public_from_seed(uint8_t pub[ED25519_PUB_LEN], const uint8_t seed[ED25519_SEED_LEN]);

/* Ed25519 key blinding for onion services (rend-spec-v3 appendix A.2) and
 * signing with an expanded secret key. An expanded key is tor's 64-byte
 * form: the clamped scalar a (32 bytes, little-endian) then the hash
 * prefix RH (32 bytes), i.e. SHA-512(seed) with clamping. These use
 * libsodium's point and scalar arithmetic; any thread. */
#define ED25519_EXPANDED_LEN 64
/* Expand seed into out (secret: the caller wipes it). */
void crypto_ed25519_expand_seed(uint8_t out[ED25519_EXPANDED_LEN], const uint8_t seed[ED25519_SEED_LEN]);
/* A = a * B for the scalar of an expanded key. */
void crypto_ed25519_public_from_expanded(uint8_t pub[ED25519_PUB_LEN],
					 const uint8_t expanded[ED25519_EXPANDED_LEN]);
/* True when pub is a canonical encoding of a point in the prime-order
 * subgroup (no torsion component, not small order): rend-spec-v3 2.2.7. */
bool crypto_ed25519_point_is_valid(const uint8_t pub[ED25519_PUB_LEN]);
/* A' = clamp(h) * A, where h is the 32-byte blinding factor (clamped here as
 * A.2 says: h[0] &= 248, h[31] &= 63, h[31] |= 64). False when pub is not a
 * valid point (see crypto_ed25519_point_is_valid). */
bool crypto_ed25519_blind_public(uint8_t out[ED25519_PUB_LEN], const uint8_t pub[ED25519_PUB_LEN],
				 const uint8_t h[32]);
/* a' = clamp(h) * a mod l and RH' = SHA-512("Derive temporary signing key
 * hash input" | RH)[:32]: the expanded key whose public key is
 * crypto_ed25519_blind_public(A, h). out is secret. */
void crypto_ed25519_blind_expanded(uint8_t out[ED25519_EXPANDED_LEN],
				   const uint8_t expanded[ED25519_EXPANDED_LEN], const uint8_t h[32]);
/* Sign msg with an expanded key whose public key is pub (RFC 8032 with the
 * nonce r = SHA-512(RH | msg)); the result verifies with crypto_ed25519_verify. */
void crypto_ed25519_sign_expanded(uint8_t sig[ED25519_SIG_LEN], const uint8_t *msg, size_t len,
				  const uint8_t expanded[ED25519_EXPANDED_LEN],
				  const uint8_t pub[ED25519_PUB_LEN]);

/* RSA public keys (tor's 1024-bit identity keys, 2048/3072-bit authority
 * keys). Owned objects: free with crypto_rsa_free (NULL-safe). */
struct crypto_rsa;
/* Parse a PKCS#1 RSAPublicKey DER; NULL if invalid. Returns owned. */
struct crypto_rsa *crypto_rsa_from_der(const uint8_t *der, size_t len);
void crypto_rsa_free(struct crypto_rsa *k);
/* Number of bits of the modulus. */
unsigned crypto_rsa_bits(const struct crypto_rsa *k);
/* Write the PKCS#1 DER of k into out (up to cap); return its length or -1. */
int crypto_rsa_to_der(const struct crypto_rsa *k, uint8_t *out, size_t cap);
/* SHA-1 of the PKCS#1 DER encoding: tor's RSA identity digest (fingerprint). */
bool crypto_rsa_fingerprint(const struct crypto_rsa *k, uint8_t out[SHA1_LEN]);
/* Tor-style signature check: RSA public decrypt of sig with PKCS#1 v1.5
 * type-1 padding must give exactly the digest bytes (no DigestInfo).
 * Returns true when it does. */
bool crypto_rsa_verify_digest(const struct crypto_rsa *k, const uint8_t *sig, size_t siglen,
			      const uint8_t *digest, size_t digestlen);

/* X.509 certificates (link and identity certs in CERTS cells). */
struct crypto_x509;
/* Parse DER; NULL if invalid. Returns owned. */
struct crypto_x509 *crypto_x509_from_der(const uint8_t *der, size_t len);
void crypto_x509_free(struct crypto_x509 *c);
/* The certified RSA key (returns owned), or NULL if it is not RSA. */
struct crypto_rsa *crypto_x509_rsa_key(const struct crypto_x509 *c);
/* Validity times; false if the cert lacks them or they cannot be read. */
bool crypto_x509_validity(const struct crypto_x509 *c, time_t *not_before, time_t *not_after);
/* True when c is correctly signed by key. */
bool crypto_x509_signed_by(const struct crypto_x509 *c, const struct crypto_rsa *key);

#endif
