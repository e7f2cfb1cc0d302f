/* libFuzzer target for the control port: proto/control's framing and
 * argument tokenizer over arbitrary bytes (every framed command's
 * arguments are tokenized to the end; consumed counts stay in bounds;
 * whole-buffer and byte-at-a-time framing agree), the reply writers'
 * length prediction, and a whole app/control session (NULL
 * authentication, a fake backend) fed the same bytes. The backend answers
 * CLOSESTREAM/CLOSECIRCUIT/circuit-status/orconn-status requests at once, later (after
 * the input, so the kept input runs then), or refuses them, in turn; the
 * last one may outlive its session. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/control.h"
#include "core/config.h"
#include "proto/control.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* Frame everything; return how many commands were framed. */
static size_t frame_all(const uint8_t *data, size_t len, size_t chunk, size_t *used_out)
{
	size_t used = 0, have = 0, ncmds = 0;

	for (;;) {
		struct control_cmd c;
		size_t n;
		const char *why;
		enum parse_result r = control_parse(data + used, have - used, &c, &n, &why);

		if (r == PARSE_NEED_MORE) {
			CHECK(n == 0);
			if (have == len)
				break;
			have = have + chunk > len ? len : have + chunk;
			continue;
		}
		if (r == PARSE_INVALID) {
			CHECK(why != NULL && n == 0);
			break;
		}
		CHECK(n > 0 && n <= have - used);
		CHECK(c.keyword >= (const char *)data + used && c.args + c.args_len <= (const char *)data + used + n);
		if (c.has_data)
			CHECK(c.data + c.data_len <= (const char *)data + used + n);
		{
			struct control_args a = control_args_init(c.args, c.args_len);
			struct control_arg arg;
			char buf[256];

			while (control_args_next(&a, &arg, buf, sizeof(buf), &why) == PARSE_OK)
				CHECK(arg.value_len < sizeof(buf) && strlen(arg.value) == arg.value_len);
		}
		used += n;
		ncmds++;
	}
	*used_out = used;
	return ncmds;
}

static void check_replies(const uint8_t *data, size_t len)
{
	size_t n = len > 1024 ? 1024 : len;
	size_t cap = control_reply_data_len(2, (const char *)data, n);
	uint8_t *buf = malloc(cap + 4 * n + 8);
	struct wr w = wr_init(buf, cap);

	control_reply_data(&w, 250, "k=", 2, (const char *)data, n);
	CHECK(!w.err && w.len == cap);
	w = wr_init(buf, 4 * n + 2);
	control_quote(&w, (const char *)data, n);
	CHECK(!w.err);
	free(buf);
}

/* --- a session with a fake backend --- */

static struct config *cfg;

static void fake_send(void *arg, const char *d, size_t len)
{
	(void)arg;
	(void)d;
	CHECK(len > 0);
}

static int fake_signal(void *arg, enum control_signal sig)
{
	(void)arg;
	(void)sig;
	return 0;
}

static void fake_read(void *arg, void (*fn)(const struct config *c, void *ctx), void *ctx)
{
	(void)arg;
	fn(cfg, ctx);
}

static int fake_replace(void *arg, struct config *ncfg, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	config_free(cfg);
	cfg = ncfg;
	return 0;
}

static struct control_req *pending;
static unsigned nrequests;

static void fake_answer(struct control_req *req)
{
	req->result = req->id % 2 ? 0 : -ENOENT;
	if (req->want_circs)
		control_buf_printf(&req->circs, "%llu BUILT PURPOSE=GENERAL\n7 LAUNCHED PURPOSE=GENERAL\n",
				   (unsigned long long)req->id);
	if (req->want_streams)
		control_buf_printf(&req->streams, "42 SUCCEEDED 7 example.com:80\n");
	if (req->want_orconns)
		control_buf_printf(&req->orconns, "$0123456789ABCDEF0123456789ABCDEF01234567~g CONNECTED\n");
}

static int fake_request(void *arg, struct worker *w, struct control_req *req)
{
	(void)arg;
	CHECK(w == NULL && pending == NULL);
	switch (nrequests++ % 3) {
	case 0:
		return -ENOTSUP;
	case 1:
		fake_answer(req);
		control_req_done(req);
		return 0;
	default:
		pending = req;
		return 0;
	}
}

static void fake_close(void *arg)
{
	(void)arg;
}

static void run_session(const uint8_t *data, size_t len)
{
	static const struct control_server srv = {
		.be = { .signal = fake_signal, .config_read = fake_read, .config_replace = fake_replace,
			.request = fake_request },
	};
	struct control_session *s;

	if (!cfg)
		cfg = config_new_defaults();
	s = control_session_new(&srv, NULL, fake_send, NULL);
	control_session_set_close(s, fake_close);
	control_session_input(s, (const uint8_t *)"AUTHENTICATE\r\n", 14);
	control_session_input(s, data, len);
	/* Answer what is out; the kept input may start more (bounded by it). */
	for (int i = 0; i < 100000 && pending && (len & 1); i++) {
		struct control_req *r = pending;

		pending = NULL;
		fake_answer(r);
		control_req_done(r);
	}
	control_session_free(s);
	if (pending) { /* answered after its session went away */
		struct control_req *r = pending;

		pending = NULL;
		fake_answer(r);
		control_req_done(r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	size_t used_whole, used_bytes;

	CHECK(frame_all(data, len, len ? len : 1, &used_whole) == frame_all(data, len, 7, &used_bytes));
	CHECK(used_whole == used_bytes);
	check_replies(data, len);
	run_session(data, len);
	return 0;
}
