/* Tor channels over TLS links (see channel.h). */
#include "net/channel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "net/tls.h"

#define CHANNEL_DEFAULT_HS_TIMEOUT_NS (30ull * 1000000000ull)
/* The receive buffer holds at most one partial cell once open (the
 * largest var cell: tor-spec 3, 16-bit length) or the handshake so far; it
 * starts small and grows on demand, so idle channels stay cheap. */
#define CHANNEL_INBUF_MAX (CELL_VAR_HEADER_LEN + CELL_VAR_PAYLOAD_MAX + 16384)
#define CHANNEL_INBUF_INIT (4 * CELL_LEN)
#define CHANNEL_SEND_CHUNK 32 /* fixed cells encoded per TLS write */
#define CHANNEL_CIRC_ID_TRIES 64 /* tor-spec 5.1.1: "today's Tor stops after 64" */

struct circ_slot {
	uint32_t id; /* 0: empty */
	bool in_batch;
	const struct channel_circ_ops *ops;
	void *arg;
};

struct channel {
	struct worker *w;
	struct tls_link *link;
	const struct channel_ops *ops;
	void *arg;
	enum channel_state state;
	bool open_reported;
	int close_err;
	struct relay_target target;
	struct channel_config cfg;
	struct channel_hs hs;
	struct timer hs_timer;
	uint64_t t_start, t_tcp, t_tls, opened_at, idle_since;
	struct channel_timings tm;
	/* Circuit map: open addressing, linear probing, power-of-2 cap. */
	struct circ_slot *slots;
	size_t cap, n;
	size_t n_at_close; /* n when the circuits were told it closed */
	/* Circuits that got cells in the current batch (ids, <= n entries). */
	uint32_t *batch;
	size_t nbatch, batch_cap;
	char name[96];
	char why[CHANNEL_HS_ERR_MAX + 64];
	uint8_t *inbuf;
	size_t inlen, incap;
};

void channel_config_defaults(struct channel_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->handshake_timeout_ns = CHANNEL_DEFAULT_HS_TIMEOUT_NS;
}

static const char *state_name(enum channel_state s)
{
	switch (s) {
	case CHANNEL_CONNECTING: return "TCP connect";
	case CHANNEL_TLS: return "TLS handshake";
	case CHANNEL_LINK: return "link handshake";
	case CHANNEL_OPEN: return "open";
	case CHANNEL_CLOSING: return "closing";
	}
	return "?";
}

static void set_why(struct channel *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(struct channel *ch, const char *fmt, ...)
{
	va_list ap;

	if (ch->why[0])
		return; /* the first reason is the real one */
	va_start(ap, fmt);
	vsnprintf(ch->why, sizeof(ch->why), fmt, ap);
	va_end(ap);
}

static void report_open(struct channel *ch, int err)
{
	if (ch->open_reported)
		return;
	ch->open_reported = true;
	if (ch->ops && ch->ops->on_open)
		ch->ops->on_open(ch, err, ch->why, ch->arg);
}

/* End the channel with a reason: log it, tell the owner the open failed
 * (if it had not opened) and close the link; on_closed follows. */
static void channel_fail(struct channel *ch, int err, const char *why)
{
	if (ch->state == CHANNEL_CLOSING)
		return;
	set_why(ch, "%s", why);
	log_warn("channel to %s failed during %s: %s", ch->name, state_name(ch->state), ch->why);
	ch->state = CHANNEL_CLOSING;
	ch->close_err = err;
	timer_cancel(worker_timers(ch->w), &ch->hs_timer);
	report_open(ch, err);
	tls_link_close(ch->link, err, false);
}

static time_t wallclock(const struct channel *ch)
{
	return ch->cfg.fixed_wallclock ? ch->cfg.fixed_wallclock : clock_wall();
}

/* --- circuit map ------------------------------------------------------- */

static size_t slot_find(const struct channel *ch, uint32_t id)
{
	size_t mask = ch->cap - 1;

	if (!ch->cap)
		return SIZE_MAX;
	for (size_t i = (id * 2654435761u) & mask;; i = (i + 1) & mask) {
		if (ch->slots[i].id == id)
			return i;
		if (ch->slots[i].id == 0)
			return SIZE_MAX;
	}
}

static int map_grow(struct channel *ch)
{
	size_t ncap = ch->cap ? ch->cap * 2 : 16;
	struct circ_slot *ns = calloc(ncap, sizeof(*ns));
	uint32_t *nb = realloc(ch->batch, ncap * sizeof(*nb));

	if (!ns || !nb) {
		free(ns);
		if (nb)
			ch->batch = nb;
		return -ENOMEM;
	}
	ch->batch = nb;
	ch->batch_cap = ncap;
	for (size_t i = 0; i < ch->cap; i++) {
		struct circ_slot *s = &ch->slots[i];
		size_t j;

		if (!s->id)
			continue;
		for (j = (s->id * 2654435761u) & (ncap - 1); ns[j].id; j = (j + 1) & (ncap - 1))
			;
		ns[j] = *s;
	}
	free(ch->slots);
	ch->slots = ns;
	ch->cap = ncap;
	return 0;
}

int channel_circ_register(struct channel *ch, uint32_t circ_id,
			  const struct channel_circ_ops *ops, void *arg)
{
	size_t i;

	if (circ_id == 0)
		return -EINVAL;
	if (ch->state != CHANNEL_OPEN)
		return -ENOTCONN;
	if (slot_find(ch, circ_id) != SIZE_MAX)
		return -EEXIST;
	/* Keep the load factor at or below 1/2. */
	if ((ch->n + 1) * 2 > ch->cap && map_grow(ch) < 0)
		return -ENOMEM;
	for (i = (circ_id * 2654435761u) & (ch->cap - 1); ch->slots[i].id; i = (i + 1) & (ch->cap - 1))
		;
	ch->slots[i] = (struct circ_slot){ circ_id, false, ops, arg };
	if (ch->n++ == 0) {
		ch->idle_since = 0;
		if (ch->ops && ch->ops->on_idle_change)
			ch->ops->on_idle_change(ch, false, ch->arg);
	}
	return 0;
}

void channel_circ_unregister(struct channel *ch, uint32_t circ_id)
{
	size_t mask = ch->cap - 1;
	size_t i = slot_find(ch, circ_id), j;

	if (i == SIZE_MAX)
		return;
	ch->slots[i].id = 0;
	/* Backward-shift deletion keeps every probe chain unbroken. */
	for (j = (i + 1) & mask; ch->slots[j].id; j = (j + 1) & mask) {
		size_t home = (ch->slots[j].id * 2654435761u) & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			ch->slots[i] = ch->slots[j];
			ch->slots[j].id = 0;
			i = j;
		}
	}
	if (--ch->n == 0 && ch->state == CHANNEL_OPEN) {
		ch->idle_since = worker_now_ns(ch->w);
		if (ch->ops && ch->ops->on_idle_change)
			ch->ops->on_idle_change(ch, true, ch->arg);
	}
}

size_t channel_n_circs(const struct channel *ch) { return ch->n; }
size_t channel_n_circs_at_close(const struct channel *ch) { return ch->n_at_close; }

uint32_t channel_alloc_circ_id(struct channel *ch)
{
	if (ch->state != CHANNEL_OPEN)
		return 0;
	for (int i = 0; i < CHANNEL_CIRC_ID_TRIES; i++) {
		uint32_t id;

		crypto_rand(&id, sizeof(id));
		id |= 0x80000000u; /* tor-spec 5.1.1: initiator sets the MSB */
		if (slot_find(ch, id) == SIZE_MAX)
			return id;
	}
	return 0;
}

/* Tell every circuit the channel is gone. The table is detached first, so
 * a circuit that unregisters from its callback changes nothing here. */
static void circs_tell_closed(struct channel *ch, int err)
{
	struct circ_slot *slots = ch->slots;
	size_t cap = ch->cap;

	ch->n_at_close = ch->n;
	ch->slots = NULL;
	ch->cap = 0;
	ch->n = 0;
	for (size_t i = 0; i < cap; i++)
		if (slots[i].id && slots[i].ops && slots[i].ops->on_channel_closed)
			slots[i].ops->on_channel_closed(ch, slots[i].id, err, slots[i].arg);
	free(slots);
}

/* --- receive path ------------------------------------------------------ */

/* Make room for need bytes in inbuf. False (channel failed) past the
 * largest legal size or on OOM. */
static bool inbuf_reserve(struct channel *ch, size_t need)
{
	size_t ncap = ch->incap ? ch->incap : CHANNEL_INBUF_INIT;
	uint8_t *nb;

	if (need <= ch->incap)
		return true;
	if (need > CHANNEL_INBUF_MAX) {
		channel_fail(ch, -EPROTO, "peer sent more than any cell can hold");
		return false;
	}
	while (ncap < need)
		ncap *= 2;
	nb = realloc(ch->inbuf, ncap);
	if (!nb) {
		channel_fail(ch, -ENOMEM, "out of memory for the receive buffer");
		return false;
	}
	ch->inbuf = nb;
	ch->incap = ncap;
	return true;
}

static void batch_end(struct channel *ch);

static void dispatch(struct channel *ch, const struct cell_view *cv)
{
	size_t i;

	if (cv->circ_id == 0) {
		/* Link-level cells after open: padding, later VERSIONS (tor-spec
		 * 4.1: ignored), PADDING_NEGOTIATE (only relays act on it). */
		if (cv->command != CELL_PADDING && cv->command != CELL_VPADDING)
			log_debug("channel %s: ignoring %s on circuit 0", ch->name,
				  cell_command_name(cv->command));
		return;
	}
	i = slot_find(ch, cv->circ_id);
	if (i == SIZE_MAX) {
		log_debug("channel %s: %s for unknown circuit %08x dropped", ch->name,
			  cell_command_name(cv->command), cv->circ_id);
		return;
	}
	if (!ch->slots[i].in_batch) {
		/* Full only when circuits were replaced mid-batch: end the
		 * batch early rather than grow on the hot path. */
		if (ch->nbatch == ch->batch_cap) {
			batch_end(ch);
			i = slot_find(ch, cv->circ_id);
			if (i == SIZE_MAX)
				return;
		}
		ch->slots[i].in_batch = true;
		ch->batch[ch->nbatch++] = cv->circ_id;
	}
	ch->slots[i].ops->on_cell(ch, cv, ch->slots[i].arg);
}

static void batch_end(struct channel *ch)
{
	for (size_t k = 0; k < ch->nbatch; k++) {
		size_t i = slot_find(ch, ch->batch[k]);

		if (i == SIZE_MAX)
			continue; /* unregistered during the batch */
		ch->slots[i].in_batch = false;
		if (ch->slots[i].ops->on_batch_end)
			ch->slots[i].ops->on_batch_end(ch, ch->batch[k], ch->slots[i].arg);
	}
	ch->nbatch = 0;
}

/* Deliver every complete cell in p[0..len); return the bytes consumed, or
 * SIZE_MAX when the channel failed. */
static size_t deliver_span(struct channel *ch, const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off < len && ch->state == CHANNEL_OPEN) {
		struct cell_view cv;
		const char *why = NULL;
		size_t n = 0;
		enum parse_result r = cell_frame(p + off, len - off, ch->hs.link_proto, &cv, &n, &why);

		if (r == PARSE_NEED_MORE)
			break;
		if (r != PARSE_OK) {
			char msg[128];

			snprintf(msg, sizeof(msg), "unframeable cell: %s", why ? why : "invalid");
			channel_fail(ch, -EPROTO, msg);
			return SIZE_MAX;
		}
		dispatch(ch, &cv);
		off += n;
	}
	return off;
}

/* Length of the first cell in p[0..have), or the bytes needed to know it. */
static size_t cell_wire_len(const uint8_t *p, size_t have)
{
	if (have < CELL_CIRCID_LEN + 1)
		return CELL_CIRCID_LEN + 1;
	if (!cell_command_is_var(p[CELL_CIRCID_LEN]))
		return CELL_LEN;
	if (have < CELL_VAR_HEADER_LEN)
		return CELL_VAR_HEADER_LEN;
	return CELL_VAR_HEADER_LEN + be16_load(p + CELL_CIRCID_LEN + 1);
}

/* Finish the partial cells in inbuf with bytes from *data. */
static bool drain_inbuf(struct channel *ch, const uint8_t **data, size_t *len)
{
	while (ch->inlen > 0 && ch->state == CHANNEL_OPEN) {
		size_t need = cell_wire_len(ch->inbuf, ch->inlen), n, take;

		if (ch->inlen < need) {
			if (*len == 0)
				return true;
			take = need - ch->inlen < *len ? need - ch->inlen : *len;
			if (!inbuf_reserve(ch, ch->inlen + take))
				return false;
			memcpy(ch->inbuf + ch->inlen, *data, take);
			ch->inlen += take;
			*data += take;
			*len -= take;
			continue;
		}
		n = deliver_span(ch, ch->inbuf, ch->inlen);
		if (n == SIZE_MAX)
			return false;
		memmove(ch->inbuf, ch->inbuf + n, ch->inlen - n);
		ch->inlen -= n;
	}
	return ch->state == CHANNEL_OPEN;
}

/* All cells of one TLS read in one pass, then the per-circuit batch ends. */
static void open_input(struct channel *ch, const uint8_t *data, size_t len)
{
	size_t n;

	if (drain_inbuf(ch, &data, &len) && len > 0) {
		n = deliver_span(ch, data, len);
		if (n != SIZE_MAX && ch->state == CHANNEL_OPEN && n < len &&
		    inbuf_reserve(ch, len - n)) {
			memcpy(ch->inbuf, data + n, len - n); /* less than one cell */
			ch->inlen = len - n;
		}
	}
	batch_end(ch);
}

/* --- link handshake ---------------------------------------------------- */

/* tls_link_send for the channel: -ENOBUFS means the bytes were taken
 * and wait in the link's spill (tls.h), so it is success here, never a
 * reason to resend or to fail: cells already carry their relay crypto,
 * and dropping one would put the circuit out of step with the relay.
 * The backlog shows in channel_send_queued. */
static int link_send(struct tls_link *l, const void *data, size_t len)
{
	int r = tls_link_send(l, data, len);

	return r == -ENOBUFS ? 0 : r;
}

static int hs_errno(enum channel_hs_error e)
{
	switch (e) {
	case CHANNEL_HS_ERR_VERSION: return -EPROTONOSUPPORT;
	case CHANNEL_HS_ERR_CERTS: return -EBADMSG;
	case CHANNEL_HS_ERR_IDENTITY: return -EPERM;
	default: return -EPROTO;
	}
}

static void hs_opened(struct channel *ch, const uint8_t *netinfo, size_t len)
{
	uint64_t now = clock_mono_ns();
	int r = link_send(ch->link, netinfo, len);

	if (r < 0) {
		channel_fail(ch, r, "cannot send NETINFO");
		return;
	}
	timer_cancel(worker_timers(ch->w), &ch->hs_timer);
	ch->state = CHANNEL_OPEN;
	ch->tm.link_handshake_ns = now - ch->t_tls;
	ch->tm.total_ns = now - ch->t_start;
	ch->opened_at = worker_now_ns(ch->w);
	ch->idle_since = ch->opened_at;
	log_info("channel to %s open: link protocol %d, %s, connect %.1f ms, TLS %.1f ms, link %.1f ms",
		 ch->name, ch->hs.link_proto, tls_link_describe(ch->link),
		 ch->tm.tcp_connect_ns / 1e6, ch->tm.tls_handshake_ns / 1e6,
		 ch->tm.link_handshake_ns / 1e6);
	/* tor-spec 4.5: the time MAY hint at our clock's skew; the relay may
	 * lie, so it is only logged. */
	if (ch->hs.clock_skew > 3600 || ch->hs.clock_skew < -3600)
		log_notice("channel to %s: the relay's clock is %lld s off ours", ch->name,
			   (long long)ch->hs.clock_skew);
	report_open(ch, 0);
}

static void hs_input(struct channel *ch, const uint8_t *data, size_t len)
{
	uint8_t out[CELL_LEN];
	struct wr w = wr_init(out, sizeof(out));
	const uint8_t *der = NULL;
	size_t derlen = 0, consumed = 0;
	enum channel_hs_result r;

	if (!inbuf_reserve(ch, ch->inlen + len))
		return;
	memcpy(ch->inbuf + ch->inlen, data, len);
	ch->inlen += len;
	tls_link_peer_cert(ch->link, &der, &derlen);
	r = channel_hs_input(&ch->hs, ch->inbuf, ch->inlen, &consumed, &w, der, derlen,
			     wallclock(ch));
	if (r == CHANNEL_HS_ERROR) {
		channel_fail(ch, hs_errno(ch->hs.error), channel_hs_error(&ch->hs));
		return;
	}
	memmove(ch->inbuf, ch->inbuf + consumed, ch->inlen - consumed);
	ch->inlen -= consumed;
	if (r == CHANNEL_HS_DONE) {
		hs_opened(ch, out, w.len);
		if (ch->state == CHANNEL_OPEN && ch->inlen > 0)
			open_input(ch, NULL, 0); /* cells that came with NETINFO */
	}
}

static void hs_timeout(struct timer *t, void *arg)
{
	struct channel *ch = arg;
	char msg[96];

	(void)t;
	snprintf(msg, sizeof(msg), "handshake timed out after %llu ms",
		 (unsigned long long)(ch->cfg.handshake_timeout_ns / 1000000u));
	channel_fail(ch, -ETIMEDOUT, msg);
}

/* --- TLS link callbacks -------------------------------------------------- */

static void link_tcp_connected(struct tls_link *l)
{
	struct channel *ch = tls_link_user(l);

	ch->t_tcp = clock_mono_ns();
	ch->tm.tcp_connect_ns = ch->t_tcp - ch->t_start;
	ch->state = CHANNEL_TLS;
}

static void link_open(struct tls_link *l, int err)
{
	struct channel *ch = tls_link_user(l);
	uint8_t versions[16];
	ssize_t n;
	char msg[128];

	if (err < 0) {
		if (ch->state == CHANNEL_CONNECTING)
			snprintf(msg, sizeof(msg), "TCP connect failed: %s", strerror(-err));
		else
			snprintf(msg, sizeof(msg), "TLS handshake failed (%s): the peer does not speak "
				 "TLS as a relay would", strerror(-err));
		channel_fail(ch, err, msg);
		return;
	}
	ch->t_tls = clock_mono_ns();
	ch->tm.tls_handshake_ns = ch->t_tls - (ch->t_tcp ? ch->t_tcp : ch->t_start);
	ch->state = CHANNEL_LINK;
	n = channel_hs_start(&ch->hs, versions, sizeof(versions));
	if (n < 0 || link_send(l, versions, (size_t)n) < 0)
		channel_fail(ch, -EPROTO, "cannot send VERSIONS");
}

static void link_data(struct tls_link *l, const uint8_t *data, size_t len)
{
	struct channel *ch = tls_link_user(l);

	if (ch->state == CHANNEL_LINK)
		hs_input(ch, data, len);
	else if (ch->state == CHANNEL_OPEN)
		open_input(ch, data, len);
}

static void link_closed(struct tls_link *l, int err)
{
	struct channel *ch = tls_link_user(l);
	const struct channel_ops *ops = ch->ops;

	timer_cancel(worker_timers(ch->w), &ch->hs_timer);
	if (ch->state != CHANNEL_CLOSING) {
		/* The relay (or the network) ended it, or our own runtime is
		 * stopping (-ESHUTDOWN: every connection is closed on stop). */
		if (err == -ESHUTDOWN)
			set_why(ch, "closed: onionring is shutting down");
		else if (ch->state == CHANNEL_OPEN)
			set_why(ch, "connection closed by the relay%s%s", err ? ": " : "",
				err ? strerror(-err) : "");
		else
			set_why(ch, "connection closed by the peer during the %s%s%s",
				state_name(ch->state), err ? ": " : "", err ? strerror(-err) : "");
		if (ch->state != CHANNEL_OPEN && err != -ESHUTDOWN)
			log_warn("channel to %s failed: %s", ch->name, ch->why);
		else
			log_info("channel to %s: %s", ch->name, ch->why);
		ch->close_err = err ? err : -ECONNRESET;
		ch->state = CHANNEL_CLOSING;
	}
	report_open(ch, ch->close_err ? ch->close_err : -ECONNRESET);
	circs_tell_closed(ch, ch->close_err);
	if (ops && ops->on_closed)
		ops->on_closed(ch, ch->close_err, ch->why, ch->arg);
	free(ch->batch);
	free(ch->inbuf);
	free(ch);
}

static const struct tls_link_ops channel_link_ops = {
	.on_open = link_open,
	.on_data = link_data,
	.on_closed = link_closed,
	.on_tcp_connected = link_tcp_connected,
};

/* --- public ------------------------------------------------------------ */

static void target_describe(struct channel *ch, struct cell_addr *peer)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	const struct sockaddr_storage *ss = &ch->target.addr;

	memset(peer, 0, sizeof(*peer));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		channel_hs_addr_set(peer, (const uint8_t *)&a->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		channel_hs_addr_set(peer, (const uint8_t *)&a->sin6_addr, 16);
	}
	snprintf(ch->name, sizeof(ch->name), "%s%s%s:%u", ch->target.nickname,
		 ch->target.nickname[0] ? " at " : "", host, port);
}

struct channel *channel_open(struct worker *w, const struct relay_target *t,
			     const struct channel_config *cfg, const struct channel_ops *ops,
			     void *arg, int *err)
{
	struct channel *ch = calloc(1, sizeof(*ch));
	struct relay_identity_expect expect = { 0 };
	struct cell_addr peer;

	if (!ch) {
		*err = -ENOMEM;
		return NULL;
	}
	ch->w = w;
	ch->ops = ops;
	ch->arg = arg;
	ch->target = *t;
	ch->target.nickname[sizeof(ch->target.nickname) - 1] = '\0';
	if (cfg)
		ch->cfg = *cfg;
	else
		channel_config_defaults(&ch->cfg);
	target_describe(ch, &peer);
	expect.has_rsa = true;
	memcpy(expect.rsa_id, t->rsa_id, 20);
	expect.has_ed = t->has_ed;
	memcpy(expect.ed_id, t->ed_id, 32);
	channel_hs_init(&ch->hs, &expect, &peer);
	ch->state = CHANNEL_CONNECTING;
	ch->t_start = clock_mono_ns();
	timer_init(&ch->hs_timer, hs_timeout, ch);
	ch->link = tls_link_connect(w, (const struct sockaddr *)&t->addr, t->addr_len,
				    &channel_link_ops, ch, err);
	if (!ch->link) {
		free(ch);
		return NULL;
	}
	if (timer_arm(worker_timers(w), &ch->hs_timer,
		      worker_now_ns(w) + ch->cfg.handshake_timeout_ns) < 0)
		channel_fail(ch, -ENOMEM, "cannot arm the handshake timer");
	return ch;
}

void channel_close(struct channel *ch, int err, const char *why)
{
	bool flush = ch->state == CHANNEL_OPEN && err == 0;

	if (ch->state == CHANNEL_CLOSING)
		return;
	set_why(ch, "%s", why ? why : "closed by us");
	if (ch->state != CHANNEL_OPEN) {
		channel_fail(ch, err ? err : -ECANCELED, ch->why);
		return;
	}
	ch->state = CHANNEL_CLOSING;
	ch->close_err = err;
	tls_link_close(ch->link, err, flush);
}

void channel_set_owner(struct channel *ch, const struct channel_ops *ops, void *arg)
{
	ch->ops = ops;
	ch->arg = arg;
}

int channel_send_cells(struct channel *ch, const struct cell *cells, size_t n)
{
	uint8_t buf[CHANNEL_SEND_CHUNK * CELL_LEN];

	if (ch->state != CHANNEL_OPEN)
		return -ENOTCONN;
	while (n > 0) {
		size_t k = n < CHANNEL_SEND_CHUNK ? n : CHANNEL_SEND_CHUNK;
		int r;

		for (size_t i = 0; i < k; i++)
			cell_encode(&cells[i], buf + i * CELL_LEN);
		r = link_send(ch->link, buf, k * CELL_LEN);
		if (r < 0)
			return r;
		cells += k;
		n -= k;
	}
	return 0;
}

int channel_send_cell(struct channel *ch, const struct cell *c) { return channel_send_cells(ch, c, 1); }

int channel_send_var_cell(struct channel *ch, uint32_t circ_id, uint8_t command,
			  const uint8_t *body, size_t len)
{
	uint8_t *buf;
	ssize_t n;
	int r;

	if (ch->state != CHANNEL_OPEN)
		return -ENOTCONN;
	buf = malloc(CELL_VAR_HEADER_LEN + len);
	if (!buf)
		return -ENOMEM;
	n = cell_var_encode(buf, CELL_VAR_HEADER_LEN + len, ch->hs.link_proto, circ_id, command,
			    body, len);
	r = n < 0 ? (int)n : link_send(ch->link, buf, (size_t)n);
	free(buf);
	return r;
}

size_t channel_send_queued(const struct channel *ch) { return tls_link_send_queued(ch->link); }
enum channel_state channel_state(const struct channel *ch) { return ch->state; }
bool channel_is_open(const struct channel *ch) { return ch->state == CHANNEL_OPEN; }
const struct relay_target *channel_target(const struct channel *ch) { return &ch->target; }
const struct relay_identity *channel_identity(const struct channel *ch) { return &ch->hs.proven; }
int channel_link_proto(const struct channel *ch) { return ch->hs.link_proto; }
const struct channel_timings *channel_timings(const struct channel *ch) { return &ch->tm; }
int64_t channel_clock_skew(const struct channel *ch) { return ch->hs.clock_skew; }
uint64_t channel_opened_at(const struct channel *ch) { return ch->opened_at; }
uint64_t channel_idle_since(const struct channel *ch) { return ch->idle_since; }
struct worker *channel_worker(const struct channel *ch) { return ch->w; }
const char *channel_name(const struct channel *ch) { return ch->name; }
const char *channel_error(const struct channel *ch) { return ch->why; }
const char *channel_tls_describe(const struct channel *ch) { return tls_link_describe(ch->link); }
