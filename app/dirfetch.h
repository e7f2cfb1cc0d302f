/* Directory fetches over BEGIN_DIR: one HTTP/1.0 GET on a one-hop
 * directory circuit to a relay (an authority or cache), the body inflated.
 * Runs on a worker (owner shard only); the result goes to a callback on
 * that worker. Not for deciding what to fetch (app/dirmgr.c does). */
#ifndef ONIONRING_APP_DIRFETCH_H
#define ONIONRING_APP_DIRFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "net/channel.h"
#include "proto/socks.h"

struct worker;

/* status: the HTTP status (200 ...) or -errno; body: owned by the callee
 * (free()), NULL on failure; why: on failure, what went wrong (borrowed
 * for the call). */
typedef void (*dirfetch_done_fn)(void *arg, int status, uint8_t *body, size_t len, const char *why);

/* Fetch path (e.g. "/tor/status-vote/current/consensus-microdesc") from t,
 * refusing bodies over max_len after inflation. Return 0 (done will be
 * called exactly once, later) or -errno (done is never called). */
int dirfetch_start(struct worker *w, const struct relay_target *t, const char *path, size_t max_len,
		   uint64_t timeout_ns, dirfetch_done_fn done, void *arg);

/* The same over a fresh 3-hop circuit ending at t (t must be in the
 * consensus): onion-service descriptors from HSDirs (app/hs_client.c). */
int dirfetch_start_anon(struct worker *w, const struct relay_target *t, const char *path, size_t max_len,
			uint64_t timeout_ns, dirfetch_done_fn done, void *arg);

/* The -errno for a directory stream that ended with code (the stream
 * layer's SOCKS-style summary of the END reason or the failure) before a
 * whole answer came: refused, unreachable, expired (-ETIMEDOUT), not
 * allowed (-EACCES), a clean end without a byte (-ENODATA), anything else
 * (the channel or circuit failed) -ECONNABORTED. Any thread. */
int dirfetch_end_errno(enum socks5_reply code);


struct runtime;
struct dir_fetcher;

/* A fetcher for app/dirmgr.h that runs each fetch as BEGIN_DIR on worker
 * 0 of rt (one-hop directory circuits are then reused across fetches).
 * Only the OR port and identity of a source are used. */
void dirfetch_begindir_fetcher(struct runtime *rt, struct dir_fetcher *out);

#endif
