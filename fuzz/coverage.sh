#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Line coverage of libcprstate by the fuzz corpora (llvm-cov):
#
#   fuzz/coverage.sh [BUILD_DIR]            (default build-cov)
#
# Builds the fuzz targets with clang source-based coverage and the replay
# driver, runs each over fuzz/corpus/<target>/ and the regression files,
# merges the profiles and prints, per library file, lines covered; then the
# total over the parser files (everything that reads hostile bytes) and over
# the writer side.  `llvm-cov show` on the same profile lists the lines.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-build-cov}
if [ ! -f "$dir/build.ninja" ]; then
    CC=clang meson setup "$dir" -Dtests=disabled \
        -Dc_args='-fprofile-instr-generate -fcoverage-mapping' \
        -Dc_link_args='-fprofile-instr-generate'
fi
mapfile -t targets < <(cd fuzz && ls fuzz-*.c | sed 's/\.c$//')
built=()
for t in "${targets[@]}"; do
    if ninja -C "$dir" "fuzz/$t" > /dev/null; then
        built+=("$t")
    fi
done

rm -rf "$dir/prof"
mkdir -p "$dir/prof"
objects=()
for t in "${built[@]}"; do
    inputs=()
    for d in "fuzz/corpus/$t" "tests/data/fuzz-regressions/$t"; do
        if [ -d "$d" ]; then
            inputs+=("$d")
        fi
    done
    [ ${#inputs[@]} -gt 0 ] || continue
    LLVM_PROFILE_FILE="$dir/prof/$t-%p.profraw" "$dir/fuzz/$t" "${inputs[@]}" \
        > /dev/null
    objects+=(-object "$dir/fuzz/$t")
done
llvm-profdata merge -sparse -o "$dir/fuzz.profdata" "$dir"/prof/*.profraw

# The reader side (hostile input) and the writer side, by file name.
llvm-cov export -summary-only -instr-profile "$dir/fuzz.profdata" \
    "${objects[@]:1}" | python3 -c '
import json, os, sys
parser = ["common.c", "cursor.c", "open.c", "section.c", "fd.c",
          "ramblock.c", "device.c", "payload.c", "index.c", "verify.c",
          "legacy.c", "legacy-recv.c", "core.c", "transfer.c"]
writer = ["writer.c", "legacy-encode.c", "legacy-convert.c"]
files = {}
for f in json.load(sys.stdin)["data"][0]["files"]:
    name = os.path.normpath(f["filename"])
    if "/libcprstate/" in name:
        files[os.path.basename(name)] = f["summary"]["lines"]
def table(title, names):
    cov = tot = 0
    print(title)
    for n in names:
        if n not in files:
            continue
        l = files[n]
        cov += l["covered"]
        tot += l["count"]
        print("  %-18s %5d / %5d lines  %6.2f%%" % (n, l["covered"], l["count"],
                                                  l["percent"]))
    print("  %-18s %5d / %5d lines  %6.2f%%" % ("TOTAL", cov, tot,
                                              100.0 * cov / max(tot, 1)))
table("Parser files (hostile input):", parser)
table("Writer side:", writer)
'
