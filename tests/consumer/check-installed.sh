#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Checks an installed libcprstate as its users meet it, in a scratch root
# (a meson DESTDIR, an RPM installed with rpm --root, Debian packages
# unpacked with dpkg -x):
#
#   check-installed.sh --root ROOT --prefix PREFIX --libdir LIBDIR
#                      [--rpath yes|no] [--default-library shared|static|both]
#                      [--vectors DIR] [--work DIR]
#
# LIBDIR is absolute (/usr/lib64, /usr/lib/x86_64-linux-gnu).  It builds
# small consumers from the installed pkg-config files alone
# (PKG_CONFIG_LIBDIR and PKG_CONFIG_SYSROOT_DIR into ROOT): one on
# libcprstate, one on libcprstate-reader that links only the reader and
# verifies the golden vectors, one in C++; shows that nothing QEMU links
# pulls in libelf; checks the RPATH policy of cprdump (--rpath yes: runs
# without LD_LIBRARY_PATH; no: carries no RPATH), and the installed docs.
# Prints one "ok" line per check; exits 1 at the first failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root= prefix= libdir= rpath=no mode=shared work=
vectors=$here/../../format/vectors
while [ $# -gt 0 ]; do
    case $1 in
    --root) root=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --libdir) libdir=$2; shift 2 ;;
    --rpath) rpath=$2; shift 2 ;;
    --default-library) mode=$2; shift 2 ;;
    --vectors) vectors=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "check-installed: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$root" ] || [ -z "$prefix" ] || [ -z "$libdir" ]; then
    echo "usage: check-installed.sh --root ROOT --prefix PREFIX" \
         "--libdir LIBDIR [...]" >&2
    exit 2
fi
root=$(cd "$root" && pwd)
vectors=$(cd "$vectors" && pwd)
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/cprs-consumer.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"

lib=$root$libdir
docdir=$root$prefix/share/doc/libcprstate
CC=${CC:-cc}
CXX=${CXX:-c++}

fail() {
    echo "FAIL - $*" >&2
    exit 1
}
ok() {
    echo "ok - $*"
}

# ---- What is installed, and what is not ---------------------------------
for h in cprstate.h cprs-format.h cprs-le.h; do
    [ -f "$root$prefix/include/$h" ] || fail "no $prefix/include/$h"
done
for pc in libcprstate libcprstate-reader; do
    [ -f "$lib/pkgconfig/$pc.pc" ] || fail "no $libdir/pkgconfig/$pc.pc"
done
[ -f "$lib/libcprstate-reader.a" ] || fail "no libcprstate-reader.a"
have_so=no have_a=no
[ -e "$lib/libcprstate.so" ] && have_so=yes
[ -e "$lib/libcprstate.a" ] && have_a=yes
case $mode in
shared) want_so=yes want_a=no ;;
static) want_so=no want_a=yes ;;
both) want_so=yes want_a=yes ;;
*) fail "unknown --default-library $mode" ;;
esac
[ "$have_so" = "$want_so" ] || fail "libcprstate.so installed: $have_so"
[ "$have_a" = "$want_a" ] || fail "libcprstate.a installed: $have_a"
ok "default_library=$mode: libcprstate.so $have_so, libcprstate.a $have_a," \
   "libcprstate-reader.a, headers, pkg-config files"
if [ "$have_so" = yes ]; then
    [ -e "$lib/libcprstate.so.0" ] || fail "no libcprstate.so.0"
    soname=$(readelf -d "$lib/libcprstate.so.0" |
             sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    [ "$soname" = libcprstate.so.0 ] || fail "SONAME is '$soname'"
    ok "libcprstate.so.0, SONAME $soname"
fi

for f in cpr-state-arena.rst cprdump-json.rst cprdump.schema.json \
         rationale.rst qemu-legacy-stream.rst qemu-integration.rst; do
    [ -f "$docdir/$f" ] || fail "no $prefix/share/doc/libcprstate/$f"
done
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' \
    "$docdir/cprdump.schema.json" || fail "cprdump.schema.json is not JSON"
ls "$root$prefix"/share/man/man1/cprdump.1* >/dev/null 2>&1 ||
    fail "no cprdump.1"
[ -f "$root$prefix/share/bash-completion/completions/cprdump" ] ||
    fail "no bash completion"
ok "docs in $prefix/share/doc/libcprstate, man page, bash completion"

# ---- pkg-config: the scratch root's files, first and alone for ours -----
export PKG_CONFIG_SYSROOT_DIR=$root
export PKG_CONFIG_LIBDIR=$lib/pkgconfig:$(pkg-config --variable pc_path pkg-config)
unset PKG_CONFIG_PATH
# Keep -I/usr/include and -L/usr/lib...: with the sysroot they point into
# the scratch root.
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
version=$(pkg-config --modversion libcprstate)
[ "$(pkg-config --modversion libcprstate-reader)" = "$version" ] ||
    fail "libcprstate-reader.pc and libcprstate.pc differ in version"
case " $(pkg-config --cflags libcprstate) " in
*" -I$root$prefix/include "*) ;;
*) fail "pkg-config --cflags libcprstate: $(pkg-config --cflags libcprstate)" ;;
esac
static=
[ "$have_so" = yes ] || static=--static
full_flags=$(pkg-config $static --cflags --libs libcprstate)
reader_flags=$(pkg-config --cflags --libs libcprstate-reader)
case " $reader_flags " in
*" -lcprstate "*) fail "libcprstate-reader.pc links libcprstate" ;;
esac
case " $reader_flags " in
*" -lcprstate-reader "*) ;;
*) fail "libcprstate-reader.pc: $reader_flags" ;;
esac
ok "pkg-config: libcprstate $version: $full_flags"
ok "pkg-config: libcprstate-reader: $reader_flags"

# ---- Consumers ----------------------------------------------------------
export LD_LIBRARY_PATH=$lib
# shellcheck disable=SC2086 # word splitting of pkg-config output
"$CC" -std=c11 -Wall -Wextra -Werror -o "$work/consumer-full" \
    "$here/consumer-full.c" $full_flags
"$work/consumer-full" "$version" || fail "consumer-full"
ok "consumer on libcprstate builds and runs"

# shellcheck disable=SC2086
"$CC" -std=c11 -Wall -Wextra -Werror -o "$work/consumer-reader" \
    "$here/consumer-reader.c" $reader_flags
"$work/consumer-reader" "$vectors" || fail "consumer-reader"
ldd "$work/consumer-reader" >"$work/reader.ldd"
nm "$work/consumer-reader" >"$work/reader.nm"
if grep 'libcprstate\.so' "$work/reader.ldd"; then
    fail "consumer-reader needs libcprstate.so"
fi
grep -q ' T cprs_reader_verify$' "$work/reader.nm" ||
    fail "consumer-reader has no cprs_reader_verify"
if grep -E ' [TtDdBb] cprs_(writer|state|exec|transfer)_' "$work/reader.nm"; then
    fail "consumer-reader carries writer or handover code"
fi
ok "consumer on libcprstate-reader alone: no libcprstate.so, no writer" \
   "or handover code, golden vectors verified"

if command -v "$CXX" >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    "$CXX" -std=c++17 -Wall -Wextra -pedantic -Werror \
        -o "$work/consumer-cxx" "$here/consumer-cxx.cc" $full_flags
    "$work/consumer-cxx" "$vectors/qemu-q35-memfd.cprs" ||
        fail "consumer-cxx"
    ok "C++17 consumer on libcprstate builds and runs"
else
    echo "skip - no C++ compiler ($CXX)"
fi

# ---- No libelf in what QEMU links ---------------------------------------
if [ "$have_so" = yes ]; then
    if readelf -d "$lib/libcprstate.so.0" | grep NEEDED | grep -i elf; then
        fail "libcprstate.so.0 needs libelf"
    fi
    if nm -D --undefined-only "$lib/libcprstate.so.0" | grep -E ' (elf|gelf)_'; then
        fail "libcprstate.so.0 calls libelf"
    fi
fi
for bin in "$work/consumer-full" "$work/consumer-reader"; do
    if ldd "$bin" | grep -i libelf; then
        fail "$(basename "$bin") loads libelf"
    fi
done
if ar t "$lib/libcprstate-reader.a" | grep -E '(core|elf)\.c\.o$'; then
    fail "libcprstate-reader.a has ELF inspection objects"
fi
ok "no libelf: libcprstate.so.0 (NEEDED, undefined symbols)," \
   "consumer-full and consumer-reader (ldd)"
if [ "$have_so" = yes ]; then
    ldd "$work/consumer-full" | grep -E 'libcprstate|zstd'
fi

# ---- cprdump: RPATH policy, runs, verifies ------------------------------
cprdump=$root$prefix/bin/cprdump
[ -x "$cprdump" ] || fail "no $prefix/bin/cprdump"
if readelf -d "$lib/libcprstate.so.0" 2>/dev/null | grep -E '\((RPATH|RUNPATH)\)'; then
    fail "libcprstate.so.0 has an RPATH"
fi
rp=$(readelf -d "$cprdump" | sed -n 's/.*(\(RPATH\|RUNPATH\)).*\[\(.*\)\]/\2/p')
if [ "$have_so" = no ]; then
    ok "cprdump linked statically (no libcprstate.so): no RPATH needed"
elif [ "$rpath" = yes ]; then
    [ -n "$rp" ] || fail "cprdump has no RPATH"
    env -u LD_LIBRARY_PATH "$cprdump" --version >/dev/null ||
        fail "cprdump does not run without LD_LIBRARY_PATH"
    env -u LD_LIBRARY_PATH ldd "$cprdump" >"$work/cprdump.ldd"
    loaded=$(sed -n 's/.*libcprstate\.so\.0 => \([^ ]*\) .*/\1/p' \
             "$work/cprdump.ldd")
    [ -n "$loaded" ] &&
        [ "$(realpath "$loaded")" = "$(realpath "$lib/libcprstate.so.0")" ] ||
        fail "cprdump loads '$loaded', not $libdir/libcprstate.so.0"
    ok "cprdump RPATH $rp: runs without LD_LIBRARY_PATH from $libdir"
else
    [ -z "$rp" ] || fail "cprdump has an RPATH: $rp"
    ok "cprdump has no RPATH (system libdir $libdir)"
fi
for v in "$vectors"/*.cprs; do
    "$cprdump" verify "$v" >/dev/null ||
        fail "installed cprdump verify $(basename "$v")"
done
"$cprdump" --help >/dev/null || fail "cprdump --help"
ok "installed cprdump verifies every golden vector"
