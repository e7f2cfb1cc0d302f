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
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" \
		>/dev/null || die "apt-get install ${missing[*]} failed"
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
