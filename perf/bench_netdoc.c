/* bench_netdoc: how long consensus_parse takes for a microdesc consensus of
 * N router entries (synthetic, exactly formatted, not signed: parsing does
 * not verify), and for the checked-in 300-router vector with its 300
 * microdescriptors and the signature check. The target (issue 3): well
 * under 10 ms for a few hundred entries.
 *
 * Usage: bench_netdoc [vectors_dir]   (default test/vectors/netdoc) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base64.h"
#include "core/clock.h"
#include "perf/bench_util.h"
#include "proto/authcert.h"
#include "proto/consensus.h"
#include "proto/microdesc.h"

static const char preamble[] =
	"network-status-version 3 microdesc\nvote-status consensus\nconsensus-method 34\n"
	"valid-after 2026-11-27 15:00:00\nfresh-until 2026-11-27 16:00:00\n"
	"valid-until 2026-11-27 18:00:00\nvoting-delay 300 300\n"
	"known-flags Authority BadExit Exit Fast Guard HSDir MiddleOnly Running Stable "
	"StaleDesc Sybil V2Dir Valid\n"
	"required-client-protocols Cons=2 Desc=2 FlowCtrl=1 Link=4 Microdesc=2 Relay=2\n"
	"params bwweightscale=10000 cc_alg=2 cc_cwnd_min=31\n"
	"dir-source auth0 CA985B01DFBA497DCF61EC3E4501ABED77A5BDF8 127.0.0.1 127.0.0.1 7000 5000\n"
	"contact auth0\nvote-digest CD0E42B251D4D73CC55D7ADA88220734B6E64A82\n";

/* Append one router entry; identities are i big-endian so they sort. */
static size_t router(char *out, size_t cap, unsigned i)
{
	uint8_t id[20] = { 0 }, md[32];
	char id64[32], md64[48];

	id[0] = (uint8_t)(i >> 16);
	id[1] = (uint8_t)(i >> 8);
	id[2] = (uint8_t)i;
	crypto_sha256(id, sizeof(id), md);
	base64_encode(id64, sizeof(id64), id, 20, false);
	base64_encode(md64, sizeof(md64), md, 32, false);
	return (size_t)snprintf(out, cap,
		"r relay%u %s 2026-11-27 12:00:00 10.%u.%u.%u 9001 0\nm %s\n"
		"s Fast Guard Running Stable V2Dir Valid\nv Tor 0.4.9.11\n"
		"pr Conflux=1 Cons=1-2 Desc=1-4 DirCache=2 FlowCtrl=1-2 HSDir=2 HSIntro=4-5 "
		"HSRend=1-2 Link=3-5 LinkAuth=3 Microdesc=1-3 Padding=2 Relay=2-6\n"
		"w Bandwidth=%u\n",
		i, id64, (i >> 16) & 255, (i >> 8) & 255, i & 255, md64, 100 + i);
}

static char *synth(unsigned n, size_t *len)
{
	size_t cap = 4096 + (size_t)n * 400, o = 0;
	char *doc = malloc(cap);
	uint8_t sig[256];
	char sig64[400];

	memcpy(doc, preamble, sizeof(preamble) - 1);
	o = sizeof(preamble) - 1;
	for (unsigned i = 0; i < n; i++)
		o += router(doc + o, cap - o, i);
	crypto_rand(sig, sizeof(sig));
	base64_encode(sig64, sizeof(sig64), sig, sizeof(sig), true);
	o += (size_t)snprintf(doc + o, cap - o,
		"directory-footer\nbandwidth-weights Wbd=0 Wgg=5859 Wmm=10000\n"
		"directory-signature sha256 CA985B01DFBA497DCF61EC3E4501ABED77A5BDF8 "
		"FD0B0EC66969DF62BDA5CCD7C2FE4FBED52D8758\n-----BEGIN SIGNATURE-----\n%s\n"
		"-----END SIGNATURE-----\n", sig64);
	*len = o;
	return doc;
}

static double last_wall_ms;

/* Run reps parses; return CPU ms per parse (wall ms in last_wall_ms). */
static double time_parse(const char *doc, size_t len, unsigned reps, size_t *nrouters)
{
	uint64_t t0 = bench_thread_cpu_ns(), w0 = clock_mono_ns();

	for (unsigned k = 0; k < reps; k++) {
		struct consensus *c;
		struct netdoc_err err;
		if (consensus_parse(doc, len, &c, &err) != PARSE_OK) {
			fprintf(stderr, "parse failed: %s at line %u\n", err.reason, err.line);
			exit(1);
		}
		*nrouters = c->n_routers;
		consensus_free(c);
	}
	last_wall_ms = (double)(clock_mono_ns() - w0) / 1e6 / reps;
	return (double)(bench_thread_cpu_ns() - t0) / 1e6 / reps;
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "rb")))
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		exit(1);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void bench_vectors(const char *dir)
{
	size_t clen, klen, mlen, n;
	char *cdoc = slurp(dir, "consensus-microdesc", &clen);
	char *kdoc = slurp(dir, "keys-all", &klen);
	char *mdoc = slurp(dir, "microdescs", &mlen);
	struct authcert **certs;
	struct consensus *c;
	struct microdesc_batch *b;
	struct netdoc_err err;
	uint8_t trusted[3][20];
	char why[128];

	if (!cdoc || !kdoc || !mdoc) {
		printf("vectors not found in %s: skipping the real-document runs\n", dir);
		return;
	}
	double ms = time_parse(cdoc, clen, 200, &n);
	printf("vector consensus (%zu bytes, %zu routers): %.3f ms CPU/parse (%.3f ms wall)\n", clen,
	       n, ms, last_wall_ms);
	if (authcert_parse_all(kdoc, klen, &certs, &n, &err) != PARSE_OK ||
	    consensus_parse(cdoc, clen, &c, &err) != PARSE_OK)
		exit(1);
	for (int i = 0; i < 3; i++)
		memcpy(trusted[i], certs[i]->identity_digest, 20);
	uint64_t t0 = bench_thread_cpu_ns();
	for (int k = 0; k < 200; k++)
		if (consensus_verify(c, (const struct authcert *const *)certs, n,
				     (const uint8_t(*)[20])trusted, 3, c->valid_after, why,
				     sizeof(why)) != PARSE_OK)
			exit(1);
	printf("consensus_verify (3 signatures): %.3f ms CPU\n", (double)(bench_thread_cpu_ns() - t0) / 1e6 / 200);
	t0 = bench_thread_cpu_ns();
	for (int k = 0; k < 100; k++) {
		if (microdesc_parse_batch(mdoc, mlen, &b, &err) != PARSE_OK)
			exit(1);
		n = b->n;
		microdesc_batch_free(b);
	}
	printf("microdesc batch (%zu bytes, %zu mds): %.3f ms CPU/parse\n", mlen, n,
	       (double)(bench_thread_cpu_ns() - t0) / 1e6 / 100);
	consensus_free(c);
	authcert_free_all(certs, 4);
	free(cdoc);
	free(kdoc);
	free(mdoc);
}

int main(int argc, char **argv)
{
	static const unsigned sizes[] = { 300, 1000, 7000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len, n;
		char *doc = synth(sizes[i], &len);
		unsigned reps = sizes[i] >= 7000 ? 20 : 200;
		time_parse(doc, len, 3, &n); /* warm up */
		double ms = time_parse(doc, len, reps, &n);
		if (n != sizes[i])
			return 1;
		printf("synthetic consensus, %5u routers (%7zu bytes): %7.3f ms CPU/parse (%.3f ms wall)\n",
		       sizes[i], len, ms, last_wall_ms);
		free(doc);
	}
	bench_vectors(argc > 1 ? argv[1] : "test/vectors/netdoc");
	return 0;
}
