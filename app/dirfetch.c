/* Directory fetches over BEGIN_DIR (see dirfetch.h). */
#include "app/dirfetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/circmgr.h"
#include "app/dirmgr.h"
#include "app/stream.h"
#include "core/log.h"
#include "net/runtime.h"
#include "net/worker.h"
#include "proto/http.h"
#include "proto/inflate.h"

struct dirfetch {
	struct worker *w;
	struct stream *st;
	dirfetch_done_fn done;
	void *arg;
	size_t max_len;
	struct timer timeout;
	char req[512];
	size_t req_len, req_sent;
	uint8_t *raw; /* response as received (head + compressed body) */
	size_t raw_len, raw_cap;
	bool finished;
	char what[160];
};

static void fetch_finish(struct dirfetch *f, int status, const char *why)
{
	struct http_response hr;
	struct inflate_buf out = { 0 };
	const char *pwhy = NULL;
	enum inflate_format fmt;
	int r;

	if (f->finished)
		return;
	f->finished = true;
	timer_cancel(worker_timers(f->w), &f->timeout);
	if (f->st) {
		stream_close(f->st);
		f->st = NULL;
	}
	if (status < 0) {
		log_info("directory fetch %s failed: %s", f->what, why);
		f->done(f->arg, status, NULL, 0, why);
		goto out;
	}
	if (http_response_parse(f->raw, f->raw_len, &hr, &pwhy) != PARSE_OK) {
		f->done(f->arg, -EBADMSG, NULL, 0, pwhy ? pwhy : "bad HTTP response");
		goto out;
	}
	if (hr.status != 200) {
		log_info("directory fetch %s: HTTP %u %s", f->what, hr.status, hr.reason);
		f->done(f->arg, hr.status, NULL, 0, "directory answered with an error status");
		goto out;
	}
	if (hr.has_content_length && hr.content_length != f->raw_len - hr.header_len) {
		f->done(f->arg, -EBADMSG, NULL, 0, "body shorter or longer than its Content-Length");
		goto out;
	}
	if (hr.encoding == HTTP_ENC_IDENTITY) {
		size_t n = f->raw_len - hr.header_len;
		uint8_t *body = malloc(n + 1);
		if (!body) {
			f->done(f->arg, -ENOMEM, NULL, 0, "out of memory");
			goto out;
		}
		memcpy(body, f->raw + hr.header_len, n);
		body[n] = '\0';
		f->done(f->arg, 200, body, n, NULL);
		goto out;
	}
	if (hr.encoding != HTTP_ENC_DEFLATE && hr.encoding != HTTP_ENC_GZIP) {
		f->done(f->arg, -EPROTO, NULL, 0, "unsupported Content-Encoding");
		goto out;
	}
	fmt = hr.encoding == HTTP_ENC_GZIP ? INFLATE_GZIP : INFLATE_ZLIB;
	r = inflate_oneshot(fmt, f->raw + hr.header_len, f->raw_len - hr.header_len, f->max_len, &out);
	if (r < 0) {
		inflate_buf_free(&out);
		f->done(f->arg, r, NULL, 0, r == -EMSGSIZE ? "document too large" : "corrupt compressed body");
		goto out;
	}
	f->done(f->arg, 200, out.data, out.len, NULL); /* the callee owns out.data */
out:
	free(f->raw);
	free(f);
}

static void send_request(struct dirfetch *f)
{
	while (f->st && f->req_sent < f->req_len) {
		size_t n = stream_write(f->st, (const uint8_t *)f->req + f->req_sent, f->req_len - f->req_sent);
		if (!n)
			break;
		f->req_sent += n;
	}
}

static void ev_connected(void *arg, const struct socks_addr *bound)
{
	(void)bound;
	send_request(arg);
}

static void ev_resolved(void *arg, const struct socks_addr *a, uint32_t ttl)
{
	(void)a;
	(void)ttl;
	(void)arg;
}

static void ev_data(void *arg, const uint8_t *data, size_t len)
{
	struct dirfetch *f = arg;

	/* Compressed documents are far smaller than max_len; cap the raw
	 * bytes at the same limit. */
	if (f->raw_len + len > f->max_len) {
		fetch_finish(f, -EMSGSIZE, "response too large");
		return;
	}
	if (f->raw_len + len > f->raw_cap) {
		size_t ncap = f->raw_cap ? f->raw_cap * 2 : 65536;
		uint8_t *n;
		while (ncap < f->raw_len + len)
			ncap *= 2;
		n = realloc(f->raw, ncap);
		if (!n) {
			fetch_finish(f, -ENOMEM, "out of memory");
			return;
		}
		f->raw = n;
		f->raw_cap = ncap;
	}
	memcpy(f->raw + f->raw_len, data, len);
	f->raw_len += len;
}

static void ev_writable(void *arg)
{
	send_request(arg);
}

int dirfetch_end_errno(enum socks5_reply code)
{
	switch (code) {
	case SOCKS5_SUCCEEDED: return -ENODATA; /* a clean end, but no answer */
	case SOCKS5_CONNECTION_REFUSED: return -ECONNREFUSED;
	case SOCKS5_HOST_UNREACHABLE: return -EHOSTUNREACH;
	case SOCKS5_NET_UNREACHABLE: return -ENETUNREACH;
	case SOCKS5_TTL_EXPIRED: return -ETIMEDOUT;
	case SOCKS5_NOT_ALLOWED: return -EACCES;
	default: return -ECONNABORTED; /* the channel or circuit failed: why says how */
	}
}

static void ev_end(void *arg, enum socks5_reply code, const char *why)
{
	struct dirfetch *f = arg;

	f->st = NULL; /* gone */
	/* The directory closes the stream after the body (HTTP/1.0): a clean
	 * end after bytes is success; anything else failed, with the stream
	 * layer's reason (the END reason or the channel's error), not one
	 * errno for all. */
	if (code == SOCKS5_SUCCEEDED && f->raw_len > 0)
		fetch_finish(f, 0, NULL);
	else if (code == SOCKS5_SUCCEEDED)
		fetch_finish(f, dirfetch_end_errno(code), "the directory closed the stream without an answer");
	else
		fetch_finish(f, dirfetch_end_errno(code), why ? why : "stream failed");
}

static const struct stream_events dirfetch_events = {
	.on_connected = ev_connected,
	.on_resolved = ev_resolved,
	.on_data = ev_data,
	.on_writable = ev_writable,
	.on_end = ev_end,
};

static void fetch_timed_out(struct timer *t, void *arg)
{
	(void)t;
	fetch_finish(arg, -ETIMEDOUT, "timed out");
}

static int fetch_start(struct worker *w, const struct relay_target *t, const char *path, size_t max_len,
		       uint64_t timeout_ns, bool anon, dirfetch_done_fn done, void *arg)
{
	struct dirfetch *f = calloc(1, sizeof(*f));
	const char *why = NULL;

	if (!f)
		return -ENOMEM;
	f->w = w;
	f->done = done;
	f->arg = arg;
	f->max_len = max_len;
	if (anon && log_safe_logging()) {
		/* An anonymous fetch is an onion-service descriptor: its blinded
		 * key names the user's destination (tor logs it through
		 * safe_str_client), so SafeLogging scrubs it. */
		const char *slash = strrchr(path, '/');
		int keep = slash ? (int)(slash - path + 1) : 0;

		snprintf(f->what, sizeof(f->what), "%.*s%s from %s", keep, path, LOG_SCRUBBED,
			 t->nickname[0] ? t->nickname : "relay");
	} else {
		snprintf(f->what, sizeof(f->what), "%s from %s", path, t->nickname[0] ? t->nickname : "relay");
	}
	/* dir-spec 6.2: over BEGIN_DIR the Host header carries no meaning. */
	f->req_len = http_request_build(f->req, sizeof(f->req), path, "127.0.0.1");
	if (!f->req_len) {
		free(f);
		return -ENAMETOOLONG;
	}
	f->st = anon ? stream_open_dir_anon(w, t, &dirfetch_events, f, &why)
		     : stream_open_dir(w, t, &dirfetch_events, f, &why);
	if (!f->st) {
		log_info("directory fetch %s: %s", f->what, why);
		free(f);
		return -EAGAIN;
	}
	timer_init(&f->timeout, fetch_timed_out, f);
	timer_arm(worker_timers(w), &f->timeout, worker_now_ns(w) + timeout_ns);
	return 0;
}

int dirfetch_start(struct worker *w, const struct relay_target *t, const char *path, size_t max_len,
		   uint64_t timeout_ns, dirfetch_done_fn done, void *arg)
{
	return fetch_start(w, t, path, max_len, timeout_ns, false, done, arg);
}

int dirfetch_start_anon(struct worker *w, const struct relay_target *t, const char *path, size_t max_len,
			uint64_t timeout_ns, dirfetch_done_fn done, void *arg)
{
	return fetch_start(w, t, path, max_len, timeout_ns, true, done, arg);
}

/* --- the dirmgr adapter ------------------------------------------------------ */

#define DIRFETCH_MAX_DOC (64u * 1024u * 1024u)
#define DIRFETCH_TIMEOUT_NS (60ull * 1000000000ull)

struct begindir_req {
	struct relay_target t;
	char path[1024];
	dir_fetch_done_fn done;
	void *done_arg;
};

static void begindir_done(void *arg, int status, uint8_t *body, size_t len, const char *why)
{
	struct begindir_req *r = arg;

	r->done(r->done_arg, status, body, len, why);
	free(body);
	free(r);
}

static void begindir_start(struct worker *w, void *arg)
{
	struct begindir_req *r = arg;
	int e = dirfetch_start(w, &r->t, r->path, DIRFETCH_MAX_DOC, DIRFETCH_TIMEOUT_NS, begindir_done, r);

	if (e < 0) {
		r->done(r->done_arg, e, NULL, 0, e == -EAGAIN ? "cannot open a directory stream on worker 0" : NULL);
		free(r);
	}
}

static int begindir_fetch(void *ctx, const struct dir_source *src, const char *path, dir_fetch_done_fn done,
			  void *done_arg)
{
	struct runtime *rt = ctx;
	struct begindir_req *r;
	struct sockaddr_in *in;
	int e;

	if (!src->or_port)
		return -EINVAL; /* no OR port known: BEGIN_DIR is impossible */
	if (strlen(path) >= sizeof(r->path))
		return -ENAMETOOLONG;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	in = (struct sockaddr_in *)&r->t.addr;
	in->sin_family = AF_INET;
	in->sin_port = htons(src->or_port);
	in->sin_addr.s_addr = htonl(src->ipv4);
	r->t.addr_len = sizeof(*in);
	memcpy(r->t.rsa_id, src->fingerprint, sizeof(r->t.rsa_id));
	snprintf(r->t.nickname, sizeof(r->t.nickname), "%s", src->nickname);
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->done = done;
	r->done_arg = done_arg;
	e = worker_post(runtime_worker(rt, 0), begindir_start, r);
	if (e < 0)
		free(r);
	return e;
}

void dirfetch_begindir_fetcher(struct runtime *rt, struct dir_fetcher *out)
{
	memset(out, 0, sizeof(*out));
	out->fetch = begindir_fetch;
	out->ctx = rt;
	out->needs_dirport = false;
}
