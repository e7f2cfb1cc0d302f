/* Tests for app/circpool: the prebuild planner remembers recent ports and
 * isolation keys, keeps CircuitPoolMinSize circuits any key may take
 * (covering the predicted ports), reserves one for each recent key without
 * a usable circuit, never plans beyond CircuitPoolMaxSize, and calls the
 * rest surplus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "app/circpool.h"

#define S 1000000000ull
#define T0 (1000 * S)

static struct isolation_key key_of(uint8_t tag)
{
	struct isolation_key k;

	memset(&k, tag, sizeof(k));
	return k;
}

static struct circpool_circ any_clean(uint32_t mask)
{
	struct circpool_circ c = { .clean = true, .port_mask = mask };
	return c;
}

static struct circpool_circ keyed(bool clean, uint8_t tag)
{
	struct circpool_circ c = { .clean = clean, .has_key = true, .key = key_of(tag) };
	return c;
}

/* The plan of a fresh pool (no demand noted) with no circuits, for
 * CircuitPoolMinSize min and CircuitPoolMaxSize max, into out[0..cap). */
static size_t plan_fresh(unsigned min, unsigned max, struct circpool_launch *out, size_t cap)
{
	struct circpool p;

	circpool_init(&p, 0);
	return circpool_plan(&p, min, max, NULL, 0, out, cap);
}

static void test_no_demand_launches_min_for_port_80(void **state)
{
	struct circpool_launch out[8];

	(void)state;
	assert_int_equal(plan_fresh(2, 10, out, 8), 2);
	assert_int_equal(out[0].port, 80);
	assert_false(out[0].has_key);
	assert_int_equal(out[1].port, 80);
}

static void test_notes_are_most_recent_first_and_bounded(void **state)
{
	struct circpool p;
	struct isolation_key k;

	(void)state;
	circpool_init(&p, 0);
	for (unsigned i = 0; i < CIRCPOOL_PORTS_MAX + 3; i++)
		circpool_note(&p, (uint16_t)(1000 + i), NULL, T0 + i);
	assert_int_equal(p.nports, CIRCPOOL_PORTS_MAX);
	assert_int_equal(p.ports[0].port, 1000 + CIRCPOOL_PORTS_MAX + 2);
	circpool_note(&p, 1005, NULL, T0 + 100); /* seen again: to the front, no duplicate */
	assert_int_equal(p.ports[0].port, 1005);
	assert_int_equal(p.nports, CIRCPOOL_PORTS_MAX);
	for (unsigned i = 1; i < p.nports; i++)
		assert_int_not_equal(p.ports[i].port, 1005);
	for (unsigned i = 0; i < CIRCPOOL_KEYS_MAX + 2; i++) {
		k = key_of((uint8_t)i);
		circpool_note(&p, 443, &k, T0 + i);
	}
	assert_int_equal(p.nkeys, CIRCPOOL_KEYS_MAX);
	assert_memory_equal(&p.keys[0].key, &k, sizeof(k));
	/* A resolve (port 0) records the key, not a port, and keeps its port. */
	k = key_of(3);
	circpool_note(&p, 0, &k, T0 + 200);
	assert_int_equal(p.ports[0].port, 443);
	assert_memory_equal(&p.keys[0].key, &k, sizeof(k));
	assert_int_equal(p.keys[0].port, 443);
}

static void test_demand_older_than_the_window_is_forgotten(void **state)
{
	struct circpool p;
	struct isolation_key a = key_of(1), b = key_of(2);

	(void)state;
	circpool_init(&p, 60 * S);
	circpool_note(&p, 22, &a, T0);
	circpool_note(&p, 443, &b, T0 + 30 * S);
	circpool_expire(&p, T0 + 60 * S);
	assert_int_equal(p.nports, 2);
	circpool_expire(&p, T0 + 61 * S);
	assert_int_equal(p.nports, 1);
	assert_int_equal(p.ports[0].port, 443);
	assert_int_equal(p.nkeys, 1);
	assert_memory_equal(&p.keys[0].key, &b, sizeof(b));
	circpool_expire(&p, T0 + 91 * S);
	assert_int_equal(p.nports, 0);
	assert_int_equal(p.nkeys, 0);
}

static void test_existing_clean_circuits_are_kept_before_launching(void **state)
{
	struct circpool p;
	struct circpool_launch out[8];
	struct circpool_circ c[2] = { any_clean(0), any_clean(0) };
	size_t n;

	(void)state;
	circpool_init(&p, 0);
	circpool_note(&p, 443, NULL, T0); /* no exit of c allows it */
	n = circpool_plan(&p, 2, 10, c, 2, out, 8);
	/* Both kept (a port no exit allows must not churn good circuits),
	 * and one more is launched for 443. */
	assert_true(c[0].keep);
	assert_true(c[1].keep);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].port, 443);
	assert_false(out[0].has_key);
}

static void test_every_predicted_port_gets_a_circuit(void **state)
{
	struct circpool p;
	struct circpool_launch out[8];
	struct circpool_circ c[1] = { any_clean(1u << 1) }; /* allows ports[1] */
	size_t n;

	(void)state;
	circpool_init(&p, 0);
	circpool_note(&p, 22, NULL, T0);
	circpool_note(&p, 80, NULL, T0 + 1);
	circpool_note(&p, 443, NULL, T0 + 2); /* ports: 443, 80, 22 */
	n = circpool_plan(&p, 1, 10, c, 1, out, 8);
	/* min 1: the circuit allowing 80 is not what 443 needs, but it is
	 * kept; then 443 and 22 get one each. */
	assert_true(c[0].keep);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].port, 443);
	assert_int_equal(out[1].port, 22);
}

static void test_recent_keys_without_a_circuit_get_a_reserved_one(void **state)
{
	struct circpool p;
	struct circpool_launch out[8];
	struct isolation_key a = key_of(0xa), b = key_of(0xb), c3 = key_of(0xc);
	/* a has a usable circuit carrying streams, b a reserved clean one,
	 * c nothing. */
	struct circpool_circ c[3] = { keyed(false, 0xa), keyed(true, 0xb), any_clean(1) };
	size_t n;

	(void)state;
	circpool_init(&p, 0);
	circpool_note(&p, 80, &a, T0);
	circpool_note(&p, 80, &b, T0 + 1);
	circpool_note(&p, 8080, &c3, T0 + 2);
	n = circpool_plan(&p, 1, 10, c, 3, out, 8);
	assert_true(c[1].keep);
	assert_true(c[2].keep);
	/* c3 gets a reserved circuit for its port; c[2]'s exit allows only
	 * ports[0] (8080), so port 80 (ports[1]) gets one more. */
	assert_int_equal(n, 2);
	assert_true(out[0].has_key);
	assert_memory_equal(&out[0].key, &c3, sizeof(c3));
	assert_int_equal(out[0].port, 8080);
	assert_false(out[1].has_key);
	assert_int_equal(out[1].port, 80);
}

static void test_the_plan_never_exceeds_the_maximum(void **state)
{
	struct circpool p;
	struct circpool_launch out[32];
	struct circpool_circ c[3] = { any_clean(0), any_clean(0), keyed(true, 0x77) };
	size_t n;

	(void)state;
	circpool_init(&p, 0);
	for (unsigned i = 0; i < CIRCPOOL_KEYS_MAX; i++) {
		struct isolation_key k = key_of((uint8_t)(i + 1));
		circpool_note(&p, (uint16_t)(2000 + i), &k, T0 + i);
	}
	for (unsigned max = 1; max <= 12; max++) {
		unsigned kept = 0;

		n = circpool_plan(&p, max < 2 ? max : 2, max, c, 3, out, 32);
		for (unsigned i = 0; i < 3; i++)
			kept += c[i].keep;
		assert_int_equal(kept + n, max);
		/* The key 0x77 is not recent: its reserved circuit is surplus. */
		assert_false(c[2].keep);
	}
}

static void test_lowered_maximum_marks_surplus_clean_circuits(void **state)
{
	struct circpool p;
	struct circpool_launch out[8];
	struct circpool_circ c[5];
	unsigned kept = 0;
	size_t n;

	(void)state;
	circpool_init(&p, 0);
	for (unsigned i = 0; i < 5; i++)
		c[i] = any_clean(0);
	n = circpool_plan(&p, 2, 2, c, 5, out, 8);
	assert_int_equal(n, 0);
	for (unsigned i = 0; i < 5; i++)
		kept += c[i].keep;
	assert_int_equal(kept, 2);
}

static void test_launches_beyond_cap_still_count_against_the_bound(void **state)
{
	struct circpool_launch out[1];

	(void)state;
	assert_int_equal(plan_fresh(5, 10, out, 1), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_demand_launches_min_for_port_80),
		cmocka_unit_test(test_notes_are_most_recent_first_and_bounded),
		cmocka_unit_test(test_demand_older_than_the_window_is_forgotten),
		cmocka_unit_test(test_existing_clean_circuits_are_kept_before_launching),
		cmocka_unit_test(test_every_predicted_port_gets_a_circuit),
		cmocka_unit_test(test_recent_keys_without_a_circuit_get_a_reserved_one),
		cmocka_unit_test(test_the_plan_never_exceeds_the_maximum),
		cmocka_unit_test(test_lowered_maximum_marks_surplus_clean_circuits),
		cmocka_unit_test(test_launches_beyond_cap_still_count_against_the_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
