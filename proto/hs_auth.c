/* ClientOnionAuthDir file content (see hs_auth.h). */
#include "proto/hs_auth.h"

#include <stdbool.h>
#include <string.h>

#include "core/base64.h"
#include "core/crypto.h"
#include "proto/onion_addr.h"

#define HS_AUTH_KEY_B32_LEN 52 /* base32 of 32 bytes, no padding */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The next ':'-separated field of [*p, end): its start and length. */
static void next_field(const char **p, const char *end, const char **f, size_t *flen)
{
	const char *c = memchr(*p, ':', (size_t)(end - *p));

	*f = *p;
	*flen = (size_t)((c ? c : end) - *p);
	*p = c ? c + 1 : end;
}

enum parse_result hs_auth_parse(const char *text, size_t len, uint8_t id[32], uint8_t sk[32], const char **why)
{
	const char *p = text, *end = text + len, *f;
	char host[ONION_ADDR_STR_LEN + 1];
	size_t flen;
	enum onion_addr_err e;

	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	next_field(&p, end, &f, &flen);
	if (flen == ONION_ADDR_B32_LEN) {
		memcpy(host, f, flen);
		memcpy(host + flen, ".onion", 6);
		flen += 6;
	} else if (flen == ONION_ADDR_STR_LEN) {
		memcpy(host, f, flen);
	} else {
		*why = "the first field is not a v3 onion address";
		return PARSE_INVALID;
	}
	e = onion_addr_parse(host, flen, id);
	if (e != ONION_ADDR_OK) {
		*why = onion_addr_strerror(e);
		return PARSE_INVALID;
	}
	next_field(&p, end, &f, &flen);
	if (flen != 10 || memcmp(f, "descriptor", 10) != 0) {
		*why = "the second field is not \"descriptor\"";
		return PARSE_INVALID;
	}
	next_field(&p, end, &f, &flen);
	if (flen != 6 || memcmp(f, "x25519", 6) != 0) {
		*why = "the key type is not \"x25519\"";
		return PARSE_INVALID;
	}
	if (memchr(p, ':', (size_t)(end - p))) {
		*why = "more than four fields";
		return PARSE_INVALID;
	}
	if (end - p != HS_AUTH_KEY_B32_LEN || base32_decode(sk, 32, p, HS_AUTH_KEY_B32_LEN) != 32) {
		crypto_wipe(sk, 32);
		*why = "the key is not 32 bytes of base32";
		return PARSE_INVALID;
	}
	return PARSE_OK;
}
