/* Text encodings of binary data: base64 (RFC 4648 section 4, padding
 * optional on decode, whitespace skipped so PEM-ish object bodies decode
 * directly), base16 (hex) and base32 (RFC 4648 section 6, lowercase, as
 * onion addresses use).
 *
 * Pure functions over caller buffers: no allocation, any thread. Not for
 * streaming: each call sees the whole input. */
#ifndef ONIONRING_CORE_BASE64_H
#define ONIONRING_CORE_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Upper bound of the decoded size of len input characters. */
static inline size_t base64_decoded_max(size_t len) { return len / 4 * 3 + 3; }
/* Exact encoded size of len bytes (with padding), not counting a NUL. */
static inline size_t base64_encoded_len(size_t len) { return (len + 2) / 3 * 4; }

/* Decode len characters at in into out (room for cap bytes). Spaces, tabs,
 * CR and LF anywhere are skipped; trailing '=' padding is optional but, when
 * present, must be the last non-space characters and no more than needed.
 * Return the decoded length, or -1 for a character outside the alphabet,
 * misplaced padding, a dangling single character, or too small an out.
 * Borrows in and out. */
ssize_t base64_decode(uint8_t *out, size_t cap, const char *in, size_t len);

/* Encode len bytes at in into out (room for cap chars plus a NUL), with '='
 * padding when pad is true. Return the encoded length (NUL not counted) or
 * -1 when out is too small. Borrows in and out. */
ssize_t base64_encode(char *out, size_t cap, const uint8_t *in, size_t len, bool pad);

/* Decode exactly len hex digits (either case) into out. Return the decoded
 * length (len / 2) or -1 for an odd length, a non-hex digit or too small
 * an out. Borrows in and out. */
ssize_t base16_decode(uint8_t *out, size_t cap, const char *in, size_t len);

/* Encode len bytes as hex (uppercase when upper) into out (room for cap
 * chars plus a NUL). Return 2 * len or -1 if out is too small. */
ssize_t base16_encode(char *out, size_t cap, const uint8_t *in, size_t len, bool upper);

/* Decode len base32 characters (a-z, 2-7; uppercase accepted), no padding.
 * Leftover bits must be zero (so each input has one decoding). Return the
 * decoded length or -1. Borrows in and out. */
ssize_t base32_decode(uint8_t *out, size_t cap, const char *in, size_t len);

/* Encode len bytes as lowercase base32 without padding into out (room for
 * cap chars plus a NUL). Return the encoded length or -1. */
ssize_t base32_encode(char *out, size_t cap, const uint8_t *in, size_t len);

#endif
