/* Status codes shared by every layer.
 *
 * I/O-like calls return >= 0 or -errno (as io_uring's cqe->res does).
 * Parsers return an enum parse_result (OK / NEED_MORE / INVALID) and, on
 * INVALID, a static reason string for the log. */
#ifndef ONIONRING_CORE_STATUS_H
#define ONIONRING_CORE_STATUS_H

enum parse_result {
	PARSE_OK = 0,
	PARSE_NEED_MORE = 1,
	PARSE_INVALID = 2,
};

/* Return a short name of r ("ok", "need-more", "invalid"). */
const char *parse_result_name(enum parse_result r);

#endif
