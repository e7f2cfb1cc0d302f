/* Tests for app/dirfetch_http.c against a scripted HTTP/1.0 server on
 * 127.0.0.1 (a thread of this test): deflate bodies are inflated, the
 * request is tor's directory GET, HTTP errors, corrupt bodies, refused
 * connections and timeouts are reported as statuses, and freeing the
 * fetcher cancels a hung fetch. Every wait is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "app/dirfetch_http.h"
#include "core/clock.h"

enum script { S_DEFLATE, S_404, S_CORRUPT, S_HANG };

struct server {
	int lfd;
	uint16_t port;
	enum script script;
	char request[4096];
	pthread_t th;
	_Atomic bool quit;
};

struct result {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int status;
	char body[8192];
	size_t len;
};

static const char payload[] = "dir-key-certificate-version 3\nfingerprint ABCDEF\n"
			      "a directory document that compresses: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";

static void *serve(void *arg)
{
	struct server *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	size_t got = 0;
	char out[8192];
	uLongf clen = sizeof(out) - 256;
	uint8_t comp[4096];

	if (fd < 0)
		return NULL;
	while (got < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n")) {
		ssize_t n = recv(fd, s->request + got, sizeof(s->request) - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (s->script == S_HANG) {
		for (int i = 0; i < 100 && !s->quit; i++) /* at most 10 s */
			usleep(100000);
		close(fd);
		return NULL;
	}
	if (s->script == S_404) {
		const char *r = "HTTP/1.0 404 Consensus not signed by sufficient number of requested authorities\r\n\r\n";
		(void)!write(fd, r, strlen(r));
		close(fd);
		return NULL;
	}
	compress2(comp, &clen, (const Bytef *)payload, sizeof(payload) - 1, 9);
	if (s->script == S_CORRUPT)
		clen /= 2;
	int h = snprintf(out, sizeof(out), "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: deflate\r\n\r\n");
	memcpy(out + h, comp, clen);
	(void)!write(fd, out, (size_t)h + clen);
	close(fd);
	return NULL;
}

static void server_start(struct server *s, enum script sc)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);

	memset(s, 0, sizeof(*s));
	s->script = sc;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &len), 0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	s->quit = true;
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->th, NULL);
	close(s->lfd);
}

static void on_done(void *arg, int status, const uint8_t *body, size_t len, const char *why)
{
	struct result *r = arg;

	(void)why;
	pthread_mutex_lock(&r->lock);
	r->status = status;
	if (body && len < sizeof(r->body)) {
		memcpy(r->body, body, len);
		r->len = len;
	}
	r->done = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Wait (at most 10 s) for the result. */
static void wait_result(struct result *r)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&r->lock);
	while (!r->done)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&r->lock);
	assert_true(r->done);
}

static void fetch(struct dirfetch_http *h, uint16_t port, const char *path, struct result *r)
{
	struct dir_fetcher f;
	struct dir_source src = {.ipv4 = 0x7f000001, .dir_port = port};

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	dirfetch_http_fetcher(h, &f);
	assert_true(f.needs_dirport);
	assert_int_equal(f.fetch(f.ctx, &src, path, on_done, r), 0);
}

static void test_dirfetch_http_inflates_a_deflate_body(void **state)
{
	struct dirfetch_http *h = dirfetch_http_new(2, 5000);
	struct server s;
	struct result r;

	(void)state;
	server_start(&s, S_DEFLATE);
	fetch(h, s.port, "/tor/keys/all", &r);
	wait_result(&r);
	server_stop(&s);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, sizeof(payload) - 1);
	assert_memory_equal(r.body, payload, r.len);
	assert_non_null(strstr(s.request, "GET /tor/keys/all HTTP/1.0\r\n"));
	assert_non_null(strstr(s.request, "Accept-Encoding: deflate"));
	dirfetch_http_free(h);
}

static void test_dirfetch_http_reports_http_errors_and_corrupt_bodies(void **state)
{
	struct dirfetch_http *h = dirfetch_http_new(1, 5000);
	struct server s;
	struct result r;

	(void)state;
	server_start(&s, S_404);
	fetch(h, s.port, "/tor/status-vote/current/consensus-microdesc", &r);
	wait_result(&r);
	server_stop(&s);
	assert_int_equal(r.status, 404);
	assert_int_equal(r.len, 0);
	server_start(&s, S_CORRUPT);
	fetch(h, s.port, "/tor/keys/all", &r);
	wait_result(&r);
	server_stop(&s);
	assert_int_equal(r.status, -EPROTO);
	dirfetch_http_free(h);
}

static void test_dirfetch_http_reports_refused_and_timed_out(void **state)
{
	struct dirfetch_http *h = dirfetch_http_new(1, 300);
	struct server s;
	struct result r;
	uint16_t dead;

	(void)state;
	server_start(&s, S_DEFLATE);
	dead = s.port;
	fetch(h, s.port, "/tor/keys/all", &r); /* let the server finish */
	wait_result(&r);
	server_stop(&s);
	fetch(h, dead, "/tor/keys/all", &r); /* nobody listens there now */
	wait_result(&r);
	assert_int_equal(r.status, -ECONNREFUSED);
	server_start(&s, S_HANG);
	uint64_t t0 = clock_mono_ms();
	fetch(h, s.port, "/tor/keys/all", &r);
	wait_result(&r);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_true(clock_mono_ms() - t0 < 3000);
	server_stop(&s);
	dirfetch_http_free(h);
}

static void test_dirfetch_http_free_cancels_a_hung_fetch(void **state)
{
	struct dirfetch_http *h = dirfetch_http_new(1, 60000);
	struct server s;
	struct result r, queued;
	struct dir_fetcher f;
	struct dir_source none = {.ipv4 = 0x7f000001, .dir_port = 0};
	uint64_t t0;

	(void)state;
	server_start(&s, S_HANG);
	fetch(h, s.port, "/tor/keys/all", &r);
	fetch(h, s.port, "/tor/keys/all", &queued); /* waits behind the first */
	dirfetch_http_fetcher(h, &f);
	assert_int_equal(f.fetch(f.ctx, &none, "/x", on_done, &r), -EAFNOSUPPORT);
	usleep(100000);
	t0 = clock_mono_ms();
	dirfetch_http_free(h);
	assert_true(clock_mono_ms() - t0 < 2000);
	assert_true(r.done && queued.done);
	assert_int_equal(r.status, -ECANCELED);
	assert_int_equal(queued.status, -ECANCELED);
	server_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirfetch_http_inflates_a_deflate_body),
		cmocka_unit_test(test_dirfetch_http_reports_http_errors_and_corrupt_bodies),
		cmocka_unit_test(test_dirfetch_http_reports_refused_and_timed_out),
		cmocka_unit_test(test_dirfetch_http_free_cancels_a_hung_fetch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
