#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs the build and test dependencies (Debian 12), builds tkms in build/ and runs the
# whole test suite. Arguments are passed to `meson test` (e.g. a test name or --suite NAME).
# The last line of output is always "N passed, N failed"; any result other than OK (a skipped
# test too) counts as failed. Exit status 0 only if at least one test ran and none failed.
#
#   ./run_tests.sh                      every suite but torture-long (unit, integration, authz,
#                                       fuzz, torture's short forms, abrmd)
#   ./run_tests.sh --suite torture-long the torture suite's long forms (issue 9's figures) and
#                                       10 minutes of libFuzzer per fuzz target; also installs
#                                       clang and libFuzzer (about an hour on 2 cores)
#   ./run_tests.sh --sanitize [ARGS]    builds in build-sanitize with AddressSanitizer and
#                                       UndefinedBehaviorSanitizer and runs the suites there:
#                                       any sanitizer report is fatal; tkmsd's leaks too
#                                       (tests/lsan.supp lists the third-party ones ignored)
#   ./run_tests.sh --valgrind [ARGS]    the integration suite (default) with tkmsd under
#                                       valgrind memcheck: an error or a definite leak fails
#                                       the test (tests/valgrind.supp)
#
# The build uses -Dwerror=true here (meson.build leaves werror off for other builders).
# Environment: TKMS_BUILD_DIR (default: build, or build-sanitize with --sanitize),
# TKMS_SKIP_APT=1 to never run apt-get.
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")"

SANITIZE=0
VALGRIND=0
LONG=0
MESON_ARGS=()
for arg in "$@"; do
	case $arg in
	--sanitize) SANITIZE=1 ;;
	--valgrind) VALGRIND=1 ;;
	*) MESON_ARGS+=("$arg") ;;
	esac
done
# the long form: --suite torture-long (or --suite=torture-long)
prev=
for arg in "${MESON_ARGS[@]}"; do
	if [ "$arg" = --suite=torture-long ] || { [ "$prev" = --suite ] && [ "$arg" = torture-long ]; }; then
		LONG=1
	fi
	prev=$arg
done

if [ "$SANITIZE" = 1 ]; then
	BUILD_DIR=${TKMS_BUILD_DIR:-build-sanitize}
else
	BUILD_DIR=${TKMS_BUILD_DIR:-build}
fi
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
	tpm2-abrmd libtss2-tcti-tabrmd0
	postgresql postgresql-client
	gnome-keyring libsecret-1-dev
)
# Only for the runs that need them.
[ "$LONG" = 1 ] && PACKAGES+=(clang libclang-rt-14-dev)
[ "$VALGRIND" = 1 ] && PACKAGES+=(valgrind)

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

SETUP_OPTIONS=(-Dwerror=true)
if [ "$SANITIZE" = 1 ]; then
	# b_lundef=false: the shared libtkms is linked without the sanitizer runtimes, which the
	# programs that load it bring (meson adds -fno-omit-frame-pointer: ASan's fast unwinder
	# sees our frames)
	SETUP_OPTIONS+=(-Db_sanitize=address,undefined -Db_lundef=false)
fi

configure() {
	if [ -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
		echo "==> Reconfiguring $BUILD_DIR"
		meson setup --reconfigure "${SETUP_OPTIONS[@]}" "$BUILD_DIR" || {
			echo "==> Reconfigure failed, wiping $BUILD_DIR"
			meson setup --wipe "${SETUP_OPTIONS[@]}" "$BUILD_DIR"
		}
	else
		echo "==> Configuring $BUILD_DIR"
		rm -rf "$BUILD_DIR"
		meson setup "${SETUP_OPTIONS[@]}" "$BUILD_DIR"
	fi
}

# The sanitizer run: every report fatal. Leak detection is for tkmsd (the fixture gives it
# TKMS_TEST_DAEMON_ASAN_OPTIONS and checks its exit status at its last stop too); the test
# programs and helpers are checked for memory errors and undefined behaviour only.
sanitizer_env() {
	local common="halt_on_error=1:abort_on_error=1:print_stacktrace=1:strict_string_checks=1"
	common+=":detect_stack_use_after_return=1:check_initialization_order=1"
	export ASAN_OPTIONS="$common:detect_leaks=0"
	# a quarantine of 32 MiB, not 256: the tests hold tkmsd to memory bounds (RSS); to see a
	# leak's whole stack through libraries without frame pointers, rerun its test with
	# fast_unwind_on_malloc=0 added here (several times slower). The tests that measure a
	# process's peak RSS or its growth give it less (test-audit-segments, test-audit's
	# tkmsctl, test-authz-stress's tkmsd: each says why).
	export TKMS_TEST_DAEMON_ASAN_OPTIONS="$common:detect_leaks=1:quarantine_size_mb=32"
	export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
	export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
	export TKMS_TEST_DAEMON_EXIT_CHECK=1
	# test-audit's 'tkmsctl audit verify' of 635,000 records: 25 s plain, over 90 s under ASan
	export TKMS_TEST_TIMEOUT_FACTOR=5
	export TKMS_TEST_RSS_FACTOR=4
	# GLib's slice allocator hides blocks from the leak checker
	export G_SLICE=always-malloc
	# test-keys-many (40,001 keys through ListKeys, ListKeysPage, libtkms and tkmsctl) took
	# more than 3 x 180 s under ASan on 2 loaded cores
	TIMEOUT_MULTIPLIER=5
	# test-crash: the plain run holds its durability figure (1,000 operations, tkmsd killed
	# in the middle of them); here its code paths are checked for memory errors, and each
	# restart under ASan costs seconds: 300 operations, the kill/restart paths all taken
	export TKMS_CRASH_OPS=300
}

# Tests that cannot run under valgrind and skip there (tkms_test_skip_under_valgrind(), which
# says why): left out of the default --valgrind run, where a skip would count as a failure.
#   test-tpm-fairness  bounds another user's Sign latency at 250 ms
VALGRIND_SKIPPED=(test-tpm-fairness)
# Started first in the default --valgrind run, longest first (under memcheck, one at a time on
# 2 loaded cores: test-keys-many about 13 min, test-crash 8, test-password-pg,
# test-password and test-tkmsctl about 4 min, test-persistence 3.5): two at a time, the run
# then ends with the short tests instead of waiting for a long one started last.
VALGRIND_FIRST=(test-keys-many test-crash test-password-pg test-password test-tkmsctl
	test-persistence test-password-rotation)

valgrind_env() {
	export TKMS_TEST_VALGRIND=1
	export TKMS_TEST_DAEMON_EXIT_CHECK=1
	export TKMS_TEST_TIMEOUT_FACTOR=10
	# memcheck's own heap, shadow memory and translations count in tkmsd's RSS
	export TKMS_TEST_RSS_FACTOR=4
	export G_SLICE=always-malloc
	TIMEOUT_MULTIPLIER=10
	# by default the integration suite (the tests that talk to tkmsd through the fixture),
	# VALGRIND_FIRST first: meson runs named tests in the order given
	if [ "${#MESON_ARGS[@]}" -eq 0 ]; then
		local name
		local -A left=()
		local -a suite=()
		while read -r name; do
			[[ $name == *" / "* ]] || continue
			suite+=("${name##* / }")
			left[${name##* / }]=1
		done < <(meson test -C "$BUILD_DIR" --no-rebuild --list --suite integration)
		for name in "${VALGRIND_SKIPPED[@]}"; do
			unset "left[$name]"
		done
		for name in "${VALGRIND_FIRST[@]}" "${suite[@]}"; do
			[ -n "${left[$name]:-}" ] || continue
			MESON_ARGS+=("$name")
			unset "left[$name]"
		done
	fi
	return 0
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

TIMEOUT_MULTIPLIER=1
[ "$SANITIZE" = 1 ] && sanitizer_env
[ "$VALGRIND" = 1 ] && valgrind_env
# the long form runs one test at a time: its figures are timings too
NUM_PROCESSES=2
[ "$LONG" = 1 ] && NUM_PROCESSES=1

TESTLOG="$BUILD_DIR/meson-logs/testlog.json"
rm -f "$TESTLOG"
echo "==> Testing"
set +e
meson test -C "$BUILD_DIR" --print-errorlogs --num-processes "$NUM_PROCESSES" \
	--timeout-multiplier "$TIMEOUT_MULTIPLIER" "${MESON_ARGS[@]}"
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
