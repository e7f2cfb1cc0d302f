/* Entry guards for the whole process (see guardmgr.h). */
#include "app/guardmgr.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "app/cbt.h"
#include "app/circmgr.h"
#include "app/dirview.h"
#include "app/guard.h"
#include "app/netdir.h"
#include "app/path.h"
#include "core/log.h"
#include "proto/consensus.h"

#define OUTCOMES_MAX 1024

enum outcome_kind {
	OUTCOME_CIRC_OK,   /* guard_on_success */
	OUTCOME_FAILED,    /* guard_on_failure: a circuit or a directory request */
	OUTCOME_DIR_OK,    /* guard_on_reachable: a directory request answered */
};

struct outcome {
	uint8_t id[20];
	enum outcome_kind kind;
};

struct build {
	uint32_t ms;
	bool timed_out;
};

/* Coordinator-only state. */
static struct guard_state *gs;
static struct cbt cbt;
static char *state_dir;
static struct dirview dv;     /* held while gs->e[].node point into it */
static bool have_dv;
static bool dirty;

/* Shared with the workers, under lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool have_current;
static bool all_down;       /* every guard unreachable and held back */
static uint8_t current[20];
static struct outcome outcomes[OUTCOMES_MAX];
static size_t n_outcomes;
static struct build builds[OUTCOMES_MAX];
static size_t n_builds;
static _Atomic uint64_t timeout_ms_pub; /* 0: none learned yet */
static _Atomic uint64_t close_ms_pub;   /* 0: none learned yet */

void guardmgr_init(const char *datadir)
{
	struct cbt_params cp;

	gs = guard_state_new();
	cbt_params_get(&cp, NULL);
	cbt_init(&cbt, &cp);
	state_dir = datadir ? strdup(datadir) : NULL;
	if (state_dir && guard_statefile_load(state_dir, gs, &cbt) == 1)
		log_warn("guards: the state file was corrupt; starting with a fresh guard state (see the line above)");
}

bool guardmgr_current(uint8_t id[20])
{
	bool ok;

	pthread_mutex_lock(&lock);
	ok = have_current;
	if (ok)
		memcpy(id, current, 20);
	pthread_mutex_unlock(&lock);
	return ok;
}

bool guardmgr_all_down(void)
{
	bool down;

	pthread_mutex_lock(&lock);
	down = all_down;
	pthread_mutex_unlock(&lock);
	return down;
}

static void report(const uint8_t id[20], enum outcome_kind kind)
{
	pthread_mutex_lock(&lock);
	if (n_outcomes < OUTCOMES_MAX) {
		memcpy(outcomes[n_outcomes].id, id, 20);
		outcomes[n_outcomes].kind = kind;
		n_outcomes++;
	}
	/* Beyond that many per tick the news is the same: drop the rest. */
	pthread_mutex_unlock(&lock);
}

void guardmgr_report(const uint8_t id[20], bool success)
{
	report(id, success ? OUTCOME_CIRC_OK : OUTCOME_FAILED);
}

void guardmgr_report_dir(const uint8_t id[20], bool reachable)
{
	report(id, reachable ? OUTCOME_DIR_OK : OUTCOME_FAILED);
}

void guardmgr_report_build(uint32_t ms, bool timed_out)
{
	pthread_mutex_lock(&lock);
	if (n_builds < OUTCOMES_MAX) {
		builds[n_builds].ms = ms;
		builds[n_builds].timed_out = timed_out;
		n_builds++;
	}
	pthread_mutex_unlock(&lock);
}

uint64_t guardmgr_build_timeout_ms(void)
{
	/* Relaxed: a slightly old timeout is as good as the new one. */
	return atomic_load_explicit(&timeout_ms_pub, memory_order_relaxed);
}

uint64_t guardmgr_build_close_ms(void)
{
	/* Relaxed: as guardmgr_build_timeout_ms. */
	return atomic_load_explicit(&close_ms_pub, memory_order_relaxed);
}

/* path-spec 2.4: learn the build timeout from what the workers saw. */
static void apply_builds(void)
{
	struct build batch[OUTCOMES_MAX];
	size_t n;

	pthread_mutex_lock(&lock);
	n = n_builds;
	memcpy(batch, builds, n * sizeof(batch[0]));
	n_builds = 0;
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < n; i++) {
		/* path-spec 2.4.4: a measurement circuit's time counts too;
		 * leaving out the tail would bias the estimate low. */
		if (batch[i].ms)
			cbt_add_time(&cbt, batch[i].ms);
		cbt_note_outcome(&cbt, batch[i].timed_out);
		dirty = true;
	}
	if (n) {
		atomic_store_explicit(&timeout_ms_pub, (uint64_t)cbt_timeout_ms(&cbt, 3), memory_order_relaxed);
		atomic_store_explicit(&close_ms_pub, (uint64_t)cbt_close_ms(&cbt, 3), memory_order_relaxed);
	}
}

/* A new directory: re-point the guard entries at its nodes. */
static void follow_directory(time_t now)
{
	struct dirview ndv;

	if (!dirview_acquire(&ndv))
		return;
	if (have_dv && ndv.ref == dv.ref) {
		dirview_release(ndv.ref);
		return;
	}
	{
		struct netdir *nd = netdir_slot_acquire(netdir_global());
		if (nd) {
			struct cbt_params cp;
			cbt_params_get(&cp, nd->c);
			cbt_set_params(&cbt, &cp);
			netdir_release(nd);
		}
	}
	guard_on_consensus(gs, ndv.ps, now);
	if (have_dv)
		dirview_release(dv.ref);
	dv = ndv;
	have_dv = true;
	dirty = true;
}

static void apply_outcomes(time_t now)
{
	struct outcome batch[OUTCOMES_MAX];
	size_t n;

	pthread_mutex_lock(&lock);
	n = n_outcomes;
	memcpy(batch, outcomes, n * sizeof(batch[0]));
	n_outcomes = 0;
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < n; i++) {
		switch (batch[i].kind) {
		case OUTCOME_CIRC_OK: guard_on_success(gs, batch[i].id, now); break;
		case OUTCOME_FAILED: guard_on_failure(gs, batch[i].id, now); break;
		case OUTCOME_DIR_OK: guard_on_reachable(gs, batch[i].id, now); break;
		}
		dirty = true;
	}
}

void guardmgr_tick(time_t now)
{
	struct guard_pick pick;
	time_t retry_at = 0;
	bool ok, held;

	if (!gs)
		return;
	follow_directory(now);
	if (!have_dv)
		return;
	apply_outcomes(now);
	apply_builds();
	/* guard-spec 4.6: the guard for the next circuits; no exit is known
	 * here, so the path selector keeps the exit apart from it. */
	ok = guard_select(gs, dv.ps, NULL, false, now, &pick);
	held = !ok && guard_all_held(gs, now, &retry_at);
	if (held && !all_down)
		log_notice("guards: every entry guard is unreachable; no circuits until they are tried again in %lld s",
			   (long long)(retry_at - now));
	pthread_mutex_lock(&lock);
	all_down = held;
	if (ok && pick.node) {
		if (!have_current || memcmp(current, pick.node->rs->identity, 20) != 0) {
			log_notice("guards: using %s as the entry guard", pick.node->rs->nickname);
			dirty = true;
		}
		memcpy(current, pick.node->rs->identity, 20);
		have_current = true;
	} else {
		have_current = false;
	}
	pthread_mutex_unlock(&lock);
	if (dirty && state_dir) {
		if (guard_statefile_save(state_dir, gs, &cbt, now) < 0)
			log_warn("guards: cannot write %s/state", state_dir);
		dirty = false;
	}
}

size_t guardmgr_dir_guards(uint8_t (*ids)[20], size_t cap)
{
	/* The entries' nodes point into dv: only while we hold one. */
	return gs && have_dv ? guard_dir_guards(gs, ids, cap) : 0;
}

void guardmgr_shutdown(time_t now)
{
	if (!gs)
		return;
	if (state_dir && guard_statefile_save(state_dir, gs, &cbt, now) < 0)
		log_warn("guards: cannot write %s/state", state_dir);
	guard_state_free(gs);
	gs = NULL;
	if (have_dv)
		dirview_release(dv.ref);
	have_dv = false;
	free(state_dir);
	state_dir = NULL;
	pthread_mutex_lock(&lock);
	have_current = false;
	all_down = false;
	n_outcomes = 0;
	pthread_mutex_unlock(&lock);
}
