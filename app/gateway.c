/* The gateway's lifecycle (see gateway.h). */
#include "app/gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "app/circmgr.h"
#include "app/dirview.h"
#include "app/metrics.h"
#include "app/socks.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "net/runtime.h"
#include "onionring_build.h"

#define GATEWAY_MAX_SOCKS_PORTS 16

struct gateway {
	struct config *cfg;
	const char *config_path;
	struct runtime *rt;
	struct metrics_endpoint metrics;
	struct circmgr_config circ_cfg;
	struct socks_listener socks[GATEWAY_MAX_SOCKS_PORTS];
	uint64_t started_ns;
};

/* --- per-worker set-up ------------------------------------------------------ */

static void worker_started(struct worker *w, void *arg)
{
	struct gateway *g = arg;

	if (circmgr_start(w, &g->circ_cfg) < 0)
		log_err("worker %u: cannot start its circuit manager", worker_id(w));
}

static void worker_stopping(struct worker *w, void *arg)
{
	(void)arg;
	circmgr_stop(w);
}

/* --- metrics --------------------------------------------------------------- */

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
	PER_SHARD("onionring_shard_messages_total", METRICS_COUNTER, "Cross-shard messages received.", msgs_in);
	PER_SHARD("onionring_recv_buffer_exhausted_total", METRICS_COUNTER,
		  "Receives retried because every provided buffer was in use.", no_buffer);
	PER_SHARD("onionring_completions_total", METRICS_COUNTER, "io_uring completions handled.", cqes);
	PER_SHARD("onionring_completion_batches_total", METRICS_COUNTER, "io_uring completion batches handled.",
		  cqe_batches);
#undef PER_SHARD
	metrics_family(b, "onionring_workers", METRICS_GAUGE, "Worker threads.");
	metrics_sample_u64(b, "onionring_workers", NULL, n);
	metrics_family(b, "onionring_uptime_seconds", METRICS_GAUGE, "Seconds since the gateway started.");
	metrics_sample(b, "onionring_uptime_seconds", NULL, (double)(clock_mono_ns() - g->started_ns) / 1e9);
}

static bool health(char *reason, size_t len, void *arg)
{
	struct gateway *g = arg;

	if (runtime_stopping(g->rt)) {
		snprintf(reason, len, "shutting down");
		return false;
	}
	/* Until the directory and circuit layers land there is nothing that
	 * can carry a stream: say so rather than claim health. */
	snprintf(reason, len, "not bootstrapped: no directory yet");
	return false;
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

static int open_listeners(struct gateway *g, const struct config_ports *ports, const char *what,
			  conn_accept_fn fn, void *arg)
{
	for (size_t i = 0; i < ports->n; i++) {
		const struct config_port *p = &ports->v[i];
		struct sockaddr_storage ss;
		socklen_t len;
		uint16_t bound = 0;
		int r = port_sockaddr(p, &ss, &len);

		if (r == 0)
			r = runtime_add_listener(g->rt, (struct sockaddr *)&ss, len, fn, arg, &bound);
		if (r < 0) {
			log_err("cannot listen on %s %s%s%s:%u: %s", what, p->is_ipv6 ? "[" : "", p->addr,
				p->is_ipv6 ? "]" : "", p->port, strerror(-r));
			return r;
		}
		log_notice("%s listening on %s%s%s:%u", what, p->is_ipv6 ? "[" : "", p->addr, p->is_ipv6 ? "]" : "",
			   bound);
	}
	return 0;
}

/* One listener per SocksPort line, each with its own isolation flags. */
static int open_socks_ports(struct gateway *g, char *err, size_t errlen)
{
	const struct config_ports *ports = &g->cfg->socks_port;
	unsigned nworkers = runtime_nworkers(g->rt);

	if (ports->n > GATEWAY_MAX_SOCKS_PORTS) {
		snprintf(err, errlen, "at most %d SocksPort lines are supported", GATEWAY_MAX_SOCKS_PORTS);
		return -1;
	}
	for (size_t i = 0; i < ports->n; i++) {
		struct config_ports one = { .v = &ports->v[i], .n = 1 };
		struct socks_listener *l = &g->socks[i];

		if (socks_listener_init(l, (unsigned)i, &ports->v[i], err, errlen) < 0)
			return -1;
		l->max_sessions = ((uint64_t)g->cfg->max_client_connections + nworkers - 1) / nworkers;
		if (open_listeners(g, &one, "SocksPort", socks_accept, l) < 0) {
			snprintf(err, errlen, "cannot open a SocksPort listener (see the log)");
			return -1;
		}
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
	if (runtime_probe(why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s", why);
		free(g);
		return NULL;
	}
	runtime_config_defaults(&rc);
	if (cfg->num_workers > 0)
		rc.nworkers = (unsigned)cfg->num_workers;
	dirview_init(cfg);
	rc.worker_started = worker_started;
	rc.worker_stopping = worker_stopping;
	rc.arg = g;
	circmgr_config_from(&g->circ_cfg, cfg);
	g->rt = runtime_new(&rc);
	if (!g->rt) {
		snprintf(err, errlen, "cannot create the worker runtime");
		free(g);
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
	if (open_socks_ports(g, err, errlen) < 0) {
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

	if (!g->config_path) {
		log_notice("SIGHUP: no configuration file to re-read");
		return;
	}
	if (config_load_file(g->config_path, &ncfg, err, sizeof(err)) < 0) {
		log_warn("SIGHUP: new configuration rejected, the old one stays in force: %s", err);
		return;
	}
	n = config_diff(g->cfg, ncfg, changed, sizeof(changed) / sizeof(changed[0]));
	for (size_t i = 0; i < n && i < sizeof(changed) / sizeof(changed[0]); i++) {
		if (!config_key_is_runtime(changed[i])) {
			log_warn("SIGHUP: %s cannot change while running; the old configuration stays in force",
				 changed[i]->name);
			config_free(ncfg);
			return;
		}
	}
	if (ncfg->log.n > 0)
		log_set_level(ncfg->log.v[0].min);
	dirview_set_config(ncfg);
	config_free(g->cfg);
	g->cfg = ncfg;
	log_notice("SIGHUP: configuration re-read, %zu key(s) changed", n);
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
		log_notice("%s received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	}
	(void)interrupts;
	runtime_stop(g->rt);
	runtime_join(g->rt);
	log_notice("onionring stopped");
	return 0;
}

void gateway_free(struct gateway *g)
{
	if (!g)
		return;
	runtime_free(g->rt);
	dirview_shutdown();
	config_free(g->cfg);
	free(g);
}
