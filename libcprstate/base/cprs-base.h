/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-base.h - the bottom layer, private: overflow-safe arithmetic,
 * sized opts/info structs, diagnostics, CRC32C, names and key hashes, the
 * bounds-checked cursor.  Everything above includes it; it includes
 * nothing of the library but the public header.
 */
#ifndef CPRS_BASE_H
#define CPRS_BASE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The library implements its experimental API too. */
#define CPRS_EXPERIMENTAL
#include "cprstate.h"
#include "cprs-work.h"

#define CPRS_HIDDEN __attribute__((visibility("hidden")))

#define CPRS_STRINGIFY_(x) #x
#define CPRS_STRINGIFY(x) CPRS_STRINGIFY_(x)

/* ---- Overflow-safe arithmetic (STYLE 4) -------------------------------- */

static inline bool cprs_add_ok(uint64_t a, uint64_t b, uint64_t *ret)
{
    return !__builtin_add_overflow(a, b, ret);
}

static inline bool cprs_mul_ok(uint64_t a, uint64_t b, uint64_t *ret)
{
    return !__builtin_mul_overflow(a, b, ret);
}

/*
 * Does [off, off + len) lie inside [0, total)?  Checks the offset first,
 * then compares the length with the remaining bytes, so nothing overflows.
 */
static inline bool cprs_range_ok(uint64_t total, uint64_t off, uint64_t len)
{
    return off <= total && len <= total - off;
}

static inline bool cprs_is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static inline bool cprs_aligned(uint64_t v)
{
    return !(v & (CPRS_ALIGN - 1));
}

static inline uint64_t cprs_align_up(uint64_t v)
{
    return (v + CPRS_ALIGN - 1) & ~(uint64_t)(CPRS_ALIGN - 1);
}

/* ---- Opts and info structs with a leading size (STYLE 6) -------------- */

/*
 * Copy a caller's sized struct into @dst (zeroed, @known bytes): accept a
 * shorter one (defaults for the rest) and a longer one only when its
 * unknown tail is zero.  @src may be NULL (all defaults).
 */
CPRS_HIDDEN int cprs_opts_copy(void *dst, size_t known, const void *src);

/* Fill a caller's sized info struct from @src, up to min(sz, known). */
CPRS_HIDDEN int cprs_info_fill(void *dst, const void *src, size_t known);

/* ---- Diagnostics ------------------------------------------------------- */

/* Fill @diag (may be NULL) and return @error. */
CPRS_HIDDEN int cprs_diag_set(CprsDiag *diag, int error, uint64_t offset,
                              int32_t section, int64_t record,
                              const char *clause, const char *reason);

/* ---- CRC32C ------------------------------------------------------------ */

CPRS_HIDDEN uint32_t cprs_crc32c_sw(uint32_t crc, const void *buf,
                                    size_t len);
/* Hardware path; only call when cprs_crc32c_hw_available(). */
CPRS_HIDDEN uint32_t cprs_crc32c_hw(uint32_t crc, const void *buf,
                                    size_t len);
CPRS_HIDDEN bool cprs_crc32c_hw_available(void);

/* ---- Strings and keys -------------------------------------------------- */

/* Name charset (spec 6.1.2): printable ASCII 0x20..0x7e. */
static inline bool cprs_name_char_ok(uint8_t c)
{
    return c >= 0x20 && c <= 0x7e;
}

/*
 * A name a record may carry (spec 6.1.2, 7): 1..CPRS_MAX_NAME_LEN bytes
 * of printable ASCII.  Returns 0 and its length, or -EINVAL.
 */
CPRS_HIDDEN int cprs_name_check(const char *name, size_t *ret_len);

/* Index of the first byte outside the charset, or @len if none. */
CPRS_HIDDEN size_t cprs_name_bad_char(const char *s, size_t len);

/* FNV-1a over the name bytes then the four LE bytes of @id (spec 6.8.1). */
CPRS_HIDDEN uint32_t cprs_key_hash(const char *name, size_t len, uint32_t id);
/* The same in two steps: the name part, then the id part. */
CPRS_HIDDEN uint32_t cprs_name_hash(const char *name, size_t len);
/* spec 6.8.1: the id follows the name as four little-endian bytes. */
static inline uint32_t cprs_key_hash_id(uint32_t name_hash, uint32_t id)
{
    uint32_t h = name_hash;

    h = (h ^ (id & 0xff)) * CPRS_FNV32_PRIME;
    h = (h ^ ((id >> 8) & 0xff)) * CPRS_FNV32_PRIME;
    h = (h ^ ((id >> 16) & 0xff)) * CPRS_FNV32_PRIME;
    return (h ^ (id >> 24)) * CPRS_FNV32_PRIME;
}

/* Longest probe sequence an index may need, in slots (spec 6.8.3). */
#define CPRS_INDEX_MAX_PROBE 64u

/* ---- Large buffers (common.c) ------------------------------------------ */

/*
 * malloc() for a buffer of @size bytes that the caller fills at once.
 * From 2 MiB on, the buffer is 2 MiB-aligned and transparent huge pages
 * are asked for (the "madvise" mode of most distributions): one page
 * fault per 2 MiB instead of 512.  On a virtual machine a fault costs
 * microseconds, so filling fresh memory otherwise costs more than the
 * work done in it.  Freed with free().  Returns NULL on failure.
 */
CPRS_HIDDEN void *cprs_alloc_large(size_t size);

/* cprs_alloc_large(), zeroed (calloc() below 2 MiB). */
CPRS_HIDDEN void *cprs_alloc_large_zero(size_t size);

/* The huge page size of x86-64, and of arm64 with 4 KiB pages. */
#define CPRS_HUGE_PAGE_SIZE ((size_t)2 << 20)

/*
 * CprsRoom: a large array that grows in place.  Its address range is
 * reserved once (PROT_NONE: no memory, nothing charged to the commit
 * limit), 2 MiB-aligned with transparent huge pages asked for, and
 * growing makes more of it writable.  Nothing is copied and no page is
 * faulted twice, where doubling by realloc() copies the bytes into fresh
 * pages at each step.  A zeroed CprsRoom is empty.
 */
typedef struct CprsRoom {
    uint8_t *p;             /* the array, or NULL */
    size_t cap;             /* bytes writable from p */
    size_t reserved;        /* bytes reserved from p */
    void *map;              /* the whole mapping, for munmap() */
    size_t map_len;
} CprsRoom;

/*
 * Make at least @need bytes of @r writable (a power-of-two multiple of
 * 2 MiB), keeping its bytes; bytes never written read as zero.  Past its
 * reservation (eight times the writable size, at least 64 MiB) the array
 * moves into a new one.  Counted as an allocation.  Returns 0 or -ENOMEM
 * (no address space: the caller may fall back to malloc()), @r
 * unchanged.
 */
CPRS_HIDDEN int cprs_room_grow(CprsRoom *r, size_t need);

/* Unmap @r and empty it. */
CPRS_HIDDEN void cprs_room_free(CprsRoom *r);

/* ---- Containers (table.c): growable arrays, the one hash table -------- */

/*
 * Make room for @need elements of @elem bytes in an array of *@cap
 * elements, doubling from @first; @pp is the address of the array's
 * pointer (of any type), replaced on success.  On failure nothing
 * changes.  Counted as an allocation (CPRS_WORK_ALLOC).  Returns 0,
 * -E2BIG (more than @max elements, or more than SIZE_MAX bytes) or
 * -ENOMEM.
 */
CPRS_HIDDEN int cprs_grow(void *pp, size_t *cap, size_t need, size_t elem,
                          size_t first, size_t max);

/*
 * CprsTable: an index from keys to values (uint32_t, below UINT32_MAX),
 * the one hash table of the library.  The caller keeps its records in an
 * array of its own and the table maps a key to a record number; the
 * caller compares keys (CprsTableEq), the table only sees hashes.
 *
 * Open addressing with linear probing, at most half full.  Hashes are
 * keyed (SipHash-1-3) with a secret seed of the table's own, so that
 * input cannot be built to collide: no record's slot lies more than
 * CPRS_TABLE_MAX_PROBE slots past its home after a cprs_table_reserve()
 * (the table grows to keep it so), and a lookup looks at no more slots
 * than the longest such distance.  Deletion shifts the entries that
 * follow back into the hole (no tombstones), so slots are reused and a
 * table's size follows its count, not the history of its operations.
 *
 * Work: every slot looked at is counted (CPRS_WORK_PROBES), every table
 * allocated (CPRS_WORK_ALLOC).
 */
#define CPRS_TABLE_MAX_PROBE 32u

typedef struct CprsTableSlot {
    uint32_t hash;
    uint32_t val;               /* value + 1; 0: empty */
} CprsTableSlot;

typedef struct CprsTable {
    CprsTableSlot *slot;
    uint32_t mask;              /* slots - 1 (a power of two), 0: none */
    uint32_t count;             /* values held */
    uint32_t reach;             /* no entry lies further from its home */
    uint64_t seed[2];
} CprsTable;

/* A key as the library's records carry it: a name and an id. */
typedef struct CprsTableKey {
    const char *name;
    size_t len;
    uint32_t id;
} CprsTableKey;

/* Is (@name, @len, @id) the key @k? */
static inline bool cprs_key_is(const CprsTableKey *k, const char *name,
                               size_t len, uint32_t id)
{
    return id == k->id && len == k->len && !memcmp(name, k->name, len);
}

/* Does the record numbered @val have the key @key? */
typedef bool (*CprsTableEq)(const void *ctx, uint32_t val,
                            const CprsTableKey *key);

/* An empty table with a fresh seed; allocates nothing. */
CPRS_HIDDEN void cprs_table_init(CprsTable *t);
/* Free the slots; the table is then empty (and may be used again). */
CPRS_HIDDEN void cprs_table_free(CprsTable *t);
/* Forget every entry, keeping the slots. */
CPRS_HIDDEN void cprs_table_clear(CprsTable *t);

/* The table's hash of the key (@name, @len bytes; @id). */
CPRS_HIDDEN uint32_t cprs_table_hash(const CprsTable *t, const char *name,
                                     size_t len, uint32_t id);

/*
 * Room for @more puts: after success, that many cprs_table_put() calls
 * cannot fail.  Returns 0, -E2BIG or -ENOMEM (the table unchanged).
 */
CPRS_HIDDEN int cprs_table_reserve(CprsTable *t, uint32_t more);

/* The value stored under @hash whose key @eq says is @key, or -1. */
CPRS_HIDDEN int64_t cprs_table_find(const CprsTable *t, uint32_t hash,
                                    CprsTableEq eq, const void *ctx,
                                    const CprsTableKey *key);

/* Store @val under @hash; needs room from cprs_table_reserve(). */
CPRS_HIDDEN void cprs_table_put(CprsTable *t, uint32_t hash, uint32_t val);

/* Remove the entry (@hash, @val); false if there is none. */
CPRS_HIDDEN bool cprs_table_del(CprsTable *t, uint32_t hash, uint32_t val);

/* ---- Cursor (cursor.c) ------------------------------------------------ */

/*
 * A bounds-checked cursor over untrusted bytes (STYLE 4).  Invariant:
 * pos <= len.  Every helper compares the size it needs with the bytes
 * left (by subtraction) before it forms a pointer or moves; on failure it
 * leaves the cursor where it was.
 */
typedef struct CprsCursor {
    const uint8_t *base;
    size_t len;
    size_t pos;
} CprsCursor;

CPRS_HIDDEN void cprs_cursor_init(CprsCursor *c, const void *base,
                                  size_t len);

/* Bytes not yet consumed. */
static inline size_t cprs_cursor_left(const CprsCursor *c)
{
    return c->len - c->pos;
}

/* Consume @n bytes; *@ret_p points at them (formed after the check). */
CPRS_HIDDEN bool cprs_cursor_take(CprsCursor *c, size_t n,
                                  const uint8_t **ret_p);
CPRS_HIDDEN bool cprs_cursor_skip(CprsCursor *c, size_t n);
CPRS_HIDDEN bool cprs_cursor_read_u8(CprsCursor *c, uint8_t *ret_v);
/* Byte @ahead positions past pos, without consuming anything. */
CPRS_HIDDEN bool cprs_cursor_peek_u8(const CprsCursor *c, size_t ahead,
                                     uint8_t *ret_v);
CPRS_HIDDEN bool cprs_cursor_read_be32(CprsCursor *c, uint32_t *ret_v);

#endif /* CPRS_BASE_H */
