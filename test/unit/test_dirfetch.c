/* Tests for app/dirfetch: how a directory stream that ended early is
 * reported (the errno dirmgr logs next to the stream layer's reason).
 * Not for the fetch itself over a live circuit (test_directory.sh). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "app/dirfetch.h"

static void test_dirfetch_end_keeps_the_cause_of_an_early_end(void **state)
{
	(void)state;
	assert_int_equal(dirfetch_end_errno(SOCKS5_CONNECTION_REFUSED), -ECONNREFUSED);
	assert_int_equal(dirfetch_end_errno(SOCKS5_HOST_UNREACHABLE), -EHOSTUNREACH);
	assert_int_equal(dirfetch_end_errno(SOCKS5_NET_UNREACHABLE), -ENETUNREACH);
	assert_int_equal(dirfetch_end_errno(SOCKS5_TTL_EXPIRED), -ETIMEDOUT);
	assert_int_equal(dirfetch_end_errno(SOCKS5_NOT_ALLOWED), -EACCES);
	/* a clean end before any byte: reached, but no answer */
	assert_int_equal(dirfetch_end_errno(SOCKS5_SUCCEEDED), -ENODATA);
	/* the channel or circuit failed: its words travel as the reason */
	assert_int_equal(dirfetch_end_errno(SOCKS5_GENERAL_FAILURE), -ECONNABORTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirfetch_end_keeps_the_cause_of_an_early_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
