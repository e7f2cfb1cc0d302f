/* libFuzzer target for proto/hs_desc: the first input byte picks the
 * parser (outer document, first-layer plaintext, second-layer plaintext,
 * or the whole hs_desc_decode with fixed keys); the rest is the text.
 * Traps when an invariant breaks: decoded spans stay inside the caller's
 * buffer, signed_len lies inside the document, intro counts stay bounded,
 * link specifiers fit. Decryption itself is exercised through
 * hs_desc_layer_decrypt on the raw bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/hs_desc.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void fuzz_outer(const char *doc, size_t len, uint8_t *buf)
{
	struct hs_desc_outer o;
	const char *why = NULL;
	static const uint8_t blinded[32] = { 1 };
	uint8_t sk[32];

	if (hs_desc_outer_parse(doc, len, &o, buf, len, &why) != PARSE_OK) {
		CHECK(why != NULL);
		return;
	}
	CHECK(o.signed_len <= len);
	CHECK(o.cert >= buf && o.cert + o.cert_len <= buf + len);
	CHECK(o.superenc >= buf && o.superenc + o.superenc_len <= buf + len);
	(void)hs_desc_outer_check(&o, doc, blinded, 0, sk);
}

static void fuzz_middle(const char *doc, size_t len, uint8_t *buf)
{
	struct hs_desc_middle m;
	const char *why = NULL;
	static const uint8_t sk[32] = { 7 }, subcred[32] = { 9 };
	uint8_t cookie[HS_DESC_COOKIE_LEN];

	if (hs_desc_middle_parse(doc, len, &m, buf, len, &why) != PARSE_OK)
		return;
	CHECK(m.encrypted >= buf && m.encrypted + m.encrypted_len <= buf + len);
	CHECK(m.n_auth_client >= 1);
	(void)hs_desc_middle_cookie(&m, sk, subcred, cookie);
}

static void fuzz_inner(const char *doc, size_t len)
{
	struct hs_desc_inner *in = malloc(sizeof(*in));
	const char *why = NULL;

	if (hs_desc_inner_parse(doc, len, NULL, 0, in, &why) == PARSE_OK) {
		CHECK(in->n_intro <= HS_DESC_MAX_INTRO);
		for (size_t i = 0; i < in->n_intro; i++)
			CHECK(in->intro[i].link_specs_len >= 1 &&
			      in->intro[i].link_specs_len <= HS_DESC_LSPEC_MAX);
	}
	free(in);
}

static void fuzz_decode(const char *doc, size_t len, uint8_t *buf)
{
	static const uint8_t blinded[32] = { 2 }, subcred[32] = { 3 }, sk[32] = { 4 };
	struct hs_desc_inner *in = NULL;
	const char *why = NULL;
	uint64_t rev;
	enum hs_desc_err e = hs_desc_decode(doc, len, blinded, subcred, len & 1 ? sk : NULL, 0, &in,
					    &rev, &why);

	CHECK((e == HS_DESC_OK) == (in != NULL));
	hs_desc_inner_free(in);
	/* Raw bytes as a layer blob: must not crash, MAC must fail. */
	CHECK(hs_desc_layer_decrypt(buf, len, (const uint8_t *)doc, len, blinded, 32, subcred, 1,
				    HS_DESC_CONST_ENC) < 0 || len >= 48);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	char *doc;
	size_t len;

	if (size < 1 || size > HS_DESC_MAX_LEN)
		return 0;
	len = size - 1;
	/* Exact-size copies so ASan catches any read past the text. */
	doc = malloc(len ? len : 1);
	memcpy(doc, data + 1, len);
	buf = malloc(len ? len : 1);
	switch (data[0] & 3) {
	case 0: fuzz_outer(doc, len, buf); break;
	case 1: fuzz_middle(doc, len, buf); break;
	case 2: fuzz_inner(doc, len); break;
	default: fuzz_decode(doc, len, buf); break;
	}
	free(buf);
	free(doc);
	return 0;
}
