/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * open.c - opening an arena: the cheap structural checks of spec 8.1, and
 * where the arena's bytes come from (spec 8.5, 8.6).
 *
 * The checks run in time bounded by CPRS_MAX_HEADER_SIZE and
 * CPRS_MAX_SECTIONS, whatever the arena size: the header, its CRC, the
 * directory, its CRC and the placement of every section.  Section contents
 * are checked on first use (section.c) and by cprs_reader_verify().
 *
 * A descriptor is read header first: only once the header has passed its
 * checks (its CRC among them) is arena_size trusted, and then exactly
 * that many bytes are taken, never more than the source holds.  Bytes are
 * used in place only where nobody can change them any more (a sealed
 * memfd); anything else is copied before it is checked.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "cprs-reader.h"

/* Header checks, in the order spec 8.1 prescribes. */
static int check_header(CprsReader *r, const uint8_t *buf, uint64_t avail,
                        uint64_t arena_avail, CprsDiag *diag)
{
    union {
        CprsWireHeader h;
        uint8_t raw[CPRS_MAX_HEADER_SIZE];
    } copy;
    CprsWireHeader h;
    CprsArenaInfo *info = &r->info;
    uint32_t major, minor, hsize, crc, want, dir_count, entry_size;
    uint64_t incompat, arena_size, dir_offset, dir_len;
    size_t n, i;
    static const uint8_t zero4[4];

    /* spec 3.2: the magic comes first, even for short inputs. */
    n = avail < CPRS_MAGIC_SIZE ? avail : CPRS_MAGIC_SIZE;
    if (memcmp(buf, CPRS_MAGIC, n)) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "3.2",
                             "bad magic: not a CPR State Arena");
    }
    if (avail < CPRS_HEADER_V1_SIZE) {
        return cprs_diag_set(diag, -EBADMSG, avail, -1, -1, "3.1",
                             "truncated inside the header");
    }
    /* Read once: take a private copy and only use the copy. */
    memcpy(&h, buf, sizeof(h));

    major = cprs_le16_get(&h.version_major);
    minor = cprs_le16_get(&h.version_minor);
    if (major == 0) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, version_major), -1, -1,
                             "3.3", "major version 0 is invalid");
    }
    if (major > CPRS_FORMAT_VERSION_MAJOR) {
        return cprs_diag_set(diag, -EPROTONOSUPPORT,
                             offsetof(CprsWireHeader, version_major), -1, -1,
                             "3.3", "newer major version");
    }
    r->lenient = minor > CPRS_FORMAT_VERSION_MINOR;

    /* spec 3.4: a known minor has exactly its size; newer ones append. */
    hsize = cprs_le32_get(&h.header_size);
    if (hsize < CPRS_HEADER_V1_SIZE || hsize > CPRS_MAX_HEADER_SIZE ||
        !cprs_aligned(hsize) ||
        (!r->lenient && hsize != CPRS_HEADER_V1_SIZE)) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, header_size), -1, -1,
                             "3.4", "header_size out of range");
    }
    if (hsize > avail) {
        return cprs_diag_set(diag, -EBADMSG, avail, -1, -1, "3.4",
                             "truncated inside the header");
    }

    /*
     * spec 3.9: CRC of header_size bytes with this field read as zero,
     * computed over a private copy that also supplies every field used, so
     * a file changing underneath cannot pass one value and use another.
     */
    memcpy(copy.raw, buf, hsize);
    if (memcmp(&copy.h, &h, sizeof(h))) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "8.5",
                             "header changed while being read");
    }
    crc = cprs_crc32c(0, copy.raw, offsetof(CprsWireHeader, header_crc32c));
    crc = cprs_crc32c(crc, zero4, sizeof(zero4));
    crc = cprs_crc32c(crc, copy.raw + offsetof(CprsWireHeader,
                                               header_crc32c) + 4,
                      hsize - offsetof(CprsWireHeader, header_crc32c) - 4);
    want = cprs_le32_get(&h.header_crc32c);
    if (crc != want) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, header_crc32c), -1, -1,
                             "3.9", "header CRC32C mismatch");
    }

    /* spec 3.5: unknown incompatible features make the arena unreadable. */
    incompat = cprs_le64_get(&h.incompat_features);
    if (incompat & ~CPRS_INCOMPAT_KNOWN) {
        return cprs_diag_set(diag, -EPROTONOSUPPORT,
                             offsetof(CprsWireHeader, incompat_features), -1,
                             -1, "3.5", "unknown incompatible feature");
    }
#ifndef CPRS_HAVE_ZSTD
    if (incompat & CPRS_INCOMPAT_ZSTD) {
        return cprs_diag_set(diag, -EPROTONOSUPPORT,
                             offsetof(CprsWireHeader, incompat_features), -1,
                             -1, "5.1", "zstd feature, built without zstd");
    }
#endif

    /* spec 3.6 */
    arena_size = cprs_le64_get(&h.arena_size);
    if (arena_size < hsize || !cprs_aligned(arena_size)) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, arena_size), -1, -1,
                             "3.6", "arena_size smaller than the header or "
                             "not a multiple of 8");
    }
    if (arena_size > r->opts.max_arena_size) {
        return cprs_diag_set(diag, -E2BIG,
                             offsetof(CprsWireHeader, arena_size), -1, -1,
                             "7", "arena_size over the limit");
    }
    if (arena_size > arena_avail) {
        return cprs_diag_set(diag, -EBADMSG, arena_avail, -1, -1, "3.6",
                             "truncated: fewer bytes than arena_size");
    }

    /* spec 3.12, 3.16: fields with a closed set of values (3.13, the
     * writer pid, is informational and takes any value). */
    info->mode = cprs_le32_get(&h.mode);
    if (!r->lenient && (info->mode == 0 || info->mode >= CPRS_MODE__MAX)) {
        return cprs_diag_set(diag, -EBADMSG, offsetof(CprsWireHeader, mode),
                             -1, -1, "3.12", "unknown CPR mode");
    }
    if (!r->lenient && cprs_le32_get(&h.reserved0)) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, reserved0), -1, -1,
                             "3.16", "reserved field not zero");
    }

    /* spec 3.14: build_id_size bytes, the rest zero. */
    info->build_id_size = cprs_le32_get(&h.build_id_size);
    if (info->build_id_size > CPRS_BUILD_ID_MAX) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, build_id_size), -1, -1,
                             "3.14", "build_id_size over 32");
    }
    for (i = info->build_id_size; i < CPRS_BUILD_ID_MAX; i++) {
        if (h.build_id[i]) {
            return cprs_diag_set(diag, -EBADMSG,
                                 offsetof(CprsWireHeader, build_id) + i, -1,
                                 -1, "3.14", "build_id padding not zero");
        }
    }

    /* spec 3.15: printable, NUL-terminated, zero-padded. */
    n = strnlen(h.producer, CPRS_PRODUCER_MAX);
    if (n == CPRS_PRODUCER_MAX) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, producer), -1, -1,
                             "3.15", "producer not NUL-terminated");
    }
    i = cprs_name_bad_char(h.producer, n);
    if (i < n) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, producer) + i, -1, -1,
                             "3.15", "producer has a non-printable byte");
    }
    for (i = n; i < CPRS_PRODUCER_MAX; i++) {
        if (h.producer[i]) {
            return cprs_diag_set(diag, -EBADMSG,
                                 offsetof(CprsWireHeader, producer) + i, -1,
                                 -1, "3.15", "producer padding not zero");
        }
    }

    /* spec 3.7: the directory lies inside the arena, after the header. */
    dir_offset = cprs_le64_get(&h.dir_offset);
    dir_count = cprs_le32_get(&h.dir_count);
    entry_size = cprs_le32_get(&h.dir_entry_size);
    if (dir_count > CPRS_MAX_SECTIONS) {
        return cprs_diag_set(diag, -E2BIG,
                             offsetof(CprsWireHeader, dir_count), -1, -1,
                             "7", "more directory entries than allowed");
    }
    if (entry_size < CPRS_SECTION_V1_SIZE || !cprs_aligned(entry_size) ||
        entry_size > CPRS_MAX_RECORD_SIZE ||
        (!r->lenient && entry_size != CPRS_SECTION_V1_SIZE)) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, dir_entry_size), -1,
                             -1, "3.7", "dir_entry_size out of range");
    }
    dir_len = (uint64_t)dir_count * entry_size;   /* <= 64 * 4096 */
    if (!cprs_aligned(dir_offset) || dir_offset < hsize ||
        !cprs_range_ok(arena_size, dir_offset, dir_len)) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, dir_offset), -1, -1,
                             "3.7", "directory outside the arena, "
                             "misaligned or overlapping the header");
    }
    /* spec 3.8 is checked by check_directory(), on the entries it uses. */
    r->dir_crc32c = cprs_le32_get(&h.dir_crc32c);

    info->sz = sizeof(*info);
    info->version_major = major;
    info->version_minor = minor;
    info->header_size = hsize;
    info->incompat_features = incompat;
    info->compat_features = cprs_le64_get(&h.compat_features);
    info->arena_size = arena_size;
    info->dir_offset = dir_offset;
    info->section_count = dir_count;
    info->generation = cprs_le64_get(&h.generation);
    info->created_ns = cprs_le64_get(&h.created_ns);
    info->writer_pid = cprs_le32_get(&h.writer_pid);
    memcpy(info->build_id, h.build_id, CPRS_BUILD_ID_MAX);
    memcpy(info->producer, h.producer, CPRS_PRODUCER_MAX);
    info->header_crc32c = want;
    info->dir_crc32c = cprs_le32_get(&h.dir_crc32c);
    r->size = arena_size;
    r->nsec = dir_count;
    r->entry_size = entry_size;
    r->dir_end = dir_offset + dir_len;
    return 0;
}

/* Placement and shape of one directory entry (spec 4), from a copy. */
static int check_entry(CprsReader *r, uint32_t i, uint64_t entry_off,
                       const CprsWireSection *copy, uint64_t *prev_end,
                       CprsDiag *diag)
{
    CprsWireSection e = *copy;
    CprsSec *s = &r->sec[i];
    uint32_t want_size;
    bool known;

    s->type = cprs_le32_get(&e.type);
    s->flags = cprs_le32_get(&e.flags);
    s->offset = cprs_le64_get(&e.offset);
    s->stored_size = cprs_le64_get(&e.stored_size);
    s->raw_size = cprs_le64_get(&e.raw_size);
    s->record_count = cprs_le32_get(&e.record_count);
    s->record_size = cprs_le32_get(&e.record_size);
    s->crc32c = cprs_le32_get(&e.crc32c);
    s->link = cprs_le32_get(&e.link);
    s->entry_offset = entry_off;

#define FAIL(err, field, clause, reason) \
    cprs_diag_set(diag, (err), entry_off + offsetof(CprsWireSection, field), \
                  (int32_t)i, -1, (clause), (reason))

    if (s->type == 0) {
        return FAIL(-EBADMSG, type, "4.2", "section type 0 is invalid");
    }
    known = s->type < CPRS_SECTION__MAX;
    if (!r->lenient && (s->flags & ~CPRS_SECTION_F_KNOWN)) {
        return FAIL(-EBADMSG, flags, "4.3", "unknown section flag");
    }
    /* spec 4.4: aligned, inside the arena, after the header. */
    if (!cprs_aligned(s->offset) || s->offset < r->info.header_size ||
        !cprs_range_ok(r->size, s->offset, s->stored_size)) {
        return FAIL(-EBADMSG, offset, "4.4",
                    "section outside the arena or misaligned");
    }
    /* spec 4.4: in increasing offset order, no overlap. */
    if (s->offset < *prev_end) {
        return FAIL(-EBADMSG, offset, "4.4",
                    "section overlaps or precedes the previous one");
    }
    /* spec 4.4: before or after the directory, never across it. */
    if (!(s->offset + s->stored_size <= r->info.dir_offset ||
          s->offset >= r->dir_end)) {
        return FAIL(-EBADMSG, offset, "4.4",
                    "section overlaps the directory");
    }
    *prev_end = s->offset + s->stored_size;

    /* spec 5.2: a compressed section needs the zstd feature. */
    if (s->flags & CPRS_SECTION_F_ZSTD) {
        if (!(r->info.incompat_features & CPRS_INCOMPAT_ZSTD)) {
            return FAIL(-EBADMSG, flags, "5.1",
                        "compressed section without the zstd feature");
        }
        if (s->stored_size == 0) {
            return FAIL(-EBADMSG, stored_size, "5.2",
                        "compressed section with no bytes");
        }
        if (s->raw_size > CPRS_MAX_SECTION_RAW_SIZE) {
            return FAIL(-E2BIG, raw_size, "7",
                        "compressed section raw_size over the limit");
        }
    } else if (s->raw_size != s->stored_size) {
        return FAIL(-EBADMSG, raw_size, "4.5",
                    "raw_size differs from stored_size, not compressed");
    }

    if (!known) {
        /* spec 4.9: skip what we do not know, unless it is required. */
        if (s->flags & CPRS_SECTION_F_REQUIRED) {
            return FAIL(-EPROTONOSUPPORT, type, "4.9",
                        "unknown section type marked required");
        }
        return 0;
    }

    /* spec 4.10: one section per type; INDEX: one per indexed section. */
    if (s->type != CPRS_SECTION_INDEX) {
        if (r->by_type[s->type] >= 0) {
            return FAIL(-EBADMSG, type, "4.10", "duplicate section type");
        }
        r->by_type[s->type] = (int8_t)i;
        if (s->link != 0) {
            return FAIL(-EBADMSG, link, "4.8", "link set on a section "
                        "that is not an index");
        }
    }

    /* spec 4.6: record geometry. */
    want_size = cprs_type_record_size(s->type);
    if (want_size == 0) {
        if (s->record_count || s->record_size) {
            return FAIL(-EBADMSG, record_count, "4.6",
                        "record fields set on a byte section");
        }
        return 0;
    }
    if (s->record_size < want_size || !cprs_aligned(s->record_size) ||
        s->record_size > CPRS_MAX_RECORD_SIZE ||
        (!r->lenient && s->record_size != want_size)) {
        return FAIL(-EBADMSG, record_size, "4.6",
                    "record_size wrong for this section type");
    }
    if (s->type == CPRS_SECTION_INDEX) {
        if (!cprs_is_pow2(s->record_count) ||
            s->record_count > CPRS_MAX_INDEX_SLOTS) {
            return FAIL(-EBADMSG, record_count, "6.8.2",
                        "index slot count not a power of two in range");
        }
    } else if (s->record_count > r->opts.max_records) {
        return FAIL(-E2BIG, record_count, "7", "too many records");
    }
    if ((uint64_t)s->record_count * s->record_size != s->raw_size) {
        return FAIL(-EBADMSG, raw_size, "4.6",
                    "raw_size is not record_count * record_size");
    }
#undef FAIL
    return 0;
}

/* Every directory entry, then the links between entries. */
static int check_directory(CprsReader *r, CprsDiag *diag)
{
    uint64_t prev_end = r->info.header_size;
    uint32_t i;
    int ret;
    union {
        CprsWireSection e;
        uint8_t raw[CPRS_MAX_RECORD_SIZE];
    } copy;
    uint64_t off;
    uint32_t crc = 0;

    for (i = 0; i < CPRS_SECTION__MAX; i++) {
        r->by_type[i] = -1;
        r->index_of[i] = -1;
    }
    /*
     * spec 3.8: each entry is copied once; the CRC is computed over the
     * copies and the checks below use the same copies (read once).
     */
    for (i = 0; i < r->nsec; i++) {
        off = r->info.dir_offset + (uint64_t)i * r->entry_size;
        memcpy(copy.raw, r->base + off, r->entry_size);
        crc = cprs_crc32c(crc, copy.raw, r->entry_size);
        r->dir_copy[i] = copy.e;
    }
    if (crc != r->dir_crc32c) {
        return cprs_diag_set(diag, -EBADMSG,
                             offsetof(CprsWireHeader, dir_crc32c), -1, -1,
                             "3.8", "directory CRC32C mismatch");
    }
    for (i = 0; i < r->nsec; i++) {
        ret = check_entry(r, i, r->info.dir_offset +
                          (uint64_t)i * r->entry_size, &r->dir_copy[i],
                          &prev_end, diag);
        if (ret) {
            return ret;
        }
    }

    /* spec 4.8, 4.10: each index names a distinct indexable section. */
    for (i = 0; i < r->nsec; i++) {
        CprsSec *s = &r->sec[i];
        uint64_t link_off = s->entry_offset + offsetof(CprsWireSection, link);
        uint32_t target;

        if (s->type != CPRS_SECTION_INDEX) {
            continue;
        }
        if (s->link >= r->nsec || !cprs_type_indexable(r->sec[s->link].type)) {
            return cprs_diag_set(diag, -EBADMSG, link_off, (int32_t)i, -1,
                                 "4.8", "index link does not name an "
                                 "indexable section");
        }
        target = r->sec[s->link].type;
        if (r->index_of[target] >= 0) {
            return cprs_diag_set(diag, -EBADMSG, link_off, (int32_t)i, -1,
                                 "4.10", "second index for one section");
        }
        /* spec 6.8.2: at least one empty slot, so probes terminate. */
        if (s->record_count <= r->sec[s->link].record_count) {
            return cprs_diag_set(diag, -EBADMSG, s->entry_offset +
                                 offsetof(CprsWireSection, record_count),
                                 (int32_t)i, -1, "6.8.2",
                                 "index has no more slots than records");
        }
        r->index_of[target] = (int8_t)i;
    }
    return 0;
}

static int reader_new(const CprsReaderOpts *opts, CprsReader **ret)
{
    CprsReader *r;
    int err;

    r = calloc(1, sizeof(*r));
    if (!r) {
        return -ENOMEM;
    }
    err = cprs_opts_copy(&r->opts, sizeof(r->opts), opts);
    if (err) {
        free(r);
        return err;
    }
    /* STYLE 4: opts may lower the limits, never raise them. */
    if (!r->opts.max_records || r->opts.max_records > CPRS_MAX_RECORDS) {
        r->opts.max_records = CPRS_MAX_RECORDS;
    }
    if (!r->opts.max_arena_size ||
        r->opts.max_arena_size > CPRS_MAX_ARENA_SIZE) {
        r->opts.max_arena_size = CPRS_MAX_ARENA_SIZE;
    }
    if (!r->opts.max_payload_size ||
        r->opts.max_payload_size > CPRS_MAX_PAYLOAD_SIZE) {
        r->opts.max_payload_size = CPRS_MAX_PAYLOAD_SIZE;
    }
    /* spec 7.1: the budget is the caller's to declare, 0 the default. */
    if (!r->opts.max_memory) {
        r->opts.max_memory = CPRS_READER_MEMORY_DEFAULT;
    }
    if (r->opts.flags & ~(CPRS_READER_F_NO_CRC | CPRS_READER_F_NO_MMAP)) {
        free(r);
        return -EINVAL;
    }
    r->last.sz = sizeof(r->last);
    *ret = r;
    return 0;
}

/* Run the open checks on r->base[0..avail). */
static int reader_check(CprsReader *r, uint64_t avail, CprsDiag *diag)
{
    int ret;

    ret = check_header(r, r->base, avail, avail, diag);
    if (ret) {
        return ret;
    }
    return check_directory(r, diag);
}

/*
 * spec 8.6: an arena of arena_size bytes must fit this host's size_t
 * (a 32-bit host cannot hold 16 GiB).  The counted test build can
 * pretend to be such a host (cprs-work.h).
 */
static int check_fits(uint64_t arena_size, CprsDiag *diag)
{
    if (arena_size > CPRS_SIZE_MAX) {
        return cprs_diag_set(diag, -E2BIG, offsetof(CprsWireHeader,
                                                    arena_size), -1, -1,
                             "8.6", "arena_size does not fit this host's "
                             "address space");
    }
    return 0;
}

int cprs_reader_open_buffer(const void *buf, size_t size,
                            const CprsReaderOpts *opts, CprsDiag *diag,
                            CprsReader **ret_reader)
{
    CprsReader *r;
    uint64_t n;
    int ret;

    if (!ret_reader || (!buf && size)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "invalid argument");
    }
    ret = reader_new(opts, &r);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "invalid options");
    }
    r->base = buf ? buf : (const uint8_t *)"";
    if ((uintptr_t)buf & (CPRS_ALIGN - 1)) {
        /*
         * spec 2.4: records are read in place only from an 8-aligned
         * base; a misaligned buffer is copied once, and only the
         * arena_size bytes its checked header announces.
         */
        ret = check_header(r, r->base, size, size, diag);
        if (ret) {
            cprs_reader_close(r);
            return ret;
        }
        n = r->size;        /* >= 192, <= size: checked */
        r->owned = cprs_alloc_large((size_t)n);
        if (!r->owned) {
            cprs_reader_close(r);
            return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "",
                                 "out of memory");
        }
        CPRS_WORK_ALLOC(n);
        CPRS_WORK_ADD(CPRS_WORK_COPY_BYTES, n);
        memcpy(r->owned, buf, (size_t)n);
        r->base = r->owned;
        size = (size_t)n;
    }
    ret = reader_check(r, size, diag);
    if (ret) {
        cprs_reader_close(r);
        return ret;
    }
    *ret_reader = r;
    return 0;
}

/* What open_fd knows about its source. */
typedef struct Source {
    int fd;
    bool seekable;          /* pread from offset 0 */
    uint64_t size;          /* bytes it holds, UINT64_MAX if unknown */
} Source;

/*
 * Read up to @len bytes at @at (pread, or read when not seekable), until
 * @len or end of file.  *@ret_got is set even on error.
 */
static int read_upto(const Source *src, uint8_t *buf, uint64_t at,
                     uint64_t len, uint64_t *ret_got)
{
    uint64_t got = 0;
    ssize_t n;

    *ret_got = 0;
    while (got < len) {
        size_t chunk = len - got > (1u << 30) ? (1u << 30) :
                       (size_t)(len - got);

        if (src->seekable) {
            n = pread(src->fd, buf + got, chunk, (off_t)(at + got));
        } else {
            n = read(src->fd, buf + got, chunk);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            break;
        }
        CPRS_WORK_ADD(CPRS_WORK_READ_BYTES, n);
        got += (uint64_t)n;
        *ret_got = got;
    }
    return 0;
}

/*
 * spec 8.6: the header, and nothing else: 192 bytes, then up to a
 * header_size in range.  Returns the bytes read (fewer at end of file).
 */
static int read_head(const Source *src, uint8_t *head, uint64_t *ret_len)
{
    uint64_t got, more;
    CprsLe32 le;
    uint32_t hsize;
    int ret;

    ret = read_upto(src, head, 0, CPRS_HEADER_V1_SIZE, &got);
    if (ret || got < CPRS_HEADER_V1_SIZE) {
        *ret_len = got;
        return ret;
    }
    memcpy(&le, head + offsetof(CprsWireHeader, header_size), sizeof(le));
    hsize = cprs_le32_get(&le);
    /* A later minor's longer header (3.4); anything odd is the checks'. */
    if (!memcmp(head, CPRS_MAGIC, CPRS_MAGIC_SIZE) &&
        hsize > CPRS_HEADER_V1_SIZE && hsize <= CPRS_MAX_HEADER_SIZE) {
        ret = read_upto(src, head + got, got, hsize - got, &more);
        got += more;
    }
    *ret_len = got;
    return ret;
}

/*
 * spec 8.5: may the arena be used in place?  Only when its bytes can no
 * longer change: a memfd sealed against writes and shrinking (seals are
 * never removed, F_SEAL_WRITE cannot be added while a writable shared
 * mapping exists, and the kernel itself keeps them).  Nothing else
 * qualifies: a file's immutable attribute is what its filesystem says,
 * and a FUSE server says what it likes, then changes or truncates the
 * file under the mapping (changed bytes after the checks, SIGBUS).
 */
static bool source_frozen(int fd)
{
    int seals;

    seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & (F_SEAL_WRITE | F_SEAL_SHRINK)) ==
           (F_SEAL_WRITE | F_SEAL_SHRINK);
}

/*
 * Read the rest of the arena after the @have bytes of @head: exactly
 * @want bytes in all, fewer if the source ends first.  A source of
 * unknown length gets a buffer that grows with what arrives, so a header
 * cannot make us allocate bytes that never come.
 */
static int read_rest(const Source *src, const uint8_t *head, uint64_t have,
                     uint64_t want, uint8_t **ret_buf, uint64_t *ret_len)
{
    uint64_t len = have, cap, more;
    uint8_t *buf, *nbuf;
    int ret = 0;

    cap = src->size != UINT64_MAX || want < 65536 ? want : 65536;
    buf = cprs_alloc_large((size_t)cap);
    if (!buf) {
        return -ENOMEM;
    }
    CPRS_WORK_ALLOC(cap);
    memcpy(buf, head, (size_t)have);
    while (len < want) {
        if (len == cap) {
            cap = cap * 2 < want ? cap * 2 : want;
            nbuf = realloc(buf, (size_t)cap);
            if (!nbuf) {
                ret = -ENOMEM;
                break;
            }
            CPRS_WORK_ALLOC(cap);
            buf = nbuf;
        }
        ret = read_upto(src, buf + len, len, cap - len, &more);
        len += more;
        if (ret || len < cap) {
            break;          /* an error, or end of file */
        }
    }
    if (ret) {
        free(buf);
        return ret;
    }
    *ret_buf = buf;
    *ret_len = len;
    return 0;
}

/* Size of a block device, or UINT64_MAX. */
static uint64_t blockdev_size(int fd)
{
    uint64_t size;

    return ioctl(fd, BLKGETSIZE64, &size) == 0 ? size : UINT64_MAX;
}

/*
 * A source of unknown length (a pipe) whose header failed a check that
 * spec 8.1 orders after the truncation check (3.6): a buffer of the same
 * bytes would report the truncation first if they end before arena_size.
 * Those checks passed arena_size against its range and the limit, so it
 * is read as far as arena_size and the header checked again with the
 * bytes that came: the verdict, offset and clause are the buffer's.
 * Returns @ret, the first verdict, when the failure came before 3.6.
 */
static int stream_verdict(CprsReader *r, const Source *src,
                          const uint8_t *head, uint64_t have, int ret,
                          CprsDiag *diag)
{
    CprsDiag probe = CPRS_OPTS(CprsDiag);
    CprsWireHeader h;
    uint64_t len;
    uint8_t *buf;
    int again;

    /* With no byte past the header, every check before 3.6 passes iff
     * the verdict is that truncation, at offset 0. */
    again = check_header(r, head, have, 0, &probe);
    if (again != -EBADMSG || probe.offset || strcmp(probe.clause, "3.6")) {
        return ret;
    }
    memcpy(&h, head, sizeof(h));
    again = read_rest(src, head, have, cprs_le64_get(&h.arena_size), &buf,
                      &len);
    if (again) {
        return cprs_diag_set(diag, again, 0, -1, -1, "", "read failed");
    }
    again = check_header(r, buf, len, len, diag);
    free(buf);
    return again;
}

int cprs_reader_open_fd(int fd, const CprsReaderOpts *opts, CprsDiag *diag,
                        CprsReader **ret_reader)
{
    uint8_t head[CPRS_MAX_HEADER_SIZE];
    CprsReader *r;
    struct stat st;
    Source src = { .fd = fd, .size = UINT64_MAX };
    uint64_t have, len;
    uint8_t *buf;
    void *map;
    int ret;

    if (fd < 0 || !ret_reader) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "invalid argument");
    }
    ret = reader_new(opts, &r);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "invalid options");
    }
    if (fstat(fd, &st) < 0) {
        ret = cprs_diag_set(diag, -errno, 0, -1, -1, "", "fstat failed");
        goto fail;
    }
    if (S_ISREG(st.st_mode)) {
        src.seekable = true;
        src.size = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        src.seekable = true;
        src.size = blockdev_size(fd);
    }

    /* spec 8.6: the header first (pread: the fd's offset does not move). */
    ret = read_head(&src, head, &have);
    if (ret == -ESPIPE && src.seekable) {
        src.seekable = false;
        ret = read_head(&src, head, &have);
    }
    if (ret) {
        ret = cprs_diag_set(diag, ret, 0, -1, -1, "", "read failed");
        goto fail;
    }
    /* Checked on its own; a short read means the source ended there. */
    ret = check_header(r, head, have, have < CPRS_HEADER_V1_SIZE ? have :
                       src.size, diag);
    if (ret && src.size == UINT64_MAX && have >= CPRS_HEADER_V1_SIZE) {
        ret = stream_verdict(r, &src, head, have, ret, diag);
    }
    if (!ret) {
        ret = check_fits(r->size, diag);
    }
    if (ret) {
        goto fail;
    }

    /* spec 8.5: in place only when nobody can change the bytes any more. */
    if (S_ISREG(st.st_mode) && src.seekable &&
        !(r->opts.flags & CPRS_READER_F_NO_MMAP) && source_frozen(fd)) {
        map = mmap(NULL, (size_t)r->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            r->map = map;
            r->map_len = (size_t)r->size;
            r->base = map;
            ret = reader_check(r, r->size, diag);
            goto out;
        }
    }

    /* Otherwise a private copy of exactly arena_size bytes. */
    ret = read_rest(&src, head, have, r->size, &buf, &len);
    if (ret) {
        ret = cprs_diag_set(diag, ret, 0, -1, -1, "", "read failed");
        goto fail;
    }
    r->owned = buf;
    r->base = buf;
    ret = reader_check(r, len, diag);
out:
    if (!ret) {
        *ret_reader = r;
        return 0;
    }
fail:
    cprs_reader_close(r);
    return ret;
}

int cprs_reader_open_path(const char *path, const CprsReaderOpts *opts,
                          CprsDiag *diag, CprsReader **ret_reader)
{
    int fd, ret;

    if (!path || !ret_reader) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "invalid argument");
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        ret = -errno;
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "cannot open file");
    }
    ret = cprs_reader_open_fd(fd, opts, diag, ret_reader);
    close(fd);
    return ret;
}

void cprs_reader_close(CprsReader *r)
{
    if (!r) {
        return;
    }
    cprs_sec_release_all(r);
    cprs_frame_idle_free(&r->zstd_idle);
    if (r->map) {
        munmap(r->map, r->map_len);
    }
    free(r->owned);
    free(r);
}

const CprsDiag *cprs_reader_last_diag(const CprsReader *r)
{
    return r ? &r->last : NULL;
}

int cprs_reader_get_info(const CprsReader *r, CprsArenaInfo *info)
{
    if (!r) {
        return -EINVAL;
    }
    return cprs_info_fill(info, &r->info, sizeof(r->info));
}

const void *cprs_reader_bytes(const CprsReader *r, size_t *ret_size)
{
    if (!r) {
        return NULL;
    }
    if (ret_size) {
        *ret_size = (size_t)r->size;
    }
    return r->base;
}

uint32_t cprs_reader_section_count(const CprsReader *r)
{
    return r ? r->nsec : 0;
}

int cprs_reader_section_get(const CprsReader *r, uint32_t index,
                            CprsSectionInfo *info)
{
    const CprsSec *s;
    CprsSectionInfo si;

    if (!r || index >= r->nsec) {
        return -EINVAL;
    }
    s = &r->sec[index];
    si = (CprsSectionInfo) {
        .sz = sizeof(si),
        .type = s->type,
        .flags = s->flags,
        .offset = s->offset,
        .stored_size = s->stored_size,
        .raw_size = s->raw_size,
        .record_count = s->record_count,
        .record_size = s->record_size,
        .crc32c = s->crc32c,
        .link = s->link,
        .entry_offset = s->entry_offset,
    };
    return cprs_info_fill(info, &si, sizeof(si));
}
