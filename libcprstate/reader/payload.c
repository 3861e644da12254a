/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * payload.c - named device-state payloads (spec 6.6) stored in the BLOB
 * section (spec 6.7), raw or as one zstd frame each (spec 5.3).
 *
 * Uncompressed payloads are handed out in place.  Compressed ones are
 * decompressed on demand into a buffer of exactly the declared size, capped
 * by max_payload_size before anything is allocated.
 */
#include <stdlib.h>

#include "cprs-reader.h"

uint32_t cprs_reader_devstate_count(const CprsReader *r)
{
    return r ? cprs_rec_count(r, CPRS_SECTION_DEVSTATE) : 0;
}

/* Decode and check record @index; *ret_stored points at its bytes. */
static int devstate_get(CprsReader *r, uint32_t index, CprsDevStateInfo *di,
                        const uint8_t **ret_stored)
{
    const CprsWireDevState *w;
    const uint8_t *p, *blob = NULL;
    uint64_t off, data_off, blob_size = 0;
    int sec, blob_sec, ret;

    ret = cprs_rec_get(r, CPRS_SECTION_DEVSTATE, index, &p, &sec, &off);
    if (ret) {
        return ret;
    }
    w = (const CprsWireDevState *)p;

#define FAIL(err, field, clause, reason) \
    cprs_reader_fail(r, (err), off + offsetof(CprsWireDevState, field), sec, \
                     index, (clause), (reason))

    *di = (CprsDevStateInfo) { .sz = sizeof(*di) };
    ret = cprs_str_get(r, &w->name, off, sec, index, &di->name,
                       &di->name_len);
    if (ret) {
        return ret;
    }
    di->instance_id = cprs_le32_get(&w->instance_id);
    di->version_id = cprs_le32_get(&w->version_id);
    di->flags = cprs_le32_get(&w->flags);
    data_off = cprs_le64_get(&w->data_off);
    di->stored_size = cprs_le64_get(&w->stored_size);
    di->raw_size = cprs_le64_get(&w->raw_size);

    if (!r->lenient && (di->flags & ~CPRS_DEVSTATE_F_KNOWN)) {
        return FAIL(-EBADMSG, flags, "6.6.4", "unknown device-state flag");
    }
    if (!r->lenient && cprs_le32_get(&w->reserved0)) {
        return FAIL(-EBADMSG, reserved0, "6.6.4", "reserved field not zero");
    }
    if (di->raw_size > r->opts.max_payload_size) {
        return FAIL(-E2BIG, raw_size, "7", "payload raw_size over the limit");
    }
    if (di->flags & CPRS_DEVSTATE_F_ZSTD) {
        if (!(r->info.incompat_features & CPRS_INCOMPAT_ZSTD)) {
            return FAIL(-EBADMSG, flags, "5.1",
                        "compressed payload without the zstd feature");
        }
        if (di->stored_size == 0) {
            return FAIL(-EBADMSG, stored_size, "6.6.6",
                        "compressed payload with no bytes");
        }
    } else if (di->stored_size != di->raw_size) {
        return FAIL(-EBADMSG, stored_size, "6.6.6",
                    "stored_size differs from raw_size, not compressed");
    }
    if (!cprs_aligned(data_off)) {
        return FAIL(-EBADMSG, data_off, "6.6.5", "data_off not 8-aligned");
    }
    blob_sec = cprs_sec_find(r, CPRS_SECTION_BLOB);
    if (blob_sec >= 0) {
        blob_size = r->sec[blob_sec].raw_size;
    }
    if (!cprs_range_ok(blob_size, data_off, di->stored_size)) {
        return FAIL(-EBADMSG, data_off, "6.6.5",
                    "payload outside the BLOB section");
    }
#undef FAIL
    if (blob_sec >= 0) {
        ret = cprs_sec_data(r, (uint32_t)blob_sec, &blob);
        if (ret) {
            return ret;
        }
    }
    *ret_stored = blob ? blob + data_off : (const uint8_t *)"";
    return 0;
}

int cprs_reader_devstate_get(CprsReader *r, uint32_t index,
                             CprsDevStateInfo *info)
{
    CprsDevStateInfo di;
    const uint8_t *stored;
    int ret;

    if (!r || !info) {
        return -EINVAL;
    }
    ret = devstate_get(r, index, &di, &stored);
    if (ret) {
        return ret;
    }
    return cprs_info_fill(info, &di, sizeof(di));
}

int cprs_reader_devstate_find(CprsReader *r, const char *name,
                              uint32_t instance_id, uint32_t *ret_index)
{
    if (!r || !name || !ret_index) {
        return -EINVAL;
    }
    return cprs_lookup(r, CPRS_SECTION_DEVSTATE, name, instance_id,
                       ret_index);
}

/* Decompress @di's frame at @stored into @dst (raw_size bytes). */
static int payload_inflate(CprsReader *r, uint32_t index,
                           const CprsDevStateInfo *di, const uint8_t *stored,
                           void *dst)
{
    int sec = cprs_sec_find(r, CPRS_SECTION_DEVSTATE);
    const char *reason;
    int ret;

    ret = cprs_zstd_decompress_exact(stored, di->stored_size, dst,
                                     di->raw_size, &reason);
    if (ret) {
        return cprs_reader_fail(r, ret, r->sec[sec].offset +
                                (uint64_t)index * r->sec[sec].record_size,
                                sec, index, "5.3", reason);
    }
    return 0;
}

int cprs_reader_devstate_data(CprsReader *r, uint32_t index,
                              const void **ret_data, size_t *ret_size)
{
    CprsDevStateInfo di;
    const uint8_t *stored;
    uint8_t *buf;
    int ret;

    if (!r || !ret_data || !ret_size) {
        return -EINVAL;
    }
    ret = devstate_get(r, index, &di, &stored);
    if (ret) {
        return ret;
    }
    if (!(di.flags & CPRS_DEVSTATE_F_ZSTD)) {
        *ret_data = stored;
        *ret_size = (size_t)di.raw_size;
        return 0;
    }
    if (!r->payload_cache) {
        r->payload_cache = calloc(cprs_reader_devstate_count(r),
                                  sizeof(*r->payload_cache));
        if (!r->payload_cache) {
            return -ENOMEM;
        }
    }
    if (!r->payload_cache[index]) {
        /* raw_size <= max_payload_size was checked by devstate_get(). */
        buf = malloc(di.raw_size ? (size_t)di.raw_size : 1);
        if (!buf) {
            return -ENOMEM;
        }
        ret = payload_inflate(r, index, &di, stored, buf);
        if (ret) {
            free(buf);
            return ret;
        }
        r->payload_cache[index] = buf;
    }
    *ret_data = r->payload_cache[index];
    *ret_size = (size_t)di.raw_size;
    return 0;
}

int cprs_reader_devstate_read(CprsReader *r, uint32_t index, void *buf,
                              size_t size, size_t *ret_size)
{
    CprsDevStateInfo di;
    const uint8_t *stored;
    int ret;

    if (!r || (!buf && size)) {
        return -EINVAL;
    }
    ret = devstate_get(r, index, &di, &stored);
    if (ret) {
        return ret;
    }
    if (size < di.raw_size) {
        return -EINVAL;
    }
    if (di.flags & CPRS_DEVSTATE_F_ZSTD) {
        ret = payload_inflate(r, index, &di, stored, buf);
        if (ret) {
            return ret;
        }
    } else if (di.raw_size) {
        memcpy(buf, stored, (size_t)di.raw_size);
    }
    if (ret_size) {
        *ret_size = (size_t)di.raw_size;
    }
    return 0;
}
