/* libFuzzer target for proto/relay.h: the relay header over a 509-byte
 * payload and every relay body parser, plus re-encode checks where a parse
 * must round-trip. Input: up to 509 bytes of decrypted payload (shorter input
 * is zero-padded), then every body parser also runs on the raw input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/relay.h"

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			abort(); \
	} while (0)

static void begin_check(const uint8_t *p, size_t n)
{
	struct relay_begin b;
	uint8_t out[RELAY_DATA_MAX + 300];
	struct relay_begin again;
	ssize_t len;

	if (relay_begin_parse(p, n, &b, NULL) != PARSE_OK)
		return;
	CHECK(b.host_len > 0 && b.port > 0);
	len = relay_begin_encode(out, sizeof(out), b.host, b.host_len, b.port, b.flags);
	CHECK(len > 0);
	CHECK(relay_begin_parse(out, (size_t)len, &again, NULL) == PARSE_OK);
	CHECK(again.port == b.port && again.flags == b.flags && again.host_len == b.host_len);
	CHECK(memcmp(again.host, b.host, b.host_len) == 0);
}

static void extend2_check(const uint8_t *p, size_t n)
{
	struct relay_extend2 e;
	uint8_t out[4096];
	ssize_t len;

	if (n > sizeof(out) || relay_extend2_parse(p, n, &e, NULL) != PARSE_OK)
		return;
	len = relay_extend2_encode(out, sizeof(out), &e);
	CHECK(len > 0 && (size_t)len <= n && memcmp(out, p, (size_t)len) == 0);
}

static void resolved_check(const uint8_t *p, size_t n)
{
	struct relay_resolved_answer a[4];
	size_t total = 0;

	if (n <= 4096 && relay_resolved_parse(p, n, a, 4, &total, NULL) == PARSE_OK && total <= 4) {
		uint8_t out[4096];
		ssize_t len = relay_resolved_encode(out, sizeof(out), a, total);

		CHECK(len == (ssize_t)n && memcmp(out, p, n) == 0);
	}
}

static void hs_bodies(const uint8_t *p, size_t n)
{
	struct relay_introduce1 i1;
	struct relay_introduce_ack ia;
	struct relay_rendezvous2 r2;
	const uint8_t *cookie;
	uint8_t out[4096];

	if (relay_introduce1_parse(p, n, &i1, NULL) == PARSE_OK && n <= sizeof(out)) {
		ssize_t len = relay_introduce1_encode(out, sizeof(out), &i1);

		CHECK(len == (ssize_t)n && memcmp(out, p, n) == 0);
	}
	(void)relay_introduce_ack_parse(p, n, &ia, NULL);
	(void)relay_rendezvous2_parse(p, n, &r2, NULL);
	(void)relay_establish_rendezvous_parse(p, n, &cookie, NULL);
}

static void bodies(const uint8_t *p, size_t n)
{
	struct relay_end e;
	struct relay_connected c;
	struct relay_sendme s;
	struct cell_created2 c2;
	struct relay_xon x;
	const char *name;
	size_t nl;
	uint8_t r;

	begin_check(p, n);
	extend2_check(p, n);
	resolved_check(p, n);
	hs_bodies(p, n);
	CHECK(relay_end_parse(p, n, &e, NULL) == PARSE_OK);
	(void)relay_end_reason_text(e.reason);
	(void)relay_connected_parse(p, n, &c, NULL);
	(void)relay_sendme_parse(p, n, &s, NULL);
	(void)relay_extended2_parse(p, n, &c2, NULL);
	(void)relay_truncated_parse(p, n, &r, NULL);
	(void)relay_resolve_parse(p, n, &name, &nl, NULL);
	(void)relay_xoff_parse(p, n, NULL);
	(void)relay_xon_parse(p, n, &x, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t payload[CELL_PAYLOAD_LEN] = { 0 };
	struct relay_msg m;

	memcpy(payload, data, size < sizeof(payload) ? size : sizeof(payload));
	if (relay_parse(payload, &m, NULL) == PARSE_OK) {
		CHECK(m.length <= RELAY_DATA_MAX);
		(void)relay_command_name(m.command);
		/* The body parsers on an exact-size copy, so ASan sees overreads. */
		uint8_t *copy = malloc(m.length ? m.length : 1);

		CHECK(copy != NULL);
		memcpy(copy, m.data, m.length);
		bodies(copy, m.length);
		free(copy);
	}
	bodies(data, size);
	return 0;
}
