/* Control-port sessions (see control.h): authentication, the commands and
 * their replies. Not for framing (proto/control.c) or for the state the
 * commands report (the gateway's struct control_backend). */
#include "app/control.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/events.h"
#include "app/netdir.h"
#include "core/base64.h"
#include "core/config.h"
#include "core/log.h"
#include "net/worker.h"
#include "onionring_build.h"
#include "proto/control.h"

/* Input kept while a command is incomplete: one line or one data block. */
#define INBUF_MAX (CONTROL_LINE_MAX + CONTROL_DATA_MAX)
/* Input kept while a request waits for the backend (control.h). A
 * controller waits for each reply (stem does); one that pipelines more
 * than this meanwhile is dropped rather than buffered without bound. */
#define BACKLOG_MAX (1u << 20)
#define ARG_MAX CONTROL_LINE_MAX

/* --- Text buffers ----------------------------------------------------------- */

static void buf_reserve(struct control_buf *b, size_t more)
{
	size_t ncap;
	char *np;

	if (b->cap - b->len > more)
		return;
	ncap = b->cap ? b->cap : 256;
	while (ncap - b->len <= more)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (!np)
		abort(); /* control-plane allocation (STYLE.md, Memory) */
	b->p = np;
	b->cap = ncap;
}

void control_buf_append(struct control_buf *b, const char *s, size_t len)
{
	buf_reserve(b, len + 1);
	memcpy(b->p + b->len, s, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void control_buf_printf(struct control_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void control_buf_free(struct control_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* --- Authentication primitives ------------------------------------------------ */

void control_s2k_hash(const void *pw, size_t len, const uint8_t salt[8], uint8_t c, char *out)
{
	/* control-spec 5.1 / RFC 2440 3.6.1.3: hash salt|password repeated
	 * until count bytes went in (the last copy cut short). */
	uint64_t count = (uint64_t)(16 + (c & 15)) << ((c >> 4) + 6);
	uint8_t spec[CONTROL_S2K_SPEC_LEN + SHA1_LEN];
	struct crypto_sha1 h;

	memcpy(spec, salt, 8);
	spec[8] = c;
	crypto_sha1_init(&h);
	while (count > 0) {
		size_t n = count < 8 ? (size_t)count : 8;

		crypto_sha1_update(&h, salt, n);
		count -= n;
		n = count < len ? (size_t)count : len;
		crypto_sha1_update(&h, pw, n);
		count -= n;
	}
	crypto_sha1_peek(&h, spec + CONTROL_S2K_SPEC_LEN);
	crypto_sha1_clear(&h);
	memcpy(out, "16:", 3);
	for (size_t i = 0; i < sizeof(spec); i++)
		sprintf(out + 3 + 2 * i, "%02X", spec[i]);
	crypto_wipe(spec, sizeof(spec));
}

bool control_s2k_check(const char *hashed, const void *pw, size_t len)
{
	uint8_t spec[CONTROL_S2K_SPEC_LEN + SHA1_LEN], want[SHA1_LEN];
	char mine[CONTROL_S2K_TEXT_LEN + 1];
	bool ok;

	if (strlen(hashed) != CONTROL_S2K_TEXT_LEN || strncmp(hashed, "16:", 3) != 0 ||
	    control_hex_decode(hashed + 3, CONTROL_S2K_TEXT_LEN - 3, spec, sizeof(spec)) != (int)sizeof(spec))
		return false;
	control_s2k_hash(pw, len, spec, spec[8], mine);
	control_hex_decode(mine + 3, CONTROL_S2K_TEXT_LEN - 3, spec, sizeof(spec));
	memcpy(want, spec + CONTROL_S2K_SPEC_LEN, SHA1_LEN);
	control_hex_decode(hashed + 3, CONTROL_S2K_TEXT_LEN - 3, spec, sizeof(spec));
	ok = crypto_memeq(want, spec + CONTROL_S2K_SPEC_LEN, SHA1_LEN);
	crypto_wipe(mine, sizeof(mine));
	crypto_wipe(want, sizeof(want));
	return ok;
}

void control_safecookie_hmac(bool to_server, const uint8_t cookie[CONTROL_COOKIE_LEN], const uint8_t *client_nonce,
			     size_t client_len, const uint8_t server_nonce[CONTROL_NONCE_LEN],
			     uint8_t out[SHA256_LEN])
{
	/* control-spec 3.24: the key is the constant string, the message
	 * CookieString | ClientNonce | ServerNonce. */
	static const char s2c[] = "Tor safe cookie authentication server-to-controller hash";
	static const char c2s[] = "Tor safe cookie authentication controller-to-server hash";
	uint8_t msg[CONTROL_COOKIE_LEN + ARG_MAX + CONTROL_NONCE_LEN];

	if (client_len > ARG_MAX)
		client_len = ARG_MAX;
	memcpy(msg, cookie, CONTROL_COOKIE_LEN);
	memcpy(msg + CONTROL_COOKIE_LEN, client_nonce, client_len);
	memcpy(msg + CONTROL_COOKIE_LEN + client_len, server_nonce, CONTROL_NONCE_LEN);
	if (to_server)
		crypto_hmac_sha256(c2s, sizeof(c2s) - 1, msg, CONTROL_COOKIE_LEN + client_len + CONTROL_NONCE_LEN, out);
	else
		crypto_hmac_sha256(s2c, sizeof(s2c) - 1, msg, CONTROL_COOKIE_LEN + client_len + CONTROL_NONCE_LEN, out);
	crypto_wipe(msg, sizeof(msg));
}

int control_cookie_write(struct control_server *srv, const char *datadir, char *err, size_t errlen)
{
	char tmp[sizeof(srv->cookie_path) + 8];
	int fd, r = 0;

	if (snprintf(srv->cookie_path, sizeof(srv->cookie_path), "%s/control_auth_cookie", datadir) >=
	    (int)sizeof(srv->cookie_path)) {
		snprintf(err, errlen, "DataDirectory path too long");
		return -ENAMETOOLONG;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", srv->cookie_path);
	crypto_rand(srv->cookie, sizeof(srv->cookie));
	if (mkdir(datadir, 0700) < 0 && errno != EEXIST)
		r = -errno;
	fd = r < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && r == 0)
		r = -errno;
	if (fd >= 0) {
		/* O_CREAT's mode is masked by the umask; make sure of 0600. */
		if (fchmod(fd, 0600) < 0 || write(fd, srv->cookie, sizeof(srv->cookie)) != (ssize_t)sizeof(srv->cookie) ||
		    fsync(fd) < 0)
			r = -errno ? -errno : -EIO;
		if (close(fd) < 0 && r == 0)
			r = -errno;
		if (r == 0 && rename(tmp, srv->cookie_path) < 0)
			r = -errno;
		if (r < 0)
			unlink(tmp);
	}
	if (r < 0)
		snprintf(err, errlen, "cannot write the control cookie %s: %s", srv->cookie_path, strerror(-r));
	else
		srv->cookie_auth = true;
	return r;
}

/* --- Sessions ------------------------------------------------------------------ */

enum auth_state {
	AUTH_NONE,
	AUTH_CHALLENGED, /* AUTHCHALLENGE answered: only AUTHENTICATE may follow */
	AUTH_DONE,
};

struct control_session {
	const struct control_server *srv;
	struct worker *w;
	control_send_fn send;
	void *send_arg;
	enum auth_state auth;
	bool sent_protocolinfo;
	bool close;                 /* close once the replies are out */
	struct events_sub *events;
	uint8_t client_nonce[ARG_MAX];
	size_t client_nonce_len;
	uint8_t server_nonce[CONTROL_NONCE_LEN];
	struct control_buf out;     /* replies of the current input batch */
	struct control_req *req;    /* waiting for the backend's answer */
	bool starting;              /* inside the backend's request callback */
	struct control_buf backlog; /* input that arrived while req was out */
	control_close_fn on_close;
	size_t in_len;
	uint8_t in[INBUF_MAX];
	char arg[ARG_MAX];          /* decoded argument scratch */
};

static void PRINTF_LIKE(4, 5) reply(struct control_session *s, unsigned code, char sep, const char *fmt, ...)
{
	char text[CONTROL_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(text))
		n = sizeof(text) - 1;
	buf_reserve(&s->out, (size_t)n + 8);
	struct wr w = wr_init(s->out.p + s->out.len, s->out.cap - s->out.len);
	control_reply_line(&w, code, sep, text, (size_t)n);
	s->out.len += w.len;
}

static void reply_ok(struct control_session *s)
{
	reply(s, 250, ' ', "OK");
}

/* Answer and close: what tor does for anything wrong before AUTHENTICATE
 * succeeded (control-spec 3.5). */
static void PRINTF_LIKE(3, 4) reply_close(struct control_session *s, unsigned code, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reply(s, code, ' ', "%s", text);
	s->close = true;
}

static void flush(struct control_session *s)
{
	if (s->out.len) {
		s->send(s->send_arg, s->out.p, s->out.len);
		s->out.len = 0;
	}
}

/* Events arrive here on the session's worker (app/events.h). */
static void deliver_events(void *arg, const char *lines, size_t len)
{
	struct control_session *s = arg;

	if (!s->close)
		s->send(s->send_arg, lines, len);
}

struct control_session *control_session_new(const struct control_server *srv, struct worker *w,
					    control_send_fn send, void *send_arg)
{
	struct control_session *s = calloc(1, sizeof(*s));

	if (!s)
		abort(); /* control-plane allocation (STYLE.md, Memory) */
	s->srv = srv;
	s->w = w;
	s->send = send;
	s->send_arg = send_arg;
	return s;
}

bool control_session_is_authenticated(const struct control_session *s)
{
	return s->auth == AUTH_DONE;
}

void control_session_set_close(struct control_session *s, control_close_fn fn)
{
	s->on_close = fn;
}

bool control_session_is_waiting(const struct control_session *s)
{
	return s->req != NULL;
}

void control_session_free(struct control_session *s)
{
	if (!s)
		return;
	if (s->req)
		s->req->s = NULL; /* the backend still holds it: control_req_done frees it */
	events_unsubscribe(s->events);
	control_buf_free(&s->out);
	control_buf_free(&s->backlog);
	crypto_wipe(s, sizeof(*s));
	free(s);
}

/* Read the next argument; false at the end. A malformed one answers 512
 * and sets *bad. */
static bool next_arg(struct control_session *s, struct control_args *a, struct control_arg *arg, bool *bad)
{
	const char *why;
	enum parse_result r = control_args_next(a, arg, s->arg, sizeof(s->arg), &why);

	if (r == PARSE_INVALID) {
		reply(s, 512, ' ', "Invalid argument: %s", why);
		*bad = true;
	}
	return r == PARSE_OK;
}

/* --- Authentication commands ---------------------------------------------------- */

struct pw_ctx {
	const uint8_t *pw;
	size_t len;
	size_t n;
	bool matched;
};

static void pw_visit(const struct config *cfg, void *arg)
{
	struct pw_ctx *p = arg;

	p->n = cfg->hashed_control_password.n;
	for (size_t i = 0; p->pw && i < p->n; i++)
		if (control_s2k_check(cfg->hashed_control_password.v[i], p->pw, p->len))
			p->matched = true;
}

/* Count the configured passwords and, with pw, check it against them. */
static void passwords(const struct control_session *s, struct pw_ctx *p)
{
	if (s->srv->be.config_read)
		s->srv->be.config_read(s->srv->be.arg, pw_visit, p);
	else
		p->n = s->srv->have_passwords ? 1 : 0;
}

static void cmd_protocolinfo(struct control_session *s, const struct control_cmd *c)
{
	struct control_args a = control_args_init(c->args, c->args_len);
	struct control_arg arg;
	struct pw_ctx pw = { 0 };
	char methods[64] = "";
	bool bad = false;
	struct wr w;

	if (s->auth != AUTH_DONE && s->sent_protocolinfo) {
		reply_close(s, 514, "No more PROTOCOLINFOs.");
		return;
	}
	while (next_arg(s, &a, &arg, &bad)) {
		if (arg.has_value || arg.quoted || strspn(arg.value, "0123456789") != arg.value_len) {
			reply(s, 513, ' ', "No such version \"%s\"", arg.value);
			bad = true;
			break;
		}
	}
	if (bad) {
		s->close = s->auth != AUTH_DONE;
		return;
	}
	s->sent_protocolinfo = true;
	passwords(s, &pw);
	if (s->srv->cookie_auth)
		strcat(methods, "COOKIE,SAFECOOKIE");
	if (pw.n)
		strcat(methods, methods[0] ? ",HASHEDPASSWORD" : "HASHEDPASSWORD");
	if (!methods[0])
		strcat(methods, "NULL");
	reply(s, 250, '-', "PROTOCOLINFO 1");
	if (s->srv->cookie_auth) {
		char q[sizeof(s->srv->cookie_path) * 4 + 3];

		w = wr_init(q, sizeof(q) - 1);
		control_quote(&w, s->srv->cookie_path, strlen(s->srv->cookie_path));
		q[w.len] = '\0';
		reply(s, 250, '-', "AUTH METHODS=%s COOKIEFILE=%s", methods, q);
	} else {
		reply(s, 250, '-', "AUTH METHODS=%s", methods);
	}
	reply(s, 250, '-', "VERSION Tor=\"%s\"", CONTROL_TOR_DIALECT);
	reply_ok(s);
}

/* Decode an AUTHENTICATE/AUTHCHALLENGE token: hex or a QuotedString. */
static int auth_token(const struct control_arg *arg, uint8_t *out, size_t cap)
{
	if (arg->quoted) {
		if (arg->value_len > cap)
			return -1;
		memcpy(out, arg->value, arg->value_len);
		return (int)arg->value_len;
	}
	return control_hex_decode(arg->value, arg->value_len, out, cap);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02X", p[i]);
}

static void cmd_authchallenge(struct control_session *s, const struct control_cmd *c)
{
	struct control_args a = control_args_init(c->args, c->args_len);
	struct control_arg arg;
	uint8_t hash[SHA256_LEN];
	char hhex[2 * SHA256_LEN + 1], nhex[2 * CONTROL_NONCE_LEN + 1];
	bool bad = false;
	int n;

	if (s->auth == AUTH_DONE) {
		reply(s, 513, ' ', "AUTHCHALLENGE is only valid before authentication");
		return;
	}
	if (s->auth == AUTH_CHALLENGED) {
		reply_close(s, 514, "No more AUTHCHALLENGEs.");
		return;
	}
	if (!next_arg(s, &a, &arg, &bad) || strcasecmp(arg.value, "SAFECOOKIE") != 0 || arg.quoted) {
		if (!bad)
			reply(s, 513, ' ', "AUTHCHALLENGE only supports SAFECOOKIE authentication");
		s->close = true;
		return;
	}
	if (!s->srv->cookie_auth) {
		reply_close(s, 513, "Cookie authentication is disabled");
		return;
	}
	if (!next_arg(s, &a, &arg, &bad) || (n = auth_token(&arg, s->client_nonce, sizeof(s->client_nonce))) < 0 ||
	    next_arg(s, &a, &arg, &bad)) {
		if (!bad)
			reply(s, 512, ' ', "AUTHCHALLENGE needs SAFECOOKIE and one client nonce (hex or quoted)");
		s->close = true;
		return;
	}
	s->client_nonce_len = (size_t)n;
	crypto_rand(s->server_nonce, sizeof(s->server_nonce));
	control_safecookie_hmac(false, s->srv->cookie, s->client_nonce, s->client_nonce_len, s->server_nonce, hash);
	hex(hash, sizeof(hash), hhex);
	hex(s->server_nonce, sizeof(s->server_nonce), nhex);
	reply(s, 250, ' ', "AUTHCHALLENGE SERVERHASH=%s SERVERNONCE=%s", hhex, nhex);
	s->auth = AUTH_CHALLENGED;
}

/* Check the token against whichever methods are on. */
static bool auth_check(struct control_session *s, const uint8_t *tok, size_t len)
{
	struct pw_ctx pw = { .pw = tok, .len = len };
	uint8_t want[SHA256_LEN];
	bool ok;

	if (s->auth == AUTH_CHALLENGED) {
		/* 3.24: after AUTHCHALLENGE only the controller's HMAC counts. */
		control_safecookie_hmac(true, s->srv->cookie, s->client_nonce, s->client_nonce_len, s->server_nonce,
					want);
		ok = len == SHA256_LEN && crypto_memeq(want, tok, SHA256_LEN);
		crypto_wipe(want, sizeof(want));
		return ok;
	}
	passwords(s, &pw);
	if (!s->srv->cookie_auth && pw.n == 0)
		return true; /* METHODS=NULL */
	if (s->srv->cookie_auth && len == CONTROL_COOKIE_LEN && crypto_memeq(tok, s->srv->cookie, len))
		return true;
	return pw.matched;
}

static void cmd_authenticate(struct control_session *s, const struct control_cmd *c)
{
	struct control_args a = control_args_init(c->args, c->args_len);
	struct control_arg arg;
	uint8_t tok[ARG_MAX];
	bool bad = false;
	int n = 0;

	if (next_arg(s, &a, &arg, &bad)) {
		n = auth_token(&arg, tok, sizeof(tok));
		if (n < 0 || next_arg(s, &a, &arg, &bad)) {
			if (!bad)
				reply(s, 512, ' ', "Invalid authentication token: hex or one quoted string");
			s->close = s->auth != AUTH_DONE;
			return;
		}
	} else if (bad) {
		s->close = s->auth != AUTH_DONE;
		return;
	}
	if (!auth_check(s, tok, (size_t)n)) {
		crypto_wipe(tok, sizeof(tok));
		reply_close(s, 515, "Authentication failed: Password did not match HashedControlPassword *or* authentication cookie.");
		return;
	}
	crypto_wipe(tok, sizeof(tok));
	s->auth = AUTH_DONE;
	reply_ok(s);
}

static void cmd_quit(struct control_session *s, const struct control_cmd *c)
{
	(void)c;
	reply(s, 250, ' ', "closing connection");
	s->close = true;
}

/* --- Configuration as text (GETCONF, SETCONF) ---------------------------------- */

typedef void (*emit_fn)(void *ctx, const char *v);

static void render_ports(const struct config_ports *p, emit_fn emit, void *ctx)
{
	char v[4200], port[8];

	if (p->n == 0)
		emit(ctx, "0");
	for (size_t i = 0; i < p->n; i++) {
		snprintf(port, sizeof(port), "%u", p->v[i].port);
		snprintf(v, sizeof(v), "%s%s%s:%s%s%s", p->v[i].is_ipv6 ? "[" : "", p->v[i].addr,
			 p->v[i].is_ipv6 ? "]" : "", p->v[i].port_auto ? "auto" : port, p->v[i].flags ? " " : "",
			 p->v[i].flags ? p->v[i].flags : "");
		emit(ctx, v);
	}
}

static void render_logs(const struct config_logs *l, emit_fn emit, void *ctx)
{
	static const char *const sinks[] = { "stderr", "stdout", "file" };
	char v[4200];

	for (size_t i = 0; i < l->n; i++) {
		snprintf(v, sizeof(v), "%s-%s %s%s%s", log_level_name(l->v[i].min), log_level_name(l->v[i].max),
			 sinks[l->v[i].sink], l->v[i].path ? " " : "", l->v[i].path ? l->v[i].path : "");
		emit(ctx, v);
	}
}

/* Call emit(ctx, value) for every value k has in cfg, as config text that
 * config_load_string() reads back to the same value. Unset strings and
 * empty lists emit nothing. */
static void render_key(const struct config *cfg, const struct config_key *k,
		       void (*emit)(void *ctx, const char *v), void *ctx)
{
	const void *f = (const char *)cfg + k->offset;
	char v[4200];

	switch (k->type) {
	case CONFIG_T_STRING:
		if (*(char *const *)f)
			emit(ctx, *(char *const *)f);
		break;
	case CONFIG_T_BOOL:
		emit(ctx, *(const bool *)f ? "1" : "0");
		break;
	case CONFIG_T_INT:
	case CONFIG_T_INTERVAL: /* seconds: a bare number is read as seconds */
		snprintf(v, sizeof(v), "%lld", (long long)*(const int64_t *)f);
		emit(ctx, v);
		break;
	case CONFIG_T_MEMORY:
		snprintf(v, sizeof(v), "%llu bytes", (unsigned long long)*(const uint64_t *)f);
		emit(ctx, v);
		break;
	case CONFIG_T_PORTS:
		render_ports(f, emit, ctx);
		break;
	case CONFIG_T_LINES: {
		const struct config_lines *l = f;

		for (size_t i = 0; i < l->n; i++)
			emit(ctx, l->v[i]);
		break;
	}
	case CONFIG_T_NODES: { /* one comma-separated value, as tor shows it */
		const struct config_lines *l = f;
		size_t n = 0;

		for (size_t i = 0; i < l->n && n < sizeof(v); i++)
			n += (size_t)snprintf(v + n, sizeof(v) - n, "%s%s", i ? "," : "", l->v[i]);
		if (l->n)
			emit(ctx, v);
		break;
	}
	case CONFIG_T_LOG:
		render_logs(f, emit, ctx);
		break;
	}
}

/* One config line "Key value", quoted when the value needs it. */
static void conf_line(struct control_buf *b, const char *key, const char *v)
{
	bool plain = v[0] != '"' && strcspn(v, "#\\\"\r\n") == strlen(v);

	control_buf_printf(b, "%s ", key);
	if (plain) {
		control_buf_printf(b, "%s\n", v);
		return;
	}
	control_buf_append(b, "\"", 1);
	for (const char *p = v; *p; p++) {
		if (*p == '\n')
			control_buf_append(b, "\\n", 2);
		else if (*p == '\r')
			control_buf_append(b, "\\r", 2);
		else if (*p == '"' || *p == '\\')
			control_buf_printf(b, "\\%c", *p);
		else
			control_buf_append(b, p, 1);
	}
	control_buf_append(b, "\"\n", 2);
}

/* GETCONF: "250-Key=value" lines gathered into s->out by the visitor. */
struct getconf_ctx {
	struct control_session *s;
	const struct config_key **keys;
	size_t n;
	struct control_buf lines; /* one "Key[=value]" per line */
	const char *key;
	bool any;
};

static void getconf_emit(void *arg, const char *v)
{
	struct getconf_ctx *g = arg;

	control_buf_printf(&g->lines, "%s=%s\n", g->key, v);
	g->any = true;
}

static void getconf_visit(const struct config *cfg, void *arg)
{
	struct getconf_ctx *g = arg;

	for (size_t i = 0; i < g->n; i++) {
		g->key = g->keys[i]->name;
		g->any = false;
		render_key(cfg, g->keys[i], getconf_emit, g);
		if (!g->any)
			control_buf_printf(&g->lines, "%s\n", g->key);
	}
}

#define MAX_KEYS 64

static void cmd_getconf(struct control_session *s, const struct control_cmd *c)
{
	struct control_args a = control_args_init(c->args, c->args_len);
	const struct config_key *keys[MAX_KEYS];
	struct getconf_ctx g = { .s = s, .keys = keys };
	struct control_arg arg;
	bool bad = false;

	while (next_arg(s, &a, &arg, &bad)) {
		const struct config_key *k = config_key_find(arg.value);

		if (!k || arg.has_value) {
			reply(s, 552, ' ', "Unrecognized configuration key \"%s\"", arg.value);
			return;
		}
		if (g.n == MAX_KEYS) {
			reply(s, 512, ' ', "Too many keys (at most %d)", MAX_KEYS);
			return;
		}
		keys[g.n++] = k;
	}
	if (bad)
		return;
	if (g.n == 0) {
		reply(s, 512, ' ', "GETCONF needs at least one key");
		return;
	}
	if (!s->srv->be.config_read) {
		reply(s, 551, ' ', "Configuration not available");
		return;
	}
	s->srv->be.config_read(s->srv->be.arg, getconf_visit, &g);
	for (char *line = g.lines.p, *nl; line && (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		reply(s, 250, nl[1] ? '-' : ' ', "%s", line);
	}
	control_buf_free(&g.lines);
}

/* SETCONF / RESETCONF: rebuild the whole configuration as text with the
 * named keys replaced, load it (the one parser checks the values), and
 * refuse a change to a key that needs a restart. The new configuration is
 * built from the one in force during config_read; a SIGHUP or another
 * controller's SETCONF landing between that and config_replace is
 * overwritten (last writer wins, as in tor). */
struct setconf_ctx {
	const struct config_key *keys[MAX_KEYS];
	size_t n;
	const struct config_key *cur; /* the key setconf_emit writes */
	struct control_buf text;   /* the new config */
	struct control_buf newvals;/* "Key value" lines of the command */
	struct config *ncfg;
	char err[CONFIG_ERR_MAX];
	unsigned code;             /* 0 ok, else the error reply's code */
};

static void setconf_emit(void *arg, const char *v)
{
	struct setconf_ctx *sc = arg;

	conf_line(&sc->text, sc->cur->name, v);
}

static bool setconf_named(const struct setconf_ctx *sc, const struct config_key *k)
{
	for (size_t i = 0; i < sc->n; i++)
		if (sc->keys[i] == k)
			return true;
	return false;
}

static void setconf_visit(const struct config *cfg, void *arg)
{
	struct setconf_ctx *sc = arg;
	const struct config_key *table, *changed[MAX_KEYS];
	size_t nt, nc;

	table = config_keys(&nt);
	for (size_t i = 0; i < nt; i++) {
		if (setconf_named(sc, &table[i]))
			continue;
		sc->cur = &table[i];
		render_key(cfg, &table[i], setconf_emit, sc);
	}
	if (sc->newvals.len)
		control_buf_append(&sc->text, sc->newvals.p, sc->newvals.len);
	if (config_load_string(sc->text.p ? sc->text.p : "", sc->text.len, "SETCONF", &sc->ncfg, sc->err,
			       sizeof(sc->err)) < 0) {
		sc->code = 513;
		return;
	}
	nc = config_diff(cfg, sc->ncfg, changed, MAX_KEYS);
	for (size_t i = 0; i < nc && i < MAX_KEYS; i++) {
		if (!config_key_is_runtime(changed[i])) {
			snprintf(sc->err, sizeof(sc->err), "%s cannot change while onionring runs", changed[i]->name);
			sc->code = 553;
			config_free(sc->ncfg);
			return;
		}
	}
}

/* Parse "Key[=Value]" arguments into sc; false after replying. */
static bool setconf_args(struct control_session *s, const struct control_cmd *c, struct setconf_ctx *sc, bool reset)
{
	struct control_args a = control_args_init(c->args, c->args_len);
	struct control_arg arg;
	bool bad = false;

	while (next_arg(s, &a, &arg, &bad)) {
		char name[128];
		const struct config_key *k;

		snprintf(name, sizeof(name), "%.*s", (int)(arg.key_len < 127 ? arg.key_len : 127), arg.key);
		k = config_key_find(name);
		if (!k || (reset && arg.has_value)) {
			reply(s, 552, ' ', k ? "RESETCONF takes key names only: \"%s\"" :
					       "Unrecognized option: Unknown option '%s'.  Failing.", name);
			return false;
		}
		if (sc->n == MAX_KEYS) {
			reply(s, 512, ' ', "Too many keys (at most %d)", MAX_KEYS);
			return false;
		}
		if (!setconf_named(sc, k))
			sc->keys[sc->n++] = k;
		if (arg.has_value && arg.value_len > 0)
			conf_line(&sc->newvals, k->name, arg.value);
	}
	if (!bad && sc->n == 0)
		reply(s, 512, ' ', "%s needs at least one key", reset ? "RESETCONF" : "SETCONF");
	return !bad && sc->n > 0;
}

static void setconf(struct control_session *s, const struct control_cmd *c, bool reset)
{
	struct setconf_ctx *sc = calloc(1, sizeof(*sc));

	if (!sc)
		abort(); /* control-plane allocation (STYLE.md, Memory) */
	if (!setconf_args(s, c, sc, reset))
		goto out;
	if (!s->srv->be.config_read || !s->srv->be.config_replace) {
		reply(s, 551, ' ', "Configuration cannot change here");
		goto out;
	}
	s->srv->be.config_read(s->srv->be.arg, setconf_visit, sc);
	if (sc->code == 513)
		reply(s, 513, ' ', "Unacceptable option value: %s", sc->err);
	else if (sc->code == 553)
		reply(s, 553, ' ', "Transition not allowed: %s", sc->err);
	else if (s->srv->be.config_replace(s->srv->be.arg, sc->ncfg, sc->err, sizeof(sc->err)) < 0)
		reply(s, 553, ' ', "Transition not allowed: %s", sc->err);
	else
		reply_ok(s);
out:
	control_buf_free(&sc->text);
	control_buf_free(&sc->newvals);
	free(sc);
}

static void cmd_setconf(struct control_session *s, const struct control_cmd *c)
{
	setconf(s, c, false);
}

static void cmd_resetconf(struct control_session *s, const struct control_cmd *c)
{
	setconf(s, c, true);
}

/* --- GETINFO, SETEVENTS, SIGNAL, CLOSESTREAM, CLOSECIRCUIT --------------------- */

/* The "r"/"a"/"s"/"w" lines of one router (control-spec 3.9 "ns/" keys, in
 * dir-spec 3.4.1's format). A microdescriptor consensus has no descriptor
 * digest: it is written as zeros, as tor does for microdesc routers. */
static void ns_router(struct control_buf *out, const struct consensus_router *r)
{
	static const char *const flags[] = { "Authority", "BadExit", "Exit", "Fast", "Guard",
					     "HSDir", "MiddleOnly", "NoEdConsensus", "Running", "Stable",
					     "StaleDesc", "Sybil", "V2Dir", "Valid" };
	char id[32], when[32], v6[48];
	struct tm tm;

	base64_encode(id, sizeof(id), r->identity, sizeof(r->identity), false);
	gmtime_r(&r->published, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	control_buf_printf(out, "r %s %s AAAAAAAAAAAAAAAAAAAAAAAAAAA %s %u.%u.%u.%u %u %u\n", r->nickname, id, when,
			   r->ipv4 >> 24, (r->ipv4 >> 16) & 255, (r->ipv4 >> 8) & 255, r->ipv4 & 255, r->or_port,
			   r->dir_port);
	if (r->has_ipv6 && inet_ntop(AF_INET6, r->ipv6, v6, sizeof(v6)))
		control_buf_printf(out, "a [%s]:%u\n", v6, r->ipv6_port);
	control_buf_append(out, "s", 1);
	for (size_t i = 0; i < ARRAY_LEN(flags); i++)
		if (r->flags & (1u << i))
			control_buf_printf(out, " %s", flags[i]);
	control_buf_printf(out, "\nw Bandwidth=%u%s\n", r->bandwidth, r->bw_unmeasured ? " Unmeasured=1" : "");
}

/* The microdescriptor text of router i (md/ keys, 3.9): as the relay's
 * directory sent it, each line ending in "\n"; nothing when the snapshot
 * has none for it (control-spec: "Empty if we have no microdescriptor"). */
static void md_router(struct control_buf *out, const struct netdir *d, size_t i)
{
	const struct microdesc *md = netdir_md(d, i);

	if (!md || md->text_len == 0)
		return;
	control_buf_append(out, md->text, md->text_len);
	if (md->text[md->text_len - 1] != '\n')
		control_buf_append(out, "\n", 1);
}

/* ns/ and md/ keys (3.9) from the published directory snapshot: "all",
 * "id/<40 hex, optional $>" or "name/<nickname>" after the prefix (3
 * bytes). -ENOENT (552) for another form, a malformed fingerprint or a
 * relay the consensus does not list; -ENOTSUP (551) before the first
 * snapshot. */
static int getinfo_dir(const char *key, struct control_buf *out)
{
	bool md = key[0] == 'm';
	const char *want = key + 3;
	uint8_t fp[SHA1_LEN];
	bool all = strcmp(want, "all") == 0, by_id = strncmp(want, "id/", 3) == 0;
	struct netdir *d;
	int found = 0;

	if (!all && !by_id && (strncmp(want, "name/", 5) != 0 || want[5] == '\0'))
		return -ENOENT;
	if (by_id && (strlen(want + 3) != 2 * SHA1_LEN + (want[3] == '$') ||
		      control_hex_decode(want + 3 + (want[3] == '$'), 2 * SHA1_LEN, fp, sizeof(fp)) != SHA1_LEN))
		return -ENOENT;
	d = netdir_slot_acquire(netdir_global());
	if (!d)
		return -ENOTSUP; /* no directory yet */
	for (size_t i = 0; i < d->c->n_routers; i++) {
		const struct consensus_router *r = &d->c->routers[i];

		if (!all && !(by_id ? memcmp(r->identity, fp, SHA1_LEN) == 0 : strcasecmp(r->nickname, want + 5) == 0))
			continue;
		if (md)
			md_router(out, d, i);
		else
			ns_router(out, r);
		found++;
		/* A nickname may be shared (only Named ones were unique, and
		 * nobody assigns Named now): tor answers the first. */
		if (!all)
			break;
	}
	netdir_release(d);
	return all || found ? 0 : -ENOENT;
}

static bool is_status_key(const char *key)
{
	return strcmp(key, "circuit-status") == 0 || strcmp(key, "stream-status") == 0 ||
	       strcmp(key, "orconn-status") == 0;
}

/* circuit-status / stream-status from a finished request (3.9): its lines
 * joined by "\n" (a multi-line value; one line stays a single-line one,
 * as tor answers). */
static int getinfo_status(const char *key, const struct control_req *ans, struct control_buf *out)
{
	const struct control_buf *b = strcmp(key, "circuit-status") == 0 ? &ans->circs
				      : strcmp(key, "stream-status") == 0 ? &ans->streams
									: &ans->orconns;
	size_t len = b->len;

	if (ans->result < 0)
		return -ENOTSUP;
	while (len > 0 && b->p[len - 1] == '\n')
		len--;
	if (len)
		control_buf_append(out, b->p, len);
	return 0;
}

/* Answer the keys this file knows; -ENOENT for the rest. ans: the
 * finished status request of this command, or NULL. */
static int getinfo_local(const char *key, const struct control_req *ans, struct control_buf *out)
{
	if (is_status_key(key)) /* no answer: the backend takes no requests */
		return ans ? getinfo_status(key, ans, out) : -ENOTSUP;
	if (strncmp(key, "ns/", 3) == 0 || strncmp(key, "md/", 3) == 0)
		return getinfo_dir(key, out);
	if (strcmp(key, "version") == 0) {
		control_buf_printf(out, "%s (onionring-%s)", CONTROL_TOR_DIALECT, ONIONRING_VERSION);
		return 0;
	}
	if (strcmp(key, "process/pid") == 0) {
		control_buf_printf(out, "%ld", (long)getpid());
		return 0;
	}
	if (strcmp(key, "status/bootstrap-phase") == 0) {
		char phase[600];

		events_bootstrap_phase(phase, sizeof(phase));
		control_buf_printf(out, "%s", phase);
		return 0;
	}
	if (strcmp(key, "status/circuit-established") == 0) {
		control_buf_printf(out, "%d", events_bootstrap_done() ? 1 : 0);
		return 0;
	}
	if (strcmp(key, "events/names") == 0) {
		for (int e = 0; e < EVENT_COUNT_; e++)
			control_buf_printf(out, "%s%s", e ? " " : "", events_name((enum events_type)e));
		return 0;
	}
	return -ENOENT;
}

struct info {
	char key[128];
	size_t off, len; /* of the value in the values buffer */
};

/* Emit "250-key=value" or, for a multi-line value, "250+key=" + data. */
static void getinfo_emit(struct control_session *s, const struct info *in, const char *vals)
{
	const char *v = vals ? vals + in->off : "";

	if (!memchr(v, '\n', in->len)) {
		reply(s, 250, '-', "%s=%.*s", in->key, (int)in->len, v);
		return;
	}
	char head[140];
	int hn = snprintf(head, sizeof(head), "%s=", in->key);
	size_t need = control_reply_data_len((size_t)hn, v, in->len);

	buf_reserve(&s->out, need);
	struct wr w = wr_init(s->out.p + s->out.len, s->out.cap - s->out.len);
	control_reply_data(&w, 250, head, (size_t)hn, v, in->len);
	s->out.len += w.len;
}

static void req_start(struct control_session *s, struct control_req *r);

/* When the keys name circuit-status, stream-status or orconn-status and the backend takes
 * requests, start one for them and return true: the command is answered
 * when it completes. Malformed arguments are left for getinfo_answer. */
static bool getinfo_needs_request(struct control_session *s, const struct control_cmd *c)
{
	struct control_args a = control_args_init(c->args, c->args_len);
	struct control_arg arg;
	bool circs = false, streams = false, orconns = false;
	const char *why;
	struct control_req *r;

	if (!s->srv->be.request)
		return false;
	while (control_args_next(&a, &arg, s->arg, sizeof(s->arg), &why) == PARSE_OK) {
		if (arg.has_value || arg.quoted)
			continue;
		circs |= strcmp(arg.value, "circuit-status") == 0;
		streams |= strcmp(arg.value, "stream-status") == 0;
		orconns |= strcmp(arg.value, "orconn-status") == 0;
	}
	if (!circs && !streams && !orconns)
		return false;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->args = malloc(c->args_len + 1)))
		abort(); /* control-plane allocation (STYLE.md, Memory) */
	memcpy(r->args, c->args, c->args_len);
	r->args[c->args_len] = '\0';
	r->args_len = c->args_len;
	r->kind = CONTROL_REQ_STATUS;
	r->want_circs = circs;
	r->want_streams = streams;
	r->want_orconns = orconns;
	req_start(s, r);
	return true;
}

/* Answer GETINFO with these arguments; ans: the finished status request,
 * or NULL. */
static void getinfo_answer(struct control_session *s, const char *args, size_t args_len, const struct control_req *ans)
{
	struct control_args a = control_args_init(args, args_len);
	struct info keys[MAX_KEYS];
	struct control_buf vals = { 0 };
	struct control_arg arg;
	size_t n = 0;
	bool bad = false;

	while (!bad && next_arg(s, &a, &arg, &bad)) {
		int r;

		if (n == MAX_KEYS || arg.has_value || arg.quoted || arg.value_len >= sizeof(keys[0].key)) {
			reply(s, n == MAX_KEYS ? 512 : 552, ' ', n == MAX_KEYS ? "Too many keys" : "Unrecognized key \"%s\"",
			      arg.value);
			bad = true;
			break;
		}
		snprintf(keys[n].key, sizeof(keys[n].key), "%.127s", arg.value);
		keys[n].off = vals.len;
		r = getinfo_local(keys[n].key, ans, &vals);
		if (r == -ENOENT && s->srv->be.getinfo)
			r = s->srv->be.getinfo(s->srv->be.arg, keys[n].key, &vals);
		if (r < 0) {
			if (r == -ENOENT)
				reply(s, 552, ' ', "Unrecognized key \"%s\"", keys[n].key);
			else
				reply(s, 551, ' ', "%s is not available yet", keys[n].key);
			bad = true;
			break;
		}
		keys[n].len = vals.len - keys[n].off;
		n++;
	}
	if (!bad && n == 0) {
		reply(s, 512, ' ', "GETINFO needs at least one key");
		bad = true;
	}
	for (size_t i = 0; !bad && i < n; i++)
		getinfo_emit(s, &keys[i], vals.p);
	if (!bad)
		reply_ok(s);
	control_buf_free(&vals);
}

static void cmd_getinfo(struct control_session *s, const struct control_cmd *c)
{
	if (!getinfo_needs_request(s, c))
		getinfo_answer(s, c->args, c->args_len, NULL);
}

static void cmd_setevents(struct control_session *s, const struct control_cmd *c)
{
	struct control_args a = control_args_init(c->args, c->args_len);
	struct control_arg arg;
	unsigned mask = 0;
	bool bad = false;

	while (next_arg(s, &a, &arg, &bad)) {
		int e = arg.has_value || arg.quoted ? -1 : events_parse(arg.value, arg.value_len);

		if (e < 0 && !(strcasecmp(arg.value, "EXTENDED") == 0 && mask == 0 && !arg.quoted)) {
			reply(s, 552, ' ', "Unrecognized event \"%s\"", arg.value);
			return;
		}
		if (e >= 0)
			mask |= EVENT_BIT(e);
	}
	if (bad)
		return;
	if (!s->w) {
		reply(s, 551, ' ', "Events are not available on this connection");
		return;
	}
	if (!s->events)
		s->events = events_subscribe(s->w, deliver_events, s);
	events_set_mask(s->events, mask);
	reply_ok(s);
}

static const struct {
	const char *name;
	enum control_signal sig;
} signals[] = {
	{ "RELOAD", CONTROL_SIGNAL_RELOAD }, { "HUP", CONTROL_SIGNAL_RELOAD },
	{ "SHUTDOWN", CONTROL_SIGNAL_SHUTDOWN }, { "INT", CONTROL_SIGNAL_SHUTDOWN },
	{ "HALT", CONTROL_SIGNAL_HALT }, { "TERM", CONTROL_SIGNAL_HALT },
	{ "DUMP", CONTROL_SIGNAL_DUMP }, { "USR1", CONTROL_SIGNAL_DUMP },
	{ "NEWNYM", CONTROL_SIGNAL_NEWNYM },
};

static void cmd_signal(struct control_session *s, const struct control_cmd *c)
{
	struct control_args a = control_args_init(c->args, c->args_len);
	struct control_arg arg;
	char name[32];
	bool bad = false;
	int r;

	if (!next_arg(s, &a, &arg, &bad)) {
		if (!bad)
			reply(s, 512, ' ', "SIGNAL needs a signal name");
		return;
	}
	snprintf(name, sizeof(name), "%.31s", arg.value);
	if (next_arg(s, &a, &arg, &bad) || bad) {
		if (!bad)
			reply(s, 512, ' ', "SIGNAL takes one signal name");
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(signals); i++) {
		if (strcasecmp(name, signals[i].name) != 0)
			continue;
		if (!s->srv->be.signal) {
			reply(s, 551, ' ', "Signals are not available");
			return;
		}
		if (signals[i].sig == CONTROL_SIGNAL_SHUTDOWN || signals[i].sig == CONTROL_SIGNAL_HALT) {
			/* Tor answers before acting, so the OK gets out. */
			reply_ok(s);
			flush(s);
			r = s->srv->be.signal(s->srv->be.arg, signals[i].sig);
			if (r < 0)
				log_warn("control: SIGNAL %s failed: %s", signals[i].name, strerror(-r));
			return;
		}
		r = s->srv->be.signal(s->srv->be.arg, signals[i].sig);
		if (r < 0)
			reply(s, 551, ' ', "SIGNAL %s is not available: %s", signals[i].name,
			      r == -ENOTSUP ? "not supported by the circuit manager yet" : strerror(-r));
		else
			reply_ok(s);
		return;
	}
	reply(s, 552, ' ', "Unrecognized signal code \"%s\"", name);
}

/* Parse a StreamID/CircuitID argument: our ids are nonzero decimal
 * uint64s. Anything else names no stream or circuit (tor answers 552). */
static bool parse_id(const struct control_arg *arg, uint64_t *id)
{
	unsigned long long v;
	char *end;

	if (arg->has_value || arg->quoted || arg->value_len == 0 || arg->value_len > 20 ||
	    strspn(arg->value, "0123456789") != arg->value_len)
		return false;
	errno = 0;
	v = strtoull(arg->value, &end, 10);
	if (errno || v == 0)
		return false;
	*id = v;
	return true;
}

/* A RELAY_END reason of tor-spec 6.3 as a decimal (1 MISC .. 14
 * NOTDIRECTORY); control-spec 3.16 answers 552 to any other. */
static bool parse_end_reason(const struct control_arg *arg, uint8_t *reason)
{
	unsigned long v;

	if (arg->has_value || arg->quoted || arg->value_len == 0 || arg->value_len > 3 ||
	    strspn(arg->value, "0123456789") != arg->value_len)
		return false;
	v = strtoul(arg->value, NULL, 10);
	if (v < 1 || v > 14)
		return false;
	*reason = (uint8_t)v;
	return true;
}

static struct control_req *req_new(enum control_req_kind kind, uint64_t id)
{
	struct control_req *r = calloc(1, sizeof(*r));

	if (!r)
		abort(); /* control-plane allocation (STYLE.md, Memory) */
	r->kind = kind;
	r->id = id;
	return r;
}

static void cmd_closestream(struct control_session *s, const struct control_cmd *c)
{
	struct control_args a = control_args_init(c->args, c->args_len);
	struct control_arg arg;
	char idtext[32];
	uint64_t id = 0;
	uint8_t reason = 0;
	bool bad = false, have_id;
	struct control_req *r;

	if (!next_arg(s, &a, &arg, &bad)) {
		if (!bad)
			reply(s, 512, ' ', "Missing argument to CLOSESTREAM");
		return;
	}
	have_id = parse_id(&arg, &id);
	snprintf(idtext, sizeof(idtext), "%.31s", arg.value);
	if (!next_arg(s, &a, &arg, &bad)) {
		if (!bad)
			reply(s, 512, ' ', "Missing argument to CLOSESTREAM");
		return;
	}
	if (!have_id) {
		reply(s, 552, ' ', "Unknown stream \"%s\"", idtext);
		return;
	}
	if (!parse_end_reason(&arg, &reason)) {
		reply(s, 552, ' ', "Unrecognized reason \"%.31s\"", arg.value);
		return;
	}
	/* Flags after the reason are ignored (3.16: none is defined). */
	r = req_new(CONTROL_REQ_CLOSE_STREAM, id);
	r->reason = reason;
	req_start(s, r);
}

static void cmd_closecircuit(struct control_session *s, const struct control_cmd *c)
{
	struct control_args a = control_args_init(c->args, c->args_len);
	struct control_arg arg;
	char idtext[32];
	uint64_t id = 0;
	bool bad = false, if_unused = false, have_id;
	struct control_req *r;

	if (!next_arg(s, &a, &arg, &bad)) {
		if (!bad)
			reply(s, 512, ' ', "Missing argument to CLOSECIRCUIT");
		return;
	}
	have_id = parse_id(&arg, &id);
	snprintf(idtext, sizeof(idtext), "%.31s", arg.value);
	/* 3.17: IfUnused (case-insensitive, as tor); other flags ignored. */
	while (next_arg(s, &a, &arg, &bad))
		if (!arg.has_value && strcasecmp(arg.value, "IfUnused") == 0)
			if_unused = true;
	if (bad)
		return;
	if (!have_id) {
		reply(s, 552, ' ', "Unknown circuit \"%s\"", idtext);
		return;
	}
	r = req_new(CONTROL_REQ_CLOSE_CIRCUIT, id);
	r->if_unused = if_unused;
	req_start(s, r);
}

/* --- Requests answered later (control.h) ----------------------------------------- */

static void req_free(struct control_req *r)
{
	control_buf_free(&r->circs);
	control_buf_free(&r->streams);
	control_buf_free(&r->orconns);
	free(r->args);
	free(r);
}

/* Reply to the command that made r, whose answer is in. */
static void req_answer(struct control_session *s, const struct control_req *r)
{
	const char *what = r->kind == CONTROL_REQ_CLOSE_STREAM ? "stream" : "circuit";

	if (r->kind == CONTROL_REQ_STATUS) {
		getinfo_answer(s, r->args, r->args_len, r);
		return;
	}
	if (r->result == 0)
		reply_ok(s);
	else if (r->result == -ENOENT)
		reply(s, 552, ' ', "Unknown %s \"%llu\"", what, (unsigned long long)r->id);
	else
		reply(s, 551, ' ', "Cannot close the %s: %s", what,
		      r->result == -ESHUTDOWN ? "onionring is shutting down" : strerror(-r->result));
}

static void req_start(struct control_session *s, struct control_req *r)
{
	int e = -ENOTSUP;

	r->s = s;
	s->req = r;
	s->starting = true;
	if (s->srv->be.request)
		e = s->srv->be.request(s->srv->be.arg, s->w, r);
	s->starting = false;
	if (e < 0) {
		r->result = e;
		r->done = true;
	}
	if (r->done) { /* answered at once (or not at all) */
		s->req = NULL;
		req_answer(s, r);
		req_free(r);
	}
}

static void session_feed(struct control_session *s, const uint8_t *data, size_t len);
static void session_parse(struct control_session *s);

void control_req_done(struct control_req *r)
{
	struct control_session *s = r->s;
	struct control_buf kept;

	r->done = true;
	if (s && s->starting)
		return; /* req_start answers it */
	if (!s) { /* the controller went away meanwhile */
		req_free(r);
		return;
	}
	s->req = NULL;
	req_answer(s, r);
	req_free(r);
	/* Go on with what the controller sent meanwhile, in order. */
	kept = s->backlog;
	memset(&s->backlog, 0, sizeof(s->backlog));
	session_parse(s);
	session_feed(s, (const uint8_t *)kept.p, kept.len);
	control_buf_free(&kept);
	flush(s);
	if (s->close && s->on_close)
		s->on_close(s->send_arg);
}

/* --- Dispatch ------------------------------------------------------------------- */

static const struct {
	const char *name;
	void (*fn)(struct control_session *s, const struct control_cmd *c);
	bool before_auth; /* 3.5: allowed before AUTHENTICATE succeeded */
} commands[] = {
	{ "PROTOCOLINFO", cmd_protocolinfo, true },
	{ "AUTHCHALLENGE", cmd_authchallenge, true },
	{ "AUTHENTICATE", cmd_authenticate, true },
	{ "QUIT", cmd_quit, true },
	{ "GETINFO", cmd_getinfo, false },
	{ "GETCONF", cmd_getconf, false },
	{ "SETCONF", cmd_setconf, false },
	{ "RESETCONF", cmd_resetconf, false },
	{ "SETEVENTS", cmd_setevents, false },
	{ "SIGNAL", cmd_signal, false },
	{ "CLOSESTREAM", cmd_closestream, false },
	{ "CLOSECIRCUIT", cmd_closecircuit, false },
};

static void dispatch(struct control_session *s, const struct control_cmd *c)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(commands); i++)
		if (control_cmd_is(c, commands[i].name))
			break;
	if (s->auth != AUTH_DONE) {
		bool ok = i < ARRAY_LEN(commands) && commands[i].before_auth && !c->has_data;

		/* 3.24: after AUTHCHALLENGE the next command must be AUTHENTICATE. */
		if (s->auth == AUTH_CHALLENGED && ok && !control_cmd_is(c, "AUTHENTICATE") && !control_cmd_is(c, "QUIT"))
			ok = false;
		if (!ok) {
			reply_close(s, 514, "Authentication required.");
			return;
		}
	}
	if (i == ARRAY_LEN(commands) || c->has_data) {
		reply(s, 510, ' ', "Unrecognized command \"%s%.*s\"", c->has_data ? "+" : "",
		      (int)(c->keyword_len > 64 ? 64 : c->keyword_len), c->keyword);
		return;
	}
	commands[i].fn(s, c);
}

/* Run the complete commands in s->in until a request is out. */
static void session_parse(struct control_session *s)
{
	size_t used = 0;

	while (!s->close && !s->req) {
		struct control_cmd c;
		const char *why;
		enum parse_result r;
		size_t n;

		r = control_parse(s->in + used, s->in_len - used, &c, &n, &why);
		if (r == PARSE_NEED_MORE)
			break;
		if (r == PARSE_INVALID) {
			reply_close(s, 510, "Protocol error: %s", why);
			break;
		}
		dispatch(s, &c);
		used += n;
	}
	memmove(s->in, s->in + used, s->in_len - used);
	s->in_len -= used;
}

/* Take data (borrowed) into s->in and run it; once a request is out, keep
 * the rest in the backlog until control_req_done. */
static void session_feed(struct control_session *s, const uint8_t *data, size_t len)
{
	while (len > 0 && !s->close) {
		size_t take = sizeof(s->in) - s->in_len;

		if (s->req) {
			if (s->backlog.len + len > BACKLOG_MAX) {
				log_notice("control: closing a controller that sent over %u bytes while a command was "
					   "being answered", BACKLOG_MAX);
				s->close = true;
				return;
			}
			control_buf_append(&s->backlog, (const char *)data, len);
			return;
		}
		if (take > len)
			take = len;
		memcpy(s->in + s->in_len, data, take);
		s->in_len += take;
		data += take;
		len -= take;
		session_parse(s);
	}
}

bool control_session_input(struct control_session *s, const uint8_t *data, size_t len)
{
	session_feed(s, data, len);
	flush(s);
	return !s->close;
}

/* --- The connection ------------------------------------------------------------ */

/* Bytes a controller may leave unread (mostly events) before we give up
 * on it rather than grow memory. */
#define CONTROL_SEND_BACKLOG_MAX (8u << 20)

static void conn_out(void *arg, const char *data, size_t len)
{
	struct conn *c = arg;

	if (conn_is_closing(c))
		return;
	if (conn_send_queued(c) > CONTROL_SEND_BACKLOG_MAX) {
		log_notice("control: closing a controller that does not read its replies and events");
		conn_close(c, -ENOBUFS, false);
		return;
	}
	if (conn_send(c, data, len) < 0)
		conn_close(c, -EPIPE, false);
}

static void control_recv(struct conn *c, const uint8_t *data, size_t len)
{
	struct control_session *s = conn_user(c);

	if (!control_session_input(s, data, len))
		conn_close(c, 0, true);
}

/* The session closes after a request's answer (control_req_done). */
static void control_close_later(void *arg)
{
	conn_close(arg, 0, true);
}

static void control_closed(struct conn *c, int err)
{
	(void)err;
	control_session_free(conn_user(c));
}

static const struct conn_ops control_ops = {
	.on_recv = control_recv,
	.on_closed = control_closed,
};

void control_accept(struct worker *w, struct conn *c, void *arg)
{
	const struct control_server *srv = arg;

	log_info("control: connection from %s", log_scrub(conn_peer_name(c))); /* a client address */
	struct control_session *s = control_session_new(srv, w, conn_out, c);

	control_session_set_close(s, control_close_later);
	conn_set_ops(c, &control_ops, s);
}
