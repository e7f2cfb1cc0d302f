#!/bin/bash
# test_gateway.sh: onionring as a SOCKS gateway over the private network.
#
# For: the main job end to end: cold start from the DirAuthority lines to
# "Bootstrapped 100%" over BEGIN_DIR, then curl --socks5-hostname through
# onionring's own 3-hop circuits to the loopback HTTP server via an exit:
# a small file and a large one, byte-exact; /metrics answers during traffic.
# Not for: isolation, RESOLVE, failure injection (other tests).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup


t0=$(date +%s.%N)
onionring_start
onionring_wait_bootstrap 120 || fail "no bootstrap"
t1=$(date +%s.%N)
echo "bootstrapped in $(echo "$t1 - $t0" | bc) s"

socks=(--socks5-hostname "127.0.0.1:$OR_SOCKS_PORT")
ok=0
# A young network may list an exit before it serves streams: up to ~90 s.
for ((i = 1; i <= 30; i++)); do
	if curl -sS --fail --max-time 60 "${socks[@]}" -o "$tmp/small" "$web/small.txt"; then
		ok=1
		break
	fi
	echo "   try $i failed" >&2
	sleep 3
done
[ $ok = 1 ] || fail "small file through onionring"
cmp "$tmp/small" "$TESTNET_DIR/www/small.txt" || fail "small file differs"
t2=$(date +%s.%N)
echo "first byte through onionring $(echo "$t2 - $t0" | bc) s after start"

size=$((20 * 1024 * 1024))
curl -sS --fail --max-time 120 "${socks[@]}" -o "$tmp/big" "$web/bytes/$size" || fail "20 MiB fetch"
"$verify" "$tmp/big" --size "$size" || fail "20 MiB content"

curl -sS --fail --max-time 10 "http://127.0.0.1:$OR_METRICS_PORT/metrics" -o "$tmp/metrics" || fail "/metrics"
grep -q '^onionring_circuits_built_total' "$tmp/metrics" || grep -q '^onionring_' "$tmp/metrics" || fail "metrics content"
echo "ok: small + 20 MiB byte-exact through onionring"
