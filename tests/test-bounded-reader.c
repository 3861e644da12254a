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
 *   test_immutable_copied  class 9: a file that says it is immutable (a
 *                          FUSE server can say so) is copied all the same
 *   test_payload_overlap   class 2: payloads that share one frame are
 *                          refused by every accessor (6.6.5), checked once
 *   test_read_failure      class 2: devstate_read keeps a frame's failure
 *   test_shared_ranges     class 2: RAM blocks that share their ranges are
 *                          refused by every accessor (6.3.7), checked once
 *   test_lookup_noindex    class 2: lookups in a section without an index
 *                          go through a table built once, not a scan each
 *   test_long_names        class 2: a long name is checked and hashed once
 *                          per distinct reference, a failed one too
 *   test_sort_budget       class 4: verify sorts keys without an index in
 *                          place, allocating nothing outside its budget
 *   test_size_t            class 10: an arena larger than size_t is
 *                          refused before it is mapped or read
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/fs.h>

#include "helpers.h"
#include "bounded.h"

/*
 * Linear from 1x to 8x, give or take 25% and a constant: two zstd blocks
 * and a decoding window (what a frame costs whatever its length).
 */
#define SLACK 1.25
#define FIXED (3u << 17)

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
    work_expect_linear("flipped byte in FDS", &w1, &w8, SLACK, FIXED);
    w1 = broken_zstd_fds(16384);
    w8 = broken_zstd_fds(131072);
    work_expect_linear("undecodable FDS frame", &w1, &w8, SLACK, FIXED);
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
    work_expect_linear("zstd bombs", &w1, &w8, SLACK, FIXED);
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
    work_expect_linear("verify of a compressed FDS", &w1, &w8, SLACK, FIXED);
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
    work_expect_linear("forged pipe header", &w1, &w8, SLACK, FIXED);
    /* The 1.7 KB arena and 6 GiB sparse tail, and 1/8 of it. */
    w1 = file_with_tail(UINT64_C(768) << 20, 0);
    w8 = file_with_tail(UINT64_C(6) << 30, 0);
    work_expect_linear("sparse tail", &w1, &w8, SLACK, FIXED);
    w1 = file_with_tail(UINT64_C(768) << 20, CPRS_READER_F_NO_MMAP);
    w8 = file_with_tail(UINT64_C(6) << 30, CPRS_READER_F_NO_MMAP);
    work_expect_linear("sparse tail, pread", &w1, &w8, SLACK, FIXED);
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

/*
 * Every FS_IOC_GETFLAGS answers "immutable", as a FUSE server may
 * whatever the file does next; everything else goes to the kernel.  The
 * library, linked statically, calls this ioctl().
 */
int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (req == FS_IOC_GETFLAGS) {
        *(int *)arg = FS_IMMUTABLE_FL;
        return 0;
    }
    return (int)syscall(SYS_ioctl, fd, req, arg);
}

static void test_immutable_copied(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsReader *r;
    uint8_t *buf;
    uint64_t off;
    int32_t fd0;
    size_t size;
    int fd, attr = 0;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    off = th_rec_off(buf, CPRS_SECTION_FDS, 0);
    fd0 = (int32_t)cprs_le32_get(&((CprsWireFd *)(buf + off))->fd);
    /* Unsealed, so that only the attribute could make it look frozen. */
    fd = memfd_create("immutable", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    assert_int_equal(ioctl(fd, FS_IOC_GETFLAGS, &attr), 0);
    assert_true(attr & FS_IMMUTABLE_FL);

    /* Copied: every byte read, the copy checked and used. */
    work_reset();
    assert_int_equal(cprs_reader_open_fd(fd, NULL, &d, &r), 0);
    assert_int_equal(work_now().n[CPRS_WORK_READ_BYTES], size);
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    /* The "immutable" file changes after the checks. */
    assert_int_equal(pwrite(fd, "\x7f\x7f\x7f\x7f", 4,
                            (off_t)(off + offsetof(CprsWireFd, fd))), 4);
    assert_int_equal(cprs_reader_fd_get(r, 0, &fi), 0);
    assert_int_equal(fi.fd, fd0);
    /* And shrinks: a mapping would raise SIGBUS here. */
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    cprs_reader_close(r);
    close(fd);
    free(buf);
}

/* ---- Class 2: section-wide rules, lookups and names, paid once --------- */

/*
 * @n compressed payloads of the same 64 KiB, every record's data_off and
 * stored_size then pointed at record 0's frame (spec 6.6.5 broken).
 */
static uint8_t *shared_frame_arena(uint32_t n, size_t *ret_size)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    static uint8_t data[64 << 10];
    CprsDevStateInfo di;
    CprsWireDevState *w0, *w;
    CprsWriter *wr;
    char name[32];
    uint8_t *buf;
    void *out;
    uint32_t i;

    for (i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i % 7);
    }
    assert_int_equal(cprs_writer_new(&o, &wr), 0);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "dev%u", i);
        di = CPRS_OPTS(CprsDevStateInfo, .name = name,
                       .flags = CPRS_DEVSTATE_F_ZSTD);
        assert_int_equal(cprs_writer_add_devstate(wr, &di, data,
                                                  sizeof(data), NULL), 0);
    }
    assert_int_equal(cprs_writer_finish_buffer(wr, &out, ret_size), 0);
    cprs_writer_free(wr);
    buf = out;
    w0 = (CprsWireDevState *)(buf + th_rec_off(buf, CPRS_SECTION_DEVSTATE,
                                               0));
    for (i = 1; i < n; i++) {
        w = (CprsWireDevState *)(buf + th_rec_off(buf, CPRS_SECTION_DEVSTATE,
                                                  i));
        w->data_off = w0->data_off;
        w->stored_size = w0->stored_size;
    }
    th_fix_crcs(buf, *ret_size);
    return buf;
}

static Work payloads_shared(uint32_t n)
{
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo);
    CprsReader *r;
    const void *p;
    uint32_t i, failed = 0;
    uint8_t *buf;
    size_t size, len;
    Work w;

    buf = shared_frame_arena(n, &size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    work_reset();
    for (i = 0; i < n; i++) {
        failed += cprs_reader_devstate_data(r, i, &p, &len) == -EBADMSG;
        failed += cprs_reader_devstate_get(r, i, &di) == -EBADMSG;
    }
    assert_int_equal(cprs_reader_devstate_find(r, "dev1", 0, &i), -EBADMSG);
    w = work_now();
    assert_int_equal(failed, 2 * n);
    assert_string_equal(cprs_reader_last_diag(r)->clause, "6.6.5");
    assert_int_equal(cprs_reader_last_diag(r)->record, 1);
    /* Nothing decoded, the rule's scan once: within the input. */
    assert_int_equal(w.n[CPRS_WORK_ZSTD_BYTES], 0);
    assert_true(w.n[CPRS_WORK_SCAN_BYTES] <= size);
    assert_int_equal(cprs_reader_verify(r, NULL), -EBADMSG);
    cprs_reader_close(r);
    free(buf);
    return w;
}

static void test_payload_overlap(void **state)
{
    Work w1, w8;

    (void)state;
    w1 = payloads_shared(100);
    w8 = payloads_shared(800);
    work_expect_linear("payloads sharing a frame", &w1, &w8, SLACK, FIXED);
}

/* Byte @k of the payloads' data: mostly zero, compressible. */
static uint8_t payload_byte(uint32_t k)
{
    return (uint8_t)(k % 251 < 200 ? 0 : k * 2654435761u >> 24);
}

/* Where @got bytes at @raw first differ from the data at @from, or @got. */
static size_t payload_differs(const uint8_t *raw, size_t got, uint32_t from)
{
    size_t k;

    for (k = 0; k < got && raw[k] == payload_byte(from + (uint32_t)k); k++) {
        continue;
    }
    return k;
}

/*
 * @n compressed payloads of 1 KiB, and with @big one of 4 MiB in the
 * middle, whose decoder grows past what a reader keeps between frames
 * (spec 7.1); the sections of @compress compressed too.  *@ret_write:
 * what the writer did.
 */
static uint8_t *zstd_payloads_arena(uint32_t n, bool big, uint32_t compress,
                                    size_t *ret_size, Work *ret_write)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE,
                                 .compress_sections = compress);
    CprsDevStateInfo di;
    CprsWriter *wr;
    uint8_t *data;
    char name[32];
    void *out;
    uint32_t i;
    size_t len;

    /* Payload i starts at data + i % 64: 64 bytes past the largest. */
    data = malloc((4u << 20) + 64);
    assert_non_null(data);
    for (i = 0; i < (4u << 20) + 64; i++) {
        data[i] = payload_byte(i);
    }
    work_reset();
    assert_int_equal(cprs_writer_new(&o, &wr), 0);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "dev%u", i);
        di = CPRS_OPTS(CprsDevStateInfo, .name = name, .instance_id = i,
                       .flags = CPRS_DEVSTATE_F_ZSTD);
        len = big && i == n / 2 ? 4u << 20 : 1024;
        assert_int_equal(cprs_writer_add_devstate(wr, &di, data + i % 64,
                                                  len, NULL), 0);
    }
    assert_int_equal(cprs_writer_finish_buffer(wr, &out, ret_size), 0);
    cprs_writer_free(wr);
    *ret_write = work_now();
    free(data);
    return out;
}

/*
 * Verify, then read every payload: *@ret_contexts the zstd decoders
 * created for each (the reader keeps a small one between frames).
 */
static Work zstd_payloads(uint32_t n, bool big, uint32_t compress,
                          uint64_t ret_contexts[2])
{
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo);
    uint8_t *buf, *raw = malloc(4u << 20);
    CprsReader *r;
    size_t size, got;
    Work w;
    uint32_t i;

    assert_non_null(raw);
    buf = zstd_payloads_arena(n, big, compress, &size, &w);
    /* The writer keeps one compressor for all its frames. */
    assert_int_equal(w.n[CPRS_WORK_ZSTD_CONTEXTS], 1);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    work_reset();
    assert_int_equal(cprs_reader_verify(r, NULL), 0);
    ret_contexts[0] = work_now().n[CPRS_WORK_ZSTD_CONTEXTS];
    for (i = 0; i < n; i++) {
        assert_int_equal(cprs_reader_devstate_get(r, i, &di), 0);
        assert_int_equal(cprs_reader_devstate_read(r, i, raw, 4u << 20,
                                                   &got), 0);
        assert_int_equal(got, di.raw_size);
        assert_true(di.stored_size < di.raw_size);
        /* The bytes the writer was given (data + i % 64). */
        assert_int_equal(payload_differs(raw, got, i % 64), got);
    }
    w = work_now();
    ret_contexts[1] = w.n[CPRS_WORK_ZSTD_CONTEXTS] - ret_contexts[0];
    cprs_reader_close(r);
    free(buf);
    free(raw);
    return w;
}

/*
 * One zstd decoder per reader, not one per frame: creating one costs
 * microseconds here (libzstd's CPUID traps to the hypervisor), so an
 * arena of small compressed payloads took 5 us each to verify.  A
 * decoder that grew for a large window is not kept.
 */
static void test_zstd_contexts(void **state)
{
    uint64_t c1[2], c8[2];
    Work w1, w8;

    (void)state;
    w1 = zstd_payloads(100, false, 0, c1);
    w8 = zstd_payloads(800, false, 0, c8);
    work_expect_linear("small zstd payloads", &w1, &w8, SLACK, FIXED);
    assert_int_equal(c1[0], 1);
    assert_int_equal(c8[0], 1);
    /* Reading reuses the decoder verify left. */
    assert_int_equal(c1[1], 0);
    assert_int_equal(c8[1], 0);
    /* The large frame's decoder is freed when it ends: the next frame
     * needs a new one, in verify and in the reads alike. */
    zstd_payloads(100, true, 0, c1);
    assert_int_equal(c1[0], 2);
    assert_int_equal(c1[1], 1);
    /* A compressed DEVSTATE: verify decodes each payload while the
     * section decodes, each with a decoder; one of the two is kept (the
     * other freed, not leaked: ASan runs this too), and reading the
     * section then its payloads uses it. */
    zstd_payloads(100, false, 1u << CPRS_SECTION_DEVSTATE, c1);
    assert_int_equal(c1[0], 2);
    assert_int_equal(c1[1], 0);
}

/* One payload whose frame decodes 8 bytes past its raw_size (5.3). */
static uint8_t *bad_frame_arena(uint64_t raw, size_t *ret_size)
{
    static const char tab[] = "x";
    CprsWireDevState rec;
    uint8_t *frame, *blob, *buf;
    size_t flen;
    ThSection secs[3] = {
        { .type = CPRS_SECTION_STRTAB, .data = tab, .size = sizeof(tab) },
        { .type = CPRS_SECTION_DEVSTATE, .record_count = 1,
          .record_size = CPRS_DEVSTATE_V1_SIZE, .data = &rec,
          .size = sizeof(rec) },
        { .type = CPRS_SECTION_BLOB },
    };
    ThArena a = { .incompat = CPRS_INCOMPAT_ZSTD, .secs = secs, .nsec = 3 };

    frame = rle_frame(raw + 8, raw, &flen);
    blob = calloc(1, (flen + 7) & ~(size_t)7);
    assert_non_null(blob);
    memcpy(blob, frame, flen);
    memset(&rec, 0, sizeof(rec));
    cprs_le32_set(&rec.name.off, 0);
    cprs_le32_set(&rec.name.len, 1);
    cprs_le32_set(&rec.flags, CPRS_DEVSTATE_F_ZSTD);
    cprs_le64_set(&rec.stored_size, flen);
    cprs_le64_set(&rec.raw_size, raw);
    secs[2].data = blob;
    secs[2].size = (flen + 7) & ~(size_t)7;
    buf = th_assemble(&a, ret_size);
    free(blob);
    free(frame);
    return buf;
}

static void test_read_failure(void **state)
{
    uint64_t raw = UINT64_C(1) << 20;
    CprsReader *r;
    uint8_t *buf, *out;
    size_t size, len;
    const void *p;
    Work w1, w;
    int k;

    (void)state;
    buf = bad_frame_arena(raw, &size);
    out = malloc(raw);
    assert_non_null(out);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    work_reset();
    assert_int_equal(cprs_reader_devstate_read(r, 0, out, raw, &len),
                     -EBADMSG);
    w1 = work_now();
    assert_string_equal(cprs_reader_last_diag(r)->clause, "5.3");
    assert_true(w1.n[CPRS_WORK_ZSTD_BYTES] > 0);
    /* Every later call, either accessor: the kept failure, no decoding. */
    for (k = 0; k < 64; k++) {
        assert_int_equal(cprs_reader_devstate_read(r, 0, out, raw, &len),
                         -EBADMSG);
        assert_int_equal(cprs_reader_devstate_data(r, 0, &p, &len),
                         -EBADMSG);
        assert_string_equal(cprs_reader_last_diag(r)->clause, "5.3");
    }
    w = work_now();
    assert_int_equal(w.n[CPRS_WORK_ZSTD_BYTES], w1.n[CPRS_WORK_ZSTD_BYTES]);
    assert_int_equal(w.n[CPRS_WORK_SCAN_BYTES], w1.n[CPRS_WORK_SCAN_BYTES]);
    cprs_reader_close(r);
    free(out);
    free(buf);
}

/* @n RAM blocks, then every block pointed at all @n ranges (6.3.7). */
static uint8_t *shared_ranges_arena(uint32_t n, size_t *ret_size)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsRamBlockInfo bi;
    CprsGpaRange gr;
    CprsWireRamBlock *w;
    CprsWriter *wr;
    char name[32];
    uint8_t *buf;
    void *out;
    uint32_t i;

    assert_int_equal(cprs_writer_new(&o, &wr), 0);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "ram%u", i);
        bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = name,
                       .fd_index = CPRS_NO_INDEX, .used_length = 4096,
                       .max_length = 4096, .page_size = 4096);
        gr = (CprsGpaRange) { (uint64_t)i << 12, 4096, 0 };
        assert_int_equal(cprs_writer_add_ramblock(wr, &bi, &gr, 1, NULL), 0);
    }
    assert_int_equal(cprs_writer_finish_buffer(wr, &out, ret_size), 0);
    cprs_writer_free(wr);
    buf = out;
    for (i = 0; i < n; i++) {
        w = (CprsWireRamBlock *)(buf + th_rec_off(buf, CPRS_SECTION_RAMBLOCKS,
                                                  i));
        cprs_le32_set(&w->range_first, 0);
        cprs_le32_set(&w->range_count, n);
    }
    th_fix_crcs(buf, *ret_size);
    return buf;
}

static Work ranges_shared(uint32_t n)
{
    CprsGpaRange gr;
    CprsReader *r;
    uint32_t b, k, ok = 0, idx;
    uint8_t *buf;
    size_t size;
    Work w;

    buf = shared_ranges_arena(n, &size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    work_reset();
    /* As `cprdump show` walks them: every range of every block. */
    for (b = 0; b < n; b++) {
        for (k = 0; k < n; k++) {
            if (cprs_reader_gpa_range_get(r, b, k, &gr)) {
                break;
            }
            ok++;
        }
    }
    assert_int_equal(cprs_reader_ramblock_find(r, "ram0", &idx), -EBADMSG);
    w = work_now();
    assert_int_equal(ok, 0);
    assert_string_equal(cprs_reader_last_diag(r)->clause, "6.3.7");
    assert_int_equal(cprs_reader_last_diag(r)->record, 1);
    assert_true(w.n[CPRS_WORK_SCAN_BYTES] <= size);
    cprs_reader_close(r);
    free(buf);
    return w;
}

static void test_shared_ranges(void **state)
{
    Work w1, w8;

    (void)state;
    w1 = ranges_shared(200);
    w8 = ranges_shared(1600);
    work_expect_linear("RAM blocks sharing ranges", &w1, &w8, SLACK, FIXED);
}

/* @n fd records without an index, named "fd<i>", or @names in turn. */
static uint8_t *noindex_arena(uint32_t n, const char *const *names,
                              uint32_t nnames, size_t *ret_size)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE |
                                          CPRS_WRITER_F_NO_INDEX);
    CprsFdInfo fi;
    CprsWriter *w;
    char name[32];
    void *buf;
    uint32_t i;

    assert_int_equal(cprs_writer_new(&o, &w), 0);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "fd%u", i);
        fi = CPRS_OPTS(CprsFdInfo, .name = names ? names[i % nnames] : name,
                       .id = (int32_t)i, .fd = (int32_t)(i + 3));
        assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    }
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, ret_size), 0);
    cprs_writer_free(w);
    assert_true(th_index_sec(buf, CPRS_SECTION_FDS) < 0);
    return buf;
}

/* Every record looked up by its key, as `cprdump diff` does. */
static Work lookups(uint32_t n, uint64_t budget)
{
    CprsReaderOpts o = CPRS_OPTS(CprsReaderOpts, .max_memory = budget);
    CprsReader *r;
    char name[32];
    uint32_t i, idx;
    uint8_t *buf;
    size_t size;
    Work w;

    buf = noindex_arena(n, NULL, 0, &size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, &o, NULL, &r), 0);
    work_reset();
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "fd%u", i);
        assert_int_equal(cprs_reader_fd_find(r, name, (int32_t)i, &idx), 0);
        assert_int_equal(idx, i);
    }
    assert_int_equal(cprs_reader_fd_find(r, "fd1", 0, &idx), -ENOENT);
    w = work_now();
    cprs_reader_close(r);
    free(buf);
    return w;
}

static void test_lookup_noindex(void **state)
{
    Work w1, w8;

    (void)state;
    w1 = lookups(2000, 0);
    w8 = lookups(16000, 0);
    work_expect_linear("lookups without an index", &w1, &w8, SLACK, FIXED);
    /* Its table charged: with a budget too small for it, the same
     * answers by scanning (spec 6.8, 7.1). */
    w1 = lookups(500, 4096);
    assert_true(w1.n[CPRS_WORK_PROBES] >= 500u * 250u);
    assert_int_equal(w1.n[CPRS_WORK_ALLOCS], 0);
}

/* Two names of 4000 bytes, 'A's and 'B's (or a bad byte in each). */
static const char *const *long_names(bool bad)
{
    static char a[4001], b[4001];
    static const char *const names[2] = { a, b };

    memset(a, 'A', 4000);
    memset(b, 'B', 4000);
    a[3999] = b[3999] = bad ? 1 : 'Z';
    return names;
}

static Work alternating(uint32_t n, uint32_t flags)
{
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsReader *r;
    uint32_t i, idx;
    uint8_t *buf;
    size_t size;
    void *out;
    Work w;

    if (flags & CPRS_WRITER_F_NO_INDEX) {
        buf = noindex_arena(n, long_names(false), 2, &size);
    } else {
        CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                     .flags = CPRS_WRITER_F_REPRODUCIBLE);
        CprsWriter *wr;

        assert_int_equal(cprs_writer_new(&o, &wr), 0);
        for (i = 0; i < n; i++) {
            fi = CPRS_OPTS(CprsFdInfo, .name = long_names(false)[i % 2],
                           .id = (int32_t)i, .fd = (int32_t)(i + 3));
            assert_int_equal(cprs_writer_add_fd(wr, &fi, NULL), 0);
        }
        assert_int_equal(cprs_writer_finish_buffer(wr, &out, &size), 0);
        cprs_writer_free(wr);
        buf = out;
    }
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    work_reset();
    assert_int_equal(cprs_reader_verify(r, NULL), 0);
    assert_int_equal(access_all(r), 0);
    assert_int_equal(cprs_reader_fd_find(r, long_names(false)[1], 1, &idx),
                     0);
    w = work_now();
    /* Each name's 4000 bytes checked once, not once a record. */
    assert_true(w.n[CPRS_WORK_SCAN_BYTES] <= size);
    cprs_reader_close(r);
    free(buf);
    return w;
}

/* Every record names one long name that fails 6.1.2. */
static Work bad_long_name(uint32_t n)
{
    CprsReader *r;
    uint8_t *buf;
    size_t size;
    char *p;
    Work w;
    int k;

    buf = noindex_arena(n, long_names(false), 1, &size);
    p = memmem(buf, size, long_names(false)[0], 4000);
    assert_non_null(p);
    p[3999] = 1;
    th_fix_crcs(buf, size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    work_reset();
    for (k = 0; k < 4; k++) {
        assert_int_equal(access_all(r), n);
        assert_string_equal(cprs_reader_last_diag(r)->clause, "6.1.2");
    }
    w = work_now();
    assert_true(w.n[CPRS_WORK_SCAN_BYTES] <= size);
    cprs_reader_close(r);
    free(buf);
    return w;
}

static void test_long_names(void **state)
{
    Work w1, w8;

    (void)state;
    w1 = alternating(1000, 0);
    w8 = alternating(8000, 0);
    work_expect_linear("alternating long names", &w1, &w8, SLACK, FIXED);
    w1 = alternating(1000, CPRS_WRITER_F_NO_INDEX);
    w8 = alternating(8000, CPRS_WRITER_F_NO_INDEX);
    work_expect_linear("alternating long names, no index", &w1, &w8, SLACK,
                       FIXED);
    w1 = bad_long_name(1000);
    w8 = bad_long_name(8000);
    work_expect_linear("a bad long name", &w1, &w8, SLACK, FIXED);
}

/* ---- Class 4: verify's sort within the budget ------------------------- */

/*
 * glibc's qsort_r() mallocs a buffer as large as the array, outside any
 * budget; verify must not call it (nor qsort()).  Linked before libc, so
 * the library's calls come here; they still sort, to be found out.
 */
static unsigned libc_sorts;

static void slow_sort(void *base, size_t n, size_t size,
                      int (*cmp)(const void *, const void *, void *),
                      void *arg)
{
    char *b = base, *t = malloc(size);
    size_t i, j;

    assert_non_null(t);
    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && cmp(b + (j - 1) * size, b + j * size, arg) > 0;
             j--) {
            memcpy(t, b + j * size, size);
            memcpy(b + j * size, b + (j - 1) * size, size);
            memcpy(b + (j - 1) * size, t, size);
        }
    }
    free(t);
}

void qsort_r(void *base, size_t n, size_t size,
             int (*cmp)(const void *, const void *, void *), void *arg)
{
    libc_sorts++;
    slow_sort(base, n, size, cmp, arg);
}

static int cmp2(const void *a, const void *b, void *arg)
{
    return ((int (*)(const void *, const void *))arg)(a, b);
}

void qsort(void *base, size_t n, size_t size,
           int (*cmp)(const void *, const void *))
{
    libc_sorts++;
    slow_sort(base, n, size, cmp2, (void *)cmp);
}

static void test_sort_budget(void **state)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    uint8_t *buf;
    size_t size;
    uint64_t off;

    (void)state;
    buf = noindex_arena(3000, NULL, 0, &size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    libc_sorts = 0;
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    assert_int_equal(libc_sorts, 0);
    cprs_reader_close(r);

    /* And still finds a repeated key (6.2.10): record 2000 made fd1's
     * twin (its name reference and its id). */
    off = th_rec_off(buf, CPRS_SECTION_FDS, 2000);
    memcpy(buf + off, buf + th_rec_off(buf, CPRS_SECTION_FDS, 1),
           sizeof(CprsWireStr));
    cprs_le32_set(&((CprsWireFd *)(buf + off))->id, 1);
    th_fix_crcs(buf, size);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    assert_int_equal(cprs_reader_verify(r, &d), -EBADMSG);
    assert_string_equal(d.clause, "6.2.10");
    assert_int_equal(d.record, 2000);
    assert_int_equal(libc_sorts, 0);
    cprs_reader_close(r);
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
        cmocka_unit_test(test_immutable_copied),
        cmocka_unit_test(test_payload_overlap),
        cmocka_unit_test(test_zstd_contexts),
        cmocka_unit_test(test_read_failure),
        cmocka_unit_test(test_shared_ranges),
        cmocka_unit_test(test_lookup_noindex),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_sort_budget),
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
