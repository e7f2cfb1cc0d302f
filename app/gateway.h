/* The gateway: builds the runtime from the configuration, opens the
 * listeners (MetricsPort now; SocksPort and ControlPort as those land),
 * runs until SIGINT/SIGTERM, re-reads the configuration on SIGHUP, and
 * stops everything it started.
 *
 * Main thread only. Not for protocol logic. */
#ifndef ONIONRING_APP_GATEWAY_H
#define ONIONRING_APP_GATEWAY_H

#include <stddef.h>

struct config;
struct gateway;

/* Build a gateway for cfg (ownership of cfg passes to the gateway);
 * config_path (borrowed, may be NULL) is re-read on SIGHUP. Returns owned,
 * or NULL with the reason in err. */
struct gateway *gateway_new(struct config *cfg, const char *config_path, char *err, size_t errlen);
/* Start, serve until told to stop, then stop. Return the process exit code. */
int gateway_run(struct gateway *g);
void gateway_free(struct gateway *g);

#endif
