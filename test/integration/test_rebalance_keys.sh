#!/bin/bash
# test_rebalance_keys.sh: issue 6's requirement for returning clients. With
# 2 workers, a SOCKS username whose circuit the pool reserved on worker 1
# comes back through worker 0, which has no circuit for it: the session
# moves to worker 1 (onionring_streams_handed_off_keyed_total) and its
# stream takes the reserved circuit, already built (no build wait),
# byte-exact. Which worker a client reaches is fixed by its source port
# (SO_REUSEPORT hashing; rebalance_keys_check.py finds one port per worker
# first). CircuitPoolMinSize 0 and CircuitPoolMaxSize 1: after NEWNYM each
# worker's one clean circuit is reserved for its latest key, none is left
# that any key may take, so only the keyed hand-off avoids the build (with
# it disabled the test fails).
# Not for: the ANY-circuit hand-off (test_rebalance.sh). ~60 s on a running
# network.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_need_stem
onionring_need_cmd curl curl
onionring_setup /tmp/onionring-rebalkeys.XXXXXX

onionring_start "ControlPort auto" "CircuitPoolMinSize 0" "CircuitPoolMaxSize 1"
onionring_wait_bootstrap 120 || fail "no bootstrap"
ctl_port=$(onionring_control_port 10) || fail "no ControlPort"
onionring_wait_usable 90 || fail "onionring never carried a stream"

# Client source ports: a range of our own, away from the kernel's
# ephemeral range (32768-60999) and from the gateway's ports.
port_base=$((61100 + ($$ % 40) * 100))
$py "$here/rebalance_keys_check.py" --control "$ctl_port" --socks "$OR_SOCKS_PORT" --metrics "$OR_METRICS_PORT" \
	--port-base "$port_base" --web "$web" \
	--verify "$verify" --log "$OR_LOG" --tmp "$tmp" ||
	fail "rebalance_keys_check.py"
echo "ok: a returning key's stream moved to the worker holding its reserved circuit"
