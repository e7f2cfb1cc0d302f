#!/bin/bash
# test_socks_bad_input.sh: misbehaving SOCKS clients get tor's reply code
# or a close, in bounded time, and the gateway keeps serving everyone else.
#
# For: the gateway issue's "bad SOCKS input" item: wrong version, garbage,
# HTTP on the SOCKS port, truncated greeting/request then EOF, no acceptable
# method, bad RFC 1929 version, unknown/BIND/UDP commands, unknown address
# type, bad and oversized hostnames (SOCKS4a > 255 bytes), oversized SOCKS4
# user id, a request + 3 KB of optimistic data in one segment; 1,000
# clients that connect and stall (500 silent, 500 with half a greeting)
# while a real 1 MiB fetch goes through, and their close by the 2-minute
# SOCKS handshake timeout (tor's SocksTimeout); no connection left behind.
# The cases and their expected replies are in socks_client.py (CASES).
# Not for: the parser's every prefix (test/unit/test_socks.c does that).
# Takes ~2.5 minutes: the handshake timeout is 120 s and not configurable.
set -euo pipefail
: "${TESTNET_DIR:?run this through test/integration/run}"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
py=/usr/bin/python3
client="$here/socks_client.py"
verify="$here/../testnet/verify-bytes"
web="http://$TESTNET_HTTP_HOST:$TESTNET_HTTP_PORT"
tmp=$(mktemp -d)
STALLERS=${STALLERS:-1000}
HOLD_S=150 # longer than the 120 s handshake timeout, bounded
stall_pids=()

fail() { echo "FAIL: $*" >&2; tail -30 "$OR_LOG" >&2 || true; exit 1; }
cleanup() {
	local p
	for p in "${stall_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	onionring_stop
	rm -rf "$tmp"
}
# metric NAME: the sum of a gauge over its samples in /metrics.
metric() {
	curl -sS --max-time 10 "http://127.0.0.1:$OR_METRICS_PORT/metrics" |
		awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }'
}
fetch_ok() {  # fetch_ok SIZE: one byte-exact /bytes/SIZE through onionring (3 tries)
	local i
	for i in 1 2 3; do
		if curl -sS --fail --max-time 60 --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" \
			-o "$tmp/f" "$web/bytes/$1" && "$verify" "$tmp/f" --size "$1" >/dev/null; then
			return 0
		fi
		sleep 2
	done
	return 1
}

onionring_start
trap cleanup EXIT
onionring_wait_bootstrap 120 || fail "no bootstrap"
fetch_ok 1024 || fail "warm-up fetch"
base_conns=$(metric onionring_connections)
base_fds=$(ls /proc/"$OR_PID"/fd | wc -l)

# 1. The stallers: half send nothing, half send half a greeting.
t0=$(date +%s)
half=$((STALLERS / 2))
"$py" "$client" hold "$OR_SOCKS_PORT" "$half" silent "$HOLD_S" --ready "$tmp/ready1" > "$tmp/hold1" &
stall_pids+=($!)
"$py" "$client" hold "$OR_SOCKS_PORT" $((STALLERS - half)) partial "$HOLD_S" --ready "$tmp/ready2" > "$tmp/hold2" &
stall_pids+=($!)
for ((i = 0; i < 120; i++)); do
	[ -f "$tmp/ready1" ] && [ -f "$tmp/ready2" ] && break
	sleep 0.5
done
[ -f "$tmp/ready1" ] && [ -f "$tmp/ready2" ] || fail "stallers not connected within 60 s"
read -r _ ok1 bad1 _ < "$tmp/ready1"
read -r _ ok2 bad2 _ < "$tmp/ready2"
[ $((ok1 + ok2)) -eq "$STALLERS" ] || fail "only $((ok1 + ok2)) of $STALLERS stallers connected ($((bad1 + bad2)) failed)"
sleep 1
conns=$(metric onionring_connections)
echo "stallers: $STALLERS connected in $(($(date +%s) - t0)) s; onionring_connections $base_conns -> $conns"
[ "$conns" -ge $((base_conns + STALLERS)) ] || fail "gateway counts $conns connections with $STALLERS stallers"

# 2. While they stall: every bad case, then real fetches.
cases=$("$py" "$client" bad 0 list)
nbad=0
for c in $cases; do
	if ! out=$("$py" "$client" bad "$OR_SOCKS_PORT" "$c" "$TESTNET_HTTP_PORT" 2>&1); then
		echo "   $out" >&2
		nbad=$((nbad + 1))
	fi
done
[ "$nbad" -eq 0 ] || fail "$nbad bad-input case(s) misbehaved"
echo "bad input: $(echo "$cases" | wc -w) cases, each got its reply and a close"
t1=$(date +%s.%N)
fetch_ok 1048576 || fail "1 MiB fetch while $STALLERS clients stall"
echo "1 MiB byte-exact fetch while $STALLERS clients stall: $(echo "$(date +%s.%N) - $t1" | bc) s"
kill -0 "$OR_PID" || fail "onionring died"

# 3. The handshake timeout (120 s from accept) closes every staller.
for p in "${stall_pids[@]}"; do wait "$p" || fail "staller exited with an error"; done
stall_pids=()
cat "$tmp/hold1" "$tmp/hold2"
for h in "$tmp/hold1" "$tmp/hold2"; do
	read -r _ held _ _ _ _ _ closed _ first _ last _ < "$h"
	[ "$closed" -eq "$held" ] || fail "$closed of $held stallers were closed by the gateway"
	# The timer runs from accept; connecting took a few seconds.
	[ "${first%.*}" -ge 110 ] || fail "a staller was closed after only $first s"
	[ "${last%.*}" -le 145 ] || fail "a staller was closed only after $last s"
done
echo "every staller closed by the handshake timeout"

# 4. Nothing left behind, and still serving.
fetch_ok 1024 || fail "fetch after the stallers"
for ((i = 0; i < 20; i++)); do
	conns=$(metric onionring_connections)
	[ "$conns" -le $((base_conns + 2)) ] && break
	sleep 0.5
done
fds=$(ls /proc/"$OR_PID"/fd | wc -l)
echo "after: onionring_connections $conns (before $base_conns), fds $fds (before $base_fds)"
[ "$conns" -le $((base_conns + 2)) ] || fail "connections leaked: $conns now, $base_conns before"
[ "$fds" -le $((base_fds + 2)) ] || fail "descriptors leaked: $fds now, $base_fds before"
echo "ok: bad SOCKS input handled; $STALLERS stallers did not stop service"
