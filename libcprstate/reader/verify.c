/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * verify.c - the deep pass (spec 8.2), run by cprs_reader_verify().
 *
 * Where open.c proves the arena's skeleton, this proves its flesh: every
 * CRC, every record through the same decoders the accessors use, the
 * links between records, key uniqueness, index completeness, payload
 * framing, and that every byte no structure claims is zero, so that no
 * bit of a valid arena is free to change unnoticed.  Every loop is bounded
 * by a count that open.c already checked against the bytes holding it.
 *
 * Bounded work and memory (spec 7.1, 8.2):
 *  - the records of FDS, VFIO_DEVICES and DEVSTATE are checked as they
 *    stream by in pass 1: in place, a cache-sized chunk at a time right
 *    after its CRC (so that the bytes are read from memory once), or, in
 *    a compressed section, window by window as they decompress (so that
 *    the section is never held whole).  Their verdicts are reported in
 *    the pass the spec gives them (3, 5, 6): nothing but the order of
 *    work changes;
 *  - only the sections looked up at random are held whole: STRTAB, BLOB,
 *    INDEX, RAMBLOCKS and GPA_RANGES;
 *  - what the later passes need of the streamed records is kept compactly:
 *    each record's key hash, each fd's size limit, the used slots, and
 *    the keys of records that are not in place (a compressed section's;
 *    the others are read again in the arena);
 *  - all of it is charged to a working set of its own against the
 *    reader's memory budget before it is allocated, whatever the
 *    accessors did before, so that the verdict does not depend on them.
 */
#include <stdlib.h>

#include "cprs-reader.h"

/*
 * A record's key: its name's offset in STRTAB (held during verify), its
 * length and its id; the record's index, for the sort.  The key's hash
 * (spec 6.8.1) is in Verify.khash.
 */
typedef struct KeyRef {
    uint32_t off;
    uint32_t len;
    uint32_t id;
    uint32_t index;
} KeyRef;

typedef struct Verify Verify;

/*
 * Pass 7 for an index, done early: as the INDEX section's CRC passes over
 * its slots (pass 1), every slot is checked from the slot's side, against
 * the keys its streamed records left.  A slot at position p holding record
 * j with stored hash h is right when: j is a record, h is j's key hash, p
 * lies d < CPRS_INDEX_MAX_PROBE positions after h's home with no empty
 * slot in between, and no slot in between holds an equal key.  That is
 * exactly what the record-order walk of pass 7 asks of record j (spec
 * 6.8.3: the walk from home reaches p, meeting no equal key first), so
 * both accept the same indexes; the walk only runs, to report the first
 * violation in the spec's order, when the sweep fails.  A record in two
 * slots needs no test of its own: both are reachable from one home, so
 * the later one meets the earlier one's key on its way; with that, n full
 * slots mean every record once (spec 6.8.4).  A slot whose path wraps past
 * the end of the table (p < d) is checked at the end, when the run of full
 * slots there is known.
 */
typedef struct IndexSweep {
    uint32_t type;
    uint32_t n;             /* records */
    uint32_t pos;           /* next slot */
    uint32_t after_empty;   /* position after the last empty slot before
                             * pos, or 0: the full slots just before pos
                             * are those from there */
    uint32_t used;
    uint32_t n_wrapped;
    uint32_t wrapped[CPRS_INDEX_MAX_PROBE];
    const uint8_t *slots;
    bool failed;
} IndexSweep;

/* Checks one record; the failure goes to r->last (or is the stream's). */
typedef int (*RecCheck)(Verify *v, const uint8_t *rec, uint32_t i,
                        uint64_t off);

/*
 * A record section's records, checked in order as they stream by; the
 * first failure is kept with its diagnostic until its pass reports it.
 */
typedef struct RecStream {
    Verify *v;
    int sec;
    RecCheck check;
    uint32_t next;          /* index of the next record */
    uint32_t have;          /* bytes of a record split between pieces */
    int ret;
    CprsDiag diag;
    union {
        uint8_t b[CPRS_MAX_RECORD_SIZE];
        uint64_t align;
    } carry;
} RecStream;

struct Verify {
    CprsReader *r;
    CprsDiag *diag;
    uint64_t used;                      /* working set (spec 7.1) */
    bool crc_done[CPRS_MAX_SECTIONS];
    int8_t pinned[CPRS_MAX_SECTIONS];   /* 0 not yet, 1 held, -1 failed */
    int pin_ret[CPRS_MAX_SECTIONS];
    CprsDiag pin_diag[CPRS_MAX_SECTIONS];
    uint8_t *own[CPRS_MAX_SECTIONS];    /* decoded for verify alone */
    KeyRef *keys[CPRS_SECTION__MAX];    /* per indexable type, when its
                                         * records are not in place */
    uint32_t *khash[CPRS_SECTION__MAX]; /* their hashes: small, for the
                                         * index sweep's random reads */
    uint64_t *fd_limit;                 /* bytes a block may use (6.3.9) */
    uint8_t *slot_seen;                 /* fd slots used (6.2.3) */
    const char *strtab;                 /* STRTAB's raw bytes, once held */
    uint64_t blob_pos;                  /* end of the last payload */
    RecStream fds, vfio, ds;
    IndexSweep sweep;                   /* the INDEX being swept */
    bool no_sweep;                      /* pass 7 the long way only */
    bool index_ok[CPRS_SECTION__MAX];   /* pass 7 already holds for it */
};

/* Report the failure an accessor (or fail()) recorded in r->last. */
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

/* A failure found here: in r->last (a stream may keep it), and reported. */
static int fail(Verify *v, int error, uint64_t offset, int32_t section,
                int64_t record, const char *clause, const char *reason)
{
    cprs_reader_fail(v->r, error, offset, section, record, clause, reason);
    return from_last(v, error);
}

/* First non-zero byte of p[0..len), or len. */
static uint64_t first_nonzero(const uint8_t *p, uint64_t len)
{
    uint64_t i = 0, w;

    CPRS_WORK_ADD(CPRS_WORK_SCAN_BYTES, len);
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        if (w) {
            break;
        }
    }
    for (; i < len; i++) {
        if (p[i]) {
            return i;
        }
    }
    return len;
}

/* ---- The working set --------------------------------------------------- */

/* Charge @n bytes to the working set, before allocating them. */
static int take(Verify *v, uint64_t n, uint64_t offset, int32_t sec)
{
    int ret;

    clear_last(v->r);
    ret = cprs_budget_check(v->r, v->used, n, offset, sec, -1);
    if (ret) {
        return from_last(v, ret);
    }
    v->used += n;
    return 0;
}

/*
 * A scratch array of @n elements of @size bytes, charged; zeroed when
 * @zero (the others are written before they are read).
 */
static int scratch(Verify *v, void *ret_p, uint64_t n, size_t size,
                   bool zero, int32_t sec)
{
    void *p;
    int ret;

    ret = take(v, n * size, v->r->sec[sec].offset, sec);
    if (ret) {
        return ret;
    }
    p = zero ? cprs_alloc_large_zero((size_t)(n * size)) :
        cprs_alloc_large((size_t)(n * size));
    if (!p) {
        return fail(v, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    CPRS_WORK_ALLOC(n * size);
    memcpy(ret_p, &p, sizeof(p));
    return 0;
}

/*
 * What pass 7 needs of the @n records of @type (section @sec): their key
 * hashes, and their keys.  Records stored uncompressed stay where they
 * are in the arena and their keys are read there; those of a compressed
 * section pass by window by window, so their keys are kept.
 */
static int key_scratch(Verify *v, uint32_t type, uint32_t n, int32_t sec)
{
    int ret = 0;

    if (v->r->sec[sec].flags & CPRS_SECTION_F_ZSTD) {
        ret = scratch(v, &v->keys[type], n, sizeof(KeyRef), false, sec);
    }
    return ret ? ret : scratch(v, &v->khash[type], n, sizeof(uint32_t),
                               false, sec);
}

/* The key of record @j of @type, kept or read in place. */
static inline KeyRef key_of(const Verify *v, uint32_t type, uint32_t j)
{
    const CprsSec *s = &v->r->sec[cprs_sec_find(v->r, type)];
    const CprsWireStr *ref;
    const uint8_t *rec;
    uint32_t id;

    if (v->keys[type]) {
        return v->keys[type][j];
    }
    /* In the arena, at the section's record size (a newer minor's may
     * be larger than ours). */
    rec = v->r->base + s->offset + (uint64_t)j * s->record_size;
    ref = cprs_wire_key(type, rec, &id);
    return (KeyRef) { cprs_le32_get(&ref->off), cprs_le32_get(&ref->len), id,
                      j };
}

/* ---- Sections ------------------------------------------------------------ */

/*
 * spec 4.7: section @i's CRC, once, whoever needs it first; its bytes go
 * to @sink (when not NULL) a chunk at a time as the CRC passes them.
 */
static int crc_check(Verify *v, uint32_t i, CprsFrameSink sink,
                     void *opaque);
static bool index_sweep_begin(Verify *v, uint32_t i, const uint8_t *slots);
static void index_feed(void *opaque, const uint8_t *p, size_t n);
static void index_sweep_end(Verify *v, uint32_t i);

/*
 * Hold section @i's raw bytes whole for the rest of the pass (spec 4.7,
 * 5.3): in place, or decompressed, charged to the working set whether
 * the accessors already hold it or not.  The outcome is kept, so that a
 * section needed early (STRTAB by the fd records) and met again in
 * directory order is paid for once.
 */
static int pin(Verify *v, uint32_t i)
{
    CprsReader *r = v->r;
    CprsSec *s = &r->sec[i];
    const uint8_t *data;
    uint64_t cost;
    bool sweep;
    int ret;

    if (v->pinned[i]) {
        if (v->pinned[i] > 0) {
            return 0;
        }
        v->r->last = v->pin_diag[i];
        return from_last(v, v->pin_ret[i]);
    }
    /* An INDEX in place is swept as its CRC passes (see IndexSweep). */
    sweep = !v->crc_done[i] && !(s->flags & CPRS_SECTION_F_ZSTD) &&
            !v->no_sweep && index_sweep_begin(v, i, r->base + s->offset);
    ret = crc_check(v, i, sweep ? index_feed : NULL, v);
    if (sweep) {
        index_sweep_end(v, i);
    }
    if (!ret) {
        clear_last(r);      /* a failure keeps its diagnostic */
    }
    if (!ret && (s->flags & CPRS_SECTION_F_ZSTD)) {
        ret = cprs_sec_frame(r, i, &cost);
        if (!ret) {
            ret = cprs_budget_check(r, v->used, s->raw_size + cost,
                                    s->offset, (int32_t)i, -1);
        }
        if (!ret && !s->data) {
            /* Kept for the accessors if their share allows, else ours. */
            ret = cprs_sec_load(r, i, true, &data);
            if (ret == -E2BIG) {
                clear_last(r);
                ret = cprs_sec_decode_own(r, i, &v->own[i]);
                if (!ret) {
                    cprs_sec_lend(r, i, v->own[i]);
                }
            }
        }
        if (!ret) {
            v->used += s->raw_size;
        }
    } else if (!ret) {
        ret = cprs_sec_load(r, i, true, &data);
    }
    if (ret) {
        v->pinned[i] = -1;
        v->pin_ret[i] = ret;
        v->pin_diag[i] = r->last;
        return from_last(v, ret);
    }
    v->pinned[i] = 1;
    /* A compressed INDEX is swept once it is whole. */
    if ((s->flags & CPRS_SECTION_F_ZSTD) && !v->no_sweep &&
        index_sweep_begin(v, i, s->data)) {
        index_feed(v, s->data, (size_t)s->raw_size);
        index_sweep_end(v, i);
    }
    return 0;
}

/* pin() the section of @type if there is one. */
static int pin_type(Verify *v, uint32_t type)
{
    int i = cprs_sec_find(v->r, type);

    return i < 0 ? 0 : pin(v, (uint32_t)i);
}

static int check_fd(Verify *v, const uint8_t *p, uint32_t i, uint64_t off);
static int check_vfio_rec(Verify *v, const uint8_t *p, uint32_t i,
                          uint64_t off);
static int check_ds(Verify *v, const uint8_t *p, uint32_t i, uint64_t off);

/* The record stream of section @i, or NULL when it is held whole. */
static RecStream *stream_of(Verify *v, uint32_t i)
{
    switch (v->r->sec[i].type) {
    case CPRS_SECTION_FDS:
        v->fds.check = check_fd;
        return &v->fds;
    case CPRS_SECTION_VFIO_DEVICES:
        v->vfio.check = check_vfio_rec;
        return &v->vfio;
    case CPRS_SECTION_DEVSTATE:
        v->ds.check = check_ds;
        return &v->ds;
    default:
        return NULL;
    }
}

/*
 * Feed @n bytes of raw records to @st (a CprsFrameSink): whole records in
 * place, a record split between two pieces through the carry buffer.
 * After the first failure the rest is only counted.
 */
static void rec_feed(void *opaque, const uint8_t *p, size_t n)
{
    RecStream *st = opaque;
    Verify *v = st->v;
    const CprsSec *s = &v->r->sec[st->sec];
    const uint32_t rs = s->record_size;
    const RecCheck check = st->check;
    uint32_t next = st->next, k;
    uint64_t off = s->offset + (uint64_t)next * rs;
    bool aligned = !((uintptr_t)p & (CPRS_ALIGN - 1));
    int ret = st->ret;

    while (n && !ret) {
        if (st->have || n < rs || !aligned) {
            /* A record split between pieces, or misaligned: copied. */
            k = rs - st->have < n ? rs - st->have : (uint32_t)n;
            memcpy(st->carry.b + st->have, p, k);
            CPRS_WORK_ADD(CPRS_WORK_COPY_BYTES, k);
            st->have += k;
            p += k;
            n -= k;
            aligned = !((uintptr_t)p & (CPRS_ALIGN - 1));
            if (st->have < rs) {
                break;
            }
            st->have = 0;
            ret = check(v, st->carry.b, next++, off);
            off += rs;
            continue;
        }
        /* Whole records in place: the common case, kept tight. */
        do {
            ret = check(v, p, next++, off);
            off += rs;
            p += rs;
            n -= rs;
        } while (!ret && n >= rs);
    }
    st->next = next;
    if (ret && !st->ret) {
        st->ret = ret;
        st->diag = v->r->last;     /* the first failure's, kept */
    }
}

/*
 * In-place records are checked in chunks right after their CRC, while
 * the chunk is still in the L2 cache: 192 KiB, two rounds of the three
 * interleaved 32 KiB streams of the hardware CRC (base/crc32c.c), which
 * a smaller chunk would fall back from.
 */
#define CHUNK (384u << 10)

static int crc_check(Verify *v, uint32_t i, CprsFrameSink sink,
                     void *opaque)
{
    CprsReader *r = v->r;
    const CprsSec *s = &r->sec[i];
    const uint8_t *p = r->base + s->offset;
    uint64_t done, k, step;
    uint32_t crc = 0;

    if (v->crc_done[i]) {
        return 0;
    }
    if (!sink) {
        crc = cprs_crc32c(0, p, (size_t)s->stored_size);
    } else {
        /* A chunk of whole records, still in cache when checked. */
        step = s->record_size ? CHUNK - CHUNK % s->record_size : CHUNK;
        for (done = 0; done < s->stored_size; done += k) {
            k = s->stored_size - done < step ? s->stored_size - done : step;
            crc = cprs_crc32c(crc, p + done, (size_t)k);
            sink(opaque, p + done, (size_t)k);
        }
    }
    /* Checked here even if the reader was opened with NO_CRC. */
    if (crc != s->crc32c) {
        return fail(v, -EBADMSG, s->entry_offset +
                    offsetof(CprsWireSection, crc32c), (int32_t)i, -1, "4.7",
                    "section CRC32C mismatch");
    }
    v->crc_done[i] = true;
    return 0;
}

/*
 * Prepare @st for the records of section @i.  The sections they need are
 * held first; if one of them fails, the records are not checked, and the
 * failure is reported where that section stands in directory order (a
 * pass 1 verdict, before any of the records').  Our own scratch, on the
 * other hand, is reported at once.
 */
static int stream_begin(Verify *v, uint32_t i, RecStream *st)
{
    CprsReader *r = v->r;
    uint32_t n = r->sec[i].record_count;
    int ret;

    st->v = v;
    st->sec = (int)i;
    /* Every record names itself in STRTAB; payloads live in BLOB. */
    ret = pin_type(v, CPRS_SECTION_STRTAB);
    if (!ret && st == &v->ds) {
        ret = pin_type(v, CPRS_SECTION_BLOB);
    }
    if (ret) {
        st->ret = ret;
        st->diag = r->last;
        return 0;
    }
    if (n) {
        ret = key_scratch(v, r->sec[i].type, n, (int32_t)i);
    }
    if (!ret && st == &v->fds && n) {
        ret = scratch(v, &v->slot_seen, n, 1, true, (int32_t)i);
        if (!ret && cprs_rec_count(r, CPRS_SECTION_RAMBLOCKS)) {
            ret = scratch(v, &v->fd_limit, n, sizeof(uint64_t), false,
                          (int32_t)i);
        }
    }
    return ret;
}

/* The section's raw bytes are the slots; stored hash and record of @p. */
static inline uint32_t slot_rec(const IndexSweep *w, uint32_t p)
{
    return cprs_le32_get(&((const CprsWireIndexSlot *)
                           (w->slots + (uint64_t)p * CPRS_INDEX_SLOT_V1_SIZE))
                         ->record);
}

static inline uint32_t slot_hash(const IndexSweep *w, uint32_t p)
{
    return cprs_le32_get(&((const CprsWireIndexSlot *)
                           (w->slots + (uint64_t)p * CPRS_INDEX_SLOT_V1_SIZE))
                         ->hash);
}

/* Two records with one key (spec 6.2.10 and its siblings). */
static bool key_same(const Verify *v, const KeyRef *a, const KeyRef *b)
{
    return a->len == b->len && a->id == b->id &&
           (a->off == b->off ||
            !memcmp(v->strtab + a->off, v->strtab + b->off, a->len));
}

/*
 * Record j at slot p, reached from home after d slots: no slot on the
 * way holds an equal key (which would be met first: spec 6.8.3).
 */
static bool sweep_path_clean(Verify *v, const IndexSweep *w, uint32_t p,
                             uint32_t d, uint32_t j, uint32_t mask)
{
    uint32_t q, rq, h = v->khash[w->type][j];
    KeyRef o, k;

    for (q = (p - d) & mask; q != p; q = (q + 1) & mask) {
        CPRS_WORK_ADD(CPRS_WORK_PROBES, 1);
        rq = slot_rec(w, q);
        if (slot_hash(w, q) == h && rq && rq <= w->n) {
            /* Keys are read only for equal hashes: rarely. */
            k = key_of(v, w->type, j);
            o = key_of(v, w->type, rq - 1);
            if (key_same(v, &o, &k)) {
                return false;
            }
        }
    }
    return true;
}

/*
 * Start sweeping INDEX section @i, whose slots are at @slots, if the keys
 * of all its records are known (streamed without a failure in pass 1).
 */
static bool index_sweep_begin(Verify *v, uint32_t i, const uint8_t *slots)
{
    CprsReader *r = v->r;
    const CprsSec *s = &r->sec[i];
    uint32_t type = r->sec[s->link].type;   /* checked at open (4.8) */
    RecStream *st;

    st = type == CPRS_SECTION_FDS ? &v->fds :
         type == CPRS_SECTION_VFIO_DEVICES ? &v->vfio :
         type == CPRS_SECTION_DEVSTATE ? &v->ds : NULL;
    if (s->type != CPRS_SECTION_INDEX || !st || !st->check || st->ret ||
        st->next != r->sec[s->link].record_count ||
        s->record_size != CPRS_INDEX_SLOT_V1_SIZE) {
        return false;   /* pass 7 does it the long way */
    }
    v->sweep = (IndexSweep) { .type = type, .n = st->next, .slots = slots };
    return true;
}

/* Slot @p's 8 bytes as one word: record | hash << 32 (spec 6.8.2). */
static inline uint64_t slot_word(const uint8_t *slots, uint32_t p)
{
    return cprs_le64_get((const CprsLe64 *)(slots +
                                            (uint64_t)p *
                                            CPRS_INDEX_SLOT_V1_SIZE));
}

/*
 * A full slot flagged by index_feed(): a path that wraps past the end of
 * the table, or one that meets an equal hash before the slot.  @run full
 * slots lie just before @pos.  Returns false on doubt.
 */
static bool sweep_slow(Verify *v, IndexSweep *w, uint32_t mask,
                       uint32_t pos, uint32_t run)
{
    uint64_t wv = slot_word(w->slots, pos);
    uint32_t h = (uint32_t)(wv >> 32), j = (uint32_t)wv - 1;

    if ((h & mask) > pos) {
        /* A path that wraps past the table's end: decided at the end. */
        if (pos != run || w->n_wrapped >= CPRS_INDEX_MAX_PROBE) {
            return false;
        }
        w->wrapped[w->n_wrapped++] = pos;
        return true;
    }
    return sweep_path_clean(v, w, pos, pos - (h & mask), j, mask);
}

/* Slots index_feed() looks at in one block (two arrays on the stack). */
#define SWEEP_BLOCK 256u

/*
 * A CprsFrameSink over the slots of the index being swept, in order.
 *
 * A table is at most half full, at random: a branch on whether a slot is
 * full would be mispredicted about every other slot.  So each block of
 * slots is swept twice, with no branch on the slots' contents: first
 * every slot, keeping the positions of the full ones (and where the run
 * of full slots each one ends began); then the full ones only, their
 * checks combined with & and | (never && or ?:, which may become
 * branches).  The rare slots with a longer path are decided one by one.
 */
static void index_feed(void *opaque, const uint8_t *p, size_t n)
{
    Verify *v = opaque;
    IndexSweep *w = &v->sweep;
    const uint32_t *khash = v->khash[w->type];
    const CprsSec *s = &v->r->sec[v->r->index_of[w->type]];
    const uint32_t mask = s->record_count - 1, nrec = w->n;
    uint32_t fpos[SWEEP_BLOCK], fafter[SWEEP_BLOCK];
    uint32_t end, b, bend, pos, q, cnt, full, after, rec, h, hp, j, in;
    uint32_t home, d, wrap, slow, bad = 0, used = 0;
    uint64_t wv;
    bool failed = w->failed;

    (void)p;    /* the same bytes as w->slots from w->pos on */
    end = w->pos + (uint32_t)(n / CPRS_INDEX_SLOT_V1_SIZE);
    CPRS_WORK_ADD(CPRS_WORK_PROBES, end - w->pos);
    after = w->after_empty;
    for (b = w->pos; b < end && !failed; b = bend) {
        bend = end - b < SWEEP_BLOCK ? end : b + SWEEP_BLOCK;
        cnt = 0;
        for (pos = b; pos < bend; pos++) {
            wv = slot_word(w->slots, pos);
            full = (uint32_t)((uint32_t)wv != 0);
            /* spec 6.8.2: an empty slot has hash 0 too. */
            bad |= (uint32_t)(wv >> 32) & (full - 1u);
            fpos[cnt] = pos;
            fafter[cnt] = after;
            cnt += full;
            after = full ? after : pos + 1;
        }
        for (q = 0; q < cnt; q++) {
            pos = fpos[q];
            wv = slot_word(w->slots, pos);
            rec = (uint32_t)wv;
            h = (uint32_t)(wv >> 32);
            hp = (uint32_t)(slot_word(w->slots, pos ? pos - 1 : 0) >> 32);
            /* spec 6.8.2 names a record, 6.8.1 under its hash (an
             * out-of-range record reads khash[0], its verdict kept). */
            j = rec - 1;
            in = (uint32_t)(j < nrec);
            bad |= (in ^ 1u) | (uint32_t)(khash[j & (0u - in)] != h);
            /* spec 6.8.3: within the probe limit, with no empty slot on
             * the way (the last one lies before home)... */
            home = h & mask;
            wrap = (uint32_t)(home > pos);
            d = pos - home;
            bad |= (wrap ^ 1u) & ((uint32_t)(d >= CPRS_INDEX_MAX_PROBE) |
                                  (uint32_t)(home < fafter[q]));
            /* ...and no equal key met first.  Equal keys have equal
             * hashes: the slot just before is compared here, a path
             * that is longer or wraps by sweep_slow(). */
            slow = wrap | (uint32_t)(d >= 2) |
                   ((uint32_t)(d == 1) & (uint32_t)(hp == h));
            if (__builtin_expect(slow && !bad, 0)) {
                bad |= (uint32_t)!sweep_slow(v, w, mask, pos,
                                             pos - fafter[q]);
            }
        }
        used += cnt;
        failed = bad != 0;
    }
    w->failed = failed;
    w->after_empty = after;
    w->used += used;
    w->pos = end;
}

/* The end of the sweep: the wrapped slots, then completeness. */
static void index_sweep_end(Verify *v, uint32_t i)
{
    IndexSweep *w = &v->sweep;
    const uint32_t *khash = v->khash[w->type];
    uint32_t size = v->r->sec[i].record_count, mask = size - 1;
    uint32_t k, pos, home, d, j;

    for (k = 0; k < w->n_wrapped && !w->failed; k++) {
        pos = w->wrapped[k];
        j = slot_rec(w, pos) - 1;
        home = khash[j] & mask;
        d = pos + (size - home);
        /* Full from home to the end: no empty slot from home on. */
        w->failed = d >= CPRS_INDEX_MAX_PROBE || home < w->after_empty ||
                    !sweep_path_clean(v, w, pos, d, j, mask);
    }
    if (!w->failed && w->pos == size && w->used == w->n) {
        v->index_ok[w->type] = true;
    }
}

/*
 * spec 4.7, 5.2: every section's CRC, and decompression of known ones;
 * the records of the streamed sections are checked on the way, their
 * verdicts kept for passes 3, 5 and 6.
 */
static int check_sections(Verify *v)
{
    CprsReader *r = v->r;
    uint64_t cost;
    RecStream *st;
    uint32_t i;
    int ret;

    for (i = 0; i < r->nsec; i++) {
        CprsSec *s = &r->sec[i];

        st = s->type < CPRS_SECTION__MAX ? stream_of(v, i) : NULL;
        if (!st) {
            ret = s->type < CPRS_SECTION__MAX ? pin(v, i) :
                  crc_check(v, i, NULL, NULL);  /* spec 4.9: CRC only */
            if (ret) {
                return ret;
            }
            continue;
        }
        ret = stream_begin(v, i, st);
        if (ret) {
            return ret;
        }
        if (!(s->flags & CPRS_SECTION_F_ZSTD)) {
            ret = crc_check(v, i, st->ret ? NULL : rec_feed, st);
            if (ret) {
                return ret;
            }
            continue;
        }
        ret = crc_check(v, i, NULL, NULL);
        if (ret) {
            return ret;
        }
        clear_last(r);
        ret = cprs_sec_frame(r, i, &cost);
        if (!ret) {
            /* The window and the decoder, for as long as they run. */
            ret = cprs_budget_check(r, v->used, cost, s->offset,
                                    (int32_t)i, -1);
        }
        if (!ret && s->data) {
            rec_feed(st, s->data, (size_t)s->raw_size);     /* kept */
        } else if (!ret) {
            ret = cprs_sec_stream(r, i, st->ret ? NULL : rec_feed, st);
        }
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
                return fail(v, -EBADMSG, pos + at, -1, -1,
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
        return fail(v, -EBADMSG, pos + at, -1, -1, "4.11",
                             "non-zero byte outside every structure");
    }
    return 0;
}

/* The key of record @i of @type, for pass 7. */
static void key_put(Verify *v, uint32_t type, uint32_t i, const char *name,
                    uint32_t len, uint32_t id)
{
    KeyRef *k = v->keys[type] ? &v->keys[type][i] : NULL;

    if (!v->strtab) {
        v->strtab = (const char *)v->r->sec[cprs_sec_find(v->r,
                                               CPRS_SECTION_STRTAB)].data;
    }
    if (k) {
        k->off = (uint32_t)(name - v->strtab);
        k->len = len;
        k->id = id;
        k->index = i;
    }
    v->khash[type][i] = cprs_key_hash_id(cprs_str_hash_last(v->r, name, len),
                                         id);
}

/* Report the verdict a stream kept, in its own pass. */
static int stream_end(Verify *v, RecStream *st)
{
    if (st->ret) {
        v->r->last = st->diag;
        return from_last(v, st->ret);
    }
    return 0;
}

/* spec 6.2: an fd record, and its slot used once (pass 3). */
static int check_fd(Verify *v, const uint8_t *p, uint32_t i, uint64_t off)
{
    CprsReader *r = v->r;
    CprsFdInfo fi;
    int ret;

    ret = cprs_fd_decode(r, p, v->fds.sec, i, off, &fi);
    if (ret) {
        return ret;
    }
    if (v->slot_seen[fi.slot]++) {
        return cprs_reader_fail(r, -EBADMSG, off + offsetof(CprsWireFd, slot),
                                v->fds.sec, i, "6.2.3",
                                "slot used by two fd records");
    }
    if (v->fd_limit) {
        v->fd_limit[i] = (fi.flags & CPRS_FD_F_IDENTITY) &&
                         (fi.st_mode & 0170000) == 0100000 ? fi.size :
                         UINT64_MAX;
    }
    key_put(v, CPRS_SECTION_FDS, i, fi.name, fi.name_len, (uint32_t)fi.id);
    return 0;
}

/* spec 6.5: a vfio device record (pass 5). */
static int check_vfio_rec(Verify *v, const uint8_t *p, uint32_t i,
                          uint64_t off)
{
    CprsVfioDeviceInfo vi;
    int ret;

    ret = cprs_vfio_decode(v->r, p, v->vfio.sec, i, off, &vi);
    if (!ret) {
        key_put(v, CPRS_SECTION_VFIO_DEVICES, i, vi.name, vi.name_len, 0);
    }
    return ret;
}

/* spec 6.6, 6.7: a payload record, its place in BLOB, its frame. */
static int check_ds(Verify *v, const uint8_t *p, uint32_t i, uint64_t off)
{
    CprsReader *r = v->r;
    int bsec = cprs_sec_find(r, CPRS_SECTION_BLOB);
    const uint8_t *stored;
    CprsDevStateInfo di;
    uint64_t data_off, at, pos = v->blob_pos;
    int ret;

    ret = cprs_devstate_decode(r, p, v->ds.sec, i, off, &di, &stored,
                               &data_off);
    if (ret) {
        return ret;
    }
    /* spec 6.6.5: payloads move strictly forward through the BLOB. */
    if (data_off < pos) {
        return cprs_reader_fail(r, -EBADMSG, off +
                                offsetof(CprsWireDevState, data_off),
                                v->ds.sec, i, "6.6.5", "payload overlaps or "
                                "precedes the previous one");
    }
    /* spec 6.7: padding between payloads is zero. */
    if (data_off > pos) {
        at = first_nonzero(stored - (data_off - pos), data_off - pos);
        if (at < data_off - pos) {
            return cprs_reader_fail(r, -EBADMSG, r->sec[bsec].offset + pos +
                                    at, bsec, -1, "6.7",
                                    "non-zero byte between payloads");
        }
    }
    if (di.flags & CPRS_DEVSTATE_F_ZSTD) {
        ret = cprs_payload_frame(r, &di, stored, v->used,
                                 r->sec[bsec].offset + data_off, v->ds.sec,
                                 i, NULL);
        if (ret) {
            return ret;
        }
    }
    v->blob_pos = data_off + di.stored_size;
    key_put(v, CPRS_SECTION_DEVSTATE, i, di.name, di.name_len,
            di.instance_id);
    return 0;
}

/* spec 6.7: BLOB bytes after the last payload are zero (end of pass 6). */
static int check_blob_tail(Verify *v)
{
    CprsReader *r = v->r;
    int bsec = cprs_sec_find(r, CPRS_SECTION_BLOB);
    const uint8_t *blob;
    uint64_t size, at;

    if (bsec < 0) {
        return 0;
    }
    blob = r->sec[bsec].data;       /* pinned in pass 1 */
    size = r->sec[bsec].raw_size;
    at = first_nonzero(blob + v->blob_pos, size - v->blob_pos);
    if (at < size - v->blob_pos) {
        return fail(v, -EBADMSG, r->sec[bsec].offset +
                             v->blob_pos + at, bsec, -1, "6.7",
                             "non-zero byte after the last payload");
    }
    return 0;
}

/* spec 6.3, 6.4: blocks, their ranges in order, and their fit in the fd. */
static int check_ramblocks(Verify *v)
{
    CprsReader *r = v->r;
    uint32_t n = cprs_rec_count(r, CPRS_SECTION_RAMBLOCKS);
    uint32_t ranges = cprs_rec_count(r, CPRS_SECTION_GPA_RANGES);
    int sec = cprs_sec_find(r, CPRS_SECTION_RAMBLOCKS);
    int gsec = cprs_sec_find(r, CPRS_SECTION_GPA_RANGES);
    uint64_t next = 0, rec_off, end;
    const uint8_t *p;
    CprsRamBlockInfo bi;
    CprsGpaRange gr;
    uint32_t i, k, first;
    int ret;

    if (n) {
        ret = key_scratch(v, CPRS_SECTION_RAMBLOCKS, n, sec);
        if (ret) {
            return ret;
        }
    }
    for (i = 0; i < n; i++) {
        rec_off = r->sec[sec].offset + (uint64_t)i * r->sec[sec].record_size;
        p = r->sec[sec].data + (rec_off - r->sec[sec].offset);
        clear_last(r);
        ret = cprs_ramblock_decode(r, p, sec, i, rec_off, &bi, &first);
        if (ret) {
            return from_last(v, ret);
        }
        /* spec 6.3.7: blocks claim consecutive ranges, each exactly once. */
        if (first != next) {
            return fail(v, -EBADMSG, rec_off +
                                 offsetof(CprsWireRamBlock, range_first),
                                 sec, i, "6.3.7", "range_first does not "
                                 "follow the previous block's ranges");
        }
        next += bi.range_count;
        for (k = 0; k < bi.range_count; k++) {
            uint64_t goff = (uint64_t)(first + k) * r->sec[gsec].record_size;

            clear_last(r);
            ret = cprs_gpa_range_decode(r, r->sec[gsec].data + goff, gsec,
                                        first + k, r->sec[gsec].offset + goff,
                                        bi.max_length, &gr);
            if (ret) {
                return from_last(v, ret);
            }
        }
        /* spec 6.3.9: the used part fits in a regular backing file (the
         * fd record itself passed pass 3). */
        end = bi.fd_offset + bi.used_length;  /* no overflow: 6.3.4 */
        if (bi.fd_index != CPRS_NO_INDEX && end > v->fd_limit[bi.fd_index]) {
            return fail(v, -EBADMSG, rec_off +
                                 offsetof(CprsWireRamBlock, used_length),
                                 sec, i, "6.3.9", "block extends past "
                                 "the end of its fd");
        }
        key_put(v, CPRS_SECTION_RAMBLOCKS, i, bi.idstr, bi.idstr_len, 0);
    }
    if (next != ranges) {
        return fail(v, -EBADMSG, r->sec[gsec].offset + next *
                             r->sec[gsec].record_size, gsec, (int64_t)next,
                             "6.3.7", "GPA range claimed by no RAM block");
    }
    return 0;
}

/* ---- Keys (spec 6.8 and the uniqueness clauses) ------------------------ */

/*
 * Order of keys for the sort: name bytes, length, id, then record index.
 * Records that share a name reference (spec 9.4) share its bytes: equal
 * without reading them.
 */
static int keyref_cmp(const KeyRef *x, const KeyRef *y, const char *tab)
{
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c;

    if (x->off != y->off || x->len != y->len) {
        c = memcmp(tab + x->off, tab + y->off, n);
        if (c) {
            return c;
        }
        if (x->len != y->len) {
            return x->len < y->len ? -1 : 1;
        }
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

/* Sift key @i down the max-heap @k[0..n). */
static void heap_sift(KeyRef *k, uint32_t i, uint32_t n, const char *tab)
{
    uint32_t c;
    KeyRef t;

    for (;;) {
        c = 2 * i + 1;
        if (c >= n || c < i) {
            return;
        }
        if (c + 1 < n && keyref_cmp(&k[c], &k[c + 1], tab) < 0) {
            c++;
        }
        if (keyref_cmp(&k[i], &k[c], tab) >= 0) {
            return;
        }
        t = k[i];
        k[i] = k[c];
        k[c] = t;
        i = c;
    }
}

/*
 * Heapsort: O(n log n) comparisons whatever the input, in place, so
 * the sort allocates nothing beside the keys charged to the working set
 * (spec 7.1; qsort() may allocate a buffer as large as the keys).
 */
static void keys_sort(KeyRef *k, uint32_t n, const char *tab)
{
    uint32_t i;
    KeyRef t;

    for (i = n / 2; i-- > 0;) {
        heap_sift(k, i, n, tab);
    }
    for (i = n; i-- > 1;) {
        t = k[0];
        k[0] = k[i];
        k[i] = t;
        heap_sift(k, 0, i, tab);
    }
}

/* Without an index: sort the keys, O(n log n) whatever the input. */
static int check_unique_sorted(Verify *v, uint32_t type, uint32_t n)
{
    CprsReader *r = v->r;
    int sec = cprs_sec_find(r, type);
    KeyRef *keys = v->keys[type];
    uint32_t i;
    int ret;

    if (!keys) {
        /* Records in place: their keys gathered for the sort. */
        ret = scratch(v, &keys, n, sizeof(KeyRef), false, sec);
        if (ret) {
            return ret;
        }
        for (i = 0; i < n; i++) {
            keys[i] = key_of(v, type, i);
        }
        v->keys[type] = keys;
    }
    keys_sort(keys, n, v->strtab);
    for (i = 1; i < n; i++) {
        if (key_same(v, &keys[i], &keys[i - 1])) {
            return fail(v, -EBADMSG, r->sec[sec].offset +
                                 (uint64_t)keys[i].index *
                                 r->sec[sec].record_size, sec,
                                 keys[i].index, dup_clause(type),
                                 "duplicate key");
        }
    }
    return 0;
}

/* How far ahead the walk prefetches home slots: hides a cache miss. */
#define PREFETCH_AHEAD 8u

/* Walk from record @i's home slot to its slot (see check_index()). */
static int index_walk(Verify *v, uint32_t type, int isec, int sec,
                      uint32_t i)
{
    CprsReader *r = v->r;
    const CprsSec *s = &r->sec[isec];
    KeyRef a = key_of(v, type, i), b;
    uint32_t hash = v->khash[type][i];
    uint32_t mask = s->record_count - 1, pos = hash & mask;
    uint32_t probe, rec, h, dup;
    const CprsWireIndexSlot *slot;
    uint64_t slot_off;

    for (probe = 0; ; probe++) {
        CPRS_WORK_ADD(CPRS_WORK_PROBES, 1);
        slot_off = s->offset + (uint64_t)pos * s->record_size;
        slot = (const CprsWireIndexSlot *)(s->data + (slot_off - s->offset));
        rec = cprs_le32_get(&slot->record);
        if (probe >= CPRS_INDEX_MAX_PROBE || probe > mask || rec == 0) {
            return fail(v, -EBADMSG, s->offset, isec, i,
                                 "6.8.3", "record not reachable within the "
                                 "probe limit");
        }
        h = cprs_le32_get(&slot->hash);
        if (rec == i + 1) {
            if (h != hash) {
                return fail(v, -EBADMSG, slot_off + 4, isec,
                                     pos, "6.8.1", "index hash differs from "
                                     "the record's key hash");
            }
            return 0;
        }
        /* The same hash earlier on the path: the same key?  (rec <= n
         * was checked by the slot sweep.) */
        if (h == hash) {
            b = key_of(v, type, rec - 1);
            if (key_same(v, &b, &a)) {
                dup = i > rec - 1 ? i : rec - 1;
                return fail(v, -EBADMSG, r->sec[sec].offset +
                            (uint64_t)dup * r->sec[sec].record_size, sec,
                            dup, dup_clause(type), "duplicate key");
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
    const uint8_t *slots = s->data;     /* pinned in pass 1 */
    uint32_t mask = s->record_count - 1;
    uint32_t i, rec, h, used = 0;
    uint64_t slot_off;
    uint8_t *seen;
    int ret = 0;

#define SLOT(p) ((const CprsWireIndexSlot *)(slots + \
                                             (uint64_t)(p) * s->record_size))

    ret = scratch(v, &seen, n / 8 + 1, 1, true, isec);
    if (ret) {
        return ret;
    }
    CPRS_WORK_ADD(CPRS_WORK_PROBES, s->record_count);
    for (i = 0; i < s->record_count && !ret; i++) {
        slot_off = s->offset + (uint64_t)i * s->record_size;
        rec = cprs_le32_get(&SLOT(i)->record);
        h = cprs_le32_get(&SLOT(i)->hash);
        if (rec == 0) {
            if (h) {
                ret = fail(v, -EBADMSG, slot_off + 4, isec, i,
                                    "6.8.2", "empty index slot with a hash");
            }
        } else if (rec > n) {
            ret = fail(v, -EBADMSG, slot_off, isec, i,
                                "6.8.2", "index slot names no record");
        } else if (seen[(rec - 1) / 8] & (1u << ((rec - 1) % 8))) {
            ret = fail(v, -EBADMSG, slot_off, isec, i,
                                "6.8.4", "record in the index twice");
        } else {
            seen[(rec - 1) / 8] |= (uint8_t)(1u << ((rec - 1) % 8));
            used++;
        }
    }
    free(seen);
    v->used -= n / 8 + 1;
    if (!ret && used != n) {
        ret = fail(v, -EBADMSG, s->offset, isec, -1, "6.8.4",
                            "record missing from the index");
    }
    for (i = 0; i < n && !ret; i++) {
        if (i + PREFETCH_AHEAD < n) {
            __builtin_prefetch(SLOT(v->khash[type][i + PREFETCH_AHEAD] &
                                    mask));
        }
        ret = index_walk(v, type, isec, sec, i);
    }
#undef SLOT
    return ret;
}

/* Pass 7: FDS, RAMBLOCKS, VFIO_DEVICES, DEVSTATE, in type order. */
static int check_keys(Verify *v)
{
    uint32_t type, n;
    int ret = 0;

    for (type = 0; type < CPRS_SECTION__MAX && !ret; type++) {
        if (!cprs_type_indexable(type)) {
            continue;
        }
        n = cprs_rec_count(v->r, type);
        if (v->index_ok[type]) {
            continue;   /* swept in pass 1, nothing found */
        }

        if (v->r->index_of[type] >= 0) {
            ret = check_index(v, type, n);
        } else if (n > 1) {
            ret = check_unique_sorted(v, type, n);
        }
    }
    return ret;
}

/* ---- The passes, in the order of spec 8.2 ------------------------------ */

static int pass_fds(Verify *v)
{
    return stream_end(v, &v->fds);
}

static int pass_vfio(Verify *v)
{
    return stream_end(v, &v->vfio);
}

static int pass_devstate(Verify *v)
{
    int ret = stream_end(v, &v->ds);

    return ret ? ret : check_blob_tail(v);
}

/* Give back what verify alone held; the accessors keep their own. */
static void verify_free(Verify *v)
{
    CprsReader *r = v->r;
    uint32_t i;

    for (i = 0; i < r->nsec; i++) {
        if (v->own[i]) {
            cprs_sec_unlend(r, i);
            free(v->own[i]);
        }
    }
    for (i = 0; i < CPRS_SECTION__MAX; i++) {
        free(v->keys[i]);
        free(v->khash[i]);
    }
    free(v->fd_limit);
    free(v->slot_seen);
}

static int verify(CprsReader *r, CprsDiag *diag, bool no_sweep)
{
    Verify *v;
    int (*const passes[])(Verify *) = {
        check_sections, check_unclaimed, pass_fds, check_ramblocks,
        pass_vfio, pass_devstate, check_keys,
    };
    size_t i;
    int ret = 0;

    if (!r) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "no reader");
    }
    v = calloc(1, sizeof(*v));      /* two carry buffers: not the stack */
    if (!v) {
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    v->r = r;
    v->diag = diag;
    v->no_sweep = no_sweep;
    for (i = 0; i < sizeof(passes) / sizeof(passes[0]) && !ret; i++) {
        ret = passes[i](v);
    }
    verify_free(v);
    free(v);
    return ret;
}

int cprs_reader_verify(CprsReader *r, CprsDiag *diag)
{
    return verify(r, diag, false);
}

int cprs_reader_verify_walk(CprsReader *r, CprsDiag *diag)
{
    return verify(r, diag, true);
}
