/* core/base64: the RFC 4648 section 10 test vectors for base64, base32 and
 * base16, plus the relaxations tor's documents need (no padding, wrapped
 * object bodies) and the inputs that must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/base64.h"

static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
static const char *const b64[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
static const char *const b32[] = { "", "my", "mzxq", "mzxw6", "mzxw6yq", "mzxw6ytb", "mzxw6ytboi" };
static const char *const b16[] = { "", "66", "666F", "666F6F", "666F6F62", "666F6F6261",
				   "666F6F626172" };

static void test_base64_rfc4648_vectors_round_trip(void **state)
{
	char enc[32];
	uint8_t dec[32];

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		size_t n = strlen(plain[i]);
		assert_int_equal(base64_encode(enc, sizeof(enc), (const uint8_t *)plain[i], n, true),
				 strlen(b64[i]));
		assert_string_equal(enc, b64[i]);
		assert_int_equal(base64_decode(dec, sizeof(dec), b64[i], strlen(b64[i])), n);
		assert_memory_equal(dec, plain[i], n);
	}
}

static void test_base64_decodes_without_padding_as_tor_writes_digests(void **state)
{
	char enc[32];
	uint8_t dec[32];

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		size_t n = strlen(plain[i]);
		ssize_t e = base64_encode(enc, sizeof(enc), (const uint8_t *)plain[i], n, false);
		assert_true(e >= 0);
		assert_null(strchr(enc, '='));
		assert_int_equal(base64_decode(dec, sizeof(dec), enc, (size_t)e), n);
		assert_memory_equal(dec, plain[i], n);
	}
}

static void test_base64_skips_newlines_inside_object_bodies(void **state)
{
	const char *wrapped = "Zm9v\nYmFy\r\n  \t";
	uint8_t dec[8];

	(void)state;
	assert_int_equal(base64_decode(dec, sizeof(dec), wrapped, strlen(wrapped)), 6);
	assert_memory_equal(dec, "foobar", 6);
}

static void test_base64_rejects_bad_characters_padding_and_lengths(void **state)
{
	const char *bad[] = { "Zm9v!", "Z", "Zm9vY", "Zg=", "Zg===", "Z===", "Zg==Zg==",
			      "Zm=9", "=Zm9", "Zm8=x" };
	uint8_t dec[16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(base64_decode(dec, sizeof(dec), bad[i], strlen(bad[i])), -1);
}

static void test_base64_refuses_too_small_buffers(void **state)
{
	uint8_t dec[5];
	char enc[9];

	(void)state;
	assert_int_equal(base64_decode(dec, sizeof(dec), "Zm9vYmFy", 8), -1);
	assert_int_equal(base64_decode(dec, 5, "Zm9vYmE", 7), 5);
	assert_int_equal(base64_decode(dec, 4, "Zm9vYmE", 7), -1);
	assert_int_equal(base64_encode(enc, 8, (const uint8_t *)"foobar", 6, true), -1); /* no room for NUL */
	assert_int_equal(base64_encode(enc, 9, (const uint8_t *)"foobar", 6, true), 8);
}

static void test_base32_rfc4648_vectors_lowercase_round_trip(void **state)
{
	char enc[32];
	uint8_t dec[32];

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		size_t n = strlen(plain[i]);
		assert_int_equal(base32_encode(enc, sizeof(enc), (const uint8_t *)plain[i], n),
				 strlen(b32[i]));
		assert_string_equal(enc, b32[i]);
		assert_int_equal(base32_decode(dec, sizeof(dec), b32[i], strlen(b32[i])), n);
		assert_memory_equal(dec, plain[i], n);
	}
	assert_int_equal(base32_decode(dec, sizeof(dec), "MZXW6YTBOI", 10), 6);
	assert_memory_equal(dec, "foobar", 6);
}

static void test_base32_rejects_bad_digits_lengths_and_nonzero_tail_bits(void **state)
{
	uint8_t dec[16];

	(void)state;
	assert_int_equal(base32_decode(dec, sizeof(dec), "my1", 3), -1);
	assert_int_equal(base32_decode(dec, sizeof(dec), "m", 1), -1);
	assert_int_equal(base32_decode(dec, sizeof(dec), "mz", 2), -1);   /* tail bits set */
	assert_int_equal(base32_decode(dec, sizeof(dec), "mzx", 3), -1);  /* 15 bits: no */
	assert_int_equal(base32_decode(dec, 2, "mzxw6", 5), -1);
}

static void test_base16_vectors_either_case_and_bad_input(void **state)
{
	char enc[32];
	uint8_t dec[32];

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		size_t n = strlen(plain[i]);
		assert_int_equal(base16_encode(enc, sizeof(enc), (const uint8_t *)plain[i], n, true),
				 2 * n);
		assert_string_equal(enc, b16[i]);
		assert_int_equal(base16_decode(dec, sizeof(dec), b16[i], strlen(b16[i])), n);
		assert_memory_equal(dec, plain[i], n);
	}
	assert_int_equal(base16_encode(enc, sizeof(enc), (const uint8_t *)"\xab\x01", 2, false), 4);
	assert_string_equal(enc, "ab01");
	assert_int_equal(base16_decode(dec, sizeof(dec), "aB01", 4), 2);
	assert_int_equal(dec[0], 0xab);
	assert_int_equal(base16_decode(dec, sizeof(dec), "abc", 3), -1);
	assert_int_equal(base16_decode(dec, sizeof(dec), "ag", 2), -1);
	assert_int_equal(base16_decode(dec, 1, "abcd", 4), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_rfc4648_vectors_round_trip),
		cmocka_unit_test(test_base64_decodes_without_padding_as_tor_writes_digests),
		cmocka_unit_test(test_base64_skips_newlines_inside_object_bodies),
		cmocka_unit_test(test_base64_rejects_bad_characters_padding_and_lengths),
		cmocka_unit_test(test_base64_refuses_too_small_buffers),
		cmocka_unit_test(test_base32_rfc4648_vectors_lowercase_round_trip),
		cmocka_unit_test(test_base32_rejects_bad_digits_lengths_and_nonzero_tail_bits),
		cmocka_unit_test(test_base16_vectors_either_case_and_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
