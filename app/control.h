/* The control port (control-spec.txt): sessions of controllers such as
 * stem or nyx on the ControlPort listener.
 *
 * For: authentication (cookie, SAFECOOKIE, tor's hashed password, or none
 * when neither is configured), the commands PROTOCOLINFO, AUTHENTICATE,
 * AUTHCHALLENGE, GETINFO, GETCONF, SETCONF, RESETCONF, SETEVENTS, SIGNAL,
 * CLOSESTREAM, CLOSECIRCUIT and QUIT, and per-connection event
 * subscriptions (app/events.h). Not for: the wire framing (proto/control.h)
 * or the state it reports: the gateway answers through struct
 * control_backend, so this file knows nothing of circuits or listeners.
 *
 * Threads: a session lives on the worker that accepted it ("owner shard
 * only"). The backend's callbacks run on that worker too and must be safe
 * there (the gateway's take its own locks). */
#ifndef ONIONRING_APP_CONTROL_H
#define ONIONRING_APP_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"
#include "core/crypto.h"

struct config;
struct worker;
struct conn;

#define CONTROL_COOKIE_LEN 32
#define CONTROL_NONCE_LEN 32
/* tor's hashed password: "16:" + hex(salt[8] indicator[1] digest[20]). */
#define CONTROL_S2K_SPEC_LEN 9
#define CONTROL_S2K_TEXT_LEN (3 + 2 * (CONTROL_S2K_SPEC_LEN + SHA1_LEN))
/* The tor control dialect onionring speaks, reported as the version stem
 * and other controllers parse (GETINFO version, PROTOCOLINFO): tor's
 * version syntax with "(onionring-X.Y.Z)" after it. */
#define CONTROL_TOR_DIALECT "0.4.9.11"

/* A growable text buffer for GETINFO answers; aborts on OOM (control
 * plane). Owned by whoever declared it; free with control_buf_free. */
struct control_buf {
	char *p;
	size_t len, cap;
};
void control_buf_append(struct control_buf *b, const char *s, size_t len);
void control_buf_printf(struct control_buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
void control_buf_free(struct control_buf *b);

enum control_signal {
	CONTROL_SIGNAL_RELOAD,   /* RELOAD, HUP */
	CONTROL_SIGNAL_SHUTDOWN, /* SHUTDOWN, INT */
	CONTROL_SIGNAL_HALT,     /* HALT, TERM */
	CONTROL_SIGNAL_DUMP,     /* DUMP, USR1 */
	CONTROL_SIGNAL_NEWNYM,   /* NEWNYM: new streams get new circuits */
};

/* --- Requests answered later ------------------------------------------------
 * Circuits, streams and channels live on every worker's shard, and a
 * session must not block its own worker waiting for the others. So
 * CLOSESTREAM, CLOSECIRCUIT and GETINFO circuit-status / stream-status /
 * orconn-status become a request
 * that the backend answers with control_req_done() on the session's
 * worker. Until then the session answers nothing else and keeps the input
 * that follows (control-spec 2.3: replies come in command order). */
enum control_req_kind {
	CONTROL_REQ_CLOSE_STREAM,  /* id, reason (3.16) */
	CONTROL_REQ_CLOSE_CIRCUIT, /* id, if_unused (3.17) */
	CONTROL_REQ_STATUS,        /* want_circs / want_streams / want_orconns (3.9) */
};

struct control_session;

struct control_req {
	/* The question (control.c fills it). */
	enum control_req_kind kind;
	uint64_t id;
	uint8_t reason;
	bool if_unused;
	bool want_circs, want_streams, want_orconns;
	/* The answer (the backend fills it before control_req_done). */
	int result;                 /* 0; -ENOENT: no such id (552); else 551 */
	struct control_buf circs;   /* circuit-status lines, each ending in "\n" */
	struct control_buf streams; /* stream-status lines, each ending in "\n" */
	struct control_buf orconns; /* orconn-status lines, each ending in "\n" */
	/* control.c's own. */
	struct control_session *s;  /* NULL once the session is gone */
	bool done;
	char *args;                 /* GETINFO: its arguments, answered at the end */
	size_t args_len;
};

/* The backend's answer to req is complete: the session replies and goes
 * on with the input it kept, and req is freed. The session's worker only
 * (the w given to the request callback). */
void control_req_done(struct control_req *req);

/* What the gateway provides. Every callback is optional (NULL: the
 * commands that need it answer "551 ... not available" honestly) and runs
 * on the session's worker; arg is the backend's own. */
struct control_backend {
	void *arg;
	/* Answer GETINFO key (NUL-ended, borrowed) by appending its value to
	 * out. Return 0, -ENOENT for a key it does not know (552), or
	 * -ENOTSUP for a key it knows but cannot answer yet (551). */
	int (*getinfo)(void *arg, const char *key, struct control_buf *out);
	/* Act on a signal. SHUTDOWN and HALT run after "250 OK" went out (as
	 * tor does); the others run first and their result decides the reply:
	 * 0 -> "250 OK", -errno -> "551" (-ENOTSUP: not available yet). */
	int (*signal)(void *arg, enum control_signal sig);
	/* Start answering req (see struct control_req; borrowed until
	 * control_req_done). w is the session's worker (NULL in tests without
	 * one): control_req_done(req) must run there, exactly once, within a
	 * bounded time, and may run before this returns. Return 0, or -errno
	 * when the request cannot start (the command answers 551 and
	 * control_req_done must not be called). */
	int (*request)(void *arg, struct worker *w, struct control_req *req);
	/* Call fn(cfg, ctx) with the configuration in force, kept valid for
	 * the call. */
	void (*config_read)(void *arg, void (*fn)(const struct config *cfg, void *ctx), void *ctx);
	/* Put ncfg in force (takes ownership). Only keys for which
	 * config_key_is_runtime() holds differ from the current one. Return 0,
	 * or -errno with a message in err. */
	int (*config_replace)(void *arg, struct config *ncfg, char *err, size_t errlen);
};

/* Shared by every session of one ControlPort; read-only once the runtime
 * starts. */
struct control_server {
	struct control_backend be;
	bool cookie_auth;
	uint8_t cookie[CONTROL_COOKIE_LEN];
	char cookie_path[4096];
	bool have_passwords; /* HashedControlPassword was set at start */
};

/* Called with output for the controller (borrowed for the call). */
typedef void (*control_send_fn)(void *arg, const char *data, size_t len);
/* Called (with the send callback's arg) when the session must close
 * outside control_session_input, after a request's answer (QUIT or a
 * protocol error in the input it had kept). */
typedef void (*control_close_fn)(void *arg);

/* Make a session for one controller. srv is borrowed and must outlive it;
 * w may be NULL (tests: no event subscriptions are then possible, and
 * SETEVENTS answers 551). Returns owned. Owner worker only. */
struct control_session *control_session_new(const struct control_server *srv, struct worker *w,
					    control_send_fn send, void *send_arg);
/* Feed bytes from the controller (borrowed). Replies go out through the
 * send callback before it returns. Return false when the connection must
 * now be closed (after the queued replies are written). */
bool control_session_input(struct control_session *s, const uint8_t *data, size_t len);
void control_session_set_close(struct control_session *s, control_close_fn fn);
/* A request is waiting for the backend's answer. */
bool control_session_is_waiting(const struct control_session *s);
bool control_session_is_authenticated(const struct control_session *s);
/* Free s (NULL is fine); unsubscribes it from the event bus. A request
 * still out stays the backend's until control_req_done, which then only
 * frees it. */
void control_session_free(struct control_session *s);

/* The accept callback for ControlPort listeners; arg is the struct
 * control_server (borrowed, outlives the runtime). */
void control_accept(struct worker *w, struct conn *c, void *arg);

/* Make a fresh cookie in srv->cookie and write it to
 * datadir/control_auth_cookie with mode 0600, atomically (a temporary file
 * renamed over the old one). Return 0 or -errno with a message in err.
 * Main thread, before the runtime starts. */
int control_cookie_write(struct control_server *srv, const char *datadir, char *err, size_t errlen);

/* tor's hashed password (control-spec 5.1; RFC 2440 iterated and salted
 * S2K with SHA-1): write "16:HEX" for password pw with salt and count
 * indicator c into out (CONTROL_S2K_TEXT_LEN + 1 bytes). Any thread. */
void control_s2k_hash(const void *pw, size_t len, const uint8_t salt[8], uint8_t c, char *out);
/* True when pw matches hashed ("16:HEX"); false for any malformed
 * hashed. Constant time in the digest comparison. Any thread. */
bool control_s2k_check(const char *hashed, const void *pw, size_t len);

/* SAFECOOKIE (control-spec 3.24): HMAC-SHA256 with the server-to-
 * controller (to_server false) or controller-to-server key over
 * cookie | client_nonce | server_nonce. Any thread. */
void control_safecookie_hmac(bool to_server, const uint8_t cookie[CONTROL_COOKIE_LEN], const uint8_t *client_nonce,
			     size_t client_len, const uint8_t server_nonce[CONTROL_NONCE_LEN],
			     uint8_t out[SHA256_LEN]);

#endif
