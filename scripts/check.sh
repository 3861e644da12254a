#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install the dependencies, build, and run every test: the normal build,
# then the same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
# Exits non-zero if anything fails; the meson logs stay in build*/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CPRS_SKIP_DEPS:-0}" != 1 ]; then
    ./scripts/install-deps.sh
fi

status=0

run_suite() {
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@"
    fi
    ninja -C "$dir"
    meson test -C "$dir" --print-errorlogs --num-processes 2 || status=1
}

run_suite build
run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false

# Fuzzing (fuzz/README.md): the libFuzzer targets built with clang and
# ASan+UBSan in build-fuzz, their corpora replayed as meson tests, then
# every target fuzzed for a fixed time (9 minutes in all).  A crash fails
# the run and prints its reproducer.
if [ "${CPRS_SKIP_FUZZ:-0}" != 1 ]; then
    ./fuzz/ci.sh || status=1
fi

exit $status
