/* Onion-service key schedule and HSDir hash ring (see hs_keys.h). */
#include "proto/hs_keys.h"

#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/crypto.h"

uint64_t hs_period_num(const struct hs_period_cfg *cfg, time_t t)
{
	uint64_t minutes = t > 0 ? (uint64_t)t / 60 : 0;

	if (minutes < cfg->offset)
		return 0;
	return (minutes - cfg->offset) / cfg->length;
}

time_t hs_period_start(const struct hs_period_cfg *cfg, uint64_t num)
{
	return (time_t)((num * cfg->length + cfg->offset) * 60);
}

bool hs_period_uses_current_srv(const struct hs_period_cfg *cfg, time_t t)
{
	time_t start = hs_period_start(cfg, hs_period_num(cfg, t));

	/* The SRV changes (length - offset) minutes into each period: at
	 * 00:00 when periods start at 12:00 on the live network. */
	return t < start + (time_t)((cfg->length - cfg->offset) * 60);
}

static void sha3_parts(uint8_t out[HS_KEY_LEN], const void *a, size_t alen, const void *b,
		       size_t blen, const void *c, size_t clen)
{
	struct crypto_sha3 h;

	crypto_sha3_256_init(&h);
	crypto_sha3_256_update(&h, a, alen);
	crypto_sha3_256_update(&h, b, blen);
	crypto_sha3_256_update(&h, c, clen);
	crypto_sha3_256_final(&h, out);
}

void hs_credential(uint8_t out[HS_KEY_LEN], const uint8_t identity[HS_KEY_LEN])
{
	sha3_parts(out, "credential", 10, identity, HS_KEY_LEN, "", 0);
}

void hs_subcredential(uint8_t out[HS_KEY_LEN], const uint8_t identity[HS_KEY_LEN],
		      const uint8_t blinded[HS_KEY_LEN])
{
	uint8_t cred[HS_KEY_LEN];

	hs_credential(cred, identity);
	sha3_parts(out, "subcredential", 13, cred, sizeof(cred), blinded, HS_KEY_LEN);
}

/* A.2: B is the base point written out as text, exactly as tor hashes it. */
static const char hs_basepoint_str[] =
	"(15112221349535400772501151409588531511454012693041857206046113283949847762202, "
	"46316835694926478169428394003475163141307993866256225615783033603165251855960)";

void hs_blind_factor(uint8_t h[HS_KEY_LEN], const uint8_t identity[HS_KEY_LEN], uint64_t num,
		     uint64_t len)
{
	/* BLIND_STRING includes its terminating NUL: "...key" | INT_1(0). */
	static const char blind_str[] = "Derive temporary signing key";
	uint8_t nonce[9 + 8 + 8];
	struct wr w = wr_init(nonce, sizeof(nonce));
	struct crypto_sha3 c;

	memcpy(nonce, "key-blind", 9);
	w.len = 9;
	wr_u64(&w, num);
	wr_u64(&w, len);
	crypto_sha3_256_init(&c);
	crypto_sha3_256_update(&c, blind_str, sizeof(blind_str));
	crypto_sha3_256_update(&c, identity, HS_KEY_LEN);
	crypto_sha3_256_update(&c, hs_basepoint_str, sizeof(hs_basepoint_str) - 1);
	crypto_sha3_256_update(&c, nonce, sizeof(nonce));
	crypto_sha3_256_final(&c, h);
}

bool hs_blinded_key(uint8_t out[HS_KEY_LEN], const uint8_t identity[HS_KEY_LEN], uint64_t num,
		    uint64_t len)
{
	uint8_t h[HS_KEY_LEN];

	hs_blind_factor(h, identity, num, len);
	return crypto_ed25519_blind_public(out, identity, h);
}

void hs_service_index(uint8_t out[HS_KEY_LEN], const uint8_t blinded[HS_KEY_LEN], uint64_t replica,
		      uint64_t num, uint64_t len)
{
	uint8_t tail[24];
	struct wr w = wr_init(tail, sizeof(tail));

	wr_u64(&w, replica);
	wr_u64(&w, len);
	wr_u64(&w, num);
	sha3_parts(out, "store-at-idx", 12, blinded, HS_KEY_LEN, tail, sizeof(tail));
}

void hs_relay_index(uint8_t out[HS_KEY_LEN], const uint8_t ed_id[HS_KEY_LEN],
		    const uint8_t srv[HS_KEY_LEN], uint64_t num, uint64_t len)
{
	uint8_t tail[HS_KEY_LEN + 16];
	struct wr w = wr_init(tail, sizeof(tail));

	memcpy(tail, srv, HS_KEY_LEN);
	w.len = HS_KEY_LEN;
	wr_u64(&w, num);
	wr_u64(&w, len);
	sha3_parts(out, "node-idx", 8, ed_id, HS_KEY_LEN, tail, sizeof(tail));
}

void hs_disaster_srv(uint8_t out[HS_KEY_LEN], uint64_t num, uint64_t len)
{
	uint8_t tail[16];
	struct wr w = wr_init(tail, sizeof(tail));

	wr_u64(&w, len);
	wr_u64(&w, num);
	sha3_parts(out, "shared-random-disaster", 22, tail, sizeof(tail), "", 0);
}

static int ring_cmp(const void *a, const void *b)
{
	return memcmp(((const struct hs_ring_entry *)a)->index, ((const struct hs_ring_entry *)b)->index,
		      HS_KEY_LEN);
}

void hs_ring_sort(struct hs_ring_entry *ring, size_t n)
{
	if (n > 1)
		qsort(ring, n, sizeof(*ring), ring_cmp);
}

/* First position whose index is >= key (n when none: wrap to 0). */
static size_t ring_lower_bound(const struct hs_ring_entry *ring, size_t n, const uint8_t key[HS_KEY_LEN])
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(ring[mid].index, key, HS_KEY_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == n ? 0 : lo;
}

static bool handle_taken(const uint32_t *out, size_t n, uint32_t h)
{
	for (size_t i = 0; i < n; i++)
		if (out[i] == h)
			return true;
	return false;
}

size_t hs_ring_pick(const struct hs_ring_entry *ring, size_t n, const uint8_t blinded[HS_KEY_LEN],
		    uint64_t num, uint64_t len, unsigned n_replicas, unsigned spread, uint32_t *out,
		    size_t cap)
{
	size_t got = 0;

	if (n == 0)
		return 0;
	for (unsigned r = 1; r <= n_replicas; r++) {
		uint8_t key[HS_KEY_LEN];
		size_t start, i;
		unsigned added = 0;

		hs_service_index(key, blinded, r, num, len);
		start = i = ring_lower_bound(ring, n, key);
		do {
			if (!handle_taken(out, got, ring[i].handle)) {
				if (got == cap)
					return got;
				out[got++] = ring[i].handle;
				added++;
			}
			i = i + 1 == n ? 0 : i + 1;
		} while (added < spread && i != start);
	}
	return got;
}
