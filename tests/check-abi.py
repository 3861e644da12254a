#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-abi.py LIBCPRSTATE.so MAP HEADER [VERSION]

STYLE 6, checked on the built shared library:
- it exports exactly the symbols of its version map, each under a node
  of the map, and the map's nodes form one chain (each inherits the one
  before it);
- the public header declares every mapped symbol with CPRS_API;
- experimental functions (CPRS_EXPERIMENTAL_API) are declared only inside
  "#ifdef CPRS_EXPERIMENTAL" and are neither mapped nor exported;
- a deprecated function (CPRS_DEPRECATED_SINCE(major, minor, ...)) is still
  exported, and was deprecated in a version no newer than VERSION.
Exit 0 when all of it holds.
"""
import re
import subprocess
import sys


def exported_symbols(lib):
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
    return exported


def map_nodes(text):
    """[(node, parent or None, symbols)] in file order."""
    nodes = []
    for m in re.finditer(r'(LIBCPRSTATE_[0-9.]+)\s*\{(.*?)\}\s*'
                         r'(LIBCPRSTATE_[0-9.]+)?\s*;', text, re.S):
        syms = set(re.findall(r'^\s+(cprs_\w+);', m.group(2), re.M))
        nodes.append((m.group(1), m.group(3), syms))
    return nodes


def header_declarations(header):
    """(stable, experimental, deprecated{name: (major, minor)}, errors)."""
    text = open(header).read()
    stable, experimental, deprecated, errors = set(), set(), {}, []
    depth_exp = 0
    stack = []
    decl = ''
    for line in text.splitlines():
        s = line.strip()
        if s.startswith('#if'):
            exp = s.replace(' ', '') in ('#ifdefCPRS_EXPERIMENTAL',
                                         '#ifdefined(CPRS_EXPERIMENTAL)')
            stack.append(exp)
            depth_exp += exp
            continue
        if s.startswith('#endif'):
            depth_exp -= stack.pop() if stack else 0
            continue
        if s.startswith(('CPRS_API', 'CPRS_EXPERIMENTAL_API')) or decl:
            decl += ' ' + s
            if ';' not in s:
                continue
            m = re.search(r'\b(cprs_\w+)\s*\(', decl)
            name = m.group(1) if m else None
            if decl.lstrip().startswith('CPRS_EXPERIMENTAL_API'):
                if not depth_exp:
                    errors.append(f'{name}: experimental outside '
                                  '#ifdef CPRS_EXPERIMENTAL')
                experimental.add(name)
            else:
                if depth_exp:
                    errors.append(f'{name}: CPRS_API inside '
                                  '#ifdef CPRS_EXPERIMENTAL')
                stable.add(name)
                d = re.search(r'CPRS_DEPRECATED_SINCE\(\s*(\d+)\s*,\s*'
                              r'(\d+)', decl)
                if d:
                    deprecated[name] = (int(d.group(1)), int(d.group(2)))
            decl = ''
    return stable, experimental, deprecated, errors


def main():
    lib, mapfile, header = sys.argv[1:4]
    version = tuple(int(x) for x in (sys.argv[4] if len(sys.argv) > 4
                                     else '999.999').split('.')[:2])
    exported = exported_symbols(lib)
    nodes = map_nodes(open(mapfile).read())
    mapped = set().union(*(n[2] for n in nodes)) if nodes else set()
    stable, experimental, deprecated, errors = header_declarations(header)

    names = [n[0] for n in nodes]
    for i, (node, parent, _) in enumerate(nodes):
        want = names[i - 1] if i else None
        if parent != want:
            errors.append(f'{node} inherits {parent}, not {want}')
    for name in sorted(set(exported) - mapped):
        errors.append(f'exported but not in the map: {name}')
    for name in sorted(mapped - set(exported)):
        errors.append(f'in the map but not exported: {name}')
    for name in sorted(mapped - stable):
        errors.append(f'in the map but not declared CPRS_API: {name}')
    for name in sorted(stable - mapped):
        errors.append(f'declared CPRS_API but not in the map: {name}')
    for name in sorted(experimental & (mapped | set(exported))):
        errors.append(f'experimental but exported or mapped: {name}')
    for name, since in sorted(deprecated.items()):
        if since > version:
            errors.append(f'{name}: deprecated since {since}, newer than '
                          f'the library {version}')
    for name, node in sorted(exported.items()):
        if node not in names:
            errors.append(f'{name} has version {node!r}, not a map node')
    for line in errors:
        print(line)
    print(f'{len(exported)} exported, {len(mapped)} mapped in '
          f'{len(nodes)} nodes, {len(stable)} declared, '
          f'{len(experimental)} experimental, {len(deprecated)} '
          f'deprecated: {len(errors)} problems')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
