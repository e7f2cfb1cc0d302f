/* Tests for app/dirauth.c: tor's DirAuthority syntax (every malformed form
 * gets a clear message) and the compiled-in public authority list (no
 * network). The expected values are the public facts written out by hand
 * (tor's auth_dirs.inc), not derived from the parser; moria1_fp/moria1_v3
 * are moria1's keys before 0.4.8, used here as parser input only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "app/dirauth.h"
#include "core/base64.h"

static const uint8_t moria1_fp[20] = {0x96, 0x95, 0xDF, 0xC3, 0x5F, 0xFE, 0xB8, 0x61, 0x32, 0x9B,
				      0x9F, 0x1A, 0xB0, 0x4C, 0x46, 0x39, 0x70, 0x20, 0xCE, 0x31};
static const uint8_t moria1_v3[20] = {0xD5, 0x86, 0xD1, 0x83, 0x09, 0xDE, 0xD4, 0xCD, 0x6D, 0x57,
				      0xC1, 0x8F, 0xDB, 0x97, 0xEF, 0xA9, 0x6D, 0x33, 0x05, 0x66};

static void test_dirauth_parses_a_testnet_line(void **state)
{
	struct dir_source s;
	char err[256];

	(void)state;
	assert_int_equal(dirauth_parse_line("auth1 orport=5101 no-v2 v3ident=D586D18309DED4CD6D57C18FDB97EFA96D330566 "
					    "127.0.0.1:7001 9695DFC35FFEB861329B9F1AB04C46397020CE31",
					    &s, err, sizeof(err)),
			 0);
	assert_string_equal(s.nickname, "auth1");
	assert_int_equal(s.ipv4, 0x7f000001);
	assert_int_equal(s.dir_port, 7001);
	assert_int_equal(s.or_port, 5101);
	assert_memory_equal(s.fingerprint, moria1_fp, 20);
	assert_memory_equal(s.v3ident, moria1_v3, 20);
	assert_true(s.flags & DIR_SOURCE_V3);
	assert_true(s.flags & DIR_SOURCE_NO_V2);
	assert_false(s.flags & DIR_SOURCE_BRIDGE);
}

static void test_dirauth_accepts_spaced_fingerprint_ipv6_and_no_nickname(void **state)
{
	struct dir_source s;
	char err[256];
	static const uint8_t v6[16] = {0x20, 0x01, 0x08, 0x58, 0, 2, 0, 2, 0xaa, 0xbb, 0, 0, 0x56, 0x3b, 0x15, 0x26};

	(void)state;
	assert_int_equal(dirauth_parse_line("orport=443 ipv6=[2001:858:2:2:aabb:0:563b:1526]:443 weight=10 hs "
					    "86.59.21.38:80 9695 DFC3 5FFE B861 329B 9F1A B04C 4639 7020 CE31",
					    &s, err, sizeof(err)),
			 0);
	assert_string_equal(s.nickname, "");
	assert_true(s.flags & DIR_SOURCE_IPV6);
	assert_memory_equal(s.ipv6, v6, 16);
	assert_int_equal(s.ipv6_port, 443);
	assert_false(s.flags & DIR_SOURCE_V3);
	assert_memory_equal(s.fingerprint, moria1_fp, 20);
}

static void test_dirauth_ignores_unknown_flags_like_tor(void **state)
{
	struct dir_source s;
	char err[256];

	(void)state;
	assert_int_equal(dirauth_parse_line("x orport=1 frobnicate 1.2.3.4:80 9695DFC35FFEB861329B9F1AB04C46397020CE31",
					    &s, err, sizeof(err)),
			 0);
	assert_int_equal(s.dir_port, 80);
}

static void expect_bad(const char *line, const char *msg)
{
	struct dir_source s;
	char err[256] = "";

	assert_int_equal(dirauth_parse_line(line, &s, err, sizeof(err)), -EINVAL);
	if (!strstr(err, msg)) {
		print_error("line \"%s\": got \"%s\", want \"%s\"\n", line, err, msg);
		fail();
	}
}

static void test_dirauth_rejects_every_malformed_form(void **state)
{
	const char *fp = "9695DFC35FFEB861329B9F1AB04C46397020CE31";
	char line[256];

	(void)state;
	expect_bad("", "no arguments");
	expect_bad("   ", "no arguments");
	expect_bad("moria1", "too few arguments");
	expect_bad("moria1 1.2.3.4:80", "too few arguments");
	snprintf(line, sizeof(line), "moria1 1.2.3.4 %s", fp);
	expect_bad(line, "missing dir port");
	snprintf(line, sizeof(line), "moria1 1.2.3:80 %s", fp);
	expect_bad(line, "error parsing DirAuthority address");
	snprintf(line, sizeof(line), "moria1 1.2.3.4:0 %s", fp);
	expect_bad(line, "bad dir port");
	snprintf(line, sizeof(line), "moria1 1.2.3.4:65536 %s", fp);
	expect_bad(line, "bad dir port");
	snprintf(line, sizeof(line), "moria1 1.2.3.4:8x %s", fp);
	expect_bad(line, "bad dir port");
	/* a host name: tor needs an address here too */
	snprintf(line, sizeof(line), "moria1 9host.example:80 %s", fp);
	expect_bad(line, "error parsing DirAuthority address");
	expect_bad("moria1 1.2.3.4:80 9695DFC35FFEB861329B9F1AB04C46397020CE", "wrong length 38");
	expect_bad("moria1 1.2.3.4:80 9695DFC35FFEB861329B9F1AB04C46397020CE3100", "wrong length 42");
	expect_bad("moria1 1.2.3.4:80 9695DFC35FFEB861329B9F1AB04C46397020CEZZ", "not hex");
	snprintf(line, sizeof(line), "moria1 orport=0 1.2.3.4:80 %s", fp);
	expect_bad(line, "invalid orport");
	snprintf(line, sizeof(line), "moria1 orport=70000 1.2.3.4:80 %s", fp);
	expect_bad(line, "invalid orport");
	snprintf(line, sizeof(line), "moria1 orport= 1.2.3.4:80 %s", fp);
	expect_bad(line, "invalid orport");
	snprintf(line, sizeof(line), "moria1 v3ident=D586 1.2.3.4:80 %s", fp);
	expect_bad(line, "bad v3 identity digest");
	snprintf(line, sizeof(line), "moria1 v3ident=G586D18309DED4CD6D57C18FDB97EFA96D330566 1.2.3.4:80 %s", fp);
	expect_bad(line, "bad v3 identity digest");
	snprintf(line, sizeof(line), "moria1 ipv6=2001::1:443 1.2.3.4:80 %s", fp);
	expect_bad(line, "bad ipv6 address");
	snprintf(line, sizeof(line), "moria1 ipv6=[2001::zz]:443 1.2.3.4:80 %s", fp);
	expect_bad(line, "bad ipv6 address");
	snprintf(line, sizeof(line), "moria1 ipv6=[2001::1] 1.2.3.4:80 %s", fp);
	expect_bad(line, "bad ipv6 address");
	snprintf(line, sizeof(line), "moria1 weight=x 1.2.3.4:80 %s", fp);
	expect_bad(line, "invalid weight");
}

/* The public network as tor 0.4.9.11 (Debian) compiles it in, written out
 * by hand from `strings /usr/bin/tor` (auth_dirs.inc): nickname, IPv4,
 * DirPort, ORPort, RSA identity fingerprint, v3 identity ("" for the
 * bridge authority), IPv6 or "". */
static const struct expected_auth {
	const char *nick, *ipv4;
	uint16_t dir_port, or_port;
	const char *fp, *v3, *ipv6;
} public_auths[] = {
	{"moria1", "128.31.0.39", 9231, 9201, "1A25C6358DB91342AA51720A5038B72742732498",
	 "F533C81CEF0BC0267857C99B2F471ADF249FA232", ""},
	{"tor26", "217.196.147.77", 80, 443, "FAA4BCA4A6AC0FB4CA2F8AD5A11D9E122BA894F6",
	 "2F3DF9CA0E5D36F2685A2DA67184EB8DCB8CBA8C", "2a02:16a8:662:2203::1"},
	{"dizum", "45.66.35.11", 80, 443, "7EA6EAD6FD83083C538F44038BBFA077587DD755",
	 "E8A9C45EDE6D711294FADF8E7951F4DE6CA56B58", ""},
	{"Serge", "66.111.2.131", 9030, 9001, "BA44A889E64B93FAA2B114E02C2A279A8555C533", "", ""},
	{"gabelmoo", "131.188.40.189", 80, 443, "F2044413DAC2E02E3D6BCF4735A19BCA1DE97281",
	 "ED03BB616EB2F60BEC80151114BB25CEF515B226", "2001:638:a000:4140::ffff:189"},
	{"dannenberg", "193.23.244.244", 80, 443, "7BE683E65D48141321C5ED92F075C55364AC7123",
	 "0232AF901C31A04EE9848595AF9BB7620D4C5B2E", "2001:678:558:1000::244"},
	{"maatuska", "171.25.193.9", 443, 80, "BD6A829255CB08E66FBE7D3748363586E46B3810",
	 "49015F787433103580E3B66A1707A00E60F2D15B", "2001:67c:289c::9"},
	{"longclaw", "199.58.81.140", 80, 443, "74A910646BCEEFBCD2E874FC1DC997430F968145",
	 "23D15D965BC35114467363C165C4F724B64B4F66", ""},
	{"bastet", "204.13.164.118", 80, 443, "24E2F139121D4394C54B5BCC368B3B411857C413",
	 "27102BC123E7AF1D4741AE047E160C91ADC76B21", "2620:13:4000:6000::1000:118"},
	{"faravahar", "216.218.219.41", 80, 443, "E3E42D35F801C9D5AB23584E0025D56FE2B33396",
	 "70849B868D606BAECFB6128C5E3D782029AA394F", ""},
};

static void hex20(const char *hex, uint8_t out[20])
{
	assert_int_equal(base16_decode(out, 20, hex, strlen(hex)), 20);
}

/* A globally routable IPv4 unicast address (host order): not 0/8, 10/8,
 * 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16, multicast or above. */
static bool ipv4_is_public(uint32_t a)
{
	return (a >> 24) != 0 && (a >> 24) != 10 && (a >> 22) != (100u << 2 | 1) && (a >> 24) != 127 &&
	       (a >> 16) != (169u << 8 | 254) && (a >> 20) != (172u << 4 | 1) && (a >> 16) != (192u << 8 | 168) &&
	       (a >> 24) < 224;
}

static void test_dirauth_default_list_is_the_public_network(void **state)
{
	struct dirauth_list l;
	uint8_t ids[16][20], want[20];
	size_t nfallback = 0, nbridge = 0, nauth = sizeof(public_auths) / sizeof(public_auths[0]);

	(void)state;
	dirauth_list_defaults(&l);
	assert_true(l.is_default);
	/* 9 v3 authorities + the bridge authority, in tor's order, then 4 fallbacks */
	assert_int_equal(dirauth_v3idents(&l, ids, 16), 9);
	assert_int_equal(l.n, nauth + 4);
	for (size_t i = 0; i < nauth; i++) {
		const struct expected_auth *e = &public_auths[i];
		const struct dir_source *s = &l.v[i];
		struct in_addr in;

		assert_string_equal(s->nickname, e->nick);
		assert_int_equal(inet_pton(AF_INET, e->ipv4, &in), 1);
		assert_int_equal(s->ipv4, ntohl(in.s_addr));
		assert_int_equal(s->dir_port, e->dir_port);
		assert_int_equal(s->or_port, e->or_port);
		hex20(e->fp, want);
		assert_memory_equal(s->fingerprint, want, 20);
		if (e->v3[0]) {
			hex20(e->v3, want);
			assert_memory_equal(s->v3ident, want, 20);
			assert_true(s->flags & DIR_SOURCE_V3);
			assert_false(s->flags & DIR_SOURCE_BRIDGE);
		} else {
			assert_false(s->flags & DIR_SOURCE_V3);
			assert_true(s->flags & DIR_SOURCE_BRIDGE);
		}
		if (e->ipv6[0]) {
			struct in6_addr a6;
			assert_int_equal(inet_pton(AF_INET6, e->ipv6, &a6), 1);
			assert_true(s->flags & DIR_SOURCE_IPV6);
			assert_memory_equal(s->ipv6, &a6, 16);
			assert_int_equal(s->ipv6_port, e->or_port);
		} else {
			assert_false(s->flags & DIR_SOURCE_IPV6);
		}
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct dir_source *s = &l.v[i];
		static const uint8_t zero[20];

		nfallback += (s->flags & DIR_SOURCE_FALLBACK) != 0;
		nbridge += (s->flags & DIR_SOURCE_BRIDGE) != 0;
		assert_true(ipv4_is_public(s->ipv4));
		assert_int_not_equal(s->or_port, 0);
		assert_memory_not_equal(s->fingerprint, zero, 20);
		if (s->flags & DIR_SOURCE_FALLBACK) {
			assert_int_equal(s->dir_port, 0); /* BEGIN_DIR only */
			assert_false(s->flags & (DIR_SOURCE_V3 | DIR_SOURCE_BRIDGE));
		}
		/* no two entries share a relay identity or a v3 identity */
		for (size_t j = 0; j < i; j++) {
			assert_memory_not_equal(s->fingerprint, l.v[j].fingerprint, 20);
			if ((s->flags & DIR_SOURCE_V3) && (l.v[j].flags & DIR_SOURCE_V3))
				assert_memory_not_equal(s->v3ident, l.v[j].v3ident, 20);
		}
	}
	assert_int_equal(nbridge, 1);
	assert_int_equal(nfallback, 4);
	/* and the list a configuration without DirAuthority lines gets is this one */
	{
		struct config_lines none = {NULL, 0};
		struct dirauth_list c;
		char err[256];

		assert_int_equal(dirauth_list_from_config(&none, &c, err, sizeof(err)), 0);
		assert_int_equal(c.n, l.n);
		assert_memory_equal(c.v, l.v, l.n * sizeof(*l.v));
		dirauth_list_free(&c);
	}
	dirauth_list_free(&l);
}

static void test_dirauth_list_from_config(void **state)
{
	char *lines[] = {
		"a1 orport=5101 v3ident=D586D18309DED4CD6D57C18FDB97EFA96D330566 127.0.0.1:7001 "
		"9695DFC35FFEB861329B9F1AB04C46397020CE31",
		"a2 orport=5102 bridge 127.0.0.1:7002 9695DFC35FFEB861329B9F1AB04C46397020CE31",
	};
	char *bad[] = {lines[0], "a3 127.0.0.1:7003 9695DFC35FFEB861329B9F1AB04C4639"};
	struct config_lines cl = {lines, 2}, none = {NULL, 0}, only_bridge = {lines + 1, 1}, badl = {bad, 2};
	struct dirauth_list l;
	char err[512];

	(void)state;
	assert_int_equal(dirauth_list_from_config(&cl, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 2);
	assert_false(l.is_default);
	assert_int_equal(dirauth_v3idents(&l, NULL, 0), 1); /* the bridge authority does not count */
	dirauth_list_free(&l);
	assert_int_equal(dirauth_list_from_config(&none, &l, err, sizeof(err)), 0);
	assert_true(l.is_default);
	dirauth_list_free(&l);
	assert_int_equal(dirauth_list_from_config(&only_bridge, &l, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no DirAuthority line names a v3 authority"));
	assert_int_equal(dirauth_list_from_config(&badl, &l, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "DirAuthority line 2"));
	assert_non_null(strstr(err, "wrong length"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirauth_parses_a_testnet_line),
		cmocka_unit_test(test_dirauth_accepts_spaced_fingerprint_ipv6_and_no_nickname),
		cmocka_unit_test(test_dirauth_ignores_unknown_flags_like_tor),
		cmocka_unit_test(test_dirauth_rejects_every_malformed_form),
		cmocka_unit_test(test_dirauth_default_list_is_the_public_network),
		cmocka_unit_test(test_dirauth_list_from_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
