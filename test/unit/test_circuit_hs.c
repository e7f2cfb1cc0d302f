/* Onion-service cells and the virtual hop on a client circuit
 * (proto/circuit.h circ_send_hs / CIRC_EV_HS / circ_hs_join): the relay
 * side here is written from tor-spec 6.1 (tor1 layers) and the service
 * side is proto/hs_hop.h with the keys' roles swapped, as rend-spec-v3 4.2.1
 * says the service uses them (Df/Kf for what it receives). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/crypto.h"
#include "proto/circuit.h"
#include "proto/hs_hop.h"
#include "proto/relay.h"
#include "proto/relay_crypto.h"

#define NHOPS 3

/* One relay's view of its hop: tor1 keys (tor-spec 5.2.2 order). */
struct relay_side {
	struct crypto_aes_ctr kf, kb;
	struct crypto_sha1 df, db;
};

struct fx {
	struct circ c;
	struct relay_side r[NHOPS];
	struct hs_hop service; /* the service's end of the virtual hop */
	uint8_t keys[HS_NTOR_EXPANDED_LEN];
};

static const uint8_t zero_iv[16];

/* An open 3-hop circuit whose hop keys the relays in x->r share. */
static struct fx *fx_new(void)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct circ_params p;

	circ_params_default(&p);
	circ_init(&x->c, 0x80000007u, &p, NULL);
	for (int h = 0; h < NHOPS; h++) {
		struct relay_hop_keys k;

		crypto_rand(&k, sizeof(k));
		assert_int_equal(relay_crypto_circ_add_hop(&x->c.crypto, &k), h);
		crypto_aes_ctr_init(&x->r[h].kf, k.kf, zero_iv);
		crypto_aes_ctr_init(&x->r[h].kb, k.kb, zero_iv);
		crypto_sha1_init(&x->r[h].df);
		crypto_sha1_update(&x->r[h].df, k.df, SHA1_LEN);
		crypto_sha1_init(&x->r[h].db);
		crypto_sha1_update(&x->r[h].db, k.db, SHA1_LEN);
	}
	/* What install_hop leaves after the third hop (the test drives the
	 * crypto directly instead of running three handshakes). */
	x->c.n_hops = NHOPS;
	x->c.edge_hop = NHOPS - 1;
	x->c.package_window = CIRC_WINDOW_START;
	x->c.deliver_window = CIRC_WINDOW_START;
	x->c.sendme_inc = CIRC_WINDOW_INC;
	x->c.state = CIRC_ST_OPEN;
	crypto_rand(x->keys, sizeof(x->keys));
	{
		/* The service's hop: its forward is our backward. */
		uint8_t sw[HS_NTOR_EXPANDED_LEN];

		memcpy(sw, x->keys + 32, 32);
		memcpy(sw + 32, x->keys, 32);
		memcpy(sw + 64, x->keys + 96, 32);
		memcpy(sw + 96, x->keys + 64, 32);
		hs_hop_init(&x->service, sw);
	}
	return x;
}

static void fx_free(struct fx *x)
{
	circ_clear(&x->c);
	hs_hop_clear(&x->service);
	free(x);
}

/* Peel every relay's layer off an outbound payload; return the hop that
 * recognized it (tor-spec 6.1), or -1. */
static int relays_peel(struct fx *x, uint8_t *p)
{
	for (int h = 0; h < NHOPS; h++) {
		uint8_t got[4], d[SHA1_LEN];
		struct crypto_sha1 t;

		crypto_aes_ctr_xor(&x->r[h].kf, p, RELAY_PAYLOAD_LEN);
		if (p[1] || p[2])
			continue;
		memcpy(got, p + 5, 4);
		memset(p + 5, 0, 4);
		t = x->r[h].df;
		crypto_sha1_update(&t, p, RELAY_PAYLOAD_LEN);
		crypto_sha1_peek(&t, d);
		memcpy(p + 5, got, 4);
		if (memcmp(d, got, 4) == 0) {
			x->r[h].df = t;
			return h;
		}
	}
	return -1;
}

/* Relay `origin` sends p (header filled, digest zero) toward the client:
 * its digest, then every layer from it down to the guard. */
static void relays_send_back(struct fx *x, int origin, uint8_t *p)
{
	uint8_t d[SHA1_LEN];

	if (origin >= 0) {
		memset(p + 5, 0, 4);
		crypto_sha1_update(&x->r[origin].db, p, RELAY_PAYLOAD_LEN);
		crypto_sha1_peek(&x->r[origin].db, d);
		memcpy(p + 5, d, 4);
	}
	for (int h = origin >= 0 ? origin : NHOPS - 1; h >= 0; h--)
		crypto_aes_ctr_xor(&x->r[h].kb, p, RELAY_PAYLOAD_LEN);
}

/* The service sends a relay message to the client over the joined circuit. */
static void service_send(struct fx *x, struct cell *cl, uint8_t cmd, uint16_t sid, const void *body, size_t len)
{
	memset(cl, 0, sizeof(*cl));
	cl->circ_id = x->c.circ_id;
	cl->command = CELL_RELAY;
	if (len) /* body may be NULL for an empty message (memcpy must not get NULL) */
		memcpy(cl->payload + RELAY_HEADER_LEN, body, len);
	relay_header_write(cl->payload, cmd, sid, len, NULL);
	hs_hop_seal_out(&x->service, cl->payload);
	relays_send_back(x, -1, cl->payload);
}

static size_t input(struct fx *x, struct cell *cl, struct circ_event *ev)
{
	struct cell *cells[1] = { cl };
	size_t nev = 0;

	circ_input_cells(&x->c, cells, 1, 1000, ev, 2, &nev);
	return nev;
}

static void test_hs_cells_go_to_the_last_real_hop_and_come_back_as_events(void **state)
{
	struct fx *x = fx_new();
	uint8_t cookie[20], info[64];
	struct relay_msg m;
	struct circ_event ev[2];
	struct cell cl;
	const char *why = NULL;

	(void)state;
	crypto_rand(cookie, sizeof(cookie));
	assert_int_equal(circ_send_hs(&x->c, RELAY_ESTABLISH_RENDEZVOUS, cookie, sizeof(cookie), &cl), 0);
	assert_int_equal(cl.circ_id, x->c.circ_id);
	assert_int_equal(relays_peel(x, cl.payload), NHOPS - 1);
	assert_int_equal(relay_parse(cl.payload, &m, &why), PARSE_OK);
	assert_int_equal(m.command, RELAY_ESTABLISH_RENDEZVOUS);
	assert_int_equal(m.stream_id, 0);
	assert_int_equal(m.length, 20);
	assert_memory_equal(m.data, cookie, 20);

	/* RENDEZVOUS2 from the rendezvous point: an event with its body. */
	crypto_rand(info, sizeof(info));
	memset(&cl, 0, sizeof(cl));
	cl.circ_id = x->c.circ_id;
	cl.command = CELL_RELAY;
	memcpy(cl.payload + RELAY_HEADER_LEN, info, sizeof(info));
	relay_header_write(cl.payload, RELAY_RENDEZVOUS2, 0, sizeof(info), NULL);
	relays_send_back(x, NHOPS - 1, cl.payload);
	assert_int_equal(input(x, &cl, ev), 1);
	assert_int_equal(ev[0].type, CIRC_EV_HS);
	assert_int_equal(ev[0].hop, NHOPS - 1);
	assert_int_equal(ev[0].u.hs.command, RELAY_RENDEZVOUS2);
	assert_int_equal(ev[0].u.hs.len, sizeof(info));
	assert_memory_equal(ev[0].u.hs.body, info, sizeof(info));

	/* The same command from a middle hop is ignored (no event, open). */
	memset(&cl, 0, sizeof(cl));
	cl.circ_id = x->c.circ_id;
	cl.command = CELL_RELAY;
	relay_header_write(cl.payload, RELAY_INTRODUCE_ACK, 0, 0, NULL);
	relays_send_back(x, 1, cl.payload);
	assert_int_equal(input(x, &cl, ev), 0);
	assert_int_equal(x->c.state, CIRC_ST_OPEN);
	fx_free(x);
}

static void test_hs_join_streams_talk_to_the_service_through_the_virtual_hop(void **state)
{
	struct fx *x = fx_new();
	struct relay_msg m;
	struct circ_event ev[2];
	struct cell cl, out[4];
	struct cell *outp[4] = { &out[0], &out[1], &out[2], &out[3] };
	const char *why = NULL;
	size_t taken = 0, nout = 0;
	uint16_t sid = 0;

	(void)state;
	assert_int_equal(circ_hs_join(&x->c, x->keys, NULL), 0);
	assert_true(x->c.hs_joined);
	assert_int_equal(x->c.edge_hop, NHOPS);

	/* BEGIN with an empty address (rend-spec-v3 4.2): no real hop
	 * recognizes it, the service opens it. */
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "", 0, 80, 0, &sid, &cl), 0);
	assert_int_equal(relays_peel(x, cl.payload), -1);
	assert_true(hs_hop_open_in(&x->service, cl.payload));
	assert_int_equal(relay_parse(cl.payload, &m, &why), PARSE_OK);
	assert_int_equal(m.command, RELAY_BEGIN);
	assert_int_equal(m.stream_id, sid);
	assert_int_equal(m.length, 4);
	assert_memory_equal(m.data, ":80\0", 4);

	/* CONNECTED and DATA from the service come out as events of the
	 * virtual hop. */
	service_send(x, &cl, RELAY_CONNECTED, sid, NULL, 0);
	assert_int_equal(input(x, &cl, ev), 1);
	assert_int_equal(ev[0].type, CIRC_EV_CONNECTED);
	assert_int_equal(ev[0].hop, NHOPS);
	service_send(x, &cl, RELAY_DATA, sid, "hello", 5);
	assert_int_equal(input(x, &cl, ev), 1);
	assert_int_equal(ev[0].type, CIRC_EV_DATA);
	assert_int_equal(ev[0].u.data.len, 5);
	assert_memory_equal(ev[0].u.data.data, "hello", 5);

	/* Our DATA reaches the service intact. */
	assert_int_equal(circ_stream_data(&x->c, sid, (const uint8_t *)"abc", 3, 1000, &taken, outp, 4, &nout), 0);
	assert_int_equal(taken, 3);
	assert_int_equal(nout, 1);
	assert_int_equal(relays_peel(x, out[0].payload), -1);
	assert_true(hs_hop_open_in(&x->service, out[0].payload));
	assert_int_equal(relay_parse(out[0].payload, &m, &why), PARSE_OK);
	assert_int_equal(m.command, RELAY_DATA);
	assert_memory_equal(m.data, "abc", 3);

	/* A cell the service did not seal (one flipped byte) is recognized
	 * by nobody: the circuit closes. */
	service_send(x, &cl, RELAY_DATA, sid, "x", 1);
	cl.payload[100] ^= 1;
	assert_int_equal(input(x, &cl, ev), 1);
	assert_int_equal(ev[0].type, CIRC_EV_CLOSED);
	fx_free(x);
}

static void test_hs_sendme_to_the_service_carries_the_virtual_hop_digest(void **state)
{
	struct fx *x = fx_new();
	struct circ_event ev[2];
	struct cell cl, out[4];
	struct cell *outp[4] = { &out[0], &out[1], &out[2], &out[3] };
	struct relay_msg m;
	struct relay_sendme sm;
	const char *why = NULL;
	uint8_t tag[20];
	size_t nout = 0;
	uint16_t sid = 0;

	(void)state;
	assert_int_equal(circ_hs_join(&x->c, x->keys, NULL), 0);
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "", 0, 80, 0, &sid, &cl), 0);
	assert_int_equal(relays_peel(x, cl.payload), -1);
	assert_true(hs_hop_open_in(&x->service, cl.payload));
	service_send(x, &cl, RELAY_CONNECTED, sid, NULL, 0);
	assert_int_equal(input(x, &cl, ev), 1);
	/* tor-spec 7.3: after 100 DATA cells the client acks with a SENDME v1
	 * whose tag is the running digest after the 100th: here the service
	 * hop's SHA3 state, cut to 20 bytes. */
	for (int i = 0; i < CIRC_WINDOW_INC; i++) {
		service_send(x, &cl, RELAY_DATA, sid, "d", 1);
		if (i == CIRC_WINDOW_INC - 1)
			hs_hop_digest(&x->service, true, tag);
		assert_int_equal(input(x, &cl, ev), 1);
	}
	assert_true(circ_has_output(&x->c));
	circ_flush(&x->c, outp, 4, &nout);
	/* Stream SENDMEs (tor-spec 7.4, every 50 cells) and the circuit's. */
	for (size_t i = 0; i < nout; i++) {
		assert_int_equal(relays_peel(x, out[i].payload), -1);
		assert_true(hs_hop_open_in(&x->service, out[i].payload));
		assert_int_equal(relay_parse(out[i].payload, &m, &why), PARSE_OK);
		assert_int_equal(m.command, RELAY_SENDME);
		if (m.stream_id == 0)
			break;
	}
	assert_int_equal(m.stream_id, 0);
	assert_int_equal(relay_sendme_parse(m.data, m.length, &sm, &why), PARSE_OK);
	assert_int_equal(sm.version, 1);
	assert_memory_equal(sm.digest, tag, 20);
	fx_free(x);
}

static void test_hs_join_is_refused_twice_and_ends_hs_cells_and_extends(void **state)
{
	struct fx *x = fx_new();
	struct hop_target t;
	struct cell cl;
	uint16_t sid;

	(void)state;
	memset(&t, 0, sizeof(t));
	/* Not with a stream open on the circuit. */
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN_DIR, "", 0, 0, 0, &sid, &cl), 0);
	assert_int_equal(circ_hs_join(&x->c, x->keys, NULL), -EINVAL);
	assert_int_equal(circ_stream_end(&x->c, sid, RELAY_END_DONE, &cl), 0);
	assert_int_equal(circ_hs_join(&x->c, x->keys, NULL), 0);
	assert_int_equal(circ_hs_join(&x->c, x->keys, NULL), -EINVAL);
	assert_int_equal(circ_send_hs(&x->c, RELAY_INTRODUCE1, (const uint8_t *)"x", 1, &cl), -EINVAL);
	assert_int_equal(circ_begin_extend(&x->c, &t, &cl), -EINVAL);
	/* An empty address is only for a joined circuit. */
	fx_free(x);
	x = fx_new();
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "", 0, 80, 0, &sid, &cl), -EINVAL);
	assert_int_equal(circ_send_hs(&x->c, RELAY_INTRODUCE1, cl.payload, RELAY_DATA_MAX + 1, &cl), -EINVAL);
	fx_free(x);
}

static void test_hs_join_with_cc_runs_vegas_with_the_descriptor_sendme_inc(void **state)
{
	struct fx *x = fx_new();
	struct circ_event ev[2];
	struct cell cl, out[4];
	struct cell *outp[4] = { &out[0], &out[1], &out[2], &out[3] };
	struct relay_msg m;
	struct cc_params cp;
	const char *why = NULL;
	size_t nout = 0;
	uint16_t sid = 0;
	int sendmes = 0;

	(void)state;
	cc_params_default(&cp);
	cp.sendme_inc = 0;
	assert_int_equal(circ_hs_join(&x->c, x->keys, &cp), -EINVAL);
	cp.sendme_inc = 31; /* "flow-control 1-2 31" */
	assert_int_equal(circ_hs_join(&x->c, x->keys, &cp), 0);
	assert_true(x->c.cc_on);
	assert_int_equal(x->c.sendme_inc, 31);
	assert_int_equal(circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "", 0, 80, 0, &sid, &cl), 0);
	assert_int_equal(relays_peel(x, cl.payload), -1);
	assert_true(hs_hop_open_in(&x->service, cl.payload));
	service_send(x, &cl, RELAY_CONNECTED, sid, NULL, 0);
	assert_int_equal(input(x, &cl, ev), 1);
	/* 62 DATA cells: two circuit SENDMEs (every 31), no stream SENDME
	 * (324 §4: streams use XON/XOFF). */
	for (int i = 0; i < 62; i++) {
		service_send(x, &cl, RELAY_DATA, sid, "d", 1);
		assert_int_equal(input(x, &cl, ev), 1);
		while (circ_has_output(&x->c)) {
			circ_flush(&x->c, outp, 4, &nout);
			for (size_t k = 0; k < nout; k++) {
				assert_int_equal(relays_peel(x, out[k].payload), -1);
				assert_true(hs_hop_open_in(&x->service, out[k].payload));
				assert_int_equal(relay_parse(out[k].payload, &m, &why), PARSE_OK);
				assert_int_equal(m.command, RELAY_SENDME);
				assert_int_equal(m.stream_id, 0);
				sendmes++;
			}
		}
	}
	assert_int_equal(sendmes, 2);
	fx_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hs_cells_go_to_the_last_real_hop_and_come_back_as_events),
		cmocka_unit_test(test_hs_join_streams_talk_to_the_service_through_the_virtual_hop),
		cmocka_unit_test(test_hs_sendme_to_the_service_carries_the_virtual_hop_digest),
		cmocka_unit_test(test_hs_join_is_refused_twice_and_ends_hs_cells_and_extends),
		cmocka_unit_test(test_hs_join_with_cc_runs_vegas_with_the_descriptor_sendme_inc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
