/* Control-port requests (app/control.h, struct control_req) answered by
 * every worker's shard: CLOSESTREAM, CLOSECIRCUIT and GETINFO
 * circuit-status / stream-status.
 *
 * For: posting the question to each worker (worker_post), running it there
 * against that shard's circuit manager (app/circmgr.h, owner shard only),
 * and gathering the parts on the session's worker, which answers when all
 * are in or after SHARDREQ_TIMEOUT_MS, whichever comes first.
 * Not for: parsing commands (app/control.c) or the circuits themselves.
 *
 * Why messages and not a snapshot each shard publishes: a close must act
 * on the owner shard anyway, and a snapshot (like circmgr's 1 s metrics
 * summary) would show a circuit for up to a second after CLOSECIRCUIT
 * answered 250, which controllers read as "not closed". The ids say
 * nothing about their shard (one process-wide counter), so every shard is
 * asked; ids are unique, so at most one finds a stream or circuit. The
 * session's worker never blocks: it answers from a message or a timer. */
#ifndef ONIONRING_APP_SHARDREQ_H
#define ONIONRING_APP_SHARDREQ_H

struct control_req;
struct runtime;
struct worker;

/* The most a request waits for a shard's part: a shard that has not
 * answered by then (stopping, or its message lost) is left out, and the
 * command answers 551 unless a part already found the id. */
#define SHARDREQ_TIMEOUT_MS 5000

/* Start answering req (borrowed until control_req_done) from every worker
 * of rt; w is the session's worker, where control_req_done runs. Return 0
 * (control_req_done follows, possibly before this returns) or -errno
 * (nothing was started). Worker w only. */
int shardreq_start(struct runtime *rt, struct worker *w, struct control_req *req);

/* Answer every request whose session lives on w and is still waiting
 * (result -ESHUTDOWN: 551, or nothing when the session is gone), so that
 * its bookkeeping is freed: after the worker's loop ends its timers never
 * fire. Parts still out on other shards are freed where they end. Call
 * from the runtime's worker_stopping callback. Worker w only. */
void shardreq_worker_stopping(struct worker *w);

#endif
