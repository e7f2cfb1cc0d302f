/* Directory sources: the directory authorities onionring trusts and the
 * fallback directories it may bootstrap from. Parses tor's `DirAuthority`
 * torrc lines into records, and holds the compiled-in list of the public
 * Tor network's authorities and a few fallbacks (used when no DirAuthority
 * line is configured).
 *
 * For: knowing whom to ask and whose signatures count (the v3 identities).
 * Not for: fetching (app/dirmgr.h drives a struct dir_fetcher) or verifying
 * documents (proto/consensus.h). Control plane; any one thread at a time may
 * build a list; a built list is read-only and may be read from any thread. */
#ifndef ONIONRING_APP_DIRAUTH_H
#define ONIONRING_APP_DIRAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/crypto.h"

#define DIRAUTH_NICK_MAX 19

enum dir_source_flag {
	DIR_SOURCE_V3 = 1u << 0,       /* has a v3ident: its consensus signatures count */
	DIR_SOURCE_BRIDGE = 1u << 1,   /* "bridge": a bridge authority (never trusted for consensus) */
	DIR_SOURCE_NO_V2 = 1u << 2,    /* "no-v2" (legacy flag tor still accepts) */
	DIR_SOURCE_FALLBACK = 1u << 3, /* a fallback directory mirror, not an authority */
	DIR_SOURCE_IPV6 = 1u << 4,     /* ipv6/ipv6_port are set */
	DIR_SOURCE_CACHE = 1u << 5,    /* a directory cache chosen from the consensus (dirmgr) */
};

/* Where directory documents can be fetched from. */
struct dir_source {
	char nickname[DIRAUTH_NICK_MAX + 1]; /* "" when the line had none */
	uint32_t ipv4;                       /* host order */
	uint16_t dir_port;                   /* 0: none (fallbacks: BEGIN_DIR only) */
	uint16_t or_port;                    /* 0: unknown */
	uint8_t ipv6[16];
	uint16_t ipv6_port;
	uint8_t fingerprint[SHA1_LEN]; /* RSA identity of the relay */
	uint8_t v3ident[SHA1_LEN];     /* authority signing identity (DIR_SOURCE_V3) */
	unsigned flags;                /* enum dir_source_flag */
};

struct dirauth_list {
	struct dir_source *v; /* owned */
	size_t n;
	bool is_default; /* the compiled-in public-network list */
};

/* Parse one DirAuthority value (the text after the key), tor's syntax:
 *   [nickname] [flags] ipv4address:dirport fingerprint
 * flags: orport=N, v3ident=HEX40, ipv6=[addr]:port, weight=N, bridge,
 * no-v2, hs, no-hs, v1, v2 (the last four are accepted and ignored, as tor
 * does); the fingerprint is 40 hex digits, spaces between groups allowed.
 * Unknown flags are logged and ignored like tor. On success fill *out and
 * return 0; otherwise write a one-line reason to err and return -EINVAL.
 * Borrows line. Any thread. */
int dirauth_parse_line(const char *line, struct dir_source *out, char *err, size_t errlen);

/* Build the list from the DirAuthority lines (borrowed); with no lines, the
 * compiled-in public network list. Return 0, or -EINVAL with the reason
 * (naming the bad line) in err; also when no line gives a v3 authority.
 * *out is owned by the caller (dirauth_list_free). Any thread. */
int dirauth_list_from_config(const struct config_lines *lines, struct dirauth_list *out, char *err,
			     size_t errlen);

/* Fill *out with the compiled-in public network list (owned). */
void dirauth_list_defaults(struct dirauth_list *out);

/* Free the list's records and zero it (NULL-safe contents). */
void dirauth_list_free(struct dirauth_list *l);

/* Copy the v3 identities of the trusted (non-bridge, v3) authorities into
 * out[0..cap); return how many there are (may exceed cap). Borrows l. */
size_t dirauth_v3idents(const struct dirauth_list *l, uint8_t (*out)[SHA1_LEN], size_t cap);

/* Format src as "nick 1.2.3.4:80" into buf (for log lines); returns buf. */
const char *dir_source_describe(const struct dir_source *src, char *buf, size_t len);

#endif
