#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install the dependencies, build, and run every test: the normal build,
# then the same tests under AddressSanitizer + UndefinedBehaviorSanitizer,
# then the libFuzzer targets (fuzz/ci.sh).  Exits non-zero if anything
# fails; the meson logs stay in build*/.
#
#   scripts/check.sh           everything (README: what it costs)
#   scripts/check.sh --quick   the normal build only, every test but the
#                              fuzz corpora replay; no ASan, no fuzzing
#
# CPRS_SKIP_DEPS=1 skips the package step, CPRS_SKIP_FUZZ=1 the fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=no
case ${1:-} in
--quick) quick=yes ;;
"") ;;
*) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

if [ "${CPRS_SKIP_DEPS:-0}" != 1 ]; then
    ./scripts/install-deps.sh
fi

status=0

run_suite() {
    local dir=$1 start=$SECONDS
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@"
    fi
    ninja -C "$dir"
    meson test -C "$dir" --print-errorlogs --num-processes 2 \
        "${test_args[@]}" || status=1
    echo "check: $dir built and tested in $((SECONDS - start)) s"
}

if [ $quick = yes ]; then
    test_args=(--no-suite fuzz)
    run_suite build
    exit $status
fi

test_args=()
run_suite build
# The fuzz corpora under ASan+UBSan: fuzz/ci.sh replays them in its clang
# build, so the gcc one replays them only when fuzzing is skipped.
if [ "${CPRS_SKIP_FUZZ:-0}" != 1 ]; then
    test_args=(--no-suite fuzz)
fi
run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false

# Fuzzing (fuzz/README.md): the libFuzzer targets built with clang and
# ASan+UBSan in build-fuzz, their corpora replayed as meson tests, then
# every target fuzzed for a fixed time (7 minutes in all).  A crash fails
# the run and prints its reproducer.
if [ "${CPRS_SKIP_FUZZ:-0}" != 1 ]; then
    start=$SECONDS
    ./fuzz/ci.sh || status=1
    echo "check: fuzzing in $((SECONDS - start)) s"
fi

exit $status
