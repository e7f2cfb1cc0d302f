/* Unit tests for core/log: log_redirect, the run-time change of the Log
 * destination (SIGHUP/SETCONF), including while other threads log; the
 * SafeLogging scrub helpers.
 * Not for the line format (every other test's output shows it). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

static char dir[] = "/tmp/onionring-test-log.XXXXXX";

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

/* Return the owned contents of the file name in dir ("" when missing). */
static char *slurp(const char *name)
{
	char path[256], *buf;
	FILE *f;
	long n;

	path_of(path, sizeof(path), name);
	f = fopen(path, "rb");
	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static bool file_has(const char *name, const char *text)
{
	char *s = slurp(name);
	bool r = strstr(s, text) != NULL;

	free(s);
	return r;
}

static void test_log_redirect_needs_a_private_descriptor_first(void **state)
{
	(void)state;
	/* Runs first: nothing has called log_set_file, lines go to stderr. */
	assert_int_equal(log_redirect(NULL), -EBUSY);
}

static void test_log_redirect_moves_lines_and_keeps_the_old_file_on_error(void **state)
{
	char a[256], b[256];

	(void)state;
	path_of(a, sizeof(a), "a.log");
	path_of(b, sizeof(b), "b.log");
	assert_int_equal(log_set_file(a), 0);
	log_notice("line one");
	assert_int_equal(log_redirect(b), 0);
	log_notice("line two");
	assert_int_equal(log_redirect("/nonexistent-onionring-dir/x.log"), -ENOENT);
	log_notice("line three");
	assert_true(file_has("a.log", "line one"));
	assert_false(file_has("a.log", "line two"));
	assert_true(file_has("b.log", "line two"));
	assert_true(file_has("b.log", "line three")); /* the failed switch left b */
	assert_false(file_has("b.log", "line one"));
}

/* logrotate renames the file, then SIGHUP: the same path is opened afresh. */
static void test_log_target_open_fails_cleanly_and_redirect_fd_takes_the_descriptor(void **state)
{
	char f[256];
	int fd;

	(void)state;
	path_of(f, sizeof(f), "f.log");
	/* A reload opens first and applies nothing when that fails. */
	assert_int_equal(log_target_open("/nonexistent-onionring-dir/x.log"), -ENOENT);
	assert_int_equal(log_redirect_fd(-1), -EBADF);
	assert_int_equal(log_set_file(NULL), 0);
	fd = log_target_open(f);
	assert_true(fd > 2);
	assert_int_equal(log_redirect_fd(fd), 0);
	assert_int_equal(fcntl(fd, F_GETFD), -1); /* consumed */
	log_notice("line in f");
	assert_true(file_has("f.log", "line in f"));
	assert_int_equal(log_set_file(NULL), 0);
}

static void test_log_redirect_to_the_same_path_reopens_a_rotated_file(void **state)
{
	char c[256], c1[256];

	(void)state;
	path_of(c, sizeof(c), "c.log");
	path_of(c1, sizeof(c1), "c.log.1");
	assert_int_equal(log_redirect(c), 0);
	log_notice("before rotation");
	assert_int_equal(rename(c, c1), 0);
	assert_int_equal(log_redirect(c), 0);
	log_notice("after rotation");
	assert_true(file_has("c.log.1", "before rotation"));
	assert_false(file_has("c.log.1", "after rotation"));
	assert_true(file_has("c.log", "after rotation"));
}

#define WRITERS 2
#define LINES 3000

static void *writer(void *arg)
{
	for (int i = 0; i < LINES; i++)
		log_notice("writer %d line %d end", (int)(intptr_t)arg, i);
	return NULL;
}

/* Count whole "writer W line N end" lines in s; fail on a torn one. */
static int count_lines(const char *s)
{
	int n = 0;

	for (const char *p = s, *nl; *p; p = nl + 1) {
		int w, i;
		const char *m;

		nl = strchr(p, '\n');
		assert_non_null(nl); /* every line is complete */
		m = strstr(p, "writer ");
		if (!m || m > nl)
			continue;
		assert_int_equal(sscanf(m, "writer %d line %d end", &w, &i), 2);
		assert_int_equal(strncmp(nl - 4, " end", 4), 0);
		n++;
	}
	return n;
}

static void test_log_redirect_while_threads_log_loses_and_tears_no_line(void **state)
{
	pthread_t t[WRITERS];
	char d[256], e[256];
	char *sd, *se;

	(void)state;
	path_of(d, sizeof(d), "d.log");
	path_of(e, sizeof(e), "e.log");
	assert_int_equal(log_redirect(d), 0);
	for (intptr_t i = 0; i < WRITERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)i), 0);
	for (int k = 0; k < 200; k++) /* bounded: the writers finish on their own */
		assert_int_equal(log_redirect(k % 2 ? d : e), 0);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	sd = slurp("d.log");
	se = slurp("e.log");
	assert_int_equal(count_lines(sd) + count_lines(se), WRITERS * LINES);
	free(sd);
	free(se);
}

static int teardown_dir(void **state)
{
	const char *names[] = { "a.log", "b.log", "c.log", "c.log.1", "d.log", "e.log", "f.log", "scrub.log" };
	char path[256];

	(void)state;
	log_set_file(NULL);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_of(path, sizeof(path), names[i]);
		unlink(path);
	}
	rmdir(dir);
	return 0;
}

static void test_log_scrub_hides_destinations_while_safe_logging_is_on(void **state)
{
	char buf[64];

	(void)state;
	assert_true(log_safe_logging()); /* tor's default: SafeLogging 1 */
	assert_string_equal(log_scrub("example.com"), "[scrubbed]");
	assert_string_equal(log_scrub(NULL), "[scrubbed]");
	assert_string_equal(log_scrub_dest(buf, sizeof(buf), "example.com", 80), "[scrubbed]");
	assert_string_equal(log_scrub_dest(buf, sizeof(buf), "2001:db8::1", 443), "[scrubbed]");
}

static void test_log_scrub_shows_destinations_with_safe_logging_0(void **state)
{
	char buf[64], small[8];

	(void)state;
	log_set_safe_logging(false);
	assert_false(log_safe_logging());
	assert_string_equal(log_scrub("example.com"), "example.com");
	assert_string_equal(log_scrub(NULL), "?");
	assert_string_equal(log_scrub_dest(buf, sizeof(buf), "example.com", 80), "example.com:80");
	assert_string_equal(log_scrub_dest(buf, sizeof(buf), "10.1.2.3", 65535), "10.1.2.3:65535");
	assert_string_equal(log_scrub_dest(buf, sizeof(buf), "2001:db8::1", 443), "[2001:db8::1]:443");
	assert_string_equal(log_scrub_dest(buf, sizeof(buf), "[2001:db8::1]", 443), "[2001:db8::1]:443");
	/* Truncated, never overrun, always terminated. */
	assert_string_equal(log_scrub_dest(small, sizeof(small), "example.com", 80), "example");
	assert_string_equal(log_scrub_dest(buf, 1, "example.com", 80), "");
	log_set_safe_logging(true);
	assert_string_equal(log_scrub_dest(small, sizeof(small), "example.com", 80), "[scrubb");
}

static void test_log_lines_with_scrubbed_destinations_hold_no_hostname(void **state)
{
	char path[256], buf[64];
	char *s;

	(void)state;
	path_of(path, sizeof(path), "scrub.log");
	assert_int_equal(log_set_file(path), 0);
	log_set_safe_logging(true);
	log_notice("SOCKS request for %s failed", log_scrub_dest(buf, sizeof(buf), "secret-host.example", 80));
	log_set_safe_logging(false);
	log_notice("SOCKS request for %s failed", log_scrub_dest(buf, sizeof(buf), "plain-host.example", 80));
	log_set_safe_logging(true);
	s = slurp("scrub.log");
	assert_non_null(strstr(s, "SOCKS request for [scrubbed] failed"));
	assert_null(strstr(s, "secret-host"));
	assert_non_null(strstr(s, "SOCKS request for plain-host.example:80 failed"));
	free(s);
	assert_int_equal(log_set_file(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_redirect_needs_a_private_descriptor_first),
		cmocka_unit_test(test_log_redirect_moves_lines_and_keeps_the_old_file_on_error),
		cmocka_unit_test(test_log_redirect_to_the_same_path_reopens_a_rotated_file),
		cmocka_unit_test(test_log_target_open_fails_cleanly_and_redirect_fd_takes_the_descriptor),
		cmocka_unit_test(test_log_redirect_while_threads_log_loses_and_tears_no_line),
		cmocka_unit_test(test_log_scrub_hides_destinations_while_safe_logging_is_on),
		cmocka_unit_test(test_log_scrub_shows_destinations_with_safe_logging_0),
		cmocka_unit_test(test_log_lines_with_scrubbed_destinations_hold_no_hostname),
	};

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, teardown_dir);
}
