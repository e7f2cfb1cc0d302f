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
: "${TESTNET_DIR:?run this through test/integration/run}"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
py=/usr/bin/python3
$py -c 'import stem' 2>/dev/null || { echo "skipped: python3-stem is not installed"; exit 77; }
tmp=$(mktemp -d /tmp/onionring-circpool.XXXXXX)

fail() { echo "FAIL: $*" >&2; tail -30 "$OR_LOG" >&2 || true; exit 1; }
cleanup() {
	onionring_stop
	rm -rf "$tmp"
}

onionring_start "NumWorkers 1" "ControlPort auto" "MaxCircuitDirtiness 10 seconds" \
	"CircuitPoolMinSize 1" "CircuitPoolMaxSize 10"
trap cleanup EXIT
onionring_wait_bootstrap 120 || fail "no bootstrap"
ctl_port=$( (sed -n 's/.*ControlPort listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$OR_LOG" || true) | head -n 1)
[ -n "$ctl_port" ] || fail "no 'ControlPort listening' line"
onionring_wait_usable 90 || fail "onionring never carried a stream"

$py "$here/circpool_check.py" --control "$ctl_port" --socks "$OR_SOCKS_PORT" --metrics "$OR_METRICS_PORT" \
	--web "http://$TESTNET_HTTP_HOST:$TESTNET_HTTP_PORT" --verify "$here/../testnet/verify-bytes" \
	--conf "$OR_DIR/onionring.conf" --pid "$OR_PID" --tmp "$tmp" ${CIRCPOOL_ONLY:+--only "$CIRCPOOL_ONLY"} ||
	fail "circpool_check.py"
echo "ok: circuit pool: reservations, retirement after the last stream, CircuitPoolMaxSize bound"
