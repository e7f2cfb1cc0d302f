/* Shared fixtures of the unit tests that run io_uring or a net/ runtime
 * (rt_fixture.h). Test code only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "test/unit/rt_fixture.h"

static struct runtime *case_rt;
static void (*case_on_join)(struct runtime *rt);

/* The first failed worker check of the case; written by any thread under
 * the lock, read by the main thread after the workers are joined. */
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_text[512];

bool rt_fixture_uring_usable(void)
{
	char why[256];

	if (runtime_probe(why, sizeof(why)) < 0) {
		fprintf(stderr, "skipped: %s\n", why);
		return false;
	}
	return true;
}

void rt_fixture_require_uring(void)
{
	if (!rt_fixture_uring_usable())
		exit(77);
}

void rt_fixture_ring_init(struct io_uring *ring, unsigned entries, unsigned direct_slots)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
	assert_int_equal(io_uring_queue_init_params(entries, ring, &p), 0);
	assert_int_equal(io_uring_register_files_sparse(ring, direct_slots), 0);
}

void rt_fixture_loopback(struct sockaddr_in *sin, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons(port);
}

int rt_fixture_connect(uint16_t port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	rt_fixture_loopback(&sin, port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

void rt_fixture_read_exact(int fd, void *buf, size_t len, unsigned timeout_ms)
{
	uint8_t *p = buf;
	size_t got = 0;
	uint64_t deadline = clock_mono_ms() + timeout_ms;

	while (got < len) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		assert_true(clock_mono_ms() < deadline);
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(fd, p + got, len - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

void rt_fixture_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

struct runtime *rt_fixture_runtime_start(const struct runtime_config *cfg, conn_accept_fn accept, uint16_t *port)
{
	struct sockaddr_in sin;
	struct runtime *rt;

	rt_fixture_require_uring();
	assert_null(case_rt); /* one runtime at a time per case */
	rt = runtime_new(cfg);
	assert_non_null(rt);
	if (accept) {
		rt_fixture_loopback(&sin, 0);
		if (runtime_add_listener(rt, (struct sockaddr *)&sin, sizeof(sin), accept, NULL, port) != 0 ||
		    *port == 0) {
			runtime_free(rt);
			fail_msg("runtime_add_listener on 127.0.0.1 failed");
		}
	}
	if (runtime_start(rt) != 0) {
		runtime_free(rt);
		fail_msg("runtime_start failed");
	}
	case_rt = rt;
	return rt;
}

void rt_fixture_runtime_adopt(struct runtime *rt)
{
	assert_null(case_rt);
	case_rt = rt;
}

struct runtime *rt_fixture_runtime(void)
{
	return case_rt;
}

void rt_fixture_on_join(void (*fn)(struct runtime *rt))
{
	case_on_join = fn;
}

void rt_fixture_runtime_stop(void)
{
	struct runtime *rt = case_rt;

	if (!rt)
		return;
	case_rt = NULL;
	/* Both are no-ops for a runtime the case already stopped and joined. */
	runtime_stop(rt);
	runtime_join(rt);
	if (case_on_join)
		case_on_join(rt);
	runtime_free(rt);
}

int rt_fixture_setup(void **state)
{
	(void)state;
	pthread_mutex_lock(&fail_lock);
	fail_text[0] = '\0';
	pthread_mutex_unlock(&fail_lock);
	case_on_join = NULL;
	return 0;
}

int rt_fixture_setup_runtime(void **state, const struct runtime_config *cfg)
{
	struct runtime *rt;

	rt_fixture_setup(state);
	*state = NULL;
	if (!rt_fixture_uring_usable())
		return 0;
	rt = runtime_new(cfg);
	if (!rt) {
		fprintf(stderr, "runtime_new failed\n");
		return -1;
	}
	if (runtime_start(rt) != 0) {
		fprintf(stderr, "runtime_start failed\n");
		runtime_free(rt);
		return -1;
	}
	case_rt = rt;
	*state = rt;
	return 0;
}

struct runtime *rt_fixture_state(void **state)
{
	if (!*state)
		skip();
	return *state;
}

int rt_fixture_teardown(void **state)
{
	int rc = 0;

	(void)state;
	rt_fixture_runtime_stop();
	case_on_join = NULL;
	/* Every worker is joined: its record is complete. */
	pthread_mutex_lock(&fail_lock);
	if (fail_text[0]) {
		fprintf(stderr, "on a worker thread: %s\n", fail_text);
		fail_text[0] = '\0';
		rc = -1;
	}
	pthread_mutex_unlock(&fail_lock);
	return rc;
}

void rt_fixture_worker_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	pthread_mutex_lock(&fail_lock);
	if (!fail_text[0]) {
		snprintf(fail_text, sizeof(fail_text), "%s:%d: check failed: ", file, line);
		n = strlen(fail_text);
		va_start(ap, fmt);
		vsnprintf(fail_text + n, sizeof(fail_text) - n, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&fail_lock);
}

bool rt_fixture_worker_failed(void)
{
	bool failed;

	pthread_mutex_lock(&fail_lock);
	failed = fail_text[0] != '\0';
	pthread_mutex_unlock(&fail_lock);
	return failed;
}

void rt_fixture_text_reset(struct rt_fixture_text *text)
{
	pthread_mutex_lock(&text->lock);
	text->len = 0;
	text->buf[0] = '\0';
	pthread_mutex_unlock(&text->lock);
}

void rt_fixture_text_append(struct rt_fixture_text *text, const char *data, size_t len)
{
	pthread_mutex_lock(&text->lock);
	if (text->len + len < sizeof(text->buf)) {
		memcpy(text->buf + text->len, data, len);
		text->len += len;
		text->buf[text->len] = '\0';
	}
	pthread_mutex_unlock(&text->lock);
}

size_t rt_fixture_text_copy(struct rt_fixture_text *text, char *out, size_t cap)
{
	size_t n;

	pthread_mutex_lock(&text->lock);
	n = text->len < cap ? text->len : cap - 1;
	memcpy(out, text->buf, n);
	out[n] = '\0';
	n = text->len;
	pthread_mutex_unlock(&text->lock);
	return n;
}

size_t rt_fixture_text_count(struct rt_fixture_text *text, const char *needle)
{
	size_t n = 0;

	pthread_mutex_lock(&text->lock);
	for (const char *p = text->buf; (p = strstr(p, needle)); p++)
		n++;
	pthread_mutex_unlock(&text->lock);
	return n;
}

bool rt_fixture_text_wait_len(struct rt_fixture_text *text, size_t len, unsigned timeout_ms)
{
	uint64_t deadline = clock_mono_ms() + timeout_ms;

	for (;;) {
		bool done;

		pthread_mutex_lock(&text->lock);
		done = text->len >= len;
		pthread_mutex_unlock(&text->lock);
		if (done)
			return true;
		if (clock_mono_ms() > deadline)
			return false;
		rt_fixture_sleep_ms(10);
	}
}
