#!/bin/bash
# test_control.sh: onionring's control port driven by stem, a real client.
#
# For: issue 9's control port without circuits: stem authenticates with the
# cookie (file mode 0600 in DataDirectory), with SAFECOOKIE and with a
# password hashed by `tor --hash-password`; a wrong password, a wrong
# cookie and commands before AUTHENTICATE are refused and the connection
# closes; GETINFO version / process/pid / status/bootstrap-phase /
# config-file / net/listeners/socks / traffic/read; GETCONF, SETCONF and
# RESETCONF of a runtime key, SETCONF of a restart-only key (553) and of an
# unknown one (552); SETEVENTS NOTICE receives a log line; SIGNAL SHUTDOWN
# stops the process. Not for: CIRC/STREAM events and NEWNYM
# (test_control_streams.sh) or the protocol's byte-level details
# (test/unit/test_control.c).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_need_stem
onionring_need_cmd tor "tor (for --hash-password)"
onionring_setup

password="control-test-$$"
hashed=$(tor --hash-password "$password" --quiet 2>/dev/null | tail -n 1)
case "$hashed" in 16:*) ;; *) fail "tor --hash-password printed '$hashed'" ;; esac

onionring_start "ControlPort auto" "CookieAuthentication 1" "HashedControlPassword $hashed"
port=$(onionring_control_port 10) || fail "no ControlPort"
echo "control port $port, pid $OR_PID"

timeout 120 $py "$here/control_stem.py" basic --port "$port" --cookie "$OR_DIR/data/control_auth_cookie" \
	--password "$password" --pid "$OR_PID" --config "$OR_DIR/onionring.conf" --socks "$OR_SOCKS_PORT" ||
	fail "control_stem.py basic"

# SIGNAL SHUTDOWN was the script's last command: the process must end.
for ((i = 0; i < 100; i++)); do
	kill -0 "$OR_PID" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$OR_PID" 2>/dev/null; then
	fail "onionring still runs 10 s after SIGNAL SHUTDOWN"
fi
wait "$OR_PID" 2>/dev/null || true
OR_PID=""
grep -q "SIGTERM received: .*stopping" "$OR_LOG" || fail "no orderly stop in the log"
echo "ok: SIGNAL SHUTDOWN stopped onionring"
echo "PASS"
