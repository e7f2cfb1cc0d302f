/* Micro-benchmark of proto/circuit's data path on one core: DATA cells per
 * second through circ_stream_data (pack + window/cwnd accounting + SENDME
 * digest recording + ONE encrypt call per batch) and through
 * circ_input_cells (ONE decrypt call per batch + parse + window accounting
 * + DATA events), on a 3-hop circuit built against the simulated relays of
 * test/unit/sim_relay.h, at batch sizes 1, 8, 32 and ONIONRING_CELL_BATCH.
 *
 * Only the client's calls are timed (thread CPU time around each call);
 * the simulated relays' crypto is not counted. SENDMEs flow both ways as
 * on a real circuit (fixed windows, or congestion control with "cc").
 * Not a test: never run by meson test.
 * Usage: bench_circuit [seconds-per-measurement, default 0.5] [cc] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/compiler.h"
#include "onionring_build.h"
#include "perf/bench_util.h"
#include "test/unit/sim_relay.h"

/* Client -> exit: time circ_stream_data (and input of the SENDMEs). */
static double bench_out(struct hx *x, uint16_t sid, double secs)
{
	uint8_t buf[64 * RELAY_DATA_MAX];
	struct cell *in[64];
	struct circ_event ev[65];
	double spent = 0;
	uint64_t cells = 0;

	while (spent < secs) {
		size_t taken, n, m, nev;
		double t0;

		/* The exit checks the byte pattern too; make it untimed. */
		for (size_t i = 0; i < x->batch * RELAY_DATA_MAX; i++)
			buf[i] = sim_pattern(sid, x->tx[0] + i);
		t0 = bench_thread_cpu_s();
		circ_stream_data(&x->c, sid, buf, x->batch * RELAY_DATA_MAX, ++x->now, &taken,
				 x->cptr, x->batch, &n);
		spent += bench_thread_cpu_s() - t0;
		cells += n;
		x->tx[0] += taken;
		for (size_t i = 0; i < n; i++)
			sim_from_client(&x->s, x->cptr[i]);
		while ((m = sim_take(&x->s, in, x->batch)) > 0) {
			t0 = bench_thread_cpu_s();
			circ_input_cells(&x->c, in, m, x->now += 50, ev, 65, &nev);
			spent += bench_thread_cpu_s() - t0;
		}
		SIM_CHECK(x->c.state != CIRC_ST_CLOSED && !x->s.killed);
	}
	return (double)cells / spent;
}

/* Exit -> client: time circ_input_cells and circ_flush (the SENDMEs). */
static double bench_in(struct hx *x, uint16_t sid, double secs)
{
	struct cell *in[64];
	struct circ_event ev[65];
	double spent = 0;
	uint64_t cells = 0;

	while (spent < secs) {
		size_t m, nev, n;

		sim_exit_send(&x->s, sid, 64 * RELAY_DATA_MAX);
		while ((m = sim_take(&x->s, in, x->batch)) > 0) {
			double t0 = bench_thread_cpu_s();

			circ_input_cells(&x->c, in, m, x->now += 50, ev, 65, &nev);
			circ_flush(&x->c, x->cptr, x->batch, &n);
			spent += bench_thread_cpu_s() - t0;
			cells += nev;
			for (size_t i = 0; i < n; i++)
				sim_from_client(&x->s, x->cptr[i]);
		}
		SIM_CHECK(x->c.state != CIRC_ST_CLOSED && !x->s.killed);
	}
	return (double)cells / spent;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	bool cc = argc > 2 && strcmp(argv[2], "cc") == 0;
	static const size_t batches[] = { 1, 8, 32, ONIONRING_CELL_BATCH };

	printf("bench_circuit: 3 hops, %s, %.2f s per point, ONIONRING_CELL_BATCH=%d\n",
	       cc ? "congestion control" : "SENDME windows", secs, ONIONRING_CELL_BATCH);
	printf("%6s %14s %10s %14s %10s %12s\n", "batch", "out cells/s", "out MB/s",
	       "in cells/s", "in MB/s", "heap B/run");
	for (size_t i = 0; i < ARRAY_LEN(batches); i++) {
		struct hx *x = calloc(1, sizeof(*x));
		uint16_t sid;
		double out, in;
		unsigned long long heap;

		SIM_CHECK(x);
		hx_init(x, 3, cc, 31);
		SIM_CHECK(hx_build(x, false, cc) == 3);
		sid = hx_open(x);
		SIM_CHECK((sid & (CIRC_STREAMS_MAX - 1)) != 0);
		x->tx[0] = 0;
		x->batch = MIN(batches[i], (size_t)64);
		heap = bench_allocated_bytes();
		out = bench_out(x, sid, secs);
		in = bench_in(x, sid, secs);
		heap = bench_allocated_bytes() - heap;
		printf("%6zu %14.0f %10.1f %14.0f %10.1f %12llu\n", x->batch, out,
		       out * RELAY_DATA_MAX / 1e6, in, in * RELAY_DATA_MAX / 1e6, heap);
		circ_clear(&x->c);
		free(x);
	}
	return 0;
}
