/* libFuzzer target for proto/socks: drives a whole handshake over the
 * input, once in one buffer and once byte-chunked, and traps if the two
 * disagree or an invariant breaks (NEED_MORE consumes nothing and changes
 * nothing; consumed <= len; hostnames pass the validity check). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/socks.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

struct outcome {
	struct socks_parser p;
	enum parse_result last;
	size_t used;
};

/* Feed data[0..len) in pieces of at most chunk bytes, as a session would. */
static void drive(const uint8_t *data, size_t len, size_t chunk, struct outcome *o)
{
	size_t have = 0;

	socks_parser_init(&o->p);
	o->used = 0;
	for (;;) {
		struct socks_parser before = o->p;
		struct socks_step s;
		size_t avail = have - o->used;

		o->last = socks_parse(&o->p, data + o->used, avail, &s);
		CHECK(s.consumed <= avail && s.reply_len <= SOCKS_REPLY_MAX);
		if (o->last == PARSE_NEED_MORE) {
			CHECK(s.consumed == 0 && s.event == SOCKS_EV_NONE);
			CHECK(memcmp(&before, &o->p, sizeof(before)) == 0);
			if (have == len)
				return;
			have = have + chunk > len ? len : have + chunk;
			continue;
		}
		if (o->last == PARSE_INVALID) {
			CHECK(s.event == SOCKS_EV_ERROR && s.reason);
			return;
		}
		o->used += s.consumed;
		if (s.event == SOCKS_EV_REQUEST)
			return;
		CHECK(s.event == SOCKS_EV_REPLY && s.consumed > 0);
	}
}

static void check_request(const struct socks_request *r)
{
	uint8_t out[SOCKS5_REPLY_ENCODED_MAX];
	char text[SOCKS_HOST_MAX + 1];

	if (r->dest.type == SOCKS_ADDR_HOSTNAME) {
		CHECK(r->dest.host_len > 0 && strlen(r->dest.host) == r->dest.host_len);
		CHECK(socks_host_is_valid(r->dest.host, r->dest.host_len));
	}
	CHECK(socks_addr_format(&r->dest, text, sizeof(text)) > 0);
	CHECK(socks5_reply_encode(out, sizeof(out), SOCKS5_SUCCEEDED, &r->dest, r->port) > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct outcome whole, bytes;
	uint8_t ip[16];

	drive(data, len, len ? len : 1, &whole);
	drive(data, len, 1, &bytes);
	CHECK(whole.last == bytes.last && whole.used == bytes.used);
	CHECK(memcmp(&whole.p, &bytes.p, sizeof(whole.p)) == 0);
	if (whole.last == PARSE_OK)
		check_request(&whole.p.req);
	/* The text helpers take any bytes. */
	(void)socks_host_is_valid((const char *)data, len);
	(void)socks_host_is_onion((const char *)data, len);
	(void)socks_ipv4_parse((const char *)data, len, ip);
	(void)socks_ipv6_parse((const char *)data, len, ip);
	return 0;
}
