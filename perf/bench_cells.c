/* Micro-benchmark of proto/cell.h and proto/relay.h on the hot path:
 *
 * (a) decode: cell_frame + relay_parse over a buffer of back-to-back 514-byte
 *     RELAY cells carrying full DATA bodies (what a busy channel reads);
 * (b) encode, full DATA: relay_encode (498 bytes, no padding) + cell_encode;
 * (c) encode, short DATA (100 bytes): as (b) plus the random padding the
 *     spec asks for (tor-spec 6.1), which costs a crypto_rand call;
 * (d) the same as (c) through relay_header_write, the zero-copy path where
 *     the caller has already read stream bytes into the payload;
 * (e) as (d) with the padding from a relay_pad_rng (AES-CTR keystream).
 *
 * Prints ns per cell and heap bytes allocated per cell by this thread (from
 * jemalloc's thread.allocated, or mallinfo2 otherwise): 0 means no allocation.
 * Times are thread CPU time. Not a test: never run by meson test.
 * Usage: bench_cells [seconds-per-case]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "onionring_build.h"
#include "perf/bench_util.h"
#include "proto/cell.h"
#include "proto/relay.h"

#define NCELLS 256

static uint8_t wire[NCELLS * CELL_LEN];
static double seconds = 0.5;
static volatile uint64_t sink;

static void fill_wire(void)
{
	uint8_t data[RELAY_DATA_MAX];
	struct cell c = { .circ_id = 0x80000001u, .command = CELL_RELAY };

	crypto_rand(data, sizeof(data));
	relay_encode(c.payload, RELAY_DATA, 7, data, sizeof(data), NULL);
	for (size_t i = 0; i < NCELLS; i++)
		cell_encode(&c, wire + i * CELL_LEN);
}

/* One pass of (a): frame and parse every cell in wire. */
static uint64_t decode_pass(void)
{
	size_t off = 0, used;
	struct cell_view v;
	struct relay_msg m;
	uint64_t acc = 0;

	while (cell_frame(wire + off, sizeof(wire) - off, 5, &v, &used, NULL) == PARSE_OK) {
		if (relay_parse(v.payload, &m, NULL) == PARSE_OK)
			acc += m.length + m.stream_id + m.data[0];
		off += used;
	}
	return acc;
}

/* One pass of (b)..(e): encode NCELLS relay cells of len bytes. */
static uint64_t encode_pass(size_t len, int zero_copy, struct relay_pad_rng *rng)
{
	static uint8_t data[RELAY_DATA_MAX];
	struct cell c = { .circ_id = 0x80000001u, .command = CELL_RELAY };
	uint64_t acc = 0;

	for (size_t i = 0; i < NCELLS; i++) {
		if (zero_copy)
			relay_header_write(c.payload, RELAY_DATA, 7, len, rng);
		else
			relay_encode(c.payload, RELAY_DATA, 7, data, len, rng);
		cell_encode(&c, wire + i * CELL_LEN);
		acc += wire[i * CELL_LEN + 15];
	}
	return acc;
}

static void run(const char *name, int which, size_t len, struct relay_pad_rng *rng)
{
	unsigned long long a0 = bench_allocated_bytes(), passes = 0;
	double t0 = bench_thread_cpu_s(), t;

	do {
		sink += which == 0 ? decode_pass() : encode_pass(len, which == 2, rng);
		passes++;
		t = bench_thread_cpu_s() - t0;
	} while (t < seconds);
	printf("%-44s %8.1f ns/cell  %6.2f Mcells/s  alloc %.3f B/cell\n", name,
	       t * 1e9 / (double)(passes * NCELLS), (double)(passes * NCELLS) / t / 1e6,
	       (double)(bench_allocated_bytes() - a0) / (double)(passes * NCELLS));
}

int main(int argc, char **argv)
{
	struct relay_pad_rng rng;

	if (argc > 1)
		seconds = atof(argv[1]);
	if (seconds <= 0)
		seconds = 0.5;
	/* Warm up: the first crypto_rand may set up per-thread state. */
	relay_pad_rng_init(&rng);
	encode_pass(100, 0, NULL);
	encode_pass(100, 0, &rng);
	fill_wire();
	run("(a) frame + relay_parse, DATA 498 B", 0, 0, NULL);
	run("(b) relay_encode + cell_encode, DATA 498 B", 1, RELAY_DATA_MAX, NULL);
	run("(c) relay_encode + cell_encode, DATA 100 B", 1, 100, NULL);
	run("(d) relay_header_write + cell_encode, 100 B", 2, 100, NULL);
	run("(e) as (d), padding from relay_pad_rng", 2, 100, &rng);
	relay_pad_rng_clear(&rng);
	return 0;
}
