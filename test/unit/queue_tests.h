/* The tests that core/mpsc.h and core/spsc.h share, written once: FIFO,
 * full and empty are reported, positions wrap around many laps, and with
 * PRODUCERS producer threads every item arrives exactly once and each
 * producer's items arrive in order.
 *
 * Include once from a test program after defining QUEUE (the type and
 * function prefix: mpsc or spsc), PRODUCERS and PER_PRODUCER, and after
 * including the queue's header; it defines main(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "core/clock.h"

#define Q_CAT2(a, b) a##_##b
#define Q_CAT(a, b) Q_CAT2(a, b)
#define Q(fn) Q_CAT(QUEUE, fn)

static void *item(uintptr_t v) { return (void *)v; }

static void test_new_rejects_capacities_that_are_not_powers_of_two(void **state)
{
	(void)state;
	assert_null(Q(new)(0));
	assert_null(Q(new)(1));
	assert_null(Q(new)(12));
	Q(free)(NULL);
}

static void test_pops_in_push_order_and_reports_full_and_empty(void **state)
{
	struct QUEUE *q = Q(new)(8);
	void *v;

	(void)state;
	assert_false(Q(pop)(q, &v));
	for (uintptr_t i = 0; i < 8; i++)
		assert_true(Q(push)(q, item(i + 100)));
	assert_false(Q(push)(q, item(1)));
	for (uintptr_t i = 0; i < 8; i++) {
		assert_true(Q(pop)(q, &v));
		assert_ptr_equal(v, item(i + 100));
	}
	assert_false(Q(pop)(q, &v));
	Q(free)(q);
}

static void test_wraps_around_many_laps(void **state)
{
	struct QUEUE *q = Q(new)(4);
	uintptr_t next_in = 0, next_out = 0;
	void *v;

	(void)state;
	for (int round = 0; round < 10000; round++) {
		int k = 1 + round % 4;

		for (int i = 0; i < k; i++)
			assert_true(Q(push)(q, item(next_in++)));
		for (int i = 0; i < k; i++) {
			assert_true(Q(pop)(q, &v));
			assert_ptr_equal(v, item(next_out++));
		}
	}
	assert_false(Q(pop)(q, &v));
	Q(free)(q);
}

struct mp_run {
	struct QUEUE *q;
	unsigned id;
	uint64_t deadline_ns;
};

static void *mp_producer(void *arg)
{
	struct mp_run *r = arg;

	for (uintptr_t i = 1; i <= PER_PRODUCER && clock_mono_ns() < r->deadline_ns;) {
		if (Q(push)(r->q, item(((uintptr_t)r->id << 32) | i)))
			i++;
		else
			sched_yield();
	}
	return NULL;
}

static void test_delivers_every_item_once_in_per_producer_order(void **state)
{
	struct QUEUE *q = Q(new)(64);
	struct mp_run runs[PRODUCERS];
	pthread_t th[PRODUCERS];
	uintptr_t last[PRODUCERS] = { 0 };
	uint64_t got = 0, deadline = clock_mono_ns() + 60ull * 1000000000ull;
	void *v;

	(void)state;
	for (unsigned i = 0; i < PRODUCERS; i++) {
		runs[i] = (struct mp_run){ .q = q, .id = i, .deadline_ns = deadline };
		assert_int_equal(pthread_create(&th[i], NULL, mp_producer, &runs[i]), 0);
	}
	while (got < PRODUCERS * (uint64_t)PER_PRODUCER && clock_mono_ns() < deadline) {
		uintptr_t x, id;

		if (!Q(pop)(q, &v)) {
			sched_yield();
			continue;
		}
		x = (uintptr_t)v;
		id = x >> 32;
		assert_true(id < PRODUCERS);
		assert_int_equal(x & 0xffffffffu, last[id] + 1);
		last[id]++;
		got++;
	}
	for (unsigned i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(got, PRODUCERS * (uint64_t)PER_PRODUCER);
	assert_false(Q(pop)(q, &v));
	Q(free)(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects_capacities_that_are_not_powers_of_two),
		cmocka_unit_test(test_pops_in_push_order_and_reports_full_and_empty),
		cmocka_unit_test(test_wraps_around_many_laps),
		cmocka_unit_test(test_delivers_every_item_once_in_per_producer_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
