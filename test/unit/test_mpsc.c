/* MPSC queue (core/mpsc.h): the shared queue tests (queue_tests.h) with
 * several producer threads. */
#include "core/mpsc.h"

#define QUEUE mpsc
#define PRODUCERS 3
#define PER_PRODUCER 100000u
#include "queue_tests.h"
