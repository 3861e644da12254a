/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-bounded-reader.c - the arena reader on the worst inputs of issue 11,
 * its work counted at 1x and 8x (tests/bounded.h), never timed.
 *
 * Run one with --filter TEST (meson: bounded-<class>-<what>):
 *   test_section_failure   class 2: a damaged section costs its CRC (or
 *                          its decompression) once, not once per access
 *   test_zstd_budget       class 4: frames of 1 GiB of zeros in a small
 *                          arena stay within the memory budget; the
 *                          frame's content size is checked before
 *                          anything is allocated
 *   test_verify_streams    class 4: verify checks compressed records as
 *                          they decompress, never holding the section
 *   test_source_read       class 5: a source is read header first, then
 *                          exactly arena_size bytes
 *   test_unsealed_copy     class 9: an fd that another process can still
 *                          write is copied, a sealed one mapped
 *   test_size_t            class 10: an arena larger than size_t is
 *                          refused before it is mapped or read
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"
#include "bounded.h"

/* ---- Inputs ------------------------------------------------------------ */

/*
 * A zstd frame of @raw zero bytes made of RLE blocks of 128 KiB (RFC 8878
 * 3.1.1.2), with a 128 KiB window and @fcs as Frame_Content_Size: equal
 * to @raw for a valid frame.  Zstd's largest ratio, built in microseconds.
 */
static uint8_t *rle_frame(uint64_t raw, uint64_t fcs, size_t *ret_len)
{
    uint64_t nblocks = (raw + (128u << 10) - 1) / (128u << 10), i, left;
    size_t len = 14 + 4 * nblocks;
    uint8_t *f = malloc(len), *p = f;
    uint32_t bh, bsize;

    assert_non_null(f);
    memcpy(p, "\x28\xb5\x2f\xfd", 4);       /* magic */
    p[4] = 0xc0;                            /* 8-byte FCS, not single */
    p[5] = 7 << 3;                          /* window 2^(10+7) */
    for (i = 0; i < 8; i++) {
        p[6 + i] = (uint8_t)(fcs >> (8 * i));
    }
    p += 14;
    for (i = 0, left = raw; i < nblocks; i++, left -= bsize) {
        bsize = left < (128u << 10) ? (uint32_t)left : (128u << 10);
        bh = (i + 1 == nblocks) | (1u << 1) | (bsize << 3);
        p[0] = (uint8_t)bh;
        p[1] = (uint8_t)(bh >> 8);
        p[2] = (uint8_t)(bh >> 16);
        p[3] = 0;                           /* the byte repeated */
        p += 4;
    }
    *ret_len = len;
    return f;
}

/* An arena of @n fd records "fd<i>" (names unique), @compress as the
 * writer's compress_sections. */
static uint8_t *fd_arena(uint32_t n, uint32_t compress, size_t *ret_size)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE,
                                 .compress_sections = compress);
    CprsFdInfo fi;
    CprsWriter *w;
    char name[32];
    void *buf;
    uint32_t i;

    assert_int_equal(cprs_writer_new(&o, &w), 0);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "fd%u", i);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .id = (int32_t)i,
                       .fd = (int32_t)(i + 3));
        assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    }
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, ret_size), 0);
    cprs_writer_free(w);
    return buf;
}

/* Every fd record accessed once, as `cprdump show` does; failures count. */
static uint32_t access_all(CprsReader *r)
{
    uint32_t i, n = cprs_reader_fd_count(r), failed = 0;
    CprsFdInfo fi;

    for (i = 0; i < n; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        failed += cprs_reader_fd_get(r, i, &fi) != 0;
    }
    return failed;
}

/*
 * Linear from 1x to 8x, give or take 25% and a constant: two zstd blocks
 * and a decoding window (what a frame costs whatever its length).
 */
static void expect_linear(const char *what, const Work *w1, const Work *w8)
{
    int k;

    work_print("1x", w1);
    work_print("8x", w8);
    k = work_linear(w1, w8, 1.25, 3u << 17);
    if (k >= 0) {
        fail_msg("%s: %s grew faster than the input (%" PRIu64 " -> %"
                 PRIu64 ")", what, work_names[k], w1->n[k], w8->n[k]);
    }
}

/* ---- Class 2: a failure is kept like a success ------------------------- */

/* One flipped byte in FDS: every record access fails, the CRC runs once. */
static Work flipped_fds(uint32_t n)
{
    CprsReader *r;
    uint8_t *buf;
    size_t size;
    Work w;

    buf = fd_arena(n, 0, &size);
    buf[th_rec_off(buf, CPRS_SECTION_FDS, n / 2) + 20] ^= 1;
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    work_reset();
    assert_int_equal(access_all(r), n);
    w = work_now();
    assert_string_equal(cprs_reader_last_diag(r)->clause, "4.7");
    /* Once, whatever the number of accesses. */
    assert_true(w.n[CPRS_WORK_CRC_BYTES] <= size);
    cprs_reader_close(r);
    free(buf);
    return w;
}

/*
 * A compressed FDS whose frame passes its header checks but does not
 * decompress (its blocks hold 8 bytes more than it declares): decoded
 * once, not once per access.
 */
static Work broken_zstd_fds(uint32_t n)
{
    uint64_t raw = (uint64_t)n * CPRS_FD_V1_SIZE;
    static const char tab[] = "x";
    ThSection secs[2] = {
        { .type = CPRS_SECTION_STRTAB, .data = tab, .size = sizeof(tab) },
        { .type = CPRS_SECTION_FDS, .flags = CPRS_SECTION_F_ZSTD,
          .record_count = n, .record_size = CPRS_FD_V1_SIZE,
          .raw_size = raw },
    };
    ThArena a = { .incompat = CPRS_INCOMPAT_ZSTD, .secs = secs, .nsec = 2 };
    CprsReader *r;
    uint8_t *frame, *buf;
    size_t flen, size;
    Work w;

    frame = rle_frame(raw + 8, raw, &flen);
    secs[1].data = frame;
    secs[1].size = flen;
    buf = th_assemble(&a, &size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    work_reset();
    assert_int_equal(access_all(r), n);
    w = work_now();
    assert_string_equal(cprs_reader_last_diag(r)->clause, "5.3");
    assert_true(w.n[CPRS_WORK_ALLOCS] <= 2);
    assert_true(w.n[CPRS_WORK_ALLOC_BYTES] <= raw + (256u << 10));
    cprs_reader_close(r);
    free(buf);
    free(frame);
    return w;
}

static void test_section_failure(void **state)
{
    Work w1, w8;

    (void)state;
    w1 = flipped_fds(2000);
    w8 = flipped_fds(16000);
    expect_linear("flipped byte in FDS", &w1, &w8);
    w1 = broken_zstd_fds(16384);
    w8 = broken_zstd_fds(131072);
    expect_linear("undecodable FDS frame", &w1, &w8);
}

/* ---- Class 4: decompression within the budget -------------------------- */

/* STRTAB and FDS: zstd frames of @raw zero bytes each. */
static uint8_t *zero_bomb(uint64_t raw, size_t *ret_size)
{
    ThSection secs[2] = {
        { .type = CPRS_SECTION_STRTAB, .flags = CPRS_SECTION_F_ZSTD,
          .raw_size = raw },
        { .type = CPRS_SECTION_FDS, .flags = CPRS_SECTION_F_ZSTD,
          .record_count = (uint32_t)(raw / CPRS_FD_V1_SIZE),
          .record_size = CPRS_FD_V1_SIZE, .raw_size = raw },
    };
    ThArena a = { .incompat = CPRS_INCOMPAT_ZSTD, .secs = secs, .nsec = 2 };
    uint8_t *frame, *buf;
    size_t flen;

    frame = rle_frame(raw, raw, &flen);
    secs[0].data = secs[1].data = frame;
    secs[0].size = secs[1].size = flen;
    buf = th_assemble(&a, ret_size);
    free(frame);
    return buf;
}

/*
 * Verify, then every record, each on a fresh reader: refused or handled,
 * the allocations within the budget either way (spec 7.1).
 */
static Work bomb(uint64_t raw, int *ret_verify)
{
    uint64_t budget = CPRS_READER_MEMORY_DEFAULT;
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    uint8_t *buf;
    size_t size;
    Work w, sum;
    int k;

    buf = zero_bomb(raw, &size);
    assert_true(size < (80u << 10));

    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, &d, &r), 0);
    work_reset();
    *ret_verify = cprs_reader_verify(r, &d);
    sum = work_now();
    assert_true(*ret_verify == -EBADMSG || *ret_verify == -E2BIG);
    assert_true(sum.n[CPRS_WORK_ALLOC_BYTES] <= budget);
    cprs_reader_close(r);

    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, &d, &r), 0);
    work_reset();
    assert_int_equal(access_all(r), raw / CPRS_FD_V1_SIZE);
    w = work_now();
    assert_true(w.n[CPRS_WORK_ALLOC_BYTES] <= budget);
    cprs_reader_close(r);
    for (k = 0; k < CPRS_WORK__MAX; k++) {
        sum.n[k] += w.n[k];
    }
    free(buf);
    return sum;
}

static void test_zstd_budget(void **state)
{
    CprsReaderOpts small = CPRS_OPTS(CprsReaderOpts,
                                     .max_memory = 64u << 20);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    uint64_t raw = (uint64_t)4096 * CPRS_FD_V1_SIZE;
    static const char tab[] = "x";
    ThSection secs[2] = {
        { .type = CPRS_SECTION_STRTAB, .data = tab, .size = sizeof(tab) },
        { .type = CPRS_SECTION_FDS, .flags = CPRS_SECTION_F_ZSTD,
          .record_count = 4096, .record_size = CPRS_FD_V1_SIZE,
          .raw_size = raw },
    };
    ThArena a = { .incompat = CPRS_INCOMPAT_ZSTD, .secs = secs, .nsec = 2 };
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    uint8_t *frame, *buf;
    CprsReader *r;
    size_t flen, size;
    int v1, v8;
    Work w1, w8;

    (void)state;
    /* The attack of issue 11 at 1/8 of its size, then in full: 2 GiB of
     * zeros from under 64 KiB. */
    w1 = bomb(UINT64_C(128) << 20, &v1);
    w8 = bomb(UINT64_C(1) << 30, &v8);
    expect_linear("zstd bombs", &w1, &w8);
    assert_int_equal(v8, -E2BIG);       /* 1 GiB + the decoder > 1 GiB */

    /* A frame declaring more than raw_size: refused before any malloc. */
    frame = rle_frame(raw, raw + 64, &flen);
    secs[1].data = frame;
    secs[1].size = flen;
    buf = th_assemble(&a, &size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, &d, &r), 0);
    work_reset();
    assert_int_equal(cprs_reader_fd_get(r, 0, &fi), -EBADMSG);
    assert_string_equal(cprs_reader_last_diag(r)->clause, "5.3");
    assert_int_equal(work_now().n[CPRS_WORK_ALLOCS], 0);
    assert_int_equal(work_now().n[CPRS_WORK_ZSTD_BYTES], 0);
    cprs_reader_close(r);
    free(buf);
    free(frame);

    /* A budget of the caller's: a section that does not fit is refused
     * before it is allocated, with clause 7.1. */
    buf = zero_bomb(UINT64_C(128) << 20, &size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, &small, &d, &r), 0);
    work_reset();
    assert_int_equal(cprs_reader_fd_get(r, 0, &fi), -E2BIG);
    assert_string_equal(cprs_reader_last_diag(r)->clause, "7.1");
    assert_int_equal(cprs_reader_verify(r, &d), -E2BIG);
    assert_string_equal(d.clause, "7.1");
    assert_int_equal(work_now().n[CPRS_WORK_ALLOCS], 0);
    cprs_reader_close(r);
    free(buf);
}

/*
 * A valid arena whose FDS is compressed: verify checks its records as
 * they decompress, so it allocates far less than the section's raw size.
 */
static Work verify_streamed(uint32_t n, uint64_t *ret_raw)
{
    CprsReader *r;
    uint8_t *buf;
    size_t size;
    Work w;
    int sec;

    buf = fd_arena(n, 1u << CPRS_SECTION_FDS, &size);
    sec = th_sec(buf, CPRS_SECTION_FDS);
    *ret_raw = cprs_le64_get(&th_dir(buf, (uint32_t)sec)->raw_size);
    assert_true(cprs_le32_get(&th_dir(buf, (uint32_t)sec)->flags) &
                CPRS_SECTION_F_ZSTD);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    work_reset();
    assert_int_equal(cprs_reader_verify(r, NULL), 0);
    w = work_now();
    cprs_reader_close(r);
    free(buf);
    return w;
}

static void test_verify_streams(void **state)
{
    uint64_t raw1, raw8;
    Work w1, w8;

    (void)state;
    w1 = verify_streamed(20000, &raw1);
    w8 = verify_streamed(160000, &raw8);
    expect_linear("verify of a compressed FDS", &w1, &w8);
    /* Keys and hashes (20 bytes a record) and the slots used, not the
     * 64-byte records themselves. */
    assert_true(w8.n[CPRS_WORK_ALLOC_BYTES] < raw8 / 2);
    assert_true(w8.n[CPRS_WORK_ZSTD_BYTES] >= raw8);
}

/* ---- Class 5: header first, then exactly arena_size --------------------- */

/* Writes zeros into a pipe until the reader closes it. */
static void *pump_zeros(void *arg)
{
    static const uint8_t zeros[65536];
    int fd = *(int *)arg;

    while (write(fd, zeros, sizeof(zeros)) > 0) {
    }
    return NULL;
}

/*
 * A pipe whose header announces @announced bytes but fails its CRC, then
 * pours zeros: only the header is read.
 */
static Work pipe_forged(uint64_t announced)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    pthread_t t;
    uint8_t *buf;
    size_t size;
    int p[2];
    Work w;

    th_build_rich(0, 0, &buf, &size);
    cprs_le64_set(&th_hdr(buf)->arena_size, announced);    /* CRC stale */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], buf, CPRS_HEADER_V1_SIZE),
                     CPRS_HEADER_V1_SIZE);
    assert_int_equal(pthread_create(&t, NULL, pump_zeros, &p[1]), 0);
    work_reset();
    assert_int_equal(cprs_reader_open_fd(p[0], NULL, &d, &r), -EBADMSG);
    w = work_now();
    assert_string_equal(d.clause, "3.9");
    assert_true(w.n[CPRS_WORK_READ_BYTES] <= CPRS_MAX_HEADER_SIZE);
    assert_true(w.n[CPRS_WORK_ALLOC_BYTES] <= CPRS_MAX_HEADER_SIZE);
    close(p[0]);
    assert_int_equal(pthread_join(t, NULL), 0);
    close(p[1]);
    free(buf);
    return w;
}

/*
 * A file: the arena, then a sparse tail @tail bytes long; the arena read
 * with pread (NO_MMAP, or an unsealed memfd), nothing after it.
 */
static Work file_with_tail(uint64_t tail, uint32_t flags)
{
    CprsReaderOpts o = CPRS_OPTS(CprsReaderOpts, .flags = flags);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    uint8_t *buf;
    size_t size;
    int fd;
    Work w;

    th_build_rich(0, 0, &buf, &size);
    fd = memfd_create("arena-and-tail", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    assert_int_equal(ftruncate(fd, (off_t)(size + tail)), 0);
    work_reset();
    assert_int_equal(cprs_reader_open_fd(fd, &o, &d, &r), 0);
    w = work_now();
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    assert_true(w.n[CPRS_WORK_READ_BYTES] <= size);
    assert_true(w.n[CPRS_WORK_ALLOC_BYTES] <= size);
    cprs_reader_close(r);
    close(fd);
    free(buf);
    return w;
}

static void test_source_read(void **state)
{
    Work w1, w8;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    w1 = pipe_forged(UINT64_C(256) << 20);
    w8 = pipe_forged(UINT64_C(2) << 30);
    expect_linear("forged pipe header", &w1, &w8);
    /* The 1.7 KB arena and 6 GiB sparse tail, and 1/8 of it. */
    w1 = file_with_tail(UINT64_C(768) << 20, 0);
    w8 = file_with_tail(UINT64_C(6) << 30, 0);
    expect_linear("sparse tail", &w1, &w8);
    w1 = file_with_tail(UINT64_C(768) << 20, CPRS_READER_F_NO_MMAP);
    w8 = file_with_tail(UINT64_C(6) << 30, CPRS_READER_F_NO_MMAP);
    expect_linear("sparse tail, pread", &w1, &w8);
}

/* ---- Class 9: checked bytes are the bytes used ------------------------- */

static void test_unsealed_copy(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsReader *r;
    uint8_t *buf;
    uint64_t off;
    int32_t fd0;
    size_t size;
    int fd;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    off = th_rec_off(buf, CPRS_SECTION_FDS, 0);
    fd0 = (int32_t)cprs_le32_get(&((CprsWireFd *)(buf + off))->fd);

    /* Unsealed: another process may write it.  The reader's copy is the
     * one checked and used, whatever happens to the file afterwards. */
    fd = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    work_reset();
    assert_int_equal(cprs_reader_open_fd(fd, NULL, &d, &r), 0);
    assert_int_equal(work_now().n[CPRS_WORK_READ_BYTES], size);
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    /* The writer changes the fd number of record 0 (and could break its
     * name, its CRC, anything) after the checks. */
    assert_int_equal(pwrite(fd, "\x7f\x7f\x7f\x7f", 4,
                            (off_t)(off + offsetof(CprsWireFd, fd))), 4);
    assert_int_equal(cprs_reader_fd_get(r, 0, &fi), 0);
    assert_int_equal(fi.fd, fd0);
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    cprs_reader_close(r);
    close(fd);

    /* Sealed against writes and shrinking: mapped, nothing read but the
     * header. */
    fd = memfd_create("sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK),
                     0);
    work_reset();
    assert_int_equal(cprs_reader_open_fd(fd, NULL, &d, &r), 0);
    assert_true(work_now().n[CPRS_WORK_READ_BYTES] <= CPRS_HEADER_V1_SIZE);
    assert_int_equal(work_now().n[CPRS_WORK_ALLOC_BYTES], 0);
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    cprs_reader_close(r);
    close(fd);
    free(buf);
}

/* ---- Class 10: an arena larger than this host's size_t ----------------- */

static void test_size_t(void **state)
{
    uint64_t big = (UINT64_C(1) << 32) + 4096;
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r = NULL;
    uint8_t *buf;
    size_t size;
    int fd, k;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    cprs_le64_set(&th_hdr(buf)->arena_size, big);
    th_fix_crcs(buf, size);
    for (k = 0; k < 2; k++) {
        fd = memfd_create("big", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, size), (ssize_t)size);
        assert_int_equal(ftruncate(fd, (off_t)big), 0);
        if (k) {
            assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE |
                                   F_SEAL_SHRINK), 0);
        }
        /* A 32-bit host, played by the counted build. */
        cprs_work_size_max = UINT32_MAX;
        work_reset();
        assert_int_equal(cprs_reader_open_fd(fd, NULL, &d, &r), -E2BIG);
        cprs_work_size_max = 0;
        assert_string_equal(d.clause, "8.6");
        assert_true(work_now().n[CPRS_WORK_READ_BYTES] <=
                    CPRS_HEADER_V1_SIZE);
        assert_int_equal(work_now().n[CPRS_WORK_ALLOC_BYTES], 0);
        close(fd);
    }
    free(buf);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_section_failure),
        cmocka_unit_test(test_zstd_budget),
        cmocka_unit_test(test_verify_streams),
        cmocka_unit_test(test_source_read),
        cmocka_unit_test(test_unsealed_copy),
        cmocka_unit_test(test_size_t),
    };
    int i;

    for (i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--filter")) {
            cmocka_set_test_filter(argv[i + 1]);
        }
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
