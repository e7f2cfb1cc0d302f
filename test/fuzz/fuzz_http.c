/* libFuzzer target for proto/http: the response head parser must never read
 * past its input, must agree with itself on a shorter prefix, and the
 * request builder must refuse or produce one well-formed request. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct http_response r, r2;
	enum parse_result res = http_response_parse(data, len, &r, NULL);
	char path[128], host[64], req[512];
	size_t split, n;

	if (res == PARSE_OK) {
		CHECK(r.header_len <= len && r.header_len <= HTTP_HEADER_MAX);
		CHECK(r.status >= 100 && r.status <= 599);
		CHECK(memchr(r.reason, 0, sizeof(r.reason)) != NULL);
		CHECK(http_response_parse(data, r.header_len - 1, &r2, NULL) == PARSE_NEED_MORE);
	}
	/* Split the input into a path and a host for the builder. */
	split = len / 2;
	n = split < sizeof(path) - 1 ? split : sizeof(path) - 1;
	memcpy(path, data, n);
	path[n] = '\0';
	n = len - split < sizeof(host) - 1 ? len - split : sizeof(host) - 1;
	memcpy(host, data + split, n);
	host[n] = '\0';
	n = http_request_build(req, sizeof(req), path, host);
	if (n) {
		CHECK(strlen(req) == n && memcmp(req + n - 4, "\r\n\r\n", 4) == 0);
		CHECK(strstr(req, "\r\n\r\n") == req + n - 4);
	}
	return 0;
}
