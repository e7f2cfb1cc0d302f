/* Microdesc-flavoured consensus parser and verifier (see consensus.h).
 * Sections in order (dir-spec.txt 3.4.1): preamble, authority entries
 * (from the first "dir-source"), router entries (from the first "r"),
 * footer ("directory-footer"), signatures ("directory-signature"). */
#include "proto/consensus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

enum section { SEC_PREAMBLE, SEC_AUTH, SEC_ROUTERS, SEC_FOOTER, SEC_SIGS };

/* Preamble and per-router "seen" bits, for exactly-once / at-most-once. */
enum {
	P_VOTE_STATUS = 1 << 0,
	P_METHOD = 1 << 1,
	P_VALID_AFTER = 1 << 2,
	P_FRESH_UNTIL = 1 << 3,
	P_VALID_UNTIL = 1 << 4,
	P_VOTING_DELAY = 1 << 5,
	P_KNOWN_FLAGS = 1 << 6,
	P_PARAMS = 1 << 7,
	P_SRV_PREV = 1 << 8,
	P_SRV_CUR = 1 << 9,
	P_REC_CLIENT = 1 << 10,
	P_REQ_CLIENT = 1 << 11,
	P_REC_RELAY = 1 << 12,
	P_REQ_RELAY = 1 << 13,
	P_CLIENT_VERSIONS = 1 << 14,
	P_SERVER_VERSIONS = 1 << 15,
	P_BW_WEIGHTS = 1 << 16,
	P_REQUIRED = P_VOTE_STATUS | P_VALID_AFTER | P_FRESH_UNTIL | P_VALID_UNTIL |
		     P_VOTING_DELAY | P_KNOWN_FLAGS,
};
enum {
	R_M = 1 << 0,
	R_S = 1 << 1,
	R_V = 1 << 2,
	R_PR = 1 << 3,
	R_W = 1 << 4,
	R_A = 1 << 5,
	R_REQUIRED = R_M | R_S,
};

struct cons_state {
	struct consensus *c;
	enum section sec;
	unsigned seen;
	unsigned r_seen;
	size_t max_routers;
	bool have_footer;
};

#define NAME(s) { s, sizeof(s) - 1 }
static const struct {
	const char *name;
	size_t len;
} flag_names[] = {
	NAME("Authority"), NAME("BadExit"), NAME("Exit"), NAME("Fast"), NAME("Guard"),
	NAME("HSDir"), NAME("MiddleOnly"), NAME("NoEdConsensus"), NAME("Running"),
	NAME("Stable"), NAME("StaleDesc"), NAME("Sybil"), NAME("V2Dir"), NAME("Valid"),
};
#undef NAME

static uint32_t flags_parse(struct netdoc_span args)
{
	struct netdoc_span a;
	uint32_t f = 0;

	while (netdoc_arg_next(&args, &a))
		for (unsigned i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
			if (a.len == flag_names[i].len && memcmp(a.p, flag_names[i].name, a.len) == 0) {
				f |= 1u << i;
				break;
			}
	return f;
}

static bool once(unsigned *seen, unsigned bit)
{
	if (*seen & bit)
		return false;
	*seen |= bit;
	return true;
}

static bool time_item(const struct netdoc_tok *t, time_t *out)
{
	struct netdoc_span a[2];

	return netdoc_args(t, a, 2) >= 2 && netdoc_parse_time(a[0], a[1], out);
}

static bool u32_arg(struct netdoc_span a, uint32_t *out)
{
	uint64_t v;

	if (!netdoc_parse_u64(a, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool srv_item(const struct netdoc_tok *t, uint8_t out[32], bool *has)
{
	struct netdoc_span a[2];
	uint32_t reveals;

	if (netdoc_args(t, a, 2) < 2 || !u32_arg(a[0], &reveals) ||
	    !netdoc_parse_b64_exact(a[1], out, 32))
		return false;
	*has = true;
	return true;
}

static int param_cmp(const void *a, const void *b)
{
	const struct consensus_param *x = a, *y = b;
	size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
	int r = memcmp(x->name.p, y->name.p, n);

	return r ? r : (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

/* "params" Keyword=Int32 ...: stored sorted; duplicates are refused. */
static bool params_item(struct consensus *c, const struct netdoc_tok *t)
{
	size_t n = netdoc_args(t, NULL, 0);
	struct netdoc_span rest = t->args, a;

	c->params = calloc(n ? n : 1, sizeof(*c->params));
	if (!c->params)
		abort();
	while (netdoc_arg_next(&rest, &a)) {
		const char *eq = memchr(a.p, '=', a.len);
		struct consensus_param *p = &c->params[c->n_params];
		if (!eq || eq == a.p)
			return false;
		p->name.p = a.p;
		p->name.len = (size_t)(eq - a.p);
		struct netdoc_span v = { eq + 1, (size_t)(a.p + a.len - eq - 1) };
		if (!netdoc_parse_i32(v, &p->value))
			return false;
		c->n_params++;
	}
	qsort(c->params, c->n_params, sizeof(*c->params), param_cmp);
	for (size_t i = 1; i < c->n_params; i++)
		if (param_cmp(&c->params[i - 1], &c->params[i]) == 0)
			return false;
	return true;
}

static bool voting_delay_item(struct consensus *c, const struct netdoc_tok *t)
{
	struct netdoc_span a[2];

	return netdoc_args(t, a, 2) >= 2 && u32_arg(a[0], &c->vote_delay) &&
	       u32_arg(a[1], &c->dist_delay);
}

static bool vote_status_item(const struct netdoc_tok *t)
{
	struct netdoc_span a;

	return netdoc_args(t, &a, 1) >= 1 && netdoc_span_eq(a, "consensus");
}

static bool method_item(struct consensus *c, const struct netdoc_tok *t)
{
	struct netdoc_span a;

	return netdoc_args(t, &a, 1) >= 1 && u32_arg(a, &c->consensus_method);
}

/* One preamble item; unknown keywords are ignored (dir-spec 1.2). */
static bool preamble_item(struct cons_state *s, const struct netdoc_tok *t)
{
	struct consensus *c = s->c;
	struct netdoc_span kw = t->kw;
	unsigned *seen = &s->seen;

	if (netdoc_span_eq(kw, "vote-status"))
		return once(seen, P_VOTE_STATUS) && vote_status_item(t);
	if (netdoc_span_eq(kw, "consensus-method"))
		return once(seen, P_METHOD) && method_item(c, t);
	if (netdoc_span_eq(kw, "valid-after"))
		return once(seen, P_VALID_AFTER) && time_item(t, &c->valid_after);
	if (netdoc_span_eq(kw, "fresh-until"))
		return once(seen, P_FRESH_UNTIL) && time_item(t, &c->fresh_until);
	if (netdoc_span_eq(kw, "valid-until"))
		return once(seen, P_VALID_UNTIL) && time_item(t, &c->valid_until);
	if (netdoc_span_eq(kw, "voting-delay"))
		return once(seen, P_VOTING_DELAY) && voting_delay_item(c, t);
	if (netdoc_span_eq(kw, "known-flags")) {
		c->known_flags = flags_parse(t->args);
		return once(seen, P_KNOWN_FLAGS);
	}
	if (netdoc_span_eq(kw, "params"))
		return once(seen, P_PARAMS) && params_item(c, t);
	if (netdoc_span_eq(kw, "shared-rand-previous-value"))
		return once(seen, P_SRV_PREV) && srv_item(t, c->srv_previous, &c->has_srv_previous);
	if (netdoc_span_eq(kw, "shared-rand-current-value"))
		return once(seen, P_SRV_CUR) && srv_item(t, c->srv_current, &c->has_srv_current);
	if (netdoc_span_eq(kw, "recommended-client-protocols"))
		return once(seen, P_REC_CLIENT) && protover_parse(t->args, &c->recommended_client);
	if (netdoc_span_eq(kw, "required-client-protocols"))
		return once(seen, P_REQ_CLIENT) && protover_parse(t->args, &c->required_client);
	if (netdoc_span_eq(kw, "recommended-relay-protocols"))
		return once(seen, P_REC_RELAY) && protover_parse(t->args, &c->recommended_relay);
	if (netdoc_span_eq(kw, "required-relay-protocols"))
		return once(seen, P_REQ_RELAY) && protover_parse(t->args, &c->required_relay);
	if (netdoc_span_eq(kw, "client-versions"))
		return once(seen, P_CLIENT_VERSIONS);
	if (netdoc_span_eq(kw, "server-versions"))
		return once(seen, P_SERVER_VERSIONS);
	return true;
}

static bool copy_nickname(char *dst, size_t cap, struct netdoc_span s)
{
	if (s.len == 0 || s.len >= cap)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char ch = s.p[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-'))
			return false;
	}
	memcpy(dst, s.p, s.len);
	dst[s.len] = '\0';
	return true;
}

static bool port_arg(struct netdoc_span a, uint16_t *out)
{
	uint64_t v;

	if (!netdoc_parse_u64(a, 65535, &v))
		return false;
	*out = (uint16_t)v;
	return true;
}

/* "dir-source" nickname identity address IP dirport orport */
static bool dir_source_item(struct consensus *c, const struct netdoc_tok *t)
{
	struct netdoc_span a[6];
	struct consensus_authority *au;

	if (c->n_authorities == CONSENSUS_MAX_AUTHORITIES || netdoc_args(t, a, 6) < 6)
		return false;
	au = &c->authorities[c->n_authorities++];
	return copy_nickname(au->nickname, sizeof(au->nickname), a[0]) &&
	       netdoc_parse_hex20(a[1], au->identity) && netdoc_parse_ipv4(a[3], &au->ipv4) &&
	       port_arg(a[4], &au->dir_port) && port_arg(a[5], &au->or_port);
}

/* "r" nickname identity YYYY-MM-DD HH:MM:SS IP ORPort DirPort (3.9.2: no
 * descriptor digest in the microdesc flavour). Entries must be sorted by
 * identity, strictly (3.4.1), which consensus_find_router relies on. */
static bool r_item(struct consensus *c, const struct netdoc_tok *t)
{
	struct netdoc_span a[7];
	struct consensus_router *r = &c->routers[c->n_routers];

	if (netdoc_args(t, a, 7) < 7)
		return false;
	if (!copy_nickname(r->nickname, sizeof(r->nickname), a[0]) ||
	    !netdoc_parse_b64_exact(a[1], r->identity, SHA1_LEN) ||
	    !netdoc_parse_time(a[2], a[3], &r->published) || !netdoc_parse_ipv4(a[4], &r->ipv4) ||
	    !port_arg(a[5], &r->or_port) || !port_arg(a[6], &r->dir_port))
		return false;
	if (c->n_routers > 0 && memcmp(c->routers[c->n_routers - 1].identity, r->identity,
				       SHA1_LEN) >= 0)
		return false;
	c->n_routers++;
	return true;
}

/* "w" Bandwidth=N [Measured=N] [Unmeasured=1] */
static bool w_item(struct consensus_router *r, const struct netdoc_tok *t)
{
	struct netdoc_span rest = t->args, a;
	uint64_t v;

	while (netdoc_arg_next(&rest, &a)) {
		if (a.len > 10 && memcmp(a.p, "Bandwidth=", 10) == 0) {
			struct netdoc_span n = { a.p + 10, a.len - 10 };
			if (!netdoc_parse_u64(n, UINT32_MAX, &v))
				return false;
			r->bandwidth = (uint32_t)v;
		} else if (netdoc_span_eq(a, "Unmeasured=1")) {
			r->bw_unmeasured = true;
		}
	}
	return true;
}

/* "a" [v6]:port; only the first IPv6 address is used (3.3). */
static bool a_item(struct consensus_router *r, const struct netdoc_tok *t, unsigned *seen)
{
	struct netdoc_span a;

	if (netdoc_args(t, &a, 1) < 1)
		return false;
	if (a.p[0] != '[' || (*seen & R_A))
		return true;
	*seen |= R_A;
	r->has_ipv6 = netdoc_parse_ipv6_port(a, r->ipv6, &r->ipv6_port);
	return r->has_ipv6;
}

static bool router_item(struct cons_state *s, const struct netdoc_tok *t)
{
	struct consensus_router *r = &s->c->routers[s->c->n_routers - 1];
	struct netdoc_span a;

	if (netdoc_span_eq(t->kw, "m"))
		return once(&s->r_seen, R_M) && netdoc_args(t, &a, 1) >= 1 &&
		       netdoc_parse_b64_exact(a, r->md_digest, SHA256_LEN);
	if (netdoc_span_eq(t->kw, "s")) {
		r->flags = flags_parse(t->args);
		return once(&s->r_seen, R_S);
	}
	if (netdoc_span_eq(t->kw, "v")) {
		r->version = t->args;
		return once(&s->r_seen, R_V);
	}
	if (netdoc_span_eq(t->kw, "pr"))
		return once(&s->r_seen, R_PR) && protover_parse(t->args, &r->protos);
	if (netdoc_span_eq(t->kw, "w"))
		return once(&s->r_seen, R_W) && w_item(r, t);
	if (netdoc_span_eq(t->kw, "a"))
		return a_item(r, t, &s->r_seen);
	return true;
}

/* Close the current router entry (if any): its required lines are there. */
static enum parse_result router_end(struct cons_state *s, unsigned line, struct netdoc_err *err)
{
	if (s->sec == SEC_ROUTERS && (s->r_seen & R_REQUIRED) != R_REQUIRED)
		return netdoc_fail(err, "router entry lacks its m or s line", line);
	s->r_seen = 0;
	return PARSE_OK;
}

static const struct {
	const char *name;
	size_t off;
} weight_fields[] = {
#define W(f, n) { n, offsetof(struct consensus_bw_weights, f) }
	W(wbd, "Wbd"), W(wbe, "Wbe"), W(wbg, "Wbg"), W(wbm, "Wbm"), W(wdb, "Wdb"),
	W(web, "Web"), W(wed, "Wed"), W(wee, "Wee"), W(weg, "Weg"), W(wem, "Wem"),
	W(wgb, "Wgb"), W(wgd, "Wgd"), W(wgg, "Wgg"), W(wgm, "Wgm"), W(wmb, "Wmb"),
	W(wmd, "Wmd"), W(wme, "Wme"), W(wmg, "Wmg"), W(wmm, "Wmm"),
#undef W
};

static bool weights_item(struct consensus_bw_weights *w, const struct netdoc_tok *t)
{
	struct netdoc_span rest = t->args, a;

	while (netdoc_arg_next(&rest, &a)) {
		const char *eq = memchr(a.p, '=', a.len);
		int32_t v;
		if (!eq)
			return false;
		struct netdoc_span name = { a.p, (size_t)(eq - a.p) };
		struct netdoc_span val = { eq + 1, (size_t)(a.p + a.len - eq - 1) };
		if (!netdoc_parse_i32(val, &v))
			return false;
		for (size_t i = 0; i < sizeof(weight_fields) / sizeof(weight_fields[0]); i++)
			if (netdoc_span_eq(name, weight_fields[i].name))
				memcpy((char *)w + weight_fields[i].off, &v, sizeof(v));
	}
	w->present = true;
	return true;
}

/* "directory-signature" [alg] identity signing-key-digest + SIGNATURE */
static bool sig_item(struct consensus *c, const struct netdoc_tok *t)
{
	struct netdoc_span a[3];
	size_t n = netdoc_args(t, a, 3);
	struct consensus_sig *sg;
	ssize_t len;

	if (n < 2 || c->n_sigs == CONSENSUS_MAX_SIGNATURES)
		return false;
	sg = &c->sigs[c->n_sigs];
	sg->alg = CONSENSUS_SIG_SHA1;
	if (n >= 3) {
		/* 3.4.1: entries with an unrecognized Algorithm MUST be ignored. */
		if (netdoc_span_eq(a[0], "sha256"))
			sg->alg = CONSENSUS_SIG_SHA256;
		else if (!netdoc_span_eq(a[0], "sha1"))
			return true;
		a[0] = a[1];
		a[1] = a[2];
	}
	len = netdoc_object_decode(t, "SIGNATURE", sg->sig, sizeof(sg->sig));
	if (len <= 0 || !netdoc_parse_hex20(a[0], sg->identity) ||
	    !netdoc_parse_hex20(a[1], sg->signing_key_digest))
		return false;
	sg->sig_len = (uint16_t)len;
	sg->line = t->line;
	c->n_sigs++;
	return true;
}

/* 3.4.1: all signatures cover the document from its start through the
 * space after the FIRST "directory-signature". */
static bool signed_portion(struct consensus *c, const struct netdoc_tok *t)
{
	size_t kwlen = strlen("directory-signature");

	if (t->start + kwlen >= t->line_end || t->start[kwlen] != ' ')
		return false;
	c->signed_len = (size_t)(t->start - c->doc) + kwlen + 1;
	crypto_sha256(c->doc, c->signed_len, c->digest_sha256);
	crypto_sha1(c->doc, c->signed_len, c->digest_sha1);
	return true;
}

static enum parse_result enter_signatures(struct cons_state *s, const struct netdoc_tok *t,
					  struct netdoc_err *err)
{
	if (!s->have_footer)
		return netdoc_fail(err, "directory-signature before directory-footer", t->line);
	if (!signed_portion(s->c, t))
		return netdoc_fail(err, "bad directory-signature line", t->line);
	s->sec = SEC_SIGS;
	return PARSE_OK;
}

/* Items that change section: dir-source, r, directory-footer,
 * directory-signature. Return PARSE_NEED_MORE (never reached to the
 * caller) for "not a section change". */
static enum parse_result section_item(struct cons_state *s, const struct netdoc_tok *t,
				      struct netdoc_err *err)
{
	struct netdoc_span kw = t->kw;
	enum parse_result pr;

	if (netdoc_span_eq(kw, "dir-source") && s->sec <= SEC_AUTH) {
		if (s->sec == SEC_PREAMBLE && (s->seen & P_REQUIRED) != P_REQUIRED)
			return netdoc_fail(err, "preamble lacks a required item", t->line);
		if (s->sec == SEC_PREAMBLE && !(s->c->valid_after < s->c->fresh_until &&
						 s->c->fresh_until <= s->c->valid_until))
			return netdoc_fail(err, "validity times out of order", t->line);
		s->sec = SEC_AUTH;
		return dir_source_item(s->c, t) ? PARSE_OK
						: netdoc_fail(err, "bad dir-source line", t->line);
	}
	if (netdoc_span_eq(kw, "r") && (s->sec == SEC_AUTH || s->sec == SEC_ROUTERS)) {
		if ((pr = router_end(s, t->line, err)) != PARSE_OK)
			return pr;
		s->sec = SEC_ROUTERS;
		if (s->c->n_routers == s->max_routers || !r_item(s->c, t))
			return netdoc_fail(err, "bad or unsorted r line", t->line);
		return PARSE_OK;
	}
	if (netdoc_span_eq(kw, "directory-footer") && (s->sec == SEC_AUTH || s->sec == SEC_ROUTERS)) {
		if ((pr = router_end(s, t->line, err)) != PARSE_OK)
			return pr;
		s->sec = SEC_FOOTER;
		s->have_footer = true;
		return PARSE_OK;
	}
	if (netdoc_span_eq(kw, "directory-signature") && s->sec < SEC_SIGS)
		return enter_signatures(s, t, err);
	return PARSE_NEED_MORE;
}

static enum parse_result cons_item(struct cons_state *s, const struct netdoc_tok *t,
				   struct netdoc_err *err)
{
	enum parse_result pr = section_item(s, t, err);
	bool ok = true;

	if (pr != PARSE_NEED_MORE) {
		if (pr == PARSE_OK && s->sec == SEC_SIGS && !sig_item(s->c, t))
			return netdoc_fail(err, "bad directory-signature", t->line);
		return pr;
	}
	if (netdoc_span_eq(t->kw, "network-status-version"))
		return netdoc_fail(err, "repeated network-status-version", t->line);
	switch (s->sec) {
	case SEC_PREAMBLE:
		if (netdoc_span_eq(t->kw, "r") || netdoc_span_eq(t->kw, "directory-footer"))
			return netdoc_fail(err, "consensus lacks dir-source entries", t->line);
		ok = preamble_item(s, t);
		break;
	case SEC_AUTH:
		ok = !netdoc_span_eq(t->kw, "dir-source");
		break;
	case SEC_ROUTERS:
		ok = router_item(s, t);
		break;
	case SEC_FOOTER:
		if (netdoc_span_eq(t->kw, "bandwidth-weights"))
			ok = once(&s->seen, P_BW_WEIGHTS) && weights_item(&s->c->weights, t);
		else
			ok = !netdoc_span_eq(t->kw, "r") && !netdoc_span_eq(t->kw, "dir-source") &&
			     !netdoc_span_eq(t->kw, "directory-footer");
		break;
	case SEC_SIGS:
		if (!netdoc_span_eq(t->kw, "directory-signature"))
			return netdoc_fail(err, "item after the signatures", t->line);
		ok = sig_item(s->c, t);
		break;
	}
	if (!ok)
		return netdoc_fail(err, s->sec == SEC_SIGS ? "bad directory-signature"
							    : "bad, misplaced or repeated item",
				   t->line);
	return PARSE_OK;
}

/* Upper bound on router entries: lines starting with "r ". */
static size_t count_routers(const char *doc, size_t len)
{
	size_t n = 0;
	const char *p = doc, *e = doc + len;

	while (p < e && (p = memmem(p, (size_t)(e - p), "\nr ", 3)) != NULL) {
		n++;
		p += 3;
	}
	return n;
}

static enum parse_result cons_first(struct netdoc_reader *r, struct netdoc_err *err)
{
	struct netdoc_tok t;
	struct netdoc_span a[2];
	enum parse_result pr = netdoc_next(r, &t, err);

	if (pr != PARSE_OK)
		return pr;
	if (!netdoc_span_eq(t.kw, "network-status-version") || netdoc_args(&t, a, 2) < 2 ||
	    !netdoc_span_eq(a[0], "3") || !netdoc_span_eq(a[1], "microdesc"))
		return netdoc_fail(err, "not a microdesc consensus (network-status-version 3 microdesc)",
				   t.line);
	return PARSE_OK;
}

static enum parse_result cons_body(struct cons_state *s, struct netdoc_err *err)
{
	struct netdoc_reader r;
	struct netdoc_tok t;
	enum parse_result pr;

	netdoc_reader_init(&r, s->c->doc, s->c->doc_len);
	if ((pr = cons_first(&r, err)) != PARSE_OK)
		return pr;
	for (;;) {
		if (s->sec == SEC_SIGS && netdoc_at_end(&r))
			return PARSE_OK;
		pr = netdoc_next(&r, &t, err);
		if (pr == PARSE_NEED_MORE)
			err->reason = "truncated consensus";
		if (pr != PARSE_OK)
			return pr;
		if ((pr = cons_item(s, &t, err)) != PARSE_OK)
			return pr;
	}
}

enum parse_result consensus_parse(const char *doc, size_t len, struct consensus **out,
				  struct netdoc_err *err)
{
	struct cons_state s = { 0 };
	struct consensus *c = calloc(1, sizeof(*c));
	enum parse_result pr;

	if (!c || !(c->doc = malloc(len + 1)))
		abort(); /* control-plane allocation: OOM aborts (STYLE.md) */
	memcpy(c->doc, doc, len);
	c->doc[len] = '\0';
	c->doc_len = len;
	memset(&c->weights, 0xff, sizeof(c->weights)); /* every weight -1 */
	c->weights.present = false;
	s.c = c;
	s.max_routers = count_routers(doc, len);
	c->routers = calloc(s.max_routers ? s.max_routers : 1, sizeof(*c->routers));
	if (!c->routers)
		abort();
	pr = cons_body(&s, err);
	if (pr != PARSE_OK) {
		consensus_free(c);
		return pr;
	}
	*out = c;
	return PARSE_OK;
}

void consensus_free(struct consensus *c)
{
	if (!c)
		return;
	free(c->routers);
	free(c->params);
	free(c->doc);
	free(c);
}

int32_t consensus_param(const struct consensus *c, const char *name, int32_t def, int32_t min,
			int32_t max)
{
	struct consensus_param key = { { name, strlen(name) }, 0 };
	const struct consensus_param *p = NULL;

	if (c->n_params > 0)
		p = bsearch(&key, c->params, c->n_params, sizeof(*c->params), param_cmp);

	if (!p)
		return def;
	return p->value < min ? min : p->value > max ? max : p->value;
}

static int router_cmp(const void *key, const void *elem)
{
	return memcmp(key, ((const struct consensus_router *)elem)->identity, SHA1_LEN);
}

const struct consensus_router *consensus_find_router(const struct consensus *c,
						     const uint8_t identity[SHA1_LEN])
{
	if (c->n_routers == 0)
		return NULL;
	return bsearch(identity, c->routers, c->n_routers, sizeof(*c->routers), router_cmp);
}

enum consensus_liveness consensus_liveness(const struct consensus *c, time_t now)
{
	if (now < c->valid_after - CONSENSUS_EARLY_SKEW_SECS)
		return CONSENSUS_NOT_YET_VALID;
	if (now <= c->valid_until)
		return CONSENSUS_LIVE;
	if (now - c->valid_until < CONSENSUS_REASONABLY_LIVE_SECS)
		return CONSENSUS_REASONABLY_LIVE;
	return CONSENSUS_TOO_OLD;
}

static bool is_trusted(const uint8_t id[SHA1_LEN], const uint8_t (*trusted)[SHA1_LEN], size_t n,
		       size_t *idx)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(trusted[i], id, SHA1_LEN) == 0) {
			*idx = i;
			return true;
		}
	return false;
}

/* The certificate for (identity, signing key digest), live or not; NULL if
 * we have none. */
static const struct authcert *find_cert(const struct authcert *const *certs, size_t n,
					const struct consensus_sig *sg)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(certs[i]->identity_digest, sg->identity, SHA1_LEN) == 0 &&
		    memcmp(certs[i]->signing_key_digest, sg->signing_key_digest, SHA1_LEN) == 0)
			return certs[i];
	return NULL;
}

/* Check one signature; true when it is a good one by a live cert. Sets
 * *missing when the only problem is that we lack the certificate. */
static bool sig_good(const struct consensus *c, const struct consensus_sig *sg,
		     const struct authcert *const *certs, size_t ncerts, time_t now, bool *missing)
{
	const struct authcert *ac = find_cert(certs, ncerts, sg);

	*missing = false;
	if (!ac) {
		*missing = true;
		return false;
	}
	if (!authcert_is_live(ac, now))
		return false;
	if (sg->alg == CONSENSUS_SIG_SHA256)
		return crypto_rsa_verify_digest(ac->signing_key, sg->sig, sg->sig_len,
						c->digest_sha256, SHA256_LEN);
	return crypto_rsa_verify_digest(ac->signing_key, sg->sig, sg->sig_len, c->digest_sha1,
					SHA1_LEN);
}

enum parse_result consensus_verify(const struct consensus *c,
				   const struct authcert *const *certs, size_t ncerts,
				   const uint8_t (*trusted_ids)[SHA1_LEN], size_t ntrusted,
				   time_t now, char *err, size_t errlen)
{
	bool counted[64] = { false }, pending[64] = { false };
	size_t good = 0, missing = 0, idx;
	enum consensus_liveness live = consensus_liveness(c, now);

	if (ntrusted == 0 || ntrusted > 64) {
		snprintf(err, errlen, "need 1..64 trusted authorities, got %zu", ntrusted);
		return PARSE_INVALID;
	}
	if (live == CONSENSUS_NOT_YET_VALID || live == CONSENSUS_TOO_OLD) {
		snprintf(err, errlen, "consensus is %s",
			 live == CONSENSUS_TOO_OLD ? "expired more than 24 hours ago" : "not yet valid");
		return PARSE_INVALID;
	}
	for (size_t i = 0; i < c->n_sigs; i++) {
		const struct consensus_sig *sg = &c->sigs[i];
		bool miss;
		/* 3.4.1: only one signature per authority counts. */
		if (!is_trusted(sg->identity, trusted_ids, ntrusted, &idx) || counted[idx])
			continue;
		if (sig_good(c, sg, certs, ncerts, now, &miss)) {
			counted[idx] = true;
			good++;
		} else if (miss) {
			pending[idx] = true;
		}
	}
	for (size_t i = 0; i < ntrusted; i++)
		missing += pending[i] && !counted[i];
	if (2 * good > ntrusted) {
		snprintf(err, errlen, "%zu of %zu trusted authorities signed", good, ntrusted);
		return PARSE_OK;
	}
	snprintf(err, errlen, "only %zu of %zu trusted authorities signed validly (%zu certificates missing)",
		 good, ntrusted, missing);
	return 2 * (good + missing) > ntrusted ? PARSE_NEED_MORE : PARSE_INVALID;
}
