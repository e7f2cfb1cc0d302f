/* The client (initiator) side of Tor's link handshake (tor-spec.txt section
 * 4, the "in-protocol" handshake) as a sans-IO state machine: feed it the
 * decrypted bytes the relay sends after TLS, it says what to send back and
 * when the channel is open.
 *
 * Sequence (tor-spec 4): we send VERSIONS; the relay sends VERSIONS, CERTS,
 * AUTH_CHALLENGE and NETINFO (VPADDING may come at any point); we check
 * CERTS completely (proto/certs.h) against the TLS certificate and the
 * identity we expected, ignore AUTH_CHALLENGE (we do not authenticate), and
 * answer NETINFO with our own. Then the channel is open.
 *
 * Not for: TLS, sockets, timers (net/channel.h drives this), the responder
 * side, or cells after the handshake. No allocation; any thread, touching
 * only the struct channel_hs it is given. */
#ifndef ONIONRING_PROTO_CHANNEL_H
#define ONIONRING_PROTO_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/bytes.h"
#include "proto/cell.h"
#include "proto/certs.h"

/* The identity we expect the relay to prove. RSA is what the consensus
 * keys relays by; Ed25519 is optional (from the microdescriptor). */
struct relay_identity_expect {
	bool has_rsa;
	bool has_ed;
	uint8_t rsa_id[20];
	uint8_t ed_id[32];
};

enum channel_hs_state {
	CHANNEL_HS_INIT,          /* channel_hs_start not called yet */
	CHANNEL_HS_WAIT_VERSIONS, /* our VERSIONS sent */
	CHANNEL_HS_WAIT_CERTS,    /* version negotiated */
	CHANNEL_HS_WAIT_NETINFO,  /* CERTS validated; AUTH_CHALLENGE may come */
	CHANNEL_HS_OPEN,
	CHANNEL_HS_FAILED,
};

enum channel_hs_result {
	CHANNEL_HS_NEED_MORE, /* consumed what it could; feed more bytes */
	CHANNEL_HS_DONE,      /* open: send *out, then cells may flow */
	CHANNEL_HS_ERROR,     /* close the connection; see channel_hs_error() */
};

/* Why a handshake failed, for callers that react differently. */
enum channel_hs_error {
	CHANNEL_HS_ERR_NONE = 0,
	CHANNEL_HS_ERR_PROTOCOL, /* unframeable bytes or a cell out of order */
	CHANNEL_HS_ERR_VERSION,  /* no common link protocol / bad VERSIONS */
	CHANNEL_HS_ERR_CERTS,    /* CERTS malformed or failing validation */
	CHANNEL_HS_ERR_IDENTITY, /* valid certs, but not the relay we wanted */
};

#define CHANNEL_HS_ERR_MAX 320

struct channel_hs {
	enum channel_hs_state state;
	enum channel_hs_error error;
	uint16_t link_proto;           /* negotiated, once past WAIT_VERSIONS */
	struct relay_identity_expect expect;
	struct cell_addr peer_addr;    /* the address we connected to */
	struct relay_identity proven;  /* valid from WAIT_NETINFO on */
	bool got_auth_challenge;
	/* From the relay's NETINFO (valid when OPEN). */
	uint32_t peer_time;            /* relay's clock, seconds since epoch */
	int64_t clock_skew;            /* peer_time - our now, seconds */
	struct cell_addr our_addr_seen; /* how the relay sees us */
	bool peer_addr_canonical;      /* relay listed peer_addr as its own */
	char err[CHANNEL_HS_ERR_MAX];
};

/* Prepare h for a handshake with a relay at peer_addr (borrowed, copied;
 * NULL: unknown, our NETINFO then names no address) that must prove expect
 * (copied; NULL: accept any valid identity). */
void channel_hs_init(struct channel_hs *h, const struct relay_identity_expect *expect,
		     const struct cell_addr *peer_addr);

/* Write our VERSIONS cell (listing 4 and 5) into out. Return its length or
 * -ENOSPC. Call once, right after the TLS handshake. */
ssize_t channel_hs_start(struct channel_hs *h, uint8_t *out, size_t cap);

/* Consume relay bytes data[0..len): every complete cell is handled and
 * counted in *consumed; a trailing partial cell is left for the caller to
 * present again with more bytes. Cells after the relay's NETINFO are not
 * consumed (they belong to the open channel). On DONE our NETINFO cell has
 * been appended to *out (needs CELL_LEN bytes of room). tls_der[0..tls_len)
 * is the DER of the relay's TLS certificate; now is the wall clock. Borrows
 * everything. */
enum channel_hs_result channel_hs_input(struct channel_hs *h, const uint8_t *data, size_t len,
					size_t *consumed, struct wr *out, const uint8_t *tls_der,
					size_t tls_len, time_t now);

/* The reason of the failure (empty string while none). */
const char *channel_hs_error(const struct channel_hs *h);

/* Fill a in tor's NETINFO address form from an IPv4 (4 bytes) or IPv6 (16
 * bytes) address in network order. */
void channel_hs_addr_set(struct cell_addr *a, const uint8_t *bytes, size_t len);

#endif
