/* The Prometheus text exposition helpers (app/metrics.h): label-value and
 * HELP escaping, number formatting (NaN, infinities, shortest round trip),
 * histograms (cumulative buckets, the +Inf bucket, labels before le), and
 * the process_* metrics read from /proc/self, and the buffer-pool
 * exporter over real pools. The expected texts are the
 * exposition format 0.0.4 rules written out by hand; the integration test
 * (test/integration/test_metrics.sh) runs promtool on a real scrape. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "app/metrics.h"
#include "pool/mag.h"

/* The buffer's text as a NUL-terminated string (owned by the buffer). */
static const char *text(struct metrics_buf *b)
{
	assert_false(b->failed);
	assert_non_null(b->p);
	assert_true(b->len < b->cap);
	b->p[b->len] = '\0';
	return b->p;
}

static void test_metrics_escapes_backslash_quote_newline_in_label_values(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	n = metrics_escape_label(out, sizeof(out), "a\\b\"c\nd");
	assert_string_equal(out, "a\\\\b\\\"c\\nd");
	assert_int_equal(n, strlen("a\\\\b\\\"c\\nd"));
	n = metrics_escape_label(out, sizeof(out), "plain-ascii_1.2");
	assert_string_equal(out, "plain-ascii_1.2");
	assert_int_equal(n, 15);
	/* UTF-8 passes through untouched (the format is UTF-8). */
	n = metrics_escape_label(out, sizeof(out), "caf\xc3\xa9");
	assert_string_equal(out, "caf\xc3\xa9");
	assert_int_equal(n, 5);
	n = metrics_escape_label(out, sizeof(out), "");
	assert_string_equal(out, "");
	assert_int_equal(n, 0);
}

static void test_metrics_escape_label_truncates_without_splitting_an_escape(void **state)
{
	char out[8];
	size_t n;

	(void)state;
	/* "abcdef\"" needs 8 characters + NUL: the escape does not fit in 7. */
	memset(out, 'X', sizeof(out));
	n = metrics_escape_label(out, sizeof(out), "abcdef\"");
	assert_int_equal(n, 8);
	assert_string_equal(out, "abcdef");
	/* Nothing after the cut is written, even a character that would fit. */
	n = metrics_escape_label(out, 4, "ab\\c");
	assert_int_equal(n, 5);
	assert_string_equal(out, "ab");
	/* cap 0 writes nothing and still reports the need. */
	memset(out, 'X', sizeof(out));
	n = metrics_escape_label(out, 0, "\n");
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 'X');
	/* Exactly fitting. */
	n = metrics_escape_label(out, 3, "\n");
	assert_int_equal(n, 2);
	assert_string_equal(out, "\\n");
}

static void test_metrics_formats_nan_and_infinities_as_the_format_spells_them(void **state)
{
	char v[METRICS_DOUBLE_MAX];
	struct metrics_buf b = { 0 };

	(void)state;
	metrics_format_double(v, sizeof(v), NAN);
	assert_string_equal(v, "NaN");
	metrics_format_double(v, sizeof(v), INFINITY);
	assert_string_equal(v, "+Inf");
	metrics_format_double(v, sizeof(v), -INFINITY);
	assert_string_equal(v, "-Inf");
	metrics_sample(&b, "onionring_x", "shard=\"1\"", NAN);
	metrics_sample(&b, "onionring_x", NULL, -INFINITY);
	assert_string_equal(text(&b), "onionring_x{shard=\"1\"} NaN\nonionring_x -Inf\n");
	metrics_buf_free(&b);
}

static void test_metrics_formats_doubles_as_the_shortest_exact_decimal(void **state)
{
	static const struct {
		double v;
		const char *s;
	} cases[] = {
		{ 0.01, "0.01" }, { 0.1, "0.1" }, { 2.5, "2.5" }, { 60, "60" }, { 0, "0" },
		{ -1, "-1" }, { 0.1 + 0.2, "0.30000000000000004" }, { 1e20, "1e+20" },
		{ 18446744073709551615.0, "1.8446744073709552e+19" },
	};
	char v[METRICS_DOUBLE_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		metrics_format_double(v, sizeof(v), cases[i].v);
		assert_string_equal(v, cases[i].s);
		assert_true(strtod(v, NULL) == cases[i].v);
	}
}

static void test_metrics_family_escapes_help_and_names_the_type(void **state)
{
	struct metrics_buf b = { 0 };

	(void)state;
	metrics_family(&b, "onionring_a_total", METRICS_COUNTER, "Back\\slash and\nnewline.");
	metrics_sample_u64(&b, "onionring_a_total", "shard=\"0\"", 18446744073709551615ull);
	metrics_family(&b, "onionring_b", METRICS_GAUGE, "A gauge.");
	metrics_sample(&b, "onionring_b", NULL, 0.25);
	metrics_family(&b, "onionring_c_seconds", METRICS_HISTOGRAM, "A histogram.");
	assert_string_equal(text(&b),
			    "# HELP onionring_a_total Back\\\\slash and\\nnewline.\n"
			    "# TYPE onionring_a_total counter\n"
			    "onionring_a_total{shard=\"0\"} 18446744073709551615\n"
			    "# HELP onionring_b A gauge.\n"
			    "# TYPE onionring_b gauge\n"
			    "onionring_b 0.25\n"
			    "# HELP onionring_c_seconds A histogram.\n"
			    "# TYPE onionring_c_seconds histogram\n");
	metrics_buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
}

static void test_metrics_cumulate_turns_per_bucket_counts_into_running_sums(void **state)
{
	uint64_t in[5] = { 3, 0, 2, 7, 1 }, out[5];

	(void)state;
	metrics_cumulate(in, out, 5);
	assert_int_equal(out[0], 3);
	assert_int_equal(out[1], 3);
	assert_int_equal(out[2], 5);
	assert_int_equal(out[3], 12);
	assert_int_equal(out[4], 13);
	/* In place. */
	metrics_cumulate(in, in, 5);
	assert_memory_equal(in, out, sizeof(out));
}

static void test_metrics_histogram_has_cumulative_buckets_then_inf_sum_count(void **state)
{
	static const double bounds[3] = { 0.01, 0.1, 1 };
	uint64_t per[3] = { 1, 2, 3 }, cum[3];
	struct metrics_buf b = { 0 };

	(void)state;
	/* Seven observations: six within 1 s, one above (only in +Inf). */
	metrics_cumulate(per, cum, 3);
	metrics_histogram(&b, "onionring_h_seconds", NULL, bounds, cum, 3, 7, 4.5);
	assert_string_equal(text(&b),
			    "onionring_h_seconds_bucket{le=\"0.01\"} 1\n"
			    "onionring_h_seconds_bucket{le=\"0.1\"} 3\n"
			    "onionring_h_seconds_bucket{le=\"1\"} 6\n"
			    "onionring_h_seconds_bucket{le=\"+Inf\"} 7\n"
			    "onionring_h_seconds_sum 4.5\n"
			    "onionring_h_seconds_count 7\n");
	metrics_buf_free(&b);
}

static void test_metrics_histogram_puts_labels_before_le_and_on_sum_and_count(void **state)
{
	static const double bounds[1] = { 0.5 };
	uint64_t cum[1] = { 2 };
	struct metrics_buf b = { 0 };

	(void)state;
	metrics_histogram(&b, "onionring_h_seconds", "shard=\"1\"", bounds, cum, 1, 2, 0.75);
	assert_string_equal(text(&b),
			    "onionring_h_seconds_bucket{shard=\"1\",le=\"0.5\"} 2\n"
			    "onionring_h_seconds_bucket{shard=\"1\",le=\"+Inf\"} 2\n"
			    "onionring_h_seconds_sum{shard=\"1\"} 0.75\n"
			    "onionring_h_seconds_count{shard=\"1\"} 2\n");
	metrics_buf_free(&b);
}

/* Counters read one at a time while the owner shard moves them can give a
 * count below the last bucket or a dip between buckets: the output must
 * still be a valid histogram (non-decreasing, +Inf == count). */
static void test_metrics_histogram_never_lets_inf_fall_below_a_bucket(void **state)
{
	static const double bounds[3] = { 1, 2, 3 };
	uint64_t cum[3] = { 4, 3, 9 };
	struct metrics_buf b = { 0 };

	(void)state;
	metrics_histogram(&b, "onionring_h_seconds", "", bounds, cum, 3, 5, NAN);
	assert_string_equal(text(&b),
			    "onionring_h_seconds_bucket{le=\"1\"} 4\n"
			    "onionring_h_seconds_bucket{le=\"2\"} 4\n"
			    "onionring_h_seconds_bucket{le=\"3\"} 9\n"
			    "onionring_h_seconds_bucket{le=\"+Inf\"} 9\n"
			    "onionring_h_seconds_sum NaN\n"
			    "onionring_h_seconds_count 9\n");
	metrics_buf_free(&b);
}

static void test_metrics_histogram_without_bounds_is_only_inf(void **state)
{
	struct metrics_buf b = { 0 };

	(void)state;
	metrics_histogram(&b, "onionring_h_seconds", NULL, NULL, NULL, 0, 0, 0);
	assert_string_equal(text(&b),
			    "onionring_h_seconds_bucket{le=\"+Inf\"} 0\n"
			    "onionring_h_seconds_sum 0\n"
			    "onionring_h_seconds_count 0\n");
	metrics_buf_free(&b);
}

/* The buffer doubles past its first 8 KiB without losing a line. */
static void test_metrics_buf_grows_and_keeps_every_line(void **state)
{
	struct metrics_buf b = { 0 };
	char label[32], want[64];
	const char *t;

	(void)state;
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(label, sizeof(label), "shard=\"%u\"", i);
		metrics_sample_u64(&b, "onionring_grow", label, i);
	}
	t = text(&b);
	assert_true(b.len > 8192 * 4);
	assert_non_null(strstr(t, "onionring_grow{shard=\"0\"} 0\n"));
	snprintf(want, sizeof(want), "onionring_grow{shard=\"4999\"} 4999\n");
	assert_string_equal(t + b.len - strlen(want), want);
	metrics_buf_free(&b);
}

/* A failed buffer stays failed and writes nothing more. */
static void test_metrics_buf_once_failed_ignores_writes(void **state)
{
	struct metrics_buf b = { 0 };

	(void)state;
	b.failed = true;
	metrics_family(&b, "onionring_x", METRICS_GAUGE, "x");
	metrics_sample(&b, "onionring_x", NULL, 1);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	metrics_buf_free(&b);
}

/* Find "name value\n" in t and return the value. */
static double value_of(const char *t, const char *name)
{
	char key[128];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(t, key);
	assert_non_null(p);
	return strtod(p + strlen(key), NULL);
}

static void test_metrics_process_reports_cpu_rss_and_fds_of_this_process(void **state)
{
	struct metrics_buf b = { 0 };
	const char *t;
	volatile double spin = 0;
	double rss, fds;
	FILE *f;

	(void)state;
	for (unsigned i = 0; i < 20000000; i++) /* some CPU time to report */
		spin += i;
	assert_true(spin > 0);
	f = fopen("/proc/self/stat", "r"); /* one more open fd */
	assert_non_null(f);
	metrics_process(&b);
	t = text(&b);
	assert_non_null(strstr(t, "# TYPE process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(t, "# TYPE process_resident_memory_bytes gauge\n"));
	assert_true(value_of(t, "process_cpu_seconds_total") > 0);
	rss = value_of(t, "process_resident_memory_bytes");
	assert_true(rss >= 64 * 1024 && rss < 64.0 * 1024 * 1024 * 1024);
	assert_true(value_of(t, "process_virtual_memory_bytes") >= rss);
	fds = value_of(t, "process_open_fds");
	assert_true(fds >= 4); /* stdin, stdout, stderr and f */
	fclose(f);
	metrics_buf_free(&b);
}

/* The sample line of name{labels} in t, parsed as an integer. */
static uint64_t sample_of(const char *t, const char *name, const char *labels)
{
	char key[256];
	const char *p;

	snprintf(key, sizeof(key), "\n%s{%s} ", name, labels);
	p = strstr(t, key);
	if (!p)
		fail_msg("no sample %s", key + 1);
	return strtoull(p + strlen(key), NULL, 10);
}

static int count_of(const char *t, const char *needle)
{
	int n = 0;

	for (const char *p = t; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void test_metrics_buf_pools_writes_nothing_without_a_pool(void **state)
{
	struct metrics_buf b = { 0 };

	(void)state;
	metrics_buf_pools(&b, NULL, 0);
	assert_int_equal(b.len, 0);
	metrics_buf_free(&b);
}

/* Two real pools, traffic on shard 1 of one: every family appears once
 * (both pools' samples in it), the per-shard numbers are the pool's own
 * counters (hits + misses == gets; puts == buffers given back), names are
 * escaped, and the foreign cache has its own shard label. */
static void test_metrics_buf_pools_exports_magazines_per_shard_and_depot_per_pool(void **state)
{
	struct buf_pool *cells = buf_pool_new(514, 2, 1u << 20), *io = buf_pool_new(4096, 2, 1u << 22);
	struct metrics_pool pools[2] = { { "cells", NULL }, { "i\"o", NULL } };
	struct metrics_buf b = { 0 };
	struct buf_pool_stats st;
	void *objs[300];
	const char *t;
	size_t got = 0;

	(void)state;
	assert_non_null(cells);
	assert_non_null(io);
	pools[0].pool = cells;
	pools[1].pool = io;
	for (size_t i = 0; i < 300; i++)
		if ((objs[i] = buf_get(cells, 1)) != NULL)
			got++;
	assert_true(got > 0);
	for (size_t i = 0; i < 300; i++)
		if (objs[i])
			buf_put(cells, 1, objs[i]);
	metrics_buf_pools(&b, pools, 2);
	t = text(&b);
	buf_pool_shard_stats(cells, 1, &st);
	assert_int_equal(sample_of(t, "onionring_pool_magazine_hits_total", "pool=\"cells\",shard=\"1\"") +
				 sample_of(t, "onionring_pool_magazine_misses_total", "pool=\"cells\",shard=\"1\""),
			 300);
	assert_int_equal(sample_of(t, "onionring_pool_magazine_hits_total", "pool=\"cells\",shard=\"1\""), st.hits);
	assert_int_equal(sample_of(t, "onionring_pool_depot_exchanges_total", "pool=\"cells\",shard=\"1\""),
			 st.exchanges);
	assert_int_equal(sample_of(t, "onionring_pool_puts_total", "pool=\"cells\",shard=\"1\""), got);
	assert_int_equal(sample_of(t, "onionring_pool_get_failures_total", "pool=\"cells\",shard=\"1\""), 300 - got);
	assert_int_equal(sample_of(t, "onionring_pool_cached_objects", "pool=\"cells\",shard=\"1\""), st.held);
	assert_int_equal(sample_of(t, "onionring_pool_magazine_hits_total", "pool=\"cells\",shard=\"0\""), 0);
	assert_int_equal(sample_of(t, "onionring_pool_magazine_hits_total", "pool=\"i\\\"o\",shard=\"foreign\""), 0);
	buf_pool_stats(cells, &st);
	assert_int_equal(sample_of(t, "onionring_pool_carved_objects", "pool=\"cells\""), st.frontier);
	assert_int_equal(sample_of(t, "onionring_pool_max_objects", "pool=\"cells\""), st.max_objs);
	assert_int_equal(sample_of(t, "onionring_pool_depot_magazines", "pool=\"cells\",state=\"full\""), st.depot_full);
	/* Each family once, with 2 pools x (2 shards + foreign) samples. */
	assert_int_equal(count_of(t, "# TYPE onionring_pool_magazine_hits_total counter\n"), 1);
	assert_int_equal(count_of(t, "\nonionring_pool_magazine_hits_total{"), 6);
	assert_int_equal(count_of(t, "# TYPE onionring_pool_depot_magazines gauge\n"), 1);
	assert_int_equal(count_of(t, "\nonionring_pool_depot_magazines{"), 4);
	metrics_buf_free(&b);
	buf_pool_free(cells);
	buf_pool_free(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_escapes_backslash_quote_newline_in_label_values),
		cmocka_unit_test(test_metrics_escape_label_truncates_without_splitting_an_escape),
		cmocka_unit_test(test_metrics_formats_nan_and_infinities_as_the_format_spells_them),
		cmocka_unit_test(test_metrics_formats_doubles_as_the_shortest_exact_decimal),
		cmocka_unit_test(test_metrics_family_escapes_help_and_names_the_type),
		cmocka_unit_test(test_metrics_cumulate_turns_per_bucket_counts_into_running_sums),
		cmocka_unit_test(test_metrics_histogram_has_cumulative_buckets_then_inf_sum_count),
		cmocka_unit_test(test_metrics_histogram_puts_labels_before_le_and_on_sum_and_count),
		cmocka_unit_test(test_metrics_histogram_never_lets_inf_fall_below_a_bucket),
		cmocka_unit_test(test_metrics_histogram_without_bounds_is_only_inf),
		cmocka_unit_test(test_metrics_buf_grows_and_keeps_every_line),
		cmocka_unit_test(test_metrics_buf_once_failed_ignores_writes),
		cmocka_unit_test(test_metrics_process_reports_cpu_rss_and_fds_of_this_process),
		cmocka_unit_test(test_metrics_buf_pools_writes_nothing_without_a_pool),
		cmocka_unit_test(test_metrics_buf_pools_exports_magazines_per_shard_and_depot_per_pool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
