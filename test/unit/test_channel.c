/* The client link handshake state machine (proto/channel.h), driven with
 * crafted relay byte streams. The certificates are the vectors of
 * test/vectors/gen_certs.py (an independent computation of cert-spec and
 * tor-spec 4.2 with python3-cryptography), so a handshake that reaches
 * "open" has validated a real certificate chain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "proto/channel.h"
#include "test/vectors/certs/certs_vectors.h"

#define STREAM_MAX 8192

struct stream {
	uint8_t b[STREAM_MAX];
	size_t len;
	size_t hs_len; /* length of the handshake part */
};

static const uint8_t relay_ip[4] = { 127, 0, 0, 1 };
static const uint8_t client_ip[4] = { 10, 1, 2, 3 };

/* The relay's VERSIONS cell written byte by byte (2-byte circuit ID). */
static void put_versions(struct stream *s, const uint16_t *v, size_t n)
{
	uint8_t *p = s->b + s->len;

	p[0] = 0;
	p[1] = 0;
	p[2] = CELL_VERSIONS;
	p[3] = (uint8_t)((n * 2) >> 8);
	p[4] = (uint8_t)(n * 2);
	for (size_t i = 0; i < n; i++) {
		p[5 + 2 * i] = (uint8_t)(v[i] >> 8);
		p[6 + 2 * i] = (uint8_t)v[i];
	}
	s->len += 5 + 2 * n;
}

static void put_var(struct stream *s, uint8_t cmd, const uint8_t *body, size_t len)
{
	ssize_t n = cell_var_encode(s->b + s->len, sizeof(s->b) - s->len, 4, 0, cmd, body, len);

	assert_true(n > 0);
	s->len += (size_t)n;
}

static void put_fixed(struct stream *s, uint32_t circ, uint8_t cmd, const uint8_t *body, size_t len)
{
	ssize_t n = cell_fixed_encode(s->b + s->len, sizeof(s->b) - s->len, circ, cmd, body, len);

	assert_int_equal(n, CELL_LEN);
	s->len += CELL_LEN;
}

static void put_auth_challenge(struct stream *s)
{
	uint8_t body[64];
	uint8_t chal[32];
	uint16_t methods[2] = { 1, 3 };
	ssize_t n;

	memset(chal, 0x5a, sizeof(chal));
	n = cell_auth_challenge_encode(body, sizeof(body), chal, methods, 2);
	assert_true(n > 0);
	put_var(s, CELL_AUTH_CHALLENGE, body, (size_t)n);
}

/* NETINFO as a relay sends it: its time, our address, its own address. */
static void put_netinfo(struct stream *s, uint32_t t)
{
	uint8_t body[32] = { 0 };
	size_t n = 0;

	be32_store(body, t);
	n = 4;
	body[n++] = 4;
	body[n++] = 4;
	memcpy(body + n, client_ip, 4);
	n += 4;
	body[n++] = 1;
	body[n++] = 4;
	body[n++] = 4;
	memcpy(body + n, relay_ip, 4);
	n += 4;
	put_fixed(s, 0, CELL_NETINFO, body, n);
}

/* The relay's whole side of a good handshake, offering versions 3-5. */
static void good_stream(struct stream *s)
{
	static const uint16_t v[] = { 3, 4, 5 };

	memset(s, 0, sizeof(*s));
	put_versions(s, v, 3);
	put_var(s, CELL_CERTS, cv_body, sizeof(cv_body));
	put_auth_challenge(s);
	put_netinfo(s, (uint32_t)CV_NOW + 7);
	s->hs_len = s->len;
}

static void hs_begin(struct channel_hs *h, const struct relay_identity_expect *e)
{
	struct cell_addr a;
	uint8_t out[64];

	channel_hs_addr_set(&a, relay_ip, 4);
	channel_hs_init(h, e, &a);
	assert_true(channel_hs_start(h, out, sizeof(out)) > 0);
}

static void expect_good_ids(struct relay_identity_expect *e)
{
	memset(e, 0, sizeof(*e));
	e->has_rsa = true;
	e->has_ed = true;
	memcpy(e->rsa_id, cv_rsa_id, 20);
	memcpy(e->ed_id, cv_ed_id, 32);
}

static enum channel_hs_result run(struct channel_hs *h, const struct stream *s, size_t *consumed,
				  uint8_t *out, size_t *outlen)
{
	struct wr w = wr_init(out, CELL_LEN);
	enum channel_hs_result r = channel_hs_input(h, s->b, s->len, consumed, &w, cv_tls_der,
						    sizeof(cv_tls_der), (time_t)CV_NOW);

	*outlen = w.len;
	return r;
}

static void test_channel_hs_start_sends_versions_4_and_5(void **state)
{
	struct channel_hs h;
	uint8_t out[64];
	static const uint8_t want[] = { 0, 0, 7, 0, 4, 0, 4, 0, 5 };

	(void)state;
	channel_hs_init(&h, NULL, NULL);
	assert_int_equal(channel_hs_start(&h, out, sizeof(out)), sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(h.state, CHANNEL_HS_WAIT_VERSIONS);
}

static void test_channel_hs_opens_with_validated_identity_and_answers_netinfo(void **state)
{
	struct channel_hs h;
	struct relay_identity_expect e;
	struct stream s;
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	good_stream(&s);
	expect_good_ids(&e);
	hs_begin(&h, &e);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_DONE);
	assert_int_equal(consumed, s.len);
	assert_int_equal(h.link_proto, 5);
	assert_memory_equal(h.proven.rsa_id, cv_rsa_id, 20);
	assert_memory_equal(h.proven.ed_id, cv_ed_id, 32);
	assert_true(h.got_auth_challenge);
	assert_int_equal(h.peer_time, (uint32_t)CV_NOW + 7);
	assert_int_equal(h.clock_skew, 7);
	assert_true(h.our_addr_seen.known);
	assert_memory_equal(h.our_addr_seen.bytes, client_ip, 4);
	assert_true(h.peer_addr_canonical);
	/* Our NETINFO (tor-spec 4.5): circuit 0, command 8, time 0, the
	 * relay's address as OTHERADDR, no addresses of our own. */
	assert_int_equal(outlen, CELL_LEN);
	{
		static const uint8_t want[] = { 0, 0, 0, 0, 8, 0, 0, 0, 0, 4, 4, 127, 0, 0, 1, 0 };
		assert_memory_equal(out, want, sizeof(want));
		for (size_t i = sizeof(want); i < CELL_LEN; i++)
			assert_int_equal(out[i], 0);
	}
	assert_string_equal(channel_hs_error(&h), "");
}

static void test_channel_hs_accepts_any_identity_when_none_expected(void **state)
{
	struct channel_hs h;
	struct stream s;
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	good_stream(&s);
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_DONE);
	assert_memory_equal(h.proven.rsa_id, cv_rsa_id, 20);
}

static void test_channel_hs_picks_4_when_relay_offers_only_4(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const uint16_t v[] = { 4 };
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	memset(&s, 0, sizeof(s));
	put_versions(&s, v, 1);
	put_var(&s, CELL_CERTS, cv_body, sizeof(cv_body));
	put_netinfo(&s, 1);
	hs_begin(&h, NULL);
	/* AUTH_CHALLENGE is optional for us: NETINFO right after CERTS opens. */
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_DONE);
	assert_int_equal(h.link_proto, 4);
}

static void test_channel_hs_rejects_versions_with_no_common_version(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const uint16_t v[] = { 1, 2, 3, 6 };
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	memset(&s, 0, sizeof(s));
	put_versions(&s, v, 4);
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_int_equal(h.error, CHANNEL_HS_ERR_VERSION);
	assert_non_null(strstr(channel_hs_error(&h), "VERSIONS"));
	assert_int_equal(outlen, 0);
	/* Failed stays failed. */
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
}

static void test_channel_hs_rejects_odd_length_versions(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const uint8_t odd[] = { 0, 0, 7, 0, 3, 0, 4, 5 };
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	memset(&s, 0, sizeof(s));
	memcpy(s.b, odd, sizeof(odd));
	s.len = sizeof(odd);
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_int_equal(h.error, CHANNEL_HS_ERR_VERSION);
}

static void test_channel_hs_rejects_non_tor_bytes(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const char http[] = "HTTP/1.0 400 Bad Request\r\n\r\n";
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	memset(&s, 0, sizeof(s));
	memcpy(s.b, http, sizeof(http) - 1);
	s.len = sizeof(http) - 1;
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_int_equal(consumed, 0);
	assert_true(strlen(channel_hs_error(&h)) > 0);
}

static void test_channel_hs_rejects_truncated_certs_entry(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const uint16_t v[] = { 5 };
	uint8_t bad[16] = { 2, 4, 0, 200, 1, 2, 3 }; /* 2 certs; the first claims 200 bytes */
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	memset(&s, 0, sizeof(s));
	put_versions(&s, v, 1);
	put_var(&s, CELL_CERTS, bad, sizeof(bad));
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_int_equal(h.error, CHANNEL_HS_ERR_CERTS);
	assert_non_null(strstr(channel_hs_error(&h), "CERTS"));
}

/* A CERTS cell whose link cert signs a different TLS certificate. */
static void test_channel_hs_rejects_certs_not_bound_to_tls_cert(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const uint16_t v[] = { 5 };
	uint8_t body[2048];
	struct cell_certs c = { 0 };
	ssize_t n;
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	c.n = 4;
	c.e[0] = (struct cell_cert_entry){ 2, sizeof(cv_t2), cv_t2 };
	c.e[1] = (struct cell_cert_entry){ 4, sizeof(cv_t4), cv_t4 };
	c.e[2] = (struct cell_cert_entry){ 5, sizeof(cv_t5_wrong_tls), cv_t5_wrong_tls };
	c.e[3] = (struct cell_cert_entry){ 7, sizeof(cv_t7), cv_t7 };
	n = cell_certs_encode(body, sizeof(body), &c);
	assert_true(n > 0);
	memset(&s, 0, sizeof(s));
	put_versions(&s, v, 1);
	put_var(&s, CELL_CERTS, body, (size_t)n);
	put_netinfo(&s, 1);
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_int_equal(h.error, CHANNEL_HS_ERR_CERTS);
	assert_int_equal(outlen, 0);
}

static void test_channel_hs_rejects_expired_certs(void **state)
{
	struct channel_hs h;
	struct stream s;
	struct wr w;
	uint8_t out[CELL_LEN];
	size_t consumed;

	(void)state;
	good_stream(&s);
	hs_begin(&h, NULL);
	w = wr_init(out, sizeof(out));
	/* A year after the vectors' "now": the Ed25519 certs have expired. */
	assert_int_equal(channel_hs_input(&h, s.b, s.len, &consumed, &w, cv_tls_der,
					  sizeof(cv_tls_der), (time_t)CV_NOW + 365 * 86400),
			 CHANNEL_HS_ERROR);
	assert_int_equal(h.error, CHANNEL_HS_ERR_CERTS);
}

static void test_channel_hs_refuses_wrong_rsa_identity_naming_both(void **state)
{
	struct channel_hs h;
	struct relay_identity_expect e;
	struct stream s;
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	good_stream(&s);
	expect_good_ids(&e);
	memset(e.rsa_id, 0xAB, 20);
	hs_begin(&h, &e);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_int_equal(h.error, CHANNEL_HS_ERR_IDENTITY);
	assert_non_null(strstr(channel_hs_error(&h), "ABABABABABABABABABABABABABABABABABABABAB"));
	assert_non_null(strstr(channel_hs_error(&h), CV_RSA_ID_HEX));
	assert_int_equal(outlen, 0);
}

static void test_channel_hs_refuses_wrong_ed25519_identity(void **state)
{
	struct channel_hs h;
	struct relay_identity_expect e;
	struct stream s;
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	good_stream(&s);
	expect_good_ids(&e);
	e.ed_id[0] ^= 1;
	hs_begin(&h, &e);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_int_equal(h.error, CHANNEL_HS_ERR_IDENTITY);
	assert_non_null(strstr(channel_hs_error(&h), CV_ED_ID_B64));
}

static void test_channel_hs_rejects_netinfo_before_certs(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const uint16_t v[] = { 5 };
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	memset(&s, 0, sizeof(s));
	put_versions(&s, v, 1);
	put_netinfo(&s, 1);
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_int_equal(h.error, CHANNEL_HS_ERR_PROTOCOL);
	assert_int_equal(outlen, 0);
}

static void test_channel_hs_rejects_circuit_cell_during_handshake(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const uint16_t v[] = { 5 };
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	memset(&s, 0, sizeof(s));
	put_versions(&s, v, 1);
	put_var(&s, CELL_CERTS, cv_body, sizeof(cv_body));
	put_fixed(&s, 0x80000001u, CELL_CREATED2, NULL, 0);
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_non_null(strstr(channel_hs_error(&h), "CREATED2"));
}

static void test_channel_hs_rejects_second_certs(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const uint16_t v[] = { 5 };
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	memset(&s, 0, sizeof(s));
	put_versions(&s, v, 1);
	put_var(&s, CELL_CERTS, cv_body, sizeof(cv_body));
	put_var(&s, CELL_CERTS, cv_body, sizeof(cv_body));
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_int_equal(h.error, CHANNEL_HS_ERR_PROTOCOL);
}

static void test_channel_hs_ignores_padding_and_later_versions(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const uint16_t v[] = { 5 };
	static const uint8_t pad[3] = { 1, 2, 3 };
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	memset(&s, 0, sizeof(s));
	/* VPADDING may come first, with a 2-byte circuit ID like VERSIONS. */
	s.b[2] = CELL_VPADDING;
	s.b[4] = 3;
	s.len = 8;
	put_versions(&s, v, 1);
	put_var(&s, CELL_VPADDING, pad, sizeof(pad));
	put_var(&s, CELL_VERSIONS, (const uint8_t *)"\0\3", 2);
	put_var(&s, CELL_CERTS, cv_body, sizeof(cv_body));
	put_fixed(&s, 0, CELL_PADDING, NULL, 0);
	put_auth_challenge(&s);
	put_netinfo(&s, 1);
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_DONE);
	assert_int_equal(consumed, s.len);
	assert_int_equal(h.link_proto, 5);
}

static void test_channel_hs_rejects_malformed_auth_challenge(void **state)
{
	struct channel_hs h;
	struct stream s;
	static const uint16_t v[] = { 5 };
	uint8_t shortac[10] = { 0 };
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	memset(&s, 0, sizeof(s));
	put_versions(&s, v, 1);
	put_var(&s, CELL_CERTS, cv_body, sizeof(cv_body));
	put_var(&s, CELL_AUTH_CHALLENGE, shortac, sizeof(shortac));
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
	assert_non_null(strstr(channel_hs_error(&h), "AUTH_CHALLENGE"));
}

static void test_channel_hs_leaves_cells_after_netinfo_unconsumed(void **state)
{
	struct channel_hs h;
	struct stream s;
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	good_stream(&s);
	put_fixed(&s, 0x80000001u, CELL_DESTROY, (const uint8_t *)"\x09", 1);
	hs_begin(&h, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_DONE);
	assert_int_equal(consumed, s.hs_len);
}

/* Every proper prefix: NEED_MORE with only whole cells consumed; then the
 * rest completes the handshake. */
static void test_channel_hs_every_prefix_needs_more_then_completes(void **state)
{
	struct stream s;

	(void)state;
	good_stream(&s);
	for (size_t cut = 0; cut < s.len; cut++) {
		struct channel_hs h;
		uint8_t out[CELL_LEN];
		struct wr w = wr_init(out, sizeof(out));
		size_t c1 = 0, c2 = 0;

		hs_begin(&h, NULL);
		assert_int_equal(channel_hs_input(&h, s.b, cut, &c1, &w, cv_tls_der,
						  sizeof(cv_tls_der), (time_t)CV_NOW),
				 CHANNEL_HS_NEED_MORE);
		assert_true(c1 <= cut);
		assert_int_equal(w.len, 0);
		assert_int_equal(channel_hs_input(&h, s.b + c1, s.len - c1, &c2, &w, cv_tls_der,
						  sizeof(cv_tls_der), (time_t)CV_NOW),
				 CHANNEL_HS_DONE);
		assert_int_equal(c1 + c2, s.len);
		assert_int_equal(w.len, CELL_LEN);
	}
}

static void test_channel_hs_fails_without_tls_certificate(void **state)
{
	struct channel_hs h;
	struct stream s;
	uint8_t out[CELL_LEN];
	struct wr w = wr_init(out, sizeof(out));
	size_t consumed;

	(void)state;
	good_stream(&s);
	hs_begin(&h, NULL);
	assert_int_equal(channel_hs_input(&h, s.b, s.len, &consumed, &w, NULL, 0, (time_t)CV_NOW),
			 CHANNEL_HS_ERROR);
	assert_int_equal(h.error, CHANNEL_HS_ERR_CERTS);
}

static void test_channel_hs_rejects_input_before_start(void **state)
{
	struct channel_hs h;
	struct stream s;
	uint8_t out[CELL_LEN];
	size_t consumed, outlen;

	(void)state;
	good_stream(&s);
	channel_hs_init(&h, NULL, NULL);
	assert_int_equal(run(&h, &s, &consumed, out, &outlen), CHANNEL_HS_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_channel_hs_start_sends_versions_4_and_5),
		cmocka_unit_test(test_channel_hs_opens_with_validated_identity_and_answers_netinfo),
		cmocka_unit_test(test_channel_hs_accepts_any_identity_when_none_expected),
		cmocka_unit_test(test_channel_hs_picks_4_when_relay_offers_only_4),
		cmocka_unit_test(test_channel_hs_rejects_versions_with_no_common_version),
		cmocka_unit_test(test_channel_hs_rejects_odd_length_versions),
		cmocka_unit_test(test_channel_hs_rejects_non_tor_bytes),
		cmocka_unit_test(test_channel_hs_rejects_truncated_certs_entry),
		cmocka_unit_test(test_channel_hs_rejects_certs_not_bound_to_tls_cert),
		cmocka_unit_test(test_channel_hs_rejects_expired_certs),
		cmocka_unit_test(test_channel_hs_refuses_wrong_rsa_identity_naming_both),
		cmocka_unit_test(test_channel_hs_refuses_wrong_ed25519_identity),
		cmocka_unit_test(test_channel_hs_rejects_netinfo_before_certs),
		cmocka_unit_test(test_channel_hs_rejects_circuit_cell_during_handshake),
		cmocka_unit_test(test_channel_hs_rejects_second_certs),
		cmocka_unit_test(test_channel_hs_ignores_padding_and_later_versions),
		cmocka_unit_test(test_channel_hs_rejects_malformed_auth_challenge),
		cmocka_unit_test(test_channel_hs_leaves_cells_after_netinfo_unconsumed),
		cmocka_unit_test(test_channel_hs_every_prefix_needs_more_then_completes),
		cmocka_unit_test(test_channel_hs_fails_without_tls_certificate),
		cmocka_unit_test(test_channel_hs_rejects_input_before_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
