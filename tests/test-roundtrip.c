/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-roundtrip.c - every record type written, read back field by field,
 * found by key; the same input gives the same bytes through every finish
 * path and every compression choice.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"

static CprsReader *open_ok(const void *buf, size_t size)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r = NULL;
    char text[256];

    if (cprs_reader_open_buffer(buf, size, NULL, &d, &r)) {
        cprs_diag_format(&d, text, sizeof(text));
        fail_msg("open: %s", text);
    }
    if (cprs_reader_verify(r, &d)) {
        cprs_diag_format(&d, text, sizeof(text));
        fail_msg("verify: %s", text);
    }
    return r;
}

/* Check every field of th_build_rich()'s arena. */
static void check_rich(CprsReader *r)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo);
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo);
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo);
    CprsGpaRange gr;
    const void *data;
    uint8_t small[8];
    size_t size, i;
    uint32_t idx;
    const uint8_t *p;

    assert_int_equal(cprs_reader_get_info(r, &ai), 0);
    assert_int_equal(ai.version_major, 1);
    assert_int_equal(ai.version_minor, 0);
    assert_int_equal(ai.header_size, 192);
    assert_int_equal(ai.mode, CPRS_MODE_EXEC);
    assert_int_equal(ai.generation, 7);
    assert_true(ai.created_ns == UINT64_C(1795000000123456789));
    assert_int_equal(ai.writer_pid, 4242);
    assert_int_equal(ai.build_id_size, 20);
    assert_int_equal(ai.build_id[0], 0x5e);
    assert_int_equal(ai.build_id[19], 0x3b);
    assert_string_equal(ai.producer, "libcprstate-tests");
    assert_int_equal(ai.incompat_features, CPRS_INCOMPAT_ZSTD);

    assert_int_equal(cprs_reader_fd_count(r), 3);
    assert_int_equal(cprs_reader_fd_get(r, 0, &fi), 0);
    assert_string_equal(fi.name, "ram0");
    assert_int_equal(fi.name_len, 4);
    assert_int_equal(fi.id, 0);
    assert_int_equal(fi.slot, 0);
    assert_int_equal(fi.fd, 11);
    assert_int_equal(fi.kind, CPRS_FD_KIND_MEMFD);
    assert_int_equal(fi.flags, CPRS_FD_F_IDENTITY | CPRS_FD_F_SEALS);
    assert_int_equal(fi.seals, 1);
    assert_int_equal(fi.dev, 0xc);
    assert_int_equal(fi.ino, 1001);
    assert_int_equal(fi.st_mode, 0100777);
    assert_true(fi.size == UINT64_C(0x100000000));
    assert_int_equal(cprs_reader_fd_get(r, 2, &fi), 0);
    assert_string_equal(fi.name, "vfio-group");
    assert_int_equal(fi.id, 42);
    assert_int_equal(fi.slot, 2);
    assert_int_equal(fi.fd, 20);
    assert_int_equal(fi.kind, CPRS_FD_KIND_VFIO_GROUP);
    assert_int_equal(fi.flags, 0);
    assert_int_equal(cprs_reader_fd_get(r, 3, &fi), -EINVAL);

    assert_int_equal(cprs_reader_fd_find(r, "pc.bios", 0, &idx), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(cprs_reader_fd_find(r, "vfio-group", 42, &idx), 0);
    assert_int_equal(idx, 2);
    assert_int_equal(cprs_reader_fd_find(r, "vfio-group", 0, &idx), -ENOENT);
    assert_int_equal(cprs_reader_fd_find(r, "ram", 0, &idx), -ENOENT);
    assert_int_equal(cprs_reader_fd_find(r, "", 0, &idx), -ENOENT);

    assert_int_equal(cprs_reader_ramblock_count(r), 2);
    assert_int_equal(cprs_reader_ramblock_get(r, 0, &bi), 0);
    assert_string_equal(bi.idstr, "ram0");
    assert_int_equal(bi.fd_index, 0);
    assert_int_equal(bi.flags, CPRS_RAM_F_SHARED);
    assert_true(bi.used_length == UINT64_C(0x100000000));
    assert_int_equal(bi.page_size, 4096);
    assert_int_equal(bi.align, 0x200000);
    assert_int_equal(bi.range_count, 2);
    assert_int_equal(cprs_reader_gpa_range_get(r, 0, 1, &gr), 0);
    assert_true(gr.gpa == UINT64_C(0x100000000));
    assert_int_equal(gr.size, 0x80000000);
    assert_int_equal(gr.block_offset, 0x80000000);
    assert_int_equal(cprs_reader_gpa_range_get(r, 0, 2, &gr), -EINVAL);
    assert_int_equal(cprs_reader_gpa_range_get(r, 1, 0, &gr), 0);
    assert_int_equal(gr.gpa, 0xfffc0000);
    assert_int_equal(cprs_reader_ramblock_find(r, "pc.bios", &idx), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(cprs_reader_ramblock_find(r, "pc.rom", &idx), -ENOENT);

    assert_int_equal(cprs_reader_vfio_count(r), 2);
    assert_int_equal(cprs_reader_vfio_get(r, 1, &vi), 0);
    assert_string_equal(vi.name, "0000:00:06.0");
    assert_int_equal(vi.devid, -7);
    assert_int_equal(vi.ioas_id, 2);
    assert_int_equal(vi.hwpt_id, 4);
    assert_int_equal(cprs_reader_vfio_find(r, "0000:00:05.0", &idx), 0);
    assert_int_equal(idx, 0);

    assert_int_equal(cprs_reader_devstate_count(r), 3);
    assert_int_equal(cprs_reader_devstate_get(r, 0, &di), 0);
    assert_string_equal(di.name, "virtio-net");
    assert_int_equal(di.version_id, 11);
    assert_int_equal(di.flags, CPRS_DEVSTATE_F_ZSTD);
    assert_int_equal(di.raw_size, 65536);
    assert_true(di.stored_size < di.raw_size);
    assert_int_equal(cprs_reader_devstate_data(r, 0, &data, &size), 0);
    assert_int_equal(size, 65536);
    p = data;
    for (i = 0; i < size; i++) {
        if (p[i] != (uint8_t)((i % 64) < 48 ? 0 : i * 7)) {
            fail_msg("payload byte %zu differs", i);
        }
    }
    assert_int_equal(cprs_reader_devstate_find(r, "serial", 1, &idx), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(cprs_reader_devstate_find(r, "serial", 0, &idx),
                     -ENOENT);
    assert_int_equal(cprs_reader_devstate_read(r, 1, small, sizeof(small),
                                               &size), 0);
    assert_int_equal(size, 5);
    assert_memory_equal(small, "\x01\x02\x03\x04\x05", 5);
    assert_int_equal(cprs_reader_devstate_read(r, 1, small, 4, &size),
                     -EINVAL);
    assert_int_equal(cprs_reader_devstate_get(r, 2, &di), 0);
    assert_int_equal(di.raw_size, 0);
    assert_int_equal(cprs_reader_devstate_data(r, 2, &data, &size), 0);
    assert_int_equal(size, 0);
}

static void test_rich_roundtrip(void **state)
{
    uint8_t *buf;
    size_t size;
    CprsReader *r;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    r = open_ok(buf, size);
    check_rich(r);
    cprs_reader_close(r);
    free(buf);
}

/* Every section compressed, then each section type alone. */
static void test_compressed_sections(void **state)
{
    uint32_t t, masks[CPRS_SECTION__MAX + 1];
    uint8_t *buf;
    size_t size, n = 0, i;
    CprsReader *r;
    CprsSectionInfo si = CPRS_OPTS(CprsSectionInfo);
    bool any = false;

    (void)state;
    masks[n++] = ((1u << CPRS_SECTION__MAX) - 1) & ~1u;
    for (t = 1; t < CPRS_SECTION__MAX; t++) {
        masks[n++] = 1u << t;
    }
    for (i = 0; i < n; i++) {
        th_build_rich(0, masks[i], &buf, &size);
        r = open_ok(buf, size);
        check_rich(r);
        for (t = 0; t < cprs_reader_section_count(r); t++) {
            assert_int_equal(cprs_reader_section_get(r, t, &si), 0);
            any |= !!(si.flags & CPRS_SECTION_F_ZSTD);
            if (si.flags & CPRS_SECTION_F_ZSTD) {
                assert_true(masks[i] & (1u << si.type));
                assert_true(si.stored_size < si.raw_size);
            }
        }
        cprs_reader_close(r);
        free(buf);
    }
    assert_true(any);
}

/* Without indexes, lookups scan and still find the same records. */
static void test_no_index(void **state)
{
    uint8_t *buf;
    size_t size;
    CprsReader *r;

    (void)state;
    th_build_rich(CPRS_WRITER_F_NO_INDEX, 0, &buf, &size);
    assert_int_equal(th_sec(buf, CPRS_SECTION_INDEX), -1);
    r = open_ok(buf, size);
    check_rich(r);
    cprs_reader_close(r);
    free(buf);
}

/* Same input, same bytes: twice, and through buffer, fd and memfd. */
static void test_deterministic(void **state)
{
    CprsWriter *w = th_rich_writer(0, 0);
    uint8_t *a, *b, *m;
    size_t asize, bsize;
    FILE *tmp;
    int fd;

    (void)state;
    assert_int_equal(cprs_writer_finish_buffer(w, (void **)&a, &asize), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, (void **)&b, &bsize), 0);
    assert_int_equal(asize, bsize);
    assert_memory_equal(a, b, asize);
    free(b);
    b = NULL;
    cprs_writer_free(w);
    /* A second writer fed the same records. */
    th_build_rich(0, 0, &b, &bsize);
    assert_int_equal(asize, bsize);
    assert_memory_equal(a, b, asize);
    free(b);

    w = th_rich_writer(0, 0);
    assert_int_equal(cprs_writer_finish_memfd(w, "test", CPRS_MEMFD_F_SEAL,
                                              &fd), 0);
    assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)asize);
    m = mmap(NULL, asize, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);
    assert_memory_equal(a, m, asize);
    munmap(m, asize);
    close(fd);

    /* finish_fd over a longer file truncates it to the arena. */
    tmp = tmpfile();
    assert_non_null(tmp);
    assert_int_equal(ftruncate(fileno(tmp), (off_t)asize * 3), 0);
    assert_int_equal(cprs_writer_finish_fd(w, fileno(tmp)), 0);
    assert_int_equal(lseek(fileno(tmp), 0, SEEK_END), (off_t)asize);
    b = malloc(asize);
    assert_int_equal(pread(fileno(tmp), b, asize, 0), (ssize_t)asize);
    assert_memory_equal(a, b, asize);
    free(b);
    fclose(tmp);
    cprs_writer_free(w);
    free(a);
}

/* An empty arena is valid and has no sections. */
static void test_empty(void **state)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsWriter *w;
    CprsReader *r;
    uint32_t idx;
    void *buf;
    size_t size;

    (void)state;
    assert_int_equal(cprs_writer_new(&o, &w), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, &size), 0);
    assert_int_equal(size, 192);
    r = open_ok(buf, size);
    assert_int_equal(cprs_reader_section_count(r), 0);
    assert_int_equal(cprs_reader_fd_count(r), 0);
    assert_int_equal(cprs_reader_fd_find(r, "x", 0, &idx), -ENOENT);
    assert_int_equal(cprs_reader_devstate_count(r), 0);
    cprs_reader_close(r);
    cprs_writer_free(w);
    free(buf);
}

/* Many records: every one found through the index, at its own index. */
static void test_many_records(void **state)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .kind = CPRS_FD_KIND_EVENTFD);
    const uint32_t n = 100000;
    CprsWriter *w;
    CprsReader *r;
    char name[32];
    uint32_t i, idx;
    void *buf;
    size_t size;

    (void)state;
    assert_int_equal(cprs_writer_new(&o, &w), 0);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "dev%u/irq", i / 4);
        fi.name = name;
        fi.id = (int32_t)(i % 4);
        fi.fd = (int32_t)(i + 3);
        assert_int_equal(cprs_writer_add_fd(w, &fi, &idx), 0);
        assert_int_equal(idx, i);
    }
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, &size), 0);
    r = open_ok(buf, size);
    assert_int_equal(cprs_reader_fd_count(r), n);
    for (i = 0; i < n; i += 7) {
        snprintf(name, sizeof(name), "dev%u/irq", i / 4);
        assert_int_equal(cprs_reader_fd_find(r, name, (int32_t)(i % 4), &idx),
                         0);
        assert_int_equal(idx, i);
    }
    assert_int_equal(cprs_reader_fd_find(r, "dev0/irq", 4, &idx), -ENOENT);
    cprs_reader_close(r);
    cprs_writer_free(w);
    free(buf);
}

/* Strings are stored once: an fd and a RAM block share "ram0". */
static void test_string_dedup(void **state)
{
    uint8_t *buf;
    size_t size;
    int s;

    (void)state;
    th_build_rich(0, 0, &buf, &size);
    s = th_sec(buf, CPRS_SECTION_STRTAB);
    assert_true(s >= 0);
    /* ram0 pc.bios vfio-group 0000:00:05.0 0000:00:06.0 virtio-net serial
     * empty: each once, with its NUL. */
    assert_int_equal(cprs_le64_get(&th_dir(buf, (uint32_t)s)->raw_size),
                     5 + 8 + 11 + 13 + 13 + 11 + 7 + 6);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rich_roundtrip),
        cmocka_unit_test(test_compressed_sections),
        cmocka_unit_test(test_no_index),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_many_records),
        cmocka_unit_test(test_string_dedup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
