/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * index.c - lookup by key through the hash index (spec 6.8).
 *
 * An index is an open-addressing table with linear probing, keyed by
 * FNV-1a of (name, id).  Lookups stop at an empty slot or after
 * CPRS_INDEX_MAX_PROBE slots, so they cost O(1) even on a hostile index; a
 * wrong index can make a lookup miss, never return a wrong record, because
 * the record's own key is compared.  cprs_reader_verify() proves that every
 * record is found.
 */
#include "cprs-reader.h"

int cprs_rec_key(CprsReader *r, uint32_t type, uint32_t i,
                 const char **ret_name, uint32_t *ret_len, uint32_t *ret_id)
{
    const CprsWireStr *ref;
    const uint8_t *p;
    uint64_t off;
    uint32_t id;
    int sec, ret;

    ret = cprs_rec_get(r, type, i, &p, &sec, &off);
    if (ret) {
        return ret;
    }
    ref = cprs_wire_key(type, p, &id);
    ret = cprs_str_get(r, ref, off, sec, i, ret_name, ret_len, NULL);
    if (ret) {
        return ret;
    }
    *ret_id = id;
    return 0;
}

static bool key_equal(const char *a, uint32_t alen, uint32_t aid,
                      const char *b, size_t blen, uint32_t bid)
{
    return aid == bid && alen == blen && !memcmp(a, b, blen);
}

int cprs_lookup(CprsReader *r, uint32_t type, const char *name, uint32_t id,
                uint32_t *ret_index)
{
    const char *kname;
    const uint8_t *slots;
    uint32_t count = cprs_rec_count(r, type);
    uint32_t klen, kid, h, mask, pos, probe, rec, i;
    size_t len = strnlen(name, CPRS_MAX_NAME_LEN + 1);
    int isec = r->index_of[type];
    const CprsSec *s;
    int ret;

    if (len == 0 || len > CPRS_MAX_NAME_LEN) {
        return -ENOENT;
    }
    if (isec < 0) {
        /* No index: scan, and return the first match like QEMU does. */
        for (i = 0; i < count; i++) {
            ret = cprs_rec_key(r, type, i, &kname, &klen, &kid);
            if (ret) {
                return ret;
            }
            if (key_equal(kname, klen, kid, name, len, id)) {
                *ret_index = i;
                return 0;
            }
        }
        return -ENOENT;
    }

    ret = cprs_sec_data(r, (uint32_t)isec, &slots);
    if (ret) {
        return ret;
    }
    s = &r->sec[isec];
    h = cprs_key_hash(name, len, id);
    mask = s->record_count - 1;      /* a power of two (checked at open) */
    pos = h & mask;
    for (probe = 0; probe < CPRS_INDEX_MAX_PROBE && probe <= mask; probe++) {
        const CprsWireIndexSlot *slot =
            (const CprsWireIndexSlot *)(slots + (uint64_t)pos *
                                        s->record_size);

        CPRS_WORK_ADD(CPRS_WORK_PROBES, 1);
        rec = cprs_le32_get(&slot->record);
        if (rec == 0) {
            break;
        }
        if (cprs_le32_get(&slot->hash) == h) {
            if (rec > count) {
                return cprs_reader_fail(r, -EBADMSG, s->offset +
                                        (uint64_t)pos * s->record_size,
                                        isec, pos, "6.8.2",
                                        "index slot names no record");
            }
            ret = cprs_rec_key(r, type, rec - 1, &kname, &klen, &kid);
            if (ret) {
                return ret;
            }
            if (key_equal(kname, klen, kid, name, len, id)) {
                *ret_index = rec - 1;
                return 0;
            }
        }
        pos = (pos + 1) & mask;
    }
    return -ENOENT;
}
