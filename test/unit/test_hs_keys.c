/* The onion-service key schedule and hash ring give tor's known answers
 * (tor's src/test/test_hs_common.c vectors: blinding, subcredential,
 * hs_index, hsdir_index), rend-spec-v3's time-period example, and the
 * HSDirs that a real tor service on the private network uploaded to
 * (test/vectors/hs/ring.*: its HS_DESC events, consensus, microdescs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/base64.h"
#include "core/crypto.h"
#include "proto/consensus.h"
#include "proto/hs_keys.h"
#include "proto/microdesc.h"
#include "proto/onion_addr.h"

static const struct hs_period_cfg live = { HS_PERIOD_LEN_DEFAULT, HS_PERIOD_OFFSET_DEFAULT };

static void hex2bin(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static void assert_hex(const uint8_t *got, const char *hex)
{
	uint8_t want[64];
	size_t n = strlen(hex) / 2;

	hex2bin(hex, want, n);
	assert_memory_equal(got, want, n);
}

static void test_hs_period_matches_rend_spec_example(void **state)
{
	(void)state;
	/* 2.2.1: 2016-04-13 11:15:01 UTC is in period 16903, which began at
	 * 2016-04-12 12:00 UTC (1460462400). */
	assert_int_equal(hs_period_num(&live, 1460546101), 16903);
	assert_int_equal(hs_period_start(&live, 16903), 1460462400);
	assert_int_equal(hs_period_num(&live, 1460462400), 16903);
	assert_int_equal(hs_period_num(&live, 1460462399), 16902);
	/* tor's test: 1973-05-20 01:50:33 UTC is period 1234. */
	assert_int_equal(hs_period_num(&live, 106710633), 1234);
}

static void test_hs_srv_choice_follows_client_fetch_rule(void **state)
{
	(void)state;
	/* 2.2.4.1: 13:00 (after TP, before SRV) uses the current SRV; 01:00
	 * (after SRV, before TP) uses the previous one. 2016-04-13 13:00 UTC
	 * = 1460552400, 2016-04-14 01:00 UTC = 1460595600. */
	assert_true(hs_period_uses_current_srv(&live, 1460552400));
	assert_false(hs_period_uses_current_srv(&live, 1460595600));
	assert_true(hs_period_uses_current_srv(&live, 1460548800));  /* 12:00 */
	assert_false(hs_period_uses_current_srv(&live, 1460592000)); /* 00:00 */
}

static void test_hs_blinding_and_subcredential_match_tor(void **state)
{
	uint8_t id[32], h[32], blinded[32], subcred[32], exp[64], bexp[64], bpub[32];

	(void)state;
	hex2bin("833990B085C1A688C1D4C8B1F6B56AFAF5A2ECA674449E1D704F83765CCB7BC6", id, 32);
	hs_blind_factor(h, id, 1234, 1440);
	assert_hex(h, "379E50DB31FEE6775ABD0AF6FB7C371E060308F4F847DB09FE4CFE13AF602287");
	assert_true(hs_blinded_key(blinded, id, 1234, 1440));
	assert_hex(blinded, "3A50BF210E8F9EE955AE0014F7A6917FB65EBF098A86305ABB508D1A7291B6D5");
	hs_subcredential(subcred, id, blinded);
	assert_hex(subcred, "635D55907816E8D76398A675A50B1C2F3E36B42A5CA77BA3A0441285161AE07D");
	/* The service side of the same blinding (tor's blinded secret key). */
	hex2bin("D8C7FF0E31295B66540D789AF3E3DF992038A9592EEA01D8B7CBA06D6E66D159"
		"4D6167696320576F7264733A20737065697373636F62616C742062697669756D", exp, 64);
	crypto_ed25519_blind_expanded(bexp, exp, h);
	assert_hex(bexp, "A958DC83AC885F6814C67035DE817A2C604D5D2F715282079448F789B656350B"
			 "4540FE1F80AA3F7E91306B7BF7A8E367293352B14A29FDCC8C19F3558075524B");
	crypto_ed25519_public_from_expanded(bpub, bexp);
	assert_memory_equal(bpub, blinded, 32);
}

static void test_hs_blinding_differs_per_period(void **state)
{
	uint8_t id[32], a[32], b[32];

	(void)state;
	hex2bin("833990B085C1A688C1D4C8B1F6B56AFAF5A2ECA674449E1D704F83765CCB7BC6", id, 32);
	assert_true(hs_blinded_key(a, id, 1234, 1440));
	assert_true(hs_blinded_key(b, id, 1235, 1440));
	assert_memory_not_equal(a, b, 32);
}

static void test_hs_indices_match_tor(void **state)
{
	uint8_t key[32], srv[32], out[32];

	(void)state;
	memset(key, 0x42, sizeof(key));
	memset(srv, 0x43, sizeof(srv));
	hs_service_index(out, key, 1, 42, 1440);
	assert_hex(out, "37e5cbbd56a22823714f18f1623ece5983a0d64c78495a8cfab854245e5f9a8a");
	hs_relay_index(out, key, srv, 42, 1440);
	assert_hex(out, "db475361014a09965e7e5e4d4a25b8f8d4b8f16cb1d8a7e95eed50249cc1a2d5");
}

static void test_hs_disaster_srv_is_the_spec_hash(void **state)
{
	uint8_t in[22 + 16] = "shared-random-disaster", want[32], got[32];

	(void)state;
	/* INT_8(len) then INT_8(num): 1440 = 0x5a0, num 7. */
	in[22 + 6] = 0x05;
	in[22 + 7] = 0xa0;
	in[22 + 15] = 7;
	crypto_sha3_256(in, sizeof(in), want);
	hs_disaster_srv(got, 7, 1440);
	assert_memory_equal(got, want, 32);
}

/* A ring of n entries with made-up indices; the expected picks are worked
 * out by walking the sorted ring by hand in the test below. */
static void ring_fill(struct hs_ring_entry *ring, size_t n, const uint8_t *firsts)
{
	for (size_t i = 0; i < n; i++) {
		memset(ring[i].index, 0, 32);
		ring[i].index[0] = firsts[i];
		ring[i].handle = (uint32_t)i;
	}
}

static void test_hs_ring_pick_skips_lower_replica_choices_and_wraps(void **state)
{
	struct hs_ring_entry ring[6];
	static const uint8_t firsts[6] = { 0xf0, 0x10, 0x80, 0x40, 0xc0, 0x20 };
	uint8_t blinded[32], idx1[32], idx2[32];
	uint32_t out[16];
	size_t n, pos1, pos2;

	(void)state;
	ring_fill(ring, 6, firsts);
	hs_ring_sort(ring, 6);
	for (size_t i = 1; i < 6; i++)
		assert_true(memcmp(ring[i - 1].index, ring[i].index, 32) < 0);
	memset(blinded, 7, sizeof(blinded));
	hs_service_index(idx1, blinded, 1, 5, 1440);
	hs_service_index(idx2, blinded, 2, 5, 1440);
	/* Sorted firsts: 10 20 40 80 c0 f0. Position of the first entry with
	 * index >= the service index (ties impossible: low bytes are 0 here
	 * and the hash's are not all 0). */
	pos1 = 0;
	while (pos1 < 6 && ring[pos1].index[0] <= idx1[0])
		pos1++;
	pos1 %= 6;
	pos2 = 0;
	while (pos2 < 6 && ring[pos2].index[0] <= idx2[0])
		pos2++;
	pos2 %= 6;
	n = hs_ring_pick(ring, 6, blinded, 5, 1440, 2, 3, out, 16);
	assert_int_equal(n, 6);
	for (size_t k = 0; k < 3; k++)
		assert_int_equal(out[k], ring[(pos1 + k) % 6].handle);
	/* Replica 2 takes the first three not already taken, in ring order. */
	{
		size_t k = 3, p = pos2;

		while (k < 6) {
			bool taken = false;

			for (size_t j = 0; j < 3; j++)
				taken |= out[j] == ring[p].handle;
			if (!taken)
				assert_int_equal(out[k++], ring[p].handle);
			p = (p + 1) % 6;
		}
	}
	/* Every handle at most once. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_int_not_equal(out[i], out[j]);
}

static void test_hs_ring_pick_small_ring_and_small_cap(void **state)
{
	struct hs_ring_entry ring[2];
	static const uint8_t firsts[2] = { 0x33, 0x99 };
	uint8_t blinded[32];
	uint32_t out[4];

	(void)state;
	ring_fill(ring, 2, firsts);
	hs_ring_sort(ring, 2);
	memset(blinded, 9, sizeof(blinded));
	/* Two replicas of spread 3 on a ring of 2: each relay once. */
	assert_int_equal(hs_ring_pick(ring, 2, blinded, 1, 1440, 2, 3, out, 4), 2);
	assert_int_not_equal(out[0], out[1]);
	assert_int_equal(hs_ring_pick(ring, 2, blinded, 1, 1440, 2, 3, out, 1), 1);
	assert_int_equal(hs_ring_pick(ring, 0, blinded, 1, 1440, 2, 3, out, 4), 0);
}


/* ---- the hash ring against tor's own uploads (test/vectors/hs/ring.*) ---- */

static char *slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *b = malloc(1 << 20);

	snprintf(path, sizeof(path), "%s/%s", HS_VECTORS, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	*len = fread(b, 1, (1 << 20) - 1, f);
	fclose(f);
	b[*len] = 0;
	return b;
}

struct upload {
	uint8_t fp[20];
	uint8_t blinded[32];
	char index[80]; /* HSDIR_INDEX= as tor printed it */
};

static size_t load_uploads(struct upload *u, size_t cap)
{
	size_t len, n = 0;
	char *ev = slurp("ring.events", &len), *line = ev, *nl;

	for (; (nl = strchr(line, '\n')) && n < cap; line = nl + 1) {
		char fp[41], b64[64], idx[80];

		*nl = 0;
		if (sscanf(line, "650 HS_DESC UPLOAD %*s UNKNOWN $%40[0-9A-F]~%*s %63s HSDIR_INDEX=%79s",
			   fp, b64, idx) != 3)
			continue;
		assert_int_equal(base16_decode(u[n].fp, 20, fp, 40), 20);
		assert_int_equal(base64_decode(u[n].blinded, 32, b64, strlen(b64)), 32);
		strcpy(u[n].index, idx);
		n++;
	}
	free(ev);
	return n;
}

/* HSDIR_INDEX= is the relay's hs_relay_index in hex. */
static bool index_matches(const uint8_t idx[32], const char *printed)
{
	uint8_t want[32];

	return base16_decode(want, sizeof(want), printed, strlen(printed)) == 32 &&
	       memcmp(want, idx, 32) == 0;
}

struct hsdir {
	uint8_t fp[20];
	uint8_t ed[32];
};

static size_t load_hsdirs(const struct consensus *c, const struct microdesc_batch *b, struct hsdir *out)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_routers; i++) {
		if (!(c->routers[i].flags & RFLAG_HSDIR))
			continue;
		for (size_t j = 0; j < b->n; j++) {
			if (memcmp(b->mds[j].digest, c->routers[i].md_digest, 32) == 0 && b->mds[j].has_ed25519) {
				memcpy(out[n].fp, c->routers[i].identity, 20);
				memcpy(out[n].ed, b->mds[j].ed25519_id, 32);
				n++;
				break;
			}
		}
	}
	return n;
}

static void test_hs_ring_picks_the_hsdirs_tor_uploaded_to(void **state)
{
	struct upload up[64];
	struct hsdir dirs[64];
	struct hs_ring_entry ring[64];
	struct consensus *c = NULL;
	struct microdesc_batch *b = NULL;
	struct netdoc_err err;
	char *cdoc, *mdoc, *meta, addr[80], host[96];
	size_t clen, mlen, n_up, n_dirs, checked = 0;
	uint8_t id[32];
	const struct hs_period_cfg cfg = { 8, 4 }; /* the private network: see hs_keys.h */

	(void)state;
	cdoc = slurp("ring.consensus", &clen);
	mdoc = slurp("ring.microdescs", &mlen);
	meta = slurp("ring.meta", &mlen);
	assert_int_equal(sscanf(meta, "address %63s", addr), 1);
	snprintf(host, sizeof(host), "%s.onion", addr);
	assert_int_equal(onion_addr_parse(host, strlen(host), id), ONION_ADDR_OK);
	assert_int_equal(consensus_parse(cdoc, clen, &c, &err), PARSE_OK);
	mlen = strlen(mdoc);
	assert_int_equal(microdesc_parse_batch(mdoc, mlen, &b, &err), PARSE_OK);
	assert_true(c->has_srv_current && c->has_srv_previous);
	n_up = load_uploads(up, 64);
	n_dirs = load_hsdirs(c, b, dirs);
	assert_true(n_up >= 2 && n_dirs >= 4);
	/* Each uploaded descriptor: find its period (the service uploads the
	 * current and the next one) and the SRV whose relay indices equal the
	 * ones tor printed, then check tor chose exactly our ring's pick. */
	for (size_t u = 0; u < n_up; u++) {
		uint64_t num0 = hs_period_num(&cfg, c->valid_after), num = 0;
		const uint8_t *srv = NULL;
		uint8_t bk[32], idx[32];
		uint32_t pick[64];
		size_t n_pick, want = 0;
		bool found = false;

		for (uint64_t k = num0 - 1; k <= num0 + 1 && !found; k++) {
			assert_true(hs_blinded_key(bk, id, k, cfg.length));
			if (memcmp(bk, up[u].blinded, 32) == 0)
				num = k, found = true;
		}
		assert_true(found);
		for (size_t d = 0; d < n_dirs; d++) {
			if (memcmp(dirs[d].fp, up[u].fp, 20) != 0)
				continue;
			hs_relay_index(idx, dirs[d].ed, c->srv_current, num, cfg.length);
			if (index_matches(idx, up[u].index))
				srv = c->srv_current;
			hs_relay_index(idx, dirs[d].ed, c->srv_previous, num, cfg.length);
			if (index_matches(idx, up[u].index))
				srv = c->srv_previous;
		}
		assert_non_null(srv);
		/* A client fetching this period's descriptor picks the same SRV
		 * (2.2.4.1), so it asks HSDirs that have the descriptor. */
		if (num == num0)
			assert_ptr_equal(srv, hs_period_uses_current_srv(&cfg, c->valid_after) ? c->srv_current
											      : c->srv_previous);
		for (size_t d = 0; d < n_dirs; d++) {
			hs_relay_index(ring[d].index, dirs[d].ed, srv, num, cfg.length);
			ring[d].handle = (uint32_t)d;
		}
		hs_ring_sort(ring, n_dirs);
		n_pick = hs_ring_pick(ring, n_dirs, up[u].blinded, num, cfg.length,
				      (unsigned)consensus_param(c, "hsdir_n_replicas", 2, 1, 16),
				      (unsigned)consensus_param(c, "hsdir_spread_store", 4, 1, 128), pick, 64);
		for (size_t v = 0; v < n_up; v++) {
			bool in_pick = false;

			if (memcmp(up[v].blinded, up[u].blinded, 32) != 0)
				continue;
			want++;
			for (size_t k = 0; k < n_pick; k++)
				in_pick |= memcmp(dirs[pick[k]].fp, up[v].fp, 20) == 0;
			assert_true(in_pick);
		}
		assert_int_equal(n_pick, want);
		checked++;
	}
	assert_int_equal(checked, n_up);
	consensus_free(c);
	microdesc_batch_free(b);
	free(cdoc);
	free(mdoc);
	free(meta);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hs_period_matches_rend_spec_example),
		cmocka_unit_test(test_hs_srv_choice_follows_client_fetch_rule),
		cmocka_unit_test(test_hs_blinding_and_subcredential_match_tor),
		cmocka_unit_test(test_hs_blinding_differs_per_period),
		cmocka_unit_test(test_hs_indices_match_tor),
		cmocka_unit_test(test_hs_disaster_srv_is_the_spec_hash),
		cmocka_unit_test(test_hs_ring_pick_skips_lower_replica_choices_and_wraps),
		cmocka_unit_test(test_hs_ring_pick_small_ring_and_small_cap),
		cmocka_unit_test(test_hs_ring_picks_the_hsdirs_tor_uploaded_to),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
