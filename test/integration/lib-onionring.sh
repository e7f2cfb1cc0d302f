# shellcheck shell=bash
# lib-onionring.sh: start and stop an onionring gateway for one integration
# test, and the opening, clean-up and waits such tests share. Source it
# after `set -euo pipefail`. Needs the TESTNET_* variables and
# ONIONRING_BUILD (test/integration/run exports them).
#
#   onionring_setup [TEMPLATE]                the opening: sets py verify web
#                                             tmp (mktemp -d TEMPLATE, removed
#                                             on exit), installs the EXIT trap
#   onionring_need_stem                       exit 77 without python3-stem
#   onionring_need_cmd CMD WHAT               exit 77 without CMD (WHAT: why)
#   fail MESSAGE...                           "FAIL: ..." + log tail, exit 1
#                                             (a test may define its own)
#   onionring_start [extra config lines...]   sets OR_PID OR_DIR OR_LOG
#                                             OR_SOCKS_PORT OR_METRICS_PORT
#   onionring_wait_bootstrap SECONDS          until "Bootstrapped 100%"
#   onionring_wait_usable SECONDS             until a fetch through it works
#   onionring_control_port SECONDS            prints the "ControlPort auto" port
#   onionring_metric NAME                     a metric summed over its samples
#   onionring_fetch_bytes SIZE [TRIES]        a byte-exact /bytes/SIZE via
#                                             the SocksPort; prints the try
#   onionring_log_offset [FILE]               the size of OR_LOG (or FILE)
#   onionring_log_since OFFSET [FILE]         OR_LOG (or FILE) after OFFSET
#   onionring_hup [PATTERN [FILE]]            SIGHUP, then until PATTERN (the
#                                             re-read notice) is logged
#   onionring_wait_file FILE PID SECONDS      until a helper PID writes FILE
#   onionring_stop                            SIGTERM by PID, bounded wait
#   onionring_trap [COMMAND]                  the EXIT trap: COMMAND (the
#                                             test's own clean-up), then
#                                             onionring_stop, then the
#                                             directories (below)
#
# Every wait is bounded; the gateway is killed by its PID only. Each
# onionring_start makes a /tmp/onionring-gw.XXXXXX directory (config, logs,
# DataDirectory). On exit they are removed when the test passed (status 0
# or 77) and kept, with their paths printed, when it failed; the test's
# `tmp` from onionring_setup is removed either way. A test with a
# clean-up of its own installs it with `onionring_trap cleanup`, not with
# `trap ... EXIT` (which would replace this one); its clean-up need not
# stop onionring nor remove `tmp`.

: "${TESTNET_DIR:?run this through test/integration/run}"
_OR_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OR_BIN="${ONIONRING_BUILD:-build}/app/onionring"
OR_PID=""
OR_DIRS=()
_OR_TRAP_CMD=""
_OR_FAILED=""
_OR_IN_EXIT=""
_OR_TMP=""

# onionring_setup [TEMPLATE]: the opening of a test: py (Debian's python3,
# which has stem), verify (test/testnet/verify-bytes), web (the network's
# httpd) and tmp, a fresh directory (mktemp -d TEMPLATE, or mktemp's
# default) that the EXIT trap removes whatever the outcome.
onionring_setup() {
	# shellcheck disable=SC2034 # py, verify and web are for the test
	py=/usr/bin/python3
	verify="$_OR_LIB_DIR/../testnet/verify-bytes"
	web="http://$TESTNET_HTTP_HOST:$TESTNET_HTTP_PORT"
	if [ $# -gt 0 ]; then tmp=$(mktemp -d "$1"); else tmp=$(mktemp -d); fi
	_OR_TMP=$tmp
	trap '_onionring_exit $?' EXIT
}

onionring_need_stem() {
	/usr/bin/python3 -c 'import stem' 2>/dev/null ||
		{ echo "skipped: python3-stem is not installed"; exit 77; }
}

# onionring_need_cmd CMD WHAT: skip (77) when CMD is not on PATH; WHAT says
# what it is, e.g. "tor-resolve (Debian's tor package)".
onionring_need_cmd() {
	command -v "$1" >/dev/null || { echo "skipped: $2 is missing"; exit 77; }
}

# fail MESSAGE...: the default verdict; the log's tail helps the reader.
# The log's tail first and the reason last: the runner shows a failed
# test's last lines.
fail() {
	[ -z "${OR_LOG:-}" ] || { echo "the tail of $OR_LOG:"; tail -40 "$OR_LOG"; } >&2 2>/dev/null || true
	echo "FAIL: $*" >&2
	exit 1
}

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
	case "$_OR_TMP" in /tmp/*) rm -rf "$_OR_TMP" ;; esac
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
	base=$("$_OR_LIB_DIR/../testnet/testnet" find-base-port)
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
	local limit=$1 start=$SECONDS err=""
	while ((SECONDS - start < limit)); do
		if err=$(curl -sS --fail --max-time 10 --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" -o /dev/null \
			"http://$TESTNET_HTTP_HOST:$TESTNET_HTTP_PORT/small.txt" 2>&1); then
			return 0
		fi
		sleep 2
	done
	echo "no fetch through onionring worked within ${limit}s; the last curl said: ${err:-nothing}" >&2
	return 1
}

# onionring_control_port SECONDS: print the port of "ControlPort auto"
# once onionring logs it (bounded); return 1 (and say why) if it does not.
# Polled every 10 ms: a test may need to subscribe before bootstrap.
onionring_control_port() {
	local limit=$1 i port
	for ((i = 0; i < limit * 100; i++)); do
		port=$( (sed -n 's/.*ControlPort listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$OR_LOG" 2>/dev/null || true) | head -n 1)
		if [ -n "$port" ]; then
			echo "$port"
			return 0
		fi
		if ! kill -0 "$OR_PID" 2>/dev/null; then
			echo "onionring exited: $(tail -5 "$OR_DIR/stderr.log")" >&2
			return 1
		fi
		sleep 0.01
	done
	echo "no 'ControlPort listening' line within ${limit}s" >&2
	return 1
}

# onionring_metric NAME: the sum of NAME over its samples (any labels) in
# /metrics, as an integer (0 when absent).
onionring_metric() {
	curl -sS --max-time 10 "http://127.0.0.1:$OR_METRICS_PORT/metrics" |
		awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d\n", s }'
}

# onionring_fetch_bytes SIZE [TRIES]: fetch /bytes/SIZE through onionring's
# SocksPort into $tmp/f and check every byte, at most TRIES (3) times, 2 s
# apart. Print the number of the try that worked; curl's errors go to
# $tmp/fetch.err, whose tail is shown when no try worked (return 1).
onionring_fetch_bytes() {
	local size=$1 tries=${2:-3} i
	for ((i = 1; i <= tries; i++)); do
		if curl -sS --fail --max-time 60 --socks5-hostname "127.0.0.1:$OR_SOCKS_PORT" \
			-o "$tmp/f" "$web/bytes/$size" 2>> "$tmp/fetch.err" &&
			"$verify" "$tmp/f" --size "$size" >/dev/null; then
			echo "$i"
			return 0
		fi
		sleep 2
	done
	tail -5 "$tmp/fetch.err" >&2 2>/dev/null
	return 1
}

onionring_log_offset() {
	stat -c %s "${1:-$OR_LOG}" 2>/dev/null || echo 0
}

onionring_log_since() {
	tail -c +$(($1 + 1)) "${2:-$OR_LOG}" 2>/dev/null || true
}

# onionring_hup [PATTERN [FILE]]: SIGHUP onionring, then wait up to 10 s
# for PATTERN (default: the re-read notice) in what OR_LOG (or FILE, a
# new Log file) gained since. Return 1 if it did not come.
onionring_hup() {
	local pattern=${1:-"SIGHUP: configuration re-read"} file=${2:-$OR_LOG} off i
	off=$(onionring_log_offset "$file")
	kill -HUP "$OR_PID"
	for ((i = 0; i < 100; i++)); do
		onionring_log_since "$off" "$file" | grep -q "$pattern" && return 0
		sleep 0.1
	done
	return 1
}

# onionring_wait_file FILE PID SECONDS: until FILE is not empty (a helper
# PID started in the background says it is ready). Return 1, saying why,
# if PID exits first or SECONDS pass.
onionring_wait_file() {
	local file=$1 pid=$2 limit=$3 i
	for ((i = 0; i < limit * 4; i++)); do
		[ -s "$file" ] && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			[ -s "$file" ] && return 0
			echo "the helper (PID $pid) exited before writing $file" >&2
			return 1
		fi
		sleep 0.25
	done
	echo "$file not written within ${limit}s" >&2
	return 1
}

onionring_stop() {
	local i st
	[ -n "$OR_PID" ] || return 0
	if ! kill -0 "$OR_PID" 2>/dev/null; then
		# Gone before the test stopped it: say how (a failing test's
		# output is what CI keeps; the directory is not).
		st=0
		wait "$OR_PID" 2>/dev/null || st=$?
		echo "onionring (PID $OR_PID) had exited before the test stopped it, status $st; its stderr (tail):" >&2
		tail -15 "$OR_DIR/stderr.log" >&2 2>/dev/null || true
	else
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
