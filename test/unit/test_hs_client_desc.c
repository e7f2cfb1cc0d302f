/* The onion-service client (app/hs_client.c) when every responsible HSDir
 * serves a bad descriptor (issue 8's bad-input list): a real one-worker
 * runtime with a circuit manager, the directory of test/vectors/hs/ring.*
 * moved to the capture time of test/vectors/hs/{noauth,auth}.desc, and
 * the descriptor fetch replaced through hs_client_set_io. Every HSDir
 * answers with tor's real descriptor of noauth.desc with one thing broken
 * (the signature, the signing-key certificate, a clock past the cert's
 * expiry, a consensus in the next time period), with a descriptor of a
 * service the test makes whose layers decrypt (MACs hold, signatures
 * verify) to garbage, or with 404. Each SOCKS stream must end with
 * socks-extensions.txt's code (0xF1 descriptor invalid, 0xF0 not found)
 * at once (no timeout runs out), after every responsible HSDir was asked
 * exactly once; a second onion stream on the same shard (auth.desc's
 * service), whose fetch is held in flight meanwhile, must not be touched
 * and must get its own answer afterwards. hs_desc_decode is run on each
 * altered document too, so each case fails for the reason it claims.
 *
 * The shard may build no circuit (max_circuits 0): the unaltered
 * descriptor then ends its stream with 0xF3 (no rendezvous circuit),
 * which shows the descriptor itself was accepted. Not here: the
 * introduction and rendezvous failures (test/integration/test_onion.sh). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "app/circmgr.h"
#include "app/hs_client.h"
#include "app/nodes.h"
#include "app/stream.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "net/runtime.h"
#include "net/worker.h"
#include "proto/consensus.h"
#include "proto/ed25519_cert.h"
#include "proto/hs_desc.h"
#include "proto/hs_keys.h"
#include "proto/microdesc.h"
#include "proto/onion_addr.h"
#include "proto/socks.h"

#define MAX_ASKED 64
/* cmocka's asserts may not run on the worker thread: this aborts there. */
#define WORKER_CHECK(x) \
	do { \
		if (!(x)) { \
			fprintf(stderr, "%s:%d: worker check failed: %s\n", __FILE__, __LINE__, #x); \
			abort(); \
		} \
	} while (0)
#define WAIT_MS 10000 /* every wait here is bounded by this */
/* A stream whose fetches are answered at once must end well inside the
 * client's own bounds (30 s per fetch, 90 s per connection). */
#define PROMPT_NS (5ull * 1000000000ull)

/* --- the vectors ----------------------------------------------------------- */

struct svc {
	char host[80];     /* "<56 chars>.onion" */
	uint8_t id[32];
	char *doc;         /* the real descriptor, NL-terminated */
	size_t len;
};

static struct consensus *cons;
static struct microdesc_batch *mdb;
static const struct microdesc **md_ptrs;
static struct nodelist *nl;
static time_t capture_va, ring_va, ring_fresh, ring_valid;
static struct svc svc_a; /* noauth: the one that gets bad descriptors */
static struct svc svc_b; /* auth: the bystander on the same shard */

static char *slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *b = malloc(HS_DESC_MAX_LEN + 2);

	assert_non_null(b);
	snprintf(path, sizeof(path), "%s/%s", HS_VECTORS, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	*len = fread(b, 1, HS_DESC_MAX_LEN + 1, f);
	fclose(f);
	b[*len] = 0;
	return b;
}

static time_t meta_time(const char *meta)
{
	const char *p = strstr(meta, "valid-after ");
	struct tm tm = { 0 };

	assert_non_null(p);
	assert_non_null(strptime(p + 12, "%Y-%m-%d %H:%M:%S", &tm));
	return timegm(&tm);
}

static void svc_load(struct svc *s, const char *base)
{
	char name[64], addr[64] = "", *meta;
	size_t n;

	snprintf(name, sizeof(name), "%s.desc", base);
	s->doc = slurp(name, &s->len);
	/* The control port gives it without the final NL; an HSDir's body has it. */
	if (s->len && s->doc[s->len - 1] != '\n')
		s->doc[s->len++] = '\n';
	snprintf(name, sizeof(name), "%s.meta", base);
	meta = slurp(name, &n);
	assert_int_equal(sscanf(meta, "address %63s", addr), 1);
	capture_va = meta_time(meta);
	free(meta);
	snprintf(s->host, sizeof(s->host), "%s.onion", addr);
	assert_int_equal(onion_addr_parse(s->host, strlen(s->host), s->id), ONION_ADDR_OK);
}

static int group_setup(void **state)
{
	struct netdoc_err err;
	size_t len;
	char *doc;

	(void)state;
	svc_load(&svc_b, "auth");
	svc_load(&svc_a, "noauth"); /* both were captured at the same valid-after */
	doc = slurp("ring.consensus", &len);
	assert_int_equal(consensus_parse(doc, len, &cons, &err), PARSE_OK);
	free(doc);
	doc = slurp("ring.microdescs", &len);
	assert_int_equal(microdesc_parse_batch(doc, strlen(doc), &mdb, &err), PARSE_OK);
	free(doc);
	md_ptrs = calloc(mdb->n, sizeof(*md_ptrs));
	assert_non_null(md_ptrs);
	for (size_t i = 0; i < mdb->n; i++)
		md_ptrs[i] = &mdb->mds[i];
	nl = nodelist_new(cons, md_ptrs, mdb->n);
	ring_va = cons->valid_after;
	ring_fresh = cons->fresh_until;
	ring_valid = cons->valid_until;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	nodelist_free(nl);
	free(md_ptrs);
	microdesc_batch_free(mdb);
	consensus_free(cons);
	free(svc_a.doc);
	free(svc_b.doc);
	return 0;
}

/* Put the directory's consensus at va (its intervals kept): the client
 * takes its time period from it. Only while no worker runs. */
static void consensus_move_to(time_t va)
{
	cons->valid_after = va;
	cons->fresh_until = va + (ring_fresh - ring_va);
	cons->valid_until = va + (ring_valid - ring_va);
}

/* The directory the shard sees: the ring network, no path selector (the
 * shard builds no circuit). */
static bool dir_acquire(struct dirview *out)
{
	memset(out, 0, sizeof(*out));
	out->nl = nl;
	return true;
}

static void dir_release(void *ref) { (void)ref; }

/* --- what the client should do: the period, the path, the HSDirs ---------- */

static void svc_path(const struct svc *s, char *out, size_t cap, uint8_t blinded[32], uint8_t subcred[32])
{
	struct hs_period_cfg pc;
	char b64[64];

	hs_client_period_cfg(cons, &pc);
	assert_true(hs_blinded_key(blinded, s->id, hs_period_num(&pc, cons->valid_after), pc.length));
	hs_subcredential(subcred, s->id, blinded);
	assert_true(base64_encode(b64, sizeof(b64), blinded, 32, false) > 0);
	snprintf(out, cap, "/tor/hs/3/%s", b64);
}

/* The responsible HSDirs of blinded (rend-spec-v3 2.2.3, the ring of
 * Running+Valid HSDirs with an ed25519 id, hsdir_n_replicas x
 * hsdir_spread_fetch of them): their RSA ids into out; returns how many. */
static size_t responsible_hsdirs(const uint8_t blinded[32], uint8_t out[][20], size_t cap)
{
	struct hs_period_cfg pc;
	struct hs_ring_entry *ring = calloc(nl->n, sizeof(*ring));
	uint32_t pick[MAX_ASKED];
	uint8_t srv[32];
	uint64_t num;
	size_t n = 0, np;
	bool cur;

	assert_non_null(ring);
	hs_client_period_cfg(cons, &pc);
	num = hs_period_num(&pc, cons->valid_after);
	cur = hs_period_uses_current_srv(&pc, cons->valid_after);
	if (cur ? cons->has_srv_current : cons->has_srv_previous)
		memcpy(srv, cur ? cons->srv_current : cons->srv_previous, 32);
	else
		hs_disaster_srv(srv, num, pc.length);
	for (size_t i = 0; i < nl->n; i++) {
		const struct node *nd = &nl->nodes[i];

		if (!node_has_flags(nd, RFLAG_HSDIR | RFLAG_RUNNING | RFLAG_VALID) || !nd->md || !nd->md->has_ed25519)
			continue;
		hs_relay_index(ring[n].index, nd->md->ed25519_id, srv, num, pc.length);
		ring[n].handle = (uint32_t)i;
		n++;
	}
	hs_ring_sort(ring, n);
	np = hs_ring_pick(ring, n, blinded, num, pc.length,
			  (unsigned)consensus_param(cons, "hsdir_n_replicas", HS_N_REPLICAS_DEFAULT, 1, HS_N_REPLICAS_MAX),
			  (unsigned)consensus_param(cons, "hsdir_spread_fetch", HS_SPREAD_FETCH_DEFAULT, 1, HS_SPREAD_MAX),
			  pick, MAX_ASKED);
	free(ring);
	assert_true(np <= cap);
	for (size_t i = 0; i < np; i++)
		memcpy(out[i], nl->nodes[pick[i]].rs->identity, 20);
	return np;
}

/* --- the fake HSDirs -------------------------------------------------------- */

struct asked {
	uint8_t rsa_id[20];
	char path[96];
};

struct held {
	dirfetch_done_fn done;
	void *arg;
};

struct reply {
	dirfetch_done_fn done;
	void *arg;
	int status;
	uint8_t *body;
	size_t len;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct asked asked[MAX_ASKED]; /* guarded by lock */
static size_t n_asked;
static struct held held[MAX_ASKED];   /* fetches for hold_path, not answered yet */
static size_t n_held;
static char hold_path[96];            /* "" : answer everything at once */
static int serve_status;              /* what every HSDir answers for the rest */
static char *serve_doc;
static size_t serve_len;
static _Atomic time_t wall_now;
static struct runtime *rt;

static time_t fake_wall(void) { return atomic_load(&wall_now); }

static void deliver(struct worker *w, void *arg)
{
	struct reply *r = arg;

	(void)w;
	r->done(r->arg, r->status, r->body, r->len, r->status == 200 ? NULL : "HTTP 404");
	free(r);
}

/* dirfetch_start_anon's contract: 0 and one later call of done, which
 * takes the body. */
static int fake_fetch(struct worker *w, const struct relay_target *t, const char *path, size_t max_len,
		      uint64_t timeout_ns, dirfetch_done_fn done, void *arg)
{
	struct reply *r;

	(void)max_len;
	(void)timeout_ns;
	pthread_mutex_lock(&lock);
	WORKER_CHECK(n_asked < MAX_ASKED);
	memcpy(asked[n_asked].rsa_id, t->rsa_id, 20);
	snprintf(asked[n_asked].path, sizeof(asked[n_asked].path), "%s", path);
	n_asked++;
	if (hold_path[0] && strcmp(path, hold_path) == 0) {
		held[n_held].done = done;
		held[n_held].arg = arg;
		n_held++;
		pthread_mutex_unlock(&lock);
		return 0;
	}
	r = calloc(1, sizeof(*r));
	WORKER_CHECK(r);
	r->done = done;
	r->arg = arg;
	r->status = serve_status;
	if (serve_status == 200) {
		r->body = malloc(serve_len);
		WORKER_CHECK(r->body);
		memcpy(r->body, serve_doc, serve_len);
		r->len = serve_len;
	}
	pthread_mutex_unlock(&lock);
	WORKER_CHECK(worker_post(w, deliver, r) == 0);
	return 0;
}

/* Answer the held fetches (on the worker) with doc. */
static void release_held(struct worker *w, void *arg)
{
	const struct svc *s = arg;
	struct held h[MAX_ASKED];
	size_t n;

	(void)w;
	pthread_mutex_lock(&lock);
	n = n_held;
	memcpy(h, held, n * sizeof(h[0]));
	n_held = 0;
	hold_path[0] = '\0';
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < n; i++) {
		uint8_t *body = malloc(s->len);

		WORKER_CHECK(body);
		memcpy(body, s->doc, s->len);
		h[i].done(h[i].arg, 200, body, s->len, NULL);
	}
}

/* --- SOCKS-side streams ----------------------------------------------------- */

struct client {
	const struct svc *s;
	_Atomic int ended;
	_Atomic int code;
	uint64_t opened_ns;
	_Atomic uint64_t ended_ns;
};

static void on_connected(void *sess, const struct socks_addr *bound)
{
	(void)sess;
	(void)bound;
	WORKER_CHECK(!"a stream connected with no circuit to carry it");
}

static void on_resolved(void *sess, const struct socks_addr *a, uint32_t ttl)
{
	(void)sess;
	(void)a;
	(void)ttl;
}

static void on_data(void *sess, const uint8_t *d, size_t n)
{
	(void)sess;
	(void)d;
	(void)n;
}

static void on_writable(void *sess) { (void)sess; }

static void on_end(void *sess, enum socks5_reply code, const char *why)
{
	struct client *cl = sess;

	(void)why;
	atomic_store(&cl->code, (int)code);
	atomic_store(&cl->ended_ns, clock_mono_ns());
	atomic_store(&cl->ended, 1);
}

static const struct stream_events events = {
	on_connected, on_resolved, on_data, on_writable, on_end, NULL, NULL, /* no MaxMemInQueues hooks */
};

static void msg_open(struct worker *w, void *arg)
{
	struct client *cl = arg;
	struct stream_target t;
	enum socks5_reply code;
	const char *why;

	memset(&t, 0, sizeof(t));
	t.kind = STREAM_CONNECT;
	t.dest.type = SOCKS_ADDR_HOSTNAME;
	t.dest.host_len = strlen(cl->s->host);
	memcpy(t.dest.host, cl->s->host, t.dest.host_len);
	t.port = 80;
	cl->opened_ns = clock_mono_ns();
	if (!stream_open(w, &t, &events, cl, &code, &why))
		on_end(cl, code, why);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void client_open(struct client *cl, const struct svc *s)
{
	memset(cl, 0, sizeof(*cl));
	cl->s = s;
	assert_int_equal(worker_post(runtime_worker(rt, 0), msg_open, cl), 0);
}

/* Wait (bounded) for cl's end; return its SOCKS code. */
static int client_wait(struct client *cl)
{
	for (int i = 0; i < WAIT_MS / 10 && !atomic_load(&cl->ended); i++)
		sleep_ms(10);
	assert_true(atomic_load(&cl->ended));
	assert_true(atomic_load(&cl->ended_ns) - cl->opened_ns < PROMPT_NS);
	return atomic_load(&cl->code);
}

/* Wait (bounded) until n fetches were asked for. */
static void wait_asked(size_t n)
{
	size_t got = 0;

	for (int i = 0; i < WAIT_MS / 10; i++) {
		pthread_mutex_lock(&lock);
		got = n_asked;
		pthread_mutex_unlock(&lock);
		if (got >= n)
			break;
		sleep_ms(10);
	}
	assert_true(got >= n);
}

/* --- the shard -------------------------------------------------------------- */

static void worker_started(struct worker *w, void *arg)
{
	/* No circuits: the fetch is faked, and a descriptor that passes
	 * ends at the rendezvous circuit (0xF3). */
	struct circmgr_config cfg = { .build_timeout_ns = 60000000000ull, .max_circuits = 0 };

	(void)arg;
	assert_int_equal(circmgr_start(w, &cfg), 0);
}

static void worker_stopping(struct worker *w, void *arg)
{
	(void)arg;
	circmgr_stop(w);
}

/* Serve status/doc from every HSDir at wall clock now with the consensus
 * at va, and start the shard. */
static void start(int status, const char *doc, size_t len, time_t now, time_t va)
{
	struct hs_client_io io = { fake_fetch, fake_wall };
	struct runtime_config cfg;
	char why[256];

	if (runtime_probe(why, sizeof(why)) < 0)
		skip();
	consensus_move_to(va);
	atomic_store(&wall_now, now);
	pthread_mutex_lock(&lock);
	n_asked = n_held = 0;
	hold_path[0] = '\0';
	serve_status = status;
	free(serve_doc);
	serve_doc = NULL;
	serve_len = len;
	if (doc) {
		serve_doc = malloc(len);
		assert_non_null(serve_doc);
		memcpy(serve_doc, doc, len);
	}
	pthread_mutex_unlock(&lock);
	hs_client_set_io(&io);
	circmgr_set_directory(dir_acquire, dir_release);
	runtime_config_defaults(&cfg);
	cfg.nworkers = 1;
	cfg.max_conns = 16;
	cfg.recv_bufs = 16;
	cfg.pin_cpus = false;
	cfg.worker_started = worker_started;
	cfg.worker_stopping = worker_stopping;
	rt = runtime_new(&cfg);
	assert_non_null(rt);
	assert_int_equal(runtime_start(rt), 0);
}

static void stop(void)
{
	runtime_stop(rt);
	runtime_join(rt);
	circmgr_free(runtime_worker(rt, 0));
	runtime_free(rt);
	rt = NULL;
	hs_client_set_io(NULL);
	pthread_mutex_lock(&lock);
	free(serve_doc);
	serve_doc = NULL;
	pthread_mutex_unlock(&lock);
}

/* Every fetch asked for path, each responsible HSDir exactly once and no
 * other relay. */
static void assert_every_hsdir_asked_once(const char *path, const uint8_t blinded[32])
{
	uint8_t want[MAX_ASKED][20];
	size_t nw = responsible_hsdirs(blinded, want, MAX_ASKED);

	assert_true(nw >= 2);
	pthread_mutex_lock(&lock);
	assert_int_equal(n_asked, nw);
	for (size_t i = 0; i < n_asked; i++) {
		size_t hits = 0;

		assert_string_equal(asked[i].path, path);
		for (size_t j = 0; j < nw; j++)
			hits += memcmp(asked[i].rsa_id, want[j], 20) == 0;
		assert_int_equal(hits, 1);
		for (size_t j = 0; j < i; j++)
			assert_memory_not_equal(asked[i].rsa_id, asked[j].rsa_id, 20);
	}
	pthread_mutex_unlock(&lock);
}

/* The whole scenario: every HSDir serves doc (status 200) or 404 at wall
 * clock now, consensus at va; service B's fetch is held meanwhile. A's
 * stream must end with want at once after every responsible HSDir was
 * asked; B must still be waiting, and then get its own answer want_b
 * (0xF4 when its descriptor is good at that clock and period: it needs a
 * client-auth key this shard lacks). */
static void run_case_for(const struct svc *sa, int status, const char *doc, size_t len, time_t now, time_t va,
			 int want, int want_b)
{
	struct client a, b;
	uint8_t blinded_a[32], sub_a[32], blinded_b[32], sub_b[32];
	char path_a[96], path_b[96];

	start(status, doc, len, now, va);
	svc_path(sa, path_a, sizeof(path_a), blinded_a, sub_a);
	svc_path(&svc_b, path_b, sizeof(path_b), blinded_b, sub_b);
	pthread_mutex_lock(&lock);
	snprintf(hold_path, sizeof(hold_path), "%s", path_b);
	pthread_mutex_unlock(&lock);
	client_open(&b, &svc_b);
	wait_asked(1); /* B's first HSDir holds its answer */
	pthread_mutex_lock(&lock);
	n_asked = 0;
	pthread_mutex_unlock(&lock);

	client_open(&a, sa);
	assert_int_equal(client_wait(&a), want);
	assert_every_hsdir_asked_once(path_a, blinded_a);

	/* The bystander: untouched, and it still works. */
	assert_false(atomic_load(&b.ended));
	pthread_mutex_lock(&lock);
	assert_int_equal(n_held, 1);
	pthread_mutex_unlock(&lock);
	assert_int_equal(worker_post(runtime_worker(rt, 0), release_held, &svc_b), 0);
	assert_int_equal(client_wait(&b), want_b);
	stop();
}

static void run_case(int status, const char *doc, size_t len, time_t now, time_t va, int want, int want_b)
{
	run_case_for(&svc_a, status, doc, len, now, va, want, want_b);
}

/* A copy of the real descriptor of A (caller frees). */
static char *doc_copy(void)
{
	char *d = malloc(svc_a.len + 1);

	assert_non_null(d);
	memcpy(d, svc_a.doc, svc_a.len + 1);
	return d;
}

/* hs_desc_decode's verdict on doc for sv's keys under the consensus at va. */
static enum hs_desc_err decode_for(const struct svc *sv, const char *doc, size_t len, time_t now, time_t va)
{
	struct hs_desc_inner *in = NULL;
	uint8_t blinded[32], sub[32];
	char path[96];
	const char *why = NULL;
	uint64_t rev = 0;
	enum hs_desc_err e;

	consensus_move_to(va);
	svc_path(sv, path, sizeof(path), blinded, sub);
	e = hs_desc_decode(doc, len, blinded, sub, NULL, now, &in, &rev, &why);
	hs_desc_inner_free(in);
	return e;
}

static enum hs_desc_err decode_at(const char *doc, size_t len, time_t now, time_t va)
{
	return decode_for(&svc_a, doc, len, now, va);
}

/* Replace the base64 character at p with another one. */
static void flip_b64(char *p)
{
	assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", *p));
	*p = *p == 'A' ? 'B' : 'A';
}

/* --- the tests --------------------------------------------------------------- */

static void test_hs_client_real_descriptor_passes_and_asks_one_hsdir(void **state)
{
	struct client a;

	(void)state;
	assert_int_equal(decode_at(svc_a.doc, svc_a.len, capture_va, capture_va), HS_DESC_OK);
	start(200, svc_a.doc, svc_a.len, capture_va, capture_va);
	client_open(&a, &svc_a);
	/* Accepted: the next step, the rendezvous circuit, is what fails. */
	assert_int_equal(client_wait(&a), SOCKS5_HS_REND_FAILED);
	pthread_mutex_lock(&lock);
	assert_int_equal(n_asked, 1);
	pthread_mutex_unlock(&lock);
	stop();
}

static void test_hs_client_bad_signature_everywhere_gives_f1(void **state)
{
	char *d = doc_copy(), *p = strstr(d, "\nsignature ");

	(void)state;
	assert_non_null(p);
	flip_b64(p + 11 + 20);
	assert_int_equal(decode_at(d, svc_a.len, capture_va, capture_va), HS_DESC_BAD_SIGNATURE);
	run_case(200, d, svc_a.len, capture_va, capture_va, SOCKS5_HS_DESC_INVALID, SOCKS5_HS_MISSING_CLIENT_AUTH);
	free(d);
}

static void test_hs_client_bad_signing_key_cert_everywhere_gives_f1(void **state)
{
	char *d = doc_copy(), *p = strstr(d, "-----BEGIN ED25519 CERT-----\n");

	(void)state;
	assert_non_null(p);
	/* The cert is 140 bytes: its own signature is the last 64 (the
	 * base64 characters from 108 on). */
	flip_b64(p + 29 + 150);
	assert_int_equal(decode_at(d, svc_a.len, capture_va, capture_va), HS_DESC_BAD_CERT);
	run_case(200, d, svc_a.len, capture_va, capture_va, SOCKS5_HS_DESC_INVALID, SOCKS5_HS_MISSING_CLIENT_AUTH);
	free(d);
}

static void test_hs_client_expired_descriptor_everywhere_gives_f1(void **state)
{
	/* The same bytes and the same period, a wall clock 30 days on: the
	 * signing-key cert (tor makes it for 54 hours) has expired. */
	time_t later = capture_va + 30 * 86400;

	(void)state;
	assert_int_equal(decode_at(svc_a.doc, svc_a.len, later, capture_va), HS_DESC_EXPIRED);
	/* B's own descriptor has expired too at that clock: 0xF1 for it. */
	run_case(200, svc_a.doc, svc_a.len, later, capture_va, SOCKS5_HS_DESC_INVALID, SOCKS5_HS_DESC_INVALID);
}

static void test_hs_client_descriptor_of_another_period_everywhere_gives_f1(void **state)
{
	struct hs_period_cfg pc;
	time_t next;

	(void)state;
	consensus_move_to(capture_va);
	hs_client_period_cfg(cons, &pc);
	/* The consensus one period later: HSDirs that still serve the old
	 * period's descriptor serve one blinded with another key. */
	next = capture_va + (time_t)pc.length * 60;
	assert_int_equal(decode_at(svc_a.doc, svc_a.len, capture_va, next), HS_DESC_WRONG_KEY);
	/* B's is of the old period too: 0xF1 for it. */
	run_case(200, svc_a.doc, svc_a.len, capture_va, next, SOCKS5_HS_DESC_INVALID, SOCKS5_HS_DESC_INVALID);
}

static void test_hs_client_every_hsdir_404_gives_f0(void **state)
{
	(void)state;
	run_case(404, NULL, 0, capture_va, capture_va, SOCKS5_HS_DESC_NOT_FOUND, SOCKS5_HS_MISSING_CLIENT_AUTH);
}

/* --- garbage after decryption: a service of our own -------------------------- */

/* Nobody but the service can sign a descriptor whose layers decrypt to
 * garbage: the test is that service. Its keys (fixed seeds) and the real
 * descriptor's middle layer, re-encrypted for it, make the documents. */
struct forger {
	struct svc sv;
	uint8_t bexp[64];   /* the blinded expanded key of the capture period */
	uint8_t blinded[32], subcred[32];
	uint8_t sk_seed[32], sk_pub[32]; /* the descriptor signing key */
};

static void forger_init(struct forger *f)
{
	struct hs_period_cfg pc;
	uint8_t seed[32], exp[64], h[32], check[32];
	uint64_t num;

	memset(f, 0, sizeof(*f));
	memset(seed, 0x5a, sizeof(seed));
	memset(f->sk_seed, 0xa5, sizeof(f->sk_seed));
	crypto_ed25519_public_from_seed(f->sv.id, seed);
	crypto_ed25519_public_from_seed(f->sk_pub, f->sk_seed);
	onion_addr_encode(f->sv.host, f->sv.id);
	consensus_move_to(capture_va);
	hs_client_period_cfg(cons, &pc);
	num = hs_period_num(&pc, capture_va);
	hs_blind_factor(h, f->sv.id, num, pc.length);
	crypto_ed25519_expand_seed(exp, seed);
	crypto_ed25519_blind_expanded(f->bexp, exp, h);
	assert_true(hs_blinded_key(f->blinded, f->sv.id, num, pc.length));
	crypto_ed25519_public_from_expanded(check, f->bexp);
	assert_memory_equal(check, f->blinded, 32);
	hs_subcredential(f->subcred, f->sv.id, f->blinded);
}

/* Append the base64 of p[0..n) to out at *off in 64-character lines. */
static void put_b64(char *out, size_t cap, size_t *off, const uint8_t *p, size_t n, bool pad)
{
	char *b = malloc(base64_encoded_len(n) + 1);
	ssize_t bl;

	assert_non_null(b);
	bl = base64_encode(b, base64_encoded_len(n) + 1, p, n, pad);
	assert_true(bl > 0);
	for (ssize_t i = 0; i < bl; i += 64) {
		int k = snprintf(out + *off, cap - *off, "%.*s\n", (int)(bl - i < 64 ? bl - i : 64), b + i);

		assert_true(k > 0 && (size_t)k < cap - *off);
		*off += (size_t)k;
	}
	free(b);
}

static void put_text(char *out, size_t cap, size_t *off, const char *t)
{
	size_t n = strlen(t);

	assert_true(n < cap - *off);
	memcpy(out + *off, t, n + 1);
	*off += n;
}

/* The outer document of f around the first-layer plaintext mid[0..n):
 * a signing-key cert made by f's blinded key, the layer encrypted as
 * rend-spec-v3 2.5.3 says, signed by f's signing key (2.4). Returns owned. */
static char *forge_outer(const struct forger *f, const char *mid, size_t n, size_t *len)
{
	static const uint8_t salt[HS_DESC_SALT_LEN] = { 1, 2, 3 };
	const uint64_t rev = 7;
	struct ed25519_cert_params cp = {
		.cert_type = ED25519_CERT_TYPE_HS_DESC_SIGNING, .key_type = ED25519_CERT_KEY_ED25519,
		.exp_hours = (uint32_t)(capture_va / 3600 + 54), .certified_key = f->sk_pub,
		.include_signing_key = true,
	};
	uint8_t cert[256], dummy_seed[32], dummy_pub[32], sig[64], *blob, *msg;
	size_t cap = 4 * n + 4096, off = 0, blen = n + 64;
	char *doc = malloc(cap), line[128], *k;
	int cl;

	assert_non_null(doc);
	/* ed25519_cert_encode signs with a seed; the blinded key has none:
	 * encode with a stand-in, then put the blinded key in its place and
	 * sign again with the blinded expanded key. */
	memset(dummy_seed, 0x77, sizeof(dummy_seed));
	crypto_ed25519_public_from_seed(dummy_pub, dummy_seed);
	cl = ed25519_cert_encode(cert, sizeof(cert), &cp, dummy_seed);
	assert_true(cl > 64);
	k = memmem(cert, (size_t)cl, dummy_pub, 32);
	assert_non_null(k);
	memcpy(k, f->blinded, 32);
	crypto_ed25519_sign_expanded(cert + cl - 64, cert, (size_t)cl - 64, f->bexp, f->blinded);
	blob = malloc(blen);
	assert_non_null(blob);
	assert_true(hs_desc_layer_encrypt(blob, blen, (const uint8_t *)mid, n, f->blinded, 32, f->subcred, rev,
					  HS_DESC_CONST_SUPERENC, salt) == (ssize_t)(n + 48));
	put_text(doc, cap, &off, "hs-descriptor 3\ndescriptor-lifetime 180\ndescriptor-signing-key-cert\n"
				 "-----BEGIN ED25519 CERT-----\n");
	put_b64(doc, cap, &off, cert, (size_t)cl, true);
	snprintf(line, sizeof(line), "-----END ED25519 CERT-----\nrevision-counter %llu\nsuperencrypted\n",
		 (unsigned long long)rev);
	put_text(doc, cap, &off, line);
	put_text(doc, cap, &off, "-----BEGIN MESSAGE-----\n");
	put_b64(doc, cap, &off, blob, n + 48, true);
	put_text(doc, cap, &off, "-----END MESSAGE-----\n");
	free(blob);
	msg = malloc(sizeof(HS_DESC_SIG_PREFIX) - 1 + off);
	assert_non_null(msg);
	memcpy(msg, HS_DESC_SIG_PREFIX, sizeof(HS_DESC_SIG_PREFIX) - 1);
	memcpy(msg + sizeof(HS_DESC_SIG_PREFIX) - 1, doc, off);
	crypto_ed25519_sign_seed(sig, msg, sizeof(HS_DESC_SIG_PREFIX) - 1 + off, f->sk_seed);
	free(msg);
	assert_true(base64_encode(line, sizeof(line), sig, 64, false) == 86); /* one line, tor's form */
	put_text(doc, cap, &off, "signature ");
	put_text(doc, cap, &off, line);
	put_text(doc, cap, &off, "\n");
	*len = off;
	return doc;
}

/* The real descriptor's first-layer plaintext (A's, decrypted with its
 * public keys) with its "encrypted" blob replaced by inner[0..n)
 * encrypted for f (no client auth: the secret is the blinded key alone). */
static char *forge_middle(const struct forger *f, const char *inner, size_t n, size_t *len)
{
	static const uint8_t salt[HS_DESC_SALT_LEN] = { 9, 8, 7 };
	struct hs_desc_outer o;
	uint8_t blinded[32], sub[32], *buf = malloc(svc_a.len), *pt, *blob;
	char path[96], *out, *beg, *end;
	const char *why = NULL;
	size_t cap, off, blen = n + 64;
	ssize_t ptn;

	assert_non_null(buf);
	consensus_move_to(capture_va);
	svc_path(&svc_a, path, sizeof(path), blinded, sub);
	assert_int_equal(hs_desc_outer_parse(svc_a.doc, svc_a.len, &o, buf, svc_a.len, &why), PARSE_OK);
	pt = malloc(o.superenc_len + 1);
	assert_non_null(pt);
	ptn = hs_desc_layer_decrypt(pt, o.superenc_len, o.superenc, o.superenc_len, blinded, 32, sub, o.revision,
				    HS_DESC_CONST_SUPERENC);
	assert_true(ptn > 0);
	pt[ptn] = 0;
	beg = strstr((char *)pt, "encrypted\n-----BEGIN MESSAGE-----\n");
	assert_non_null(beg);
	beg += strlen("encrypted\n-----BEGIN MESSAGE-----\n");
	end = strstr(beg, "-----END MESSAGE-----"); /* the layer may end here, without its NL */
	assert_non_null(end);
	blob = malloc(blen);
	assert_non_null(blob);
	assert_true(hs_desc_layer_encrypt(blob, blen, (const uint8_t *)inner, n, f->blinded, 32, f->subcred, 7,
					  HS_DESC_CONST_ENC, salt) == (ssize_t)(n + 48));
	cap = (size_t)ptn + 2 * n + 4096;
	out = malloc(cap);
	assert_non_null(out);
	off = (size_t)(beg - (char *)pt);
	memcpy(out, pt, off);
	out[off] = 0;
	put_b64(out, cap, &off, blob, n + 48, true);
	put_text(out, cap, &off, end);
	if (out[off - 1] != '\n')
		put_text(out, cap, &off, "\n");
	free(blob);
	free(pt);
	free(buf);
	*len = off;
	return out;
}

static void test_hs_client_garbage_after_decryption_everywhere_gives_f1(void **state)
{
	static const char garbage[] = "\x7f\x01 this is no descriptor layer\n\xff\xfe garbage\n";
	static const char no_intro[] = "create2-formats 2\n";
	struct forger f;
	size_t mlen, dlen;
	char *mid, *doc;

	(void)state;
	forger_init(&f);
	/* The forging itself is sound: a well-formed inner layer with no
	 * introduction point gets past every check but the last. */
	mid = forge_middle(&f, no_intro, strlen(no_intro), &mlen);
	doc = forge_outer(&f, mid, mlen, &dlen);
	assert_int_equal(decode_for(&f.sv, doc, dlen, capture_va, capture_va), HS_DESC_NO_INTRO);
	free(doc);
	free(mid);

	/* The first layer decrypts (its MAC holds) to garbage. */
	doc = forge_outer(&f, garbage, strlen(garbage), &dlen);
	assert_int_equal(decode_for(&f.sv, doc, dlen, capture_va, capture_va), HS_DESC_BAD_MIDDLE);
	run_case_for(&f.sv, 200, doc, dlen, capture_va, capture_va, SOCKS5_HS_DESC_INVALID,
		     SOCKS5_HS_MISSING_CLIENT_AUTH);
	free(doc);

	/* The real middle layer; the second layer decrypts to garbage. */
	mid = forge_middle(&f, garbage, strlen(garbage), &mlen);
	doc = forge_outer(&f, mid, mlen, &dlen);
	assert_int_equal(decode_for(&f.sv, doc, dlen, capture_va, capture_va), HS_DESC_BAD_INNER);
	run_case_for(&f.sv, 200, doc, dlen, capture_va, capture_va, SOCKS5_HS_DESC_INVALID,
		     SOCKS5_HS_MISSING_CLIENT_AUTH);
	free(doc);
	free(mid);
}

/* A test that failed half-way leaves its runtime: stop it. */
static int case_teardown(void **state)
{
	(void)state;
	if (rt)
		stop();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_hs_client_real_descriptor_passes_and_asks_one_hsdir, case_teardown),
		cmocka_unit_test_teardown(test_hs_client_bad_signature_everywhere_gives_f1, case_teardown),
		cmocka_unit_test_teardown(test_hs_client_bad_signing_key_cert_everywhere_gives_f1, case_teardown),
		cmocka_unit_test_teardown(test_hs_client_expired_descriptor_everywhere_gives_f1, case_teardown),
		cmocka_unit_test_teardown(test_hs_client_descriptor_of_another_period_everywhere_gives_f1, case_teardown),
		cmocka_unit_test_teardown(test_hs_client_every_hsdir_404_gives_f0, case_teardown),
		cmocka_unit_test_teardown(test_hs_client_garbage_after_decryption_everywhere_gives_f1, case_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
