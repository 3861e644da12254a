#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Apply the libcprstate integration to a QEMU source tree (10.2 era),
or write it as a patch series.

    apply-to-qemu.py [--check] [--copy | --wrap | --no-subproject] QEMU_SRC
    apply-to-qemu.py --format-patch OUTDIR [--base REV] QEMU_GIT_TREE

The first form adds migration/cpr-cprs.c and include/migration/cpr-cprs.h
and makes the small edits that spec/qemu-integration.rst describes, in
meson_options.txt, scripts/meson-buildoptions.sh, meson.build,
migration/meson.build, hw/vfio/cpr-iommufd.c, migration/cpr-exec.c,
migration/migration.c and qapi/migration.json; then it makes
subprojects/libcprstate a symlink to this libcprstate checkout (--copy:
a copy of its sources; --wrap: the wrap file of subprojects/ instead;
--no-subproject: nothing, for a QEMU built against the installed
library).  Every edit is found by an anchor; a missing anchor stops the
script before anything is written.  Running it twice changes nothing.
--check only reports what would be done.

The second form makes the same changes as the commits of SERIES, in a
temporary git worktree of QEMU_GIT_TREE at REV (default HEAD), and
writes them with git format-patch into OUTDIR: the patches of
integration/qemu/patches/ (git am applies them; QEMU's checkpatch.pl
passes them).  The worktree is removed afterwards; QEMU_GIT_TREE is not
changed.  Commits and patches are reproducible: fixed author, dates and
no git version in them.

New files are GPL-2.0-or-later in QEMU (what its checkpatch.pl wants of
new files); here they are LGPL-2.1-or-later, which section 3 of the
LGPL-2.1 lets anyone convey under the GPL, version 2 or later.

Neither form builds QEMU: configure and build as usual, e.g.
    configure ... --enable-cprstate && make
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MARK = "cprstate"

OPTION = """\
option('cprstate', type: 'feature', value: 'auto',
       description: 'CPR state as a CPR State Arena, through libcprstate')
"""

BUILDOPT_HELP = """\
  printf "%s\\n" '  cprstate        CPR state as a CPR State Arena, through libcprstate'
"""

BUILDOPT_CASE = """\
    --enable-cprstate) printf "%s" -Dcprstate=enabled ;;
    --disable-cprstate) printf "%s" -Dcprstate=disabled ;;
"""

MESON_DEP = """
# libcprstate: the CPR state (migration/cpr-cprs.c instead of cpr.c), from
# the system library (pkg-config) or else the subproject
cprstate = not_found
if host_os == 'linux' and have_system and not get_option('cprstate').disabled()
  cprstate = dependency('libcprstate', version: '>=0.2', required: false,
                        method: 'pkg-config')
  if not cprstate.found()
    cprstate_werror = 'werror=' + get_option('werror').to_string()
    cprstate_proj = subproject('libcprstate', required: get_option('cprstate'),
                               default_options: ['tests=disabled',
                                                 'default_library=static',
                                                 cprstate_werror])
    if cprstate_proj.found()
      cprstate = cprstate_proj.get_variable('libcprstate_dep')
    endif
  endif
elif get_option('cprstate').enabled()
  error('libcprstate needs a Linux host and system emulation')
endif
config_host_data.set('CONFIG_CPRSTATE', cprstate.found())
"""

MESON_SUMMARY = """\
summary_info += {'libcprstate':       cprstate}
"""

MIGRATION_MESON = """
# The CPR state: libcprstate's CPR State Arena, or the QCPR vmstate stream.
system_ss.add(when: cprstate, if_true: [files('cpr-cprs.c'), cprstate],
              if_false: files('cpr.c'))
"""

VFIO_ELSE = """\
#else /* CONFIG_CPRSTATE */

/* The records live in the CPR state kept by libcprstate. */
static void vfio_cpr_save_device(VFIODevice *vbasedev)
{
    cpr_save_vfio_device(vbasedev->name, vbasedev->devid,
                         vbasedev->cpr.ioas_id, vbasedev->cpr.hwpt_id);
}

static void vfio_cpr_delete_device(const char *name)
{
    cpr_delete_vfio_device(name);
}

static bool vfio_cpr_find_device(VFIODevice *vbasedev)
{
    if (!cpr_find_vfio_device(vbasedev->name, &vbasedev->devid,
                              &vbasedev->cpr.ioas_id,
                              &vbasedev->cpr.hwpt_id)) {
        return false;
    }
    trace_vfio_cpr_find_device(vbasedev->cpr.ioas_id, vbasedev->devid,
                               vbasedev->cpr.hwpt_id);
    return true;
}
#endif /* CONFIG_CPRSTATE */

"""

UNPERSIST = """\
    if (!val) {
        /* Nothing was persisted: cpr_state_save() failed before. */
        return;
    }
"""


QAPI = """
##
# @CprRollbackInfo:
#
# Whether this QEMU resumed its VM after a failed cpr-exec live update
# (a rollback), and why.
#
# @rolled-back: true if the QEMU this one exec'd failed before its VM
#     ran, and handed the CPR state back to this one
#
# @failed-exe: the executable of the QEMU that failed
#
# @stage: where it failed: "state-load", "incoming", "device" or
#     "other"
#
# @error: the error it reported
#
# Since: 10.2
##
{ 'struct': 'CprRollbackInfo',
  'data': { 'rolled-back': 'bool',
            '*failed-exe': 'str',
            '*stage': 'str',
            '*error': 'str' },
  'if': 'CONFIG_CPRSTATE' }

##
# @query-cpr-rollback:
#
# Tell whether this QEMU was started by the rollback of a failed
# cpr-exec live update.
#
# Returns: what failed, if anything
#
# Since: 10.2
#
# .. qmp-example::
#
#     -> { "execute": "query-cpr-rollback" }
#     <- { "return": { "rolled-back": false } }
##
{ 'command': 'query-cpr-rollback', 'returns': 'CprRollbackInfo',
  'if': 'CONFIG_CPRSTATE' }
"""

CPR_EXEC_CALL = """\
#ifdef CONFIG_CPRSTATE
    /* Runs the file that pre-flight inspected (migration/cpr-cprs.c). */
    cpr_cprs_exec(argv, &err);
#else
"""

CPR_EXEC_ERROR = '''    error_setg_errno(&err, errno, "execvp %s failed", argv[0]);
'''

INCOMING_FAILED = """\
    /* A rollback, if the previous QEMU armed one: does not return. */
    cpr_rollback_failed(CPR_FAILED_INCOMING, ret, local_err);
"""

INCOMING_DONE = """\
    /* The VM runs here (or may be continued): no rollback any more. */
    cpr_rollback_done();
"""


class Edit:
    """One change to one QEMU file; @done is in the file once it is made."""

    def __init__(self, name, path, done, func):
        self.name, self.path, self.done, self.func = name, path, done, func


def replace_once(text, old, new):
    if text.count(old) != 1:
        raise ValueError("%r is not there exactly once" % old[:40])
    return text.replace(old, new)


def insert_before(text, anchor, new):
    i = text.index(anchor)
    return text[:i] + new + text[i:]


def insert_after_line(text, anchor, new):
    i = text.index(anchor)
    j = text.index("\n", i) + 1
    return text[:j] + new + text[j:]


def edit_meson(t):
    # After the block that ends with libvduse's get_variable().
    i = t.index("libvduse_proj.get_variable('libvduse_dep')")
    j = t.index("endif\n", i) + len("endif\n")
    t = t[:j] + MESON_DEP + t[j:]
    return insert_after_line(t, "summary_info += {'libudev':", MESON_SUMMARY)


def edit_migration_meson(t):
    line = "  'cpr.c',\n"
    if t.count(line) != 1:
        raise ValueError("'cpr.c' is not listed exactly once")
    return t.replace(line, "") + MIGRATION_MESON


def edit_vfio(t):
    t = insert_after_line(t, '#include "migration/cpr.h"',
                          '#include "migration/cpr-cprs.h"\n')
    t = insert_before(t, "typedef struct CprVFIODevice {",
                      "#ifndef CONFIG_CPRSTATE\n")
    return insert_before(t, "static bool vfio_cpr_supported(", VFIO_ELSE)


def edit_cpr_exec_unpersist(t):
    # In cpr_exec_unpersist_state(), the only assert after the unsetenv.
    old = "    g_unsetenv(CPR_EXEC_STATE_NAME);\n    assert(val);\n"
    return replace_once(t, old, old[:old.index("    assert")] + UNPERSIST)


def edit_cpr_exec_exec(t):
    t = insert_after_line(t, '#include "migration/cpr.h"',
                          '#include "migration/cpr-cprs.h"\n')
    t = insert_before(t, "    execvp(argv[0], argv);\n", CPR_EXEC_CALL)
    return replace_once(t, CPR_EXEC_ERROR, CPR_EXEC_ERROR + "#endif\n")


def edit_migration(t):
    t = insert_after_line(t, '#include "migration/cpr.h"',
                          '#include "migration/cpr-cprs.h"\n')
    fail = ("fail:\n"
            "    migrate_set_state(&mis->state, MIGRATION_STATUS_ACTIVE,\n"
            "                      MIGRATION_STATUS_FAILED);\n")
    t = replace_once(t, fail, "fail:\n" + INCOMING_FAILED +
                     fail[len("fail:\n"):])
    done = '    trace_vmstate_downtime_checkpoint("dst-precopy-bh-vm-started");\n'
    return replace_once(t, done, INCOMING_DONE + done)


def edit_qapi(t):
    anchor = "##\n# @MigrationParameter:\n"
    return replace_once(t, anchor, QAPI.lstrip("\n") + "\n" + anchor)


EDITS = [
    Edit("option", "meson_options.txt", "option('cprstate'",
         lambda t: insert_before(t, "option('libvduse'", OPTION)),
    Edit("buildoptions", "scripts/meson-buildoptions.sh",
         "-Dcprstate=enabled",
         lambda t: insert_before(
             insert_before(t, "  printf \"%s\\n\" '  crypto-afalg",
                           BUILDOPT_HELP),
             "    --enable-crypto-afalg)", BUILDOPT_CASE)),
    Edit("dependency", "meson.build", "dependency('libcprstate'",
         edit_meson),
    Edit("migration-meson", "migration/meson.build", "cpr-cprs.c",
         edit_migration_meson),
    Edit("vfio", "hw/vfio/cpr-iommufd.c", "CONFIG_CPRSTATE", edit_vfio),
    Edit("unpersist", "migration/cpr-exec.c",
         "cpr_state_save() failed before", edit_cpr_exec_unpersist),
    Edit("qapi", "qapi/migration.json", "query-cpr-rollback", edit_qapi),
    Edit("exec", "migration/cpr-exec.c", "cpr_cprs_exec",
         edit_cpr_exec_exec),
    Edit("incoming", "migration/migration.c", "cpr_rollback_failed",
         edit_migration),
    Edit("qtest-meson", "tests/qtest/meson.build", "cpr-failsafe-tests.c",
         lambda t: insert_after_line(t, "  'migration/cpr-tests.c',",
                                     "  'migration/cpr-failsafe-tests.c',\n")),
    Edit("qtest-header", "tests/qtest/migration/framework.h",
         "migration_test_add_cpr_failsafe",
         lambda t: insert_after_line(
             t, "void migration_test_add_cpr(MigrationTestEnv *env);",
             "void migration_test_add_cpr_failsafe(MigrationTestEnv *env);\n")),
    Edit("qtest-main", "tests/qtest/migration-test.c",
         "migration_test_add_cpr_failsafe",
         lambda t: insert_after_line(t, "    migration_test_add_cpr(env);",
                                     "    migration_test_add_cpr_failsafe(env);\n")),
]

# The new files: where they go in QEMU, where they are here.
NEW_FILES = {
    "migration/cpr-cprs.c": "migration/cpr-cprs.c",
    "include/migration/cpr-cprs.h": "include/migration/cpr-cprs.h",
    "tests/qtest/migration/cpr-failsafe-tests.c":
        "tests/qtest/migration/cpr-failsafe-tests.c",
}

SIGNER = "libcprstate maintainers <maintainers@libcprstate.invalid>"
DATE = "2026-12-04T00:00:00Z"


class Patch:
    def __init__(self, subject, body, edits=(), new=()):
        self.subject, self.body = subject, body
        self.edits, self.new = list(edits), list(new)


SERIES = [
    Patch("meson: add the cprstate option and the libcprstate dependency",
          """\
libcprstate keeps the CPR state of a live update (the fds, vfio device
records and RAM block maps that cross cpr-exec or cpr-transfer) as a
versioned, checksummed CPR State Arena, and makes cpr-exec fail-safe:
the next QEMU is inspected before the VM stops, and a new QEMU that
fails before its VM runs hands the VM back to the previous one.

Add the 'cprstate' feature option (--enable-cprstate, default auto)
and find the library: the installed one through pkg-config first,
else a libcprstate source tree in subprojects/libcprstate.  Nothing
uses it yet: CONFIG_CPRSTATE is only defined.
""", edits=["option", "buildoptions", "dependency"]),
    Patch("migration: keep the CPR state in libcprstate",
          """\
With CONFIG_CPRSTATE, build migration/cpr-cprs.c instead of
migration/cpr.c: the same include/migration/cpr.h API on libcprstate's
state.  cpr-exec writes a sealed memfd, cpr-transfer the cpr channel;
a QCPR stream of a QEMU without libcprstate is still loaded.

Before the VM stops, cpr_state_save() inspects the program of
cpr-exec-command (or the cpr-transfer peer) and writes what it reads:
an arena for a QEMU with libcprstate (its ELF note says what it
reads), the QCPR stream of QEMU 10.2 in the vfio subsection form of
its build for a stock QEMU, or a refusal with the VM still running.
QEMU_CPR_STATE_FORMAT overrides the choice.  For a target that
honours it, a rollback is armed: a sealed copy of the state with this
QEMU's executable (as an fd) and command line.

The vfio device records of hw/vfio/cpr-iommufd.c move into the state;
cpr_exec_unpersist_state() copes with a save that failed before it
persisted anything; query-cpr-rollback tells whether this QEMU was
started by a rollback, and why.

The new files are GPL-2.0-or-later here; they come from libcprstate's
LGPL-2.1-or-later integration sources, which the LGPL-2.1 (section 3)
allows to be conveyed under the GPL.
""", edits=["migration-meson", "vfio", "unpersist", "qapi"],
          new=["migration/cpr-cprs.c", "include/migration/cpr-cprs.h"]),
    Patch("migration/cpr-exec: exec the program that was inspected",
          """\
Exec cpr-exec-command through the file descriptor that pre-flight
inspected (execveat with AT_EMPTY_PATH), after checking that its path
still names that file, unchanged: what runs is what was judged able to
load the state.  Without CONFIG_CPRSTATE, execvp() as before.
""", edits=["exec"]),
    Patch("migration: roll back a failed incoming cpr-exec",
          """\
A new QEMU whose incoming migration fails after a cpr-exec used to
exit, and the guest, whose RAM only it held, was lost.  If the
previous QEMU armed a rollback, hand the state back to it instead: it
is exec'd again (same pid, the RAM memfds intact) with its own command
line and the migration stream, and resumes the VM; query-cpr-rollback
and its stderr say what failed.  Once the VM runs, the rollback is
dropped.  Without CONFIG_CPRSTATE both calls are empty.
""", edits=["incoming"]),
    Patch("tests/qtest/migration: cpr-exec pre-flight and rollback",
          """\
Two cases next to /migration/mode/exec, skipped by a QEMU built
without libcprstate (no query-cpr-rollback) and, like it, run with KVM
only:

- preflight-refused: cpr-exec-command names no file; migrate fails at
  once with the reason, the VM runs on;
- rollback: the new QEMU lacks a device of the source, its incoming
  migration fails; the previous QEMU is exec'd again, reports the
  failure in query-cpr-rollback, loads the stream, and the guest runs
  with its RAM intact.

The new file is GPL-2.0-or-later here, from libcprstate's
LGPL-2.1-or-later sources (LGPL-2.1 section 3).
""", edits=["qtest-meson", "qtest-header", "qtest-main"],
          new=["tests/qtest/migration/cpr-failsafe-tests.c"]),
]

# What a copy of libcprstate needs to build as a subproject.
LIB_PARTS = ["meson.build", "meson_options.txt", "LICENSE", "format",
             "libcprstate", "tools", "tests", "fuzz"]


def new_file_text(rel):
    """A new file as QEMU gets it: under the GPL-2.0-or-later there."""
    with open(os.path.join(HERE, NEW_FILES[rel])) as f:
        text = f.read()
    old = "SPDX-License-Identifier: LGPL-2.1-or-later"
    if old not in text:
        sys.exit("%s: no SPDX line" % NEW_FILES[rel])
    return text.replace(old, "SPDX-License-Identifier: GPL-2.0-or-later", 1)


def plan_edits(src, names):
    """The new text of every file the edits @names change, or exit."""
    texts, changed = {}, []
    by_name = {e.name: e for e in EDITS}
    for name in names:
        e = by_name[name]
        path = os.path.join(src, e.path)
        if path not in texts:
            with open(path) as f:
                texts[path] = f.read()
        if e.done in texts[path]:
            print("already applied: %s (%s)" % (e.path, e.name))
            continue
        try:
            texts[path] = e.func(texts[path])
        except ValueError as err:
            sys.exit("%s: anchor not found (%s); is this QEMU 10.2?"
                     % (e.path, err))
        if path not in changed:
            changed.append(path)
        print("edit: %s (%s)" % (e.path, e.name))
    return [(path, texts[path]) for path in changed]


def write_changes(src, planned, new):
    for path, text in planned:
        with open(path, "w") as f:
            f.write(text)
    for rel in new:
        dst = os.path.join(src, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "w") as f:
            f.write(new_file_text(rel))


def git(args, cwd, env=None, stdin=None):
    return subprocess.run(["git"] + args, cwd=cwd, env=env, input=stdin,
                          check=True, stdout=subprocess.PIPE,
                          universal_newlines=True).stdout


def format_patch(outdir, src, base):
    """Commit SERIES on @base in a scratch worktree; format-patch it."""
    outdir = os.path.abspath(outdir)
    base = git(["rev-parse", "--verify", base + "^{commit}"], src).strip()
    env = dict(os.environ)
    name, email = SIGNER[:-1].split(" <")
    for who in ("AUTHOR", "COMMITTER"):
        env["GIT_%s_NAME" % who] = name
        env["GIT_%s_EMAIL" % who] = email
        env["GIT_%s_DATE" % who] = DATE
    tmp = tempfile.mkdtemp(prefix="cprs-series-")
    tree = os.path.join(tmp, "qemu")
    git(["worktree", "add", "--quiet", "--detach", tree, base], src)
    try:
        for p in SERIES:
            planned = plan_edits(tree, p.edits)
            if len(planned) + len(p.new) == 0:
                sys.exit("patch '%s' changes nothing" % p.subject)
            write_changes(tree, planned, p.new)
            git(["add", "--"] + [os.path.relpath(path, tree)
                                 for path, _ in planned] + p.new, tree)
            msg = "%s\n\n%s\nSigned-off-by: %s\n" % (p.subject, p.body,
                                                      SIGNER)
            git(["-c", "commit.gpgsign=false", "commit", "--quiet",
                 "--no-verify", "-F", "-"], tree, env=env, stdin=msg)
        os.makedirs(outdir, exist_ok=True)
        for old in os.listdir(outdir):
            if old.endswith(".patch"):
                os.unlink(os.path.join(outdir, old))
        out = git(["-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false",
                   "-c", "diff.renames=true", "format-patch", "--zero-commit",
                   "--no-signature", "--full-index", "--base=" + base,
                   "-o", outdir, base + "..HEAD"], tree)
        for line in out.split():
            print("wrote: %s" % os.path.relpath(line, outdir))
    finally:
        git(["worktree", "remove", "--force", tree], src)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("qemu_src")
    ap.add_argument("--check", action="store_true",
                    help="report only, write nothing")
    ap.add_argument("--format-patch", metavar="OUTDIR",
                    help="write the patch series into OUTDIR")
    ap.add_argument("--base", default="HEAD",
                    help="with --format-patch: the QEMU commit (HEAD)")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--copy", action="store_true",
                     help="copy libcprstate instead of symlinking it")
    how.add_argument("--wrap", action="store_true",
                     help="install subprojects/libcprstate.wrap instead")
    how.add_argument("--no-subproject", action="store_true",
                     help="no subproject: build against the installed one")
    a = ap.parse_args()
    src = os.path.abspath(a.qemu_src)
    if a.format_patch:
        return format_patch(a.format_patch, src, a.base)

    # Compute every edit first: all anchors must be there.
    planned = plan_edits(src, [e.name for e in EDITS])
    for rel in NEW_FILES:
        print("add: %s" % rel)
    sub = os.path.join(src, "subprojects", "libcprstate")
    print("subproject: %s" % ("none" if a.no_subproject else
                              "wrap file" if a.wrap else
                              "copy of " + REPO if a.copy else
                              "symlink to " + REPO))
    if a.check:
        return 0

    write_changes(src, planned, NEW_FILES)
    if a.no_subproject:
        return 0
    if a.wrap:
        shutil.copyfile(os.path.join(HERE, "subprojects", "libcprstate.wrap"),
                        os.path.join(src, "subprojects", "libcprstate.wrap"))
    elif not os.path.lexists(sub):
        if a.copy:
            os.mkdir(sub)
            for part in LIB_PARTS:
                p = os.path.join(REPO, part)
                if os.path.isdir(p):
                    shutil.copytree(p, os.path.join(sub, part))
                else:
                    shutil.copyfile(p, os.path.join(sub, part))
        else:
            os.symlink(REPO, sub)
    return 0


if __name__ == "__main__":
    sys.exit(main())
