#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The reader's files call each other in one direction only (issue 12).

    check-reader-calls.py NM LIBCPRS-READER.A

Reads the symbols of every object in the reader layer's static library
with nm, draws an edge from a file to each file that defines a symbol it
uses, and fails if the graph has a cycle, printing it.  The expected
order (libcprstate/reader/cprs-reader.h) is, bottom up: frame.c,
section.c, open.c and index.c, the record files, verify.c; legacy.c, the
QEMU stream decoder, stands apart.
"""
import collections
import subprocess
import sys


def objects(nm, archive):
    """{object: (defined, undefined)} from `nm -A` of @archive."""
    out = subprocess.run([nm, '-A', archive], check=True,
                         capture_output=True, text=True).stdout
    syms = collections.defaultdict(lambda: (set(), set()))
    for line in out.splitlines():
        where, _, rest = line.rpartition(':')
        parts = rest.split()
        # "archive:member.o": reader/open.c is built as reader_open.c.o
        obj = where.split(':')[-1].rsplit('/', 1)[-1]
        obj = obj[len('reader_'):] if obj.startswith('reader_') else obj
        obj = obj[:-2] if obj.endswith('.o') else obj
        if len(parts) == 3 and parts[1] in 'TDBR':
            syms[obj][0].add(parts[2])
        elif len(parts) == 2 and parts[0] == 'U':
            syms[obj][1].add(parts[1])
    return syms


def main():
    syms = objects(sys.argv[1], sys.argv[2])
    owner = {}
    for obj, (defined, _) in syms.items():
        for s in defined:
            owner[s] = obj
    edges = collections.defaultdict(set)
    for obj, (_, used) in syms.items():
        for s in used:
            if s in owner and owner[s] != obj:
                edges[obj].add(owner[s])
    for obj in sorted(edges):
        print('%s -> %s' % (obj, ', '.join(sorted(edges[obj]))))

    state, stack = {}, []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(edges[v]):
            if state.get(w) == 1:
                cycle = stack[stack.index(w):] + [w]
                sys.exit('cycle: ' + ' -> '.join(cycle))
            if not state.get(w):
                visit(w)
        stack.pop()
        state[v] = 2

    for v in sorted(syms):
        if not state.get(v):
            visit(v)
    print('no cycle among %d files' % len(syms))


if __name__ == '__main__':
    main()
