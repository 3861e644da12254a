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
/* Bytes in which a legacy stream candidate is decoded. */
#define CORE_LEGACY_WINDOW      (UINT64_C(16) << 20)
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
    CoreState result;
    CprsDiag *diag;
} Core;

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
    return 0;
}

/* The NT_FILE entry whose range holds @vaddr, or NULL. */
static const CoreMap *map_at(const Core *c, uint64_t vaddr)
{
    size_t i;

    for (i = 0; i < c->nmaps; i++) {
        if (c->maps[i].start <= vaddr && vaddr < c->maps[i].end) {
            return &c->maps[i];
        }
    }
    return NULL;
}

/*
 * Where the byte at @vaddr is in the file, and how many bytes follow it
 * in the same segment.  Returns false when no segment has it on file.
 */
static bool vaddr_to_file(const Core *c, uint64_t vaddr, uint64_t *ret_off,
                          uint64_t *ret_avail)
{
    uint64_t delta;
    size_t i;

    for (i = 0; i < c->nsegs; i++) {
        const CoreSeg *s = &c->segs[i];

        if (vaddr < s->vaddr) {
            continue;
        }
        delta = vaddr - s->vaddr;
        if (delta >= s->filesz) {
            continue;
        }
        *ret_off = s->offset + delta;
        *ret_avail = s->filesz - delta;
        return true;
    }
    return false;
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
 * Is there a state at file offset @off with @avail bytes on file?  An
 * arena needs its magic, a sane header size and a matching header CRC
 * (the magic alone is found in any binary that links libcprstate); a
 * legacy stream must decode (leniently: it is followed by whatever the
 * memory held).  Returns 1 and fills @st, 0 for no, or a negative errno.
 */
static int probe(Core *c, uint64_t off, uint64_t avail, CoreState *st)
{
    uint8_t head[CPRS_MAX_HEADER_SIZE];
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                  .flags = CPRS_LEGACY_F_LENIENT |
                                           CPRS_LEGACY_F_ALL_FORMS);
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsLegacy *lg;
    uint32_t hsize, crc;
    uint64_t arena_size, win;
    uint8_t *buf;
    int kind, ret;

    if (avail < CORE_MAGIC_LEN) {
        return 0;
    }
    ret = src_read(&c->src, off, head, CORE_MAGIC_LEN);
    if (ret) {
        return ret;
    }
    kind = cprs_detect(head, CORE_MAGIC_LEN);
    if (kind == CPRS_DETECT_ARENA) {
        if (avail < CPRS_HEADER_V1_SIZE) {
            return 0;
        }
        win = avail < sizeof(head) ? avail : sizeof(head);
        ret = src_read(&c->src, off, head, (size_t)win);
        if (ret) {
            return ret;
        }
        /* spec 3.4, 3.9: header size in range, then the header CRC. */
        hsize = cprs_le32_get(&((const CprsWireHeader *)head)->header_size);
        if (hsize < CPRS_HEADER_V1_SIZE || hsize > CPRS_MAX_HEADER_SIZE ||
            (hsize & (CPRS_ALIGN - 1)) || hsize > win) {
            return 0;
        }
        crc = cprs_le32_get(&((const CprsWireHeader *)head)->header_crc32c);
        memset(head + offsetof(CprsWireHeader, header_crc32c), 0, 4);
        if (cprs_crc32c(0, head, hsize) != crc) {
            return 0;
        }
        arena_size = cprs_le64_get(&((const CprsWireHeader *)head)->
                                   arena_size);
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
    if (kind != CPRS_DETECT_LEGACY || memcmp(head, legacy_magic,
                                             CORE_MAGIC_LEN)) {
        return 0;
    }
    win = avail < CORE_LEGACY_WINDOW ? avail : CORE_LEGACY_WINDOW;
    buf = malloc((size_t)win);
    if (!buf) {
        return -ENOMEM;
    }
    ret = src_read(&c->src, off, buf, (size_t)win);
    if (ret) {
        free(buf);
        return ret;
    }
    ret = cprs_legacy_decode(buf, (size_t)win, &lo, NULL, &lg);
    free(buf);
    if (ret == -ENOMEM) {
        return ret;
    }
    if (ret) {
        return 0;
    }
    cprs_legacy_get_info(lg, &li);
    cprs_legacy_free(lg);
    st->format = CPRS_DETECT_LEGACY;
    st->size = li.size;
    st->declared_size = li.size;
    return 1;
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

/* Phase 1: mappings that NT_FILE names as the state memfd. */
static int find_named(Core *c)
{
    CoreState st;
    uint64_t off, avail, span;
    size_t i;
    int ret;

    c->named = calloc(c->nmaps ? c->nmaps : 1, sizeof(*c->named));
    if (!c->named) {
        return core_fail(c, -ENOMEM, 0, "out of memory");
    }
    for (i = 0; i < c->nmaps; i++) {
        const CoreMap *m = &c->maps[i];

        /* Only a mapping of file offset 0 holds the state's first byte. */
        if (!is_state_path(c, m->name) || m->pgoff) {
            continue;
        }
        if (!vaddr_to_file(c, m->start, &off, &avail)) {
            c->not_dumped = true;
            continue;
        }
        span = m->end - m->start;
        if (avail > span) {
            avail = span;
        }
        memset(&st, 0, sizeof(st));
        ret = probe(c, off, avail, &st);
        if (ret < 0) {
            return core_fail(c, ret, off, "cannot read the core");
        }
        if (!ret) {
            c->named_invalid = true;
            continue;
        }
        c->named[c->nnamed++] = off;
        st.found_by = CORE_FOUND_NT_FILE;
        st.file_offset = off;
        st.vaddr = m->start;
        fill_map(&st, m, c->page_size);
        ret = emit(c, &st);
        if (ret) {
            return ret;         /* found (1) or out of memory */
        }
    }
    return 0;
}

static bool already_named(const Core *c, uint64_t off)
{
    size_t i;

    for (i = 0; i < c->nnamed; i++) {
        if (c->named[i] == off) {
            return true;
        }
    }
    return false;
}

/* Check a magic hit at @delta bytes into segment @s. */
static int scan_hit(Core *c, const CoreSeg *s, uint64_t delta)
{
    CoreState st;
    uint64_t off = s->offset + delta;
    int ret;

    if (already_named(c, off)) {
        return 0;
    }
    memset(&st, 0, sizeof(st));
    ret = probe(c, off, s->filesz - delta, &st);
    if (ret <= 0) {
        return ret;
    }
    st.found_by = CORE_FOUND_SCAN;
    st.file_offset = off;
    st.vaddr = s->vaddr + delta;
    fill_map(&st, map_at(c, st.vaddr), c->page_size);
    return emit(c, &st);
}

/*
 * Phase 2: scan each segment's bytes for either magic.  Chunks overlap by
 * CORE_MAGIC_LEN - 1 bytes so a magic across a chunk edge is found once.
 */
static int scan_segment(Core *c, const CoreSeg *s, uint8_t *chunk)
{
    uint64_t pos = 0, len, i;
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
        if (c->src.fd < 0) {
            p = c->src.buf + s->offset + pos;
        } else {
            ret = src_read(&c->src, s->offset + pos, chunk, (size_t)len);
            if (ret) {
                return core_fail(c, ret, s->offset + pos,
                                 "cannot read the core");
            }
            p = chunk;
        }
        for (i = 0; len >= CORE_MAGIC_LEN && i <= len - CORE_MAGIC_LEN;
             i++) {
            if (p[i] == 0x89 && !((s->vaddr + pos + i) & (CPRS_ALIGN - 1))
                && !memcmp(p + i, CPRS_MAGIC, CORE_MAGIC_LEN)) {
                ret = scan_hit(c, s, pos + i);
            } else if (p[i] == 'Q' && !memcmp(p + i, legacy_magic,
                                               CORE_MAGIC_LEN)) {
                ret = scan_hit(c, s, pos + i);
            } else {
                continue;
            }
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

static int find_scan(Core *c)
{
    uint8_t *chunk = NULL;
    size_t i;
    int ret = 0;

    if (c->src.fd >= 0) {
        chunk = malloc(CORE_SCAN_CHUNK);
        if (!chunk) {
            return core_fail(c, -ENOMEM, 0, "out of memory");
        }
    }
    for (i = 0; i < c->nsegs && !ret; i++) {
        ret = scan_segment(c, &c->segs[i], chunk);
    }
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
