#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-layers.py SOURCE_ROOT BUILD_ROOT

The architecture, read off the code (issue 12): libcprstate/ is four
layers, one folder each, base < reader < writer < handover, and tools/
sits on top.  This script reads two graphs and fails on any arrow that
points up or goes round in a circle:

- the include graph: every #include "..." of every .c and .h file,
  resolved to a file of the tree;
- the call graph: for every object file of the layers' static libraries
  (and of cprdump and tools/inspect), the symbols it leaves undefined,
  resolved (nm) to the object that defines them.

Rules:
1. A library file includes only headers of its own layer, of a lower
   layer, the public header and format/.  (The compiler enforces most of
   this already: each layer builds with the include paths of its own and
   lower layers only.)
2. An object of a layer calls only functions defined in its own or a
   lower layer; the library calls nothing in tools/.
3. No cycle between files, inside a layer or across layers: the file-level
   call graph of libcprstate/ and that of tools/ are each a DAG.
4. libelf is used by tools/inspect only: no library object refers to an
   elf_* or gelf_* symbol.
Prints the layer graph (folder -> folders it calls) and exits 0 when every
rule holds.
"""
import collections
import glob
import os
import re
import subprocess
import sys

LAYERS = ['base', 'reader', 'writer', 'handover']
RANK = {name: i for i, name in enumerate(LAYERS)}


def layer_of(path):
    """('lib', layer) for libcprstate/<layer>/..., ('tools', None) ..."""
    parts = path.split(os.sep)
    if parts[0] == 'libcprstate' and len(parts) > 2 and parts[1] in RANK:
        return 'lib', parts[1]
    if parts[0] == 'libcprstate' and len(parts) > 2 and \
            parts[1] == 'include':
        return 'public', None
    if parts[0] == 'libcprstate':
        return 'lib', 'top'
    if parts[0] == 'tools':
        return 'tools', parts[1] if len(parts) > 2 else 'cprdump'
    if parts[0] == 'format':
        return 'format', None
    return 'other', None


def include_graph(src):
    """{file: [included files]} for the library and the tools."""
    files = [f for d in ('libcprstate', 'tools', 'format')
             for f in glob.glob(os.path.join(src, d, '**', '*.[ch]'),
                                recursive=True)]
    by_name = collections.defaultdict(list)
    for f in files:
        by_name[os.path.basename(f)].append(os.path.relpath(f, src))
    graph = {}
    for f in files:
        rel = os.path.relpath(f, src)
        incs = []
        for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"',
                               open(f).read(), re.M):
            base = os.path.basename(name)
            cands = by_name.get(base, [])
            # Prefer a header next to the includer, as the compiler does.
            same = [c for c in cands
                    if os.path.dirname(c) == os.path.dirname(rel)]
            if same or cands:
                incs.append((same or cands)[0])
        graph[rel] = incs
    return graph


def nm_objects(objs):
    """{object: (defined set, undefined set)}"""
    result = {}
    for o in objs:
        out = subprocess.run(['nm', o], capture_output=True, text=True,
                             check=True).stdout
        defined, undefined = set(), set()
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in 'TDBRCV':
                defined.add(p[2])
            elif len(p) == 2 and p[0] == 'U':
                undefined.add(p[1])
        result[o] = (defined, undefined)
    return result


def source_of(obj, build):
    """libcprstate/reader/open.c for .../libcprs-reader.a.p/reader_open.c.o"""
    d = os.path.basename(os.path.dirname(obj))
    name = os.path.basename(obj)[:-len('.o')]
    if d.startswith('libcprs-') and d[len('libcprs-'):-len('.a.p')] in RANK:
        layer = d[len('libcprs-'):-len('.a.p')]
        return os.path.join('libcprstate', layer, name[len(layer) + 1:])
    if d == 'libcprs-inspect.a.p':
        return os.path.join('tools', 'inspect', name[len('inspect_'):])
    if d == 'cprdump.p':
        return os.path.join('tools', name)
    return None


def find_cycles(edges):
    """Strongly connected components with more than one node."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    src, build = sys.argv[1:3]
    errors = []

    # Rule 1: includes.
    for f, incs in sorted(include_graph(src).items()):
        kind, layer = layer_of(f)
        for inc in incs:
            ikind, ilayer = layer_of(inc)
            if kind == 'lib' and layer in RANK:
                if ikind == 'tools':
                    errors.append(f'{f} includes {inc} (tools)')
                elif ikind == 'lib' and ilayer in RANK and \
                        RANK[ilayer] > RANK[layer]:
                    errors.append(f'{f} includes {inc}: {layer} -> {ilayer}')
                elif ikind == 'lib' and ilayer == 'top':
                    errors.append(f'{f} includes {inc} (tests-only header)')
            if kind == 'tools' and ikind == 'lib' and \
                    not inc.startswith('libcprstate/include/'):
                errors.append(f'{f} includes the private {inc}')

    # Rules 2-4: symbols.
    objs = []
    for layer in LAYERS:
        objs += glob.glob(os.path.join(build, 'libcprstate',
                                       f'libcprs-{layer}.a.p', '*.o'))
    objs += glob.glob(os.path.join(build, 'tools', 'libcprs-inspect.a.p',
                                   '*.o'))
    objs += glob.glob(os.path.join(build, 'tools', 'cprdump.p', '*.o'))
    if not objs:
        print(f'no object files under {build}: build first')
        return 1
    syms = nm_objects(objs)
    owner = {}
    for o, (defined, _) in syms.items():
        for s in defined:
            owner[s] = source_of(o, build)
    file_edges = collections.defaultdict(set)
    layer_edges = collections.defaultdict(set)
    for o, (_, undefined) in syms.items():
        f = source_of(o, build)
        kind, layer = layer_of(f)
        for s in undefined:
            if kind == 'lib' and re.match(r'g?elf(32|64)?_', s):
                errors.append(f'{f} uses {s} (libelf) in the library')
            g = owner.get(s)
            if not g or g == f:
                continue
            gkind, glayer = layer_of(g)
            file_edges[f].add(g)
            layer_edges[f'{kind}/{layer}'].add(f'{gkind}/{glayer}')
            if kind == 'lib' and gkind == 'tools':
                errors.append(f'{f} calls {s} of {g} (tools)')
            if kind == 'lib' and gkind == 'lib' and \
                    RANK[glayer] > RANK[layer]:
                errors.append(f'{f} calls {s} of {g}: {layer} -> {glayer}')
    for comp in find_cycles(file_edges):
        errors.append('call cycle between files: ' + ' <-> '.join(comp))

    for v in sorted(layer_edges):
        down = sorted(w for w in layer_edges[v] if w != v)
        print(f'{v} -> {", ".join(down) if down else "(nothing)"}')
    for e in errors:
        print(e)
    print(f'{len(objs)} objects, {sum(len(v) for v in file_edges.values())} '
          f'file edges: {len(errors)} problems')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
