/* Unit tests for app/oom: the MaxMemInQueues choice of circuits (oldest
 * queued data first, until enough is freed) and each shard's share.
 * Not for: counting or closing (test_reload.sh / the OOM integration step). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "app/oom.h"

#define MB (1024ull * 1024ull)

static void test_oom_excess_is_zero_up_to_the_limit(void **state)
{
	(void)state;
	assert_int_equal(oom_excess(64 * MB, 64 * MB), 0);
	assert_int_equal(oom_excess(10 * MB, 64 * MB), 0);
	assert_int_equal(oom_excess(0, 0), 0);
}

static void test_oom_excess_frees_down_to_90_percent(void **state)
{
	(void)state;
	assert_int_equal(oom_excess(120 * MB, 100 * MB), 30 * MB);
	assert_int_equal(oom_excess(101, 100), 11);
	/* No overflow near 2^64: 90% of UINT64_MAX - 1 is 16602069666338596452. */
	assert_int_equal(oom_excess(UINT64_MAX, UINT64_MAX - 1), 1844674407370955163ull);
}

static void test_oom_select_over_shards_asks_the_one_with_the_oldest_data(void **state)
{
	/* The coordinator's use: one item per shard. */
	struct oom_item shards[] = {
		{ .bytes = 300 * MB, .oldest_ns = 900, .id = 0 }, /* a busy, young queue */
		{ .bytes = 2 * MB, .oldest_ns = 100, .id = 1 },   /* a stalled client */
	};

	(void)state;
	assert_int_equal(oom_select(shards, 2, 1 * MB), 1);
	assert_int_equal(shards[0].id, 1);
}

static void test_oom_select_closes_the_oldest_queues_first(void **state)
{
	struct oom_item it[] = {
		{ .bytes = 300, .oldest_ns = 5000, .id = 1 },
		{ .bytes = 100, .oldest_ns = 1000, .id = 2 }, /* oldest */
		{ .bytes = 900, .oldest_ns = 0, .id = 3 },    /* nothing queued: never */
		{ .bytes = 200, .oldest_ns = 2000, .id = 4 },
		{ .bytes = 50, .oldest_ns = 9000, .id = 5 },
	};
	size_t k;

	(void)state;
	k = oom_select(it, 5, 250);
	assert_int_equal(k, 2); /* 100 (t=1000) + 200 (t=2000) >= 250 */
	assert_int_equal(it[0].id, 2);
	assert_int_equal(it[1].id, 4);
	assert_int_equal(it[2].id, 1);
	assert_int_equal(it[3].id, 5);
	assert_int_equal(it[4].id, 3);
}

static void test_oom_select_prefers_the_older_small_queue_to_a_newer_big_one(void **state)
{
	struct oom_item it[] = {
		{ .bytes = 10 * MB, .oldest_ns = 20, .id = 1 },
		{ .bytes = 1, .oldest_ns = 10, .id = 2 },
	};

	(void)state;
	/* tor orders by age, not size: the old trickle goes too. */
	assert_int_equal(oom_select(it, 2, 2), 2);
	assert_int_equal(it[0].id, 2);
}

static void test_oom_select_edge_cases(void **state)
{
	struct oom_item it[] = {
		{ .bytes = 10, .oldest_ns = 3, .id = 1 },
		{ .bytes = 20, .oldest_ns = 3, .id = 2 }, /* same age: more bytes first */
		{ .bytes = 0, .oldest_ns = 1, .id = 3 },  /* an age but no bytes: never */
	};

	(void)state;
	assert_int_equal(oom_select(it, 3, 0), 0);
	assert_int_equal(oom_select(NULL, 0, 100), 0);
	assert_int_equal(oom_select(it, 3, 15), 1);
	assert_int_equal(it[0].id, 2);
	/* More asked than held: every queue with data. */
	assert_int_equal(oom_select(it, 3, 1000), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oom_excess_is_zero_up_to_the_limit),
		cmocka_unit_test(test_oom_excess_frees_down_to_90_percent),
		cmocka_unit_test(test_oom_select_over_shards_asks_the_one_with_the_oldest_data),
		cmocka_unit_test(test_oom_select_closes_the_oldest_queues_first),
		cmocka_unit_test(test_oom_select_prefers_the_older_small_queue_to_a_newer_big_one),
		cmocka_unit_test(test_oom_select_edge_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
