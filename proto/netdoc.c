/* Directory-document tokenizer and shared value parsers (see netdoc.h).
 * Follows dir-spec.txt section 1.2: Document ::= (Item | NL)+,
 * Item ::= KeywordLine Object?, Objects framed by -----BEGIN X----- and
 * -----END X----- with the same keyword. */
#include "proto/netdoc.h"

#include <arpa/inet.h>
#include <string.h>

#include "core/base64.h"

#define BEGIN_PFX "-----BEGIN "
#define END_PFX "-----END "
#define DASHES "-----"

void netdoc_reader_init(struct netdoc_reader *r, const char *doc, size_t len)
{
	r->base = doc;
	r->cur = doc;
	r->end = doc + len;
	r->line = 1;
}

static void skip_empty_lines(struct netdoc_reader *r)
{
	while (r->cur < r->end && *r->cur == '\n') {
		r->cur++;
		r->line++;
	}
}

bool netdoc_at_end(const struct netdoc_reader *r)
{
	const char *p = r->cur;

	while (p < r->end && *p == '\n')
		p++;
	return p == r->end;
}

const char *netdoc_skip_annotations(struct netdoc_reader *r)
{
	const char *first = NULL;

	for (;;) {
		skip_empty_lines(r);
		if (r->cur == r->end || *r->cur != '@')
			return first;
		const char *nl = memchr(r->cur, '\n', (size_t)(r->end - r->cur));
		if (!nl)
			return first; /* netdoc_next reports the truncated line */
		if (!first)
			first = r->cur;
		r->cur = nl + 1;
		r->line++;
	}
}

enum parse_result netdoc_fail(struct netdoc_err *err, const char *reason, unsigned line)
{
	err->reason = reason;
	err->line = line;
	return PARSE_INVALID;
}

static enum parse_result need_more(struct netdoc_err *err, const char *reason, unsigned line)
{
	err->reason = reason;
	err->line = line;
	return PARSE_NEED_MORE;
}

/* Find the NL ending the line at p: OK with *nl set, NEED_MORE if the
 * input stops first, INVALID for NUL bytes or an over-long line. */
static enum parse_result line_at(const char *p, const char *end, const char **nl,
				 struct netdoc_err *err, unsigned line)
{
	size_t avail = (size_t)(end - p);
	size_t scan = avail < NETDOC_MAX_LINE + 1 ? avail : NETDOC_MAX_LINE + 1;
	const char *q = memchr(p, '\n', scan);

	if (!q) {
		if (avail > NETDOC_MAX_LINE)
			return netdoc_fail(err, "line too long", line);
		if (memchr(p, '\0', avail))
			return netdoc_fail(err, "NUL byte", line);
		return need_more(err, "truncated line", line);
	}
	if (memchr(p, '\0', (size_t)(q - p)))
		return netdoc_fail(err, "NUL byte", line);
	*nl = q;
	return PARSE_OK;
}

static bool is_kw_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_ws(char c) { return c == ' ' || c == '\t'; }

static bool starts_with(const char *p, const char *end, const char *lit)
{
	size_t n = strlen(lit);
	return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

/* Object type: Keyword (" " Keyword)*. */
static bool obj_type_ok(const char *p, size_t n)
{
	if (n == 0 || !is_kw_start((unsigned char)p[0]) || p[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!is_kw_start(c) && c != '-' && c != ' ')
			return false;
		if (c == ' ' && p[i + 1] == ' ')
			return false;
	}
	return true;
}

/* Parse the keyword line [p, nl) into t. */
static enum parse_result keyword_line(const char *p, const char *nl, struct netdoc_tok *t,
				      struct netdoc_err *err, unsigned line)
{
	const char *q = p;

	if (!is_kw_start((unsigned char)*q))
		return netdoc_fail(err, "bad keyword", line);
	while (q < nl && (is_kw_start((unsigned char)*q) || *q == '-'))
		q++;
	if (q < nl && !is_ws(*q))
		return netdoc_fail(err, "bad keyword", line);
	t->kw.p = p;
	t->kw.len = (size_t)(q - p);
	while (q < nl && is_ws(*q))
		q++;
	const char *ae = nl;
	while (ae > q && is_ws(ae[-1]))
		ae--;
	t->args.p = q;
	t->args.len = (size_t)(ae - q);
	return PARSE_OK;
}

/* Parse the object starting at r->cur (which starts with BEGIN_PFX). */
static enum parse_result object_at(struct netdoc_reader *r, struct netdoc_tok *t,
				   struct netdoc_err *err)
{
	unsigned begin_line = r->line;
	const char *nl;
	enum parse_result pr = line_at(r->cur, r->end, &nl, err, r->line);

	if (pr != PARSE_OK)
		return pr == PARSE_NEED_MORE ? need_more(err, "truncated object", begin_line) : pr;
	const char *tp = r->cur + strlen(BEGIN_PFX);
	if (nl - tp < (ptrdiff_t)strlen(DASHES) || memcmp(nl - 5, DASHES, 5) != 0 ||
	    !obj_type_ok(tp, (size_t)(nl - 5 - tp)))
		return netdoc_fail(err, "malformed object BEGIN line", r->line);
	t->obj_type.p = tp;
	t->obj_type.len = (size_t)(nl - 5 - tp);
	r->cur = nl + 1;
	r->line++;
	t->obj_body.p = r->cur;
	for (;;) {
		pr = line_at(r->cur, r->end, &nl, err, r->line);
		if (pr != PARSE_OK)
			return pr == PARSE_NEED_MORE ? need_more(err, "truncated object", begin_line) : pr;
		if (*r->cur == '-')
			break;
		r->cur = nl + 1;
		r->line++;
	}
	t->obj_body.len = (size_t)(r->cur - t->obj_body.p);
	size_t want = strlen(END_PFX) + t->obj_type.len + 5;
	if ((size_t)(nl - r->cur) != want || !starts_with(r->cur, nl, END_PFX) ||
	    memcmp(r->cur + strlen(END_PFX), t->obj_type.p, t->obj_type.len) != 0 ||
	    memcmp(nl - 5, DASHES, 5) != 0)
		return netdoc_fail(err, "object END does not match BEGIN", r->line);
	r->cur = nl + 1;
	r->line++;
	return PARSE_OK;
}

enum parse_result netdoc_next(struct netdoc_reader *r, struct netdoc_tok *t,
			      struct netdoc_err *err)
{
	const char *nl;
	enum parse_result pr;

	skip_empty_lines(r);
	if (r->cur == r->end)
		return need_more(err, "no more items", r->line);
	pr = line_at(r->cur, r->end, &nl, err, r->line);
	if (pr != PARSE_OK)
		return pr;
	pr = keyword_line(r->cur, nl, t, err, r->line);
	if (pr != PARSE_OK)
		return pr;
	t->start = r->cur;
	t->line = r->line;
	t->line_end = nl + 1;
	t->obj_type.p = t->obj_body.p = NULL;
	t->obj_type.len = t->obj_body.len = 0;
	r->cur = nl + 1;
	r->line++;
	if (r->cur < r->end && *r->cur == '-') {
		if (!starts_with(r->cur, r->end, BEGIN_PFX)) {
			/* A prefix of "-----BEGIN " cut by the end of input. */
			size_t left = (size_t)(r->end - r->cur);
			if (left < strlen(BEGIN_PFX) && memcmp(r->cur, BEGIN_PFX, left) == 0)
				return need_more(err, "truncated object", r->line);
			return netdoc_fail(err, "bad keyword", r->line);
		}
		pr = object_at(r, t, err);
		if (pr != PARSE_OK)
			return pr;
	}
	t->end = r->cur;
	return PARSE_OK;
}

bool netdoc_arg_next(struct netdoc_span *rest, struct netdoc_span *arg)
{
	const char *p = rest->p, *e = rest->p + rest->len;

	while (p < e && is_ws(*p))
		p++;
	if (p == e) {
		rest->p = e;
		rest->len = 0;
		return false;
	}
	arg->p = p;
	while (p < e && !is_ws(*p))
		p++;
	arg->len = (size_t)(p - arg->p);
	rest->p = p;
	rest->len = (size_t)(e - p);
	return true;
}

size_t netdoc_args(const struct netdoc_tok *t, struct netdoc_span *out, size_t max)
{
	struct netdoc_span rest = t->args, a;
	size_t n = 0;

	while (netdoc_arg_next(&rest, &a)) {
		if (n < max)
			out[n] = a;
		n++;
	}
	return n;
}

bool netdoc_parse_u64(struct netdoc_span s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s.len == 0 || s.len > 20)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned d = (unsigned char)s.p[i] - '0';
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

bool netdoc_parse_i32(struct netdoc_span s, int32_t *out)
{
	bool neg = s.len > 0 && s.p[0] == '-';
	uint64_t v;

	if (neg) {
		s.p++;
		s.len--;
	}
	if (!netdoc_parse_u64(s, neg ? 2147483648u : 2147483647u, &v))
		return false;
	*out = neg ? (int32_t)(-(int64_t)v) : (int32_t)v;
	return true;
}

/* Read exactly n digits at p. */
static bool digits(const char *p, size_t n, unsigned *out)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)p[i] - '0';
		if (d > 9)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's method). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

bool netdoc_parse_time(struct netdoc_span date, struct netdoc_span hms, time_t *out)
{
	static const unsigned mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, s;

	if (date.len != 10 || hms.len != 8 || date.p[4] != '-' || date.p[7] != '-' ||
	    hms.p[2] != ':' || hms.p[5] != ':')
		return false;
	if (!digits(date.p, 4, &y) || !digits(date.p + 5, 2, &mo) || !digits(date.p + 8, 2, &d) ||
	    !digits(hms.p, 2, &h) || !digits(hms.p + 3, 2, &mi) || !digits(hms.p + 6, 2, &s))
		return false;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    s > 60)
		return false;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	*out = (time_t)(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s);
	return true;
}

bool netdoc_parse_ipv4(struct netdoc_span s, uint32_t *out)
{
	uint32_t v = 0;
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t start = i;
		unsigned octet = 0;
		while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9' && i - start < 3)
			octet = octet * 10 + (unsigned)(s.p[i++] - '0');
		if (i == start || octet > 255 || (i - start > 1 && s.p[start] == '0'))
			return false;
		v = v << 8 | octet;
		if (part < 3 && (i >= s.len || s.p[i++] != '.'))
			return false;
	}
	if (i != s.len)
		return false;
	*out = v;
	return true;
}

bool netdoc_parse_ipv6_port(struct netdoc_span s, uint8_t out[16], uint16_t *port)
{
	char buf[64];
	const char *close;
	uint64_t p;

	if (s.len < 4 || s.p[0] != '[')
		return false;
	close = memchr(s.p, ']', s.len);
	if (!close || (size_t)(close - s.p - 1) >= sizeof(buf) || close + 1 >= s.p + s.len ||
	    close[1] != ':')
		return false;
	memcpy(buf, s.p + 1, (size_t)(close - s.p - 1));
	buf[close - s.p - 1] = '\0';
	if (inet_pton(AF_INET6, buf, out) != 1)
		return false;
	struct netdoc_span ps = { close + 2, (size_t)(s.p + s.len - close - 2) };
	if (!netdoc_parse_u64(ps, 65535, &p) || p == 0)
		return false;
	*port = (uint16_t)p;
	return true;
}

bool netdoc_parse_b64_exact(struct netdoc_span s, uint8_t *out, size_t n)
{
	uint8_t buf[128];
	ssize_t got;

	if (n > sizeof(buf) - 3 || s.len > base64_encoded_len(n))
		return false;
	got = base64_decode(buf, sizeof(buf), s.p, s.len);
	if (got != (ssize_t)n)
		return false;
	memcpy(out, buf, n);
	return true;
}

bool netdoc_parse_hex20(struct netdoc_span s, uint8_t out[20])
{
	return s.len == 40 && base16_decode(out, 20, s.p, 40) == 20;
}

ssize_t netdoc_object_decode(const struct netdoc_tok *t, const char *type, uint8_t *out,
			     size_t cap)
{
	if (!t->obj_type.p || !netdoc_span_eq(t->obj_type, type))
		return -1;
	return base64_decode(out, cap, t->obj_body.p, t->obj_body.len);
}

#define NAME(s) { s, sizeof(s) - 1 }
static const struct {
	const char *name;
	size_t len;
} protover_names[PROTOVER_COUNT] = {
	[PROTOVER_CONFLUX] = NAME("Conflux"),     [PROTOVER_CONS] = NAME("Cons"),
	[PROTOVER_DESC] = NAME("Desc"),           [PROTOVER_DIRCACHE] = NAME("DirCache"),
	[PROTOVER_FLOWCTRL] = NAME("FlowCtrl"),   [PROTOVER_HSDIR] = NAME("HSDir"),
	[PROTOVER_HSINTRO] = NAME("HSIntro"),     [PROTOVER_HSREND] = NAME("HSRend"),
	[PROTOVER_LINK] = NAME("Link"),           [PROTOVER_LINKAUTH] = NAME("LinkAuth"),
	[PROTOVER_MICRODESC] = NAME("Microdesc"), [PROTOVER_PADDING] = NAME("Padding"),
	[PROTOVER_RELAY] = NAME("Relay"),
};
#undef NAME

static int protover_lookup(struct netdoc_span name)
{
	for (int k = 0; k < PROTOVER_COUNT; k++)
		if (name.len == protover_names[k].len &&
		    memcmp(name.p, protover_names[k].name, name.len) == 0)
			return k;
	return -1;
}

/* "1-3,5": versions as a bitmask; false if malformed or above 63. */
static bool protover_ranges(struct netdoc_span s, uint64_t *mask)
{
	const char *p = s.p, *e = s.p + s.len;

	*mask = 0;
	while (p < e) {
		const char *c = memchr(p, ',', (size_t)(e - p));
		const char *ie = c ? c : e;
		const char *dash = memchr(p, '-', (size_t)(ie - p));
		struct netdoc_span lo = { p, (size_t)((dash ? dash : ie) - p) };
		uint64_t a, b;
		if (!netdoc_parse_u64(lo, 63, &a))
			return false;
		b = a;
		if (dash) {
			struct netdoc_span hi = { dash + 1, (size_t)(ie - dash - 1) };
			if (!netdoc_parse_u64(hi, 63, &b) || b < a)
				return false;
		}
		for (uint64_t v = a; v <= b; v++)
			*mask |= 1ull << v;
		if (!c)
			break;
		p = c + 1;
		if (p == e)
			return false;
	}
	return true;
}

bool protover_parse(struct netdoc_span args, struct protover *out)
{
	struct netdoc_span rest = args, ent;
	bool seen[PROTOVER_COUNT] = { false };

	memset(out, 0, sizeof(*out));
	while (netdoc_arg_next(&rest, &ent)) {
		const char *eq = memchr(ent.p, '=', ent.len);
		uint64_t mask;
		if (!eq || eq == ent.p)
			return false;
		struct netdoc_span name = { ent.p, (size_t)(eq - ent.p) };
		struct netdoc_span vers = { eq + 1, (size_t)(ent.p + ent.len - eq - 1) };
		if (!protover_ranges(vers, &mask))
			return false;
		int k = protover_lookup(name);
		if (k < 0)
			continue;
		if (seen[k])
			return false;
		seen[k] = true;
		out->v[k] = mask;
	}
	return true;
}

bool protover_covers(const struct protover *have, const struct protover *need)
{
	for (int k = 0; k < PROTOVER_COUNT; k++)
		if (need->v[k] & ~have->v[k])
			return false;
	return true;
}
