/* Directory views for circuit building (see dirview.h).
 *
 * A view wraps one netdir generation. Building its path selector costs a
 * pass over the consensus, so it is built once per generation and shared:
 * the mutex is taken once per circuit launch (not per cell), and only the
 * first launch after a new consensus builds anything. */
#include "app/dirview.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "app/circmgr.h"
#include "app/netdir.h"
#include "app/path.h"
#include "core/clock.h"
#include "core/log.h"
#include "proto/consensus.h"

struct view {
	_Atomic long refs;
	struct netdir *nd;      /* held */
	struct path_sel *ps;    /* owned */
	struct circ_params cparams;
	struct cc_params cc_onion;
	bool cc_enabled;
	bool optimistic_data;
};

static const struct config *view_cfg;
static pthread_mutex_t view_lock = PTHREAD_MUTEX_INITIALIZER;
static struct view *view_cur; /* guarded by view_lock; holds one reference */

static void view_put(struct view *v)
{
	/* acq_rel: the last release sees every other holder's use. */
	if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
		return;
	path_sel_free(v->ps);
	netdir_release(v->nd);
	free(v);
}

/* Circuit parameters from the consensus params (param-spec, prop 324 §6.5). */
/* OUTBUF_CELLS of proposal 324 §6.5.3. */
#define CC_OUTBUF_CELLS 62

/* The Vegas parameters of onion-service circuits: the exit ones with the
 * _onion thresholds and slow-start cap (324 §6.5.3 defaults). */
static void onion_params_from(const struct netdir *nd, const struct cc_params *exit, struct cc_params *o)
{
	*o = *exit;
	o->sscap = (uint32_t)netdir_param(nd, "cc_sscap_onion", 600, 100, INT32_MAX);
	o->vegas_alpha = (uint32_t)netdir_param(nd, "cc_vegas_alpha_onion", 3 * CC_OUTBUF_CELLS, 0, 1000);
	o->vegas_beta = (uint32_t)netdir_param(nd, "cc_vegas_beta_onion", 7 * CC_OUTBUF_CELLS, 0, 1000);
	o->vegas_gamma = (uint32_t)netdir_param(nd, "cc_vegas_gamma_onion", 5 * CC_OUTBUF_CELLS, 0, 1000);
	o->vegas_delta = (uint32_t)netdir_param(nd, "cc_vegas_delta_onion", 9 * CC_OUTBUF_CELLS, 0, INT32_MAX);
}

static void params_from(const struct netdir *nd, struct circ_params *p, bool *cc_enabled)
{
	circ_params_default(p);
	p->circwindow = (uint32_t)netdir_param(nd, "circwindow", (int32_t)p->circwindow, 100, 1000);
	p->sendme_accept_min_version =
		(uint8_t)netdir_param(nd, "sendme_accept_min_version", p->sendme_accept_min_version, 0, 255);
	p->sendme_emit_min_version =
		(uint8_t)netdir_param(nd, "sendme_emit_min_version", p->sendme_emit_min_version, 0, 255);
	p->cc.alg = (uint8_t)netdir_param(nd, "cc_alg", p->cc.alg, 0, 2);
	p->cc.sendme_inc = (uint8_t)netdir_param(nd, "cc_sendme_inc", p->cc.sendme_inc, 1, 254);
	p->cc.cwnd_init = (uint32_t)netdir_param(nd, "cc_cwnd_init", (int32_t)p->cc.cwnd_init, 31, 10000);
	p->cc.cwnd_min = (uint32_t)netdir_param(nd, "cc_cwnd_min", (int32_t)p->cc.cwnd_min, 31, 1000);
	p->cc.cwnd_max = (uint32_t)netdir_param(nd, "cc_cwnd_max", (int32_t)p->cc.cwnd_max, 500, INT32_MAX);
	p->cc.cwnd_inc = (uint32_t)netdir_param(nd, "cc_cwnd_inc", (int32_t)p->cc.cwnd_inc, 1, 1000);
	p->cc.cwnd_inc_rate = (uint32_t)netdir_param(nd, "cc_cwnd_inc_rate", (int32_t)p->cc.cwnd_inc_rate, 1, 250);
	p->cc.cwnd_inc_pct_ss =
		(uint32_t)netdir_param(nd, "cc_cwnd_inc_pct_ss", (int32_t)p->cc.cwnd_inc_pct_ss, 1, 500);
	p->cc.ss_max = (uint32_t)netdir_param(nd, "cc_ss_max", (int32_t)p->cc.ss_max, 500, INT32_MAX);
	p->cc.sscap = (uint32_t)netdir_param(nd, "cc_sscap_exit", (int32_t)p->cc.sscap, 100, INT32_MAX);
	p->cc.vegas_alpha = (uint32_t)netdir_param(nd, "cc_vegas_alpha_exit", (int32_t)p->cc.vegas_alpha, 0, 1000);
	p->cc.vegas_beta = (uint32_t)netdir_param(nd, "cc_vegas_beta_exit", (int32_t)p->cc.vegas_beta, 0, 1000);
	p->cc.vegas_gamma = (uint32_t)netdir_param(nd, "cc_vegas_gamma_exit", (int32_t)p->cc.vegas_gamma, 0, 1000);
	p->cc.vegas_delta = (uint32_t)netdir_param(nd, "cc_vegas_delta_exit", (int32_t)p->cc.vegas_delta, 0, 1000);
	*cc_enabled = p->cc.alg != 0;
}

bool dirview_acquire(struct dirview *out)
{
	struct netdir *nd = netdir_slot_acquire(netdir_global());
	struct view *v;

	if (!nd)
		return false;
	if (!netdir_is_usable(nd, clock_wall())) {
		netdir_release(nd);
		return false;
	}
	pthread_mutex_lock(&view_lock);
	if (!view_cur || view_cur->nd->generation != nd->generation) {
		v = calloc(1, sizeof(*v));
		if (v)
			v->ps = path_sel_new(nd->nodes, view_cfg);
		if (!v || !v->ps) {
			pthread_mutex_unlock(&view_lock);
			free(v);
			netdir_release(nd);
			log_warn("cannot build a path selector for the new directory");
			return false;
		}
		atomic_init(&v->refs, 1); /* the cache's reference */
		v->nd = nd;               /* takes our acquired reference */
		params_from(nd, &v->cparams, &v->cc_enabled);
		v->optimistic_data = netdir_param(nd, "UseOptimisticData", 1, 0, 1) != 0;
		onion_params_from(nd, &v->cparams.cc, &v->cc_onion);
		if (view_cur)
			view_put(view_cur);
		view_cur = v;
	} else {
		netdir_release(nd);
	}
	v = view_cur;
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&view_lock);
	out->nl = v->nd->nodes;
	out->ps = v->ps;
	out->cparams = v->cparams;
	out->cc_enabled = v->cc_enabled;
	out->optimistic_data = v->optimistic_data;
	out->cc_onion = v->cc_onion;
	out->ref = v;
	return true;
}

void dirview_release(void *ref)
{
	if (ref)
		view_put(ref);
}

void dirview_set_config(const struct config *cfg)
{
	pthread_mutex_lock(&view_lock);
	view_cfg = cfg;
	/* The next acquire builds a selector with the new node rules. */
	if (view_cur)
		view_put(view_cur);
	view_cur = NULL;
	pthread_mutex_unlock(&view_lock);
}

void dirview_init(const struct config *cfg)
{
	dirview_set_config(cfg);
	circmgr_set_directory(dirview_acquire, dirview_release);
}

void dirview_shutdown(void)
{
	pthread_mutex_lock(&view_lock);
	if (view_cur)
		view_put(view_cur);
	view_cur = NULL;
	pthread_mutex_unlock(&view_lock);
}
