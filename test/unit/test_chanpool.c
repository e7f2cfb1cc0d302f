/* Channels and the per-shard channel pool (net/channel.h, net/chanpool.h)
 * against small TLS servers run by this test on 127.0.0.1: one believable
 * relay (its TLS key, certificate and CERTS body come from
 * test/vectors/gen_channel.py, an independent computation with
 * python3-cryptography) and misbehaving peers (garbage instead of TLS, a
 * close mid-handshake, no common link version, malformed CERTS, a stall).
 * Each bad peer must end only its own channel, with a clear reason, while a
 * channel to the good relay keeps working. Exits 77 without io_uring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bytes.h"
#include "net/chanpool.h"
#include "net/runtime.h"
#include "test/vectors/channel/channel_vectors.h"

/* --- fake relays (blocking, one thread per listener) --------------------- */

enum peer_mode { PEER_GOOD, PEER_GARBAGE, PEER_CLOSE_MID, PEER_NO_VERSION, PEER_BAD_CERTS, PEER_STALL, PEER_N };

struct peer {
	enum peer_mode mode;
	int lfd;
	uint16_t port;
	pthread_t th;
	_Atomic bool stop;
};

static struct peer peers[PEER_N];
static SSL_CTX *server_ctx;

static bool ssl_read_exact(SSL *s, uint8_t *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		int r = SSL_read(s, b + got, (int)(n - got));
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static void put_var(struct wr *w, uint8_t cmd, const uint8_t *body, size_t len)
{
	w->len += (size_t)cell_var_encode(w->p + w->len, w->cap - w->len, 4, 0, cmd, body, len);
}

/* Relay side of the link handshake: VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO. */
static bool good_handshake(SSL *s, const uint8_t *certs, size_t certs_len)
{
	uint8_t buf[8192]; /* per call: two connections' threads may overlap */
	struct wr w = wr_init(buf, sizeof(buf));
	static const uint8_t versions[] = { 0, 0, 7, 0, 6, 0, 3, 0, 4, 0, 5 };
	uint8_t chal[32] = { 1 }, ac[64], ni[32], in[CELL_LEN];
	uint16_t methods[1] = { 3 };
	ssize_t acn = cell_auth_challenge_encode(ac, sizeof(ac), chal, methods, 1);
	struct cell_addr other = { CELL_ADDR_IPV4, 4, true, { 127, 0, 0, 1 } };
	ssize_t nin = cell_netinfo_encode(ni, sizeof(ni), (uint32_t)CHV_NOW, &other, &other, 1);

	if (!ssl_read_exact(s, in, 9)) /* the client's VERSIONS (4 and 5) */
		return false;
	wr_bytes(&w, versions, sizeof(versions));
	put_var(&w, CELL_CERTS, certs, certs_len);
	put_var(&w, CELL_AUTH_CHALLENGE, ac, (size_t)acn);
	w.len += (size_t)cell_fixed_encode(buf + w.len, sizeof(buf) - w.len, 0, CELL_NETINFO, ni, (size_t)nin);
	if (SSL_write(s, buf, (int)w.len) != (int)w.len)
		return false;
	return ssl_read_exact(s, in, CELL_LEN) && in[4] == CELL_NETINFO;
}

/* Echo c three times with a 3000-byte VPADDING in the middle, cut into
 * 333-byte writes: cells then straddle the client's reads. */
static void send_split(SSL *s, const uint8_t *c)
{
	uint8_t buf[3 * CELL_LEN + 3100], pad[3000] = { 0 }; /* per call, as above */
	struct wr w = wr_init(buf, sizeof(buf));

	wr_bytes(&w, c, CELL_LEN);
	put_var(&w, CELL_VPADDING, pad, sizeof(pad));
	wr_bytes(&w, c, CELL_LEN);
	wr_bytes(&w, c, CELL_LEN);
	for (size_t off = 0; off < w.len; off += 333) {
		size_t n = w.len - off < 333 ? w.len - off : 333;

		SSL_write(s, buf + off, (int)n);
		usleep(1000);
	}
}

/* After the handshake: echo each RELAY cell twice in one write (one batch),
 * or split (payload byte 1 set); a DESTROY makes the relay hang up. */
static void good_serve(SSL *s)
{
	uint8_t c[CELL_LEN], two[2 * CELL_LEN];

	while (ssl_read_exact(s, c, CELL_LEN)) {
		if (c[4] == CELL_DESTROY)
			return;
		if (c[4] == CELL_RELAY && c[6] == 1) {
			send_split(s, c);
		} else if (c[4] == CELL_RELAY) {
			memcpy(two, c, CELL_LEN);
			memcpy(two + CELL_LEN, c, CELL_LEN);
			SSL_write(s, two, sizeof(two));
		}
	}
}

/* Wait (bounded) until the client hangs up. */
static void wait_eof(int fd)
{
	uint8_t b[512];

	for (int i = 0; i < 100; i++) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) > 0 && read(fd, b, sizeof(b)) <= 0)
			return;
	}
}

static void serve_tls(struct peer *pr, int fd)
{
	SSL *s = SSL_new(server_ctx);
	uint8_t in[9];

	SSL_set_fd(s, fd);
	if (SSL_accept(s) != 1)
		goto out;
	switch (pr->mode) {
	case PEER_GOOD:
		if (good_handshake(s, chv_certs_body, sizeof(chv_certs_body)))
			good_serve(s);
		break;
	case PEER_CLOSE_MID:
		ssl_read_exact(s, in, sizeof(in));
		break; /* hang up without answering VERSIONS */
	case PEER_NO_VERSION: {
		static const uint8_t v3[] = { 0, 0, 7, 0, 4, 0, 2, 0, 3 };
		ssl_read_exact(s, in, sizeof(in));
		SSL_write(s, v3, sizeof(v3));
		wait_eof(fd);
		break;
	}
	case PEER_BAD_CERTS: {
		/* Two certificates announced; the first runs past the cell. */
		static const uint8_t bad[] = { 2, 4, 0x10, 0, 0xde, 0xad };
		good_handshake(s, bad, sizeof(bad));
		wait_eof(fd);
		break;
	}
	case PEER_STALL:
		ssl_read_exact(s, in, sizeof(in));
		wait_eof(fd); /* never answer */
		break;
	default:
		break;
	}
out:
	SSL_free(s);
}

/* One thread per accepted connection, joined by peers_stop(). */
struct conn_job {
	struct peer *pr;
	int fd;
};

static pthread_t conn_threads[256];
static unsigned n_conn_threads;
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;

static void *conn_main(void *arg)
{
	struct conn_job *cj = arg;
	static const char junk[] = "SSH-2.0-OpenSSH_9.2\r\nthis is not TLS at all\r\n";

	if (cj->pr->mode == PEER_GARBAGE) {
		if (write(cj->fd, junk, sizeof(junk) - 1) < 0)
			perror("write");
		wait_eof(cj->fd);
	} else {
		serve_tls(cj->pr, cj->fd);
	}
	close(cj->fd);
	free(cj);
	return NULL;
}

static void *peer_main(void *arg)
{
	struct peer *pr = arg;

	while (!atomic_load(&pr->stop)) {
		struct pollfd p = { pr->lfd, POLLIN, 0 };
		struct timeval tv = { 5, 0 };
		struct conn_job *cj;
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(pr->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		cj = malloc(sizeof(*cj));
		cj->pr = pr;
		cj->fd = fd;
		pthread_mutex_lock(&conn_lock);
		if (n_conn_threads < 256 &&
		    pthread_create(&conn_threads[n_conn_threads], NULL, conn_main, cj) == 0) {
			n_conn_threads++;
		} else {
			close(fd);
			free(cj);
		}
		pthread_mutex_unlock(&conn_lock);
	}
	return NULL;
}

static void peers_start(void)
{
	server_ctx = SSL_CTX_new(TLS_method());
	assert_non_null(server_ctx);
	assert_int_equal(SSL_CTX_use_certificate_ASN1(server_ctx, sizeof(chv_tls_cert_der), chv_tls_cert_der), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_ASN1(EVP_PKEY_RSA, server_ctx, chv_tls_key_der,
						     sizeof(chv_tls_key_der)), 1);
	for (int i = 0; i < PEER_N; i++) {
		struct sockaddr_in sin = { 0 };
		socklen_t sl = sizeof(sin);

		peers[i].mode = (enum peer_mode)i;
		atomic_store(&peers[i].stop, false);
		peers[i].lfd = socket(AF_INET, SOCK_STREAM, 0);
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(bind(peers[i].lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
		assert_int_equal(listen(peers[i].lfd, 16), 0);
		getsockname(peers[i].lfd, (struct sockaddr *)&sin, &sl);
		peers[i].port = ntohs(sin.sin_port);
		assert_int_equal(pthread_create(&peers[i].th, NULL, peer_main, &peers[i]), 0);
	}
}

static void peers_stop(void)
{
	for (int i = 0; i < PEER_N; i++) {
		atomic_store(&peers[i].stop, true);
		pthread_join(peers[i].th, NULL);
		close(peers[i].lfd);
	}
	for (unsigned i = 0; i < n_conn_threads; i++)
		pthread_join(conn_threads[i], NULL);
	SSL_CTX_free(server_ctx);
}

/* --- the client side, run on worker 0 -------------------------------------- */

struct result {
	_Atomic int done;
	int err;
	struct channel *ch;
	char why[512];
};

static struct {
	struct runtime *rt;
	struct worker *w;
	struct chanpool *pool;
	struct chanpool_config cfg;
	struct result res[16];
	uint32_t circ;
	_Atomic int cells, batch_ends, circ_closed;
	/* on_worker's jobs: how many were posted (main thread only) and the
	 * number of the last one the worker ran. */
	unsigned msg_posted;
	_Atomic unsigned msg_done;
	_Atomic int cells_before_first_end;
	_Atomic long pool_size;
	_Atomic int reconf_rc;
	_Atomic int open0;
	_Atomic int reg_dup, reg_zero, n_circs_after;
	struct chanpool_stats stats;
	/* What the observer saw, one "EVENT nick ncircs=N err=E" line each,
	 * and what chanpool_foreach listed ("nick open|opening" lines). */
	pthread_mutex_t ev_lock;
	char events[2048];
	char listed[512];
	uint64_t last_id;
	/* What the observer found wrong (it runs on the worker, where a
	 * cmocka assert would longjmp into the main thread's stack); the
	 * teardown fails the case if it is not empty. */
	char observe_bad[256];
} T;

static const char *const ev_names[] = { "LAUNCHED", "CONNECTED", "FAILED", "CLOSED" };

static void observe(void *arg, enum chanpool_chan_event ev, const struct chanpool_chan_info *ci)
{
	size_t n;

	(void)arg;
	pthread_mutex_lock(&T.ev_lock);
	n = strlen(T.events);
	snprintf(T.events + n, sizeof(T.events) - n, "%s %s ncircs=%zu err=%d\n", ev_names[ev], ci->target->nickname,
		 ci->ncircs, ci->err);
	if (ci->id == 0 && !T.observe_bad[0])
		snprintf(T.observe_bad, sizeof(T.observe_bad), "%s %s with channel id 0", ev_names[ev],
			 ci->target->nickname);
	if (ev == CHANPOOL_CHAN_LAUNCHED) {
		if (ci->id <= T.last_id && !T.observe_bad[0]) /* a new id per channel */
			snprintf(T.observe_bad, sizeof(T.observe_bad), "LAUNCHED %s reuses id %llu (last %llu)",
				 ci->target->nickname, (unsigned long long)ci->id, (unsigned long long)T.last_id);
		T.last_id = ci->id;
	}
	pthread_mutex_unlock(&T.ev_lock);
}

/* Take (and clear) the observer's lines. */
static void events_take(char *out, size_t cap)
{
	pthread_mutex_lock(&T.ev_lock);
	snprintf(out, cap, "%s", T.events);
	T.events[0] = '\0';
	pthread_mutex_unlock(&T.ev_lock);
}

/* The lines of events (as events_take gives them) that name peer, in order. */
static const char *events_of(const char *events, const char *peer, char *out, size_t cap)
{
	size_t off = 0;

	out[0] = '\0';
	for (const char *l = events; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) + 1 : strlen(l);
		char name[32];

		snprintf(name, sizeof(name), " %s ", peer);
		if (memmem(l, n, name, strlen(name)) && off + n < cap) {
			memcpy(out + off, l, n);
			off += n;
			out[off] = '\0';
		}
		l += n;
	}
	return out;
}

struct job {
	void (*fn)(struct job *j);
	int peer;
	int slot;
	bool wrong_id;
	unsigned seq;
};

static void got_channel(struct channel *ch, int err, const char *why, void *arg)
{
	struct result *r = arg;

	r->ch = ch;
	r->err = err;
	snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
	atomic_store(&r->done, 1);
}

static void target_of(struct relay_target *t, int peer, bool wrong_id)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;

	memset(t, 0, sizeof(*t));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons(peers[peer].port);
	t->addr_len = sizeof(*sin);
	memcpy(t->rsa_id, chv_rsa_id, 20);
	if (wrong_id)
		memset(t->rsa_id, 0x5A, 20);
	/* Distinct keys per peer, so each bad peer gets its own channel. */
	if (peer != PEER_GOOD)
		t->rsa_id[19] ^= (uint8_t)peer;
	t->has_ed = true;
	memcpy(t->ed_id, chv_ed_id, 32);
	snprintf(t->nickname, sizeof(t->nickname), "peer%d", peer);
}

static void job_get(struct job *j)
{
	struct relay_target t;
	int err;
	struct result *r = &T.res[j->slot];
	struct channel *ch;

	target_of(&t, j->peer, j->wrong_id);
	ch = chanpool_get(T.pool, &t, got_channel, r, &err);
	if (ch || err < 0)
		got_channel(ch, err, err < 0 ? "failed at once" : NULL, r);
}

/* Gets for slot and slot + 1 in one worker turn: the second finds the
 * first's channel still opening (two jobs posted apart could find it
 * open already when the main thread was descheduled between them). */
static void job_get_two(struct job *j)
{
	struct job second = *j;

	job_get(j);
	second.slot = j->slot + 1;
	job_get(&second);
}

/* A target no socket address fits: conn_connect refuses it at once. */
static void job_get_unconnectable(struct job *j)
{
	struct relay_target t;
	int err;
	struct result *r = &T.res[j->slot];

	target_of(&t, j->peer, false);
	t.addr_len = sizeof(t.addr) + 1;
	if (!chanpool_get(T.pool, &t, got_channel, r, &err) && err < 0)
		got_channel(NULL, err, "failed at once", r);
}

static void on_cell(struct channel *ch, const struct cell_view *cv, void *arg)
{
	(void)ch;
	(void)arg;
	if (cv->command == CELL_RELAY && cv->payload[0] == 0x42)
		atomic_fetch_add(&T.cells, 1);
}

static void on_batch_end(struct channel *ch, uint32_t circ_id, void *arg)
{
	(void)ch;
	(void)arg;
	if (circ_id == T.circ) {
		if (atomic_load(&T.batch_ends) == 0)
			atomic_store(&T.cells_before_first_end, atomic_load(&T.cells));
		atomic_fetch_add(&T.batch_ends, 1);
	}
}

static void on_chan_closed(struct channel *ch, uint32_t circ_id, int err, void *arg)
{
	(void)ch;
	(void)err;
	(void)arg;
	if (circ_id == T.circ)
		atomic_fetch_add(&T.circ_closed, 1);
}

static const struct channel_circ_ops circ_ops = {
	.on_cell = on_cell,
	.on_batch_end = on_batch_end,
	.on_channel_closed = on_chan_closed,
};

static void job_register_and_send(struct job *j)
{
	struct channel *ch = T.res[j->slot].ch;
	struct cell c = { 0 };

	T.circ = channel_alloc_circ_id(ch);
	if (!T.circ || channel_circ_register(ch, T.circ, &circ_ops, NULL) < 0)
		return;
	c.circ_id = T.circ;
	c.command = CELL_RELAY;
	c.payload[0] = 0x42;
	channel_send_cell(ch, &c);
}

/* Register errors, and unregister of an unknown id as a no-op. */
static void job_register_errors(struct job *j)
{
	struct channel *ch = T.res[j->slot].ch;

	atomic_store(&T.reg_dup, channel_circ_register(ch, T.circ, &circ_ops, NULL));
	atomic_store(&T.reg_zero, channel_circ_register(ch, 0, &circ_ops, NULL));
	channel_circ_unregister(ch, T.circ ^ 1);
	atomic_store(&T.n_circs_after, (int)channel_n_circs(ch));
}

static void job_send_split(struct job *j)
{
	struct cell c = { 0 };

	c.circ_id = T.circ;
	c.command = CELL_RELAY;
	c.payload[0] = 0x42;
	c.payload[1] = 1;
	channel_send_cell(T.res[j->slot].ch, &c);
}

static void job_send_destroy(struct job *j)
{
	struct cell c = { 0 };

	c.circ_id = T.circ;
	c.command = CELL_DESTROY;
	channel_send_cell(T.res[j->slot].ch, &c);
}

static void job_unregister(struct job *j)
{
	channel_circ_unregister(T.res[j->slot].ch, T.circ);
}

static void job_snapshot(struct job *j)
{
	(void)j;
	atomic_store(&T.pool_size, (long)chanpool_size(T.pool));
	T.stats = *chanpool_stats(T.pool);
}

/* ChannelPoolMaxIdle lowered to 150 ms at run time (SIGHUP/SETCONF). */
static void job_reconfigure_short_idle(struct job *j)
{
	(void)j;
	atomic_store(&T.reconf_rc, chanpool_reconfigure(T.pool, 150 * 1000000ull, 0));
}

/* Only while res[0]'s channel still carries our circuit (so is not freed). */
static void job_check_open0(struct job *j)
{
	(void)j;
	atomic_store(&T.open0, channel_is_open(T.res[0].ch));
}

static void list_one(void *ctx, const struct chanpool_chan_info *ci)
{
	size_t n = strlen(T.listed);

	(void)ctx;
	snprintf(T.listed + n, sizeof(T.listed) - n, "%s %s\n", ci->target->nickname, ci->open ? "open" : "opening");
}

static void job_list(struct job *j)
{
	(void)j;
	T.listed[0] = '\0';
	chanpool_foreach(T.pool, list_one, NULL);
}

static void job_pool_new(struct job *j)
{
	(void)j;
	T.pool = chanpool_new(T.w, &T.cfg);
}

static void job_pool_free(struct job *j)
{
	(void)j;
	chanpool_free(T.pool);
	T.pool = NULL;
}

/* Takes ownership of arg (a job): each job is its own allocation, so a job
 * the main thread stopped waiting for cannot be overwritten by the next. */
static void run_msg(struct worker *w, void *arg)
{
	struct job *j = arg;
	unsigned seq = j->seq;

	(void)w;
	j->fn(j);
	free(j);
	/* Pairs with the load in post_job's wait: the job's effects on T
	 * are visible once its number is. */
	atomic_store_explicit(&T.msg_done, seq, memory_order_release);
}

/* Bounds of the waits below: generous, since CI runs this under
 * ThreadSanitizer on a loaded machine; they only cost time on failure. */
#define WAIT_STEP_US 2000
#define WAIT_STEPS 5000 /* >= 10 s */

/* Post fn to worker 0 and wait (bounded) until it ran. Return 0, or -1 if
 * it could not be posted or did not run in time. Main thread only. */
static int post_job(void (*fn)(struct job *), int peer, int slot, bool wrong_id)
{
	struct job *j = malloc(sizeof(*j));
	unsigned seq = ++T.msg_posted;

	if (!j)
		return -1;
	*j = (struct job){ fn, peer, slot, wrong_id, seq };
	if (worker_post(T.w, run_msg, j) < 0) {
		free(j);
		return -1;
	}
	/* Jobs run in the order posted, so done >= seq means ours ran. */
	for (int i = 0; i < WAIT_STEPS && atomic_load_explicit(&T.msg_done, memory_order_acquire) < seq; i++)
		usleep(WAIT_STEP_US);
	return atomic_load_explicit(&T.msg_done, memory_order_acquire) >= seq ? 0 : -1;
}

static void on_worker(void (*fn)(struct job *), int peer, int slot, bool wrong_id)
{
	assert_int_equal(post_job(fn, peer, slot, wrong_id), 0);
}

static void wait_done(int slot)
{
	for (int i = 0; i < WAIT_STEPS && !atomic_load(&T.res[slot].done); i++)
		usleep(WAIT_STEP_US);
	assert_true(atomic_load(&T.res[slot].done));
}

/* Wait for slot's get and require an open channel: a case goes on to use
 * it on the worker, which must not see a NULL channel. */
static void wait_open(int slot)
{
	wait_done(slot);
	if (T.res[slot].err < 0 || !T.res[slot].ch)
		fail_msg("get %d: err %d, why \"%s\" (wanted an open channel)", slot, T.res[slot].err,
			 T.res[slot].why);
}

static bool wait_until(_Atomic int *v, int want)
{
	for (int i = 0; i < WAIT_STEPS && atomic_load(v) < want; i++)
		usleep(WAIT_STEP_US);
	return atomic_load(v) >= want;
}

/* Each case gets its own runtime and pool from a cmocka setup fixture, and
 * the teardown fixture (which cmocka runs even after a failed assert) stops
 * and joins the worker before the next case's setup clears T: a worker left
 * running by a failed case would otherwise race with that memset (seen under
 * ThreadSanitizer). Return 0, or -1 (with a message) when the runtime or
 * the pool cannot be made. */
static int setup_with(uint64_t idle_ns, uint64_t lifetime_ns)
{
	struct runtime_config rc;
	char why[256];

	if (runtime_probe(why, sizeof(why)) < 0) {
		fprintf(stderr, "skipped: %s\n", why);
		exit(77);
	}
	memset(&T, 0, sizeof(T));
	pthread_mutex_init(&T.ev_lock, NULL);
	runtime_config_defaults(&rc);
	rc.nworkers = 1;
	rc.max_conns = 64;
	rc.recv_bufs = 64;
	T.rt = runtime_new(&rc);
	if (!T.rt) {
		fprintf(stderr, "runtime_new failed\n");
		return -1;
	}
	if (runtime_start(T.rt) < 0) {
		fprintf(stderr, "runtime_start failed\n");
		goto fail;
	}
	T.w = runtime_worker(T.rt, 0);
	chanpool_config_defaults(&T.cfg);
	/* Long enough that every peer that answers does so in time under
	 * ThreadSanitizer on a loaded machine (400 ms was not: a good relay
	 * and the no-common-version one timed out); the stalled peer waits
	 * it out. */
	T.cfg.chan.handshake_timeout_ns = 3000 * 1000000ull;
	T.cfg.chan.fixed_wallclock = (time_t)CHV_NOW;
	if (idle_ns)
		T.cfg.max_idle_ns = idle_ns;
	if (lifetime_ns)
		T.cfg.max_lifetime_ns = lifetime_ns;
	T.cfg.observe = observe;
	if (post_job(job_pool_new, 0, 0, false) < 0 || !T.pool) {
		fprintf(stderr, "chanpool_new on the worker failed or did not run\n");
		goto fail;
	}
	return 0;
fail:
	runtime_stop(T.rt);
	runtime_join(T.rt);
	runtime_free(T.rt);
	T.rt = NULL;
	return -1;
}

static int setup_default(void **state)
{
	(void)state;
	return setup_with(0, 0);
}

static int setup_short_idle(void **state)
{
	(void)state;
	return setup_with(150 * 1000000ull, 0);
}

static int setup_short_lifetime(void **state)
{
	(void)state;
	return setup_with(0, 300 * 1000000ull);
}

/* Free the pool on its worker (if a case has not already), then stop and
 * join every thread of the runtime: nothing of this case runs after. */
static int teardown_all(void **state)
{
	int rc = 0;

	(void)state;
	if (!T.rt)
		return 0;
	/* Not waited for with an assert: after a failed case the worker may
	 * be slow or stuck; the stop message queues behind this job. */
	if (post_job(job_pool_free, 0, 0, false) < 0) {
		fprintf(stderr, "teardown: freeing the pool did not finish in time\n");
		rc = -1;
	}
	runtime_stop(T.rt);
	runtime_join(T.rt);
	runtime_free(T.rt);
	T.rt = NULL;
	/* The worker is joined: its writes to T are visible. */
	if (T.observe_bad[0]) {
		fprintf(stderr, "observer: %s\n", T.observe_bad);
		rc = -1;
	}
	return rc;
}

/* --- tests --------------------------------------------------------------- */

static void test_chanpool_opens_validated_channel_then_reuses_it(void **state)
{
	(void)state;
	on_worker(job_get_two, PEER_GOOD, 0, false); /* 1 joins 0's opening channel */
	wait_done(0);
	wait_done(1);
	assert_int_equal(T.res[0].err, 0);
	assert_non_null(T.res[0].ch);
	assert_ptr_equal(T.res[1].ch, T.res[0].ch);
	on_worker(job_get, PEER_GOOD, 2, false); /* open now: answered at once */
	wait_done(2);
	assert_ptr_equal(T.res[2].ch, T.res[0].ch);
	on_worker(job_snapshot, 0, 0, false);
	assert_int_equal(T.stats.opened, 1);
	assert_int_equal(T.stats.joined, 1);
	assert_int_equal(T.stats.reused, 1);
	assert_int_equal(atomic_load(&T.pool_size), 1);
	{
		struct channel *ch = T.res[0].ch;
		const struct channel_timings *tm = channel_timings(ch);

		assert_int_equal(channel_link_proto(ch), 5);
		assert_memory_equal(channel_identity(ch)->rsa_id, chv_rsa_id, 20);
		assert_memory_equal(channel_identity(ch)->ed_id, chv_ed_id, 32);
		assert_true(tm->tcp_connect_ns > 0 && tm->tls_handshake_ns > 0 && tm->link_handshake_ns > 0);
		assert_true(tm->total_ns >= tm->tcp_connect_ns + tm->tls_handshake_ns);
	}
}

static void test_channel_delivers_cells_per_circuit_with_batch_end(void **state)
{
	(void)state;
	on_worker(job_get, PEER_GOOD, 0, false);
	wait_done(0);
	assert_int_equal(T.res[0].err, 0);
	on_worker(job_register_and_send, PEER_GOOD, 0, false);
	assert_true(T.circ & 0x80000000u); /* tor-spec 5.1.1: initiator sets the MSB */
	assert_true(wait_until(&T.cells, 2));
	assert_true(wait_until(&T.batch_ends, 1));
	/* The relay wrote both cells at once: a batch end follows cells. */
	assert_true(atomic_load(&T.cells_before_first_end) >= 1);
	assert_true(atomic_load(&T.batch_ends) <= 2);
	on_worker(job_register_errors, PEER_GOOD, 0, false);
	assert_int_equal(atomic_load(&T.reg_dup), -EEXIST);
	assert_int_equal(atomic_load(&T.reg_zero), -EINVAL);
	assert_int_equal(atomic_load(&T.n_circs_after), 1);
}

static void test_channel_reassembles_cells_split_across_reads(void **state)
{
	(void)state;
	on_worker(job_get, PEER_GOOD, 0, false);
	wait_open(0);
	on_worker(job_register_and_send, PEER_GOOD, 0, false);
	assert_true(wait_until(&T.cells, 2));
	on_worker(job_send_split, PEER_GOOD, 0, false);
	assert_true(wait_until(&T.cells, 5));
	usleep(50000);
	assert_int_equal(atomic_load(&T.cells), 5); /* no cell seen twice */
}

static void test_relay_hangup_tells_circuits_and_pool_reopens(void **state)
{
	(void)state;
	on_worker(job_get, PEER_GOOD, 0, false);
	wait_open(0);
	on_worker(job_register_and_send, PEER_GOOD, 0, false);
	assert_true(wait_until(&T.cells, 2));
	on_worker(job_send_destroy, PEER_GOOD, 0, false); /* the fake relay hangs up */
	assert_true(wait_until(&T.circ_closed, 1));
	on_worker(job_snapshot, 0, 0, false);
	assert_int_equal(atomic_load(&T.pool_size), 0);
	assert_int_equal(T.stats.lost, 1);
	on_worker(job_get, PEER_GOOD, 1, false);
	wait_done(1);
	assert_int_equal(T.res[1].err, 0);
	on_worker(job_snapshot, 0, 0, false);
	assert_int_equal(T.stats.opened, 2);
}

static void expect_failure(int slot, int peer, const char *needle)
{
	wait_done(slot);
	if (T.res[slot].err >= 0 || !strstr(T.res[slot].why, needle))
		fail_msg("peer %d: err %d, why \"%s\" (wanted \"%s\")", peer, T.res[slot].err,
			 T.res[slot].why, needle);
}

static void test_bad_peers_each_fail_alone_with_clear_reason(void **state)
{
	(void)state;
	on_worker(job_get, PEER_GOOD, 0, false);
	wait_done(0);
	assert_int_equal(T.res[0].err, 0);
	on_worker(job_get, PEER_GARBAGE, 1, false);
	on_worker(job_get, PEER_CLOSE_MID, 2, false);
	on_worker(job_get, PEER_NO_VERSION, 3, false);
	on_worker(job_get, PEER_BAD_CERTS, 4, false);
	on_worker(job_get, PEER_STALL, 5, false);
	expect_failure(1, PEER_GARBAGE, "TLS handshake failed");
	expect_failure(2, PEER_CLOSE_MID, "closed by the peer during the link handshake");
	expect_failure(3, PEER_NO_VERSION, "VERSIONS");
	expect_failure(4, PEER_BAD_CERTS, "CERTS");
	expect_failure(5, PEER_STALL, "timed out");
	assert_int_equal(T.res[5].err, -ETIMEDOUT);
	/* The good channel is still open and carries cells. */
	on_worker(job_register_and_send, PEER_GOOD, 0, false);
	assert_true(wait_until(&T.cells, 2));
	on_worker(job_snapshot, 0, 0, false);
	on_worker(job_check_open0, 0, 0, false);
	assert_true(atomic_load(&T.open0));
	assert_int_equal(T.stats.failed, 5);
}

static void test_wrong_identity_is_refused_naming_both(void **state)
{
	(void)state;
	on_worker(job_get, PEER_GOOD, 0, true);
	expect_failure(0, PEER_GOOD, "identity mismatch");
	assert_non_null(strstr(T.res[0].why, "5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A"));
	assert_non_null(strstr(T.res[0].why, CHV_RSA_ID_HEX));
	assert_int_equal(T.res[0].err, -EPERM);
}

static void test_idle_channel_closes_after_max_idle_but_busy_one_stays(void **state)
{
	(void)state;
	on_worker(job_get, PEER_GOOD, 0, false);
	wait_open(0);
	on_worker(job_register_and_send, PEER_GOOD, 0, false);
	usleep(400000); /* > max idle, but it has a circuit */
	on_worker(job_snapshot, 0, 0, false);
	assert_int_equal(atomic_load(&T.pool_size), 1);
	assert_int_equal(T.stats.closed_idle, 0);
	on_worker(job_unregister, PEER_GOOD, 0, false);
	for (int i = 0; i < 200; i++) {
		on_worker(job_snapshot, 0, 0, false);
		if (atomic_load(&T.pool_size) == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(atomic_load(&T.pool_size), 0);
	assert_int_equal(T.stats.closed_idle, 1);
}

static void test_old_channel_is_retired_and_replaced(void **state)
{
	(void)state;
	on_worker(job_get, PEER_GOOD, 0, false);
	wait_open(0);
	on_worker(job_register_and_send, PEER_GOOD, 0, false);
	usleep(500000);
	on_worker(job_get, PEER_GOOD, 1, false);
	wait_done(1);
	assert_int_equal(T.res[1].err, 0);
	assert_ptr_not_equal(T.res[1].ch, T.res[0].ch);
	on_worker(job_snapshot, 0, 0, false);
	assert_int_equal(T.stats.retired, 1);
	assert_int_equal(T.stats.opened, 2);
	on_worker(job_check_open0, 0, 0, false);
	assert_true(atomic_load(&T.open0)); /* still carries its circuit */
}

/* The observer (ORCONN events above net/) hears LAUNCHED, then CONNECTED
 * or FAILED with the error, and CLOSED only after CONNECTED, once per
 * channel; NCIRCS counts the circuits on it or waiting for it. */
static void test_chanpool_tells_its_observer_each_channel_step(void **state)
{
	char ev[2048], one[2048];

	(void)state;
	on_worker(job_get, PEER_GOOD, 0, false);
	on_worker(job_get, PEER_STALL, 1, false);
	on_worker(job_list, 0, 0, false);
	/* peer0's handshake may already be done (local, fast); the stalled
	 * one is still opening. */
	assert_true(strstr(T.listed, "peer0 opening\n") || strstr(T.listed, "peer0 open\n"));
	assert_non_null(strstr(T.listed, "peer5 opening\n"));
	wait_open(0);
	on_worker(job_list, 0, 0, false);
	assert_non_null(strstr(T.listed, "peer0 open\n"));
	expect_failure(1, PEER_STALL, "timed out");
	on_worker(job_list, 0, 0, false);
	assert_string_equal(T.listed, "peer0 open\n"); /* the failed one is gone */
	events_take(ev, sizeof(ev));
	/* Each channel's own steps in order; the two channels' steps may
	 * interleave (peer0's local handshake can finish before peer5 is
	 * even launched). */
	assert_string_equal(events_of(ev, "peer0", one, sizeof(one)),
			    "LAUNCHED peer0 ncircs=1 err=0\nCONNECTED peer0 ncircs=1 err=0\n");
	assert_string_equal(events_of(ev, "peer5", one, sizeof(one)),
			    "LAUNCHED peer5 ncircs=1 err=0\nFAILED peer5 ncircs=1 err=-110\n");
	assert_int_equal(strlen(ev), strlen("LAUNCHED peer0 ncircs=1 err=0\nCONNECTED peer0 ncircs=1 err=0\n"
					    "LAUNCHED peer5 ncircs=1 err=0\nFAILED peer5 ncircs=1 err=-110\n"));
	/* The relay hangs up a channel with one circuit: CLOSED, once. */
	on_worker(job_register_and_send, PEER_GOOD, 0, false);
	assert_true(wait_until(&T.cells, 2));
	on_worker(job_send_destroy, PEER_GOOD, 0, false);
	assert_true(wait_until(&T.circ_closed, 1));
	on_worker(job_snapshot, 0, 0, false);
	events_take(ev, sizeof(ev));
	assert_string_equal(ev, "CLOSED peer0 ncircs=1 err=-104\n"); /* -ECONNRESET */
	/* A wrong identity fails; an open channel closes when the pool goes. */
	on_worker(job_get, PEER_GOOD, 2, true);
	expect_failure(2, PEER_GOOD, "identity mismatch");
	on_worker(job_get, PEER_GOOD, 3, false);
	wait_done(3);
	/* Refused before any connection: LAUNCHED and FAILED at once. */
	on_worker(job_get_unconnectable, PEER_GARBAGE, 4, false);
	wait_done(4);
	assert_int_equal(T.res[4].err, -EINVAL);
	on_worker(job_pool_free, 0, 0, false); /* the teardown's free is then a no-op */
	events_take(ev, sizeof(ev));
	assert_string_equal(ev, "LAUNCHED peer0 ncircs=1 err=0\n"
				"FAILED peer0 ncircs=1 err=-1\n"
				"LAUNCHED peer0 ncircs=1 err=0\n"
				"CONNECTED peer0 ncircs=1 err=0\n"
				"LAUNCHED peer1 ncircs=1 err=0\n"
				"FAILED peer1 ncircs=1 err=-22\n"
				"CLOSED peer0 ncircs=0 err=-125\n");
}

/* The pool starts with the default 3-minute idle limit and its sweep ten
 * seconds out; lowering the limit at run time must close the idle channel
 * within a bounded time, not after the old limit or the old sweep period. */
static void test_lowered_max_idle_closes_an_open_idle_channel(void **state)
{
	(void)state;
	on_worker(job_get, PEER_GOOD, 0, false);
	wait_done(0);
	assert_int_equal(T.res[0].err, 0);
	on_worker(job_register_and_send, PEER_GOOD, 0, false);
	on_worker(job_unregister, PEER_GOOD, 0, false);
	usleep(300000); /* idle longer than the new limit, far below the old one */
	on_worker(job_snapshot, 0, 0, false);
	assert_int_equal(atomic_load(&T.pool_size), 1);
	assert_int_equal(T.stats.closed_idle, 0);
	on_worker(job_reconfigure_short_idle, 0, 0, false);
	assert_int_equal(atomic_load(&T.reconf_rc), 0);
	for (int i = 0; i < 200; i++) { /* bounded: 2 s, the old sweep was 10 s */
		on_worker(job_snapshot, 0, 0, false);
		if (atomic_load(&T.pool_size) == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(atomic_load(&T.pool_size), 0);
	assert_int_equal(T.stats.closed_idle, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chanpool_opens_validated_channel_then_reuses_it, setup_default, teardown_all),
		cmocka_unit_test_setup_teardown(test_channel_delivers_cells_per_circuit_with_batch_end, setup_default, teardown_all),
		cmocka_unit_test_setup_teardown(test_channel_reassembles_cells_split_across_reads, setup_default, teardown_all),
		cmocka_unit_test_setup_teardown(test_relay_hangup_tells_circuits_and_pool_reopens, setup_default, teardown_all),
		cmocka_unit_test_setup_teardown(test_bad_peers_each_fail_alone_with_clear_reason, setup_default, teardown_all),
		cmocka_unit_test_setup_teardown(test_wrong_identity_is_refused_naming_both, setup_default, teardown_all),
		cmocka_unit_test_setup_teardown(test_idle_channel_closes_after_max_idle_but_busy_one_stays, setup_short_idle, teardown_all),
		cmocka_unit_test_setup_teardown(test_old_channel_is_retired_and_replaced, setup_short_lifetime, teardown_all),
		cmocka_unit_test_setup_teardown(test_chanpool_tells_its_observer_each_channel_step, setup_default, teardown_all),
		cmocka_unit_test_setup_teardown(test_lowered_max_idle_closes_an_open_idle_channel, setup_default, teardown_all),
	};
	int rc;

	peers_start();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	peers_stop();
	return rc;
}
