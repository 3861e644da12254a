/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-bounded-core.c - the core locator (tools/inspect) is linear in the
 * size of the core on the worst cores we can build (issue 11, class 3).
 *
 * tools/inspect is not part of the library's counted build, so it counts
 * its own work (CoreOpts.work: bytes scanned, read, checksummed, handed
 * to the legacy decoder, and candidates probed); the library's counters
 * (bounded.h) count what the decoder does inside.  Each worst case is
 * built at 1x and 8x and searched through a file (pread, as cprdump reads
 * a core) and through memory; every counter must grow at most 8 times.
 *
 *   pattern    a segment full of "QCPR\0\0\0\1", the 8 bytes that start a
 *              legacy stream (was: a 16 MiB window copied and decoded at
 *              each one)
 *   nested     one long valid stream whose every record holds those 8
 *              bytes in its id and fd fields (was: each of them decoded
 *              the rest of the stream)
 *   arena      an arena magic every 16 bytes with a sane header size, so
 *              that each costs a header checksum
 *   overlap    many PT_LOAD headers over the same file bytes (was: each
 *              scanned them again)
 *   named      many NT_FILE mappings of the state memfd at one address
 *              (was: each decoded the stream there again)
 *   named-offsets  NT_FILE mappings of the state memfd 16 bytes apart,
 *              each on an arena magic (was: 4 KiB read for each)
 *   notes      many PT_NOTE headers, at one offset or at many (was: libelf
 *              read and kept a chunk for each)
 */
#include <elf.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bounded.h"
#include "helpers.h"
#include "inspect.h"

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif

#define VADDR UINT64_C(0x7f0000000000)

typedef struct Spec {
    const uint8_t *data;    /* the bytes of every PT_LOAD segment */
    size_t size;
    size_t nsegs;           /* PT_LOAD headers, all over @data */
    size_t nmaps;           /* NT_FILE entries naming the state memfd */
    bool spread;            /* map i at segment i's address, 4 KiB long;
                             * else all at the first one's */
} Spec;

static void put(uint8_t *p, uint64_t v, unsigned w)
{
    unsigned i;

    for (i = 0; i < w; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* The ELF header of an x86-64 core at @b: @phnum headers at 64. */
static void core_header(uint8_t *b, size_t phnum)
{
    memcpy(b, ELFMAG, SELFMAG);
    b[EI_CLASS] = ELFCLASS64;
    b[EI_DATA] = ELFDATA2LSB;
    b[EI_VERSION] = EV_CURRENT;
    put(b + 16, ET_CORE, 2);
    put(b + 18, EM_X86_64, 2);
    put(b + 20, EV_CURRENT, 4);
    put(b + 32, 64, 8);
    put(b + 52, 64, 2);
    put(b + 54, 56, 2);
    put(b + 56, phnum, 2);
}

/* An x86-64 core: a PT_NOTE with NT_FILE when @s->nmaps, then segments. */
static uint8_t *build(const Spec *s, size_t *ret_size)
{
    static const char name[] = "/memfd:QEMU_CPR_EXEC_STATE (deleted)";
    size_t phnum = s->nsegs + (s->nmaps ? 1 : 0), i, desc, note, data;
    size_t size, off;
    uint8_t *b, *p;

    desc = 16 + s->nmaps * (24 + sizeof(name));
    note = 64 + phnum * 56;
    data = (note + (s->nmaps ? 20 + desc : 0) + 4095) / 4096 * 4096;
    size = data + s->size;
    b = calloc(1, size);
    assert_non_null(b);
    core_header(b, phnum);
    for (i = 0; i < phnum; i++) {
        bool is_note = s->nmaps && i == 0;

        p = b + 64 + i * 56;
        put(p, is_note ? PT_NOTE : PT_LOAD, 4);
        put(p + 8, is_note ? note : data, 8);
        put(p + 16, is_note ? 0 : VADDR + ((i - !!s->nmaps) << 12), 8);
        put(p + 32, is_note ? 20 + desc : s->size, 8);
        put(p + 40, is_note ? 0 : s->size, 8);
    }
    if (s->nmaps) {
        p = b + note;
        put(p, 5, 4);
        put(p + 4, desc, 4);
        put(p + 8, NT_FILE, 4);
        memcpy(p + 12, "CORE", 5);
        p += 20;
        put(p, s->nmaps, 8);
        put(p + 8, 4096, 8);
        off = 16 + s->nmaps * 24;
        for (i = 0; i < s->nmaps; i++) {
            if (s->spread) {
                /* Segment i's address: all show the same file bytes. */
                put(p + 16 + i * 24, VADDR + (i << 12), 8);
                put(p + 24 + i * 24, VADDR + (i << 12) + 4096, 8);
            } else {
                /* One address; mappings of every length up to the
                 * segment. */
                put(p + 16 + i * 24, VADDR, 8);
                put(p + 24 + i * 24, VADDR + s->size - 8 * (i % 64), 8);
            }
            memcpy(p + off + i * sizeof(name), name, sizeof(name));
        }
    }
    memcpy(b + data, s->data, s->size);
    *ret_size = size;
    return b;
}

/* Search @core through a file and through memory; add up the work. */
static void search(const uint8_t *core, size_t size, CoreWork *cw,
                   Work *lib)
{
    CoreOpts o = (CoreOpts){ .work = cw };
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CoreState st;
    Work w;
    int fd, k;

    fd = memfd_create("core", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, core, size), (ssize_t)size);
    memset(cw, 0, sizeof(*cw));
    work_reset();
    /* The first candidate, and every one (a --core-index past them). */
    for (k = 0; k < 2; k++) {
        o.skip = k ? UINT32_MAX : 0;
        core_find_state(fd, &o, &diag, &st);
        core_find_state_buffer(core, size, &o, &diag, &st);
    }
    w = work_now();
    for (k = 0; k < CPRS_WORK__MAX; k++) {
        lib->n[k] = w.n[k];
    }
    close(fd);
}

/* CoreWork's counters, in order. */
static const char *const cw_names[] = {
    "scan", "read", "crc", "decode", "probes", "walk", "named", "notes",
};
#define CW_N (sizeof(CoreWork) / sizeof(uint64_t))
_Static_assert(sizeof(cw_names) / sizeof(cw_names[0]) == CW_N,
               "a name for each CoreWork counter");

static void print_cw(const char *label, const CoreWork *w)
{
    printf("# %s: scan=%" PRIu64 " read=%" PRIu64 " crc=%" PRIu64
           " decode=%" PRIu64 " probes=%" PRIu64 " walk=%" PRIu64
           " named=%" PRIu64 " notes=%" PRIu64 "\n", label, w->scan_bytes,
           w->read_bytes, w->crc_bytes, w->decode_bytes, w->probes,
           w->walk_bytes, w->named, w->note_bytes);
}

/*
 * Build with @make at 1x and 8x, search, and check every counter.  @fixed
 * is work that does not grow with the core (headers, the first window).
 * *@ret_w8 (unless NULL): the work at 8x.
 */
static void check_linear(const char *what,
                         uint8_t *(*make)(size_t scale, Spec *s),
                         CoreWork *ret_w8)
{
    CoreWork w[2];
    Work lib[2];
    uint64_t a[CW_N], b[CW_N];
    uint8_t *data, *core;
    size_t size;
    char label[64];
    int i, k;
    Spec s;

    for (i = 0; i < 2; i++) {
        memset(&s, 0, sizeof(s));
        data = make(i ? 8 : 1, &s);
        core = build(&s, &size);
        search(core, size, &w[i], &lib[i]);
        snprintf(label, sizeof(label), "%s %dx inspect", what, i ? 8 : 1);
        print_cw(label, &w[i]);
        snprintf(label, sizeof(label), "%s %dx library", what, i ? 8 : 1);
        work_print(label, &lib[i]);
        free(core);
        free(data);
    }
    memcpy(a, &w[0], sizeof(a));
    memcpy(b, &w[1], sizeof(b));
    for (k = 0; k < (int)CW_N; k++) {
        if ((double)b[k] > 8.0 * 1.25 * (double)a[k] + 65536.0) {
            fail_msg("%s: %s work grew from %" PRIu64 " to %" PRIu64
                     " for 8 times the core", what, cw_names[k], a[k], b[k]);
        }
    }
    k = work_linear(&lib[0], &lib[1], 1.25, 65536);
    if (k >= 0) {
        fail_msg("%s: library %s grew from %" PRIu64 " to %" PRIu64, what,
                 work_names[k], lib[0].n[k], lib[1].n[k]);
    }
    if (ret_w8) {
        *ret_w8 = w[1];
    }
}

/*
 * @w's @what work is at most @per_byte times the bytes scanned: the fast
 * paths' own bound (linear at 1x and 8x is not enough: a header checksum
 * of 4 KiB per candidate was linear too).
 */
static void check_per_byte(const char *what, const char *counter,
                           uint64_t n, const CoreWork *w, double per_byte)
{
    if ((double)n > per_byte * (double)w->scan_bytes) {
        fail_msg("%s: %s work %" PRIu64 " for %" PRIu64 " bytes scanned "
                 "(at most %.2f per byte)", what, counter, n, w->scan_bytes,
                 per_byte);
    }
}

/* Segment bytes: @size bytes of @unit repeated. */
static uint8_t *repeat(size_t size, const void *unit, size_t len, Spec *s)
{
    size_t i;
    uint8_t *d = malloc(size);

    assert_non_null(d);
    for (i = 0; i + len <= size; i += len) {
        memcpy(d + i, unit, len);
    }
    memset(d + i, 0, size - i);
    s->data = d;
    s->size = size;
    s->nsegs = 1;
    return d;
}

static const uint8_t legacy_magic[8] = { 'Q', 'C', 'P', 'R', 0, 0, 0, 1 };

static uint8_t *make_pattern(size_t scale, Spec *s)
{
    return repeat(scale << 18, legacy_magic, sizeof(legacy_magic), s);
}

static void test_pattern(void **state)
{
    (void)state;
    check_linear("pattern", make_pattern, NULL);
}

/*
 * "QCPR" 1, then records: marker 1, namelen 5, a 4-letter name and its
 * NUL, id "QCPR" (be32), fd 1 (be32): every id+fd is the 8 bytes of a
 * stream's start, and what follows each parses as a stream to the end.
 * Records fill half of @scale * 2 MiB (more than the scan's 1 MiB chunk,
 * which 1x and 8x must both exceed to read alike), then the end marker
 * and zeros.  The names repeat every 4,096 records: the stream stays
 * one that decodes (a duplicate key is a warning), and the decoder's
 * index of distinct keys stays the same size at 1x and 8x (how much it
 * grows for probe length at half a million keys is the decoder's bound,
 * class 1, not the scan's).
 */
static uint8_t *make_nested(size_t scale, Spec *s)
{
    static const uint8_t rec[] = {
        1, 0, 0, 0, 5, 'a', 'a', 'a', 'a', 0, 'Q', 'C', 'P', 'R', 0, 0, 0,
        1,
    };
    size_t size = scale << 21, i, n, k, v;
    uint8_t *d = calloc(1, size);

    assert_non_null(d);
    memcpy(d, legacy_magic, 8);
    for (i = 8, n = 0; i + sizeof(rec) <= size / 2; i += sizeof(rec), n++) {
        memcpy(d + i, rec, sizeof(rec));
        for (k = 0, v = n % 4096; k < 4; k++, v /= 26) {
            d[i + 5 + k] = (uint8_t)('a' + v % 26);
        }
    }
    s->data = d;
    s->size = size;
    s->nsegs = 1;
    return d;
}

static void test_nested(void **state)
{
    (void)state;
    check_linear("nested", make_nested, NULL);
}

static uint8_t *make_arena(size_t scale, Spec *s)
{
    uint8_t unit[16];

    memcpy(unit, CPRS_MAGIC, 8);
    put(unit + 8, 0x00000001, 4);
    put(unit + 12, CPRS_MAX_HEADER_SIZE, 4);
    return repeat(scale << 15, unit, sizeof(unit), s);
}

/* Refused before any checksum: arena_size is a magic, never 8-aligned. */
static void test_arena(void **state)
{
    CoreWork w;

    (void)state;
    check_linear("arena", make_arena, &w);
    assert_int_equal(w.crc_bytes, 0);
}

/*
 * The worst arena candidates that pass the cheap checks: 4 KiB headers
 * (bad CRC) whose arena_size a reader accepts, two per 56 bytes (at 0 and
 * 16; closer, a magic or a version is some header's arena_size).  Each
 * costs a checksum, which rolls: every byte goes through it once per
 * search (was: 4 KiB per candidate, 146 per byte).
 */
static uint8_t *make_arena_sane(size_t scale, Spec *s)
{
    uint8_t unit[56] = { 0 };

    memcpy(unit, CPRS_MAGIC, 8);
    put(unit + 8, 0x00000001, 4);
    put(unit + 12, CPRS_MAX_HEADER_SIZE, 4);
    memcpy(unit + 16, unit, 16);
    put(unit + 32, 8192, 8);            /* the first's arena_size */
    put(unit + 48, 8192, 8);            /* the second's */
    return repeat(scale * 56 * 1024, unit, sizeof(unit), s);
}

static void test_arena_sane(void **state)
{
    CoreWork w;

    (void)state;
    check_linear("arena-sane", make_arena_sane, &w);
    assert_true(w.crc_bytes > 0);
    check_per_byte("arena-sane", "crc", w.crc_bytes, &w, 1.0);
}

/*
 * Legacy candidates refused by the walk, without a decoder set-up (was:
 * one each, with its keyed tables): @unit repeated, each copy one
 * candidate; the walk looks at a few bytes more than each spans.
 */
static void check_walked(const char *what,
                         uint8_t *(*make)(size_t scale, Spec *s))
{
    CoreWork w;

    check_linear(what, make, &w);
    assert_int_equal(w.decode_bytes, 0);
    assert_true(w.walk_bytes > 0);
    check_per_byte(what, "walk", w.walk_bytes, &w, 2.0);
}

/* "QCPR" 1, marker 1, then the next copy: namelen "QCPR" is refused 9
 * bytes in, where that copy starts: the densest legacy candidates. */
static uint8_t *make_legacy9(size_t scale, Spec *s)
{
    static const uint8_t unit[9] = { 'Q', 'C', 'P', 'R', 0, 0, 0, 1, 1 };

    return repeat(scale * 9 * 16384, unit, sizeof(unit), s);
}

static void test_legacy9(void **state)
{
    (void)state;
    check_walked("legacy9", make_legacy9);
}

/* A first record whose 2-byte name runs into the next copy: refused at
 * its last byte, 14 bytes in (the benchmark's "a decode every 14 bytes"). */
static uint8_t *make_legacy14(size_t scale, Spec *s)
{
    static const uint8_t unit[14] = {
        'Q', 'C', 'P', 'R', 0, 0, 0, 1, 1, 0, 0, 0, 2, 'a',
    };

    return repeat(scale * 14 * 16384, unit, sizeof(unit), s);
}

static void test_legacy14(void **state)
{
    (void)state;
    check_walked("legacy14", make_legacy14);
}

/*
 * An empty fd list, then a subsection named "CprState" + 247 bytes that
 * is not the vfio one: -EPROTONOSUPPORT at its name, 11 bytes in; the
 * next copy starts 19 bytes in, inside the name (whose NUL is in that
 * copy's magic, or in the zeros after the last copy).
 */
static uint8_t *make_subsection(size_t scale, Spec *s)
{
    static const uint8_t unit[19] = {
        'Q', 'C', 'P', 'R', 0, 0, 0, 1, 0, 0x05, 0xff,
        'C', 'p', 'r', 'S', 't', 'a', 't', 'e',
    };

    size_t n = scale * 19 * 16384;
    uint8_t *d = repeat(n + 512, unit, sizeof(unit), s);

    /* Zeros after the last copy: its name ends there too. */
    memset(d + n, 0, 512);
    return d;
}

static void test_subsection(void **state)
{
    (void)state;
    check_walked("subsection", make_subsection);
}

/*
 * Streams that decode, one per 16 bytes: an empty fd list and 7 zero
 * bytes, trailing.  A search for all of them (a --core-index past them)
 * decodes each once, in the window that settles it, and counts it: was
 * compared with every one found before (quadratic).
 */
static uint8_t *make_found(size_t scale, Spec *s)
{
    static const uint8_t unit[16] = { 'Q', 'C', 'P', 'R', 0, 0, 0, 1 };

    return repeat(scale * 16 * 2048, unit, sizeof(unit), s);
}

static void test_found(void **state)
{
    CoreWork w;

    (void)state;
    check_linear("found", make_found, &w);
    assert_true(w.decode_bytes > 0);
}

static uint8_t *make_overlap(size_t scale, Spec *s)
{
    static const uint8_t zero[8];
    uint8_t *d = repeat(scale << 18, zero, sizeof(zero), s);

    /* 8x the headers over 8x the bytes: 8x the work, not 64x. */
    s->nsegs = 16 * scale;
    return d;
}

static void test_overlap(void **state)
{
    (void)state;
    check_linear("overlap", make_overlap, NULL);
}

static uint8_t *make_named(size_t scale, Spec *s)
{
    uint8_t *d = make_nested(scale, s);

    /* 8x the mappings of an 8x longer stream: 8x the work, not 64x. */
    s->nmaps = 64 * scale;
    return d;
}

static void test_named(void **state)
{
    (void)state;
    check_linear("named", make_named, NULL);
}

/*
 * NT_FILE mappings at as many addresses, each on a segment of its own
 * over the same file bytes (a valid stream): as many candidates, probed
 * once (one file offset) and told apart by sorting (was: each compared
 * with every one met before, quadratic).
 */
static uint8_t *make_spread(size_t scale, Spec *s)
{
    static const uint8_t unit[16] = { 'Q', 'C', 'P', 'R', 0, 0, 0, 1 };
    uint8_t *d = repeat(4096, unit, sizeof(unit), s);

    memset(d + 16, 0, 4096 - 16);
    s->nmaps = 1024 * scale;
    s->nsegs = s->nmaps;
    s->spread = true;
    return d;
}

static void test_spread(void **state)
{
    CoreWork w;

    (void)state;
    check_linear("spread", make_spread, &w);
    assert_int_equal(w.named, 4 * 8 * 1024);
    assert_int_equal(w.probes, 4);
}

/*
 * A core of one PT_LOAD of @size bytes, an arena magic every 16 bytes,
 * and an NT_FILE mapping of the state memfd at each of them (cprdump
 * finding L): each candidate was read twice (its magic, then 4 KiB of
 * header), 256 times the core for these.  Returns the core.
 */
static uint8_t *build_named_spread(size_t size, size_t *ret_size)
{
    static const char name[] = "/memfd:QEMU_CPR_EXEC_STATE (deleted)";
    size_t k = size / 16, desc = 16 + k * (24 + sizeof(name)), note, data;
    size_t total, i;
    uint8_t *b, *p;

    note = 64 + 2 * 56;
    data = (note + 20 + desc + 4095) / 4096 * 4096;
    total = data + size;
    b = calloc(1, total);
    assert_non_null(b);
    core_header(b, 2);
    p = b + 64;
    put(p, PT_NOTE, 4);
    put(p + 8, note, 8);
    put(p + 32, 20 + desc, 8);
    p += 56;
    put(p, PT_LOAD, 4);
    put(p + 8, data, 8);
    put(p + 16, VADDR, 8);
    put(p + 32, size, 8);
    put(p + 40, size, 8);
    p = b + note;
    put(p, 5, 4);
    put(p + 4, desc, 4);
    put(p + 8, NT_FILE, 4);
    memcpy(p + 12, "CORE", 5);
    p += 20;
    put(p, k, 8);
    put(p + 8, 4096, 8);
    for (i = 0; i < k; i++) {
        put(p + 16 + i * 24, VADDR + 16 * i, 8);
        put(p + 24 + i * 24, VADDR + size, 8);
        memcpy(p + 16 + k * 24 + i * sizeof(name), name, sizeof(name));
    }
    for (i = 0; i + 16 <= size; i += 16) {
        memcpy(b + data + i, CPRS_MAGIC, CPRS_MAGIC_SIZE);
    }
    *ret_size = total;
    return b;
}

/*
 * Named candidates at distinct offsets are read through one sliding
 * window: the bytes read stay within the core's size (plus the windows'
 * overlap), at 1x and 8x.
 */
static void test_named_offsets(void **state)
{
    CoreOpts o = (CoreOpts){ 0 };
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CoreWork w;
    CoreState st;
    uint8_t *core;
    size_t len, size;
    int fd;

    (void)state;
    o.work = &w;
    for (size = 64 << 10; size <= (512 << 10); size *= 8) {
        core = build_named_spread(size, &len);
        fd = memfd_create("core", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, core, len), (ssize_t)len);
        memset(&w, 0, sizeof(w));
        o.flags = CORE_F_NO_SCAN;
        core_find_state(fd, &o, &diag, &st);
        print_cw("named offsets", &w);
        if (w.read_bytes > 2 * (uint64_t)len + 65536) {
            fail_msg("%zu named candidates 16 bytes apart: %" PRIu64
                     " bytes read for a core of %zu", size / 16,
                     w.read_bytes, len);
        }
        close(fd);
        free(core);
    }
}

/*
 * A core of @k PT_NOTE headers over one region of @size zero bytes (a
 * valid chain of empty notes from every 4-byte offset), at offsets 4 * i
 * when @distinct, else all at one offset, and one PT_LOAD of a page.
 */
static uint8_t *build_notes(size_t k, size_t size, bool distinct,
                            size_t *ret_size)
{
    size_t phnum = k + 1, note, data, total, i;
    uint8_t *b, *p;

    note = (64 + phnum * 56 + 4095) / 4096 * 4096;
    data = (note + size + 4 * k + 4095) / 4096 * 4096;
    total = data + 4096;
    b = calloc(1, total);
    assert_non_null(b);
    core_header(b, phnum);
    for (i = 0; i < phnum; i++) {
        p = b + 64 + i * 56;
        if (i < k) {
            put(p, PT_NOTE, 4);
            put(p + 8, note + (distinct ? 4 * i : 0), 8);
            put(p + 32, size, 8);
            put(p + 48, 4, 8);
        } else {
            put(p, PT_LOAD, 4);
            put(p + 8, data, 8);
            put(p + 16, VADDR, 8);
            put(p + 32, 4096, 8);
            put(p + 40, 4096, 8);
        }
    }
    *ret_size = total;
    return b;
}

/* The peak RSS of this process, in KiB. */
static long max_rss_kib(void)
{
    struct rusage ru;

    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

/*
 * Many PT_NOTE headers (issue 11, class 3; cprdump finding F): each
 * (offset, size) is read once, into one buffer, and all of them together
 * at most 64 MiB, whatever their number; the NT_FILE search stops at the
 * first.  libelf read each into a chunk of its own and kept them all: 512
 * headers of 1 MiB at distinct offsets held 512 MiB, and the same offset
 * 512 times was walked 512 times.
 */
static void test_notes(void **state)
{
    const size_t size = 1u << 20, cap = (size_t)64 << 20;
    CoreOpts o = (CoreOpts){ 0 };
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CoreWork w;
    CoreState st;
    uint8_t *core;
    size_t len, k;
    long rss;
    int fd, distinct;

    (void)state;
    o.work = &w;
    for (distinct = 0; distinct < 2; distinct++) {
        for (k = 64; k <= 512; k *= 8) {
            core = build_notes(k, size, distinct, &len);
            fd = memfd_create("core", MFD_CLOEXEC);
            assert_true(fd >= 0);
            assert_int_equal(write(fd, core, len), (ssize_t)len);
            memset(&w, 0, sizeof(w));
            rss = max_rss_kib();
            assert_int_equal(core_find_state(fd, &o, &diag, &st), -ENOENT);
            rss = max_rss_kib() - rss;
            printf("# notes %s k=%zu: %" PRIu64 " note bytes, %ld KiB more "
                   "peak RSS\n", distinct ? "distinct" : "same", k,
                   w.note_bytes, rss);
            if (distinct) {
                assert_true(w.note_bytes <= cap);
                assert_true(w.note_bytes >= cap - size);
            } else {
                assert_int_equal(w.note_bytes, size);
            }
            /* One 1 MiB buffer, not one per header (old: 64/512 MiB). */
            if (rss > 32 * 1024) {
                fail_msg("%zu PT_NOTE headers: peak RSS grew by %ld KiB", k,
                         rss);
            }
            memset(&w, 0, sizeof(w));
            assert_int_equal(core_find_state_buffer(core, len, &o, &diag,
                                                    &st), -ENOENT);
            assert_true(w.note_bytes <= cap);
            close(fd);
            free(core);
        }
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_named),
        cmocka_unit_test(test_arena_sane),
        cmocka_unit_test(test_legacy9),
        cmocka_unit_test(test_legacy14),
        cmocka_unit_test(test_subsection),
        cmocka_unit_test(test_found),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_notes),
        cmocka_unit_test(test_named_offsets),
    };

    if (argc == 3 && !strcmp(argv[1], "--filter")) {
        cmocka_set_test_filter(argv[2]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
