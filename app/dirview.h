/* The directory view the circuit managers use: the current netdir snapshot
 * plus what is derived from it once per snapshot (the path selector with
 * the configuration's node rules, circuit parameters from the consensus
 * params). Any thread; installed into app/circmgr.h at start-up. */
#ifndef ONIONRING_APP_DIRVIEW_H
#define ONIONRING_APP_DIRVIEW_H

#include <stdbool.h>

struct config;
struct dirview;

/* Use cfg (borrowed; must outlive every view) for node rules, and install
 * the accessors into the circuit manager. Call before workers start. */
void dirview_init(const struct config *cfg);
/* Use a new configuration (SIGHUP): the old one may be freed once this
 * returns, since selectors copy what they need. */
void dirview_set_config(const struct config *cfg);
/* Drop the cached view (at exit, after the workers stopped). */
void dirview_shutdown(void);
bool dirview_acquire(struct dirview *out);
void dirview_release(void *ref);

#endif
