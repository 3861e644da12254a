#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Install what libcprstate needs to build, test and fuzz, from the
# distribution's packages: apt (Debian 12, Ubuntu) or dnf (Fedora, RHEL,
# CentOS Stream; cmocka comes from CRB/EPEL on RHEL and CentOS).  Runs the
# package manager as root (directly, or through sudo).
#
#   scripts/install-deps.sh [--packaging]
#
# --packaging also installs the tools that build and check the packages
# (scripts/build-packages.sh, .ci/run): rpmbuild, and on apt hosts
# dpkg-buildpackage with debhelper and lintian.
set -euo pipefail

packaging=no
case ${1:-} in
--packaging) packaging=yes ;;
"") ;;
*) echo "usage: $0 [--packaging]" >&2; exit 2 ;;
esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

# The compiler-rt package (libFuzzer, the sanitizers' clang runtimes) that
# matches the clang installed: the unversioned package where the
# distribution has one, else the one of clang's major version.
apt_clang_rt() {
    local major
    if apt-cache show libclang-rt-dev >/dev/null 2>&1; then
        echo libclang-rt-dev
        return
    fi
    major=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' |
            head -1)
    if [ -n "$major" ] &&
       apt-cache show "libclang-rt-$major-dev" >/dev/null 2>&1; then
        echo "libclang-rt-$major-dev"
    else
        # Older releases ship compiler-rt in libclang-common-N-dev.
        echo "libclang-common-$major-dev"
    fi
}

if command -v apt-get >/dev/null 2>&1; then
    packages=(
        build-essential meson ninja-build pkgconf python3 git
        libzstd-dev libelf-dev libcmocka-dev
        clang llvm
        gdb
    )
    if [ $packaging = yes ]; then
        packages+=(rpm dpkg-dev debhelper lintian)
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${packages[@]}"
    $SUDO apt-get install -y --no-install-recommends "$(apt_clang_rt)"
elif command -v dnf >/dev/null 2>&1; then
    packages=(
        gcc gcc-c++ make meson ninja-build pkgconf-pkg-config python3 git
        libzstd-devel elfutils-libelf-devel libcmocka-devel
        libasan libubsan
        clang llvm compiler-rt
        gdb
    )
    if [ $packaging = yes ]; then
        packages+=(rpm-build)
    fi
    $SUDO dnf install -y "${packages[@]}"
    if [ $packaging = yes ]; then
        # The Debian tools, where the distribution has them (Fedora).
        $SUDO dnf install -y dpkg-dev debhelper lintian ||
            echo "install-deps: no Debian packaging tools from dnf here"
    fi
else
    echo "install-deps: neither apt-get nor dnf found; install by hand:" >&2
    echo "  meson ninja pkg-config python3 zstd libelf cmocka clang" \
         "compiler-rt gdb" >&2
    exit 1
fi
