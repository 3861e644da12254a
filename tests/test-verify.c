/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-verify.c - one test per validation rule of spec 3 to 6: each takes
 * a valid arena from the writer, breaks exactly one rule (repairing the
 * CRCs where the rule sits behind them), and checks the exact error, byte
 * offset and spec clause that open or verify reports.
 */
#include <stdlib.h>

#include "helpers.h"

typedef struct Ctx {
    uint8_t *buf;
    size_t size;
} Ctx;

static Ctx rich_arena(uint32_t flags, uint32_t compress)
{
    Ctx c;

    th_build_rich(flags, compress, &c.buf, &c.size);
    return c;
}

static Ctx rich(void)
{
    return rich_arena(0, 0);
}

static void put16(Ctx *c, uint64_t off, uint16_t v)
{
    cprs_le16_set((CprsLe16 *)(c->buf + off), v);
}

static void put32(Ctx *c, uint64_t off, uint32_t v)
{
    cprs_le32_set((CprsLe32 *)(c->buf + off), v);
}

static void put64(Ctx *c, uint64_t off, uint64_t v)
{
    cprs_le64_set((CprsLe64 *)(c->buf + off), v);
}

static uint32_t get32(Ctx *c, uint64_t off)
{
    return cprs_le32_get((CprsLe32 *)(c->buf + off));
}

static uint64_t get64(Ctx *c, uint64_t off)
{
    return cprs_le64_get((CprsLe64 *)(c->buf + off));
}

/* Offset of the directory entry of section @idx. */
static uint64_t dir(uint32_t idx)
{
    return CPRS_HEADER_V1_SIZE + (uint64_t)idx * CPRS_SECTION_V1_SIZE;
}

/* Offset of the directory entry of the section of @type. */
static uint64_t dirt(Ctx *c, uint32_t type)
{
    int s = th_sec(c->buf, type);

    assert_true(s >= 0);
    return dir((uint32_t)s);
}

static uint64_t rec(Ctx *c, uint32_t type, uint32_t i)
{
    return th_rec_off(c->buf, type, i);
}

/* Repair CRCs if asked, expect the verdict, release the arena. */
static void expect(Ctx *c, bool fix, int err, uint64_t off,
                   const char *clause)
{
    if (fix) {
        th_fix_crcs(c->buf, c->size);
    }
    th_expect_reject(c->buf, c->size, err, off, clause);
    free(c->buf);
}

#define H(field) offsetof(CprsWireHeader, field)
#define E(field) offsetof(CprsWireSection, field)

/* ---- Header (spec 3) --------------------------------------------------- */

static void test_header(void **state)
{
    Ctx c;

    (void)state;
    c = rich();
    c.buf[0] = 'Q';
    expect(&c, false, -EBADMSG, 0, "3.2");
    c = rich();
    c.size = 100;
    expect(&c, false, -EBADMSG, 100, "3.1");
    c = rich();
    put16(&c, H(version_major), 0);
    expect(&c, true, -EBADMSG, H(version_major), "3.3");
    c = rich();
    put16(&c, H(version_major), 2);
    expect(&c, false, -EPROTONOSUPPORT, H(version_major), "3.3");
    c = rich();
    put32(&c, H(header_size), 184);
    expect(&c, false, -EBADMSG, H(header_size), "3.4");
    c = rich();
    put32(&c, H(header_size), 196);
    expect(&c, false, -EBADMSG, H(header_size), "3.4");
    c = rich();
    put32(&c, H(header_size), 200);     /* a minor-0 header is 192 */
    expect(&c, false, -EBADMSG, H(header_size), "3.4");
    c = rich();
    put32(&c, H(header_size), 8192);
    expect(&c, false, -EBADMSG, H(header_size), "3.4");
    c = rich();
    c.buf[H(build_id) + 3] ^= 1;
    expect(&c, false, -EBADMSG, H(header_crc32c), "3.9");
    c = rich();
    put64(&c, H(incompat_features), CPRS_INCOMPAT_ZSTD | 0x20);
    expect(&c, true, -EPROTONOSUPPORT, H(incompat_features), "3.5");
    c = rich();
    put64(&c, H(arena_size), c.size - 4);
    expect(&c, true, -EBADMSG, H(arena_size), "3.6");
    c = rich();
    put64(&c, H(arena_size), 184);
    expect(&c, true, -EBADMSG, H(arena_size), "3.6");
    c = rich();
    put64(&c, H(arena_size), c.size + 8);
    expect(&c, true, -EBADMSG, c.size, "3.6");
    c = rich();
    put64(&c, H(arena_size), UINT64_C(1) << 40);
    expect(&c, true, -E2BIG, H(arena_size), "7");
    c = rich();
    put32(&c, H(mode), 0);
    expect(&c, true, -EBADMSG, H(mode), "3.12");
    c = rich();
    put32(&c, H(mode), CPRS_MODE__MAX);
    expect(&c, true, -EBADMSG, H(mode), "3.12");
    c = rich();
    put32(&c, H(reserved0), 1);
    expect(&c, true, -EBADMSG, H(reserved0), "3.16");
    c = rich();
    put32(&c, H(build_id_size), 33);
    expect(&c, true, -EBADMSG, H(build_id_size), "3.14");
    c = rich();
    put32(&c, H(build_id_size), 4);
    expect(&c, true, -EBADMSG, H(build_id) + 4, "3.14");
    c = rich();
    memset(c.buf + H(producer), 'p', CPRS_PRODUCER_MAX);
    expect(&c, true, -EBADMSG, H(producer), "3.15");
    c = rich();
    c.buf[H(producer) + 3] = 0x07;
    expect(&c, true, -EBADMSG, H(producer) + 3, "3.15");
    c = rich();
    c.buf[H(producer) + 40] = 'x';
    expect(&c, true, -EBADMSG, H(producer) + 40, "3.15");
}

static void test_directory_location(void **state)
{
    Ctx c;

    (void)state;
    c = rich();
    put32(&c, H(dir_count), CPRS_MAX_SECTIONS + 1);
    expect(&c, true, -E2BIG, H(dir_count), "7");
    c = rich();
    put32(&c, H(dir_entry_size), 40);
    expect(&c, true, -EBADMSG, H(dir_entry_size), "3.7");
    c = rich();
    put32(&c, H(dir_entry_size), 56);
    expect(&c, true, -EBADMSG, H(dir_entry_size), "3.7");
    c = rich();
    put64(&c, H(dir_offset), 96);
    expect(&c, true, -EBADMSG, H(dir_offset), "3.7");
    c = rich();
    put64(&c, H(dir_offset), 196);
    expect(&c, true, -EBADMSG, H(dir_offset), "3.7");
    c = rich();
    put64(&c, H(dir_offset), c.size - 8);
    expect(&c, true, -EBADMSG, H(dir_offset), "3.7");
    c = rich();
    c.buf[dir(0) + 1] ^= 1;
    expect(&c, false, -EBADMSG, H(dir_crc32c), "3.8");
}

/* ---- Directory entries (spec 4) ---------------------------------------- */

static void test_entries(void **state)
{
    Ctx c;
    int s;

    (void)state;
    c = rich();
    put32(&c, dir(0) + E(type), 0);
    expect(&c, true, -EBADMSG, dir(0) + E(type), "4.2");
    c = rich();
    put32(&c, dir(0) + E(flags), CPRS_SECTION_F_REQUIRED | 0x4);
    expect(&c, true, -EBADMSG, dir(0) + E(flags), "4.3");
    c = rich();
    put64(&c, dir(1) + E(offset), get64(&c, dir(1) + E(offset)) + 4);
    expect(&c, true, -EBADMSG, dir(1) + E(offset), "4.4");
    c = rich();
    put64(&c, dir(1) + E(offset), c.size);
    expect(&c, true, -EBADMSG, dir(1) + E(offset), "4.4");
    c = rich();
    put64(&c, dir(0) + E(offset), 184);
    expect(&c, true, -EBADMSG, dir(0) + E(offset), "4.4");
    c = rich();
    put64(&c, dir(2) + E(offset), get64(&c, dir(1) + E(offset)));
    expect(&c, true, -EBADMSG, dir(2) + E(offset), "4.4");
    c = rich();
    put64(&c, dir(0) + E(offset), CPRS_HEADER_V1_SIZE);
    expect(&c, true, -EBADMSG, dir(0) + E(offset), "4.4");
    c = rich();
    put32(&c, dir(0) + E(flags), CPRS_SECTION_F_REQUIRED |
          CPRS_SECTION_F_ZSTD);
    put64(&c, H(incompat_features), 0);
    expect(&c, true, -EBADMSG, dir(0) + E(flags), "5.1");
    c = rich_arena(0, 1u << CPRS_SECTION_FDS);
    assert_true(get32(&c, dirt(&c, CPRS_SECTION_FDS) + E(flags)) &
                CPRS_SECTION_F_ZSTD);
    put64(&c, dirt(&c, CPRS_SECTION_FDS) + E(raw_size),
          CPRS_MAX_SECTION_RAW_SIZE + 1);
    expect(&c, true, -E2BIG, dirt(&c, CPRS_SECTION_FDS) + E(raw_size), "7");
    c = rich();
    put64(&c, dir(0) + E(raw_size), get64(&c, dir(0) + E(raw_size)) + 8);
    expect(&c, true, -EBADMSG, dir(0) + E(raw_size), "4.5");
    c = rich();
    s = th_index_sec(c.buf, CPRS_SECTION_FDS);
    put32(&c, dir((uint32_t)s) + E(type), 200);
    put32(&c, dir((uint32_t)s) + E(flags), CPRS_SECTION_F_REQUIRED);
    expect(&c, true, -EPROTONOSUPPORT, dir((uint32_t)s) + E(type), "4.9");
    c = rich();
    put32(&c, dir(2) + E(type), get32(&c, dir(1) + E(type)));
    expect(&c, true, -EBADMSG, dir(2) + E(type), "4.10");
    c = rich();
    put32(&c, dir(0) + E(link), 1);
    expect(&c, true, -EBADMSG, dir(0) + E(link), "4.8");
    c = rich();
    put32(&c, dir(0) + E(record_count), 1);
    expect(&c, true, -EBADMSG, dir(0) + E(record_count), "4.6");
    c = rich();
    put32(&c, dirt(&c, CPRS_SECTION_FDS) + E(record_size), 56);
    expect(&c, true, -EBADMSG, dirt(&c, CPRS_SECTION_FDS) + E(record_size),
           "4.6");
    c = rich();
    s = th_index_sec(c.buf, CPRS_SECTION_FDS);
    put32(&c, dir((uint32_t)s) + E(record_count), 12);
    expect(&c, true, -EBADMSG, dir((uint32_t)s) + E(record_count), "6.8.2");
    c = rich();
    put32(&c, dirt(&c, CPRS_SECTION_FDS) + E(record_count),
          CPRS_MAX_RECORDS + 1);
    expect(&c, true, -E2BIG, dirt(&c, CPRS_SECTION_FDS) + E(record_count),
           "7");
    c = rich();
    put32(&c, dirt(&c, CPRS_SECTION_FDS) + E(record_count), 2);
    expect(&c, true, -EBADMSG, dirt(&c, CPRS_SECTION_FDS) + E(raw_size),
           "4.6");
    c = rich();
    s = th_index_sec(c.buf, CPRS_SECTION_FDS);
    put32(&c, dir((uint32_t)s) + E(link), 0);
    expect(&c, true, -EBADMSG, dir((uint32_t)s) + E(link), "4.8");
    c = rich();
    s = th_index_sec(c.buf, CPRS_SECTION_FDS);
    put32(&c, dir((uint32_t)s) + E(link), 60);
    expect(&c, true, -EBADMSG, dir((uint32_t)s) + E(link), "4.8");
    c = rich();
    s = th_index_sec(c.buf, CPRS_SECTION_RAMBLOCKS);
    put32(&c, dir((uint32_t)s) + E(link),
          (uint32_t)th_sec(c.buf, CPRS_SECTION_FDS));
    expect(&c, true, -EBADMSG, dir((uint32_t)s) + E(link), "4.10");
}

/* Compressed entries with no bytes, and indexes too small for records. */
static void test_entries_assembled(void **state)
{
    ThSection secs[3];
    ThArena a;
    Ctx c;
    uint8_t *fds;
    uint8_t slots[64] = { 0 };
    uint8_t strtab[16] = "a\0b\0c\0d\0e\0f\0g\0h";
    CprsWireFd *f;
    uint32_t i;

    (void)state;
    secs[0] = (ThSection) { .type = CPRS_SECTION_STRTAB,
                            .flags = CPRS_SECTION_F_REQUIRED |
                                     CPRS_SECTION_F_ZSTD,
                            .raw_size = 0 };
    a = (ThArena) { .incompat = CPRS_INCOMPAT_ZSTD, .secs = secs, .nsec = 1 };
    c.buf = th_assemble(&a, &c.size);
    expect(&c, false, -EBADMSG, dir(0) + E(stored_size), "5.2");

    /* 8 fd records and an index of 8 slots: no empty slot. */
    fds = calloc(8, CPRS_FD_V1_SIZE);
    for (i = 0; i < 8; i++) {
        f = (CprsWireFd *)(fds + i * CPRS_FD_V1_SIZE);
        cprs_le32_set(&f->name.off, i * 2);
        cprs_le32_set(&f->name.len, 1);
        cprs_le32_set(&f->slot, i);
    }
    secs[0] = (ThSection) { .type = CPRS_SECTION_STRTAB,
                            .flags = CPRS_SECTION_F_REQUIRED,
                            .data = strtab, .size = sizeof(strtab) };
    secs[1] = (ThSection) { .type = CPRS_SECTION_FDS,
                            .flags = CPRS_SECTION_F_REQUIRED,
                            .record_count = 8, .record_size = 64,
                            .data = fds, .size = 8 * 64 };
    secs[2] = (ThSection) { .type = CPRS_SECTION_INDEX, .link = 1,
                            .record_count = 8, .record_size = 8,
                            .data = slots, .size = sizeof(slots) };
    a = (ThArena) { .secs = secs, .nsec = 3 };
    c.buf = th_assemble(&a, &c.size);
    expect(&c, false, -EBADMSG, dir(2) + E(record_count), "6.8.2");
    free(fds);
}

/* ---- Section bytes and strings (spec 4.7, 5.3, 6.1) -------------------- */

static void test_section_bytes(void **state)
{
    uint64_t r0;
    Ctx c;
    int s;

    (void)state;
    c = rich();
    c.buf[rec(&c, CPRS_SECTION_FDS, 1)] ^= 1;
    expect(&c, false, -EBADMSG, dirt(&c, CPRS_SECTION_FDS) + E(crc32c),
           "4.7");
    /* Sections held whole report their CRC as precisely. */
    c = rich();
    c.buf[th_sec_off(c.buf, CPRS_SECTION_STRTAB) + 1] ^= 1;
    expect(&c, false, -EBADMSG, dirt(&c, CPRS_SECTION_STRTAB) + E(crc32c),
           "4.7");
    c = rich();
    c.buf[th_sec_off(c.buf, CPRS_SECTION_BLOB)] ^= 1;
    expect(&c, false, -EBADMSG, dirt(&c, CPRS_SECTION_BLOB) + E(crc32c),
           "4.7");
    c = rich_arena(0, 1u << CPRS_SECTION_FDS);
    c.buf[th_sec_off(c.buf, CPRS_SECTION_FDS)] ^= 0xff;    /* frame magic */
    expect(&c, true, -EBADMSG, th_sec_off(c.buf, CPRS_SECTION_FDS), "5.3");
    c = rich_arena(0, 1u << CPRS_SECTION_FDS);
    put64(&c, dirt(&c, CPRS_SECTION_FDS) + E(raw_size),
          get64(&c, dirt(&c, CPRS_SECTION_FDS) + E(raw_size)) + 64);
    put32(&c, dirt(&c, CPRS_SECTION_FDS) + E(record_count), 4);
    expect(&c, true, -EBADMSG, th_sec_off(c.buf, CPRS_SECTION_FDS), "5.3");

    c = rich();
    r0 = rec(&c, CPRS_SECTION_FDS, 0);
    put32(&c, r0 + 4, 0);
    expect(&c, true, -EBADMSG, r0 + 4, "6.1.1");
    c = rich();
    put32(&c, r0 + 4, CPRS_MAX_NAME_LEN + 1);
    expect(&c, true, -E2BIG, r0 + 4, "7");
    c = rich();
    s = th_sec(c.buf, CPRS_SECTION_STRTAB);
    put32(&c, dir((uint32_t)s) + E(type), 200);
    put32(&c, dir((uint32_t)s) + E(flags), 0);
    expect(&c, true, -EBADMSG, r0, "6.1");
    c = rich();
    put32(&c, r0, (uint32_t)get64(&c, dirt(&c, CPRS_SECTION_STRTAB) +
                                  E(raw_size)));
    expect(&c, true, -EBADMSG, r0, "6.1.1");
    c = rich();
    put32(&c, r0 + 4, 3);               /* "ram" is followed by '0' */
    expect(&c, true, -EBADMSG, r0, "6.1.1");
    c = rich();
    c.buf[th_sec_off(c.buf, CPRS_SECTION_STRTAB) + 1] = 0x01;
    expect(&c, true, -EBADMSG, r0, "6.1.2");
    c = rich();
    c.buf[th_sec_off(c.buf, CPRS_SECTION_STRTAB) + 1] = 0;
    expect(&c, true, -EBADMSG, r0, "6.1.2");
}

/* ---- fd records (spec 6.2) --------------------------------------------- */

#define F(field) offsetof(CprsWireFd, field)

static void test_fds(void **state)
{
    uint64_t r0, r1, r2;
    Ctx c;

    (void)state;
    c = rich();
    r0 = rec(&c, CPRS_SECTION_FDS, 0);
    r1 = rec(&c, CPRS_SECTION_FDS, 1);
    r2 = rec(&c, CPRS_SECTION_FDS, 2);
    put32(&c, r0 + F(slot), 3);
    expect(&c, true, -EBADMSG, r0 + F(slot), "6.2.3");
    c = rich();
    put32(&c, r0 + F(fd), (uint32_t)-2);
    expect(&c, true, -EBADMSG, r0 + F(fd), "6.2.4");
    c = rich();
    put16(&c, r0 + F(kind), CPRS_FD_KIND__MAX);
    expect(&c, true, -EBADMSG, r0 + F(kind), "6.2.5");
    c = rich();
    put32(&c, r0 + F(flags), CPRS_FD_F_KNOWN | 0x4);
    expect(&c, true, -EBADMSG, r0 + F(flags), "6.2.6");
    c = rich();
    put16(&c, r0 + F(reserved0), 1);
    expect(&c, true, -EBADMSG, r0 + F(reserved0), "6.2.9");
    c = rich();
    put32(&c, r0 + F(reserved1), 1);
    expect(&c, true, -EBADMSG, r0 + F(reserved1), "6.2.9");
    c = rich();
    put32(&c, r2 + F(seals), 1);
    expect(&c, true, -EBADMSG, r2 + F(seals), "6.2.7");
    c = rich();
    put64(&c, r2 + F(ino), 5);
    expect(&c, true, -EBADMSG, r2 + F(dev), "6.2.8");
    c = rich();
    put32(&c, r1 + F(slot), 0);
    expect(&c, true, -EBADMSG, r1 + F(slot), "6.2.3");
    /* fd -1 (number unknown): not in cpr-exec, fine in cpr-transfer. */
    c = rich();
    put32(&c, r0 + F(fd), (uint32_t)-1);
    expect(&c, true, -EBADMSG, r0 + F(fd), "6.2.4");
    c = rich();
    put32(&c, r0 + F(fd), (uint32_t)-1);
    put32(&c, H(mode), CPRS_MODE_TRANSFER);
    th_fix_crcs(c.buf, c.size);
    th_expect_reject(c.buf, c.size, 0, 0, "");
    free(c.buf);
}

/* ---- RAM blocks and GPA ranges (spec 6.3, 6.4) ------------------------- */

#define R(field) offsetof(CprsWireRamBlock, field)
#define G(field) offsetof(CprsWireGpaRange, field)

static void test_ramblocks(void **state)
{
    uint64_t b0, b1, g0;
    Ctx c;

    (void)state;
    c = rich();
    b0 = rec(&c, CPRS_SECTION_RAMBLOCKS, 0);
    b1 = rec(&c, CPRS_SECTION_RAMBLOCKS, 1);
    g0 = rec(&c, CPRS_SECTION_GPA_RANGES, 0);
    put32(&c, b0 + R(fd_index), 3);
    expect(&c, true, -EBADMSG, b0 + R(fd_index), "6.3.2");
    c = rich();
    put32(&c, b0 + R(flags), 0x20);
    expect(&c, true, -EBADMSG, b0 + R(flags), "6.3.3");
    c = rich();
    put64(&c, b0 + R(fd_offset), UINT64_MAX);
    expect(&c, true, -EBADMSG, b0 + R(fd_offset), "6.3.4");
    c = rich();
    put64(&c, b0 + R(used_length), UINT64_C(0x100000001));
    expect(&c, true, -EBADMSG, b0 + R(used_length), "6.3.5");
    c = rich();
    put64(&c, b0 + R(page_size), 3);
    expect(&c, true, -EBADMSG, b0 + R(page_size), "6.3.6");
    c = rich();
    put64(&c, b0 + R(page_size), 0);
    expect(&c, true, -EBADMSG, b0 + R(page_size), "6.3.6");
    c = rich();
    put64(&c, b0 + R(align), 3);
    expect(&c, true, -EBADMSG, b0 + R(align), "6.3.6");
    c = rich();
    put32(&c, b0 + R(range_count), 10);
    expect(&c, true, -EBADMSG, b0 + R(range_first), "6.3.7");
    c = rich();
    put32(&c, b1 + R(range_first), 0);
    expect(&c, true, -EBADMSG, b1 + R(range_first), "6.3.7");
    c = rich();
    put32(&c, b1 + R(range_count), 0);
    expect(&c, true, -EBADMSG, rec(&c, CPRS_SECTION_GPA_RANGES, 2), "6.3.7");
    c = rich();
    put64(&c, g0 + G(size), 0);
    expect(&c, true, -EBADMSG, g0 + G(size), "6.4.1");
    c = rich();
    put64(&c, g0 + G(gpa), UINT64_MAX - 10);
    expect(&c, true, -EBADMSG, g0 + G(size), "6.4.1");
    c = rich();
    put64(&c, g0 + G(block_offset), UINT64_C(0x80000001));
    expect(&c, true, -EBADMSG, g0 + G(block_offset), "6.4.2");
    /* The block is larger than its backing memfd. */
    c = rich();
    put64(&c, rec(&c, CPRS_SECTION_FDS, 0) + F(size), 0x1000);
    expect(&c, true, -EBADMSG, b0 + R(used_length), "6.3.9");
}

/* ---- vfio and device state (spec 6.5, 6.6, 6.7, 5.3) ------------------- */

#define D(field) offsetof(CprsWireDevState, field)

static void test_devices(void **state)
{
    uint64_t v0, d0, d1, blob;
    Ctx c;

    (void)state;
    c = rich();
    v0 = rec(&c, CPRS_SECTION_VFIO_DEVICES, 0);
    d0 = rec(&c, CPRS_SECTION_DEVSTATE, 0);
    d1 = rec(&c, CPRS_SECTION_DEVSTATE, 1);
    blob = th_sec_off(c.buf, CPRS_SECTION_BLOB);
    put32(&c, v0 + offsetof(CprsWireVfioDevice, flags), 1);
    expect(&c, true, -EBADMSG, v0 + offsetof(CprsWireVfioDevice, flags),
           "6.5.3");
    c = rich();
    put32(&c, d0 + D(flags), 0x3);
    expect(&c, true, -EBADMSG, d0 + D(flags), "6.6.4");
    c = rich();
    put32(&c, d0 + D(reserved0), 1);
    expect(&c, true, -EBADMSG, d0 + D(reserved0), "6.6.4");
    c = rich();
    put64(&c, d0 + D(raw_size), CPRS_MAX_PAYLOAD_SIZE + 1);
    expect(&c, true, -E2BIG, d0 + D(raw_size), "7");
    c = rich();
    put64(&c, H(incompat_features), 0);
    expect(&c, true, -EBADMSG, d0 + D(flags), "5.1");
    c = rich();
    put64(&c, d0 + D(stored_size), 0);
    expect(&c, true, -EBADMSG, d0 + D(stored_size), "6.6.6");
    c = rich();
    put64(&c, d1 + D(stored_size), 4);
    expect(&c, true, -EBADMSG, d1 + D(stored_size), "6.6.6");
    c = rich();
    put64(&c, d1 + D(data_off), get64(&c, d1 + D(data_off)) + 1);
    expect(&c, true, -EBADMSG, d1 + D(data_off), "6.6.5");
    c = rich();
    put64(&c, d1 + D(data_off),
          get64(&c, dirt(&c, CPRS_SECTION_BLOB) + E(raw_size)));
    expect(&c, true, -EBADMSG, d1 + D(data_off), "6.6.5");
    c = rich();
    put64(&c, d1 + D(data_off), 0);
    expect(&c, true, -EBADMSG, d1 + D(data_off), "6.6.5");
    c = rich();
    c.buf[blob + get64(&c, d1 + D(data_off)) + 5] = 1;
    expect(&c, true, -EBADMSG, blob + get64(&c, d1 + D(data_off)) + 5,
           "6.7");
    /*
     * The zstd frame: not a frame, cut short, content size wrong.  (A
     * changed byte inside the compressed data may still decode; only the
     * section CRC catches that, see test_section_bytes.)
     */
    c = rich();
    c.buf[blob] ^= 0x55;
    expect(&c, true, -EBADMSG, blob, "5.3");
    c = rich();
    put64(&c, d0 + D(stored_size), get64(&c, d0 + D(stored_size)) - 1);
    expect(&c, true, -EBADMSG, blob, "5.3");
    c = rich();
    put64(&c, d0 + D(raw_size), 65535);
    expect(&c, true, -EBADMSG, blob, "5.3");
    /* A skippable frame is no payload, whatever size it claims (rule 5). */
    c = rich();
    memcpy(c.buf + blob + get64(&c, d1 + D(data_off)),
           "\x50\x2a\x4d\x18\0\0\0\0", 8);
    put32(&c, d1 + D(flags), CPRS_DEVSTATE_F_ZSTD);
    put64(&c, d1 + D(stored_size), 8);
    put64(&c, d1 + D(raw_size), 0);
    expect(&c, true, -EBADMSG, blob + get64(&c, d1 + D(data_off)), "5.3");
}

/* ---- Keys and indexes (spec 6.2.10, 6.3.8, 6.5.4, 6.6.7, 6.8) ---------- */

static void copy_name(Ctx *c, uint64_t to, uint64_t from)
{
    memcpy(c->buf + to, c->buf + from, sizeof(CprsWireStr));
}

static void test_duplicates_scan(void **state)
{
    Ctx c;

    (void)state;
    c = rich_arena(CPRS_WRITER_F_NO_INDEX, 0);
    copy_name(&c, rec(&c, CPRS_SECTION_FDS, 1), rec(&c, CPRS_SECTION_FDS, 0));
    expect(&c, true, -EBADMSG, rec(&c, CPRS_SECTION_FDS, 1), "6.2.10");
    c = rich_arena(CPRS_WRITER_F_NO_INDEX, 0);
    copy_name(&c, rec(&c, CPRS_SECTION_RAMBLOCKS, 1),
              rec(&c, CPRS_SECTION_RAMBLOCKS, 0));
    expect(&c, true, -EBADMSG, rec(&c, CPRS_SECTION_RAMBLOCKS, 1), "6.3.8");
    c = rich_arena(CPRS_WRITER_F_NO_INDEX, 0);
    copy_name(&c, rec(&c, CPRS_SECTION_VFIO_DEVICES, 0),
              rec(&c, CPRS_SECTION_VFIO_DEVICES, 1));
    expect(&c, true, -EBADMSG, rec(&c, CPRS_SECTION_VFIO_DEVICES, 1),
           "6.5.4");
    c = rich_arena(CPRS_WRITER_F_NO_INDEX, 0);
    copy_name(&c, rec(&c, CPRS_SECTION_DEVSTATE, 2),
              rec(&c, CPRS_SECTION_DEVSTATE, 0));
    expect(&c, true, -EBADMSG, rec(&c, CPRS_SECTION_DEVSTATE, 2), "6.6.7");
}

typedef struct Slots {
    uint64_t off;       /* arena offset of slot 0 */
    uint32_t count;
} Slots;

static Slots slots_of(Ctx *c, uint32_t type)
{
    int s = th_index_sec(c->buf, type);
    Slots sl;

    assert_true(s >= 0);
    sl.off = get64(c, dir((uint32_t)s) + E(offset));
    sl.count = get32(c, dir((uint32_t)s) + E(record_count));
    return sl;
}

/* Slot number holding record @rec + 1, or of the first empty slot. */
static uint32_t slot_with(Ctx *c, Slots sl, uint32_t record_plus1)
{
    uint32_t i;

    for (i = 0; i < sl.count; i++) {
        if (get32(c, sl.off + 8 * i) == record_plus1) {
            return i;
        }
    }
    fail_msg("no slot with record %u", record_plus1);
    return 0;
}

static void test_index(void **state)
{
    Slots sl;
    Ctx c;
    uint32_t s0, s1, e, home, h;

    (void)state;
    c = rich();
    sl = slots_of(&c, CPRS_SECTION_FDS);
    e = slot_with(&c, sl, 0);
    put32(&c, sl.off + 8 * e + 4, 1);
    expect(&c, true, -EBADMSG, sl.off + 8 * e + 4, "6.8.2");
    c = rich();
    s0 = slot_with(&c, sl, 1);
    put32(&c, sl.off + 8 * s0, 99);
    expect(&c, true, -EBADMSG, sl.off + 8 * s0, "6.8.2");
    c = rich();
    s0 = slot_with(&c, sl, 1);
    put32(&c, sl.off + 8 * s0 + 4, get32(&c, sl.off + 8 * s0 + 4) ^ 1);
    expect(&c, true, -EBADMSG, sl.off + 8 * s0 + 4, "6.8.1");
    c = rich();
    s0 = slot_with(&c, sl, 1);
    put64(&c, sl.off + 8 * s0, 0);
    expect(&c, true, -EBADMSG, sl.off, "6.8.4");
    /* A record in two slots: the later slot is reported. */
    c = rich();
    s0 = slot_with(&c, sl, 1);
    e = slot_with(&c, sl, 0);
    memcpy(c.buf + sl.off + 8 * e, c.buf + sl.off + 8 * s0, 8);
    expect(&c, true, -EBADMSG, sl.off + 8 * (s0 > e ? s0 : e), "6.8.4");
    /* A record moved behind an empty slot cannot be reached. */
    c = rich();
    s0 = slot_with(&c, sl, 1);
    h = get32(&c, sl.off + 8 * s0 + 4);
    home = h & (sl.count - 1);
    e = (home + sl.count - 1) & (sl.count - 1);
    while (get32(&c, sl.off + 8 * e)) {
        e = (e + sl.count - 1) & (sl.count - 1);
    }
    memcpy(c.buf + sl.off + 8 * e, c.buf + sl.off + 8 * s0, 8);
    put64(&c, sl.off + 8 * s0, 0);
    if (s0 != home) {
        /* Keep the slots between home and the record filled. */
        fail_msg("record 0 is not at its home slot in this arena");
    }
    expect(&c, true, -EBADMSG, sl.off, "6.8.3");
    /* Two records with one key, both hashed consistently: a duplicate. */
    c = rich();
    copy_name(&c, rec(&c, CPRS_SECTION_FDS, 1), rec(&c, CPRS_SECTION_FDS, 0));
    s1 = slot_with(&c, sl, 2);
    put32(&c, sl.off + 8 * s1 + 4, cprs_key_hash("ram0", 4, 0));
    expect(&c, true, -EBADMSG, rec(&c, CPRS_SECTION_FDS, 1), "6.2.10");
}

/*
 * Pass 7 has two ways to the verdict: the slot sweep of pass 1 (fast,
 * in slot order) and the record-order walk (which reports the first
 * violation in the spec's order, and runs whenever the sweep has a doubt).
 * Thousands of damaged indexes, made with a fixed seed: both must accept
 * the same ones, and report the same violation.
 */
static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(*s >> 33);
}

/*
 * Record @k takes the key of the record in the first full slot p from @a
 * with p + 1 full and p + 2 empty, and moves to p + 2 under that key's
 * hash: its walk meets the equal key first, two slots or more back.
 */
static void far_duplicate(uint8_t *m, uint64_t soff, uint32_t nslots,
                          uint64_t fds, uint32_t a, uint32_t k)
{
    uint32_t p, q, j, mask = nslots - 1;

#define SREC(x) cprs_le32_get((CprsLe32 *)(m + soff + 8 * ((x) & mask)))
    for (p = a; p < a + nslots; p++) {
        if (SREC(p) && SREC(p + 1) && !SREC(p + 2)) {
            break;
        }
    }
    j = SREC(p) - 1;
    if (p == a + nslots || j == k) {
        return;
    }
    for (q = 0; q < nslots && SREC(q) != k + 1; q++) {
    }
    memcpy(m + fds + 64 * k, m + fds + 64 * j, 12);     /* name, id */
    if (q < nslots) {
        memset(m + soff + 8 * q, 0, 8);
    }
    cprs_le32_set((CprsLe32 *)(m + soff + 8 * ((p + 2) & mask)), k + 1);
    memcpy(m + soff + 8 * ((p + 2) & mask) + 4, m + soff + 8 * (p & mask) + 4,
           4);
#undef SREC
}

/*
 * The record whose home is among the last @back + 1 slots, moved to slot
 * @t (whose record moves to the next empty slot; with @t 2, slot 0's
 * too): its path wraps past the end of the table, and is whole only if
 * every slot from its home to the end, and from 0 to @t, is full.
 */
static void wrap_around(uint8_t *m, uint64_t soff, uint32_t nslots,
                        uint32_t back, uint32_t t)
{
    uint8_t *at = m + soff + 8 * t;
    uint32_t s, h, k;

    /* Slot t freed; with t == 2, slot 0 too: a gap before the record. */
    for (k = 0; k <= t; k += t == 2 ? 2 : t + 1) {
        at = m + soff + 8 * (t - k);
        for (s = t + 1; s < nslots && cprs_le64_get((CprsLe64 *)at); s++) {
            if (!cprs_le64_get((CprsLe64 *)(m + soff + 8 * s))) {
                memcpy(m + soff + 8 * s, at, 8);
                memset(at, 0, 8);
            }
        }
    }
    at = m + soff + 8 * t;
    for (s = nslots - 1 - back; s < nslots; s++) {
        h = cprs_le32_get((CprsLe32 *)(m + soff + 8 * s + 4));
        if (cprs_le32_get((CprsLe32 *)(m + soff + 8 * s)) &&
            (h & (nslots - 1)) >= nslots - 1 - back) {
            memcpy(at, m + soff + 8 * s, 8);
            memset(m + soff + 8 * s, 0, 8);
            return;
        }
    }
}

static void test_index_sweep_agrees(void **state)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsDiag d1 = CPRS_OPTS(CprsDiag), d2 = CPRS_OPTS(CprsDiag);
    uint64_t seed = 42, soff, fds;
    uint32_t i, k, n = 300, nslots, a, b, ok = 0, bad = 0;
    CprsFdInfo fi;
    CprsWriter *w;
    uint8_t *buf, *m;
    CprsReader *r;
    char name[16];
    size_t size;
    int isec, v1, v2;

    (void)state;
    assert_int_equal(cprs_writer_new(&o, &w), 0);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "n%u", i % 40);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .id = (int32_t)(i / 40),
                       .fd = (int32_t)i);
        assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    }
    assert_int_equal(cprs_writer_finish_buffer(w, (void **)&buf, &size),
                     0);
    cprs_writer_free(w);
    isec = th_index_sec(buf, CPRS_SECTION_FDS);
    soff = cprs_le64_get(&th_dir(buf, (uint32_t)isec)->offset);
    nslots = cprs_le32_get(&th_dir(buf, (uint32_t)isec)->record_count);
    fds = th_sec_off(buf, CPRS_SECTION_FDS);
    m = malloc(size);
    assert_non_null(m);
    for (i = 0; i < 4000; i++) {
        memcpy(m, buf, size);
        for (k = 0; k <= rnd(&seed) % 3; k++) {
            a = rnd(&seed) % nslots;
            b = rnd(&seed) % nslots;
            switch (rnd(&seed) % 10) {
            case 0:     /* two slots swapped */
                memcpy(name, m + soff + 8 * a, 8);
                memcpy(m + soff + 8 * a, m + soff + 8 * b, 8);
                memcpy(m + soff + 8 * b, name, 8);
                break;
            case 1:     /* a slot emptied */
                memset(m + soff + 8 * a, 0, 8);
                break;
            case 2:     /* a slot copied over another */
                memcpy(m + soff + 8 * b, m + soff + 8 * a, 8);
                break;
            case 3:     /* a record number changed */
                m[soff + 8 * a] = (uint8_t)rnd(&seed);
                break;
            case 4:     /* a hash bit flipped */
                m[soff + 8 * a + 4 + rnd(&seed) % 4] ^=
                    (uint8_t)(1u << (rnd(&seed) % 8));
                break;
            case 5:     /* one record takes another's key: a duplicate */
                memcpy(m + fds + 64 * (a % n), m + fds + 64 * (b % n), 12);
                break;
            case 6:     /* a duplicate key two or more slots on: only the
                         * look back along the path finds it */
                far_duplicate(m, soff, nslots, fds, a, b % n);
                break;
            case 7:     /* a path wrapping past the end of the table */
                wrap_around(m, soff, nslots, rnd(&seed) % 8,
                            rnd(&seed) % 3);
                break;
            case 8:     /* a record twice, another gone: copied onto the
                         * next full slot of its cluster */
                if (cprs_le64_get((CprsLe64 *)(m + soff + 8 * a)) &&
                    cprs_le64_get((CprsLe64 *)(m + soff + 8 *
                                               ((a + 1) % nslots)))) {
                    memcpy(m + soff + 8 * ((a + 1) % nslots),
                           m + soff + 8 * a, 8);
                }
                break;
            default:    /* a slot moved one place on, if that is free */
                if (!cprs_le64_get((CprsLe64 *)(m + soff + 8 *
                                                ((a + 1) % nslots)))) {
                    memcpy(m + soff + 8 * ((a + 1) % nslots),
                           m + soff + 8 * a, 8);
                    memset(m + soff + 8 * a, 0, 8);
                }
                break;
            }
        }
        th_fix_crcs(m, size);
        assert_int_equal(cprs_reader_open_buffer(m, size, NULL, &d1, &r), 0);
        v1 = cprs_reader_verify(r, &d1);
        v2 = cprs_reader_verify_walk(r, &d2);
        if (v1 != v2 || (v1 && (d1.offset != d2.offset ||
                                strcmp(d1.clause, d2.clause)))) {
            fail_msg("case %u: sweep %d %s @%llu, walk %d %s @%llu", i, v1,
                     d1.clause, (unsigned long long)d1.offset, v2,
                     d2.clause, (unsigned long long)d2.offset);
        }
        ok += !v1;
        bad += !!v1;
        cprs_reader_close(r);
    }
    /* Both verdicts were met often enough to mean something. */
    assert_true(ok > 100 && bad > 1000);
    free(m);
    free(buf);
}

/* ---- Bytes outside every structure (spec 4.11) ------------------------- */

static void test_unclaimed(void **state)
{
    uint64_t end;
    Ctx c;
    int s;

    (void)state;
    c = rich();
    s = th_sec(c.buf, CPRS_SECTION_STRTAB);
    end = get64(&c, dir((uint32_t)s) + E(offset)) +
          get64(&c, dir((uint32_t)s) + E(stored_size));
    assert_true(end % 8 != 0);      /* there is padding to dirty */
    c.buf[end] = 0x80;
    expect(&c, false, -EBADMSG, end, "4.11");
    /* Zero bytes beyond the last section are fine, non-zero ones not. */
    c = rich();
    c.buf = realloc(c.buf, c.size + 16);
    memset(c.buf + c.size, 0, 16);
    put64(&c, H(arena_size), c.size + 16);
    c.size += 16;
    th_fix_crcs(c.buf, c.size);
    th_expect_reject(c.buf, c.size, 0, 0, "");
    c.buf[c.size - 1] = 1;
    expect(&c, false, -EBADMSG, c.size - 1, "4.11");
}

/* An unknown skippable section is ignored; lookups then scan. */
static void test_skippable_unknown(void **state)
{
    uint32_t idx;
    CprsReader *r;
    Ctx c;
    int s;

    (void)state;
    c = rich();
    s = th_index_sec(c.buf, CPRS_SECTION_FDS);
    put32(&c, dir((uint32_t)s) + E(type), 200);
    put32(&c, dir((uint32_t)s) + E(link), 0);
    th_fix_crcs(c.buf, c.size);
    assert_int_equal(cprs_reader_open_buffer(c.buf, c.size, NULL, NULL, &r),
                     0);
    assert_int_equal(cprs_reader_verify(r, NULL), 0);
    assert_int_equal(cprs_reader_fd_find(r, "vfio-group", 42, &idx), 0);
    assert_int_equal(idx, 2);
    cprs_reader_close(r);
    free(c.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_directory_location),
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_entries_assembled),
        cmocka_unit_test(test_section_bytes),
        cmocka_unit_test(test_fds),
        cmocka_unit_test(test_ramblocks),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_duplicates_scan),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_index_sweep_agrees),
        cmocka_unit_test(test_unclaimed),
        cmocka_unit_test(test_skippable_unknown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
