/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * crc32c.c - CRC-32C (Castagnoli), the checksum of every arena structure
 * (spec appendix A).
 *
 * Two implementations that must agree bit for bit (tests/test-crc32c.c):
 * slice-by-8 tables for any CPU, and the SSE4.2 crc32 instruction run as
 * three interleaved streams, because one stream is bound by the
 * instruction's 3-cycle latency while the unit accepts one per cycle.  The
 * three partial CRCs are merged with a precomputed "advance over BLOCK zero
 * bytes" map (generated at build time by gen-crc32c-table.c).
 */
#include <stdint.h>
#include <string.h>

#include "cprs-base.h"
#include "crc32c-table.h"

#if defined(__x86_64__) || defined(__i386__)
#define CPRS_HAVE_SSE42 1
#include <nmmintrin.h>
#endif

uint32_t cprs_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;

    /* Byte steps until p is 8-aligned, so the word loads below are too. */
    while (len && ((uintptr_t)p & 7)) {
        c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        uint32_t lo, hi;

        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = crc32c_table[7][lo & 0xff] ^
            crc32c_table[6][(lo >> 8) & 0xff] ^
            crc32c_table[5][(lo >> 16) & 0xff] ^
            crc32c_table[4][lo >> 24] ^
            crc32c_table[3][hi & 0xff] ^
            crc32c_table[2][(hi >> 8) & 0xff] ^
            crc32c_table[1][(hi >> 16) & 0xff] ^
            crc32c_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) {
        c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    }
    return ~c;
}

#ifdef CPRS_HAVE_SSE42

/* Advance a raw CRC register over CPRS_CRC32C_BLOCK zero bytes. */
static inline uint32_t crc32c_shift_block(uint32_t c)
{
    return crc32c_shift[0][c & 0xff] ^ crc32c_shift[1][(c >> 8) & 0xff] ^
           crc32c_shift[2][(c >> 16) & 0xff] ^ crc32c_shift[3][c >> 24];
}

#ifdef __x86_64__
#define CRC_WORD uint64_t
#define CRC_STEP(c, p) \
    ((uint32_t)_mm_crc32_u64((c), cprs_load64(p)))
#else
#define CRC_WORD uint32_t
#define CRC_STEP(c, p) (_mm_crc32_u32((c), cprs_load32(p)))
#endif

static inline uint64_t cprs_load64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

#ifndef __x86_64__
/* Only the 32-bit step uses it (clang warns on unused static inlines). */
static inline uint32_t cprs_load32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}
#endif

__attribute__((target("sse4.2")))
uint32_t cprs_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~crc;

    while (len && ((uintptr_t)p & (sizeof(CRC_WORD) - 1))) {
        c = _mm_crc32_u8(c, *p++);
        len--;
    }
    /* spec A.2: three streams of BLOCK bytes, merged by shifting. */
    while (len >= 3 * CPRS_CRC32C_BLOCK) {
        uint32_t c1 = 0, c2 = 0;
        const uint8_t *end = p + CPRS_CRC32C_BLOCK;

        while (p < end) {
            c = CRC_STEP(c, p);
            c1 = CRC_STEP(c1, p + CPRS_CRC32C_BLOCK);
            c2 = CRC_STEP(c2, p + 2 * CPRS_CRC32C_BLOCK);
            p += sizeof(CRC_WORD);
        }
        c = crc32c_shift_block(crc32c_shift_block(c) ^ c1) ^ c2;
        p += 2 * CPRS_CRC32C_BLOCK;
        len -= 3 * CPRS_CRC32C_BLOCK;
    }
    while (len >= sizeof(CRC_WORD)) {
        c = CRC_STEP(c, p);
        p += sizeof(CRC_WORD);
        len -= sizeof(CRC_WORD);
    }
    while (len--) {
        c = _mm_crc32_u8(c, *p++);
    }
    return ~c;
}

bool cprs_crc32c_hw_available(void)
{
    /* Reads libgcc's cpu model, filled once per process (no cpuid here). */
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

#else /* !CPRS_HAVE_SSE42 */

uint32_t cprs_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return cprs_crc32c_sw(crc, buf, len);
}

bool cprs_crc32c_hw_available(void)
{
    return false;
}

#endif

uint32_t cprs_crc32c(uint32_t crc, const void *buf, size_t len)
{
    CPRS_WORK_ADD(CPRS_WORK_CRC_BYTES, len);
    if (cprs_crc32c_hw_available()) {
        return cprs_crc32c_hw(crc, buf, len);
    }
    return cprs_crc32c_sw(crc, buf, len);
}
