/* Bad relays: relays whose hop failed recently (connect refused, extend
 * failed, build timed out at that hop), with a penalty that decays so they
 * are avoided for a while and then forgiven.
 *
 * For: path selection asking "should I avoid this relay now?". Not for:
 * guard reachability (app/guard.h keeps its own, as guard-spec says), or
 * anything persistent (penalties are forgotten on restart).
 *
 * Threads: one owner thread (the coordinator); not thread-safe. */
#ifndef ONIONRING_APP_BADRELAYS_H
#define ONIONRING_APP_BADRELAYS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/crypto.h"

/* A failure adds 1 to the score; the score halves every half-life; a relay
 * is avoided while its score is above 1/2, so one failure keeps it away for
 * one half-life and k failures for about log2(2k) half-lives. */
#define BADRELAYS_DEFAULT_HALF_LIFE_MS (10u * 60u * 1000u)
#define BADRELAYS_MAX_SCORE 8.0

struct badrelays;

/* Return an owned, empty table (badrelays_free); aborts on OOM. */
struct badrelays *badrelays_new(uint64_t half_life_ms);
void badrelays_free(struct badrelays *b);

/* Record that the hop through relay id failed at now_ms (monotonic). */
void badrelays_record_failure(struct badrelays *b, const uint8_t id[SHA1_LEN], uint64_t now_ms);
/* Record a success through id: its penalty is cleared. */
void badrelays_record_success(struct badrelays *b, const uint8_t id[SHA1_LEN]);
/* True when id should be avoided at now_ms. Borrows b (const). */
bool badrelays_is_avoided(const struct badrelays *b, const uint8_t id[SHA1_LEN], uint64_t now_ms);
/* The decayed score of id at now_ms (0 when unknown); for tests/metrics. */
double badrelays_score(const struct badrelays *b, const uint8_t id[SHA1_LEN], uint64_t now_ms);

#endif
