/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-bounded-failsafe.c - the parsers of the fail-safe live update do
 * work linear in their input (spec/fail-safe.rst F2.3): counted, not
 * timed (bounded.h), on the worst inputs built here, at 1x and 8x.
 *
 *   test_elf_marks   a data segment full of near-misses of every mark
 *   test_elf_notes   a note segment of empty notes, the most per byte
 *   test_argv        a ROLLBACK record of one-byte arguments
 *   test_elf_overlap_loads  N PT_LOAD headers over the same bytes
 *   test_elf_overlap_notes  N PT_NOTE headers over the same bytes
 *   test_elf_sparse_cut     a sparse file's PT_LOAD over the scan cap
 *
 * "--filter NAME" runs one of them.
 */
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "bounded.h"
#include "cprs-failsafe.h"
#include "helpers.h"

/* Linear from 1x to 8x, give or take 5% and 2 MiB of fixed work. */
#define SLACK 1.05
#define FIXED (1u << 21)

/* An ELF64 image of this machine with one segment of @len bytes. */
static uint8_t *one_segment(uint32_t type, const uint8_t *data, size_t len,
                            size_t *ret_size)
{
    size_t size = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + len;
    uint8_t *buf = calloc(1, size);
    Elf64_Ehdr *h = (Elf64_Ehdr *)buf;
    Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*h));
    Elf64_Ehdr self;
    FILE *f = fopen("/proc/self/exe", "rb");

    assert_non_null(buf);
    assert_non_null(f);
    assert_int_equal(fread(&self, sizeof(self), 1, f), 1);
    fclose(f);
    memcpy(h->e_ident, self.e_ident, EI_NIDENT);
    h->e_type = ET_DYN;
    h->e_machine = self.e_machine;
    h->e_version = EV_CURRENT;
    h->e_phoff = sizeof(*h);
    h->e_phentsize = sizeof(*ph);
    h->e_phnum = 1;
    ph->p_type = type;
    ph->p_flags = PF_R;
    ph->p_offset = sizeof(*h) + sizeof(*ph);
    ph->p_filesz = len;
    ph->p_align = 4;
    memcpy(buf + ph->p_offset, data, len);
    *ret_size = size;
    return buf;
}

static Work scan_once(const uint8_t *buf, size_t size)
{
    CprsElfSrc src = { .fd = -1, .buf = buf, .size = size };
    CprsElfScan s;

    work_reset();
    assert_int_equal(cprs_elf_scan(&src, 0, &s), 0);
    return work_now();
}

/* Every position one byte short of a mark: the search's worst case. */
static uint8_t *near_misses(size_t len)
{
    static const char *const stems[] = { "QEMU_CPR_EXEC_STAT",
                                         "CprState/vfio device",
                                         "cpr vfio devic" };
    uint8_t *d = malloc(len);
    size_t off = 0, i = 0, n;

    assert_non_null(d);
    while (off < len) {
        n = strlen(stems[i % 3]);
        if (n > len - off) {
            n = len - off;
        }
        memcpy(d + off, stems[i++ % 3], n);
        off += n;
    }
    return d;
}

static void test_elf_marks(void **state)
{
    const size_t unit = 1u << 20;
    uint8_t *d1, *d8, *b1, *b8;
    size_t s1, s8;
    Work w1, w8;

    (void)state;
    d1 = near_misses(unit);
    d8 = near_misses(8 * unit);
    b1 = one_segment(PT_LOAD, d1, unit, &s1);
    b8 = one_segment(PT_LOAD, d8, 8 * unit, &s8);
    w1 = scan_once(b1, s1);
    w8 = scan_once(b8, s8);
    work_expect_linear("marks", &w1, &w8, SLACK, FIXED);
    assert_true(w8.n[CPRS_WORK_SCAN_BYTES] >= 8 * unit);
    free(d1);
    free(d8);
    free(b1);
    free(b8);
}

static void test_elf_notes(void **state)
{
    const size_t unit = 64u << 10;
    uint8_t *d1, *d8, *b1, *b8;
    size_t s1, s8;
    Work w1, w8;

    (void)state;
    /* 12-byte empty notes: namesz 0, descsz 0, type 0. */
    d1 = calloc(1, unit);
    d8 = calloc(1, 8 * unit);
    b1 = one_segment(PT_NOTE, d1, unit, &s1);
    b8 = one_segment(PT_NOTE, d8, 8 * unit, &s8);
    w1 = scan_once(b1, s1);
    w8 = scan_once(b8, s8);
    work_expect_linear("notes", &w1, &w8, SLACK, FIXED);
    free(d1);
    free(d8);
    free(b1);
    free(b8);
}

/*
 * An ELF64 image of this machine with @n program headers of @type, all
 * over the same @len bytes of @data (spec F2.3: each byte read once).
 */
static uint8_t *overlapping(uint32_t type, uint32_t n, const uint8_t *data,
                            size_t len, size_t *ret_size)
{
    size_t off = sizeof(Elf64_Ehdr) + n * sizeof(Elf64_Phdr);
    uint8_t *buf = one_segment(type, data, 0, ret_size);
    Elf64_Ehdr *h;
    Elf64_Phdr *ph;
    uint32_t i;

    buf = realloc(buf, off + len);
    assert_non_null(buf);
    h = (Elf64_Ehdr *)buf;
    h->e_phnum = (uint16_t)n;
    for (i = 0; i < n; i++) {
        ph = (Elf64_Phdr *)(buf + sizeof(*h)) + i;
        memset(ph, 0, sizeof(*ph));
        ph->p_type = type;
        ph->p_flags = PF_R;
        /* Starts a little apart, so that no two are identical. */
        ph->p_offset = off + i;
        ph->p_filesz = len - i;
        ph->p_align = 4;
    }
    memcpy(buf + off, data, len);
    *ret_size = off + len;
    return buf;
}

static void overlap_case(uint32_t type, size_t unit, uint32_t n)
{
    uint8_t *d1, *d8, *b1, *b8;
    size_t s1, s8;
    Work w1, w8;

    d1 = near_misses(unit);
    d8 = near_misses(8 * unit);
    b1 = overlapping(type, n, d1, unit, &s1);
    b8 = overlapping(type, 8 * n, d8, 8 * unit, &s8);
    w1 = scan_once(b1, s1);
    w8 = scan_once(b8, s8);
    work_expect_linear(type == PT_LOAD ? "overlapping loads" :
                       "overlapping notes", &w1, &w8, SLACK, FIXED);
    /* Each byte of the file read once at most (headers included). */
    assert_true(w8.n[CPRS_WORK_READ_BYTES] <= s8 + 64);
    free(d1);
    free(d8);
    free(b1);
    free(b8);
}

static void test_elf_overlap_loads(void **state)
{
    (void)state;
    /* 1x: 128 headers over 128 KiB; 8x: 1024 over 1 MiB. */
    overlap_case(PT_LOAD, 128u << 10, 128);
}

static void test_elf_overlap_notes(void **state)
{
    CprsElfScan s;
    CprsElfSrc src;
    uint8_t *d, *b;
    size_t size;

    (void)state;
    overlap_case(PT_NOTE, 128u << 10, 128);
    /* And such notes are not believed: malformed, hence uncertain. */
    d = calloc(1, 4096);
    assert_non_null(d);
    b = overlapping(PT_NOTE, 2, d, 4096, &size);
    src = (CprsElfSrc) { .fd = -1, .buf = b, .size = size };
    assert_int_equal(cprs_elf_scan(&src, 0, &s), 0);
    assert_true(s.flags & CPRS_ELF_F_MALFORMED);
    assert_string_equal(s.why, "PT_NOTE segments overlap");
    free(d);
    free(b);
}

/*
 * A sparse file whose PT_LOAD segments add up to more than the cap: cut
 * before a byte of them is read, whatever the file's size (1x: the cap
 * plus 1 MiB in one segment; 8x: eight such segments side by side).
 */
static Work sparse_scan(uint32_t n)
{
    const uint64_t len = CPRS_TARGET_MAX_SCAN + (UINT64_C(1) << 20);
    uint64_t off = sizeof(Elf64_Ehdr) + n * sizeof(Elf64_Phdr);
    char path[4096];
    uint8_t *buf;
    size_t size;
    CprsElfSrc src;
    CprsElfScan s;
    Elf64_Phdr *ph;
    uint32_t i;
    Work w;
    int fd;

    buf = one_segment(PT_LOAD, (const uint8_t *)"", 0, &size);
    buf = realloc(buf, off);
    assert_non_null(buf);
    ((Elf64_Ehdr *)buf)->e_phnum = (uint16_t)n;
    for (i = 0; i < n; i++) {
        ph = (Elf64_Phdr *)(buf + sizeof(Elf64_Ehdr)) + i;
        memset(ph, 0, sizeof(*ph));
        ph->p_type = PT_LOAD;
        ph->p_flags = PF_R;
        ph->p_offset = off + i * len;
        ph->p_filesz = len;
        ph->p_align = 4;
    }
    snprintf(path, sizeof(path), "%s/sparse-elf-XXXXXX", th_build_root());
    fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(pwrite(fd, buf, off, 0), (ssize_t)off);
    assert_int_equal(ftruncate(fd, (off_t)(off + n * len)), 0);
    src = (CprsElfSrc) { .fd = fd, .size = off + n * len };
    work_reset();
    assert_int_equal(cprs_elf_scan(&src, 0, &s), 0);
    w = work_now();
    assert_true(s.flags & CPRS_ELF_F_SCAN_CUT);
    /* The headers (and our own e_machine) only: none of the segments. */
    assert_true(w.n[CPRS_WORK_READ_BYTES] <= off + 128);
    close(fd);
    free(buf);
    return w;
}

static void test_elf_sparse_cut(void **state)
{
    Work w1, w8;

    (void)state;
    w1 = sparse_scan(1);
    w8 = sparse_scan(8);
    work_expect_linear("sparse", &w1, &w8, SLACK, FIXED);
}

/* A ROLLBACK record with @argc arguments of one byte each. */
static uint8_t *argv_record(uint32_t argc, size_t *ret_size)
{
    size_t size = CPRS_ROLLBACK_V1_SIZE + 8 + ((2 * argc + 7) & ~7u);
    uint8_t *buf = calloc(1, size);
    CprsWireRollback w;
    uint32_t i;

    assert_non_null(buf);
    memset(&w, 0, sizeof(w));
    cprs_le16_set(&w.version_major, 1);
    cprs_le32_set(&w.header_size, CPRS_ROLLBACK_V1_SIZE);
    cprs_le32_set(&w.flags, CPRS_ROLLBACK_F_ARMED);
    cprs_le32_set(&w.argc, argc);
    cprs_le32_set(&w.argv_size, 2 * argc);
    cprs_le32_set(&w.exe_path_size, 2);
    memcpy(buf, &w, sizeof(w));
    buf[CPRS_ROLLBACK_V1_SIZE] = '/';
    for (i = 0; i < argc; i++) {
        buf[CPRS_ROLLBACK_V1_SIZE + 8 + 2 * i] = 'a';
    }
    *ret_size = size;
    return buf;
}

static void test_argv(void **state)
{
    CprsRollbackRec r;
    uint8_t *b1, *b8;
    size_t s1, s8;
    Work w1, w8;

    (void)state;
    b1 = argv_record(4096, &s1);
    b8 = argv_record(8 * 4096, &s8);
    work_reset();
    assert_int_equal(cprs_rollback_decode(b1, s1, 0, NULL, &r), 0);
    w1 = work_now();
    work_reset();
    assert_int_equal(cprs_rollback_decode(b8, s8, 0, NULL, &r), 0);
    w8 = work_now();
    work_expect_linear("argv", &w1, &w8, SLACK, FIXED);
    free(b1);
    free(b8);
}

/*
 * Every argument of a ROLLBACK section in an arena, read as cprdump reads
 * them (show, --json): one cprs_rollback_read(), then a walk of
 * CprsRollbackInfo.argv.  One argument per call used to check the whole
 * section (its CRC, its decoding) again: argc times the section.
 */
static Work argv_walk(uint32_t argc)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = 3);
    CprsRollbackInfo ri = CPRS_OPTS(CprsRollbackInfo);
    size_t sec_size, arena_size, size;
    void *arena, *buf;
    const char *a, *arg;
    uint8_t *sec;
    CprsReader *r;
    CprsWriter *w;
    uint32_t i;
    Work work;

    assert_int_equal(cprs_writer_new(&o, &w), 0);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, &arena, &arena_size), 0);
    cprs_writer_free(w);
    sec = argv_record(argc, &sec_size);
    assert_int_equal(cprs_arena_append_section(arena, arena_size,
                                               CPRS_SECTION_ROLLBACK, 0, sec,
                                               sec_size, &buf, &size), 0);
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    work_reset();
    assert_int_equal(cprs_rollback_read(r, &ri, NULL), 0);
    assert_int_equal(ri.argc, argc);
    for (i = 0, a = ri.argv; i < ri.argc; i++, a += strlen(a) + 1) {
        assert_string_equal(a, "a");
    }
    work = work_now();
    /* The one-by-one reading agrees with the walk where it is used. */
    assert_int_equal(cprs_rollback_read_arg(r, argc - 1, &arg), 0);
    assert_ptr_equal(arg, a - 2);
    cprs_reader_close(r);
    free(buf);
    free(arena);
    free(sec);
    return work;
}

static void test_argv_walk(void **state)
{
    Work w1, w8;

    (void)state;
    w1 = argv_walk(4096);
    w8 = argv_walk(8 * 4096);
    work_expect_linear("argv walk", &w1, &w8, SLACK, FIXED);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elf_marks),
        cmocka_unit_test(test_elf_notes),
        cmocka_unit_test(test_argv),
        cmocka_unit_test(test_elf_overlap_loads),
        cmocka_unit_test(test_elf_overlap_notes),
        cmocka_unit_test(test_elf_sparse_cut),
        cmocka_unit_test(test_argv_walk),
    };

    if (argc > 2 && !strcmp(argv[1], "--filter")) {
        cmocka_set_test_filter(argv[2]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
