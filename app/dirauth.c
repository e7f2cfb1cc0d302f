/* DirAuthority lines and the compiled-in authority list (see dirauth.h).
 * Not for fetching or verifying documents. */
#include "app/dirauth.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/log.h"

/* The public Tor network's directory authorities and a few fallback
 * directories, as DirAuthority values. Public facts as tor 0.4.9.11 (the
 * Debian package) compiles them in from src/app/config/auth_dirs.inc and
 * fallback_dirs.inc (addresses, ports, identity fingerprints, v3
 * identities); moria1, tor26 and faravahar have new keys and addresses
 * since 0.4.8. The fallbacks have no DirPort and are reachable over
 * BEGIN_DIR only. Serge is the bridge authority: listed like tor does,
 * never trusted for the consensus. test_dirauth checks every entry. */
static const char *const default_authorities[] = {
	"moria1 orport=9201 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 "
	"128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498",
	"tor26 orport=443 v3ident=2F3DF9CA0E5D36F2685A2DA67184EB8DCB8CBA8C "
	"ipv6=[2a02:16a8:662:2203::1]:443 "
	"217.196.147.77:80 FAA4 BCA4 A6AC 0FB4 CA2F 8AD5 A11D 9E12 2BA8 94F6",
	"dizum orport=443 v3ident=E8A9C45EDE6D711294FADF8E7951F4DE6CA56B58 "
	"45.66.35.11:80 7EA6 EAD6 FD83 083C 538F 4403 8BBF A077 587D D755",
	"Serge orport=9001 bridge 66.111.2.131:9030 BA44 A889 E64B 93FA A2B1 14E0 2C2A 279A 8555 C533",
	"gabelmoo orport=443 v3ident=ED03BB616EB2F60BEC80151114BB25CEF515B226 "
	"ipv6=[2001:638:a000:4140::ffff:189]:443 "
	"131.188.40.189:80 F204 4413 DAC2 E02E 3D6B CF47 35A1 9BCA 1DE9 7281",
	"dannenberg orport=443 v3ident=0232AF901C31A04EE9848595AF9BB7620D4C5B2E "
	"ipv6=[2001:678:558:1000::244]:443 "
	"193.23.244.244:80 7BE6 83E6 5D48 1413 21C5 ED92 F075 C553 64AC 7123",
	"maatuska orport=80 v3ident=49015F787433103580E3B66A1707A00E60F2D15B "
	"ipv6=[2001:67c:289c::9]:80 "
	"171.25.193.9:443 BD6A 8292 55CB 08E6 6FBE 7D37 4836 3586 E46B 3810",
	"longclaw orport=443 v3ident=23D15D965BC35114467363C165C4F724B64B4F66 "
	"199.58.81.140:80 74A9 1064 6BCE EFBC D2E8 74FC 1DC9 9743 0F96 8145",
	"bastet orport=443 v3ident=27102BC123E7AF1D4741AE047E160C91ADC76B21 "
	"ipv6=[2620:13:4000:6000::1000:118]:443 "
	"204.13.164.118:80 24E2 F139 121D 4394 C54B 5BCC 368B 3B41 1857 C413",
	"faravahar orport=443 v3ident=70849B868D606BAECFB6128C5E3D782029AA394F "
	"216.218.219.41:80 E3E4 2D35 F801 C9D5 AB23 584E 0025 D56F E2B3 3396",
};

/* Fallbacks: "address orport fingerprint" (no DirPort). */
static const struct {
	const char *addr;
	uint16_t or_port;
	const char *fp;
} default_fallbacks[] = {
	{"64.65.62.122", 443, "4F067C5C488173987B568CD7245F1CA71DEE996B"},
	{"162.19.252.137", 9200, "E0608745ED237A918A73A370538023330F1BF45D"},
	{"96.9.98.136", 443, "6EADE4A39AB89F1C6BF989668CC046E9C6ADFC5A"},
	{"178.254.18.25", 9001, "1932C6B0B3D15F6CDA47632FB2257A5DF3BC014F"},
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p)
		abort(); /* control plane: OOM aborts (STYLE.md) */
	return p;
}

/* tor's is_legal_nickname: 1..19 characters of [A-Za-z0-9]. */
static bool is_legal_nickname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DIRAUTH_NICK_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]))
			return false;
	return true;
}

static bool parse_port(const char *s, uint16_t *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* "[addr]:port" */
static bool parse_ipv6_port(const char *s, struct dir_source *out)
{
	const char *close = strchr(s, ']');
	char addr[64];
	size_t n;

	if (s[0] != '[' || !close || close[1] != ':')
		return false;
	n = (size_t)(close - s - 1);
	if (n == 0 || n >= sizeof(addr))
		return false;
	memcpy(addr, s + 1, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET6, addr, out->ipv6) != 1)
		return false;
	return parse_port(close + 2, &out->ipv6_port);
}

#define FAIL(...) \
	do { \
		snprintf(err, errlen, __VA_ARGS__); \
		return -EINVAL; \
	} while (0)

/* One flag word before the address. Return 0, or -EINVAL with err set. */
static int parse_flag(const char *flag, struct dir_source *out, char *err, size_t errlen)
{
	if (!strcasecmp(flag, "bridge")) {
		out->flags |= DIR_SOURCE_BRIDGE;
	} else if (!strcasecmp(flag, "no-v2")) {
		out->flags |= DIR_SOURCE_NO_V2;
	} else if (!strcasecmp(flag, "hs") || !strcasecmp(flag, "no-hs") || !strcasecmp(flag, "v1") ||
		   !strcasecmp(flag, "v2")) {
		/* accepted by tor, meaningless for a client */
	} else if (!strncasecmp(flag, "orport=", 7)) {
		if (!parse_port(flag + 7, &out->or_port))
			FAIL("invalid orport '%s' on DirAuthority line", flag + 7);
	} else if (!strncasecmp(flag, "weight=", 7)) {
		char *end;
		errno = 0;
		(void)strtoul(flag + 7, &end, 10);
		if (errno || end == flag + 7 || *end)
			FAIL("invalid weight '%s' on DirAuthority line", flag + 7);
	} else if (!strncasecmp(flag, "v3ident=", 8)) {
		if (strlen(flag + 8) != 40 || base16_decode(out->v3ident, SHA1_LEN, flag + 8, 40) != SHA1_LEN)
			FAIL("bad v3 identity digest '%s' on DirAuthority line (want 40 hex digits)", flag + 8);
		out->flags |= DIR_SOURCE_V3;
	} else if (!strncasecmp(flag, "ipv6=", 5)) {
		if (!parse_ipv6_port(flag + 5, out))
			FAIL("bad ipv6 address '%s' on DirAuthority line (want [ADDR]:PORT)", flag + 5);
		out->flags |= DIR_SOURCE_IPV6;
	} else {
		log_warn("unrecognized flag '%s' on DirAuthority line: ignored (as tor does)", flag);
	}
	return 0;
}

/* "1.2.3.4:80" */
static int parse_addrport(const char *s, struct dir_source *out, char *err, size_t errlen)
{
	const char *colon = strrchr(s, ':');
	char addr[32];
	struct in_addr in;
	size_t n;

	if (!colon)
		FAIL("missing dir port in DirAuthority address '%s'", s);
	n = (size_t)(colon - s);
	if (n == 0 || n >= sizeof(addr))
		FAIL("error parsing DirAuthority address '%s'", s);
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, &in) != 1)
		FAIL("error parsing DirAuthority address '%s' (want a numeric IPv4 address)", s);
	if (!parse_port(colon + 1, &out->dir_port))
		FAIL("bad dir port in DirAuthority address '%s'", s);
	out->ipv4 = ntohl(in.s_addr);
	return 0;
}

/* The rest of the words joined without spaces: 40 hex digits. */
static int parse_fingerprint(char **words, size_t n, struct dir_source *out, char *err, size_t errlen)
{
	char fp[128];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		size_t wl = strlen(words[i]);
		if (len + wl >= sizeof(fp))
			FAIL("key digest for DirAuthority is too long (want 40 hex digits)");
		memcpy(fp + len, words[i], wl);
		len += wl;
	}
	fp[len] = '\0';
	if (len != 40)
		FAIL("key digest '%s' for DirAuthority is wrong length %zu (want 40 hex digits)", fp, len);
	if (base16_decode(out->fingerprint, SHA1_LEN, fp, len) != SHA1_LEN)
		FAIL("unable to decode DirAuthority key digest '%s' (not hex)", fp);
	return 0;
}

static int parse_words(char **w, size_t n, struct dir_source *out, char *err, size_t errlen)
{
	size_t i = 0;
	int r;

	if (n == 0)
		FAIL("no arguments on DirAuthority line");
	if (is_legal_nickname(w[0])) {
		snprintf(out->nickname, sizeof(out->nickname), "%s", w[0]);
		i++;
	}
	for (; i < n && !isdigit((unsigned char)w[i][0]); i++)
		if ((r = parse_flag(w[i], out, err, errlen)) < 0)
			return r;
	if (n - i < 2)
		FAIL("too few arguments to DirAuthority line (want [nickname] [flags] address:dirport fingerprint)");
	if ((r = parse_addrport(w[i], out, err, errlen)) < 0)
		return r;
	return parse_fingerprint(w + i + 1, n - i - 1, out, err, errlen);
}

int dirauth_parse_line(const char *line, struct dir_source *out, char *err, size_t errlen)
{
	char *copy = strdup(line), *save = NULL, *tok;
	char *words[64];
	size_t n = 0;
	int r;

	if (!copy)
		abort();
	memset(out, 0, sizeof(*out));
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == ARRAY_LEN(words)) {
			free(copy);
			FAIL("too many words on DirAuthority line");
		}
		words[n++] = tok;
	}
	r = parse_words(words, n, out, err, errlen);
	free(copy);
	return r;
}

static void add_fallbacks(struct dirauth_list *l)
{
	for (size_t i = 0; i < ARRAY_LEN(default_fallbacks); i++) {
		struct dir_source *s = &l->v[l->n];
		struct in_addr in;

		memset(s, 0, sizeof(*s));
		/* Our own table, as for the authorities: a bad entry is a bug
		 * here (test_dirauth counts them); skip it. */
		if (inet_pton(AF_INET, default_fallbacks[i].addr, &in) != 1 ||
		    base16_decode(s->fingerprint, SHA1_LEN, default_fallbacks[i].fp,
				  strlen(default_fallbacks[i].fp)) != SHA1_LEN) {
			log_err("compiled-in fallback %zu is malformed", i);
			continue;
		}
		s->ipv4 = ntohl(in.s_addr);
		s->or_port = default_fallbacks[i].or_port;
		s->flags = DIR_SOURCE_FALLBACK;
		l->n++;
	}
}

void dirauth_list_defaults(struct dirauth_list *out)
{
	char err[256];

	out->v = xcalloc(ARRAY_LEN(default_authorities) + ARRAY_LEN(default_fallbacks), sizeof(*out->v));
	out->n = 0;
	out->is_default = true;
	for (size_t i = 0; i < ARRAY_LEN(default_authorities); i++) {
		/* Our own table: a parse failure is a bug in this file, caught
		 * by test_dirauth; skip the entry rather than abort at run time. */
		if (dirauth_parse_line(default_authorities[i], &out->v[out->n], err, sizeof(err)) == 0)
			out->n++;
		else
			log_err("compiled-in authority %zu: %s", i, err);
	}
	add_fallbacks(out);
}

int dirauth_list_from_config(const struct config_lines *lines, struct dirauth_list *out, char *err,
			     size_t errlen)
{
	char why[256];

	memset(out, 0, sizeof(*out));
	if (!lines || lines->n == 0) {
		dirauth_list_defaults(out);
		return 0;
	}
	out->v = xcalloc(lines->n, sizeof(*out->v));
	for (size_t i = 0; i < lines->n; i++) {
		if (dirauth_parse_line(lines->v[i], &out->v[i], why, sizeof(why)) < 0) {
			snprintf(err, errlen, "DirAuthority line %zu (\"%s\"): %s", i + 1, lines->v[i], why);
			dirauth_list_free(out);
			return -EINVAL;
		}
		out->n++;
	}
	if (dirauth_v3idents(out, NULL, 0) == 0) {
		snprintf(err, errlen, "no DirAuthority line names a v3 authority (v3ident=...): nothing could "
				      "sign a consensus");
		dirauth_list_free(out);
		return -EINVAL;
	}
	return 0;
}

void dirauth_list_free(struct dirauth_list *l)
{
	if (!l)
		return;
	free(l->v);
	memset(l, 0, sizeof(*l));
}

size_t dirauth_v3idents(const struct dirauth_list *l, uint8_t (*out)[SHA1_LEN], size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct dir_source *s = &l->v[i];

		if (!(s->flags & DIR_SOURCE_V3) || (s->flags & DIR_SOURCE_BRIDGE))
			continue;
		if (n < cap)
			memcpy(out[n], s->v3ident, SHA1_LEN);
		n++;
	}
	return n;
}

const char *dir_source_describe(const struct dir_source *src, char *buf, size_t len)
{
	struct in_addr in = {.s_addr = htonl(src->ipv4)};
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &in, a, sizeof(a));
	snprintf(buf, len, "%s%s%s:%u", src->nickname, src->nickname[0] ? " " : "", a,
		 src->dir_port ? src->dir_port : src->or_port);
	return buf;
}
