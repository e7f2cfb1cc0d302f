#!/bin/bash
# test_service.sh: what a service manager sees. The sample configuration
# in contrib/ is valid; onionring sends READY=1 on $NOTIFY_SOCKET once its
# listeners are open and STOPPING=1 when SIGTERM starts its stop.
#
# For: issue 9's systemd readiness (Type=notify in contrib/onionring.service).
# Not for: running under systemd itself (no systemd in this sandbox).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup
root="$here/../.."

fail() { echo "FAIL: $*" >&2; exit 1; }

"$OR_BIN" --verify-config -f "$root/contrib/onionring.conf.sample" | grep -q "Configuration was valid" ||
	fail "contrib/onionring.conf.sample is not valid"

sock="$tmp/notify.sock"
/usr/bin/python3 - "$sock" > "$tmp/notify.log" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1.0)
end = time.time() + 120
while time.time() < end:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        continue
    print(msg, flush=True)
    if "STOPPING=1" in msg:
        break
PY
listener=$!
for ((i = 0; i < 50; i++)); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "notify listener did not start"

export NOTIFY_SOCKET="$sock"
onionring_start
unset NOTIFY_SOCKET
for ((i = 0; i < 100; i++)); do grep -q "READY=1" "$tmp/notify.log" && break; sleep 0.1; done
grep -q "READY=1" "$tmp/notify.log" || fail "no READY=1"
kill -TERM "$OR_PID"
for ((i = 0; i < 100; i++)); do grep -q "STOPPING=1" "$tmp/notify.log" && break; sleep 0.1; done
grep -q "STOPPING=1" "$tmp/notify.log" || fail "no STOPPING=1"
wait "$listener" 2>/dev/null || true
onionring_stop
echo "ok: sample config valid; READY=1 and STOPPING=1 sent on NOTIFY_SOCKET"
