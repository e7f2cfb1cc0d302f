/* The control-port event bus (see events.h): formats control-spec 4.1
 * lines and queues them for subscribed control connections. Not for the
 * control protocol itself (app/control.c). */
#include "app/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/compiler.h"
#include "net/runtime.h"
#include "net/worker.h"

#define LINE_MAX_ 4096

_Atomic unsigned events_mask_;
_Atomic uint64_t events_newnym_epoch_;
static _Atomic bool newnym_supported;

struct qline {
	struct qline *next;
	size_t len;
	char text[];
};

struct events_sub {
	struct events_sub *prev, *next;
	uint64_t id;
	struct worker *w;
	unsigned mask;
	events_deliver_fn fn;
	void *arg;
	struct qline *head, *tail;
	size_t queued;
	bool kicked;        /* a wake-up message is on its way */
	uint64_t dropped;
};

/* Registry of subscribers; off every data path. */
static pthread_mutex_t bus_lock = PTHREAD_MUTEX_INITIALIZER;
static struct events_sub *subs;
static uint64_t next_id = 1;

static const char *const names[EVENT_COUNT_] = {
	"CIRC", "STREAM", "ORCONN", "BW", "STATUS_CLIENT", "DEBUG", "INFO", "NOTICE", "WARN", "ERR",
};

const char *events_name(enum events_type e)
{
	return (unsigned)e < EVENT_COUNT_ ? names[e] : "?";
}

int events_parse(const char *name, size_t len)
{
	for (int i = 0; i < EVENT_COUNT_; i++)
		if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
			return i;
	return -1;
}

/* --- Delivery --------------------------------------------------------------- */

/* Recompute the global mask; bus_lock held. */
static void mask_update_locked(void)
{
	unsigned m = 0;

	for (struct events_sub *s = subs; s; s = s->next)
		m |= s->mask;
	/* Relaxed: see events_mask_ in events.h. */
	atomic_store_explicit(&events_mask_, m, memory_order_relaxed);
}

static struct events_sub *find_locked(uint64_t id)
{
	for (struct events_sub *s = subs; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

/* Runs on the subscriber's worker: take its whole queue and deliver it.
 * The subscriber can only be freed on this same thread, so it stays valid
 * after the lock is dropped. */
static void deliver_msg(struct worker *w, void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	struct events_sub *s;
	struct qline *q, *next;

	(void)w;
	pthread_mutex_lock(&bus_lock);
	s = find_locked(id);
	q = s ? s->head : NULL;
	if (s) {
		s->head = s->tail = NULL;
		s->queued = 0;
		s->kicked = false;
	}
	pthread_mutex_unlock(&bus_lock);
	for (; q; q = next) {
		next = q->next;
		s->fn(s->arg, q->text, q->len);
		free(q);
	}
}

/* Queue line for s and wake its worker if needed; bus_lock held. */
static void enqueue_locked(struct events_sub *s, const char *line, size_t len)
{
	struct qline *q;

	if (s->queued >= EVENTS_QUEUE_MAX || !(q = malloc(sizeof(*q) + len))) {
		s->dropped++;
		return;
	}
	q->next = NULL;
	q->len = len;
	memcpy(q->text, line, len);
	if (s->tail)
		s->tail->next = q;
	else
		s->head = q;
	s->tail = q;
	s->queued++;
	/* Not once the runtime stops: a message posted to a worker that is
	 * finishing may land after its last look at its ring and be lost
	 * (leaked). The queued lines are freed by events_unsubscribe. */
	if (!s->kicked && !runtime_stopping(worker_runtime(s->w)) &&
	    worker_post(s->w, deliver_msg, (void *)(uintptr_t)s->id) == 0)
		s->kicked = true;
}

static void publish_line(enum events_type e, const char *line, size_t len)
{
	if (len == 0)
		return;
	pthread_mutex_lock(&bus_lock);
	for (struct events_sub *s = subs; s; s = s->next)
		if (s->mask & EVENT_BIT(e))
			enqueue_locked(s, line, len);
	pthread_mutex_unlock(&bus_lock);
}

/* --- Subscribers ------------------------------------------------------------ */

struct events_sub *events_subscribe(struct worker *w, events_deliver_fn fn, void *arg)
{
	struct events_sub *s = calloc(1, sizeof(*s));

	if (!s)
		abort(); /* control-plane allocation (STYLE.md, Memory) */
	s->w = w;
	s->fn = fn;
	s->arg = arg;
	pthread_mutex_lock(&bus_lock);
	s->id = next_id++;
	s->next = subs;
	if (subs)
		subs->prev = s;
	subs = s;
	pthread_mutex_unlock(&bus_lock);
	return s;
}

void events_set_mask(struct events_sub *s, unsigned mask)
{
	pthread_mutex_lock(&bus_lock);
	s->mask = mask;
	mask_update_locked();
	pthread_mutex_unlock(&bus_lock);
}

unsigned events_mask(const struct events_sub *s)
{
	return s->mask;
}

void events_unsubscribe(struct events_sub *s)
{
	struct qline *q, *next;

	if (!s)
		return;
	pthread_mutex_lock(&bus_lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	q = s->head;
	mask_update_locked();
	pthread_mutex_unlock(&bus_lock);
	for (; q; q = next) {
		next = q->next;
		free(q);
	}
	free(s);
}

/* --- Formatting ------------------------------------------------------------- */

static const char *const circ_status[] = { "LAUNCHED", "BUILT", "EXTENDED", "FAILED", "CLOSED" };
static const char *const stream_status[] = { "NEW",    "SENTCONNECT", "SENTRESOLVE", "SUCCEEDED",
					     "FAILED", "CLOSED",      "DETACHED",    "REMAP" };
static const char *const orconn_status[] = { "NEW", "LAUNCHED", "CONNECTED", "FAILED", "CLOSED" };

const char *events_stream_status_name(enum events_stream_status status)
{
	return (unsigned)status < ARRAY_LEN(stream_status) ? stream_status[status] : "?";
}

/* snprintf-style append into out[*n..cap); sets *n past cap on overflow. */
static void PRINTF_LIKE(4, 5) put(char *out, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*n >= cap)
		return;
	va_start(ap, fmt);
	r = vsnprintf(out + *n, cap - *n, fmt, ap);
	va_end(ap);
	*n = r < 0 ? cap : *n + (size_t)r;
}

static size_t finish(char *out, size_t cap, size_t n)
{
	put(out, cap, &n, "\r\n");
	return n < cap ? n : 0;
}

static bool has(const char *s)
{
	return s && s[0];
}

size_t events_format_circ_info(char *out, size_t cap, uint64_t circ_id, enum events_circ_status status,
			       const struct events_circ_info *info)
{
	size_t n = 0;

	if ((unsigned)status >= ARRAY_LEN(circ_status))
		return 0;
	/* 4.1.1: "650 CIRC" SP CircuitID SP CircStatus [SP Path]
	 * [SP "BUILD_FLAGS=" BuildFlags] [SP "PURPOSE=" Purpose] ...
	 * [SP "TIME_CREATED=" TimeCreated] [SP "REASON=" Reason] */
	put(out, cap, &n, "650 CIRC %llu %s", (unsigned long long)circ_id, circ_status[status]);
	if (has(info->path))
		put(out, cap, &n, " %s", info->path);
	if (has(info->build_flags))
		put(out, cap, &n, " BUILD_FLAGS=%s", info->build_flags);
	put(out, cap, &n, " PURPOSE=%s", has(info->purpose) ? info->purpose : "GENERAL");
	if (info->created_us) {
		/* ISOTime2Frac: "YYYY-MM-DDTHH:MM:SS.ffffff" (UTC). */
		time_t secs = (time_t)(info->created_us / 1000000u);
		char when[32];
		struct tm tm;

		if (gmtime_r(&secs, &tm) && strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm))
			put(out, cap, &n, " TIME_CREATED=%s.%06u", when, (unsigned)(info->created_us % 1000000u));
	}
	if (has(info->reason))
		put(out, cap, &n, " REASON=%s", info->reason);
	return finish(out, cap, n);
}

size_t events_format_circ(char *out, size_t cap, uint64_t circ_id, enum events_circ_status status,
			  const char *path, const char *purpose, const char *reason)
{
	struct events_circ_info info = { .path = path, .purpose = purpose, .reason = reason };

	return events_format_circ_info(out, cap, circ_id, status, &info);
}

size_t events_format_stream(char *out, size_t cap, uint64_t stream_id, enum events_stream_status status,
			    uint64_t circ_id, const char *target, const char *reason, const char *source)
{
	size_t n = 0;

	if ((unsigned)status >= ARRAY_LEN(stream_status) || !has(target))
		return 0;
	/* 4.1.2: "650 STREAM" SP StreamID SP StreamStatus SP CircuitID SP
	 * Target [SP "REASON=" Reason] ... [SP "SOURCE_ADDR=" Address ":"
	 * Port] [SP "PURPOSE=" Purpose] */
	put(out, cap, &n, "650 STREAM %llu %s %llu %s", (unsigned long long)stream_id, stream_status[status],
	    (unsigned long long)circ_id, target);
	if (has(reason))
		put(out, cap, &n, " REASON=%s", reason);
	if (has(source))
		put(out, cap, &n, " SOURCE_ADDR=%s", source);
	put(out, cap, &n, " PURPOSE=USER");
	return finish(out, cap, n);
}

void events_publish_circ_info(uint64_t circ_id, enum events_circ_status status,
			      const struct events_circ_info *info)
{
	char line[LINE_MAX_];

	if (events_wanted(EVENT_CIRC))
		publish_line(EVENT_CIRC, line, events_format_circ_info(line, sizeof(line), circ_id, status, info));
}

void events_publish_circ(uint64_t circ_id, enum events_circ_status status, const char *path,
			 const char *purpose, const char *reason)
{
	struct events_circ_info info = { .path = path, .purpose = purpose, .reason = reason };

	events_publish_circ_info(circ_id, status, &info);
}

void events_publish_stream(uint64_t stream_id, enum events_stream_status status, uint64_t circ_id,
			   const char *target, const char *reason, const char *source)
{
	char line[LINE_MAX_];

	if (events_wanted(EVENT_STREAM))
		publish_line(EVENT_STREAM, line,
			     events_format_stream(line, sizeof(line), stream_id, status, circ_id, target, reason,
						  source));
}

size_t events_format_orconn(char *out, size_t cap, const char *target, enum events_orconn_status status,
			    const char *reason, int ncircs, uint64_t conn_id)
{
	size_t n = 0;

	if ((unsigned)status >= ARRAY_LEN(orconn_status) || !has(target))
		return 0;
	/* 4.1.3: "650 ORCONN" SP (LongName / Target) SP ORStatus
	 * [SP "REASON=" Reason] [SP "NCIRCS=" NumCircuits] [SP "ID=" ConnID] */
	put(out, cap, &n, "650 ORCONN %s %s", target, orconn_status[status]);
	if (has(reason))
		put(out, cap, &n, " REASON=%s", reason);
	if (ncircs >= 0)
		put(out, cap, &n, " NCIRCS=%d", ncircs);
	put(out, cap, &n, " ID=%llu", (unsigned long long)conn_id);
	return finish(out, cap, n);
}

void events_publish_orconn(const char *target, enum events_orconn_status status, const char *reason,
			   int ncircs, uint64_t conn_id)
{
	char line[LINE_MAX_];

	if (events_wanted(EVENT_ORCONN))
		publish_line(EVENT_ORCONN, line,
			     events_format_orconn(line, sizeof(line), target, status, reason, ncircs, conn_id));
}

void events_publish_bw(uint64_t read, uint64_t written)
{
	char line[64];
	size_t n = 0;

	if (!events_wanted(EVENT_BW))
		return;
	put(line, sizeof(line), &n, "650 BW %llu %llu", (unsigned long long)read, (unsigned long long)written);
	publish_line(EVENT_BW, line, finish(line, sizeof(line), n));
}

void events_publish_status_client(const char *severity, const char *action, const char *args)
{
	char line[LINE_MAX_];
	size_t n = 0;

	if (!events_wanted(EVENT_STATUS_CLIENT) || !has(severity) || !has(action))
		return;
	put(line, sizeof(line), &n, "650 STATUS_CLIENT %s %s", severity, action);
	if (has(args))
		put(line, sizeof(line), &n, " %s", args);
	publish_line(EVENT_STATUS_CLIENT, line, finish(line, sizeof(line), n));
}

static enum events_type log_event(enum log_level level)
{
	switch (level) {
	case LOG_DEBUG: return EVENT_DEBUG;
	case LOG_INFO: return EVENT_INFO;
	case LOG_NOTICE: return EVENT_NOTICE;
	case LOG_WARN: return EVENT_WARN;
	default: return EVENT_ERR;
	}
}

void events_publish_log(enum log_level level, const char *msg, size_t len)
{
	enum events_type e = log_event(level);
	char line[LINE_MAX_];
	size_t n = 0;

	if (!events_wanted(e))
		return;
	/* 4.1.5: "650" SP Severity SP ReplyText CRLF (one line: we never
	 * produce multi-line log messages, so CR/LF become spaces). */
	put(line, sizeof(line), &n, "650 %s ", names[e]);
	for (size_t i = 0; i < len && n + 2 < sizeof(line); i++)
		line[n++] = msg[i] == '\r' || msg[i] == '\n' ? ' ' : msg[i];
	while (n > 0 && line[n - 1] == ' ')
		n--;
	publish_line(e, line, finish(line, sizeof(line), n));
}

/* Skip "Mon DD HH:MM:SS.mmm [level] {thread} " that core/log.c puts first. */
static const char *log_body(const char *line)
{
	const char *p = strstr(line, "] ");

	if (!p)
		return line;
	p += 2;
	if (*p == '{') {
		const char *q = strstr(p, "} ");
		if (q)
			p = q + 2;
	}
	return p;
}

/* --- Bootstrap state ------------------------------------------------------- */

static pthread_mutex_t boot_lock = PTHREAD_MUTEX_INITIALIZER;
static char boot_args[512] = "PROGRESS=0 TAG=starting SUMMARY=\"Starting\"";
static bool boot_done;

void events_bootstrap(int pct, const char *tag, const char *summary)
{
	char args[sizeof(boot_args)];
	bool first_done;
	size_t n = 0;

	if (pct < 0 || pct > 100 || !has(tag))
		return;
	put(args, sizeof(args), &n, "PROGRESS=%d TAG=%s SUMMARY=\"", pct, tag);
	for (const char *p = summary ? summary : ""; *p && n + 3 < sizeof(args); p++) {
		if (*p == '"' || *p == '\\')
			args[n++] = '\\';
		args[n++] = *p;
	}
	if (n + 2 > sizeof(args))
		return;
	args[n++] = '"';
	args[n] = '\0';
	pthread_mutex_lock(&boot_lock);
	memcpy(boot_args, args, n + 1);
	first_done = pct == 100 && !boot_done;
	if (pct == 100)
		boot_done = true;
	pthread_mutex_unlock(&boot_lock);
	events_publish_status_client("NOTICE", "BOOTSTRAP", args);
	if (first_done)
		events_publish_status_client("NOTICE", "CIRCUIT_ESTABLISHED", NULL);
}

void events_bootstrap_phase(char *out, size_t cap)
{
	pthread_mutex_lock(&boot_lock);
	snprintf(out, cap, "NOTICE BOOTSTRAP %s", boot_args);
	pthread_mutex_unlock(&boot_lock);
}

bool events_bootstrap_done(void)
{
	bool d;

	pthread_mutex_lock(&boot_lock);
	d = boot_done;
	pthread_mutex_unlock(&boot_lock);
	return d;
}

/* "Bootstrapped N% (tag): summary" -> events_bootstrap(). */
static void bootstrap_line(const char *body, size_t len)
{
	char tag[64], summary[256];
	int pct, off = 0;

	if (len < 13 || strncmp(body, "Bootstrapped ", 13) != 0)
		return;
	if (sscanf(body, "Bootstrapped %d%% (%63[^)]): %n", &pct, tag, &off) != 2 || off == 0)
		return;
	snprintf(summary, sizeof(summary), "%.*s", (int)(len - (size_t)off), body + off);
	events_bootstrap(pct, tag, summary);
}

void events_log_hook(enum log_level level, const char *line, void *arg)
{
	static _Thread_local bool inside;
	const char *body;
	size_t len;

	(void)arg;
	if (inside)
		return;
	inside = true;
	body = log_body(line);
	len = strlen(body);
	while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r'))
		len--;
	if (level == LOG_NOTICE)
		bootstrap_line(body, len);
	if (!events_wanted(log_event(level))) {
		inside = false;
		return;
	}
	events_publish_log(level, body, len);
	inside = false;
}

/* --- NEWNYM ----------------------------------------------------------------- */

void events_newnym_set_supported(void)
{
	/* Relaxed: a flag, nothing is published with it. */
	atomic_store_explicit(&newnym_supported, true, memory_order_relaxed);
}

int events_newnym(void)
{
	if (!atomic_load_explicit(&newnym_supported, memory_order_relaxed))
		return -ENOTSUP;
	/* Relaxed: pairs with the relaxed load in events_newnym_epoch(). */
	atomic_fetch_add_explicit(&events_newnym_epoch_, 1, memory_order_relaxed);
	return 0;
}
