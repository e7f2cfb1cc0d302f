/* Configuration reader and key table (see config.h).
 *
 * Layout: the key table first (the one place a key is defined: add a field to
 * struct config and a row here, then regenerate doc/configuration.md), then
 * the value parsers per type, the lexer, loading, and the helpers that walk
 * the table (free, diff, documentation). Not for applying a configuration. */
#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/compiler.h"
#include "onionring_build.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* Largest configuration file read; more is certainly a mistake. */
#define CONFIG_FILE_MAX (1u << 20)

#define MINUTE 60
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define KB ((int64_t)1 << 10)
#define MB ((int64_t)1 << 20)
#define GB ((int64_t)1 << 30)
#define TB ((int64_t)1 << 40)

/* Offset of field f, and a compile error unless the field has type T. */
#define FIELD(f, T) \
	(offsetof(struct config, f) + \
	 0 * sizeof(char[__builtin_types_compatible_p(__typeof__(((struct config *)0)->f), T) ? 1 : -1]))

#define KEY(n, t, f, T, d, lo, hi, fl, text) \
	{ .name = n, .type = t, .offset = FIELD(f, T), .def = d, .min = lo, .max = hi, .flags = fl, .desc = text }
#define K_STRING(n, f, fl, text) KEY(n, CONFIG_T_STRING, f, char *, NULL, 0, 0, fl, text)
#define K_BOOL(n, f, d, fl, text) KEY(n, CONFIG_T_BOOL, f, bool, d, 0, 1, fl, text)
#define K_INT(n, f, d, lo, hi, fl, text) KEY(n, CONFIG_T_INT, f, int64_t, d, lo, hi, fl, text)
#define K_INTERVAL(n, f, d, lo, hi, fl, text) KEY(n, CONFIG_T_INTERVAL, f, int64_t, d, lo, hi, fl, text)
#define K_MEMORY(n, f, d, lo, hi, fl, text) KEY(n, CONFIG_T_MEMORY, f, uint64_t, d, lo, hi, fl, text)
#define K_PORTS(n, f, d, fl, text) KEY(n, CONFIG_T_PORTS, f, struct config_ports, d, 0, 0, fl, text)
#define K_LINES(n, f, fl, text) KEY(n, CONFIG_T_LINES, f, struct config_lines, NULL, 0, 0, fl, text)
#define K_NODES(n, f, fl, text) KEY(n, CONFIG_T_NODES, f, struct config_lines, NULL, 0, 0, fl, text)
#define K_LOG(n, f, d, fl, text) KEY(n, CONFIG_T_LOG, f, struct config_logs, d, 0, 0, fl, text)

#define RT CONFIG_RUNTIME

/* Every key onionring accepts. Descriptions are one line without '|'. */
static const struct config_key config_table[] = {
	K_STRING("DataDirectory", data_directory, 0,
		 "Directory for cached directory documents and state; unset keeps nothing on disk, so every start fetches a fresh consensus."),
	K_LOG("Log", log, "notice stderr", RT,
	      "Where log lines go and from which level: LEVEL[-LEVEL] stderr, stdout or file PATH. notice is tor's default: quiet but reports problems. Only the first Log line is used for now. SIGHUP and SETCONF apply a new level and destination and reopen the file (for log rotation)."),
	K_PORTS("SocksPort", socks_port, "127.0.0.1:9050", 0,
		"SOCKS5 listener: PORT, ADDRESS:PORT, auto or 0 (off), then flags such as IsolateDestAddr or IsolateSOCKSAuth that the gateway reads. Default is tor's: loopback only, so the gateway is not open to the network."),
	K_PORTS("MetricsPort", metrics_port, "0", 0,
		"Prometheus metrics listener (same forms as SocksPort). Off by default: metrics reveal traffic volumes."),
	K_PORTS("ControlPort", control_port, "0", 0,
		"Control-port listener (same forms as SocksPort). Off by default, as in tor."),
	K_BOOL("CookieAuthentication", cookie_authentication, "0", 0,
	       "1: control-port clients authenticate with a cookie file in DataDirectory. Off by default like tor; the control port is off too."),
	K_LINES("HashedControlPassword", hashed_control_password, RT,
		"Control-port password as made by tor --hash-password (16:HEX); may repeat. Unset: no password."),
	K_LINES("DirAuthority", dir_authority, 0,
		"A directory authority, tor's syntax kept as the raw line for the directory code; may repeat. Needed for a private Tor network."),
	{ .name = "NumWorkers", .type = CONFIG_T_INT, .offset = FIELD(num_workers, int64_t),
	  .def = STR(ONIONRING_DEFAULT_WORKERS), .doc_def = "build option default_workers (0)", .min = 0, .max = 256,
	  .desc = "io_uring worker threads, one per core; 0 means one per CPU the process may run on (its affinity mask: taskset, cpuset), each worker pinned to one of them, which suits a machine that runs only the gateway." },
	K_INTERVAL("ChannelPoolMaxIdle", channel_pool_max_idle, "3 minutes", 10, DAY, RT,
		   "How long a channel to a relay with no circuits stays open: tor closes idle client channels after about 3 minutes. A change applies to open channels too, within a quarter of the new value (at most 10 s)."),
	K_INTERVAL("ChannelPoolMaxLifetime", channel_pool_max_lifetime, "7 days", MINUTE, 30 * DAY, RT,
		   "Age after which a channel gets no new circuits; tor stops using connections older than a week. A change applies to open channels too, by their age, within 10 s."),
	K_INT("CircuitPoolMinSize", circuit_pool_min_size, "2", 0, 1000, RT,
	      "Clean circuits any new stream may take, kept ready per worker for the ports recent streams asked for; 2 lets a new client start without waiting for a circuit build. Raised at run time: built at once, two a second per worker; lowered: clean circuits that no recent port or isolation key needs close within a second."),
	K_INT("CircuitPoolMaxSize", circuit_pool_max_size, "10", 1, 1000, RT,
	      "Most clean (prebuilt, never used) circuits per worker: the CircuitPoolMinSize ones, one reserved for each isolation key seen in the last hour that has no circuit taking new streams, and one per recent port no other covers; 10 bounds the load a single gateway puts on the network. Circuits carrying streams are bounded apart (64 times this, at least 64, per worker). Lowered at run time: clean circuits beyond it close at once."),
	K_BOOL("CircuitPrebuild", circuit_prebuild, "1", RT,
	       "1: build circuits before they are needed (see CircuitPoolMinSize and CircuitPoolMaxSize), so a stream does not wait. Set to 0 at run time: no more are built and the clean ones close."),
	K_INTERVAL("MaxCircuitDirtiness", max_circuit_dirtiness, "10 minutes", 10, 30 * DAY, RT,
		   "How long a circuit that has carried a stream may take new streams; 10 minutes is tor's default. Past it the circuit closes once its last stream ends (as after SIGNAL NEWNYM). A change applies to open circuits too, from when they first carried a stream."),
	K_BOOL("EnforceDistinctSubnets", enforce_distinct_subnets, "1", RT,
	       "1: never put two relays from the same /16 (IPv4) or /32 (IPv6) in one circuit, as tor does. Turn off only on a private network. A change at run time: circuits built before it take no new streams."),
	K_NODES("ExcludeNodes", exclude_nodes, RT,
		"Relays never used in any position: comma-separated fingerprints, nicknames, {country codes} or addresses; may repeat. A change at run time: circuits built before it take no new streams (as in tor)."),
	K_NODES("ExcludeExitNodes", exclude_exit_nodes, RT,
		"Relays never used as the exit (same forms as ExcludeNodes); may repeat. A change at run time: circuits built before it take no new streams (as in tor)."),
	K_NODES("ExitNodes", exit_nodes, RT,
		"If set, exits are picked only from these relays (same forms as ExcludeNodes); may repeat. A change at run time: circuits built before it take no new streams (as in tor)."),
	K_BOOL("StrictNodes", strict_nodes, "0", RT,
	       "1: ExcludeNodes holds even when that makes a request fail. 0 (tor's default) lets directory fetches use excluded relays. A change at run time: circuits built before it take no new streams (as in tor)."),
	K_STRING("ClientOnionAuthDir", client_onion_auth_dir, RT,
		 "Directory of .auth_private files for onion services that need client authorization; unset: none."),
	K_INT("ConnLimit", conn_limit, "1000", 64, 1 << 24, 0,
	      "Fewest file descriptors onionring needs to start; 1000 is tor's default."),
	K_INT("MaxClientConnections", max_client_connections, "8192", 1, 1 << 20, RT,
	      "Most SOCKS client connections open at once, spread evenly over the workers; new ones are refused beyond it, which keeps descriptors for relay channels. Lowered at run time: open connections stay, new ones are refused until fewer are open."),
	K_INTERVAL("SocksTimeout", socks_timeout, "2 minutes", 1, DAY, RT,
		   "How long a SOCKS client may take to send its request, then how long its stream may keep trying circuits and exits before the client gets an error; 2 minutes is tor's default."),
	K_MEMORY("MaxMemInQueues", max_mem_in_queues, "1 GB", 64 * MB, TB, RT,
		 "Memory for queued data (bytes waiting for SOCKS clients, and client bytes waiting for their streams) above which, as in tor, the circuits whose queued data is oldest are closed until the total is under 90% of it (checked by the coordinator every 250 ms against per-shard figures refreshed each second); 1 GB suits a dedicated small machine. A change at run time applies at the next check."),
	K_MEMORY("__MaxMemInQueuesForTesting", testing_max_mem_in_queues, "0", 0, TB, RT,
		 "Testing only (the leading __ says so, as in tor): when not 0, replaces MaxMemInQueues with this many bytes, below its 64 MB minimum, so that a test reaches the limit with one client that reads nothing. Never set it on a real gateway."),
	K_BOOL("TestingTorNetwork", testing_tor_network, "0", 0,
	       "1: a private test network: tor's shorter timeouts, and EnforceDistinctSubnets is ignored (every relay shares an address); needs DirAuthority. Never on the public network."),
	K_BOOL("SafeLogging", safe_logging, "1", RT,
	       "1: write what users asked for (SOCKS destinations: hostnames, addresses, ports, .onion addresses) and client addresses as [scrubbed] in log lines, as tor does by default; relays' addresses stay. 0: log them plainly. A change at run time applies to the next line."),
	K_STRING("__SocksListenerShards", socks_listener_shards, 0,
		 "Testing only (tor's __ convention): the workers, comma-separated numbers from 0, that listen on the SocksPorts; unset: all. Tests use it to put every new client on one shard (test/integration/test_rebalance.sh)."),
	K_INTERVAL("ShutdownWaitLength", shutdown_wait_length, "30 seconds", 0, 2 * HOUR, RT,
		   "After SIGTERM or SIGINT, how long open streams may go on before onionring closes them (a second signal stops at once); 30 s is tor's default."),
};

const struct config_key *config_keys(size_t *n)
{
	*n = ARRAY_LEN(config_table);
	return config_table;
}

const struct config_key *config_key_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(config_table); i++)
		if (strcasecmp(name, config_table[i].name) == 0)
			return &config_table[i];
	return NULL;
}

/* ---- Control-plane allocation: aborts on OOM (STYLE.md, Memory) -------- */

static void *cfg_realloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("onionring: out of memory reading the configuration\n", stderr);
		abort();
	}
	return p;
}

static char *cfg_strndup(const char *s, size_t n)
{
	char *d = cfg_realloc(NULL, n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Growable NUL-terminated text. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void sbuf_add(struct sbuf *b, char c)
{
	if (b->len + 2 > b->cap) {
		b->cap = b->cap ? 2 * b->cap : 64;
		b->p = cfg_realloc(b->p, b->cap);
	}
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}

static void sbuf_reset(struct sbuf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

/* ---- Error messages ------------------------------------------------------ */

/* One load: where messages point and which keys the text has set so far. */
struct cfg_load {
	const char *name;
	unsigned line;
	char *err;
	size_t errlen;
	unsigned key_line[ARRAY_LEN(config_table)]; /* 0: not set by the text */
};

/* Write "NAME:LINE: message" to ld->err; return -1. */
static int PRINTF_LIKE(2, 3) cfg_fail(struct cfg_load *ld, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!ld->errlen)
		return -1;
	n = snprintf(ld->err, ld->errlen, "%s:%u: ", ld->name, ld->line);
	if (n < 0 || (size_t)n >= ld->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Copy s (n bytes) for a message: control and non-ASCII bytes become \xNN,
 * and more than 64 bytes are cut with "...". out needs 64 * 4 + 4 bytes. */
#define SHOW_MAX 64
#define SHOW_SIZE (SHOW_MAX * 4 + 4)
static const char *show_n(const char *s, size_t n, char out[SHOW_SIZE])
{
	size_t o = 0;

	for (size_t i = 0; i < n && i < SHOW_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (n > SHOW_MAX) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static const char *show(const char *s, char out[SHOW_SIZE])
{
	return show_n(s, strlen(s), out);
}

/* "1 day", "3 minutes", "90 seconds": the largest unit that divides s. */
static void fmt_interval(int64_t s, char *out, size_t n)
{
	static const struct { const char *name; int64_t secs; } u[] = {
		{ "day", DAY }, { "hour", HOUR }, { "minute", MINUTE }, { "second", 1 },
	};
	size_t i = 0;

	while (i + 1 < ARRAY_LEN(u) && (s == 0 || s % u[i].secs != 0))
		i++;
	snprintf(out, n, "%" PRId64 " %s%s", s / u[i].secs, u[i].name, s / u[i].secs == 1 ? "" : "s");
}

/* "1 GB", "64 MB", "100 bytes": the largest unit that divides b. */
static void fmt_memory(uint64_t b, char *out, size_t n)
{
	static const struct { const char *name; uint64_t bytes; } u[] = {
		{ "TB", TB }, { "GB", GB }, { "MB", MB }, { "KB", KB }, { "bytes", 1 },
	};
	size_t i = 0;

	while (i + 1 < ARRAY_LEN(u) && (b == 0 || b % u[i].bytes != 0))
		i++;
	snprintf(out, n, "%" PRIu64 " %s", b / u[i].bytes, u[i].name);
}

/* ---- Value parsers, one per type ------------------------------------------
 * Each takes the key, the value text (borrowed, non-empty unless quoted) and
 * the field; it changes the field only on success, or returns cfg_fail(). */

static void *field_of(struct config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->offset;
}

static const void *cfield_of(const struct config *cfg, const struct config_key *k)
{
	return (const char *)cfg + k->offset;
}

/* Parse decimal digits at *p into *out; advance *p. False if none or overflow. */
static bool parse_digits(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return true;
}

struct unit {
	const char *name;
	uint64_t mult;
};

/* tor's interval units (torrc manual: "N seconds|minutes|hours|days|weeks"). */
static const struct unit interval_units[] = {
	{ "second", 1 }, { "seconds", 1 }, { "sec", 1 }, { "secs", 1 },
	{ "minute", MINUTE }, { "minutes", MINUTE }, { "min", MINUTE }, { "mins", MINUTE },
	{ "hour", HOUR }, { "hours", HOUR }, { "day", DAY }, { "days", DAY },
	{ "week", 7 * DAY }, { "weeks", 7 * DAY },
};

/* tor's memory units are powers of two: KB = 1024 bytes. */
static const struct unit memory_units[] = {
	{ "byte", 1 }, { "bytes", 1 }, { "B", 1 },
	{ "KB", KB }, { "KBytes", KB }, { "kilobyte", KB }, { "kilobytes", KB }, { "KiB", KB },
	{ "MB", MB }, { "MBytes", MB }, { "megabyte", MB }, { "megabytes", MB }, { "MiB", MB },
	{ "GB", GB }, { "GBytes", GB }, { "gigabyte", GB }, { "gigabytes", GB }, { "GiB", GB },
	{ "TB", TB }, { "TBytes", TB }, { "terabyte", TB }, { "terabytes", TB }, { "TiB", TB },
};

/* "N", "N unit" or "Nunit" (unit case-insensitive); a bare N is N units of 1. */
static bool parse_units(const char *v, const struct unit *u, size_t nu, uint64_t *out)
{
	uint64_t n;

	if (!parse_digits(&v, &n))
		return false;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '\0') {
		*out = n;
		return true;
	}
	for (size_t i = 0; i < nu; i++) {
		if (strcasecmp(v, u[i].name) != 0)
			continue;
		if (n > UINT64_MAX / u[i].mult)
			return false;
		*out = n * u[i].mult;
		return true;
	}
	return false;
}

static int parse_string(struct cfg_load *ld, const struct config_key *k, const char *v, void *f)
{
	char **s = f;

	(void)ld;
	(void)k;
	free(*s);
	*s = *v ? cfg_strndup(v, strlen(v)) : NULL;
	return 0;
}

static int parse_bool(struct cfg_load *ld, const struct config_key *k, const char *v, void *f)
{
	char shown[SHOW_SIZE];

	if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
		return cfg_fail(ld, "bad boolean \"%s\" for \"%s\" (expected 0 or 1)", show(v, shown), k->name);
	*(bool *)f = v[0] == '1';
	return 0;
}

static int parse_int(struct cfg_load *ld, const struct config_key *k, const char *v, void *f)
{
	const char *p = v + (*v == '-');
	char shown[SHOW_SIZE];
	uint64_t mag;
	int64_t x;

	if (!parse_digits(&p, &mag) || *p != '\0' || mag > INT64_MAX)
		goto bad;
	x = *v == '-' ? -(int64_t)mag : (int64_t)mag;
	if (x < k->min || x > k->max)
		goto bad;
	*(int64_t *)f = x;
	return 0;
bad:
	return cfg_fail(ld, "bad number \"%s\" for \"%s\" (expected an integer from %" PRId64 " to %" PRId64 ")",
			show(v, shown), k->name, k->min, k->max);
}

static int parse_interval(struct cfg_load *ld, const struct config_key *k, const char *v, void *f)
{
	char shown[SHOW_SIZE], lo[32], hi[32];
	uint64_t s;

	if (parse_units(v, interval_units, ARRAY_LEN(interval_units), &s) && s >= (uint64_t)k->min &&
	    s <= (uint64_t)k->max) {
		*(int64_t *)f = (int64_t)s;
		return 0;
	}
	fmt_interval(k->min, lo, sizeof(lo));
	fmt_interval(k->max, hi, sizeof(hi));
	return cfg_fail(ld, "bad interval \"%s\" for \"%s\" (expected a number with a unit such as \"10 minutes\", from %s to %s)",
			show(v, shown), k->name, lo, hi);
}

static int parse_memory(struct cfg_load *ld, const struct config_key *k, const char *v, void *f)
{
	char shown[SHOW_SIZE], lo[32], hi[32];
	uint64_t b;

	if (parse_units(v, memory_units, ARRAY_LEN(memory_units), &b) && b >= (uint64_t)k->min &&
	    b <= (uint64_t)k->max) {
		*(uint64_t *)f = b;
		return 0;
	}
	fmt_memory((uint64_t)k->min, lo, sizeof(lo));
	fmt_memory((uint64_t)k->max, hi, sizeof(hi));
	return cfg_fail(ld, "bad memory size \"%s\" for \"%s\" (expected a number with a unit such as \"64 MB\", from %s to %s)",
			show(v, shown), k->name, lo, hi);
}

static void lines_add(struct config_lines *l, const char *s, size_t n)
{
	l->v = cfg_realloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = cfg_strndup(s, n);
}

static int parse_lines(struct cfg_load *ld, const struct config_key *k, const char *v, void *f)
{
	(void)ld;
	(void)k;
	lines_add(f, v, strlen(v));
	return 0;
}

/* Comma-separated items, blanks around them dropped, empty items skipped. */
static int parse_nodes(struct cfg_load *ld, const struct config_key *k, const char *v, void *f)
{
	(void)ld;
	(void)k;
	while (*v) {
		size_t n = strcspn(v, ",");
		const char *s = v, *e = v + n;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s)
			lines_add(f, s, (size_t)(e - s));
		v += n + (v[n] == ',');
	}
	return 0;
}

/* Parse "auto" or 1..65535 into p. */
static bool port_number(const char *s, size_t n, struct config_port *p)
{
	uint64_t x = 0;

	if (n == 4 && strncasecmp(s, "auto", 4) == 0) {
		p->port_auto = true;
		return true;
	}
	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	p->port = (uint16_t)x;
	return x >= 1 && x <= 65535;
}

/* Parse an address (numeric, IPv6 in brackets) of n bytes into p->addr. */
static bool port_address(const char *s, size_t n, struct config_port *p)
{
	unsigned char bin[16];
	char tmp[64];
	int af = AF_INET;

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		af = AF_INET6;
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (inet_pton(af, tmp, bin) != 1)
		return false;
	p->is_ipv6 = af == AF_INET6;
	return inet_ntop(af, bin, p->addr, sizeof(p->addr)) != NULL;
}

/* Parse the first word w (n bytes): 1 "0" (off), 0 filled p, -1 bad. */
static int port_word(const char *w, size_t n, struct config_port *p)
{
	const char *colon;

	if (n == 1 && w[0] == '0')
		return 1;
	colon = memrchr(w, ':', n);
	if (!colon) {
		strcpy(p->addr, "127.0.0.1"); /* tor's default address for a bare port */
		return port_number(w, n, p) ? 0 : -1;
	}
	if (!port_address(w, (size_t)(colon - w), p))
		return -1;
	return port_number(colon + 1, n - (size_t)(colon - w) - 1, p) ? 0 : -1;
}

static int parse_ports(struct cfg_load *ld, const struct config_key *k, const char *v, void *f)
{
	struct config_ports *ports = f;
	struct config_port p = { .port = 0 };
	size_t n = strcspn(v, " \t");
	const char *flags = v + n + strspn(v + n, " \t");
	char shown[SHOW_SIZE];
	int r = port_word(v, n, &p);

	if (r < 0)
		return cfg_fail(ld, "bad port \"%s\" for \"%s\" (expected PORT, ADDRESS:PORT, \"auto\" or \"0\", with PORT from 1 to 65535)",
				show_n(v, n, shown), k->name);
	if (r > 0)
		return 0;
	p.flags = *flags ? cfg_strndup(flags, strlen(flags)) : NULL;
	ports->v = cfg_realloc(ports->v, (ports->n + 1) * sizeof(*ports->v));
	ports->v[ports->n++] = p;
	return 0;
}

/* "LEVEL" or "LEVEL-LEVEL" of n bytes into lg->min, lg->max. */
static bool log_levels(const char *s, size_t n, struct config_log *lg)
{
	char tmp[32];
	char *dash;
	int lo, hi;

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	dash = strchr(tmp, '-');
	if (dash)
		*dash++ = '\0';
	lo = log_level_parse(tmp);
	hi = dash ? log_level_parse(dash) : LOG_ERR;
	if (lo < 0 || hi < 0 || lo > hi)
		return false;
	lg->min = (enum log_level)lo;
	lg->max = (enum log_level)hi;
	return true;
}

/* tor's "Log minSeverity[-maxSeverity] stderr|stdout|file FILENAME"
 * (syslog and per-domain severities are not supported). */
static int parse_log(struct cfg_load *ld, const struct config_key *k, const char *v, void *f)
{
	struct config_logs *logs = f;
	struct config_log lg = { .sink = CONFIG_LOG_STDERR, .line = ld->line };
	size_t n = strcspn(v, " \t");
	const char *sink = v + n + strspn(v + n, " \t");
	size_t sn = strcspn(sink, " \t");
	const char *rest = sink + sn + strspn(sink + sn, " \t");
	char shown[SHOW_SIZE];

	if (!log_levels(v, n, &lg))
		goto bad;
	if (sn == 6 && strncasecmp(sink, "stderr", 6) == 0 && !*rest)
		lg.sink = CONFIG_LOG_STDERR;
	else if (sn == 6 && strncasecmp(sink, "stdout", 6) == 0 && !*rest)
		lg.sink = CONFIG_LOG_STDOUT;
	else if (sn == 4 && strncasecmp(sink, "file", 4) == 0 && *rest)
		lg.sink = CONFIG_LOG_FILE;
	else
		goto bad;
	lg.path = lg.sink == CONFIG_LOG_FILE ? cfg_strndup(rest, strlen(rest)) : NULL;
	logs->v = cfg_realloc(logs->v, (logs->n + 1) * sizeof(*logs->v));
	logs->v[logs->n++] = lg;
	return 0;
bad:
	return cfg_fail(ld, "bad log setting \"%s\" for \"%s\" (expected LEVEL[-LEVEL] stderr, stdout or file PATH, with LEVEL one of debug, info, notice, warn, err)",
			show(v, shown), k->name);
}

/* ---- Per-type operations: parse, free, compare, document ------------------ */

static void clear_string(void *f)
{
	free(*(char **)f);
	*(char **)f = NULL;
}

static void clear_scalar(void *f)
{
	(void)f; /* nothing owned; the next parse overwrites */
}

static void clear_lines(void *f)
{
	struct config_lines *l = f;

	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct config_lines){ 0 };
}

static void clear_ports(void *f)
{
	struct config_ports *p = f;

	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].flags);
	free(p->v);
	*p = (struct config_ports){ 0 };
}

static void clear_logs(void *f)
{
	struct config_logs *l = f;

	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	*l = (struct config_logs){ 0 };
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool eq_string(const void *a, const void *b)
{
	return str_eq(*(char *const *)a, *(char *const *)b);
}

static bool eq_bool(const void *a, const void *b)
{
	return *(const bool *)a == *(const bool *)b;
}

static bool eq_i64(const void *a, const void *b)
{
	return *(const int64_t *)a == *(const int64_t *)b;
}

static bool eq_u64(const void *a, const void *b)
{
	return *(const uint64_t *)a == *(const uint64_t *)b;
}

static bool eq_lines(const void *a, const void *b)
{
	const struct config_lines *x = a, *y = b;

	if (x->n != y->n)
		return false;
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->v[i], y->v[i]) != 0)
			return false;
	return true;
}

static bool eq_ports(const void *a, const void *b)
{
	const struct config_ports *x = a, *y = b;

	if (x->n != y->n)
		return false;
	for (size_t i = 0; i < x->n; i++) {
		const struct config_port *p = &x->v[i], *q = &y->v[i];

		if (strcmp(p->addr, q->addr) != 0 || p->port != q->port || p->port_auto != q->port_auto ||
		    !str_eq(p->flags, q->flags))
			return false;
	}
	return true;
}

static bool eq_logs(const void *a, const void *b)
{
	const struct config_logs *x = a, *y = b;

	if (x->n != y->n)
		return false;
	for (size_t i = 0; i < x->n; i++) {
		const struct config_log *p = &x->v[i], *q = &y->v[i];

		if (p->min != q->min || p->max != q->max || p->sink != q->sink || !str_eq(p->path, q->path))
			return false;
	}
	return true;
}

struct type_ops {
	const char *doc;  /* type name in the docs */
	bool is_list;     /* repeated keys append */
	int (*parse)(struct cfg_load *ld, const struct config_key *k, const char *v, void *f);
	void (*clear)(void *f);
	bool (*equal)(const void *a, const void *b);
};

static const struct type_ops type_ops[] = {
	[CONFIG_T_STRING] = { "string", false, parse_string, clear_string, eq_string },
	[CONFIG_T_BOOL] = { "boolean", false, parse_bool, clear_scalar, eq_bool },
	[CONFIG_T_INT] = { "integer", false, parse_int, clear_scalar, eq_i64 },
	[CONFIG_T_INTERVAL] = { "interval", false, parse_interval, clear_scalar, eq_i64 },
	[CONFIG_T_MEMORY] = { "memory size", false, parse_memory, clear_scalar, eq_u64 },
	[CONFIG_T_PORTS] = { "port list", true, parse_ports, clear_ports, eq_ports },
	[CONFIG_T_LINES] = { "line list", true, parse_lines, clear_lines, eq_lines },
	[CONFIG_T_NODES] = { "node list", true, parse_nodes, clear_lines, eq_lines },
	[CONFIG_T_LOG] = { "log list", true, parse_log, clear_logs, eq_logs },
};

/* ---- Lexer: text -> (key, value, line) entries ----------------------------- */

struct lexer {
	const char *p, *end;
	unsigned line; /* physical line of p, from 1 */
};

/* If p is at a backslash that ends a line (or the text), skip it, the line
 * end, and the comment lines right after it (torrc manual: comment lines
 * inside a continuation are ignored); return true. */
static bool lex_skip_continuation(struct lexer *lx)
{
	const char *q = lx->p + 1;

	if (lx->p >= lx->end || *lx->p != '\\')
		return false;
	if (q < lx->end && *q == '\r')
		q++;
	if (q < lx->end && *q != '\n')
		return false;
	lx->p = q < lx->end ? q + 1 : q;
	lx->line++;
	for (;;) {
		q = lx->p;
		while (q < lx->end && (*q == ' ' || *q == '\t'))
			q++;
		if (q >= lx->end || *q != '#')
			return true;
		while (q < lx->end && *q != '\n')
			q++;
		lx->p = q < lx->end ? q + 1 : q;
		lx->line++;
	}
}

/* Return the next character past any continuations, or -1 at the end. */
static int lex_peek(struct lexer *lx)
{
	while (lex_skip_continuation(lx))
		;
	return lx->p < lx->end ? (unsigned char)*lx->p : -1;
}

static void lex_skip_comment(struct lexer *lx)
{
	while (lx->p < lx->end && *lx->p != '\n')
		lx->p++;
}

static bool is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Skip blank and comment lines; false at the end of the text. */
static bool lex_skip_empty(struct lexer *lx)
{
	for (;;) {
		int c = lex_peek(lx);

		if (c < 0)
			return false;
		if (c == '#') {
			lex_skip_comment(lx);
		} else if (c == '\n') {
			lx->p++;
			lx->line++;
		} else if (is_blank(c)) {
			lx->p++;
		} else {
			return true;
		}
	}
}

static int lex_nul(struct cfg_load *ld)
{
	return cfg_fail(ld, "NUL byte in configuration");
}

/* Decode the escape after a backslash (already consumed) into *out. */
static int lex_escape(struct lexer *lx, struct cfg_load *ld, char *out)
{
	static const char plain[] = "n\nt\tr\r\\\\\"\"''"; /* pairs: escape letter, byte */
	const char *s = lx->p;
	size_t avail = (size_t)(lx->end - s);
	char shown[SHOW_SIZE];

	for (size_t i = 0; avail && i + 1 < sizeof(plain); i += 2) {
		if (*s == plain[i]) {
			*out = plain[i + 1];
			lx->p++;
			return 0;
		}
	}
	if (avail >= 3 && *s == 'x' && strchr("0123456789abcdefABCDEF", s[1]) && s[1] &&
	    strchr("0123456789abcdefABCDEF", s[2]) && s[2]) {
		char hex[3] = { s[1], s[2], 0 };

		*out = (char)strtol(hex, NULL, 16);
		lx->p += 3;
		if (*out != '\0')
			return 0;
	}
	/* \x00 would cut the value short: refused like any unknown escape */
	return cfg_fail(ld, "bad escape \"\\%s\" in quoted value",
			show_n(s, *s == 'x' ? MIN(avail, 3) : MIN(avail, 1), shown));
}

/* Read a quoted value (p at the opening quote) into val. */
static int lex_quoted(struct lexer *lx, struct cfg_load *ld, struct sbuf *val)
{
	int c;

	lx->p++;
	for (;;) {
		char ch;

		c = lex_peek(lx);
		if (c < 0 || c == '\n')
			return cfg_fail(ld, "unterminated quoted value");
		if (c == 0)
			return lex_nul(ld);
		lx->p++;
		if (c == '"')
			break;
		ch = (char)c;
		if (c == '\\' && lex_escape(lx, ld, &ch) < 0)
			return -1;
		sbuf_add(val, ch);
	}
	while (is_blank(c = lex_peek(lx)))
		lx->p++;
	if (c >= 0 && c != '\n' && c != '#')
		return cfg_fail(ld, "unexpected text after quoted value");
	return 0;
}

/* Read an unquoted value up to the line end or a comment; trim its end. */
static int lex_plain(struct lexer *lx, struct cfg_load *ld, struct sbuf *val)
{
	int c;

	while ((c = lex_peek(lx)) >= 0 && c != '\n' && c != '#') {
		if (c == 0)
			return lex_nul(ld);
		sbuf_add(val, (char)c);
		lx->p++;
	}
	while (val->len && is_blank(val->p[val->len - 1]))
		val->p[--val->len] = '\0';
	return 0;
}

/* Read the next entry into key and val, setting ld->line to the line its key
 * starts on and *has_value when a value (maybe a quoted empty one) follows.
 * Return 1 for an entry, 0 at the end, -1 on error (message in ld). */
static int lex_entry(struct lexer *lx, struct cfg_load *ld, struct sbuf *key, struct sbuf *val, bool *has_value)
{
	int c;

	sbuf_reset(key);
	sbuf_reset(val);
	if (!lex_skip_empty(lx))
		return 0;
	ld->line = lx->line;
	while ((c = lex_peek(lx)) >= 0 && !is_blank(c) && c != '\n' && c != '#') {
		if (c == 0)
			return lex_nul(ld);
		sbuf_add(key, (char)c);
		lx->p++;
	}
	while (is_blank(c = lex_peek(lx)))
		lx->p++;
	*has_value = c == '"';
	if (c == '"' ? lex_quoted(lx, ld, val) < 0 : lex_plain(lx, ld, val) < 0)
		return -1;
	*has_value = *has_value || val->len > 0;
	lex_skip_comment(lx);
	if (lx->p < lx->end) {
		lx->p++; /* the '\n' */
		lx->line++;
	}
	return 1;
}

/* ---- Loading ---------------------------------------------------------------- */

/* Assign one entry of the text to cfg. */
static int cfg_assign(struct cfg_load *ld, struct config *cfg, const char *key, const char *val, bool has_value)
{
	const struct config_key *k = config_key_find(key);
	char shown[SHOW_SIZE];
	size_t idx;

	if (!k)
		return cfg_fail(ld, "unknown configuration key \"%s\"", show(key, shown));
	if (!has_value)
		return cfg_fail(ld, "missing value for \"%s\"", k->name);
	idx = (size_t)(k - config_table);
	if (type_ops[k->type].is_list && !ld->key_line[idx])
		type_ops[k->type].clear(field_of(cfg, k)); /* the text replaces the default list */
	else if (!type_ops[k->type].is_list && ld->key_line[idx])
		log_warn("%s:%u: \"%s\" was already set on line %u; the last value wins", ld->name, ld->line,
			 k->name, ld->key_line[idx]);
	ld->key_line[idx] = ld->line;
	return type_ops[k->type].parse(ld, k, val, field_of(cfg, k));
}

/* Rules that involve more than one key; the message points at the later line. */
static int cfg_check(struct cfg_load *ld, const struct config *cfg)
{
	const struct config_key *lo = config_key_find("CircuitPoolMinSize");
	const struct config_key *hi = config_key_find("CircuitPoolMaxSize");

	if (cfg->circuit_pool_min_size <= cfg->circuit_pool_max_size)
		return 0;
	ld->line = MAX(ld->key_line[lo - config_table], ld->key_line[hi - config_table]);
	return cfg_fail(ld, "\"%s\" (%" PRId64 ") is larger than \"%s\" (%" PRId64 ")", lo->name,
			cfg->circuit_pool_min_size, hi->name, cfg->circuit_pool_max_size);
}

struct config *config_new_defaults(void)
{
	struct config *cfg = cfg_realloc(NULL, sizeof(*cfg));
	char err[CONFIG_ERR_MAX];
	struct cfg_load ld = { .name = "<defaults>", .err = err, .errlen = sizeof(err) };

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < ARRAY_LEN(config_table); i++) {
		const struct config_key *k = &config_table[i];
		int r = k->def ? type_ops[k->type].parse(&ld, k, k->def, field_of(cfg, k)) : 0;

		if (r < 0)
			log_err("bad default in the key table: %s", err);
		BUG_ON(r < 0);
	}
	return cfg;
}

int config_load_string(const char *text, size_t len, const char *name, struct config **out, char *err,
		       size_t errlen)
{
	struct config *cfg = config_new_defaults();
	struct cfg_load ld = { .name = name, .err = err, .errlen = errlen };
	struct lexer lx = { .p = text, .end = text + len, .line = 1 };
	struct sbuf key = { 0 }, val = { 0 };
	bool has_value = false;
	int r;

	while ((r = lex_entry(&lx, &ld, &key, &val, &has_value)) > 0)
		if (cfg_assign(&ld, cfg, key.p, val.p ? val.p : "", has_value) < 0) {
			r = -1;
			break;
		}
	if (r == 0)
		r = cfg_check(&ld, cfg);
	free(key.p);
	free(val.p);
	if (r < 0) {
		config_free(cfg);
		return -EINVAL;
	}
	*out = cfg;
	return 0;
}

/* Read all of fd (at most CONFIG_FILE_MAX bytes) into an owned buffer. */
static int read_all(int fd, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = cfg_realloc(NULL, cap);

	for (;;) {
		ssize_t r;

		if (n == cap) {
			if (cap >= CONFIG_FILE_MAX) {
				free(b);
				return -EFBIG;
			}
			cap *= 2;
			b = cfg_realloc(b, cap);
		}
		r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;

			free(b);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*buf = b;
	*len = n;
	return 0;
}

int config_load_file(const char *path, struct config **out, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *text = NULL;
	size_t len = 0;
	int r;

	r = fd < 0 ? -errno : read_all(fd, &text, &len);
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		if (errlen)
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-r));
		return r;
	}
	r = config_load_string(text, len, path, out, err, errlen);
	free(text);
	return r;
}

void config_free_(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < ARRAY_LEN(config_table); i++)
		type_ops[config_table[i].type].clear(field_of(cfg, &config_table[i]));
	free(cfg);
}

size_t config_diff(const struct config *a, const struct config *b, const struct config_key **changed, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_LEN(config_table); i++) {
		const struct config_key *k = &config_table[i];

		if (type_ops[k->type].equal(cfield_of(a, k), cfield_of(b, k)))
			continue;
		if (n < cap)
			changed[n] = k;
		n++;
	}
	return n;
}

/* ---- Documentation ------------------------------------------------------------ */

static const char doc_head[] =
	"# onionring configuration\n"
	"\n"
	"<!-- Generated from the key table in core/config.c by `onionring --list-config-keys`;\n"
	"     test_config fails when this file differs. Do not edit by hand. -->\n"
	"\n"
	"`onionring -f FILE` reads a torrc-style file; without `-f` every key has its\n"
	"default. `onionring --verify-config -f FILE` checks a file and exits.\n"
	"\n"
	"## Syntax\n"
	"\n"
	"- One `Key value` per line. Keys are case-insensitive. An unknown key is an error.\n"
	"- `#` starts a comment, also after a value. Blank lines are ignored.\n"
	"- A backslash at the very end of a line joins the next line to it; lines\n"
	"  starting with `#` inside such a continuation are skipped.\n"
	"- A value starting with `\"` is a quoted string with the escapes `\\n \\t \\r \\\\ \\\" \\' \\xNN`;\n"
	"  only a comment may follow the closing quote.\n"
	"- List keys may repeat: the first line replaces the default and later lines\n"
	"  append. A repeated single-valued key: the last value wins, with a warning.\n"
	"- An error names the file and the line where the entry's key starts, for example\n"
	"  `onionring.conf:7: bad number \"12x\" for \"NumWorkers\" (expected an integer from 0 to 256)`,\n"
	"  and onionring exits with status 1. On SIGHUP a bad file is rejected the same\n"
	"  way and the configuration in force stays.\n"
	"\n"
	"## Types\n"
	"\n"
	"- boolean: `0` or `1`.\n"
	"- integer: decimal, within the range shown.\n"
	"- interval: a number and a unit (`second`, `minute`, `hour`, `day`, `week`, plural\n"
	"  or not, also `sec`, `min`); a bare number is seconds.\n"
	"- memory size: a number and a unit (`bytes`, `KB`, `MB`, `GB`, `TB`; powers of\n"
	"  two as in tor); a bare number is bytes.\n"
	"- port list: `PORT`, `ADDRESS:PORT`, `[IPv6]:PORT`, `auto` (any free port) or `0`\n"
	"  (off), then optional flags kept as text for the listener (for example\n"
	"  `SocksPort 9050 IsolateDestAddr IsolateSOCKSAuth`). A bare port listens on 127.0.0.1.\n"
	"- line list: each line kept as written. node list: comma-separated items.\n"
	"- log list: `LEVEL[-LEVEL] stderr`, `stdout` or `file PATH`; LEVEL is one of\n"
	"  `debug`, `info`, `notice`, `warn`, `err`.\n"
	"\n"
	"## Keys\n"
	"\n"
	"\"Run time: yes\" means a SIGHUP applies a change; \"no\" means a restart is needed\n"
	"and a SIGHUP that changes the key is refused.\n"
	"\n"
	"| Key | Type | Default | Range | Run time | Description |\n"
	"|---|---|---|---|---|---|\n";

static void doc_range(FILE *f, const struct config_key *k)
{
	char lo[32], hi[32];

	if (k->type == CONFIG_T_INT) {
		fprintf(f, "%" PRId64 " to %" PRId64, k->min, k->max);
	} else if (k->type == CONFIG_T_INTERVAL) {
		fmt_interval(k->min, lo, sizeof(lo));
		fmt_interval(k->max, hi, sizeof(hi));
		fprintf(f, "%s to %s", lo, hi);
	} else if (k->type == CONFIG_T_MEMORY) {
		fmt_memory((uint64_t)k->min, lo, sizeof(lo));
		fmt_memory((uint64_t)k->max, hi, sizeof(hi));
		fprintf(f, "%s to %s", lo, hi);
	}
}

char *config_doc_markdown(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		fputs("onionring: out of memory writing the key table\n", stderr);
		abort();
	}
	fputs(doc_head, f);
	for (size_t i = 0; i < ARRAY_LEN(config_table); i++) {
		const struct config_key *k = &config_table[i];

		fprintf(f, "| `%s` | %s | ", k->name, type_ops[k->type].doc);
		if (k->doc_def)
			fputs(k->doc_def, f);
		else if (k->def)
			fprintf(f, "`%s`", k->def);
		else
			fputs("(none)", f);
		fputs(" | ", f);
		doc_range(f, k);
		fprintf(f, " | %s | %s |\n", config_key_is_runtime(k) ? "yes" : "no", k->desc);
	}
	fclose(f);
	return buf;
}
