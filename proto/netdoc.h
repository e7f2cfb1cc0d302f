/* Directory-document tokenizer (dir-spec.txt section 1.2) and the small
 * value parsers every document parser shares: times, integers, IPv4
 * addresses, object bodies, and "pr" protocol lists.
 *
 * Zero-copy: tokens are spans into the caller's buffer, which must outlive
 * them. No allocation, no I/O; any thread. Not for deciding what a keyword
 * means: consensus.c, authcert.c and microdesc.c do that. */
#ifndef ONIONRING_PROTO_NETDOC_H
#define ONIONRING_PROTO_NETDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/status.h"

/* Longest keyword line or object line we accept. Family lines of large
 * families are the longest in practice (a few KiB). */
#define NETDOC_MAX_LINE 65536

struct netdoc_span {
	const char *p;
	size_t len;
};

/* Why a document was refused, and where (1-based line; 0 = not a line). */
struct netdoc_err {
	const char *reason;
	unsigned line;
};

/* One Item: a keyword line and its optional object. */
struct netdoc_tok {
	struct netdoc_span kw;       /* the keyword */
	struct netdoc_span args;     /* after the keyword and its WS; no NL, no trailing WS */
	struct netdoc_span obj_type; /* "RSA PUBLIC KEY"; len 0 when no object */
	struct netdoc_span obj_body; /* base64 lines between BEGIN and END */
	const char *start;           /* first byte of the keyword line */
	const char *line_end;        /* one past the keyword line's NL */
	const char *end;             /* one past the item's last NL */
	unsigned line;               /* line number of the keyword line */
};

struct netdoc_reader {
	const char *base; /* start of the whole buffer (line numbers count from here) */
	const char *cur;
	const char *end;
	unsigned line;    /* number of the line at cur */
};

/* Start reading len bytes at doc (borrowed), counting lines from 1. */
void netdoc_reader_init(struct netdoc_reader *r, const char *doc, size_t len);

/* True when only empty lines (or nothing) are left. */
bool netdoc_at_end(const struct netdoc_reader *r);

/* Read the next item into t, skipping empty lines. Return PARSE_OK;
 * PARSE_NEED_MORE when the input ends inside an item or there is no item
 * left (err->reason says which); PARSE_INVALID for a NUL byte, an over-long
 * line, a bad keyword or a malformed object. err gets the line number. */
enum parse_result netdoc_next(struct netdoc_reader *r, struct netdoc_tok *t,
			      struct netdoc_err *err);

/* Skip empty lines and annotation lines (starting with '@', as tor's
 * cached-microdescs has before each entry). Return the start of the first
 * annotation line skipped, or NULL if there was none. */
const char *netdoc_skip_annotations(struct netdoc_reader *r);

/* Set err to reason at line; return PARSE_INVALID (for one-line error paths). */
enum parse_result netdoc_fail(struct netdoc_err *err, const char *reason, unsigned line);

static inline bool netdoc_span_eq(struct netdoc_span s, const char *lit)
{
	size_t n = __builtin_strlen(lit);
	return s.len == n && __builtin_memcmp(s.p, lit, n) == 0;
}

/* Split the next WS-separated argument off *rest into *arg; false if none. */
bool netdoc_arg_next(struct netdoc_span *rest, struct netdoc_span *arg);
/* Split up to max arguments of t into out; return how many there were in
 * all (which may exceed max: the rest are not stored). */
size_t netdoc_args(const struct netdoc_tok *t, struct netdoc_span *out, size_t max);

/* Decimal unsigned integer with no sign, at most max. */
bool netdoc_parse_u64(struct netdoc_span s, uint64_t max, uint64_t *out);
/* Decimal signed 32-bit integer (optional leading '-'). */
bool netdoc_parse_i32(struct netdoc_span s, int32_t *out);
/* "YYYY-MM-DD" and "HH:MM:SS" (two arguments) as UTC. */
bool netdoc_parse_time(struct netdoc_span date, struct netdoc_span hms, time_t *out);
/* Dotted-quad IPv4 address; *out in host byte order. */
bool netdoc_parse_ipv4(struct netdoc_span s, uint32_t *out);
/* "[v6addr]:port" as in "a" lines; out is 16 bytes network order. */
bool netdoc_parse_ipv6_port(struct netdoc_span s, uint8_t out[16], uint16_t *port);
/* Base64 of exactly n bytes, with or without padding (digests, keys). */
bool netdoc_parse_b64_exact(struct netdoc_span s, uint8_t *out, size_t n);
/* 40 hex digits (either case) as a 20-byte digest. */
bool netdoc_parse_hex20(struct netdoc_span s, uint8_t out[20]);

/* Decode the object of t, which must have type `type`, into out (cap).
 * Return the decoded length or -1 (no object, other type, bad base64). */
ssize_t netdoc_object_decode(const struct netdoc_tok *t, const char *type, uint8_t *out,
			     size_t cap);

/* Subprotocol versions ("pr" lines, recommended/required-*-protocols),
 * tor-spec.txt section 9 / dir-spec.txt "proto": a bitmask of versions
 * 0..63 per known protocol. Unknown protocol names are ignored. */
enum protover_kind {
	PROTOVER_CONFLUX,
	PROTOVER_CONS,
	PROTOVER_DESC,
	PROTOVER_DIRCACHE,
	PROTOVER_FLOWCTRL,
	PROTOVER_HSDIR,
	PROTOVER_HSINTRO,
	PROTOVER_HSREND,
	PROTOVER_LINK,
	PROTOVER_LINKAUTH,
	PROTOVER_MICRODESC,
	PROTOVER_PADDING,
	PROTOVER_RELAY,
	PROTOVER_COUNT,
};

struct protover {
	uint64_t v[PROTOVER_COUNT];
};

/* Parse "Name=1-3,5 Name2=4" (the whole argument span). Return false for
 * malformed entries, versions above 63, or a repeated protocol name. */
bool protover_parse(struct netdoc_span args, struct protover *out);

static inline bool protover_supports(const struct protover *p, enum protover_kind k, unsigned v)
{
	return v < 64 && (p->v[k] >> v) & 1;
}

/* True when have supports every version that need lists. */
bool protover_covers(const struct protover *have, const struct protover *need);

#endif
