/* Control-port framing, argument tokenizer and reply writers (see
 * control.h). Not for command semantics or authentication: app/control.c. */
#include "proto/control.h"

#include <string.h>
#include <strings.h>

/* Length of the line starting at p (n bytes, LF at p[n]) without its CR. */
static size_t line_end(const uint8_t *p, size_t n)
{
	return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

/* Find the end of a "+" command's data block, which starts at in[start]:
 * the first line that is exactly "." (2.2 CmdData). */
static enum parse_result frame_data(const uint8_t *in, size_t len, size_t start, struct control_cmd *cmd,
				    size_t *consumed, const char **why)
{
	size_t pos = start;

	for (;;) {
		size_t avail = len - pos, lim = start + CONTROL_DATA_MAX - pos;
		const uint8_t *lf = memchr(in + pos, '\n', avail < lim ? avail : lim);

		if (!lf) {
			if (len - start >= CONTROL_DATA_MAX) {
				*why = "command data block too long";
				return PARSE_INVALID;
			}
			return PARSE_NEED_MORE;
		}
		size_t n = (size_t)(lf - (in + pos));
		if (line_end(in + pos, n) == 1 && in[pos] == '.') {
			cmd->data = (const char *)in + start;
			cmd->data_len = pos - start;
			*consumed = pos + n + 1;
			return PARSE_OK;
		}
		pos += n + 1;
	}
}

enum parse_result control_parse(const uint8_t *in, size_t len, struct control_cmd *cmd, size_t *consumed,
				const char **why)
{
	const uint8_t *lf = memchr(in, '\n', len < CONTROL_LINE_MAX ? len : CONTROL_LINE_MAX);
	const char *line = (const char *)in;
	size_t n, end, kw;

	*consumed = 0;
	*why = NULL;
	if (!lf) {
		if (len >= CONTROL_LINE_MAX) {
			*why = "command line too long";
			return PARSE_INVALID;
		}
		return PARSE_NEED_MORE;
	}
	n = (size_t)(lf - in);
	end = line_end(in, n);
	if (memchr(in, '\0', end)) {
		*why = "NUL byte in a command line";
		return PARSE_INVALID;
	}
	memset(cmd, 0, sizeof(*cmd));
	kw = end > 0 && line[0] == '+' ? 1 : 0;
	cmd->has_data = kw == 1;
	cmd->keyword = line + kw;
	while (kw + cmd->keyword_len < end && line[kw + cmd->keyword_len] != ' ')
		cmd->keyword_len++;
	if (kw + cmd->keyword_len < end) {
		cmd->args = line + kw + cmd->keyword_len + 1;
		cmd->args_len = end - (kw + cmd->keyword_len + 1);
	} else {
		cmd->args = line + end;
	}
	if (!cmd->has_data) {
		*consumed = n + 1;
		return PARSE_OK;
	}
	return frame_data(in, len, n + 1, cmd, consumed, why);
}

bool control_cmd_is(const struct control_cmd *cmd, const char *kw)
{
	size_t n = strlen(kw);

	return cmd->keyword_len == n && strncasecmp(cmd->keyword, kw, n) == 0;
}

/* --- Arguments ----------------------------------------------------------- */

struct sink {
	char *p;
	size_t cap, len;
	bool full;
};

static void sink_put(struct sink *s, char c)
{
	if (s->len + 1 >= s->cap)
		s->full = true;
	else
		s->p[s->len++] = c;
}

/* Decode one backslash escape at a->p[*i] (just after the backslash). */
static enum parse_result unescape(const struct control_args *a, size_t *i, struct sink *s, const char **why)
{
	char c = a->p[*i];
	unsigned v = 0, digits = 0;

	switch (c) {
	case 'n': sink_put(s, '\n'); break;
	case 't': sink_put(s, '\t'); break;
	case 'r': sink_put(s, '\r'); break;
	default:
		if (c < '0' || c > '7') {
			sink_put(s, c); /* 2.1.1: any other character stands for itself */
			break;
		}
		while (digits < 3 && *i + digits < a->len && a->p[*i + digits] >= '0' && a->p[*i + digits] <= '7')
			v = v * 8 + (unsigned)(a->p[*i + digits++] - '0');
		if (v > 255 || v == 0) {
			*why = v ? "octal escape above \\377" : "NUL in a quoted string";
			return PARSE_INVALID;
		}
		sink_put(s, (char)v);
		*i += digits - 1;
	}
	(*i)++;
	return PARSE_OK;
}

/* Decode the QuotedString starting at a->p[*i] (a '"'); leave *i after
 * the closing quote. */
static enum parse_result unquote(const struct control_args *a, size_t *i, struct sink *s, const char **why)
{
	(*i)++;
	while (*i < a->len) {
		char c = a->p[*i];

		if (c == '"') {
			(*i)++;
			return PARSE_OK;
		}
		if (c == '\0') {
			*why = "NUL in a quoted string";
			return PARSE_INVALID;
		}
		if (c != '\\') {
			sink_put(s, c);
			(*i)++;
			continue;
		}
		(*i)++;
		if (*i >= a->len)
			break;
		if (unescape(a, i, s, why) != PARSE_OK)
			return PARSE_INVALID;
	}
	*why = "unterminated quoted string";
	return PARSE_INVALID;
}

/* Copy a plain word (up to a space) starting at a->p[*i]. */
static enum parse_result plain(const struct control_args *a, size_t *i, struct sink *s, const char **why)
{
	while (*i < a->len && a->p[*i] != ' ') {
		if (a->p[*i] == '\0' || a->p[*i] == '"') {
			*why = a->p[*i] ? "quote inside a word" : "NUL in an argument";
			return PARSE_INVALID;
		}
		sink_put(s, a->p[(*i)++]);
	}
	return PARSE_OK;
}

enum parse_result control_args_next(struct control_args *a, struct control_arg *arg, char *buf, size_t cap,
				    const char **why)
{
	struct sink s = { buf, cap, 0, false };
	size_t i = 0, k;
	enum parse_result r;

	*why = NULL;
	while (a->len > 0 && (a->p[0] == ' ' || a->p[0] == '\t')) {
		a->p++;
		a->len--;
	}
	if (a->len == 0)
		return PARSE_NEED_MORE;
	memset(arg, 0, sizeof(*arg));
	arg->key = a->p;
	for (k = 0; k < a->len && a->p[k] != ' ' && a->p[k] != '=' && a->p[k] != '"'; k++)
		;
	if (k > 0 && k < a->len && a->p[k] == '=') {
		arg->has_value = true;
		arg->key_len = k;
		i = k + 1;
	}
	arg->quoted = i < a->len && a->p[i] == '"';
	r = arg->quoted ? unquote(a, &i, &s, why) : plain(a, &i, &s, why);
	if (r != PARSE_OK)
		return r;
	if (i < a->len && a->p[i] != ' ') {
		*why = "junk after a quoted string";
		return PARSE_INVALID;
	}
	if (s.full || cap == 0) {
		*why = "argument too long";
		return PARSE_INVALID;
	}
	if (!arg->has_value)
		arg->key_len = i;
	buf[s.len] = '\0';
	arg->value = buf;
	arg->value_len = s.len;
	a->p += i;
	a->len -= i;
	return PARSE_OK;
}

struct control_args control_args_rest(const struct control_args *a)
{
	struct control_args r = *a;

	while (r.len > 0 && (r.p[0] == ' ' || r.p[0] == '\t')) {
		r.p++;
		r.len--;
	}
	return r;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int control_hex_decode(const char *hex, size_t len, uint8_t *out, size_t cap)
{
	if (len % 2 != 0 || len / 2 > cap)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(len / 2);
}

/* --- Replies ------------------------------------------------------------- */

static void put_code(struct wr *w, unsigned code, char sep)
{
	char c[4] = { (char)('0' + code / 100 % 10), (char)('0' + code / 10 % 10), (char)('0' + code % 10), sep };

	wr_bytes(w, c, 4);
}

void control_reply_line(struct wr *w, unsigned code, char sep, const char *text, size_t len)
{
	put_code(w, code, sep);
	wr_bytes(w, text, len);
	wr_bytes(w, "\r\n", 2);
}

/* Walk data line by line; emit (when w) and count the dot-encoded form. */
static size_t dot_encode(struct wr *w, const char *data, size_t len)
{
	size_t total = 0, pos = 0;

	while (pos < len) {
		const char *lf = memchr(data + pos, '\n', len - pos);
		size_t n = lf ? (size_t)(lf - (data + pos)) : len - pos;
		size_t body = n > 0 && data[pos + n - 1] == '\r' ? n - 1 : n;

		if (body > 0 && data[pos] == '.') {
			if (w)
				wr_u8(w, '.');
			total++;
		}
		if (w) {
			wr_bytes(w, data + pos, body);
			wr_bytes(w, "\r\n", 2);
		}
		total += body + 2;
		pos += lf ? n + 1 : n;
	}
	if (w)
		wr_bytes(w, ".\r\n", 3);
	return total + 3;
}

void control_reply_data(struct wr *w, unsigned code, const char *head, size_t head_len, const char *data,
			size_t len)
{
	control_reply_line(w, code, '+', head, head_len);
	dot_encode(w, data, len);
}

size_t control_reply_data_len(size_t head_len, const char *data, size_t len)
{
	return 4 + head_len + 2 + dot_encode(NULL, data, len);
}

void control_quote(struct wr *w, const char *s, size_t len)
{
	wr_u8(w, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[4];

		switch (c) {
		case '"': wr_bytes(w, "\\\"", 2); break;
		case '\\': wr_bytes(w, "\\\\", 2); break;
		case '\n': wr_bytes(w, "\\n", 2); break;
		case '\r': wr_bytes(w, "\\r", 2); break;
		case '\t': wr_bytes(w, "\\t", 2); break;
		default:
			if (c >= 0x20 && c != 0x7f) {
				wr_u8(w, c);
				break;
			}
			esc[0] = '\\';
			esc[1] = (char)('0' + (c >> 6));
			esc[2] = (char)('0' + ((c >> 3) & 7));
			esc[3] = (char)('0' + (c & 7));
			wr_bytes(w, esc, 4);
		}
	}
	wr_u8(w, '"');
}
