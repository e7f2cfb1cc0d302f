/* The v3 onion-service client of one shard (rend-spec-v3 2.2.6, 3, 4):
 * for a stream to "<56 chars>.onion:port" it fetches the service's
 * descriptor from a responsible HSDir over a 3-hop circuit (BEGIN_DIR),
 * verifies and decrypts it (proto/hs_desc.h), builds a rendezvous circuit
 * (ESTABLISH_RENDEZVOUS), introduces itself through an introduction point
 * (INTRODUCE1 with hs-ntor, proto/hs_ntor.h), joins the rendezvous circuit
 * on RENDEZVOUS2 (the virtual hop of proto/hs_hop.h) and then opens the
 * waiting streams on it with BEGIN and an empty address. The joined circuit
 * stays for further streams to the same service with the same isolation
 * key. Failures reach the SOCKS client as tor's extended errors 0xF0-0xF7
 * (socks-extensions.txt).
 *
 * For: app/circmgr.c, which calls these hooks; everything owner shard
 * only. Not for: the crypto and parsing (proto/hs_*), circuit building
 * (circmgr), the service side. */
#ifndef ONIONRING_APP_HS_CLIENT_H
#define ONIONRING_APP_HS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "app/dirfetch.h"

struct consensus;
struct hop_target;
struct hs_client;
struct hs_desc_intro;
struct hs_period_cfg;
struct ocirc;
struct shard;
struct stream;

/* Create sh's onion-service client (returns owned; NULL on OOM: onion
 * streams then fail). */
struct hs_client *hs_client_new(struct shard *sh);
/* End every waiting onion stream ("shutting down"), let go of its circuits
 * (the circuit manager closes them) and free hc. NULL-safe. */
void hs_client_free(struct hs_client *hc);

/* Find or start the connection to st's service (st->t.dest is a
 * well-formed .onion name) and put st on it: attached at once when a
 * joined rendezvous circuit with st's isolation key exists, else waiting.
 * May end st through its on_end. */
void hs_client_place(struct shard *sh, struct stream *st);
/* st, waiting on a connection, is closed by its client: forget it. */
void hs_client_stream_gone(struct stream *st);

/* Hooks for OC_HS circuits whose oc->hs is set. */
void hs_client_circ_opened(struct ocirc *oc);
/* oc is closing (why: static text); oc->hs is cleared here. */
void hs_client_circ_closed(struct ocirc *oc, const char *why);
/* RENDEZVOUS_ESTABLISHED, INTRODUCE_ACK or RENDEZVOUS2 from oc's last hop
 * (body borrowed). */
void hs_client_on_cell(struct ocirc *oc, uint8_t command, const uint8_t *body, size_t len);

/* --- Pure helpers (any thread; public for the unit tests) ---------------- */

/* The time-period layout of the network of consensus c (rend-spec-v3
 * 2.2.1 as tor computes it): 24 voting intervals long, offset by 12
 * (1440/720 minutes with hourly votes), "hsdir-interval" overriding the
 * length. Borrows c. */
void hs_client_period_cfg(const struct consensus *c, struct hs_period_cfg *out);
/* The hop target of introduction point ip from its link specifiers (IPv4,
 * legacy id, ed25519 id, IPv6 kept; others skipped) and its onion key.
 * False when IPv4 or the legacy id is missing or the block is cut. */
bool hs_client_intro_target(const struct hs_desc_intro *ip, struct hop_target *t);
/* NSPEC | specs (IPv4, legacy id, ed25519 id when known) of the
 * rendezvous point t for INTRODUCE1 (rend-spec-v3 3.3); returns the
 * length (at most HS_CLIENT_LSPEC_MAX). */
#define HS_CLIENT_LSPEC_MAX 80
size_t hs_client_rend_link_specs(const struct hop_target *t, uint8_t out[HS_CLIENT_LSPEC_MAX]);

/* --- Test seam ---------------------------------------------------------------- */

/* How every shard's client asks an HSDir for a descriptor and reads the
 * wall clock that the descriptor's certificates are checked against. The
 * defaults are dirfetch_start_anon and clock_wall; a unit test
 * (test/unit/test_hs_client_desc.c) serves altered real descriptors
 * through fetch and sets the clock to their capture time. */
struct hs_client_io {
	int (*fetch)(struct worker *w, const struct relay_target *t, const char *path, size_t max_len,
		     uint64_t timeout_ns, dirfetch_done_fn done, void *arg);
	time_t (*wall)(void);
};
/* Use io (copied; a NULL member or io NULL: the default). Call before the
 * workers start or while no onion connection exists (not thread-safe). */
void hs_client_set_io(const struct hs_client_io *io);

#endif
