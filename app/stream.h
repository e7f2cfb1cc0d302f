/* What a client session (SOCKS now, onion services later) asks of the
 * circuit layer: open a stream to a target with an isolation key, move
 * bytes both ways with backpressure, and hear how it ends.
 *
 * The circuit layer (app/circmgr) implements the stream_* functions; the
 * session implements struct stream_events. Owner shard only: a stream and
 * its session live on the same worker. */
#ifndef ONIONRING_APP_STREAM_H
#define ONIONRING_APP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/socks.h"

struct worker;
struct stream;

/* Client bytes a stream holds before CONNECTED (optimistic data). */
#define STREAM_EARLY_MAX (32u * 1024u)

/* Streams with different keys never share a circuit (tor's stream
 * isolation: SocksPort, SOCKS credentials, and destination address/port
 * when the port has IsolateDestAddr/IsolateDestPort). The key is a digest
 * of those fields, so it is fixed-size and cheap to compare. */
struct isolation_key {
	uint8_t digest[32];
};

enum stream_kind {
	STREAM_CONNECT,     /* RELAY_BEGIN */
	STREAM_RESOLVE,     /* RELAY_RESOLVE for a hostname */
	STREAM_RESOLVE_PTR, /* RELAY_RESOLVE for an in-addr.arpa / ip6.arpa name */
};

struct stream_target {
	enum stream_kind kind;
	struct socks_addr dest;
	uint16_t port;
	struct isolation_key iso;
	/* Worker clock (worker_now_ns) after which the stream stops trying
	 * and ends with the reply for its last error (SocksTimeout from the
	 * client's connect); 0: two minutes from stream_open. */
	uint64_t deadline_ns;
	/* The session was handed here by another shard, which claimed one of
	 * this shard's ready clean circuits for it (circmgr_claim_ready); the
	 * claim is released once the stream is placed or gone. */
	bool handed_in;
	/* With handed_in: the claim is on the reserved circuit for iso in
	 * slot key_slot of this shard's key table (circmgr_claim_reserved),
	 * not on a clean circuit any key may take. */
	bool keyed;
	uint8_t key_slot;
};

/* Callbacks into the session; all on the owner worker. After on_resolved
 * or on_end the stream is gone: do not call stream_close on it. */
struct stream_events {
	/* CONNECTED: the exit reached the target; bound may be NULL. */
	void (*on_connected)(void *sess, const struct socks_addr *bound);
	/* RESOLVED: one answer (the first usable one). */
	void (*on_resolved)(void *sess, const struct socks_addr *answer, uint32_t ttl);
	/* DATA from the exit, borrowed for the call. */
	void (*on_data)(void *sess, const uint8_t *data, size_t len);
	/* The stream can take more bytes again after stream_write() took less
	 * than offered. */
	void (*on_writable)(void *sess);
	/* The end: code is the SOCKS5 reply that fits (tor's mapping of END
	 * reasons), why a short text for the log. */
	void (*on_end)(void *sess, enum socks5_reply code, const char *why);
	/* Optional. The stream is about to wait for a circuit build (no open
	 * circuit here can take it) and another shard has a ready clean one:
	 * the session may move there (issue 6). early[0..early_len) are the
	 * client bytes the stream holds (borrowed for the call). Return true
	 * when the session took itself away: the circuit layer then frees
	 * the stream with no further callback (do not stream_close it).
	 * iso: the stream's isolation key (borrowed), to look for a shard
	 * holding a circuit reserved for it (circmgr_claim_reserved).
	 * Asked on its first placement, and again while it waits for a build
	 * on its first attempt when another shard has ready circuits
	 * (circmgr_offer_waiting); the session moves at most once. */
	bool (*on_would_wait)(void *sess, const struct isolation_key *iso, const uint8_t *early, size_t early_len);
	/* Optional (MaxMemInQueues, app/oom.h): the bytes the session holds
	 * for this stream, to its client and from it, and in *since_ns when
	 * the oldest of them was queued (worker clock; 0: none). */
	size_t (*queued)(void *sess, uint64_t *since_ns);
	/* Optional: memory is short and this stream's circuit is being closed
	 * (MaxMemInQueues): drop what is queued and close the client at once,
	 * which closes the stream (stream_close) before this returns. */
	void (*drop)(void *sess);
};

/* Open a stream for target (copied) on a suitable circuit of this worker's
 * shard, building one if needed. Until CONNECTED (or RESOLVED) the circuit
 * layer retries as tor does: after a retriable END, a failed circuit or no
 * circuit at all it tries again after a backoff, on a circuit whose exit
 * has not failed this stream, until target->deadline_ns; then on_end gets
 * the reply for the last error. Returns the stream (owned by the circuit
 * layer) or NULL with *code and *why set when it cannot even start. No
 * event runs before stream_open returns. */
struct stream *stream_open(struct worker *w, const struct stream_target *target,
			   const struct stream_events *ev, void *sess, enum socks5_reply *code, const char **why);
/* Offer len bytes; return how many were taken (0..len). Fewer than len
 * means the windows are closed: wait for on_writable. Before CONNECTED a
 * CONNECT stream takes up to STREAM_EARLY_MAX bytes: they go out as
 * optimistic data right after BEGIN when the exit may take it (tor-spec
 * 6.2), are kept until CONNECTED, and are sent again on the next circuit
 * if this attempt fails. */
size_t stream_write(struct stream *s, const uint8_t *data, size_t len);
/* Stop (false) or resume (true) delivering on_data: a slow client pushes
 * back on the circuit (no SENDMEs go out while it is paused). */
void stream_set_reading(struct stream *s, bool reading);
/* Close from the client side (RELAY_END, reason DONE). No callbacks follow. */
void stream_close(struct stream *s);

#endif
