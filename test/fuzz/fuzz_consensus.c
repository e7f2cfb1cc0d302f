/* libFuzzer target: consensus_parse on arbitrary bytes, then the lookups
 * and consensus_verify (with no certificates) on whatever parsed. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/consensus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct consensus *c;
	struct netdoc_err err;
	uint8_t trusted[1][SHA1_LEN] = { { 0 } };
	char why[128];

	if (consensus_parse((const char *)data, size, &c, &err) != PARSE_OK)
		return 0;
	(void)consensus_param(c, "cc_alg", 2, 0, 2);
	for (size_t i = 0; i < c->n_routers; i++)
		if (consensus_find_router(c, c->routers[i].identity) != &c->routers[i])
			__builtin_trap();
	if (c->n_sigs)
		memcpy(trusted[0], c->sigs[0].identity, SHA1_LEN);
	(void)consensus_verify(c, NULL, 0, (const uint8_t(*)[SHA1_LEN])trusted, 1, c->valid_after,
			       why, sizeof(why));
	consensus_free(c);
	return 0;
}
