#!/bin/bash
# test_metrics.sh: onionring's MetricsPort (/metrics, /health) over the
# private network.
#
# For: the Prometheus exposition is valid (`promtool check metrics`, from
# Debian's prometheus package) before, during and after traffic; counters
# move with traffic (socket bytes, cells, streams, circuits, the
# build-time histogram and the send-chunk pool's magazine hits and puts); onionring_bootstrap_percent is 100; /health is 200;
# unknown paths are 404. Traffic: parallel curls through the SocksPort in
# the background while /metrics is scraped.
# Not for: the exposition helpers' exact text (test/unit/test_metrics.c).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_need_cmd promtool "promtool (Debian package prometheus)"
onionring_setup
curl_pids=()

cleanup() {
	local p
	for p in "${curl_pids[@]}"; do kill "$p" 2>/dev/null || true; done
}

murl="http://127.0.0.1"  # the port is known after onionring_start
# scrape OUT: GET /metrics into OUT (bounded) and check it with promtool.
scrape() {
	curl -sS --fail --max-time 10 "$murl:$OR_METRICS_PORT/metrics" -o "$1" || fail "GET /metrics"
	promtool check metrics < "$1" > "$1.promtool" 2>&1 || { cat "$1.promtool" >&2; fail "promtool rejects $1"; }
}
# total FILE NAME: sum of every sample of NAME (any labels) in FILE.
total() {
	awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }' "$1"
}
# type_is FILE NAME TYPE: the family's TYPE line says TYPE.
type_is() {
	grep -qx "# TYPE $2 $3" "$1" || fail "$2 is not a $3"
}
# delta NAME BEFORE AFTER: how much the total of NAME went up.
delta() {
	echo $(($(total "$3" "$1") - $(total "$2" "$1")))
}
# grew NAME BEFORE AFTER MIN: the total of NAME went up by at least MIN.
grew() {
	local a b
	a=$(total "$2" "$1")
	b=$(total "$3" "$1")
	[ "$b" -ge $((a + $4)) ] || fail "$1 went from $a to $b (expected +$4 or more)"
	echo "   $1: $a -> $b"
}

onionring_start
onionring_trap cleanup
onionring_wait_bootstrap 120 || fail "no bootstrap"

# /health answers 200 "ok" once a usable directory exists; a path that is
# neither endpoint is 404.
code=$(curl -sS --max-time 10 -o "$tmp/health" -w '%{http_code}' "$murl:$OR_METRICS_PORT/health")
[ "$code" = 200 ] && grep -qx ok "$tmp/health" || fail "/health: $code $(cat "$tmp/health")"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$murl:$OR_METRICS_PORT/nope")
[ "$code" = 404 ] || fail "/nope answered $code"

# Warm up: one small fetch (the first exit circuit), bounded retries.
socks=(--socks5-hostname "127.0.0.1:$OR_SOCKS_PORT")
ok=0
for i in 1 2 3 4 5; do
	if curl -sS --fail --max-time 60 "${socks[@]}" -o "$tmp/small" "$web/small.txt"; then ok=1; break; fi
	sleep 3
done
[ $ok = 1 ] || fail "warm-up fetch"
sleep 1.2 # let each shard's once-a-second summary run
scrape "$tmp/m0"

# Traffic in the background: 3 x 16 MiB and 4 small files, each its own
# SOCKS credentials (own circuit), so several streams run at once.
size=$((16 * 1024 * 1024))
for i in 1 2 3; do
	curl -sS --fail --max-time 120 -x "socks5h://big$i:pw@127.0.0.1:$OR_SOCKS_PORT" \
		-o "$tmp/big$i" "$web/bytes/$size" &
	curl_pids+=($!)
done
for i in 1 2 3 4; do
	curl -sS --fail --max-time 60 -x "socks5h://small$i:pw@127.0.0.1:$OR_SOCKS_PORT" \
		-o "$tmp/small$i" "$web/small.txt" &
	curl_pids+=($!)
done

# Scrape while it runs (every 0.3 s, at most 120 s); each scrape must pass
# promtool. Note whether a scrape saw open streams.
during=0 saw_streams=0
for ((i = 0; i < 400; i++)); do
	running=0
	for p in "${curl_pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
	[ $running = 1 ] || break
	scrape "$tmp/during"
	during=$((during + 1))
	[ "$(total "$tmp/during" onionring_streams)" -gt 0 ] && saw_streams=1
	sleep 0.3
done
for p in "${curl_pids[@]}"; do wait "$p" || fail "a background curl failed"; done
curl_pids=()
for i in 1 2 3; do "$verify" "$tmp/big$i" --size "$size" || fail "big$i content"; done
for i in 1 2 3 4; do cmp -s "$tmp/small$i" "$TESTNET_DIR/www/small.txt" || fail "small$i content"; done
echo "   $during scrapes during traffic passed promtool; open streams seen: $saw_streams"
[ "$during" -ge 1 ] || fail "no scrape happened while traffic ran"
[ "$saw_streams" = 1 ] || fail "no scrape during traffic saw onionring_streams > 0"

# An upload makes onionring the sender, so congestion control runs on our
# side (proposal 324: cwnd/inflight/RTT are the sender's): 8 MiB PUT to a
# one-shot sink on loopback that answers with the byte count it read.
/usr/bin/python3 - "$tmp/sink.port" > "$tmp/sink.out" 2>&1 <<'PY' &
import re, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
s.settimeout(120)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
c, _ = s.accept()
c.settimeout(60)
buf = b""
while b"\r\n\r\n" not in buf:
    d = c.recv(65536)
    if not d:
        sys.exit("no request head")
    buf += d
head, _, body = buf.partition(b"\r\n\r\n")
want = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
got = len(body)
while got < want:
    d = c.recv(1 << 20)
    if not d:
        break
    got += len(d)
msg = str(got).encode()
c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(msg), msg))
c.close()
PY
sink_pid=$!
curl_pids+=("$sink_pid")
for ((i = 0; i < 100; i++)); do [ -s "$tmp/sink.port" ] && break; sleep 0.1; done
[ -s "$tmp/sink.port" ] || fail "upload sink did not start"
up=$((8 * 1024 * 1024))
head -c "$up" /dev/urandom > "$tmp/up"
got=$(curl -sS --fail --max-time 120 -H 'Expect:' -x "socks5h://up:pw@127.0.0.1:$OR_SOCKS_PORT" \
	-T "$tmp/up" "http://127.0.0.1:$(cat "$tmp/sink.port")/up") || fail "upload"
[ "$got" = "$up" ] || fail "the sink read $got of $up bytes"
wait "$sink_pid" || fail "upload sink: $(cat "$tmp/sink.out")"
curl_pids=()

sleep 1.2
scrape "$tmp/m1"

# Types and units of the families the issue names.
for c in onionring_circuits_launched_total onionring_circuits_built_total onionring_circuits_failed_total \
	onionring_streams_opened_total onionring_streams_failed_total onionring_cells_received_total \
	onionring_cells_sent_total onionring_socket_read_bytes_total onionring_socket_written_bytes_total \
	onionring_channel_pool_opened_total onionring_socket_receives_total onionring_socket_sends_total \
	onionring_relay_sends_total process_cpu_seconds_total; do
	type_is "$tmp/m1" "$c" counter
done
for gname in onionring_circuits onionring_streams onionring_connections onionring_channels onionring_cc_circuits \
	onionring_cc_cwnd_cells onionring_cc_inflight_cells onionring_cc_cwnd_mean_cells onionring_cc_rtt_mean_seconds \
	onionring_bootstrap_percent onionring_directory_age_seconds process_resident_memory_bytes; do
	type_is "$tmp/m1" "$gname" gauge
done
type_is "$tmp/m1" onionring_circuit_build_seconds histogram
grep -q '^onionring_circuits{shard="1"} ' "$tmp/m1" || fail "no shard label on onionring_circuits"

# Counters moved with the traffic: 48 MiB came in through the relays'
# sockets (and went out to curl), in at least 48 MiB / 498 cells; the
# upload went in from curl and out to the guard, in >= 8 MiB / 498 cells.
mib48=$((3 * size))
grew onionring_socket_read_bytes_total "$tmp/m0" "$tmp/m1" "$mib48"
grew onionring_cells_received_total "$tmp/m0" "$tmp/m1" $((mib48 / 498))
grew onionring_streams_opened_total "$tmp/m0" "$tmp/m1" 7
grew onionring_circuits_built_total "$tmp/m0" "$tmp/m1" 1
grew onionring_socket_written_bytes_total "$tmp/m0" "$tmp/m1" $((mib48 + up))
grew onionring_cells_sent_total "$tmp/m0" "$tmp/m1" $((up / 498))
# A receive brings at most one 64 KiB buffer, a send at most 8 chunks of
# 16 KiB: the 48 MiB took at least that many of each, and the upload left
# for the guard in at least up / 128 KiB sends on relay links.
grew onionring_socket_receives_total "$tmp/m0" "$tmp/m1" $((mib48 / 65536))
grew onionring_socket_sends_total "$tmp/m0" "$tmp/m1" $((mib48 / 131072))
grew onionring_relay_sends_total "$tmp/m0" "$tmp/m1" $((up / 131072))
# The relay sends are a part of all sends, and not all of them: the 48 MiB
# went to curl.
relay_d=$(delta onionring_relay_sends_total "$tmp/m0" "$tmp/m1")
all_d=$(delta onionring_socket_sends_total "$tmp/m0" "$tmp/m1")
[ "$relay_d" -lt "$all_d" ] || fail "relay sends grew by $relay_d, all sends by only $all_d"
# Every queued byte sits in a 16 KiB chunk from the send-chunk pool: the
# 48 MiB to curl alone took >= 3072 chunks. Most come from the shard's own
# magazines (a miss is a trip to the depot, once per 64), so the hits must
# account for at least half of them, and the puts for as many.
grep -q '^onionring_pool_magazine_hits_total{pool="io_chunk",shard="1"} ' "$tmp/m1" \
	|| fail "no per-shard magazine hits for the io_chunk pool"
type_is "$tmp/m1" onionring_pool_magazine_hits_total counter
grew onionring_pool_magazine_hits_total "$tmp/m0" "$tmp/m1" $((mib48 / 16384 / 2))
grew onionring_pool_puts_total "$tmp/m0" "$tmp/m1" $((mib48 / 16384 / 2))
[ "$(total "$tmp/m1" onionring_pool_get_failures_total)" = 0 ] || fail "the send-chunk pool refused a chunk"

# Congestion control after the upload: its circuit is open and has an RTT
# estimate from the SENDMEs (a mean over no samples would be NaN).
[ "$(total "$tmp/m1" onionring_cc_circuits)" -ge 1 ] || fail "no open circuit runs congestion control"
awk '/^onionring_cc_rtt_mean_seconds\{/ && $2 != "NaN" && $2 > 0 && $2 < 10 { ok = 1 } END { exit !ok }' "$tmp/m1" \
	|| fail "no shard has a congestion-control RTT: $(grep '^onionring_cc_rtt' "$tmp/m1" | tr '\n' ' ')"
grep '^onionring_cc_\|^onionring_sendme_' "$tmp/m1" | sed 's/^/   /'

# The histogram: +Inf bucket == _count == circuits built, and every shard's
# buckets are cumulative.
built=$(total "$tmp/m1" onionring_circuits_built_total)
[ "$(total "$tmp/m1" onionring_circuit_build_seconds_count)" = "$built" ] || fail "histogram count != circuits built"
inf=$(grep '^onionring_circuit_build_seconds_bucket{.*le="+Inf"}' "$tmp/m1" | awk '{ s += $2 } END { print s }')
[ "$inf" = "$built" ] || fail "+Inf buckets ($inf) != circuits built ($built)"
awk '/^onionring_circuit_build_seconds_bucket/ {
	split($1, a, "le="); shard = a[1];
	if (shard == prev && $2 < last) bad = 1; prev = shard; last = $2 }
	END { exit bad }' "$tmp/m1" || fail "build-time buckets are not cumulative"
sum=$(total "$tmp/m1" onionring_circuit_build_seconds_sum)
echo "   circuits built: $built; build time total ${sum}s (rounded)"

# The directory and the process.
[ "$(total "$tmp/m1" onionring_bootstrap_percent)" = 100 ] || fail "onionring_bootstrap_percent is not 100"
[ "$(total "$tmp/m1" onionring_channels)" -ge 1 ] || fail "no channel in any pool"
[ "$(total "$tmp/m1" process_resident_memory_bytes)" -gt 1000000 ] || fail "RSS looks wrong"
awk '$1 == "process_cpu_seconds_total" && $2 > 0 { ok = 1 } END { exit !ok }' "$tmp/m1" || fail "no CPU time"
# METRICS_KEEP_SCRAPES=DIR keeps the scrapes for a look.
[ -z "${METRICS_KEEP_SCRAPES:-}" ] || cp "$tmp/m0" "$tmp/during" "$tmp/m1" "$METRICS_KEEP_SCRAPES/"
echo "ok: /metrics valid before/during/after traffic, counters moved, bootstrap 100%"
