/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * verify.c - the deep pass (spec 8.2), run by cprs_reader_verify().
 *
 * Where open.c proves the arena's skeleton, this proves its flesh: every
 * CRC, every record through the same accessors callers use, the links
 * between records, key uniqueness, index completeness, payload framing,
 * and that every byte no structure claims is zero, so that no bit of a
 * valid arena is free to change unnoticed.  Every loop is bounded by a
 * count that open.c already checked against the bytes holding it.
 */
#include <stdlib.h>

#ifdef CPRS_HAVE_ZSTD
#include <zstd.h>

/* zstd's largest window on 64-bit hosts (ZSTD_WINDOWLOG_MAX_64, which the
 * stable API does not export); on 32-bit hosts setting it fails safely. */
#define CPRS_ZSTD_WINDOWLOG_MAX 31
#endif

#include "cprs-reader.h"

typedef struct Verify {
    CprsReader *r;
    CprsDiag *diag;
} Verify;

/* Report the failure an accessor recorded in r->last. */
static int from_last(Verify *v, int ret)
{
    if (v->r->last.error == ret) {
        return cprs_diag_set(v->diag, ret, v->r->last.offset,
                             v->r->last.section, v->r->last.record,
                             v->r->last.clause, v->r->last.reason);
    }
    return cprs_diag_set(v->diag, ret, 0, -1, -1, "", cprs_strerror(ret));
}

static void clear_last(CprsReader *r)
{
    r->last = (CprsDiag) { .sz = sizeof(r->last), .section = -1,
                           .record = -1 };
}

/* First non-zero byte of p[0..len), or len. */
static uint64_t first_nonzero(const uint8_t *p, uint64_t len)
{
    uint64_t i;

    for (i = 0; i < len; i++) {
        if (p[i]) {
            return i;
        }
    }
    return len;
}

/* spec 4.7, 5.2: every section's CRC, and decompression of known ones. */
static int check_sections(Verify *v)
{
    CprsReader *r = v->r;
    const uint8_t *data;
    uint32_t saved = r->opts.flags;
    uint32_t i;
    int ret;

    for (i = 0; i < r->nsec; i++) {
        CprsSec *s = &r->sec[i];

        /* Checked here even if the reader was opened with NO_CRC. */
        if (cprs_crc32c(0, r->base + s->offset, s->stored_size) !=
            s->crc32c) {
            return cprs_diag_set(v->diag, -EBADMSG, s->entry_offset +
                                 offsetof(CprsWireSection, crc32c),
                                 (int32_t)i, -1, "4.7",
                                 "section CRC32C mismatch");
        }
        if (s->type >= CPRS_SECTION__MAX) {
            continue;   /* spec 4.9: skippable unknown section */
        }
        clear_last(r);
        r->opts.flags |= CPRS_READER_F_NO_CRC;  /* just computed it */
        ret = cprs_sec_data(r, i, &data);
        r->opts.flags = saved;
        if (ret) {
            return from_last(v, ret);
        }
    }
    return 0;
}

/* spec 4.11: bytes outside the header, directory and sections are zero. */
static int check_unclaimed(Verify *v)
{
    CprsReader *r = v->r;
    uint64_t start[CPRS_MAX_SECTIONS + 2], end[CPRS_MAX_SECTIONS + 2];
    uint64_t pos = 0, at, t;
    uint32_t n = 0, i, j;

    start[n] = 0;
    end[n++] = r->info.header_size;
    start[n] = r->info.dir_offset;
    end[n++] = r->dir_end;
    for (i = 0; i < r->nsec; i++) {
        start[n] = r->sec[i].offset;
        end[n++] = r->sec[i].offset + r->sec[i].stored_size;
    }
    /* Insertion sort: at most 66 ranges, already nearly in order. */
    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && start[j - 1] > start[j]; j--) {
            t = start[j];
            start[j] = start[j - 1];
            start[j - 1] = t;
            t = end[j];
            end[j] = end[j - 1];
            end[j - 1] = t;
        }
    }
    for (i = 0; i < n; i++) {
        if (start[i] > pos) {
            at = first_nonzero(r->base + pos, start[i] - pos);
            if (at < start[i] - pos) {
                return cprs_diag_set(v->diag, -EBADMSG, pos + at, -1, -1,
                                     "4.11", "non-zero byte outside every "
                                     "structure");
            }
        }
        if (end[i] > pos) {
            pos = end[i];
        }
    }
    at = first_nonzero(r->base + pos, r->size - pos);
    if (at < r->size - pos) {
        return cprs_diag_set(v->diag, -EBADMSG, pos + at, -1, -1, "4.11",
                             "non-zero byte outside every structure");
    }
    return 0;
}

/* spec 6.2: every fd record, and slots forming a permutation. */
static int check_fds(Verify *v)
{
    CprsReader *r = v->r;
    uint32_t n = cprs_rec_count(r, CPRS_SECTION_FDS), i;
    int sec = cprs_sec_find(r, CPRS_SECTION_FDS);
    uint8_t *seen;
    CprsFdInfo fi;
    int ret = 0;

    if (!n) {
        return 0;
    }
    seen = calloc(n, 1);        /* n <= section bytes / 64 */
    if (!seen) {
        return cprs_diag_set(v->diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    for (i = 0; i < n && !ret; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        clear_last(r);
        ret = cprs_reader_fd_get(r, i, &fi);
        if (ret) {
            ret = from_last(v, ret);
        } else if (seen[fi.slot]++) {
            ret = cprs_diag_set(v->diag, -EBADMSG, r->sec[sec].offset +
                                (uint64_t)i * r->sec[sec].record_size +
                                offsetof(CprsWireFd, slot), sec, i, "6.2.3",
                                "slot used by two fd records");
        }
    }
    free(seen);
    return ret;
}

/* spec 6.3, 6.4: blocks, their ranges in order, and their fit in the fd. */
static int check_ramblocks(Verify *v)
{
    CprsReader *r = v->r;
    uint32_t n = cprs_rec_count(r, CPRS_SECTION_RAMBLOCKS);
    uint32_t ranges = cprs_rec_count(r, CPRS_SECTION_GPA_RANGES);
    int sec = cprs_sec_find(r, CPRS_SECTION_RAMBLOCKS);
    uint64_t next = 0, rec_off, end;
    CprsRamBlockInfo bi;
    CprsGpaRange gr;
    CprsFdInfo fi;
    CprsLe32 le;
    uint32_t i, k, first;
    int ret;

    for (i = 0; i < n; i++) {
        bi = CPRS_OPTS(CprsRamBlockInfo);
        clear_last(r);
        ret = cprs_reader_ramblock_get(r, i, &bi);
        if (ret) {
            return from_last(v, ret);
        }
        rec_off = r->sec[sec].offset + (uint64_t)i * r->sec[sec].record_size;
        /* spec 6.3.7: blocks claim consecutive ranges, each exactly once. */
        memcpy(&le, r->sec[sec].data + (rec_off - r->sec[sec].offset) +
               offsetof(CprsWireRamBlock, range_first), sizeof(le));
        first = cprs_le32_get(&le);
        if (first != next) {
            return cprs_diag_set(v->diag, -EBADMSG, rec_off +
                                 offsetof(CprsWireRamBlock, range_first),
                                 sec, i, "6.3.7", "range_first does not "
                                 "follow the previous block's ranges");
        }
        next += bi.range_count;
        for (k = 0; k < bi.range_count; k++) {
            clear_last(r);
            ret = cprs_reader_gpa_range_get(r, i, k, &gr);
            if (ret) {
                return from_last(v, ret);
            }
        }
        /* spec 6.3.9: the used part fits in a regular backing file. */
        if (bi.fd_index != CPRS_NO_INDEX) {
            fi = CPRS_OPTS(CprsFdInfo);
            clear_last(r);
            ret = cprs_reader_fd_get(r, bi.fd_index, &fi);
            if (ret) {
                return from_last(v, ret);
            }
            end = bi.fd_offset + bi.used_length;  /* no overflow: 6.3.4 */
            if ((fi.flags & CPRS_FD_F_IDENTITY) &&
                (fi.st_mode & 0170000) == 0100000 && end > fi.size) {
                return cprs_diag_set(v->diag, -EBADMSG, rec_off +
                                     offsetof(CprsWireRamBlock, used_length),
                                     sec, i, "6.3.9", "block extends past "
                                     "the end of its fd");
            }
        }
    }
    if (next != ranges) {
        int gsec = cprs_sec_find(r, CPRS_SECTION_GPA_RANGES);

        return cprs_diag_set(v->diag, -EBADMSG, r->sec[gsec].offset + next *
                             r->sec[gsec].record_size, gsec, (int64_t)next,
                             "6.3.7", "GPA range claimed by no RAM block");
    }
    return 0;
}

static int check_vfio(Verify *v)
{
    CprsReader *r = v->r;
    uint32_t n = cprs_rec_count(r, CPRS_SECTION_VFIO_DEVICES), i;
    CprsVfioDeviceInfo vi;
    int ret;

    for (i = 0; i < n; i++) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        clear_last(r);
        ret = cprs_reader_vfio_get(r, i, &vi);
        if (ret) {
            return from_last(v, ret);
        }
    }
    return 0;
}

/*
 * spec 5.3: decompress a frame into a small window, counting bytes, so that
 * verifying a 1 GiB payload does not need 1 GiB of memory.
 */
static int check_frame(const uint8_t *src, uint64_t src_size,
                       uint64_t raw_size, const char **ret_reason)
{
#ifdef CPRS_HAVE_ZSTD
    ZSTD_DCtx *dctx;
    ZSTD_inBuffer in = { src, src_size, 0 };
    uint8_t *window;
    size_t win = ZSTD_DStreamOutSize(), rc = 1, frame;
    unsigned long long content, total = 0;
    int ret = 0;

    if (raw_size == 0 || cprs_zstd_is_skippable(src, src_size)) {
        *ret_reason = "zstd data is a skippable frame or has no content";
        return -EBADMSG;
    }
    frame = ZSTD_findFrameCompressedSize(src, src_size);
    if (ZSTD_isError(frame) || frame != src_size) {
        *ret_reason = "zstd data is not exactly one frame";
        return -EBADMSG;
    }
    content = ZSTD_getFrameContentSize(src, src_size);
    if (content == ZSTD_CONTENTSIZE_UNKNOWN ||
        content == ZSTD_CONTENTSIZE_ERROR || content != raw_size) {
        *ret_reason = "zstd frame content size differs from raw_size";
        return -EBADMSG;
    }
    dctx = ZSTD_createDCtx();
    window = malloc(win);
    /*
     * Accept every window the one-shot decoder of the accessors accepts,
     * so that verify and access agree (spec 5.3 rule 4); the history the
     * decoder keeps is at most min(window, raw_size), and raw_size passed
     * its limit already.
     */
    if (dctx && ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax,
                                                    CPRS_ZSTD_WINDOWLOG_MAX))) {
        ZSTD_freeDCtx(dctx);
        dctx = NULL;
    }
    if (!dctx || !window) {
        ZSTD_freeDCtx(dctx);
        free(window);
        *ret_reason = "out of memory";
        return -ENOMEM;
    }
    while (rc != 0) {
        ZSTD_outBuffer out = { window, win, 0 };
        size_t before = in.pos;

        rc = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(rc)) {
            ret = -EBADMSG;
            break;
        }
        total += out.pos;
        if (total > raw_size) {
            ret = -EBADMSG;
            break;
        }
        if (rc != 0 && in.pos == before && out.pos == 0) {
            ret = -EBADMSG;     /* truncated frame: no progress possible */
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    free(window);
    if (ret || total != raw_size || in.pos != src_size) {
        *ret_reason = "zstd frame does not decompress to raw_size bytes";
        return -EBADMSG;
    }
    return 0;
#else
    (void)src;
    (void)src_size;
    (void)raw_size;
    *ret_reason = "zstd data, built without zstd";
    return -EPROTONOSUPPORT;
#endif
}

/* spec 6.6, 6.7: payload records, BLOB placement, frames, zero gaps. */
static int check_devstate(Verify *v)
{
    CprsReader *r = v->r;
    uint32_t n = cprs_rec_count(r, CPRS_SECTION_DEVSTATE), i;
    int sec = cprs_sec_find(r, CPRS_SECTION_DEVSTATE);
    int bsec = cprs_sec_find(r, CPRS_SECTION_BLOB);
    static const uint8_t no_blob[1];
    const uint8_t *blob = bsec >= 0 ? r->sec[bsec].data : no_blob;
    uint64_t blob_size = bsec >= 0 ? r->sec[bsec].raw_size : 0;
    uint64_t pos = 0, data_off, rec_off, at;
    const char *reason;
    CprsDevStateInfo di;
    CprsLe64 le;
    int ret;

    for (i = 0; i < n; i++) {
        di = CPRS_OPTS(CprsDevStateInfo);
        clear_last(r);
        ret = cprs_reader_devstate_get(r, i, &di);
        if (ret) {
            return from_last(v, ret);
        }
        rec_off = (uint64_t)i * r->sec[sec].record_size;
        memcpy(&le, r->sec[sec].data + rec_off +
               offsetof(CprsWireDevState, data_off), sizeof(le));
        data_off = cprs_le64_get(&le);
        rec_off += r->sec[sec].offset;
        /* spec 6.6.5: payloads move strictly forward through the BLOB. */
        if (data_off < pos) {
            return cprs_diag_set(v->diag, -EBADMSG, rec_off +
                                 offsetof(CprsWireDevState, data_off), sec,
                                 i, "6.6.5", "payload overlaps or precedes "
                                 "the previous one");
        }
        /* spec 6.7: padding between payloads is zero. */
        at = first_nonzero(blob + pos, data_off - pos);
        if (at < data_off - pos) {
            return cprs_diag_set(v->diag, -EBADMSG, r->sec[bsec].offset +
                                 pos + at, bsec, -1, "6.7",
                                 "non-zero byte between payloads");
        }
        if (di.flags & CPRS_DEVSTATE_F_ZSTD) {
            ret = check_frame(blob + data_off, di.stored_size, di.raw_size,
                              &reason);
            if (ret) {
                return cprs_diag_set(v->diag, ret, r->sec[bsec].offset +
                                     data_off, sec, i, "5.3", reason);
            }
        }
        pos = data_off + di.stored_size;
    }
    if (bsec >= 0) {
        at = first_nonzero(blob + pos, blob_size - pos);
        if (at < blob_size - pos) {
            return cprs_diag_set(v->diag, -EBADMSG, r->sec[bsec].offset +
                                 pos + at, bsec, -1, "6.7",
                                 "non-zero byte after the last payload");
        }
    }
    return 0;
}

typedef struct KeyRef {
    const char *name;
    uint32_t len;
    uint32_t id;
    uint32_t index;
} KeyRef;

static int keyref_cmp(const void *a, const void *b)
{
    const KeyRef *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);

    if (c) {
        return c;
    }
    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    if (x->id != y->id) {
        return x->id < y->id ? -1 : 1;
    }
    return x->index < y->index ? -1 : x->index > y->index;
}

static const char *dup_clause(uint32_t type)
{
    switch (type) {
    case CPRS_SECTION_FDS:
        return "6.2.10";
    case CPRS_SECTION_RAMBLOCKS:
        return "6.3.8";
    case CPRS_SECTION_VFIO_DEVICES:
        return "6.5.4";
    default:
        return "6.6.7";
    }
}

/* Without an index: sort the keys, O(n log n) whatever the input. */
static int check_unique_sorted(Verify *v, uint32_t type, uint32_t n)
{
    CprsReader *r = v->r;
    int sec = cprs_sec_find(r, type);
    KeyRef *keys;
    uint32_t i;
    int ret = 0;

    keys = calloc(n, sizeof(*keys));    /* n <= section bytes / 24 */
    if (!keys) {
        return cprs_diag_set(v->diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    for (i = 0; i < n && !ret; i++) {
        clear_last(r);
        ret = cprs_rec_key(r, type, i, &keys[i].name, &keys[i].len,
                           &keys[i].id);
        keys[i].index = i;
        if (ret) {
            ret = from_last(v, ret);
        }
    }
    if (!ret) {
        qsort(keys, n, sizeof(*keys), keyref_cmp);
        for (i = 1; i < n; i++) {
            if (keys[i].len == keys[i - 1].len &&
                keys[i].id == keys[i - 1].id &&
                !memcmp(keys[i].name, keys[i - 1].name, keys[i].len)) {
                ret = cprs_diag_set(v->diag, -EBADMSG, r->sec[sec].offset +
                                    (uint64_t)keys[i].index *
                                    r->sec[sec].record_size, sec,
                                    keys[i].index, dup_clause(type),
                                    "duplicate key");
                break;
            }
        }
    }
    free(keys);
    return ret;
}

/* A record's key, computed ahead of its probe walk. */
typedef struct Ahead {
    const char *name;
    uint32_t len;
    uint32_t id;
    uint32_t hash;
} Ahead;

/* How far ahead the walk prefetches home slots: hides a cache miss. */
#define PREFETCH_AHEAD 8u

/* Walk from @a's home slot to record @i's slot (see check_index()). */
static int index_walk(Verify *v, uint32_t type, int isec, int sec,
                      uint32_t i, const Ahead *a)
{
    CprsReader *r = v->r;
    const CprsSec *s = &r->sec[isec];
    uint32_t mask = s->record_count - 1, pos = a->hash & mask;
    uint32_t probe, rec, h, klen, kid, dup;
    const CprsWireIndexSlot *slot;
    const char *kname;
    uint64_t slot_off;
    int ret;

    for (probe = 0; ; probe++) {
        slot_off = s->offset + (uint64_t)pos * s->record_size;
        slot = (const CprsWireIndexSlot *)(s->data + (slot_off - s->offset));
        rec = cprs_le32_get(&slot->record);
        if (probe >= CPRS_INDEX_MAX_PROBE || probe > mask || rec == 0) {
            return cprs_diag_set(v->diag, -EBADMSG, s->offset, isec, i,
                                 "6.8.3", "record not reachable within the "
                                 "probe limit");
        }
        h = cprs_le32_get(&slot->hash);
        if (rec == i + 1) {
            if (h != a->hash) {
                return cprs_diag_set(v->diag, -EBADMSG, slot_off + 4, isec,
                                     pos, "6.8.1", "index hash differs from "
                                     "the record's key hash");
            }
            return 0;
        }
        if (h == a->hash) {
            /* The same hash earlier on the path: the same key? */
            clear_last(r);
            ret = cprs_rec_key(r, type, rec - 1, &kname, &klen, &kid);
            if (ret) {
                return from_last(v, ret);
            }
            if (klen == a->len && kid == a->id &&
                !memcmp(kname, a->name, klen)) {
                dup = i > rec - 1 ? i : rec - 1;
                return cprs_diag_set(v->diag, -EBADMSG, r->sec[sec].offset +
                                     (uint64_t)dup * r->sec[sec].record_size,
                                     sec, dup, dup_clause(type),
                                     "duplicate key");
            }
        }
        pos = (pos + 1) & mask;
    }
}

/*
 * spec 6.8: the index holds each record exactly once, under the hash of
 * its key, reachable from its home slot within the probe limit, with no
 * equal key before it.  One sequential sweep over the slots, then one
 * probe walk per record in record order, its home slot prefetched a few
 * records ahead; keys are compared only when stored hashes are equal.
 */
static int check_index(Verify *v, uint32_t type, uint32_t n)
{
    CprsReader *r = v->r;
    int isec = r->index_of[type], sec = cprs_sec_find(r, type);
    const CprsSec *s = &r->sec[isec];
    const uint8_t *slots = s->data;
    uint32_t mask = s->record_count - 1;
    uint32_t i, j, rec, h, used = 0;
    Ahead ring[PREFETCH_AHEAD];
    uint64_t slot_off;
    uint8_t *seen;
    int ret = 0;

#define SLOT(p) ((const CprsWireIndexSlot *)(slots + \
                                             (uint64_t)(p) * s->record_size))

    seen = calloc(n / 8 + 1, 1);
    if (!seen) {
        return cprs_diag_set(v->diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    for (i = 0; i < s->record_count && !ret; i++) {
        slot_off = s->offset + (uint64_t)i * s->record_size;
        rec = cprs_le32_get(&SLOT(i)->record);
        h = cprs_le32_get(&SLOT(i)->hash);
        if (rec == 0) {
            if (h) {
                ret = cprs_diag_set(v->diag, -EBADMSG, slot_off + 4, isec, i,
                                    "6.8.2", "empty index slot with a hash");
            }
        } else if (rec > n) {
            ret = cprs_diag_set(v->diag, -EBADMSG, slot_off, isec, i,
                                "6.8.2", "index slot names no record");
        } else if (seen[(rec - 1) / 8] & (1u << ((rec - 1) % 8))) {
            ret = cprs_diag_set(v->diag, -EBADMSG, slot_off, isec, i,
                                "6.8.4", "record in the index twice");
        } else {
            seen[(rec - 1) / 8] |= (uint8_t)(1u << ((rec - 1) % 8));
            used++;
        }
    }
    free(seen);
    if (!ret && used != n) {
        ret = cprs_diag_set(v->diag, -EBADMSG, s->offset, isec, -1, "6.8.4",
                            "record missing from the index");
    }

    for (j = 0; j < n + PREFETCH_AHEAD && !ret; j++) {
        Ahead *a;

        if (j >= PREFETCH_AHEAD) {
            /* The walk of record i, whose home slot is in cache by now. */
            i = j - PREFETCH_AHEAD;
            a = &ring[i % PREFETCH_AHEAD];
            ret = index_walk(v, type, isec, sec, i, a);
        }
        if (!ret && j < n) {
            /* The key of record j, and a prefetch of its home slot. */
            a = &ring[j % PREFETCH_AHEAD];
            clear_last(r);
            ret = cprs_rec_key(r, type, j, &a->name, &a->len, &a->id);
            if (ret) {
                ret = from_last(v, ret);
                break;
            }
            a->hash = cprs_key_hash(a->name, a->len, a->id);
            __builtin_prefetch(SLOT(a->hash & mask));
        }
    }
#undef SLOT
    return ret;
}

static int check_keys(Verify *v)
{
    static const uint32_t types[] = {
        CPRS_SECTION_FDS, CPRS_SECTION_RAMBLOCKS, CPRS_SECTION_VFIO_DEVICES,
        CPRS_SECTION_DEVSTATE,
    };
    uint32_t t, n;
    int ret;

    for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        n = cprs_rec_count(v->r, types[t]);
        if (v->r->index_of[types[t]] >= 0) {
            ret = check_index(v, types[t], n);
        } else if (n > 1) {
            ret = check_unique_sorted(v, types[t], n);
        } else {
            ret = 0;
        }
        if (ret) {
            return ret;
        }
    }
    return 0;
}

int cprs_reader_verify(CprsReader *r, CprsDiag *diag)
{
    Verify v = { .r = r, .diag = diag };
    int (*const passes[])(Verify *) = {
        check_sections, check_unclaimed, check_fds, check_ramblocks,
        check_vfio, check_devstate, check_keys,
    };
    size_t i;
    int ret;

    if (!r) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "no reader");
    }
    for (i = 0; i < sizeof(passes) / sizeof(passes[0]); i++) {
        ret = passes[i](&v);
        if (ret) {
            return ret;
        }
    }
    return 0;
}
