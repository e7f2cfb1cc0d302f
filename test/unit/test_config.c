/* The configuration reader: every error has its exact message and line,
 * every value type parses as the torrc manual says, and doc/configuration.md
 * is what the key table generates.
 *
 * Arguments (from test/unit/meson.build): the path of doc/configuration.md
 * and of the test/unit/data directory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/log.h"
#include "onionring_build.h"

static const char *doc_path;
static const char *data_dir;

/* Load text (a C string) as file "t.conf"; return the result code. On
 * success *out is the config; on failure err holds the message and *out
 * is still NULL. */
static int load(const char *text, struct config **out, char err[CONFIG_ERR_MAX])
{
	*out = NULL;
	err[0] = '\0';
	return config_load_string(text, strlen(text), "t.conf", out, err, CONFIG_ERR_MAX);
}

/* Load text that must fail with exactly message want. */
static void expect_error(const char *text, const char *want)
{
	struct config *cfg;
	char err[CONFIG_ERR_MAX];

	assert_int_equal(load(text, &cfg, err), -EINVAL);
	assert_null(cfg);
	assert_string_equal(err, want);
}

/* Load text that must succeed; return the owned config. */
static struct config *expect_ok(const char *text)
{
	struct config *cfg;
	char err[CONFIG_ERR_MAX];

	if (load(text, &cfg, err) != 0)
		fail_msg("unexpected error: %s", err);
	assert_non_null(cfg);
	return cfg;
}

/* ---- Errors ---------------------------------------------------------------- */

static void test_config_rejects_unknown_key_with_its_line(void **state)
{
	(void)state;
	expect_error("# comment\n\nSocksPort 9050\nFoo bar\n", "t.conf:4: unknown configuration key \"Foo\"");
	expect_error("Foo\n", "t.conf:1: unknown configuration key \"Foo\"");
	/* tor's "+Key"/"/Key" forms are not supported: the key is unknown */
	expect_error("+SocksPort 9050\n", "t.conf:1: unknown configuration key \"+SocksPort\"");
	expect_error("Fo\x01o 1\n", "t.conf:1: unknown configuration key \"Fo\\x01o\"");
}

static void test_config_rejects_missing_value(void **state)
{
	(void)state;
	expect_error("NumWorkers 1\nSocksPort\n", "t.conf:2: missing value for \"SocksPort\"");
	expect_error("socksport   # only a comment\n", "t.conf:1: missing value for \"SocksPort\"");
	expect_error("NumWorkers \t \r\n", "t.conf:1: missing value for \"NumWorkers\"");
}

static void test_config_rejects_bad_numbers(void **state)
{
	static const char *const bad[] = { "12x", "257", "-1", "99999999999999999999", "+3", "0x10", "1 2" };
	char text[128], want[256];

	(void)state;
	expect_error("\nNumWorkers 12x\n",
		     "t.conf:2: bad number \"12x\" for \"NumWorkers\" (expected an integer from 0 to 256)");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "NumWorkers %s\n", bad[i]);
		snprintf(want, sizeof(want),
			 "t.conf:1: bad number \"%s\" for \"NumWorkers\" (expected an integer from 0 to 256)", bad[i]);
		expect_error(text, want);
	}
}

static void test_config_rejects_bad_booleans(void **state)
{
	(void)state;
	expect_error("SafeLogging yes\n", "t.conf:1: bad boolean \"yes\" for \"SafeLogging\" (expected 0 or 1)");
	expect_error("SafeLogging 2\n", "t.conf:1: bad boolean \"2\" for \"SafeLogging\" (expected 0 or 1)");
}

static void test_config_rejects_bad_intervals(void **state)
{
	(void)state;
	expect_error("MaxCircuitDirtiness 10 fortnights\n",
		     "t.conf:1: bad interval \"10 fortnights\" for \"MaxCircuitDirtiness\" (expected a number with a unit such as \"10 minutes\", from 10 seconds to 30 days)");
	expect_error("MaxCircuitDirtiness 5 seconds\n",
		     "t.conf:1: bad interval \"5 seconds\" for \"MaxCircuitDirtiness\" (expected a number with a unit such as \"10 minutes\", from 10 seconds to 30 days)");
	expect_error("ChannelPoolMaxIdle minutes\n",
		     "t.conf:1: bad interval \"minutes\" for \"ChannelPoolMaxIdle\" (expected a number with a unit such as \"10 minutes\", from 10 seconds to 1 day)");
	expect_error("ChannelPoolMaxIdle 99999999999999999 weeks\n",
		     "t.conf:1: bad interval \"99999999999999999 weeks\" for \"ChannelPoolMaxIdle\" (expected a number with a unit such as \"10 minutes\", from 10 seconds to 1 day)");
}

static void test_config_rejects_bad_memory_sizes(void **state)
{
	(void)state;
	expect_error("MaxMemInQueues 1 MB\n",
		     "t.conf:1: bad memory size \"1 MB\" for \"MaxMemInQueues\" (expected a number with a unit such as \"64 MB\", from 64 MB to 1 TB)");
	expect_error("MaxMemInQueues 2 PB\n",
		     "t.conf:1: bad memory size \"2 PB\" for \"MaxMemInQueues\" (expected a number with a unit such as \"64 MB\", from 64 MB to 1 TB)");
	expect_error("MaxMemInQueues 20000000 TB\n",
		     "t.conf:1: bad memory size \"20000000 TB\" for \"MaxMemInQueues\" (expected a number with a unit such as \"64 MB\", from 64 MB to 1 TB)");
}

static void test_config_rejects_bad_ports(void **state)
{
	static const char *const bad[] = { "9050x", "70000", "localhost:9050", "::1:9050", "127.0.0.1:", "[::1]",
					   "127.0.0.1:0", "unix:/run/socks" };
	char text[128], want[256];

	(void)state;
	expect_error("SocksPort 9050x IsolateDestAddr\n",
		     "t.conf:1: bad port \"9050x\" for \"SocksPort\" (expected PORT, ADDRESS:PORT, \"auto\" or \"0\", with PORT from 1 to 65535)");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "ControlPort %s\n", bad[i]);
		snprintf(want, sizeof(want),
			 "t.conf:1: bad port \"%s\" for \"ControlPort\" (expected PORT, ADDRESS:PORT, \"auto\" or \"0\", with PORT from 1 to 65535)",
			 bad[i]);
		expect_error(text, want);
	}
}

static void test_config_rejects_bad_log_settings(void **state)
{
	static const char *const bad[] = { "loud stderr", "notice", "notice syslog", "err-info stderr",
					   "notice file", "notice stderr extra" };
	char text[128], want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "Log %s\n", bad[i]);
		snprintf(want, sizeof(want),
			 "t.conf:1: bad log setting \"%s\" for \"Log\" (expected LEVEL[-LEVEL] stderr, stdout or file PATH, with LEVEL one of debug, info, notice, warn, err)",
			 bad[i]);
		expect_error(text, want);
	}
}

static void test_config_rejects_bad_quoting(void **state)
{
	(void)state;
	expect_error("NumWorkers 1\nDataDirectory \"/var/lib\nNumWorkers 2\n", "t.conf:2: unterminated quoted value");
	expect_error("DataDirectory \"/var/lib", "t.conf:1: unterminated quoted value");
	expect_error("DataDirectory \"/var/lib\\", "t.conf:1: unterminated quoted value");
	expect_error("DataDirectory \"a\\qb\"\n", "t.conf:1: bad escape \"\\q\" in quoted value");
	expect_error("DataDirectory \"a\\xZZ\"\n", "t.conf:1: bad escape \"\\xZZ\" in quoted value");
	expect_error("DataDirectory \"a\\x4\"\n", "t.conf:1: bad escape \"\\x4\"\" in quoted value");
	expect_error("DataDirectory \"a\\x00\"\n", "t.conf:1: bad escape \"\\x00\" in quoted value");
	expect_error("DataDirectory \"a\" b\n", "t.conf:1: unexpected text after quoted value");
}

static void test_config_rejects_nul_bytes(void **state)
{
	static const char text[] = "NumWorkers 1\nDataDirectory /a\0b\n";
	struct config *cfg = NULL;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(config_load_string(text, sizeof(text) - 1, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	assert_null(cfg);
	assert_string_equal(err, "t.conf:2: NUL byte in configuration");
}

static void test_config_rejects_pool_min_above_max_at_the_later_line(void **state)
{
	(void)state;
	expect_error("CircuitPoolMinSize 12\n", "t.conf:1: \"CircuitPoolMinSize\" (12) is larger than \"CircuitPoolMaxSize\" (10)");
	expect_error("CircuitPoolMinSize 5\n\nCircuitPoolMaxSize 4\n",
		     "t.conf:3: \"CircuitPoolMinSize\" (5) is larger than \"CircuitPoolMaxSize\" (4)");
}

static void test_config_counts_lines_through_continuations_and_crlf(void **state)
{
	(void)state;
	expect_error("DirAuthority a \\\n  b \\\n# skipped\n  c\r\nFoo 1\r\n",
		     "t.conf:5: unknown configuration key \"Foo\"");
	/* the error points at the line the entry's key starts on */
	expect_error("\nNumWorkers \\\n  12x\n",
		     "t.conf:2: bad number \"12x\" for \"NumWorkers\" (expected an integer from 0 to 256)");
}

static void test_config_error_message_cuts_long_values(void **state)
{
	char text[400], want[400];

	(void)state;
	memset(text, 0, sizeof(text));
	memcpy(text, "NumWorkers ", 11);
	memset(text + 11, '7', 100);
	snprintf(want, sizeof(want),
		 "t.conf:1: bad number \"%.64s...\" for \"NumWorkers\" (expected an integer from 0 to 256)", text + 11);
	expect_error(text, want);
}

static void test_config_reports_unreadable_files(void **state)
{
	struct config *cfg = NULL;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(config_load_file("/nonexistent/onionring.conf", &cfg, err, sizeof(err)), -ENOENT);
	assert_null(cfg);
	assert_string_equal(err, "/nonexistent/onionring.conf: cannot read: No such file or directory");
	assert_int_equal(config_load_file("/", &cfg, err, sizeof(err)), -EISDIR);
	assert_string_equal(err, "/: cannot read: Is a directory");
	assert_null(cfg);
}

static void test_config_file_errors_name_the_file_and_line(void **state)
{
	char path[] = "/tmp/test_config_XXXXXX";
	const char text[] = "SocksPort 9050\n# two\nNumWorkers many\n";
	struct config *cfg = NULL;
	char err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	assert_int_equal(config_load_file(path, &cfg, err, sizeof(err)), -EINVAL);
	unlink(path);
	snprintf(want, sizeof(want),
		 "%s:3: bad number \"many\" for \"NumWorkers\" (expected an integer from 0 to 256)", path);
	assert_string_equal(err, want);
	assert_null(cfg);
}

static void test_config_error_fits_a_small_buffer(void **state)
{
	struct config *cfg = NULL;
	char err[16];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(config_load_string("Foo 1\n", 6, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:1: unkno");
}

/* SIGHUP's contract: a failed load leaves the pointer to the old config. */
static void test_config_failed_reload_keeps_the_old_config(void **state)
{
	static const char bad[] = "NumWorkers 2\nNumWorkers lots\n";
	struct config *cfg = expect_ok("NumWorkers 1\n");
	struct config *old = cfg;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(config_load_string(bad, sizeof(bad) - 1, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	assert_ptr_equal(cfg, old);
	assert_int_equal(cfg->num_workers, 1);
	assert_string_equal(err, "t.conf:2: bad number \"lots\" for \"NumWorkers\" (expected an integer from 0 to 256)");
	config_free(cfg);
}

/* ---- Values ------------------------------------------------------------------ */

static void test_config_defaults_match_the_table(void **state)
{
	struct config *cfg = config_new_defaults();

	(void)state;
	assert_null(cfg->data_directory);
	assert_int_equal(cfg->socks_port.n, 1);
	assert_string_equal(cfg->socks_port.v[0].addr, "127.0.0.1");
	assert_int_equal(cfg->socks_port.v[0].port, 9050);
	assert_null(cfg->socks_port.v[0].flags);
	assert_int_equal(cfg->metrics_port.n, 0);
	assert_int_equal(cfg->control_port.n, 0);
	assert_int_equal(cfg->log.n, 1);
	assert_int_equal(cfg->log.v[0].min, LOG_NOTICE);
	assert_int_equal(cfg->log.v[0].sink, CONFIG_LOG_STDERR);
	assert_int_equal(cfg->num_workers, ONIONRING_DEFAULT_WORKERS);
	assert_int_equal(cfg->channel_pool_max_idle, 180);
	assert_int_equal(cfg->channel_pool_max_lifetime, 7 * 86400);
	assert_int_equal(cfg->circuit_pool_min_size, 2);
	assert_int_equal(cfg->circuit_pool_max_size, 10);
	assert_true(cfg->circuit_prebuild);
	assert_int_equal(cfg->max_circuit_dirtiness, 600);
	assert_true(cfg->enforce_distinct_subnets);
	assert_false(cfg->strict_nodes);
	assert_false(cfg->cookie_authentication);
	assert_int_equal(cfg->dir_authority.n, 0);
	assert_int_equal(cfg->exclude_nodes.n, 0);
	assert_int_equal(cfg->conn_limit, 1000);
	assert_int_equal(cfg->max_client_connections, 8192);
	assert_int_equal(cfg->max_mem_in_queues, 1ull << 30);
	assert_false(cfg->testing_tor_network);
	assert_true(cfg->safe_logging);
	config_free(cfg);
	assert_null(cfg);
}

static void test_config_empty_text_gives_defaults(void **state)
{
	struct config *cfg = expect_ok("# nothing\n\n   \n");
	struct config *def = config_new_defaults();

	(void)state;
	assert_int_equal(config_diff(cfg, def, NULL, 0), 0);
	config_free(cfg);
	config_free(def);
}

static void test_config_parses_intervals_with_tor_units(void **state)
{
	static const struct { const char *text; int64_t secs; } cases[] = {
		{ "10 minutes", 600 }, { "60 seconds", 60 }, { "2 hours", 7200 }, { "1 day", 86400 },
		{ "1 week", 604800 }, { "90", 90 }, { "5min", 300 }, { "2 HOURS", 7200 }, { "30 sec", 30 },
		{ "30 days", 30 * 86400 }, { "10", 10 },
	};
	char text[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *cfg;

		snprintf(text, sizeof(text), "MaxCircuitDirtiness %s\n", cases[i].text);
		cfg = expect_ok(text);
		assert_int_equal(cfg->max_circuit_dirtiness, cases[i].secs);
		config_free(cfg);
	}
}

static void test_config_parses_memory_sizes_as_powers_of_two(void **state)
{
	static const struct { const char *text; uint64_t bytes; } cases[] = {
		{ "64 MB", 64ull << 20 }, { "1 GB", 1ull << 30 }, { "2GB", 2ull << 30 }, { "67108864", 64ull << 20 },
		{ "65536 KB", 64ull << 20 }, { "1 TB", 1ull << 40 }, { "100 megabytes", 100ull << 20 },
		{ "67108864 bytes", 64ull << 20 },
	};
	char text[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *cfg;

		snprintf(text, sizeof(text), "MaxMemInQueues %s\n", cases[i].text);
		cfg = expect_ok(text);
		assert_int_equal(cfg->max_mem_in_queues, cases[i].bytes);
		config_free(cfg);
	}
}

static void test_config_parses_booleans_and_integers(void **state)
{
	struct config *cfg = expect_ok("SafeLogging 0\nCircuitPrebuild 0\nCookieAuthentication 1\n"
				       "NumWorkers 256\nCircuitPoolMinSize 0\nConnLimit 64\n");

	(void)state;
	assert_false(cfg->safe_logging);
	assert_false(cfg->circuit_prebuild);
	assert_true(cfg->cookie_authentication);
	assert_int_equal(cfg->num_workers, 256);
	assert_int_equal(cfg->circuit_pool_min_size, 0);
	assert_int_equal(cfg->conn_limit, 64);
	config_free(cfg);
}

static void test_config_parses_ports_with_flags(void **state)
{
	struct config *cfg = expect_ok("SocksPort 9150\n"
				       "SocksPort 0.0.0.0:9151 IsolateDestAddr   IsolateSOCKSAuth\n"
				       "SocksPort [::1]:9152\n"
				       "SocksPort auto\n"
				       "SocksPort 127.0.0.1:auto NoIPv6Traffic\n"
				       "SocksPort 0\n"
				       "MetricsPort 127.0.0.1:9035\n");
	const struct config_port *p = cfg->socks_port.v;

	(void)state;
	assert_int_equal(cfg->socks_port.n, 5); /* the default is replaced, "0" dropped */
	assert_string_equal(p[0].addr, "127.0.0.1");
	assert_int_equal(p[0].port, 9150);
	assert_null(p[0].flags);
	assert_string_equal(p[1].addr, "0.0.0.0");
	assert_int_equal(p[1].port, 9151);
	assert_string_equal(p[1].flags, "IsolateDestAddr   IsolateSOCKSAuth");
	assert_string_equal(p[2].addr, "::1");
	assert_true(p[2].is_ipv6);
	assert_int_equal(p[2].port, 9152);
	assert_true(p[3].port_auto);
	assert_string_equal(p[3].addr, "127.0.0.1");
	assert_true(p[4].port_auto);
	assert_string_equal(p[4].flags, "NoIPv6Traffic");
	assert_int_equal(cfg->metrics_port.n, 1);
	assert_int_equal(cfg->metrics_port.v[0].port, 9035);
	config_free(cfg);
}

static void test_config_port_zero_turns_a_listener_off(void **state)
{
	struct config *cfg = expect_ok("SocksPort 0\n");

	(void)state;
	assert_int_equal(cfg->socks_port.n, 0);
	config_free(cfg);
}

static void test_config_parses_quoted_values_with_escapes(void **state)
{
	struct config *cfg = expect_ok("DataDirectory \"/var/lib/a b\\t\\\"q\\\"\\\\\\x41\\n\\r\\'#\"  # comment\n"
				       "ClientOnionAuthDir \"\"\n");

	(void)state;
	assert_string_equal(cfg->data_directory, "/var/lib/a b\t\"q\"\\A\n\r'#");
	assert_null(cfg->client_onion_auth_dir);
	config_free(cfg);
}

static void test_config_joins_continuation_lines_and_skips_comment_lines(void **state)
{
	struct config *cfg = expect_ok("DirAuthority auth1 orport=5000 \\\n"
				       "  # a comment line inside the continuation\n"
				       "  v3ident=AAAA 127.0.0.1:7000 \\\n"
				       "  FFFF\n"
				       "NumWorkers 3 # a comment ending in a backslash does not continue \\\n"
				       "CircuitPoolMaxSize \\\n"
				       "20\n");

	(void)state;
	assert_int_equal(cfg->dir_authority.n, 1);
	assert_string_equal(cfg->dir_authority.v[0], "auth1 orport=5000   v3ident=AAAA 127.0.0.1:7000   FFFF");
	assert_int_equal(cfg->num_workers, 3);
	assert_int_equal(cfg->circuit_pool_max_size, 20);
	config_free(cfg);
}

static void test_config_ignores_comments_after_values_and_crlf(void **state)
{
	struct config *cfg = expect_ok("NumWorkers 4 # four\r\n\tCircuitPoolMaxSize\t7\t\r\n#NumWorkers 9\n");

	(void)state;
	assert_int_equal(cfg->num_workers, 4);
	assert_int_equal(cfg->circuit_pool_max_size, 7);
	config_free(cfg);
}

static void test_config_keys_are_case_insensitive(void **state)
{
	struct config *cfg = expect_ok("numworkers 5\nSOCKSPORT 9999\n");

	(void)state;
	assert_int_equal(cfg->num_workers, 5);
	assert_int_equal(cfg->socks_port.v[0].port, 9999);
	assert_ptr_equal(config_key_find("maxcircuitDIRTINESS"), config_key_find("MaxCircuitDirtiness"));
	assert_non_null(config_key_find("MaxCircuitDirtiness"));
	assert_null(config_key_find("NoSuchKey"));
	config_free(cfg);
}

static char warned[CONFIG_ERR_MAX];

static void keep_warning(enum log_level level, const char *line, void *arg)
{
	(void)arg;
	if (level == LOG_WARN)
		snprintf(warned, sizeof(warned), "%s", line);
}

static void test_config_repeated_single_key_last_wins_with_a_warning(void **state)
{
	struct config *cfg;

	(void)state;
	warned[0] = '\0';
	log_set_hook(keep_warning, NULL);
	cfg = expect_ok("NumWorkers 1\nNumWorkers 2\n");
	log_set_hook(NULL, NULL);
	assert_int_equal(cfg->num_workers, 2);
	assert_non_null(strstr(warned, "t.conf:2: \"NumWorkers\" was already set on line 1; the last value wins"));
	config_free(cfg);
}

static void test_config_repeated_list_keys_append_after_replacing_default(void **state)
{
	struct config *cfg = expect_ok("DirAuthority one\nDirAuthority two\n"
				       "ExcludeNodes {us}, $AAAA ,nick,,\nExcludeNodes 10.0.0.0/8\n"
				       "HashedControlPassword 16:AB\n"
				       "Log info-err file /tmp/x y.log\nLog debug stdout\n");

	(void)state;
	assert_int_equal(cfg->dir_authority.n, 2);
	assert_string_equal(cfg->dir_authority.v[0], "one");
	assert_string_equal(cfg->dir_authority.v[1], "two");
	assert_int_equal(cfg->exclude_nodes.n, 4);
	assert_string_equal(cfg->exclude_nodes.v[0], "{us}");
	assert_string_equal(cfg->exclude_nodes.v[1], "$AAAA");
	assert_string_equal(cfg->exclude_nodes.v[2], "nick");
	assert_string_equal(cfg->exclude_nodes.v[3], "10.0.0.0/8");
	assert_int_equal(cfg->hashed_control_password.n, 1);
	assert_int_equal(cfg->log.n, 2); /* the default "notice stderr" is replaced */
	assert_int_equal(cfg->log.v[0].min, LOG_INFO);
	assert_int_equal(cfg->log.v[0].max, LOG_ERR);
	assert_int_equal(cfg->log.v[0].sink, CONFIG_LOG_FILE);
	assert_string_equal(cfg->log.v[0].path, "/tmp/x y.log");
	assert_int_equal(cfg->log.v[1].min, LOG_DEBUG);
	assert_int_equal(cfg->log.v[1].sink, CONFIG_LOG_STDOUT);
	config_free(cfg);
}

static void test_config_fixture_file_loads(void **state)
{
	char path[4096], err[CONFIG_ERR_MAX];
	struct config *cfg = NULL;

	(void)state;
	snprintf(path, sizeof(path), "%s/good.conf", data_dir);
	if (config_load_file(path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(cfg->data_directory, "/var/lib/onionring");
	assert_int_equal(cfg->socks_port.n, 2);
	assert_int_equal(cfg->dir_authority.n, 1);
	assert_int_equal(cfg->exclude_nodes.n, 3);
	assert_int_equal(cfg->max_mem_in_queues, 256ull << 20);
	assert_true(cfg->testing_tor_network);
	config_free(cfg);
}

/* Every proper prefix of a valid text loads or fails with a message;
 * none crashes or reads past its end (run under ASan in the fuzz build). */
static void test_config_every_prefix_loads_or_fails_cleanly(void **state)
{
	static const char text[] = "DataDirectory \"/var/lib/x\\x41\" # c\n"
				   "SocksPort [::1]:9050 IsolateDestAddr\n"
				   "DirAuthority a \\\n# c\n b\n"
				   "MaxCircuitDirtiness 10 minutes\nLog info file /tmp/l\n";

	(void)state;
	for (size_t n = 0; n < sizeof(text) - 1; n++) {
		char *copy = malloc(n ? n : 1), err[CONFIG_ERR_MAX];
		struct config *cfg = NULL;
		int r;

		memcpy(copy, text, n);
		err[0] = '\0';
		r = config_load_string(copy, n, "p.conf", &cfg, err, sizeof(err));
		if (r == 0) {
			assert_non_null(cfg);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_null(cfg);
			assert_int_equal(strncmp(err, "p.conf:", 7), 0);
		}
		config_free(cfg);
		free(copy);
	}
}

/* ---- Diff and documentation ---------------------------------------------------- */

static void test_config_diff_lists_changed_keys_in_table_order(void **state)
{
	struct config *a = expect_ok("NumWorkers 1\nMaxCircuitDirtiness 5 minutes\nSocksPort 9050 IsolateDestAddr\n");
	struct config *b = expect_ok("NumWorkers 2\nMaxCircuitDirtiness 6 minutes\nSocksPort 9050 IsolateDestAddr\n");
	struct config *c = expect_ok("NumWorkers 1\nMaxCircuitDirtiness 300\nSocksPort 9050 IsolateSOCKSAuth\n");
	const struct config_key *changed[4];

	(void)state;
	assert_int_equal(config_diff(a, b, changed, 4), 2);
	assert_string_equal(changed[0]->name, "NumWorkers");
	assert_false(config_key_is_runtime(changed[0]));
	assert_string_equal(changed[1]->name, "MaxCircuitDirtiness");
	assert_true(config_key_is_runtime(changed[1]));
	assert_int_equal(config_diff(a, b, changed, 1), 2); /* the count exceeds cap */
	assert_int_equal(config_diff(a, a, changed, 4), 0);
	assert_int_equal(config_diff(a, c, changed, 4), 1); /* only the SocksPort flags differ */
	assert_string_equal(changed[0]->name, "SocksPort");
	config_free(a);
	config_free(b);
	config_free(c);
}

/* The run-time flag is a promise in doc/configuration.md: SIGHUP and
 * SETCONF apply these keys (app/gateway.c config_apply_locked, the shards
 * through circmgr_reconfigure / chanpool_reconfigure /
 * socks_set_session_limit) and refuse a change to any other. A key gains
 * or loses the flag only together with the code that applies it. */
static void test_config_runtime_keys_are_exactly_those_applied_while_running(void **state)
{
	static const char *const rt[] = {
		"Log", "HashedControlPassword", "ChannelPoolMaxIdle", "ChannelPoolMaxLifetime",
		"CircuitPoolMinSize", "CircuitPoolMaxSize", "CircuitPrebuild", "MaxCircuitDirtiness",
		"EnforceDistinctSubnets", "ExcludeNodes", "ExcludeExitNodes", "ExitNodes", "StrictNodes",
		"ClientOnionAuthDir", "MaxClientConnections", "SocksTimeout", "MaxMemInQueues",
		"SafeLogging", "ShutdownWaitLength", "__MaxMemInQueuesForTesting",
	};
	const size_t nrt = sizeof(rt) / sizeof(rt[0]);
	const struct config_key *keys;
	size_t n, runtime = 0;

	(void)state;
	keys = config_keys(&n);
	for (size_t i = 0; i < n; i++) {
		bool listed = false;

		for (size_t j = 0; j < nrt; j++)
			listed |= strcmp(keys[i].name, rt[j]) == 0;
		if (listed != config_key_is_runtime(&keys[i]))
			fail_msg("%s: run-time flag is %d, expected %d", keys[i].name, config_key_is_runtime(&keys[i]),
				 listed);
		runtime += listed;
	}
	assert_int_equal(runtime, nrt); /* every listed name is a key */
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void test_config_doc_file_matches_the_key_table(void **state)
{
	char *want = config_doc_markdown();
	char *have = read_file(doc_path);

	(void)state;
	if (!have)
		fail_msg("cannot read %s", doc_path);
	if (strcmp(want, have) != 0)
		fail_msg("%s is stale: regenerate it with `onionring --list-config-keys > doc/configuration.md`",
			 doc_path);
	free(want);
	free(have);
}

static void test_config_table_rows_are_documented_and_defaults_load(void **state)
{
	size_t n;
	const struct config_key *k = config_keys(&n);
	char *doc = config_doc_markdown();
	char row[128];

	(void)state;
	assert_true(n >= 20);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(k[i].desc);
		assert_null(strchr(k[i].desc, '|'));
		assert_null(strchr(k[i].desc, '\n'));
		assert_ptr_equal(config_key_find(k[i].name), &k[i]); /* no duplicate names */
		snprintf(row, sizeof(row), "| `%s` |", k[i].name);
		assert_non_null(strstr(doc, row));
	}
	free(doc);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_rejects_unknown_key_with_its_line),
		cmocka_unit_test(test_config_rejects_missing_value),
		cmocka_unit_test(test_config_rejects_bad_numbers),
		cmocka_unit_test(test_config_rejects_bad_booleans),
		cmocka_unit_test(test_config_rejects_bad_intervals),
		cmocka_unit_test(test_config_rejects_bad_memory_sizes),
		cmocka_unit_test(test_config_rejects_bad_ports),
		cmocka_unit_test(test_config_rejects_bad_log_settings),
		cmocka_unit_test(test_config_rejects_bad_quoting),
		cmocka_unit_test(test_config_rejects_nul_bytes),
		cmocka_unit_test(test_config_rejects_pool_min_above_max_at_the_later_line),
		cmocka_unit_test(test_config_counts_lines_through_continuations_and_crlf),
		cmocka_unit_test(test_config_error_message_cuts_long_values),
		cmocka_unit_test(test_config_reports_unreadable_files),
		cmocka_unit_test(test_config_file_errors_name_the_file_and_line),
		cmocka_unit_test(test_config_error_fits_a_small_buffer),
		cmocka_unit_test(test_config_failed_reload_keeps_the_old_config),
		cmocka_unit_test(test_config_defaults_match_the_table),
		cmocka_unit_test(test_config_empty_text_gives_defaults),
		cmocka_unit_test(test_config_parses_intervals_with_tor_units),
		cmocka_unit_test(test_config_parses_memory_sizes_as_powers_of_two),
		cmocka_unit_test(test_config_parses_booleans_and_integers),
		cmocka_unit_test(test_config_parses_ports_with_flags),
		cmocka_unit_test(test_config_port_zero_turns_a_listener_off),
		cmocka_unit_test(test_config_parses_quoted_values_with_escapes),
		cmocka_unit_test(test_config_joins_continuation_lines_and_skips_comment_lines),
		cmocka_unit_test(test_config_ignores_comments_after_values_and_crlf),
		cmocka_unit_test(test_config_keys_are_case_insensitive),
		cmocka_unit_test(test_config_repeated_single_key_last_wins_with_a_warning),
		cmocka_unit_test(test_config_repeated_list_keys_append_after_replacing_default),
		cmocka_unit_test(test_config_fixture_file_loads),
		cmocka_unit_test(test_config_every_prefix_loads_or_fails_cleanly),
		cmocka_unit_test(test_config_diff_lists_changed_keys_in_table_order),
		cmocka_unit_test(test_config_runtime_keys_are_exactly_those_applied_while_running),
		cmocka_unit_test(test_config_doc_file_matches_the_key_table),
		cmocka_unit_test(test_config_table_rows_are_documented_and_defaults_load),
	};

	if (argc != 3) {
		fprintf(stderr, "usage: %s DOC_CONFIGURATION_MD TEST_DATA_DIR\n", argv[0]);
		return 2;
	}
	doc_path = argv[1];
	data_dir = argv[2];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
