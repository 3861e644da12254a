#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# meson tests "headers-*": compiles headers.c with COMPILER and FLAGS three
# times, each public header included first once (self-contained), syntax
# only.  Exit 77 (skip) when COMPILER is not installed.
#
#   compile-headers.sh SOURCE_ROOT COMPILER [FLAGS...]
set -euo pipefail

src=$1 compiler=$2
shift 2
if ! command -v "$compiler" >/dev/null 2>&1; then
    echo "skip: no $compiler"
    exit 77
fi
for first in CPRSTATE FORMAT LE; do
    echo "$compiler -Wall -Wextra -Werror $* -DCPRS_TEST_HEADER_$first headers.c"
    "$compiler" -Wall -Wextra -Werror "$@" -DCPRS_TEST_HEADER_$first \
        -I"$src/libcprstate/include" -I"$src/format" \
        -fsyntax-only "$src/tests/consumer/headers.c"
done
