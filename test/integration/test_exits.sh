#!/bin/bash
# test_exits.sh: onionring builds working 3-hop circuits through every exit
# of the private network.
#
# For: issue 5's "3-hop circuits built through every exit": for each exit,
# an onionring whose ExitNodes names only that exit (StrictNodes 1) must
# fetch a file byte-exact, and its log must show a built 3-hop circuit whose
# path ends at that exit's fingerprint.
# Not for: exit policy variety (both exits accept *:*).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup


n=0
for fpfile in "$TESTNET_DIR"/nodes/exit*/fingerprint; do
	read -r nick fp < "$fpfile"
	onionring_start "ExitNodes \$$fp" "StrictNodes 1"
	onionring_wait_bootstrap 120 || fail "no bootstrap (exit $nick)"
	# A young network lists an exit only from its 2nd or 3rd consensus
	# (PLATFORM.md): allow up to ~150 s for this one to become usable;
	# onionring picks up each new consensus by itself.
	ok=0
	for ((i = 0; i < 75; i++)); do
		if curl -sS --fail --max-time 60 --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" \
			-o "$tmp/out" "$web/small.txt" 2>/dev/null; then
			ok=1
			break
		fi
		sleep 2
	done
	[ $ok = 1 ] || fail "fetch through exit $nick"
	cmp -s "$tmp/out" "$TESTNET_DIR/www/small.txt" || fail "bytes differ through exit $nick"
	# The path's last hop is "$FP~nickname" (control-spec LongName).
	grep -qE "built \(3 hops\).*,\\\$$fp(~[A-Za-z0-9]+)?\$" "$OR_LOG" ||
		fail "no 3-hop circuit ending at exit $nick in the log"
	echo "ok: 3-hop circuit through $nick ($fp)"
	onionring_stop
	n=$((n + 1))
done
[ "$n" -ge 2 ] || fail "expected at least 2 exits, found $n"
echo "ok: circuits through all $n exits"
