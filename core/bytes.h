/* Byte cursors: bounds-checked big-endian reads and writes over a span.
 *
 * A reader never reads past its end: a short read sets ->err and returns 0,
 * and every later read fails too, so a parser checks once at the end. For
 * parsers of network input; not for anything that owns memory. */
#ifndef ONIONRING_CORE_BYTES_H
#define ONIONRING_CORE_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct rd {
	const uint8_t *p;
	size_t len;
	bool err;
};

struct wr {
	uint8_t *p;
	size_t cap;
	size_t len;
	bool err;
};

static inline struct rd rd_init(const void *p, size_t len)
{
	struct rd r = { (const uint8_t *)p, len, false };
	return r;
}

static inline size_t rd_left(const struct rd *r) { return r->err ? 0 : r->len; }

static inline bool rd_need(struct rd *r, size_t n)
{
	if (r->err || r->len < n) {
		r->err = true;
		return false;
	}
	return true;
}

static inline uint8_t rd_u8(struct rd *r)
{
	uint8_t v;

	if (!rd_need(r, 1))
		return 0;
	v = r->p[0];
	r->p += 1;
	r->len -= 1;
	return v;
}

static inline uint16_t rd_u16(struct rd *r)
{
	uint16_t v;

	if (!rd_need(r, 2))
		return 0;
	v = (uint16_t)((r->p[0] << 8) | r->p[1]);
	r->p += 2;
	r->len -= 2;
	return v;
}

static inline uint32_t rd_u32(struct rd *r)
{
	uint32_t v;

	if (!rd_need(r, 4))
		return 0;
	v = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) | ((uint32_t)r->p[2] << 8) | r->p[3];
	r->p += 4;
	r->len -= 4;
	return v;
}

static inline uint64_t rd_u64(struct rd *r)
{
	uint64_t hi = rd_u32(r);
	return (hi << 32) | rd_u32(r);
}

/* Borrow n bytes from the span; NULL (and ->err) if there are fewer. */
static inline const uint8_t *rd_bytes(struct rd *r, size_t n)
{
	const uint8_t *p;

	if (!rd_need(r, n))
		return NULL;
	p = r->p;
	r->p += n;
	r->len -= n;
	return p;
}

static inline bool rd_copy(struct rd *r, void *out, size_t n)
{
	const uint8_t *p = rd_bytes(r, n);

	if (!p)
		return false;
	memcpy(out, p, n);
	return true;
}

static inline struct wr wr_init(void *p, size_t cap)
{
	struct wr w = { (uint8_t *)p, cap, 0, false };
	return w;
}

static inline bool wr_room(struct wr *w, size_t n)
{
	if (w->err || w->cap - w->len < n) {
		w->err = true;
		return false;
	}
	return true;
}

static inline void wr_u8(struct wr *w, uint8_t v)
{
	if (wr_room(w, 1))
		w->p[w->len++] = v;
}

static inline void wr_u16(struct wr *w, uint16_t v)
{
	if (wr_room(w, 2)) {
		w->p[w->len++] = (uint8_t)(v >> 8);
		w->p[w->len++] = (uint8_t)v;
	}
}

static inline void wr_u32(struct wr *w, uint32_t v)
{
	if (wr_room(w, 4)) {
		w->p[w->len++] = (uint8_t)(v >> 24);
		w->p[w->len++] = (uint8_t)(v >> 16);
		w->p[w->len++] = (uint8_t)(v >> 8);
		w->p[w->len++] = (uint8_t)v;
	}
}

static inline void wr_u64(struct wr *w, uint64_t v)
{
	wr_u32(w, (uint32_t)(v >> 32));
	wr_u32(w, (uint32_t)v);
}

static inline void wr_bytes(struct wr *w, const void *p, size_t n)
{
	if (n && wr_room(w, n)) {
		memcpy(w->p + w->len, p, n);
		w->len += n;
	}
}

static inline void wr_zero(struct wr *w, size_t n)
{
	if (n && wr_room(w, n)) {
		memset(w->p + w->len, 0, n);
		w->len += n;
	}
}

/* Big-endian helpers for fixed offsets. */
static inline uint16_t be16_load(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32_load(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void be16_store(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void be32_store(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif
