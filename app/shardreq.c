/* Control-port requests answered by every shard (see shardreq.h). */
#include "app/shardreq.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/circmgr.h"
#include "app/control.h"
#include "app/orconn.h"
#include "core/log.h"
#include "net/runtime.h"
#include "net/worker.h"

struct fanout;

/* One shard's answer: written by that shard only, then handed to the
 * origin by worker_post (its release/acquire pair orders the writes). */
struct part {
	struct fanout *f;
	bool in;                    /* arrived (origin only) */
	int result;
	struct control_buf circs, streams, orconns;
};

struct fanout {
	/* One reference for the origin (dropped when it answers) and one per
	 * part posted (dropped where the part ends: on the origin, or on the
	 * shard when the origin cannot be reached). The last one frees. */
	_Atomic unsigned refs;
	struct worker *origin;
	/* The question, copied: shards must not touch req, which the origin
	 * frees once it answered (maybe on the timeout, with parts still out). */
	enum control_req_kind kind;
	uint64_t id;
	uint8_t reason;
	bool if_unused, want_circs, want_streams, want_orconns;
	/* Origin only. */
	struct control_req *req;    /* NULL once answered */
	struct fanout *prev, *next; /* in open_list while req is set */
	unsigned posted, arrived;
	struct timer timer;
	unsigned nparts;
	struct part parts[];
};

/* Every fanout not answered yet, so that a worker that stops can answer
 * its own (shardreq_worker_stopping): its timer never fires after the loop
 * ends. Only the links are shared; each entry is the origin's. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fanout *open_list;

static void open_add(struct fanout *f)
{
	pthread_mutex_lock(&open_lock);
	f->prev = NULL;
	f->next = open_list;
	if (open_list)
		open_list->prev = f;
	open_list = f;
	pthread_mutex_unlock(&open_lock);
}

static void open_remove(struct fanout *f)
{
	pthread_mutex_lock(&open_lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		open_list = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
	pthread_mutex_unlock(&open_lock);
}

static void fanout_put(struct fanout *f)
{
	/* acq_rel: the last dropper sees every part's writes before freeing. */
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 0; i < f->nparts; i++) {
		control_buf_free(&f->parts[i].circs);
		control_buf_free(&f->parts[i].streams);
		control_buf_free(&f->parts[i].orconns);
	}
	free(f);
}

/* --- on each shard ----------------------------------------------------------- */

static void add_line(void *ctx, uint64_t id, const char *text, size_t len)
{
	struct control_buf *b = ctx;

	(void)id;
	control_buf_append(b, text, len);
	control_buf_append(b, "\n", 1);
}

static void part_back(struct worker *w, void *arg);

static void part_run(struct worker *w, void *arg)
{
	struct part *p = arg;
	struct fanout *f = p->f;

	switch (f->kind) {
	case CONTROL_REQ_CLOSE_STREAM:
		p->result = circmgr_close_stream(w, f->id, f->reason);
		break;
	case CONTROL_REQ_CLOSE_CIRCUIT:
		p->result = circmgr_close_circuit(w, f->id, f->if_unused);
		break;
	case CONTROL_REQ_STATUS:
		if (f->want_circs)
			circmgr_status(w, true, add_line, &p->circs);
		if (f->want_streams)
			circmgr_status(w, false, add_line, &p->streams);
		if (f->want_orconns && circmgr_chanpool(w))
			orconn_status_lines(circmgr_chanpool(w), &p->orconns);
		p->result = 0;
		break;
	}
	if (worker_post(f->origin, part_back, p) < 0)
		fanout_put(f); /* the origin is gone: nobody waits for this part */
}

/* --- on the origin (the session's worker) ------------------------------------ */

struct line {
	uint64_t id;
	const char *p;
	size_t len;
};

static int line_cmp(const void *a, const void *b)
{
	const struct line *x = a, *y = b;
	int c;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	/* orconn-status lines have no id (all 0): by text, then place. */
	c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
	if (c || x->len != y->len)
		return c ? c : x->len < y->len ? -1 : 1;
	return x->p < y->p ? -1 : x->p > y->p;
}

/* The part's buffer of one kind: 0 circuits, 1 streams, 2 channels. */
static const struct control_buf *part_buf(const struct part *p, int kind)
{
	return kind == 0 ? &p->circs : kind == 1 ? &p->streams : &p->orconns;
}

/* Append every arrived part's lines of one kind to out, sorted by id (the
 * shards' order says nothing; sorted output is stable for controllers). */
static void merge_lines(struct fanout *f, int kind, struct control_buf *out)
{
	struct line *v = NULL;
	size_t n = 0, cap = 0;

	for (unsigned i = 0; i < f->nparts; i++) {
		const struct control_buf *b = part_buf(&f->parts[i], kind);
		const char *p, *end;

		if (!f->parts[i].in || b->len == 0)
			continue;
		p = b->p;
		end = b->p + b->len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = realloc(v, cap * sizeof(*v));
				if (!v)
					abort(); /* control-plane allocation (STYLE.md, Memory) */
			}
			v[n].id = strtoull(p, NULL, 10);
			v[n].p = p;
			v[n].len = len;
			n++;
			p += len;
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), line_cmp);
	for (size_t i = 0; i < n; i++)
		control_buf_append(out, v[i].p, v[i].len);
	free(v);
}

/* Answer the request with what arrived; err: 0 when every part is in,
 * -ETIMEDOUT when some are still out. */
static void fanout_answer(struct fanout *f, int err)
{
	struct control_req *r = f->req;
	bool found = false;

	f->req = NULL;
	open_remove(f);
	timer_cancel(worker_timers(f->origin), &f->timer);
	for (unsigned i = 0; i < f->nparts; i++)
		if (f->parts[i].in && f->parts[i].result == 0)
			found = true;
	if (f->kind == CONTROL_REQ_STATUS) {
		r->result = err;
		if (!err) {
			if (f->want_circs)
				merge_lines(f, 0, &r->circs);
			if (f->want_streams)
				merge_lines(f, 1, &r->streams);
			if (f->want_orconns)
				merge_lines(f, 2, &r->orconns);
		}
	} else {
		/* Ids are unique: one shard that found it is the answer. */
		r->result = found ? 0 : err ? err : -ENOENT;
	}
	if (err == -ETIMEDOUT)
		log_notice("control: %u of %u shards answered within %u ms", f->arrived, f->posted,
			   SHARDREQ_TIMEOUT_MS);
	control_req_done(r);
	fanout_put(f); /* the origin's reference */
}

static void part_back(struct worker *w, void *arg)
{
	struct part *p = arg;
	struct fanout *f = p->f;

	(void)w;
	if (f->req) {
		p->in = true;
		if (++f->arrived == f->posted)
			fanout_answer(f, 0);
	}
	fanout_put(f);
}

static void fanout_timeout(struct timer *t, void *arg)
{
	(void)t;
	fanout_answer(arg, -ETIMEDOUT);
}

int shardreq_start(struct runtime *rt, struct worker *w, struct control_req *req)
{
	unsigned n = runtime_nworkers(rt);
	struct fanout *f;

	if (!w)
		return -ENOTSUP;
	if (runtime_stopping(rt))
		return -ESHUTDOWN;
	f = calloc(1, sizeof(*f) + n * sizeof(f->parts[0]));
	if (!f)
		abort(); /* control-plane allocation (STYLE.md, Memory) */
	f->origin = w;
	f->kind = req->kind;
	f->id = req->id;
	f->reason = req->reason;
	f->if_unused = req->if_unused;
	f->want_circs = req->want_circs;
	f->want_streams = req->want_streams;
	f->want_orconns = req->want_orconns;
	f->req = req;
	f->nparts = n;
	timer_init(&f->timer, fanout_timeout, f);
	atomic_init(&f->refs, 1);
	open_add(f);
	for (unsigned i = 0; i < n; i++) {
		f->parts[i].f = f;
		/* Count the reference before posting: the part may come back
		 * and drop it before worker_post returns. */
		atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
		f->posted++;
		if (worker_post(runtime_worker(rt, i), part_run, &f->parts[i]) < 0) {
			f->posted--;
			fanout_put(f);
		}
	}
	if (f->posted == 0) {
		fanout_answer(f, 0); /* no shard to ask: nothing exists */
		return 0;
	}
	if (timer_arm(worker_timers(w), &f->timer, worker_now_ns(w) + SHARDREQ_TIMEOUT_MS * 1000000ull) < 0) {
		log_warn("control: no timer for a shard request; it waits for every shard");
	}
	return 0;
}

void shardreq_worker_stopping(struct worker *w)
{
	struct fanout *f;

	for (;;) {
		pthread_mutex_lock(&open_lock);
		for (f = open_list; f && f->origin != w; f = f->next)
			;
		pthread_mutex_unlock(&open_lock);
		if (!f)
			return;
		/* Only w answers (and unlinks) its own fanouts, so f stays
		 * valid after the lock is dropped. */
		fanout_answer(f, -ESHUTDOWN);
	}
}
