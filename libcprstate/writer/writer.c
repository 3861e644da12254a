/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * writer.c - building an arena (spec 9).
 *
 * Records are encoded into their wire form as they are added, so finishing
 * only lays sections out, builds the hash indexes and computes CRCs.  The
 * output is a pure function of the records and the opts: names are shared
 * by the rules of spec 9.4, sections come in type order, padding is
 * zero, and nothing depends on addresses or hash-table iteration order.
 *
 * Every add function either succeeds or leaves the writer exactly as it
 * was: it validates, then reserves all memory it may need, then commits
 * with operations that cannot fail.
 */
#include <fcntl.h>
#include <link.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef CPRS_HAVE_ZSTD
#include <zstd.h>
#endif

#include "cprs-writer.h"

/* ---- Growable arrays --------------------------------------------------- */

typedef struct Vec {
    uint8_t *p;
    size_t len;     /* bytes used */
    size_t cap;     /* bytes allocated */
    CprsRoom room;  /* where p is once it passes 2 MiB, else malloc() */
} Vec;

/* vec_reserve()'s growth, out of line: room for @need bytes. */
static int __attribute__((noinline)) vec_grow(Vec *v, size_t need)
{
    /* A large table grows in place: its bytes are not copied at each
     * doubling into pages faulted afresh.  With no address space to
     * reserve, it grows on the heap. */
    if (v->room.p) {
        /* The room keeps the bytes, wherever it moves. */
        if (cprs_room_grow(&v->room, need)) {
            return -ENOMEM;
        }
    } else if (need >= CPRS_HUGE_PAGE_SIZE &&
               !cprs_room_grow(&v->room, need)) {
        if (v->len) {
            memcpy(v->room.p, v->p, v->len);
        }
        free(v->p);
    }
    if (v->room.p) {
        v->p = v->room.p;
        v->cap = v->room.cap;
        return 0;
    }
    return cprs_grow(&v->p, &v->cap, need, 1, 256, SIZE_MAX) ? -ENOMEM : 0;
}

/* Room for @more bytes after the @v->len used: on every record, so the
 * common case (room enough) is inline. */
static inline int vec_reserve(Vec *v, size_t more)
{
    /* Any failure to grow is out of memory to the writer's callers. */
    if (more > SIZE_MAX - v->len) {
        return -ENOMEM;
    }
    return v->len + more <= v->cap ? 0 : vec_grow(v, v->len + more);
}

static void vec_free(Vec *v)
{
    if (v->room.p) {
        cprs_room_free(&v->room);
    } else {
        free(v->p);
    }
    memset(v, 0, sizeof(*v));
}

/*
 * Make @v @size bytes, all zero, dropping what it held: only the bytes
 * written before are cleared where it is a room, whose pages past them
 * are still the kernel's zeroed ones.
 */
static int vec_zeroed(Vec *v, size_t size)
{
    size_t written = v->len;

    if (size > v->len && vec_reserve(v, size - v->len)) {
        return -ENOMEM;
    }
    memset(v->p, 0, v->room.p && written < size ? written : size);
    v->len = size;
    return 0;
}

/* Append after a successful vec_reserve(): cannot fail. */
static inline void vec_put(Vec *v, const void *p, size_t len)
{
    memcpy(v->p + v->len, p, len);
    v->len += len;
}

/* ---- The writer -------------------------------------------------------- */

/*
 * A payload's stored bytes (raw or zstd) are in one of three places: a
 * copy of the writer's, the caller's own memory (borrowed, kept unchanged
 * until the end), or the writer's staging memfd (data NULL).
 */
typedef struct Payload {
    const uint8_t *data;
    uint64_t size;
    bool owned;             /* data is the writer's copy */
} Payload;

/*
 * Large payloads are copied by the kernel into a staging memfd, at their
 * offset in the BLOB, and go from there to the output by the kernel too
 * (copy_file_range): a user-space copy into freshly faulted memory costs
 * several times the kernel's copy on a virtual machine.
 */
#define STAGE_MIN_SIZE (4u << 20)

/*
 * One record table: wire records, their FNV-1a key hashes (spec 6.8.1) and
 * the set of their keys, to refuse duplicates.
 *
 * The key set is, while it can be, the table's own arena index (spec 6.8)
 * as build_index() would build it for the records so far: the smallest
 * power of two >= 2n slots (at least 8), records placed in order by linear
 * probing.  Growing re-places them in order, so the layout stays that of
 * build_index().  The probe that places a key meets any duplicate of it
 * (equal keys have equal hashes), so a record costs one FNV-1a hash, which
 * the index needs anyway, and one probe; and finishing finds the index
 * built.
 *
 * FNV-1a is easy to collide on purpose, and a legacy stream converted by
 * cprdump is hostile.  So when a key would land CPRS_INDEX_MAX_PROBE slots
 * or more from home (where build_index() gives that size up), or the
 * index would outgrow CPRS_MAX_INDEX_SLOTS, the keys move for good into a
 * CprsTable (keyed hashes, bounded probes: base/table.c) and finishing
 * builds the index as for any other table.  No probe looks at more than
 * CPRS_INDEX_MAX_PROBE slots, and the move happens once.
 */
typedef struct Table {
    Vec recs;
    Vec hashes;             /* uint32_t per record */
    Vec index;              /* the key set as an index (its slots), or
                             * empty */
    uint32_t index_mask;    /* its slots - 1 */
    bool keyed;             /* the key set is 'keys' from now on */
    CprsTable keys;         /* key -> record number, once keyed */
    uint32_t count;
} Table;

struct CprsWriter {
    CprsWriterOpts opts;
    char producer[CPRS_PRODUCER_MAX];
    uint8_t build_id[CPRS_BUILD_ID_MAX];
    Vec strtab;
    uint32_t last_off;      /* the string added last, for sharing */
    uint32_t last_len;
    uint32_t last_hash;     /* its FNV-1a hash (cprs_name_hash()) */
    Table tab[CPRS_SECTION__MAX];   /* FDS, RAMBLOCKS, VFIO, DEVSTATE */
    Vec ranges;             /* CprsWireGpaRange[] */
    uint32_t range_count;
    Payload *payloads;      /* one per DEVSTATE record */
    size_t payload_cap;
    int stage_fd;           /* staging memfd for large payloads, or -1 */
    uint32_t blob_crc;      /* CRC32C of the BLOB so far, padding included */
    uint64_t blob_size;     /* end of the last payload, 8-aligned */
    void *zstd;             /* the compressor (ZSTD_CCtx), once needed */
};

/* The key of record @i of @type (the reader's cprs_wire_key()). */
static const char *table_name(const CprsWriter *w, uint32_t type, uint32_t i,
                              uint32_t *ret_len, uint32_t *ret_id)
{
    const uint8_t *rec = w->tab[type].recs.p +
                         (size_t)i * cprs_type_record_size(type);
    const CprsWireStr *ref = cprs_wire_key(type, rec, ret_id);

    *ret_len = cprs_le32_get(&ref->len);
    return (const char *)w->strtab.p + cprs_le32_get(&ref->off);
}

/* What a key set's lookups compare with: the records of one type. */
typedef struct KeyCtx {
    const CprsWriter *w;
    uint32_t type;
} KeyCtx;

static bool key_eq(const void *ctx, uint32_t val, const CprsTableKey *key)
{
    const KeyCtx *c = ctx;
    uint32_t len, id;
    const char *name = table_name(c->w, c->type, val, &len, &id);

    return cprs_key_is(key, name, len, id);
}

/* Whether @name is the name added last (records of one device often
 * share a name and differ by id). */
static bool same_as_last(const CprsWriter *w, const char *name, size_t len)
{
    return w->strtab.len && w->last_len == len &&
           !memcmp(w->strtab.p + w->last_off, name, len);
}

/* Slots of build_index()'s first attempt for @n records (spec 6.8). */
static uint64_t index_slots_for(uint64_t n)
{
    uint64_t slots = 8;

    while (slots < 2 * n) {
        slots *= 2;
    }
    return slots;
}

/* What a probe of a table's index found. */
enum {
    PROBE_EMPTY,            /* the key is not there; *ret_pos is free */
    PROBE_FOUND,            /* *ret_pos holds the key */
    PROBE_FAR,              /* no free slot within the probe limit */
};

/*
 * Probe the index of @type for the key (@name, @len, @id) of hash @h:
 * CPRS_INDEX_MAX_PROBE slots at most.  A key held is always found, since
 * no key lies that far from home in an index still in use.
 */
static int index_probe(const CprsWriter *w, uint32_t type, const char *name,
                       size_t len, uint32_t id, uint32_t h,
                       uint32_t *ret_pos)
{
    const Table *t = &w->tab[type];
    KeyCtx ctx = { w, type };
    CprsTableKey key = { name, len, id };
    const CprsWireIndexSlot *slots = (const CprsWireIndexSlot *)t->index.p;
    uint32_t pos = h & t->index_mask, d, rec;

    for (d = 0; d < CPRS_INDEX_MAX_PROBE; d++) {
        CPRS_WORK_ADD(CPRS_WORK_PROBES, 1);
        rec = cprs_le32_get(&slots[pos].record);
        if (!rec) {
            *ret_pos = pos;
            return PROBE_EMPTY;
        }
        /* Keys are compared only for equal hashes. */
        if (cprs_le32_get(&slots[pos].hash) == h &&
            key_eq(&ctx, rec - 1, &key)) {
            *ret_pos = pos;
            return PROBE_FOUND;
        }
        pos = (pos + 1) & t->index_mask;
    }
    return PROBE_FAR;
}

/* How many records ahead index_fill() fetches a home slot. */
#define INDEX_PREFETCH 16u

/*
 * spec 6.8: place records 0..@n-1 of key hashes @hashes in order, by
 * linear probing, in the zeroed table @tab of @mask + 1 slots.  False
 * when a record would land CPRS_INDEX_MAX_PROBE slots or more from home
 * (the table is then partly filled).
 */
static bool index_fill(CprsWireIndexSlot *tab, uint32_t mask,
                       const uint32_t *hashes, uint32_t n)
{
    uint32_t i, pos, d;

    for (i = 0; i < n; i++) {
        /* The hashes are known ahead: a home slot's cache miss is hidden
         * behind the placing of the records before it. */
        if (i + INDEX_PREFETCH < n) {
            __builtin_prefetch(&tab[hashes[i + INDEX_PREFETCH] & mask], 1);
        }
        pos = hashes[i] & mask;
        for (d = 0; d < CPRS_INDEX_MAX_PROBE &&
                    cprs_le32_get(&tab[pos].record); d++) {
            pos = (pos + 1) & mask;
        }
        CPRS_WORK_ADD(CPRS_WORK_PROBES, d + 1);
        if (d >= CPRS_INDEX_MAX_PROBE) {
            return false;
        }
        cprs_le32_set(&tab[pos].record, i + 1);
        cprs_le32_set(&tab[pos].hash, hashes[i]);
    }
    return true;
}

/*
 * Give the index of @t room for @n records: re-place the records in order
 * in the slots build_index() would use for @n.  -EAGAIN when that is more
 * than CPRS_MAX_INDEX_SLOTS or a record would land too far from home (the
 * keys must move to a keyed table), -ENOMEM; @t unchanged on failure.
 */
static int index_room(Table *t, uint64_t n)
{
    const uint32_t *hashes = (const uint32_t *)t->hashes.p;
    size_t old = t->index.len;
    CprsWireIndexSlot *tab;
    uint64_t slots;

    /* Room enough (2n slots; a table has at least 8): on every record. */
    if (old && 2 * n <= (uint64_t)t->index_mask + 1) {
        return 0;
    }
    slots = index_slots_for(n);
    if (slots > CPRS_MAX_INDEX_SLOTS) {
        return -EAGAIN;
    }
    /* From the hashes: the old slots are not needed. */
    if (vec_zeroed(&t->index, (size_t)slots * sizeof(*tab))) {
        return -ENOMEM;
    }
    tab = (CprsWireIndexSlot *)t->index.p;
    if (!index_fill(tab, (uint32_t)slots - 1, hashes, t->count)) {
        /* Undone: the slots as they were (placed before, they fit). */
        memset(tab, 0, t->index.len);
        t->index.len = old;
        if (old) {
            index_fill(tab, t->index_mask, hashes, t->count);
        }
        return -EAGAIN;
    }
    t->index_mask = (uint32_t)slots - 1;
    return 0;
}

/*
 * Move the keys of @type for good from its index into a keyed table with
 * room for @more records after them.  -ENOMEM, the table unchanged.
 */
static int go_keyed(CprsWriter *w, uint32_t type, uint32_t more)
{
    Table *t = &w->tab[type];
    uint32_t i, len, id;
    const char *name;

    if (cprs_table_reserve(&t->keys, t->count + more)) {
        cprs_table_free(&t->keys);
        return -ENOMEM;
    }
    for (i = 0; i < t->count; i++) {
        name = table_name(w, type, i, &len, &id);
        cprs_table_put(&t->keys, cprs_table_hash(&t->keys, name, len, id), i);
    }
    vec_free(&t->index);
    t->keyed = true;
    return 0;
}

/*
 * The record of @type keyed (@name, @len, @id), whose name alone hashes
 * to @name_hash (cprs_name_hash()), or -1.
 */
static int64_t table_lookup(const CprsWriter *w, uint32_t type,
                            const char *name, size_t len, uint32_t id,
                            uint32_t name_hash)
{
    const Table *t = &w->tab[type];
    KeyCtx ctx = { w, type };
    CprsTableKey key = { name, len, id };
    uint32_t pos;

    if (!t->count) {
        return -1;
    }
    if (t->keyed) {
        return cprs_table_find(&t->keys,
                               cprs_table_hash(&t->keys, name, len, id),
                               key_eq, &ctx, &key);
    }
    if (index_probe(w, type, name, len, id,
                    cprs_key_hash_id(name_hash, id), &pos) != PROBE_FOUND) {
        return -1;
    }
    return (int64_t)cprs_le32_get(&((const CprsWireIndexSlot *)
                                     t->index.p)[pos].record) - 1;
}

/*
 * Where the bytes of a new name other than the last one can be shared
 * (spec 9.4): for records other than fds, an fd record of the same name
 * with id 0 (a RAM block and the memfd behind it).  Returns the strtab
 * offset, or -1.
 */
static int64_t shared_string(const CprsWriter *w, uint32_t type,
                             const char *name, size_t len,
                             uint32_t name_hash)
{
    const CprsWireFd *fd;
    int64_t idx;

    if (type == CPRS_SECTION_FDS) {
        return -1;
    }
    idx = table_lookup(w, CPRS_SECTION_FDS, name, len, 0, name_hash);
    if (idx < 0) {
        return -1;
    }
    fd = (const CprsWireFd *)(w->tab[CPRS_SECTION_FDS].recs.p +
                              (size_t)idx * sizeof(*fd));
    return cprs_le32_get(&fd->name.off);
}

/* The hashes of a new record's key, and where it goes in the key set. */
typedef struct RecHash {
    uint32_t index;         /* FNV-1a, for the arena's index (spec 6.8.1) */
    uint32_t keys;          /* the keyed table's hash, once keyed */
    uint32_t name;          /* FNV-1a of the name alone, for the next */
    uint32_t pos;           /* its slot in the index, until keyed */
} RecHash;

/*
 * Refuse a duplicate of (@name, @len, @id) in the key set of @type, and
 * make room there for one more key: in the index while it can hold the
 * key, else in the keyed table.  The hashes in @h are filled in.
 */
static int key_reserve(CprsWriter *w, uint32_t type, const char *name,
                       size_t len, uint32_t id, RecHash *h)
{
    Table *t = &w->tab[type];
    KeyCtx ctx = { w, type };
    CprsTableKey key = { name, len, id };
    int ret = 0;

    if (!t->keyed) {
        ret = index_room(t, (uint64_t)t->count + 1);
        if (!ret) {
            switch (index_probe(w, type, name, len, id, h->index, &h->pos)) {
            case PROBE_FOUND:
                return -EEXIST;
            case PROBE_FAR:
                ret = -EAGAIN;
                break;
            }
        }
        if (ret == -EAGAIN) {
            ret = go_keyed(w, type, 1);
        }
        if (ret) {
            return ret;
        }
    }
    if (t->keyed) {
        h->keys = cprs_table_hash(&t->keys, name, len, id);
        if (cprs_table_find(&t->keys, h->keys, key_eq, &ctx, &key) >= 0) {
            return -EEXIST;
        }
        ret = cprs_table_reserve(&t->keys, 1) ? -ENOMEM : 0;
    }
    return ret;
}

/*
 * Reserve room for a new record of @type keyed (@name, @id): refuses a
 * duplicate, and on success guarantees that commit_record() and intern()
 * cannot fail.  *@ret_str is where the name's bytes already are, or -1.
 */
static int reserve_record(CprsWriter *w, uint32_t type, const char *name,
                          size_t len, uint32_t id, RecHash *ret_hash,
                          int64_t *ret_str)
{
    Table *t = &w->tab[type];
    bool last = same_as_last(w, name, len);
    int64_t str;
    int ret;

    if (t->count >= CPRS_MAX_RECORDS) {
        return -E2BIG;
    }
    /* The name's FNV-1a part is computed once for a run of records that
     * share it; the id's four bytes are hashed for each. */
    ret_hash->name = last ? w->last_hash : cprs_name_hash(name, len);
    ret_hash->index = cprs_key_hash_id(ret_hash->name, id);
    ret = key_reserve(w, type, name, len, id, ret_hash);
    if (!ret) {
        ret = vec_reserve(&t->recs, cprs_type_record_size(type));
    }
    if (!ret) {
        ret = vec_reserve(&t->hashes, sizeof(uint32_t));
    }
    str = last ? w->last_off : shared_string(w, type, name, len,
                                             ret_hash->name);
    if (!ret && str < 0) {
        if (w->strtab.len + len + 1 > UINT32_MAX) {
            return -E2BIG;
        }
        ret = vec_reserve(&w->strtab, len + 1);
    }
    *ret_str = str;
    return ret;
}

int cprs_writer_expect(CprsWriter *w, uint32_t type, uint32_t n)
{
    Table *t;
    int ret = 0;

    if (!w || !cprs_type_indexable(type)) {
        return -EINVAL;
    }
    t = &w->tab[type];
    n = n < CPRS_MAX_RECORDS - t->count ? n : CPRS_MAX_RECORDS - t->count;
    if (vec_reserve(&t->recs, (size_t)n * cprs_type_record_size(type)) ||
        vec_reserve(&t->hashes, (size_t)n * sizeof(uint32_t))) {
        return -ENOMEM;
    }
    if (!t->keyed) {
        ret = index_room(t, (uint64_t)t->count + n);
        if (ret == -EAGAIN) {
            ret = go_keyed(w, type, n);
        }
    } else if (cprs_table_reserve(&t->keys, n)) {
        ret = -ENOMEM;
    }
    return ret;
}

/* Intern a name reserved by reserve_record(); returns its reference. */
static CprsWireStr intern(CprsWriter *w, const char *name, size_t len,
                          int64_t off, const RecHash *h)
{
    CprsWireStr ref;

    if (off < 0) {
        off = (int64_t)w->strtab.len;
        vec_put(&w->strtab, name, len);
        vec_put(&w->strtab, "", 1);
    }
    w->last_off = (uint32_t)off;
    w->last_len = (uint32_t)len;
    w->last_hash = h->name;
    cprs_le32_set(&ref.off, (uint32_t)off);
    cprs_le32_set(&ref.len, (uint32_t)len);
    return ref;
}

/*
 * The zeroed wire record a new record of @type is built in, in place at
 * the end of its table (room reserved by reserve_record()): built there,
 * it is not copied again.  commit_record() then makes it count.
 */
static void *new_record(CprsWriter *w, uint32_t type)
{
    Vec *v = &w->tab[type].recs;
    void *rec = v->p + v->len;

    memset(rec, 0, cprs_type_record_size(type));
    return rec;
}

static uint32_t commit_record(CprsWriter *w, uint32_t type, const RecHash *h)
{
    Table *t = &w->tab[type];

    t->recs.len += cprs_type_record_size(type);
    vec_put(&t->hashes, &h->index, sizeof(h->index));
    if (t->keyed) {
        cprs_table_put(&t->keys, h->keys, t->count);
    } else {
        CprsWireIndexSlot *slot = (CprsWireIndexSlot *)t->index.p + h->pos;

        cprs_le32_set(&slot->record, t->count + 1);
        cprs_le32_set(&slot->hash, h->index);
    }
    return t->count++;
}

/* dl_iterate_phdr() callback: the main program comes first. */
static int build_id_of_main(struct dl_phdr_info *info, size_t size,
                            void *opaque)
{
    uint8_t *out = opaque;
    uint16_t i;

    (void)size;
    for (i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        uint64_t align = ph->p_align == 8 ? 8 : 4, left = ph->p_memsz;

        if (ph->p_type != PT_NOTE) {
            continue;
        }
        /* Our own mapped notes, still walked with every length checked. */
        while (left >= 12) {
            ElfW(Nhdr) nh;
            uint64_t name_sz, desc_sz, need;

            memcpy(&nh, p, sizeof(nh));
            name_sz = (nh.n_namesz + align - 1) & ~(align - 1);
            desc_sz = (nh.n_descsz + align - 1) & ~(align - 1);
            need = 12 + name_sz + desc_sz;
            if (need > left) {
                break;
            }
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                !memcmp(p + 12, "GNU", 4) && nh.n_descsz &&
                nh.n_descsz <= CPRS_BUILD_ID_MAX) {
                memcpy(out + 1, p + 12 + name_sz, nh.n_descsz);
                out[0] = (uint8_t)nh.n_descsz;
                return 1;
            }
            p += need;
            left -= need;
        }
    }
    return 1;           /* only the first object: the main program */
}

/*
 * The GNU build-id of the running executable, as the loader mapped it:
 * no file is opened and no ELF library is needed.  Returns its size, 0 if
 * it has none.
 */
static uint32_t self_build_id(uint8_t *buf)
{
    uint8_t found[1 + CPRS_BUILD_ID_MAX] = { 0 };

    dl_iterate_phdr(build_id_of_main, found);
    memcpy(buf, found + 1, found[0]);
    return found[0];
}

int cprs_writer_new(const CprsWriterOpts *opts, CprsWriter **ret_writer)
{
    CprsWriter *w;
    struct timespec ts;
    size_t n;
    int ret;

    if (!ret_writer) {
        return -EINVAL;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        return -ENOMEM;
    }
    for (n = 0; n < CPRS_SECTION__MAX; n++) {
        cprs_table_init(&w->tab[n].keys);
    }
    w->stage_fd = -1;
    ret = cprs_opts_copy(&w->opts, sizeof(w->opts), opts);
    if (ret) {
        goto fail;
    }
    ret = -EINVAL;
    if (!w->opts.mode) {
        w->opts.mode = CPRS_MODE_EXEC;
    }
    if (w->opts.mode >= CPRS_MODE__MAX ||
        (w->opts.flags & ~(CPRS_WRITER_F_REPRODUCIBLE |
                           CPRS_WRITER_F_NO_INDEX)) ||
        w->opts.build_id_size > CPRS_BUILD_ID_MAX ||
        (w->opts.build_id_size && !w->opts.build_id) ||
        (w->opts.compress_sections & ~(((1u << CPRS_SECTION__MAX) - 1) &
                                       ~1u))) {
        goto fail;
    }
#ifdef CPRS_HAVE_ZSTD
    if (!w->opts.zstd_level) {
        w->opts.zstd_level = 3;
    }
    if (w->opts.zstd_level < ZSTD_minCLevel() ||
        w->opts.zstd_level > ZSTD_maxCLevel()) {
        goto fail;
    }
#else
    if (w->opts.compress_sections) {
        ret = -EPROTONOSUPPORT;
        goto fail;
    }
#endif

    /* spec 3.15: the producer string. */
    if (w->opts.producer) {
        n = strnlen(w->opts.producer, CPRS_PRODUCER_MAX);
        if (n == CPRS_PRODUCER_MAX ||
            cprs_name_bad_char(w->opts.producer, n) < n) {
            goto fail;
        }
        memcpy(w->producer, w->opts.producer, n);
    } else {
        snprintf(w->producer, sizeof(w->producer), "libcprstate %s",
                 cprs_version());
    }
    w->opts.producer = NULL;

    /* spec 3.14: this executable's build-id, from its loaded notes. */
    if (w->opts.build_id) {
        memcpy(w->build_id, w->opts.build_id, w->opts.build_id_size);
    } else if (!(w->opts.flags & CPRS_WRITER_F_REPRODUCIBLE)) {
        w->opts.build_id_size = self_build_id(w->build_id);
    }
    w->opts.build_id = NULL;

    if (!(w->opts.flags & CPRS_WRITER_F_REPRODUCIBLE)) {
        if (!w->opts.created_ns && !clock_gettime(CLOCK_REALTIME, &ts)) {
            w->opts.created_ns = (uint64_t)ts.tv_sec * 1000000000u +
                                 (uint64_t)ts.tv_nsec;
        }
        if (!w->opts.writer_pid) {
            w->opts.writer_pid = (uint32_t)getpid();
        }
    }
    *ret_writer = w;
    return 0;

fail:
    free(w);
    return ret;
}

void cprs_writer_free(CprsWriter *w)
{
    uint32_t i;

    if (!w) {
        return;
    }
    for (i = 0; i < w->tab[CPRS_SECTION_DEVSTATE].count; i++) {
        if (w->payloads[i].owned) {
            free((void *)w->payloads[i].data);
        }
    }
    free(w->payloads);
    if (w->stage_fd >= 0) {
        close(w->stage_fd);
    }
    for (i = 0; i < CPRS_SECTION__MAX; i++) {
        vec_free(&w->tab[i].recs);
        vec_free(&w->tab[i].hashes);
        vec_free(&w->tab[i].index);
        cprs_table_free(&w->tab[i].keys);
    }
    vec_free(&w->ranges);
    vec_free(&w->strtab);
#ifdef CPRS_HAVE_ZSTD
    ZSTD_freeCCtx(w->zstd);
#endif
    free(w);
}

/*
 * The caller's sized record struct @src as one of @known bytes: @src
 * itself when it has our size (read in place, field by field: a copy
 * would load it back wider than the caller stored it, and stall), else
 * its copy in @copy; NULL when it is not acceptable or the name its field
 * at @name_off points to is not (spec 6.1.2).
 */
static inline const void *record_at(void *copy, size_t known,
                                    const void *src, size_t name_off,
                                    size_t *ret_len)
{
    const char *name;
    size_t sz;

    if (!src) {
        return NULL;
    }
    memcpy(&sz, src, sizeof(sz));
    if (sz != known) {
        if (cprs_opts_copy(copy, known, src)) {
            return NULL;
        }
        src = copy;
    }
    memcpy(&name, (const uint8_t *)src + name_off, sizeof(name));
    return cprs_name_check(name, ret_len) ? NULL : src;
}

int cprs_writer_add_fd(CprsWriter *w, const CprsFdInfo *fd,
                       uint32_t *ret_index)
{
    CprsFdInfo copy;
    const CprsFdInfo *in;
    CprsWireFd *rec;
    size_t len;
    RecHash h;
    uint32_t idx;
    int64_t str;
    int ret;

    in = w ? record_at(&copy, sizeof(copy), fd, offsetof(CprsFdInfo, name),
                       &len) : NULL;
    if (!in) {
        return -EINVAL;
    }
    /* spec 6.2.4: a cpr-exec record needs its fd number. */
    if (in->fd < -1 || (in->fd == -1 && w->opts.mode == CPRS_MODE_EXEC) ||
        in->kind >= CPRS_FD_KIND__MAX ||
        (in->flags & ~CPRS_FD_F_KNOWN) ||
        (!(in->flags & CPRS_FD_F_SEALS) && in->seals) ||
        (!(in->flags & CPRS_FD_F_IDENTITY) &&
         (in->dev || in->ino || in->st_mode || in->size))) {
        return -EINVAL;
    }
    ret = reserve_record(w, CPRS_SECTION_FDS, in->name, len, (uint32_t)in->id,
                         &h, &str);
    if (ret) {
        return ret;
    }
    rec = new_record(w, CPRS_SECTION_FDS);
    rec->name = intern(w, in->name, len, str, &h);
    cprs_le32_set(&rec->id, (uint32_t)in->id);
    /* spec 6.2.3: the writer numbers slots in record order. */
    cprs_le32_set(&rec->slot, w->tab[CPRS_SECTION_FDS].count);
    cprs_le32_set(&rec->fd, (uint32_t)in->fd);
    cprs_le16_set(&rec->kind, (uint16_t)in->kind);
    cprs_le32_set(&rec->flags, in->flags);
    cprs_le32_set(&rec->seals, in->seals);
    cprs_le64_set(&rec->dev, in->dev);
    cprs_le64_set(&rec->ino, in->ino);
    cprs_le32_set(&rec->st_mode, in->st_mode);
    cprs_le64_set(&rec->size, in->size);
    idx = commit_record(w, CPRS_SECTION_FDS, &h);
    if (ret_index) {
        *ret_index = idx;
    }
    return 0;
}

bool cprs_ramblock_ok(const CprsRamBlockInfo *in, const CprsGpaRange *ranges,
                      uint32_t n_ranges)
{
    uint64_t end;
    uint32_t k;

    if ((in->flags & ~CPRS_RAM_F_KNOWN) ||
        !cprs_add_ok(in->fd_offset, in->max_length, &end) ||
        in->used_length > in->max_length || !cprs_is_pow2(in->page_size) ||
        (in->align && !cprs_is_pow2(in->align)) ||
        n_ranges > CPRS_MAX_RECORDS) {
        return false;
    }
    /* spec 6.4: ranges are not empty, do not wrap, lie in the block. */
    for (k = 0; k < n_ranges; k++) {
        if (!ranges[k].size ||
            !cprs_add_ok(ranges[k].gpa, ranges[k].size - 1, &end) ||
            !cprs_range_ok(in->max_length, ranges[k].block_offset,
                           ranges[k].size)) {
            return false;
        }
    }
    return true;
}

int cprs_writer_add_ramblock(CprsWriter *w, const CprsRamBlockInfo *block,
                             const CprsGpaRange *ranges, uint32_t n_ranges,
                             uint32_t *ret_index)
{
    CprsRamBlockInfo copy;
    const CprsRamBlockInfo *in;
    CprsWireRamBlock *rec;
    CprsWireGpaRange wr;
    size_t len;
    RecHash h;
    uint32_t idx, k;
    int64_t str;
    int ret;

    in = w && (!n_ranges || ranges) ?
         record_at(&copy, sizeof(copy), block,
                   offsetof(CprsRamBlockInfo, idstr), &len) : NULL;
    if (!in) {
        return -EINVAL;
    }
    if ((in->fd_index != CPRS_NO_INDEX &&
         in->fd_index >= w->tab[CPRS_SECTION_FDS].count) ||
        !cprs_ramblock_ok(in, ranges, n_ranges)) {
        return -EINVAL;
    }
    /* spec 6.3.9, 9.1: the used part fits a regular backing file. */
    if (in->fd_index != CPRS_NO_INDEX) {
        const CprsWireFd *f = (const CprsWireFd *)
            (w->tab[CPRS_SECTION_FDS].recs.p +
             (size_t)in->fd_index * sizeof(CprsWireFd));

        if ((cprs_le32_get(&f->flags) & CPRS_FD_F_IDENTITY) &&
            (cprs_le32_get(&f->st_mode) & 0170000) == 0100000 &&
            in->fd_offset + in->used_length > cprs_le64_get(&f->size)) {
            return -EINVAL;
        }
    }
    if ((uint64_t)w->range_count + n_ranges > CPRS_MAX_RECORDS) {
        return -E2BIG;
    }
    ret = vec_reserve(&w->ranges, (size_t)n_ranges * sizeof(wr));
    if (ret) {
        return ret;
    }
    ret = reserve_record(w, CPRS_SECTION_RAMBLOCKS, in->idstr, len, 0, &h,
                         &str);
    if (ret) {
        return ret;
    }
    rec = new_record(w, CPRS_SECTION_RAMBLOCKS);
    rec->idstr = intern(w, in->idstr, len, str, &h);
    cprs_le32_set(&rec->fd_index, in->fd_index);
    cprs_le32_set(&rec->flags, in->flags);
    cprs_le64_set(&rec->fd_offset, in->fd_offset);
    cprs_le64_set(&rec->used_length, in->used_length);
    cprs_le64_set(&rec->max_length, in->max_length);
    cprs_le64_set(&rec->page_size, in->page_size);
    cprs_le64_set(&rec->align, in->align);
    cprs_le32_set(&rec->range_first, w->range_count);
    cprs_le32_set(&rec->range_count, n_ranges);
    for (k = 0; k < n_ranges; k++) {
        cprs_le64_set(&wr.gpa, ranges[k].gpa);
        cprs_le64_set(&wr.size, ranges[k].size);
        cprs_le64_set(&wr.block_offset, ranges[k].block_offset);
        vec_put(&w->ranges, &wr, sizeof(wr));
    }
    w->range_count += n_ranges;
    idx = commit_record(w, CPRS_SECTION_RAMBLOCKS, &h);
    if (ret_index) {
        *ret_index = idx;
    }
    return 0;
}

int cprs_writer_add_vfio(CprsWriter *w, const CprsVfioDeviceInfo *dev,
                         uint32_t *ret_index)
{
    CprsVfioDeviceInfo copy;
    const CprsVfioDeviceInfo *in;
    CprsWireVfioDevice *rec;
    size_t len;
    RecHash h;
    uint32_t idx;
    int64_t str;
    int ret;

    in = w ? record_at(&copy, sizeof(copy), dev,
                       offsetof(CprsVfioDeviceInfo, name), &len) : NULL;
    if (!in) {
        return -EINVAL;
    }
    ret = reserve_record(w, CPRS_SECTION_VFIO_DEVICES, in->name, len, 0, &h,
                         &str);
    if (ret) {
        return ret;
    }
    rec = new_record(w, CPRS_SECTION_VFIO_DEVICES);
    rec->name = intern(w, in->name, len, str, &h);
    cprs_le32_set(&rec->devid, (uint32_t)in->devid);
    cprs_le32_set(&rec->ioas_id, in->ioas_id);
    cprs_le32_set(&rec->hwpt_id, in->hwpt_id);
    idx = commit_record(w, CPRS_SECTION_VFIO_DEVICES, &h);
    if (ret_index) {
        *ret_index = idx;
    }
    return 0;
}

/*
 * Compress @size bytes; *ret_data is NULL when zstd would not shrink it.
 * The writer keeps one compressor for all its payloads and sections:
 * creating one costs microseconds on a virtual machine (libzstd's CPUID
 * traps), more than compressing a small payload.  Its output is
 * ZSTD_compress()'s, byte for byte.
 */
static int zstd_pack(CprsWriter *w, const void *data, size_t size,
                     uint8_t **ret_data, size_t *ret_size)
{
#ifdef CPRS_HAVE_ZSTD
    size_t bound = ZSTD_compressBound(size), n;
    uint8_t *out;

    *ret_data = NULL;
    if (ZSTD_isError(bound)) {
        return -E2BIG;
    }
    if (!w->zstd) {
        w->zstd = ZSTD_createCCtx();
        CPRS_WORK_ADD(CPRS_WORK_ZSTD_CONTEXTS, 1);
        if (!w->zstd) {
            return -ENOMEM;
        }
    }
    out = malloc(bound);
    if (!out) {
        return -ENOMEM;
    }
    /* One-shot compression records the content size in the frame. */
    n = ZSTD_compressCCtx(w->zstd, out, bound, data, size,
                          w->opts.zstd_level);
    if (ZSTD_isError(n)) {
        free(out);
        return -ENOMEM;
    }
    if (n >= size) {
        free(out);
        return 0;
    }
    *ret_data = out;
    *ret_size = n;
    return 0;
#else
    (void)w;
    (void)data;
    (void)size;
    (void)ret_data;
    (void)ret_size;
    return -EPROTONOSUPPORT;
#endif
}

static const uint8_t zero_pad[CPRS_ALIGN];

/*
 * pwrite() (@out) or pread() all @len bytes at @off, resuming after short
 * transfers and EINTR; a read that meets the end of the file is -EIO.
 */
static int io_all(int fd, bool out, uint8_t *p, uint64_t len, uint64_t off)
{
    size_t n;
    ssize_t done;

    while (len) {
        n = len > (1u << 30) ? (1u << 30) : (size_t)len;
        done = out ? pwrite(fd, p, n, (off_t)off) :
                     pread(fd, p, n, (off_t)off);
        if (done < 0 && errno == EINTR) {
            continue;
        }
        if (done <= 0) {
            return done < 0 ? -errno : -EIO;
        }
        p += done;
        off += (uint64_t)done;
        len -= (uint64_t)done;
    }
    return 0;
}

/*
 * The writer's own copy of a payload given by the caller: in memory, or
 * for a large one in the staging memfd at its BLOB offset @off.
 */
static int keep_payload(CprsWriter *w, Payload *pl, uint64_t off)
{
    uint8_t *copy;
    int ret;

    if (pl->size >= STAGE_MIN_SIZE) {
        if (w->stage_fd < 0) {
            w->stage_fd = memfd_create("cprs-stage", MFD_CLOEXEC);
            if (w->stage_fd < 0) {
                return -errno;
            }
        }
        ret = io_all(w->stage_fd, true, (uint8_t *)pl->data, pl->size, off);
        if (!ret) {
            pl->data = NULL;
        }
        return ret;
    }
    copy = malloc(pl->size ? (size_t)pl->size : 1);
    if (!copy) {
        return -ENOMEM;
    }
    memcpy(copy, pl->data, (size_t)pl->size);
    pl->data = copy;
    pl->owned = true;
    return 0;
}

/*
 * Append a payload: copied, or with @borrow referenced as it is until the
 * arena is written (unless compressed, which makes a copy anyway).
 */
static int add_devstate(CprsWriter *w, const CprsDevStateInfo *ds,
                        const void *data, size_t size, bool borrow,
                        uint32_t *ret_index)
{
    CprsDevStateInfo mine;
    const CprsDevStateInfo *in;
    CprsWireDevState *rec;
    Payload pl = { NULL, 0, true };
    const uint8_t *bytes;
    uint8_t *copy = NULL;
    uint64_t off, end;
    uint32_t flags = 0, idx;
    RecHash h;
    size_t len, count;
    int64_t str;
    int ret;

    in = w && (data || !size) ?
         record_at(&mine, sizeof(mine), ds, offsetof(CprsDevStateInfo, name),
                   &len) : NULL;
    if (!in || (in->flags & ~CPRS_DEVSTATE_F_KNOWN)) {
        return -EINVAL;
    }
    if (size > CPRS_MAX_PAYLOAD_SIZE) {
        return -E2BIG;
    }
    count = w->tab[CPRS_SECTION_DEVSTATE].count;
    if (cprs_grow(&w->payloads, &w->payload_cap, count + 1,
                  sizeof(*w->payloads), 16, SIZE_MAX)) {
        return -ENOMEM;
    }

    if (in->flags & CPRS_DEVSTATE_F_ZSTD) {
        size_t csize = 0;

        ret = zstd_pack(w, data, size, &copy, &csize);
        if (ret) {
            return ret;
        }
        if (copy) {
            pl.size = csize;
            flags = CPRS_DEVSTATE_F_ZSTD;
        }
    }
    if (copy) {
        pl.data = copy;
    } else {
        pl = (Payload) { data ? data : zero_pad, size, false };
    }
    bytes = pl.data;        /* the caller's, or compressed: summed below */
    /* spec 6.6.5: payloads start 8-aligned; the BLOB ends 8-aligned too,
     * so that an empty payload placed at its end is still inside it. */
    off = w->blob_size;
    ret = !cprs_add_ok(off, pl.size, &end) || end > CPRS_MAX_ARENA_SIZE ?
          -E2BIG : reserve_record(w, CPRS_SECTION_DEVSTATE, in->name, len,
                                  in->instance_id, &h, &str);
    if (!ret && !copy && !borrow) {
        ret = keep_payload(w, &pl, off);
    }
    if (ret) {
        free(copy);
        return ret;
    }
    rec = new_record(w, CPRS_SECTION_DEVSTATE);
    rec->name = intern(w, in->name, len, str, &h);
    cprs_le32_set(&rec->instance_id, in->instance_id);
    cprs_le32_set(&rec->version_id, in->version_id);
    cprs_le32_set(&rec->flags, flags);
    cprs_le64_set(&rec->data_off, off);
    cprs_le64_set(&rec->stored_size, pl.size);
    cprs_le64_set(&rec->raw_size, size);
    /* The BLOB's CRC grows with it, over the bytes as they were given. */
    w->blob_crc = cprs_crc32c(w->blob_crc, bytes, (size_t)pl.size);
    w->blob_crc = cprs_crc32c(w->blob_crc, zero_pad,
                              (size_t)(cprs_align_up(end) - end));
    w->payloads[count] = pl;
    w->blob_size = cprs_align_up(end);
    idx = commit_record(w, CPRS_SECTION_DEVSTATE, &h);
    if (ret_index) {
        *ret_index = idx;
    }
    return 0;
}

int cprs_writer_add_devstate(CprsWriter *w, const CprsDevStateInfo *ds,
                             const void *data, size_t size,
                             uint32_t *ret_index)
{
    return add_devstate(w, ds, data, size, false, ret_index);
}

int cprs_writer_add_devstate_ref(CprsWriter *w, const CprsDevStateInfo *ds,
                                 const void *data, size_t size)
{
    return add_devstate(w, ds, data, size, true, NULL);
}

/* ---- Layout ------------------------------------------------------------ */

/* A contiguous run of output bytes: in memory, or staged (p NULL). */
typedef struct Piece {
    const void *p;
    size_t len;
    uint64_t stage_off;     /* where a staged piece is in the memfd */
} Piece;

typedef struct OutSec {
    uint32_t type;
    uint32_t flags;
    uint32_t link;
    uint32_t record_count;
    uint32_t record_size;
    uint32_t crc;
    uint64_t offset;
    uint64_t stored_size;
    uint64_t raw_size;
    size_t first_piece;
    size_t n_pieces;
} OutSec;

typedef struct Layout {
    CprsWireHeader header;
    CprsWireSection dir[CPRS_MAX_SECTIONS];
    OutSec sec[CPRS_MAX_SECTIONS];
    uint32_t nsec;
    Piece *pieces;          /* body pieces, in output order, no padding */
    size_t n_pieces;
    size_t cap_pieces;
    uint8_t *owned[CPRS_MAX_SECTIONS * 2];  /* index and zstd buffers */
    uint32_t n_owned;
    uint64_t size;
    int stage_fd;           /* the writer's staging memfd, or -1 */
} Layout;

static int add_piece(Layout *l, const void *p, size_t len)
{
    Piece *np;

    if (l->n_pieces == l->cap_pieces) {
        size_t cap = l->cap_pieces ? l->cap_pieces * 2 : 64;

        np = realloc(l->pieces, cap * sizeof(*np));
        if (!np) {
            return -ENOMEM;
        }
        l->pieces = np;
        l->cap_pieces = cap;
    }
    l->pieces[l->n_pieces++] = (Piece) { p, len, 0 };
    return 0;
}


static void layout_free(Layout *l)
{
    uint32_t i;

    for (i = 0; i < l->n_owned; i++) {
        free(l->owned[i]);
    }
    free(l->pieces);
}

/* Begin section @type whose raw bytes are the pieces added next. */
static OutSec *sec_begin(Layout *l, uint32_t type, uint32_t count)
{
    OutSec *s = &l->sec[l->nsec++];

    *s = (OutSec) {
        .type = type,
        .flags = type == CPRS_SECTION_INDEX ? 0 : CPRS_SECTION_F_REQUIRED,
        .record_count = count,
        .record_size = cprs_type_record_size(type),
        .first_piece = l->n_pieces,
    };
    return s;
}

static void sec_end(Layout *l, OutSec *s)
{
    size_t i;

    s->n_pieces = l->n_pieces - s->first_piece;
    for (i = s->first_piece; i < l->n_pieces; i++) {
        s->raw_size += l->pieces[i].len;
    }
    s->stored_size = s->raw_size;
}

/*
 * spec 6.8: slots = the smallest power of two >= 2n (at least 8), records
 * inserted in order with linear probing.  If some record would land more
 * than CPRS_INDEX_MAX_PROBE slots from home, retry with twice the slots; if
 * that keeps failing, write no index (readers then scan).
 */
static int build_index(const uint32_t *hashes, uint32_t n, uint8_t **ret_buf,
                       uint32_t *ret_slots)
{
    uint64_t slots = index_slots_for(n);
    CprsWireIndexSlot *tab;
    uint32_t attempt;

    for (attempt = 0; attempt < 4 && slots <= CPRS_MAX_INDEX_SLOTS;
         attempt++, slots *= 2) {
        tab = cprs_alloc_large_zero(slots * sizeof(*tab));
        if (!tab) {
            return -ENOMEM;
        }
        if (index_fill(tab, (uint32_t)(slots - 1), hashes, n)) {
            *ret_buf = (uint8_t *)tab;
            *ret_slots = (uint32_t)slots;
            return 0;
        }
        free(tab);
    }
    *ret_buf = NULL;
    return 0;
}

/* Replace the pieces of @s by one zstd frame when that is smaller. */
static int compress_section(CprsWriter *w, Layout *l, OutSec *s)
{
    uint8_t *raw, *packed = NULL;
    size_t i, pos = 0, packed_size = 0;
    int ret;

    if (!s->raw_size) {
        return 0;
    }
    if (s->raw_size > CPRS_MAX_SECTION_RAW_SIZE) {
        return 0;   /* stays uncompressed: readers cap raw sections */
    }
    raw = cprs_alloc_large(s->raw_size);
    if (!raw) {
        return -ENOMEM;
    }
    for (i = 0, ret = 0; i < s->n_pieces && !ret; i++) {
        const Piece *pc = &l->pieces[s->first_piece + i];

        if (pc->p) {
            memcpy(raw + pos, pc->p, pc->len);
        } else {
            ret = io_all(l->stage_fd, false, raw + pos, pc->len,
                         pc->stage_off);
        }
        pos += pc->len;
    }
    if (!ret) {
        ret = zstd_pack(w, raw, s->raw_size, &packed, &packed_size);
    }
    free(raw);
    if (ret || !packed) {
        return ret;
    }
    l->owned[l->n_owned++] = packed;
    /* Later sections' pieces follow; this one shrinks to a single piece. */
    l->pieces[s->first_piece] = (Piece) { packed, packed_size, 0 };
    memmove(&l->pieces[s->first_piece + 1],
            &l->pieces[s->first_piece + s->n_pieces],
            (l->n_pieces - s->first_piece - s->n_pieces) * sizeof(Piece));
    l->n_pieces -= s->n_pieces - 1;
    s->n_pieces = 1;
    s->stored_size = packed_size;
    s->flags |= CPRS_SECTION_F_ZSTD;
    return 0;
}

static int layout_build(CprsWriter *w, Layout *l)
{
    static const uint32_t record_types[] = {
        CPRS_SECTION_FDS, CPRS_SECTION_RAMBLOCKS, CPRS_SECTION_GPA_RANGES,
        CPRS_SECTION_VFIO_DEVICES, CPRS_SECTION_DEVSTATE,
    };
    static const uint32_t indexed[] = {
        CPRS_SECTION_FDS, CPRS_SECTION_RAMBLOCKS, CPRS_SECTION_VFIO_DEVICES,
        CPRS_SECTION_DEVSTATE,
    };
    int8_t dir_of[CPRS_SECTION__MAX];
    uint64_t incompat = 0, off, end;
    uint32_t i, j, t, count, slots;
    CprsWireHeader *h = &l->header;
    uint8_t *buf;
    OutSec *s;
    size_t k;
    int ret;

    memset(dir_of, -1, sizeof(dir_of));
    l->stage_fd = w->stage_fd;

    /* spec 9: sections in type order, empty ones left out. */
    if (w->strtab.len) {
        s = sec_begin(l, CPRS_SECTION_STRTAB, 0);
        ret = add_piece(l, w->strtab.p, w->strtab.len);
        if (ret) {
            return ret;
        }
        sec_end(l, s);
    }
    for (i = 0; i < sizeof(record_types) / sizeof(record_types[0]); i++) {
        t = record_types[i];
        count = t == CPRS_SECTION_GPA_RANGES ? w->range_count :
                w->tab[t].count;
        if (!count) {
            continue;
        }
        dir_of[t] = (int8_t)l->nsec;
        s = sec_begin(l, t, count);
        ret = add_piece(l, t == CPRS_SECTION_GPA_RANGES ? w->ranges.p :
                        w->tab[t].recs.p,
                        (size_t)count * cprs_type_record_size(t));
        if (ret) {
            return ret;
        }
        sec_end(l, s);
    }
    if (w->blob_size) {
        s = sec_begin(l, CPRS_SECTION_BLOB, 0);
        off = 0;
        for (j = 0; j < w->tab[CPRS_SECTION_DEVSTATE].count; j++) {
            const CprsWireDevState *d = (const CprsWireDevState *)
                (w->tab[CPRS_SECTION_DEVSTATE].recs.p + (size_t)j * sizeof(*d));
            uint64_t data_off = cprs_le64_get(&d->data_off);

            if (!w->payloads[j].size) {
                continue;
            }
            if (data_off > off) {
                ret = add_piece(l, zero_pad, data_off - off);
                if (ret) {
                    return ret;
                }
            }
            ret = add_piece(l, w->payloads[j].data, w->payloads[j].size);
            if (ret) {
                return ret;
            }
            l->pieces[l->n_pieces - 1].stage_off = data_off;
            off = data_off + w->payloads[j].size;
        }
        if (w->blob_size > off) {
            ret = add_piece(l, zero_pad, w->blob_size - off);
            if (ret) {
                return ret;
            }
        }
        sec_end(l, s);
    }
    for (i = 0; i < sizeof(indexed) / sizeof(indexed[0]) &&
         !(w->opts.flags & CPRS_WRITER_F_NO_INDEX); i++) {
        t = indexed[i];
        if (!w->tab[t].count) {
            continue;
        }
        /* The key set is the index when it was never keyed and has the
         * size build_index() would give it (cprs_writer_expect() may have
         * made it larger). */
        if (w->tab[t].index.len &&
            (uint64_t)w->tab[t].index_mask + 1 ==
            index_slots_for(w->tab[t].count)) {
            buf = w->tab[t].index.p;
            slots = w->tab[t].index_mask + 1;
        } else {
            ret = build_index((const uint32_t *)w->tab[t].hashes.p,
                              w->tab[t].count, &buf, &slots);
            if (ret) {
                return ret;
            }
            if (!buf) {
                continue;
            }
            l->owned[l->n_owned++] = buf;
        }
        s = sec_begin(l, CPRS_SECTION_INDEX, slots);
        s->link = (uint32_t)dir_of[t];
        ret = add_piece(l, buf, (size_t)slots * CPRS_INDEX_SLOT_V1_SIZE);
        if (ret) {
            return ret;
        }
        sec_end(l, s);
    }

    /* spec 5.2: section compression when asked for and worthwhile.  Last
     * section first: shrinking one moves only the pieces after it, so the
     * first_piece of every section still to be done stays valid. */
    for (i = l->nsec; i-- > 0;) {
        if (w->opts.compress_sections & (1u << l->sec[i].type)) {
            ret = compress_section(w, l, &l->sec[i]);
            if (ret) {
                return ret;
            }
        }
    }
    /* Pieces moved if a section shrank: recompute each first_piece. */
    for (i = 0, k = 0; i < l->nsec; i++) {
        l->sec[i].first_piece = k;
        k += l->sec[i].n_pieces;
    }

    /* spec 2.3: header, directory, then each section 8-aligned. */
    off = CPRS_HEADER_V1_SIZE + (uint64_t)l->nsec * CPRS_SECTION_V1_SIZE;
    for (i = 0; i < l->nsec; i++) {
        s = &l->sec[i];
        s->offset = cprs_align_up(off);
        if (!cprs_add_ok(s->offset, s->stored_size, &end) ||
            end > CPRS_MAX_ARENA_SIZE) {
            return -E2BIG;
        }
        off = end;
        s->crc = 0;
        for (k = 0; k < s->n_pieces; k++) {
            if (s->type == CPRS_SECTION_BLOB &&
                !(s->flags & CPRS_SECTION_F_ZSTD)) {
                /* Summed up as the payloads came (staged ones too). */
                s->crc = w->blob_crc;
                break;
            }
            s->crc = cprs_crc32c(s->crc, l->pieces[s->first_piece + k].p,
                                 l->pieces[s->first_piece + k].len);
        }
        if (s->flags & CPRS_SECTION_F_ZSTD) {
            incompat |= CPRS_INCOMPAT_ZSTD;
        }
        memset(&l->dir[i], 0, sizeof(l->dir[i]));
        cprs_le32_set(&l->dir[i].type, s->type);
        cprs_le32_set(&l->dir[i].flags, s->flags);
        cprs_le64_set(&l->dir[i].offset, s->offset);
        cprs_le64_set(&l->dir[i].stored_size, s->stored_size);
        cprs_le64_set(&l->dir[i].raw_size, s->raw_size);
        cprs_le32_set(&l->dir[i].record_count, s->record_count);
        cprs_le32_set(&l->dir[i].record_size, s->record_size);
        cprs_le32_set(&l->dir[i].crc32c, s->crc);
        cprs_le32_set(&l->dir[i].link, s->link);
    }
    l->size = cprs_align_up(off);
    if (l->size > CPRS_MAX_ARENA_SIZE) {
        return -E2BIG;
    }
    for (j = 0; j < w->tab[CPRS_SECTION_DEVSTATE].count; j++) {
        const CprsWireDevState *d = (const CprsWireDevState *)
            (w->tab[CPRS_SECTION_DEVSTATE].recs.p + (size_t)j * sizeof(*d));

        if (cprs_le32_get(&d->flags) & CPRS_DEVSTATE_F_ZSTD) {
            incompat |= CPRS_INCOMPAT_ZSTD;
        }
    }

    /* spec 3: the header last, since it covers the directory. */
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, CPRS_MAGIC, CPRS_MAGIC_SIZE);
    cprs_le16_set(&h->version_major, CPRS_FORMAT_VERSION_MAJOR);
    cprs_le16_set(&h->version_minor, CPRS_FORMAT_VERSION_MINOR);
    cprs_le32_set(&h->header_size, CPRS_HEADER_V1_SIZE);
    cprs_le64_set(&h->incompat_features, incompat);
    cprs_le64_set(&h->arena_size, l->size);
    cprs_le64_set(&h->dir_offset, CPRS_HEADER_V1_SIZE);
    cprs_le32_set(&h->dir_count, l->nsec);
    cprs_le32_set(&h->dir_entry_size, CPRS_SECTION_V1_SIZE);
    cprs_le64_set(&h->generation, w->opts.generation);
    cprs_le64_set(&h->created_ns, w->opts.created_ns);
    cprs_le32_set(&h->mode, w->opts.mode);
    cprs_le32_set(&h->writer_pid, w->opts.writer_pid);
    cprs_le32_set(&h->dir_crc32c,
                  cprs_crc32c(0, l->dir, (size_t)l->nsec *
                              CPRS_SECTION_V1_SIZE));
    cprs_le32_set(&h->build_id_size, w->opts.build_id_size);
    memcpy(h->build_id, w->build_id, CPRS_BUILD_ID_MAX);
    memcpy(h->producer, w->producer, CPRS_PRODUCER_MAX);
    cprs_le32_set(&h->header_crc32c, cprs_crc32c(0, h, sizeof(*h)));
    return 0;
}

/*
 * Where the arena goes: memory pieces as batches of iovecs, staged pieces
 * as a range of the staging memfd, each at its arena offset.
 */
typedef struct Sink {
    int (*iov)(struct Sink *k, const struct iovec *iov, int n, uint64_t at);
    int (*staged)(struct Sink *k, int from, uint64_t off, uint64_t len,
                  uint64_t at);
    uint8_t *buf;           /* finish_buffer */
    int fd;                 /* finish_fd */
} Sink;

/*
 * Walk the whole arena: header, directory, sections and the zero padding
 * between them, in batches of at most 64 iovecs.
 */
static int layout_emit(const Layout *l, Sink *k)
{
    struct iovec iov[64];
    uint64_t pos = 0, batch_at = 0;
    const Piece *pc;
    uint32_t i;
    size_t j;
    int n = 0, ret;

#define FLUSH() do { \
        ret = n ? k->iov(k, iov, n, batch_at) : 0; \
        if (ret) { \
            return ret; \
        } \
        n = 0; \
        batch_at = pos; \
    } while (0)
#define PUSH(ptr, length) do { \
        if (n == (int)(sizeof(iov) / sizeof(iov[0]))) { \
            FLUSH(); \
        } \
        iov[n].iov_base = (void *)(ptr); \
        iov[n++].iov_len = (length); \
        pos += (length); \
    } while (0)

    PUSH(&l->header, sizeof(l->header));
    if (l->nsec) {
        PUSH(l->dir, (size_t)l->nsec * CPRS_SECTION_V1_SIZE);
    }
    for (i = 0; i < l->nsec; i++) {
        if (l->sec[i].offset > pos) {
            PUSH(zero_pad, l->sec[i].offset - pos);
        }
        for (j = 0; j < l->sec[i].n_pieces; j++) {
            pc = &l->pieces[l->sec[i].first_piece + j];
            if (pc->len && pc->p) {
                PUSH(pc->p, pc->len);
            } else if (pc->len) {
                FLUSH();
                ret = k->staged(k, l->stage_fd, pc->stage_off, pc->len, pos);
                if (ret) {
                    return ret;
                }
                pos += pc->len;
                batch_at = pos;
            }
        }
    }
    if (l->size > pos) {
        PUSH(zero_pad, l->size - pos);
    }
    FLUSH();
#undef PUSH
#undef FLUSH
    return 0;
}

static int buffer_iov(Sink *k, const struct iovec *iov, int n, uint64_t at)
{
    uint8_t *dst = k->buf + at;
    int i;

    for (i = 0; i < n; i++) {
        memcpy(dst, iov[i].iov_base, iov[i].iov_len);
        dst += iov[i].iov_len;
    }
    return 0;
}

static int buffer_staged(Sink *k, int from, uint64_t off, uint64_t len,
                         uint64_t at)
{
    return io_all(from, false, k->buf + at, len, off);
}

int cprs_writer_finish_buffer(CprsWriter *w, void **ret_buf,
                              size_t *ret_size)
{
    Layout l = { 0 };
    void *buf;
    int ret;

    if (!w || !ret_buf || !ret_size) {
        return -EINVAL;
    }
    ret = layout_build(w, &l);
    if (!ret && l.size > SIZE_MAX) {
        ret = -E2BIG;
    }
    if (ret) {
        layout_free(&l);
        return ret;
    }
    buf = cprs_alloc_large((size_t)l.size);
    if (!buf) {
        layout_free(&l);
        return -ENOMEM;
    }
    ret = layout_emit(&l, &(Sink) { .iov = buffer_iov,
                                    .staged = buffer_staged, .buf = buf });
    layout_free(&l);
    if (ret) {
        free(buf);
        return ret;
    }
    *ret_buf = buf;
    *ret_size = (size_t)l.size;
    return 0;
}

/* pwritev() the batch, resuming after short writes and EINTR. */
static int fd_iov(Sink *k, const struct iovec *iov_in, int n, uint64_t at)
{
    struct iovec iov[64];
    struct iovec *v = iov;
    ssize_t done;

    memcpy(iov, iov_in, (size_t)n * sizeof(*iov));
    while (n > 0) {
        done = pwritev(k->fd, v, n, (off_t)at);
        if (done < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (done == 0) {
            return -EIO;
        }
        at += (uint64_t)done;
        while (n > 0 && (size_t)done >= v->iov_len) {
            done -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (uint8_t *)v->iov_base + done;
            v->iov_len -= (size_t)done;
        }
    }
    return 0;
}

/*
 * A staged range, from memfd to memfd inside the kernel; where the output
 * cannot take copy_file_range() (another kind of file), through a bounce
 * buffer.
 */
static int fd_staged(Sink *k, int from, uint64_t off, uint64_t len,
                     uint64_t at)
{
    uint8_t bounce[65536];
    loff_t in = (loff_t)off, out = (loff_t)at;
    size_t n;
    ssize_t got;
    int ret;

    while (len) {
        got = copy_file_range(from, &in, k->fd, &out,
                              len > (1u << 30) ? (1u << 30) : (size_t)len, 0);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        len -= (uint64_t)got;
    }
    while (len) {
        n = len > sizeof(bounce) ? sizeof(bounce) : (size_t)len;
        ret = io_all(from, false, bounce, n, (uint64_t)in);
        if (!ret) {
            ret = io_all(k->fd, true, bounce, n, (uint64_t)out);
        }
        if (ret) {
            return ret;
        }
        in += (loff_t)n;
        out += (loff_t)n;
        len -= n;
    }
    return 0;
}

/*
 * Write the arena into @fd from offset 0.  A file that may hold more
 * bytes is cut to the arena's size; a fresh one (@fresh, empty) ends
 * where the last byte was written and needs no further call.
 */
static int finish_into(CprsWriter *w, int fd, bool fresh)
{
    Layout l = { 0 };
    Sink sink = { .iov = fd_iov, .staged = fd_staged, .fd = fd };
    int ret;

    if (!w || fd < 0) {
        return -EINVAL;
    }
    ret = layout_build(w, &l);
    if (!ret) {
        ret = layout_emit(&l, &sink);
    }
    if (!ret && !fresh && ftruncate(fd, (off_t)l.size) < 0) {
        ret = -errno;
    }
    layout_free(&l);
    return ret;
}

int cprs_writer_finish_fd(CprsWriter *w, int fd)
{
    return finish_into(w, fd, false);
}

/* A new memfd named @name, filled by @fill, sealed if @flags say so. */
static int memfd_fill(const char *name, uint32_t flags,
                      int (*fill)(void *ctx, int fd), void *ctx, int *ret_fd)
{
    int fd, ret;

    fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        return -errno;
    }
    ret = fill(ctx, fd);
    if (!ret && (flags & CPRS_MEMFD_F_SEAL) &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
              F_SEAL_SEAL) < 0) {
        ret = -errno;
    }
    if (ret) {
        close(fd);
        return ret;
    }
    *ret_fd = fd;
    return 0;
}

static int fill_arena(void *ctx, int fd)
{
    return finish_into(ctx, fd, true);
}

static int fill_bytes(void *ctx, int fd)
{
    const struct iovec *iov = ctx;

    return io_all(fd, true, iov->iov_base, iov->iov_len, 0);
}

int cprs_writer_finish_memfd(CprsWriter *w, const char *name, uint32_t flags,
                             int *ret_fd)
{
    if (!w || !name || !ret_fd || (flags & ~CPRS_MEMFD_F_SEAL)) {
        return -EINVAL;
    }
    return memfd_fill(name, flags, fill_arena, w, ret_fd);
}

int cprs_memfd_of_bytes(const char *name, uint32_t flags, const void *buf,
                        size_t size, int *ret_fd)
{
    struct iovec iov = { (void *)buf, size };

    return memfd_fill(name, flags, fill_bytes, &iov, ret_fd);
}
