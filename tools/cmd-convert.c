/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * convert.c - "cprdump convert --to arena|legacy SOURCE OUTPUT", through
 * the library's legacy conversion API: a QEMU "QCPR" stream becomes an
 * arena (records in stream order, the fd numbers of cpr-exec kept) and an
 * arena becomes the stream an older QEMU reads (a downgrade: only fd and
 * vfio records exist there).  A stream converted to an arena and back is
 * byte-identical.  Converting to the same format re-encodes a legacy
 * stream canonically and copies an arena unchanged, after verifying it.
 *
 * OUTPUT is written to a temporary file next to it and renamed into
 * place, so it is never left half-written; "-" writes to stdout (not a
 * terminal).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "render.h"

/* Exit code of a usage error, in this family of subcommands. */
#define USAGE CPRDUMP_EXIT_ERROR

/* Write @buf to @path atomically (temporary file, fsync, rename). */
static int write_output(const Options *o, const char *path,
                        const void *buf, size_t len)
{
    char tmp[4200], dir[4200];
    struct stat st;
    mode_t mask;
    int fd, ret;

    if (!strcmp(path, "-")) {
        if (isatty(STDOUT_FILENO)) {
            cprdump_err("convert: refusing to write binary data to a "
                        "terminal; give an OUTPUT file or redirect stdout");
            return -EINVAL;
        }
        ret = cprdump_write_all(STDOUT_FILENO, buf, len);
        if (ret) {
            cprdump_err("cannot write to standard output: %s",
                        strerror(-ret));
        }
        return ret;
    }
    if (!o->force && !lstat(path, &st)) {
        cprdump_err("convert: %s exists; use --force to replace it",
                    tx(path));
        return -EEXIST;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    snprintf(tmp, sizeof(tmp), "%s/.cprdump-XXXXXX", dirname(dir));
    fd = mkstemp(tmp);
    if (fd < 0) {
        ret = -errno;
        cprdump_err("cannot create a file next to %s: %s", tx(path),
                    strerror(-ret));
        return ret;
    }
    /* mkstemp() makes 0600; give the usual 0666 & ~umask. */
    mask = umask(0);
    umask(mask);
    ret = cprdump_write_all(fd, buf, len);
    if (!ret && (fchmod(fd, 0666 & ~mask) || fsync(fd))) {
        ret = -errno;
    }
    if (close(fd) && !ret) {
        ret = -errno;
    }
    if (!ret && rename(tmp, path)) {
        ret = -errno;
    }
    if (ret) {
        unlink(tmp);
        cprdump_err("cannot write %s: %s", tx(path), strerror(-ret));
    }
    return ret;
}

static void diag_error(const char *what, int err, const CprsDiag *diag)
{
    char text[300];

    if (diag->reason && diag->reason[0]) {
        cprs_diag_format(diag, text, sizeof(text));
        cprdump_err("convert: %s: %s: %s", what, cprs_strerror(err), text);
    } else {
        cprdump_err("convert: %s: %s", what, cprs_strerror(err));
    }
}

/* Legacy stream -> arena, with the library's conversion. */
static int legacy_to_arena(Source *s, void **ret_buf, size_t *ret_len)
{
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts,
                                  .flags = CPRS_WRITER_F_REPRODUCIBLE,
                                  .producer = "cprdump convert");
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsWriter *w;
    int ret;

    ret = cprs_legacy_to_arena(s->legacy, &wo, &diag, &w);
    if (ret) {
        diag_error("the stream does not fit an arena", ret, &diag);
        return ret;
    }
    ret = cprs_writer_finish_buffer(w, ret_buf, ret_len);
    cprs_writer_free(w);
    if (ret) {
        cprdump_err("convert: cannot lay out the arena: %s",
                    cprs_strerror(ret));
    }
    return ret;
}

/* Arena or legacy -> legacy stream, in the mode and form asked for. */
static int to_legacy(const Options *o, Source *s, void **ret_buf,
                     size_t *ret_len)
{
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts, .mode = o->mode,
                                  .vfio_form = o->vfio_form);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsLegacy *lg = s->legacy;
    uint32_t nram = 0, nds = 0;
    int ret;

    if (s->reader) {
        ret = cprs_legacy_from_reader(s->reader, &lo, &diag, &lg);
        if (ret == -EINVAL && (o->mode == CPRS_MODE_EXEC ||
                               (!o->mode && src_mode(s) ==
                                CPRS_MODE_EXEC))) {
            cprdump_err("convert: a cpr-exec stream needs the fd number of "
                        "every record, and this arena lacks some (or its "
                        "vfio records do not fit --vfio-form)");
            return ret;
        }
        if (ret) {
            diag_error("cannot build the stream", ret, &diag);
            return ret;
        }
        nram = cprs_reader_ramblock_count(s->reader);
        nds = cprs_reader_devstate_count(s->reader);
    }
    ret = cprs_legacy_encode(lg, &lo, ret_buf, ret_len);
    if (lg != s->legacy) {
        cprs_legacy_free(lg);
    }
    if (ret) {
        cprdump_err("convert: cannot encode the stream: %s%s",
                    cprs_strerror(ret), ret == -EINVAL ? " (a cpr-exec "
                    "record without an fd number, or vfio records with "
                    "--vfio-form stub or none)" : "");
        return ret;
    }
    if (nram || nds) {
        cprdump_note("%s: a QCPR stream has no place for RAM block maps, "
                     "device state or fd identities: %u RAM block%s and %u "
                     "payload%s left out", s->label, nram, nram == 1 ? "" :
                     "s", nds, nds == 1 ? "" : "s");
    }
    return 0;
}

static int convert_run(const Options *o)
{
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    SourceArg *in;
    const char *out;
    bool to_arena;
    Source s;
    void *buf = NULL;
    size_t len = 0;
    int ret;

    /* The last operand is OUTPUT, whatever --pid says. */
    ret = o->nargs ? source_args(o, 0, o->nargs - 1, &in) : 0;
    if (ret < 0) {
        return usage_error(USAGE, NULL);
    }
    if (ret != 1) {
        free(ret ? in : NULL);
        return usage_error(USAGE, "convert takes SOURCE (or --pid PID) and "
                           "OUTPUT");
    }
    out = o->args[o->nargs - 1];
    if (!o->to || (strcmp(o->to, "arena") && strcmp(o->to, "legacy"))) {
        free(in);
        return usage_error(USAGE, "convert: give --to arena or --to "
                           "legacy");
    }
    to_arena = !strcmp(o->to, "arena");
    if (to_arena && (o->seen & (OPT_MODE | OPT_VFIO_FORM))) {
        free(in);
        return usage_error(USAGE, "convert: --mode and --vfio-form apply "
                           "to --to legacy; an arena keeps the stream's "
                           "mode");
    }
    ret = source_load(in->path, in->pid, o, &s);
    free(in);
    if (ret) {
        source_free(&s);
        return cprdump_exit_code(ret);
    }
    /* Only a valid state is converted (--lenient: valid to QEMU). */
    ret = source_verify(&s, &diag);
    if (ret) {
        source_report(&s, ret, &diag);
        source_free(&s);
        return cprdump_exit_code(ret);
    }
    if (to_arena && s.reader) {
        cprdump_note("%s is an arena already: copied unchanged",
                     s.label);
        ret = write_output(o, out, s.bytes, s.size);
    } else {
        ret = to_arena ? legacy_to_arena(&s, &buf, &len) :
              to_legacy(o, &s, &buf, &len);
        if (!ret) {
            ret = write_output(o, out, buf, len);
        }
        if (!ret) {
            cprdump_note("wrote %s, %zu bytes: %s with %u fd record(s) "
                         "and %u vfio device(s)", tx(out), len,
                         to_arena ? "an arena" : "a QCPR stream",
                         src_fd_count(&s), src_vfio_count(&s));
        }
        free(buf);
    }
    source_free(&s);
    if (ret == -EBADMSG || ret == -EPROTONOSUPPORT) {
        return cprdump_exit_code(ret);
    }
    return ret ? CPRDUMP_EXIT_ERROR : CPRDUMP_EXIT_OK;
}

const Command cmd_convert = {
    .name = "convert",
    .run = convert_run,
    .options = OPT_PID | OPT_CORE_INDEX | OPT_LENIENT | OPT_QUIET |
               OPT_FORCE | OPT_TO | OPT_MODE | OPT_VFIO_FORM | OPT_MAX_SIZE,
    .usage_exit = USAGE,
    .synopsis = "--to arena|legacy [--mode exec|transfer]\n"
                "               [--vfio-form full|stub|none] [--force] "
                "SOURCE OUTPUT",
    .summary = "arena <-> legacy stream, through libcprstate",
};
