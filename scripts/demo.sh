#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job: install the dependencies, build, and run the demo (a
# QEMU-like CPR state built for real and inspected live with cprdump).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CPRS_SKIP_DEPS:-0}" != 1 ]; then
    ./scripts/install-deps.sh
fi
if [ ! -f build/build.ninja ]; then
    meson setup build
fi
ninja -C build
exec ./build/tests/demo-qemu-state ./build/tools/cprdump
