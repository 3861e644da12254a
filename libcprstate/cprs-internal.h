/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-internal.h - private declarations shared by the library's files.
 * Not installed.  Tests include it to reach internal helpers (they link the
 * static library, where hidden symbols are still visible).
 */
#ifndef CPRS_INTERNAL_H
#define CPRS_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cprstate.h"

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

/* Index of the first byte outside the charset, or @len if none. */
CPRS_HIDDEN size_t cprs_name_bad_char(const char *s, size_t len);

/* FNV-1a over the name bytes then the four LE bytes of @id (spec 6.8.1). */
CPRS_HIDDEN uint32_t cprs_key_hash(const char *name, size_t len, uint32_t id);

/* Longest probe sequence an index may need, in slots (spec 6.8.3). */
#define CPRS_INDEX_MAX_PROBE 64u

/* ---- Reader ------------------------------------------------------------ */

typedef struct CprsSec {
    /* Directory fields, validated at open. */
    uint32_t type;
    uint32_t flags;
    uint64_t offset;
    uint64_t stored_size;
    uint64_t raw_size;
    uint32_t record_count;
    uint32_t record_size;
    uint32_t crc32c;
    uint32_t link;
    uint64_t entry_offset;
    /* Lazy state: raw bytes once CRC-checked (and decompressed). */
    const uint8_t *data;
    uint8_t *owned;
} CprsSec;

struct CprsReader {
    const uint8_t *base;        /* arena start */
    uint64_t size;              /* arena_size */
    void *map;                  /* munmap() on close, or NULL */
    size_t map_len;
    void *owned;                /* free() on close, or NULL */
    CprsReaderOpts opts;        /* limits filled in */
    CprsArenaInfo info;
    bool lenient;               /* arena minor newer than ours (spec 8.4) */
    uint32_t nsec;
    uint32_t entry_size;        /* dir_entry_size */
    uint64_t dir_end;           /* dir_offset + nsec * entry_size */
    CprsSec sec[CPRS_MAX_SECTIONS];
    int8_t by_type[CPRS_SECTION__MAX];   /* directory index or -1 */
    int8_t index_of[CPRS_SECTION__MAX];  /* INDEX section for a type, -1 */
    void **payload_cache;       /* decompressed devstate payloads */
    CprsDiag last;
};

/* Record a failure of an accessor in @r->last and return @error. */
CPRS_HIDDEN int cprs_reader_fail(CprsReader *r, int error, uint64_t offset,
                                 int32_t section, int64_t record,
                                 const char *clause, const char *reason);

/* Raw bytes of directory entry @idx: CRC checked, decompressed (spec 4.7). */
CPRS_HIDDEN int cprs_sec_data(CprsReader *r, uint32_t idx,
                              const uint8_t **ret_data);

/* Directory index of the section of @type, or -1. */
static inline int cprs_sec_find(const CprsReader *r, uint32_t type)
{
    return type < CPRS_SECTION__MAX ? r->by_type[type] : -1;
}

/* Record count of the section of @type, 0 if absent. */
CPRS_HIDDEN uint32_t cprs_rec_count(const CprsReader *r, uint32_t type);

/*
 * Pointer to record @i of the section of @type; fills *@ret_sec with the
 * directory index and *@ret_off with the record's arena offset for
 * diagnostics.
 */
CPRS_HIDDEN int cprs_rec_get(CprsReader *r, uint32_t type, uint32_t i,
                             const uint8_t **ret_rec, int *ret_sec,
                             uint64_t *ret_off);

/* Resolve a string reference (spec 6.1.1). */
CPRS_HIDDEN int cprs_str_get(CprsReader *r, const CprsWireStr *ref,
                             uint64_t ref_off, int sec, int64_t rec,
                             const char **ret_str, uint32_t *ret_len);

/* Key of record @i of an indexable section. */
CPRS_HIDDEN int cprs_rec_key(CprsReader *r, uint32_t type, uint32_t i,
                             const char **ret_name, uint32_t *ret_len,
                             uint32_t *ret_id);

/* Whether @type records carry a (name, id) key (spec 6.8). */
static inline bool cprs_type_indexable(uint32_t type)
{
    return type == CPRS_SECTION_FDS || type == CPRS_SECTION_RAMBLOCKS ||
           type == CPRS_SECTION_VFIO_DEVICES ||
           type == CPRS_SECTION_DEVSTATE;
}

/* The v1 record size of a record section type, 0 for byte sections. */
CPRS_HIDDEN uint32_t cprs_type_record_size(uint32_t type);

/*
 * Look up (@name, @id) among records of @type: via its index (at most
 * CPRS_INDEX_MAX_PROBE slots), else linearly.  Returns 0, -ENOENT, -EBADMSG.
 */
CPRS_HIDDEN int cprs_lookup(CprsReader *r, uint32_t type, const char *name,
                            uint32_t id, uint32_t *ret_index);

/* Payload framing and decompression (spec 5.3). */
CPRS_HIDDEN int cprs_zstd_decompress_exact(const uint8_t *src,
                                           uint64_t src_size, uint8_t *dst,
                                           uint64_t dst_size,
                                           const char **ret_reason);

#endif /* CPRS_INTERNAL_H */
