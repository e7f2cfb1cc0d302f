/* The prebuild planner of a shard's circuit pool (see circpool.h): pure
 * policy, no I/O. */
#include "app/circpool.h"

#include <string.h>

void circpool_init(struct circpool *p, uint64_t window_ns)
{
	memset(p, 0, sizeof(*p));
	p->window_ns = window_ns ? window_ns : CIRCPOOL_WINDOW_NS;
}

static bool key_eq(const struct isolation_key *a, const struct isolation_key *b)
{
	return memcmp(a->digest, b->digest, sizeof(a->digest)) == 0;
}

/* Move entry i of an array of n elements of size sz to the front. */
static void to_front(void *base, size_t sz, unsigned i)
{
	unsigned char tmp[sizeof(struct circpool_key)];
	unsigned char *b = base;

	_Static_assert(sizeof(struct circpool_key) >= sizeof(struct circpool_port), "tmp fits both");
	if (!i)
		return;
	memcpy(tmp, b + i * sz, sz);
	memmove(b + sz, b, i * sz);
	memcpy(b, tmp, sz);
}

void circpool_note(struct circpool *p, uint16_t port, const struct isolation_key *key, uint64_t now_ns)
{
	unsigned i;

	if (port) {
		for (i = 0; i < p->nports && p->ports[i].port != port; i++)
			;
		if (i == p->nports) {
			/* New: take a free slot or the least recent one. */
			if (p->nports < CIRCPOOL_PORTS_MAX)
				p->nports++;
			i = p->nports - 1;
			p->ports[i].port = port;
		}
		p->ports[i].last_ns = now_ns;
		to_front(p->ports, sizeof(p->ports[0]), i);
	}
	if (key) {
		for (i = 0; i < p->nkeys && !key_eq(&p->keys[i].key, key); i++)
			;
		if (i == p->nkeys) {
			if (p->nkeys < CIRCPOOL_KEYS_MAX)
				p->nkeys++;
			i = p->nkeys - 1;
			p->keys[i].key = *key;
		}
		p->keys[i].last_ns = now_ns;
		if (port) /* a resolve says nothing about the port it will want */
			p->keys[i].port = port;
		to_front(p->keys, sizeof(p->keys[0]), i);
	}
}

void circpool_expire(struct circpool *p, uint64_t now_ns)
{
	/* Most recent first: the stale ones are a suffix. */
	while (p->nports && now_ns - p->ports[p->nports - 1].last_ns > p->window_ns)
		p->nports--;
	while (p->nkeys && now_ns - p->keys[p->nkeys - 1].last_ns > p->window_ns)
		p->nkeys--;
}

/* The most recent predicted port not in covered, or -1. */
static int first_uncovered(const struct circpool *p, uint32_t covered)
{
	for (unsigned i = 0; i < p->nports; i++)
		if (!(covered & (1u << i)))
			return (int)i;
	return -1;
}

/* An unkept clean circuit any key may take: one whose exit allows port
 * index want (want < 0: any), or -1. */
static int find_any(const struct circpool_circ *c, size_t n, int want)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].clean && !c[i].has_key && !c[i].keep &&
		    (want < 0 || (c[i].port_mask & (1u << want))))
			return (int)i;
	return -1;
}

struct plan {
	struct circpool_launch *out;
	size_t cap, nout;
	unsigned used; /* clean circuits kept + launches */
};

static void launch(struct plan *pl, uint16_t port, const struct isolation_key *key)
{
	pl->used++;
	if (pl->nout >= pl->cap)
		return;
	memset(&pl->out[pl->nout], 0, sizeof(pl->out[0]));
	pl->out[pl->nout].port = port;
	if (key) {
		pl->out[pl->nout].has_key = true;
		pl->out[pl->nout].key = *key;
	}
	pl->nout++;
}

static uint16_t port_at(const struct circpool *p, int i)
{
	if (i >= 0)
		return p->ports[i].port;
	return p->nports ? p->ports[0].port : CIRCPOOL_DEFAULT_PORT;
}

/* Step 1: min circuits any key may take. Existing ones first (the one
 * that covers the most recent uncovered port, else any), so a port no
 * exit allows does not make the plan drop a good circuit for a launch
 * that keeps failing. */
static void plan_any(const struct circpool *p, unsigned min, unsigned max, struct circpool_circ *c, size_t n,
		     struct plan *pl, uint32_t *covered)
{
	for (unsigned have = 0; have < min && pl->used < max; have++) {
		int want = first_uncovered(p, *covered);
		int i = find_any(c, n, want);

		if (i < 0)
			i = find_any(c, n, -1);
		if (i >= 0) {
			c[i].keep = true;
			pl->used++;
			*covered |= c[i].port_mask;
			continue;
		}
		launch(pl, port_at(p, want), NULL);
		*covered |= want >= 0 ? 1u << want : p->nports ? 1u : 0;
	}
}

/* Step 2: a reserved circuit for each recent key that has none usable. */
static void plan_keys(const struct circpool *p, unsigned max, struct circpool_circ *c, size_t n, struct plan *pl)
{
	for (unsigned k = 0; k < p->nkeys && pl->used < max; k++) {
		const struct isolation_key *key = &p->keys[k].key;
		bool served = false;

		for (size_t i = 0; i < n && !served; i++) {
			if (!c[i].has_key || !key_eq(&c[i].key, key))
				continue;
			if (c[i].clean && !c[i].keep) {
				c[i].keep = true;
				pl->used++;
			}
			served = true;
		}
		if (!served)
			launch(pl, p->keys[k].port ? p->keys[k].port : port_at(p, -1), key);
	}
}

/* Step 3: every predicted port still uncovered. */
static void plan_ports(const struct circpool *p, unsigned max, struct circpool_circ *c, size_t n, struct plan *pl,
		       uint32_t covered)
{
	for (unsigned k = 0; k < p->nports && pl->used < max; k++) {
		int i;

		if (covered & (1u << k))
			continue;
		i = find_any(c, n, (int)k);
		if (i >= 0) {
			c[i].keep = true;
			pl->used++;
			covered |= c[i].port_mask;
		} else {
			launch(pl, p->ports[k].port, NULL);
			covered |= 1u << k;
		}
	}
}

size_t circpool_plan(const struct circpool *p, unsigned min, unsigned max, struct circpool_circ *c, size_t n,
		     struct circpool_launch *out, size_t cap)
{
	struct plan pl = { .out = out, .cap = cap };
	uint32_t covered = 0;

	for (size_t i = 0; i < n; i++)
		c[i].keep = false;
	plan_any(p, min, max, c, n, &pl, &covered);
	plan_keys(p, max, c, n, &pl);
	plan_ports(p, max, c, n, &pl, covered);
	return pl.nout;
}
