#!/bin/bash
# test_gateway_load.sh: 200 concurrent streams of mixed sizes (1 KB to
# 20 MB) over 4 isolation keys through onionring, every byte checked.
#
# For: issue 6's concurrency check and the stream/circuit bookkeeping under
# load (windows, SENDMEs, batching across both workers).
# Not for: speed (perf/ measures that; this machine is shared).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup
N=${LOAD_STREAMS:-200}


onionring_start
onionring_wait_bootstrap 120 || fail "no bootstrap"
# Warm up one circuit per isolation key so the burst measures streams.
for u in 0 1 2 3; do
	curl -sS --fail --max-time 60 -x "socks5h://u$u:pw@127.0.0.1:$OR_SOCKS_PORT" -o /dev/null "$web/small.txt" ||
		fail "warm-up for u$u"
done

sizes=(1024 10000 100000 1000000 5000000 20000000)
: > "$tmp/jobs"
for ((i = 0; i < N; i++)); do
	if ((i % 20 == 0)); then s=${sizes[5]}
	elif ((i % 5 == 0)); then s=${sizes[4]}
	else s=${sizes[i % 4]}
	fi
	echo "$i $s u$((i % 4))" >> "$tmp/jobs"
done
export OR_SOCKS_PORT web tmp verify
one() {
	set -- $1
	local i=$1 s=$2 u=$3
	if ! curl -sS --fail --max-time 300 -x "socks5h://$u:pw@127.0.0.1:$OR_SOCKS_PORT" \
		-o "$tmp/f$i" "$web/bytes/$s" 2> "$tmp/e$i"; then
		echo "stream $i ($s bytes as $u): $(cat "$tmp/e$i")"
		return 1
	fi
	"$verify" "$tmp/f$i" --size "$s" > /dev/null || { echo "stream $i: corrupt"; return 1; }
	rm -f "$tmp/f$i"
}
export -f one
t0=$(date +%s.%N)
if ! tr '\n' '\0' < "$tmp/jobs" | xargs -0 -P "$N" -I{} bash -c 'one "{}"' > "$tmp/failures" 2>&1; then
	head -20 "$tmp/failures" >&2
	fail "$(grep -c . "$tmp/failures") of $N streams failed"
fi
t1=$(date +%s.%N)
total=$(awk '{s += $2} END {print s}' "$tmp/jobs")
echo "ok: $N concurrent streams, $total bytes byte-exact in $(echo "$t1 - $t0" | bc) s"
