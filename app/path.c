/* Path selection: weighted per-position choice with rejection of relays
 * that break a rule, and a linear slow path when rejections pile up.
 * See path.h. Not for guard state or circuit building. */
#include "app/path.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* Draws before path_pick gives up rejecting and scans (path_pick_slow). A
 * rule that refuses most of the weight (a rare port) ends up there. */
#define PATH_FAST_TRIES 48
#define PATH_MAX_NODE_WEIGHT (UINT64_C(1) << 42)

__extension__ typedef unsigned __int128 path_u128; /* gcc and clang have it */

struct path_sel {
	const struct nodelist *nl;
	struct path_rules rules;
	uint64_t *cum[PATH_POS_COUNT]; /* cumulative weights, nl->n each */
	uint64_t total[PATH_POS_COUNT];
};

/* One position's four flag-class weights and the BEGIN_DIR multipliers
 * (dir-spec 3.8.3; path-spec 2.2 lists what each means). */
struct pos_weights {
	int64_t wg, wm, we, wd;     /* Guard, neither, Exit, Guard+Exit */
	int64_t wgb, wmb, web, wdb; /* times these for V2Dir relays */
};

/* path-spec 2.2: "If any of those weights is malformed or not present in a
 * consensus, clients ... [use] the default value of 10000". */
static int64_t w_or_default(const struct consensus_bw_weights *w, int32_t v)
{
	return (!w->present || v < 0) ? 10000 : v;
}

static int64_t clamp_w(int64_t v, int64_t scale)
{
	return v > scale ? scale : v; /* dir-spec 3.8.3 weights never exceed the scale */
}

static struct pos_weights pos_weights_get(const struct consensus *c, enum path_pos pos, int64_t scale)
{
	const struct consensus_bw_weights *w = &c->weights;
	struct pos_weights p = {
		.wgb = w_or_default(w, w->wgb), .wmb = w_or_default(w, w->wmb),
		.web = w_or_default(w, w->web), .wdb = w_or_default(w, w->wdb),
	};

	switch (pos) {
	case PATH_POS_GUARD: /* an Exit-only relay is never a guard: We = 0 */
		p.wg = w_or_default(w, w->wgg), p.wm = w_or_default(w, w->wgm);
		p.we = 0, p.wd = w_or_default(w, w->wgd);
		break;
	case PATH_POS_MIDDLE:
		p.wg = w_or_default(w, w->wmg), p.wm = w_or_default(w, w->wmm);
		p.we = w_or_default(w, w->wme), p.wd = w_or_default(w, w->wmd);
		break;
	case PATH_POS_EXIT:
		p.wg = w_or_default(w, w->weg), p.wm = w_or_default(w, w->wem);
		p.we = w_or_default(w, w->wee), p.wd = w_or_default(w, w->wed);
		break;
	default: /* BEGIN_DIR: the Wb* weights, and no second multiplier */
		p.wg = w_or_default(w, w->wbg), p.wm = w_or_default(w, w->wbm);
		p.we = w_or_default(w, w->wbe), p.wd = w_or_default(w, w->wbd);
		p.wgb = p.wmb = p.web = p.wdb = scale;
		break;
	}
	p.wg = clamp_w(p.wg, scale), p.wm = clamp_w(p.wm, scale);
	p.we = clamp_w(p.we, scale), p.wd = clamp_w(p.wd, scale);
	p.wgb = clamp_w(p.wgb, scale), p.wmb = clamp_w(p.wmb, scale);
	p.web = clamp_w(p.web, scale), p.wdb = clamp_w(p.wdb, scale);
	return p;
}

/* Rules that hold for every request, so they are baked into the weights. */
static bool pos_static_ok(const struct path_sel *ps, enum path_pos pos, const struct node *n)
{
	uint32_t f = n->rs->flags;

	if (!(f & RFLAG_RUNNING) || !(f & RFLAG_VALID) || nodeset_contains(ps->rules.exclude, n))
		return false;
	switch (pos) {
	case PATH_POS_GUARD:
		return n->md && (f & RFLAG_GUARD) && !(f & RFLAG_MIDDLEONLY);
	case PATH_POS_MIDDLE:
		return n->md != NULL;
	case PATH_POS_EXIT:
		/* path-spec 2.2.1: never a BadExit unless asked; MiddleOnly
		 * relays are for the middle only (proposal 335). */
		return n->md && !(f & (RFLAG_BADEXIT | RFLAG_MIDDLEONLY)) &&
		       node_allows_exit_port(n, 0) && !nodeset_contains(ps->rules.exclude_exit, n);
	default:
		return (f & RFLAG_V2DIR) != 0;
	}
}

static uint64_t node_pos_weight(const struct node *n, const struct pos_weights *p, int64_t scale)
{
	uint32_t f = n->rs->flags;
	bool g = f & RFLAG_GUARD, e = (f & RFLAG_EXIT) && !(f & RFLAG_BADEXIT);
	bool dir = f & RFLAG_V2DIR;
	int64_t w, wb;

	/* dir-spec 3.8.3: Guard+Exit relays use Wxd, Guard Wxg, Exit Wxe,
	 * others Wxm; the Exit class needs Exit without BadExit. */
	if (g && e)
		w = p->wd, wb = p->wdb;
	else if (g)
		w = p->wg, wb = p->wgb;
	else if (e)
		w = p->we, wb = p->web;
	else
		w = p->wm, wb = p->wmb;
	if (!dir)
		wb = scale;
	/* bandwidth * (w / scale) * (wb / scale), kept in units of 1/scale;
	 * the cap keeps the sum over a million relays inside 64 bits even if
	 * a consensus sets absurd weights. */
	path_u128 x = (path_u128)n->rs->bandwidth * (uint64_t)w * (uint64_t)wb /
			      (uint64_t)scale;

	return x > PATH_MAX_NODE_WEIGHT ? PATH_MAX_NODE_WEIGHT : (uint64_t)x;
}

static void pos_build(struct path_sel *ps, enum path_pos pos, int64_t scale)
{
	const struct nodelist *nl = ps->nl;
	struct pos_weights pw = pos_weights_get(nl->c, pos, scale);
	uint64_t *cum = calloc(nl->n ? nl->n : 1, sizeof(*cum)), sum = 0;
	size_t eligible = 0;

	if (!cum)
		abort();
	for (size_t i = 0; i < nl->n; i++) {
		bool ok = pos_static_ok(ps, pos, &nl->nodes[i]);

		eligible += ok;
		sum += ok ? node_pos_weight(&nl->nodes[i], &pw, scale) : 0;
		cum[i] = sum;
	}
	if (sum == 0 && eligible > 0) {
		/* No bandwidth information at all: every eligible relay equal. */
		for (size_t i = 0; i < nl->n; i++)
			cum[i] = (sum += pos_static_ok(ps, pos, &nl->nodes[i]));
	}
	ps->cum[pos] = cum;
	ps->total[pos] = sum;
}

struct path_sel *path_sel_new(const struct nodelist *nl, const struct config *cfg)
{
	struct path_sel *ps = calloc(1, sizeof(*ps));
	int64_t scale;

	if (!ps)
		abort();
	ps->nl = nl;
	/* As in tor, TestingTorNetwork turns the /16 rule off: a private test
	 * network has every relay on one address. */
	ps->rules.enforce_distinct_subnets = cfg->enforce_distinct_subnets && !cfg->testing_tor_network;
	ps->rules.strict_nodes = cfg->strict_nodes;
	ps->rules.exclude = nodeset_new(&cfg->exclude_nodes);
	ps->rules.exclude_exit = nodeset_new(&cfg->exclude_exit_nodes);
	ps->rules.exit_nodes = nodeset_new(&cfg->exit_nodes);
	/* dir-spec 3.4.1: weights are fractions of "bwweightscale". */
	scale = consensus_param(nl->c, "bwweightscale", 10000, 1, INT32_MAX);
	for (int p = 0; p < PATH_POS_COUNT; p++)
		pos_build(ps, (enum path_pos)p, scale);
	return ps;
}

void path_sel_free(struct path_sel *ps)
{
	if (!ps)
		return;
	for (int p = 0; p < PATH_POS_COUNT; p++)
		free(ps->cum[p]);
	nodeset_free(ps->rules.exclude);
	nodeset_free(ps->rules.exclude_exit);
	nodeset_free(ps->rules.exit_nodes);
	free(ps);
}

uint64_t path_weight(const struct path_sel *ps, enum path_pos pos, const struct node *n)
{
	const uint64_t *cum = ps->cum[pos];

	return cum[n->idx] - (n->idx ? cum[n->idx - 1] : 0);
}

bool path_compatible(const struct path_sel *ps, const struct node *a, const struct node *b)
{
	return !node_conflicts(ps->nl, a, b, ps->rules.enforce_distinct_subnets);
}

const struct path_rules *path_sel_rules(const struct path_sel *ps)
{
	return &ps->rules;
}

const struct nodelist *path_sel_nodes(const struct path_sel *ps)
{
	return ps->nl;
}

bool path_port_needs_stable(uint16_t port)
{
	/* path-spec 2.2: the default LongLivedPorts. */
	static const uint16_t ll[] = { 21, 22, 706, 1863, 5050, 5190, 5222, 5223, 6667, 6697, 8300 };

	for (size_t i = 0; i < sizeof(ll) / sizeof(ll[0]); i++)
		if (ll[i] == port)
			return true;
	return false;
}

/* Per-request rules a relay must meet in pos (besides the static ones). */
struct pick_rules {
	const struct path_request *req;
	const struct node *const *avoid;
	unsigned navoid;
	bool use_exit_nodes; /* ExitNodes applies */
	bool use_bad;        /* skip relays badrelays avoids */
};

static bool pick_ok(const struct path_sel *ps, enum path_pos pos, const struct pick_rules *r,
		    const struct node *n)
{
	const struct path_request *req = r->req;
	uint32_t f = n->rs->flags;

	if ((req->need_fast && !(f & RFLAG_FAST)) || (req->need_stable && !(f & RFLAG_STABLE)))
		return false;
	if (pos == PATH_POS_EXIT && req->purpose == PATH_PURPOSE_EXIT) {
		if (!node_allows_exit_port(n, req->port))
			return false;
		if (r->use_exit_nodes && !nodeset_contains(ps->rules.exit_nodes, n))
			return false;
		for (unsigned i = 0; i < req->n_exclude_exits; i++)
			if (memcmp(req->exclude_exits + 20u * i, n->rs->identity, 20) == 0)
				return false;
	}
	for (unsigned i = 0; i < r->navoid; i++)
		if (node_conflicts(ps->nl, n, r->avoid[i], ps->rules.enforce_distinct_subnets))
			return false;
	return !(r->use_bad && badrelays_is_avoided(req->bad, n->rs->identity, req->now_ms));
}

/* The index i with cum[i-1] <= x < cum[i]. */
static size_t cum_search(const uint64_t *cum, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cum[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Exact weighted choice among the relays that pass r: one linear scan. */
static const struct node *path_pick_slow(const struct path_sel *ps, enum path_pos pos,
					 const struct pick_rules *r)
{
	const uint64_t *cum = ps->cum[pos];
	const struct nodelist *nl = ps->nl;
	uint64_t sum = 0, x;

	for (size_t i = 0; i < nl->n; i++) {
		uint64_t w = cum[i] - (i ? cum[i - 1] : 0);

		if (w && pick_ok(ps, pos, r, &nl->nodes[i]))
			sum += w;
	}
	if (sum == 0)
		return NULL;
	x = crypto_rand_uint64(sum);
	for (size_t i = 0; i < nl->n; i++) {
		uint64_t w = cum[i] - (i ? cum[i - 1] : 0);

		if (!w || !pick_ok(ps, pos, r, &nl->nodes[i]))
			continue;
		if (x < w)
			return &nl->nodes[i];
		x -= w;
	}
	return NULL; /* not reached: x < sum */
}

/* Weighted choice conditioned on r: rejection sampling from the
 * precomputed distribution gives exactly the weighted share among the
 * acceptable relays, which is what a filter-then-weigh choice gives. */
static const struct node *path_pick(const struct path_sel *ps, enum path_pos pos,
				    const struct pick_rules *r)
{
	const struct nodelist *nl = ps->nl;

	if (ps->total[pos] == 0)
		return NULL;
	for (int t = 0; t < PATH_FAST_TRIES; t++) {
		uint64_t x = crypto_rand_uint64(ps->total[pos]);
		const struct node *n = &nl->nodes[cum_search(ps->cum[pos], nl->n, x)];

		if (pick_ok(ps, pos, r, n))
			return n;
	}
	return path_pick_slow(ps, pos, r);
}

const struct node *path_choose_pos(const struct path_sel *ps, enum path_pos pos,
				   const struct path_request *req, const struct node *const *avoid,
				   unsigned navoid)
{
	struct pick_rules r = { .req = req, .avoid = avoid, .navoid = navoid, .use_bad = req->bad != NULL };
	const struct node *n;

	r.use_exit_nodes = pos == PATH_POS_EXIT && !nodeset_is_empty(ps->rules.exit_nodes);
	n = path_pick(ps, pos, &r);
	if (!n && r.use_exit_nodes && !ps->rules.strict_nodes) {
		/* path-spec 2.2.2: without StrictNodes, a request no ExitNodes
		 * relay supports is handled as if ExitNodes were unset. */
		log_info("path: no ExitNodes relay fits this request; using any exit");
		r.use_exit_nodes = false;
		n = path_pick(ps, pos, &r);
	}
	if (!n && r.use_bad) {
		/* Every candidate failed recently: trying one beats giving up. */
		r.use_bad = false;
		n = path_pick(ps, pos, &r);
	}
	return n;
}

static enum path_err path_choose_dir(const struct path_sel *ps, const struct path_request *req,
				     struct path *out)
{
	const struct node *n = req->guard ? req->guard : path_choose_pos(ps, PATH_POS_DIR, req, NULL, 0);

	if (!n)
		return PATH_ERR_NO_DIR;
	out->hop[0] = n;
	out->n = 1;
	return PATH_OK;
}

/* The last hop: an exit for the port, or a middle-weighted relay for an
 * internal circuit. It must fit with a fixed guard. */
static enum path_err path_choose_last(const struct path_sel *ps, const struct path_request *req,
				      const struct node **last)
{
	enum path_pos pos = req->purpose == PATH_PURPOSE_EXIT ? PATH_POS_EXIT : PATH_POS_MIDDLE;
	const struct node *g = req->guard;

	if (req->purpose == PATH_PURPOSE_INTERNAL && req->last) {
		*last = req->last;
		return g && (g == req->last || !path_compatible(ps, g, req->last)) ? PATH_ERR_GUARD_CONFLICT
										     : PATH_OK;
	}
	*last = path_choose_pos(ps, pos, req, g ? &g : NULL, g ? 1 : 0);
	if (*last)
		return PATH_OK;
	if (g && path_choose_pos(ps, pos, req, NULL, 0))
		return PATH_ERR_GUARD_CONFLICT;
	return pos == PATH_POS_EXIT ? PATH_ERR_NO_EXIT : PATH_ERR_NO_MIDDLE;
}

enum path_err path_choose(const struct path_sel *ps, const struct path_request *req,
			  struct path *out)
{
	const struct node *hops[PATH_MAX_HOPS] = { 0 };
	enum path_err e;

	out->n = 0;
	if (req->purpose == PATH_PURPOSE_DIR_ONEHOP)
		return path_choose_dir(ps, req, out);
	/* path-spec 2.2: exit first, then the first hop, then the middle. */
	e = path_choose_last(ps, req, &hops[2]);
	if (e != PATH_OK)
		return e;
	hops[0] = req->guard ? req->guard : path_choose_pos(ps, PATH_POS_GUARD, req, &hops[2], 1);
	if (!hops[0])
		return PATH_ERR_NO_GUARD;
	const struct node *ends[2] = { hops[0], hops[2] };

	hops[1] = path_choose_pos(ps, PATH_POS_MIDDLE, req, ends, 2);
	if (!hops[1])
		return PATH_ERR_NO_MIDDLE;
	memcpy(out->hop, hops, sizeof(hops));
	out->n = 3;
	return PATH_OK;
}

const char *path_err_str(enum path_err e)
{
	switch (e) {
	case PATH_OK:
		return "ok";
	case PATH_ERR_NO_EXIT:
		return "no usable exit allows the requested port";
	case PATH_ERR_NO_GUARD:
		return "no usable guard fits the chosen exit";
	case PATH_ERR_NO_MIDDLE:
		return "no usable middle relay fits the other hops";
	case PATH_ERR_NO_DIR:
		return "no usable directory cache";
	case PATH_ERR_GUARD_CONFLICT:
		return "the guard conflicts with every usable exit";
	}
	return "unknown";
}
