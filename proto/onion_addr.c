/* v3 onion address parsing and encoding (see onion_addr.h). */
#include "proto/onion_addr.h"

#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/crypto.h"
#include "proto/socks.h"

#define ONION_SUFFIX ".onion"
#define ONION_SUFFIX_LEN 6
#define CHECKSUM_PREFIX ".onion checksum"
#define CHECKSUM_PREFIX_LEN 15

bool onion_addr_is_onion(const char *host, size_t len)
{
	/* A trailing dot is the DNS root; tor treats "x.onion." as ".onion" too. */
	if (len > 0 && host[len - 1] == '.')
		len--;
	return len >= ONION_SUFFIX_LEN &&
	       strncasecmp(host + len - ONION_SUFFIX_LEN, ONION_SUFFIX, ONION_SUFFIX_LEN) == 0;
}

/* CHECKSUM = SHA3-256(".onion checksum" | PUBKEY | VERSION)[:2] (section 6). */
static void onion_addr_checksum(const uint8_t pubkey[32], uint8_t version, uint8_t out[2])
{
	uint8_t buf[CHECKSUM_PREFIX_LEN + 32 + 1], d[SHA3_256_LEN];

	memcpy(buf, CHECKSUM_PREFIX, CHECKSUM_PREFIX_LEN);
	memcpy(buf + CHECKSUM_PREFIX_LEN, pubkey, 32);
	buf[CHECKSUM_PREFIX_LEN + 32] = version;
	crypto_sha3_256(buf, sizeof(buf), d);
	memcpy(out, d, 2);
}

enum onion_addr_err onion_addr_parse(const char *host, size_t len, uint8_t pubkey[32])
{
	const char *label;
	uint8_t raw[35], sum[2];
	size_t n;

	if (!onion_addr_is_onion(host, len))
		return ONION_ADDR_NOT_ONION;
	if (host[len - 1] == '.')
		len--;
	len -= ONION_SUFFIX_LEN;
	/* The address is the last label; subdomains before it are the
	 * service's business (tor strips them the same way). */
	label = host;
	for (size_t i = len; i > 0; i--) {
		if (host[i - 1] == '.') {
			label = host + i;
			break;
		}
	}
	n = len - (size_t)(label - host);
	if (n != ONION_ADDR_B32_LEN)
		return ONION_ADDR_BAD_LENGTH;
	if (base32_decode(raw, sizeof(raw), label, n) != (ssize_t)sizeof(raw))
		return ONION_ADDR_BAD_BASE32;
	if (raw[34] != ONION_ADDR_VERSION)
		return ONION_ADDR_BAD_VERSION;
	onion_addr_checksum(raw, raw[34], sum);
	if (memcmp(sum, raw + 32, 2) != 0)
		return ONION_ADDR_BAD_CHECKSUM;
	/* 2.2.7: a key with a torsion component would give several addresses
	 * for one service. */
	if (!crypto_ed25519_point_is_valid(raw))
		return ONION_ADDR_BAD_KEY;
	memcpy(pubkey, raw, 32);
	return ONION_ADDR_OK;
}

const char *onion_addr_strerror(enum onion_addr_err err)
{
	switch (err) {
	case ONION_ADDR_OK:
		return "ok";
	case ONION_ADDR_NOT_ONION:
		return "not an .onion name";
	case ONION_ADDR_BAD_LENGTH:
		return "onion address is not 56 characters (v2 addresses are no longer supported)";
	case ONION_ADDR_BAD_BASE32:
		return "onion address is not valid base32";
	case ONION_ADDR_BAD_VERSION:
		return "onion address has an unknown version (want 3)";
	case ONION_ADDR_BAD_CHECKSUM:
		return "onion address checksum mismatch (typo?)";
	case ONION_ADDR_BAD_KEY:
		return "onion address key is not a valid ed25519 point";
	}
	return "unknown onion address error";
}

uint8_t onion_addr_socks_reply(enum onion_addr_err err)
{
	(void)err;
	return SOCKS5_HS_BAD_ADDRESS;
}

void onion_addr_encode(char out[ONION_ADDR_STR_LEN + 1], const uint8_t pubkey[32])
{
	uint8_t raw[35];

	memcpy(raw, pubkey, 32);
	raw[34] = ONION_ADDR_VERSION;
	onion_addr_checksum(pubkey, ONION_ADDR_VERSION, raw + 32);
	(void)base32_encode(out, ONION_ADDR_STR_LEN + 1, raw, sizeof(raw));
	memcpy(out + ONION_ADDR_B32_LEN, ONION_SUFFIX, ONION_SUFFIX_LEN + 1);
}
