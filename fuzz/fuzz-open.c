/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-open.c - cprs_reader_open_{buffer,fd}() on hostile bytes, then
 * every accessor on every index and lookups by names cut from the input,
 * without cprs_reader_verify(): the accessors must be memory-safe on an
 * arena nobody verified (spec 8.1, section.c).
 *
 * Each input is opened several ways that must agree:
 *   - in place (8-aligned buffer, zero-copy);
 *   - from a misaligned copy (the reader copies it), with NO_CRC so that
 *     accessors reach past a section CRC mismatch;
 *   - with every CRC repaired, so that mutated arenas get past the
 *     checksums and into the record checks;
 *   - from a memfd (read while unsealed, mapped once sealed), with
 *     NO_MMAP (pread) and through a pipe: same verdict, same diagnostic
 *     offset and clause as the buffer.
 */
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

#define N_KEYS 4

typedef struct Keys {
    char buf[N_KEYS][FUZZ_KEY_MAX];
    const char *ptr[N_KEYS];
    int32_t ids[N_KEYS];
    size_t n;
} Keys;

/* Open @buf, check the verdict, walk the reader; returns open's result. */
static int open_walk(const uint8_t *buf, size_t size, uint32_t flags,
                     const Keys *k, CprsDiag *diag)
{
    CprsReaderOpts o = fuzz_reader_opts(flags);
    CprsReader *r = NULL;
    int ret;

    *diag = CPRS_OPTS(CprsDiag);
    ret = cprs_reader_open_buffer(buf, size, &o, diag, &r);
    if (ret) {
        FUZZ_ASSERT_MSG(fuzz_reader_errno_ok(ret), "open: error %d", ret);
        FUZZ_ASSERT(r == NULL);
        fuzz_check_diag(diag, ret, size);
        return ret;
    }
    FUZZ_ASSERT(r != NULL);
    fuzz_walk_reader(r, k->ptr, k->ids, k->n, false);
    cprs_reader_close(r);
    return 0;
}

/*
 * The fd paths give the buffer's verdict and diagnostic (spec 8.6): the
 * header is read and checked first, then exactly arena_size bytes, so a
 * source reports what a buffer of its bytes reports, at the same offset,
 * whether it is mapped (a sealed memfd), read with pread (an unsealed
 * one, or NO_MMAP) or read from a pipe.  A regular file is opened with
 * the default 16 GiB arena limit: the reader must not allocate what an
 * unchecked header claims beyond the file's size.  A pipe has no size,
 * so there the fuzz limit (4 MiB) bounds the read.
 */
static void open_fd_same(int fd, uint32_t flags, bool regular,
                         const uint8_t *data, size_t size)
{
    CprsReaderOpts o = fuzz_reader_opts(flags);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsDiag want_diag = CPRS_OPTS(CprsDiag);
    CprsReader *r = NULL;
    int ret, want;

    if (regular) {
        o.max_arena_size = 0;
    }
    want = cprs_reader_open_buffer(data, size, &o, &want_diag, &r);
    cprs_reader_close(r);
    r = NULL;
    ret = cprs_reader_open_fd(fd, &o, &diag, &r);
    FUZZ_ASSERT_MSG(ret == want, "open_fd (flags %u, %s) gave %d, buffer %d",
                    flags, regular ? "file" : "pipe", ret, want);
    if (ret) {
        FUZZ_ASSERT_MSG(diag.offset == want_diag.offset &&
                        !strcmp(diag.clause, want_diag.clause),
                        "open_fd: offset %llu clause %s, buffer: %llu %s",
                        (unsigned long long)diag.offset, diag.clause,
                        (unsigned long long)want_diag.offset,
                        want_diag.clause);
        return;
    }
    fuzz_walk_reader(r, NULL, NULL, 0, false);
    cprs_reader_close(r);
}

static void fd_paths(const uint8_t *data, size_t size)
{
    int fd, pipefd[2];

    fd = memfd_create("fuzz-open", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd >= 0) {
        if (fuzz_write_all(fd, data, size)) {
            /* Unsealed: read (spec 8.5); then sealed: mapped. */
            open_fd_same(fd, 0, true, data, size);
            open_fd_same(fd, CPRS_READER_F_NO_MMAP, true, data, size);
            if (!fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK)) {
                open_fd_same(fd, 0, true, data, size);
            }
        }
        close(fd);
    }
    /* A pipe holds 64 KiB: enough for every input the CI runs make. */
    if (size <= 65536 && pipe2(pipefd, O_CLOEXEC) == 0) {
        if (fuzz_write_all(pipefd[1], data, size)) {
            close(pipefd[1]);
            pipefd[1] = -1;
            open_fd_same(pipefd[0], 0, false, data, size);
        }
        close(pipefd[0]);
        if (pipefd[1] >= 0) {
            close(pipefd[1]);
        }
    }
}

/*
 * The API contract around the input: documented -EINVAL for misuse, opts
 * with an unknown tail, open by path, getters on NULL, error strings.
 * Cheap, and the same for every input.
 */
static void contract(const uint8_t *data, size_t size, int want)
{
    static const int errs[] = {
        0, -EINVAL, -EBADMSG, -EPROTONOSUPPORT, -E2BIG, -ENOMEM, -ENOENT,
        -EEXIST, -ESTALE, -EIO,
    };
    struct {
        CprsReaderOpts o;
        uint64_t tail;
    } big = { fuzz_reader_opts(0), 0 };
    CprsReaderOpts o = fuzz_reader_opts(0x80);   /* unknown flag */
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r = NULL;
    char path[64], text[128];
    size_t i;
    int fd, ret;

    FUZZ_ASSERT(cprs_reader_open_buffer(NULL, 1, NULL, &d, &r) == -EINVAL);
    FUZZ_ASSERT(cprs_reader_open_buffer(data, size, NULL, &d, NULL) ==
                -EINVAL);
    FUZZ_ASSERT(cprs_reader_open_buffer(data, size, &o, &d, &r) == -EINVAL);
    FUZZ_ASSERT(cprs_reader_open_fd(-1, NULL, &d, &r) == -EINVAL);
    FUZZ_ASSERT(cprs_reader_open_path(NULL, NULL, &d, &r) == -EINVAL);
    FUZZ_ASSERT(cprs_reader_open_path("/nonexistent/arena", NULL, &d, &r) ==
                -ENOENT);
    /* A newer caller's opts: accepted when the unknown tail is zero. */
    big.o.sz = sizeof(big);
    ret = cprs_reader_open_buffer(data, size, &big.o, &d, &r);
    FUZZ_ASSERT(ret == want);
    cprs_reader_close(r);
    r = NULL;
    big.tail = 1;
    FUZZ_ASSERT(cprs_reader_open_buffer(data, size, &big.o, &d, &r) ==
                -EINVAL);
    o = CPRS_OPTS(CprsReaderOpts);
    o.sz = 4;                                   /* shorter than a size_t */
    FUZZ_ASSERT(cprs_reader_open_buffer(data, size, &o, &d, &r) == -EINVAL);

    /* By path: /proc/self/fd/N of a memfd is a regular file. */
    fd = memfd_create("fuzz-open-path", MFD_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, data, size) == (ssize_t)size) {
            snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
            o = fuzz_reader_opts(0);
            ret = cprs_reader_open_path(path, &o, &d, &r);
            FUZZ_ASSERT_MSG(ret == want, "open_path gave %d, buffer %d",
                            ret, want);
            cprs_reader_close(r);
            r = NULL;
        }
        close(fd);
    }

    /* Getters on no reader; the library's strings. */
    FUZZ_ASSERT(cprs_reader_get_info(NULL, NULL) == -EINVAL);
    FUZZ_ASSERT(cprs_reader_bytes(NULL, NULL) == NULL);
    FUZZ_ASSERT(cprs_reader_last_diag(NULL) == NULL);
    FUZZ_ASSERT(!cprs_reader_section_count(NULL) &&
                !cprs_reader_fd_count(NULL) &&
                !cprs_reader_ramblock_count(NULL) &&
                !cprs_reader_vfio_count(NULL) &&
                !cprs_reader_devstate_count(NULL));
    FUZZ_ASSERT(cprs_reader_verify(NULL, NULL) == -EINVAL);
    cprs_reader_close(NULL);
    FUZZ_ASSERT(cprs_diag_format(NULL, text, sizeof(text)) == -EINVAL);
    for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        FUZZ_ASSERT(cprs_strerror(errs[i]) != NULL);
    }
    FUZZ_ASSERT(cprs_version() != NULL &&
                cprs_version_number() == CPRS_VERSION_NUMBER);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CprsDiag diag, other;
    Keys k;
    uint8_t *copy;
    size_t i;
    int ret, det;

    if (fuzz_outside_size_range(size, 0, FUZZ_ARENA_MAX_INPUT)) {
        return 0;
    }
    k.n = fuzz_keys_from_input(data, size, k.buf, k.ids, N_KEYS);
    for (i = 0; i < k.n; i++) {
        k.ptr[i] = k.buf[i];
    }

    det = cprs_detect(data, size);
    FUZZ_ASSERT(det >= CPRS_DETECT_UNKNOWN && det < CPRS_DETECT__MAX);

    /* In place: libFuzzer's buffer is 8-aligned. */
    ret = open_walk(data, size, 0, &k, &diag);
    if (ret == 0) {
        FUZZ_ASSERT(det == CPRS_DETECT_ARENA);
    }

    /* Misaligned: the reader copies, and must decide the same. */
    copy = malloc(size + 1);
    FUZZ_ASSERT(copy);
    memcpy(copy + 1, data, size);
    FUZZ_ASSERT(open_walk(copy + 1, size, CPRS_READER_F_NO_CRC, &k,
                          &other) == ret);
    FUZZ_ASSERT(ret == 0 || other.offset == diag.offset);
    free(copy);

    fd_paths(data, size);
    contract(data, size, ret);

    /* Checksums repaired: get to the structural and record checks. */
    if (size >= CPRS_HEADER_V1_SIZE) {
        copy = malloc(size);
        FUZZ_ASSERT(copy);
        memcpy(copy, data, size);
        fuzz_repair_crcs(copy, size);
        open_walk(copy, size, 0, &k, &other);
        free(copy);
    }
    return 0;
}
