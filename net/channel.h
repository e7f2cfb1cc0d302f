/* Tor channels: one TLS link to a relay's ORPort, its link handshake
 * (proto/channel.h) with a handshake timeout, cell framing, and the map from
 * circuit IDs to the circuit owners that get the cells.
 *
 * For: opening a channel, sending cells, dispatching received cells per
 * circuit in batches (all cells of one receive completion in one pass, then
 * one on_batch_end per circuit that got cells), telling every circuit when
 * the channel closes. Not for: choosing relays, building circuits, relay
 * crypto, or reusing channels (net/chanpool.h does that).
 *
 * Every function here: owner shard only (the worker that opened the
 * channel). A channel frees itself after its owner's on_closed returns. */
#ifndef ONIONRING_NET_CHANNEL_H
#define ONIONRING_NET_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "net/worker.h"
#include "proto/cell.h"
#include "proto/channel.h"

struct channel;

/* Where a relay is and who it must prove to be. */
struct relay_target {
	struct sockaddr_storage addr; /* IPv4 or IPv6 address + ORPort */
	socklen_t addr_len;
	uint8_t rsa_id[20];           /* required */
	bool has_ed;
	uint8_t ed_id[32];            /* optional (has_ed) */
	char nickname[20];            /* for logs; may be empty */
};

enum channel_state {
	CHANNEL_CONNECTING, /* TCP connect */
	CHANNEL_TLS,        /* TLS handshake */
	CHANNEL_LINK,       /* Tor link handshake */
	CHANNEL_OPEN,
	CHANNEL_CLOSING,
};

/* Monotonic durations of each opening step, in ns (0: not reached). */
struct channel_timings {
	uint64_t tcp_connect_ns;
	uint64_t tls_handshake_ns;
	uint64_t link_handshake_ns;
	uint64_t total_ns;
};

struct channel_config {
	uint64_t handshake_timeout_ns; /* connect + TLS + link; default 30 s */
	/* Tests only: wall-clock time for certificate checks (0 = real time). */
	time_t fixed_wallclock;
};

/* The owner of the channel (the pool). Both run on the owner shard. */
struct channel_ops {
	/* The channel opened (err 0) or failed to (err < 0, why says how; the
	 * channel is then closing and on_closed follows). */
	void (*on_open)(struct channel *ch, int err, const char *why, void *arg);
	/* Last call: ch is freed after it returns. why is the reason. */
	void (*on_closed)(struct channel *ch, int err, const char *why, void *arg);
	/* Optional: the number of circuits went from 1 to 0 or 0 to 1. */
	void (*on_idle_change)(struct channel *ch, bool idle, void *arg);
};

/* A circuit owner's callbacks, registered per circuit ID. */
struct channel_circ_ops {
	/* A cell for this circuit: cv and its payload are borrowed for the
	 * call. Other cells of the same batch may follow. A DESTROY from the
	 * relay arrives here too; the circuit then unregisters itself. */
	void (*on_cell)(struct channel *ch, const struct cell_view *cv, void *arg);
	/* Optional: the batch that delivered at least one cell is over (the
	 * place to run batched relay crypto and flush replies). */
	void (*on_batch_end)(struct channel *ch, uint32_t circ_id, void *arg);
	/* The channel is closing: the circuit is unregistered after this. */
	void (*on_channel_closed)(struct channel *ch, uint32_t circ_id, int err, void *arg);
};

void channel_config_defaults(struct channel_config *cfg);

/* Start opening a channel to t (copied) on worker w. Returns owned (it
 * frees itself after ops->on_closed), or NULL with *err (then no callback
 * runs). ops and arg are borrowed until on_closed. Owner shard only. */
struct channel *channel_open(struct worker *w, const struct relay_target *t,
			     const struct channel_config *cfg, const struct channel_ops *ops,
			     void *arg, int *err);
/* Close ch: circuits are told, then ops->on_closed runs (later, not from
 * inside this call). why (copied) is kept as the reason if none was set.
 * Safe to call more than once. */
void channel_close(struct channel *ch, int err, const char *why);
/* Replace the owner callbacks (NULL ops: nobody is told). */
void channel_set_owner(struct channel *ch, const struct channel_ops *ops, void *arg);

/* Send one fixed cell (borrowed). Return 0 once the bytes are taken (queued,
 * or waiting in the link's spill when no send chunk was free: the backlog
 * shows in channel_send_queued), or -errno (-ENOTCONN before open or
 * while closing; the link failed). */
int channel_send_cell(struct channel *ch, const struct cell *c);
/* Send n fixed cells (borrowed) with one TLS write. */
int channel_send_cells(struct channel *ch, const struct cell *cells, size_t n);
/* Send a variable-length cell; body borrowed. */
int channel_send_var_cell(struct channel *ch, uint32_t circ_id, uint8_t command,
			  const uint8_t *body, size_t len);
/* Bytes queued on the socket and not yet written (backpressure). */
size_t channel_send_queued(const struct channel *ch);

/* Pick an unused circuit ID: random, high bit set (tor-spec 5.1.1: the
 * initiator sets the MSB on link protocol 4+). 0 when 64 tries failed or the
 * channel is not open. */
uint32_t channel_alloc_circ_id(struct channel *ch);
/* Route cells for circ_id to ops/arg (borrowed until unregistered or
 * on_channel_closed). Return 0, -EEXIST, -EINVAL (id 0) or -ENOTCONN. */
int channel_circ_register(struct channel *ch, uint32_t circ_id,
			  const struct channel_circ_ops *ops, void *arg);
/* Stop routing circ_id (no-op when unknown). Safe inside on_cell. */
void channel_circ_unregister(struct channel *ch, uint32_t circ_id);
size_t channel_n_circs(const struct channel *ch);
/* How many circuits it carried when it closed (valid in on_closed, where
 * channel_n_circs() is already 0). */
size_t channel_n_circs_at_close(const struct channel *ch);

enum channel_state channel_state(const struct channel *ch);
bool channel_is_open(const struct channel *ch);
const struct relay_target *channel_target(const struct channel *ch);
/* The identities the relay proved (valid once open). */
const struct relay_identity *channel_identity(const struct channel *ch);
/* The negotiated link protocol (4 or 5), 0 before. */
int channel_link_proto(const struct channel *ch);
const struct channel_timings *channel_timings(const struct channel *ch);
/* The relay's clock minus ours, in seconds, from its NETINFO. */
int64_t channel_clock_skew(const struct channel *ch);
/* Monotonic ns when it opened (0 before) and when it last had no circuits. */
uint64_t channel_opened_at(const struct channel *ch);
uint64_t channel_idle_since(const struct channel *ch);
struct worker *channel_worker(const struct channel *ch);
/* "nickname 127.0.0.1:5000" for logs. */
const char *channel_name(const struct channel *ch);
/* The reason it failed or closed ("" while none). */
const char *channel_error(const struct channel *ch);
/* TLS version and cipher, for logs. */
const char *channel_tls_describe(const struct channel *ch);

#endif
