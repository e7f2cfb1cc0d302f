/* Byte cursors never read or write past their span. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/bytes.h"

static void test_reader_reads_big_endian_fields(void **state)
{
	const uint8_t buf[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	struct rd r = rd_init(buf, sizeof(buf));

	(void)state;
	assert_int_equal(rd_u8(&r), 1);
	assert_int_equal(rd_u16(&r), 0x0203);
	assert_int_equal(rd_u32(&r), 0x04050607);
	assert_int_equal(rd_left(&r), 2);
	assert_false(r.err);
}

static void test_reader_short_read_sets_error_and_stays_failed(void **state)
{
	const uint8_t buf[] = { 1, 2, 3 };
	struct rd r = rd_init(buf, sizeof(buf));

	(void)state;
	assert_int_equal(rd_u32(&r), 0);
	assert_true(r.err);
	assert_int_equal(rd_u8(&r), 0);
	assert_null(rd_bytes(&r, 1));
	assert_int_equal(rd_left(&r), 0);
}

static void test_writer_refuses_overflow(void **state)
{
	uint8_t buf[5];
	struct wr w = wr_init(buf, sizeof(buf));

	(void)state;
	wr_u32(&w, 0xa1b2c3d4);
	assert_false(w.err);
	wr_u16(&w, 1);
	assert_true(w.err);
	assert_int_equal(w.len, 4);
	assert_int_equal(buf[0], 0xa1);
	assert_int_equal(buf[3], 0xd4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_reads_big_endian_fields),
		cmocka_unit_test(test_reader_short_read_sets_error_and_stays_failed),
		cmocka_unit_test(test_writer_refuses_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
