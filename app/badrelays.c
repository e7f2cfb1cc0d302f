/* Bad relays: a small open-addressing table of decaying failure scores,
 * keyed by RSA identity. See badrelays.h. Not persistent, not shared. */
#include "app/badrelays.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Power of two; when full, the entry with the lowest score is replaced. */
#define BADRELAYS_SLOTS 1024u
#define BADRELAYS_PROBE 16u

struct badrelay {
	uint8_t id[SHA1_LEN];
	bool used;
	double score;     /* at t_ms */
	uint64_t t_ms;
};

struct badrelays {
	uint64_t half_life_ms;
	struct badrelay slot[BADRELAYS_SLOTS];
};

struct badrelays *badrelays_new(uint64_t half_life_ms)
{
	struct badrelays *b = calloc(1, sizeof(*b));

	if (!b)
		abort();
	b->half_life_ms = half_life_ms ? half_life_ms : BADRELAYS_DEFAULT_HALF_LIFE_MS;
	return b;
}

void badrelays_free(struct badrelays *b)
{
	free(b);
}

static uint32_t slot_of(const uint8_t id[SHA1_LEN])
{
	uint32_t h;

	memcpy(&h, id, sizeof(h)); /* identities are hashes: any 4 bytes do */
	return h & (BADRELAYS_SLOTS - 1);
}

static double decayed(const struct badrelays *b, const struct badrelay *e, uint64_t now_ms)
{
	double dt = now_ms > e->t_ms ? (double)(now_ms - e->t_ms) : 0.0;

	return e->score * exp2(-dt / (double)b->half_life_ms);
}

static const struct badrelay *lookup(const struct badrelays *b, const uint8_t id[SHA1_LEN])
{
	uint32_t s = slot_of(id);

	for (uint32_t k = 0; k < BADRELAYS_PROBE; k++) {
		const struct badrelay *e = &b->slot[(s + k) & (BADRELAYS_SLOTS - 1)];

		if (e->used && memcmp(e->id, id, SHA1_LEN) == 0)
			return e;
	}
	return NULL;
}

void badrelays_record_failure(struct badrelays *b, const uint8_t id[SHA1_LEN], uint64_t now_ms)
{
	struct badrelay *e = (struct badrelay *)lookup(b, id), *victim = NULL;
	double low = INFINITY;

	if (!e) {
		uint32_t s = slot_of(id);

		for (uint32_t k = 0; k < BADRELAYS_PROBE; k++) {
			struct badrelay *c = &b->slot[(s + k) & (BADRELAYS_SLOTS - 1)];
			double sc = c->used ? decayed(b, c, now_ms) : -1.0;

			if (sc < low) {
				low = sc;
				victim = c;
			}
		}
		e = victim;
		memcpy(e->id, id, SHA1_LEN);
		e->used = true;
		e->score = 0;
		e->t_ms = now_ms;
	}
	e->score = fmin(decayed(b, e, now_ms) + 1.0, BADRELAYS_MAX_SCORE);
	e->t_ms = now_ms;
}

void badrelays_record_success(struct badrelays *b, const uint8_t id[SHA1_LEN])
{
	struct badrelay *e = (struct badrelay *)lookup(b, id);

	if (e)
		e->used = false;
}

double badrelays_score(const struct badrelays *b, const uint8_t id[SHA1_LEN], uint64_t now_ms)
{
	const struct badrelay *e = b ? lookup(b, id) : NULL;

	return e ? decayed(b, e, now_ms) : 0.0;
}

bool badrelays_is_avoided(const struct badrelays *b, const uint8_t id[SHA1_LEN], uint64_t now_ms)
{
	return badrelays_score(b, id, now_ms) > 0.5;
}
