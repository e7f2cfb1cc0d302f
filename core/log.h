/* Logging: levels, timestamps, one line per call, to stderr or a file.
 *
 * Lines look like tor's: "Nov 27 14:33:44.123 [notice] {w0} text". Each
 * line is written with a single write(2), so lines from several threads do
 * not interleave. Not for metrics or control-port events (app/ does those). */
#ifndef ONIONRING_CORE_LOG_H
#define ONIONRING_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/compiler.h"

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO,
	LOG_NOTICE,
	LOG_WARN,
	LOG_ERR,
};

/* Set the lowest level that is written. Call before threads start. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Send lines to the file at path (appending), or to stderr when path is
 * NULL. Return 0 or -errno. Call before threads start. Either way the lines
 * go through a descriptor of the log's own (a dup of stderr for NULL), which
 * log_redirect can later point elsewhere. */
int log_set_file(const char *path);

/* Point the log at the file at path (appending; opened afresh, so the same
 * path reopens a rotated file), or at stderr when path is NULL, while other
 * threads log (SIGHUP/SETCONF). A line is written whole to the old or the
 * new destination. Return 0, -errno when path cannot be opened (the old
 * destination stays), or -EBUSY before log_set_file. Callers serialize
 * among themselves (app/ holds its config lock). */
int log_redirect(const char *path);

/* The two halves of log_redirect, so that a reload can open the new
 * destination before it changes anything else (and change nothing when
 * that fails, as tor refuses the whole reload). log_target_open opens
 * path for appending (NULL: a dup of stderr) and returns a descriptor
 * (owned by the caller) or -errno; any thread. log_redirect_fd takes fd
 * (owned, always consumed) and points the log at it as log_redirect does:
 * 0, or -EBUSY before log_set_file (fd is closed then), or -errno. */
int log_target_open(const char *path);
int log_redirect_fd(int fd);

/* Name this thread in log lines ("w0", "coord"); borrows name, which must
 * outlive the thread. Calling thread only. */
void log_set_thread_name(const char *name);

/* Parse "debug", "info", "notice", "warn" or "err"; return -1 if unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

/* Hook that sees every written line (for control-port events and tests).
 * The callback runs on the logging thread; it must not log. */
typedef void (*log_hook_fn)(enum log_level level, const char *line, void *arg);
void log_set_hook(log_hook_fn fn, void *arg);

/* SafeLogging (tor's man page: SafeLogging 0|1): while on (the default),
 * what a user asked for (SOCKS destinations: hostnames, addresses, ports,
 * .onion addresses) and the addresses of clients are written as
 * "[scrubbed]"; relays' addresses are not the user's and stay. Every log
 * line that carries such a value passes it through log_scrub or
 * log_scrub_dest. Any thread (a relaxed atomic: a line racing a change may
 * go either way). */
#define LOG_SCRUBBED "[scrubbed]"
void log_set_safe_logging(bool on);
bool log_safe_logging(void);

/* Return s (borrowed) for a log line, or LOG_SCRUBBED (static) while
 * SafeLogging is on. s may be NULL (returned as "?" when not scrubbed). */
const char *log_scrub(const char *s);

/* Format a user's destination host (borrowed; a hostname or an address, an
 * IPv6 one gets brackets when it has a ':') and port as "host:port" into
 * buf (len bytes, truncated, always terminated), or LOG_SCRUBBED while
 * SafeLogging is on. Return buf. Any thread. */
char *log_scrub_dest(char *buf, size_t len, const char *host, unsigned port);

void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);

#define log_debug(...) \
	do { \
		if (unlikely(log_get_level() <= LOG_DEBUG)) \
			log_msg(LOG_DEBUG, __VA_ARGS__); \
	} while (0)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)

#endif
