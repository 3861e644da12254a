/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* helpers.c - see helpers.h. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

uint8_t *th_read_file(const char *path, size_t *ret_size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f) {
        fail_msg("cannot open %s", path);
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc(n ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *ret_size = (size_t)n;
    return buf;
}

void th_write_file(const char *path, const void *buf, size_t size)
{
    FILE *f = fopen(path, "wb");

    if (!f) {
        fail_msg("cannot create %s", path);
    }
    assert_int_equal(fwrite(buf, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static const char *env_dir(const char *name)
{
    const char *v = getenv(name);

    if (!v) {
        fail_msg("%s is not set (run the tests through meson test)", name);
    }
    return v;
}

const char *th_data_dir(void)
{
    return env_dir("CPRS_TEST_DATA");
}

const char *th_vectors_dir(void)
{
    return env_dir("CPRS_FORMAT_VECTORS");
}

const char *th_build_root(void)
{
    return env_dir("CPRS_BUILD_ROOT");
}

CprsWriter *th_rich_writer(uint32_t extra_flags, uint32_t compress)
{
    static const uint8_t build_id[20] = {
        0x5e, 0x1f, 0x2a, 0x3b, 0x4c, 0x5d, 0x6e, 0x7f, 0x80, 0x91,
        0xa2, 0xb3, 0xc4, 0xd5, 0xe6, 0xf7, 0x08, 0x19, 0x2a, 0x3b,
    };
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .mode = CPRS_MODE_EXEC,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE |
                                          extra_flags,
                                 .generation = 7,
                                 .created_ns = UINT64_C(1795000000123456789),
                                 .writer_pid = 4242,
                                 .build_id = build_id,
                                 .build_id_size = sizeof(build_id),
                                 .producer = "libcprstate-tests",
                                 .compress_sections = compress);
    CprsFdInfo fd = CPRS_OPTS(CprsFdInfo);
    CprsRamBlockInfo rb = CPRS_OPTS(CprsRamBlockInfo);
    CprsVfioDeviceInfo vd = CPRS_OPTS(CprsVfioDeviceInfo);
    CprsDevStateInfo ds = CPRS_OPTS(CprsDevStateInfo);
    CprsGpaRange ram_ranges[2] = {
        { 0x0, 0x80000000, 0x0 },
        { 0x100000000, 0x80000000, 0x80000000 },
    };
    CprsGpaRange bios_range = { 0xfffc0000, 0x40000, 0 };
    static uint8_t payload[65536];
    CprsWriter *w;
    size_t i;

    for (i = 0; i < sizeof(payload); i++) {
        payload[i] = (uint8_t)((i % 64) < 48 ? 0 : i * 7);
    }
    assert_int_equal(cprs_writer_new(&o, &w), 0);

    fd.name = "ram0";
    fd.fd = 11;
    fd.kind = CPRS_FD_KIND_MEMFD;
    fd.flags = CPRS_FD_F_IDENTITY | CPRS_FD_F_SEALS;
    fd.seals = 0x1;
    fd.dev = 0xc;
    fd.ino = 1001;
    fd.st_mode = 0100777;
    fd.size = UINT64_C(0x100000000);
    assert_int_equal(cprs_writer_add_fd(w, &fd, NULL), 0);
    fd.name = "pc.bios";
    fd.fd = 15;
    fd.ino = 1002;
    fd.size = 0x40000;
    assert_int_equal(cprs_writer_add_fd(w, &fd, NULL), 0);
    fd = CPRS_OPTS(CprsFdInfo, .name = "vfio-group", .id = 42, .fd = 20,
                   .kind = CPRS_FD_KIND_VFIO_GROUP);
    assert_int_equal(cprs_writer_add_fd(w, &fd, NULL), 0);

    rb.idstr = "ram0";
    rb.fd_index = 0;
    rb.flags = CPRS_RAM_F_SHARED;
    rb.used_length = UINT64_C(0x100000000);
    rb.max_length = UINT64_C(0x100000000);
    rb.page_size = 4096;
    rb.align = 0x200000;
    assert_int_equal(cprs_writer_add_ramblock(w, &rb, ram_ranges, 2, NULL),
                     0);
    rb.idstr = "pc.bios";
    rb.fd_index = 1;
    rb.flags = CPRS_RAM_F_SHARED | CPRS_RAM_F_READONLY;
    rb.used_length = 0x40000;
    rb.max_length = 0x40000;
    rb.align = 0;
    assert_int_equal(cprs_writer_add_ramblock(w, &rb, &bios_range, 1, NULL),
                     0);

    vd.name = "0000:00:05.0";
    vd.devid = 1;
    vd.ioas_id = 2;
    vd.hwpt_id = 3;
    assert_int_equal(cprs_writer_add_vfio(w, &vd, NULL), 0);
    vd.name = "0000:00:06.0";
    vd.devid = -7;
    vd.ioas_id = 2;
    vd.hwpt_id = 4;
    assert_int_equal(cprs_writer_add_vfio(w, &vd, NULL), 0);

    ds.name = "virtio-net";
    ds.instance_id = 0;
    ds.version_id = 11;
    ds.flags = CPRS_DEVSTATE_F_ZSTD;
    assert_int_equal(cprs_writer_add_devstate(w, &ds, payload,
                                              sizeof(payload), NULL), 0);
    ds.name = "serial";
    ds.instance_id = 1;
    ds.version_id = 3;
    ds.flags = 0;
    assert_int_equal(cprs_writer_add_devstate(w, &ds, "\x01\x02\x03\x04\x05",
                                              5, NULL), 0);
    ds.name = "empty";
    ds.instance_id = 0;
    ds.version_id = 1;
    assert_int_equal(cprs_writer_add_devstate(w, &ds, NULL, 0, NULL), 0);
    return w;
}

void th_build_rich(uint32_t extra_flags, uint32_t compress, uint8_t **ret_buf,
                   size_t *ret_size)
{
    CprsWriter *w = th_rich_writer(extra_flags, compress);
    void *buf;

    assert_int_equal(cprs_writer_finish_buffer(w, &buf, ret_size), 0);
    cprs_writer_free(w);
    *ret_buf = buf;
}

CprsWireHeader *th_hdr(uint8_t *buf)
{
    return (CprsWireHeader *)buf;
}

CprsWireSection *th_dir(uint8_t *buf, uint32_t i)
{
    CprsWireHeader *h = th_hdr(buf);

    return (CprsWireSection *)(buf + cprs_le64_get(&h->dir_offset) +
                               (uint64_t)i *
                               cprs_le32_get(&h->dir_entry_size));
}

int th_sec(uint8_t *buf, uint32_t type)
{
    uint32_t i, n = cprs_le32_get(&th_hdr(buf)->dir_count);

    for (i = 0; i < n; i++) {
        if (cprs_le32_get(&th_dir(buf, i)->type) == type) {
            return (int)i;
        }
    }
    return -1;
}

int th_index_sec(uint8_t *buf, uint32_t type)
{
    uint32_t i, n = cprs_le32_get(&th_hdr(buf)->dir_count);
    int target = th_sec(buf, type);

    for (i = 0; i < n; i++) {
        if (cprs_le32_get(&th_dir(buf, i)->type) == CPRS_SECTION_INDEX &&
            (int)cprs_le32_get(&th_dir(buf, i)->link) == target) {
            return (int)i;
        }
    }
    return -1;
}

uint64_t th_sec_off(uint8_t *buf, uint32_t type)
{
    int s = th_sec(buf, type);

    assert_true(s >= 0);
    return cprs_le64_get(&th_dir(buf, (uint32_t)s)->offset);
}

uint64_t th_rec_off(uint8_t *buf, uint32_t type, uint32_t i)
{
    int s = th_sec(buf, type);

    assert_true(s >= 0);
    return cprs_le64_get(&th_dir(buf, (uint32_t)s)->offset) +
           (uint64_t)i * cprs_le32_get(&th_dir(buf, (uint32_t)s)->record_size);
}

void th_fix_crcs(uint8_t *buf, size_t size)
{
    CprsWireHeader *h = th_hdr(buf);
    uint32_t i, n = cprs_le32_get(&h->dir_count);
    uint32_t hsize = cprs_le32_get(&h->header_size);
    uint32_t esize = cprs_le32_get(&h->dir_entry_size);
    uint64_t dir_off = cprs_le64_get(&h->dir_offset);

    /* Mutated fields may point anywhere: repair only what lies inside. */
    if (n <= CPRS_MAX_SECTIONS && esize >= CPRS_SECTION_V1_SIZE &&
        esize <= 4096 && cprs_range_ok(size, dir_off, (uint64_t)n * esize)) {
        for (i = 0; i < n; i++) {
            uint8_t *at = buf + dir_off + (uint64_t)i * esize;
            CprsWireSection e;
            uint64_t off, len;

            /* The entry may be misaligned: work on a copy. */
            memcpy(&e, at, sizeof(e));
            off = cprs_le64_get(&e.offset);
            len = cprs_le64_get(&e.stored_size);
            if (cprs_range_ok(size, off, len)) {
                cprs_le32_set(&e.crc32c, cprs_crc32c(0, buf + off, len));
                memcpy(at, &e, sizeof(e));
            }
        }
        cprs_le32_set(&h->dir_crc32c,
                      cprs_crc32c(0, buf + dir_off, (size_t)n * esize));
    }
    if (hsize <= size) {
        cprs_le32_set(&h->header_crc32c, 0);
        cprs_le32_set(&h->header_crc32c, cprs_crc32c(0, buf, hsize));
    }
}

int th_open_verify(const void *buf, size_t size, CprsDiag *diag, int *stage)
{
    CprsReader *r;
    int ret;

    *stage = 1;
    ret = cprs_reader_open_buffer(buf, size, NULL, diag, &r);
    if (ret) {
        return ret;
    }
    *stage = 2;
    ret = cprs_reader_verify(r, diag);
    cprs_reader_close(r);
    return ret;
}

void th_expect_reject(const void *buf, size_t size, int err, uint64_t offset,
                      const char *clause)
{
    CprsDiag d = CPRS_OPTS(CprsDiag);
    char text[256];
    int stage, ret;

    ret = th_open_verify(buf, size, &d, &stage);
    if (err == 0) {
        if (ret) {
            cprs_diag_format(&d, text, sizeof(text));
            fail_msg("expected a valid arena, got %d (stage %d): %s", ret,
                     stage, text);
        }
        return;
    }
    if (ret == 0) {
        fail_msg("expected %d at 0x%llx [%s], but the arena is valid", err,
                 (unsigned long long)offset, clause);
    }
    cprs_diag_format(&d, text, sizeof(text));
    if (ret != err || d.offset != offset || strcmp(d.clause, clause)) {
        fail_msg("expected %d at 0x%llx [%s], got %d (stage %d): %s", err,
                 (unsigned long long)offset, clause, ret, stage, text);
    }
    assert_int_equal(d.error, err);
}

uint8_t *th_assemble(const ThArena *a, size_t *ret_size)
{
    uint32_t hsize = a->header_size ? a->header_size : CPRS_HEADER_V1_SIZE;
    uint32_t esize = a->entry_size ? a->entry_size : CPRS_SECTION_V1_SIZE;
    uint64_t off = hsize + (uint64_t)a->nsec * esize, size;
    uint64_t *offs = calloc(a->nsec + 1, sizeof(*offs));
    CprsWireHeader *h;
    uint8_t *buf;
    uint32_t i;

    assert_non_null(offs);
    for (i = 0; i < a->nsec; i++) {
        off = cprs_align_up(off);
        offs[i] = off;
        off += a->secs[i].size;
    }
    size = cprs_align_up(off);
    buf = calloc(1, size);
    assert_non_null(buf);
    h = th_hdr(buf);
    memset(buf + CPRS_HEADER_V1_SIZE, 0xa5, hsize - CPRS_HEADER_V1_SIZE);
    memcpy(h->magic, CPRS_MAGIC, CPRS_MAGIC_SIZE);
    cprs_le16_set(&h->version_major, a->major ? a->major : 1);
    cprs_le16_set(&h->version_minor, a->minor);
    cprs_le32_set(&h->header_size, hsize);
    cprs_le64_set(&h->incompat_features, a->incompat);
    cprs_le64_set(&h->compat_features, a->compat);
    cprs_le64_set(&h->arena_size, size);
    cprs_le64_set(&h->dir_offset, hsize);
    cprs_le32_set(&h->dir_count, a->nsec);
    cprs_le32_set(&h->dir_entry_size, esize);
    cprs_le32_set(&h->mode, a->mode ? a->mode : CPRS_MODE_EXEC);
    strcpy(h->producer, "th_assemble");
    for (i = 0; i < a->nsec; i++) {
        const ThSection *s = &a->secs[i];
        CprsWireSection *e = (CprsWireSection *)(buf + hsize +
                                                 (uint64_t)i * esize);

        memset((uint8_t *)e + CPRS_SECTION_V1_SIZE, 0xa5,
               esize - CPRS_SECTION_V1_SIZE);
        cprs_le32_set(&e->type, s->type);
        cprs_le32_set(&e->flags, s->flags);
        cprs_le64_set(&e->offset, offs[i]);
        cprs_le64_set(&e->stored_size, s->size);
        cprs_le64_set(&e->raw_size, s->raw_size ? s->raw_size : s->size);
        cprs_le32_set(&e->record_count, s->record_count);
        cprs_le32_set(&e->record_size, s->record_size);
        cprs_le32_set(&e->link, s->link);
        if (s->size) {
            memcpy(buf + offs[i], s->data, s->size);
        }
    }
    free(offs);
    th_fix_crcs(buf, (size_t)size);
    *ret_size = (size_t)size;
    return buf;
}

unsigned th_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    unsigned n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        n += de->d_name[0] != '.';
    }
    closedir(d);
    return n - 1;   /* the directory's own fd */
}

void th_put(ThBuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void th_put_u8(ThBuf *b, uint8_t v)
{
    th_put(b, &v, 1);
}

void th_put_be32(ThBuf *b, uint32_t v)
{
    uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };

    th_put(b, x, 4);
}
