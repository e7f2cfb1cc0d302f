/* libFuzzer target: microdesc_parse_batch on arbitrary bytes, then the
 * policy summaries and the wanted-digest check on whatever parsed. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/microdesc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct microdesc_batch *b;
	struct netdoc_err err;
	bool *ok;

	if (microdesc_parse_batch((const char *)data, size, &b, &err) != PARSE_OK)
		return 0;
	ok = malloc(b->n);
	for (size_t i = 0; i < b->n; i++) {
		(void)policy_summary_allows(&b->mds[i].p, 443);
		(void)policy_summary_allows(&b->mds[i].p6, 1);
	}
	/* Every received digest is wanted exactly once when asked for all. */
	uint8_t(*want)[SHA256_LEN] = malloc((b->n ? b->n : 1) * SHA256_LEN);
	for (size_t i = 0; i < b->n; i++)
		__builtin_memcpy(want[i], b->mds[i].digest, SHA256_LEN);
	(void)microdesc_check_wanted(b, (const uint8_t(*)[SHA256_LEN])want, b->n, ok);
	free(want);
	free(ok);
	microdesc_batch_free(b);
	return 0;
}
