/* Nodes: the consensus x microdescriptor view, family and subnet relations,
 * and ExcludeNodes-style node sets. See nodes.h. Not for choosing relays. */
#include "app/nodes.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/log.h"

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (!p)
		abort(); /* control plane: OOM aborts (STYLE.md) */
	return p;
}

static int cmp_md_digest(const void *a, const void *b)
{
	const struct microdesc *x = *(const struct microdesc *const *)a;
	const struct microdesc *y = *(const struct microdesc *const *)b;

	return memcmp(x->digest, y->digest, SHA256_LEN);
}

static int cmp_md_key(const void *key, const void *elt)
{
	const struct microdesc *y = *(const struct microdesc *const *)elt;

	return memcmp(key, y->digest, SHA256_LEN);
}

/* Set each node's md by digest (sorted copy of the pointer array). */
static void join_microdescs(struct nodelist *nl, const struct microdesc *const *mds, size_t nmds)
{
	const struct microdesc **v = xcalloc(nmds, sizeof(*v));
	size_t m = 0;

	for (size_t i = 0; i < nmds; i++)
		if (mds[i])
			v[m++] = mds[i];
	qsort(v, m, sizeof(*v), cmp_md_digest);
	for (size_t i = 0; i < nl->n; i++) {
		const struct microdesc **hit =
			m ? bsearch(nl->c->routers[i].md_digest, v, m, sizeof(*v), cmp_md_key) : NULL;

		nl->nodes[i].md = hit ? *hit : NULL;
	}
	free(v);
}

/* ---- Families ------------------------------------------------------------ */

struct u32vec {
	uint32_t *v;
	size_t n, cap;
};

static void u32vec_push(struct u32vec *a, uint32_t x)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 16;
		a->v = realloc(a->v, a->cap * sizeof(*a->v));
		if (!a->v)
			abort();
	}
	a->v[a->n++] = x;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool u32_in(const uint32_t *v, size_t n, uint32_t x)
{
	return n && bsearch(&x, v, n, sizeof(*v), cmp_u32) != NULL;
}

/* Node indexes sorted by nickname (case-insensitive) for family lookups. */
static const struct nodelist *nick_sort_nl;
static int cmp_nick_idx(const void *a, const void *b)
{
	return strcasecmp(nick_sort_nl->nodes[*(const uint32_t *)a].rs->nickname,
			  nick_sort_nl->nodes[*(const uint32_t *)b].rs->nickname);
}

/* Append to out the indexes one family token (borrowed) names. */
static void family_token_resolve(const struct nodelist *nl, const uint32_t *by_nick,
				 const char *t, size_t len, struct u32vec *out)
{
	if (len >= 41 && t[0] == '$') {
		uint8_t id[SHA1_LEN];
		const struct consensus_router *r;

		/* dir-spec 2.1.1: "$" hexdigest, maybe followed by "~nick"/"=nick". */
		if (len > 41 && t[41] != '~' && t[41] != '=')
			return;
		if (base16_decode(id, sizeof(id), t + 1, 40) != SHA1_LEN)
			return;
		r = consensus_find_router(nl->c, id);
		if (r)
			u32vec_push(out, (uint32_t)(r - nl->c->routers));
		return;
	}
	if (len == 0 || len > CONSENSUS_MAX_NICKNAME)
		return;
	char nick[CONSENSUS_MAX_NICKNAME + 1];
	size_t lo = 0, hi = nl->n;

	memcpy(nick, t, len);
	nick[len] = '\0';
	while (lo < hi) { /* lower bound */
		size_t mid = lo + (hi - lo) / 2;

		if (strcasecmp(nl->nodes[by_nick[mid]].rs->nickname, nick) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < nl->n && strcasecmp(nl->nodes[by_nick[lo]].rs->nickname, nick) == 0; lo++)
		u32vec_push(out, by_nick[lo]);
}

/* Fill decl[i] with the sorted indexes node i's family line names. */
static void family_declared(const struct nodelist *nl, struct u32vec *decl)
{
	uint32_t *by_nick = xcalloc(nl->n, sizeof(*by_nick));

	for (size_t i = 0; i < nl->n; i++)
		by_nick[i] = (uint32_t)i;
	nick_sort_nl = nl; /* coordinator thread only: a static is fine here */
	qsort(by_nick, nl->n, sizeof(*by_nick), cmp_nick_idx);
	for (size_t i = 0; i < nl->n; i++) {
		const struct microdesc *md = nl->nodes[i].md;
		const char *p, *end;

		if (!md || md->family.len == 0)
			continue;
		p = md->family.p;
		end = p + md->family.len;
		while (p < end) {
			const char *s = p;

			while (p < end && *p != ' ' && *p != '\t')
				p++;
			family_token_resolve(nl, by_nick, s, (size_t)(p - s), &decl[i]);
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
		}
		qsort(decl[i].v, decl[i].n, sizeof(uint32_t), cmp_u32);
	}
	free(by_nick);
}

/* path-spec 2.2: two routers are one family only if each lists the other. */
static void family_build(struct nodelist *nl)
{
	struct u32vec *decl = xcalloc(nl->n, sizeof(*decl));
	struct u32vec fam = { 0 };

	family_declared(nl, decl);
	for (size_t i = 0; i < nl->n; i++) {
		nl->nodes[i].fam_off = (uint32_t)fam.n;
		for (size_t k = 0; k < decl[i].n; k++) {
			uint32_t j = decl[i].v[k];

			if (j == i || (k > 0 && decl[i].v[k - 1] == j))
				continue;
			if (u32_in(decl[j].v, decl[j].n, (uint32_t)i))
				u32vec_push(&fam, j);
		}
		nl->nodes[i].fam_len = (uint32_t)(fam.n - nl->nodes[i].fam_off);
	}
	for (size_t i = 0; i < nl->n; i++)
		free(decl[i].v);
	free(decl);
	nl->fam = fam.v;
	nl->n_fam = fam.n;
}

struct nodelist *nodelist_new(const struct consensus *c, const struct microdesc *const *mds,
			      size_t nmds)
{
	struct nodelist *nl = xcalloc(1, sizeof(*nl));

	nl->c = c;
	nl->n = c->n_routers;
	nl->nodes = xcalloc(nl->n, sizeof(*nl->nodes));
	for (size_t i = 0; i < nl->n; i++) {
		nl->nodes[i].rs = &c->routers[i];
		nl->nodes[i].idx = (uint32_t)i;
	}
	join_microdescs(nl, mds, nmds);
	family_build(nl);
	return nl;
}

void nodelist_free(struct nodelist *nl)
{
	if (!nl)
		return;
	free(nl->fam);
	free(nl->nodes);
	free(nl);
}

const struct node *nodelist_find(const struct nodelist *nl, const uint8_t id[SHA1_LEN])
{
	const struct consensus_router *r = consensus_find_router(nl->c, id);

	return r ? &nl->nodes[r - nl->c->routers] : NULL;
}

bool node_same_family(const struct nodelist *nl, const struct node *a, const struct node *b)
{
	/* No family lines at all: nl->fam is NULL, and NULL + 0 is undefined. */
	return a->fam_len > 0 && u32_in(nl->fam + a->fam_off, a->fam_len, b->idx);
}

bool node_same_subnet(const struct node *a, const struct node *b)
{
	if ((a->rs->ipv4 >> 16) == (b->rs->ipv4 >> 16))
		return true;
	return a->rs->has_ipv6 && b->rs->has_ipv6 && memcmp(a->rs->ipv6, b->rs->ipv6, 4) == 0;
}

bool node_conflicts(const struct nodelist *nl, const struct node *a, const struct node *b,
		    bool distinct_subnets)
{
	return a == b || node_same_family(nl, a, b) || (distinct_subnets && node_same_subnet(a, b));
}

bool node_allows_exit_port(const struct node *n, uint16_t port)
{
	const struct policy_summary *p;

	if (!n->md)
		return false;
	p = &n->md->p;
	if (port != 0)
		return policy_summary_allows(p, port);
	/* Any port: an accept list with entries, or a reject list that leaves
	 * some port open (path-spec 2.2: "not equivalent to reject *:*"). */
	if (p->accept)
		return p->n > 0;
	return !(p->n == 1 && p->ranges[0].lo <= 1 && p->ranges[0].hi == 65535);
}

/* ---- Node sets (ExcludeNodes, ExcludeExitNodes, ExitNodes) ------------------ */

struct nodeset_net {
	uint32_t addr, mask; /* host order */
};

struct nodeset {
	uint8_t (*ids)[SHA1_LEN];
	size_t n_ids;
	char (*nicks)[CONSENSUS_MAX_NICKNAME + 1];
	size_t n_nicks;
	struct nodeset_net *nets;
	size_t n_nets;
};

/* Parse "1.2.3.4", "1.2.3.0/24" or "1.2.*" (tor's address patterns). */
static bool nodeset_parse_net(const char *s, struct nodeset_net *out)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned bits = 32, octets[4] = { 0 }, n = 0;
	struct in_addr a;

	if (alen == 0 || alen >= sizeof(buf))
		return false;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (slash) {
		char *e;
		unsigned long b = strtoul(slash + 1, &e, 10);

		if (*e || e == slash + 1 || b > 32)
			return false;
		bits = (unsigned)b;
	}
	if (!slash && strchr(buf, '*')) {
		/* "1.2.*": the literal octets before the star. */
		for (char *p = buf; *p && n < 4; n++) {
			char *e;

			if (*p == '*')
				break;
			octets[n] = (unsigned)strtoul(p, &e, 10);
			if (e == p || *e != '.' || octets[n] > 255)
				return false;
			p = e + 1;
		}
		out->mask = n ? ~0u << (32 - 8 * n) : 0;
		out->addr = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) &
			    out->mask;
		return true;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	out->mask = bits ? ~0u << (32 - bits) : 0;
	out->addr = ntohl(a.s_addr) & out->mask;
	return true;
}

static bool is_nickname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONSENSUS_MAX_NICKNAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* Add one item (borrowed) to s; false when it is not usable. */
static bool nodeset_add(struct nodeset *s, const char *item)
{
	const char *h = item[0] == '$' ? item + 1 : item;
	size_t hl = strcspn(h, "~=");

	if (hl == 40 && base16_decode(s->ids[s->n_ids], SHA1_LEN, h, 40) == SHA1_LEN) {
		s->n_ids++;
		return true;
	}
	if (item[0] == '{') {
		log_warn("nodes: \"%s\": country codes need GeoIP, which onionring does not have; ignored",
			 item);
		return false;
	}
	if (nodeset_parse_net(item, &s->nets[s->n_nets])) {
		s->n_nets++;
		return true;
	}
	if (is_nickname(item)) {
		memcpy(s->nicks[s->n_nicks++], item, strlen(item) + 1);
		return true;
	}
	log_warn("nodes: \"%s\" is not a fingerprint, nickname or IPv4 address pattern; ignored", item);
	return false;
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, SHA1_LEN);
}

struct nodeset *nodeset_new(const struct config_lines *items)
{
	struct nodeset *s = xcalloc(1, sizeof(*s));
	size_t n = items ? items->n : 0;

	s->ids = xcalloc(n, sizeof(*s->ids));
	s->nicks = xcalloc(n, sizeof(*s->nicks));
	s->nets = xcalloc(n, sizeof(*s->nets));
	for (size_t i = 0; i < n; i++)
		nodeset_add(s, items->v[i]);
	qsort(s->ids, s->n_ids, SHA1_LEN, cmp_id);
	return s;
}

void nodeset_free(struct nodeset *s)
{
	if (!s)
		return;
	free(s->ids);
	free(s->nicks);
	free(s->nets);
	free(s);
}

bool nodeset_is_empty(const struct nodeset *s)
{
	return !s || (s->n_ids == 0 && s->n_nicks == 0 && s->n_nets == 0);
}

bool nodeset_contains(const struct nodeset *s, const struct node *n)
{
	if (nodeset_is_empty(s))
		return false;
	if (s->n_ids && bsearch(n->rs->identity, s->ids, s->n_ids, SHA1_LEN, cmp_id))
		return true;
	for (size_t i = 0; i < s->n_nets; i++)
		if ((n->rs->ipv4 & s->nets[i].mask) == s->nets[i].addr)
			return true;
	for (size_t i = 0; i < s->n_nicks; i++)
		if (strcasecmp(s->nicks[i], n->rs->nickname) == 0)
			return true;
	return false;
}
