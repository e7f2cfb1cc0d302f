/* proto/netdoc: the dir-spec.txt 1.2 tokenizer (keywords, arguments,
 * objects, line numbers, refusals) and the shared value parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/netdoc.h"

static const char doc3[] =
	"alpha 1  two\t3 \n"
	"\n"
	"beta\n"
	"-----BEGIN RSA PUBLIC KEY-----\n"
	"Zm9v\n"
	"YmFy\n"
	"-----END RSA PUBLIC KEY-----\n"
	"gamma-x\n";

static void test_netdoc_yields_keywords_arguments_objects_and_line_numbers(void **state)
{
	struct netdoc_reader r;
	struct netdoc_tok t;
	struct netdoc_err err;
	struct netdoc_span a[4];
	uint8_t buf[16];

	(void)state;
	netdoc_reader_init(&r, doc3, strlen(doc3));
	assert_int_equal(netdoc_next(&r, &t, &err), PARSE_OK);
	assert_true(netdoc_span_eq(t.kw, "alpha"));
	assert_int_equal(t.line, 1);
	assert_int_equal(netdoc_args(&t, a, 4), 3);
	assert_true(netdoc_span_eq(a[0], "1") && netdoc_span_eq(a[1], "two") &&
		    netdoc_span_eq(a[2], "3"));
	assert_null(t.obj_type.p);

	assert_int_equal(netdoc_next(&r, &t, &err), PARSE_OK);
	assert_true(netdoc_span_eq(t.kw, "beta"));
	assert_int_equal(t.line, 3);
	assert_true(netdoc_span_eq(t.obj_type, "RSA PUBLIC KEY"));
	assert_int_equal(netdoc_object_decode(&t, "RSA PUBLIC KEY", buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "foobar", 6);
	assert_int_equal(netdoc_object_decode(&t, "SIGNATURE", buf, sizeof(buf)), -1);

	assert_int_equal(netdoc_next(&r, &t, &err), PARSE_OK);
	assert_true(netdoc_span_eq(t.kw, "gamma-x"));
	assert_int_equal(t.line, 8);
	assert_true(netdoc_at_end(&r));
	assert_int_equal(netdoc_next(&r, &t, &err), PARSE_NEED_MORE);
}

/* Run the tokenizer to the end over doc[0..len); return the last result. */
static enum parse_result run_all(const char *doc, size_t len, struct netdoc_err *err)
{
	struct netdoc_reader r;
	struct netdoc_tok t;
	enum parse_result pr;

	netdoc_reader_init(&r, doc, len);
	while ((pr = netdoc_next(&r, &t, err)) == PARSE_OK)
		;
	return pr;
}

static void test_netdoc_every_prefix_is_tokens_then_need_more(void **state)
{
	(void)state;
	for (size_t n = 0; n < sizeof(doc3) - 1; n++) {
		char *copy = malloc(n ? n : 1); /* exact size: ASan catches overreads */
		struct netdoc_err err;
		memcpy(copy, doc3, n);
		assert_int_equal(run_all(copy, n, &err), PARSE_NEED_MORE);
		free(copy);
	}
}

static void expect_invalid(const char *doc, const char *reason, unsigned line)
{
	struct netdoc_err err;

	assert_int_equal(run_all(doc, strlen(doc), &err), PARSE_INVALID);
	assert_string_equal(err.reason, reason);
	assert_int_equal(err.line, line);
}

static void test_netdoc_rejects_mismatched_and_malformed_objects(void **state)
{
	(void)state;
	expect_invalid("a\n-----BEGIN X-----\nZm9v\n-----END Y-----\n",
		       "object END does not match BEGIN", 4);
	expect_invalid("a\nb\n-----BEGIN X----\nZm9v\n-----END X-----\n",
		       "malformed object BEGIN line", 3);
	expect_invalid("a\n-----BEGIN  X-----\n-----END  X-----\n", "malformed object BEGIN line", 2);
	expect_invalid("a\n-----BEGIN X-----\n-----END X-----junk\n",
		       "object END does not match BEGIN", 3);
	expect_invalid("a\n-----END X-----\n", "bad keyword", 2);
}

static void test_netdoc_truncated_object_needs_more_with_its_begin_line(void **state)
{
	const char *doc = "a\nb\n-----BEGIN X-----\nZm9v\n";
	struct netdoc_err err;

	(void)state;
	assert_int_equal(run_all(doc, strlen(doc), &err), PARSE_NEED_MORE);
	assert_string_equal(err.reason, "truncated object");
	assert_int_equal(err.line, 3);
}

static void test_netdoc_rejects_nul_bytes_bad_keywords_and_long_lines(void **state)
{
	static const char nul[] = "ok 1\nbad \0 arg\n";
	struct netdoc_err err;
	char *longline;

	(void)state;
	assert_int_equal(run_all(nul, sizeof(nul) - 1, &err), PARSE_INVALID);
	assert_string_equal(err.reason, "NUL byte");
	assert_int_equal(err.line, 2);
	expect_invalid("ok\n-dash-first\n", "bad keyword", 2);
	expect_invalid("ok\n\nfo*o bar\n", "bad keyword", 3);
	expect_invalid(" leading-space\n", "bad keyword", 1);

	longline = malloc(NETDOC_MAX_LINE + 10);
	memset(longline, 'a', NETDOC_MAX_LINE + 9);
	longline[NETDOC_MAX_LINE + 9] = '\n';
	assert_int_equal(run_all(longline, NETDOC_MAX_LINE + 10, &err), PARSE_INVALID);
	assert_string_equal(err.reason, "line too long");
	free(longline);
}

static struct netdoc_span sp(const char *s)
{
	struct netdoc_span x = { s, strlen(s) };
	return x;
}

static void test_netdoc_times_are_utc_and_checked(void **state)
{
	time_t t;

	(void)state;
	assert_true(netdoc_parse_time(sp("2000-01-01"), sp("00:00:00"), &t));
	assert_int_equal(t, 946684800);
	assert_true(netdoc_parse_time(sp("2024-02-29"), sp("12:00:00"), &t));
	assert_int_equal(t, 1709208000);
	assert_false(netdoc_parse_time(sp("2023-02-29"), sp("12:00:00"), &t));
	assert_false(netdoc_parse_time(sp("2026-13-01"), sp("00:00:00"), &t));
	assert_false(netdoc_parse_time(sp("2026-11-27"), sp("24:00:00"), &t));
	assert_false(netdoc_parse_time(sp("2026-11-2"), sp("10:00:00"), &t));
	assert_false(netdoc_parse_time(sp("2026/11/27"), sp("10:00:00"), &t));
}

static void test_netdoc_integers_and_addresses(void **state)
{
	uint64_t u;
	int32_t i;
	uint32_t ip;
	uint8_t v6[16];
	uint16_t port;

	(void)state;
	assert_true(netdoc_parse_u64(sp("65535"), 65535, &u) && u == 65535);
	assert_false(netdoc_parse_u64(sp("65536"), 65535, &u));
	assert_false(netdoc_parse_u64(sp("+1"), 10, &u));
	assert_false(netdoc_parse_u64(sp(""), 10, &u));
	assert_false(netdoc_parse_u64(sp("99999999999999999999"), UINT64_MAX, &u));
	assert_true(netdoc_parse_i32(sp("-2147483648"), &i) && i == INT32_MIN);
	assert_false(netdoc_parse_i32(sp("2147483648"), &i));
	assert_false(netdoc_parse_i32(sp("-"), &i));
	assert_true(netdoc_parse_ipv4(sp("10.1.2.3"), &ip) && ip == 0x0a010203);
	assert_false(netdoc_parse_ipv4(sp("256.1.2.3"), &ip));
	assert_false(netdoc_parse_ipv4(sp("1.2.3"), &ip));
	assert_false(netdoc_parse_ipv4(sp("01.2.3.4"), &ip));
	assert_false(netdoc_parse_ipv4(sp("1.2.3.4.5"), &ip));
	assert_true(netdoc_parse_ipv6_port(sp("[fd00::1]:9001"), v6, &port));
	assert_int_equal(port, 9001);
	assert_int_equal(v6[0], 0xfd);
	assert_int_equal(v6[15], 1);
	assert_false(netdoc_parse_ipv6_port(sp("[fd00::1]9001"), v6, &port));
	assert_false(netdoc_parse_ipv6_port(sp("fd00::1:9001"), v6, &port));
	assert_false(netdoc_parse_ipv6_port(sp("[fd00::g]:1"), v6, &port));
}

static void test_protover_parses_ranges_and_answers_support_queries(void **state)
{
	struct protover p, need;

	(void)state;
	assert_true(protover_parse(sp("Link=3-5 Relay=2-4,6 FlowCtrl=1-2 HSDir=2 Future=1-9"), &p));
	assert_true(protover_supports(&p, PROTOVER_LINK, 5));
	assert_false(protover_supports(&p, PROTOVER_LINK, 6));
	assert_true(protover_supports(&p, PROTOVER_RELAY, 4));
	assert_false(protover_supports(&p, PROTOVER_RELAY, 5));
	assert_true(protover_supports(&p, PROTOVER_RELAY, 6));
	assert_true(protover_supports(&p, PROTOVER_FLOWCTRL, 2));
	assert_true(protover_supports(&p, PROTOVER_HSDIR, 2));
	assert_false(protover_supports(&p, PROTOVER_CONFLUX, 1));
	assert_true(protover_parse(sp("Link=4 Relay=2"), &need));
	assert_true(protover_covers(&p, &need));
	assert_true(protover_parse(sp("Link=6"), &need));
	assert_false(protover_covers(&p, &need));

	assert_false(protover_parse(sp("Link=5-3"), &p));
	assert_false(protover_parse(sp("Link=64"), &p));
	assert_false(protover_parse(sp("Future=1-99"), &p)); /* tor caps every version at 63 */
	assert_false(protover_parse(sp("Link=1 Link=2"), &p));
	assert_false(protover_parse(sp("Link"), &p));
	assert_false(protover_parse(sp("Link=1,"), &p));
	assert_false(protover_parse(sp("=1"), &p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netdoc_yields_keywords_arguments_objects_and_line_numbers),
		cmocka_unit_test(test_netdoc_every_prefix_is_tokens_then_need_more),
		cmocka_unit_test(test_netdoc_rejects_mismatched_and_malformed_objects),
		cmocka_unit_test(test_netdoc_truncated_object_needs_more_with_its_begin_line),
		cmocka_unit_test(test_netdoc_rejects_nul_bytes_bad_keywords_and_long_lines),
		cmocka_unit_test(test_netdoc_times_are_utc_and_checked),
		cmocka_unit_test(test_netdoc_integers_and_addresses),
		cmocka_unit_test(test_protover_parses_ranges_and_answers_support_queries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
