/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ramblock.c - RAM block maps (spec 6.3) and their guest-physical ranges
 * (spec 6.4).  The checks live in the _decode() functions, which full
 * verification shares.  Calls section.c and index.c.
 */
#include "cprs-reader.h"

uint32_t cprs_reader_ramblock_count(const CprsReader *r)
{
    return r ? cprs_rec_count(r, CPRS_SECTION_RAMBLOCKS) : 0;
}

int cprs_ramblock_decode(CprsReader *r, const uint8_t *p, int sec,
                         uint32_t index, uint64_t off, CprsRamBlockInfo *bi,
                         uint32_t *ret_first)
{
    const CprsWireRamBlock *w = (const CprsWireRamBlock *)p;
    uint64_t end;
    uint32_t first;
    int ret;

#define FAIL(err, field, clause, reason) \
    cprs_reader_fail(r, (err), off + offsetof(CprsWireRamBlock, field), sec, \
                     index, (clause), (reason))

    *bi = (CprsRamBlockInfo) { .sz = sizeof(*bi) };
    ret = cprs_str_get(r, &w->idstr, off, sec, index, &bi->idstr,
                       &bi->idstr_len, NULL);
    if (ret) {
        return ret;
    }
    bi->fd_index = cprs_le32_get(&w->fd_index);
    bi->flags = cprs_le32_get(&w->flags);
    bi->fd_offset = cprs_le64_get(&w->fd_offset);
    bi->used_length = cprs_le64_get(&w->used_length);
    bi->max_length = cprs_le64_get(&w->max_length);
    bi->page_size = cprs_le64_get(&w->page_size);
    bi->align = cprs_le64_get(&w->align);
    first = cprs_le32_get(&w->range_first);
    bi->range_count = cprs_le32_get(&w->range_count);

    if (bi->fd_index != CPRS_NO_INDEX &&
        bi->fd_index >= cprs_rec_count(r, CPRS_SECTION_FDS)) {
        return FAIL(-EBADMSG, fd_index, "6.3.2",
                    "fd_index names no fd record");
    }
    if (!r->lenient && (bi->flags & ~CPRS_RAM_F_KNOWN)) {
        return FAIL(-EBADMSG, flags, "6.3.3", "unknown RAM block flag");
    }
    if (!cprs_add_ok(bi->fd_offset, bi->max_length, &end)) {
        return FAIL(-EBADMSG, fd_offset, "6.3.4",
                    "fd_offset + max_length overflows");
    }
    if (bi->used_length > bi->max_length) {
        return FAIL(-EBADMSG, used_length, "6.3.5",
                    "used_length larger than max_length");
    }
    if (!cprs_is_pow2(bi->page_size)) {
        return FAIL(-EBADMSG, page_size, "6.3.6",
                    "page_size not a power of two");
    }
    if (bi->align && !cprs_is_pow2(bi->align)) {
        return FAIL(-EBADMSG, align, "6.3.6",
                    "align neither 0 nor a power of two");
    }
    if (!cprs_range_ok(cprs_rec_count(r, CPRS_SECTION_GPA_RANGES), first,
                       bi->range_count)) {
        return FAIL(-EBADMSG, range_first, "6.3.7",
                    "ranges outside the GPA range section");
    }
#undef FAIL
    *ret_first = first;
    return 0;
}

/*
 * spec 6.3.7 over the whole section, in O(r), once: the blocks claim
 * consecutive ranges, in record order, so that no range belongs to two
 * blocks and a walk over every block's ranges reads each range once.
 * The verdict is kept, failure included.
 */
static int ram_ranges_scan(CprsReader *r, int sec, const uint8_t *data)
{
    const CprsSec *s = &r->sec[sec];
    const CprsWireRamBlock *w;
    uint64_t next = 0;
    uint32_t i;

    for (i = 0; i < s->record_count; i++) {
        w = (const CprsWireRamBlock *)(data + (uint64_t)i * s->record_size);
        if (cprs_le32_get(&w->range_first) != next) {
            return cprs_reader_fail(r, -EBADMSG, s->offset +
                                    (uint64_t)i * s->record_size +
                                    offsetof(CprsWireRamBlock, range_first),
                                    sec, i, "6.3.7", "range_first does not "
                                    "follow the previous block's ranges");
        }
        next += cprs_le32_get(&w->range_count);
    }
    return 0;
}

static int ram_ranges_check(CprsReader *r, int sec)
{
    return cprs_rule_run(r, &r->ram_ranges, sec, ram_ranges_scan);
}

/* Decode and check block @index; also returns its first range. */
static int ramblock_get(CprsReader *r, uint32_t index, CprsRamBlockInfo *bi,
                        uint32_t *ret_first)
{
    const uint8_t *p;
    uint64_t off;
    int sec, ret;

    ret = cprs_rec_get(r, CPRS_SECTION_RAMBLOCKS, index, &p, &sec, &off);
    if (ret) {
        return ret;
    }
    ret = cprs_ramblock_decode(r, p, sec, index, off, bi, ret_first);
    return ret ? ret : ram_ranges_check(r, sec);
}

int cprs_reader_ramblock_get(CprsReader *r, uint32_t index,
                             CprsRamBlockInfo *info)
{
    CprsRamBlockInfo bi;
    uint32_t first;
    int ret;

    if (!r || !info) {
        return -EINVAL;
    }
    ret = ramblock_get(r, index, &bi, &first);
    if (ret) {
        return ret;
    }
    return cprs_info_fill(info, &bi, sizeof(bi));
}

int cprs_reader_ramblock_find(CprsReader *r, const char *idstr,
                              uint32_t *ret_index)
{
    int sec, ret;

    if (!r || !idstr || !ret_index) {
        return -EINVAL;
    }
    sec = cprs_sec_find(r, CPRS_SECTION_RAMBLOCKS);
    ret = sec < 0 ? 0 : ram_ranges_check(r, sec);
    return ret ? ret : cprs_lookup(r, CPRS_SECTION_RAMBLOCKS, idstr, 0,
                                   ret_index);
}

int cprs_gpa_range_decode(CprsReader *r, const uint8_t *p, int sec,
                          uint32_t index, uint64_t off, uint64_t max_length,
                          CprsGpaRange *ret_range)
{
    const CprsWireGpaRange *w = (const CprsWireGpaRange *)p;
    CprsGpaRange gr;
    uint64_t end;

    gr.gpa = cprs_le64_get(&w->gpa);
    gr.size = cprs_le64_get(&w->size);
    gr.block_offset = cprs_le64_get(&w->block_offset);
    /* spec 6.4.1: non-empty, and the last byte does not wrap. */
    if (gr.size == 0 || !cprs_add_ok(gr.gpa, gr.size - 1, &end)) {
        return cprs_reader_fail(r, -EBADMSG, off +
                                offsetof(CprsWireGpaRange, size), sec, index,
                                "6.4.1", "GPA range empty or wrapping");
    }
    /* spec 6.4.2: inside the block's max_length. */
    if (!cprs_range_ok(max_length, gr.block_offset, gr.size)) {
        return cprs_reader_fail(r, -EBADMSG, off +
                                offsetof(CprsWireGpaRange, block_offset),
                                sec, index, "6.4.2",
                                "GPA range outside its RAM block");
    }
    *ret_range = gr;
    return 0;
}

int cprs_reader_gpa_range_get(CprsReader *r, uint32_t block, uint32_t k,
                              CprsGpaRange *range)
{
    const uint8_t *p;
    CprsRamBlockInfo bi;
    uint64_t off;
    uint32_t first;
    int sec, ret;

    if (!r || !range) {
        return -EINVAL;
    }
    ret = ramblock_get(r, block, &bi, &first);
    if (ret) {
        return ret;
    }
    if (k >= bi.range_count) {
        return -EINVAL;
    }
    ret = cprs_rec_get(r, CPRS_SECTION_GPA_RANGES, first + k, &p, &sec, &off);
    if (ret) {
        return ret;
    }
    return cprs_gpa_range_decode(r, p, sec, first + k, off, bi.max_length,
                                 range);
}
