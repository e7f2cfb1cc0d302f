#!/bin/bash
# test_zz_kill_exit.sh: the exit relay of a running download dies
# (SIGKILL); that stream ends with a clear error, the next requests succeed
# on another circuit, onionring stays up and gives back every descriptor,
# connection and stream (/proc/PID/fd, and the onionring_connections,
# onionring_streams, onionring_circuits gauges of /metrics).
#
# MUST STAY THE LAST TEST (hence "zz"): it kills one of the shared
# network's two exits (by the PID recorded in $TESTNET_DIR/pids, after
# checking /proc/PID/cmdline names $TESTNET_DIR; nothing else is signalled)
# and does not restart it, so any test after it would find one exit
# missing while the consensus still lists it. `testnet stop` treats the
# dead exit as already gone.
# Not for: relays dying during circuit builds (unit tests of circmgr), or
# a restarted exit (no later test would use it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_need_cmd ss "ss (iproute2)"
onionring_setup
curl_pid=""

cleanup() {
	[ -n "$curl_pid" ] && kill "$curl_pid" 2>/dev/null || true
}
nfds() { ls "/proc/$OR_PID/fd" | wc -l; }
# exit_of_download: name of the exit (exit1/exit2) whose tor process holds a
# TCP connection to the HTTP server, i.e. carries our download.
exit_of_download() {
	local n pid
	while read -r n pid; do
		case "$n" in exit*) ;; *) continue ;; esac
		if ss -Htnp state established "dst 127.0.0.1:$TESTNET_HTTP_PORT" 2>/dev/null |
			grep -q "pid=$pid,"; then
			echo "$n $pid"
			return 0
		fi
	done < "$TESTNET_DIR/pids"
	return 1
}

onionring_start
onionring_trap cleanup
onionring_wait_bootstrap 120 || fail "no bootstrap"
onionring_fetch_bytes 1024 3 > /dev/null || fail "warm-up fetch"
sleep 1
conns0=$(onionring_metric onionring_connections)
fds0=$(nfds)
echo "before: onionring_connections $conns0, streams $(onionring_metric onionring_streams), circuits $(onionring_metric onionring_circuits), fds $fds0"

# 1. A slow download (rate-limited by curl, so it is still running).
size=$((400 * 1024 * 1024))
curl -sS --max-time 120 --limit-rate 2M --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" \
	-o "$tmp/big" "$web/bytes/$size" 2> "$tmp/big.err" &
curl_pid=$!
for ((i = 0; i < 60; i++)); do
	[ -s "$tmp/big" ] && [ "$(stat -c %s "$tmp/big")" -gt 1000000 ] && break
	kill -0 "$curl_pid" 2>/dev/null || fail "download ended early: $(cat "$tmp/big.err")"
	sleep 0.5
done
[ "$(stat -c %s "$tmp/big")" -gt 1000000 ] || fail "download did not start"
[ "$(onionring_metric onionring_streams)" -ge 1 ] || fail "no open stream during the download"
read -r exit_name exit_pid < <(exit_of_download) || fail "no exit holds a connection to the HTTP server"
tr '\0' ' ' < "/proc/$exit_pid/cmdline" | grep -qF "$TESTNET_DIR/" ||
	fail "pid $exit_pid does not belong to this network"
echo "download running through $exit_name (pid $exit_pid): $(stat -c %s "$tmp/big") bytes so far"

# 2. Kill that exit, only it.
t_kill=$(date +%s.%N)
kill -KILL "$exit_pid"
rc=0
for ((i = 0; i < 120; i++)); do
	kill -0 "$curl_pid" 2>/dev/null || break
	sleep 0.5
done
kill -0 "$curl_pid" 2>/dev/null && fail "the download did not end within 60 s of the exit's death"
wait "$curl_pid" || rc=$?
curl_pid=""
got=$(stat -c %s "$tmp/big")
echo "download ended $(echo "$(date +%s.%N) - $t_kill" | bc) s after the kill: curl exit $rc, $got of $size bytes: $(head -c 200 "$tmp/big.err")"
[ "$rc" -ne 0 ] || fail "curl reported success for a cut download"
[ "$got" -lt "$size" ] || fail "the whole file arrived"
# What did arrive is the right prefix (a cut, not corruption).
"$verify" "$tmp/big" > /dev/null || fail "the bytes before the cut are corrupt"

# 3. The next requests succeed on another circuit (the consensus still lists
# the dead exit: circuits through it fail and are retried).
kill -0 "$OR_PID" || fail "onionring died"
tries=$(onionring_fetch_bytes 1048576 8) || fail "no fetch succeeded after the kill"
echo "1 MiB byte-exact after the kill (attempt $tries)"
tries=$(onionring_fetch_bytes 1024 3) || fail "second fetch after the kill"

# 4. Nothing leaked: the dead circuit's stream, its connections, descriptors.
for ((i = 0; i < 40; i++)); do
	[ "$(onionring_metric onionring_streams)" -eq 0 ] && [ "$(onionring_metric onionring_connections)" -le $((conns0 + 2)) ] && break
	sleep 0.5
done
streams=$(onionring_metric onionring_streams)
conns=$(onionring_metric onionring_connections)
fds=$(nfds)
echo "after: onionring_connections $conns, streams $streams, circuits $(onionring_metric onionring_circuits), fds $fds"
[ "$streams" -eq 0 ] || fail "$streams stream(s) still open"
[ "$conns" -le $((conns0 + 2)) ] || fail "connections grew: $conns0 -> $conns"
[ "$fds" -le $((fds0 + 2)) ] || fail "descriptors grew: $fds0 -> $fds"
grep -q "circuit [0-9a-f]* closed" "$OR_LOG" || fail "no circuit close logged"
kill -0 "$OR_PID" || fail "onionring died"
echo "ok: exit killed mid-download; clean error, service continued, nothing leaked"
