/* Prometheus exposition and the /metrics + /health endpoint (see metrics.h). */
#include "app/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "pool/mag.h"

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

/* Append text with backslash and newline escaped (HELP lines). */
static void buf_escaped_help(struct metrics_buf *b, const char *text)
{
	while (*text) {
		size_t run = strcspn(text, "\\\n");

		buf_printf(b, "%.*s", (int)run, text);
		text += run;
		if (*text) {
			buf_printf(b, *text == '\\' ? "\\\\" : "\\n");
			text++;
		}
	}
}

void metrics_family(struct metrics_buf *b, const char *name, enum metrics_type type, const char *help)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	buf_printf(b, "# HELP %s ", name);
	buf_escaped_help(b, help);
	buf_printf(b, "\n# TYPE %s %s\n", name, types[type]);
	b->last_family = name;
}

size_t metrics_escape_label(char *out, size_t cap, const char *value)
{
	size_t need = 0, w = 0;
	bool full = false;

	for (const char *p = value; *p; p++) {
		char esc = *p == '\\' ? '\\' : *p == '"' ? '"' : *p == '\n' ? 'n' : 0;
		size_t len = esc ? 2 : 1;

		/* Stop at the first character that does not fit: never half an
		 * escape, never a later shorter character. */
		if (!full && w + len < cap) {
			if (esc) {
				out[w] = '\\';
				out[w + 1] = esc;
			} else {
				out[w] = *p;
			}
			w += len;
		} else {
			full = true;
		}
		need += len;
	}
	if (cap > 0)
		out[w] = '\0';
	return need;
}

void metrics_format_double(char *out, size_t cap, double value)
{
	if (isnan(value)) {
		snprintf(out, cap, "NaN");
		return;
	}
	if (isinf(value)) {
		snprintf(out, cap, value > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Whole numbers in plain digits ("60", not "6e+01"); otherwise the
	 * shortest %g form that reads back exactly: "0.01", not
	 * "0.010000000000000000208". */
	if (value == floor(value) && fabs(value) < 1e15) {
		snprintf(out, cap, "%.0f", value);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, cap, "%.*g", prec, value);
		if (strtod(out, NULL) == value)
			return;
	}
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
	char v[METRICS_DOUBLE_MAX];

	metrics_format_double(v, sizeof(v), value);
	sample_name(b, name, labels);
	buf_printf(b, "%s\n", v);
}

void metrics_sample_u64(struct metrics_buf *b, const char *name, const char *labels, uint64_t value)
{
	sample_name(b, name, labels);
	buf_printf(b, "%llu\n", (unsigned long long)value);
}

void metrics_cumulate(const uint64_t *in, uint64_t *out, size_t n)
{
	uint64_t run = 0;

	for (size_t i = 0; i < n; i++) {
		run += in[i];
		out[i] = run;
	}
}

void metrics_histogram(struct metrics_buf *b, const char *name, const char *labels, const double *bounds,
		       const uint64_t *cumulative, size_t nbounds, uint64_t count, double sum)
{
	const char *sep = labels && labels[0] ? "," : "";
	char v[METRICS_DOUBLE_MAX];
	uint64_t prev = 0;

	if (!labels)
		labels = "";
	for (size_t i = 0; i < nbounds; i++) {
		uint64_t c = cumulative[i] > prev ? cumulative[i] : prev;

		metrics_format_double(v, sizeof(v), bounds[i]);
		buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep, v, (unsigned long long)c);
		prev = c;
	}
	if (count < prev)
		count = prev;
	buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)count);
	metrics_format_double(v, sizeof(v), sum);
	if (labels[0]) {
		buf_printf(b, "%s_sum{%s} %s\n", name, labels, v);
		buf_printf(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)count);
	} else {
		buf_printf(b, "%s_sum %s\n", name, v);
		buf_printf(b, "%s_count %llu\n", name, (unsigned long long)count);
	}
}

/* One per-shard family of struct buf_pool_stats, by field offset. */
struct pool_family {
	const char *name;
	enum metrics_type type;
	const char *help;
	size_t off;
};

static const struct pool_family pool_shard_families[] = {
	{ "onionring_pool_magazine_hits_total", METRICS_COUNTER, "Gets served from the shard's loaded magazine.",
	  offsetof(struct buf_pool_stats, hits) },
	{ "onionring_pool_magazine_misses_total", METRICS_COUNTER, "Gets that found the loaded magazine empty.",
	  offsetof(struct buf_pool_stats, misses) },
	{ "onionring_pool_depot_exchanges_total", METRICS_COUNTER, "Whole magazines traded with the depot.",
	  offsetof(struct buf_pool_stats, exchanges) },
	{ "onionring_pool_get_failures_total", METRICS_COUNTER, "Gets that found the pool at its cap.",
	  offsetof(struct buf_pool_stats, fails) },
	{ "onionring_pool_puts_total", METRICS_COUNTER, "Buffers given back.", offsetof(struct buf_pool_stats, puts) },
	{ "onionring_pool_cached_objects", METRICS_GAUGE, "Buffers cached in the shard's magazines.",
	  offsetof(struct buf_pool_stats, held) },
};

/* Write 'pool="<escaped name>"' into out. */
static void pool_label(char *out, size_t cap, const char *name)
{
	char esc[96];

	metrics_escape_label(esc, sizeof(esc), name);
	snprintf(out, cap, "pool=\"%s\"", esc);
}

static void pool_shard_family(struct metrics_buf *b, const struct pool_family *f, const struct metrics_pool *pools,
			      size_t npools)
{
	char pl[112], label[160];
	struct buf_pool_stats st;

	metrics_family(b, f->name, f->type, f->help);
	for (size_t k = 0; k < npools; k++) {
		unsigned n = pools[k].pool->nshards;

		pool_label(pl, sizeof(pl), pools[k].name);
		for (unsigned i = 0; i <= n; i++) { /* i == n: the foreign cache */
			buf_pool_shard_stats(pools[k].pool, i, &st);
			if (i < n)
				snprintf(label, sizeof(label), "%s,shard=\"%u\"", pl, i);
			else
				snprintf(label, sizeof(label), "%s,shard=\"foreign\"", pl);
			metrics_sample_u64(b, f->name, label, *(const uint64_t *)((const char *)&st + f->off));
		}
	}
}

void metrics_buf_pools(struct metrics_buf *b, const struct metrics_pool *pools, size_t npools)
{
	const char *dm = "onionring_pool_depot_magazines";
	char pl[112], label[160];
	struct buf_pool_stats st;

	if (npools == 0)
		return;
	for (size_t j = 0; j < sizeof(pool_shard_families) / sizeof(pool_shard_families[0]); j++)
		pool_shard_family(b, &pool_shard_families[j], pools, npools);
	metrics_family(b, dm, METRICS_GAUGE, "Full magazines in the depot: warm, or cold (pages returned to the OS).");
	for (size_t k = 0; k < npools; k++) {
		buf_pool_stats(pools[k].pool, &st);
		pool_label(pl, sizeof(pl), pools[k].name);
		snprintf(label, sizeof(label), "%s,state=\"full\"", pl);
		metrics_sample_u64(b, dm, label, st.depot_full);
		snprintf(label, sizeof(label), "%s,state=\"cold\"", pl);
		metrics_sample_u64(b, dm, label, st.depot_cold);
	}
	metrics_family(b, "onionring_pool_carved_objects", METRICS_GAUGE, "Buffers carved from the pool's reservation.");
	for (size_t k = 0; k < npools; k++) {
		buf_pool_stats(pools[k].pool, &st);
		pool_label(pl, sizeof(pl), pools[k].name);
		metrics_sample_u64(b, "onionring_pool_carved_objects", pl, st.frontier);
	}
	metrics_family(b, "onionring_pool_max_objects", METRICS_GAUGE, "Buffers the pool may hold at most.");
	for (size_t k = 0; k < npools; k++) {
		buf_pool_stats(pools[k].pool, &st);
		pool_label(pl, sizeof(pl), pools[k].name);
		metrics_sample_u64(b, "onionring_pool_max_objects", pl, st.max_objs);
	}
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
