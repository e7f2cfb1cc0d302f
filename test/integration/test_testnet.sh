#!/bin/bash
# test_testnet.sh: proves the private Tor network itself works.
#
# For: the harness test (issue 2): through the reference tor client, fetch
# files from the loopback HTTP server via an exit and from the onion service
# and compare the bytes; check that every socket of the network stays on
# 127.0.0.1.  That no process survives "stop" is checked by ./run afterwards.
# Not for: testing onionring itself (other test_*.sh do that).
# Run it through test/integration/run (it needs the TESTNET_* variables).
set -euo pipefail
: "${TESTNET_DIR:?run this through test/integration/run}"

here=$(cd "$(dirname "$0")" && pwd)
verify="$here/../testnet/verify-bytes"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
socks=(--socks5-hostname "127.0.0.1:$TESTNET_SOCKS_PORT")
web="http://$TESTNET_HTTP_HOST:$TESTNET_HTTP_PORT"
onion="http://$TESTNET_ONION:$TESTNET_ONION_PORT"
mib=$((1024 * 1024))

step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# fetch URL OUT [curl args...]: GET URL into OUT, at most 3 tries (bounded).
fetch() {
    local url=$1 out=$2 i
    shift 2
    for i in 1 2 3; do
        if curl -sS --fail --max-time 120 "$@" -o "$out" "$url"; then
            return 0
        fi
        echo "   try $i of $url failed" >&2
        sleep 5
    done
    return 1
}

step "httpd serves the pattern with an exact length (direct, no Tor)"
fetch "$web/bytes/1000003" "$tmp/direct" || fail "direct fetch"
"$verify" "$tmp/direct" --size 1000003 || fail "direct /bytes body"
len=$(curl -sS --max-time 10 -I "$web/sparse-256M" | tr -d '\r' |
      awk 'tolower($1) == "content-length:" {print $2}')
[ "$len" = $((256 * mib)) ] || fail "sparse-256M Content-Length is '$len'"

step "small.txt via an exit equals the served file"
fetch "$web/small.txt" "$tmp/small.exit" "${socks[@]}" || fail "small.txt via exit"
cmp "$tmp/small.exit" "$TESTNET_DIR/www/small.txt" || fail "small.txt via exit differs"

step "8 MiB of the pattern via an exit"
t0=$(date +%s%3N)
fetch "$web/bytes/$((8 * mib))" "$tmp/big.exit" "${socks[@]}" || fail "/bytes via exit"
echo "   $(( 8 * 1000 / ( $(date +%s%3N) - t0 + 1) )) MiB/s over one circuit (approx.)"
"$verify" "$tmp/big.exit" --size $((8 * mib)) || fail "/bytes via exit: wrong bytes"

step "small.txt and 2 MiB of the pattern from the onion service"
fetch "$onion/small.txt" "$tmp/small.onion" "${socks[@]}" || fail "small.txt via onion"
cmp "$tmp/small.onion" "$TESTNET_DIR/www/small.txt" || fail "small.txt via onion differs"
fetch "$onion/bytes/$((2 * mib))" "$tmp/big.onion" "${socks[@]}" || fail "/bytes via onion"
"$verify" "$tmp/big.onion" --size $((2 * mib)) || fail "/bytes via onion: wrong bytes"

step "every socket of the network is on 127.0.0.1"
# ss prints: Netid State Recv-Q Send-Q Local Peer users:(("tor",pid=N,fd=M))
pids=$(awk '{print $2}' "$TESTNET_DIR/pids" | paste -sd'|')
ss -H -tuanp > "$tmp/ss"
grep -E "pid=($pids)," "$tmp/ss" > "$tmp/ours" || fail "no sockets found for the network's PIDs"
nsock=$(wc -l < "$tmp/ours")
bad=$(awk '{
        local = $5; peer = $6
        if (local !~ /^127\.0\.0\.1:[0-9]+$/) { print; next }
        if (peer !~ /^127\.0\.0\.1:[0-9]+$/ && peer != "0.0.0.0:*" && peer != "*:*") print
      }' "$tmp/ours")
[ -z "$bad" ] || fail "sockets off loopback:"$'\n'"$bad"
ntor=$(grep -c '"tor",' "$tmp/ours")
[ "$ntor" -ge 10 ] || fail "only $ntor tor sockets seen: ss cannot see the processes?"
echo "   $nsock sockets checked, all on 127.0.0.1"
echo "ok"
