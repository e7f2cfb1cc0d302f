/* Tests for app/netdir.c: joining microdescriptors to a consensus, the
 * "enough directory info" rule (fractions worked out by hand below from
 * the vector's flags and bandwidths), the parameter accessors, and the
 * lock-free publication slot under two reader threads while the
 * coordinator swaps 10,000 snapshots (run it under TSan and ASan too).
 * Documents come from test/vectors/gen_netdoc.py (an independent
 * computation with tor-gencert and python3-cryptography). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "app/netdir.h"
#include "netdoc_vectors.h"

struct fixture {
	struct consensus_ref *cr;
	struct md_batch_ref *mb;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct netdoc_err e = {0};
	struct consensus *c = NULL;
	struct microdesc_batch *b = NULL;
	size_t len;
	char *doc = vec_load("consensus-small", &len);

	assert_int_equal(consensus_parse(doc, len, &c, &e), PARSE_OK);
	free(doc);
	doc = vec_load("microdescs-small", &len);
	assert_int_equal(microdesc_parse_batch(doc, len, &b, &e), PARSE_OK);
	free(doc);
	f->cr = consensus_ref_new(c);
	f->mb = md_batch_ref_new(b);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(atomic_load(&f->cr->refs), 1); /* every snapshot let go of it */
	assert_int_equal(atomic_load(&f->mb->refs), 1);
	consensus_ref_put(f->cr);
	md_batch_ref_put(f->mb);
	free(f);
	return 0;
}

static void test_netdir_joins_microdescs_by_digest(void **state)
{
	struct fixture *f = *state;
	struct netdir *d = netdir_new(f->cr, &f->mb, 1);

	assert_int_equal(d->n_md, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_non_null(netdir_md(d, i));
		assert_memory_equal(netdir_md(d, i)->digest, d->c->routers[i].md_digest, 32);
		assert_ptr_equal(d->nodes->nodes[i].md, netdir_md(d, i));
	}
	assert_true(d->usable);
	assert_true(netdir_is_usable(d, d->c->valid_after + 60));
	assert_false(netdir_is_usable(d, d->c->valid_until + CONSENSUS_REASONABLY_LIVE_SECS + 1));
	assert_int_equal(atomic_load(&f->mb->refs), 2);
	netdir_release(d);
}

static void test_netdir_without_microdescs_is_not_usable(void **state)
{
	struct fixture *f = *state;
	struct netdir *d = netdir_new(f->cr, NULL, 0);

	assert_int_equal(d->n_md, 0);
	assert_false(d->usable);
	assert_false(netdir_is_usable(d, d->c->valid_after + 60));
	assert_true(d->frac_paths == 0.0);
	netdir_release(d);
}

static size_t find(const struct consensus *c, uint32_t with, uint32_t without)
{
	for (size_t i = 0; i < c->n_routers; i++)
		if ((c->routers[i].flags & with) == with && !(c->routers[i].flags & without))
			return i;
	fail();
	return 0;
}

/* consensus-small: an Exit+Guard (bandwidth 100), a middle (110) and a
 * Guard (120), all Running Valid. */
static void test_netdir_frac_paths_follows_tor_rule(void **state)
{
	struct fixture *f = *state;
	const struct consensus *c = f->cr->c;
	const struct microdesc *md[3];
	size_t ex = find(c, RFLAG_EXIT | RFLAG_GUARD, 0), mid = find(c, 0, RFLAG_GUARD | RFLAG_EXIT),
	       gd = find(c, RFLAG_GUARD, RFLAG_EXIT);

	assert_int_equal(c->routers[ex].bandwidth, 100);
	assert_int_equal(c->routers[mid].bandwidth, 110);
	assert_int_equal(c->routers[gd].bandwidth, 120);
	for (size_t i = 0; i < 3; i++)
		md[i] = &f->mb->b->mds[0];
	assert_true(fabs(netdir_frac_paths(c, md) - 1.0) < 1e-9);
	/* Without the guard's: guards 100/220, middles 210/330, exits 1. */
	md[gd] = NULL;
	assert_true(fabs(netdir_frac_paths(c, md) - (100.0 / 220) * (210.0 / 330)) < 1e-9);
	/* Without the middle's: guards 1, middles 220/330, exits 1. */
	md[gd] = md[ex];
	md[mid] = NULL;
	assert_true(fabs(netdir_frac_paths(c, md) - 220.0 / 330) < 1e-9);
	/* Without the only exit's: no exit path at all. */
	md[mid] = md[gd];
	md[ex] = NULL;
	assert_true(netdir_frac_paths(c, md) == 0.0);
}

static void test_netdir_exposes_params_and_weights(void **state)
{
	struct fixture *f = *state;
	struct netdir *d = netdir_new(f->cr, &f->mb, 1);
	const struct consensus_bw_weights *w = netdir_bw_weights(d);

	assert_int_equal(netdir_param(d, "cc_alg", 0, 0, 2), 2);
	assert_int_equal(netdir_param(d, "guard-n-primary-guards", 1, 1, 10), 3);
	assert_int_equal(netdir_param(d, "cc_cwnd_min", 100, 31, 1000), 31); /* -5 clamped */
	assert_int_equal(netdir_param(d, "no_such_param", 77, 0, 100), 77);
	assert_true(w->present);
	assert_int_equal(w->wgg, 5859);
	assert_int_equal(w->wbg, 4141);
	assert_int_equal(netdir_valid_after(d) + 3600, netdir_fresh_until(d));
	assert_int_equal(netdir_valid_after(d) + 3 * 3600, netdir_valid_until(d));
	netdir_release(d);
}

static void test_netdir_slot_starts_empty_and_swaps(void **state)
{
	struct fixture *f = *state;
	struct netdir_slot slot = {0};
	struct netdir *a = netdir_new(f->cr, &f->mb, 1), *b = netdir_new(f->cr, &f->mb, 1), *got;

	assert_null(netdir_slot_acquire(&slot));
	netdir_slot_publish(&slot, a);
	got = netdir_slot_acquire(&slot);
	assert_ptr_equal(got, a);
	assert_int_equal(atomic_load(&a->refs), 2);
	netdir_slot_publish(&slot, b); /* a lives on: we hold it */
	assert_int_equal(atomic_load(&a->refs), 1);
	assert_int_equal(a->n_md, 3);
	assert_true(b->generation > a->generation);
	netdir_release(got); /* frees a */
	got = netdir_slot_acquire(&slot);
	assert_ptr_equal(got, b);
	netdir_release(got);
	netdir_slot_publish(&slot, NULL);
	assert_null(netdir_slot_acquire(&slot));
}

#define SWAPS 10000

struct race {
	struct netdir_slot slot;
	struct fixture *f;
	_Atomic bool stop;
	_Atomic uint64_t reads[2];
	bool bad[2];
};

struct reader_arg {
	struct race *r;
	int id;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	struct race *r = a->r;
	uint64_t last_gen = 0;

	while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
		struct netdir *d = netdir_slot_acquire(&r->slot);
		if (!d)
			continue;
		/* Everything a worker would read must be intact. */
		if (d->c != r->f->cr->c || d->n_md != 3 || d->nodes->n != 3 || d->generation < last_gen ||
		    atomic_load_explicit(&d->refs, memory_order_relaxed) < 1)
			r->bad[a->id] = true;
		last_gen = d->generation;
		atomic_fetch_add_explicit(&r->reads[a->id], 1, memory_order_relaxed);
		netdir_release(d);
	}
	return NULL;
}

static void test_netdir_slot_survives_readers_racing_10000_swaps(void **state)
{
	struct race r = {.f = *state};
	struct reader_arg args[2] = {{&r, 0}, {&r, 1}};
	pthread_t th[2];

	netdir_slot_publish(&r.slot, netdir_new(r.f->cr, &r.f->mb, 1));
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
	/* Start swapping once both readers run (bounded: 10 s). */
	for (int i = 0; i < 10000 && (!atomic_load(&r.reads[0]) || !atomic_load(&r.reads[1])); i++)
		usleep(1000);
	for (int i = 0; i < SWAPS; i++)
		netdir_slot_publish(&r.slot, netdir_new(r.f->cr, &r.f->mb, 1));
	atomic_store_explicit(&r.stop, true, memory_order_release);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	netdir_slot_publish(&r.slot, NULL);
	assert_false(r.bad[0]);
	assert_false(r.bad[1]);
	assert_true(r.reads[0] > 0 && r.reads[1] > 0);
	print_message("readers acquired %llu and %llu snapshots during %d swaps\n",
		      (unsigned long long)atomic_load(&r.reads[0]), (unsigned long long)atomic_load(&r.reads[1]), SWAPS);
	/* teardown checks that all 10,000 snapshots were freed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_netdir_joins_microdescs_by_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_netdir_without_microdescs_is_not_usable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_netdir_frac_paths_follows_tor_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_netdir_exposes_params_and_weights, setup, teardown),
		cmocka_unit_test_setup_teardown(test_netdir_slot_starts_empty_and_swaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_netdir_slot_survives_readers_racing_10000_swaps, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
