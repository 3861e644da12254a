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
CPRS_HIDDEN uint32_t cprs_key_hash_id(uint32_t name_hash, uint32_t id);

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
    uint32_t dir_crc32c;        /* from the header copy */
    CprsWireSection dir_copy[CPRS_MAX_SECTIONS];  /* entries, read once */
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

/* Does @src start with a zstd skippable frame (spec 5.3 rule 5)? */
CPRS_HIDDEN bool cprs_zstd_is_skippable(const uint8_t *src,
                                        uint64_t src_size);

/*
 * cprs_fd_identify() that recognises memfds by @memfd_dev (from
 * cprs_memfd_dev(); 0: by their /proc link) instead of a readlink().
 */
CPRS_HIDDEN int cprs_fd_identify_dev(int fd, CprsFdInfo *info,
                                     uint64_t memfd_dev);
/*
 * Identity of @fd now (fstat, seals), keeping @known_kind when the file is
 * still (@known_dev, @known_ino); classifies afresh otherwise, or when
 * @known_kind is CPRS_FD_KIND__MAX.
 */
CPRS_HIDDEN int cprs_fd_refresh(int fd, CprsFdInfo *info,
                                uint32_t known_kind, uint64_t known_dev,
                                uint64_t known_ino, uint64_t memfd_dev);
/* st_dev of memfds in this kernel, or 0 if it cannot be learned. */
CPRS_HIDDEN uint64_t cprs_memfd_dev(void);

/*
 * sendmsg() all @len bytes of @buf, with @nfds fds (at most 253; may be 0)
 * attached by SCM_RIGHTS to the first byte accepted; MSG_NOSIGNAL, EINTR
 * retried.  Returns 0 or -errno.
 */
CPRS_HIDDEN int cprs_send_with_fds(int sock, const uint8_t *buf, size_t len,
                                   const int *fds, uint32_t nfds);

/* Payload framing and decompression (spec 5.3). */
CPRS_HIDDEN int cprs_zstd_decompress_exact(const uint8_t *src,
                                           uint64_t src_size, uint8_t *dst,
                                           uint64_t dst_size,
                                           const char **ret_reason);

/* ==== Cursor and legacy QCPR stream (cursor.c, legacy*.c) ============== */

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

/* "QCPR" as QEMU writes it: a big-endian 32-bit word (qemu-legacy L3.1). */
#define CPRS_LEGACY_MAGIC_BE 0x51435052u
/* Name of the only subsection QEMU defines, without a NUL (L5.3). */
#define CPRS_LEGACY_VFIO_NAME "CprState/vfio devices"
#define CPRS_LEGACY_VFIO_NAME_LEN 21u
/* Prefix every subsection of the CprState description carries (L5.2). */
#define CPRS_LEGACY_STATE_NAME "CprState"
#define CPRS_LEGACY_STATE_NAME_LEN 8u
/* The service byte QEMU sends with each fd (L4.7). */
#define CPRS_LEGACY_FD_BYTE 0x20u
/* Stream offset of a record built by the caller (it has none). */
#define CPRS_LEGACY_NO_OFFSET UINT64_MAX

/*
 * One record of either list.  fd list: @id is QEMU's cpr id and @fd the fd.
 * vfio list: @id is the iommufd devid; @ioas_id and @hwpt_id follow it.
 */
typedef struct CprsLegacyRec {
    size_t name_off;        /* into CprsLegacy.names */
    uint32_t name_len;      /* bytes, excluding the NUL */
    int32_t id;
    int32_t fd;             /* fd list only; -1 when unknown */
    uint32_t ioas_id;
    uint32_t hwpt_id;
    uint32_t hash;          /* of the key, for the index */
    bool owned;             /* @fd was received and belongs to the handle */
    uint64_t offset;        /* marker byte, or CPRS_LEGACY_NO_OFFSET */
} CprsLegacyRec;

/* Records in stream order plus a hash index of their keys. */
typedef struct CprsLegacyList {
    CprsLegacyRec *rec;
    uint32_t count;
    uint32_t cap;
    uint32_t *slots;        /* record index + 1; 0 = empty */
    uint32_t nslots;        /* power of two, or 0 */
    bool key_has_id;        /* key is (name, id), else the name alone */
} CprsLegacyList;

struct CprsLegacy {
    uint32_t mode;          /* CPRS_MODE_EXEC or CPRS_MODE_TRANSFER */
    uint32_t vfio_form;     /* CPRS_LEGACY_VFIO_FULL, _STUB or _NONE */
    uint32_t flags;         /* CPRS_LEGACY_F_* given at decode */
    uint32_t max_records;
    CprsLegacyList fds;
    CprsLegacyList vfio;
    char *names;            /* NUL-terminated names, back to back */
    size_t names_len;
    size_t names_cap;
    CprsDiag *warnings;
    uint32_t n_warnings;
    uint32_t cap_warnings;
    uint64_t size;          /* bytes decoded, trailing bytes excluded */
    uint64_t trailing;      /* bytes ignored after the stream (lenient) */
};

/*
 * fds received with a cpr-transfer stream, in arrival order (L8.3).
 * @at[i] is how many stream bytes had arrived before fd i came; an entry
 * is set to -1 once a record has claimed it.
 */
typedef struct CprsLegacyFdQueue {
    int *fd;
    uint64_t *at;
    uint32_t count;
    uint32_t head;          /* oldest unclaimed entry */
} CprsLegacyFdQueue;

/* A new, empty handle: mode and form unset, limits at their defaults. */
CPRS_HIDDEN int cprs_legacy_alloc(CprsLegacy **ret_legacy);

/*
 * Append a record to @list, copying @len name bytes (no NUL among them)
 * and adding the NUL.  On failure nothing changed.  Returns 0, -E2BIG
 * (over max_records or the name pool) or -ENOMEM.
 */
CPRS_HIDDEN int cprs_legacy_rec_add(CprsLegacy *lg, CprsLegacyList *list,
                                    const char *name, uint32_t len,
                                    const CprsLegacyRec *fields,
                                    uint32_t *ret_index);

static inline const char *cprs_legacy_rec_name(const CprsLegacy *lg,
                                               const CprsLegacyRec *rec)
{
    return lg->names + rec->name_off;
}

/* Index of the first record with this key, or -1 (L4.9); O(1). */
CPRS_HIDDEN int64_t cprs_legacy_lookup(const CprsLegacy *lg,
                                       const CprsLegacyList *list,
                                       const char *name, uint32_t len,
                                       int32_t id);

/* Copy caller opts, check them, fill defaults (0: as documented). */
CPRS_HIDDEN int cprs_legacy_opts_get(CprsLegacyOpts *dst,
                                     const CprsLegacyOpts *src);

/*
 * Decode @len bytes.  @queue is NULL for a plain buffer (transfer records
 * get fd -1); with a queue, each service byte claims the oldest fd that
 * had arrived by then, as QEMU does (L8.3).
 */
CPRS_HIDDEN int cprs_legacy_parse(const uint8_t *buf, size_t len,
                                  const CprsLegacyOpts *opts,
                                  CprsLegacyFdQueue *queue, CprsDiag *diag,
                                  CprsLegacy **ret_legacy);

/* Record a warning (kept up to CPRS_LEGACY_MAX_WARNINGS). */
CPRS_HIDDEN int cprs_legacy_warn(CprsLegacy *lg, uint64_t offset,
                                 int64_t record, const char *clause,
                                 const char *reason);

#endif /* CPRS_INTERNAL_H */
