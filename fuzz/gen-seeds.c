/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gen-seeds.c - write the seed corpora of fuzz/corpus/ (STYLE 8: seeds
 * via the writer).
 *
 *   gen-seeds SRCDIR OUTDIR
 *
 * writes OUTDIR/<target>/seed-* files:
 *   - arenas built with the writer (every record type, with and without
 *     indexes, compressed sections and payloads, cpr-transfer, many
 *     records), a few damaged on purpose (newer minor, unknown section,
 *     truncation), plus copies of the golden vectors (SRCDIR/format/vectors);
 *   - legacy streams built with the legacy encoder (both variants, every
 *     vfio subsection form) and raw byte strings for the reference's
 *     probe inputs (namelen 0, no NUL, negative fd, ...), plus copies of
 *     the real QEMU 10.2 captures in SRCDIR/tests/data/qemu-10.2/;
 *   - zstd frames for fuzz-payload, programs for fuzz-structured, and
 *     small ELF core files (64- and 32-bit, both byte orders) holding an
 *     arena or a legacy stream for fuzz-core.
 * The output is deterministic.  Files found by fuzzing are added to the
 * corpora separately (fuzz/README.md).
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "fuzz.h"

static const char *outdir;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                                     noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void put_file(const char *target, const char *name, const void *buf,
                     size_t size)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", outdir, target);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        die("%s: %s", path, strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
    f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, size, f) != size || fclose(f)) {
        die("%s: cannot write", path);
    }
}

static uint8_t *slurp(const char *path, size_t *ret_size)
{
    uint8_t *buf;
    long n = 0;
    FILE *f = fopen(path, "rb");

    if (!f || fseek(f, 0, SEEK_END)) {
        die("%s: cannot read", path);
    }
    n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET)) {
        die("%s: cannot read", path);
    }
    buf = malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        die("%s: cannot read", path);
    }
    fclose(f);
    *ret_size = (size_t)n;
    return buf;
}

static void check(int ret, const char *what)
{
    if (ret) {
        die("%s: %s", what, strerror(-ret));
    }
}

/* ---- Arenas ------------------------------------------------------------ */

static const char *const arena_targets[] = {
    "fuzz-open", "fuzz-verify", "fuzz-roundtrip",
};

static void put_arena(const char *name, const void *buf, size_t size)
{
    size_t i;

    for (i = 0; i < sizeof(arena_targets) / sizeof(arena_targets[0]); i++) {
        put_file(arena_targets[i], name, buf, size);
    }
}

static CprsWriter *rich_writer(uint32_t mode, uint32_t flags,
                               uint32_t compress)
{
    static const uint8_t build_id[20] = {
        0x3f, 0x8a, 0x51, 0xc2, 0x07, 0x9e, 0xd4, 0x66, 0x21, 0xb0,
        0x5c, 0xe3, 0x48, 0x1d, 0x92, 0x7a, 0x0f, 0xc6, 0x3b, 0x85,
    };
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts, .mode = mode,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE | flags,
                                 .generation = 3,
                                 .created_ns = UINT64_C(1795624920000000000),
                                 .writer_pid = 16897, .build_id = build_id,
                                 .build_id_size = sizeof(build_id),
                                 .producer = "qemu-system-x86_64 10.2.50",
                                 .compress_sections = compress);
    CprsGpaRange ram[2] = {
        { 0x0, 0x80000000, 0 }, { 0x100000000, 0x80000000, 0x80000000 },
    };
    CprsGpaRange bios[2] = {
        { 0xfffc0000, 0x40000, 0 }, { 0xe0000, 0x20000, 0x20000 },
    };
    static uint8_t vga[16384];
    CprsWriter *w;
    CprsFdInfo fi;
    CprsRamBlockInfo bi;
    CprsVfioDeviceInfo vi;
    CprsDevStateInfo di;
    int32_t fdnum = mode == CPRS_MODE_TRANSFER ? -1 : 11;
    size_t i;

    for (i = 0; i < sizeof(vga); i++) {
        vga[i] = (uint8_t)(i % 64 < 48 ? 0 : i * 7);
    }
    check(cprs_writer_new(&o, &w), "writer");
    fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = fdnum,
                   .kind = CPRS_FD_KIND_MEMFD,
                   .flags = CPRS_FD_F_IDENTITY | CPRS_FD_F_SEALS,
                   .seals = 0x7, .dev = 1, .ino = 4100, .st_mode = 0100777,
                   .size = UINT64_C(0x100000000));
    check(cprs_writer_add_fd(w, &fi, NULL), "fd");
    fi = CPRS_OPTS(CprsFdInfo, .name = "pc.bios",
                   .fd = mode == CPRS_MODE_TRANSFER ? -1 : 15,
                   .kind = CPRS_FD_KIND_MEMFD,
                   .flags = CPRS_FD_F_IDENTITY | CPRS_FD_F_SEALS,
                   .seals = 0x1, .dev = 1, .ino = 4101, .st_mode = 0100777,
                   .size = 0x40000);
    check(cprs_writer_add_fd(w, &fi, NULL), "fd");
    fi = CPRS_OPTS(CprsFdInfo, .name = "vfio_group", .id = 42,
                   .fd = mode == CPRS_MODE_TRANSFER ? -1 : 20,
                   .kind = CPRS_FD_KIND_VFIO_GROUP);
    check(cprs_writer_add_fd(w, &fi, NULL), "fd");
    fi = CPRS_OPTS(CprsFdInfo, .name = "iommufd0", .id = 0,
                   .fd = mode == CPRS_MODE_TRANSFER ? -1 : 26,
                   .kind = CPRS_FD_KIND_IOMMUFD,
                   .flags = CPRS_FD_F_IDENTITY, .dev = 5, .ino = 422,
                   .st_mode = 020666);
    check(cprs_writer_add_fd(w, &fi, NULL), "fd");

    bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = "ram0", .fd_index = 0,
                   .flags = CPRS_RAM_F_SHARED,
                   .used_length = UINT64_C(0x100000000),
                   .max_length = UINT64_C(0x100000000), .page_size = 4096,
                   .align = 0x200000);
    check(cprs_writer_add_ramblock(w, &bi, ram, 2, NULL), "ramblock");
    bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = "pc.bios", .fd_index = 1,
                   .flags = CPRS_RAM_F_SHARED | CPRS_RAM_F_READONLY,
                   .used_length = 0x40000, .max_length = 0x40000,
                   .page_size = 4096);
    check(cprs_writer_add_ramblock(w, &bi, bios, 2, NULL), "ramblock");
    bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = "/rom@etc/acpi/tables",
                   .fd_index = CPRS_NO_INDEX,
                   .flags = CPRS_RAM_F_RESIZEABLE, .used_length = 0x20000,
                   .max_length = 0x200000, .page_size = 4096);
    check(cprs_writer_add_ramblock(w, &bi, NULL, 0, NULL), "ramblock");

    vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = "0000:00:05.0", .devid = 1,
                   .ioas_id = 2, .hwpt_id = 3);
    check(cprs_writer_add_vfio(w, &vi, NULL), "vfio");
    vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = "0000:00:06.0", .devid = -7,
                   .ioas_id = 2, .hwpt_id = 4);
    check(cprs_writer_add_vfio(w, &vi, NULL), "vfio");

    di = CPRS_OPTS(CprsDevStateInfo, .name = "vga", .version_id = 2,
                   .flags = CPRS_DEVSTATE_F_ZSTD);
    check(cprs_writer_add_devstate(w, &di, vga, sizeof(vga), NULL), "ds");
    di = CPRS_OPTS(CprsDevStateInfo, .name = "vfio-pci/0000:00:05.0",
                   .version_id = 1);
    check(cprs_writer_add_devstate(w, &di, "\x10\xde\x1e\xb8\x00\x01", 6,
                                   NULL), "ds");
    di = CPRS_OPTS(CprsDevStateInfo, .name = "empty", .instance_id = 3);
    check(cprs_writer_add_devstate(w, &di, NULL, 0, NULL), "ds");
    return w;
}

static void finish(CprsWriter *w, uint8_t **ret_buf, size_t *ret_size)
{
    void *buf;

    check(cprs_writer_finish_buffer(w, &buf, ret_size), "finish");
    cprs_writer_free(w);
    *ret_buf = buf;
}

static void gen_arenas(void)
{
    const uint32_t all = ((1u << CPRS_SECTION__MAX) - 1) & ~1u;
    uint8_t *buf;
    size_t size, i;
    uint64_t e, rec;
    CprsWriter *w;
    CprsFdInfo fi;
    CprsRamBlockInfo bi;
    CprsGpaRange gr;
    char name[64];

    finish(rich_writer(CPRS_MODE_EXEC, 0, 0), &buf, &size);
    put_arena("seed-rich.cprs", buf, size);
    put_file("fuzz-dump", "seed-rich.cprs", buf, size);

    /* Damaged versions: each reaches a different family of checks. */
    put_arena("seed-rich-truncated.cprs", buf, size / 2);
    put_arena("seed-header-only.cprs", buf, CPRS_HEADER_V1_SIZE);
    buf[offsetof(CprsWireHeader, version_minor)] = 1;  /* lenient reader */
    e = fuzz_find_section(buf, size, CPRS_SECTION_FDS);
    rec = fuzz_rd64(buf + e + offsetof(CprsWireSection, offset));
    buf[rec + offsetof(CprsWireFd, kind)] = 200;       /* unknown kind */
    e = fuzz_find_section(buf, size, CPRS_SECTION_VFIO_DEVICES);
    rec = fuzz_rd64(buf + e + offsetof(CprsWireSection, offset));
    buf[rec + offsetof(CprsWireVfioDevice, flags)] = 1;
    fuzz_repair_crcs(buf, size);
    put_arena("seed-minor1-lenient.cprs", buf, size);
    put_file("fuzz-dump", "seed-minor1-lenient.cprs", buf, size);
    free(buf);

    /* An INDEX section retyped as an unknown, skippable one. */
    finish(rich_writer(CPRS_MODE_EXEC, 0, 0), &buf, &size);
    e = fuzz_find_section(buf, size, CPRS_SECTION_INDEX);
    fuzz_wr32(buf + e + offsetof(CprsWireSection, type), 99);
    fuzz_wr32(buf + e + offsetof(CprsWireSection, flags), 0);
    fuzz_repair_crcs(buf, size);
    put_arena("seed-unknown-section.cprs", buf, size);
    free(buf);

    /*
     * The directory moved after the sections (spec 2.3 allows any order):
     * its old place becomes zero padding.
     */
    finish(rich_writer(CPRS_MODE_EXEC, 0, 0), &buf, &size);
    {
        uint32_t n = fuzz_rd32(buf + offsetof(CprsWireHeader, dir_count));
        size_t dlen = (size_t)n * CPRS_SECTION_V1_SIZE;
        uint8_t *moved = calloc(1, size + dlen);

        if (!moved) {
            die("out of memory");
        }
        memcpy(moved, buf, size);
        memcpy(moved + size, buf + CPRS_HEADER_V1_SIZE, dlen);
        memset(moved + CPRS_HEADER_V1_SIZE, 0, dlen);
        fuzz_wr64(moved + offsetof(CprsWireHeader, dir_offset), size);
        fuzz_wr64(moved + offsetof(CprsWireHeader, arena_size), size + dlen);
        fuzz_repair_crcs(moved, size + dlen);
        put_arena("seed-dir-at-end.cprs", moved, size + dlen);
        free(moved);
    }
    free(buf);

    finish(rich_writer(CPRS_MODE_EXEC, CPRS_WRITER_F_NO_INDEX, 0), &buf,
           &size);
    put_arena("seed-rich-noindex.cprs", buf, size);
    free(buf);
    finish(rich_writer(CPRS_MODE_EXEC, 0, all), &buf, &size);
    put_arena("seed-rich-zstd-sections.cprs", buf, size);
    put_file("fuzz-dump", "seed-rich-zstd-sections.cprs", buf, size);
    free(buf);
    finish(rich_writer(CPRS_MODE_TRANSFER, 0, 1u << CPRS_SECTION_STRTAB),
           &buf, &size);
    put_arena("seed-rich-transfer.cprs", buf, size);
    put_file("fuzz-transfer", "seed-rich-transfer.cprs", buf, size);
    free(buf);

    /* Many records: index probing, linear scans, larger sections. */
    check(cprs_writer_new(NULL, &w), "writer");
    for (i = 0; i < 150; i++) {
        snprintf(name, sizeof(name), "dimm%zu", i % 50);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .id = (int32_t)(i / 50),
                       .fd = (int32_t)(100 + i), .kind = CPRS_FD_KIND_SHM);
        check(cprs_writer_add_fd(w, &fi, NULL), "fd");
    }
    for (i = 0; i < 60; i++) {
        snprintf(name, sizeof(name), "0000:00:%02zx.0/bar%zu", i, i % 6);
        bi = CPRS_OPTS(CprsRamBlockInfo, .idstr = name,
                       .fd_index = (uint32_t)i, .used_length = 0x10000,
                       .max_length = 0x10000, .page_size = 4096);
        gr = (CprsGpaRange) { 0x100000000 + i * 0x10000, 0x10000, 0 };
        check(cprs_writer_add_ramblock(w, &bi, &gr, 1, NULL), "ramblock");
    }
    finish(w, &buf, &size);
    put_arena("seed-many-records.cprs", buf, size);
    free(buf);

    /* cpr-transfer arenas for fuzz-transfer: fds sent after the header. */
    check(cprs_writer_new(&(CprsWriterOpts) { .sz = sizeof(CprsWriterOpts),
                                              .mode = CPRS_MODE_TRANSFER,
                                              .flags =
                                              CPRS_WRITER_F_REPRODUCIBLE },
                          &w), "writer");
    for (i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "memfd%zu", i);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .fd = -1,
                       .kind = CPRS_FD_KIND_MEMFD);
        check(cprs_writer_add_fd(w, &fi, NULL), "fd");
    }
    finish(w, &buf, &size);
    put_file("fuzz-transfer", "seed-transfer-3-fds.cprs", buf, size);
    put_arena("seed-transfer-3-fds.cprs", buf, size);
    free(buf);

    /* The smallest valid arena. */
    check(cprs_writer_new(NULL, &w), "writer");
    finish(w, &buf, &size);
    put_arena("seed-empty.cprs", buf, size);
    free(buf);
}

/* ---- The worst inputs of issue 11 -------------------------------------- */

static void put_payload(const char *name, uint8_t mode, uint32_t raw,
                        const void *frame, size_t n);

typedef struct RawSec {
    uint32_t type;
    uint32_t flags;
    uint32_t record_count;
    const uint8_t *data;
    size_t size;
    uint64_t raw_size;
} RawSec;

/* An arena laid out by hand around @n sections, CRCs computed. */
static uint8_t *raw_arena(const RawSec *secs, uint32_t n, size_t *ret_size)
{
    uint64_t off = CPRS_HEADER_V1_SIZE + (uint64_t)n * CPRS_SECTION_V1_SIZE;
    uint64_t offs[8];
    uint8_t *buf, *e;
    uint32_t i;

    for (i = 0; i < n; i++) {
        off = (off + 7) & ~(uint64_t)7;
        offs[i] = off;
        off += secs[i].size;
    }
    off = (off + 7) & ~(uint64_t)7;
    buf = calloc(1, off);
    if (!buf) {
        die("out of memory");
    }
    memcpy(buf, CPRS_MAGIC, CPRS_MAGIC_SIZE);
    buf[offsetof(CprsWireHeader, version_major)] = 1;
    fuzz_wr32(buf + offsetof(CprsWireHeader, header_size),
              CPRS_HEADER_V1_SIZE);
    fuzz_wr64(buf + offsetof(CprsWireHeader, incompat_features),
              CPRS_INCOMPAT_ZSTD);
    fuzz_wr64(buf + offsetof(CprsWireHeader, arena_size), off);
    fuzz_wr64(buf + offsetof(CprsWireHeader, dir_offset),
              CPRS_HEADER_V1_SIZE);
    fuzz_wr32(buf + offsetof(CprsWireHeader, dir_count), n);
    fuzz_wr32(buf + offsetof(CprsWireHeader, dir_entry_size),
              CPRS_SECTION_V1_SIZE);
    fuzz_wr32(buf + offsetof(CprsWireHeader, mode), CPRS_MODE_EXEC);
    for (i = 0; i < n; i++) {
        e = buf + CPRS_HEADER_V1_SIZE + (uint64_t)i * CPRS_SECTION_V1_SIZE;
        fuzz_wr32(e + offsetof(CprsWireSection, type), secs[i].type);
        fuzz_wr32(e + offsetof(CprsWireSection, flags), secs[i].flags);
        fuzz_wr64(e + offsetof(CprsWireSection, offset), offs[i]);
        fuzz_wr64(e + offsetof(CprsWireSection, stored_size),
                  secs[i].size);
        fuzz_wr64(e + offsetof(CprsWireSection, raw_size),
                  secs[i].raw_size ? secs[i].raw_size : secs[i].size);
        fuzz_wr32(e + offsetof(CprsWireSection, record_count),
                  secs[i].record_count);
        fuzz_wr32(e + offsetof(CprsWireSection, record_size),
                  secs[i].type == CPRS_SECTION_FDS ? CPRS_FD_V1_SIZE : 0);
        memcpy(buf + offs[i], secs[i].data, secs[i].size);
    }
    fuzz_repair_crcs(buf, off);
    *ret_size = off;
    return buf;
}

/*
 * STRTAB and FDS as zstd frames of zeros (issue 11 class 4): @strtab and
 * @fds raw bytes; the FDS frame holds @extra bytes more and declares @fcs.
 */
static void put_bomb(const char *name, uint64_t strtab, uint64_t fds,
                     uint64_t extra, uint64_t fcs)
{
    RawSec s[2] = {
        { CPRS_SECTION_STRTAB, CPRS_SECTION_F_ZSTD, 0, NULL, 0, strtab },
        { CPRS_SECTION_FDS, CPRS_SECTION_F_ZSTD,
          (uint32_t)(fds / CPRS_FD_V1_SIZE), NULL, 0, fds },
    };
    uint8_t *f0, *f1, *buf;
    size_t size;

    f0 = fuzz_rle_frame(strtab, strtab, &s[0].size);
    f1 = fuzz_rle_frame(fds + extra, fcs, &s[1].size);
    s[0].data = f0;
    s[1].data = f1;
    buf = raw_arena(s, 2, &size);
    put_arena(name, buf, size);
    free(buf);
    free(f0);
    free(f1);
}

/*
 * Worst cases for the reader (issue 11), seeds for the targets that run
 * it with the fuzz limits (fuzz.h): 65536 records, a 16 MiB budget.
 */
static void gen_worst(void)
{
    const uint64_t fds = (uint64_t)65536 * CPRS_FD_V1_SIZE;
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsFdInfo fi;
    CprsWriter *w;
    uint64_t e, at;
    uint8_t *buf;
    size_t size;
    uint32_t i;

    /* Class 4: 1 GiB of zeros over the budget, 8 MiB within it. */
    put_bomb("seed-worst-zstd-bomb-1g.cprs", UINT64_C(1) << 30, fds, 0, fds);
    put_bomb("seed-worst-zstd-bomb-8m.cprs", UINT64_C(8) << 20, fds, 0, fds);
    /* A frame that lies about its size: refused before any allocation. */
    put_bomb("seed-worst-zstd-fcs-lie.cprs", 4096, fds, 0,
             UINT64_C(1) << 30);
    /* Class 2: a frame that fails late, 65536 records accessing it. */
    put_bomb("seed-worst-zstd-late-failure.cprs", 4096, fds, 8, fds);
    /* A payload of zeros at the fuzz cap, and 1 GiB of them. */
    {
        uint8_t *f = fuzz_rle_frame(FUZZ_MAX_PAYLOAD, FUZZ_MAX_PAYLOAD,
                                    &size);

        put_payload("seed-worst-zeros-1m", 0, FUZZ_MAX_PAYLOAD, f, size);
        free(f);
        f = fuzz_rle_frame(UINT64_C(1) << 30, UINT64_C(1) << 30, &size);
        put_payload("seed-worst-zeros-1g", 1, 0, f, size);
        free(f);
    }

    /* Class 2: one flipped byte in 3000 fd records (under -max_len). */
    check(cprs_writer_new(&o, &w), "writer");
    for (i = 0; i < 3000; i++) {
        fi = CPRS_OPTS(CprsFdInfo, .name = "vfio-vector", .id = (int32_t)i,
                       .fd = (int32_t)(i + 3),
                       .kind = CPRS_FD_KIND_EVENTFD);
        check(cprs_writer_add_fd(w, &fi, NULL), "fd");
    }
    finish(w, &buf, &size);
    e = fuzz_find_section(buf, size, CPRS_SECTION_FDS);
    at = fuzz_rd64(buf + e + offsetof(CprsWireSection, offset));
    buf[at + 1500 * CPRS_FD_V1_SIZE + 20] ^= 1;
    put_arena("seed-worst-flipped-fds.cprs", buf, size);
    free(buf);
}

/* ---- Legacy streams ---------------------------------------------------- */

static const char *const legacy_targets[] = {
    "fuzz-legacy", "fuzz-legacy-roundtrip",
};

static void put_legacy(const char *name, const void *buf, size_t size)
{
    size_t i;

    for (i = 0; i < sizeof(legacy_targets) / sizeof(legacy_targets[0]);
         i++) {
        put_file(legacy_targets[i], name, buf, size);
    }
}

typedef struct Bytes {
    uint8_t buf[4096];
    size_t len;
} Bytes;

static void b_u8(Bytes *b, uint8_t v)
{
    if (b->len < sizeof(b->buf)) {
        b->buf[b->len++] = v;
    }
}

static void b_be32(Bytes *b, uint32_t v)
{
    b_u8(b, (uint8_t)(v >> 24));
    b_u8(b, (uint8_t)(v >> 16));
    b_u8(b, (uint8_t)(v >> 8));
    b_u8(b, (uint8_t)v);
}

static void b_mem(Bytes *b, const void *p, size_t n)
{
    const uint8_t *s = p;
    size_t i;

    for (i = 0; i < n; i++) {
        b_u8(b, s[i]);
    }
}

/* One cpr-exec fd record: marker, namelen (with NUL), name, id, fd. */
static void b_fd(Bytes *b, uint8_t marker, const char *name, uint32_t namelen,
                 int32_t id, int32_t fd)
{
    b_u8(b, marker);
    b_be32(b, namelen);
    b_mem(b, name, strlen(name) + 1);
    b_be32(b, (uint32_t)id);
    b_be32(b, (uint32_t)fd);
}

static void b_vfio_header(Bytes *b, const char *name, uint32_t version)
{
    b_u8(b, 0x05);
    b_u8(b, (uint8_t)strlen(name));
    b_mem(b, name, strlen(name));
    b_be32(b, version);
}

static void b_start(Bytes *b)
{
    b->len = 0;
    b_mem(b, "QCPR", 4);
    b_be32(b, 1);
}

/* The probe inputs of shared/reference §7, and their neighbours. */
static void gen_probes(void)
{
    Bytes b;

    b_start(&b);
    b_fd(&b, 1, "", 0, 0, 5);                       /* namelen 0 */
    put_legacy("probe-namelen-0", b.buf, b.len);
    b_start(&b);
    b_u8(&b, 1);
    b_be32(&b, 0xffffffff);                         /* namelen huge */
    put_legacy("probe-namelen-huge", b.buf, b.len);
    b_start(&b);
    b_u8(&b, 1);
    b_be32(&b, 4);
    b_mem(&b, "ram0", 4);                           /* no NUL */
    b_be32(&b, 0);
    b_be32(&b, 11);
    b_u8(&b, 0);
    b_vfio_header(&b, "CprState/vfio devices", 1);
    b_u8(&b, 0);
    put_legacy("probe-name-without-nul", b.buf, b.len);
    b_start(&b);
    b_u8(&b, 1);
    b_be32(&b, 6);
    b_mem(&b, "ra\0m0\0", 6);                       /* NUL inside */
    b_be32(&b, 0);
    b_be32(&b, 11);
    b_u8(&b, 0);
    put_legacy("probe-nul-inside", b.buf, b.len);
    b_start(&b);
    b_fd(&b, 1, "ram0", 5, 0, -1);                  /* negative fd */
    b_u8(&b, 0);
    put_legacy("probe-negative-fd", b.buf, b.len);
    b_start(&b);
    b_fd(&b, 2, "ram0", 5, 0, 11);                  /* marker 0x02 */
    b_u8(&b, 0);
    b_vfio_header(&b, "CprState/vfio devices", 1);
    b_u8(&b, 0);
    put_legacy("probe-marker-2", b.buf, b.len);
    b_mem(&b, "garbage", 7);                        /* trailing bytes */
    put_legacy("probe-trailing-garbage", b.buf, b.len);
    b_start(&b);
    b_fd(&b, 1, "ram0", 5, 0, 11);
    b_u8(&b, 0);                                    /* no subsection */
    put_legacy("probe-no-subsection", b.buf, b.len);
    b_vfio_header(&b, "CprState/vfio devices", 1); /* stub form */
    put_legacy("probe-stub-form", b.buf, b.len);
    b_start(&b);
    b_u8(&b, 0);
    b_vfio_header(&b, "CprState/foo", 1);           /* unknown sub */
    b_u8(&b, 0);
    put_legacy("probe-unknown-subsection", b.buf, b.len);
    b_start(&b);
    b_u8(&b, 0);
    b_vfio_header(&b, "Other", 1);                  /* QEMU stops */
    put_legacy("probe-foreign-subsection", b.buf, b.len);
    b_start(&b);
    b_u8(&b, 0);
    b_vfio_header(&b, "CprState/vfio devices", 2);  /* version 2 */
    b_u8(&b, 0);
    put_legacy("probe-subsection-v2", b.buf, b.len);
    b_start(&b);
    b_u8(&b, 0);
    b_vfio_header(&b, "CprState/vfio devices", 0x101);
    b_u8(&b, 0);
    put_legacy("probe-subsection-v257", b.buf, b.len);
    b_start(&b);
    b_u8(&b, 0);
    b_vfio_header(&b, "CprState/vfio devices", 1);
    b_u8(&b, 1);
    b_be32(&b, 13);
    b_mem(&b, "0000:00:05.0", 13);
    b_be32(&b, 1);
    b_be32(&b, 2);
    b_be32(&b, 3);                                  /* no terminator */
    put_legacy("probe-vfio-unterminated", b.buf, b.len);
    b_u8(&b, 0);
    b_vfio_header(&b, "CprState/vfio devices", 1);  /* repeated */
    b_u8(&b, 0);
    put_legacy("probe-vfio-repeated", b.buf, b.len);
    b_start(&b);
    b_fd(&b, 1, "ram0", 5, 0, 11);
    b_fd(&b, 1, "ram0", 5, 0, 12);                  /* duplicate key */
    b_u8(&b, 0);
    b_vfio_header(&b, "CprState/vfio devices", 1);
    b_u8(&b, 0);
    put_legacy("probe-duplicate", b.buf, b.len);
    b.len = 0;
    b_mem(&b, "QCPR", 4);
    b_be32(&b, 2);                                  /* stream version 2 */
    put_legacy("probe-version-2", b.buf, b.len);
    b.len = 0;
    b_mem(&b, "QCP", 3);                            /* truncated magic */
    put_legacy("probe-truncated-magic", b.buf, b.len);
    put_legacy("probe-empty", "", 0);
    b_start(&b);
    b_u8(&b, 1);
    b_be32(&b, 5);
    b_mem(&b, "ram0", 5);
    b_be32(&b, 0);
    b_u8(&b, 0x20);                                 /* cpr-transfer */
    b_u8(&b, 1);
    b_be32(&b, 5);
    b_mem(&b, "ram1", 5);
    b_be32(&b, 0);
    b_u8(&b, 0x21);                                 /* bad service byte */
    put_legacy("probe-transfer-bad-service", b.buf, b.len);
}

static void put_encoded(const char *name, CprsLegacy *lg)
{
    void *buf;
    size_t size;

    check(cprs_legacy_encode(lg, NULL, &buf, &size), "encode");
    put_legacy(name, buf, size);
    put_file("fuzz-dump", name, buf, size);
    free(buf);
}

static void put_encoded_to(const char *target, const char *name,
                           CprsLegacy *lg)
{
    void *buf;
    size_t size;

    check(cprs_legacy_encode(lg, NULL, &buf, &size), "encode");
    put_file(target, name, buf, size);
    free(buf);
}

static void gen_legacy(void)
{
    static const uint32_t forms[] = {
        CPRS_LEGACY_VFIO_FULL, CPRS_LEGACY_VFIO_STUB, CPRS_LEGACY_VFIO_NONE,
    };
    static const char *const form_names[] = { "full", "stub", "none" };
    CprsLegacyOpts o;
    CprsLegacy *lg;
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    char name[400];
    uint32_t m, f, i;

    for (m = CPRS_MODE_EXEC; m <= CPRS_MODE_TRANSFER; m++) {
        for (f = 0; f < 3; f++) {
            o = CPRS_OPTS(CprsLegacyOpts, .mode = m, .vfio_form = forms[f]);
            check(cprs_legacy_new(&o, &lg), "legacy_new");
            fi = CPRS_OPTS(CprsFdInfo, .name = "vfio_device", .id = 0,
                           .fd = m == CPRS_MODE_EXEC ? 27 : -1);
            check(cprs_legacy_add_fd(lg, &fi, NULL), "add_fd");
            fi = CPRS_OPTS(CprsFdInfo, .name = "vfio_group", .id = 42,
                           .fd = m == CPRS_MODE_EXEC ? 28 : -1);
            check(cprs_legacy_add_fd(lg, &fi, NULL), "add_fd");
            fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .id = -1,
                           .fd = m == CPRS_MODE_EXEC ? 11 : -1);
            check(cprs_legacy_add_fd(lg, &fi, NULL), "add_fd");
            if (forms[f] == CPRS_LEGACY_VFIO_FULL) {
                vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = "0000:00:05.0",
                               .devid = 1, .ioas_id = 2, .hwpt_id = 3);
                check(cprs_legacy_add_vfio(lg, &vi, NULL), "add_vfio");
                vi = CPRS_OPTS(CprsVfioDeviceInfo, .name = "0000:00:06.0",
                               .devid = -1, .ioas_id = 0xffffffff,
                               .hwpt_id = 0);
                check(cprs_legacy_add_vfio(lg, &vi, NULL), "add_vfio");
            }
            snprintf(name, sizeof(name), "seed-%s-vfio-%s",
                     m == CPRS_MODE_EXEC ? "exec" : "transfer",
                     form_names[f]);
            put_encoded(name, lg);
            if (m == CPRS_MODE_TRANSFER) {
                put_encoded_to("fuzz-transfer", name, lg);
            }
            cprs_legacy_free(lg);
        }
    }

    /* Many records and QEMU's longest id (namelen 301). */
    o = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_EXEC);
    check(cprs_legacy_new(&o, &lg), "legacy_new");
    for (i = 0; i < 64; i++) {
        snprintf(name, sizeof(name), "/rom@etc/obj%u", i);
        fi = CPRS_OPTS(CprsFdInfo, .name = name, .id = (int32_t)(i % 3),
                       .fd = (int32_t)(10 + i));
        check(cprs_legacy_add_fd(lg, &fi, NULL), "add_fd");
    }
    memset(name, 'x', 300);
    name[300] = '\0';
    fi = CPRS_OPTS(CprsFdInfo, .name = name, .fd = 99);
    check(cprs_legacy_add_fd(lg, &fi, NULL), "add_fd");
    put_encoded("seed-exec-many", lg);
    cprs_legacy_free(lg);

    o = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_TRANSFER);
    check(cprs_legacy_new(&o, &lg), "legacy_new");
    put_encoded("seed-transfer-empty", lg);
    cprs_legacy_free(lg);
}

/* Copies of the real QEMU 10.2 captures, one per distinct content. */
static void gen_captures(const char *srcdir)
{
    static const char *const files[] = {
        "capture.bin", "capture-2.bin", "live.bin",
    };
    char dir[4096], path[8192], name[512];
    struct dirent **ents;
    uint8_t *seen[64], *buf;
    size_t seen_size[64], n_seen = 0, size, k;
    int n, i;
    size_t j;

    snprintf(dir, sizeof(dir), "%s/tests/data/qemu-10.2", srcdir);
    n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "gen-seeds: no captures in %s, skipped\n", dir);
        return;
    }
    for (i = 0; i < n; i++) {
        for (j = 0; j < sizeof(files) / sizeof(files[0]); j++) {
            snprintf(path, sizeof(path), "%s/%s/%s", dir, ents[i]->d_name,
                     files[j]);
            if (ents[i]->d_name[0] == '.' || access(path, R_OK)) {
                continue;
            }
            buf = slurp(path, &size);
            for (k = 0; k < n_seen; k++) {
                if (seen_size[k] == size && !memcmp(seen[k], buf, size)) {
                    break;
                }
            }
            if (k < n_seen || n_seen == 64) {
                free(buf);
                continue;
            }
            seen[n_seen] = buf;
            seen_size[n_seen++] = size;
            snprintf(name, sizeof(name), "qemu-10.2-%s-%s", ents[i]->d_name,
                     files[j]);
            put_legacy(name, buf, size);
            put_file("fuzz-dump", name, buf, size);
            if (strstr(name, "transfer")) {
                put_file("fuzz-transfer", name, buf, size);
            }
        }
        free(ents[i]);
    }
    free(ents);
    for (k = 0; k < n_seen; k++) {
        free(seen[k]);
    }
}

static void gen_golden(const char *srcdir)
{
    static const char *const names[] = {
        "empty", "qemu-q35-memfd", "qemu-numa2-vga-vfio",
        "qemu-transfer-zstd",
    };
    char path[4096], name[256];
    uint8_t *buf;
    size_t size, i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/format/vectors/%s.cprs", srcdir,
                 names[i]);
        if (access(path, R_OK)) {
            continue;
        }
        buf = slurp(path, &size);
        snprintf(name, sizeof(name), "golden-%s.cprs", names[i]);
        put_arena(name, buf, size);
        put_file("fuzz-dump", name, buf, size);
        free(buf);
    }
}

/* ---- zstd frames for fuzz-payload -------------------------------------- */

static void put_payload(const char *name, uint8_t mode, uint32_t raw,
                        const void *frame, size_t n)
{
    uint8_t *buf = malloc(n + 5);

    if (!buf) {
        die("out of memory");
    }
    buf[0] = mode;
    fuzz_wr32(buf + 1, raw);
    memcpy(buf + 5, frame, n);
    put_file("fuzz-payload", name, buf, n + 5);
    free(buf);
}

static size_t compress(void *dst, size_t cap, const void *src, size_t n,
                       int level, bool checksum)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    size_t ret;

    if (!c) {
        die("out of memory");
    }
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum);
    ret = ZSTD_compress2(c, dst, cap, src, n);
    ZSTD_freeCCtx(c);
    if (ZSTD_isError(ret)) {
        die("zstd: %s", ZSTD_getErrorName(ret));
    }
    return ret;
}

static void gen_payloads(void)
{
    static uint8_t raw[1 << 19], frame[1 << 16];
    static const char text[] =
        "CprState/vfio devices CprState/vfio devices QCPR ram0 pc.bios "
        "/rom@etc/acpi/tables /rom@etc/table-loader /rom@etc/acpi/rsdp ";
    char name[64];
    size_t n, m, i;
    uint8_t mode;

    for (i = 0; i < 4096; i++) {
        raw[i] = (uint8_t)(i % 64 < 48 ? 0 : i * 13);
    }
    for (mode = 0; mode < 3; mode++) {
        n = compress(frame, sizeof(frame), raw, 4096, 3, false);
        snprintf(name, sizeof(name), "seed-m%u-devstate", mode);
        put_payload(name, mode, 4096, frame, n);
        n = compress(frame, sizeof(frame), raw, 4096, 19, true);
        snprintf(name, sizeof(name), "seed-m%u-checksum", mode);
        put_payload(name, mode, 4096, frame, n);
        n = compress(frame, sizeof(frame), text, sizeof(text), 1, false);
        snprintf(name, sizeof(name), "seed-m%u-text", mode);
        put_payload(name, mode, sizeof(text), frame, n);
        n = compress(frame, sizeof(frame), "", 0, 3, false);
        snprintf(name, sizeof(name), "seed-m%u-empty", mode);
        put_payload(name, mode, 0, frame, n);
    }
    /* Raw data, incompressible: zstd stores raw blocks. */
    for (i = 0; i < 200; i++) {
        raw[i] = (uint8_t)(i * 151 + 7);
    }
    n = compress(frame, sizeof(frame), raw, 200, 3, false);
    put_payload("seed-m0-raw-block", 0, 200, frame, n);
    /* Two frames back to back: spec 5.3 rule 1. */
    m = compress(frame + n, sizeof(frame) - n, raw, 100, 3, false);
    put_payload("seed-m1-two-frames", 1, 200, frame, n + m);
    /* Truncated frame. */
    put_payload("seed-m0-truncated", 0, 200, frame, n - 3);
    /* A skippable frame (magic 0x184D2A50, size, data). */
    fuzz_wr32(frame, 0x184D2A50);
    fuzz_wr32(frame + 4, 8);
    memset(frame + 8, 0xab, 8);
    put_payload("seed-m1-skippable", 1, 0, frame, 16);
    /* Large raw sizes from a tiny frame: up to and over the fuzz cap. */
    memset(raw, 0, sizeof(raw));
    n = compress(frame, sizeof(frame), raw, sizeof(raw), 3, false);
    put_payload("seed-m0-zeros-512k", 0, sizeof(raw), frame, n);
    put_payload("seed-m2-zeros-512k", 2, sizeof(raw), frame, n);
    /* Wrong declared size. */
    n = compress(frame, sizeof(frame), text, sizeof(text), 3, false);
    put_payload("seed-m1-wrong-size", 1, sizeof(text) + 1, frame, n);
    /* No content size in the frame (streaming, size unknown). */
    {
        ZSTD_CStream *cs = ZSTD_createCStream();
        ZSTD_inBuffer in = { text, sizeof(text), 0 };
        ZSTD_outBuffer out = { frame, sizeof(frame), 0 };

        if (!cs) {
            die("out of memory");
        }
        ZSTD_initCStream(cs, 3);
        ZSTD_compressStream(cs, &out, &in);
        ZSTD_endStream(cs, &out);
        ZSTD_freeCStream(cs);
        put_payload("seed-m1-no-content-size", 1, sizeof(text), frame,
                    out.pos);
    }
}

/* ---- Programs for fuzz-structured --------------------------------------- */

typedef struct Prog {
    uint8_t buf[8192];
    size_t len;
} Prog;

static void p_u8(Prog *p, uint8_t v)
{
    if (p->len < sizeof(p->buf)) {
        p->buf[p->len++] = v;
    }
}

static void p_le(Prog *p, uint64_t v, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        p_u8(p, (uint8_t)(v >> (8 * i)));
    }
}

/* A name as take_name() reads it: length selector, then its bytes. */
static void p_name(Prog *p, const char *s)
{
    size_t n = strlen(s), i;

    p_u8(p, (uint8_t)(n - 1));      /* n <= 32 */
    for (i = 0; i < n; i++) {
        p_u8(p, (uint8_t)(s[i] - 0x20));
    }
}

static void p_fd(Prog *p, const char *name, int32_t id, int32_t fd,
                 uint8_t kind, uint8_t flags)
{
    p_u8(p, 0);
    p_name(p, name);
    p_le(p, (uint32_t)id, 4);
    p_le(p, (uint32_t)fd, 4);
    p_u8(p, kind);
    p_u8(p, flags);
    if (flags & CPRS_FD_F_SEALS) {
        p_u8(p, 0x7);
    }
    if (flags & CPRS_FD_F_IDENTITY) {
        p_le(p, 1, 2);
        p_le(p, 4100, 4);
        p_u8(p, 1);
        p_le(p, 0x8000, 2);
    }
}

static void p_block(Prog *p, const char *name, uint8_t fd_sel,
                    uint16_t max16, uint8_t shift, uint8_t nranges)
{
    uint8_t i;

    p_u8(p, 1);
    p_name(p, name);
    p_u8(p, fd_sel);
    p_u8(p, CPRS_RAM_F_SHARED);
    p_le(p, max16, 2);
    p_u8(p, shift);
    p_le(p, 0, 4);                  /* used = max */
    p_le(p, 0, 2);
    p_u8(p, 12);                    /* 4 KiB pages */
    p_u8(p, 21 << 1);               /* 2 MiB alignment */
    p_u8(p, nranges);
    for (i = 0; i < nranges; i++) {
        p_le(p, 0x1000u * (i + 1) - 1, 4);
        p_le(p, 0x1000u * i, 4);
        p_le(p, UINT64_C(0x100000000) * i, 8);
    }
}

static void p_vfio(Prog *p, const char *name, int32_t devid)
{
    p_u8(p, 2);
    p_name(p, name);
    p_le(p, (uint32_t)devid, 4);
    p_le(p, 2, 4);
    p_le(p, 3, 4);
}

static void p_payload(Prog *p, const char *name, uint8_t kind, uint16_t len)
{
    uint16_t i;

    p_u8(p, 3);
    p_name(p, name);
    p_u8(p, 0);
    p_u8(p, 1);
    p_u8(p, kind);
    p_le(p, len, 2);
    if (!(kind & 2)) {
        for (i = 0; i < len; i++) {
            p_u8(p, (uint8_t)(i * 31));
        }
    }
}

static void gen_programs(void)
{
    static const uint8_t configs[] = { 0x00, 0x01, 0x02, 0x04, 0x0c, 0x19 };
    static const uint8_t compress[] = { 0x00, 0xff, 0x01, 0x20, 0x3f, 0x02 };
    uint64_t x = 0x9e3779b97f4a7c15u;
    char name[64];
    Prog p;
    size_t c, i, k;

    for (c = 0; c < sizeof(configs); c++) {
        p.len = 0;
        p_u8(&p, configs[c]);
        p_u8(&p, compress[c]);
        p_u8(&p, (uint8_t)c);
        p_fd(&p, "ram0", 0, 11, CPRS_FD_KIND_MEMFD, 3);
        p_fd(&p, "pc.bios", 0, 15, CPRS_FD_KIND_MEMFD, 3);
        p_fd(&p, "vfio_group", 42, 20, CPRS_FD_KIND_VFIO_GROUP, 0);
        p_fd(&p, "ram0", 0, 12, CPRS_FD_KIND_MEMFD, 0);     /* -EEXIST */
        p_block(&p, "ram0", 0, 0x8000, 12, 2);
        p_block(&p, "pc.bios", 1, 0x40, 12, 1);
        p_block(&p, "bad", 9, 0x10, 12, 1);                 /* bad fd */
        p_vfio(&p, "0000:00:05.0", 1);
        p_vfio(&p, "0000:00:06.0", -7);
        p_payload(&p, "vga", 3, 4096);                      /* zstd */
        p_payload(&p, "serial", 0, 40);
        p_payload(&p, "empty", 0, 0);
        p_u8(&p, 4);                                        /* end */
        p_u8(&p, (uint8_t)c);                               /* mutations */
        for (i = 0; i < c; i++) {
            p_u8(&p, (uint8_t)(i + c));
            p_le(&p, 0x1234567u * (i + 1), 4);
            p_le(&p, i, 8);
        }
        snprintf(name, sizeof(name), "seed-program-%zu", c);
        put_file("fuzz-structured", name, p.buf, p.len);
    }
    /* Random programs: any byte string is a program. */
    for (c = 0; c < 16; c++) {
        p.len = 64 + c * 97;
        for (k = 0; k < p.len; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p.buf[k] = (uint8_t)x;
        }
        snprintf(name, sizeof(name), "seed-random-%02zu", c);
        put_file("fuzz-structured", name, p.buf, p.len);
    }
}

/* ---- ELF core files for fuzz-core ---------------------------------------- */

typedef struct Core {
    uint8_t buf[65536];
    size_t len;
    bool is64;
    bool big;
} Core;

static void c_put(Core *c, size_t off, uint64_t v, unsigned n)
{
    unsigned i;

    for (i = 0; i < n && off + i < sizeof(c->buf); i++) {
        c->buf[off + i] = (uint8_t)(v >> (8 * (c->big ? n - 1 - i : i)));
    }
    if (off + n > c->len) {
        c->len = off + n;
    }
}

static void c_mem(Core *c, size_t off, const void *p, size_t n)
{
    if (off + n <= sizeof(c->buf)) {
        memcpy(c->buf + off, p, n);
        if (off + n > c->len) {
            c->len = off + n;
        }
    }
}

/*
 * A core with one PT_NOTE (an NT_FILE note naming @path at @vaddr, unless
 * @path is NULL) and one PT_LOAD at @vaddr holding @state (unless
 * @dump_state is false: the mapping's pages left out, as coredump_filter
 * does), plus @extra bytes in a second PT_LOAD (scan hits).
 */
static void make_core(Core *c, bool is64, bool big, const char *path,
                      const void *state, size_t state_size, bool dump_state,
                      const void *extra, size_t extra_size)
{
    const uint64_t vaddr = 0x7f1234560000u, vextra = 0x7f1234600000u;
    unsigned w = is64 ? 8 : 4, ehsize = is64 ? 64 : 52;
    unsigned phsize = is64 ? 56 : 32, nph = extra ? 3 : 2, k;
    size_t note = ehsize + nph * phsize, desc, descsz = 0, off, load;
    size_t pathlen = path ? strlen(path) + 1 : 0;
    uint64_t ph[3][6];

    memset(c, 0, sizeof(*c));
    c->is64 = is64;
    c->big = big;
    /* ELF header. */
    c_mem(c, 0, "\x7f" "ELF", 4);
    c->buf[4] = is64 ? 2 : 1;           /* EI_CLASS */
    c->buf[5] = big ? 2 : 1;            /* EI_DATA */
    c->buf[6] = 1;                      /* EI_VERSION */
    c_put(c, 16, 4, 2);                 /* e_type ET_CORE */
    c_put(c, 18, is64 ? 62 : 3, 2);     /* e_machine x86-64 / i386 */
    c_put(c, 20, 1, 4);                 /* e_version */
    c_put(c, is64 ? 32 : 28, ehsize, w);    /* e_phoff */
    c_put(c, is64 ? 52 : 40, ehsize, 2);    /* e_ehsize */
    c_put(c, is64 ? 54 : 42, phsize, 2);    /* e_phentsize */
    c_put(c, is64 ? 56 : 44, nph, 2);       /* e_phnum */
    c_put(c, is64 ? 58 : 46, is64 ? 64 : 40, 2);   /* e_shentsize */

    /* The NT_FILE note: namesz, descsz, type, "CORE", desc. */
    desc = note + 12 + 8;
    if (path) {
        c_put(c, desc, 1, w);                           /* count */
        c_put(c, desc + w, 4096, w);                    /* page size */
        c_put(c, desc + 2 * w, vaddr, w);               /* start */
        c_put(c, desc + 3 * w, vaddr + 0x10000, w);     /* end */
        c_put(c, desc + 4 * w, 0, w);                   /* pgoff */
        c_mem(c, desc + 5 * w, path, pathlen);
        descsz = 5 * w + pathlen;
    }
    c_put(c, note, 5, 4);
    c_put(c, note + 4, descsz, 4);
    c_put(c, note + 8, 0x46494c45, 4);                  /* NT_FILE */
    c_mem(c, note + 12, "CORE\0\0\0", 8);
    off = (desc + descsz + 7) & ~(size_t)7;
    load = (off + 4095) & ~(size_t)4095;
    if (load < 4096) {
        load = 4096;
    }

    /* Program headers: type, offset, vaddr, filesz, memsz, flags. */
    ph[0][0] = 4;
    ph[0][1] = note;
    ph[0][2] = 0;
    ph[0][3] = desc + ((descsz + 3) & ~(size_t)3) - note;   /* padded */
    ph[0][4] = 0;
    ph[0][5] = 4;
    ph[1][0] = 1;
    ph[1][1] = load;
    ph[1][2] = vaddr;
    ph[1][3] = dump_state ? state_size : 0;
    ph[1][4] = 0x10000;
    ph[1][5] = 4;
    if (dump_state) {
        c_mem(c, load, state, state_size);
    }
    ph[2][0] = 1;
    ph[2][1] = load + (dump_state ? ((state_size + 4095) & ~(size_t)4095) :
                       0);
    ph[2][2] = vextra;
    ph[2][3] = extra_size;
    ph[2][4] = 0x10000;
    ph[2][5] = 6;
    if (extra) {
        c_mem(c, (size_t)ph[2][1], extra, extra_size);
    }
    if (c->len < ph[0][1] + ph[0][3]) {
        c->len = ph[0][1] + ph[0][3];   /* the note's padding */
    }
    for (k = 0; k < nph; k++) {
        size_t p = ehsize + k * phsize;

        c_put(c, p, ph[k][0], 4);
        if (is64) {
            c_put(c, p + 4, ph[k][5], 4);
            c_put(c, p + 8, ph[k][1], 8);
            c_put(c, p + 16, ph[k][2], 8);
            c_put(c, p + 32, ph[k][3], 8);
            c_put(c, p + 40, ph[k][4], 8);
            c_put(c, p + 48, ph[k][0] == 4 ? 4 : 4096, 8);
        } else {
            c_put(c, p + 4, ph[k][1], 4);
            c_put(c, p + 8, ph[k][2], 4);
            c_put(c, p + 16, ph[k][3], 4);
            c_put(c, p + 20, ph[k][4], 4);
            c_put(c, p + 24, ph[k][5], 4);
            c_put(c, p + 28, ph[k][0] == 4 ? 4 : 4096, 4);
        }
    }
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* @unit (@len bytes) repeated over @n bytes at @d, zeros after it. */
static void fill_repeat(uint8_t *d, size_t n, const void *unit, size_t len)
{
    size_t at;

    memset(d, 0, n);
    for (at = 0; at + len <= n - 512; at += len) {
        memcpy(d + at, unit, len);
    }
}

/*
 * Worst cases of the core scan's fast paths (issue 11, class 3;
 * tests/test-bounded-core.c): 48 KiB of arena headers whose arena_size
 * a reader accepts, so each costs a (rolling) checksum; legacy starts
 * refused 9 and 14 bytes in, and in a subsection, each walked without a
 * decoder; streams that decode, one per 16 bytes; and overlapping
 * headers of every size, half with a valid checksum.
 */
static void core_worst(Core *c, const uint8_t *arena, size_t asize,
                       uint8_t *d)
{
    static const uint8_t q9[] = { 'Q', 'C', 'P', 'R', 0, 0, 0, 1, 1 };
    static const uint8_t q14[] = {
        'Q', 'C', 'P', 'R', 0, 0, 0, 1, 1, 0, 0, 0, 2, 'a',
    };
    static const uint8_t qsub[] = {
        'Q', 'C', 'P', 'R', 0, 0, 0, 1, 0, 0x05, 0xff,
        'C', 'p', 'r', 'S', 't', 'a', 't', 'e',
    };
    static const uint8_t qok[16] = { 'Q', 'C', 'P', 'R', 0, 0, 0, 1 };
    const size_t n = 48 * 1024;
    uint8_t two[56] = { 0 };
    uint32_t h, crc;
    size_t at;

    memcpy(two, "\x89" "CPRS\r\n\x1a" "\x01\0\0\0\0\x10\0\0", 16);
    memcpy(two + 16, two, 16);
    two[33] = 0x20;                     /* arena_size 8 KiB, both */
    two[49] = 0x20;
    fill_repeat(d, n, two, sizeof(two));
    make_core(c, true, false, NULL, arena, asize, true, d, n);
    put_file("fuzz-core", "seed-worst-core-arena-sane", c->buf, c->len);
    fill_repeat(d, n, q9, sizeof(q9));
    make_core(c, true, false, NULL, arena, asize, true, d, n);
    put_file("fuzz-core", "seed-worst-core-legacy9", c->buf, c->len);
    fill_repeat(d, n, q14, sizeof(q14));
    make_core(c, true, false, NULL, arena, asize, true, d, n);
    put_file("fuzz-core", "seed-worst-core-legacy14", c->buf, c->len);
    fill_repeat(d, n, qsub, sizeof(qsub));
    make_core(c, true, false, NULL, arena, asize, true, d, n);
    put_file("fuzz-core", "seed-worst-core-subsection", c->buf, c->len);
    fill_repeat(d, n, qok, sizeof(qok));
    make_core(c, true, false, NULL, arena, asize, true, d, n);
    put_file("fuzz-core", "seed-worst-core-found", c->buf, c->len);
    /* Headers 96 to 600 bytes apart, 192 to 4096 bytes long. */
    memset(d, 0x5a, n);
    for (at = 0, h = 192; at + 4096 <= n; at += 96 + (h % 64) * 8) {
        memcpy(d + at, two, 16);
        put_le(d + at + 12, h, 4);          /* header_size */
        put_le(d + at + 32, 8192, 8);       /* arena_size */
        h = 192 + (h * 7 + 8) % 3905 / 8 * 8;
    }
    for (at = n; at-- > 0;) {
        if (!memcmp(d + at, two, 8) && at % 16 < 8) {
            h = (uint32_t)d[at + 12] | (uint32_t)d[at + 13] << 8;
            memset(d + at + 84, 0, 4);
            crc = cprs_crc32c(0, d + at, h);
            put_le(d + at + 84, crc, 4);
        }
    }
    make_core(c, true, false, NULL, arena, asize, true, d, n);
    put_file("fuzz-core", "seed-core-headers-overlapping", c->buf, c->len);
}

static void gen_cores(const char *srcdir)
{
    static const char state_path[] = "/memfd:QEMU_CPR_EXEC_STATE (deleted)";
    char path[4096];
    uint8_t *arena, *legacy, *noise;
    size_t asize, lsize;
    CprsWriter *w;
    CprsFdInfo fi;
    Core c;

    check(cprs_writer_new(NULL, &w), "writer");
    fi = CPRS_OPTS(CprsFdInfo, .name = "ram0", .fd = 11,
                   .kind = CPRS_FD_KIND_MEMFD);
    check(cprs_writer_add_fd(w, &fi, NULL), "fd");
    finish(w, &arena, &asize);
    snprintf(path, sizeof(path),
             "%s/tests/data/qemu-10.2/a-q35-memfd/capture.bin", srcdir);
    legacy = access(path, R_OK) ? NULL : slurp(path, &lsize);
    if (!legacy) {
        legacy = malloc(8);
        memcpy(legacy, "QCPR\0\0\0\1", 8);
        lsize = 8;
    }
    /* Noise with a stale arena copy at an odd place and a legacy magic. */
    noise = calloc(1, 8192);
    if (!noise) {
        die("out of memory");
    }
    memcpy(noise + 3, arena, asize);            /* unaligned: not a hit */
    memcpy(noise + 4096, arena, asize);         /* aligned: a scan hit */
    memcpy(noise + 6000, legacy, lsize < 2000 ? lsize : 2000);

    make_core(&c, true, false, state_path, arena, asize, true, NULL, 0);
    put_file("fuzz-core", "seed-core64-nt-file-arena", c.buf, c.len);
    put_file("fuzz-dump", "seed-core64-nt-file-arena", c.buf, c.len);
    make_core(&c, true, false, state_path, legacy, lsize, true, NULL, 0);
    put_file("fuzz-core", "seed-core64-nt-file-legacy", c.buf, c.len);
    put_file("fuzz-dump", "seed-core64-nt-file-legacy", c.buf, c.len);
    make_core(&c, true, false, NULL, arena, asize, true, noise, 8192);
    put_file("fuzz-core", "seed-core64-scan-only", c.buf, c.len);
    put_file("fuzz-dump", "seed-core64-scan-only", c.buf, c.len);
    make_core(&c, true, false, state_path, arena, asize, false, noise, 8192);
    put_file("fuzz-core", "seed-core64-not-dumped", c.buf, c.len);
    make_core(&c, true, false, state_path, arena, asize, false, NULL, 0);
    put_file("fuzz-core", "seed-core64-not-dumped-only", c.buf, c.len);
    make_core(&c, true, false, "/memfd:other (deleted)", arena, asize, true,
              NULL, 0);
    put_file("fuzz-core", "seed-core64-other-memfd", c.buf, c.len);
    make_core(&c, false, false, state_path, arena, asize, true, noise, 8192);
    put_file("fuzz-core", "seed-core32-nt-file-and-scan", c.buf, c.len);
    make_core(&c, true, true, state_path, arena, asize, true, NULL, 0);
    put_file("fuzz-core", "seed-core64-big-endian", c.buf, c.len);
    put_file("fuzz-core", "seed-not-elf", arena, asize);
    /*
     * Worst case of the scan (issue 11, class 3; tests/test-bounded-core.c
     * "pattern"): 48 KiB of memory that is nothing but the 8 bytes a QEMU
     * stream starts with, each one a candidate the locator must give up
     * on in bounded work.
     */
    free(noise);
    noise = malloc(48 * 1024);
    if (!noise) {
        die("out of memory");
    }
    for (size_t at = 0; at < 48 * 1024; at += 8) {
        memcpy(noise + at, "QCPR\0\0\0\1", 8);
    }
    make_core(&c, true, false, NULL, arena, asize, true, noise, 48 * 1024);
    put_file("fuzz-core", "seed-worst-core-pattern", c.buf, c.len);
    put_file("fuzz-dump", "seed-worst-core-pattern", c.buf, c.len);
    /* The worst cores of the scan's fast paths (test-bounded-core.c). */
    core_worst(&c, arena, asize, noise);
    free(noise);
    free(legacy);
    free(arena);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SRCDIR OUTDIR\n", argv[0]);
        return 2;
    }
    outdir = argv[2];
    if (mkdir(outdir, 0755) < 0 && errno != EEXIST) {
        die("%s: %s", outdir, strerror(errno));
    }
    gen_arenas();
    gen_worst();
    gen_golden(argv[1]);
    gen_probes();
    gen_legacy();
    gen_captures(argv[1]);
    gen_payloads();
    gen_programs();
    gen_cores(argv[1]);
    return 0;
}
