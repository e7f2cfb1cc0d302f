/* BUG_ON's failure path (see bug.h). */
#include "core/bug.h"

#include <stdlib.h>

#include "core/log.h"

void bug_fail(const char *expr, const char *file, int line, const char *func)
{
	log_err("BUG: %s:%d: %s: invariant failed: %s", file, line, func, expr);
	abort();
}
