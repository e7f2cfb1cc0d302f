/* Test helper: load a file from test/vectors/netdoc/ (written by
 * test/vectors/gen_netdoc.py, an independent computation with tor-gencert
 * and python3-cryptography). NETDOC_VECTORS comes from test/unit/meson.build.
 * For tests only: aborts the test on a missing file. */
#ifndef ONIONRING_TEST_NETDOC_VECTORS_H
#define ONIONRING_TEST_NETDOC_VECTORS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *vec_load(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", NETDOC_VECTORS, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		abort();
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Return a malloc'd copy of doc with the first occurrence of from replaced
 * by to (which abort()s if from is absent, so a test cannot pass vacuously). */
static inline char *vec_replace(const char *doc, size_t len, const char *from, const char *to,
				size_t *outlen)
{
	const char *hit = strstr(doc, from);
	size_t fl = strlen(from), tl = strlen(to);
	char *out;

	if (!hit)
		abort();
	out = malloc(len - fl + tl + 1);
	if (!out)
		abort();
	memcpy(out, doc, (size_t)(hit - doc));
	memcpy(out + (hit - doc), to, tl);
	memcpy(out + (hit - doc) + tl, hit + fl, len - (size_t)(hit - doc) - fl);
	*outlen = len - fl + tl;
	out[*outlen] = '\0';
	return out;
}

/* Line number (1-based) of the first occurrence of needle in doc. */
static inline unsigned vec_line_of(const char *doc, const char *needle)
{
	const char *hit = strstr(doc, needle);
	unsigned line = 1;

	if (!hit)
		abort();
	for (const char *p = doc; p < hit; p++)
		line += *p == '\n';
	return line;
}

#endif
