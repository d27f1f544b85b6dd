#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs the build and test dependencies (Debian 12), builds tkms in build/ and runs the
# whole test suite. Arguments are passed to `meson test` (e.g. a test name or --suite NAME).
# The last line of output is always "N passed, N failed"; any result other than OK (a skipped
# test too) counts as failed. Exit status 0 only if at least one test ran and none failed.
#
# The build uses -Dwerror=true here (meson.build leaves werror off for other builders).
# Environment: TKMS_BUILD_DIR (default: build), TKMS_SKIP_APT=1 to never run apt-get.
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")"

BUILD_DIR=${TKMS_BUILD_DIR:-build}
SUMMARY_PRINTED=0

summary() {
	# $1 passed, $2 failed; printed exactly once, as the last line.
	if [ "$SUMMARY_PRINTED" = 0 ]; then
		SUMMARY_PRINTED=1
		echo "$1 passed, $2 failed"
	fi
}

# Whatever goes wrong before the tests run (apt, configure, build), still end with the line.
on_exit() {
	local rc=$?
	if [ "$SUMMARY_PRINTED" = 0 ]; then
		echo "run_tests.sh: failed before any test ran (exit status $rc)" >&2
		summary 0 0
	fi
	exit "$rc"
}
trap on_exit EXIT

PACKAGES=(
	meson ninja-build pkg-config gcc libc6-dev
	libglib2.0-dev libglib2.0-bin libjson-glib-dev libtss2-dev libpolkit-gobject-1-dev
	libssl-dev libdbus-1-dev libsqlite3-dev
	swtpm swtpm-tools tpm2-tools
	python3-dbusmock python3-gi
	gettext dbus-daemon polkitd openssl util-linux libxml2-utils groff-base jq time
	systemd
	gobject-introspection libgirepository1.0-dev
	postgresql postgresql-client
	gnome-keyring libsecret-1-dev
)

missing_packages() {
	local p status
	for p in "${PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$status" = installed ] || echo "$p"
	done
}

install_packages() {
	local -a missing
	mapfile -t missing < <(missing_packages)
	[ "${#missing[@]}" -eq 0 ] && return 0
	if [ "${TKMS_SKIP_APT:-0}" = 1 ]; then
		echo "run_tests.sh: missing packages (TKMS_SKIP_APT=1): ${missing[*]}" >&2
		return 1
	fi
	local -a sudo=()
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || {
			echo "run_tests.sh: need root (or sudo) to install: ${missing[*]}" >&2
			return 1
		}
		sudo=(sudo)
	fi
	echo "==> Installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -q
	"${sudo[@]}" apt-get install -q -y --no-install-recommends "${missing[@]}"
}

configure() {
	if [ -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
		echo "==> Reconfiguring $BUILD_DIR"
		meson setup --reconfigure -Dwerror=true "$BUILD_DIR" || {
			echo "==> Reconfigure failed, wiping $BUILD_DIR"
			meson setup --wipe -Dwerror=true "$BUILD_DIR"
		}
	else
		echo "==> Configuring $BUILD_DIR"
		rm -rf "$BUILD_DIR"
		meson setup -Dwerror=true "$BUILD_DIR"
	fi
}

# The tests' private PostgreSQL clusters run as the user postgres (initdb refuses root), which
# the package postgresql-common makes; without it they would be skipped, and a skip fails.
ensure_postgres_user() {
	getent passwd postgres >/dev/null && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "run_tests.sh: the user postgres is missing and only root can create it" >&2
		return 1
	fi
	echo "==> Creating the system user postgres"
	useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
		--shell /usr/sbin/nologin postgres
}

install_packages
ensure_postgres_user
configure
echo "==> Building"
ninja -C "$BUILD_DIR" -j2

TESTLOG="$BUILD_DIR/meson-logs/testlog.json"
rm -f "$TESTLOG"
echo "==> Testing"
set +e
meson test -C "$BUILD_DIR" --print-errorlogs --num-processes 2 "$@"
test_rc=$?
set -e

counts=$(/usr/bin/python3 - "$TESTLOG" <<'EOF'
import json, sys
passed = failed = 0
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if json.loads(line).get("result") == "OK":
                passed += 1
            else:
                failed += 1
except FileNotFoundError:
    pass
print(passed, failed)
EOF
)
read -r passed failed <<<"$counts"

if [ "$failed" -gt 0 ] || [ "$passed" -eq 0 ] || [ "$test_rc" -ne 0 ]; then
	if [ "$failed" -eq 0 ] && [ "$test_rc" -ne 0 ]; then
		echo "run_tests.sh: meson test exited with status $test_rc" >&2
	fi
	[ "$passed" -eq 0 ] && [ "$failed" -eq 0 ] && echo "run_tests.sh: no test ran" >&2
	summary "$passed" "$failed"
	exit 1
fi
summary "$passed" "$failed"
exit 0
