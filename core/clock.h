/* Clocks: a monotonic clock for timeouts and measurements, and the wall
 * clock for directory validity times and NETINFO. */
#ifndef ONIONRING_CORE_CLOCK_H
#define ONIONRING_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Return CLOCK_MONOTONIC in nanoseconds. Any thread. */
uint64_t clock_mono_ns(void);

/* Return CLOCK_MONOTONIC in milliseconds. Any thread. */
static inline uint64_t clock_mono_ms(void) { return clock_mono_ns() / 1000000u; }

/* Return the wall clock in seconds since the epoch. Any thread. */
time_t clock_wall(void);

#endif
