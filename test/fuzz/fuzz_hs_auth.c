/* libFuzzer target for proto/hs_auth: any file content either parses to an
 * identity that is a valid onion address and a key, or is refused with a
 * reason. Reads only data[0..size). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/hs_auth.h"
#include "proto/onion_addr.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t id[32], id2[32], sk[32];
	char addr[ONION_ADDR_STR_LEN + 1];
	const char *why = NULL;
	char *text;

	if (size > 4096)
		return 0;
	text = malloc(size ? size : 1);
	memcpy(text, data, size);
	if (hs_auth_parse(text, size, id, sk, &why) == PARSE_OK) {
		onion_addr_encode(addr, id);
		CHECK(onion_addr_parse(addr, strlen(addr), id2) == ONION_ADDR_OK);
		CHECK(memcmp(id, id2, 32) == 0);
	} else {
		CHECK(why && why[0]);
	}
	free(text);
	return 0;
}
