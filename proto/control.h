/* The control-port protocol (control-spec.txt section 2), sans-IO.
 *
 * For: framing a controller's byte stream into commands (one line, or a
 * "+KEYWORD" line followed by a dot-encoded data block), splitting a
 * command's arguments into words, quoted strings and KEY=VALUE pairs, and
 * writing replies ("250 OK", "250-" / "250+" multi-line replies with
 * dot-encoded data, "650" events). Not for: deciding what a command means,
 * authentication or sockets (app/control.c does those).
 *
 * Everything here borrows its input and writes into caller-provided
 * buffers: no allocation, no syscalls. Any thread. */
#ifndef ONIONRING_PROTO_CONTROL_H
#define ONIONRING_PROTO_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bytes.h"
#include "core/status.h"

/* Longest command line we accept, line ending included. The spec sets no
 * limit (2.1); tor's own controllers never come near 4 KiB except with
 * SETCONF of long lists, which onionring does not have. A longer line is
 * a framing error: the session answers and closes. */
#define CONTROL_LINE_MAX 4096
/* Largest data block of a "+" command (2.2 CmdData), dot-encoding and the
 * terminating ".CRLF" included. */
#define CONTROL_DATA_MAX 65536

/* One framed command. Every span borrows the input given to
 * control_parse(). */
struct control_cmd {
	const char *keyword;   /* 1*ALPHA per 2.2, but framed as "up to SP" */
	size_t keyword_len;
	const char *args;      /* after the first SP, line ending removed */
	size_t args_len;
	bool has_data;         /* a "+" command */
	const char *data;      /* the raw (still dot-encoded) lines of the */
	size_t data_len;       /* data block, without the final ".CRLF" */
};

/* Frame the next command in in[0..len). On PARSE_OK fill *cmd and set
 * *consumed to the bytes it took (line endings included; LF alone is
 * accepted as 2.1 allows). PARSE_NEED_MORE: no complete command yet
 * (*consumed 0). PARSE_INVALID: *why names the problem (line too long,
 * NUL byte, data block too long); the stream cannot be resynchronised. */
enum parse_result control_parse(const uint8_t *in, size_t len, struct control_cmd *cmd, size_t *consumed,
				const char **why);

/* True when the keyword of cmd equals kw, ignoring case (2.2: keywords
 * are case-insensitive). */
bool control_cmd_is(const struct control_cmd *cmd, const char *kw);

/* --- Arguments ----------------------------------------------------------- */

/* A cursor over a command's arguments. */
struct control_args {
	const char *p;
	size_t len;
};

/* One argument: `word`, `"quoted"`, `KEY=word` or `KEY="quoted"`. */
struct control_arg {
	const char *key;       /* borrowed; the whole word when !has_value */
	size_t key_len;
	bool has_value;        /* there was a '=' */
	bool quoted;           /* the word or value was a QuotedString */
	char *value;           /* decoded into the caller's buffer, NUL-ended */
	size_t value_len;
};

static inline struct control_args control_args_init(const char *p, size_t len)
{
	struct control_args a = { p, len };
	return a;
}

/* Read the next argument into *arg, decoding a quoted word or value into
 * buf (cap bytes; a value that does not fit is an error). Quoted strings
 * follow 2.1.1's compatible rule: \n \t \r and \0..\377 are C escapes, a
 * backslash before any other character stands for that character.
 * An unquoted word is copied into buf too (so value is always a C string;
 * for !has_value the word is both key and value).
 * Return PARSE_OK (one argument), PARSE_NEED_MORE (no arguments left) or
 * PARSE_INVALID with *why (unterminated quote, bad escape, too long,
 * NUL inside). */
enum parse_result control_args_next(struct control_args *a, struct control_arg *arg, char *buf, size_t cap,
				    const char **why);

/* The rest of the arguments with leading spaces removed (for commands
 * whose last argument is free text). */
struct control_args control_args_rest(const struct control_args *a);

/* Decode hex (even length) into out (cap bytes); return the byte count or
 * -1 for odd length, a non-hex digit or too much data. */
int control_hex_decode(const char *hex, size_t len, uint8_t *out, size_t cap);

/* --- Replies (2.3) ------------------------------------------------------- */

/* Append "CODE" sep text CRLF, sep being ' ' (last line) or '-' (more
 * lines follow). text must hold no CR or LF; other bytes are sent as they
 * are. */
void control_reply_line(struct wr *w, unsigned code, char sep, const char *text, size_t len);

/* Append "CODE+" head CRLF, then data dot-encoded (a line starting with
 * '.' gets another '.', LF becomes CRLF, a missing final line ending is
 * added) and ".CRLF". */
void control_reply_data(struct wr *w, unsigned code, const char *head, size_t head_len, const char *data,
			size_t len);

/* Bytes control_reply_data() will write for the same arguments, so the
 * caller can size its buffer. */
size_t control_reply_data_len(size_t head_len, const char *data, size_t len);

/* Append s as a QuotedString: '"' s '"' with '"', '\\', CR, LF and tab
 * written as backslash escapes (the escapes every controller reads, 2.1.1)
 * and other control bytes as octal. Writes at most 4 * len + 2 bytes. */
void control_quote(struct wr *w, const char *s, size_t len);

#endif
