/* ORCONN events and orconn-status from the channel pools (see orconn.h). */
#include "app/orconn.h"

#include <errno.h>
#include <stdio.h>

#include "app/control.h"
#include "app/events.h"

char *orconn_longname(const struct relay_target *t, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	char fp[41];

	for (size_t i = 0; i < sizeof(t->rsa_id); i++) {
		fp[2 * i] = hex[t->rsa_id[i] >> 4];
		fp[2 * i + 1] = hex[t->rsa_id[i] & 15];
	}
	fp[40] = '\0';
	/* A nickname is 1-19 of [A-Za-z0-9] (dir-spec 2.1.1); the consensus
	 * parser checked it, and an empty one is left out. */
	snprintf(out, cap, "$%s%s%.*s", fp, t->nickname[0] ? "~" : "", (int)sizeof(t->nickname),
		 t->nickname);
	return out;
}

const char *orconn_reason(int err)
{
	switch (-err) {
	case 0:
	case ECANCELED:  /* we closed it: pool shut down, circuit gave up */
	case ESHUTDOWN:  /* onionring is stopping */
		return "DONE";
	case ECONNREFUSED:
		return "CONNECTREFUSED";
	case EPERM:      /* the relay proved another identity (net/channel.c) */
	case EBADMSG:    /* its certificates did not prove the one we asked for */
		return "IDENTITY";
	case ECONNRESET:
	case ECONNABORTED:
	case EPIPE:
		return "CONNECTRESET";
	case ETIMEDOUT:
		return "TIMEOUT";
	case ENOTCONN:   /* 4.1.3 names these for NOROUTE */
	case ENETUNREACH:
	case ENETDOWN:
	case EHOSTUNREACH:
	case EHOSTDOWN:
	case EADDRNOTAVAIL:
		return "NOROUTE";
	case ENOMEM:
	case ENOBUFS:
	case EMFILE:
	case ENFILE:
	case EAGAIN:
		return "RESOURCELIMIT";
	case EIO:
		return "IOERROR";
	default:         /* protocol violations (EPROTO), versions, ... */
		return "MISC";
	}
}

void orconn_observe(void *arg, enum chanpool_chan_event ev, const struct chanpool_chan_info *ci)
{
	enum events_orconn_status st;
	char name[64];
	bool ended = ev == CHANPOOL_CHAN_FAILED || ev == CHANPOOL_CHAN_CLOSED;

	(void)arg;
	if (!events_wanted(EVENT_ORCONN))
		return;
	switch (ev) {
	case CHANPOOL_CHAN_LAUNCHED: st = EVENTS_ORCONN_LAUNCHED; break;
	case CHANPOOL_CHAN_CONNECTED: st = EVENTS_ORCONN_CONNECTED; break;
	case CHANPOOL_CHAN_FAILED: st = EVENTS_ORCONN_FAILED; break;
	default: st = EVENTS_ORCONN_CLOSED; break;
	}
	events_publish_orconn(orconn_longname(ci->target, name, sizeof(name)), st,
			      ended ? orconn_reason(ci->err) : NULL,
			      ended ? (int)(ci->ncircs > 65535 ? 65535 : ci->ncircs) : -1, ci->id);
}

static void status_line(void *ctx, const struct chanpool_chan_info *ci)
{
	char name[64];

	control_buf_printf(ctx, "%s %s\n", orconn_longname(ci->target, name, sizeof(name)),
			   ci->open ? "CONNECTED" : "LAUNCHED");
}

void orconn_status_lines(const struct chanpool *p, struct control_buf *out)
{
	chanpool_foreach(p, status_line, out);
}
