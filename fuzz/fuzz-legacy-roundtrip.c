/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-legacy-roundtrip.c - differential: legacy -> arena -> legacy gives
 * the same bytes (spec/qemu-legacy-stream.rst L10, L11).
 *
 * For an input that decodes strictly (any vfio subsection form):
 *   - encoding it again gives exactly the input;
 *   - converting it to an arena gives an arena that opens and verifies
 *     (unless the stream has duplicate keys, which the arena refuses and
 *     the decoder must have warned about);
 *   - converting that arena back gives exactly the input again.
 * For an input that only decodes leniently, the encoding is canonical:
 * it decodes (all forms) to the same records, strictly unless a name has
 * a byte outside printable ASCII, and encodes again to the same bytes.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"

static CprsLegacy *decode(const void *buf, size_t size, uint32_t flags,
                          int *ret_err)
{
    CprsLegacyOpts o = CPRS_OPTS(CprsLegacyOpts, .flags = flags);
    CprsLegacy *lg = NULL;

    *ret_err = cprs_legacy_decode(buf, size, &o, NULL, &lg);
    return *ret_err ? NULL : lg;
}

static void encode(CprsLegacy *lg, void **ret_buf, size_t *ret_size)
{
    int ret = cprs_legacy_encode(lg, NULL, ret_buf, ret_size);

    FUZZ_ASSERT_MSG(ret == 0, "encoding a decoded stream failed: %d", ret);
}

static bool same_bytes(const void *a, size_t na, const void *b, size_t nb)
{
    return na == nb && !memcmp(a, b, na);
}

static void same_records(CprsLegacy *a, CprsLegacy *b)
{
    CprsLegacyInfo x = CPRS_OPTS(CprsLegacyInfo);
    CprsLegacyInfo y = CPRS_OPTS(CprsLegacyInfo);
    CprsFdInfo f, g;
    CprsVfioDeviceInfo v, w;
    uint32_t i;

    FUZZ_ASSERT(!cprs_legacy_get_info(a, &x) && !cprs_legacy_get_info(b, &y));
    FUZZ_ASSERT(x.mode == y.mode && x.vfio_form == y.vfio_form);
    FUZZ_ASSERT(x.fd_count == y.fd_count && x.vfio_count == y.vfio_count);
    for (i = 0; i < x.fd_count; i++) {
        f = CPRS_OPTS(CprsFdInfo);
        g = CPRS_OPTS(CprsFdInfo);
        FUZZ_ASSERT(!cprs_legacy_fd_get(a, i, &f) &&
                    !cprs_legacy_fd_get(b, i, &g));
        FUZZ_ASSERT(f.name_len == g.name_len &&
                    !memcmp(f.name, g.name, f.name_len));
        FUZZ_ASSERT(f.id == g.id && f.fd == g.fd);
    }
    for (i = 0; i < x.vfio_count; i++) {
        v = CPRS_OPTS(CprsVfioDeviceInfo);
        w = CPRS_OPTS(CprsVfioDeviceInfo);
        FUZZ_ASSERT(!cprs_legacy_vfio_get(a, i, &v) &&
                    !cprs_legacy_vfio_get(b, i, &w));
        FUZZ_ASSERT(v.name_len == w.name_len &&
                    !memcmp(v.name, w.name, v.name_len));
        FUZZ_ASSERT(v.devid == w.devid && v.ioas_id == w.ioas_id &&
                    v.hwpt_id == w.hwpt_id);
    }
}

/* Every name is one the arena (and strict decoding) accepts. */
static bool names_printable(CprsLegacy *lg)
{
    CprsFdInfo f;
    CprsVfioDeviceInfo v;
    uint32_t i, k;

    for (i = 0; i < cprs_legacy_fd_count(lg); i++) {
        f = CPRS_OPTS(CprsFdInfo);
        FUZZ_ASSERT(cprs_legacy_fd_get(lg, i, &f) == 0);
        if (!f.name_len) {
            return false;
        }
        for (k = 0; k < f.name_len; k++) {
            if (f.name[k] < 0x20 || f.name[k] > 0x7e) {
                return false;
            }
        }
    }
    for (i = 0; i < cprs_legacy_vfio_count(lg); i++) {
        v = CPRS_OPTS(CprsVfioDeviceInfo);
        FUZZ_ASSERT(cprs_legacy_vfio_get(lg, i, &v) == 0);
        if (!v.name_len) {
            return false;
        }
        for (k = 0; k < v.name_len; k++) {
            if (v.name[k] < 0x20 || v.name[k] > 0x7e) {
                return false;
            }
        }
    }
    return true;
}

/* legacy -> arena -> legacy, for a strictly decoded stream. */
static void via_arena(CprsLegacy *lg, const uint8_t *data, size_t size)
{
    CprsLegacyInfo li = CPRS_OPTS(CprsLegacyInfo);
    CprsWriterOpts wo = CPRS_OPTS(CprsWriterOpts,
                                  .flags = CPRS_WRITER_F_REPRODUCIBLE);
    CprsReaderOpts ro = fuzz_reader_opts(0);
    CprsLegacyOpts lo;
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    CprsWriter *w;
    CprsReader *r;
    CprsLegacy *back;
    void *arena, *out;
    size_t asize, osize;
    int ret;

    FUZZ_ASSERT(cprs_legacy_get_info(lg, &li) == 0);
    ret = cprs_legacy_to_arena(lg, &wo, &diag, &w);
    if (ret) {
        /* The arena needs unique keys; QEMU's stream does not. */
        FUZZ_ASSERT_MSG(ret == -EEXIST && li.warning_count > 0,
                        "legacy -> arena refused a strict stream (%d): %s",
                        ret, diag.reason);
        return;
    }
    ret = cprs_writer_finish_buffer(w, &arena, &asize);
    cprs_writer_free(w);
    FUZZ_ASSERT(ret == 0);
    ret = cprs_reader_open_buffer(arena, asize, &ro, &diag, &r);
    FUZZ_ASSERT_MSG(ret == 0, "converted arena does not open: %s",
                    diag.reason);
    ret = cprs_reader_verify(r, &diag);
    FUZZ_ASSERT_MSG(ret == 0, "converted arena does not verify: %s",
                    diag.reason);
    FUZZ_ASSERT(cprs_reader_fd_count(r) == li.fd_count);
    FUZZ_ASSERT(cprs_reader_vfio_count(r) == li.vfio_count);

    lo = CPRS_OPTS(CprsLegacyOpts, .vfio_form = li.vfio_form);
    ret = cprs_legacy_from_reader(r, &lo, &diag, &back);
    FUZZ_ASSERT_MSG(ret == 0, "arena -> legacy failed (%d): %s", ret,
                    diag.reason);
    encode(back, &out, &osize);
    FUZZ_ASSERT_MSG(same_bytes(out, osize, data, size),
                    "legacy -> arena -> legacy changed the bytes");
    free(out);
    cprs_legacy_free(back);
    cprs_reader_close(r);
    free(arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CprsLegacy *lg, *back, *strict;
    void *out, *again;
    size_t osize, asize;
    int ret;

    if (fuzz_outside_size_range(size, 0, FUZZ_LEGACY_MAX_INPUT)) {
        return 0;
    }

    lg = decode(data, size, CPRS_LEGACY_F_ALL_FORMS, &ret);
    if (lg) {
        /* Strict: the input is canonical; the encoder reproduces it. */
        encode(lg, &out, &osize);
        FUZZ_ASSERT_MSG(same_bytes(out, osize, data, size),
                        "decode -> encode of a strict stream changed it");
        free(out);
        via_arena(lg, data, size);
        cprs_legacy_free(lg);
        return 0;
    }

    lg = decode(data, size, CPRS_LEGACY_F_LENIENT | CPRS_LEGACY_F_ALL_FORMS,
                &ret);
    if (!lg) {
        return 0;
    }
    encode(lg, &out, &osize);
    back = decode(out, osize, CPRS_LEGACY_F_LENIENT |
                  CPRS_LEGACY_F_ALL_FORMS, &ret);
    FUZZ_ASSERT_MSG(back, "the encoding of a lenient decode does not decode "
                    "(%d)", ret);
    same_records(lg, back);
    encode(back, &again, &asize);
    FUZZ_ASSERT_MSG(same_bytes(out, osize, again, asize),
                    "encoding is not idempotent");
    strict = decode(out, osize, CPRS_LEGACY_F_ALL_FORMS, &ret);
    FUZZ_ASSERT_MSG(strict || !names_printable(lg), "the canonical encoding "
                    "of printable records fails strict decoding (%d)", ret);
    if (strict) {
        same_records(lg, strict);
        cprs_legacy_free(strict);
    }
    free(again);
    free(out);
    cprs_legacy_free(back);
    cprs_legacy_free(lg);
    return 0;
}
