#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the distribution packages from this tree with the distribution's
# own tools, into OUTDIR (default build-packages/):
#
#   scripts/build-packages.sh rpm|deb|all [OUTDIR]
#
#   rpm   rpmbuild -ba rpm/libcprstate.spec: libcprstate, -devel, cprdump
#         (and the source RPM) in OUTDIR/rpmbuild/{RPMS,SRPMS}.  On a host
#         whose rpm database does not hold the build dependencies (Debian's
#         rpm package) they are not checked (--nodeps): install-deps.sh
#         installed them with apt.
#   deb   dpkg-buildpackage -us -uc: libcprstate0, libcprstate-dev, cprdump
#         (and the native source package) in OUTDIR/deb/.
#
# The source is what git tracks, as the working tree has it (a clean
# checkout in CI).  CPRS_PKG_TEST_ARGS: extra arguments of meson test in
# %check / dh_auto_test, e.g. "--no-suite fuzz" when the whole suite has
# already run on this tree.  Needs rpmbuild, dpkg-buildpackage (debhelper)
# and git.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
out=${2:-build-packages}
case $what in
rpm | deb | all) ;;
*) echo "usage: $0 rpm|deb|all [OUTDIR]" >&2; exit 2 ;;
esac
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(sed -n "s/^ *version: '\([^']*\)',.*/\1/p" meson.build | head -1)
name=libcprstate-$version

# A tarball of the tracked files, under libcprstate-VERSION/.
tarball() {
    local dest=$1 list
    list=$(mktemp)
    git ls-files -z | while IFS= read -r -d '' f; do
        [ -e "$f" ] && printf '%s\0' "$f"
    done >"$list"
    # Every file dated by the last commit (reproducible, not 1970).
    tar --null -T "$list" --transform "s,^,$name/," --owner=0 --group=0 \
        --numeric-owner --mtime="@$(git log -1 --format=%ct)" -czf "$dest"
    rm -f "$list"
}

build_rpm() {
    local top=$out/rpmbuild nodeps=() defs=()
    rm -rf "$top"
    mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS,BUILDROOT}
    tarball "$top/SOURCES/$name.tar.gz"
    cp rpm/libcprstate.spec "$top/SPECS/"
    if ! rpm -q --quiet rpm 2>/dev/null; then
        nodeps=(--nodeps)
    fi
    if [ -n "${CPRS_PKG_TEST_ARGS:-}" ]; then
        defs=(--define "cprs_test_args $CPRS_PKG_TEST_ARGS")
    fi
    rpmbuild -ba "${nodeps[@]}" --define "_topdir $top" "${defs[@]}" \
        "$top/SPECS/libcprstate.spec"
    find "$top/RPMS" "$top/SRPMS" -name '*.rpm' -printf '%P\n'
}

build_deb() {
    local dir=$out/deb
    rm -rf "$dir"
    mkdir -p "$dir"
    tarball "$dir/src.tar.gz"
    tar -C "$dir" -xzf "$dir/src.tar.gz"
    rm -f "$dir/src.tar.gz"
    (cd "$dir/$name" &&
     CPRS_PKG_TEST_ARGS=${CPRS_PKG_TEST_ARGS:-} dpkg-buildpackage -us -uc)
    ls "$dir"
}

case $what in
rpm) build_rpm ;;
deb) build_deb ;;
all) build_rpm; build_deb ;;
esac
