#!/bin/bash
# test_tor_stream_retry.sh: a stream that an exit fails before CONNECTED is
# retried the way tor does it (app/stream_retry.h), and optimistic data goes
# out right after BEGIN and again on the retry.
#
# For: issue 6 on the private network (2 exits, both accept *:*):
#  1. a name no exit resolves: the first exit ends the stream with
#     RESOLVEFAILED, the stream is tried on the OTHER exit (never the same
#     one twice), and with no exit left the client gets tor's reply for the
#     last error, 0x04 (host unreachable), well before SocksTimeout;
#  2. optimistic data to an IP literal: a request sent together with the
#     CONNECT makes onionring_stream_optimistic_bytes_total grow by its size;
#  3. survival: dns_stub.py answers a name only after failing its first
#     query (--fail-first-ms), so the first exit asked ends the stream with
#     RESOLVEFAILED and the other one connects; the client sent its HTTP
#     request together with the CONNECT, and gets the file byte-exact. The
#     optimistic-data counter grows by at least twice the request (sent
#     after each BEGIN). Needs root and a free 127.0.0.1:53, else skipped
#     with a note;
#  4. no circuit yet: a second onionring whose only directory authority
#     never answers keeps a CONNECT waiting (retrying with backoff) until
#     its SocksTimeout of 4 s, then replies 0x01, as tor does before it has
#     bootstrapped.
# Named to sort after test_testnet.sh and test_tor_resolve.sh: a name
# lookup makes each exit open a UDP socket on 0.0.0.0 (test_tor_resolve.sh).
# Not for: EXITPOLICY/RESOURCELIMIT ends (both exits accept *:*; the unit
# test test_stream_retry.c covers them) or the per-attempt 10 s timeout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup
client="$here/socks_client.py"
stub_pid=""
nb_pid=""

cleanup() {
	if [ -n "$stub_pid" ]; then kill "$stub_pid" 2>/dev/null || true; fi
	if [ -n "$nb_pid" ]; then kill "$nb_pid" 2>/dev/null || true; wait "$nb_pid" 2>/dev/null || true; fi
}
failed_exits() { grep -o 'exit \$[0-9A-F]\{40\}: RESOLVEFAILED' "$1" || true; }

onionring_start "SocksTimeout 60"
onionring_trap cleanup
onionring_wait_bootstrap 120 || fail "no bootstrap"
onionring_wait_usable 150 || fail "onionring never carried a stream"

# 1. Both exits fail the name: two different exits, then 0x04. A young
# network may list one exit only (PLATFORM.md): then try again, bounded.
done1=0
for ((try = 0; try < 12 && !done1; try++)); do
	id="$$-$try-$(date +%s%N | tail -c 7)"
	off=$(onionring_log_offset)
	t0=$(date +%s%N)
	out=$(timeout 90 "$py" "$client" request "$OR_SOCKS_PORT" connect "missing-$id.example" \
		"$TESTNET_HTTP_PORT" 2>&1) || true
	ms=$((($(date +%s%N) - t0) / 1000000))
	sleep 0.5 # the log line after the reply
	onionring_log_since "$off" > "$tmp/log1"
	case "$out" in "reply 0x04"*) ;; *) fail "unresolvable name: expected reply 0x04, got: $out" ;; esac
	tried=$(failed_exits "$tmp/log1" | wc -l)
	distinct=$(failed_exits "$tmp/log1" | sort -u | wc -l)
	[ "$tried" -eq "$distinct" ] || fail "an exit was tried twice for one stream: $(failed_exits "$tmp/log1")"
	if [ "$distinct" -ge 2 ]; then
		grep -q "RESOLVEFAILED; trying another circuit" "$tmp/log1" || fail "no retry line in the log"
		grep -q "giving up after .*: RESOLVEFAILED" "$tmp/log1" || fail "no give-up line naming RESOLVEFAILED"
		[ "$ms" -lt 30000 ] || fail "the reply took $ms ms (SocksTimeout is 60 s; no exit was left long before)"
		echo "ok: unresolvable name tried on $distinct different exits, reply 0x04 after $ms ms"
		done1=1
	else
		echo "   only $distinct exit tried (a young network?): again in 10 s"
		sleep 10
	fi
done
[ "$done1" = 1 ] || fail "never saw a stream tried on two exits"

# 2. Optimistic data to an IP literal.
before=$(onionring_metric onionring_stream_optimistic_bytes_total)
"$py" "$client" early "$OR_SOCKS_PORT" 127.0.0.1 "$TESTNET_HTTP_PORT" /small.txt "$tmp/body3" > "$tmp/out3" 2>&1 ||
	fail "request sent with its CONNECT: $(cat "$tmp/out3")"
cmp -s "$tmp/body3" "$TESTNET_DIR/www/small.txt" || fail "optimistic-data fetch: bytes differ"
after=$(onionring_metric onionring_stream_optimistic_bytes_total)
req_len=$(printf 'GET /small.txt HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' | wc -c)
[ $((after - before)) -ge "$req_len" ] ||
	fail "optimistic bytes grew by $((after - before)), expected >= $req_len"
echo "ok: the request sent with its CONNECT went out as optimistic data ($((after - before)) bytes), file byte-exact"

# 3. Survival of a RESOLVEFAILED from the first exit.
name="flaky-$$-$(date +%s%N | tail -c 7).test"
"$py" "$here/dns_stub.py" "$name" 127.0.0.1 192.0.2.9 180 --fail-first-ms 150 > "$tmp/stub.log" 2>&1 &
stub_pid=$!
for ((i = 0; i < 50; i++)); do
	grep -q "ready\|cannot bind" "$tmp/stub.log" 2>/dev/null && break
	kill -0 "$stub_pid" 2>/dev/null || break
	sleep 0.1
done
if ! grep -q ready "$tmp/stub.log"; then
	echo "note: survival check skipped: dns_stub.py could not serve 127.0.0.1:53: $(head -1 "$tmp/stub.log")"
else
	before=$(onionring_metric onionring_stream_optimistic_bytes_total)
	off=$(onionring_log_offset)
	"$py" "$client" early "$OR_SOCKS_PORT" "$name" "$TESTNET_HTTP_PORT" /small.txt "$tmp/body2" > "$tmp/out2" 2>&1 ||
		fail "a name the first exit fails: $(cat "$tmp/out2"); dns stub: $(cat "$tmp/stub.log")"
	cmp -s "$tmp/body2" "$TESTNET_DIR/www/small.txt" || fail "retried fetch: bytes differ"
	onionring_log_since "$off" > "$tmp/log2"
	[ "$(failed_exits "$tmp/log2" | wc -l)" -eq 1 ] ||
		fail "expected exactly one RESOLVEFAILED before success: $(failed_exits "$tmp/log2")"
	grep -q "rcode 3" "$tmp/stub.log" || fail "the stub never failed the name: $(cat "$tmp/stub.log")"
	grep -q "rcode 0, 1 answer" "$tmp/stub.log" || fail "the stub never answered the name: $(cat "$tmp/stub.log")"
	after=$(onionring_metric onionring_stream_optimistic_bytes_total)
	req_len=$(printf 'GET /small.txt HTTP/1.0\r\nHost: %s\r\n\r\n' "$name" | wc -c)
	[ $((after - before)) -ge $((2 * req_len)) ] ||
		fail "optimistic bytes grew by $((after - before)); the request ($req_len bytes) should go after each BEGIN"
	echo "ok: the first exit failed the name (RESOLVEFAILED), the other exit served it byte-exact;" \
		"the early request went out after both BEGINs ($((after - before)) bytes)"
fi

# 4. Not bootstrapped: the stream waits until SocksTimeout, then 0x01.
mkdir -p "$tmp/nb"
nb_port=$(("$("$here/../testnet/testnet" find-base-port)" + 3))
{
	echo "DataDirectory $tmp/nb/data"
	echo "SocksPort 127.0.0.1:$nb_port"
	echo "SocksTimeout 4"
	echo "NumWorkers 1"
	echo "TestingTorNetwork 1"
	# Nothing listens on 127.0.0.1:9: this onionring never bootstraps.
	echo "DirAuthority nowhere orport=9 no-v2 v3ident=00112233445566778899AABBCCDDEEFF00112233" \
		"127.0.0.1:9 00112233445566778899AABBCCDDEEFF00112233"
	echo "Log info file $tmp/nb/onionring.log"
} > "$tmp/nb/onionring.conf"
"$OR_BIN" -f "$tmp/nb/onionring.conf" > "$tmp/nb/stderr.log" 2>&1 &
nb_pid=$!
for ((i = 0; i < 50; i++)); do
	"$py" -c "import socket; socket.create_connection(('127.0.0.1', $nb_port), 1).close()" 2>/dev/null && break
	kill -0 "$nb_pid" 2>/dev/null || fail "the unbootstrapped onionring exited: $(tail -5 "$tmp/nb/stderr.log")"
	sleep 0.1
done
t0=$(date +%s%N)
out=$(timeout 30 "$py" "$client" request "$nb_port" connect 127.0.0.1 "$TESTNET_HTTP_PORT" 2>&1) || true
ms=$((($(date +%s%N) - t0) / 1000000))
case "$out" in "reply 0x01"*) ;; *) fail "not bootstrapped: expected reply 0x01, got: $out" ;; esac
[ "$ms" -ge 3000 ] && [ "$ms" -le 12000 ] || fail "not bootstrapped: reply after $ms ms, expected ~4 s (SocksTimeout)"
grep -q "no usable directory yet.*trying another circuit" "$tmp/nb/onionring.log" ||
	fail "no retry while waiting for a directory in the log"
kill "$nb_pid"
wait "$nb_pid" 2>/dev/null || true
nb_pid=""
echo "ok: before bootstrap a CONNECT waited for SocksTimeout (reply 0x01 after $ms ms)"
echo "ok: stream retries and optimistic data"
