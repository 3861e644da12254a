/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * section.c - access to section bytes, records and strings, and the
 * reader's memory budget.
 *
 * A section's bytes are handed out only after its CRC32C has matched
 * (spec 4.7) and, for a zstd section, after it has decompressed to exactly
 * raw_size bytes (spec 5.2).  Both happen once, on first use, so opening
 * stays O(1) and nothing is read that is not needed; a failure is kept
 * just like a success, so that a damaged section costs its CRC (or its
 * decompression) once, not once per record access.  Every record and
 * string accessor re-checks its own bounds, so the reader is memory-safe
 * whether or not cprs_reader_verify() ran.
 *
 * This is the bottom file of the reader: it calls frame.c and the base
 * layer only.
 */
#include <stdlib.h>

#include "cprs-reader.h"

int cprs_reader_fail(CprsReader *r, int error, uint64_t offset,
                     int32_t section, int64_t record, const char *clause,
                     const char *reason)
{
    r->last.sz = sizeof(r->last);
    return cprs_diag_set(&r->last, error, offset, section, record, clause,
                         reason);
}

int cprs_budget_check(CprsReader *r, uint64_t used, uint64_t n,
                      uint64_t offset, int32_t section, int64_t record)
{
    /* spec 7.1: checked before the allocation, never after. */
    if (used > r->opts.max_memory || n > r->opts.max_memory - used) {
        return cprs_reader_fail(r, -E2BIG, offset, section, record, "7.1",
                                "over the reader's memory budget");
    }
    return 0;
}

uint32_t cprs_type_record_size(uint32_t type)
{
    switch (type) {
    case CPRS_SECTION_FDS:
        return CPRS_FD_V1_SIZE;
    case CPRS_SECTION_RAMBLOCKS:
        return CPRS_RAMBLOCK_V1_SIZE;
    case CPRS_SECTION_GPA_RANGES:
        return CPRS_GPA_RANGE_V1_SIZE;
    case CPRS_SECTION_VFIO_DEVICES:
        return CPRS_VFIO_DEVICE_V1_SIZE;
    case CPRS_SECTION_DEVSTATE:
        return CPRS_DEVSTATE_V1_SIZE;
    case CPRS_SECTION_INDEX:
        return CPRS_INDEX_SLOT_V1_SIZE;
    default:
        return 0;
    }
}

/* Keep @ret, the verdict on section @idx, unless it is not the arena's. */
static int sec_fail(CprsReader *r, uint32_t idx, int ret)
{
    CprsSec *s = &r->sec[idx];

    if (ret != -ENOMEM) {
        s->err = ret;
        s->err_diag = r->last;
    }
    return ret;
}

/* A kept verdict on the arena's bytes (the budget's is not: verify has
 * one of its own). */
static bool sec_failed(CprsReader *r, uint32_t idx)
{
    CprsSec *s = &r->sec[idx];

    if (s->err && s->err != -E2BIG) {
        r->last = s->err_diag;
        return true;
    }
    return false;
}

int cprs_sec_frame(CprsReader *r, uint32_t idx, uint64_t *ret_cost)
{
    CprsSec *s = &r->sec[idx];
    const char *reason;
    int ret;

    if (sec_failed(r, idx)) {
        return s->err;
    }
    ret = cprs_frame_check(r->base + s->offset, s->stored_size, s->raw_size,
                           ret_cost, &reason);
    if (ret) {
        return sec_fail(r, idx, cprs_reader_fail(r, ret, s->offset,
                                                 (int32_t)idx, -1, "5.3",
                                                 reason));
    }
    return 0;
}

/* Decode section @idx into @dst (raw_size bytes) or through a window. */
static int sec_decode(CprsReader *r, uint32_t idx, uint8_t *dst,
                      CprsFrameSink sink, void *opaque)
{
    CprsSec *s = &r->sec[idx];
    const char *reason;
    int ret;

    ret = cprs_frame_decode(&r->zstd_idle, r->base + s->offset,
                            s->stored_size, s->raw_size, dst, sink, opaque,
                            &reason);
    if (ret) {
        return sec_fail(r, idx, cprs_reader_fail(r, ret, s->offset,
                                                 (int32_t)idx, -1, "5.3",
                                                 reason));
    }
    return 0;
}

int cprs_sec_decode_own(CprsReader *r, uint32_t idx, uint8_t **ret_buf)
{
    CprsSec *s = &r->sec[idx];
    uint8_t *raw;
    int ret;

    if (sec_failed(r, idx)) {
        return s->err;
    }
    /* raw_size passed CPRS_MAX_SECTION_RAW_SIZE at open and the budget. */
    raw = cprs_alloc_large((size_t)s->raw_size);
    if (!raw) {
        return cprs_reader_fail(r, -ENOMEM, s->offset, (int32_t)idx, -1, "",
                                "out of memory decompressing a section");
    }
    CPRS_WORK_ALLOC(s->raw_size);
    ret = sec_decode(r, idx, raw, NULL, NULL);
    if (ret) {
        free(raw);
        return ret;
    }
    *ret_buf = raw;
    return 0;
}

int cprs_sec_stream(CprsReader *r, uint32_t idx, CprsFrameSink sink,
                    void *opaque)
{
    if (sec_failed(r, idx)) {
        return r->sec[idx].err;
    }
    return sec_decode(r, idx, NULL, sink, opaque);
}

int cprs_sec_load(CprsReader *r, uint32_t idx, bool crc_checked,
                  const uint8_t **ret_data)
{
    CprsSec *s = &r->sec[idx];
    const uint8_t *stored = r->base + s->offset;
    uint64_t cost;
    uint8_t *raw;
    int ret;

    if (s->data) {
        *ret_data = s->data;
        return 0;
    }
    if (s->err) {
        r->last = s->err_diag;
        return s->err;
    }
    if (!crc_checked && !(r->opts.flags & CPRS_READER_F_NO_CRC) &&
        cprs_crc32c(0, stored, (size_t)s->stored_size) != s->crc32c) {
        return sec_fail(r, idx, cprs_reader_fail(r, -EBADMSG,
                        s->entry_offset + offsetof(CprsWireSection, crc32c),
                        (int32_t)idx, -1, "4.7", "section CRC32C mismatch"));
    }
    if (!(s->flags & CPRS_SECTION_F_ZSTD)) {
        s->data = stored;
        *ret_data = s->data;
        return 0;
    }
    ret = cprs_sec_frame(r, idx, &cost);
    if (ret) {
        return ret;
    }
    /* The bytes kept, and the decoder for as long as it runs. */
    ret = cprs_budget_check(r, r->kept, s->raw_size + cost, s->offset,
                            (int32_t)idx, -1);
    if (ret) {
        return sec_fail(r, idx, ret);   /* kept only grows: for good */
    }
    ret = cprs_sec_decode_own(r, idx, &raw);
    if (ret) {
        return ret;
    }
    r->kept += s->raw_size;
    s->owned = raw;
    s->data = raw;
    *ret_data = s->data;
    return 0;
}

void cprs_sec_lend(CprsReader *r, uint32_t idx, const uint8_t *data)
{
    r->sec[idx].data = data;
}

void cprs_sec_unlend(CprsReader *r, uint32_t idx)
{
    CprsSec *s = &r->sec[idx];

    s->data = s->owned;
}

void cprs_sec_release_all(CprsReader *r)
{
    uint32_t i, n;

    if (r->payloads) {
        n = cprs_rec_count(r, CPRS_SECTION_DEVSTATE);
        for (i = 0; i < n; i++) {
            free(r->payloads[i].data);
        }
        free(r->payloads);
    }
    for (i = 0; i < r->nsec; i++) {
        free(r->sec[i].owned);
    }
    for (i = 0; i < CPRS_SECTION__MAX; i++) {
        cprs_table_free(&r->keytab[i]);
    }
    cprs_table_free(&r->name_index);
    free(r->names);
}

int cprs_rec_get(CprsReader *r, uint32_t type, uint32_t i,
                 const uint8_t **ret_rec, int *ret_sec, uint64_t *ret_off)
{
    const uint8_t *data;
    int idx = cprs_sec_find(r, type);
    uint64_t pos;
    int ret;

    if (idx < 0 || i >= r->sec[idx].record_count) {
        return -EINVAL;
    }
    ret = cprs_sec_data(r, (uint32_t)idx, &data);
    if (ret) {
        return ret;
    }
    /* record_count * record_size == raw_size was checked at open. */
    pos = (uint64_t)i * r->sec[idx].record_size;
    *ret_rec = data + pos;
    *ret_sec = idx;
    *ret_off = r->sec[idx].offset + pos;
    return 0;
}

/* ---- Long names: checked and hashed once per distinct reference ------- */

static bool name_memo_eq(const void *ctx, uint32_t val,
                         const CprsTableKey *key)
{
    const CprsReader *r = ctx;
    uint32_t k[2];

    memcpy(k, key->name, sizeof(k));
    return r->names[val].off == k[0] && r->names[val].len == k[1];
}

/* The table's hash of the reference (@off, @len): its 8 bytes as a key. */
static uint32_t name_memo_hash(const CprsReader *r, const uint32_t k[2])
{
    return cprs_table_hash(&r->name_index, (const char *)k, 2 * sizeof(*k),
                           0);
}

/* The memo of (@off, @len), or NULL. */
static CprsNameMemo *name_memo_find(CprsReader *r, uint32_t off,
                                    uint32_t len)
{
    uint32_t k[2] = { off, len };
    CprsTableKey key = { (const char *)k, sizeof(k), 0 };
    int64_t i;

    if (!r->names_count) {
        return NULL;
    }
    i = cprs_table_find(&r->name_index, name_memo_hash(r, k), name_memo_eq,
                        r, &key);
    return i < 0 ? NULL : &r->names[i];
}

/*
 * Room for one more memo, charged to the budget before anything is
 * allocated (spec 7.1).  When the budget allows no more, names are
 * checked on each access again (spec 8.7): slower, never wrong.
 */
static bool name_memo_room(CprsReader *r)
{
    size_t cap = r->names_cap;
    uint64_t more;
    CprsDiag keep = r->last;

    if (r->names_full) {
        return false;
    }
    if (r->names_count < cap) {
        return true;
    }
    more = (uint64_t)(cap ? cap : 64) * CPRS_NAME_MEMO_COST;
    if (cprs_budget_check(r, r->kept, more, 0, -1, -1)) {
        r->last = keep;     /* not the access's failure */
        r->names_full = true;
        return false;
    }
    if (!r->names_cap) {
        cprs_table_init(&r->name_index);
    }
    if (cprs_grow(&r->names, &r->names_cap, r->names_count + 1,
                  sizeof(*r->names), 64, UINT32_MAX / 2)) {
        r->names_full = true;   /* -ENOMEM: the same fall-back */
        return false;
    }
    r->kept += ((uint64_t)r->names_cap - cap) * CPRS_NAME_MEMO_COST;
    if (cprs_table_reserve(&r->name_index,
                           (uint32_t)(r->names_cap - r->names_count))) {
        r->names_full = true;   /* -ENOMEM: no more memos, no harm */
        return false;
    }
    return true;
}

static void name_memo_put(CprsReader *r, uint32_t off, uint32_t len,
                          uint32_t hash, bool bad)
{
    uint32_t k[2] = { off, len };

    if (!name_memo_room(r)) {
        return;
    }
    r->names[r->names_count] = (CprsNameMemo) { off, len, hash, bad };
    cprs_table_put(&r->name_index, name_memo_hash(r, k), r->names_count);
    r->names_count++;
}

int cprs_str_resolve(CprsReader *r, const CprsWireStr *ref, uint64_t ref_off,
                     int sec, int64_t rec, const char **ret_str,
                     uint32_t *ret_len)
{
    int st = cprs_sec_find(r, CPRS_SECTION_STRTAB);
    uint32_t off = cprs_le32_get(&ref->off);
    uint32_t len = cprs_le32_get(&ref->len);
    const uint8_t *tab;
    CprsNameMemo *memo;
    uint64_t size;
    size_t bad;
    int ret;

    if (len == 0 || len > CPRS_MAX_NAME_LEN) {
        return cprs_reader_fail(r, len ? -E2BIG : -EBADMSG,
                                ref_off + offsetof(CprsWireStr, len), sec,
                                rec, len ? "7" : "6.1.1",
                                len ? "name longer than CPRS_MAX_NAME_LEN" :
                                "empty name");
    }
    if (st < 0) {
        return cprs_reader_fail(r, -EBADMSG, ref_off, sec, rec, "6.1",
                                "name reference but no string table");
    }
    ret = cprs_sec_data(r, (uint32_t)st, &tab);
    if (ret) {
        return ret;
    }
    size = r->sec[st].raw_size;
    /* spec 6.1.1: len bytes and a NUL, all inside the table. */
    if (!cprs_range_ok(size, off, (uint64_t)len + 1)) {
        return cprs_reader_fail(r, -EBADMSG, ref_off, sec, rec, "6.1.1",
                                "name reference outside the string table");
    }
    if (tab[off + len] != 0) {
        return cprs_reader_fail(r, -EBADMSG, ref_off, sec, rec, "6.1.1",
                                "name not NUL-terminated at its length");
    }
    /*
     * spec 6.1.2: printable ASCII only, so no NUL inside either.  A long
     * name is checked and hashed once per distinct reference, its
     * verdict kept, failure included (spec 8.7).
     */
    memo = len >= CPRS_NAME_MEMO_MIN ? name_memo_find(r, off, len) : NULL;
    if (memo) {
        bad = memo->bad ? 0 : len;
    } else {
        bad = cprs_name_bad_char((const char *)tab + off, len);
        CPRS_WORK_ADD(CPRS_WORK_SCAN_BYTES, len);
    }
    if (len >= CPRS_NAME_MEMO_MIN && !memo) {
        name_memo_put(r, off, len, bad < len ? 0 :
                      cprs_name_hash((const char *)tab + off, len),
                      bad < len);
        memo = name_memo_find(r, off, len);
    }
    if (bad < len) {
        return cprs_reader_fail(r, -EBADMSG, ref_off, sec, rec, "6.1.2",
                                "name has a byte outside printable ASCII");
    }
    /* Remembered for the next record (cprs_str_get()). */
    r->memo_off = off;
    r->memo_len = len;
    r->memo_hashed = memo != NULL;
    r->memo_hash = memo ? memo->hash : 0;
    *ret_str = (const char *)tab + off;
    *ret_len = len;
    return 0;
}
