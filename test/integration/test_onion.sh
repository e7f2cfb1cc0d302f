#!/bin/bash
# test_onion.sh: onionring as a v3 onion-service client over the private
# network: curl --socks5-hostname to the network's onion service
# ($TESTNET_ONION:$TESTNET_ONION_PORT) through onionring's own descriptor
# fetch (3-hop BEGIN_DIR to an HSDir), rendezvous and introduction.
#
# Proves: a small file and 50 MiB byte-exact; 20 concurrent streams, each
# byte-exact (they share the rendezvous circuit of their isolation key);
# a malformed onion address gets 0xF6 at once; a well-formed address no
# HSDir knows gets 0xF0 (descriptor not found) within 60 s; the exit path
# still works afterwards. Client authorization ($TESTNET_ONION_AUTH;
# ClientOnionAuthDir is read at start and at every SIGHUP, never per
# connection): no key 0xF4; a wrong key + SIGHUP 0xF5; the right key
# written without SIGHUP still 0xF5 (the snapshot in force); after SIGHUP
# the next connection fetches the file, without a restart, and a bad file
# beside it is reported by name and skipped.
# Not for: congestion control to services, or speed.
set -euo pipefail
: "${TESTNET_ONION:?the network has no onion service}"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-onionring.sh"
onionring_setup
sc="$here/socks_client.py"
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
fail() { echo "FAIL: $*" >&2; grep -i "onion service\|rendezvous\|introduc" "$OR_LOG" | tail -40 >&2 || true; tail -20 "$OR_LOG" >&2 || true; exit 1; }

authdir="$tmp/onion-auth"
mkdir -m 700 "$authdir"
onionring_start "ClientOnionAuthDir $authdir"
onionring_trap cleanup
onionring_wait_bootstrap 120 || fail "no bootstrap"
onionring_wait_usable 90 || fail "no exit fetch through onionring"

# hs_services first|both: the onion-service tor's HiddenService* lines
# (through its control port, cookie auth): the network's service only, or
# both as testnet starts them.
hs_services() {
	/usr/bin/python3 - "$1" <<'EOF2'
import os, sys
from stem.control import Controller
d = os.path.join(os.environ["TESTNET_DIR"], "nodes", "hs")
port = "%s 127.0.0.1:%s" % (os.environ["TESTNET_ONION_PORT"], os.environ["TESTNET_HTTP_PORT"])
opts = [("HiddenServiceDir", os.path.join(d, "onion")), ("HiddenServicePort", port)]
if sys.argv[1] == "both":
    opts += [("HiddenServiceDir", os.path.join(d, "onion-auth")), ("HiddenServicePort", port)]
with Controller.from_port(port=int(os.environ["TESTNET_HS_CONTROL_PORT"])) as c:
    c.authenticate()
    c.set_options(opts)
EOF2
}

onion="http://$TESTNET_ONION:$TESTNET_ONION_PORT"
socks=(--socks5-hostname "127.0.0.1:$OR_SOCKS_PORT")

# 1. Small file. The service is up (the runner's `wait --onion` reached it),
# but our first HSDir or intro point may be a young one: a few tries.
t0=$(date +%s.%N)
ok=0
for ((i = 1; i <= 5; i++)); do
	if curl -sS --fail --max-time 90 "${socks[@]}" -o "$tmp/small" "$onion/small.txt"; then
		ok=1
		break
	fi
	echo "   onion try $i failed" >&2
	sleep 2
done
[ $ok = 1 ] || fail "small file from the onion service"
cmp "$tmp/small" "$TESTNET_DIR/www/small.txt" || fail "small file differs"
t1=$(date +%s.%N)
echo "ok: small file from the onion service in $(echo "$t1 - $t0" | bc) s"
# The network's service offers congestion control (its descriptor's
# flow-control line) unless the consensus turned cc off (cc_alg=0).
mode=$(grep -o "rendezvous circuit [0-9a-f]* joined ([a-zA-Z ]*)" "$OR_LOG" | head -1 | sed 's/.*(//; s/)//')
case "${TESTNET_CONSENSUS_PARAMS:-}" in
*cc_alg=0*) [ "$mode" = "SENDME windows" ] || fail "cc_alg=0 but the circuit says: $mode" ;;
*) [ "$mode" = "congestion control" ] || fail "no congestion control with the service: $mode" ;;
esac
echo "   (rendezvous circuit: $mode)"

# 2. 50 MiB, byte-exact.
size=$((50 * 1024 * 1024))
t0=$(date +%s.%N)
curl -sS --fail --max-time 300 "${socks[@]}" -o "$tmp/big" "$onion/bytes/$size" || fail "50 MiB fetch"
"$verify" "$tmp/big" --size "$size" || fail "50 MiB content"
t1=$(date +%s.%N)
echo "ok: 50 MiB byte-exact in $(echo "$t1 - $t0" | bc) s"
rm -f "$tmp/big"

# 3. 20 concurrent streams of 1 MiB each.
n=20
one=$((1024 * 1024))
pids=()
for ((i = 0; i < n; i++)); do
	curl -sS --fail --max-time 180 "${socks[@]}" -o "$tmp/c$i" "$onion/bytes/$one" 2>"$tmp/c$i.err" &
	pids+=($!)
done
bad=0
for ((i = 0; i < n; i++)); do
	wait "${pids[$i]}" || { bad=$((bad + 1)); cat "$tmp/c$i.err" >&2; continue; }
	"$verify" "$tmp/c$i" --size "$one" || bad=$((bad + 1))
done
pids=()
[ $bad = 0 ] || fail "$bad of $n concurrent onion streams failed"
echo "ok: $n concurrent streams byte-exact"

# 4. A malformed address (bad checksum: one character changed) -> 0xF6 at once.
badaddr="${TESTNET_ONION:0:10}$( [ "${TESTNET_ONION:10:1}" = a ] && echo b || echo a)${TESTNET_ONION:11}"
t0=$(date +%s)
out=$(timeout 20 "$sc" request "$OR_SOCKS_PORT" connect "$badaddr" 80) || fail "no reply for a malformed address"
t1=$(date +%s)
echo "$out" | grep -q "^reply 0xf6" || fail "malformed address: $out (want 0xf6)"
[ $((t1 - t0)) -le 5 ] || fail "malformed address took $((t1 - t0)) s"
echo "ok: malformed address -> 0xf6 in $((t1 - t0)) s"

# 5. A well-formed address of a key nobody published -> 0xF0 within 60 s.
unknown=$(/usr/bin/python3 - <<'EOF'
import base64, hashlib
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives import serialization
pk = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw)
ck = hashlib.sha3_256(b".onion checksum" + pk + b"\x03").digest()[:2]
print(base64.b32encode(pk + ck + b"\x03").decode().lower() + ".onion")
EOF
)
t0=$(date +%s)
out=$(timeout 70 "$sc" request "$OR_SOCKS_PORT" connect "$unknown" 80) || fail "no reply for an unknown address"
t1=$(date +%s)
echo "$out" | grep -q "^reply 0xf0" || fail "unknown address: $out (want 0xf0)"
[ $((t1 - t0)) -le 60 ] || fail "unknown address took $((t1 - t0)) s"
echo "ok: unknown address -> 0xf0 in $((t1 - t0)) s"

# 6. The onion service again over the kept rendezvous circuit (no new
# join), and the exit path, unaffected by the failures above.
joins=$(grep -c "rendezvous circuit [0-9a-f]* joined" "$OR_LOG")
curl -sS --fail --max-time 60 "${socks[@]}" -o "$tmp/small2" "$onion/small.txt" || fail "onion after failures"
cmp "$tmp/small2" "$TESTNET_DIR/www/small.txt" || fail "small file differs (second time)"
[ "$(grep -c "rendezvous circuit [0-9a-f]* joined" "$OR_LOG")" = "$joins" ] || fail "a new rendezvous for the same service and isolation key"
[ "$joins" -le 2 ] || fail "$joins rendezvous joins for one service and key (want the circuit kept)"
# A different isolation key (SOCKS username) gets its own rendezvous.
curl -sS --fail --max-time 60 --proxy-user other:x "${socks[@]}" -o "$tmp/small4" "$onion/small.txt" || fail "onion, other key"
[ "$(grep -c "rendezvous circuit [0-9a-f]* joined" "$OR_LOG")" = $((joins + 1)) ] || fail "no own rendezvous for another isolation key"
# Descriptor-fetch circuits close after their fetch.
grep -q "closed: descriptor fetch done" "$OR_LOG" || fail "HSDir circuits are not closed after the fetch"
curl -sS --fail --max-time 60 "${socks[@]}" -o "$tmp/small3" \
	"http://$TESTNET_HTTP_HOST:$TESTNET_HTTP_PORT/small.txt" || fail "exit fetch after onion tests"
echo "ok: onion and exit fetches still work"

# 7. Client authorization. The runner waited for the first service only:
# the second one may publish a little later (0xf0 until then).
if [ -n "${TESTNET_ONION_AUTH:-}" ]; then
	auth_host="$TESTNET_ONION_AUTH"
	code=""
	for ((i = 1; i <= 20; i++)); do
		out=$(timeout 100 "$sc" request "$OR_SOCKS_PORT" connect "$auth_host" "$TESTNET_ONION_PORT") || true
		code=$(echo "$out" | awk '{print $2}')
		[ "$code" = 0xf0 ] || break
		sleep 3
	done
	[ "$code" = 0xf4 ] || fail "client-auth service without a key: $out (want 0xf4)"
	echo "ok: no key -> 0xf4"
	# auth_hup N: SIGHUP, then wait (bounded) for the re-read that found N keys.
	auth_hup() {
		onionring_hup "ClientOnionAuthDir: $1 client authorization key(s) loaded" ||
			fail "no ClientOnionAuthDir re-read with $1 key(s) within 10 s of SIGHUP"
	}
	grep -q "ClientOnionAuthDir: 0 client authorization key(s) loaded from $authdir" "$OR_LOG" ||
		fail "ClientOnionAuthDir not read at start"
	echo "${auth_host%.onion}:descriptor:x25519:$TESTNET_ONION_AUTH_WRONG_KEY" > "$authdir/svc.auth_private"
	auth_hup 1
	out=$(timeout 100 "$sc" request "$OR_SOCKS_PORT" connect "$auth_host" "$TESTNET_ONION_PORT") || true
	echo "$out" | grep -q "^reply 0xf5" || fail "client-auth service with a wrong key: $out (want 0xf5)"
	echo "ok: wrong key + SIGHUP -> 0xf5"
	echo "garbage" > "$authdir/junk.auth_private" # logged and skipped
	echo "${auth_host%.onion}:descriptor:x25519:$TESTNET_ONION_AUTH_KEY" > "$authdir/svc.auth_private"
	# Not re-read yet: the workers still use the snapshot with the wrong key.
	out=$(timeout 100 "$sc" request "$OR_SOCKS_PORT" connect "$auth_host" "$TESTNET_ONION_PORT") || true
	echo "$out" | grep -q "^reply 0xf5" || fail "right key written, no SIGHUP yet: $out (want 0xf5: the old snapshot)"
	auth_hup 1
	curl -sS --fail --max-time 90 "${socks[@]}" -o "$tmp/auth_small" \
		"http://$auth_host:$TESTNET_ONION_PORT/small.txt" || fail "client-auth service with the right key"
	cmp "$tmp/auth_small" "$TESTNET_DIR/www/small.txt" || fail "client-auth small file differs"
	grep -q "ClientOnionAuthDir: $authdir/junk.auth_private is not a client authorization key" "$OR_LOG" ||
		fail "bad auth file not reported by name"
	echo "ok: right key + SIGHUP (no restart) -> small file byte-exact; the bad file beside it named and skipped"

	# 8. Introduction points that refuse (rend-spec-v3 3.2.2): take the
	# client-auth service off its tor (SETCONF on the service's control
	# port), so its published introduction points no longer know it and
	# answer INTRODUCE_ACK "unknown service". A new isolation key (new
	# connection, cached descriptor) must try each of them and end with
	# 0xF2; the service is put back afterwards.
	if hs_services first; then
		sleep 3
		t0=$(date +%s)
		out=$(timeout 110 "$sc" request "$OR_SOCKS_PORT" connect "$auth_host" "$TESTNET_ONION_PORT" nak) || true
		t1=$(date +%s)
		hs_services both || fail "cannot put the client-auth service back"
		# Introduction points still holding the old service's circuit
		# may acknowledge and the service then never comes (the 20 s
		# rendezvous wait, a new rendezvous and the next point): 0xf3
		# when every rendezvous try ends so, 0xf2 once the points refuse.
		code=$(echo "$out" | awk '{print $2}')
		case "$code" in
		0xf2) grep -q "introduction point [0-9]* refused" "$OR_LOG" || fail "0xf2 without a refusal logged" ;;
		0xf3) grep -q "no RENDEZVOUS2 within" "$OR_LOG" || fail "0xf3 without a rendezvous wait logged" ;;
		*) fail "service gone: $out (want 0xf2 or 0xf3)" ;;
		esac
		[ $((t1 - t0)) -le 95 ] || fail "service gone: $code after $((t1 - t0)) s"
		echo "ok: service gone from its introduction points -> $code in $((t1 - t0)) s"
	else
		fail "cannot reconfigure the onion-service tor"
	fi
else
	echo "note: this network has no client-auth service (old testnet); client auth not tested"
fi
