/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * device.c - vfio/iommufd device records (spec 6.5), the fields of QEMU's
 * CprVFIODevice.
 */
#include "cprs-reader.h"

uint32_t cprs_reader_vfio_count(const CprsReader *r)
{
    return r ? cprs_rec_count(r, CPRS_SECTION_VFIO_DEVICES) : 0;
}

int cprs_vfio_decode(CprsReader *r, const uint8_t *p, int sec,
                     uint32_t index, uint64_t off, CprsVfioDeviceInfo *ret_vi)
{
    const CprsWireVfioDevice *w = (const CprsWireVfioDevice *)p;
    CprsVfioDeviceInfo vi = { .sz = sizeof(vi) };
    int ret;

    ret = cprs_str_get(r, &w->name, off, sec, index, &vi.name, &vi.name_len,
                       NULL);
    if (ret) {
        return ret;
    }
    vi.devid = (int32_t)cprs_le32_get(&w->devid);
    vi.ioas_id = cprs_le32_get(&w->ioas_id);
    vi.hwpt_id = cprs_le32_get(&w->hwpt_id);
    if (!r->lenient && cprs_le32_get(&w->flags)) {
        return cprs_reader_fail(r, -EBADMSG, off +
                                offsetof(CprsWireVfioDevice, flags), sec,
                                index, "6.5.3", "vfio flags not zero");
    }
    *ret_vi = vi;
    return 0;
}

int cprs_reader_vfio_get(CprsReader *r, uint32_t index,
                         CprsVfioDeviceInfo *info)
{
    CprsVfioDeviceInfo vi;
    const uint8_t *p;
    uint64_t off;
    int sec, ret;

    if (!r || !info) {
        return -EINVAL;
    }
    ret = cprs_rec_get(r, CPRS_SECTION_VFIO_DEVICES, index, &p, &sec, &off);
    if (!ret) {
        ret = cprs_vfio_decode(r, p, sec, index, off, &vi);
    }
    if (ret) {
        return ret;
    }
    return cprs_info_fill(info, &vi, sizeof(vi));
}

int cprs_reader_vfio_find(CprsReader *r, const char *name,
                          uint32_t *ret_index)
{
    if (!r || !name || !ret_index) {
        return -EINVAL;
    }
    return cprs_lookup(r, CPRS_SECTION_VFIO_DEVICES, name, 0, ret_index);
}
