/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * frame.c - the one zstd frame validator (spec 5.3).
 *
 * Access (a compressed section, a payload decompressed for a caller) and
 * full verification (frames checked through a small window) must accept
 * and reject exactly the same frames.  They used to be two functions that
 * had to be kept in step by hand; now both call cprs_frame_check() for
 * rules 1, 2 and 5 and cprs_frame_decode() for rules 3 and 4, and the
 * decoder is driven with the same sequence of input and output sizes
 * whether its output lands in the caller's buffer or in a scratch window.
 * libzstd's one-shot and streaming decoders disagree on some malformed
 * frames (an empty compressed block), so only the streaming one is used.
 *
 * Memory: the decoder keeps min(window, R) bytes of history plus two
 * blocks; cprs_frame_check() returns that cost, read from the frame
 * header, so that callers can hold it against the reader's memory budget
 * (spec 7.1) before anything is allocated.
 *
 * Time: creating a decoder costs about 4 us on a virtual machine, where
 * libzstd's CPUID traps to the hypervisor, which is more than decoding a
 * small frame.  So a reader keeps one decoder between frames, reset for
 * each (its parameters stay); one that grew past CPRS_FRAME_CTX_COST for
 * a large window is freed when its frame ends, so that what waits is
 * small and fixed (spec 7.1).  A frame's charge does not depend on
 * whether a decoder was waiting.
 */
#include <stdlib.h>

#ifdef CPRS_HAVE_ZSTD
#include <zstd.h>
#endif

#include "cprs-reader.h"

/* zstd's largest block (RFC 8878 3.1.1.2.4), and its largest window on
 * 64-bit hosts (ZSTD_WINDOWLOG_MAX_64; not in zstd's stable API). */
#define FRAME_BLOCK_MAX (128u << 10)
#define FRAME_WINDOWLOG_MAX 31

bool cprs_frame_is_skippable(const uint8_t *src, uint64_t src_size)
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

#ifdef CPRS_HAVE_ZSTD
/*
 * Window_Size of a frame whose header libzstd already parsed (RFC 8878
 * 3.1.1.1.2): the content size for a single-segment frame, else from the
 * Window_Descriptor byte after the Frame_Header_Descriptor.
 */
static uint64_t frame_window(const uint8_t *src, uint64_t raw_size)
{
    uint8_t fhd = src[4], wd;
    uint64_t base;

    if (fhd & 0x20) {
        return raw_size;
    }
    wd = src[5];
    base = UINT64_C(1) << (10 + (wd >> 3));
    return base + (base / 8) * (wd & 7);
}
#endif

int cprs_frame_check(const uint8_t *src, uint64_t src_size,
                     uint64_t raw_size, uint64_t *ret_cost,
                     const char **ret_reason)
{
#ifdef CPRS_HAVE_ZSTD
    unsigned long long content;
    uint64_t hist;
    size_t frame;

    /* spec 5.3 rule 5: a skippable frame declares no content at all. */
    if (raw_size == 0 || cprs_frame_is_skippable(src, src_size)) {
        *ret_reason = "zstd data is a skippable frame or has no content";
        return -EBADMSG;
    }
    /* spec 5.3 rule 1: one frame, exactly src_size bytes. */
    frame = ZSTD_findFrameCompressedSize(src, (size_t)src_size);
    CPRS_WORK_ADD(CPRS_WORK_SCAN_BYTES, src_size);
    if (ZSTD_isError(frame) || frame != src_size) {
        *ret_reason = "zstd data is not exactly one frame";
        return -EBADMSG;
    }
    /* spec 5.3 rule 2: the frame declares its content size, R. */
    content = ZSTD_getFrameContentSize(src, (size_t)src_size);
    if (content == ZSTD_CONTENTSIZE_UNKNOWN ||
        content == ZSTD_CONTENTSIZE_ERROR || content != raw_size) {
        *ret_reason = "zstd frame content size differs from raw_size";
        return -EBADMSG;
    }
    /* spec 5.3 rule 4: history min(window, R), two blocks, the context. */
    hist = frame_window(src, raw_size);
    if (hist > raw_size) {
        hist = raw_size;
    }
    *ret_cost = hist + 2 * FRAME_BLOCK_MAX + CPRS_FRAME_CTX_COST;
    return 0;
#else
    (void)src;
    (void)src_size;
    (void)raw_size;
    (void)ret_cost;
    *ret_reason = "zstd data, built without zstd";
    return -EPROTONOSUPPORT;
#endif
}

#ifdef CPRS_HAVE_ZSTD
/* A decoder for a new frame: the one waiting at @idle, or a new one. */
static ZSTD_DCtx *decoder_take(void **idle)
{
    ZSTD_DCtx *dctx = *idle;

    if (dctx) {
        *idle = NULL;
        if (!ZSTD_isError(ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only))) {
            return dctx;
        }
        ZSTD_freeDCtx(dctx);
    }
    dctx = ZSTD_createDCtx();
    CPRS_WORK_ADD(CPRS_WORK_ZSTD_CONTEXTS, 1);
    /* Accept every window zstd allows (spec 5.3 rule 4). */
    if (dctx && ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax,
                                                    FRAME_WINDOWLOG_MAX))) {
        ZSTD_freeDCtx(dctx);
        dctx = NULL;
    }
    return dctx;
}

/*
 * After a frame: keep @dctx at @idle if it is small and the place is
 * free, else free it.  The place may have been filled while the frame was
 * decoded: verify checks a compressed DEVSTATE section's records as they
 * decompress, each payload's frame with a decoder of its own.
 */
static void decoder_put(void **idle, ZSTD_DCtx *dctx)
{
    if (!*idle && dctx && ZSTD_sizeof_DCtx(dctx) <= CPRS_FRAME_CTX_COST) {
        *idle = dctx;
        return;
    }
    ZSTD_freeDCtx(dctx);
}
#endif

void cprs_frame_idle_free(void **idle)
{
#ifdef CPRS_HAVE_ZSTD
    ZSTD_freeDCtx(*idle);
#endif
    *idle = NULL;
}

int cprs_frame_decode(void **idle, const uint8_t *src, uint64_t src_size,
                      uint64_t raw_size, uint8_t *dst, CprsFrameSink sink,
                      void *opaque, const char **ret_reason)
{
#ifdef CPRS_HAVE_ZSTD
    ZSTD_inBuffer in = { src, (size_t)src_size, 0 };
    size_t slice = ZSTD_DStreamOutSize(), rc, room;
    uint8_t *window = NULL, *at, probe;
    uint64_t total = 0;
    ZSTD_DCtx *dctx;
    int ret = 0;

    dctx = decoder_take(idle);
    if (dctx && !dst) {
        /* No piece is larger than the frame's content. */
        size_t wsize = raw_size < slice ? (size_t)raw_size : slice;

        window = malloc(wsize);
        CPRS_WORK_ALLOC(wsize);
    }
    if (!dctx || (!dst && !window)) {
        decoder_put(idle, dctx);
        *ret_reason = "out of memory";
        return -ENOMEM;
    }
    /*
     * The same output sizes either way: slices of ZSTD_DStreamOutSize(),
     * never past R; once R bytes are out, a one-byte probe tells "the
     * frame ends here" from "the frame holds more than R".
     */
    for (;;) {
        size_t before = in.pos;
        ZSTD_outBuffer out;

        room = raw_size - total < slice ? (size_t)(raw_size - total) : slice;
        at = room ? (dst ? dst + total : window) : &probe;
        out = (ZSTD_outBuffer) { at, room ? room : 1, 0 };
        rc = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(rc) || (!room && out.pos)) {
            ret = -EBADMSG;
            break;
        }
        CPRS_WORK_ADD(CPRS_WORK_ZSTD_BYTES, out.pos);
        if (out.pos && sink) {
            sink(opaque, at, out.pos);
        }
        total += out.pos;
        if (rc == 0) {
            break;
        }
        if (in.pos == before && out.pos == 0) {
            ret = -EBADMSG;     /* truncated: no progress possible */
            break;
        }
    }
    decoder_put(idle, dctx);
    free(window);
    /* spec 5.3 rule 3: exactly R bytes, from exactly S bytes. */
    if (ret || total != raw_size || in.pos != src_size) {
        *ret_reason = "zstd frame does not decompress to raw_size bytes";
        return -EBADMSG;
    }
    return 0;
#else
    (void)idle;
    (void)src;
    (void)src_size;
    (void)raw_size;
    (void)dst;
    (void)sink;
    (void)opaque;
    *ret_reason = "zstd data, built without zstd";
    return -EPROTONOSUPPORT;
#endif
}
