#!/bin/bash
# test_control_streams.sh: control-port events about real circuits and
# streams, driven by stem.
#
# For: issue 9's "proven with a real client" part that needs traffic:
# subscribe to ORCONN before bootstrap (a second stem process) and see a
# relay's channel LAUNCHED and CONNECTED, GETINFO orconn-status list it,
# ns/id and md/id for the guard parsed by stem; subscribe to CIRC and STREAM, run curl through onionring's SocksPort,
# check a STREAM SUCCEEDED event names a circuit that CIRC events
# announced, send SIGNAL NEWNYM and check the next stream uses a different
# circuit. Then, while slow downloads run: GETINFO stream-status and
# circuit-status parsed by stem, CLOSESTREAM (curl fails, STREAM CLOSED
# REASON=MISC), CLOSECIRCUIT IfUnused on a busy circuit (it stays), then
# CLOSECIRCUIT (CIRC CLOSED REASON=REQUESTED, gone from circuit-status,
# curl fails), and 552 for unknown ids. Skips (77), saying why, while the gateway cannot carry a stream
# (one curl with a short timeout decides), while no CIRC/STREAM event is
# published at all, or while NEWNYM answers 551. Not for: authentication or configuration
# (test_control.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_need_stem
onionring_setup /tmp/onionring-orconn.XXXXXX

# ORCONN from before bootstrap: the watcher (stem imported, waiting for
# the port) is started first, because the gateway opens its channels
# while it bootstraps, within a second on a live test network.
watch_dir=$tmp
orconn_log="$watch_dir/orconn.jsonl"
: > "$orconn_log"
timeout 400 $py "$here/control_stem.py" orconn-watch --port-file "$watch_dir/port" --out "$orconn_log" \
	--seconds 380 > "$watch_dir/watch.log" 2>&1 &
watch_pid=$!
onionring_trap 'kill "$watch_pid" 2>/dev/null || true'

# ChannelPoolMaxIdle 10: channels to directory authorities close soon
# after their fetch, so later fetches open (and report) new ones.
onionring_start "ControlPort auto" "CookieAuthentication 1" "ChannelPoolMaxIdle 10"
port=$(onionring_control_port 30) || fail "no ControlPort"
echo "$port" > "$watch_dir/port.tmp" && mv "$watch_dir/port.tmp" "$watch_dir/port"
for ((i = 0; i < 100; i++)); do # 10 s
	grep -q "subscribed to ORCONN" "$watch_dir/watch.log" 2>/dev/null && break
	kill -0 "$watch_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q "subscribed to ORCONN" "$watch_dir/watch.log" || fail "the ORCONN watcher did not subscribe: $(cat "$watch_dir/watch.log")"

onionring_wait_bootstrap 120 || fail "no bootstrap"

# A bootstrapped gateway must carry a stream: not being able to is a
# failure, never a skip.
onionring_wait_usable 90 || fail "onionring never carried a stream"

rc=0
timeout 300 $py "$here/control_stem.py" streams --port "$port" --socks "$OR_SOCKS_PORT" --url "$web" \
	--orconn-log "$orconn_log" || rc=$?
case $rc in
	0) echo "PASS" ;;
	77) exit 77 ;; # control_stem.py printed the reason as its last line
	*) fail "control_stem.py streams (exit $rc)" ;;
esac
