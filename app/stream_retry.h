/* The retry policy of a stream before CONNECTED, as tor applies it
 * (relay.c connection_ap_process_end_not_open, connection_edge.c
 * connection_ap_expire_beginning; tor-spec 6.3-6.4 for the END reasons):
 * which failures are worth another circuit, which exit to avoid next time,
 * how long to wait before the next try, and which SOCKS reply the client
 * gets when trying stops.
 *
 * For: a small state machine with no I/O and no clock of its own; the
 * caller (app/circmgr.c) reports each failed attempt with the time and does
 * what the verdict says. Not for: choosing circuits or paths, sending cells.
 * Any thread; a struct stream_retry belongs to its stream. */
#ifndef ONIONRING_APP_STREAM_RETRY_H
#define ONIONRING_APP_STREAM_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/socks.h"

#define RETRY_EXCLUDE_MAX 8        /* exits remembered per stream */
#define RETRY_MAX_EXIT_FAILURES 3  /* tor's MAX_RESOLVE_FAILURES */
#define RETRY_BACKOFF_FIRST_NS (200ull * 1000000ull)
#define RETRY_BACKOFF_MAX_NS (5ull * 1000000000ull)
/* tor's per-attempt wait for CONNECTED (compute_retry_timeout without
 * CircuitStreamTimeout): 10 s for the first two attempts, then 15 s. */
#define RETRY_ATTEMPT_TIMEOUT_NS (10ull * 1000000000ull)
#define RETRY_ATTEMPT_TIMEOUT_LATE_NS (15ull * 1000000000ull)

enum retry_cause {
	RETRY_END,        /* the exit sent END before CONNECTED (reason given) */
	RETRY_TIMEOUT,    /* no CONNECTED within the attempt's time */
	RETRY_CIRCUIT,    /* the circuit failed or closed under the stream */
	RETRY_NO_CIRCUIT, /* no circuit could be launched now (directory, cap, guard) */
	RETRY_NO_EXIT,    /* path selection found no exit for the stream */
};

struct stream_retry {
	uint64_t deadline_ns;     /* SocksTimeout, on the caller's clock */
	unsigned attempts;        /* attempts started (stream_retry_attempt) */
	unsigned failures;        /* failed attempts (the backoff grows with them) */
	unsigned exit_failures;   /* RESOLVEFAILED/TIMEOUT/MISC/NOROUTE ENDs */
	bool has_error;
	enum socks5_reply code;   /* reply for the last error */
	char why[96];             /* text of the last error */
	unsigned nexcluded;
	uint8_t excluded[RETRY_EXCLUDE_MAX][20]; /* RSA ids of exits that failed it */
};

struct retry_verdict {
	bool retry;               /* try again at at_ns; else end with code */
	uint64_t at_ns;
	bool circuit_unusable;    /* the failed circuit takes no new streams */
	enum socks5_reply code;
	const char *why;          /* borrowed from the stream_retry or the caller */
};

/* Start the policy for a stream that must be done by deadline_ns. */
void stream_retry_init(struct stream_retry *r, uint64_t deadline_ns);

/* Count one more attempt (a BEGIN/RESOLVE sent, or a circuit waited for). */
static inline void stream_retry_attempt(struct stream_retry *r) { r->attempts++; }

/* How long the current attempt may wait for CONNECTED or RESOLVED. */
uint64_t stream_retry_attempt_timeout_ns(const struct stream_retry *r);

/* Report a failed attempt at now_ns: cause, the END reason (RETRY_END
 * only; enum relay_end_reason), the exit's RSA id (NULL when unknown) and a
 * text for the log and the client's error (copied). Fills *out; its why
 * lives as long as r. An exit that
 * refused or failed the stream is remembered (stream_retry_excludes). */
void stream_retry_failed(struct stream_retry *r, enum retry_cause cause, uint8_t reason, const uint8_t *exit_id,
			 uint64_t now_ns, const char *why, struct retry_verdict *out);

/* True when the exit with RSA id id failed this stream before. */
bool stream_retry_excludes(const struct stream_retry *r, const uint8_t *id);

/* The reply and text (borrowed from r or static) for a stream whose
 * deadline passed: the last error when there was one, else tor's TTL
 * expired (END reason TIMEOUT). */
void stream_retry_expired(const struct stream_retry *r, enum socks5_reply *code, const char **why);

/* tor's mapping of an END reason to a SOCKS5 reply. */
enum socks5_reply stream_retry_end_reply(uint8_t reason);

#endif
