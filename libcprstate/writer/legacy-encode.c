/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * legacy-encode.c - writing QEMU's legacy "QCPR" stream: building a
 * stream from scratch and encoding it (spec/qemu-legacy-stream.rst L10).
 * Sending it with its fds is the handover layer's (legacy-channel.c).
 *
 * The encoder writes the canonical form, the one QEMU writes: 0x01
 * markers, names with exactly one NUL, the vfio subsection in the form
 * asked for, nothing after it.  Every stream the strict decoder accepts is
 * canonical, so decode then encode gives back the same bytes.
 */
#include <stdlib.h>

#include "cprs-writer.h"

/* ---- Building ---------------------------------------------------------- */

int cprs_legacy_new(const CprsLegacyOpts *opts, CprsLegacy **ret_legacy)
{
    CprsLegacyOpts o;
    CprsLegacy *lg;
    int ret;

    if (!ret_legacy) {
        return -EINVAL;
    }
    ret = cprs_legacy_opts_get(&o, opts);
    if (ret) {
        return ret;
    }
    ret = cprs_legacy_alloc(&lg);
    if (ret) {
        return ret;
    }
    lg->mode = o.mode ? o.mode : CPRS_MODE_EXEC;
    lg->vfio_form = o.vfio_form ? o.vfio_form : CPRS_LEGACY_VFIO_FULL;
    lg->max_records = o.max_records;
    *ret_legacy = lg;
    return 0;
}

int cprs_legacy_add_fd(CprsLegacy *lg, const CprsFdInfo *fd,
                       uint32_t *ret_index)
{
    CprsLegacyRec rec = { .offset = CPRS_LEGACY_NO_OFFSET };
    CprsFdInfo in;
    size_t len;

    /* spec L4.6: a cpr-exec stream carries the fd number itself. */
    if (!lg || !fd || cprs_opts_copy(&in, sizeof(in), fd) ||
        cprs_name_check(in.name, &len) || in.fd < -1 ||
        (lg->mode == CPRS_MODE_EXEC && in.fd < 0)) {
        return -EINVAL;
    }
    if (cprs_legacy_lookup(lg, &lg->fds, in.name, len, in.id) >= 0) {
        return -EEXIST;
    }
    rec.id = in.id;
    rec.fd = in.fd;
    return cprs_legacy_rec_add(lg, &lg->fds, in.name, len, &rec, ret_index,
                               NULL);
}

int cprs_legacy_add_vfio(CprsLegacy *lg, const CprsVfioDeviceInfo *dev,
                         uint32_t *ret_index)
{
    CprsLegacyRec rec = { .offset = CPRS_LEGACY_NO_OFFSET, .fd = -1 };
    CprsVfioDeviceInfo in;
    size_t len;

    if (!lg || !dev || lg->vfio_form != CPRS_LEGACY_VFIO_FULL ||
        cprs_opts_copy(&in, sizeof(in), dev) ||
        cprs_name_check(in.name, &len)) {
        return -EINVAL;
    }
    if (cprs_legacy_lookup(lg, &lg->vfio, in.name, len, 0) >= 0) {
        return -EEXIST;
    }
    rec.id = in.devid;
    rec.ioas_id = in.ioas_id;
    rec.hwpt_id = in.hwpt_id;
    return cprs_legacy_rec_add(lg, &lg->vfio, in.name, len, &rec, ret_index,
                               NULL);
}

/* ---- Encoding ---------------------------------------------------------- */

typedef struct Out {
    uint8_t *p;
    size_t pos;
} Out;

static void put_u8(Out *o, uint8_t v)
{
    o->p[o->pos++] = v;
}

static void put_be32(Out *o, uint32_t v)
{
    put_u8(o, (uint8_t)(v >> 24));
    put_u8(o, (uint8_t)(v >> 16));
    put_u8(o, (uint8_t)(v >> 8));
    put_u8(o, (uint8_t)v);
}

static void put_bytes(Out *o, const void *p, size_t n)
{
    memcpy(o->p + o->pos, p, n);
    o->pos += n;
}

/* marker, namelen, name with its NUL (spec L4.3, L4.4). */
static void put_name(Out *o, const CprsLegacy *lg, const CprsLegacyRec *r)
{
    put_u8(o, 1);
    put_be32(o, r->name_len + 1);
    put_bytes(o, cprs_legacy_rec_name(lg, r), (size_t)r->name_len + 1);
}

int cprs_legacy_encode_at(const CprsLegacy *lg, uint32_t mode, uint32_t form,
                  uint8_t **ret_buf, size_t *ret_size, uint64_t **ret_svc)
{
    uint64_t size = 8 + 1, fd_size = mode == CPRS_MODE_EXEC ? 4 : 1;
    uint64_t *svc = NULL;
    const CprsLegacyRec *r;
    Out o;
    uint32_t i;

    if (form != CPRS_LEGACY_VFIO_FULL && lg->vfio.count) {
        return -EINVAL;
    }
    /* spec L9: the size, summed with room to spare in 64 bits. */
    for (i = 0; i < lg->fds.count; i++) {
        r = &lg->fds.rec[i];
        if (mode == CPRS_MODE_EXEC && r->fd < 0) {
            return -EINVAL;
        }
        size += 1 + 4 + (uint64_t)r->name_len + 1 + 4 + fd_size;
    }
    if (form != CPRS_LEGACY_VFIO_NONE) {
        size += 1 + 1 + CPRS_LEGACY_VFIO_NAME_LEN + 4;
    }
    if (form == CPRS_LEGACY_VFIO_FULL) {
        for (i = 0; i < lg->vfio.count; i++) {
            size += 1 + 4 + (uint64_t)lg->vfio.rec[i].name_len + 1 + 12;
        }
        size += 1;
    }
    if (size > CPRS_LEGACY_MAX_SIZE) {
        return -E2BIG;
    }
    o.p = cprs_alloc_large((size_t)size);
    if (!o.p) {
        return -ENOMEM;
    }
    if (ret_svc) {
        svc = calloc(lg->fds.count ? lg->fds.count : 1, sizeof(*svc));
        if (!svc) {
            free(o.p);
            return -ENOMEM;
        }
    }
    o.pos = 0;

    /* spec L3: magic and version. */
    put_be32(&o, CPRS_LEGACY_MAGIC_BE);
    put_be32(&o, 1);
    /* spec L4: the fd list, in the handle's order. */
    for (i = 0; i < lg->fds.count; i++) {
        r = &lg->fds.rec[i];
        put_name(&o, lg, r);
        put_be32(&o, (uint32_t)r->id);
        if (mode == CPRS_MODE_EXEC) {
            put_be32(&o, (uint32_t)r->fd);
        } else {
            if (svc) {
                svc[i] = o.pos;
            }
            put_u8(&o, CPRS_LEGACY_FD_BYTE);
        }
    }
    put_u8(&o, 0);
    /* spec L5: the vfio subsection in the form asked for. */
    if (form != CPRS_LEGACY_VFIO_NONE) {
        put_u8(&o, 0x05);
        put_u8(&o, CPRS_LEGACY_VFIO_NAME_LEN);
        put_bytes(&o, CPRS_LEGACY_VFIO_NAME, CPRS_LEGACY_VFIO_NAME_LEN);
        put_be32(&o, 1);
    }
    if (form == CPRS_LEGACY_VFIO_FULL) {
        for (i = 0; i < lg->vfio.count; i++) {
            r = &lg->vfio.rec[i];
            put_name(&o, lg, r);
            /* Stream order differs from QEMU's struct order (L5.5). */
            put_be32(&o, (uint32_t)r->id);
            put_be32(&o, r->ioas_id);
            put_be32(&o, r->hwpt_id);
        }
        put_u8(&o, 0);
    }
    *ret_buf = o.p;
    *ret_size = o.pos;
    if (ret_svc) {
        *ret_svc = svc;
    }
    return 0;
}

/* Resolve the mode and form an encode should use. */
static int target(const CprsLegacy *lg, const CprsLegacyOpts *opts,
                  uint32_t *ret_mode, uint32_t *ret_form)
{
    CprsLegacyOpts o;
    int ret = cprs_legacy_opts_get(&o, opts);

    if (ret) {
        return ret;
    }
    *ret_mode = o.mode ? o.mode : lg->mode;
    *ret_form = o.vfio_form ? o.vfio_form : lg->vfio_form;
    return 0;
}

int cprs_legacy_encode(const CprsLegacy *lg, const CprsLegacyOpts *opts,
                       void **ret_buf, size_t *ret_size)
{
    uint32_t mode, form;
    uint8_t *buf;
    size_t size;
    int ret;

    if (!lg || !ret_buf || !ret_size) {
        return -EINVAL;
    }
    ret = target(lg, opts, &mode, &form);
    if (!ret) {
        ret = cprs_legacy_encode_at(lg, mode, form, &buf, &size, NULL);
    }
    if (ret) {
        return ret;
    }
    *ret_buf = buf;
    *ret_size = size;
    return 0;
}
