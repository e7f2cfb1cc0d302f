/* Relay crypto of the onion-service virtual hop (see hs_hop.h). */
#include "proto/hs_hop.h"

#include <string.h>

#define OFF_RECOGNIZED 1
#define OFF_DIGEST 5

void hs_hop_init(struct hs_hop *h, const uint8_t keys[HS_NTOR_EXPANDED_LEN])
{
	static const uint8_t zero_iv[16];

	crypto_sha3_256_init(&h->fwd_digest);
	crypto_sha3_256_update(&h->fwd_digest, keys, 32);
	crypto_sha3_256_init(&h->back_digest);
	crypto_sha3_256_update(&h->back_digest, keys + 32, 32);
	crypto_aes256_ctr_init(&h->fwd, keys + 64, zero_iv);
	crypto_aes256_ctr_init(&h->back, keys + 96, zero_iv);
}

/* The running digest so far without disturbing it: the context is plain
 * state, so a copy finalised on the side is a peek. */
static void sha3_peek(const struct crypto_sha3 *c, uint8_t out[SHA3_256_LEN])
{
	struct crypto_sha3 tmp = *c;

	crypto_sha3_256_final(&tmp, out);
	crypto_wipe(&tmp, sizeof(tmp));
}

void hs_hop_seal_out(struct hs_hop *h, uint8_t payload[HS_HOP_PAYLOAD_LEN])
{
	uint8_t d[SHA3_256_LEN];

	memset(payload + OFF_DIGEST, 0, 4);
	crypto_sha3_256_update(&h->fwd_digest, payload, HS_HOP_PAYLOAD_LEN);
	sha3_peek(&h->fwd_digest, d);
	memcpy(payload + OFF_DIGEST, d, 4);
	crypto_aes256_ctr_xor(&h->fwd, payload, HS_HOP_PAYLOAD_LEN);
}

bool hs_hop_open_in(struct hs_hop *h, uint8_t payload[HS_HOP_PAYLOAD_LEN])
{
	struct crypto_sha3 trial;
	uint8_t got[4], d[SHA3_256_LEN];

	crypto_aes256_ctr_xor(&h->back, payload, HS_HOP_PAYLOAD_LEN);
	if (payload[OFF_RECOGNIZED] != 0 || payload[OFF_RECOGNIZED + 1] != 0)
		return false;
	memcpy(got, payload + OFF_DIGEST, 4);
	memset(payload + OFF_DIGEST, 0, 4);
	trial = h->back_digest;
	crypto_sha3_256_update(&trial, payload, HS_HOP_PAYLOAD_LEN);
	sha3_peek(&trial, d);
	memcpy(payload + OFF_DIGEST, got, 4);
	if (!crypto_memeq(d, got, 4)) {
		crypto_wipe(&trial, sizeof(trial));
		return false;
	}
	h->back_digest = trial;
	crypto_wipe(&trial, sizeof(trial));
	return true;
}

void hs_hop_digest(const struct hs_hop *h, bool forward, uint8_t out[20])
{
	uint8_t d[SHA3_256_LEN];

	sha3_peek(forward ? &h->fwd_digest : &h->back_digest, d);
	memcpy(out, d, 20);
	crypto_wipe(d, sizeof(d));
}

void hs_hop_clear(struct hs_hop *h)
{
	crypto_aes256_ctr_clear(&h->fwd);
	crypto_aes256_ctr_clear(&h->back);
	crypto_wipe(h, sizeof(*h));
}
