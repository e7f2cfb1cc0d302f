/* A directory fetcher over plain HTTP to a directory authority's DirPort
 * (dir-spec 6, appendix B URLs): a few threads of their own doing
 * connect / send / recv with timeouts, so the coordinator never blocks.
 * Bodies are inflated (Accept-Encoding: deflate, gzip) before delivery.
 *
 * For: bootstrapping from authorities' DirPorts (the private test network,
 * or the public authorities) and proving app/dirmgr.c against real tor.
 * Not for: relays without a DirPort (use the BEGIN_DIR fetcher,
 * app/dirfetch.h), anonymity (a DirPort fetch is not encrypted), or any
 * data path. */
#ifndef ONIONRING_APP_DIRFETCH_HTTP_H
#define ONIONRING_APP_DIRFETCH_HTTP_H

#include "app/dirmgr.h"

/* Bodies larger than this (compressed or inflated) are refused. */
#define DIRFETCH_HTTP_MAX_BODY (64u << 20)

struct dirfetch_http;

/* Start nthreads (1..16) fetch threads; each fetch must finish within
 * timeout_ms. Returns owned (dirfetch_http_free), or NULL if a thread
 * could not start. Control plane. */
struct dirfetch_http *dirfetch_http_new(unsigned nthreads, unsigned timeout_ms);

/* Stop the threads: a fetch in progress ends with -ECANCELED within about
 * 200 ms, queued ones get -ECANCELED; every done callback has run when
 * this returns. Free h (NULL-safe). Control plane. */
void dirfetch_http_free(struct dirfetch_http *h);

/* Fill *out with the fetcher interface backed by h (borrowed: h must
 * outlive the manager's use of it). out->needs_dirport is true. */
void dirfetch_http_fetcher(struct dirfetch_http *h, struct dir_fetcher *out);

#endif
