/* Relay crypto of the virtual hop between an onion-service client and the
 * service (rend-spec-v3 3.3.2 last paragraph, 4.2.1, 5): tor-spec 6.1's
 * relay-cell scheme with AES-256-CTR instead of AES-128 and SHA3-256
 * running digests (seeded with 32-byte Df/Db) instead of SHA-1.
 *
 * How it stacks on a rendezvous circuit: outbound, seal the cell with this
 * hop FIRST (it sets the digest and encrypts with Kf), then encrypt it with
 * every real hop of the circuit WITHOUT setting a digest there; inbound,
 * peel the real hops (none of them recognizes the cell), then open it
 * here. proto/relay_crypto.h does the real hops (tor1).
 *
 * Not for the real hops, nor for the handshake (proto/hs_ntor.h gives the
 * keys). No allocation; the owner shard of the circuit only. */
#ifndef ONIONRING_PROTO_HS_HOP_H
#define ONIONRING_PROTO_HS_HOP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/crypto.h"
#include "proto/hs_ntor.h"

#define HS_HOP_PAYLOAD_LEN 509

struct hs_hop {
	struct crypto_aes256_ctr fwd;      /* Kf: client -> service */
	struct crypto_aes256_ctr back;     /* Kb: service -> client */
	struct crypto_sha3 fwd_digest;     /* seeded with Df */
	struct crypto_sha3 back_digest;    /* seeded with Db */
};

/* Set up h from K = Df | Db | Kf | Kb (hs_ntor_client_rend2's output).
 * Borrows keys; the caller wipes them. A service would swap the roles:
 * this is the client's view. */
void hs_hop_init(struct hs_hop *h, const uint8_t keys[HS_NTOR_EXPANDED_LEN]);

/* Seal one outbound relay payload (509 bytes, 'recognized' and digest
 * fields zero): add it to the forward digest, write the digest's first
 * 4 bytes, encrypt with Kf. */
void hs_hop_seal_out(struct hs_hop *h, uint8_t payload[HS_HOP_PAYLOAD_LEN]);

/* Decrypt one inbound payload with Kb and return true when it is for us
 * ('recognized' zero and the backward digest matches: the digest then
 * moves on). On false the payload is garbage from this hop's view and the
 * digest state is unchanged (the circuit should be closed). */
bool hs_hop_open_in(struct hs_hop *h, uint8_t payload[HS_HOP_PAYLOAD_LEN]);

/* Write the first 20 bytes of the forward (or backward) running digest
 * to out: the tag of an authenticated SENDME on this hop (tor truncates
 * the SHA3-256 state to its 20-byte SENDME digest, tor-spec 7.3.1). */
void hs_hop_digest(const struct hs_hop *h, bool forward, uint8_t out[20]);

/* Wipe h. */
void hs_hop_clear(struct hs_hop *h);

#endif
