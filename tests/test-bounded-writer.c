/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-bounded-writer.c - the writer on keys built to collide, its work
 * counted at 1x and 8x (tests/bounded.h), never timed.
 *
 * The writer's key set is the arena's own index, hashed with FNV-1a as
 * spec 6.8.1 requires, and FNV-1a is easy to collide on purpose: a legacy
 * stream that cprdump converts is hostile.  Run one with --filter TEST
 * (meson: bounded-1-<what>, class 1 of issue 11: many keys in one place):
 *   test_colliding_keys    keys whose hashes share their low 16 bits pile
 *                          up at one home in every index of up to 65,536
 *                          slots: the writer moves them to a keyed table
 *                          and adds them in linear work, still refusing
 *                          duplicates; the arena it writes verifies
 *   test_room_moves        tables that outgrow their reserved address
 *                          range move, bytes kept: the same arena
 */
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"
#include "bounded.h"

/* Linear from 1x to 8x, give or take 25% and 64 KiB of fixed work. */
#define SLACK 1.25
#define FIXED (1u << 16)

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

/* spec 6.8.1, read again here: FNV-1a of the name, then the id's bytes. */
static uint32_t fnv_step(uint32_t h, uint8_t b)
{
    return (h ^ b) * FNV_PRIME;
}

/* The inverse of FNV_PRIME modulo 2^32 (Newton's iteration). */
static uint32_t prime_inverse(void)
{
    uint32_t x = FNV_PRIME;
    int i;

    for (i = 0; i < 5; i++) {
        x *= 2 - FNV_PRIME * x;
    }
    return x;
}

/*
 * @n distinct ids whose keys (@name, id) hash to values equal in their low
 * 16 bits.  The last step of the hash multiplies h3 ^ b3 by an odd number,
 * so its low 16 bits are fixed by those of h3 ^ b3: the three first bytes
 * are counted up, and those whose h3 has the wanted bits 8..15 are kept,
 * with the b3 that fixes bits 0..7 (one in 256).
 */
static int32_t *colliding_ids(const char *name, uint32_t n)
{
    const uint32_t want = (0x5a5au * prime_inverse()) & 0xffff;
    int32_t *ids = malloc(n * sizeof(*ids));
    uint32_t h0 = FNV_OFFSET, h3, low, k = 0;
    size_t i;

    assert_non_null(ids);
    for (i = 0; name[i]; i++) {
        h0 = fnv_step(h0, (uint8_t)name[i]);
    }
    for (low = 0; k < n && low < (1u << 24); low++) {
        h3 = fnv_step(fnv_step(fnv_step(h0, (uint8_t)low),
                               (uint8_t)(low >> 8)), (uint8_t)(low >> 16));
        if (((h3 ^ want) & 0xff00) == 0) {
            ids[k++] = (int32_t)(low | ((h3 ^ want) & 0xff) << 24);
        }
    }
    assert_int_equal(k, n);
    for (k = 0; k < n; k++) {
        uint32_t id = (uint32_t)ids[k], h = h0;

        for (i = 0; i < 4; i++) {
            h = fnv_step(h, (uint8_t)(id >> (8 * i)));
        }
        assert_int_equal(h & 0xffff, 0x5a5a);
    }
    return ids;
}

/* @n colliding fd records added, a duplicate refused, the arena written. */
static Work add_colliding(uint32_t n)
{
    static const char name[] = "0000:00:02.0/vector";
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = name,
                              .kind = CPRS_FD_KIND_EVENTFD);
    int32_t *ids = colliding_ids(name, n);
    CprsReader *r;
    CprsWriter *w;
    uint32_t i, idx;
    size_t size;
    void *buf;
    Work work;

    work_reset();
    assert_int_equal(cprs_writer_new(&o, &w), 0);
    for (i = 0; i < n; i++) {
        fi.id = ids[i];
        fi.fd = (int32_t)(100 + i);
        assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    }
    /* Duplicates are still refused once the keys have moved, first and
     * last alike, and the writer is left as it was. */
    fi.id = ids[0];
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EEXIST);
    fi.id = ids[n - 1];
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), -EEXIST);
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, &size), 0);
    cprs_writer_free(w);
    work = work_now();

    /* The arena is sound, and every key is found where it was added. */
    assert_int_equal(cprs_reader_open_buffer(buf, size, NULL, NULL, &r), 0);
    assert_int_equal(cprs_reader_verify(r, NULL), 0);
    assert_int_equal(cprs_reader_fd_count(r), n);
    for (i = 0; i < n; i += n / 16) {
        assert_int_equal(cprs_reader_fd_find(r, name, ids[i], &idx), 0);
        assert_int_equal(idx, i);
    }
    cprs_reader_close(r);
    free(buf);
    free(ids);
    return work;
}

static void test_colliding_keys(void **state)
{
    Work w1, w8;

    (void)state;
    /* Both fit 65,536 slots, where every key has the same home. */
    w1 = add_colliding(2000);
    w8 = add_colliding(16000);
    work_expect_linear("colliding keys", &w1, &w8, SLACK, FIXED);
}

/* The arena of @n fd records and 64 RAM blocks, in *@ret_buf. */
static size_t build_many(uint32_t n, void **ret_buf)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsRamBlockInfo bi;
    CprsGpaRange gr;
    CprsFdInfo fi;
    CprsWriter *w;
    char name[48];
    uint32_t i, idx;
    size_t size;

    assert_int_equal(cprs_writer_new(&o, &w), 0);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "0000:%02x:%02x.0/vector", i >> 12 & 255,
                 i >> 4 & 255);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .id = (int32_t)i,
                       .fd = (int32_t)(100 + i), .kind = CPRS_FD_KIND_EVENTFD);
        assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    }
    for (i = 0; i < 64; i++) {
        snprintf(name, sizeof(name), "ram-node%u", i);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .fd = (int32_t)(100 + n + i),
                       .kind = CPRS_FD_KIND_MEMFD);
        assert_int_equal(cprs_writer_add_fd(w, &fi, &idx), 0);
        bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = name, .fd_index = idx,
                       .used_length = 1 << 20, .max_length = 1 << 20,
                       .page_size = 4096);
        gr = (CprsGpaRange) { (uint64_t)i << 20, 1 << 20, 0 };
        assert_int_equal(cprs_writer_add_ramblock(w, &bi, &gr, 1, NULL), 0);
    }
    assert_int_equal(cprs_writer_finish_buffer(w, ret_buf, &size), 0);
    cprs_writer_free(w);
    return size;
}

/*
 * The writer's tables past 2 MiB grow in place in a reserved address
 * range (CprsRoom), and move into a larger range, bytes kept, when they
 * outgrow it: at 64 MiB and more normally, here at every doubling from
 * 2 MiB (the counted build's cprs_work_room_reserve).  200,000 records
 * (12.8 MB of them, a 4 MiB index): the arena is byte for byte the one
 * built without moves, and verifies.
 */
static void test_room_moves(void **state)
{
    const uint32_t n = 200000;
    void *a, *b;
    size_t sa, sb;
    CprsReader *r;

    (void)state;
    sa = build_many(n, &a);
    cprs_work_room_reserve = CPRS_HUGE_PAGE_SIZE;
    work_reset();
    sb = build_many(n, &b);
    cprs_work_room_reserve = 0;
    /* Each room moved at each doubling: more allocations than doublings
     * of the 12.8 MB of records alone (2, 4, 8 and 16 MiB). */
    assert_true(work_now().n[CPRS_WORK_ALLOCS] > 4);
    assert_int_equal(sa, sb);
    assert_memory_equal(a, b, sa);
    assert_int_equal(cprs_reader_open_buffer(b, sb, NULL, NULL, &r), 0);
    assert_int_equal(cprs_reader_verify(r, NULL), 0);
    assert_int_equal(cprs_reader_fd_count(r), n + 64);
    cprs_reader_close(r);
    free(a);
    free(b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_colliding_keys),
        cmocka_unit_test(test_room_moves),
    };
    int i;

    for (i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--filter")) {
            cmocka_set_test_filter(argv[i + 1]);
        }
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
