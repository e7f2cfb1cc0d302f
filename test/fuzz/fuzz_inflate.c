/* libFuzzer target for proto/inflate: byte 0 picks the format and chunk
 * size; the rest is the compressed stream. Output must never pass the
 * limit, and memory is released on every path. */
#include <stdint.h>
#include <stdlib.h>

#include "proto/inflate.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define FUZZ_MAX_OUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct inflate_buf out = { 0 };
	struct inflate_stream *s;
	size_t chunk;
	int r = 0;

	if (len < 1)
		return 0;
	s = inflate_stream_new((enum inflate_format)(data[0] % 3), FUZZ_MAX_OUT);
	CHECK(s != NULL);
	chunk = (size_t)(data[0] >> 2) + 1;
	for (size_t off = 1; off < len && r == 0; off += chunk)
		r = inflate_stream_push(s, data + off, len - off < chunk ? len - off : chunk, &out);
	CHECK(out.len <= FUZZ_MAX_OUT && out.len <= out.cap);
	(void)inflate_stream_finish(s);
	inflate_stream_free(s);
	inflate_buf_free(&out);
	return 0;
}
