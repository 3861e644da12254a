/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CPR state kept by libcprstate: what QEMU needs beyond migration/cpr.h
 */

#ifndef MIGRATION_CPR_CPRS_H
#define MIGRATION_CPR_CPRS_H

/*
 * Environment variable read by cpr_state_save(): "arena" (the default) or
 * "legacy".  "legacy" writes the QCPR stream of a QEMU built without
 * libcprstate, for a live update to such a QEMU (a downgrade).  The value
 * is read when the migration starts, from the environment of the QEMU
 * that saves.
 */
#define CPR_STATE_FORMAT_ENV "QEMU_CPR_STATE_FORMAT"

/*
 * vfio/iommufd device records (the CprVFIODevice list of
 * hw/vfio/cpr-iommufd.c), kept in the CPR state by device name.
 */
void cpr_save_vfio_device(const char *name, int devid, uint32_t ioas_id,
                          uint32_t hwpt_id);
bool cpr_find_vfio_device(const char *name, int *devid, uint32_t *ioas_id,
                          uint32_t *hwpt_id);
void cpr_delete_vfio_device(const char *name);

#endif
