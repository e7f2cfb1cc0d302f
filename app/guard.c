/* Entry guards per guard-spec.txt, and the state file. See guard.h. Not
 * for circuit states or bridges. */
#include "app/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/log.h"
#include "onionring_build.h"

#define DAY (24 * 60 * 60)
#define HOUR (60 * 60)

void guard_params_get(struct guard_params *p, const struct consensus *c)
{
	static const struct consensus empty;
	const struct consensus *k = c ? c : &empty;

	p->n_primary = consensus_param(k, "guard-n-primary-guards", 3, 1, 64);
	p->n_primary_to_use = consensus_param(k, "guard-n-primary-guards-to-use", 1, 1, 64);
	p->n_primary_dir_to_use = consensus_param(k, "guard-n-primary-dir-guards-to-use", 3, 1, 64);
	p->min_filtered = consensus_param(k, "guard-min-filtered-sample-size", 20, 1, 1000);
	p->max_sample_size = consensus_param(k, "guard-max-sample-size", 60, 1, 1000);
	p->max_sample_pct = consensus_param(k, "guard-max-sample-threshold-percent", 20, 1, 100);
	p->lifetime_days = consensus_param(k, "guard-lifetime-days", 120, 1, 3650);
	p->confirmed_min_lifetime_days = consensus_param(k, "guard-confirmed-min-lifetime-days", 60, 1, 3650);
	p->remove_unlisted_days = consensus_param(k, "guard-remove-unlisted-guards-after-days", 20, 1, 3650);
	p->internet_down_interval = consensus_param(k, "guard-internet-likely-down-interval", 600, 1, INT32_MAX);
}

struct guard_state *guard_state_new(void)
{
	struct guard_state *gs = calloc(1, sizeof(*gs));

	if (!gs)
		abort();
	guard_params_get(&gs->p, NULL);
	return gs;
}

static void guard_state_clear(struct guard_state *gs)
{
	for (size_t i = 0; i < gs->n; i++)
		free(gs->e[i].extra);
	for (size_t i = 0; i < gs->n_foreign; i++)
		free(gs->foreign[i]);
	free(gs->e);
	free(gs->prim);
	free(gs->foreign);
	gs->e = NULL;
	gs->prim = NULL;
	gs->foreign = NULL;
	gs->n = gs->cap = gs->n_prim = gs->n_foreign = 0;
	gs->last_time_on_internet = 0;
}

void guard_state_free(struct guard_state *gs)
{
	if (!gs)
		return;
	guard_state_clear(gs);
	free(gs);
}

/* guard-spec A.2: RAND(now, interval), a time up to interval in the past. */
static time_t rand_past(time_t now, time_t interval)
{
	return now - (time_t)crypto_rand_uint64((uint64_t)interval + 1);
}

static struct guard_entry *entry_add(struct guard_state *gs)
{
	if (gs->n == gs->cap) {
		gs->cap = gs->cap ? 2 * gs->cap : 32;
		gs->e = realloc(gs->e, gs->cap * sizeof(*gs->e));
		gs->prim = realloc(gs->prim, gs->cap * sizeof(*gs->prim));
		if (!gs->e || !gs->prim)
			abort();
	}
	memset(&gs->e[gs->n], 0, sizeof(gs->e[0]));
	gs->e[gs->n].confirmed_idx = -1;
	return &gs->e[gs->n++];
}

static ssize_t entry_find(const struct guard_state *gs, const uint8_t id[SHA1_LEN])
{
	for (size_t i = 0; i < gs->n; i++)
		if (memcmp(gs->e[i].id, id, SHA1_LEN) == 0)
			return (ssize_t)i;
	return -1;
}

/* guard-spec 4.0 {GUARDS}: Guard, Stable, Fast, V2Dir (and usable now). */
static bool node_is_guard_candidate(const struct node *n)
{
	return n->md && node_has_flags(n, RFLAG_GUARD | RFLAG_STABLE | RFLAG_FAST | RFLAG_V2DIR |
						 RFLAG_RUNNING | RFLAG_VALID);
}

/* ---- Consensus update: listed, expiry, filter, sample, primary ------------- */

static void update_listed(struct guard_state *gs, const struct path_sel *ps, time_t now)
{
	const struct nodelist *nl = path_sel_nodes(ps);

	for (size_t i = 0; i < gs->n; i++) {
		struct guard_entry *e = &gs->e[i];
		const struct node *n = nodelist_find(nl, e->id);
		bool listed = n && node_is_guard_candidate(n);

		e->node = n;
		if (listed) {
			e->unlisted_since = 0;
		} else if (e->listed || !e->unlisted_since) {
			e->unlisted_since = rand_past(now, (time_t)gs->p.remove_unlisted_days * DAY / 5);
		}
		e->listed = listed;
	}
}

/* guard-spec 4.1: drop long-unlisted guards and guards past their lifetime,
 * then renumber the confirmed list to stay dense. */
static void expire(struct guard_state *gs, time_t now)
{
	size_t w = 0;
	int next_conf = 0;

	for (size_t i = 0; i < gs->n; i++) {
		struct guard_entry *e = &gs->e[i];
		bool gone_unlisted = !e->listed && e->unlisted_since &&
				     now - e->unlisted_since > (time_t)gs->p.remove_unlisted_days * DAY;
		bool too_old = now - e->sampled_on > (time_t)gs->p.lifetime_days * DAY &&
			       (!e->confirmed_on ||
				now - e->confirmed_on > (time_t)gs->p.confirmed_min_lifetime_days * DAY);

		if (gone_unlisted || too_old) {
			log_info("guard: removing %s from the sample (%s)", e->nickname,
				 gone_unlisted ? "unlisted too long" : "lifetime over");
			free(e->extra);
			continue;
		}
		gs->e[w++] = *e;
	}
	gs->n = w;
	/* renumber confirmed_idx 0..k-1 in their old order */
	for (;;) {
		ssize_t best = -1;

		for (size_t i = 0; i < gs->n; i++)
			if (gs->e[i].confirmed_idx >= next_conf &&
			    (best < 0 || gs->e[i].confirmed_idx < gs->e[best].confirmed_idx))
				best = (ssize_t)i;
		if (best < 0)
			break;
		gs->e[best].confirmed_idx = next_conf++;
	}
}

static void refilter(struct guard_state *gs, const struct path_sel *ps)
{
	const struct path_rules *r = path_sel_rules(ps);

	for (size_t i = 0; i < gs->n; i++) {
		struct guard_entry *e = &gs->e[i];

		/* guard-spec 4.2: listed, not excluded by configuration. */
		e->filtered = e->listed && e->node && !nodeset_contains(r->exclude, e->node);
	}
}

static size_t count_usable_filtered(const struct guard_state *gs)
{
	size_t k = 0;

	for (size_t i = 0; i < gs->n; i++)
		k += gs->e[i].filtered && gs->e[i].reach != GUARD_REACH_NO;
	return k;
}

/* guard-spec 4.1: add one guard from {GUARDS} - {SAMPLED}, weighted as
 * guard-position relays (Wgg / Wgd). Returns false when none is left. */
static bool sample_one(struct guard_state *gs, const struct path_sel *ps, time_t now)
{
	const struct nodelist *nl = path_sel_nodes(ps);
	uint64_t sum = 0, x = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < nl->n; i++) {
			const struct node *n = &nl->nodes[i];
			uint64_t w = node_is_guard_candidate(n) ? path_weight(ps, PATH_POS_GUARD, n) : 0;

			if (!w || entry_find(gs, n->rs->identity) >= 0)
				continue;
			if (pass == 0) {
				sum += w;
				continue;
			}
			if (x < w) {
				struct guard_entry *e = entry_add(gs);

				memcpy(e->id, n->rs->identity, SHA1_LEN);
				memcpy(e->nickname, n->rs->nickname, sizeof(e->nickname));
				e->sampled_on = rand_past(now, (time_t)gs->p.lifetime_days * DAY / 10);
				snprintf(e->sampled_by, sizeof(e->sampled_by), "onionring-%s", ONIONRING_VERSION);
				e->listed = true;
				e->node = n;
				return true;
			}
			x -= w;
		}
		if (pass == 0 && sum == 0)
			return false;
		if (pass == 0)
			x = crypto_rand_uint64(sum);
	}
	return false;
}

static size_t max_sample(const struct guard_state *gs, const struct path_sel *ps)
{
	const struct nodelist *nl = path_sel_nodes(ps);
	size_t guards = 0, m;

	for (size_t i = 0; i < nl->n; i++)
		guards += node_is_guard_candidate(&nl->nodes[i]);
	m = guards * (size_t)gs->p.max_sample_pct / 100;
	if (m > (size_t)gs->p.max_sample_size)
		m = (size_t)gs->p.max_sample_size;
	if (m < (size_t)gs->p.min_filtered)
		m = (size_t)gs->p.min_filtered;
	return m;
}

static void top_up(struct guard_state *gs, const struct path_sel *ps, time_t now)
{
	size_t cap = max_sample(gs, ps);

	while (count_usable_filtered(gs) < (size_t)gs->p.min_filtered && gs->n < cap) {
		if (!sample_one(gs, ps, now))
			break;
		refilter(gs, ps);
	}
}

static bool prim_has(const struct guard_state *gs, size_t i)
{
	for (size_t k = 0; k < gs->n_prim; k++)
		if (gs->prim[k] == i)
			return true;
	return false;
}

/* guard-spec 4.4: confirmed and filtered first (confirmed order), then the
 * earlier non-confirmed primaries, then filtered guards in sample order. */
static void primary_recompute(struct guard_state *gs)
{
	size_t old_n = gs->n_prim, *old = malloc((old_n + 1) * sizeof(*old)), want = (size_t)gs->p.n_primary;

	if (!old)
		abort();
	memcpy(old, gs->prim, old_n * sizeof(*old));
	gs->n_prim = 0;
	for (int c = 0; gs->n_prim < want; c++) {
		ssize_t hit = -1;

		for (size_t i = 0; i < gs->n && hit < 0; i++)
			if (gs->e[i].confirmed_idx == c)
				hit = (ssize_t)i;
		if (hit < 0)
			break;
		if (gs->e[hit].filtered)
			gs->prim[gs->n_prim++] = (size_t)hit;
	}
	for (size_t k = 0; k < old_n && gs->n_prim < want; k++)
		if (old[k] < gs->n && gs->e[old[k]].filtered && !prim_has(gs, old[k]))
			gs->prim[gs->n_prim++] = old[k];
	for (size_t i = 0; i < gs->n && gs->n_prim < want; i++)
		if (gs->e[i].filtered && gs->e[i].confirmed_idx < 0 && !prim_has(gs, i))
			gs->prim[gs->n_prim++] = i;
	for (size_t i = 0; i < gs->n; i++)
		gs->e[i].primary = prim_has(gs, i);
	free(old);
}

void guard_on_consensus(struct guard_state *gs, const struct path_sel *ps, time_t now)
{
	const struct nodelist *nl = path_sel_nodes(ps);

	guard_params_get(&gs->p, nl->c);
	/* Primary entries are indexes: remember ids before entries move. */
	uint8_t (*pid)[SHA1_LEN] = calloc(gs->n_prim + 1, SHA1_LEN);

	if (!pid)
		abort();
	for (size_t k = 0; k < gs->n_prim; k++)
		memcpy(pid[k], gs->e[gs->prim[k]].id, SHA1_LEN);
	size_t old_n_prim = gs->n_prim;

	update_listed(gs, ps, now);
	expire(gs, now);
	gs->n_prim = 0;
	for (size_t k = 0; k < old_n_prim; k++) {
		ssize_t i = entry_find(gs, pid[k]);

		if (i >= 0)
			gs->prim[gs->n_prim++] = (size_t)i;
	}
	free(pid);
	refilter(gs, ps);
	top_up(gs, ps, now);
	primary_recompute(gs);
}

/* ---- Retry, selection, outcomes ------------------------------------------- */

time_t guard_retry_interval(bool primary, time_t failing_for)
{
	/* guard-spec A.1 PRIMARY_GUARDS_RETRY_SCHED and GUARDS_RETRY_SCHED:
	 * the first 6 hours, the next 90 hours, the next 3 days, thereafter. */
	if (failing_for < 6 * HOUR)
		return primary ? 10 * 60 : HOUR;
	if (failing_for < 96 * HOUR)
		return primary ? 90 * 60 : 4 * HOUR;
	if (failing_for < 168 * HOUR)
		return primary ? 4 * HOUR : 18 * HOUR;
	return primary ? 9 * HOUR : 36 * HOUR;
}

void guard_retry_due(struct guard_state *gs, time_t now)
{
	for (size_t i = 0; i < gs->n; i++) {
		struct guard_entry *e = &gs->e[i];

		if (e->reach != GUARD_REACH_NO)
			continue;
		if (now >= e->last_tried + guard_retry_interval(e->primary, now - e->failing_since))
			e->reach = GUARD_REACH_MAYBE;
	}
}

uint64_t guard_rank(const struct guard_state *gs, size_t i)
{
	const struct guard_entry *e = &gs->e[i];

	/* guard-spec 4.3: confirmed first in their order; then pending ones,
	 * earlier attempts first; then all others equal. */
	if (e->confirmed_idx >= 0)
		return (uint64_t)e->confirmed_idx;
	if (e->pending)
		return (UINT64_C(1) << 32) + (uint64_t)e->last_tried;
	return UINT64_C(1) << 62;
}

static bool entry_usable(const struct guard_state *gs, size_t i, const struct path_sel *ps,
			 const struct node *avoid)
{
	const struct guard_entry *e = &gs->e[i];

	return e->filtered && e->reach != GUARD_REACH_NO && e->node &&
	       (!avoid || path_compatible(ps, e->node, avoid));
}

static bool pick_exploratory(struct guard_state *gs, const struct path_sel *ps,
			     const struct node *avoid, struct guard_pick *out)
{
	ssize_t first = -1, free_one = -1;

	/* Confirmed and usable, in confirmed order: the first not pending. */
	for (int c = 0; free_one < 0; c++) {
		ssize_t hit = -1;

		for (size_t i = 0; i < gs->n && hit < 0; i++)
			if (gs->e[i].confirmed_idx == c)
				hit = (ssize_t)i;
		if (hit < 0)
			break;
		if (!entry_usable(gs, (size_t)hit, ps, avoid))
			continue;
		if (first < 0)
			first = hit;
		if (!gs->e[hit].pending)
			free_one = hit;
	}
	/* Otherwise usable filtered guards in sample order. */
	for (size_t i = 0; i < gs->n && first < 0; i++)
		if (entry_usable(gs, i, ps, avoid) && !gs->e[i].pending)
			first = free_one = (ssize_t)i;
	for (size_t i = 0; i < gs->n && first < 0; i++)
		if (entry_usable(gs, i, ps, avoid))
			first = (ssize_t)i;
	if (first < 0)
		return false;
	out->entry = (size_t)(free_one >= 0 ? free_one : first);
	out->usable = GUARD_USABLE_IF_NO_BETTER;
	gs->e[out->entry].pending = true;
	return true;
}

static bool guard_select_once(struct guard_state *gs, const struct path_sel *ps,
			      const struct node *avoid, bool for_dir, struct guard_pick *out)
{
	size_t cand[64], nc = 0, limit = (size_t)(for_dir ? gs->p.n_primary_dir_to_use
							 : gs->p.n_primary_to_use);

	/* guard-spec 4.6: one of the first N usable primaries, uniformly. */
	for (size_t k = 0; k < gs->n_prim && nc < limit && nc < 64; k++)
		if (entry_usable(gs, gs->prim[k], ps, avoid))
			cand[nc++] = gs->prim[k];
	if (nc > 0) {
		out->entry = cand[crypto_rand_uint64(nc)];
		out->usable = GUARD_USABLE_ON_COMPLETION;
		return true;
	}
	return pick_exploratory(gs, ps, avoid, out);
}

bool guard_select(struct guard_state *gs, const struct path_sel *ps, const struct node *avoid,
		  bool for_dir, time_t now, struct guard_pick *out)
{
	guard_retry_due(gs, now);
	if (!guard_select_once(gs, ps, avoid, for_dir, out)) {
		/* guard-spec 4.6: all sampled guards exhausted: mark them all
		 * <maybe> and keep trying (after topping up the sample), but
		 * not more often than GUARD_EXHAUSTED_RETRY_SECS (see guard.h). */
		if (gs->exhausted_at && now >= gs->exhausted_at &&
		    now - gs->exhausted_at < GUARD_EXHAUSTED_RETRY_SECS)
			return false;
		gs->exhausted_at = now;
		for (size_t i = 0; i < gs->n; i++)
			if (gs->e[i].reach == GUARD_REACH_NO)
				gs->e[i].reach = GUARD_REACH_MAYBE;
		top_up(gs, ps, now);
		primary_recompute(gs);
		if (!guard_select_once(gs, ps, avoid, for_dir, out))
			return false;
	}
	gs->e[out->entry].last_tried = now;
	out->node = gs->e[out->entry].node;
	return true;
}

bool guard_all_held(const struct guard_state *gs, time_t now, time_t *retry_at)
{
	bool any = false;

	for (size_t i = 0; i < gs->n; i++) {
		if (!gs->e[i].filtered)
			continue;
		if (gs->e[i].reach != GUARD_REACH_NO)
			return false;
		any = true;
	}
	if (!any || !gs->exhausted_at || now < gs->exhausted_at ||
	    now - gs->exhausted_at >= GUARD_EXHAUSTED_RETRY_SECS)
		return false;
	if (retry_at)
		*retry_at = gs->exhausted_at + GUARD_EXHAUSTED_RETRY_SECS;
	return true;
}

size_t guard_dir_guards(const struct guard_state *gs, uint8_t (*ids)[SHA1_LEN], size_t cap)
{
	size_t n = 0, limit = (size_t)gs->p.n_primary_dir_to_use;

	for (size_t k = 0; k < gs->n_prim && n < limit && n < cap; k++) {
		const struct guard_entry *e = &gs->e[gs->prim[k]];

		if (e->node && e->filtered && e->reach != GUARD_REACH_NO)
			memcpy(ids[n++], e->id, SHA1_LEN);
	}
	return n;
}

void guard_on_failure(struct guard_state *gs, const uint8_t id[SHA1_LEN], time_t now)
{
	ssize_t i = entry_find(gs, id);

	if (i < 0)
		return;
	gs->e[i].reach = GUARD_REACH_NO;
	gs->e[i].pending = false;
	if (!gs->e[i].failing_since)
		gs->e[i].failing_since = now;
	if (!gs->e[i].last_tried) /* a failure means it was tried */
		gs->e[i].last_tried = now;
}

void guard_on_reachable(struct guard_state *gs, const uint8_t id[SHA1_LEN], time_t now)
{
	ssize_t i = entry_find(gs, id);

	if (i < 0)
		return;
	gs->e[i].reach = GUARD_REACH_YES;
	gs->e[i].failing_since = 0;
	gs->e[i].pending = false;
	/* 4.6: "the last time at which we ... connected to a guard". */
	gs->last_time_on_internet = now;
}

void guard_on_success(struct guard_state *gs, const uint8_t id[SHA1_LEN], time_t now)
{
	ssize_t i = entry_find(gs, id);
	struct guard_entry *e;
	bool was_down;

	if (i < 0)
		return;
	e = &gs->e[i];
	was_down = !gs->last_time_on_internet ||
		   now - gs->last_time_on_internet > gs->p.internet_down_interval;
	e->reach = GUARD_REACH_YES;
	e->failing_since = 0;
	if (e->pending && was_down && gs->last_time_on_internet) {
		/* guard-spec 4.8: the net was probably down: retry primaries. */
		for (size_t k = 0; k < gs->n_prim; k++)
			gs->e[gs->prim[k]].reach = GUARD_REACH_MAYBE;
	}
	e->pending = false;
	gs->last_time_on_internet = now;
	if (e->confirmed_idx < 0) {
		int next = 0;

		for (size_t k = 0; k < gs->n; k++)
			if (gs->e[k].confirmed_idx >= next)
				next = gs->e[k].confirmed_idx + 1;
		e->confirmed_idx = next;
		e->confirmed_on = rand_past(now, (time_t)gs->p.lifetime_days * DAY / 10);
		primary_recompute(gs);
	}
}

/* ---- The state file ------------------------------------------------------- */

static void iso_time(char out[32], time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
}

static bool parse_iso(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *e = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (!e || *e)
		return false;
	*out = timegm(&tm);
	return *out > 0;
}

static int entry_write(const struct guard_entry *e, char *out, size_t cap)
{
	char hex[2 * SHA1_LEN + 1], s[32], u[48] = "", c[64] = "";

	base16_encode(hex, sizeof(hex), e->id, SHA1_LEN, true);
	iso_time(s, e->sampled_on);
	if (e->unlisted_since) {
		memcpy(u, " unlisted_since=", 17);
		iso_time(u + 16, e->unlisted_since);
	}
	if (e->confirmed_idx >= 0) {
		char t[32];

		iso_time(t, e->confirmed_on);
		snprintf(c, sizeof(c), " confirmed_on=%s confirmed_idx=%d", t, e->confirmed_idx);
	}
	return snprintf(out, cap, "Guard in=default rsa_id=%s nickname=%s sampled_on=%s sampled_by=%s listed=%d%s%s%s%s\n",
			hex, e->nickname, s, e->sampled_by, e->listed, u, c, e->extra ? " " : "",
			e->extra ? e->extra : "");
}

/* Render the whole file; returns owned text or NULL when too large. */
static char *state_render(const struct guard_state *gs, const struct cbt *cbt, time_t now)
{
	size_t cap = 64 * 1024 + gs->n * 1024 + gs->n_foreign * 1024, len;
	char *buf = malloc(cap), t[32];
	int w;

	if (!buf)
		abort();
	iso_time(t, now);
	len = (size_t)snprintf(buf, cap, "# onionring state file; written atomically, do not edit while running\nLastWritten %s\n", t);
	for (size_t i = 0; i < gs->n; i++) {
		w = entry_write(&gs->e[i], buf + len, cap - len);
		if (w < 0 || (size_t)w >= cap - len)
			goto fail;
		len += (size_t)w;
	}
	for (size_t i = 0; i < gs->n_foreign; i++) {
		w = snprintf(buf + len, cap - len, "Guard %s\n", gs->foreign[i]);
		if (w < 0 || (size_t)w >= cap - len)
			goto fail;
		len += (size_t)w;
	}
	if (cbt && cbt_state_write(cbt, buf + len, cap - len) < 0)
		goto fail;
	return buf;
fail:
	free(buf);
	return NULL;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int guard_statefile_save(const char *datadir, const struct guard_state *gs, const struct cbt *cbt,
			 time_t now)
{
	char path[4096], tmp[4096];
	char *text = state_render(gs, cbt, now);
	int fd, rc;

	if (!text)
		return -E2BIG;
	snprintf(path, sizeof(path), "%s/state", datadir);
	snprintf(tmp, sizeof(tmp), "%s/state.tmp", datadir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = write_all(fd, text, strlen(text));
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0) {
		int dfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) { /* make the rename itself durable */
			fsync(dfd);
			close(dfd);
		}
	} else {
		unlink(tmp);
		log_warn("state: cannot write %s: %s", path, strerror(-rc));
	}
out:
	free(text);
	return rc;
}

/* Append item (borrowed, len bytes) to *extra, space-separated. */
static void extra_append(char **extra, const char *item, size_t len)
{
	size_t old = *extra ? strlen(*extra) : 0;
	char *p = realloc(*extra, old + len + 2);

	if (!p)
		abort();
	if (old)
		p[old++] = ' ';
	memcpy(p + old, item, len);
	p[old + len] = '\0';
	*extra = p;
}

/* Apply one k=v item to e; false on a malformed recognised value. */
static bool entry_kv(struct guard_entry *e, const char *k, const char *v, unsigned *seen)
{
	char *end;

	if (strcmp(k, "rsa_id") == 0) {
		*seen |= 1;
		return strlen(v) == 40 && base16_decode(e->id, SHA1_LEN, v, 40) == SHA1_LEN;
	}
	if (strcmp(k, "sampled_on") == 0)
		return (*seen |= 2), parse_iso(v, &e->sampled_on);
	if (strcmp(k, "listed") == 0) {
		*seen |= 4;
		e->listed = v[0] == '1';
		return (v[0] == '0' || v[0] == '1') && v[1] == '\0';
	}
	if (strcmp(k, "nickname") == 0)
		return strlen(v) <= CONSENSUS_MAX_NICKNAME && memcpy(e->nickname, v, strlen(v) + 1);
	if (strcmp(k, "sampled_by") == 0)
		return snprintf(e->sampled_by, sizeof(e->sampled_by), "%s", v) >= 0;
	if (strcmp(k, "unlisted_since") == 0)
		return parse_iso(v, &e->unlisted_since);
	if (strcmp(k, "confirmed_on") == 0)
		return parse_iso(v, &e->confirmed_on);
	if (strcmp(k, "confirmed_idx") == 0) {
		long x = strtol(v, &end, 10);

		e->confirmed_idx = (int)x;
		return *v && !*end && x >= 0 && x < 100000;
	}
	return false; /* not recognised: caller keeps it */
}

static bool is_known_key(const char *k)
{
	static const char *const keys[] = { "rsa_id", "sampled_on", "listed", "nickname", "sampled_by",
					     "unlisted_since", "confirmed_on", "confirmed_idx" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(k, keys[i]) == 0)
			return true;
	return false;
}

/* Parse one "Guard" value (modified in place). NULL on success, else why. */
static const char *guard_line(struct guard_state *gs, char *v)
{
	struct guard_entry tmp = { .confirmed_idx = -1 };
	unsigned seen = 0;
	bool is_default = false, has_in = false;
	char *save = NULL;
	char *copy = strdup(v);

	if (!copy)
		abort();
	for (char *it = strtok_r(v, " ", &save); it; it = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(it, '=');

		if (!eq || eq == it)
			return free(copy), free(tmp.extra), "an item is not K=V";
		*eq = '\0';
		if (strcmp(it, "in") == 0) {
			has_in = true;
			is_default = strcmp(eq + 1, "default") == 0;
		} else if (is_known_key(it)) {
			if (!entry_kv(&tmp, it, eq + 1, &seen))
				return free(copy), free(tmp.extra), "a malformed value";
		} else {
			*eq = '=';
			extra_append(&tmp.extra, it, strlen(it)); /* guard-spec A.5: keep unknown K=V */
		}
	}
	if (!has_in || (seen & 7) != 7)
		return free(copy), free(tmp.extra), "missing in, rsa_id, sampled_on or listed";
	if ((tmp.confirmed_idx >= 0) != (tmp.confirmed_on != 0))
		return free(copy), free(tmp.extra), "confirmed_on without confirmed_idx or the reverse";
	if (!is_default) {
		gs->foreign = realloc(gs->foreign, (gs->n_foreign + 1) * sizeof(*gs->foreign));
		if (!gs->foreign)
			abort();
		gs->foreign[gs->n_foreign++] = copy;
		free(tmp.extra);
		return NULL;
	}
	free(copy);
	if (entry_find(gs, tmp.id) >= 0)
		return free(tmp.extra), "a guard listed twice";
	*entry_add(gs) = tmp;
	return NULL;
}

/* Check the confirmed indexes are distinct. */
static bool confirmed_consistent(const struct guard_state *gs)
{
	for (size_t i = 0; i < gs->n; i++)
		for (size_t j = i + 1; j < gs->n; j++)
			if (gs->e[i].confirmed_idx >= 0 && gs->e[i].confirmed_idx == gs->e[j].confirmed_idx)
				return false;
	return true;
}

/* Parse text (modified). NULL on success, else the reason, *line set. */
static const char *state_parse(char *text, struct guard_state *gs, struct cbt *cbt, unsigned *line)
{
	char *save = NULL;

	*line = 0;
	cbt_state_begin(cbt);
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *v;
		const char *why;

		(*line)++;
		for (char *p = l; *p; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t')
				return "a control character";
		if (*l == '#' || *l == '\0')
			continue;
		v = strchr(l, ' ');
		if (!v || v == l)
			return "a line without a value";
		*v++ = '\0';
		if (strcmp(l, "Guard") == 0) {
			why = guard_line(gs, v);
			if (why)
				return why;
		} else if (cbt_state_owns_key(l)) {
			if (!cbt_state_line(cbt, l, v))
				return "a malformed circuit build time line";
		} else if (strcmp(l, "LastWritten") != 0) {
			log_debug("state: ignoring unknown key %s", l);
		}
	}
	if (!confirmed_consistent(gs))
		return "two guards with the same confirmed_idx";
	cbt_state_done(cbt);
	return NULL;
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);

		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int guard_statefile_load(const char *datadir, struct guard_state *gs, struct cbt *cbt)
{
	char path[4096], bad[4200];
	char *text = NULL;
	size_t len = 0;
	unsigned line = 0;
	const char *why;
	int rc;

	guard_state_clear(gs);
	cbt_state_begin(cbt);
	snprintf(path, sizeof(path), "%s/state", datadir);
	rc = read_file(path, &text, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		log_warn("state: cannot read %s: %s; starting with a fresh state", path, strerror(-rc));
		return rc;
	}
	why = strlen(text) != len ? "a NUL byte" : state_parse(text, gs, cbt, &line);
	free(text);
	if (!why)
		return 0;
	snprintf(bad, sizeof(bad), "%s.corrupt", path);
	log_warn("state: %s is corrupt (line %u: %s); moved to %s, starting with a fresh state",
		 path, line, why, bad);
	if (rename(path, bad) != 0)
		log_warn("state: cannot move %s aside: %s", path, strerror(errno));
	guard_state_clear(gs);
	cbt_state_begin(cbt);
	return 1;
}
