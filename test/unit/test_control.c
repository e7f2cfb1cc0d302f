/* Control-port sessions (app/control.h) driven without sockets: every
 * command with wrong arguments and before authentication, the three
 * authentication methods, and the known answers for tor's hashed password
 * and SAFECOOKIE.
 *
 * Known answers: the "16:..." passwords marked "tor" were printed by
 * Debian's tor 0.4.9.11 (`tor --hash-password foo`); the others and the
 * SAFECOOKIE HMACs come from test/vectors/control/gen_control.py, an
 * independent computation with Python's hashlib/hmac. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "app/control.h"
#include "app/netdir.h"
#include "core/config.h"
#include "core/crypto.h"
#include "netdoc_vectors.h"
#include "proto/control.h"

#define TOR_FOO "16:CF3DA2048E823D736070E84D8560E0A81977691904D3DAA3E09508AA53"
#define TOR_QUOTE "16:5E22D51228E897E860C576B28A11489EE94A2CEA53E16507D52D46BE7C"

/* --- a fake gateway --- */

struct fake {
	struct config *cfg;
	int replaced;
	int signals[8];
	size_t nsignals;
	int signal_result;
	uint64_t closed_stream, closed_circ;
	unsigned close_reason;
	bool if_unused;
	int nrequests;
	int request_result;           /* what the request callback returns */
	bool defer;                   /* keep the request for the test to finish */
	struct control_req *pending;
	const char *circ_lines, *stream_lines, *orconn_lines;
	int closed_by_session;        /* the session's close callback ran */
	char out[16384];
	size_t out_len;
};

static struct fake fk;

static int fake_getinfo(void *arg, const char *key, struct control_buf *out)
{
	(void)arg;
	if (strcmp(key, "multi") == 0) {
		control_buf_printf(out, "line1\n.dot\nline3");
		return 0;
	}
	if (strcmp(key, "circuit-status") == 0)
		return -ENOTSUP;
	return -ENOENT;
}

static int fake_signal(void *arg, enum control_signal sig)
{
	(void)arg;
	fk.signals[fk.nsignals++] = (int)sig;
	return sig == CONTROL_SIGNAL_NEWNYM ? fk.signal_result : 0;
}

/* Answer req as a gateway with stream 42 on circuit 7 would. */
static void fake_answer(struct control_req *req)
{
	switch (req->kind) {
	case CONTROL_REQ_CLOSE_STREAM:
		req->result = req->id == 42 ? 0 : -ENOENT;
		if (req->id == 42) {
			fk.closed_stream = req->id;
			fk.close_reason = req->reason;
		}
		break;
	case CONTROL_REQ_CLOSE_CIRCUIT:
		req->result = req->id == 7 ? 0 : -ENOENT;
		if (req->id == 7) {
			fk.closed_circ = req->id;
			fk.if_unused = req->if_unused;
		}
		break;
	case CONTROL_REQ_STATUS:
		if (req->want_circs && fk.circ_lines)
			control_buf_printf(&req->circs, "%s", fk.circ_lines);
		if (req->want_streams && fk.stream_lines)
			control_buf_printf(&req->streams, "%s", fk.stream_lines);
		if (req->want_orconns && fk.orconn_lines)
			control_buf_printf(&req->orconns, "%s", fk.orconn_lines);
		req->result = 0;
		break;
	}
}

static int fake_request(void *arg, struct worker *w, struct control_req *req)
{
	(void)arg;
	assert_null(w); /* the tests' sessions have no worker */
	fk.nrequests++;
	if (fk.request_result < 0)
		return fk.request_result;
	if (fk.defer) {
		fk.pending = req;
		return 0;
	}
	fake_answer(req);
	control_req_done(req); /* before returning: allowed by control.h */
	return 0;
}

static void fake_session_close(void *arg)
{
	(void)arg;
	fk.closed_by_session++;
}

static void fake_config_read(void *arg, void (*fn)(const struct config *cfg, void *ctx), void *ctx)
{
	(void)arg;
	fn(fk.cfg, ctx);
}

static int fake_config_replace(void *arg, struct config *ncfg, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	config_free(fk.cfg);
	fk.cfg = ncfg;
	fk.replaced++;
	return 0;
}

static void fake_send(void *arg, const char *data, size_t len)
{
	(void)arg;
	assert_true(fk.out_len + len < sizeof(fk.out));
	memcpy(fk.out + fk.out_len, data, len);
	fk.out_len += len;
	fk.out[fk.out_len] = '\0';
}

static struct control_server srv;

static void server_setup(bool cookie, const char *password_line)
{
	char text[256], err[CONFIG_ERR_MAX];

	memset(&fk, 0, sizeof(fk));
	memset(&srv, 0, sizeof(srv));
	snprintf(text, sizeof(text), "SocksPort 9050\n%s\n", password_line ? password_line : "");
	assert_int_equal(config_load_string(text, strlen(text), "test", &fk.cfg, err, sizeof(err)), 0);
	srv.be = (struct control_backend){
		.getinfo = fake_getinfo, .signal = fake_signal, .request = fake_request, .config_read = fake_config_read,
		.config_replace = fake_config_replace,
	};
	if (cookie) {
		srv.cookie_auth = true;
		for (int i = 0; i < CONTROL_COOKIE_LEN; i++)
			srv.cookie[i] = (uint8_t)i;
		snprintf(srv.cookie_path, sizeof(srv.cookie_path), "/var/lib/x/control_auth_cookie");
	}
}

static int teardown(void **state)
{
	(void)state;
	config_free(fk.cfg);
	return 0;
}

static const char COOKIE_HEX[] = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";

/* Send text; return whether the session stays open; fk.out holds the
 * replies of this call only. */
static bool say(struct control_session *s, const char *text)
{
	fk.out_len = 0;
	fk.out[0] = '\0';
	return control_session_input(s, (const uint8_t *)text, strlen(text));
}

static struct control_session *authed(void)
{
	struct control_session *s = control_session_new(&srv, NULL, fake_send, NULL);
	char line[128];

	snprintf(line, sizeof(line), "AUTHENTICATE %s\r\n", COOKIE_HEX);
	assert_true(say(s, line));
	assert_string_equal(fk.out, "250 OK\r\n");
	return s;
}

/* --- known answers --- */

static void test_control_s2k_matches_tor_hash_password(void **state)
{
	(void)state;
	assert_true(control_s2k_check(TOR_FOO, "foo", 3));
	assert_false(control_s2k_check(TOR_FOO, "fop", 3));
	assert_false(control_s2k_check(TOR_FOO, "", 0));
	assert_true(control_s2k_check(TOR_QUOTE, "pass \"with\" \\ quote", 19));
}

static void test_control_s2k_hash_matches_independent_vectors(void **state)
{
	static const uint8_t salt1[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	static const uint8_t salt2[8] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7 };
	static const uint8_t salt3[8] = { 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88 };
	char out[CONTROL_S2K_TEXT_LEN + 1], x100[100];

	(void)state;
	control_s2k_hash("foo", 3, salt1, 0x60, out);
	assert_string_equal(out, "16:000102030405060760F850B81A98037E48CDE3C614F322E98920376200");
	control_s2k_hash("", 0, salt2, 0x00, out);
	assert_string_equal(out, "16:A0A1A2A3A4A5A6A700B5F8ECEC7F90A7F1632B325FB4C0C18EEA771A91");
	memset(x100, 'x', sizeof(x100));
	control_s2k_hash(x100, sizeof(x100), salt3, 0x96, out);
	assert_string_equal(out, "16:FFEEDDCCBBAA9988967C2C441F44534C15356069F809C387BDC42207F0");
}

static void test_control_s2k_check_rejects_malformed_hashes(void **state)
{
	(void)state;
	assert_false(control_s2k_check("", "foo", 3));
	assert_false(control_s2k_check("17:CF3DA2048E823D736070E84D8560E0A81977691904D3DAA3E09508AA53", "foo", 3));
	assert_false(control_s2k_check("16:CF3DA2048E823D736070E84D8560E0A81977691904D3DAA3E09508AA5", "foo", 3));
	assert_false(control_s2k_check("16:ZF3DA2048E823D736070E84D8560E0A81977691904D3DAA3E09508AA53", "foo", 3));
}

static void test_control_safecookie_hmacs_match_independent_vectors(void **state)
{
	uint8_t cookie[32], client[32], server[32], out[32], want[32];

	(void)state;
	for (int i = 0; i < 32; i++) {
		cookie[i] = (uint8_t)i;
		client[i] = (uint8_t)(100 + i);
		server[i] = (uint8_t)(200 + i);
	}
	control_safecookie_hmac(false, cookie, client, 32, server, out);
	control_hex_decode("0CD2811ABE486545C2BE5E94041712BFB974921245EAD5541A47DB984343CEEE", 64, want, 32);
	assert_memory_equal(out, want, 32);
	control_safecookie_hmac(true, cookie, client, 32, server, out);
	control_hex_decode("D42C79F3763C2E27F0073CE04620B69162F3F514E5526BEBDD7AD160886E0C8A", 64, want, 32);
	assert_memory_equal(out, want, 32);
}

/* --- before authentication --- */

static void test_control_refuses_every_command_before_auth(void **state)
{
	static const char *const cmds[] = {
		"GETINFO version\r\n", "GETCONF SocksPort\r\n", "SETCONF ExitNodes=a\r\n", "RESETCONF ExitNodes\r\n",
		"SETEVENTS CIRC\r\n", "SIGNAL NEWNYM\r\n", "CLOSESTREAM 42 1\r\n", "CLOSECIRCUIT 7\r\n",
		"CLOSESTREAM 42 1 IfUnused\r\n", "CLOSECIRCUIT 7 IfUnused\r\n", "CLOSESTREAM\r\n", "CLOSECIRCUIT x\r\n",
		"GETINFO circuit-status\r\n", "GETINFO stream-status\r\n", "FOO\r\n", "+LOADCONF\r\nx\r\n.\r\n",
		"GETINFO orconn-status\r\n", "GETINFO md/all\r\n", "GETINFO ns/all\r\n",
		"GETINFO md/id/31C0B3337428D38061A7222A14A8839B3EFBC381\r\n", "GETINFO ns/name/relay000\r\n",
	};

	(void)state;
	server_setup(true, NULL);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct control_session *s = control_session_new(&srv, NULL, fake_send, NULL);

		assert_false(say(s, cmds[i]));
		assert_string_equal(fk.out, "514 Authentication required.\r\n");
		assert_false(control_session_is_authenticated(s));
		control_session_free(s);
	}
	assert_int_equal(fk.nsignals, 0);
	assert_int_equal(fk.replaced, 0);
	assert_int_equal(fk.nrequests, 0);
	assert_int_equal(fk.closed_stream, 0);
	assert_int_equal(fk.closed_circ, 0);
}

static void test_control_ignores_input_after_closing(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_false(say(s, "SIGNAL HALT\r\nAUTHENTICATE " "00\r\n"));
	assert_string_equal(fk.out, "514 Authentication required.\r\n");
	assert_int_equal(fk.nsignals, 0);
	control_session_free(s);
}

static void test_control_protocolinfo_lists_cookie_methods(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_true(say(s, "PROTOCOLINFO 1\r\n"));
	assert_string_equal(fk.out, "250-PROTOCOLINFO 1\r\n"
				    "250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/var/lib/x/control_auth_cookie\"\r\n"
				    "250-VERSION Tor=\"" CONTROL_TOR_DIALECT "\"\r\n"
				    "250 OK\r\n");
	/* 3.21: only once before authenticating. */
	assert_false(say(s, "PROTOCOLINFO\r\n"));
	assert_string_equal(fk.out, "514 No more PROTOCOLINFOs.\r\n");
	control_session_free(s);
}

static void test_control_protocolinfo_lists_password_and_null(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(false, "HashedControlPassword " TOR_FOO);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_true(say(s, "protocolinfo\n"));
	assert_non_null(strstr(fk.out, "250-AUTH METHODS=HASHEDPASSWORD\r\n"));
	control_session_free(s);
	teardown(NULL);
	server_setup(false, NULL);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_true(say(s, "PROTOCOLINFO\r\n"));
	assert_non_null(strstr(fk.out, "250-AUTH METHODS=NULL\r\n"));
	control_session_free(s);
}

static void test_control_protocolinfo_rejects_non_numeric_version(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_false(say(s, "PROTOCOLINFO x\r\n"));
	assert_string_equal(fk.out, "513 No such version \"x\"\r\n");
	control_session_free(s);
}

static void test_control_cookie_auth_accepts_cookie_and_rejects_others(void **state)
{
	struct control_session *s;
	char line[128];

	(void)state;
	server_setup(true, NULL);
	s = authed();
	assert_true(control_session_is_authenticated(s));
	control_session_free(s);

	s = control_session_new(&srv, NULL, fake_send, NULL);
	snprintf(line, sizeof(line), "AUTHENTICATE %.62s00\r\n", COOKIE_HEX);
	assert_false(say(s, line));
	assert_memory_equal(fk.out, "515 Authentication failed", 25);
	control_session_free(s);

	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_false(say(s, "AUTHENTICATE\r\n"));
	assert_memory_equal(fk.out, "515 ", 4);
	control_session_free(s);

	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_false(say(s, "AUTHENTICATE 0g\r\n"));
	assert_memory_equal(fk.out, "512 ", 4);
	control_session_free(s);

	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_false(say(s, "AUTHENTICATE 00 11\r\n"));
	assert_memory_equal(fk.out, "512 ", 4);
	control_session_free(s);
}

static void test_control_password_auth_uses_tor_hash(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(false, "HashedControlPassword " TOR_FOO);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_true(say(s, "AUTHENTICATE \"foo\"\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	control_session_free(s);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_true(say(s, "AUTHENTICATE 666F6F\r\n")); /* "foo" in hex */
	assert_string_equal(fk.out, "250 OK\r\n");
	control_session_free(s);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_false(say(s, "AUTHENTICATE \"bar\"\r\n"));
	assert_memory_equal(fk.out, "515 ", 4);
	control_session_free(s);
}

static void test_control_null_auth_needs_authenticate_anyway(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(false, NULL);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_false(say(s, "GETINFO version\r\n"));
	assert_string_equal(fk.out, "514 Authentication required.\r\n");
	control_session_free(s);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_true(say(s, "AUTHENTICATE\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	control_session_free(s);
}

/* Run AUTHCHALLENGE and return the server nonce; checks SERVERHASH. */
static void challenge(struct control_session *s, const uint8_t client[32], uint8_t server[32])
{
	char line[160], shash[65], snonce[65];
	uint8_t want[32], got[32];

	snprintf(line, sizeof(line), "AUTHCHALLENGE SAFECOOKIE ");
	for (int i = 0; i < 32; i++)
		snprintf(line + strlen(line), 3, "%02x", client[i]);
	strcat(line, "\r\n");
	assert_true(say(s, line));
	assert_int_equal(sscanf(fk.out, "250 AUTHCHALLENGE SERVERHASH=%64s SERVERNONCE=%64s", shash, snonce), 2);
	assert_int_equal(control_hex_decode(snonce, 64, server, 32), 32);
	assert_int_equal(control_hex_decode(shash, 64, got, 32), 32);
	control_safecookie_hmac(false, srv.cookie, client, 32, server, want);
	assert_memory_equal(got, want, 32);
}

static void test_control_safecookie_flow(void **state)
{
	uint8_t client[32], server[32], mac[32];
	struct control_session *s;
	char line[160];

	(void)state;
	server_setup(true, NULL);
	memset(client, 0x5a, sizeof(client));
	s = control_session_new(&srv, NULL, fake_send, NULL);
	challenge(s, client, server);
	control_safecookie_hmac(true, srv.cookie, client, 32, server, mac);
	snprintf(line, sizeof(line), "AUTHENTICATE ");
	for (int i = 0; i < 32; i++)
		snprintf(line + strlen(line), 3, "%02X", mac[i]);
	strcat(line, "\r\n");
	assert_true(say(s, line));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_true(control_session_is_authenticated(s));
	control_session_free(s);
}

static void test_control_safecookie_refuses_raw_cookie_and_other_commands(void **state)
{
	uint8_t client[32] = { 1 }, server[32];
	struct control_session *s;
	char line[128];

	(void)state;
	server_setup(true, NULL);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	challenge(s, client, server);
	/* 3.24: after AUTHCHALLENGE only the HMAC is accepted. */
	snprintf(line, sizeof(line), "AUTHENTICATE %s\r\n", COOKIE_HEX);
	assert_false(say(s, line));
	assert_memory_equal(fk.out, "515 ", 4);
	control_session_free(s);

	s = control_session_new(&srv, NULL, fake_send, NULL);
	challenge(s, client, server);
	assert_false(say(s, "PROTOCOLINFO\r\n"));
	assert_string_equal(fk.out, "514 Authentication required.\r\n");
	control_session_free(s);
}

static void test_control_authchallenge_rejects_wrong_arguments(void **state)
{
	static const struct {
		const char *cmd, *prefix;
	} cases[] = {
		{ "AUTHCHALLENGE\r\n", "513 " },
		{ "AUTHCHALLENGE HMAC 00\r\n", "513 " },
		{ "AUTHCHALLENGE SAFECOOKIE\r\n", "512 " },
		{ "AUTHCHALLENGE SAFECOOKIE 0\r\n", "512 " },
		{ "AUTHCHALLENGE SAFECOOKIE 00 11\r\n", "512 " },
		{ "AUTHCHALLENGE SAFECOOKIE \"open\r\n", "512 " },
	};

	(void)state;
	server_setup(true, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct control_session *s = control_session_new(&srv, NULL, fake_send, NULL);

		assert_false(say(s, cases[i].cmd));
		assert_memory_equal(fk.out, cases[i].prefix, 4);
		control_session_free(s);
	}
	teardown(NULL);
	server_setup(false, "HashedControlPassword " TOR_FOO);
	{
		struct control_session *s = control_session_new(&srv, NULL, fake_send, NULL);

		assert_false(say(s, "AUTHCHALLENGE SAFECOOKIE 00\r\n"));
		assert_string_equal(fk.out, "513 Cookie authentication is disabled\r\n");
		control_session_free(s);
	}
}

/* --- after authentication --- */

static void test_control_getinfo_answers_and_rejects(void **state)
{
	struct control_session *s;
	char want[128];

	(void)state;
	server_setup(true, NULL);
	s = authed();
	assert_true(say(s, "GETINFO version\r\n"));
	assert_memory_equal(fk.out, "250-version=" CONTROL_TOR_DIALECT " (onionring-", 12 + strlen(CONTROL_TOR_DIALECT) + 12);
	assert_non_null(strstr(fk.out, ")\r\n250 OK\r\n"));
	assert_true(say(s, "GETINFO process/pid multi\r\n"));
	snprintf(want, sizeof(want), "250-process/pid=%ld\r\n250+multi=\r\nline1\r\n..dot\r\nline3\r\n.\r\n250 OK\r\n",
		 (long)getpid());
	assert_string_equal(fk.out, want);
	assert_true(say(s, "GETINFO status/bootstrap-phase status/circuit-established\r\n"));
	assert_string_equal(fk.out, "250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=0 TAG=starting "
				    "SUMMARY=\"Starting\"\r\n250-status/circuit-established=0\r\n250 OK\r\n");
	/* One unknown key fails the whole command; the connection stays. */
	assert_true(say(s, "GETINFO version nosuch\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized key \"nosuch\"\r\n");
	/* No directory snapshot is published in this test. */
	assert_true(say(s, "GETINFO ns/all\r\n"));
	assert_string_equal(fk.out, "551 ns/all is not available yet\r\n");
	assert_true(say(s, "GETINFO ns/bogus\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized key \"ns/bogus\"\r\n");
	assert_true(say(s, "GETINFO ns/id/1234\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized key \"ns/id/1234\"\r\n");
	assert_true(say(s, "GETINFO\r\n"));
	assert_memory_equal(fk.out, "512 ", 4);
	assert_true(say(s, "GETINFO \"unterminated\r\n"));
	assert_memory_equal(fk.out, "512 ", 4);
	control_session_free(s);
}

static void test_control_getconf_answers_and_rejects(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	assert_true(say(s, "GETCONF socksport MaxCircuitDirtiness ExitNodes\r\n"));
	assert_string_equal(fk.out, "250-SocksPort=127.0.0.1:9050\r\n250-MaxCircuitDirtiness=600\r\n250 ExitNodes\r\n");
	assert_true(say(s, "GETCONF NoSuchKey\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized configuration key \"NoSuchKey\"\r\n");
	assert_true(say(s, "GETCONF\r\n"));
	assert_memory_equal(fk.out, "512 ", 4);
	control_session_free(s);
}

static void test_control_setconf_changes_runtime_keys_only(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	assert_true(say(s, "SETCONF MaxCircuitDirtiness=20 ExitNodes=\"a,b\"\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_int_equal(fk.replaced, 1);
	assert_int_equal(fk.cfg->max_circuit_dirtiness, 20);
	assert_int_equal(fk.cfg->exit_nodes.n, 2);
	/* Keys the command did not name keep their values. */
	assert_int_equal(fk.cfg->socks_port.v[0].port, 9050);
	assert_true(say(s, "GETCONF ExitNodes\r\n"));
	assert_string_equal(fk.out, "250 ExitNodes=a,b\r\n");

	assert_true(say(s, "SETCONF SocksPort=9999\r\n"));
	assert_string_equal(fk.out, "553 Transition not allowed: SocksPort cannot change while onionring runs\r\n");
	assert_true(say(s, "SETCONF MaxCircuitDirtiness=soon\r\n"));
	assert_memory_equal(fk.out, "513 Unacceptable option value: ", 31);
	assert_true(say(s, "SETCONF Bogus=1\r\n"));
	assert_memory_equal(fk.out, "552 Unrecognized option", 23);
	assert_true(say(s, "SETCONF\r\n"));
	assert_memory_equal(fk.out, "512 ", 4);
	assert_int_equal(fk.replaced, 1);

	assert_true(say(s, "RESETCONF MaxCircuitDirtiness\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_int_equal(fk.cfg->max_circuit_dirtiness, 600);
	assert_true(say(s, "RESETCONF MaxCircuitDirtiness=5\r\n"));
	assert_memory_equal(fk.out, "552 ", 4);
	assert_true(say(s, "RESETCONF\r\n"));
	assert_memory_equal(fk.out, "512 ", 4);
	control_session_free(s);
}

static void test_control_setevents_rejects_unknown_events(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	assert_true(say(s, "SETEVENTS CIRC BOGUS\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized event \"BOGUS\"\r\n");
	assert_true(say(s, "SETEVENTS CIRC=1\r\n"));
	assert_memory_equal(fk.out, "552 ", 4);
	/* Without a worker (this test) subscriptions cannot be delivered. */
	assert_true(say(s, "SETEVENTS EXTENDED CIRC STREAM\r\n"));
	assert_memory_equal(fk.out, "551 ", 4);
	control_session_free(s);
}

static void test_control_signal_acts_and_rejects(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	assert_true(say(s, "SIGNAL RELOAD\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_true(say(s, "SIGNAL dump\r\n"));
	assert_true(say(s, "SIGNAL HUP\r\n"));
	assert_int_equal(fk.nsignals, 3);
	assert_int_equal(fk.signals[0], CONTROL_SIGNAL_RELOAD);
	assert_int_equal(fk.signals[1], CONTROL_SIGNAL_DUMP);
	assert_int_equal(fk.signals[2], CONTROL_SIGNAL_RELOAD);
	fk.signal_result = -ENOTSUP;
	assert_true(say(s, "SIGNAL NEWNYM\r\n"));
	assert_memory_equal(fk.out, "551 ", 4);
	fk.signal_result = 0;
	assert_true(say(s, "SIGNAL NEWNYM\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_true(say(s, "SIGNAL BOGUS\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized signal code \"BOGUS\"\r\n");
	assert_true(say(s, "SIGNAL\r\n"));
	assert_memory_equal(fk.out, "512 ", 4);
	assert_true(say(s, "SIGNAL HUP HUP\r\n"));
	assert_memory_equal(fk.out, "512 ", 4);
	assert_int_equal(fk.nsignals, 5);
	/* SHUTDOWN: the OK is out before the gateway acts. */
	assert_true(say(s, "SIGNAL SHUTDOWN\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_int_equal(fk.signals[5], CONTROL_SIGNAL_SHUTDOWN);
	assert_true(say(s, "SIGNAL HALT\r\n"));
	assert_int_equal(fk.signals[6], CONTROL_SIGNAL_HALT);
	control_session_free(s);
}

static void test_control_closestream_closes_known_streams_only(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	assert_true(say(s, "CLOSESTREAM 42 6\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_int_equal(fk.closed_stream, 42);
	assert_int_equal(fk.close_reason, 6);
	/* stem sends a trailing space when it has no flag; flags are ignored. */
	assert_true(say(s, "CLOSESTREAM 42 1 \r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_int_equal(fk.close_reason, 1);
	assert_true(say(s, "CLOSESTREAM 42 14 SomeFlag Other=x\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_int_equal(fk.close_reason, 14);
	assert_int_equal(fk.nrequests, 3);
	assert_true(say(s, "CLOSESTREAM 43 1\r\n"));
	assert_string_equal(fk.out, "552 Unknown stream \"43\"\r\n");
	assert_int_equal(fk.nrequests, 4);
	control_session_free(s);
}

static void test_control_closestream_rejects_wrong_arguments(void **state)
{
	static const struct {
		const char *cmd, *reply;
	} cases[] = {
		{ "CLOSESTREAM\r\n", "512 Missing argument to CLOSESTREAM\r\n" },
		{ "CLOSESTREAM 42\r\n", "512 Missing argument to CLOSESTREAM\r\n" },
		{ "CLOSESTREAM 42 \"6\r\n", "512 Invalid argument: " },
		/* Ids are nonzero decimal numbers: anything else names no stream. */
		{ "CLOSESTREAM abc 1\r\n", "552 Unknown stream \"abc\"\r\n" },
		{ "CLOSESTREAM 0 1\r\n", "552 Unknown stream \"0\"\r\n" },
		{ "CLOSESTREAM -1 1\r\n", "552 Unknown stream \"-1\"\r\n" },
		{ "CLOSESTREAM 18446744073709551616 1\r\n", "552 Unknown stream \"18446744073709551616\"\r\n" },
		{ "CLOSESTREAM \"42\" 1\r\n", "552 Unknown stream \"42\"\r\n" },
		{ "CLOSESTREAM Id=42 1\r\n", "552 Unknown stream \"42\"\r\n" },
		/* tor-spec 6.3 reasons are 1..14, in decimal. */
		{ "CLOSESTREAM 42 0\r\n", "552 Unrecognized reason \"0\"\r\n" },
		{ "CLOSESTREAM 42 15\r\n", "552 Unrecognized reason \"15\"\r\n" },
		{ "CLOSESTREAM 42 999\r\n", "552 Unrecognized reason \"999\"\r\n" },
		{ "CLOSESTREAM 42 DONE\r\n", "552 Unrecognized reason \"DONE\"\r\n" },
		{ "CLOSESTREAM 42 0x6\r\n", "552 Unrecognized reason \"0x6\"\r\n" },
		{ "CLOSESTREAM 42 -6\r\n", "552 Unrecognized reason \"-6\"\r\n" },
	};
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* Wrong arguments keep the connection (3.16: 512/552). */
		assert_true(say(s, cases[i].cmd));
		assert_memory_equal(fk.out, cases[i].reply, strlen(cases[i].reply));
	}
	/* None of them reached the gateway. */
	assert_int_equal(fk.nrequests, 0);
	assert_int_equal(fk.closed_stream, 0);
	control_session_free(s);
}

static void test_control_closecircuit_closes_known_circuits_only(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	assert_true(say(s, "CLOSECIRCUIT 7 IfUnused\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_int_equal(fk.closed_circ, 7);
	assert_true(fk.if_unused);
	assert_true(say(s, "CLOSECIRCUIT 7 \r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_false(fk.if_unused);
	/* The flag is case-insensitive (as in tor); unknown flags are ignored. */
	assert_true(say(s, "CLOSECIRCUIT 7 Bogus ifunused\r\n"));
	assert_string_equal(fk.out, "250 OK\r\n");
	assert_true(fk.if_unused);
	assert_true(say(s, "CLOSECIRCUIT 8\r\n"));
	assert_string_equal(fk.out, "552 Unknown circuit \"8\"\r\n");
	assert_int_equal(fk.nrequests, 4);
	control_session_free(s);
}

static void test_control_closecircuit_rejects_wrong_arguments(void **state)
{
	static const struct {
		const char *cmd, *reply;
	} cases[] = {
		{ "CLOSECIRCUIT\r\n", "512 Missing argument to CLOSECIRCUIT\r\n" },
		{ "CLOSECIRCUIT 7 \"IfUnused\r\n", "512 Invalid argument: " },
		{ "CLOSECIRCUIT x\r\n", "552 Unknown circuit \"x\"\r\n" },
		{ "CLOSECIRCUIT 0 IfUnused\r\n", "552 Unknown circuit \"0\"\r\n" },
		{ "CLOSECIRCUIT 7x\r\n", "552 Unknown circuit \"7x\"\r\n" },
		{ "CLOSECIRCUIT 99999999999999999999\r\n", "552 Unknown circuit \"99999999999999999999\"\r\n" },
	};
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_true(say(s, cases[i].cmd));
		assert_memory_equal(fk.out, cases[i].reply, strlen(cases[i].reply));
	}
	assert_int_equal(fk.nrequests, 0);
	assert_int_equal(fk.closed_circ, 0);
	control_session_free(s);
}

static void test_control_close_commands_answer_551_when_the_gateway_cannot(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	fk.request_result = -ESHUTDOWN;
	assert_true(say(s, "CLOSESTREAM 42 1\r\n"));
	assert_memory_equal(fk.out, "551 ", 4);
	assert_true(say(s, "CLOSECIRCUIT 7\r\n"));
	assert_memory_equal(fk.out, "551 ", 4);
	assert_true(say(s, "GETINFO circuit-status\r\n"));
	assert_string_equal(fk.out, "551 circuit-status is not available yet\r\n");
	assert_int_equal(fk.closed_stream, 0);
	/* Without a request callback at all, the same. */
	srv.be.request = NULL;
	assert_true(say(s, "CLOSECIRCUIT 7\r\n"));
	assert_memory_equal(fk.out, "551 ", 4);
	assert_true(say(s, "GETINFO stream-status\r\n"));
	assert_memory_equal(fk.out, "551 ", 4);
	control_session_free(s);
}

static void test_control_getinfo_status_lists_every_line(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	/* Nothing open: an empty single-line value. */
	assert_true(say(s, "GETINFO circuit-status stream-status\r\n"));
	assert_string_equal(fk.out, "250-circuit-status=\r\n250-stream-status=\r\n250 OK\r\n");
	/* One line each: still single-line values, as tor answers. */
	fk.circ_lines = "7 BUILT $0123456789ABCDEF0123456789ABCDEF01234567~g PURPOSE=GENERAL\n";
	fk.stream_lines = "42 SUCCEEDED 7 example.com:80\n";
	assert_true(say(s, "GETINFO stream-status circuit-status\r\n"));
	assert_string_equal(fk.out, "250-stream-status=42 SUCCEEDED 7 example.com:80\r\n"
				    "250-circuit-status=7 BUILT $0123456789ABCDEF0123456789ABCDEF01234567~g PURPOSE=GENERAL\r\n"
				    "250 OK\r\n");
	/* Several: a data reply (2.3), in the order the gateway gave. */
	fk.circ_lines = "7 BUILT PURPOSE=GENERAL\n8 LAUNCHED BUILD_FLAGS=NEED_UPTIME PURPOSE=GENERAL\n";
	assert_true(say(s, "GETINFO version circuit-status\r\n"));
	assert_non_null(strstr(fk.out, "\r\n250+circuit-status=\r\n7 BUILT PURPOSE=GENERAL\r\n"
				       "8 LAUNCHED BUILD_FLAGS=NEED_UPTIME PURPOSE=GENERAL\r\n.\r\n250 OK\r\n"));
	assert_memory_equal(fk.out, "250-version=", 12);
	/* One request per command; an unknown key still fails the whole command. */
	assert_int_equal(fk.nrequests, 3);
	assert_true(say(s, "GETINFO circuit-status nosuch\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized key \"nosuch\"\r\n");
	/* Keys are case-sensitive, as in tor. */
	assert_true(say(s, "GETINFO Circuit-Status\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized key \"Circuit-Status\"\r\n");
	assert_true(say(s, "GETINFO circuit-status=1\r\n"));
	assert_memory_equal(fk.out, "552 ", 4);
	control_session_free(s);
}

static void test_control_getinfo_orconn_status_lists_every_channel(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	assert_true(say(s, "GETINFO orconn-status\r\n"));
	assert_string_equal(fk.out, "250-orconn-status=\r\n250 OK\r\n");
	assert_int_equal(fk.nrequests, 1);
	fk.orconn_lines = "$31C0B3337428D38061A7222A14A8839B3EFBC381~relay000 CONNECTED\n"
			  "$7939B730BDE7D1AB1906041FA1292F5E433C6378~relay001 LAUNCHED\n";
	assert_true(say(s, "GETINFO orconn-status circuit-status\r\n"));
	assert_string_equal(fk.out, "250+orconn-status=\r\n"
				    "$31C0B3337428D38061A7222A14A8839B3EFBC381~relay000 CONNECTED\r\n"
				    "$7939B730BDE7D1AB1906041FA1292F5E433C6378~relay001 LAUNCHED\r\n.\r\n"
				    "250-circuit-status=\r\n250 OK\r\n");
	assert_int_equal(fk.nrequests, 2); /* one request answers both keys */
	assert_true(say(s, "GETINFO orconn-status=x\r\n"));
	assert_memory_equal(fk.out, "552 ", 4);
	assert_true(say(s, "GETINFO orconn-status nosuch\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized key \"nosuch\"\r\n");
	/* A gateway that cannot ask its shards: 551, the connection stays. */
	fk.request_result = -ESHUTDOWN;
	assert_true(say(s, "GETINFO orconn-status\r\n"));
	assert_string_equal(fk.out, "551 orconn-status is not available yet\r\n");
	control_session_free(s);
}

/* ns/ and md/ keys answer from the published directory snapshot
 * (consensus-small + microdescs-small, test/vectors/gen_netdoc.py). */
static void test_control_getinfo_ns_and_md_from_the_directory_snapshot(void **state)
{
	/* relay001 as dir-spec 3.4.1 lines (no descriptor digest in a
	 * microdesc consensus: zeros, as tor writes). */
	static const char ns1[] = "250+ns/id/7939B730BDE7D1AB1906041FA1292F5E433C6378=\r\n"
				  "r relay001 eTm3ML3n0asZBgQfoSkvXkM8Y3g AAAAAAAAAAAAAAAAAAAAAAAAAAA 2026-11-27 12:01:00 "
				  "10.0.0.1 9002 0\r\ns Fast Running V2Dir Valid\r\nw Bandwidth=110\r\n.\r\n250 OK\r\n";
	/* SHA-256 of relay002's microdescriptor: the consensus "m" line,
	 * Jt18Wk6jS3PgnXNDBqktsVFhWkKGxlaR350yQGR/qA0, in hex. */
	static const uint8_t md2_digest[SHA256_LEN] = {
		0x26, 0xdd, 0x7c, 0x5a, 0x4e, 0xa3, 0x4b, 0x73, 0xe0, 0x9d, 0x73, 0x43, 0x06, 0xa9, 0x2d, 0xb1,
		0x51, 0x61, 0x5a, 0x42, 0x86, 0xc6, 0x56, 0x91, 0xdf, 0x9d, 0x32, 0x40, 0x64, 0x7f, 0xa8, 0x0d,
	};
	struct netdoc_err e = { 0 };
	struct consensus *c = NULL;
	struct microdesc_batch *b = NULL;
	struct consensus_ref *cr;
	struct md_batch_ref *mb;
	struct control_session *s;
	uint8_t digest[SHA256_LEN];
	char body[2048];
	size_t len, n = 0;
	char *doc;
	const char *p, *end;

	(void)state;
	doc = vec_load("consensus-small", &len);
	assert_int_equal(consensus_parse(doc, len, &c, &e), PARSE_OK);
	free(doc);
	doc = vec_load("microdescs-small", &len);
	assert_int_equal(microdesc_parse_batch(doc, len, &b, &e), PARSE_OK);
	free(doc);
	cr = consensus_ref_new(c);
	mb = md_batch_ref_new(b);
	netdir_slot_publish(netdir_global(), netdir_new(cr, &mb, 1));
	server_setup(true, NULL);
	s = authed();

	assert_true(say(s, "GETINFO ns/id/7939B730BDE7D1AB1906041FA1292F5E433C6378\r\n"));
	assert_string_equal(fk.out, ns1);
	/* With "$", lower-case hex, or by nickname (any case): the same lines. */
	assert_true(say(s, "GETINFO ns/id/$7939b730bde7d1ab1906041fa1292f5e433c6378 ns/name/RELAY001\r\n"));
	assert_non_null(strstr(fk.out, "250+ns/name/RELAY001=\r\nr relay001 eTm3ML3n0asZBgQfoSkvXkM8Y3g "));
	assert_true(say(s, "GETINFO ns/all\r\n"));
	assert_non_null(strstr(fk.out, "r relay000 "));
	assert_non_null(strstr(fk.out, "\r\na [fd00::1]:9001\r\n"));
	assert_non_null(strstr(fk.out, "r relay002 "));

	/* md/: the microdescriptor as the directory sent it. */
	assert_true(say(s, "GETINFO md/name/relay002\r\n"));
	assert_memory_equal(fk.out, "250+md/name/relay002=\r\nonion-key\r\n", 34);
	p = fk.out + 23; /* after "250+md/name/relay002=\r\n" */
	end = strstr(p, "\r\n.\r\n250 OK\r\n");
	assert_non_null(end);
	for (; p < end + 2; p++) /* CRLF back to LF: the text that was hashed */
		if (*p != '\r')
			body[n++] = *p;
	crypto_sha256(body, n, digest);
	assert_memory_equal(digest, md2_digest, SHA256_LEN);
	assert_true(say(s, "GETINFO md/id/EAD190152A0B52C98707DC69057318F21AA65D62\r\n"));
	assert_non_null(strstr(fk.out, "250+md/id/EAD190152A0B52C98707DC69057318F21AA65D62=\r\nonion-key\r\n"));
	assert_true(say(s, "GETINFO md/all\r\n"));
	for (n = 0, p = fk.out; (p = strstr(p, "\r\nonion-key\r\n")); p++)
		n++;
	assert_int_equal(n, 3);

	/* Unknown relays and malformed keys: 552, the connection stays. */
	assert_true(say(s, "GETINFO ns/id/0000000000000000000000000000000000000000\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized key \"ns/id/0000000000000000000000000000000000000000\"\r\n");
	assert_true(say(s, "GETINFO md/name/nosuchrelay\r\n"));
	assert_string_equal(fk.out, "552 Unrecognized key \"md/name/nosuchrelay\"\r\n");
	assert_true(say(s, "GETINFO md/id/7939B730BDE7D1AB1906041FA1292F5E433C637\r\n")); /* 39 digits */
	assert_memory_equal(fk.out, "552 ", 4);
	assert_true(say(s, "GETINFO md/id/7939B730BDE7D1AB1906041FA1292F5E433C637X\r\n"));
	assert_memory_equal(fk.out, "552 ", 4);
	assert_true(say(s, "GETINFO md/name/\r\n"));
	assert_memory_equal(fk.out, "552 ", 4);
	assert_true(say(s, "GETINFO md/bogus\r\n"));
	assert_memory_equal(fk.out, "552 ", 4);

	/* The slot emptied: 551 for well-formed keys. */
	netdir_slot_publish(netdir_global(), NULL);
	assert_true(say(s, "GETINFO md/id/7939B730BDE7D1AB1906041FA1292F5E433C6378\r\n"));
	assert_string_equal(fk.out, "551 md/id/7939B730BDE7D1AB1906041FA1292F5E433C6378 is not available yet\r\n");
	assert_true(say(s, "GETINFO md/all\r\n"));
	assert_string_equal(fk.out, "551 md/all is not available yet\r\n");
	control_session_free(s);
	consensus_ref_put(cr);
	md_batch_ref_put(mb);
}

static void test_control_waits_for_the_answer_and_keeps_command_order(void **state)
{
	struct control_session *s;
	char want[160];

	(void)state;
	server_setup(true, NULL);
	s = authed();
	control_session_set_close(s, fake_session_close);
	fk.defer = true;
	/* Everything after the request waits for its answer. */
	assert_true(say(s, "CLOSECIRCUIT 7\r\nGETINFO process/pid\r\nCLOSE"));
	assert_string_equal(fk.out, "");
	assert_true(control_session_is_waiting(s));
	assert_non_null(fk.pending);
	assert_true(say(s, "STREAM 43 1\r\nQUIT\r\n"));
	assert_string_equal(fk.out, "");
	assert_int_equal(fk.nrequests, 1);

	fk.out_len = 0;
	fake_answer(fk.pending);
	control_req_done(fk.pending); /* CLOSECIRCUIT answers; CLOSESTREAM 43 is the next request */
	snprintf(want, sizeof(want), "250 OK\r\n250-process/pid=%ld\r\n250 OK\r\n", (long)getpid());
	assert_string_equal(fk.out, want);
	assert_int_equal(fk.nrequests, 2);
	assert_true(control_session_is_waiting(s));
	assert_int_equal(fk.closed_by_session, 0);

	fk.out_len = 0;
	fake_answer(fk.pending);
	control_req_done(fk.pending); /* then QUIT: the session closes itself */
	assert_string_equal(fk.out, "552 Unknown stream \"43\"\r\n250 closing connection\r\n");
	assert_false(control_session_is_waiting(s));
	assert_int_equal(fk.closed_by_session, 1);
	control_session_free(s);
}

static void test_control_answer_after_the_session_is_gone_is_dropped(void **state)
{
	struct control_session *s;
	struct control_req *req;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	fk.defer = true;
	assert_true(say(s, "GETINFO stream-status\r\n"));
	req = fk.pending;
	assert_non_null(req);
	control_session_free(s);
	fk.out_len = 0;
	fk.stream_lines = "42 SUCCEEDED 7 example.com:80\n";
	fake_answer(req);
	control_req_done(req); /* frees req; nothing is sent (ASan checks the rest) */
	assert_int_equal(fk.out_len, 0);
}

static void test_control_drops_a_controller_that_floods_while_waiting(void **state)
{
	const size_t chunk = 64 * 1024;
	struct control_session *s;
	char *junk = malloc(chunk);
	bool open = true;

	(void)state;
	assert_non_null(junk);
	memset(junk, 'A', chunk);
	server_setup(true, NULL);
	s = authed();
	fk.defer = true;
	assert_true(say(s, "CLOSESTREAM 42 1\r\n"));
	/* Kept up to 1 MiB while the answer is out, then the session closes. */
	for (int i = 0; i < 40 && open; i++)
		open = control_session_input(s, (const uint8_t *)junk, chunk);
	assert_false(open);
	fk.defer = false;
	fake_answer(fk.pending);
	control_req_done(fk.pending);
	control_session_free(s);
	free(junk);
}

static void test_control_before_auth_commands_after_auth(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	/* Wrong arguments to the pre-authentication commands no longer close. */
	assert_true(say(s, "PROTOCOLINFO x\r\n"));
	assert_string_equal(fk.out, "513 No such version \"x\"\r\n");
	assert_true(say(s, "AUTHCHALLENGE SAFECOOKIE 00\r\n"));
	assert_string_equal(fk.out, "513 AUTHCHALLENGE is only valid before authentication\r\n");
	assert_true(say(s, "AUTHENTICATE 0g\r\n"));
	assert_memory_equal(fk.out, "512 ", 4);
	assert_true(say(s, "PROTOCOLINFO 1\r\n"));
	assert_memory_equal(fk.out, "250-PROTOCOLINFO 1\r\n", 20);
	assert_true(say(s, "PROTOCOLINFO 1\r\n"));
	assert_memory_equal(fk.out, "250-PROTOCOLINFO 1\r\n", 20);
	/* QUIT ignores arguments, as tor does. */
	assert_false(say(s, "QUIT now\r\n"));
	assert_string_equal(fk.out, "250 closing connection\r\n");
	control_session_free(s);
}

static void test_control_unknown_and_data_commands_keep_connection(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = authed();
	assert_true(say(s, "FROBNICATE now\r\n"));
	assert_string_equal(fk.out, "510 Unrecognized command \"FROBNICATE\"\r\n");
	/* A data command is framed whole, so the next command still works. */
	assert_true(say(s, "+LOADCONF\r\nSocksPort 1\r\n.\r\nGETINFO process/pid\r\n"));
	{
		const char *want = "510 Unrecognized command \"+LOADCONF\"\r\n250-process/pid=";

		assert_memory_equal(fk.out, want, strlen(want));
	}
	control_session_free(s);
}

static void test_control_quit_closes(void **state)
{
	struct control_session *s;

	(void)state;
	server_setup(true, NULL);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_false(say(s, "QUIT\r\n"));
	assert_string_equal(fk.out, "250 closing connection\r\n");
	control_session_free(s);
}

static void test_control_too_long_line_closes(void **state)
{
	struct control_session *s;
	char *line = malloc(CONTROL_LINE_MAX + 10);

	(void)state;
	server_setup(true, NULL);
	s = authed();
	memset(line, 'A', CONTROL_LINE_MAX + 9);
	line[CONTROL_LINE_MAX + 9] = '\0';
	assert_false(say(s, line));
	assert_string_equal(fk.out, "510 Protocol error: command line too long\r\n");
	control_session_free(s);
	free(line);
}

static void test_control_byte_at_a_time_gives_same_replies(void **state)
{
	const char *script = "PROTOCOLINFO 1\r\nAUTHENTICATE \"foo\"\nGETINFO version\r\nGETCONF ExitNodes\r\n";
	struct control_session *s;
	char whole[sizeof(fk.out)];

	(void)state;
	server_setup(true, "HashedControlPassword " TOR_FOO);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	assert_true(say(s, script));
	snprintf(whole, sizeof(whole), "%s", fk.out);
	control_session_free(s);
	s = control_session_new(&srv, NULL, fake_send, NULL);
	fk.out_len = 0;
	for (size_t i = 0; i < strlen(script); i++)
		assert_true(control_session_input(s, (const uint8_t *)script + i, 1));
	assert_string_equal(fk.out, whole);
	assert_non_null(strstr(whole, "250 ExitNodes\r\n"));
	control_session_free(s);
}

static void test_control_cookie_file_is_private_and_matches(void **state)
{
	char dir[] = "/tmp/test_control.XXXXXX", err[256];
	struct control_server cs = { 0 };
	struct stat st;
	uint8_t buf[64];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(control_cookie_write(&cs, dir, err, sizeof(err)), 0);
	assert_true(cs.cookie_auth);
	assert_int_equal(stat(cs.cookie_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(cs.cookie_path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, sizeof(buf), f), CONTROL_COOKIE_LEN);
	fclose(f);
	assert_memory_equal(buf, cs.cookie, CONTROL_COOKIE_LEN);
	unlink(cs.cookie_path);
	rmdir(dir);
	assert_int_not_equal(control_cookie_write(&cs, "/proc/nonexistent/x", err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_s2k_matches_tor_hash_password),
		cmocka_unit_test(test_control_s2k_hash_matches_independent_vectors),
		cmocka_unit_test(test_control_s2k_check_rejects_malformed_hashes),
		cmocka_unit_test(test_control_safecookie_hmacs_match_independent_vectors),
		cmocka_unit_test_teardown(test_control_refuses_every_command_before_auth, teardown),
		cmocka_unit_test_teardown(test_control_ignores_input_after_closing, teardown),
		cmocka_unit_test_teardown(test_control_protocolinfo_lists_cookie_methods, teardown),
		cmocka_unit_test_teardown(test_control_protocolinfo_lists_password_and_null, teardown),
		cmocka_unit_test_teardown(test_control_protocolinfo_rejects_non_numeric_version, teardown),
		cmocka_unit_test_teardown(test_control_cookie_auth_accepts_cookie_and_rejects_others, teardown),
		cmocka_unit_test_teardown(test_control_password_auth_uses_tor_hash, teardown),
		cmocka_unit_test_teardown(test_control_null_auth_needs_authenticate_anyway, teardown),
		cmocka_unit_test_teardown(test_control_safecookie_flow, teardown),
		cmocka_unit_test_teardown(test_control_safecookie_refuses_raw_cookie_and_other_commands, teardown),
		cmocka_unit_test_teardown(test_control_authchallenge_rejects_wrong_arguments, teardown),
		cmocka_unit_test_teardown(test_control_getinfo_answers_and_rejects, teardown),
		cmocka_unit_test_teardown(test_control_getconf_answers_and_rejects, teardown),
		cmocka_unit_test_teardown(test_control_setconf_changes_runtime_keys_only, teardown),
		cmocka_unit_test_teardown(test_control_setevents_rejects_unknown_events, teardown),
		cmocka_unit_test_teardown(test_control_signal_acts_and_rejects, teardown),
		cmocka_unit_test_teardown(test_control_closestream_closes_known_streams_only, teardown),
		cmocka_unit_test_teardown(test_control_closestream_rejects_wrong_arguments, teardown),
		cmocka_unit_test_teardown(test_control_closecircuit_closes_known_circuits_only, teardown),
		cmocka_unit_test_teardown(test_control_closecircuit_rejects_wrong_arguments, teardown),
		cmocka_unit_test_teardown(test_control_close_commands_answer_551_when_the_gateway_cannot, teardown),
		cmocka_unit_test_teardown(test_control_getinfo_status_lists_every_line, teardown),
		cmocka_unit_test_teardown(test_control_getinfo_orconn_status_lists_every_channel, teardown),
		cmocka_unit_test_teardown(test_control_getinfo_ns_and_md_from_the_directory_snapshot, teardown),
		cmocka_unit_test_teardown(test_control_waits_for_the_answer_and_keeps_command_order, teardown),
		cmocka_unit_test_teardown(test_control_answer_after_the_session_is_gone_is_dropped, teardown),
		cmocka_unit_test_teardown(test_control_drops_a_controller_that_floods_while_waiting, teardown),
		cmocka_unit_test_teardown(test_control_before_auth_commands_after_auth, teardown),
		cmocka_unit_test_teardown(test_control_unknown_and_data_commands_keep_connection, teardown),
		cmocka_unit_test_teardown(test_control_quit_closes, teardown),
		cmocka_unit_test_teardown(test_control_too_long_line_closes, teardown),
		cmocka_unit_test_teardown(test_control_byte_at_a_time_gives_same_replies, teardown),
		cmocka_unit_test(test_control_cookie_file_is_private_and_matches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
