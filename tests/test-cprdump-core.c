/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-cprdump-core.c - core_find_state() on synthetic ELF cores:
 * 64- and 32-bit, little- and big-endian, with and without NT_FILE; the
 * state mapped (found through NT_FILE), copied on the heap (found by the
 * scan), excluded from the dump, truncated, misaligned, faked; and
 * hostile cores: bad headers, bad notes, every truncation and byte flips.
 * The real thing (gcore and kernel cores of a live process) is in
 * test-cprdump.c.
 */
#include <elf.h>
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"
#include "inspect.h"

#define STATE_PATH "/memfd:QEMU_CPR_EXEC_STATE (deleted)"
#define PAGE 4096u

typedef struct CMap {
    uint64_t start;
    uint64_t end;
    uint64_t pgoff;
    const char *name;
} CMap;

typedef struct CSeg {
    uint64_t vaddr;
    const void *data;
    uint64_t size;          /* p_memsz, and bytes of data */
    uint64_t filesz;        /* 0: size; else bytes on file */
    bool absent;            /* p_filesz 0: the dumper left it out */
} CSeg;

typedef struct CoreSpec {
    bool is32;
    bool be;
    uint16_t type;          /* 0: ET_CORE */
    const CMap *maps;
    size_t nmaps;
    bool no_note;
    const uint8_t *desc;    /* raw NT_FILE payload instead of @maps */
    size_t desc_len;
    const CSeg *segs;
    size_t nsegs;
} CoreSpec;

static void put(uint8_t *p, uint64_t v, unsigned w, bool be)
{
    unsigned i;

    for (i = 0; i < w; i++) {
        p[be ? w - 1 - i : i] = (uint8_t)(v >> (8 * i));
    }
}

/* The NT_FILE payload for @c's maps, in its class and byte order. */
static uint8_t *nt_file_desc(const CoreSpec *c, size_t *ret_len)
{
    unsigned w = c->is32 ? 4 : 8;
    size_t len = 2 * w + c->nmaps * 3 * w, i, off;
    uint8_t *d;

    for (i = 0; i < c->nmaps; i++) {
        len += strlen(c->maps[i].name) + 1;
    }
    d = calloc(1, len);
    assert_non_null(d);
    put(d, c->nmaps, w, c->be);
    put(d + w, PAGE, w, c->be);
    for (i = 0; i < c->nmaps; i++) {
        put(d + 2 * w + i * 3 * w, c->maps[i].start, w, c->be);
        put(d + 2 * w + i * 3 * w + w, c->maps[i].end, w, c->be);
        put(d + 2 * w + i * 3 * w + 2 * w, c->maps[i].pgoff, w, c->be);
    }
    off = 2 * w + c->nmaps * 3 * w;
    for (i = 0; i < c->nmaps; i++) {
        memcpy(d + off, c->maps[i].name, strlen(c->maps[i].name) + 1);
        off += strlen(c->maps[i].name) + 1;
    }
    *ret_len = len;
    return d;
}

#define ALIGN(x, a) (((x) + (a) - 1) / (a) * (a))

static uint8_t *build_core(const CoreSpec *c, size_t *ret_size)
{
    const bool be = c->be;
    const size_t eh = c->is32 ? 52 : 64, ph = c->is32 ? 32 : 56;
    size_t phnum = (c->no_note ? 0 : 1) + c->nsegs, desc_len = 0;
    size_t note_off, note_len, data_off, size, i;
    uint64_t off[16], fsz;
    uint8_t *buf, *desc = NULL, *p;

    assert_true(c->nsegs <= 16);
    if (!c->no_note) {
        desc = c->desc ? (uint8_t *)c->desc : nt_file_desc(c, &desc_len);
        if (c->desc) {
            desc_len = c->desc_len;
        }
    }
    note_off = ALIGN(eh + phnum * ph, 8);
    note_len = c->no_note ? 0 : 12 + 8 + ALIGN(desc_len, 4);
    data_off = ALIGN(note_off + note_len, 16);
    size = data_off;
    for (i = 0; i < c->nsegs; i++) {
        off[i] = size;
        fsz = c->segs[i].absent ? 0 : c->segs[i].filesz ?
              c->segs[i].filesz : c->segs[i].size;
        size = ALIGN(size + fsz, 16);
    }
    buf = calloc(1, size);
    assert_non_null(buf);
    memcpy(buf, ELFMAG, SELFMAG);
    buf[EI_CLASS] = c->is32 ? ELFCLASS32 : ELFCLASS64;
    buf[EI_DATA] = be ? ELFDATA2MSB : ELFDATA2LSB;
    buf[EI_VERSION] = EV_CURRENT;
    put(buf + 16, c->type ? c->type : ET_CORE, 2, be);
    put(buf + 18, c->is32 ? EM_386 : EM_X86_64, 2, be);
    put(buf + 20, EV_CURRENT, 4, be);
    if (c->is32) {
        put(buf + 28, eh, 4, be);
        put(buf + 40, eh, 2, be);
        put(buf + 42, ph, 2, be);
        put(buf + 44, phnum, 2, be);
    } else {
        put(buf + 32, eh, 8, be);
        put(buf + 52, eh, 2, be);
        put(buf + 54, ph, 2, be);
        put(buf + 56, phnum, 2, be);
    }
    for (i = 0; i < phnum; i++) {
        bool note = !c->no_note && i == 0;
        const CSeg *s = note ? NULL : &c->segs[i - !c->no_note];
        uint64_t o = note ? note_off : off[i - !c->no_note];
        uint64_t vaddr = note ? 0 : s->vaddr, memsz = note ? 0 : s->size;

        fsz = note ? note_len : s->absent ? 0 : s->filesz ? s->filesz :
              s->size;
        p = buf + eh + i * ph;
        if (c->is32) {
            put(p, note ? PT_NOTE : PT_LOAD, 4, be);
            put(p + 4, o, 4, be);
            put(p + 8, vaddr, 4, be);
            put(p + 16, fsz, 4, be);
            put(p + 20, memsz, 4, be);
            put(p + 24, PF_R, 4, be);
            put(p + 28, note ? 4 : PAGE, 4, be);
        } else {
            put(p, note ? PT_NOTE : PT_LOAD, 4, be);
            put(p + 4, PF_R, 4, be);
            put(p + 8, o, 8, be);
            put(p + 16, vaddr, 8, be);
            put(p + 32, fsz, 8, be);
            put(p + 40, memsz, 8, be);
            put(p + 48, note ? 4 : PAGE, 8, be);
        }
        if (!note && fsz) {
            memcpy(buf + o, s->data, fsz);
        }
    }
    if (!c->no_note) {
        p = buf + note_off;
        put(p, 5, 4, be);
        put(p + 4, desc_len, 4, be);
        put(p + 8, NT_FILE, 4, be);
        memcpy(p + 12, "CORE", 5);
        memcpy(p + 20, desc, desc_len);
        if (!c->desc) {
            free(desc);
        }
    }
    *ret_size = size;
    return buf;
}

/* ---- States to hide in cores ------------------------------------------- */

static uint8_t *make_arena(size_t *ret_size)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE,
                                 .producer = "test-cprdump-core");
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = 11,
                              .kind = CPRS_FD_KIND_MEMFD);
    CprsWriter *w;
    void *buf;

    assert_int_equal(cprs_writer_new(&o, &w), 0);
    assert_int_equal(cprs_writer_add_fd(w, &fi, NULL), 0);
    assert_int_equal(cprs_writer_finish_buffer(w, &buf, ret_size), 0);
    cprs_writer_free(w);
    return buf;
}

static uint8_t *make_legacy(size_t *ret_size)
{
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = 11);
    CprsLegacy *lg;
    void *buf;

    assert_int_equal(cprs_legacy_new(NULL, &lg), 0);
    assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
    assert_int_equal(cprs_legacy_encode(lg, NULL, &buf, ret_size), 0);
    cprs_legacy_free(lg);
    return buf;
}

/* A page holding @len bytes of @state at @at, the rest @fill. */
static uint8_t *page_with(const void *state, size_t len, size_t at,
                          uint8_t fill, size_t page)
{
    uint8_t *p = malloc(page);

    assert_non_null(p);
    memset(p, fill, page);
    memcpy(p + at, state, len);
    return p;
}

/* Both entry points must agree; returns the buffer variant's result. */
static int find(const uint8_t *core, size_t size, const CoreOpts *o,
                CprsDiag *d, CoreState *st)
{
    CoreState st2 = (CoreState){ 0 };
    CprsDiag d2 = CPRS_OPTS(CprsDiag);
    int fd, ret, ret2;

    *st = (CoreState){ 0 };
    *d = CPRS_OPTS(CprsDiag);
    ret = core_find_state_buffer(core, size, o, d, st);
    fd = memfd_create("core", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, core, size), (ssize_t)size);
    ret2 = core_find_state(fd, o, &d2, &st2);
    /* The fd's offset is the caller's: it stays at the end. */
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)size);
    close(fd);
    assert_int_equal(ret, ret2);
    if (!ret) {
        assert_memory_equal(st, &st2, sizeof(*st));
    } else {
        assert_int_equal(d->offset, d2.offset);
        assert_string_equal(d->reason, d2.reason);
    }
    return ret;
}

/* ---- Tests ------------------------------------------------------------- */

static void test_nt_file_arena(void **state)
{
    CoreOpts o = (CoreOpts){ 0 };
    const uint64_t at = UINT64_C(0x7f0000000000);
    uint8_t *arena, *pg, *lib, *core;
    size_t alen, size;
    CoreState st;
    CprsDiag d;

    (void)state;
    arena = make_arena(&alen);
    pg = page_with(arena, alen, 0, 0, 2 * PAGE);
    lib = page_with("junk", 4, 0, 0xcc, PAGE);
    {
        const CMap maps[] = {
            { 0x400000, 0x401000, 0, "/usr/bin/qemu-system-x86_64" },
            { at, at + 2 * PAGE, 0, STATE_PATH },
        };
        const CSeg segs[] = {
            { 0x400000, lib, PAGE, 0, false },
            { at, pg, 2 * PAGE, 0, false },
        };
        CoreSpec c = { .maps = maps, .nmaps = 2, .segs = segs, .nsegs = 2 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), 0);
    assert_int_equal(st.format, CPRS_DETECT_ARENA);
    assert_int_equal(st.found_by, CORE_FOUND_NT_FILE);
    assert_int_equal(st.flags, 0);
    assert_int_equal(st.size, alen);
    assert_int_equal(st.declared_size, alen);
    assert_int_equal(st.vaddr, at);
    assert_int_equal(st.map_start, at);
    assert_int_equal(st.map_end, at + 2 * PAGE);
    assert_int_equal(st.map_offset, 0);
    assert_string_equal(st.map_name, STATE_PATH);
    assert_memory_equal(core + st.file_offset, arena, alen);
    /* The scan meets the same arena again: it is not counted twice. */
    o.skip = 1;
    assert_int_equal(find(core, size, &o, &d, &st), -ENOENT);
    assert_string_equal(d.reason, "no further state in the core");
    /* Another memfd name. */
    o = (CoreOpts){ .memfd_name = "other",
                    .flags = CORE_F_NO_SCAN };
    assert_int_equal(find(core, size, &o, &d, &st), -ENOENT);
    free(core);
    free(pg);
    free(lib);
    free(arena);
}

static void test_scan_arena(void **state)
{
    CoreOpts o = (CoreOpts){ 0 };
    uint8_t *arena, *heap, *core, junk[PAGE];
    size_t alen, size;
    CoreState st;
    CprsDiag d;

    (void)state;
    memset(junk, 0x5a, sizeof(junk));
    arena = make_arena(&alen);
    /* A heap copy at an 8-aligned address, no NT_FILE note at all. */
    heap = page_with(arena, alen, 40, 0x5a, 2 * PAGE);
    {
        const CSeg segs[] = { { 0x555555554000, heap, 2 * PAGE, 0, false } };
        CoreSpec c = { .no_note = true, .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), 0);
    assert_int_equal(st.found_by, CORE_FOUND_SCAN);
    assert_int_equal(st.flags, CORE_STATE_F_NO_NT_FILE);
    assert_int_equal(st.vaddr, 0x555555554000 + 40);
    assert_int_equal(st.size, alen);
    assert_string_equal(st.map_name, "");
    assert_memory_equal(core + st.file_offset, arena, alen);
    o.flags = CORE_F_NO_SCAN;
    assert_int_equal(find(core, size, &o, &d, &st), -ENOENT);
    free(core);
    /* max_scan stops the scan before the arena's segment. */
    {
        const CSeg segs[] = { { 0x400000, junk, PAGE, 0, false },
                              { 0x555555554000, heap, 2 * PAGE, 0, false } };
        CoreSpec c = { .no_note = true, .segs = segs, .nsegs = 2 };

        core = build_core(&c, &size);
    }
    o = (CoreOpts){ .max_scan = 1 };
    assert_int_equal(find(core, size, &o, &d, &st), -ENOENT);
    o.max_scan = 0;
    assert_int_equal(find(core, size, &o, &d, &st), 0);
    free(core);

    /* Misaligned: no arena is ever placed there. */
    memset(heap, 0x5a, 2 * PAGE);
    memcpy(heap + 43, arena, alen);
    {
        const CSeg segs[] = { { 0x555555554000, heap, 2 * PAGE, 0, false } };
        CoreSpec c = { .no_note = true, .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), -ENOENT);
    assert_string_equal(d.reason, "no CPR state in the core");
    free(core);
    free(heap);
    free(arena);
}

/* The magic alone (as in libcprstate's .rodata) is not an arena. */
static void test_fake_magic(void **state)
{
    uint8_t *arena, *ro, *core;
    size_t alen, size;
    CoreState st;
    CprsDiag d;

    (void)state;
    arena = make_arena(&alen);
    ro = page_with(CPRS_MAGIC, 8, 64, 0x41, PAGE);
    /* Magic and a plausible header, with a wrong CRC. */
    memcpy(ro + 1024, arena, CPRS_HEADER_V1_SIZE);
    ro[1024 + 100] ^= 1;
    /* A header that claims more than 4096 bytes. */
    memcpy(ro + 2048, arena, CPRS_HEADER_V1_SIZE);
    ro[2048 + 13] = 0x20;
    {
        const CSeg segs[] = { { 0x400000, ro, PAGE, 0, false } };
        CoreSpec c = { .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), -ENOENT);
    free(core);
    free(ro);
    free(arena);
}

static void test_not_dumped(void **state)
{
    const uint64_t at = 0x7f0000000000;
    uint8_t *arena, *pg, *zero, *core;
    size_t alen, size;
    CoreState st;
    CprsDiag d;

    (void)state;
    arena = make_arena(&alen);
    pg = page_with(arena, alen, 0, 0, PAGE);
    zero = calloc(1, PAGE);
    assert_non_null(zero);
    {
        const CMap maps[] = { { at, at + PAGE, 0, STATE_PATH } };
        const CSeg segs[] = { { at, pg, PAGE, 0, true } };
        CoreSpec c = { .maps = maps, .nmaps = 1, .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), -ENODATA);
    assert_string_equal(d.reason, "the state mapping named in NT_FILE has "
                        "no pages in the core");
    free(core);
    /* Excluded, but a heap copy exists: the scan finds it. */
    {
        const CMap maps[] = { { at, at + PAGE, 0, STATE_PATH } };
        const CSeg segs[] = { { at, pg, PAGE, 0, true },
                              { 0x600000, pg, PAGE, 0, false } };
        CoreSpec c = { .maps = maps, .nmaps = 1, .segs = segs, .nsegs = 2 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), 0);
    assert_int_equal(st.found_by, CORE_FOUND_SCAN);
    assert_int_equal(st.vaddr, 0x600000);
    free(core);
    /* Dumped, but it holds no state (zeros). */
    {
        const CMap maps[] = { { at, at + PAGE, 0, STATE_PATH } };
        const CSeg segs[] = { { at, zero, PAGE, 0, false } };
        CoreSpec c = { .maps = maps, .nmaps = 1, .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), -ENOENT);
    assert_string_equal(d.reason, "the state mapping named in NT_FILE holds "
                        "no valid state");
    free(core);
    /* Mapped from a non-zero file offset: the state's start is not in it. */
    {
        const CMap maps[] = { { at, at + PAGE, 1, STATE_PATH } };
        const CSeg segs[] = { { at, zero, PAGE, 0, false } };
        CoreSpec c = { .maps = maps, .nmaps = 1, .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), -ENOENT);
    assert_string_equal(d.reason, "no CPR state in the core");
    free(core);
    free(zero);
    free(pg);
    free(arena);
}

static void test_legacy(void **state)
{
    const uint64_t at = 0x7f0000000000;
    uint8_t *stream, *pg, *heap, *core;
    size_t slen, size;
    CoreState st;
    CprsDiag d;

    (void)state;
    stream = make_legacy(&slen);
    /* Mapped: page padding (zeros) follows; the size is exact anyway. */
    pg = page_with(stream, slen, 0, 0, PAGE);
    {
        const CMap maps[] = { { at, at + PAGE, 0, STATE_PATH } };
        const CSeg segs[] = { { at, pg, PAGE, 0, false } };
        CoreSpec c = { .maps = maps, .nmaps = 1, .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), 0);
    assert_int_equal(st.format, CPRS_DETECT_LEGACY);
    assert_int_equal(st.found_by, CORE_FOUND_NT_FILE);
    assert_int_equal(st.size, slen);
    assert_memory_equal(core + st.file_offset, stream, slen);
    free(core);
    /* In a QEMUFile buffer on the heap, at any alignment, then garbage. */
    heap = page_with(stream, slen, 13, 0xaa, PAGE);
    {
        const CSeg segs[] = { { 0x600000, heap, PAGE, 0, false } };
        CoreSpec c = { .no_note = true, .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), 0);
    assert_int_equal(st.format, CPRS_DETECT_LEGACY);
    assert_int_equal(st.found_by, CORE_FOUND_SCAN);
    assert_int_equal(st.vaddr, 0x600000 + 13);
    assert_int_equal(st.size, slen);
    free(core);
    /* The magic without a stream that decodes. */
    memset(heap, 0xaa, PAGE);
    memcpy(heap + 100, stream, 9);
    {
        const CSeg segs[] = { { 0x600000, heap, PAGE, 0, false } };
        CoreSpec c = { .no_note = true, .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), -ENOENT);
    free(core);
    free(heap);
    free(pg);
    free(stream);
}

/*
 * The scan looks at 8 bytes at a time and refuses some legacy candidates
 * without a decode: a stream is still found at every offset, after
 * decoys of both kinds, at the end of a segment, and across the edge of
 * the 1 MiB chunks the fd variant reads.
 */
static void test_scan_every_offset(void **state)
{
    /* Refused at first look: namelen 0. */
    static const uint8_t decoy[13] = {
        'Q', 'C', 'P', 'R', 0, 0, 0, 1, 1, 0, 0, 0, 0,
    };
    static const size_t edge[] = {
        (1u << 20) - 16, (1u << 20) - 7, (1u << 20) - 3, 1u << 20,
    };
    const size_t big = (2u << 20) + 40;
    uint8_t *stream, *seg, *core;
    size_t slen, size, at, i;
    CoreState st;
    CprsDiag d;

    (void)state;
    stream = make_legacy(&slen);
    seg = malloc(big);
    assert_non_null(seg);
    for (i = 0; i < 40; i++) {
        at = i < 20 ? 200 + i : PAGE - slen - (i - 20);
        memset(seg, 'Q', PAGE);
        for (size_t k = 0; k + sizeof(decoy) <= 180; k += sizeof(decoy)) {
            memcpy(seg + k, decoy, sizeof(decoy));
        }
        seg[184] = 0x89;
        memcpy(seg + 192, CPRS_MAGIC, 7);
        memcpy(seg + at, stream, slen);
        {
            const CSeg segs[] = { { 0x600000, seg, PAGE, 0, false } };
            CoreSpec c = { .no_note = true, .segs = segs, .nsegs = 1 };

            core = build_core(&c, &size);
        }
        if (find(core, size, NULL, &d, &st) ||
            st.format != CPRS_DETECT_LEGACY || st.vaddr != 0x600000 + at ||
            st.size != slen) {
            fail_msg("stream at %zu not found", at);
        }
        free(core);
    }
    for (i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
        memset(seg, 0x89, big);
        memcpy(seg + edge[i], stream, slen);
        {
            const CSeg segs[] = { { 0x600000, seg, big, 0, false } };
            CoreSpec c = { .no_note = true, .segs = segs, .nsegs = 1 };

            core = build_core(&c, &size);
        }
        if (find(core, size, NULL, &d, &st) ||
            st.vaddr != 0x600000 + edge[i] || st.size != slen) {
            fail_msg("stream at %zu (chunk edge) not found", edge[i]);
        }
        free(core);
    }
    free(seg);
    free(stream);
}

static void test_truncated(void **state)
{
    const uint64_t at = 0x7f0000000000;
    uint8_t *arena, *pg, *core;
    size_t alen, size;
    CoreState st;
    CprsDiag d;

    (void)state;
    arena = make_arena(&alen);
    assert_true(alen > 300);
    pg = page_with(arena, alen, 0, 0, PAGE);
    {
        const CMap maps[] = { { at, at + PAGE, 0, STATE_PATH } };
        const CSeg segs[] = { { at, pg, PAGE, 256, false } };
        CoreSpec c = { .maps = maps, .nmaps = 1, .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), 0);
    assert_int_equal(st.flags, CORE_STATE_F_TRUNCATED);
    assert_int_equal(st.size, 256);
    assert_int_equal(st.declared_size, alen);
    free(core);
    free(pg);
    free(arena);
}

static void test_order_and_skip(void **state)
{
    CoreOpts o = (CoreOpts){ 0 };
    const uint64_t at = 0x7f0000000000;
    uint8_t *arena, *stream, *pg, *heap, *core;
    size_t alen, slen, size;
    CoreState st, before;
    CprsDiag d;

    (void)state;
    arena = make_arena(&alen);
    stream = make_legacy(&slen);
    pg = page_with(arena, alen, 0, 0, PAGE);
    heap = page_with(stream, slen, 8, 0xee, PAGE);
    memcpy(heap + 2048, arena, alen);
    {
        const CMap maps[] = { { at, at + PAGE, 0, STATE_PATH } };
        const CSeg segs[] = { { 0x600000, heap, PAGE, 0, false },
                              { at, pg, PAGE, 0, false } };
        CoreSpec c = { .maps = maps, .nmaps = 1, .segs = segs, .nsegs = 2 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, &o, &d, &st), 0);
    assert_int_equal(st.found_by, CORE_FOUND_NT_FILE);
    o.skip = 1;
    assert_int_equal(find(core, size, &o, &d, &st), 0);
    assert_int_equal(st.found_by, CORE_FOUND_SCAN);
    assert_int_equal(st.format, CPRS_DETECT_LEGACY);
    assert_int_equal(st.vaddr, 0x600008);
    o.skip = 2;
    assert_int_equal(find(core, size, &o, &d, &st), 0);
    assert_int_equal(st.format, CPRS_DETECT_ARENA);
    assert_int_equal(st.vaddr, 0x600000 + 2048);
    /* ret_state is written only on success. */
    o.skip = 3;
    before = st;
    assert_int_equal(core_find_state_buffer(core, size, &o, &d, &st),
                     -ENOENT);
    assert_memory_equal(&st, &before, sizeof(st));
    free(core);
    free(heap);
    free(pg);
    free(stream);
    free(arena);
}

static void test_elf32_big_endian(void **state)
{
    const uint64_t at = 0xb7000000;
    uint8_t *arena, *pg, *core;
    size_t alen, size;
    CoreState st;
    CprsDiag d;

    (void)state;
    arena = make_arena(&alen);
    pg = page_with(arena, alen, 0, 0, PAGE);
    {
        const CMap maps[] = { { 0x10000, 0x11000, 0, "/bin/qemu" },
                              { at, at + PAGE, 0, STATE_PATH } };
        const CSeg segs[] = { { at, pg, PAGE, 0, false } };
        CoreSpec c = { .is32 = true, .be = true, .maps = maps, .nmaps = 2,
                       .segs = segs, .nsegs = 1 };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), 0);
    assert_int_equal(st.found_by, CORE_FOUND_NT_FILE);
    assert_int_equal(st.vaddr, at);
    assert_string_equal(st.map_name, STATE_PATH);
    free(core);
    free(pg);
    free(arena);
}

/* Malformed NT_FILE notes are ignored (and flagged); the scan still runs. */
static void test_bad_nt_file(void **state)
{
    const uint64_t at = 0x7f0000000000;
    uint8_t *arena, *pg, *core, desc[256];
    size_t alen, size, v;
    CoreState st;
    CprsDiag d;

    (void)state;
    arena = make_arena(&alen);
    pg = page_with(arena, alen, 0, 0, PAGE);
    for (v = 0; v < 6; v++) {
        size_t len = sizeof(desc);

        memset(desc, 0, sizeof(desc));
        put(desc, 1, 8, false);
        put(desc + 8, PAGE, 8, false);
        put(desc + 16, at, 8, false);
        put(desc + 24, at + PAGE, 8, false);
        memcpy(desc + 40, STATE_PATH, sizeof(STATE_PATH));
        switch (v) {
        case 0:
            put(desc, UINT64_MAX, 8, false);        /* huge count */
            break;
        case 1:
            memset(desc + 40, 'x', sizeof(desc) - 40);  /* no NUL */
            break;
        case 2:
            put(desc + 24, at - 1, 8, false);       /* end < start */
            break;
        case 3:
            len = 12;                               /* too short */
            break;
        case 4:
            put(desc + 8, 0, 8, false);             /* page size 0 */
            break;
        default:
            len = 40;                               /* no names */
            break;
        }
        {
            const CSeg segs[] = { { at, pg, PAGE, 0, false } };
            CoreSpec c = { .desc = desc, .desc_len = len, .segs = segs,
                           .nsegs = 1 };

            core = build_core(&c, &size);
        }
        assert_int_equal(find(core, size, NULL, &d, &st), 0);
        assert_int_equal(st.found_by, CORE_FOUND_SCAN);
        assert_int_equal(st.flags, CORE_STATE_F_BAD_NT_FILE);
        free(core);
    }
    free(pg);
    free(arena);
}

static void test_not_a_core(void **state)
{
    CoreOpts o = (CoreOpts){ 0 };
    CoreState st = (CoreState){ 0 };
    CprsDiag d = CPRS_OPTS(CprsDiag);
    uint8_t *core, junk[512];
    size_t size;
    int p[2];

    (void)state;
    memset(junk, 0x11, sizeof(junk));
    assert_int_equal(core_find_state_buffer(junk, sizeof(junk), NULL,
                                                 &d, &st), -EBADMSG);
    assert_string_equal(d.reason, "not an ELF file");
    assert_int_equal(core_find_state_buffer(junk, 0, NULL, &d, &st),
                     -EBADMSG);
    {
        CoreSpec c = { .type = ET_EXEC, .no_note = true };

        core = build_core(&c, &size);
    }
    assert_int_equal(find(core, size, NULL, &d, &st), -EBADMSG);
    assert_string_equal(d.reason, "ELF file is not a core dump");
    free(core);
    /* Program headers past the end of the file. */
    {
        CoreSpec c = { .no_note = true };

        core = build_core(&c, &size);
    }
    put(core + 32, 1u << 20, 8, false);
    put(core + 56, 3, 2, false);
    assert_int_equal(find(core, size, NULL, &d, &st), -EBADMSG);
    free(core);

    /* Misuse. */
    assert_int_equal(core_find_state_buffer(NULL, 1, NULL, &d, &st),
                     -EINVAL);
    assert_int_equal(core_find_state(-1, NULL, &d, &st), -EINVAL);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(core_find_state(p[0], NULL, &d, &st), -EINVAL);
    close(p[0]);
    close(p[1]);
    assert_int_equal(core_find_state(p[0], NULL, &d, &st), -EBADF);
    o.flags = 0x80;
    assert_int_equal(core_find_state_buffer(junk, sizeof(junk), &o, &d,
                                                 &st), -EINVAL);
    assert_int_equal(core_find_state_buffer(junk, sizeof(junk), NULL,
                                                 &d, NULL), -EINVAL);
    /* The diag is optional. */
    assert_int_equal(core_find_state_buffer(junk, sizeof(junk), NULL,
                                                 NULL, &st), -EBADMSG);
}

/*
 * Every prefix, and flips of each header and note byte and of sampled
 * data bytes, of a core with both an NT_FILE state and a heap copy:
 * never a crash, never a result outside the input.
 */
static void test_hostile(void **state)
{
    const uint64_t at = 0x7f0000000000;
    uint8_t *arena, *pg, *heap, *core;
    size_t alen, size, n, i;
    CoreState st;
    CprsDiag d;
    unsigned bit;
    int ret;

    (void)state;
    arena = make_arena(&alen);
    pg = page_with(arena, alen, 0, 0, PAGE);
    heap = page_with(arena, alen, 512, 0x3c, PAGE);
    {
        const CMap maps[] = { { 0x400000, 0x401000, 0, "/bin/qemu" },
                              { at, at + PAGE, 0, STATE_PATH } };
        const CSeg segs[] = { { 0x600000, heap, PAGE, 0, false },
                              { at, pg, PAGE, 0, false } };
        CoreSpec c = { .maps = maps, .nmaps = 2, .segs = segs, .nsegs = 2 };

        core = build_core(&c, &size);
    }
    for (n = 0; n <= size; n++) {
        uint8_t *copy = malloc(n ? n : 1);

        memcpy(copy, core, n);
        st = (CoreState){ 0 };
        ret = core_find_state_buffer(copy, n, NULL, &d, &st);
        if (ret != 0 && ret != -ENOENT && ret != -ENODATA &&
            ret != -EBADMSG) {
            fail_msg("prefix %zu: %d", n, ret);
        }
        if (!ret) {
            assert_true(st.file_offset <= n && st.size <= n - st.file_offset);
        }
        free(copy);
    }
    for (i = 0; i < size; i += i < 1024 ? 1 : 61) {
        for (bit = 0; bit < 8; bit++) {
            core[i] ^= (uint8_t)(1u << bit);
            st = (CoreState){ 0 };
            ret = core_find_state_buffer(core, size, NULL, &d, &st);
            if (ret != 0 && ret != -ENOENT && ret != -ENODATA &&
                ret != -EBADMSG && ret != -E2BIG) {
                fail_msg("flip of bit %u at 0x%zx: %d", bit, i, ret);
            }
            if (!ret) {
                assert_true(st.file_offset <= size &&
                            st.size <= size - st.file_offset);
            }
            core[i] ^= (uint8_t)(1u << bit);
        }
    }
    free(core);
    free(heap);
    free(pg);
    free(arena);
}

/* ---- The scan against a direct reading of its rules -------------------- */

/*
 * What the scan must find, computed the slow way: every 8-aligned arena
 * magic whose header has a sane size and a valid CRC (checksummed afresh),
 * an arena_size holding it and, at version 1, one a reader accepts; every
 * legacy magic past the bytes the last legacy candidate spanned, decoded
 * by the library in doubling windows.  The scan's fast paths (a rolling
 * checksum, a walk of the stream grammar) must find exactly the same.
 */
typedef struct Want {
    uint64_t off;           /* into the segment */
    uint32_t format;
    uint64_t size;
} Want;

static const uint8_t legacy_start[8] = { 'Q', 'C', 'P', 'R', 0, 0, 0, 1 };

static bool oracle_arena(const uint8_t *p, uint64_t avail, uint64_t *ret_size)
{
    uint8_t head[CPRS_MAX_HEADER_SIZE];
    uint64_t win = avail < sizeof(head) ? avail : sizeof(head), asize;
    uint32_t hsize, crc;

    if (win < CPRS_HEADER_V1_SIZE) {
        return false;
    }
    memcpy(head, p, win);
    hsize = cprs_le32_get(&((CprsWireHeader *)head)->header_size);
    asize = cprs_le64_get(&((CprsWireHeader *)head)->arena_size);
    crc = cprs_le32_get(&((CprsWireHeader *)head)->header_crc32c);
    if (hsize < CPRS_HEADER_V1_SIZE || hsize > CPRS_MAX_HEADER_SIZE ||
        hsize % 8 || hsize > win || asize < hsize) {
        return false;
    }
    if (cprs_le16_get(&((CprsWireHeader *)head)->version_major) == 1 &&
        (asize % 8 || asize > CPRS_MAX_ARENA_SIZE)) {
        return false;
    }
    memset(head + offsetof(CprsWireHeader, header_crc32c), 0, 4);
    if (cprs_crc32c(0, head, hsize) != crc) {
        return false;
    }
    *ret_size = asize < avail ? asize : avail;
    return true;
}

/* The library's verdict on a legacy candidate; *@ret_span as the scan. */
static bool oracle_legacy(const uint8_t *p, uint64_t avail,
                          uint64_t *ret_size, uint64_t *ret_span)
{
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts,
                                  .flags = CPRS_LEGACY_F_LENIENT |
                                           CPRS_LEGACY_F_ALL_FORMS);
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsDiag d = CPRS_OPTS(CprsDiag);
    uint64_t cap = avail < (16u << 20) ? avail : (16u << 20);
    uint64_t win = cap < 64 ? cap : 64;
    CprsLegacy *lg;
    int ret;

    for (;;) {
        ret = cprs_legacy_decode(p, win, &lo, &d, &lg);
        if (!ret) {
            assert_int_equal(cprs_legacy_get_info(lg, &li), 0);
            cprs_legacy_free(lg);
        }
        if (win == cap || !inspect_legacy_more(ret, &d, li.size, win)) {
            break;
        }
        win = win > cap / 2 ? cap : 2 * win;
    }
    *ret_span = ret ? d.offset : li.size;
    *ret_size = li.size;
    return !ret;
}

/* Everything the scan must find in @seg (@len bytes at @vaddr), in order. */
static size_t oracle(const uint8_t *seg, uint64_t len, uint64_t vaddr,
                     Want *want, size_t max)
{
    uint64_t off, end = 0, size, span;
    size_t n = 0;

    for (off = 0; off + 8 <= len; off++) {
        if (!((vaddr + off) % 8) && !memcmp(seg + off, CPRS_MAGIC, 8) &&
            oracle_arena(seg + off, len - off, &size)) {
            assert_true(n < max);
            want[n++] = (Want){ off, CPRS_DETECT_ARENA, size };
        } else if (off >= end && !memcmp(seg + off, legacy_start, 8)) {
            bool ok = oracle_legacy(seg + off, len - off, &size, &span);

            if (off + span > end) {
                end = off + span;
            }
            if (ok) {
                assert_true(n < max);
                want[n++] = (Want){ off, CPRS_DETECT_LEGACY, size };
            }
        }
    }
    return n;
}

static uint64_t rnd_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Legacy streams to plant: every form, both modes, with vfio devices. */
static uint8_t *oracle_stream(uint64_t *x, size_t *ret_len)
{
    static const uint32_t forms[] = {
        CPRS_LEGACY_VFIO_FULL, CPRS_LEGACY_VFIO_STUB, CPRS_LEGACY_VFIO_NONE,
    };
    uint32_t form = forms[rnd_next(x) % 3], nfd = rnd_next(x) % 8, i;
    bool transfer = rnd_next(x) % 2;
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts,
                                 .mode = transfer ? CPRS_MODE_TRANSFER :
                                                    CPRS_MODE_EXEC,
                                 .vfio_form = form);
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    CprsLegacy *lg;
    char name[32];
    void *buf;

    assert_int_equal(cprs_legacy_new(&o, &lg), 0);
    nfd = nfd < 6 ? nfd : 30 * nfd;
    for (i = 0; i < nfd; i++) {
        snprintf(name, sizeof(name), "fd-%u", i);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .id = (int32_t)i,
                       .fd = transfer ? -1 : (int32_t)(10 + i));
        assert_int_equal(cprs_legacy_add_fd(lg, &fi, NULL), 0);
    }
    for (i = 0; form == CPRS_LEGACY_VFIO_FULL && i < rnd_next(x) % 3; i++) {
        snprintf(name, sizeof(name), "0000:00:0%u.0", i);
        vi = (CprsVfioDeviceInfo){ .sz = sizeof(vi), .name = name,
                                   .devid = (int32_t)i, .ioas_id = 1,
                                   .hwpt_id = 2 };
        assert_int_equal(cprs_legacy_add_vfio(lg, &vi, NULL), 0);
    }
    assert_int_equal(cprs_legacy_encode(lg, NULL, &buf, ret_len), 0);
    cprs_legacy_free(lg);
    return buf;
}

/*
 * An empty fd list, then vfio subsections as QEMU would not write them:
 * two of them, a version that is 1 in its low byte only, 0 or 2, a name
 * with bytes after its NUL, a list cut short.
 */
static uint8_t *oracle_subsections(uint64_t *x, size_t *ret_len)
{
    static const char vfio[] = "CprState/vfio devices";
    static const uint32_t versions[] = { 1, 1, 0x101, 0, 2, 0x100 };
    uint8_t *b = malloc(512), *p;
    uint32_t v, k, n = 1 + rnd_next(x) % 2;
    size_t namelen;

    assert_non_null(b);
    memcpy(b, legacy_start, 8);
    b[8] = 0;
    p = b + 9;
    for (k = 0; k < n; k++) {
        namelen = sizeof(vfio) - 1 + (rnd_next(x) % 4 == 0 ? 3 : 0);
        *p++ = 0x05;
        *p++ = (uint8_t)namelen;
        memset(p, 0, namelen);
        memcpy(p, vfio, sizeof(vfio) - 1);
        p += namelen;
        v = versions[rnd_next(x) % 6];
        *p++ = (uint8_t)(v >> 24);
        *p++ = (uint8_t)(v >> 16);
        *p++ = (uint8_t)(v >> 8);
        *p++ = (uint8_t)v;
        if (rnd_next(x) % 2) {
            /* One device "d", devid 1, ioas 2, hwpt 3, then the end. */
            static const uint8_t dev[] = {
                1, 0, 0, 0, 2, 'd', 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
            };

            memcpy(p, dev, sizeof(dev));
            p += sizeof(dev);
        }
        *p++ = 0;
    }
    *ret_len = (size_t)(p - b) - rnd_next(x) % 3;
    return b;
}

/* A segment of noise holding arenas, headers and streams, most broken. */
static void oracle_fill(uint8_t *seg, uint64_t len, uint64_t vaddr,
                        uint64_t *x, const uint8_t *arena, size_t alen)
{
    static const uint8_t hostile[][19] = {
        { 'Q', 'C', 'P', 'R', 0, 0, 0, 1, 1 },
        { 'Q', 'C', 'P', 'R', 0, 0, 0, 1, 1, 0, 0, 0, 2, 'a' },
        { 'Q', 'C', 'P', 'R', 0, 0, 0, 1, 0, 0x05, 0xff,
          'C', 'p', 'r', 'S', 't', 'a', 't', 'e' },
        { 'Q', 'C', 'P', 'R', 0, 0, 0, 1, 0, 0x05, 0x15,
          'C', 'p', 'r', 'S', 't', 'a', 't', 'e' },
    };
    static const uint8_t lens[] = { 9, 14, 19, 19 };
    uint64_t i, at, k, hdr[64], nhdr = 0, h, asize;
    uint8_t *s;
    size_t slen;

    for (i = 0; i < len; i += 8) {
        uint64_t r = rnd_next(x);

        memcpy(seg + i, &r, len - i < 8 ? len - i : 8);
    }
    /* Runs of the hostile patterns, valid streams, and broken ones. */
    for (k = 0; k < len / 2048; k++) {
        at = rnd_next(x) % len;
        switch (rnd_next(x) % 4) {
        case 0:
            h = rnd_next(x) % 4;
            for (i = 0; i < 40 && at + lens[h] <= len; i++, at += lens[h]) {
                memcpy(seg + at, hostile[h], lens[h]);
            }
            break;
        case 1:
            s = oracle_subsections(x, &slen);
            if (at + slen <= len) {
                memcpy(seg + at, s, slen);
            }
            free(s);
            break;
        default:
            s = oracle_stream(x, &slen);
            if (rnd_next(x) % 2) {
                /* Broken: a byte or three changed, or cut short. */
                for (i = rnd_next(x) % 3; i < 3; i++) {
                    s[8 + rnd_next(x) % (slen - 8)] = (uint8_t)rnd_next(x);
                }
                if (rnd_next(x) % 4 == 0) {
                    slen = 8 + rnd_next(x) % (slen - 8);
                }
            }
            if (at + slen <= len) {
                memcpy(seg + at, s, slen);
                /* A stream ends where the bytes after it say. */
                if (at + slen < len && rnd_next(x) % 2) {
                    seg[at + slen] = 0;
                }
            }
            free(s);
            break;
        }
    }
    /* A stream the segment ends with: nothing follows it. */
    s = oracle_stream(x, &slen);
    if (slen <= len) {
        memcpy(seg + len - slen, s, slen);
    }
    free(s);
    /* Whole arenas at aligned and unaligned addresses. */
    for (k = 0; k < 2; k++) {
        at = (rnd_next(x) % len) & ~(uint64_t)(k ? 0 : 7);
        at -= (vaddr + at) % 8 * !k;
        if (at + alen <= len) {
            memcpy(seg + at, arena, alen);
        }
    }
    /*
     * Headers of every size whose windows overlap, half with a valid CRC:
     * fields first, then the checksums from the last header down, so that
     * no later write falls in a summed window.
     */
    at = (rnd_next(x) % 1024) & ~(uint64_t)7;
    at += (8 - (vaddr + at) % 8) % 8;
    while (nhdr < 64 && at + CPRS_HEADER_V1_SIZE <= len) {
        s = seg + at;
        memcpy(s, CPRS_MAGIC, 8);
        cprs_le16_set((CprsLe16 *)(s + 8), rnd_next(x) % 8 ? 1 : 2);
        h = CPRS_HEADER_V1_SIZE + 8 * (rnd_next(x) % 489);
        cprs_le32_set((CprsLe32 *)(s + 12), (uint32_t)h);
        asize = rnd_next(x) % 4 ? 8 * (h / 8 + rnd_next(x) % 1000) :
                rnd_next(x);
        cprs_le64_set((CprsLe64 *)(s + 32), asize);
        hdr[nhdr++] = at;
        at += 96 + 8 * (rnd_next(x) % 64);
    }
    while (nhdr--) {
        s = seg + hdr[nhdr];
        h = cprs_le32_get((CprsLe32 *)(s + 12));
        if (hdr[nhdr] + h <= len && rnd_next(x) % 2) {
            memset(s + 84, 0, 4);
            cprs_le32_set((CprsLe32 *)(s + 84), cprs_crc32c(0, s, h));
        }
    }
}

static void test_scan_oracle(void **state)
{
    enum { MAX_WANT = 4096 };
    static const uint64_t sizes[] = { 65536, 200000, (1u << 20) + 5000 };
    /* The second segment's addresses are 4 off the file's alignment. */
    static const uint64_t vaddrs[] = { 0x600000, 0x900004 };
    CoreOpts o = (CoreOpts){ 0 };
    uint64_t x = 0x9e3779b97f4a7c15ull, seg_off[2];
    uint8_t *seg[2], *arena, *core;
    size_t alen, size, n[2], total, k, j, round;
    Want *want[2];
    CoreState st;
    CprsDiag d;

    (void)state;
    arena = make_arena(&alen);
    for (round = 0; round < 12; round++) {
        uint64_t len = sizes[round % 3];

        for (j = 0; j < 2; j++) {
            seg[j] = malloc(len);
            want[j] = calloc(MAX_WANT, sizeof(Want));
            assert_non_null(seg[j]);
            assert_non_null(want[j]);
            oracle_fill(seg[j], len, vaddrs[j], &x, arena, alen);
            n[j] = oracle(seg[j], len, vaddrs[j], want[j], MAX_WANT);
        }
        {
            const CSeg segs[] = { { vaddrs[0], seg[0], len, 0, false },
                                  { vaddrs[1], seg[1], len, 0, false } };
            CoreSpec c = { .no_note = true, .segs = segs, .nsegs = 2 };

            core = build_core(&c, &size);
        }
        /* Where the segments' bytes are in the file: p_offset. */
        for (j = 0; j < 2; j++) {
            memcpy(&seg_off[j], core + sizeof(Elf64_Ehdr) +
                   j * sizeof(Elf64_Phdr) + offsetof(Elf64_Phdr, p_offset),
                   sizeof(seg_off[j]));
            seg_off[j] = le64toh(seg_off[j]);
            assert_memory_equal(core + seg_off[j], seg[j], len);
        }
        total = n[0] + n[1];
        assert_true(total > 0);
        for (k = 0; k <= total; k++) {
            o.skip = (uint32_t)k;
            if (k == total) {
                assert_int_equal(find(core, size, &o, &d, &st), -ENOENT);
                break;
            }
            assert_int_equal(find(core, size, &o, &d, &st), 0);
            j = k < n[0] ? 0 : 1;
            {
                const Want *w = &want[j][j ? k - n[0] : k];

                if (st.file_offset != seg_off[j] + w->off ||
                    st.format != w->format || st.size != w->size) {
                    fail_msg("round %zu, candidate %zu: found %u at %" PRIu64
                             " (%" PRIu64 " bytes), want %u at %" PRIu64
                             " (%" PRIu64 " bytes)", round, k, st.format,
                             st.file_offset, st.size, w->format,
                             seg_off[j] + w->off, w->size);
                }
            }
        }
        free(core);
        for (j = 0; j < 2; j++) {
            free(seg[j]);
            free(want[j]);
        }
    }
    free(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nt_file_arena),
        cmocka_unit_test(test_scan_arena),
        cmocka_unit_test(test_fake_magic),
        cmocka_unit_test(test_not_dumped),
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_scan_every_offset),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_order_and_skip),
        cmocka_unit_test(test_elf32_big_endian),
        cmocka_unit_test(test_bad_nt_file),
        cmocka_unit_test(test_not_a_core),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_scan_oracle),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
