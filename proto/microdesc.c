/* Microdescriptor parser, digests and wanted-digest check (see microdesc.h). */
#include "proto/microdesc.h"

#include <stdlib.h>
#include <string.h>

enum {
	M_NTOR = 1 << 0,
	M_FAMILY = 1 << 1,
	M_P = 1 << 2,
	M_P6 = 1 << 3,
	M_ED = 1 << 4,
	M_RSA_ID = 1 << 5,
	M_PR = 1 << 6,
	M_A = 1 << 7,
};

struct md_state {
	struct microdesc_batch *b;
	struct microdesc *md; /* being parsed; NULL before the first onion-key */
	unsigned seen;
	size_t max_mds, max_ranges;
};

bool policy_summary_allows(const struct policy_summary *p, uint16_t port)
{
	bool listed = false;

	for (uint16_t i = 0; i < p->n && !listed; i++)
		listed = port >= p->ranges[i].lo && port <= p->ranges[i].hi;
	return listed == p->accept;
}

/* "accept"/"reject" PortList, PortList = range ("," range)*. Authorities
 * write them ascending (dir-spec 3.8.2); like tor we only require each
 * range to be well formed, and the lookup does not rely on order. */
static bool policy_parse(struct md_state *s, const struct netdoc_tok *t, struct policy_summary *p)
{
	struct netdoc_span a[2];
	struct netdoc_span pl;
	uint64_t lo, hi;

	if (netdoc_args(t, a, 2) < 2)
		return false;
	if (!netdoc_span_eq(a[0], "accept") && !netdoc_span_eq(a[0], "reject"))
		return false;
	p->accept = a[0].p[0] == 'a';
	p->ranges = s->b->ranges + s->b->n_ranges;
	p->n = 0;
	pl = a[1];
	for (const char *q = pl.p, *e = pl.p + pl.len; q <= e;) {
		const char *c = memchr(q, ',', (size_t)(e - q));
		const char *ie = c ? c : e;
		const char *dash = memchr(q, '-', (size_t)(ie - q));
		struct netdoc_span ls = { q, (size_t)((dash ? dash : ie) - q) };
		if (!netdoc_parse_u64(ls, 65535, &lo) || lo == 0)
			return false;
		hi = lo;
		if (dash) {
			struct netdoc_span hs = { dash + 1, (size_t)(ie - dash - 1) };
			if (!netdoc_parse_u64(hs, 65535, &hi) || hi < lo)
				return false;
		}
		if (s->b->n_ranges == s->max_ranges)
			return false;
		s->b->ranges[s->b->n_ranges++] = (struct port_range){ (uint16_t)lo, (uint16_t)hi };
		p->n++;
		if (!c)
			break;
		q = c + 1;
	}
	return true;
}

static bool once(unsigned *seen, unsigned bit)
{
	if (*seen & bit)
		return false;
	*seen |= bit;
	return true;
}

/* "onion-key" NL [RSA PUBLIC KEY object]: newer consensus methods drop the
 * TAP key, so the object is optional; when present it must be RSA-1024. */
static bool onion_key(struct microdesc *md, const struct netdoc_tok *t)
{
	uint8_t der[512];
	ssize_t n;
	struct crypto_rsa *k;

	if (t->args.len != 0)
		return false;
	if (!t->obj_type.p)
		return true;
	n = netdoc_object_decode(t, "RSA PUBLIC KEY", der, sizeof(der));
	if (n <= 0 || !(k = crypto_rsa_from_der(der, (size_t)n)))
		return false;
	md->has_tap_key = crypto_rsa_bits(k) == 1024;
	crypto_rsa_free(k);
	return md->has_tap_key;
}

/* "id" keytype value: ed25519 kept, rsa1024 checked, others ignored. */
static bool id_item(struct md_state *s, const struct netdoc_tok *t)
{
	struct netdoc_span a[2];
	uint8_t rsa_id[SHA1_LEN];

	if (netdoc_args(t, a, 2) < 2)
		return false;
	if (netdoc_span_eq(a[0], "ed25519")) {
		s->md->has_ed25519 = true;
		return once(&s->seen, M_ED) && netdoc_parse_b64_exact(a[1], s->md->ed25519_id, 32);
	}
	if (netdoc_span_eq(a[0], "rsa1024"))
		return once(&s->seen, M_RSA_ID) && netdoc_parse_b64_exact(a[1], rsa_id, SHA1_LEN);
	return true;
}

static bool a_item(struct md_state *s, const struct netdoc_tok *t)
{
	struct netdoc_span a;

	if (netdoc_args(t, &a, 1) < 1)
		return false;
	if (a.p[0] != '[' || (s->seen & M_A)) /* only the first IPv6 address counts */
		return true;
	s->seen |= M_A;
	s->md->has_ipv6 = netdoc_parse_ipv6_port(a, s->md->ipv6, &s->md->ipv6_port);
	return s->md->has_ipv6;
}

static bool md_item(struct md_state *s, const struct netdoc_tok *t)
{
	struct microdesc *md = s->md;
	struct netdoc_span a;

	if (netdoc_span_eq(t->kw, "ntor-onion-key"))
		return once(&s->seen, M_NTOR) && netdoc_args(t, &a, 1) >= 1 &&
		       netdoc_parse_b64_exact(a, md->ntor_key, 32);
	if (netdoc_span_eq(t->kw, "family")) {
		md->family = t->args;
		return once(&s->seen, M_FAMILY);
	}
	if (netdoc_span_eq(t->kw, "p"))
		return once(&s->seen, M_P) && policy_parse(s, t, &md->p);
	if (netdoc_span_eq(t->kw, "p6"))
		return once(&s->seen, M_P6) && policy_parse(s, t, &md->p6);
	if (netdoc_span_eq(t->kw, "id"))
		return id_item(s, t);
	if (netdoc_span_eq(t->kw, "pr")) {
		md->has_protos = true;
		return once(&s->seen, M_PR) && protover_parse(t->args, &md->protos);
	}
	if (netdoc_span_eq(t->kw, "a"))
		return a_item(s, t);
	return true;
}

/* Close the current microdescriptor at end (exclusive): digest its text. */
static enum parse_result md_end(struct md_state *s, const char *end, struct netdoc_err *err)
{
	struct microdesc *md = s->md;

	if (!md)
		return PARSE_OK;
	if (!(s->seen & M_NTOR))
		return netdoc_fail(err, "microdescriptor lacks ntor-onion-key", md->line);
	md->text_len = (size_t)(end - md->text);
	/* 3.3: the digest is over the text from "onion-key" to its end. */
	crypto_sha256(md->text, md->text_len, md->digest);
	s->md = NULL;
	return PARSE_OK;
}

static enum parse_result md_start(struct md_state *s, const struct netdoc_tok *t,
				  struct netdoc_err *err)
{
	struct microdesc *md;

	if (s->b->n == s->max_mds)
		return netdoc_fail(err, "too many microdescriptors", t->line); /* cannot happen */
	md = &s->b->mds[s->b->n++];
	md->text = t->start;
	md->line = t->line;
	/* A missing "p"/"p6" means "reject 1-65535": accept an empty list. */
	md->p.accept = md->p6.accept = true;
	s->md = md;
	s->seen = 0;
	if (!onion_key(md, t))
		return netdoc_fail(err, "bad onion-key", t->line);
	return PARSE_OK;
}

static enum parse_result md_body(struct md_state *s, struct netdoc_err *err)
{
	struct netdoc_reader r;
	struct netdoc_tok t;
	enum parse_result pr;

	netdoc_reader_init(&r, s->b->doc, s->b->doc_len);
	for (;;) {
		const char *annot = netdoc_skip_annotations(&r);
		if (netdoc_at_end(&r))
			return md_end(s, annot ? annot : r.end, err);
		pr = netdoc_next(&r, &t, err);
		if (pr != PARSE_OK)
			return pr;
		if (netdoc_span_eq(t.kw, "onion-key")) {
			if ((pr = md_end(s, annot ? annot : t.start, err)) != PARSE_OK)
				return pr;
			if ((pr = md_start(s, &t, err)) != PARSE_OK)
				return pr;
		} else if (!s->md || annot) {
			return netdoc_fail(err, "microdescriptor does not start with onion-key", t.line);
		} else if (!md_item(s, &t)) {
			return netdoc_fail(err, "bad or repeated microdescriptor item", t.line);
		}
	}
}

/* Upper bound on microdescriptors: "onion-key" at the start or after a NL. */
static size_t count_onion_keys(const char *doc, size_t len)
{
	size_t n = 1;
	const char *p = doc, *e = doc + len;

	while (p < e && (p = memmem(p, (size_t)(e - p), "\nonion-key", 10)) != NULL) {
		n++;
		p += 10;
	}
	return n;
}

static size_t count_bytes(const char *p, size_t len, char ch)
{
	size_t n = 0;
	const char *e = p + len;

	while (p < e && (p = memchr(p, ch, (size_t)(e - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

enum parse_result microdesc_parse_batch(const char *doc, size_t len, struct microdesc_batch **out,
					struct netdoc_err *err)
{
	struct md_state s = { 0 };
	struct microdesc_batch *b = calloc(1, sizeof(*b));
	enum parse_result pr;

	if (!b || !(b->doc = malloc(len + 1)))
		abort(); /* control-plane allocation: OOM aborts (STYLE.md) */
	memcpy(b->doc, doc, len);
	b->doc[len] = '\0';
	b->doc_len = len;
	s.b = b;
	/* Each range ends at a comma or a NL. */
	s.max_mds = count_onion_keys(doc, len);
	s.max_ranges = count_bytes(doc, len, '\n') + count_bytes(doc, len, ',') + 1;
	b->mds = calloc(s.max_mds, sizeof(*b->mds));
	b->ranges = calloc(s.max_ranges, sizeof(*b->ranges));
	if (!b->mds || !b->ranges)
		abort();
	pr = md_body(&s, err);
	if (pr == PARSE_OK && b->n == 0) {
		err->reason = "no microdescriptors";
		err->line = 1;
		pr = PARSE_NEED_MORE;
	}
	if (pr != PARSE_OK) {
		microdesc_batch_free(b);
		return pr;
	}
	*out = b;
	return PARSE_OK;
}

void microdesc_batch_free(struct microdesc_batch *b)
{
	if (!b)
		return;
	free(b->mds);
	free(b->ranges);
	free(b->doc);
	free(b);
}

static int digest_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SHA256_LEN);
}

size_t microdesc_check_wanted(const struct microdesc_batch *b, const uint8_t (*wanted)[SHA256_LEN],
			      size_t nwanted, bool *is_wanted)
{
	uint8_t(*sorted)[SHA256_LEN] = malloc((nwanted ? nwanted : 1) * SHA256_LEN);
	bool *used = calloc(nwanted ? nwanted : 1, sizeof(bool));
	size_t got = 0;

	if (!sorted || !used)
		abort();
	if (nwanted)
		memcpy(sorted, wanted, nwanted * SHA256_LEN);
	qsort(sorted, nwanted, SHA256_LEN, digest_cmp);
	for (size_t i = 0; i < b->n; i++) {
		uint8_t(*hit)[SHA256_LEN] =
			nwanted ? bsearch(b->mds[i].digest, sorted, nwanted, SHA256_LEN, digest_cmp) : NULL;
		size_t k = hit ? (size_t)(hit - sorted) : 0;
		is_wanted[i] = hit && !used[k];
		if (is_wanted[i]) {
			used[k] = true;
			got++;
		}
	}
	free(sorted);
	free(used);
	return got;
}
