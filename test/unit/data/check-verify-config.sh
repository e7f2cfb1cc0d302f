#!/bin/sh
# onionring --verify-config: exit 0 and tor's "Configuration was valid" for a
# good file; exit 1 with "FILE:LINE: message" on stderr for a bad one.
# Usage: check-verify-config.sh ONIONRING DATA_DIR
set -u
bin=$1
data=$2
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$out" >&2; exit 1; }

"$bin" --verify-config -f "$data/good.conf" >"$out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "good.conf: exit $rc, expected 0"
grep -qx 'Configuration was valid' "$out" || fail "good.conf: no 'Configuration was valid'"

"$bin" --verify-config -f "$data/bad.conf" >"$out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "bad.conf: exit $rc, expected 1"
grep -qF "$data/bad.conf:4: unknown configuration key \"SocksPolicy\"" "$out" \
	|| fail "bad.conf: message without FILE:LINE"

"$bin" -f "$data/bad.conf" >"$out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "bad.conf at startup: exit $rc, expected 1"
grep -qF "$data/bad.conf:4:" "$out" || fail "bad.conf at startup: message without FILE:LINE"

"$bin" --verify-config -f "$data/does-not-exist.conf" >"$out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "missing file: exit $rc, expected 1"
grep -qF "$data/does-not-exist.conf: cannot read: No such file or directory" "$out" \
	|| fail "missing file: wrong message"

"$bin" --help >"$out" 2>&1 || fail "--help: non-zero exit"
grep -q '^Usage: onionring' "$out" || fail "--help: no usage"
"$bin" --version >"$out" 2>&1 || fail "--version: non-zero exit"
grep -q '^onionring [0-9]' "$out" || fail "--version: no version"
"$bin" --no-such-option >"$out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "unknown option: exit $rc, expected 2"
echo "ok"
