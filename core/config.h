/* Configuration: the torrc-style reader and the one table of every key
 * onionring accepts.
 *
 * For: reading `Key value` text (a file or a buffer) into a struct config of
 * typed values, the defaults, the Markdown documentation generated from the
 * same table (doc/configuration.md), and the list of keys that differ between
 * two configurations (for SIGHUP). Not for: applying a configuration (app/
 * does that), command-line options, or anything on a data path.
 *
 * Syntax (tor's torrc, see doc/configuration.md for the full rules):
 *   - one `Key value` per line; keys are case-insensitive;
 *   - `#` starts a comment (also after a value), blank lines are ignored;
 *   - a backslash right before the end of a line joins the next line to it;
 *     lines starting with `#` inside such a continuation are skipped;
 *   - a value that starts with `"` is a C-style quoted string
 *     (\n \t \r \\ \" \' \xNN);
 *   - list keys (SocksPort, DirAuthority, ExcludeNodes, ...) may repeat: the
 *     first occurrence replaces the default and later ones append; a repeated
 *     single-valued key: the last one wins, with a warning (tor does the same).
 *
 * Errors are one line, stable, with the file name and the line where the
 * entry's key starts; test/unit/test_config.c checks every one exactly:
 *   FILE:LINE: unknown configuration key "Foo"
 *   FILE:LINE: missing value for "SocksPort"
 *   FILE:LINE: bad number "12x" for "NumWorkers" (expected an integer from 0 to 256)
 *   FILE:LINE: unterminated quoted value
 *   FILE: cannot read: No such file or directory
 *
 * Threads: everything here is control-plane code; any one thread at a time
 * may use a struct config it owns. Configurations are immutable once loaded,
 * so a loaded one may be read from any thread. */
#ifndef ONIONRING_CORE_CONFIG_H
#define ONIONRING_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

/* Room for any error message config_load_* writes (longer ones are cut). */
#define CONFIG_ERR_MAX 512

/* Repeated raw lines (DirAuthority) or list items (ExcludeNodes). */
struct config_lines {
	char **v;
	size_t n;
};

/* One listener: "9050", "127.0.0.1:9050", "[::1]:9050", "auto" plus flags. */
struct config_port {
	char addr[48];   /* numeric address without brackets */
	uint16_t port;   /* 0 when port_auto */
	bool port_auto;  /* "auto": the kernel picks the port */
	bool is_ipv6;
	char *flags;     /* raw text after the address ("IsolateDestAddr ..."), or NULL */
};

/* A port list; "0" entries ("SocksPort 0") are dropped, so n == 0 is off. */
struct config_ports {
	struct config_port *v;
	size_t n;
};

enum config_log_sink {
	CONFIG_LOG_STDERR,
	CONFIG_LOG_STDOUT,
	CONFIG_LOG_FILE,
};

/* One "Log LEVEL[-LEVEL] stderr|stdout|file PATH" line. */
struct config_log {
	enum log_level min, max;
	enum config_log_sink sink;
	char *path; /* CONFIG_LOG_FILE only */
	unsigned line; /* where it was read (for messages; not compared) */
};

struct config_logs {
	struct config_log *v;
	size_t n;
};

/* The typed values the rest of the program reads. Intervals are seconds,
 * memory sizes bytes. Every field has a row in the key table (config.c). */
struct config {
	char *data_directory;             /* NULL: none */
	struct config_logs log;
	struct config_ports socks_port;
	struct config_ports metrics_port;
	struct config_ports control_port;
	bool cookie_authentication;
	struct config_lines hashed_control_password;
	struct config_lines dir_authority; /* raw lines, parsed by the directory code */
	int64_t num_workers;
	int64_t channel_pool_max_idle;
	int64_t channel_pool_max_lifetime;
	int64_t circuit_pool_min_size;
	int64_t circuit_pool_max_size;
	bool circuit_prebuild;
	int64_t max_circuit_dirtiness;
	bool enforce_distinct_subnets;
	struct config_lines exclude_nodes;
	struct config_lines exclude_exit_nodes;
	struct config_lines exit_nodes;
	bool strict_nodes;
	char *client_onion_auth_dir;      /* NULL: none */
	char *socks_listener_shards;      /* __SocksListenerShards; NULL: every worker */
	int64_t conn_limit;
	int64_t max_client_connections;
	int64_t socks_timeout;
	uint64_t max_mem_in_queues;
	uint64_t testing_max_mem_in_queues; /* __MaxMemInQueuesForTesting; 0: unset */
	bool testing_tor_network;
	bool safe_logging;
	int64_t shutdown_wait_length;
};

enum config_type {
	CONFIG_T_STRING,   /* char * */
	CONFIG_T_BOOL,     /* bool, "0" or "1" */
	CONFIG_T_INT,      /* int64_t within [min, max] */
	CONFIG_T_INTERVAL, /* int64_t seconds within [min, max] */
	CONFIG_T_MEMORY,   /* uint64_t bytes within [min, max] */
	CONFIG_T_PORTS,    /* struct config_ports, repeatable */
	CONFIG_T_LINES,    /* struct config_lines of raw lines, repeatable */
	CONFIG_T_NODES,    /* struct config_lines of comma-separated items, repeatable */
	CONFIG_T_LOG,      /* struct config_logs, repeatable */
};

/* The key may change while onionring runs (SIGHUP applies it). */
#define CONFIG_RUNTIME 0x1u

/* One row of the key table. */
struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;          /* of the field in struct config */
	const char *def;        /* default as config text, NULL: unset/empty list */
	const char *doc_def;    /* default as shown in the docs when it is a build option */
	int64_t min, max;       /* INT, INTERVAL, MEMORY */
	unsigned flags;         /* CONFIG_RUNTIME */
	const char *desc;       /* one line; says why the default was chosen */
};

/* Return the key table and its length through *n. Any thread. */
const struct config_key *config_keys(size_t *n);

/* Return the row of name (case-insensitive), or NULL. Any thread. */
const struct config_key *config_key_find(const char *name);

static inline bool config_key_is_runtime(const struct config_key *k)
{
	return (k->flags & CONFIG_RUNTIME) != 0;
}

/* Return an owned configuration holding every default; aborts on OOM. */
struct config *config_new_defaults(void);

/* Read the file at path (borrowed) and parse it over the defaults. On
 * success store an owned config in *out and return 0. On failure leave *out
 * untouched, write the one-line message to err (errlen bytes, at most
 * CONFIG_ERR_MAX needed) and return -errno for an unreadable file or
 * -EINVAL for bad content. */
int config_load_file(const char *path, struct config **out, char *err, size_t errlen);

/* As config_load_file, from len bytes of text (borrowed; may hold any bytes,
 * NUL included); name (borrowed) stands for the file name in messages. */
int config_load_string(const char *text, size_t len, const char *name, struct config **out,
		       char *err, size_t errlen);

/* Free cfg and everything it owns; NULL is fine. */
void config_free_(struct config *cfg);
#define config_free(cfg) \
	do { \
		config_free_(cfg); \
		(cfg) = NULL; \
	} while (0)

/* Store in changed[0..cap) the keys whose values differ between a and b
 * (both borrowed), in table order; return how many differ (may exceed cap).
 * SIGHUP uses it with config_key_is_runtime() to refuse a reload that would
 * change a key that needs a restart. */
size_t config_diff(const struct config *a, const struct config *b, const struct config_key **changed,
		   size_t cap);

/* Return the Markdown reference of every key (doc/configuration.md is this
 * text), owned by the caller (free()). */
char *config_doc_markdown(void);

#endif
