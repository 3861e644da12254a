/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-structured.c - structure-aware fuzzing: the input is a little
 * program that builds a VALID arena with the writer, then damages it.
 *
 * Byte mutations of a raw arena almost never get past its CRCs.  Here
 * the fuzzer drives the writer instead (fds, RAM blocks with GPA ranges,
 * vfio devices, payloads, section and payload compression, indexes), so
 * every input reaches the record checks with a consistent arena, and
 * then a few targeted mutations (bit flips, byte and field overwrites in
 * the header, the directory or a record, truncation), optionally followed
 * by a CRC repair, probe each check.
 *
 * Program (little-endian; the input running out reads as zeros):
 *   u8 config      bit 0 cpr-transfer, bit 1 no index, bit 2 repair CRCs
 *                  after mutating, bits 3-4 zstd level (1, 3, 9, -1)
 *   u8 compress    section compression mask, shifted left by one
 *   u8 generation
 *   op*            u8 opcode (% 6): 0 fd, 1 RAM block, 2 vfio device,
 *                  3 payload, 4 end of records, 5 skip a byte
 *   u8 n_mutations, then each mutation (see mutate())
 *
 * Invariants (FUZZ_ASSERT):
 *   - the writer's arena opens and verifies, in program order and in
 *     type order;
 *   - it decodes to exactly the records the writer accepted;
 *   - decode -> write gives back the same bytes;
 *   - a single bit flip without CRC repair is always detected (spec 4.11
 *     note: every bit is covered by a CRC or by the zero rule);
 *   - a damaged arena that still verifies reads completely, and its
 *     records can be written again (v1.0).
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"

#define MAX_OPS 96
#define MAX_NAMES 64

typedef struct Prog {
    FuzzInput in;
    FuzzModel m;            /* the records the writer accepted */
    CprsWriter *w;          /* program order */
    const char *names[MAX_NAMES];
    uint32_t n_names;
    char name_buf[CPRS_MAX_NAME_LEN + 1];
} Prog;

static void *grow(void *p, uint32_t n, size_t elem)
{
    p = realloc(p, ((size_t)n + 1) * elem);
    FUZZ_ASSERT(p);
    return p;
}

/* A printable name from the input, or one used before (for duplicates). */
static const char *take_name(Prog *p)
{
    uint8_t sel = fuzz_u8(&p->in);
    const uint8_t *raw;
    size_t len, i;

    if ((sel & 0xc0) == 0xc0 && p->n_names) {
        return p->names[sel % p->n_names];
    }
    len = 1 + (sel & 0x1f);
    if (sel == 0xbf) {
        len = 300;              /* QEMU's longest seen id (namelen 301) */
    }
    len = fuzz_bytes(&p->in, len, &raw);
    for (i = 0; i < len; i++) {
        p->name_buf[i] = (char)(0x20 + raw[i] % 95);
    }
    if (!len) {
        p->name_buf[len++] = 'x';
    }
    p->name_buf[len] = '\0';
    return p->name_buf;
}

static void remember(Prog *p, const char *name)
{
    if (p->n_names < MAX_NAMES) {
        p->names[p->n_names++] = name;
    }
}

static char *dup(const char *s)
{
    char *d = strdup(s);

    FUZZ_ASSERT(d);
    return d;
}

static void op_fd(Prog *p)
{
    CprsFdInfo fi = CPRS_OPTS(CprsFdInfo);
    FuzzModel *m = &p->m;
    int ret;

    fi.name = take_name(p);
    fi.id = (int32_t)fuzz_u32(&p->in);
    fi.fd = (int32_t)fuzz_u32(&p->in);
    if (fi.fd < -1) {
        fi.fd = -1;
    }
    fi.kind = fuzz_u8(&p->in) % (CPRS_FD_KIND__MAX + 1);
    fi.flags = fuzz_u8(&p->in) & 7;     /* 4: unknown, refused */
    if (fi.flags & CPRS_FD_F_SEALS) {
        fi.seals = fuzz_u8(&p->in) & 0x1f;
    }
    if (fi.flags & CPRS_FD_F_IDENTITY) {
        fi.dev = fuzz_u16(&p->in);
        fi.ino = fuzz_u32(&p->in);
        fi.st_mode = fuzz_u8(&p->in) & 1 ? 0100600 : 020666;
        fi.size = (uint64_t)fuzz_u16(&p->in) << 12;
    }
    ret = cprs_writer_add_fd(p->w, &fi, NULL);
    if (ret) {
        FUZZ_ASSERT(ret == -EINVAL || ret == -EEXIST);
        return;
    }
    m->fds = grow(m->fds, m->n_fds, sizeof(*m->fds));
    m->fd_names = grow(m->fd_names, m->n_fds, sizeof(*m->fd_names));
    m->fd_names[m->n_fds] = dup(fi.name);
    fi.name = m->fd_names[m->n_fds];
    fi.slot = m->n_fds;
    fi.name_len = (uint32_t)strlen(fi.name);
    m->fds[m->n_fds++] = fi;
    remember(p, fi.name);
}

static void op_ramblock(Prog *p)
{
    CprsRamBlockInfo bi = CPRS_OPTS(CprsRamBlockInfo);
    CprsGpaRange ranges[4];
    FuzzModel *m = &p->m;
    uint32_t n, k, sel;
    FuzzBlock *b;
    int ret;

    bi.idstr = take_name(p);
    sel = fuzz_u8(&p->in);
    bi.fd_index = sel == 0xff || !m->n_fds ? CPRS_NO_INDEX :
                  sel % (m->n_fds + 1);  /* n_fds: refused */
    bi.flags = fuzz_u8(&p->in) & 0x3f;
    bi.max_length = (uint64_t)fuzz_u16(&p->in) << (fuzz_u8(&p->in) % 40);
    bi.used_length = bi.max_length - (bi.max_length ?
                     fuzz_u32(&p->in) % (bi.max_length + 1) : 0);
    bi.fd_offset = (uint64_t)fuzz_u16(&p->in) << 12;
    bi.page_size = UINT64_C(1) << (fuzz_u8(&p->in) % 40);
    sel = fuzz_u8(&p->in);
    bi.align = sel & 1 ? 0 : UINT64_C(1) << (sel % 40);
    n = fuzz_u8(&p->in) % 5;
    for (k = 0; k < n; k++) {
        uint64_t span = bi.max_length ? bi.max_length : 1;

        ranges[k].size = 1 + fuzz_u32(&p->in) % span;
        ranges[k].block_offset = fuzz_u32(&p->in) %
                                 (span - ranges[k].size + 1);
        ranges[k].gpa = fuzz_u64(&p->in) & ~UINT64_C(0xfff);
    }
    ret = cprs_writer_add_ramblock(p->w, &bi, ranges, n, NULL);
    if (ret) {
        FUZZ_ASSERT(ret == -EINVAL || ret == -EEXIST);
        return;
    }
    m->blocks = grow(m->blocks, m->n_blocks, sizeof(*m->blocks));
    b = &m->blocks[m->n_blocks++];
    b->idstr = dup(bi.idstr);
    bi.idstr = b->idstr;
    bi.idstr_len = (uint32_t)strlen(bi.idstr);
    bi.range_count = n;
    b->info = bi;
    b->ranges = calloc(n ? n : 1, sizeof(*b->ranges));
    FUZZ_ASSERT(b->ranges);
    memcpy(b->ranges, ranges, n * sizeof(*ranges));
    remember(p, b->idstr);
}

static void op_vfio(Prog *p)
{
    CprsVfioDeviceInfo vi = CPRS_OPTS(CprsVfioDeviceInfo);
    FuzzModel *m = &p->m;
    int ret;

    vi.name = take_name(p);
    vi.devid = (int32_t)fuzz_u32(&p->in);
    vi.ioas_id = fuzz_u32(&p->in);
    vi.hwpt_id = fuzz_u32(&p->in);
    ret = cprs_writer_add_vfio(p->w, &vi, NULL);
    if (ret) {
        FUZZ_ASSERT(ret == -EINVAL || ret == -EEXIST);
        return;
    }
    m->vfio = grow(m->vfio, m->n_vfio, sizeof(*m->vfio));
    m->vfio_names = grow(m->vfio_names, m->n_vfio, sizeof(*m->vfio_names));
    m->vfio_names[m->n_vfio] = dup(vi.name);
    vi.name = m->vfio_names[m->n_vfio];
    vi.name_len = (uint32_t)strlen(vi.name);
    m->vfio[m->n_vfio++] = vi;
    remember(p, vi.name);
}

static void op_payload(Prog *p)
{
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo);
    FuzzModel *m = &p->m;
    const uint8_t *raw;
    uint8_t *data;
    size_t len, i;
    uint8_t kind;
    FuzzPayload *ds;
    int ret;

    di.name = take_name(p);
    di.instance_id = fuzz_u8(&p->in);
    di.version_id = fuzz_u8(&p->in);
    kind = fuzz_u8(&p->in);
    di.flags = kind & 1 ? CPRS_DEVSTATE_F_ZSTD : 0;
#ifndef CPRS_HAVE_ZSTD
    di.flags = 0;
#endif
    len = fuzz_u16(&p->in) % 8192;
    data = malloc(len ? len : 1);
    FUZZ_ASSERT(data);
    if (kind & 2) {
        /* Compressible: device-state-like runs of one byte. */
        memset(data, kind >> 2, len);
        for (i = 0; i < len; i += 64) {
            data[i] = (uint8_t)i;
        }
    } else {
        len = fuzz_bytes(&p->in, len, &raw);
        memcpy(data, raw, len);
    }
    ret = cprs_writer_add_devstate(p->w, &di, data, len, NULL);
    if (ret) {
        FUZZ_ASSERT(ret == -EINVAL || ret == -EEXIST);
        free(data);
        return;
    }
    m->ds = grow(m->ds, m->n_ds, sizeof(*m->ds));
    ds = &m->ds[m->n_ds++];
    ds->name = dup(di.name);
    ds->data = data;
    di.name = ds->name;
    di.name_len = (uint32_t)strlen(di.name);
    di.raw_size = len;
    ds->info = di;
    remember(p, ds->name);
}

/* Open and verify; FUZZ_ASSERT success; return the decoded model. */
static CprsReader *open_valid(const void *buf, size_t size, FuzzModel *out)
{
    CprsReaderOpts o = fuzz_reader_opts(0);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsReader *r;
    int ret;

    ret = cprs_reader_open_buffer(buf, size, &o, &diag, &r);
    FUZZ_ASSERT_MSG(ret == 0, "the writer's arena does not open (%d) at "
                    "%llu: %s", ret, (unsigned long long)diag.offset,
                    diag.reason);
    ret = cprs_reader_verify(r, &diag);
    FUZZ_ASSERT_MSG(ret == 0, "the writer's arena does not verify (%d) at "
                    "%llu: %s [%s]", ret, (unsigned long long)diag.offset,
                    diag.reason, diag.clause);
    fuzz_walk_reader(r, NULL, NULL, 0, true);
    FUZZ_ASSERT(fuzz_model_from_reader(r, out) == 0);
    return r;
}

static const uint64_t interesting[] = {
    0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0x7fff, 0x8000,
    0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
    UINT64_C(0x100000000), UINT64_C(1) << 30, UINT64_C(1) << 34,
    UINT64_C(0x7fffffffffffffff), UINT64_C(0x8000000000000000),
    UINT64_MAX - 7, UINT64_MAX,
};

static uint64_t pick_value(FuzzInput *in, size_t size)
{
    uint8_t sel = fuzz_u8(in);

    if (sel < sizeof(interesting) / sizeof(interesting[0])) {
        return interesting[sel];
    }
    if (sel < 0xe0) {
        return (uint64_t)size + (int8_t)fuzz_u8(in);
    }
    return fuzz_u64(in);
}

static void put(uint8_t *buf, size_t size, uint64_t off, unsigned width,
                uint64_t v)
{
    unsigned i;

    for (i = 0; i < width && off + i < size; i++) {
        buf[off + i] = (uint8_t)(v >> (8 * i));
    }
}

/*
 * One mutation of @buf; returns the new size (truncation).  Kinds: bit
 * flip, byte, aligned 32- or 64-bit word anywhere, a header field, a
 * directory entry field, a record field, a record field copied from
 * another record, truncation.
 */
static size_t mutate(FuzzInput *in, uint8_t *buf, size_t size,
                     bool *ret_flip)
{
    uint8_t kind = fuzz_u8(in) % 8;
    uint64_t off, e, sec_off, count, rsize;
    uint32_t nsec;

    *ret_flip = false;
    if (!size) {
        return 0;
    }
    switch (kind) {
    case 0:
        off = fuzz_u32(in) % size;
        buf[off] ^= (uint8_t)(1u << (fuzz_u8(in) % 8));
        *ret_flip = true;
        break;
    case 1:
        buf[fuzz_u32(in) % size] = fuzz_u8(in);
        break;
    case 2:
        off = (fuzz_u32(in) % size) & ~(uint64_t)3;
        put(buf, size, off, 4 << (fuzz_u8(in) & 1), pick_value(in, size));
        break;
    case 3:
        off = (fuzz_u8(in) % CPRS_HEADER_V1_SIZE) & ~(uint64_t)3;
        put(buf, size, off, 4 << (fuzz_u8(in) & 1), pick_value(in, size));
        break;
    case 4:
    case 5:
        nsec = size >= CPRS_HEADER_V1_SIZE ?
               fuzz_rd32(buf + offsetof(CprsWireHeader, dir_count)) : 0;
        e = nsec ? fuzz_dir_entry(buf, size, fuzz_u8(in) % nsec) : 0;
        if (!e) {
            break;
        }
        if (kind == 4) {
            off = e + ((fuzz_u8(in) % CPRS_SECTION_V1_SIZE) & ~3u);
        } else {
            /* A field of one record of that section. */
            sec_off = fuzz_rd64(buf + e + offsetof(CprsWireSection, offset));
            count = fuzz_rd32(buf + e + offsetof(CprsWireSection,
                                                 record_count));
            rsize = fuzz_rd32(buf + e + offsetof(CprsWireSection,
                                                 record_size));
            if (!count || !rsize || sec_off >= size) {
                break;
            }
            off = sec_off + fuzz_u16(in) % count * rsize +
                  ((fuzz_u8(in) % rsize) & ~(uint64_t)3);
        }
        put(buf, size, off, 4 << (fuzz_u8(in) & 1), pick_value(in, size));
        break;
    case 7:
        /*
         * One record's 8-byte field copied onto another's (a shared or
         * duplicate name, a repeated key, a reused offset).
         */
        nsec = size >= CPRS_HEADER_V1_SIZE ?
               fuzz_rd32(buf + offsetof(CprsWireHeader, dir_count)) : 0;
        e = nsec ? fuzz_dir_entry(buf, size, fuzz_u8(in) % nsec) : 0;
        if (!e) {
            break;
        }
        sec_off = fuzz_rd64(buf + e + offsetof(CprsWireSection, offset));
        count = fuzz_rd32(buf + e + offsetof(CprsWireSection, record_count));
        rsize = fuzz_rd32(buf + e + offsetof(CprsWireSection, record_size));
        if (count < 2 || rsize < 8 || sec_off >= size) {
            break;
        }
        off = (fuzz_u8(in) % rsize) & ~(uint64_t)7;
        {
            uint64_t from = sec_off + fuzz_u16(in) % count * rsize + off;
            uint64_t to = sec_off + fuzz_u16(in) % count * rsize + off;

            if (from + 8 <= size && to + 8 <= size) {
                memmove(buf + to, buf + from, 8);
            }
        }
        break;
    default:
        return fuzz_u32(in) % size;
    }
    return size;
}

/*
 * A damaged arena: whatever it is, reading it is safe; if it verifies,
 * it reads completely and its records can be written again.
 */
static void check_damaged(const uint8_t *buf, size_t size, bool one_flip)
{
    CprsReaderOpts o = fuzz_reader_opts(0);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsReader *r, *r2;
    FuzzModel a, b;
    size_t osize;
    void *out;
    uint32_t i;
    int ret;

    ret = cprs_reader_open_buffer(buf, size, &o, &diag, &r);
    if (ret) {
        FUZZ_ASSERT(fuzz_reader_errno_ok(ret));
        fuzz_check_diag(&diag, ret, size);
        return;
    }
    fuzz_walk_reader(r, NULL, NULL, 0, false);
    ret = cprs_reader_verify(r, &diag);
    if (ret) {
        FUZZ_ASSERT(fuzz_reader_errno_ok(ret));
        /* Record offsets in zstd sections count raw bytes (spec 5.2). */
        fuzz_check_diag(&diag, ret, UINT64_MAX);
        cprs_reader_close(r);
        return;
    }
    FUZZ_ASSERT_MSG(!one_flip, "a single bit flip went undetected (spec "
                    "4.11 note)");
    fuzz_walk_reader(r, NULL, NULL, 0, true);
    FUZZ_ASSERT(fuzz_model_from_reader(r, &a) == 0);
    ret = fuzz_model_write(&a, 0, &out, &osize);
    if (ret) {
        FUZZ_ASSERT_MSG(a.info.version_minor > CPRS_FORMAT_VERSION_MINOR,
                        "the writer refused (%d) a verified arena", ret);
    } else {
        r2 = open_valid(out, osize, &b);
        for (i = 0; i < a.n_fds; i++) {
            a.fds[i].slot = i;      /* the writer numbers slots */
        }
        fuzz_model_assert_equal(&a, &b, false);
        fuzz_model_free(&b);
        cprs_reader_close(r2);
        free(out);
    }
    fuzz_model_free(&a);
    cprs_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int32_t levels[] = { 1, 3, 9, -1 };
    CprsWriterOpts wo;
    Prog p;
    CprsReader *r;
    FuzzModel dec;
    uint8_t config, n_mut, *buf;
    void *prog_buf, *arena, *again;
    size_t prog_size, asize, again_size, msize;
    int32_t level;
    bool flip = false, done = false;
    uint32_t ops, i;

    if (fuzz_outside_size_range(size, 1, FUZZ_PROGRAM_MAX_INPUT)) {
        return 0;
    }
    memset(&p, 0, sizeof(p));
    p.in = (FuzzInput) { data, size };
    config = fuzz_u8(&p.in);
    level = levels[(config >> 3) & 3];
    wo = CPRS_OPTS(CprsWriterOpts,
                   .mode = config & 1 ? CPRS_MODE_TRANSFER : CPRS_MODE_EXEC,
                   .flags = CPRS_WRITER_F_REPRODUCIBLE |
                            (config & 2 ? CPRS_WRITER_F_NO_INDEX : 0),
                   .producer = "fuzz-structured",
                   .zstd_level = level);
    wo.compress_sections = ((uint32_t)fuzz_u8(&p.in) << 1) &
                           ((1u << CPRS_SECTION__MAX) - 2);
#ifndef CPRS_HAVE_ZSTD
    wo.compress_sections = 0;       /* the writer would refuse it */
#endif
    wo.generation = fuzz_u8(&p.in);
    FUZZ_ASSERT(cprs_writer_new(&wo, &p.w) == 0);

    for (ops = 0; ops < MAX_OPS && p.in.left && !done; ops++) {
        switch (fuzz_u8(&p.in) % 6) {
        case 0:
            op_fd(&p);
            break;
        case 1:
            op_ramblock(&p);
            break;
        case 2:
            op_vfio(&p);
            break;
        case 3:
            op_payload(&p);
            break;
        case 4:
            done = true;
            break;
        default:
            (void)fuzz_u8(&p.in);
            break;
        }
    }

    /*
     * Program order: the writer's own arena is valid and holds exactly
     * what it accepted.
     */
    FUZZ_ASSERT(cprs_writer_finish_buffer(p.w, &prog_buf, &prog_size) == 0);
    cprs_writer_free(p.w);
    r = open_valid(prog_buf, prog_size, &dec);
    p.m.info = dec.info;
    p.m.compressed = dec.compressed;
    p.m.n_index = dec.n_index;
    fuzz_model_assert_equal(&p.m, &dec, false);
    fuzz_model_free(&dec);
    cprs_reader_close(r);
    free(prog_buf);

    /* Type order, and back: decode -> write gives the same bytes. */
    FUZZ_ASSERT(fuzz_model_write(&p.m, level, &arena, &asize) == 0);
    r = open_valid(arena, asize, &dec);
    fuzz_model_assert_equal(&p.m, &dec, false);
    FUZZ_ASSERT(fuzz_model_write(&dec, level, &again, &again_size) == 0);
    FUZZ_ASSERT_MSG(again_size == asize && !memcmp(again, arena, asize),
                    "decode -> write changed the bytes of a valid arena");
    free(again);
    fuzz_model_free(&dec);
    cprs_reader_close(r);

    /* Damage it. */
    n_mut = fuzz_u8(&p.in) % 5;
    if (n_mut) {
        buf = malloc(asize);
        FUZZ_ASSERT(buf);
        memcpy(buf, arena, asize);
        msize = asize;
        for (i = 0; i < n_mut; i++) {
            msize = mutate(&p.in, buf, msize, &flip);
        }
        if (config & 4) {
            fuzz_repair_crcs(buf, msize);
        }
        check_damaged(buf, msize, n_mut == 1 && flip && !(config & 4) &&
                      msize == asize);
        free(buf);
    }
    free(arena);
    fuzz_model_free(&p.m);
    return 0;
}
