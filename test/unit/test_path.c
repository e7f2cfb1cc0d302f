/* Tests for app/path (and app/nodes, app/badrelays): 100,000 paths over a
 * synthetic 7,000-relay consensus must follow the bandwidth-weighted share
 * of each position (an independent model in this file computes it from
 * the flags and dir-spec 3.8.3) and break no rule, ever. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "app/badrelays.h"
#include "app/nodes.h"
#include "app/path.h"
#include "core/base64.h"
#include "core/config.h"
#include "test/unit/synthnet.h"

#define N_RELAYS 7000
#define N_PATHS 100000
#define PORT 443

struct world {
	struct synthnet *s;
	struct nodelist *nl;
	struct config *cfg;
	struct path_sel *ps;
};

static struct world *world_new(bool distinct, const char *extra_cfg)
{
	struct world *w = calloc(1, sizeof(*w));
	char text[4096], err[CONFIG_ERR_MAX];

	w->s = synthnet_new(N_RELAYS, 0x5eed);
	w->nl = nodelist_new(&w->s->c, w->s->md_ptrs, w->s->n_mds);
	snprintf(text, sizeof(text), "EnforceDistinctSubnets %d\n%s", distinct ? 1 : 0,
		 extra_cfg ? extra_cfg : "");
	assert_int_equal(config_load_string(text, strlen(text), "test", &w->cfg, err, sizeof(err)), 0);
	w->ps = path_sel_new(w->nl, w->cfg);
	return w;
}

static void world_free(struct world *w)
{
	path_sel_free(w->ps);
	config_free(w->cfg);
	nodelist_free(w->nl);
	synthnet_free(w->s);
	free(w);
}

/* ---- The independent model ------------------------------------------------ */

/* dir-spec 3.8.3, written out again from the spec for the test. */
static double model_weight(const struct synthnet *s, size_t i, enum path_pos pos)
{
	const struct consensus_router *r = &s->c.routers[i];
	const struct consensus_bw_weights *W = &s->c.weights;
	bool g = r->flags & RFLAG_GUARD, e = (r->flags & RFLAG_EXIT) && !(r->flags & RFLAG_BADEXIT);
	double w, b;
	const double tab[3][4] = {
		/* Guard-only, Exit-only, Guard+Exit, neither */
		{ W->wgg, 0, W->wgd, W->wgm },
		{ W->wmg, W->wme, W->wmd, W->wmm },
		{ W->weg, W->wee, W->wed, W->wem },
	};
	int cls = g && e ? 2 : g ? 0 : e ? 1 : 3;

	w = tab[pos][cls];
	b = (double[]){ W->wgb, W->web, W->wdb, W->wmb }[cls];
	if (!(r->flags & RFLAG_V2DIR))
		b = 10000;
	return (double)r->bandwidth * w / 10000.0 * b / 10000.0;
}

/* May relay i fill pos for an exit circuit to PORT that needs Fast? */
static bool model_eligible(const struct synthnet *s, size_t i, enum path_pos pos)
{
	uint32_t f = s->c.routers[i].flags;

	if (!(f & RFLAG_RUNNING) || !(f & RFLAG_VALID) || !(f & RFLAG_FAST) || !s->truth[i].has_md)
		return false;
	if (pos == PATH_POS_GUARD)
		return (f & RFLAG_GUARD) && !(f & RFLAG_MIDDLEONLY);
	if (pos == PATH_POS_EXIT)
		return s->truth[i].allows_443 && !(f & (RFLAG_BADEXIT | RFLAG_MIDDLEONLY));
	return true;
}

static bool model_conflict(const struct synthnet *s, size_t a, size_t b, bool distinct)
{
	const struct synth_relay *t = s->truth;

	if (a == b || (t[a].family >= 0 && t[a].family == t[b].family))
		return true;
	return distinct && (s->c.routers[a].ipv4 >> 16) == (s->c.routers[b].ipv4 >> 16);
}

/* conflict sets: every relay that may not share a path with i (i included) */
struct csets {
	uint32_t **v;
	size_t *n;
};

static struct csets csets_build(const struct synthnet *s, bool distinct)
{
	size_t n = s->c.n_routers;
	struct csets c = { calloc(n, sizeof(uint32_t *)), calloc(n, sizeof(size_t)) };

	uint32_t *tmp = malloc(n * sizeof(uint32_t));

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++)
			if (model_conflict(s, i, j, distinct))
				tmp[c.n[i]++] = (uint32_t)j;
		c.v[i] = malloc(c.n[i] * sizeof(uint32_t));
		memcpy(c.v[i], tmp, c.n[i] * sizeof(uint32_t));
	}
	free(tmp);
	return c;
}

static void csets_free(struct csets *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c->v[i]);
	free(c->v);
	free(c->n);
}

/* Chi-square of observed vs expected counts; relays expecting fewer than 5
 * are pooled. Fails when the statistic is beyond df + 6 sd. */
static void check_chi2(const char *what, const double *obs, const double *exp_, size_t n)
{
	double chi = 0, po = 0, pe = 0;
	size_t bins = 0;

	for (size_t i = 0; i < n; i++) {
		if (exp_[i] >= 5) {
			chi += (obs[i] - exp_[i]) * (obs[i] - exp_[i]) / exp_[i];
			bins++;
		} else {
			po += obs[i];
			pe += exp_[i];
			if (exp_[i] == 0)
				assert_true(obs[i] == 0); /* never chosen where it has no weight */
		}
	}
	if (pe > 0) {
		chi += (po - pe) * (po - pe) / pe;
		bins++;
	}
	double df = (double)bins - 1, lim = df + 6 * sqrt(2 * df);

	printf("# %s: chi2 %.1f over %zu bins (limit %.1f)\n", what, chi, bins, lim);
	assert_true(bins > 50);
	assert_true(chi < lim);
}

/* ---- The 100,000-path test ------------------------------------------------ */

static size_t count_rule_breaks(const struct synthnet *s, const struct path *p, bool distinct)
{
	size_t breaks = 0;
	size_t ix[3];

	if (p->n != 3)
		return 1;
	for (int h = 0; h < 3; h++)
		ix[h] = p->hop[h]->idx;
	breaks += !model_eligible(s, ix[0], PATH_POS_GUARD);
	breaks += !model_eligible(s, ix[1], PATH_POS_MIDDLE);
	breaks += !model_eligible(s, ix[2], PATH_POS_EXIT);
	breaks += model_conflict(s, ix[0], ix[1], distinct);
	breaks += model_conflict(s, ix[0], ix[2], distinct);
	breaks += model_conflict(s, ix[1], ix[2], distinct);
	return breaks;
}

struct tally {
	double *obs[3], *exp_[3];
	double sum_inv[3];  /* sum over paths of 1/Z for guard and middle */
	double *sub[3];     /* per relay: the part of sum_inv where it conflicted */
	uint8_t *stamp;
};

/* Add what the model expects of hop 0 given the exit, and of hop 1 given
 * both ends: the weighted share among the relays that do not conflict. */
static void tally_expect(struct tally *t, const struct csets *cs, const double *wt[3],
			 const double tot[3], const size_t ix[3])
{
	double zg = tot[0], zm = tot[1];
	size_t e = ix[2], g = ix[0];

	for (size_t k = 0; k < cs->n[e]; k++)
		zg -= wt[0][cs->v[e][k]];
	t->sum_inv[0] += 1 / zg;
	for (size_t k = 0; k < cs->n[e]; k++)
		t->sub[0][cs->v[e][k]] += 1 / zg;
	for (size_t k = 0; k < cs->n[e]; k++)
		t->stamp[cs->v[e][k]] = 1, zm -= wt[1][cs->v[e][k]];
	for (size_t k = 0; k < cs->n[g]; k++)
		if (!t->stamp[cs->v[g][k]])
			zm -= wt[1][cs->v[g][k]];
	t->sum_inv[1] += 1 / zm;
	for (size_t k = 0; k < cs->n[e]; k++)
		t->sub[1][cs->v[e][k]] += 1 / zm;
	for (size_t k = 0; k < cs->n[g]; k++)
		if (!t->stamp[cs->v[g][k]])
			t->sub[1][cs->v[g][k]] += 1 / zm;
	for (size_t k = 0; k < cs->n[e]; k++)
		t->stamp[cs->v[e][k]] = 0;
}

static void run_paths_and_check(struct world *w, bool distinct, size_t npaths)
{
	const struct synthnet *s = w->s;
	size_t n = s->c.n_routers, breaks = 0;
	struct csets cs = csets_build(s, distinct);
	struct tally t = { .stamp = calloc(n, 1) };
	double *wt[3], tot[3] = { 0 };
	struct path_request req = { .purpose = PATH_PURPOSE_EXIT, .port = PORT, .need_fast = true };
	struct timespec t0, t1;

	for (int p = 0; p < 3; p++) {
		t.obs[p] = calloc(n, sizeof(double));
		t.exp_[p] = calloc(n, sizeof(double));
		t.sub[p] = calloc(n, sizeof(double));
		wt[p] = calloc(n, sizeof(double));
		for (size_t i = 0; i < n; i++) {
			wt[p][i] = model_eligible(s, i, (enum path_pos)p) ? model_weight(s, i, (enum path_pos)p) : 0;
			tot[p] += wt[p][i];
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct path *paths = calloc(npaths, sizeof(*paths));

	for (size_t k = 0; k < npaths; k++)
		assert_int_equal(path_choose(w->ps, &req, &paths[k]), PATH_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	printf("# %zu paths in %.3f s: %.0f paths/s (EnforceDistinctSubnets %d)\n", npaths, secs,
	       (double)npaths / secs, distinct);
	for (size_t k = 0; k < npaths; k++) {
		size_t ix[3] = { paths[k].hop[0]->idx, paths[k].hop[1]->idx, paths[k].hop[2]->idx };

		breaks += count_rule_breaks(s, &paths[k], distinct);
		for (int p = 0; p < 3; p++)
			t.obs[p][ix[p]] += 1;
		tally_expect(&t, &cs, (const double **)wt, tot, ix);
	}
	assert_int_equal(breaks, 0);
	for (size_t i = 0; i < n; i++) {
		t.exp_[2][i] = (double)npaths * wt[2][i] / tot[2];
		t.exp_[0][i] = wt[0][i] * (t.sum_inv[0] - t.sub[0][i]);
		t.exp_[1][i] = wt[1][i] * (t.sum_inv[1] - t.sub[1][i]);
	}
	check_chi2("exit", t.obs[2], t.exp_[2], n);
	check_chi2("guard", t.obs[0], t.exp_[0], n);
	check_chi2("middle", t.obs[1], t.exp_[1], n);
	for (int p = 0; p < 3; p++) {
		free(t.obs[p]);
		free(t.exp_[p]);
		free(t.sub[p]);
		free(wt[p]);
	}
	free(t.stamp);
	free(paths);
	csets_free(&cs, n);
}

static void test_path_follows_weighted_shares_with_zero_rule_breaks(void **state)
{
	struct world *w = world_new(true, NULL);

	(void)state;
	run_paths_and_check(w, true, N_PATHS);
	world_free(w);
}

static void test_path_distinct_subnets_off_allows_shared_16_but_not_family(void **state)
{
	struct world *w = world_new(false, NULL);
	struct path_request req = { .purpose = PATH_PURPOSE_EXIT, .port = PORT, .need_fast = true };
	size_t shared16 = 0;

	(void)state;
	run_paths_and_check(w, false, 30000);
	for (int k = 0; k < 30000; k++) {
		struct path p;

		assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
		for (int a = 0; a < 3; a++)
			for (int b = a + 1; b < 3; b++)
				shared16 += node_same_subnet(p.hop[a], p.hop[b]);
	}
	/* The synthetic network crowds relays into a few /16s: with the rule
	 * off, some paths must share one. */
	assert_true(shared16 > 100);
	world_free(w);
}

/* ---- Families, subnets and node sets -------------------------------------- */

static void test_nodes_family_needs_both_sides_to_list_each_other(void **state)
{
	struct world *w = world_new(true, NULL);
	const struct synthnet *s = w->s;
	size_t n = s->c.n_routers, checked_same = 0, checked_other = 0;

	(void)state;
	/* Every pair is compared with the ground truth; the synthetic lines
	 * include one-sided claims, nickname and "$ID~nick" forms and an
	 * unknown fingerprint, so a one-sided rule or a parse slip shows. */
	for (size_t i = 0; i < n; i++) {
		if (!s->truth[i].has_md)
			continue;
		for (size_t j = 0; j < n; j++) {
			bool truth = i != j && s->truth[i].family >= 0 && s->truth[i].family == s->truth[j].family &&
				     s->truth[j].has_md;
			bool got = node_same_family(w->nl, &w->nl->nodes[i], &w->nl->nodes[j]);

			assert_int_equal(got, truth);
			checked_same += truth;
			checked_other += !truth && s->truth[i].family >= 0;
		}
	}
	assert_true(checked_same > 1000);
	assert_true(checked_other > 1000);
	world_free(w);
}

static void test_nodes_subnet_rule_covers_ipv4_16_and_ipv6_32(void **state)
{
	struct consensus_router ra = { .ipv4 = 0x0a010203 }, rb = { .ipv4 = 0x0a01ff04 },
				rc = { .ipv4 = 0x0a020203 };
	struct node a = { .rs = &ra }, b = { .rs = &rb }, c = { .rs = &rc };

	(void)state;
	assert_true(node_same_subnet(&a, &b));
	assert_false(node_same_subnet(&a, &c));
	ra.has_ipv6 = rc.has_ipv6 = true;
	memcpy(ra.ipv6, "\x20\x01\x0d\xb8\x00\x01", 6);
	memcpy(rc.ipv6, "\x20\x01\x0d\xb8\x99\x99", 6);
	assert_true(node_same_subnet(&a, &c));
	rc.ipv6[3] = 0xb9;
	assert_false(node_same_subnet(&a, &c));
}

static void hex_of(const struct node *n, char out[41])
{
	base16_encode(out, 41, n->rs->identity, SHA1_LEN, true);
}

/* Find relays that are likely exits for PORT (for ExitNodes tests). */
static size_t some_exits(const struct world *w, const struct node **out, size_t want)
{
	size_t k = 0;

	for (size_t i = 0; i < w->nl->n && k < want; i++)
		if (model_eligible(w->s, i, PATH_POS_EXIT))
			out[k++] = &w->nl->nodes[i];
	return k;
}

static void test_path_honours_exclude_nodes_and_exit_nodes(void **state)
{
	struct world *base = world_new(true, NULL);
	const struct node *ex[4];
	char cfg[2048], h[4][41];
	struct path_request req = { .purpose = PATH_PURPOSE_EXIT, .port = PORT, .need_fast = true };

	(void)state;
	assert_int_equal(some_exits(base, ex, 4), 4);
	for (int i = 0; i < 4; i++)
		hex_of(ex[i], h[i]);
	/* ExitNodes: two exits (one by "$ID", one by nickname); ExcludeNodes:
	 * a third by "$ID~nick", every relay in 10.10.0.0/16; ExcludeExitNodes
	 * names the fourth, which is also in ExitNodes. */
	snprintf(cfg, sizeof(cfg),
		 "ExitNodes $%s,%s,%s\nExcludeNodes $%s~%s, 10.10.0.0/16\nExcludeExitNodes %s\n",
		 h[0], ex[1]->rs->nickname, h[3], h[2], ex[2]->rs->nickname, h[3]);
	struct world *w = world_new(true, cfg);

	for (int k = 0; k < 20000; k++) {
		struct path p;

		assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
		assert_true(p.hop[2]->idx == ex[0]->idx || p.hop[2]->idx == ex[1]->idx);
		for (int hh = 0; hh < 3; hh++) {
			assert_true(p.hop[hh]->idx != ex[2]->idx);
			assert_true((p.hop[hh]->rs->ipv4 >> 16) != 0x0a0a);
		}
	}
	world_free(w);
	world_free(base);
}

static void test_path_exit_nodes_fall_back_unless_strict(void **state)
{
	struct world *base = world_new(true, NULL);
	const struct node *ex[1];
	char cfg[512], h[41];
	struct path_request req = { .purpose = PATH_PURPOSE_EXIT, .port = 22, .need_fast = true };
	struct path p;

	(void)state;
	/* An ExitNodes relay that does not allow port 22, which others do. */
	ex[0] = NULL;
	for (size_t i = 0; i < base->nl->n && !ex[0]; i++)
		if (model_eligible(base->s, i, PATH_POS_EXIT) &&
		    !node_allows_exit_port(&base->nl->nodes[i], req.port))
			ex[0] = &base->nl->nodes[i];
	assert_non_null(ex[0]);
	hex_of(ex[0], h);
	snprintf(cfg, sizeof(cfg), "ExitNodes %s\n", h);
	struct world *w = world_new(true, cfg);

	assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
	assert_true(node_allows_exit_port(p.hop[2], req.port));
	world_free(w);
	snprintf(cfg, sizeof(cfg), "ExitNodes %s\nStrictNodes 1\n", h);
	w = world_new(true, cfg);
	assert_int_equal(path_choose(w->ps, &req, &p), PATH_ERR_NO_EXIT);
	assert_string_equal(path_err_str(PATH_ERR_NO_EXIT), "no usable exit allows the requested port");
	world_free(w);
	world_free(base);
}

static void test_path_never_picks_an_excluded_exit_and_reports_none_left(void **state)
{
	struct world *base = world_new(true, NULL);
	const struct node *ex[2];
	char cfg[512], h[2][41];
	uint8_t excl[2][20];
	struct path_request req = { .purpose = PATH_PURPOSE_EXIT, .port = PORT, .need_fast = true };
	struct path p;
	size_t first = 0;

	(void)state;
	assert_int_equal(some_exits(base, ex, 2), 2);
	hex_of(ex[0], h[0]);
	hex_of(ex[1], h[1]);
	/* Two exits only (StrictNodes: no fallback to the others). */
	snprintf(cfg, sizeof(cfg), "ExitNodes %s,%s\nStrictNodes 1\n", h[0], h[1]);
	struct world *w = world_new(true, cfg);

	for (int k = 0; k < 2000; k++) {
		assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
		first += p.hop[2]->idx == ex[0]->idx;
	}
	assert_true(first > 0 && first < 2000); /* both are used without an exclusion */
	memcpy(excl[0], ex[0]->rs->identity, 20);
	req.exclude_exits = excl[0];
	req.n_exclude_exits = 1;
	for (int k = 0; k < 2000; k++) {
		assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
		assert_int_equal(p.hop[2]->idx, ex[1]->idx);
	}
	memcpy(excl[1], ex[1]->rs->identity, 20);
	req.n_exclude_exits = 2;
	assert_int_equal(path_choose(w->ps, &req, &p), PATH_ERR_NO_EXIT);
	/* The exclusion is about the exit position only: other requests and
	 * the other positions are unaffected. */
	req.n_exclude_exits = 0;
	assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
	world_free(w);
	world_free(base);
}

static void test_path_reports_no_exit_for_a_port_nobody_allows(void **state)
{
	struct world *w = world_new(true, NULL);
	/* Port 25 is rejected by every "reject" summary and accepted by none
	 * of the synthetic accept lists. */
	struct path_request req = { .purpose = PATH_PURPOSE_EXIT, .port = 25, .need_fast = true };
	struct path p;

	(void)state;
	assert_int_equal(path_choose(w->ps, &req, &p), PATH_ERR_NO_EXIT);
	assert_int_equal(p.n, 0);
	world_free(w);
}

static void test_path_stable_request_uses_only_stable_relays(void **state)
{
	struct world *w = world_new(true, NULL);
	struct path_request req = { .purpose = PATH_PURPOSE_EXIT, .port = 22, .need_fast = true };

	(void)state;
	assert_true(path_port_needs_stable(22));
	assert_false(path_port_needs_stable(443));
	req.need_stable = path_port_needs_stable(req.port);
	for (int k = 0; k < 5000; k++) {
		struct path p;

		assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
		for (int h = 0; h < 3; h++)
			assert_true(node_has_flags(p.hop[h], RFLAG_STABLE | RFLAG_FAST));
		assert_true(node_allows_exit_port(p.hop[2], 22));
	}
	world_free(w);
}

static void test_path_fixed_guard_is_first_hop_and_respected(void **state)
{
	struct world *w = world_new(true, NULL);
	struct path_request req = { .purpose = PATH_PURPOSE_INTERNAL, .need_fast = true };
	const struct node *g = NULL;
	struct path p;

	(void)state;
	for (size_t i = 0; i < w->nl->n && !g; i++)
		if (model_eligible(w->s, i, PATH_POS_GUARD) && w->s->truth[i].family >= 0)
			g = &w->nl->nodes[i];
	assert_non_null(g);
	req.guard = g;
	for (int k = 0; k < 5000; k++) {
		assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
		assert_ptr_equal(p.hop[0], g);
		assert_false(model_conflict(w->s, g->idx, p.hop[1]->idx, true));
		assert_false(model_conflict(w->s, g->idx, p.hop[2]->idx, true));
	}
	req.purpose = PATH_PURPOSE_DIR_ONEHOP;
	assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
	assert_int_equal(p.n, 1);
	assert_ptr_equal(p.hop[0], g);
	req.guard = NULL;
	assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
	assert_true(node_has_flags(p.hop[0], RFLAG_V2DIR));
	world_free(w);
}

static void test_badrelays_are_avoided_for_a_while_then_forgiven(void **state)
{
	struct world *w = world_new(true, NULL);
	struct badrelays *b = badrelays_new(60000);
	struct path_request req = { .purpose = PATH_PURPOSE_EXIT, .port = PORT, .need_fast = true,
				    .bad = b, .now_ms = 1000000 };
	struct path p;
	const struct node *heavy = NULL;
	uint64_t best = 0;

	(void)state;
	/* The heaviest exit: it would be picked often if it were not avoided. */
	for (size_t i = 0; i < w->nl->n; i++) {
		uint64_t x = path_weight(w->ps, PATH_POS_EXIT, &w->nl->nodes[i]);

		if (model_eligible(w->s, i, PATH_POS_EXIT) && x > best)
			best = x, heavy = &w->nl->nodes[i];
	}
	badrelays_record_failure(b, heavy->rs->identity, req.now_ms);
	assert_true(badrelays_is_avoided(b, heavy->rs->identity, req.now_ms + 59000));
	assert_false(badrelays_is_avoided(b, heavy->rs->identity, req.now_ms + 61000));
	badrelays_record_failure(b, heavy->rs->identity, req.now_ms);
	assert_true(badrelays_score(b, heavy->rs->identity, req.now_ms) > 1.9);
	size_t used = 0, used_later = 0;

	for (int k = 0; k < 3000; k++) {
		assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
		used += p.hop[2] == heavy;
	}
	req.now_ms += 10 * 60000; /* ten half-lives later */
	for (int k = 0; k < 3000; k++) {
		assert_int_equal(path_choose(w->ps, &req, &p), PATH_OK);
		used_later += p.hop[2] == heavy;
	}
	assert_int_equal(used, 0);
	assert_true(used_later > 0);
	badrelays_record_success(b, heavy->rs->identity);
	assert_true(badrelays_score(b, heavy->rs->identity, req.now_ms) == 0);
	badrelays_free(b);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_follows_weighted_shares_with_zero_rule_breaks),
		cmocka_unit_test(test_path_distinct_subnets_off_allows_shared_16_but_not_family),
		cmocka_unit_test(test_nodes_family_needs_both_sides_to_list_each_other),
		cmocka_unit_test(test_nodes_subnet_rule_covers_ipv4_16_and_ipv6_32),
		cmocka_unit_test(test_path_honours_exclude_nodes_and_exit_nodes),
		cmocka_unit_test(test_path_exit_nodes_fall_back_unless_strict),
		cmocka_unit_test(test_path_never_picks_an_excluded_exit_and_reports_none_left),
		cmocka_unit_test(test_path_reports_no_exit_for_a_port_nobody_allows),
		cmocka_unit_test(test_path_stable_request_uses_only_stable_relays),
		cmocka_unit_test(test_path_fixed_guard_is_first_hop_and_respected),
		cmocka_unit_test(test_badrelays_are_avoided_for_a_while_then_forgiven),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
