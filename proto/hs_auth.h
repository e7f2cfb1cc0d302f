/* Client authorization keys for v3 onion services as tor stores them in
 * ClientOnionAuthDir (tor's manual, "CLIENT AUTHORIZATION"; rend-spec-v3
 * 2.5.1.2 uses the key): one "<name>.auth_private" file per service whose
 * content is "<56-char address>:descriptor:x25519:<base32 secret key>".
 *
 * For: reading one such file's content. Not for: listing the directory
 * (app/), the service side's authorized_clients/NAME.auth files, or using
 * the key (proto/hs_desc.h). Pure, no allocation; any thread. */
#ifndef ONIONRING_PROTO_HS_AUTH_H
#define ONIONRING_PROTO_HS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Parse text[0..len) (leading and trailing whitespace ignored; the
 * address may carry ".onion") into the service's identity key id and the
 * client's x25519 secret sk. PARSE_INVALID with *why for anything else:
 * a bad address (onion_addr.h rules), a type other than "descriptor" or
 * a key type other than "x25519", a key that is not 52 base32 characters
 * of 32 bytes, extra fields. Never NEED_MORE (a file is read whole).
 * Borrows text. sk is secret: the caller wipes it. */
enum parse_result hs_auth_parse(const char *text, size_t len, uint8_t id[32], uint8_t sk[32], const char **why);

#endif
