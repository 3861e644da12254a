/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * helpers.c - shared code of the fuzz targets (see fuzz.h).
 *
 * Only the public API is used to read arenas, so that the fuzzers test
 * what QEMU and cprdump call.  The CRC repair works on raw bytes with its
 * own bounds checks: it must never be the thing that crashes.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include "fuzz.h"

CprsReaderOpts fuzz_reader_opts(uint32_t flags)
{
    /* Lower limits keep every run fast; opts may only lower them. */
    return CPRS_OPTS(CprsReaderOpts,
                     .flags = flags,
                     .max_records = 1u << 16,
                     .max_arena_size = 4 * (uint64_t)FUZZ_ARENA_MAX_INPUT,
                     .max_payload_size = FUZZ_MAX_PAYLOAD,
                     .max_memory = FUZZ_MAX_MEMORY);
}

bool fuzz_write_all(int fd, const uint8_t *p, size_t n)
{
    ssize_t w;

    while (n) {
        w = write(fd, p, n);
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* ---- Byte consumer ----------------------------------------------------- */

size_t fuzz_bytes(FuzzInput *in, size_t max, const uint8_t **ret)
{
    size_t n = max < in->left ? max : in->left;

    *ret = in->p;
    in->p += n;
    in->left -= n;
    return n;
}

static uint64_t take_le(FuzzInput *in, size_t n)
{
    const uint8_t *p;
    uint64_t v = 0;
    size_t got = fuzz_bytes(in, n, &p), i;

    for (i = 0; i < got; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

uint8_t fuzz_u8(FuzzInput *in)
{
    return (uint8_t)take_le(in, 1);
}

uint16_t fuzz_u16(FuzzInput *in)
{
    return (uint16_t)take_le(in, 2);
}

uint32_t fuzz_u32(FuzzInput *in)
{
    return (uint32_t)take_le(in, 4);
}

uint64_t fuzz_u64(FuzzInput *in)
{
    return take_le(in, 8);
}

/* ---- Arena byte surgery ------------------------------------------------ */

uint32_t fuzz_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

uint64_t fuzz_rd64(const uint8_t *p)
{
    return (uint64_t)fuzz_rd32(p) | (uint64_t)fuzz_rd32(p + 4) << 32;
}

void fuzz_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void fuzz_wr64(uint8_t *p, uint64_t v)
{
    fuzz_wr32(p, (uint32_t)v);
    fuzz_wr32(p + 4, (uint32_t)(v >> 32));
}

static bool in_bounds(size_t size, uint64_t off, uint64_t len)
{
    return off <= size && len <= size - off;
}

uint64_t fuzz_dir_entry(const uint8_t *buf, size_t size, uint32_t i)
{
    uint64_t dir_off, off;
    uint32_t count, esize;

    if (size < CPRS_HEADER_V1_SIZE) {
        return 0;
    }
    dir_off = fuzz_rd64(buf + offsetof(CprsWireHeader, dir_offset));
    count = fuzz_rd32(buf + offsetof(CprsWireHeader, dir_count));
    esize = fuzz_rd32(buf + offsetof(CprsWireHeader, dir_entry_size));
    if (i >= count || count > CPRS_MAX_SECTIONS ||
        esize < CPRS_SECTION_V1_SIZE || esize > CPRS_MAX_RECORD_SIZE) {
        return 0;
    }
    off = dir_off + (uint64_t)i * esize;   /* no overflow: bounded above */
    if (off < dir_off || !in_bounds(size, off, CPRS_SECTION_V1_SIZE)) {
        return 0;
    }
    return off;
}

uint8_t *fuzz_rle_frame(uint64_t raw, uint64_t fcs, size_t *ret_len)
{
    const uint32_t block = 128u << 10;
    uint64_t nblocks = (raw + block - 1) / block, i, left = raw;
    uint8_t *f = malloc(14 + 4 * nblocks), *p;
    uint32_t bh, bsize;

    FUZZ_ASSERT(f);
    /* RFC 8878 3.1.1: magic, descriptor (8-byte content size, a window
     * descriptor), the window (2^17), the content size. */
    fuzz_wr32(f, 0xfd2fb528u);
    f[4] = 0xc0;
    f[5] = 7 << 3;
    fuzz_wr64(f + 6, fcs);
    for (i = 0, p = f + 14; i < nblocks; i++, p += 4, left -= bsize) {
        /* 3.1.1.2: last-block bit, type 1 (RLE), size; the byte. */
        bsize = left < block ? (uint32_t)left : block;
        bh = (i + 1 == nblocks) | (1u << 1) | (bsize << 3);
        p[0] = (uint8_t)bh;
        p[1] = (uint8_t)(bh >> 8);
        p[2] = (uint8_t)(bh >> 16);
        p[3] = 0;
    }
    *ret_len = 14 + 4 * nblocks;
    return f;
}

uint64_t fuzz_find_section(const uint8_t *buf, size_t size, uint32_t type)
{
    uint64_t e;
    uint32_t i;

    for (i = 0; (e = fuzz_dir_entry(buf, size, i)) != 0; i++) {
        if (fuzz_rd32(buf + e + offsetof(CprsWireSection, type)) == type) {
            return e;
        }
    }
    return 0;
}

void fuzz_repair_crcs(uint8_t *buf, size_t size)
{
    uint64_t dir_off, e, off, len;
    uint32_t count, esize, hsize, crc, i;
    static const uint8_t zero4[4];
    size_t crc_at = offsetof(CprsWireHeader, header_crc32c);

    if (size < CPRS_HEADER_V1_SIZE) {
        return;
    }
    /* Sections first: the directory holds their CRCs. */
    count = fuzz_rd32(buf + offsetof(CprsWireHeader, dir_count));
    for (i = 0; i < count && i < CPRS_MAX_SECTIONS; i++) {
        e = fuzz_dir_entry(buf, size, i);
        if (!e) {
            break;
        }
        off = fuzz_rd64(buf + e + offsetof(CprsWireSection, offset));
        len = fuzz_rd64(buf + e + offsetof(CprsWireSection, stored_size));
        if (in_bounds(size, off, len)) {
            fuzz_wr32(buf + e + offsetof(CprsWireSection, crc32c),
                      cprs_crc32c(0, buf + off, (size_t)len));
        }
    }
    /* Then the directory, whose CRC the header holds. */
    dir_off = fuzz_rd64(buf + offsetof(CprsWireHeader, dir_offset));
    esize = fuzz_rd32(buf + offsetof(CprsWireHeader, dir_entry_size));
    if (count <= CPRS_MAX_SECTIONS && esize <= CPRS_MAX_RECORD_SIZE &&
        in_bounds(size, dir_off, (uint64_t)count * esize)) {
        fuzz_wr32(buf + offsetof(CprsWireHeader, dir_crc32c),
                  cprs_crc32c(0, buf + dir_off, (size_t)count * esize));
    }
    /* Last the header, with its own CRC field read as zero (spec 3.9). */
    hsize = fuzz_rd32(buf + offsetof(CprsWireHeader, header_size));
    if (hsize < CPRS_HEADER_V1_SIZE || hsize > CPRS_MAX_HEADER_SIZE ||
        hsize > size) {
        hsize = CPRS_HEADER_V1_SIZE;
    }
    crc = cprs_crc32c(0, buf, crc_at);
    crc = cprs_crc32c(crc, zero4, sizeof(zero4));
    crc = cprs_crc32c(crc, buf + crc_at + 4, hsize - crc_at - 4);
    fuzz_wr32(buf + crc_at, crc);
}

/* ---- Diagnostics and errors --------------------------------------------- */

bool fuzz_reader_errno_ok(int ret)
{
    return ret == -EBADMSG || ret == -EPROTONOSUPPORT || ret == -E2BIG ||
           ret == -ENOMEM;
}

void fuzz_check_diag(const CprsDiag *diag, int ret, uint64_t size)
{
    char text[512];
    int n;

    FUZZ_ASSERT_MSG(diag->error == ret, "diag error %d, returned %d",
                    diag->error, ret);
    FUZZ_ASSERT(diag->reason && diag->reason[0]);
    FUZZ_ASSERT(diag->clause);
    /* An offset into the input: at most its size (truncation points). */
    FUZZ_ASSERT_MSG(diag->offset <= size, "diag offset %llu past %llu (%s)",
                    (unsigned long long)diag->offset,
                    (unsigned long long)size, diag->reason);
    n = cprs_diag_format(diag, text, sizeof(text));
    FUZZ_ASSERT(n > 0);
    FUZZ_ASSERT(strlen(text) == ((size_t)n < sizeof(text) ? (size_t)n :
                                 sizeof(text) - 1));
    FUZZ_ASSERT(cprs_strerror(ret) != NULL);
}

size_t fuzz_keys_from_input(const uint8_t *data, size_t size,
                            char keys[][FUZZ_KEY_MAX], int32_t *ids,
                            size_t max)
{
    size_t k, at, n, i;

    if (!size) {
        return 0;
    }
    for (k = 0; k < max; k++) {
        /* Spread over the input, biased towards its end (the strings). */
        at = size - 1 - (size - 1) * k / (max + 1);
        i = at;
        while (i > 0 && data[i - 1] && at - i < FUZZ_KEY_MAX - 1) {
            i--;    /* back to the NUL before, or FUZZ_KEY_MAX - 1 bytes */
        }
        n = at - i;
        memcpy(keys[k], data + i, n);
        keys[k][n] = '\0';
        ids[k] = i >= 4 ? (int32_t)fuzz_rd32(data + i - 4) : 0;
    }
    return max;
}

/* ---- The accessor walk ------------------------------------------------- */

typedef struct Walk {
    CprsReader *r;
    const char *const *keys;
    const int32_t *ids;
    size_t n_keys;
    bool must;
    uint32_t failed;
    uint64_t budget;        /* range calls left when not verified */
} Walk;

/* Did the last accessor call fail for the reader's memory budget? */
static bool over_budget(const Walk *w, int ret)
{
    const CprsDiag *d = cprs_reader_last_diag(w->r);

    return ret == -E2BIG && d->error == ret && !strcmp(d->clause, "7.1");
}

/*
 * Account for one accessor result; a verified arena must not fail, but
 * for the one exception cprs_reader_verify() documents: the accessors'
 * share of the memory budget (spec 7.1) may not hold every compressed
 * section and payload at once.
 */
static bool ok(Walk *w, int ret, const char *what, uint32_t i)
{
    if (!ret) {
        return true;
    }
    FUZZ_ASSERT_MSG(!w->must || over_budget(w, ret),
                    "%s(%u) failed (%d) after verify succeeded", what, i,
                    ret);
    FUZZ_ASSERT_MSG(fuzz_reader_errno_ok(ret) || ret == -EINVAL,
                    "%s(%u): undocumented error %d", what, i, ret);
    /*
     * The diagnostic of the first failures, in full: a damaged section
     * fails every one of its 65536 records alike (its outcome is kept,
     * spec 4.7), and formatting each of those diagnostics made such an
     * input a slow unit under ASan, for nothing the first ones had not
     * shown.
     */
    if (ret != -EINVAL && ret != -ENOMEM && w->failed < 64) {
        fuzz_check_diag(cprs_reader_last_diag(w->r), ret, UINT64_MAX);
    }
    w->failed++;
    return false;
}

static void find_result(Walk *w, int ret, uint32_t got, uint32_t want,
                        uint32_t count, const char *what)
{
    if (!ret) {
        FUZZ_ASSERT_MSG(got < count, "%s found index %u of %u", what, got,
                        count);
        FUZZ_ASSERT_MSG(!w->must || got == want, "%s(own key of %u) "
                        "found %u in a verified arena", what, want, got);
        return;
    }
    FUZZ_ASSERT_MSG(!w->must, "%s(own key of %u) failed (%d) in a verified "
                    "arena", what, want, ret);
    FUZZ_ASSERT_MSG(ret == -ENOENT || fuzz_reader_errno_ok(ret),
                    "%s: undocumented error %d", what, ret);
}

static void walk_fds(Walk *w)
{
    uint32_t n = cprs_reader_fd_count(w->r), i, idx;
    CprsFdInfo fi;
    size_t k;
    int ret;

    for (i = 0; i <= n; i++) {
        fi = CPRS_OPTS(CprsFdInfo);
        ret = cprs_reader_fd_get(w->r, i, &fi);
        if (i == n) {
            FUZZ_ASSERT(ret == -EINVAL);
            break;
        }
        if (!ok(w, ret, "fd_get", i)) {
            continue;
        }
        FUZZ_ASSERT(fi.name && strlen(fi.name) == fi.name_len);
        FUZZ_ASSERT(fi.slot < n && fi.fd >= -1);
        ret = cprs_reader_fd_find(w->r, fi.name, fi.id, &idx);
        find_result(w, ret, idx, i, n, "fd_find");
        if (!ret) {
            /*
             * A hit is a record with exactly this key (its other fields
             * may still be invalid in an unverified arena).
             */
            CprsFdInfo hit = CPRS_OPTS(CprsFdInfo);

            if (ok(w, cprs_reader_fd_get(w->r, idx, &hit), "fd_get", idx)) {
                FUZZ_ASSERT(hit.id == fi.id && !strcmp(hit.name, fi.name));
            }
        }
    }
    for (k = 0; k < w->n_keys; k++) {
        ret = cprs_reader_fd_find(w->r, w->keys[k], w->ids[k], &idx);
        FUZZ_ASSERT(ret <= 0);
    }
}

static void walk_ramblocks(Walk *w)
{
    uint32_t n = cprs_reader_ramblock_count(w->r), i, k, idx;
    CprsRamBlockInfo bi;
    CprsGpaRange gr;
    size_t j;
    int ret;

    for (i = 0; i <= n; i++) {
        bi = CPRS_OPTS(CprsRamBlockInfo);
        ret = cprs_reader_ramblock_get(w->r, i, &bi);
        if (i == n) {
            FUZZ_ASSERT(ret == -EINVAL);
            FUZZ_ASSERT(cprs_reader_gpa_range_get(w->r, i, 0, &gr) ==
                        -EINVAL);
            break;
        }
        if (!ok(w, ret, "ramblock_get", i)) {
            continue;
        }
        FUZZ_ASSERT(bi.idstr && strlen(bi.idstr) == bi.idstr_len);
        FUZZ_ASSERT(bi.used_length <= bi.max_length);
        ret = cprs_reader_ramblock_find(w->r, bi.idstr, &idx);
        find_result(w, ret, idx, i, n, "ramblock_find");
        for (k = 0; k <= bi.range_count; k++) {
            if (!w->must && !w->budget--) {
                break;
            }
            ret = cprs_reader_gpa_range_get(w->r, i, k, &gr);
            if (k == bi.range_count) {
                FUZZ_ASSERT(ret == -EINVAL);
                break;
            }
            if (ok(w, ret, "gpa_range_get", k)) {
                FUZZ_ASSERT(gr.size && gr.block_offset < bi.max_length &&
                            gr.size <= bi.max_length - gr.block_offset);
            }
        }
    }
    for (j = 0; j < w->n_keys; j++) {
        FUZZ_ASSERT(cprs_reader_ramblock_find(w->r, w->keys[j], &idx) <= 0);
    }
}

static void walk_vfio(Walk *w)
{
    uint32_t n = cprs_reader_vfio_count(w->r), i, idx;
    CprsVfioDeviceInfo vi;
    size_t k;
    int ret;

    for (i = 0; i <= n; i++) {
        vi = CPRS_OPTS(CprsVfioDeviceInfo);
        ret = cprs_reader_vfio_get(w->r, i, &vi);
        if (i == n) {
            FUZZ_ASSERT(ret == -EINVAL);
            break;
        }
        if (!ok(w, ret, "vfio_get", i)) {
            continue;
        }
        FUZZ_ASSERT(vi.name && strlen(vi.name) == vi.name_len);
        ret = cprs_reader_vfio_find(w->r, vi.name, &idx);
        find_result(w, ret, idx, i, n, "vfio_find");
    }
    for (k = 0; k < w->n_keys; k++) {
        FUZZ_ASSERT(cprs_reader_vfio_find(w->r, w->keys[k], &idx) <= 0);
    }
}

/*
 * Both payload accessors agree: _data() (decompressed once, cached) and
 * _read() (decompressed into the caller's buffer) give the same verdict
 * and the same raw_size bytes.
 */
static void walk_payload(Walk *w, uint32_t i, const CprsDevStateInfo *di)
{
    const void *data = NULL;
    size_t size = 0, got = 0;
    uint8_t *buf;
    int rd, rr;

    rd = cprs_reader_devstate_data(w->r, i, &data, &size);
    if (rd == -EPROTONOSUPPORT && !w->must) {
        return;     /* built without zstd */
    }
    if (!ok(w, rd, "devstate_data", i)) {
        bool budget = over_budget(w, rd);

        buf = malloc(di->raw_size ? (size_t)di->raw_size : 1);
        FUZZ_ASSERT(buf);
        rr = cprs_reader_devstate_read(w->r, i, buf, (size_t)di->raw_size,
                                       &got);
        free(buf);
        /*
         * The same verdict, unless _data() had no room left to keep the
         * bytes: _read() keeps nothing and needs room for the decoder
         * only, so it may then succeed (or fail for the budget too).
         */
        FUZZ_ASSERT_MSG(rr == rd || (budget && rr == 0),
                        "devstate_read %d but devstate_data %d", rr, rd);
        return;
    }
    FUZZ_ASSERT(size == di->raw_size);
    FUZZ_ASSERT(data || !size);
    /* A second call hands out the same bytes (cached or in place). */
    {
        const void *again = NULL;
        size_t again_size = 0;

        FUZZ_ASSERT(cprs_reader_devstate_data(w->r, i, &again,
                                              &again_size) == 0);
        FUZZ_ASSERT(again == data && again_size == size);
    }
    buf = malloc(size + 1);
    FUZZ_ASSERT(buf);
    if (size) {
        FUZZ_ASSERT(cprs_reader_devstate_read(w->r, i, buf, size - 1,
                                              NULL) == -EINVAL);
    }
    rr = cprs_reader_devstate_read(w->r, i, buf, size + 1, &got);
    FUZZ_ASSERT_MSG(rr == 0, "devstate_read failed (%d) where devstate_data "
                    "succeeded", rr);
    FUZZ_ASSERT(got == size);
    FUZZ_ASSERT_MSG(!size || !memcmp(buf, data, size),
                    "devstate_read and devstate_data differ");
    free(buf);
}

static void walk_devstate(Walk *w)
{
    uint32_t n = cprs_reader_devstate_count(w->r), i, idx;
    CprsDevStateInfo di;
    size_t k;
    int ret;

    for (i = 0; i <= n; i++) {
        di = CPRS_OPTS(CprsDevStateInfo);
        ret = cprs_reader_devstate_get(w->r, i, &di);
        if (i == n) {
            FUZZ_ASSERT(ret == -EINVAL);
            break;
        }
        if (!ok(w, ret, "devstate_get", i)) {
            continue;
        }
        FUZZ_ASSERT(di.name && strlen(di.name) == di.name_len);
        FUZZ_ASSERT(di.raw_size <= FUZZ_MAX_PAYLOAD);
        ret = cprs_reader_devstate_find(w->r, di.name, di.instance_id, &idx);
        find_result(w, ret, idx, i, n, "devstate_find");
        walk_payload(w, i, &di);
    }
    for (k = 0; k < w->n_keys; k++) {
        FUZZ_ASSERT(cprs_reader_devstate_find(w->r, w->keys[k],
                                              (uint32_t)w->ids[k], &idx) <= 0);
    }
}

uint32_t fuzz_walk_reader(CprsReader *r, const char *const *keys,
                          const int32_t *ids, size_t n_keys,
                          bool must_succeed)
{
    Walk w = { .r = r, .keys = keys, .ids = ids, .n_keys = n_keys,
               .must = must_succeed, .budget = 4096 };
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsSectionInfo si;
    const void *bytes;
    size_t size = 0;
    uint32_t i, n;

    FUZZ_ASSERT(cprs_reader_get_info(r, &ai) == 0);
    bytes = cprs_reader_bytes(r, &size);
    FUZZ_ASSERT(bytes && size == ai.arena_size);
    FUZZ_ASSERT(ai.producer[CPRS_PRODUCER_MAX - 1] == '\0');
    FUZZ_ASSERT(ai.build_id_size <= CPRS_BUILD_ID_MAX);
    (void)cprs_mode_name(ai.mode);
    n = cprs_reader_section_count(r);
    FUZZ_ASSERT(n == ai.section_count && n <= CPRS_MAX_SECTIONS);
    for (i = 0; i <= n; i++) {
        si = CPRS_OPTS(CprsSectionInfo);
        if (i == n) {
            FUZZ_ASSERT(cprs_reader_section_get(r, i, &si) == -EINVAL);
            break;
        }
        FUZZ_ASSERT(cprs_reader_section_get(r, i, &si) == 0);
        FUZZ_ASSERT(si.offset <= size && si.stored_size <= size - si.offset);
        (void)cprs_section_type_name(si.type);
    }
    walk_fds(&w);
    walk_ramblocks(&w);
    walk_vfio(&w);
    walk_devstate(&w);
    /* Misuse of an open reader: -EINVAL, nothing else. */
    {
        const void *p;
        size_t len;
        uint32_t idx;

        FUZZ_ASSERT(cprs_reader_fd_get(r, 0, NULL) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_ramblock_get(r, 0, NULL) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_gpa_range_get(r, 0, 0, NULL) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_vfio_get(r, 0, NULL) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_devstate_get(r, 0, NULL) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_devstate_data(r, 0, NULL, &len) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_devstate_data(r, 0, &p, NULL) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_devstate_read(r, 0, NULL, 1, NULL) ==
                    -EINVAL);
        FUZZ_ASSERT(cprs_reader_fd_find(r, NULL, 0, &idx) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_ramblock_find(r, "x", NULL) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_vfio_find(r, NULL, &idx) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_devstate_find(r, NULL, 0, &idx) == -EINVAL);
        FUZZ_ASSERT(cprs_reader_section_get(r, 0, NULL) == -EINVAL);
    }
    for (i = 0; i <= CPRS_FD_KIND__MAX; i++) {
        (void)cprs_fd_kind_name(i);
    }
    return w.failed;
}

/* ---- Model ------------------------------------------------------------- */

void fuzz_model_free(FuzzModel *m)
{
    uint32_t i;

    for (i = 0; m->fd_names && i < m->n_fds; i++) {
        free(m->fd_names[i]);
    }
    for (i = 0; m->blocks && i < m->n_blocks; i++) {
        free(m->blocks[i].idstr);
        free(m->blocks[i].ranges);
    }
    for (i = 0; m->vfio_names && i < m->n_vfio; i++) {
        free(m->vfio_names[i]);
    }
    for (i = 0; m->ds && i < m->n_ds; i++) {
        free(m->ds[i].name);
        free(m->ds[i].data);
    }
    free(m->fds);
    free(m->fd_names);
    free(m->blocks);
    free(m->vfio);
    free(m->vfio_names);
    free(m->ds);
    memset(m, 0, sizeof(*m));
}

static char *dup_str(const char *s)
{
    char *d = strdup(s);

    FUZZ_ASSERT(d);
    return d;
}

static void *alloc_n(size_t n, size_t elem)
{
    void *p = calloc(n ? n : 1, elem);

    FUZZ_ASSERT(p);
    return p;
}

int fuzz_model_from_reader(CprsReader *r, FuzzModel *m)
{
    CprsSectionInfo si;
    uint32_t i, k;
    const void *data;
    size_t size;
    int ret;

    memset(m, 0, sizeof(*m));
    m->info = CPRS_OPTS(CprsArenaInfo);
    FUZZ_ASSERT(cprs_reader_get_info(r, &m->info) == 0);
    for (i = 0; i < cprs_reader_section_count(r); i++) {
        si = CPRS_OPTS(CprsSectionInfo);
        FUZZ_ASSERT(cprs_reader_section_get(r, i, &si) == 0);
        if (si.type == CPRS_SECTION_INDEX) {
            m->n_index++;
        } else if ((si.flags & CPRS_SECTION_F_ZSTD) &&
                   si.type < CPRS_SECTION__MAX) {
            m->compressed |= 1u << si.type;
        }
    }
    m->n_fds = cprs_reader_fd_count(r);
    m->fds = alloc_n(m->n_fds, sizeof(*m->fds));
    m->fd_names = alloc_n(m->n_fds, sizeof(*m->fd_names));
    for (i = 0; i < m->n_fds; i++) {
        m->fds[i] = CPRS_OPTS(CprsFdInfo);
        ret = cprs_reader_fd_get(r, i, &m->fds[i]);
        if (ret) {
            goto fail;
        }
        m->fd_names[i] = dup_str(m->fds[i].name);
        m->fds[i].name = m->fd_names[i];
    }
    m->n_blocks = cprs_reader_ramblock_count(r);
    m->blocks = alloc_n(m->n_blocks, sizeof(*m->blocks));
    for (i = 0; i < m->n_blocks; i++) {
        FuzzBlock *b = &m->blocks[i];

        b->info = CPRS_OPTS(CprsRamBlockInfo);
        ret = cprs_reader_ramblock_get(r, i, &b->info);
        if (ret) {
            goto fail;
        }
        b->idstr = dup_str(b->info.idstr);
        b->info.idstr = b->idstr;
        b->ranges = alloc_n(b->info.range_count, sizeof(*b->ranges));
        for (k = 0; k < b->info.range_count; k++) {
            ret = cprs_reader_gpa_range_get(r, i, k, &b->ranges[k]);
            if (ret) {
                goto fail;
            }
        }
    }
    m->n_vfio = cprs_reader_vfio_count(r);
    m->vfio = alloc_n(m->n_vfio, sizeof(*m->vfio));
    m->vfio_names = alloc_n(m->n_vfio, sizeof(*m->vfio_names));
    for (i = 0; i < m->n_vfio; i++) {
        m->vfio[i] = CPRS_OPTS(CprsVfioDeviceInfo);
        ret = cprs_reader_vfio_get(r, i, &m->vfio[i]);
        if (ret) {
            goto fail;
        }
        m->vfio_names[i] = dup_str(m->vfio[i].name);
        m->vfio[i].name = m->vfio_names[i];
    }
    m->n_ds = cprs_reader_devstate_count(r);
    m->ds = alloc_n(m->n_ds, sizeof(*m->ds));
    for (i = 0; i < m->n_ds; i++) {
        FuzzPayload *p = &m->ds[i];

        p->info = CPRS_OPTS(CprsDevStateInfo);
        ret = cprs_reader_devstate_get(r, i, &p->info);
        if (!ret) {
            ret = cprs_reader_devstate_data(r, i, &data, &size);
        }
        if (ret) {
            goto fail;
        }
        p->name = dup_str(p->info.name);
        p->info.name = p->name;
        p->data = alloc_n(size, 1);
        memcpy(p->data, data, size);
    }
    return 0;

fail:
    fuzz_model_free(m);
    return ret;
}

int fuzz_model_write(const FuzzModel *m, int32_t zstd_level,
                     void **ret_buf, size_t *ret_size)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
        .mode = m->info.mode,
        .flags = CPRS_WRITER_F_REPRODUCIBLE,
        .generation = m->info.generation,
        .created_ns = m->info.created_ns,
        .writer_pid = m->info.writer_pid,
        .build_id_size = m->info.build_id_size,
        .build_id = m->info.build_id_size ? m->info.build_id : NULL,
        .producer = m->info.producer,
        .zstd_level = zstd_level,
        .compress_sections = m->compressed);
    CprsWriter *w;
    CprsDevStateInfo di;
    uint32_t i;
    int ret;

    /*
     * A newer minor may carry a mode a v1.0 writer cannot write (0 would
     * silently become cpr-exec).
     */
    if (m->info.mode != CPRS_MODE_EXEC && m->info.mode != CPRS_MODE_TRANSFER) {
        return -EINVAL;
    }
    if (!m->n_index) {
        o.flags |= CPRS_WRITER_F_NO_INDEX;
    }
    ret = cprs_writer_new(&o, &w);
    if (ret) {
        return ret;
    }
    for (i = 0; !ret && i < m->n_fds; i++) {
        ret = cprs_writer_add_fd(w, &m->fds[i], NULL);
    }
    for (i = 0; !ret && i < m->n_blocks; i++) {
        ret = cprs_writer_add_ramblock(w, &m->blocks[i].info,
                                       m->blocks[i].ranges,
                                       m->blocks[i].info.range_count, NULL);
    }
    for (i = 0; !ret && i < m->n_vfio; i++) {
        ret = cprs_writer_add_vfio(w, &m->vfio[i], NULL);
    }
    for (i = 0; !ret && i < m->n_ds; i++) {
        di = m->ds[i].info;
        ret = cprs_writer_add_devstate(w, &di, m->ds[i].data,
                                       (size_t)di.raw_size, NULL);
    }
    if (!ret) {
        ret = cprs_writer_finish_buffer(w, ret_buf, ret_size);
    }
    cprs_writer_free(w);
    return ret;
}

void fuzz_model_assert_equal(const FuzzModel *a, const FuzzModel *b,
                             bool same_flags)
{
    uint32_t i, k;

    FUZZ_ASSERT(a->info.mode == b->info.mode);
    FUZZ_ASSERT(a->info.generation == b->info.generation);
    FUZZ_ASSERT(a->n_fds == b->n_fds && a->n_blocks == b->n_blocks &&
                a->n_vfio == b->n_vfio && a->n_ds == b->n_ds);
    for (i = 0; i < a->n_fds; i++) {
        const CprsFdInfo *x = &a->fds[i], *y = &b->fds[i];

        FUZZ_ASSERT_MSG(!strcmp(x->name, y->name) && x->id == y->id &&
                        x->slot == y->slot && x->fd == y->fd &&
                        x->kind == y->kind && x->flags == y->flags &&
                        x->seals == y->seals && x->st_mode == y->st_mode &&
                        x->dev == y->dev && x->ino == y->ino &&
                        x->size == y->size, "fd record %u differs", i);
    }
    for (i = 0; i < a->n_blocks; i++) {
        const CprsRamBlockInfo *x = &a->blocks[i].info;
        const CprsRamBlockInfo *y = &b->blocks[i].info;

        FUZZ_ASSERT_MSG(!strcmp(x->idstr, y->idstr) &&
                        x->fd_index == y->fd_index && x->flags == y->flags &&
                        x->range_count == y->range_count &&
                        x->fd_offset == y->fd_offset &&
                        x->used_length == y->used_length &&
                        x->max_length == y->max_length &&
                        x->page_size == y->page_size && x->align == y->align,
                        "RAM block %u differs", i);
        for (k = 0; k < x->range_count; k++) {
            const CprsGpaRange *p = &a->blocks[i].ranges[k];
            const CprsGpaRange *q = &b->blocks[i].ranges[k];

            FUZZ_ASSERT_MSG(p->gpa == q->gpa && p->size == q->size &&
                            p->block_offset == q->block_offset,
                            "GPA range %u of block %u differs", k, i);
        }
    }
    for (i = 0; i < a->n_vfio; i++) {
        const CprsVfioDeviceInfo *x = &a->vfio[i], *y = &b->vfio[i];

        FUZZ_ASSERT_MSG(!strcmp(x->name, y->name) && x->devid == y->devid &&
                        x->ioas_id == y->ioas_id && x->hwpt_id == y->hwpt_id,
                        "vfio device %u differs", i);
    }
    for (i = 0; i < a->n_ds; i++) {
        const FuzzPayload *x = &a->ds[i], *y = &b->ds[i];

        FUZZ_ASSERT_MSG(!strcmp(x->name, y->name) &&
                        x->info.instance_id == y->info.instance_id &&
                        x->info.version_id == y->info.version_id &&
                        x->info.raw_size == y->info.raw_size &&
                        (!same_flags || x->info.flags == y->info.flags),
                        "device state %u differs", i);
        FUZZ_ASSERT_MSG(!x->info.raw_size ||
                        !memcmp(x->data, y->data, (size_t)x->info.raw_size),
                        "payload %u bytes differ", i);
    }
}

bool fuzz_send_msg(int sock, const uint8_t *p, size_t len, const int *fds,
                   uint32_t nfds)
{
    union {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(FUZZ_MAX_SEND_FDS * sizeof(int))];
    } ctl;
    struct iovec iov = { (void *)p, len };
    struct msghdr msg;
    struct cmsghdr *cm;

    if (nfds > FUZZ_MAX_SEND_FDS) {
        return false;
    }
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }
    /* Never block: everything is queued before the receiver runs. */
    return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len;
}
