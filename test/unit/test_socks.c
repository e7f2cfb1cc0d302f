/* SOCKS4/4a/5 codec: handshakes, every prefix, the invalid cases and their
 * reply codes, reply encoders and address helpers. The expected bytes are
 * written out by hand from RFC 1928, RFC 1929 and socks-extensions.txt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/compiler.h"
#include "proto/socks.h"

static const uint8_t GREET_NOAUTH[] = { 5, 1, 0 };
static const uint8_t GREET_BOTH[] = { 5, 2, 0, 2 };
static const uint8_t AUTH_BOB[] = { 1, 3, 'b', 'o', 'b', 3, 'p', 'w', 'd' };
static const uint8_t REQ_HOST[] = { 5, 1, 0, 3, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
				    '.', 'c', 'o', 'm', 0x01, 0xbb };
static const uint8_t REQ_IPV4[] = { 5, 1, 0, 1, 192, 0, 2, 7, 0, 80 };
static const uint8_t REQ_IPV6[] = { 5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
				    0, 0, 0, 0, 0, 0, 0, 1, 0x1f, 0x90 };
static const uint8_t REQ_RESOLVE[] = { 5, 0xF0, 0, 3, 7, 'a', '.', 'o', 'n', 'i', 'o', 'n', 0, 0 };
static const uint8_t REQ_PTR[] = { 5, 0xF1, 0, 1, 10, 0, 0, 9, 0, 0 };
static const uint8_t S4_CONNECT[] = { 4, 1, 0, 80, 10, 1, 2, 3, 'u', 's', 'r', 0 };
static const uint8_t S4A_CONNECT[] = { 4, 1, 0x01, 0xbb, 0, 0, 0, 1, 0,
				       'e', 'x', '.', 'o', 'r', 'g', 0 };

/* Run one step and check its result, event and consumed count. */
static void step_expect(struct socks_parser *p, const uint8_t *in, size_t len,
			enum parse_result want, enum socks_event ev, size_t consumed,
			struct socks_step *out)
{
	assert_int_equal(socks_parse(p, in, len, out), want);
	assert_int_equal(out->event, ev);
	assert_int_equal(out->consumed, consumed);
}

static void reply_expect(const struct socks_step *s, const uint8_t *want, size_t n)
{
	assert_int_equal(s->reply_len, n);
	assert_memory_equal(s->reply, want, n);
}

/* Every proper prefix of msg leaves p untouched and returns NEED_MORE. */
static void prefixes_need_more(const struct socks_parser *base, const uint8_t *msg, size_t len)
{
	for (size_t k = 0; k < len; k++) {
		struct socks_parser p = *base;
		struct socks_step s;

		step_expect(&p, msg, k, PARSE_NEED_MORE, SOCKS_EV_NONE, 0, &s);
		assert_int_equal(s.reply_len, 0);
		assert_memory_equal(&p, base, sizeof(p));
	}
}

/* Put p in the REQUEST state through a no-auth greeting. */
static void start_noauth(struct socks_parser *p)
{
	struct socks_step s;

	socks_parser_init(p);
	step_expect(p, GREET_NOAUTH, sizeof(GREET_NOAUTH), PARSE_OK, SOCKS_EV_REPLY, 3, &s);
}

static void expect_request5_fails(const uint8_t *req, size_t len, uint8_t rep)
{
	const uint8_t want[10] = { 5, rep, 0, 1, 0, 0, 0, 0, 0, 0 };
	struct socks_parser p;
	struct socks_step s;

	start_noauth(&p);
	step_expect(&p, req, len, PARSE_INVALID, SOCKS_EV_ERROR, 0, &s);
	reply_expect(&s, want, sizeof(want));
	assert_non_null(s.reason);
}

static void expect_socks4_rejected(const uint8_t *req, size_t len)
{
	const uint8_t want[8] = { 0, 0x5B, 0, 0, 0, 0, 0, 0 };
	struct socks_parser p;
	struct socks_step s;

	socks_parser_init(&p);
	step_expect(&p, req, len, PARSE_INVALID, SOCKS_EV_ERROR, 0, &s);
	reply_expect(&s, want, sizeof(want));
}

static void test_socks5_noauth_greeting_selects_method_0(void **state)
{
	const uint8_t want[] = { 5, 0 };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, GREET_NOAUTH, sizeof(GREET_NOAUTH), PARSE_OK, SOCKS_EV_REPLY, 3, &s);
	reply_expect(&s, want, 2);
	assert_int_equal(p.req.auth, SOCKS_AUTH_NONE);
}

static void test_socks5_prefers_userpass_when_offered(void **state)
{
	const uint8_t want[] = { 5, 2 };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, GREET_BOTH, sizeof(GREET_BOTH), PARSE_OK, SOCKS_EV_REPLY, 4, &s);
	reply_expect(&s, want, 2);
}

static void test_socks5_rejects_gssapi_only(void **state)
{
	const uint8_t greet[] = { 5, 1, 1 };
	const uint8_t want[] = { 5, 0xFF };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, greet, sizeof(greet), PARSE_INVALID, SOCKS_EV_ERROR, 0, &s);
	reply_expect(&s, want, 2);
}

static void test_socks5_rejects_empty_method_list(void **state)
{
	const uint8_t greet[] = { 5, 0 };
	const uint8_t want[] = { 5, 0xFF };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, greet, sizeof(greet), PARSE_INVALID, SOCKS_EV_ERROR, 0, &s);
	reply_expect(&s, want, 2);
}

static void test_socks5_userpass_records_credentials_for_isolation(void **state)
{
	const uint8_t want[] = { 1, 0 };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, GREET_BOTH, sizeof(GREET_BOTH), PARSE_OK, SOCKS_EV_REPLY, 4, &s);
	step_expect(&p, AUTH_BOB, sizeof(AUTH_BOB), PARSE_OK, SOCKS_EV_REPLY, sizeof(AUTH_BOB), &s);
	reply_expect(&s, want, 2);
	step_expect(&p, REQ_HOST, sizeof(REQ_HOST), PARSE_OK, SOCKS_EV_REQUEST, sizeof(REQ_HOST), &s);
	assert_int_equal(p.req.auth, SOCKS_AUTH_USERPASS);
	assert_int_equal(p.req.username_len, 3);
	assert_memory_equal(p.req.username, "bob", 3);
	assert_int_equal(p.req.password_len, 3);
	assert_memory_equal(p.req.password, "pwd", 3);
}

static void test_socks5_accepts_empty_username_and_password(void **state)
{
	const uint8_t auth[] = { 1, 0, 0 };
	const uint8_t want[] = { 1, 0 };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, GREET_BOTH, sizeof(GREET_BOTH), PARSE_OK, SOCKS_EV_REPLY, 4, &s);
	step_expect(&p, auth, sizeof(auth), PARSE_OK, SOCKS_EV_REPLY, 3, &s);
	reply_expect(&s, want, 2);
	assert_int_equal(p.req.auth, SOCKS_AUTH_USERPASS);
	assert_int_equal(p.req.username_len, 0);
	assert_int_equal(p.req.password_len, 0);
}

static void test_socks5_bad_auth_version_fails_with_status_1(void **state)
{
	const uint8_t auth[] = { 5, 3, 'b', 'o', 'b', 0 };
	const uint8_t want[] = { 1, 1 };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, GREET_BOTH, sizeof(GREET_BOTH), PARSE_OK, SOCKS_EV_REPLY, 4, &s);
	step_expect(&p, auth, sizeof(auth), PARSE_INVALID, SOCKS_EV_ERROR, 0, &s);
	reply_expect(&s, want, 2);
}

static void test_socks5_accepts_auth_message_after_noauth_selection(void **state)
{
	const uint8_t want[] = { 1, 0 };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	start_noauth(&p);
	step_expect(&p, AUTH_BOB, sizeof(AUTH_BOB), PARSE_OK, SOCKS_EV_REPLY, sizeof(AUTH_BOB), &s);
	reply_expect(&s, want, 2);
	step_expect(&p, REQ_IPV4, sizeof(REQ_IPV4), PARSE_OK, SOCKS_EV_REQUEST, sizeof(REQ_IPV4), &s);
	assert_int_equal(p.req.auth, SOCKS_AUTH_USERPASS);
	assert_memory_equal(p.req.username, "bob", 3);
}

static void test_socks5_connect_to_hostname(void **state)
{
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	start_noauth(&p);
	step_expect(&p, REQ_HOST, sizeof(REQ_HOST), PARSE_OK, SOCKS_EV_REQUEST, sizeof(REQ_HOST), &s);
	assert_int_equal(s.reply_len, 0);
	assert_int_equal(p.req.version, 5);
	assert_int_equal(p.req.command, SOCKS_CMD_CONNECT);
	assert_int_equal(p.req.dest.type, SOCKS_ADDR_HOSTNAME);
	assert_int_equal(p.req.dest.host_len, 11);
	assert_string_equal(p.req.dest.host, "example.com");
	assert_int_equal(p.req.port, 443);
}

static void test_socks5_connect_to_ipv4_and_ipv6(void **state)
{
	const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	const uint8_t v4[4] = { 192, 0, 2, 7 };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	start_noauth(&p);
	step_expect(&p, REQ_IPV4, sizeof(REQ_IPV4), PARSE_OK, SOCKS_EV_REQUEST, sizeof(REQ_IPV4), &s);
	assert_int_equal(p.req.dest.type, SOCKS_ADDR_IPV4);
	assert_memory_equal(p.req.dest.ip, v4, 4);
	assert_int_equal(p.req.port, 80);
	start_noauth(&p);
	step_expect(&p, REQ_IPV6, sizeof(REQ_IPV6), PARSE_OK, SOCKS_EV_REQUEST, sizeof(REQ_IPV6), &s);
	assert_int_equal(p.req.dest.type, SOCKS_ADDR_IPV6);
	assert_memory_equal(p.req.dest.ip, v6, 16);
	assert_int_equal(p.req.port, 8080);
}

static void test_socks5_pipelined_greeting_auth_request_leaves_early_data(void **state)
{
	uint8_t buf[64];
	size_t n = 0, off = 0;
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	memcpy(buf + n, GREET_BOTH, sizeof(GREET_BOTH)), n += sizeof(GREET_BOTH);
	memcpy(buf + n, AUTH_BOB, sizeof(AUTH_BOB)), n += sizeof(AUTH_BOB);
	memcpy(buf + n, REQ_HOST, sizeof(REQ_HOST)), n += sizeof(REQ_HOST);
	memcpy(buf + n, "GET /", 5), n += 5;
	socks_parser_init(&p);
	step_expect(&p, buf, n, PARSE_OK, SOCKS_EV_REPLY, sizeof(GREET_BOTH), &s);
	off += s.consumed;
	step_expect(&p, buf + off, n - off, PARSE_OK, SOCKS_EV_REPLY, sizeof(AUTH_BOB), &s);
	off += s.consumed;
	step_expect(&p, buf + off, n - off, PARSE_OK, SOCKS_EV_REQUEST, sizeof(REQ_HOST), &s);
	off += s.consumed;
	assert_int_equal(n - off, 5);
	assert_string_equal(p.req.dest.host, "example.com");
}

static void test_socks5_every_proper_prefix_needs_more(void **state)
{
	const uint8_t *reqs[] = { REQ_HOST, REQ_IPV4, REQ_IPV6, REQ_RESOLVE, REQ_PTR, AUTH_BOB };
	const size_t lens[] = { sizeof(REQ_HOST), sizeof(REQ_IPV4), sizeof(REQ_IPV6),
				sizeof(REQ_RESOLVE), sizeof(REQ_PTR), sizeof(AUTH_BOB) };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	prefixes_need_more(&p, GREET_NOAUTH, sizeof(GREET_NOAUTH));
	prefixes_need_more(&p, GREET_BOTH, sizeof(GREET_BOTH));
	step_expect(&p, GREET_BOTH, sizeof(GREET_BOTH), PARSE_OK, SOCKS_EV_REPLY, 4, &s);
	prefixes_need_more(&p, AUTH_BOB, sizeof(AUTH_BOB));
	start_noauth(&p);
	for (size_t i = 0; i < ARRAY_LEN(reqs); i++)
		prefixes_need_more(&p, reqs[i], lens[i]);
}

static void test_socks5_bind_and_udp_get_command_not_supported(void **state)
{
	const uint8_t bind[] = { 5, 2, 0, 1, 1, 2, 3, 4, 0, 80 };
	const uint8_t udp[] = { 5, 3, 0, 1, 1, 2, 3, 4, 0, 80 };
	const uint8_t unknown[] = { 5, 0x09 };

	(void)state;
	expect_request5_fails(bind, sizeof(bind), 0x07);
	expect_request5_fails(udp, sizeof(udp), 0x07);
	expect_request5_fails(unknown, sizeof(unknown), 0x07);
}

static void test_socks5_unknown_address_type_gets_0x08(void **state)
{
	const uint8_t req[] = { 5, 1, 0, 2, 1, 2, 3, 4, 0, 80 };

	(void)state;
	expect_request5_fails(req, sizeof(req), 0x08);
}

static void test_socks5_bad_hostnames_get_general_failure(void **state)
{
	const uint8_t empty[] = { 5, 1, 0, 3, 0, 0, 80 };
	const uint8_t nul[] = { 5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80 };
	const uint8_t space[] = { 5, 1, 0, 3, 3, 'a', ' ', 'b', 0, 80 };
	const uint8_t dash[] = { 5, 1, 0, 3, 3, '-', 'a', 'b', 0, 80 };

	(void)state;
	expect_request5_fails(empty, sizeof(empty), 0x01);
	expect_request5_fails(nul, sizeof(nul), 0x01);
	expect_request5_fails(space, sizeof(space), 0x01);
	expect_request5_fails(dash, sizeof(dash), 0x01);
}

static void test_socks5_wrong_version_or_reserved_byte_gets_general_failure(void **state)
{
	const uint8_t ver[] = { 4, 1, 0, 1, 1, 2, 3, 4, 0, 80 };
	const uint8_t rsv[] = { 5, 1, 7, 1, 1, 2, 3, 4, 0, 80 };

	(void)state;
	expect_request5_fails(ver, sizeof(ver), 0x01);
	expect_request5_fails(rsv, sizeof(rsv), 0x01);
}

static void test_socks5_hostname_of_255_bytes_is_accepted(void **state)
{
	uint8_t req[4 + 1 + 255 + 2];
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	memcpy(req, "\x05\x01\x00\x03", 4);
	req[4] = 255;
	memset(req + 5, 'a', 255);
	req[5 + 128] = '.';
	req[5 + 255] = 0;
	req[5 + 256] = 22;
	start_noauth(&p);
	prefixes_need_more(&p, req, sizeof(req));
	step_expect(&p, req, sizeof(req), PARSE_OK, SOCKS_EV_REQUEST, sizeof(req), &s);
	assert_int_equal(p.req.dest.host_len, 255);
	assert_int_equal(strlen(p.req.dest.host), 255);
	assert_int_equal(p.req.port, 22);
}

static void test_socks5_resolve_and_resolve_ptr(void **state)
{
	const uint8_t ptr_text[] = { 5, 0xF1, 0, 3, 8, '1', '0', '.', '0', '.', '0', '.', '9', 0, 0 };
	const uint8_t ptr_name[] = { 5, 0xF1, 0, 3, 5, 'a', '.', 'c', 'o', 'm', 0, 0 };
	const uint8_t ip[4] = { 10, 0, 0, 9 };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	start_noauth(&p);
	step_expect(&p, REQ_RESOLVE, sizeof(REQ_RESOLVE), PARSE_OK, SOCKS_EV_REQUEST,
		    sizeof(REQ_RESOLVE), &s);
	assert_int_equal(p.req.command, SOCKS_CMD_RESOLVE);
	assert_string_equal(p.req.dest.host, "a.onion");
	start_noauth(&p);
	step_expect(&p, REQ_PTR, sizeof(REQ_PTR), PARSE_OK, SOCKS_EV_REQUEST, sizeof(REQ_PTR), &s);
	assert_int_equal(p.req.command, SOCKS_CMD_RESOLVE_PTR);
	assert_memory_equal(p.req.dest.ip, ip, 4);
	start_noauth(&p);
	step_expect(&p, ptr_text, sizeof(ptr_text), PARSE_OK, SOCKS_EV_REQUEST, sizeof(ptr_text), &s);
	assert_int_equal(p.req.dest.type, SOCKS_ADDR_IPV4);
	assert_memory_equal(p.req.dest.ip, ip, 4);
	expect_request5_fails(ptr_name, sizeof(ptr_name), 0x08);
}

static void test_socks4_connect_exposes_user_id(void **state)
{
	const uint8_t ip[4] = { 10, 1, 2, 3 };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	prefixes_need_more(&p, S4_CONNECT, sizeof(S4_CONNECT));
	step_expect(&p, S4_CONNECT, sizeof(S4_CONNECT), PARSE_OK, SOCKS_EV_REQUEST,
		    sizeof(S4_CONNECT), &s);
	assert_int_equal(p.req.version, 4);
	assert_false(p.req.socks4a);
	assert_int_equal(p.req.dest.type, SOCKS_ADDR_IPV4);
	assert_memory_equal(p.req.dest.ip, ip, 4);
	assert_int_equal(p.req.port, 80);
	assert_int_equal(p.req.auth, SOCKS_AUTH_SOCKS4_USER);
	assert_int_equal(p.req.username_len, 3);
	assert_memory_equal(p.req.username, "usr", 3);
}

static void test_socks4a_carries_hostname(void **state)
{
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	prefixes_need_more(&p, S4A_CONNECT, sizeof(S4A_CONNECT));
	step_expect(&p, S4A_CONNECT, sizeof(S4A_CONNECT), PARSE_OK, SOCKS_EV_REQUEST,
		    sizeof(S4A_CONNECT), &s);
	assert_true(p.req.socks4a);
	assert_int_equal(p.req.auth, SOCKS_AUTH_NONE);
	assert_int_equal(p.req.dest.type, SOCKS_ADDR_HOSTNAME);
	assert_string_equal(p.req.dest.host, "ex.org");
	assert_int_equal(p.req.port, 443);
}

/* Build a SOCKS4a request with a user id of ulen 'u's and a hostname of
 * hlen 'h's into buf; return its length. */
static size_t make_socks4a(uint8_t *buf, size_t ulen, size_t hlen)
{
	size_t n = 0;

	memcpy(buf, "\x04\x01\x00\x50\x00\x00\x00\x07", 8), n = 8;
	memset(buf + n, 'u', ulen), n += ulen;
	buf[n++] = 0;
	memset(buf + n, 'h', hlen), n += hlen;
	buf[n++] = 0;
	return n;
}

static void test_socks4a_hostname_limit_is_255(void **state)
{
	uint8_t buf[600];
	struct socks_parser p;
	struct socks_step s;
	size_t n = make_socks4a(buf, 0, 255);

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, buf, n, PARSE_OK, SOCKS_EV_REQUEST, n, &s);
	assert_int_equal(p.req.dest.host_len, 255);
	n = make_socks4a(buf, 0, 256);
	expect_socks4_rejected(buf, n);
	/* Too long is known before the NUL arrives: no waiting forever. */
	expect_socks4_rejected(buf, 8 + 1 + 256);
	n = make_socks4a(buf, 256, 3);
	expect_socks4_rejected(buf, n);
	n = make_socks4a(buf, 0, 0);
	expect_socks4_rejected(buf, n);
}

static void test_socks4_resolve_is_allowed_and_bind_is_rejected(void **state)
{
	const uint8_t resolve[] = { 4, 0xF0, 0, 0, 0, 0, 0, 1, 0, 'a', '.', 'b', 0 };
	const uint8_t bind[] = { 4, 2, 0, 80, 1, 2, 3, 4, 0 };
	const uint8_t zero_ip[] = { 4, 1, 0, 80, 0, 0, 0, 0, 0 };
	const uint8_t zero_port[] = { 4, 1, 0, 0, 1, 2, 3, 4, 0 };
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, resolve, sizeof(resolve), PARSE_OK, SOCKS_EV_REQUEST, sizeof(resolve), &s);
	assert_int_equal(p.req.command, SOCKS_CMD_RESOLVE);
	assert_string_equal(p.req.dest.host, "a.b");
	expect_socks4_rejected(bind, sizeof(bind));
	expect_socks4_rejected(zero_ip, sizeof(zero_ip));
	expect_socks4_rejected(zero_port, sizeof(zero_port));
}

static void test_socks_garbage_first_byte_closes_without_reply(void **state)
{
	const uint8_t garbage[] = { 0x17, 0x03, 0x03 };
	const uint8_t http[] = "GET / HTTP/1.1\r\n";
	struct socks_parser p;
	struct socks_step s;
	size_t len;

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, garbage, sizeof(garbage), PARSE_INVALID, SOCKS_EV_ERROR, 0, &s);
	assert_int_equal(s.reply_len, 0);
	assert_false(s.looks_like_http);
	socks_parser_init(&p);
	step_expect(&p, http, sizeof(http) - 1, PARSE_INVALID, SOCKS_EV_ERROR, 0, &s);
	assert_true(s.looks_like_http);
	assert_memory_equal(socks_http_misuse_reply(&len), "HTTP/1.0 501 ", 13);
	assert_true(len > 13);
}

static void test_socks_parse_after_request_is_invalid(void **state)
{
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	start_noauth(&p);
	step_expect(&p, REQ_IPV4, sizeof(REQ_IPV4), PARSE_OK, SOCKS_EV_REQUEST, sizeof(REQ_IPV4), &s);
	step_expect(&p, REQ_IPV4, sizeof(REQ_IPV4), PARSE_INVALID, SOCKS_EV_ERROR, 0, &s);
}

static void test_socks_clear_wipes_credentials(void **state)
{
	static const uint8_t zero[SOCKS_CRED_MAX];
	struct socks_parser p;
	struct socks_step s;

	(void)state;
	socks_parser_init(&p);
	step_expect(&p, GREET_BOTH, sizeof(GREET_BOTH), PARSE_OK, SOCKS_EV_REPLY, 4, &s);
	step_expect(&p, AUTH_BOB, sizeof(AUTH_BOB), PARSE_OK, SOCKS_EV_REPLY, sizeof(AUTH_BOB), &s);
	socks_parser_clear(&p);
	assert_memory_equal(p.req.username, zero, sizeof(zero));
	assert_memory_equal(p.req.password, zero, sizeof(zero));
	assert_int_equal(p.state, SOCKS_ST_START);
}

static void test_socks5_reply_encodes_each_address_type(void **state)
{
	const uint8_t want4[] = { 5, 0, 0, 1, 127, 0, 0, 1, 0x23, 0x28 };
	const uint8_t want_none[] = { 5, 0xF7, 0, 1, 0, 0, 0, 0, 0, 0 };
	const uint8_t want_host[] = { 5, 0, 0, 3, 3, 'a', '.', 'b', 0, 0 };
	struct socks_addr a = { .type = SOCKS_ADDR_IPV4, .ip = { 127, 0, 0, 1 } };
	uint8_t out[SOCKS5_REPLY_ENCODED_MAX];

	(void)state;
	assert_int_equal(socks5_reply_encode(out, sizeof(out), SOCKS5_SUCCEEDED, &a, 9000), 10);
	assert_memory_equal(out, want4, 10);
	assert_int_equal(socks5_reply_encode(out, sizeof(out), SOCKS5_HS_INTRO_TIMED_OUT, NULL, 0), 10);
	assert_memory_equal(out, want_none, 10);
	a.type = SOCKS_ADDR_IPV6;
	a.ip[15] = 0xee;
	assert_int_equal(socks5_reply_encode(out, sizeof(out), SOCKS5_SUCCEEDED, &a, 1), 22);
	assert_int_equal(out[3], 4);
	assert_int_equal(out[19], 0xee);
	a.type = SOCKS_ADDR_HOSTNAME;
	memcpy(a.host, "a.b", 4);
	a.host_len = 3;
	assert_int_equal(socks5_reply_encode(out, sizeof(out), SOCKS5_SUCCEEDED, &a, 0), 10);
	assert_memory_equal(out, want_host, 10);
	assert_int_equal(socks5_reply_encode(out, 9, SOCKS5_SUCCEEDED, &a, 0), 0);
	a.host_len = 0;
	assert_int_equal(socks5_reply_encode(out, sizeof(out), SOCKS5_SUCCEEDED, &a, 0), 0);
}

static void test_socks4_reply_encodes_granted_and_rejected(void **state)
{
	const uint8_t ip[4] = { 10, 0, 0, 1 };
	const uint8_t want[] = { 0, 0x5A, 0x01, 0xbb, 10, 0, 0, 1 };
	uint8_t out[SOCKS4_REPLY_LEN];

	(void)state;
	assert_int_equal(socks4_reply_encode(out, SOCKS4_GRANTED, 443, ip), 8);
	assert_memory_equal(out, want, 8);
	socks4_reply_encode(out, SOCKS4_REJECTED, 0, ip);
	assert_int_equal(out[1], 0x5B);
}

static void test_ipv4_parse_is_strict(void **state)
{
	static const char *bad[] = { "", "1.2.3", "1.2.3.4.", "1.2.3.256", "01.2.3.4",
				     "1.2.3.4 ", " 1.2.3.4", "1..3.4", "a.b.c.d", "1.2.3.1000" };
	uint8_t ip[4];

	(void)state;
	assert_true(socks_ipv4_parse("192.0.2.255", 11, ip));
	assert_int_equal(ip[0], 192);
	assert_int_equal(ip[3], 255);
	assert_true(socks_ipv4_parse("0.0.0.0", 7, ip));
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_false(socks_ipv4_parse(bad[i], strlen(bad[i]), ip));
}

static void test_ipv6_parse_and_format_round_trip(void **state)
{
	const uint8_t want[16] = { 0x20, 0x01, 0x0d, 0xb8, [14] = 0x12, [15] = 0x34 };
	struct socks_addr a = { .type = SOCKS_ADDR_IPV6 };
	char text[SOCKS_ADDR_TEXT_MAX];

	(void)state;
	assert_true(socks_ipv6_parse("2001:db8::1234", 14, a.ip));
	assert_memory_equal(a.ip, want, 16);
	assert_true(socks_ipv6_parse("[2001:db8::1234]", 16, a.ip));
	assert_int_equal(socks_addr_format(&a, text, sizeof(text)), 14);
	assert_string_equal(text, "2001:db8::1234");
	assert_false(socks_ipv6_parse("2001:db8::12345", 15, a.ip));
	assert_false(socks_ipv6_parse("1:2:3:4:5:6:7:8:9", 17, a.ip));
	assert_false(socks_ipv6_parse("[::1", 4, a.ip));
	assert_false(socks_ipv6_parse("::1\0", 4, a.ip));
	assert_int_equal(socks_addr_format(&a, text, 14), 0);
	a.type = SOCKS_ADDR_IPV4;
	memcpy(a.ip, "\x7f\x00\x00\x01", 4);
	assert_int_equal(socks_addr_format(&a, text, sizeof(text)), 9);
	assert_string_equal(text, "127.0.0.1");
}

static void test_host_validity_follows_tor(void **state)
{
	static const char *good[] = { "example.com", "example.com.", "a_b.c-d", "1.2.3.4",
				      "::1", "[2001:db8::1]", "x", "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvw.onion" };
	static const char *bad[] = { "", ".", "a..b", ".a", "-a.b", "_a.b", "a.-b", "a b",
				     "a/b", "[foo]", "a.b..", "\xc3\xa9t\xc3\xa9" };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		assert_true(socks_host_is_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_false(socks_host_is_valid(bad[i], strlen(bad[i])));
	assert_false(socks_host_is_valid("a\0b", 3));
}

static void test_host_onion_and_ipv4_literal_detection(void **state)
{
	char host[] = "WWW.Example.ONION";
	uint8_t ip[4];

	(void)state;
	assert_true(socks_host_is_onion(host, strlen(host)));
	assert_true(socks_host_is_onion("x.onion.", 8));
	assert_false(socks_host_is_onion(".onion", 6));
	assert_false(socks_host_is_onion("a..onion", 8));
	assert_false(socks_host_is_onion("onion", 5));
	assert_false(socks_host_is_onion("xonion", 6));
	assert_false(socks_host_is_onion("x.onion.com", 11));
	socks_host_lower(host, strlen(host));
	assert_string_equal(host, "www.example.onion");
	assert_true(socks_host_is_ipv4_literal("10.0.0.1", 8, ip));
	assert_int_equal(ip[3], 1);
	assert_true(socks_host_is_ipv4_literal("10.0.0.1", 8, NULL));
	assert_false(socks_host_is_ipv4_literal("10.0.0.1.example", 16, ip));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socks5_noauth_greeting_selects_method_0),
		cmocka_unit_test(test_socks5_prefers_userpass_when_offered),
		cmocka_unit_test(test_socks5_rejects_gssapi_only),
		cmocka_unit_test(test_socks5_rejects_empty_method_list),
		cmocka_unit_test(test_socks5_userpass_records_credentials_for_isolation),
		cmocka_unit_test(test_socks5_accepts_empty_username_and_password),
		cmocka_unit_test(test_socks5_bad_auth_version_fails_with_status_1),
		cmocka_unit_test(test_socks5_accepts_auth_message_after_noauth_selection),
		cmocka_unit_test(test_socks5_connect_to_hostname),
		cmocka_unit_test(test_socks5_connect_to_ipv4_and_ipv6),
		cmocka_unit_test(test_socks5_pipelined_greeting_auth_request_leaves_early_data),
		cmocka_unit_test(test_socks5_every_proper_prefix_needs_more),
		cmocka_unit_test(test_socks5_bind_and_udp_get_command_not_supported),
		cmocka_unit_test(test_socks5_unknown_address_type_gets_0x08),
		cmocka_unit_test(test_socks5_bad_hostnames_get_general_failure),
		cmocka_unit_test(test_socks5_wrong_version_or_reserved_byte_gets_general_failure),
		cmocka_unit_test(test_socks5_hostname_of_255_bytes_is_accepted),
		cmocka_unit_test(test_socks5_resolve_and_resolve_ptr),
		cmocka_unit_test(test_socks4_connect_exposes_user_id),
		cmocka_unit_test(test_socks4a_carries_hostname),
		cmocka_unit_test(test_socks4a_hostname_limit_is_255),
		cmocka_unit_test(test_socks4_resolve_is_allowed_and_bind_is_rejected),
		cmocka_unit_test(test_socks_garbage_first_byte_closes_without_reply),
		cmocka_unit_test(test_socks_parse_after_request_is_invalid),
		cmocka_unit_test(test_socks_clear_wipes_credentials),
		cmocka_unit_test(test_socks5_reply_encodes_each_address_type),
		cmocka_unit_test(test_socks4_reply_encodes_granted_and_rejected),
		cmocka_unit_test(test_ipv4_parse_is_strict),
		cmocka_unit_test(test_ipv6_parse_and_format_round_trip),
		cmocka_unit_test(test_host_validity_follows_tor),
		cmocka_unit_test(test_host_onion_and_ipv4_literal_detection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
