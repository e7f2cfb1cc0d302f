/* Internals shared by proto/circuit.c and proto/stream.c; not an API:
 * nothing outside those two files includes this. */
#ifndef ONIONRING_PROTO_CIRCUIT_INT_H
#define ONIONRING_PROTO_CIRCUIT_INT_H

#include "proto/circuit.h"

/* Find the live stream sid, or NULL. */
static inline struct circ_stream *circ_stream_find(struct circ *c, uint16_t sid)
{
	struct circ_stream *s = &c->streams[sid & (CIRC_STREAMS_MAX - 1)];

	return sid != 0 && s->state != CIRC_SS_FREE && s->id == sid ? s : NULL;
}

/* Queue a control message; returns false when the queue is full. */
bool circ_ctrl_push(struct circ *c, uint8_t command, uint16_t sid, const uint8_t *digest);

/* Encrypt n filled relay cells for hop in one call. digests as in
 * relay_crypto_encrypt_out. */
void circ_encrypt(struct circ *c, int hop, struct cell *const cells[], size_t n,
		  uint8_t *const digests[]);

#endif
