/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-crc32c.c - CRC-32C: published check values, and the SSE4.2 path
 * agreeing with the portable one at every length, alignment and split.
 */
#include <stdlib.h>

#include "helpers.h"

/* RFC 3720 appendix B.4 and the usual "123456789" check value. */
static void test_known_values(void **state)
{
    uint8_t buf[32];
    size_t i;

    (void)state;
    assert_int_equal(cprs_crc32c(0, "123456789", 9), 0xe3069283);
    assert_int_equal(cprs_crc32c_sw(0, "123456789", 9), 0xe3069283);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(cprs_crc32c(0, buf, 32), 0x8a9136aa);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(cprs_crc32c(0, buf, 32), 0x62a8ab43);
    for (i = 0; i < 32; i++) {
        buf[i] = (uint8_t)i;
    }
    assert_int_equal(cprs_crc32c(0, buf, 32), 0x46dd794e);
    for (i = 0; i < 32; i++) {
        buf[i] = (uint8_t)(31 - i);
    }
    assert_int_equal(cprs_crc32c(0, buf, 32), 0x113fdb5c);
    assert_int_equal(cprs_crc32c(0, NULL, 0), 0);
}

static uint8_t *random_buffer(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n);
    size_t i;

    assert_non_null(p);
    srand(seed);
    for (i = 0; i < n; i++) {
        p[i] = (uint8_t)rand();
    }
    return p;
}

/* Lengths around the 8-byte words and the 3 x 32 KiB interleaved blocks. */
static void test_hw_matches_sw(void **state)
{
    static const size_t lens[] = {
        0, 1, 7, 8, 9, 63, 64, 4095, 32768, 3 * 32768 - 1, 3 * 32768,
        3 * 32768 + 1, 3 * 32768 + 13, 6 * 32768 + 5, 400000,
    };
    size_t max = 400000 + 16, i, align;
    uint8_t *buf = random_buffer(max, 1);

    (void)state;
    if (!cprs_crc32c_hw_available()) {
        skip();
    }
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (align = 0; align < 8; align++) {
            uint32_t sw = cprs_crc32c_sw(0x12345678, buf + align, lens[i]);
            uint32_t hw = cprs_crc32c_hw(0x12345678, buf + align, lens[i]);

            if (sw != hw) {
                fail_msg("len %zu align %zu: sw %08x hw %08x", lens[i],
                         align, sw, hw);
            }
        }
    }
    free(buf);
}

/* crc(a || b) == crc(crc(a), b) on both paths, at every split point. */
static void test_chaining(void **state)
{
    size_t n = 3 * 32768 + 100, split;
    uint8_t *buf = random_buffer(n, 2);
    uint32_t whole = cprs_crc32c_sw(0, buf, n);

    (void)state;
    for (split = 0; split <= n; split += 3989) {
        assert_int_equal(cprs_crc32c_sw(cprs_crc32c_sw(0, buf, split),
                                        buf + split, n - split), whole);
        assert_int_equal(cprs_crc32c(cprs_crc32c(0, buf, split),
                                     buf + split, n - split), whole);
    }
    free(buf);
}

/* A single flipped bit always changes the CRC (Hamming distance >= 2). */
static void test_detects_single_flip(void **state)
{
    size_t n = 4096, bit;
    uint8_t *buf = random_buffer(n, 3);
    uint32_t good = cprs_crc32c(0, buf, n);

    (void)state;
    for (bit = 0; bit < n * 8; bit += 13) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(cprs_crc32c(0, buf, n), good);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_hw_matches_sw),
        cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_detects_single_flip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
