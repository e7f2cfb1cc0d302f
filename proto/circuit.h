/* Client circuits and their streams, sans-IO (tor-spec.txt 5, 6, 7;
 * proposals 324 and 332): building a circuit hop by hop (CREATE_FAST,
 * CREATE2 with ntor or ntor v3 + the congestion-control request, EXTEND2 in
 * RELAY_EARLY), peeling inbound cells in batches into events, packing stream
 * data into DATA cells, circuit and stream SENDMEs (v1, authenticated),
 * Vegas congestion control and XON/XOFF.
 *
 * For: the owner shard of one circuit. Cells are caller-owned buffers (from
 * the buffer magazines); nothing here allocates, reads a clock (now_usec is
 * an argument) or makes a system call. Not for: the channel (circuit IDs,
 * cell framing on the TLS link), choosing paths or deciding whether to ask
 * for congestion control (app/), or the onion-service handshakes
 * (proto/hs_ntor.h; this file only carries their cells and, once joined,
 * the virtual hop of proto/hs_hop.h).
 *
 * Streams attach to the last hop of the circuit at the time they open; flow
 * control (windows or congestion control) is kept for that hop only, so a
 * circuit with open streams is not extended further. */
#ifndef ONIONRING_PROTO_CIRCUIT_H
#define ONIONRING_PROTO_CIRCUIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/cc.h"
#include "proto/cell.h"
#include "proto/hs_hop.h"
#include "proto/ntor.h"
#include "proto/ntor3.h"
#include "proto/relay.h"
#include "proto/relay_crypto.h"

#define CIRC_MAX_HOPS RELAY_CRYPTO_MAX_HOPS /* 3 for exits; HS circuits need more */
#define CIRC_STREAMS_MAX 32                 /* power of two: id & 31 is the slot */
#define CIRC_SENDME_RING 256                /* digests of sent DATA cells awaiting SENDMEs */
#define CIRC_CTRL_MAX 64                    /* queued control messages (SENDME, XON, XOFF) */
#define CIRC_WINDOW_START 1000              /* tor-spec 7.3 */
#define CIRC_WINDOW_INC 100
#define STREAM_WINDOW_START 500 /* tor-spec 7.4 */
#define STREAM_WINDOW_INC 50
#define CREATE_FAST_LEN SHA1_LEN
#define CREATED_FAST_LEN (2 * SHA1_LEN)

/* What a relay supports, from its "proto" line. */
#define HOP_PROTO_NTOR3 (1u << 0)      /* Relay=4: ntor v3 */
#define HOP_PROTO_FLOWCTRL_CC (1u << 1) /* FlowCtrl=2: congestion control */

/* The relay to create or extend to. Filled by app/ from a microdescriptor
 * and the consensus; borrowed by the calls that take it. */
struct hop_target {
	uint8_t ipv4[4];
	uint16_t port;
	bool has_ipv6;
	uint8_t ipv6[16];
	uint16_t ipv6_port;
	uint8_t rsa_id[SHA1_LEN];
	bool has_ed_id;
	uint8_t ed_id[32];
	uint8_t ntor_key[32];
	uint32_t protos;  /* HOP_PROTO_* */
	bool request_cc;  /* app/: this is the exit of an exit circuit (324 §10.1) */
};

/* Consensus parameters a circuit reads (tor-spec 7.3, 7.3.1; 324 §6.5). */
struct circ_params {
	uint32_t circwindow;             /* 'circwindow', 100..1000 */
	uint8_t sendme_emit_min_version; /* we always emit v1, which is >= any */
	uint8_t sendme_accept_min_version;
	struct cc_params cc;
};

void circ_params_default(struct circ_params *p);

enum circ_state {
	CIRC_ST_EMPTY = 0,   /* no hop yet */
	CIRC_ST_CREATING,    /* CREATE2 / CREATE_FAST sent */
	CIRC_ST_OPEN,        /* at least one hop, nothing pending */
	CIRC_ST_EXTENDING,   /* EXTEND2 sent */
	CIRC_ST_CLOSED,      /* DESTROY/TRUNCATED received or a protocol error */
};

enum circ_hs_kind { CIRC_HS_NONE = 0, CIRC_HS_FAST, CIRC_HS_NTOR, CIRC_HS_NTOR3 };

enum circ_stream_kind { CIRC_STREAM_BEGIN = 1, CIRC_STREAM_BEGIN_DIR, CIRC_STREAM_RESOLVE };

enum circ_stream_state {
	CIRC_SS_FREE = 0,
	CIRC_SS_CONNECTING, /* BEGIN/BEGIN_DIR sent */
	CIRC_SS_RESOLVING,  /* RESOLVE sent */
	CIRC_SS_OPEN,
};

struct circ_stream {
	uint16_t id;
	uint8_t state;     /* enum circ_stream_state */
	uint8_t kind;      /* enum circ_stream_kind */
	bool xoff_received;  /* the exit asked us to stop (324 §4.1.1) */
	bool reading;        /* the owner accepts data (else: no stream SENDMEs / XOFF sent) */
	int16_t package_window; /* without congestion control only */
	int16_t deliver_window;
};

struct circ_sendme_rec {
	uint8_t digest[SHA1_LEN];
	uint64_t sent_usec;
};

/* A control message waiting for circ_flush. */
struct circ_ctrl {
	uint8_t command;   /* RELAY_SENDME, RELAY_XON, RELAY_XOFF */
	uint16_t stream_id;
	uint8_t digest[SHA1_LEN]; /* circuit SENDME v1 */
};

struct circ {
	/* Hot: read on every cell. */
	uint32_t circ_id;
	uint8_t state;         /* enum circ_state */
	uint8_t n_hops;
	bool cc_on;
	uint8_t edge_hop;      /* hop the streams talk to (last hop, or n_hops when hs_joined) */
	bool hs_joined;        /* the virtual hop to an onion service is on (rend-spec-v3 4.2) */
	int32_t package_window; /* without congestion control */
	int32_t deliver_window;
	uint32_t sendme_inc;   /* 100, or the negotiated cc sendme_inc */
	uint64_t n_data_sent;  /* DATA cells sent to edge_hop */
	uint32_t rand_countdown; /* cells until one with random padding (prop 289) */
	uint16_t next_stream_seq;
	uint16_t ring_head, ring_len; /* sendme ring */
	uint16_t ctrl_len;
	struct relay_early_budget early;
	struct cc cc;
	struct relay_pad_rng *rng; /* borrowed; NULL = the OS generator */
	struct relay_crypto_circ crypto;
	struct circ_params params;
	struct circ_stream streams[CIRC_STREAMS_MAX];
	struct circ_ctrl ctrl[CIRC_CTRL_MAX];
	struct circ_sendme_rec ring[CIRC_SENDME_RING];
	struct hs_hop hs_hop;  /* valid when hs_joined */
	/* Cold: the handshake in flight. */
	uint8_t hs_kind;       /* enum circ_hs_kind */
	bool hs_cc_requested;
	union {
		struct ntor_client ntor;
		struct ntor3_client ntor3;
		uint8_t fast_x[CREATE_FAST_LEN];
	} hs;
};

enum circ_event_type {
	CIRC_EV_HOP_ADDED = 1, /* CREATED2/CREATED_FAST/EXTENDED2 completed: hop */
	CIRC_EV_CONNECTED,     /* stream_id, u.connected */
	CIRC_EV_DATA,          /* stream_id, u.data (borrowed from the input cell) */
	CIRC_EV_END,           /* stream_id, u.end.reason; the stream is gone */
	CIRC_EV_RESOLVED,      /* stream_id, u.raw: RESOLVED body for relay_resolved_parse */
	CIRC_EV_WRITABLE,      /* a window or XON reopened (stream_id 0: the circuit) */
	CIRC_EV_TRUNCATED,     /* u.close.reason; circuit closed: send DESTROY */
	CIRC_EV_DESTROYED,     /* u.close.reason; circuit closed, send nothing */
	CIRC_EV_CLOSED,        /* protocol error: u.close; send DESTROY */
	CIRC_EV_HS,            /* onion-service message from the last real hop: u.hs */
};

struct circ_event {
	uint8_t type;
	uint8_t hop;
	uint16_t stream_id;
	union {
		struct {
			uint8_t addr_type; /* 0 for BEGIN_DIR / empty body */
			uint8_t addr[16];
			uint32_t ttl;
		} connected;
		struct {
			const uint8_t *data;
			size_t len;
		} data;
		struct {
			uint8_t reason;
		} end;
		struct {
			const uint8_t *body;
			size_t len;
		} raw;
		struct {
			uint8_t command; /* RELAY_RENDEZVOUS_ESTABLISHED, _INTRODUCE_ACK, _RENDEZVOUS2 */
			const uint8_t *body; /* borrowed from the input cell */
			size_t len;
		} hs;
		struct {
			uint8_t reason; /* enum cell_destroy_reason */
			const char *why; /* static text */
		} close;
	} u;
};

/* --- Life cycle and building (owner shard only) ------------------------ */

/* Make c an empty circuit with circuit ID circ_id on its channel. Borrows
 * params (copied) and rng (kept: must outlive c; NULL = OS generator). */
void circ_init(struct circ *c, uint32_t circ_id, const struct circ_params *params,
	       struct relay_pad_rng *rng);
/* Wipe every key, handshake secret and digest; c is unusable afterwards. */
void circ_clear(struct circ *c);

/* Write a CREATE_FAST cell to out (tor-spec 5.1.5): only for the first hop
 * of a one-hop directory circuit to a relay whose ntor key is unknown.
 * Returns 0 or -EINVAL (c is not empty). */
int circ_begin_create_fast(struct circ *c, struct cell *out);
/* Write a CREATE2 cell for t to out: ntor v3 with the CC request when
 * t->request_cc, t supports ntor v3 and FlowCtrl=2, t has an Ed25519 id
 * and cc_alg != 0 (proposal 324 §10.1); otherwise ntor. Returns 0 or
 * -EINVAL. Borrows t. */
int circ_begin_create(struct circ *c, const struct hop_target *t, struct cell *out);
/* Write an EXTEND2 to t (encrypted for the last hop, in RELAY_EARLY) to out.
 * Returns 0, -EINVAL (not open, streams open, or full), -ENOSPC (RELAY_EARLY
 * budget spent: this circuit cannot grow, tor-spec 5.6). Borrows t. */
int circ_begin_extend(struct circ *c, const struct hop_target *t, struct cell *out);
/* Write a DESTROY for c to out (reason NONE: tor-spec 5.4, "An OP should
 * always use the NONE reason"). */
void circ_destroy_cell(const struct circ *c, struct cell *out);

/* --- Input (owner shard only) ------------------------------------------ */

/* Handle n cells that arrived for c, in order. The RELAY/RELAY_EARLY cells
 * are decrypted in place (cells are borrowed and modified) with ONE
 * relay_crypto_decrypt_in call per run of up to 64 consecutive relay cells
 * (one call for a batch of relay cells); DATA events point into them, so
 * keep the cells until the events are consumed. After a close, the rest of
 * the batch is ignored. Writes at most n + 1 events to ev
 * (ev_cap must be >= n + 1) and their count to *nev. Control messages
 * (SENDMEs) are queued: call circ_flush (or circ_stream_data) afterwards.
 * now_usec: monotonic microseconds (RTT on SENDMEs). */
void circ_input_cells(struct circ *c, struct cell *const cells[], size_t n, uint64_t now_usec,
		      struct circ_event *ev, size_t ev_cap, size_t *nev);

/* Write queued control cells into out[0..cap) (caller-owned buffers),
 * encrypted in one call; *nout is their count. */
void circ_flush(struct circ *c, struct cell *const out[], size_t cap, size_t *nout);
/* Return true when control cells wait for circ_flush. */
static inline bool circ_has_output(const struct circ *c) { return c->ctrl_len > 0; }

/* --- Streams (owner shard only) ---------------------------------------- */

/* Open a stream: BEGIN (host[0..host_len):port with tor-spec 6.2 flags),
 * BEGIN_DIR (host ignored) or RESOLVE (host). Writes the cell to out and
 * the new stream id (non-zero, unique on c) to *sid. Returns 0, -EINVAL
 * (circuit not open, bad host), -EAGAIN (no free stream slot). */
int circ_stream_open(struct circ *c, enum circ_stream_kind kind, const char *host,
		     size_t host_len, uint16_t port, uint32_t flags, uint16_t *sid,
		     struct cell *out);
/* Pack data[0..len) into DATA cells of up to 498 bytes for stream sid while
 * the windows (or cwnd) and XON/XOFF allow, after any queued control cells,
 * into out[0..out_cap); all produced cells are encrypted with ONE call.
 * *taken: bytes consumed; *nout: cells written. Returns 0, or -EINVAL for an
 * unknown stream or one that is neither open nor a BEGIN awaiting its
 * answer (optimistic data, tor-spec 6.2: only to an exit that takes it,
 * which the caller decides). */
int circ_stream_data(struct circ *c, uint16_t sid, const uint8_t *data, size_t len,
		     uint64_t now_usec, size_t *taken, struct cell *const out[], size_t out_cap,
		     size_t *nout);
/* End stream sid with reason (enum relay_end_reason): writes END to out and
 * frees the id. Returns 0 or -EINVAL. */
int circ_stream_end(struct circ *c, uint16_t sid, uint8_t reason, struct cell *out);
/* Return true when one more DATA cell for sid may be sent now. */
bool circ_can_send(const struct circ *c, uint16_t sid);
/* The owner's reader for sid is (not) accepting data: with congestion
 * control queue XOFF / XON (324 §4.1.1); without, hold back / release the
 * stream SENDMEs (tor-spec 7.4). Returns 0 or -EINVAL. */
int circ_stream_set_reading(struct circ *c, uint16_t sid, bool reading);

/* --- Onion services (owner shard only) ----------------------------------- */

/* Write a relay message command with body[0..len) on stream 0 to the last
 * real hop (ESTABLISH_RENDEZVOUS to a rendezvous point, INTRODUCE1 to an
 * introduction point: rend-spec-v3 3.2, 4.1) into out. Returns 0, -EINVAL
 * (circuit not open, joined, or len > 498). Borrows body. */
int circ_send_hs(struct circ *c, uint8_t command, const uint8_t *body, size_t len,
		 struct cell *out);
/* Join c to the onion service (rend-spec-v3 4.2): add the virtual hop keyed
 * by keys (Df Db Kf Kb from hs_ntor_client_rend2; borrowed, the caller
 * wipes them) after the last real hop. Streams then talk to the service
 * with congestion control under cc (borrowed; its sendme_inc is the one
 * the descriptor's flow-control line gives, proposal 324 §10.3) when the
 * INTRODUCE1 asked for it, or with fixed SENDME windows when cc is NULL.
 * Returns 0, or -EINVAL when c is not open, already joined, has streams,
 * or cc has sendme_inc 0. */
int circ_hs_join(struct circ *c, const uint8_t keys[HS_NTOR_EXPANDED_LEN], const struct cc_params *cc);

/* --- Helpers ----------------------------------------------------------- */

/* KDF-TOR (tor-spec 5.2.1): out = SHA1(k0|00) | SHA1(k0|01) | ... , first
 * out_len bytes. k0_len <= 64. Any thread. */
void circ_kdf_tor(const uint8_t *k0, size_t k0_len, uint8_t *out, size_t out_len);

#endif
