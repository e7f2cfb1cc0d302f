/* v3 onion addresses (rend-spec-v3 section 6 [ONIONADDRESS], 2.2.7):
 * recognise "<56 base32>.onion" host names (with optional subdomains),
 * check version and checksum, refuse keys with a torsion component, and
 * encode an identity key back into an address.
 *
 * Not for v2 (16-character) addresses, which tor no longer supports: they
 * are refused with a reason. Pure functions, no allocation; any thread. */
#ifndef ONIONRING_PROTO_ONION_ADDR_H
#define ONIONRING_PROTO_ONION_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ONION_ADDR_B32_LEN 56       /* base32(PUBKEY | CHECKSUM | VERSION) */
#define ONION_ADDR_STR_LEN 62       /* with ".onion", without the NUL */
#define ONION_ADDR_VERSION 3

enum onion_addr_err {
	ONION_ADDR_OK = 0,
	ONION_ADDR_NOT_ONION,      /* does not end in ".onion" */
	ONION_ADDR_BAD_LENGTH,     /* label is not 56 characters (v2 included) */
	ONION_ADDR_BAD_BASE32,
	ONION_ADDR_BAD_VERSION,
	ONION_ADDR_BAD_CHECKSUM,
	ONION_ADDR_BAD_KEY,        /* not a valid point, or has torsion */
};

/* True when host[0..len) ends in ".onion" (any case): the caller must
 * then never resolve it as a DNS name. */
bool onion_addr_is_onion(const char *host, size_t len);

/* Parse host[0..len) (no NUL needed) as a v3 onion host name; the label
 * just before ".onion" is the address and any labels before it are
 * ignored. On ONION_ADDR_OK write the service's 32-byte identity key.
 * Borrows host. Any thread. */
enum onion_addr_err onion_addr_parse(const char *host, size_t len, uint8_t pubkey[32]);

/* A one-line reason for err, for logs ("checksum mismatch"). Static. */
const char *onion_addr_strerror(enum onion_addr_err err);

/* The SOCKS5 reply for a refused address: tor's extended code 0xF6 "bad
 * onion address" (socks-extensions.txt), which is in the host-unreachable
 * class for clients that know only RFC 1928. */
uint8_t onion_addr_socks_reply(enum onion_addr_err err);

/* Write "<56 base32>.onion" and a NUL for pubkey into out. */
void onion_addr_encode(char out[ONION_ADDR_STR_LEN + 1], const uint8_t pubkey[32]);

#endif
