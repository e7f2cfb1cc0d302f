#!/bin/bash
# test_oom.sh: MaxMemInQueues (tor's OOM handler) on the private network.
#
# Proves: with the limit lowered to 48 KB (__MaxMemInQueuesForTesting, a
# testing-only key: the real minimum is 64 MB), a SOCKS client that reads
# nothing while a 64 MiB download arrives makes onionring queue data for
# it (at least 64 KiB once the kernel takes no more: app/socks.c's
# CLIENT_SENDQ_LOW; with 256 KB the limit was met only while the queue
# overshot, and missed when the kernel's send buffer grew under load);
# the coordinator sees the total over the limit, logs the warning, and
# the shard closes that client's circuit (the oldest queued data): the
# client gets EOF long before 64 MiB. Another client's circuit (another
# isolation key), used for 8 MiB before the stall, holds nothing queued
# then and stays open; its next 8 MiB arrive byte-exact (on that circuit,
# or on its key's circuit of the worker that took the connection), and a
# fetch of a third client after the close works too. The limit is set by
# SIGHUP only for the stall: a download while it is set is not part of
# this (a client starved of CPU holds as much queued as the staller, and
# closing its circuit then is right).
# Not for: the choice itself (test/unit/test_oom.c), or real-size limits.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup /tmp/onionring-ops-oom.XXXXXX
stall_pid=""

fail() {
	echo "FAIL: $*" >&2
	grep -i "MaxMemInQueues" "$OR_LOG" | tail -20 >&2 || true
	echo "--- the staller:" >&2; cat "$tmp/stall.log" >&2 2>/dev/null || true
	echo "--- onionring's log (tail):" >&2; tail -40 "$OR_LOG" >&2 || true
	exit 1
}
cleanup() {
	[ -n "$stall_pid" ] && kill "$stall_pid" 2>/dev/null || true
}

onionring_start
onionring_trap cleanup
onionring_wait_bootstrap 120 || fail "no bootstrap"
onionring_wait_usable 90 || fail "not usable"

# other_fetch SIZE: fetch /bytes/SIZE as SOCKS user "other" (its own
# isolation key), check every byte, print the circuit its stream used.
other_fetch() {
	local off
	off=$(onionring_log_offset)
	curl -sS --fail --max-time 120 --proxy-user other:x --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" \
		-o "$tmp/big" "$web/bytes/$1" 2> "$tmp/curl.err" || { cat "$tmp/curl.err" >&2; return 1; }
	"$verify" "$tmp/big" --size "$1" >/dev/null || { echo "the bytes differ" >&2; return 1; }
	onionring_log_since "$off" | awk '/attached to circuit/ && !/isolation 00000000/ { c = $NF } END { print c }'
}
before=$(other_fetch 8388608) || fail "the other client's first 8 MiB"
[ -n "$before" ] || fail "no 'attached to circuit' line for the other client's stream"
echo "the other client: 8 MiB byte-exact on circuit $before"

# testing_limit on|off: set or drop the testing limit (SIGHUP re-reads it;
# the coordinator reads it at each check). Off while the other client
# downloads: a client starved of CPU holds as much queued as one that
# reads nothing, and the check would close its circuit then, rightly.
testing_limit() {
	sed -i '/^__MaxMemInQueuesForTesting/d' "$OR_DIR/onionring.conf"
	[ "$1" = off ] || echo "__MaxMemInQueuesForTesting 48 KB" >> "$OR_DIR/onionring.conf"
	onionring_hup || fail "no re-read after SIGHUP (testing limit $1)"
}
testing_limit on

# The staller: SOCKS5 CONNECT, GET 64 MiB, then read nothing until told
# (a small receive buffer so the bytes pile up in onionring, not in the
# kernel); then read what is left and report how much arrived before EOF.
cat > "$tmp/stall.py" <<'PYEOF'
import os, socket, struct, sys, time
port, host, hport, go, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(30)
s.connect(("127.0.0.1", port))
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack(">H", hport))
r = b""
while len(r) < 10:
    c = s.recv(10 - len(r))
    if not c:
        sys.exit("closed before the CONNECT reply")
    r += c
if r[1] != 0:
    sys.exit("CONNECT reply 0x%02x" % r[1])
s.sendall(("GET /bytes/%d HTTP/1.0\r\nHost: %s\r\n\r\n" % (64 << 20, host)).encode())
open(out + ".connected", "w").write("1\n")
for _ in range(1200):  # bounded: 120 s
    if os.path.exists(go):
        break
    time.sleep(0.1)
got, end = 0, "timeout"
deadline = time.time() + 60
while time.time() < deadline:
    try:
        c = s.recv(1 << 16)
    except socket.timeout:
        break
    except OSError as e:
        end = "error %s" % e.errno
        break
    if not c:
        end = "eof"
        break
    got += len(c)
open(out, "w").write("%s %d\n" % (end, got))
PYEOF
"$py" "$tmp/stall.py" "$OR_SOCKS_PORT" "$TESTNET_HTTP_HOST" "$TESTNET_HTTP_PORT" "$tmp/go" "$tmp/stall.out" \
	> "$tmp/stall.log" 2>&1 &
stall_pid=$!
onionring_wait_file "$tmp/stall.out.connected" "$stall_pid" 30 ||
	fail "the staller's stream did not connect: $(cat "$tmp/stall.log")"

# The warning, then the close of a circuit. Each second, what onionring
# says it holds queued, for the verdict when the warning does not come.
for ((i = 0; i < 300; i++)); do # bounded: 60 s
	grep -q "MaxMemInQueues: closing circuit" "$OR_LOG" && break
	if ((i % 5 == 0)); then
		alive=exited
		kill -0 "$OR_PID" 2>/dev/null && alive=running
		echo "$((i / 5)) s: onionring $alive, queued_bytes $(onionring_metric onionring_queued_bytes 2>/dev/null || echo ?)" \
			>> "$tmp/progress"
	fi
	sleep 0.2
done
grep "MaxMemInQueues" "$OR_LOG" | head -4 || true
grep -q "MaxMemInQueues (49152 bytes) exceeded" "$OR_LOG" ||
	fail "no MaxMemInQueues warning within 60 s; onionring's queued bytes, once a second:" \
		"$(tail -12 "$tmp/progress")"
grep -q "MaxMemInQueues: closing circuit" "$OR_LOG" || fail "no circuit closed for MaxMemInQueues"
touch "$tmp/go"
wait "$stall_pid" || fail "staller: $(cat "$tmp/stall.log")"
stall_pid=""
read -r end got < "$tmp/stall.out"
echo "the client that read nothing: $end after $got bytes of $((64 << 20))"
[ "$end" = eof ] || [[ $end == error* ]] || fail "the stalled client was not closed ($end, $got bytes)"
[ "$got" -lt $((64 << 20)) ] || fail "the stalled client got the whole download"

testing_limit off
grep "circuit $before closed" "$OR_LOG" && fail "the other client's idle circuit $before was closed"
after=$(other_fetch 8388608) || fail "the other client's 8 MiB after the close"
echo "the other client: 8 MiB byte-exact again (circuit $after); its first circuit $before is still open"
curl -sS --fail --max-time 60 --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" -o "$tmp/small" "$web/small.txt" ||
	fail "a fetch after the close failed"
cmp -s "$tmp/small" "$TESTNET_DIR/www/small.txt" || fail "small file differs after the close"
echo "ok: MaxMemInQueues closed the stalled client's circuit; other streams unaffected"
