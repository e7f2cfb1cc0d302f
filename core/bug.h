/* BUG_ON: our own invariants only. Never use it for input from the network,
 * a client, a file or a configuration: those get a clear error instead. */
#ifndef ONIONRING_CORE_BUG_H
#define ONIONRING_CORE_BUG_H

#include "core/compiler.h"

/* Log the failed invariant with its location and abort. Any thread. */
_Noreturn void bug_fail(const char *expr, const char *file, int line, const char *func) COLD;

#define BUG_ON(cond) \
	do { \
		if (unlikely(cond)) \
			bug_fail(#cond, __FILE__, __LINE__, __func__); \
	} while (0)

#endif
