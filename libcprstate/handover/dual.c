/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dual.c - the dual stream (spec/fail-safe.rst F4): one memfd that QEMU's
 * own reader reads as its QCPR stream and libcprstate as an arena.
 *
 *   [0, L)          QCPR stream, full vfio form, cpr-exec variant
 *   [L, A)          zero bytes, A = L rounded up to 8
 *   [A, A + S)      a complete arena (S = its arena_size)
 *   [A + S, +48)    CprsWireDualTrailer, the last bytes of the memfd
 *
 * QEMU's reader stops at the first byte after the vfio list that is not
 * 0x05 (a zero byte of padding, or the arena's 0x89) and never reads
 * further; a QEMU built without iommufd stops one byte earlier, at the
 * list's 0x00.  libcprstate finds the arena through the trailer and
 * loads it only if the two parts hold the same records (F4.3).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cprs-failsafe.h"

static void trailer_crc(CprsWireDualTrailer *t)
{
    cprs_le32_set(&t->crc32c, 0);
    cprs_le32_set(&t->crc32c, cprs_crc32c(0, t, sizeof(*t)));
}

int cprs_dual_compose(const void *legacy, size_t legacy_size,
                      const void *arena, size_t arena_size, void **ret_buf,
                      size_t *ret_size)
{
    CprsWireDualTrailer t;
    uint64_t aoff = cprs_align_up(legacy_size), total;
    uint8_t *buf;

    if (!legacy || !arena || !ret_buf || !ret_size ||
        !cprs_add_ok(aoff, arena_size, &total) ||
        !cprs_add_ok(total, sizeof(t), &total) || total > SIZE_MAX) {
        return -EINVAL;
    }
    /* malloc() aligns to 16: the arena part is 8-aligned in memory too. */
    buf = calloc(1, (size_t)total);
    if (!buf) {
        return -ENOMEM;
    }
    memcpy(buf, legacy, legacy_size);
    memcpy(buf + aoff, arena, arena_size);
    memset(&t, 0, sizeof(t));
    memcpy(t.magic, CPRS_DUAL_MAGIC, sizeof(t.magic));
    cprs_le16_set(&t.version_major, CPRS_DUAL_VERSION_MAJOR);
    cprs_le16_set(&t.version_minor, CPRS_DUAL_VERSION_MINOR);
    cprs_le32_set(&t.trailer_size, sizeof(t));
    cprs_le64_set(&t.legacy_size, legacy_size);
    cprs_le64_set(&t.arena_offset, aoff);
    cprs_le64_set(&t.arena_size, arena_size);
    trailer_crc(&t);
    memcpy(buf + aoff + arena_size, &t, sizeof(t));
    *ret_buf = buf;
    *ret_size = (size_t)total;
    return 0;
}

bool cprs_dual_probe(const void *buf, size_t size)
{
    return buf && size >= sizeof(CprsWireDualTrailer) &&
           !memcmp((const uint8_t *)buf + size - sizeof(CprsWireDualTrailer),
                   CPRS_DUAL_MAGIC, CPRS_MAGIC_SIZE);
}

/*
 * spec F4.2: the trailer @t (a copy, read once) of an input of @size
 * bytes, and the layout it describes, short of the bytes it points at.
 * Fills @di.  Diagnostic offsets are those of the input.
 */
static int trailer_check(const CprsWireDualTrailer *tp, uint64_t size,
                         CprsDualInfo *di, CprsDiag *diag)
{
    CprsWireDualTrailer t = *tp;
    uint64_t toff = size - sizeof(t), lsize, aoff, asize, end;
    uint32_t crc;

#define FAIL(err, field, clause, why) \
    cprs_diag_set(diag, (err), toff + offsetof(CprsWireDualTrailer, field), \
                  -1, -1, (clause), (why))

    if (cprs_le16_get(&t.version_major) != CPRS_DUAL_VERSION_MAJOR) {
        return FAIL(cprs_le16_get(&t.version_major) ? -EPROTONOSUPPORT :
                    -EBADMSG, version_major, "F4.2",
                    "dual trailer of an unknown major version");
    }
    if (cprs_le32_get(&t.trailer_size) != sizeof(t)) {
        return FAIL(-EBADMSG, trailer_size, "F4.2",
                    "dual trailer size is not 48");
    }
    crc = cprs_le32_get(&t.crc32c);
    trailer_crc(&t);
    if (cprs_le32_get(&t.crc32c) != crc) {
        return FAIL(-EBADMSG, crc32c, "F4.2", "dual trailer CRC mismatch");
    }
    if (cprs_le32_get(&t.flags)) {
        return FAIL(-EBADMSG, flags, "F4.2", "dual trailer flags not zero");
    }
    lsize = cprs_le64_get(&t.legacy_size);
    aoff = cprs_le64_get(&t.arena_offset);
    asize = cprs_le64_get(&t.arena_size);
    /* spec F4.2: the parts tile the input exactly, in order. */
    if (lsize < 8 || lsize > toff || aoff != cprs_align_up(lsize)) {
        return FAIL(-EBADMSG, arena_offset, "F4.2",
                    "dual stream parts do not follow each other");
    }
    if (asize < CPRS_HEADER_V1_SIZE || !cprs_aligned(asize) ||
        !cprs_add_ok(aoff, asize, &end) || end != toff) {
        return FAIL(-EBADMSG, arena_size, "F4.2",
                    "the arena does not end where the trailer starts");
    }
#undef FAIL
    di->legacy_size = lsize;
    di->arena_offset = aoff;
    di->arena_size = asize;
    di->size = size;
    return 0;
}

int cprs_dual_locate(const void *buf, size_t size, CprsDualInfo *info,
                     CprsDiag *diag)
{
    const uint8_t *p = buf;
    CprsWireDualTrailer t;
    CprsDualInfo di = { .sz = sizeof(di) };
    CprsLe64 hsize;
    uint64_t i;
    int ret;

    if ((!buf && size) || !info) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    if (!cprs_dual_probe(buf, size)) {
        return cprs_diag_set(diag, -ENOENT, 0, -1, -1, "F4.2",
                             "no dual stream trailer");
    }
    /* Read once; validate and use the copy (STYLE 4). */
    memcpy(&t, p + size - sizeof(t), sizeof(t));
    ret = trailer_check(&t, size, &di, diag);
    if (ret) {
        return ret;
    }
    for (i = di.legacy_size; i < di.arena_offset; i++) {
        if (p[i]) {
            return cprs_diag_set(diag, -EBADMSG, i, -1, -1, "F4.2",
                                 "dual stream padding is not zero");
        }
    }
    if (memcmp(p, "QCPR", 4)) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, -1, "F4.2",
                             "a dual stream starts with a QCPR stream");
    }
    if (memcmp(p + di.arena_offset, CPRS_MAGIC, CPRS_MAGIC_SIZE)) {
        return cprs_diag_set(diag, -EBADMSG, di.arena_offset, -1, -1,
                             "F4.2", "no arena where the trailer says");
    }
    /* The arena's own size field must say the same (3.6). */
    memcpy(&hsize, p + di.arena_offset + offsetof(CprsWireHeader,
                                                  arena_size),
           sizeof(hsize));
    if (cprs_le64_get(&hsize) != di.arena_size) {
        return cprs_diag_set(diag, -EBADMSG, di.arena_offset +
                             offsetof(CprsWireHeader, arena_size), -1, -1,
                             "F4.2", "the arena's size differs from the "
                             "trailer's");
    }
    return cprs_info_fill(info, &di, sizeof(di));
}

int cprs_dual_check(CprsReader *r, const CprsLegacy *l, CprsDiag *diag)
{
    CprsArenaInfo ai = CPRS_OPTS(CprsArenaInfo);
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsFdInfo a, b;
    CprsVfioDeviceInfo va, vb;
    uint64_t off;
    uint32_t i, n;
    int ret;

#define DIFF(index, why) \
    cprs_diag_set(diag, -EBADMSG, off, -1, (index), "F4.3", (why))

    if (!r || !l || cprs_reader_get_info(r, &ai) ||
        cprs_legacy_get_info(l, &li)) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "", "bad arguments");
    }
    off = 0;
    if (ai.mode != CPRS_MODE_EXEC || li.mode != CPRS_MODE_EXEC) {
        return DIFF(-1, "a dual stream is for cpr-exec only");
    }
    if (li.vfio_form != CPRS_LEGACY_VFIO_FULL) {
        return DIFF(-1, "the QCPR part of a dual stream has the full vfio "
                    "form");
    }
    n = cprs_reader_fd_count(r);
    if (n != li.fd_count) {
        return DIFF(-1, "the two parts have different numbers of fd "
                    "records");
    }
    for (i = 0; i < n; i++) {
        a = CPRS_OPTS(CprsFdInfo);
        b = CPRS_OPTS(CprsFdInfo);
        ret = cprs_reader_fd_get(r, i, &a);
        if (ret) {
            return cprs_diag_set(diag, ret, 0, -1, i, "F4.3",
                                 "an fd record of the arena part is bad");
        }
        cprs_legacy_fd_get(l, i, &b);
        if (cprs_legacy_fd_offset(l, i, &off)) {
            off = 0;
        }
        if (a.name_len != b.name_len || memcmp(a.name, b.name, a.name_len) ||
            a.id != b.id || a.fd != b.fd) {
            return DIFF(i, "an fd record differs between the two parts");
        }
    }
    n = cprs_reader_vfio_count(r);
    off = 0;
    if (n != li.vfio_count) {
        return DIFF(-1, "the two parts have different numbers of vfio "
                    "records");
    }
    for (i = 0; i < n; i++) {
        va = CPRS_OPTS(CprsVfioDeviceInfo);
        vb = CPRS_OPTS(CprsVfioDeviceInfo);
        ret = cprs_reader_vfio_get(r, i, &va);
        if (ret) {
            return cprs_diag_set(diag, ret, 0, -1, i, "F4.3",
                                 "a vfio record of the arena part is bad");
        }
        cprs_legacy_vfio_get(l, i, &vb);
        if (cprs_legacy_vfio_offset(l, i, &off)) {
            off = 0;
        }
        if (va.name_len != vb.name_len ||
            memcmp(va.name, vb.name, va.name_len) || va.devid != vb.devid ||
            va.ioas_id != vb.ioas_id || va.hwpt_id != vb.hwpt_id) {
            return DIFF(i, "a vfio record differs between the two parts");
        }
    }
#undef DIFF
    return 0;
}

/* ---- The cpr-exec load path (F4.3) ------------------------------------- */

/* pread() all @len bytes at @off, or -EBADMSG at EOF, or -errno. */
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    ssize_t n;

    while (done < len) {
        n = pread(fd, (uint8_t *)buf + done, len - done,
                  (off_t)(off + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EBADMSG;
        }
        CPRS_WORK_ADD(CPRS_WORK_READ_BYTES, n);
        done += (size_t)n;
    }
    return 0;
}

/*
 * spec F4.3 step 1: the arena header at @aoff, read apart and checked
 * before anything is sized by the trailer: magic, major version,
 * header_size, header CRC (3.9), and an arena_size equal to the
 * trailer's @asize.  The reader checks the rest once the bytes are in.
 */
static int arena_header_check(int fd, uint64_t aoff, uint64_t asize,
                              CprsDiag *diag)
{
    static const uint8_t zero4[4];
    const size_t at = offsetof(CprsWireHeader, header_crc32c);
    uint8_t raw[CPRS_MAX_HEADER_SIZE];
    CprsWireHeader h;
    uint32_t hsize, crc;
    uint16_t major;
    int ret;

    ret = pread_all(fd, raw, CPRS_HEADER_V1_SIZE, aoff);
    if (ret) {
        return cprs_diag_set(diag, ret, aoff, -1, -1, "F4.3",
                             "cannot read the arena header of the dual "
                             "stream");
    }
    memcpy(&h, raw, sizeof(h));
    if (memcmp(h.magic, CPRS_MAGIC, CPRS_MAGIC_SIZE)) {
        return cprs_diag_set(diag, -EBADMSG, aoff, -1, -1, "F4.2",
                             "no arena where the trailer says");
    }
    major = cprs_le16_get(&h.version_major);
    if (major != CPRS_FORMAT_VERSION_MAJOR) {
        return cprs_diag_set(diag, major ? -EPROTONOSUPPORT : -EBADMSG,
                             aoff + offsetof(CprsWireHeader, version_major),
                             -1, -1, "3.3", major ? "newer major version" :
                             "major version 0 is invalid");
    }
    hsize = cprs_le32_get(&h.header_size);
    if (hsize < CPRS_HEADER_V1_SIZE || hsize > CPRS_MAX_HEADER_SIZE ||
        !cprs_aligned(hsize) || hsize > asize) {
        return cprs_diag_set(diag, -EBADMSG, aoff +
                             offsetof(CprsWireHeader, header_size), -1, -1,
                             "3.4", "header_size out of range");
    }
    ret = pread_all(fd, raw + CPRS_HEADER_V1_SIZE,
                    hsize - CPRS_HEADER_V1_SIZE, aoff + CPRS_HEADER_V1_SIZE);
    if (ret) {
        return cprs_diag_set(diag, ret, aoff + CPRS_HEADER_V1_SIZE, -1, -1,
                             "F4.3", "cannot read the arena header of the "
                             "dual stream");
    }
    crc = cprs_crc32c(cprs_crc32c(cprs_crc32c(0, raw, at), zero4, 4),
                      raw + at + 4, hsize - at - 4);
    if (crc != cprs_le32_get(&h.header_crc32c)) {
        return cprs_diag_set(diag, -EBADMSG, aoff + at, -1, -1, "3.9",
                             "header CRC32C mismatch");
    }
    if (cprs_le64_get(&h.arena_size) != asize) {
        return cprs_diag_set(diag, -EBADMSG, aoff +
                             offsetof(CprsWireHeader, arena_size), -1, -1,
                             "F4.2", "the arena's size differs from the "
                             "trailer's");
    }
    return 0;
}

int cprs_dual_load_fd(int fd, const CprsReaderOpts *ro, CprsDiag *diag,
                      void **ret_buf, CprsReader **ret_reader)
{
    CprsLegacyOpts lo = CPRS_OPTS(CprsLegacyOpts, .mode = CPRS_MODE_EXEC,
                                  .max_records = ro->max_records);
    CprsWireDualTrailer t;
    CprsDualInfo di = CPRS_OPTS(CprsDualInfo);
    CprsLegacy *l = NULL;
    CprsReader *r = NULL;
    struct stat st;
    uint64_t max = ro->max_arena_size ? ro->max_arena_size :
                   CPRS_MAX_ARENA_SIZE;
    uint64_t toff;
    size_t size;
    uint8_t *buf;
    int seals, ret;

    if (!(cprs_caps_self_flags() & CPRS_CAPS_F_DUAL) ||
        fstat(fd, &st) < 0 || (uint64_t)st.st_size < sizeof(t) ||
        pread(fd, &t, sizeof(t), st.st_size - (off_t)sizeof(t)) !=
        (ssize_t)sizeof(t) || memcmp(t.magic, CPRS_DUAL_MAGIC,
                                     sizeof(t.magic))) {
        return -ENOENT;
    }
    CPRS_WORK_ADD(CPRS_WORK_READ_BYTES, sizeof(t));
    /* Read whole into our memory, so sealing is what makes it final. */
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW |
                               F_SEAL_WRITE)) !=
        (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)) {
        return cprs_diag_set(diag, -EPERM, 0, -1, -1, "8.5",
                             "the dual stream memfd is not sealed against "
                             "write, grow and shrink");
    }
    /*
     * spec F4.3 step 1: the trailer in hand and the arena header it
     * points at are checked before anything is allocated or read whole.
     */
    ret = trailer_check(&t, (uint64_t)st.st_size, &di, diag);
    if (ret) {
        return ret;
    }
    toff = (uint64_t)st.st_size - sizeof(t);
    if (di.legacy_size > CPRS_LEGACY_MAX_SIZE) {
        return cprs_diag_set(diag, -E2BIG, toff +
                             offsetof(CprsWireDualTrailer, legacy_size), -1,
                             -1, "F4.3", "the QCPR part of the dual stream "
                             "is over CPRS_LEGACY_MAX_SIZE");
    }
    if (di.arena_size > max || (uint64_t)st.st_size > SIZE_MAX) {
        return cprs_diag_set(diag, -E2BIG, toff +
                             offsetof(CprsWireDualTrailer, arena_size), -1,
                             -1, "7", "the arena part of the dual stream is "
                             "over the arena size limit");
    }
    ret = arena_header_check(fd, di.arena_offset, di.arena_size, diag);
    if (ret) {
        return ret;
    }
    size = (size_t)st.st_size;
    buf = malloc(size);
    if (!buf) {
        return cprs_diag_set(diag, -ENOMEM, 0, -1, -1, "", "out of memory");
    }
    CPRS_WORK_ALLOC(size);
    ret = pread_all(fd, buf, size, 0);
    if (ret) {
        cprs_diag_set(diag, ret, 0, -1, -1, "11.1",
                      "cannot read the dual stream");
        free(buf);
        return ret;
    }
    ret = cprs_dual_locate(buf, size, &di, diag);
    if (!ret) {
        /* The QCPR part as QEMU 10.2 with iommufd writes it, exactly. */
        ret = cprs_legacy_decode(buf, (size_t)di.legacy_size, &lo, diag, &l);
    }
    if (!ret) {
        ret = cprs_reader_open_buffer(buf + di.arena_offset,
                                      (size_t)di.arena_size, ro, diag, &r);
        if (ret && diag) {
            diag->offset += di.arena_offset;
        }
    }
    if (!ret) {
        ret = cprs_reader_verify(r, diag);
        if (ret && diag) {
            diag->offset += di.arena_offset;
        }
    }
    if (!ret) {
        ret = cprs_dual_check(r, l, diag);
    }
    cprs_legacy_free(l);
    if (ret) {
        cprs_reader_close(r);
        free(buf);
        return ret;
    }
    *ret_buf = buf;
    *ret_reader = r;
    return 0;
}
