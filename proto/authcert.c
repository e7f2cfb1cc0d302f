/* Authority key certificate parser and checks (see authcert.h). */
#include "proto/authcert.h"

#include <stdlib.h>
#include <string.h>

#define RSA_DER_MAX 1024 /* a 4096-bit public key's DER is ~526 bytes */
#define RSA_SIG_MAX 512

enum {
	SEEN_ADDRESS = 1 << 0,
	SEEN_FINGERPRINT = 1 << 1,
	SEEN_IDENTITY = 1 << 2,
	SEEN_PUBLISHED = 1 << 3,
	SEEN_EXPIRES = 1 << 4,
	SEEN_SIGNING = 1 << 5,
	SEEN_CROSSCERT = 1 << 6,
	SEEN_REQUIRED = SEEN_FINGERPRINT | SEEN_IDENTITY | SEEN_PUBLISHED | SEEN_EXPIRES |
			SEEN_SIGNING | SEEN_CROSSCERT,
};

struct cert_state {
	struct authcert *c;
	struct crypto_rsa *identity; /* owned until the checks are done */
	uint8_t fingerprint[SHA1_LEN];
	uint8_t crosscert[RSA_SIG_MAX];
	size_t crosscert_len;
	unsigned seen;
};

/* Decode an "RSA PUBLIC KEY" object of t; NULL if bad or under 1024 bits. */
static struct crypto_rsa *object_rsa(const struct netdoc_tok *t, uint8_t digest[SHA1_LEN])
{
	uint8_t der[RSA_DER_MAX];
	ssize_t n = netdoc_object_decode(t, "RSA PUBLIC KEY", der, sizeof(der));
	struct crypto_rsa *k;

	if (n <= 0 || t->args.len != 0)
		return NULL;
	k = crypto_rsa_from_der(der, (size_t)n);
	if (k && (crypto_rsa_bits(k) < 1024 || !crypto_rsa_fingerprint(k, digest))) {
		crypto_rsa_free(k);
		return NULL;
	}
	return k;
}

static bool once(struct cert_state *s, unsigned bit)
{
	if (s->seen & bit)
		return false;
	s->seen |= bit;
	return true;
}

static bool parse_time_item(const struct netdoc_tok *t, time_t *out)
{
	struct netdoc_span a[2];

	return netdoc_args(t, a, 2) >= 2 && netdoc_parse_time(a[0], a[1], out);
}

static bool parse_dir_address(const struct netdoc_tok *t, struct authcert *c)
{
	struct netdoc_span a;
	const char *colon;
	uint64_t port;

	if (netdoc_args(t, &a, 1) < 1 || !(colon = memchr(a.p, ':', a.len)))
		return false;
	struct netdoc_span ip = { a.p, (size_t)(colon - a.p) };
	struct netdoc_span ps = { colon + 1, (size_t)(a.p + a.len - colon - 1) };
	if (!netdoc_parse_ipv4(ip, &c->dir_ipv4) || !netdoc_parse_u64(ps, 65535, &port))
		return false;
	c->dir_port = (uint16_t)port;
	return true;
}

/* Handle one item between the version line and the certification. */
static enum parse_result cert_item(struct cert_state *s, const struct netdoc_tok *t,
				   struct netdoc_err *err)
{
	struct authcert *c = s->c;
	struct netdoc_span a;
	bool ok = true;

	if (netdoc_span_eq(t->kw, "dir-address")) {
		ok = once(s, SEEN_ADDRESS) && parse_dir_address(t, c);
	} else if (netdoc_span_eq(t->kw, "fingerprint")) {
		ok = once(s, SEEN_FINGERPRINT) && netdoc_args(t, &a, 1) >= 1 &&
		     netdoc_parse_hex20(a, s->fingerprint);
	} else if (netdoc_span_eq(t->kw, "dir-identity-key")) {
		ok = once(s, SEEN_IDENTITY) && (s->identity = object_rsa(t, c->identity_digest));
	} else if (netdoc_span_eq(t->kw, "dir-key-published")) {
		ok = once(s, SEEN_PUBLISHED) && parse_time_item(t, &c->published);
	} else if (netdoc_span_eq(t->kw, "dir-key-expires")) {
		ok = once(s, SEEN_EXPIRES) && parse_time_item(t, &c->expires);
	} else if (netdoc_span_eq(t->kw, "dir-signing-key")) {
		ok = once(s, SEEN_SIGNING) && (c->signing_key = object_rsa(t, c->signing_key_digest));
	} else if (netdoc_span_eq(t->kw, "dir-key-crosscert")) {
		/* 3.1: "ID SIGNATURE", but the "ID " part MUST be allowed to be omitted. */
		ssize_t n = netdoc_object_decode(t, "ID SIGNATURE", s->crosscert, sizeof(s->crosscert));
		if (n < 0)
			n = netdoc_object_decode(t, "SIGNATURE", s->crosscert, sizeof(s->crosscert));
		ok = once(s, SEEN_CROSSCERT) && n > 0 && t->args.len == 0;
		s->crosscert_len = n > 0 ? (size_t)n : 0;
	} else if (netdoc_span_eq(t->kw, "dir-key-certificate-version")) {
		return netdoc_fail(err, "certificate lacks dir-key-certification", t->line);
	}
	if (!ok)
		return netdoc_fail(err, "bad or repeated certificate item", t->line);
	return PARSE_OK;
}

/* Check the fingerprint, both signatures and the times. */
static enum parse_result cert_check(struct cert_state *s, const struct netdoc_tok *t,
				    const char *start, struct netdoc_err *err)
{
	uint8_t sig[RSA_SIG_MAX], digest[SHA1_LEN];
	ssize_t n = netdoc_object_decode(t, "SIGNATURE", sig, sizeof(sig));

	if (n <= 0 || t->args.len != 0)
		return netdoc_fail(err, "bad dir-key-certification object", t->line);
	if ((s->seen & SEEN_REQUIRED) != SEEN_REQUIRED)
		return netdoc_fail(err, "certificate lacks a required item", t->line);
	if (memcmp(s->fingerprint, s->c->identity_digest, SHA1_LEN) != 0)
		return netdoc_fail(err, "fingerprint does not match dir-identity-key", t->line);
	if (s->c->expires <= s->c->published)
		return netdoc_fail(err, "certificate expires before it was published", t->line);
	/* 1.3: signed from the initial item through the NL after the keyword. */
	crypto_sha1(start, (size_t)(t->line_end - start), digest);
	if (!crypto_rsa_verify_digest(s->identity, sig, (size_t)n, digest, SHA1_LEN))
		return netdoc_fail(err, "bad dir-key-certification signature", t->line);
	if (!crypto_rsa_verify_digest(s->c->signing_key, s->crosscert, s->crosscert_len,
				      s->c->identity_digest, SHA1_LEN))
		return netdoc_fail(err, "bad dir-key-crosscert signature", t->line);
	return PARSE_OK;
}

static enum parse_result cert_body(struct netdoc_reader *r, struct cert_state *s,
				   const char *start, struct netdoc_err *err)
{
	struct netdoc_tok t;
	enum parse_result pr;

	for (;;) {
		pr = netdoc_next(r, &t, err);
		if (pr == PARSE_NEED_MORE)
			err->reason = "truncated certificate";
		if (pr != PARSE_OK)
			return pr;
		if (netdoc_span_eq(t.kw, "dir-key-certification"))
			return cert_check(s, &t, start, err);
		pr = cert_item(s, &t, err);
		if (pr != PARSE_OK)
			return pr;
	}
}

/* Parse one certificate at r's position. */
static enum parse_result cert_parse_reader(struct netdoc_reader *r, struct authcert **out,
					   struct netdoc_err *err)
{
	struct cert_state s = { 0 };
	struct netdoc_tok t;
	struct netdoc_span a;
	enum parse_result pr = netdoc_next(r, &t, err);

	if (pr == PARSE_NEED_MORE)
		err->reason = "truncated certificate";
	if (pr != PARSE_OK)
		return pr;
	if (!netdoc_span_eq(t.kw, "dir-key-certificate-version") || netdoc_args(&t, &a, 1) < 1 ||
	    !netdoc_span_eq(a, "3"))
		return netdoc_fail(err, "expected dir-key-certificate-version 3", t.line);
	s.c = calloc(1, sizeof(*s.c));
	if (!s.c)
		abort(); /* control-plane allocation: OOM aborts (STYLE.md) */
	pr = cert_body(r, &s, t.start, err);
	crypto_rsa_free(s.identity);
	if (pr != PARSE_OK) {
		authcert_free(s.c);
		return pr;
	}
	*out = s.c;
	return PARSE_OK;
}

enum parse_result authcert_parse(const char *doc, size_t len, size_t *consumed,
				 struct authcert **out, struct netdoc_err *err)
{
	struct netdoc_reader r;
	enum parse_result pr;

	netdoc_reader_init(&r, doc, len);
	pr = cert_parse_reader(&r, out, err);
	if (pr == PARSE_OK)
		*consumed = (size_t)(r.cur - doc);
	return pr;
}

enum parse_result authcert_parse_all(const char *doc, size_t len, struct authcert ***out,
				     size_t *n, struct netdoc_err *err)
{
	struct netdoc_reader r;
	struct authcert **v = NULL;
	size_t cnt = 0, cap = 0;

	netdoc_reader_init(&r, doc, len);
	while (!netdoc_at_end(&r)) {
		struct authcert *c;
		enum parse_result pr = cert_parse_reader(&r, &c, err);
		if (pr != PARSE_OK) {
			authcert_free_all(v, cnt);
			return pr;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 4;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				abort();
		}
		v[cnt++] = c;
	}
	if (cnt == 0) {
		err->reason = "no certificates";
		err->line = r.line;
		return PARSE_NEED_MORE;
	}
	*out = v;
	*n = cnt;
	return PARSE_OK;
}

bool authcert_is_live(const struct authcert *c, time_t now)
{
	return now >= c->published - AUTHCERT_PUBLISHED_SKEW && now < c->expires;
}

void authcert_free(struct authcert *c)
{
	if (!c)
		return;
	crypto_rsa_free(c->signing_key);
	free(c);
}

void authcert_free_all(struct authcert **certs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		authcert_free(certs[i]);
	free(certs);
}
