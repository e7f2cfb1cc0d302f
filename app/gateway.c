/* The gateway's lifecycle (see gateway.h). */
#include "app/gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "app/circmgr.h"
#include "app/dirfetch.h"
#include "app/dirmgr.h"
#include "app/control.h"
#include "app/shardreq.h"
#include "app/dirview.h"
#include "app/guardmgr.h"
#include "app/events.h"
#include "app/metrics.h"
#include "app/onion_auth.h"
#include "app/oom.h"
#include "app/socks.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "net/runtime.h"
#include "onionring_build.h"

#define GATEWAY_MAX_SOCKS_PORTS 16

#define GATEWAY_MAX_SHARDS 256 /* NumWorkers' maximum */
#define BOOST_HOLD_NS (10ull * 1000000000ull)

struct gateway {
	struct config *cfg;
	const char *config_path;
	struct runtime *rt;
	struct metrics_endpoint metrics;
	struct circmgr_config circ_cfg;
	struct socks_listener socks[GATEWAY_MAX_SOCKS_PORTS];
	uint64_t started_ns;
	/* Control port: g->cfg may be swapped by SETCONF on a worker and by
	 * SIGHUP on the main thread, both under cfg_lock. */
	struct control_server control;
	pthread_mutex_t cfg_lock;
	uint16_t socks_bound[GATEWAY_MAX_SOCKS_PORTS]; /* actual ports (SocksPort auto) */
	size_t nsocks;
	uint16_t last_bound; /* of the last listener open_listeners opened */
	uint64_t bw_ns, bw_in, bw_out; /* last BW event (coordinator only) */
	/* Directory: the manager runs on the coordinator tick; the HTTP
	 * fetcher's threads post results back to it. */
	struct dirauth_list auths;
	struct dirmgr *dir;
	/* Build quota moves (coord_rebalance; coordinator only). */
	uint64_t boost_until_ns[GATEWAY_MAX_SHARDS]; /* a starved shard's raise holds until then */
	int64_t boost[GATEWAY_MAX_SHARDS];           /* its size while held */
	int64_t delta[GATEWAY_MAX_SHARDS];           /* last value given to circmgr_set_prebuild_boost */
	/* Set by a SETCONF (on a worker): the coordinator re-reads
	 * ClientOnionAuthDir on its next tick (no file I/O on workers). */
	_Atomic bool onion_auth_stale;
	uint64_t oom_last_ns; /* last MaxMemInQueues action (coordinator only) */
	bool pools_started;   /* circmgr_refill_now posted (coordinator only) */
};

/* --- per-worker set-up ------------------------------------------------------ */

/* MaxClientConnections spread over the workers (rounded up). */
static uint64_t session_share(const struct config *cfg, unsigned nworkers)
{
	return ((uint64_t)cfg->max_client_connections + nworkers - 1) / nworkers;
}

static void worker_started(struct worker *w, void *arg)
{
	struct gateway *g = arg;
	struct circmgr_config cc;
	uint64_t share;

	pthread_mutex_lock(&g->cfg_lock); /* a SETCONF on a worker already up may swap them */
	cc = g->circ_cfg;
	share = session_share(g->cfg, runtime_nworkers(g->rt));
	pthread_mutex_unlock(&g->cfg_lock);
	socks_set_session_limit(share);
	if (circmgr_start(w, &cc) < 0)
		log_err("worker %u: cannot start its circuit manager", worker_id(w));
}

/* The run-time keys each shard holds a copy of, on their way to it. */
struct shard_reconf {
	struct circmgr_config circ;
	uint64_t session_share;
};

static void shard_reconfigure(struct worker *w, void *arg)
{
	struct shard_reconf *rc = arg;

	circmgr_reconfigure(w, &rc->circ);
	socks_set_session_limit(rc->session_share);
	free(rc);
}

/* Send the shard copies of ncfg's keys (borrowed) to every worker: their
 * state is owner-only, so each applies them on its own thread. Any thread;
 * a worker that has stopped misses them (it takes no new work anyway). */
static void post_shard_config(struct gateway *g, const struct config *ncfg)
{
	unsigned n = runtime_nworkers(g->rt);

	for (unsigned i = 0; i < n; i++) {
		struct shard_reconf *rc = malloc(sizeof(*rc));
		int r;

		if (!rc)
			abort(); /* control-plane allocation (STYLE.md, Memory) */
		rc->circ = g->circ_cfg;
		rc->session_share = session_share(ncfg, n);
		r = worker_post(runtime_worker(g->rt, i), shard_reconfigure, rc);
		if (r < 0) {
			log_info("worker %u did not take the new configuration: %s", i, strerror(-r));
			free(rc);
		}
	}
}

static void worker_stopping(struct worker *w, void *arg)
{
	(void)arg;
	shardreq_worker_stopping(w);
	circmgr_stop(w);
}

/* --- metrics --------------------------------------------------------------- */

static void collect_directory(struct metrics_buf *b, const struct gateway *g);
static void collect_circuits(struct metrics_buf *b, struct gateway *g);

static void collect_runtime(struct metrics_buf *b, void *arg)
{
	struct gateway *g = arg;
	unsigned n = runtime_nworkers(g->rt);
	struct worker_stats st[256];
	char label[32];

	if (n > 256)
		n = 256;
	for (unsigned i = 0; i < n; i++)
		worker_stats_read(runtime_worker(g->rt, i), &st[i]);
#define PER_SHARD(name, type, help, field) \
	do { \
		metrics_family(b, name, type, help); \
		for (unsigned i = 0; i < n; i++) { \
			snprintf(label, sizeof(label), "shard=\"%u\"", i); \
			metrics_sample_u64(b, name, label, st[i].field); \
		} \
	} while (0)
	PER_SHARD("onionring_connections_accepted_total", METRICS_COUNTER, "Inbound connections accepted.", accepted);
	PER_SHARD("onionring_connections_opened_total", METRICS_COUNTER, "Outbound connections started.", connects);
	PER_SHARD("onionring_connections_closed_total", METRICS_COUNTER, "Connections closed.", closed);
	PER_SHARD("onionring_connections", METRICS_GAUGE, "Open connections.", conns_open);
	PER_SHARD("onionring_socket_read_bytes_total", METRICS_COUNTER, "Bytes read from sockets.", bytes_in);
	PER_SHARD("onionring_socket_written_bytes_total", METRICS_COUNTER, "Bytes written to sockets.", bytes_out);
	PER_SHARD("onionring_socket_receives_total", METRICS_COUNTER, "Socket receives that brought bytes.", recvs);
	PER_SHARD("onionring_socket_sends_total", METRICS_COUNTER, "Socket send operations submitted.", sends);
	PER_SHARD("onionring_relay_sends_total", METRICS_COUNTER,
		  "Socket send operations submitted on relay links (a part of onionring_socket_sends_total).",
		  sends_outbound);
	PER_SHARD("onionring_shard_messages_total", METRICS_COUNTER, "Cross-shard messages received.", msgs_in);
	PER_SHARD("onionring_recv_buffer_exhausted_total", METRICS_COUNTER,
		  "Receives retried because every provided buffer was in use.", no_buffer);
	PER_SHARD("onionring_relay_quick_acks_total", METRICS_COUNTER,
		  "TCP_QUICKACKs sent on relay links that went quiet (net/README.md).", quick_acks);
	PER_SHARD("onionring_completions_total", METRICS_COUNTER, "io_uring completions handled.", cqes);
	PER_SHARD("onionring_completion_batches_total", METRICS_COUNTER, "io_uring completion batches handled.",
		  cqe_batches);
#undef PER_SHARD
	metrics_family(b, "onionring_workers", METRICS_GAUGE, "Worker threads.");
	metrics_sample_u64(b, "onionring_workers", NULL, n);
	metrics_family(b, "onionring_uptime_seconds", METRICS_GAUGE, "Seconds since the gateway started.");
	metrics_sample(b, "onionring_uptime_seconds", NULL, (double)(clock_mono_ns() - g->started_ns) / 1e9);
	collect_directory(b, g);
	/* circmgr_stop frees a shard's manager while the runtime stops: no
	 * circuit metrics then (see the README's note on this race). */
	if (!runtime_stopping(g->rt))
		collect_circuits(b, g);
}

/* One sample per shard of the uint64_t at offset in each of n structs of
 * size stride starting at base (borrowed). */
static void per_shard_u64(struct metrics_buf *b, const char *name, enum metrics_type type, const char *help,
			  const void *base, size_t stride, size_t offset, unsigned n)
{
	char label[32];

	metrics_family(b, name, type, help);
	for (unsigned i = 0; i < n; i++) {
		const uint64_t *v = (const uint64_t *)((const char *)base + (size_t)i * stride + offset);

		snprintf(label, sizeof(label), "shard=\"%u\"", i);
		metrics_sample_u64(b, name, label, *v);
	}
}

#define SHARD_U64(name, type, help, arr, field) \
	per_shard_u64(b, name, type, help, arr, sizeof((arr)[0]), offsetof(__typeof__((arr)[0]), field), n)

/* One sample per shard of num[i] / den[i] scaled by scale (NaN when
 * den[i] is 0: a mean over no circuits). */
static void per_shard_mean(struct metrics_buf *b, const char *name, const char *help, const uint64_t *num,
			   const uint64_t *den, double scale, unsigned n)
{
	char label[32];

	metrics_family(b, name, METRICS_GAUGE, help);
	for (unsigned i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "shard=\"%u\"", i);
		metrics_sample(b, name, label, den[i] ? (double)num[i] / (double)den[i] * scale : (double)NAN);
	}
}

/* The build-time histogram per shard, in seconds: circmgr counts builds
 * per bucket in whole milliseconds; Prometheus wants cumulative buckets. */
static void collect_build_times(struct metrics_buf *b, const struct circmgr_stats *cs, unsigned n)
{
	enum { NB = ARRAY_LEN(circmgr_build_bounds_ms) };
	const char *name = "onionring_circuit_build_seconds";
	double bounds[NB];
	uint64_t cum[NB];
	char label[32];

	for (size_t j = 0; j < NB; j++)
		bounds[j] = circmgr_build_bounds_ms[j] / 1000.0;
	metrics_family(b, name, METRICS_HISTOGRAM, "Time from launch to open of circuits that opened.");
	for (unsigned i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "shard=\"%u\"", i);
		metrics_cumulate(cs[i].build_hist, cum, NB);
		metrics_histogram(b, name, label, bounds, cum, NB, cs[i].circs_built, (double)cs[i].build_ms_sum / 1000.0);
	}
}

/* Channel pool and congestion-control figures from each shard's summary
 * (circmgr_summary_read: any thread; at most ~1 s old). */
static void collect_summaries(struct metrics_buf *b, const struct circmgr_summary *sm, unsigned n)
{
	uint64_t num[256] = { 0 }, den[256] = { 0 }; /* n <= 256 (collect_circuits) */

	SHARD_U64("onionring_channels", METRICS_GAUGE, "Channels in the shard's pool (open, opening or retiring).", sm,
		  chans);
	SHARD_U64("onionring_channel_pool_opened_total", METRICS_COUNTER, "Channels the pool started to open.", sm,
		  chan.opened);
	SHARD_U64("onionring_channel_pool_reused_total", METRICS_COUNTER, "Channel requests answered with an open channel.",
		  sm, chan.reused);
	SHARD_U64("onionring_channel_pool_joined_total", METRICS_COUNTER, "Channel requests that waited on an opening one.",
		  sm, chan.joined);
	SHARD_U64("onionring_channel_pool_failed_total", METRICS_COUNTER, "Channel opens that failed.", sm, chan.failed);
	SHARD_U64("onionring_channel_pool_closed_idle_total", METRICS_COUNTER,
		  "Channels closed after ChannelPoolMaxIdle without circuits.", sm, chan.closed_idle);
	SHARD_U64("onionring_channel_pool_retired_total", METRICS_COUNTER,
		  "Channels that reached ChannelPoolMaxLifetime.", sm, chan.retired);
	SHARD_U64("onionring_channel_pool_lost_total", METRICS_COUNTER, "Channels closed by the relay or the network.", sm,
		  chan.lost);
	SHARD_U64("onionring_cc_circuits", METRICS_GAUGE, "Open circuits running congestion control (proposal 324).", sm,
		  cc_circs);
	SHARD_U64("onionring_cc_slow_start_circuits", METRICS_GAUGE, "Of those, circuits still in slow start.", sm,
		  cc_slow_start);
	SHARD_U64("onionring_cc_cwnd_cells", METRICS_GAUGE, "Sum of the congestion windows of those circuits, in cells.",
		  sm, cc_cwnd);
	SHARD_U64("onionring_cc_inflight_cells", METRICS_GAUGE, "Sum of DATA cells in flight (not yet acked by a SENDME).",
		  sm, cc_inflight);
	for (unsigned i = 0; i < n; i++) {
		num[i] = sm[i].cc_cwnd;
		den[i] = sm[i].cc_circs;
	}
	per_shard_mean(b, "onionring_cc_cwnd_mean_cells", "Mean congestion window of those circuits (NaN: none).", num,
		       den, 1, n);
	for (unsigned i = 0; i < n; i++) {
		num[i] = sm[i].cc_rtt_usec;
		den[i] = sm[i].cc_rtt_circs;
	}
	per_shard_mean(b, "onionring_cc_rtt_mean_seconds",
		       "Mean smoothed RTT of those circuits with an RTT sample (NaN: none).", num, den, 1e-6, n);
	SHARD_U64("onionring_sendme_window_circuits", METRICS_GAUGE,
		  "Open circuits on fixed SENDME windows (tor-spec 7.3), no congestion control.", sm, fixed_circs);
	SHARD_U64("onionring_sendme_package_window_cells", METRICS_GAUGE,
		  "Sum of the package windows of those circuits, in cells.", sm, fixed_package_window);
}

/* Hand-offs (socks_stats_read), each shard's published supply and demand
 * and the coordinator's quota moves (circmgr.h "Rebalancing"). */
static void collect_rebalance(struct metrics_buf *b, struct gateway *g, unsigned n)
{
	struct socks_stats ss[GATEWAY_MAX_SHARDS];
	char label[32];

	for (unsigned i = 0; i < n; i++)
		socks_stats_read(i, &ss[i]);
	SHARD_U64("onionring_streams_handed_off_total", METRICS_COUNTER,
		  "SOCKS sessions this shard handed to another one with a ready circuit.", ss, handed_off);
	SHARD_U64("onionring_streams_handed_in_total", METRICS_COUNTER, "SOCKS sessions handed to this shard.", ss,
		  handed_in);
	SHARD_U64("onionring_stream_handoffs_failed_total", METRICS_COUNTER,
		  "Hand-offs that failed: the session stayed on this shard.", ss, handoff_failed);
	SHARD_U64("onionring_streams_handed_off_keyed_total", METRICS_COUNTER,
		  "Of the sessions handed off, those sent to a shard with a circuit reserved for their isolation key.",
		  ss, handed_off_keyed);
#define SHARD_FN(name, help, expr) \
	do { \
		metrics_family(b, name, METRICS_GAUGE, help); \
		for (unsigned i = 0; i < n; i++) { \
			struct worker *w = runtime_worker(g->rt, i); \
			snprintf(label, sizeof(label), "shard=\"%u\"", i); \
			metrics_sample(b, name, label, (double)(expr)); \
		} \
	} while (0)
	SHARD_FN("onionring_streams_waiting_for_circuit", "Streams waiting for a circuit.", circmgr_waiting(w));
	SHARD_FN("onionring_prebuild_boost", "The coordinator's change to this shard's CircuitPoolMinSize.",
		 circmgr_prebuild_boost(w));
#undef SHARD_FN
}

/* Circuits, streams and cells per shard (circmgr_stats_read: any thread),
 * and the magazines of the send-chunk pool that backs every connection's
 * queued bytes (net/README.md). */
static void collect_circuits(struct metrics_buf *b, struct gateway *g)
{
	unsigned n = runtime_nworkers(g->rt);
	struct circmgr_stats *cs;
	struct circmgr_summary *sm;

	if (n > 256)
		n = 256;
	cs = calloc(n, sizeof(*cs));
	sm = calloc(n, sizeof(*sm));
	if (!cs || !sm) {
		b->failed = true;
		free(cs);
		free(sm);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		circmgr_stats_read(runtime_worker(g->rt, i), &cs[i]);
		circmgr_summary_read(runtime_worker(g->rt, i), &sm[i]);
	}
	SHARD_U64("onionring_circuits_launched_total", METRICS_COUNTER, "Circuit builds started.", cs, circs_launched);
	SHARD_U64("onionring_circuits_built_total", METRICS_COUNTER, "Circuits that opened.", cs, circs_built);
	SHARD_U64("onionring_circuits_failed_total", METRICS_COUNTER,
		  "Circuits that closed before opening (failed or timed out).", cs, circs_failed);
	SHARD_U64("onionring_circuits", METRICS_GAUGE, "Open circuits.", cs, circs_open);
	SHARD_U64("onionring_circuits_ready", METRICS_GAUGE,
		  "Open clean (prebuilt, unused) circuits any stream may take.", cs, circs_ready);
	SHARD_U64("onionring_circuits_reserved", METRICS_GAUGE,
		  "Open clean circuits the pool keeps for an isolation key seen recently.", cs, circs_reserved);
	SHARD_U64("onionring_circuits_retired_total", METRICS_COUNTER,
		  "Circuits closed once they could take no new stream and carried none, or as pool surplus.", cs,
		  circs_retired);
	collect_build_times(b, cs, n);
	SHARD_U64("onionring_streams_opened_total", METRICS_COUNTER, "Streams the exit connected.", cs, streams_opened);
	SHARD_U64("onionring_streams_failed_total", METRICS_COUNTER, "Streams that ended before connecting.", cs,
		  streams_failed);
	SHARD_U64("onionring_streams_retried_total", METRICS_COUNTER, "Stream attempts moved to another circuit.", cs,
		  streams_retried);
	SHARD_U64("onionring_streams", METRICS_GAUGE, "Open streams.", cs, streams_open);
	SHARD_U64("onionring_queued_bytes", METRICS_GAUGE,
		  "Bytes queued for or from SOCKS clients (MaxMemInQueues counts them; refreshed each second).", cs,
		  queued_bytes);
	SHARD_U64("onionring_stream_optimistic_bytes_total", METRICS_COUNTER,
		  "Client bytes sent right after BEGIN, before CONNECTED (optimistic data).", cs, optimistic_bytes);
	SHARD_U64("onionring_cells_received_total", METRICS_COUNTER, "Cells received on circuits.", cs, cells_in);
	SHARD_U64("onionring_cells_sent_total", METRICS_COUNTER, "Cells sent on circuits.", cs, cells_out);
	SHARD_U64("onionring_streams_waited_for_build_total", METRICS_COUNTER,
		  "New streams that found no open circuit and waited for a circuit build.", cs, streams_waited_build);
	SHARD_U64("onionring_streams_waited_while_ready_elsewhere_total", METRICS_COUNTER,
		  "Of them, those that waited while another shard had an unclaimed ready clean circuit (issue 6: should stay 0).",
		  cs, streams_waited_ready_elsewhere);
	collect_rebalance(b, g, n);
	collect_summaries(b, sm, n);
	{
		const struct metrics_pool pools[] = { { "io_chunk", runtime_chunk_pool(g->rt) } };

		metrics_buf_pools(b, pools, 1);
	}
	free(cs);
	free(sm);
}

/* The directory's metrics (dirmgr_stats_read: any thread). */
static void collect_directory(struct metrics_buf *b, const struct gateway *g)
{
	struct dirmgr_stats s;
	char label[64];
	const char *f = "onionring_directory_fetches_total";

	if (!g->dir)
		return;
	dirmgr_stats_read(g->dir, &s);
	metrics_family(b, "onionring_bootstrap_percent", METRICS_GAUGE,
		       "Bootstrap progress as tor reports it (100: a usable directory).");
	metrics_sample_u64(b, "onionring_bootstrap_percent", NULL, (uint64_t)s.bootstrap_pct);
	metrics_family(b, "onionring_directory_age_seconds", METRICS_GAUGE,
		       "Seconds since the valid-after time of the consensus in use (-1: none).");
	metrics_sample(b, "onionring_directory_age_seconds", NULL,
		       s.valid_after ? (double)(clock_wall() - s.valid_after) : -1.0);
	metrics_family(b, "onionring_directory_usable", METRICS_GAUGE,
		       "1 when the directory is enough to build circuits.");
	metrics_sample_u64(b, "onionring_directory_usable", NULL, s.usable);
	metrics_family(b, "onionring_directory_microdescs", METRICS_GAUGE,
		       "Routers in the consensus in use that have a microdescriptor.");
	metrics_sample_u64(b, "onionring_directory_microdescs", NULL, s.n_microdescs);
	metrics_family(b, "onionring_directory_routers", METRICS_GAUGE, "Routers in the consensus in use.");
	metrics_sample_u64(b, "onionring_directory_routers", NULL, s.n_routers);
	metrics_family(b, f, METRICS_COUNTER, "Directory fetches by document kind and result.");
	for (int k = 0; k < DIR_FETCH_KINDS; k++)
		for (int r = 0; r < DIR_RESULTS; r++) {
			snprintf(label, sizeof(label), "kind=\"%s\",result=\"%s\"",
				 dir_fetch_kind_name((enum dir_fetch_kind)k),
				 dir_fetch_result_name((enum dir_fetch_result)r));
			metrics_sample_u64(b, f, label, s.fetches[k][r]);
		}
}

static bool health(char *reason, size_t len, void *arg)
{
	struct gateway *g = arg;
	struct dirmgr_stats s;

	if (runtime_stopping(g->rt)) {
		snprintf(reason, len, "shutting down");
		return false;
	}
	/* Healthy once a usable directory exists (dirmgr: live or reasonably
	 * live consensus with enough microdescriptors). */
	if (g->dir) {
		dirmgr_stats_read(g->dir, &s);
		if (s.usable)
			return true;
		snprintf(reason, len, "not bootstrapped: %d%%, no usable directory yet", s.bootstrap_pct);
		return false;
	}
	snprintf(reason, len, "not bootstrapped: no directory yet");
	return false;
}

static void control_tick(struct gateway *g);

/* Move build quota to where demand is (issue 6; app/README.md
 * "rebalancing"). A shard is starved when streams wait there for a
 * circuit and it has no unclaimed ready clean circuit: its prebuild target
 * is raised by min(waiting, CircuitPoolMinSize) and the raise holds for
 * BOOST_HOLD_NS after the last tick that saw it starved (so a burst does
 * not leave it empty again at once). Meanwhile shards with a full pool
 * (at least CircuitPoolMinSize unclaimed ready circuits) and nobody
 * waiting build less, by the raises' sum spread over them, never below
 * one circuit: the total the gateway keeps ready stays about the same.
 * Sessions move at stream placement (app/socks.c); those already waiting
 * on a starved shard are offered the move when another shard has ready
 * circuits (circmgr_offer_waiting).
 * Coordinator only. */
static void coord_rebalance(struct gateway *g, uint64_t now)
{
	unsigned n = runtime_nworkers(g->rt), ndonors = 0;
	uint64_t avail[GATEWAY_MAX_SHARDS], waiting[GATEWAY_MAX_SHARDS];
	int64_t base, total = 0, cut;

	if (n > GATEWAY_MAX_SHARDS)
		n = GATEWAY_MAX_SHARDS;
	if (n < 2 || runtime_stopping(g->rt))
		return;
	pthread_mutex_lock(&g->cfg_lock); /* SETCONF/SIGHUP swap g->cfg */
	base = g->cfg->circuit_prebuild ? g->cfg->circuit_pool_min_size : 0;
	pthread_mutex_unlock(&g->cfg_lock);
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = runtime_worker(g->rt, i);

		avail[i] = circmgr_available(w);
		waiting[i] = circmgr_waiting(w);
		if (base > 0 && waiting[i] > 0 && avail[i] == 0) {
			int64_t want = waiting[i] < (uint64_t)base ? (int64_t)waiting[i] : base;

			if (now >= g->boost_until_ns[i] || want > g->boost[i])
				g->boost[i] = want;
			g->boost_until_ns[i] = now + BOOST_HOLD_NS;
		} else if (now >= g->boost_until_ns[i]) {
			g->boost[i] = 0;
		}
		total += g->boost[i];
	}
	/* Streams already waiting on a starved shard while another has ready
	 * circuits: offer them the move (circmgr_offer_waiting, on their shard). */
	for (unsigned i = 0; i < n; i++) {
		bool supply = false;

		if (waiting[i] == 0 || avail[i] > 0)
			continue;
		for (unsigned j = 0; j < n && !supply; j++)
			supply = j != i && avail[j] > 0;
		if (supply && worker_post(runtime_worker(g->rt, i), circmgr_offer_waiting, NULL) < 0)
			log_debug("worker %u took no rebalancing message (stopping)", i);
	}
	for (unsigned i = 0; i < n; i++)
		ndonors += g->boost[i] == 0 && waiting[i] == 0 && base > 1 && avail[i] >= (uint64_t)base;
	cut = ndonors ? (total + ndonors - 1) / ndonors : 0;
	if (cut > base - 1)
		cut = base - 1;
	for (unsigned i = 0; i < n; i++) {
		int64_t d = g->boost[i];

		if (d == 0 && waiting[i] == 0 && base > 1 && avail[i] >= (uint64_t)base)
			d = -cut;
		if (d == g->delta[i])
			continue;
		log_info("worker %u keeps %lld clean circuits ready (CircuitPoolMinSize %lld, %+lld: %llu waiting, %llu ready)",
			 i, (long long)(base + d), (long long)base, (long long)d, (unsigned long long)waiting[i],
			 (unsigned long long)avail[i]);
		g->delta[i] = d;
		circmgr_set_prebuild_boost(runtime_worker(g->rt, i), d);
	}
}

/* Read ClientOnionAuthDir again and publish its keys for the shards'
 * hs_client (app/onion_auth.h). path (borrowed) is the new configuration's
 * directory when the caller holds it (SIGHUP, before it is applied), or
 * NULL for the one in force (read under cfg_lock). Main or coordinator
 * thread: blocking file reads. */
static void onion_auth_reload(struct gateway *g, const char *path)
{
	char *dir = NULL;
	struct onion_auth_keys *k;

	if (path) {
		dir = strdup(path);
	} else {
		pthread_mutex_lock(&g->cfg_lock);
		if (g->cfg->client_onion_auth_dir)
			dir = strdup(g->cfg->client_onion_auth_dir);
		pthread_mutex_unlock(&g->cfg_lock);
	}
	k = onion_auth_load(dir);
	if (dir)
		log_notice("ClientOnionAuthDir: %zu client authorization key(s) loaded from %s", onion_auth_count(k), dir);
	onion_auth_publish(k);
	free(dir);
}

static void shard_shed(struct worker *w, void *arg)
{
	uint64_t *keep = arg;

	circmgr_shed(w, *keep);
	free(keep);
}

/* MaxMemInQueues (tor's OOM handler, circuits_handle_oom): sum what every
 * shard holds queued; over the limit, ask the shards with the oldest
 * queued data to close circuits, oldest first, until the total is under
 * 90% of it (app/oom.h). The shards' figures are refreshed once a second
 * (and right after they shed), so after acting this waits a second before
 * acting again rather than shedding twice for the same bytes.
 * Coordinator thread. */
static void oom_check(struct gateway *g)
{
	unsigned n = runtime_nworkers(g->rt);
	struct oom_item items[256];
	uint64_t total = 0, limit, excess, now = clock_mono_ns();
	size_t k;

	if (runtime_stopping(g->rt) || (g->oom_last_ns && now - g->oom_last_ns < 1000000000ull))
		return;
	if (n > 256)
		n = 256;
	pthread_mutex_lock(&g->cfg_lock);
	limit = g->cfg->testing_max_mem_in_queues ? g->cfg->testing_max_mem_in_queues : g->cfg->max_mem_in_queues;
	pthread_mutex_unlock(&g->cfg_lock);
	for (unsigned i = 0; i < n; i++) {
		struct circmgr_stats st;

		circmgr_stats_read(runtime_worker(g->rt, i), &st);
		items[i] = (struct oom_item){ .bytes = st.queued_bytes, .oldest_ns = st.queued_oldest_ns, .id = i };
		total += st.queued_bytes;
	}
	excess = oom_excess(total, limit);
	if (!excess)
		return;
	g->oom_last_ns = now;
	log_warn("MaxMemInQueues (%llu bytes) exceeded: %llu bytes queued for or from clients; closing the circuits "
		 "with the oldest queued data until %llu bytes are freed",
		 (unsigned long long)limit, (unsigned long long)total, (unsigned long long)excess);
	k = oom_select(items, n, excess);
	for (size_t i = 0; i < k && excess; i++) {
		uint64_t to_free = items[i].bytes < excess ? items[i].bytes : excess;
		uint64_t *keep = malloc(sizeof(*keep));
		int r;

		if (!keep)
			abort(); /* control-plane allocation (STYLE.md, Memory) */
		/* What the shard may keep, not what it should free: it counts
		 * again when it acts (circmgr_shed). */
		*keep = items[i].bytes - to_free;
		excess -= to_free;
		r = worker_post(runtime_worker(g->rt, (unsigned)items[i].id), shard_shed, keep);
		if (r < 0) {
			log_info("MaxMemInQueues: worker %llu did not take the request: %s",
				 (unsigned long long)items[i].id, strerror(-r));
			free(keep);
		}
	}
}

/* The circuit pools refill once a period. The first usable directory (and
 * with it the first guard) arrives in the middle of one, so tell the
 * workers at once rather than leave the first circuits up to a period
 * late (seen: 0.24 s of a 1.4 s start to first usable circuit). */
static void start_pools_once_usable(struct gateway *g)
{
	struct dirmgr_stats s;

	if (g->pools_started || !g->dir)
		return;
	dirmgr_stats_read(g->dir, &s);
	if (!s.usable)
		return;
	g->pools_started = true;
	for (unsigned i = 0; i < runtime_nworkers(g->rt); i++)
		if (worker_post(runtime_worker(g->rt, i), circmgr_refill_now, NULL) < 0)
			log_debug("worker %u took no pool refill message (stopping)", i);
}

/* runtime_config.coord_tick: the directory manager's step. Coordinator. */
static void coord_tick(struct runtime *rt, void *arg)
{
	struct gateway *g = arg;

	(void)rt;
	coord_rebalance(g, clock_mono_ns());
	/* acquire: pairs with control_config_replace's release store, so the
	 * configuration it put in force is the one read here. */
	if (atomic_exchange_explicit(&g->onion_auth_stale, false, memory_order_acquire))
		onion_auth_reload(g, NULL);
	if (g->dir)
		dirmgr_tick(g->dir);
	guardmgr_tick(clock_wall());
	start_pools_once_usable(g);
	control_tick(g);
	oom_check(g);
}

/* dirmgr_config.dir_guards: the guard manager's. Coordinator. */
static size_t dir_guards(void *arg, uint8_t (*ids)[20], size_t cap)
{
	(void)arg;
	return guardmgr_dir_guards(ids, cap);
}

/* dirmgr_config.dir_guard_result: into the guard state. Coordinator. */
static void dir_guard_result(void *arg, const uint8_t id[20], bool reachable)
{
	(void)arg;
	guardmgr_report_dir(id, reachable);
}

/* Build the directory manager from cfg (DirAuthority lines or the public
 * authorities; DataDirectory for the cache). Return 0 or -1 with err. */
static int start_directory(struct gateway *g, const struct config *cfg, char *err, size_t errlen)
{
	struct dirmgr_config dc = {0};

	if (dirauth_list_from_config(&cfg->dir_authority, &g->auths, err, errlen) < 0)
		return -1;
	dc.auths = &g->auths;
	dc.data_directory = cfg->data_directory;
	/* Directory documents come over BEGIN_DIR on one-hop circuits to the
	 * authorities' or caches' OR ports (CREATE_FAST while no ntor key is
	 * known), as tor fetches them; a fetch runs on worker 0. */
	dirfetch_begindir_fetcher(g->rt, &dc.fetcher);
	/* Until the circuit layer reports phases 80..100 itself, a usable
	 * directory is "done". */
	dc.report_done = true;
	/* Once bootstrapped, fetch from the directory guards first. */
	dc.dir_guards = dir_guards;
	dc.dir_guard_result = dir_guard_result;
	g->dir = dirmgr_new(&dc, err, errlen);
	return g->dir ? 0 : -1;
}

/* --- listeners ------------------------------------------------------------- */

static int port_sockaddr(const struct config_port *p, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (p->is_ipv6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(p->port);
		if (inet_pton(AF_INET6, p->addr, &in6->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(p->port);
		if (inet_pton(AF_INET, p->addr, &in->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*in);
	}
	return 0;
}

static int open_listeners_on(struct gateway *g, const struct config_ports *ports, const char *what,
			     conn_accept_fn fn, void *arg, uint64_t workers)
{
	for (size_t i = 0; i < ports->n; i++) {
		const struct config_port *p = &ports->v[i];
		struct sockaddr_storage ss;
		socklen_t len;
		uint16_t bound = 0;
		int r = port_sockaddr(p, &ss, &len);

		if (r == 0)
			r = runtime_add_listener_on(g->rt, (struct sockaddr *)&ss, len, fn, arg, &bound, workers);
		if (r < 0) {
			log_err("cannot listen on %s %s%s%s:%u: %s", what, p->is_ipv6 ? "[" : "", p->addr,
				p->is_ipv6 ? "]" : "", p->port, strerror(-r));
			return r;
		}
		log_notice("%s listening on %s%s%s:%u", what, p->is_ipv6 ? "[" : "", p->addr, p->is_ipv6 ? "]" : "",
			   bound);
		g->last_bound = bound;
	}
	return 0;
}

static int open_listeners(struct gateway *g, const struct config_ports *ports, const char *what,
			  conn_accept_fn fn, void *arg)
{
	return open_listeners_on(g, ports, what, fn, arg, UINT64_MAX);
}

/* __SocksListenerShards (testing only): "0" or "0,1" into a worker mask
 * (UINT64_MAX when unset). Return 0, or -1 with a message in err. */
static int socks_listener_mask(const char *text, unsigned nworkers, uint64_t *mask, char *err, size_t errlen)
{
	const char *p = text;

	*mask = UINT64_MAX;
	if (!text)
		return 0;
	*mask = 0;
	for (;;) {
		char *end;
		unsigned long v;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')
			break;
		v = strtoul(p, &end, 10);
		if (v >= nworkers || v >= 64) {
			snprintf(err, errlen, "__SocksListenerShards: worker %lu does not exist (%u workers, at most 64 here)",
				 v, nworkers);
			return -1;
		}
		*mask |= UINT64_C(1) << v;
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '\0')
			return 0;
		break;
	}
	snprintf(err, errlen, "__SocksListenerShards: expected worker numbers separated by commas, got \"%s\"", text);
	return -1;
}

/* One listener per SocksPort line, each with its own isolation flags. */
static int open_socks_ports(struct gateway *g, char *err, size_t errlen)
{
	const struct config_ports *ports = &g->cfg->socks_port;
	uint64_t mask;

	if (socks_listener_mask(g->cfg->socks_listener_shards, runtime_nworkers(g->rt), &mask, err, errlen) < 0)
		return -1;
	if (mask != UINT64_MAX)
		log_warn("__SocksListenerShards is set: only some workers take SOCKS clients (testing only)");

	if (ports->n > GATEWAY_MAX_SOCKS_PORTS) {
		snprintf(err, errlen, "at most %d SocksPort lines are supported", GATEWAY_MAX_SOCKS_PORTS);
		return -1;
	}
	for (size_t i = 0; i < ports->n; i++) {
		struct config_ports one = { .v = &ports->v[i], .n = 1 };
		struct socks_listener *l = &g->socks[i];

		if (socks_listener_init(l, (unsigned)i, &ports->v[i], err, errlen) < 0)
			return -1;
		if (open_listeners_on(g, &one, "SocksPort", socks_accept, l, mask) < 0) {
			snprintf(err, errlen, "cannot open a SocksPort listener (see the log)");
			return -1;
		}
		g->socks_bound[i] = g->last_bound;
		g->nsocks = i + 1;
	}
	return 0;
}

/* --- control port (app/control.h) ------------------------------------------ */

/* Sum of every worker's socket counters. */
static void traffic(struct gateway *g, uint64_t *in, uint64_t *out)
{
	struct worker_stats st;

	*in = *out = 0;
	for (unsigned i = 0; i < runtime_nworkers(g->rt); i++) {
		worker_stats_read(runtime_worker(g->rt, i), &st);
		*in += st.bytes_in;
		*out += st.bytes_out;
	}
}

/* Publish a BW event (control-spec 4.1.4) about once a second while a
 * controller listens. Coordinator thread. */
static void control_tick(struct gateway *g)
{
	uint64_t now = clock_mono_ns(), in, out;

	if (!events_wanted(EVENT_BW)) {
		g->bw_ns = 0; /* the next subscriber starts a fresh interval */
		return;
	}
	if (now - g->bw_ns < 1000000000ull)
		return;
	traffic(g, &in, &out);
	if (g->bw_ns)
		events_publish_bw(in - g->bw_in, out - g->bw_out);
	g->bw_ns = now;
	g->bw_in = in;
	g->bw_out = out;
}

static int control_getinfo(void *arg, const char *key, struct control_buf *out)
{
	struct gateway *g = arg;
	uint64_t in, outb;

	if (strcmp(key, "config-file") == 0) {
		if (!g->config_path)
			return -ENOTSUP;
		control_buf_printf(out, "%s", g->config_path);
	} else if (strcmp(key, "traffic/read") == 0 || strcmp(key, "traffic/written") == 0) {
		traffic(g, &in, &outb);
		control_buf_printf(out, "%llu", (unsigned long long)(key[8] == 'r' ? in : outb));
	} else if (strcmp(key, "net/listeners/socks") == 0) {
		pthread_mutex_lock(&g->cfg_lock);
		for (size_t i = 0; i < g->nsocks; i++) /* SocksPort is not a runtime key */
			control_buf_printf(out, "%s\"%s%s%s:%u\"", i ? " " : "", g->cfg->socks_port.v[i].is_ipv6 ? "[" : "",
					   g->cfg->socks_port.v[i].addr, g->cfg->socks_port.v[i].is_ipv6 ? "]" : "",
					   g->socks_bound[i]);
		pthread_mutex_unlock(&g->cfg_lock);
	} else {
		return -ENOENT;
	}
	return 0;
}

/* CLOSESTREAM, CLOSECIRCUIT, circuit-status, stream-status, orconn-status: every shard
 * is asked (app/shardreq.h). */
static int control_request(void *arg, struct worker *w, struct control_req *req)
{
	struct gateway *g = arg;

	return shardreq_start(g->rt, w, req);
}

static void dump_worker(struct worker *w, void *arg)
{
	(void)arg;
	circmgr_dump(w);
}

static int control_signal(void *arg, enum control_signal sig)
{
	struct gateway *g = arg;
	uint64_t in, out;

	switch (sig) {
	case CONTROL_SIGNAL_RELOAD: /* the same path as a real SIGHUP */
		return kill(getpid(), SIGHUP) < 0 ? -errno : 0;
	case CONTROL_SIGNAL_SHUTDOWN:
	case CONTROL_SIGNAL_HALT:
		return kill(getpid(), SIGTERM) < 0 ? -errno : 0;
	case CONTROL_SIGNAL_DUMP:
		traffic(g, &in, &out);
		log_notice("DUMP: %u workers, %llu bytes read, %llu written, uptime %.1f s", runtime_nworkers(g->rt),
			   (unsigned long long)in, (unsigned long long)out,
			   (double)(clock_mono_ns() - g->started_ns) / 1e9);
		for (unsigned i = 0; i < runtime_nworkers(g->rt); i++)
			worker_post(runtime_worker(g->rt, i), dump_worker, NULL);
		return 0;
	case CONTROL_SIGNAL_NEWNYM:
		return events_newnym();
	}
	return -EINVAL;
}

static void control_config_read(void *arg, void (*fn)(const struct config *cfg, void *ctx), void *ctx)
{
	struct gateway *g = arg;

	pthread_mutex_lock(&g->cfg_lock);
	fn(g->cfg, ctx);
	pthread_mutex_unlock(&g->cfg_lock);
}

/* The destination of ncfg's first Log line (borrowed): a path, NULL for
 * stderr; *has is false when there is no Log line (nothing changes). */
static const char *log_target(const struct config *ncfg, bool *has)
{
	const struct config_log *lg = ncfg->log.n ? &ncfg->log.v[0] : NULL;

	*has = lg != NULL;
	if (!lg)
		return NULL;
	if (lg->sink == CONFIG_LOG_FILE)
		return lg->path;
	if (lg->sink == CONFIG_LOG_STDOUT)
		return "/dev/stdout";
	return NULL;
}

/* Open the destination of ncfg's first Log line (borrowed) before anything
 * of ncfg is applied: tor refuses a whole reload whose log cannot be
 * opened, and so do we. Return the descriptor (owned), -1 when there is no
 * Log line, or -2 with the reason in err ("FILE:LINE: " first when src,
 * the file it came from, is given). Reopened even when unchanged, so a
 * SIGHUP after rotating the file starts a new one, as in tor. */
static int log_prepare(const struct config *ncfg, const char *src, char *err, size_t errlen)
{
	bool has;
	const char *path = log_target(ncfg, &has);
	int fd;

	if (!has)
		return -1;
	fd = log_target_open(path);
	if (fd >= 0)
		return fd;
	if (src)
		snprintf(err, errlen, "%s:%u: Log: cannot open %s: %s", src, ncfg->log.v[0].line,
			 path ? path : "stderr", strerror(-fd));
	else
		snprintf(err, errlen, "Log: cannot open %s: %s", path ? path : "stderr", strerror(-fd));
	return -2;
}

/* Point the log at fd (owned; from log_prepare, -1: no Log line) with
 * ncfg's (borrowed) level, as main.c's apply_log does at start. */
static void log_apply(const struct config *ncfg, int fd)
{
	int r;

	if (fd < 0)
		return;
	log_set_level(ncfg->log.v[0].min);
	r = log_redirect_fd(fd);
	if (r < 0) /* -EBUSY: the log started on stderr itself (no Log line then) */
		log_warn("Log: cannot switch destination: %s; lines still go where they went", strerror(-r));
}

/* Whether a key that shapes paths differs between a and b (borrowed). Tor
 * abandons its circuits when ExcludeNodes, ExcludeExitNodes, ExitNodes or
 * StrictNodes change (options_act: unused ones closed, dirty ones take no
 * new streams); EnforceDistinctSubnets is a path rule here too. */
static bool node_rules_changed(const struct config *a, const struct config *b)
{
	static const char *const keys[] = { "EnforceDistinctSubnets", "ExcludeNodes", "ExcludeExitNodes",
					    "ExitNodes", "StrictNodes" };
	const struct config_key *changed[64];
	size_t n = config_diff(a, b, changed, sizeof(changed) / sizeof(changed[0]));

	for (size_t i = 0; i < n && i < sizeof(changed) / sizeof(changed[0]); i++)
		for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++)
			if (strcmp(changed[i]->name, keys[j]) == 0)
				return true;
	return false;
}

/* Put ncfg (owned, taken) in force with its log descriptor log_fd (owned,
 * from log_prepare); g->cfg_lock held. Nothing here fails: what can fail
 * (opening the log) was done before. Run-time keys held by the shards go
 * to every worker (post_shard_config); the rest are read from g->cfg or
 * the directory view where they are used. */
static void config_apply_locked(struct gateway *g, struct config *ncfg, int log_fd)
{
	log_apply(ncfg, log_fd);
	log_set_safe_logging(ncfg->safe_logging);
	dirview_set_config(ncfg);
	/* Circuits built under the old rules take no new streams: the NEWNYM
	 * epoch does exactly that on every shard (and the prebuild replaces
	 * the clean ones). */
	if (node_rules_changed(g->cfg, ncfg) && events_newnym() == 0)
		log_notice("node rules changed: new streams get new circuits");
	socks_set_timeout((uint64_t)ncfg->socks_timeout * 1000000000ull);
	circmgr_config_from(&g->circ_cfg, ncfg);
	post_shard_config(g, ncfg);
	config_free(g->cfg);
	g->cfg = ncfg;
}

static int control_config_replace(void *arg, struct config *ncfg, char *err, size_t errlen)
{
	struct gateway *g = arg;

	int log_fd = log_prepare(ncfg, NULL, err, errlen);

	if (log_fd == -2) {
		log_warn("SETCONF: new configuration rejected, the old one stays in force: %s", err);
		config_free(ncfg);
		return -EINVAL;
	}
	pthread_mutex_lock(&g->cfg_lock);
	config_apply_locked(g, ncfg, log_fd);
	pthread_mutex_unlock(&g->cfg_lock);
	/* release: pairs with coord_tick's acquire exchange. */
	atomic_store_explicit(&g->onion_auth_stale, true, memory_order_release);
	log_notice("SETCONF: configuration changed by a controller");
	return 0;
}

static bool port_is_loopback(const struct config_port *p)
{
	return p->is_ipv6 ? strcmp(p->addr, "::1") == 0 : strncmp(p->addr, "127.", 4) == 0;
}

/* ControlPort listeners and the cookie; nothing when ControlPort is off. */
static int open_control_port(struct gateway *g, char *err, size_t errlen)
{
	const struct config *cfg = g->cfg;
	struct control_server *srv = &g->control;

	if (cfg->control_port.n == 0)
		return 0;
	srv->be = (struct control_backend){
		.arg = g, .getinfo = control_getinfo, .signal = control_signal, .request = control_request,
		.config_read = control_config_read, .config_replace = control_config_replace,
	};
	srv->have_passwords = cfg->hashed_control_password.n > 0;
	if (cfg->cookie_authentication) {
		if (!cfg->data_directory) {
			snprintf(err, errlen, "CookieAuthentication 1 needs a DataDirectory for the cookie file");
			return -1;
		}
		if (control_cookie_write(srv, cfg->data_directory, err, errlen) < 0)
			return -1;
	}
	for (size_t i = 0; i < cfg->control_port.n; i++)
		if (!port_is_loopback(&cfg->control_port.v[i]) && !srv->cookie_auth && !srv->have_passwords)
			log_warn("ControlPort %s is not on loopback and has no authentication: anyone who reaches it controls onionring",
				 cfg->control_port.v[i].addr);
	log_set_hook(events_log_hook, NULL);
	if (open_listeners(g, &cfg->control_port, "ControlPort", control_accept, srv) < 0) {
		snprintf(err, errlen, "cannot open the ControlPort listener (see the log)");
		return -1;
	}
	return 0;
}

/* --- lifecycle ------------------------------------------------------------- */

struct gateway *gateway_new(struct config *cfg, const char *config_path, char *err, size_t errlen)
{
	struct gateway *g = calloc(1, sizeof(*g));
	struct runtime_config rc;
	char why[256];

	if (!g) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->cfg = cfg;
	g->config_path = config_path;
	pthread_mutex_init(&g->cfg_lock, NULL);
	if (runtime_probe(why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s", why);
		free(g);
		return NULL;
	}
	runtime_config_defaults(&rc);
	if (cfg->num_workers > 0)
		rc.nworkers = (unsigned)cfg->num_workers;
	/* Queued send chunks are the bytes waiting in our queues: capped by
	 * MaxMemInQueues, read at start (the pool's reservation is fixed). */
	rc.chunk_pool_bytes = (size_t)cfg->max_mem_in_queues;
	dirview_init(cfg);
	onion_auth_reload(g, cfg->client_onion_auth_dir); /* before any worker runs */
	socks_set_timeout((uint64_t)cfg->socks_timeout * 1000000000ull);
	guardmgr_init(cfg->data_directory);
	rc.worker_started = worker_started;
	rc.worker_stopping = worker_stopping;
	rc.coord_tick = coord_tick;
	/* Each directory fetch round waits for the next tick: 250 ms keeps a
	 * cold bootstrap (4 rounds) near 1 s; an idle dirmgr tick costs a few
	 * comparisons and relaxed stores. */
	rc.coordinator_tick_ms = 250;
	rc.arg = g;
	circmgr_config_from(&g->circ_cfg, cfg);
	g->rt = runtime_new(&rc);
	if (!g->rt) {
		snprintf(err, errlen, "cannot create the worker runtime");
		onion_auth_shutdown();
		free(g);
		return NULL;
	}
	if (start_directory(g, cfg, err, errlen) < 0) {
		gateway_free(g);
		return NULL;
	}
	g->metrics.collect = collect_runtime;
	g->metrics.health = health;
	g->metrics.arg = g;
	if (open_listeners(g, &cfg->metrics_port, "MetricsPort", metrics_accept, &g->metrics) < 0) {
		snprintf(err, errlen, "cannot open the MetricsPort listener (see the log)");
		gateway_free(g);
		return NULL;
	}
	if (open_socks_ports(g, err, errlen) < 0 || open_control_port(g, err, errlen) < 0) {
		gateway_free(g);
		return NULL;
	}
	return g;
}

/* Re-read the configuration; keep the old one on any error. */
static void reload(struct gateway *g)
{
	const struct config_key *changed[64];
	struct config *ncfg = NULL;
	char err[CONFIG_ERR_MAX];
	size_t n;
	int log_fd;
	char *auth_dir;

	if (!g->config_path) {
		log_notice("SIGHUP: no configuration file to re-read");
		return;
	}
	if (config_load_file(g->config_path, &ncfg, err, sizeof(err)) < 0) {
		log_warn("SIGHUP: new configuration rejected, the old one stays in force: %s", err);
		return;
	}
	pthread_mutex_lock(&g->cfg_lock); /* SETCONF may swap g->cfg too */
	n = config_diff(g->cfg, ncfg, changed, sizeof(changed) / sizeof(changed[0]));
	for (size_t i = 0; i < n && i < sizeof(changed) / sizeof(changed[0]); i++) {
		if (!config_key_is_runtime(changed[i])) {
			pthread_mutex_unlock(&g->cfg_lock);
			log_warn("SIGHUP: %s cannot change while running; the old configuration stays in force",
				 changed[i]->name);
			config_free(ncfg);
			return;
		}
	}
	/* Every check comes before the first change: a log that cannot be
	 * opened rejects the whole reload (tor does the same). */
	log_fd = log_prepare(ncfg, g->config_path, err, sizeof(err));
	if (log_fd == -2) {
		pthread_mutex_unlock(&g->cfg_lock);
		log_warn("SIGHUP: new configuration rejected, the old one stays in force: %s", err);
		config_free(ncfg);
		return;
	}
	auth_dir = ncfg->client_onion_auth_dir ? strdup(ncfg->client_onion_auth_dir) : NULL;
	config_apply_locked(g, ncfg, log_fd);
	pthread_mutex_unlock(&g->cfg_lock);
	log_notice("SIGHUP: configuration re-read, %zu key(s) changed", n);
	/* Every SIGHUP, changed or not: tor re-reads the key files too. The
	 * path was copied under cfg_lock before a SETCONF could swap g->cfg. */
	onion_auth_reload(g, auth_dir);
	free(auth_dir);
}

/* systemd's readiness protocol without libsystemd: one datagram to the
 * AF_UNIX socket named by $NOTIFY_SOCKET ("@" starts an abstract name).
 * Does nothing when the variable is unset. */
static void sd_notify_text(const char *text)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	size_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	len = strlen(path);
	memcpy(sun.sun_path, path, len);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_info("sd_notify: %s", strerror(errno));
	close(fd);
}

/* Streams open on every shard (relaxed reads of the shards' gauges). */
static uint64_t open_streams(struct gateway *g)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < runtime_nworkers(g->rt); i++) {
		struct circmgr_stats st;
		circmgr_stats_read(runtime_worker(g->rt, i), &st);
		n += st.streams_open;
	}
	return n;
}

/* SIGTERM/SIGINT: stop accepting, let open streams finish for up to
 * ShutdownWaitLength (as tor), then stop. A second SIGTERM or SIGINT stops
 * at once. Main thread. */
static void drain(struct gateway *g, const sigset_t *set, int first)
{
	int64_t wait_s;
	uint64_t deadline, n = open_streams(g);

	pthread_mutex_lock(&g->cfg_lock); /* SETCONF may swap g->cfg */
	wait_s = g->cfg->shutdown_wait_length;
	pthread_mutex_unlock(&g->cfg_lock);
	deadline = clock_mono_ns() + (uint64_t)wait_s * 1000000000ull;

	sd_notify_text("STOPPING=1");
	if (n == 0) {
		log_notice("%s received: no open streams, stopping", first == SIGINT ? "SIGINT" : "SIGTERM");
		return;
	}
	log_notice("%s received: not accepting new clients; waiting up to %lld s for %llu open stream(s) "
		   "(send it again to stop at once)",
		   first == SIGINT ? "SIGINT" : "SIGTERM", (long long)wait_s, (unsigned long long)n);
	runtime_stop_accepting(g->rt);
	while (clock_mono_ns() < deadline) {
		struct timespec ts = { 0, 200 * 1000000L };
		int sig = sigtimedwait(set, NULL, &ts);

		if (sig == SIGINT || sig == SIGTERM) {
			log_notice("%s received again: stopping now", sig == SIGINT ? "SIGINT" : "SIGTERM");
			return;
		}
		if (sig == SIGHUP)
			reload(g);
		if (open_streams(g) == 0) {
			log_notice("all streams finished: stopping");
			return;
		}
	}
	log_notice("drain time is over with %llu stream(s) still open: stopping",
		   (unsigned long long)open_streams(g));
}

int gateway_run(struct gateway *g)
{
	sigset_t set;
	int r, sig, interrupts = 0;

	/* Block the signals in every thread (workers inherit the mask) and
	 * take them here, synchronously. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	g->started_ns = clock_mono_ns();
	r = runtime_start(g->rt);
	if (r < 0) {
		log_err("cannot start the workers: %s", strerror(-r));
		runtime_join(g->rt);
		return 1;
	}
	log_notice("onionring %s running with %u workers", ONIONRING_VERSION, runtime_nworkers(g->rt));
	sd_notify_text("READY=1");
	for (;;) {
		sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(g);
			continue;
		}
		if (sig == SIGPIPE)
			continue;
		interrupts++;
		break;
	}
	drain(g, &set, sig);
	runtime_stop(g->rt);
	runtime_join(g->rt);
	log_notice("onionring stopped");
	return 0;
}

void gateway_free(struct gateway *g)
{
	if (!g)
		return;
	if (g->rt)
		for (unsigned i = 0; i < runtime_nworkers(g->rt); i++)
			circmgr_free(runtime_worker(g->rt, i));
	runtime_free(g->rt);
	guardmgr_shutdown(clock_wall());
	/* The workers are joined: every BEGIN_DIR fetch has called back. */
	dirmgr_free(g->dir);
	dirauth_list_free(&g->auths);
	dirview_shutdown();
	onion_auth_shutdown();
	config_free(g->cfg);
	free(g);
}
