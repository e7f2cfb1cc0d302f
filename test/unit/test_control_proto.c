/* Control-protocol framing, argument tokenizer and reply writers
 * (proto/control.h): every prefix of valid input, hand-made invalid input,
 * and the exact bytes of replies, written out from control-spec 2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/control.h"

static enum parse_result parse(const char *in, size_t len, struct control_cmd *c, size_t *used)
{
	const char *why;
	enum parse_result r = control_parse((const uint8_t *)in, len, c, used, &why);

	if (r == PARSE_INVALID)
		assert_non_null(why);
	if (r != PARSE_OK)
		assert_int_equal(*used, 0);
	return r;
}

static void assert_span(const char *p, size_t n, const char *want)
{
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

/* Every proper prefix of a whole command is NEED_MORE. */
static void assert_prefixes_need_more(const char *in)
{
	struct control_cmd c;
	size_t used;

	for (size_t i = 0; i < strlen(in); i++)
		assert_int_equal(parse(in, i, &c, &used), PARSE_NEED_MORE);
}

static void test_control_parse_frames_one_line_command(void **state)
{
	(void)state;
	const char *in = "GETINFO version process/pid\r\n";
	struct control_cmd c;
	size_t used;

	assert_int_equal(parse(in, strlen(in), &c, &used), PARSE_OK);
	assert_int_equal(used, strlen(in));
	assert_span(c.keyword, c.keyword_len, "GETINFO");
	assert_span(c.args, c.args_len, "version process/pid");
	assert_false(c.has_data);
	assert_true(control_cmd_is(&c, "getinfo"));
	assert_false(control_cmd_is(&c, "GETINF"));
	assert_prefixes_need_more(in);
}

static void test_control_parse_accepts_bare_lf_and_no_arguments(void **state)
{
	(void)state;
	const char *in = "QUIT\nGETINFO x\r\n";
	struct control_cmd c;
	size_t used;

	assert_int_equal(parse(in, strlen(in), &c, &used), PARSE_OK);
	assert_int_equal(used, 5);
	assert_span(c.keyword, c.keyword_len, "QUIT");
	assert_int_equal(c.args_len, 0);
	assert_int_equal(parse(in + used, strlen(in) - used, &c, &used), PARSE_OK);
	assert_span(c.keyword, c.keyword_len, "GETINFO");
	assert_span(c.args, c.args_len, "x");
}

static void test_control_parse_frames_empty_line_as_empty_keyword(void **state)
{
	(void)state;
	struct control_cmd c;
	size_t used;

	assert_int_equal(parse("\r\n", 2, &c, &used), PARSE_OK);
	assert_int_equal(used, 2);
	assert_int_equal(c.keyword_len, 0);
}

static void test_control_parse_frames_plus_command_with_dot_data(void **state)
{
	(void)state;
	/* 2.2 CmdData: ends at a line that is ".", a leading "." is doubled. */
	const char *in = "+LOADCONF\r\nSocksPort 9050\r\n..hidden\r\n.\r\nQUIT\r\n";
	struct control_cmd c;
	size_t used;

	assert_int_equal(parse(in, strlen(in), &c, &used), PARSE_OK);
	assert_true(c.has_data);
	assert_span(c.keyword, c.keyword_len, "LOADCONF");
	assert_span(c.data, c.data_len, "SocksPort 9050\r\n..hidden\r\n");
	assert_int_equal(used, strlen(in) - strlen("QUIT\r\n"));
	for (size_t i = 0; i < used; i++)
		assert_int_equal(parse(in, i, &c, &used), PARSE_NEED_MORE);
}

static void test_control_parse_plus_command_with_empty_data(void **state)
{
	(void)state;
	const char *in = "+POSTDESCRIPTOR purpose=general\n.\n";
	struct control_cmd c;
	size_t used;

	assert_int_equal(parse(in, strlen(in), &c, &used), PARSE_OK);
	assert_int_equal(used, strlen(in));
	assert_int_equal(c.data_len, 0);
	assert_span(c.args, c.args_len, "purpose=general");
}

static void test_control_parse_rejects_too_long_line(void **state)
{
	(void)state;
	char *in = malloc(CONTROL_LINE_MAX + 2);
	struct control_cmd c;
	size_t used;

	memset(in, 'A', CONTROL_LINE_MAX + 2);
	assert_int_equal(parse(in, CONTROL_LINE_MAX - 1, &c, &used), PARSE_NEED_MORE);
	assert_int_equal(parse(in, CONTROL_LINE_MAX, &c, &used), PARSE_INVALID);
	/* A line of exactly the limit, LF included, is fine. */
	in[CONTROL_LINE_MAX - 1] = '\n';
	assert_int_equal(parse(in, CONTROL_LINE_MAX, &c, &used), PARSE_OK);
	assert_int_equal(used, CONTROL_LINE_MAX);
	free(in);
}

static void test_control_parse_rejects_nul_in_line(void **state)
{
	(void)state;
	struct control_cmd c;
	size_t used;

	assert_int_equal(parse("GET\0INFO\r\n", 10, &c, &used), PARSE_INVALID);
}

static void test_control_parse_rejects_too_long_data_block(void **state)
{
	(void)state;
	size_t n = CONTROL_DATA_MAX + 64;
	char *in = malloc(n);
	struct control_cmd c;
	size_t used;

	memset(in, 'x', n);
	memcpy(in, "+LOADCONF\r\n", 11);
	for (size_t i = 100; i < n; i += 100)
		in[i] = '\n';
	assert_int_equal(parse(in, n, &c, &used), PARSE_INVALID);
	free(in);
}

/* --- arguments --- */

static void test_control_args_splits_words_quotes_and_pairs(void **state)
{
	(void)state;
	const char *a = "  word KEY=val \"q \\\"x\\\" \\\\ y\" K2=\"v w\" E=";
	struct control_args it = control_args_init(a, strlen(a));
	struct control_arg arg;
	char buf[64];
	const char *why;

	assert_int_equal(control_args_next(&it, &arg, buf, sizeof(buf), &why), PARSE_OK);
	assert_false(arg.has_value);
	assert_string_equal(arg.value, "word");
	assert_span(arg.key, arg.key_len, "word");
	assert_int_equal(control_args_next(&it, &arg, buf, sizeof(buf), &why), PARSE_OK);
	assert_true(arg.has_value);
	assert_span(arg.key, arg.key_len, "KEY");
	assert_string_equal(arg.value, "val");
	assert_int_equal(control_args_next(&it, &arg, buf, sizeof(buf), &why), PARSE_OK);
	assert_true(arg.quoted);
	assert_false(arg.has_value);
	assert_string_equal(arg.value, "q \"x\" \\ y");
	assert_int_equal(control_args_next(&it, &arg, buf, sizeof(buf), &why), PARSE_OK);
	assert_true(arg.quoted && arg.has_value);
	assert_span(arg.key, arg.key_len, "K2");
	assert_string_equal(arg.value, "v w");
	assert_int_equal(control_args_next(&it, &arg, buf, sizeof(buf), &why), PARSE_OK);
	assert_true(arg.has_value);
	assert_int_equal(arg.value_len, 0);
	assert_int_equal(control_args_next(&it, &arg, buf, sizeof(buf), &why), PARSE_NEED_MORE);
}

static void test_control_args_reads_c_escapes_in_quotes(void **state)
{
	(void)state;
	/* 2.1.1: \n \t \r and octal are C escapes; \q stands for q. */
	const char *a = "\"a\\nb\\tc\\101\\q\"";
	struct control_args it = control_args_init(a, strlen(a));
	struct control_arg arg;
	char buf[64];
	const char *why;

	assert_int_equal(control_args_next(&it, &arg, buf, sizeof(buf), &why), PARSE_OK);
	assert_string_equal(arg.value, "a\nb\tcAq");
}

static void test_control_args_rejects_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"\"unterminated", "\"ends in backslash\\", "\"x\"junk", "ab\"c\"", "\"\\0\"", "\"\\400\"",
	};
	struct control_arg arg;
	char buf[64];
	const char *why;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct control_args it = control_args_init(bad[i], strlen(bad[i]));

		why = NULL;
		assert_int_equal(control_args_next(&it, &arg, buf, sizeof(buf), &why), PARSE_INVALID);
		assert_non_null(why);
	}
}

static void test_control_args_rejects_value_longer_than_buffer(void **state)
{
	(void)state;
	const char *a = "0123456789";
	struct control_args it = control_args_init(a, strlen(a));
	struct control_arg arg;
	char buf[10];
	const char *why;

	assert_int_equal(control_args_next(&it, &arg, buf, sizeof(buf), &why), PARSE_INVALID);
	it = control_args_init(a, 9);
	assert_int_equal(control_args_next(&it, &arg, buf, sizeof(buf), &why), PARSE_OK);
	assert_string_equal(arg.value, "012345678");
}

static void test_control_args_prefixes_never_overread(void **state)
{
	(void)state;
	const char *a = "K=\"v \\\"w\\\"\" x \"y\"";
	struct control_arg arg;
	char buf[64];
	const char *why;

	for (size_t n = 0; n <= strlen(a); n++) {
		char *copy = malloc(n ? n : 1);
		struct control_args it;
		enum parse_result r;

		memcpy(copy, a, n);
		it = control_args_init(copy, n);
		while ((r = control_args_next(&it, &arg, buf, sizeof(buf), &why)) == PARSE_OK)
			assert_true(arg.value_len < sizeof(buf));
		free(copy);
	}
}

static void test_control_hex_decode(void **state)
{
	(void)state;
	uint8_t out[4];

	assert_int_equal(control_hex_decode("00aBfF", 6, out, sizeof(out)), 3);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[1], 0xab);
	assert_int_equal(out[2], 0xff);
	assert_int_equal(control_hex_decode("abc", 3, out, sizeof(out)), -1);
	assert_int_equal(control_hex_decode("zz", 2, out, sizeof(out)), -1);
	assert_int_equal(control_hex_decode("0011223344", 10, out, sizeof(out)), -1);
	assert_int_equal(control_hex_decode("", 0, out, sizeof(out)), 0);
}

/* --- replies --- */

static void test_control_reply_line_bytes(void **state)
{
	(void)state;
	uint8_t b[64];
	struct wr w = wr_init(b, sizeof(b));

	control_reply_line(&w, 250, '-', "version=1", 9);
	control_reply_line(&w, 250, ' ', "OK", 2);
	assert_false(w.err);
	assert_span((const char *)b, w.len, "250-version=1\r\n250 OK\r\n");
}

static void test_control_reply_data_dot_encodes(void **state)
{
	(void)state;
	const char *data = "line one\n.starts with dot\r\nlast";
	const char *want = "250+k=\r\nline one\r\n..starts with dot\r\nlast\r\n.\r\n";
	uint8_t b[128];
	struct wr w = wr_init(b, sizeof(b));

	control_reply_data(&w, 250, "k=", 2, data, strlen(data));
	assert_false(w.err);
	assert_span((const char *)b, w.len, want);
	assert_int_equal(control_reply_data_len(2, data, strlen(data)), strlen(want));
}

static void test_control_reply_data_round_trips_through_parser(void **state)
{
	(void)state;
	/* Our data encoding is what the command framer reads back. */
	const char *data = ".\n..\nx\n";
	uint8_t b[128];
	struct wr w = wr_init(b, sizeof(b));
	struct control_cmd c;
	size_t used;

	control_reply_data(&w, 250, "K", 1, data, strlen(data));
	assert_int_equal(parse((const char *)b + 3, w.len - 3, &c, &used), PARSE_OK);
	assert_int_equal(used, w.len - 3);
	assert_span(c.data, c.data_len, "..\r\n...\r\nx\r\n");
}

static void test_control_reply_fails_cleanly_when_full(void **state)
{
	(void)state;
	uint8_t b[8];
	struct wr w = wr_init(b, sizeof(b));

	control_reply_line(&w, 250, ' ', "a long line", 11);
	assert_true(w.err);
	assert_true(w.len <= sizeof(b));
}

static void test_control_quote_escapes(void **state)
{
	(void)state;
	uint8_t b[64];
	struct wr w = wr_init(b, sizeof(b));

	control_quote(&w, "a\"b\\c\nd\x01", 8);
	assert_span((const char *)b, w.len, "\"a\\\"b\\\\c\\nd\\001\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_parse_frames_one_line_command),
		cmocka_unit_test(test_control_parse_accepts_bare_lf_and_no_arguments),
		cmocka_unit_test(test_control_parse_frames_empty_line_as_empty_keyword),
		cmocka_unit_test(test_control_parse_frames_plus_command_with_dot_data),
		cmocka_unit_test(test_control_parse_plus_command_with_empty_data),
		cmocka_unit_test(test_control_parse_rejects_too_long_line),
		cmocka_unit_test(test_control_parse_rejects_nul_in_line),
		cmocka_unit_test(test_control_parse_rejects_too_long_data_block),
		cmocka_unit_test(test_control_args_splits_words_quotes_and_pairs),
		cmocka_unit_test(test_control_args_reads_c_escapes_in_quotes),
		cmocka_unit_test(test_control_args_rejects_malformed),
		cmocka_unit_test(test_control_args_rejects_value_longer_than_buffer),
		cmocka_unit_test(test_control_args_prefixes_never_overread),
		cmocka_unit_test(test_control_hex_decode),
		cmocka_unit_test(test_control_reply_line_bytes),
		cmocka_unit_test(test_control_reply_data_dot_encodes),
		cmocka_unit_test(test_control_reply_data_round_trips_through_parser),
		cmocka_unit_test(test_control_reply_fails_cleanly_when_full),
		cmocka_unit_test(test_control_quote_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
