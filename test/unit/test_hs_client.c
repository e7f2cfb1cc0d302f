/* The onion-service client's pure helpers (app/hs_client.h): the time
 * period layout taken from a consensus, introduction-point hop targets
 * from descriptor link specifiers, and the rendezvous point's link
 * specifiers for INTRODUCE1. The flow itself is test_onion.sh's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "app/hs_client.h"
#include "proto/circuit.h"
#include "proto/consensus.h"
#include "proto/hs_desc.h"
#include "proto/hs_keys.h"

static void test_hs_period_is_24_votes_offset_by_12(void **state)
{
	struct consensus c;
	struct consensus_param p = { { "hsdir-interval", 14 }, 60 };
	struct hs_period_cfg pc;

	(void)state;
	memset(&c, 0, sizeof(c));
	/* The live network: hourly votes -> 1440/720 minutes (2.2.1). */
	c.valid_after = 1700000000;
	c.fresh_until = c.valid_after + 3600;
	hs_client_period_cfg(&c, &pc);
	assert_int_equal(pc.length, HS_PERIOD_LEN_DEFAULT);
	assert_int_equal(pc.offset, HS_PERIOD_OFFSET_DEFAULT);
	/* The private network's 20 s votes: 8/4 minutes, as its tor. */
	c.fresh_until = c.valid_after + 20;
	hs_client_period_cfg(&c, &pc);
	assert_int_equal(pc.length, 8);
	assert_int_equal(pc.offset, 4);
	/* hsdir-interval overrides the length. */
	c.fresh_until = c.valid_after + 3600;
	c.params = &p;
	c.n_params = 1;
	hs_client_period_cfg(&c, &pc);
	assert_int_equal(pc.length, 60);
	assert_int_equal(pc.offset, 720);
}

/* NSPEC then (type, len, value) for IPv4 127.0.0.1:5000, legacy id 0x11..,
 * an unknown type 9, ed25519 id 0x22.. */
static size_t specs_example(uint8_t *b)
{
	size_t k = 0;

	b[k++] = 4;
	b[k++] = 0, b[k++] = 6;
	memcpy(b + k, "\x7f\x00\x00\x01\x13\x88", 6), k += 6;
	b[k++] = 2, b[k++] = 20;
	memset(b + k, 0x11, 20), k += 20;
	b[k++] = 9, b[k++] = 3;
	memcpy(b + k, "abc", 3), k += 3;
	b[k++] = 3, b[k++] = 32;
	memset(b + k, 0x22, 32), k += 32;
	return k;
}

static void test_hs_intro_target_takes_link_specifiers_and_onion_key(void **state)
{
	struct hs_desc_intro ip;
	struct hop_target t;
	uint8_t id[20], ed[32];

	(void)state;
	memset(&ip, 0, sizeof(ip));
	ip.link_specs_len = specs_example(ip.link_specs);
	memset(ip.onion_key, 0x33, 32);
	assert_true(hs_client_intro_target(&ip, &t));
	assert_memory_equal(t.ipv4, "\x7f\x00\x00\x01", 4);
	assert_int_equal(t.port, 5000);
	memset(id, 0x11, sizeof(id));
	memset(ed, 0x22, sizeof(ed));
	assert_memory_equal(t.rsa_id, id, 20);
	assert_true(t.has_ed_id);
	assert_memory_equal(t.ed_id, ed, 32);
	assert_memory_equal(t.ntor_key, ip.onion_key, 32);
	assert_false(t.has_ipv6);
	/* Every cut of the block is refused, never read past. */
	for (size_t n = 0; n < ip.link_specs_len; n++) {
		struct hs_desc_intro cut = ip;

		cut.link_specs_len = n;
		memset(cut.link_specs + n, 0xff, sizeof(cut.link_specs) - n);
		/* Cuts that end exactly after a whole spec but before the ones
		 * NSPEC promises are cut too: all refused. */
		assert_false(hs_client_intro_target(&cut, &t));
	}
	/* Without the legacy id (type 2 relabelled as unknown 7): refused. */
	ip.link_specs[1 + 8] = 7;
	assert_false(hs_client_intro_target(&ip, &t));
}

static void test_hs_rend_link_specs_read_back_as_the_same_relay(void **state)
{
	struct hop_target rp, back;
	struct hs_desc_intro ip;
	size_t n;

	(void)state;
	memset(&rp, 0, sizeof(rp));
	memcpy(rp.ipv4, "\x7f\x00\x00\x01", 4);
	rp.port = 9001;
	memset(rp.rsa_id, 0x44, 20);
	rp.has_ed_id = true;
	memset(rp.ed_id, 0x55, 32);
	memset(&ip, 0, sizeof(ip));
	n = hs_client_rend_link_specs(&rp, ip.link_specs);
	assert_int_equal(n, 1 + 8 + 22 + 34);
	assert_int_equal(ip.link_specs[0], 3);
	ip.link_specs_len = n;
	assert_true(hs_client_intro_target(&ip, &back));
	assert_memory_equal(back.ipv4, rp.ipv4, 4);
	assert_int_equal(back.port, 9001);
	assert_memory_equal(back.rsa_id, rp.rsa_id, 20);
	assert_memory_equal(back.ed_id, rp.ed_id, 32);
	/* Without an Ed25519 id: two specifiers. */
	rp.has_ed_id = false;
	n = hs_client_rend_link_specs(&rp, ip.link_specs);
	assert_int_equal(n, 1 + 8 + 22);
	assert_int_equal(ip.link_specs[0], 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hs_period_is_24_votes_offset_by_12),
		cmocka_unit_test(test_hs_intro_target_takes_link_specifiers_and_onion_key),
		cmocka_unit_test(test_hs_rend_link_specs_read_back_as_the_same_relay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
