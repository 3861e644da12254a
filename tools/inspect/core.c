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
 * file is read with pread() only, and decoded here: the ELF and program
 * headers, the note framing and the NT_FILE payload.  Not with libelf,
 * which sizes its own tables from a hostile file's counts (one Elf_Scn
 * per section a header claims), keeps every note chunk it reads until
 * the end, and wants its own copy of an image in memory.
 */
#include <elf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-le.h"
#include "inspect.h"

/* CORE_PORTABLE: the code other hosts run, for a test on this one. */
#if defined(__SSE2__) && !defined(CORE_PORTABLE)
#define CORE_HAVE_SSE2 1
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && !defined(CORE_PORTABLE)
#define CORE_HAVE_CLMUL 1
#include <nmmintrin.h>
#include <wmmintrin.h>
#endif

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif

/* Bytes of one PT_NOTE segment we read; a big process needs ~1 MiB. */
#define CORE_MAX_NOTE_SIZE      (UINT64_C(64) << 20)
/*
 * PT_NOTE bytes read in all, each segment once (duplicates are one), up
 * to the NT_FILE note: notes past this are ignored (real cores have a few
 * MiB of notes at most).
 */
#define CORE_MAX_NOTE_TOTAL     (UINT64_C(64) << 20)
/* Program headers we accept; the kernel caps mappings at 65530 by default. */
#define CORE_MAX_PHDRS          (1u << 20)
/* NT_FILE entries we accept (same bound). */
#define CORE_MAX_MAPS           (1u << 20)
/* Bytes in which a legacy stream candidate is decoded, at most... */
#define CORE_LEGACY_WINDOW      (UINT64_C(16) << 20)
/* ... and first: the window doubles only while the stream needs it. */
#define CORE_LEGACY_FIRST       UINT64_C(64)
/* Bytes scanned at a time... */
#define CORE_SCAN_CHUNK         (UINT64_C(1) << 20)
/* ... read with the bytes after them that a candidate there may need: a
 * magic across the chunk edge, the header of an arena candidate. */
#define CORE_SCAN_AHEAD         ((uint64_t)CPRS_MAX_HEADER_SIZE)
#define CORE_MAGIC_LEN          8u
/* Registers kept by the rolling header checksum: one per 8 bytes. */
#define CORE_ROLL_RING          1024u

/*
 * The per-candidate steps of the scan, inlined into their callers (the
 * walk's state then stays in registers): a hostile core has a candidate
 * every few bytes.
 */
#define CORE_INLINE inline __attribute__((always_inline))

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

/* An NT_FILE entry; @name points into Core.notes. */
typedef struct CoreMap {
    uint64_t start;
    uint64_t end;
    uint64_t pgoff;         /* offset in the file, pages */
    const char *name;
} CoreMap;

/* A PT_NOTE segment. */
typedef struct CoreNote {
    uint64_t offset;
    uint64_t filesz;
} CoreNote;

typedef struct Core {
    CoreSrc src;
    uint8_t *notes;         /* the PT_NOTE segment that holds NT_FILE */
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
    /*
     * The rolling header checksum (roll_check()): one CRC32C register run
     * over the file from @roll_base, its value at every 8th offset up to
     * @roll_pos in a ring (the last CORE_ROLL_RING of them).
     */
    bool roll_on;
    uint64_t roll_base;
    uint64_t roll_pos;
    uint32_t roll_reg;
    uint32_t roll_at[CORE_ROLL_RING];
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
    if (s->fd < 0) {
        memcpy(dst, s->buf + off, len);
        return 0;
    }
    /* A file that shrank under us: what we were told is gone. */
    return inspect_pread(s->fd, dst, len, off);
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

/* A field of @w bytes at @p, in the core's byte order. */
static uint64_t core_uint(const Core *c, const uint8_t *p, unsigned w)
{
    uint64_t v = 0;
    unsigned i;

    for (i = 0; i < w; i++) {
        v = (v << 8) | p[c->big_endian ? i : w - 1 - i];
    }
    return v;
}

/*
 * Look for NT_FILE in one PT_NOTE segment of @len bytes at @p (ELF notes:
 * namesz, descsz, type, then name and descriptor, each padded to 4).
 * Returns 1 when it is there (parsed: the segment must stay), 0 if not.
 */
static int scan_notes(Core *c, const uint8_t *p, uint64_t len)
{
    uint64_t off = 0, namesz, descsz, name_off, desc_off, next;
    uint32_t type;

    while (len - off >= 12) {
        namesz = core_uint(c, p + off, 4);
        descsz = core_uint(c, p + off + 4, 4);
        type = (uint32_t)core_uint(c, p + off + 8, 4);
        name_off = off + 12;
        /* Sizes below 2^32 and @len below 2^26: no overflow. */
        desc_off = name_off + ((namesz + 3) & ~UINT64_C(3));
        next = desc_off + ((descsz + 3) & ~UINT64_C(3));
        if (name_off + namesz > len || desc_off + descsz > len) {
            break;
        }
        if (type == NT_FILE && namesz == 5 &&
            !memcmp(p + name_off, "CORE", 5)) {
            return parse_nt_file(c, p + desc_off, descsz) < 0 ? -ENOMEM : 1;
        }
        if (next > len) {
            break;
        }
        off = next;
    }
    return 0;
}

static int cmp_note(const void *x, const void *y)
{
    const CoreNote *a = x, *b = y;

    if (a->offset != b->offset) {
        return a->offset < b->offset ? -1 : 1;
    }
    return a->filesz < b->filesz ? -1 : a->filesz > b->filesz;
}

/*
 * The PT_NOTE segments, in file order, each (offset, size) once: read
 * with pread() into one buffer, walked, until NT_FILE is found (its
 * segment is then kept: the mappings' names point into it) or
 * CORE_MAX_NOTE_TOTAL bytes were read.
 */
static int load_notes(Core *c, CoreNote *notes, size_t n)
{
    uint64_t total = 0, cap = 0;
    uint8_t *buf = NULL, *nb;
    size_t i;
    int ret = 0;

    qsort(notes, n, sizeof(*notes), cmp_note);
    for (i = 0; i < n && !c->nt_file_seen; i++) {
        const CoreNote *nt = &notes[i];

        if (i && nt->offset == notes[i - 1].offset &&
            nt->filesz == notes[i - 1].filesz) {
            continue;
        }
        if (!nt->filesz || nt->filesz > CORE_MAX_NOTE_SIZE ||
            !inspect_range_ok(c->src.size, nt->offset, nt->filesz)) {
            continue;
        }
        if (nt->filesz > CORE_MAX_NOTE_TOTAL - total) {
            break;
        }
        total += nt->filesz;
        if (nt->filesz > cap) {
            nb = realloc(buf, (size_t)nt->filesz);
            if (!nb) {
                ret = core_fail(c, -ENOMEM, nt->offset, "out of memory");
                break;
            }
            buf = nb;
            cap = nt->filesz;
        }
        ret = src_read(&c->src, nt->offset, buf, (size_t)nt->filesz);
        if (ret) {
            ret = core_fail(c, ret, nt->offset, "cannot read a note");
            break;
        }
        WORK(c, read_bytes, nt->filesz);
        WORK(c, note_bytes, nt->filesz);
        ret = scan_notes(c, buf, nt->filesz);
        if (ret < 0) {
            ret = core_fail(c, ret, nt->offset, "out of memory");
            break;
        }
        if (ret > 0) {
            c->notes = buf;     /* the mappings' names are in it */
            return 0;
        }
    }
    free(buf);
    return ret;
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

/* Program headers read at a time. */
#define CORE_PHDR_BATCH 1024u

/* Read the ELF header and the program headers, then the notes. */
static int core_load(Core *c)
{
    uint8_t eh[sizeof(Elf64_Ehdr)], *ph, *batch = NULL;
    uint64_t phoff, phent, phnum, shoff, shent, ehsize, i, k, cnt, off;
    CoreNote *notes = NULL;
    size_t nnotes = 0;
    unsigned w;
    int ret;

    if (c->src.size < EI_NIDENT) {
        return core_fail(c, -EBADMSG, 0, "not an ELF file");
    }
    ret = src_read(&c->src, 0, eh, EI_NIDENT);
    if (ret) {
        return core_fail(c, ret, 0, "cannot read the ELF header");
    }
    if (memcmp(eh, ELFMAG, SELFMAG) || (eh[EI_CLASS] != ELFCLASS32 &&
                                        eh[EI_CLASS] != ELFCLASS64) ||
        (eh[EI_DATA] != ELFDATA2LSB && eh[EI_DATA] != ELFDATA2MSB) ||
        eh[EI_VERSION] != EV_CURRENT) {
        return core_fail(c, -EBADMSG, 0, "not an ELF file");
    }
    c->is64 = eh[EI_CLASS] == ELFCLASS64;
    c->big_endian = eh[EI_DATA] == ELFDATA2MSB;
    w = c->is64 ? 8 : 4;
    ehsize = c->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    if (c->src.size < ehsize) {
        return core_fail(c, -EBADMSG, 0, "bad ELF header");
    }
    ret = src_read(&c->src, 0, eh, (size_t)ehsize);
    if (ret) {
        return core_fail(c, ret, 0, "cannot read the ELF header");
    }
    WORK(c, read_bytes, ehsize);
    if (core_uint(c, eh + 16, 2) != ET_CORE) {
        return core_fail(c, -EBADMSG, 16, "ELF file is not a core dump");
    }
    phoff = core_uint(c, eh + (c->is64 ? 32 : 28), w);
    shoff = core_uint(c, eh + (c->is64 ? 40 : 32), w);
    phent = core_uint(c, eh + (c->is64 ? 54 : 42), 2);
    phnum = core_uint(c, eh + (c->is64 ? 56 : 44), 2);
    shent = core_uint(c, eh + (c->is64 ? 58 : 46), 2);
    if (phnum == PN_XNUM) {
        /* The count is in the first section header's sh_info. */
        uint8_t sh0[sizeof(Elf64_Shdr)];
        uint64_t shsize = c->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);

        if (!shoff || shent != shsize ||
            !inspect_range_ok(c->src.size, shoff, shsize)) {
            return core_fail(c, -EBADMSG, c->is64 ? 40 : 32,
                             "bad program header count");
        }
        ret = src_read(&c->src, shoff, sh0, (size_t)shsize);
        if (ret) {
            return core_fail(c, ret, shoff, "cannot read a section header");
        }
        phnum = core_uint(c, sh0 + (c->is64 ? 44 : 28), 4);
    }
    if (phnum > CORE_MAX_PHDRS) {
        return core_fail(c, -E2BIG, 0, "too many program headers");
    }
    if (phnum && (phent != (c->is64 ? sizeof(Elf64_Phdr) :
                            sizeof(Elf32_Phdr)) ||
                  !inspect_range_ok(c->src.size, phoff, phnum * phent))) {
        /* The field that says where, or how big: inside the file. */
        return core_fail(c, -EBADMSG, c->is64 ? 32 : 28,
                         "bad program header");
    }
    c->segs = calloc(phnum ? phnum : 1, sizeof(*c->segs));
    notes = calloc(phnum ? phnum : 1, sizeof(*notes));
    batch = malloc(CORE_PHDR_BATCH * sizeof(Elf64_Phdr));
    if (!c->segs || !notes || !batch) {
        ret = core_fail(c, -ENOMEM, 0, "out of memory");
        goto out;
    }
    for (i = 0; i < phnum; i += cnt) {
        cnt = phnum - i < CORE_PHDR_BATCH ? phnum - i : CORE_PHDR_BATCH;
        ret = src_read(&c->src, phoff + i * phent, batch,
                       (size_t)(cnt * phent));
        if (ret) {
            ret = core_fail(c, ret, phoff + i * phent, "bad program header");
            goto out;
        }
        WORK(c, read_bytes, cnt * phent);
        for (k = 0; k < cnt; k++) {
            uint32_t type;
            uint64_t vaddr, filesz, memsz;

            ph = batch + k * phent;
            type = (uint32_t)core_uint(c, ph, 4);
            off = core_uint(c, ph + (c->is64 ? 8 : 4), w);
            vaddr = core_uint(c, ph + (c->is64 ? 16 : 8), w);
            filesz = core_uint(c, ph + (c->is64 ? 32 : 16), w);
            memsz = core_uint(c, ph + (c->is64 ? 40 : 20), w);
            if (type == PT_NOTE) {
                notes[nnotes].offset = off;
                notes[nnotes++].filesz = filesz;
            } else if (type == PT_LOAD) {
                CoreSeg *s = &c->segs[c->nsegs++];

                s->vaddr = vaddr;
                s->memsz = memsz;
                s->offset = off;
                /* A truncated core: keep only the bytes that are there. */
                if (off >= c->src.size) {
                    s->filesz = 0;
                } else if (filesz > c->src.size - off) {
                    s->filesz = c->src.size - off;
                } else {
                    s->filesz = filesz;
                }
                if (s->filesz > s->memsz) {
                    s->filesz = s->memsz;
                }
            }
        }
    }
    ret = load_notes(c, notes, nnotes);
    if (!ret) {
        ret = core_index(c);
    }
out:
    free(batch);
    free(notes);
    return ret;
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

/* ---- Header checksums of overlapping candidates ------------------------ */

/*
 * An arena candidate's header checksum covers header_size bytes (up to
 * 4 KiB) from its magic, and a core may hold a candidate every 8 bytes:
 * checksumming each window afresh would cost up to 512 times the bytes
 * scanned.  CRC32C is linear over GF(2), so one register R is run over
 * the file once and kept at every 8th offset.  Feeding n bytes to a
 * register multiplies it by x^(8n) (mod the CRC polynomial P) before
 * adding the bytes' own contribution, so with v the stored header_crc32c
 * (at offset 84, zeroed when the header is checksummed, spec 3.9), the
 * header of n bytes at offset a checks iff
 *
 *     R(a + n) ^ ~v  ==  (R(a) ^ ~0) * x^(8n)  ^  v * x^(8(n - 84))
 *
 * (the first term is the register started at ~0, as CRC32C starts it, run
 * over the window; the second removes v from the window).  The two
 * constants come from a table indexed by n / 8: each candidate costs two
 * multiplications and its share of one pass over the bytes.
 */

/* A header field of type @type at @p, whatever @p's alignment. */
#define HDR_FIELD(p, type, field) \
    ((const type *)(const void *)((p) + offsetof(CprsWireHeader, field)))

/* CRC32C's polynomial, bit-reflected: bit 31 is x^0, bit 0 is x^31. */
#define ROLL_POLY UINT32_C(0x82f63b78)
#define ROLL_CRC_AT ((uint32_t)offsetof(CprsWireHeader, header_crc32c))
#define ROLL_NSIZES (CPRS_MAX_HEADER_SIZE / 8 + 1)

static pthread_once_t roll_once = PTHREAD_ONCE_INIT;
#ifdef CORE_HAVE_CLMUL
static bool roll_hw;        /* SSE4.2 and carry-less multiply */
#endif
/* By header size / 8: the multipliers for x^(8n) and x^(8(n - 84)). */
static uint32_t roll_mul_n[ROLL_NSIZES];
static uint32_t roll_mul_v[ROLL_NSIZES];

static uint32_t roll_times_x(uint32_t a)
{
    return (a >> 1) ^ ((a & 1) ? ROLL_POLY : 0);
}

/* a * b mod P, a bit at a time (the portable path). */
static uint32_t roll_mul_sw(uint32_t a, uint32_t b)
{
    uint32_t prod = 0;
    unsigned k;

    for (k = 0; k < 32; k++) {
        if (a & (UINT32_C(0x80000000) >> k)) {
            prod ^= b;
        }
        b = roll_times_x(b);
    }
    return prod;
}

/* x^m mod P. */
static uint32_t roll_x_pow(uint64_t m)
{
    uint32_t v = UINT32_C(0x80000000);

    while (m--) {
        v = roll_times_x(v);
    }
    return v;
}

static void roll_setup(void)
{
    /* The hardware multiplier folds in x^33 (roll_mul_hw). */
    uint64_t e = 0, h, b;
    uint32_t mn, mv;

#ifdef CORE_HAVE_CLMUL
    __builtin_cpu_init();
    roll_hw = __builtin_cpu_supports("sse4.2") &&
              __builtin_cpu_supports("pclmul");
    e = roll_hw ? 33 : 0;
#endif
    mn = roll_x_pow(8 * CPRS_HEADER_V1_SIZE - e);
    mv = roll_x_pow(8 * (CPRS_HEADER_V1_SIZE - ROLL_CRC_AT) - e);
    for (h = CPRS_HEADER_V1_SIZE; h <= CPRS_MAX_HEADER_SIZE; h += 8) {
        roll_mul_n[h / 8] = mn;
        roll_mul_v[h / 8] = mv;
        for (b = 0; b < 64; b++) {         /* times x^64: 8 bytes more */
            mn = roll_times_x(mn);
            mv = roll_times_x(mv);
        }
    }
}

/*
 * Where the register is wanted from: it runs on from where it is when
 * @off is 8-aligned from its start and still in its ring, and starts
 * over at @off otherwise.  Candidates come in file order, so a pass over
 * a segment feeds each byte once (and a new start, at most one window).
 */
static CORE_INLINE void roll_from(Core *c, uint64_t off)
{
    if (!c->roll_on || off < c->roll_base || (off - c->roll_base) % 8 ||
        off > c->roll_pos ||
        c->roll_pos - off > 8 * (uint64_t)(CORE_ROLL_RING - 1)) {
        c->roll_on = true;
        c->roll_base = off;
        c->roll_pos = off;
        c->roll_reg = 0;
        c->roll_at[0] = 0;
    }
}

/* The register at file offset @off (8-aligned from its start, in range). */
static CORE_INLINE uint32_t roll_at(const Core *c, uint64_t off)
{
    return c->roll_at[(off - c->roll_base) / 8 % CORE_ROLL_RING];
}

#ifdef CORE_HAVE_CLMUL
/*
 * a * k * x^33 mod P: the carry-less product of two reflected 32-bit
 * values is their product divided by x, as 64 reflected bits; the crc32
 * instruction multiplies 64 bits of data by x^32 and reduces.  With k the
 * table's x^(8n - 33), that is a * x^(8n).
 */
__attribute__((target("sse4.2,pclmul")))
static inline uint32_t roll_mul_hw(uint32_t a, uint32_t k)
{
    __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)a),
                                        _mm_cvtsi32_si128((int)k), 0);

    return (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(prod));
}

/* roll_check() with SSE4.2's crc32 and the carry-less multiply. */
__attribute__((target("sse4.2,pclmul")))
static bool roll_check_hw(Core *c, uint64_t off, const uint8_t *p,
                          uint32_t hsize, uint32_t v)
{
    uint64_t end = off + hsize, k, w, i, n;
    uint32_t reg;

    roll_from(c, off);
    if (end > c->roll_pos) {
        k = (c->roll_pos - c->roll_base) / 8;
        n = end - c->roll_pos;
        p += c->roll_pos - off;
        reg = c->roll_reg;
        WORK(c, crc_bytes, n);
        for (i = 0; i < n; i += 8) {
            memcpy(&w, p + i, sizeof(w));
            reg = (uint32_t)_mm_crc32_u64(reg, w);
            c->roll_at[++k % CORE_ROLL_RING] = reg;
        }
        c->roll_reg = reg;
        c->roll_pos = end;
    }
    return (roll_at(c, end) ^ ~v) ==
           (roll_mul_hw(~roll_at(c, off), roll_mul_n[hsize / 8]) ^
            roll_mul_hw(v, roll_mul_v[hsize / 8]));
}
#endif

/* Does the header of @hsize bytes at @off (bytes at @p) sum to @v? */
static bool roll_check(Core *c, uint64_t off, const uint8_t *p,
                       uint32_t hsize, uint32_t v)
{
    uint64_t end = off + hsize, k, i;

#ifdef CORE_HAVE_CLMUL
    if (roll_hw) {
        return roll_check_hw(c, off, p, hsize, v);
    }
#endif
    roll_from(c, off);
    if (end > c->roll_pos) {
        k = (c->roll_pos - c->roll_base) / 8;
        p += c->roll_pos - off;
        WORK(c, crc_bytes, end - c->roll_pos);
        for (i = 0; i < end - c->roll_pos; i += 8) {
            c->roll_reg = ~cprs_crc32c(~c->roll_reg, p + i, 8);
            c->roll_at[++k % CORE_ROLL_RING] = c->roll_reg;
        }
        c->roll_pos = end;
    }
    return (roll_at(c, end) ^ ~v) ==
           (roll_mul_sw(~roll_at(c, off), roll_mul_n[hsize / 8]) ^
            roll_mul_sw(v, roll_mul_v[hsize / 8]));
}

/*
 * Is the arena header at file offset @off, whose first @win bytes (all
 * of them up to 4 KiB, or to the end of its segment) are at @p, one to
 * report?  A sane header size and a matching header CRC (the magic alone
 * is found in any binary that links libcprstate), and an arena_size that
 * holds the header.  A version 1 header whose arena_size no reader of
 * version 1.x accepts (spec 3.6, under the lenient rules too: 8.4) is
 * refused before its checksum: that costs nothing, where a core full of
 * candidates would otherwise cost a checksum each.  *@ret_arena_size:
 * its arena_size.
 */
static CORE_INLINE bool arena_header_ok(Core *c, uint64_t off,
                                        const uint8_t *p, uint64_t win,
                                        uint64_t *ret_arena_size)
{
    uint32_t hsize, crc;
    uint64_t arena_size;
    uint16_t major;
    bool ok;

    if (win < CPRS_HEADER_V1_SIZE) {
        return false;
    }
    /*
     * Each field read once into a local.  @p has any alignment: the
     * accessors copy bytes, and no member of a CprsWireHeader at @p is
     * ever formed.
     */
    major = cprs_le16_get(HDR_FIELD(p, CprsLe16, version_major));
    hsize = cprs_le32_get(HDR_FIELD(p, CprsLe32, header_size));
    arena_size = cprs_le64_get(HDR_FIELD(p, CprsLe64, arena_size));
    crc = cprs_le32_get(HDR_FIELD(p, CprsLe32, header_crc32c));
    /* spec 3.4, 3.6: header size in range; the arena holds it. */
    if (hsize < CPRS_HEADER_V1_SIZE || hsize > CPRS_MAX_HEADER_SIZE ||
        (hsize & (CPRS_ALIGN - 1)) || hsize > win || arena_size < hsize) {
        return false;
    }
    if (major == CPRS_FORMAT_VERSION_MAJOR &&
        ((arena_size & (CPRS_ALIGN - 1)) ||
         arena_size > CPRS_MAX_ARENA_SIZE)) {
        return false;
    }
    /* spec 3.9: the header CRC. */
    ok = roll_check(c, off, p, hsize, crc);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    {
        /* The fuzzers check the rolling checksum against a direct one. */
        uint8_t head[CPRS_MAX_HEADER_SIZE];

        memcpy(head, p, hsize);
        memset(head + ROLL_CRC_AT, 0, 4);
        if (ok != (cprs_crc32c(0, head, hsize) == crc)) {
            abort();
        }
    }
#endif
    *ret_arena_size = arena_size;
    return ok;
}

/* An arena candidate: returns 1 and fills @st, 0 for no, or an errno. */
static int probe_arena(Core *c, uint64_t off, uint64_t avail, CoreState *st)
{
    uint64_t arena_size, win;
    const uint8_t *p;
    int ret;

    win = avail < CPRS_MAX_HEADER_SIZE ? avail : CPRS_MAX_HEADER_SIZE;
    if (win < CPRS_HEADER_V1_SIZE) {
        return 0;
    }
    ret = core_bytes(c, off, win, &p);
    if (ret) {
        return ret;
    }
    if (!arena_header_ok(c, off, p, win, &arena_size)) {
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

/* ---- Legacy stream candidates ----------------------------------------- */

/* What the QEMU stream's grammar names (spec L4.7, L5.2, L5.3). */
#define WALK_FD_BYTE            0x20u
#define WALK_SUB_BYTE           0x05u
#define WALK_STATE_NAME         "CprState"
#define WALK_STATE_NAME_LEN     8u
#define WALK_VFIO_NAME          "CprState/vfio devices"
#define WALK_VFIO_NAME_LEN      21u

/*
 * The grammar of a legacy stream (spec L3 to L6), walked the way
 * cprs_legacy_decode() walks it in lenient, all-forms mode (the mode
 * the scan decodes in: mode 0, no fd check, the default limits), but
 * keeping nothing: no record, no table, no allocation.  Only the verdict
 * is wanted: a candidate that fails costs a walk to its failure instead
 * of a decoder set-up (most candidates in a hostile core fail in their
 * first record), and the full decoder runs only for a stream the walk
 * accepts.  Every failure is reported at the offset the decoder's
 * diagnostic gives, so the scan skips exactly the bytes it skipped when
 * it decoded every candidate (scan_hit()).  What the decoder only warns
 * of in lenient mode (a marker other than 1, a name byte outside
 * printable ASCII, an empty name, duplicate keys, a subsection version
 * that is 1 in its low byte only, trailing bytes) is no failure here
 * either.  The fuzzers compare the two on every candidate.
 */
typedef struct Walk {
    const uint8_t *p;
    uint64_t len;
    uint64_t pos;
    uint64_t at;            /* failure: the decoder's diagnostic offset */
    unsigned fd_len;        /* 0 not seen yet, 4 cpr-exec, 1 cpr-transfer */
} Walk;

static uint32_t walk_be32(const Walk *w)
{
    const uint8_t *b = w->p + w->pos;

    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
           (uint32_t)b[2] << 8 | b[3];
}

static int walk_fail(Walk *w, int error, uint64_t at)
{
    w->at = at;
    return error;
}

/* spec L7: out of bytes, reported where the data ends. */
static int walk_short(Walk *w)
{
    w->pos = w->len;
    return walk_fail(w, -EBADMSG, w->len);
}

/* The first NUL of @n bytes at @p, or NULL; names are mostly short. */
static CORE_INLINE const uint8_t *walk_nul(const uint8_t *p, uint32_t n)
{
    uint32_t k;

    if (n > 16) {
        return memchr(p, 0, n);
    }
    for (k = 0; k < n; k++) {
        if (!p[k]) {
            return p + k;
        }
    }
    return NULL;
}

/* ( marker record )* 0x00: the fd list, or the vfio list (spec L4, L5.5). */
static CORE_INLINE int walk_list(Walk *w, bool vfio)
{
    const uint8_t *name, *nul;
    uint64_t count = 0, off;
    uint32_t namelen;

    for (;;) {
        off = w->pos;
        if (w->pos >= w->len) {
            return walk_short(w);
        }
        if (!w->p[w->pos++]) {
            return 0;
        }
        if (count >= CPRS_MAX_RECORDS) {
            return walk_fail(w, -E2BIG, off);               /* L4.2 */
        }
        /* spec L4.3, L4.4: namelen, then the name and its one NUL. */
        if (w->len - w->pos < 4) {
            return walk_short(w);
        }
        namelen = walk_be32(w);
        if (!namelen) {
            return walk_fail(w, -EBADMSG, w->pos);
        }
        if (namelen > CPRS_MAX_NAME_LEN + 1) {
            return walk_fail(w, -E2BIG, w->pos);
        }
        w->pos += 4;
        if (w->len - w->pos < namelen) {
            return walk_short(w);
        }
        name = w->p + w->pos;
        nul = walk_nul(name, namelen);
        if (!nul) {
            return walk_fail(w, -EBADMSG, w->pos + namelen - 1);
        }
        if (nul != name + namelen - 1) {
            return walk_fail(w, -EBADMSG, w->pos + (uint64_t)(nul - name));
        }
        w->pos += namelen;
        if (vfio) {
            /* spec L5.5: devid, ioas_id, hwpt_id. */
            if (w->len - w->pos < 12) {
                return walk_short(w);
            }
            w->pos += 12;
        } else {
            /* spec L4.5 to L4.8: id, then the fd or the service byte,
             * which the first record's decides between. */
            if (w->len - w->pos < 4) {
                return walk_short(w);
            }
            w->pos += 4;
            if (!w->fd_len) {
                if (w->pos >= w->len) {
                    return walk_short(w);
                }
                w->fd_len = w->p[w->pos] == WALK_FD_BYTE ? 1 : 4;
            }
            if (w->len - w->pos < w->fd_len) {
                return walk_short(w);
            }
            if (w->fd_len == 4 ? (w->p[w->pos] & 0x80) :
                w->p[w->pos] != WALK_FD_BYTE) {
                return walk_fail(w, -EBADMSG, w->pos);      /* L4.6, L4.7 */
            }
            w->pos += w->fd_len;
        }
        count++;
    }
}

/*
 * The verdict on the @len bytes at @p, which start with the magic and
 * version 1: 0 and the stream's size in *@ret_at, or the decoder's error
 * and the offset of its diagnostic.  *@ret_seen: the bytes looked at.
 */
static CORE_INLINE int legacy_walk(const uint8_t *p, uint64_t len,
                                   uint64_t *ret_at, uint64_t *ret_seen)
{
    Walk w = { .p = p, .len = len, .pos = CORE_MAGIC_LEN };
    uint64_t off, look = 0;
    uint32_t v, n, nlen;
    bool vfio = false;
    int ret;

    ret = walk_list(&w, false);
    while (!ret) {
        /* spec L5.1: a subsection starts with 0x05; else the stream ends. */
        if (w.pos >= w.len || w.p[w.pos] != WALK_SUB_BYTE) {
            break;
        }
        off = w.pos;
        n = w.len - w.pos < 2 ? 0 : w.p[w.pos + 1];
        /*
         * spec L5.2: a header QEMU would stop at without an error (cut
         * short, a name too short or not CprState's) ends the stream
         * there in lenient mode.
         */
        if (w.len - w.pos < 2 || n < WALK_STATE_NAME_LEN + 1 ||
            w.len - (w.pos + 2) < n ||
            memcmp(w.p + w.pos + 2, WALK_STATE_NAME, WALK_STATE_NAME_LEN)) {
            look = w.pos + 2 + WALK_STATE_NAME_LEN;
            break;
        }
        /* spec L5.3: the vfio subsection's name, as a C string. */
        nlen = (uint32_t)strnlen((const char *)w.p + w.pos + 2, n);
        look = w.pos + 2 + (nlen < n ? nlen + 1 : n);
        if (nlen != WALK_VFIO_NAME_LEN ||
            memcmp(w.p + w.pos + 2, WALK_VFIO_NAME, WALK_VFIO_NAME_LEN)) {
            ret = walk_fail(&w, -EPROTONOSUPPORT, w.pos + 2);
            break;
        }
        w.pos += 2 + n;
        if (vfio) {
            ret = walk_fail(&w, -EBADMSG, off);             /* L5.7 */
            break;
        }
        vfio = true;
        /* spec L5.4: QEMU keeps the low byte of the version only. */
        if (w.len - w.pos < 4) {
            ret = walk_short(&w);
            break;
        }
        v = walk_be32(&w) & 0xff;
        if (v != 1) {
            ret = walk_fail(&w, v ? -EPROTONOSUPPORT : -EBADMSG, w.pos);
            break;
        }
        w.pos += 4;
        /* spec L5.6: the stub form ends with the data. */
        if (w.pos == w.len) {
            break;
        }
        ret = walk_list(&w, true);
        look = 0;
    }
    /* Bytes looked at: to the failure, or one past the stream (L6). */
    if (ret) {
        *ret_at = w.at;
        look = look > w.at + 1 ? look : w.at + 1;
    } else {
        *ret_at = w.pos;
        look = look > w.pos + 1 ? look : w.pos + 1;
    }
    *ret_seen = look < w.len ? look : w.len;
    return ret;
}

/*
 * Would the verdict on a @len-byte prefix change with more bytes?  @at:
 * the failure's offset, or the stream's size (inspect_legacy_more()).
 */
static bool walk_more(int ret, uint64_t at, uint64_t len)
{
    /* spec L7: running out of bytes is reported where the data ends. */
    if (ret) {
        return ret == -EBADMSG && at >= len;
    }
    /*
     * A success this close to the end may read otherwise with more: a
     * subsection header cut short (QEMU stops before it), or a stream
     * ending exactly there (the header-only vfio form).
     */
    return at + INSPECT_LEGACY_TAIL >= len;
}

/*
 * The decoder's verdict on the candidate at @off, in a window that starts
 * small and doubles only while the verdict could depend on the bytes past
 * it: inspect_legacy_more().  Returns 0 and *@ret_size the stream's size
 * (*@ret_span too), 1 for no (*@ret_span: the offset of the failure), or
 * a negative errno.
 */
static int decode_legacy(Core *c, uint64_t off, uint64_t cap, uint64_t win,
                         uint64_t *ret_size, uint64_t *ret_span)
{
    CprsLegacyOpts lo;
    CprsLegacyInfo li;
    CprsDiag diag;
    const uint8_t *p;
    CprsLegacy *lg = NULL;
    int ret;

    lo = CPRS_OPTS(CprsLegacyOpts, .flags = CPRS_LEGACY_F_LENIENT |
                                            CPRS_LEGACY_F_ALL_FORMS);
    li = CPRS_OPTS(CprsLegacyInfo);
    diag = CPRS_OPTS(CprsDiag);
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
    *ret_size = li.size;
    return ret ? 1 : 0;
}

/*
 * The first window of a candidate: the verdict on the @len bytes at @p,
 * when they settle it (the full decode would give the same in any larger
 * window: see legacy_walk() and inspect_legacy_more()).  Returns 1 for no
 * with the bytes to skip in *@ret_span, 0 when the window does not settle
 * it or the stream may be valid.
 */
static int legacy_refused(Core *c, const uint8_t *p, uint64_t len,
                          uint64_t *ret_span)
{
    uint64_t at, seen;
    int ret;

    ret = legacy_walk(p, len, &at, &seen);
    WORK(c, walk_bytes, seen);
    if (!ret || walk_more(ret, at, len)) {
        return 0;
    }
    *ret_span = at;
    return 1;
}

/*
 * A legacy candidate must decode (leniently: it is followed by whatever
 * the memory held).  It is walked (legacy_walk()) in a window that starts
 * small and doubles only while the verdict could depend on the bytes past
 * it, so the work is proportional to the bytes the stream (or its
 * failure) spans, not to the 16 MiB it may have: inspect_legacy_more().
 * A stream the walk accepts is then decoded, once, in the window that
 * settled it.  *@ret_span gets the bytes walked, which the scan then
 * does not search for another stream.  Returns 1 and fills @st, 0 for
 * no, or a negative errno.
 */
static int probe_legacy(Core *c, uint64_t off, uint64_t avail,
                        CoreState *st, uint64_t *ret_span)
{
    uint64_t cap, win, at, seen, size, span;
    const uint8_t *p;
    int ret, walked;

    cap = avail < CORE_LEGACY_WINDOW ? avail : CORE_LEGACY_WINDOW;
    win = cap < CORE_LEGACY_FIRST ? cap : CORE_LEGACY_FIRST;
    for (;;) {
        ret = core_bytes(c, off, win, &p);
        if (ret) {
            return ret;
        }
        walked = legacy_walk(p, win, &at, &seen);
        WORK(c, walk_bytes, seen);
        if (win == cap || !walk_more(walked, at, win)) {
            break;
        }
        win = win > cap / 2 ? cap : 2 * win;
    }
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* The fuzzers check every verdict of the walk against the decoder. */
    ret = decode_legacy(c, off, cap, cap < CORE_LEGACY_FIRST ? cap :
                        CORE_LEGACY_FIRST, &size, &span);
    if (ret < 0) {
        return ret;
    }
    if ((ret == 0) != (walked == 0) || span != at) {
        abort();
    }
#endif
    if (walked) {
        *ret_span = at;
        return 0;
    }
    /* The decoder's word on what the walk accepts: the same verdict. */
    ret = decode_legacy(c, off, win, win, &size, &span);
    if (ret >= 0 && (ret || size != at)) {
        /* Never seen: a walk that disagrees.  The decoder decides. */
        ret = decode_legacy(c, off, cap, cap < CORE_LEGACY_FIRST ? cap :
                            CORE_LEGACY_FIRST, &size, &span);
    }
    if (ret < 0) {
        return ret;
    }
    *ret_span = span;
    if (ret) {
        return 0;
    }
    st->format = CPRS_DETECT_LEGACY;
    st->size = size;
    st->declared_size = size;
    return 1;
}

/* A state at file offset @off with @avail bytes on file? */
static int probe(Core *c, uint64_t off, uint64_t avail, CoreState *st,
                 uint64_t *ret_span)
{
    const uint8_t *p;
    int ret;

    *ret_span = 0;
    if (avail < CORE_MAGIC_LEN) {
        return 0;
    }
    WORK(c, probes, 1);
    ret = core_bytes(c, off, CORE_MAGIC_LEN, &p);
    if (ret) {
        return ret;
    }
    if (!memcmp(p, CPRS_MAGIC, CORE_MAGIC_LEN)) {
        return probe_arena(c, off, avail, st);
    }
    if (memcmp(p, legacy_magic, CORE_MAGIC_LEN)) {
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
    /*
     * A candidate is met once: the named ones are told apart by
     * find_named(), and the scan looks at each file offset once, past
     * the named ones.
     */
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
    bool again;             /* found, at an offset and address met before */
    CoreState st;
} Named;

/* By file offset, then address, then note order. */
static int cmp_named_off(const void *x, const void *y)
{
    const Named *a = *(const Named *const *)x, *b = *(const Named *const *)y;

    if (a->off != b->off) {
        return a->off < b->off ? -1 : 1;
    }
    if (a->map->start != b->map->start) {
        return a->map->start < b->map->start ? -1 : 1;
    }
    return a < b ? -1 : a > b;
}

/*
 * Probe each file offset that named mappings start at once, within the
 * largest of them (a hostile note may name one offset a million times),
 * then give every mapping the state that fits in it.  A hostile core may
 * also list one mapping twice, or show one segment's bytes at one address
 * through two: the same bytes at the same address are one candidate, the
 * first found in note order, whatever the count (sorted, not compared
 * pair by pair).
 */
/*
 * The named candidates are probed in file order through a window of
 * CORE_SCAN_CHUNK bytes read ahead from the first offset it must hold:
 * one read for all the candidates it covers, not a read of the magic and
 * another of the header for each (a million of them, 16 bytes apart, cost
 * 4 KiB of reading each).  Windows overlap by CORE_SCAN_AHEAD at most, so
 * the file is read about once.
 */
static int named_window(Core *c, uint8_t *win, uint64_t off)
{
    uint64_t len;
    int ret;

    if (c->src.fd < 0 || (c->chunk && off >= c->chunk_off &&
                          (off - c->chunk_off + CORE_SCAN_AHEAD <=
                           c->chunk_len ||
                           (c->chunk_off + c->chunk_len == c->src.size &&
                            off - c->chunk_off <= c->chunk_len)))) {
        return 0;
    }
    len = c->src.size - off < CORE_SCAN_CHUNK ? c->src.size - off :
          CORE_SCAN_CHUNK;
    ret = src_read(&c->src, off, win, (size_t)len);
    if (ret) {
        return ret;
    }
    WORK(c, read_bytes, len);
    c->chunk = win;
    c->chunk_off = off;
    c->chunk_len = len;
    return 0;
}

static int probe_named(Core *c, Named *n, size_t count)
{
    Named **by_off = calloc(count ? count : 1, sizeof(*by_off));
    uint8_t *win = c->src.fd >= 0 && count ? malloc(CORE_SCAN_CHUNK) : NULL;
    uint64_t span;
    size_t i, k, best;
    int ret = 0;

    if (!by_off || (c->src.fd >= 0 && count && !win)) {
        free(by_off);
        free(win);
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
        ret = named_window(c, win, by_off[i]->off);
        if (ret) {
            break;
        }
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
    /* Within each run of one (offset, address), the first found counts. */
    for (i = 0; i < count && ret >= 0; i = k) {
        bool met = false;

        for (k = i; k < count && by_off[k]->off == by_off[i]->off &&
                    by_off[k]->map->start == by_off[i]->map->start; k++) {
            WORK(c, named, 1);
            by_off[k]->again = met && by_off[k]->found;
            met = met || by_off[k]->found;
        }
    }
    /* The scan reads its own chunks. */
    c->chunk = NULL;
    c->chunk_len = 0;
    free(win);
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
        if (n[i].again) {
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
    /* The path is cleared only for a hit: most candidates are not. */
    memset(&st, 0, offsetof(CoreState, map_name));
    ret = probe(c, off, s->filesz - delta, &st, &span);
    /* Hits inside what a legacy decode walked are not searched again. */
    if (span && off + span > c->legacy_end) {
        c->legacy_end = off + span;
    }
    if (ret <= 0) {
        return ret;
    }
    memset(st.map_name, 0, sizeof(st.map_name));
    st.found_by = CORE_FOUND_SCAN;
    st.file_offset = off;
    st.vaddr = s->vaddr + delta;
    fill_map(&st, map_at(c, st.vaddr), c->page_size);
    return emit(c, &st);
}

/* Is there a magic at @p, whose address is @vaddr? */
static inline bool is_hit(const Core *c, const uint8_t *p, uint64_t vaddr,
                          uint64_t off)
{
    if (p[0] == 0x89) {
        return !(vaddr & (CPRS_ALIGN - 1)) &&
               !memcmp(p, CPRS_MAGIC, CORE_MAGIC_LEN);
    }
    return p[0] == 'Q' && off >= c->legacy_end &&
           !memcmp(p, legacy_magic, CORE_MAGIC_LEN);
}

#ifdef CORE_HAVE_SSE2
/* Bytes looked at a time for a magic's first byte, and a bit per byte. */
#define SCAN_BLOCK 16u
#define SCAN_BIT_SHIFT 0

/* Which of the 16 bytes at @p are 0x89 or 'Q': bit k for byte k. */
static CORE_INLINE uint64_t block_hits(const uint8_t *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);

    return (uint64_t)(unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)0x89)),
                     _mm_cmpeq_epi8(v, _mm_set1_epi8('Q'))));
}
#else
#define SCAN_BLOCK 8u
#define SCAN_BIT_SHIFT 3

/*
 * Which of the 8 bytes at @p may start a magic: bit 8k + 7 is set for
 * byte k if it is 0x89 or 'Q' (a word-at-a-time test for a zero byte in
 * @p xor each of the two; a bit may also be set above such a byte, which
 * only costs a look).
 */
static CORE_INLINE uint64_t block_hits(const uint8_t *p)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t highs = UINT64_C(0x8080808080808080);
    uint64_t w = cprs_le64_get((const CprsLe64 *)p), a, b;

    a = w ^ (ones * 0x89);
    b = w ^ (ones * 'Q');
    return (((a - ones) & ~a) | ((b - ones) & ~b)) & highs;
}
#endif

/*
 * An arena magic @i bytes into chunk @p (@len bytes in memory, at @pos in
 * segment @s).  Returns 1 found, 0 go on, or a negative errno.
 */
static int scan_arena(Core *c, const CoreSeg *s, uint64_t pos,
                      const uint8_t *p, uint64_t len, uint64_t i)
{
    uint64_t off = s->offset + pos + i, win, arena_size;

    /* A header in memory is refused here: most are. */
    win = s->filesz - (pos + i);
    if (win > CPRS_MAX_HEADER_SIZE) {
        win = CPRS_MAX_HEADER_SIZE;
    }
    if (win <= len - i && !already_named(c, off) &&
        !arena_header_ok(c, off, p + i, win, &arena_size)) {
        return 0;
    }
    return scan_hit(c, s, pos + i);
}

/* A legacy magic @i bytes into chunk @p: as scan_arena(). */
static int scan_legacy(Core *c, const CoreSeg *s, uint64_t pos,
                       const uint8_t *p, uint64_t len, uint64_t i)
{
    uint64_t off = s->offset + pos + i, span, n;

    /*
     * What probe_legacy() would refuse in its first windows, refused on
     * the bytes in memory: a stream candidate in a hostile core fails in
     * its first record, and costs a walk to its failure here.
     */
    n = len - i < CORE_LEGACY_WINDOW ? len - i : CORE_LEGACY_WINDOW;
    if (!already_named(c, off) && legacy_refused(c, p + i, n, &span)) {
        if (off + span > c->legacy_end) {
            c->legacy_end = off + span;
        }
        return 0;
    }
    return scan_hit(c, s, pos + i);
}

/*
 * Look at the candidate @i bytes into chunk @p (@len bytes in memory, at
 * @pos in segment @s; at least CORE_MAGIC_LEN of them from @i).  Returns
 * 1 found, 0 go on, or a negative errno.  Inlined in the scan's loop: most
 * bytes it is called for start no magic.
 */
static CORE_INLINE int scan_at(Core *c, const CoreSeg *s, uint64_t pos,
                               const uint8_t *p, uint64_t len, uint64_t i)
{
    if (!is_hit(c, p + i, s->vaddr + pos + i, s->offset + pos + i)) {
        return 0;
    }
    if (p[i] == 0x89) {
        return scan_arena(c, s, pos, p, len, i);
    }
    return scan_legacy(c, s, pos, p, len, i);
}

/*
 * Scan segment @s for either magic, from @pos bytes into it, a chunk at a
 * time.  Each chunk is read with up to CORE_SCAN_AHEAD bytes of the
 * segment after it, so that a magic across its edge is found (once: the
 * next chunk starts where this one's candidates end), and an arena
 * header there is in memory.  Candidates are looked at in order, found a
 * block of bytes at a time.
 */
static int scan_segment(Core *c, const CoreSeg *s, uint64_t pos,
                        uint8_t *chunk)
{
    uint64_t len, have, end, i, m, at = 0;
    const uint8_t *p;
    int ret = 0;

    while (pos < s->filesz) {
        len = s->filesz - pos;
        have = len < CORE_SCAN_CHUNK + CORE_SCAN_AHEAD ? len :
               CORE_SCAN_CHUNK + CORE_SCAN_AHEAD;
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
            ret = src_read(&c->src, s->offset + pos, chunk, (size_t)have);
            if (ret) {
                return core_fail(c, ret, s->offset + pos,
                                 "cannot read the core");
            }
            WORK(c, read_bytes, have);
            p = chunk;
            c->chunk = chunk;
            c->chunk_off = s->offset + pos;
            c->chunk_len = have;
        }
        /* Candidates i < len with a whole magic in memory. */
        end = have < CORE_MAGIC_LEN ? 0 : have - (CORE_MAGIC_LEN - 1);
        if (end > len) {
            end = len;
        }
        i = 0;
        while (!ret && i < end) {
            if (i + SCAN_BLOCK > end) {
                at = i++;
                ret = scan_at(c, s, pos, p, have, at);
                continue;
            }
            /* A block of candidates, all with a whole magic after them. */
            for (m = block_hits(p + i); m && !ret; m &= m - 1) {
                at = i + ((uint64_t)__builtin_ctzll(m) >> SCAN_BIT_SHIFT);
                ret = scan_at(c, s, pos, p, have, at);
            }
            i += SCAN_BLOCK;
        }
        if (ret < 0) {
            return core_fail(c, ret, s->offset + pos + at,
                             "cannot read the core");
        }
        if (ret) {
            return 1;
        }
        pos += len;
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
        chunk = malloc(CORE_SCAN_CHUNK + CORE_SCAN_AHEAD);
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
    pthread_once(&roll_once, roll_setup);
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
    free(c->notes);
    free(c->segs);
    free(c->maps);
    free(c->named);
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

int inspect_pread(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    ssize_t n;

    while (len) {
        n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EBADMSG;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
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
    return walk_more(ret, ret ? diag->offset : size, len);
}
