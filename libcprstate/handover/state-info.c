/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state-info.c - a state as a whole (spec/fail-safe.rst): what it was
 * loaded from, its generation, its counts (what a pre-flight plan needs)
 * and, for a state a rollback handed back, where and why the next image
 * failed.
 */
#include "cprs-failsafe.h"
#include "cprs-state.h"

int cprs_state_get_info(const CprsState *s, CprsStateInfo *info)
{
    CprsStateInfo si = { .sz = sizeof(si) };
    uint32_t i;

    if (!s || !info) {
        return -EINVAL;
    }
    si.format = (uint32_t)s->format;
    si.mode = s->mode;
    si.generation = s->generation;
    si.fd_count = s->fds.live;
    si.vfio_count = s->vfio.live;
    si.ramblock_count = s->ram.live;
    si.devstate_count = s->dev.live;
    for (i = 0; i < s->dev.n; i++) {
        si.devstate_zstd += s->dev.rec[i].live &&
                            (s->dev.rec[i].u.d.flags & CPRS_DEVSTATE_F_ZSTD);
    }
    si.failure_message = "";
    si.failed_exe = "";
    if (s->rollback) {
        si.rollback_flags = s->rollback->flags;
        si.failure_stage = s->rollback->stage;
        si.failure_error = s->rollback->error;
        si.failed_ns = s->rollback->failed_ns;
        si.failure_message = s->rollback->message;
        si.failed_exe = s->rollback->failed_exe;
    }
    return cprs_info_fill(info, &si, sizeof(si));
}
