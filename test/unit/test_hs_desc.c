/* Onion-service descriptors: REAL descriptors that tor 0.4.9 published on
 * the private network (test/vectors/hs/, see its README) are verified and
 * decrypted, with and without client authorization; hand-made documents
 * cover the refusals; every prefix of each layer is refused safely. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/base64.h"
#include "core/crypto.h"
#include "proto/ed25519_cert.h"
#include "proto/hs_desc.h"
#include "proto/hs_keys.h"
#include "proto/onion_addr.h"
#include "proto/socks.h"

/* The private network votes every 20 s; tor then makes time periods
 * 24 votes long (8 min) and offsets them by 12 votes (4 min). */
static const struct hs_period_cfg testnet = { 8, 4 };

struct vec {
	char *doc;
	size_t len;
	uint8_t id[32], blinded[32], subcred[32], client_sk[32];
	bool has_sk;
	time_t va;
	uint64_t num;
};

static char *slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *b = malloc(HS_DESC_MAX_LEN + 2);

	snprintf(path, sizeof(path), "%s/%s", HS_VECTORS, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	*len = fread(b, 1, HS_DESC_MAX_LEN + 1, f);
	fclose(f);
	b[*len] = 0;
	return b;
}

static void vec_load(struct vec *v, const char *base)
{
	char name[64], *meta, *p, host[80], addr[64] = "", sk[64] = "";
	struct tm tm = { 0 };
	size_t n;

	memset(v, 0, sizeof(*v));
	snprintf(name, sizeof(name), "%s.desc", base);
	v->doc = slurp(name, &v->len);
	/* The control port hands the descriptor out without its final NL;
	 * an HSDir's HTTP body has it. */
	if (v->len && v->doc[v->len - 1] != '\n')
		v->doc[v->len++] = '\n';
	snprintf(name, sizeof(name), "%s.meta", base);
	meta = slurp(name, &n);
	assert_int_equal(sscanf(meta, "address %63s", addr), 1);
	p = strstr(meta, "valid-after ");
	assert_non_null(p);
	assert_non_null(strptime(p + 12, "%Y-%m-%d %H:%M:%S", &tm));
	v->va = timegm(&tm);
	p = strstr(meta, "client-x25519-secret ");
	if (p) {
		assert_int_equal(sscanf(p + 21, "%63s", sk), 1);
		assert_int_equal(base64_decode(v->client_sk, 32, sk, strlen(sk)), 32);
		v->has_sk = true;
	}
	free(meta);
	snprintf(host, sizeof(host), "%s.onion", addr);
	assert_int_equal(onion_addr_parse(host, strlen(host), v->id), ONION_ADDR_OK);
	v->num = hs_period_num(&testnet, v->va);
	assert_true(hs_blinded_key(v->blinded, v->id, v->num, testnet.length));
	hs_subcredential(v->subcred, v->id, v->blinded);
}

static void vec_free(struct vec *v)
{
	free(v->doc);
}

static void test_hs_desc_tor_cert_carries_our_blinded_key(void **state)
{
	struct vec v;
	struct hs_desc_outer o;
	struct ed25519_cert c;
	const char *why = NULL;
	uint8_t *buf;

	(void)state;
	vec_load(&v, "noauth");
	buf = malloc(v.len);
	assert_int_equal(hs_desc_outer_parse(v.doc, v.len, &o, buf, v.len, &why), PARSE_OK);
	assert_int_equal(ed25519_cert_parse(o.cert, o.cert_len, &c, &why), PARSE_OK);
	assert_int_equal(c.cert_type, ED25519_CERT_TYPE_HS_DESC_SIGNING);
	assert_non_null(c.signing_key);
	/* tor's own blinding for the period of the consensus it used. */
	assert_memory_equal(c.signing_key, v.blinded, 32);
	assert_int_equal(o.lifetime_min, 180);
	free(buf);
	vec_free(&v);
}

static void check_intro_wellformed(const struct hs_desc_intro *ip)
{
	static const uint8_t zero[32];
	const uint8_t *p = ip->link_specs, *end = p + ip->link_specs_len;
	unsigned nspec = *p++, have = 0;

	for (unsigned i = 0; i < nspec; i++) {
		assert_true(p + 2 <= end);
		if (p[0] == 0) /* IPv4 on the private network: 127.0.0.1 */
			assert_memory_equal(p + 2, "\x7f\x00\x00\x01", 4);
		have |= 1u << p[0];
		p += 2 + p[1];
	}
	assert_ptr_equal(p, end);
	assert_int_equal(have & 0xd, 0xd); /* IPv4, legacy id, ed25519 id */
	assert_memory_not_equal(ip->onion_key, zero, 32);
	assert_memory_not_equal(ip->auth_key, zero, 32);
	assert_memory_not_equal(ip->enc_key, zero, 32);
}

static void test_hs_desc_decodes_tor_descriptor_into_intro_points(void **state)
{
	struct vec v;
	struct hs_desc_inner *in = NULL;
	const char *why = NULL;
	uint64_t rev = 0;

	(void)state;
	vec_load(&v, "noauth");
	assert_int_equal(hs_desc_decode(v.doc, v.len, v.blinded, v.subcred, NULL, v.va, &in, &rev, &why),
			 HS_DESC_OK);
	assert_non_null(in);
	assert_true(in->n_intro >= 1 && in->n_intro <= HS_DESC_MAX_INTRO);
	assert_true(in->create2_formats & HS_DESC_CREATE2_NTOR);
	assert_true(in->flow_control);
	assert_true(in->sendme_inc > 0);
	assert_true(rev > 0);
	for (size_t i = 0; i < in->n_intro; i++)
		check_intro_wellformed(&in->intro[i]);
	hs_desc_inner_free(in);
	vec_free(&v);
}

static void test_hs_desc_client_auth_missing_wrong_and_right_key(void **state)
{
	struct vec v;
	struct hs_desc_inner *in = NULL;
	const char *why = NULL;
	uint64_t rev;
	uint8_t wrong[32];
	enum hs_desc_err e;

	(void)state;
	vec_load(&v, "auth");
	assert_true(v.has_sk);
	e = hs_desc_decode(v.doc, v.len, v.blinded, v.subcred, NULL, v.va, &in, &rev, &why);
	assert_int_equal(e, HS_DESC_NEED_CLIENT_AUTH);
	assert_int_equal(hs_desc_socks_reply(e), SOCKS5_HS_MISSING_CLIENT_AUTH);
	assert_null(in);
	crypto_rand(wrong, sizeof(wrong));
	e = hs_desc_decode(v.doc, v.len, v.blinded, v.subcred, wrong, v.va, &in, &rev, &why);
	assert_int_equal(e, HS_DESC_BAD_CLIENT_AUTH);
	assert_int_equal(hs_desc_socks_reply(e), SOCKS5_HS_WRONG_CLIENT_AUTH);
	e = hs_desc_decode(v.doc, v.len, v.blinded, v.subcred, v.client_sk, v.va, &in, &rev, &why);
	assert_int_equal(e, HS_DESC_OK);
	assert_true(in->n_intro >= 1);
	for (size_t i = 0; i < in->n_intro; i++)
		check_intro_wellformed(&in->intro[i]);
	hs_desc_inner_free(in);
	vec_free(&v);
}

static void test_hs_desc_refuses_other_period_expired_cert_and_bad_signature(void **state)
{
	struct vec v;
	struct hs_desc_inner *in = NULL;
	const char *why = NULL;
	uint64_t rev;
	uint8_t other[32], osub[32];
	char *p;

	(void)state;
	vec_load(&v, "noauth");
	assert_true(hs_blinded_key(other, v.id, v.num + 1, testnet.length));
	hs_subcredential(osub, v.id, other);
	assert_int_equal(hs_desc_decode(v.doc, v.len, other, osub, NULL, v.va, &in, &rev, &why),
			 HS_DESC_WRONG_KEY);
	assert_int_equal(hs_desc_decode(v.doc, v.len, v.blinded, v.subcred, NULL, v.va + 30 * 86400, &in,
					&rev, &why),
			 HS_DESC_EXPIRED);
	/* Change the revision counter: the signature no longer matches. */
	p = strstr(v.doc, "revision-counter ");
	assert_non_null(p);
	p[17] = p[17] == '1' ? '2' : '1';
	assert_int_equal(hs_desc_decode(v.doc, v.len, v.blinded, v.subcred, NULL, v.va, &in, &rev, &why),
			 HS_DESC_BAD_SIGNATURE);
	assert_int_equal(hs_desc_socks_reply(HS_DESC_BAD_SIGNATURE), SOCKS5_HS_DESC_INVALID);
	assert_null(in);
	vec_free(&v);
}

static void test_hs_desc_superencrypted_mac_depends_on_subcredential(void **state)
{
	struct vec v;
	struct hs_desc_outer o;
	const char *why = NULL;
	uint8_t *buf, *pt, bad[32];

	(void)state;
	vec_load(&v, "noauth");
	buf = malloc(v.len);
	pt = malloc(v.len);
	assert_int_equal(hs_desc_outer_parse(v.doc, v.len, &o, buf, v.len, &why), PARSE_OK);
	assert_true(hs_desc_layer_decrypt(pt, v.len, o.superenc, o.superenc_len, v.blinded, 32,
					  v.subcred, o.revision, HS_DESC_CONST_SUPERENC) > 0);
	memcpy(bad, v.subcred, 32);
	bad[0] ^= 1;
	assert_int_equal(hs_desc_layer_decrypt(pt, v.len, o.superenc, o.superenc_len, v.blinded, 32,
					       bad, o.revision, HS_DESC_CONST_SUPERENC),
			 -1);
	assert_int_equal(hs_desc_layer_decrypt(pt, v.len, o.superenc, o.superenc_len, v.blinded, 32,
					       v.subcred, o.revision + 1, HS_DESC_CONST_SUPERENC),
			 -1);
	free(buf);
	free(pt);
	vec_free(&v);
}

static void test_hs_desc_outer_every_prefix_needs_more_or_is_invalid(void **state)
{
	struct vec v;
	struct hs_desc_outer o;
	const char *why;
	uint8_t *buf;

	(void)state;
	vec_load(&v, "noauth");
	buf = malloc(v.len);
	for (size_t i = 0; i < v.len; i++) {
		char *copy = malloc(i + 1);
		enum parse_result pr;

		memcpy(copy, v.doc, i); /* exact-size copy: ASan sees overreads */
		why = NULL;
		pr = hs_desc_outer_parse(copy, i, &o, buf, v.len, &why);
		assert_true(pr == PARSE_NEED_MORE || pr == PARSE_INVALID);
		free(copy);
	}
	free(buf);
	vec_free(&v);
}

/* Decrypt the real middle and inner plaintexts (as the layers' tests need). */
static void real_layers(struct vec *v, char **mid, size_t *mlen, char **inner, size_t *ilen)
{
	struct hs_desc_outer o;
	struct hs_desc_middle m;
	const char *why = NULL;
	uint8_t *buf = malloc(v->len), *mbuf;
	ssize_t n;

	assert_int_equal(hs_desc_outer_parse(v->doc, v->len, &o, buf, v->len, &why), PARSE_OK);
	*mid = malloc(o.superenc_len + 1);
	n = hs_desc_layer_decrypt((uint8_t *)*mid, o.superenc_len, o.superenc, o.superenc_len,
				  v->blinded, 32, v->subcred, o.revision, HS_DESC_CONST_SUPERENC);
	assert_true(n > 0);
	(*mid)[n] = '\n'; /* tor leaves the final NL off */
	*mlen = (size_t)n + ((*mid)[n - 1] == '\n' ? 0 : 1);
	mbuf = malloc(*mlen);
	assert_int_equal(hs_desc_middle_parse(*mid, *mlen, &m, mbuf, *mlen, &why), PARSE_OK);
	assert_true(m.n_auth_client >= 1);
	*inner = malloc(m.encrypted_len + 1);
	n = hs_desc_layer_decrypt((uint8_t *)*inner, m.encrypted_len, m.encrypted, m.encrypted_len,
				  v->blinded, 32, v->subcred, o.revision, HS_DESC_CONST_ENC);
	assert_true(n > 0);
	(*inner)[n] = '\n';
	*ilen = (size_t)n + ((*inner)[n - 1] == '\n' ? 0 : 1);
	free(mbuf);
	free(buf);
}

static void test_hs_desc_middle_and_inner_prefixes_are_safe(void **state)
{
	struct vec v;
	char *mid, *inner;
	size_t mlen, ilen;
	struct hs_desc_middle m;
	struct hs_desc_inner *in = malloc(sizeof(*in));
	const char *why;
	uint8_t *buf;

	(void)state;
	vec_load(&v, "noauth");
	real_layers(&v, &mid, &mlen, &inner, &ilen);
	buf = malloc(mlen);
	/* The middle layer ends with its "encrypted" object: no proper prefix
	 * is a whole layer. */
	for (size_t i = 0; i < mlen; i++) {
		char *copy = malloc(i + 1);
		enum parse_result pr;

		memcpy(copy, mid, i);
		pr = hs_desc_middle_parse(copy, i, &m, buf, mlen, &why);
		assert_true(pr == PARSE_NEED_MORE || pr == PARSE_INVALID);
		free(copy);
	}
	/* The inner layer is a list: a prefix cut at an item boundary is a
	 * document with fewer intro points; anything else is refused. */
	assert_int_equal(hs_desc_inner_parse(inner, ilen, NULL, v.va, in, &why), PARSE_OK);
	for (size_t i = 0; i < ilen; i++) {
		size_t full = in->n_intro;
		struct hs_desc_inner *pin = malloc(sizeof(*pin));
		char *copy = malloc(i + 1);
		enum parse_result pr;

		memcpy(copy, inner, i);
		pr = hs_desc_inner_parse(copy, i, NULL, v.va, pin, &why);
		if (pr == PARSE_OK)
			assert_true(pin->n_intro <= full && copy[i - 1] == '\n');
		free(copy);
		free(pin);
	}
	free(in);
	free(buf);
	free(mid);
	free(inner);
	vec_free(&v);
}

static enum parse_result outer_of(const char *doc)
{
	struct hs_desc_outer o;
	uint8_t buf[4096];
	const char *why = NULL;

	return hs_desc_outer_parse(doc, strlen(doc), &o, buf, sizeof(buf), &why);
}

#define CERT "-----BEGIN ED25519 CERT-----\nAQgAB5zG\n-----END ED25519 CERT-----\n"
#define MSG "-----BEGIN MESSAGE-----\nAAAA\n-----END MESSAGE-----\n"
#define SIG "signature cZToLYFISG6ET1KbLBsxKLkKMnoE7kGAFbmggDfAYCt+iJl5oQCB3oPF" \
	"unoC+sAWZwY7ZmOf5R7AtGzfMgAbDQ\n"

static void test_hs_desc_outer_refuses_hand_made_bad_documents(void **state)
{
	(void)state;
	assert_int_equal(outer_of("hs-descriptor 3\ndescriptor-lifetime 180\ndescriptor-signing-key-cert\n" CERT
				  "revision-counter 5\nsuperencrypted\n" MSG SIG),
			 PARSE_OK);
	assert_int_equal(outer_of("hs-descriptor 2\ndescriptor-lifetime 180\ndescriptor-signing-key-cert\n" CERT
				  "revision-counter 5\nsuperencrypted\n" MSG SIG),
			 PARSE_INVALID);
	assert_int_equal(outer_of("hs-descriptor 3\ndescriptor-lifetime 10\ndescriptor-signing-key-cert\n" CERT
				  "revision-counter 5\nsuperencrypted\n" MSG SIG),
			 PARSE_INVALID);
	assert_int_equal(outer_of("hs-descriptor 3\ndescriptor-lifetime 180\ndescriptor-signing-key-cert\n" CERT
				  "revision-counter 5\nrevision-counter 6\nsuperencrypted\n" MSG SIG),
			 PARSE_INVALID);
	assert_int_equal(outer_of("hs-descriptor 3\ndescriptor-lifetime 180\n"
				  "revision-counter 5\nsuperencrypted\n" MSG SIG),
			 PARSE_INVALID);
	assert_int_equal(outer_of("hs-descriptor 3\ndescriptor-lifetime 180\ndescriptor-signing-key-cert\n" CERT
				  "revision-counter 5\nsuperencrypted\n" MSG SIG "revision-counter 7\n"),
			 PARSE_INVALID);
	assert_int_equal(outer_of("descriptor-lifetime 180\nhs-descriptor 3\n"), PARSE_INVALID);
	assert_int_equal(outer_of("hs-descriptor 3\ndescriptor-lifetime 180\ndescriptor-signing-key-cert\n" CERT
				  "revision-counter 5\nsuperencrypted\n" MSG "signature AAAA\n"),
			 PARSE_INVALID);
}

static void test_hs_desc_layer_round_trip_cuts_padding(void **state)
{
	uint8_t secret[48], subcred[32], salt[16], pt[64] = "create2-formats 2\n", blob[128], out[128];
	ssize_t n;

	(void)state;
	crypto_rand(secret, sizeof(secret));
	crypto_rand(subcred, sizeof(subcred));
	crypto_rand(salt, sizeof(salt));
	n = hs_desc_layer_encrypt(blob, sizeof(blob), pt, sizeof(pt), secret, 48, subcred, 9,
				  HS_DESC_CONST_ENC, salt);
	assert_int_equal(n, 64 + 16 + 32);
	assert_int_equal(hs_desc_layer_decrypt(out, sizeof(out), blob, (size_t)n, secret, 48, subcred, 9,
					       HS_DESC_CONST_ENC),
			 18);
	assert_memory_equal(out, pt, 18);
	assert_int_equal(hs_desc_layer_decrypt(out, sizeof(out), blob, (size_t)n, secret, 48, subcred, 9,
					       HS_DESC_CONST_SUPERENC),
			 -1);
	blob[20] ^= 1;
	assert_int_equal(hs_desc_layer_decrypt(out, sizeof(out), blob, (size_t)n, secret, 48, subcred, 9,
					       HS_DESC_CONST_ENC),
			 -1);
	assert_int_equal(hs_desc_layer_decrypt(out, sizeof(out), blob, 47, secret, 48, subcred, 9,
					       HS_DESC_CONST_ENC),
			 -1);
	assert_int_equal(hs_desc_layer_encrypt(blob, 100, pt, sizeof(pt), secret, 48, subcred, 9,
					       HS_DESC_CONST_ENC, salt),
			 -1);
}

/* A hand-made inner layer with one intro point whose certs are signed by
 * signer_seed, plus optional extra text. */
static size_t make_inner(char *out, size_t cap, const uint8_t signer_seed[32], const char *lspec_b64,
			 const char *extra)
{
	uint8_t signer[32], auth[32], enc[32], cert[256];
	char c9[512], c11[512], b64k[64];
	struct ed25519_cert_params p = { ED25519_CERT_TYPE_HS_INTRO_AUTH, ED25519_CERT_KEY_ED25519,
					 0x7fffffff, auth, true };
	int n;

	crypto_ed25519_public_from_seed(signer, signer_seed);
	crypto_rand(auth, 32);
	crypto_rand(enc, 32);
	n = ed25519_cert_encode(cert, sizeof(cert), &p, signer_seed);
	assert_true(n > 0);
	assert_true(base64_encode(c9, sizeof(c9), cert, (size_t)n, true) > 0);
	p.cert_type = ED25519_CERT_TYPE_HS_ENC_KEY;
	p.certified_key = enc;
	n = ed25519_cert_encode(cert, sizeof(cert), &p, signer_seed);
	assert_true(base64_encode(c11, sizeof(c11), cert, (size_t)n, true) > 0);
	assert_true(base64_encode(b64k, sizeof(b64k), enc, 32, true) > 0);
	return (size_t)snprintf(out, cap,
				"create2-formats 2\nflow-control 1-2 31\n"
				"introduction-point %s\n"
				"onion-key ntor %s\n"
				"auth-key\n-----BEGIN ED25519 CERT-----\n%s\n-----END ED25519 CERT-----\n"
				"enc-key ntor %s\n"
				"enc-key-cert\n-----BEGIN ED25519 CERT-----\n%s\n-----END ED25519 CERT-----\n%s",
				lspec_b64, b64k, c9, b64k, c11, extra);
}

/* NSPEC=2: IPv4 127.0.0.1:9001 and legacy id 0x11 * 20. */
#define LS_GOOD "AgAGfwAAASMpAhQREREREREREREREREREREREREREQ=="
/* NSPEC=1: IPv4 only (no legacy id). */
#define LS_NO_ID "AQAGfwAAASMp"

static void test_hs_desc_inner_checks_intro_certs_and_link_specifiers(void **state)
{
	uint8_t seed[32], signer[32], other[32];
	char doc[8192];
	struct hs_desc_inner *in = malloc(sizeof(*in));
	const char *why = NULL;
	size_t n;

	(void)state;
	crypto_rand(seed, 32);
	crypto_rand(other, 32);
	crypto_ed25519_public_from_seed(signer, seed);
	n = make_inner(doc, sizeof(doc), seed, LS_GOOD, "");
	assert_int_equal(hs_desc_inner_parse(doc, n, signer, time(NULL), in, &why), PARSE_OK);
	assert_int_equal(in->n_intro, 1);
	assert_int_equal(in->sendme_inc, 31);
	assert_true(in->flow_control);
	/* Certs signed by another key: the intro point is dropped. */
	n = make_inner(doc, sizeof(doc), other, LS_GOOD, "");
	assert_int_equal(hs_desc_inner_parse(doc, n, signer, time(NULL), in, &why), PARSE_OK);
	assert_int_equal(in->n_intro, 0);
	/* Link specifiers without a legacy id: dropped. */
	n = make_inner(doc, sizeof(doc), seed, LS_NO_ID, "");
	assert_int_equal(hs_desc_inner_parse(doc, n, signer, time(NULL), in, &why), PARSE_OK);
	assert_int_equal(in->n_intro, 0);
	/* A repeated enc-key-cert makes the intro point unusable. */
	n = make_inner(doc, sizeof(doc), seed, LS_GOOD, "enc-key-cert\n" CERT);
	assert_int_equal(hs_desc_inner_parse(doc, n, signer, time(NULL), in, &why), PARSE_OK);
	assert_int_equal(in->n_intro, 0);
	/* Without create2-formats the layer is refused. */
	assert_int_equal(hs_desc_inner_parse("single-onion-service\n", 21, signer, 0, in, &why),
			 PARSE_INVALID);
	free(in);
}

static void test_hs_desc_inner_refuses_more_than_twenty_intro_points(void **state)
{
	char doc[4096] = "create2-formats 2\n";
	struct hs_desc_inner *in = malloc(sizeof(*in));
	const char *why = NULL;

	(void)state;
	for (int i = 0; i < 21; i++)
		strcat(doc, "introduction-point " LS_GOOD "\n");
	assert_int_equal(hs_desc_inner_parse(doc, strlen(doc), NULL, 0, in, &why), PARSE_INVALID);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hs_desc_tor_cert_carries_our_blinded_key),
		cmocka_unit_test(test_hs_desc_decodes_tor_descriptor_into_intro_points),
		cmocka_unit_test(test_hs_desc_client_auth_missing_wrong_and_right_key),
		cmocka_unit_test(test_hs_desc_refuses_other_period_expired_cert_and_bad_signature),
		cmocka_unit_test(test_hs_desc_superencrypted_mac_depends_on_subcredential),
		cmocka_unit_test(test_hs_desc_outer_every_prefix_needs_more_or_is_invalid),
		cmocka_unit_test(test_hs_desc_middle_and_inner_prefixes_are_safe),
		cmocka_unit_test(test_hs_desc_outer_refuses_hand_made_bad_documents),
		cmocka_unit_test(test_hs_desc_layer_round_trip_cuts_padding),
		cmocka_unit_test(test_hs_desc_inner_checks_intro_certs_and_link_specifiers),
		cmocka_unit_test(test_hs_desc_inner_refuses_more_than_twenty_intro_points),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
