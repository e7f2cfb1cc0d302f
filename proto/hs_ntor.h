/* Client side of the onion-service introduction handshake, hs-ntor
 * (rend-spec-v3 3.2.1 [FMT_INTRO1], 3.3 [PROCESS_INTRO2], 3.3.2
 * [NTOR-WITH-EXTRA-DATA], 4.2 [JOIN_REND], 4.2.1): build the body of an
 * INTRODUCE1 relay message, check the HANDSHAKE_INFO of RENDEZVOUS2, and
 * expand NTOR_KEY_SEED into the keys of the virtual hop to the service
 * (proto/hs_hop.h uses them).
 *
 * Not for ESTABLISH_RENDEZVOUS (a 20-byte random cookie: the relay cell
 * codec sends it), not for the service side, not for legacy (v2) cells.
 * Sans-IO, no allocation. A struct hs_ntor_client belongs to one
 * connection attempt; any thread, one at a time. */
#ifndef ONIONRING_PROTO_HS_NTOR_H
#define ONIONRING_PROTO_HS_NTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HS_NTOR_PROTOID "tor-hs-ntor-curve25519-sha3-256-1"
#define HS_REND_COOKIE_LEN 20
#define HS_NTOR_KEY_LEN 32
/* RENDEZVOUS2 body: SERVER_PK Y then AUTH (4.2). */
#define HS_REND2_HANDSHAKE_LEN 64
/* K = Df(32) Db(32) Kf(32) Kb(32) (4.2.1). */
#define HS_NTOR_EXPANDED_LEN 128
/* AUTH_KEY_TYPE for Ed25519 keys (3.1.1). */
#define HS_AUTH_KEY_TYPE_ED25519 2
/* ONION_KEY_TYPE ntor (3.3). */
#define HS_ONION_KEY_TYPE_NTOR 1
/* INTRODUCE1's encrypted-part extension asking for congestion control
 * (proposal 324 "CC_REQUEST"; send it when the descriptor's flow-control
 * line says the service supports it). */
#define HS_INTRO_EXT_CC_REQUEST 1
/* tor pads the plaintext of the encrypted part to at least this many bytes
 * so INTRODUCE1 cells all look alike (PAD in 3.3). */
#define HS_INTRO_PLAINTEXT_MIN 246

/* What the client remembers between INTRODUCE1 and RENDEZVOUS2. Secret:
 * hs_ntor_client_clear wipes it. */
struct hs_ntor_client {
	uint8_t x[HS_NTOR_KEY_LEN];        /* ephemeral secret */
	uint8_t X[HS_NTOR_KEY_LEN];        /* its public key (CLIENT_PK) */
	uint8_t B[HS_NTOR_KEY_LEN];        /* intro point's enc-key (KP_hss_ntor) */
	uint8_t auth_key[HS_NTOR_KEY_LEN]; /* intro point's auth key */
	uint8_t subcred[HS_NTOR_KEY_LEN];
};

/* Everything INTRODUCE1 carries. All pointers are borrowed. */
struct hs_intro1_params {
	const uint8_t *auth_key;        /* 32: from the intro point's auth-key cert */
	const uint8_t *enc_key;         /* 32: the intro point's "enc-key ntor" */
	const uint8_t *subcred;         /* 32: N_hs_subcred of the period */
	const uint8_t *rend_cookie;     /* 20: sent in ESTABLISH_RENDEZVOUS */
	const uint8_t *rend_onion_key;  /* 32: the rendezvous point's ntor key */
	const uint8_t *rend_link_specs; /* NSPEC | specs, as in EXTEND2 */
	size_t rend_link_specs_len;
	bool request_cc;                /* add the CC_REQUEST extension */
};

/* Start a handshake with a fresh ephemeral key (or with x when non-NULL:
 * tests). Copies what it needs from p. Any thread. */
void hs_ntor_client_init(struct hs_ntor_client *c, const struct hs_intro1_params *p,
			 const uint8_t *x);

/* Encode the INTRODUCE1 body for c and p into out[0..cap). Return its
 * length, or -1 when cap (at most a relay payload) is too small, p's
 * link specifiers are too long, or B is a low-order point. Borrows all. */
int hs_intro1_encode(uint8_t *out, size_t cap, const struct hs_ntor_client *c,
		     const struct hs_intro1_params *p);

/* Check a RENDEZVOUS2 body (SERVER_PK | AUTH, extra bytes ignored) against
 * c. On success write the 128 bytes of hop keys (Df Db Kf Kb) to keys and
 * return true (keys are secret: the caller wipes them after hs_hop_init);
 * false for a short body, a low-order Y or a wrong AUTH (the service is
 * not who the descriptor says: SOCKS 0xF3). */
bool hs_ntor_client_rend2(const struct hs_ntor_client *c, const uint8_t *body, size_t len,
			  uint8_t keys[HS_NTOR_EXPANDED_LEN]);

void hs_ntor_client_clear(struct hs_ntor_client *c);

/* The building blocks, public for a service side and for known-answer
 * tests. MAC(k, m) = SHA3-256(htonll(len(k)) | k | m) (0.3). */
void hs_ntor_mac(uint8_t out[32], const uint8_t *key, size_t keylen, const uint8_t *msg,
		 size_t msglen);
/* ENC_KEY | MAC_KEY = SHAKE-256(intro_secret_hs_input | t_hsenc | m_hsexpand
 * | subcred, 64), with intro_secret_hs_input = dh | AUTH_KEY | X | B | PROTOID
 * where dh = EXP(B,x) (client) = EXP(X,b) (service). */
void hs_ntor_intro_keys(uint8_t out[64], const uint8_t dh[32], const uint8_t auth_key[32],
			const uint8_t X[32], const uint8_t B[32], const uint8_t subcred[32]);
/* NTOR_KEY_SEED and AUTH_INPUT_MAC from the two DH results (4.2). */
void hs_ntor_rend_seed(uint8_t seed[32], uint8_t auth_mac[32], const uint8_t dh_xy[32],
		       const uint8_t dh_xb[32], const uint8_t auth_key[32], const uint8_t B[32],
		       const uint8_t X[32], const uint8_t Y[32]);
/* K = SHAKE-256(NTOR_KEY_SEED | m_hsexpand, 128) (4.2.1). */
void hs_ntor_expand(uint8_t out[HS_NTOR_EXPANDED_LEN], const uint8_t seed[32]);

#endif
