/* libFuzzer target for proto/cell.h: the framer over a byte stream and every
 * cell body parser, plus re-encode checks where a parse must round-trip.
 * Input: byte 0 picks the link protocol (0, 4 or 5); the rest is a stream. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cell.h"

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			abort(); \
	} while (0)

static void certs_round_trip(const uint8_t *p, size_t n)
{
	struct cell_certs c;
	uint8_t out[CELL_VAR_PAYLOAD_MAX + 1];
	ssize_t len;

	if (n > sizeof(out) || cell_certs_parse(p, n, &c, NULL) != PARSE_OK)
		return;
	len = cell_certs_encode(out, sizeof(out), &c);
	CHECK(len > 0 && (size_t)len <= n && memcmp(out, p, (size_t)len) == 0);
}

static void bodies(uint8_t command, const uint8_t *p, size_t n)
{
	struct cell_auth_challenge ac;
	struct cell_netinfo ni;
	struct cell_create2 c2;
	struct cell_created2 d2;
	struct cell_padding_negotiate pn;
	uint16_t v;
	uint8_t r;
	const char *why = NULL;

	switch (command) {
	case CELL_VERSIONS:
		if (cell_versions_choose(p, n, &v, &why) == PARSE_OK)
			CHECK(v == 4 || v == 5);
		break;
	case CELL_CERTS:
		certs_round_trip(p, n);
		break;
	case CELL_AUTH_CHALLENGE:
		if (cell_auth_challenge_parse(p, n, &ac, &why) == PARSE_OK)
			(void)cell_auth_challenge_has_method(&ac, 3);
		break;
	case CELL_NETINFO:
		(void)cell_netinfo_parse(p, n, &ni, &why);
		break;
	case CELL_CREATE2:
		if (cell_create2_parse(p, n, &c2, &why) == PARSE_OK)
			CHECK(c2.hdata + c2.hlen <= p + n);
		break;
	case CELL_CREATED2:
		if (cell_created2_parse(p, n, &d2, &why) == PARSE_OK)
			CHECK(d2.hdata + d2.hlen <= p + n);
		break;
	case CELL_DESTROY:
		if (cell_destroy_parse(p, n, &r, &why) == PARSE_OK)
			(void)cell_destroy_reason_name(r);
		break;
	case CELL_PADDING_NEGOTIATE:
		(void)cell_padding_negotiate_parse(p, n, &pn, &why);
		break;
	default:
		(void)cell_command_name(command);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int protos[] = { 0, 4, 5, 3 };
	static const uint8_t all[] = {
		CELL_VERSIONS, CELL_CERTS, CELL_AUTH_CHALLENGE, CELL_NETINFO, CELL_CREATE2,
		CELL_CREATED2, CELL_DESTROY, CELL_PADDING_NEGOTIATE,
	};
	struct cell_view v;
	size_t used, off = 1;
	int proto;

	if (size < 1)
		return 0;
	proto = protos[data[0] & 3];
	/* Every body parser on the raw input, whatever the framer says. */
	for (size_t i = 0; i < sizeof(all); i++)
		bodies(all[i], data + 1, size - 1);
	while (off < size) {
		enum parse_result r = cell_frame(data + off, size - off, proto, &v, &used, NULL);

		if (r != PARSE_OK)
			break;
		CHECK(used > 0 && used <= size - off);
		CHECK(v.payload + v.payload_len == data + off + used);
		bodies(v.command, v.payload, v.payload_len);
		off += used;
		/* After the first VERSIONS cell the framer runs on protocol 4. */
		if (proto == 0)
			proto = 4;
	}
	return 0;
}
