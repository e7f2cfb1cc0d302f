/* Onion-service key schedule and HSDir hash ring (rend-spec-v3 2.1, 2.2,
 * appendix A.2): time periods, blinded keys, credential and subcredential,
 * the hsdir and service indices, the disaster SRV, and picking the
 * responsible HSDirs from a ring the caller builds from the consensus.
 *
 * Not for fetching anything (the app layer does that) nor for the service
 * side's key storage. Pure functions over caller memory, no allocation;
 * any thread. All period lengths and offsets are in MINUTES. */
#ifndef ONIONRING_PROTO_HS_KEYS_H
#define ONIONRING_PROTO_HS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HS_KEY_LEN 32
/* Consensus "hsdir-interval" default and bounds (2.2.1). */
#define HS_PERIOD_LEN_DEFAULT 1440
#define HS_PERIOD_LEN_MIN 30
#define HS_PERIOD_LEN_MAX 14400
/* The rotation offset is 12 voting periods (2.2.1): 720 minutes with the
 * live network's 1-hour votes. Test networks with short votes use
 * 12 * interval; tor also makes their period 24 * interval long. */
#define HS_PERIOD_OFFSET_DEFAULT 720
/* Consensus params of 2.2.3, with their ranges. */
#define HS_N_REPLICAS_DEFAULT 2
#define HS_N_REPLICAS_MAX 16
#define HS_SPREAD_FETCH_DEFAULT 3
#define HS_SPREAD_STORE_DEFAULT 4
#define HS_SPREAD_MAX 128

/* How a network divides time: both in minutes. */
struct hs_period_cfg {
	uint64_t length;
	uint64_t offset;
};

/* The number of the period that contains t (2.2.1). */
uint64_t hs_period_num(const struct hs_period_cfg *cfg, time_t t);
/* When period num starts. */
time_t hs_period_start(const struct hs_period_cfg *cfg, uint64_t num);
/* True when a client at t should use the consensus's CURRENT shared random
 * value for the period of t, false when it should use the PREVIOUS one
 * (2.2.4.1: current between a new period and the next SRV, else previous).
 * t should be the live consensus's valid-after. */
bool hs_period_uses_current_srv(const struct hs_period_cfg *cfg, time_t t);

/* N_hs_cred = SHA3-256("credential" | identity) (2.1). */
void hs_credential(uint8_t out[HS_KEY_LEN], const uint8_t identity[HS_KEY_LEN]);
/* N_hs_subcred = SHA3-256("subcredential" | N_hs_cred | blinded) (2.1). */
void hs_subcredential(uint8_t out[HS_KEY_LEN], const uint8_t identity[HS_KEY_LEN],
		      const uint8_t blinded[HS_KEY_LEN]);
/* The blinding factor h of A.2 (before clamping) for period num of
 * length len minutes, with no secret s. */
void hs_blind_factor(uint8_t h[HS_KEY_LEN], const uint8_t identity[HS_KEY_LEN], uint64_t num,
		     uint64_t len);
/* The blinded public key A' for the period. False when identity is not a
 * valid ed25519 point (onion_addr_parse already refuses those). */
bool hs_blinded_key(uint8_t out[HS_KEY_LEN], const uint8_t identity[HS_KEY_LEN], uint64_t num,
		    uint64_t len);

/* hs_service_index(replica) = SHA3-256("store-at-idx" | blinded |
 * INT_8(replica) | INT_8(len) | INT_8(num)) (2.2.3). replica is 1-based. */
void hs_service_index(uint8_t out[HS_KEY_LEN], const uint8_t blinded[HS_KEY_LEN], uint64_t replica,
		      uint64_t num, uint64_t len);
/* hs_relay_index = SHA3-256("node-idx" | ed25519 id | srv | INT_8(num) |
 * INT_8(len)) (2.2.3). */
void hs_relay_index(uint8_t out[HS_KEY_LEN], const uint8_t ed_id[HS_KEY_LEN],
		    const uint8_t srv[HS_KEY_LEN], uint64_t num, uint64_t len);
/* SRV = SHA3-256("shared-random-disaster" | INT_8(len) | INT_8(num)), for
 * a consensus without the value wanted (2.3.1). */
void hs_disaster_srv(uint8_t out[HS_KEY_LEN], uint64_t num, uint64_t len);

/* One HSDir on the ring: its hs_relay_index and the caller's handle for
 * it (e.g. its position in the consensus). */
struct hs_ring_entry {
	uint8_t index[HS_KEY_LEN];
	uint32_t handle;
};

/* Sort ring[0..n) by index (in place), as hs_ring_pick needs. */
void hs_ring_sort(struct hs_ring_entry *ring, size_t n);

/* For each replica 1..n_replicas, take the first `spread` entries of the
 * sorted ring at or after hs_service_index(replica) (wrapping around),
 * skipping entries already taken for a lower replica (2.2.3). Write their
 * handles to out (room for cap) in that order and return how many there
 * are: the set a client picks one of at random (spread = hsdir_spread_fetch).
 * Borrows everything. */
size_t hs_ring_pick(const struct hs_ring_entry *ring, size_t n, const uint8_t blinded[HS_KEY_LEN],
		    uint64_t num, uint64_t len, unsigned n_replicas, unsigned spread, uint32_t *out,
		    size_t cap);

#endif
