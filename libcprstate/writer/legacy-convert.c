/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * legacy-convert.c - converting between QEMU's legacy stream and the
 * arena (spec/qemu-legacy-stream.rst L11).  Writer side: it needs the
 * arena writer.
 *
 * Only fd and vfio device records exist in the legacy stream.  Going to
 * the arena, each keeps its position (the arena writer numbers slots in
 * record order), so coming back gives the same stream: the variant is the
 * arena's mode, and the subsection form is FULL unless the caller says
 * otherwise (the arena has no place for it).
 */
#include <stdlib.h>

#include "cprs-writer.h"

static const char *writer_reason(int ret)
{
    switch (ret) {
    case -EINVAL:
        return "name or fd the arena refuses";
    case -EEXIST:
        return "duplicate key: the arena needs unique keys";
    case -E2BIG:
        return "too many records for the arena";
    default:
        return "cannot add the record";
    }
}

int cprs_legacy_to_writer(const CprsLegacy *lg, CprsWriter *w,
                          CprsDiag *diag)
{
    const CprsLegacyRec *r;
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    uint32_t i;
    int ret;

    if (!lg || !w) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "",
                             "invalid argument");
    }
    /* spec L11: fd records in stream order; the slot is the position. */
    for (i = 0; i < lg->fds.count; i++) {
        r = &lg->fds.rec[i];
        fi = CPRS_OPTS(CprsFdInfo,
                       .name = cprs_legacy_rec_name(lg, r),
                       .id = r->id,
                       .fd = lg->mode == CPRS_MODE_EXEC ? r->fd : -1,
                       .kind = CPRS_FD_KIND_OTHER);
        ret = cprs_writer_add_fd(w, &fi, NULL);
        if (ret) {
            return cprs_diag_set(diag, ret, r->offset == CPRS_LEGACY_NO_OFFSET
                                 ? 0 : r->offset, -1, i, "L11",
                                 writer_reason(ret));
        }
    }
    /* spec L11: vfio records become vfio device records. */
    for (i = 0; i < lg->vfio.count; i++) {
        r = &lg->vfio.rec[i];
        vi = CPRS_OPTS(CprsVfioDeviceInfo,
                       .name = cprs_legacy_rec_name(lg, r),
                       .devid = r->id,
                       .ioas_id = r->ioas_id,
                       .hwpt_id = r->hwpt_id);
        ret = cprs_writer_add_vfio(w, &vi, NULL);
        if (ret) {
            return cprs_diag_set(diag, ret, r->offset == CPRS_LEGACY_NO_OFFSET
                                 ? 0 : r->offset, -1, i, "L11",
                                 writer_reason(ret));
        }
    }
    return 0;
}

int cprs_legacy_to_arena(const CprsLegacy *lg, const CprsWriterOpts *opts,
                         CprsDiag *diag, CprsWriter **ret_writer)
{
    CprsWriterOpts wo;
    CprsWriter *w;
    int ret;

    if (!lg || !ret_writer) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "",
                             "invalid argument");
    }
    ret = cprs_opts_copy(&wo, sizeof(wo), opts);
    if (!ret && wo.mode && wo.mode != lg->mode) {
        ret = -EINVAL;
    }
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "L11", "invalid options");
    }
    /* spec L11: the variant becomes the arena's mode. */
    wo.mode = lg->mode;
    ret = cprs_writer_new(&wo, &w);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "invalid options");
    }
    ret = cprs_legacy_to_writer(lg, w, diag);
    if (ret) {
        cprs_writer_free(w);
        return ret;
    }
    *ret_writer = w;
    return 0;
}

/* Copy the reader's diagnostic of a failed accessor into @diag. */
static int reader_fail(CprsReader *reader, CprsDiag *diag, int ret)
{
    const CprsDiag *d = cprs_reader_last_diag(reader);

    return cprs_diag_set(diag, ret, d->offset, d->section, d->record,
                         d->clause, d->reason);
}

/*
 * Append record @i of the arena to @list (@rec: its fields, the name
 * aside; it has no stream offset).  Arena keys are unique (its spec 6.8);
 * an unverified arena might still break that, and QEMU would then see one
 * record: refused.  The handle is freed on failure, so the record is
 * added first and its key checked by the same lookup.
 */
static int add_unique(CprsLegacy *lg, CprsLegacyList *list, const char *name,
                      uint32_t len, CprsLegacyRec *rec, uint32_t i,
                      CprsDiag *diag)
{
    int64_t first;
    int ret;

    rec->offset = CPRS_LEGACY_NO_OFFSET;
    ret = cprs_legacy_rec_add(lg, list, name, len, rec, NULL, &first);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, i, "L4.2",
                             "cannot store the record");
    }
    if (first >= 0) {
        return cprs_diag_set(diag, -EBADMSG, 0, -1, i, "L11",
                             list == &lg->fds ?
                             "duplicate (name, id) in the arena" :
                             "duplicate vfio device name in the arena");
    }
    return 0;
}

int cprs_legacy_from_reader(CprsReader *reader, const CprsLegacyOpts *opts,
                            CprsDiag *diag, CprsLegacy **ret_legacy)
{
    CprsArenaInfo ai = { .sz = sizeof(ai) };
    CprsLegacyRec rec;
    CprsFdInfo fi;
    CprsVfioDeviceInfo vi;
    CprsLegacyOpts o;
    CprsLegacy *lg;
    uint32_t i, n;
    int ret;

    if (!reader || !ret_legacy) {
        return cprs_diag_set(diag, -EINVAL, 0, -1, -1, "",
                             "invalid argument");
    }
    ret = cprs_legacy_opts_get(&o, opts);
    if (!ret) {
        ret = cprs_reader_get_info(reader, &ai);
    }
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "invalid options");
    }
    ret = cprs_legacy_alloc(&lg);
    if (ret) {
        return cprs_diag_set(diag, ret, 0, -1, -1, "", "out of memory");
    }
    lg->mode = o.mode ? o.mode : ai.mode;
    lg->vfio_form = o.vfio_form ? o.vfio_form : CPRS_LEGACY_VFIO_FULL;
    lg->max_records = o.max_records;
    if (lg->mode != CPRS_MODE_EXEC && lg->mode != CPRS_MODE_TRANSFER) {
        ret = cprs_diag_set(diag, -EINVAL, offsetof(CprsWireHeader, mode),
                            -1, -1, "L11", "arena mode has no legacy form");
        goto fail;
    }

    n = cprs_reader_fd_count(reader);
    for (i = 0; i < n; i++) {
        fi = (CprsFdInfo) { .sz = sizeof(fi) };
        ret = cprs_reader_fd_get(reader, i, &fi);
        if (ret) {
            goto fail_read;
        }
        /* spec L4.6: a cpr-exec stream cannot say "fd unknown". */
        if (lg->mode == CPRS_MODE_EXEC && fi.fd < 0) {
            ret = cprs_diag_set(diag, -EINVAL, 0, -1, i, "L11",
                                "fd unknown (-1): no cpr-exec form");
            goto fail;
        }
        rec = (CprsLegacyRec) { .id = fi.id, .fd = fi.fd };
        ret = add_unique(lg, &lg->fds, fi.name, fi.name_len, &rec, i, diag);
        if (ret) {
            goto fail;
        }
    }

    n = cprs_reader_vfio_count(reader);
    if (n && lg->vfio_form != CPRS_LEGACY_VFIO_FULL) {
        ret = cprs_diag_set(diag, -EINVAL, 0, -1, -1, "L5.6",
                            "vfio records need the FULL subsection form");
        goto fail;
    }
    for (i = 0; i < n; i++) {
        vi = (CprsVfioDeviceInfo) { .sz = sizeof(vi) };
        ret = cprs_reader_vfio_get(reader, i, &vi);
        if (ret) {
            goto fail_read;
        }
        rec = (CprsLegacyRec) { .id = vi.devid, .fd = -1,
                                .ioas_id = vi.ioas_id, .hwpt_id = vi.hwpt_id };
        ret = add_unique(lg, &lg->vfio, vi.name, vi.name_len, &rec, i, diag);
        if (ret) {
            goto fail;
        }
    }
    *ret_legacy = lg;
    return 0;

fail_read:
    ret = reader_fail(reader, diag, ret);
fail:
    cprs_legacy_free(lg);
    return ret;
}
