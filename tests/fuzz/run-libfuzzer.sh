#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The long form of a fuzz target (suite torture-long, issue 9): builds the targets with clang
# and libFuzzer (plus AddressSanitizer and UndefinedBehaviorSanitizer, every finding fatal)
# in a build directory of their own, then runs TARGET for SECONDS from its seed corpus. New
# inputs go to a scratch corpus (the seeds in the source tree stay as they are); a crash,
# leak, timeout or sanitizer report fails the test and leaves the input in
# FUZZ_BUILD_DIR/artifacts/TARGET/ (add it to tests/fuzz/corpus/ once fixed: the short form
# then replays it for ever).
#
#   run-libfuzzer.sh SOURCE_ROOT FUZZ_BUILD_DIR TARGET CORPUS_DIR SECONDS
#
# Needs clang and libFuzzer (Debian: clang, libclang-rt-14-dev); without them it is skipped
# (exit 77). ./run_tests.sh --suite torture-long installs them.
set -eu

src=$1
bdir=$2
target=$3
corpus=$4
seconds=$5

if ! command -v clang >/dev/null 2>&1; then
	echo "clang is not installed (./run_tests.sh --suite torture-long installs it)"
	exit 77
fi

mkdir -p "$(dirname "$bdir")"
# The targets share one build directory; the three tests may start at once.
(
	flock 9
	if [ ! -f "$bdir/build.ninja" ]; then
		CC=clang meson setup "$bdir" "$src" -Dfuzzing=true -Dintrospection=disabled
	fi
	ninja -j2 -C "$bdir" "tests/fuzz/$target"
) 9>"$bdir.lock"

work=$(mktemp -d "${TMPDIR:-/tmp}/tkms-fuzz-$target-XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts=$bdir/artifacts/$target
mkdir -p "$artifacts"

echo "==> $target for $seconds s from $corpus"
# libFuzzer exits 77 on a finding by default, which meson reads as a skip: 1 instead.
"$bdir/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
	-artifact_prefix="$artifacts/" "$work" "$corpus"
