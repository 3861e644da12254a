/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * section.c - access to section bytes, records and strings.
 *
 * A section's bytes are handed out only after its CRC32C has matched
 * (spec 4.7) and, for a zstd section, after it has decompressed to exactly
 * raw_size bytes (spec 5.2).  Both happen once, on first use, so opening
 * stays O(1) and nothing is read that is not needed.  Every record and
 * string accessor re-checks its own bounds, so the reader is memory-safe
 * whether or not cprs_reader_verify() ran.
 */
#include <stdlib.h>

#ifdef CPRS_HAVE_ZSTD
#include <zstd.h>
#endif

#include "cprs-reader.h"

bool cprs_zstd_is_skippable(const uint8_t *src, uint64_t src_size)
{
    uint32_t magic;

    if (src_size < 4) {
        return false;
    }
    /* Skippable frames use magics 0x184d2a50 to 0x184d2a5f, LE. */
    magic = (uint32_t)src[0] | (uint32_t)src[1] << 8 |
            (uint32_t)src[2] << 16 | (uint32_t)src[3] << 24;
    return (magic & 0xfffffff0u) == 0x184d2a50u;
}

int cprs_zstd_decompress_exact(const uint8_t *src, uint64_t src_size,
                               uint8_t *dst, uint64_t dst_size,
                               const char **ret_reason)
{
#ifdef CPRS_HAVE_ZSTD
    ZSTD_inBuffer in = { src, src_size, 0 };
    unsigned long long content;
    uint64_t total;
    ZSTD_DCtx *dctx;
    size_t frame, n;

    /* spec 5.3 rule 5: a skippable frame declares no content at all. */
    if (dst_size == 0 || cprs_zstd_is_skippable(src, src_size)) {
        *ret_reason = "zstd data is a skippable frame or has no content";
        return -EBADMSG;
    }
    /* spec 5.3: one frame, exactly src_size bytes. */
    frame = ZSTD_findFrameCompressedSize(src, src_size);
    if (ZSTD_isError(frame) || frame != src_size) {
        *ret_reason = "zstd data is not exactly one frame";
        return -EBADMSG;
    }
    /* spec 5.3: the frame declares its content size, equal to raw_size. */
    content = ZSTD_getFrameContentSize(src, src_size);
    if (content == ZSTD_CONTENTSIZE_UNKNOWN ||
        content == ZSTD_CONTENTSIZE_ERROR || content != dst_size) {
        *ret_reason = "zstd frame content size differs from raw_size";
        return -EBADMSG;
    }
    /*
     * spec 5.3 rule 4: decode the way full verification does (verify.c,
     * check_frame()): the streaming decoder, any window, output slices of
     * ZSTD_DStreamOutSize().  libzstd's one-shot and streaming decoders
     * disagree on some malformed frames (an empty compressed block), and
     * access must accept exactly what verify accepts.
     */
    dctx = ZSTD_createDCtx();
    if (dctx && ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax,
                                                    31))) {
        ZSTD_freeDCtx(dctx);
        dctx = NULL;
    }
    if (!dctx) {
        *ret_reason = "out of memory";
        return -ENOMEM;
    }
    for (n = 1, total = 0; n != 0;) {
        ZSTD_outBuffer out = { dst + total, dst_size - total, 0 };
        size_t before = in.pos;

        if (out.size > ZSTD_DStreamOutSize()) {
            out.size = ZSTD_DStreamOutSize();
        }
        n = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(n) || (n && in.pos == before && !out.pos)) {
            break;
        }
        total += out.pos;
    }
    ZSTD_freeDCtx(dctx);
    if (n != 0 || total != dst_size || in.pos != src_size) {
        *ret_reason = "zstd frame does not decompress to raw_size bytes";
        return -EBADMSG;
    }
    return 0;
#else
    (void)src;
    (void)src_size;
    (void)dst;
    (void)dst_size;
    *ret_reason = "zstd data, built without zstd";
    return -EPROTONOSUPPORT;
#endif
}

int cprs_sec_data(CprsReader *r, uint32_t idx, const uint8_t **ret_data)
{
    CprsSec *s = &r->sec[idx];
    const uint8_t *stored = r->base + s->offset;
    const char *reason;
    uint8_t *raw;
    int ret;

    if (s->data) {
        *ret_data = s->data;
        return 0;
    }
    if (!(r->opts.flags & CPRS_READER_F_NO_CRC) &&
        cprs_crc32c(0, stored, s->stored_size) != s->crc32c) {
        return cprs_reader_fail(r, -EBADMSG, s->entry_offset +
                                offsetof(CprsWireSection, crc32c),
                                (int32_t)idx, -1, "4.7",
                                "section CRC32C mismatch");
    }
    if (!(s->flags & CPRS_SECTION_F_ZSTD)) {
        s->data = stored;
        *ret_data = s->data;
        return 0;
    }
    /* raw_size was capped at open (CPRS_MAX_SECTION_RAW_SIZE). */
    raw = malloc(s->raw_size ? s->raw_size : 1);
    if (!raw) {
        return cprs_reader_fail(r, -ENOMEM, s->offset, (int32_t)idx, -1, "",
                                "out of memory decompressing a section");
    }
    ret = cprs_zstd_decompress_exact(stored, s->stored_size, raw,
                                     s->raw_size, &reason);
    if (ret) {
        free(raw);
        return cprs_reader_fail(r, ret, s->offset, (int32_t)idx, -1, "5.3",
                                reason);
    }
    s->owned = raw;
    s->data = raw;
    *ret_data = s->data;
    return 0;
}

uint32_t cprs_rec_count(const CprsReader *r, uint32_t type)
{
    int idx = cprs_sec_find(r, type);

    return idx < 0 ? 0 : r->sec[idx].record_count;
}

int cprs_rec_get(CprsReader *r, uint32_t type, uint32_t i,
                 const uint8_t **ret_rec, int *ret_sec, uint64_t *ret_off)
{
    const uint8_t *data;
    int idx = cprs_sec_find(r, type);
    uint64_t pos;
    int ret;

    if (idx < 0 || i >= r->sec[idx].record_count) {
        return -EINVAL;
    }
    ret = cprs_sec_data(r, (uint32_t)idx, &data);
    if (ret) {
        return ret;
    }
    /* record_count * record_size == raw_size was checked at open. */
    pos = (uint64_t)i * r->sec[idx].record_size;
    *ret_rec = data + pos;
    *ret_sec = idx;
    *ret_off = r->sec[idx].offset + pos;
    return 0;
}

int cprs_str_get(CprsReader *r, const CprsWireStr *ref, uint64_t ref_off,
                 int sec, int64_t rec, const char **ret_str,
                 uint32_t *ret_len)
{
    int st = cprs_sec_find(r, CPRS_SECTION_STRTAB);
    uint32_t off = cprs_le32_get(&ref->off);
    uint32_t len = cprs_le32_get(&ref->len);
    const uint8_t *tab;
    uint64_t size;
    size_t bad;
    int ret;

    if (len == 0 || len > CPRS_MAX_NAME_LEN) {
        return cprs_reader_fail(r, len ? -E2BIG : -EBADMSG,
                                ref_off + offsetof(CprsWireStr, len), sec,
                                rec, len ? "7" : "6.1.1",
                                len ? "name longer than CPRS_MAX_NAME_LEN" :
                                "empty name");
    }
    if (st < 0) {
        return cprs_reader_fail(r, -EBADMSG, ref_off, sec, rec, "6.1",
                                "name reference but no string table");
    }
    ret = cprs_sec_data(r, (uint32_t)st, &tab);
    if (ret) {
        return ret;
    }
    size = r->sec[st].raw_size;
    /* spec 6.1.1: len bytes and a NUL, all inside the table. */
    if (!cprs_range_ok(size, off, (uint64_t)len + 1)) {
        return cprs_reader_fail(r, -EBADMSG, ref_off, sec, rec, "6.1.1",
                                "name reference outside the string table");
    }
    if (tab[off + len] != 0) {
        return cprs_reader_fail(r, -EBADMSG, ref_off, sec, rec, "6.1.1",
                                "name not NUL-terminated at its length");
    }
    /* spec 6.1.2: printable ASCII only, so no NUL inside either. */
    bad = cprs_name_bad_char((const char *)tab + off, len);
    if (bad < len) {
        return cprs_reader_fail(r, -EBADMSG, ref_off, sec, rec, "6.1.2",
                                "name has a byte outside printable ASCII");
    }
    *ret_str = (const char *)tab + off;
    *ret_len = len;
    return 0;
}
