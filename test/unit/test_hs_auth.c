/* ClientOnionAuthDir file content (proto/hs_auth.h): tor's
 * "<address>:descriptor:x25519:<base32 key>" and what it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/base64.h"
#include "core/crypto.h"
#include "proto/hs_auth.h"
#include "proto/onion_addr.h"

struct line {
	uint8_t id[32], sk[32];
	char addr[ONION_ADDR_STR_LEN + 1]; /* with ".onion" */
	char key[64];                      /* 52 base32 characters */
};

static void line_make(struct line *l)
{
	uint8_t seed[32];

	crypto_rand(seed, sizeof(seed));
	crypto_ed25519_public_from_seed(l->id, seed);
	onion_addr_encode(l->addr, l->id);
	crypto_rand(l->sk, sizeof(l->sk));
	assert_int_equal(base32_encode(l->key, sizeof(l->key), l->sk, 32), 52);
}

static enum parse_result parse(const char *text, uint8_t id[32], uint8_t sk[32], const char **why)
{
	return hs_auth_parse(text, strlen(text), id, sk, why);
}

static void test_hs_auth_reads_tor_format_with_or_without_onion(void **state)
{
	struct line l;
	char text[256];
	uint8_t id[32], sk[32];
	const char *why = NULL;

	(void)state;
	line_make(&l);
	/* As tor writes it: no ".onion", then a newline. */
	snprintf(text, sizeof(text), "%.56s:descriptor:x25519:%s\n", l.addr, l.key);
	assert_int_equal(parse(text, id, sk, &why), PARSE_OK);
	assert_memory_equal(id, l.id, 32);
	assert_memory_equal(sk, l.sk, 32);
	/* With ".onion", surrounding blanks and an uppercase key. */
	for (char *c = l.key; *c; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 32);
	snprintf(text, sizeof(text), "  %s:descriptor:x25519:%s \r\n", l.addr, l.key);
	memset(sk, 0, sizeof(sk));
	assert_int_equal(parse(text, id, sk, &why), PARSE_OK);
	assert_memory_equal(sk, l.sk, 32);
}

static void test_hs_auth_refuses_bad_fields_and_keys(void **state)
{
	struct line l;
	char text[256], bad[ONION_ADDR_STR_LEN + 1];
	uint8_t id[32], sk[32];
	const char *why;

	(void)state;
	line_make(&l);
	memcpy(bad, l.addr, sizeof(bad));
	bad[3] = bad[3] == 'a' ? 'b' : 'a'; /* checksum */
	const char *cases[][3] = {
		{ bad, "descriptor", "x25519" },
		{ l.addr, "intro", "x25519" },
		{ l.addr, "descriptor", "ed25519" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%s:%s:%s:%s", cases[i][0], cases[i][1], cases[i][2], l.key);
		why = NULL;
		assert_int_equal(parse(text, id, sk, &why), PARSE_INVALID);
		assert_non_null(why);
	}
	/* Key too short, too long, not base32, with a fifth field. */
	snprintf(text, sizeof(text), "%s:descriptor:x25519:%.51s", l.addr, l.key);
	assert_int_equal(parse(text, id, sk, &why), PARSE_INVALID);
	snprintf(text, sizeof(text), "%s:descriptor:x25519:%sa", l.addr, l.key);
	assert_int_equal(parse(text, id, sk, &why), PARSE_INVALID);
	snprintf(text, sizeof(text), "%s:descriptor:x25519:%.51s1", l.addr, l.key);
	assert_int_equal(parse(text, id, sk, &why), PARSE_INVALID);
	snprintf(text, sizeof(text), "%s:descriptor:x25519:%s:x", l.addr, l.key);
	assert_int_equal(parse(text, id, sk, &why), PARSE_INVALID);
	/* Truncated anywhere: refused, never read past the end. */
	snprintf(text, sizeof(text), "%s:descriptor:x25519:%s", l.addr, l.key);
	for (size_t n = 0; n < strlen(text); n++) {
		char *cut = malloc(n ? n : 1);

		memcpy(cut, text, n);
		assert_int_equal(hs_auth_parse(cut, n, id, sk, &why), PARSE_INVALID);
		free(cut);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hs_auth_reads_tor_format_with_or_without_onion),
		cmocka_unit_test(test_hs_auth_refuses_bad_fields_and_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
