/* A stream's retry policy before CONNECTED (see stream_retry.h). */
#include "app/stream_retry.h"

#include <stdio.h>
#include <string.h>

#include "proto/relay.h"

void stream_retry_init(struct stream_retry *r, uint64_t deadline_ns)
{
	memset(r, 0, sizeof(*r));
	r->deadline_ns = deadline_ns;
	r->code = SOCKS5_TTL_EXPIRED;
}

uint64_t stream_retry_attempt_timeout_ns(const struct stream_retry *r)
{
	return r->attempts <= 2 ? RETRY_ATTEMPT_TIMEOUT_NS : RETRY_ATTEMPT_TIMEOUT_LATE_NS;
}

enum socks5_reply stream_retry_end_reply(uint8_t reason)
{
	switch (reason) {
	case RELAY_END_RESOLVEFAILED:
		return SOCKS5_HOST_UNREACHABLE;
	case RELAY_END_CONNECTREFUSED:
	case RELAY_END_CONNRESET:
		return SOCKS5_CONNECTION_REFUSED;
	case RELAY_END_EXITPOLICY:
		return SOCKS5_NOT_ALLOWED;
	case RELAY_END_TIMEOUT:
	case RELAY_END_NOROUTE:
		return SOCKS5_TTL_EXPIRED;
	default:
		return SOCKS5_GENERAL_FAILURE;
	}
}

bool stream_retry_excludes(const struct stream_retry *r, const uint8_t *id)
{
	for (unsigned i = 0; i < r->nexcluded; i++)
		if (memcmp(r->excluded[i], id, 20) == 0)
			return true;
	return false;
}

static void exclude(struct stream_retry *r, const uint8_t *id)
{
	if (!id || stream_retry_excludes(r, id))
		return;
	/* Full: forget the oldest; the deadline still bounds the tries. */
	if (r->nexcluded == RETRY_EXCLUDE_MAX) {
		memmove(r->excluded[0], r->excluded[1], (RETRY_EXCLUDE_MAX - 1) * 20u);
		r->nexcluded--;
	}
	memcpy(r->excluded[r->nexcluded++], id, 20);
}

/* What an END before CONNECTED means (tor's connection_ap_process_end_not_open):
 * EXITPOLICY: that exit will refuse again, try another (tor rewrites its
 * copy of the exit's policy, the circuit stays usable for other addresses).
 * RESOLVEFAILED, TIMEOUT, MISC, NOROUTE: another exit may do better, up to
 * MAX_RESOLVE_FAILURES times; the circuit takes no new streams.
 * HIBERNATING, RESOURCELIMIT: the exit is full (tor treats it as reject-all).
 * Anything else (CONNECTREFUSED above all: the destination said no): end. */
static bool end_retriable(struct stream_retry *r, uint8_t reason, bool *unusable)
{
	switch (reason) {
	case RELAY_END_EXITPOLICY:
		*unusable = false;
		return true;
	case RELAY_END_RESOLVEFAILED:
	case RELAY_END_TIMEOUT:
	case RELAY_END_MISC:
	case RELAY_END_NOROUTE:
		*unusable = true;
		return ++r->exit_failures < RETRY_MAX_EXIT_FAILURES;
	case RELAY_END_HIBERNATING:
	case RELAY_END_RESOURCELIMIT:
		*unusable = true;
		return true;
	default:
		*unusable = false;
		return false;
	}
}

static void record(struct stream_retry *r, enum socks5_reply code, const char *why)
{
	r->has_error = true;
	r->code = code;
	snprintf(r->why, sizeof(r->why), "%s", why ? why : "unknown error");
}

static void end_with(struct retry_verdict *out, enum socks5_reply code, const char *why)
{
	out->retry = false;
	out->code = code;
	out->why = why;
}

void stream_retry_failed(struct stream_retry *r, enum retry_cause cause, uint8_t reason, const uint8_t *exit_id,
			 uint64_t now_ns, const char *why, struct retry_verdict *out)
{
	uint64_t delay;

	memset(out, 0, sizeof(*out));
	r->failures++;
	switch (cause) {
	case RETRY_END:
		record(r, stream_retry_end_reply(reason), why);
		if (!end_retriable(r, reason, &out->circuit_unusable)) {
			end_with(out, r->code, r->why);
			return;
		}
		exclude(r, exit_id);
		break;
	case RETRY_TIMEOUT:
		/* tor sends END (TIMEOUT), stops using the circuit for new
		 * streams and tries elsewhere until SocksTimeout. */
		record(r, SOCKS5_TTL_EXPIRED, why);
		out->circuit_unusable = true;
		exclude(r, exit_id);
		break;
	case RETRY_CIRCUIT:
	case RETRY_NO_CIRCUIT:
		/* Network trouble, not this exit's answer: badrelays and the
		 * guard code learn about the hop; the stream just waits. */
		record(r, SOCKS5_GENERAL_FAILURE, why);
		break;
	case RETRY_NO_EXIT:
		/* Every exit left has failed this stream: its last error is the
		 * answer. With none failed, no exit allows the port at all: tor's
		 * "No Tor server allows exit to ... Rejecting." */
		if (!r->has_error || r->nexcluded == 0)
			record(r, SOCKS5_NOT_ALLOWED, why);
		end_with(out, r->code, r->why);
		return;
	}
	delay = RETRY_BACKOFF_FIRST_NS << (r->failures - 1 < 6 ? r->failures - 1 : 6);
	if (delay > RETRY_BACKOFF_MAX_NS)
		delay = RETRY_BACKOFF_MAX_NS;
	if (now_ns + delay >= r->deadline_ns) {
		end_with(out, r->code, r->why);
		return;
	}
	out->retry = true;
	out->at_ns = now_ns + delay;
}

void stream_retry_expired(const struct stream_retry *r, enum socks5_reply *code, const char **why)
{
	if (r->has_error) {
		*code = r->code;
		*why = r->why;
	} else {
		*code = SOCKS5_TTL_EXPIRED;
		*why = "no circuit and exit could carry the stream within SocksTimeout";
	}
}
