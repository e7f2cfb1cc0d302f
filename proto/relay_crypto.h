/* Client-side relay cell crypto, "tor1" (tor-spec.txt 5.5, 6.1): per hop
 * AES-128-CTR forward/backward and SHA-1 running digests; layered
 * encryption of outbound cells and peeling of inbound ones with the
 * 'recognized'/digest check at each hop.
 *
 * For: the data plane. Every call handles a batch of cells of ONE circuit
 * so the AES work for a hop runs back to back over all payloads; no
 * allocation. Not for: relay headers (proto's relay cell code fills and
 * parses them), the relay side of the crypto, or the handshakes
 * (proto/ntor.h, proto/ntor3.h produce the key material read here).
 * A circuit's crypto is owned by the shard that owns the circuit: calls on
 * one struct relay_crypto_circ must come from that shard only. */
#ifndef ONIONRING_PROTO_RELAY_CRYPTO_H
#define ONIONRING_PROTO_RELAY_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"

#define RELAY_PAYLOAD_LEN 509
/* Offsets in a relay cell payload (tor-spec 6.1). */
#define RELAY_OFF_RECOGNIZED 1
#define RELAY_OFF_DIGEST 5
#define RELAY_DIGEST_FIELD_LEN 4
#define RELAY_CRYPTO_MAX_HOPS 8
/* Bytes of KDF output tor1 uses: Df(20) Db(20) Kf(16) Kb(16). */
#define RELAY_KEY_MATERIAL_LEN 72
/* ... plus the 20-byte nonce ("KH" in the HS protocol) after them. */
#define RELAY_KDF_LEN 92

/* Keys for one hop as they come out of KDF-RFC5869 (tor-spec 5.2.2) or
 * the ntor v3 KEYSTREAM (proposal 332 A.2), in this order. */
struct relay_hop_keys {
	uint8_t df[SHA1_LEN];
	uint8_t db[SHA1_LEN];
	uint8_t kf[AES128_KEY_LEN];
	uint8_t kb[AES128_KEY_LEN];
	uint8_t nonce[SHA1_LEN];
};

/* Split len bytes of key material k into out: Df Db Kf Kb, then the nonce
 * if len >= RELAY_KDF_LEN (else the nonce is zeroed). Returns 0, or -1 if
 * len < RELAY_KEY_MATERIAL_LEN. Borrows k; the caller wipes k and, after
 * use, out. Any thread. */
int relay_keys_from_kdf(const uint8_t *k, size_t len, struct relay_hop_keys *out);

struct relay_hop {
	struct crypto_aes_ctr fwd;          /* Kf, client -> hop */
	struct crypto_aes_ctr back;         /* Kb, hop -> client */
	struct crypto_sha1 fwd_digest;      /* seeded with Df */
	struct crypto_sha1 back_digest;     /* seeded with Db */
};

struct relay_crypto_circ {
	int n_hops;
	struct relay_hop hop[RELAY_CRYPTO_MAX_HOPS];
};

/* Make c an empty circuit (no hops). */
void relay_crypto_circ_init(struct relay_crypto_circ *c);
/* Append a hop keyed by k (borrowed); returns its index (0 = first hop,
 * the guard) or -1 if c already has RELAY_CRYPTO_MAX_HOPS. */
int relay_crypto_circ_add_hop(struct relay_crypto_circ *c, const struct relay_hop_keys *k);
/* Drop the last hop (after TRUNCATED), wiping its keys. */
void relay_crypto_circ_drop_last(struct relay_crypto_circ *c);
/* Wipe every key and digest state; c is empty afterwards. */
void relay_crypto_circ_clear(struct relay_crypto_circ *c);

/* Encrypt n cells for hop target (0-based, < n_hops). payloads[i] points to
 * a 509-byte relay payload with its header filled in ('recognized' zero;
 * the digest field is overwritten); it is encrypted in place (borrowed). For each cell in order: the
 * target hop's forward running digest absorbs the payload and its first 4
 * bytes go in the digest field; then the payload is encrypted with the
 * target hop's Kf and each earlier hop's, the first hop's last
 * (tor-spec 5.5.2.1). If digests_out is non-NULL, for each i with
 * digests_out[i] non-NULL the full 20-byte running digest after cell i is
 * written there (the tag an authenticated SENDME v1 for that cell carries,
 * tor-spec 7.3). No allocation. Owner shard only. */
void relay_crypto_encrypt_out(struct relay_crypto_circ *c, int target, uint8_t *const payloads[],
			      size_t n, uint8_t *const digests_out[]);

/* Encrypt n cells with every hop's Kf (last hop first, the guard's last)
 * without touching any digest or the digest field: for cells an inner
 * layer (the onion-service virtual hop, proto/hs_hop.h) already sealed.
 * Borrowed payloads, encrypted in place. Owner shard only. */
void relay_crypto_encrypt_layers(struct relay_crypto_circ *c, uint8_t *const payloads[], size_t n);

/* Peel n inbound cells in place (borrowed), in arrival order. For each
 * cell, decrypt hop by hop from the first; at a hop where 'recognized' is
 * zero and the digest field matches the first 4 bytes of that hop's
 * backward running digest over the payload with the digest field zeroed,
 * that hop is the origin: hop_out[i] = its index, the running digest keeps
 * the cell, peeling stops. A mismatch leaves that hop's digest untouched
 * and peeling goes on (tor-spec 6.1). A cell no hop recognizes gets
 * hop_out[i] = -1: a protocol violation, the circuit must be destroyed
 * (its crypto state is then meaningless). digests_out as in
 * relay_crypto_encrypt_out, for the recognizing hop's backward digest (the
 * tag our SENDME v1 for that cell must carry). Returns the number of
 * unrecognized cells. No allocation. Owner shard only. */
size_t relay_crypto_decrypt_in(struct relay_crypto_circ *c, uint8_t *const payloads[], size_t n,
			       int hop_out[], uint8_t *const digests_out[]);

/* Write hop's current forward (or backward) running digest to out. */
void relay_crypto_hop_digest(const struct relay_crypto_circ *c, int hop, bool forward,
			     uint8_t out[SHA1_LEN]);

#endif
