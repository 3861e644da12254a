/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cprs-reader.h - the reader layer, private: the arena reader's handle and
 * section access, and QEMU's legacy stream as decoded.  Builds on
 * cprs-base.h only; the writer and the handover layer build on it.
 */
#ifndef CPRS_READER_H
#define CPRS_READER_H

#include "cprs-base.h"

/* ---- Reader ------------------------------------------------------------ */

/*
 * Files of the arena reader and who calls whom (a DAG: no file calls a
 * file above it; tests/check-reader-calls.py checks it on the objects):
 *
 *   verify.c                      the deep pass (spec 8.2)
 *   fd.c ramblock.c device.c      records: decode, check, access
 *   payload.c                     device state and its payload cache
 *   index.c                       keys and lookups (spec 6.8)
 *   open.c                        header, directory, sources (spec 8.1)
 *   section.c                     section bytes, records, strings, budget
 *   frame.c                       the zstd frame rules (spec 5.3)
 */

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
    /* Lazy state: raw bytes once CRC-checked (and decompressed)... */
    const uint8_t *data;
    uint8_t *owned;
    /* ...or the first failure, kept so that it is not paid again. */
    int err;
    CprsDiag err_diag;
} CprsSec;

/*
 * The verdict of a rule that spans a whole section (spec 6.3.7, 6.6.5),
 * checked once, on the first access that needs it, and kept, failure
 * included, so that every later access pays nothing for it.
 */
typedef struct CprsRule {
    bool done;
    int err;
    CprsDiag diag;
} CprsRule;

/*
 * A name reference of CPRS_NAME_MEMO_MIN bytes or more, checked once
 * (spec 6.1.1, 6.1.2) and hashed once (spec 6.8.1), whatever the number
 * of records that carry it: kept in CprsReader.names.
 */
typedef struct CprsNameMemo {
    uint32_t off;
    uint32_t len;
    uint32_t hash;          /* cprs_name_hash(), when !bad */
    uint32_t bad;           /* 1: a byte outside 6.1.2 */
} CprsNameMemo;

/*
 * Shorter names are checked on each access: that costs no more than
 * reading the record that refers to them (spec 8.7).
 */
#define CPRS_NAME_MEMO_MIN 64u
/* Bytes charged to the budget per entry of the name memo's capacity:
 * the entry and up to 8 table slots of 8 bytes, twice while it grows. */
#define CPRS_NAME_MEMO_COST 144u
/* Bytes charged per record (4 at least) for a lookup table (spec 6.8):
 * fewer than 4 slots of 8 bytes a record. */
#define CPRS_KEYTAB_COST 32u

/* A devstate payload decompressed for cprs_reader_devstate_data(). */
typedef struct CprsPayloadSlot {
    void *data;
    const char *reason;     /* of its first failure, kept like CprsSec's */
    int err;
} CprsPayloadSlot;

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
    CprsPayloadSlot *payloads;  /* one per DEVSTATE record, or NULL */
    uint64_t kept;              /* bytes kept for accessors (spec 7.1) */
    CprsRule ds_order;          /* DEVSTATE payload order (6.6.5) */
    CprsRule ram_ranges;        /* RAMBLOCKS range claims (6.3.7) */
    /* Lookup tables of the sections without an index (spec 6.8), built
     * on the first lookup: 0 not yet, 1 built, -1 scan (over the budget),
     * -2 failed (the failure kept in keytab_fail). */
    int8_t keytab_state[CPRS_SECTION__MAX];
    CprsTable keytab[CPRS_SECTION__MAX];
    CprsRule keytab_fail[CPRS_SECTION__MAX];
    /* Long names checked once per distinct (off, len) (cprs_str_get()). */
    CprsTable name_index;
    CprsNameMemo *names;
    size_t names_cap;
    uint32_t names_count;
    bool names_full;            /* the budget allows no more entries */
    /* The last string reference found valid, so that records sharing a
     * name (spec 9.4) resolve it once: off, len, and the name's hash. */
    uint32_t memo_off;
    uint32_t memo_len;          /* 0: none */
    uint32_t memo_hash;
    bool memo_hashed;           /* memo_hash computed */
    /* A zstd decoder kept between frames (frame.c), or NULL: creating
     * one costs microseconds (libzstd asks the CPU for its features). */
    void *zstd_idle;
    CprsDiag last;
};

/* What a zstd decoder needs besides its history and blocks (frame.c);
 * also the most an idle decoder may hold between frames. */
#define CPRS_FRAME_CTX_COST (UINT64_C(256) << 10)

/* Where cprs_frame_decode() hands each piece of output, in order. */
typedef void (*CprsFrameSink)(void *opaque, const uint8_t *p, size_t n);

/* ---- section.c: bytes, records, strings, the budget ------------------- */

/* Record a failure of an accessor in @r->last and return @error. */
CPRS_HIDDEN int cprs_reader_fail(CprsReader *r, int error, uint64_t offset,
                                 int32_t section, int64_t record,
                                 const char *clause, const char *reason);

/* Refuse -E2BIG (spec 7.1) when @used + @n would pass the reader's memory
 * budget; the failure is recorded in @r->last. */
CPRS_HIDDEN int cprs_budget_check(CprsReader *r, uint64_t used, uint64_t n,
                                  uint64_t offset, int32_t section,
                                  int64_t record);

/* The v1 record size of a record section type, 0 for byte sections. */
CPRS_HIDDEN uint32_t cprs_type_record_size(uint32_t type);

/* Whether @type records carry a (name, id) key (spec 6.8). */
static inline bool cprs_type_indexable(uint32_t type)
{
    return type == CPRS_SECTION_FDS || type == CPRS_SECTION_RAMBLOCKS ||
           type == CPRS_SECTION_VFIO_DEVICES ||
           type == CPRS_SECTION_DEVSTATE;
}

/* Directory index of the section of @type, or -1. */
static inline int cprs_sec_find(const CprsReader *r, uint32_t type)
{
    return type < CPRS_SECTION__MAX ? r->by_type[type] : -1;
}

/* Record count of the section of @type, 0 if absent. */
static inline uint32_t cprs_rec_count(const CprsReader *r, uint32_t type)
{
    int idx = cprs_sec_find(r, type);

    return idx < 0 ? 0 : r->sec[idx].record_count;
}

/*
 * Raw bytes of directory entry @idx (spec 4.7, 5.2): CRC checked (unless
 * the reader was opened with NO_CRC, or @crc_checked says the caller did
 * it), decompressed and kept within the budget.  Success and failure are
 * both kept: the second call costs nothing either way (except -ENOMEM,
 * which is not a property of the arena).
 */
CPRS_HIDDEN int cprs_sec_load(CprsReader *r, uint32_t idx, bool crc_checked,
                              const uint8_t **ret_data);

static inline int cprs_sec_data(CprsReader *r, uint32_t idx,
                                const uint8_t **ret_data)
{
    return cprs_sec_load(r, idx, false, ret_data);
}

/* Checks a section-wide rule over the raw records of section @sec. */
typedef int (*CprsRuleCheck)(CprsReader *r, int sec, const uint8_t *data);

/*
 * Rule @rule of section @sec, decided by @check once, on first access, in
 * O(r) (spec 6.3.7, 6.6.5): its verdict is kept, a failure with its
 * diagnostic, so that every later access pays nothing for it.  A section
 * that cannot be read keeps its own verdict.
 */
static inline int cprs_rule_run(CprsReader *r, CprsRule *rule, int sec,
                                CprsRuleCheck check)
{
    const uint8_t *data;
    int ret;

    if (rule->done) {
        if (rule->err) {
            r->last = rule->diag;
        }
        return rule->err;
    }
    ret = cprs_sec_data(r, (uint32_t)sec, &data);
    if (ret) {
        return ret;
    }
    CPRS_WORK_ADD(CPRS_WORK_SCAN_BYTES, r->sec[sec].raw_size);
    ret = check(r, sec, data);
    rule->done = true;
    rule->err = ret;
    if (ret) {
        rule->diag = r->last;
    }
    return ret;
}

/*
 * Decompress section @idx (after cprs_sec_frame()) into a new buffer that
 * only the caller holds: full verification's copy when the accessors'
 * share of the budget is spent.  A failure is kept like cprs_sec_load()'s.
 */
CPRS_HIDDEN int cprs_sec_decode_own(CprsReader *r, uint32_t idx,
                                    uint8_t **ret_buf);

/* Lend @data as section @idx's raw bytes until cprs_sec_unlend(). */
CPRS_HIDDEN void cprs_sec_lend(CprsReader *r, uint32_t idx,
                               const uint8_t *data);
CPRS_HIDDEN void cprs_sec_unlend(CprsReader *r, uint32_t idx);

/* Free every section and payload buffer of @r (cprs_reader_close()). */
CPRS_HIDDEN void cprs_sec_release_all(CprsReader *r);

/*
 * Pointer to record @i of the section of @type; fills *@ret_sec with the
 * directory index and *@ret_off with the record's arena offset for
 * diagnostics.
 */
CPRS_HIDDEN int cprs_rec_get(CprsReader *r, uint32_t type, uint32_t i,
                             const uint8_t **ret_rec, int *ret_sec,
                             uint64_t *ret_off);

/* cprs_str_get() when the reference is not the one found valid last. */
CPRS_HIDDEN int cprs_str_resolve(CprsReader *r, const CprsWireStr *ref,
                                 uint64_t ref_off, int sec, int64_t rec,
                                 const char **ret_str, uint32_t *ret_len);

/*
 * The hash of the string the last successful cprs_str_get() returned
 * (@str, @len), computed once per distinct reference.
 */
static inline uint32_t cprs_str_hash_last(CprsReader *r, const char *str,
                                          uint32_t len)
{
    if (!r->memo_hashed) {
        r->memo_hash = cprs_name_hash(str, len);
        r->memo_hashed = true;
    }
    return r->memo_hash;
}

/*
 * Resolve a string reference (spec 6.1.1, 6.1.2).  *@ret_hash, when not
 * NULL, receives the FNV-1a hash of the name's bytes (cprs_name_hash()).
 * Records of one device share a name (spec 9.4): the reference found
 * valid last is remembered, and the same one again costs a comparison
 * (the table's bytes do not change while it is held, spec 8.5).
 */
static inline int cprs_str_get(CprsReader *r, const CprsWireStr *ref,
                               uint64_t ref_off, int sec, int64_t rec,
                               const char **ret_str, uint32_t *ret_len,
                               uint32_t *ret_hash)
{
    uint32_t off = cprs_le32_get(&ref->off);
    uint32_t len = cprs_le32_get(&ref->len);
    int st = r->by_type[CPRS_SECTION_STRTAB];
    int ret = 0;

    if (len && len == r->memo_len && off == r->memo_off && st >= 0 &&
        r->sec[st].data) {
        *ret_str = (const char *)r->sec[st].data + off;
        *ret_len = len;
    } else {
        ret = cprs_str_resolve(r, ref, ref_off, sec, rec, ret_str, ret_len);
    }
    if (!ret && ret_hash) {
        *ret_hash = cprs_str_hash_last(r, *ret_str, len);
    }
    return ret;
}

/*
 * Full verification's access to a compressed section (CRC checked by the
 * caller): frame rules 1, 2 and 5, then *@ret_cost is what decoding it
 * costs besides its output.  A failure is kept like cprs_sec_load()'s.
 */
CPRS_HIDDEN int cprs_sec_frame(CprsReader *r, uint32_t idx,
                               uint64_t *ret_cost);

/* Decode section @idx (after cprs_sec_frame()) through a window, each
 * piece to @sink; a failure is kept like cprs_sec_load()'s. */
CPRS_HIDDEN int cprs_sec_stream(CprsReader *r, uint32_t idx,
                                CprsFrameSink sink, void *opaque);

/* ---- frame.c: the zstd frame rules (spec 5.3) -------------------------- */

/* Does @src start with a zstd skippable frame (spec 5.3 rule 5)? */
CPRS_HIDDEN bool cprs_frame_is_skippable(const uint8_t *src,
                                         uint64_t src_size);

/*
 * Rules 1, 2 and 5 on the frame header: one frame of exactly @src_size
 * bytes declaring @raw_size bytes of content.  *@ret_cost receives what
 * decoding it costs besides its output: min(window, raw_size), two
 * blocks and the decoder (rule 4).  Returns 0, -EBADMSG (with a reason)
 * or -EPROTONOSUPPORT (built without zstd).
 */
CPRS_HIDDEN int cprs_frame_check(const uint8_t *src, uint64_t src_size,
                                 uint64_t raw_size, uint64_t *ret_cost,
                                 const char **ret_reason);

/*
 * Rule 3: decode a frame that passed cprs_frame_check() into @dst
 * (@raw_size bytes), or, with @dst NULL, through a small window of its
 * own; either way each piece of output also goes to @sink when not NULL.
 * @idle is where a decoder waits between frames (the reader's): one
 * is taken from there, or created, and put back after the frame if it
 * holds at most CPRS_FRAME_CTX_COST bytes, else freed (spec 7.1).
 * Returns 0, -EBADMSG (with a reason), -ENOMEM or -EPROTONOSUPPORT.
 */
CPRS_HIDDEN int cprs_frame_decode(void **idle, const uint8_t *src,
                                  uint64_t src_size, uint64_t raw_size,
                                  uint8_t *dst, CprsFrameSink sink,
                                  void *opaque, const char **ret_reason);

/* Free the decoder waiting at @idle, if any; *@idle becomes NULL. */
CPRS_HIDDEN void cprs_frame_idle_free(void **idle);

/* ---- index.c: keys and lookups (spec 6.8) ----------------------------- */

/*
 * The key fields of a wire record of an indexable @type: its name
 * reference (every indexable record starts with it) and its id (the fd's
 * id, the payload's instance_id, else 0).  Shared by the writer.
 */
static inline const CprsWireStr *cprs_wire_key(uint32_t type,
                                               const uint8_t *rec,
                                               uint32_t *ret_id)
{
    switch (type) {
    case CPRS_SECTION_FDS:
        *ret_id = cprs_le32_get(&((const CprsWireFd *)rec)->id);
        break;
    case CPRS_SECTION_DEVSTATE:
        *ret_id = cprs_le32_get(&((const CprsWireDevState *)rec)->instance_id);
        break;
    default:
        *ret_id = 0;
        break;
    }
    return (const CprsWireStr *)rec;
}

/* Key of record @i of an indexable section. */
CPRS_HIDDEN int cprs_rec_key(CprsReader *r, uint32_t type, uint32_t i,
                             const char **ret_name, uint32_t *ret_len,
                             uint32_t *ret_id);

/*
 * Look up (@name, @id) among records of @type: via its index (at most
 * CPRS_INDEX_MAX_PROBE slots), else linearly.  Returns 0, -ENOENT, -EBADMSG.
 */
CPRS_HIDDEN int cprs_lookup(CprsReader *r, uint32_t type, const char *name,
                            uint32_t id, uint32_t *ret_index);

/*
 * cprs_reader_verify() without the index sweep of pass 1: every index is
 * checked by the record-order walk of pass 7 alone.  The two must agree,
 * verdict and diagnostic; fuzz-verify holds them to it.
 */
CPRS_HIDDEN int cprs_reader_verify_walk(CprsReader *r, CprsDiag *diag);

/* ---- Records: decoded and checked as on access (fd.c, ...) ------------ */

/*
 * Each decodes the wire record at @p (record @index of directory entry
 * @sec, at arena offset @off) into a view, running every [access] check
 * of its clause; accessors and full verification share them.
 */
CPRS_HIDDEN int cprs_fd_decode(CprsReader *r, const uint8_t *p, int sec,
                               uint32_t index, uint64_t off, CprsFdInfo *fi);
CPRS_HIDDEN int cprs_vfio_decode(CprsReader *r, const uint8_t *p, int sec,
                                 uint32_t index, uint64_t off,
                                 CprsVfioDeviceInfo *vi);
/* Also returns the record's range_first (spec 6.3.7). */
CPRS_HIDDEN int cprs_ramblock_decode(CprsReader *r, const uint8_t *p,
                                     int sec, uint32_t index, uint64_t off,
                                     CprsRamBlockInfo *bi,
                                     uint32_t *ret_first);
/* A range of a block of @max_length bytes (spec 6.4). */
CPRS_HIDDEN int cprs_gpa_range_decode(CprsReader *r, const uint8_t *p,
                                      int sec, uint32_t index, uint64_t off,
                                      uint64_t max_length,
                                      CprsGpaRange *ret_range);
/* Also returns the payload's stored bytes and its data_off. */
CPRS_HIDDEN int cprs_devstate_decode(CprsReader *r, const uint8_t *p,
                                     int sec, uint32_t index, uint64_t off,
                                     CprsDevStateInfo *di,
                                     const uint8_t **ret_stored,
                                     uint64_t *ret_data_off);
/*
 * Check the zstd frame of payload @index (record at @off of section @sec)
 * at @stored, charge the budget with the decoder's cost over @used bytes
 * already held (spec 7.1), and decode it into @dst (raw_size bytes), or
 * through a window of its own with @dst NULL (spec 5.3).  payload.c.
 */
CPRS_HIDDEN int cprs_payload_frame(CprsReader *r, const CprsDevStateInfo *di,
                                   const uint8_t *stored, uint64_t used,
                                   uint64_t off, int sec, uint32_t index,
                                   void *dst);

/* ==== QEMU's legacy QCPR stream (legacy.c) ============================ */

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
    bool owned;             /* @fd was received and belongs to the handle */
    uint64_t offset;        /* marker byte, or CPRS_LEGACY_NO_OFFSET */
} CprsLegacyRec;

/*
 * Records in stream order plus an index of their keys.  Only the first
 * record of a key is indexed: it is the one QEMU finds (L4.9), and a
 * stream of duplicates then costs one lookup each, not a walk along a
 * cluster of equal keys.
 */
typedef struct CprsLegacyList {
    CprsLegacyRec *rec;
    uint32_t count;
    size_t cap;
    CprsTable index;        /* key -> its first record */
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
    size_t cap_warnings;
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
 * and adding the NUL.  *@ret_first (may be NULL) is the index of an
 * earlier record with the same key, or -1.  On failure nothing changed.
 * Returns 0, -E2BIG (over max_records or the name pool) or -ENOMEM.
 */
CPRS_HIDDEN int cprs_legacy_rec_add(CprsLegacy *lg, CprsLegacyList *list,
                                    const char *name, uint32_t len,
                                    const CprsLegacyRec *fields,
                                    uint32_t *ret_index, int64_t *ret_first);

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

/* Flags of cprs_legacy_parse(). */
#define CPRS_LEGACY_PARSE_PARTIAL   0x1u  /* more bytes may follow @len */
#define CPRS_LEGACY_PARSE_STOP_END  0x2u  /* lenient: stop at the first
                                           * byte past the stream */
/* With CPRS_LEGACY_PARSE_PARTIAL: the bytes decide nothing yet. */
#define CPRS_LEGACY_NEED_MORE (-EAGAIN)

/*
 * Decode @len bytes.  @queue is NULL for a plain buffer (transfer records
 * get fd -1); with a queue, each service byte claims the oldest fd that
 * had arrived by then, as QEMU does (L8.3).  The claimed fds move from
 * the queue to the handle only on success: on any failure the queue is
 * as it was.
 *
 * With CPRS_LEGACY_PARSE_PARTIAL the bytes are only the start of the
 * input: the result is CPRS_LEGACY_NEED_MORE where more bytes could
 * change the verdict, else the verdict on all the bytes the input could
 * hold (L2.3).  A partial parse succeeds only with
 * CPRS_LEGACY_PARSE_STOP_END in lenient mode, once a byte past the
 * stream is in: the trailing bytes counted are those in hand.
 */
CPRS_HIDDEN int cprs_legacy_parse(const uint8_t *buf, size_t len,
                                  const CprsLegacyOpts *opts,
                                  CprsLegacyFdQueue *queue, uint32_t flags,
                                  CprsDiag *diag, CprsLegacy **ret_legacy);

/*
 * When a reader that re-parses from the start as bytes arrive parses
 * again (L2.3): at the first bytes, once the 8-byte header is in, when
 * the bytes have doubled since the last parse, and when its buffer is
 * full.  Whatever the reads return, the bytes parsed add up to O(@len).
 */
static inline bool cprs_legacy_parse_due(size_t len, size_t last, size_t cap)
{
    return len >= 2 * last || (last < 8 && len >= 8) || len == cap;
}

/* Record a warning (kept up to CPRS_LEGACY_MAX_WARNINGS). */
CPRS_HIDDEN int cprs_legacy_warn(CprsLegacy *lg, uint64_t offset,
                                 int64_t record, const char *clause,
                                 const char *reason);

/**
 * cprs_legacy_fd_take: take ownership of a received fd.
 * @legacy: a handle filled by cprs_legacy_recv().
 * @index: fd record index.
 * @ret_fd: the fd (close-on-exec), on success; the caller now owns it and
 *          cprs_legacy_free() no longer closes it.  The record keeps the
 *          number.
 *
 * Returns: 0; -EINVAL bad index; -ENOENT the handle does not own an fd
 * for this record (not received, or already taken).
 */
CPRS_HIDDEN int cprs_legacy_fd_take(CprsLegacy *legacy, uint32_t index,
                                    int *ret_fd);

#endif /* CPRS_READER_H */
