#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-configs.py SOURCE_ROOT SCRATCH [SANITIZE]

Configures the project (meson setup only, nothing is built) in scratch
directories and checks from meson's introspection:
- -Ddefault_library=shared installs libcprstate.so and no libcprstate.a;
  static the reverse; both, both; libcprstate-reader.a in every mode;
- -Dtests=disabled registers no test and no benchmark and defines no
  target of tests/ or fuzz/;
- -Dtests=disabled with -Dfuzzing=true is refused.
Skipped (77) in a sanitizer build: it checks configuration, not code.
"""
import json
import os
import shutil
import subprocess
import sys


def setup(src, build, *options):
    shutil.rmtree(build, ignore_errors=True)
    return subprocess.run(['meson', 'setup', build, src] + list(options),
                          capture_output=True, text=True)


def introspect(build, what):
    out = subprocess.run(['meson', 'introspect', build, '--' + what],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def installed_names(build):
    return {os.path.basename(p) for p in introspect(build, 'installed')
            .values()}


def main():
    src, scratch = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3 and sys.argv[3] != 'none':
        print('skip: sanitizer build')
        return 77
    errors = []
    os.makedirs(scratch, exist_ok=True)
    build = os.path.join(scratch, 'config')

    for mode, so, a in (('shared', True, False), ('static', False, True),
                        ('both', True, True)):
        r = setup(src, build, '-Ddefault_library=' + mode,
                  '-Dtests=disabled')
        if r.returncode:
            errors.append('setup %s failed:\n%s' % (mode, r.stdout + r.stderr))
            continue
        names = installed_names(build)
        got_so = any(n.startswith('libcprstate.so') for n in names)
        got_a = 'libcprstate.a' in names
        if (got_so, got_a) != (so, a):
            errors.append('default_library=%s installs libcprstate.so: %s, '
                          'libcprstate.a: %s' % (mode, got_so, got_a))
        if 'libcprstate-reader.a' not in names:
            errors.append('default_library=%s: no libcprstate-reader.a'
                          % mode)
        print('default_library=%s: installs %s' % (mode, ', '.join(
            sorted(n for n in names if n.startswith('libcprstate')))))

    # The last setup had -Dtests=disabled.
    tests = introspect(build, 'tests')
    benchmarks = introspect(build, 'benchmarks')
    targets = introspect(build, 'targets')
    exes = sorted(t['name'] for t in targets if t['type'] == 'executable')
    for_tests = sorted(
        t['name'] for t in targets
        if os.path.relpath(t['defined_in'], src).split(os.sep)[0]
        in ('tests', 'fuzz'))
    if tests or benchmarks:
        errors.append('-Dtests=disabled registers %d tests, %d benchmarks'
                      % (len(tests), len(benchmarks)))
    if for_tests:
        errors.append('-Dtests=disabled defines %s' % for_tests)
    print('tests=disabled: %d tests, %d benchmarks, no target of tests/ '
          'or fuzz/, executables %s' % (len(tests), len(benchmarks), exes))

    r = setup(src, build, '-Dtests=disabled', '-Dfuzzing=true')
    if r.returncode == 0:
        errors.append('-Dtests=disabled -Dfuzzing=true was accepted')
    else:
        print('tests=disabled fuzzing=true: refused')
    shutil.rmtree(build, ignore_errors=True)

    for e in errors:
        print('check-configs: ' + e)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
