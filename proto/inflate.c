/* Streaming zlib/gzip inflate with output and ratio limits. See inflate.h.
 * Control plane only: allocates, aborts on OOM. Not for compression. */
#include "proto/inflate.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/compiler.h"
#include "core/log.h"

#define INFLATE_MIN_GROW 16384
#define INFLATE_MAX_CHUNK (1u << 30) /* zlib counts in uInt */

struct inflate_stream {
	z_stream z;
	size_t max_out;
	size_t total_out;
	bool ended;
	int error; /* sticky: 0 or -errno */
};

struct inflate_stream *inflate_stream_new(enum inflate_format fmt, size_t max_out)
{
	/* windowBits 15; +16 selects gzip, +32 detects either (zlib.h). */
	static const int wbits[] = { [INFLATE_ZLIB] = 15, [INFLATE_GZIP] = 15 + 16,
				     [INFLATE_AUTO] = 15 + 32 };
	struct inflate_stream *s;

	if ((unsigned)fmt >= ARRAY_LEN(wbits))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	if (inflateInit2(&s->z, wbits[fmt]) != Z_OK) {
		free(s);
		return NULL;
	}
	s->max_out = max_out;
	return s;
}

void inflate_stream_free_(struct inflate_stream *s)
{
	if (!s)
		return;
	inflateEnd(&s->z);
	free(s);
}

void inflate_buf_free(struct inflate_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Make room in out for at least one byte, but never more than one byte past
 * what max_out still allows: going past it is how the limit is detected. */
static void buf_grow(struct inflate_stream *s, struct inflate_buf *out)
{
	size_t limit = out->len + (s->max_out - s->total_out) + 1;
	size_t want = MAX(out->cap * 2, (size_t)INFLATE_MIN_GROW);
	uint8_t *p;

	want = MIN(want, limit);
	if (want <= out->cap)
		return;
	p = realloc(out->data, want);
	if (!p) {
		log_err("inflate: out of memory growing to %zu bytes", want);
		abort();
	}
	out->data = p;
	out->cap = want;
}

static bool is_bomb(uint64_t in, uint64_t out)
{
	if (out < INFLATE_BOMB_CHECK_AFTER)
		return false;
	return in == 0 || out / in > INFLATE_BOMB_MAX_RATIO;
}

static int fail(struct inflate_stream *s, int err)
{
	s->error = err;
	return err;
}

/* Run inflate over the input already loaded in s->z until it is used up,
 * the stream ends, or an error. */
static int run(struct inflate_stream *s, struct inflate_buf *out)
{
	for (;;) {
		size_t room, made;
		int rc;

		if (out->cap == out->len)
			buf_grow(s, out);
		room = MIN(out->cap - out->len, (size_t)INFLATE_MAX_CHUNK);
		s->z.next_out = out->data + out->len;
		s->z.avail_out = (uInt)room;
		rc = inflate(&s->z, Z_NO_FLUSH);
		made = room - s->z.avail_out;
		out->len += made;
		s->total_out += made;
		if (s->total_out > s->max_out || is_bomb(s->z.total_in, s->total_out))
			return fail(s, -EMSGSIZE);
		if (rc == Z_STREAM_END) {
			s->ended = true;
			return s->z.avail_in ? fail(s, -EBADMSG) : 1;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return fail(s, -EBADMSG);
		if (s->z.avail_out > 0) {
			/* Output room left: zlib used all the input it could. */
			if (s->z.avail_in == 0)
				return 0;
			if (rc == Z_BUF_ERROR)
				return fail(s, -EBADMSG);
		}
	}
}

int inflate_stream_push(struct inflate_stream *s, const uint8_t *in, size_t len,
			struct inflate_buf *out)
{
	int r = 0;

	if (s->error)
		return s->error;
	if (s->ended)
		return len ? fail(s, -EBADMSG) : 1;
	do {
		size_t n = MIN(len, (size_t)INFLATE_MAX_CHUNK);

		s->z.next_in = (Bytef *)(uintptr_t)in; /* zlib does not write input */
		s->z.avail_in = (uInt)n;
		r = run(s, out);
		in += n;
		len -= n;
	} while (r == 0 && len > 0);
	if (r == 1 && len > 0)
		return fail(s, -EBADMSG);
	return r;
}

int inflate_stream_finish(const struct inflate_stream *s)
{
	if (s->error)
		return s->error;
	return s->ended ? 0 : -EBADMSG;
}

int inflate_oneshot(enum inflate_format fmt, const uint8_t *in, size_t len,
		    size_t max_out, struct inflate_buf *out)
{
	struct inflate_stream *s = inflate_stream_new(fmt, max_out);
	int r;

	if (!s)
		return -ENOMEM;
	r = inflate_stream_push(s, in, len, out);
	if (r >= 0)
		r = inflate_stream_finish(s);
	inflate_stream_free(s);
	return r;
}
