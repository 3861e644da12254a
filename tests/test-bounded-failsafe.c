/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-bounded-failsafe.c - the parsers of the fail-safe live update do
 * work linear in their input (spec/fail-safe.rst F2.3): counted, not
 * timed (bounded.h), on the worst inputs built here, at 1x and 8x.
 *
 *   test_elf_marks   a data segment full of near-misses of every mark
 *   test_elf_notes   a note segment of empty notes, the most per byte
 *   test_argv        a ROLLBACK record of one-byte arguments
 *
 * "--filter NAME" runs one of them.
 */
#include <elf.h>
#include <stdlib.h>

#include "bounded.h"
#include "cprs-failsafe.h"
#include "helpers.h"

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

static void check_linear(const char *what, const Work *w1, const Work *w8)
{
    int k;

    work_print("1x", w1);
    work_print("8x", w8);
    k = work_linear(w1, w8, 1.05, 1u << 21);
    if (k >= 0) {
        fail_msg("%s: %s grew faster than the input", what, work_names[k]);
    }
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
    check_linear("marks", &w1, &w8);
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
    check_linear("notes", &w1, &w8);
    free(d1);
    free(d8);
    free(b1);
    free(b8);
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
    check_linear("argv", &w1, &w8);
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
    check_linear("argv walk", &w1, &w8);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elf_marks),
        cmocka_unit_test(test_elf_notes),
        cmocka_unit_test(test_argv),
        cmocka_unit_test(test_argv_walk),
    };

    if (argc > 2 && !strcmp(argv[1], "--filter")) {
        cmocka_set_test_filter(argv[2]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
