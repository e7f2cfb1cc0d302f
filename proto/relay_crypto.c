/* tor1 relay cell crypto for the client (tor-spec.txt 5.5, 6.1). See
 * relay_crypto.h. Not for relay-side crypto or relay header parsing.
 *
 * Batching: a call walks hop by hop over all cells of a chunk (at most
 * ONIONRING_CELL_BATCH, capped at RELAY_KS_CELLS) rather than cell by cell.
 * The payloads are not contiguous, so each hop's AES-CTR keystream for the
 * whole chunk is produced in ONE call into a contiguous stack buffer
 * (bulk AES-CTR runs ~1.6x faster than 509-byte calls, which pay for the
 * partial block at every cell boundary) and then XORed into the payloads.
 * Outbound, every layer goes to every cell, so the layers are folded into
 * one buffer and XORed once. Inbound, each cell's slot accumulates the
 * layers peeled so far and the payload is written once, at the hop that
 * recognizes it (decrypt_chunk). Hop-major order gives the same result as
 * cell-major order because each hop's keystream and running digest only
 * ever see the cells that reach that hop, in arrival order. The buffer
 * holds keystream only for cells already processed (their ciphertext XOR
 * plaintext, no key and no future keystream), so it is left unwiped. */
#include "proto/relay_crypto.h"

#include <string.h>

#include "core/bug.h"
#include "core/compiler.h"
#include "onionring_build.h"

/* Cells per internal pass: the keystream buffer (CHUNK x 509 bytes) lives
 * on the stack, so a huge cell_batch is capped at 64 cells (32 KiB). */
#define RELAY_KS_CELLS 64
#define CHUNK (ONIONRING_CELL_BATCH < RELAY_KS_CELLS ? ONIONRING_CELL_BATCH : RELAY_KS_CELLS)
_Static_assert(ONIONRING_CELL_BATCH >= 1, "cell_batch range");

int relay_keys_from_kdf(const uint8_t *k, size_t len, struct relay_hop_keys *out)
{
	if (len < RELAY_KEY_MATERIAL_LEN)
		return -1;
	/* tor-spec 5.2.2: Df, Db, Kf, Kb, then the nonce (KH for onion
	 * services). proposal 332 A.2 keeps the same order for ntor v3. */
	memcpy(out->df, k, SHA1_LEN);
	memcpy(out->db, k + 20, SHA1_LEN);
	memcpy(out->kf, k + 40, AES128_KEY_LEN);
	memcpy(out->kb, k + 56, AES128_KEY_LEN);
	if (len >= RELAY_KDF_LEN)
		memcpy(out->nonce, k + 72, SHA1_LEN);
	else
		memset(out->nonce, 0, SHA1_LEN);
	return 0;
}

static void relay_hop_init(struct relay_hop *h, const struct relay_hop_keys *k)
{
	static const uint8_t zero_iv[16];

	/* tor1 uses AES-128-CTR from an all-zero counter (tor-spec 0.3). */
	crypto_aes_ctr_init(&h->fwd, k->kf, zero_iv);
	crypto_aes_ctr_init(&h->back, k->kb, zero_iv);
	crypto_sha1_init(&h->fwd_digest);
	crypto_sha1_update(&h->fwd_digest, k->df, SHA1_LEN);
	crypto_sha1_init(&h->back_digest);
	crypto_sha1_update(&h->back_digest, k->db, SHA1_LEN);
}

static void relay_hop_clear(struct relay_hop *h)
{
	crypto_aes_ctr_clear(&h->fwd);
	crypto_aes_ctr_clear(&h->back);
	crypto_sha1_clear(&h->fwd_digest);
	crypto_sha1_clear(&h->back_digest);
}

void relay_crypto_circ_init(struct relay_crypto_circ *c)
{
	memset(c, 0, sizeof(*c));
}

int relay_crypto_circ_add_hop(struct relay_crypto_circ *c, const struct relay_hop_keys *k)
{
	if (c->n_hops >= RELAY_CRYPTO_MAX_HOPS)
		return -1;
	relay_hop_init(&c->hop[c->n_hops], k);
	return c->n_hops++;
}

void relay_crypto_circ_drop_last(struct relay_crypto_circ *c)
{
	if (c->n_hops > 0)
		relay_hop_clear(&c->hop[--c->n_hops]);
}

void relay_crypto_circ_clear(struct relay_crypto_circ *c)
{
	for (int i = 0; i < RELAY_CRYPTO_MAX_HOPS; i++)
		relay_hop_clear(&c->hop[i]);
	c->n_hops = 0;
}

void relay_crypto_hop_digest(const struct relay_crypto_circ *c, int hop, bool forward,
			     uint8_t out[SHA1_LEN])
{
	BUG_ON(hop < 0 || hop >= c->n_hops);
	crypto_sha1_peek(forward ? &c->hop[hop].fwd_digest : &c->hop[hop].back_digest, out);
}

/* p ^= ks over one payload (8 bytes at a time; 509 = 63 * 8 + 5). */
static inline void xor_payload(uint8_t *p, const uint8_t *ks)
{
	size_t j;

	for (j = 0; j + 8 <= RELAY_PAYLOAD_LEN; j += 8) {
		uint64_t a, b;

		memcpy(&a, p + j, 8);
		memcpy(&b, ks + j, 8);
		a ^= b;
		memcpy(p + j, &a, 8);
	}
	for (; j < RELAY_PAYLOAD_LEN; j++)
		p[j] ^= ks[j];
}

/* Below this many cells a bulk keystream pass costs more (memset + an XOR
 * pass) than it saves; such chunks use one AES call per payload. */
#define RELAY_KS_MIN_CELLS 4

/* XOR k's next keystream into the m payloads p[0..m), in that order; ks is
 * scratch for m payloads. */
static void aes_cells(struct crypto_aes_ctr *k, uint8_t *const p[], size_t m, uint8_t *ks)
{
	if (m < RELAY_KS_MIN_CELLS) {
		for (size_t j = 0; j < m; j++)
			crypto_aes_ctr_xor(k, p[j], RELAY_PAYLOAD_LEN);
		return;
	}
	memset(ks, 0, m * RELAY_PAYLOAD_LEN);
	crypto_aes_ctr_xor(k, ks, m * RELAY_PAYLOAD_LEN);
	for (size_t j = 0; j < m; j++)
		xor_payload(p[j], ks + j * RELAY_PAYLOAD_LEN);
}

static void encrypt_chunk(struct relay_crypto_circ *c, int target, bool digest, uint8_t *const p[],
			  size_t n, uint8_t *const digests_out[])
{
	_Alignas(64) uint8_t ks[CHUNK * RELAY_PAYLOAD_LEN];
	struct crypto_sha1 *d = &c->hop[target].fwd_digest;
	uint8_t dig[SHA1_LEN];

	/* Digest pass first: it needs the plaintext (tor-spec 6.1). */
	for (size_t i = 0; digest && i < n; i++) {
		memset(p[i] + RELAY_OFF_DIGEST, 0, RELAY_DIGEST_FIELD_LEN);
		crypto_sha1_update(d, p[i], RELAY_PAYLOAD_LEN);
		crypto_sha1_peek(d, dig);
		memcpy(p[i] + RELAY_OFF_DIGEST, dig, RELAY_DIGEST_FIELD_LEN);
		if (digests_out && digests_out[i])
			memcpy(digests_out[i], dig, SHA1_LEN);
	}
	/* Then every layer, target hop's to the guard's (5.5.2.1): fold all
	 * hops' keystreams for the chunk into ks, then XOR it in once. */
	if (n < RELAY_KS_MIN_CELLS) {
		for (int h = target; h >= 0; h--)
			aes_cells(&c->hop[h].fwd, p, n, ks);
		return;
	}
	memset(ks, 0, n * RELAY_PAYLOAD_LEN);
	for (int h = target; h >= 0; h--)
		crypto_aes_ctr_xor(&c->hop[h].fwd, ks, n * RELAY_PAYLOAD_LEN);
	for (size_t i = 0; i < n; i++)
		xor_payload(p[i], ks + i * RELAY_PAYLOAD_LEN);
}

void relay_crypto_encrypt_out(struct relay_crypto_circ *c, int target, uint8_t *const payloads[],
			      size_t n, uint8_t *const digests_out[])
{
	BUG_ON(target < 0 || target >= c->n_hops);
	for (size_t done = 0; done < n; done += CHUNK) {
		size_t m = MIN(n - done, (size_t)CHUNK);

		encrypt_chunk(c, target, true, payloads + done, m, digests_out ? digests_out + done : NULL);
	}
}

void relay_crypto_encrypt_layers(struct relay_crypto_circ *c, uint8_t *const payloads[], size_t n)
{
	BUG_ON(c->n_hops <= 0);
	for (size_t done = 0; done < n; done += CHUNK) {
		size_t m = MIN(n - done, (size_t)CHUNK);

		encrypt_chunk(c, c->n_hops - 1, false, payloads + done, m, NULL);
	}
}

/* Return true when p, just decrypted at a hop with running digest d, is
 * recognized there: 'recognized' is zero and the digest field equals the
 * first 4 bytes of d over p with that field zeroed. Only then does d keep
 * the cell (tor-spec 6.1: "the running digest at that node should not be
 * updated"); p is left as it was either way. */
static bool hop_recognizes(struct crypto_sha1 *d, uint8_t *p, uint8_t *tag_out)
{
	uint8_t saved[RELAY_DIGEST_FIELD_LEN], dig[SHA1_LEN];
	struct crypto_sha1 tmp;

	if (p[RELAY_OFF_RECOGNIZED] | p[RELAY_OFF_RECOGNIZED + 1])
		return false;
	tmp = *d;
	memcpy(saved, p + RELAY_OFF_DIGEST, sizeof(saved));
	memset(p + RELAY_OFF_DIGEST, 0, sizeof(saved));
	crypto_sha1_update(&tmp, p, RELAY_PAYLOAD_LEN);
	crypto_sha1_peek(&tmp, dig);
	memcpy(p + RELAY_OFF_DIGEST, saved, sizeof(saved));
	if (!crypto_memeq(dig, saved, sizeof(saved)))
		return false;
	*d = tmp;
	if (tag_out)
		memcpy(tag_out, dig, SHA1_LEN);
	return true;
}

/* Peel chunks of fewer than RELAY_KS_MIN_CELLS cells: one AES call per
 * payload per hop, the layer XORed in at once. */
static size_t decrypt_few(struct relay_crypto_circ *c, uint8_t *const p[], size_t n, int hop_out[],
			  uint8_t *const digests_out[])
{
	uint8_t pending[RELAY_KS_MIN_CELLS];
	size_t npend = n;

	for (size_t i = 0; i < n; i++) {
		pending[i] = (uint8_t)i;
		hop_out[i] = -1;
	}
	/* Peel hop by hop; the cells a hop recognizes drop out of the list,
	 * which keeps arrival order for the hops after it (5.5.4). */
	for (int h = 0; h < c->n_hops && npend > 0; h++) {
		struct relay_hop *hop = &c->hop[h];
		size_t keep = 0;

		for (size_t j = 0; j < npend; j++) {
			size_t i = pending[j];

			crypto_aes_ctr_xor(&hop->back, p[i], RELAY_PAYLOAD_LEN);
			if (hop_recognizes(&hop->back_digest, p[i], digests_out ? digests_out[i] : NULL))
				hop_out[i] = h;
			else
				pending[keep++] = (uint8_t)i;
		}
		npend = keep;
	}
	return npend;
}

/* Peel a chunk of n >= RELAY_KS_MIN_CELLS cells. Slot j of ks
 * accumulates the XOR of every layer's keystream so far for the cell
 * pending[j], so a cell's payload is written once, at the hop that
 * recognizes it, rather than once per hop: almost every inbound cell
 * comes from the last hop, and a hop can only recognize a cell whose
 * 'recognized' field decrypts to zero there (tor-spec 6.1), which the
 * slot tells without touching the payload. A candidate is XORed in,
 * checked, and XORed back out if its digest does not match. */
static size_t decrypt_chunk(struct relay_crypto_circ *c, uint8_t *const p[], size_t n, int hop_out[],
			    uint8_t *const digests_out[])
{
	_Alignas(64) uint8_t ks[CHUNK * RELAY_PAYLOAD_LEN];
	uint8_t pending[CHUNK];
	size_t npend = n;

	if (n < RELAY_KS_MIN_CELLS)
		return decrypt_few(c, p, n, hop_out, digests_out);
	for (size_t i = 0; i < n; i++) {
		pending[i] = (uint8_t)i;
		hop_out[i] = -1;
	}
	memset(ks, 0, n * RELAY_PAYLOAD_LEN);
	for (int h = 0; h < c->n_hops && npend > 0; h++) {
		struct relay_hop *hop = &c->hop[h];
		size_t keep = 0;

		/* This hop's keystream for the cells that reach it, in order. */
		crypto_aes_ctr_xor(&hop->back, ks, npend * RELAY_PAYLOAD_LEN);
		for (size_t j = 0; j < npend; j++) {
			size_t i = pending[j];
			uint8_t *slot = ks + j * RELAY_PAYLOAD_LEN;

			if (((p[i][RELAY_OFF_RECOGNIZED] ^ slot[RELAY_OFF_RECOGNIZED]) |
			     (p[i][RELAY_OFF_RECOGNIZED + 1] ^ slot[RELAY_OFF_RECOGNIZED + 1])) == 0) {
				xor_payload(p[i], slot);
				if (hop_recognizes(&hop->back_digest, p[i], digests_out ? digests_out[i] : NULL)) {
					hop_out[i] = h;
					continue;
				}
				xor_payload(p[i], slot);
			}
			/* Still pending: its slot moves down over the ones
			 * that dropped out (rare: a cell from an earlier hop). */
			if (keep != j)
				memmove(ks + keep * RELAY_PAYLOAD_LEN, slot, RELAY_PAYLOAD_LEN);
			pending[keep++] = (uint8_t)i;
		}
		npend = keep;
	}
	/* No hop recognized these: leave every layer off, as the cell-by-cell
	 * path does (the circuit is closed anyway). */
	for (size_t j = 0; j < npend; j++)
		xor_payload(p[pending[j]], ks + j * RELAY_PAYLOAD_LEN);
	return npend;
}

size_t relay_crypto_decrypt_in(struct relay_crypto_circ *c, uint8_t *const payloads[], size_t n,
			       int hop_out[], uint8_t *const digests_out[])
{
	size_t bad = 0;

	for (size_t done = 0; done < n; done += CHUNK) {
		size_t m = MIN(n - done, (size_t)CHUNK);

		bad += decrypt_chunk(c, payloads + done, m, hop_out + done,
				     digests_out ? digests_out + done : NULL);
	}
	return bad;
}
