/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * live.c - live processes: "--pid PID" finds the state a QEMU holds
 * between cpr-exec and migrate-incoming (the fd whose link is
 * memfd:QEMU_CPR_EXEC_STATE, or the number in QEMU_CPR_EXEC_STATE in its
 * environment), and "check-live PID" cross-checks every fd record of that
 * state against the process's fd table and fdinfo.
 *
 * Nothing here disturbs the process: /proc links are read with
 * readlink() and stat(), fdinfo is read as text, and a file is opened
 * through /proc (a new open file description) only when it is a regular
 * file, to read its seals.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprdump.h"

#define STATE_LINK "/memfd:" CPRS_EXEC_STATE_NAME
#define ENV_PREFIX CPRS_EXEC_STATE_NAME "="
/* Bytes of /proc/PID/environ we read; the kernel allows far less. */
#define ENVIRON_MAX (16u << 20)

static bool is_state_link(const char *link)
{
    size_t n = strlen(STATE_LINK);

    return !strncmp(link, STATE_LINK, n) &&
           (!link[n] || !strcmp(link + n, " (deleted)"));
}

/* readlink() into @buf, NUL-terminated; -errno on failure. */
static int read_link(const char *path, char *buf, size_t size)
{
    ssize_t n = readlink(path, buf, size - 1);

    if (n < 0) {
        return -errno;
    }
    buf[n] = '\0';
    return 0;
}

/* A strict decimal fd number, as QEMU should have parsed it. */
static int parse_fd_number(const char *s, int *ret)
{
    unsigned long v = 0;
    const char *p;

    if (!*s) {
        return -EINVAL;
    }
    for (p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -EINVAL;
        }
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > INT_MAX) {
            return -ERANGE;
        }
    }
    *ret = (int)v;
    return 0;
}

/*
 * QEMU_CPR_EXEC_STATE from /proc/PID/environ: the environment the process
 * was exec()ed with, which is what a new QEMU got from the old one (it
 * unsets the variable later, but /proc keeps the original block).
 * Returns 1 found, 0 absent, <0 error; *@ret_text gets the raw value.
 */
static int env_state_fd(int pid, int *ret_fd, char *ret_text, size_t size)
{
    char path[64], *buf, *p, *end;
    size_t len = 0;
    ssize_t n;
    int fd, ret = 0;

    snprintf(path, sizeof(path), "/proc/%d/environ", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    buf = malloc(ENVIRON_MAX + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    while (len < ENVIRON_MAX) {
        n = read(fd, buf + len, ENVIRON_MAX - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            ret = -errno;
            break;
        }
        if (!n) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    for (p = buf; !ret && p < buf + len; p = end + 1) {
        end = p + strlen(p);
        if (!strncmp(p, ENV_PREFIX, strlen(ENV_PREFIX))) {
            p += strlen(ENV_PREFIX);
            snprintf(ret_text, size, "%s", p);
            ret = parse_fd_number(p, ret_fd) ? -EINVAL : 1;
            break;
        }
    }
    free(buf);
    return ret;
}

int pid_find_state(int pid, const Options *o, int *ret_fd)
{
    char path[64], link[PATH_MAX], env_text[64] = "", others[256] = "";
    int env_fd = -1, found = -1, n_links = 0, fd, env_ret;
    bool env_is_state = false;
    struct dirent *de;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d", pid);
    if (pid <= 0 || access(path, F_OK)) {
        cprdump_err("there is no process %d", pid);
        return -ESRCH;
    }
    env_ret = env_state_fd(pid, &env_fd, env_text, sizeof(env_text));
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    dir = opendir(path);
    if (!dir) {
        report_io_error(path, -errno);
        return -EACCES;
    }
    while ((de = readdir(dir)) != NULL) {
        if (parse_fd_number(de->d_name, &fd)) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
        if (read_link(path, link, sizeof(link)) || !is_state_link(link)) {
            continue;
        }
        n_links++;
        if (fd == env_fd) {
            env_is_state = true;
        }
        if (found < 0 || fd < found) {
            found = fd;
        }
    }
    closedir(dir);

    if (env_ret == -EINVAL) {
        cprdump_note(o, "pid %d: %s%s in its environment is not a valid fd "
                     "number (QEMU would abort on it)", pid, ENV_PREFIX,
                     env_text);
    } else if (env_ret < 0) {
        cprdump_note(o, "pid %d: cannot read its environment: %s", pid,
                     strerror(-env_ret));
    } else if (env_ret == 1 && !env_is_state) {
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, env_fd);
        if (read_link(path, link, sizeof(link))) {
            cprdump_note(o, "pid %d: %s%d in its environment, but fd %d is "
                         "not open (a new QEMU closes it once "
                         "migrate-incoming starts)", pid, ENV_PREFIX, env_fd,
                         env_fd);
        } else {
            cprdump_note(o, "pid %d: %s%d in its environment, but fd %d is "
                         "%s, not the state memfd", pid, ENV_PREFIX, env_fd,
                         env_fd, link);
        }
    }
    if (found < 0) {
        cprdump_err("pid %d holds no CPR state: no fd links to %s and %s "
                    "names no open state fd (a QEMU holds it only between "
                    "cpr-exec and migrate-incoming; cpr-transfer carries "
                    "the state over a socket)", pid, STATE_LINK,
                    CPRS_EXEC_STATE_NAME);
        return -ENOENT;
    }
    if (env_is_state) {
        found = env_fd;
    }
    if (n_links > 1) {
        snprintf(others, sizeof(others), "; %d fds link to it", n_links);
    }
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, found);
    if (read_link(path, link, sizeof(link))) {
        snprintf(link, sizeof(link), "%s", STATE_LINK);
    }
    if (env_is_state) {
        cprdump_note(o, "pid %d: state in fd %d -> %s, named by %s%d in "
                     "its environment%s; reading %s", pid, found, link,
                     ENV_PREFIX, found, others, path);
    } else {
        cprdump_note(o, "pid %d: state in fd %d -> %s, found by its link "
                     "name%s; reading %s", pid, found, link, others, path);
    }
    *ret_fd = found;
    return 0;
}

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
    Json j;
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
        json_obj(&lv->j, NULL);
        json_str(&lv->j, "status", status_json[status]);
        json_str(&lv->j, "what", what);
        json_str(&lv->j, "name", name);
        if (id == INT64_MIN) {
            json_null(&lv->j, "id");
        } else {
            json_i64(&lv->j, "id", id);
        }
        if (fd < 0) {
            json_null(&lv->j, "fd");
        } else {
            json_i64(&lv->j, "fd", fd);
        }
        json_str(&lv->j, "message", msg);
        json_obj_end(&lv->j);
        return;
    }
    if (!strcmp(what, "fd")) {
        if (fd < 0) {
            fprintf(lv->d->out, "%-9s fd - %s (id %" PRId64 "): %s\n",
                    status_text[status], name, id, msg);
        } else {
            fprintf(lv->d->out, "%-9s fd %d %s (id %" PRId64 "): %s\n",
                    status_text[status], fd, name, id, msg);
        }
    } else {
        fprintf(lv->d->out, "%-9s %s %s: %s\n", status_text[status], what,
                name, msg);
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

/* Seals of a regular file of the process, through a new description. */
static int live_seals(const char *path, uint32_t *ret)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    int seals;

    if (fd < 0) {
        return -errno;
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

int cmd_check_live(const Options *o, int pid)
{
    Options so = *o;
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    Source src;
    Dump d = { 0 };
    Live lv = { .o = o, .pid = pid, .src = &src, .d = &d };
    CprsFdInfo fi;
    char *text = NULL, line[512];
    size_t len = 0;
    uint32_t i, n, nb = 0, mode;
    bool arena, pid_ok = true;
    int vret, ret;

    so.pid = pid;
    ret = source_load(NULL, &so, &src);
    if (ret) {
        source_free(&src);
        return CPRDUMP_DIFF_ERROR;
    }
    if (src.err && !src.legacy) {
        source_report(&src);
        source_free(&src);
        return CPRDUMP_DIFF_ERROR;
    }
    vret = source_verify(&src, &diag);
    arena = src.format == CPRS_DETECT_ARENA;
    n = src_fd_count(&src);
    lv.fds = calloc(n ? n : 1, sizeof(*lv.fds));
    if (!lv.fds || !dump_begin(&d, &text, &len)) {
        free(lv.fds);
        source_free(&src);
        return CPRDUMP_DIFF_ERROR;
    }
    mode = src_mode(&src);
    if (arena) {
        cprs_reader_get_info(src.reader, &ai);
        nb = cprs_reader_ramblock_count(src.reader);
        pid_ok = !ai.writer_pid || ai.writer_pid == (uint32_t)pid;
    }
    if (o->json) {
        json_begin(&lv.j, d.out);
        json_preamble(&lv.j, "check-live");
        json_i64(&lv.j, "pid", pid);
        json_source(&lv.j, "source", &src);
        json_str(&lv.j, "format", arena ? "arena" : "legacy");
        json_str(&lv.j, "mode", cprs_mode_name(mode) ?
                 cprs_mode_name(mode) : "unknown");
        json_diag(&lv.j, "verification", vret, &diag);
        json_arr(&lv.j, "findings");
    } else {
        fprintf(d.out, "pid %d: %s in %s, %s, %u fd records, %u RAM "
                "blocks\n", pid, arena ? "arena" : "QCPR stream", src.path,
                cprs_mode_name(mode) ? cprs_mode_name(mode) : "unknown mode",
                n, nb);
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
        json_arr_end(&lv.j);
        json_obj(&lv.j, "summary");
        json_u64(&lv.j, "ok", lv.count[F_OK_]);
        json_u64(&lv.j, "mismatches", lv.count[F_MISMATCH]);
        json_u64(&lv.j, "warnings", lv.count[F_WARNING]);
        json_u64(&lv.j, "skipped", lv.count[F_SKIPPED]);
        json_obj_end(&lv.j);
        json_obj_end(&lv.j);
        json_end(&lv.j);
    } else {
        fprintf(d.out, "Summary: %u ok, %u mismatches, %u warnings, %u "
                "skipped\n", lv.count[F_OK_], lv.count[F_MISMATCH],
                lv.count[F_WARNING], lv.count[F_SKIPPED]);
    }
    free(lv.fds);
    source_free(&src);
    if (!dump_end(&d, &text, &len)) {
        return CPRDUMP_DIFF_ERROR;
    }
    if (vret && !lv.count[F_MISMATCH]) {
        return CPRDUMP_DIFF_ERROR;
    }
    return lv.count[F_MISMATCH] ? CPRDUMP_DIFF_DIFFERENT : CPRDUMP_DIFF_SAME;
}
