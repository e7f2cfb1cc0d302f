/* A synthetic microdesc consensus built in memory for the path and guard
 * tests: realistic bandwidths (lognormal), flags, families, shared /16s and
 * exit policies, with the ground truth kept beside it so the tests can
 * check path choices against an independent model. Test code only. */
#ifndef ONIONRING_TEST_SYNTHNET_H
#define ONIONRING_TEST_SYNTHNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/consensus.h"
#include "proto/microdesc.h"

struct synth_relay {
	int family;       /* family group id, -1 when none */
	bool allows_443;  /* its policy summary allows port 443 */
	bool allows_any;  /* its policy summary allows some port */
	bool has_md;
};

struct synthnet {
	struct consensus c;
	struct microdesc *mds;
	const struct microdesc **md_ptrs;
	size_t n_mds;
	struct synth_relay *truth; /* parallel to c.routers */
	char **family_text;
};

/* Build n relays from a deterministic seed. Returns owned (synthnet_free). */
struct synthnet *synthnet_new(size_t n, uint64_t seed);
void synthnet_free(struct synthnet *s);

#endif
