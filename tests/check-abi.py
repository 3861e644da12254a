#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-abi.py LIBCPRSTATE.so MAP HEADER

The shared library exports exactly the symbols of its version map, every
one of them under the map's newest node, and the public header declares
each one with CPRS_API (STYLE 6).  Exit 0 when all three agree.
"""
import re
import subprocess
import sys


def main():
    lib, mapfile, header = sys.argv[1:4]
    out = subprocess.run(['nm', '-D', '--defined-only', lib], check=True,
                         capture_output=True, text=True).stdout
    exported = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in 'TDBR':
            name, _, node = parts[2].partition('@@')
            if not node:
                name, _, node = parts[2].partition('@')
            exported[name] = node
    text = open(mapfile).read()
    nodes = re.findall(r'(LIBCPRSTATE_[0-9.]+)\s*\{', text)
    mapped = set(re.findall(r'^\s+(cprs_\w+);', text, re.M))
    declared = set(re.findall(r'CPRS_API\s[^;(]*?\b(cprs_\w+)\s*\(',
                              open(header).read(), re.S))
    errors = []
    for name in sorted(set(exported) - mapped):
        errors.append(f'exported but not in the map: {name}')
    for name in sorted(mapped - set(exported)):
        errors.append(f'in the map but not exported: {name}')
    for name in sorted(mapped - declared):
        errors.append(f'in the map but not declared CPRS_API: {name}')
    for name in sorted(declared - mapped):
        errors.append(f'declared CPRS_API but not in the map: {name}')
    for name, node in sorted(exported.items()):
        if node not in nodes:
            errors.append(f'{name} has version {node!r}, not a map node')
    for line in errors:
        print(line)
    print(f'{len(exported)} exported, {len(mapped)} mapped, '
          f'{len(declared)} declared: {len(errors)} problems')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
