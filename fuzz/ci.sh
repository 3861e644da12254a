#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The fuzzing step of CI (scripts/check.sh), also usable by hand:
#
#   fuzz/ci.sh [TARGET...]
#
# 1. Builds the libFuzzer targets with clang, AddressSanitizer and
#    UndefinedBehaviorSanitizer in build-fuzz (only the fuzz targets: the
#    rest of the tree is built and tested by the gcc builds).
# 2. Replays every corpus and regression file as meson tests (suite fuzz),
#    so that .ci/run counts them in build-fuzz/meson-logs/testlog.json.
# 3. Fuzzes each target for CPRS_FUZZ_SECONDS seconds, by default an
#    equal share of CPRS_FUZZ_BUDGET (420 s: 7 minutes in all) but at most
#    60 s, starting from its committed corpus.  New inputs go to a scratch
#    directory: the tree is never modified.
#
# The verdict does not depend on chance (fuzz/README.md, "Limits"):
#  - libFuzzer runs with a fixed seed (CPRS_FUZZ_SEED, default 1): the
#    same corpus gives the same inputs in the same order, and a slower
#    machine only stops earlier in that sequence;
#  - red: a crash, a sanitizer report, a leak, an input running longer
#    than CPRS_FUZZ_TIMEOUT (30 s), a process over CPRS_FUZZ_RSS_MB
#    (2560 MiB), one allocation over CPRS_FUZZ_MALLOC_MB (1536 MiB), or a
#    target that does not finish;
#  - not red: a slow unit, an input that ran longer than
#    CPRS_FUZZ_SLOW (5 s) but within the timeout; sanitizers make valid
#    inputs slow on a loaded machine.  It is reported (kept, printed in
#    hex with the command that replays it) as a bug to look at.
# A red reproducer is kept in build-fuzz/fuzz-artifacts/ and printed the
# same way.  Exit status: 0 clean, 1 a finding or an error.
set -uo pipefail
cd "$(dirname "$0")/.."

budget=${CPRS_FUZZ_BUDGET:-420}     # seconds of fuzzing in all
dir=${CPRS_FUZZ_BUILD:-build-fuzz}
seed=${CPRS_FUZZ_SEED:-1}           # 0: a new random seed each run
timeout_s=${CPRS_FUZZ_TIMEOUT:-30}  # one input longer than this: red
slow_s=${CPRS_FUZZ_SLOW:-5}         # one input longer than this: reported
rss_mb=${CPRS_FUZZ_RSS_MB:-2560}
malloc_mb=${CPRS_FUZZ_MALLOC_MB:-1536}
# Large enough for the worst-case seeds (fuzz/gen-seeds.c, gen_worst()).
max_len=${CPRS_FUZZ_MAX_LEN:-262144}
status=0

if [ ! -f "$dir/build.ninja" ]; then
    CC=clang meson setup "$dir" -Dfuzzing=true \
        -Db_sanitize=address,undefined -Db_lundef=false || exit 1
fi

# An existing build directory may predate the tree (a new target): bring
# its configuration up to date before asking it for the targets.
ninja -C "$dir" build.ninja >/dev/null || exit 1
# The fuzz targets this configuration builds (fuzz-payload needs zstd).
mapfile -t all < <(meson introspect "$dir" --targets | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["type"] == "executable" and t["name"].startswith("fuzz-"):
        print(t["name"])' | sort)
if [ $# -gt 0 ]; then
    all=("$@")
fi
if [ ${#all[@]} -eq 0 ]; then
    echo "fuzz: no fuzz targets in $dir (configured without -Dfuzzing=true?)"
    exit 1
fi
ninja -C "$dir" "${all[@]/#/fuzz/}" || exit 1
# The budget shared out, at most 60 s each, unless CPRS_FUZZ_SECONDS says.
secs=${CPRS_FUZZ_SECONDS:-$((budget / ${#all[@]}))}
if [ -z "${CPRS_FUZZ_SECONDS:-}" ] && [ "$secs" -gt 60 ]; then
    secs=60
fi

echo "== fuzz: replaying the corpora and regressions (meson suite fuzz)"
# Only the targets built: every test when none was named, else theirs.
names=()
if [ $# -gt 0 ]; then
    mapfile -t names < <(meson test -C "$dir" --no-rebuild --list \
                             2>/dev/null | sed -n 's,^[^ ]*:fuzz.* / ,,p' |
                         grep -E "^($(IFS='|'; echo "$*"))/")
fi
meson test -C "$dir" --no-rebuild --suite fuzz --print-errorlogs \
    --num-processes 2 "${names[@]}" || status=1

scratch=$(mktemp -d "${TMPDIR:-/tmp}/cprs-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
artifacts="$dir/fuzz-artifacts"
rm -rf "$artifacts"
mkdir -p "$artifacts"
summary=()
slow_total=0
# One line per fuzzing run, "TARGET ok|failed", for .ci/run's summary.
results="$dir/fuzz-results.txt"
: > "$results"

# Print a reproducer in hex with the command that replays it.
show_unit() {
    echo "fuzz: $2 $1 ($(stat -c %s "$1") bytes):"
    od -A x -t x1z -v "$1" | head -64
    echo "fuzz: replay with: $dir/fuzz/$3 $1"
}

for t in "${all[@]}"; do
    echo "== fuzz: $t for ${secs}s"
    mkdir -p "$scratch/$t"
    args=(-max_total_time="$secs" -seed="$seed" -max_len="$max_len"
          -timeout="$timeout_s" -report_slow_units="$slow_s"
          -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb"
          -print_final_stats=1 -artifact_prefix="$artifacts/$t-")
    if [ -f "fuzz/$t.dict" ]; then
        args+=(-dict="fuzz/$t.dict")
    fi
    # New inputs go to the scratch corpus, listed first; the committed
    # corpus and the regressions are only read.
    inputs=("$scratch/$t")
    for d in "fuzz/corpus/$t" "tests/data/fuzz-regressions/$t"; do
        if [ -d "$d" ]; then
            inputs+=("$d")
        fi
    done
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        timeout $((secs + 300)) "$dir/fuzz/$t" "${args[@]}" "${inputs[@]}" \
        > "$scratch/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$scratch/$t.log")
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t.log")
    # Slow units are reported, not failed (see the top of this file).
    slow=$(ls "$artifacts/$t-slow-unit-"* 2>/dev/null)
    found=$(ls "$artifacts/$t-"* 2>/dev/null | grep -v -- "-slow-unit-")
    nslow=$(printf '%s' "$slow" | grep -c . || true)
    slow_total=$((slow_total + nslow))
    summary+=("$(printf '%-24s %8s exec/s %10s runs  rc %d  slow %d' "$t" \
                 "${execs:-?}" "${runs:-?}" "$rc" "$nslow")")
    for f in $slow; do
        show_unit "$f" "slow unit (over ${slow_s}s, not a failure)" "$t"
    done
    if [ $rc -ne 0 ] || [ -n "$found" ]; then
        echo "$t failed" >> "$results"
        status=1
        echo "fuzz: $t FAILED (exit $rc); the end of its log:"
        grep -v '^#[0-9]' "$scratch/$t.log" | tail -60
        for f in $found; do
            show_unit "$f" reproducer "$t"
        done
    else
        echo "$t ok" >> "$results"
    fi
done

echo "== fuzz: summary (${secs}s per target, seed $seed)"
printf '%s\n' "${summary[@]}"
if [ "$slow_total" -gt 0 ]; then
    echo "fuzz: $slow_total slow unit(s) kept in $artifacts (not failures)"
fi
exit $status
