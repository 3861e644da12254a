/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * target.c - pre-flight of a live update (spec/fail-safe.rst F2, F6):
 * before the VM stops, find the binary the hop will run, learn what it
 * reads, decide what to write, and later exec exactly that file.
 *
 * The target is found as execvp() finds it, opened once, and inspected
 * through that fd only (elfscan.c).  What cannot be known makes the
 * target "uncertain", which F6 answers with the one format every reader
 * accepts, or a refusal: never with a format that could lose the guest.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cprs-failsafe.h"

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

extern char **environ;

struct CprsTarget {
    int fd;                     /* the file inspected, or -1 (peer) */
    bool readable;              /* fd is O_RDONLY, not O_PATH */
    bool exec_fd;               /* an ELF of this host: exec through fd */
    struct stat st;             /* at inspection */
    char *path;                 /* what exec would run */
    char *real;                 /* canonical path */
    char *search;               /* the PATH searched, or NULL */
    char *lib_path;             /* the libcprstate.so read, or NULL */
    struct stat lib_st;         /* that file, as inspected */
    char interp[128];           /* a script's #! line */
    uint32_t klass;
    uint32_t flags;
    const char *reason;
    CprsCaps caps;
    uint32_t stock_form;
    uint32_t marks;
    int32_t pid;
};

/* execvp()'s search path when PATH is unset (glibc: confstr _CS_PATH). */
#define DEFAULT_PATH "/bin:/usr/bin"
/* Directories ld.so searches last (F2.5). */
static const char *const default_lib_dirs[] = {
    "/lib", "/usr/lib", "/lib64", "/usr/lib64",
};
#define LD_CACHE "/etc/ld.so.cache"
#define LD_CACHE_MAX (UINT64_C(16) << 20)
#define MAX_LIB_CANDIDATES 16

static int target_opts(const CprsTargetOpts *opts, CprsTargetOpts *o)
{
    if (cprs_opts_copy(o, sizeof(*o), opts) || o->flags || o->reserved0) {
        return -EINVAL;
    }
    return 0;
}

/* ---- Finding the file as execvp() does (F2.1) ------------------------- */

/* Can this be exec'd: a regular file with execute permission for us? */
static int exec_ok(const char *path, struct stat *st)
{
    if (stat(path, st) < 0) {
        return -errno;
    }
    if (!S_ISREG(st->st_mode) ||
        faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0) {
        return -EACCES;
    }
    return 0;
}

/*
 * The file execvp(@file) would run: @file itself when it holds a '/';
 * otherwise the first executable regular file in @search.  Like execvp,
 * a missing entry or directory is skipped, and so is one that exists but
 * cannot be run (EACCES, reported if nothing else is found); any other
 * error (ELOOP, ENAMETOOLONG, EIO) stops the search and is returned.
 */
static int resolve(const char *file, const char *search, char **ret_path)
{
    const char *p, *end;
    struct stat st;
    bool denied = false;
    size_t dlen, flen = strlen(file);
    char *path;
    int ret;

    if (strchr(file, '/')) {
        ret = exec_ok(file, &st);
        if (ret) {
            return ret;
        }
        *ret_path = strdup(file);
        return *ret_path ? 0 : -ENOMEM;
    }
    if (flen > NAME_MAX) {
        return -ENAMETOOLONG;
    }
    for (p = search;; p = end + 1) {
        end = strchr(p, ':');
        if (!end) {
            end = p + strlen(p);
        }
        dlen = (size_t)(end - p);
        if (dlen < PATH_MAX - flen - 2) {
            path = malloc(dlen + flen + 3);
            if (!path) {
                return -ENOMEM;
            }
            /* An empty entry is the current directory. */
            if (dlen) {
                memcpy(path, p, dlen);
            } else {
                path[dlen++] = '.';
            }
            path[dlen] = '/';
            memcpy(path + dlen + 1, file, flen + 1);
            ret = exec_ok(path, &st);
            if (!ret) {
                *ret_path = path;
                return 0;
            }
            free(path);
            /*
             * execvp() goes on after these errors only; any other (a
             * symlink loop, a name too long, an I/O error) ends the
             * search with it, and so does it here.
             */
            if (ret == -EACCES) {
                denied = true;
            } else if (ret != -ENOENT && ret != -ESTALE &&
                       ret != -ENOTDIR && ret != -ENODEV &&
                       ret != -ETIMEDOUT) {
                return ret;
            }
        }
        if (!*end) {
            break;
        }
    }
    return denied ? -EACCES : -ENOENT;
}

/* ---- The libcprstate.so a dynamic target needs (F2.5) ----------------- */

/*
 * Open @path to read it, only if it is a regular file (F2.1, F2.5).  The
 * name is opened first with O_PATH, which opens nothing (no FIFO to wait
 * on, no device driver), and looked at with fstat(); only a regular file
 * is then opened for reading, through /proc/self/fd (the same inode,
 * whatever the name says by then), with O_NONBLOCK and O_NOCTTY in case.
 * Returns the fd and its fstat() in @st; -EACCES (not a regular file, or
 * one that may not be read); -ESTALE (the name changed files, without
 * /proc); -errno of open().  When a regular file may not be read and
 * @ret_opath is not NULL, its O_PATH fd is left there.
 */
static int open_regular(const char *path, struct stat *st, int *ret_opath)
{
    const int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    char proc[64];
    struct stat now;
    int pfd, fd, err;

    pfd = open(path, O_PATH | O_CLOEXEC);
    if (pfd < 0) {
        return -errno;
    }
    if (fstat(pfd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(pfd);
        return -EACCES;
    }
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
    fd = open(proc, flags);
    if (fd < 0 && errno == ENOENT) {
        /* No /proc: by name, and it must still be that file. */
        fd = open(path, flags);
    }
    err = errno;
    if (fd >= 0 && (fstat(fd, &now) < 0 || !S_ISREG(now.st_mode) ||
                    now.st_dev != st->st_dev || now.st_ino != st->st_ino)) {
        close(fd);
        fd = -1;
        err = ESTALE;
    }
    if (fd < 0) {
        if (err == EACCES && ret_opath) {
            *ret_opath = pfd;
        } else {
            close(pfd);
        }
        return -err;
    }
    close(pfd);
    *st = now;
    return fd;
}

/* A file that ld.so could load for this target: same kind of ELF. */
static int lib_candidate(const CprsTarget *t, const CprsElfScan *exe,
                         const char *path, CprsElfScan *ret_scan,
                         struct stat *ret_st)
{
    struct stat st;
    CprsElfSrc src;
    int fd, ret;

    fd = open_regular(path, &st, NULL);
    if (fd < 0) {
        return fd;
    }
    src = (CprsElfSrc) { .fd = fd, .size = (uint64_t)st.st_size };
    ret = cprs_elf_scan(&src, CPRS_ELF_SCAN_NO_MARKS, ret_scan);
    close(fd);
    (void)t;
    if (ret) {
        return ret;
    }
    /* ld.so skips a library of another class or machine. */
    if (!(ret_scan->flags & CPRS_ELF_F_ELF) ||
        ret_scan->ei_class != exe->ei_class ||
        ret_scan->ei_data != exe->ei_data ||
        ret_scan->machine != exe->machine) {
        return -ENOENT;
    }
    *ret_st = st;
    return 0;
}

/*
 * Expand $ORIGIN and ${ORIGIN} in one search entry.  Other dynamic
 * string tokens ($LIB, $PLATFORM) depend on ld.so: -EPROTONOSUPPORT.
 */
static int expand_entry(const char *p, size_t len, const char *origin,
                        char *out, size_t size)
{
    size_t o = 0, olen = strlen(origin), i = 0, tok;

    while (i < len) {
        if (p[i] == '$') {
            if (len - i >= 7 && !memcmp(p + i, "$ORIGIN", 7)) {
                tok = 7;
            } else if (len - i >= 9 && !memcmp(p + i, "${ORIGIN}", 9)) {
                tok = 9;
            } else {
                return -EPROTONOSUPPORT;
            }
            if (size - o <= olen) {
                return -ENAMETOOLONG;
            }
            memcpy(out + o, origin, olen);
            o += olen;
            i += tok;
            continue;
        }
        if (size - o <= 1) {
            return -ENAMETOOLONG;
        }
        out[o++] = p[i++];
    }
    if (!o) {
        out[o++] = '.';
    }
    out[o] = '\0';
    return 0;
}

/* Does @dir hold glibc-hwcaps variants of @soname?  (ld.so tries them.) */
static bool has_hwcaps(const char *dir, const char *soname)
{
    char path[PATH_MAX];
    struct dirent *de;
    struct stat st;
    bool found = false;
    unsigned n = 0;
    DIR *d;

    if ((size_t)snprintf(path, sizeof(path), "%s/glibc-hwcaps", dir) >=
        sizeof(path)) {
        return true;
    }
    d = opendir(path);
    if (!d) {
        return false;
    }
    while (!found && n++ < 64 && (de = readdir(d))) {
        if (de->d_name[0] == '.') {
            continue;
        }
        if ((size_t)snprintf(path, sizeof(path), "%s/glibc-hwcaps/%s/%s",
                             dir, de->d_name, soname) >= sizeof(path) ||
            !stat(path, &st)) {
            found = true;
        }
    }
    closedir(d);
    return found;
}

typedef struct LibSearch {
    const CprsTarget *t;
    const CprsElfScan *exe;
    const char *origin;
    CprsElfScan lib;
    char path[PATH_MAX];
    struct stat lib_st;         /* the file at path, as inspected */
    const char *why;            /* why the search is uncertain */
} LibSearch;

/* Look in each entry of @list: 1 found (ls->path), 0 not, <0 error. */
static int search_list(LibSearch *ls, const char *list)
{
    char dir[PATH_MAX];
    const char *p, *end;
    const char *soname = ls->exe->needed;
    int ret;

    if (!list || !list[0]) {
        return 0;
    }
    for (p = list;; p = end + 1) {
        end = strchr(p, ':');
        if (!end) {
            end = p + strlen(p);
        }
        ret = expand_entry(p, (size_t)(end - p), ls->origin, dir,
                           sizeof(dir));
        if (ret == -EPROTONOSUPPORT) {
            ls->why = "the library search path uses a token other than "
                      "$ORIGIN";
            return ret;
        }
        if (!ret) {
            if (has_hwcaps(dir, soname)) {
                ls->why = "glibc-hwcaps variants of libcprstate exist";
                return -EPROTONOSUPPORT;
            }
            if ((size_t)snprintf(ls->path, sizeof(ls->path), "%s/%s", dir,
                                 soname) < sizeof(ls->path) &&
                !lib_candidate(ls->t, ls->exe, ls->path, &ls->lib,
                               &ls->lib_st)) {
                return 1;
            }
        }
        if (!*end) {
            return 0;
        }
    }
}

/*
 * The paths /etc/ld.so.cache gives for @soname: every NUL-terminated
 * string of the file that ends in "/soname".  The cache's own structure
 * is not trusted or needed; one linear search finds them.  All that are
 * of the target's kind must agree (their notes are intersected).
 */
static int search_cache(LibSearch *ls, CprsCaps *caps, uint32_t *n_found)
{
    char key[300], cand[PATH_MAX];
    const char *soname = ls->exe->needed;
    uint8_t *buf = NULL;
    const uint8_t *hit, *from, *start;
    size_t klen, left, n = 0;
    struct stat st, one_st;
    CprsElfSrc src;
    CprsElfScan one;
    uint32_t found = 0;
    int fd, ret = 0;

    klen = (size_t)snprintf(key, sizeof(key), "/%s", soname);
    fd = open_regular(LD_CACHE, &st, NULL);
    if (fd < 0) {
        return 0;
    }
    if ((uint64_t)st.st_size > LD_CACHE_MAX) {
        close(fd);
        return 0;
    }
    buf = malloc((size_t)st.st_size + 1);
    src = (CprsElfSrc) { .fd = fd, .size = (uint64_t)st.st_size };
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    /* A cache that cannot be read whole is ignored, as ld.so would. */
    if (cprs_elf_read(&src, 0, buf, (size_t)st.st_size)) {
        free(buf);
        close(fd);
        return 0;
    }
    close(fd);
    buf[st.st_size] = '\0';
    from = buf;
    left = (size_t)st.st_size;
    while (n < MAX_LIB_CANDIDATES && (hit = memmem(from, left, key, klen))) {
        left -= (size_t)(hit - from) + 1;
        from = hit + 1;
        if (hit[klen] != '\0') {
            continue;
        }
        /* Back to the start of that string, at most PATH_MAX bytes. */
        for (start = hit; start > buf && start[-1] && hit - start <
             PATH_MAX - (ptrdiff_t)klen - 1; start--) {
        }
        if (start > buf && start[-1]) {
            continue;
        }
        memcpy(cand, start, (size_t)(hit - start) + klen + 1);
        n++;
        if (lib_candidate(ls->t, ls->exe, cand, &one, &one_st)) {
            continue;
        }
        if (!(one.flags & CPRS_ELF_F_NOTE) ||
            (one.flags & CPRS_ELF_F_CONFLICT) ||
            (found && one.caps.arena_major != caps->arena_major)) {
            ls->why = "a libcprstate the loader may pick has no usable "
                      "capability note";
            ret = -EPROTONOSUPPORT;
            break;
        }
        if (!found++) {
            *caps = one.caps;
            memcpy(ls->path, cand, strlen(cand) + 1);
            ls->lib_st = one_st;
        } else {
            caps->arena_minor = caps->arena_minor < one.caps.arena_minor ?
                                caps->arena_minor : one.caps.arena_minor;
            caps->arena_incompat &= one.caps.arena_incompat;
            caps->modes &= one.caps.modes;
            caps->legacy_forms &= one.caps.legacy_forms;
            caps->flags &= one.caps.flags;
        }
    }
    free(buf);
    *n_found = found;
    return ret;
}

/*
 * Find the libcprstate.so @exe needs, as ld.so would (F2.5), and take
 * its note.  Returns 0 with the caps in @t, or a reason in t->reason
 * and -EPROTONOSUPPORT (uncertain), or -ENOMEM.
 */
static int classify_lib(CprsTarget *t, const CprsElfScan *exe,
                        const CprsTargetOpts *o)
{
    LibSearch ls = { .t = t, .exe = exe };
    const char *llp = o->library_path ? o->library_path :
                      getenv("LD_LIBRARY_PATH");
    char origin[PATH_MAX], *slash;
    uint32_t n = 0;
    size_t i;
    int ret;

    /* $ORIGIN: the directory of the file (ld.so reads /proc/self/exe). */
    snprintf(origin, sizeof(origin), "%s", t->real);
    slash = strrchr(origin, '/');
    if (slash) {
        *(slash == origin ? slash + 1 : slash) = '\0';
    }
    ls.origin = origin;
    /* DT_RPATH only without DT_RUNPATH; then LD_LIBRARY_PATH, RUNPATH. */
    ret = exe->runpath[0] ? 0 : search_list(&ls, exe->rpath);
    if (!ret) {
        ret = search_list(&ls, llp);
    }
    if (!ret) {
        ret = search_list(&ls, exe->runpath);
    }
    if (!ret) {
        ret = search_cache(&ls, &t->caps, &n);
        if (!ret && n) {
            ls.lib.flags = CPRS_ELF_F_NOTE;
            ls.lib.caps = t->caps;
            ret = 1;
        }
    }
    for (i = 0; !ret && i < sizeof(default_lib_dirs) /
         sizeof(default_lib_dirs[0]); i++) {
        ret = search_list(&ls, default_lib_dirs[i]);
    }
    if (ret < 0) {
        t->reason = ls.why ? ls.why : "libcprstate cannot be searched";
        return ret == -ENOMEM ? ret : -EPROTONOSUPPORT;
    }
    if (!ret) {
        t->reason = "it needs libcprstate, which the search rules of F2.5 "
                    "do not find";
        return -EPROTONOSUPPORT;
    }
    if (!(ls.lib.flags & CPRS_ELF_F_NOTE) ||
        (ls.lib.flags & (CPRS_ELF_F_CONFLICT | CPRS_ELF_F_MALFORMED))) {
        t->reason = ls.lib.flags & CPRS_ELF_F_NEWER_NOTE ?
                    "its libcprstate has a capability note of a newer "
                    "version" : "its libcprstate has no usable capability "
                    "note";
        return -EPROTONOSUPPORT;
    }
    t->caps = ls.lib.caps;
    t->lib_st = ls.lib_st;
    t->lib_path = strdup(ls.path);
    return t->lib_path ? 0 : -ENOMEM;
}

/* ---- Classification (F2.2) --------------------------------------------- */

static int classify_elf(CprsTarget *t, const CprsTargetOpts *o)
{
    CprsElfSrc src = { .fd = t->fd, .size = (uint64_t)t->st.st_size };
    CprsElfScan *scan;
    int ret;

    scan = malloc(sizeof(*scan));
    if (!scan) {
        return -ENOMEM;
    }
    ret = cprs_elf_scan(&src, 0, scan);
    if (ret) {
        free(scan);
        return ret;
    }
    t->klass = CPRS_TARGET_UNCERTAIN;
    t->marks = scan->marks;
    if (scan->flags & CPRS_ELF_F_ELF) {
        t->flags |= CPRS_TARGET_F_ELF;
    }
    /*
     * spec F2.7: only an ELF file this host's kernel runs itself goes
     * through the descriptor; one run by binfmt_misc (foreign) needs a
     * path its interpreter can open, and a malformed one is the kernel's
     * to judge, by path, as execvp() would.
     */
    t->exec_fd = (scan->flags & CPRS_ELF_F_ELF) &&
                 !(scan->flags & (CPRS_ELF_F_FOREIGN | CPRS_ELF_F_MALFORMED));
    if (scan->flags & CPRS_ELF_F_DYNAMIC) {
        t->flags |= CPRS_TARGET_F_DYNAMIC;
    }
    if (scan->flags & (CPRS_ELF_F_MALFORMED | CPRS_ELF_F_FOREIGN)) {
        t->reason = scan->why ? scan->why : "a malformed ELF file";
    } else if (scan->flags & CPRS_ELF_F_CONFLICT) {
        t->reason = "capability notes of different arena versions";
    } else if (scan->flags & CPRS_ELF_F_NOTE) {
        if (scan->flags & (CPRS_ELF_F_BAD_NOTE | CPRS_ELF_F_NEWER_NOTE)) {
            t->reason = "a capability note that is not understood, next "
                        "to valid ones";
        } else {
            t->klass = CPRS_TARGET_LIBCPRSTATE;
            t->caps = scan->caps;
            t->reason = "it carries libcprstate's capability note";
        }
    } else if (scan->flags & (CPRS_ELF_F_BAD_NOTE | CPRS_ELF_F_NEWER_NOTE)) {
        t->reason = scan->flags & CPRS_ELF_F_NEWER_NOTE ?
                    "a capability note of a newer version" :
                    "a malformed capability note";
    } else if (scan->flags & CPRS_ELF_F_NEEDS_LIB) {
        ret = classify_lib(t, scan, o);
        if (!ret) {
            t->klass = CPRS_TARGET_LIBCPRSTATE;
            t->flags |= CPRS_TARGET_F_NOTE_IN_LIB;
            t->reason = "the libcprstate it needs carries the capability "
                        "note";
        }
        ret = ret == -ENOMEM ? ret : 0;
    } else if (scan->flags & CPRS_ELF_F_SCAN_CUT) {
        t->reason = "too large to look for QEMU's marks";
    } else if (scan->marks & CPRS_MARK_OURS) {
        /* A wrapper or a tool of ours: it may hold QEMU's names too. */
        t->reason = "no note, and libcprstate's own code (a wrapper, or "
                    "a tool): not a stock QEMU";
    } else if ((scan->marks & CPRS_MARK_STOCK) == CPRS_MARK_STOCK) {
        /* spec F2.4: QEMU 10.2's cpr code, with or without iommufd. */
        t->klass = CPRS_TARGET_STOCK_QEMU;
        t->stock_form = scan->marks & CPRS_MARK_VFIO_DEVICE ?
                        CPRS_LEGACY_VFIO_FULL : CPRS_LEGACY_VFIO_STUB;
        t->reason = t->stock_form == CPRS_LEGACY_VFIO_FULL ?
                    "no note; the marks of QEMU's cpr code, built with "
                    "iommufd" : "no note; the marks of QEMU's cpr code, "
                    "built without iommufd";
    } else if (scan->marks) {
        t->reason = scan->marks & CPRS_MARK_CPR_FD ?
                    "no note and only some marks of QEMU's cpr code (a "
                    "wrapper, or another version)" :
                    "no note and some of QEMU's names, but not its cpr "
                    "code's own (a wrapper, or another version)";
    } else {
        t->reason = "no capability note and no marks of QEMU's cpr code "
                    "(a wrapper, or not QEMU)";
    }
    free(scan);
    return ret;
}

static int classify(CprsTarget *t, const CprsTargetOpts *o)
{
    CprsElfSrc src = { .fd = t->fd, .size = (uint64_t)t->st.st_size };
    uint8_t head[4] = { 0 };
    size_t n, i;

    t->klass = CPRS_TARGET_UNCERTAIN;
    if (!t->readable) {
        t->reason = "it can be executed but not read";
        return 0;
    }
    n = src.size < sizeof(head) ? (size_t)src.size : sizeof(head);
    if (cprs_elf_read(&src, 0, head, n)) {
        t->reason = "it cannot be read";
        return 0;
    }
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        /* spec F2.2 (iii): what a script runs is known only once run. */
        t->flags |= CPRS_TARGET_F_SCRIPT;
        n = src.size - 2 < sizeof(t->interp) - 1 ?
            (size_t)src.size - 2 : sizeof(t->interp) - 1;
        if (!cprs_elf_read(&src, 2, t->interp, n)) {
            for (i = 0; i < n && t->interp[i] != '\n'; i++) {
                if (!cprs_name_char_ok((uint8_t)t->interp[i])) {
                    t->interp[i] = '?';
                }
            }
            t->interp[i] = '\0';
        }
        t->reason = "a #! script: the binary it runs is not known before "
                    "it runs";
        return 0;
    }
    if (n == 4 && !memcmp(head, "\x7f" "ELF", 4)) {
        return classify_elf(t, o);
    }
    t->reason = "neither an ELF file nor a #! script";
    return 0;
}

/* ---- Opening ----------------------------------------------------------- */

static void target_init(CprsTarget *t)
{
    memset(t, 0, sizeof(*t));
    t->fd = -1;
}

/* Open and inspect @path (already resolved). */
static int inspect(CprsTarget *t, const CprsTargetOpts *o, CprsDiag *diag)
{
    char link[64], real[PATH_MAX];
    ssize_t n;
    int ret;

    /* A FIFO or a device swapped in since resolve() is not opened. */
    ret = open_regular(t->path, &t->st, &t->fd);
    if (ret >= 0) {
        t->fd = ret;
        t->readable = true;
    } else if (ret == -EACCES && t->fd >= 0) {
        /* Executable but not readable: exec works, inspection not. */
        t->flags |= CPRS_TARGET_F_UNREADABLE;
    } else if (ret == -EACCES) {
        return cprs_diag_set(diag, -EACCES, 0, -1, -1, "F2.2",
                             "the target is not a regular file");
    } else {
        return cprs_diag_set(diag, ret, 0, -1, -1, "F2.1",
                             "the target cannot be opened");
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", t->fd);
    n = readlink(link, real, sizeof(real) - 1);
    real[n > 0 ? n : 0] = '\0';
    t->real = strdup(n > 0 ? real : t->path);
    if (!t->real) {
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    ret = classify(t, o);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "F2.2",
                             "the target cannot be inspected");
    }
    return 0;
}

/* What a failure of resolve() means, as precisely as execvp's errno. */
static const char *resolve_reason(int ret)
{
    switch (ret) {
    case -ENOENT:
        return "the target does not exist (nor in PATH)";
    case -EACCES:
        return "the target is not an executable regular file";
    case -ELOOP:
        return "the target's path has too many levels of symbolic links "
               "(a loop)";
    case -ENAMETOOLONG:
        return "the target's path or name is too long";
    case -ENOTDIR:
        return "a component of the target's path is not a directory";
    case -ENOMEM:
        return "out of memory";
    default:
        return "the target cannot be found";
    }
}

static int open_common(const char *file, bool search,
                       const CprsTargetOpts *opts, CprsDiag *diag,
                       CprsTarget **ret_target)
{
    CprsTargetOpts o;
    CprsTarget *t;
    const char *path_env;
    int ret;

    if (!file || !file[0] || !ret_target || target_opts(opts, &o)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    t = malloc(sizeof(*t));
    if (!t) {
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    target_init(t);
    if (search && !strchr(file, '/')) {
        path_env = o.path_env ? o.path_env : getenv("PATH");
        t->search = strdup(path_env ? path_env : DEFAULT_PATH);
        t->flags |= CPRS_TARGET_F_SEARCHED;
        if (!t->search) {
            cprs_target_free(t);
            return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "",
                                 "out of memory");
        }
    }
    ret = resolve(file, t->search ? t->search : "", &t->path);
    if (ret) {
        cprs_target_free(t);
        return cprs_diag_set(diag, ret, 0, -1, -1, "F2.2",
                             resolve_reason(ret));
    }
    ret = inspect(t, &o, diag);
    if (ret) {
        cprs_target_free(t);
        return ret;
    }
    *ret_target = t;
    return 0;
}

int cprs_target_open_exec(char *const argv[], const CprsTargetOpts *opts,
                          CprsDiag *diag, CprsTarget **ret_target)
{
    if (!argv || !argv[0]) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    return open_common(argv[0], true, opts, diag, ret_target);
}

int cprs_target_open_path(const char *path, const CprsTargetOpts *opts,
                          CprsDiag *diag, CprsTarget **ret_target)
{
    return open_common(path, false, opts, diag, ret_target);
}

int cprs_target_open_peer(int sock, const CprsTargetOpts *opts,
                          CprsDiag *diag, CprsTarget **ret_target)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    CprsTargetOpts o;
    CprsTarget *t;
    char exe[64];
    int ret;

    if (sock < 0 || !ret_target || target_opts(opts, &o)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        return cprs_diag_set(diag, -errno, 0, -1, -1, "F2.6",
                             "the peer of the cpr channel is not known");
    }
    t = malloc(sizeof(*t));
    if (!t) {
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    target_init(t);
    t->flags = CPRS_TARGET_F_PEER;
    t->pid = cred.pid;
    snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)cred.pid);
    t->path = strdup(exe);
    if (!t->path) {
        cprs_target_free(t);
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    /* spec F2.6: a peer we cannot look at is uncertain, not an error. */
    if (cred.pid <= 0 || access(exe, F_OK) < 0) {
        t->klass = CPRS_TARGET_UNCERTAIN;
        t->reason = "the peer's executable cannot be looked at";
        t->real = strdup(exe);
        if (!t->real) {
            cprs_target_free(t);
            return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "",
                                 "out of memory");
        }
        *ret_target = t;
        return 0;
    }
    ret = inspect(t, &o, NULL);
    if (ret == -ENOMEM) {
        cprs_target_free(t);
        return ret;
    }
    if (ret) {
        t->klass = CPRS_TARGET_UNCERTAIN;
        t->reason = "the peer's executable cannot be read";
        if (!t->real) {
            t->real = strdup(exe);
        }
    }
    if (!t->real) {
        cprs_target_free(t);
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    *ret_target = t;
    return 0;
}

void cprs_target_free(CprsTarget *t)
{
    if (!t) {
        return;
    }
    if (t->fd >= 0) {
        close(t->fd);
    }
    free(t->path);
    free(t->real);
    free(t->search);
    free(t->lib_path);
    free(t);
}

int cprs_target_get_info(const CprsTarget *t, CprsTargetInfo *info)
{
    CprsTargetInfo ti = { .sz = sizeof(ti) };

    if (!t || !info) {
        return -EINVAL;
    }
    ti.klass = t->klass;
    ti.flags = t->flags;
    ti.path = t->path ? t->path : "";
    ti.real_path = t->real ? t->real : ti.path;
    ti.lib_path = t->lib_path;
    ti.interp = t->interp;
    ti.reason = t->reason ? t->reason : "";
    if (t->klass == CPRS_TARGET_LIBCPRSTATE) {
        ti.lib_version = t->caps.lib_version;
        ti.arena_major = t->caps.arena_major;
        ti.arena_minor = t->caps.arena_minor;
        ti.arena_incompat = t->caps.arena_incompat;
        ti.modes = t->caps.modes;
        ti.legacy_forms = t->caps.legacy_forms;
        ti.caps = t->caps.flags;
        memcpy(ti.producer, t->caps.producer, sizeof(ti.producer));
    }
    ti.stock_form = t->stock_form;
    ti.marks = t->marks;
    ti.pid = t->pid;
    ti.dev = (uint64_t)t->st.st_dev;
    ti.ino = (uint64_t)t->st.st_ino;
    ti.size = (uint64_t)t->st.st_size;
    if (t->lib_path) {
        ti.lib_dev = (uint64_t)t->lib_st.st_dev;
        ti.lib_ino = (uint64_t)t->lib_st.st_ino;
    }
    return cprs_info_fill(info, &ti, sizeof(ti));
}

/* ---- The plan (F6) ------------------------------------------------------ */

const char *cprs_format_name(uint32_t format)
{
    static const char *const names[CPRS_FORMAT__MAX] = {
        [CPRS_FORMAT_NONE] = "none",
        [CPRS_FORMAT_ARENA] = "arena",
        [CPRS_FORMAT_LEGACY] = "legacy",
        [CPRS_FORMAT_DUAL] = "dual",
    };

    return format < CPRS_FORMAT__MAX ? names[format] : NULL;
}

const char *cprs_target_class_name(uint32_t klass)
{
    static const char *const names[CPRS_TARGET__MAX] = {
        [CPRS_TARGET_LIBCPRSTATE] = "libcprstate",
        [CPRS_TARGET_STOCK_QEMU] = "stock-qemu",
        [CPRS_TARGET_UNCERTAIN] = "uncertain",
    };

    return klass < CPRS_TARGET__MAX ? names[klass] : NULL;
}

static const char *const policy_names[CPRS_POLICY__MAX] = {
    [CPRS_POLICY_AUTO] = "auto",
    [CPRS_POLICY_ARENA] = "arena",
    [CPRS_POLICY_LEGACY] = "legacy",
    [CPRS_POLICY_DUAL] = "dual",
    [CPRS_POLICY_STRICT] = "strict",
};

int cprs_policy_parse(const char *text, uint32_t *ret_policy)
{
    uint32_t i;

    if (!text || !ret_policy) {
        return -EINVAL;
    }
    for (i = 0; i < CPRS_POLICY__MAX; i++) {
        if (!strcmp(text, policy_names[i])) {
            *ret_policy = i;
            return 0;
        }
    }
    return -EINVAL;
}

#define REFUSE(why) \
    cprs_diag_set(diag, -EPROTONOSUPPORT, 0, -1, -1, "F6.2", (why))

/*
 * Can a QCPR stream of @form carry @si (F6.2)?  Payloads only matter
 * when the format was not @forced: a forced QCPR stream has none, by
 * definition; vfio records in a form without a list always matter.
 */
static int legacy_fits(uint32_t form, const CprsStateInfo *si, bool forced,
                       CprsDiag *diag)
{
    if (si->devstate_count && !forced) {
        return REFUSE("the state holds device-state payloads, which no "
                      "QCPR stream carries");
    }
    if (si->vfio_count && form != CPRS_LEGACY_VFIO_FULL) {
        return REFUSE("the state holds vfio devices, which the target's "
                      "QCPR form (built without iommufd) cannot carry");
    }
    return 0;
}

/* What a libcprstate target reads (from its note), for @mode. */
static bool reads_arena(const CprsCaps *c, uint32_t mode)
{
    /* This library writes arena 1.0: any 1.x reader reads it (10.1). */
    return c->arena_major == CPRS_FORMAT_VERSION_MAJOR &&
           (c->modes & CPRS_CAPS_MODE_BIT(mode));
}

/* spec F6.2: auto and strict. */
static int plan_auto(const CprsTarget *t, const CprsStateInfo *si_,
                     const CprsPlanOpts *o, CprsDiag *diag, CprsPlan *pp)
{
    const CprsStateInfo si = *si_;
    CprsPlan p = *pp;
    int ret = 0;

    switch (t->klass) {
    case CPRS_TARGET_LIBCPRSTATE:
        if (reads_arena(&t->caps, p.mode)) {
            p.format = CPRS_FORMAT_ARENA;
            p.reason = "the target reads this library's arenas";
            if (!(t->caps.arena_incompat & CPRS_INCOMPAT_ZSTD)) {
                p.flags |= CPRS_PLAN_F_NO_ZSTD;
            }
        } else if (t->caps.legacy_forms &
                   CPRS_CAPS_FORM_BIT(CPRS_LEGACY_VFIO_FULL)) {
            p.format = CPRS_FORMAT_LEGACY;
            p.flags |= CPRS_PLAN_F_LOSSY;
            p.reason = "the target reads no arena of this version, but "
                       "QEMU's QCPR stream";
            ret = legacy_fits(CPRS_LEGACY_VFIO_FULL, &si, false, diag);
        } else {
            ret = REFUSE("the target reads neither this library's arenas "
                         "nor a QCPR stream");
        }
        break;
    case CPRS_TARGET_STOCK_QEMU:
        p.format = CPRS_FORMAT_LEGACY;
        p.vfio_form = t->stock_form;
        p.flags |= CPRS_PLAN_F_LOSSY;
        p.reason = "a QEMU without libcprstate: its QCPR stream, in the "
                   "vfio form of its build";
        ret = legacy_fits(t->stock_form, &si, false, diag);
        break;
    default:
        if (o->policy == CPRS_POLICY_STRICT) {
            ret = REFUSE("the target is uncertain, and the policy is "
                         "strict");
        } else if (si.vfio_count) {
            /* A QEMU without iommufd would skip them and go on (F6.2). */
            ret = REFUSE("the target is uncertain and the state holds vfio "
                         "devices, which a QEMU built without iommufd "
                         "would drop");
        } else if (p.mode == CPRS_MODE_EXEC) {
            p.format = CPRS_FORMAT_DUAL;
            p.reason = "the target is uncertain: a dual stream, which "
                       "every reader accepts";
        } else {
            p.format = CPRS_FORMAT_LEGACY;
            p.flags |= CPRS_PLAN_F_LOSSY;
            p.reason = "the peer is uncertain: QEMU's QCPR stream, which "
                       "every reader accepts";
            ret = legacy_fits(CPRS_LEGACY_VFIO_FULL, &si, false, diag);
        }
        break;
    }
    if (!ret) {
        *pp = p;
    }
    return ret;
}

int cprs_target_plan(const CprsTarget *t, const CprsStateInfo *state,
                     const CprsPlanOpts *opts, CprsDiag *diag,
                     CprsPlan *ret_plan)
{
    CprsStateInfo si;
    CprsPlanOpts o;
    CprsPlan p = { .sz = sizeof(p) };
    int ret = 0;

    if (!t || !ret_plan || cprs_opts_copy(&o, sizeof(o), opts) ||
        cprs_opts_copy(&si, sizeof(si), state) ||
        o.policy >= CPRS_POLICY__MAX || o.mode >= CPRS_MODE__MAX ||
        o.vfio_form >= CPRS_LEGACY_VFIO__MAX || o.flags) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    p.mode = o.mode ? o.mode : CPRS_MODE_EXEC;
    p.klass = t->klass;
    p.policy = o.policy;
    p.vfio_form = CPRS_LEGACY_VFIO_FULL;

    /* spec F6.3: a forced format, whatever the target reads. */
    switch (o.policy) {
    case CPRS_POLICY_ARENA:
        p.format = CPRS_FORMAT_ARENA;
        p.flags = CPRS_PLAN_F_FORCED;
        p.reason = "the policy asks for an arena";
        break;
    case CPRS_POLICY_LEGACY:
        p.format = CPRS_FORMAT_LEGACY;
        p.vfio_form = o.vfio_form ? o.vfio_form :
                      t->klass == CPRS_TARGET_STOCK_QEMU ? t->stock_form :
                      CPRS_LEGACY_VFIO_FULL;
        p.flags = CPRS_PLAN_F_FORCED | CPRS_PLAN_F_LOSSY;
        p.reason = "the policy asks for a QCPR stream";
        ret = legacy_fits(p.vfio_form, &si, true, diag);
        break;
    case CPRS_POLICY_DUAL:
        if (p.mode != CPRS_MODE_EXEC) {
            return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "F4.1",
                                 "a dual stream is for cpr-exec only");
        }
        p.format = CPRS_FORMAT_DUAL;
        p.flags = CPRS_PLAN_F_FORCED;
        p.reason = "the policy asks for a dual stream";
        break;
    default:
        break;
    }
    if (ret) {
        return ret;
    }
    if (!p.format) {
        ret = plan_auto(t, &si, &o, diag, &p);
        if (ret) {
            return ret;
        }
    }
    /*
     * spec F5.1: the rollback does not depend on the format written.  A
     * target that honours one, or may (uncertain), gets one armed.
     */
    if (p.mode == CPRS_MODE_EXEC &&
        (t->klass == CPRS_TARGET_UNCERTAIN ||
         (t->klass == CPRS_TARGET_LIBCPRSTATE &&
          (t->caps.flags & CPRS_CAPS_F_ROLLBACK)))) {
        p.flags |= CPRS_PLAN_F_ROLLBACK;
    }
    return cprs_info_fill(ret_plan, &p, sizeof(p));
}

/* ---- Exec (F2.7) ------------------------------------------------------- */

int cprs_target_exec(CprsTarget *t, char *const argv[],
                     const CprsExecOpts *opts, CprsDiag *diag)
{
    char *const *envp;
    char *path = NULL, **sh_argv;
    struct stat now, cur;
    CprsExecOpts o;
    size_t argc;
    int ret;

    if (!t || !argv || !argv[0] || (t->flags & CPRS_TARGET_F_PEER) ||
        t->fd < 0 || cprs_opts_copy(&o, sizeof(o), opts) || o.flags ||
        o.reserved0) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    envp = o.envp ? o.envp : environ;
    /* spec F2.7: the same name, by the same rules, the same file. */
    ret = resolve(argv[0], t->search ? t->search : "", &path);
    if (ret) {
        return cprs_diag_set(diag, ret == -ENOMEM ? ret : -ESTALE, 0, -1,
                             -1, "F2.7", "the target no longer resolves "
                             "to an executable file");
    }
    if (stat(path, &now) < 0 || now.st_dev != t->st.st_dev ||
        now.st_ino != t->st.st_ino) {
        free(path);
        return cprs_diag_set(diag, -ESTALE, 0, -1, -1, "F2.7",
                             "the target path now names another file than "
                             "the one inspected");
    }
    if (fstat(t->fd, &cur) < 0 || cur.st_size != t->st.st_size ||
        cur.st_mtim.tv_sec != t->st.st_mtim.tv_sec ||
        cur.st_mtim.tv_nsec != t->st.st_mtim.tv_nsec ||
        cur.st_ctim.tv_sec != t->st.st_ctim.tv_sec ||
        cur.st_ctim.tv_nsec != t->st.st_ctim.tv_nsec) {
        free(path);
        return cprs_diag_set(diag, -ESTALE, 0, -1, -1, "F2.7",
                             "the target file changed since it was "
                             "inspected");
    }
    if (t->exec_fd) {
        free(path);
        /* What runs is the file inspected, whatever its name says now. */
        syscall(SYS_execveat, t->fd, "", argv, envp, AT_EMPTY_PATH);
        return cprs_diag_set(diag, -errno, 0, -1, -1, "F2.7",
                             "cannot exec the target");
    }
    execve(path, argv, envp);
    ret = -errno;
    if (ret == -ENOEXEC) {
        /* execvp()'s fallback: a file the kernel cannot run, to sh. */
        for (argc = 0; argv[argc]; argc++) {
        }
        sh_argv = calloc(argc + 2, sizeof(*sh_argv));
        if (sh_argv) {
            sh_argv[0] = (char *)"/bin/sh";
            sh_argv[1] = path;
            memcpy(sh_argv + 2, argv + 1, argc * sizeof(*sh_argv));
            execve("/bin/sh", sh_argv, envp);
            ret = -errno;
            free(sh_argv);
        } else {
            ret = -ENOMEM;
        }
    }
    free(path);
    return cprs_diag_set(diag, ret, 0, -1, -1, "F2.7",
                         "cannot exec the target");
}

/* ---- The save path (F6.4) --------------------------------------------- */

int cprs_save_format(CprsSaveOpts *o, uint32_t mode, const CprsStateInfo *si,
                     CprsDiag *diag, uint32_t *ret_format)
{
    CprsPlan p;
    int ret;

    if (!o->plan) {
        if ((o->flags & CPRS_SAVE_F_LEGACY) && (o->flags & CPRS_SAVE_F_DUAL)) {
            return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "F6.4",
                                 "a save is legacy or dual, not both");
        }
        if ((o->flags & CPRS_SAVE_F_DUAL) && mode != CPRS_MODE_EXEC) {
            return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "F4.1",
                                 "a dual stream is for cpr-exec only");
        }
        *ret_format = o->flags & CPRS_SAVE_F_DUAL ? CPRS_FORMAT_DUAL :
                      o->flags & CPRS_SAVE_F_LEGACY ? CPRS_FORMAT_LEGACY :
                      CPRS_FORMAT_ARENA;
        return 0;
    }
    if ((o->flags & (CPRS_SAVE_F_LEGACY | CPRS_SAVE_F_DUAL)) ||
        o->vfio_form || cprs_opts_copy(&p, sizeof(p), o->plan) ||
        !p.format || p.format >= CPRS_FORMAT__MAX ||
        p.vfio_form >= CPRS_LEGACY_VFIO__MAX) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "F6.4",
                             "a plan decides the format: no legacy or dual "
                             "flag, no vfio form");
    }
    if (p.mode != mode ||
        (p.format == CPRS_FORMAT_DUAL && mode != CPRS_MODE_EXEC)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "F6.4",
                             "the plan is for the other CPR mode");
    }
    /* The state may have changed since the plan: check it again. */
    if (p.format == CPRS_FORMAT_LEGACY) {
        ret = legacy_fits(p.vfio_form ? p.vfio_form : CPRS_LEGACY_VFIO_FULL,
                          si, p.flags & CPRS_PLAN_F_FORCED, diag);
        if (ret) {
            return ret;
        }
        o->vfio_form = p.vfio_form;
    }
    if (p.format == CPRS_FORMAT_DUAL && !(p.flags & CPRS_PLAN_F_FORCED) &&
        si->vfio_count) {
        return REFUSE("the target is uncertain and the state now holds vfio "
                      "devices, which a QEMU built without iommufd would "
                      "drop");
    }
    if (p.flags & CPRS_PLAN_F_NO_ZSTD) {
        o->flags |= CPRS_SAVE_F__NO_ZSTD;
        o->compress_sections = 0;
    }
    *ret_format = p.format;
    return 0;
}
