/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-check-live.c - "cprdump check-live PID" cross-checks every fd
 * record of the state a process holds against the process's fd table and
 * fdinfo.
 *
 * Nothing here disturbs the process: /proc links are read with
 * readlink() and stat(), fdinfo is read as text, and a file is opened
 * through /proc (a new open file description) only when it is a regular
 * file, to read its seals.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "proc.h"
#include "render.h"

/* Exit code of a usage error, in this family of subcommands. */
#define USAGE CPRDUMP_CMP_ERROR

/* ---- check-live -------------------------------------------------------- */

enum {
    F_OK_ = 0,
    F_MISMATCH,
    F_WARNING,
    F_SKIPPED,
    F__MAX,
};

static const char *const status_text[F__MAX] = {
    "OK", "MISMATCH", "WARNING", "SKIPPED",
};
static const char *const status_json[F__MAX] = {
    "ok", "mismatch", "warning", "skipped",
};

/* What check-live learnt about one fd record. */
typedef struct LiveFd {
    bool open;
    bool regular;
    uint64_t size;
} LiveFd;

typedef struct Live {
    const Options *o;
    int pid;
    Source *src;
    Dump *d;
    Json *j;                /* JSON: the document's writer */
    uint32_t count[F__MAX];
    LiveFd *fds;
} Live;

static void finding(Live *lv, int status, const char *what,
                    const char *name, int64_t id, int fd, const char *fmt,
                    ...) __attribute__((format(printf, 7, 8)));

static void finding(Live *lv, int status, const char *what,
                    const char *name, int64_t id, int fd, const char *fmt,
                    ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lv->count[status]++;
    if (lv->o->json) {
        json_obj(lv->j, NULL);
        json_str(lv->j, "status", status_json[status]);
        json_str(lv->j, "what", what);
        json_str(lv->j, "name", name);
        /* INT64_MIN: no id (RAM blocks and the state). */
        if (id == INT64_MIN) {
            json_null(lv->j, "id");
        } else {
            json_i64(lv->j, "id", id);
        }
        json_i64_or_null(lv->j, "fd", fd);
        json_str(lv->j, "message", msg);
        json_obj_end(lv->j);
        return;
    }
    /* Names and links come from the state and from /proc: escaped. */
    if (!strcmp(what, "fd")) {
        if (fd < 0) {
            fprintf(lv->d->out, "%-9s fd - %s (id %" PRId64 "): %s\n",
                    status_text[status], tx(name), id, tx(msg));
        } else {
            fprintf(lv->d->out, "%-9s fd %d %s (id %" PRId64 "): %s\n",
                    status_text[status], fd, tx(name), id, tx(msg));
        }
    } else {
        fprintf(lv->d->out, "%-9s %s %s: %s\n", status_text[status], what,
                tx(name), tx(msg));
    }
}

/* fdinfo "flags:" (octal) and "pos:"; false if unreadable. */
static bool read_fdinfo(int pid, int fd, unsigned long *ret_flags,
                        unsigned long long *ret_pos)
{
    char path[64], line[256];
    bool have_flags = false;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
    f = fopen(path, "re");
    if (!f) {
        return false;
    }
    *ret_pos = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "flags: %lo", ret_flags) == 1) {
            have_flags = true;
        }
        sscanf(line, "pos: %llu", ret_pos);
    }
    fclose(f);
    return have_flags;
}

/*
 * Seals of a regular file of the process, through a new description;
 * what the fd is now is checked before it is opened (it may have been
 * replaced by a FIFO or a terminal since it was looked at).
 */
static int live_seals(const char *path, uint32_t *ret)
{
    struct stat st;
    int fd, seals;

    seals = open_regular(path, &fd, &st);
    if (seals < 0) {
        return seals;
    }
    if (seals > 0) {
        return -EINVAL;
    }
    seals = fcntl(fd, F_GET_SEALS);
    close(fd);
    if (seals < 0) {
        return -errno;
    }
    *ret = (uint32_t)seals;
    return 0;
}

/* Append to a list of facts (", ") or of problems ("; "). */
static void append(char *buf, size_t size, const char *sep,
                   const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t size, const char *sep,
                   const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;

    if (len >= size - 1) {
        return;
    }
    if (len) {
        snprintf(buf + len, size - len, "%s", sep);
        len = strlen(buf);
    }
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

static void check_fd(Live *lv, uint32_t index, const CprsFdInfo *fi,
                     bool arena)
{
    char path[64], link[PATH_MAX], bad[1024] = "", good[1024] = "";
    LiveFd *lf = &lv->fds[index];
    unsigned long long pos;
    unsigned long flags;
    uint32_t seals;
    struct stat st;
    int ret;

    if (fi->fd < 0) {
        finding(lv, F_SKIPPED, "fd", fi->name, fi->id, -1, "no fd number "
                "recorded: in cpr-transfer the fd travels by SCM_RIGHTS "
                "and gets a new number");
        return;
    }
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", lv->pid, fi->fd);
    ret = read_link(path, link, sizeof(link));
    if (ret == -ENOENT) {
        finding(lv, F_MISMATCH, "fd", fi->name, fi->id, fi->fd,
                "not open in pid %d", lv->pid);
        return;
    }
    if (!ret && stat(path, &st) < 0) {
        ret = -errno;
    }
    if (ret) {
        finding(lv, F_WARNING, "fd", fi->name, fi->id, fi->fd,
                "cannot inspect %s: %s", path, strerror(-ret));
        return;
    }
    lf->open = true;
    lf->regular = S_ISREG(st.st_mode);
    lf->size = (uint64_t)st.st_size;
    snprintf(good, sizeof(good), "%.512s, dev 0x%" PRIx64 " inode %" PRIu64,
             link, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (lf->regular) {
        append(good, sizeof(good), ", ", "size %" PRIu64, lf->size);
    }
    if (arena && (fi->flags & CPRS_FD_F_IDENTITY)) {
        if ((uint64_t)st.st_dev != fi->dev || (uint64_t)st.st_ino != fi->ino) {
            append(bad, sizeof(bad), "; ", "it is another file now: "
                   "recorded dev 0x%" PRIx64 " inode %" PRIu64 ", found %s",
                   fi->dev, fi->ino, good);
        } else if ((st.st_mode & S_IFMT) != (fi->st_mode & S_IFMT)) {
            append(bad, sizeof(bad), "; ", "file type changed: recorded mode "
                   "0%o, now 0%o", fi->st_mode, (unsigned)st.st_mode);
        }
        if (lf->regular && lf->size != fi->size) {
            append(bad, sizeof(bad), "; ", "size changed: recorded %" PRIu64
                   " bytes, now %" PRIu64, fi->size, lf->size);
        }
    }
    if (arena && fi->kind == CPRS_FD_KIND_MEMFD &&
        strncmp(link, "/memfd:", 7)) {
        append(bad, sizeof(bad), "; ", "recorded as a memfd, but it is %s",
               link);
    }
    if (arena && (fi->flags & CPRS_FD_F_SEALS) && lf->regular) {
        ret = live_seals(path, &seals);
        if (ret) {
            finding(lv, F_WARNING, "fd", fi->name, fi->id, fi->fd,
                    "cannot read its seals: %s", strerror(-ret));
        } else if (seals != fi->seals) {
            append(bad, sizeof(bad), "; ", "seals changed: recorded 0x%x, now "
                   "0x%x", fi->seals, seals);
        } else {
            append(good, sizeof(good), ", ", "seals 0x%x", seals);
        }
    }
    if (read_fdinfo(lv->pid, fi->fd, &flags, &pos)) {
        append(good, sizeof(good), ", ", "fdinfo flags 0%lo%s", flags,
               flags & O_CLOEXEC ? " (close-on-exec)" : "");
    }
    if (bad[0]) {
        finding(lv, F_MISMATCH, "fd", fi->name, fi->id, fi->fd, "%s", bad);
    } else {
        finding(lv, F_OK_, "fd", fi->name, fi->id, fi->fd, "%s", good);
    }
}

static void check_ramblock(Live *lv, uint32_t index)
{
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo);
    CprsFdInfo fi;
    uint64_t end;
    LiveFd *lf;

    if (cprs_reader_ramblock_get(lv->src->reader, index, &bi)) {
        finding(lv, F_MISMATCH, "ram-block", "?", INT64_MIN, -1,
                "RAM block %u does not decode", index);
        return;
    }
    if (bi.fd_index == CPRS_NO_INDEX) {
        finding(lv, F_SKIPPED, "ram-block", bi.idstr, INT64_MIN, -1,
                "not backed by an fd record");
        return;
    }
    if (src_fd_get(lv->src, bi.fd_index, &fi)) {
        finding(lv, F_MISMATCH, "ram-block", bi.idstr, INT64_MIN, -1,
                "its fd record %u does not decode", bi.fd_index);
        return;
    }
    lf = &lv->fds[bi.fd_index];
    if (fi.fd < 0) {
        finding(lv, F_SKIPPED, "ram-block", bi.idstr, INT64_MIN, -1,
                "its fd record %s has no fd number", fi.name);
        return;
    }
    if (!lf->open) {
        finding(lv, F_MISMATCH, "ram-block", bi.idstr, INT64_MIN, fi.fd,
                "its backing fd %d (%s) is not open", fi.fd, fi.name);
        return;
    }
    if (!lf->regular) {
        finding(lv, F_MISMATCH, "ram-block", bi.idstr, INT64_MIN, fi.fd,
                "its backing fd %d (%s) is not a file", fi.fd, fi.name);
        return;
    }
    /* QEMU maps max_length bytes: any byte past the end would SIGBUS. */
    if (__builtin_add_overflow(bi.fd_offset, bi.max_length, &end) ||
        end > lf->size) {
        finding(lv, F_MISMATCH, "ram-block", bi.idstr, INT64_MIN, fi.fd,
                "needs bytes [0x%" PRIx64 ", 0x%" PRIx64 "+0x%" PRIx64
                ") of fd %d (%s), which has %" PRIu64 " bytes",
                bi.fd_offset, bi.fd_offset, bi.max_length, fi.fd, fi.name,
                lf->size);
        return;
    }
    finding(lv, F_OK_, "ram-block", bi.idstr, INT64_MIN, fi.fd,
            "[0x%" PRIx64 ", 0x%" PRIx64 ") fits in fd %d (%s, %" PRIu64
            " bytes)", bi.fd_offset, end, fi.fd, fi.name, lf->size);
}

/* The state memfd itself: an arena must be sealed (cprs_exec_find()). */
static void check_state_fd(Live *lv)
{
    const uint32_t need = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
    uint32_t seals = 0;
    int ret;

    if (lv->src->format != CPRS_DETECT_ARENA) {
        return;
    }
    ret = live_seals(lv->src->path, &seals);
    if (ret) {
        finding(lv, F_WARNING, "state", lv->src->path, INT64_MIN,
                lv->src->fd_num, "cannot read its seals: %s",
                strerror(-ret));
    } else if ((seals & need) != need) {
        finding(lv, F_WARNING, "state", lv->src->path, INT64_MIN,
                lv->src->fd_num, "the arena memfd is not sealed against "
                "write, grow and shrink (seals 0x%x): cprs_exec_find() "
                "refuses it", seals);
    } else {
        finding(lv, F_OK_, "state", lv->src->path, INT64_MIN,
                lv->src->fd_num, "sealed (seals 0x%x)", seals);
    }
}

/*
 * Check process @pid.  JSON: into @multi, the "results" of several
 * processes, or a document of its own when @multi is NULL.
 */
static int check_live_pid(const Options *o, int pid, Json *multi)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    Source src;
    Dump d = { 0 };
    Json own;
    Live lv = { .o = o, .pid = pid, .src = &src, .d = &d, .j = &own };
    CprsFdInfo fi;
    char line[512];
    uint32_t i, n, nb = 0, mode;
    bool arena, pid_ok = true;
    int vret, ret;

    ret = source_load(NULL, pid, o, &src);
    if (!ret && src.err && !src.legacy) {
        source_report(&src, src.err, &src.diag);
        ret = src.err;
    }
    if (ret) {
        if (multi) {
            json_load_error(multi, src.label, ret);
        }
        source_free(&src);
        return CPRDUMP_CMP_ERROR;
    }
    vret = source_verify(&src, &diag);
    arena = src.format == CPRS_DETECT_ARENA;
    n = src_fd_count(&src);
    lv.fds = calloc(n ? n : 1, sizeof(*lv.fds));
    if (!lv.fds || (!multi && !dump_begin(&d))) {
        free(lv.fds);
        source_free(&src);
        return CPRDUMP_CMP_ERROR;
    }
    if (multi) {
        lv.j = multi;
    } else if (o->json) {
        json_begin(&own, d.out);
    }
    mode = src_mode(&src);
    if (arena) {
        cprs_reader_get_info(src.reader, &ai);
        nb = cprs_reader_ramblock_count(src.reader);
        pid_ok = !ai.writer_pid || ai.writer_pid == (uint32_t)pid;
    }
    if (o->json) {
        json_preamble(lv.j, "check-live");
        json_i64(lv.j, "pid", pid);
        json_source(lv.j, "source", &src);
        json_str(lv.j, "format", arena ? "arena" : "legacy");
        json_str(lv.j, "mode", mode_name(mode));
        json_diag(lv.j, "verification", vret, &diag);
        json_arr(lv.j, "findings");
    } else {
        fprintf(d.out, "pid %d: %s in %s, %s, %u fd records, %u RAM "
                "blocks\n", pid, arena ? "arena" : "QCPR stream", src.path,
                cprs_mode_name(mode) ? mode_name(mode) : "unknown mode", n,
                nb);
    }
    if (vret) {
        cprs_diag_format(&diag, line, sizeof(line));
        finding(&lv, F_WARNING, "state", src.path, INT64_MIN, src.fd_num,
                "does not verify: %s: %s", cprs_strerror(vret), line);
    }
    check_state_fd(&lv);
    if (!pid_ok) {
        finding(&lv, F_WARNING, "state", src.path, INT64_MIN, src.fd_num,
                "written by pid %u: its fd numbers are that process's",
                ai.writer_pid);
    }
    for (i = 0; i < n; i++) {
        if (src_fd_get(&src, i, &fi)) {
            finding(&lv, F_MISMATCH, "fd", "?", INT64_MIN, -1,
                    "fd record %u does not decode", i);
            continue;
        }
        check_fd(&lv, i, &fi, arena);
    }
    for (i = 0; i < nb; i++) {
        check_ramblock(&lv, i);
    }
    if (o->json) {
        json_arr_end(lv.j);
        json_obj(lv.j, "summary");
        json_u64(lv.j, "ok", lv.count[F_OK_]);
        json_u64(lv.j, "mismatches", lv.count[F_MISMATCH]);
        json_u64(lv.j, "warnings", lv.count[F_WARNING]);
        json_u64(lv.j, "skipped", lv.count[F_SKIPPED]);
        json_obj_end(lv.j);
        json_obj_end(lv.j);
        if (!multi) {
            json_end(lv.j);
        }
    } else {
        fprintf(d.out, "Summary: %u ok, %u mismatches, %u warnings, %u "
                "skipped\n", lv.count[F_OK_], lv.count[F_MISMATCH],
                lv.count[F_WARNING], lv.count[F_SKIPPED]);
    }
    free(lv.fds);
    source_free(&src);
    if (!multi && !dump_end(&d)) {
        return CPRDUMP_CMP_ERROR;
    }
    if (vret && !lv.count[F_MISMATCH]) {
        return CPRDUMP_CMP_ERROR;
    }
    return lv.count[F_MISMATCH] ? CPRDUMP_CMP_DIFFERENT : CPRDUMP_CMP_SAME;
}

/* Comparison family: an error outranks a mismatch. */
static int merge(int a, int b)
{
    return a > b ? a : b;
}

static int check_live_run(const Options *o)
{
    static Options po;
    Dump all = { 0 };
    Json j;
    int i, exit = CPRDUMP_CMP_SAME;

    /* Operands are process ids, with or without --pid. */
    po = *o;
    for (i = 0; i < o->nargs; i++) {
        if (options_add_pids(&po, o->args[i])) {
            return usage_error(USAGE, NULL);
        }
    }
    if (!po.npids) {
        return usage_error(USAGE, "check-live takes at least one PID");
    }
    if (po.npids == 1 || !o->json) {
        for (i = 0; i < po.npids; i++) {
            exit = merge(exit, check_live_pid(o, po.pids[i], NULL));
        }
        return exit;
    }
    if (!dump_begin(&all)) {
        return CPRDUMP_CMP_ERROR;
    }
    json_begin(&j, all.out);
    json_preamble(&j, "check-live");
    json_arr(&j, "results");
    for (i = 0; i < po.npids; i++) {
        exit = merge(exit, check_live_pid(o, po.pids[i], &j));
    }
    json_arr_end(&j);
    json_obj_end(&j);
    json_end(&j);
    return dump_end(&all) ? exit : CPRDUMP_CMP_ERROR;
}

const Command cmd_check_live = {
    .name = "check-live",
    .run = check_live_run,
    .options = OPT_JSON | OPT_PID | OPT_LENIENT | OPT_QUIET | OPT_MAX_SIZE,
    .usage_exit = USAGE,
    .synopsis = "[--json] PID...",
    .summary = "cross-check a process's state with its fd table",
};
