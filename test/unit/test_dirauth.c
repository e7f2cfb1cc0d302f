/* Tests for app/dirauth.c: tor's DirAuthority syntax (every malformed form
 * gets a clear message) and the compiled-in public authority list. The
 * expected values are the public facts written out by hand (tor's
 * auth_dirs.inc), not derived from the parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "app/dirauth.h"

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

static void test_dirauth_default_list_is_the_public_network(void **state)
{
	struct dirauth_list l;
	uint8_t ids[16][20];
	size_t nfallback = 0, nbridge = 0;
	const struct dir_source *moria = NULL;

	(void)state;
	dirauth_list_defaults(&l);
	assert_true(l.is_default);
	for (size_t i = 0; i < l.n; i++) {
		nfallback += (l.v[i].flags & DIR_SOURCE_FALLBACK) != 0;
		nbridge += (l.v[i].flags & DIR_SOURCE_BRIDGE) != 0;
		if (!strcmp(l.v[i].nickname, "moria1"))
			moria = &l.v[i];
	}
	/* 9 v3 authorities + the bridge authority + 4 fallbacks */
	assert_int_equal(dirauth_v3idents(&l, ids, 16), 9);
	assert_int_equal(nbridge, 1);
	assert_int_equal(nfallback, 4);
	assert_int_equal(l.n, 14);
	assert_non_null(moria);
	assert_int_equal(moria->ipv4, (128u << 24) | (31u << 16) | 39u);
	assert_int_equal(moria->dir_port, 9131);
	assert_int_equal(moria->or_port, 9101);
	assert_memory_equal(moria->fingerprint, moria1_fp, 20);
	assert_memory_equal(moria->v3ident, moria1_v3, 20);
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
