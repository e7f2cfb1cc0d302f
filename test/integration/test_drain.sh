#!/bin/bash
# test_drain.sh: SIGTERM drains: onionring stops accepting new clients, lets
# an open download finish byte-exact, then exits by itself; a second
# SIGTERM during a drain stops it at once; a short ShutdownWaitLength ends
# a drain that outlasts it.
#
# For: issue 9's drain behaviour. The first run allows a long drain
# (ShutdownWaitLength 3 minutes) so that a loaded machine (an ASan build
# at ~2 MB/s) still finishes the download within it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup
size=$((80 * 1024 * 1024))

# start_download: a large fetch in the background; waits until bytes flow.
start_download() {
	rm -f "$tmp/big"
	curl -sS --fail --max-time 170 --limit-rate 8M --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" \
		-o "$tmp/big" "$web/bytes/$size" &
	dl=$!
	for ((i = 0; i < 300; i++)); do
		[ -s "$tmp/big" ] && [ "$(stat -c %s "$tmp/big")" -gt 1000000 ] && return 0
		sleep 0.1
	done
	fail "the download did not start"
}

onionring_start "ShutdownWaitLength 3 minutes"
onionring_wait_bootstrap 120 || fail "no bootstrap"
onionring_wait_usable 90 || fail "onionring never carried a stream"
start_download
kill -TERM "$OR_PID"
sleep 0.5
kill -0 "$OR_PID" || fail "onionring exited instead of draining"
grep -q "not accepting new clients; waiting up to 180 s" "$OR_LOG" || fail "no drain message with ShutdownWaitLength's 180 s"
if curl -sS --max-time 5 --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" -o /dev/null "$web/small.txt" 2>/dev/null; then
	fail "a new client was served during the drain"
fi
wait "$dl" || fail "the download was cut by the drain"
"$verify" "$tmp/big" --size "$size" || fail "drained download corrupt"
for ((i = 0; i < 100; i++)); do kill -0 "$OR_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$OR_PID" 2>/dev/null && fail "onionring still running after its streams finished"
grep -q "all streams finished: stopping" "$OR_LOG" || fail "no 'all streams finished' line"
wait "$OR_PID" 2>/dev/null || true
OR_PID=""
echo "ok: SIGTERM drained an 80 MiB download byte-exact and refused new clients"

onionring_start
onionring_wait_bootstrap 120 || fail "no bootstrap (second run)"
onionring_wait_usable 90 || fail "onionring never carried a stream (second run)"
start_download
kill -TERM "$OR_PID"
sleep 0.5
kill -TERM "$OR_PID"
for ((i = 0; i < 50; i++)); do kill -0 "$OR_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$OR_PID" 2>/dev/null && fail "a second SIGTERM did not stop onionring at once"
grep -q "received again: stopping now" "$OR_LOG" || fail "no 'stopping now' line"
wait "$dl" 2>/dev/null && fail "the download survived an immediate stop" || true
OR_PID=""
echo "ok: a second SIGTERM stopped onionring at once"

onionring_start "ShutdownWaitLength 2"
onionring_wait_bootstrap 120 || fail "no bootstrap (third run)"
onionring_wait_usable 90 || fail "onionring never carried a stream (third run)"
start_download
t0=$(date +%s%N)
kill -TERM "$OR_PID"
for ((i = 0; i < 150; i++)); do kill -0 "$OR_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$OR_PID" 2>/dev/null && fail "onionring still draining 15 s after SIGTERM with ShutdownWaitLength 2"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q "drain time is over with 1 stream(s) still open: stopping" "$OR_LOG" || fail "no 'drain time is over' line"
[ "$ms" -ge 1900 ] || fail "the drain ended after $ms ms, before ShutdownWaitLength's 2 s"
wait "$dl" 2>/dev/null && fail "the download outlived ShutdownWaitLength" || true
wait "$OR_PID" 2>/dev/null || true
OR_PID=""
echo "ok: ShutdownWaitLength 2 ended the drain after $ms ms with the download still open"
