/* loadgen's per-connection state machine: TCP connect to the gateway,
 * SOCKS5 greeting (+ RFC 1929 username for the isolation key), CONNECT,
 * HTTP/1.0 GET, response head, body checked byte by byte against the
 * pattern as it arrives. Counts each request once: OK (its body counts as
 * payload) or failed under its first error kind.
 * Not for: the event loop, options or reports (loadgen.c, loadgen_report.c).
 * One thread; every function here runs on it. */
#include "perf/loadgen.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "perf/loadgen_pattern.h"
#include "perf/loadgen_wire.h"

#define READS_PER_EVENT 4          /* recv calls per readiness event (fairness) */

static void conn_set_events(struct lg *g, struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (ev != c->events && epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

void conn_close(struct lg *g, struct conn *c, uint64_t now, uint64_t retry_ns)
{
	if (c->st < CS_HEAD && c->st != CS_FREE)
		g->pending--;
	if (c->fd >= 0) {
		close(c->fd);
		g->open--;
	}
	free(c->head);
	c->head = NULL;
	c->head_len = 0;
	c->fd = -1;
	c->st = CS_FREE;
	c->not_before = now + retry_ns;
}

void conn_fail(struct lg *g, struct conn *c, enum lg_err e, uint64_t now,
		      const char *fmt, ...)
{
	va_list ap;

	if (g->r.errors[e]++ == 0) {
		va_start(ap, fmt);
		vsnprintf(g->r.example[e], sizeof(g->r.example[e]), fmt, ap);
		va_end(ap);
	}
	conn_close(g, c, now, LG_RETRY_NS);
}

/* Queue len bytes for c and send what the socket takes. Return 0 or -errno. */
static int conn_send(struct lg *g, struct conn *c, const void *p, size_t len)
{
	ssize_t n;

	if (len) {
		memcpy(c->out, p, len);
		c->out_off = 0;
		c->out_len = (uint16_t)len;
	}
	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return -errno;
		c->out_off += (uint16_t)n;
	}
	conn_set_events(g, c, c->out_off < c->out_len ? EPOLLIN | EPOLLOUT : EPOLLIN);
	return 0;
}

void conn_start(struct lg *g, struct conn *c, uint64_t now)
{
	struct epoll_event e;
	int fd, rc;

	memset(c, 0, offsetof(struct conn, out));
	c->fd = -1;
	c->seq = g->r.started++;
	c->t_start = c->t_last = now;
	c->want = g->o.path ? UINT64_MAX : lg_pick_size(g);
	c->check = g->o.expect_pattern > 0 || (g->o.expect_pattern < 0 && !g->o.path);
	c->st = CS_TCP;
	g->pending++;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_fail(g, c, LG_E_CONNECT, now, "socket: %s", strerror(errno));
		return;
	}
	c->fd = fd;
	g->open++;
	rc = connect(fd, (struct sockaddr *)&g->socks_addr, sizeof(g->socks_addr));
	if (rc < 0 && errno != EINPROGRESS) {
		conn_fail(g, c, LG_E_CONNECT, now, "connect: %s", strerror(errno));
		return;
	}
	e.events = EPOLLOUT | EPOLLIN;
	e.data.ptr = c;
	c->events = e.events;
	if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &e) < 0)
		conn_fail(g, c, LG_E_CONNECT, now, "epoll_ctl: %s", strerror(errno));
}

/* TCP connect finished: check it, send the greeting. */
static void conn_on_tcp(struct lg *g, struct conn *c, uint64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);
	uint8_t greet[3];

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		conn_fail(g, c, LG_E_CONNECT, now, "connect to gateway: %s", strerror(err));
		return;
	}
	c->st = CS_METHOD;
	lg_socks_greeting(greet, g->o.iso_keys ? LG_SOCKS_AUTH_USERPASS : LG_SOCKS_AUTH_NONE);
	if (conn_send(g, c, greet, sizeof(greet)) < 0)
		conn_fail(g, c, LG_E_CONNECT, now, "send greeting: %s", strerror(errno));
}

static void conn_send_connect(struct lg *g, struct conn *c, uint64_t now)
{
	uint8_t req[300];
	size_t n = lg_socks_connect(req, sizeof(req), g->o.target_host, g->o.target_port,
				    g->o.connect_ip);

	c->st = CS_REPLY;
	if (conn_send(g, c, req, n) < 0)
		conn_fail(g, c, LG_E_SOCKS_PROTOCOL, now, "send CONNECT: %s", strerror(errno));
}

static void conn_send_http(struct lg *g, struct conn *c, uint64_t now)
{
	char req[300];
	int n;

	if (g->o.path)
		n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s:%u\r\n\r\n",
			     g->o.path, g->o.target_host, g->o.target_port);
	else
		n = snprintf(req, sizeof(req), "GET /bytes/%llu HTTP/1.0\r\nHost: %s:%u\r\n\r\n",
			     (unsigned long long)c->want, g->o.target_host, g->o.target_port);
	c->st = CS_HEAD;
	g->pending--;
	if (n <= 0 || (size_t)n >= sizeof(req) || conn_send(g, c, req, (size_t)n) < 0)
		conn_fail(g, c, LG_E_SHORT_READ, now, "send request failed");
}

/* CONNECT reply rep arrived for c. */
static void conn_on_reply(struct lg *g, struct conn *c, uint8_t rep, uint64_t now)
{
	if (rep != 0) {
		g->r.socks_codes[rep <= 8 ? rep - 1 : 9]++;
		conn_fail(g, c, LG_E_SOCKS_REFUSED, now, "SOCKS reply code %u", rep);
		return;
	}
	c->t_connected = now;
	samples_add(&g->r.connect, now - c->t_start);
	if (g->o.mode == LG_IDLE) {
		c->st = CS_IDLE;
		g->pending--;
		g->r.idle_held++;
		return;
	}
	conn_send_http(g, c, now);
}

/* Handle the SOCKS bytes now in c->small; return false if c was closed. */
static bool conn_socks_step(struct lg *g, struct conn *c, uint64_t now)
{
	enum parse_result pr;
	size_t used = 0;
	uint8_t v = 0;
	bool ok = false;
	char auth[300], user[24];
	size_t n;

	if (c->st == CS_METHOD)
		pr = lg_socks_method_parse(c->small, c->small_len, &v, &used);
	else if (c->st == CS_AUTH)
		pr = lg_socks_auth_parse(c->small, c->small_len, &ok, &used);
	else
		pr = lg_socks_reply_parse(c->small, c->small_len, &v, &used);
	if (pr == PARSE_NEED_MORE)
		return true;
	if (pr == PARSE_INVALID || used != c->small_len) {
		conn_fail(g, c, LG_E_SOCKS_PROTOCOL, now, "bad SOCKS bytes in state %d", c->st);
		return false;
	}
	c->small_len = 0;
	if (c->st == CS_REPLY) {
		conn_on_reply(g, c, v, now);
		return c->st != CS_FREE;
	}
	if (c->st == CS_AUTH && !ok) {
		conn_fail(g, c, LG_E_SOCKS_PROTOCOL, now, "username/password refused");
		return false;
	}
	if (c->st == CS_AUTH || v == LG_SOCKS_AUTH_NONE) {
		if (c->st == CS_METHOD && g->o.iso_keys) {
			conn_fail(g, c, LG_E_SOCKS_PROTOCOL, now, "gateway chose no-auth");
			return false;
		}
		conn_send_connect(g, c, now);
		return c->st != CS_FREE;
	}
	if (v != LG_SOCKS_AUTH_USERPASS || !g->o.iso_keys) {
		conn_fail(g, c, LG_E_SOCKS_PROTOCOL, now, "gateway chose method %u", v);
		return false;
	}
	/* Tor isolates streams by SOCKS username+password (IsolateSOCKSAuth,
	 * socks-extensions.txt section 3): one username per isolation key. */
	snprintf(user, sizeof(user), "iso%llu", (unsigned long long)(c->seq % g->o.iso_keys));
	n = lg_socks_auth((uint8_t *)auth, sizeof(auth), user, "x");
	c->st = CS_AUTH;
	if (conn_send(g, c, auth, n) < 0) {
		conn_fail(g, c, LG_E_SOCKS_PROTOCOL, now, "send auth: %s", strerror(errno));
		return false;
	}
	return true;
}

/* Read SOCKS reply bytes for c. */
static void conn_read_socks(struct lg *g, struct conn *c, uint64_t now)
{
	ssize_t n = recv(c->fd, c->small + c->small_len, sizeof(c->small) - c->small_len, 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_fail(g, c, LG_E_SOCKS_PROTOCOL, now, "%s during SOCKS handshake",
			  n == 0 ? "EOF" : strerror(errno));
		return;
	}
	c->t_last = now;
	c->small_len += (uint16_t)n;
	conn_socks_step(g, c, now);
}

/* The request on c completed with a good body. */
static void conn_done(struct lg *g, struct conn *c, uint64_t now)
{
	g->r.ok++;
	g->r.payload_bytes += c->body;
	samples_add(&g->r.total, now - c->t_start);
	conn_close(g, c, now, 0);
}

/* Take n body bytes at p (borrowed) for c; return false if c was closed. */
static bool conn_body(struct lg *g, struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
	size_t take = n, bad;

	if (c->want != UINT64_MAX && c->want - c->body < take)
		take = (size_t)(c->want - c->body);
	if (c->check && (bad = pattern_check(c->body, p, take)) < take) {
		conn_fail(g, c, LG_E_CORRUPT, now, "body byte %llu is 0x%02x, pattern says 0x%02x",
			  (unsigned long long)(c->body + bad), p[bad], pattern_byte_at(c->body + bad));
		return false;
	}
	c->body += take;
	g->r.verified_bytes += take;
	if (take < n) {
		conn_fail(g, c, LG_E_CORRUPT, now, "%zu bytes after the %llu-byte body",
			  n - take, (unsigned long long)c->want);
		return false;
	}
	if (c->body == c->want) {
		conn_done(g, c, now);
		return false;
	}
	return true;
}

/* Check the parsed head of c; return false if c was closed. */
static bool conn_head_ok(struct lg *g, struct conn *c, int status, int64_t clen, uint64_t now)
{
	if (status != 200) {
		conn_fail(g, c, LG_E_HTTP_STATUS, now, "HTTP status %d", status);
		return false;
	}
	if (c->want != UINT64_MAX && clen >= 0 && (uint64_t)clen != c->want) {
		conn_fail(g, c, LG_E_CORRUPT, now, "Content-Length %lld, asked for %llu",
			  (long long)clen, (unsigned long long)c->want);
		return false;
	}
	if (clen >= 0)
		c->want = (uint64_t)clen;
	c->st = CS_BODY;
	if (c->want == 0) {
		conn_done(g, c, now);
		return false;
	}
	return true;
}

/* Feed n response bytes at p (borrowed) to c in CS_HEAD; return false if c
 * was closed. Keeps a partial head in c->head (allocated on demand). */
static bool conn_head(struct lg *g, struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
	const uint8_t *h = p;
	size_t hl = n, head_len = 0, old = c->head_len;
	int64_t clen = -1;
	int status = 0;
	enum parse_result pr;

	if (c->head) {
		size_t room = LG_HTTP_HEAD_MAX - c->head_len;
		size_t k = n < room ? n : room;

		memcpy(c->head + c->head_len, p, k);
		c->head_len += k;
		h = c->head;
		hl = c->head_len;
	}
	pr = lg_http_head_parse(h, hl, &status, &clen, &head_len);
	if (pr == PARSE_INVALID) {
		conn_fail(g, c, LG_E_HTTP_PROTOCOL, now, "bad HTTP response head");
		return false;
	}
	if (pr == PARSE_NEED_MORE) {
		/* NEED_MORE implies fewer than LG_HTTP_HEAD_MAX bytes so far
		 * (longer is INVALID), so n fits. */
		if (!c->head) {
			c->head = malloc(LG_HTTP_HEAD_MAX);
			if (!c->head)
				abort();
			memcpy(c->head, p, n);
			c->head_len = n;
		}
		return true;
	}
	if (!conn_head_ok(g, c, status, clen, now))
		return false;
	/* Body bytes that came with the head: those past it in this read. */
	p += head_len - old;
	n -= head_len - old;
	free(c->head);
	c->head = NULL;
	c->head_len = 0;
	return n == 0 || conn_body(g, c, p, n, now);
}

/* EOF on c while reading the response. */
static void conn_on_eof(struct lg *g, struct conn *c, uint64_t now)
{
	if (c->st == CS_BODY && c->want == UINT64_MAX) {
		conn_done(g, c, now);    /* no Content-Length: EOF ends the body */
		return;
	}
	conn_fail(g, c, LG_E_SHORT_READ, now, "EOF after %llu of %llu body bytes%s",
		  (unsigned long long)c->body, (unsigned long long)c->want,
		  c->st == CS_HEAD ? " (in the head)" : "");
}

/* Read response bytes for c (a few reads per event, for fairness). */
static void conn_read_http(struct lg *g, struct conn *c, uint64_t now)
{
	int i;

	for (i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = recv(c->fd, g->rbuf, LG_RBUF_SIZE, 0);
		bool alive;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0) {
			conn_fail(g, c, LG_E_SHORT_READ, now, "recv: %s after %llu body bytes",
				  strerror(errno), (unsigned long long)c->body);
			return;
		}
		if (n == 0) {
			conn_on_eof(g, c, now);
			return;
		}
		c->t_last = now;
		if (c->st == CS_HEAD && c->t_first == 0) {
			c->t_first = now;
			samples_add(&g->r.ttfb, now - c->t_start);
		}
		if (c->st == CS_HEAD)
			alive = conn_head(g, c, g->rbuf, (size_t)n, now);
		else
			alive = conn_body(g, c, g->rbuf, (size_t)n, now);
		if (!alive || n < LG_RBUF_SIZE)
			return;
	}
}

/* A held idle stream became readable: the gateway closed it or sent data. */
static void conn_read_idle(struct lg *g, struct conn *c, uint64_t now)
{
	uint8_t b[64];
	ssize_t n = recv(c->fd, b, sizeof(b), 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	g->r.idle_held--;
	conn_fail(g, c, LG_E_CLOSED_IDLE, now, "held stream: %s",
		  n == 0 ? "EOF" : n < 0 ? strerror(errno) : "unexpected data");
}

void conn_on_event(struct lg *g, struct conn *c, uint32_t ev, uint64_t now)
{
	if (c->st == CS_TCP) {
		conn_on_tcp(g, c, now);
		return;
	}
	if ((ev & EPOLLOUT) && c->out_off < c->out_len) {
		if (conn_send(g, c, NULL, 0) < 0) {
			conn_fail(g, c, c->st >= CS_HEAD ? LG_E_SHORT_READ : LG_E_SOCKS_PROTOCOL,
				  now, "send: %s", strerror(errno));
			return;
		}
	}
	if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	if (c->st == CS_IDLE)
		conn_read_idle(g, c, now);
	else if (c->st >= CS_HEAD)
		conn_read_http(g, c, now);
	else
		conn_read_socks(g, c, now);
}

