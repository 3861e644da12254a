#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job: install the dependencies, build, and run the end-to-end
# cpr-exec demo.  A VMM-like process (tests/cprs-vmm.c) boots guest RAM in
# memfds with devices holding data in flight, then live-updates itself
# with cpr-exec three times (the second hop writing QEMU's legacy stream,
# as a QEMU without libcprstate would); each new image re-maps its RAM
# and verifies every byte and every fd.  The last image waits with its
# state unloaded, like a QEMU started with -incoming defer, and cprdump
# inspects it through /proc (cprdump --pid), verifies it and cross-checks
# it with the process's fd table, before the process loads it and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CPRS_SKIP_DEPS:-0}" != 1 ]; then
    ./scripts/install-deps.sh
fi
if [ ! -f build/build.ninja ]; then
    meson setup build
fi
ninja -C build

work=$(mktemp -d)
vmm=
cleanup() {
    [ -n "$vmm" ] && kill "$vmm" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
ready="$work/ready"

echo "== cpr-exec: 3 hops (hop 2 writes the legacy QCPR stream), then wait"
./build/tests/cprs-vmm --hops=3 --legacy-hop=2 --wait \
    --ready-file="$ready" &
vmm=$!
for _ in $(seq 1 600); do
    [ -s "$ready" ] && break
    kill -0 "$vmm" 2>/dev/null || { wait "$vmm"; exit 1; }
    sleep 0.1
done
[ -s "$ready" ] || { echo "demo: the VMM never reached its wait"; exit 1; }

echo
echo "== cprdump --pid $vmm (the waiting process, after 3 hops)"
./build/tools/cprdump --pid "$vmm"
echo
echo "== cprdump verify --pid $vmm"
./build/tools/cprdump verify --pid "$vmm"
echo
echo "== cprdump check-live $vmm"
./build/tools/cprdump check-live "$vmm"
echo
echo "== let the process load its state and finish"
kill -USR1 "$vmm"
wait "$vmm"
vmm=
echo "demo: OK"
