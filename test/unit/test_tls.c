/* TLS links (net/tls.h) driven for real: a tls_link on worker 0 of a
 * one-worker runtime connects over loopback TCP to a BoringSSL server that
 * this test runs on its own thread, with a self-signed certificate made
 * here. What it checks: several MB each way arrive whole and in order
 * (client pieces of 1 byte to 40 KB; server records of varied sizes, so
 * they straddle the client's 64 KiB receives); sealed records that find
 * no free send chunk wait in the link's spill buffer, are counted by
 * tls_link_send_queued() and reach the peer in order without waiting for
 * another write (also when the chunks are held by another connection, and
 * through a flushed close); a peer that answers the handshake with
 * garbage gives on_open an error and then on_closed; a peer that hangs up
 * mid-handshake gives one on_closed.
 * Every wait is bounded. Exits 77 without io_uring.
 *
 * Not for: the channel's link handshake on top (test_chanpool.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "net/runtime.h"
#include "net/tls.h"
#include "pool/mag.h"
#include "net/worker.h"
#include "test/unit/rt_fixture.h"

#define UP_LEN ((size_t)16 << 20)   /* client -> server: room for the spill case */
#define DOWN_LEN ((size_t)6 << 20)  /* server -> client */
#define PIECE_MAX 40960             /* largest client piece */
#define WAIT_MS 30000               /* bound of every wait for the other side */

/* The two byte streams, pseudo-random and known to both ends. */
static uint8_t *up, *down;

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void fill_stream(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = xorshift(&seed);

		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* The next piece size: mostly small or mid-sized, now and then up to max. */
static size_t next_size(uint64_t *s, size_t max)
{
	static const size_t bounds[] = { 1, 16, 600, 5000, 16384, 16385, 40960 };
	size_t b = bounds[xorshift(s) % (sizeof(bounds) / sizeof(bounds[0]))];

	b = b < max ? b : max;
	return 1 + (size_t)(xorshift(s) % b);
}

/* --- the server (one thread, a non-blocking socket, bounded polls) -------- */

enum server_mode {
	SERVER_ROUNDTRIP, /* read and check `up`, write `down` at the same time */
	SERVER_READ_GATED, /* read and check `up` only once `gate` opens */
	SERVER_GARBAGE,   /* answer the ClientHello with bytes that are not TLS */
	SERVER_HANGUP,    /* read the ClientHello, then hang up */
};

static struct {
	SSL_CTX *ctx;
	uint8_t *cert_der;
	int cert_len;
	int lfd;
	uint16_t port;
	pthread_t th;
	bool running;
	enum server_mode mode;
	_Atomic bool gate, stop;
	_Atomic size_t up_got;     /* bytes of `up` received, all checked */
	_Atomic long up_bad;       /* offset of the first wrong byte, or -1 */
	_Atomic size_t down_sent;
	_Atomic bool peer_closed;  /* close_notify or EOF seen */
	char err[256];             /* what went wrong on the server (under err_lock) */
	pthread_mutex_t err_lock;
} S = { .err_lock = PTHREAD_MUTEX_INITIALIZER };

static void server_fail(const char *what)
{
	pthread_mutex_lock(&S.err_lock);
	if (!S.err[0])
		snprintf(S.err, sizeof(S.err), "%s", what);
	pthread_mutex_unlock(&S.err_lock);
}

/* A P-256 key and a self-signed certificate for it, in S.ctx. */
static void server_ctx_new(void)
{
	EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	EVP_PKEY *pkey = EVP_PKEY_new();
	X509 *x = X509_new();
	X509_NAME *name;
	uint8_t *p;

	assert_non_null(ec);
	assert_non_null(pkey);
	assert_non_null(x);
	assert_int_equal(EC_KEY_generate_key(ec), 1);
	assert_int_equal(EVP_PKEY_assign_EC_KEY(pkey, ec), 1); /* pkey owns ec now */
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 4242), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, pkey), 1);
	name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)"www.tlstest.net",
						    -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
	S.cert_len = i2d_X509(x, NULL);
	assert_true(S.cert_len > 0);
	S.cert_der = malloc((size_t)S.cert_len);
	assert_non_null(S.cert_der);
	p = S.cert_der;
	assert_int_equal(i2d_X509(x, &p), S.cert_len);
	S.ctx = SSL_CTX_new(TLS_method());
	assert_non_null(S.ctx);
	assert_int_equal(SSL_CTX_use_certificate(S.ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(S.ctx, pkey), 1);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

/* Read what SSL has, checking it against `up`. Return false when the
 * connection ended (close_notify, EOF) or failed. */
static bool server_read_up(SSL *s)
{
	static uint8_t buf[65536];

	for (;;) {
		int r = SSL_read(s, buf, sizeof(buf));
		size_t got = atomic_load(&S.up_got);

		if (r <= 0) {
			int e = SSL_get_error(s, r);

			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return true;
			if (e != SSL_ERROR_ZERO_RETURN)
				server_fail("server: SSL_read failed (a lost or reordered record?)");
			atomic_store(&S.peer_closed, true);
			return false;
		}
		if (got + (size_t)r > UP_LEN) {
			server_fail("server: more bytes than the client's stream holds");
			return false;
		}
		if (atomic_load(&S.up_bad) < 0 && memcmp(buf, up + got, (size_t)r) != 0) {
			for (int i = 0; i < r; i++)
				if (buf[i] != up[got + (size_t)i]) {
					atomic_store(&S.up_bad, (long)(got + (size_t)i));
					break;
				}
		}
		atomic_store(&S.up_got, got + (size_t)r);
	}
}

/* Write the next records of `down`; their sizes vary from 1 byte to 40 KB
 * (SSL cuts a write into records of at most 16 KiB). Return false on a
 * failure. *pending keeps the size of a write SSL asked to retry: BoringSSL
 * wants the same arguments again. */
static bool server_write_down(SSL *s, uint64_t *rnd, size_t *pending)
{
	for (int i = 0; i < 64; i++) {
		size_t sent = atomic_load(&S.down_sent);
		size_t n;
		int r;

		if (sent == DOWN_LEN)
			return true;
		if (!*pending) {
			n = next_size(rnd, PIECE_MAX);
			*pending = n < DOWN_LEN - sent ? n : DOWN_LEN - sent;
		}
		r = SSL_write(s, down + sent, (int)*pending);
		if (r <= 0) {
			int e = SSL_get_error(s, r);

			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
				return true;
			server_fail("server: SSL_write failed");
			return false;
		}
		*pending = 0;
		atomic_store(&S.down_sent, sent + (size_t)r);
	}
	return true;
}

static int server_accept(void)
{
	uint64_t deadline = clock_mono_ms() + WAIT_MS;

	while (!atomic_load(&S.stop) && clock_mono_ms() < deadline) {
		struct pollfd p = { S.lfd, POLLIN, 0 };
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(S.lfd, NULL, NULL);
		if (fd >= 0)
			return fd;
	}
	server_fail("server: no connection came");
	return -1;
}

/* Garbage for a ClientHello: then wait (bounded) for the client to hang up. */
static void server_garbage(int fd)
{
	static const char junk[] = "HTTP/1.1 400 Bad Request\r\nthis is not TLS at all\r\n\r\n";
	uint8_t b[4096];

	if (write(fd, junk, sizeof(junk) - 1) != (ssize_t)(sizeof(junk) - 1))
		server_fail("server: write of the garbage failed");
	for (int i = 0; i < WAIT_MS / 50 && !atomic_load(&S.stop); i++) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (poll(&p, 1, 50) > 0) {
			ssize_t n = read(fd, b, sizeof(b));

			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				atomic_store(&S.peer_closed, true);
				return;
			}
		}
	}
}

/* Wait (bounded) for the ClientHello's first bytes, then close. */
static void server_hangup(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	uint8_t b[4096];

	if (poll(&p, 1, WAIT_MS) <= 0 || read(fd, b, sizeof(b)) <= 0)
		server_fail("server: no ClientHello");
}

static void server_tls(int fd)
{
	SSL *s = SSL_new(S.ctx);
	uint64_t deadline = clock_mono_ms() + 2 * WAIT_MS;
	uint64_t rnd = 0x5eed0d0a;
	size_t pending = 0;
	bool handshaken = false, reading = true;

	if (!s || !SSL_set_fd(s, fd)) {
		server_fail("server: SSL_new");
		SSL_free(s);
		return;
	}
	SSL_set_accept_state(s);
	while (!atomic_load(&S.stop) && reading) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (clock_mono_ms() > deadline) {
			server_fail("server: timed out");
			break;
		}
		if (!handshaken) {
			int r = SSL_do_handshake(s);

			if (r == 1) {
				handshaken = true;
				continue;
			}
			r = SSL_get_error(s, r);
			if (r != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE) {
				server_fail("server: handshake failed");
				break;
			}
			p.events = r == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
			poll(&p, 1, 20);
			continue;
		}
		if (S.mode == SERVER_ROUNDTRIP) {
			if (!server_write_down(s, &rnd, &pending))
				break;
			if (pending)
				p.events |= POLLOUT;
		}
		if (S.mode == SERVER_ROUNDTRIP || atomic_load(&S.gate))
			reading = server_read_up(s);
		else
			p.events = 0; /* not reading yet: the client's bytes pile up */
		if (reading)
			poll(&p, 1, 20);
	}
	SSL_free(s);
}

static void *server_main(void *arg)
{
	int fd = server_accept();

	(void)arg;
	if (fd < 0)
		return NULL;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
		server_fail("server: O_NONBLOCK");
	else if (S.mode == SERVER_GARBAGE)
		server_garbage(fd);
	else if (S.mode == SERVER_HANGUP)
		server_hangup(fd);
	else
		server_tls(fd);
	close(fd);
	return NULL;
}

static void server_start(enum server_mode mode)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	S.mode = mode;
	atomic_store(&S.gate, false);
	atomic_store(&S.stop, false);
	atomic_store(&S.up_got, 0);
	atomic_store(&S.up_bad, -1);
	atomic_store(&S.down_sent, 0);
	atomic_store(&S.peer_closed, false);
	S.err[0] = '\0';
	S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(S.lfd >= 0);
	rt_fixture_loopback(&sin, 0);
	assert_int_equal(bind(S.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(S.lfd, 4), 0);
	assert_int_equal(getsockname(S.lfd, (struct sockaddr *)&sin, &sl), 0);
	S.port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&S.th, NULL, server_main, NULL), 0);
	S.running = true;
}

/* Join the server thread (it stops by itself, or at the stop flag). */
static void server_stop(void)
{
	if (!S.running)
		return;
	atomic_store(&S.stop, true);
	pthread_join(S.th, NULL);
	close(S.lfd);
	S.running = false;
}

static void assert_server_ok(void)
{
	char err[256];

	pthread_mutex_lock(&S.err_lock);
	snprintf(err, sizeof(err), "%s", S.err);
	pthread_mutex_unlock(&S.err_lock);
	if (err[0])
		fail_msg("%s", err);
	assert_int_equal(atomic_load(&S.up_bad), -1);
}

/* --- the client: a tls_link on worker 0 ------------------------------------ */

static struct {
	struct worker *w;
	struct tls_link *l;        /* worker only; NULL once closed */
	_Atomic int open_calls, close_calls;
	_Atomic int open_err, close_err;
	_Atomic bool closed_after_open; /* on_closed came after on_open */
	_Atomic size_t down_got;
	_Atomic long down_bad;     /* offset of the first wrong byte, or -1 */
	size_t up_sent;            /* bytes of `up` that tls_link_send took (worker only) */
	uint64_t rnd;              /* piece sizes (worker only) */
	/* The spill case, filled by job_fill_until_spill. */
	_Atomic int last_send_err;
	size_t nobufs, queued_at_first_nobufs, queued_after, sent_after_nobufs;
	size_t spill_extra;        /* how much job_fill_until_spill sends after the first -ENOBUFS */
	_Atomic size_t queued;     /* tls_link_send_queued(), read by job_query */
} C;

static void on_open(struct tls_link *l, int err)
{
	(void)l;
	atomic_store(&C.open_err, err);
	atomic_fetch_add(&C.open_calls, 1);
}

static void on_data(struct tls_link *l, const uint8_t *data, size_t len)
{
	size_t got = atomic_load(&C.down_got);

	(void)l;
	if (got + len > DOWN_LEN) {
		rt_fixture_worker_fail(__FILE__, __LINE__, "on_data past the server's stream: %zu + %zu", got, len);
		return;
	}
	if (atomic_load(&C.down_bad) < 0 && memcmp(data, down + got, len) != 0) {
		for (size_t i = 0; i < len; i++)
			if (data[i] != down[got + i]) {
				atomic_store(&C.down_bad, (long)(got + i));
				break;
			}
	}
	atomic_store(&C.down_got, got + len);
}

static void on_closed(struct tls_link *l, int err)
{
	(void)l;
	C.l = NULL;
	atomic_store(&C.closed_after_open, atomic_load(&C.open_calls) == 1);
	atomic_store(&C.close_err, err);
	atomic_fetch_add(&C.close_calls, 1);
}

static const struct tls_link_ops client_ops = {
	.on_open = on_open,
	.on_data = on_data,
	.on_closed = on_closed,
};

/* Run fn on worker 0 and wait (bounded) until it has run. */
static struct {
	void (*fn)(void);
	_Atomic bool done;
} job;

static void job_msg(struct worker *w, void *arg)
{
	(void)w;
	(void)arg;
	job.fn();
	atomic_store_explicit(&job.done, true, memory_order_release); /* pairs with on_worker's acquire */
}

static void on_worker(void (*fn)(void))
{
	job.fn = fn;
	atomic_store(&job.done, false);
	assert_int_equal(worker_post(C.w, job_msg, NULL), 0);
	for (int i = 0; i < WAIT_MS / 5; i++) {
		if (atomic_load_explicit(&job.done, memory_order_acquire))
			return;
		rt_fixture_sleep_ms(5);
	}
	fail_msg("a job on the worker did not run within %d ms", WAIT_MS);
}

static void job_connect(void)
{
	struct sockaddr_in sin;
	int err = 0;

	rt_fixture_loopback(&sin, S.port);
	C.l = tls_link_connect(C.w, (struct sockaddr *)&sin, sizeof(sin), &client_ops, NULL, &err);
	WORKER_CHECK(C.l != NULL);
	WORKER_CHECK_EQ(err, 0);
}

static void job_close_flush(void)
{
	if (C.l)
		tls_link_close(C.l, 0, true);
}

static void job_query(void)
{
	atomic_store(&C.queued, C.l ? tls_link_send_queued(C.l) : 0);
}

/* Send the next pieces of `up`, about 256 KB in all (round trip case). */
static void job_send_some(void)
{
	size_t budget = 256 * 1024;

	while (C.l && budget > 0 && C.up_sent < UP_LEN) {
		size_t n = next_size(&C.rnd, PIECE_MAX);
		int r;

		n = n < UP_LEN - C.up_sent ? n : UP_LEN - C.up_sent;
		r = tls_link_send(C.l, up + C.up_sent, n);
		WORKER_CHECK_EQ(r, 0);
		if (r < 0)
			return;
		C.up_sent += n;
		budget = n < budget ? budget - n : 0;
	}
}

/* Wait (bounded) until cond() holds. */
static bool wait_for(bool (*cond)(void))
{
	for (int i = 0; i < WAIT_MS / 5; i++) {
		if (cond())
			return true;
		rt_fixture_sleep_ms(5);
	}
	return cond();
}

static bool link_opened(void) { return atomic_load(&C.open_calls) > 0; }
/* on_closed comes once our bytes are in the kernel, not read: the server
 * must be let finish before it is stopped. */
static bool server_saw_close(void) { return atomic_load(&S.peer_closed); }
static bool link_closed(void) { return atomic_load(&C.close_calls) > 0; }
static bool down_complete(void) { return atomic_load(&C.down_got) == DOWN_LEN; }
static size_t up_target;
static bool up_reached(void) { return atomic_load(&S.up_got) >= up_target; }

static struct runtime *start(size_t chunk_pool_bytes)
{
	struct runtime_config cfg;
	uint16_t unused;
	struct runtime *rt;

	runtime_config_defaults(&cfg);
	cfg.nworkers = 1;
	cfg.max_conns = 64;
	cfg.coordinator_tick_ms = 50;
	cfg.chunk_pool_bytes = chunk_pool_bytes;
	rt = rt_fixture_runtime_start(&cfg, NULL, &unused);
	memset(&C, 0, sizeof(C));
	atomic_store(&C.down_bad, -1);
	C.rnd = 0xc0ffee;
	C.w = runtime_worker(rt, 0);
	return rt;
}

static void connect_and_open(void)
{
	on_worker(job_connect);
	assert_false(rt_fixture_worker_failed());
	assert_true(wait_for(link_opened));
	assert_int_equal(atomic_load(&C.open_err), 0);
}

static int teardown(void **state)
{
	int rc = rt_fixture_teardown(state); /* the runtime first: it closes the link */

	server_stop();
	return rc;
}

/* --- the cases ------------------------------------------------------------- */

static const uint8_t *peer_der;
static size_t peer_der_len;
static char describe[96];
static bool has_cert;

static void job_peek(void)
{
	has_cert = tls_link_peer_cert(C.l, &peer_der, &peer_der_len);
	snprintf(describe, sizeof(describe), "%s", tls_link_describe(C.l));
}

static void test_tls_carries_megabytes_each_way_whole_and_in_order(void **state)
{
	(void)state;
	server_start(SERVER_ROUNDTRIP);
	start(0);
	connect_and_open();
	on_worker(job_peek);
	assert_true(has_cert);
	assert_int_equal(peer_der_len, (size_t)S.cert_len);
	assert_memory_equal(peer_der, S.cert_der, peer_der_len);
	assert_non_null(strstr(describe, "TLSv1.3"));
	/* Pieces of 1 byte to 40 KB, 256 KB per job, while the server's
	 * records come in: both directions at once. */
	for (int i = 0; i < 1000 && C.up_sent < UP_LEN / 4; i++)
		on_worker(job_send_some);
	up_target = C.up_sent;
	assert_true(wait_for(up_reached));
	assert_true(wait_for(down_complete));
	assert_server_ok();
	assert_int_equal(atomic_load(&S.up_got), C.up_sent);
	assert_int_equal(atomic_load(&C.down_bad), -1);
	assert_int_equal(atomic_load(&C.down_got), DOWN_LEN);
	printf("round trip: %zu bytes up, %zu bytes down\n", C.up_sent, (size_t)atomic_load(&C.down_got));
	/* A flushed close: the server sees close_notify, on_closed once. */
	on_worker(job_close_flush);
	assert_true(wait_for(link_closed));
	assert_int_equal(atomic_load(&C.close_err), 0);
	assert_true(wait_for(server_saw_close));
	server_stop();
	assert_server_ok();
	assert_int_equal(atomic_load(&C.open_calls), 1);
	assert_int_equal(atomic_load(&C.close_calls), 1);
}

/* Send until tls_link_send says -ENOBUFS (the record went to the spill
 * buffer), then C.spill_extra bytes more. Inside one job no send is submitted, so the
 * connection's queue cannot shrink: tls_link_send_queued() must grow by at
 * least each piece's length, spilled or not. */
static void job_fill_until_spill(void)
{
	size_t extra = 0;

	while (C.l && extra < C.spill_extra) {
		size_t n = next_size(&C.rnd, PIECE_MAX), before = tls_link_send_queued(C.l), after;
		int r;

		if (C.up_sent + n > UP_LEN) {
			rt_fixture_worker_fail(__FILE__, __LINE__, "no -ENOBUFS after %zu bytes", C.up_sent);
			return;
		}
		r = tls_link_send(C.l, up + C.up_sent, n);
		atomic_store(&C.last_send_err, r);
		if (r != 0 && r != -ENOBUFS) {
			rt_fixture_worker_fail(__FILE__, __LINE__, "tls_link_send: %d", r);
			return;
		}
		C.up_sent += n;
		after = tls_link_send_queued(C.l);
		if (after < before + n) {
			rt_fixture_worker_fail(__FILE__, __LINE__, "queued %zu -> %zu after a %zu-byte send (r=%d)",
					       before, after, n, r);
			return;
		}
		if (C.nobufs) { /* a piece after the first -ENOBUFS */
			extra += n;
			C.sent_after_nobufs = extra;
		}
		if (r == -ENOBUFS && C.nobufs++ == 0)
			C.queued_at_first_nobufs = after;
	}
	C.queued_after = C.l ? tls_link_send_queued(C.l) : 0;
}

static void job_send_one_piece(void)
{
	size_t n = 1000;
	int r;

	if (!C.l)
		return;
	r = tls_link_send(C.l, up + C.up_sent, n);
	atomic_store(&C.last_send_err, r);
	if (r == 0 || r == -ENOBUFS)
		C.up_sent += n;
}

static bool queue_empty(void)
{
	on_worker(job_query);
	return atomic_load(&C.queued) == 0;
}

/* Wait until the server's count stops growing for 300 ms (bounded). */
static size_t wait_up_settles(void)
{
	size_t last = atomic_load(&S.up_got);

	for (int i = 0, still = 0; i < WAIT_MS / 50 && still < 6; i++) {
		size_t now;

		rt_fixture_sleep_ms(50);
		now = atomic_load(&S.up_got);
		still = now == last ? still + 1 : 0;
		last = now;
	}
	return last;
}

static void test_tls_spills_records_when_no_send_chunk_is_free_and_loses_none(void **state)
{
	struct buf_pool_stats ps;
	struct worker_stats st;
	struct runtime *rt;
	size_t settled;

	(void)state;
	server_start(SERVER_READ_GATED);
	rt = start(1); /* raised to the floor: 4 magazines of 16 KiB chunks */
	connect_and_open();
	/* More spill than the whole pool holds (4.2 MB with the default 64
	 * objects per magazine): it can only go out in pieces. */
	C.spill_extra = 6u << 20;
	on_worker(job_fill_until_spill);
	assert_false(rt_fixture_worker_failed());
	assert_true(C.nobufs >= 1);
	assert_true(C.sent_after_nobufs >= C.spill_extra);
	buf_pool_stats(runtime_chunk_pool(rt), &ps);
	assert_true(C.sent_after_nobufs > ps.max_objs * 16384);
	/* The pool was dry: what went in after the first -ENOBUFS is spill,
	 * and the count includes it. */
	assert_true(C.queued_after >= C.queued_at_first_nobufs + C.sent_after_nobufs);
	worker_stats_read(C.w, &st);
	assert_true(st.send_nobufs >= 1);
	printf("spill: %zu bytes taken, queued %zu at the first -ENOBUFS (of %zu calls), %zu after %zu more\n",
	       C.up_sent, C.queued_at_first_nobufs, C.nobufs, C.queued_after, C.sent_after_nobufs);
	/* The server reads now. The spill must go out by itself (when the
	 * queue drains), not wait for our next write: the peer may be waiting
	 * for exactly those records before it says anything. */
	atomic_store(&S.gate, true);
	settled = wait_up_settles();
	printf("spill: the server got %zu of %zu with no further send\n", settled, C.up_sent);
	assert_int_equal(settled, C.up_sent);
	assert_true(wait_for(queue_empty));
	assert_server_ok();
	/* And it works as before: more pieces, straight through. */
	on_worker(job_send_one_piece);
	assert_int_equal(atomic_load(&C.last_send_err), 0);
	on_worker(job_send_some);
	assert_false(rt_fixture_worker_failed());
	up_target = C.up_sent;
	assert_true(wait_for(up_reached));
	assert_server_ok();
	assert_int_equal(atomic_load(&S.up_got), C.up_sent);
	assert_int_equal(atomic_load(&C.close_calls), 0);
}

static void test_tls_garbage_instead_of_a_handshake_fails_open_then_closes(void **state)
{
	(void)state;
	server_start(SERVER_GARBAGE);
	start(0);
	on_worker(job_connect);
	assert_false(rt_fixture_worker_failed());
	assert_true(wait_for(link_closed));
	assert_int_equal(atomic_load(&C.open_calls), 1);
	assert_int_equal(atomic_load(&C.open_err), -EPROTO);
	assert_true(atomic_load(&C.closed_after_open));
	assert_int_equal(atomic_load(&C.close_calls), 1);
	assert_int_equal(atomic_load(&C.close_err), -EPROTO);
	assert_true(wait_for(server_saw_close)); /* we hung up */
	server_stop();
	assert_server_ok();
}

/* The peer hangs up mid-handshake: on_closed, once, with no open link
 * (tls.h does not promise an on_open then: the channel copes with both). */
static void test_tls_peer_hangup_mid_handshake_closes_the_link_once(void **state)
{
	(void)state;
	server_start(SERVER_HANGUP);
	start(0);
	on_worker(job_connect);
	assert_false(rt_fixture_worker_failed());
	assert_true(wait_for(link_closed));
	rt_fixture_sleep_ms(50); /* nothing more may come */
	assert_int_equal(atomic_load(&C.close_calls), 1);
	if (atomic_load(&C.open_calls))
		assert_true(atomic_load(&C.open_err) < 0);
	server_stop();
	assert_server_ok();
}

static void job_fill_then_close_flush(void)
{
	job_fill_until_spill();
	if (C.l)
		tls_link_close(C.l, 0, true);
}

/* A flushed close while records wait in the spill: they and the
 * close_notify behind them still reach the peer, in order. */
static void test_tls_flushed_close_sends_the_spill_and_close_notify_first(void **state)
{
	(void)state;
	server_start(SERVER_READ_GATED);
	start(1);
	connect_and_open();
	C.spill_extra = 512 * 1024;
	on_worker(job_fill_then_close_flush);
	assert_false(rt_fixture_worker_failed());
	assert_true(C.nobufs >= 1);
	atomic_store(&S.gate, true);
	assert_true(wait_for(link_closed));
	assert_int_equal(atomic_load(&C.close_err), 0);
	assert_true(wait_for(server_saw_close));
	server_stop();
	assert_server_ok(); /* a stream cut short fails SSL_read there */
	assert_int_equal(atomic_load(&S.up_got), C.up_sent);
}

/* --- a plain connection that holds the chunk pool ------------------------- */

static struct {
	struct conn *c;
	_Atomic int connected;   /* 1 ok, -errno failed */
	size_t queued;           /* bytes it queued (worker, read after the job) */
	int lfd;
} H;

static void hog_connected(struct conn *c, int res)
{
	(void)c;
	atomic_store(&H.connected, res == 0 ? 1 : res);
}

static void hog_closed(struct conn *c, int err)
{
	(void)c;
	(void)err;
	H.c = NULL;
}

static const struct conn_ops hog_ops = { .on_connected = hog_connected, .on_closed = hog_closed };

static void job_hog_connect(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int err = 0;

	WORKER_CHECK(getsockname(H.lfd, (struct sockaddr *)&sin, &sl) == 0);
	H.c = conn_connect(C.w, (struct sockaddr *)&sin, sizeof(sin), &hog_ops, NULL, &err);
	WORKER_CHECK(H.c != NULL);
}

/* Take every free chunk with the hog's queue, then have the link send: its
 * own queue is empty, so no on_drained will come for it. */
static void job_hog_then_send(void)
{
	static const uint8_t piece[16384];
	size_t n = 3000;
	int r;

	while (H.c && conn_send(H.c, piece, sizeof(piece)) == 0)
		H.queued += sizeof(piece);
	if (!C.l)
		return;
	WORKER_CHECK_EQ(tls_link_send_queued(C.l), 0);
	r = tls_link_send(C.l, up + C.up_sent, n);
	atomic_store(&C.last_send_err, r);
	if (r == 0 || r == -ENOBUFS)
		C.up_sent += n;
	C.queued_after = tls_link_send_queued(C.l);
}

static bool hog_connected_cond(void) { return atomic_load(&H.connected) != 0; }

/* The pool is dry because of another connection: the link's spilled
 * record goes out once that one's chunks come back, by a retry of its own. */
static void test_tls_spill_goes_out_when_another_connection_frees_the_chunks(void **state)
{
	static uint8_t buf[65536];
	struct sockaddr_in sin;
	uint64_t drained = 0, deadline;
	int fd;

	(void)state;
	server_start(SERVER_READ_GATED);
	atomic_store(&S.gate, true); /* the TLS peer reads all along */
	start(1);
	connect_and_open();
	memset(&H, 0, sizeof(H));
	H.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(H.lfd >= 0);
	rt_fixture_loopback(&sin, 0);
	assert_int_equal(bind(H.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(H.lfd, 1), 0);
	on_worker(job_hog_connect);
	assert_true(wait_for(hog_connected_cond));
	assert_int_equal(atomic_load(&H.connected), 1);
	fd = accept(H.lfd, NULL, NULL);
	assert_true(fd >= 0);
	on_worker(job_hog_then_send);
	assert_false(rt_fixture_worker_failed());
	assert_int_equal(atomic_load(&C.last_send_err), -ENOBUFS);
	assert_true(C.queued_after >= 3000); /* the spilled record, counted */
	/* The hog's peer reads everything: its chunks come back. */
	deadline = clock_mono_ms() + WAIT_MS;
	while (drained < H.queued && clock_mono_ms() < deadline) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		drained += (uint64_t)n;
	}
	assert_int_equal(drained, H.queued);
	up_target = C.up_sent;
	assert_true(wait_for(up_reached));
	assert_server_ok();
	assert_int_equal(atomic_load(&S.up_got), C.up_sent);
	close(fd);
	close(H.lfd);
}

/* The server's key and certificate, once for every case (asserts work here). */
static int group_setup(void **state)
{
	(void)state;
	server_ctx_new();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tls_carries_megabytes_each_way_whole_and_in_order, rt_fixture_setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_spills_records_when_no_send_chunk_is_free_and_loses_none, rt_fixture_setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_garbage_instead_of_a_handshake_fails_open_then_closes, rt_fixture_setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_peer_hangup_mid_handshake_closes_the_link_once, rt_fixture_setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_flushed_close_sends_the_spill_and_close_notify_first, rt_fixture_setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_spill_goes_out_when_another_connection_frees_the_chunks, rt_fixture_setup, teardown),
	};
	int rc;

	rt_fixture_require_uring();
	up = malloc(UP_LEN);
	down = malloc(DOWN_LEN);
	if (!up || !down)
		return 1;
	fill_stream(up, UP_LEN, 0x0123456789abcdefull);
	fill_stream(down, DOWN_LEN, 0xfedcba9876543210ull);
	rc = cmocka_run_group_tests(tests, group_setup, NULL);
	SSL_CTX_free(S.ctx);
	free(S.cert_der);
	free(up);
	free(down);
	return rc;
}
