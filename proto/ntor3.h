/* Client side of the ntor v3 circuit handshake (CREATE2 HTYPE 3,
 * proposal 332) and its extension messages, in particular the congestion
 * control request/response of proposal 324 section 10.
 *
 * For: building the CREATE2 HDATA with the encrypted client message,
 * checking the relay's reply, decrypting its message and deriving key
 * material from the SHAKE-256 KDF stream. Not for: the relay side (tests
 * carry their own), cell framing, or choosing whether to request
 * congestion control (app/ decides from consensus and protover).
 * No allocation. */
#ifndef ONIONRING_PROTO_NTOR3_H
#define ONIONRING_PROTO_NTOR3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define NTOR3_HTYPE 0x0003
#define NTOR3_ID_LEN 32  /* ed25519 identity */
#define NTOR3_KEY_LEN 32 /* curve25519 onion key */
#define NTOR3_MAC_LEN 32
/* Client HDATA = ID | B | X | encrypted CM | MAC. */
#define NTOR3_CLIENT_OVERHEAD (NTOR3_ID_LEN + 2 * NTOR3_KEY_LEN + NTOR3_MAC_LEN)
/* Server HDATA = Y | AUTH | encrypted SM. */
#define NTOR3_SERVER_OVERHEAD (NTOR3_KEY_LEN + 32)
#define NTOR3_MAX_VER_LEN 64
/* Most key material one finish call produces (the caller needs 92). */
#define NTOR3_MAX_KEY_OUT 256
/* Verification string for circuit extension (what tor uses). */
#define NTOR3_CIRC_VERIFICATION "circuit extend"

struct ntor3_client {
	uint8_t id[NTOR3_ID_LEN];
	uint8_t B[NTOR3_KEY_LEN];
	uint8_t x[NTOR3_KEY_LEN];
	uint8_t X[NTOR3_KEY_LEN];
	uint8_t Bx[NTOR3_KEY_LEN];
	uint8_t msg_mac[NTOR3_MAC_LEN];
	uint8_t ver[NTOR3_MAX_VER_LEN];
	size_t ver_len;
};

/* Start a handshake with relay (id, B) sending client message cm (cm_len
 * bytes, e.g. from ntor3_ext_encode_cc_request) under verification string
 * ver. Writes the HDATA to out (cap bytes) and returns its length, or -1
 * when ver is longer than NTOR3_MAX_VER_LEN, cap is too small, or EXP(B,x)
 * is degenerate (a bad onion key). Borrows everything; st is the caller's
 * and holds the ephemeral secret until finish/abandon. Any thread. */
int ntor3_client_start(struct ntor3_client *st, const uint8_t id[NTOR3_ID_LEN],
		       const uint8_t B[NTOR3_KEY_LEN], const uint8_t *ver, size_t ver_len,
		       const uint8_t *cm, size_t cm_len, uint8_t *out, size_t cap);

/* As ntor3_client_start with the ephemeral secret x given: for known-answer
 * tests only. */
int ntor3_client_start_with_key(struct ntor3_client *st, const uint8_t id[NTOR3_ID_LEN],
				const uint8_t B[NTOR3_KEY_LEN], const uint8_t x[NTOR3_KEY_LEN],
				const uint8_t *ver, size_t ver_len, const uint8_t *cm,
				size_t cm_len, uint8_t *out, size_t cap);

/* Check the relay's reply (reply_len bytes of CREATED2/EXTENDED2 HDATA).
 * On success write the decrypted server message to sm_out (sm_cap bytes;
 * its length to *sm_len) and key_len (<= NTOR3_MAX_KEY_OUT) bytes of
 * KEYSTREAM to key_out (Df Db Kf Kb then the nonce, as relay_keys_from_kdf
 * reads them) and return 0. Return -1 if the reply is short, AUTH is wrong,
 * Y is degenerate, or sm_cap/key_len do not fit; then outputs are zeroed.
 * Wipes st in both cases. Borrows reply. Any thread. */
int ntor3_client_finish(struct ntor3_client *st, const uint8_t *reply, size_t reply_len,
			uint8_t *sm_out, size_t sm_cap, size_t *sm_len,
			uint8_t *key_out, size_t key_len);

/* Wipe a started handshake that will never finish. */
void ntor3_client_abandon(struct ntor3_client *st);

/* Extension fields of the CREATE2/CREATED2 messages (proposal 324 §10.3). */
#define NTOR3_EXT_CC_REQUEST 0x01
#define NTOR3_EXT_CC_RESPONSE 0x02

/* Write the client message that requests congestion control: one
 * extension, CC_REQUEST with an empty body. Returns its length (3), or 0 if
 * cap is too small. Any thread. */
size_t ntor3_ext_encode_cc_request(uint8_t *out, size_t cap);

/* Parse the relay's decrypted message msg (len bytes): N_EXTENSIONS then
 * that many TYPE/LEN/BODY fields, nothing after. Sets *cc_present and
 * *sendme_inc from the FIRST CC_RESPONSE (later ones and unknown types are
 * ignored, §10.3). Returns PARSE_OK, or PARSE_INVALID with *reason when the
 * message is malformed, a CC_RESPONSE body is empty, or one arrives though
 * cc_requested is false (§10.5). The message is complete, so truncation is
 * INVALID, never NEED_MORE. Borrows msg. Any thread. */
enum parse_result ntor3_ext_parse_cc_response(const uint8_t *msg, size_t len, bool cc_requested,
					      bool *cc_present, uint8_t *sendme_inc,
					      const char **reason);

/* True when the relay's sendme_inc is within a factor of two of the
 * consensus cc_sendme_inc (§10.5: the client SHOULD reject it otherwise)
 * and not zero. */
bool ntor3_cc_sendme_inc_acceptable(uint8_t got, uint8_t consensus);

#endif
