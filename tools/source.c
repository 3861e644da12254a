/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * source.c - where cprdump reads a state from, told apart by content:
 * an arena, a legacy "QCPR" stream or an ELF core dump holding either, in
 * a file, on stdin, in /proc/PID/fd/N of a live process, or found by
 * --pid.
 *
 * A live process must not be disturbed: /proc/PID/fd/N is opened by path,
 * which gives a new open file description (the owner's offset does not
 * move), it is read with pread(), and only regular files (memfds) are
 * read that way, since reading another process's pipe or socket would
 * steal its data.  The bytes are copied into memory rather than mapped:
 * an unsealed memfd that its owner truncates would kill cprdump with
 * SIGBUS through a mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-le.h"
#include "proc.h"
#include "source.h"

/* Bytes read from an input so far. */
typedef struct Input {
    uint8_t *buf;
    size_t len;
    size_t cap;
    bool seekable;          /* pread() works: the fd's offset is left alone */
    bool eof;
    uint64_t file_size;     /* a regular file's size, or 0 */
} Input;

/*
 * Read @fd until EOF or until @upto bytes are in, and never past @upto:
 * pread() from offset 0 while it works, read() on a pipe.  The buffer
 * grows as bytes arrive (at most twice what came), or at once to a
 * regular file's size: a number from the input never sizes an
 * allocation by itself.  @upto over @max is -E2BIG before any read.
 */
static int input_read(int fd, Input *in, uint64_t upto, uint64_t max)
{
    uint64_t ncap;
    uint8_t *nbuf;
    ssize_t n;

    if (upto > max || upto > SIZE_MAX) {
        return -E2BIG;
    }
    while (!in->eof && in->len < upto) {
        if (in->len == in->cap) {
            ncap = in->cap ? 2 * (uint64_t)in->cap : 4096;
            if (in->file_size > in->cap && in->file_size < ncap * 16) {
                ncap = in->file_size;
            }
            ncap = ncap > upto ? upto : ncap;
            nbuf = realloc(in->buf, (size_t)ncap);
            if (!nbuf) {
                return -ENOMEM;
            }
            in->buf = nbuf;
            in->cap = (size_t)ncap;
        }
        if (in->seekable) {
            n = pread(fd, in->buf + in->len, in->cap - in->len,
                      (off_t)in->len);
            if (n < 0 && errno == ESPIPE && !in->len) {
                in->seekable = false;
                continue;
            }
        } else {
            n = read(fd, in->buf + in->len, in->cap - in->len);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (!n) {
            in->eof = true;
        }
        in->len += (size_t)n;
    }
    return 0;
}

static void core_advice(const Source *src, int err, const CprsDiag *diag)
{
    switch (err) {
    case -ENOENT:
        cprdump_err("%s: no CPR state in this core: no mapping of "
                    "memfd:%s with a valid state, and no arena or QCPR "
                    "stream in the dumped memory (%s)", src->label,
                    CORE_STATE_MEMFD_NAME, diag->reason);
        break;
    case -ENODATA:
        cprdump_err("%s: the core lists the state mapping but not its "
                    "pages: the dumper left it out.  Dump again with it "
                    "included: for the kernel, set bits 1 and 3 of "
                    "/proc/PID/coredump_filter (echo 0x3b); for gdb, 'set "
                    "use-coredump-filter off' before gcore", src->label);
        break;
    case -EBADMSG:
    case -E2BIG:
        cprdump_err("%s: not a usable ELF core: %s at offset 0x%" PRIx64,
                    src->label, diag->reason, diag->offset);
        break;
    default:
        report_io_error(src->label, err);
        break;
    }
}

/* The state of an ELF core: locate it (library), then read its bytes. */
static int load_core(Source *src, int fd, const uint8_t *buf, size_t size,
                     const Options *o)
{
    CoreOpts co = (CoreOpts){ .skip = o->core_index };
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CoreState *cs = &src->core;
    const char *how;
    int ret;

    *cs = (CoreState){ 0 };
    if (buf) {
        ret = core_find_state_buffer(buf, size, &co, &diag, cs);
    } else {
        ret = core_find_state(fd, &co, &diag, cs);
    }
    if (ret) {
        core_advice(src, ret, &diag);
        return ret;
    }
    how = cs->found_by == CORE_FOUND_NT_FILE ? "through NT_FILE" :
          "by scanning the dumped memory";
    cprdump_note("%s: ELF core: %s found %s at 0x%" PRIx64 "%s%s%s, %"
                 PRIu64 " bytes at core offset 0x%" PRIx64, src->label,
                 cs->format == CPRS_DETECT_ARENA ? "arena" : "QCPR stream",
                 how, cs->vaddr, cs->map_name[0] ? " (in " : "",
                 tx(cs->map_name), cs->map_name[0] ? ")" : "", cs->size,
                 cs->file_offset);
    if (cs->flags & CORE_STATE_F_TRUNCATED) {
        cprdump_err("%s: the core holds only %" PRIu64 " of the arena's %"
                    PRIu64 " bytes", src->label, cs->size,
                    cs->declared_size);
    }
    if (cs->flags & CORE_STATE_F_BAD_NT_FILE) {
        cprdump_note("%s: its NT_FILE note is malformed; part of it "
                     "was ignored", src->label);
    }
    src->from_core = true;
    snprintf(src->core_path, sizeof(src->core_path), "%s", src->path);
    src->origin = SRC_CORE;
    if (cs->size > SIZE_MAX) {
        return -E2BIG;
    }
    src->bytes = malloc(cs->size ? (size_t)cs->size : 1);
    if (!src->bytes) {
        cprdump_err("out of memory");
        return -ENOMEM;
    }
    src->size = (size_t)cs->size;
    if (buf) {
        memcpy(src->bytes, buf + cs->file_offset, src->size);
        return 0;
    }
    ret = inspect_pread(fd, src->bytes, src->size, cs->file_offset);
    if (ret) {
        report_io_error(src->label, ret);
    }
    return ret;
}

/* Decode the bytes: an arena, or a legacy stream. */
static int decode(Source *src, const Options *o)
{
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                  .flags = CPRS_LEGACY_F_ALL_FORMS);
    CprsReaderOpts ro = CPRS_OPTS(CprsReaderOpts);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    char first[64] = "";
    size_t i;
    int ret;

    src->diag = CPRS_OPTS(CprsDiag);
    src->format = cprs_detect(src->bytes, src->size);
    if (src->format == CPRS_DETECT_ARENA && src->stop_err) {
        /* Read no further than its directory: that fault, not "short". */
        src->err = src->stop_err;
        src->diag = src->stop_diag;
        return 0;
    }
    if (src->format == CPRS_DETECT_ARENA) {
        ro.max_arena_size = o->max_size;
        ret = cprs_reader_open_buffer(src->bytes, src->size, &ro,
                                      &src->diag, &src->reader);
        src->err = ret;
        return 0;
    }
    if (src->format == CPRS_DETECT_LEGACY && source_decode_dual(src, o)) {
        return 0;
    }
    if (src->format == CPRS_DETECT_LEGACY) {
        /*
         * The header-only and absent vfio subsections are what QEMU
         * without iommufd and QEMU 10.0 write: valid, not deviations.
         */
        if (o->lenient) {
            lo.flags |= CPRS_LEGACY_F_LENIENT;
        }
        ret = cprs_legacy_decode(src->bytes, src->size, &lo, &src->diag,
                                 &src->legacy);
        src->err = ret;
        if (ret == -EBADMSG && !o->lenient) {
            /* Show what QEMU would read, but report the strict failure. */
            lo.flags |= CPRS_LEGACY_F_LENIENT;
            if (!cprs_legacy_decode(src->bytes, src->size, &lo, &diag,
                                    &src->legacy)) {
                src->lenient_fallback = true;
            }
        }
        return 0;
    }
    if (!src->size) {
        cprdump_err("%s: empty input: no CPR state", src->label);
        return -EBADMSG;
    }
    for (i = 0; i < src->size && i < 8; i++) {
        snprintf(first + 3 * i, sizeof(first) - 3 * i, " %02x",
                 src->bytes[i]);
    }
    cprdump_err("%s: not a CPR state: it starts with%s; expected an arena "
                "(89 43 50 52 53 0d 0a 1a), a QEMU stream (\"QCPR\") or an "
                "ELF core holding one", src->label, first);
    return -EBADMSG;
}

/*
 * An arena: its header, then exactly the arena_size that a header with a
 * valid checksum announces, within --max-size; nothing past it (spec 3.6:
 * trailing bytes are not part of the arena).  A header that does not
 * check out stops the reading: the reader reports why.  The arena starts
 * @at bytes into the input (0, or in a dual stream after its QCPR part).
 */
/*
 * Bytes of an arena read before its directory must check out: past them,
 * the body is read only for a directory whose checksum matches (spec
 * 3.7, 3.8) and whose sections reach to within this of arena_size.  A
 * header with a valid checksum is 192 bytes anyone can write; without
 * this, any process holding a memfd of that name made "cprdump list"
 * read up to 16 GiB.
 */
#define ARENA_EAGER (UINT64_C(1) << 20)

static int stop_at(CprsDiag *stop, int err, uint64_t offset,
                   const char *clause, const char *reason)
{
    *stop = CPRS_OPTS(CprsDiag, .offset = offset, .section = -1,
                      .error = err, .record = -1, .clause = clause,
                      .reason = reason);
    return 0;
}

/*
 * The directory of the arena at @at, whose header (@head, @hsize bytes)
 * checked out, before its body is read: fields (3.7), checksum (3.8), and
 * the furthest byte a section claims.  Fills @stop (error non-zero) when
 * the body is not to be read; returns 0 or an I/O error.
 */
static int check_directory(int fd, Input *in, uint64_t at,
                           const CprsWireHeader *h, uint64_t arena_size,
                           uint64_t max, CprsDiag *stop)
{
    uint64_t dir_off = cprs_le64_get(&h->dir_offset), dir_len, end, reach;
    uint32_t count = cprs_le32_get(&h->dir_count);
    uint32_t esize = cprs_le32_get(&h->dir_entry_size);
    uint32_t hsize = cprs_le32_get(&h->header_size), i;
    const CprsWireSection *e;
    const uint8_t *dir;
    uint8_t *copy = NULL;
    int ret = 0;

    if (count > CPRS_MAX_SECTIONS) {
        return stop_at(stop, -E2BIG, offsetof(CprsWireHeader, dir_count),
                       "7", "more directory entries than allowed");
    }
    if (esize < CPRS_SECTION_V1_SIZE || esize > CPRS_MAX_RECORD_SIZE ||
        (esize & (CPRS_ALIGN - 1))) {
        return stop_at(stop, -EBADMSG,
                       offsetof(CprsWireHeader, dir_entry_size), "3.7",
                       "dir_entry_size out of range");
    }
    dir_len = (uint64_t)count * esize;
    if (dir_off < hsize || (dir_off & (CPRS_ALIGN - 1)) ||
        dir_off > arena_size || dir_len > arena_size - dir_off) {
        return stop_at(stop, -EBADMSG, offsetof(CprsWireHeader, dir_offset),
                       "3.7", "directory outside the arena, misaligned or "
                       "overlapping the header");
    }
    end = dir_off + dir_len;
    if (end <= ARENA_EAGER) {
        ret = input_read(fd, in, at + end, max);
        if (ret || in->len < at + end) {
            return ret;
        }
        dir = in->buf + at + dir_off;
    } else if (in->seekable) {
        copy = malloc(dir_len ? (size_t)dir_len : 1);
        if (!copy) {
            return -ENOMEM;
        }
        ret = inspect_pread(fd, copy, (size_t)dir_len, at + dir_off);
        if (ret) {
            free(copy);
            return ret == -EBADMSG ? 0 : ret;   /* short: the reader says so */
        }
        dir = copy;
    } else {
        return 0;   /* a pipe of our own, its directory far: read it all */
    }
    if (cprs_crc32c(0, dir, (size_t)dir_len) !=
        cprs_le32_get(&h->dir_crc32c)) {
        free(copy);
        return stop_at(stop, -EBADMSG, offsetof(CprsWireHeader, dir_crc32c),
                       "3.8", "directory CRC32C mismatch");
    }
    reach = end;
    for (i = 0; i < count; i++) {
        e = (const CprsWireSection *)(dir + (uint64_t)i * esize);
        if (cprs_le64_get(&e->offset) <= arena_size &&
            cprs_le64_get(&e->stored_size) <=
            arena_size - cprs_le64_get(&e->offset) &&
            cprs_le64_get(&e->offset) + cprs_le64_get(&e->stored_size) >
            reach) {
            reach = cprs_le64_get(&e->offset) +
                    cprs_le64_get(&e->stored_size);
        }
    }
    free(copy);
    if (arena_size - reach > ARENA_EAGER) {
        return stop_at(stop, -E2BIG, offsetof(CprsWireHeader, arena_size),
                       "7", "arena_size reaches more than 1 MiB past every "
                       "section: cprdump does not read that many unclaimed "
                       "bytes");
    }
    return 0;
}

static int read_arena_at(int fd, Input *in, uint64_t at, uint64_t max,
                         CprsDiag *stop)
{
    const CprsWireHeader *h;
    uint64_t arena_size;
    uint32_t hsize, crc;
    uint8_t head[CPRS_MAX_HEADER_SIZE];
    int ret;

    ret = input_read(fd, in, at + CPRS_HEADER_V1_SIZE, max);
    if (ret || in->len < at + CPRS_HEADER_V1_SIZE) {
        return ret;
    }
    h = (const CprsWireHeader *)(in->buf + at);
    hsize = cprs_le32_get(&h->header_size);
    if (hsize < CPRS_HEADER_V1_SIZE || hsize > CPRS_MAX_HEADER_SIZE ||
        (hsize & (CPRS_ALIGN - 1))) {
        return 0;
    }
    ret = input_read(fd, in, at + hsize, max);
    if (ret || in->len < at + hsize) {
        return ret;
    }
    /* spec 3.9: the header checksum, before its size is believed. */
    memcpy(head, in->buf + at, hsize);
    h = (const CprsWireHeader *)head;
    crc = cprs_le32_get(&h->header_crc32c);
    memset(head + offsetof(CprsWireHeader, header_crc32c), 0, 4);
    arena_size = cprs_le64_get(&h->arena_size);
    if (cprs_crc32c(0, head, hsize) != crc || arena_size < hsize ||
        arena_size > CPRS_MAX_ARENA_SIZE || arena_size > max - at) {
        return 0;
    }
    if (arena_size > ARENA_EAGER) {
        ret = check_directory(fd, in, at, h, arena_size, max, stop);
        if (ret || stop->error) {
            return ret;
        }
    }
    return input_read(fd, in, at + arena_size, max);
}

/*
 * What follows a QCPR stream of @len bytes in a dual stream (spec/fail-
 * safe.rst F4.2): zero bytes up to the next multiple of 8, an arena (its
 * header, then its arena_size), then the 48-byte trailer; read as far as
 * those say, within @max.  The library checks it all (source_decode_dual).
 * Returns 0 when it was read, 1 when the bytes are not laid out so (the
 * caller goes on as for a plain stream), or an error.
 */
static int read_dual_rest(int fd, Input *in, uint64_t len, uint64_t max)
{
    CprsDiag stop = CPRS_OPTS(CprsDiag, .error = 0);
    uint64_t at = (len + CPRS_ALIGN - 1) & ~(uint64_t)(CPRS_ALIGN - 1), i;
    uint64_t end;
    int ret;

    if (max - len < CPRS_MAGIC_SIZE + (at - len)) {
        return 1;
    }
    ret = input_read(fd, in, at + CPRS_MAGIC_SIZE, max);
    if (ret) {
        return ret;
    }
    if (in->len < at + CPRS_MAGIC_SIZE ||
        cprs_detect(in->buf + at, CPRS_MAGIC_SIZE) != CPRS_DETECT_ARENA) {
        return 1;
    }
    for (i = len; i < at; i++) {
        if (in->buf[i]) {
            return 1;
        }
    }
    ret = read_arena_at(fd, in, at, max, &stop);
    if (ret) {
        return ret;
    }
    if (stop.error) {
        return 1;
    }
    /* Only an arena whose header checked out was read to its end. */
    end = in->len;
    if (end < at + CPRS_HEADER_V1_SIZE ||
        end - at != cprs_le64_get(&((const CprsWireHeader *)
                                    (in->buf + at))->arena_size) ||
        max - end < sizeof(CprsWireDualTrailer)) {
        return 1;
    }
    return input_read(fd, in, end + sizeof(CprsWireDualTrailer), max);
}

/*
 * A legacy stream has no length: it ends where its grammar ends.  Decode
 * a doubling prefix until the verdict no longer depends on what follows
 * (inspect_legacy_more()), then read at most LEGACY_PEEK bytes more to
 * show what trails it.  An endless input after the magic stops there.
 */
#define LEGACY_PEEK 65536u

static int read_legacy(int fd, Input *in, uint64_t max)
{
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                  .flags = CPRS_LEGACY_F_LENIENT |
                                           CPRS_LEGACY_F_ALL_FORMS);
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    uint64_t want = 256;
    CprsLegacy *lg;
    int ret, dret;

    if (max > CPRS_LEGACY_MAX_SIZE) {
        max = CPRS_LEGACY_MAX_SIZE;
    }
    for (;;) {
        ret = input_read(fd, in, want < max ? want : max, max);
        if (ret) {
            return ret;
        }
        li.size = 0;
        dret = cprs_legacy_decode(in->buf, in->len, &lo, &diag, &lg);
        if (!dret) {
            cprs_legacy_get_info(lg, &li);
            cprs_legacy_free(lg);
        }
        if (dret == -ENOMEM) {
            return dret;
        }
        if (in->eof || in->len >= max ||
            !inspect_legacy_more(dret, &diag, li.size, in->len)) {
            break;
        }
        want = 2 * (uint64_t)in->len;
    }
    if (dret || in->eof) {
        return 0;
    }
    ret = read_dual_rest(fd, in, li.size, max);
    if (ret <= 0) {
        return ret;
    }
    want = li.size + LEGACY_PEEK;
    return input_read(fd, in, want < max ? want : max, max);
}

/* An ELF core on a pipe: as many bytes as its headers say it has. */
static int read_core(int fd, Input *in, uint64_t max)
{
    uint64_t need = in->len;
    int ret;

    for (;;) {
        ret = core_extent(in->buf, in->len, &need);
        if (ret || need <= in->len || in->eof) {
            return ret;
        }
        ret = input_read(fd, in, need, max);
        if (ret) {
            return ret;
        }
    }
}

/*
 * Read the state from @fd, deciding on its first bytes: an ELF core in a
 * file is located in place (it may be many gigabytes); anything else is
 * read as far as its own header or grammar says, within --max-size.
 */
static int read_source(Source *src, int fd, const Options *o)
{
    const char *what = src->origin == SRC_STDIN ? "standard input" :
                       src->path;
    Input in = { .seekable = true };
    struct stat st;
    int ret = 0;

    if (!fstat(fd, &st) && S_ISREG(st.st_mode)) {
        in.file_size = (uint64_t)st.st_size;
    }
    ret = input_read(fd, &in, CPRS_MAGIC_SIZE, o->max_size);
    if (!ret && in.len >= 4 && !memcmp(in.buf, "\177ELF", 4)) {
        if (in.seekable) {
            free(in.buf);
            return load_core(src, fd, NULL, 0, o);
        }
        ret = read_core(fd, &in, o->max_size);
        if (!ret) {
            ret = load_core(src, -1, in.buf, in.len, o);
            free(in.buf);
            return ret;
        }
    } else if (!ret && cprs_detect(in.buf, in.len) == CPRS_DETECT_ARENA) {
        src->stop_diag = CPRS_OPTS(CprsDiag, .error = 0);
        ret = read_arena_at(fd, &in, 0, o->max_size, &src->stop_diag);
        src->stop_err = src->stop_diag.error;
    } else if (!ret && cprs_detect(in.buf, in.len) == CPRS_DETECT_LEGACY) {
        ret = read_legacy(fd, &in, o->max_size);
    }
    if (ret) {
        free(in.buf);
        report_io_error(what, ret);
        return ret;
    }
    /* decode() refuses what is neither, from these first bytes. */
    src->bytes = in.buf;
    src->size = in.len;
    return 0;
}

/*
 * Open a path: never one that reading (or even opening) would take from
 * someone.  What the file is decides, whatever path led to it
 * (/proc/PID/fd/N, /proc/PID/task/TID/fd/N, a symlink...), and it is
 * decided before the file is opened (open_regular()): only a regular
 * file (a memfd) or a block device is read.  A pipe, a socket, a
 * terminal or any other device is refused.  cprdump reads a pipe only as
 * its own standard input ("-").
 */
static int open_source(const char *path, int *ret_fd)
{
    struct stat st;
    int ret;

    ret = open_regular(path, ret_fd, &st);
    if (ret < 0) {
        report_io_error(path, ret);
        return ret;
    }
    if (ret > 0) {
        cprdump_err("%s is a %s, not a regular file or memfd (or a block "
                    "device): cprdump does not open it (that could take "
                    "the data from whoever it is meant for); to inspect a "
                    "stream you own, pipe it to standard input: cprdump "
                    "show - < ...", tx(path), file_kind(st.st_mode));
        return -EINVAL;
    }
    return 0;
}

int source_load(const char *arg, int pid, const Options *o, Source *src)
{
    int fd = -1, ret, num;

    memset(src, 0, sizeof(*src));
    src->pid = -1;
    src->fd_num = -1;
    if (!arg) {
        snprintf(src->label, sizeof(src->label), "pid %d", pid);
        ret = pid_find_state(pid, &num);
        if (ret) {
            return ret;
        }
        src->origin = SRC_PID;
        src->pid = pid;
        src->fd_num = num;
        snprintf(src->path, sizeof(src->path), "/proc/%d/fd/%d", pid,
                 num);
        snprintf(src->label, sizeof(src->label), "pid %d", pid);
    } else if (!strcmp(arg, "-")) {
        src->origin = SRC_STDIN;
        snprintf(src->label, sizeof(src->label), "-");
        fd = STDIN_FILENO;
    } else {
        src->origin = parse_proc_fd(arg, &src->pid, &src->fd_num) ?
                      SRC_PROC_FD : SRC_FILE;
        snprintf(src->path, sizeof(src->path), "%s", arg);
        snprintf(src->label, sizeof(src->label), "%s", tx(arg));
    }
    if (fd < 0) {
        ret = open_source(src->path, &fd);
        if (ret) {
            return ret;
        }
    }
    ret = read_source(src, fd, o);
    if (fd != STDIN_FILENO) {
        close(fd);
    }
    if (!ret) {
        ret = decode(src, o);
    }
    return ret;
}

int source_args(const Options *o, int first, int count,
                SourceArg **ret_list)
{
    Options pids = { .npids = 0 };
    SourceArg *list;
    int i, n = 0, stdin_seen = 0;

    if (o->npids) {
        memcpy(pids.pids, o->pids, (size_t)o->npids * sizeof(int));
        pids.npids = o->npids;
        for (i = first; i < first + count; i++) {
            if (options_add_pids(&pids, o->args[i])) {
                return -1;
            }
        }
        count = pids.npids;
    }
    list = calloc(count ? (size_t)count : 1, sizeof(*list));
    if (!list) {
        cprdump_err("out of memory");
        return -1;
    }
    for (i = 0; i < count; i++) {
        if (o->npids) {
            list[n++].pid = pids.pids[i];
            continue;
        }
        list[n].path = o->args[first + i];
        list[n++].pid = -1;
        if (!strcmp(o->args[first + i], "-") && stdin_seen++) {
            cprdump_err("standard input (-) can be only one SOURCE");
            free(list);
            return -1;
        }
    }
    *ret_list = list;
    return n;
}

void source_free(Source *src)
{
    cprs_reader_close(src->reader);
    cprs_legacy_free(src->legacy);
    free(src->bytes);
    src->reader = NULL;
    src->legacy = NULL;
    src->bytes = NULL;
}

void source_report(const Source *src, int err, const CprsDiag *diag)
{
    char text[512];

    cprs_diag_format(diag, text, sizeof(text));
    cprdump_err("%s: %s %s: %s", src->label,
                src->format == CPRS_DETECT_LEGACY ? "QCPR stream" : "arena",
                err == -EPROTONOSUPPORT ? "unsupported" : "invalid", text);
    if (src->lenient_fallback) {
        cprdump_err("%s: QEMU would accept this stream; --lenient reads "
                    "it as QEMU does", src->label);
    }
}

int source_verify(Source *s, CprsDiag *diag)
{
    int ret;

    *diag = s->diag;
    if (s->err) {
        return s->err;
    }
    if (s->format == CPRS_DETECT_ARENA) {
        ret = cprs_reader_verify(s->reader, diag);
        return ret ? ret : source_verify_rollback(s, diag);
    }
    return 0;
}

uint32_t src_fd_count(const Source *s)
{
    if (s->reader) {
        return cprs_reader_fd_count(s->reader);
    }
    return cprs_legacy_fd_count(s->legacy);
}

int src_fd_get(const Source *s, uint32_t i, CprsFdInfo *fi)
{
    *fi = CPRS_OPTS(CprsFdInfo);
    if (s->reader) {
        return cprs_reader_fd_get(s->reader, i, fi);
    }
    return cprs_legacy_fd_get(s->legacy, i, fi);
}

uint32_t src_vfio_count(const Source *s)
{
    if (s->reader) {
        return cprs_reader_vfio_count(s->reader);
    }
    return cprs_legacy_vfio_count(s->legacy);
}

int src_vfio_get(const Source *s, uint32_t i, CprsVfioDeviceInfo *vi)
{
    *vi = CPRS_OPTS(CprsVfioDeviceInfo);
    if (s->reader) {
        return cprs_reader_vfio_get(s->reader, i, vi);
    }
    return cprs_legacy_vfio_get(s->legacy, i, vi);
}

uint32_t src_mode(const Source *s)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);

    if (s->reader && !cprs_reader_get_info(s->reader, &ai)) {
        return ai.mode;
    }
    if (s->legacy && !cprs_legacy_get_info(s->legacy, &li)) {
        return li.mode;
    }
    return 0;
}
