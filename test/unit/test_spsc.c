/* SPSC ring (core/spsc.h): the shared queue tests (queue_tests.h) with its
 * one producer thread. */
#include "core/spsc.h"

#define QUEUE spsc
#define PRODUCERS 1
#define PER_PRODUCER 1000000u
#include "queue_tests.h"
