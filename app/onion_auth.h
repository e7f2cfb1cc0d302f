/* ClientOnionAuthDir as an immutable, reference-counted snapshot.
 *
 * The directory's "*.auth_private" files (proto/hs_auth.h) are read on the
 * main thread at start and on the coordinator after every SIGHUP/SETCONF
 * (app/gateway.c), never on a worker: a worker only takes a reference to
 * the published snapshot when an onion connection starts (app/hs_client.c)
 * and looks its service up in memory. A snapshot never changes once
 * published; a new one replaces it, and the old one is freed (its keys
 * wiped) when the last connection that holds it lets go.
 *
 * Not for: parsing one file (proto/hs_auth.h), using the key
 * (proto/hs_desc.h), the service side's authorized_clients. */
#ifndef ONIONRING_APP_ONION_AUTH_H
#define ONIONRING_APP_ONION_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct onion_auth_keys;

/* Read every "*.auth_private" file in dir (borrowed; NULL or "": none) into
 * a new snapshot (owned, one reference). A file that cannot be read or does
 * not parse is logged (a warning naming the file) and skipped; the others
 * still load. A directory that cannot be opened gives an empty snapshot and
 * a warning. Blocking file I/O: main or coordinator thread only. */
struct onion_auth_keys *onion_auth_load(const char *dir);

/* Number of keys in k (borrowed; NULL: 0). Any thread. */
size_t onion_auth_count(const struct onion_auth_keys *k);

/* If k (borrowed; may be NULL) holds a key for the service with identity
 * key id, copy its x25519 secret into sk (the caller wipes it) and return
 * true. Any thread. */
bool onion_auth_find(const struct onion_auth_keys *k, const uint8_t id[32], uint8_t sk[32]);

/* Make k (owned, taken; NULL: no keys) the published snapshot; the one it
 * replaces is released. Main or coordinator thread; any number of
 * onion_auth_acquire callers may run meanwhile. */
void onion_auth_publish(struct onion_auth_keys *k);

/* Return a reference to the published snapshot (NULL when none is), which
 * stays valid and unchanged until onion_auth_release. Any thread. */
struct onion_auth_keys *onion_auth_acquire(void);

/* Drop a reference (k may be NULL); the last one frees and wipes. Any
 * thread. */
void onion_auth_release(struct onion_auth_keys *k);

/* Release the published snapshot (at exit). */
void onion_auth_shutdown(void);

#endif
