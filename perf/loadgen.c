/* loadgen: a SOCKS5 load generator for any gateway (onionring or tor).
 *
 * Opens many concurrent SOCKS5 connections, each asking the private test
 * network's httpd for GET /bytes/<N> through an exit, checks every body byte
 * against the known pattern as it arrives, and reports throughput, request
 * rate, TTFB and connect-to-CONNECTED percentiles, errors by kind and, with
 * --gateway-pid, the gateway's CPU time and RSS from /proc. Modes: closed
 * loop (C connections back to back), open loop (Poisson arrivals at R/s),
 * idle (hold N CONNECTED streams and sample the gateway's RSS).
 *
 * Why epoll and not io_uring: the load generator must not share its event
 * machinery (or its bugs) with the gateway it measures, which uses io_uring;
 * readiness + recv() into one 256 KiB buffer costs little next to a Tor
 * gateway (loadgen reports its own CPU time too), and epoll holds 10,000
 * idle sockets without a posted buffer per socket.
 *
 * This file: options, the event loop, deadlines, gateway sampling.
 * Not for: reaching anything but 127.0.0.1 (the gateway must be loopback).
 * One thread; every function here runs on it. */
#include "perf/loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "perf/loadgen_pattern.h"
#include "perf/loadgen_proc.h"

#define TICK_NS 100000000ull       /* housekeeping every 100 ms */
#define NS 1e9

static volatile sig_atomic_t lg_interrupted;

static void on_signal(int sig)
{
	(void)sig;
	lg_interrupted = 1;
}

static const char usage[] =
"usage: loadgen --socks-port P --target-port P [options]\n"
"Load a SOCKS5 gateway with HTTP/1.0 GETs of /bytes/<N> from the test network's\n"
"httpd and check every body byte against the known pattern.\n"
"  --socks-host A        gateway address (default 127.0.0.1; loopback only)\n"
"  --socks-port P        gateway SOCKS port (required)\n"
"  --target-host H       CONNECT target host (default 127.0.0.1)\n"
"  --target-port P       CONNECT target port: httpd (required)\n"
"  --connect-ip          CONNECT by IPv4 address (ATYP 1); default by name (ATYP 3)\n"
"  --size N[-M]          body size or uniform range; suffixes k, M, G (x1024) (default 1M)\n"
"  --path P              GET path instead of /bytes/<size> (body length from the head)\n"
"  --expect-pattern      check --path bodies against the /bytes pattern too\n"
"  --no-check            do not check body bytes\n"
"  --mode closed|open|idle   (default closed)\n"
"  --connections C       closed: concurrent connections; idle: connections to hold;\n"
"                        open: most requests in flight (default 4)\n"
"  --rate R              open loop: Poisson arrivals per second (default 10)\n"
"  --duration S          stop starting requests after S s; idle: hold time (default\n"
"                        10, or none when only --requests is given)\n"
"  --requests N          stop after N requests (0 = no limit; then --duration rules)\n"
"  --iso-keys K          SOCKS usernames iso0..isoK-1 (isolation keys); 0 = no auth\n"
"  --timeout S           fail a request after S s without progress (default 60)\n"
"  --drain S             after the deadline, wait S s for requests in flight (default 60)\n"
"  --max-seconds S       hard limit for the whole run (default 3600)\n"
"  --max-pending N       connections in handshake at once (default 256)\n"
"  --gateway-pid PID     sample the gateway's CPU time and RSS from /proc/PID\n"
"  --label L             name for this run in the output\n"
"  --csv FILE            also append a CSV row (header when FILE is new)\n"
"  --ttfb-out FILE       write every TTFB sample (ms, one per line) to FILE\n"
"  --seed N              random seed for sizes and arrivals (default 1)\n"
"  --progress / --no-progress   live line on stderr (default: if stderr is a tty)\n"
"Output: one JSON object on stdout. Exit 0 if the run completed (even with\n"
"request errors: read \"errors\"), 2 on bad options, 1 if it could not run.\n";

/* Parse "123", "64k", "5M", "1G" (binary multiples). Return 0 or -1. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'M': v <<= 20; end++; break;
	case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static int parse_size_range(const char *s, struct lg_opts *o)
{
	char buf[64];
	char *dash;

	snprintf(buf, sizeof(buf), "%s", s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	if (parse_size(buf, &o->size_min) < 0)
		return -1;
	o->size_max = o->size_min;
	if (dash && parse_size(dash + 1, &o->size_max) < 0)
		return -1;
	return o->size_max >= o->size_min ? 0 : -1;
}

static int parse_port(const char *s, uint16_t *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;

	*out = strtod(s, &end);
	return (end == s || *end || !(*out >= 0)) ? -1 : 0;
}

static const struct option long_opts[] = {
	{ "socks-host", required_argument, 0, 'H' }, { "socks-port", required_argument, 0, 'P' },
	{ "target-host", required_argument, 0, 't' }, { "target-port", required_argument, 0, 'p' },
	{ "connect-ip", no_argument, 0, 'I' }, { "size", required_argument, 0, 's' },
	{ "path", required_argument, 0, 'u' }, { "expect-pattern", no_argument, 0, 'E' },
	{ "no-check", no_argument, 0, 'N' }, { "mode", required_argument, 0, 'm' },
	{ "connections", required_argument, 0, 'c' }, { "rate", required_argument, 0, 'r' },
	{ "duration", required_argument, 0, 'd' }, { "requests", required_argument, 0, 'n' },
	{ "iso-keys", required_argument, 0, 'k' }, { "timeout", required_argument, 0, 'T' },
	{ "drain", required_argument, 0, 'D' }, { "max-seconds", required_argument, 0, 'X' },
	{ "max-pending", required_argument, 0, 'q' }, { "gateway-pid", required_argument, 0, 'g' },
	{ "label", required_argument, 0, 'l' }, { "csv", required_argument, 0, 'C' },
	{ "ttfb-out", required_argument, 0, 'O' },
	{ "seed", required_argument, 0, 'S' }, { "progress", no_argument, 0, 'G' },
	{ "no-progress", no_argument, 0, 'g' + 256 }, { "help", no_argument, 0, 'h' },
	{ 0, 0, 0, 0 }
};

static void opts_default(struct lg_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->socks_host = "127.0.0.1";
	o->target_host = "127.0.0.1";
	o->size_min = o->size_max = 1 << 20;
	o->expect_pattern = -1;
	o->connections = 4;
	o->rate = 10;
	o->timeout = 60;
	o->drain = 60;
	o->max_seconds = 3600;
	o->max_pending = 256;
	o->label = "";
	o->seed = 1;
	o->progress = -1;
}

/* Apply one option; return 0 or -1 for a bad value. */
static int opts_apply(struct lg_opts *o, int ch, const char *a)
{
	uint64_t v;

	switch (ch) {
	case 'H': o->socks_host = a; return 0;
	case 'P': return parse_port(a, &o->socks_port);
	case 't': o->target_host = a; return 0;
	case 'p': return parse_port(a, &o->target_port);
	case 'I': o->connect_ip = true; return 0;
	case 's': return parse_size_range(a, o);
	case 'u': o->path = a; return (a[0] == '/' && strlen(a) < 200) ? 0 : -1;
	case 'E': o->expect_pattern = 1; return 0;
	case 'N': o->expect_pattern = 0; return 0;
	case 'm':
		o->mode = !strcmp(a, "closed") ? LG_CLOSED : !strcmp(a, "open") ? LG_OPEN : LG_IDLE;
		return (!strcmp(a, "closed") || !strcmp(a, "open") || !strcmp(a, "idle")) ? 0 : -1;
	case 'c':
		if (parse_size(a, &v) < 0 || v < 1 || v > 1000000)
			return -1;
		o->connections = (unsigned)v;
		return 0;
	case 'r': return parse_double(a, &o->rate);
	case 'd': return parse_double(a, &o->duration);
	case 'n': return parse_size(a, &o->requests);
	case 'k':
		if (parse_size(a, &v) < 0 || v > 1000000)
			return -1;
		o->iso_keys = (unsigned)v;
		return 0;
	case 'T': return parse_double(a, &o->timeout);
	case 'D': return parse_double(a, &o->drain);
	case 'X': return parse_double(a, &o->max_seconds);
	case 'q':
		if (parse_size(a, &v) < 0 || v < 1 || v > 1000000)
			return -1;
		o->max_pending = (unsigned)v;
		return 0;
	case 'g':
		if (parse_size(a, &v) < 0 || v < 1 || v > 0x7fffffff)
			return -1;
		o->gateway_pid = (pid_t)v;
		return 0;
	case 'l': o->label = a; return 0;
	case 'C': o->csv_path = a; return 0;
	case 'O': o->ttfb_path = a; return 0;
	case 'S': return parse_size(a, &o->seed);
	case 'G': o->progress = 1; return 0;
	case 'g' + 256: o->progress = 0; return 0;
	default: return -1;
	}
}

/* Parse argv into o. Return 0, 1 for --help, or -1 (message printed). */
static int opts_parse(struct lg_opts *o, int argc, char **argv)
{
	int ch, idx = -1;

	opts_default(o);
	while ((ch = getopt_long(argc, argv, "h", long_opts, &idx)) != -1) {
		if (ch == 'h') {
			fputs(usage, stdout);
			return 1;
		}
		if (ch == '?' || opts_apply(o, ch, optarg) < 0) {
			if (ch != '?' && idx >= 0)
				fprintf(stderr, "loadgen: bad value for --%s: %s\n",
					long_opts[idx].name, optarg ? optarg : "");
			fputs("loadgen: see --help\n", stderr);
			return -1;
		}
	}
	if (optind < argc || !o->socks_port || !o->target_port) {
		fputs("loadgen: --socks-port and --target-port are required; see --help\n", stderr);
		return -1;
	}
	if (o->mode == LG_OPEN && !(o->rate > 0)) {
		fputs("loadgen: --mode open needs --rate > 0\n", stderr);
		return -1;
	}
	/* Default: 10 s, unless a request count alone bounds the run. */
	if (!(o->duration > 0) && (o->mode == LG_IDLE || !o->requests))
		o->duration = 10;
	return 0;
}

/* Raise RLIMIT_NOFILE to at least need descriptors. Return 0 or -1 (printed). */
static int raise_nofile(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max < need) {
		rl.rlim_max = need;    /* only works with CAP_SYS_RESOURCE */
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fprintf(stderr, "loadgen: need %llu file descriptors but cannot raise "
			"RLIMIT_NOFILE (%s); try: ulimit -n %llu\n",
			(unsigned long long)need, strerror(errno), (unsigned long long)need);
		return -1;
	}
	return 0;
}

/* Sample the gateway's RSS (keep the maximum). Marks it gone if it exited. */
static void gateway_sample(struct lg *g)
{
	uint64_t rss, hwm;
	struct lg_gateway *gw = &g->r.gw;

	if (!gw->watched || gw->gone)
		return;
	if (proc_rss_kb(g->o.gateway_pid, &rss, &hwm) < 0) {
		gw->gone = true;
		return;
	}
	gw->rss_end_kb = rss;
	gw->hwm_kb = hwm;
	if (rss > gw->rss_max_kb)
		gw->rss_max_kb = rss;
}

static int gateway_begin(struct lg *g)
{
	struct lg_gateway *gw = &g->r.gw;

	if (!g->o.gateway_pid)
		return 0;
	gw->watched = true;
	if (proc_cpu_seconds(g->o.gateway_pid, &gw->user_start, &gw->sys_start) < 0) {
		fprintf(stderr, "loadgen: cannot read /proc/%d/stat\n", (int)g->o.gateway_pid);
		return -1;
	}
	gateway_sample(g);
	gw->rss_before_kb = gw->rss_end_kb;
	return 0;
}

static void gateway_end(struct lg *g)
{
	struct lg_gateway *gw = &g->r.gw;

	if (!gw->watched)
		return;
	gateway_sample(g);
	if (gw->gone || proc_cpu_seconds(g->o.gateway_pid, &gw->user_end, &gw->sys_end) < 0) {
		gw->gone = true;
		gw->user_end = gw->user_start;
		gw->sys_end = gw->sys_start;
	}
}

/* Set up g from its options: address, fd limit, epoll, slots, buffer. */
static int lg_setup(struct lg *g)
{
	unsigned i;

	memset(&g->socks_addr, 0, sizeof(g->socks_addr));
	g->socks_addr.sin_family = AF_INET;
	g->socks_addr.sin_port = htons(g->o.socks_port);
	if (inet_pton(AF_INET, g->o.socks_host, &g->socks_addr.sin_addr) != 1 ||
	    (ntohl(g->socks_addr.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "loadgen: --socks-host must be an IPv4 loopback address\n");
		return -1;
	}
	g->nconns = g->o.connections;
	if (raise_nofile((rlim_t)g->nconns + 64) < 0)
		return -1;
	g->ep = epoll_create1(EPOLL_CLOEXEC);
	g->conns = calloc(g->nconns, sizeof(*g->conns));
	g->rbuf = malloc(LG_RBUF_SIZE);
	if (g->ep < 0 || !g->conns || !g->rbuf) {
		fprintf(stderr, "loadgen: setup: %s\n", strerror(errno));
		return -1;
	}
	for (i = 0; i < g->nconns; i++)
		g->conns[i].fd = -1;
	g->rng = g->o.seed * 0x9E3779B97F4A7C15ULL + 1;
	pattern_init();
	return gateway_begin(g);
}

/* May another request start now? */
static bool lg_may_start(struct lg *g, uint64_t now)
{
	if (g->o.requests && g->r.started >= g->o.requests)
		return false;
	return now < g->deadline;
}

/* Closed loop and idle: start requests on free slots whose wait is over. */
static void lg_fill_slots(struct lg *g, uint64_t now)
{
	unsigned i;

	for (i = 0; i < g->nconns; i++) {
		struct conn *c = &g->conns[i];

		if (c->st != CS_FREE || c->not_before > now)
			continue;
		if (g->pending >= g->o.max_pending || !lg_may_start(g, now))
			return;
		if (g->o.mode == LG_IDLE && g->r.started >= g->nconns)
			return;      /* idle: each slot opens once */
		conn_start(g, c, now);
	}
}

/* Open loop: start every arrival that is due; count an overload when no
 * slot is free (the arrival is dropped, never delayed: open loop). */
static void lg_arrivals(struct lg *g, uint64_t now)
{
	static unsigned hint;

	while (g->next_arrival <= now && lg_may_start(g, g->next_arrival)) {
		unsigned i, k;

		for (k = 0; k < g->nconns; k++) {
			i = (hint + k) % g->nconns;
			if (g->conns[i].st == CS_FREE)
				break;
		}
		if (k < g->nconns) {
			hint = i + 1;
			conn_start(g, &g->conns[i], now);
		} else {
			g->r.started++;
			g->r.errors[LG_E_OVERLOAD]++;
		}
		g->next_arrival += (uint64_t)(-log(((double)(lg_rng_next(g) >> 11) + 0.5) /
						  9007199254740992.0) / g->o.rate * NS);
	}
}

/* Fail every slot that made no progress for --timeout; with force, end
 * every request still in flight as unfinished (not an error). */
static void lg_sweep(struct lg *g, uint64_t now, bool force)
{
	uint64_t limit = (uint64_t)(g->o.timeout * NS);
	unsigned i;

	for (i = 0; i < g->nconns; i++) {
		struct conn *c = &g->conns[i];

		if (c->st == CS_FREE)
			continue;
		if (force) {
			if (c->st == CS_IDLE)
				g->r.ok++;       /* held to the end: a good idle stream */
			else
				g->r.unfinished++;
			conn_close(g, c, now, 0);
		} else if (c->st != CS_IDLE && now - c->t_last > limit) {
			conn_fail(g, c, LG_E_TIMEOUT, now, "no progress for %.0f s in state %d",
				  g->o.timeout, c->st);
		}
	}
}

/* Idle mode: once every slot is held or failed, start the hold; at its end,
 * record the gateway's RSS. Return true when the run is over. */
static bool lg_idle_step(struct lg *g, uint64_t now)
{
	if (!g->hold_until) {
		if (g->r.started < g->nconns || g->pending)
			return false;
		g->hold_until = now + (uint64_t)(g->o.duration * NS);
		if (!lg_interrupted)
			fprintf(stderr, "loadgen: holding %llu streams for %.0f s\n",
				(unsigned long long)g->r.idle_held, g->o.duration);
		return false;
	}
	if (now < g->hold_until)
		return false;
	gateway_sample(g);
	g->r.gw.rss_held_kb = g->r.gw.rss_end_kb;
	return true;
}

/* Return true when the run is over. */
static bool lg_done(struct lg *g, uint64_t now)
{
	if (lg_interrupted || now >= g->hard_end)
		return true;
	if (g->o.mode == LG_IDLE)
		return lg_idle_step(g, now);
	if (g->open == 0 && !lg_may_start(g, now))
		return true;
	return now >= g->deadline + (uint64_t)(g->o.drain * NS);
}

static void lg_tick(struct lg *g, uint64_t now, uint64_t *next_tick, uint64_t *next_print)
{
	if (now < *next_tick)
		return;
	*next_tick = now + TICK_NS;
	lg_sweep(g, now, false);
	gateway_sample(g);
	if (g->o.progress && now >= *next_print) {
		*next_print = now + 1000000000ull;
		lg_progress(&g->o, &g->r, g->open, now);
	}
}

/* The event loop: run until lg_done. */
static void lg_run(struct lg *g)
{
	struct epoll_event evs[256];
	uint64_t now = clock_mono_ns(), next_tick = now, next_print = now;
	int n, i;

	g->r.t_begin = now;
	g->deadline = g->o.duration > 0 && g->o.mode != LG_IDLE ?
		      now + (uint64_t)(g->o.duration * NS) : UINT64_MAX / 2;
	g->hard_end = now + (uint64_t)(g->o.max_seconds * NS);
	g->next_arrival = now;
	while (!lg_done(g, now)) {
		if (g->o.mode == LG_OPEN)
			lg_arrivals(g, now);
		else
			lg_fill_slots(g, now);
		n = epoll_wait(g->ep, evs, (int)ARRAY_LEN(evs), 10);
		now = clock_mono_ns();
		for (i = 0; i < n; i++)
			conn_on_event(g, evs[i].data.ptr, evs[i].events, now);
		lg_tick(g, now, &next_tick, &next_print);
	}
	lg_sweep(g, now, true);
	g->r.t_end = now;
	if (g->o.progress)
		fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	static struct lg g;
	struct sigaction sa;
	int rc = opts_parse(&g.o, argc, argv);

	if (rc)
		return rc > 0 ? 0 : 2;
	if (g.o.progress < 0)
		g.o.progress = isatty(STDERR_FILENO);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (lg_setup(&g) < 0)
		return 1;
	lg_run(&g);
	gateway_end(&g);
	rc = lg_report(&g.o, &g.r);
	samples_free(&g.r.ttfb);
	samples_free(&g.r.connect);
	samples_free(&g.r.total);
	free(g.conns);
	free(g.rbuf);
	close(g.ep);
	return rc < 0 ? 1 : 0;
}
