/* Directory fetches over plain HTTP to a DirPort (see dirfetch_http.h).
 * Blocking sockets on our own threads, each wait bounded by poll() in
 * 200 ms slices so a stop request is seen quickly. Not for BEGIN_DIR. */
#include "app/dirfetch_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "proto/http.h"
#include "proto/inflate.h"

#define MAX_THREADS 16
#define SLICE_MS 200

struct http_job {
	uint32_t ipv4;
	uint16_t port;
	char *path;
	dir_fetch_done_fn done;
	void *arg;
	struct http_job *next;
};

struct dirfetch_http {
	pthread_mutex_t lock; /* guards head, tail, stop */
	pthread_cond_t cond;
	struct http_job *head, *tail;
	bool stop;
	_Atomic bool stopping; /* read without the lock inside a fetch */
	unsigned timeout_ms;
	pthread_t threads[MAX_THREADS];
	unsigned nthreads;
};

/* Wait for events on fd until deadline (mono ms). Return 1 ready, 0 on
 * stop, or -errno (-ETIMEDOUT). */
static int wait_fd(struct dirfetch_http *h, int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		uint64_t now = clock_mono_ms();
		int r;

		/* Acquire: pairs with the release store in dirfetch_http_free. */
		if (atomic_load_explicit(&h->stopping, memory_order_acquire))
			return -ECANCELED;
		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(deadline - now < SLICE_MS ? deadline - now : SLICE_MS));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			return 1;
	}
}

static int connect_to(struct dirfetch_http *h, const struct http_job *j, uint64_t deadline)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(j->port),
				 .sin_addr.s_addr = htonl(j->ipv4)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), r, err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		r = -errno;
		close(fd);
		return r;
	}
	r = wait_fd(h, fd, POLLOUT, deadline);
	if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
		return fd;
	close(fd);
	return r < 0 ? r : -(err ? err : ECONNREFUSED);
}

static int send_all(struct dirfetch_http *h, int fd, const char *p, size_t len, uint64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		int r = wait_fd(h, fd, POLLOUT, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Read until EOF into *buf. Return 0 or -errno. */
static int recv_all(struct dirfetch_http *h, int fd, struct inflate_buf *buf, uint64_t deadline)
{
	for (;;) {
		if (buf->cap - buf->len < 65536) {
			size_t ncap = buf->cap ? buf->cap * 2 : 131072;
			uint8_t *p = realloc(buf->data, ncap);
			if (!p)
				abort();
			buf->data = p;
			buf->cap = ncap;
		}
		ssize_t n = recv(fd, buf->data + buf->len, buf->cap - buf->len, 0);
		if (n == 0)
			return 0;
		if (n > 0) {
			buf->len += (size_t)n;
			if (buf->len > DIRFETCH_HTTP_MAX_BODY)
				return -EMSGSIZE;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		int r = wait_fd(h, fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

/* Turn the raw response into the status and the decoded body (*out). */
static int decode(const struct inflate_buf *raw, struct inflate_buf *out, const char **why)
{
	struct http_response resp;
	const uint8_t *body;
	size_t blen;

	if (http_response_parse(raw->data, raw->len, &resp, why) != PARSE_OK) {
		if (!*why)
			*why = "truncated HTTP header";
		return -EPROTO;
	}
	if (resp.status != 200)
		return resp.status;
	body = raw->data + resp.header_len;
	blen = raw->len - resp.header_len;
	if (resp.has_content_length && resp.content_length != blen) {
		*why = "body length differs from Content-Length";
		return -EPROTO;
	}
	if (!http_encoding_is_supported((enum http_encoding)resp.encoding)) {
		*why = http_encoding_name((enum http_encoding)resp.encoding);
		return -EPROTO;
	}
	if (resp.encoding == HTTP_ENC_IDENTITY) {
		out->data = malloc(blen + 1);
		if (!out->data)
			abort();
		memcpy(out->data, body, blen);
		out->len = out->cap = blen;
		return 200;
	}
	if (inflate_oneshot(resp.encoding == HTTP_ENC_GZIP ? INFLATE_GZIP : INFLATE_ZLIB, body, blen,
			    DIRFETCH_HTTP_MAX_BODY, out) < 0) {
		*why = "corrupt or oversized compressed body";
		return -EPROTO;
	}
	return 200;
}

static void run_job(struct dirfetch_http *h, struct http_job *j)
{
	uint64_t deadline = clock_mono_ms() + h->timeout_ms;
	struct inflate_buf raw = {0}, body = {0};
	char req[8192], host[32];
	const char *why = NULL;
	struct in_addr in = {.s_addr = htonl(j->ipv4)};
	size_t rlen;
	int fd, r;

	inet_ntop(AF_INET, &in, host, sizeof(host));
	rlen = http_request_build(req, sizeof(req), j->path, host);
	if (rlen == 0) {
		j->done(j->arg, -EINVAL, NULL, 0, "request path too long");
		return;
	}
	fd = connect_to(h, j, deadline);
	r = fd < 0 ? fd : send_all(h, fd, req, rlen, deadline);
	if (r == 0) /* HTTP/1.0: the server closes after the response */
		r = recv_all(h, fd, &raw, deadline);
	if (fd >= 0)
		close(fd);
	if (r == 0)
		r = decode(&raw, &body, &why);
	if (why)
		log_info("directory HTTP fetch %s:%u%s: %s", host, j->port, j->path, why);
	j->done(j->arg, r, r == 200 ? body.data : NULL, r == 200 ? body.len : 0, r == 200 ? NULL : why);
	inflate_buf_free(&raw);
	inflate_buf_free(&body);
}

static void job_free(struct http_job *j)
{
	free(j->path);
	free(j);
}

static void *worker_main(void *arg)
{
	struct dirfetch_http *h = arg;

	log_set_thread_name("dirhttp");
	for (;;) {
		struct http_job *j;

		pthread_mutex_lock(&h->lock);
		while (!h->head && !h->stop)
			pthread_cond_wait(&h->cond, &h->lock);
		if (h->stop) {
			pthread_mutex_unlock(&h->lock);
			return NULL;
		}
		j = h->head;
		h->head = j->next;
		if (!h->head)
			h->tail = NULL;
		pthread_mutex_unlock(&h->lock);
		run_job(h, j);
		job_free(j);
	}
}

/* dir_fetcher.fetch: queue the job. Coordinator thread. */
static int http_fetch(void *ctx, const struct dir_source *src, const char *path, dir_fetch_done_fn done,
		      void *done_arg)
{
	struct dirfetch_http *h = ctx;
	struct http_job *j;

	if (!src->dir_port)
		return -EAFNOSUPPORT;
	j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strdup(path)))
		abort();
	j->ipv4 = src->ipv4;
	j->port = src->dir_port;
	j->done = done;
	j->arg = done_arg;
	pthread_mutex_lock(&h->lock);
	if (h->stop) {
		pthread_mutex_unlock(&h->lock);
		job_free(j);
		return -ECANCELED;
	}
	if (h->tail)
		h->tail->next = j;
	else
		h->head = j;
	h->tail = j;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

struct dirfetch_http *dirfetch_http_new(unsigned nthreads, unsigned timeout_ms)
{
	struct dirfetch_http *h = calloc(1, sizeof(*h));

	if (!h)
		abort();
	if (nthreads == 0 || nthreads > MAX_THREADS)
		nthreads = 2;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->timeout_ms = timeout_ms ? timeout_ms : 30000;
	for (unsigned i = 0; i < nthreads; i++) {
		if (pthread_create(&h->threads[i], NULL, worker_main, h) != 0) {
			log_err("directory HTTP fetcher: cannot start a thread");
			dirfetch_http_free(h);
			return NULL;
		}
		h->nthreads++;
	}
	return h;
}

void dirfetch_http_free(struct dirfetch_http *h)
{
	struct http_job *j;

	if (!h)
		return;
	/* Release: pairs with the acquire load in wait_fd. */
	atomic_store_explicit(&h->stopping, true, memory_order_release);
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	j = h->head;
	h->head = h->tail = NULL;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	for (unsigned i = 0; i < h->nthreads; i++)
		pthread_join(h->threads[i], NULL);
	while (j) {
		struct http_job *next = j->next;
		j->done(j->arg, -ECANCELED, NULL, 0, "shutting down");
		job_free(j);
		j = next;
	}
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void dirfetch_http_fetcher(struct dirfetch_http *h, struct dir_fetcher *out)
{
	out->fetch = http_fetch;
	out->ctx = h;
	out->needs_dirport = true;
}
