# Shared by scripts/test and scripts/demo: install what is missing, build.
# Source it; it defines functions only.

ONIONRING_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install the Debian packages of scripts/packages.txt that are missing.
ensure_packages() {
	local missing=() pkg
	while read -r pkg; do
		case "$pkg" in ''|'#'*) continue ;; esac
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
			|| missing+=("$pkg")
	done < "$ONIONRING_ROOT/scripts/packages.txt"
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing: ${missing[*]}"
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -q >/dev/null || die "apt-get update failed"
	# Debian's prometheus package (we need only its promtool, for
	# test/integration/test_metrics.sh) ships an init script that its
	# postinst starts: a Prometheus server on *:9090. A policy-rc.d that
	# exits 101 ("action forbidden", see init-system-helpers'
	# README.policy-rc.d) makes invoke-rc.d and deb-systemd-invoke skip
	# every service start during the install. Containers often have one
	# already; we add ours only if none exists, and remove only ours.
	local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# scripts/lib.sh (onionring): no service starts during this install\nexit 101\n' \
			| $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && own_policy=1
	fi
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" \
		>/dev/null || rc=$?
	[ "$own_policy" = 1 ] && $sudo rm -f "$policy"
	[ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed"
	# The postinst also enables prometheus.service for the next boot on a
	# systemd host: undo that (nothing was started, nothing is stopped).
	if printf '%s\n' "${missing[@]}" | grep -qx prometheus && [ -d /run/systemd/system ]; then
		$sudo systemctl disable prometheus.service >/dev/null 2>&1 || true
	fi
}

# Configure (once) and build the meson build dir $1 with the remaining
# arguments as meson options. CC may be set by the caller.
build_dir() {
	local dir=$1
	shift
	if [ ! -f "$ONIONRING_ROOT/$dir/build.ninja" ]; then
		say "configuring $dir ($*)"
		meson setup "$ONIONRING_ROOT/$dir" "$ONIONRING_ROOT" "$@" >"$ONIONRING_ROOT/$dir.setup.log" 2>&1 \
			|| { tail -30 "$ONIONRING_ROOT/$dir.setup.log"; die "meson setup $dir failed"; }
	fi
	say "building $dir"
	ninja -C "$ONIONRING_ROOT/$dir" >"$ONIONRING_ROOT/$dir.build.log" 2>&1 \
		|| { grep -E 'error|FAILED' -A3 "$ONIONRING_ROOT/$dir.build.log" | head -60; die "build of $dir failed"; }
}
