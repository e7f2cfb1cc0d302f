#!/bin/bash
# test_circpool.sh: the shard's circuit pool (issue 6) on one worker:
# returning SOCKS usernames find a circuit reserved for them; circuits past
# MaxCircuitDirtiness or made old by NEWNYM close (REASON=FINISHED) once
# their last stream ends, never under a live download (byte-exact);
# CircuitPoolMaxSize bounds the prebuilt circuits and a lower one by SIGHUP
# closes the surplus. The checks are in circpool_check.py (stem).
# Not for: several workers, onion-service circuits. Takes ~90 s on a
# running network.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_need_stem
onionring_setup /tmp/onionring-circpool.XXXXXX

onionring_start "NumWorkers 1" "ControlPort auto" "MaxCircuitDirtiness 10 seconds" \
	"CircuitPoolMinSize 1" "CircuitPoolMaxSize 10"
onionring_wait_bootstrap 120 || fail "no bootstrap"
ctl_port=$(onionring_control_port 10) || fail "no ControlPort"
onionring_wait_usable 90 || fail "onionring never carried a stream"

$py "$here/circpool_check.py" --control "$ctl_port" --socks "$OR_SOCKS_PORT" --metrics "$OR_METRICS_PORT" \
	--web "$web" --verify "$verify" \
	--conf "$OR_DIR/onionring.conf" --pid "$OR_PID" --tmp "$tmp" ${CIRCPOOL_ONLY:+--only "$CIRCPOOL_ONLY"} ||
	fail "circpool_check.py"
echo "ok: circuit pool: reservations, retirement after the last stream, CircuitPoolMaxSize bound"
