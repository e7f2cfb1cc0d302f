/* The load generator's (perf/loadgen) checkable parts: the /bytes pattern
 * checker, the nearest-rank percentiles, the SOCKS5 client and HTTP head
 * codec, and the /proc parsers. The pattern vectors and the SHA-256 below
 * come from an independent computation: test/testnet/bytepattern.py (the
 * code httpd serves with), run by /usr/bin/python3:
 *   byte_at(o) for each offset, and
 *   sha256(b"".join(bytepattern.chunks(300000, 65000))). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/crypto.h"
#include "perf/loadgen_pattern.h"
#include "perf/loadgen_proc.h"
#include "perf/loadgen_stats.h"
#include "perf/loadgen_wire.h"

/* ---- pattern ---------------------------------------------------------- */

static const struct { uint64_t off; uint8_t b; } pattern_vectors[] = {
	{ 0, 0x00 }, { 1, 0x1f }, { 255, 0xe1 }, { 256, 0x01 }, { 257, 0x20 },
	{ 65535, 0xe0 }, { 65536, 0x01 }, { 65537, 0x20 }, { 16777215, 0xdf },
	{ 16777216, 0x01 }, { 16777217, 0x20 }, { 4294967303ull, 0xd9 },
	{ 209715199, 0x6b },
};

static void test_pattern_matches_python_reference_at_sample_offsets(void **state)
{
	size_t i;

	(void)state;
	pattern_init();
	for (i = 0; i < sizeof(pattern_vectors) / sizeof(pattern_vectors[0]); i++) {
		uint8_t b = pattern_vectors[i].b;

		assert_int_equal(pattern_byte_at(pattern_vectors[i].off), b);
		assert_int_equal(pattern_check(pattern_vectors[i].off, &b, 1), 1);
		b ^= 0x40;
		assert_int_equal(pattern_check(pattern_vectors[i].off, &b, 1), 0);
	}
}

static void test_pattern_span_digest_matches_python_reference(void **state)
{
	static const char want_hex[] =
		"829f13067981d78dd63dce3d24c99a56f3ca3a35d17e6d5cd5b3d194c1f07be9";
	uint8_t *buf = malloc(300000), got[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	size_t i;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i < 300000; i++)
		buf[i] = pattern_byte_at(65000 + i);
	crypto_sha256(buf, 300000, got);
	for (i = 0; i < SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", got[i]);
	assert_string_equal(hex, want_hex);
	pattern_init();
	assert_int_equal(pattern_check(65000, buf, 300000), 300000);
	free(buf);
}

/* Build n pattern bytes at offset off with the reference formula. */
static uint8_t *pattern_make(uint64_t off, size_t n)
{
	uint8_t *p = malloc(n);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = pattern_byte_at(off + i);
	return p;
}

static void test_pattern_check_accepts_any_alignment_across_64k_blocks(void **state)
{
	static const uint64_t offs[] = { 0, 3, 65531, 131072 - 1, 16777216 - 9, (1ull << 32) - 5 };
	size_t i, len;

	(void)state;
	pattern_init();
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (len = 0; len < 200; len += 7) {
			uint8_t *p = pattern_make(offs[i], len + 70000);

			assert_int_equal(pattern_check(offs[i], p, len + 70000), len + 70000);
			free(p);
		}
	}
}

static void test_pattern_check_reports_first_bad_byte(void **state)
{
	const size_t n = 140000;
	uint8_t *p = pattern_make(65530, n);
	size_t bad;

	(void)state;
	pattern_init();
	for (bad = 0; bad < n; bad += 997) {
		p[bad] ^= 1;
		assert_int_equal(pattern_check(65530, p, n), bad);
		p[bad] ^= 1;
	}
	/* The right bytes at the wrong offset (a lost 256-byte row) fail. */
	assert_true(pattern_check(65530 + 256, p, n) < n);
	/* So does one 64 KiB block repeated: the blocks differ by a constant. */
	assert_true(pattern_check(65530 + 65536, p, n) < n);
	free(p);
}

/* ---- percentiles ------------------------------------------------------ */

static void test_percentiles_are_nearest_rank(void **state)
{
	struct samples s = { 0 };
	uint64_t v;

	(void)state;
	for (v = 10; v >= 1; v--)
		samples_add(&s, v * 1000);
	assert_int_equal(samples_percentile(&s, 50), 5000);
	assert_int_equal(samples_percentile(&s, 90), 9000);
	assert_int_equal(samples_percentile(&s, 99), 10000);
	assert_int_equal(samples_percentile(&s, 10), 1000);
	assert_int_equal(samples_percentile(&s, 11), 2000);
	assert_int_equal(samples_max(&s), 10000);
	samples_add(&s, 1);      /* unsorts: the next query sorts again */
	assert_int_equal(samples_percentile(&s, 1), 1);
	samples_free(&s);
	assert_int_equal(s.n, 0);
}

static void test_percentiles_of_nothing_are_zero_and_of_one_are_it(void **state)
{
	struct samples s = { 0 };
	int i;

	(void)state;
	assert_int_equal(samples_percentile(&s, 50), 0);
	assert_int_equal(samples_max(&s), 0);
	samples_add(&s, 42);
	assert_int_equal(samples_percentile(&s, 50), 42);
	assert_int_equal(samples_percentile(&s, 99), 42);
	samples_free(&s);
	for (i = 0; i < 5000; i++)   /* grows past the first allocation */
		samples_add(&s, (uint64_t)(i * 7919 % 5000));
	assert_int_equal(samples_percentile(&s, 50), 2499);
	assert_int_equal(samples_max(&s), 4999);
	samples_free(&s);
}

/* ---- SOCKS5 client ---------------------------------------------------- */

static void test_socks_greeting_and_auth_encode_exactly(void **state)
{
	uint8_t out[600];
	const uint8_t auth[] = { 1, 4, 'i', 's', 'o', '3', 1, 'x' };
	char big[300];

	(void)state;
	assert_int_equal(lg_socks_greeting(out, LG_SOCKS_AUTH_USERPASS), 3);
	assert_memory_equal(out, "\x05\x01\x02", 3);
	assert_int_equal(lg_socks_auth(out, sizeof(out), "iso3", "x"), sizeof(auth));
	assert_memory_equal(out, auth, sizeof(auth));
	memset(big, 'a', 256);
	big[256] = '\0';
	assert_int_equal(lg_socks_auth(out, sizeof(out), big, "x"), 0);
	assert_int_equal(lg_socks_auth(out, 5, "iso3", "x"), 0);
}

static void test_socks_connect_encodes_name_and_ipv4(void **state)
{
	uint8_t out[300];
	const uint8_t by_name[] = { 5, 1, 0, 3, 9, '1', '2', '7', '.', '0', '.', '0', '.', '1', 0x1f, 0x90 };
	const uint8_t by_ip[] = { 5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90 };

	(void)state;
	assert_int_equal(lg_socks_connect(out, sizeof(out), "127.0.0.1", 8080, false), sizeof(by_name));
	assert_memory_equal(out, by_name, sizeof(by_name));
	assert_int_equal(lg_socks_connect(out, sizeof(out), "127.0.0.1", 8080, true), sizeof(by_ip));
	assert_memory_equal(out, by_ip, sizeof(by_ip));
	/* A name is never sent as ATYP 1 even when asked. */
	assert_int_equal(lg_socks_connect(out, sizeof(out), "localhost", 80, true), 7 + 9);
	assert_int_equal(out[3], 3);
	assert_int_equal(lg_socks_connect(out, 8, "127.0.0.1", 80, false), 0);
}

static void test_socks_reply_every_prefix_needs_more(void **state)
{
	const uint8_t v4[] = { 5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90 };
	const uint8_t name[] = { 5, 4, 0, 3, 3, 'a', 'b', 'c', 0, 80 };
	uint8_t v6[22] = { 5, 0, 0, 4 };
	const uint8_t *msgs[] = { v4, name, v6 };
	const size_t lens[] = { sizeof(v4), sizeof(name), sizeof(v6) };
	size_t m, i, used;
	uint8_t rep;

	(void)state;
	for (m = 0; m < 3; m++) {
		for (i = 0; i < lens[m]; i++)
			assert_int_equal(lg_socks_reply_parse(msgs[m], i, &rep, &used), PARSE_NEED_MORE);
		assert_int_equal(lg_socks_reply_parse(msgs[m], lens[m], &rep, &used), PARSE_OK);
		assert_int_equal(used, lens[m]);
	}
	assert_int_equal(lg_socks_reply_parse(name, sizeof(name), &rep, &used), PARSE_OK);
	assert_int_equal(rep, 4);
}

static void test_socks_reply_rejects_bad_version_reserved_and_atyp(void **state)
{
	const uint8_t ver4[] = { 4, 0, 0, 1, 127, 0, 0, 1, 0, 80 };
	const uint8_t rsv[] = { 5, 0, 1, 1, 127, 0, 0, 1, 0, 80 };
	const uint8_t atyp[] = { 5, 0, 0, 2, 127, 0, 0, 1, 0, 80 };
	size_t used;
	uint8_t rep;

	(void)state;
	assert_int_equal(lg_socks_reply_parse(ver4, 1, &rep, &used), PARSE_INVALID);
	assert_int_equal(lg_socks_reply_parse(rsv, 3, &rep, &used), PARSE_INVALID);
	assert_int_equal(lg_socks_reply_parse(atyp, sizeof(atyp), &rep, &used), PARSE_INVALID);
}

static void test_socks_method_and_auth_replies_parse(void **state)
{
	const uint8_t method[] = { 5, 2 }, authok[] = { 1, 0 }, authbad[] = { 1, 1 };
	uint8_t v;
	bool ok;
	size_t used;

	(void)state;
	assert_int_equal(lg_socks_method_parse(method, 0, &v, &used), PARSE_NEED_MORE);
	assert_int_equal(lg_socks_method_parse(method, 1, &v, &used), PARSE_NEED_MORE);
	assert_int_equal(lg_socks_method_parse(method, 2, &v, &used), PARSE_OK);
	assert_int_equal(v, 2);
	assert_int_equal(lg_socks_method_parse(authok, 2, &v, &used), PARSE_INVALID);
	assert_int_equal(lg_socks_auth_parse(authok, 1, &ok, &used), PARSE_NEED_MORE);
	assert_int_equal(lg_socks_auth_parse(authok, 2, &ok, &used), PARSE_OK);
	assert_true(ok);
	assert_int_equal(lg_socks_auth_parse(authbad, 2, &ok, &used), PARSE_OK);
	assert_false(ok);
	assert_int_equal(lg_socks_auth_parse(method, 2, &ok, &used), PARSE_INVALID);
}

/* ---- HTTP response head ----------------------------------------------- */

static void test_http_head_every_prefix_needs_more_then_parses(void **state)
{
	static const char head[] = "HTTP/1.0 200 OK\r\nServer: x\r\ncontent-LENGTH:  1048576 \r\n"
				   "Connection: close\r\n\r\nBODY";
	size_t len = strlen(head), i, hl = 0;
	int status = 0;
	int64_t clen = 0;

	(void)state;
	for (i = 0; i < len - 4; i++)
		assert_int_equal(lg_http_head_parse((const uint8_t *)head, i, &status, &clen, &hl),
				 PARSE_NEED_MORE);
	assert_int_equal(lg_http_head_parse((const uint8_t *)head, len, &status, &clen, &hl), PARSE_OK);
	assert_int_equal(status, 200);
	assert_int_equal(clen, 1048576);
	assert_int_equal(hl, len - 4);
}

static void test_http_head_without_length_and_with_error_status(void **state)
{
	static const char head[] = "HTTP/1.1 404 Not Found\r\n\r\n";
	size_t hl;
	int status;
	int64_t clen;

	(void)state;
	assert_int_equal(lg_http_head_parse((const uint8_t *)head, strlen(head), &status, &clen, &hl),
			 PARSE_OK);
	assert_int_equal(status, 404);
	assert_int_equal(clen, -1);
}

static void test_http_head_rejects_malformed_heads(void **state)
{
	static const char *const bad[] = {
		"HTTP/1.0 2x0 OK\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.0 200OK\r\n\r\n",
		"XTTP/1.0 200 OK\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 12a\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length:\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	};
	size_t i, hl;
	int status;
	int64_t clen;
	uint8_t *big;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(lg_http_head_parse((const uint8_t *)bad[i], strlen(bad[i]), &status,
						    &clen, &hl), PARSE_INVALID);
	big = malloc(LG_HTTP_HEAD_MAX + 10);
	assert_non_null(big);
	memcpy(big, "HTTP/1.0 200 OK\r\nX: ", 20);
	memset(big + 20, 'a', LG_HTTP_HEAD_MAX - 10);
	assert_int_equal(lg_http_head_parse(big, LG_HTTP_HEAD_MAX + 10, &status, &clen, &hl),
			 PARSE_INVALID);
	free(big);
}

/* ---- /proc parsers ----------------------------------------------------- */

static void test_proc_stat_counts_fields_after_the_last_paren(void **state)
{
	/* comm "a) b (c" with spaces and parentheses; utime 1234, stime 56. */
	static const char stat[] = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
				   "1234 56 0 0 20 0 3 0 99 1000 200 18446744073709551615";
	uint64_t utime = 0, stime = 0;

	(void)state;
	assert_int_equal(proc_stat_cpu_parse(stat, &utime, &stime), 0);
	assert_int_equal(utime, 1234);
	assert_int_equal(stime, 56);
	assert_int_equal(proc_stat_cpu_parse("4242 (x) S 1 2 3", &utime, &stime), -1);
	assert_int_equal(proc_stat_cpu_parse("no paren at all", &utime, &stime), -1);
}

static void test_proc_status_finds_keys_in_kb(void **state)
{
	static const char status[] = "Name:\ttor\nVmPeak:\t  99 kB\nVmHWM:\t   48560 kB\n"
				     "VmRSS:\t   47000 kB\nThreads:\t3\n";
	uint64_t kb = 0;

	(void)state;
	assert_int_equal(proc_status_kb_parse(status, "VmHWM", &kb), 0);
	assert_int_equal(kb, 48560);
	assert_int_equal(proc_status_kb_parse(status, "VmRSS", &kb), 0);
	assert_int_equal(kb, 47000);
	assert_int_equal(proc_status_kb_parse(status, "Threads", &kb), -1);   /* no " kB" */
	assert_int_equal(proc_status_kb_parse(status, "VmSwap", &kb), -1);
	assert_int_equal(proc_status_kb_parse(status, "Vm", &kb), -1);
}

static void test_proc_readers_see_this_process(void **state)
{
	uint64_t rss = 0, hwm = 0;
	double user = -1, sys = -1;

	(void)state;
	assert_int_equal(proc_cpu_seconds(getpid(), &user, &sys), 0);
	assert_true(user >= 0 && sys >= 0);
	assert_int_equal(proc_rss_kb(getpid(), &rss, &hwm), 0);
	assert_true(rss > 0 && hwm >= rss);
	assert_true(proc_rss_kb(0, &rss, &hwm) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pattern_matches_python_reference_at_sample_offsets),
		cmocka_unit_test(test_pattern_span_digest_matches_python_reference),
		cmocka_unit_test(test_pattern_check_accepts_any_alignment_across_64k_blocks),
		cmocka_unit_test(test_pattern_check_reports_first_bad_byte),
		cmocka_unit_test(test_percentiles_are_nearest_rank),
		cmocka_unit_test(test_percentiles_of_nothing_are_zero_and_of_one_are_it),
		cmocka_unit_test(test_socks_greeting_and_auth_encode_exactly),
		cmocka_unit_test(test_socks_connect_encodes_name_and_ipv4),
		cmocka_unit_test(test_socks_reply_every_prefix_needs_more),
		cmocka_unit_test(test_socks_reply_rejects_bad_version_reserved_and_atyp),
		cmocka_unit_test(test_socks_method_and_auth_replies_parse),
		cmocka_unit_test(test_http_head_every_prefix_needs_more_then_parses),
		cmocka_unit_test(test_http_head_without_length_and_with_error_status),
		cmocka_unit_test(test_http_head_rejects_malformed_heads),
		cmocka_unit_test(test_proc_stat_counts_fields_after_the_last_paren),
		cmocka_unit_test(test_proc_status_finds_keys_in_kb),
		cmocka_unit_test(test_proc_readers_see_this_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
