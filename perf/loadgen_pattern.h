/* The test network's /bytes/<N> payload pattern, checked as it arrives.
 *
 * Byte i of every /bytes/<N> body is
 *     (31*i + (i >> 8) + (i >> 16) + (i >> 24)) mod 256
 * (test/testnet/bytepattern.py is the reference; keep the two in step).
 * For the load generator's body check; not for anything secret. */
#ifndef ONIONRING_PERF_LOADGEN_PATTERN_H
#define ONIONRING_PERF_LOADGEN_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* Return the pattern byte at offset i (the reference definition). Any thread. */
static inline uint8_t pattern_byte_at(uint64_t i)
{
	return (uint8_t)(31u * i + (i >> 8) + (i >> 16) + (i >> 24));
}

/* Build the shared 64 KiB base table. Call once before pattern_check, on
 * one thread (it writes a static table); idempotent. */
void pattern_init(void);

/* Check len bytes at data (borrowed) against the pattern at body offset
 * offset. Return len if every byte matches, else the index (0..len-1) of
 * the first byte that differs. Any thread, after pattern_init. */
size_t pattern_check(uint64_t offset, const uint8_t *data, size_t len);

#endif
