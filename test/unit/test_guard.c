/* Tests for app/guard: guard-spec scenarios over the synthetic consensus
 * (primary guards, falling back when they are down, the retry schedule,
 * confirmed ordering) and the state file (round trip, corrupt file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/guard.h"
#include "core/config.h"
#include "test/unit/synthnet.h"

#define NOW ((time_t)1800000000)

struct gw {
	struct synthnet *s;
	struct nodelist *nl;
	struct config *cfg;
	struct path_sel *ps;
	struct guard_state *gs;
};

static struct gw *gw_new(void)
{
	struct gw *w = calloc(1, sizeof(*w));

	w->s = synthnet_new(3000, 77);
	w->nl = nodelist_new(&w->s->c, w->s->md_ptrs, w->s->n_mds);
	w->cfg = config_new_defaults();
	w->ps = path_sel_new(w->nl, w->cfg);
	w->gs = guard_state_new();
	guard_on_consensus(w->gs, w->ps, NOW);
	return w;
}

static void gw_free(struct gw *w)
{
	guard_state_free(w->gs);
	path_sel_free(w->ps);
	config_free(w->cfg);
	nodelist_free(w->nl);
	synthnet_free(w->s);
	free(w);
}

static void test_guard_samples_filtered_set_and_three_primaries(void **state)
{
	struct gw *w = gw_new();
	struct guard_pick pk;

	(void)state;
	assert_int_equal(w->gs->n_prim, 3);
	assert_true(w->gs->n >= 20); /* guard-spec MIN_FILTERED_SAMPLE */
	for (size_t i = 0; i < w->gs->n; i++)
		assert_true(node_has_flags(w->gs->e[i].node, RFLAG_GUARD | RFLAG_STABLE | RFLAG_FAST | RFLAG_V2DIR));
	/* NUM_USABLE_PRIMARY_GUARDS = 1: always the first primary. */
	for (int k = 0; k < 50; k++) {
		assert_true(guard_select(w->gs, w->ps, NULL, false, NOW, &pk));
		assert_int_equal(pk.entry, w->gs->prim[0]);
		assert_int_equal(pk.usable, GUARD_USABLE_ON_COMPLETION);
	}
	gw_free(w);
}

static void test_guard_primaries_down_moves_to_next_and_confirms_it(void **state)
{
	struct gw *w = gw_new();
	struct guard_pick pk;
	size_t p0 = w->gs->prim[0], p1 = w->gs->prim[1], p2 = w->gs->prim[2];

	(void)state;
	guard_on_failure(w->gs, w->gs->e[p0].id, NOW);
	assert_true(guard_select(w->gs, w->ps, NULL, false, NOW + 1, &pk));
	assert_int_equal(pk.entry, p1);
	guard_on_failure(w->gs, w->gs->e[p1].id, NOW + 1);
	guard_on_failure(w->gs, w->gs->e[p2].id, NOW + 1);
	/* All primaries down: an exploratory, non-primary guard. */
	assert_true(guard_select(w->gs, w->ps, NULL, false, NOW + 2, &pk));
	assert_int_equal(pk.usable, GUARD_USABLE_IF_NO_BETTER);
	assert_false(w->gs->e[pk.entry].primary);
	assert_true(w->gs->e[pk.entry].pending);
	size_t x = pk.entry;
	/* A second circuit explores a different guard (x is pending). */
	assert_true(guard_select(w->gs, w->ps, NULL, false, NOW + 2, &pk));
	assert_true(pk.entry != x);
	guard_on_success(w->gs, w->gs->e[x].id, NOW + 3);
	assert_int_equal(w->gs->e[x].confirmed_idx, 0);
	/* guard-spec 4.4: a confirmed guard replaces non-confirmed primaries. */
	assert_int_equal(w->gs->prim[0], x);
	assert_true(guard_select(w->gs, w->ps, NULL, false, NOW + 4, &pk));
	assert_int_equal(pk.entry, x);
	gw_free(w);
}

static void test_guard_dir_guards_are_the_usable_primaries_in_order(void **state)
{
	struct gw *w = gw_new();
	uint8_t ids[8][SHA1_LEN];
	size_t p0 = w->gs->prim[0], p1 = w->gs->prim[1], p2 = w->gs->prim[2];

	(void)state;
	/* guard-n-primary-dir-guards-to-use defaults to 3 */
	assert_int_equal(guard_dir_guards(w->gs, ids, 8), 3);
	assert_memory_equal(ids[0], w->gs->e[p0].id, SHA1_LEN);
	assert_memory_equal(ids[1], w->gs->e[p1].id, SHA1_LEN);
	assert_memory_equal(ids[2], w->gs->e[p2].id, SHA1_LEN);
	for (size_t i = 0; i < 3; i++)
		assert_true(node_has_flags(w->gs->e[w->gs->prim[i]].node, RFLAG_V2DIR));
	assert_int_equal(guard_dir_guards(w->gs, ids, 2), 2); /* cap */
	/* an unreachable one is left out; the others keep their order */
	guard_on_failure(w->gs, w->gs->e[p1].id, NOW);
	assert_int_equal(guard_dir_guards(w->gs, ids, 8), 2);
	assert_memory_equal(ids[0], w->gs->e[p0].id, SHA1_LEN);
	assert_memory_equal(ids[1], w->gs->e[p2].id, SHA1_LEN);
	gw_free(w);
}

static void test_guard_retry_schedule_follows_guard_spec_table(void **state)
{
	struct gw *w = gw_new();
	struct guard_pick pk;
	size_t p0 = w->gs->prim[0];

	(void)state;
	assert_int_equal(guard_retry_interval(true, 0), 600);
	assert_int_equal(guard_retry_interval(true, 7 * 3600), 90 * 60);
	assert_int_equal(guard_retry_interval(true, 100 * 3600), 4 * 3600);
	assert_int_equal(guard_retry_interval(true, 200 * 3600), 9 * 3600);
	assert_int_equal(guard_retry_interval(false, 0), 3600);
	assert_int_equal(guard_retry_interval(false, 7 * 3600), 4 * 3600);
	assert_int_equal(guard_retry_interval(false, 100 * 3600), 18 * 3600);
	assert_int_equal(guard_retry_interval(false, 200 * 3600), 36 * 3600);
	assert_true(guard_select(w->gs, w->ps, NULL, false, NOW, &pk));
	guard_on_failure(w->gs, w->gs->e[p0].id, NOW);
	guard_retry_due(w->gs, NOW + 599);
	assert_int_equal(w->gs->e[p0].reach, GUARD_REACH_NO);
	guard_retry_due(w->gs, NOW + 600);
	assert_int_equal(w->gs->e[p0].reach, GUARD_REACH_MAYBE);
	assert_true(guard_select(w->gs, w->ps, NULL, false, NOW + 600, &pk));
	assert_int_equal(pk.entry, p0);
	gw_free(w);
}

/* guard-spec 4.5/4.6: a primary guard that failed stays <no> until its
 * retry time (PRIMARY_GUARDS_RETRY_SCHED: 10 min at first). Ticking every
 * second meanwhile (guardmgr does), the choice stays on the next primary:
 * it neither flaps back to the failed guard nor moves it forward. */
static void test_guard_unreachable_primary_is_held_back_until_its_retry_time(void **state)
{
	struct gw *w = gw_new();
	struct guard_pick pk;
	size_t p0 = w->gs->prim[0], p1 = w->gs->prim[1];
	time_t tried;

	(void)state;
	assert_true(guard_select(w->gs, w->ps, NULL, false, NOW, &pk));
	assert_int_equal(pk.entry, p0);
	guard_on_failure(w->gs, w->gs->e[p0].id, NOW);
	tried = w->gs->e[p0].last_tried;
	for (time_t t = NOW + 1; t < NOW + 600; t++) {
		assert_true(guard_select(w->gs, w->ps, NULL, false, t, &pk));
		assert_int_equal(pk.entry, p1);
		assert_int_equal(w->gs->e[p0].reach, GUARD_REACH_NO);
		guard_on_success(w->gs, w->gs->e[p1].id, t);
	}
	assert_true(w->gs->e[p0].last_tried == tried); /* never tried meanwhile */
	/* Its retry time: p1 was confirmed meanwhile and now comes first
	 * (4.4), so the primaries are p1, p0, ...; p0 is <maybe> again. */
	assert_true(guard_select(w->gs, w->ps, NULL, false, NOW + 600, &pk));
	assert_int_equal(w->gs->e[p0].reach, GUARD_REACH_MAYBE);
	assert_int_equal(pk.entry, p1);
	assert_false(guard_all_held(w->gs, NOW + 600, NULL));
	gw_free(w);
}

/* Every sampled guard down and failing at once (connection refused), a
 * selection every second for two minutes: the 4.6 "mark all <maybe> and
 * keep trying" happens at most once per GUARD_EXHAUSTED_RETRY_SECS, so no
 * guard is tried more than twice, and in between no guard is chosen
 * (guard_all_held) rather than cycling through them. */
static void test_guard_all_guards_down_are_retried_once_a_minute_not_in_a_loop(void **state)
{
	struct gw *w = gw_new();
	struct guard_pick pk;
	unsigned *tries = calloc(w->gs->n, sizeof(*tries)), resets = 0, held_ticks = 0, max_tries = 0;
	time_t retry_at = 0;
	bool was_held = true;

	(void)state;
	for (size_t i = 0; i < w->gs->n; i++)
		guard_on_failure(w->gs, w->gs->e[i].id, NOW);
	for (time_t t = NOW; t < NOW + 120; t++) {
		bool ok = guard_select(w->gs, w->ps, NULL, false, t, &pk);

		if (ok) {
			assert_true(pk.entry < w->gs->n);
			tries[pk.entry]++;
			if (was_held)
				resets++;
			was_held = false;
			guard_on_failure(w->gs, w->gs->e[pk.entry].id, t);
			continue;
		}
		assert_true(guard_all_held(w->gs, t, &retry_at));
		assert_true(retry_at > t && retry_at <= t + GUARD_EXHAUSTED_RETRY_SECS);
		was_held = true;
		held_ticks++;
	}
	for (size_t i = 0; i < w->gs->n; i++)
		if (tries[i] > max_tries)
			max_tries = tries[i];
	assert_int_equal(resets, 2); /* at NOW and NOW + 60 */
	assert_true(max_tries >= 1 && max_tries <= 2);
	assert_true(held_ticks > 60); /* most of the time: nothing to try */
	/* The first primary is what the resets start with. */
	assert_int_equal(tries[w->gs->prim[0]], 2);
	free(tries);
	gw_free(w);
}

/* A directory guard that answered is reachable again (4.8) but not
 * confirmed (4.3: only circuits for user traffic confirm); a directory
 * request that could not reach it marks it <no> like any circuit (4.7),
 * which also drops it from the directory guards. */
static void test_guard_directory_answers_mark_reachable_without_confirming(void **state)
{
	struct gw *w = gw_new();
	uint8_t ids[8][SHA1_LEN];
	size_t p1 = w->gs->prim[1];

	(void)state;
	guard_on_failure(w->gs, w->gs->e[p1].id, NOW);
	assert_int_equal(guard_dir_guards(w->gs, ids, 8), 2);
	assert_true(w->gs->e[p1].failing_since == NOW);
	guard_on_reachable(w->gs, w->gs->e[p1].id, NOW + 5);
	assert_int_equal(w->gs->e[p1].reach, GUARD_REACH_YES);
	assert_true(w->gs->e[p1].failing_since == 0);
	assert_int_equal(w->gs->e[p1].confirmed_idx, -1);
	assert_true(w->gs->last_time_on_internet == NOW + 5);
	assert_int_equal(w->gs->prim[1], p1); /* primary order unchanged */
	assert_int_equal(guard_dir_guards(w->gs, ids, 8), 3);
	gw_free(w);
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/onionring-guard-XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static void test_guard_state_survives_restart(void **state)
{
	struct gw *w = gw_new();
	struct guard_state *g2 = guard_state_new();
	struct cbt_params cp;
	static struct cbt c1, c2;
	char *dir = tmpdir(), path[256];
	struct guard_pick pk;

	(void)state;
	cbt_params_get(&cp, NULL);
	cbt_init(&c1, &cp);
	cbt_init(&c2, &cp);
	for (int i = 0; i < 150; i++)
		cbt_add_time(&c1, 1000 + (uint32_t)i * 7);
	guard_on_success(w->gs, w->gs->e[w->gs->prim[1]].id, NOW);
	w->gs->e[0].extra = strdup("pb_use_attempts=3.000000");
	assert_int_equal(guard_statefile_save(dir, w->gs, &c1, NOW), 0);
	snprintf(path, sizeof(path), "%s/state.tmp", dir);
	assert_int_not_equal(access(path, F_OK), 0); /* renamed away */
	assert_int_equal(guard_statefile_load(dir, g2, &c2), 0);
	assert_int_equal(g2->n, w->gs->n);
	for (size_t i = 0; i < g2->n; i++) {
		assert_memory_equal(g2->e[i].id, w->gs->e[i].id, SHA1_LEN);
		assert_int_equal(g2->e[i].confirmed_idx, w->gs->e[i].confirmed_idx);
		assert_int_equal(g2->e[i].sampled_on, w->gs->e[i].sampled_on);
	}
	assert_string_equal(g2->e[0].extra, "pb_use_attempts=3.000000");
	assert_int_equal(c2.n, 150);
	assert_true(c2.have_estimate);
	/* After the restart the confirmed guard is the first primary again. */
	guard_on_consensus(g2, w->ps, NOW + 60);
	assert_true(guard_select(g2, w->ps, NULL, false, NOW + 60, &pk));
	assert_int_equal(g2->e[pk.entry].confirmed_idx, 0);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
	free(dir);
	guard_state_free(g2);
	gw_free(w);
}

static void write_text(const char *dir, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/state", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_guard_corrupt_state_is_moved_aside_and_fresh_state_used(void **state)
{
	static const char *const bad[] = {
		"Guard in=default rsa_id=ZZZZ sampled_on=2026-01-01T00:00:00 listed=1\n",
		"Guard in=default sampled_on=2026-01-01T00:00:00 listed=1\n",
		"Guard in=default rsa_id=0123456789ABCDEF0123456789ABCDEF01234567 sampled_on=yesterday listed=1\n",
		"CircuitBuildTimeBin 15 x\n",
		"Guard in=default rsa_id=0123456789ABCDEF0123456789ABCDEF01234567 sampled_on=2026-01-01T00:00:00 listed=1 confirmed_idx=0\n",
		"Guard\n",
		"\x01\x02garbage\n",
	};
	struct guard_state *gs = guard_state_new();
	struct cbt_params cp;
	static struct cbt c;
	char *dir = tmpdir(), path[256];

	(void)state;
	cbt_params_get(&cp, NULL);
	cbt_init(&c, &cp);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		write_text(dir, bad[k]);
		assert_int_equal(guard_statefile_load(dir, gs, &c), 1);
		assert_int_equal(gs->n, 0);
		assert_int_equal(c.n, 0);
		snprintf(path, sizeof(path), "%s/state.corrupt", dir);
		assert_int_equal(access(path, F_OK), 0);
		snprintf(path, sizeof(path), "%s/state", dir);
		assert_int_not_equal(access(path, F_OK), 0);
	}
	/* A valid one with another instance's line and unknown keys loads. */
	write_text(dir, "# comment\nTorVersion Tor 0.4.9\n"
			"Guard in=restricted rsa_id=0123456789ABCDEF0123456789ABCDEF01234567 sampled_on=2026-01-01T00:00:00 listed=1\n"
			"Guard in=default rsa_id=0123456789ABCDEF0123456789ABCDEF01234567 nickname=x sampled_on=2026-01-01T00:00:00 listed=0 unlisted_since=2026-01-02T00:00:00\n");
	assert_int_equal(guard_statefile_load(dir, gs, &c), 0);
	assert_int_equal(gs->n, 1);
	assert_int_equal(gs->n_foreign, 1);
	assert_false(gs->e[0].listed);
	/* A missing file is a fresh start, not an error. */
	snprintf(path, sizeof(path), "%s/state", dir);
	unlink(path);
	assert_int_equal(guard_statefile_load(dir, gs, &c), 0);
	assert_int_equal(gs->n, 0);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
	free(dir);
	guard_state_free(gs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guard_samples_filtered_set_and_three_primaries),
		cmocka_unit_test(test_guard_primaries_down_moves_to_next_and_confirms_it),
		cmocka_unit_test(test_guard_dir_guards_are_the_usable_primaries_in_order),
		cmocka_unit_test(test_guard_retry_schedule_follows_guard_spec_table),
		cmocka_unit_test(test_guard_unreachable_primary_is_held_back_until_its_retry_time),
		cmocka_unit_test(test_guard_all_guards_down_are_retried_once_a_minute_not_in_a_loop),
		cmocka_unit_test(test_guard_directory_answers_mark_reachable_without_confirming),
		cmocka_unit_test(test_guard_state_survives_restart),
		cmocka_unit_test(test_guard_corrupt_state_is_moved_aside_and_fresh_state_used),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
