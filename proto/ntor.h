/* Client side of tor's ntor circuit handshake (CREATE2 HTYPE 2,
 * tor-spec.txt 5.1.4) with its KDF-RFC5869 key expansion (5.2.2).
 *
 * For: building the 84-byte onionskin and checking the 64-byte reply.
 * Not for: the relay side (tests carry their own), CREATE2 cell framing
 * (proto/cell code), or turning keys into relay crypto (proto/relay_crypto.h:
 * relay_keys_from_kdf). No allocation. */
#ifndef ONIONRING_PROTO_NTOR_H
#define ONIONRING_PROTO_NTOR_H

#include <stddef.h>
#include <stdint.h>

#define NTOR_HTYPE 0x0002
#define NTOR_NODE_ID_LEN 20
#define NTOR_KEY_LEN 32
#define NTOR_ONIONSKIN_LEN 84 /* NODEID(20) KEYID(32) CLIENT_KP(32) */
#define NTOR_REPLY_LEN 64     /* SERVER_KP(32) AUTH(32) */

/* Handshake state between start and finish: holds the ephemeral secret.
 * Wiped by ntor_client_finish (either outcome) or ntor_client_abandon. */
struct ntor_client {
	uint8_t node_id[NTOR_NODE_ID_LEN];
	uint8_t onion_key[NTOR_KEY_LEN]; /* B */
	uint8_t x[NTOR_KEY_LEN];         /* ephemeral secret */
	uint8_t X[NTOR_KEY_LEN];         /* ephemeral public */
};

/* Start a handshake with the relay whose RSA identity digest is node_id and
 * whose ntor onion key is server_onion_key; write the onionskin (HDATA of
 * CREATE2 / EXTEND2). Borrows every argument; st is owned by the caller.
 * Any thread. */
void ntor_client_start(struct ntor_client *st, const uint8_t node_id[NTOR_NODE_ID_LEN],
		       const uint8_t server_onion_key[NTOR_KEY_LEN],
		       uint8_t onionskin_out[NTOR_ONIONSKIN_LEN]);

/* As ntor_client_start with the ephemeral secret x given: for known-answer
 * tests only (a reused x breaks forward secrecy). */
void ntor_client_start_with_key(struct ntor_client *st, const uint8_t node_id[NTOR_NODE_ID_LEN],
				const uint8_t server_onion_key[NTOR_KEY_LEN],
				const uint8_t x[NTOR_KEY_LEN],
				uint8_t onionskin_out[NTOR_ONIONSKIN_LEN]);

/* Check the relay's reply (HDATA of CREATED2 / EXTENDED2) and on success
 * write key_len bytes of KDF-RFC5869 output to key_out (Df Db Kf Kb, then
 * the 20-byte nonce: 92 bytes gives all of them). Returns 0, or -1 when
 * AUTH is wrong or a shared secret is degenerate (then key_out is zeroed).
 * Wipes st in both cases. Borrows reply. Any thread. */
int ntor_client_finish(struct ntor_client *st, const uint8_t reply[NTOR_REPLY_LEN],
		       uint8_t *key_out, size_t key_len);

/* Wipe a started handshake that will never finish (circuit torn down). */
void ntor_client_abandon(struct ntor_client *st);

#endif
