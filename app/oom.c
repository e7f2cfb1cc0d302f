/* MaxMemInQueues choice (see oom.h). */
#include "app/oom.h"

#include <stdbool.h>
#include <stdlib.h>

uint64_t oom_excess(uint64_t total, uint64_t limit)
{
	uint64_t target = limit / 100u * OOM_TARGET_PERCENT + limit % 100u * OOM_TARGET_PERCENT / 100u;

	return total > limit ? total - target : 0;
}

static int oldest_first(const void *pa, const void *pb)
{
	const struct oom_item *a = pa, *b = pb;

	bool a_none = a->oldest_ns == 0 || a->bytes == 0, b_none = b->oldest_ns == 0 || b->bytes == 0;

	if (a_none != b_none)
		return a_none ? 1 : -1; /* nothing queued: last */
	if (a->oldest_ns != b->oldest_ns)
		return a->oldest_ns < b->oldest_ns ? -1 : 1;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return 0;
}

size_t oom_select(struct oom_item *items, size_t n, uint64_t to_free)
{
	uint64_t freed = 0;
	size_t k = 0;

	if (!to_free || !n)
		return 0;
	qsort(items, n, sizeof(*items), oldest_first);
	while (k < n && freed < to_free && items[k].oldest_ns != 0 && items[k].bytes != 0)
		freed += items[k++].bytes;
	return k;
}
