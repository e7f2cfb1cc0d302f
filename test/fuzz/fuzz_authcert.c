/* libFuzzer target: authcert_parse_all on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "proto/authcert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authcert **certs;
	struct netdoc_err err;
	size_t n;

	if (authcert_parse_all((const char *)data, size, &certs, &n, &err) != PARSE_OK)
		return 0;
	for (size_t i = 0; i < n; i++)
		(void)authcert_is_live(certs[i], certs[i]->published);
	authcert_free_all(certs, n);
	return 0;
}
