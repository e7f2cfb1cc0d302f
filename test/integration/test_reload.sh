#!/bin/bash
# test_reload.sh: SIGHUP really applies the run-time keys the shards hold
# (issue 9), on a running onionring with 2 workers on the private network:
#  1. CircuitPoolMinSize raised from 1 to 6: the open-circuit gauge, steady
#     at the old size, grows by at least 8 (2 workers x 5 more clean
#     circuits, allowing two that may die meanwhile) within 40 s;
#  2. MaxClientConnections lowered from 100 to 2 (1 per worker) while 12
#     SOCKS clients have open streams: of 8 new clients at most 1 is
#     served (a worker that happened to get none of the 12 may take one),
#     the rest are closed before any SOCKS reply; each of the 12 then
#     fetches /small.txt over its existing stream, byte for byte; once they
#     are gone a new client is served again.
#  3. SETCONF MaxClientConnections=100 on the control port: 8 new clients
#     held at once are all served;
#  4. ExcludeExitNodes added by SIGHUP, naming the exit of the newest
#     (clean, ready) circuits: none of the circuits 8 isolated fetches then
#     use ends at that exit;
#  5. Log moved to another file by SIGHUP: the re-read notice and worker
#     lines land there;
#  6. a Log path that cannot be opened rejects the whole SIGHUP (with the
#     file and line), and SafeLogging changed beside it stays as it was;
#  0. SafeLogging (tor's default 1, then 0 by SIGHUP): a SOCKS request for
#     a (malformed, so at once refused) .onion hostname leaves the
#     hostname out of the log ("[scrubbed]") with 1, and in it with 0.
# Not for: SocksTimeout after SIGHUP (test_socks_bad_input.sh), or keys
# that need a restart (test/unit/test_config.c checks the flags; reload
# refuses such a change and logs it). Takes ~10 s on a running network.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup
holder_pid=""

cleanup() {
	[ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null || true
}
# hup KEY VALUE: set KEY in the config file, SIGHUP, wait (bounded) for the log line.
hup() {
	sed -i "s/^$1 .*/$1 $2/" "$OR_DIR/onionring.conf"
	grep -q "^$1 $2\$" "$OR_DIR/onionring.conf" || fail "cannot set $1 in the config file"
	onionring_hup || fail "SIGHUP with $1 $2 not applied"
}

onionring_start "CircuitPoolMinSize 1" "CircuitPoolMaxSize 10" "MaxClientConnections 100" "ControlPort auto" \
	"SafeLogging 1"
onionring_trap cleanup
onionring_wait_bootstrap 120 || fail "no bootstrap"
ctl_port=$(onionring_control_port 10) || fail "no ControlPort"
onionring_wait_usable 60 || fail "not usable"

# 0. SafeLogging 1, then 0 by SIGHUP. A malformed onion name gets 0xF6 at
# once, and its failure is logged with the destination (info).
# secret_request NAME: the request, then wait (bounded) for its log line.
secret_request() {
	local i
	curl -sS --max-time 10 --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" -o /dev/null "http://$1.onion/" \
		2>/dev/null && fail "a request for $1.onion succeeded"
	for ((i = 0; i < 50; i++)); do
		[ "$(grep -c "SOCKS request for .* failed (reply 0xf6)" "$OR_LOG" || true)" -gt "$2" ] && return 0
		sleep 0.1
	done
	fail "no 'SOCKS request ... failed (reply 0xf6)' line for $1.onion"
}
secret_request scrubme-ops-secret 0
grep -q "scrubme-ops-secret" "$OR_LOG" && fail "SafeLogging 1: the requested hostname is in the log"
grep -q "SOCKS request for \[scrubbed\] failed (reply 0xf6)" "$OR_LOG" || fail "SafeLogging 1: no [scrubbed] line"
hup SafeLogging 0
secret_request plainname-ops 1
grep -q "SOCKS request for plainname-ops.onion:80 failed (reply 0xf6)" "$OR_LOG" ||
	fail "SafeLogging 0 (by SIGHUP): the requested hostname is not in the log"
grep -q "scrubme-ops-secret" "$OR_LOG" && fail "the first hostname reached the log after all"
echo "SafeLogging 1: hostname scrubbed; SafeLogging 0 by SIGHUP: hostname logged"

# 1. CircuitPoolMinSize 1 -> 6.
for ((i = 0; i < 30; i++)); do # the old pool is full: at least 1 clean circuit per worker
	[ "$(onionring_metric onionring_circuits)" -ge 2 ] && break
	sleep 1
done
sleep 3 # the prebuild tick is 1 s: a pool of 1 launches no more
before=$(onionring_metric onionring_circuits)
[ "$before" -ge 2 ] || fail "only $before circuits open with CircuitPoolMinSize 1"
hup CircuitPoolMinSize 6
after=$before
for ((i = 0; i < 40; i++)); do
	after=$(onionring_metric onionring_circuits)
	[ "$after" -ge $((before + 8)) ] && break
	sleep 1
done
echo "CircuitPoolMinSize 1 -> 6 by SIGHUP: open circuits $before -> $after"
[ "$after" -ge $((before + 8)) ] || fail "CircuitPoolMinSize 6 after SIGHUP: $after circuits, expected >= $((before + 8))"

# 2. MaxClientConnections 100 -> 2 with 12 clients holding open streams.
cat > "$tmp/holder.py" <<'EOF'
import os, socket, struct, sys, time
port, host, hport = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ready, go, out, n_new = sys.argv[4], sys.argv[5], sys.argv[6], 8

def socks_connect(s):
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        raise OSError("greeting refused")
    a = socket.inet_aton(host)
    s.sendall(b"\x05\x01\x00\x01" + a + struct.pack(">H", hport))
    r = b""
    while len(r) < 10:
        c = s.recv(10 - len(r))
        if not c:
            raise OSError("closed before the CONNECT reply")
        r += c
    if r[1] != 0:
        raise OSError("CONNECT reply 0x%02x" % r[1])

old = []
for i in range(12):
    for attempt in range(3):  # a young network may fail a stream; bounded
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            socks_connect(s)
            old.append(s)
            break
        except OSError:
            s.close()
            time.sleep(1)
    else:
        sys.exit("could not open existing stream %d" % i)
open(ready, "w").write("ready %d\n" % len(old))
for _ in range(300):  # until the test has sent SIGHUP (bounded: 30 s)
    if os.path.exists(go):
        break
    time.sleep(0.1)
else:
    sys.exit("no go signal")
served = refused = 0
new = []
for i in range(n_new):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    new.append(s)
    try:
        s.sendall(b"\x05\x01\x00")
        r = s.recv(2)
    except socket.timeout:
        sys.exit("new client %d: neither served nor closed within 10 s" % i)
    except OSError:
        r = b""  # reset: refused
    if r == b"\x05\x00":
        served += 1
    elif r == b"":
        refused += 1
    else:
        sys.exit("new client %d: unexpected reply %r" % (i, r))
body_ok = 0
req = ("GET /small.txt HTTP/1.0\r\nHost: %s:%d\r\n\r\n" % (host, hport)).encode()
want = open(sys.argv[7], "rb").read()
for s in old:
    s.settimeout(20)
    s.sendall(req)
    data = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
    head, _, body = data.partition(b"\r\n\r\n")
    if head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0] and body == want:
        body_ok += 1
for s in old + new:
    s.close()
open(out, "w").write("served %d refused %d old_ok %d\n" % (served, refused, body_ok))
EOF
"$py" "$tmp/holder.py" "$OR_SOCKS_PORT" "$TESTNET_HTTP_HOST" "$TESTNET_HTTP_PORT" "$tmp/ready" "$tmp/go" \
	"$tmp/result" "$TESTNET_DIR/www/small.txt" > "$tmp/holder.log" 2>&1 &
holder_pid=$!
onionring_wait_file "$tmp/ready" "$holder_pid" 60 || fail "12 streams not open: $(cat "$tmp/holder.log")"
hup MaxClientConnections 2
touch "$tmp/go"
wait "$holder_pid" || fail "holder: $(cat "$tmp/holder.log")"
holder_pid=""
[ -s "$tmp/result" ] || fail "no result from the holder"
read -r _ served _ refused _ old_ok < "$tmp/result"
echo "MaxClientConnections 100 -> 2 by SIGHUP with 12 open: new clients served $served, refused $refused; existing streams that fetched /small.txt: $old_ok of 12"
[ "$served" -le 1 ] || fail "$served of 8 new clients served beyond MaxClientConnections 2 (1 per worker)"
[ "$refused" -ge 7 ] || fail "only $refused of 8 new clients refused"
[ "$old_ok" -eq 12 ] || fail "only $old_ok of 12 existing streams still worked after SIGHUP"
# Below the new limit again: served.
for ((i = 0; i < 5; i++)); do
	curl -sS --fail --max-time 20 --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" -o "$tmp/small" \
		"http://$TESTNET_HTTP_HOST:$TESTNET_HTTP_PORT/small.txt" && break
	sleep 1
done
cmp -s "$tmp/small" "$TESTNET_DIR/www/small.txt" || fail "no client served once the 12 were gone"

# 3. SETCONF takes the same path: MaxClientConnections 2 -> 100 by the
# control port, then 8 clients held at once are all served (with 2, at
# most 2 could be).
cat > "$tmp/setconf.py" <<'EOF'
import socket, sys
ctl, socks = int(sys.argv[1]), int(sys.argv[2])
c = socket.create_connection(("127.0.0.1", ctl), timeout=10)
f = c.makefile("rb")
def cmd(line):
    c.sendall(line.encode() + b"\r\n")
    r = f.readline().decode()
    if not r.startswith("250"):
        sys.exit("%s -> %s" % (line, r.strip()))
cmd("AUTHENTICATE")
cmd("SETCONF MaxClientConnections=100")
served, held = 0, []
for i in range(8):
    s = socket.create_connection(("127.0.0.1", socks), timeout=10)
    held.append(s)
    s.sendall(b"\x05\x01\x00")
    try:
        served += s.recv(2) == b"\x05\x00"
    except OSError:
        pass
print("served %d" % served)
EOF
out=$(timeout 60 "$py" "$tmp/setconf.py" "$ctl_port" "$OR_SOCKS_PORT" 2>&1) || fail "SETCONF client: $out"
served=${out#served }
echo "MaxClientConnections 2 -> 100 by SETCONF: $served of 8 clients held at once served"
[ "$served" = 8 ] || fail "after SETCONF MaxClientConnections=100 only $served of 8 clients served"
# The file says 2 still: keep it in step, so the next SIGHUP changes one key.
sed -i "s/^MaxClientConnections .*/MaxClientConnections 100/" "$OR_DIR/onionring.conf"
# 4. ExcludeExitNodes added by SIGHUP while clean circuits through that
# exit are ready: no stream after it uses one (tor abandons its circuits
# when the node lists change). The exit is the one the newest circuits end
# at; circuits are "{wN} circuit ID" in the log, paths end "$FP~nickname".
last=$(grep "built (3 hops)" "$OR_LOG" | tail -1)
xfp=$(sed -n 's/.*,\$\([0-9A-F]\{40\}\)~[A-Za-z0-9]*$/\1/p' <<< "$last")
[ -n "$xfp" ] || fail "no exit in the last built circuit: $last"
ready1=$(grep -c "built (3 hops).*,\$$xfp~[A-Za-z0-9]*\$" "$OR_LOG" || true)
echo "excluding exit \$$xfp (${last##*~}); circuits built through it so far: $ready1"
off=$(onionring_log_offset)
echo "ExcludeExitNodes \$$xfp" >> "$OR_DIR/onionring.conf"
onionring_hup || fail "SIGHUP with ExcludeExitNodes not applied"
for ((k = 0; k < 8; k++)); do # 8 isolation keys: 8 circuits, clean ones first
	curl -sS --fail --max-time 30 --socks5-hostname "u$k:p@127.0.0.1:$OR_SOCKS_PORT" -o "$tmp/small" \
		"http://$TESTNET_HTTP_HOST:$TESTNET_HTTP_PORT/small.txt" || fail "fetch $k after ExcludeExitNodes failed"
done
# Every circuit a stream was attached to after the SIGHUP, and its exit.
used=$(onionring_log_since "$off" | sed -n 's/.*\({w[0-9]*}\) stream [0-9]* (isolation [0-9a-f]*) attached to circuit \([0-9a-f]*\).*/\1 \2/p' | sort -u)
n_used=0 n_bad=0
while read -r w c; do
	[ -n "$c" ] || continue
	path=$(grep -F "$w circuit $c built (3 hops)" "$OR_LOG" | tail -1 || true)
	[ -n "$path" ] || continue # a directory circuit (1 hop)
	n_used=$((n_used + 1))
	# The last hop only: the excluded exit may still be a middle.
	if [[ $path =~ ,\$$xfp~[A-Za-z0-9]*$ ]]; then
		n_bad=$((n_bad + 1))
		echo "after ExcludeExitNodes: $path"
	fi
done <<< "$used"
echo "ExcludeExitNodes by SIGHUP: $n_used exit circuits used afterwards, $n_bad through the excluded exit"
[ "$n_used" -ge 8 ] || fail "only $n_used exit circuits seen for 8 isolated fetches"
[ "$n_bad" -eq 0 ] || fail "$n_bad circuits through the newly excluded exit took streams"

# 5. Log to another file by SIGHUP: the re-read notice and the workers'
# lines after it go to the new file only; the old one ends before them.
new_log="$OR_DIR/rotated.log"
rereads=$(grep -c "SIGHUP: configuration re-read" "$OR_LOG" || true)
sed -i "s|^Log .*|Log info file $new_log|" "$OR_DIR/onionring.conf"
onionring_hup "SIGHUP: configuration re-read" "$new_log" || fail "Log file not switched by SIGHUP"
curl -sS --fail --max-time 30 --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" -o "$tmp/small" \
	"http://$TESTNET_HTTP_HOST:$TESTNET_HTTP_PORT/small.txt" || fail "fetch after the Log switch failed"
for ((i = 0; i < 20; i++)); do
	grep -q "{w[0-9]*} stream [0-9]* (isolation" "$new_log" && break
	sleep 0.1
done
grep -q "{w[0-9]*} stream [0-9]* (isolation" "$new_log" || fail "no worker line in the new Log file"
[ "$(grep -c "SIGHUP: configuration re-read" "$OR_LOG" || true)" = "$rereads" ] || fail "the re-read notice went to the old Log file too"
echo "Log file switched by SIGHUP: $(wc -l < "$new_log") lines in the new file"
OR_LOG=$new_log # for fail() and onionring_stop

# 6. A Log that cannot be opened rejects the whole SIGHUP (tor does):
# SafeLogging 0 -> 1 in the same file does not apply, the log stays, and
# the warning names the file and line.
off=$(onionring_log_offset)
sed -i "s|^Log .*|Log info file /nonexistent-onionring-ops/x.log|; s/^SafeLogging .*/SafeLogging 1/" "$OR_DIR/onionring.conf"
log_line=$(grep -n "^Log " "$OR_DIR/onionring.conf" | cut -d: -f1)
onionring_hup "SIGHUP: new configuration rejected" || true # judged below
rej=$(onionring_log_since "$off" | grep "SIGHUP: new configuration rejected" || true)
[ -n "$rej" ] || fail "a SIGHUP with a bad Log path was not rejected"
echo "bad Log path: $rej"
[[ $rej == *"onionring.conf:$log_line: Log: cannot open /nonexistent-onionring-ops/x.log"* ]] ||
	fail "the rejection does not name the file and line $log_line of the Log key"
onionring_log_since "$off" | grep -q "SIGHUP: configuration re-read" && fail "part of the bad reload was applied"
secret_request keptplain-ops "$(grep -c "SOCKS request for .* failed (reply 0xf6)" "$OR_LOG" || true)"
grep -q "SOCKS request for keptplain-ops.onion:80 failed" "$OR_LOG" ||
	fail "SafeLogging changed by a rejected reload (or the log moved)"
echo "bad Log path by SIGHUP: whole reload rejected, SafeLogging 0 and the log kept"

echo "ok: SIGHUP and SETCONF applied SafeLogging, CircuitPoolMinSize, MaxClientConnections, ExcludeExitNodes and Log; a bad Log path rejected the whole reload"
