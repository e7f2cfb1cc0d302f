#!/bin/bash
# test_directory.sh: onionring's directory manager against the private Tor
# network's authorities (DirPort fetches: certificates, the microdesc
# consensus, microdescriptors by digest).
#
# Proves (issue 5): a cold start reaches "Bootstrapped 100%", /health is
# 200 and /metrics says onionring_bootstrap_percent 100; after SIGTERM a
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
