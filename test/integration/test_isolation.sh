#!/bin/bash
# test_isolation.sh: streams of different SOCKS credentials never share a
# circuit (IsolateSOCKSAuth, on by default), and streams of the same
# credentials do share circuits on a worker.
#
# For: issue 6's isolation check, read from onionring's own log (each
# stream logs its isolation key prefix and the circuit it went on).
# Not for: IsolateDestAddr/IsolateDestPort (unit-level in test_socks_session
# when it exists).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup


onionring_start
onionring_wait_bootstrap 120 || fail "no bootstrap"
onionring_wait_usable 90 || fail "onionring never carried a stream"

# fetch USER: one request with SOCKS5 username/password USER:pw (bounded).
fetch() {
	local user=$1 i
	for i in 1 2 3; do
		if curl -sS --fail --max-time 60 -x "socks5h://$user:pw@127.0.0.1:$OR_SOCKS_PORT" \
			-o "$tmp/out" "$web/small.txt"; then
			cmp -s "$tmp/out" "$TESTNET_DIR/www/small.txt" || fail "bytes differ for $user"
			return 0
		fi
		sleep 2
	done
	fail "fetch as $user"
}

for round in 1 2 3; do
	fetch alice
	fetch bob
done

# "stream N (isolation XXXXXXXX) attached to circuit CCCCCCCC"
grep -o 'isolation [0-9a-f]\{8\}) attached to circuit [0-9a-f]\{8\}' "$OR_LOG" |
	awk '{print $2, $NF}' | tr -d ')' | sort -u > "$tmp/pairs"
keys=$(cut -d' ' -f1 "$tmp/pairs" | sort -u | wc -l)
[ "$keys" -ge 2 ] || fail "expected two isolation keys in the log, saw $keys"
shared=$(cut -d' ' -f2 "$tmp/pairs" | sort | uniq -d | wc -l)
[ "$shared" -eq 0 ] || { cat "$tmp/pairs"; fail "$shared circuit(s) carried streams of both users"; }
streams=$(grep -c 'attached to circuit' "$OR_LOG")
circs=$(cut -d' ' -f2 "$tmp/pairs" | sort -u | wc -l)
echo "ok: $streams streams of 2 users on $circs circuits, none shared between users"
