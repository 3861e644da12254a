/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-save-path.c - the ways a payload reaches an arena: copied,
 * borrowed (the CPR state's own bytes), or staged in the writer's memfd
 * (large ones), into every kind of output (buffer, memfd, regular file),
 * with the BLOB compressed or not.  Each arena must verify and give back
 * the payloads byte for byte, and all outputs must be the same bytes.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"

#define BIG (5u << 20)          /* over the staging threshold */

static uint8_t *pattern(size_t size, uint32_t seed)
{
    uint8_t *p = malloc(size);
    size_t i;

    assert_non_null(p);
    for (i = 0; i < size; i++) {
        p[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
    }
    return p;
}

/* A writer with a small, a big and an odd-sized payload. */
static CprsWriter *payload_writer(uint32_t compress, uint8_t **big,
                                  uint8_t **small)
{
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts,
                                  .flags = CPRS_WRITER_F_REPRODUCIBLE,
                                  .compress_sections = compress);
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo, .name = "dev");
    CprsWriter *w;

    *big = pattern(BIG + 3, 1);
    *small = pattern(1001, 2);
    assert_int_equal(cprs_writer_new(&wo, &w), 0);
    assert_int_equal(cprs_writer_add_devstate(w, &di, *small, 1001, NULL), 0);
    di.instance_id = 1;
    assert_int_equal(cprs_writer_add_devstate(w, &di, *big, BIG + 3, NULL),
                     0);
    di.instance_id = 2;
    assert_int_equal(cprs_writer_add_devstate(w, &di, *big, BIG, NULL), 0);
    /* Copied: the caller's bytes may change at once. */
    memset(*big, 0xee, BIG + 3);
    free(*big);
    *big = pattern(BIG + 3, 1);
    return w;
}

static void check_arena(const void *buf, size_t size, const uint8_t *big,
                        const uint8_t *small)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    const void *data;
    size_t n;
    uint32_t i;

    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, &d, &r), 0);
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    assert_int_equal(cprs_reader_devstate_find(r, "dev", 0, &i), 0);
    assert_int_equal(cprs_reader_devstate_data(r, i, &data, &n), 0);
    assert_int_equal(n, 1001);
    assert_memory_equal(data, small, n);
    assert_int_equal(cprs_reader_devstate_find(r, "dev", 1, &i), 0);
    assert_int_equal(cprs_reader_devstate_data(r, i, &data, &n), 0);
    assert_int_equal(n, BIG + 3);
    assert_memory_equal(data, big, n);
    assert_int_equal(cprs_reader_devstate_find(r, "dev", 2, &i), 0);
    assert_int_equal(cprs_reader_devstate_data(r, i, &data, &n), 0);
    assert_int_equal(n, BIG);
    assert_memory_equal(data, big, n);
    cprs_reader_close(r);
}

/* The bytes of @fd, which must be @size long. */
static uint8_t *fd_bytes(int fd, size_t size)
{
    uint8_t *p = malloc(size);

    assert_non_null(p);
    assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)size);
    assert_int_equal(pread(fd, p, size, 0), (ssize_t)size);
    return p;
}

static void one_way(uint32_t compress)
{
    char path[] = "/tmp/cprs-save-path-XXXXXX";
    uint8_t *big, *small, *b2, *s2, *mem, *file;
    CprsWriter *w, *w2;
    void *buf;
    size_t size;
    int memfd, fd, before = th_count_fds();

    w = payload_writer(compress, &big, &small);
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, &size), 0);
    check_arena(buf, size, big, small);
    /* The same writer, again, into a memfd and into a regular file. */
    assert_int_equal(cprs_writer_finish_memfd(w, "save-path",
                                              CPRS_MEMFD_F_SEAL, &memfd), 0);
    mem = fd_bytes(memfd, size);
    assert_memory_equal(mem, buf, size);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(cprs_writer_finish_fd(w, fd), 0);
    file = fd_bytes(fd, size);
    assert_memory_equal(file, buf, size);
    /* A second writer of the same records: the same bytes (spec 9.2). */
    w2 = payload_writer(compress, &b2, &s2);
    free(mem);
    close(memfd);
    assert_int_equal(cprs_writer_finish_memfd(w2, "again", 0, &memfd), 0);
    mem = fd_bytes(memfd, size);
    assert_memory_equal(mem, buf, size);
    cprs_writer_free(w);
    cprs_writer_free(w2);
    close(memfd);
    close(fd);
    free(mem);
    free(file);
    free(buf);
    free(big);
    free(small);
    free(b2);
    free(s2);
    assert_int_equal(th_count_fds(), before);
}

static void test_payloads_plain(void **state)
{
    (void)state;
    one_way(0);
}

static void test_payloads_blob_compressed(void **state)
{
    (void)state;
    one_way(1u << CPRS_SECTION_BLOB);
}

/*
 * The CPR state lends its payloads to the writer (no copy at save): the
 * exec arena holds them, and a payload deleted after the save is not
 * what the arena holds.
 */
static void test_state_lends_payloads(void **state)
{
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo, .name = "vga");
    CprsDiag d = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    CprsState *s;
    uint8_t *big = pattern(BIG, 7);
    const void *data;
    size_t n;
    uint32_t i;
    int fd;

    (void)state;
    assert_int_equal(cprs_state_new(&s), 0);
    assert_int_equal(cprs_state_save_devstate(s, &di, big, BIG), 0);
    di.instance_id = 1;
    di.flags = CPRS_DEVSTATE_F_ZSTD;
    assert_int_equal(cprs_state_save_devstate(s, &di, big, 4096), 0);
    assert_int_equal(cprs_state_save_exec(s, NULL, &d, &fd), 0);
    cprs_state_free(s);
    assert_int_equal(cprs_reader_open_fd(fd, NULL, &d, &r), 0);
    assert_int_equal(cprs_reader_verify(r, &d), 0);
    assert_int_equal(cprs_reader_devstate_find(r, "vga", 0, &i), 0);
    assert_int_equal(cprs_reader_devstate_data(r, i, &data, &n), 0);
    assert_int_equal(n, BIG);
    assert_memory_equal(data, big, BIG);
    assert_int_equal(cprs_reader_devstate_find(r, "vga", 1, &i), 0);
    assert_int_equal(cprs_reader_devstate_data(r, i, &data, &n), 0);
    assert_int_equal(n, 4096);
    assert_memory_equal(data, big, 4096);
    cprs_reader_close(r);
    cprs_exec_unpersist(fd);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payloads_plain),
        cmocka_unit_test(test_payloads_blob_compressed),
        cmocka_unit_test(test_state_lends_payloads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
