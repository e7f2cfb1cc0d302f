#!/bin/bash
# test_idle_10k.sh: one onionring holds 10,000 idle SOCKS clients (TCP
# connected, SOCKS5 greeting answered, no request) and then IDLE_CONNECTED
# (default 2,000) idle CONNECTED streams through the private network,
# keeps serving a real fetch meanwhile, and gives everything back.
#
# For: the gateway issue's "10,000 concurrent idle connections" item, with
# the memory cost: VmRSS of onionring before/while/after, per connection
# (printed; checked only against a generous 64 KiB bound), the
# onionring_connections gauge and /proc/PID/fd (sockets are io_uring
# direct descriptors, so the fd count must not grow with clients).
# "Idle CONNECTED" = greeting + CONNECT to a listener of this test
# (socks_client.py hold connected:PORT) that the exits reach on 127.0.0.1,
# holding the stream open with no data.
# Not for: throughput (test_gateway_load.sh), the handshake timeout
# (test_socks_bad_input.sh): everything here is held < 120 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup
client="$here/socks_client.py"
N=${IDLE_CLIENTS:-10000}
NC=${IDLE_CONNECTED:-2000}
hold_pid=""

# 10,000 client sockets in the holder and 10,000 in onionring: each process
# needs more than the usual 1,024 descriptors.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge $((N + 1000)) ] ||
	{ echo "skipped: hard fd limit $hard < $((N + 1000))"; exit 77; }
if [ "$hard" = unlimited ]; then ulimit -n 65536; else ulimit -n "$hard"; fi

cleanup() {
	[ -n "$hold_pid" ] && kill "$hold_pid" 2>/dev/null || true
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$OR_PID/status"; }
nfds() { ls "/proc/$OR_PID/fd" | wc -l; }
# hold_run COUNT STAGE: hold COUNT connections at STAGE in the background;
# wait (<= 180 s) until they are up. Sets hold_pid; ready line in $tmp/ready.
hold_run() {
	local i
	rm -f "$tmp/ready" "$tmp/stop"
	"$py" "$client" hold "$OR_SOCKS_PORT" "$1" "$2" 300 --stop "$tmp/stop" --ready "$tmp/ready" > "$tmp/held" &
	hold_pid=$!
	for ((i = 0; i < 360; i++)); do
		[ -f "$tmp/ready" ] && return 0
		kill -0 "$hold_pid" 2>/dev/null || break
		sleep 0.5
	done
	fail "holder for $1 $2 connections not ready"
}
hold_release() {  # hold_release: close them; print the holder's summary
	touch "$tmp/stop"
	wait "$hold_pid" || fail "holder failed"
	hold_pid=""
	cat "$tmp/held"
}
wait_conns_le() {  # wait_conns_le N: until onionring_connections <= N (<= 20 s)
	local i c
	for ((i = 0; i < 40; i++)); do
		c=$(onionring_metric onionring_connections)
		[ "$c" -le "$1" ] && return 0
		sleep 0.5
	done
	fail "onionring_connections stays at $c (> $1)"
}
report() {  # report WHAT COUNT RSS0 RSS1
	echo "$1: $2 held; VmRSS $3 -> $4 KiB; $(( ($4 - $3) * 1024 / $2 )) bytes per connection"
	[ $(( ($4 - $3) * 1024 / $2 )) -le 65536 ] || fail "$1 costs more than 64 KiB per connection"
}

# start_fresh: a new onionring, so each phase's VmRSS delta starts from a
# heap that has not held the other phase's connections (jemalloc keeps
# freed pages, which would hide the second phase's cost).
start_fresh() {
	onionring_stop
	onionring_start "MaxClientConnections $((N + NC + 4000))"
	onionring_trap cleanup
	onionring_wait_bootstrap 120 || fail "no bootstrap"
	onionring_fetch_bytes 1024 >/dev/null || fail "warm-up fetch"
	base_conns=$(onionring_metric onionring_connections)
	base_fds=$(nfds)
	rss0=$(rss_kb)
	echo "fresh onionring: VmRSS $rss0 KiB, onionring_connections $base_conns, fds $base_fds"
}

start_fresh
# 1. 10,000 sessions with the greeting answered.
t0=$(date +%s)
hold_run "$N" greeting
read -r _ ok bad secs < "$tmp/ready"
[ "$ok" -eq "$N" ] || fail "only $ok of $N greetings answered ($bad failed)"
sleep 1
rss1=$(rss_kb)
conns=$(onionring_metric onionring_connections)
echo "greeting-done: $ok sessions up in $secs s; onionring_connections $conns, fds $(nfds)"
[ "$conns" -ge $((base_conns + N)) ] || fail "gauge $conns with $N clients held"
report "TCP + greeting" "$N" "$rss0" "$rss1"
onionring_fetch_bytes 1048576 >/dev/null || fail "1 MiB fetch while $N clients are held"
echo "1 MiB byte-exact fetch while $N idle clients are held"
hold_release
grep -q "closed_by_peer 0 " "$tmp/held" || fail "the gateway closed idle clients early"
wait_conns_le $((base_conns + 2))
echo "released in $(($(date +%s) - t0)) s total; VmRSS now $(rss_kb) KiB"

# 2. CONNECTED streams, idle.
start_fresh
sink_port=$(($("$here/../testnet/testnet" find-base-port) + 5))
rss2=$rss0
t0=$(date +%s)
hold_run "$NC" "connected:$sink_port"
read -r _ ok bad secs < "$tmp/ready"
sleep 1
rss3=$(rss_kb)
conns=$(onionring_metric onionring_connections)
echo "CONNECTED: $ok of $NC streams up in $secs s ($bad failed); onionring_connections $conns"
[ "$ok" -ge $((NC * 9 / 10)) ] || fail "only $ok of $NC CONNECTED streams"
report "CONNECTED stream" "$ok" "$rss2" "$rss3"
onionring_fetch_bytes 1048576 >/dev/null || fail "1 MiB fetch while $ok streams are held"
echo "1 MiB byte-exact fetch while $ok idle streams are held"
hold_release
wait_conns_le $((base_conns + 20)) # channels to relays may have been added
fds=$(nfds)
[ "$fds" -le $((base_fds + 2)) ] || fail "descriptors grew: $base_fds -> $fds"
kill -0 "$OR_PID" || fail "onionring died"
echo "ok: $N idle sessions and $ok idle CONNECTED streams held and released; VmRSS $(rss_kb) KiB at the end"
