/* TLS client links over io_uring connections: BoringSSL driven through
 * a BIO of our own (reads the receive buffer in place, writes records
 * straight into the connection's send queue), so the sockets stay
 * io_uring's and TLS is only byte shuffling on the worker. The only user of libssl in onionring.
 *
 * Tor does not authenticate relays through the TLS certificate chain: the
 * channel checks the CERTS cell against the certificate seen here
 * (tor-spec section 4.2), so the handshake accepts any certificate and
 * tls_link_peer_cert() hands its DER to the channel. Owner shard only. */
#ifndef ONIONRING_NET_TLS_H
#define ONIONRING_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/worker.h"

struct tls_link;

struct tls_link_ops {
	/* The TCP connect and TLS handshake finished: err 0, or -errno /
	 * -EPROTO with the reason logged. On failure on_closed follows. */
	void (*on_open)(struct tls_link *l, int err);
	/* Decrypted bytes, borrowed for the call; consume or copy them all. */
	void (*on_data)(struct tls_link *l, const uint8_t *data, size_t len);
	/* Last call; l is invalid after it returns. */
	void (*on_closed)(struct tls_link *l, int err);
	/* Optional: the TCP connect finished and TLS starts (for timings). */
	void (*on_tcp_connected)(struct tls_link *l);
};

/* Connect to addr and start TLS. Returns owned (freed after on_closed) or
 * NULL with *err. */
struct tls_link *tls_link_connect(struct worker *w, const struct sockaddr *addr, socklen_t len,
				  const struct tls_link_ops *ops, void *user, int *err);
/* Encrypt and queue len bytes. Return 0; or -ENOBUFS: the bytes were
 * taken all the same (do not send them again), but some sealed records
 * found no free send chunk and wait in the link's spill buffer, ahead of
 * any later write. They go out by themselves once chunks come back (when
 * this connection's queue drains, or a short retry timer when the chunks
 * are other connections'); treat it as backpressure. Any other -errno:
 * the link failed and closes (on_closed follows). */
int tls_link_send(struct tls_link *l, const void *data, size_t len);
/* Bytes queued on the socket and not yet written, spilled ones included. */
size_t tls_link_send_queued(const struct tls_link *l);
/* Close; on_closed follows. flush: write what is queued first (spilled
 * records and the close_notify too: the close waits until they are in
 * the send queue). */
void tls_link_close(struct tls_link *l, int err, bool flush);
void *tls_link_user(const struct tls_link *l);
void tls_link_set_user(struct tls_link *l, void *user);
struct worker *tls_link_worker(const struct tls_link *l);
const char *tls_link_peer_name(const struct tls_link *l);
/* The DER of the certificate the peer presented in the TLS handshake
 * (borrowed, valid while l is). Return false before the handshake. */
bool tls_link_peer_cert(const struct tls_link *l, const uint8_t **der, size_t *len);
/* TLS keying-material export (RFC 5705), for link authentication. */
bool tls_link_export(const struct tls_link *l, uint8_t *out, size_t outlen, const char *label,
		     const uint8_t *ctx, size_t ctxlen);
/* A line describing the negotiated protocol and cipher, for logs. */
const char *tls_link_describe(const struct tls_link *l);

#endif
