/* Synthetic consensus for tests (see synthnet.h). Deterministic: a seeded
 * splitmix64 drives every choice, so a failing run can be reproduced. */
#include "test/unit/synthnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

static uint64_t sm_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double sm_unit(uint64_t *s)
{
	return (double)(sm_next(s) >> 11) / 9007199254740992.0;
}

static double sm_normal(uint64_t *s)
{
	double u = sm_unit(s), v = sm_unit(s);

	return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

/* Policy summaries (ascending ranges), shared by the relays using them. */
static const struct port_range P_WEB[] = { { 80, 80 }, { 443, 443 } };
static const struct port_range P_REDUCED[] = { { 20, 23 }, { 43, 43 }, { 53, 53 }, { 79, 81 },
	{ 88, 88 }, { 110, 110 }, { 143, 143 }, { 443, 443 }, { 993, 995 }, { 5222, 5223 },
	{ 6660, 6669 }, { 8080, 8080 } };
static const struct port_range P_REJECT[] = { { 25, 25 }, { 119, 119 }, { 135, 139 },
	{ 445, 445 }, { 563, 563 }, { 6881, 6999 } };
static const struct port_range P_ONLY22[] = { { 22, 22 } };
static const struct port_range P_ALL[] = { { 1, 65535 } };
static const struct port_range P_443[] = { { 443, 443 } };

static void set_policy(struct microdesc *md, struct synth_relay *t, bool accept,
		       const struct port_range *r, uint16_t n, bool a443, bool any)
{
	md->p.accept = accept;
	md->p.ranges = r;
	md->p.n = n;
	t->allows_443 = a443;
	t->allows_any = any;
}

#define SETP(md, t, acc, arr, a443, any) \
	set_policy(md, t, acc, arr, (uint16_t)(sizeof(arr) / sizeof(arr[0])), a443, any)

static void pick_policy(uint64_t *rng, struct consensus_router *r, struct microdesc *md,
			struct synth_relay *t)
{
	double u = sm_unit(rng);

	if (r->flags & RFLAG_EXIT) {
		if (u < 0.35)
			SETP(md, t, true, P_REDUCED, true, true);
		else if (u < 0.65)
			SETP(md, t, false, P_REJECT, true, true);
		else if (u < 0.9)
			SETP(md, t, true, P_WEB, true, true);
		else
			SETP(md, t, true, P_ONLY22, false, true);
	} else if (u < 0.05) {
		SETP(md, t, true, P_443, true, true); /* narrow policy, no Exit flag */
	} else if (u < 0.12) {
		SETP(md, t, false, P_ALL, false, false);
	} else {
		set_policy(md, t, true, NULL, 0, false, false); /* no "p" line */
	}
}

static uint32_t pick_flags(uint64_t *rng)
{
	uint32_t f = 0;

	if (sm_unit(rng) < 0.98)
		f |= RFLAG_RUNNING | RFLAG_VALID;
	if (sm_unit(rng) < 0.9)
		f |= RFLAG_FAST;
	if (sm_unit(rng) < 0.75)
		f |= RFLAG_STABLE;
	if (sm_unit(rng) < 0.95)
		f |= RFLAG_V2DIR;
	if ((f & RFLAG_FAST) && (f & RFLAG_STABLE) && sm_unit(rng) < 0.3)
		f |= RFLAG_GUARD;
	if (sm_unit(rng) < 0.15)
		f |= RFLAG_EXIT;
	if ((f & RFLAG_EXIT) && sm_unit(rng) < 0.03)
		f |= RFLAG_BADEXIT;
	if (sm_unit(rng) < 0.005)
		f |= RFLAG_MIDDLEONLY;
	return f;
}

static int cmp_router(const void *a, const void *b)
{
	return memcmp(((const struct consensus_router *)a)->identity,
		      ((const struct consensus_router *)b)->identity, SHA1_LEN);
}

static void fill_router(uint64_t *rng, struct consensus_router *r, size_t i)
{
	double bw = exp(7.0 + 1.5 * sm_normal(rng));
	/* Many relays share a /16: the prefix index is skewed to small values. */
	uint32_t k = (uint32_t)(1500.0 * pow(sm_unit(rng), 3.0));

	snprintf(r->nickname, sizeof(r->nickname), "relay%05u", (unsigned)(i % 100000));
	r->flags = pick_flags(rng);
	if (r->flags & RFLAG_GUARD)
		bw *= 2.0;
	r->bandwidth = sm_unit(rng) < 0.01 ? 0 : (uint32_t)fmin(fmax(bw, 1.0), 1e6);
	r->ipv4 = ((uint32_t)((10 + k * 37u) & 0xffffu) << 16) | (uint32_t)(sm_next(rng) & 0xffffu);
	r->or_port = 9001;
	for (size_t b = 0; b < SHA1_LEN; b++)
		r->identity[b] = (uint8_t)sm_next(rng);
}

/* Append one family entry naming relay j, in one of dir-spec's forms. */
static void family_append(uint64_t *rng, char *buf, size_t cap, const struct consensus_router *rj)
{
	char hex[2 * SHA1_LEN + 1];
	size_t len = strlen(buf);
	double u = sm_unit(rng);

	base16_encode(hex, sizeof(hex), rj->identity, SHA1_LEN, true);
	if (u < 0.1)
		snprintf(buf + len, cap - len, "%s%s", len ? " " : "", rj->nickname);
	else if (u < 0.3)
		snprintf(buf + len, cap - len, "%s$%s~%s", len ? " " : "", hex, rj->nickname);
	else
		snprintf(buf + len, cap - len, "%s$%s", len ? " " : "", hex);
}

#define FAMILY_TEXT_CAP 1024

static void make_families(uint64_t *rng, struct synthnet *s, size_t n)
{
	int next = 0;

	for (size_t i = 0; i < n; i++) {
		size_t size = 2 + (size_t)(sm_next(rng) % 9), members[10], m = 0;

		if (s->truth[i].family >= 0 || sm_unit(rng) > 0.08)
			continue;
		members[m++] = i;
		for (int tries = 0; m < size && tries < 100; tries++) {
			size_t j = (size_t)(sm_next(rng) % n);
			bool dup = false;

			for (size_t q = 0; q < m; q++)
				dup |= members[q] == j;
			if (!dup && s->truth[j].family < 0)
				members[m++] = j;
		}
		for (size_t a = 0; a < m; a++) {
			s->truth[members[a]].family = next;
			for (size_t b = 0; b < m; b++)
				if (a != b)
					family_append(rng, s->family_text[members[a]], FAMILY_TEXT_CAP,
						      &s->c.routers[members[b]]);
		}
		next++;
	}
	/* One-sided claims (never mutual: the target lists nobody) and an
	 * unknown fingerprint: neither may make a family. */
	for (size_t i = 0; i < n; i++) {
		size_t j = (size_t)(sm_next(rng) % n);

		if (s->truth[i].family >= 0 && s->truth[j].family < 0 && sm_unit(rng) < 0.2)
			family_append(rng, s->family_text[i], FAMILY_TEXT_CAP, &s->c.routers[j]);
		if (s->truth[i].family >= 0 && sm_unit(rng) < 0.05)
			strcat(s->family_text[i], " $0123456789ABCDEF0123456789ABCDEF01234567");
	}
}

static void set_weights(struct consensus_bw_weights *w)
{
	/* Realistic magnitudes; every class weight non-zero and distinct so a
	 * mixed-up class shows in the frequencies. */
	*w = (struct consensus_bw_weights){
		.wgg = 5857, .wgm = 5857, .wgd = 2000, .wmg = 4143, .wmm = 10000, .wme = 1500,
		.wmd = 3000, .weg = 7000, .wem = 9000, .wee = 10000, .wed = 5000, .wgb = 10000,
		.wmb = 8000, .web = 10000, .wdb = 10000, .wbg = 4143, .wbm = 10000, .wbe = 0,
		.wbd = 0, .present = true,
	};
}

struct synthnet *synthnet_new(size_t n, uint64_t seed)
{
	struct synthnet *s = calloc(1, sizeof(*s));
	uint64_t rng = seed;

	s->c.routers = calloc(n, sizeof(*s->c.routers));
	s->c.n_routers = n;
	s->truth = calloc(n, sizeof(*s->truth));
	s->mds = calloc(n, sizeof(*s->mds));
	s->md_ptrs = calloc(n, sizeof(*s->md_ptrs));
	s->family_text = calloc(n, sizeof(*s->family_text));
	for (size_t i = 0; i < n; i++)
		fill_router(&rng, &s->c.routers[i], i);
	qsort(s->c.routers, n, sizeof(*s->c.routers), cmp_router);
	for (size_t i = 0; i < n; i++) {
		struct consensus_router *r = &s->c.routers[i];
		struct microdesc *md = &s->mds[i];

		s->truth[i].family = -1;
		s->family_text[i] = calloc(1, FAMILY_TEXT_CAP);
		for (size_t b = 0; b < SHA256_LEN; b++)
			md->digest[b] = r->md_digest[b] = (uint8_t)sm_next(&rng);
		pick_policy(&rng, r, md, &s->truth[i]);
		s->truth[i].has_md = sm_unit(&rng) >= 0.005;
		if (s->truth[i].has_md)
			s->md_ptrs[s->n_mds++] = md;
	}
	make_families(&rng, s, n);
	for (size_t i = 0; i < n; i++) {
		s->mds[i].family.p = s->family_text[i];
		s->mds[i].family.len = strlen(s->family_text[i]);
	}
	set_weights(&s->c.weights);
	return s;
}

void synthnet_free(struct synthnet *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->c.n_routers; i++)
		free(s->family_text[i]);
	free(s->family_text);
	free(s->md_ptrs);
	free(s->mds);
	free(s->truth);
	free(s->c.routers);
	free(s);
}
