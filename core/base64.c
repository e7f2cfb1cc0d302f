/* Base64, base16 and base32 codecs (see base64.h). Table-driven, no
 * allocation, constant memory; not constant-time (inputs are public). */
#include "core/base64.h"

static const char b64_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b32_alpha[] = "abcdefghijklmnopqrstuvwxyz234567";

enum { B64_BAD = 0xff, B64_SPACE = 0xfe, B64_PAD = 0xfd };

/* Value of each byte in the base64 alphabet; B64_SPACE, B64_PAD or B64_BAD
 * otherwise (generated from the RFC 4648 alphabet). */
static const uint8_t b64_table[256] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xfe, 0xff, 0xff, 0xfe, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3e, 0xff, 0xff, 0xff, 0x3f,
	0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0xff, 0xff, 0xff, 0xfd, 0xff, 0xff,
	0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
	0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
	0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

static inline uint8_t b64_value(unsigned char ch) { return b64_table[ch]; }

/* After the first '=': only more '=' and spaces may follow, and the total
 * padding must complete the last quantum exactly. */
static bool b64_padding_ok(const char *in, size_t len, size_t i, unsigned nchars)
{
	unsigned pads = 0;

	for (; i < len; i++) {
		uint8_t v = b64_value((unsigned char)in[i]);
		if (v == B64_PAD)
			pads++;
		else if (v != B64_SPACE)
			return false;
	}
	return (nchars % 4) + pads == 4;
}

ssize_t base64_decode(uint8_t *out, size_t cap, const char *in, size_t len)
{
	uint32_t acc = 0;
	unsigned nchars = 0;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t v = b64_value((unsigned char)in[i]);
		if (v == B64_SPACE)
			continue;
		if (v == B64_BAD)
			return -1;
		if (v == B64_PAD) {
			if (nchars % 4 < 2 || !b64_padding_ok(in, len, i, nchars))
				return -1;
			break;
		}
		acc = (acc << 6) | v;
		if (++nchars % 4 == 0) {
			if (cap - n < 3)
				return -1;
			out[n++] = (uint8_t)(acc >> 16);
			out[n++] = (uint8_t)(acc >> 8);
			out[n++] = (uint8_t)acc;
			acc = 0;
		}
	}
	switch (nchars % 4) {
	case 1:
		return -1;
	case 2:
		if (cap - n < 1)
			return -1;
		out[n++] = (uint8_t)(acc >> 4);
		break;
	case 3:
		if (cap - n < 2)
			return -1;
		out[n++] = (uint8_t)(acc >> 10);
		out[n++] = (uint8_t)(acc >> 2);
		break;
	}
	return (ssize_t)n;
}

ssize_t base64_encode(char *out, size_t cap, const uint8_t *in, size_t len, bool pad)
{
	size_t need = pad ? base64_encoded_len(len) : (len * 4 + 2) / 3;
	size_t o = 0;

	if (cap < need + 1)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t acc = (uint32_t)in[i] << 16;
		size_t left = len - i;
		if (left > 1)
			acc |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			acc |= in[i + 2];
		out[o++] = b64_alpha[(acc >> 18) & 63];
		out[o++] = b64_alpha[(acc >> 12) & 63];
		if (left > 1)
			out[o++] = b64_alpha[(acc >> 6) & 63];
		else if (pad)
			out[o++] = '=';
		if (left > 2)
			out[o++] = b64_alpha[acc & 63];
		else if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return (ssize_t)o;
}

static int hex_value(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

ssize_t base16_decode(uint8_t *out, size_t cap, const char *in, size_t len)
{
	if (len % 2 || cap < len / 2)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_value((unsigned char)in[i]);
		int lo = hex_value((unsigned char)in[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (ssize_t)(len / 2);
}

ssize_t base16_encode(char *out, size_t cap, const uint8_t *in, size_t len, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

	if (cap < len * 2 + 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[len * 2] = '\0';
	return (ssize_t)(len * 2);
}

static int b32_value(unsigned char ch)
{
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a';
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= '2' && ch <= '7')
		return ch - '2' + 26;
	return -1;
}

ssize_t base32_decode(uint8_t *out, size_t cap, const char *in, size_t len)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int v = b32_value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			if (n >= cap)
				return -1;
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits: fewer than 5 and all zero, or the length was not one
	 * a whole number of bytes encodes to. */
	if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (ssize_t)n;
}

ssize_t base32_encode(char *out, size_t cap, const uint8_t *in, size_t len)
{
	size_t need = (len * 8 + 4) / 5;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (cap < need + 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = b32_alpha[(acc >> bits) & 31];
		}
	}
	if (bits)
		out[o++] = b32_alpha[(acc << (5 - bits)) & 31];
	out[o] = '\0';
	return (ssize_t)o;
}
