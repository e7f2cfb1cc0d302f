#!/bin/bash
# test_directory.sh: onionring's directory manager against the private Tor
# network (BEGIN_DIR fetches: certificates, the microdesc consensus,
# microdescriptors by digest; from the authorities while bootstrapping,
# from directory caches afterwards).
#
# Proves (issue 5): a cold start reaches "Bootstrapped 100%" with a
# consensus from an authority, /health is 200 and /metrics says
# onionring_bootstrap_percent 100; the relays that are not authorities
# carry V2Dir, and the next consensus is fetched from one of those caches
# (over a CREATE2/ntor one-hop circuit) and accepted; after SIGTERM a
# restart with the same DataDirectory is usable from the cache before any
# consensus fetch (the log order shows it: "Bootstrapped 100%" and "usable
# without fetching anything" come before the first consensus request; the
# refresh that follows is scheduled per dir-spec 5.1). Prints both times.
# Not for: circuits or streams (other tests), or bad documents (the unit
# test test/unit/test_dirmgr.c injects those).
set -euo pipefail
: "${TESTNET_DIR:?run this through test/integration/run}"
: "${ONIONRING_BUILD:?run this through test/integration/run}"
: "${TESTNET_CLIENT_TORRC:?run this through test/integration/run}"

bin="$ONIONRING_BUILD/app/onionring"
if [ ! -x "$bin" ]; then
    echo "skipped: $bin not built"
    exit 77
fi
command -v curl >/dev/null || { echo "skipped: curl missing"; exit 77; }

here=$(cd "$(dirname "$0")" && pwd)
base=$("$here/../testnet/testnet" find-base-port)
mport=$base
sport=$((base + 1))
work=$(mktemp -d /tmp/onionring-dir.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# $1: log file. The client fragment has the DirAuthority lines.
write_conf() {
    {
        cat "$TESTNET_CLIENT_TORRC"
        echo "DataDirectory $work/data"
        echo "MetricsPort 127.0.0.1:$mport"
        echo "SocksPort 127.0.0.1:$sport"
        echo "NumWorkers 2"
        echo "TestingTorNetwork 1"
        echo "Log info file $1"
    } > "$work/conf"
}

now() { date +%s.%N; }

# Start onionring logging to $1 (sets pid and t0 in this shell).
start() {
    write_conf "$1"
    t0=$(now)
    "$bin" -f "$work/conf" > "$work/stdout.log" 2>&1 &
    pid=$!
}

# Wait (bounded: $2 s) until log $1 says "Bootstrapped 100%"; print the
# seconds since t0.
wait_boot() {
    local log=$1 limit=$2
    for _ in $(seq $((limit * 10))); do
        if grep -q "Bootstrapped 100%" "$log" 2>/dev/null; then
            echo "$t0 $(now)" | awk '{ printf "%.3f\n", $2 - $1 }'
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "FAIL: onionring exited" >&2; cat "$work/stdout.log" "$log" >&2; return 1; }
        sleep 0.1
    done
    echo "FAIL: no 'Bootstrapped 100%' within $limit s" >&2
    grep -E "Bootstrapped|directory|warn|err" "$log" | tail -30 >&2
    return 1
}

stop() {
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "FAIL: onionring did not stop within 10 s" >&2; exit 1; fi
    wait "$pid" || true
    pid=""
}

metric() { # $1: a metrics line prefix; prints its value
    curl -s --max-time 5 "http://127.0.0.1:$mport/metrics" | awk -v k="$1" 'index($0, k" ") == 1 { print $NF }'
}

check_health() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$mport/health")
    [ "$code" = 200 ] || { echo "FAIL: /health answered $code, want 200" >&2; exit 1; }
    [ "$(metric onionring_bootstrap_percent)" = 100 ] || { echo "FAIL: onionring_bootstrap_percent is not 100" >&2; exit 1; }
}

echo "== cold start: bootstrap from the authorities"
start "$work/run1.log"
cold=$(wait_boot "$work/run1.log" 120)
check_health
grep -E "Bootstrapped|directory: new consensus" "$work/run1.log" | sed 's/^/   /'
ok=$(metric 'onionring_directory_fetches_total{kind="consensus",result="ok"}')
[ "${ok:-0}" -ge 1 ] || { echo "FAIL: no consensus fetch counted on a cold start" >&2; exit 1; }
for f in cached-certs cached-microdesc-consensus cached-microdescs; do
    # the microdescriptors are written once their fetches are done
    for _ in $(seq 50); do [ -s "$work/data/$f" ] && break; sleep 0.1; done
    [ -s "$work/data/$f" ] || { echo "FAIL: $f not written" >&2; exit 1; }
done
first=$(grep -m1 "directory: new consensus valid-after" "$work/run1.log")
case "$first" in
    *"accepted from authority "*|*"accepted from fallback "*) ;;
    *) echo "FAIL: the bootstrap consensus did not come from an authority: $first" >&2; exit 1 ;;
esac

echo "== refresh from a directory cache (dir-spec 5.1), not an authority"
# tor relays serve BEGIN_DIR by default (DirCache 1): every relay that is
# not an authority should carry V2Dir.
caches=$(awk '/^r / { nick = $2 } /^s / && / V2Dir/ && !/ Authority/ { printf "%s ", nick }' \
    "$work/data/cached-microdesc-consensus")
echo "   V2Dir relays that are not authorities: ${caches:-none}"
[ "$(echo "$caches" | wc -w)" -ge 3 ] || { echo "FAIL: fewer than 3 non-authority V2Dir relays in the consensus" >&2; exit 1; }
# The consensus is fresh for 20 s and valid for 60 s: the refresh comes
# 35-56 s after its valid-after; allow a few rounds for caches that lag.
refreshed=""
for _ in $(seq 1500); do
    refreshed=$(grep -m1 "directory: new consensus valid-after .* accepted from cache " "$work/run1.log" || true)
    [ -n "$refreshed" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "FAIL: onionring exited" >&2; exit 1; }
    sleep 0.1
done
if [ -z "$refreshed" ]; then
    echo "FAIL: no consensus accepted from a directory cache within 150 s" >&2
    grep -E "directory|Bootstrapped" "$work/run1.log" | tail -30 >&2
    exit 1
fi
echo "   ${refreshed#*\] }"
grep -q "fetching /tor/status-vote/current/consensus-microdesc from cache " "$work/run1.log" ||
    { echo "FAIL: no consensus request to a cache logged" >&2; exit 1; }
# the cache's one-hop circuit used its ntor key (it is in the directory by now)
grep -E "directory circuit [0-9a-f]+ to " "$work/run1.log" | sed 's/^.*directory circuit/   directory circuit/' | sort -u -k5 | head -8
cache_nick=$(echo "$refreshed" | sed -n 's/.* accepted from cache \([^ ]*\) .*/\1/p')
# the directory guards (primary guards, all V2Dir) come first: here the
# network's guard1..3 (those of them with Stable)
case "$cache_nick" in
    guard*) ;;
    *) echo "FAIL: the refresh came from $cache_nick, not from a directory guard" >&2; exit 1 ;;
esac
grep -qE "directory circuit [0-9a-f]+ to $cache_nick: CREATE2 \(ntor\)" "$work/run1.log" ||
    { echo "FAIL: the directory circuit to cache $cache_nick did not use CREATE2 (ntor)" >&2; exit 1; }
ok=$(metric 'onionring_directory_fetches_total{kind="consensus",result="ok"}')
[ "${ok:-0}" -ge 2 ] || { echo "FAIL: the refreshed consensus was not counted as ok" >&2; exit 1; }
check_health
stop

echo "== restart with the same DataDirectory: usable from the cache"
start "$work/run2.log"
warm=$(wait_boot "$work/run2.log" 30)
check_health
log2="$work/run2.log"
grep -E "Bootstrapped|directory:" "$log2" | head -8 | sed 's/^/   /' || true
grep -q "usable without fetching anything" "$log2" || { echo "FAIL: not usable from the cache" >&2; exit 1; }
done_line=$(grep -n "Bootstrapped 100%" "$log2" | head -1 | cut -d: -f1)
fetch_line=$(grep -n "fetching /tor/status-vote/current/consensus-microdesc" "$log2" | head -1 | cut -d: -f1 || true)
if [ -n "$fetch_line" ] && [ "$fetch_line" -lt "$done_line" ]; then
    echo "FAIL: a consensus was fetched before the directory was usable" >&2
    exit 1
fi
echo "   first consensus fetch after restart: ${fetch_line:+log line $fetch_line (after 'Bootstrapped 100%' at line $done_line)}${fetch_line:-none yet}"
stop

echo "cold bootstrap: ${cold} s; restart from cache: ${warm} s"
rm -rf "$work"
echo "PASS"
