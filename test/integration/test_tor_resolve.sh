#!/bin/bash
# test_tor_resolve.sh: Tor's SOCKS RESOLVE (F0) and RESOLVE_PTR (F1)
# extensions (socks-extensions.txt section 2) through onionring, checked
# with Debian's tor-resolve and with exact reply codes from socks_client.py.
#
# Named to run AFTER test_testnet.sh: the first name lookup makes each tor
# 0.4.9 exit open its resolver's UDP socket bound to 0.0.0.0 (it sends only
# to 127.0.0.1:53, but test_testnet.sh's "every socket on 127.0.0.1" check
# counts it as off loopback). Before test_zz_kill_exit.sh, which must be last.
#
# What resolves on this network: the exits' resolv.conf names only
# 127.0.0.1, where nothing listens, and tor's exits do not read
# /etc/hosts, so every name fails there ("localhost" too); exits refuse
# reverse lookups of private addresses without asking DNS. So this test:
#   - IP literals: answered by onionring itself, as tor's client does;
#   - clean failures: a name and a PTR through an exit -> reply 0x04 (host
#     unreachable, tor's code for a failed resolve), quickly, then the
#     connection closes;
#   - successes through an exit: for the length of the test it runs
#     dns_stub.py on 127.0.0.1:53 (needs root and a free port 53; otherwise
#     those checks are skipped with a note) answering one fresh name (A) and
#     one TEST-NET-1 address (PTR); its log proves the exit asked it.
# Not for: onion names (not supported yet), IPv6 answers (the stub serves A
# and PTR only).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_need_cmd tor-resolve "tor-resolve (Debian's tor package)"
onionring_setup
client="$here/socks_client.py"
stub_pid=""

cleanup() {
	[ -n "$stub_pid" ] && kill "$stub_pid" 2>/dev/null || true
}
# expect_reply CMD ADDR CODE [ANSWER]: one request; reply code CODE (and
# answer ANSWER) within 60 s. A retry covers a circuit lost to churn.
expect_reply() {
	local out i
	for i in 1 2; do
		out=$(timeout 90 "$py" "$client" request "$OR_SOCKS_PORT" "$1" "$2" 2>&1) || true
		case "$out" in "reply $3"*) break ;; esac
		sleep 2
	done
	case "$out" in
		"reply $3 ${4:-}"*) echo "   $1 $2 -> $out" ;;
		*) fail "$1 $2: expected reply $3 ${4:-}, got: $out" ;;
	esac
}
# tor_resolve ARGS... EXPECTED: tor-resolve prints EXPECTED (bounded).
tor_resolve() {
	local want=${*: -1} out
	out=$(timeout 60 tor-resolve "${@:1:$#-1}" "127.0.0.1:$OR_SOCKS_PORT" 2>"$tmp/err") ||
		fail "tor-resolve ${*:1:$#-1}: $(cat "$tmp/err")"
	[ "$out" = "$want" ] || fail "tor-resolve ${*:1:$#-1} printed '$out', expected '$want'"
	echo "   tor-resolve ${*:1:$#-1} -> $out"
}

onionring_start
onionring_trap cleanup
onionring_wait_bootstrap 120 || fail "no bootstrap"

echo "IP literals (answered by onionring, like tor's client):"
tor_resolve -5 127.0.0.1 127.0.0.1
tor_resolve -5 ::1 ::1
tor_resolve -4 192.0.2.7 192.0.2.7
expect_reply resolve 10.1.2.3 0x00 10.1.2.3

echo "failures through an exit (nothing resolves there):"
id="$$-$(date +%s%N | tail -c 7)"
t0=$(date +%s.%N)
expect_reply resolve "missing-$id.example" 0x04
expect_reply resolve localhost 0x04
expect_reply ptr 127.0.0.1 0x04
if timeout 60 tor-resolve -5 "missing2-$id.example" "127.0.0.1:$OR_SOCKS_PORT" > "$tmp/out" 2>&1; then
	fail "tor-resolve of an unknown name succeeded: $(cat "$tmp/out")"
fi
grep -q "host is unreachable" "$tmp/out" || fail "tor-resolve failure: $(cat "$tmp/out")"
echo "   4 failures in $(echo "$(date +%s.%N) - $t0" | bc) s"
grep -q "attached to circuit" "$OR_LOG" || fail "no resolve went through a circuit"

echo "successes through an exit (dns_stub.py on 127.0.0.1:53):"
name="onionring-$id.example"
ptr_addr="192.0.2.$((RANDOM % 200 + 20))"
"$py" "$here/dns_stub.py" "$name" 127.0.0.2 "$ptr_addr" 60 > "$tmp/stub.log" 2>&1 &
stub_pid=$!
for ((i = 0; i < 50; i++)); do
	[ -s "$tmp/stub.log" ] && break
	sleep 0.1
done
if grep -q '^ready' "$tmp/stub.log"; then
	tor_resolve -5 "$name" 127.0.0.2
	tor_resolve -4 "$name" 127.0.0.2
	tor_resolve -5 -x "$ptr_addr" "$name"
	expect_reply resolve "$name" 0x00 127.0.0.2
	expect_reply ptr "$ptr_addr" 0x00 "$name"
	expect_reply resolve "nxdomain-$id.example" 0x04
	grep -q "in-addr.arpa' type 12: rcode 0, 1 answer" "$tmp/stub.log" ||
		fail "the stub never answered the PTR question: $(cat "$tmp/stub.log")"
	echo "   the exits asked the stub $(grep -c '^query' "$tmp/stub.log") question(s)"
else
	echo "   skipped (not a failure): $(head -1 "$tmp/stub.log")"
fi
kill "$stub_pid" 2>/dev/null || true
wait "$stub_pid" 2>/dev/null || true
stub_pid=""
kill -0 "$OR_PID" || fail "onionring died"
echo "ok: RESOLVE and RESOLVE_PTR give tor's answers and reply codes"
