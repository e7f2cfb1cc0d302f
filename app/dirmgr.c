/* The directory manager's state machine (see dirmgr.h). Fetch completions
 * arrive on any thread and wait in a mutex-protected queue (control plane,
 * a handful per second) until the coordinator's tick drains it; all other
 * state is the coordinator's alone. Not for moving bytes or path selection. */
#include "app/dirmgr.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/nodes.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "proto/authcert.h"
#include "proto/consensus.h"
#include "proto/microdesc.h"

#define CACHE_CERTS "cached-certs"
#define CACHE_CONSENSUS "cached-microdesc-consensus"
#define CACHE_MICRODESCS "cached-microdescs"
#define MAX_TRUSTED 32
#define BACKOFF_MAX_SECS 30
#define CACHE_MAX_BYTES (256u << 20)
#define DIRMGR_MAX_DIR_GUARDS 8
#define DIRMGR_MAX_HOLDS 64
#define HOLD_BASE_SECS 60
#define HOLD_MAX_SECS 3600

/* Per-router microdescriptor download state, aligned with the latest
 * consensus's routers. */
enum md_state { MD_WANTED, MD_INFLIGHT, MD_FAILED };

/* A directory cache that failed us, held back until retry_at. */
struct cache_hold {
	uint8_t id[SHA1_LEN];
	unsigned fails;
	time_t retry_at;
};

struct dir_req {
	struct dirmgr *d;
	enum dir_fetch_kind kind;
	struct dir_source src;   /* whom we asked (a copy: caches come and go) */
	uint64_t cons_gen;       /* microdescs: for which consensus */
	uint32_t *routers;       /* microdescs: router indexes asked for */
	size_t n_routers;
	bool dir_guard;          /* src was one of the directory guards */
	int status;
	char why[128];           /* the fetcher's words on a failure; "" if none */
	uint8_t *body;           /* owned copy */
	size_t len;
	struct dir_req *next;
};

/* Counters read by other threads (relaxed; single writer: coordinator). */
struct dirmgr_shared {
	_Atomic int bootstrap_pct;
	_Atomic bool usable, loaded_from_cache;
	_Atomic int64_t valid_after, fresh_until, valid_until, next_cons;
	_Atomic uint64_t n_routers, n_mds;
	_Atomic uint64_t fetches[DIR_FETCH_KINDS][DIR_RESULTS];
};

struct dirmgr {
	struct dirauth_list auths;
	uint8_t trusted[MAX_TRUSTED][SHA1_LEN];
	size_t ntrusted;
	char *datadir;
	struct dir_fetcher fetcher;
	struct netdir_slot *slot;
	time_t (*now)(void *arg);
	void *now_arg;
	bool report_done;
	unsigned max_md_inflight;
	size_t (*dir_guards)(void *arg, uint8_t (*ids)[SHA1_LEN], size_t cap);
	void (*dir_guard_result)(void *arg, const uint8_t id[SHA1_LEN], bool reachable);
	void *dir_guards_arg;

	pthread_mutex_t qlock; /* guards qhead/qtail only */
	struct dir_req *qhead, *qtail;

	bool cache_loaded;
	size_t src_next;  /* authority rotation */
	size_t guard_next; /* directory guard rotation */
	unsigned cache_run; /* failed cache fetches in a row */
	struct cache_hold holds[DIRMGR_MAX_HOLDS];
	size_t nholds;
	/* Certificates: the accepted ones and their text (for the cache). */
	struct authcert **certs;
	size_t ncerts;
	char *certs_text;
	size_t certs_len;
	bool certs_inflight;
	unsigned certs_failures;
	time_t next_certs_at;
	/* Consensus. */
	struct consensus *waiting; /* parsed, waiting for certificates */
	char waiting_from[128];    /* whom it came from */
	struct consensus_ref *latest; /* newest verified */
	uint64_t cons_gen;
	bool cons_inflight;
	unsigned cons_failures;
	time_t next_cons_at;
	/* Microdescriptors. */
	struct md_batch_ref **store;
	size_t nstore;
	uint8_t *md_state;   /* per router of latest */
	uint8_t *md_fails;
	time_t *md_retry_at;
	unsigned md_inflight;
	unsigned md_src_failures;
	time_t next_md_at;
	bool dirty;       /* new consensus or microdescs since the last build */
	bool md_cache_dirty;
	/* What workers see. */
	struct netdir *published; /* our extra reference to the slot's snapshot */
	struct netdir *built;     /* newest snapshot of latest (maybe unpublished) */
	int last_pct;
	struct dirmgr_shared sh;
};

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (!p)
		abort(); /* control plane: OOM aborts (STYLE.md) */
	return p;
}

static time_t now_of(const struct dirmgr *d)
{
	return d->now ? d->now(d->now_arg) : clock_wall();
}

static void count(struct dirmgr *d, enum dir_fetch_kind k, enum dir_fetch_result r)
{
	/* Relaxed: a statistic; single writer (coordinator). */
	atomic_fetch_add_explicit(&d->sh.fetches[k][r], 1, memory_order_relaxed);
}

const char *dir_fetch_kind_name(enum dir_fetch_kind k)
{
	static const char *const n[] = {"consensus", "certs", "microdescs"};
	return k < DIR_FETCH_KINDS ? n[k] : "?";
}

const char *dir_fetch_result_name(enum dir_fetch_result r)
{
	static const char *const n[] = {"ok", "failed", "rejected"};
	return r < DIR_RESULTS ? n[r] : "?";
}

/* --- bootstrap progress (control-spec 5.5: tags and percentages) ------------ */

static void bootstrap(struct dirmgr *d, int pct, const char *tag, const char *summary)
{
	if (pct <= d->last_pct)
		return; /* each phase once, never backwards */
	d->last_pct = pct;
	/* Relaxed: read by metrics only. */
	atomic_store_explicit(&d->sh.bootstrap_pct, pct, memory_order_relaxed);
	log_notice("Bootstrapped %d%% (%s): %s", pct, tag, summary);
}

/* --- cache files ------------------------------------------------------------------ */

/* Write data to DataDirectory/name atomically: temp file, fsync, rename. */
static int cache_write(const struct dirmgr *d, const char *name, const void *data, size_t len)
{
	char path[4096], tmp[4200];
	const uint8_t *p = data;
	int fd, r = 0;

	if (!d->datadir)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", d->datadir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_warn("directory cache: cannot write %s: %s", tmp, strerror(errno));
		return -errno;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		log_warn("directory cache: cannot write %s: %s", path, strerror(-r));
		unlink(tmp);
	}
	return r;
}

/* Read DataDirectory/name into an owned NUL-terminated buffer; NULL if
 * absent (silently) or unreadable (logged). */
static char *cache_read(const struct dirmgr *d, const char *name, size_t *len)
{
	char path[4096];
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", d->datadir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			log_warn("directory cache: cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > CACHE_MAX_BYTES) {
		log_warn("directory cache: %s is unreadable or too large: ignored", path);
		close(fd);
		return NULL;
	}
	buf = xcalloc((size_t)st.st_size + 1, 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

/* --- sources -------------------------------------------------------------------------- */

static bool source_ok(const struct dirmgr *d, const struct dir_source *s)
{
	if (s->flags & DIR_SOURCE_BRIDGE)
		return false;
	if (d->fetcher.needs_dirport && s->dir_port == 0)
		return false;
	return s->dir_port != 0 || s->or_port != 0;
}

static struct cache_hold *cache_hold_find(struct dirmgr *d, const uint8_t id[SHA1_LEN])
{
	for (size_t i = 0; i < d->nholds; i++)
		if (!memcmp(d->holds[i].id, id, SHA1_LEN))
			return &d->holds[i];
	return NULL;
}

/* The next configured authority (fallback: a fallback directory that is
 * not held back after failing) in rotation, so that a retry goes
 * elsewhere: copy it to *out, or return false if there is none. */
static bool pick_configured(struct dirmgr *d, bool fallback, time_t now, struct dir_source *out)
{
	for (size_t k = 0; k < d->auths.n; k++) {
		size_t i = (d->src_next + k) % d->auths.n;
		const struct dir_source *s = &d->auths.v[i];
		const struct cache_hold *h;

		if (!source_ok(d, s) || ((s->flags & DIR_SOURCE_FALLBACK) != 0) != fallback)
			continue;
		if (fallback && (h = cache_hold_find(d, s->fingerprint)) && now < h->retry_at)
			continue;
		d->src_next = i + 1;
		*out = *s;
		return true;
	}
	return false;
}

/* An authority or fallback. While bootstrapping the fallbacks come first
 * (dir-spec 5.1: "Clients prefer fallbacks to authorities, trying them
 * earlier and more frequently"); afterwards the authorities, since a
 * fallback is then just one more cache. */
static bool pick_authority(struct dirmgr *d, bool bootstrapping, time_t now, struct dir_source *out)
{
	return pick_configured(d, bootstrapping, now, out) || pick_configured(d, !bootstrapping, now, out);
}

static bool is_configured(const struct dirmgr *d, const uint8_t id[SHA1_LEN])
{
	for (size_t i = 0; i < d->auths.n; i++)
		if (!memcmp(d->auths.v[i].fingerprint, id, SHA1_LEN))
			return true;
	return false;
}

/* May n serve directory documents to us now? dir-spec 3.4.1 "V2Dir";
 * Running and Valid as for any relay we use; not an authority (dir-spec
 * 5.1: once bootstrapped a client "should not need to go to the authority
 * directly again"; authorities are the fallback below); reachable by the
 * fetcher; with a microdescriptor when the fetch is BEGIN_DIR, so the
 * one-hop circuit can use its ntor key; not held back after a failure. */
static bool cache_ok(struct dirmgr *d, const struct node *n, time_t now)
{
	const struct consensus_router *rs = n->rs;
	const struct cache_hold *h;

	if (!node_has_flags(n, RFLAG_V2DIR | RFLAG_RUNNING | RFLAG_VALID) || (rs->flags & RFLAG_AUTHORITY))
		return false;
	if (d->fetcher.needs_dirport ? rs->dir_port == 0 : (rs->or_port == 0 || !n->md))
		return false;
	if (is_configured(d, rs->identity))
		return false;
	h = cache_hold_find(d, rs->identity);
	return !h || now >= h->retry_at;
}

static void cache_to_source(const struct node *n, struct dir_source *out)
{
	const struct consensus_router *rs = n->rs;

	memset(out, 0, sizeof(*out));
	snprintf(out->nickname, sizeof(out->nickname), "%s", rs->nickname);
	out->ipv4 = rs->ipv4;
	out->dir_port = rs->dir_port;
	out->or_port = rs->or_port;
	memcpy(out->fingerprint, rs->identity, SHA1_LEN);
	out->flags = DIR_SOURCE_CACHE;
}

/* A directory guard that can serve us now, in turn among the usable ones
 * (so that microdescriptor batches launched together spread over them). */
static const struct node *pick_dir_guard(struct dirmgr *d, const struct nodelist *nl, time_t now)
{
	uint8_t ids[DIRMGR_MAX_DIR_GUARDS][SHA1_LEN];
	const struct node *cand[DIRMGR_MAX_DIR_GUARDS];
	size_t n, nc = 0;

	if (!d->dir_guards)
		return NULL;
	n = d->dir_guards(d->dir_guards_arg, ids, DIRMGR_MAX_DIR_GUARDS);
	for (size_t i = 0; i < n && i < DIRMGR_MAX_DIR_GUARDS; i++) {
		const struct node *g = nodelist_find(nl, ids[i]);
		if (g && cache_ok(d, g, now))
			cand[nc++] = g;
	}
	return nc ? cand[d->guard_next++ % nc] : NULL;
}

/* Any other cache, chosen at random weighted by consensus bandwidth (as
 * tor weighs directory servers; unmeasured or zero counts as 1). */
static const struct node *pick_weighted_cache(struct dirmgr *d, const struct nodelist *nl, time_t now)
{
	uint64_t total = 0, r;

	for (size_t i = 0; i < nl->n; i++)
		if (cache_ok(d, &nl->nodes[i], now))
			total += nl->nodes[i].rs->bandwidth ? nl->nodes[i].rs->bandwidth : 1;
	if (total == 0)
		return NULL;
	r = crypto_rand_uint64(total);
	for (size_t i = 0; i < nl->n; i++) {
		uint64_t w;
		if (!cache_ok(d, &nl->nodes[i], now))
			continue;
		w = nl->nodes[i].rs->bandwidth ? nl->nodes[i].rs->bandwidth : 1;
		if (r < w)
			return &nl->nodes[i];
		r -= w;
	}
	return NULL; /* not reached: r < total */
}

/* Choose whom to ask next and copy it to *out; false if nobody can be
 * asked. dir-spec 5.1: with no usable directory, a fallback or authority;
 * with one, a cache (directory guards first, as tor's
 * UseEntryGuardsAsDirGuards does), unless DIRMGR_CACHE_TRIES cache fetches
 * in a row failed or no cache is left: then an authority. */
static bool pick_source(struct dirmgr *d, time_t now, struct dir_source *out, bool *dir_guard)
{
	const struct netdir *nd = d->published;
	bool bootstrapping = !nd || !netdir_is_usable(nd, now);

	*dir_guard = false;
	if (!bootstrapping && d->cache_run < DIRMGR_CACHE_TRIES) {
		const struct node *n = pick_dir_guard(d, nd->nodes, now);
		*dir_guard = n != NULL;
		if (!n)
			n = pick_weighted_cache(d, nd->nodes, now);
		if (n) {
			cache_to_source(n, out);
			return true;
		}
	}
	return pick_authority(d, bootstrapping, now, out);
}

/* "cache guard1 127.0.0.1:5000", "authority auth1 127.0.0.1:7000"... */
static const char *source_describe(const struct dir_source *s, char *buf, size_t len)
{
	char a[80];
	const char *kind = (s->flags & DIR_SOURCE_CACHE)      ? "cache"
			   : (s->flags & DIR_SOURCE_FALLBACK) ? "fallback"
							      : "authority";

	snprintf(buf, len, "%s %s", kind, dir_source_describe(s, a, sizeof(a)));
	return buf;
}

/* Note how a fetch from src went. A failed cache or fallback directory is
 * held back for a backoff that grows with its failures (HOLD_BASE_SECS
 * doubling up to HOLD_MAX_SECS); a failed cache also counts towards the
 * authority fallback, and any success (a cache's, or the fallback
 * authority's) sends the next fetches to the caches again. */
static void source_result(struct dirmgr *d, const struct dir_source *src, bool ok, time_t now)
{
	struct cache_hold *h;

	if (ok) {
		d->cache_run = 0;
		if ((src->flags & (DIR_SOURCE_CACHE | DIR_SOURCE_FALLBACK)) &&
		    (h = cache_hold_find(d, src->fingerprint)))
			*h = d->holds[--d->nholds];
		return;
	}
	if (!(src->flags & (DIR_SOURCE_CACHE | DIR_SOURCE_FALLBACK)))
		return;
	if (src->flags & DIR_SOURCE_CACHE)
		d->cache_run++;
	if (!(h = cache_hold_find(d, src->fingerprint))) {
		if (d->nholds == DIRMGR_MAX_HOLDS) {
			/* Full: forget the hold that ends first. */
			size_t old = 0;
			for (size_t i = 1; i < d->nholds; i++)
				if (d->holds[i].retry_at < d->holds[old].retry_at)
					old = i;
			d->holds[old] = d->holds[--d->nholds];
		}
		h = &d->holds[d->nholds++];
		memset(h, 0, sizeof(*h));
		memcpy(h->id, src->fingerprint, SHA1_LEN);
	}
	if (h->fails < 16)
		h->fails++;
	h->retry_at = now + (h->fails > 6 ? HOLD_MAX_SECS : HOLD_BASE_SECS << (h->fails - 1));
	if (h->retry_at > now + HOLD_MAX_SECS)
		h->retry_at = now + HOLD_MAX_SECS;
	if ((src->flags & DIR_SOURCE_CACHE) && d->cache_run == DIRMGR_CACHE_TRIES)
		log_notice("directory: %u directory cache fetches in a row failed; asking an authority next",
			   d->cache_run);
}

static time_t backoff(unsigned failures)
{
	unsigned shift = failures > 6 ? 5 : (failures ? failures - 1 : 0);
	time_t t = (time_t)1 << shift;

	return failures == 0 ? 0 : (t > BACKOFF_MAX_SECS ? BACKOFF_MAX_SECS : t);
}

/* What went wrong with q, for a log line: "HTTP status 404", or the
 * fetcher's own words (the END reason, the channel's error), or the errno
 * text when it gave none. Writes buf[0..len); returns it. */
static const char *fetch_failure(const struct dir_req *q, char *buf, size_t len)
{
	if (q->status > 0)
		snprintf(buf, len, "HTTP status %d", q->status);
	else if (q->why[0])
		snprintf(buf, len, "%s", q->why);
	else
		snprintf(buf, len, "%s", strerror(-q->status));
	return buf;
}

/* --- the completion queue ---------------------------------------------------------- */

/* dir_fetch_done_fn: copy the result and queue it for the coordinator. Any
 * thread. Borrows body. */
static void fetch_done(void *arg, int status, const uint8_t *body, size_t len, const char *why)
{
	struct dir_req *q = arg;
	struct dirmgr *d = q->d;

	q->status = status;
	snprintf(q->why, sizeof(q->why), "%s", status != 200 && why ? why : "");
	if (status == 200 && body) {
		q->body = xcalloc(len + 1, 1);
		memcpy(q->body, body, len);
		q->len = len;
	}
	pthread_mutex_lock(&d->qlock);
	if (d->qtail)
		d->qtail->next = q;
	else
		d->qhead = q;
	d->qtail = q;
	pthread_mutex_unlock(&d->qlock);
}

static void req_free(struct dir_req *q)
{
	free(q->routers);
	free(q->body);
	free(q);
}

/* Start a fetch; on an immediate failure count it and return false. */
static bool launch(struct dirmgr *d, struct dir_req *q, const char *path, time_t now)
{
	char desc[128];
	int r;

	q->d = d;
	source_describe(&q->src, desc, sizeof(desc));
	if (q->kind == DIR_FETCH_MICRODESCS)
		log_info("directory: fetching %zu microdescriptors from %s", q->n_routers, desc);
	else
		log_info("directory: fetching %s from %s", path, desc);
	r = d->fetcher.fetch(d->fetcher.ctx, &q->src, path, fetch_done, q);
	if (r < 0) {
		log_warn("directory: cannot start fetch of %s from %s: %s", dir_fetch_kind_name(q->kind),
			 desc, strerror(-r));
		count(d, q->kind, DIR_RESULT_FAILED);
		source_result(d, &q->src, false, now);
		return false;
	}
	return true;
}

/* --- certificates ---------------------------------------------------------------------- */

static bool is_trusted(const struct dirmgr *d, const uint8_t id[SHA1_LEN])
{
	for (size_t i = 0; i < d->ntrusted; i++)
		if (memcmp(d->trusted[i], id, SHA1_LEN) == 0)
			return true;
	return false;
}

static bool have_cert(const struct dirmgr *d, const struct authcert *c)
{
	for (size_t i = 0; i < d->ncerts; i++)
		if (!memcmp(d->certs[i]->identity_digest, c->identity_digest, SHA1_LEN) &&
		    !memcmp(d->certs[i]->signing_key_digest, c->signing_key_digest, SHA1_LEN))
			return true;
	return false;
}

/* Add the trusted, new certificates of text (borrowed). Return how many
 * were added, or -1 if the text is not a valid list of certificates (the
 * reason is logged with what). */
static int certs_add(struct dirmgr *d, const char *text, size_t len, const char *what)
{
	size_t off = 0;
	int added = 0;

	while (off < len && (text[off] == '\n' || text[off] == '\r' || text[off] == ' '))
		off++;
	while (off < len) {
		struct netdoc_err e = {0};
		struct authcert *c = NULL;
		size_t used = 0;
		enum parse_result r = authcert_parse(text + off, len - off, &used, &c, &e);

		if (r != PARSE_OK) {
			log_warn("directory: %s: authority certificate rejected: %s (line %u of that certificate)%s",
				 what, e.reason ? e.reason : "malformed", e.line,
				 r == PARSE_NEED_MORE ? " [truncated]" : "");
			return -1;
		}
		if (is_trusted(d, c->identity_digest) && !have_cert(d, c)) {
			d->certs = realloc(d->certs, (d->ncerts + 1) * sizeof(*d->certs));
			d->certs_text = realloc(d->certs_text, d->certs_len + used + 1);
			if (!d->certs || !d->certs_text)
				abort();
			d->certs[d->ncerts++] = c;
			memcpy(d->certs_text + d->certs_len, text + off, used);
			d->certs_len += used;
			d->certs_text[d->certs_len] = '\0';
			added++;
		} else {
			authcert_free(c);
		}
		off += used;
		while (off < len && (text[off] == '\n' || text[off] == '\r' || text[off] == ' '))
			off++;
	}
	return added;
}

/* --- consensus --------------------------------------------------------------------------- */

time_t dirmgr_refresh_time(time_t valid_after, time_t fresh_until, time_t valid_until, uint64_t rnd)
{
	/* dir-spec 5.1: "uniformly at random from the interval between the
	 * time 3/4 into the first interval after the consensus is no longer
	 * fresh, and 7/8 of the time remaining after that before the
	 * consensus is invalid". */
	time_t interval = fresh_until - valid_after;
	time_t start = fresh_until + interval * 3 / 4;
	time_t span;

	if (interval <= 0 || start >= valid_until)
		return fresh_until;
	span = (valid_until - start) * 7 / 8;
	return span > 0 ? start + (time_t)(rnd % (uint64_t)(span + 1)) : start;
}

static enum parse_result verify(struct dirmgr *d, const struct consensus *c, time_t now, char *why,
				size_t len)
{
	return consensus_verify(c, (const struct authcert *const *)d->certs, d->ncerts,
				(const uint8_t(*)[SHA1_LEN])d->trusted, d->ntrusted, now, why, len);
}

static void md_state_reset(struct dirmgr *d)
{
	size_t n = d->latest->c->n_routers;

	free(d->md_state);
	free(d->md_fails);
	free(d->md_retry_at);
	d->md_state = xcalloc(n, 1);
	d->md_fails = xcalloc(n, 1);
	d->md_retry_at = xcalloc(n, sizeof(time_t));
}

static void consensus_failed(struct dirmgr *d, time_t now);

/* Make c (takes ownership, verified) the latest consensus if it is newer;
 * from (borrowed) says where it came from, for the log. */
static void adopt(struct dirmgr *d, struct consensus *c, time_t now, bool from_cache, const char *from)
{
	char va[32];
	struct tm tm;

	if (d->latest && c->valid_after <= d->latest->c->valid_after) {
		/* The source has no newer one yet: ask again after a backoff. */
		log_notice("directory: consensus from %s is not newer than the one we have: ignored", from);
		consensus_free(c);
		consensus_failed(d, now);
		return;
	}
	if (!from_cache)
		cache_write(d, CACHE_CONSENSUS, c->doc, c->doc_len);
	consensus_ref_put(d->latest);
	d->latest = consensus_ref_new(c);
	d->cons_gen++;
	md_state_reset(d);
	d->dirty = true;
	d->cons_failures = 0;
	d->next_cons_at = dirmgr_refresh_time(c->valid_after, c->fresh_until, c->valid_until,
					      crypto_rand_uint64(UINT64_MAX));
	if (consensus_liveness(c, now) != CONSENSUS_LIVE)
		d->next_cons_at = now; /* reasonably live only: use it, but refresh now */
	gmtime_r(&c->valid_after, &tm);
	strftime(va, sizeof(va), "%Y-%m-%d %H:%M:%S", &tm);
	log_notice("directory: %s consensus valid-after %s with %zu routers accepted from %s; next fetch in %lld s",
		   from_cache ? "cached" : "new", va, c->n_routers, from, (long long)(d->next_cons_at - now));
	/* Relaxed: statistic. */
	atomic_store_explicit(&d->sh.next_cons, (int64_t)d->next_cons_at, memory_order_relaxed);
}

static void consensus_failed(struct dirmgr *d, time_t now)
{
	d->cons_failures++;
	d->next_cons_at = now + backoff(d->cons_failures);
	atomic_store_explicit(&d->sh.next_cons, (int64_t)d->next_cons_at, memory_order_relaxed);
}

/* Check c (takes ownership), fetched from the source described by from
 * (borrowed), against our certificates: adopt, park it until certificates
 * arrive, or reject it with a log line. Return the result. */
static enum parse_result consider(struct dirmgr *d, struct consensus *c, time_t now, const char *from)
{
	char why[256] = "";
	enum parse_result r = verify(d, c, now, why, sizeof(why));

	if (r == PARSE_OK) {
		adopt(d, c, now, false, from);
	} else if (r == PARSE_NEED_MORE) {
		log_info("directory: consensus from %s: need authority certificates first (%s)", from, why);
		consensus_free(d->waiting);
		d->waiting = c;
		snprintf(d->waiting_from, sizeof(d->waiting_from), "%s", from);
	} else {
		log_warn("directory: consensus from %s rejected: %s; keeping the last good directory", from, why);
		consensus_free(c);
	}
	return r;
}

static void handle_consensus(struct dirmgr *d, struct dir_req *q, time_t now)
{
	struct netdoc_err e = {0};
	struct consensus *c = NULL;
	enum parse_result r;
	uint64_t gen = d->cons_gen;
	char fb[160];
	char desc[128];

	d->cons_inflight = false;
	source_describe(&q->src, desc, sizeof(desc));
	if (q->status != 200) {
		log_warn("directory: consensus fetch from %s failed: %s", desc, fetch_failure(q, fb, sizeof(fb)));
		count(d, DIR_FETCH_CONSENSUS, DIR_RESULT_FAILED);
		consensus_failed(d, now);
		source_result(d, &q->src, false, now);
		return;
	}
	bootstrap(d, 30, "loading_status", "Loading networkstatus consensus");
	r = consensus_parse((const char *)q->body, q->len, &c, &e);
	if (r != PARSE_OK) {
		log_warn("directory: consensus from %s rejected: %s at line %u%s; keeping the last good directory",
			 desc, e.reason ? e.reason : "malformed", e.line, r == PARSE_NEED_MORE ? " (truncated)" : "");
		count(d, DIR_FETCH_CONSENSUS, DIR_RESULT_REJECTED);
		consensus_failed(d, now);
		source_result(d, &q->src, false, now);
		return;
	}
	r = consider(d, c, now, desc);
	count(d, DIR_FETCH_CONSENSUS, r == PARSE_INVALID ? DIR_RESULT_REJECTED : DIR_RESULT_OK);
	if (r == PARSE_INVALID)
		consensus_failed(d, now);
	/* A consensus that is not newer counts against the source too, so the
	 * retry asks another one; one waiting for certificates is judged
	 * later. */
	if (r != PARSE_NEED_MORE)
		source_result(d, &q->src, r == PARSE_OK && d->cons_gen != gen, now);
}

static void handle_certs(struct dirmgr *d, struct dir_req *q, time_t now)
{
	char fb[160];
	char desc[128], what[192];
	int added;

	d->certs_inflight = false;
	source_describe(&q->src, desc, sizeof(desc));
	snprintf(what, sizeof(what), "certificates from %s", desc);
	added = q->status == 200 ? certs_add(d, (const char *)q->body, q->len, what) : -1;
	if (q->status != 200)
		log_warn("directory: certificate fetch from %s failed: %s", desc, fetch_failure(q, fb, sizeof(fb)));
	count(d, DIR_FETCH_CERTS, q->status != 200 ? DIR_RESULT_FAILED : added < 0 ? DIR_RESULT_REJECTED : DIR_RESULT_OK);
	source_result(d, &q->src, added >= 0, now);
	if (added < 0) {
		d->certs_failures++;
		d->next_certs_at = now + backoff(d->certs_failures);
		return;
	}
	d->certs_failures = 0;
	if (added > 0)
		cache_write(d, CACHE_CERTS, d->certs_text, d->certs_len);
	if (d->waiting) {
		struct consensus *c = d->waiting;
		d->waiting = NULL;
		snprintf(what, sizeof(what), "%s (after fetching certificates)", d->waiting_from);
		if (consider(d, c, now, what) != PARSE_OK) {
			/* Still short of certificates after asking: give up on
			 * this one and fetch a consensus again later. */
			if (d->waiting) {
				log_warn("directory: consensus rejected: signed by authorities whose certificates "
					 "we cannot get; keeping the last good directory");
				consensus_free(d->waiting);
				d->waiting = NULL;
			}
			consensus_failed(d, now);
		}
	}
}

/* --- microdescriptors --------------------------------------------------------------------- */

static void md_requeue(struct dirmgr *d, const struct dir_req *q, bool router_fault, time_t now)
{
	/* dir-spec 5.2: a failed descriptor is retried after 0 s, 60 s,
	 * 5 min, 10 min, then 1 day. */
	static const time_t sched[] = {0, 60, 300, 600, 86400};

	if (q->cons_gen != d->cons_gen)
		return;
	for (size_t i = 0; i < q->n_routers; i++) {
		uint32_t r = q->routers[i];
		if (d->md_state[r] != MD_INFLIGHT)
			continue;
		d->md_state[r] = MD_FAILED;
		if (router_fault && d->md_fails[r] < 4)
			d->md_fails[r]++;
		d->md_retry_at[r] = now + (router_fault ? sched[d->md_fails[r]] : 0);
	}
}

/* Keep the wanted microdescs of b (takes ownership); mark what arrived. */
static void md_accept(struct dirmgr *d, const struct dir_req *q, struct microdesc_batch *b, time_t now,
		      const char *desc)
{
	uint8_t(*wanted)[SHA256_LEN] = xcalloc(q->n_routers, SHA256_LEN);
	bool *is_wanted = xcalloc(b->n, sizeof(bool));
	size_t got, stray;

	for (size_t i = 0; i < q->n_routers; i++)
		memcpy(wanted[i], d->latest->c->routers[q->routers[i]].md_digest, SHA256_LEN);
	got = microdesc_check_wanted(b, (const uint8_t(*)[SHA256_LEN])wanted, q->n_routers, is_wanted);
	stray = 0;
	for (size_t i = 0; i < b->n; i++)
		stray += !is_wanted[i];
	if (stray)
		log_warn("directory: %zu microdescriptor(s) from %s match no digest we asked for (digest "
			 "mismatch or not requested): discarded",
			 stray, desc);
	for (size_t i = 0; i < q->n_routers; i++) {
		uint32_t r = q->routers[i];
		bool arrived = false;
		for (size_t j = 0; j < b->n && !arrived; j++)
			arrived = is_wanted[j] && !memcmp(b->mds[j].digest, wanted[i], SHA256_LEN);
		if (arrived && d->md_state[r] == MD_INFLIGHT)
			d->md_state[r] = MD_WANTED; /* the rebuild sees it present */
	}
	md_requeue(d, q, true, now); /* the rest: not served */
	count(d, DIR_FETCH_MICRODESCS, got ? DIR_RESULT_OK : DIR_RESULT_REJECTED);
	source_result(d, &q->src, got > 0, now);
	if (got) {
		d->store = realloc(d->store, (d->nstore + 1) * sizeof(*d->store));
		if (!d->store)
			abort();
		d->store[d->nstore++] = md_batch_ref_new(b);
		d->dirty = d->md_cache_dirty = true;
	} else {
		microdesc_batch_free(b);
	}
	free(wanted);
	free(is_wanted);
}

static void handle_microdescs(struct dirmgr *d, struct dir_req *q, time_t now)
{
	struct netdoc_err e = {0};
	struct microdesc_batch *b = NULL;
	enum parse_result r;
	char fb[160];
	char desc[128];

	d->md_inflight--;
	source_describe(&q->src, desc, sizeof(desc));
	if (q->status != 200) {
		log_warn("directory: microdescriptor fetch from %s failed: %s", desc, fetch_failure(q, fb, sizeof(fb)));
		count(d, DIR_FETCH_MICRODESCS, DIR_RESULT_FAILED);
		d->md_src_failures++;
		d->next_md_at = now + backoff(d->md_src_failures);
		md_requeue(d, q, false, now);
		source_result(d, &q->src, false, now);
		return;
	}
	d->md_src_failures = 0;
	bootstrap(d, 50, "loading_descriptors", "Loading relay descriptors");
	r = microdesc_parse_batch((const char *)q->body, q->len, &b, &e);
	if (r != PARSE_OK) {
		log_warn("directory: microdescriptors from %s rejected: %s at line %u%s", desc,
			 e.reason ? e.reason : "malformed", e.line, r == PARSE_NEED_MORE ? " (truncated)" : "");
		count(d, DIR_FETCH_MICRODESCS, DIR_RESULT_REJECTED);
		md_requeue(d, q, true, now);
		source_result(d, &q->src, false, now);
		return;
	}
	if (q->cons_gen != d->cons_gen || !d->latest) {
		microdesc_batch_free(b); /* asked for an older consensus */
		return;
	}
	md_accept(d, q, b, now, desc);
}

/* Is router i's microdescriptor to be fetched now: missing from the
 * snapshot built of the latest consensus, not asked for, not waiting for
 * its retry time? */
static bool md_is_due(const struct dirmgr *d, size_t i, time_t now)
{
	const struct netdir *built = d->built;

	if (d->md_state[i] == MD_INFLIGHT || (d->md_state[i] == MD_FAILED && now < d->md_retry_at[i]))
		return false;
	return !(built && built->cref == d->latest && built->md[i]);
}

/* How many microdescriptors to ask one directory for, of n due. dir-spec
 * 5.2: use at least 3 directories, except when that would make more than
 * one request for under 4 descriptors; never more than DIRMGR_MD_BATCH
 * (tor's limit for microdescriptors) from one. */
static size_t md_per_request(size_t n)
{
	size_t per = (n + 2) / 3;

	return per < 4 ? 4 : per > DIRMGR_MD_BATCH ? DIRMGR_MD_BATCH : per;
}

/* Launch one request for up to per (<= DIRMGR_MD_BATCH) due microdescriptors. */
static bool md_launch_batch(struct dirmgr *d, time_t now, size_t per)
{
	const struct consensus *c = d->latest->c;
	struct dir_req *q = xcalloc(1, sizeof(*q));
	char *path = xcalloc(16 + DIRMGR_MD_BATCH * 45, 1);
	size_t len = strlen(strcpy(path, "/tor/micro/d/"));

	q->routers = xcalloc(DIRMGR_MD_BATCH, sizeof(uint32_t));
	for (size_t i = 0; i < c->n_routers && q->n_routers < per; i++) {
		if (!md_is_due(d, i, now))
			continue;
		q->routers[q->n_routers++] = (uint32_t)i;
		if (q->n_routers > 1)
			path[len++] = '-';
		len += (size_t)base64_encode(path + len, 45, c->routers[i].md_digest, SHA256_LEN, false);
	}
	if (q->n_routers == 0 || !pick_source(d, now, &q->src, &q->dir_guard)) {
		free(path);
		req_free(q);
		return false;
	}
	q->kind = DIR_FETCH_MICRODESCS;
	q->cons_gen = d->cons_gen;
	for (size_t i = 0; i < q->n_routers; i++)
		d->md_state[q->routers[i]] = MD_INFLIGHT;
	bootstrap(d, 45, "requesting_descriptors", "Asking for relay descriptors");
	if (!launch(d, q, path, now)) {
		md_requeue(d, q, false, now);
		d->md_src_failures++;
		d->next_md_at = now + backoff(d->md_src_failures);
		req_free(q);
		free(path);
		return false;
	}
	d->md_inflight++;
	free(path);
	return true;
}

/* --- snapshots --------------------------------------------------------------------------- */

static void publish_stats(struct dirmgr *d, time_t now)
{
	const struct netdir *p = d->published;

	/* Relaxed stores: statistics read by /metrics and /health. */
	atomic_store_explicit(&d->sh.usable, netdir_is_usable(p, now), memory_order_relaxed);
	atomic_store_explicit(&d->sh.valid_after, p ? (int64_t)p->c->valid_after : 0, memory_order_relaxed);
	atomic_store_explicit(&d->sh.fresh_until, p ? (int64_t)p->c->fresh_until : 0, memory_order_relaxed);
	atomic_store_explicit(&d->sh.valid_until, p ? (int64_t)p->c->valid_until : 0, memory_order_relaxed);
	atomic_store_explicit(&d->sh.n_routers, p ? p->c->n_routers : 0, memory_order_relaxed);
	atomic_store_explicit(&d->sh.n_mds, p ? p->n_md : 0, memory_order_relaxed);
}

/* Keep only the batches the snapshot n uses (the others hold microdescs
 * no current router lists). */
static void store_compact(struct dirmgr *d, const struct netdir *n)
{
	for (size_t i = 0; i < d->nstore; i++)
		md_batch_ref_put(d->store[i]);
	d->store = realloc(d->store, (n->n_batches ? n->n_batches : 1) * sizeof(*d->store));
	if (!d->store)
		abort();
	for (size_t i = 0; i < n->n_batches; i++) {
		md_batch_ref_get(n->batches[i]);
		d->store[i] = n->batches[i];
	}
	d->nstore = n->n_batches;
}

static void publish(struct dirmgr *d, struct netdir *n)
{
	netdir_release(d->published);
	netdir_ref(n);
	d->published = n;
	netdir_slot_publish(d->slot, n); /* takes the creation reference */
}

/* Build a snapshot of the latest consensus with the stored microdescs and
 * publish it unless the published one is usable and this one is not. */
static void rebuild(struct dirmgr *d, time_t now, bool from_cache)
{
	struct netdir *n;

	if (!d->dirty || !d->latest)
		return;
	d->dirty = false;
	n = netdir_new(d->latest, d->store, d->nstore);
	store_compact(d, n);
	netdir_release(d->built);
	netdir_ref(n);
	d->built = n;
	if (!n->usable && netdir_is_usable(d->published, now) && d->published->cref != d->latest) {
		log_info("directory: new consensus has %zu/%zu microdescriptors: keeping the previous directory",
			 n->n_md, n->c->n_routers);
		netdir_release(n);
		return;
	}
	publish(d, n);
	if (netdir_is_usable(n, now)) {
		bool first = d->last_pct < 75;
		bootstrap(d, 75, "enough_dirinfo", "Loaded enough directory info to build circuits");
		if (d->report_done)
			bootstrap(d, 100, "done", "Done");
		if (first && from_cache)
			atomic_store_explicit(&d->sh.loaded_from_cache, true, memory_order_relaxed);
	}
	publish_stats(d, now);
}

/* --- loading the cache -------------------------------------------------------------------- */

static void load_certs(struct dirmgr *d)
{
	size_t len = 0;
	char *text = cache_read(d, CACHE_CERTS, &len);

	if (text && certs_add(d, text, len, "cached-certs") < 0)
		log_warn("directory cache: %s/%s is corrupt: ignored; certificates will be fetched", d->datadir,
			 CACHE_CERTS);
	free(text);
}

static void load_consensus(struct dirmgr *d, time_t now)
{
	struct netdoc_err e = {0};
	struct consensus *c = NULL;
	char why[256] = "";
	size_t len = 0;
	char *text = cache_read(d, CACHE_CONSENSUS, &len);
	enum parse_result r;

	if (!text)
		return;
	r = consensus_parse(text, len, &c, &e);
	free(text);
	if (r != PARSE_OK) {
		log_warn("directory cache: %s/%s is %s (%s at line %u): ignored; a consensus will be fetched",
			 d->datadir, CACHE_CONSENSUS, r == PARSE_NEED_MORE ? "truncated" : "corrupt",
			 e.reason ? e.reason : "malformed", e.line);
		return;
	}
	if (verify(d, c, now, why, sizeof(why)) != PARSE_OK) {
		log_warn("directory cache: cached consensus not usable: %s: ignored; a consensus will be fetched",
			 why);
		consensus_free(c);
		return;
	}
	adopt(d, c, now, true, "DataDirectory");
}

static void load_microdescs(struct dirmgr *d)
{
	struct netdoc_err e = {0};
	struct microdesc_batch *b = NULL;
	size_t len = 0;
	char *text = cache_read(d, CACHE_MICRODESCS, &len);
	enum parse_result r;

	if (!text)
		return;
	r = len ? microdesc_parse_batch(text, len, &b, &e) : PARSE_INVALID;
	free(text);
	if (r != PARSE_OK) {
		log_warn("directory cache: %s/%s is %s (%s at line %u): ignored; microdescriptors will be fetched",
			 d->datadir, CACHE_MICRODESCS, r == PARSE_NEED_MORE ? "truncated" : "corrupt",
			 e.reason ? e.reason : "empty", e.line);
		return;
	}
	d->store = realloc(d->store, (d->nstore + 1) * sizeof(*d->store));
	if (!d->store)
		abort();
	d->store[d->nstore++] = md_batch_ref_new(b);
	d->dirty = true;
}

static void load_cache(struct dirmgr *d, time_t now)
{
	uint64_t t0 = clock_mono_ns();

	if (!d->datadir)
		return;
	load_certs(d);
	load_consensus(d, now);
	load_microdescs(d);
	rebuild(d, now, true);
	if (d->published)
		log_notice("directory: loaded from cache in %.1f ms: %zu routers, %zu microdescriptors, %s",
			   (double)(clock_mono_ns() - t0) / 1e6, d->published->c->n_routers, d->published->n_md,
			   netdir_is_usable(d->published, now) ? "usable without fetching anything"
							       : "not enough to build circuits yet");
}

/* --- the tick ------------------------------------------------------------------------------- */

static void write_md_cache(struct dirmgr *d)
{
	size_t len = 0, off = 0;
	char *buf;
	const struct netdir *p = d->built;

	if (!d->md_cache_dirty || !p || !d->datadir)
		return;
	d->md_cache_dirty = false;
	for (size_t i = 0; i < p->c->n_routers; i++)
		if (p->md[i])
			len += p->md[i]->text_len;
	buf = xcalloc(len + 1, 1);
	for (size_t i = 0; i < p->c->n_routers; i++)
		if (p->md[i]) {
			memcpy(buf + off, p->md[i]->text, p->md[i]->text_len);
			off += p->md[i]->text_len;
		}
	cache_write(d, CACHE_MICRODESCS, buf, len);
	free(buf);
}

/* Transport failures that show the directory guard could not be reached
 * (guard-spec 4.7); the rest (a bad body, out of memory, shutting down)
 * say nothing about it. */
static bool status_means_unreachable(int status)
{
	switch (-status) {
	case ETIMEDOUT:
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EPIPE:
		return true;
	default:
		return false;
	}
}

/* Tell the guard manager how the fetch from directory guard q->src went
 * (see dirmgr_config.dir_guard_result). */
static void dir_guard_report(struct dirmgr *d, const struct dir_req *q)
{
	if (!d->dir_guard_result)
		return;
	if (q->status > 0)
		d->dir_guard_result(d->dir_guards_arg, q->src.fingerprint, true);
	else if (status_means_unreachable(q->status))
		d->dir_guard_result(d->dir_guards_arg, q->src.fingerprint, false);
}

static void drain(struct dirmgr *d, time_t now)
{
	struct dir_req *q;

	pthread_mutex_lock(&d->qlock);
	q = d->qhead;
	d->qhead = d->qtail = NULL;
	pthread_mutex_unlock(&d->qlock);
	while (q) {
		struct dir_req *next = q->next;
		if (q->dir_guard)
			dir_guard_report(d, q);
		if (q->kind == DIR_FETCH_CONSENSUS)
			handle_consensus(d, q, now);
		else if (q->kind == DIR_FETCH_CERTS)
			handle_certs(d, q, now);
		else
			handle_microdescs(d, q, now);
		req_free(q);
		q = next;
	}
}

static void start_simple(struct dirmgr *d, enum dir_fetch_kind kind, const char *path, time_t now)
{
	struct dir_req *q = xcalloc(1, sizeof(*q));

	q->kind = kind;
	if (!pick_source(d, now, &q->src, &q->dir_guard)) {
		log_warn("directory: no directory source can be reached by this fetcher");
		free(q);
		return;
	}
	if (launch(d, q, path, now)) {
		if (kind == DIR_FETCH_CONSENSUS)
			d->cons_inflight = true;
		else
			d->certs_inflight = true;
		return;
	}
	free(q);
	if (kind == DIR_FETCH_CONSENSUS)
		consensus_failed(d, now);
	else
		d->next_certs_at = now + backoff(++d->certs_failures);
}

static void start_fetches(struct dirmgr *d, time_t now)
{
	if (!d->cons_inflight && !d->waiting && now >= d->next_cons_at) {
		bootstrap(d, 25, "requesting_status", "Asking for networkstatus consensus");
		start_simple(d, DIR_FETCH_CONSENSUS, "/tor/status-vote/current/consensus-microdesc", now);
		if (!d->cons_inflight && d->next_cons_at <= now)
			d->next_cons_at = now + 1;
	}
	if (d->waiting && !d->certs_inflight && now >= d->next_certs_at) {
		bootstrap(d, 40, "loading_keys", "Loading authority key certs");
		start_simple(d, DIR_FETCH_CERTS, "/tor/keys/all", now);
	}
	if (d->latest && now >= d->next_md_at && d->md_inflight < d->max_md_inflight) {
		size_t due = 0, per;

		for (size_t i = 0; i < d->latest->c->n_routers; i++)
			due += md_is_due(d, i, now);
		per = md_per_request(due);
		while (d->md_inflight < d->max_md_inflight && md_launch_batch(d, now, per))
			;
	}
}

void dirmgr_tick(struct dirmgr *d)
{
	time_t now = now_of(d);

	if (!d->cache_loaded) {
		d->cache_loaded = true;
		load_cache(d, now);
	}
	drain(d, now);
	rebuild(d, now, false);
	start_fetches(d, now);
	if (d->md_inflight == 0)
		write_md_cache(d);
	publish_stats(d, now);
}

time_t dirmgr_next_wakeup(const struct dirmgr *d)
{
	time_t t = d->next_cons_at;

	if (d->waiting && d->next_certs_at < t)
		t = d->next_certs_at;
	return t;
}

void dirmgr_stats_read(const struct dirmgr *d, struct dirmgr_stats *out)
{
	struct dirmgr_shared *sh = (struct dirmgr_shared *)&d->sh;

	memset(out, 0, sizeof(*out));
	/* Relaxed loads: each value is a statistic on its own. */
	out->bootstrap_pct = atomic_load_explicit(&sh->bootstrap_pct, memory_order_relaxed);
	out->usable = atomic_load_explicit(&sh->usable, memory_order_relaxed);
	out->loaded_from_cache = atomic_load_explicit(&sh->loaded_from_cache, memory_order_relaxed);
	out->valid_after = (time_t)atomic_load_explicit(&sh->valid_after, memory_order_relaxed);
	out->fresh_until = (time_t)atomic_load_explicit(&sh->fresh_until, memory_order_relaxed);
	out->valid_until = (time_t)atomic_load_explicit(&sh->valid_until, memory_order_relaxed);
	out->next_consensus_fetch = (time_t)atomic_load_explicit(&sh->next_cons, memory_order_relaxed);
	out->n_routers = atomic_load_explicit(&sh->n_routers, memory_order_relaxed);
	out->n_microdescs = atomic_load_explicit(&sh->n_mds, memory_order_relaxed);
	for (int k = 0; k < DIR_FETCH_KINDS; k++)
		for (int r = 0; r < DIR_RESULTS; r++)
			out->fetches[k][r] = atomic_load_explicit(&sh->fetches[k][r], memory_order_relaxed);
}

/* --- lifecycle -------------------------------------------------------------------------------- */

static int make_datadir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create DataDirectory %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "DataDirectory %s is not a directory", dir);
		return -ENOTDIR;
	}
	return 0;
}

struct dirmgr *dirmgr_new(const struct dirmgr_config *cfg, char *err, size_t errlen)
{
	struct dirmgr *d;

	if (cfg->data_directory && make_datadir(cfg->data_directory, err, errlen) < 0)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->auths.n = cfg->auths->n;
	d->auths.v = xcalloc(cfg->auths->n, sizeof(*d->auths.v));
	memcpy(d->auths.v, cfg->auths->v, cfg->auths->n * sizeof(*d->auths.v));
	d->ntrusted = dirauth_v3idents(&d->auths, d->trusted, MAX_TRUSTED);
	if (d->ntrusted == 0 || d->ntrusted > MAX_TRUSTED) {
		snprintf(err, errlen, "%zu trusted v3 authorities (need 1..%d)", d->ntrusted, MAX_TRUSTED);
		free(d->auths.v);
		free(d);
		return NULL;
	}
	if (cfg->data_directory && !(d->datadir = strdup(cfg->data_directory)))
		abort();
	d->fetcher = cfg->fetcher;
	d->slot = cfg->slot ? cfg->slot : netdir_global();
	d->now = cfg->now;
	d->now_arg = cfg->now_arg;
	d->report_done = cfg->report_done;
	d->max_md_inflight = cfg->max_md_inflight ? cfg->max_md_inflight : 4;
	d->dir_guards = cfg->dir_guards;
	d->dir_guard_result = cfg->dir_guard_result;
	d->dir_guards_arg = cfg->dir_guards_arg;
	d->src_next = d->auths.n ? (size_t)crypto_rand_uint64(d->auths.n) : 0;
	d->last_pct = -1;
	pthread_mutex_init(&d->qlock, NULL);
	bootstrap(d, 0, "starting", "Starting");
	return d;
}

void dirmgr_free(struct dirmgr *d)
{
	struct dir_req *q, *next;

	if (!d)
		return;
	write_md_cache(d);
	for (q = d->qhead; q; q = next) {
		next = q->next;
		req_free(q);
	}
	netdir_release(d->published);
	netdir_release(d->built);
	for (size_t i = 0; i < d->nstore; i++)
		md_batch_ref_put(d->store[i]);
	free(d->store);
	consensus_ref_put(d->latest);
	consensus_free(d->waiting);
	authcert_free_all(d->certs, d->ncerts);
	free(d->certs_text);
	free(d->md_state);
	free(d->md_fails);
	free(d->md_retry_at);
	pthread_mutex_destroy(&d->qlock);
	free(d->auths.v);
	free(d->datadir);
	free(d);
}
