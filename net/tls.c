/* TLS links over memory BIOs (see tls.h). */
#include "net/tls.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pool.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

struct tls_link {
	struct conn *conn;
	SSL *ssl;
	BIO *rbio; /* bytes from the socket, owned by ssl */
	BIO *wbio; /* bytes for the socket, owned by ssl */
	const struct tls_link_ops *ops;
	void *user;
	bool open;
	bool closing;
	char desc[96];
};

static SSL_CTX *tls_ctx;
static pthread_once_t tls_ctx_once = PTHREAD_ONCE_INIT;

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

/* Move what SSL wrote into the write BIO to the socket. */
static int flush_wbio(struct tls_link *l)
{
	const uint8_t *p;
	size_t n;

	while (BIO_mem_contents(l->wbio, &p, &n) && n > 0) {
		int r = conn_send(l->conn, p, n);
		if (r < 0)
			return r;
		BIO_reset(l->wbio);
	}
	return 0;
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
	if (BIO_write(l->rbio, data, (int)len) != (int)len) {
		link_fail(l, -ENOMEM);
		return;
	}
	if (!l->open) {
		drive_handshake(l);
		if (!l->open)
			return;
	}
	read_plaintext(l);
}

static void on_conn_closed(struct conn *c, int err)
{
	struct tls_link *l = conn_user(c);

	if (l->ops->on_closed)
		l->ops->on_closed(l, err);
	SSL_free(l->ssl);
	free(l);
}

static const struct conn_ops tls_conn_ops = {
	.on_connected = on_conn_connected,
	.on_recv = on_conn_recv,
	.on_closed = on_conn_closed,
};

struct tls_link *tls_link_connect(struct worker *w, const struct sockaddr *addr, socklen_t len,
				  const struct tls_link_ops *ops, void *user, int *err)
{
	struct tls_link *l;

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
	l->ssl = SSL_new(tls_ctx);
	l->rbio = BIO_new(BIO_s_mem());
	l->wbio = BIO_new(BIO_s_mem());
	if (!l->ssl || !l->rbio || !l->wbio) {
		BIO_free(l->rbio);
		BIO_free(l->wbio);
		SSL_free(l->ssl);
		free(l);
		*err = -ENOMEM;
		return NULL;
	}
	/* An empty read BIO means "want more", not EOF. */
	BIO_set_mem_eof_return(l->rbio, -1);
	SSL_set_bio(l->ssl, l->rbio, l->wbio);
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

size_t tls_link_send_queued(const struct tls_link *l) { return conn_send_queued(l->conn); }

void tls_link_close(struct tls_link *l, int err, bool flush)
{
	if (l->closing)
		return;
	l->closing = true;
	if (flush && l->open) {
		SSL_shutdown(l->ssl);
		flush_wbio(l);
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
