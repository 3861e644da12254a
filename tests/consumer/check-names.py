#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-names.py SOURCE_ROOT VERSION

One name everywhere, one version everywhere:
- the pkg-config modules (filebase of pkg.generate), the meson dependency
  overrides and the [provide] names of QEMU's libcprstate.wrap are the
  same set: libcprstate and libcprstate-reader;
- rpm/libcprstate.spec and debian/changelog carry the project VERSION;
- the packages install both pkg-config files.
Exit 0 when all of it holds.
"""
import configparser
import os
import re
import sys


def main():
    root, version = sys.argv[1], sys.argv[2]
    errors = []

    def read(*path):
        with open(os.path.join(root, *path)) as f:
            return f.read()

    build = read('libcprstate', 'meson.build')
    overrides = set(re.findall(r"override_dependency\('([^']+)'", build))
    pcs = set(re.findall(r"filebase:\s*'([^']+)'", build))
    wrap = configparser.ConfigParser()
    wrap.read_string(read('integration', 'qemu', 'subprojects',
                          'libcprstate.wrap'))
    provide = {n.strip() for n in
               wrap.get('provide', 'dependency_names', fallback='').split(',')
               if n.strip()}
    want = {'libcprstate', 'libcprstate-reader'}
    for what, names in (('meson overrides', overrides),
                        ('pkg-config modules', pcs),
                        ('libcprstate.wrap [provide]', provide)):
        if names != want:
            errors.append('%s: %s, expected %s' % (what, sorted(names),
                                                   sorted(want)))

    spec = read('rpm', 'libcprstate.spec')
    m = re.search(r'^Version:\s*(\S+)', spec, re.M)
    if not m or m.group(1) != version:
        errors.append('rpm/libcprstate.spec Version: %s, project %s'
                      % (m and m.group(1), version))
    m = re.match(r'libcprstate \(([^)]+)\)', read('debian', 'changelog'))
    deb_version = m and re.sub(r'-[^-]*$', '', m.group(1))
    if deb_version != version:
        errors.append('debian/changelog: %s, project %s'
                      % (deb_version, version))
    for pc in sorted(want):
        if pc + '.pc' not in spec:
            errors.append('rpm/libcprstate.spec does not ship %s.pc' % pc)
    if 'pkgconfig' not in read('debian', 'libcprstate-dev.install'):
        errors.append('debian/libcprstate-dev.install has no pkgconfig')

    for e in errors:
        print('check-names: ' + e)
    if not errors:
        print('check-names: %s (libcprstate, libcprstate-reader) in '
              'pkg-config, meson overrides, the wrap, the spec and '
              'debian/changelog' % version)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
