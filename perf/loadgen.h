/* The load generator's run state, shared by loadgen.c (options, event loop)
 * and loadgen_report.c (JSON, CSV and the progress line).
 *
 * One thread, one epoll set. Not for use inside onionring: loadgen is a
 * client of any SOCKS5 gateway (onionring or tor) and measures it from the
 * outside. */
#ifndef ONIONRING_PERF_LOADGEN_H
#define ONIONRING_PERF_LOADGEN_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#include "core/compiler.h"

#include "perf/loadgen_stats.h"

enum lg_mode { LG_CLOSED, LG_OPEN, LG_IDLE };

/* Error kinds; a failed request counts once, under its first error. */
enum lg_err {
	LG_E_SOCKS_REFUSED,  /* CONNECT reply with REP != 0 (by code below) */
	LG_E_SOCKS_PROTOCOL, /* bad SOCKS bytes, auth refused, or EOF in handshake */
	LG_E_CONNECT,        /* TCP connect to the gateway failed */
	LG_E_TIMEOUT,        /* no progress for --timeout seconds */
	LG_E_SHORT_READ,     /* EOF or reset before the whole body */
	LG_E_CORRUPT,        /* a body byte differs from the pattern, or wrong length */
	LG_E_HTTP_STATUS,    /* status other than 200 */
	LG_E_HTTP_PROTOCOL,  /* unparsable response head */
	LG_E_OVERLOAD,       /* open loop: arrival with every slot busy */
	LG_E_CLOSED_IDLE,    /* idle mode: the gateway closed a held stream */
	LG_E_COUNT
};

#define LG_SOCKS_CODES 10  /* REP 1..8 by code; index 9 = any other code */

struct lg_opts {
	const char *socks_host;
	uint16_t socks_port;
	const char *target_host;
	uint16_t target_port;
	bool connect_ip;
	const char *path;          /* NULL: /bytes/<size> */
	uint64_t size_min, size_max;
	int expect_pattern;        /* -1: only for /bytes/<size> */
	enum lg_mode mode;
	unsigned connections;
	double rate;
	double duration;           /* 0: no deadline */
	uint64_t requests;         /* 0: no count limit */
	unsigned iso_keys;         /* 0: no authentication */
	double timeout;
	double drain;
	double max_seconds;
	unsigned max_pending;
	pid_t gateway_pid;
	const char *label;
	const char *csv_path;
	const char *ttfb_path;     /* every TTFB sample (ms), one per line */
	uint64_t seed;
	int progress;              /* -1: when stderr is a tty */
};

struct lg_gateway {
	bool watched;
	bool gone;
	double user_start, sys_start, user_end, sys_end; /* CPU seconds */
	uint64_t rss_before_kb, rss_held_kb, rss_end_kb, rss_max_kb, hwm_kb;
};

struct lg_result {
	uint64_t t_begin, t_end;   /* CLOCK_MONOTONIC ns */
	uint64_t started, ok, unfinished;
	uint64_t payload_bytes;    /* bodies of requests that completed OK */
	uint64_t verified_bytes;   /* every body byte seen so far (progress) */
	uint64_t errors[LG_E_COUNT];
	uint64_t socks_codes[LG_SOCKS_CODES];
	char example[LG_E_COUNT][160];
	struct samples ttfb, connect, total;
	uint64_t idle_held;
	struct lg_gateway gw;
};

enum conn_state { CS_FREE, CS_TCP, CS_METHOD, CS_AUTH, CS_REPLY, CS_HEAD, CS_BODY, CS_IDLE };

/* One client connection slot (one request at a time). */
struct conn {
	int fd;
	enum conn_state st;
	uint32_t events;           /* current epoll interest */
	uint64_t seq;              /* request number: picks the isolation key */
	uint64_t t_start, t_connected, t_first, t_last, not_before;
	uint64_t want;             /* expected body length, UINT64_MAX unknown */
	uint64_t body;             /* body bytes received */
	bool check;                /* verify body bytes against the pattern */
	uint16_t out_off, out_len;
	uint16_t small_len;
	uint8_t out[300];          /* unsent request bytes (first field not reset) */
	uint8_t small[272];        /* SOCKS replies (<= 262 bytes) */
	uint8_t *head;             /* owned; partial HTTP head, LG_HTTP_HEAD_MAX */
	size_t head_len;
};

#define LG_RBUF_SIZE (256 * 1024)
#define LG_RETRY_NS 50000000ull    /* a slot waits 50 ms after an error */

/* The whole run: options, results, the epoll set and the slots. */
struct lg {
	struct lg_opts o;
	struct lg_result r;
	struct sockaddr_in socks_addr;
	int ep;
	struct conn *conns;        /* owned, nconns slots */
	unsigned nconns, open, pending;
	uint8_t *rbuf;             /* owned, LG_RBUF_SIZE: every recv lands here */
	uint64_t rng;
	uint64_t next_arrival, deadline, hard_end, hold_until;
};

/* Return the next 64-bit draw of g's xorshift64* generator (--seed). */
static inline uint64_t lg_rng_next(struct lg *g)
{
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return g->rng * 0x2545F4914F6CDD1DULL;
}

/* Pick the body size of the next request, uniform in [size_min, size_max]. */
static inline uint64_t lg_pick_size(struct lg *g)
{
	uint64_t span = g->o.size_max - g->o.size_min;

	return span ? g->o.size_min + lg_rng_next(g) % (span + 1) : g->o.size_min;
}

/* Start the next request on free slot c (borrowed, owned by g): socket,
 * non-blocking connect to the gateway, register with epoll. */
void conn_start(struct lg *g, struct conn *c, uint64_t now);

/* Handle epoll events ev for c at time now (ns). */
void conn_on_event(struct lg *g, struct conn *c, uint32_t ev, uint64_t now);

/* Close c's socket and free its slot; retry_ns delays the slot's next use. */
void conn_close(struct lg *g, struct conn *c, uint64_t now, uint64_t retry_ns);

/* Count c's request as failed with kind e, keep the first example message,
 * close c. */
void conn_fail(struct lg *g, struct conn *c, enum lg_err e, uint64_t now,
	       const char *fmt, ...) PRINTF_LIKE(5, 6);

/* Report r (borrowed) for the options o as one JSON object on stdout, and as
 * a CSV row appended to o->csv_path when set. Return 0 or -errno. */
int lg_report(const struct lg_opts *o, struct lg_result *r);

/* Write the live progress line (carriage return, no newline) to stderr. */
void lg_progress(const struct lg_opts *o, const struct lg_result *r, unsigned open,
		 uint64_t now_ns);

/* Return the short name of error kind e ("corrupt", ...). */
const char *lg_err_name(enum lg_err e);

#endif
