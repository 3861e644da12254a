#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install everything libcprstate needs to build, test and fuzz, from
# Debian 12 packages.  Runs apt-get as root (directly, or through sudo).
set -euo pipefail

packages=(
    build-essential meson ninja-build pkg-config python3
    libzstd-dev libelf-dev libcmocka-dev
    clang llvm libclang-rt-14-dev
    gdb
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${packages[@]}"
