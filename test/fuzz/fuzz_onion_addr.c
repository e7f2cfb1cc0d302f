/* libFuzzer target for proto/onion_addr: any host name either parses to a
 * key that encodes back to the same address label (case aside), or is
 * refused with a reason and SOCKS code 0xF6. Reads only host[0..len). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/onion_addr.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[32];
	char enc[ONION_ADDR_STR_LEN + 1];
	char *host;
	enum onion_addr_err e;

	if (size > 1024)
		return 0;
	host = malloc(size ? size : 1);
	memcpy(host, data, size);
	e = onion_addr_parse(host, size, key);
	if (e == ONION_ADDR_OK) {
		size_t n = size;

		CHECK(onion_addr_is_onion(host, size));
		if (host[n - 1] == '.')
			n--;
		onion_addr_encode(enc, key);
		CHECK(n >= ONION_ADDR_STR_LEN);
		CHECK(strncasecmp(host + n - ONION_ADDR_STR_LEN, enc, ONION_ADDR_STR_LEN) == 0);
	} else {
		CHECK(onion_addr_strerror(e)[0] != '\0');
		CHECK(onion_addr_socks_reply(e) == 0xF6);
	}
	free(host);
	return 0;
}
