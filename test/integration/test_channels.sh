#!/bin/bash
# test_channels.sh: onionring's channels against the real relays of the
# private Tor network.
#
# For: issue 4's "done when": with 2 workers, open a channel from every
# worker to every relay and authority, complete the link handshake with full
# CERTS validation against the fingerprint and Ed25519 id each node's data
# dir records, and print how long the TCP connect, TLS handshake and link
# handshake took; then point channels at relays with a wrong expected RSA
# identity and check they are refused with a reason naming both identities.
# Not for: misbehaving peers (test/unit/test_chanpool.c runs those against
# local servers) or circuits.
set -euo pipefail
: "${TESTNET_DIR:?run this through test/integration/run}"
: "${ONIONRING_BUILD:?run this through test/integration/run}"

probe="$ONIONRING_BUILD/test/integration/chan_probe"
if [ ! -x "$probe" ]; then
    echo "skipped: $probe not built"
    exit 77
fi

# NICK,127.0.0.1:ORPORT,RSA_HEX,ED25519_B64 for each node with an ORPort.
relays=()
for node in "$TESTNET_DIR"/nodes/*/; do
    nick=$(basename "$node")
    [ -f "$node/fingerprint" ] || continue
    orport=$(awk '$1 == "ORPort" { print $2; exit }' "$node/torrc")
    [ -n "$orport" ] || continue
    rsa=$(awk '{ print $2 }' "$node/fingerprint")
    ed=""
    if [ -f "$node/fingerprint-ed25519" ]; then
        ed=",$(awk '{ print $2 }' "$node/fingerprint-ed25519")"
    fi
    relays+=("$nick,$orport,$rsa$ed")
done
nexpect=$(( $(echo "$TESTNET_AUTH_ORPORTS,$TESTNET_RELAY_ORPORTS" | tr ',' '\n' | wc -l) ))
echo "== ${#relays[@]} relays found (the network lists $nexpect ORPorts)"
[ "${#relays[@]}" -eq "$nexpect" ] || { echo "FAIL: relay count mismatch" >&2; exit 1; }

echo "== every worker to every relay: full link handshake"
out=$(timeout 60 "$probe" --workers 2 --timeout-ms 15000 "${relays[@]}" 2>&1) || {
    echo "$out"; echo "FAIL: chan_probe" >&2; exit 1; }
echo "$out"
nok=$(echo "$out" | grep -c ' OK link=' || true)
[ "$nok" -eq $(( 2 * nexpect )) ] || { echo "FAIL: $nok channels open, wanted $((2 * nexpect))" >&2; exit 1; }

echo "== wrong expected identity: refused, naming both identities"
out=$(timeout 60 "$probe" --workers 2 --timeout-ms 15000 --wrong-id "${relays[0]}" "${relays[1]}" 2>&1) || {
    echo "$out"; echo "FAIL: chan_probe --wrong-id" >&2; exit 1; }
echo "$out"
echo "$out" | grep -q 'relay identity mismatch' || { echo "FAIL: no mismatch log line" >&2; exit 1; }
echo "PASS"
