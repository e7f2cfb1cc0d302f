/* The /bytes/<N> pattern checker (see loadgen_pattern.h), fast enough that
 * the load generator is never the bottleneck: 8 bytes per step.
 *
 * For i = k*65536 + j (0 <= j < 65536): (i >> 8) mod 256 = (j >> 8) mod 256,
 * i >> 16 = k and i >> 24 = k >> 8, so byte i is base[j] + (k + (k >> 8))
 * mod 256 with base[j] = 31*j + (j >> 8). One 64 KiB table plus a per-block
 * constant added to every byte (SWAR: bytewise add without carries). Not for
 * generating payloads (httpd does that). */
#include "perf/loadgen_pattern.h"

#include <stdbool.h>
#include <string.h>

#define PATTERN_BLOCK 65536u

/* 8 bytes of slack so an 8-byte load at j = 65535 stays inside. */
static uint8_t pattern_base[PATTERN_BLOCK + 8];
static bool pattern_ready;

void pattern_init(void)
{
	uint32_t j;

	if (pattern_ready)
		return;
	for (j = 0; j < PATTERN_BLOCK; j++)
		pattern_base[j] = (uint8_t)(31u * j + (j >> 8));
	pattern_ready = true;
}

/* Add the byte s to each byte of a, mod 256 per byte. */
static inline uint64_t swar_add(uint64_t a, uint64_t s8)
{
	const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL;
	const uint64_t hi1 = 0x8080808080808080ULL;

	return ((a & lo7) + (s8 & lo7)) ^ ((a ^ s8) & hi1);
}

/* Check n bytes that all lie in block k, starting at j inside the block. */
static size_t pattern_check_block(uint64_t k, uint32_t j, const uint8_t *data, size_t n)
{
	uint8_t s = (uint8_t)(k + (k >> 8));
	uint64_t s8 = 0x0101010101010101ULL * s;
	size_t x = 0;

	for (; x + 8 <= n; x += 8) {
		uint64_t want, got;

		memcpy(&want, pattern_base + j + x, 8);
		memcpy(&got, data + x, 8);
		if (swar_add(want, s8) != got)
			break;
	}
	for (; x < n; x++) {
		if ((uint8_t)(pattern_base[j + x] + s) != data[x])
			return x;
	}
	return n;
}

size_t pattern_check(uint64_t offset, const uint8_t *data, size_t len)
{
	size_t done = 0;

	while (done < len) {
		uint64_t pos = offset + done;
		uint32_t j = (uint32_t)(pos % PATTERN_BLOCK);
		size_t take = PATTERN_BLOCK - j;
		size_t ok;

		if (take > len - done)
			take = len - done;
		ok = pattern_check_block(pos / PATTERN_BLOCK, j, data + done, take);
		if (ok < take)
			return done + ok;
		done += take;
	}
	return len;
}
