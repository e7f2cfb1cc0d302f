/* TLS links through a BIO of our own (see tls.h). */
#include "net/tls.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pool.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/compiler.h"
#include "core/log.h"
#include "net/timer.h"

/* How long a spill waits before it tries again when nothing of ours is in
 * the send queue (so no on_drained will come): the chunks are held by
 * other connections of the shard, whose sends complete within a loop
 * iteration or two. */
#define SPILL_RETRY_NS (2 * 1000 * 1000ull)
/* The spill is queued in pieces of a send chunk's size (worker_int.h's
 * OUT_CHUNK_SIZE, private to the worker). */
#define SPILL_PIECE 16384

struct tls_link {
	struct conn *conn;
	SSL *ssl;
	/* The receive being handled (on_conn_recv): the BIO reads from it in
	 * place, so no bytes wait in a BIO between calls. */
	const uint8_t *in;
	size_t in_len;
	/* Sealed records that conn_send could not queue (no out chunk): they
	 * go out as soon as chunks come back (spill_retry_arm), and always
	 * ahead of any later write, so the TLS stream stays whole. */
	uint8_t *spill;
	size_t spill_len, spill_cap;
	/* Retries the spill when no on_drained is due (spill_retry_arm). */
	struct timer spill_timer;
	/* tls_link_close(flush) found spilled bytes: the connection closes
	 * (flushed, with close_err) once they are queued. */
	bool close_after_spill;
	int close_err;
	const struct tls_link_ops *ops;
	void *user;
	bool open;
	bool closing;
	char desc[96];
};

static SSL_CTX *tls_ctx;
static BIO_METHOD *link_bio_method;
static pthread_once_t tls_ctx_once = PTHREAD_ONCE_INIT;

static int spill_add(struct tls_link *l, const uint8_t *p, size_t n)
{
	if (l->spill_len + n > l->spill_cap) {
		size_t cap = MAX(l->spill_cap * 2, l->spill_len + n);
		uint8_t *q = realloc(l->spill, cap);

		if (!q)
			return -ENOMEM;
		l->spill = q;
		l->spill_cap = cap;
	}
	memcpy(l->spill + l->spill_len, p, n);
	l->spill_len += n;
	return 0;
}

/* Queue the spilled bytes, a piece at a time: the spill can outgrow the
 * whole chunk pool (every send that finds it non-empty appends), so one
 * all-or-nothing conn_send of it might never fit. Cutting it is safe:
 * nothing else is queued until it is empty (link_bio_write appends behind
 * it), so the stream stays in order. 0 once none are left; else the
 * error, with what was not queued moved to the front. */
static int spill_flush(struct tls_link *l)
{
	size_t off = 0;
	int r = 0;

	while (off < l->spill_len) {
		size_t n = MIN(l->spill_len - off, (size_t)SPILL_PIECE);

		r = conn_send(l->conn, l->spill + off, n);
		if (r < 0)
			break;
		off += n;
	}
	if (off < l->spill_len) {
		memmove(l->spill, l->spill + off, l->spill_len - off);
		l->spill_len -= off;
		return r;
	}
	l->spill_len = 0;
	if (l->spill_cap > 65536) {
		free(l->spill);
		l->spill = NULL;
		l->spill_cap = 0;
	}
	return 0;
}

/* The link's BIO. A memory BIO pair cost a copy each way plus, on every
 * record read, a memmove of the bytes behind it (BoringSSL reads a
 * record's exact length); this one reads the socket's receive buffer in
 * place and writes sealed records straight into the connection's queue. */
static int link_bio_read(BIO *b, char *out, int len)
{
	struct tls_link *l = BIO_get_data(b);
	size_t n = MIN((size_t)len, l->in_len);

	BIO_clear_retry_flags(b);
	if (n == 0) {
		BIO_set_retry_read(b); /* "want more", not EOF */
		return -1;
	}
	memcpy(out, l->in, n);
	l->in += n;
	l->in_len -= n;
	return (int)n;
}

static int link_bio_write(BIO *b, const char *data, int len)
{
	struct tls_link *l = BIO_get_data(b);
	const uint8_t *p = (const uint8_t *)data;
	int r;

	BIO_clear_retry_flags(b);
	/* All or nothing, and in order: behind any spilled bytes. */
	r = spill_flush(l);
	if (r == 0)
		r = conn_send(l->conn, p, (size_t)len);
	if (r == -ENOBUFS)
		r = spill_add(l, p, (size_t)len);
	return r < 0 ? -1 : len;
}

static long link_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* queued is as flushed as it gets */
}

static enum ssl_verify_result_t accept_any_cert(SSL *ssl, uint8_t *alert)
{
	(void)ssl;
	(void)alert;
	/* tor-spec 4.2: the relay is authenticated by its CERTS cell, which
	 * binds the identity keys to this TLS certificate; the chain itself
	 * proves nothing. */
	return ssl_verify_ok;
}

static void tls_ctx_init(void)
{
	tls_ctx = SSL_CTX_new(TLS_method());
	if (!tls_ctx)
		return;
	SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
	SSL_CTX_set_custom_verify(tls_ctx, SSL_VERIFY_PEER, accept_any_cert);
	SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
	link_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "onionring link");
	if (!link_bio_method || !BIO_meth_set_read(link_bio_method, link_bio_read) ||
	    !BIO_meth_set_write(link_bio_method, link_bio_write) ||
	    !BIO_meth_set_ctrl(link_bio_method, link_bio_ctrl)) {
		SSL_CTX_free(tls_ctx);
		tls_ctx = NULL;
	}
}

static const char *ssl_error_text(void)
{
	static _Thread_local char buf[160];
	unsigned long e = ERR_get_error();

	if (!e)
		return "no detail";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* Make sure a spill is tried again without waiting for the next write or
 * receive: the peer may be waiting for exactly those records. While our
 * own bytes are queued, on_drained comes when they are written (their
 * chunks are then free); with none queued, the chunks are other
 * connections', and a short timer retries. */
static void spill_retry_arm(struct tls_link *l)
{
	struct timer_heap *h = worker_timers(conn_worker(l->conn));

	if (!l->spill_len || conn_send_queued(l->conn) > 0 || timer_is_armed(&l->spill_timer))
		return;
	if (timer_arm(h, &l->spill_timer, worker_now_ns(conn_worker(l->conn)) + SPILL_RETRY_NS) < 0)
		log_warn("TLS to %s: cannot arm the spill retry timer", conn_peer_name(l->conn));
}

/* What SSL wrote is queued already, unless some of it spilled: try that
 * again. -ENOBUFS while bytes still wait (they are kept, not lost, and
 * go out on their own: spill_retry_arm). */
static int flush_wbio(struct tls_link *l)
{
	if (l->spill_len && spill_flush(l) < 0) {
		spill_retry_arm(l);
		return -ENOBUFS;
	}
	if (l->close_after_spill) {
		l->close_after_spill = false;
		conn_close(l->conn, l->close_err, true);
	}
	return 0;
}

/* The connection's queue drained or the retry timer fired: push the spill. */
static void spill_retry(struct tls_link *l)
{
	if (l->spill_len && !conn_is_closing(l->conn))
		flush_wbio(l);
}

static void on_spill_timer(struct timer *t, void *arg)
{
	(void)t;
	spill_retry(arg);
}

static void on_conn_drained(struct conn *c)
{
	spill_retry(conn_user(c));
}

static void link_fail(struct tls_link *l, int err)
{
	if (l->closing)
		return;
	l->closing = true;
	conn_close(l->conn, err, false);
}

static void drive_handshake(struct tls_link *l)
{
	int r = SSL_do_handshake(l->ssl);

	flush_wbio(l);
	if (r == 1) {
		l->open = true;
		snprintf(l->desc, sizeof(l->desc), "%s %s", SSL_get_version(l->ssl),
			 SSL_CIPHER_get_name(SSL_get_current_cipher(l->ssl)));
		if (l->ops->on_open)
			l->ops->on_open(l, 0);
		return;
	}
	r = SSL_get_error(l->ssl, r);
	if (r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE)
		return;
	log_info("TLS handshake with %s failed: %s", conn_peer_name(l->conn), ssl_error_text());
	if (l->ops->on_open)
		l->ops->on_open(l, -EPROTO);
	link_fail(l, -EPROTO);
}

static void read_plaintext(struct tls_link *l)
{
	uint8_t buf[16384];

	while (!l->closing) {
		int r = SSL_read(l->ssl, buf, sizeof(buf));
		if (r > 0) {
			l->ops->on_data(l, buf, (size_t)r);
			continue;
		}
		r = SSL_get_error(l->ssl, r);
		if (r == SSL_ERROR_WANT_READ)
			break;
		if (r == SSL_ERROR_ZERO_RETURN) {
			link_fail(l, 0);
		} else {
			log_info("TLS read from %s failed: %s", conn_peer_name(l->conn), ssl_error_text());
			link_fail(l, -EPROTO);
		}
		break;
	}
	flush_wbio(l);
}

static void on_conn_connected(struct conn *c, int res)
{
	struct tls_link *l = conn_user(c);

	if (res < 0) {
		log_info("connect to %s failed: %s", conn_peer_name(c), strerror(-res));
		if (l->ops->on_open)
			l->ops->on_open(l, res);
		l->closing = true;
		return;
	}
	if (l->ops->on_tcp_connected)
		l->ops->on_tcp_connected(l);
	drive_handshake(l);
}

static void on_conn_recv(struct conn *c, const uint8_t *data, size_t len)
{
	struct tls_link *l = conn_user(c);

	if (l->closing)
		return;
	/* The BIO reads these bytes in place; SSL keeps a partial record in
	 * its own buffer, so nothing of them is needed after this call. */
	l->in = data;
	l->in_len = len;
	if (!l->open)
		drive_handshake(l);
	if (l->open)
		read_plaintext(l);
	l->in = NULL;
	l->in_len = 0;
}

static void on_conn_closed(struct conn *c, int err)
{
	struct tls_link *l = conn_user(c);

	timer_cancel(worker_timers(conn_worker(c)), &l->spill_timer);
	if (l->ops->on_closed)
		l->ops->on_closed(l, err);
	SSL_free(l->ssl);
	free(l->spill);
	free(l);
}

static const struct conn_ops tls_conn_ops = {
	.on_connected = on_conn_connected,
	.on_recv = on_conn_recv,
	.on_drained = on_conn_drained,
	.on_closed = on_conn_closed,
};

struct tls_link *tls_link_connect(struct worker *w, const struct sockaddr *addr, socklen_t len,
				  const struct tls_link_ops *ops, void *user, int *err)
{
	struct tls_link *l;
	BIO *bio;

	pthread_once(&tls_ctx_once, tls_ctx_init);
	if (!tls_ctx) {
		*err = -ENOMEM;
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		*err = -ENOMEM;
		return NULL;
	}
	l->ops = ops;
	l->user = user;
	timer_init(&l->spill_timer, on_spill_timer, l);
	l->ssl = SSL_new(tls_ctx);
	bio = BIO_new(link_bio_method);
	if (!l->ssl || !bio) {
		BIO_free(bio);
		SSL_free(l->ssl);
		free(l);
		*err = -ENOMEM;
		return NULL;
	}
	BIO_set_data(bio, l);
	BIO_set_init(bio, 1);
	SSL_set_bio(l->ssl, bio, bio); /* one BIO both ways: one reference */
	SSL_set_connect_state(l->ssl);
	l->conn = conn_connect(w, addr, len, &tls_conn_ops, l, err);
	if (!l->conn) {
		SSL_free(l->ssl);
		free(l);
		return NULL;
	}
	return l;
}

int tls_link_send(struct tls_link *l, const void *data, size_t len)
{
	if (!l->open || l->closing)
		return -ENOTCONN;
	while (len > 0) {
		int chunk = len > 16384 ? 16384 : (int)len;
		int r = SSL_write(l->ssl, data, chunk);
		if (r <= 0) {
			log_info("TLS write to %s failed: %s", conn_peer_name(l->conn), ssl_error_text());
			link_fail(l, -EPROTO);
			return -EPROTO;
		}
		data = (const uint8_t *)data + r;
		len -= (size_t)r;
	}
	return flush_wbio(l);
}

size_t tls_link_send_queued(const struct tls_link *l) { return conn_send_queued(l->conn) + l->spill_len; }

void tls_link_close(struct tls_link *l, int err, bool flush)
{
	if (l->closing)
		return;
	l->closing = true;
	if (flush && l->open) {
		SSL_shutdown(l->ssl);
		if (flush_wbio(l) < 0) {
			/* Spilled records (and the close_notify behind them) are
			 * not in the queue yet: close once they are, or the peer
			 * gets a stream cut short. */
			l->close_after_spill = true;
			l->close_err = err;
			return;
		}
	}
	conn_close(l->conn, err, flush);
}

void *tls_link_user(const struct tls_link *l) { return l->user; }
void tls_link_set_user(struct tls_link *l, void *user) { l->user = user; }
struct worker *tls_link_worker(const struct tls_link *l) { return conn_worker(l->conn); }
const char *tls_link_peer_name(const struct tls_link *l) { return conn_peer_name(l->conn); }
const char *tls_link_describe(const struct tls_link *l) { return l->desc[0] ? l->desc : "handshaking"; }

bool tls_link_peer_cert(const struct tls_link *l, const uint8_t **der, size_t *len)
{
	const STACK_OF(CRYPTO_BUFFER) *chain = SSL_get0_peer_certificates(l->ssl);
	const CRYPTO_BUFFER *leaf;

	if (!chain || sk_CRYPTO_BUFFER_num(chain) == 0)
		return false;
	leaf = sk_CRYPTO_BUFFER_value(chain, 0);
	*der = CRYPTO_BUFFER_data(leaf);
	*len = CRYPTO_BUFFER_len(leaf);
	return true;
}

bool tls_link_export(const struct tls_link *l, uint8_t *out, size_t outlen, const char *label,
		     const uint8_t *ctx, size_t ctxlen)
{
	return SSL_export_keying_material(l->ssl, out, outlen, label, strlen(label), ctx, ctxlen, ctx != NULL) == 1;
}
