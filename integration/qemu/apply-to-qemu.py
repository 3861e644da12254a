#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Apply the libcprstate integration to a QEMU source tree (10.2 era).

    apply-to-qemu.py [--check] [--copy | --wrap] QEMU_SRC

Adds migration/cpr-cprs.c and include/migration/cpr-cprs.h, makes
subprojects/libcprstate a symlink to this libcprstate checkout (--copy:
a copy of its sources; --wrap: the wrap file of subprojects/ instead),
and makes the small edits that spec/qemu-integration.rst describes, in
meson_options.txt, scripts/meson-buildoptions.sh, meson.build,
migration/meson.build, hw/vfio/cpr-iommufd.c and migration/cpr-exec.c.
Every edit is found by an anchor; a missing anchor stops the script
before anything is written.  Running it twice changes nothing.
--check only reports what would be done.

It does not build QEMU: configure and build as usual, e.g.
    configure ... -Dcprstate=enabled && make
"""

import argparse
import os
import shutil
import sys

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
# libcprstate: the CPR state (migration/cpr-cprs.c instead of cpr.c)
cprstate = not_found
if host_os == 'linux' and have_system
  cprstate_werror = 'werror=' + get_option('werror').to_string()
  cprstate_proj = subproject('libcprstate', required: get_option('cprstate'),
                             default_options: ['tests=disabled',
                                               cprstate_werror])
  if cprstate_proj.found()
    cprstate = cprstate_proj.get_variable('libcprstate_dep')
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


class Edit:
    def __init__(self, path, done, func):
        self.path, self.done, self.func = path, done, func


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


def edit_cpr_exec(t):
    start = t.index("void cpr_exec_unpersist_state(void)")
    i = t.index("    assert(val);\n", start)
    return t[:i] + UNPERSIST + t[i + len("    assert(val);\n"):]


EDITS = [
    Edit("meson_options.txt", "option('cprstate'",
         lambda t: insert_before(t, "option('libvduse'", OPTION)),
    Edit("scripts/meson-buildoptions.sh", "-Dcprstate=enabled",
         lambda t: insert_before(
             insert_before(t, "  printf \"%s\\n\" '  crypto-afalg",
                           BUILDOPT_HELP),
             "    --enable-crypto-afalg)", BUILDOPT_CASE)),
    Edit("meson.build", "subproject('libcprstate'", edit_meson),
    Edit("migration/meson.build", "cpr-cprs.c", edit_migration_meson),
    Edit("hw/vfio/cpr-iommufd.c", "CONFIG_CPRSTATE", edit_vfio),
    Edit("migration/cpr-exec.c", "cpr_state_save() failed before",
         edit_cpr_exec),
]

NEW_FILES = ["migration/cpr-cprs.c", "include/migration/cpr-cprs.h"]

# What a copy of libcprstate needs to build as a subproject.
LIB_PARTS = ["meson.build", "meson_options.txt", "LICENSE", "format",
             "libcprstate", "tools", "tests", "fuzz"]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("qemu_src")
    ap.add_argument("--check", action="store_true",
                    help="report only, write nothing")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--copy", action="store_true",
                     help="copy libcprstate instead of symlinking it")
    how.add_argument("--wrap", action="store_true",
                     help="install subprojects/libcprstate.wrap instead")
    a = ap.parse_args()
    src = os.path.abspath(a.qemu_src)

    # Compute every edit first: all anchors must be there.
    planned = []
    for e in EDITS:
        path = os.path.join(src, e.path)
        with open(path) as f:
            text = f.read()
        if e.done in text:
            print("already applied: %s" % e.path)
            continue
        try:
            planned.append((path, e.func(text)))
        except ValueError as err:
            sys.exit("%s: anchor not found (%s); is this QEMU 10.2?"
                     % (e.path, err))
        print("edit: %s" % e.path)
    for rel in NEW_FILES:
        print("add: %s" % rel)
    sub = os.path.join(src, "subprojects", "libcprstate")
    print("subproject: %s" % ("wrap file" if a.wrap else
                              "copy of " + REPO if a.copy else
                              "symlink to " + REPO))
    if a.check:
        return 0

    for path, text in planned:
        with open(path, "w") as f:
            f.write(text)
    for rel in NEW_FILES:
        shutil.copyfile(os.path.join(HERE, rel), os.path.join(src, rel))
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
