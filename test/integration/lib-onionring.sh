# lib-onionring.sh: start and stop an onionring gateway for one integration
# test. Source it after `set -euo pipefail`. Needs the TESTNET_* variables
# and ONIONRING_BUILD (test/integration/run exports them).
#
#   onionring_start [extra config lines...]   sets OR_PID OR_DIR OR_LOG
#                                             OR_SOCKS_PORT OR_METRICS_PORT
#   onionring_wait_bootstrap SECONDS          until "Bootstrapped 100%"
#   onionring_wait_usable SECONDS             until a fetch through it works
#   onionring_stop                            SIGTERM by PID, bounded wait
#   onionring_trap [COMMAND]                  the EXIT trap: COMMAND (the
#                                             test's own clean-up), then
#                                             onionring_stop, then the
#                                             directories (below)
#
# Every wait is bounded; the gateway is killed by its PID only. Each
# onionring_start makes a /tmp/onionring-gw.XXXXXX directory (config, logs,
# DataDirectory). On exit they are removed when the test passed (status 0
# or 77) and kept, with their paths printed, when it failed. A test with a
# clean-up of its own installs it with `onionring_trap cleanup`, not with
# `trap ... EXIT` (which would replace this one).

OR_BIN="${ONIONRING_BUILD:-build}/app/onionring"
OR_PID=""
OR_DIRS=()
_OR_TRAP_CMD=""
_OR_FAILED=""
_OR_IN_EXIT=""

onionring_trap() {
	_OR_TRAP_CMD="$*"
	trap '_onionring_exit $?' EXIT
}

_onionring_exit() {
	local rc=$1 d
	trap - EXIT
	_OR_IN_EXIT=1
	if [ -n "$_OR_TRAP_CMD" ]; then
		eval "$_OR_TRAP_CMD" || true
	fi
	onionring_stop || rc=1
	[ -n "$_OR_FAILED" ] && [ "$rc" = 0 ] && rc=1
	if [ "$rc" = 0 ] || [ "$rc" = 77 ]; then
		for d in "${OR_DIRS[@]}"; do
			case "$d" in /tmp/onionring-gw.*) rm -rf "$d" ;; esac
		done
	else
		for d in "${OR_DIRS[@]}"; do
			echo "onionring directory kept for inspection: $d" >&2
		done
	fi
	exit "$rc"
}

onionring_start() {
	local base
	[ -x "$OR_BIN" ] || { echo "skipped: $OR_BIN is not built"; exit 77; }
	OR_DIR=$(mktemp -d /tmp/onionring-gw.XXXXXX)
	OR_DIRS+=("$OR_DIR")
	OR_LOG="$OR_DIR/onionring.log"
	base=$("$(dirname "${BASH_SOURCE[0]}")/../testnet/testnet" find-base-port)
	OR_SOCKS_PORT=$((base + 1))
	OR_METRICS_PORT=$((base + 2))
	{
		cat "$TESTNET_CLIENT_TORRC"
		echo "DataDirectory $OR_DIR/data"
		echo "SocksPort 127.0.0.1:$OR_SOCKS_PORT"
		echo "MetricsPort 127.0.0.1:$OR_METRICS_PORT"
		echo "NumWorkers 2"
		echo "EnforceDistinctSubnets 0"
		echo "TestingTorNetwork 1"
		echo "Log ${OR_LOG_LEVEL:-info} file $OR_LOG"
		for line in "$@"; do echo "$line"; done
	} > "$OR_DIR/onionring.conf"
	# OR_WRAP: an optional command prefix (perf/ab_gateways: taskset).
	${OR_WRAP[@]+"${OR_WRAP[@]}"} "$OR_BIN" -f "$OR_DIR/onionring.conf" >"$OR_DIR/stderr.log" 2>&1 &
	OR_PID=$!
	trap '_onionring_exit $?' EXIT
}

onionring_wait_bootstrap() {
	local limit=$1 i
	for ((i = 0; i < limit; i++)); do
		if grep -q "Bootstrapped 100%" "$OR_LOG" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$OR_PID" 2>/dev/null; then
			echo "onionring exited during bootstrap:" >&2
			tail -30 "$OR_DIR/stderr.log" "$OR_LOG" >&2 || true
			return 1
		fi
		sleep 1
	done
	echo "onionring did not bootstrap within ${limit}s; log tail:" >&2
	tail -40 "$OR_LOG" >&2 || true
	return 1
}

# onionring_wait_usable SECONDS: until a small fetch through onionring
# works (a young network may list an exit before that exit serves streams).
onionring_wait_usable() {
	local limit=$1 i
	for ((i = 0; i < limit; i += 2)); do
		if curl -sS --fail --max-time 10 --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" -o /dev/null \
			"http://$TESTNET_HTTP_HOST:$TESTNET_HTTP_PORT/small.txt" 2>/dev/null; then
			return 0
		fi
		sleep 2
	done
	echo "no fetch through onionring worked within ${limit}s" >&2
	return 1
}

onionring_stop() {
	local i
	[ -n "$OR_PID" ] || return 0
	if kill -0 "$OR_PID" 2>/dev/null; then
		# SIGTERM drains open streams (up to 30 s); a second one stops at once.
		kill -TERM "$OR_PID" 2>/dev/null || true
		for ((i = 0; i < 30; i++)); do
			kill -0 "$OR_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -TERM "$OR_PID" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$OR_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$OR_PID" 2>/dev/null && kill -KILL "$OR_PID" 2>/dev/null || true
	fi
	wait "$OR_PID" 2>/dev/null || true
	OR_PID=""
	# Under ASan/UBSan (scripts/test runs a subset so), any report fails the test.
	if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ThreadSanitizer" "$OR_DIR/stderr.log" 2>/dev/null; then
		echo "FAIL: sanitizer report from onionring:" >&2
		grep -E -A20 "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ThreadSanitizer" "$OR_DIR/stderr.log" | head -60 >&2
		_OR_FAILED=1
		[ -n "$_OR_IN_EXIT" ] && return 1 # _onionring_exit keeps the directories
		exit 1
	fi
}
