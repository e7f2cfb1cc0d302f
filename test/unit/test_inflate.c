/* Streaming inflate with output and ratio limits. The compressed inputs are
 * made here with zlib's own compressor (compress2 / deflateInit2), an
 * independent path from the inflate code under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <zlib.h>
#include <cmocka.h>

#include "core/compiler.h"
#include "proto/inflate.h"

#define DOC_LEN (200 * 1024)

/* A document shaped like a consensus: lines of words and pseudo-random hex,
 * which compress a few times, well under the bomb ratio. */
static uint8_t *make_doc(size_t len)
{
	uint8_t *d = malloc(len);
	uint32_t x = 12345;
	size_t n = 0;

	while (n < len) {
		char line[80];
		int k;

		x = x * 1103515245u + 12345u;
		k = snprintf(line, sizeof(line), "r relay%u %08x %u.%u.%u.%u 9001\n",
			     x % 997, x, x >> 24, (x >> 16) & 255, (x >> 8) & 255, x & 255);
		for (int i = 0; i < k && n < len; i++)
			d[n++] = (uint8_t)line[i];
	}
	return d;
}

/* Compress in[0..len) as zlib (gzip=false) or gzip; return owned bytes. */
static uint8_t *squeeze(const uint8_t *in, size_t len, bool gzip, size_t *out_len)
{
	z_stream z;
	uLong cap = compressBound(len) + 32;
	uint8_t *out = malloc(cap);

	if (!gzip) {
		uLongf n = cap;
		assert_int_equal(compress2(out, &n, in, len, 9), Z_OK);
		*out_len = n;
		return out;
	}
	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* Push comp in chunks of chunk bytes; return the final status. */
static int push_chunks(enum inflate_format fmt, const uint8_t *comp, size_t n, size_t chunk,
		       size_t max_out, struct inflate_buf *out)
{
	struct inflate_stream *s = inflate_stream_new(fmt, max_out);
	int r = 0;

	assert_non_null(s);
	for (size_t off = 0; off < n && r >= 0; off += chunk)
		r = inflate_stream_push(s, comp + off, MIN(chunk, n - off), out);
	if (r >= 0)
		r = inflate_stream_finish(s);
	inflate_stream_free(s);
	assert_null(s);
	return r;
}

static void test_inflate_round_trips_zlib_and_gzip_in_any_chunking(void **state)
{
	static const size_t chunks[] = { 1, 7, 1000, 1 << 20 };
	uint8_t *doc = make_doc(DOC_LEN);

	(void)state;
	for (int gz = 0; gz < 2; gz++) {
		size_t n;
		uint8_t *comp = squeeze(doc, DOC_LEN, gz, &n);

		assert_true(n < DOC_LEN / 2);
		for (size_t i = 0; i < ARRAY_LEN(chunks); i++) {
			struct inflate_buf out = { 0 };

			assert_int_equal(push_chunks(gz ? INFLATE_GZIP : INFLATE_ZLIB, comp, n,
						     chunks[i], DOC_LEN, &out), 0);
			assert_int_equal(out.len, DOC_LEN);
			assert_memory_equal(out.data, doc, DOC_LEN);
			inflate_buf_free(&out);
			assert_null(out.data);
		}
		free(comp);
	}
	free(doc);
}

static void test_inflate_auto_detects_zlib_and_gzip_but_fixed_formats_do_not(void **state)
{
	uint8_t *doc = make_doc(4096);
	size_t nz, ng;
	uint8_t *z = squeeze(doc, 4096, false, &nz);
	uint8_t *g = squeeze(doc, 4096, true, &ng);
	struct inflate_buf out = { 0 };

	(void)state;
	assert_int_equal(inflate_oneshot(INFLATE_AUTO, z, nz, 4096, &out), 0);
	assert_int_equal(inflate_oneshot(INFLATE_AUTO, g, ng, 4096, &out), 0);
	assert_int_equal(out.len, 8192);
	assert_memory_equal(out.data + 4096, doc, 4096);
	assert_int_equal(inflate_oneshot(INFLATE_ZLIB, g, ng, 4096, &out), -EBADMSG);
	assert_int_equal(inflate_oneshot(INFLATE_GZIP, z, nz, 4096, &out), -EBADMSG);
	inflate_buf_free(&out);
	free(z);
	free(g);
	free(doc);
}

static void test_inflate_rejects_every_truncation(void **state)
{
	uint8_t *doc = make_doc(3000);
	size_t n;
	uint8_t *comp = squeeze(doc, 3000, false, &n);

	(void)state;
	for (size_t k = 0; k < n; k++) {
		struct inflate_buf out = { 0 };

		assert_int_equal(inflate_oneshot(INFLATE_ZLIB, comp, k, 3000, &out), -EBADMSG);
		inflate_buf_free(&out);
	}
	free(comp);
	free(doc);
}

static void test_inflate_rejects_corruption_and_trailing_bytes(void **state)
{
	uint8_t *doc = make_doc(3000);
	size_t n;
	uint8_t *comp = squeeze(doc, 3000, false, &n);
	uint8_t *more = malloc(n + 1);
	struct inflate_buf out = { 0 };

	(void)state;
	memcpy(more, comp, n);
	more[n] = 'x';
	assert_int_equal(inflate_oneshot(INFLATE_ZLIB, more, n + 1, 3000, &out), -EBADMSG);
	inflate_buf_free(&out);
	comp[n - 2] ^= 0x40; /* inside the Adler-32 trailer */
	assert_int_equal(inflate_oneshot(INFLATE_ZLIB, comp, n, 3000, &out), -EBADMSG);
	inflate_buf_free(&out);
	comp[0] = 0xff; /* not a zlib header */
	assert_int_equal(inflate_oneshot(INFLATE_ZLIB, comp, n, 3000, &out), -EBADMSG);
	inflate_buf_free(&out);
	free(more);
	free(comp);
	free(doc);
}

static void test_inflate_output_limit_is_exact_and_bounds_the_buffer(void **state)
{
	uint8_t *doc = make_doc(DOC_LEN);
	size_t n;
	uint8_t *comp = squeeze(doc, DOC_LEN, false, &n);
	struct inflate_buf out = { 0 };
	struct inflate_stream *s;

	(void)state;
	assert_int_equal(inflate_oneshot(INFLATE_ZLIB, comp, n, DOC_LEN, &out), 0);
	inflate_buf_free(&out);
	assert_int_equal(inflate_oneshot(INFLATE_ZLIB, comp, n, DOC_LEN - 1, &out), -EMSGSIZE);
	assert_true(out.cap <= DOC_LEN);
	inflate_buf_free(&out);
	/* Errors are sticky: later pushes and finish report the same. */
	s = inflate_stream_new(INFLATE_ZLIB, 1000);
	assert_int_equal(inflate_stream_push(s, comp, n, &out), -EMSGSIZE);
	assert_true(out.cap <= 1001);
	assert_int_equal(inflate_stream_push(s, comp, 0, &out), -EMSGSIZE);
	assert_int_equal(inflate_stream_finish(s), -EMSGSIZE);
	inflate_stream_free(s);
	inflate_stream_free(s); /* NULL-safe */
	inflate_buf_free(&out);
	free(comp);
	free(doc);
}

static void test_inflate_refuses_absurd_compression_ratio(void **state)
{
	const size_t big = 8 << 20;
	uint8_t *zeros = calloc(1, big);
	size_t n;
	uint8_t *comp = squeeze(zeros, big, true, &n);
	struct inflate_buf out = { 0 };

	(void)state;
	assert_true(big / n > 100);
	/* Even with a generous output limit the ratio gives it away early. */
	assert_int_equal(push_chunks(INFLATE_GZIP, comp, n, 512, big, &out), -EMSGSIZE);
	assert_true(out.len < big / 4);
	inflate_buf_free(&out);
	/* Small outputs are never called bombs, however well they compress. */
	assert_int_equal(inflate_oneshot(INFLATE_ZLIB, (const uint8_t *)"x\x9c\x03\x00\x00\x00\x00\x01",
					 8, 10, &out), 0);
	assert_int_equal(out.len, 0);
	inflate_buf_free(&out);
	free(comp);
	free(zeros);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inflate_round_trips_zlib_and_gzip_in_any_chunking),
		cmocka_unit_test(test_inflate_auto_detects_zlib_and_gzip_but_fixed_formats_do_not),
		cmocka_unit_test(test_inflate_rejects_every_truncation),
		cmocka_unit_test(test_inflate_rejects_corruption_and_trailing_bytes),
		cmocka_unit_test(test_inflate_output_limit_is_exact_and_bounds_the_buffer),
		cmocka_unit_test(test_inflate_refuses_absurd_compression_ratio),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
