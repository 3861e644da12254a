/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-target.c - cprdump target [--policy P] [--mode M] BINARY [STATE]
 * (spec/fail-safe.rst F2, F3, F6): what BINARY reads, by libcprstate's
 * pre-flight and by cprdump's own reading of its capability note with
 * libelf (the two must agree), and whether STATE can be loaded by it.
 * Exit: 0 yes, 3 no (the live update would be refused), 4 uncertain (a
 * dual stream or a QCPR stream would be written, and the binary is not
 * known to read it), 2 STATE is corrupt, 1 usage, I/O, or the two
 * readings disagree.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "proc.h"
#include "render.h"

enum {
    TARGET_EXIT_LOADABLE = 0,
    TARGET_EXIT_OTHER = 1,
    TARGET_EXIT_CORRUPT = 2,
    TARGET_EXIT_REFUSED = 3,
    TARGET_EXIT_UNCERTAIN = 4,
};

#define MAX_NOTES 8

static void forms_str(char *buf, size_t size, uint32_t forms)
{
    snprintf(buf, size, "%s%s%s%s",
             forms & CPRS_CAPS_FORM_BIT(CPRS_LEGACY_VFIO_FULL) ? " full" : "",
             forms & CPRS_CAPS_FORM_BIT(CPRS_LEGACY_VFIO_STUB) ? " stub" : "",
             forms & CPRS_CAPS_FORM_BIT(CPRS_LEGACY_VFIO_NONE) ? " none" : "",
             forms & CPRS_CAPS_FORMS_KNOWN ? "" : " (none)");
}

static void caps_line(FILE *f, const char *label, const InspectCaps *c)
{
    char forms[64];

    forms_str(forms, sizeof(forms), c->legacy_forms);
    fprintf(f, "  %-18s note %u.%u, %s; arena %u.%u%s; modes%s%s; QCPR "
            "forms%s; %s%s\n", label, c->version_major, c->version_minor,
            tx(c->producer), c->arena_major, c->arena_minor,
            c->arena_incompat & CPRS_INCOMPAT_ZSTD ? " with zstd" : "",
            c->modes & CPRS_CAPS_MODE_BIT(CPRS_MODE_EXEC) ? " exec" : "",
            c->modes & CPRS_CAPS_MODE_BIT(CPRS_MODE_TRANSFER) ?
            " transfer" : "", forms,
            c->flags & CPRS_CAPS_F_ROLLBACK ? "rollback" : "no rollback",
            c->flags & CPRS_CAPS_F_DUAL ? ", dual" : "");
}

/* Does libelf's reading of the note say what the library's does? */
static bool caps_agree(const CprsTargetInfo *ti, const InspectCaps *c)
{
    return c->lib_version == ti->lib_version &&
           c->arena_major == ti->arena_major &&
           c->arena_minor == ti->arena_minor &&
           c->arena_incompat == ti->arena_incompat &&
           c->modes == ti->modes && c->legacy_forms == ti->legacy_forms &&
           c->flags == ti->caps && !strcmp(c->producer, ti->producer);
}

/*
 * The notes of @path with libelf; <0 if it cannot be read as ELF.  The
 * path is opened only if it is a regular file (never a FIFO swapped in
 * since the library looked: that open would block), and it must be the
 * very file the library inspected (@dev, @ino: the binary's, or its
 * libcprstate's): else -ESTALE, the two readings would not be of one
 * file.
 */
static int notes_of(const char *path, uint64_t dev, uint64_t ino,
                    InspectCaps *caps, size_t *n)
{
    struct stat st;
    int fd, ret;

    *n = 0;
    ret = open_regular(path, &fd, &st);
    if (ret) {
        return ret < 0 ? ret : -EBADMSG;
    }
    /* The very file the library inspected, or a stale answer. */
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_dev != dev ||
        (uint64_t)st.st_ino != ino) {
        close(fd);
        return S_ISREG(st.st_mode) ? -ESTALE : -EBADMSG;
    }
    ret = elf_cprs_caps(fd, caps, MAX_NOTES, n);
    close(fd);
    return ret;
}

/* The counts a plan needs, from a state read by source_load(). */
static void state_needs(const Source *s, CprsStateInfo *si)
{
    CprsArenaInfo ai;
    CprsDevStateInfo di;
    uint32_t i;

    *si = CPRS_OPTS(CprsStateInfo);
    si->format = s->dual ? CPRS_FORMAT_DUAL : (uint32_t)s->format;
    si->mode = src_mode(s);
    si->fd_count = src_fd_count(s);
    if (s->reader) {
        ai = CPRS_OPTS(CprsArenaInfo);
        cprs_reader_get_info(s->reader, &ai);
        si->generation = ai.generation;
    }
    si->vfio_count = src_vfio_count(s);
    if (s->reader) {
        si->ramblock_count = cprs_reader_ramblock_count(s->reader);
        si->devstate_count = cprs_reader_devstate_count(s->reader);
        for (i = 0; i < si->devstate_count; i++) {
            di = CPRS_OPTS(CprsDevStateInfo);
            if (!cprs_reader_devstate_get(s->reader, i, &di) &&
                (di.flags & CPRS_DEVSTATE_F_ZSTD)) {
                si->devstate_zstd++;
            }
        }
    }
}

static const char *kind_str(const CprsTargetInfo *ti, char *buf,
                            size_t size)
{
    if (ti->flags & CPRS_TARGET_F_SCRIPT) {
        snprintf(buf, size, "a #! script (#!%s)", tx(ti->interp));
    } else if (ti->flags & CPRS_TARGET_F_ELF) {
        snprintf(buf, size, "ELF, %s", ti->flags & CPRS_TARGET_F_DYNAMIC ?
                 "dynamically linked" : "statically linked");
    } else if (ti->flags & CPRS_TARGET_F_UNREADABLE) {
        snprintf(buf, size, "executable, not readable");
    } else {
        snprintf(buf, size, "not ELF, no #!");
    }
    return buf;
}

static int target(const Options *o, const char *binary, const char *state)
{
    CprsPlanOpts po = CPRS_OPTS(CprsPlanOpts, .policy = o->policy);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsTargetInfo ti = CPRS_OPTS(CprsTargetInfo);
    CprsStateInfo si = CPRS_OPTS(CprsStateInfo);
    CprsPlan plan = CPRS_OPTS(CprsPlan);
    InspectCaps caps[MAX_NOTES];
    CprsTarget *t = NULL;
    Source src;
    bool have_state = false, agree = true;
    char text[512], kind[160];
    const char *note_file;
    size_t n = 0, i;
    uint32_t mode;
    int ret, lret, exit_code;

    ret = cprs_target_open_path(binary, NULL, &diag, &t);
    if (ret) {
        cprs_diag_format(&diag, text, sizeof(text));
        cprdump_err("%s: %s: %s", tx(binary), strerror(-ret), diag.reason);
        cprdump_err("%s: a cpr-exec naming it would be refused before the "
                    "VM stops", tx(binary));
        return ret == -ENOMEM ? TARGET_EXIT_OTHER : TARGET_EXIT_REFUSED;
    }
    cprs_target_get_info(t, &ti);
    if (state) {
        memset(&src, 0, sizeof(src));
        ret = source_load(state, -1, o, &src);
        if (!ret && src.err) {
            source_report(&src, src.err, &src.diag);
            ret = src.err;
        }
        if (!ret) {
            ret = source_verify(&src, &diag);
            if (ret) {
                cprdump_err("%s: %s", tx(src.label), cprs_strerror(ret));
            }
        }
        if (ret) {
            source_free(&src);
            cprs_target_free(t);
            return ret == -EBADMSG || ret == -E2BIG ||
                   ret == -EPROTONOSUPPORT ? TARGET_EXIT_CORRUPT :
                   TARGET_EXIT_OTHER;
        }
        state_needs(&src, &si);
        have_state = true;
    }

    printf("Target: %s\n", tx(binary));
    printf("  Runs:             %s (%s)\n", tx(ti.real_path),
           kind_str(&ti, kind, sizeof(kind)));
    printf("  Class:            %s\n", cprs_target_class_name(ti.klass));
    printf("  Why:              %s\n", ti.reason);
    /* cprdump's own reading of the note, with libelf (F3). */
    note_file = ti.lib_path ? ti.lib_path : ti.real_path;
    lret = (ti.flags & CPRS_TARGET_F_ELF) ?
           notes_of(note_file, ti.lib_path ? ti.lib_dev : ti.dev,
                    ti.lib_path ? ti.lib_ino : ti.ino, caps, &n) : -ENOENT;
    if (ti.lib_path) {
        printf("  Note read from:   %s\n", tx(ti.lib_path));
    }
    for (i = 0; i < n; i++) {
        caps_line(stdout, "Note (libelf):", &caps[i]);
        if (ti.klass == CPRS_TARGET_LIBCPRSTATE &&
            !caps_agree(&ti, &caps[i])) {
            agree = false;
        }
    }
    if (!n) {
        printf("  Note (libelf):    none%s\n", lret == -ESTALE ?
               " (the file changed since libcprstate read it)" :
               lret == -E2BIG ? " (more program headers or sections than "
               "cprdump reads)" : lret && lret != -ENOENT ?
               " (not readable as ELF)" : "");
    }
    if (ti.klass == CPRS_TARGET_LIBCPRSTATE && !n) {
        agree = false;
    }
    if (!agree) {
        printf("  DISAGREEMENT: libelf and libcprstate read the note "
               "differently\n");
    }
    if (ti.klass == CPRS_TARGET_STOCK_QEMU) {
        printf("  Reads:            QEMU's QCPR stream, %s vfio form\n",
               legacy_form_name(ti.stock_form));
    }
    if (have_state) {
        printf("State: %s\n", tx(src.label));
        printf("  Holds:            %s, generation %" PRIu64 ", %u fds, %u "
               "vfio devices, %u RAM blocks, %u payloads\n",
               cprs_format_name(si.format), si.generation, si.fd_count,
               si.vfio_count, si.ramblock_count, si.devstate_count);
    }
    mode = o->mode ? o->mode : have_state ? si.mode : CPRS_MODE_EXEC;
    po.mode = mode;
    ret = cprs_target_plan(t, have_state ? &si : NULL, &po, &diag, &plan);
    if (ret) {
        printf("Plan (%s): REFUSED: %s\n", cprs_mode_name(mode),
               diag.reason);
        exit_code = TARGET_EXIT_REFUSED;
    } else {
        printf("Plan (%s): %s%s%s%s: %s\n", cprs_mode_name(mode),
               cprs_format_name(plan.format),
               plan.format != CPRS_FORMAT_ARENA ? ", vfio form " : "",
               plan.format != CPRS_FORMAT_ARENA ?
               legacy_form_name(plan.vfio_form) : "",
               plan.flags & CPRS_PLAN_F_ROLLBACK ? ", rollback armed" : "",
               plan.reason);
        exit_code = ti.klass == CPRS_TARGET_UNCERTAIN ?
                    TARGET_EXIT_UNCERTAIN : TARGET_EXIT_LOADABLE;
    }
    printf("Verdict: %s\n", exit_code == TARGET_EXIT_LOADABLE ?
           (have_state ? "loadable" : "reads what libcprstate writes") :
           exit_code == TARGET_EXIT_REFUSED ? "not loadable: the live "
           "update would be refused" : "uncertain: not known to read it; "
           "the stream written is one every reader accepts");
    fflush(stdout);
    if (have_state) {
        source_free(&src);
    }
    cprs_target_free(t);
    if (!agree) {
        cprdump_err("%s: libelf and libcprstate disagree about the "
                    "capability note", tx(binary));
        return TARGET_EXIT_OTHER;
    }
    return exit_code;
}

static int target_run(const Options *o)
{
    if (o->nargs < 1 || o->nargs > 2) {
        return usage_error(TARGET_EXIT_OTHER, "target takes BINARY and an "
                           "optional STATE");
    }
    return target(o, o->args[0], o->nargs == 2 ? o->args[1] : NULL);
}

const Command cmd_target = {
    .name = "target",
    .run = target_run,
    .options = OPT_POLICY | OPT_MODE | OPT_QUIET | OPT_MAX_SIZE,
    .usage_exit = TARGET_EXIT_OTHER,
    .synopsis = "[--policy P] [--mode exec|transfer] BINARY [STATE]",
    .summary = "what BINARY reads (pre-flight); can it load STATE",
};
