/* libFuzzer target for proto/ntor3.h and proto/relay_crypto.h input paths:
 * the congestion-control extension parser, ntor v3 and ntor reply checks
 * on arbitrary bytes (a handshake started with a fixed key), and inbound
 * relay-cell peeling of arbitrary cells. Input: any bytes. A random reply
 * must never be accepted and nothing may read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ntor.h"
#include "proto/ntor3.h"
#include "proto/relay_crypto.h"

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			abort(); \
	} while (0)

static void ext_check(const uint8_t *p, size_t n)
{
	const char *why = NULL;
	bool present;
	uint8_t inc;

	for (int req = 0; req < 2; req++) {
		enum parse_result r = ntor3_ext_parse_cc_response(p, n, req, &present, &inc, &why);

		CHECK(r == PARSE_OK || r == PARSE_INVALID);
		CHECK(r == PARSE_OK || (why != NULL && !present));
		CHECK(!present || req);
	}
}

static void handshake_check(const uint8_t *p, size_t n)
{
	static const uint8_t id[32] = { 1 }, x[32] = { 2 }, B[32] = { 9 };
	uint8_t hs[256], sm[512], keys[92];
	struct ntor3_client st3;
	struct ntor_client st1;
	size_t sm_len;

	if (ntor3_client_start_with_key(&st3, id, B, x, (const uint8_t *)"v", 1, NULL, 0, hs, sizeof(hs)) > 0)
		CHECK(ntor3_client_finish(&st3, p, n, sm, sizeof(sm), &sm_len, keys, sizeof(keys)) == -1);
	if (n >= NTOR_REPLY_LEN) {
		ntor_client_start_with_key(&st1, id, B, x, hs);
		CHECK(ntor_client_finish(&st1, p, keys, sizeof(keys)) == -1);
	}
}

static void peel_check(const uint8_t *p, size_t n)
{
	static struct relay_crypto_circ c;
	static uint8_t cells[4][RELAY_PAYLOAD_LEN];
	uint8_t *ptr[4] = { cells[0], cells[1], cells[2], cells[3] }, km[RELAY_KDF_LEN] = { 3 };
	struct relay_hop_keys k;
	int hop_out[4];
	size_t bad;

	relay_crypto_circ_init(&c);
	relay_keys_from_kdf(km, sizeof(km), &k);
	for (int h = 0; h < 3; h++)
		relay_crypto_circ_add_hop(&c, &k);
	memset(cells, 0, sizeof(cells));
	memcpy(cells, p, n < sizeof(cells) ? n : sizeof(cells));
	bad = relay_crypto_decrypt_in(&c, ptr, 4, hop_out, NULL);
	CHECK(bad <= 4);
	for (int i = 0; i < 4; i++)
		CHECK(hop_out[i] >= -1 && hop_out[i] < 3);
	relay_crypto_circ_clear(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ext_check(data, size);
	handshake_check(data, size);
	peel_check(data, size);
	return 0;
}
