#!/bin/bash
# test_loadgen.sh: proves perf/loadgen measures a real gateway honestly.
#
# For: loadgen against the reference tor client of the private network
# (4 connections, 2 SOCKS isolation keys, every body byte checked): 0 errors
# and > 0 payload bytes; then a body that is NOT the pattern (/small.txt
# with --expect-pattern) must count as 'corrupt' errors and add nothing to
# the payload; a 404 counts as http_status; a gateway port with nothing
# behind it counts as connect_failed. Last, perf/sidebyside --quick on this
# network (tor side; onionring side or its "not available" line) writes
# results.md and results.csv.
# Not for: measuring anything (perf/sidebyside does, on its own network).
# Run it through test/integration/run (it needs the TESTNET_* variables).
set -euo pipefail
: "${TESTNET_DIR:?run this through test/integration/run}"
: "${ONIONRING_BUILD:?run this through test/integration/run}"

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
loadgen="$ONIONRING_BUILD/perf/loadgen"
[ -x "$loadgen" ] || { echo "perf/loadgen is not built in $ONIONRING_BUILD"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# field FILE EXPR: print a value from loadgen's JSON (python3 stdlib only).
field() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$1" "$2"; }
lg() { timeout 120 "$loadgen" --socks-port "$TESTNET_SOCKS_PORT" --target-host "$TESTNET_HTTP_HOST" \
       --target-port "$TESTNET_HTTP_PORT" --no-progress --timeout 30 "$@"; }
client_pid=$(awk '$1 == "client" {print $2}' "$TESTNET_DIR/pids")

step "closed loop through the reference client: 4 connections, 2 isolation keys, 0 errors"
ok=0
for try in 1 2 3; do   # the 20 s consensus can make one early request fail: bounded retries
    lg --connections 4 --iso-keys 2 --requests 12 --size 256k-1M --gateway-pid "$client_pid" \
       --label quick --csv "$tmp/runs.csv" > "$tmp/good.json"
    if [ "$(field "$tmp/good.json" 'd["errors"]["total"]')" = 0 ]; then ok=1; break; fi
    echo "   try $try had errors: $(field "$tmp/good.json" 'd["error_examples"]')"
    sleep 5
done
[ "$ok" = 1 ] || fail "errors through the reference client"
[ "$(field "$tmp/good.json" 'd["requests_ok"]')" = 12 ] || fail "not 12 requests OK"
[ "$(field "$tmp/good.json" 'd["payload_bytes"] >= 12 * 256 * 1024')" = True ] || fail "payload too small"
[ "$(field "$tmp/good.json" 'd["ttfb_ms"]["n"] == 12 and d["ttfb_ms"]["p50"] > 0')" = True ] || fail "no TTFB"
[ "$(field "$tmp/good.json" 'd["connect_ms"]["n"] == 12')" = True ] || fail "no connect times"
[ "$(field "$tmp/good.json" 'd["gateway_proc"]["rss_peak_kb"] > 0')" = True ] || fail "no gateway RSS"
echo "   $(field "$tmp/good.json" 'd["payload_mb_per_s"]') MB/s, TTFB p50 $(field "$tmp/good.json" 'd["ttfb_ms"]["p50"]') ms"
[ "$(wc -l < "$tmp/runs.csv")" -ge 2 ] || fail "no CSV row"
head -1 "$tmp/runs.csv" | grep -q '^label,mode,' || fail "CSV header"

step "bytes that are not the pattern count as corrupt, never as payload"
lg --connections 2 --requests 4 --path /small.txt --expect-pattern > "$tmp/bad.json"
[ "$(field "$tmp/bad.json" 'd["errors"]["corrupt"]')" = 4 ] || fail "small.txt not counted corrupt: $(cat "$tmp/bad.json")"
[ "$(field "$tmp/bad.json" 'd["payload_bytes"]')" = 0 ] || fail "corrupt bytes counted as payload"
[ "$(field "$tmp/bad.json" 'd["requests_ok"]')" = 0 ] || fail "corrupt requests counted OK"
# The same file without the pattern check is fine (the path itself works).
lg --connections 1 --requests 1 --path /small.txt > "$tmp/plain.json"
[ "$(field "$tmp/plain.json" 'd["requests_ok"]')" = 1 ] || fail "/small.txt without the check"
size=$(stat -c %s "$TESTNET_DIR/www/small.txt")
[ "$(field "$tmp/plain.json" 'd["payload_bytes"]')" = "$size" ] || fail "/small.txt length"

step "a 404 is an http_status error; a dead gateway port is connect_failed"
lg --connections 1 --requests 2 --path /no-such-file > "$tmp/404.json"
[ "$(field "$tmp/404.json" 'd["errors"]["http_status"]')" = 2 ] || fail "404 not counted"
dead=$("$root/test/testnet/testnet" find-base-port)
timeout 60 "$loadgen" --socks-port "$dead" --target-port "$TESTNET_HTTP_PORT" --no-progress \
    --requests 3 --connections 1 > "$tmp/dead.json"
[ "$(field "$tmp/dead.json" 'd["errors"]["connect_failed"]')" = 3 ] || fail "dead port not connect_failed"

step "idle mode holds CONNECTED streams and reports the gateway's RSS"
lg --mode idle --connections 50 --iso-keys 2 --duration 2 --gateway-pid "$client_pid" > "$tmp/idle.json"
[ "$(field "$tmp/idle.json" 'd["idle"]["held"]')" = 50 ] || fail "idle: not 50 held: $(cat "$tmp/idle.json")"
[ "$(field "$tmp/idle.json" 'd["errors"]["total"]')" = 0 ] || fail "idle errors"

step "perf/sidebyside --quick on this network writes the results"
timeout 500 "$root/perf/sidebyside" --quick --net-dir "$TESTNET_DIR" --build "$ONIONRING_BUILD" \
    --out "$tmp/results" --no-install || fail "sidebyside --quick"
[ -s "$tmp/results/results.md" ] || fail "no results.md"
[ -s "$tmp/results/results.csv" ] || fail "no results.csv"
grep -q '^tor/bulk,' "$tmp/results/runs.csv" || fail "no tor bulk row"
grep -q '^figure,unit,' "$tmp/results/results.csv" || fail "results.csv header"
grep -q 'onionring' "$tmp/results/results.md" || fail "results.md says nothing about onionring"
sed -n '1,40p' "$tmp/results/results.md"

step "perf/sidebyside --rounds 2 alternates the order and writes the medians"
timeout 500 "$root/perf/sidebyside" --quick --rounds 2 --workloads bulk --no-plots --net-dir "$TESTNET_DIR" \
    --build "$ONIONRING_BUILD" --out "$tmp/rounds" --no-install || fail "sidebyside --rounds 2"
head -1 "$tmp/rounds/round-1/results.csv" | grep -q '^figure,unit,tor,onionring,' || fail "round 1: not tor first"
head -1 "$tmp/rounds/round-2/results.csv" | grep -q '^figure,unit,onionring,tor,' || fail "round 2: not onionring first"
grep -q '^figure,unit,tor_median,onionring_median,onionring_over_tor,ratio_round_1,ratio_round_2$' \
    "$tmp/rounds/results.csv" || fail "rounds results.csv header: $(head -1 "$tmp/rounds/results.csv")"
# Both gateways carried the bulk download in both rounds: the median row has
# a CPU figure for each and a ratio for every round.
grep -Eq '^"CPU per GB, bulk",s/GB,[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+$' "$tmp/rounds/results.csv" \
    || fail "no bulk CPU medians: $(grep 'CPU per GB, bulk' "$tmp/rounds/results.csv")"
grep -q '2 rounds' "$tmp/rounds/results.md" || fail "results.md does not say 2 rounds"
grep -q '^| CPU seconds per GB' "$tmp/rounds/readme-headline.md" || fail "no readme headline"
cat "$tmp/rounds/readme-headline.md"
echo "PASS"
