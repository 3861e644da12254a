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

/* What a lookup table's comparison needs: the records and the names. */
typedef struct KeyTabCtx {
    uint32_t type;
    const uint8_t *recs;        /* the section's raw bytes */
    uint32_t record_size;
    const char *strtab;
} KeyTabCtx;

/*
 * Is record @val's key @key?  Its name reference passed its checks when
 * the record entered the table.  The id and the length first; a name
 * read only when both agree.
 */
static bool keytab_eq(const void *opaque, uint32_t val,
                      const CprsTableKey *key)
{
    const KeyTabCtx *c = opaque;
    const CprsWireStr *ref;
    uint32_t id, len;

    ref = cprs_wire_key(c->type, c->recs + (uint64_t)val * c->record_size,
                        &id);
    len = cprs_le32_get(&ref->len);
    return id == key->id && len == key->len &&
           (c->strtab + cprs_le32_get(&ref->off) == key->name ||
            !memcmp(c->strtab + cprs_le32_get(&ref->off), key->name, len));
}

static int keytab_ctx(CprsReader *r, uint32_t type, KeyTabCtx *c)
{
    int sec = cprs_sec_find(r, type);
    int st = cprs_sec_find(r, CPRS_SECTION_STRTAB);
    int ret;

    c->type = type;
    c->record_size = r->sec[sec].record_size;
    ret = cprs_sec_data(r, (uint32_t)sec, &c->recs);
    /* Every record has a name, so a table of any record needs STRTAB:
     * its bytes were loaded by the name checks. */
    c->strtab = st >= 0 ? (const char *)r->sec[st].data : NULL;
    return ret;
}

/*
 * The lookup table of a section of @type without an index (spec 6.8),
 * built on its first lookup in O(r): every record's key resolved once
 * (its name checked, 6.1), the first record of each key entered.  The
 * table is charged to the budget before it is allocated; when the
 * budget does not allow it, lookups scan the records instead (-1).  A
 * record whose key fails fails every lookup of the section with its
 * diagnostic, kept (spec 8.7).  Returns 1 (table), 0 (scan) or an error.
 */
static int keytab_get(CprsReader *r, uint32_t type)
{
    CprsTable *t = &r->keytab[type];
    CprsRule *fail = &r->keytab_fail[type];
    uint32_t n = cprs_rec_count(r, type), i, klen, kid, h;
    uint64_t held;
    CprsTableKey key;
    const char *kname;
    KeyTabCtx c;
    CprsDiag keep;
    int ret;

    switch (r->keytab_state[type]) {
    case 1:
        return 1;
    case -1:
        return 0;
    case -2:
        r->last = fail->diag;
        return fail->err;
    }
    keep = r->last;
    if (n < 2 || cprs_budget_check(r, r->kept, (uint64_t)(n < 4 ? 4 : n) *
                                   CPRS_KEYTAB_COST, 0, -1, -1)) {
        r->last = keep;     /* not the lookup's failure: it scans */
        r->keytab_state[type] = n < 2 ? 0 : -1;
        return 0;
    }
    cprs_table_init(t);
    ret = cprs_table_reserve(t, n);
    if (ret) {
        cprs_table_free(t);
        return ret == -ENOMEM ? -ENOMEM : 0;
    }
    held = ((uint64_t)t->mask + 1) * sizeof(*t->slot);
    ret = keytab_ctx(r, type, &c);
    for (i = 0; i < n && !ret; i++) {
        ret = cprs_rec_key(r, type, i, &kname, &klen, &kid);
        if (ret) {
            break;
        }
        key = (CprsTableKey) { kname, klen, kid };
        h = cprs_table_hash(t, kname, klen, kid);
        /* A repeated key (invalid, 6.2.10...): the first one is found. */
        if (cprs_table_find(t, h, keytab_eq, &c, &key) < 0) {
            cprs_table_put(t, h, i);
        }
    }
    if (ret) {
        cprs_table_free(t);
        if (ret == -ENOMEM) {
            return ret;
        }
        fail->done = true;
        fail->err = ret;
        fail->diag = r->last;
        r->keytab_state[type] = -2;
        return ret;
    }
    r->kept += held;
    r->keytab_state[type] = 1;
    return 1;
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
        /* No index: a table of our own, or a scan; either returns the
         * first match like QEMU does. */
        ret = keytab_get(r, type);
        if (ret < 0) {
            return ret;
        }
        if (ret) {
            KeyTabCtx c;
            CprsTableKey key = { name, len, id };
            int64_t found;

            ret = keytab_ctx(r, type, &c);
            if (ret) {
                return ret;
            }
            found = cprs_table_find(&r->keytab[type],
                                    cprs_table_hash(&r->keytab[type], name,
                                                    len, id),
                                    keytab_eq, &c, &key);
            if (found < 0) {
                return -ENOENT;
            }
            *ret_index = (uint32_t)found;
            return 0;
        }
        for (i = 0; i < count; i++) {
            CPRS_WORK_ADD(CPRS_WORK_PROBES, 1);
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
