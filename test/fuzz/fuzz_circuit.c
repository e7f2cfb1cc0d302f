/* libFuzzer target for proto/circuit: arbitrary relay message sequences
 * (and raw cells) reaching an established 3-hop client circuit, with and
 * without congestion control. The input is encrypted by the simulated relay
 * chain (test/unit/sim_relay.h) so it reaches the state machine past the
 * crypto. Must never crash, overread or trip a BUG_ON.
 *
 * Input: byte 0 picks the circuit (bit 0: congestion control); then records
 *   op (1) | a (1) | b (1) | len (1) | body (len bytes, clipped)
 * op % 4: 0 = relay message a from hop op/4 % 3 on stream b;
 *         1 = client sends len bytes on its stream;
 *         2 = raw cell with command a, body as payload;
 *         3 = client toggles reading, opens or ends a stream. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SIM_OUTQ 512
#include "core/compiler.h"
#include "test/unit/sim_relay.h"

static struct hx *base[2];
static struct hx work;

static struct hx *make_base(bool cc)
{
	struct hx *x = calloc(1, sizeof(*x));

	SIM_CHECK(x);
	hx_init(x, 3, cc, 31);
	SIM_CHECK(hx_build(x, false, cc) == 3);
	SIM_CHECK(hx_open(x) != 0);
	return x;
}

static void client_op(struct hx *x, uint8_t a, uint16_t sid)
{
	switch (a % 4) {
	case 0:
		circ_stream_set_reading(&x->c, sid, (a >> 2) & 1);
		break;
	case 1:
		{
			uint16_t id;
			int open = 0;

			for (int i = 0; i < SIM_STREAMS; i++)
				open += x->s.st[i].open;
			if (open < 8 &&
			    circ_stream_open(&x->c, CIRC_STREAM_BEGIN, "x.y", 3, 80, 0, &id,
					     &x->cbuf[0]) == 0)
				sim_from_client(&x->s, &x->cbuf[0]);
		}
		break;
	case 2:
		if (circ_stream_end(&x->c, sid, a, &x->cbuf[0]) == 0)
			sim_from_client(&x->s, &x->cbuf[0]);
		break;
	default:
		hx_flush(x);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hx *x = &work;
	size_t off = 1;

	if (size < 1)
		return 0;
	if (!base[0]) {
		base[0] = make_base(false);
		base[1] = make_base(true);
	}
	memcpy(x, base[data[0] & 1], sizeof(*x));
	for (int i = 0; i < 64; i++)
		x->cptr[i] = &x->cbuf[i];
	x->c.rng = &x->rng;
	while (off + 4 <= size && x->c.state != CIRC_ST_CLOSED) {
		uint8_t op = data[off], a = data[off + 1], b = data[off + 2];
		size_t len = MIN((size_t)data[off + 3], size - off - 4);
		const uint8_t *body = data + off + 4;
		uint16_t sid = x->c.streams[b % CIRC_STREAMS_MAX].id;

		off += 4 + len;
		switch (op % 4) {
		case 0:
			if (x->s.out_len < SIM_OUTQ - 64)
				sim_send_from(&x->s, (op / 4) % 3, a, b & 1 ? sid : b,
					      body, MIN(len, (size_t)RELAY_DATA_MAX), NULL);
			break;
		case 1:
			if (circ_can_send(&x->c, sid))
				hx_send(x, sid, len);
			break;
		case 2: {
			uint8_t payload[CELL_PAYLOAD_LEN] = { 0 };

			memcpy(payload, body, MIN(len, sizeof(payload)));
			if (x->s.out_len < SIM_OUTQ - 64 && a != CELL_RELAY && a != CELL_RELAY_EARLY)
				sim_send_cell(&x->s, a, payload, sizeof(payload));
			break;
		}
		default:
			client_op(x, a, sid);
		}
		hx_deliver(x);
	}
	return 0;
}
