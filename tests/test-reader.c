/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-reader.c - every way to open an arena (buffer, mapped fd, pread
 * fallback, pipe, path, /proc link), lazy CRC checking, limits in opts,
 * the ABI rules of sized structs, and the lenient reading of newer minors.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static int memfd_with(const void *buf, size_t size)
{
    int fd = memfd_create("arena", MFD_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    return fd;
}

static void check_fd0(CprsReader *r)
{
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);

    assert_int_equal(cprs_reader_verify(r, NULL), 0);
    assert_int_equal(cprs_reader_fd_get(r, 0, &fi), 0);
    assert_string_equal(fi.name, "ram0");
}

static void test_open_paths(void **state)
{
    CprsReaderOpts nomap = CPRS_OPTS(CprsReaderOpts,
                                     .flags = CPRS_READER_F_NO_MMAP);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    char path[64];
    uint8_t *buf;
    size_t size;
    CprsReader *r;
    int fd, fd2, p[2];
    pid_t pid;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    fd = memfd_with(buf, size);
    /* The fd's offset is at the end (as QEMU leaves it): no matter. */
    assert_int_equal(cprs_reader_open_fd(fd, NULL, &d, &r), 0);
    check_fd0(r);
    cprs_reader_close(r);
    assert_int_equal(cprs_reader_open_fd(fd, &nomap, &d, &r), 0);
    check_fd0(r);
    cprs_reader_close(r);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)size);

    /* A fresh open file description through /proc, as cprdump does. */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    assert_int_equal(cprs_reader_open_path(path, NULL, &d, &r), 0);
    check_fd0(r);
    cprs_reader_close(r);
    fd2 = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd2 >= 0);
    assert_int_equal(cprs_reader_open_fd(fd2, NULL, &d, &r), 0);
    check_fd0(r);
    cprs_reader_close(r);
    close(fd2);

    /* A pipe: read to EOF. */
    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t done = 0;

        close(p[0]);
        while (done < size) {
            ssize_t n = write(p[1], buf + done, size - done);

            if (n <= 0) {
                _exit(1);
            }
            done += (size_t)n;
        }
        _exit(0);
    }
    close(p[1]);
    assert_int_equal(cprs_reader_open_fd(p[0], NULL, &d, &r), 0);
    check_fd0(r);
    cprs_reader_close(r);
    close(p[0]);
    assert_int_equal(waitpid(pid, NULL, 0), pid);

    /* pread fallback: bytes after arena_size are not read as arena. */
    assert_int_equal(pwrite(fd, "trailing bytes", 14, (off_t)size), 14);
    assert_int_equal(cprs_reader_open_fd(fd, &nomap, &d, &r), 0);
    assert_ptr_not_equal(cprs_reader_bytes(r, NULL), NULL);
    check_fd0(r);
    cprs_reader_close(r);
    /* A pipe that stays open after the arena: read exactly arena_size. */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], buf, size), (ssize_t)size);
    assert_int_equal(write(p[1], "more", 4), 4);
    assert_int_equal(cprs_reader_open_fd(p[0], NULL, &d, &r), 0);
    check_fd0(r);
    cprs_reader_close(r);
    assert_int_equal(read(p[0], path, 4), 4);
    assert_memory_equal(path, "more", 4);
    close(p[0]);
    close(p[1]);

    /* A pipe whose header announces 1 GiB, then ends: malformed (the
     * buffer grows with what arrives, not with what is announced). */
    assert_int_equal(pipe(p), 0);
    cprs_le64_set(&th_hdr(buf)->arena_size, UINT64_C(1) << 30);
    assert_int_equal(write(p[1], buf, 4096 < size ? 4096 : size),
                     (ssize_t)(4096 < size ? 4096 : size));
    close(p[1]);
    assert_int_equal(cprs_reader_open_fd(p[0], NULL, &d, &r), -EBADMSG);
    assert_string_equal(d.clause, "3.9");   /* the header CRC went stale */
    close(p[0]);
    cprs_le64_set(&th_hdr(buf)->arena_size, size);

    /* Errors: bad fd, missing file, truncated file, no arguments. */
    assert_int_equal(cprs_reader_open_fd(-1, NULL, &d, &r), -EINVAL);
    assert_int_equal(cprs_reader_open_path("/nonexistent/arena", NULL, &d,
                                           &r), -ENOENT);
    assert_int_equal(ftruncate(fd, (off_t)size - 8), 0);
    assert_int_equal(cprs_reader_open_fd(fd, NULL, &d, &r), -EBADMSG);
    assert_int_equal(d.offset, size - 8);
    assert_string_equal(d.clause, "3.6");
    assert_int_equal(cprs_reader_open_buffer(NULL, 4, NULL, &d, &r),
                     -EINVAL);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, &d, NULL),
                     -EINVAL);
    close(fd);
    free(buf);
}

/* Bytes after arena_size are not part of the arena (a core dump page). */
static void test_trailing_bytes(void **state)
{
    uint8_t *buf, *big;
    size_t size, out;
    CprsReader *r;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    big = calloc(1, size + 4096);
    memcpy(big, buf, size);
    memset(big + size, 0xee, 4096);
    assert_int_equal(cprs_reader_open_buffer(big, size + 4096, NULL, NULL,
                                             &r), 0);
    assert_int_equal(cprs_reader_verify(r, NULL), 0);
    assert_ptr_equal(cprs_reader_bytes(r, &out), big);
    assert_int_equal(out, size);
    cprs_reader_close(r);
    free(big);
    free(buf);
}

/* Open checks no section CRC; the first access does; NO_CRC skips it. */
static void test_lazy_crc(void **state)
{
    CprsReaderOpts nocrc = CPRS_OPTS(CprsReaderOpts,
                                     .flags = CPRS_READER_F_NO_CRC);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo);
    const CprsDiag *last;
    CprsDiag d = CPRS_OPTS(CprsDiag);
    uint8_t *buf;
    size_t size;
    uint64_t off;
    CprsReader *r;
    int s;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    off = th_rec_off(buf, CPRS_SECTION_FDS, 0) + offsetof(CprsWireFd, fd);
    buf[off] ^= 0x40;      /* fd 11 -> 75, CRC now wrong */
    s = th_sec(buf, CPRS_SECTION_FDS);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, &d, &r), 0);
    assert_int_equal(cprs_reader_vfio_get(r, 0, &vi), 0);
    assert_int_equal(cprs_reader_fd_get(r, 0, &fi), -EBADMSG);
    last = cprs_reader_last_diag(r);
    assert_int_equal(last->section, s);
    assert_string_equal(last->clause, "4.7");
    assert_int_equal(last->offset, cprs_le64_get(&th_hdr(buf)->dir_offset) +
                     (uint64_t)s * CPRS_SECTION_V1_SIZE +
                     offsetof(CprsWireSection, crc32c));
    assert_int_equal(cprs_reader_verify(r, &d), -EBADMSG);
    assert_string_equal(d.clause, "4.7");
    cprs_reader_close(r);

    assert_int_equal(cprs_reader_open_buffer(buf, size, &nocrc, &d, &r), 0);
    assert_int_equal(cprs_reader_fd_get(r, 0, &fi), 0);
    assert_int_equal(fi.fd, 75);
    /* verify checks CRCs even when access does not. */
    assert_int_equal(cprs_reader_verify(r, &d), -EBADMSG);
    cprs_reader_close(r);
    free(buf);
}

static void test_opts_limits(void **state)
{
    CprsReaderOpts o;
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo);
    uint8_t *buf;
    size_t size;
    CprsReader *r;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    o = CPRS_OPTS(CprsReaderOpts, .max_records = 2);
    assert_int_equal(cprs_reader_open_buffer(buf, size, &o, &d, &r), -E2BIG);
    assert_string_equal(d.clause, "7");
    o = CPRS_OPTS(CprsReaderOpts, .max_arena_size = size - 8);
    assert_int_equal(cprs_reader_open_buffer(buf, size, &o, &d, &r), -E2BIG);
    assert_int_equal(d.offset, offsetof(CprsWireHeader, arena_size));
    o = CPRS_OPTS(CprsReaderOpts, .max_payload_size = 1000);
    assert_int_equal(cprs_reader_open_buffer(buf, size, &o, &d, &r), 0);
    assert_int_equal(cprs_reader_devstate_get(r, 0, &di), -E2BIG);
    assert_int_equal(cprs_reader_devstate_get(r, 1, &di), 0);
    assert_int_equal(cprs_reader_verify(r, &d), -E2BIG);
    cprs_reader_close(r);
    o = CPRS_OPTS(CprsReaderOpts, .flags = 0x80);
    assert_int_equal(cprs_reader_open_buffer(buf, size, &o, &d, &r), -EINVAL);
    /* Limits may be lowered, never raised: a huge value means the max. */
    o = CPRS_OPTS(CprsReaderOpts, .max_records = UINT32_MAX);
    assert_int_equal(cprs_reader_open_buffer(buf, size, &o, &d, &r), 0);
    cprs_reader_close(r);
    free(buf);
}

/*
 * The memory budget (spec 7.1): what accessors keep and what verify uses
 * are held against max_memory before anything is allocated; a refusal,
 * like any failure of a section, is kept and reported again the same.
 */
static void test_memory_budget(void **state)
{
    const uint32_t all = ((1u << CPRS_SECTION__MAX) - 1) & ~1u;
    CprsReaderOpts o = CPRS_OPTS(CprsReaderOpts, .max_memory = 4096);
    CprsDiag d = CPRS_OPTS(CprsDiag), first;
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo);
    const void *data;
    uint8_t out[1 << 16], *copy;
    size_t size, got;
    uint8_t *buf;
    CprsReader *r;
    uint32_t i;

    (void)state;
    th_build_rich(0, all, &buf, &size);

    /* Every section compressed: 4 KiB hold none of them. */
    assert_int_equal(cprs_reader_open_buffer(buf, size, &o, &d, &r), 0);
    assert_int_equal(cprs_reader_fd_get(r, 0, &fi), -E2BIG);
    first = *cprs_reader_last_diag(r);
    assert_string_equal(first.clause, "7.1");
    assert_int_equal(cprs_reader_fd_get(r, 1, &fi), -E2BIG);
    assert_int_equal(cprs_reader_last_diag(r)->offset, first.offset);
    assert_int_equal(cprs_reader_last_diag(r)->section, first.section);
    assert_int_equal(cprs_reader_verify(r, &d), -E2BIG);
    assert_string_equal(d.clause, "7.1");
    cprs_reader_close(r);

    /* The default holds them all, and the payloads. */
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, &d, &r), 0);
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    for (i = 0; i < cprs_reader_devstate_count(r); i++) {
        assert_int_equal(cprs_reader_devstate_get(r, i, &di), 0);
        assert_int_equal(cprs_reader_devstate_data(r, i, &data, &size), 0);
        copy = malloc(size + 1);
        assert_non_null(copy);
        assert_int_equal(cprs_reader_devstate_read(r, i, copy, size, &got),
                         0);
        assert_int_equal(got, size);
        assert_memory_equal(copy, data, size);
        free(copy);
    }
    cprs_reader_close(r);

    /*
     * Sections uncompressed, the zstd payload not: the sections need no
     * budget; the payload kept by _data() does, _read() only its decoder.
     */
    free(buf);
    th_build_rich(0, 0, &buf, &size);
    o.max_memory = 1;
    assert_int_equal(cprs_reader_open_buffer(buf, size, &o, &d, &r), 0);
    assert_int_equal(cprs_reader_fd_get(r, 0, &fi), 0);
    for (i = 0; i < cprs_reader_devstate_count(r); i++) {
        assert_int_equal(cprs_reader_devstate_get(r, i, &di), 0);
        if (di.flags & CPRS_DEVSTATE_F_ZSTD) {
            assert_int_equal(cprs_reader_devstate_data(r, i, &data, &got),
                             -E2BIG);
            assert_string_equal(cprs_reader_last_diag(r)->clause, "7.1");
            assert_int_equal(cprs_reader_devstate_data(r, i, &data, &got),
                             -E2BIG);
            assert_int_equal(cprs_reader_devstate_read(r, i, out,
                                                       sizeof(out), &got),
                             -E2BIG);
        }
    }
    assert_int_equal(cprs_reader_verify(r, &d), -E2BIG);
    cprs_reader_close(r);
    free(buf);
}

/* Info structs from older and newer callers. */
static void test_sized_info(void **state)
{
    struct {
        CprsFdInfo fi;
        uint64_t future;
    } big;
    CprsFdInfo small;
    CprsArenaInfo ai;
    uint8_t *buf;
    size_t size;
    CprsReader *r;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    memset(&big, 0x77, sizeof(big));
    big.fi.sz = sizeof(big);
    assert_int_equal(cprs_reader_fd_get(r, 0, &big.fi), 0);
    assert_int_equal(big.fi.fd, 11);
    assert_true(big.future == UINT64_C(0x7777777777777777));
    memset(&small, 0x77, sizeof(small));
    small.sz = offsetof(CprsFdInfo, slot);
    assert_int_equal(cprs_reader_fd_get(r, 0, &small), 0);
    assert_int_equal(small.id, 0);
    assert_int_equal(small.slot, 0x77777777);   /* not written */
    ai.sz = 2;
    assert_int_equal(cprs_reader_get_info(r, &ai), -EINVAL);
    cprs_reader_close(r);
    free(buf);
}

/* A misaligned buffer is copied, so records are never read misaligned. */
static void test_misaligned_buffer(void **state)
{
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    uint8_t *buf, *odd;
    size_t size;
    CprsReader *r;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    odd = malloc(size + 1);
    memcpy(odd + 1, buf, size);
    assert_int_equal(cprs_reader_open_buffer(odd + 1, size, NULL, NULL, &r),
                     0);
    assert_int_equal(cprs_reader_verify(r, NULL), 0);
    assert_int_equal(cprs_reader_fd_get(r, 1, &fi), 0);
    assert_string_equal(fi.name, "pc.bios");
    assert_ptr_not_equal(cprs_reader_bytes(r, NULL), odd + 1);
    cprs_reader_close(r);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    assert_ptr_equal(cprs_reader_bytes(r, NULL), buf);
    cprs_reader_close(r);
    free(odd);
    free(buf);
}

/* The word-at-a-time charset check agrees with the rule byte by byte. */
static void test_name_charset(void **state)
{
    char name[24];
    size_t pos, want;
    int b;

    (void)state;
    for (pos = 0; pos < sizeof(name); pos++) {
        for (b = 0; b < 256; b++) {
            memcpy(name, "abcdefghijklmnopqrstuvw~", sizeof(name));
            name[pos] = (char)b;
            want = b >= 0x20 && b <= 0x7e ? sizeof(name) : pos;
            assert_int_equal(cprs_name_bad_char(name, sizeof(name)), want);
            /* And within a shorter prefix. */
            assert_int_equal(cprs_name_bad_char(name, pos + 1),
                             want == pos ? pos : pos + 1);
        }
    }
}

static void test_diag_format(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    char text[128];
    uint8_t bad[8] = "QCPR\0\0\0\1";
    CprsReader *r;
    int n;

    (void)state;
    assert_int_equal(cprs_reader_open_buffer(bad, sizeof(bad), NULL, &d, &r),
                     -EBADMSG);
    n = cprs_diag_format(&d, text, sizeof(text));
    assert_int_equal(n, (int)strlen(text));
    /* Truncated output still reports the full length. */
    assert_int_equal(cprs_diag_format(&d, text, 8), n);
    assert_int_equal(strlen(text), 7);
    cprs_diag_format(&d, text, sizeof(text));
    assert_string_equal(text, "offset 0x0: bad magic: not a CPR State Arena "
                        "[spec 3.2]");
    d.section = 2;
    d.record = 5;
    cprs_diag_format(&d, text, sizeof(text));
    assert_string_equal(text, "offset 0x0 (section 2, record 5): bad magic: "
                        "not a CPR State Arena [spec 3.2]");
    assert_string_equal(cprs_strerror(-EBADMSG), "malformed or corrupt input");
    assert_string_equal(cprs_strerror(-EPROTONOSUPPORT),
                        "unsupported version or feature");
}

/* Records copied from a real arena, re-strided to @stride bytes. */
static uint8_t *restride(const uint8_t *src, uint32_t count, uint32_t from,
                         uint32_t stride)
{
    uint8_t *out = malloc((size_t)count * stride);
    uint32_t i;

    assert_non_null(out);
    memset(out, 0xa5, (size_t)count * stride);
    for (i = 0; i < count; i++) {
        memcpy(out + (size_t)i * stride, src + (size_t)i * from, from);
    }
    return out;
}

/*
 * spec 8.4: a newer minor may append header fields, entry fields and record
 * fields, use new flag bits and enum values; a reader of an older minor
 * reads what it knows.  The same bytes with our minor are rejected.
 */
static void test_newer_minor(void **state)
{
    uint8_t *rich, *fds, *buf;
    size_t rich_size, size;
    uint64_t strtab_off, strtab_size, fds_off;
    ThSection secs[3];
    ThArena a;
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsReader *r;
    int s;

    (void)state;
    th_build_rich(CPRS_WRITER_F_NO_INDEX, 0, &rich, &rich_size);
    s = th_sec(rich, CPRS_SECTION_STRTAB);
    strtab_off = cprs_le64_get(&th_dir(rich, (uint32_t)s)->offset);
    strtab_size = cprs_le64_get(&th_dir(rich, (uint32_t)s)->stored_size);
    fds_off = th_sec_off(rich, CPRS_SECTION_FDS);
    fds = restride(rich + fds_off, 3, 64, 72);
    /* A new flag bit and a new kind, in record 2. */
    cprs_le32_set(&((CprsWireFd *)(fds + 144))->flags, 0x100);
    cprs_le16_set(&((CprsWireFd *)(fds + 144))->kind, 99);

    secs[0] = (ThSection) { .type = CPRS_SECTION_STRTAB,
                            .flags = CPRS_SECTION_F_REQUIRED,
                            .data = rich + strtab_off, .size = strtab_size };
    secs[1] = (ThSection) { .type = CPRS_SECTION_FDS,
                            .flags = CPRS_SECTION_F_REQUIRED | 0x80,
                            .record_count = 3, .record_size = 72,
                            .data = fds, .size = 3 * 72 };
    secs[2] = (ThSection) { .type = 200, .data = "future", .size = 6 };
    a = (ThArena) { .minor = 1, .header_size = 200, .entry_size = 56,
                    .compat = 0x10, .mode = 3, .secs = secs, .nsec = 3 };
    buf = th_assemble(&a, &size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, &d, &r), 0);
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    assert_int_equal(cprs_reader_fd_count(r), 3);
    assert_int_equal(cprs_reader_fd_get(r, 2, &fi), 0);
    assert_string_equal(fi.name, "vfio-group");
    assert_int_equal(fi.kind, 99);
    assert_int_equal(fi.fd, 20);
    cprs_reader_close(r);
    free(buf);

    /* The same arena claiming minor 0 breaks the rules of 1.0. */
    a.minor = 0;
    buf = th_assemble(&a, &size);
    th_expect_reject(buf, size, -EBADMSG, offsetof(CprsWireHeader,
                                                   header_size), "3.4");
    free(buf);

    /* An unknown section marked required cannot be skipped. */
    secs[2].flags = CPRS_SECTION_F_REQUIRED;
    a.minor = 1;
    buf = th_assemble(&a, &size);
    th_expect_reject(buf, size, -EPROTONOSUPPORT, 200 + 2 * 56, "4.9");
    free(buf);

    /* Unknown incompatible feature: refuse. */
    secs[2].flags = 0;
    a.incompat = 0x8;
    buf = th_assemble(&a, &size);
    th_expect_reject(buf, size, -EPROTONOSUPPORT,
                     offsetof(CprsWireHeader, incompat_features), "3.5");
    free(buf);

    /* A newer major: refuse before looking at anything else. */
    a.incompat = 0;
    a.major = 2;
    buf = th_assemble(&a, &size);
    th_expect_reject(buf, size, -EPROTONOSUPPORT,
                     offsetof(CprsWireHeader, version_major), "3.3");
    free(buf);
    free(fds);
    free(rich);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_paths),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_lazy_crc),
        cmocka_unit_test(test_opts_limits),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_sized_info),
        cmocka_unit_test(test_misaligned_buffer),
        cmocka_unit_test(test_name_charset),
        cmocka_unit_test(test_diag_format),
        cmocka_unit_test(test_newer_minor),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
