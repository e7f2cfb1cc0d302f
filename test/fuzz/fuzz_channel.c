/* libFuzzer target for the client link handshake (proto/channel.h): the
 * first input byte picks how the rest is cut into reads (1..256 bytes), the
 * rest is what a relay sends after TLS. The bytes are fed the way
 * net/channel.c feeds them: unconsumed bytes are presented again with the
 * next read. The TLS certificate and time are the generated vectors', so a
 * seed built from them reaches CERTS validation and NETINFO.
 * Seeds: test/fuzz/corpus/channel/ (a whole valid relay handshake). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/bug.h"
#include "proto/channel.h"
#include "test/vectors/certs/certs_vectors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[70000];
	struct channel_hs h;
	struct cell_addr peer;
	static const uint8_t ip[4] = { 127, 0, 0, 1 };
	uint8_t v[16], out[CELL_LEN];
	size_t have = 0, off = 1, step;

	if (size < 1)
		return 0;
	step = (size_t)data[0] + 1;
	channel_hs_addr_set(&peer, ip, 4);
	channel_hs_init(&h, NULL, &peer);
	BUG_ON(channel_hs_start(&h, v, sizeof(v)) <= 0);
	while (off < size) {
		size_t n = size - off < step ? size - off : step, consumed = 0;
		struct wr w = wr_init(out, sizeof(out));
		enum channel_hs_result r;

		if (have + n > sizeof(buf))
			return 0;
		memcpy(buf + have, data + off, n);
		have += n;
		off += n;
		r = channel_hs_input(&h, buf, have, &consumed, &w, cv_tls_der, sizeof(cv_tls_der),
				     (time_t)CV_NOW);
		BUG_ON(consumed > have);
		if (r == CHANNEL_HS_ERROR) {
			BUG_ON(channel_hs_error(&h)[0] == '\0' || w.len != 0);
			return 0;
		}
		if (r == CHANNEL_HS_DONE) {
			BUG_ON(w.len != CELL_LEN || h.link_proto < 4 || h.link_proto > 5);
			return 0;
		}
		BUG_ON(w.len != 0);
		memmove(buf, buf + consumed, have - consumed);
		have -= consumed;
	}
	return 0;
}
