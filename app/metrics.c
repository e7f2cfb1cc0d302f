/* Prometheus exposition and the /metrics + /health endpoint (see metrics.h). */
#include "app/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#define REQ_MAX 4096

static void buf_printf(struct metrics_buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void buf_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap ? b->cap * 2 : 8192;
		while (ncap - b->len <= (size_t)n)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

void metrics_family(struct metrics_buf *b, const char *name, enum metrics_type type, const char *help)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, types[type]);
	b->last_family = name;
}

static void sample_name(struct metrics_buf *b, const char *name, const char *labels)
{
	if (labels && labels[0])
		buf_printf(b, "%s{%s} ", name, labels);
	else
		buf_printf(b, "%s ", name);
}

void metrics_sample(struct metrics_buf *b, const char *name, const char *labels, double value)
{
	sample_name(b, name, labels);
	if (isnan(value))
		buf_printf(b, "NaN\n");
	else if (isinf(value))
		buf_printf(b, value > 0 ? "+Inf\n" : "-Inf\n");
	else
		buf_printf(b, "%.17g\n", value);
}

void metrics_sample_u64(struct metrics_buf *b, const char *name, const char *labels, uint64_t value)
{
	sample_name(b, name, labels);
	buf_printf(b, "%llu\n", (unsigned long long)value);
}

void metrics_histogram(struct metrics_buf *b, const char *name, const double *bounds, const uint64_t *counts,
		       size_t nbounds, uint64_t count, double sum)
{
	for (size_t i = 0; i < nbounds; i++)
		buf_printf(b, "%s_bucket{le=\"%.17g\"} %llu\n", name, bounds[i], (unsigned long long)counts[i]);
	buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)count);
	buf_printf(b, "%s_sum %.17g\n", name, sum);
	buf_printf(b, "%s_count %llu\n", name, (unsigned long long)count);
}

void metrics_buf_free(struct metrics_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void metrics_process(struct metrics_buf *b)
{
	char stat[1024];
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long long utime = 0, stime = 0, starttime = 0, vsize = 0;
	long long rss = 0;
	FILE *f;
	DIR *d;
	int nfds = 0;

	f = fopen("/proc/self/stat", "r");
	if (f) {
		size_t n = fread(stat, 1, sizeof(stat) - 1, f);
		char *p;

		fclose(f);
		stat[n] = '\0';
		/* Fields after the command name, which may hold spaces: skip to
		 * the last ')'. See proc(5): utime is field 14, stime 15,
		 * starttime 22, vsize 23, rss 24. */
		p = strrchr(stat, ')');
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
				&utime, &stime, &starttime, &vsize, &rss) != 5)
			utime = stime = 0;
	}
	d = opendir("/proc/self/fd");
	if (d) {
		while (readdir(d))
			nfds++;
		closedir(d);
		nfds -= 3; /* ".", ".." and the directory's own fd */
	}
	metrics_family(b, "process_cpu_seconds_total", METRICS_COUNTER, "User and system CPU time of the process in seconds.");
	metrics_sample(b, "process_cpu_seconds_total", NULL, (double)(utime + stime) / (double)ticks);
	metrics_family(b, "process_resident_memory_bytes", METRICS_GAUGE, "Resident memory of the process in bytes.");
	metrics_sample_u64(b, "process_resident_memory_bytes", NULL, (uint64_t)rss * (uint64_t)page);
	metrics_family(b, "process_virtual_memory_bytes", METRICS_GAUGE, "Virtual memory of the process in bytes.");
	metrics_sample_u64(b, "process_virtual_memory_bytes", NULL, vsize);
	metrics_family(b, "process_open_fds", METRICS_GAUGE, "Open file descriptors of the process.");
	metrics_sample_u64(b, "process_open_fds", NULL, (uint64_t)(nfds > 0 ? nfds : 0));
}

/* --- the HTTP side ------------------------------------------------------- */

#define SCRAPE_TIMEOUT_NS (10ull * 1000000000ull)

struct scrape {
	const struct metrics_endpoint *ep;
	struct conn *conn;
	struct timer timeout; /* a client that never finishes its request */
	size_t len;
	bool answered;
	char req[REQ_MAX];
};

static void respond(struct conn *c, int code, const char *reason, const char *ctype, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			 code, reason, ctype, len);

	conn_send(c, head, (size_t)n);
	if (len)
		conn_send(c, body, len);
	conn_close(c, 0, true);
}

static void serve(struct conn *c, struct scrape *s)
{
	char method[8], path[256];
	const char *text = "text/plain; version=0.0.4; charset=utf-8";

	s->answered = true;
	if (sscanf(s->req, "%7s %255s", method, path) != 2) {
		respond(c, 400, "Bad Request", "text/plain", "bad request\n", 12);
		return;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		respond(c, 405, "Method Not Allowed", "text/plain", "only GET\n", 9);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		struct metrics_buf b = { 0 };

		if (s->ep->collect)
			s->ep->collect(&b, s->ep->arg);
		metrics_process(&b);
		if (b.failed)
			respond(c, 500, "Internal Server Error", "text/plain", "out of memory\n", 14);
		else
			respond(c, 200, "OK", text, b.p, strcmp(method, "HEAD") == 0 ? 0 : b.len);
		metrics_buf_free(&b);
	} else if (strcmp(path, "/health") == 0) {
		char reason[200] = "ok";
		bool ok = s->ep->health ? s->ep->health(reason, sizeof(reason), s->ep->arg) : true;
		char body[256];
		int n = snprintf(body, sizeof(body), "%s\n", ok ? "ok" : reason);

		respond(c, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", "text/plain", body, (size_t)n);
	} else {
		respond(c, 404, "Not Found", "text/plain", "try /metrics or /health\n", 24);
	}
}

static void scrape_recv(struct conn *c, const uint8_t *data, size_t len)
{
	struct scrape *s = conn_user(c);

	if (s->answered)
		return;
	if (len > sizeof(s->req) - 1 - s->len) {
		respond(c, 431, "Request Header Fields Too Large", "text/plain", "request too large\n", 18);
		return;
	}
	memcpy(s->req + s->len, data, len);
	s->len += len;
	s->req[s->len] = '\0';
	/* Answer once the request head is complete. */
	if (strstr(s->req, "\r\n\r\n") || strstr(s->req, "\n\n"))
		serve(c, s);
}

static void scrape_closed(struct conn *c, int err)
{
	struct scrape *s = conn_user(c);

	(void)err;
	timer_cancel(worker_timers(conn_worker(c)), &s->timeout);
	free(s);
}

static void scrape_timed_out(struct timer *t, void *arg)
{
	struct scrape *s = arg;

	(void)t;
	if (!s->answered)
		conn_close(s->conn, -ETIMEDOUT, false);
}

static const struct conn_ops scrape_ops = {
	.on_recv = scrape_recv,
	.on_closed = scrape_closed,
};

void metrics_accept(struct worker *w, struct conn *c, void *arg)
{
	struct scrape *s = calloc(1, sizeof(*s));

	if (!s) {
		conn_close(c, -ENOMEM, false);
		return;
	}
	s->ep = arg;
	s->conn = c;
	timer_init(&s->timeout, scrape_timed_out, s);
	if (timer_arm(worker_timers(w), &s->timeout, worker_now_ns(w) + SCRAPE_TIMEOUT_NS) < 0) {
		free(s);
		conn_close(c, -ENOMEM, false);
		return;
	}
	conn_set_ops(c, &scrape_ops, s);
}
