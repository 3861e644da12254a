/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-payload.c - zstd data inside an arena (spec 5.2, 5.3, 6.6):
 * device-state payloads read with cprs_reader_devstate_data() and
 * _read(), and a zstd-compressed BLOB section.
 *
 * Input: one control byte, four bytes of declared size, then the stored
 * bytes (normally a zstd frame).  The writer builds a valid arena that
 * holds the stored bytes as a raw payload; the payload record (mode 0, 1)
 * or the BLOB section (mode 2) is then marked compressed with a declared
 * raw size, and the CRCs are repaired.  libzstd itself says what the
 * outcome must be, and the library must agree exactly:
 *   - the frame is exactly the stored bytes, declares exactly raw_size
 *     and decompresses to exactly raw_size bytes  <=>  the payload reads;
 *   - the bytes read are the bytes libzstd produced, through both
 *     accessors;
 *   - cprs_reader_verify() (which streams the frame through a small
 *     window) and the accessors (one shot) give the same verdict, for
 *     every window size (spec 5.3 rule 4).
 */
#include <errno.h>
#include <string.h>
#include <zstd.h>

#include "fuzz.h"

enum {
    MODE_PAYLOAD_DECLARED = 0,  /* raw_size = the frame's content size */
    MODE_PAYLOAD_GIVEN = 1,     /* raw_size = the input's 4 bytes */
    MODE_BLOB_SECTION = 2,      /* the whole BLOB section is the frame */
    MODE__COUNT,
};

static uint64_t sec_offset(const uint8_t *buf, uint64_t e)
{
    return fuzz_rd64(buf + e + offsetof(CprsWireSection, offset));
}

/* An arena holding @stored as payload 0 ("fuzz"), maybe a short one after. */
static void build(const uint8_t *stored, size_t n, bool tail,
                  uint8_t **ret_buf, size_t *ret_size)
{
    CprsWriterOpts o = CPRS_OPTS(CprsWriterOpts,
                                 .flags = CPRS_WRITER_F_REPRODUCIBLE,
                                 .producer = "fuzz-payload");
    CprsDevStateInfo di = CPRS_OPTS(CprsDevStateInfo, .name = "fuzz");
    CprsWriter *w;
    void *buf;

    FUZZ_ASSERT(cprs_writer_new(&o, &w) == 0);
    FUZZ_ASSERT(cprs_writer_add_devstate(w, &di, stored, n, NULL) == 0);
    if (tail) {
        di = CPRS_OPTS(CprsDevStateInfo, .name = "tail", .instance_id = 1);
        FUZZ_ASSERT(cprs_writer_add_devstate(w, &di, "\x01\x02\x03", 3,
                                             NULL) == 0);
    }
    FUZZ_ASSERT(cprs_writer_finish_buffer(w, &buf, ret_size) == 0);
    cprs_writer_free(w);
    *ret_buf = buf;
}

/* Streams @src into @out (@raw bytes) through 4 KiB output slices. */
static bool stream_into(const uint8_t *src, size_t n, uint8_t *out,
                        uint64_t raw)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_inBuffer in = { src, n, 0 };
    uint64_t total = 0;
    size_t rc = 1;

    FUZZ_ASSERT(dctx);
    FUZZ_ASSERT(!ZSTD_isError(ZSTD_DCtx_setParameter(dctx,
                                                     ZSTD_d_windowLogMax,
                                                     31)));
    while (rc != 0) {
        ZSTD_outBuffer o = { out + total, raw - total, 0 };
        size_t before = in.pos;

        if (o.size > 4096) {
            o.size = 4096;
        }
        rc = ZSTD_decompressStream(dctx, &o, &in);
        if (ZSTD_isError(rc) || (rc && in.pos == before && !o.pos)) {
            break;
        }
        total += o.pos;
    }
    ZSTD_freeDCtx(dctx);
    return rc == 0 && total == raw && in.pos == n;
}

/*
 * What libzstd says @src decompresses to, under the rules of spec 5.3:
 * 1 good, 0 bad, -1 libzstd's own one-shot and streaming decoders
 * disagree (an empty compressed block, for one), where the library only
 * has to agree with itself (rule 4).  *@ret_out holds the bytes of a
 * decoder that succeeded.
 */
static int expect_frame(const uint8_t *src, size_t n, uint64_t raw,
                        uint8_t **ret_out)
{
    unsigned long long content;
    uint8_t *one, *str;
    bool one_ok, str_ok;
    size_t got;

    *ret_out = NULL;
    /* Rule 5: no skippable frame (magics 0x184d2a5?), no empty content. */
    if (!raw || (n >= 4 && (fuzz_rd32(src) & 0xfffffff0u) == 0x184d2a50u)) {
        return 0;
    }
    /* Rules 1 and 2. */
    if (!n || ZSTD_findFrameCompressedSize(src, n) != n) {
        return 0;
    }
    content = ZSTD_getFrameContentSize(src, n);
    if (content == ZSTD_CONTENTSIZE_UNKNOWN ||
        content == ZSTD_CONTENTSIZE_ERROR || content != raw ||
        raw > FUZZ_MAX_PAYLOAD) {
        return 0;
    }
    /* Rule 3, by both of libzstd's decoders. */
    one = malloc(raw + 1);
    str = malloc(raw);
    FUZZ_ASSERT(one && str);
    got = ZSTD_decompress(one, raw + 1, src, n);
    one_ok = !ZSTD_isError(got) && got == raw;
    str_ok = stream_into(src, n, str, raw);
    FUZZ_ASSERT_MSG(!one_ok || !str_ok || !memcmp(one, str, raw),
                    "libzstd's decoders give different bytes");
    if (one_ok) {
        *ret_out = one;
        free(str);
    } else {
        *ret_out = str_ok ? str : NULL;
        free(one);
        if (!str_ok) {
            free(str);
        }
    }
    return one_ok == str_ok ? one_ok : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CprsReaderOpts o = fuzz_reader_opts(0);
    CprsDiag diag = CPRS_OPTS(CprsDiag);
    const uint8_t *stored;
    const void *got;
    uint8_t *arena, *want;
    uint64_t e, rec, raw;
    unsigned long long content;
    size_t n, asize, got_size;
    CprsReader *r;
    int good, mode, ret, v;

    if (fuzz_outside_size_range(size, 5, FUZZ_ARENA_MAX_INPUT)) {
        return 0;
    }
    mode = data[0] % MODE__COUNT;
    stored = data + 5;
    n = size - 5;
    if (mode == MODE_BLOB_SECTION && !n) {
        mode = MODE_PAYLOAD_DECLARED;   /* no BLOB section without bytes */
    }
    content = n ? ZSTD_getFrameContentSize(stored, n) : 0;
    if (mode == MODE_PAYLOAD_GIVEN || content >= (1ull << 24)) {
        /* Up to twice the fuzz payload cap, to reach -E2BIG too. */
        raw = fuzz_rd32(data + 1) & ((FUZZ_MAX_PAYLOAD << 1) - 1);
    } else {
        raw = content;
    }

    build(stored, n, mode != MODE_BLOB_SECTION, &arena, &asize);
    fuzz_wr64(arena + offsetof(CprsWireHeader, incompat_features),
              CPRS_INCOMPAT_ZSTD);
    e = fuzz_find_section(arena, asize, CPRS_SECTION_DEVSTATE);
    FUZZ_ASSERT(e);
    rec = sec_offset(arena, e);     /* record 0: the fuzz payload */
    if (mode == MODE_BLOB_SECTION) {
        /*
         * The BLOB decompresses to raw bytes; the only payload covers
         * them all.  The writer's zero padding after the frame stays
         * unclaimed (and zero, spec 4.11).
         */
        e = fuzz_find_section(arena, asize, CPRS_SECTION_BLOB);
        FUZZ_ASSERT(e);
        fuzz_wr32(arena + e + offsetof(CprsWireSection, flags),
                  CPRS_SECTION_F_REQUIRED | CPRS_SECTION_F_ZSTD);
        fuzz_wr64(arena + e + offsetof(CprsWireSection, stored_size), n);
        fuzz_wr64(arena + e + offsetof(CprsWireSection, raw_size), raw);
        fuzz_wr64(arena + rec + offsetof(CprsWireDevState, stored_size),
                  raw);
        fuzz_wr64(arena + rec + offsetof(CprsWireDevState, raw_size), raw);
    } else {
        fuzz_wr32(arena + rec + offsetof(CprsWireDevState, flags),
                  CPRS_DEVSTATE_F_ZSTD);
        fuzz_wr64(arena + rec + offsetof(CprsWireDevState, raw_size), raw);
    }
    fuzz_repair_crcs(arena, asize);

    good = expect_frame(stored, n, raw, &want);
    ret = cprs_reader_open_buffer(arena, asize, &o, &diag, &r);
    if (mode == MODE_BLOB_SECTION && ret) {
        /*
         * Open checks the section's raw_size against the 1 GiB limit
         * and its stored bytes only; the frame comes later.
         */
        FUZZ_ASSERT(fuzz_reader_errno_ok(ret));
        goto out;
    }
    FUZZ_ASSERT_MSG(ret == 0, "open failed (%d): %s", ret, diag.reason);

    ret = cprs_reader_devstate_data(r, 0, &got, &got_size);
    FUZZ_ASSERT_MSG(good < 0 || (ret == 0) == (good == 1),
                    "devstate_data gave %d, libzstd says the frame is %s",
                    ret, good ? "good" : "bad");
    if (!ret) {
        FUZZ_ASSERT(got_size == raw && want);
        FUZZ_ASSERT_MSG(!raw || !memcmp(got, want, raw),
                        "payload bytes differ from libzstd's");
    } else {
        FUZZ_ASSERT(fuzz_reader_errno_ok(ret));
    }
    fuzz_walk_reader(r, NULL, NULL, 0, false);

    diag = CPRS_OPTS(CprsDiag);
    v = cprs_reader_verify(r, &diag);
    /* Rule 4: verify accepts exactly the frames access accepts. */
    FUZZ_ASSERT_MSG((v == 0) == (ret == 0),
                    "verify gave %d (%s), devstate_data %d", v,
                    v ? diag.reason : "ok", ret);
    FUZZ_ASSERT_MSG(good < 0 || (v == 0) == (good == 1),
                    "verify gave %d (%s), libzstd says the frame is %s", v,
                    v ? diag.reason : "ok", good ? "good" : "bad");
    if (!v) {
        fuzz_walk_reader(r, NULL, NULL, 0, true);
    }
    cprs_reader_close(r);
out:
    free(want);
    free(arena);
    return 0;
}
