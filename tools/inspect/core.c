/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * core.c - find the CPR state in an ELF core dump of a process that had
 * it mapped (or that held a copy of it in memory): a kernel core or one
 * made by gdb's gcore.
 *
 * The NT_FILE note lists the process's file mappings (start, end, offset
 * in the file, path).  A mapping of the state memfd, whose path is
 * "/memfd:QEMU_CPR_EXEC_STATE (deleted)", is read back from the PT_LOAD
 * segment that holds its pages.  When no mapping is named so, or when its
 * pages were not dumped, the PT_LOAD data is scanned for the arena magic
 * (at 8-byte aligned addresses) and for the start of a legacy stream.
 *
 * A core file is hostile input, like an arena: every header, note, count,
 * offset and size is checked before use, with the overflow-safe helpers,
 * and every allocation is bounded by the file size or a named limit.  The
 * file is read with pread() only; libelf decodes the ELF and program
 * headers and the note framing, this file the NT_FILE payload.
 */
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-le.h"
#include "inspect.h"

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif

/* Bytes of one PT_NOTE segment we read; a big process needs ~1 MiB. */
#define CORE_MAX_NOTE_SIZE      (UINT64_C(64) << 20)
/* Program headers we accept; the kernel caps mappings at 65530 by default. */
#define CORE_MAX_PHDRS          (1u << 20)
/* NT_FILE entries we accept (same bound). */
#define CORE_MAX_MAPS           (1u << 20)
/* Bytes in which a legacy stream candidate is decoded, at most... */
#define CORE_LEGACY_WINDOW      (UINT64_C(16) << 20)
/* ... and first: the window doubles only while the stream needs it. */
#define CORE_LEGACY_FIRST       UINT64_C(64)
/* Bytes read at a time by the scan, plus room for a magic across chunks. */
#define CORE_SCAN_CHUNK         (UINT64_C(1) << 20)
#define CORE_MAGIC_LEN          8u

/* The first 8 bytes of a QEMU 10.x legacy stream: "QCPR", be32 1. */
static const uint8_t legacy_magic[CORE_MAGIC_LEN] = {
    'Q', 'C', 'P', 'R', 0, 0, 0, 1,
};

/* The core file or buffer; every read is range-checked by the caller. */
typedef struct CoreSrc {
    int fd;                 /* -1: read from @buf */
    const uint8_t *buf;
    uint64_t size;          /* bytes in the file or buffer */
} CoreSrc;

/* A PT_LOAD segment, with filesz clipped to the bytes the file has. */
typedef struct CoreSeg {
    uint64_t vaddr;
    uint64_t memsz;
    uint64_t offset;
    uint64_t filesz;
} CoreSeg;

/* An NT_FILE entry; @name points into the note data held by libelf. */
typedef struct CoreMap {
    uint64_t start;
    uint64_t end;
    uint64_t pgoff;         /* offset in the file, pages */
    const char *name;
} CoreMap;

typedef struct Core {
    CoreSrc src;
    Elf *elf;
    uint8_t *image;         /* buffer source: libelf's private copy */
    bool big_endian;
    bool is64;
    CoreSeg *segs;
    size_t nsegs;
    CoreMap *maps;
    size_t nmaps;
    uint64_t page_size;     /* NT_FILE page size */
    bool nt_file_seen;
    bool nt_file_bad;
    CoreOpts opts;
    const char *memfd_name;
    /* The search. */
    uint32_t found;         /* candidates met so far */
    uint64_t (*met)[2];     /* (file offset, vaddr) of each one met */
    size_t nmet;
    uint64_t *named;        /* file offsets of the NT_FILE candidates */
    size_t nnamed;
    bool not_dumped;        /* a named mapping whose pages are absent */
    bool named_invalid;     /* a named mapping without a valid state */
    uint64_t scanned;       /* bytes scanned so far */
    uint64_t legacy_end;    /* legacy hits below this offset: skipped */
    CoreState result;
    CprsDiag *diag;
    /* Lookups: the segments and mappings, sorted (core_index()). */
    CoreSeg **seg_by_vaddr;
    CoreSeg **seg_by_offset;
    CoreMap **map_by_start;
    /* The scan's chunk in memory, and room to read a candidate into. */
    const uint8_t *chunk;
    uint64_t chunk_off;
    uint64_t chunk_len;
    uint8_t *scratch;
    uint64_t scratch_cap;
    uint64_t scratch_off;   /* file offset of the bytes in scratch */
    uint64_t scratch_len;   /* how many it holds */
} Core;

/* Count work for a test, when the caller gave a counter (CoreOpts.work). */
#define WORK(c, field, n) do {                                          \
        if ((c)->opts.work) {                                           \
            (c)->opts.work->field += (n);                               \
        }                                                               \
    } while (0)

static int core_fail(Core *c, int error, uint64_t offset, const char *reason)
{
    return inspect_fail(c->diag, error, offset, reason);
}

/* Copy @len bytes at @off; the caller checked the range. */
static int src_read(const CoreSrc *s, uint64_t off, void *dst, size_t len)
{
    uint8_t *p = dst;
    ssize_t n;

    if (s->fd < 0) {
        memcpy(dst, s->buf + off, len);
        return 0;
    }
    while (len) {
        n = pread(s->fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            /* The file shrank under us: what we were told is gone. */
            return -EBADMSG;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* A word of the NT_FILE payload, in the core's byte order and class. */
static uint64_t core_word(const Core *c, const uint8_t *p)
{
    unsigned w = c->is64 ? 8 : 4, i;
    uint64_t v = 0;

    for (i = 0; i < w; i++) {
        unsigned b = c->big_endian ? i : w - 1 - i;

        v = (v << 8) | p[b];
    }
    return v;
}

/*
 * Parse the NT_FILE payload: count, page size, count (start, end, pgoff)
 * triples, then count NUL-terminated paths.  A malformed note is not an
 * error (the scan still works): it is flagged and ignored from the first
 * bad entry on.
 */
static int parse_nt_file(Core *c, const uint8_t *desc, uint64_t len)
{
    uint64_t w = c->is64 ? 8 : 4, count, i, off, table;
    const uint8_t *nul;

    c->nt_file_seen = true;
    if (len < 2 * w) {
        c->nt_file_bad = true;
        return 0;
    }
    count = core_word(c, desc);
    c->page_size = core_word(c, desc + w);
    /* Every entry needs 3 words: bound the count by the payload first. */
    if (count > (len - 2 * w) / (3 * w) || count > CORE_MAX_MAPS ||
        !c->page_size) {
        c->nt_file_bad = true;
        return 0;
    }
    c->maps = calloc(count ? count : 1, sizeof(*c->maps));
    if (!c->maps) {
        return -ENOMEM;
    }
    table = 2 * w;
    off = table + count * 3 * w;
    for (i = 0; i < count; i++) {
        const uint8_t *e = desc + table + i * 3 * w;
        CoreMap *m = &c->maps[i];

        m->start = core_word(c, e);
        m->end = core_word(c, e + w);
        m->pgoff = core_word(c, e + 2 * w);
        if (m->end < m->start || off >= len) {
            c->nt_file_bad = true;
            break;
        }
        nul = memchr(desc + off, 0, len - off);
        if (!nul) {
            c->nt_file_bad = true;
            break;
        }
        m->name = (const char *)desc + off;
        off = (uint64_t)(nul - desc) + 1;
        c->nmaps = i + 1;
    }
    return 0;
}

/* Look for NT_FILE in one PT_NOTE segment. */
static int scan_notes(Core *c, const GElf_Phdr *ph)
{
    size_t off = 0, next, name_off, desc_off;
    const uint8_t *base;
    Elf_Data *d;
    GElf_Nhdr nh;

    if (!ph->p_filesz || !inspect_range_ok(c->src.size, ph->p_offset,
                                        ph->p_filesz) ||
        ph->p_filesz > CORE_MAX_NOTE_SIZE) {
        return 0;
    }
    d = elf_getdata_rawchunk(c->elf, (int64_t)ph->p_offset,
                             (size_t)ph->p_filesz, ELF_T_NHDR);
    if (!d || !d->d_buf) {
        return 0;
    }
    base = d->d_buf;
    while ((next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
        /* gelf_getnote() checked that name and desc lie within @d. */
        if (nh.n_type == NT_FILE && nh.n_namesz == 5 &&
            inspect_range_ok(d->d_size, name_off, 5) &&
            !memcmp(base + name_off, "CORE", 5) && !c->nt_file_seen &&
            inspect_range_ok(d->d_size, desc_off, nh.n_descsz)) {
            return parse_nt_file(c, base + desc_off, nh.n_descsz);
        }
        if (next <= off) {
            break;
        }
        off = next;
    }
    return 0;
}

/* ---- Lookups, by binary search ----------------------------------------- */

/*
 * Real cores have PT_LOAD segments and NT_FILE mappings that do not
 * overlap; a hostile one may have a million of each.  Lookups go through
 * copies sorted by address (stable: program header or note order among
 * equal addresses), so that each costs O(log n), never O(n): the one
 * with the greatest start at or below the address is the one that holds
 * it, or none does.
 */
static int cmp_seg_vaddr(const void *x, const void *y)
{
    const CoreSeg *a = *(const CoreSeg *const *)x;
    const CoreSeg *b = *(const CoreSeg *const *)y;

    if (a->vaddr != b->vaddr) {
        return a->vaddr < b->vaddr ? -1 : 1;
    }
    return a < b ? -1 : a > b;
}

static int cmp_seg_offset(const void *x, const void *y)
{
    const CoreSeg *a = *(const CoreSeg *const *)x;
    const CoreSeg *b = *(const CoreSeg *const *)y;

    if (a->offset != b->offset) {
        return a->offset < b->offset ? -1 : 1;
    }
    return a < b ? -1 : a > b;
}

static int cmp_map_start(const void *x, const void *y)
{
    const CoreMap *a = *(const CoreMap *const *)x;
    const CoreMap *b = *(const CoreMap *const *)y;

    if (a->start != b->start) {
        return a->start < b->start ? -1 : 1;
    }
    return a < b ? -1 : a > b;
}

/* Index of the last of @n sorted keys at or below @key, or -1. */
#define LAST_AT_OR_BELOW(arr, n, field, key, ret) do {                  \
        size_t lo_ = 0, hi_ = (n);                                       \
        while (lo_ < hi_) {                                              \
            size_t mid_ = lo_ + (hi_ - lo_) / 2;                         \
            if ((arr)[mid_]->field <= (key)) {                           \
                lo_ = mid_ + 1;                                          \
            } else {                                                     \
                hi_ = mid_;                                              \
            }                                                            \
        }                                                                \
        (ret) = (ptrdiff_t)lo_ - 1;                                      \
    } while (0)

/* Sort the lookup copies once the headers are read. */
static int core_index(Core *c)
{
    size_t i;

    c->seg_by_vaddr = calloc(c->nsegs ? c->nsegs : 1, sizeof(CoreSeg *));
    c->seg_by_offset = calloc(c->nsegs ? c->nsegs : 1, sizeof(CoreSeg *));
    c->map_by_start = calloc(c->nmaps ? c->nmaps : 1, sizeof(CoreMap *));
    if (!c->seg_by_vaddr || !c->seg_by_offset || !c->map_by_start) {
        return core_fail(c, -ENOMEM, 0, "out of memory");
    }
    for (i = 0; i < c->nsegs; i++) {
        c->seg_by_vaddr[i] = &c->segs[i];
        c->seg_by_offset[i] = &c->segs[i];
    }
    for (i = 0; i < c->nmaps; i++) {
        c->map_by_start[i] = &c->maps[i];
    }
    qsort(c->seg_by_vaddr, c->nsegs, sizeof(CoreSeg *), cmp_seg_vaddr);
    qsort(c->seg_by_offset, c->nsegs, sizeof(CoreSeg *), cmp_seg_offset);
    qsort(c->map_by_start, c->nmaps, sizeof(CoreMap *), cmp_map_start);
    return 0;
}

/* The NT_FILE entry whose range holds @vaddr, or NULL. */
static const CoreMap *map_at(const Core *c, uint64_t vaddr)
{
    ptrdiff_t i;

    LAST_AT_OR_BELOW(c->map_by_start, c->nmaps, start, vaddr, i);
    if (i < 0 || vaddr >= c->map_by_start[i]->end) {
        return NULL;
    }
    return c->map_by_start[i];
}

/*
 * Where the byte at @vaddr is in the file, and how many bytes follow it
 * in the same segment.  Returns false when no segment has it on file.
 */
static bool vaddr_to_file(const Core *c, uint64_t vaddr, uint64_t *ret_off,
                          uint64_t *ret_avail)
{
    const CoreSeg *s;
    uint64_t delta;
    ptrdiff_t i;

    LAST_AT_OR_BELOW(c->seg_by_vaddr, c->nsegs, vaddr, vaddr, i);
    if (i < 0) {
        return false;
    }
    s = c->seg_by_vaddr[i];
    delta = vaddr - s->vaddr;
    if (delta >= s->filesz) {
        return false;
    }
    *ret_off = s->offset + delta;
    *ret_avail = s->filesz - delta;
    return true;
}

/* Read the ELF header and the program headers. */
static int core_load(Core *c)
{
    GElf_Ehdr eh;
    GElf_Phdr ph;
    const char *ident;
    size_t n, i;
    int ret;

    if (elf_version(EV_CURRENT) == EV_NONE) {
        return core_fail(c, -ENOMEM, 0, "libelf unavailable");
    }
    if (c->src.fd >= 0) {
        /* ELF_C_READ reads with pread(): the fd offset does not move. */
        c->elf = elf_begin(c->src.fd, ELF_C_READ, NULL);
    } else {
        /* libelf may rewrite an image in place: give it its own copy. */
        c->image = malloc(c->src.size ? c->src.size : 1);
        if (!c->image) {
            return core_fail(c, -ENOMEM, 0, "out of memory");
        }
        memcpy(c->image, c->src.buf, c->src.size);
        c->elf = elf_memory((char *)c->image, c->src.size);
    }
    if (!c->elf || elf_kind(c->elf) != ELF_K_ELF) {
        return core_fail(c, -EBADMSG, 0, "not an ELF file");
    }
    ident = elf_getident(c->elf, NULL);
    if (!ident || !gelf_getehdr(c->elf, &eh)) {
        return core_fail(c, -EBADMSG, 0, "bad ELF header");
    }
    if (eh.e_type != ET_CORE) {
        return core_fail(c, -EBADMSG, 16, "ELF file is not a core dump");
    }
    c->is64 = ident[EI_CLASS] == ELFCLASS64;
    c->big_endian = ident[EI_DATA] == ELFDATA2MSB;
    if (elf_getphdrnum(c->elf, &n)) {
        return core_fail(c, -EBADMSG, 0, "bad program header count");
    }
    if (n > CORE_MAX_PHDRS) {
        return core_fail(c, -E2BIG, 0, "too many program headers");
    }
    c->segs = calloc(n ? n : 1, sizeof(*c->segs));
    if (!c->segs) {
        return core_fail(c, -ENOMEM, 0, "out of memory");
    }
    for (i = 0; i < n; i++) {
        if (!gelf_getphdr(c->elf, (int)i, &ph)) {
            return core_fail(c, -EBADMSG, eh.e_phoff, "bad program header");
        }
        if (ph.p_type == PT_NOTE) {
            ret = scan_notes(c, &ph);
            if (ret) {
                return core_fail(c, ret, ph.p_offset, "out of memory");
            }
        } else if (ph.p_type == PT_LOAD) {
            CoreSeg *s = &c->segs[c->nsegs++];

            s->vaddr = ph.p_vaddr;
            s->memsz = ph.p_memsz;
            s->offset = ph.p_offset;
            /* A truncated core: keep only the bytes that are there. */
            if (ph.p_offset >= c->src.size) {
                s->filesz = 0;
            } else if (ph.p_filesz > c->src.size - ph.p_offset) {
                s->filesz = c->src.size - ph.p_offset;
            } else {
                s->filesz = ph.p_filesz;
            }
            if (s->filesz > s->memsz) {
                s->filesz = s->memsz;
            }
        }
    }
    return core_index(c);
}

/* ---- Reading candidates ------------------------------------------------ */

/*
 * @len bytes of the core at file offset @off (the caller checked the
 * range): in place for a buffer or for bytes of the scan's current chunk,
 * else in c->scratch, which keeps what it holds: a legacy window that
 * grows at one offset reads only its new bytes.  Valid until the next
 * call for another offset.
 */
static int core_bytes(Core *c, uint64_t off, uint64_t len,
                      const uint8_t **ret_p)
{
    uint64_t have = 0, in_chunk;
    uint8_t *p;
    int ret;

    if (c->src.fd < 0) {
        *ret_p = c->src.buf + off;
        return 0;
    }
    in_chunk = c->chunk && off >= c->chunk_off &&
               off - c->chunk_off <= c->chunk_len ?
               c->chunk_len - (off - c->chunk_off) : 0;
    if (len <= in_chunk) {
        *ret_p = c->chunk + (off - c->chunk_off);
        return 0;
    }
    if (len > c->scratch_cap) {
        p = realloc(c->scratch, (size_t)len);
        if (!p) {
            return -ENOMEM;
        }
        c->scratch = p;
        c->scratch_cap = len;
    }
    if (c->scratch_len && c->scratch_off == off) {
        have = c->scratch_len < len ? c->scratch_len : len;
    } else if (in_chunk) {
        memcpy(c->scratch, c->chunk + (off - c->chunk_off), in_chunk);
        WORK(c, read_bytes, in_chunk);
        have = in_chunk;
    }
    c->scratch_off = off;
    c->scratch_len = 0;
    ret = src_read(&c->src, off + have, c->scratch + have,
                   (size_t)(len - have));
    if (ret) {
        return ret;
    }
    WORK(c, read_bytes, len - have);
    c->scratch_len = len;
    *ret_p = c->scratch;
    return 0;
}

/* Is @name the path of the state memfd: "/memfd:NAME" [" (deleted)"]? */
static bool is_state_path(const Core *c, const char *name)
{
    static const char prefix[] = "/memfd:";
    static const char deleted[] = " (deleted)";
    size_t n = strlen(c->memfd_name);

    if (strncmp(name, prefix, sizeof(prefix) - 1)) {
        return false;
    }
    name += sizeof(prefix) - 1;
    if (strncmp(name, c->memfd_name, n)) {
        return false;
    }
    name += n;
    return !*name || !strcmp(name, deleted);
}

/*
 * An arena candidate: its magic, a sane header size and a matching
 * header CRC (the magic alone is found in any binary that links
 * libcprstate).  Returns 1 and fills @st, 0 for no, or a negative errno.
 */
static int probe_arena(Core *c, uint64_t off, uint64_t avail, CoreState *st)
{
    uint8_t head[CPRS_MAX_HEADER_SIZE];
    const uint8_t *p;
    uint32_t hsize, crc;
    uint64_t arena_size, win;
    int ret;

    if (avail < CPRS_HEADER_V1_SIZE) {
        return 0;
    }
    win = avail < sizeof(head) ? avail : sizeof(head);
    ret = core_bytes(c, off, win, &p);
    if (ret) {
        return ret;
    }
    /* spec 3.4, 3.9: header size in range, then the header CRC. */
    memcpy(head, p, (size_t)win);
    hsize = cprs_le32_get(&((const CprsWireHeader *)head)->header_size);
    if (hsize < CPRS_HEADER_V1_SIZE || hsize > CPRS_MAX_HEADER_SIZE ||
        (hsize & (CPRS_ALIGN - 1)) || hsize > win) {
        return 0;
    }
    crc = cprs_le32_get(&((const CprsWireHeader *)head)->header_crc32c);
    memset(head + offsetof(CprsWireHeader, header_crc32c), 0, 4);
    WORK(c, crc_bytes, hsize);
    if (cprs_crc32c(0, head, hsize) != crc) {
        return 0;
    }
    arena_size = cprs_le64_get(&((const CprsWireHeader *)head)->arena_size);
    if (arena_size < hsize) {
        return 0;
    }
    st->format = CPRS_DETECT_ARENA;
    st->declared_size = arena_size;
    st->size = arena_size <= avail ? arena_size : avail;
    if (arena_size > avail) {
        st->flags |= CORE_STATE_F_TRUNCATED;
    }
    return 1;
}

/*
 * A legacy candidate must decode (leniently: it is followed by whatever
 * the memory held).  It is decoded in a window that starts small and
 * doubles only while the verdict could depend on the bytes past it, so
 * the work is proportional to the bytes the stream (or the decode's
 * failure) spans, not to the 16 MiB it may have: inspect_legacy_more().
 * *@ret_span gets those bytes, which the scan then does not search for
 * another stream.  Returns 1 and fills @st, 0 for no, or a negative errno.
 */
static int probe_legacy(Core *c, uint64_t off, uint64_t avail,
                        CoreState *st, uint64_t *ret_span)
{
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                  .flags = CPRS_LEGACY_F_LENIENT |
                                           CPRS_LEGACY_F_ALL_FORMS);
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    uint64_t cap, win;
    const uint8_t *p;
    CprsLegacy *lg = NULL;
    uint32_t namelen;
    int ret;

    /*
     * A first look, for a core full of the magic: a first record whose
     * namelen is 0 or over the limit is what the decoder refuses at once
     * (spec L4.3, in lenient mode too), so it is refused without it.
     */
    if (avail >= CORE_MAGIC_LEN + 5) {
        ret = core_bytes(c, off, CORE_MAGIC_LEN + 5, &p);
        if (ret) {
            return ret;
        }
        namelen = (uint32_t)p[9] << 24 | (uint32_t)p[10] << 16 |
                  (uint32_t)p[11] << 8 | p[12];
        if (p[8] && (!namelen || namelen > CPRS_MAX_NAME_LEN + 1)) {
            *ret_span = CORE_MAGIC_LEN + 1;
            return 0;
        }
    }
    cap = avail < CORE_LEGACY_WINDOW ? avail : CORE_LEGACY_WINDOW;
    win = cap < CORE_LEGACY_FIRST ? cap : CORE_LEGACY_FIRST;
    for (;;) {
        ret = core_bytes(c, off, win, &p);
        if (ret) {
            return ret;
        }
        WORK(c, decode_bytes, win);
        ret = cprs_legacy_decode(p, (size_t)win, &lo, &diag, &lg);
        if (ret == -ENOMEM) {
            return ret;
        }
        if (!ret) {
            cprs_legacy_get_info(lg, &li);
            cprs_legacy_free(lg);
        }
        if (win == cap || !inspect_legacy_more(ret, &diag, li.size, win)) {
            break;
        }
        win = win > cap / 2 ? cap : 2 * win;
    }
    *ret_span = ret ? diag.offset : li.size;
    if (ret) {
        return 0;
    }
    st->format = CPRS_DETECT_LEGACY;
    st->size = li.size;
    st->declared_size = li.size;
    return 1;
}

/* A state at file offset @off with @avail bytes on file? */
static int probe(Core *c, uint64_t off, uint64_t avail, CoreState *st,
                 uint64_t *ret_span)
{
    const uint8_t *p;
    int kind, ret;

    *ret_span = 0;
    if (avail < CORE_MAGIC_LEN) {
        return 0;
    }
    WORK(c, probes, 1);
    ret = core_bytes(c, off, CORE_MAGIC_LEN, &p);
    if (ret) {
        return ret;
    }
    kind = cprs_detect(p, CORE_MAGIC_LEN);
    if (kind == CPRS_DETECT_ARENA) {
        return probe_arena(c, off, avail, st);
    }
    if (kind != CPRS_DETECT_LEGACY || memcmp(p, legacy_magic,
                                             CORE_MAGIC_LEN)) {
        return 0;
    }
    return probe_legacy(c, off, avail, st, ret_span);
}

/*
 * One more candidate: the one asked for (1: the search is over), or one
 * that opts->skip passes over (0).
 */
static int emit(Core *c, const CoreState *st)
{
    uint64_t (*met)[2];
    size_t i;

    /*
     * A hostile core may list one mapping or one segment twice: the same
     * bytes at the same address are one candidate, not two.  At most
     * opts.skip + 1 candidates are met before the search ends.
     */
    for (i = 0; i < c->nmet; i++) {
        if (c->met[i][0] == st->file_offset && c->met[i][1] == st->vaddr) {
            return 0;
        }
    }
    met = realloc(c->met, (c->nmet + 1) * sizeof(*met));
    if (!met) {
        return core_fail(c, -ENOMEM, 0, "out of memory");
    }
    c->met = met;
    c->met[c->nmet][0] = st->file_offset;
    c->met[c->nmet][1] = st->vaddr;
    c->nmet++;
    if (c->found++ < c->opts.skip) {
        return 0;
    }
    c->result = *st;
    return 1;
}

static void fill_map(CoreState *st, const CoreMap *m, uint64_t page)
{
    uint64_t off;

    if (!m) {
        return;
    }
    st->map_start = m->start;
    st->map_end = m->end;
    st->map_offset = !__builtin_mul_overflow(m->pgoff, page, &off) ? off :
                     UINT64_MAX;
    snprintf(st->map_name, sizeof(st->map_name), "%s", m->name);
}

/* ---- Phase 1: mappings that NT_FILE names as the state memfd ----------- */

/* A named mapping: where its first byte is on file. */
typedef struct Named {
    const CoreMap *map;
    uint64_t off;           /* file offset of map->start */
    uint64_t avail;         /* bytes on file from there, within the map */
    int found;              /* probe result at off: 1, 0, or < 0 */
    CoreState st;
} Named;

static int cmp_named_off(const void *x, const void *y)
{
    const Named *a = *(const Named *const *)x, *b = *(const Named *const *)y;

    if (a->off != b->off) {
        return a->off < b->off ? -1 : 1;
    }
    return a < b ? -1 : a > b;
}

/*
 * Probe each file offset that named mappings start at once, within the
 * largest of them (a hostile note may name one offset a million times),
 * then give every mapping the state that fits in it.
 */
static int probe_named(Core *c, Named *n, size_t count)
{
    Named **by_off = calloc(count ? count : 1, sizeof(*by_off));
    uint64_t span;
    size_t i, k, best;
    int ret = 0;

    if (!by_off) {
        return -ENOMEM;
    }
    for (i = 0; i < count; i++) {
        by_off[i] = &n[i];
    }
    qsort(by_off, count, sizeof(*by_off), cmp_named_off);
    for (i = 0; i < count && ret >= 0; i = k) {
        best = i;
        for (k = i; k < count && by_off[k]->off == by_off[i]->off; k++) {
            if (by_off[k]->avail > by_off[best]->avail) {
                best = k;
            }
        }
        memset(&by_off[best]->st, 0, sizeof(CoreState));
        ret = probe(c, by_off[i]->off, by_off[best]->avail,
                    &by_off[best]->st, &span);
        for (; i < k && ret >= 0; i++) {
            Named *m = by_off[i];

            m->st = by_off[best]->st;
            m->found = ret;
            if (ret && m->st.format == CPRS_DETECT_LEGACY &&
                m->st.size > m->avail) {
                m->found = 0;           /* the stream overruns the map */
            } else if (ret && m->st.declared_size > m->avail) {
                m->st.size = m->avail;
                m->st.flags |= CORE_STATE_F_TRUNCATED;
            }
        }
    }
    free(by_off);
    return ret < 0 ? ret : 0;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

    return a < b ? -1 : a > b;
}

static int find_named(Core *c)
{
    Named *n;
    size_t i, count = 0;
    uint64_t span;
    int ret;

    n = calloc(c->nmaps ? c->nmaps : 1, sizeof(*n));
    c->named = calloc(c->nmaps ? c->nmaps : 1, sizeof(*c->named));
    if (!n || !c->named) {
        free(n);
        return core_fail(c, -ENOMEM, 0, "out of memory");
    }
    for (i = 0; i < c->nmaps; i++) {
        const CoreMap *m = &c->maps[i];

        /* Only a mapping of file offset 0 holds the state's first byte. */
        if (!is_state_path(c, m->name) || m->pgoff) {
            continue;
        }
        if (!vaddr_to_file(c, m->start, &n[count].off, &n[count].avail)) {
            c->not_dumped = true;
            continue;
        }
        span = m->end - m->start;
        if (n[count].avail > span) {
            n[count].avail = span;
        }
        n[count++].map = m;
    }
    ret = probe_named(c, n, count);
    if (ret < 0) {
        free(n);
        return core_fail(c, ret, 0, "cannot read the core");
    }
    for (i = 0; i < count && !ret; i++) {
        if (!n[i].found) {
            c->named_invalid = true;
            continue;
        }
        c->named[c->nnamed++] = n[i].off;
        n[i].st.found_by = CORE_FOUND_NT_FILE;
        n[i].st.file_offset = n[i].off;
        n[i].st.vaddr = n[i].map->start;
        fill_map(&n[i].st, n[i].map, c->page_size);
        ret = emit(c, &n[i].st);    /* found (1) or out of memory */
    }
    free(n);
    /* The scan looks them up by offset. */
    qsort(c->named, c->nnamed, sizeof(*c->named), cmp_u64);
    return ret;
}

static bool already_named(const Core *c, uint64_t off)
{
    return c->nnamed && bsearch(&off, c->named, c->nnamed,
                                sizeof(*c->named), cmp_u64);
}

/* ---- Phase 2: the scan ------------------------------------------------- */

/* Check a magic hit at @delta bytes into segment @s. */
static int scan_hit(Core *c, const CoreSeg *s, uint64_t delta)
{
    CoreState st;
    uint64_t off = s->offset + delta, span;
    int ret;

    if (already_named(c, off)) {
        return 0;
    }
    memset(&st, 0, sizeof(st));
    ret = probe(c, off, s->filesz - delta, &st, &span);
    /* Hits inside what a legacy decode walked are not searched again. */
    if (span && off + span > c->legacy_end) {
        c->legacy_end = off + span;
    }
    if (ret <= 0) {
        return ret;
    }
    st.found_by = CORE_FOUND_SCAN;
    st.file_offset = off;
    st.vaddr = s->vaddr + delta;
    fill_map(&st, map_at(c, st.vaddr), c->page_size);
    return emit(c, &st);
}

/* Is there a magic at @p, whose address is @vaddr? */
static bool is_hit(const Core *c, const uint8_t *p, uint64_t vaddr,
                   uint64_t off)
{
    if (p[0] == 0x89) {
        return !(vaddr & (CPRS_ALIGN - 1)) &&
               !memcmp(p, CPRS_MAGIC, CORE_MAGIC_LEN);
    }
    return p[0] == 'Q' && off >= c->legacy_end &&
           !memcmp(p, legacy_magic, CORE_MAGIC_LEN);
}

/*
 * Scan segment @s for either magic, from @delta bytes into it.  Chunks
 * overlap by CORE_MAGIC_LEN - 1 bytes so a magic across a chunk edge is
 * found once.
 */
static int scan_segment(Core *c, const CoreSeg *s, uint64_t pos,
                        uint8_t *chunk)
{
    uint64_t len, i;
    const uint8_t *p;
    int ret;

    while (pos < s->filesz) {
        len = s->filesz - pos;
        if (len > CORE_SCAN_CHUNK) {
            len = CORE_SCAN_CHUNK;
        }
        if (c->opts.max_scan && c->scanned >= c->opts.max_scan) {
            return 0;
        }
        c->scanned += len;
        WORK(c, scan_bytes, len);
        if (c->src.fd < 0) {
            p = c->src.buf + s->offset + pos;
        } else {
            ret = src_read(&c->src, s->offset + pos, chunk, (size_t)len);
            if (ret) {
                return core_fail(c, ret, s->offset + pos,
                                 "cannot read the core");
            }
            WORK(c, read_bytes, len);
            p = chunk;
            c->chunk = chunk;
            c->chunk_off = s->offset + pos;
            c->chunk_len = len;
        }
        for (i = 0; len >= CORE_MAGIC_LEN && i <= len - CORE_MAGIC_LEN;
             i++) {
            if ((p[i] != 0x89 && p[i] != 'Q') ||
                !is_hit(c, p + i, s->vaddr + pos + i, s->offset + pos + i)) {
                continue;
            }
            ret = scan_hit(c, s, pos + i);
            if (ret < 0) {
                return core_fail(c, ret, s->offset + pos + i,
                                 "cannot read the core");
            }
            if (ret) {
                return 1;
            }
        }
        if (pos + len >= s->filesz) {
            break;
        }
        pos += len - (CORE_MAGIC_LEN - 1);
    }
    return 0;
}

/*
 * Each byte of the core file is scanned once, under the first segment in
 * file order that holds it: segments that overlap on file (which only a
 * hostile core has) do not multiply the work.
 */
static int find_scan(Core *c)
{
    uint8_t *chunk = NULL;
    uint64_t covered = 0, start;
    size_t i;
    int ret = 0;

    if (c->src.fd >= 0) {
        chunk = malloc(CORE_SCAN_CHUNK);
        if (!chunk) {
            return core_fail(c, -ENOMEM, 0, "out of memory");
        }
    }
    for (i = 0; i < c->nsegs && !ret; i++) {
        const CoreSeg *s = c->seg_by_offset[i];

        start = covered > s->offset ? covered - s->offset : 0;
        if (s->offset + s->filesz > covered) {
            covered = s->offset + s->filesz;
        }
        ret = scan_segment(c, s, start, chunk);
    }
    c->chunk = NULL;
    free(chunk);
    return ret;
}

static int core_find(Core *c, const CoreOpts *opts,
                     CoreState *ret_state)
{
    int ret;

    if (!ret_state) {
        return core_fail(c, -EINVAL, 0, "invalid argument");
    }
    if (opts) {
        c->opts = *opts;
    }
    if (c->opts.flags & ~CORE_F_NO_SCAN) {
        return core_fail(c, -EINVAL, 0, "invalid options");
    }
    c->memfd_name = c->opts.memfd_name ? c->opts.memfd_name :
                    CORE_STATE_MEMFD_NAME;
    ret = core_load(c);
    if (!ret) {
        ret = find_named(c);
    }
    if (!ret && !(c->opts.flags & CORE_F_NO_SCAN)) {
        ret = find_scan(c);
    }
    if (ret < 0) {
        return ret;
    }
    if (!ret) {
        if (c->not_dumped && !c->found) {
            return core_fail(c, -ENODATA, 0, "the state mapping named in "
                             "NT_FILE has no pages in the core");
        }
        if (c->named_invalid && !c->found) {
            return core_fail(c, -ENOENT, 0, "the state mapping named in "
                             "NT_FILE holds no valid state");
        }
        return core_fail(c, -ENOENT, 0, c->found ? "no further state in "
                         "the core" : "no CPR state in the core");
    }
    if (c->nt_file_bad) {
        c->result.flags |= CORE_STATE_F_BAD_NT_FILE;
    }
    if (!c->nt_file_seen) {
        c->result.flags |= CORE_STATE_F_NO_NT_FILE;
    }
    *ret_state = c->result;
    return 0;
}

static void core_release(Core *c)
{
    if (c->elf) {
        elf_end(c->elf);
    }
    free(c->image);
    free(c->segs);
    free(c->maps);
    free(c->named);
    free(c->met);
    free(c->seg_by_vaddr);
    free(c->seg_by_offset);
    free(c->map_by_start);
    free(c->scratch);
}

int core_find_state(int core_fd, const CoreOpts *opts,
                         CprsDiag *diag, CoreState *ret_state)
{
    Core c = { .src.fd = core_fd, .diag = diag };
    struct stat st;
    int ret;

    if (core_fd < 0) {
        return inspect_fail(diag, -EINVAL, 0, "invalid argument");
    }
    if (fstat(core_fd, &st) < 0) {
        ret = -errno;
        return inspect_fail(diag, ret, 0, "fstat failed");
    }
    if (!S_ISREG(st.st_mode)) {
        return inspect_fail(diag, -EINVAL, 0,
                            "a core must be a regular file");
    }
    c.src.size = (uint64_t)st.st_size;
    ret = core_find(&c, opts, ret_state);
    core_release(&c);
    return ret;
}

int core_find_state_buffer(const void *buf, size_t size,
                                const CoreOpts *opts, CprsDiag *diag,
                                CoreState *ret_state)
{
    Core c = { .src.fd = -1, .src.buf = buf, .src.size = size,
               .diag = diag };
    int ret;

    if (!buf && size) {
        return inspect_fail(diag, -EINVAL, 0, "invalid argument");
    }
    ret = core_find(&c, opts, ret_state);
    core_release(&c);
    return ret;
}

int inspect_fail(CprsDiag *diag, int error, uint64_t offset,
                 const char *reason)
{
    if (diag) {
        *diag = CPRS_OPTS(CprsDiag, .offset = offset, .section = -1,
                          .error = error, .record = -1, .clause = "",
                          .reason = reason);
    }
    return error;
}

bool inspect_legacy_more(int ret, const CprsDiag *diag, uint64_t size,
                         uint64_t len)
{
    /* spec L7: running out of bytes is reported where the data ends. */
    if (ret) {
        return ret == -EBADMSG && diag->offset >= len;
    }
    /*
     * A success this close to the end may read otherwise with more: a
     * subsection header cut short (QEMU stops before it), or a stream
     * ending exactly there (the header-only vfio form).
     */
    return size + INSPECT_LEGACY_TAIL >= len;
}
