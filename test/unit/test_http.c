/* HTTP/1.0 response head parser and GET builder for directory fetches.
 * The responses are shaped like those of tor's directory servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/compiler.h"
#include "proto/http.h"

static const char DIR_RESPONSE[] =
	"HTTP/1.0 200 OK\r\n"
	"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
	"Content-Type: text/plain\r\n"
	"X-Your-Address-Is: 127.0.0.1\r\n"
	"Content-Encoding: deflate\r\n"
	"Content-Length: 1234\r\n"
	"Expires: Mon, 01 Jan 2024 00:30:00 GMT\r\n"
	"\r\n";

static enum parse_result parse_str(const char *s, struct http_response *r, const char **why)
{
	return http_response_parse((const uint8_t *)s, strlen(s), r, why);
}

static void expect_invalid(const char *s)
{
	struct http_response r;
	const char *why = NULL;

	assert_int_equal(parse_str(s, &r, &why), PARSE_INVALID);
	assert_non_null(why);
}

static void test_http_parses_a_directory_response_head(void **state)
{
	char buf[sizeof(DIR_RESPONSE) + 8];
	struct http_response r;
	const char *why = "unset";

	(void)state;
	snprintf(buf, sizeof(buf), "%sBODY", DIR_RESPONSE);
	assert_int_equal(parse_str(buf, &r, &why), PARSE_OK);
	assert_null(why);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.minor_version, 0);
	assert_string_equal(r.reason, "OK");
	assert_true(r.has_content_length);
	assert_int_equal(r.content_length, 1234);
	assert_int_equal(r.encoding, HTTP_ENC_DEFLATE);
	assert_int_equal(r.header_len, strlen(DIR_RESPONSE));
	assert_memory_equal(buf + r.header_len, "BODY", 4);
}

static void test_http_every_proper_prefix_needs_more(void **state)
{
	const size_t n = strlen(DIR_RESPONSE);
	struct http_response r;
	uint8_t *copy = malloc(n);

	(void)state;
	/* Heap copies of each prefix let ASan catch any read past the end. */
	for (size_t k = 0; k < n; k++) {
		uint8_t *p = malloc(k ? k : 1);

		memcpy(p, DIR_RESPONSE, k);
		assert_int_equal(http_response_parse(p, k, &r, NULL), PARSE_NEED_MORE);
		free(p);
	}
	memcpy(copy, DIR_RESPONSE, n);
	assert_int_equal(http_response_parse(copy, n, &r, NULL), PARSE_OK);
	free(copy);
}

static void test_http_status_without_length_or_encoding(void **state)
{
	struct http_response r;

	(void)state;
	assert_int_equal(parse_str("HTTP/1.1 404 Not found\r\n\r\n", &r, NULL), PARSE_OK);
	assert_int_equal(r.status, 404);
	assert_int_equal(r.minor_version, 1);
	assert_string_equal(r.reason, "Not found");
	assert_false(r.has_content_length);
	assert_int_equal(r.encoding, HTTP_ENC_IDENTITY);
	assert_int_equal(parse_str("HTTP/1.0 503\r\n\r\n", &r, NULL), PARSE_OK);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.reason, "");
}

static void test_http_reports_each_content_encoding(void **state)
{
	static const struct {
		const char *value;
		enum http_encoding enc;
		bool supported;
	} cases[] = {
		{ "identity", HTTP_ENC_IDENTITY, true }, { "Deflate", HTTP_ENC_DEFLATE, true },
		{ "gzip", HTTP_ENC_GZIP, true },         { "x-gzip", HTTP_ENC_GZIP, true },
		{ "x-tor-lzma", HTTP_ENC_X_TOR_LZMA, false },
		{ "x-zstd", HTTP_ENC_X_ZSTD, false },   { "br", HTTP_ENC_UNKNOWN, false },
		{ "gzip, deflate", HTTP_ENC_UNKNOWN, false },
	};
	char buf[128];
	struct http_response r;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		snprintf(buf, sizeof(buf), "HTTP/1.0 200 OK\r\ncontent-encoding:  %s \r\n\r\n",
			 cases[i].value);
		assert_int_equal(parse_str(buf, &r, NULL), PARSE_OK);
		assert_int_equal(r.encoding, cases[i].enc);
		assert_int_equal(http_encoding_is_supported(r.encoding), cases[i].supported);
	}
	assert_string_equal(http_encoding_name(HTTP_ENC_X_TOR_LZMA), "x-tor-lzma");
}

static void test_http_rejects_malformed_heads(void **state)
{
	static const char *bad[] = {
		"SSH-2.0-OpenSSH\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.0 2x0 OK\r\n\r\n",
		"HTTP/1.0 999 Odd\r\n\r\n",
		"HTTP/1.0 200OK\r\n\r\n",
		"HTTP/1.0  200 OK\r\n\r\n",
		"HTTP/1.0 200 OK\r\nNoColon\r\n\r\n",
		"HTTP/1.0 200 OK\r\n: empty name\r\n\r\n",
		"HTTP/1.0 200 OK\r\nBad Name: x\r\n\r\n",
		"HTTP/1.0 200 OK\r\nA: b\r\n folded\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 12a\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length:\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Encoding: gzip\r\nContent-Encoding: gzip\r\n\r\n",
		"HTTP/1.0 200 OK\r\nA: b\nC: d\r\n\r\n",
		"HTTP/1.0 200 O\x01K\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		expect_invalid(bad[i]);
}

static void test_http_accepts_repeated_equal_content_length(void **state)
{
	struct http_response r;

	(void)state;
	assert_int_equal(parse_str("HTTP/1.0 200 OK\r\nContent-Length: 7\r\n"
				   "Content-Length: 7\r\n\r\n", &r, NULL), PARSE_OK);
	assert_int_equal(r.content_length, 7);
}

static void test_http_rejects_nul_in_head(void **state)
{
	const uint8_t head[] = "HTTP/1.0 200 OK\r\nA: b\0c\r\n\r\n";
	struct http_response r;

	(void)state;
	assert_int_equal(http_response_parse(head, sizeof(head) - 1, &r, NULL), PARSE_INVALID);
}

static void test_http_head_of_16k_without_end_is_invalid(void **state)
{
	uint8_t *buf = malloc(HTTP_HEADER_MAX + 16);
	struct http_response r;
	const char *why = NULL;
	size_t n;

	(void)state;
	memset(buf, 'a', HTTP_HEADER_MAX + 16);
	memcpy(buf, "HTTP/1.0 200 OK\r\nX: ", 20);
	assert_int_equal(http_response_parse(buf, HTTP_HEADER_MAX - 1, &r, NULL), PARSE_NEED_MORE);
	assert_int_equal(http_response_parse(buf, HTTP_HEADER_MAX, &r, &why), PARSE_INVALID);
	assert_non_null(why);
	/* A blank line just past the limit does not rescue it. */
	memcpy(buf + HTTP_HEADER_MAX - 2, "\r\n\r\n", 4);
	assert_int_equal(http_response_parse(buf, HTTP_HEADER_MAX + 2, &r, NULL), PARSE_INVALID);
	/* Ending exactly at the limit is fine. */
	n = HTTP_HEADER_MAX;
	memcpy(buf + n - 4, "\r\n\r\n", 4);
	assert_int_equal(http_response_parse(buf, n, &r, NULL), PARSE_OK);
	assert_int_equal(r.header_len, n);
	free(buf);
}

static void test_http_request_builder_writes_begin_dir_get(void **state)
{
	const char *want = "GET /tor/status-vote/current/consensus-microdesc HTTP/1.0\r\n"
			   "Host: 127.0.0.1\r\n"
			   "Accept-Encoding: deflate, gzip\r\n\r\n";
	char out[256];
	size_t n = strlen(want);

	(void)state;
	assert_int_equal(http_request_build(out, sizeof(out),
					    "/tor/status-vote/current/consensus-microdesc",
					    "127.0.0.1"), n);
	assert_string_equal(out, want);
	assert_int_equal(http_request_build(out, n + 1, "/tor/status-vote/current/consensus-microdesc",
					    "127.0.0.1"), n);
	assert_int_equal(http_request_build(out, n, "/tor/status-vote/current/consensus-microdesc",
					    "127.0.0.1"), 0);
	assert_int_equal(http_request_build(out, sizeof(out), "tor/keys/all", "h"), 0);
	assert_int_equal(http_request_build(out, sizeof(out), "/a b", "h"), 0);
	assert_int_equal(http_request_build(out, sizeof(out), "/a\r\nX: y", "h"), 0);
	assert_int_equal(http_request_build(out, sizeof(out), "/a", "h\r\n"), 0);
	assert_int_equal(http_request_build(out, sizeof(out), "/a", ""), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_parses_a_directory_response_head),
		cmocka_unit_test(test_http_every_proper_prefix_needs_more),
		cmocka_unit_test(test_http_status_without_length_or_encoding),
		cmocka_unit_test(test_http_reports_each_content_encoding),
		cmocka_unit_test(test_http_rejects_malformed_heads),
		cmocka_unit_test(test_http_accepts_repeated_equal_content_length),
		cmocka_unit_test(test_http_rejects_nul_in_head),
		cmocka_unit_test(test_http_head_of_16k_without_end_is_invalid),
		cmocka_unit_test(test_http_request_builder_writes_begin_dir_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
