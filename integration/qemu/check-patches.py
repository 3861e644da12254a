#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Check integration/qemu/patches/ against a synthesised QEMU-like tree.

    check-patches.py [PATCH_DIR]

No QEMU tree is needed, and none is in this repository.  From the
series' own hunks this builds, in a temporary directory, the smallest
git tree that the series must apply to: every file the series changes,
with each line a hunk reads (context and removed lines) at its line
number, and a distinct filler line everywhere else.  Then it checks:

1. git am applies the whole series, one commit per patch, in order,
   with the subjects, authorship and Signed-off-by of the patches;
2. the files the series adds are the integration sources of this
   repository (migration/cpr-cprs.c, include/migration/cpr-cprs.h), as
   apply-to-qemu.py writes them;
3. apply-to-qemu.py, run on the same synthesised tree, makes exactly
   the tree that git am made: the patches are what the generator
   writes today (rerun apply-to-qemu.py --format-patch after a change);
4. the first patch names the QEMU commit the series is based on.

Exit status: 0 pass, 1 fail, 77 (skip) when git is not installed.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def fail(fmt, *args):
    print("FAIL: " + (fmt % args if args else fmt))
    sys.exit(1)


def parse(patch):
    """[(path, is_new, [(old_start, old_count, [lines])])] of one patch."""
    files, cur, hunk = [], None, None
    lines = patch.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            cur = {"path": line.split(" b/", 1)[1], "new": False,
                   "hunks": []}
            files.append(cur)
            hunk = None
        elif cur is not None and hunk is None and \
                line.startswith("new file mode"):
            cur["new"] = True
        elif cur is not None and HUNK.match(line):
            m = HUNK.match(line)
            hunk = [int(m.group(1)), int(m.group(2) or "1"), []]
            cur["hunks"].append(hunk)
            old = new = 0
            want_old = hunk[1]
            want_new = int(m.group(4) or "1")
            while old < want_old or new < want_new:
                i += 1
                body = lines[i]
                if body.startswith("\\"):
                    continue
                tag, text = (body[:1] or " "), body[1:]
                hunk[2].append((tag, text))
                old += tag in " -"
                new += tag in " +"
            hunk = None
        i += 1
    return files


class Model:
    """A file of which only some lines are known, as patches change it."""

    def __init__(self, path):
        self.path = path
        self.orig = {}          # original line index -> text
        self.lines = []         # ("orig", index) or ("new", text)
        self.n_orig = 0

    def _extend(self, upto):
        while len(self.lines) < upto:
            self.lines.append(("orig", self.n_orig))
            self.n_orig += 1

    def apply(self, hunks):
        delta = 0
        for start, count, body in hunks:
            pos = start - 1 + delta if count else start + delta
            self._extend(pos + count)
            out, k = [], pos
            for tag, text in body:
                if tag == "+":
                    out.append(("new", text))
                    continue
                kind, val = self.lines[k]
                if kind == "orig":
                    known = self.orig.setdefault(val, text)
                    if known != text:
                        fail("%s: line %d is read as two texts",
                             self.path, val + 1)
                elif val != text:
                    fail("%s: an added line is read as another text",
                         self.path)
                if tag == " ":
                    out.append(self.lines[k])
                k += 1
            self.lines[pos:k] = out
            delta += len(out) - (k - pos)

    def preimage(self):
        return "".join((self.orig[i] if i in self.orig else
                        "fixture filler line %d of %s" % (i + 1, self.path))
                       + "\n" for i in range(self.n_orig))


def run(cmd, cwd, env, ok=True):
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    if ok and p.returncode:
        fail("%s: exit %d\n%s", " ".join(cmd), p.returncode, p.stdout)
    return p


def tree_files(root):
    found = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != ".git"]
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                found[os.path.relpath(p, root)] = fh.read()
    return found


def main():
    if not shutil.which("git"):
        print("SKIP: git is not installed")
        return 77
    pdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE,
                                                              "patches")
    names = sorted(n for n in os.listdir(pdir) if n.endswith(".patch"))
    if not names:
        fail("no patches in %s", pdir)
    texts = [open(os.path.join(pdir, n)).read() for n in names]

    spec = importlib.util.spec_from_file_location(
        "apply_to_qemu", os.path.join(HERE, "apply-to-qemu.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    if len(names) != len(gen.SERIES):
        fail("%d patches, the generator's SERIES has %d", len(names),
             len(gen.SERIES))

    # The preimage of every file the series changes (not adds).
    models, added = {}, set()
    for text in texts:
        for f in parse(text):
            if f["new"]:
                added.add(f["path"])
                continue
            if f["path"] in added:
                continue
            m = models.setdefault(f["path"], Model(f["path"]))
            m.apply(f["hunks"])

    tmp = tempfile.mkdtemp(prefix="cprs-patches-")
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "HOME": tmp, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C",
               "GIT_AUTHOR_NAME": "fixture", "GIT_AUTHOR_EMAIL": "f@x",
               "GIT_COMMITTER_NAME": "fixture",
               "GIT_COMMITTER_EMAIL": "f@x",
               "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
               "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
        fixture = os.path.join(tmp, "fixture")
        os.makedirs(fixture)
        for path, m in models.items():
            dst = os.path.join(fixture, path)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "w") as fh:
                fh.write(m.preimage())
        pristine = os.path.join(tmp, "generated")
        shutil.copytree(fixture, pristine)
        run(["git", "init", "-q"], fixture, env)
        run(["git", "add", "-A"], fixture, env)
        run(["git", "commit", "-q", "-m", "fixture"], fixture, env)

        # 1. git am, one commit per patch.
        run(["git", "am", "-q"] + [os.path.join(pdir, n) for n in names],
            fixture, env)
        log = run(["git", "log", "--reverse", "--format=%an <%ae>%x09%s",
                   "HEAD~%d..HEAD" % len(names)], fixture, env).stdout
        got = log.strip().split("\n")
        for i, (p, line) in enumerate(zip(gen.SERIES, got)):
            who, subject = line.split("\t", 1)
            if subject != p.subject or who != gen.SIGNER:
                fail("commit %d is '%s' by %s, expected '%s'", i + 1,
                     subject, who, p.subject)
            if "\nSigned-off-by: %s\n" % gen.SIGNER not in texts[i]:
                fail("%s has no Signed-off-by", names[i])
        print("ok: git am applied %d patches to a synthesised tree of %d "
              "files" % (len(names), len(models)))

        # 2. The added files are this repository's sources.
        for rel in gen.NEW_FILES:
            with open(os.path.join(fixture, rel)) as fh:
                if fh.read() != gen.new_file_text(rel):
                    fail("%s in the series differs from integration/qemu/%s",
                         rel, gen.NEW_FILES[rel])
        print("ok: the series adds %s as in this repository"
              % ", ".join(sorted(gen.NEW_FILES)))

        # 3. The generator makes the same tree today.
        for p in gen.SERIES:
            gen.write_changes(pristine, gen.plan_edits(pristine, p.edits),
                              p.new)
        a, b = tree_files(fixture), tree_files(pristine)
        if a != b:
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            fail("apply-to-qemu.py now makes another tree (%s): rerun "
                 "apply-to-qemu.py --format-patch", ", ".join(diff))
        print("ok: apply-to-qemu.py makes the same %d files" % len(a))

        # 4. One base, named by the first patch (git format-patch --base).
        bases = [re.findall(r"^base-commit: ([0-9a-f]{40})$", x, re.M)
                 for x in texts]
        if len(bases[0]) != 1 or any(bases[1:]):
            fail("the first patch, and only it, must name the base commit")
        print("ok: base-commit %s" % bases[0][0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
