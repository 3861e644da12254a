/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CPR state kept by libcprstate: what QEMU needs beyond migration/cpr.h
 */

#ifndef MIGRATION_CPR_CPRS_H
#define MIGRATION_CPR_CPRS_H

/*
 * Environment variable read by cpr_state_save(): the policy that chooses
 * what the state is written as.  Unset, empty or "auto": what the next
 * QEMU reads, found by inspecting it (an arena for a QEMU with
 * libcprstate, QEMU 10.2's QCPR stream for one without), or a refusal;
 * "strict": the same, but a target that cannot be recognised (a wrapper
 * script) is refused; "arena", "legacy", "dual": that format whatever
 * the target.  Read when the migration starts, from the environment of
 * the QEMU that saves.
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

/* Where a new QEMU failed before its VM ran (libcprstate's values). */
typedef enum CprFailureStage {
    CPR_FAILED_STATE_LOAD = 1,      /* the CPR state did not load */
    CPR_FAILED_INCOMING = 2,        /* the incoming migration failed */
    CPR_FAILED_DEVICE = 3,          /* a device could not be created */
    CPR_FAILED_OTHER = 4,
} CprFailureStage;

#ifdef CONFIG_CPRSTATE
/*
 * cpr-exec: exec @argv through the file that cpr_state_save() inspected;
 * returns only on failure, with @errp set.
 */
void cpr_cprs_exec(char **argv, Error **errp);

/*
 * The incoming side failed before the VM ran: if the previous QEMU armed
 * a rollback, report @reason and hand the state back to it (the call
 * then does not return).
 */
void cpr_rollback_failed(CprFailureStage stage, int err,
                         const Error *reason);

/* The VM runs: the rollback is not needed any more. */
void cpr_rollback_done(void);
#else
static inline void cpr_rollback_failed(CprFailureStage stage, int err,
                                       const Error *reason)
{
}

static inline void cpr_rollback_done(void)
{
}
#endif

#endif
