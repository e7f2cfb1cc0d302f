/* Streaming zlib/gzip decompression for directory documents (served as
 * "deflate" or "gzip", dir-spec.txt 6.1), with a zip-bomb guard: a hard
 * cap on output bytes and a limit on the compression ratio.
 *
 * Control-plane code: it allocates (the zlib state and the growing output
 * buffer) and aborts on OOM. Not for relay data, and not for compression. */
#ifndef ONIONRING_PROTO_INFLATE_H
#define ONIONRING_PROTO_INFLATE_H

#include <stddef.h>
#include <stdint.h>

enum inflate_format {
	INFLATE_ZLIB = 0, /* RFC 1950: HTTP "deflate" */
	INFLATE_GZIP,     /* RFC 1952: HTTP "gzip" */
	INFLATE_AUTO,     /* either, from the header */
};

/* Like tor (compress.c), once the output passes 64 KiB a ratio of output
 * to input above 25 counts as a bomb. Directory documents compress ~3-5x. */
#define INFLATE_BOMB_CHECK_AFTER (64 * 1024)
#define INFLATE_BOMB_MAX_RATIO 25

/* Output buffer the caller owns; inflate appends to data[len..) and grows
 * it with realloc. Start from {0} or a malloc'ed buffer; release with
 * inflate_buf_free(). */
struct inflate_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

struct inflate_stream;

/* Return a new owned stream for fmt that refuses to produce more than
 * max_out bytes in total, or NULL if zlib cannot start. Any thread; the
 * stream then belongs to the caller's thread. */
struct inflate_stream *inflate_stream_new(enum inflate_format fmt, size_t max_out);

/* Free s (NULL-safe) and set the pointer to NULL. Owner thread. */
void inflate_stream_free_(struct inflate_stream *s);
#define inflate_stream_free(s) \
	do { \
		inflate_stream_free_(s); \
		(s) = NULL; \
	} while (0)

/* Decompress in[0..len) and append the output to *out, growing it.
 * Return 0 if all input was used and more is welcome, 1 if the compressed
 * stream ended, -EMSGSIZE if the output would pass max_out or the ratio
 * says bomb, -EBADMSG for corrupt data or bytes after the end. Errors are
 * sticky. Borrows s, in and out. Owner thread. */
int inflate_stream_push(struct inflate_stream *s, const uint8_t *in, size_t len,
			struct inflate_buf *out);

/* Return 0 if the stream ended properly, -EBADMSG if it was cut short, or
 * the sticky error. Borrows s. Owner thread. */
int inflate_stream_finish(const struct inflate_stream *s);

/* Decompress all of in[0..len) into *out (appending): 0 or a negative
 * error as above. Borrows in and out. Any thread. */
int inflate_oneshot(enum inflate_format fmt, const uint8_t *in, size_t len,
		    size_t max_out, struct inflate_buf *out);

/* Free b->data and zero *b. Borrows b. Owner thread. */
void inflate_buf_free(struct inflate_buf *b);

#endif
