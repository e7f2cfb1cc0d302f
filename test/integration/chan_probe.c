/* chan_probe: open a Tor channel from every worker of onionring's runtime
 * to every relay named on the command line, with full certificate
 * validation, and print how long each step took. With --wrong-id, expect
 * every channel to be refused as the wrong relay, with a reason naming both
 * the wanted and the received identity.
 *
 * For test/integration/test_channels.sh (the private Tor network). Not a
 * meson test and not part of onionring.
 *
 * Usage: chan_probe [--workers N] [--timeout-ms MS] [--wrong-id] [--sequential]
 *                   NICK,IP:PORT,RSA_HEX[,ED25519_B64] ...
 * --sequential: each worker opens its next channel only when the previous
 * one finished, so the step times are not inflated by the other handshakes
 * of the same worker (the default opens all at once).
 * Exit 0 when every channel behaved as expected, 1 otherwise, 2 for usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/clock.h"
#include "core/log.h"
#include "net/chanpool.h"
#include "net/runtime.h"
#include "proto/certs.h"

#define MAX_RELAYS 32
#define MAX_WORKERS 8

struct probe_result {
	_Atomic int done;
	int err;
	int link_proto;
	struct channel_timings tm;
	struct relay_identity id;
	char why[512];
	char tls[96];
};

static struct relay_target relays[MAX_RELAYS];
static size_t nrelays;
static bool wrong_id;
static bool sequential;
static struct probe_result results[MAX_WORKERS][MAX_RELAYS];
static struct chanpool *pools[MAX_WORKERS];
static uint64_t timeout_ms = 10000;

static bool parse_relay(char *arg, struct relay_target *t)
{
	char *nick = strtok(arg, ","), *hostport = strtok(NULL, ","), *rsa = strtok(NULL, ",");
	char *ed = strtok(NULL, ","), *colon;
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;

	memset(t, 0, sizeof(*t));
	if (!nick || !hostport || !rsa || !(colon = strrchr(hostport, ':')))
		return false;
	*colon = '\0';
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, hostport, &sin->sin_addr) != 1)
		return false;
	t->addr_len = sizeof(*sin);
	snprintf(t->nickname, sizeof(t->nickname), "%s", nick);
	if (base16_decode(t->rsa_id, sizeof(t->rsa_id), rsa, strlen(rsa)) != 20)
		return false;
	if (ed) {
		if (base64_decode(t->ed_id, sizeof(t->ed_id), ed, strlen(ed)) != 32)
			return false;
		t->has_ed = true;
	}
	return true;
}

static void open_one(unsigned wi, size_t i);

static void got_channel(struct channel *ch, int err, const char *why, void *arg)
{
	struct probe_result *r = arg;

	r->err = err;
	snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
	if (ch) {
		r->link_proto = channel_link_proto(ch);
		r->tm = *channel_timings(ch);
		r->id = *channel_identity(ch);
		snprintf(r->tls, sizeof(r->tls), "%s", channel_tls_describe(ch));
	}
	atomic_store(&r->done, 1);
	if (sequential) {
		for (unsigned wi = 0; wi < MAX_WORKERS; wi++) {
			size_t i = (size_t)(r - results[wi]);

			if (i < nrelays) {
				if (i + 1 < nrelays)
					open_one(wi, i + 1);
				break;
			}
		}
	}
}

/* Worker wi only. */
static void open_one(unsigned wi, size_t i)
{
	struct relay_target t = relays[i];
	struct probe_result *r = &results[wi][i];
	struct channel *ch;
	int err;

	if (wrong_id)
		t.rsa_id[0] ^= 0xff; /* expect another relay than this one */
	ch = chanpool_get(pools[wi], &t, got_channel, r, &err);
	if (ch || err < 0)
		got_channel(ch, err, err < 0 ? strerror(-err) : NULL, r);
}

static void open_all(struct worker *w, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < (sequential ? 1 : nrelays); i++)
		open_one(worker_id(w), i);
}

static void worker_started(struct worker *w, void *arg)
{
	struct chanpool_config cfg;

	(void)arg;
	chanpool_config_defaults(&cfg);
	cfg.chan.handshake_timeout_ns = timeout_ms * 1000000ull;
	pools[worker_id(w)] = chanpool_new(w, &cfg);
}

static void worker_stopping(struct worker *w, void *arg)
{
	(void)arg;
	chanpool_free(pools[worker_id(w)]);
	pools[worker_id(w)] = NULL;
}

/* Check one outcome, print it; return true when it is what we wanted. */
static bool report(unsigned wi, size_t i)
{
	const struct probe_result *r = &results[wi][i];
	const struct relay_target *t = &relays[i];
	char want_hex[41], got_hex[41], got_ed[44], wrong_hex[41];
	uint8_t wrong[20];

	relay_identity_rsa_hex(t->rsa_id, want_hex);
	if (!atomic_load(&r->done)) {
		printf("w%u %-8s FAIL: no outcome within the time limit\n", wi, t->nickname);
		return false;
	}
	if (wrong_id) {
		memcpy(wrong, t->rsa_id, 20);
		wrong[0] ^= 0xff;
		relay_identity_rsa_hex(wrong, wrong_hex);
		/* Refused, and the reason names what we wanted and what it is. */
		if (r->err != -EPERM || !strstr(r->why, wrong_hex) || !strstr(r->why, want_hex)) {
			printf("w%u %-8s FAIL: expected a refusal naming %s and %s, got err %d: %s\n", wi,
			       t->nickname, wrong_hex, want_hex, r->err, r->why);
			return false;
		}
		printf("w%u %-8s refused as expected: %s\n", wi, t->nickname, r->why);
		return true;
	}
	if (r->err) {
		printf("w%u %-8s FAIL: %s\n", wi, t->nickname, r->why);
		return false;
	}
	relay_identity_rsa_hex(r->id.rsa_id, got_hex);
	relay_identity_ed_b64(r->id.ed_id, got_ed);
	if (strcmp(got_hex, want_hex) != 0 || (t->has_ed && memcmp(r->id.ed_id, t->ed_id, 32) != 0)) {
		printf("w%u %-8s FAIL: identity %s/%s is not the one asked for\n", wi, t->nickname,
		       got_hex, got_ed);
		return false;
	}
	printf("w%u %-8s OK link=%d tcp=%.3fms tls=%.3fms linkhs=%.3fms total=%.3fms rsa=%s ed=%s "
	       "(%s)\n", wi, t->nickname, r->link_proto, r->tm.tcp_connect_ns / 1e6,
	       r->tm.tls_handshake_ns / 1e6, r->tm.link_handshake_ns / 1e6, r->tm.total_ns / 1e6,
	       got_hex, got_ed, r->tls);
	return true;
}

static int usage(void)
{
	fprintf(stderr, "usage: chan_probe [--workers N] [--timeout-ms MS] [--wrong-id] [--sequential] "
			"NICK,IP:PORT,RSA_HEX[,ED25519_B64] ...\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct runtime_config rc;
	struct runtime *rt;
	unsigned nworkers = 2, ok = 0, total = 0;
	char why[256];
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			nworkers = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
			timeout_ms = (uint64_t)atoll(argv[++i]);
		else if (!strcmp(argv[i], "--wrong-id"))
			wrong_id = true;
		else if (!strcmp(argv[i], "--sequential"))
			sequential = true;
		else
			return usage();
	}
	for (; i < argc && nrelays < MAX_RELAYS; i++)
		if (!parse_relay(argv[i], &relays[nrelays++]))
			return usage();
	if (nrelays == 0 || nworkers == 0 || nworkers > MAX_WORKERS)
		return usage();
	if (runtime_probe(why, sizeof(why)) < 0) {
		printf("skipped: %s\n", why);
		return 77;
	}
	runtime_config_defaults(&rc);
	rc.nworkers = nworkers;
	rc.worker_started = worker_started;
	rc.worker_stopping = worker_stopping;
	rt = runtime_new(&rc);
	if (!rt || runtime_start(rt) < 0)
		return 1;
	for (unsigned w = 0; w < nworkers; w++)
		if (worker_post(runtime_worker(rt, w), open_all, NULL) < 0)
			return 1;
	/* Bounded wait: the handshake timeout (per channel when sequential)
	 * plus a margin. */
	for (uint64_t end = clock_mono_ms() + timeout_ms * (sequential ? nrelays : 1) + 2000; clock_mono_ms() < end;) {
		unsigned done = 0;

		for (unsigned w = 0; w < nworkers; w++)
			for (size_t r = 0; r < nrelays; r++)
				done += (unsigned)atomic_load(&results[w][r].done);
		if (done == nworkers * nrelays)
			break;
		usleep(5000);
	}
	for (unsigned w = 0; w < nworkers; w++)
		for (size_t r = 0; r < nrelays; r++, total++)
			ok += report(w, r);
	runtime_stop(rt);
	runtime_join(rt);
	runtime_free(rt);
	printf("%u of %u channels %s\n", ok, total, wrong_id ? "refused as expected" : "open and validated");
	return ok == total ? 0 : 1;
}
