/* The process's entry guards (guard-spec), kept by the coordinator thread:
 * the guard state machine of app/guard.c fed with each new directory,
 * outcomes reported by the workers' circuit builds, the state file in
 * DataDirectory, and the guard that circuits use now, published for the
 * workers. One guard set per process, as tor has: every shard's circuits
 * enter the network through the same guard.
 *
 * Threads: guardmgr_tick/init/shutdown on the coordinator (or main before
 * start / after join); guardmgr_current and guardmgr_report from any
 * thread (a mutex, taken once per circuit launch or outcome, not per cell). */
#ifndef ONIONRING_APP_GUARDMGR_H
#define ONIONRING_APP_GUARDMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Load DataDirectory/state (datadir borrowed, may be NULL: no persistence). */
void guardmgr_init(const char *datadir);
/* Follow the directory, apply reported outcomes, run the retry schedule,
 * choose the guard to use, save the state when it changed. */
void guardmgr_tick(time_t now);
/* Copy the RSA identity of the guard circuits should use now; false when
 * none is chosen yet (no usable directory). */
bool guardmgr_current(uint8_t id[20]);
/* A circuit through guard id reached it (success) or could not (failure:
 * the channel or the first hop failed). */
void guardmgr_report(const uint8_t id[20], bool success);
/* A directory request to directory guard id got an answer (reachable) or
 * could not reach it (guard-spec 4.7/4.8: a directory request is a circuit
 * through the guard). Reachable does not confirm the guard (4.3: only
 * circuits for user traffic do). Any thread. */
void guardmgr_report_dir(const uint8_t id[20], bool reachable);
/* True while every entry guard is unreachable and held back by the retry
 * rules (guard.h GUARD_EXHAUSTED_RETRY_SECS): circuits should fail now
 * instead of entering the network elsewhere. guardmgr_current is then
 * false. Any thread. */
bool guardmgr_all_down(void);
/* A 3-hop build's outcome for the circuit build timeout estimate
 * (path-spec 2.4): ms is its build time (0: it never completed, e.g.
 * abandoned at the close time); timed_out says it passed the usage
 * timeout. A measurement circuit (2.4.4) has both. Any thread. */
void guardmgr_report_build(uint32_t ms, bool timed_out);
/* The learned build timeout for 3 hops in ms, or 0 while none is learned
 * (use path-spec's initial 60 s). Any thread. */
uint64_t guardmgr_build_timeout_ms(void);
/* The learned close time for 3 hops in ms (path-spec 2.4.4: a circuit
 * past the build timeout keeps building until then, as a measurement
 * circuit), or 0 while none is learned. Any thread. */
uint64_t guardmgr_build_close_ms(void);
/* The directory guards (guard-spec 4.6 for directory requests; tor's
 * UseEntryGuardsAsDirGuards): copy the RSA identities of the first
 * guard-n-primary-dir-guards-to-use primary guards not known to be
 * unreachable, in primary order, to ids[0..cap); return how many.
 * Coordinator thread (it reads the guard state without the lock). */
size_t guardmgr_dir_guards(uint8_t (*ids)[20], size_t cap);
/* Save the state and free everything. */
void guardmgr_shutdown(time_t now);

#endif
