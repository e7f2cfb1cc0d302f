/* ORCONN: the control port's view of the channels onionring opens to
 * relays (control-spec 4.1.3 events, 3.9 GETINFO orconn-status).
 *
 * For: turning the channel pool's observer calls (net/chanpool.h; net/
 * knows nothing of the control port) into ORCONN events, mapping a
 * channel's close or failure to 4.1.3's reasons, and listing one shard's
 * channels as orconn-status lines. Not for: opening or closing channels
 * (net/chanpool.h), or gathering the lines of every shard (app/shardreq.h).
 *
 * Threads: orconn_observe and orconn_status_lines run on the pool's owner
 * shard; orconn_reason and orconn_longname on any thread. */
#ifndef ONIONRING_APP_ORCONN_H
#define ONIONRING_APP_ORCONN_H

#include <stddef.h>

#include "net/chanpool.h"

struct control_buf;

/* LongName (control-spec 2.x, 4.1.3): "$FP~nick" with the 40 upper-case
 * hex digits of t's RSA identity, or "$FP" when t has no nickname. Write
 * it into out (cap bytes; 62 are enough) and return out. */
char *orconn_longname(const struct relay_target *t, char *out, size_t cap);

/* The 4.1.3 Reason for a channel that ended with err (0 or -errno):
 * "DONE", "CONNECTREFUSED", "IDENTITY", "CONNECTRESET", "TIMEOUT",
 * "NOROUTE", "IOERROR", "RESOURCELIMIT" or "MISC". */
const char *orconn_reason(int err);

/* A chanpool_observe_fn: publish "650 ORCONN LongName STATUS [REASON=]
 * [NCIRCS=] ID=" for ev (REASON and NCIRCS on FAILED/CLOSED only, as
 * tor). arg is unused. Owner shard of the pool. */
void orconn_observe(void *arg, enum chanpool_chan_event ev, const struct chanpool_chan_info *ci);

/* Append "LongName LAUNCHED|CONNECTED\n" for every channel of p to out
 * (orconn-status, 3.9). Owner shard of p. */
void orconn_status_lines(const struct chanpool *p, struct control_buf *out);

#endif
