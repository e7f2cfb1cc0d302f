/* The process-wide event bus between the parts of onionring that see
 * things happen (circuit manager, streams, channels, bandwidth counters,
 * bootstrap, the log) and the control connections that asked to hear them
 * (SETEVENTS, control-spec 3.4 and 4.1).
 *
 * For: formatting each event once as its control-spec 4.1 line and
 * handing it to every subscribed control connection on that connection's
 * own worker. Not for: metrics, or anything a data path waits for.
 *
 * Cost when nobody listens: a publisher calls events_wanted(EVENT_X)
 * first, which is one relaxed atomic load; the publish functions check it
 * again themselves, so calling them unguarded is correct, just slower.
 * When someone listens: the line is formatted on the publisher's thread,
 * appended under a mutex to each subscriber's queue (in publish order),
 * and the subscriber's worker is woken with worker_post() when its queue
 * was empty. Queues are bounded (EVENTS_QUEUE_MAX lines): a controller
 * that does not read loses events rather than growing memory.
 *
 * Publishers may call from any thread. Subscribers (app/control.c) call
 * the subscribe functions on their own worker only. */
#ifndef ONIONRING_APP_EVENTS_H
#define ONIONRING_APP_EVENTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

struct worker;

/* Event kinds; the names are the SETEVENTS keywords. */
enum events_type {
	EVENT_CIRC = 0,
	EVENT_STREAM,
	EVENT_ORCONN,
	EVENT_BW,
	EVENT_STATUS_CLIENT,
	EVENT_DEBUG,
	EVENT_INFO,
	EVENT_NOTICE,
	EVENT_WARN,
	EVENT_ERR,
	EVENT_COUNT_
};

#define EVENT_BIT(e) (1u << (e))
/* Lines queued for one subscriber before newer events are dropped. */
#define EVENTS_QUEUE_MAX 4096

/* OR of every subscriber's mask. Written under the bus mutex, read with
 * relaxed loads: a stale read only formats one event nobody wants, or
 * misses one published while SETEVENTS was being answered. */
extern _Atomic unsigned events_mask_;

/* True when some control connection subscribed to e. Any thread. */
static inline bool events_wanted(enum events_type e)
{
	return (atomic_load_explicit(&events_mask_, memory_order_relaxed) & EVENT_BIT(e)) != 0;
}

/* The SETEVENTS keyword of e ("CIRC"), and the reverse (case-insensitive;
 * -1 when unknown). */
const char *events_name(enum events_type e);
int events_parse(const char *name, size_t len);

/* --- Publishers (any thread) ---------------------------------------------- */

/* Circuit status (4.1.1). */
enum events_circ_status {
	EVENTS_CIRC_LAUNCHED,
	EVENTS_CIRC_BUILT,
	EVENTS_CIRC_EXTENDED,
	EVENTS_CIRC_FAILED,
	EVENTS_CIRC_CLOSED,
};

/* Publish "650 CIRC <circ_id> <status> [<path>] [BUILD_FLAGS=...]
 * PURPOSE=<purpose> [REASON=<reason>]".
 * circ_id: the process-unique circuit id (nonzero; printed in decimal, the
 *   same id GETINFO circuit-status, STREAM events and CLOSECIRCUIT use).
 * path: the hops built so far as "$FP~nick,$FP~nick" (FP = 40 upper-case
 *   hex of the RSA identity, nick = the consensus nickname), or NULL/""
 *   before the first hop is done.
 * purpose: NULL means "GENERAL" (what the SOCKS circuits are).
 * reason: NULL, or for FAILED/CLOSED one of 4.1.1's reasons ("TIMEOUT",
 *   "DESTROYED", "FINISHED", "CONNECTFAILED", "REQUESTED", "INTERNAL", ...).
 * Every string is borrowed for the call. */
void events_publish_circ(uint64_t circ_id, enum events_circ_status status, const char *path,
			 const char *purpose, const char *reason);

/* Every optional field of a CIRC line onionring fills, in 4.1.1's order.
 * Strings are borrowed; NULL or "" leaves a field out. */
struct events_circ_info {
	const char *path;        /* as for events_publish_circ */
	const char *build_flags; /* "ONEHOP_TUNNEL", "NEED_CAPACITY,NEED_UPTIME", ... */
	const char *purpose;     /* NULL: "GENERAL" */
	uint64_t created_us;     /* TIME_CREATED, wall clock in microseconds since
				  * the epoch (ISOTime2Frac, UTC); 0 leaves it out */
	const char *reason;
};

/* The same with every field: "650 CIRC <circ_id> <status> [<path>]
 * [BUILD_FLAGS=...] PURPOSE=... [TIME_CREATED=...] [REASON=...]". The
 * circuit manager publishes this form, and GETINFO circuit-status (3.9)
 * answers each circuit with the same text minus "650 CIRC ". */
void events_publish_circ_info(uint64_t circ_id, enum events_circ_status status,
			      const struct events_circ_info *info);

/* Stream status (4.1.2). */
enum events_stream_status {
	EVENTS_STREAM_NEW,
	EVENTS_STREAM_SENTCONNECT,
	EVENTS_STREAM_SENTRESOLVE,
	EVENTS_STREAM_SUCCEEDED,
	EVENTS_STREAM_FAILED,
	EVENTS_STREAM_CLOSED,
	EVENTS_STREAM_DETACHED,
	EVENTS_STREAM_REMAP,
};

/* Publish "650 STREAM <stream_id> <status> <circ_id> <target>
 * [REASON=<reason>] [SOURCE_ADDR=<source>] PURPOSE=USER".
 * stream_id: process-unique, nonzero, decimal.
 * circ_id: the circuit carrying it, or 0 before it is attached (printed as
 *   "0", as tor does).
 * target: "host:port" as the SOCKS client asked (borrowed).
 * reason: NULL or a 4.1.2 reason ("DONE", "TIMEOUT", "EXITPOLICY",
 *   "CONNECTREFUSED", "MISC", "END", ...).
 * source: NULL or the SOCKS client's "addr:port". */
void events_publish_stream(uint64_t stream_id, enum events_stream_status status, uint64_t circ_id,
			   const char *target, const char *reason, const char *source);

/* The StreamStatus keyword of status ("SUCCEEDED"); "?" when unknown. */
const char *events_stream_status_name(enum events_stream_status status);

/* OR connection (channel) status (4.1.3). */
enum events_orconn_status {
	EVENTS_ORCONN_NEW,
	EVENTS_ORCONN_LAUNCHED,
	EVENTS_ORCONN_CONNECTED,
	EVENTS_ORCONN_FAILED,
	EVENTS_ORCONN_CLOSED,
};

/* Publish "650 ORCONN <target> <status> [REASON=<reason>] [NCIRCS=<n>]
 * ID=<conn_id>". target: "$FP~nick" when the relay is known, else
 * "addr:port". reason: NULL or 4.1.3's ("DONE", "CONNECTREFUSED",
 * "IDENTITY", "CONNECTRESET", "TIMEOUT", "NOROUTE", "IOERROR",
 * "RESOURCELIMIT", "MISC"). ncircs < 0: left out. conn_id:
 * process-unique, nonzero. app/orconn.h publishes these for every channel
 * the circuit managers' pools open. */
void events_publish_orconn(const char *target, enum events_orconn_status status, const char *reason,
			   int ncircs, uint64_t conn_id);

/* Publish "650 BW <read> <written>": bytes read and written in the last
 * second, over the whole process (4.1.4). The gateway's coordinator calls
 * it once a second. */
void events_publish_bw(uint64_t read, uint64_t written);

/* Publish "650 STATUS_CLIENT <severity> <action> <args>" (4.1.10).
 * severity: "NOTICE", "WARN" or "ERR". action: e.g. "BOOTSTRAP",
 * "CIRCUIT_ESTABLISHED", "CIRCUIT_NOT_ESTABLISHED", "ENOUGH_DIR_INFO".
 * args: the rest as KEY=VALUE words, already quoted where needed
 * (e.g. "PROGRESS=100 TAG=done SUMMARY=\"Done\""), or NULL. */
void events_publish_status_client(const char *severity, const char *action, const char *args);

/* Publish a log line as "650 <LEVEL> <msg>" (4.1.5); CR/LF in msg become
 * spaces. */
void events_publish_log(enum log_level level, const char *msg, size_t len);

/* A core/log.h hook that publishes every log line (its time and level
 * prefix removed). It also turns tor-style "Bootstrapped N% (tag): text"
 * notices (app/dirmgr.c writes them) into events_bootstrap() calls, so the
 * bootstrap state needs no second reporting path. Install with
 * log_set_hook(events_log_hook, NULL) before threads start. Safe against
 * being re-entered from inside. */
void events_log_hook(enum log_level level, const char *line, void *arg);

/* Record bootstrap progress (pct 0-100, tag e.g. "done", summary e.g.
 * "Done") and publish it as "STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=...
 * TAG=... SUMMARY=\"...\"" (4.1.10). At 100% also publish
 * CIRCUIT_ESTABLISHED once. Any thread. */
void events_bootstrap(int pct, const char *tag, const char *summary);
/* The last bootstrap state as GETINFO status/bootstrap-phase's value
 * ("NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY=\"Starting\"" until
 * something reports). Any thread. */
void events_bootstrap_phase(char *out, size_t cap);
/* Whether bootstrap reached 100% (status/circuit-established). */
bool events_bootstrap_done(void);

/* --- NEWNYM (SIGNAL NEWNYM, control-spec 3.7) ------------------------------ */

/* The NEWNYM epoch: SIGNAL NEWNYM increments it. The circuit manager
 * records the epoch in each circuit when it is built and gives new
 * streams only circuits of the current epoch (streams already attached
 * stay where they are). Relaxed loads: a stream that races the signal may
 * still get an old circuit, as in tor. */
extern _Atomic uint64_t events_newnym_epoch_;

static inline uint64_t events_newnym_epoch(void)
{
	return atomic_load_explicit(&events_newnym_epoch_, memory_order_relaxed);
}

/* The circuit manager calls this once it honours the epoch above; until
 * then SIGNAL NEWNYM answers 551 rather than pretend. Any thread. */
void events_newnym_set_supported(void);
/* Start a new epoch; return 0, or -ENOTSUP when nothing honours it. */
int events_newnym(void);

/* --- Subscribers (app/control.c; owner worker only) ------------------------ */

/* Called on the subscriber's worker with a batch of event lines, each a
 * whole "650 ...\r\n" line (borrowed for the call, concatenated). */
typedef void (*events_deliver_fn)(void *arg, const char *lines, size_t len);

struct events_sub;

/* Register a subscriber living on worker w (the caller's worker) with an
 * empty mask. Returns owned; free with events_unsubscribe(). */
struct events_sub *events_subscribe(struct worker *w, events_deliver_fn fn, void *arg);
/* Replace the subscriber's mask (EVENT_BIT()s). */
void events_set_mask(struct events_sub *s, unsigned mask);
unsigned events_mask(const struct events_sub *s);
/* Drop s and any lines still queued for it. NULL is fine. */
void events_unsubscribe(struct events_sub *s);

/* Format one event line into out (for tests and the log hook): return
 * its length (CRLF included) or 0 if it did not fit. */
size_t events_format_circ(char *out, size_t cap, uint64_t circ_id, enum events_circ_status status,
			  const char *path, const char *purpose, const char *reason);
size_t events_format_circ_info(char *out, size_t cap, uint64_t circ_id, enum events_circ_status status,
			       const struct events_circ_info *info);
size_t events_format_stream(char *out, size_t cap, uint64_t stream_id, enum events_stream_status status,
			    uint64_t circ_id, const char *target, const char *reason, const char *source);
size_t events_format_orconn(char *out, size_t cap, const char *target, enum events_orconn_status status,
			    const char *reason, int ncircs, uint64_t conn_id);

#endif
