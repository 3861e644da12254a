/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * payload.c - named device-state payloads (spec 6.6) stored in the BLOB
 * section (spec 6.7), raw or as one zstd frame each (spec 5.3).
 *
 * Uncompressed payloads are handed out in place.  Compressed ones are
 * decompressed on demand into a buffer of exactly the declared size, after
 * max_payload_size and the reader's memory budget (spec 7.1) have allowed
 * it; the outcome is kept, failure included, so that a payload is
 * decompressed at most once per reader.  Calls frame.c, section.c and
 * index.c.
 */
#include <stdlib.h>

#include "cprs-reader.h"

uint32_t cprs_reader_devstate_count(const CprsReader *r)
{
    return r ? cprs_rec_count(r, CPRS_SECTION_DEVSTATE) : 0;
}

int cprs_devstate_decode(CprsReader *r, const uint8_t *p, int sec,
                         uint32_t index, uint64_t off, CprsDevStateInfo *di,
                         const uint8_t **ret_stored, uint64_t *ret_data_off)
{
    const CprsWireDevState *w = (const CprsWireDevState *)p;
    const uint8_t *blob = NULL;
    uint64_t data_off, blob_size = 0;
    int blob_sec, ret;

#define FAIL(err, field, clause, reason) \
    cprs_reader_fail(r, (err), off + offsetof(CprsWireDevState, field), sec, \
                     index, (clause), (reason))

    *di = (CprsDevStateInfo) { .sz = sizeof(*di) };
    ret = cprs_str_get(r, &w->name, off, sec, index, &di->name,
                       &di->name_len, NULL);
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
    *ret_data_off = data_off;
    return 0;
}

/*
 * spec 6.6.5 over the whole section, in O(r), once: payloads lie in the
 * BLOB in record order without overlap.  Without it, records could all
 * name one large frame, and each access would decode it again.  A
 * record whose payload lies outside the BLOB is left to its own access
 * check.  The verdict is kept, failure included.
 */
static int ds_order_scan(CprsReader *r, int sec, const uint8_t *data)
{
    const CprsSec *s = &r->sec[sec];
    int bsec = cprs_sec_find(r, CPRS_SECTION_BLOB);
    uint64_t blob_size = bsec >= 0 ? r->sec[bsec].raw_size : 0;
    uint64_t pos = 0, data_off, stored;
    const CprsWireDevState *w;
    uint32_t i;

    for (i = 0; i < s->record_count; i++) {
        w = (const CprsWireDevState *)(data + (uint64_t)i * s->record_size);
        data_off = cprs_le64_get(&w->data_off);
        stored = cprs_le64_get(&w->stored_size);
        if (!cprs_range_ok(blob_size, data_off, stored)) {
            continue;
        }
        if (data_off < pos) {
            return cprs_reader_fail(r, -EBADMSG, s->offset +
                                    (uint64_t)i * s->record_size +
                                    offsetof(CprsWireDevState, data_off),
                                    sec, i, "6.6.5", "payload overlaps or "
                                    "precedes the previous one");
        }
        pos = data_off + stored;
    }
    return 0;
}

static int ds_order_check(CprsReader *r, int sec)
{
    return cprs_rule_run(r, &r->ds_order, sec, ds_order_scan);
}

/* Decode and check record @index; *ret_stored points at its bytes. */
static int devstate_get(CprsReader *r, uint32_t index, CprsDevStateInfo *di,
                        const uint8_t **ret_stored)
{
    const uint8_t *p;
    uint64_t off, data_off;
    int sec, ret;

    ret = cprs_rec_get(r, CPRS_SECTION_DEVSTATE, index, &p, &sec, &off);
    if (ret) {
        return ret;
    }
    ret = cprs_devstate_decode(r, p, sec, index, off, di, ret_stored,
                               &data_off);
    return ret ? ret : ds_order_check(r, sec);
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
    int sec, ret;

    if (!r || !name || !ret_index) {
        return -EINVAL;
    }
    sec = cprs_sec_find(r, CPRS_SECTION_DEVSTATE);
    ret = sec < 0 ? 0 : ds_order_check(r, sec);
    return ret ? ret : cprs_lookup(r, CPRS_SECTION_DEVSTATE, name,
                                   instance_id, ret_index);
}

/* Declared in cprs-reader.h. */
int cprs_payload_frame(CprsReader *r, const CprsDevStateInfo *di,
                       const uint8_t *stored, uint64_t used, uint64_t off,
                       int sec, uint32_t index, void *dst)
{
    const char *reason;
    uint64_t cost;
    int ret;

    ret = cprs_frame_check(stored, di->stored_size, di->raw_size, &cost,
                           &reason);
    if (!ret) {
        ret = cprs_budget_check(r, used, cost, off, sec, index);
        if (ret) {
            return ret;
        }
        ret = cprs_frame_decode(&r->zstd_idle, stored, di->stored_size,
                                di->raw_size, dst, NULL, NULL, &reason);
    }
    if (ret) {
        return cprs_reader_fail(r, ret, off, sec, index, "5.3", reason);
    }
    return 0;
}

/* Decode the frame of payload @index into @dst, @kept bytes held. */
static int payload_inflate(CprsReader *r, uint32_t index,
                           const CprsDevStateInfo *di, const uint8_t *stored,
                           uint64_t kept, void *dst)
{
    int sec = cprs_sec_find(r, CPRS_SECTION_DEVSTATE);
    uint64_t off = r->sec[sec].offset +
                   (uint64_t)index * r->sec[sec].record_size;

    return cprs_payload_frame(r, di, stored, kept, off, sec, index, dst);
}

/* The payload slots, one per record, charged to the budget like bytes. */
static int payload_slots(CprsReader *r, int sec, uint32_t index)
{
    uint32_t n;

    if (r->payloads) {
        return 0;
    }
    n = cprs_reader_devstate_count(r);
    if (cprs_budget_check(r, r->kept, (uint64_t)n * sizeof(*r->payloads),
                          r->sec[sec].offset, sec, index)) {
        return -E2BIG;
    }
    r->payloads = calloc(n, sizeof(*r->payloads));
    if (!r->payloads) {
        return -ENOMEM;
    }
    CPRS_WORK_ALLOC((uint64_t)n * sizeof(*r->payloads));
    r->kept += (uint64_t)n * sizeof(*r->payloads);
    return 0;
}

/* Payload @index's kept failure again: the record, the clause, the reason. */
static int payload_failed(CprsReader *r, int sec, uint32_t index)
{
    const CprsPayloadSlot *slot = &r->payloads[index];

    return cprs_reader_fail(r, slot->err, r->sec[sec].offset +
                            (uint64_t)index * r->sec[sec].record_size,
                            sec, index, slot->err == -E2BIG ? "7.1" : "5.3",
                            slot->reason);
}

/* Keep @ret, the failure of payload @index (not a shortage of memory). */
static int payload_fail(CprsReader *r, uint32_t index, int ret)
{
    if (ret != -ENOMEM && r->payloads) {
        r->payloads[index].err = ret;
        r->payloads[index].reason = r->last.reason;
    }
    return ret;
}

int cprs_reader_devstate_data(CprsReader *r, uint32_t index,
                              const void **ret_data, size_t *ret_size)
{
    CprsDevStateInfo di;
    const uint8_t *stored;
    CprsPayloadSlot *slot;
    uint8_t *buf;
    int sec, ret;

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
    sec = cprs_sec_find(r, CPRS_SECTION_DEVSTATE);
    ret = payload_slots(r, sec, index);
    if (ret) {
        return ret;
    }
    slot = &r->payloads[index];
    if (!slot->data && !slot->err) {
        /* raw_size <= max_payload_size was checked by devstate_get(). */
        ret = cprs_budget_check(r, r->kept, di.raw_size, r->sec[sec].offset +
                                (uint64_t)index * r->sec[sec].record_size,
                                sec, index);
        buf = ret ? NULL : cprs_alloc_large((size_t)di.raw_size);
        if (!ret && !buf) {
            return -ENOMEM;
        }
        if (!ret) {
            CPRS_WORK_ALLOC(di.raw_size);
            ret = payload_inflate(r, index, &di, stored,
                                  r->kept + di.raw_size, buf);
        }
        if (ret) {
            free(buf);
            /* Kept like a section's failure: not paid twice. */
            return payload_fail(r, index, ret);
        }
        slot->data = buf;
        r->kept += di.raw_size;
    }
    if (slot->err) {
        return payload_failed(r, sec, index);
    }
    *ret_data = slot->data;
    *ret_size = (size_t)di.raw_size;
    return 0;
}

int cprs_reader_devstate_read(CprsReader *r, uint32_t index, void *buf,
                              size_t size, size_t *ret_size)
{
    CprsDevStateInfo di;
    const uint8_t *stored;
    CprsDiag err_diag;
    int sec, ret;

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
    sec = cprs_sec_find(r, CPRS_SECTION_DEVSTATE);
    if ((di.flags & CPRS_DEVSTATE_F_ZSTD) && r->payloads &&
        r->payloads[index].err && r->payloads[index].err != -E2BIG) {
        /* Its frame failed before, here or in devstate_data() (a
         * budget that refused to keep it does not bind this call,
         * which keeps nothing). */
        return payload_failed(r, sec, index);
    } else if ((di.flags & CPRS_DEVSTATE_F_ZSTD) && r->payloads &&
        r->payloads[index].data) {
        /* Decompressed already by cprs_reader_devstate_data(). */
        CPRS_WORK_ADD(CPRS_WORK_COPY_BYTES, di.raw_size);
        memcpy(buf, r->payloads[index].data, (size_t)di.raw_size);
    } else if (di.flags & CPRS_DEVSTATE_F_ZSTD) {
        /* The caller holds the output; the decoder is charged. */
        ret = payload_inflate(r, index, &di, stored, r->kept, buf);
        if (ret && ret != -ENOMEM && ret != -E2BIG) {
            /* Kept, so that it is not decoded again (spec 8.7): in the
             * slots, when the budget allows them. */
            err_diag = r->last;
            if (!payload_slots(r, sec, index)) {
                r->last = err_diag;
                payload_fail(r, index, ret);
            }
            r->last = err_diag;
        }
        if (ret) {
            return ret;
        }
    } else if (di.raw_size) {
        CPRS_WORK_ADD(CPRS_WORK_COPY_BYTES, di.raw_size);
        memcpy(buf, stored, (size_t)di.raw_size);
    }
    if (ret_size) {
        *ret_size = (size_t)di.raw_size;
    }
    return 0;
}
