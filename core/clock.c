/* Monotonic and wall clocks (see clock.h). */
#include "core/clock.h"

#include <time.h>

uint64_t clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

time_t clock_wall(void)
{
	return time(NULL);
}
