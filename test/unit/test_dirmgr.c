/* Tests for app/dirmgr.c: bootstrapping, caching, refresh scheduling and
 * every kind of bad input, driven through a FAKE fetcher (a test double
 * that serves test/vectors/netdoc/ files, made by gen_netdoc.py, and
 * test/vectors/dirmgr/ ones, made by gen_dirmgr.py: both with tor-gencert
 * and python3-cryptography, an independent computation) and a fake wall
 * clock. Results are delivered between ticks, as the real
 * fetchers do from other threads. Each failure test checks the log line,
 * that the last good directory stays published, and that a re-fetch is
 * scheduled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/dirmgr.h"
#include "core/base64.h"
#include "core/log.h"
#include "netdoc_vectors.h"

/* --- captured log ---------------------------------------------------------------- */

static char logbuf[1 << 18];
static size_t loglen;

static void log_capture(enum log_level level, const char *line, void *arg)
{
	size_t n = strlen(line);

	(void)level;
	(void)arg;
	if (loglen + n + 2 < sizeof(logbuf)) {
		memcpy(logbuf + loglen, line, n);
		loglen += n;
		logbuf[loglen++] = '\n';
		logbuf[loglen] = '\0';
	}
}

static bool logged(const char *s)
{
	return strstr(logbuf, s) != NULL;
}

/* --- the fake fetcher ------------------------------------------------------------- */

struct pending {
	dir_fetch_done_fn done;
	void *arg;
	int status;
	char *body;
	size_t len;
	const char *why; /* static text or NULL */
};

struct fake {
	char *consensus; /* served for the consensus; NULL: 404 */
	size_t cons_len;
	char *keys;
	size_t keys_len;
	struct microdesc_batch *mds; /* the microdescriptors we can serve */
	int fail_consensus;          /* deliver this -errno for that many fetches */
	unsigned fail_consensus_n;
	bool corrupt;                /* serve a corrupted copy of corrupt_digest */
	uint8_t corrupt_digest[32];
	/* what was asked */
	unsigned fetches[DIR_FETCH_KINDS];
	unsigned md_digests, max_batch, last_batch;
	uint16_t cons_ports[16];
	bool fail_cache_consensus;   /* caches answer consensus requests with -ECONNREFUSED */
	int cache_fail_status;       /* ... or with this status (and why) when nonzero */
	const char *cache_fail_why;
	bool fail_fallbacks;         /* fallback directories answer nothing: -ECONNREFUSED */
	struct {
		enum dir_fetch_kind kind;
		bool cache, fallback;
		uint8_t fp[20];
	} rec[256];                  /* every fetch, in order */
	size_t nrec;
	struct pending p[64];
	size_t np;
};

static time_t fake_now;

static time_t now_fn(void *arg)
{
	(void)arg;
	return fake_now;
}

static void serve_mds(struct fake *f, const char *list, struct pending *p)
{
	size_t cap = 1 << 20, len = 0, n = 0;
	char *out = calloc(cap, 1);

	while (*list) {
		const char *dash = strchr(list, '-');
		size_t wl = dash ? (size_t)(dash - list) : strlen(list);
		uint8_t dg[32];

		assert_int_equal(base64_decode(dg, sizeof(dg), list, wl), 32);
		n++;
		for (size_t i = 0; i < f->mds->n; i++) {
			const struct microdesc *m = &f->mds->mds[i];
			if (memcmp(m->digest, dg, 32))
				continue;
			assert_true(len + m->text_len < cap);
			memcpy(out + len, m->text, m->text_len);
			if (f->corrupt && !memcmp(dg, f->corrupt_digest, 32)) {
				char *k = strstr(out + len, "ntor-onion-key ");
				assert_non_null(k);
				k[15] = k[15] == 'A' ? 'B' : 'A'; /* another key: another digest */
			}
			len += m->text_len;
		}
		list += wl + (dash ? 1 : 0);
	}
	f->md_digests += (unsigned)n;
	f->last_batch = (unsigned)n;
	if (n > f->max_batch)
		f->max_batch = (unsigned)n;
	p->status = 200;
	p->body = out;
	p->len = len;
}

static int fake_fetch(void *ctx, const struct dir_source *src, const char *path, dir_fetch_done_fn done,
		      void *arg)
{
	struct fake *f = ctx;
	struct pending *p = &f->p[f->np++];

	enum dir_fetch_kind kind = !strcmp(path, "/tor/keys/all")          ? DIR_FETCH_CERTS
				   : !strncmp(path, "/tor/micro/d/", 13) ? DIR_FETCH_MICRODESCS
									 : DIR_FETCH_CONSENSUS;
	bool cache = (src->flags & DIR_SOURCE_CACHE) != 0;

	assert_true(f->np <= 64);
	assert_true(f->nrec < 256);
	f->rec[f->nrec].kind = kind;
	f->rec[f->nrec].cache = cache;
	f->rec[f->nrec].fallback = (src->flags & DIR_SOURCE_FALLBACK) != 0;
	memcpy(f->rec[f->nrec++].fp, src->fingerprint, 20);
	memset(p, 0, sizeof(*p));
	p->done = done;
	p->arg = arg;
	if ((src->flags & DIR_SOURCE_FALLBACK) && f->fail_fallbacks) {
		p->status = -ECONNREFUSED;
	} else if (!strcmp(path, "/tor/status-vote/current/consensus-microdesc")) {
		f->cons_ports[f->fetches[DIR_FETCH_CONSENSUS] % 16] = src->dir_port;
		f->fetches[DIR_FETCH_CONSENSUS]++;
		if (cache && f->fail_cache_consensus) {
			p->status = f->cache_fail_status ? f->cache_fail_status : -ECONNREFUSED;
			p->why = f->cache_fail_why;
		} else if (f->fail_consensus_n) {
			f->fail_consensus_n--;
			p->status = f->fail_consensus;
		} else if (f->consensus) {
			p->status = 200;
			p->body = malloc(f->cons_len);
			memcpy(p->body, f->consensus, f->cons_len);
			p->len = f->cons_len;
		} else {
			p->status = 404;
		}
	} else if (!strcmp(path, "/tor/keys/all")) {
		f->fetches[DIR_FETCH_CERTS]++;
		p->status = 200;
		p->body = malloc(f->keys_len);
		memcpy(p->body, f->keys, f->keys_len);
		p->len = f->keys_len;
	} else if (!strncmp(path, "/tor/micro/d/", 13)) {
		f->fetches[DIR_FETCH_MICRODESCS]++;
		serve_mds(f, path + 13, p);
	} else {
		fail_msg("unexpected path %s", path);
	}
	return 0;
}

/* Deliver every pending result (as a fetcher thread would). */
static void pump(struct fake *f)
{
	size_t n = f->np;

	f->np = 0;
	for (size_t i = 0; i < n; i++) {
		f->p[i].done(f->p[i].arg, f->p[i].status, (const uint8_t *)f->p[i].body, f->p[i].len,
			     f->p[i].why);
		free(f->p[i].body);
	}
}

/* --- fixture ------------------------------------------------------------------------ */

struct fx {
	struct fake fake;
	struct dirauth_list auths;
	struct netdir_slot slot;
	char dir[64];
	struct dirmgr *d;
	char *good;
	size_t good_len;
	time_t va, fu, vu;
	bool begindir;        /* a BEGIN_DIR-like fetcher: caches need no DirPort */
	uint8_t guards[3][20]; /* what the dir_guards callback answers */
	size_t nguards;
	struct {
		uint8_t id[20];
		bool reachable;
	} reps[64];            /* what dir_guard_result was told, in order */
	size_t nreps;
};

static void set_consensus(struct fx *x, const char *doc, size_t len)
{
	free(x->fake.consensus);
	x->fake.consensus = malloc(len);
	memcpy(x->fake.consensus, doc, len);
	x->fake.cons_len = len;
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct netdoc_err e = {0};
	struct consensus *c = NULL;
	size_t len;
	char *auth = vec_load("authorities", &len), *line, *save = NULL, *md;

	x->auths.v = calloc(8, sizeof(*x->auths.v));
	for (line = strtok_r(auth, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct dir_source *s = &x->auths.v[x->auths.n];
		snprintf(s->nickname, sizeof(s->nickname), "auth%zu", x->auths.n);
		s->ipv4 = 0x7f000001;
		s->dir_port = (uint16_t)(7000 + x->auths.n);
		assert_int_equal(base16_decode(s->v3ident, 20, line, 40), 20);
		memset(s->fingerprint, (int)x->auths.n + 1, 20);
		s->flags = DIR_SOURCE_V3;
		x->auths.n++;
	}
	free(auth);
	assert_int_equal(x->auths.n, 3);
	x->good = vec_load("consensus-microdesc", &x->good_len);
	set_consensus(x, x->good, x->good_len);
	x->fake.keys = vec_load("keys-all", &x->fake.keys_len);
	md = vec_load("microdescs", &len);
	assert_int_equal(microdesc_parse_batch(md, len, &x->fake.mds, &e), PARSE_OK);
	free(md);
	assert_int_equal(consensus_parse(x->good, x->good_len, &c, &e), PARSE_OK);
	x->va = c->valid_after;
	x->fu = c->fresh_until;
	x->vu = c->valid_until;
	consensus_free(c);
	fake_now = x->va + 600;
	snprintf(x->dir, sizeof(x->dir), "/tmp/test_dirmgr.XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	loglen = 0;
	logbuf[0] = '\0';
	log_set_hook(log_capture, NULL);
	*state = x;
	return 0;
}

static void rm(const struct fx *x, const char *name)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/%s", x->dir, name);
	unlink(p);
}

static int teardown(void **state)
{
	struct fx *x = *state;

	/* Deliver what a fetcher still holds while the manager lives (its
	 * queue is freed with it); after dirmgr_free the callbacks would
	 * lock a destroyed mutex (TSan caught it in CI once). */
	pump(&x->fake);
	dirmgr_free(x->d);
	netdir_slot_publish(&x->slot, NULL);
	log_set_hook(NULL, NULL);
	rm(x, "cached-certs");
	rm(x, "cached-microdesc-consensus");
	rm(x, "cached-microdescs");
	rmdir(x->dir);
	free(x->fake.consensus);
	free(x->fake.keys);
	microdesc_batch_free(x->fake.mds);
	free(x->good);
	free(x->auths.v);
	free(x);
	return 0;
}

/* dirmgr_config.dir_guards for the fixture: x->guards. */
static size_t fake_dir_guards(void *arg, uint8_t (*ids)[SHA1_LEN], size_t cap)
{
	struct fx *x = arg;
	size_t n = x->nguards < cap ? x->nguards : cap;

	memcpy(ids, x->guards, n * SHA1_LEN);
	return n;
}

/* dirmgr_config.dir_guard_result for the fixture: into x->reps. */
static void fake_dir_guard_result(void *arg, const uint8_t id[SHA1_LEN], bool reachable)
{
	struct fx *x = arg;

	assert_true(x->nreps < 64);
	memcpy(x->reps[x->nreps].id, id, 20);
	x->reps[x->nreps++].reachable = reachable;
}

static struct dirmgr *start(struct fx *x)
{
	struct dirmgr_config cfg = {
		.auths = &x->auths,
		.data_directory = x->dir,
		.fetcher = {.fetch = fake_fetch, .ctx = &x->fake, .needs_dirport = !x->begindir},
		.slot = &x->slot,
		.now = now_fn,
		.report_done = true,
		.dir_guards = x->nguards ? fake_dir_guards : NULL,
		.dir_guard_result = x->nguards ? fake_dir_guard_result : NULL,
		.dir_guards_arg = x,
	};
	char err[256];

	dirmgr_free(x->d);
	memset(x->fake.fetches, 0, sizeof(x->fake.fetches));
	x->fake.md_digests = 0;
	x->fake.max_batch = 0;
	x->fake.nrec = 0;
	x->d = dirmgr_new(&cfg, err, sizeof(err));
	assert_non_null(x->d);
	return x->d;
}

static struct dirmgr_stats stats(const struct fx *x)
{
	struct dirmgr_stats s;

	dirmgr_stats_read(x->d, &s);
	return s;
}

/* Tick and deliver, up to n rounds or until usable. */
static void run(struct fx *x, int n)
{
	for (int i = 0; i < n; i++) {
		dirmgr_tick(x->d);
		pump(&x->fake);
	}
	dirmgr_tick(x->d);
}

static void bootstrap(struct fx *x)
{
	start(x);
	run(x, 6);
	assert_true(stats(x).usable);
}

/* --- tests --------------------------------------------------------------------------- */

static void test_dirmgr_bootstraps_from_the_authorities(void **state)
{
	struct fx *x = *state;
	struct dirmgr_stats s;
	struct netdir *nd;
	const char *phases[] = {"Bootstrapped 0% (starting): Starting",
				"Bootstrapped 25% (requesting_status): Asking for networkstatus consensus",
				"Bootstrapped 30% (loading_status): Loading networkstatus consensus",
				"Bootstrapped 40% (loading_keys): Loading authority key certs",
				"Bootstrapped 45% (requesting_descriptors): Asking for relay descriptors",
				"Bootstrapped 50% (loading_descriptors): Loading relay descriptors",
				"Bootstrapped 75% (enough_dirinfo): Loaded enough directory info to build circuits",
				"Bootstrapped 100% (done): Done"};
	const char *at = logbuf;
	struct stat st;
	char p[128];

	bootstrap(x);
	s = stats(x);
	assert_int_equal(s.bootstrap_pct, 100);
	assert_false(s.loaded_from_cache);
	assert_int_equal(s.n_routers, 300);
	assert_int_equal(s.n_microdescs, 300);
	assert_int_equal(s.fetches[DIR_FETCH_CONSENSUS][DIR_RESULT_OK], 1);
	assert_int_equal(s.fetches[DIR_FETCH_CERTS][DIR_RESULT_OK], 1);
	/* 300 digests in batches of at most 92: 4 requests */
	assert_int_equal(s.fetches[DIR_FETCH_MICRODESCS][DIR_RESULT_OK], 4);
	assert_int_equal(x->fake.md_digests, 300);
	assert_int_equal(x->fake.max_batch, DIRMGR_MD_BATCH);
	/* each phase once, in order */
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		const char *hit = strstr(at, phases[i]);
		if (!hit)
			fail_msg("missing or out of order: %s\n%s", phases[i], logbuf);
		assert_null(strstr(hit + 1, phases[i]));
		at = hit;
	}
	nd = netdir_slot_acquire(&x->slot);
	assert_non_null(nd);
	assert_int_equal(nd->n_md, 300);
	assert_int_equal(netdir_valid_after(nd), x->va);
	netdir_release(nd);
	snprintf(p, sizeof(p), "%s/cached-microdescs", x->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size > 100000);
}

static void test_dirmgr_restart_with_fresh_cache_fetches_nothing(void **state)
{
	struct fx *x = *state;
	struct dirmgr_stats s;

	bootstrap(x);
	dirmgr_free(x->d);
	x->d = NULL;
	netdir_slot_publish(&x->slot, NULL);
	loglen = 0;
	start(x);
	dirmgr_tick(x->d);
	s = stats(x);
	assert_true(s.usable);
	assert_true(s.loaded_from_cache);
	assert_int_equal(s.n_microdescs, 300);
	assert_int_equal(x->fake.fetches[DIR_FETCH_CONSENSUS] + x->fake.fetches[DIR_FETCH_CERTS] +
				 x->fake.fetches[DIR_FETCH_MICRODESCS],
			 0);
	assert_true(logged("usable without fetching anything"));
	assert_true(logged("Bootstrapped 100% (done)"));
	assert_false(logged("Bootstrapped 25%"));
}

static void test_dirmgr_refresh_time_is_in_the_dir_spec_window(void **state)
{
	/* dir-spec 5.1's example: valid 1:00, fresh until 2:00, valid until
	 * 4:00: fetch between 2:45 and 7/8 of the remaining 75 minutes later
	 * (65 min 37 s: the spec rounds it to 3:50). */
	const time_t h = 3600, lo = 2 * h + 45 * 60, hi = lo + 75 * 60 * 7 / 8;

	(void)state;
	assert_int_equal(hi, 3 * h + 50 * 60 + 37);
	assert_int_equal(dirmgr_refresh_time(h, 2 * h, 4 * h, 0), lo);
	assert_int_equal(dirmgr_refresh_time(h, 2 * h, 4 * h, (uint64_t)(hi - lo)), hi);
	assert_int_equal(dirmgr_refresh_time(h, 2 * h, 4 * h, (uint64_t)(hi - lo) + 1), lo);
	for (uint64_t r = 0; r < 100000; r += 997) {
		time_t t = dirmgr_refresh_time(h, 2 * h, 4 * h, r * 7919);
		assert_true(t >= lo && t <= hi);
	}
}

static void test_dirmgr_schedules_refresh_and_skips_known_microdescs(void **state)
{
	struct fx *x = *state;
	struct dirmgr_stats s;
	time_t start_w = x->fu + (x->fu - x->va) * 3 / 4;

	bootstrap(x);
	s = stats(x);
	assert_true(s.next_consensus_fetch >= start_w);
	assert_true(s.next_consensus_fetch <= start_w + (x->vu - start_w) * 7 / 8);
	fake_now = s.next_consensus_fetch - 1;
	run(x, 2);
	assert_int_equal(x->fake.fetches[DIR_FETCH_CONSENSUS], 1);
	fake_now = s.next_consensus_fetch;
	run(x, 2);
	assert_int_equal(x->fake.fetches[DIR_FETCH_CONSENSUS], 2);
	/* the same consensus again: nothing new to fetch */
	assert_int_equal(x->fake.fetches[DIR_FETCH_MICRODESCS], 4);
	assert_true(logged("not newer"));
}

static void test_dirmgr_rejects_too_few_signatures_and_keeps_the_last_good(void **state)
{
	struct fx *x = *state;
	struct netdir *before, *after;
	struct dirmgr_stats s;
	char *cut;
	const char *first;

	bootstrap(x);
	before = netdir_slot_acquire(&x->slot);
	/* keep only the first of the three signatures */
	first = strstr(x->good, "directory-signature ");
	assert_non_null(first);
	cut = strstr(first + 1, "directory-signature ");
	assert_non_null(cut);
	set_consensus(x, x->good, (size_t)(cut - x->good));
	fake_now = stats(x).next_consensus_fetch;
	run(x, 2);
	s = stats(x);
	assert_true(logged("rejected: only 1 of 3 trusted authorities signed validly"));
	assert_true(logged("keeping the last good directory"));
	assert_true(s.fetches[DIR_FETCH_CONSENSUS][DIR_RESULT_REJECTED] >= 1);
	assert_true(s.usable);
	after = netdir_slot_acquire(&x->slot);
	assert_ptr_equal(before, after);
	assert_true(s.next_consensus_fetch > fake_now - 1); /* retried, with backoff */
	netdir_release(before);
	netdir_release(after);
}

static void test_dirmgr_rejects_a_consensus_signed_by_an_unknown_key(void **state)
{
	struct fx *x = *state;
	size_t len;
	char *rogue = vec_load("consensus-rogue", &len);
	struct dirmgr_stats s;

	set_consensus(x, rogue, len);
	free(rogue);
	start(x);
	run(x, 3);
	s = stats(x);
	assert_false(s.usable);
	assert_null(netdir_slot_acquire(&x->slot));
	assert_true(logged("rejected: only 0 of 3 trusted authorities signed validly"));
	assert_true(s.fetches[DIR_FETCH_CONSENSUS][DIR_RESULT_REJECTED] >= 1);
	/* the authorities come back with a good one: the retry gets it */
	set_consensus(x, x->good, x->good_len);
	fake_now += 60;
	run(x, 6);
	assert_true(stats(x).usable);
}

static void test_dirmgr_rejects_an_expired_consensus(void **state)
{
	struct fx *x = *state;

	fake_now = x->vu + CONSENSUS_REASONABLY_LIVE_SECS + 1;
	start(x);
	run(x, 4);
	assert_false(stats(x).usable);
	assert_true(logged("consensus is expired more than 24 hours ago"));
	assert_null(netdir_slot_acquire(&x->slot));
	assert_true(stats(x).next_consensus_fetch > fake_now);
}

static void test_dirmgr_discards_a_microdesc_with_the_wrong_digest(void **state)
{
	struct fx *x = *state;
	struct dirmgr_stats s;

	memcpy(x->fake.corrupt_digest, x->fake.mds->mds[7].digest, 32);
	x->fake.corrupt = true;
	start(x);
	run(x, 6);
	s = stats(x);
	assert_int_equal(s.n_microdescs, 299);
	assert_true(logged("1 microdescriptor(s) from"));
	assert_true(logged("digest mismatch"));
	/* dir-spec 5.2: retried, not at once; after 60 s, only that one */
	unsigned before = x->fake.md_digests;
	run(x, 2);
	assert_int_equal(x->fake.md_digests, before);
	x->fake.corrupt = false;
	fake_now += 61;
	run(x, 3);
	assert_int_equal(x->fake.md_digests, before + 1);
	assert_int_equal(x->fake.last_batch, 1);
	assert_int_equal(stats(x).n_microdescs, 300);
}

static void truncate_file(const struct fx *x, const char *name, double keep)
{
	char p[128];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", x->dir, name);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(truncate(p, (off_t)((double)st.st_size * keep)), 0);
}

static void restart(struct fx *x)
{
	dirmgr_free(x->d);
	x->d = NULL;
	netdir_slot_publish(&x->slot, NULL);
	loglen = 0;
	logbuf[0] = '\0';
	start(x);
}

static void test_dirmgr_ignores_a_truncated_consensus_cache(void **state)
{
	struct fx *x = *state;

	bootstrap(x);
	truncate_file(x, "cached-microdesc-consensus", 0.5);
	restart(x);
	run(x, 4);
	assert_true(logged("cached-microdesc-consensus is truncated"));
	assert_int_equal(x->fake.fetches[DIR_FETCH_CONSENSUS], 1);
	assert_int_equal(x->fake.fetches[DIR_FETCH_MICRODESCS], 0); /* those were cached */
	assert_true(stats(x).usable);
}

static void test_dirmgr_refetches_microdescs_after_a_corrupt_cache(void **state)
{
	struct fx *x = *state;
	char p[128];
	int fd;

	bootstrap(x);
	snprintf(p, sizeof(p), "%s/cached-microdescs", x->dir);
	fd = open(p, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "onion-key\nGARBAGE \x01\n", 20), 20);
	close(fd);
	restart(x);
	run(x, 4);
	assert_true(logged("cached-microdescs is corrupt"));
	assert_int_equal(x->fake.fetches[DIR_FETCH_CONSENSUS], 0);
	assert_int_equal(x->fake.md_digests, 300);
	assert_true(stats(x).usable);
}

static void test_dirmgr_fetches_only_missing_microdescs(void **state)
{
	struct fx *x = *state;

	bootstrap(x);
	/* a cache cut inside its last entry: refused whole (truncated) */
	truncate_file(x, "cached-microdescs", 0.9);
	restart(x);
	run(x, 4);
	assert_true(logged("cached-microdescs is truncated"));
	assert_true(stats(x).usable);
	/* now a shorter but well-formed cache: only the rest is fetched */
	{
		struct netdir *nd = netdir_slot_acquire(&x->slot);
		char p[128];
		FILE *fp;
		snprintf(p, sizeof(p), "%s/cached-microdescs", x->dir);
		fp = fopen(p, "w");
		for (size_t i = 0; i < 250; i++)
			fwrite(nd->md[i]->text, 1, nd->md[i]->text_len, fp);
		fclose(fp);
		netdir_release(nd);
	}
	restart(x);
	run(x, 4);
	assert_int_equal(x->fake.fetches[DIR_FETCH_CONSENSUS], 0);
	assert_int_equal(x->fake.md_digests, 50);
	assert_int_equal(stats(x).n_microdescs, 300);
}

static void test_dirmgr_ignores_corrupt_certs_cache(void **state)
{
	struct fx *x = *state;

	bootstrap(x);
	truncate_file(x, "cached-certs", 0.3);
	restart(x);
	run(x, 4);
	assert_true(logged("cached-certs is corrupt"));
	/* the cached consensus cannot be checked: fetched again with certs */
	assert_true(logged("cached consensus not usable"));
	assert_int_equal(x->fake.fetches[DIR_FETCH_CERTS], 1);
	assert_true(stats(x).usable);
}

static void test_dirmgr_rotates_sources_with_backoff_on_failures(void **state)
{
	struct fx *x = *state;
	time_t t0 = fake_now;

	x->fake.fail_consensus = -ECONNREFUSED;
	x->fake.fail_consensus_n = 2;
	start(x);
	run(x, 1);
	assert_true(logged("consensus fetch from"));
	assert_true(logged(strerror(ECONNREFUSED)));
	assert_int_equal(stats(x).next_consensus_fetch, t0 + 1);
	fake_now = t0 + 1;
	run(x, 1);
	assert_int_equal(stats(x).next_consensus_fetch, t0 + 1 + 2);
	assert_int_not_equal(x->fake.cons_ports[0], x->fake.cons_ports[1]);
	fake_now = t0 + 3;
	run(x, 6);
	assert_int_equal(x->fake.fetches[DIR_FETCH_CONSENSUS], 3);
	assert_int_not_equal(x->fake.cons_ports[1], x->fake.cons_ports[2]);
	assert_true(stats(x).usable);
	assert_int_equal(stats(x).fetches[DIR_FETCH_CONSENSUS][DIR_RESULT_FAILED], 2);
}

/* Switch x to test/vectors/dirmgr/ (gen_dirmgr.py): consensus-a now,
 * consensus-b (an hour later, 8 new microdescs) served later. */
static char *use_refresh_vectors(struct fx *x, size_t *blen)
{
	struct netdoc_err e = {0};
	struct consensus *c = NULL;
	size_t len, la, lb;
	char *auth = vec_load("../dirmgr/authorities", &len), *line, *save = NULL;
	char *a = vec_load("../dirmgr/microdescs-a", &la), *b = vec_load("../dirmgr/microdescs-b-new", &lb);
	char *all = malloc(la + lb);

	x->auths.n = 0;
	for (line = strtok_r(auth, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		assert_int_equal(base16_decode(x->auths.v[x->auths.n++].v3ident, 20, line, 40), 20);
	free(auth);
	free(x->fake.keys);
	x->fake.keys = vec_load("../dirmgr/keys-all", &x->fake.keys_len);
	memcpy(all, a, la);
	memcpy(all + la, b, lb);
	microdesc_batch_free(x->fake.mds);
	assert_int_equal(microdesc_parse_batch(all, la + lb, &x->fake.mds, &e), PARSE_OK);
	free(all);
	free(a);
	free(b);
	free(x->good);
	x->good = vec_load("../dirmgr/consensus-a", &x->good_len);
	set_consensus(x, x->good, x->good_len);
	assert_int_equal(consensus_parse(x->good, x->good_len, &c, &e), PARSE_OK);
	x->va = c->valid_after;
	consensus_free(c);
	fake_now = x->va + 600;
	return vec_load("../dirmgr/consensus-b", blen);
}

static void test_dirmgr_refresh_fetches_only_the_new_microdescs(void **state)
{
	struct fx *x = *state;
	size_t blen;
	char *b = use_refresh_vectors(x, &blen);
	struct dirmgr_stats s;
	struct netdir *nd;

	bootstrap(x);
	s = stats(x);
	assert_int_equal(s.n_microdescs, 40);
	assert_int_equal(x->fake.md_digests, 40);
	set_consensus(x, b, blen);
	free(b);
	fake_now = s.next_consensus_fetch; /* after consensus-b's valid-after */
	assert_true(fake_now >= x->va + 3600);
	run(x, 4);
	s = stats(x);
	/* consensus-b's own refresh time is random in [18:45, 19:50] and can
	 * fall before fake_now (a's refresh time, random in [17:45, 18:50]):
	 * then one more fetch follows at once, and its answer (b again) is
	 * ignored as not newer. */
	assert_in_range(x->fake.fetches[DIR_FETCH_CONSENSUS], 2, 3);
	if (x->fake.fetches[DIR_FETCH_CONSENSUS] == 3)
		assert_true(logged("not newer than the one we have"));
	assert_int_equal(x->fake.md_digests, 40 + 8); /* only the 8 new ones */
	assert_int_equal(s.valid_after, x->va + 3600);
	assert_int_equal(s.n_microdescs, 40);
	nd = netdir_slot_acquire(&x->slot);
	assert_int_equal(netdir_valid_after(nd), x->va + 3600);
	assert_int_equal(nd->n_md, 40);
	netdir_release(nd);
	/* and a restart finds consensus-b and all its microdescs cached */
	restart(x);
	dirmgr_tick(x->d);
	assert_true(stats(x).usable);
	assert_int_equal(stats(x).valid_after, x->va + 3600);
	assert_int_equal(x->fake.md_digests, 0);
}

static void test_dirmgr_handles_http_errors(void **state)
{
	struct fx *x = *state;

	free(x->fake.consensus);
	x->fake.consensus = NULL; /* 404, as authorities answer before the first consensus */
	start(x);
	run(x, 2);
	assert_false(stats(x).usable);
	assert_int_equal(stats(x).fetches[DIR_FETCH_CONSENSUS][DIR_RESULT_FAILED], 1);
	set_consensus(x, x->good, x->good_len);
	fake_now += 2;
	run(x, 6);
	assert_true(stats(x).usable);
}

/* --- directory caches (dir-spec 5.1) ------------------------------------------------ */

/* Fetch through a BEGIN_DIR-like fetcher (caches need no DirPort) with the
 * first three Guard relays of x->good as the directory guards. */
static void use_caches(struct fx *x)
{
	struct netdoc_err e = {0};
	struct consensus *c = NULL;

	assert_int_equal(consensus_parse(x->good, x->good_len, &c, &e), PARSE_OK);
	x->nguards = 0;
	for (size_t i = 0; i < c->n_routers && x->nguards < 3; i++)
		if (c->routers[i].flags & RFLAG_GUARD)
			memcpy(x->guards[x->nguards++], c->routers[i].identity, 20);
	consensus_free(c);
	assert_int_equal(x->nguards, 3);
	x->begindir = true;
}

static bool is_guard(const struct fx *x, const uint8_t fp[20])
{
	for (size_t i = 0; i < x->nguards; i++)
		if (!memcmp(x->guards[i], fp, 20))
			return true;
	return false;
}

/* The index in x->fake.rec of the n-th (0-based) fetch of kind k. */
static size_t nth_fetch(const struct fx *x, enum dir_fetch_kind k, unsigned n)
{
	for (size_t i = 0; i < x->fake.nrec; i++)
		if (x->fake.rec[i].kind == k && n-- == 0)
			return i;
	fail_msg("no fetch %u of kind %s", n, dir_fetch_kind_name(k));
	return 0;
}

static void test_dirmgr_bootstraps_from_authorities_then_refreshes_from_caches(void **state)
{
	struct fx *x = *state;
	size_t blen, r, nboot;
	char *b = use_refresh_vectors(x, &blen);

	use_caches(x);
	bootstrap(x);
	/* bootstrap: no usable directory yet, so only the authorities */
	nboot = x->fake.nrec;
	assert_true(nboot >= 3);
	for (size_t i = 0; i < nboot; i++) {
		assert_false(x->fake.rec[i].cache);
		assert_int_equal(x->fake.rec[i].fp[0], x->fake.rec[i].fp[19]); /* the fixture's auth fingerprints */
	}
	/* the refresh goes to the first directory guard, and its consensus is taken */
	set_consensus(x, b, blen);
	free(b);
	fake_now = stats(x).next_consensus_fetch;
	run(x, 4);
	r = nth_fetch(x, DIR_FETCH_CONSENSUS, 1);
	assert_true(x->fake.rec[r].cache);
	assert_memory_equal(x->fake.rec[r].fp, x->guards[0], 20);
	assert_true(logged("new consensus valid-after"));
	assert_true(logged("accepted from cache "));
	assert_int_equal(stats(x).valid_after, x->va + 3600);
	/* and so do its 8 new microdescriptors, in two requests of 4 (dir-spec
	 * 5.2: three would make requests for under 4); no authority was asked
	 * since bootstrap */
	assert_int_equal(x->fake.md_digests, 40 + 8);
	assert_int_equal(x->fake.last_batch, 4);
	assert_int_equal(x->fake.fetches[DIR_FETCH_MICRODESCS], 3 + 2); /* 40 at bootstrap: 14 + 14 + 12 */
	for (size_t i = nboot; i < x->fake.nrec; i++)
		assert_true(x->fake.rec[i].cache);
	assert_true(stats(x).usable);
}

static void test_dirmgr_failing_caches_move_on_then_to_an_authority(void **state)
{
	struct fx *x = *state;
	size_t blen, r[4];
	char *b = use_refresh_vectors(x, &blen);

	use_caches(x);
	bootstrap(x);
	set_consensus(x, b, blen);
	free(b);
	x->fake.fail_cache_consensus = true;
	fake_now = stats(x).next_consensus_fetch;
	/* three caches in turn, each after the usual backoff (1, 2 s) ... */
	for (unsigned i = 0; i < DIRMGR_CACHE_TRIES; i++) {
		run(x, 1);
		r[i] = nth_fetch(x, DIR_FETCH_CONSENSUS, 1 + i);
		assert_true(x->fake.rec[r[i]].cache);
		assert_true(is_guard(x, x->fake.rec[r[i]].fp));
		for (unsigned j = 0; j < i; j++)
			assert_memory_not_equal(x->fake.rec[r[i]].fp, x->fake.rec[r[j]].fp, 20);
		assert_int_equal(stats(x).valid_after, x->va);
		assert_int_equal(stats(x).next_consensus_fetch, fake_now + (1 << i));
		fake_now = stats(x).next_consensus_fetch;
	}
	assert_true(logged("3 directory cache fetches in a row failed; asking an authority next"));
	/* ... then an authority, whose consensus is taken (the caches work
	 * again: consensus-b's own random refresh time may already have
	 * passed, and that extra fetch must go to a cache not held back) */
	x->fake.fail_cache_consensus = false;
	run(x, 4);
	r[3] = nth_fetch(x, DIR_FETCH_CONSENSUS, 1 + DIRMGR_CACHE_TRIES);
	assert_false(x->fake.rec[r[3]].cache);
	assert_true(logged("accepted from authority auth"));
	assert_int_equal(stats(x).valid_after, x->va + 3600);
	assert_int_equal(stats(x).fetches[DIR_FETCH_CONSENSUS][DIR_RESULT_FAILED], DIRMGR_CACHE_TRIES);
	/* the authority answered: the next fetches (b's new microdescriptors)
	 * go to a cache again, one not held back after failing */
	assert_int_equal(x->fake.md_digests, 40 + 8);
	for (size_t i = r[3] + 1; i < x->fake.nrec; i++) {
		assert_true(x->fake.rec[i].cache);
		assert_false(is_guard(x, x->fake.rec[i].fp));
	}
	assert_true(r[3] + 1 < x->fake.nrec);
	assert_true(stats(x).usable);
}

static void test_dirmgr_spreads_microdesc_batches_over_directory_guards(void **state)
{
	struct fx *x = *state;
	struct netdir *nd;
	char p[128];
	FILE *fp;
	size_t kept = 0;

	use_caches(x);
	bootstrap(x);
	/* a cache without the microdescriptors of 100 middle-only relays:
	 * still usable, and 100 to fetch: dir-spec 5.2 wants at least 3
	 * directories, so three requests (34 + 34 + 32), one per guard */
	nd = netdir_slot_acquire(&x->slot);
	snprintf(p, sizeof(p), "%s/cached-microdescs", x->dir);
	fp = fopen(p, "w");
	assert_non_null(fp);
	for (size_t i = 0; i < nd->c->n_routers; i++)
		if (nd->c->routers[i].flags & (RFLAG_GUARD | RFLAG_EXIT)) {
			fwrite(nd->md[i]->text, 1, nd->md[i]->text_len, fp);
			kept++;
		}
	fclose(fp);
	netdir_release(nd);
	assert_int_equal(kept, 200);
	restart(x);
	run(x, 3);
	assert_true(logged("usable without fetching anything"));
	assert_int_equal(x->fake.fetches[DIR_FETCH_CONSENSUS], 0);
	assert_int_equal(x->fake.fetches[DIR_FETCH_MICRODESCS], 3);
	assert_int_equal(x->fake.md_digests, 100);
	assert_int_equal(x->fake.max_batch, 34);
	assert_int_equal(stats(x).n_microdescs, 300);
	assert_int_equal(x->fake.nrec, 3);
	for (size_t i = 0; i < x->fake.nrec; i++) {
		assert_true(x->fake.rec[i].cache);
		assert_true(is_guard(x, x->fake.rec[i].fp));
		for (size_t j = 0; j < i; j++)
			assert_memory_not_equal(x->fake.rec[i].fp, x->fake.rec[j].fp, 20);
	}
}

static void test_dirmgr_caches_need_a_dirport_for_an_http_fetcher(void **state)
{
	struct fx *x = *state;
	size_t blen;
	char *b = use_refresh_vectors(x, &blen);

	/* every relay in the vectors has DirPort 0: a DirPort-only fetcher
	 * keeps asking the authorities */
	use_caches(x);
	x->begindir = false;
	bootstrap(x);
	set_consensus(x, b, blen);
	free(b);
	fake_now = stats(x).next_consensus_fetch;
	run(x, 4);
	assert_int_equal(stats(x).valid_after, x->va + 3600);
	for (size_t i = 0; i < x->fake.nrec; i++)
		assert_false(x->fake.rec[i].cache);
}

/* Add two fallback directories (BEGIN_DIR only) to the fixture's list. */
static void add_fallbacks(struct fx *x)
{
	for (int i = 0; i < 2; i++) {
		struct dir_source *s = &x->auths.v[x->auths.n++];

		memset(s, 0, sizeof(*s));
		snprintf(s->nickname, sizeof(s->nickname), "fb%d", i);
		s->ipv4 = 0x7f000001;
		s->or_port = (uint16_t)(9100 + i);
		memset(s->fingerprint, 0xf0 + i, 20);
		s->flags = DIR_SOURCE_FALLBACK;
	}
}

static void test_dirmgr_bootstrap_prefers_fallbacks_and_refresh_falls_back_to_authorities(void **state)
{
	struct fx *x = *state;
	size_t r;

	use_caches(x);
	add_fallbacks(x);
	bootstrap(x);
	/* dir-spec 5.1: fallbacks first, for every bootstrap fetch */
	for (size_t i = 0; i < x->fake.nrec; i++)
		assert_true(x->fake.rec[i].fallback);
	/* afterwards caches; when they fail, an authority, not a fallback */
	x->fake.fail_cache_consensus = true;
	fake_now = stats(x).next_consensus_fetch;
	for (unsigned i = 0; i < DIRMGR_CACHE_TRIES; i++) {
		run(x, 1);
		assert_true(x->fake.rec[nth_fetch(x, DIR_FETCH_CONSENSUS, 1 + i)].cache);
		fake_now = stats(x).next_consensus_fetch;
	}
	run(x, 1);
	r = nth_fetch(x, DIR_FETCH_CONSENSUS, 1 + DIRMGR_CACHE_TRIES);
	assert_false(x->fake.rec[r].cache);
	assert_false(x->fake.rec[r].fallback);
}

static void test_dirmgr_bootstrap_moves_from_failing_fallbacks_to_an_authority(void **state)
{
	struct fx *x = *state;
	size_t r;

	use_caches(x);
	add_fallbacks(x);
	x->fake.fail_fallbacks = true;
	start(x);
	/* each fallback once (held back after failing), then an authority */
	for (unsigned i = 0; i < 2; i++) {
		run(x, 1);
		r = nth_fetch(x, DIR_FETCH_CONSENSUS, i);
		assert_true(x->fake.rec[r].fallback);
		fake_now = stats(x).next_consensus_fetch;
	}
	assert_memory_not_equal(x->fake.rec[nth_fetch(x, DIR_FETCH_CONSENSUS, 0)].fp,
				x->fake.rec[nth_fetch(x, DIR_FETCH_CONSENSUS, 1)].fp, 20);
	run(x, 6);
	r = nth_fetch(x, DIR_FETCH_CONSENSUS, 2);
	assert_false(x->fake.rec[r].fallback);
	assert_true(stats(x).usable);
	assert_int_equal(stats(x).fetches[DIR_FETCH_CONSENSUS][DIR_RESULT_FAILED], 2);
	/* the rest of the bootstrap avoided the held fallbacks too */
	for (size_t i = r; i < x->fake.nrec; i++)
		assert_false(x->fake.rec[i].fallback);
	assert_true(logged("consensus fetch from fallback fb"));
}

/* guard-spec 4.7: a directory guard that cannot be reached is reported
 * unreachable to the guard state (one report per failed fetch, for the
 * guard asked); the authority asked afterwards is no guard and is not
 * reported. The log line gives the fetcher's reason (the channel's error),
 * not the errno it was summarised as. */
static void test_dirmgr_reports_unreachable_directory_guards_with_the_real_cause(void **state)
{
	struct fx *x = *state;
	size_t blen, r;
	char *b = use_refresh_vectors(x, &blen);

	use_caches(x);
	bootstrap(x);
	assert_int_equal(x->nreps, 0); /* bootstrap: authorities only */
	set_consensus(x, b, blen);
	free(b);
	x->fake.fail_cache_consensus = true;
	x->fake.cache_fail_status = -ECONNABORTED;
	x->fake.cache_fail_why = "TCP connect failed: Connection refused";
	fake_now = stats(x).next_consensus_fetch;
	for (unsigned i = 0; i < DIRMGR_CACHE_TRIES; i++) {
		run(x, 1);
		r = nth_fetch(x, DIR_FETCH_CONSENSUS, 1 + i);
		assert_true(is_guard(x, x->fake.rec[r].fp));
		assert_int_equal(x->nreps, i + 1);
		assert_memory_equal(x->reps[i].id, x->fake.rec[r].fp, 20);
		assert_false(x->reps[i].reachable);
		fake_now = stats(x).next_consensus_fetch;
	}
	assert_true(logged("consensus fetch from cache "));
	assert_true(logged("failed: TCP connect failed: Connection refused"));
	assert_false(logged("Software caused connection abort"));
	x->fake.fail_cache_consensus = false;
	run(x, 4);
	r = nth_fetch(x, DIR_FETCH_CONSENSUS, 1 + DIRMGR_CACHE_TRIES);
	assert_false(x->fake.rec[r].cache);
	assert_int_equal(x->nreps, DIRMGR_CACHE_TRIES); /* no report for the authority */
	assert_true(stats(x).usable);
}

/* An HTTP error from a directory guard means it was reached (4.8:
 * reachable); a failure that says nothing about reaching it (the answer
 * was too large) is not reported; without a cause from the fetcher the
 * errno text is logged. */
static void test_dirmgr_reports_a_directory_guard_that_answered_as_reachable(void **state)
{
	struct fx *x = *state;
	size_t r;

	use_caches(x);
	bootstrap(x);
	x->fake.fail_cache_consensus = true;
	x->fake.cache_fail_status = 503;
	fake_now = stats(x).next_consensus_fetch;
	run(x, 1);
	r = nth_fetch(x, DIR_FETCH_CONSENSUS, 1);
	assert_true(is_guard(x, x->fake.rec[r].fp));
	assert_int_equal(x->nreps, 1);
	assert_memory_equal(x->reps[0].id, x->fake.rec[r].fp, 20);
	assert_true(x->reps[0].reachable);
	assert_true(logged("failed: HTTP status 503"));
	x->fake.cache_fail_status = -EMSGSIZE;
	fake_now = stats(x).next_consensus_fetch;
	run(x, 1);
	r = nth_fetch(x, DIR_FETCH_CONSENSUS, 2);
	assert_true(is_guard(x, x->fake.rec[r].fp));
	assert_int_equal(x->nreps, 1);
	assert_true(logged("failed: Message too long"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_dirmgr_bootstraps_from_the_authorities),
		T(test_dirmgr_restart_with_fresh_cache_fetches_nothing),
		T(test_dirmgr_refresh_time_is_in_the_dir_spec_window),
		T(test_dirmgr_schedules_refresh_and_skips_known_microdescs),
		T(test_dirmgr_rejects_too_few_signatures_and_keeps_the_last_good),
		T(test_dirmgr_rejects_a_consensus_signed_by_an_unknown_key),
		T(test_dirmgr_rejects_an_expired_consensus),
		T(test_dirmgr_discards_a_microdesc_with_the_wrong_digest),
		T(test_dirmgr_ignores_a_truncated_consensus_cache),
		T(test_dirmgr_refetches_microdescs_after_a_corrupt_cache),
		T(test_dirmgr_fetches_only_missing_microdescs),
		T(test_dirmgr_ignores_corrupt_certs_cache),
		T(test_dirmgr_rotates_sources_with_backoff_on_failures),
		T(test_dirmgr_handles_http_errors),
		T(test_dirmgr_refresh_fetches_only_the_new_microdescs),
		T(test_dirmgr_bootstraps_from_authorities_then_refreshes_from_caches),
		T(test_dirmgr_failing_caches_move_on_then_to_an_authority),
		T(test_dirmgr_spreads_microdesc_batches_over_directory_guards),
		T(test_dirmgr_caches_need_a_dirport_for_an_http_fetcher),
		T(test_dirmgr_bootstrap_prefers_fallbacks_and_refresh_falls_back_to_authorities),
		T(test_dirmgr_bootstrap_moves_from_failing_fallbacks_to_an_authority),
		T(test_dirmgr_reports_unreachable_directory_guards_with_the_real_cause),
		T(test_dirmgr_reports_a_directory_guard_that_answered_as_reachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
