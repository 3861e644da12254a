#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# meson test "consumer-install": installs this build into a scratch
# DESTDIR and runs check-installed.sh on it.
#
#   install-and-check.sh BUILD_ROOT PREFIX LIBDIR RPATH DEFAULT_LIBRARY SANITIZE
#
# Skipped (77) in a sanitizer build: the consumers are built without the
# sanitizer runtime that an instrumented libcprstate.so needs first.
set -euo pipefail

build=$1 prefix=$2 libdir=$3 rpath=$4 mode=$5 sanitize=$6
here=$(cd "$(dirname "$0")" && pwd)
if [ "$sanitize" != none ]; then
    echo "skip: libcprstate built with -Db_sanitize=$sanitize"
    exit 77
fi
scratch=$build/tests/consumer/destdir
rm -rf "$scratch"
mkdir -p "$scratch"
meson install -C "$build" --no-rebuild --destdir "$scratch" --quiet
"$here/check-installed.sh" --root "$scratch" --prefix "$prefix" \
    --libdir "$libdir" --rpath "$rpath" --default-library "$mode" \
    --work "$build/tests/consumer/work"
rm -rf "$scratch" "$build/tests/consumer/work"
