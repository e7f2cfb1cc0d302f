/* Micro-benchmark of proto/'s batched tor1 relay crypto against the raw
 * BoringSSL ceiling, on one pinned core.
 *
 * (a) ceiling: per cell, AES-128-CTR over 3 x 509 bytes (three keys) and one
 *     SHA1_Update over 509 bytes, in the tightest loop BoringSSL allows. It
 *     calls BoringSSL directly on purpose (the only file outside core/ that
 *     does): it measures the library, not our wrappers.
 * (b) relay_crypto_encrypt_out / relay_crypto_decrypt_in on a 3-hop
 *     circuit at batch sizes 1, 8, 32, 128 (inbound: cells from the exit,
 *     recognized at hop 3, the common case for downloads).
 * Times are thread CPU time, so other load on the machine matters less.
 * Prints cells/s, the ratio to (a), and heap allocations per cell.
 * Not a test: never run by meson test. Usage: bench_relay_crypto [seconds]. */
#include <openssl/aes.h>
#include <openssl/sha.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "onionring_build.h"
#include "perf/bench_util.h"
#include "proto/relay_crypto.h"

#define NCELLS 128
#define HOPS 3
#define PL RELAY_PAYLOAD_LEN

static _Alignas(64) uint8_t cells[NCELLS][512];
static uint8_t *ptrs[NCELLS];
static double seconds = 0.6;

static double bench_ceiling(void)
{
	struct { AES_KEY key; uint8_t iv[16], ecount[16]; unsigned num; } aes[HOPS];
	SHA_CTX sha;
	uint8_t key[16];
	unsigned long long n = 0;
	double t0 = bench_thread_cpu_s(), t;

	for (int h = 0; h < HOPS; h++) {
		crypto_rand(key, sizeof(key));
		memset(&aes[h], 0, sizeof(aes[h]));
		AES_set_encrypt_key(key, 128, &aes[h].key);
	}
	SHA1_Init(&sha);
	do {
		for (int i = 0; i < NCELLS; i++) {
			SHA1_Update(&sha, cells[i], PL);
			for (int h = 0; h < HOPS; h++)
				AES_ctr128_encrypt(cells[i], cells[i], PL, &aes[h].key, aes[h].iv,
						   aes[h].ecount, &aes[h].num);
		}
		n += NCELLS;
	} while ((t = bench_thread_cpu_s() - t0) < seconds);
	return (double)n / t;
}

static void circ_setup(struct relay_crypto_circ *c, uint8_t material[HOPS][RELAY_KDF_LEN])
{
	relay_crypto_circ_init(c);
	for (int h = 0; h < HOPS; h++) {
		struct relay_hop_keys k;

		crypto_rand(material[h], RELAY_KDF_LEN);
		relay_keys_from_kdf(material[h], RELAY_KDF_LEN, &k);
		relay_crypto_circ_add_hop(c, &k);
		crypto_wipe(&k, sizeof(k));
	}
}

static double bench_out(size_t batch, double *allocs_per_cell)
{
	static struct relay_crypto_circ c;
	uint8_t material[HOPS][RELAY_KDF_LEN];
	unsigned long long n = 0, a0;
	double t0, t;

	circ_setup(&c, material);
	a0 = bench_allocated_bytes();
	t0 = bench_thread_cpu_s();
	do {
		for (size_t i = 0; i < NCELLS; i += batch)
			relay_crypto_encrypt_out(&c, HOPS - 1, ptrs + i, batch, NULL);
		n += NCELLS;
	} while ((t = bench_thread_cpu_s() - t0) < seconds);
	*allocs_per_cell = (double)(bench_allocated_bytes() - a0) / (double)n;
	relay_crypto_circ_clear(&c);
	return (double)n / t;
}

/* Inbound cells must be valid for the circuit's state, so a simulated
 * exit (hop 3, with hops 2 and 1 adding their layers) originates POOL cells
 * once for a fresh circuit. Each pass restores that circuit state and the
 * cells (untimed) and times only the relay_crypto_decrypt_in calls. */
#define POOL 256
static _Alignas(64) uint8_t pool[POOL][512], work[POOL][512];

static void sim_originate_pool(uint8_t material[HOPS][RELAY_KDF_LEN])
{
	static const uint8_t iv[16];
	struct crypto_aes_ctr back[HOPS];
	struct crypto_sha1 exit_digest;
	uint8_t tag[SHA1_LEN];

	for (int h = 0; h < HOPS; h++)
		crypto_aes_ctr_init(&back[h], material[h] + 56, iv);
	crypto_sha1_init(&exit_digest);
	crypto_sha1_update(&exit_digest, material[HOPS - 1] + 20, SHA1_LEN);
	for (int i = 0; i < POOL; i++) {
		uint8_t *p = pool[i];

		crypto_rand(p, PL);
		p[0] = 2; /* RELAY_DATA */
		memset(p + 1, 0, 2);
		memset(p + RELAY_OFF_DIGEST, 0, 4);
		crypto_sha1_update(&exit_digest, p, PL);
		crypto_sha1_peek(&exit_digest, tag);
		memcpy(p + RELAY_OFF_DIGEST, tag, 4);
		for (int h = HOPS - 1; h >= 0; h--)
			crypto_aes_ctr_xor(&back[h], p, PL);
	}
}

static double bench_in(size_t batch, double *allocs_per_cell)
{
	static struct relay_crypto_circ fresh, c;
	uint8_t material[HOPS][RELAY_KDF_LEN], *wp[POOL];
	int hop_out[POOL];
	unsigned long long n = 0, a = 0;
	double busy = 0;

	circ_setup(&fresh, material);
	sim_originate_pool(material);
	for (int i = 0; i < POOL; i++)
		wp[i] = work[i];
	do {
		unsigned long long a0;
		double t;

		c = fresh;
		memcpy(work, pool, sizeof(work));
		a0 = bench_allocated_bytes();
		t = bench_thread_cpu_s();
		for (size_t i = 0; i < POOL; i += batch) {
			if (relay_crypto_decrypt_in(&c, wp + i, batch, hop_out + i, NULL) != 0) {
				fprintf(stderr, "inbound cell not recognized: bug\n");
				exit(1);
			}
		}
		busy += bench_thread_cpu_s() - t;
		a += bench_allocated_bytes() - a0;
		n += POOL;
	} while (busy < seconds);
	*allocs_per_cell = (double)a / (double)n;
	relay_crypto_circ_clear(&fresh);
	relay_crypto_circ_clear(&c);
	return (double)n / busy;
}

int main(int argc, char **argv)
{
	static const size_t batches[] = { 1, 8, 32, 128 };
	double ceiling, allocs;

	if (argc > 1)
		seconds = atof(argv[1]);
	for (int i = 0; i < NCELLS; i++) {
		ptrs[i] = cells[i];
		crypto_rand(cells[i], PL);
	}
	bench_pin(-1);
	printf("cell_batch (ONIONRING_CELL_BATCH) = %d, allocator = %s\n", ONIONRING_CELL_BATCH,
	       ONIONRING_ALLOCATOR);
	ceiling = bench_ceiling();
	printf("ceiling: 3 x AES-128-CTR(509) + SHA1_Update(509): %.0f cells/s (%.0f ns/cell)\n", ceiling,
	       1e9 / ceiling);
	printf("%-9s %6s %14s %10s %8s %14s\n", "direction", "batch", "cells/s", "ns/cell", "ratio",
	       "alloc B/cell");
	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		double r = bench_out(batches[b], &allocs);

		printf("%-9s %6zu %14.0f %10.1f %7.1f%% %14.3f\n", "out", batches[b], r, 1e9 / r,
		       100 * r / ceiling, allocs);
	}
	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		double r = bench_in(batches[b], &allocs);

		printf("%-9s %6zu %14.0f %10.1f %7.1f%% %14.3f\n", "in", batches[b], r, 1e9 / r,
		       100 * r / ceiling, allocs);
	}
	return 0;
}
